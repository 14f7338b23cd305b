/* One NSG with 4,096 custom rules (3,997 inbound: every priority from 100 to 4096, and 99
 * outbound) loads, and the datapath picks the right one of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "packet/nsg_harness.h"

#define INBOUND_RULES 3997
#define OUTBOUND_RULES 99

/* Rule of priority p admits TCP from its own hub address to port p; odd ones deny. */
static void source_of(int p, char *buf, size_t size)
{
	snprintf(buf, size, "10.10.%d.%d", 20 + p / 200, 1 + p % 200);
}

static int setup(void **state)
{
	size_t size = (INBOUND_RULES + OUTBOUND_RULES) * 400 + 4096, at = 0;
	char *resources, src[32], dport[16], name[32];
	int err;

	if (!nsg_init("vxnsgs", "nsgs"))
		return 0;
	resources = malloc(size);
	if (!resources)
		return -1;
	at += snprintf(resources + at, size - at, "{\"type\": \"Microsoft.Network/networkSecurityGroups\","
		       " \"name\": \"big\", \"properties\": {\"securityRules\": [");
	for (int i = 0; i < INBOUND_RULES + OUTBOUND_RULES; i++) {
		bool inbound = i < INBOUND_RULES;
		int p = inbound ? 100 + i : 100 + i - INBOUND_RULES;
		char *rule;

		source_of(p, src, sizeof(src));
		snprintf(dport, sizeof(dport), "%d", p);
		snprintf(name, sizeof(name), "%s%d", inbound ? "in" : "out", p);
		rule = nsg_rule_json(name, p, inbound ? "Inbound" : "Outbound",
				     p % 2 ? "Deny" : "Allow", inbound ? "Tcp" : "Udp",
				     inbound ? src : "*", "*", "*", dport);
		at += snprintf(resources + at, size - at, "%s%s", i ? ", " : "", rule);
		free(rule);
	}
	snprintf(resources + at, size - at, "]}}");
	err = nsg_write_config("", "", "big", resources, NULL);
	free(resources);
	return err ? -1 : nsg_up();
}

static int teardown(void **state)
{
	nsg_down();
	return 0;
}

static struct harness_result tcp_from(int p, uint16_t dport)
{
	char src[32];
	struct frame in;
	struct flow fl = { .family = AF_INET, .src = src, .dst = "10.11.1.4", .proto = IPPROTO_TCP,
			   .sport = 30000 + (uint16_t)p, .dport = dport };

	source_of(p, src, sizeof(src));
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	return harness_run(&gw, HUB, &in);
}

static void nsg_4096_rules_classify(void **state)
{
	static const int samples[] = { 100, 101, 777, 2048, 2049, 3999, 4095, 4096 };

	require_gateway();
	assert_true(nsg_rule_id("big", "Inbound", "in4096") >= 0);
	assert_true(nsg_rule_id("big", "Outbound", "out198") >= 0);
	for (size_t i = 0; i < sizeof(samples) / sizeof(*samples); i++) {
		int p = samples[i];
		struct harness_result r = tcp_from(p, (uint16_t)p);
		struct nsg_decision *d = &r.trace.nsg[NSG_STAGE_DESTINATION_SUBNET];
		char name[16];

		snprintf(name, sizeof(name), "in%d", p);
		assert_int_equal(d->priority, p);
		assert_int_equal(d->access, p % 2);
		assert_int_equal(d->rule_id, nsg_rule_id("big", "Inbound", name));
		assert_int_equal(r.verdict == XDP_DROP, p % 2);
		/* the neighbour port belongs to another source: the default rule decides */
		r = tcp_from(p, (uint16_t)(p == 4096 ? 99 : p + 1));
		assert_int_equal(r.trace.nsg[NSG_STAGE_DESTINATION_SUBNET].priority, 65000);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nsg_4096_rules_classify),
	};

	return cmocka_run_group_tests_name("nsg_scale", tests, setup, teardown);
}

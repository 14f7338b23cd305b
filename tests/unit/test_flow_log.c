/* The flow log (user/observe/flow_log.c): the document in Azure's VNet flow log schema, tuple by
 * tuple, and what a flow becomes over its life: Begin, Continuing with the counts since
 * the last record, End with the rest; Denied tuples summed and bounded per second. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "observe/flow_log.h"
#include "lib/path_name.h"

#define RG "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/vnet-xdp"
#define SPOKE1_NSG RG "/providers/Microsoft.Network/networkSecurityGroups/spoke1-nsg"

/* VNets hub (0) and spoke1 (1); spoke1-nsg (id 3) with AllowTcp5201 (id 7) and the default
 * AllowVnetInBound (id 9), DenyTcp5202 (id 8). */
static const char *const ids_text =
	"{\"nsgs\": {\"spoke1-nsg\": {\"id\": 3}}, \"rules\": {"
	" \"a\": {\"id\": 7, \"nsg\": \"spoke1-nsg\", \"rule\": \"AllowTcp5201\", \"priority\": 100},"
	" \"b\": {\"id\": 8, \"nsg\": \"spoke1-nsg\", \"rule\": \"DenyTcp5202\", \"priority\": 110},"
	" \"c\": {\"id\": 9, \"nsg\": \"spoke1-nsg\", \"rule\": \"AllowVnetInBound\", \"priority\": 65000}}}";

struct fixture {
	struct nsg_ids ids;
	struct flow_log_names names;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->ids.doc = json_loads(ids_text, 0, NULL);
	assert_non_null(f->ids.doc);
	f->names = (struct flow_log_names){ .gateway = "gw1", .ids = &f->ids,
		.vnets = json_pack("[s, s]", "hub", "spoke1"),
		.macs = json_pack("{s:s}", "spoke1", "00155D0A0B0C") };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	json_decref(f->ids.doc);
	json_decref(f->names.vnets);
	json_decref(f->names.macs);
	free(f);
	return 0;
}

/* hub 10.10.1.4:40000 -> spoke1 10.11.1.4:5201 TCP; spoke1's subnet NSG allowed it. */
static void tcp_flow(struct flow_key *k, struct flow_entry *e)
{
	memset(k, 0, sizeof(*k));
	memset(e, 0, sizeof(*e));
	k->family = AF_INET;
	k->proto = IPPROTO_TCP;
	inet_pton(AF_INET, "10.10.1.4", k->addr_a);
	inet_pton(AF_INET, "10.11.1.4", k->addr_b);
	k->port_a = 40000;
	k->port_b = 5201;
	k->vnet_a = 0;
	k->vnet_b = 1;
	for (int s = 0; s < NSG_STAGES; s++)
		e->nsg_id[s] = e->rule_id[s] = NSG_NONE;
	e->nsg_id[NSG_STAGE_DESTINATION_SUBNET] = 3;
	e->rule_id[NSG_STAGE_DESTINATION_SUBNET] = 7;
	e->created_ns = 1000000000ull;
	e->last_seen_ns = 1000000000ull;
	e->tcp_state = TCP_FLOW_ESTABLISHED;
}

static const struct timespec at = { .tv_sec = 1764783901, .tv_nsec = 250000000 };

static char *document_text(struct fixture *f, const struct flow_log_tuple *t, size_t n)
{
	json_t *doc = flow_log_document(&f->names, t, n, at);
	char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);

	json_decref(doc);
	return text;
}

/* The whole document, byte for byte: Azure's record fields in Azure's order, flows per
 * aclID, flowGroups per rule, the tuple's 13 fields. */
static void document_has_azures_shape_exactly(void **state)
{
	struct fixture *f = *state;
	struct flow_log_tuple t[3] = {
		{ .time_ms = 1764783900123, .family = AF_INET, .proto = 6, .sport = 40000, .dport = 5201,
		  .direction = 'I', .state = 'C', .vnet = 1, .nsg_id = 3, .rule_id = 7,
		  .packets = { 10, 8 }, .bytes = { 1500, 640 } },
		{ .time_ms = 1764783900200, .family = AF_INET, .proto = 6, .sport = 40001, .dport = 5202,
		  .direction = 'I', .state = 'D', .vnet = 1, .nsg_id = 3, .rule_id = 8,
		  .packets = { 2, 0 }, .bytes = { 120, 0 } },
		{ .time_ms = 1764783900123, .family = AF_INET, .proto = 6, .sport = 40000, .dport = 5201,
		  .direction = 'O', .state = 'C', .vnet = 0, .nsg_id = NSG_NONE, .rule_id = NSG_NONE,
		  .packets = { 10, 8 }, .bytes = { 1500, 640 } },
	};
	char *text;

	for (int i = 0; i < 3; i++) {
		inet_pton(AF_INET, "10.10.1.4", t[i].src);
		inet_pton(AF_INET, "10.11.1.4", t[i].dst);
	}
	text = document_text(f, t, 3);
	assert_string_equal(text,
		"{\"records\":["
		"{\"time\":\"2025-12-03T17:45:01.2500000Z\",\"flowLogVersion\":4,"
		"\"flowLogGUID\":\"" "d5121218-fad3-4416-ac67-e25630842777" "\",\"macAddress\":\"00155D0A0B0C\","
		"\"category\":\"FlowLogFlowEvent\","
		"\"flowLogResourceID\":\"" RG "/providers/Microsoft.Network/networkWatchers/NetworkWatcher_vnetxdp/flowLogs/gw1\","
		"\"targetResourceID\":\"" RG "/providers/Microsoft.Network/virtualNetworks/spoke1\","
		"\"operationName\":\"FlowLogFlowEvent\",\"flowRecords\":{\"flows\":[{\"aclID\":\"" SPOKE1_NSG "\","
		"\"flowGroups\":["
		"{\"rule\":\"UserRule_AllowTcp5201\",\"flowTuples\":[\"1764783900123,10.10.1.4,10.11.1.4,40000,5201,6,I,C,NX,10,1500,8,640\"]},"
		"{\"rule\":\"UserRule_DenyTcp5202\",\"flowTuples\":[\"1764783900200,10.10.1.4,10.11.1.4,40001,5202,6,I,D,NX,2,120,0,0\"]}]}]}},"
		"{\"time\":\"2025-12-03T17:45:01.2500000Z\",\"flowLogVersion\":4,"
		"\"flowLogGUID\":\"" "d5121218-fad3-4416-ac67-e25630842777" "\",\"macAddress\":\"000000000000\","
		"\"category\":\"FlowLogFlowEvent\","
		"\"flowLogResourceID\":\"" RG "/providers/Microsoft.Network/networkWatchers/NetworkWatcher_vnetxdp/flowLogs/gw1\","
		"\"targetResourceID\":\"" RG "/providers/Microsoft.Network/virtualNetworks/hub\","
		"\"operationName\":\"FlowLogFlowEvent\",\"flowRecords\":{\"flows\":[{\"aclID\":\"00000000-0000-0000-0000-000000000000\","
		"\"flowGroups\":[{\"rule\":\"NoNetworkSecurityGroup\",\"flowTuples\":[\"1764783900123,10.10.1.4,10.11.1.4,40000,5201,6,O,C,NX,10,1500,8,640\"]}]}]}}]}");
	free(text);
}

static void default_rules_are_named_as_azure_names_them(void **state)
{
	struct fixture *f = *state;
	char buf[128];

	flow_log_rule_text(&f->names, 9, buf, sizeof(buf));
	assert_string_equal(buf, "DefaultRule_AllowVnetInBound");
	flow_log_rule_text(&f->names, 7, buf, sizeof(buf));
	assert_string_equal(buf, "UserRule_AllowTcp5201");
	flow_log_rule_text(&f->names, NSG_NONE, buf, sizeof(buf));
	assert_string_equal(buf, "NoNetworkSecurityGroup");
}

static void ipv6_tuples_carry_the_addresses_as_written(void **state)
{
	struct flow_log_tuple t = { .time_ms = 5, .family = AF_INET6, .proto = 17, .sport = 53,
				    .dport = 5353, .direction = 'O', .state = 'B' };
	char buf[200];

	inet_pton(AF_INET6, "fd00:10::4", t.src);
	inet_pton(AF_INET6, "fd00:11::4", t.dst);
	flow_log_tuple_text(&t, buf, sizeof(buf));
	assert_string_equal(buf, "5,fd00:10::4,fd00:11::4,53,5353,17,O,B,NX,0,0,0,0");
}

/* Takes the tracker's tuples as text, "STATE,packets,bytes,packets,bytes DIR" each. */
static void take_text(struct flow_log_tracker *t, char *buf, size_t size)
{
	struct flow_log_tuple *tuples;
	size_t n = flow_log_take(t, &tuples), used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%c%c,%llu,%llu,%llu,%llu", i ? " " : "",
					 tuples[i].direction, tuples[i].state,
					 (unsigned long long)tuples[i].packets[0],
					 (unsigned long long)tuples[i].bytes[0],
					 (unsigned long long)tuples[i].packets[1],
					 (unsigned long long)tuples[i].bytes[1]);
	free(tuples);
}

#define S 1000000000ull

static void pass(struct flow_log_tracker *t, const struct flow_key *k, const struct flow_entry *e,
		 uint64_t now)
{
	flow_log_pass_begin(t);
	if (k)
		flow_log_seen(t, k, e, now, 0);
	flow_log_pass_end(t, now, 0);
}

/* Begin without counts, Continuing with the deltas, End with the rest once closed and
 * quiet; nothing for a pass with nothing new; the sums are the flow's counts. */
static void a_flow_begins_continues_with_deltas_and_ends_with_the_rest(void **state)
{
	struct flow_log_tracker *t = flow_log_tracker_new();
	struct flow_key k;
	struct flow_entry e;
	char text[512];

	tcp_flow(&k, &e);
	e.packets[0] = 3;
	e.bytes[0] = 180;
	pass(t, &k, &e, 2 * S);
	take_text(t, text, sizeof(text));
	/* hub's side (outbound, no NSG) and spoke1's (inbound, its subnet's NSG) */
	assert_string_equal(text, "OB,0,0,0,0 IB,0,0,0,0 OC,3,180,0,0 IC,3,180,0,0");
	pass(t, &k, &e, 3 * S);
	take_text(t, text, sizeof(text));
	assert_string_equal(text, "");
	e.packets[0] = 10;
	e.bytes[0] = 1000;
	e.packets[1] = 4;
	e.bytes[1] = 240;
	e.tcp_state = TCP_FLOW_CLOSING; /* FIN both ways ... */
	e.last_seen_ns = 3500000000ull;
	pass(t, &k, &e, 4 * S); /* ... but the last ACK may still come */
	take_text(t, text, sizeof(text));
	assert_string_equal(text, "OC,7,820,4,240 IC,7,820,4,240");
	e.packets[0] = 11;
	e.bytes[0] = 1060;
	pass(t, &k, &e, 5 * S);
	take_text(t, text, sizeof(text));
	assert_string_equal(text, "OE,1,60,0,0 IE,1,60,0,0");
	/* ended: nothing more, not even when the GC deletes it later */
	pass(t, &k, &e, 6 * S);
	flow_log_removed(t, &k, &e, 7 * S, 0);
	pass(t, NULL, NULL, 8 * S);
	take_text(t, text, sizeof(text));
	assert_string_equal(text, "");
	flow_log_tracker_free(t);
}

/* The GC's report gives the End its final counts; a flow that came and went between two
 * passes gets its Begin too; one gone without the GC (LRU eviction) ends without counts. */
static void removed_flows_end_with_their_final_counts_and_evicted_ones_without(void **state)
{
	struct flow_log_tracker *t = flow_log_tracker_new();
	struct flow_key k, k2;
	struct flow_entry e, e2;
	char text[512];

	tcp_flow(&k, &e);
	e.packets[0] = 1;
	pass(t, &k, &e, 2 * S);
	take_text(t, text, sizeof(text));
	e.packets[0] = 5;
	e.packets[1] = 2;
	flow_log_removed(t, &k, &e, 3 * S, 0);
	pass(t, NULL, NULL, 4 * S);
	take_text(t, text, sizeof(text));
	assert_string_equal(text, "OE,4,0,2,0 IE,4,0,2,0");

	tcp_flow(&k2, &e2);
	k2.port_a = 40002;
	e2.packets[0] = 2;
	flow_log_removed(t, &k2, &e2, 5 * S, 0);
	take_text(t, text, sizeof(text));
	assert_string_equal(text, "OB,0,0,0,0 IB,0,0,0,0 OE,2,0,0,0 IE,2,0,0,0");

	e2.created_ns = 5500000000ull; /* the same key, a new flow (created anew) */
	pass(t, &k2, &e2, 6 * S);
	take_text(t, text, sizeof(text));
	assert_string_equal(text, "OB,0,0,0,0 IB,0,0,0,0 OC,2,0,0,0 IC,2,0,0,0");
	pass(t, NULL, NULL, 7 * S); /* evicted: gone without the GC */
	take_text(t, text, sizeof(text));
	assert_string_equal(text, "OE,0,0,0,0 IE,0,0,0,0");
	flow_log_tracker_free(t);
}

static struct monitor_event denied_syn(uint16_t sport, uint64_t time_ns)
{
	struct monitor_event ev = { .time_ns = time_ns, .type = MONITOR_DROP,
		.drop_reason = DROP_NSG_DENIED_INBOUND, .src_vnet = 0, .dst_vnet = 1, .nsg_id = 3,
		.rule_id = 8, .len = 60, .family = AF_INET, .proto = IPPROTO_TCP, .sport = sport,
		.dport = 5202 };

	inet_pton(AF_INET, "10.10.1.4", ev.src);
	inet_pton(AF_INET, "10.11.1.4", ev.dst);
	return ev;
}

/* Retries of one connection are one tuple; new tuples beyond the bound in one second are
 * left out (false), the next second takes them again; other drops are no tuples. */
static void denied_packets_sum_per_tuple_and_new_tuples_are_bounded_per_second(void **state)
{
	struct flow_log_tracker *t = flow_log_tracker_new();
	struct monitor_event ev = denied_syn(40001, 10 * S), other = ev;
	char text[512];

	assert_true(flow_log_denied(t, &ev, 2, 0));
	assert_true(flow_log_denied(t, &ev, 2, 0));
	assert_true(flow_log_denied(t, &ev, 2, 0)); /* the same tuple: counted, not bounded */
	ev = denied_syn(40002, 10 * S + 1);
	assert_true(flow_log_denied(t, &ev, 2, 0));
	ev = denied_syn(40003, 10 * S + 2);
	assert_false(flow_log_denied(t, &ev, 2, 0)); /* a third new tuple in that second */
	ev = denied_syn(40003, 11 * S);
	assert_true(flow_log_denied(t, &ev, 2, 0));
	other.drop_reason = DROP_NSG_DENIED_OUTBOUND - 1; /* not an NSG's */
	assert_true(flow_log_denied(t, &other, 2, 0));
	take_text(t, text, sizeof(text));
	assert_string_equal(text, "ID,3,180,0,0 ID,1,60,0,0 ID,1,60,0,0");
	flow_log_tracker_free(t);
}

static void directory_must_be_absolute_without_dot_components(void **state)
{
	assert_null(path_name_problem("/var/log/vnet-xdp/flows"));
	assert_null(path_name_problem("/var/log/..flows/x."));
	assert_non_null(path_name_problem("var/log"));
	assert_non_null(path_name_problem("/var/log/../etc"));
	assert_non_null(path_name_problem("/var/./log"));
	assert_non_null(path_name_problem("/var/log/.."));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(document_has_azures_shape_exactly, setup, teardown),
		cmocka_unit_test_setup_teardown(default_rules_are_named_as_azure_names_them, setup, teardown),
		cmocka_unit_test(ipv6_tuples_carry_the_addresses_as_written),
		cmocka_unit_test(a_flow_begins_continues_with_deltas_and_ends_with_the_rest),
		cmocka_unit_test(removed_flows_end_with_their_final_counts_and_evicted_ones_without),
		cmocka_unit_test(denied_packets_sum_per_tuple_and_new_tuples_are_bounded_per_second),
		cmocka_unit_test(directory_must_be_absolute_without_dot_components),
	};

	return cmocka_run_group_tests_name("flow_log", tests, NULL, NULL);
}

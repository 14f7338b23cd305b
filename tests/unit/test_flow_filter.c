/* The filters of `flows` and `snat` (user/observe/flow_filter.c): each option's values as
 * conntrack -L takes them, bad ones refused, and an entry kept only when every filter
 * given matches it. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "observe/flow_filter.h"

static const char *const states[] = { "active", "expired", "established", NULL };

static struct flow_filter filter_of(int n, const enum flow_filter_option *options,
				    const char *const *values)
{
	struct flow_filter f;

	flow_filter_init(&f);
	for (int i = 0; i < n; i++)
		assert_int_equal(flow_filter_set(&f, "flows", options[i], values[i], states), 0);
	return f;
}

/* 10.10.1.4:40100 -> 10.11.1.4:5201, TCP, hub to spoke1, established. */
static struct flow_filter_entry tcp_entry(uint8_t src[4], uint8_t dst[4])
{
	inet_pton(AF_INET, "10.10.1.4", src);
	inet_pton(AF_INET, "10.11.1.4", dst);
	return (struct flow_filter_entry){ .family = AF_INET, .proto = 6, .src = src, .dst = dst,
		.sport = 40100, .dport = 5201, .vnets = { "hub", "spoke1" }, .state = "established" };
}

static void no_filter_keeps_every_entry(void **unused)
{
	uint8_t src[4], dst[4];
	struct flow_filter_entry e = tcp_entry(src, dst);
	struct flow_filter f;

	(void)unused;
	flow_filter_init(&f);
	assert_true(flow_filter_match(&f, &e));
}

static void every_filter_given_must_match(void **unused)
{
	static const enum flow_filter_option all[] = { FLOW_FILTER_SRC, FLOW_FILTER_DST,
		FLOW_FILTER_SPORT, FLOW_FILTER_DPORT, FLOW_FILTER_PROTO, FLOW_FILTER_VNET,
		FLOW_FILTER_STATE };
	static const char *const keep[] = { "10.10.0.0/16", "10.11.1.4", "40100", "5201", "tcp",
					    "spoke1", "established" };
	static const char *const other[] = { "10.12.0.0/16", "10.11.1.5", "40101", "5202", "udp",
					     "spoke2", "expired" };
	uint8_t src[4], dst[4];
	struct flow_filter_entry e = tcp_entry(src, dst);
	struct flow_filter f = filter_of(7, all, keep);

	(void)unused;
	assert_true(flow_filter_match(&f, &e));
	for (int i = 0; i < 7; i++) {
		const char *values[7];

		memcpy(values, keep, sizeof(values));
		values[i] = other[i];
		f = filter_of(7, all, values);
		if (flow_filter_match(&f, &e))
			fail_msg("--%s %s kept the flow", flow_filter_option_names[all[i]], other[i]);
	}
}

static void protocol_by_name_or_number_and_vnet_by_either_end(void **unused)
{
	static const enum flow_filter_option proto_vnet[] = { FLOW_FILTER_PROTO, FLOW_FILTER_VNET };
	static const char *const by_number[] = { "6", "hub" };
	static const char *const by_case[] = { "TCP", "spoke1" };
	uint8_t src[4], dst[4];
	struct flow_filter_entry e = tcp_entry(src, dst);
	struct flow_filter f = filter_of(2, proto_vnet, by_number);

	(void)unused;
	assert_true(flow_filter_match(&f, &e));
	f = filter_of(2, proto_vnet, by_case);
	assert_true(flow_filter_match(&f, &e));
}

/* ICMP has no ports (its echo id is not one): a port filter leaves it out. */
static void a_port_filter_leaves_icmp_out(void **unused)
{
	static const enum flow_filter_option sport[] = { FLOW_FILTER_SPORT };
	static const char *const zero[] = { "0" };
	uint8_t src[4], dst[4];
	struct flow_filter_entry e = tcp_entry(src, dst);
	struct flow_filter f = filter_of(1, sport, zero);

	(void)unused;
	e.proto = 1;
	e.sport = e.dport = -1;
	assert_false(flow_filter_match(&f, &e));
}

static void an_ipv4_prefix_leaves_ipv6_out(void **unused)
{
	static const enum flow_filter_option src_option[] = { FLOW_FILTER_SRC };
	static const char *const any4[] = { "0.0.0.0/0" }, *const v6[] = { "fd00:10::/48" };
	uint8_t src[16], dst[16];
	struct flow_filter_entry e = { .family = AF_INET6, .proto = 17, .src = src, .dst = dst,
				       .sport = 1, .dport = 2 };
	struct flow_filter f = filter_of(1, src_option, any4);

	(void)unused;
	inet_pton(AF_INET6, "fd00:10:0:1::4", src);
	inet_pton(AF_INET6, "fd00:11:0:1::4", dst);
	assert_false(flow_filter_match(&f, &e));
	f = filter_of(1, src_option, v6);
	assert_true(flow_filter_match(&f, &e));
}

static void bad_values_are_refused(void **unused)
{
	static const struct { enum flow_filter_option option; const char *value; } bad[] = {
		{ FLOW_FILTER_SRC, "10.0.0.300" }, { FLOW_FILTER_SRC, "10.1.2.3/8" },
		{ FLOW_FILTER_DST, "10.0.0.0/33" }, { FLOW_FILTER_DST, "host" },
		{ FLOW_FILTER_SPORT, "65536" }, { FLOW_FILTER_SPORT, "-1" },
		{ FLOW_FILTER_DPORT, "" }, { FLOW_FILTER_DPORT, "80x" },
		{ FLOW_FILTER_PROTO, "256" }, { FLOW_FILTER_PROTO, "sctpx" },
		{ FLOW_FILTER_VNET, "" }, { FLOW_FILTER_STATE, "closed" },
	};
	struct flow_filter f;

	(void)unused;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		flow_filter_init(&f);
		if (!flow_filter_set(&f, "flows", bad[i].option, bad[i].value, states))
			fail_msg("--%s '%s' was taken", flow_filter_option_names[bad[i].option],
				 bad[i].value);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_filter_keeps_every_entry),
		cmocka_unit_test(every_filter_given_must_match),
		cmocka_unit_test(protocol_by_name_or_number_and_vnet_by_either_end),
		cmocka_unit_test(a_port_filter_leaves_icmp_out),
		cmocka_unit_test(an_ipv4_prefix_leaves_ipv6_out),
		cmocka_unit_test(bad_values_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

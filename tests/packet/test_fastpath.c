/* Packet tests of the established-flow fast path (bpf/fastpath.h): a flow's packets after
 * the first in each direction skip the LPM and FIB lookups, and every result the tests can
 * see stays what the whole pipeline gives: the rewritten frame, the decision trace, the
 * peering, rule, flow and datapath counters, TTL expiry, and what a reload, a
 * flushConnection rule change, an idle flow or a neighbour's new MAC change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "packet/nsg_harness.h"

#define SUBNET_NSG "spoke1-subnet"
#define NEW_SPOKE1_VM_MAC "02:00:00:00:11:99"

/* spoke1's subnet NSG: AllowApp (inbound TCP/UDP 8080) with `access`; flushConnection. */
static int write_config(const char *access)
{
	char *allow = nsg_rule_json("AllowApp", 200, "Inbound", access, "*", "*", "*", "*", "8080");
	char resources[4096];
	int err;

	if (!allow)
		return -ENOMEM;
	snprintf(resources, sizeof(resources),
		 "{\"type\": \"Microsoft.Network/networkSecurityGroups\", \"name\": \"" SUBNET_NSG "\","
		 " \"properties\": {\"flushConnection\": true, \"securityRules\": [%s]}}", allow);
	err = nsg_write_config("", "", SUBNET_NSG, resources,
			       "\"udpIdleTimeoutSeconds\": 60, \"flowTableSize\": 1024");
	free(allow);
	return err;
}

static int setup(void **state)
{
	nsg_init("vxfastp", "fastp");
	if (geteuid() != 0) {
		gw.why_not = "needs root for network namespaces and BPF";
		return 0;
	}
	if (write_config("Allow"))
		return -1;
	return nsg_up();
}

static int teardown(void **state)
{
	nsg_down();
	return 0;
}

static struct flow udp4(const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	return (struct flow){ .family = AF_INET, .src = src, .dst = dst, .proto = IPPROTO_UDP,
			      .sport = sport, .dport = dport, .ip_id = 0x2468, .payload = 18 };
}

static struct flow tcp6(const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	return (struct flow){ .family = AF_INET6, .src = src, .dst = dst, .proto = IPPROTO_TCP,
			      .sport = sport, .dport = dport, .ip_id = 0x13579 };
}

static const struct flow hub_to_spoke1 = { .family = AF_INET, .src = "10.10.1.4",
					   .dst = "10.11.1.4", .proto = IPPROTO_UDP,
					   .sport = 41000, .dport = 8080, .ip_id = 0x2468,
					   .payload = 18 };

static struct frame frame_from(int iface, const struct flow *fl)
{
	static const char *gw_macs[] = { HUB_GW_MAC, SPOKE1_GW_MAC };
	static const char *vm_macs[] = { HUB_VM_MAC, SPOKE1_VM_MAC };
	struct frame f;

	frame_build(&f, gw_macs[iface], vm_macs[iface], fl);
	return f;
}

static struct harness_result send_from(int iface, const struct flow *fl)
{
	struct frame in = frame_from(iface, fl);

	return harness_run(&gw, iface, &in);
}

static void rule_counter(uint32_t rule_id, struct nsg_rule_counter *sum)
{
	int cpus = libbpf_num_possible_cpus();
	struct nsg_rule_counter values[cpus];

	memset(sum, 0, sizeof(*sum));
	if (bpf_map_lookup_elem(nsg_maps.rule_counters_fd, &rule_id, values))
		return;
	for (int c = 0; c < cpus; c++) {
		sum->hits += values[c].hits;
		sum->packets += values[c].packets;
		sum->bytes += values[c].bytes;
	}
}

static uint64_t flow_counter(uint32_t counter)
{
	int cpus = libbpf_num_possible_cpus();
	uint64_t values[cpus], sum = 0;

	if (bpf_map_lookup_elem(nsg_maps.flow_counters_fd, &counter, values))
		return 0;
	for (int c = 0; c < cpus; c++)
		sum += values[c];
	return sum;
}

/* The one flow in the table (the tests clear it first). */
static int only_flow(struct flow_entry *entry)
{
	struct flow_key key, next;
	int found = -1;

	for (int t = 0; t < 2; t++) {
		int fd = nsg_maps.flow_tables_fd[t];

		if (bpf_map_get_next_key(fd, NULL, &key))
			continue;
		if (found >= 0 || !bpf_map_get_next_key(fd, &key, &next))
			return -1;
		found = bpf_map_lookup_elem(fd, &key, entry);
	}
	return found;
}

/* Everything the trace says about the decision but the sequence, the fast path flag and
 * the packet's fingerprint. */
static void assert_same_decision(const struct decision_trace *a, const struct decision_trace *b)
{
	assert_int_equal(a->verdict, b->verdict);
	assert_int_equal(a->drop_reason, b->drop_reason);
	assert_int_equal(a->counter, b->counter);
	assert_int_equal(a->ingress_ifindex, b->ingress_ifindex);
	assert_int_equal(a->src_vnet, b->src_vnet);
	assert_int_equal(a->route_type, b->route_type);
	assert_int_equal(a->egress_ifindex, b->egress_ifindex);
	assert_int_equal(a->peering, b->peering);
	assert_int_equal(a->dst_vnet, b->dst_vnet);
	for (int i = 0; i < NSG_STAGES; i++) {
		assert_int_equal(a->nsg[i].nsg_id, b->nsg[i].nsg_id);
		assert_int_equal(a->nsg[i].rule_id, b->nsg[i].rule_id);
	}
}

struct pending_sum {
	uint32_t responder;
	uint64_t packets, bytes;
};

static int pending_add(struct fast_path_entry *e, void *arg)
{
	struct pending_sum *sum = arg;

	if (e->responder == sum->responder) {
		sum->packets += e->pending_packets;
		sum->bytes += e->pending_bytes;
	}
	return 0;
}

/* What the fast path forwarded under its leases and has not yet added to the flow entry,
 * in the flow's direction `responder`. */
static uint64_t pending_packets(uint32_t responder, uint64_t *bytes)
{
	struct pending_sum sum = { .responder = responder };

	nsg_fast_paths_each(pending_add, &sum);
	if (bytes)
		*bytes = sum.bytes;
	return sum.packets;
}

static int lease_end(struct fast_path_entry *e, void *arg)
{
	(void)arg;
	e->checked_ns = stamp_aged(e->checked_ns, NS_PER_SECOND);
	return 1;
}

/* Ends every lease, as FAST_PATH_LEASE_NS passing would; flows stay as they are. */
static void leases_expire(void)
{
	nsg_fast_paths_each(lease_end, NULL);
}

static void assert_fast(const struct harness_result *r, const struct frame *expected)
{
	assert_int_equal(r->verdict, XDP_REDIRECT);
	assert_int_not_equal(r->trace.fast_path, FAST_PATH_NONE);
	assert_int_equal(r->trace.flow, NSG_FLOW_HIT);
	assert_int_equal(r->out.len, expected->len);
	assert_memory_equal(r->out.data, expected->data, expected->len);
}

/* The first packet each way takes the whole pipeline; the next ones the fast path, with
 * the same frame out, the same decision, and every counter moved as before. */
static void one_direction(int from, int to, const struct flow *fl, uint32_t rule_id)
{
	struct nsg_rule_counter rule_before, rule_after;
	struct harness_result first, next;
	struct frame in = frame_from(from, fl);
	uint64_t peering_before, forwarded_before, hits_before;
	uint32_t peering;

	rule_counter(rule_id, &rule_before);
	forwarded_before = harness_counter(gw.datapath_fd, COUNT_FORWARDED);
	hits_before = flow_counter(FLOW_HIT);
	first = harness_run(&gw, from, &in);
	assert_int_equal(first.verdict, XDP_REDIRECT);
	assert_int_equal(first.trace.egress_ifindex, gw.ifaces[to].ifindex);
	assert_int_equal(first.trace.route_type, ROUTE_VNET_PEERING);
	assert_int_equal(first.trace.fast_path, FAST_PATH_NONE);
	peering = first.trace.peering;
	peering_before = harness_counter(gw.peerings_fd, peering);
	for (int i = 0; i < 3; i++) {
		next = harness_run(&gw, from, &in);
		assert_fast(&next, &first.out);
		/* The second packet asks the flow table, which grants the lease. */
		assert_int_equal(next.trace.fast_path, i ? FAST_PATH_LEASED : FAST_PATH_CACHED);
		assert_same_decision(&next.trace, &first.trace);
	}
	assert_int_equal(harness_counter(gw.peerings_fd, peering), peering_before + 3);
	assert_int_equal(harness_counter(gw.datapath_fd, COUNT_FORWARDED), forwarded_before + 4);
	assert_true(flow_counter(FLOW_HIT) - hits_before >= 3);
	rule_counter(rule_id, &rule_after);
	assert_int_equal(rule_after.packets, rule_before.packets + 4);
	assert_int_equal(rule_after.bytes - rule_before.bytes,
			 4 * (in.len - 14)); /* the IP packet's length */
}

static void fast_path_after_first_packet_both_ways(void **state)
{
	struct flow there = hub_to_spoke1, back = udp4("10.11.1.4", 8080, "10.10.1.4", 41000);
	int64_t allow = nsg_rule_id(SUBNET_NSG, "Inbound", "AllowApp");
	struct nsg_rule_counter before, after;
	struct flow_entry entry;

	require_gateway();
	assert_true(allow >= 0);
	nsg_clear_flows();
	rule_counter((uint32_t)allow, &before);
	one_direction(HUB, SPOKE1, &there, (uint32_t)allow);
	one_direction(SPOKE1, HUB, &back, (uint32_t)allow);
	rule_counter((uint32_t)allow, &after);
	assert_int_equal(after.hits, before.hits + 1); /* one flow decided, once */
	/* Two packets each way wait in the fast path; the next confirmation adds them. */
	assert_int_equal(only_flow(&entry), 0);
	assert_int_equal(entry.packets[0], 2);
	assert_int_equal(entry.packets[1], 2);
	assert_int_equal(pending_packets(0, NULL), 2);
	assert_int_equal(pending_packets(1, NULL), 2);
}

/* Packets under the lease reach the flow entry, counted once: the flow's packets and
 * bytes after a confirmation are exactly what the pipeline forwarded. */
static void lease_counts_reach_the_flow(void **state)
{
	struct flow fl = hub_to_spoke1;
	struct frame in = frame_from(HUB, &fl);
	uint64_t ip_len = in.len - 14, bytes;
	struct harness_result r;
	struct flow_entry entry;

	require_gateway();
	nsg_clear_flows();
	for (int i = 0; i < 7; i++)
		assert_int_equal(harness_run(&gw, HUB, &in).verdict, XDP_REDIRECT);
	assert_int_equal(only_flow(&entry), 0);
	assert_int_equal(entry.packets[0], 2);
	assert_int_equal(pending_packets(0, &bytes), 5);
	assert_int_equal(bytes, 5 * ip_len);

	leases_expire();
	r = harness_run(&gw, HUB, &in);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.fast_path, FAST_PATH_CACHED);
	assert_int_equal(only_flow(&entry), 0);
	assert_int_equal(entry.packets[0], 8);
	assert_int_equal(entry.bytes[0], 8 * ip_len);
	assert_int_equal(pending_packets(0, NULL), 0);
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_LEASED);
}

static int lease_stamp_ahead(struct fast_path_entry *e, void *arg)
{
	e->checked_ns = datapath_clock_ns() + *(uint64_t *)arg;
	return 1;
}

/* A lease checked "later" than now is another CPU's stamp only within the clocks' skew;
 * one an hour ahead (a wrapped subtraction, a bug) ends, and the flow table is asked. */
static void lease_stamped_ahead_holds_only_within_clock_skew(void **state)
{
	struct flow fl = hub_to_spoke1;
	struct frame in = frame_from(HUB, &fl);
	uint64_t ahead = CLOCK_SKEW_NS / 4;

	require_gateway();
	nsg_clear_flows();
	for (int i = 0; i < 3; i++)
		assert_int_equal(harness_run(&gw, HUB, &in).verdict, XDP_REDIRECT);
	nsg_fast_paths_each(lease_stamp_ahead, &ahead);
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_LEASED);
	ahead = 3600 * NS_PER_SECOND;
	nsg_fast_paths_each(lease_stamp_ahead, &ahead);
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_CACHED);
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_LEASED);
}

/* Under a lease the common IPv4 frame is forwarded before the parser runs: frames the
 * parser would refuse are still refused with its reason, and frames it reads but the
 * shortcut does not (IPv4 options) are forwarded under the lease all the same. */
static void leased_frames_meet_the_parsers_checks(void **state)
{
	struct flow fl = hub_to_spoke1;
	struct frame in = frame_from(HUB, &fl), bad, opts;
	struct harness_result first, r;

	require_gateway();
	nsg_clear_flows();
	first = harness_run(&gw, HUB, &in);
	assert_int_equal(first.verdict, XDP_REDIRECT);
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_CACHED);
	r = harness_run(&gw, HUB, &in);
	assert_fast(&r, &first.out);
	assert_int_equal(r.trace.fast_path, FAST_PATH_LEASED);

	bad = in;
	bad.data[14 + 10] ^= 0x01; /* the IPv4 header checksum */
	r = harness_run(&gw, HUB, &bad);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(r.trace.drop_reason, DROP_IPV4_BAD_CHECKSUM);
	bad = in;
	bad.data[14 + 20 + 4] = 0;
	bad.data[14 + 20 + 5] = 4; /* a UDP length shorter than its header */
	r = harness_run(&gw, HUB, &bad);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(r.trace.drop_reason, DROP_MALFORMED_L4);

	frame_ethernet(&opts, HUB_GW_MAC, HUB_VM_MAC, 0x0800);
	frame_ip(&opts, &fl, 4);
	r = harness_run(&gw, HUB, &opts);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.fast_path, FAST_PATH_LEASED);
	assert_int_equal(r.out.data[14 + 8], 63); /* TTL */
}

/* SYN, FIN and RST always reach the flow table, lease or not: an RST closes the flow at
 * once, and a closed flow's packets get no lease. */
static void tcp_control_packets_skip_the_lease(void **state)
{
	struct flow syn = tcp6("fd00:10:0:1::4", 42100, "fd00:11:0:1::4", 8080);
	struct flow answer = tcp6("fd00:11:0:1::4", 8080, "fd00:10:0:1::4", 42100);
	struct frame in = frame_from(HUB, &syn), back = frame_from(SPOKE1, &answer);
	struct flow_entry entry;

	require_gateway();
	nsg_clear_flows();
	in.data[14 + 40 + 13] = 0x02; /* SYN */
	back.data[14 + 40 + 13] = 0x12; /* SYN ACK */
	assert_int_equal(harness_run(&gw, HUB, &in).verdict, XDP_REDIRECT);
	assert_int_equal(harness_run(&gw, SPOKE1, &back).verdict, XDP_REDIRECT);
	in.data[14 + 40 + 13] = 0x10; /* ACK */
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_CACHED);
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_LEASED);
	assert_int_equal(only_flow(&entry), 0);
	assert_int_equal(entry.tcp_state, TCP_FLOW_ESTABLISHED);

	in.data[14 + 40 + 13] = 0x14; /* RST ACK */
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_CACHED);
	assert_int_equal(only_flow(&entry), 0);
	assert_int_equal(entry.tcp_state, TCP_FLOW_CLOSED);
	in.data[14 + 40 + 13] = 0x10;
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_CACHED);
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_CACHED);
}

static void fast_path_ipv6_tcp(void **state)
{
	struct flow syn = tcp6("fd00:10:0:1::4", 42000, "fd00:11:0:1::4", 8080);
	struct frame in = frame_from(HUB, &syn);
	struct harness_result first, next;
	struct flow_entry entry;

	require_gateway();
	nsg_clear_flows();
	first = harness_run(&gw, HUB, &in);
	assert_int_equal(first.verdict, XDP_REDIRECT);
	assert_int_equal(first.trace.fast_path, FAST_PATH_NONE);
	next = harness_run(&gw, HUB, &in);
	assert_fast(&next, &first.out);
	assert_same_decision(&next.trace, &first.trace);
	/* The flow's TCP state still follows the packets: an answer from the responder
	 * establishes it, through the whole pipeline (first packet that way). */
	struct flow answer = tcp6("fd00:11:0:1::4", 8080, "fd00:10:0:1::4", 42000);
	struct frame back = frame_from(SPOKE1, &answer);

	back.data[14 + 40 + 13] = 0x12; /* SYN ACK */
	assert_int_equal(harness_run(&gw, SPOKE1, &back).verdict, XDP_REDIRECT);
	assert_int_equal(only_flow(&entry), 0);
	assert_int_equal(entry.tcp_state, TCP_FLOW_ESTABLISHED);
	/* FIN both ways on the fast path: the flow closes as it would without it. */
	in.data[14 + 40 + 13] = 0x11;
	back.data[14 + 40 + 13] = 0x11;
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_CACHED);
	assert_int_equal(harness_run(&gw, SPOKE1, &back).trace.fast_path, FAST_PATH_CACHED);
	assert_int_equal(only_flow(&entry), 0);
	assert_int_equal(entry.tcp_state, TCP_FLOW_CLOSING);
}

/* TTL: decremented on the fast path too; a spent one goes to the kernel untouched. */
static void fast_path_ttl(void **state)
{
	struct flow fl = hub_to_spoke1, expected_fl;
	struct frame in, expected;
	struct harness_result r;
	uint64_t expired_before;

	require_gateway();
	nsg_clear_flows();
	assert_int_equal(send_from(HUB, &fl).verdict, XDP_REDIRECT);
	fl.ttl = 2;
	expected_fl = fl;
	expected_fl.ttl = 1;
	in = frame_from(HUB, &fl);
	frame_build(&expected, SPOKE1_VM_MAC, SPOKE1_GW_MAC, &expected_fl);
	assert_fast((r = harness_run(&gw, HUB, &in), &r), &expected);

	fl.ttl = 1;
	in = frame_from(HUB, &fl);
	expired_before = harness_counter(gw.datapath_fd, COUNT_PASS_TTL_EXPIRED);
	r = harness_run(&gw, HUB, &in);
	assert_int_equal(r.verdict, XDP_PASS);
	assert_int_equal(r.trace.counter, COUNT_PASS_TTL_EXPIRED);
	assert_int_equal(r.trace.fast_path, FAST_PATH_LEASED);
	assert_int_equal(harness_counter(gw.datapath_fd, COUNT_PASS_TTL_EXPIRED), expired_before + 1);
	assert_int_equal(r.out.len, in.len);
	assert_memory_equal(r.out.data, in.data, in.len);
}

/* A neighbour's new MAC reaches the fast path within its refresh time (100 ms). */
static void fast_path_picks_up_new_neighbour_mac(void **state)
{
	struct flow fl = hub_to_spoke1, out_fl = hub_to_spoke1;
	struct frame expected;
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	assert_int_equal(send_from(HUB, &fl).verdict, XDP_REDIRECT);
	assert_int_equal(harness_shell("ip neigh replace 10.11.1.4 lladdr " NEW_SPOKE1_VM_MAC
				       " dev to-spoke1 nud permanent"), 0);
	usleep(250 * 1000);
	out_fl.ttl = 63;
	frame_build(&expected, NEW_SPOKE1_VM_MAC, SPOKE1_GW_MAC, &out_fl);
	for (int i = 0; i < 2; i++) {
		r = send_from(HUB, &fl);
		assert_fast(&r, &expected);
	}
	assert_int_equal(harness_shell("ip neigh replace 10.11.1.4 lladdr " SPOKE1_VM_MAC
				       " dev to-spoke1 nud permanent"), 0);
	usleep(250 * 1000);
	frame_build(&expected, SPOKE1_VM_MAC, SPOKE1_GW_MAC, &out_fl);
	r = send_from(HUB, &fl);
	assert_fast(&r, &expected);
}

/* An idle flow past its timeout is judged anew, not passed by the cache. */
static void fast_path_skips_expired_flow(void **state)
{
	struct flow fl = hub_to_spoke1;
	struct harness_result r;
	uint64_t expired;

	require_gateway();
	nsg_clear_flows();
	assert_int_equal(send_from(HUB, &fl).verdict, XDP_REDIRECT);
	assert_int_not_equal(send_from(HUB, &fl).trace.fast_path, FAST_PATH_NONE);
	assert_int_equal(nsg_age_flows(61), 1); /* udpIdleTimeoutSeconds is 60 */
	expired = flow_counter(FLOW_EXPIRED);
	r = send_from(HUB, &fl);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.fast_path, FAST_PATH_NONE);
	assert_int_equal(r.trace.flow, NSG_FLOW_EXPIRED);
	assert_int_equal(flow_counter(FLOW_EXPIRED), expired + 1);
	assert_int_not_equal(send_from(HUB, &fl).trace.fast_path, FAST_PATH_NONE);
}

/* Two packets of the flow from the hub in a row, both dropped by the whole pipeline with
 * nothing cached in between: the last one's result. */
static struct harness_result dropped_twice_by_the_pipeline(const struct flow *fl)
{
	struct harness_result r;

	for (int i = 0; i < 2; i++) {
		r = send_from(HUB, fl);
		assert_int_equal(r.verdict, XDP_DROP);
		assert_int_equal(r.trace.fast_path, FAST_PATH_NONE);
	}
	return r;
}

/* A reload starts the cache anew: the route the new config gives is the one taken. */
static void reload_invalidates_fast_path(void **state)
{
	struct flow fl = hub_to_spoke1;
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	assert_int_equal(send_from(HUB, &fl).verdict, XDP_REDIRECT);
	assert_int_not_equal(send_from(HUB, &fl).trace.fast_path, FAST_PATH_NONE);

	assert_int_equal(harness_reload(&gw), 0);
	r = send_from(HUB, &fl);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.fast_path, FAST_PATH_NONE);
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	assert_int_not_equal(send_from(HUB, &fl).trace.fast_path, FAST_PATH_NONE);

	/* Without the hub's peering to spoke1 the flow's packets are no longer forwarded. */
	assert_int_equal(harness_shell("sed -i '/hub-to-spoke1/d' %s", gw.config_path), 0);
	assert_int_equal(harness_reload(&gw), 0);
	r = dropped_twice_by_the_pipeline(&fl);
	assert_int_not_equal(r.trace.route_type, ROUTE_VNET_PEERING);

	assert_int_equal(write_config("Allow"), 0);
	assert_int_equal(harness_reload(&gw), 0);
}

/* A flushConnection NSG that now denies ends a flow the fast path carried. */
static void flush_connection_ends_cached_flow(void **state)
{
	struct flow fl = hub_to_spoke1;
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	assert_int_equal(send_from(HUB, &fl).verdict, XDP_REDIRECT);
	assert_int_not_equal(send_from(HUB, &fl).trace.fast_path, FAST_PATH_NONE);
	assert_int_equal(write_config("Deny"), 0);
	assert_int_equal(harness_reload(&gw), 0);
	r = dropped_twice_by_the_pipeline(&fl);
	assert_int_equal(r.trace.drop_reason, DROP_NSG_DENIED_INBOUND);
	assert_int_equal(write_config("Allow"), 0);
	assert_int_equal(harness_reload(&gw), 0);
	nsg_clear_flows();
}

/* Flows out to the Internet keep going through SNAT on every packet. */
static void snat_flows_take_the_whole_pipeline(void **state)
{
	struct flow fl = udp4("10.10.1.4", 43000, "198.51.100.2", 8080);
	struct harness_result first, next;

	require_gateway();
	nsg_clear_flows();
	first = send_from(HUB, &fl);
	assert_int_equal(first.trace.route_type, ROUTE_INTERNET);
	assert_int_equal(first.trace.fast_path, FAST_PATH_NONE);
	next = send_from(HUB, &fl);
	assert_int_equal(next.verdict, first.verdict);
	assert_int_equal(next.trace.route_type, ROUTE_INTERNET);
	assert_int_equal(next.trace.fast_path, FAST_PATH_NONE);
}

/* ---- checksums a sender left to offload (bpf/checksum.h) ---- */

static size_t l3_header_len(const struct flow *fl) { return fl->family == AF_INET ? 20 : 40; }

static uint8_t *l4_checksum_at(struct frame *f, const struct flow *fl)
{
	return f->data + 14 + l3_header_len(fl) + (fl->proto == IPPROTO_TCP ? 16 : 6);
}

/* Sets the TCP flags of a frame built from fl, with its full checksum recomputed. */
static void tcp_flags_set(struct frame *f, const struct flow *fl, uint8_t flags)
{
	uint8_t *ip = f->data + 14, *l4 = ip + l3_header_len(fl);
	size_t len = f->len - 14 - l3_header_len(fl);

	l4[13] = flags;
	if (fl->family == AF_INET)
		transport_checksum(l4, len, fl, ip + 12, ip + 16, 4);
	else
		transport_checksum(l4, len, fl, ip + 8, ip + 24, 16);
}

/* What a veth leaves in the field when the checksum is offloaded (CHECKSUM_PARTIAL): the
 * folded pseudo-header sum, not complemented. */
static void checksum_make_partial(struct frame *f, const struct flow *fl)
{
	uint8_t *ip = f->data + 14;
	uint32_t sum = fl->family == AF_INET ? checksum_add(0, ip + 12, 8) : checksum_add(0, ip + 8, 32);

	sum += fl->proto + (f->len - 14 - l3_header_len(fl));
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(l4_checksum_at(f, fl), (uint16_t)sum);
}

enum checksum_form { CHECKSUM_PARTIAL, CHECKSUM_FULL, CHECKSUM_CORRUPT, CHECKSUM_NONE };

/* The frame in the form a sender gave it, and what must leave by spoke1's veth: the
 * full checksum for a partial one, the very bytes it came with otherwise. */
static void checksum_frames(const struct flow *fl, uint8_t flags, enum checksum_form form,
			    struct frame *in, struct frame *expected)
{
	struct flow out = *fl;

	out.ttl = 63;
	*in = frame_from(HUB, fl);
	frame_build(expected, SPOKE1_VM_MAC, SPOKE1_GW_MAC, &out);
	if (fl->proto == IPPROTO_TCP) {
		tcp_flags_set(in, fl, flags);
		tcp_flags_set(expected, &out, flags);
	}
	switch (form) {
	case CHECKSUM_PARTIAL:
		checksum_make_partial(in, fl);
		break;
	case CHECKSUM_FULL:
		break;
	case CHECKSUM_CORRUPT: /* wrong, and not the pseudo-header sum either */
		l4_checksum_at(in, fl)[0] ^= 0x5a;
		l4_checksum_at(expected, &out)[0] ^= 0x5a;
		break;
	case CHECKSUM_NONE: /* IPv4 UDP without a checksum */
		put16(l4_checksum_at(in, fl), 0);
		put16(l4_checksum_at(expected, &out), 0);
		break;
	}
}

/* A flow from the hub to spoke1 through each path in turn: the first packet takes the
 * whole pipeline, the second the fast path's cache (which grants a lease), the third the
 * lease; every frame leaves with exactly the expected bytes. TCP opens first: a SYN, the
 * SYN ACK (whole pipeline, the other way), then ACKs. */
static void checksum_on_every_path(struct flow fl, enum checksum_form form)
{
	static const int paths[] = { FAST_PATH_NONE, FAST_PATH_CACHED, FAST_PATH_LEASED };
	struct frame in, expected;
	struct harness_result r;

	nsg_clear_flows();
	for (int i = 0; i < 3; i++) {
		checksum_frames(&fl, i ? 0x10 : 0x02, form, &in, &expected);
		r = harness_run(&gw, HUB, &in);
		assert_int_equal(r.verdict, XDP_REDIRECT);
		assert_int_equal(r.trace.fast_path, paths[i]);
		assert_int_equal(r.out.len, expected.len);
		assert_memory_equal(r.out.data, expected.data, expected.len);
		if (i == 0 && fl.proto == IPPROTO_TCP) {
			struct flow answer = fl;
			struct frame back;

			answer.src = fl.dst, answer.dst = fl.src;
			answer.sport = fl.dport, answer.dport = fl.sport;
			answer.payload = 0;
			back = frame_from(SPOKE1, &answer);
			tcp_flags_set(&back, &answer, 0x12);
			assert_int_equal(harness_run(&gw, SPOKE1, &back).verdict, XDP_REDIRECT);
		}
	}
}

static struct flow flow_of(int family, uint8_t proto, size_t payload)
{
	return (struct flow){ .family = family, .proto = proto, .sport = 41500, .dport = 8080,
			      .src = family == AF_INET ? "10.10.1.4" : "fd00:10:0:1::4",
			      .dst = family == AF_INET ? "10.11.1.4" : "fd00:11:0:1::4",
			      .ip_id = 0x1357, .payload = payload };
}

/* Sizes: a short segment, and a long odd one (512-byte chunks, every tail, the odd byte). */
static const size_t checksum_payloads[] = { 17, 1201 };

/* A VM's veth with transmit checksum offload on (the kernel's default) leaves the
 * checksum to the next device; a redirected frame has none, so the gateway completes it:
 * peering, the fast path's cache and its lease, IPv4 and IPv6, TCP and UDP. */
static void partial_checksums_are_completed_on_every_path(void **state)
{
	static const int families[] = { AF_INET, AF_INET6 };
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP };

	require_gateway();
	for (int f = 0; f < 2; f++)
		for (int p = 0; p < 2; p++)
			for (int s = 0; s < 2; s++)
				checksum_on_every_path(flow_of(families[f], protos[p], checksum_payloads[s]),
						       CHECKSUM_PARTIAL);
}

/* Frames from a real wire carry full checksums: left exactly as they came, a wrong one
 * too (the receiver judges it), and an IPv4 UDP checksum of zero stays zero. */
static void full_checksums_are_left_as_they_came_on_every_path(void **state)
{
	static const int families[] = { AF_INET, AF_INET6 };
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP };

	require_gateway();
	for (int f = 0; f < 2; f++)
		for (int p = 0; p < 2; p++) {
			checksum_on_every_path(flow_of(families[f], protos[p], 1201), CHECKSUM_FULL);
			checksum_on_every_path(flow_of(families[f], protos[p], 17), CHECKSUM_CORRUPT);
		}
	checksum_on_every_path(flow_of(AF_INET, IPPROTO_UDP, 1201), CHECKSUM_NONE);
}

/* A frame larger than the egress MTU (what GRO or a sender's GSO coalesces, handed to XDP
 * by a veth in generic mode) goes to the kernel under a lease too, which segments it or
 * answers as for any too-big packet: the lease skips the FIB lookup that judges size. */
static void frame_larger_than_the_egress_mtu_goes_to_the_kernel_under_a_lease(void **state)
{
	struct flow fl = flow_of(AF_INET, IPPROTO_UDP, 17), big = flow_of(AF_INET, IPPROTO_UDP, 1540);
	struct frame in = frame_from(HUB, &fl), large = frame_from(HUB, &big);
	uint64_t too_big = harness_counter(gw.datapath_fd, COUNT_PASS_FRAG_NEEDED);
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	for (int i = 0; i < 3; i++)
		assert_int_equal(harness_run(&gw, HUB, &in).verdict, XDP_REDIRECT);
	checksum_make_partial(&large, &big);
	r = harness_run(&gw, HUB, &large);
	assert_int_equal(r.verdict, XDP_PASS);
	assert_int_equal(r.trace.fast_path, FAST_PATH_LEASED);
	assert_int_equal(r.trace.counter, COUNT_PASS_FRAG_NEEDED);
	assert_int_equal(harness_counter(gw.datapath_fd, COUNT_PASS_FRAG_NEEDED), too_big + 1);
	assert_memory_equal(r.out.data, large.data, large.len); /* untouched, for the kernel */
	assert_int_equal(harness_run(&gw, HUB, &in).trace.fast_path, FAST_PATH_LEASED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fast_path_after_first_packet_both_ways),
		cmocka_unit_test(fast_path_ipv6_tcp),
		cmocka_unit_test(fast_path_ttl),
		cmocka_unit_test(lease_counts_reach_the_flow),
		cmocka_unit_test(lease_stamped_ahead_holds_only_within_clock_skew),
		cmocka_unit_test(leased_frames_meet_the_parsers_checks),
		cmocka_unit_test(tcp_control_packets_skip_the_lease),
		cmocka_unit_test(fast_path_picks_up_new_neighbour_mac),
		cmocka_unit_test(fast_path_skips_expired_flow),
		cmocka_unit_test(reload_invalidates_fast_path),
		cmocka_unit_test(flush_connection_ends_cached_flow),
		cmocka_unit_test(snat_flows_take_the_whole_pipeline),
		cmocka_unit_test(partial_checksums_are_completed_on_every_path),
		cmocka_unit_test(full_checksums_are_left_as_they_came_on_every_path),
		cmocka_unit_test(frame_larger_than_the_egress_mtu_goes_to_the_kernel_under_a_lease),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

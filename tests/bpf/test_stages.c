/* Stages of the XDP pipeline, each reached through the loaded object with maps written
 * from a config by the loader's plan writers (tests/bpf/bpf_harness.h): the NSG stage
 * (priorities, a flow and its reply), a route into a peered VNet (the redirect's egress),
 * malformed frames. No `up`, no topology.
 *
 *   hub    10.10.0.0/16 fd00:10::/48  subnet web 10.10.1.0/24 (NSG web-nsg)  to-hub
 *   spoke1 10.11.0.0/16 fd00:11::/48  subnet default 10.11.1.0/24            to-spoke1
 * peered both ways; uplink0 faces the Internet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "bpf/bpf_harness.h"

static const struct bpf_link_spec links[] = {
	{ "to-hub", HUB_GW_MAC, HUB_VM_MAC, "10.10.0.1/16 fd00:10::1/48" },
	{ "to-spoke1", SPOKE1_GW_MAC, SPOKE1_VM_MAC, "10.11.0.1/16 fd00:11::1/48" },
	{ "uplink0", UPLINK_GW_MAC, UPLINK_PEER_MAC, "198.51.100.1/24" },
};

static const char neighbours[] =
	"10.10.1.4 " HUB_VM_MAC " to-hub\n"
	"10.10.1.5 " HUB_VM_MAC " to-hub\n"
	"10.11.1.4 " SPOKE1_VM_MAC " to-spoke1\n"
	"10.11.1.5 " SPOKE1_VM_MAC " to-spoke1\n";

/* web-nsg: from spoke1 to port 80 only, 10.11.1.5 refused by an earlier rule that a later,
 * broader allow does not override; the web subnet starts nothing toward spoke1. */
static const char config_text[] =
"{\"gateway\": {\"name\": \"bpftier\", \"interfaces\": [\n"
"  {\"name\": \"to-hub\", \"virtualNetwork\": \"hub\"},\n"
"  {\"name\": \"to-spoke1\", \"virtualNetwork\": \"spoke1\"},\n"
"  {\"name\": \"uplink0\", \"role\": \"uplink\"}]},\n"
" \"resources\": [\n"
"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"hub\", \"properties\": {\n"
"   \"addressSpace\": {\"addressPrefixes\": [\"10.10.0.0/16\", \"fd00:10::/48\"]},\n"
"   \"subnets\": [{\"name\": \"web\", \"properties\": {\"addressPrefixes\": [\"10.10.1.0/24\", \"fd00:10:0:1::/64\"],\n"
"     \"networkSecurityGroup\": {\"id\": \"web-nsg\"}}}],\n"
"   \"virtualNetworkPeerings\": [{\"name\": \"hub-to-spoke1\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"spoke1\"}, \"allowVirtualNetworkAccess\": true}}]}},\n"
"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"spoke1\", \"properties\": {\n"
"   \"addressSpace\": {\"addressPrefixes\": [\"10.11.0.0/16\", \"fd00:11::/48\"]},\n"
"   \"subnets\": [{\"name\": \"default\", \"properties\": {\"addressPrefixes\": [\"10.11.1.0/24\", \"fd00:11:0:1::/64\"]}}],\n"
"   \"virtualNetworkPeerings\": [{\"name\": \"spoke1-to-hub\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"hub\"}, \"allowVirtualNetworkAccess\": true}}]}},\n"
"  {\"type\": \"Microsoft.Network/networkSecurityGroups\", \"name\": \"web-nsg\", \"properties\": {\"securityRules\": [\n"
"   {\"name\": \"AllowSpoke1Web\", \"properties\": {\"priority\": 200, \"direction\": \"Inbound\", \"access\": \"Allow\", \"protocol\": \"Tcp\",\n"
"     \"sourceAddressPrefix\": \"10.11.0.0/16\", \"sourcePortRange\": \"*\", \"destinationAddressPrefix\": \"*\", \"destinationPortRange\": \"80\"}},\n"
"   {\"name\": \"DenyOneHost\", \"properties\": {\"priority\": 100, \"direction\": \"Inbound\", \"access\": \"Deny\", \"protocol\": \"*\",\n"
"     \"sourceAddressPrefix\": \"10.11.1.5\", \"sourcePortRange\": \"*\", \"destinationAddressPrefix\": \"*\", \"destinationPortRange\": \"*\"}},\n"
"   {\"name\": \"DenyRestIn\", \"properties\": {\"priority\": 300, \"direction\": \"Inbound\", \"access\": \"Deny\", \"protocol\": \"*\",\n"
"     \"sourceAddressPrefix\": \"*\", \"sourcePortRange\": \"*\", \"destinationAddressPrefix\": \"*\", \"destinationPortRange\": \"*\"}},\n"
"   {\"name\": \"DenySpoke1Out\", \"properties\": {\"priority\": 100, \"direction\": \"Outbound\", \"access\": \"Deny\", \"protocol\": \"*\",\n"
"     \"sourceAddressPrefix\": \"*\", \"sourcePortRange\": \"*\", \"destinationAddressPrefix\": \"10.11.0.0/16\", \"destinationPortRange\": \"*\"}}]}}\n"
" ]}\n";

static struct bpf_harness h;

static int setup(void **state)
{
	return bpf_harness_load(&h, links, sizeof(links) / sizeof(*links), neighbours, config_text);
}

static int teardown(void **state)
{
	bpf_harness_unload(&h);
	return 0;
}

static struct flow tcp4(const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	return (struct flow){ .family = AF_INET, .src = src, .dst = dst, .proto = IPPROTO_TCP,
			      .sport = sport, .dport = dport, .payload = 8 };
}

/* A frame from the VM side of `iface`, TCP flags set when given. */
static struct bpf_result send_from(const char *iface, struct flow fl, uint8_t tcp_flags)
{
	bool hub = !strcmp(iface, "to-hub");
	struct frame in;
	size_t ip = frame_build(&in, hub ? HUB_GW_MAC : SPOKE1_GW_MAC,
				hub ? HUB_VM_MAC : SPOKE1_VM_MAC, &fl);

	if (tcp_flags)
		in.data[ip + 20 + 13] = tcp_flags;
	return bpf_harness_run(&h, iface, &in);
}

static uint32_t rule_id_of(const char *name)
{
	for (size_t i = 0; i < h.nsg.n_rules; i++)
		if (!strcmp(h.nsg.rules[i].rule->name, name))
			return h.nsg.rules[i].slot.rule_id;
	fail_msg("no rule %s in the plan", name);
	return NSG_NONE;
}

static void assert_stage_rule(const struct bpf_result *r, int stage, const char *rule)
{
	assert_int_not_equal(r->trace.nsg[stage].nsg_id, NSG_NONE);
	assert_int_equal(r->trace.nsg[stage].rule_id, rule_id_of(rule));
}

static void nsg_earlier_deny_wins_over_a_broader_later_allow(void **state)
{
	struct bpf_result r;

	bpf_harness_require(&h);
	r = send_from("to-spoke1", tcp4("10.11.1.5", 40000, "10.10.1.4", 80), 0);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(r.trace.drop_reason, DROP_NSG_DENIED_INBOUND);
	assert_int_equal(r.trace.flow, NSG_FLOW_DENIED);
	assert_stage_rule(&r, NSG_STAGE_DESTINATION_SUBNET, "DenyOneHost");
	/* port 81 is no rule's but the catch-all deny's */
	r = send_from("to-spoke1", tcp4("10.11.1.4", 40000, "10.10.1.4", 81), 0);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_stage_rule(&r, NSG_STAGE_DESTINATION_SUBNET, "DenyRestIn");
}

/* spoke1 -> hub over the peering: out to-hub, to the VM's MAC, TTL one lower, counted on
 * the peering. */
static void peering_route_redirects_out_the_peer_vnets_interface(void **state)
{
	uint64_t before;
	struct bpf_result r;
	uint8_t vm[6], gw[6];

	bpf_harness_require(&h);
	before = harness_counter(h.peerings_fd, 0);
	r = send_from("to-spoke1", tcp4("10.11.1.4", 40001, "10.10.1.4", 80), 0);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.route_type, ROUTE_VNET_PEERING);
	assert_int_equal(r.trace.egress_ifindex, if_nametoindex("to-hub"));
	mac_parse(HUB_VM_MAC, vm);
	mac_parse(HUB_GW_MAC, gw);
	assert_memory_equal(r.out.data, vm, 6);
	assert_memory_equal(r.out.data + 6, gw, 6);
	assert_int_equal(r.out.data[14 + 8], 63);
	assert_int_equal(harness_counter(h.peerings_fd, r.trace.peering), before + 1);
}

/* The hub's web subnet starts nothing toward spoke1, but answers what spoke1 opened: the
 * first packet makes the flow, the reply finds it past DenySpoke1Out. */
static void nsg_allowed_flow_lets_its_reply_past_a_denying_outbound_rule(void **state)
{
	struct bpf_result r;

	bpf_harness_require(&h);
	r = send_from("to-hub", tcp4("10.10.1.4", 80, "10.11.1.4", 40002), 0);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(r.trace.drop_reason, DROP_NSG_DENIED_OUTBOUND);
	assert_stage_rule(&r, NSG_STAGE_SOURCE_SUBNET, "DenySpoke1Out");

	r = send_from("to-spoke1", tcp4("10.11.1.4", 40002, "10.10.1.4", 80), 0);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.flow, NSG_FLOW_NEW);
	assert_stage_rule(&r, NSG_STAGE_DESTINATION_SUBNET, "AllowSpoke1Web");

	r = send_from("to-hub", tcp4("10.10.1.4", 80, "10.11.1.4", 40002), 0x12 /* SYN-ACK */);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	assert_int_equal(r.trace.egress_ifindex, if_nametoindex("to-spoke1"));
}

static void truncated_ipv4_header_is_dropped_as_malformed(void **state)
{
	struct flow fl = tcp4("10.11.1.4", 40003, "10.10.1.4", 80);
	uint64_t before;
	struct bpf_result r;
	struct frame in;

	bpf_harness_require(&h);
	before = harness_counter(h.drops_fd, DROP_MALFORMED_IPV4);
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	in.len = 14 + 12; /* the frame ends inside the IPv4 header */
	r = bpf_harness_run(&h, "to-spoke1", &in);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(r.trace.drop_reason, DROP_MALFORMED_IPV4);
	assert_int_equal(harness_counter(h.drops_fd, DROP_MALFORMED_IPV4), before + 1);
}

static void ipv4_header_length_beyond_the_frame_is_dropped_as_malformed(void **state)
{
	struct flow fl = tcp4("10.11.1.4", 40004, "10.10.1.4", 80);
	struct bpf_result r;
	struct frame in;
	size_t ip = frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);

	bpf_harness_require(&h);
	put16(in.data + ip + 2, (uint16_t)(in.len - ip + 100)); /* total length past the end */
	ipv4_header_checksum(in.data + ip);
	r = bpf_harness_run(&h, "to-spoke1", &in);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(r.trace.drop_reason, DROP_MALFORMED_IPV4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nsg_earlier_deny_wins_over_a_broader_later_allow),
		cmocka_unit_test(peering_route_redirects_out_the_peer_vnets_interface),
		cmocka_unit_test(nsg_allowed_flow_lets_its_reply_past_a_denying_outbound_rule),
		cmocka_unit_test(truncated_ipv4_header_is_dropped_as_malformed),
		cmocka_unit_test(ipv4_header_length_beyond_the_frame_is_dropped_as_malformed),
	};

	return cmocka_run_group_tests_name("bpf stages", tests, setup, teardown);
}

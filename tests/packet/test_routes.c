/* Packet tests of user-defined routes: a gateway on Azure's hub-and-spoke firewall shape
 * (tests/data/config/hub-firewall.json), the hub VM at 10.10.1.4 the firewall (its NIC has
 * enableIPForwarding) and the spokes' subnets routing 0.0.0.0/0 to it. Frames run through
 * the loaded program with BPF_PROG_TEST_RUN; each next hop type's verdict, trace and frame
 * are checked. */
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <cmocka.h>
#include "vnet_xdp.h"
#include "packet/gateway_harness.h"

#define FIREWALL_CONFIG "tests/data/config/hub-firewall.json"
#define RENAMED "sed \"s/\\\"name\\\": \\\"hubfw\\\"/\\\"name\\\": \\\"$GATEWAY\\\"/\" " FIREWALL_CONFIG

static struct gateway_harness gw = { .prefix = "vxrt", .gateway = "rt",
				     .config_command = RENAMED };

static int setup_gateway(void **state) { return harness_up(&gw); }
static int teardown_gateway(void **state) { harness_down(&gw); return 0; }

static struct flow udp4(const char *src, const char *dst)
{
	return (struct flow){ .family = AF_INET, .src = src, .dst = dst, .proto = IPPROTO_UDP,
			      .sport = 40000, .dport = 53, .ip_id = 0x4242, .payload = 32 };
}

/* The config with sed's edits, reloaded; `edits` NULL: the config as written. */
static void reload_with(const char *edits)
{
	assert_int_equal(harness_shell("GATEWAY=%s bash -c '%s' | sed -e 's/^//' %s%s > %s.new && mv %s.new %s",
				       gw.name, RENAMED, edits ? "-e " : "", edits ? edits : "",
				       gw.config_path, gw.config_path, gw.config_path), 0);
	assert_int_equal(harness_reload(&gw), 0);
}

static struct harness_result assert_forwarded(const struct frame *in, int ingress, int egress,
					      const struct frame *expected, uint32_t route_type)
{
	struct harness_result r = harness_run(&gw, ingress, in);

	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.route_type, route_type);
	assert_int_equal(r.trace.egress_ifindex, gw.ifaces[egress].ifindex);
	assert_int_equal(r.out.len, expected->len);
	assert_memory_equal(r.out.data, expected->data, expected->len);
	return r;
}

/* spoke1 -> spoke2 leaves to the firewall's MAC on the hub, in spoke1's subnet's scope
 * (the first packet's trace: later ones take the fast path, which looks nothing up). */
static void virtual_appliance_route_sends_spoke_traffic_to_the_nva(void **state)
{
	struct flow fl = udp4("10.11.1.4", "10.12.1.4"), out_fl = fl;
	struct frame in, expected;
	struct harness_result r;

	harness_require(&gw);
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	out_fl.ttl = 63;
	frame_build(&expected, HUB_VM_MAC, HUB_GW_MAC, &out_fl);
	r = assert_forwarded(&in, SPOKE1, HUB, &expected, ROUTE_VIRTUAL_APPLIANCE);
	assert_int_equal(r.trace.route_scope & SUBNET_ROUTE_SCOPE, SUBNET_ROUTE_SCOPE);
}

/* Forced tunnelling: the subnet's 0.0.0.0/0 beats the system route to the Internet. */
static void forced_tunnelling_sends_internet_traffic_to_the_nva(void **state)
{
	struct flow fl = udp4("10.12.1.4", "198.51.100.2"), out_fl = fl;
	struct frame in, expected;

	harness_require(&gw);
	frame_build(&in, SPOKE2_GW_MAC, SPOKE2_VM_MAC, &fl);
	out_fl.ttl = 63;
	frame_build(&expected, HUB_VM_MAC, HUB_GW_MAC, &out_fl);
	assert_forwarded(&in, SPOKE2, HUB, &expected, ROUTE_VIRTUAL_APPLIANCE);
}

/* The firewall hands spoke1's packet on: a source outside the hub, accepted from the
 * forwarding NIC's interface and let into spoke2, whose peering allows forwarded traffic. */
static void nva_forwarded_traffic_enters_the_peer_that_allows_it(void **state)
{
	struct flow fl = udp4("10.11.1.4", "10.12.1.4"), out_fl = fl;
	struct frame in, expected;

	harness_require(&gw);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	out_fl.ttl = 63;
	frame_build(&expected, SPOKE2_VM_MAC, SPOKE2_GW_MAC, &out_fl);
	assert_forwarded(&in, HUB, SPOKE2, &expected, ROUTE_VNET_PEERING);
}

/* A more specific user route with next hop None drops, past the user's 0.0.0.0/0. */
static void user_route_none_drops(void **state)
{
	struct flow fl = udp4("10.11.1.4", "10.12.1.5");
	struct frame in;

	harness_require(&gw);
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	harness_assert_dropped(&gw, &in, SPOKE1, DROP_ROUTE_NONE);
}

/* A VM of a spoke still may not take an address that is not in its VNet. */
static void spoke_source_outside_its_vnet_is_still_spoofed(void **state)
{
	struct flow fl = udp4("10.10.1.9", "10.12.1.4");
	struct frame in;

	harness_require(&gw);
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	harness_assert_dropped(&gw, &in, SPOKE1, DROP_SPOOFED_SOURCE);
}

/* spoke2's side of its peering refuses forwarded traffic: what the firewall forwards from
 * spoke1 drops with its own reason; the hub's own traffic still enters. */
static void forwarded_traffic_refused_where_the_peer_does_not_allow_it(void **state)
{
	struct flow forwarded = udp4("10.11.1.4", "10.12.1.4"), own = udp4("10.10.1.4", "10.12.1.4");
	struct frame in, expected;

	harness_require(&gw);
	reload_with("'/spoke2-to-hub/,/allowForwardedTraffic/ s/\"allowForwardedTraffic\": true/\"allowForwardedTraffic\": false/'");
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &forwarded);
	harness_assert_dropped(&gw, &in, HUB, DROP_FORWARDED_NOT_ALLOWED);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &own);
	own.ttl = 63;
	frame_build(&expected, SPOKE2_VM_MAC, SPOKE2_GW_MAC, &own);
	assert_forwarded(&in, HUB, SPOKE2, &expected, ROUTE_VNET_PEERING);
	reload_with(NULL);
}

/* An appliance in no VNet spoke2 reaches makes its route Invalid: dropped as such. An
 * appliance whose MAC the neighbour table lacks: dropped, never left to the kernel,
 * which would route the packet past the appliance. */
static void invalid_and_unresolved_appliances_drop(void **state)
{
	struct flow to_internet = udp4("10.12.1.4", "198.51.100.2");
	struct flow to_spoke2 = udp4("10.11.1.4", "10.12.1.4");
	struct frame in;

	harness_require(&gw);
	reload_with("'/\"name\": \"rt-spoke2\"/,/nextHopIpAddress/ s/10.10.1.4/10.99.0.4/' "
		    "-e '/\"name\": \"rt-spoke1\"/,/nextHopIpAddress/ s/10.10.1.4/10.10.1.9/'");
	frame_build(&in, SPOKE2_GW_MAC, SPOKE2_VM_MAC, &to_internet);
	harness_assert_dropped(&gw, &in, SPOKE2, DROP_ROUTE_INVALID);
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &to_spoke2);
	harness_assert_dropped(&gw, &in, SPOKE1, DROP_NEXT_HOP_UNRESOLVED);
	reload_with(NULL);
}

/* The config with a jq filter applied, reloaded (jq reads the filter from a file: no
 * quoting through the shells). */
static void reload_with_jq(const char *filter)
{
	char path[] = "/tmp/vnet-xdp-jq-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	assert_non_null(f);
	fputs(filter, f);
	fclose(f);
	assert_int_equal(harness_shell("GATEWAY=%s bash -c '%s' | jq -f %s > %s.new && mv %s.new %s",
				       gw.name, RENAMED, path, gw.config_path, gw.config_path,
				       gw.config_path), 0);
	unlink(path);
	assert_int_equal(harness_reload(&gw), 0);
}

/* An NSG on NIC nic, with one rule (JSON properties of a security rule). */
#define NSG_ON_NIC(nic, rule)                                                               \
	".resources += [{\"type\": \"Microsoft.Network/networkSecurityGroups\", "           \
	"\"apiVersion\": \"2023-04-01\", \"name\": \"nsg-test\", \"location\": \"westeurope\", " \
	"\"properties\": {\"securityRules\": [{\"name\": \"the-rule\", \"properties\": " rule "}]}}]" \
	" | (.resources[] | select(.name == \"" nic "\") | .properties.networkSecurityGroup) = " \
	"{\"id\": \"[resourceId('Microsoft.Network/networkSecurityGroups', 'nsg-test')]\"}"

#define DENY_RULE(direction, source, destination)                                           \
	"{\"priority\": 100, \"direction\": \"" direction "\", \"access\": \"Deny\", "          \
	"\"protocol\": \"*\", \"sourceAddressPrefix\": \"" source "\", \"sourcePortRange\": \"*\", " \
	"\"destinationAddressPrefix\": \"" destination "\", \"destinationPortRange\": \"*\"}"

static struct flow udp4_ports(const char *src, const char *dst, uint16_t sport, uint16_t dport)
{
	struct flow fl = udp4(src, dst);

	fl.sport = sport;
	fl.dport = dport;
	return fl;
}

/* spoke1's VM (its NIC known by its MAC) takes its neighbour's address: dropped, not
 * judged as the neighbour. The neighbour's own frame with that address passes. */
static void vm_spoofing_its_neighbours_address_is_dropped(void **state)
{
	struct flow spoofed = udp4_ports("10.11.1.5", "10.12.1.4", 40101, 53), out_fl = spoofed;
	struct frame in, expected;

	harness_require(&gw);
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &spoofed);
	harness_assert_dropped(&gw, &in, SPOKE1, DROP_NIC_SPOOFED_SOURCE);
	frame_build(&in, SPOKE1_GW_MAC, "02:00:00:00:11:05", &spoofed);
	out_fl.ttl = 63;
	frame_build(&expected, HUB_VM_MAC, HUB_GW_MAC, &out_fl);
	assert_forwarded(&in, SPOKE1, HUB, &expected, ROUTE_VIRTUAL_APPLIANCE);
}

/* Every NIC behind spoke1's interface has a MAC: a frame from any other MAC is no NIC's,
 * even with an address of the subnet. */
static void frame_from_a_mac_no_nic_has_is_dropped(void **state)
{
	struct flow fl = udp4_ports("10.11.1.4", "10.12.1.4", 40102, 53);
	struct frame in;

	harness_require(&gw);
	frame_build(&in, SPOKE1_GW_MAC, "02:00:00:00:11:99", &fl);
	harness_assert_dropped(&gw, &in, SPOKE1, DROP_NIC_SPOOFED_SOURCE);
}

/* With its MAC in the config the firewall's NIC is known by it: forwarding, it may send
 * any source; a frame of another MAC behind the hub's interface is no NIC's. */
static void forwarding_nic_known_by_its_mac_sends_any_source(void **state)
{
	struct flow fl = udp4_ports("10.11.1.4", "10.12.1.4", 40103, 53), out_fl = fl;
	struct frame in, expected;

	harness_require(&gw);
	reload_with_jq("(.resources[] | select(.name == \"firewall-nic\") | .properties.macAddress) = \"02-00-00-00-10-04\"");
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	out_fl.ttl = 63;
	frame_build(&expected, SPOKE2_VM_MAC, SPOKE2_GW_MAC, &out_fl);
	assert_forwarded(&in, HUB, SPOKE2, &expected, ROUTE_VNET_PEERING);
	frame_build(&in, HUB_GW_MAC, "02:00:00:00:10:05", &fl);
	harness_assert_dropped(&gw, &in, HUB, DROP_NIC_SPOOFED_SOURCE);
	reload_with(NULL);
}

/* The leg into the appliance meets the appliance's inbound NSGs: a rule of the
 * firewall NIC's NSG that denies spoke1 stops spoke1 -> spoke2 there; spoke2's traffic,
 * which it does not name, still reaches the firewall. */
static void nva_inbound_nsg_judges_the_leg_into_the_appliance(void **state)
{
	struct flow from_spoke1 = udp4_ports("10.11.1.4", "10.12.1.4", 40104, 53);
	struct flow from_spoke2 = udp4_ports("10.12.1.4", "10.11.1.4", 40105, 53), out_fl = from_spoke2;
	struct frame in, expected;
	struct harness_result r;

	harness_require(&gw);
	reload_with_jq(NSG_ON_NIC("firewall-nic", DENY_RULE("Inbound", "10.11.0.0/16", "*")));
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &from_spoke1);
	harness_assert_dropped(&gw, &in, SPOKE1, DROP_NSG_DENIED_INBOUND);
	r = harness_run(&gw, SPOKE1, &in);
	assert_int_equal(r.trace.nsg[NSG_STAGE_DESTINATION_NIC].priority, 100);
	frame_build(&in, SPOKE2_GW_MAC, SPOKE2_VM_MAC, &from_spoke2);
	out_fl.ttl = 63;
	frame_build(&expected, HUB_VM_MAC, HUB_GW_MAC, &out_fl);
	assert_forwarded(&in, SPOKE2, HUB, &expected, ROUTE_VIRTUAL_APPLIANCE);
	reload_with(NULL);
}

/* What the appliance forwards meets its outbound NSGs (its MAC unknown: the one
 * forwarding NIC behind the hub's interface). */
static void nva_outbound_nsg_judges_what_it_forwards(void **state)
{
	struct flow fl = udp4_ports("10.11.1.4", "10.12.1.4", 40106, 53);
	struct frame in;

	harness_require(&gw);
	reload_with_jq(NSG_ON_NIC("firewall-nic", DENY_RULE("Outbound", "*", "10.12.0.0/16")));
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	harness_assert_dropped(&gw, &in, HUB, DROP_NSG_DENIED_OUTBOUND);
	reload_with(NULL);
}

/* spoke1 -> firewall -> spoke2 and the replies back: each leg's flow is found by the
 * reply's leg in the other direction, so replies pass spoke1's NSG that denies spoke2's
 * new flows, and a flow spoke2 opens is denied. */
static void replies_through_the_nva_follow_each_legs_flow(void **state)
{
	struct flow out = udp4_ports("10.11.1.4", "10.12.1.4", 40107, 53);
	struct flow back = udp4_ports("10.12.1.4", "10.11.1.4", 53, 40107), back_fl = back;
	struct flow opened = udp4_ports("10.12.1.4", "10.11.1.4", 40108, 53);
	struct frame in, expected;

	harness_require(&gw);
	reload_with_jq(NSG_ON_NIC("spoke1-vm-nic", DENY_RULE("Inbound", "10.12.0.0/16", "*")));
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &out);
	assert_int_equal(harness_run(&gw, SPOKE1, &in).verdict, XDP_REDIRECT);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &out);
	assert_int_equal(harness_run(&gw, HUB, &in).verdict, XDP_REDIRECT);
	frame_build(&in, SPOKE2_GW_MAC, SPOKE2_VM_MAC, &back);
	assert_int_equal(harness_run(&gw, SPOKE2, &in).verdict, XDP_REDIRECT);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &back);
	back_fl.ttl = 63;
	frame_build(&expected, SPOKE1_VM_MAC, SPOKE1_GW_MAC, &back_fl);
	assert_forwarded(&in, HUB, SPOKE1, &expected, ROUTE_VNET_PEERING);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &opened);
	harness_assert_dropped(&gw, &in, HUB, DROP_NSG_DENIED_INBOUND);
	reload_with(NULL);
}

/* The hub gets a VPN gateway (no connection: no site), spoke1 uses it; both spokes' tables
 * send 198.51.100.0/24 to the VirtualNetworkGateway. */
static const char gateway_routes_filter[] =
	"(.resources[] | select(.name == \"hub\") | .properties.subnets) += "
	"  [{\"name\": \"GatewaySubnet\", \"properties\": {\"addressPrefix\": \"10.10.255.0/27\"}}]\n"
	"| .resources += [{\"type\": \"Microsoft.Network/virtualNetworkGateways\", \"name\": \"hub-vpngw\","
	"  \"properties\": {\"ipConfigurations\": [{\"name\": \"c\", \"properties\": "
	"  {\"subnet\": {\"id\": \"hub/GatewaySubnet\"}}}]}}]\n"
	"| (.resources[] | select(.name == \"hub\") | .properties.virtualNetworkPeerings[] "
	"  | select(.name == \"hub-to-spoke1\") | .properties.allowGatewayTransit) = true\n"
	"| (.resources[] | select(.name == \"spoke1\") | .properties.virtualNetworkPeerings[0]"
	"  .properties.useRemoteGateways) = true\n"
	"| (.resources[] | select(.type == \"Microsoft.Network/routeTables\") | .properties.routes) += "
	"  [{\"name\": \"to-gateway\", \"properties\": {\"addressPrefix\": \"198.51.100.0/24\","
	"    \"nextHopType\": \"VirtualNetworkGateway\"}}]\n";

/* A user route to the VNet gateway for a prefix no connection's site holds: Azure hands
 * it to the gateway, which drops it (gateway_no_route); where the VNet has no gateway to
 * use the route is Invalid. Neither reaches the firewall the 0.0.0.0/0 route names. */
static void gateway_route_without_a_site_drops_at_the_gateway(void **state)
{
	struct flow from_spoke1 = udp4("10.11.1.4", "198.51.100.7");
	struct flow from_spoke2 = udp4("10.12.1.4", "198.51.100.7");
	struct frame in;

	harness_require(&gw);
	reload_with_jq(gateway_routes_filter);
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &from_spoke1);
	harness_assert_dropped(&gw, &in, SPOKE1, DROP_GATEWAY_NO_ROUTE);
	frame_build(&in, SPOKE2_GW_MAC, SPOKE2_VM_MAC, &from_spoke2);
	harness_assert_dropped(&gw, &in, SPOKE2, DROP_ROUTE_INVALID);
	reload_with(NULL);
}

/* spoke2's side of its peering refuses access (allowVirtualNetworkAccess false): what the
 * hub opens into spoke2 drops (peering_access_refused); spoke2 still opens flows into the
 * hub, and their replies enter spoke2. */
static void peering_access_refused_into_the_refusing_side_only(void **state)
{
	struct flow into_spoke2 = udp4("10.10.1.4", "10.12.1.4");
	struct flow from_spoke2 = udp4("10.12.1.4", "10.10.1.4"), reply, out_fl;
	struct frame in, expected;

	harness_require(&gw);
	reload_with("'/spoke2-to-hub/,/allowVirtualNetworkAccess/ s/\"allowVirtualNetworkAccess\": true/\"allowVirtualNetworkAccess\": false/'");
	into_spoke2.sport = 41001;
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &into_spoke2);
	harness_assert_dropped(&gw, &in, HUB, DROP_PEERING_ACCESS_REFUSED);

	from_spoke2.sport = 41002;
	out_fl = from_spoke2;
	out_fl.ttl = 63;
	frame_build(&in, SPOKE2_GW_MAC, SPOKE2_VM_MAC, &from_spoke2);
	frame_build(&expected, HUB_VM_MAC, HUB_GW_MAC, &out_fl);
	assert_forwarded(&in, SPOKE2, HUB, &expected, ROUTE_VNET_PEERING);

	reply = from_spoke2;
	reply.src = from_spoke2.dst;
	reply.dst = from_spoke2.src;
	reply.sport = from_spoke2.dport;
	reply.dport = from_spoke2.sport;
	out_fl = reply;
	out_fl.ttl = 63;
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &reply);
	frame_build(&expected, SPOKE2_VM_MAC, SPOKE2_GW_MAC, &out_fl);
	assert_forwarded(&in, HUB, SPOKE2, &expected, ROUTE_VNET_PEERING);

	/* An ICMP error about the flow spoke2 opened enters too; one about no flow does not. */
	{
		struct frame quoted, err;
		struct harness_result r;

		frame_build(&quoted, SPOKE2_GW_MAC, SPOKE2_VM_MAC, &from_spoke2);
		frame_icmp_error(&err, HUB_GW_MAC, HUB_VM_MAC, AF_INET, "10.10.1.4", "10.12.1.4", 3, 3,
				 0, quoted.data + 14, quoted.len - 14);
		r = harness_run(&gw, HUB, &err);
		assert_int_equal(r.trace.drop_reason, DROP_NONE);
		assert_int_not_equal(r.verdict, XDP_DROP);
		from_spoke2.sport = 41003;
		frame_build(&quoted, SPOKE2_GW_MAC, SPOKE2_VM_MAC, &from_spoke2);
		frame_icmp_error(&err, HUB_GW_MAC, HUB_VM_MAC, AF_INET, "10.10.1.4", "10.12.1.4", 3, 3,
				 0, quoted.data + 14, quoted.len - 14);
		harness_assert_dropped(&gw, &err, HUB, DROP_PEERING_ACCESS_REFUSED);
	}
	reload_with(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(virtual_appliance_route_sends_spoke_traffic_to_the_nva),
		cmocka_unit_test(forced_tunnelling_sends_internet_traffic_to_the_nva),
		cmocka_unit_test(nva_forwarded_traffic_enters_the_peer_that_allows_it),
		cmocka_unit_test(user_route_none_drops),
		cmocka_unit_test(spoke_source_outside_its_vnet_is_still_spoofed),
		cmocka_unit_test(forwarded_traffic_refused_where_the_peer_does_not_allow_it),
		cmocka_unit_test(invalid_and_unresolved_appliances_drop),
		cmocka_unit_test(vm_spoofing_its_neighbours_address_is_dropped),
		cmocka_unit_test(frame_from_a_mac_no_nic_has_is_dropped),
		cmocka_unit_test(forwarding_nic_known_by_its_mac_sends_any_source),
		cmocka_unit_test(nva_inbound_nsg_judges_the_leg_into_the_appliance),
		cmocka_unit_test(nva_outbound_nsg_judges_what_it_forwards),
		cmocka_unit_test(replies_through_the_nva_follow_each_legs_flow),
		cmocka_unit_test(gateway_route_without_a_site_drops_at_the_gateway),
		cmocka_unit_test(peering_access_refused_into_the_refusing_side_only),
	};

	return cmocka_run_group_tests_name("routes", tests, setup_gateway, teardown_gateway);
}

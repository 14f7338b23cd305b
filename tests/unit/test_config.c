/* The config reader against Azure's rules: one test per rule, each asserting the exact
 * "FILE:LINE:COL: json.path: what is wrong; what is allowed" lines for fixtures in ARM
 * nested `properties` shape and az-flattened shape, references written as a name, as
 * resourceId(...) and as a full /subscriptions/... id; the model a valid config gives in
 * both shapes; and `vnet-xdp check` exit codes, run under a seccomp filter that kills it
 * should it touch the kernel's BPF, mounts or netlink. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "config/config.h"
#include "lib/local_interfaces.h"
#include "config/json.h"

#define DATA "tests/data/config/"

/* expected with each '@' that starts a line standing for "path:" (the caller frees it). */
static char *lines_of(const char *path, const char *expected)
{
	char *want = NULL;
	size_t want_len = 0;
	FILE *w = open_memstream(&want, &want_len);

	for (const char *p = expected; *p; p++)
		if (*p == '@' && (p == expected || p[-1] == '\n'))
			fprintf(w, "%s:", path);
		else
			fputc(*p, w);
	fclose(w);
	return want;
}

/* Loads DATA/file and compares every problem line, '@' standing for "DATA/file:". */
static void expect_problems(const char *file, int count, const char *expected)
{
	char path[256], *text = NULL, *want;
	size_t len = 0;
	FILE *errors = open_memstream(&text, &len);
	struct config *cfg = (struct config *)1;
	int rc;

	snprintf(path, sizeof(path), DATA "%s", file);
	rc = config_load(path, errors, &cfg);
	fclose(errors);
	want = lines_of(path, expected);
	if (strcmp(text, want))
		fail_msg("%s:\n--- got\n%s--- expected\n%s", file, text, want);
	assert_int_equal(rc, count);
	assert_null(cfg);
	free(text);
	free(want);
}

static struct config *load_valid(const char *file)
{
	char path[256], *text = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&text, &len);
	struct config *cfg = NULL;
	int rc;

	snprintf(path, sizeof(path), DATA "%s", file);
	rc = config_load(path, errors, &cfg);
	fclose(errors);
	if (rc)
		fail_msg("%s: %d problems:\n%s", file, rc, text);
	free(text);
	assert_non_null(cfg);
	return cfg;
}

static const struct config_vnet *vnet_named(const struct config *cfg, const char *name)
{
	int v = config_find_vnet(cfg, name);

	if (v == CONFIG_NONE)
		fail_msg("no virtual network %s", name);
	return &cfg->vnets[v];
}

static const struct config_peering *peering_named(const struct config_vnet *vnet,
						   const char *name)
{
	for (size_t p = 0; p < vnet->n_peerings; p++)
		if (!strcmp(vnet->peerings[p].name, name))
			return &vnet->peerings[p];
	fail_msg("%s has no peering %s", vnet->name, name);
	return NULL;
}

static void assert_prefix(const struct ip_prefix *p, const char *text)
{
	struct ip_prefix want;

	assert_int_equal(ip_prefix_parse(text, &want), 0);
	assert_int_equal(p->family, want.family);
	assert_int_equal(p->len, want.len);
	assert_memory_equal(p->addr, want.addr, sizeof(want.addr));
}

static void assert_address(const struct ip_address *a, const char *text)
{
	struct ip_address want;

	assert_int_equal(ip_address_parse(text, &want), 0);
	assert_int_equal(a->family, want.family);
	assert_memory_equal(a->addr, want.addr, sizeof(want.addr));
}

static int find_nsg(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_nsgs; i++)
		if (!strcmp(cfg->nsgs[i].name, name))
			return (int)i;
	fail_msg("no network security group %s", name);
	return CONFIG_NONE;
}

static int find_route_table(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_route_tables; i++)
		if (!strcmp(cfg->route_tables[i].name, name))
			return (int)i;
	fail_msg("no route table %s", name);
	return CONFIG_NONE;
}

/* valid-arm.json and valid-flat.json hold the same network in the two shapes. */
static void assert_reference_model(const struct config *cfg)
{
	const struct config_vnet *hub = vnet_named(cfg, "hub"), *spoke1 = vnet_named(cfg, "spoke1"),
				 *spoke2 = vnet_named(cfg, "spoke2");
	const struct config_subnet *apps, *db;
	const struct config_route_table *rt;
	int nsg, table;

	assert_int_equal(cfg->n_vnets, 3);
	assert_int_equal(hub->n_prefixes, 2);
	assert_prefix(&hub->prefixes[0], "10.0.0.0/16");
	assert_prefix(&hub->prefixes[1], "fd00::/48");
	assert_int_equal(hub->n_subnets, 1);
	assert_int_equal(hub->subnets[0].n_prefixes, 2);
	assert_prefix(&hub->subnets[0].prefixes[1], "fd00:0:0:1::/64");

	/* the NSG, by full id and by name; the route table by resourceId() */
	nsg = find_nsg(cfg, "web-nsg");
	table = find_route_table(cfg, "rt1");
	assert_int_equal(spoke1->n_subnets, 1);
	apps = &spoke1->subnets[0];
	assert_string_equal(apps->name, "apps");
	assert_int_equal(apps->network_security_group, nsg);
	assert_int_equal(apps->route_table, table);
	assert_int_equal(apps->nat_gateway, CONFIG_NONE);
	db = &spoke2->subnets[0];
	assert_int_equal(db->network_security_group, nsg);
	assert_int_equal(db->route_table, CONFIG_NONE);

	/* the rule, and Azure's six default rules after it */
	assert_int_equal(cfg->nsgs[nsg].n_rules, 7);
	assert_string_equal(cfg->nsgs[nsg].rules[0].name, "allow-http");
	assert_int_equal(cfg->nsgs[nsg].rules[0].priority, 100);
	assert_int_equal(cfg->nsgs[nsg].rules[0].protocol, NSG_PROTO_TCP);
	assert_int_equal(cfg->nsgs[nsg].rules[0].destination_ports[0].from, 80);
	assert_true(cfg->nsgs[nsg].rules[6].is_default);

	rt = &cfg->route_tables[table];
	assert_int_equal(rt->n_routes, 2);
	assert_int_equal(rt->routes[0].next_hop_type, NEXT_HOP_VIRTUAL_APPLIANCE);
	assert_address(&rt->routes[0].next_hop_ip, "10.0.0.4");
	assert_prefix(&rt->routes[1].prefix, "fd00:9::/48");
	assert_int_equal(rt->routes[1].next_hop_type, NEXT_HOP_NONE);

	/* peerings: by name, by full id, by resourceId(); hub<->spoke2 is refused by spoke2 */
	assert_int_equal(peering_named(hub, "hub-to-spoke1")->remote_vnet,
			 config_find_vnet(cfg, "spoke1"));
	assert_true(peering_named(hub, "hub-to-spoke1")->connected);
	assert_true(peering_named(hub, "hub-to-spoke1")->allow_forwarded_traffic);
	assert_int_equal(peering_named(spoke1, "spoke1-to-hub")->remote_vnet,
			 config_find_vnet(cfg, "hub"));
	assert_true(peering_named(spoke1, "spoke1-to-hub")->connected);
	assert_int_equal(peering_named(hub, "hub-to-spoke2")->remote_vnet,
			 config_find_vnet(cfg, "spoke2"));
	/* spoke2's side refuses access: still Connected, access refused into spoke2 only */
	assert_true(peering_named(hub, "hub-to-spoke2")->connected);
	assert_true(peering_named(spoke2, "spoke2-to-hub")->connected);
	assert_false(peering_named(spoke2, "spoke2-to-hub")->allow_virtual_network_access);

	/* the binding */
	assert_int_equal(cfg->n_ifaces, 3);
	assert_string_equal(cfg->ifaces[1].name, "to-spoke1");
	assert_int_equal(cfg->ifaces[1].vnet, config_find_vnet(cfg, "spoke1"));
	assert_int_equal(cfg->ifaces[1].subnet, 0);
	assert_int_equal(cfg->ifaces[2].role, IFACE_UPLINK);
	assert_int_equal(cfg->n_gateway_vnets, 2);
	assert_int_equal(cfg->gateway_vnets[1].n_vips, 2);
	assert_address(&cfg->gateway_vnets[1].vips[1], "2001:db8:ff::11");
}

/* ---- one test per rule -------------------------------------------------------- */

/* CIDR syntax, IPv4: a prefix length beyond 32, host bits set, a missing length, an octet beyond 255. */
static void cidr_syntax_ipv4(void **state)
{
	expect_problems("cidr-ipv4-arm.json", 2,
		"@5:58: resources[0].properties.addressSpace.addressPrefixes[0]: \"10.0.0.0/33\" is not a CIDR prefix; allowed: IPv4 a.b.c.d/0-32 or IPv6 x:x::/0-128\n"
		"@5:73: resources[0].properties.addressSpace.addressPrefixes[1]: \"10.1.0.1/16\" has host bits set; allowed: the network address, 10.1.0.0/16\n");
	expect_problems("cidr-ipv4-flat.json", 2,
		"@6:50: resources[0].subnets[0].addressPrefix: \"10.0.1.0/\" is not a CIDR prefix; allowed: IPv4 a.b.c.d/0-32 or IPv6 x:x::/0-128\n"
		"@6:96: resources[0].subnets[1].addressPrefix: \"10.0.300.0/24\" is not a CIDR prefix; allowed: IPv4 a.b.c.d/0-32 or IPv6 x:x::/0-128\n");
}

/* CIDR syntax, IPv6: a prefix length beyond 128, host bits set, a malformed address. */
static void cidr_syntax_ipv6(void **state)
{
	expect_problems("cidr-ipv6-arm.json", 3,
		"@5:58: resources[0].properties.addressSpace.addressPrefixes[0]: \"fd00::/129\" is not a CIDR prefix; allowed: IPv4 a.b.c.d/0-32 or IPv6 x:x::/0-128\n"
		"@5:72: resources[0].properties.addressSpace.addressPrefixes[1]: \"fd00:1::1/48\" has host bits set; allowed: the network address, fd00:1::/48\n"
		"@5:88: resources[0].properties.addressSpace.addressPrefixes[2]: \"fd00:::/48\" is not a CIDR prefix; allowed: IPv4 a.b.c.d/0-32 or IPv6 x:x::/0-128\n");
	expect_problems("cidr-ipv6-flat.json", 1,
		"@6:50: resources[0].subnets[0].addressPrefix: \"fd00:0:0:1::1/64\" has host bits set; allowed: the network address, fd00:0:0:1::/64\n");
}

/* Address syntax: next hops and VIPs, IPv4 and IPv6. */
static void address_syntax_ipv4_and_ipv6(void **state)
{
	expect_problems("address-syntax.json", 4,
		"@8:147: resources[1].properties.routes[0].properties.nextHopIpAddress: \"10.0.0\" is not an IP address; allowed: IPv4 a.b.c.d or IPv6 x:x::x\n"
		"@9:142: resources[1].properties.routes[1].properties.nextHopIpAddress: \"fd00::1::2\" is not an IP address; allowed: IPv4 a.b.c.d or IPv6 x:x::x\n"
		"@3:58: gateway.virtualNetworks[0].vips[0]: \"203.0.113.300\" is not an IP address; allowed: IPv4 a.b.c.d or IPv6 x:x::x\n"
		"@3:75: gateway.virtualNetworks[0].vips[1]: \"2001:db8::zz\" is not an IP address; allowed: IPv4 a.b.c.d or IPv6 x:x::x\n");
}

/* Address spaces of peered VNets must not overlap (IPv4 in ARM shape, IPv6 flattened). */
static void peered_vnets_must_not_overlap(void **state)
{
	expect_problems("peered-overlap-arm.json", 1,
		"@6:65: resources[0].properties.virtualNetworkPeerings[0].properties: peering \"a-b\": address space 10.0.0.0/16 of \"a\" overlaps 10.0.128.0/17 of \"b\"; allowed: peered virtual networks with address spaces that do not overlap\n");
	expect_problems("peered-overlap-flat.json", 1,
		"@6:33: resources[0].virtualNetworkPeerings[0]: peering \"a-b\": address space fd00::/48 of \"a\" overlaps fd00::/16 of \"b\"; allowed: peered virtual networks with address spaces that do not overlap\n");
}

/* Two VNets bound to one gateway must not overlap even when not peered. */
static void bound_vnets_must_not_overlap(void **state)
{
	expect_problems("bound-overlap.json", 1,
		"@2:14: gateway: virtual networks \"b\" (10.0.5.0/24) and \"a\" (10.0.0.0/16) are both bound to this gateway and overlap; allowed: VNets with disjoint address spaces\n");
}

/* A subnet lies inside its VNet's address space (each of addressPrefixes). */
static void subnet_inside_its_vnet(void **state)
{
	expect_problems("subnet-outside-arm.json", 2,
		"@7:50: resources[0].properties.subnets[1].properties: subnet \"out\" prefix 10.1.0.0/24 is outside the address space of \"a\"; allowed: inside 10.0.0.0/16, fd00::/48\n"
		"@7:50: resources[0].properties.subnets[1].properties: subnet \"out\" prefix fd01::/64 is outside the address space of \"a\"; allowed: inside 10.0.0.0/16, fd00::/48\n");
	expect_problems("subnet-outside-flat.json", 1,
		"@6:18: resources[0].subnets[0]: subnet \"wide\" prefix 10.0.0.0/23 is outside the address space of \"a\"; allowed: inside 10.0.0.0/24\n");
}

/* Subnets of a VNet do not overlap (a top-level child against an inline one; IPv6). */
static void subnets_do_not_overlap(void **state)
{
	expect_problems("subnet-overlap-arm.json", 1,
		"@8:20: resources[1].properties: subnet \"s2\" prefix 10.0.0.128/25 overlaps subnet \"s1\" prefix 10.0.0.0/24; allowed: subnets that do not overlap\n");
	expect_problems("subnet-overlap-flat.json", 1,
		"@7:18: resources[0].subnets[1]: subnet \"s2\" prefix fd00::/56 overlaps subnet \"s1\" prefix fd00:0:0:1::/64; allowed: subnets that do not overlap\n");
	/* the same with CRLF line ends, as az on Windows writes them: same positions */
	expect_problems("subnet-overlap-crlf.json", 1,
		"@7:18: resources[0].subnets[1]: subnet \"s2\" prefix fd00::/56 overlaps subnet \"s1\" prefix fd00:0:0:1::/64; allowed: subnets that do not overlap\n");
}

/* At most one peering per VNet sets useRemoteGateways. */
static void at_most_one_use_remote_gateways(void **state)
{
	expect_problems("remote-gateways-twice.json", 1,
		"@8:41: resources[0].properties.virtualNetworkPeerings[1].properties: virtual network \"s\" sets useRemoteGateways on more than one peering; allowed: at most one\n");
}

/* useRemoteGateways needs a gateway on the remote side (Azure: RemoteVnetHasNoGateways). */
static void use_remote_gateways_needs_a_remote_gateway(void **state)
{
	expect_problems("remote-gateways-none.json", 1,
		"@7:41: resources[0].properties.virtualNetworkPeerings[0].properties: peering \"s-h1\" sets useRemoteGateways but \"h1\" has no virtual network gateway; allowed: useRemoteGateways toward a virtual network with one\n");
}

/* useRemoteGateways is refused on a VNet that has its own gateway. */
static void use_remote_gateways_not_with_own_gateway(void **state)
{
	expect_problems("remote-gateways-own-gateway.json", 1,
		"@8:41: resources[0].properties.virtualNetworkPeerings[0].properties: peering \"s-h1\" sets useRemoteGateways but \"s\" has its own virtual network gateway \"s-gw\"; allowed: useRemoteGateways only on a virtual network without one\n");
}

/* A VNet with a gateway needs a subnet named exactly GatewaySubnet (case matters). */
static void gateway_vnet_needs_gateway_subnet(void **state)
{
	expect_problems("gateway-subnet-missing-arm.json", 2,
		"@8:81: resources[1].properties.ipConfigurations[0].properties.subnet: virtual network gateway \"a-gw\" is in subnet \"gatewaysubnet\"; allowed: the subnet named exactly GatewaySubnet\n"
		"@10:41: resources[2].properties.ipConfigurations: virtual network \"a\" has gateway \"a-gw2\" but no subnet named exactly GatewaySubnet; allowed: add one\n");
	expect_problems("gateway-subnet-missing-flat.json", 1,
		"@8:26: resources[1].ipConfigurations: virtual network \"a\" has gateway \"a-gw\" but no subnet named exactly GatewaySubnet; allowed: add one\n");
}

/* Unknown references, written as a name, a resourceId(...) and a full id; a reference to the wrong type. */
static void unknown_references(void **state)
{
	expect_problems("unknown-reference-arm.json", 5,
		"@7:47: resources[0].properties.subnets[0].properties.networkSecurityGroup: unknown networkSecurityGroups \"no-such-nsg\"; allowed: one declared in resources\n"
		"@8:37: resources[0].properties.subnets[0].properties.routeTable: unknown routeTables \"no-such-rt\"; allowed: one declared in resources\n"
		"@9:37: resources[0].properties.subnets[0].properties.natGateway: unknown natGateways \"no-such-nat\"; allowed: one declared in resources\n"
		"@11:81: resources[1].properties.ipConfigurations[0].properties.subnet: virtual network \"a\" has no subnet \"no-such-subnet\"; allowed: a subnet declared in \"a\"\n"
		"@2:120: gateway.interfaces[1].virtualNetwork: unknown virtual network \"x\"; allowed: one declared in resources\n");
	expect_problems("unknown-reference-flat.json", 4,
		"@7:43: resources[0].subnets[0].networkSecurityGroup: unknown networkSecurityGroups \"nope\"; allowed: one declared in resources\n"
		"@8:33: resources[0].subnets[0].routeTable: unknown routeTables \"nope-rt\"; allowed: one declared in resources\n"
		"@11:30: resources[1].networkSecurityGroup: refers to a routeTables; allowed: a reference to a networkSecurityGroups\n"
		"@10:51: resources[1].ipConfigurations[0].subnet: unknown virtual network \"nope-vnet\"; allowed: one declared in resources\n");
}

/* Duplicate names, compared without case: VNets, subnets, rules, routes, route tables, interfaces. */
static void duplicate_names(void **state)
{
	expect_problems("duplicate-names-arm.json", 4,
		"@13:17: resources[2].properties.securityRules[1].name: duplicate security rule name \"r\" in network security group \"n\"; allowed: unique names, compared without case\n"
		"@7:29: resources[0].properties.subnets[1].name: duplicate subnet name \"S1\" in virtual network \"a\"; allowed: unique names, compared without case\n"
		"@8:59: resources[1].name: duplicate virtualNetworks name \"A\" (also at resources[0]); allowed: unique names, compared without case\n"
		"@2:94: gateway.interfaces[1].name: interface \"to-a\" is listed twice; allowed: each interface once\n");
	expect_problems("duplicate-names-flat.json", 2,
		"@9:26: resources[1].routes[1].name: duplicate route name \"X\" in route table \"rt\"; allowed: unique names, compared without case\n"
		"@10:55: resources[2].name: duplicate routeTables name \"RT\" (also at resources[1]); allowed: unique names, compared without case\n");
}

/* Wrong JSON types, each reported once (a numeric string such as priority "100" passes,
 * as ARM accepts it). */
static void wrong_types(void **state)
{
	expect_problems("wrong-types-arm.json", 5,
		"@11:139: resources[2].properties.securityRules[0].properties.sourceAddressPrefix: an integer where a string is expected\n"
		"@5:57: resources[0].properties.addressSpace.addressPrefixes: a string where an array is expected\n"
		"@8:86: resources[1].properties.subnets: an object where an array is expected\n"
		"@6:128: resources[0].properties.virtualNetworkPeerings[0].properties.allowForwardedTraffic: a string where a boolean is expected; allowed: true, false\n"
		"@2:95: gateway.nat66: a string where a boolean is expected; allowed: true, false\n");
	expect_problems("wrong-types-flat.json", 6,
		"@9:34: resources[1].securityRules[0].priority: a number where an integer is expected; allowed: 100-4096\n"
		"@9:75: resources[1].securityRules[0].access: a boolean where a string is expected\n"
		"@5:43: resources[0].addressSpace.addressPrefixes[0]: an integer where a string is expected\n"
		"@6:49: resources[0].subnets[0].addressPrefix: an array where a string is expected\n"
		"@2:23: gateway.name: an integer where a string is expected\n"
		"@2:41: gateway.interfaces: an object where an array is expected\n");
}

/* Unknown enum values: direction, access, protocol, nextHopType, role, connectionType. */
static void unknown_enum_values(void **state)
{
	expect_problems("unknown-enum-arm.json", 5,
		"@8:67: resources[1].properties.securityRules[0].properties.direction: \"Sideways\" is not a known value; allowed: Inbound, Outbound\n"
		"@8:89: resources[1].properties.securityRules[0].properties.access: \"Maybe\" is not a known value; allowed: Allow, Deny\n"
		"@8:110: resources[1].properties.securityRules[0].properties.protocol: \"Sctp\" is not a known value; allowed: *, Tcp, Udp, Icmp, Esp, Ah\n"
		"@10:108: resources[2].properties.routes[0].properties.nextHopType: \"Firewall\" is not a known value; allowed: VirtualNetworkGateway, VnetLocal, Internet, VirtualAppliance, None\n"
		"@2:109: gateway.interfaces[1].role: \"wan\" is not a known value; allowed: vnet, uplink\n");
	expect_problems("unknown-enum-flat.json", 2,
		"@8:78: resources[1].routes[1].nextHopType: \"HyperNet\" is not a known value; allowed: VirtualNetworkGateway, VnetLocal, Internet, VirtualAppliance, None\n"
		"@9:78: resources[2].connectionType: \"Bgp\" is not a known value; allowed: IPsec, Vnet2Vnet, ExpressRoute, VPNClient\n");
}

/* Security rule priority outside 100-4096, or missing. */
static void priority_out_of_range(void **state)
{
	expect_problems("priority-range-arm.json", 2,
		"@8:51: resources[1].properties.securityRules[0].properties.priority: 99 is out of range 100-4096\n"
		"@9:52: resources[1].properties.securityRules[1].properties.priority: 4097 is out of range 100-4096\n");
	expect_problems("priority-range-flat.json", 2,
		"@8:36: resources[1].securityRules[0].priority: 65000 is out of range 100-4096\n"
		"@9:8: resources[1].securityRules[1].priority: missing; allowed: 100-4096\n");
}

/* FILL-IN left where `vnet-xdp import` wrote it: interface names, VIP, tunnel endpoint, shared key.
 * Where the value is this machine's (an interface, an address) its interfaces are listed. */
static void fill_in_left_in_the_config(void **state)
{
	char *here = local_interfaces_text(), *expected = NULL;

	assert_non_null(here);
	assert_true(asprintf(&expected,
		"@20:61: resources[3].properties.sharedKey: still FILL-IN; allowed: the pre-shared key (import with --param-file NAME=PATH or --param NAME=KEY, or write it here)\n"
		"@5:16: gateway.interfaces[0].name: still FILL-IN; allowed: the Linux interface that faces this virtual network (or the uplink); this machine's interfaces: %s\n"
		"@6:16: gateway.interfaces[1].name: still FILL-IN; allowed: the Linux interface that faces this virtual network (or the uplink); this machine's interfaces: %s\n"
		"@8:46: gateway.virtualNetworks[0].vip: still FILL-IN; allowed: the public IPv4 or IPv6 address this VNet's outbound traffic is NATed to, or leave \"vip\" out for no outbound NAT\n"
		"@9:60: gateway.virtualNetworkGateways[0].address: still FILL-IN; allowed: this box's tunnel endpoint address for the gateway, an IPv4 or IPv6 address; this machine's interfaces: %s\n",
		here, here, here) > 0);
	expect_problems("fill-in.json", 5, expected);
	free(expected);
	free(here);
}

/* Unknown keys at the top and in the gateway section (Azure resources keep theirs: az output carries many). */
/* Azure's rules for ASGs: a side names prefixes or groups, not both; a group's NICs and
 * the groups of one rule are in one VNet; a group must exist. A tag that is not built in
 * needs the tag file. */
static void application_security_group_rules_are_azures(void **state)
{
	expect_problems("asg-refused.json", 5,
		"@25:100: resources[7].properties.securityRules[0].properties.sourceApplicationSecurityGroups: a rule side takes address prefixes or application security groups, not both; allowed: sourceApplicationSecurityGroups alone, or sourceAddressPrefix/sourceAddressPrefixes without it\n"
		"@32:50: resources[7].properties.securityRules[2].properties.destinationApplicationSecurityGroups[0]: unknown applicationSecurityGroups \"nope-asg\"; allowed: one declared in resources\n"
		"@35:37: resources[7].properties.securityRules[3].properties.destinationAddressPrefix: unknown service tag \"Storage.WestEurope\"; allowed: VirtualNetwork, Internet, AzureLoadBalancer, or Azure's service tag file named by gateway.serviceTagsFile for other tags\n"
		"@19:39: resources[5].properties.ipConfigurations[0].properties.applicationSecurityGroups[0]: application security group \"web-asg\" has network interfaces in virtual network \"hub\", network interface \"stray\" is in \"spoke\"; allowed: the network interfaces of an application security group in one virtual network\n"
		"@27:42: resources[7].properties.securityRules[1].properties: rule \"TwoVnets\" names application security group \"web-asg\" (network interfaces in virtual network \"hub\") and \"db-asg\" (in \"spoke\"); allowed: application security groups of one virtual network in a rule\n");
}

/* Tags resolve from gateway.serviceTagsFile (relative to the config, names without
 * case, regional names as the file has them); one the file lacks is refused. */
static void service_tags_resolve_from_the_tag_file(void **state)
{
	struct config *cfg = NULL;
	const struct config_security_rule *rule;
	const struct config_address_group *tag;
	char buf[64];

	assert_int_equal(config_load(DATA "service-tags-ok.json", stderr, &cfg), 0);
	assert_int_equal(cfg->n_unenforced, 0);
	assert_int_equal(cfg->n_service_tags, 3);
	rule = &cfg->nsgs[0].rules[0];
	assert_int_equal(rule->destinations[0].kind, NSG_ADDR_SERVICE_TAG);
	tag = config_address_group_of(cfg, &rule->destinations[0]);
	assert_string_equal(tag->name, "Storage.WestEurope");
	assert_int_equal(tag->n_prefixes, 3);
	assert_string_equal(nsg_address_text(cfg, &rule->destinations[0], buf, sizeof(buf)),
			    "Storage.WestEurope");
	assert_int_equal(tag->prefixes[2].family, AF_INET6); /* 2603:1020:206:402::/64 */
	assert_int_equal(tag->prefixes[2].len, 64);
	config_free(cfg);
	expect_problems("service-tags-file.json", 1,
		"@17:37: resources[1].properties.securityRules[2].properties.destinationAddressPrefix: unknown service tag \"Storage.MarsNorth\"; allowed: VirtualNetwork, Internet, AzureLoadBalancer or a tag of the service tag file tests/data/config/../service-tags/ServiceTags_Public_sample.json (gateway.serviceTagsFile)\n");
}

/* A tag file that cannot be read, is not JSON or holds a bad prefix: one problem at
 * gateway.serviceTagsFile, and no echo of it at every rule. */
static void bad_service_tag_file_is_one_clear_problem(void **state)
{
	expect_problems("service-tags-missing.json", 1,
		"@3:62: gateway.serviceTagsFile: cannot read service tag file tests/data/config/../service-tags/none.json: No such file or directory; allowed: Azure's service tag file (ServiceTags_Public_*.json)\n");
	expect_problems("service-tags-truncated.json", 1,
		"@3:62: gateway.serviceTagsFile: service tag file tests/data/config/../service-tags/truncated.json: line 1: the text ends inside a value; allowed: Azure's service tag file (ServiceTags_Public_*.json)\n");
	expect_problems("service-tags-bad-prefix.json", 1,
		"@3:62: gateway.serviceTagsFile: service tag file tests/data/config/../service-tags/bad-prefix.json: values[0].properties.addressPrefixes[1]: not a CIDR with its host bits zero; allowed: an IPv4 or IPv6 prefix\n");
}

static void unknown_keys(void **state)
{
	expect_problems("unknown-keys.json", 6,
		"@10:15: resource: unknown key; allowed: gateway, resources\n"
		"@4:18: gateway.interface: unknown key; allowed: name, interfaces, virtualNetworks, virtualNetworkGateways, nat66, metrics, limits, tunnelTcpMss, serviceTagsFile, flowLogs, expressRouteConnections\n"
		"@5:68: gateway.interfaces[0].vlan: unknown key; allowed: name, virtualNetwork, subnet, role\n"
		"@6:47: gateway.virtualNetworks[0].snat: unknown key; allowed: name, vip, vips\n"
		"@7:53: gateway.metrics.path: unknown key; allowed: listen\n"
		"@8:56: gateway.limits.flowTablesize: unknown key; allowed: flowTableSize, snatPortMin, snatPortMax, snatTableSize, tcpIdleTimeoutSeconds, tcpTransitoryTimeoutSeconds, udpIdleTimeoutSeconds, icmpIdleTimeoutSeconds, snatMappingsPerVm\n");
}

static void flow_logs_are_checked_and_default_as_documented(void **state)
{
	struct config *cfg = load_valid("flow-logs-defaults.json");

	assert_true(cfg->flow_logs.enabled);
	assert_string_equal(cfg->flow_logs.directory, "/srv/flows");
	assert_int_equal(cfg->flow_logs.interval_seconds, 60);
	assert_int_equal(cfg->flow_logs.max_megabytes, 256);
	assert_int_equal(cfg->flow_logs.denied_per_second, 100);
	config_free(cfg);
	cfg = load_valid("valid-flat.json");
	assert_false(cfg->flow_logs.enabled);
	config_free(cfg);
	expect_problems("flow-logs-bad.json", 6,
		"@38:24: gateway.flowLogs.retentionDays: unknown key; allowed: enabled, directory, intervalSeconds, maxMegabytes, deniedPerSecond\n"
		"@33:18: gateway.flowLogs.enabled: a string where a boolean is expected; allowed: true, false\n"
		"@34:20: gateway.flowLogs.directory: \"/var/log/../flows\" holds a \".\" or \"..\" component; allowed: an absolute path such as /var/log/vnet-xdp/flows\n"
		"@35:26: gateway.flowLogs.intervalSeconds: 0 is out of range 1-3600\n"
		"@36:23: gateway.flowLogs.maxMegabytes: 0 is out of range 1-1048576\n"
		"@37:26: gateway.flowLogs.deniedPerSecond: -1 is out of range 0-1000000\n");
}

static void valid_arm_shape_gives_the_model(void **state)
{
	struct config *cfg = load_valid("valid-arm.json");

	assert_string_equal(cfg->gateway_name, "ct-arm");
	assert_reference_model(cfg);
	config_free(cfg);
}

static void valid_flattened_shape_gives_the_same_model(void **state)
{
	struct config *cfg = load_valid("valid-flat.json");

	assert_string_equal(cfg->gateway_name, "ct-flat");
	assert_reference_model(cfg);
	config_free(cfg);
}

/* Azure's "Connected": both sides exist and both allow VNet access. Otherwise the
 * peering is "Initiated" or "Disconnected": valid, but it forwards nothing. */
static void peering_connected_when_both_sides_exist(void **state)
{
	struct config *cfg = load_valid("peering-connected.json");
	const struct config_vnet *hub = vnet_named(cfg, "hub");

	assert_true(peering_named(hub, "hub-s1")->connected);
	assert_true(peering_named(vnet_named(cfg, "s1"), "s1-hub")->connected);
	/* s2 refuses access, the hub s3's: Connected all the same (access is per direction,
	 * the receiving side's allowVirtualNetworkAccess) */
	assert_int_equal(peering_named(hub, "hub-s2")->state, PEERING_CONNECTED);
	assert_int_equal(peering_named(vnet_named(cfg, "s2"), "s2-hub")->state, PEERING_CONNECTED);
	assert_int_equal(peering_named(hub, "hub-s3")->state, PEERING_CONNECTED);
	assert_int_equal(peering_named(vnet_named(cfg, "s3"), "s3-hub")->state, PEERING_CONNECTED);
	/* s4 peers with the hub, the hub not with s4: Initiated */
	assert_int_equal(peering_named(vnet_named(cfg, "s4"), "s4-hub")->state, PEERING_INITIATED);
	assert_false(peering_named(vnet_named(cfg, "s4"), "s4-hub")->connected);
	/* a remote VNet in another subscription, not in this config */
	assert_int_equal(peering_named(hub, "hub-far")->remote_vnet, CONFIG_NONE);
	assert_string_equal(peering_named(hub, "hub-far")->remote_name, "far");
	assert_false(peering_named(hub, "hub-far")->connected);
	config_free(cfg);
}

/* The three reference forms name the same resource; a reference of the wrong type or a
 * malformed one is refused. */
static void reference_forms(void **state)
{
	static const char *const forms[] = {
		"web-nsg",
		"[resourceId('Microsoft.Network/networkSecurityGroups', 'web-nsg')]",
		"[resourceId('00000000-0000-0000-0000-000000000000', 'rg', "
		"'Microsoft.Network/networkSecurityGroups', 'web-nsg')]",
		"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
		"Microsoft.Network/networkSecurityGroups/web-nsg",
	};
	struct reference ref;
	const char *why;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		assert_int_equal(reference_parse(forms[i], &ref, &why), 0);
		assert_int_equal(ref.n_names, 1);
		assert_string_equal(ref.names[0], "web-nsg");
	}
	assert_int_equal(reference_parse("/subscriptions/s/resourceGroups/g/providers/"
		"Microsoft.Network/virtualNetworks/hub/subnets/apps", &ref, &why), 0);
	assert_string_equal(ref.type, "virtualNetworks/subnets");
	assert_int_equal(ref.n_names, 2);
	assert_string_equal(ref.names[1], "apps");
	assert_int_not_equal(reference_parse("[concat('a', 'b')]", &ref, &why), 0);
	assert_non_null(strstr(why, "vnet-xdp import"));
	assert_int_not_equal(reference_parse("hub//apps", &ref, &why), 0);
}

/* A list response's entries may leave "type" out; their resource id says it. */
#define LIST_HEAD                                                                          \
	"{\"gateway\": {\"name\": \"t\", \"interfaces\": [{\"name\": \"a0\", "              \
	"\"virtualNetwork\": \"a\"}]},\n"                                                       \
	" \"resources\": [\n"                                                                  \
	"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"a\", "                 \
	"\"properties\": {\"addressSpace\": {\"addressPrefixes\": [\"10.0.0.0/16\"]}}},\n"      \
	"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"b\", "                 \
	"\"properties\": {\"addressSpace\": {\"addressPrefixes\": [\"10.1.0.0/16\"]}}},\n"      \
	"  {\"id\": \"/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/"           \
	"virtualNetworks/a/virtualNetworkPeerings/a-b\", \"name\": \"a-b\", "                   \
	"\"properties\": {\"remoteVirtualNetwork\": {\"id\": \"b\"}}},\n"                      \
	"  {\"id\": \"/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/"           \
	"virtualMachines/vm1\", \"name\": \"vm1\"}"

static void type_taken_from_the_id_when_missing(void **state)
{
	char *problems = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&problems, &len);
	struct config *cfg;

	/* the peering is read, the VM is not modeled */
	if (config_load_string(LIST_HEAD "]}\n", "list.json", errors, &cfg)) {
		fflush(errors);
		fail_msg("refused:\n%s", problems);
	}
	assert_int_equal(cfg->vnets[0].n_peerings, 1);
	assert_string_equal(cfg->vnets[0].peerings[0].name, "a-b");
	assert_int_equal(cfg->vnets[0].peerings[0].remote_vnet, 1);
	config_free(cfg);
	/* an entry with neither type nor id is refused */
	assert_int_equal(config_load_string(LIST_HEAD ",\n  {\"name\": \"x\"}]}\n", "list.json",
					    errors, &cfg), 1);
	fclose(errors);
	assert_string_equal(problems, "list.json:7:3: resources[4]: a resource without "
			    "\"type\"; allowed: \"Microsoft.Network/<type>\"\n");
	free(problems);
}

/* ---- vnet-xdp check ---------------------------------------------------------------- */

static const char *binary(void)
{
	const char *b = getenv("VNET_XDP");

	return b && *b ? b : "build/vnet-xdp";
}

/* Kills the process (SIGSYS) on bpf(), mount(), setns() and netlink sockets: whatever
 * would touch the kernel's datapath state. */
static void forbid_kernel_changes(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_bpf, 5, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mount, 4, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setns, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
		_exit(120);
}

/* Runs `vnet-xdp ARGS...` (or, with args NULL, a bpf() call) under the filter; returns
 * the exit code, or 128 + signal. Its output goes to /dev/null. */
static int run_forbidden(const char *const *args)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[16] = { (char *)binary() };
		int null = open("/dev/null", O_WRONLY);

		for (int i = 0; args && args[i] && i < 14; i++)
			argv[i + 1] = (char *)args[i];
		dup2(null, 1);
		dup2(null, 2);
		forbid_kernel_changes();
		if (!args) {
			syscall(__NR_bpf, 0, NULL, 0);
			_exit(0);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* What the gateway accepts and does not enforce passes with one warning per use, at its
 * place, saying what the gateway does instead; Internet routes and the rest stay silent. */
static void unenforced_properties_are_warned_of(void **state)
{
	char path[] = DATA "unenforced.json", *text = NULL, *want;
	size_t len = 0;
	FILE *errors = open_memstream(&text, &len);
	struct config *cfg = NULL;
	const char *expected =
		"@15:32: resources[0].properties.flowTimeoutInMinutes: warning: accepted but not enforced: flows idle out after gateway.limits' timeouts\n"
		"@53:34: resources[8].properties.enableBgp: warning: accepted but not enforced: no BGP speaker runs: no route is learned or advertised\n"
		"@53:56: resources[8].properties.activeActive: warning: accepted but not enforced: one tunnel per connection, from the gateway's first endpoint\n"
		"@57:23: resources[9].properties.bgpSettings: warning: accepted but not enforced: no BGP session: only the addressPrefixes are routed to the site\n"
		"@61:21: resources[10].properties.enableBgp: warning: accepted but not enforced: no BGP session over the tunnel: only static prefixes are routed\n";

	assert_int_equal(config_load(path, errors, &cfg), 0);
	fclose(errors);
	want = lines_of(path, expected);
	if (strcmp(text, want))
		fail_msg("--- got\n%s--- expected\n%s", text, want);
	assert_non_null(cfg);
	assert_int_equal(cfg->n_unenforced, 5);
	config_free(cfg);
	free(text);
	free(want);
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void check_exit_codes_and_no_kernel_changes(void **state)
{
	static const char *const valid[] = { "check", "-c", DATA "valid-arm.json", NULL };
	static const char *const valid_flat[] = { "check", "-c", DATA "valid-flat.json", NULL };
	static const char *const invalid[] = { "check", "-c", DATA "peered-overlap-arm.json",
					       NULL };
	static const char *const missing[] = { "check", "-c", DATA "no-such-file.json", NULL };
	static const char *const no_file[] = { "check", NULL };
	static const char *const bad_option[] = { "check", "-c", DATA "valid-arm.json", "-x",
						  NULL };
	static const char *const extra[] = { "check", "-c", DATA "valid-arm.json", "more",
					     NULL };
	static const char *const unenforced[] = { "check", "-c", DATA "unenforced.json", NULL };
	static const char *const strict[] = { "check", "--strict", "-c", DATA "unenforced.json",
					      NULL };
	static const char *const strict_enforced[] = { "check", "--strict", "-c",
						       DATA "ipsec-transit.json", NULL };

	if (access(binary(), X_OK))
		skip();
	/* the filter works: a bpf() call under it dies of SIGSYS */
	assert_int_equal(run_forbidden(NULL), 128 + SIGSYS);
	assert_false(exists("/sys/fs/bpf/vnet-xdp/ct-arm"));
	assert_int_equal(run_forbidden(valid), 0);
	assert_int_equal(run_forbidden(valid_flat), 0);
	assert_int_equal(run_forbidden(invalid), 1);
	assert_int_equal(run_forbidden(missing), 1);
	assert_int_equal(run_forbidden(no_file), 2);
	assert_int_equal(run_forbidden(bad_option), 2);
	assert_int_equal(run_forbidden(extra), 2);
	assert_int_equal(run_forbidden(unenforced), 0);
	assert_int_equal(run_forbidden(strict), 1);
	assert_int_equal(run_forbidden(strict_enforced), 0);
	/* no pin directory appeared for the gateways checked */
	assert_false(exists("/sys/fs/bpf/vnet-xdp/ct-arm"));
	assert_false(exists("/sys/fs/bpf/vnet-xdp/ct-flat"));
}

/* The message of a JSON syntax error and of an unreadable file. */
static void syntax_errors_and_unreadable_files(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&text, &len);
	struct config *cfg;

	assert_int_equal(config_load_string("{\"gateway\": {\"name\": \"a\",}}", "x.json", errors,
					    &cfg), 1);
	assert_int_equal(config_load_string("{\"gateway\": 1, \"gateway\": 2}", "y.json", errors,
					    &cfg), 1);
	assert_int_equal(config_load(DATA "no-such-file.json", errors, &cfg), -ENOENT);
	fclose(errors);
	assert_string_equal(text,
		"x.json:1:26: JSON syntax: invalid syntax; allowed: one JSON "
		"object (RFC 8259, no duplicate keys)\n"
		"y.json:1:24: JSON syntax: a key given twice in one object; allowed: "
		"one JSON object (RFC 8259, no duplicate keys)\n"
		DATA "no-such-file.json: cannot open: No such file or directory\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_arm_shape_gives_the_model),
		cmocka_unit_test(valid_flattened_shape_gives_the_same_model),
		cmocka_unit_test(peering_connected_when_both_sides_exist),
		cmocka_unit_test(reference_forms),
		cmocka_unit_test(type_taken_from_the_id_when_missing),
		cmocka_unit_test(cidr_syntax_ipv4),
		cmocka_unit_test(cidr_syntax_ipv6),
		cmocka_unit_test(address_syntax_ipv4_and_ipv6),
		cmocka_unit_test(peered_vnets_must_not_overlap),
		cmocka_unit_test(bound_vnets_must_not_overlap),
		cmocka_unit_test(subnet_inside_its_vnet),
		cmocka_unit_test(subnets_do_not_overlap),
		cmocka_unit_test(at_most_one_use_remote_gateways),
		cmocka_unit_test(use_remote_gateways_not_with_own_gateway),
		cmocka_unit_test(use_remote_gateways_needs_a_remote_gateway),
		cmocka_unit_test(gateway_vnet_needs_gateway_subnet),
		cmocka_unit_test(unknown_references),
		cmocka_unit_test(duplicate_names),
		cmocka_unit_test(wrong_types),
		cmocka_unit_test(unknown_enum_values),
		cmocka_unit_test(priority_out_of_range),
		cmocka_unit_test(fill_in_left_in_the_config),
		cmocka_unit_test(unknown_keys),
		cmocka_unit_test(flow_logs_are_checked_and_default_as_documented),
		cmocka_unit_test(application_security_group_rules_are_azures),
		cmocka_unit_test(service_tags_resolve_from_the_tag_file),
		cmocka_unit_test(bad_service_tag_file_is_one_clear_problem),
		cmocka_unit_test(syntax_errors_and_unreadable_files),
		cmocka_unit_test(unenforced_properties_are_warned_of),
		cmocka_unit_test(check_exit_codes_and_no_kernel_changes),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}

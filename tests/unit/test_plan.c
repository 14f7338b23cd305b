/* The datapath plan: effective routes and anti-spoofing prefixes computed from a config,
 * checked without a kernel. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <stdlib.h>
#include "cli.h"
#include "config.h"
#include "plan.h"

/* hub peered with spoke1 and spoke2 both ways; spoke3 peered with hub one way only;
 * spoke1 bound per subnet. */
static const char *const config_text =
	"{\"gateway\": {\"name\": \"t\", \"interfaces\": ["
	"  {\"name\": \"to-hub\", \"virtualNetwork\": \"hub\"},"
	"  {\"name\": \"to-s1-apps\", \"virtualNetwork\": \"spoke1\", \"subnet\": \"apps\"},"
	"  {\"name\": \"to-spoke2\", \"virtualNetwork\": \"spoke2\"},"
	"  {\"name\": \"to-spoke3\", \"virtualNetwork\": \"spoke3\"},"
	"  {\"name\": \"uplink0\", \"role\": \"uplink\"}]},"
	" \"resources\": ["
	"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"hub\", \"properties\": {"
	"    \"addressSpace\": {\"addressPrefixes\": [\"10.10.0.0/16\", \"fd00:10::/48\"]},"
	"    \"virtualNetworkPeerings\": ["
	"      {\"name\": \"h1\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"spoke1\"}, \"allowVirtualNetworkAccess\": true}},"
	"      {\"name\": \"h2\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"spoke2\"}, \"allowVirtualNetworkAccess\": true}}]}},"
	"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"spoke1\", \"properties\": {"
	"    \"addressSpace\": {\"addressPrefixes\": [\"10.11.0.0/16\"]},"
	"    \"subnets\": [{\"name\": \"apps\", \"properties\": {\"addressPrefix\": \"10.11.1.0/24\"}},"
	"                {\"name\": \"db\", \"properties\": {\"addressPrefix\": \"10.11.2.0/24\"}}],"
	"    \"virtualNetworkPeerings\": ["
	"      {\"name\": \"s1h\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"hub\"}, \"allowVirtualNetworkAccess\": true}}]}},"
	"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"spoke2\", \"properties\": {"
	"    \"addressSpace\": {\"addressPrefixes\": [\"10.12.0.0/16\"]},"
	"    \"virtualNetworkPeerings\": ["
	"      {\"name\": \"s2h\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"hub\"}, \"allowVirtualNetworkAccess\": true}}]}},"
	"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"spoke3\", \"properties\": {"
	"    \"addressSpace\": {\"addressPrefixes\": [\"10.13.0.0/16\"]},"
	"    \"virtualNetworkPeerings\": ["
	"      {\"name\": \"s3h\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"hub\"}, \"allowVirtualNetworkAccess\": true}}]}}"
	"]}";

static const uint32_t ifindexes[] = { 11, 12, 13, 14, 15 };

struct fixture {
	struct config *cfg;
	struct plan plan;
};

static int setup(void **state)
{
	static struct fixture f;

	if (config_load_string(config_text, "plan.json", stderr, &f.cfg) != 0)
		return -1;
	if (plan_build(f.cfg, ifindexes, &f.plan))
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	plan_free(&f->plan);
	config_free(f->cfg);
	return 0;
}

/* The route a VNet's trie gives for an address: longest prefix among the plan's. */
static const struct plan_route *route_for(const struct fixture *f, const char *vnet,
					  const char *address)
{
	const struct plan_route *best = NULL;
	int v = config_find_vnet(f->cfg, vnet);
	struct ip_address a;

	assert_int_equal(ip_address_parse(address, &a), 0);
	for (size_t i = 0; i < f->plan.n_routes; i++) {
		const struct plan_route *r = &f->plan.routes[i];
		struct ip_prefix host = { .family = a.family, .len = a.family == AF_INET ? 32 : 128 };

		memcpy(host.addr, a.addr, 16);
		if (r->src_vnet != (uint32_t)v || r->prefix.family != a.family ||
		    !ip_prefix_contains(&r->prefix, &host))
			continue;
		if (!best || r->prefix.len > best->prefix.len)
			best = r;
	}
	return best;
}

static void own_space_is_vnet_local(void **state)
{
	const struct plan_route *r = route_for(*state, "hub", "10.10.3.3");

	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_VNET_LOCAL);
	assert_int_equal(r->info.egress_ifindex, 11);
	r = route_for(*state, "hub", "fd00:10::9");
	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_VNET_LOCAL);
}

static void connected_peers_are_vnet_peering(void **state)
{
	const struct plan_route *r = route_for(*state, "hub", "10.12.0.9");

	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_VNET_PEERING);
	assert_int_equal(r->info.egress_ifindex, 13);
	r = route_for(*state, "spoke2", "fd00:10::1");
	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_VNET_PEERING);
	assert_int_equal(r->info.egress_ifindex, 11);
}

static void peering_is_not_transitive(void **state)
{
	const struct plan_route *r = route_for(*state, "spoke1", "10.12.0.9");

	/* Reserved range: Azure's system route with next hop None. */
	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_NONE);
	/* A public address: Azure's default route, out the uplink to SNAT. */
	r = route_for(*state, "spoke2", "203.0.113.9");
	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_INTERNET);
	assert_int_equal(r->info.egress_ifindex, 15);
	/* No ::/0 without NAT66. */
	assert_null(route_for(*state, "hub", "2001:db8::9"));
}

static void one_sided_peering_is_not_connected(void **state)
{
	const struct plan_route *r = route_for(*state, "spoke3", "10.10.0.9");

	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_NONE);
	r = route_for(*state, "hub", "10.13.0.9");
	assert_int_equal(r->info.type, ROUTE_NONE);
}

static void subnet_binding_routes_only_its_subnet(void **state)
{
	const struct plan_route *r = route_for(*state, "hub", "10.11.1.7");

	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_VNET_PEERING);
	assert_int_equal(r->info.egress_ifindex, 12);
	/* the db subnet has no interface here: nothing to forward it to */
	r = route_for(*state, "hub", "10.11.2.7");
	assert_int_equal(r->info.type, ROUTE_NONE);
}

static void source_prefixes_follow_the_binding(void **state)
{
	struct fixture *f = *state;
	size_t for_spoke1 = 0, for_hub = 0;

	for (size_t i = 0; i < f->plan.n_source_prefixes; i++) {
		const struct plan_prefix_entry *e = &f->plan.source_prefixes[i];

		if (e->key.scope == 12) {
			for_spoke1++;
			assert_int_equal(e->key.prefixlen, LPM_SCOPE_BITS + 24);
		}
		if (e->key.scope == 11)
			for_hub++;
	}
	assert_int_equal(for_spoke1, 1);
	assert_int_equal(for_hub, 2);
}

static void uplink_has_no_routes_or_sources(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < f->plan.n_source_prefixes; i++)
		assert_int_not_equal(f->plan.source_prefixes[i].key.scope, 15);
	assert_int_equal(f->plan.interfaces[4].info.role, INTERFACE_UPLINK);
}

static void peering_counters_one_per_direction(void **state)
{
	struct fixture *f = *state;

	/* hub->spoke1, hub->spoke2, spoke1->hub, spoke2->hub; spoke3's is not connected */
	assert_int_equal(f->plan.n_peerings, 4);
}

/* Two VNets, each with a user route to the Internet in its subnet's route table. */
static const char *const internet_text =
	"{\"gateway\": {\"name\": \"t\", \"interfaces\": ["
	"  {\"name\": \"to-a\", \"virtualNetwork\": \"a\"},"
	"  {\"name\": \"to-b\", \"virtualNetwork\": \"b\"},"
	"  {\"name\": \"uplink0\", \"role\": \"uplink\"}]},"
	" \"resources\": ["
	"  {\"type\": \"Microsoft.Network/routeTables\", \"name\": \"rt-a\", \"routes\": ["
	"    {\"name\": \"web\", \"addressPrefix\": \"198.51.100.0/24\", \"nextHopType\": \"Internet\"}]},"
	"  {\"type\": \"Microsoft.Network/routeTables\", \"name\": \"rt-b\", \"routes\": ["
	"    {\"name\": \"web\", \"addressPrefix\": \"203.0.113.0/24\", \"nextHopType\": \"Internet\"}]},"
	"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"a\","
	"    \"addressSpace\": {\"addressPrefixes\": [\"10.1.0.0/16\"]},"
	"    \"subnets\": [{\"name\": \"s\", \"addressPrefix\": \"10.1.1.0/24\", \"routeTable\": \"rt-a\"}]},"
	"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"b\","
	"    \"addressSpace\": {\"addressPrefixes\": [\"10.2.0.0/16\"]},"
	"    \"subnets\": [{\"name\": \"s\", \"addressPrefix\": \"10.2.1.0/24\", \"routeTable\": \"rt-b\"}]}"
	"]}";

/* `vnet-xdp routes`: every Internet route, the user's and the default one, names the VNet
 * whose route it is. */
static void internet_routes_name_their_own_vnet(void **state)
{
	static const uint32_t indexes[] = { 21, 22, 23 };
	const char *const names[] = { "a", "b" };
	struct config *cfg = NULL;
	struct plan plan;

	assert_int_equal(config_load_string(internet_text, "internet.json", stderr, &cfg), 0);
	assert_int_equal(plan_build(cfg, indexes, &plan), 0);
	for (int v = 0; v < 2; v++) {
		json_t *routes = cli_routes_json(cfg, &plan, indexes, v), *route;
		size_t i, internet = 0;

		json_array_foreach(routes, i, route) {
			if (strcmp(json_string_value(json_object_get(route, "nextHopType")),
				   "Internet"))
				continue;
			internet++;
			assert_string_equal(json_string_value(json_object_get(route,
					    "virtualNetwork")), names[v]);
			assert_string_equal(json_string_value(json_object_get(route, "interface")),
					    "uplink0");
		}
		assert_int_equal(internet, 2); /* the user route and 0.0.0.0/0 */
		json_decref(routes);
	}
	plan_free(&plan);
	config_free(cfg);
}

/* Where each column of the table's header starts. */
static void column_starts(const char *header, size_t starts[4])
{
	const char *const names[] = { "ADDRESS PREFIX", "NEXT HOP", "VNET", "INTERFACE" };

	for (int c = 0; c < 4; c++) {
		const char *at = strstr(header, names[c]);

		assert_non_null(at);
		starts[c] = (size_t)(at - header);
	}
}

/* Every next hop type Azure has, the longest IPv6 prefix and a long VNet name: each
 * value starts under its column's header, a space at least after the one before. */
static void routes_table_columns_fit_their_content(void **state)
{
	const char *const hops[] = { "VirtualNetworkGateway", "VnetLocal", "Internet",
				     "VirtualAppliance", "None", "VNetPeering",
				     "VirtualNetworkServiceEndpoint" };
	json_t *routes = json_array();
	char *text = NULL, *line, *save;
	size_t len = 0, starts[4], rows = 0;
	FILE *out = open_memstream(&text, &len);

	for (size_t h = 0; h < sizeof(hops) / sizeof(*hops); h++)
		json_array_append_new(routes, json_pack("{s:s, s:s, s:s, s:s}", "addressPrefix",
			h ? "10.0.0.0/8" : "fd00:1234:5678:9abc:def0:1234:5678:9abc/128",
			"nextHopType", hops[h], "interface", h % 2 ? "uplink0" : "",
			"virtualNetwork", h == 1 ? "a-virtual-network-with-a-long-name" : "hub"));
	cli_routes_table(out, routes);
	fclose(out);
	line = strtok_r(text, "\n", &save);
	column_starts(line, starts);
	while ((line = strtok_r(NULL, "\n", &save))) {
		rows++;
		for (int c = 1; c < 4; c++) {
			assert_true(strlen(line) > starts[c]);
			if (line[starts[c] - 1] != ' ' || line[starts[c]] == ' ')
				fail_msg("column %d does not start at %zu:\n%s", c, starts[c], line);
		}
	}
	assert_int_equal(rows, sizeof(hops) / sizeof(*hops));
	free(text);
	json_decref(routes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(own_space_is_vnet_local),
		cmocka_unit_test(connected_peers_are_vnet_peering),
		cmocka_unit_test(peering_is_not_transitive),
		cmocka_unit_test(one_sided_peering_is_not_connected),
		cmocka_unit_test(subnet_binding_routes_only_its_subnet),
		cmocka_unit_test(source_prefixes_follow_the_binding),
		cmocka_unit_test(uplink_has_no_routes_or_sources),
		cmocka_unit_test(peering_counters_one_per_direction),
	};
	const struct CMUnitTest routes_tests[] = {
		cmocka_unit_test(internet_routes_name_their_own_vnet),
		cmocka_unit_test(routes_table_columns_fit_their_content),
	};

	return cmocka_run_group_tests_name("plan", tests, setup, teardown) |
	       cmocka_run_group_tests_name("routes", routes_tests, NULL, NULL);
}

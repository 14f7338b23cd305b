/* ExpressRoute forwarding in the plan: what bgpd learned becomes routes of type
 * VirtualNetworkGateway (source BGP) and the link's anti-spoofing prefixes, with Azure's
 * precedence, checked without a kernel or a bgpd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "config_edit.h"
#include "config/config.h"
#include "compile/plan.h"
#include "compile/effective_routes.h"

#define VLAN_IFINDEX 42
static const uint32_t ifindexes[] = { 11, 12, 13, 14 };
static const uint32_t links[] = { VLAN_IFINDEX };


/* The plan with prefixes (NULL-terminated) learned on the config's first link. */
static void plan_with(const struct config *cfg, const char *const *prefixes, struct plan *plan)
{
	struct plan_learned_route routes[8];
	struct plan_learned learned = { .link_ifindexes = links, .routes = routes };

	for (; prefixes && *prefixes; prefixes++) {
		struct plan_learned_route *r = &routes[learned.n_routes++];

		memset(r, 0, sizeof(*r));
		assert_int_equal(ip_prefix_parse(*prefixes, &r->prefix), 0);
		r->as_path = "64512";
	}
	assert_int_equal(plan_build_learned(cfg, ifindexes, &learned, plan), 0);
}

static const struct plan_route *route_in_scope(const struct plan *plan, uint32_t scope,
					       const char *address)
{
	struct ip_address a;

	assert_int_equal(ip_address_parse(address, &a), 0);
	return plan_route_lookup(plan, scope, &a);
}

/* The routes of prefix in scope, active or not: how many, the active one in *active. */
static size_t routes_of_prefix(const struct plan *plan, uint32_t scope, const char *prefix,
			       const struct plan_route **active)
{
	struct ip_prefix p;
	size_t n = 0;

	assert_int_equal(ip_prefix_parse(prefix, &p), 0);
	*active = NULL;
	for (size_t i = 0; i < plan->n_routes; i++) {
		const struct plan_route *r = &plan->routes[i];

		if (r->key.scope != scope || r->prefix.len != p.len || memcmp(r->prefix.addr, p.addr, 4))
			continue;
		n++;
		if (r->active)
			*active = r;
	}
	return n;
}

static void assert_learned_route(const struct config *cfg, const struct plan_route *r)
{
	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_TUNNEL);
	assert_int_equal(r->source, ROUTE_SOURCE_BGP);
	assert_string_equal(route_source_name(r->source), "VirtualNetworkGateway");
	assert_int_equal(r->info.egress_ifindex, VLAN_IFINDEX);
	assert_int_equal(r->info.peering, EXPRESS_ROUTE_TUNNEL_ID(0));
	assert_int_equal(r->info.dst_vnet, config_find_vnet(cfg, "hub"));
	assert_string_equal(route_state_name(r), "Active");
	assert_int_equal(r->next_hop_ip.family, AF_INET);
	assert_memory_equal(r->next_hop_ip.addr, ((uint8_t[]){ 192, 168, 15, 17 }), 4);
}

/* The hub (the ExpressRoute gateway's VNet) and spoke1 (useRemoteGateways, the hub's
 * allowGatewayTransit) route a learned prefix into the link via the provider's address. */
static void learned_prefix_is_a_bgp_route_of_the_gateways_vnet_and_its_transit_spoke(void **state)
{
	const char *const learned[] = { "172.16.1.0/24", NULL };
	struct config *cfg;
	struct plan plan;

	(void)state;
	config_edited("tests/data/config/express-route.json", NULL, &cfg);
	plan_with(cfg, learned, &plan);
	assert_int_equal(plan.n_express_routes, 1);
	assert_int_equal(plan.express_routes[0].ifindex, VLAN_IFINDEX);
	assert_learned_route(cfg, route_in_scope(&plan, config_find_vnet(cfg, "hub"), "172.16.1.9"));
	assert_learned_route(cfg, route_in_scope(&plan, config_find_vnet(cfg, "spoke1"), "172.16.1.9"));
	assert_string_equal(route_in_scope(&plan, config_find_vnet(cfg, "hub"), "172.16.1.9")->as_path,
			    "64512");
	/* what was not learned is Azure's None route for 172.16/12 */
	assert_int_equal(route_in_scope(&plan, config_find_vnet(cfg, "hub"), "172.16.2.9")->info.type,
			 ROUTE_NONE);
	plan_free(&plan);
	config_free(cfg);
}

/* Withdrawn (no longer learned): no route of source BGP is left. */
static void withdrawn_prefix_leaves_no_route(void **state)
{
	struct config *cfg;
	struct plan plan;

	(void)state;
	config_edited("tests/data/config/express-route.json", NULL, &cfg);
	plan_with(cfg, NULL, &plan);
	for (size_t i = 0; i < plan.n_routes; i++)
		assert_int_not_equal(plan.routes[i].source, ROUTE_SOURCE_BGP);
	for (size_t i = 0; i < plan.n_source_prefixes; i++)
		assert_int_not_equal(plan.source_prefixes[i].key.scope, VLAN_IFINDEX);
	plan_free(&plan);
	config_free(cfg);
}

/* What arrives on the link: from a learned prefix only, and it may reach the hub and the
 * transit spoke in the link's own scope, nothing else. */
static void link_accepts_sources_of_learned_prefixes_into_the_hub_and_its_spoke(void **state)
{
	const char *const learned[] = { "172.16.1.0/24", "172.16.3.0/24", NULL };
	uint32_t scope = TUNNEL_ROUTE_SCOPE | EXPRESS_ROUTE_TUNNEL_ID(0);
	const struct plan_route *r;
	struct config *cfg;
	struct plan plan;
	size_t sources = 0;

	(void)state;
	config_edited("tests/data/config/express-route.json", NULL, &cfg);
	plan_with(cfg, learned, &plan);
	for (size_t i = 0; i < plan.n_source_prefixes; i++)
		if (plan.source_prefixes[i].key.scope == VLAN_IFINDEX) {
			sources++;
			assert_int_equal(plan.source_prefixes[i].info.route_scope, scope);
			assert_int_equal(plan.source_prefixes[i].info.vnet, config_find_vnet(cfg, "hub"));
		}
	assert_int_equal(sources, 2);
	r = route_in_scope(&plan, scope, "10.10.1.5");
	assert_int_equal(r->info.type, ROUTE_VNET_LOCAL);
	assert_int_equal(r->info.egress_ifindex, 11);
	r = route_in_scope(&plan, scope, "10.11.1.5");
	assert_int_equal(r->info.type, ROUTE_VNET_PEERING);
	assert_int_equal(r->info.egress_ifindex, 12);
	assert_null(route_in_scope(&plan, scope, "172.16.1.9"));
	assert_null(route_in_scope(&plan, scope, "8.8.8.8"));
	plan_free(&plan);
	config_free(cfg);
}

#define HUB_DEFAULT_SUBNET "{\"name\": \"default\", \"properties\": {\"addressPrefix\": \"10.10.1.0/24\"}}"
#define ROUTE_TABLE(props) \
	"\"resources\": [{\"type\": \"Microsoft.Network/routeTables\", \"name\": \"rt\"," \
	" \"properties\": {" props "}},"

/* A user route of the same prefix wins over the learned one (Azure: user, then BGP, then
 * system); the learned one stays, Invalid, as Azure shows an overridden route. */
static void user_route_of_the_same_prefix_wins_over_the_learned_one(void **state)
{
	const char *const edits[] = {
		"\"resources\": [", ROUTE_TABLE("\"routes\": [{\"name\": \"blackhole\", \"properties\":"
			" {\"addressPrefix\": \"172.16.1.0/24\", \"nextHopType\": \"None\"}}]"),
		HUB_DEFAULT_SUBNET,
		"{\"name\": \"default\", \"properties\": {\"addressPrefix\": \"10.10.1.0/24\","
		" \"routeTable\": {\"id\": \"rt\"}}}",
		NULL };
	const char *const learned[] = { "172.16.1.0/24", NULL };
	const struct plan_route *active;
	struct config *cfg;
	struct plan plan;
	uint32_t hub, scope;

	(void)state;
	config_edited("tests/data/config/express-route.json", edits, &cfg);
	plan_with(cfg, learned, &plan);
	hub = (uint32_t)config_find_vnet(cfg, "hub");
	scope = subnet_route_scope(hub, 0);
	assert_int_equal(routes_of_prefix(&plan, scope, "172.16.1.0/24", &active), 2);
	assert_int_equal(active->source, ROUTE_SOURCE_USER);
	assert_int_equal(active->info.type, ROUTE_NONE);
	/* the GatewaySubnet has no table: the learned route is its */
	assert_learned_route(cfg, route_in_scope(&plan, subnet_route_scope(hub, 1), "172.16.1.9"));
	plan_free(&plan);
	config_free(cfg);
}

/* disableBgpRoutePropagation on a subnet's table keeps learned routes out of that subnet
 * (the route model is per subnet scope); the VNet's other subnets keep them. */
static void disable_bgp_route_propagation_keeps_learned_routes_out_of_the_subnet(void **state)
{
	const char *const edits[] = {
		"\"resources\": [", ROUTE_TABLE("\"disableBgpRoutePropagation\": true, \"routes\": []"),
		HUB_DEFAULT_SUBNET,
		"{\"name\": \"default\", \"properties\": {\"addressPrefix\": \"10.10.1.0/24\","
		" \"routeTable\": {\"id\": \"rt\"}}}",
		NULL };
	const char *const learned[] = { "172.16.1.0/24", NULL };
	const struct plan_route *active;
	struct config *cfg;
	struct plan plan;
	uint32_t hub;

	(void)state;
	config_edited("tests/data/config/express-route.json", edits, &cfg);
	plan_with(cfg, learned, &plan);
	hub = (uint32_t)config_find_vnet(cfg, "hub");
	assert_int_equal(routes_of_prefix(&plan, subnet_route_scope(hub, 0), "172.16.1.0/24", &active), 0);
	assert_int_equal(route_in_scope(&plan, subnet_route_scope(hub, 0), "172.16.1.9")->info.type,
			 ROUTE_NONE);
	assert_learned_route(cfg, route_in_scope(&plan, subnet_route_scope(hub, 1), "172.16.1.9"));
	assert_learned_route(cfg, route_in_scope(&plan, config_find_vnet(cfg, "spoke1"), "172.16.1.9"));
	plan_free(&plan);
	config_free(cfg);
}

/* The hub's gateway (tests/data/config/ipsec-transit.json) with a site-to-site connection
 * and an ExpressRoute one (the config holds one gateway per VNet, so the coexisting pair
 * is one gateway here): for the same prefix ExpressRoute wins over the local network
 * gateway's, which stays, Invalid; the site's other prefixes keep going into the tunnel. */
static void express_route_wins_over_the_local_network_gateways_prefix(void **state)
{
	const char *const edits[] = {
		"\"virtualNetworkGateways\": [",
		"\"expressRouteConnections\": [{\"name\": \"to-circuit\", \"interface\": \"er0.100\"}],"
		" \"virtualNetworkGateways\": [",
		"\"resources\": [",
		"\"resources\": ["
		"{\"type\": \"Microsoft.Network/expressRouteCircuits\", \"name\": \"circuit1\","
		" \"properties\": {\"peerings\": [{\"name\": \"AzurePrivatePeering\", \"properties\": {"
		" \"peeringType\": \"AzurePrivatePeering\", \"peerASN\": 64512, \"vlanId\": 100,"
		" \"primaryPeerAddressPrefix\": \"192.168.15.16/30\"}}]}},"
		"{\"type\": \"Microsoft.Network/connections\", \"name\": \"to-circuit\","
		" \"properties\": {\"connectionType\": \"ExpressRoute\","
		" \"virtualNetworkGateway1\": {\"id\": \"hub-vpngw\"}, \"peer\": {\"id\": \"circuit1\"}}},",
		NULL };
	const char *const learned[] = { "192.168.50.0/24", NULL };
	const struct plan_route *active;
	struct config *cfg;
	struct plan plan;
	uint32_t hub;

	(void)state;
	config_edited("tests/data/config/ipsec-transit.json", edits, &cfg);
	plan_with(cfg, learned, &plan);
	hub = (uint32_t)config_find_vnet(cfg, "hub");
	assert_int_equal(routes_of_prefix(&plan, hub, "192.168.50.0/24", &active), 2);
	assert_learned_route(cfg, active);
	active = route_in_scope(&plan, hub, "172.20.1.1");
	assert_int_equal(active->source, ROUTE_SOURCE_GATEWAY);
	assert_int_equal(active->info.peering, plan.tunnels[0].id);
	/* the spoke that uses the hub's gateways sees the same */
	assert_learned_route(cfg, route_in_scope(&plan, config_find_vnet(cfg, "spoke1"), "192.168.50.9"));
	plan_free(&plan);
	config_free(cfg);
}

/* `routes -j` shows a learned route as Active, origin BGP, with its AS path and link. */
static void routes_json_shows_a_learned_route_active_with_its_as_path(void **state)
{
	const char *const learned[] = { "172.16.1.0/24", NULL };
	const struct plan_route *r;
	struct config *cfg;
	struct plan plan;
	json_t *o;

	(void)state;
	config_edited("tests/data/config/express-route.json", NULL, &cfg);
	plan_with(cfg, learned, &plan);
	r = route_in_scope(&plan, config_find_vnet(cfg, "hub"), "172.16.1.9");
	o = effective_route_json(cfg, r, ifindexes);
	assert_string_equal(json_string_value(json_object_get(o, "state")), "Active");
	assert_string_equal(json_string_value(json_object_get(o, "origin")), "BGP");
	assert_string_equal(json_string_value(json_object_get(o, "asPath")), "64512");
	assert_string_equal(json_string_value(json_object_get(o, "connection")), "to-circuit");
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "nextHopIpAddress"), 0)),
			    "192.168.15.17");
	json_decref(o);
	plan_free(&plan);
	config_free(cfg);
}

/* A link whose VLAN device is missing routes nothing. */
static void missing_vlan_device_routes_nothing(void **state)
{
	static const uint32_t none[] = { 0 };
	struct plan_learned_route route = { .as_path = NULL };
	struct plan_learned in = { .link_ifindexes = none, .routes = &route, .n_routes = 1 };
	struct config *cfg;
	struct plan plan;

	(void)state;
	config_edited("tests/data/config/express-route.json", NULL, &cfg);
	assert_int_equal(ip_prefix_parse("172.16.1.0/24", &route.prefix), 0);
	assert_int_equal(plan_build_learned(cfg, ifindexes, &in, &plan), 0);
	assert_int_equal(route_in_scope(&plan, config_find_vnet(cfg, "hub"), "172.16.1.9")->info.type,
			 ROUTE_NONE);
	plan_free(&plan);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(learned_prefix_is_a_bgp_route_of_the_gateways_vnet_and_its_transit_spoke),
		cmocka_unit_test(withdrawn_prefix_leaves_no_route),
		cmocka_unit_test(link_accepts_sources_of_learned_prefixes_into_the_hub_and_its_spoke),
		cmocka_unit_test(user_route_of_the_same_prefix_wins_over_the_learned_one),
		cmocka_unit_test(disable_bgp_route_propagation_keeps_learned_routes_out_of_the_subnet),
		cmocka_unit_test(express_route_wins_over_the_local_network_gateways_prefix),
		cmocka_unit_test(routes_json_shows_a_learned_route_active_with_its_as_path),
		cmocka_unit_test(missing_vlan_device_routes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

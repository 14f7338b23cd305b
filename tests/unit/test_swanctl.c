/* IPsec connections on the loader side, without a kernel: which connections this box
 * terminates, the routes they give VNets (gateway transit included), Azure's policies as
 * strongSwan proposals, the swanctl.conf rendered for charon and charon's SA listing
 * (the file a sharedKey is read from: test_secrets.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "config.h"
#include "plan.h"
#include "swanctl.h"
#include "tunnel.h"
#include "tunnel_stats.h"

#define TRANSIT_CONFIG "tests/data/config/ipsec-transit.json"
#define HUB 0
#define SPOKE1 1
#define SPOKE2 2

static const uint32_t ifindexes[] = { 11, 12, 13, 14 };

static struct config *load(const char *path)
{
	struct config *cfg = NULL;

	assert_int_equal(config_load(path, stderr, &cfg), 0);
	return cfg;
}

static char *render(const struct config *cfg)
{
	struct tunnel *tunnels;
	size_t count, size = 0;
	char *text = NULL;
	FILE *out = open_memstream(&text, &size);

	assert_int_equal(tunnels_of_config(cfg, stderr, &tunnels, &count), 0);
	assert_int_equal(swanctl_render(out, cfg, tunnels, count), 0);
	fclose(out);
	free(tunnels);
	return text;
}

/* ---- which connections, which routes ---- */

static void the_bound_gateway_terminates_its_connection(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	struct tunnel *t;
	size_t n;
	char peer[INET_ADDRSTRLEN], local[INET_ADDRSTRLEN];

	assert_int_equal(tunnels_of_config(cfg, stderr, &t, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].name, "to-onprem");
	assert_string_equal(t[0].ifname, "vx0-ipsecgw");
	assert_int_equal(t[0].if_id, TUNNEL_IF_ID_BASE);
	assert_int_equal(t[0].vnet, HUB);
	inet_ntop(AF_INET, t[0].peer.addr, peer, sizeof(peer));
	inet_ntop(AF_INET, t[0].local.addr, local, sizeof(local));
	assert_string_equal(peer, "198.51.100.2");
	assert_string_equal(local, "198.51.100.1");
	assert_int_equal(t[0].n_remote_prefixes, 2);
	free(t);
	config_free(cfg);
}

static const struct plan_route *find_route(const struct plan *plan, uint32_t scope,
					   const char *prefix)
{
	struct ip_prefix p;

	assert_int_equal(ip_prefix_parse(prefix, &p), 0);
	for (size_t i = 0; i < plan->n_routes; i++)
		if (plan->routes[i].key.scope == scope && plan->routes[i].prefix.len == p.len &&
		    !memcmp(plan->routes[i].prefix.addr, p.addr, 16))
			return &plan->routes[i];
	return NULL;
}

static void onprem_routes_reach_the_hub_and_transit_spokes_only(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	const struct plan_route *r;
	struct plan plan;

	assert_int_equal(plan_build(cfg, ifindexes, &plan), 0);
	assert_int_equal(plan.n_tunnels, 1);
	/* The hub's own gateway. */
	r = find_route(&plan, HUB, "192.168.50.0/24");
	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_TUNNEL);
	assert_int_equal(r->info.peering, 0); /* the tunnel id */
	assert_int_equal(find_route(&plan, HUB, "172.20.0.0/16")->info.type, ROUTE_TUNNEL);
	/* spoke1 uses the hub's gateway (useRemoteGateways + allowGatewayTransit). */
	r = find_route(&plan, SPOKE1, "192.168.50.0/24");
	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_TUNNEL);
	/* spoke2 does not: 192.168/16 stays Azure's None route for it. */
	assert_null(find_route(&plan, SPOKE2, "192.168.50.0/24"));
	assert_int_equal(find_route(&plan, SPOKE2, "192.168.0.0/16")->info.type, ROUTE_NONE);
	plan_free(&plan);
	config_free(cfg);
}

static void decrypted_traffic_reaches_the_hub_and_transit_spokes_only(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	const uint32_t scope = TUNNEL_ROUTE_SCOPE | 0;
	const struct plan_route *r;
	struct plan plan;

	assert_int_equal(plan_build(cfg, ifindexes, &plan), 0);
	r = find_route(&plan, scope, "10.10.0.0/16");
	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_VNET_LOCAL);
	assert_int_equal(r->info.egress_ifindex, 11);
	r = find_route(&plan, scope, "10.11.0.0/16");
	assert_non_null(r);
	assert_int_equal(r->info.type, ROUTE_VNET_PEERING);
	assert_int_equal(r->info.egress_ifindex, 12);
	assert_int_equal(plan.peerings[r->info.peering].vnet, HUB);
	assert_int_equal(plan.peerings[r->info.peering].remote_vnet, SPOKE1);
	assert_null(find_route(&plan, scope, "10.12.0.0/16"));
	/* Without the xfrm interface (no kernel here) there is no source check to scope. */
	for (size_t i = 0; i < plan.n_source_prefixes; i++)
		assert_int_not_equal(plan.source_prefixes[i].key.scope, 0);
	plan_free(&plan);
	config_free(cfg);
}

static void without_gateway_transit_the_spoke_has_no_onprem_route(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	struct plan plan;

	/* The hub withdraws allowGatewayTransit towards spoke1. */
	for (size_t p = 0; p < cfg->vnets[HUB].n_peerings; p++)
		cfg->vnets[HUB].peerings[p].allow_gateway_transit = false;
	assert_int_equal(plan_build(cfg, ifindexes, &plan), 0);
	assert_null(find_route(&plan, SPOKE1, "192.168.50.0/24"));
	assert_null(find_route(&plan, TUNNEL_ROUTE_SCOPE, "10.11.0.0/16"));
	assert_non_null(find_route(&plan, HUB, "192.168.50.0/24"));
	plan_free(&plan);
	config_free(cfg);
}

/* Two VNets with their gateways; this box binds only gw-a. */
static const char *const vnet2vnet_text =
	"{\"gateway\": {\"name\": \"a\", \"interfaces\": ["
	"  {\"name\": \"to-a\", \"virtualNetwork\": \"a\"}, {\"name\": \"up0\", \"role\": \"uplink\"}],"
	"  \"virtualNetworkGateways\": [{\"name\": \"gw-a\", \"address\": \"203.0.113.1\"}]},"
	" \"resources\": ["
	"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"a\", \"properties\": {"
	"    \"addressSpace\": {\"addressPrefixes\": [\"10.1.0.0/16\"]},"
	"    \"subnets\": [{\"name\": \"GatewaySubnet\", \"properties\": {\"addressPrefix\": \"10.1.255.0/27\"}}]}},"
	"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"b\", \"properties\": {"
	"    \"addressSpace\": {\"addressPrefixes\": [\"10.2.0.0/16\"]},"
	"    \"subnets\": [{\"name\": \"GatewaySubnet\", \"properties\": {\"addressPrefix\": \"10.2.255.0/27\"}}]}},"
	"  {\"type\": \"Microsoft.Network/publicIPAddresses\", \"name\": \"pip-b\", \"properties\": {\"ipAddress\": \"203.0.113.2\"}},"
	"  {\"type\": \"Microsoft.Network/virtualNetworkGateways\", \"name\": \"gw-a\", \"properties\": {"
	"    \"ipConfigurations\": [{\"name\": \"c\", \"properties\": {\"subnet\": {\"id\": \"a/GatewaySubnet\"}}}]}},"
	"  {\"type\": \"Microsoft.Network/virtualNetworkGateways\", \"name\": \"gw-b\", \"properties\": {"
	"    \"ipConfigurations\": [{\"name\": \"c\", \"properties\": {\"subnet\": {\"id\": \"b/GatewaySubnet\"},"
	"      \"publicIPAddress\": {\"id\": \"pip-b\"}}}]}},"
	"  {\"type\": \"Microsoft.Network/connections\", \"name\": \"a-to-b\", \"properties\": {"
	"    \"connectionType\": \"Vnet2Vnet\", \"sharedKey\": \"k\","
	"    \"virtualNetworkGateway1\": {\"id\": \"gw-a\"}, \"virtualNetworkGateway2\": {\"id\": \"gw-b\"}}},"
	"  {\"type\": \"Microsoft.Network/connections\", \"name\": \"b-to-a\", \"properties\": {"
	"    \"connectionType\": \"Vnet2Vnet\", \"sharedKey\": \"k\","
	"    \"virtualNetworkGateway1\": {\"id\": \"gw-b\"}, \"virtualNetworkGateway2\": {\"id\": \"gw-a\"}}}"
	"]}";

static void vnet2vnet_pair_makes_one_tunnel_to_the_other_public_ip(void **state)
{
	struct config *cfg = NULL;
	struct tunnel *t;
	size_t n;
	char peer[INET_ADDRSTRLEN], prefix[INET_ADDRSTRLEN];

	assert_int_equal(config_load_string(vnet2vnet_text, "v2v.json", stderr, &cfg), 0);
	assert_int_equal(tunnels_of_config(cfg, stderr, &t, &n), 0);
	assert_int_equal(n, 1); /* both directions of the pair: one tunnel */
	assert_string_equal(t[0].name, "a-to-b");
	inet_ntop(AF_INET, t[0].peer.addr, peer, sizeof(peer));
	assert_string_equal(peer, "203.0.113.2");
	assert_int_equal(t[0].n_remote_prefixes, 1);
	inet_ntop(AF_INET, t[0].remote_prefixes[0].addr, prefix, sizeof(prefix));
	assert_string_equal(prefix, "10.2.0.0");
	free(t);
	/* Without the other side's public IP there is nobody to talk to: said clearly. */
	cfg->vnet_gateways[1].n_public_ips = 0;
	{
		char *text = NULL;
		size_t size = 0;
		FILE *errors = open_memstream(&text, &size);

		assert_int_equal(tunnels_of_config(cfg, errors, &t, &n), -EDESTADDRREQ);
		fclose(errors);
		assert_non_null(strstr(text, "connection \"a-to-b\": the other side has no address"));
		free(text);
	}
	config_free(cfg);
}

/* ---- proposals ---- */

struct proposal_case {
	const char *enc, *integ, *group, *expected; /* expected NULL: refused */
};

typedef int proposal_fn(const struct config_ipsec_policy *, char *, size_t, const char **);

static void check_proposals(const struct proposal_case *cases, size_t n, proposal_fn *fn,
			    bool ike)
{
	for (size_t i = 0; i < n; i++) {
		struct config_ipsec_policy p = { 0 };
		char buf[128];
		const char *why = NULL;
		int rc;

		if (ike) {
			p.ike_encryption = (char *)cases[i].enc;
			p.ike_integrity = (char *)cases[i].integ;
			p.dh_group = (char *)cases[i].group;
		} else {
			p.ipsec_encryption = (char *)cases[i].enc;
			p.ipsec_integrity = (char *)cases[i].integ;
			p.pfs_group = (char *)cases[i].group;
		}
		rc = fn(&p, buf, sizeof(buf), &why);
		if (cases[i].expected) {
			assert_int_equal(rc, 0);
			assert_string_equal(buf, cases[i].expected);
		} else {
			assert_int_equal(rc, -EINVAL);
			assert_non_null(why);
		}
	}
}

static void ike_proposals_follow_the_policy(void **state)
{
	static const struct proposal_case cases[] = {
		{ "AES256", "SHA256", "DHGroup14", "aes256-sha256-modp2048" },
		{ "AES128", "SHA1", "DHGroup2", "aes128-sha1-modp1024" },
		{ "DES3", "SHA384", "ECP384", "3des-sha384-ecp384" },
		{ "GCMAES256", "GCMAES256", "ECP384", "aes256gcm16-prfsha384-ecp384" },
		{ "GCMAES128", "GCMAES128", "DHGroup24", "aes128gcm16-prfsha256-modp2048s256" },
		{ "AES192", "MD5", "DHGroup2048", "aes192-md5-modp2048" },
		{ "AES256", "GCMAES256", "DHGroup14", NULL },
		{ "GCMAES256", "SHA256", "DHGroup14", NULL },
		{ "AES256", "SHA256", "None", NULL },
	};

	check_proposals(cases, sizeof(cases) / sizeof(*cases), swanctl_ike_proposal, true);
}

static void esp_proposals_follow_the_policy(void **state)
{
	static const struct proposal_case cases[] = {
		{ "GCMAES256", "GCMAES256", "None", "aes256gcm16" },
		{ "GCMAES128", "GCMAES128", "ECP256", "aes128gcm16-ecp256" },
		{ "AES256", "SHA256", "PFS2048", "aes256-sha256-modp2048" },
		{ "AES128", "SHA1", "PFS14", "aes128-sha1-modp2048" },
		{ "DES3", "MD5", "PFS24", "3des-md5-modp2048s256" },
		{ "None", "SHA256", "None", "null-sha256" },
		{ "AES256", "SHA256", "PFSMM", NULL },
		{ "GCMAES256", "GCMAES128", "None", NULL },
		{ "AES256", "GCMAES256", "None", NULL },
	};

	check_proposals(cases, sizeof(cases) / sizeof(*cases), swanctl_esp_proposal, false);
}

/* ---- swanctl.conf ---- */

static void default_connection_renders_azure_defaults_bound_to_its_if_id(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	char *text = render(cfg);

	assert_non_null(strstr(text, "  ipsecgw-to-onprem {\n    version = 2\n"
				     "    local_addrs = 198.51.100.1\n    remote_addrs = 198.51.100.2\n"
				     "    proposals = " AZURE_DEFAULT_IKE_PROPOSALS "\n"));
	assert_non_null(strstr(text, "    dpd_delay = 15s\n")); /* dpdTimeoutSeconds 45 */
	assert_non_null(strstr(text, "    if_id_in = 30208\n    if_id_out = 30208\n"));
	assert_non_null(strstr(text, "        local_ts = 0.0.0.0/0,::/0\n"
				     "        remote_ts = 0.0.0.0/0,::/0\n"));
	assert_non_null(strstr(text, "        esp_proposals = " AZURE_DEFAULT_ESP_PROPOSALS "\n"));
	assert_non_null(strstr(text, "        rekey_time = 27000s\n"));
	assert_non_null(strstr(text, "        rekey_bytes = 104857600000\n"));
	assert_non_null(strstr(text, "    local {\n      auth = psk\n      id = 198.51.100.1\n"));
	/* The secret, escaped for swanctl.conf. */
	assert_non_null(strstr(text, "  ike-0 {\n    id-local = 198.51.100.1\n"
				     "    id-remote = 198.51.100.2\n"
				     "    secret = \"s3cret \\\"quoted\\\"\"\n  }\n"));
	free(text);
	config_free(cfg);
}

static void policy_based_selectors_and_a_custom_policy(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	struct config_ipsec_policy policy = {
		.ipsec_encryption = "GCMAES256", .ipsec_integrity = "GCMAES256",
		.ike_encryption = "AES256", .ike_integrity = "SHA384", .dh_group = "DHGroup24",
		.pfs_group = "PFS24", .sa_lifetime_seconds = 3600, .sa_data_size_kilobytes = 2048,
	};
	char *text;

	cfg->connections[0].use_policy_based_traffic_selectors = true;
	cfg->connections[0].ipsec_policies = &policy;
	cfg->connections[0].n_ipsec_policies = 1;
	text = render(cfg);
	assert_non_null(strstr(text, "        local_ts = 10.10.0.0/16\n"
				     "        remote_ts = 192.168.50.0/24,172.20.0.0/16\n"));
	assert_non_null(strstr(text, "    proposals = aes256-sha384-modp2048s256\n"));
	assert_non_null(strstr(text, "        esp_proposals = aes256gcm16-modp2048s256\n"));
	assert_non_null(strstr(text, "        rekey_time = 3600s\n        rekey_bytes = 2097152\n"));
	free(text);
	cfg->connections[0].ipsec_policies = NULL;
	cfg->connections[0].n_ipsec_policies = 0;
	config_free(cfg);
}

static void a_secret_with_a_line_break_is_refused(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	struct tunnel *t;
	size_t n, size = 0;
	char *text = NULL, *saved = cfg->connections[0].shared_key;
	FILE *out = open_memstream(&text, &size);

	cfg->connections[0].shared_key = "a\nb";
	assert_int_equal(tunnels_of_config(cfg, stderr, &t, &n), 0);
	assert_int_equal(swanctl_render(out, cfg, t, n), -EINVAL);
	fclose(out);
	free(text);
	free(t);
	cfg->connections[0].shared_key = saved;
	config_free(cfg);
}

/* ---- charon's SA listing ---- */

static void sa_listing_says_which_tunnels_are_up(void **state)
{
	const char *listing =
		"list-sa event {gw-up {uniqueid=1 version=2 state=ESTABLISHED local-host=198.51.100.1 "
		"child-sas {gw-up-1 {name=gw-up state=INSTALLED spi-in=c1a2b3c4}}}}\n"
		"list-sa event {gw-connecting {uniqueid=2 version=2 state=CONNECTING child-sas {}}}\n"
		"list-sa event {gw-nochild {uniqueid=3 version=2 state=ESTABLISHED child-sas {}}}\n";

	assert_int_equal(swanctl_sa_is_up(listing, "gw-up"), 1);
	assert_int_equal(swanctl_sa_is_up(listing, "gw-connecting"), 0);
	assert_int_equal(swanctl_sa_is_up(listing, "gw-nochild"), 0);
	assert_int_equal(swanctl_sa_is_up(listing, "gw"), 0);
	assert_int_equal(swanctl_sa_is_up("", "gw-up"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_bound_gateway_terminates_its_connection),
		cmocka_unit_test(onprem_routes_reach_the_hub_and_transit_spokes_only),
		cmocka_unit_test(decrypted_traffic_reaches_the_hub_and_transit_spokes_only),
		cmocka_unit_test(without_gateway_transit_the_spoke_has_no_onprem_route),
		cmocka_unit_test(vnet2vnet_pair_makes_one_tunnel_to_the_other_public_ip),
		cmocka_unit_test(ike_proposals_follow_the_policy),
		cmocka_unit_test(esp_proposals_follow_the_policy),
		cmocka_unit_test(default_connection_renders_azure_defaults_bound_to_its_if_id),
		cmocka_unit_test(policy_based_selectors_and_a_custom_policy),
		cmocka_unit_test(a_secret_with_a_line_break_is_refused),
		cmocka_unit_test(sa_listing_says_which_tunnels_are_up),
	};

	return cmocka_run_group_tests_name("swanctl", tests, NULL, NULL);
}

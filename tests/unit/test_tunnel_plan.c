/* The tunnels of a config (compile/tunnel_plan.c): each connection's xfrm interface, a
 * name that fits IFNAMSIZ untruncated and an if_id, both apart across the gateways of one
 * host (two gateways with long names, tunnels 1 and 10 of each) and both kept by a
 * connection when others come before it; a Vnet2Vnet pair as one tunnel; the MTU inside. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <net/if.h>
#include <sys/socket.h>
#include "config/config.h"
#include "compile/tunnel_plan.h"

#define CONNECTIONS 12
#define TRANSIT_CONFIG "tests/data/config/ipsec-transit.json"

static struct config *load(const char *path)
{
	struct config *cfg = NULL;

	assert_int_equal(config_load(path, stderr, &cfg), 0);
	return cfg;
}

/* A gateway named `gateway` terminating `n` IPsec connections, "c<first>" onwards, each to
 * its own on-premises gateway (distinct peers: none folds into another). */
static struct config *gateway_with_connections(const char *gateway, int first, int n)
{
	char text[16384];
	size_t len;
	struct config *cfg = NULL;

	len = (size_t)snprintf(text, sizeof(text),
		"{\"gateway\": {\"name\": \"%s\", \"interfaces\": [{\"name\": \"to-hub\", "
		"\"virtualNetwork\": \"hub\"}, {\"name\": \"uplink0\", \"role\": \"uplink\"}], "
		"\"virtualNetworks\": [{\"name\": \"hub\"}], \"virtualNetworkGateways\": "
		"[{\"name\": \"vpngw\", \"address\": \"198.51.100.1\"}]}, \"resources\": ["
		"{\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"hub\", \"properties\": "
		"{\"addressSpace\": {\"addressPrefixes\": [\"10.10.0.0/16\"]}, \"subnets\": ["
		"{\"name\": \"GatewaySubnet\", \"properties\": {\"addressPrefix\": \"10.10.255.0/27\"}}]}},"
		"{\"type\": \"Microsoft.Network/virtualNetworkGateways\", \"name\": \"vpngw\", "
		"\"properties\": {\"ipConfigurations\": [{\"name\": \"c\", \"properties\": "
		"{\"subnet\": {\"id\": \"hub/GatewaySubnet\"}}}]}}", gateway);
	for (int i = first; i < first + n; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
			", {\"type\": \"Microsoft.Network/localNetworkGateways\", \"name\": \"onprem%d\", "
			"\"properties\": {\"gatewayIpAddress\": \"203.0.113.%d\", "
			"\"localNetworkAddressSpace\": {\"addressPrefixes\": [\"172.16.%d.0/24\"]}}}"
			", {\"type\": \"Microsoft.Network/connections\", \"name\": \"c%d\", \"properties\": "
			"{\"connectionType\": \"IPsec\", \"virtualNetworkGateway1\": {\"id\": \"vpngw\"}, "
			"\"localNetworkGateway2\": {\"id\": \"onprem%d\"}}}", i, i + 1, i, i, i);
	snprintf(text + len, sizeof(text) - len, "]}");
	assert_int_equal(config_load_string(text, "test", stderr, &cfg), 0);
	return cfg;
}

static struct tunnel *tunnels_of(const struct config *cfg, size_t expected)
{
	struct tunnel *tunnels;
	size_t n;

	assert_int_equal(tunnels_of_config(cfg, stderr, &tunnels, &n), 0);
	assert_int_equal(n, expected);
	return tunnels;
}

/* "vx" and eight hex digits: shorter than IFNAMSIZ, so nothing was cut off. */
static void assert_whole_name(const char *ifname)
{
	assert_int_equal(strlen(ifname), 10);
	assert_true(strlen(ifname) < IF_NAMESIZE);
	assert_memory_equal(ifname, "vx", 2);
	for (size_t i = 2; i < 10; i++)
		assert_true(isxdigit((unsigned char)ifname[i]) && !isupper((unsigned char)ifname[i]));
}

static void two_long_named_gateways_never_share_an_interface_name_or_if_id(void **state)
{
	/* 15 characters each, the most a name may have, alike but for the last one. */
	struct config *a = gateway_with_connections("gateway-east-01", 0, CONNECTIONS);
	struct config *b = gateway_with_connections("gateway-east-02", 0, CONNECTIONS);
	struct tunnel *ta = tunnels_of(a, CONNECTIONS), *tb = tunnels_of(b, CONNECTIONS);
	const struct tunnel *all[2 * CONNECTIONS];

	(void)state;
	for (size_t i = 0; i < CONNECTIONS; i++) {
		all[i] = &ta[i];
		all[CONNECTIONS + i] = &tb[i];
	}
	for (size_t i = 0; i < 2 * CONNECTIONS; i++) {
		assert_whole_name(all[i]->ifname);
		assert_int_not_equal(all[i]->if_id, 0);
		for (size_t k = 0; k < i; k++) {
			assert_string_not_equal(all[i]->ifname, all[k]->ifname);
			assert_int_not_equal(all[i]->if_id, all[k]->if_id);
		}
	}
	free(ta);
	free(tb);
	config_free(a);
	config_free(b);
}

static void a_connection_keeps_its_interface_when_others_come_before_it(void **state)
{
	struct config *alone = gateway_with_connections("gw", 10, 1);
	struct config *after = gateway_with_connections("gw", 0, 11);
	struct tunnel *t1 = tunnels_of(alone, 1), *t11 = tunnels_of(after, 11);

	(void)state;
	assert_string_equal(t11[10].name, "c10");
	assert_string_equal(t1[0].ifname, t11[10].ifname);
	assert_int_equal(t1[0].if_id, t11[10].if_id);
	free(t1);
	free(t11);
	config_free(alone);
	config_free(after);
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

/* Inner MTU = the largest packet whose ESP (IP, UDP for NAT-T, SPI and sequence, IV,
 * padding to the cipher's block, pad length and next header, ICV) fits the underlay. */
static void tunnel_mtu_leaves_room_for_the_largest_esp_of_the_proposal(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	struct config_ipsec_policy policy = {
		.ipsec_encryption = "GCMAES256", .ipsec_integrity = "GCMAES256",
		.ike_encryption = "AES256", .ike_integrity = "SHA256", .dh_group = "DHGroup14",
		.pfs_group = "PFS2048", .sa_lifetime_seconds = 3600, .sa_data_size_kilobytes = 2048,
	};
	struct config_connection *c = &cfg->connections[0];

	/* Azure's defaults: AES-CBC with SHA256 needs the most, 1500 - 20 - 8 - 8 - 16 - 16
	 * rounded down to 16-byte blocks, less 2. */
	assert_int_equal(tunnel_inner_mtu(c, AF_INET, 1500), 1422);
	assert_int_equal(tunnel_inner_mtu(c, AF_INET6, 1500), 1406);
	c->ipsec_policies = &policy;
	c->n_ipsec_policies = 1;
	assert_int_equal(tunnel_inner_mtu(c, AF_INET, 1500), 1438);
	policy.ipsec_encryption = "AES256";
	policy.ipsec_integrity = "SHA256";
	assert_int_equal(tunnel_inner_mtu(c, AF_INET, 1500), 1422);
	policy.ipsec_encryption = "DES3";
	policy.ipsec_integrity = "SHA1";
	assert_int_equal(tunnel_inner_mtu(c, AF_INET, 1500), 1438);
	assert_int_equal(tunnel_inner_mtu(c, AF_INET, 9000), 8942);
	assert_int_equal(tunnel_inner_mtu(c, AF_INET, 40), 0);
	c->ipsec_policies = NULL;
	c->n_ipsec_policies = 0;
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(two_long_named_gateways_never_share_an_interface_name_or_if_id),
		cmocka_unit_test(a_connection_keeps_its_interface_when_others_come_before_it),
		cmocka_unit_test(vnet2vnet_pair_makes_one_tunnel_to_the_other_public_ip),
		cmocka_unit_test(tunnel_mtu_leaves_room_for_the_largest_esp_of_the_proposal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

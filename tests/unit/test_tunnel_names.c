/* Each connection's xfrm interface: a name that fits IFNAMSIZ untruncated and an if_id,
 * both apart across the gateways of one host (two gateways with long names, tunnels 1
 * and 10 of each) and both kept by a connection when others come before it. */
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
#include "config/config.h"
#include "datapath/tunnel.h"

#define CONNECTIONS 12

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(two_long_named_gateways_never_share_an_interface_name_or_if_id),
		cmocka_unit_test(a_connection_keeps_its_interface_when_others_come_before_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

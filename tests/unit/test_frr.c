/* ExpressRoute private peering on the loader side, without a process: what the reader
 * refuses (each with the path of what is wrong), what it resolves (the /30's addresses,
 * the ASNs, the advertised spaces) and the frr.conf bgpd is given. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "config/config.h"
#include "compile/frr.h"

#define SAMPLE "tests/data/config/express-route.json"
#define CIRCUIT "/resources/3/properties/peerings/0/properties"
#define BINDING "/gateway/expressRouteConnections/0"

static json_t *sample(void)
{
	json_error_t error;
	json_t *doc = json_load_file(SAMPLE, 0, &error);

	assert_non_null(doc);
	return doc;
}

/* Sets the value at a JSON pointer (its parent must exist); NULL deletes it. */
static void set(json_t *doc, const char *pointer, json_t *value)
{
	char parent[256], *slash;
	json_t *node = doc;

	snprintf(parent, sizeof(parent), "%s", pointer);
	slash = strrchr(parent, '/');
	*slash = '\0';
	for (char *part = strtok(parent + 1, "/"); part; part = strtok(NULL, "/"))
		node = json_is_array(node) ? json_array_get(node, strtoul(part, NULL, 10)) :
					     json_object_get(node, part);
	assert_non_null(node);
	if (json_is_array(node))
		assert_int_equal(json_array_set_new(node, strtoul(slash + 1, NULL, 10), value), 0);
	else if (value)
		assert_int_equal(json_object_set_new(node, slash + 1, value), 0);
	else
		assert_int_equal(json_object_del(node, slash + 1), 0);
}

/* Loads doc; returns the messages (the caller frees) and *rc. */
static char *load_doc(json_t *doc, struct config **cfg, int *rc)
{
	char *text = json_dumps(doc, JSON_INDENT(1)), *messages = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&messages, &len);

	*rc = config_load_string(text, "er.json", errors, cfg);
	fclose(errors);
	free(text);
	json_decref(doc);
	return messages;
}

static void expect_refused(json_t *doc, const char *path, const char *what)
{
	struct config *cfg = NULL;
	int rc;
	char *messages = load_doc(doc, &cfg, &rc);

	if (rc <= 0 || !strstr(messages, path) || !strstr(messages, what))
		fail_msg("expected a refusal at %s (%s), got rc %d:\n%s", path, what, rc, messages);
	assert_null(cfg);
	free(messages);
}

static struct config *load_sample(void)
{
	struct config *cfg = NULL;
	int rc;
	char *messages = load_doc(sample(), &cfg, &rc);

	assert_int_equal(rc, 0);
	assert_non_null(cfg);
	free(messages);
	return cfg;
}

static void express_route_sample_is_valid_and_warns_of_forwarding(void **state)
{
	struct config *cfg = NULL;
	int rc;
	char *messages = load_doc(sample(), &cfg, &rc);

	(void)state;
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->n_express_route_circuits, 1);
	assert_int_equal(cfg->n_express_route_bindings, 1);
	assert_int_equal(cfg->express_route_circuits[0].peer_asn, 64512);
	assert_int_equal(cfg->express_route_circuits[0].vlan_id, 100);
	assert_int_equal(cfg->express_route_bindings[0].hold_time_seconds, 9);
	assert_int_equal(cfg->connections[0].type, CONNECTION_EXPRESS_ROUTE);
	assert_int_equal(cfg->n_unenforced, 1);
	assert_non_null(strstr(messages, "not in the NSGs' VirtualNetwork tag"));
	free(messages);
	config_free(cfg);
}

static void hold_time_defaults_to_azures_180(void **state)
{
	json_t *doc = sample();
	struct config *cfg = NULL;
	int rc;
	char *messages;

	(void)state;
	set(doc, BINDING "/holdTimeSeconds", NULL);
	set(doc, BINDING "/link", NULL);
	messages = load_doc(doc, &cfg, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->express_route_bindings[0].hold_time_seconds, 180);
	assert_int_equal(cfg->express_route_bindings[0].link, EXPRESS_ROUTE_PRIMARY);
	free(messages);
	config_free(cfg);
}

static void missing_circuit_is_refused(void **state)
{
	json_t *doc = sample();

	(void)state;
	set(doc, "/resources/4/properties/peer", json_pack("{s:s}", "id", "nosuch"));
	expect_refused(doc, "resources[4].properties.peer", "nosuch");
	doc = sample();
	set(doc, "/resources/4/properties/peer", NULL);
	expect_refused(doc, "resources[4].properties.peer", "needs its circuit");
}

static void circuit_without_private_peering_is_refused(void **state)
{
	json_t *doc = sample();

	(void)state;
	set(doc, CIRCUIT "/peeringType", json_string("MicrosoftPeering"));
	expect_refused(doc, "gateway.expressRouteConnections[0]", "has no private peering");
}

static void peer_prefix_not_a_slash_30_is_refused(void **state)
{
	json_t *doc = sample();

	(void)state;
	set(doc, CIRCUIT "/primaryPeerAddressPrefix", json_string("192.168.15.16/29"));
	expect_refused(doc, "peerings[0].properties.primaryPeerAddressPrefix", "not an IPv4 /30");
	doc = sample();
	set(doc, CIRCUIT "/primaryPeerAddressPrefix", NULL);
	expect_refused(doc, "peerings[0].properties.primaryPeerAddressPrefix", "missing");
}

static void secondary_link_needs_the_secondary_prefix(void **state)
{
	json_t *doc = sample();

	(void)state;
	set(doc, CIRCUIT "/secondaryPeerAddressPrefix", NULL);
	set(doc, BINDING "/link", json_string("Secondary"));
	expect_refused(doc, "gateway.expressRouteConnections[0].link", "no secondaryPeerAddressPrefix");
	doc = sample();
	set(doc, BINDING "/link", json_string("Tertiary"));
	expect_refused(doc, "gateway.expressRouteConnections[0].link", "Primary, Secondary");
}

static void reserved_or_own_asn_is_refused(void **state)
{
	json_t *doc = sample();

	(void)state;
	set(doc, CIRCUIT "/peerASN", json_integer(65517));
	expect_refused(doc, "peerings[0].properties.peerASN", "reserved by Azure");
	doc = sample();
	set(doc, CIRCUIT "/peerASN", json_integer(65515));
	expect_refused(doc, "peerings[0].properties.peerASN", "reserved by Azure");
	doc = sample();
	set(doc, "/resources/2/properties/bgpSettings", json_pack("{s:i}", "asn", 64512));
	expect_refused(doc, "gateway.expressRouteConnections[0]", "the gateway's own");
	doc = sample();
	set(doc, "/resources/2/properties/bgpSettings", json_pack("{s:i}", "asn", 65518));
	expect_refused(doc, "bgpSettings.asn", "reserved by Azure");
	doc = sample();
	set(doc, CIRCUIT "/peerASN", json_integer(0));
	expect_refused(doc, "peerings[0].properties.peerASN", "");
}

static void bad_vlan_and_hold_time_are_refused(void **state)
{
	json_t *doc = sample();

	(void)state;
	set(doc, CIRCUIT "/vlanId", json_integer(4095));
	expect_refused(doc, "peerings[0].properties.vlanId", "4094");
	doc = sample();
	set(doc, BINDING "/holdTimeSeconds", json_integer(2));
	expect_refused(doc, "gateway.expressRouteConnections[0].holdTimeSeconds", "3");
}

static void binding_must_name_an_express_route_connection(void **state)
{
	json_t *doc = sample();

	(void)state;
	set(doc, BINDING "/name", json_string("nosuch"));
	expect_refused(doc, "gateway.expressRouteConnections[0].name", "no connection \"nosuch\"");
	doc = sample();
	set(doc, BINDING "/interface", NULL);
	expect_refused(doc, "gateway.expressRouteConnections[0].interface", "VLAN");
	doc = sample();
	set(doc, BINDING "/interface", json_string("to-hub"));
	expect_refused(doc, "gateway.expressRouteConnections[0].interface", "also in gateway.interfaces");
	doc = sample();
	/* a gateway interface refused for its name is compared with nothing */
	set(doc, "/gateway/interfaces/2/name", json_string("/providers/uplink0"));
	expect_refused(doc, "gateway.interfaces[2].name", "");
	doc = sample();
	set(doc, BINDING "/colour", json_string("blue"));
	expect_refused(doc, "gateway.expressRouteConnections[0].colour", "unknown key");
}

static void link_takes_the_second_address_and_peers_with_the_first(void **state)
{
	struct config *cfg = load_sample();
	struct bgp_link link;

	(void)state;
	assert_int_equal(bgp_link_of(cfg, 0, &link), 0);
	assert_memory_equal(link.local, ((uint8_t[]){ 192, 168, 15, 18 }), 4);
	assert_memory_equal(link.peer, ((uint8_t[]){ 192, 168, 15, 17 }), 4);
	assert_int_equal(link.local_asn, 65515);
	assert_int_equal(link.peer_asn, 64512);
	/* the hub's space and spoke1's, which uses the hub's gateway */
	assert_int_equal(link.n_advertised, 2);
	bgp_link_release(&link);
	config_free(cfg);
}

static void frr_conf_peers_and_advertises(void **state)
{
	struct config *cfg = load_sample();
	struct bgp_link link;
	char *conf;

	(void)state;
	assert_int_equal(bgp_link_of(cfg, 0, &link), 0);
	conf = frr_conf_build(&link);
	assert_non_null(conf);
	assert_non_null(strstr(conf, "\nrouter bgp 65515\n"));
	assert_non_null(strstr(conf, " bgp router-id 192.168.15.18\n"));
	assert_non_null(strstr(conf, " neighbor 192.168.15.17 remote-as 64512\n"));
	assert_non_null(strstr(conf, " neighbor 192.168.15.17 timers 3 9\n"));
	assert_non_null(strstr(conf, " no bgp ebgp-requires-policy\n"));
	assert_non_null(strstr(conf, "  network 10.10.0.0/16\n"));
	assert_non_null(strstr(conf, "  network 10.11.0.0/16\n"));
	assert_non_null(strstr(conf, "  neighbor 192.168.15.17 activate\n"));
	free(conf);
	bgp_link_release(&link);
	config_free(cfg);
}

static void frr_conf_follows_the_secondary_link_and_asn(void **state)
{
	json_t *doc = sample();
	struct config *cfg = NULL;
	struct bgp_link link;
	char *messages, *conf;
	int rc;

	(void)state;
	set(doc, BINDING "/link", json_string("secondary"));
	set(doc, BINDING "/holdTimeSeconds", NULL);
	set(doc, "/resources/2/properties/bgpSettings", json_pack("{s:i}", "asn", 64600));
	/* spoke1 no longer uses the hub's gateway: only the hub's space is advertised */
	set(doc, "/resources/1/properties/virtualNetworkPeerings/0/properties/useRemoteGateways",
	    json_false());
	messages = load_doc(doc, &cfg, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(bgp_link_of(cfg, 0, &link), 0);
	conf = frr_conf_build(&link);
	assert_non_null(strstr(conf, "\nrouter bgp 64600\n"));
	assert_non_null(strstr(conf, " neighbor 192.168.15.21 remote-as 64512\n"));
	assert_non_null(strstr(conf, " neighbor 192.168.15.21 timers 60 180\n"));
	assert_non_null(strstr(conf, "  network 10.10.0.0/16\n"));
	assert_null(strstr(conf, "10.11.0.0"));
	free(conf);
	free(messages);
	bgp_link_release(&link);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(express_route_sample_is_valid_and_warns_of_forwarding),
		cmocka_unit_test(hold_time_defaults_to_azures_180),
		cmocka_unit_test(missing_circuit_is_refused),
		cmocka_unit_test(circuit_without_private_peering_is_refused),
		cmocka_unit_test(peer_prefix_not_a_slash_30_is_refused),
		cmocka_unit_test(secondary_link_needs_the_secondary_prefix),
		cmocka_unit_test(reserved_or_own_asn_is_refused),
		cmocka_unit_test(bad_vlan_and_hold_time_are_refused),
		cmocka_unit_test(binding_must_name_an_express_route_connection),
		cmocka_unit_test(link_takes_the_second_address_and_peers_with_the_first),
		cmocka_unit_test(frr_conf_peers_and_advertises),
		cmocka_unit_test(frr_conf_follows_the_secondary_link_and_asn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

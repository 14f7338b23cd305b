/* IPsec connections on the loader side, without a kernel: which connections this box
 * terminates, the routes they give VNets (gateway transit included), Azure's policies as
 * strongSwan proposals, the messages loaded into charon, charon's SA listing, the refusal
 * of a sharedKey other users can read, and, against a stand-in charon that keeps what it
 * is given, that a gateway only ever adds, changes and removes its own connections and
 * secrets, and puts the previous ones back when charon refuses a new one. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "config/config.h"
#include "compile/plan.h"
#include "compile/swanctl.h"
#include "datapath/tunnel.h"
#include "observe/tunnel_stats.h"
#include "lib/vici.h"

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

/* The set of the config's connections: its only one, by name, with the secret. */
static struct swanctl_set set_of(const struct config *cfg)
{
	struct tunnel *tunnels;
	struct swanctl_set set;
	size_t count;

	assert_int_equal(tunnels_of_config(cfg, stderr, &tunnels, &count), 0);
	assert_int_equal(swanctl_set_build(cfg, tunnels, count, &set), 0);
	free(tunnels);
	return set;
}

#define OURS "vnetxdp-ipsecgw.to-onprem"

/* The definition of the connection, as charon's load-conn gets it. */
static json_t *definition(const struct swanctl_set *set)
{
	json_t *msg = json_object_get(set->connections, OURS);

	assert_non_null(msg);
	return json_object_get(msg, OURS);
}

static void assert_list(const json_t *list, const char *const *items, size_t n)
{
	assert_true(json_is_array(list));
	assert_int_equal(json_array_size(list), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(json_string_value(json_array_get(list, i)), items[i]);
}

static const char *member(const json_t *o, const char *path)
{
	char buf[128], *save, *part;
	const json_t *at = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, "/", &save); part; part = strtok_r(NULL, "/", &save))
		at = json_object_get(at, part);
	return json_string_value(at);
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
	assert_string_equal(t[0].ifname, "vx0f36d761");
	assert_int_equal(t[0].if_id, 0x0f36d761);
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

/* ---- what charon is given ---- */

static void default_connection_carries_azure_defaults_bound_to_its_if_id(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	struct swanctl_set set = set_of(cfg);
	json_t *conn = definition(&set), *child;

	assert_string_equal(member(conn, "version"), "2");
	assert_list(json_object_get(conn, "local_addrs"), (const char *[]){ "198.51.100.1" }, 1);
	assert_list(json_object_get(conn, "remote_addrs"), (const char *[]){ "198.51.100.2" }, 1);
	assert_int_equal(json_array_size(json_object_get(conn, "proposals")), 6);
	assert_string_equal(json_string_value(json_array_get(json_object_get(conn, "proposals"), 0)),
			    "aes256-sha1-modp1024");
	assert_string_equal(member(conn, "dpd_delay"), "15s"); /* dpdTimeoutSeconds 45 */
	assert_string_equal(member(conn, "if_id_in"), "255252321");
	assert_string_equal(member(conn, "if_id_out"), "255252321");
	assert_string_equal(member(conn, "local/auth"), "psk");
	assert_string_equal(member(conn, "local/id"), "198.51.100.1");
	assert_string_equal(member(conn, "remote/id"), "198.51.100.2");
	child = json_object_get(json_object_get(conn, "children"), OURS);
	assert_list(json_object_get(child, "local_ts"), (const char *[]){ "0.0.0.0/0", "::/0" }, 2);
	assert_list(json_object_get(child, "remote_ts"), (const char *[]){ "0.0.0.0/0", "::/0" }, 2);
	assert_int_equal(json_array_size(json_object_get(child, "esp_proposals")), 6);
	assert_string_equal(member(child, "rekey_time"), "27000s");
	assert_string_equal(member(child, "rekey_bytes"), "104857600000");
	assert_string_equal(member(child, "start_action"), "start");
	/* vici carries every one of them. */
	{
		struct vici_buf buf = { 0 };

		assert_int_equal(vici_encode(set.connections, &buf), 0);
		vici_buf_wipe(&buf);
	}
	swanctl_set_free(&set);
	config_free(cfg);
}

/* A peer that is unreachable at `up`, dead or closing: charon keeps the tunnel trying. */
static void connections_retry_forever_and_come_back_after_dpd_or_a_close(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	struct swanctl_set set = set_of(cfg);
	json_t *conn = definition(&set);
	json_t *child = json_object_get(json_object_get(conn, "children"), OURS);

	assert_non_null(member(conn, "keyingtries"));
	assert_string_equal(member(conn, "keyingtries"), "0");
	assert_string_equal(member(child, "start_action"), "start");
	assert_string_equal(member(child, "dpd_action"), "restart");
	assert_string_equal(member(child, "close_action"), "start");
	swanctl_set_free(&set);
	config_free(cfg);
}

/* The transit config with gateway.tunnelTcpMss set to `mss` (a JSON value's text). */
static int load_with_mss(const char *mss, struct config **cfg, char **problems)
{
	json_t *doc = json_load_file(TRANSIT_CONFIG, 0, NULL);
	size_t len = 0;
	FILE *errors = open_memstream(problems, &len);
	char *text;
	int rc;

	assert_non_null(doc);
	json_object_set_new(json_object_get(doc, "gateway"), "tunnelTcpMss",
			    json_loads(mss, JSON_DECODE_ANY, NULL));
	text = json_dumps(doc, 0);
	rc = config_load_string(text, "mss.json", errors, cfg);
	fclose(errors);
	free(text);
	json_decref(doc);
	return rc;
}

static void tunnels_clamp_tcp_mss_to_azures_1350_unless_told_otherwise(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	struct tunnel *tunnels;
	char *problems = NULL;
	size_t count;

	assert_int_equal(cfg->tunnel_tcp_mss, 1350);
	assert_int_equal(tunnels_of_config(cfg, stderr, &tunnels, &count), 0);
	assert_int_equal(tunnels[0].tcp_mss, 1350);
	free(tunnels);
	config_free(cfg);
	assert_int_equal(load_with_mss("1300", &cfg, &problems), 0);
	assert_int_equal(cfg->tunnel_tcp_mss, 1300);
	config_free(cfg);
	free(problems);
	problems = NULL;
	assert_int_not_equal(load_with_mss("100", &cfg, &problems), 0);
	assert_non_null(strstr(problems, "gateway.tunnelTcpMss"));
	assert_null(cfg);
	free(problems);
}

static void policy_based_selectors_and_a_custom_policy(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	struct config_ipsec_policy policy = {
		.ipsec_encryption = "GCMAES256", .ipsec_integrity = "GCMAES256",
		.ike_encryption = "AES256", .ike_integrity = "SHA384", .dh_group = "DHGroup24",
		.pfs_group = "PFS24", .sa_lifetime_seconds = 3600, .sa_data_size_kilobytes = 2048,
	};
	struct swanctl_set set;
	json_t *conn, *child;

	cfg->connections[0].use_policy_based_traffic_selectors = true;
	cfg->connections[0].ipsec_policies = &policy;
	cfg->connections[0].n_ipsec_policies = 1;
	set = set_of(cfg);
	conn = definition(&set);
	child = json_object_get(json_object_get(conn, "children"), OURS);
	assert_list(json_object_get(child, "local_ts"), (const char *[]){ "10.10.0.0/16" }, 1);
	assert_list(json_object_get(child, "remote_ts"),
		    (const char *[]){ "192.168.50.0/24", "172.20.0.0/16" }, 2);
	assert_list(json_object_get(conn, "proposals"),
		    (const char *[]){ "aes256-sha384-modp2048s256" }, 1);
	assert_list(json_object_get(child, "esp_proposals"),
		    (const char *[]){ "aes256gcm16-modp2048s256" }, 1);
	assert_string_equal(member(child, "rekey_time"), "3600s");
	assert_string_equal(member(child, "rekey_bytes"), "2097152");
	swanctl_set_free(&set);
	cfg->connections[0].ipsec_policies = NULL;
	cfg->connections[0].n_ipsec_policies = 0;
	config_free(cfg);
}

/* The transit config with `props` (JSON text) merged into the connection's properties. */
static int load_with_connection(const char *props, struct config **cfg, char **problems)
{
	json_t *doc = json_load_file(TRANSIT_CONFIG, 0, NULL), *it, *extra;
	size_t len = 0, i;
	FILE *errors = open_memstream(problems, &len);
	char *text;
	int rc;

	assert_non_null(doc);
	extra = json_loads(props, 0, NULL);
	assert_non_null(extra);
	json_array_foreach(json_object_get(doc, "resources"), i, it)
		if (!strcmp(json_string_value(json_object_get(it, "name")), "to-onprem"))
			json_object_update(json_object_get(it, "properties"), extra);
	text = json_dumps(doc, 0);
	rc = config_load_string(text, "connection.json", errors, cfg);
	fclose(errors);
	free(text);
	json_decref(extra);
	json_decref(doc);
	return rc;
}

static struct config *load_connection(const char *props)
{
	struct config *cfg = NULL;
	char *problems = NULL;

	if (load_with_connection(props, &cfg, &problems))
		fail_msg("%s", problems);
	free(problems);
	return cfg;
}

static json_t *child_named(json_t *conn, const char *name)
{
	return json_object_get(json_object_get(conn, "children"), name);
}

/* connectionProtocol IKEv1: Main Mode with Azure's route-based offers (the same for IKEv1
 * and IKEv2: Main Mode AES256/AES128/3DES with SHA1/SHA256 and DH group 2, 28,800 s; Quick
 * Mode the six initiator offers, 27,000 s and 102,400,000 KB), reauthenticated as IKEv1
 * does instead of rekeyed, dpdTimeoutSeconds its DPD timeout, and one child per family
 * both sides have ranges of (a Quick Mode carries one selector a side). */
static void ikev1_connection_is_main_mode_with_azures_offers(void **state)
{
	struct config *cfg = load_connection("{\"connectionProtocol\": \"IKEv1\"}");
	struct swanctl_set set = set_of(cfg);
	json_t *conn = definition(&set), *v4;

	assert_string_equal(member(conn, "version"), "1");
	assert_string_equal(member(conn, "aggressive"), "no");
	assert_string_equal(json_string_value(json_array_get(json_object_get(conn, "proposals"), 0)),
			    "aes256-sha1-modp1024");
	assert_int_equal(json_array_size(json_object_get(conn, "proposals")), 6);
	assert_string_equal(member(conn, "reauth_time"), "28800s");
	assert_string_equal(member(conn, "rekey_time"), "0s");
	assert_string_equal(member(conn, "dpd_timeout"), "45s");
	assert_string_equal(member(conn, "dpd_delay"), "15s");
	assert_string_equal(member(conn, "if_id_in"), "255252321");
	/* The VNet and the site have IPv4 ranges only: one Quick Mode, for IPv4. */
	assert_int_equal(json_object_size(json_object_get(conn, "children")), 1);
	v4 = child_named(conn, OURS);
	assert_list(json_object_get(v4, "local_ts"), (const char *[]){ "0.0.0.0/0" }, 1);
	assert_list(json_object_get(v4, "remote_ts"), (const char *[]){ "0.0.0.0/0" }, 1);
	assert_int_equal(json_array_size(json_object_get(v4, "esp_proposals")), 6);
	assert_string_equal(member(v4, "rekey_time"), "27000s");
	assert_string_equal(member(v4, "start_action"), "start");
	{
		struct vici_buf buf = { 0 };

		assert_int_equal(vici_encode(set.connections, &buf), 0);
		vici_buf_wipe(&buf);
	}
	swanctl_set_free(&set);
	config_free(cfg);
	/* IKEv2 (the default, and written out) has neither. */
	cfg = load_connection("{\"connectionProtocol\": \"IKEv2\"}");
	set = set_of(cfg);
	conn = definition(&set);
	assert_string_equal(member(conn, "version"), "2");
	assert_string_equal(member(conn, "rekey_time"), "28800s");
	assert_null(json_object_get(conn, "reauth_time"));
	assert_null(json_object_get(conn, "dpd_timeout"));
	assert_null(json_object_get(conn, "aggressive"));
	assert_int_equal(json_object_size(json_object_get(conn, "children")), 1);
	swanctl_set_free(&set);
	config_free(cfg);
}

/* IKEv1 has no AES-GCM for the IKE SA: a policy asking for it is refused, not sent. */
static void ikev1_refuses_gcm_for_its_ike_sa(void **state)
{
	struct config *cfg = load_connection("{\"connectionProtocol\": \"IKEv1\", \"ipsecPolicies\": "
		"[{\"ikeEncryption\": \"GCMAES256\", \"ikeIntegrity\": \"GCMAES256\", \"dhGroup\": "
		"\"DHGroup14\", \"ipsecEncryption\": \"GCMAES256\", \"ipsecIntegrity\": \"GCMAES256\", "
		"\"pfsGroup\": \"None\", \"saLifeTimeSeconds\": 3600, \"saDataSizeKilobytes\": 102400}]}");
	struct tunnel *tunnels;
	struct swanctl_set set;
	size_t count;

	assert_int_equal(tunnels_of_config(cfg, stderr, &tunnels, &count), 0);
	assert_int_equal(swanctl_set_build(cfg, tunnels, count, &set), -EINVAL);
	cfg->connections[0].protocol = CONNECTION_IKEV2;
	assert_int_equal(swanctl_set_build(cfg, tunnels, count, &set), 0);
	swanctl_set_free(&set);
	free(tunnels);
	config_free(cfg);
}

/* connectionMode: ResponderOnly loads the connection and waits for the peer, also after
 * a dead peer or a close; InitiatorOnly starts it and refuses the peer's own while it
 * stands (unique = keep); Default starts it and accepts the peer's. */
static void connection_mode_decides_who_starts(void **state)
{
	static const struct {
		const char *mode, *start, *dpd, *close, *unique;
	} cases[] = {
		{ "Default", "start", "restart", "start", NULL },
		{ "ResponderOnly", "none", "clear", "none", NULL },
		{ "InitiatorOnly", "start", "restart", "start", "keep" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char props[96];
		struct config *cfg;
		struct swanctl_set set;
		json_t *conn, *child;

		snprintf(props, sizeof(props), "{\"connectionMode\": \"%s\"}", cases[i].mode);
		cfg = load_connection(props);
		set = set_of(cfg);
		conn = definition(&set);
		child = child_named(conn, OURS);
		assert_string_equal(member(child, "start_action"), cases[i].start);
		assert_string_equal(member(child, "dpd_action"), cases[i].dpd);
		assert_string_equal(member(child, "close_action"), cases[i].close);
		if (cases[i].unique)
			assert_string_equal(member(conn, "unique"), cases[i].unique);
		else
			assert_null(json_object_get(conn, "unique"));
		swanctl_set_free(&set);
		config_free(cfg);
	}
}

#define TWO_POLICIES "\"trafficSelectorPolicies\": [" \
	"{\"localAddressRanges\": [\"10.10.1.0/24\", \"10.10.2.0/24\"], " \
	" \"remoteAddressRanges\": [\"192.168.50.0/25\", \"2001:db8::/64\"]}, " \
	"{\"localAddressRanges\": [\"10.10.9.0/24\"], \"remoteAddressRanges\": [\"172.20.1.0/24\"]}]"

/* trafficSelectorPolicies: IKEv2 one child per policy with its lists; IKEv1 one child
 * per same-family pair of ranges. */
static void traffic_selector_policies_make_the_child_sas(void **state)
{
	struct config *cfg = load_connection("{" TWO_POLICIES "}");
	struct swanctl_set set = set_of(cfg);
	struct tunnel *tunnels;
	size_t count;
	json_t *conn = definition(&set), *c;

	assert_int_equal(json_object_size(json_object_get(conn, "children")), 2);
	c = child_named(conn, OURS);
	assert_list(json_object_get(c, "local_ts"),
		    (const char *[]){ "10.10.1.0/24", "10.10.2.0/24" }, 2);
	assert_list(json_object_get(c, "remote_ts"),
		    (const char *[]){ "192.168.50.0/25", "2001:db8::/64" }, 2);
	c = child_named(conn, OURS "~2");
	assert_list(json_object_get(c, "local_ts"), (const char *[]){ "10.10.9.0/24" }, 1);
	assert_list(json_object_get(c, "remote_ts"), (const char *[]){ "172.20.1.0/24" }, 1);
	swanctl_set_free(&set);
	config_free(cfg);

	cfg = load_connection("{\"connectionProtocol\": \"IKEv1\", " TWO_POLICIES "}");
	set = set_of(cfg);
	conn = definition(&set);
	/* 2 x 1 IPv4 pairs of the first policy (the IPv6 range pairs with no local one),
	 * 1 of the second */
	assert_int_equal(json_object_size(json_object_get(conn, "children")), 3);
	c = child_named(conn, OURS "~2");
	assert_list(json_object_get(c, "local_ts"), (const char *[]){ "10.10.2.0/24" }, 1);
	assert_list(json_object_get(c, "remote_ts"), (const char *[]){ "192.168.50.0/25" }, 1);
	c = child_named(conn, OURS "~3");
	assert_list(json_object_get(c, "local_ts"), (const char *[]){ "10.10.9.0/24" }, 1);
	assert_int_equal(tunnels_of_config(cfg, stderr, &tunnels, &count), 0);
	assert_int_equal(swanctl_child_count(cfg, &tunnels[0]), 3);
	free(tunnels);
	swanctl_set_free(&set);
	config_free(cfg);
}

/* Bad values are refused by the reader, each in one line naming its place. */
static void bad_protocol_mode_and_selectors_are_refused(void **state)
{
	static const struct {
		const char *props, *where;
	} cases[] = {
		{ "{\"connectionProtocol\": \"IKEv3\"}", "connectionProtocol" },
		{ "{\"connectionMode\": \"Sometimes\"}", "connectionMode" },
		{ "{\"trafficSelectorPolicies\": [{\"localAddressRanges\": [\"10.10.0.0/16\"]}]}",
		  "remoteAddressRanges: missing" },
		{ "{\"trafficSelectorPolicies\": [{\"localAddressRanges\": [], "
		  "\"remoteAddressRanges\": [\"192.168.50.0/24\"]}]}", "localAddressRanges: empty" },
		{ "{\"trafficSelectorPolicies\": [{\"localAddressRanges\": [\"10.10.0.0/16\"], "
		  "\"remoteAddressRanges\": [\"2001:db8::/64\"]}]}", "same family" },
		{ "{\"trafficSelectorPolicies\": [{\"localAddressRanges\": [\"10.10.0.0/33\"], "
		  "\"remoteAddressRanges\": [\"192.168.50.0/24\"]}]}", "localAddressRanges[0]" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct config *cfg = NULL;
		char *problems = NULL;

		assert_int_not_equal(load_with_connection(cases[i].props, &cfg, &problems), 0);
		assert_null(cfg);
		if (!strstr(problems, cases[i].where))
			fail_msg("case %zu: %s", i, problems);
		free(problems);
	}
}

static void names_carry_the_gateway_and_the_secret_travels_alone(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	struct swanctl_set set = set_of(cfg);
	json_t *secret = json_object_get(set.secrets, OURS);
	char *text = json_dumps(set.connections, 0);

	assert_non_null(secret);
	assert_string_equal(member(secret, "id"), OURS);
	assert_string_equal(member(secret, "type"), "IKE");
	assert_string_equal(member(secret, "data"), "s3cret \"quoted\"");
	assert_list(json_object_get(secret, "owners"),
		    (const char *[]){ "198.51.100.1", "198.51.100.2" }, 2);
	assert_null(strstr(text, "s3cret")); /* the connection (kept in the state) has no key */
	free(text);
	swanctl_set_free(&set);
	/* Another gateway's connection of the same name is another connection. */
	free(cfg->gateway_name);
	cfg->gateway_name = strdup("other");
	set = set_of(cfg);
	assert_non_null(json_object_get(set.secrets, "vnetxdp-other.to-onprem"));
	assert_null(json_object_get(set.secrets, OURS));
	swanctl_set_free(&set);
	config_free(cfg);
}

/* ---- a stand-in charon: it keeps what it is given and answers like charon ---- */

struct charon {
	int fd;
	pthread_t thread;
	json_t *conns, *secrets; /* name -> definition, id -> load-shared message */
	json_t *log;             /* "command name" of each request */
	const char *refuse;      /* load-conn of this name fails */
};

static bool read_exactly(int fd, void *buf, size_t len)
{
	return recv(fd, buf, len, MSG_WAITALL) == (ssize_t)len;
}

static void send_response(int fd, bool success, const char *errmsg)
{
	json_t *msg = json_pack("{s:s}", "success", success ? "yes" : "no");
	struct vici_buf buf = { 0 };
	uint8_t header[5];

	if (errmsg)
		json_object_set_new(msg, "errmsg", json_string(errmsg));
	assert_int_equal(vici_encode(msg, &buf), 0);
	header[0] = header[1] = 0;
	header[2] = (uint8_t)((buf.len + 1) >> 8);
	header[3] = (uint8_t)(buf.len + 1);
	header[4] = VICI_CMD_RESPONSE;
	send(fd, header, 5, MSG_NOSIGNAL);
	send(fd, buf.data, buf.len, MSG_NOSIGNAL);
	vici_buf_wipe(&buf);
	json_decref(msg);
}

/* One command: its effect on what charon holds, and the verdict. */
static void charon_handle(struct charon *c, const char *cmd, json_t *args)
{
	const char *name = member(args, "name") ?: member(args, "id") ?: member(args, "ike");
	bool ok = true;

	if (!strcmp(cmd, "load-conn")) {
		const char *key = json_object_iter_key(json_object_iter(args));

		name = key;
		ok = key && (!c->refuse || strcmp(key, c->refuse));
		if (ok)
			json_object_set(c->conns, key, json_object_get(args, key));
	} else if (!strcmp(cmd, "unload-conn")) {
		ok = name && json_object_del(c->conns, name) == 0;
	} else if (!strcmp(cmd, "load-shared")) {
		ok = name && member(args, "data");
		if (ok)
			json_object_set(c->secrets, name, args);
	} else if (!strcmp(cmd, "unload-shared")) {
		ok = name && json_object_del(c->secrets, name) == 0;
	} else if (!strcmp(cmd, "terminate")) {
		ok = false; /* no SAs here */
	} else if (!strcmp(cmd, "initiate")) {
		/* Only a non-blocking initiation of a connection held, child and IKE alike. */
		ok = name && json_object_get(c->conns, name) && member(args, "child") &&
		     !strcmp(member(args, "child"), name) && member(args, "timeout") &&
		     !strcmp(member(args, "timeout"), "-1");
	}
	json_array_append_new(c->log, json_sprintf("%s %s", cmd, name ?: ""));
	send_response(c->fd, ok, ok ? NULL : "no");
}

static void *charon_run(void *arg)
{
	struct charon *c = arg;
	uint8_t be[4], body[VICI_PACKET_MAX];

	while (read_exactly(c->fd, be, 4)) {
		size_t len = (size_t)be[2] << 8 | be[3];
		char cmd[256];
		json_t *args;

		if (be[0] || be[1] || !read_exactly(c->fd, body, len) || body[0] != VICI_CMD_REQUEST)
			break;
		memcpy(cmd, body + 2, body[1]);
		cmd[body[1]] = '\0';
		if (vici_decode(body + 2 + body[1], len - 2 - body[1], &args))
			break;
		charon_handle(c, cmd, args);
		json_decref(args);
	}
	return NULL;
}

/* A charon holding an administrator's connection and secret, and another gateway's. */
static void charon_start(struct charon *c, struct vici *v)
{
	int sv[2];

	c->conns = json_pack("{s:{s:s}, s:{s:s}}", "admin-tunnel", "version", "2",
			     "vnetxdp-other.to-onprem", "version", "2");
	c->secrets = json_pack("{s:{s:s}, s:{s:s}}", "admin-key", "data", "a",
			       "vnetxdp-other.to-onprem", "data", "o");
	c->log = json_array();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	v->fd = sv[0];
	v->timeout_ms = 2000;
	c->fd = sv[1];
	assert_int_equal(pthread_create(&c->thread, NULL, charon_run, c), 0);
}

static void charon_stop(struct charon *c, struct vici *v)
{
	shutdown(v->fd, SHUT_RDWR);
	pthread_join(c->thread, NULL);
	vici_close(v);
	close(c->fd);
	json_decref(c->conns);
	json_decref(c->secrets);
	json_decref(c->log);
}

static void assert_others_untouched(const struct charon *c)
{
	size_t i;
	json_t *it;

	assert_non_null(json_object_get(c->conns, "admin-tunnel"));
	assert_non_null(json_object_get(c->conns, "vnetxdp-other.to-onprem"));
	assert_non_null(json_object_get(c->secrets, "admin-key"));
	assert_non_null(json_object_get(c->secrets, "vnetxdp-other.to-onprem"));
	json_array_foreach(c->log, i, it) {
		assert_null(strstr(json_string_value(it), "admin"));
		assert_null(strstr(json_string_value(it), "other"));
	}
}

/* A set by hand: name -> (definition with marker, secret). */
static struct swanctl_set hand_set(const char *const *names, const char *marker, size_t n)
{
	struct swanctl_set set = { json_object(), json_object() };

	for (size_t i = 0; i < n; i++) {
		json_object_set_new(set.connections, names[i],
				    json_pack("{s:{s:s}}", names[i], "marker", marker));
		json_object_set_new(set.secrets, names[i],
				    json_pack("{s:s, s:s, s:s}", "id", names[i], "type", "IKE",
					      "data", marker));
	}
	return set;
}

static void up_loads_ours_and_leaves_the_rest_of_charon_alone(void **state)
{
	struct config *cfg = load(TRANSIT_CONFIG);
	struct swanctl_set set = set_of(cfg);
	struct charon c = { 0 };
	struct vici v;
	json_t *none = json_object(), *in_force;

	charon_start(&c, &v);
	assert_int_equal(swanctl_apply(&v, none, &set, &in_force), 0);
	assert_non_null(json_object_get(c.conns, OURS));
	assert_string_equal(member(json_object_get(c.secrets, OURS), "data"), "s3cret \"quoted\"");
	/* The secret before the connection: it starts as it is loaded. */
	assert_string_equal(json_string_value(json_array_get(c.log, 0)), "load-shared " OURS);
	assert_string_equal(json_string_value(json_array_get(c.log, 1)), "load-conn " OURS);
	assert_true(json_equal(in_force, set.connections));
	assert_others_untouched(&c);
	/* down */
	assert_int_equal(swanctl_remove(&v, in_force), 0);
	assert_null(json_object_get(c.conns, OURS));
	assert_null(json_object_get(c.secrets, OURS));
	assert_others_untouched(&c);
	charon_stop(&c, &v);
	json_decref(in_force);
	json_decref(none);
	swanctl_set_free(&set);
	config_free(cfg);
}

static void reload_moves_only_what_changed_among_ours(void **state)
{
	struct swanctl_set old = hand_set((const char *[]){ "vnetxdp-gw.a", "vnetxdp-gw.b" },
					  "old", 2);
	struct swanctl_set next = hand_set((const char *[]){ "vnetxdp-gw.a", "vnetxdp-gw.c" },
					   "new", 2);
	struct charon c = { 0 };
	struct vici v;
	json_t *none = json_object(), *in_force;

	charon_start(&c, &v);
	assert_int_equal(swanctl_apply(&v, none, &old, &in_force), 0);
	json_decref(in_force);
	assert_int_equal(swanctl_apply(&v, old.connections, &next, &in_force), 0);
	assert_true(json_equal(in_force, next.connections));
	assert_string_equal(member(json_object_get(c.conns, "vnetxdp-gw.a"), "marker"), "new");
	assert_non_null(json_object_get(c.conns, "vnetxdp-gw.c"));
	assert_null(json_object_get(c.conns, "vnetxdp-gw.b"));
	assert_null(json_object_get(c.secrets, "vnetxdp-gw.b"));
	assert_others_untouched(&c);
	charon_stop(&c, &v);
	json_decref(in_force);
	json_decref(none);
	swanctl_set_free(&old);
	swanctl_set_free(&next);
}

static void a_refused_connection_puts_the_previous_ones_back(void **state)
{
	struct swanctl_set old = hand_set((const char *[]){ "vnetxdp-gw.a", "vnetxdp-gw.b" },
					  "old", 2);
	struct swanctl_set next = hand_set((const char *[]){ "vnetxdp-gw.a", "vnetxdp-gw.n",
							      "vnetxdp-gw.c" }, "new", 3);
	struct charon c = { 0 };
	struct vici v;
	json_t *none = json_object(), *in_force;

	charon_start(&c, &v);
	assert_int_equal(swanctl_apply(&v, none, &old, &in_force), 0);
	json_decref(in_force);
	c.refuse = "vnetxdp-gw.c";
	assert_int_equal(swanctl_apply(&v, old.connections, &next, &in_force), -EIO);
	/* charon is as before the reload: a's previous definition, b kept, n and c gone. */
	assert_true(json_equal(in_force, old.connections));
	assert_string_equal(member(json_object_get(c.conns, "vnetxdp-gw.a"), "marker"), "old");
	assert_non_null(json_object_get(c.conns, "vnetxdp-gw.b"));
	assert_null(json_object_get(c.conns, "vnetxdp-gw.n"));
	assert_null(json_object_get(c.conns, "vnetxdp-gw.c"));
	assert_null(json_object_get(c.secrets, "vnetxdp-gw.n"));
	assert_null(json_object_get(c.secrets, "vnetxdp-gw.c"));
	assert_non_null(json_object_get(c.secrets, "vnetxdp-gw.b"));
	assert_others_untouched(&c);
	charon_stop(&c, &v);
	json_decref(in_force);
	json_decref(none);
	swanctl_set_free(&old);
	swanctl_set_free(&next);
}

static void a_charon_that_stops_answering_is_said_not_assumed(void **state)
{
	struct swanctl_set next = hand_set((const char *[]){ "vnetxdp-gw.a" }, "new", 1);
	struct charon c = { 0 };
	struct vici v;
	json_t *none = json_object(), *in_force;

	charon_start(&c, &v);
	shutdown(c.fd, SHUT_RDWR);
	assert_int_not_equal(swanctl_apply(&v, none, &next, &in_force), 0);
	/* It may have loaded it: still ours, for the next reload or down to settle. */
	assert_non_null(json_object_get(in_force, "vnetxdp-gw.a"));
	charon_stop(&c, &v);
	json_decref(in_force);
	json_decref(none);
	swanctl_set_free(&next);
}

/* ---- charon's SA listing ---- */

/* serve re-initiates a down tunnel: charon is asked to start it and answers at once; a
 * connection charon does not hold is its refusal, in its words. */
static void initiate_starts_a_held_connection_without_waiting_for_the_peer(void **state)
{
	struct charon c = { 0 };
	struct vici v;
	char why[64];

	charon_start(&c, &v);
	json_object_set_new(c.conns, OURS, json_pack("{s:s}", "version", "2"));
	assert_int_equal(swanctl_initiate(&v, OURS, OURS, why, sizeof(why)), 0);
	assert_int_equal(swanctl_initiate(&v, "vnetxdp-ipsecgw.gone", "vnetxdp-ipsecgw.gone", why,
					  sizeof(why)), -EIO);
	assert_string_equal(why, "no");
	assert_string_equal(json_string_value(json_array_get(c.log, 0)), "initiate " OURS);
	charon_stop(&c, &v);
}

static void sa_listing_says_which_tunnels_are_up(void **state)
{
	json_t *up = json_pack("{s:s, s:{s:{s:s, s:s}}}", "state", "ESTABLISHED", "child-sas",
			       "gw-up-1", "name", "gw-up", "state", "INSTALLED");
	json_t *connecting = json_pack("{s:s, s:{}}", "state", "CONNECTING", "child-sas");
	json_t *no_child = json_pack("{s:s, s:{}}", "state", "ESTABLISHED", "child-sas");
	json_t *rekeying = json_pack("{s:s, s:{s:{s:s}}}", "state", "ESTABLISHED", "child-sas",
				     "c-2", "state", "REKEYING");

	assert_int_equal(swanctl_sa_is_up(up), 1);
	assert_int_equal(swanctl_sa_is_up(connecting), 0);
	assert_int_equal(swanctl_sa_is_up(no_child), 0);
	assert_int_equal(swanctl_sa_is_up(rekeying), 0);
	assert_int_equal(swanctl_sa_is_up(NULL), 0);
	json_decref(up);
	json_decref(connecting);
	json_decref(no_child);
	json_decref(rekeying);
}

static void sa_listing_says_connected_connecting_or_down(void **state)
{
	json_t *up = json_pack("{s:s, s:{s:{s:s}}}", "state", "ESTABLISHED", "child-sas",
			       "c-1", "state", "INSTALLED");
	json_t *connecting = json_pack("{s:s, s:{}}", "state", "CONNECTING", "child-sas");
	json_t *no_child = json_pack("{s:s, s:{}}", "state", "ESTABLISHED", "child-sas");
	json_t *states = json_pack("{s:i, s:i}", "gw.a", TUNNEL_IKE_CONNECTED, "gw.b",
				   TUNNEL_IKE_CONNECTING);

	assert_int_equal(swanctl_sa_state(up), TUNNEL_IKE_CONNECTED);
	assert_int_equal(swanctl_sa_state(connecting), TUNNEL_IKE_CONNECTING);
	assert_int_equal(swanctl_sa_state(no_child), TUNNEL_IKE_CONNECTING);
	assert_int_equal(swanctl_sa_state(NULL), TUNNEL_IKE_DOWN);
	assert_string_equal(tunnel_ike_state_name(tunnel_ike_state_of(states, "gw.a")), "connected");
	assert_string_equal(tunnel_ike_state_name(tunnel_ike_state_of(states, "gw.b")),
			    "connecting");
	/* No IKE SA at all: charon has given up, or never had the connection. */
	assert_string_equal(tunnel_ike_state_name(tunnel_ike_state_of(states, "gw.c")), "down");
	assert_string_equal(tunnel_ike_state_name(tunnel_ike_state_of(NULL, "gw.a")), "unknown");
	json_decref(up);
	json_decref(connecting);
	json_decref(no_child);
	json_decref(states);
}

/* ---- the secret on disk ---- */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_bound_gateway_terminates_its_connection),
		cmocka_unit_test(onprem_routes_reach_the_hub_and_transit_spokes_only),
		cmocka_unit_test(decrypted_traffic_reaches_the_hub_and_transit_spokes_only),
		cmocka_unit_test(without_gateway_transit_the_spoke_has_no_onprem_route),
		cmocka_unit_test(ike_proposals_follow_the_policy),
		cmocka_unit_test(esp_proposals_follow_the_policy),
		cmocka_unit_test(default_connection_carries_azure_defaults_bound_to_its_if_id),
		cmocka_unit_test(connections_retry_forever_and_come_back_after_dpd_or_a_close),
		cmocka_unit_test(tunnels_clamp_tcp_mss_to_azures_1350_unless_told_otherwise),
		cmocka_unit_test(policy_based_selectors_and_a_custom_policy),
		cmocka_unit_test(ikev1_connection_is_main_mode_with_azures_offers),
		cmocka_unit_test(ikev1_refuses_gcm_for_its_ike_sa),
		cmocka_unit_test(connection_mode_decides_who_starts),
		cmocka_unit_test(traffic_selector_policies_make_the_child_sas),
		cmocka_unit_test(bad_protocol_mode_and_selectors_are_refused),
		cmocka_unit_test(names_carry_the_gateway_and_the_secret_travels_alone),
		cmocka_unit_test(up_loads_ours_and_leaves_the_rest_of_charon_alone),
		cmocka_unit_test(reload_moves_only_what_changed_among_ours),
		cmocka_unit_test(a_refused_connection_puts_the_previous_ones_back),
		cmocka_unit_test(a_charon_that_stops_answering_is_said_not_assumed),
		cmocka_unit_test(initiate_starts_a_held_connection_without_waiting_for_the_peer),
		cmocka_unit_test(sa_listing_says_which_tunnels_are_up),
		cmocka_unit_test(sa_listing_says_connected_connecting_or_down),
	};

	return cmocka_run_group_tests_name("swanctl", tests, NULL, NULL);
}

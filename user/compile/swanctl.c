#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <string.h>
#include <arpa/inet.h>
#include "lib/log.h"
#include "compile/swanctl.h"
#include "compile/tunnel_plan.h"
#include "lib/vici.h"

struct name_map {
	const char *azure, *strongswan; /* strongswan NULL: no equivalent */
};

static const char *lookup(const struct name_map *map, size_t n, const char *azure)
{
	for (size_t i = 0; i < n; i++)
		if (azure && !strcmp(map[i].azure, azure))
			return map[i].strongswan;
	return NULL;
}
#define LOOKUP(map, key) lookup(map, sizeof(map) / sizeof(*map), key)

static const struct name_map ike_encryptions[] = {
	{ "DES", "des" }, { "DES3", "3des" }, { "AES128", "aes128" }, { "AES192", "aes192" },
	{ "AES256", "aes256" }, { "GCMAES128", "aes128gcm16" }, { "GCMAES256", "aes256gcm16" },
};
static const struct name_map ike_integrities[] = {
	{ "MD5", "md5" }, { "SHA1", "sha1" }, { "SHA256", "sha256" }, { "SHA384", "sha384" },
	/* AEAD has its integrity built in; IKE still needs a PRF. */
	{ "GCMAES128", "prfsha256" }, { "GCMAES256", "prfsha384" },
};
static const struct name_map dh_groups[] = {
	{ "None", "" }, { "DHGroup1", "modp768" }, { "DHGroup2", "modp1024" },
	{ "DHGroup14", "modp2048" }, { "DHGroup2048", "modp2048" }, { "DHGroup24", "modp2048s256" },
	{ "ECP256", "ecp256" }, { "ECP384", "ecp384" },
};
static const struct name_map ipsec_encryptions[] = {
	{ "None", "null" }, { "DES", "des" }, { "DES3", "3des" }, { "AES128", "aes128" },
	{ "AES192", "aes192" }, { "AES256", "aes256" }, { "GCMAES128", "aes128gcm16" },
	{ "GCMAES192", "aes192gcm16" }, { "GCMAES256", "aes256gcm16" },
};
static const struct name_map ipsec_integrities[] = {
	{ "MD5", "md5" }, { "SHA1", "sha1" }, { "SHA256", "sha256" },
	{ "GCMAES128", "" }, { "GCMAES192", "" }, { "GCMAES256", "" },
};
static const struct name_map pfs_groups[] = {
	{ "None", "" }, { "PFS1", "modp768" }, { "PFS2", "modp1024" }, { "PFS14", "modp2048" },
	{ "PFS2048", "modp2048" }, { "PFS24", "modp2048s256" }, { "ECP256", "ecp256" },
	{ "ECP384", "ecp384" }, { "PFSMM", NULL },
};

static bool is_gcm(const char *azure)
{
	return azure && !strncmp(azure, "GCMAES", 6);
}

/* Joins the non-empty parts with '-'. */
static int join(char *buf, size_t size, const char *const *parts, size_t n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int len;

		if (!parts[i][0])
			continue;
		len = snprintf(buf + used, size - used, "%s%s", used ? "-" : "", parts[i]);
		if (len < 0 || (size_t)len >= size - used)
			return -ENOSPC;
		used += len;
	}
	return 0;
}

int swanctl_ike_proposal(const struct config_ipsec_policy *p, char *buf, size_t size,
			 const char **why)
{
	const char *enc = LOOKUP(ike_encryptions, p->ike_encryption);
	const char *integ = LOOKUP(ike_integrities, p->ike_integrity);
	const char *dh = LOOKUP(dh_groups, p->dh_group);

	if (!enc || !integ || !dh) {
		*why = !enc ? "ikeEncryption" : !integ ? "ikeIntegrity" : "dhGroup";
		return -EINVAL;
	}
	/* Azure pairs GCM encryption with the same GCM integrity, and CBC with a hash. */
	if (is_gcm(p->ike_encryption) != is_gcm(p->ike_integrity)) {
		*why = "ikeIntegrity (GCM encryption needs the same GCM integrity, and only with it)";
		return -EINVAL;
	}
	if (!dh[0]) {
		*why = "dhGroup (IKEv2 needs a Diffie-Hellman group)";
		return -EINVAL;
	}
	return join(buf, size, (const char *[]){ enc, integ, dh }, 3);
}

int swanctl_esp_proposal(const struct config_ipsec_policy *p, char *buf, size_t size,
			 const char **why)
{
	const char *enc = LOOKUP(ipsec_encryptions, p->ipsec_encryption);
	const char *integ = LOOKUP(ipsec_integrities, p->ipsec_integrity);
	const char *pfs = LOOKUP(pfs_groups, p->pfs_group);

	if (!enc || !integ || !pfs) {
		*why = !enc ? "ipsecEncryption" : !integ ? "ipsecIntegrity"
						   : "pfsGroup (PFSMM has no strongSwan equivalent)";
		return -EINVAL;
	}
	if (is_gcm(p->ipsec_encryption) ? strcmp(p->ipsec_encryption, p->ipsec_integrity)
					: is_gcm(p->ipsec_integrity)) {
		*why = "ipsecIntegrity (GCM encryption needs the same GCM integrity, and only with it)";
		return -EINVAL;
	}
	if (!strcmp(enc, "null") && !integ[0]) {
		*why = "ipsecIntegrity (no encryption needs an integrity algorithm)";
		return -EINVAL;
	}
	return join(buf, size, (const char *[]){ enc, integ, pfs }, 3);
}

void swanctl_connection_name(const char *gateway, const struct tunnel *t, char *buf, size_t size)
{
	snprintf(buf, size, SWANCTL_NAME_PREFIX "%s.%s", gateway, t->name);
}

static void address_text(const struct ip_address *a, char *buf, size_t size)
{
	if (!inet_ntop(a->family, a->addr, buf, size))
		snprintf(buf, size, "%%any");
}

static json_t *prefixes_list(const struct ip_prefix *prefixes, size_t n)
{
	json_t *list = json_array();

	for (size_t i = 0; i < n; i++) {
		char addr[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 5];

		inet_ntop(prefixes[i].family, prefixes[i].addr, addr, sizeof(addr));
		snprintf(text, sizeof(text), "%s/%u", addr, prefixes[i].len);
		json_array_append_new(list, json_string(text));
	}
	return list;
}

/* "a,b,c" as the list vici wants. */
static json_t *comma_list(const char *text)
{
	json_t *list = json_array();

	while (*text) {
		size_t len = strcspn(text, ",");

		json_array_append_new(list, json_stringn(text, len));
		text += len + (text[len] == ',');
	}
	return list;
}

static json_t *seconds(long long value)
{
	char text[32];

	snprintf(text, sizeof(text), "%llds", value);
	return json_string(text);
}

static json_t *number(long long value)
{
	char text[32];

	snprintf(text, sizeof(text), "%lld", value);
	return json_string(text);
}

/* What a route-based connection selects: any address; the routes into the xfrm interface
 * choose what enters. */
static const struct ip_prefix any_address[] = { { .family = AF_INET }, { .family = AF_INET6 } };

/* The selector lists of the tunnel's child SAs before IKEv1 splits them: the connection's
 * trafficSelectorPolicies, one child each; else with usePolicyBasedTrafficSelectors the
 * VNet's and the remote address spaces; else any address. */
struct selector_set {
	const struct ip_prefix *local, *remote;
	size_t n_local, n_remote;
};

static bool has_family(const struct ip_prefix *prefixes, size_t n, int family)
{
	for (size_t i = 0; i < n; i++)
		if (prefixes[i].family == family)
			return true;
	return false;
}

static size_t selector_sets(const struct config *cfg, const struct tunnel *t,
			    struct selector_set *sets)
{
	const struct config_connection *c = t->connection;
	const struct config_vnet *vnet = &cfg->vnets[t->vnet];
	size_t n = 0;

	if (c->n_traffic_selectors) {
		for (; n < c->n_traffic_selectors; n++)
			sets[n] = (struct selector_set){ c->traffic_selectors[n].local,
				c->traffic_selectors[n].remote, c->traffic_selectors[n].n_local,
				c->traffic_selectors[n].n_remote };
		return n;
	}
	if (c->use_policy_based_traffic_selectors) {
		sets[0] = (struct selector_set){ vnet->prefixes, t->remote_prefixes,
						 vnet->n_prefixes, t->n_remote_prefixes };
		return 1;
	}
	if (c->protocol != CONNECTION_IKEV1) {
		sets[0] = (struct selector_set){ any_address, any_address, 2, 2 };
		return 1;
	}
	/* A Quick Mode per family: only those both sides have addresses of. */
	for (size_t f = 0; f < 2; f++)
		if (has_family(vnet->prefixes, vnet->n_prefixes, any_address[f].family) &&
		    has_family(t->remote_prefixes, t->n_remote_prefixes, any_address[f].family))
			sets[n++] = (struct selector_set){ &any_address[f], &any_address[f], 1, 1 };
	return n;
}

/* Appends one child's selectors, or with IKEv1 (one selector a side per Quick Mode) one
 * child per same-family pair, to `children`. Returns -E2BIG past SWANCTL_MAX_CHILDREN. */
static int children_add(json_t *children, const struct selector_set *set, bool ikev1)
{
	if (!ikev1) {
		if (json_array_size(children) >= SWANCTL_MAX_CHILDREN)
			return -E2BIG;
		json_array_append_new(children, json_pack("[o, o]",
			prefixes_list(set->local, set->n_local),
			prefixes_list(set->remote, set->n_remote)));
		return 0;
	}
	for (size_t i = 0; i < set->n_local; i++)
		for (size_t k = 0; k < set->n_remote; k++) {
			if (set->local[i].family != set->remote[k].family)
				continue;
			if (json_array_size(children) >= SWANCTL_MAX_CHILDREN)
				return -E2BIG;
			json_array_append_new(children, json_pack("[o, o]",
				prefixes_list(&set->local[i], 1), prefixes_list(&set->remote[k], 1)));
		}
	return 0;
}

/* [[local_ts, remote_ts], ...]: the selectors of each child SA, the first the one
 * named like the connection. */
static int children_selectors(const struct config *cfg, const struct tunnel *t, json_t **out)
{
	struct selector_set *sets = calloc(t->connection->n_traffic_selectors + 2, sizeof(*sets));
	size_t n = sets ? selector_sets(cfg, t, sets) : 0;
	json_t *children = json_array();
	int err = children && sets ? 0 : -ENOMEM;

	for (size_t i = 0; !err && i < n; i++)
		err = children_add(children, &sets[i], t->connection->protocol == CONNECTION_IKEV1);
	free(sets);
	if (!err && !json_array_size(children))
		err = -EINVAL;
	if (err) {
		json_decref(children);
		children = NULL;
	}
	*out = children;
	return err;
}

void swanctl_child_name(const char *connection, size_t index, char *buf, size_t size)
{
	if (index == 0)
		snprintf(buf, size, "%s", connection);
	else
		snprintf(buf, size, "%s~%zu", connection, index + 1);
}

size_t swanctl_child_count(const struct config *cfg, const struct tunnel *t)
{
	json_t *children;
	size_t n = children_selectors(cfg, t, &children) ? 0 : json_array_size(children);

	json_decref(children);
	return n;
}

/* What connectionMode makes of starting, and of restarting after a dead peer or a
 * close: a responder-only side waits for the peer every time. */
static const char *start_action_of(const struct config_connection *c)
{
	return c->mode == CONNECTION_MODE_RESPONDER_ONLY ? "none" : "start";
}

static const char *dpd_action_of(const struct config_connection *c)
{
	return c->mode == CONNECTION_MODE_RESPONDER_ONLY ? "clear" : "restart";
}

static json_t *child_of(const struct config_connection *c, json_t *selectors, const char *esp,
			int lifetime, long long kilobytes)
{
	return json_pack("{s:O, s:O, s:o, s:o, s:o, s:s, s:s, s:s}",
			 "local_ts", json_array_get(selectors, 0),
			 "remote_ts", json_array_get(selectors, 1), "esp_proposals", comma_list(esp),
			 "rekey_time", seconds(lifetime), "rekey_bytes", number(kilobytes * 1024),
			 "start_action", start_action_of(c), "dpd_action", dpd_action_of(c),
			 "close_action", c->mode == CONNECTION_MODE_RESPONDER_ONLY ? "none" : "start");
}

static int children_of(const struct config *cfg, const struct tunnel *t, const char *name,
		       const char *esp, int lifetime, long long kilobytes, json_t **out)
{
	json_t *selectors, *children, *it;
	size_t i;
	int err = children_selectors(cfg, t, &selectors);

	*out = NULL;
	if (err == -E2BIG)
		log_error("connection %s: its traffic selectors make more than %d child SAs "
			  "(IKEv1 negotiates one per pair of local and remote ranges); allowed: "
			  "fewer ranges", t->name, SWANCTL_MAX_CHILDREN);
	if (err == -EINVAL)
		log_error("connection %s: no traffic selector: the VNet and the other side have "
			  "no address ranges of one family", t->name);
	if (err)
		return err;
	children = json_object();
	json_array_foreach(selectors, i, it) {
		char child[SWANCTL_NAME_MAX + 8];

		swanctl_child_name(name, i, child, sizeof(child));
		json_object_set_new(children, child, child_of(t->connection, it, esp, lifetime,
							      kilobytes));
	}
	json_decref(selectors);
	*out = children;
	return children ? 0 : -ENOMEM;
}

/* The IKE SA's version and what differs with it. IKEv1: Main Mode (never aggressive,
 * which would send the PSK's hash in the clear), reauthenticated where IKEv2 rekeys (it
 * cannot rekey an IKE SA), and dpdTimeoutSeconds as its DPD timeout (IKEv2 needs none:
 * its retransmissions declare the peer dead). InitiatorOnly: unique = keep, so charon
 * refuses an IKE SA the peer starts while its own stands (strongSwan cannot refuse to
 * respond outright). */
static int ike_version_set(json_t *conn, const struct config_connection *c)
{
	int err = 0;

	if (c->protocol == CONNECTION_IKEV1) {
		err |= json_object_set_new(conn, "version", json_string("1"));
		err |= json_object_set_new(conn, "aggressive", json_string("no"));
		err |= json_object_set_new(conn, "reauth_time",
					   seconds(AZURE_IKE_SA_LIFETIME_SECONDS));
		err |= json_object_set_new(conn, "rekey_time", seconds(0));
		err |= json_object_set_new(conn, "dpd_timeout", seconds(c->dpd_timeout_seconds));
	} else {
		err |= json_object_set_new(conn, "version", json_string("2"));
		err |= json_object_set_new(conn, "rekey_time",
					   seconds(AZURE_IKE_SA_LIFETIME_SECONDS));
	}
	if (c->mode == CONNECTION_MODE_INITIATOR_ONLY)
		err |= json_object_set_new(conn, "unique", json_string("keep"));
	return err ? -ENOMEM : 0;
}


/* ---- point-to-site ---- */

void swanctl_pool_name(const char *connection, size_t index, char *buf, size_t size)
{
	snprintf(buf, size, "%s~pool%zu", connection, index + 1);
}

char *swanctl_pem_certificate(const unsigned char *der, size_t length)
{
	static const char digits[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char head[] = "-----BEGIN CERTIFICATE-----\n";
	static const char tail[] = "-----END CERTIFICATE-----\n";
	size_t chars = (length + 2) / 3 * 4;
	char *pem = malloc(sizeof(head) + chars + chars / 64 + 2 + sizeof(tail));
	size_t at, col = 0;

	if (!pem)
		return NULL;
	at = (size_t)sprintf(pem, "%s", head);
	for (size_t i = 0; i < length; i += 3) {
		uint32_t v = (uint32_t)der[i] << 16 | (i + 1 < length ? der[i + 1] << 8 : 0) |
			     (i + 2 < length ? der[i + 2] : 0);
		char quad[4] = { digits[v >> 18 & 63], digits[v >> 12 & 63],
				 i + 1 < length ? digits[v >> 6 & 63] : '=',
				 i + 2 < length ? digits[v & 63] : '=' };

		for (int k = 0; k < 4; k++) {
			pem[at++] = quad[k];
			if (++col == 64) {
				pem[at++] = '\n';
				col = 0;
			}
		}
	}
	if (col)
		pem[at++] = '\n';
	sprintf(pem + at, "%s", tail);
	return pem;
}

/* A credential file of the binding, whole (at most 64 KiB). A private one must be the
 * file itself (no link followed), root's or ours, and readable by its owner only. */
static int credential_read(const char *gateway, const char *path, bool private, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *text = NULL;
	struct stat st;
	ssize_t n;
	int err = 0;

	*out = NULL;
	if (fd < 0) {
		err = -errno;
		log_error("virtual network gateway %s: cannot read %s: %s%s", gateway, path,
			  strerror(errno), errno == ELOOP ? " (a symbolic link; allowed: the "
			  "file itself)" : "");
		return err;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > 65536) {
		log_error("virtual network gateway %s: %s is not a file of at most 64 KiB", gateway,
			  path);
		err = -EINVAL;
	} else if (private && ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 077))) {
		log_error("virtual network gateway %s: %s holds its private key but %s", gateway,
			  path, st.st_mode & 077 ? "other users may read or write it; allowed: "
			  "readable by its owner only (chmod 600)" : "it is another user's; "
			  "allowed: owned by root");
		err = -EPERM;
	} else if (!(text = calloc(1, (size_t)st.st_size + 1))) {
		err = -ENOMEM;
	} else if ((n = read(fd, text, (size_t)st.st_size)) != st.st_size) {
		log_error("virtual network gateway %s: cannot read %s", gateway, path);
		err = -EIO;
	}
	close(fd);
	if (err && text) {
		explicit_bzero(text, (size_t)st.st_size);
		free(text);
		text = NULL;
	}
	*out = text;
	return err;
}

static json_t *pem_list(const struct config_vpn_client *vc)
{
	json_t *list = json_array();

	for (size_t i = 0; list && i < vc->n_roots; i++) {
		char *pem = swanctl_pem_certificate(vc->roots[i], vc->root_lengths[i]);

		if (!pem || json_array_append_new(list, json_string(pem))) {
			free(pem);
			json_decref(list);
			return NULL;
		}
		free(pem);
	}
	return list;
}

/* What clients may reach, as the child SA's local selectors (the routes the client
 * installs): the gateway's VNet and the spokes that use its gateway, IPv4 (the pool's
 * family). */
static json_t *client_reach(const struct config *cfg, const struct tunnel *t)
{
	json_t *list = json_array();

	for (size_t v = 0; list && v < cfg->n_vnets; v++) {
		const struct config_peering *out = config_peering_to(cfg, (int)v, (int)t->vnet);
		const struct config_peering *back = config_peering_to(cfg, (int)t->vnet, (int)v);
		bool transit = out && back && out->connected && out->use_remote_gateways &&
			       back->allow_gateway_transit;

		if (v != t->vnet && !transit)
			continue;
		for (size_t p = 0; p < cfg->vnets[v].n_prefixes; p++) {
			char addr[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 5];
			const struct ip_prefix *prefix = &cfg->vnets[v].prefixes[p];

			if (prefix->family != AF_INET)
				continue;
			inet_ntop(AF_INET, prefix->addr, addr, sizeof(addr));
			snprintf(text, sizeof(text), "%s/%u", addr, prefix->len);
			json_array_append_new(list, json_string(text));
		}
	}
	return list;
}

/* The clients' connection: any address may start it (never this side), the gateway
 * authenticates with its certificate, each client with one a configured root signed,
 * and gets its virtual address from the pools. Revoked certificates are refused after
 * authentication (tunnel_clients.c): strongSwan has no list of refused fingerprints. */
static int vpn_client_connection_message(const struct config *cfg, const struct tunnel *t,
					 const char *name, json_t **out)
{
	const struct config_vpn_client *vc = t->vpn_client;
	char local[INET6_ADDRSTRLEN], *cert = NULL;
	json_t *pools = json_array(), *conn, *child;
	int err = credential_read(t->name, vc->server_certificate, false, &cert);

	if (err) {
		json_decref(pools);
		return err;
	}
	address_text(&t->local, local, sizeof(local));
	for (size_t i = 0; i < vc->n_pool; i++) {
		char pool[SWANCTL_NAME_MAX + 32];

		swanctl_pool_name(name, i, pool, sizeof(pool));
		json_array_append_new(pools, json_string(pool));
	}
	child = json_pack("{s:o, s:[s], s:o, s:o, s:s, s:s, s:s}",
			  "local_ts", client_reach(cfg, t), "remote_ts", "dynamic",
			  "esp_proposals", comma_list(AZURE_P2S_ESP_PROPOSALS),
			  "rekey_time", seconds(AZURE_DEFAULT_SA_LIFETIME_SECONDS),
			  "start_action", "none", "dpd_action", "clear", "close_action", "none");
	conn = json_pack("{s:[s], s:[s], s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s, "
			 "s:{s:s, s:[s]}, s:{s:s, s:o}, s:{s:o}}",
			 "local_addrs", local, "remote_addrs", "%any", "version", "2",
			 "proposals", comma_list(AZURE_P2S_IKE_PROPOSALS),
			 "rekey_time", seconds(AZURE_IKE_SA_LIFETIME_SECONDS),
			 "dpd_delay", seconds(t->connection->dpd_timeout_seconds / 3),
			 "if_id_in", number(t->if_id), "if_id_out", number(t->if_id),
			 "pools", pools, "unique", "replace",
			 "local", "auth", "pubkey", "certs", cert,
			 "remote", "auth", "pubkey", "cacerts", pem_list(vc),
			 "children", name, child);
	free(cert);
	*out = conn ? json_pack("{s:o}", name, conn) : NULL;
	return *out ? 0 : -ENOMEM;
}

/* load-pool messages of the clients' pools, and load-key's of the gateway's key. */
static int vpn_client_credentials(const struct tunnel *t, const char *name,
				  struct swanctl_set *set)
{
	const struct config_vpn_client *vc = t->vpn_client;
	char *key = NULL;
	int err;

	for (size_t i = 0; i < vc->n_pool; i++) {
		char pool[SWANCTL_NAME_MAX + 32], addr[INET_ADDRSTRLEN], text[INET_ADDRSTRLEN + 4];

		swanctl_pool_name(name, i, pool, sizeof(pool));
		inet_ntop(AF_INET, vc->pool[i].addr, addr, sizeof(addr));
		snprintf(text, sizeof(text), "%s/%u", addr, vc->pool[i].len);
		json_object_set_new(set->pools, pool, json_pack("{s:{s:s}}", pool, "addrs", text));
	}
	err = credential_read(t->name, vc->server_key, true, &key);
	if (err)
		return err;
	err = json_object_set_new(set->keys, name, json_pack("{s:s, s:s}", "type", "any",
							     "data", key)) ? -ENOMEM : 0;
	explicit_bzero(key, strlen(key));
	free(key);
	return err;
}

int swanctl_connection_message(const struct config *cfg, const struct tunnel *t, json_t **out)
{
	const struct config_connection *c = t->connection;
	char name[SWANCTL_NAME_MAX], local[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN];
	char ike[256], esp[256];
	int lifetime = AZURE_DEFAULT_SA_LIFETIME_SECONDS;
	long long kilobytes = AZURE_DEFAULT_SA_DATA_KILOBYTES;
	const char *why = NULL;
	json_t *conn, *children;
	int err;

	*out = NULL;
	swanctl_connection_name(cfg->gateway_name, t, name, sizeof(name));
	if (strlen(name) > 255) {
		log_error("connection %s: its strongSwan name %s is longer than charon's 255 bytes",
			  t->name, name);
		return -ENAMETOOLONG;
	}
	if (t->vpn_client)
		return vpn_client_connection_message(cfg, t, name, out);
	address_text(&t->local, local, sizeof(local));
	address_text(&t->peer, peer, sizeof(peer));
	if (c->n_ipsec_policies) {
		const struct config_ipsec_policy *p = &c->ipsec_policies[0];

		if (c->protocol == CONNECTION_IKEV1 && is_gcm(p->ike_encryption))
			why = "ikeEncryption (IKEv1 has no AES-GCM for its IKE SA; allowed with "
			      "connectionProtocol IKEv1: AES256, AES192, AES128, DES3, DES)";
		if (why || swanctl_ike_proposal(p, ike, sizeof(ike), &why) ||
		    swanctl_esp_proposal(p, esp, sizeof(esp), &why)) {
			log_error("connection %s: ipsecPolicies[0].%s cannot be expressed for "
				  "strongSwan", t->name, why);
			return -EINVAL;
		}
		lifetime = p->sa_lifetime_seconds;
		kilobytes = p->sa_data_size_kilobytes;
	} else {
		snprintf(ike, sizeof(ike), "%s", AZURE_DEFAULT_IKE_PROPOSALS);
		snprintf(esp, sizeof(esp), "%s", AZURE_DEFAULT_ESP_PROPOSALS);
	}
	err = children_of(cfg, t, name, esp, lifetime, kilobytes, &children);
	if (err)
		return err;
	/* Azure's dpdTimeoutSeconds: DPD probes every third of it, IKEv2's retransmissions
	 * (IKEv1's dpd_timeout) declare the peer dead. keyingtries 0: like Azure's gateway,
	 * charon never gives up on a peer that does not answer, it starts over after each
	 * retransmission sequence (whose timeouts are its backoff); the children's
	 * dpd_action and close_action bring the tunnel back after a dead peer or a close. */
	conn = json_pack("{s:[s], s:[s], s:o, s:s, s:o, s:o, s:o, s:{s:s, s:s}, "
			 "s:{s:s, s:s}, s:o}",
			 "local_addrs", local, "remote_addrs", peer,
			 "proposals", comma_list(ike), "keyingtries", "0",
			 "dpd_delay", seconds(c->dpd_timeout_seconds / 3 ?: 1),
			 "if_id_in", number(t->if_id), "if_id_out", number(t->if_id),
			 "local", "auth", "psk", "id", local, "remote", "auth", "psk", "id", peer,
			 "children", children);
	if (conn && ike_version_set(conn, c)) {
		json_decref(conn);
		conn = NULL;
	}
	*out = conn ? json_pack("{s:o}", name, conn) : NULL;
	return *out ? 0 : -ENOMEM;
}

int swanctl_secret_message(const struct config *cfg, const struct tunnel *t, json_t **out)
{
	char name[SWANCTL_NAME_MAX], local[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN];
	const char *key = t->connection->shared_key;

	*out = NULL;
	if (!key)
		return 0;
	swanctl_connection_name(cfg->gateway_name, t, name, sizeof(name));
	address_text(&t->local, local, sizeof(local));
	address_text(&t->peer, peer, sizeof(peer));
	*out = json_pack("{s:s, s:s, s:s, s:[s, s]}", "id", name, "type", "IKE", "data", key,
			 "owners", local, peer);
	return *out ? 0 : -ENOMEM;
}

/* ---- the set of a gateway ---- */

int swanctl_set_build(const struct config *cfg, const struct tunnel *tunnels, size_t count,
		      struct swanctl_set *out)
{
	int err = 0;

	out->connections = json_object();
	out->secrets = json_object();
	out->pools = json_object();
	out->keys = json_object();
	for (size_t i = 0; !err && i < count; i++) {
		char name[SWANCTL_NAME_MAX];
		json_t *conn, *secret;

		swanctl_connection_name(cfg->gateway_name, &tunnels[i], name, sizeof(name));
		err = swanctl_connection_message(cfg, &tunnels[i], &conn);
		if (!err)
			json_object_set_new(out->connections, name, conn);
		if (!err)
			err = swanctl_secret_message(cfg, &tunnels[i], &secret);
		if (!err && secret)
			json_object_set_new(out->secrets, name, secret);
		if (!err && tunnels[i].vpn_client)
			err = vpn_client_credentials(&tunnels[i], name, out);
	}
	if (err || !out->connections || !out->secrets || !out->pools || !out->keys) {
		swanctl_set_free(out);
		return err ? err : -ENOMEM;
	}
	return 0;
}

void swanctl_set_free(struct swanctl_set *set)
{
	json_decref(set->connections);
	json_decref(set->secrets);
	json_decref(set->pools);
	json_decref(set->keys);
	set->connections = set->secrets = set->pools = set->keys = NULL;
}

/* ---- talking to charon ---- */

/* One command whose reply is a verdict. Returns 0, or -errno after one line naming what
 * failed (never a secret: the messages with one are not echoed). */
static int vici_do(struct vici *v, const char *cmd, json_t *args, const char *name, bool quiet)
{
	const char *why;
	json_t *reply;
	int err = vici_request(v, cmd, args, &reply);

	json_decref(args);
	if (err) {
		log_error("charon did not answer %s %s: %s", cmd, name, strerror(-err));
		return err;
	}
	err = vici_success(reply, &why);
	if (err && !quiet)
		log_error("charon refused %s %s: %.200s", cmd, name, why);
	else if (err)
		log_debug("charon: %s %s: %.200s", cmd, name, why);
	else
		log_debug("charon: %s %s", cmd, name);
	json_decref(reply);
	return err;
}

static int load_conn(struct vici *v, const char *name, json_t *definition)
{
	return vici_do(v, "load-conn", json_incref(definition), name, false);
}

/* The IKE SA of a connection no longer loaded: closed without waiting for the peer for
 * long. No SA to close is no failure. */
static void terminate_ike(struct vici *v, const char *name)
{
	json_t *args = json_pack("{s:s, s:s, s:s}", "ike", name, "force", "yes", "timeout",
				 "5000"), *reply = NULL;

	if (vici_request(v, "terminate", args, &reply) == 0)
		log_debug("charon: terminate %s", name);
	json_decref(args);
	json_decref(reply);
}

/* A connection moving between IKEv1 and IKEv2: the IKE SA of the old version is closed
 * before the new definition starts one, so that no SA of the old version stays. */
static bool ike_version_changes(json_t *previous, json_t *next, const char *name)
{
	const char *was = json_string_value(json_object_get(json_object_get(previous, name),
							    "version"));
	const char *is = json_string_value(json_object_get(json_object_get(next, name),
							   "version"));

	return was && is && strcmp(was, is);
}

/* Unloads one of ours, its secret too (a connection without one: charon says so, and
 * that is no failure), and closes its SAs. */
static int unload(struct vici *v, const char *name, bool secret)
{
	int err = vici_do(v, "unload-conn", json_pack("{s:s}", "name", name), name, false);

	if (secret)
		vici_do(v, "unload-shared", json_pack("{s:s}", "id", name), name, true);
	terminate_ike(v, name);
	return err;
}

/* The pools a definition's clients took their addresses from, once no connection of
 * `keep` names them: after the IKE SAs are closed, as charon keeps a pool in use. */
static void pools_unload(struct vici *v, json_t *definition, json_t *keep)
{
	json_t *pools = json_object_get(json_object_get(definition, json_object_iter_key(
		json_object_iter(definition))), "pools"), *pool;
	size_t i;

	json_array_foreach(pools, i, pool) {
		const char *pool_name = json_string_value(pool);
		bool kept = false;
		const char *name;
		json_t *def;

		json_object_foreach(keep, name, def) {
			json_t *list = json_object_get(json_object_get(def, name), "pools"), *it;
			size_t k;

			json_array_foreach(list, k, it)
				kept |= pool_name && json_string_value(it) &&
					!strcmp(pool_name, json_string_value(it));
		}
		if (pool_name && !kept)
			vici_do(v, "unload-pool", json_pack("{s:s}", "name", pool_name), pool_name,
				true);
	}
}

/* The point-to-site pools and keys: before the connections that use them. Pools are
 * loaded every time (charon keeps one unchanged, leases and all), keys too: charon holds
 * them in memory only. */
static int credentials_load(struct vici *v, const struct swanctl_set *next)
{
	const char *name;
	json_t *msg;
	int err = 0;

	json_object_foreach(next->keys, name, msg)
		if (!err)
			err = vici_do(v, "load-key", json_incref(msg), name, false);
	json_object_foreach(next->pools, name, msg)
		if (!err)
			err = vici_do(v, "load-pool", json_incref(msg), name, false);
	return err;
}

/* Appends name to a comma-separated list in buf. */
static void list_add(char *buf, size_t size, const char *name)
{
	size_t used = strlen(buf);

	snprintf(buf + used, size - used, "%s%s", used ? ", " : "", name);
}

/* Puts charon back on `old` after `next`'s connections were loaded up to, not including,
 * `failed`. Returns what charon holds of ours now. */
static json_t *connections_roll_back(struct vici *v, json_t *old, const struct swanctl_set *next,
				     const char *failed)
{
	json_t *in_force = json_deep_copy(old), *definition;
	char kept[512] = "";
	const char *name;

	json_object_foreach(next->connections, name, definition) {
		json_t *previous = json_object_get(old, name);

		if (!strcmp(name, failed))
			break;
		if (previous ? json_is_null(previous) || load_conn(v, name, previous)
			     : unload(v, name, false) != 0) {
			json_object_set(in_force, name, definition); /* still the new one */
			list_add(kept, sizeof(kept), name);
		}
	}
	if (kept[0])
		log_error("charon keeps the new definition of %s (the previous one could not be "
			  "put back)", kept);
	return in_force;
}

/* After a failure: the secrets `next` added unloaded, those it replaced said. */
static void secrets_roll_back(struct vici *v, json_t *old, const struct swanctl_set *next)
{
	char replaced[512] = "";
	const char *name;
	json_t *msg;

	json_object_foreach(next->secrets, name, msg) {
		if (json_object_get(old, name))
			list_add(replaced, sizeof(replaced), name);
		else
			vici_do(v, "unload-shared", json_pack("{s:s}", "id", name), name, true);
	}
	log_error("charon has the previous connections of this gateway again%s%s", replaced[0] ?
		  "; the sharedKey it holds is the new config's for " : "", replaced);
}

/* charon stopped answering mid-way: it may hold any of old and next. All of them stay
 * ours, so that the next reload or `down` settles them. */
static json_t *unknown_in_force(json_t *old, const struct swanctl_set *next)
{
	json_t *owned = json_deep_copy(old);

	json_object_update_missing(owned, next->connections);
	log_error("charon stopped answering: which of this gateway's connections it holds is "
		  "not known (the next reload or down settles them)");
	return owned;
}

int swanctl_apply(struct vici *v, json_t *old, const struct swanctl_set *next, json_t **in_force)
{
	const char *name;
	json_t *msg;
	int err = 0;

	*in_force = NULL;
	/* The secrets first: a connection starts as it is loaded and needs its key. The
	 * secrets are loaded every time: charon holds them in memory only. */
	json_object_foreach(next->secrets, name, msg) {
		err = vici_do(v, "load-shared", json_incref(msg), name, false);
		if (err && err != -EIO) {
			*in_force = unknown_in_force(old, next);
			return err;
		}
		if (err) {
			*in_force = json_deep_copy(old);
			secrets_roll_back(v, old, next);
			return err;
		}
	}
	err = credentials_load(v, next);
	if (err) {
		*in_force = err == -EIO ? json_deep_copy(old) : unknown_in_force(old, next);
		if (err == -EIO)
			secrets_roll_back(v, old, next);
		return err;
	}
	/* charon leaves a connection loaded again unchanged alone, SAs included, and
	 * replaces a changed one: only what is new or changed moves. */
	json_object_foreach(next->connections, name, msg) {
		if (ike_version_changes(json_object_get(old, name), msg, name))
			terminate_ike(v, name);
		err = load_conn(v, name, msg);
		if (err && err != -EIO) {
			*in_force = unknown_in_force(old, next);
			return err;
		}
		if (err) {
			*in_force = connections_roll_back(v, old, next, name);
			secrets_roll_back(v, old, next);
			return err;
		}
	}
	*in_force = json_deep_copy(next->connections);
	/* Ours no longer in the config: unloaded. Nobody else's is named here. */
	json_object_foreach(old, name, msg) {
		if (json_object_get(next->connections, name))
			continue;
		if (unload(v, name, true) && *in_force)
			json_object_set(*in_force, name, msg);
		pools_unload(v, msg, next->connections);
	}
	return *in_force ? 0 : -ENOMEM;
}

int swanctl_initiate(struct vici *v, const char *name, const char *child, char *why,
		     size_t why_size)
{
	/* timeout -1: charon queues the initiation and answers at once; the outcome shows
	 * in list-sas, which the caller watches anyway. */
	json_t *args = json_pack("{s:s, s:s, s:s}", "child", child, "ike", name, "timeout", "-1");
	json_t *reply = NULL;
	const char *errmsg;
	int err = vici_request(v, "initiate", args, &reply);

	json_decref(args);
	snprintf(why, why_size, "%s", err ? strerror(-err) : "");
	if (!err) {
		err = vici_success(reply, &errmsg);
		if (err)
			snprintf(why, why_size, "%.200s", errmsg);
	}
	json_decref(reply);
	return err;
}

int swanctl_remove(struct vici *v, json_t *owned)
{
	const char *name;
	json_t *definition;
	int err = 0;

	json_object_foreach(owned, name, definition) {
		int rc = unload(v, name, true);

		pools_unload(v, definition, NULL);
		err = err ? err : rc;
	}
	return err;
}

int swanctl_connect(struct vici *v)
{
	const char *path = vici_socket_path();
	int err = vici_connect(v, path);

	if (err)
		log_error("cannot reach charon at %s: %s (is charon running? VNET_XDP_VICI names "
			  "another socket)", path, strerror(-err));
	return err;
}

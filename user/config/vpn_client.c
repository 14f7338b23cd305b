/* vpnClientConfiguration of a virtual network gateway: point-to-site clients (IKEv2,
 * certificate authentication), as Azure writes it:
 *
 *   "vpnClientConfiguration": {
 *     "vpnClientAddressPool": {"addressPrefixes": ["172.16.201.0/24"]},
 *     "vpnClientProtocols": ["IkeV2"], "vpnAuthenticationTypes": ["Certificate"],
 *     "vpnClientRootCertificates": [{"name": "root", "properties": {"publicCertData": "MIIC..."}}],
 *     "vpnClientRevokedCertificates": [{"name": "lost", "properties": {"thumbprint": "A1B2..."}}]}
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "config/internal.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* A certificate larger than this is not one a client is issued. */
#define ROOT_CERT_MAX_BYTES 16384

static const char *const protocol_names[] = { "IkeV2", "SSTP", "OpenVPN" };
static const char *const authentication_names[] = { "Certificate", "Radius", "AAD" };

static int base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int base64_decode(const char *text, unsigned char *out, size_t size, size_t *length)
{
	unsigned bits = 0, n_bits = 0;
	size_t used = 0, padding = 0;

	for (; *text; text++) {
		int v;

		if (isspace((unsigned char)*text))
			continue; /* Azure's portal and exports wrap the data at times */
		if (*text == '=') {
			padding++;
			continue;
		}
		v = base64_value(*text);
		if (v < 0 || padding)
			return -1;
		bits = (bits << 6) | (unsigned)v;
		n_bits += 6;
		if (n_bits >= 8) {
			n_bits -= 8;
			if (used == size)
				return -1;
			out[used++] = (unsigned char)(bits >> n_bits);
		}
	}
	if (padding > 2 || n_bits >= 6 || (bits & ((1u << n_bits) - 1)))
		return -1;
	*length = used;
	return 0;
}

/* A DER certificate begins with a SEQUENCE whose length covers the rest exactly. */
static bool der_sequence_whole(const unsigned char *der, size_t length)
{
	size_t header = 2, body;

	if (length < 2 || der[0] != 0x30)
		return false;
	if (der[1] < 0x80) {
		body = der[1];
	} else {
		size_t n = der[1] & 0x7f;

		if (n == 0 || n > 3 || length < 2 + n)
			return false;
		body = 0;
		for (size_t i = 0; i < n; i++)
			body = (body << 8) | der[2 + i];
		header += n;
	}
	return header + body == length;
}

int thumbprint_parse(const char *text, uint8_t out[SHA1_LEN])
{
	size_t n = 0;

	for (; *text; text++) {
		char pair[3];

		if (*text == ' ' || *text == ':')
			continue; /* as certificate viewers show them */
		if (n == SHA1_LEN || !isxdigit((unsigned char)text[0]) ||
		    !isxdigit((unsigned char)text[1]))
			return -1;
		pair[0] = text[0];
		pair[1] = text[1];
		pair[2] = '\0';
		out[n++] = (uint8_t)strtoul(pair, NULL, 16);
		text++;
	}
	return n == SHA1_LEN ? 0 : -1;
}

/* vpnClientProtocols and vpnAuthenticationTypes: each entry one of Azure's values, and
 * only `supported` taken. Absent: Azure's default, the supported one. */
static void read_only_value(struct loader *l, struct node list, const char *const *names,
			    size_t count, const char *what)
{
	if (!list.value || json_is_null(list.value) || !is_array_or_report(&l->r, list))
		return;
	if (!json_array_size(list.value))
		reader_problem(&l->r, list.path, "empty; allowed: [\"%s\"]", names[0]);
	for (size_t i = 0; i < json_array_size(list.value); i++) {
		struct node n = node_element(&l->r, list, i);
		int index;

		if (read_enum(l, n, names, count, &index) && index != 0)
			reader_problem(&l->r, n.path, "%s %s is not supported; allowed: %s", what,
				       names[index], names[0]);
	}
}

static void read_root_certificates(struct loader *l, struct config_vpn_client *vc,
				   struct node list)
{
	size_t n = list.value && json_is_array(list.value) ? json_array_size(list.value) : 0;

	if (!list.value || json_is_null(list.value) || !n) {
		reader_problem(&l->r, list.path, "%s; allowed: one or more root certificates "
			       "({\"name\": ..., \"properties\": {\"publicCertData\": \"<base64 "
			       "DER>\"}}): clients are authenticated by certificates they signed",
			       list.value ? "empty" : "missing");
		return;
	}
	if (!is_array_or_report(&l->r, list))
		return;
	vc->root_names = calloc(n, sizeof(*vc->root_names));
	vc->roots = calloc(n, sizeof(*vc->roots));
	vc->root_lengths = calloc(n, sizeof(*vc->root_lengths));
	if (!vc->root_names || !vc->roots || !vc->root_lengths)
		return;
	for (size_t i = 0; i < n; i++) {
		struct node cert = node_element(&l->r, list, i);
		struct node name = node_child(&l->r, cert, "name");
		struct node data = node_child(&l->r, node_properties(&l->r, cert), "publicCertData");
		const char *text = NULL, *cert_name = NULL;
		unsigned char *der;
		size_t length;

		if (!is_object_or_report(&l->r, cert))
			continue;
		get_string(&l->r, name, &cert_name);
		if (!get_string(&l->r, data, &text)) {
			if (!data.value)
				reader_problem(&l->r, data.path, "missing; allowed: the root "
					       "certificate's public data, base64 DER as Azure holds it");
			continue;
		}
		der = malloc(ROOT_CERT_MAX_BYTES);
		if (!der)
			continue;
		if (strstr(text, "-----BEGIN") ||
		    base64_decode(text, der, ROOT_CERT_MAX_BYTES, &length) ||
		    !der_sequence_whole(der, length)) {
			reader_problem(&l->r, data.path, "not a certificate; allowed: base64 of "
				       "the DER certificate, without PEM's BEGIN and END lines (as "
				       "Azure stores publicCertData)");
			free(der);
			continue;
		}
		vc->root_names[vc->n_roots] = copy_string(cert_name ? cert_name : "");
		vc->root_lengths[vc->n_roots] = length;
		vc->roots[vc->n_roots++] = der;
	}
}

static void read_revoked_certificates(struct loader *l, struct config_vpn_client *vc,
				      struct node list)
{
	if (!list.value || json_is_null(list.value) || !is_array_or_report(&l->r, list))
		return;
	vc->revoked = calloc(json_array_size(list.value) + 1, sizeof(*vc->revoked));
	if (!vc->revoked)
		return;
	for (size_t i = 0; i < json_array_size(list.value); i++) {
		struct node cert = node_element(&l->r, list, i);
		struct node print = node_child(&l->r, node_properties(&l->r, cert), "thumbprint");
		const char *text = NULL;

		if (!is_object_or_report(&l->r, cert))
			continue;
		if (!get_string(&l->r, print, &text)) {
			if (!print.value)
				reader_problem(&l->r, print.path, "missing; allowed: the revoked "
					       "certificate's SHA-1 thumbprint (40 hex digits)");
			continue;
		}
		if (thumbprint_parse(text, vc->revoked[vc->n_revoked]))
			reader_problem(&l->r, print.path, "\"%s\" is not a SHA-1 thumbprint; "
				       "allowed: 40 hex digits", reader_shown(&l->r, text));
		else
			vc->n_revoked++;
	}
}

static void read_address_pool(struct loader *l, struct config_vpn_client *vc, struct node pool)
{
	struct node prefixes = node_child(&l->r, pool, "addressPrefixes");

	vc->n_pool = read_prefix_list(l, (struct node){ NULL, "" }, prefixes, &vc->pool);
	if (!vc->n_pool && (!prefixes.value || (json_is_array(prefixes.value) &&
						!json_array_size(prefixes.value))))
		reader_problem(&l->r, prefixes.path, "%s; allowed: the IPv4 prefixes clients get "
			       "their addresses from", prefixes.value ? "empty" : "missing");
	for (size_t i = 0; i < vc->n_pool; i++)
		if (vc->pool[i].family != AF_INET)
			reader_problem(&l->r, path_index(&l->r, prefixes.path, i), "an IPv6 client "
				       "address pool is not supported; allowed: IPv4 prefixes");
		else if (vc->pool[i].len > 30)
			reader_problem(&l->r, path_index(&l->r, prefixes.path, i), "/%u holds no "
				       "client address; allowed: /30 or larger", vc->pool[i].len);
}

/* Properties of vpnClientConfiguration besides those read: refused when they ask for
 * something (a RADIUS server, Azure AD, custom client policies), accepted empty as Azure
 * exports them. */
static const char *const vpn_client_keys[] = { "vpnClientAddressPool", "vpnClientProtocols",
	"vpnAuthenticationTypes", "vpnClientRootCertificates", "vpnClientRevokedCertificates" };

static bool is_empty(json_t *v)
{
	return json_is_null(v) || (json_is_array(v) && !json_array_size(v)) ||
	       (json_is_object(v) && !json_object_size(v)) ||
	       (json_is_string(v) && !json_string_length(v));
}

static void refuse_other_keys(struct loader *l, struct node config)
{
	const char *key;
	json_t *value;

	json_object_foreach(config.value, key, value) {
		bool known = false;

		for (size_t i = 0; i < COUNT(vpn_client_keys); i++)
			known |= !strcmp(key, vpn_client_keys[i]);
		if (!known && !is_empty(value))
			reader_problem(&l->r, path_key(&l->r, config.path, key), "not supported "
				       "(point-to-site here is IKEv2 with certificates only); allowed: "
				       "vpnClientAddressPool, vpnClientProtocols, vpnAuthenticationTypes, "
				       "vpnClientRootCertificates, vpnClientRevokedCertificates");
	}
}

void read_vpn_client_configuration(struct loader *l, struct config_vnet_gateway *gw,
				   struct node config)
{
	struct config_vpn_client *vc;

	if (!config.value || json_is_null(config.value) || !is_object_or_report(&l->r, config))
		return;
	vc = gw->vpn_client = calloc(1, sizeof(*vc));
	if (!vc)
		return;
	refuse_other_keys(l, config);
	read_address_pool(l, vc, node_child(&l->r, config, "vpnClientAddressPool"));
	read_only_value(l, node_child(&l->r, config, "vpnClientProtocols"), protocol_names,
			COUNT(protocol_names), "vpnClientProtocol");
	read_only_value(l, node_child(&l->r, config, "vpnAuthenticationTypes"),
			authentication_names, COUNT(authentication_names),
			"vpnAuthenticationType");
	read_root_certificates(l, vc, node_child(&l->r, config, "vpnClientRootCertificates"));
	read_revoked_certificates(l, vc, node_child(&l->r, config,
						    "vpnClientRevokedCertificates"));
	vc->connection = (struct config_connection){
		.name = copy_string(gw->name), .type = CONNECTION_VPN_CLIENT,
		.vnet_gateway1 = CONFIG_NONE, .vnet_gateway2 = CONFIG_NONE,
		.local_network_gateway2 = CONFIG_NONE, .dpd_timeout_seconds = 45,
		.protocol = CONNECTION_IKEV2, .mode = CONNECTION_MODE_RESPONDER_ONLY,
	};
}

/* A pool prefix that overlaps a VNet, a site or another gateway's pool would make one
 * address two places: refused, as Azure refuses it. */
static const char *pool_overlap(const struct config *cfg, const struct config_vnet_gateway *gw,
				const struct ip_prefix *p, char *buf, size_t size)
{
	for (size_t v = 0; v < cfg->n_vnets; v++)
		for (size_t k = 0; k < cfg->vnets[v].n_prefixes; k++)
			if (ip_prefix_overlaps(p, &cfg->vnets[v].prefixes[k])) {
				snprintf(buf, size, "virtual network \"%s\"", cfg->vnets[v].name);
				return buf;
			}
	for (size_t s = 0; s < cfg->n_local_network_gateways; s++)
		for (size_t k = 0; k < cfg->local_network_gateways[s].n_prefixes; k++)
			if (ip_prefix_overlaps(p, &cfg->local_network_gateways[s].prefixes[k])) {
				snprintf(buf, size, "local network gateway \"%s\"",
					 cfg->local_network_gateways[s].name);
				return buf;
			}
	for (size_t g = 0; g < cfg->n_vnet_gateways && &cfg->vnet_gateways[g] != gw; g++) {
		const struct config_vpn_client *other = cfg->vnet_gateways[g].vpn_client;

		for (size_t k = 0; other && k < other->n_pool; k++)
			if (ip_prefix_overlaps(p, &other->pool[k])) {
				snprintf(buf, size, "the client address pool of \"%s\"",
					 cfg->vnet_gateways[g].name);
				return buf;
			}
	}
	return NULL;
}

void check_vpn_client_pools(struct loader *l)
{
	struct config *cfg = l->cfg;

	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct node config, prefixes;
		int g;

		if (rec->kind != KIND_VNET_GATEWAY)
			continue;
		g = loader_find_named(l, cfg->vnet_gateways, cfg->n_vnet_gateways,
				      sizeof(*cfg->vnet_gateways), rec->name);
		if (g == CONFIG_NONE || !cfg->vnet_gateways[g].vpn_client)
			continue;
		config = node_child(&l->r, rec->props, "vpnClientConfiguration");
		prefixes = node_child(&l->r, node_child(&l->r, config, "vpnClientAddressPool"),
				      "addressPrefixes");
		for (size_t k = 0; k < cfg->vnet_gateways[g].vpn_client->n_pool; k++) {
			const struct ip_prefix *p = &cfg->vnet_gateways[g].vpn_client->pool[k];
			char what[256], text[64];

			if (pool_overlap(cfg, &cfg->vnet_gateways[g], p, what, sizeof(what)))
				reader_problem(&l->r, path_index(&l->r, prefixes.path, k), "%s "
					       "overlaps the address space of %s; allowed: a client "
					       "address pool apart from every VNet, site and other pool",
					       prefix_text(p, text, sizeof(text)), what);
		}
	}
}

void config_vpn_client_free(struct config_vpn_client *vc)
{
	if (!vc)
		return;
	for (size_t i = 0; i < vc->n_roots; i++) {
		free(vc->root_names[i]);
		free(vc->roots[i]);
	}
	free(vc->root_names);
	free(vc->roots);
	free(vc->root_lengths);
	free(vc->pool);
	free(vc->revoked);
	free(vc->server_certificate);
	free(vc->server_key);
	free(vc->connection.name);
	free(vc);
}

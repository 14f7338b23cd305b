/* Point-to-site on the loader side: vpnClientConfiguration read and refused as Azure
 * would (overlapping pools, other protocols and authentication types, PEM instead of
 * Azure's base64 DER, bad thumbprints), the clients' tunnel, the exact charon messages
 * (connection, pool, key), the pool in routes and in the VirtualNetwork tag, and the
 * SHA-1 thumbprints revoked certificates are found by. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "config/config.h"
#include "compile/nsg.h"
#include "compile/plan.h"
#include "compile/swanctl.h"
#include "datapath/tunnel.h"
#include "datapath/vpn_clients.h"

#define TRANSIT "tests/data/config/ipsec-transit.json"
/* The smallest DER SEQUENCE: a stand-in root the loader takes for a certificate. */
#define ROOT_DER "MAMCAQA="

static char cert_path[64], key_path[64];

static int files_make(void **state)
{
	FILE *f;
	int fd;

	(void)state;
	snprintf(cert_path, sizeof(cert_path), "/tmp/vx-p2s-cert-%d.pem", getpid());
	snprintf(key_path, sizeof(key_path), "/tmp/vx-p2s-key-%d.pem", getpid());
	f = fopen(cert_path, "w");
	fputs("-----BEGIN CERTIFICATE-----\nSERVER\n-----END CERTIFICATE-----\n", f);
	fclose(f);
	fd = open(key_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (write(fd, "KEY\n", 4) != 4)
		return -1;
	close(fd);
	return 0;
}

static int files_remove(void **state)
{
	(void)state;
	unlink(cert_path);
	unlink(key_path);
	return 0;
}

/* The transit config without its site, the hub's gateway with clients: `vpn` merged
 * into a default vpnClientConfiguration (a key with null removed). */
static char *config_text(const char *vpn)
{
	json_t *doc = json_load_file(TRANSIT, 0, NULL), *res, *it, *extra = json_loads(vpn, 0, NULL);
	json_t *binding = json_array_get(json_object_get(json_object_get(doc, "gateway"),
							 "virtualNetworkGateways"), 0);
	json_t *config = json_pack("{s:{s:[s]}, s:[s], s:[s], s:[{s:s, s:{s:s}}]}",
		"vpnClientAddressPool", "addressPrefixes", "172.16.201.0/24",
		"vpnClientProtocols", "IkeV2", "vpnAuthenticationTypes", "Certificate",
		"vpnClientRootCertificates", "name", "root", "properties", "publicCertData", ROOT_DER);
	const char *key;
	size_t i;
	char *text;

	assert_non_null(doc);
	assert_non_null(extra);
	json_object_foreach(extra, key, it)
		if (json_is_null(it))
			json_object_del(config, key);
		else
			json_object_set(config, key, it);
	json_object_set_new(binding, "vpnClientServerCertificate", json_string(cert_path));
	json_object_set_new(binding, "vpnClientServerKey", json_string(key_path));
	res = json_array();
	json_array_foreach(json_object_get(doc, "resources"), i, it) {
		const char *name = json_string_value(json_object_get(it, "name"));

		if (!strcmp(name, "to-onprem") || !strcmp(name, "onprem"))
			continue;
		if (!strcmp(name, "hub-vpngw"))
			json_object_set(json_object_get(it, "properties"), "vpnClientConfiguration",
					config);
		json_array_append(res, it);
	}
	json_object_set_new(doc, "resources", res);
	text = json_dumps(doc, JSON_INDENT(1));
	json_decref(doc);
	json_decref(extra);
	json_decref(config);
	return text;
}

/* Loads the config; returns the problem lines (without "FILE:LINE:COL: ") joined. */
static char *problems_of(const char *vpn, struct config **cfg)
{
	char *text = config_text(vpn), *out = NULL, *lines = NULL;
	size_t len = 0, n = 0;
	FILE *errors = open_memstream(&out, &len), *w;

	config_load_string(text, "p2s.json", errors, cfg);
	fclose(errors);
	free(text);
	w = open_memstream(&lines, &n);
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char *at = line;

		for (int colons = 0; colons < 3 && at; colons++)
			at = strchr(at, ':') ? strchr(at, ':') + 1 : NULL;
		fprintf(w, "%s\n", at ? at + 1 : line);
	}
	fclose(w);
	free(out);
	return lines;
}

static void expect_refused(const char *vpn, const char *expected)
{
	struct config *cfg = NULL;
	char *got = problems_of(vpn, &cfg);

	if (strcmp(got, expected))
		fail_msg("--- got\n%s--- expected\n%s", got, expected);
	assert_null(cfg);
	free(got);
}

static struct config *load_ok(const char *vpn)
{
	struct config *cfg = NULL;
	char *got = problems_of(vpn, &cfg);

	if (!cfg)
		fail_msg("refused:\n%s", got);
	free(got);
	return cfg;
}

#define POOL_PATH "resources[4].properties.vpnClientConfiguration"

static void pool_overlapping_a_vnet_or_site_is_refused(void **state)
{
	(void)state;
	expect_refused("{\"vpnClientAddressPool\": {\"addressPrefixes\": [\"10.11.128.0/24\"]}}",
		POOL_PATH ".vpnClientAddressPool.addressPrefixes[0]: 10.11.128.0/24 overlaps the "
		"address space of virtual network \"spoke1\"; allowed: a client address pool "
		"apart from every VNet, site and other pool\n");
	expect_refused("{\"vpnClientAddressPool\": {\"addressPrefixes\": [\"fd00::/64\"]}}",
		POOL_PATH ".vpnClientAddressPool.addressPrefixes[0]: an IPv6 client address pool "
		"is not supported; allowed: IPv4 prefixes\n");
	expect_refused("{\"vpnClientAddressPool\": {\"addressPrefixes\": []}}",
		POOL_PATH ".vpnClientAddressPool.addressPrefixes: empty; allowed: the IPv4 "
		"prefixes clients get their addresses from\n");
}

static void protocols_and_authentication_other_than_ikev2_certificates_are_refused(void **state)
{
	(void)state;
	expect_refused("{\"vpnClientProtocols\": [\"IkeV2\", \"OpenVPN\"]}",
		POOL_PATH ".vpnClientProtocols[1]: vpnClientProtocol OpenVPN is not supported; "
		"allowed: IkeV2\n");
	expect_refused("{\"vpnAuthenticationTypes\": [\"AAD\"]}",
		POOL_PATH ".vpnAuthenticationTypes[0]: vpnAuthenticationType AAD is not "
		"supported; allowed: Certificate\n");
	expect_refused("{\"radiusServerAddress\": \"10.0.0.5\"}",
		POOL_PATH ".radiusServerAddress: not supported (point-to-site here is IKEv2 "
		"with certificates only); allowed: vpnClientAddressPool, vpnClientProtocols, "
		"vpnAuthenticationTypes, vpnClientRootCertificates, vpnClientRevokedCertificates\n");
}

static void root_certificate_must_be_azures_base64_der(void **state)
{
	(void)state;
	expect_refused("{\"vpnClientRootCertificates\": [{\"name\": \"r\", \"properties\": "
		"{\"publicCertData\": \"-----BEGIN CERTIFICATE-----\\nMAMCAQA=\\n-----END "
		"CERTIFICATE-----\"}}]}",
		POOL_PATH ".vpnClientRootCertificates[0].properties.publicCertData: not a "
		"certificate; allowed: base64 of the DER certificate, without PEM's BEGIN and "
		"END lines (as Azure stores publicCertData)\n");
	expect_refused("{\"vpnClientRootCertificates\": null}",
		POOL_PATH ".vpnClientRootCertificates: missing; allowed: one or more root "
		"certificates ({\"name\": ..., \"properties\": {\"publicCertData\": \"<base64 "
		"DER>\"}}): clients are authenticated by certificates they signed\n");
}

static void revoked_thumbprint_must_be_sha1_hex(void **state)
{
	(void)state;
	expect_refused("{\"vpnClientRevokedCertificates\": [{\"name\": \"x\", \"properties\": "
		"{\"thumbprint\": \"ABCD\"}}]}",
		POOL_PATH ".vpnClientRevokedCertificates[0].properties.thumbprint: \"ABCD\" is "
		"not a SHA-1 thumbprint; allowed: 40 hex digits\n");
}

static void valid_configuration_is_read(void **state)
{
	struct config *cfg = load_ok("{\"vpnClientRevokedCertificates\": [{\"name\": \"lost\", "
		"\"properties\": {\"thumbprint\": \"0a:1B:2c:3D:4e:5F:60:71:82:93:a4:b5:c6:d7:e8:f9:"
		"00:11:22:33\"}}]}");
	const struct config_vpn_client *vc;
	char text[2 * SHA1_DIGEST_LEN + 1];

	(void)state;
	vc = cfg->vnet_gateways[0].vpn_client;
	assert_non_null(vc);
	assert_int_equal(vc->n_pool, 1);
	assert_int_equal(vc->n_roots, 1);
	assert_int_equal(vc->root_lengths[0], 5);
	assert_int_equal(vc->n_revoked, 1);
	thumbprint_text(vc->revoked[0], text);
	assert_string_equal(text, "0A1B2C3D4E5F60718293A4B5C6D7E8F900112233");
	assert_string_equal(vc->server_certificate, cert_path);
	config_free(cfg);
}

/* ---- the tunnel and charon's messages ---- */

static void clients_tunnel_takes_any_peer_and_the_pool(void **state)
{
	struct config *cfg = load_ok("{}");
	struct tunnel *t;
	size_t n;

	(void)state;
	assert_int_equal(tunnels_of_config(cfg, stderr, &t, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].name, "hub-vpngw");
	assert_non_null(t[0].vpn_client);
	assert_int_equal(t[0].peer.family, 0);
	assert_int_equal(t[0].n_remote_prefixes, 1);
	assert_int_equal(t[0].connection->mode, CONNECTION_MODE_RESPONDER_ONLY);
	free(t);
	config_free(cfg);
}

#define NAME "vnetxdp-ipsecgw.hub-vpngw"

static void charon_gets_a_responder_with_pools_and_certificates(void **state)
{
	struct config *cfg = load_ok("{\"vpnClientAddressPool\": {\"addressPrefixes\": "
				     "[\"172.16.201.0/24\", \"172.16.202.0/25\"]}}");
	struct swanctl_set set;
	struct tunnel *t;
	char *conn, *pools, *keys;
	size_t n;

	(void)state;
	assert_int_equal(tunnels_of_config(cfg, stderr, &t, &n), 0);
	assert_int_equal(swanctl_set_build(cfg, t, n, &set), 0);
	conn = json_dumps(set.connections, JSON_SORT_KEYS | JSON_COMPACT);
	pools = json_dumps(set.pools, JSON_SORT_KEYS | JSON_COMPACT);
	keys = json_dumps(set.keys, JSON_SORT_KEYS | JSON_COMPACT);
	{
		char want[4096];

		snprintf(want, sizeof(want),
		"{\"" NAME "\":{\"" NAME "\":{"
		"\"children\":{\"" NAME "\":{\"close_action\":\"none\",\"dpd_action\":\"clear\","
		"\"esp_proposals\":[\"aes256gcm16\",\"aes256-sha256\",\"aes256-sha1\",\"aes128-sha1\","
		"\"3des-sha1\"],\"local_ts\":[\"10.10.0.0/16\",\"10.11.0.0/16\"],"
		"\"rekey_time\":\"27000s\",\"remote_ts\":[\"dynamic\"],\"start_action\":\"none\"}},"
		"\"dpd_delay\":\"15s\",\"if_id_in\":\"%u\",\"if_id_out\":\"%u\","
		"\"local\":{\"auth\":\"pubkey\",\"certs\":[\"-----BEGIN CERTIFICATE-----\\nSERVER\\n"
		"-----END CERTIFICATE-----\\n\"]},\"local_addrs\":[\"198.51.100.1\"],"
		"\"pools\":[\"" NAME "~pool1\",\"" NAME "~pool2\"],"
		"\"proposals\":[\"aes256-sha256-modp2048\",\"aes256-sha256-modp1024\","
		"\"aes256-sha1-modp1024\",\"aes256gcm16-prfsha384-ecp384\","
		"\"aes256gcm16-prfsha256-ecp256\",\"aes128-sha1-modp1024\",\"3des-sha1-modp1024\"],"
		"\"rekey_time\":\"28800s\",\"remote\":{\"auth\":\"pubkey\",\"cacerts\":["
		"\"-----BEGIN CERTIFICATE-----\\nMAMCAQA=\\n-----END CERTIFICATE-----\\n\"]},"
		"\"remote_addrs\":[\"%%any\"],\"unique\":\"replace\",\"version\":\"2\"}}}",
		t[0].if_id, t[0].if_id);
		assert_string_equal(conn, want);
	}
	assert_string_equal(pools, "{\"" NAME "~pool1\":{\"" NAME "~pool1\":{\"addrs\":"
		"\"172.16.201.0/24\"}},\"" NAME "~pool2\":{\"" NAME "~pool2\":{\"addrs\":"
		"\"172.16.202.0/25\"}}}");
	assert_string_equal(keys, "{\"" NAME "\":{\"data\":\"KEY\\n\",\"type\":\"any\"}}");
	free(conn);
	free(pools);
	free(keys);
	swanctl_set_free(&set);
	free(t);
	config_free(cfg);
}

/* A private key others may read is refused before charon sees it. */
static void server_key_readable_by_others_is_refused(void **state)
{
	struct config *cfg = load_ok("{}");
	struct swanctl_set set;
	struct tunnel *t;
	size_t n;

	(void)state;
	chmod(key_path, 0644);
	assert_int_equal(tunnels_of_config(cfg, stderr, &t, &n), 0);
	assert_int_equal(swanctl_set_build(cfg, t, n, &set), -EPERM);
	chmod(key_path, 0600);
	free(t);
	config_free(cfg);
}

static void pool_is_in_the_virtual_network_tag(void **state)
{
	struct config *cfg = load_ok("{}");
	struct ip_prefix *prefixes;
	size_t n;
	bool found = false;

	(void)state;
	assert_int_equal(nsg_virtual_network_prefixes(cfg, 0, &prefixes, &n), 0);
	for (size_t i = 0; i < n; i++)
		found |= prefixes[i].family == AF_INET && prefixes[i].len == 24 &&
			 !memcmp(prefixes[i].addr, "\xac\x10\xc9\x00", 4);
	assert_true(found);
	free(prefixes);
	config_free(cfg);
}

/* ---- thumbprints ---- */

static void sha1_matches_the_standard_vectors(void **state)
{
	uint8_t d[SHA1_DIGEST_LEN];
	char text[2 * SHA1_DIGEST_LEN + 1];
	char million[1000];

	(void)state;
	sha1("abc", 3, d);
	thumbprint_text(d, text);
	assert_string_equal(text, "A9993E364706816ABA3E25717850C26C9CD0D89D");
	sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, d);
	thumbprint_text(d, text);
	assert_string_equal(text, "84983E441C3BD26EBAAE4AA1F95129E5E54670F1");
	sha1("", 0, d);
	thumbprint_text(d, text);
	assert_string_equal(text, "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709");
	memset(million, 'a', sizeof(million));
	sha1(million, sizeof(million), d);
	thumbprint_text(d, text);
	assert_string_equal(text, "291E9A6C66994949B57BA5E650361E98FC36B1BA");
}

static void der_becomes_pem_as_charon_reads_it(void **state)
{
	static const unsigned char der[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
	char *pem = swanctl_pem_certificate(der, sizeof(der));

	(void)state;
	assert_string_equal(pem, "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n");
	free(pem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pool_overlapping_a_vnet_or_site_is_refused),
		cmocka_unit_test(protocols_and_authentication_other_than_ikev2_certificates_are_refused),
		cmocka_unit_test(root_certificate_must_be_azures_base64_der),
		cmocka_unit_test(revoked_thumbprint_must_be_sha1_hex),
		cmocka_unit_test(valid_configuration_is_read),
		cmocka_unit_test(clients_tunnel_takes_any_peer_and_the_pool),
		cmocka_unit_test(charon_gets_a_responder_with_pools_and_certificates),
		cmocka_unit_test(server_key_readable_by_others_is_refused),
		cmocka_unit_test(pool_is_in_the_virtual_network_tag),
		cmocka_unit_test(sha1_matches_the_standard_vectors),
		cmocka_unit_test(der_becomes_pem_as_charon_reads_it),
	};

	return cmocka_run_group_tests(tests, files_make, files_remove);
}

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "lib/cli.h"
#include "datapath/gateway.h"
#include "lib/gateway_name.h"
#include "lib/lock.h"
#include "lib/log.h"
#include "datapath/state.h"
#include "lib/vici.h"
#include "observe/vpn_clients.h"

/* ---- SHA-1 (FIPS 180-4): Azure's thumbprints are SHA-1 of the DER certificate ---- */

static uint32_t rol(uint32_t x, int n)
{
	return x << n | x >> (32 - n);
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | p[4 * i + 1] << 16 | p[4 * i + 2] << 8 |
		       p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	for (int i = 0; i < 80; i++) {
		uint32_t f, k, t;

		if (i < 20)
			f = (b & c) | (~b & d), k = 0x5a827999;
		else if (i < 40)
			f = b ^ c ^ d, k = 0x6ed9eba1;
		else if (i < 60)
			f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
		else
			f = b ^ c ^ d, k = 0xca62c1d6;
		t = rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol(b, 30);
		b = a;
		a = t;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

void sha1(const void *data, size_t length, uint8_t digest[SHA1_DIGEST_LEN])
{
	uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
	const uint8_t *p = data;
	uint8_t tail[128] = { 0 };
	size_t full = length / 64 * 64, rest = length - full, n;
	uint64_t bits = (uint64_t)length * 8;

	for (size_t i = 0; i < full; i += 64)
		sha1_block(h, p + i);
	memcpy(tail, p + full, rest);
	tail[rest] = 0x80;
	n = rest < 56 ? 64 : 128;
	for (int i = 0; i < 8; i++)
		tail[n - 1 - i] = (uint8_t)(bits >> (8 * i));
	for (size_t i = 0; i < n; i += 64)
		sha1_block(h, tail + i);
	for (int i = 0; i < 5; i++)
		for (int k = 0; k < 4; k++)
			digest[4 * i + k] = (uint8_t)(h[i] >> (24 - 8 * k));
}

void thumbprint_text(const uint8_t digest[SHA1_DIGEST_LEN], char text[2 * SHA1_DIGEST_LEN + 1])
{
	for (int i = 0; i < SHA1_DIGEST_LEN; i++)
		sprintf(text + 2 * i, "%02X", digest[i]);
}

/* ---- charon's view ---- */

/* The state's point-to-site tunnels: charon name -> tunnel entry. */
static json_t *vpn_client_tunnels(json_t *state)
{
	json_t *out = json_object(), *it;
	size_t i;

	json_array_foreach(json_object_get(state, "tunnels"), i, it) {
		const char *name = json_string_value(json_object_get(it, "swanctl"));

		if (name && json_is_true(json_object_get(it, "pointToSite")))
			json_object_set(out, name, it);
	}
	return out;
}

struct client_search {
	json_t *tunnels, *clients;
	time_t now;
};

static json_int_t child_sum(json_t *sa, const char *key)
{
	json_int_t sum = 0;
	const char *name;
	json_t *child;

	json_object_foreach(json_object_get(sa, "child-sas"), name, child)
		sum += strtoll(json_string_value(json_object_get(child, key)) ?: "0", NULL, 10);
	return sum;
}

static int client_event(json_t *event, void *data)
{
	struct client_search *search = data;
	const char *name;
	json_t *sa;

	json_object_foreach(event, name, sa) {
		json_t *tunnel = json_object_get(search->tunnels, name);
		const char *established = json_string_value(json_object_get(sa, "established"));
		const char *vip = json_string_value(json_array_get(json_object_get(sa,
								   "remote-vips"), 0));

		if (!tunnel || !established)
			continue; /* not ours, or still authenticating */
		json_array_append_new(search->clients, json_pack(
			"{s:O, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s}",
			"gateway", json_object_get(tunnel, "name"),
			"identity", json_string_value(json_object_get(sa, "remote-id")) ?: "",
			"address", vip ?: "",
			"remoteHost", json_string_value(json_object_get(sa, "remote-host")) ?: "",
			"since", (json_int_t)(search->now - strtoll(established, NULL, 10)),
			"bytesIn", child_sum(sa, "bytes-in"), "bytesOut", child_sum(sa, "bytes-out"),
			"packetsIn", child_sum(sa, "packets-in"),
			"packetsOut", child_sum(sa, "packets-out"),
			"uniqueId", json_string_value(json_object_get(sa, "uniqueid")) ?: ""));
	}
	return 0;
}

static int by_gateway_and_address(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(json_string_value(json_object_get(x, "gateway")) ?: "",
		       json_string_value(json_object_get(y, "gateway")) ?: "");

	return c ? c : strcmp(json_string_value(json_object_get(x, "address")) ?: "",
			      json_string_value(json_object_get(y, "address")) ?: "");
}

static json_t *sorted(json_t *list)
{
	size_t n = json_array_size(list);
	json_t **items = calloc(n + 1, sizeof(*items)), *out = json_array();

	for (size_t i = 0; items && i < n; i++)
		items[i] = json_array_get(list, i);
	if (items)
		qsort(items, n, sizeof(*items), by_gateway_and_address);
	for (size_t i = 0; items && i < n; i++)
		json_array_append(out, items[i]);
	free(items);
	json_decref(list);
	return out;
}

json_t *vpn_clients_list(json_t *state)
{
	struct client_search search = { vpn_client_tunnels(state), json_array(), time(NULL) };
	struct vici v = { .fd = -1, .timeout_ms = 5000 };
	json_t *args = json_pack("{s:s}", "noblock", "yes"), *reply = NULL;
	int err = json_object_size(search.tunnels) ? vici_connect(&v, vici_socket_path()) : 0;

	if (!err && json_object_size(search.tunnels))
		err = vici_request_stream(&v, "list-sas", args, "list-sa", client_event, &search,
					  &reply);
	vici_close(&v);
	json_decref(args);
	json_decref(reply);
	json_decref(search.tunnels);
	if (err) {
		json_decref(search.clients);
		return NULL;
	}
	return sorted(search.clients);
}

/* ---- revoked certificates ---- */

struct cert_search {
	json_t *revoked; /* the tunnel's thumbprints */
	int found, revoked_found;
	char thumbprint[2 * SHA1_DIGEST_LEN + 1];
};

static int cert_event(json_t *event, void *data)
{
	struct cert_search *search = data;
	uint8_t der[16384], digest[SHA1_DIGEST_LEN];
	char text[2 * SHA1_DIGEST_LEN + 1];
	size_t length, i;
	json_t *it;

	if (vici_value_bytes(json_object_get(event, "data"), der, sizeof(der), &length))
		return 0;
	sha1(der, length, digest);
	thumbprint_text(digest, text);
	search->found++;
	json_array_foreach(search->revoked, i, it)
		if (!strcasecmp(json_string_value(it) ?: "", text)) {
			search->revoked_found++;
			memcpy(search->thumbprint, text, sizeof(text));
		}
	return 0;
}

/* charon's certificates whose subject (or subjectAltName) is the client's identity: the
 * one it verified is among them, in its cache of verified certificates. */
static int certificates_of(struct vici *v, const char *identity, struct cert_search *search)
{
	json_t *args = json_pack("{s:s, s:s}", "type", "X509", "subject", identity), *reply = NULL;
	int err = vici_request_stream(v, "list-certs", args, "list-cert", cert_event, search,
				      &reply);

	json_decref(args);
	json_decref(reply);
	return err;
}

static void terminate_client(struct vici *v, const char *unique_id)
{
	json_t *args = json_pack("{s:s, s:s, s:s}", "ike-id", unique_id, "force", "yes",
				 "timeout", "2000"), *reply = NULL;

	vici_request(v, "terminate", args, &reply);
	json_decref(args);
	json_decref(reply);
}

int vpn_clients_refuse_revoked(json_t *state, json_t *checked)
{
	json_t *clients = vpn_clients_list(state), *tunnels = vpn_client_tunnels(state), *client;
	struct vici v = { .fd = -1, .timeout_ms = 5000 };
	int refused = 0;
	size_t i;

	json_array_foreach(clients, i, client) {
		const char *id = json_string_value(json_object_get(client, "uniqueId"));
		const char *identity = json_string_value(json_object_get(client, "identity"));
		const char *gateway = json_string_value(json_object_get(client, "gateway"));
		json_t *tunnel = NULL, *it;
		struct cert_search search = { 0 };
		const char *name;

		if (!id || json_object_get(checked, id))
			continue;
		json_object_foreach(tunnels, name, it)
			if (json_equal(json_object_get(it, "name"), json_object_get(client, "gateway")))
				tunnel = it;
		search.revoked = json_object_get(tunnel, "revokedThumbprints");
		if (!json_array_size(search.revoked)) {
			json_object_set_new(checked, id, json_true());
			continue;
		}
		if (v.fd < 0 && vici_connect(&v, vici_socket_path()))
			break;
		if (certificates_of(&v, identity, &search))
			continue; /* charon did not answer: the next look tries again */
		if (search.found && !search.revoked_found) {
			json_object_set_new(checked, id, json_true());
			continue;
		}
		if (search.revoked_found)
			log_notice("point-to-site client %s of %s: its certificate %s is revoked: "
				   "disconnected", identity, gateway, search.thumbprint);
		else
			log_notice("point-to-site client %s of %s: its certificate cannot be found "
				   "to be checked against the revoked ones: disconnected", identity,
				   gateway);
		terminate_client(&v, id);
		refused++;
	}
	vici_close(&v);
	json_decref(clients);
	json_decref(tunnels);
	return refused;
}

/* ---- the command ---- */

static void clients_print(FILE *out, json_t *clients)
{
	json_t *c;
	size_t i;

	fprintf(out, "%-16s %-15s %-20s %-40s %12s %12s\n", "GATEWAY", "ADDRESS", "SINCE",
		"IDENTITY", "BYTES IN", "BYTES OUT");
	json_array_foreach(clients, i, c) {
		time_t since = (time_t)json_integer_value(json_object_get(c, "since"));
		char when[32];

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&since));
		fprintf(out, "%-16s %-15s %-20s %-40s %12lld %12lld\n",
			json_string_value(json_object_get(c, "gateway")),
			json_string_value(json_object_get(c, "address")), when,
			json_string_value(json_object_get(c, "identity")),
			(long long)json_integer_value(json_object_get(c, "bytesIn")),
			(long long)json_integer_value(json_object_get(c, "bytesOut")));
	}
	if (!json_array_size(clients))
		fprintf(out, "no point-to-site client is connected\n");
}

int clients_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL;
	char gateway[128];
	json_t *state, *clients, *checked;
	bool json = false;
	int err, c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:j", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'j': json = true; break;
		default:
			cli_option_error("clients", c, argv);
			cli_usage_hint("clients");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vnet-xdp clients: unexpected argument '%s'\n", argv[optind]);
		cli_usage_hint("clients");
		return 2;
	}
	if (gateway_name_check("clients", name))
		return 2;
	err = gateway_resolve_name(name, gateway, sizeof(gateway));
	if (err) {
		log_error(err == -EEXIST ? "several gateways are up; name one with -n"
					 : "no gateway is up");
		return 1;
	}
	state = state_load(gateway);
	if (!state) {
		log_error("gateway %s is not up", gateway);
		return 1;
	}
	/* A revoked client that serve has not seen yet is not listed as connected. */
	checked = json_object();
	vpn_clients_refuse_revoked(state, checked);
	json_decref(checked);
	clients = vpn_clients_list(state);
	json_decref(state);
	if (!clients) {
		log_error("cannot reach charon at %s", vici_socket_path());
		return 1;
	}
	if (json)
		cli_json_print(clients);
	else
		clients_print(stdout, clients);
	json_decref(clients);
	return fflush(stdout) ? 1 : 0;
}

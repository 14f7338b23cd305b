#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "datapath/maps.h"
#include "lib/bpf_map.h"
#include "lib/log.h"
#include "lib/vici.h"
#include "datapath/vpn_clients.h"
#include "vnet_xdp.h"

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
			"{s:O, s:s, s:s, s:s, s:I, s:s}",
			"gateway", json_object_get(tunnel, "name"),
			"identity", json_string_value(json_object_get(sa, "remote-id")) ?: "",
			"address", vip ?: "",
			"remoteHost", json_string_value(json_object_get(sa, "remote-host")) ?: "",
			"since", (json_int_t)(search->now - strtoll(established, NULL, 10)),
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

/* ---- the datapath's counters of each client ---- */

/* The tunnel id of the gateway's point-to-site tunnel named after the virtual network
 * gateway `name`; -1 when the state has none. */
static json_int_t client_tunnel_id(json_t *state, const char *name)
{
	json_t *it;
	size_t i;

	json_array_foreach(json_object_get(state, "tunnels"), i, it)
		if (json_is_true(json_object_get(it, "pointToSite")) &&
		    !strcmp(json_string_value(json_object_get(it, "name")) ?: "", name ?: ""))
			return json_integer_value(json_object_get(it, "id"));
	return -1;
}

/* The datapath's key of a listed client: its tunnel and virtual address. */
static int client_key(json_t *state, json_t *client, struct tunnel_client_key *key)
{
	const char *address = json_string_value(json_object_get(client, "address")) ?: "";
	json_int_t tunnel = client_tunnel_id(state,
					     json_string_value(json_object_get(client, "gateway")));

	memset(key, 0, sizeof(*key));
	if (tunnel < 0)
		return -1;
	key->tunnel = (uint32_t)tunnel;
	key->client.family = strchr(address, ':') ? AF_INET6 : AF_INET;
	return inet_pton((int)key->client.family, address, key->client.addr) == 1 ? 0 : -1;
}

int vpn_clients_count(const char *gateway, json_t *state, json_t *clients)
{
	int fd = datapath_map_open(gateway, MAP_tunnel_client_counters);
	json_t *client;
	size_t i;

	if (fd < 0)
		return fd;
	json_array_foreach(clients, i, client) {
		struct tunnel_client_counter sum = { 0 };
		struct tunnel_client_key key;

		/* No entry: nothing went either way since the address was handed out. */
		if (!client_key(state, client, &key))
			percpu_sum(fd, &key, &sum, sizeof(sum));
		json_object_set_new(client, "bytesIn", json_integer((json_int_t)sum.ingress_bytes));
		json_object_set_new(client, "bytesOut", json_integer((json_int_t)sum.egress_bytes));
		json_object_set_new(client, "packetsIn",
				    json_integer((json_int_t)sum.ingress_packets));
		json_object_set_new(client, "packetsOut",
				    json_integer((json_int_t)sum.egress_packets));
	}
	close(fd);
	return 0;
}

static int key_compare(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct tunnel_client_key));
}

/* The listed clients' keys, sorted to be searched (*n of them); NULL when out of memory. */
static struct tunnel_client_key *client_keys(json_t *state, json_t *clients, size_t *n)
{
	struct tunnel_client_key *keys = calloc(json_array_size(clients) + 1, sizeof(*keys));
	json_t *client;
	size_t i;

	*n = 0;
	json_array_foreach(clients, i, client)
		if (keys && !client_key(state, client, &keys[*n]))
			(*n)++;
	if (keys)
		qsort(keys, *n, sizeof(*keys), key_compare);
	return keys;
}

int vpn_clients_forget_gone(const char *gateway, json_t *state)
{
	struct tunnel_client_key *entries = NULL, *held = NULL, key;
	size_t n = 0, room = 0, n_held = 0, forgotten = 0;
	json_t *clients = NULL;
	struct map_walk walk;
	int fd = datapath_map_open(gateway, MAP_tunnel_client_counters);

	if (fd < 0)
		return fd;
	/* The keys first, then charon's clients: an entry made after charon answered is
	 * left for the next look, so a client that has just connected keeps its first
	 * packets' count. */
	walk = MAP_WALK(fd, sizeof(key));
	while (map_walk_next(&walk, &key)) {
		if (n == room) {
			struct tunnel_client_key *more = realloc(entries, (room = room * 2 + 64) *
								 sizeof(*entries));

			if (!more)
				break;
			entries = more;
		}
		entries[n++] = key;
	}
	if (n)
		clients = vpn_clients_list(state);
	if (clients)
		held = client_keys(state, clients, &n_held);
	for (size_t i = 0; held && i < n; i++)
		if (!bsearch(&entries[i], held, n_held, sizeof(*held), key_compare) &&
		    !bpf_map_delete_elem(fd, &entries[i]))
			forgotten++;
	json_decref(clients);
	free(held);
	free(entries);
	close(fd);
	return n && !held ? -EAGAIN : (int)forgotten;
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

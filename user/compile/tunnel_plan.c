/* The tunnels of a config: the connections this box terminates and the point-to-site
 * clients of its gateways, each with its xfrm interface's name and if_id. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <net/if.h>
#include "compile/tunnel_plan.h"

static bool gateway_is_local(const struct config *cfg, int g)
{
	return g != CONFIG_NONE && cfg->vnet_gateways[g].local_address.family != 0;
}

static bool same_pair(const struct tunnel *t, const struct ip_address *local,
		      const struct ip_address *peer)
{
	return !memcmp(&t->local, local, sizeof(*local)) && !memcmp(&t->peer, peer, sizeof(*peer));
}

/* This side (a local gateway) and the other of connection c; false when c is not ours. */
static bool connection_ends(const struct config *cfg, const struct config_connection *c,
			    int *this_side, int *other_gateway)
{
	*other_gateway = CONFIG_NONE;
	if (c->type == CONNECTION_EXPRESS_ROUTE)
		return false; /* no tunnel: BGP over a VLAN (datapath/bgp.c) */
	if (gateway_is_local(cfg, c->vnet_gateway1)) {
		*this_side = c->vnet_gateway1;
		*other_gateway = c->vnet_gateway2;
		return true;
	}
	/* A Vnet2Vnet connection written from the other side's point of view. */
	if (c->type == CONNECTION_VNET2VNET && gateway_is_local(cfg, c->vnet_gateway2)) {
		*this_side = c->vnet_gateway2;
		*other_gateway = c->vnet_gateway1;
		return true;
	}
	return false;
}

static int tunnel_fill(const struct config *cfg, const struct config_connection *c,
		       int this_side, int other, FILE *errors, struct tunnel *t)
{
	const struct config_vnet_gateway *gw = &cfg->vnet_gateways[this_side];

	t->name = c->name;
	t->connection = c;
	t->tcp_mss = cfg->tunnel_tcp_mss;
	t->vnet = (uint32_t)gw->vnet;
	t->local = gw->local_address;
	if (c->type == CONNECTION_IPSEC) {
		const struct config_local_network_gateway *lng =
			&cfg->local_network_gateways[c->local_network_gateway2];

		t->peer = lng->gateway_ip;
		t->remote_prefixes = lng->prefixes;
		t->n_remote_prefixes = lng->n_prefixes;
	} else {
		const struct config_vnet_gateway *o = &cfg->vnet_gateways[other];

		if (o->n_public_ips)
			t->peer = o->public_ips[0];
		t->remote_prefixes = cfg->vnets[o->vnet].prefixes;
		t->n_remote_prefixes = cfg->vnets[o->vnet].n_prefixes;
	}
	if (!t->peer.family) {
		fprintf(errors, "connection \"%s\": the other side has no address to reach; allowed: "
			"a localNetworkGateway gatewayIpAddress, or a publicIPAddress with ipAddress on "
			"the other virtual network gateway\n", c->name);
		return -EDESTADDRREQ;
	}
	if (t->peer.family != t->local.family) {
		fprintf(errors, "connection \"%s\": this side's address and the peer's are of "
			"different families; allowed: both IPv4 or both IPv6\n", c->name);
		return -EINVAL;
	}
	return 0;
}

/* FNV-1a: stable across builds and hosts, so a restarted gateway finds its interfaces. */
static uint32_t fnv1a32(uint32_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

void tunnel_name_interface(const char *gateway, const char *connection, struct tunnel *t)
{
	/* The '/' no gateway name holds keeps ("ab", "c") and ("a", "bc") apart. */
	uint32_t h = fnv1a32(fnv1a32(fnv1a32(2166136261u, gateway), "/"), connection);

	/* One number for both: an interface of our name with another if_id is not ours. */
	t->if_id = h ? h : 1;
	snprintf(t->ifname, sizeof(t->ifname), "vx%08x", t->if_id);
}

/* Two connections of one gateway whose names hash alike (one in 2^32): refused, not
 * merged into one interface. */
static int interface_name_taken(const struct tunnel *tunnels, size_t n, const struct tunnel *t,
				FILE *errors)
{
	for (size_t k = 0; k < n; k++)
		if (tunnels[k].if_id == t->if_id) {
			fprintf(errors, "connections \"%s\" and \"%s\" get the same xfrm interface "
				"(%s); allowed: rename one of them\n", tunnels[k].name, t->name,
				t->ifname);
			return -EEXIST;
		}
	return 0;
}

/* The point-to-site clients of local gateway g: one tunnel that any client address may
 * talk to (XDP keys it by the family's zero address), the pool its remote space. One
 * such gateway per family on a box: the datapath has one "any peer" per family. */
static int vpn_client_tunnel_add(const struct config *cfg, int g, FILE *errors,
				 struct tunnel *tunnels, size_t *n)
{
	const struct config_vnet_gateway *gw = &cfg->vnet_gateways[g];
	struct tunnel t = { 0 };
	char iface_key[300];

	for (size_t k = 0; k < *n; k++) {
		if (tunnels[k].vpn_client && tunnels[k].local.family == gw->local_address.family) {
			fprintf(errors, "virtual network gateways \"%s\" and \"%s\" both have "
				"point-to-site clients on this box's %s endpoints; allowed: one\n",
				tunnels[k].name, gw->name,
				gw->local_address.family == AF_INET ? "IPv4" : "IPv6");
			return -EEXIST;
		}
		if (!strcasecmp(tunnels[k].name, gw->name)) {
			fprintf(errors, "connection \"%s\" has the name of virtual network gateway "
				"\"%s\", whose point-to-site clients are named so in charon; allowed: "
				"rename one of them\n", tunnels[k].name, gw->name);
			return -EEXIST;
		}
	}
	if (*n == MAX_TUNNELS) {
		fprintf(errors, "more than %d connections on this gateway\n", MAX_TUNNELS);
		return -E2BIG;
	}
	t.name = gw->name;
	t.vpn_client = gw->vpn_client;
	t.connection = &gw->vpn_client->connection;
	t.tcp_mss = cfg->tunnel_tcp_mss;
	t.vnet = (uint32_t)gw->vnet;
	t.local = gw->local_address;
	t.remote_prefixes = gw->vpn_client->pool;
	t.n_remote_prefixes = gw->vpn_client->n_pool;
	t.id = (uint32_t)*n;
	/* ':' is in no connection name: the clients' interface is apart from any tunnel's */
	snprintf(iface_key, sizeof(iface_key), "p2s:%s", gw->name);
	tunnel_name_interface(cfg->gateway_name, iface_key, &t);
	if (interface_name_taken(tunnels, *n, &t, errors))
		return -EEXIST;
	tunnels[(*n)++] = t;
	return 0;
}

int tunnels_of_config(const struct config *cfg, FILE *errors, struct tunnel **out, size_t *count)
{
	struct tunnel *tunnels = calloc(cfg->n_connections + cfg->n_vnet_gateways + 1,
					sizeof(*tunnels));
	size_t n = 0;
	int err = 0;

	if (!tunnels)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_connections; i++) {
		const struct config_connection *c = &cfg->connections[i];
		struct tunnel t = { 0 };
		int this_side, other, rc;
		bool duplicate = false;

		if (!connection_ends(cfg, c, &this_side, &other))
			continue;
		rc = tunnel_fill(cfg, c, this_side, other, errors, &t);
		if (rc) {
			err = err ? err : rc;
			continue;
		}
		/* Azure models a Vnet2Vnet link as two connections, one per direction: both in
		 * one config make one tunnel. */
		for (size_t k = 0; k < n; k++)
			duplicate |= same_pair(&tunnels[k], &t.local, &t.peer);
		if (duplicate)
			continue;
		if (n == MAX_TUNNELS) {
			fprintf(errors, "more than %d connections on this gateway\n", MAX_TUNNELS);
			err = -E2BIG;
			break;
		}
		t.id = (uint32_t)n;
		tunnel_name_interface(cfg->gateway_name, c->name, &t);
		rc = interface_name_taken(tunnels, n, &t, errors);
		if (rc) {
			err = rc;
			break;
		}
		tunnels[n++] = t;
	}
	for (size_t g = 0; !err && g < cfg->n_vnet_gateways; g++)
		if (gateway_is_local(cfg, (int)g) && cfg->vnet_gateways[g].vpn_client)
			err = vpn_client_tunnel_add(cfg, (int)g, errors, tunnels, &n);
	if (err) {
		free(tunnels);
		return err;
	}
	*out = tunnels;
	*count = n;
	return 0;
}

void tunnels_resolve_ifindexes(struct tunnel *tunnels, size_t count)
{
	for (size_t i = 0; i < count; i++)
		tunnels[i].ifindex = if_nametoindex(tunnels[i].ifname);
}

/* ---- the MTU inside the tunnel -------------------------------------------------------- */

struct esp_transform {
	const char *encryption, *integrity; /* Azure's names */
};

/* Azure's default ESP offers (AZURE_DEFAULT_ESP_PROPOSALS): the peer picks one, so the
 * MTU must leave room for the largest. */
static const struct esp_transform azure_default_esp[] = {
	{ "GCMAES256", "GCMAES256" }, { "AES256", "SHA1" }, { "DES3", "SHA1" },
	{ "AES256", "SHA256" }, { "AES128", "SHA1" }, { "DES3", "SHA256" },
};

/* Per cipher: IV bytes, the block the encrypted part is padded to, the ICV of an AEAD. */
static const struct { const char *azure; unsigned iv, block, icv; } esp_ciphers[] = {
	{ "None", 0, 4, 0 }, { "DES", 8, 8, 0 }, { "DES3", 8, 8, 0 }, { "AES128", 16, 16, 0 },
	{ "AES192", 16, 16, 0 }, { "AES256", 16, 16, 0 }, { "GCMAES128", 8, 4, 16 },
	{ "GCMAES192", 8, 4, 16 }, { "GCMAES256", 8, 4, 16 },
};
/* HMACs truncated as ESP sends them (RFC 2403, 2404, 4868). */
static const struct { const char *azure; unsigned icv; } esp_integrities[] = {
	{ "MD5", 12 }, { "SHA1", 12 }, { "SHA256", 16 },
	{ "GCMAES128", 0 }, { "GCMAES192", 0 }, { "GCMAES256", 0 },
};

/* The largest inner packet one ESP packet of this transform carries within `room`
 * bytes (the underlay's MTU less the outer IP and UDP headers); the most conservative
 * figure for names not known. */
static unsigned esp_payload_max(const struct esp_transform *x, unsigned room)
{
	unsigned iv = 16, block = 16, icv = 16, fixed;
	size_t i;

	for (i = 0; i < sizeof(esp_ciphers) / sizeof(*esp_ciphers); i++)
		if (x->encryption && !strcmp(esp_ciphers[i].azure, x->encryption)) {
			iv = esp_ciphers[i].iv;
			block = esp_ciphers[i].block;
			icv = esp_ciphers[i].icv;
		}
	for (i = 0; i < sizeof(esp_integrities) / sizeof(*esp_integrities); i++)
		if (x->integrity && !strcmp(esp_integrities[i].azure, x->integrity))
			icv = icv > esp_integrities[i].icv ? icv : esp_integrities[i].icv;
	/* SPI and sequence number, IV, ICV; the encrypted part (payload, padding, pad
	 * length and next header bytes) a whole number of blocks. */
	fixed = 8 + iv + icv;
	if (room < fixed + block)
		return 0;
	return (room - fixed) / block * block - 2;
}

unsigned tunnel_inner_mtu(const struct config_connection *c, int outer_family,
			  unsigned underlay_mtu)
{
	/* UDP encapsulation always counted: whether NAT-T is used is known only after IKE,
	 * and the interface exists before. */
	unsigned outer = (outer_family == AF_INET6 ? 40 : 20) + 8, best = ~0u;
	unsigned room = underlay_mtu > outer ? underlay_mtu - outer : 0;
	size_t i;

	if (c && c->n_ipsec_policies) {
		struct esp_transform x = { c->ipsec_policies[0].ipsec_encryption,
					   c->ipsec_policies[0].ipsec_integrity };

		return esp_payload_max(&x, room);
	}
	for (i = 0; i < sizeof(azure_default_esp) / sizeof(*azure_default_esp); i++) {
		unsigned mtu = esp_payload_max(&azure_default_esp[i], room);

		best = mtu < best ? mtu : best;
	}
	return best;
}

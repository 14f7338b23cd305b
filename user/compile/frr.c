/* frr.conf for an ExpressRoute private peering. Azure's model: the /30's first usable
 * address is the provider's, the second Microsoft's (here the gateway's); the gateway
 * speaks eBGP from its VNet gateway's ASN (65515 unless bgpSettings.asn says otherwise)
 * to the circuit's peerASN and advertises its VNet's address spaces and those of the
 * spokes that use its gateway. bgpd runs without zebra, so nothing it learns reaches a
 * kernel table; what it learns is read over vtysh (datapath/bgp.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "compile/frr.h"

/* Whether spoke reaches the circuit through hub's gateway (Azure's gateway transit). */
static bool uses_gateway_of(const struct config *cfg, int spoke, int hub)
{
	const struct config_peering *out = config_peering_to(cfg, spoke, hub);
	const struct config_peering *back = config_peering_to(cfg, hub, spoke);

	return out && back && out->connected && out->use_remote_gateways &&
	       back->allow_gateway_transit;
}

static int advertise(struct bgp_link *link, const struct config_vnet *v)
{
	for (size_t p = 0; p < v->n_prefixes; p++) {
		struct ip_prefix *grown;

		if (v->prefixes[p].family != AF_INET)
			continue; /* the peering carries IPv4 unicast only */
		grown = realloc(link->advertised, (link->n_advertised + 1) * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		link->advertised = grown;
		grown[link->n_advertised++] = v->prefixes[p];
	}
	return 0;
}

int bgp_link_of(const struct config *cfg, size_t binding, struct bgp_link *out)
{
	const struct config_express_route_binding *b = &cfg->express_route_bindings[binding];
	const struct config_connection *c = &cfg->connections[b->connection];
	const struct config_express_route_circuit *circuit;
	const struct config_vnet_gateway *gw;
	const struct ip_prefix *p;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (c->express_route_circuit == CONFIG_NONE || c->vnet_gateway1 == CONFIG_NONE)
		return -EINVAL;
	circuit = &cfg->express_route_circuits[c->express_route_circuit];
	gw = &cfg->vnet_gateways[c->vnet_gateway1];
	p = b->link == EXPRESS_ROUTE_SECONDARY ? &circuit->secondary : &circuit->primary;
	if (!circuit->has_private_peering || p->family != AF_INET || p->len != 30)
		return -EINVAL;
	out->connection = c->name;
	out->interface = b->interface;
	out->link = b->link;
	out->vlan_id = circuit->vlan_id;
	out->local_asn = gw->bgp_asn;
	out->peer_asn = circuit->peer_asn;
	out->hold_time_seconds = b->hold_time_seconds;
	out->prefix_len = p->len;
	memcpy(out->peer, p->addr, 4);
	memcpy(out->local, p->addr, 4);
	out->peer[3] += 1;  /* the /30's first usable address: the provider's */
	out->local[3] += 2; /* the second: Microsoft's, the gateway's */
	if (gw->vnet == CONFIG_NONE)
		return 0;
	err = advertise(out, &cfg->vnets[gw->vnet]);
	for (size_t v = 0; !err && v < cfg->n_vnets; v++)
		if ((int)v != gw->vnet && uses_gateway_of(cfg, (int)v, gw->vnet))
			err = advertise(out, &cfg->vnets[v]);
	if (err)
		bgp_link_release(out);
	return err;
}

void bgp_link_release(struct bgp_link *link)
{
	free(link->advertised);
	link->advertised = NULL;
	link->n_advertised = 0;
}

char *frr_conf_build(const struct bgp_link *link)
{
	char local[INET_ADDRSTRLEN], peer[INET_ADDRSTRLEN];
	unsigned keepalive = link->hold_time_seconds / 3;
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return NULL;
	inet_ntop(AF_INET, link->local, local, sizeof(local));
	inet_ntop(AF_INET, link->peer, peer, sizeof(peer));
	fprintf(f, "! vnet-xdp: ExpressRoute connection %s, %s link on %s (VLAN %u)\n"
		"frr defaults traditional\n"
		"hostname vnet-xdp\n"
		"log stdout warnings\n"
		"!\n"
		"router bgp %u\n"
		" bgp router-id %s\n"
		" no bgp ebgp-requires-policy\n"
		" no bgp default ipv4-unicast\n"
		" no bgp network import-check\n"
		" neighbor %s remote-as %u\n"
		" neighbor %s description %s\n"
		" neighbor %s update-source %s\n"
		" neighbor %s disable-connected-check\n"
		" neighbor %s timers %u %u\n"
		" neighbor %s timers connect 5\n"
		" !\n"
		" address-family ipv4 unicast\n",
		link->connection, express_route_link_name(link->link), link->interface,
		link->vlan_id, link->local_asn, local, peer, link->peer_asn, peer,
		link->connection, peer, local, peer, peer, keepalive ? keepalive : 1,
		link->hold_time_seconds, peer);
	for (size_t i = 0; i < link->n_advertised; i++) {
		char addr[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, link->advertised[i].addr, addr, sizeof(addr));
		fprintf(f, "  network %s/%u\n", addr, link->advertised[i].len);
	}
	fprintf(f, "  neighbor %s activate\n"
		" exit-address-family\n"
		"exit\n"
		"!\n"
		"end\n", peer);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

/* ExpressRoute-style private peering: expressRouteCircuits resources (their
 * AzurePrivatePeering), and gateway.expressRouteConnections, which binds an ExpressRoute
 * connection to the VLAN device that faces the provider. The BGP session itself is
 * user/compile/frr.c (its frr.conf) and user/datapath/bgp.c (bgpd's life cycle). */
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/internal.h"

/* Azure keeps these for itself: a peer may not use them. */
static bool asn_reserved_by_azure(long long asn)
{
	return asn >= 65515 && asn <= 65520;
}

/* A /30 whose .1 (the provider's) and .2 (Microsoft's, here ours) are usable. */
static void read_peer_prefix(struct loader *l, struct node n, struct ip_prefix *out,
			     bool required)
{
	if (!n.value || json_is_null(n.value)) {
		if (required)
			reader_problem(&l->r, n.path, "missing; allowed: an IPv4 /30 (its first "
				       "address the provider's, its second the gateway's)");
		return;
	}
	if (!read_prefix(l, n, out))
		return;
	if (out->family != AF_INET || out->len != 30)
		reader_problem(&l->r, n.path, "not an IPv4 /30; allowed: an IPv4 /30 (its first "
			       "address the provider's, its second the gateway's)");
}

static void read_private_peering(struct loader *l, struct config_express_route_circuit *c,
				 struct node props)
{
	long long asn = 0, vlan = 0;
	struct node n;

	c->has_private_peering = true;
	n = node_child(&l->r, props, "peerASN");
	if (!n.value)
		reader_problem(&l->r, n.path, "missing; allowed: the provider's ASN, 1-4294967295");
	else if (get_int(&l->r, n, 1, 4294967295LL, &asn) && asn_reserved_by_azure(asn))
		reader_problem(&l->r, n.path, "%lld is reserved by Azure; allowed: 1-4294967295 "
			       "except 65515-65520", asn);
	c->peer_asn = (uint32_t)asn;
	read_peer_prefix(l, node_child(&l->r, props, "primaryPeerAddressPrefix"), &c->primary,
			 true);
	read_peer_prefix(l, node_child(&l->r, props, "secondaryPeerAddressPrefix"),
			 &c->secondary, false);
	n = node_child(&l->r, props, "vlanId");
	if (!n.value)
		reader_problem(&l->r, n.path, "missing; allowed: the 802.1Q VLAN id, 1-4094");
	else
		get_int(&l->r, n, 1, 4094, &vlan);
	c->vlan_id = (uint16_t)vlan;
}

void build_express_route_circuits(struct loader *l)
{
	struct config *cfg = l->cfg;
	size_t count = 0;

	for (size_t i = 0; i < l->n_records; i++)
		count += l->records[i].kind == KIND_EXPRESS_ROUTE_CIRCUIT;
	cfg->express_route_circuits = calloc(count + 1, sizeof(*cfg->express_route_circuits));
	if (!cfg->express_route_circuits)
		return;
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct node peerings = node_child(&l->r, rec->props, "peerings");
		struct config_express_route_circuit *c;

		if (rec->kind != KIND_EXPRESS_ROUTE_CIRCUIT || record_is_duplicate(l, i))
			continue;
		c = &cfg->express_route_circuits[cfg->n_express_route_circuits++];
		c->name = copy_string(rec->name);
		if (!peerings.value || !is_array_or_report(&l->r, peerings))
			continue;
		for (size_t k = 0; k < json_array_size(peerings.value); k++) {
			struct node p = node_properties(&l->r, node_element(&l->r, peerings, k));
			struct node type = node_child(&l->r, p, "peeringType");
			const char *text = NULL;

			if (!type.value || !get_string(&l->r, type, &text) ||
			    strcasecmp(text, "AzurePrivatePeering"))
				continue; /* Microsoft peering: not this gateway's business */
			if (c->has_private_peering) {
				reader_problem(&l->r, type.path, "a second AzurePrivatePeering; "
					       "allowed: one per circuit");
				continue;
			}
			read_private_peering(l, c, p);
		}
	}
}

/* ---- gateway.expressRouteConnections ---------------------------------------------------- */

static const char *const link_names[] = { [EXPRESS_ROUTE_PRIMARY] = "Primary",
					  [EXPRESS_ROUTE_SECONDARY] = "Secondary" };

static bool known_key(const char *key)
{
	static const char *const keys[] = { "name", "interface", "link", "holdTimeSeconds" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(key, keys[i]))
			return true;
	return false;
}

static int express_route_connection(struct loader *l, struct node n)
{
	struct config *cfg = l->cfg;
	const char *name = NULL;
	int index;

	if (!n.value) {
		reader_problem(&l->r, n.path, "missing; allowed: the name of a connection of "
			       "connectionType ExpressRoute");
		return CONFIG_NONE;
	}
	if (!get_string(&l->r, n, &name))
		return CONFIG_NONE;
	index = find_named(cfg->connections, cfg->n_connections, sizeof(*cfg->connections), name);
	if (index == CONFIG_NONE)
		reader_problem(&l->r, n.path, "no connection \"%s\"; allowed: the name of a "
			       "connection of connectionType ExpressRoute", reader_shown(&l->r, name));
	else if (cfg->connections[index].type != CONNECTION_EXPRESS_ROUTE) {
		reader_problem(&l->r, n.path, "connection \"%s\" is not of connectionType "
			       "ExpressRoute; allowed: an ExpressRoute connection", name);
		index = CONFIG_NONE;
	}
	return index;
}

/* The connection's circuit has what the link needs: a private peering with this link's
 * /30, and an ASN that is not the gateway's own. */
static void check_binding(struct loader *l, struct node n,
			  const struct config_express_route_binding *b)
{
	const struct config *cfg = l->cfg;
	const struct config_connection *c = &cfg->connections[b->connection];
	const struct config_express_route_circuit *circuit;

	if (c->express_route_circuit == CONFIG_NONE)
		return; /* reported at the connection */
	circuit = &cfg->express_route_circuits[c->express_route_circuit];
	if (!circuit->has_private_peering) {
		reader_problem(&l->r, n.path, "connection \"%s\": circuit \"%s\" has no private "
			       "peering; allowed: a circuit whose peerings[] has one of peeringType "
			       "AzurePrivatePeering", c->name, circuit->name);
		return;
	}
	if (b->link == EXPRESS_ROUTE_SECONDARY && !circuit->secondary.family)
		reader_problem(&l->r, path_key(&l->r, n.path, "link"), "circuit \"%s\" has no "
			       "secondaryPeerAddressPrefix; allowed: Primary, or a circuit with "
			       "both /30s", circuit->name);
	if (c->vnet_gateway1 != CONFIG_NONE && circuit->peer_asn &&
	    circuit->peer_asn == cfg->vnet_gateways[c->vnet_gateway1].bgp_asn)
		reader_problem(&l->r, n.path, "circuit \"%s\": peerASN %u is the gateway's own "
			       "ASN; allowed: the provider's ASN, another than the gateway's",
			       circuit->name, circuit->peer_asn);
}

void read_express_route_bindings(struct loader *l, struct node list)
{
	struct config *cfg = l->cfg;

	if (!list.value || !is_array_or_report(&l->r, list))
		return;
	cfg->express_route_bindings = calloc(json_array_size(list.value) + 1,
					     sizeof(*cfg->express_route_bindings));
	if (!cfg->express_route_bindings)
		return;
	for (size_t i = 0; i < json_array_size(list.value); i++) {
		struct node n = node_element(&l->r, list, i), iface, link;
		struct config_express_route_binding b = { .connection = CONFIG_NONE,
							  .hold_time_seconds = 180 };
		long long hold = 180;
		const char *text = NULL, *key;
		json_t *value;
		int index = 0;

		if (!is_object_or_report(&l->r, n))
			continue;
		json_object_foreach(n.value, key, value)
			if (!known_key(key))
				reader_problem(&l->r, path_key(&l->r, n.path, key), "unknown key; "
					       "allowed: name, interface, link, holdTimeSeconds");
		b.connection = express_route_connection(l, node_child(&l->r, n, "name"));
		iface = node_child(&l->r, n, "interface");
		if (!iface.value)
			reader_problem(&l->r, iface.path, "missing; allowed: the 802.1Q VLAN "
				       "device that faces the provider (such as eth1.100)");
		else if (get_string(&l->r, iface, &text)) {
			if (!*text || strlen(text) >= IFNAMSIZ || strpbrk(text, "/: \t\n"))
				reader_problem(&l->r, iface.path, "not an interface name; allowed: "
					       "a Linux interface name, shorter than %d", IFNAMSIZ);
			else
				b.interface = copy_string(text);
		}
		link = node_child(&l->r, n, "link");
		if (link.value && read_enum(l, link, link_names, 2, &index))
			b.link = (enum express_route_link)index;
		get_int(&l->r, node_child(&l->r, n, "holdTimeSeconds"), 3, 65535, &hold);
		b.hold_time_seconds = (uint16_t)hold;
		if (b.connection == CONFIG_NONE || !b.interface) {
			free(b.interface);
			continue;
		}
		for (size_t k = 0; k < cfg->n_express_route_bindings; k++) {
			const struct config_express_route_binding *o = &cfg->express_route_bindings[k];

			if (o->connection == b.connection && o->link == b.link)
				reader_problem(&l->r, n.path, "connection \"%s\" has its %s link "
					       "bound twice; allowed: one interface per link",
					       cfg->connections[b.connection].name, link_names[b.link]);
			else if (!strcmp(o->interface, b.interface))
				reader_problem(&l->r, iface.path, "interface \"%s\" is bound to two "
					       "links; allowed: one link per interface", b.interface);
		}
		for (size_t k = 0; k < cfg->n_ifaces; k++)
			if (cfg->ifaces[k].name && !strcmp(cfg->ifaces[k].name, b.interface))
				reader_problem(&l->r, iface.path, "interface \"%s\" is also in "
					       "gateway.interfaces; allowed: a device of its own facing "
					       "the provider", b.interface);
		check_binding(l, n, &b);
		cfg->express_route_bindings[cfg->n_express_route_bindings++] = b;
	}
}

const char *express_route_link_name(enum express_route_link link)
{
	return link_names[link == EXPRESS_ROUTE_SECONDARY];
}

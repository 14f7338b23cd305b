#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "log.h"
#include "plan.h"

/* Azure's system routes with next hop None: reserved ranges a VNet does not reach
 * unless its own address space or a peering covers them (a longer or equal prefix). */
static const char *const none_route_prefixes[] = {
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
};

void lpm_key_from_prefix(struct lpm_key *key, uint32_t scope, const struct ip_prefix *prefix)
{
	memset(key, 0, sizeof(*key));
	key->prefixlen = LPM_SCOPE_BITS + prefix->len;
	key->scope = scope;
	key->family = prefix->family;
	memcpy(key->addr, prefix->addr, prefix->family == AF_INET ? 4 : 16);
}

const char *route_type_name(uint32_t type)
{
	switch (type) {
	case ROUTE_VNET_LOCAL: return "VnetLocal";
	case ROUTE_VNET_PEERING: return "VNetPeering";
	case ROUTE_NONE: return "None";
	case ROUTE_TUNNEL: return "VirtualNetworkGateway";
	case ROUTE_INTERNET: return "Internet";
	default: return "Unknown";
	}
}

static void *grow(void *array, size_t count, size_t size)
{
	/* Doubling at powers of two keeps appends amortised O(1) without a capacity field. */
	if (count < 4 ? count != 0 : (count & (count - 1)) != 0)
		return array;
	return realloc(array, (count ? count * 2 : 4) * size);
}

static bool route_exists(const struct plan *plan, const struct lpm_key *key)
{
	for (size_t i = 0; i < plan->n_routes; i++)
		if (!memcmp(&plan->routes[i].key, key, sizeof(*key)))
			return true;
	return false;
}

static int route_add(struct plan *plan, uint32_t src_vnet, const struct ip_prefix *prefix,
		     const struct route_info *info)
{
	struct plan_route route = { .info = *info, .prefix = *prefix, .src_vnet = src_vnet };
	void *bigger;

	lpm_key_from_prefix(&route.key, src_vnet, prefix);
	if (route_exists(plan, &route.key))
		return 0; /* an earlier, more specific source of the same prefix wins */
	bigger = grow(plan->routes, plan->n_routes, sizeof(route));
	if (!bigger)
		return -ENOMEM;
	plan->routes = bigger;
	plan->routes[plan->n_routes++] = route;
	return 0;
}

static int source_prefix_add(struct plan *plan, uint32_t ifindex, uint32_t vnet,
			     const struct ip_prefix *prefix)
{
	struct plan_prefix_entry entry = { .vnet = vnet };
	void *bigger;

	lpm_key_from_prefix(&entry.key, ifindex, prefix);
	bigger = grow(plan->source_prefixes, plan->n_source_prefixes, sizeof(entry));
	if (!bigger)
		return -ENOMEM;
	plan->source_prefixes = bigger;
	plan->source_prefixes[plan->n_source_prefixes++] = entry;
	return 0;
}

/* The prefixes an interface binding faces: the whole VNet or one subnet of it. */
static void binding_prefixes(const struct config *cfg, const struct config_gateway_iface *iface,
			     const struct ip_prefix **prefixes, size_t *count)
{
	const struct config_vnet *vnet = &cfg->vnets[iface->vnet];

	if (iface->subnet == CONFIG_NONE) {
		*prefixes = vnet->prefixes;
		*count = vnet->n_prefixes;
	} else {
		*prefixes = vnet->subnets[iface->subnet].prefixes;
		*count = vnet->subnets[iface->subnet].n_prefixes;
	}
}

/* Routes from src_vnet to every prefix of dst_vnet that an interface here faces. */
static int routes_to_vnet(struct plan *plan, const struct config *cfg, const uint32_t *ifindexes,
			  uint32_t src_vnet, uint32_t dst_vnet, uint32_t type, uint32_t peering)
{
	for (size_t i = 0; i < cfg->n_ifaces; i++) {
		const struct config_gateway_iface *iface = &cfg->ifaces[i];
		const struct ip_prefix *prefixes;
		size_t count;

		if (iface->role != IFACE_VNET || iface->vnet != (int)dst_vnet)
			continue;
		binding_prefixes(cfg, iface, &prefixes, &count);
		for (size_t p = 0; p < count; p++) {
			struct route_info info = {
				.type = type, .egress_ifindex = ifindexes[i],
				.peering = peering, .dst_vnet = dst_vnet,
			};
			int err = route_add(plan, src_vnet, &prefixes[p], &info);

			if (err)
				return err;
		}
	}
	return 0;
}

static bool vnet_is_bound(const struct config *cfg, int vnet)
{
	for (size_t i = 0; i < cfg->n_ifaces; i++)
		if (cfg->ifaces[i].role == IFACE_VNET && cfg->ifaces[i].vnet == vnet)
			return true;
	return false;
}

static int peering_add(struct plan *plan, const struct config *cfg, uint32_t vnet,
		       const struct config_peering *peering, uint32_t *index)
{
	void *bigger = grow(plan->peerings, plan->n_peerings, sizeof(*plan->peerings));

	if (!bigger)
		return -ENOMEM;
	if (plan->n_peerings >= MAX_PEERINGS)
		return -E2BIG;
	plan->peerings = bigger;
	*index = plan->n_peerings;
	plan->peerings[plan->n_peerings++] = (struct plan_peering){
		.vnet = vnet, .remote_vnet = peering->remote_vnet,
		.vnet_name = cfg->vnets[vnet].name,
		.remote_vnet_name = cfg->vnets[peering->remote_vnet].name,
		.peering_name = peering->name,
	};
	return 0;
}

/* ---- tunnels: routes of VirtualNetworkGateway type, gateway transit ---- */

static const struct config_peering *peering_to(const struct config *cfg, int from, int to)
{
	const struct config_vnet *v = &cfg->vnets[from];

	for (size_t p = 0; p < v->n_peerings; p++)
		if (v->peerings[p].remote_vnet == to)
			return &v->peerings[p];
	return NULL;
}

/* Whether spoke reaches on-premises through hub's gateway: its peering uses the remote
 * gateways and the hub's peering back allows gateway transit. */
static bool uses_gateway_of(const struct config *cfg, int spoke, int hub)
{
	const struct config_peering *out = peering_to(cfg, spoke, hub);
	const struct config_peering *back = peering_to(cfg, hub, spoke);

	return out && back && out->connected && out->use_remote_gateways &&
	       back->allow_gateway_transit;
}

/* The remote spaces of every tunnel terminating in gateway_vnet, as routes of vnet. */
static int tunnel_routes_of(struct plan *plan, uint32_t vnet, uint32_t gateway_vnet)
{
	for (size_t t = 0; t < plan->n_tunnels; t++) {
		const struct tunnel *tunnel = &plan->tunnels[t];

		if (tunnel->vnet != gateway_vnet)
			continue;
		for (size_t p = 0; p < tunnel->n_remote_prefixes; p++) {
			struct route_info info = {
				.type = ROUTE_TUNNEL, .egress_ifindex = tunnel->ifindex,
				.peering = tunnel->id, .dst_vnet = gateway_vnet,
			};
			int err = route_add(plan, vnet, &tunnel->remote_prefixes[p], &info);

			if (err)
				return err;
		}
	}
	return 0;
}

/* A VNet's routes to on-premises: its own gateway's tunnels, or those of the hub whose
 * gateway it uses. */
static int tunnel_routes_of_vnet(struct plan *plan, const struct config *cfg, uint32_t vnet)
{
	const struct config_vnet *v = &cfg->vnets[vnet];
	int err = tunnel_routes_of(plan, vnet, vnet);

	for (size_t p = 0; !err && p < v->n_peerings; p++)
		if (v->peerings[p].remote_vnet != CONFIG_NONE &&
		    uses_gateway_of(cfg, (int)vnet, v->peerings[p].remote_vnet))
			err = tunnel_routes_of(plan, vnet, (uint32_t)v->peerings[p].remote_vnet);
	return err;
}

static int peering_slot(const struct plan *plan, uint32_t vnet, uint32_t remote, uint32_t *slot)
{
	for (size_t i = 0; i < plan->n_peerings; i++)
		if (plan->peerings[i].vnet == vnet && plan->peerings[i].remote_vnet == remote) {
			*slot = (uint32_t)i;
			return 0;
		}
	return -ENOENT;
}

/* What a decrypted packet of the tunnel may reach: the gateway's VNet and the spokes
 * that use its gateway (gateway transit), in the tunnel's own scope; and the sources it
 * may come from: the connection's remote address spaces. */
static int tunnel_ingress_plan(struct plan *plan, const struct config *cfg,
			       const uint32_t *ifindexes, const struct tunnel *t)
{
	uint32_t scope = TUNNEL_ROUTE_SCOPE | t->id;
	int err = routes_to_vnet(plan, cfg, ifindexes, scope, t->vnet, ROUTE_VNET_LOCAL, 0);

	for (size_t s = 0; !err && s < cfg->n_vnets; s++) {
		uint32_t slot;

		if (s == t->vnet || !vnet_is_bound(cfg, (int)s) ||
		    !uses_gateway_of(cfg, (int)s, (int)t->vnet) ||
		    peering_slot(plan, t->vnet, (uint32_t)s, &slot))
			continue;
		err = routes_to_vnet(plan, cfg, ifindexes, scope, (uint32_t)s, ROUTE_VNET_PEERING,
				     slot);
	}
	for (size_t p = 0; !err && t->ifindex && p < t->n_remote_prefixes; p++)
		err = source_prefix_add(plan, t->ifindex, t->vnet, &t->remote_prefixes[p]);
	return err;
}

static int tunnels_plan(struct plan *plan, const struct config *cfg)
{
	char *text = NULL;
	size_t size = 0;
	FILE *errors = open_memstream(&text, &size);
	int err;

	if (!errors)
		return -ENOMEM;
	err = tunnels_of_config(cfg, errors, &plan->tunnels, &plan->n_tunnels);
	fclose(errors);
	for (char *line = text, *end; line && *line; line = end + 1) {
		end = strchrnul(line, '\n');
		log_error("%s: %.*s", cfg->path ? cfg->path : "config", (int)(end - line), line);
		if (!*end)
			break;
	}
	free(text);
	if (!err)
		tunnels_resolve_ifindexes(plan->tunnels, plan->n_tunnels);
	return err;
}

static int uplink_ifindex(const struct config *cfg, const uint32_t *ifindexes, uint32_t *out)
{
	for (size_t i = 0; i < cfg->n_ifaces; i++)
		if (cfg->ifaces[i].role == IFACE_UPLINK) {
			*out = ifindexes[i];
			return 0;
		}
	return -ENOENT;
}

/* Routes with next hop Internet: the user's (UDRs in the route tables of the VNet's
 * subnets; a longest match picks them) and Azure's system default routes, 0.0.0.0/0 and,
 * when the gateway does NAT66, ::/0. They leave by the uplink, translated by SNAT. A
 * gateway without an uplink has none: such traffic finds no route. */
static int internet_routes(struct plan *plan, const struct config *cfg, const uint32_t *ifindexes,
			   uint32_t vnet, bool user_defined)
{
	/* dst_vnet: the VNet whose route it is, as `routes` and `verify` show it; the
	 * datapath takes a destination VNet only from VnetLocal and peering routes. */
	struct route_info info = { .type = ROUTE_INTERNET, .dst_vnet = vnet };
	const struct config_vnet *v = &cfg->vnets[vnet];
	struct ip_prefix prefix;
	int err = 0;

	if (uplink_ifindex(cfg, ifindexes, &info.egress_ifindex))
		return 0;
	if (user_defined) {
		for (size_t s = 0; !err && s < v->n_subnets; s++) {
			const struct config_route_table *table;

			if (v->subnets[s].route_table == CONFIG_NONE)
				continue;
			table = &cfg->route_tables[v->subnets[s].route_table];
			for (size_t r = 0; !err && r < table->n_routes; r++)
				if (table->routes[r].next_hop_type == NEXT_HOP_INTERNET &&
				    (table->routes[r].prefix.family == AF_INET || cfg->nat66))
					err = route_add(plan, vnet, &table->routes[r].prefix, &info);
		}
		return err;
	}
	ip_prefix_parse("0.0.0.0/0", &prefix);
	err = route_add(plan, vnet, &prefix, &info);
	if (!err && cfg->nat66) {
		ip_prefix_parse("::/0", &prefix);
		err = route_add(plan, vnet, &prefix, &info);
	}
	return err;
}

/* A VNet's effective routes, most specific first by construction of the LPM trie:
 * UDRs to the Internet (a user's route wins over a system route of the same prefix), its
 * own space, then its connected peers' spaces, on-premises, Azure's None routes and the
 * default route to the Internet. */
static int routes_of_vnet(struct plan *plan, const struct config *cfg, const uint32_t *ifindexes,
			  uint32_t vnet)
{
	const struct config_vnet *v = &cfg->vnets[vnet];
	int err;

	err = internet_routes(plan, cfg, ifindexes, vnet, true);
	if (!err)
		err = routes_to_vnet(plan, cfg, ifindexes, vnet, vnet, ROUTE_VNET_LOCAL, 0);
	for (size_t p = 0; !err && p < v->n_peerings; p++) {
		const struct config_peering *peering = &v->peerings[p];
		uint32_t index;

		if (!peering->connected || !vnet_is_bound(cfg, peering->remote_vnet))
			continue;
		err = peering_add(plan, cfg, vnet, peering, &index);
		if (!err)
			err = routes_to_vnet(plan, cfg, ifindexes, vnet, peering->remote_vnet,
					     ROUTE_VNET_PEERING, index);
	}
	/* Routes to on-premises prefixes override Azure's None routes of the same prefix. */
	if (!err)
		err = tunnel_routes_of_vnet(plan, cfg, vnet);
	for (size_t n = 0; !err && n < sizeof(none_route_prefixes) / sizeof(*none_route_prefixes); n++) {
		struct route_info info = { .type = ROUTE_NONE };
		struct ip_prefix prefix;

		ip_prefix_parse(none_route_prefixes[n], &prefix);
		err = route_add(plan, vnet, &prefix, &info);
	}
	if (!err)
		err = internet_routes(plan, cfg, ifindexes, vnet, false);
	return err;
}

int plan_build(const struct config *cfg, const uint32_t *ifindexes, struct plan *out)
{
	int err = 0;

	memset(out, 0, sizeof(*out));
	err = tunnels_plan(out, cfg);
	if (err)
		return err;
	out->interfaces = calloc(cfg->n_ifaces ? cfg->n_ifaces : 1, sizeof(*out->interfaces));
	if (!out->interfaces) {
		plan_free(out);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->n_ifaces; i++) {
		const struct config_gateway_iface *iface = &cfg->ifaces[i];
		struct plan_interface *pi = &out->interfaces[out->n_interfaces++];

		pi->ifindex = ifindexes[i];
		pi->name = iface->name;
		pi->info.role = iface->role == IFACE_UPLINK ? INTERFACE_UPLINK : INTERFACE_VNET;
		pi->info.vnet = iface->role == IFACE_VNET ? (uint32_t)iface->vnet : 0;
		if (iface->role == IFACE_VNET) {
			const struct ip_prefix *prefixes;
			size_t count;

			binding_prefixes(cfg, iface, &prefixes, &count);
			for (size_t p = 0; !err && p < count; p++)
				err = source_prefix_add(out, ifindexes[i], iface->vnet, &prefixes[p]);
		}
	}
	for (size_t v = 0; !err && v < cfg->n_vnets; v++)
		if (vnet_is_bound(cfg, v))
			err = routes_of_vnet(out, cfg, ifindexes, v);
	for (size_t t = 0; !err && t < out->n_tunnels; t++)
		err = tunnel_ingress_plan(out, cfg, ifindexes, &out->tunnels[t]);
	if (err)
		plan_free(out);
	return err;
}

void plan_free(struct plan *plan)
{
	free(plan->interfaces);
	free(plan->source_prefixes);
	free(plan->routes);
	free(plan->peerings);
	free(plan->tunnels);
	memset(plan, 0, sizeof(*plan));
}

static bool hint_matches(const struct plan_slot_hint *hint, const struct plan_peering *p)
{
	return !strcmp(hint->vnet_name, p->vnet_name) &&
	       !strcmp(hint->remote_vnet_name, p->remote_vnet_name);
}

static bool slot_taken(const uint32_t *slots, size_t n, const struct plan_slot_hint *hints,
		       size_t n_hints, uint32_t slot)
{
	for (size_t i = 0; i < n; i++)
		if (slots[i] == slot)
			return true;
	for (size_t i = 0; i < n_hints; i++)
		if (hints[i].slot == slot)
			return true;
	return false;
}

int plan_keep_peering_slots(struct plan *plan, const struct plan_slot_hint *hints,
			    size_t n_hints, bool *fresh, size_t fresh_size)
{
	uint32_t *slots = calloc(plan->n_peerings + 1, sizeof(*slots)), top = 0;
	struct plan_peering *placed;

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < plan->n_peerings; i++) {
		slots[i] = UINT32_MAX;
		for (size_t h = 0; h < n_hints; h++)
			if (hint_matches(&hints[h], &plan->peerings[i]))
				slots[i] = hints[h].slot;
	}
	for (size_t i = 0; i < plan->n_peerings; i++) {
		uint32_t slot = 0;

		if (slots[i] != UINT32_MAX)
			continue;
		while (slot_taken(slots, plan->n_peerings, hints, n_hints, slot))
			slot++;
		slots[i] = slot;
		if (slot < fresh_size)
			fresh[slot] = true;
	}
	for (size_t i = 0; i < plan->n_peerings; i++)
		if (slots[i] >= MAX_PEERINGS) {
			free(slots);
			return -ENOSPC;
		} else if (slots[i] + 1 > top) {
			top = slots[i] + 1;
		}
	placed = calloc(top + 1, sizeof(*placed));
	if (!placed) {
		free(slots);
		return -ENOMEM;
	}
	for (size_t i = 0; i < plan->n_peerings; i++)
		placed[slots[i]] = plan->peerings[i];
	for (size_t r = 0; r < plan->n_routes; r++)
		if (plan->routes[r].info.type == ROUTE_VNET_PEERING)
			plan->routes[r].info.peering = slots[plan->routes[r].info.peering];
	free(plan->peerings);
	plan->peerings = placed;
	plan->n_peerings = top;
	free(slots);
	return 0;
}

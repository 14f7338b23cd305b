#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "lib/log.h"
#include "compile/frr.h"
#include "compile/plan.h"

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
	case ROUTE_VIRTUAL_APPLIANCE: return "VirtualAppliance";
	default: return "Unknown";
	}
}

const char *route_source_name(enum route_source source)
{
	switch (source) {
	case ROUTE_SOURCE_USER: return "User";
	case ROUTE_SOURCE_GATEWAY:
	case ROUTE_SOURCE_BGP: return "VirtualNetworkGateway";
	default: return "Default";
	}
}

const char *route_state_name(const struct plan_route *route)
{
	return route->active && !(route->info.flags & ROUTE_FLAG_INVALID) ? "Active" : "Invalid";
}

static void *grow(void *array, size_t count, size_t size)
{
	/* Doubling at powers of two keeps appends amortised O(1) without a capacity field. */
	if (count < 4 ? count != 0 : (count & (count - 1)) != 0)
		return array;
	return realloc(array, (count ? count * 2 : 4) * size);
}

/* Where the routes being built go: one route scope (a VNet's own table, one subnet's, or
 * a tunnel's) and the VNet and subnet whose routes they are. */
struct route_scope {
	uint32_t scope;
	uint32_t vnet;
	int subnet;
};

static int route_push(struct plan *plan, const struct route_scope *at, struct plan_route route)
{
	void *bigger;

	route.src_vnet = at->vnet;
	route.subnet = at->subnet;
	route.order = plan->n_routes;
	lpm_key_from_prefix(&route.key, at->scope, &route.prefix);
	bigger = grow(plan->routes, plan->n_routes, sizeof(route));
	if (!bigger)
		return -ENOMEM;
	plan->routes = bigger;
	plan->routes[plan->n_routes++] = route;
	return 0;
}

static int route_add(struct plan *plan, const struct route_scope *at, const struct ip_prefix *prefix,
		     const struct route_info *info, enum route_source source)
{
	return route_push(plan, at, (struct plan_route){ .info = *info, .prefix = *prefix,
							 .source = source });
}

static int compare_route_selection(const void *a, const void *b)
{
	const struct plan_route *x = a, *y = b;
	int c = memcmp(&x->key, &y->key, sizeof(x->key));

	if (c)
		return c;
	if (x->source != y->source)
		return x->source > y->source ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int compare_route_order(const void *a, const void *b)
{
	const struct plan_route *x = a, *y = b;

	return x->order < y->order ? -1 : x->order > y->order;
}

/* Azure's selection among routes of one prefix in one scope: user beats gateway (BGP)
 * beats system, and within a source the first found. The winner is active; a loser of
 * another source stays, Invalid, for display, as Azure shows an overridden route; one of
 * the winner's own source is the same route found twice and goes. */
static void routes_select(struct plan *plan)
{
	size_t kept = 0, group = 0;

	qsort(plan->routes, plan->n_routes, sizeof(*plan->routes), compare_route_selection);
	for (size_t i = 0; i < plan->n_routes; i++) {
		struct plan_route r = plan->routes[i];
		bool first = !kept || memcmp(&r.key, &plan->routes[group].key, sizeof(r.key));
		bool repeated = false;

		if (first)
			group = kept;
		for (size_t j = group; !first && j < kept; j++)
			repeated |= plan->routes[j].source == r.source;
		if (repeated)
			continue;
		r.active = first && !r.overridden;
		plan->routes[kept++] = r;
	}
	plan->n_routes = kept;
	qsort(plan->routes, plan->n_routes, sizeof(*plan->routes), compare_route_order);
}

static int source_prefix_add(struct plan *plan, uint32_t ifindex, const struct source_info *info,
			     const struct ip_prefix *prefix)
{
	struct plan_prefix_entry entry = { .info = *info };
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

/* Routes to every prefix of dst_vnet that an interface here faces. */
static int routes_to_vnet(struct plan *plan, const struct config *cfg, const uint32_t *ifindexes,
			  const struct route_scope *at, uint32_t dst_vnet, uint32_t type,
			  uint32_t peering, uint32_t flags)
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
				.peering = peering, .dst_vnet = dst_vnet, .flags = flags,
			};
			int err = route_add(plan, at, &prefixes[p], &info, ROUTE_SOURCE_DEFAULT);

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
		       const struct config_peering *peering)
{
	void *bigger = grow(plan->peerings, plan->n_peerings, sizeof(*plan->peerings));

	if (!bigger)
		return -ENOMEM;
	if (plan->n_peerings >= MAX_PEERINGS)
		return -E2BIG;
	plan->peerings = bigger;
	plan->peerings[plan->n_peerings++] = (struct plan_peering){
		.vnet = vnet, .remote_vnet = peering->remote_vnet,
		.vnet_name = cfg->vnets[vnet].name,
		.remote_vnet_name = cfg->vnets[peering->remote_vnet].name,
		.peering_name = peering->name,
	};
	return 0;
}

/* A peering this gateway forwards over: connected, and the remote VNet bound here. */
static bool peering_is_forwarded(const struct config *cfg, const struct config_peering *peering)
{
	return peering->connected && vnet_is_bound(cfg, peering->remote_vnet);
}

/* ---- tunnels: routes of VirtualNetworkGateway type, gateway transit ---- */

/* Whether spoke reaches on-premises through hub's gateway: its peering uses the remote
 * gateways and the hub's peering back allows gateway transit. */
static bool uses_gateway_of(const struct config *cfg, int spoke, int hub)
{
	const struct config_peering *out = config_peering_to(cfg, spoke, hub);
	const struct config_peering *back = config_peering_to(cfg, hub, spoke);

	return out && back && out->connected && out->use_remote_gateways &&
	       back->allow_gateway_transit;
}

/* The remote spaces of every tunnel terminating in gateway_vnet, as routes. */
static int tunnel_routes_of(struct plan *plan, const struct route_scope *at, uint32_t gateway_vnet)
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
			int err = route_add(plan, at, &tunnel->remote_prefixes[p], &info,
					    ROUTE_SOURCE_GATEWAY);

			if (err)
				return err;
		}
	}
	return 0;
}

/* What the ExpressRoute links of gateway_vnet's gateway learned, as routes of source BGP
 * into the link's VLAN device via the provider's address. */
static int learned_routes_of(struct plan *plan, const struct route_scope *at, uint32_t gateway_vnet)
{
	for (size_t e = 0; e < plan->n_express_routes; e++) {
		const struct plan_express_route *er = &plan->express_routes[e];

		if (er->vnet != gateway_vnet || !er->ifindex)
			continue;
		for (size_t p = 0; p < er->n_learned; p++) {
			struct plan_route route = {
				.prefix = er->learned[p].prefix, .source = ROUTE_SOURCE_BGP,
				.info = { .type = ROUTE_TUNNEL, .egress_ifindex = er->ifindex,
					  .peering = er->id, .dst_vnet = gateway_vnet },
				.next_hop_ip = { .family = AF_INET },
				.as_path = er->learned[p].as_path, .connection = er->connection,
			};
			int err;

			memcpy(route.next_hop_ip.addr, er->peer, 4);
			err = route_push(plan, at, route);
			if (err)
				return err;
		}
	}
	return 0;
}

/* A VNet's routes to on-premises: its own gateway's tunnels and ExpressRoute links, or
 * those of the hub whose gateway it uses. */
static int tunnel_routes_of_vnet(struct plan *plan, const struct config *cfg,
				 const struct route_scope *at)
{
	const struct config_vnet *v = &cfg->vnets[at->vnet];
	int err = tunnel_routes_of(plan, at, at->vnet);

	if (!err)
		err = learned_routes_of(plan, at, at->vnet);
	for (size_t p = 0; !err && p < v->n_peerings; p++)
		if (v->peerings[p].remote_vnet != CONFIG_NONE &&
		    uses_gateway_of(cfg, (int)at->vnet, v->peerings[p].remote_vnet)) {
			err = tunnel_routes_of(plan, at, (uint32_t)v->peerings[p].remote_vnet);
			if (!err)
				err = learned_routes_of(plan, at, (uint32_t)v->peerings[p].remote_vnet);
		}
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

/* What a packet arriving from the tunnel `id` (decrypted, or off an ExpressRoute link)
 * may reach: the gateway's VNet and the spokes that use its gateway (gateway transit),
 * in the tunnel's own scope. */
static int gateway_ingress_routes(struct plan *plan, const struct config *cfg,
				  const uint32_t *ifindexes, uint32_t id, uint32_t vnet)
{
	uint32_t scope = TUNNEL_ROUTE_SCOPE | id;
	struct route_scope at = { .scope = scope, .vnet = scope, .subnet = CONFIG_NONE };
	int err = routes_to_vnet(plan, cfg, ifindexes, &at, vnet, ROUTE_VNET_LOCAL, 0, 0);

	for (size_t s = 0; !err && s < cfg->n_vnets; s++) {
		uint32_t slot;

		if (s == vnet || !vnet_is_bound(cfg, (int)s) ||
		    !uses_gateway_of(cfg, (int)s, (int)vnet) ||
		    peering_slot(plan, vnet, (uint32_t)s, &slot))
			continue;
		err = routes_to_vnet(plan, cfg, ifindexes, &at, (uint32_t)s, ROUTE_VNET_PEERING,
				     slot, 0);
	}
	return err;
}

/* The tunnel's routes in, and the sources it may come from: the connection's remote
 * address spaces. */
static int tunnel_ingress_plan(struct plan *plan, const struct config *cfg,
			       const uint32_t *ifindexes, const struct tunnel *t)
{
	struct source_info source = { .vnet = t->vnet, .route_scope = TUNNEL_ROUTE_SCOPE | t->id };
	int err = gateway_ingress_routes(plan, cfg, ifindexes, t->id, t->vnet);

	for (size_t p = 0; !err && t->ifindex && p < t->n_remote_prefixes; p++)
		err = source_prefix_add(plan, t->ifindex, &source, &t->remote_prefixes[p]);
	return err;
}

/* An ExpressRoute link's routes in, and its sources: the prefixes its session learned
 * (Azure's gateway takes from the circuit only what BGP announced). */
static int express_route_ingress_plan(struct plan *plan, const struct config *cfg,
				      const uint32_t *ifindexes, const struct plan_express_route *er)
{
	struct source_info source = { .vnet = er->vnet, .route_scope = TUNNEL_ROUTE_SCOPE | er->id };
	int err = gateway_ingress_routes(plan, cfg, ifindexes, er->id, er->vnet);

	for (size_t p = 0; !err && er->ifindex && p < er->n_learned; p++)
		err = source_prefix_add(plan, er->ifindex, &source, &er->learned[p].prefix);
	return err;
}

/* The ExpressRoute links of the config, with what each learned (IPv4: the private
 * peering's /30 carries IPv4 sessions). */
static int express_routes_plan(struct plan *plan, const struct config *cfg,
			       const struct plan_learned *learned)
{
	size_t n = cfg->n_express_route_bindings;

	if (!n)
		return 0;
	if (plan->n_tunnels + n > MAX_TUNNELS)
		return -E2BIG;
	plan->express_routes = calloc(n, sizeof(*plan->express_routes));
	if (!plan->express_routes)
		return -ENOMEM;
	for (size_t b = 0; b < n; b++) {
		const struct config_express_route_binding *binding = &cfg->express_route_bindings[b];
		const struct config_connection *c = &cfg->connections[binding->connection];
		struct plan_express_route *er = &plan->express_routes[plan->n_express_routes];
		struct bgp_link link;

		if (c->vnet_gateway1 == CONFIG_NONE ||
		    cfg->vnet_gateways[c->vnet_gateway1].vnet == CONFIG_NONE ||
		    bgp_link_of(cfg, b, &link))
			continue;
		*er = (struct plan_express_route){
			.id = EXPRESS_ROUTE_TUNNEL_ID(b), .binding = b,
			.ifindex = learned->link_ifindexes[b],
			.vnet = (uint32_t)cfg->vnet_gateways[c->vnet_gateway1].vnet,
			.connection = c->name, .interface = binding->interface,
		};
		memcpy(er->local, link.local, 4);
		memcpy(er->peer, link.peer, 4);
		bgp_link_release(&link);
		plan->n_express_routes++;
		for (size_t r = 0; r < learned->n_routes; r++) {
			const struct plan_learned_route *route = &learned->routes[r];
			void *bigger;

			if (route->binding != b || route->prefix.family != AF_INET)
				continue;
			bigger = grow(er->learned, er->n_learned, sizeof(*er->learned));
			if (!bigger)
				return -ENOMEM;
			er->learned = bigger;
			er->learned[er->n_learned++] = *route;
		}
	}
	return 0;
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

/* A route with next hop Internet leaves by the uplink, translated by SNAT (IPv6 only
 * when the gateway does NAT66). A gateway without an uplink has none: false. */
static bool internet_route_info(const struct config *cfg, const uint32_t *ifindexes,
				uint32_t vnet, const struct ip_prefix *prefix,
				struct route_info *info)
{
	/* dst_vnet: the VNet whose route it is, as `routes` and `verify` show it; the
	 * datapath takes a destination VNet only from VnetLocal and peering routes. */
	*info = (struct route_info){ .type = ROUTE_INTERNET, .dst_vnet = vnet };
	if (prefix->family == AF_INET6 && !cfg->nat66)
		return false;
	return !uplink_ifindex(cfg, ifindexes, &info->egress_ifindex);
}

/* Azure's system default routes to the Internet, 0.0.0.0/0 and (NAT66) ::/0. */
static int internet_default_routes(struct plan *plan, const struct config *cfg,
				   const uint32_t *ifindexes, const struct route_scope *at)
{
	static const char *const defaults[] = { "0.0.0.0/0", "::/0" };
	int err = 0;

	for (size_t d = 0; !err && d < 2; d++) {
		struct route_info info;
		struct ip_prefix prefix;

		ip_prefix_parse(defaults[d], &prefix);
		if (internet_route_info(cfg, ifindexes, at->vnet, &prefix, &info))
			err = route_add(plan, at, &prefix, &info, ROUTE_SOURCE_DEFAULT);
	}
	return err;
}

static bool binding_contains(const struct config *cfg, const struct config_gateway_iface *iface,
			     const struct ip_address *address)
{
	struct ip_prefix host = { .family = address->family,
				  .len = address->family == AF_INET ? 32 : 128 };
	const struct ip_prefix *prefixes;
	size_t count;

	memcpy(host.addr, address->addr, 16);
	binding_prefixes(cfg, iface, &prefixes, &count);
	for (size_t p = 0; p < count; p++)
		if (ip_prefix_contains(&prefixes[p], &host))
			return true;
	return false;
}

/* The interface here that faces address in VNet dst: its index in cfg->ifaces, or -1. */
static int interface_facing(const struct config *cfg, int dst, const struct ip_address *address)
{
	for (size_t i = 0; i < cfg->n_ifaces; i++)
		if (cfg->ifaces[i].role == IFACE_VNET && cfg->ifaces[i].vnet == dst &&
		    binding_contains(cfg, &cfg->ifaces[i], address))
			return (int)i;
	return -1;
}

/* A VirtualAppliance next hop: the appliance must be in the VNet or a peer it forwards
 * to, on an interface here; otherwise the route is Invalid (packets to it drop). */
static void appliance_route_info(const struct config *cfg, const uint32_t *ifindexes,
				 uint32_t vnet, const struct config_route *route,
				 struct route_info *info)
{
	const struct config_vnet *v = &cfg->vnets[vnet];
	int iface = -1, dst = (int)vnet;

	*info = (struct route_info){ .type = ROUTE_VIRTUAL_APPLIANCE, .flags = ROUTE_FLAG_INVALID };
	if (route->next_hop_ip.family != route->prefix.family)
		return;
	iface = interface_facing(cfg, dst, &route->next_hop_ip);
	for (size_t p = 0; iface < 0 && p < v->n_peerings; p++)
		if (peering_is_forwarded(cfg, &v->peerings[p])) {
			dst = v->peerings[p].remote_vnet;
			iface = interface_facing(cfg, dst, &route->next_hop_ip);
		}
	if (iface < 0)
		return;
	info->flags = 0;
	info->egress_ifindex = ifindexes[iface];
	info->dst_vnet = (uint32_t)dst;
	memcpy(info->next_hop, route->next_hop_ip.addr, 16);
}

/* A VnetLocal user route keeps traffic to its prefix inside the VNet: the parts of the
 * VNet's bound space it covers go to the interfaces facing them; a prefix no binding
 * holds whole is also a route of its own, Invalid (what lies outside the VNet drops). */
static int vnet_local_user_routes(struct plan *plan, const struct config *cfg,
				  const uint32_t *ifindexes, const struct route_scope *at,
				  struct plan_route route)
{
	bool held = false;
	int err = 0;

	for (size_t i = 0; !err && i < cfg->n_ifaces; i++) {
		const struct config_gateway_iface *iface = &cfg->ifaces[i];
		const struct ip_prefix *prefixes;
		size_t count;

		if (iface->role != IFACE_VNET || iface->vnet != (int)at->vnet)
			continue;
		binding_prefixes(cfg, iface, &prefixes, &count);
		for (size_t p = 0; !err && p < count; p++) {
			struct plan_route part = route;
			bool inside = ip_prefix_contains(&prefixes[p], &route.prefix);

			if (!inside && !ip_prefix_contains(&route.prefix, &prefixes[p]))
				continue;
			held |= inside;
			part.prefix = inside ? route.prefix : prefixes[p];
			part.info = (struct route_info){ .type = ROUTE_VNET_LOCAL,
							 .egress_ifindex = ifindexes[i],
							 .dst_vnet = at->vnet };
			err = route_push(plan, at, part);
		}
	}
	if (!err && !held) {
		route.info = (struct route_info){ .type = ROUTE_VNET_LOCAL, .dst_vnet = at->vnet,
						  .flags = ROUTE_FLAG_INVALID };
		err = route_push(plan, at, route);
	}
	return err;
}

/* The VNet whose gateway vnet's VirtualNetworkGateway routes use: its own, or that of
 * the hub whose gateway it uses (useRemoteGateways); CONFIG_NONE: it has none. */
static int gateway_vnet_of(const struct config *cfg, uint32_t vnet)
{
	const struct config_vnet *v = &cfg->vnets[vnet];

	if (v->virtual_network_gateway != CONFIG_NONE)
		return (int)vnet;
	for (size_t p = 0; p < v->n_peerings; p++)
		if (v->peerings[p].remote_vnet != CONFIG_NONE &&
		    uses_gateway_of(cfg, (int)vnet, v->peerings[p].remote_vnet))
			return v->peerings[p].remote_vnet;
	return CONFIG_NONE;
}

/* A user route to the VNet gateway. Azure hands its traffic to the gateway, which sends
 * it into the connection whose site holds the destination and drops what no site holds.
 * So: into the first tunnel of that gateway whose remote prefix holds the route's prefix
 * whole; a prefix that holds sites' prefixes sends those parts into their tunnels (also
 * where the table stops the gateway's own routes) and drops the rest
 * (ROUTE_FLAG_GATEWAY_DROPS). Without a gateway to use, the route is Invalid. */
static int gateway_user_routes(struct plan *plan, const struct config *cfg,
			       const struct route_scope *at, struct plan_route route)
{
	int gateway = gateway_vnet_of(cfg, at->vnet);
	int err = 0;

	if (gateway == CONFIG_NONE) {
		route.info = (struct route_info){ .type = ROUTE_TUNNEL, .flags = ROUTE_FLAG_INVALID };
		return route_push(plan, at, route);
	}
	for (size_t t = 0; !err && t < plan->n_tunnels; t++) {
		const struct tunnel *tunnel = &plan->tunnels[t];

		if (tunnel->vnet != (uint32_t)gateway)
			continue;
		for (size_t p = 0; !err && p < tunnel->n_remote_prefixes; p++) {
			const struct ip_prefix *site = &tunnel->remote_prefixes[p];
			bool inside = ip_prefix_contains(site, &route.prefix);
			struct plan_route part = route;

			if (!inside && !ip_prefix_contains(&route.prefix, site))
				continue;
			part.prefix = inside ? route.prefix : *site;
			part.info = (struct route_info){ .type = ROUTE_TUNNEL,
							 .egress_ifindex = tunnel->ifindex,
							 .peering = tunnel->id,
							 .dst_vnet = (uint32_t)gateway };
			err = route_push(plan, at, part);
			if (inside)
				return err;
		}
	}
	route.info = (struct route_info){ .type = ROUTE_TUNNEL, .dst_vnet = (uint32_t)gateway,
					  .flags = ROUTE_FLAG_GATEWAY_DROPS };
	return err ? err : route_push(plan, at, route);
}

/* The routes of a subnet's route table, as user routes of its scope. */
static int user_routes(struct plan *plan, const struct config *cfg, const uint32_t *ifindexes,
		       const struct route_scope *at, const struct config_route_table *table)
{
	int err = 0;

	for (size_t r = 0; !err && r < table->n_routes; r++) {
		const struct config_route *route = &table->routes[r];
		struct plan_route user = { .prefix = route->prefix, .source = ROUTE_SOURCE_USER,
					   .table_name = table->name, .route_name = route->name };

		switch (route->next_hop_type) {
		case NEXT_HOP_INTERNET:
			if (internet_route_info(cfg, ifindexes, at->vnet, &route->prefix, &user.info))
				err = route_push(plan, at, user);
			break;
		case NEXT_HOP_NONE:
			user.info.type = ROUTE_NONE;
			err = route_push(plan, at, user);
			break;
		case NEXT_HOP_VIRTUAL_APPLIANCE:
			user.next_hop_ip = route->next_hop_ip;
			appliance_route_info(cfg, ifindexes, at->vnet, route, &user.info);
			err = route_push(plan, at, user);
			break;
		case NEXT_HOP_VNET_LOCAL:
			err = vnet_local_user_routes(plan, cfg, ifindexes, at, user);
			break;
		case NEXT_HOP_VIRTUAL_NETWORK_GATEWAY:
			err = gateway_user_routes(plan, cfg, at, user);
			break;
		}
	}
	return err;
}

static const struct config_route_table *scope_table(const struct config *cfg,
						    const struct route_scope *at)
{
	int table;

	if (at->subnet == CONFIG_NONE)
		return NULL;
	table = cfg->vnets[at->vnet].subnets[at->subnet].route_table;
	return table == CONFIG_NONE ? NULL : &cfg->route_tables[table];
}

/* Whether the table has a user route for 0.0.0.0/0. Azure then sets its reserved None
 * routes aside (Invalid), so that private destinations outside the VNet and its peers
 * follow the user's default route, an NVA's say, as forced tunnelling expects. */
static bool table_overrides_default(const struct config_route_table *table)
{
	for (size_t r = 0; table && r < table->n_routes; r++)
		if (table->routes[r].prefix.family == AF_INET && table->routes[r].prefix.len == 0)
			return true;
	return false;
}

/* The effective routes of one scope: the subnet's user routes, then the VNet's system
 * routes (its own space, its connected peers' spaces, on-premises unless the table stops
 * gateway routes, Azure's None routes, the default route to the Internet); at equal
 * prefix routes_select keeps the user's. */
static int routes_of_scope(struct plan *plan, const struct config *cfg, const uint32_t *ifindexes,
			   const struct route_scope *at)
{
	const struct config_vnet *v = &cfg->vnets[at->vnet];
	const struct config_route_table *table = scope_table(cfg, at);
	int err = 0;

	if (table)
		err = user_routes(plan, cfg, ifindexes, at, table);
	if (!err)
		err = routes_to_vnet(plan, cfg, ifindexes, at, at->vnet, ROUTE_VNET_LOCAL, 0, 0);
	for (size_t p = 0; !err && p < v->n_peerings; p++) {
		const struct config_peering *peering = &v->peerings[p];
		const struct config_peering *back;
		uint32_t slot, flags = 0;

		if (!peering_is_forwarded(cfg, peering) ||
		    peering_slot(plan, at->vnet, (uint32_t)peering->remote_vnet, &slot))
			continue;
		back = config_peering_to(cfg, peering->remote_vnet, (int)at->vnet);
		if (back && back->allow_forwarded_traffic)
			flags = ROUTE_FLAG_ACCEPTS_FORWARDED;
		if (back && !back->allow_virtual_network_access)
			flags |= ROUTE_FLAG_ACCESS_REFUSED;
		err = routes_to_vnet(plan, cfg, ifindexes, at, peering->remote_vnet,
				     ROUTE_VNET_PEERING, slot, flags);
	}
	if (!err && !(table && table->disable_bgp_route_propagation))
		err = tunnel_routes_of_vnet(plan, cfg, at);
	for (size_t n = 0; !err && n < sizeof(none_route_prefixes) / sizeof(*none_route_prefixes); n++) {
		struct plan_route none = { .info.type = ROUTE_NONE, .source = ROUTE_SOURCE_DEFAULT,
					   .overridden = table_overrides_default(table) };

		ip_prefix_parse(none_route_prefixes[n], &none.prefix);
		err = route_push(plan, at, none);
	}
	if (!err)
		err = internet_default_routes(plan, cfg, ifindexes, at);
	return err;
}

const struct plan_route *plan_route_lookup(const struct plan *plan, uint32_t scope,
					   const struct ip_address *address)
{
	struct ip_prefix host = { .family = address->family,
				  .len = address->family == AF_INET ? 32 : 128 };
	const struct plan_route *best = NULL;

	memcpy(host.addr, address->addr, 16);
	for (size_t i = 0; i < plan->n_routes; i++) {
		const struct plan_route *r = &plan->routes[i];

		if (r->active && r->key.scope == scope && r->prefix.family == host.family &&
		    ip_prefix_contains(&r->prefix, &host) && (!best || r->prefix.len > best->prefix.len))
			best = r;
	}
	return best;
}

bool vnet_has_subnet_scopes(const struct config *cfg, uint32_t vnet)
{
	const struct config_vnet *v = &cfg->vnets[vnet];

	for (size_t s = 0; s < v->n_subnets; s++)
		if (v->subnets[s].route_table != CONFIG_NONE)
			return true;
	return false;
}

/* The route scope a source in subnet (CONFIG_NONE: in no subnet) of vnet looks up in. */
static uint32_t source_route_scope(const struct config *cfg, uint32_t vnet, int subnet)
{
	if (subnet == CONFIG_NONE || !vnet_has_subnet_scopes(cfg, vnet))
		return vnet;
	return subnet_route_scope(vnet, subnet);
}

/* A VNet's route scopes: its own (sources in no subnet, SNAT replies) and, where its
 * subnets have tables, one per subnet. */
static int routes_of_vnet(struct plan *plan, const struct config *cfg, const uint32_t *ifindexes,
			  uint32_t vnet)
{
	const struct config_vnet *v = &cfg->vnets[vnet];
	struct route_scope at = { .scope = vnet, .vnet = vnet, .subnet = CONFIG_NONE };
	int err = 0;

	for (size_t p = 0; !err && p < v->n_peerings; p++)
		if (peering_is_forwarded(cfg, &v->peerings[p]))
			err = peering_add(plan, cfg, vnet, &v->peerings[p]);
	if (!err)
		err = routes_of_scope(plan, cfg, ifindexes, &at);
	if (err || !vnet_has_subnet_scopes(cfg, vnet))
		return err;
	if (v->n_subnets > 0xffff)
		return -E2BIG;
	for (size_t s = 0; !err && s < v->n_subnets; s++) {
		at = (struct route_scope){ .scope = subnet_route_scope(vnet, s), .vnet = vnet,
					   .subnet = (int)s };
		err = routes_of_scope(plan, cfg, ifindexes, &at);
	}
	return err;
}

/* The scope of what the NICs with enableIPForwarding behind an interface forward (sources
 * not in the VNet): their subnet's, or the VNet's when they sit in several. False when
 * the interface faces no such NIC. */
static bool forwarding_scope(const struct config *cfg, const struct config_gateway_iface *iface,
			     uint32_t *scope)
{
	bool found = false;

	for (size_t n = 0; n < cfg->n_nics; n++) {
		const struct config_nic *nic = &cfg->nics[n];
		uint32_t its;

		if (!nic->enable_ip_forwarding || nic->vnet != iface->vnet ||
		    (iface->subnet != CONFIG_NONE && nic->subnet != iface->subnet))
			continue;
		its = source_route_scope(cfg, (uint32_t)nic->vnet, nic->subnet);
		*scope = found && *scope != its ? (uint32_t)iface->vnet : its;
		found = true;
	}
	return found;
}

/* Which sources an interface accepts and the scope each one's routes are looked up in:
 * the binding's prefixes, each subnet's own where subnets have scopes, and everything
 * else when an NVA behind it forwards (marked, for allowForwardedTraffic). */
static int interface_sources(struct plan *plan, const struct config *cfg, uint32_t ifindex,
			     const struct config_gateway_iface *iface)
{
	const struct config_vnet *v = &cfg->vnets[iface->vnet];
	struct source_info info = { .vnet = (uint32_t)iface->vnet };
	const struct ip_prefix *prefixes;
	size_t count;
	int err = 0;

	binding_prefixes(cfg, iface, &prefixes, &count);
	info.route_scope = source_route_scope(cfg, info.vnet, iface->subnet);
	for (size_t p = 0; !err && p < count; p++)
		err = source_prefix_add(plan, ifindex, &info, &prefixes[p]);
	if (iface->subnet == CONFIG_NONE && vnet_has_subnet_scopes(cfg, info.vnet))
		for (size_t s = 0; !err && s < v->n_subnets; s++) {
			info.route_scope = subnet_route_scope(info.vnet, s);
			for (size_t p = 0; !err && p < v->subnets[s].n_prefixes; p++)
				err = source_prefix_add(plan, ifindex, &info, &v->subnets[s].prefixes[p]);
		}
	if (!err && forwarding_scope(cfg, iface, &info.route_scope)) {
		static const char *const everything[] = { "0.0.0.0/0", "::/0" };
		struct ip_prefix prefix;

		for (size_t e = 0; !err && e < 2; e++) {
			ip_prefix_parse(everything[e], &prefix);
			info.flags = SOURCE_FORWARDED;
			if (plan_sole_forwarder(cfg, iface, prefix.family, info.forwarder))
				info.flags |= SOURCE_FORWARDER_KNOWN;
			err = source_prefix_add(plan, ifindex, &info, &prefix);
		}
	}
	return err;
}

int plan_build(const struct config *cfg, const uint32_t *ifindexes, struct plan *out)
{
	size_t n = cfg->n_express_route_bindings;
	uint32_t *links = calloc(n ? n : 1, sizeof(*links));
	struct plan_learned none = { .link_ifindexes = links };
	int err;

	if (!links)
		return -ENOMEM;
	for (size_t b = 0; b < n; b++)
		links[b] = if_nametoindex(cfg->express_route_bindings[b].interface);
	err = plan_build_learned(cfg, ifindexes, &none, out);
	free(links);
	return err;
}

int plan_build_learned(const struct config *cfg, const uint32_t *ifindexes,
		       const struct plan_learned *learned, struct plan *out)
{
	int err = 0;

	memset(out, 0, sizeof(*out));
	err = tunnels_plan(out, cfg);
	if (!err)
		err = express_routes_plan(out, cfg, learned);
	if (err) {
		plan_free(out);
		return err;
	}
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
		pi->info.flags = plan_interface_flags(cfg, iface);
		if (!err && iface->role == IFACE_VNET)
			err = interface_sources(out, cfg, ifindexes[i], iface);
	}
	for (size_t v = 0; !err && v < cfg->n_vnets; v++)
		if (vnet_is_bound(cfg, v))
			err = routes_of_vnet(out, cfg, ifindexes, v);
	for (size_t t = 0; !err && t < out->n_tunnels; t++)
		err = tunnel_ingress_plan(out, cfg, ifindexes, &out->tunnels[t]);
	for (size_t e = 0; !err && e < out->n_express_routes; e++)
		err = express_route_ingress_plan(out, cfg, ifindexes, &out->express_routes[e]);
	if (!err)
		err = plan_nic_sources(out, cfg, ifindexes);
	if (!err)
		routes_select(out);
	if (err)
		plan_free(out);
	return err;
}

void plan_free(struct plan *plan)
{
	free(plan->interfaces);
	free(plan->source_prefixes);
	free(plan->nic_sources);
	free(plan->routes);
	free(plan->peerings);
	free(plan->tunnels);
	for (size_t e = 0; e < plan->n_express_routes; e++)
		free(plan->express_routes[e].learned);
	free(plan->express_routes);
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

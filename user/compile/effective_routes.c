/* The routes and peerings a config gives each VNet, as `routes`, `verify` and `status`
 * show them: JSON in Azure's words, and tables. */
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include "compile/effective_routes.h"

static void prefix_text(const struct ip_prefix *p, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, addr, sizeof(addr));
	snprintf(buf, size, "%s/%u", addr, p->len);
}

json_t *effective_route_json(const struct config *cfg, const struct plan_route *route,
			     const uint32_t *ifindexes)
{
	const struct config_vnet *v = &cfg->vnets[route->src_vnet];
	char prefix[64], egress[IF_NAMESIZE] = "", hop[INET6_ADDRSTRLEN];
	json_t *o, *hops = json_array();

	prefix_text(&route->prefix, prefix, sizeof(prefix));
	for (size_t i = 0; i < cfg->n_ifaces; i++)
		if (ifindexes[i] == route->info.egress_ifindex && route->info.egress_ifindex)
			snprintf(egress, sizeof(egress), "%s", cfg->ifaces[i].name);
	if (route->next_hop_ip.family) {
		inet_ntop(route->next_hop_ip.family, route->next_hop_ip.addr, hop, sizeof(hop));
		json_array_append_new(hops, json_string(hop));
	}
	o = json_pack("{s:o, s:s, s:s, s:s, s:s, s:o, s:s}",
		      "subnet", route->subnet == CONFIG_NONE ? json_null() :
				json_string(v->subnets[route->subnet].name),
		      "source", route_source_name(route->source),
		      "state", route_state_name(route),
		      "addressPrefix", prefix,
		      "nextHopType", route_type_name(route->info.type),
		      "nextHopIpAddress", hops,
		      "interface", egress);
	if (route->source == ROUTE_SOURCE_BGP) { /* learned by an ExpressRoute connection */
		if (if_indextoname(route->info.egress_ifindex, egress))
			json_object_set_new(o, "interface", json_string(egress));
		json_object_set_new(o, "origin", json_string("BGP"));
		json_object_set_new(o, "asPath", json_string(route->as_path ? route->as_path : ""));
		json_object_set_new(o, "connection", json_string(route->connection));
	}
	if (route->route_name) {
		json_object_set_new(o, "routeTable", json_string(route->table_name));
		json_object_set_new(o, "name", json_string(route->route_name));
	}
	if (route->info.type != ROUTE_NONE && !(route->info.flags & ROUTE_FLAG_INVALID))
		json_object_set_new(o, "virtualNetwork",
				    json_string(cfg->vnets[route->info.dst_vnet].name));
	return o;
}

json_t *effective_routes_json(const struct config *cfg, const struct plan *plan,
			      const uint32_t *ifindexes, int vnet)
{
	json_t *routes = json_array();

	for (size_t r = 0; r < plan->n_routes; r++)
		if (plan->routes[r].src_vnet == (uint32_t)vnet)
			json_array_append_new(routes, effective_route_json(cfg, &plan->routes[r], ifindexes));
	return routes;
}

json_t *effective_nic_routes_json(const struct config *cfg, const struct plan *plan,
				  const uint32_t *ifindexes, int nic)
{
	const struct config_nic *n = &cfg->nics[nic];
	int subnet = vnet_has_subnet_scopes(cfg, (uint32_t)n->vnet) ? n->subnet : CONFIG_NONE;
	json_t *routes = json_array();

	for (size_t r = 0; r < plan->n_routes; r++)
		if (plan->routes[r].src_vnet == (uint32_t)n->vnet && plan->routes[r].subnet == subnet)
			json_array_append_new(routes, effective_route_json(cfg, &plan->routes[r], ifindexes));
	return routes;
}

/* A field as the table shows it: an array (next hop IPs) by its first value, "-" for none. */
static const char *route_field(json_t *route, const char *key)
{
	json_t *field = json_object_get(route, key);
	const char *value;

	if (json_is_array(field))
		field = json_array_get(field, 0);
	value = json_string_value(field);
	return value && *value ? value : "-";
}

static void table_cell(FILE *out, const char *text, int width, bool last)
{
	if (last)
		fprintf(out, "%s\n", text);
	else
		fprintf(out, "%-*s  ", width, text);
}

/* Columns as wide as their widest value, header included: next hop types run from None
 * to VirtualNetworkServiceEndpoint, prefixes to 43 characters. */
void effective_routes_text(FILE *out, json_t *routes)
{
	static const char *const keys[] = { "subnet", "source", "state", "addressPrefix",
					    "nextHopType", "nextHopIpAddress", "virtualNetwork",
					    "interface" };
	static const char *const headers[] = { "SUBNET", "SOURCE", "STATE", "ADDRESS PREFIX",
					       "NEXT HOP", "NEXT HOP IP", "VNET", "INTERFACE" };
	enum { COLUMNS = sizeof(keys) / sizeof(*keys) };
	int widths[COLUMNS];
	size_t i;
	json_t *it;

	for (int c = 0; c < COLUMNS; c++)
		widths[c] = (int)strlen(headers[c]);
	json_array_foreach(routes, i, it)
		for (int c = 0; c < COLUMNS; c++)
			if ((int)strlen(route_field(it, keys[c])) > widths[c])
				widths[c] = (int)strlen(route_field(it, keys[c]));
	for (int c = 0; c < COLUMNS; c++)
		table_cell(out, headers[c], widths[c], c + 1 == COLUMNS);
	json_array_foreach(routes, i, it)
		for (int c = 0; c < COLUMNS; c++)
			table_cell(out, route_field(it, keys[c]), widths[c], c + 1 == COLUMNS);
}

static json_t *peering_json(const struct config *cfg, int vnet, const struct config_peering *p)
{
	const struct config_peering *back = p->remote_vnet == CONFIG_NONE ? NULL :
					    config_peering_to(cfg, p->remote_vnet, vnet);

	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b}",
			 "virtualNetwork", cfg->vnets[vnet].name, "name", p->name,
			 "remoteVirtualNetwork", p->remote_name,
			 "peeringState", peering_state_name(p->state),
			 "allowVirtualNetworkAccess", p->allow_virtual_network_access,
			 "allowForwardedTraffic", p->allow_forwarded_traffic,
			 "allowGatewayTransit", p->allow_gateway_transit,
			 "useRemoteGateways", p->use_remote_gateways,
			 "trafficToRemote", p->connected && back && back->allow_virtual_network_access,
			 "trafficFromRemote", p->connected && p->allow_virtual_network_access);
}

json_t *effective_peerings_json(const struct config *cfg, int vnet)
{
	json_t *peerings = json_array();

	for (size_t v = 0; v < cfg->n_vnets; v++)
		for (size_t p = 0; (vnet == CONFIG_NONE || vnet == (int)v) &&
				   p < cfg->vnets[v].n_peerings; p++)
			json_array_append_new(peerings, peering_json(cfg, (int)v,
								     &cfg->vnets[v].peerings[p]));
	return peerings;
}

static const char *traffic_text(json_t *peering, const char *key)
{
	return json_is_true(json_object_get(peering, key)) ? "yes" : "no";
}

void effective_peerings_text(FILE *out, json_t *peerings)
{
	size_t i;
	json_t *p;

	if (!json_array_size(peerings))
		return;
	fprintf(out, "\n%-24s %-24s %-13s %-10s %s\n", "PEERING", "REMOTE VNET", "STATE",
		"TO REMOTE", "FROM REMOTE");
	json_array_foreach(peerings, i, p)
		fprintf(out, "%-24s %-24s %-13s %-10s %s\n",
			json_string_value(json_object_get(p, "name")),
			json_string_value(json_object_get(p, "remoteVirtualNetwork")),
			json_string_value(json_object_get(p, "peeringState")),
			traffic_text(p, "trafficToRemote"), traffic_text(p, "trafficFromRemote"));
}

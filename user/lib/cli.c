#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include "lib/cli.h"
#include "lib/gateway_name.h"
#include "datapath/state.h"

bool cli_json_pretty;

void cli_json_print(json_t *doc)
{
	json_dumpf(doc, stdout, cli_json_pretty ? JSON_INDENT(2) : JSON_COMPACT);
	fputc('\n', stdout);
}

static int table_usage(const char *command)
{
	cli_usage_hint(command);
	return CLI_EXIT_USAGE;
}

int cli_table_options(const char *command, int argc, char **argv, const char *const *states,
		      struct table_options *o)
{
	static const struct option own[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "gc", no_argument, NULL, 'g' },
	};
	struct option longopts[sizeof(own) / sizeof(*own) + FLOW_FILTER_COUNT + 1];
	int c, err;

	memcpy(longopts, own, sizeof(own));
	flow_filter_longopts(longopts, sizeof(own) / sizeof(*own), true);
	*o = (struct table_options){ 0 };
	flow_filter_init(&o->filter);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:j", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o->name = optarg; break;
		case 'j': o->json = true; break;
		case 'g': o->gc = true; break;
		default:
			err = flow_filter_getopt(&o->filter, command, c, optarg, states);
			if (!err)
				break;
			if (err > 0)
				cli_option_error(command, c, argv);
			return table_usage(command);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vnet-xdp %s: unexpected argument '%s'\n", command, argv[optind]);
		return table_usage(command);
	}
	return gateway_name_check(command, o->name) ? CLI_EXIT_USAGE : 0;
}

int cli_filter_vnet_check(const char *command, const char *gateway, const struct flow_filter *f)
{
	json_t *state, *vnet;
	bool known = false;
	size_t i;

	if (!f->vnet)
		return 0;
	state = state_load(gateway);
	json_array_foreach(json_object_get(state, "virtualNetworks"), i, vnet)
		known = known || !strcmp(json_string_value(vnet) ?: "", f->vnet);
	json_decref(state);
	if (known)
		return 0;
	fprintf(stderr, "vnet-xdp %s: gateway %s has no virtual network named %s\n", command,
		gateway, f->vnet);
	return CLI_EXIT_FAILED;
}

static void prefix_text(const struct ip_prefix *p, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, addr, sizeof(addr));
	snprintf(buf, size, "%s/%u", addr, p->len);
}

json_t *cli_route_json(const struct config *cfg, const struct plan_route *route,
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

json_t *cli_routes_json(const struct config *cfg, const struct plan *plan,
			const uint32_t *ifindexes, int vnet)
{
	json_t *routes = json_array();

	for (size_t r = 0; r < plan->n_routes; r++)
		if (plan->routes[r].src_vnet == (uint32_t)vnet)
			json_array_append_new(routes, cli_route_json(cfg, &plan->routes[r], ifindexes));
	return routes;
}

json_t *cli_nic_routes_json(const struct config *cfg, const struct plan *plan,
			    const uint32_t *ifindexes, int nic)
{
	const struct config_nic *n = &cfg->nics[nic];
	int subnet = vnet_has_subnet_scopes(cfg, (uint32_t)n->vnet) ? n->subnet : CONFIG_NONE;
	json_t *routes = json_array();

	for (size_t r = 0; r < plan->n_routes; r++)
		if (plan->routes[r].src_vnet == (uint32_t)n->vnet && plan->routes[r].subnet == subnet)
			json_array_append_new(routes, cli_route_json(cfg, &plan->routes[r], ifindexes));
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
void cli_routes_table(FILE *out, json_t *routes)
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

json_t *cli_peerings_json(const struct config *cfg, int vnet)
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

void cli_peerings_table(FILE *out, json_t *peerings)
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

/* --strict: a config using what the gateway accepts but does not enforce (each use
 * warned of by the reader) is refused. */
int cli_load_config(const char *path, bool strict, struct config **cfg)
{
	int rc = config_load(path, stderr, cfg);

	if (rc == -ENOMEM) /* config_load reports every other failure itself */
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-rc));
	else if (rc > 0)
		fprintf(stderr, "%s: %d problem%s; nothing was changed\n", path, rc, rc == 1 ? "" : "s");
	if (rc || !strict || !(*cfg)->n_unenforced)
		return rc;
	rc = (int)(*cfg)->n_unenforced;
	fprintf(stderr, "%s: %d propert%s accepted but not enforced (above); --strict refuses "
		"them; nothing was changed\n", path, rc, rc == 1 ? "y" : "ies");
	config_free(*cfg);
	*cfg = NULL;
	return rc;
}

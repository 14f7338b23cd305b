#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include "cli.h"
#include "gateway_name.h"

void cli_option_error(const char *command, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		fprintf(stderr, "vnet-xdp %s: option '%s' needs a value\n", command, arg);
	else
		fprintf(stderr, "vnet-xdp %s: unknown or misplaced option '%s'\n", command, arg);
}

static int table_usage(const char *command)
{
	fprintf(stderr, "usage: vnet-xdp %s [-n NAME] [-j] [--gc]\n", command);
	return 2;
}

int cli_table_options(const char *command, int argc, char **argv, struct table_options *o)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "gc", no_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct table_options){ 0 };
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:j", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o->name = optarg; break;
		case 'j': o->json = true; break;
		case 'g': o->gc = true; break;
		default:
			cli_option_error(command, c, argv);
			return table_usage(command);
		}
	}
	if (optind < argc)
		return table_usage(command);
	return gateway_name_check(command, o->name) ? 2 : 0;
}

static void prefix_text(const struct ip_prefix *p, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, addr, sizeof(addr));
	snprintf(buf, size, "%s/%u", addr, p->len);
}

json_t *cli_routes_json(const struct config *cfg, const struct plan *plan,
			const uint32_t *ifindexes, int vnet)
{
	json_t *routes = json_array();

	for (size_t r = 0; r < plan->n_routes; r++) {
		const struct plan_route *route = &plan->routes[r];
		char prefix[64], egress[IF_NAMESIZE] = "";
		json_t *o_route;

		if (route->src_vnet != (uint32_t)vnet)
			continue;
		prefix_text(&route->prefix, prefix, sizeof(prefix));
		for (size_t i = 0; i < cfg->n_ifaces; i++)
			if (ifindexes[i] == route->info.egress_ifindex && route->info.egress_ifindex)
				snprintf(egress, sizeof(egress), "%s", cfg->ifaces[i].name);
		o_route = json_pack("{s:s, s:s, s:s}", "addressPrefix", prefix, "nextHopType",
				    route_type_name(route->info.type), "interface", egress);
		if (route->info.type != ROUTE_NONE)
			json_object_set_new(o_route, "virtualNetwork",
					    json_string(cfg->vnets[route->info.dst_vnet].name));
		json_array_append_new(routes, o_route);
	}
	return routes;
}

static const char *route_field(json_t *route, const char *key)
{
	const char *value = json_string_value(json_object_get(route, key));

	return value && *value ? value : "-";
}

/* Columns as wide as their widest value, header included: next hop types run from None
 * to VirtualNetworkServiceEndpoint, prefixes to 43 characters. */
void cli_routes_table(FILE *out, json_t *routes)
{
	static const char *const keys[] = { "addressPrefix", "nextHopType", "virtualNetwork",
					    "interface" };
	static const char *const headers[] = { "ADDRESS PREFIX", "NEXT HOP", "VNET",
					       "INTERFACE" };
	int widths[4];
	size_t i;
	json_t *it;

	for (int c = 0; c < 4; c++)
		widths[c] = (int)strlen(headers[c]);
	json_array_foreach(routes, i, it)
		for (int c = 0; c < 4; c++)
			if ((int)strlen(route_field(it, keys[c])) > widths[c])
				widths[c] = (int)strlen(route_field(it, keys[c]));
	fprintf(out, "%-*s  %-*s  %-*s  %s\n", widths[0], headers[0], widths[1], headers[1],
		widths[2], headers[2], headers[3]);
	json_array_foreach(routes, i, it)
		fprintf(out, "%-*s  %-*s  %-*s  %s\n", widths[0], route_field(it, keys[0]),
			widths[1], route_field(it, keys[1]), widths[2], route_field(it, keys[2]),
			route_field(it, keys[3]));
}

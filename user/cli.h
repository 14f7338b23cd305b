/* What the subcommands share at the command-line edge. */
#ifndef VNET_XDP_CLI_H
#define VNET_XDP_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "config.h"
#include "plan.h"

/* One line for an option getopt_long refused. Option strings start with ':' so that a
 * missing value (c == ':') and an unknown option (c == '?') are told apart. */
void cli_option_error(const char *command, int c, char **argv);

/* After a usage error: where the command's options are told ("vnet-xdp help COMMAND"),
 * or with NULL the list of commands. */
void cli_usage_hint(const char *command);

/* The options of the commands that list a table of the datapath's state (flows, snat):
 * [-n NAME] [-j] [--gc]. Returns 0, or 2 (usage) after saying what is wrong. */
struct table_options {
	const char *name;
	bool json, gc;
};
int cli_table_options(const char *command, int argc, char **argv, struct table_options *o);

/* `vnet-xdp routes`: the effective routes of one VNet in the plan, as
 * [{addressPrefix, nextHopType, interface, virtualNetwork}], and as a table. */
json_t *cli_routes_json(const struct config *cfg, const struct plan *plan,
			const uint32_t *ifindexes, int vnet);
void cli_routes_table(FILE *out, json_t *routes);
/* One route as `routes -j` shows it (subnet, source, state, prefix, next hop, names). */
json_t *cli_route_json(const struct config *cfg, const struct plan_route *route,
		       const uint32_t *ifindexes);

/* Reads and validates a config, saying what is wrong on stderr; with strict, a config
 * using what the gateway accepts but does not enforce is refused too. Returns 0 (and
 * *cfg), or non-zero with nothing to free. */
int cli_load_config(const char *path, bool strict, struct config **cfg);

#endif

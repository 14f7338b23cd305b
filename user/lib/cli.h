/* What the subcommands share at the command-line edge. */
#ifndef VNET_XDP_CLI_H
#define VNET_XDP_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "config/config.h"
#include "observe/flow_filter.h"
#include "compile/plan.h"

/* Exit codes every command shares (README, "Exit codes"). */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILED = 1,  /* a runtime failure, an invalid config, a gateway that is not up */
	CLI_EXIT_USAGE = 2,   /* the command line itself is wrong */
	CLI_EXIT_DROPPED = 3, /* verify: the datapath would drop the packet */
};

/* -p / --pretty before the command: `-j` output indented, as `ip -p -j` and `bpftool -p`;
 * without it one compact line per document. */
extern bool cli_json_pretty;
/* Prints one `-j` document and its newline on stdout. */
void cli_json_print(json_t *doc);

/* One line for an option getopt_long refused. Option strings start with ':' so that a
 * missing value (c == ':') and an unknown option (c == '?') are told apart. */
void cli_option_error(const char *command, int c, char **argv);

/* After a usage error: where the command's options are told ("vnet-xdp help COMMAND"),
 * or with NULL the list of commands. */
void cli_usage_hint(const char *command);

/* The options of the commands that list a table of the datapath's state (flows, snat):
 * [-n NAME] [-j] [--gc] and the filters of flow_filter.h, --state one of `states` (NULL
 * terminated). Returns 0, or 2 (usage) after saying what is wrong. */
struct table_options {
	const char *name;
	bool json, gc;
	struct flow_filter filter;
};
int cli_table_options(const char *command, int argc, char **argv, const char *const *states,
		      struct table_options *o);
/* A --vnet filter names a VNet of the gateway's running config: 0, or 1 (what the command
 * line names does not exist, as `routes --vnet` says) after one line. */
int cli_filter_vnet_check(const char *command, const char *gateway, const struct flow_filter *f);

/* `vnet-xdp routes`: the effective routes of one VNet in the plan, as
 * [{addressPrefix, nextHopType, interface, virtualNetwork}], and as a table. */
json_t *cli_routes_json(const struct config *cfg, const struct plan *plan,
			const uint32_t *ifindexes, int vnet);
/* The effective routes of NIC nic: its subnet's (the VNet's where the subnet has no scope
 * of its own), in the shape of cli_routes_json. */
json_t *cli_nic_routes_json(const struct config *cfg, const struct plan *plan,
			    const uint32_t *ifindexes, int nic);
void cli_routes_table(FILE *out, json_t *routes);
/* One route as `routes -j` shows it (subnet, source, state, prefix, next hop, names). */
json_t *cli_route_json(const struct config *cfg, const struct plan_route *route,
		       const uint32_t *ifindexes);

/* The peerings of VNet vnet (CONFIG_NONE: of every VNet) as Azure shows them, with its
 * peeringState, the flags, and where traffic flows: trafficToRemote (the remote side
 * allows access) and trafficFromRemote (this side does), only when Connected. */
json_t *cli_peerings_json(const struct config *cfg, int vnet);
void cli_peerings_table(FILE *out, json_t *peerings);

/* Reads and validates a config, saying what is wrong on stderr; with strict, a config
 * using what the gateway accepts but does not enforce is refused too. Returns 0 (and
 * *cfg), or non-zero with nothing to free. */
int cli_load_config(const char *path, bool strict, struct config **cfg);

#endif

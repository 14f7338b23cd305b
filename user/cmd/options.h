/* What the commands share at the command line (cmd/options.c). */
#ifndef VNET_XDP_CMD_OPTIONS_H
#define VNET_XDP_CMD_OPTIONS_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include "config/config.h"
#include "observe/flow_filter.h"

/* Before a getopt_long loop over a command's own options and the flow filter's (--state
 * too with with_state): longopts (room for n_own + FLOW_FILTER_COUNT + 1) filled, the
 * filter emptied, getopt reset. */
void cli_filter_options_begin(struct option *longopts, const struct option *own, size_t n_own,
			      bool with_state, struct flow_filter *filter);
/* The gateway -n NAME names (or the only one) into gateway: 0 when its pins exist, else
 * CLI_EXIT_FAILED after one line. */
int cli_gateway_running(const char *name, char *gateway, size_t size);

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

/* Reads and validates a config, saying what is wrong on stderr; with strict, a config
 * using what the gateway accepts but does not enforce is refused too. Returns 0 (and
 * *cfg), or non-zero with nothing to free. */
int cli_load_config(const char *path, bool strict, struct config **cfg);

#endif

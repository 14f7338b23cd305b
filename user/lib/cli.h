/* What the subcommands share at the command-line edge. */
#ifndef VNET_XDP_CLI_H
#define VNET_XDP_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

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

#endif

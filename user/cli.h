/* What the subcommands share at the command-line edge. */
#ifndef VNET_XDP_CLI_H
#define VNET_XDP_CLI_H

/* One line for an option getopt_long refused. Option strings start with ':' so that a
 * missing value (c == ':') and an unknown option (c == '?') are told apart. */
void cli_option_error(const char *command, int c, char **argv);

#endif

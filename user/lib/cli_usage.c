/* The one wording of a refused command line, apart from the rest of the CLI so that
 * what links a command without the datapath (the importer's fuzz target) has it too. */
#include <getopt.h>
#include <stdio.h>
#include "lib/cli.h"

void cli_option_error(const char *command, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		fprintf(stderr, "vnet-xdp %s: option '%s' needs a value\n", command, arg);
	else
		fprintf(stderr, "vnet-xdp %s: unknown or misplaced option '%s'\n", command, arg);
}

void cli_usage_hint(const char *command)
{
	if (command)
		fprintf(stderr, "Try 'vnet-xdp help %s'.\n", command);
	else
		fputs("Try 'vnet-xdp --help'.\n", stderr);
}

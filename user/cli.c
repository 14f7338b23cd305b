#include <getopt.h>
#include <stdio.h>
#include "cli.h"

void cli_option_error(const char *command, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		fprintf(stderr, "vnet-xdp %s: option '%s' needs a value\n", command, arg);
	else
		fprintf(stderr, "vnet-xdp %s: unknown or misplaced option '%s'\n", command, arg);
}

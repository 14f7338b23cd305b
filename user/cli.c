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
	return optind < argc ? table_usage(command) : 0;
}

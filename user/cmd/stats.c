/* `vnet-xdp stats`: the counters as text, JSON or Prometheus exposition. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "cmd/commands.h"
#include "datapath/gateway.h"
#include "lib/cli.h"
#include "lib/gateway_name.h"
#include "lib/log.h"
#include "observe/metrics.h"
#include "observe/stats.h"

int stats_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct { const char *name; bool json, prometheus; } o = { 0 };
	char gateway[128];
	json_t *stats;
	int err, c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:j", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o.name = optarg; break;
		case 'j': o.json = true; break;
		case 'P': o.prometheus = true; break;
		default:
			cli_option_error("stats", c, argv);
			cli_usage_hint("stats");
			return 2;
		}
	}
	if (optind < argc || (o.json && o.prometheus)) {
		if (optind < argc)
			fprintf(stderr, "vnet-xdp stats: unexpected argument '%s'\n", argv[optind]);
		else
			fputs("vnet-xdp stats: -j or --prometheus, not both\n", stderr);
		cli_usage_hint("stats");
		return 2;
	}
	if (gateway_name_check("stats", o.name))
		return 2;
	err = gateway_resolve_name(o.name, gateway, sizeof(gateway));
	if (err) {
		log_error(err == -EEXIST ? "several gateways are up; name one with -n"
					 : "no gateway is up");
		return 1;
	}
	stats = stats_collect(gateway);
	if (!stats) {
		if (errno == ENOENT)
			log_error("gateway %s is not up", gateway);
		else
			log_error("gateway %s: cannot read its counters: %s", gateway, strerror(errno));
		return 1;
	}
	if (o.json) {
		cli_json_print(stats);
	} else if (o.prometheus) {
		metrics_render(stdout, stats);
	} else {
		stats_print_text(stdout, stats);
	}
	json_decref(stats);
	return fflush(stdout) ? 1 : 0;
}

/* `vnet-xdp monitor`: its options parsed, the gateway named, then observe/monitor.c
 * shows the events. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cmd/commands.h"
#include "cmd/options.h"
#include "datapath/datapath.h"
#include "datapath/gateway.h"
#include "lib/cli.h"
#include "lib/gateway_name.h"
#include "lib/log.h"
#include "observe/flow_filter.h"
#include "observe/monitor.h"
#include "vnet_xdp.h"

static const char *const drop_reason_names[] = DROP_REASON_NAMES;

static int monitor_usage(void)
{
	cli_usage_hint("monitor");
	return CLI_EXIT_USAGE;
}

/* --type drop,flow-begin,...: "flow" is both flow events. */
static int types_parse(const char *list, unsigned *types)
{
	char buf[128], *save = NULL, *tok;

	if (strlen(list) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int t = monitor_event_type_of_name(tok);

		if (!strcasecmp(tok, "flow"))
			*types |= 1u << MONITOR_FLOW_BEGIN | 1u << MONITOR_FLOW_END;
		else if (t > 0)
			*types |= 1u << t;
		else
			return -EINVAL;
	}
	return *types ? 0 : -EINVAL;
}

static int reason_of_name(const char *name)
{
	for (int i = 0; i < DROP_REASON_MAX; i++)
		if (!strcmp(name, drop_reason_names[i]))
			return i;
	return -1;
}

enum { OPT_TYPE = 0x200, OPT_REASON, OPT_COUNT, OPT_TIMEOUT, OPT_RATE };
_Static_assert(OPT_TYPE >= FLOW_FILTER_GETOPT(FLOW_FILTER_COUNT), "options overlap");

static int options_parse(int argc, char **argv, struct monitor_options *o)
{
	static const struct option own[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "rate", required_argument, NULL, OPT_RATE },
	};
	struct option longopts[sizeof(own) / sizeof(*own) + FLOW_FILTER_COUNT + 1];
	int err;
	char *end;
	int c;

	*o = (struct monitor_options){ .reason = -1 };
	cli_filter_options_begin(longopts, own, sizeof(own) / sizeof(*own), false, &o->filter);
	while ((c = getopt_long(argc, argv, ":n:j", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o->name = optarg; break;
		case 'j': o->json = true; break;
		case OPT_TYPE:
			if (types_parse(optarg, &o->types)) {
				fprintf(stderr, "vnet-xdp monitor: --type takes drop, flow, flow-begin, "
						"flow-end or snat-exhausted (comma separated), not '%s'\n",
					optarg);
				return monitor_usage();
			}
			break;
		case OPT_REASON:
			o->reason = reason_of_name(optarg);
			if (o->reason < 0) {
				fprintf(stderr, "vnet-xdp monitor: no drop reason is named '%s' (`vnet-xdp "
						"stats` lists them)\n", optarg);
				return monitor_usage();
			}
			break;
		case OPT_COUNT:
			errno = 0;
			o->count = strtol(optarg, &end, 10);
			if (errno || *end || o->count <= 0) {
				fprintf(stderr, "vnet-xdp monitor: --count takes a positive number, not "
						"'%s'\n", optarg);
				return monitor_usage();
			}
			break;
		case OPT_TIMEOUT:
			errno = 0;
			o->timeout = strtod(optarg, &end);
			if (errno || *end || !(o->timeout > 0) || o->timeout > 1e7) {
				fprintf(stderr, "vnet-xdp monitor: --timeout takes seconds (> 0), not "
						"'%s'\n", optarg);
				return monitor_usage();
			}
			break;
		case OPT_RATE: {
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || *optarg == '-' || !v || v > 1000000) {
				fprintf(stderr, "vnet-xdp monitor: --rate takes events per second per "
						"CPU (1 to 1000000), not '%s'\n", optarg);
				return monitor_usage();
			}
			o->rate = (unsigned)v;
			break;
		}
		default:
			err = flow_filter_getopt(&o->filter, "monitor", c, optarg, NULL);
			if (!err)
				break;
			if (err > 0)
				cli_option_error("monitor", c, argv);
			return monitor_usage();
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vnet-xdp monitor: unexpected argument '%s'\n", argv[optind]);
		return monitor_usage();
	}
	if (o->reason >= 0 && !o->types)
		o->types = 1u << MONITOR_DROP | 1u << MONITOR_SNAT_EXHAUSTED;
	return gateway_name_check("monitor", o->name) ? CLI_EXIT_USAGE : 0;
}

int monitor_main(int argc, char **argv)
{
	struct monitor_options o;
	char gateway[128];
	int err;

	err = options_parse(argc, argv, &o);
	if (err)
		return err;
	err = cli_gateway_running(o.name, gateway, sizeof(gateway));
	if (err)
		return err;
	err = cli_filter_vnet_check("monitor", gateway, &o.filter);
	if (err)
		return err;
	return monitor_follow(gateway, &o) ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

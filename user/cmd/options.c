/* What the commands share at the command line: the options of the table commands, the
 * check of a --vnet filter against the running gateway, and reading a config. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "cmd/options.h"
#include "datapath/datapath.h"
#include "datapath/gateway.h"
#include "datapath/state.h"
#include "lib/cli.h"
#include "lib/gateway_name.h"
#include "lib/log.h"

void cli_filter_options_begin(struct option *longopts, const struct option *own, size_t n_own,
			      bool with_state, struct flow_filter *filter)
{
	memcpy(longopts, own, n_own * sizeof(*own));
	flow_filter_longopts(longopts, n_own, with_state);
	flow_filter_init(filter);
	optind = 1;
	opterr = 0;
}

int cli_gateway_running(const char *name, char *gateway, size_t size)
{
	if (gateway_resolve_name(name, gateway, size) || !gateway_pins_exist(gateway)) {
		log_error(name ? "gateway %s is not up" : "no single gateway is up; name one with -n",
			  name);
		return CLI_EXIT_FAILED;
	}
	return 0;
}

static int table_usage(const char *command)
{
	cli_usage_hint(command);
	return CLI_EXIT_USAGE;
}

int cli_table_options(const char *command, int argc, char **argv, const char *const *states,
		      struct table_options *o)
{
	static const struct option own[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "gc", no_argument, NULL, 'g' },
	};
	struct option longopts[sizeof(own) / sizeof(*own) + FLOW_FILTER_COUNT + 1];
	int c, err;

	*o = (struct table_options){ 0 };
	cli_filter_options_begin(longopts, own, sizeof(own) / sizeof(*own), true, &o->filter);
	while ((c = getopt_long(argc, argv, ":n:j", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o->name = optarg; break;
		case 'j': o->json = true; break;
		case 'g': o->gc = true; break;
		default:
			err = flow_filter_getopt(&o->filter, command, c, optarg, states);
			if (!err)
				break;
			if (err > 0)
				cli_option_error(command, c, argv);
			return table_usage(command);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vnet-xdp %s: unexpected argument '%s'\n", command, argv[optind]);
		return table_usage(command);
	}
	return gateway_name_check(command, o->name) ? CLI_EXIT_USAGE : 0;
}

int cli_filter_vnet_check(const char *command, const char *gateway, const struct flow_filter *f)
{
	json_t *state, *vnet;
	bool known = false;
	size_t i;

	if (!f->vnet)
		return 0;
	state = state_load(gateway);
	json_array_foreach(json_object_get(state, "virtualNetworks"), i, vnet)
		known = known || !strcmp(json_string_value(vnet) ?: "", f->vnet);
	json_decref(state);
	if (known)
		return 0;
	fprintf(stderr, "vnet-xdp %s: gateway %s has no virtual network named %s\n", command,
		gateway, f->vnet);
	return CLI_EXIT_FAILED;
}

/* --strict: a config using what the gateway accepts but does not enforce (each use
 * warned of by the reader) is refused. */
int cli_load_config(const char *path, bool strict, struct config **cfg)
{
	int rc = config_load(path, stderr, cfg);

	if (rc == -ENOMEM) /* config_load reports every other failure itself */
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-rc));
	else if (rc > 0)
		fprintf(stderr, "%s: %d problem%s; nothing was changed\n", path, rc, rc == 1 ? "" : "s");
	if (rc || !strict || !(*cfg)->n_unenforced)
		return rc;
	rc = (int)(*cfg)->n_unenforced;
	fprintf(stderr, "%s: %d propert%s accepted but not enforced (above); --strict refuses "
		"them; nothing was changed\n", path, rc, rc == 1 ? "y" : "ies");
	config_free(*cfg);
	*cfg = NULL;
	return rc;
}

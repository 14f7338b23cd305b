/* The vnet-xdp command: one thin function per subcommand over the library. */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "cli.h"
#include "config.h"
#include "gateway.h"
#include "gateway_name.h"
#include "import.h"
#include "log.h"
#include "plan.h"
#include "process.h"
#include "state.h"
#include "serve.h"
#include "snat.h"
#include "stats.h"
#include "verify.h"
#include "flows.h"

#define EXIT_INVALID 1
#define EXIT_USAGE 2

static const char usage_text[] =
	"usage: vnet-xdp [-v] [-p] COMMAND [OPTIONS]   (-p: -j output pretty-printed)\n"
	"  check  -c FILE [--strict]           validate only; exit 0 valid, 1 invalid, 2 usage;\n"
	"                                      --strict: what is not enforced is invalid\n"
	"  import FILE... [-o OUT] [--param NAME=VALUE] [--param-file NAME=PATH]\n"
	"                                      ARM template / REST body / az output -> a config\n"
	"  up     -c FILE [--mode native|generic] [--strict]\n"
	"                                      load, fill maps, attach; all or nothing\n"
	"  reload -c FILE [--strict]           swap to a new config atomically; an invalid one\n"
	"                                      exits 1 and changes nothing\n"
	"  down   [-n NAME]                    detach, unpin, remove what `up` created\n"
	"  status [-n NAME] [-j]               what is attached, program ids, config generation\n"
	"  stats  [-n NAME] [-j | --prometheus]\n"
	"                                      counters\n"
	"  serve  -c FILE [--listen ADDR:PORT] [--textfile DIR]\n"
	"                                      up, then /metrics over HTTP until stopped\n"
	"  routes --vnet NAME [-c FILE] [-j]   effective routes of a VNet\n"
	"  verify --in IFACE --src IP[:PORT] --dst IP[:PORT] --proto tcp|udp|icmp [-j] [--repeat N]\n"
	"                                      run a synthesized packet through the loaded program:\n"
	"                                      verdict, route, the NSG rule of every stage\n"
	"  flows  [-n NAME] [-j] [--gc] [FILTER]\n"
	"                                      the flow table; --gc removes idle flows\n"
	"  snat   [-n NAME] [-j] [--gc] [FILTER]\n"
	"                                      SNAT mappings and per-VIP ports; --gc collects\n"
	"                                      expired mappings first\n"
	"  FILTER: --src/--dst ADDR[/LEN] --sport/--dport PORT --proto P --vnet NAME --state S\n"
	"exit: 0 ok, 1 failed or gateway not up, 2 usage, 3 verify: the packet would be dropped\n";

static int usage(const char *problem)
{
	if (problem)
		fprintf(stderr, "vnet-xdp: %s\n", problem);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

/* Parses the options every command shares; unknown ones are a usage error. */
struct common_options {
	const char *config;
	const char *name;
	const char *vnet;
	const char *mode;
	bool json;
	bool prometheus;
	bool strict;
};

static int parse_options(int argc, char **argv, struct common_options *o, const char *allowed)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'P' },
		{ "vnet", required_argument, NULL, 'V' },
		{ "mode", required_argument, NULL, 'm' },
		{ "strict", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:n:j", longopts, NULL)) != -1) {
		if (c == '?' || c == ':' || !strchr(allowed, c)) {
			cli_option_error(argv[0], c, argv);
			return -1;
		}
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'n': o->name = optarg; break;
		case 'j': o->json = true; break;
		case 'P': o->prometheus = true; break;
		case 'V': o->vnet = optarg; break;
		case 'm': o->mode = optarg; break;
		case 'S': o->strict = true; break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vnet-xdp %s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return -1;
	}
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	struct common_options o = { 0 };
	struct config *cfg;

	if (parse_options(argc, argv, &o, "cS"))
		return usage(NULL);
	if (!o.config)
		return usage("check needs -c FILE");
	if (cli_load_config(o.config, o.strict, &cfg))
		return EXIT_INVALID;
	printf("%s: valid: gateway %s, %zu virtual networks, %zu interfaces", o.config,
	       cfg->gateway_name, cfg->n_vnets, cfg->n_ifaces);
	if (cfg->n_unenforced)
		printf("; %zu propert%s accepted but not enforced (warnings above; --strict "
		       "refuses them)", cfg->n_unenforced, cfg->n_unenforced == 1 ? "y" : "ies");
	putchar('\n');
	config_free(cfg);
	return 0;
}

static int cmd_up(int argc, char **argv)
{
	struct common_options o = { 0 };
	enum xdp_attach_mode mode = XDP_MODE_UNSPEC;
	struct config *cfg;
	int err;

	if (parse_options(argc, argv, &o, "cmS"))
		return usage(NULL);
	if (!o.config)
		return usage("up needs -c FILE");
	if (o.mode && !strcmp(o.mode, "native"))
		mode = XDP_MODE_NATIVE;
	else if (o.mode && (!strcmp(o.mode, "generic") || !strcmp(o.mode, "skb")))
		mode = XDP_MODE_SKB;
	else if (o.mode)
		return usage("--mode is native or generic");
	if (cli_load_config(o.config, o.strict, &cfg))
		return EXIT_INVALID;
	err = gateway_up(cfg, mode);
	if (!err)
		log_info("gateway %s is up", cfg->gateway_name);
	config_free(cfg);
	return err ? EXIT_INVALID : 0;
}

static int cmd_reload(int argc, char **argv)
{
	struct common_options o = { 0 };
	struct config *cfg;
	int err;

	if (parse_options(argc, argv, &o, "cS"))
		return usage(NULL);
	if (!o.config)
		return usage("reload needs -c FILE");
	if (cli_load_config(o.config, o.strict, &cfg))
		return EXIT_INVALID;
	err = gateway_reload(cfg);
	if (!err)
		log_info("gateway %s reloaded from %s", cfg->gateway_name, o.config);
	config_free(cfg);
	return err ? EXIT_INVALID : 0;
}

static int cmd_down(int argc, char **argv)
{
	struct common_options o = { 0 };

	if (parse_options(argc, argv, &o, "n"))
		return usage(NULL);
	if (gateway_name_check("down", o.name))
		return EXIT_USAGE;
	return gateway_down(o.name) ? EXIT_INVALID : 0;
}

static int cmd_status(int argc, char **argv)
{
	struct common_options o = { 0 };

	if (parse_options(argc, argv, &o, "nj"))
		return usage(NULL);
	if (gateway_name_check("status", o.name))
		return EXIT_USAGE;
	return gateway_status(o.name, o.json) ? EXIT_INVALID : 0;
}

/* The effective routes of one VNet: the same plan `up` writes to the maps. */
static int cmd_routes(int argc, char **argv)
{
	struct common_options o = { 0 };
	uint32_t ifindexes[MAX_INTERFACES] = { 0 };
	const char *path = NULL;
	char gateway[128];
	struct config *cfg;
	struct plan plan;
	json_t *state = NULL, *routes;
	int vnet, rc = 0;

	if (parse_options(argc, argv, &o, "cjV") || !o.vnet)
		return usage(o.vnet ? NULL : "routes needs --vnet NAME");
	path = o.config;
	if (!path && !gateway_resolve_name(NULL, gateway, sizeof(gateway))) {
		state = state_load(gateway);
		path = json_string_value(json_object_get(state, "config"));
	}
	if (!path) {
		json_decref(state);
		return usage("no gateway is up: give the config with -c FILE");
	}
	if (cli_load_config(path, false, &cfg)) {
		json_decref(state);
		return EXIT_INVALID;
	}
	json_decref(state);
	vnet = config_find_vnet(cfg, o.vnet);
	if (vnet == CONFIG_NONE) {
		fprintf(stderr, "vnet-xdp routes: no virtual network named %s\n", o.vnet);
		config_free(cfg);
		return EXIT_INVALID;
	}
	for (size_t i = 0; i < cfg->n_ifaces && i < MAX_INTERFACES; i++)
		ifindexes[i] = if_nametoindex(cfg->ifaces[i].name);
	if (plan_build(cfg, ifindexes, &plan)) {
		config_free(cfg);
		return EXIT_INVALID;
	}
	routes = cli_routes_json(cfg, &plan, ifindexes, vnet);
	if (o.json) {
		cli_json_print(routes);
	} else {
		cli_routes_table(stdout, routes);
	}
	json_decref(routes);
	plan_free(&plan);
	config_free(cfg);
	return rc;
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "check", cmd_check },   { "import", import_main }, { "up", cmd_up },
	{ "reload", cmd_reload }, { "down", cmd_down },     { "status", cmd_status },  { "stats", stats_main },
	{ "serve", serve_main },
	{ "routes", cmd_routes },
	{ "verify", verify_main }, { "flows", flows_main },
	{ "snat", snat_main },
};

int main(int argc, char **argv)
{
	int first = 1;

	/* Before any command reads a config or a --param-file: either may hold a key. */
	if (process_forbid_core_dumps())
		log_warn("cannot switch core dumps off: %s", strerror(errno));
	for (; first < argc; first++) {
		if (!strcmp(argv[first], "-v") || !strcmp(argv[first], "--verbose"))
			log_verbose = true;
		else if (!strcmp(argv[first], "-p") || !strcmp(argv[first], "--pretty"))
			cli_json_pretty = true;
		else
			break;
	}
	if (first >= argc)
		return usage("no command given");
	if (!strcmp(argv[first], "-h") || !strcmp(argv[first], "--help") ||
	    !strcmp(argv[first], "help")) {
		fputs(usage_text, stdout);
		return 0;
	}
	log_setup_libraries();
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		if (!strcmp(argv[first], commands[i].name))
			return commands[i].run(argc - first, argv + first);
	fprintf(stderr, "vnet-xdp: unknown command '%s'\n", argv[first]);
	return usage(NULL);
}

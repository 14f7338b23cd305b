/* The vnet-xdp command: one thin function per subcommand over the library. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "datapath/express_route.h"
#include "lib/cli.h"
#include "compile/effective_routes.h"
#include "config/config.h"
#include "compile/effective_rules.h"
#include "datapath/gateway.h"
#include "lib/gateway_name.h"
#include "lib/log.h"
#include "compile/plan.h"
#include "lib/process.h"
#include "datapath/state.h"
#include "cmd/serve.h"
#include "cmd/commands.h"
#include "cmd/options.h"
#include "compile/snat_plan.h"
#include "observe/stats.h"
#include "observe/status.h"
#include "cmd/verify.h"
#include "observe/flows.h"
#include "version.h"

#define EXIT_INVALID 1
#define EXIT_USAGE 2

/* A usage error of a command parsed here: the problem, then where to read more. */
static int usage(const char *command, const char *problem)
{
	if (problem)
		fprintf(stderr, "vnet-xdp: %s\n", problem);
	cli_usage_hint(command);
	return EXIT_USAGE;
}

/* Parses the options every command shares; unknown ones are a usage error. */
struct common_options {
	const char *config;
	const char *name;
	const char *vnet;
	const char *mode;
	const char *nic, *subnet;
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
		{ "nic", required_argument, NULL, 'I' },
		{ "subnet", required_argument, NULL, 'B' },
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
		case 'I': o->nic = optarg; break;
		case 'B': o->subnet = optarg; break;
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
		return usage(argv[0], NULL);
	if (!o.config)
		return usage("check", "check needs -c FILE");
	if (cli_load_config(o.config, o.strict, &cfg))
		return EXIT_INVALID;
	snat_blocks_warn(cfg);
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
		return usage(argv[0], NULL);
	if (!o.config)
		return usage("up", "up needs -c FILE");
	if (o.mode && !strcmp(o.mode, "native"))
		mode = XDP_MODE_NATIVE;
	else if (o.mode && (!strcmp(o.mode, "generic") || !strcmp(o.mode, "skb")))
		mode = XDP_MODE_SKB;
	else if (o.mode)
		return usage("up", "--mode is native or generic");
	if (cli_load_config(o.config, o.strict, &cfg))
		return EXIT_INVALID;
	err = gateway_up(cfg, mode); /* it says what it did */
	config_free(cfg);
	return err ? EXIT_INVALID : 0;
}

static int cmd_reload(int argc, char **argv)
{
	struct common_options o = { 0 };
	struct config *cfg;
	int err;

	if (parse_options(argc, argv, &o, "cS"))
		return usage(argv[0], NULL);
	if (!o.config)
		return usage("reload", "reload needs -c FILE");
	if (cli_load_config(o.config, o.strict, &cfg))
		return EXIT_INVALID;
	err = gateway_reload(cfg); /* it says what it did */
	config_free(cfg);
	return err ? EXIT_INVALID : 0;
}

static int cmd_down(int argc, char **argv)
{
	struct common_options o = { 0 };

	if (parse_options(argc, argv, &o, "n"))
		return usage(argv[0], NULL);
	if (gateway_name_check("down", o.name))
		return EXIT_USAGE;
	return gateway_down(o.name) ? EXIT_INVALID : 0;
}

static int cmd_status(int argc, char **argv)
{
	struct common_options o = { 0 };

	if (parse_options(argc, argv, &o, "nj"))
		return usage(argv[0], NULL);
	if (gateway_name_check("status", o.name))
		return EXIT_USAGE;
	return gateway_status(o.name, o.json) ? EXIT_INVALID : 0;
}


/* -c FILE, or the config the gateway up came up with. An exit code; 0 with *cfg. */
static int load_command_config(const char *command, const char *config, struct config **cfg)
{
	const char *path = config;
	json_t *state = NULL;
	char gateway[128];
	int rc = 0;

	if (!path && !gateway_resolve_name(NULL, gateway, sizeof(gateway))) {
		state = state_load(gateway);
		path = json_string_value(json_object_get(state, "config"));
	}
	if (!path)
		rc = usage(command, "no gateway is up: give the config with -c FILE");
	else if (cli_load_config(path, false, cfg))
		rc = EXIT_INVALID;
	json_decref(state);
	return rc;
}

/* The effective security rules of a NIC or a subnet, from the config alone. */
static int cmd_rules(int argc, char **argv)
{
	struct common_options o = { 0 };
	struct config *cfg;
	int nic = CONFIG_NONE, vnet = CONFIG_NONE, subnet = CONFIG_NONE, rc;
	json_t *doc;

	if (parse_options(argc, argv, &o, "cjIB"))
		return usage("rules", NULL);
	if (!o.nic == !o.subnet)
		return usage("rules", "rules needs --nic NAME or --subnet VNET/SUBNET (one of them)");
	rc = load_command_config("rules", o.config, &cfg);
	if (rc)
		return rc;
	if (o.nic) {
		nic = config_find_nic(cfg, o.nic);
		if (nic == CONFIG_NONE)
			fprintf(stderr, "vnet-xdp rules: no network interface named %s\n", o.nic);
	} else {
		rc = effective_rules_find_subnet(cfg, o.subnet, &vnet, &subnet);
		if (rc == -EEXIST)
			fprintf(stderr, "vnet-xdp rules: several virtual networks have a subnet "
				"named %s; give it as VNET/SUBNET\n", o.subnet);
		else if (rc)
			fprintf(stderr, "vnet-xdp rules: no subnet %s (allowed: VNET/SUBNET, or "
				"SUBNET when one VNet has it)\n", o.subnet);
	}
	if ((o.nic && nic == CONFIG_NONE) || (o.subnet && rc)) {
		config_free(cfg);
		return EXIT_INVALID;
	}
	doc = effective_rules_json(cfg, nic, vnet, subnet);
	if (!doc) {
		fprintf(stderr, "vnet-xdp rules: out of memory\n");
		config_free(cfg);
		return EXIT_INVALID;
	}
	if (o.json)
		cli_json_print(doc);
	else
		effective_rules_text(stdout, doc);
	json_decref(doc);
	config_free(cfg);
	return 0;
}

/* The effective routes of one VNet, or of one NIC (its subnet's, as `az network nic
 * show-effective-route-table` shows them): the same plan `up` writes to the maps. */
static int cmd_routes(int argc, char **argv)
{
	struct common_options o = { 0 };
	uint32_t ifindexes[MAX_INTERFACES] = { 0 };
	struct config *cfg;
	json_t *routes, *as_paths = NULL;
	struct plan plan;
	int vnet, nic = CONFIG_NONE, rc = 0;

	if (parse_options(argc, argv, &o, "cjVI") || !o.vnet == !o.nic)
		return usage("routes", o.vnet && o.nic ? "routes takes --vnet NAME or --nic NAME, not both" :
				       !o.vnet && !o.nic ? "routes needs --vnet NAME or --nic NAME" : NULL);
	rc = load_command_config("routes", o.config, &cfg);
	if (rc)
		return rc;
	if (o.nic) {
		nic = config_find_nic(cfg, o.nic);
		vnet = nic == CONFIG_NONE ? CONFIG_NONE : cfg->nics[nic].vnet;
		if (nic == CONFIG_NONE || vnet == CONFIG_NONE) {
			fprintf(stderr, "vnet-xdp routes: %s %s\n", nic == CONFIG_NONE ?
				"no network interface named" : "no subnet holds network interface", o.nic);
			config_free(cfg);
			return EXIT_INVALID;
		}
	} else {
		vnet = config_find_vnet(cfg, o.vnet);
	}
	if (vnet == CONFIG_NONE) {
		fprintf(stderr, "vnet-xdp routes: no virtual network named %s\n", o.vnet);
		config_free(cfg);
		return EXIT_INVALID;
	}
	for (size_t i = 0; i < cfg->n_ifaces && i < MAX_INTERFACES; i++)
		ifindexes[i] = if_nametoindex(cfg->ifaces[i].name);
	/* with what the ExpressRoute sessions learned, as the datapath routes it */
	if (express_route_plan_build(cfg, ifindexes, &plan, &as_paths)) {
		config_free(cfg);
		return EXIT_INVALID;
	}
	routes = nic == CONFIG_NONE ? effective_routes_json(cfg, &plan, ifindexes, vnet) :
				      effective_nic_routes_json(cfg, &plan, ifindexes, nic);
	if (o.json) {
		cli_json_print(routes);
	} else {
		json_t *peerings = effective_peerings_json(cfg, vnet);

		effective_routes_text(stdout, routes);
		effective_peerings_text(stdout, peerings);
		json_decref(peerings);
	}
	json_decref(routes);
	plan_free(&plan);
	json_decref(as_paths);
	config_free(cfg);
	return rc;
}

static int cmd_help(int argc, char **argv);

/* The conntrack-like filters `flows` and `snat` share (user/observe/flow_filter.c). */
#define ENTRY_FILTER_HELP                                                                  \
	"  --src ADDR[/LEN]           only entries from this address or prefix (the\n" \
	"                             initiator's side)\n" \
	"  --dst ADDR[/LEN]           only entries to this address or prefix\n" \
	"  --sport PORT               only TCP and UDP entries from this port\n" \
	"  --dport PORT               only TCP and UDP entries to this port\n" \
	"  --proto tcp|udp|icmp|icmpv6|N   only entries of this protocol\n" \
	"  --vnet NAME                only entries of this virtual network (either end)\n"

/* The one list of commands: dispatch, `help`, `COMMAND --help` and the bash completion
 * (which reads this help) all come from it; docs/man/ says the same at length and
 * tests/e2e/cli.sh checks that every option below is in its man page and back. */
static const struct command {
	const char *name;
	const char *summary;  /* a line of `vnet-xdp --help` */
	const char *synopsis; /* after "usage: vnet-xdp NAME " */
	const char *options;  /* one "  -x, --long VALUE  what" line per option */
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "check", "validate a config; exit 0 valid, 1 invalid", "-c FILE [--strict]",
	  "  -c, --config FILE          the config to validate\n"
	  "  --strict                   properties accepted but not enforced are invalid\n",
	  cmd_check },
	{ "import", "ARM template / REST body / az output -> a config",
	  "FILE... [-o OUT] [--param NAME=VALUE]... [--param-file NAME=PATH]...",
	  "  FILE '-' is standard input. The config written holds the resources, normalized,\n"
	  "  and a gateway section to fill in (interface names, VPN tunnel addresses). Bicep\n"
	  "  is not read: build it first (az bicep build --file F.bicep).\n"
	  "  -o, --output OUT           write to OUT instead of stdout (mode 0600: it may\n"
	  "                             hold a sharedKey)\n"
	  "  -p, --param NAME=VALUE     set a template parameter (overrides defaultValue);\n"
	  "                             NAME must be one a template among the inputs declares\n"
	  "  --param-file NAME=PATH     the same with the value read from PATH ('-' is stdin;\n"
	  "                             one final line break dropped): a secret stays off\n"
	  "                             the command line\n",
	  import_main },
	{ "up", "load, fill maps, attach; all or nothing",
	  "-c FILE [--mode native|generic] [--strict]",
	  "  -c, --config FILE          the gateway's config\n"
	  "  --mode native|generic      attach in this XDP mode on every interface (default:\n"
	  "                             native where the driver has it, else generic)\n"
	  "  --strict                   refuse a config with properties not enforced\n",
	  cmd_up },
	{ "reload", "swap to a new config atomically; an invalid one changes nothing",
	  "-c FILE [--strict]",
	  "  -c, --config FILE          the new config of a gateway that is up\n"
	  "  --strict                   refuse a config with properties not enforced\n",
	  cmd_reload },
	{ "down", "detach, unpin, remove what `up` created", "[-n NAME]",
	  "  -n, --name NAME            the gateway (default: the only one up)\n", cmd_down },
	{ "status", "what is attached, program ids, config generation", "[-n NAME] [-j]",
	  "  -n, --name NAME            the gateway (default: every one up)\n"
	  "  -j, --json                 JSON instead of text\n",
	  cmd_status },
	{ "stats", "counters: per drop reason, per peering, map fill", "[-n NAME] [-j | --prometheus]",
	  "  -n, --name NAME            the gateway (default: the only one up)\n"
	  "  -j, --json                 JSON instead of text\n"
	  "  --prometheus               Prometheus text exposition format\n",
	  stats_main },
	{ "serve", "up, then /metrics over HTTP until stopped; SIGHUP reloads",
	  "[-c FILE] [--listen ADDR:PORT] [--textfile DIR] [-n NAME] [--strict] [--down-on-stop]",
	  "  -c, --config FILE          bring this config up first (without: export the\n"
	  "                             gateway already up)\n"
	  "  -n, --name NAME            the gateway to export when there is no -c\n"
	  "  --listen ADDR:PORT         serve /metrics here (ADDR:PORT, [IPV6]:PORT, :PORT)\n"
	  "  --textfile DIR             also write DIR/vnet_xdp.prom (node_exporter)\n"
	  "  --strict                   refuse a config with properties not enforced\n"
	  "  --down-on-stop             take the gateway down on SIGTERM (default: it keeps\n"
	  "                             forwarding)\n"
	  "  SIGHUP reloads the config (-c FILE, else the one the gateway came up with).\n",
	  serve_main },
	{ "routes", "effective routes of a VNet, per subnet, or of a NIC",
	  "--vnet NAME | --nic NAME [-c FILE] [-j]",
	  "  --vnet NAME                the virtual network\n"
	  "  --nic NAME                 the network interface: its subnet's routes, as az\n"
	  "                             network nic show-effective-route-table shows them\n"
	  "  -c, --config FILE          read this config (default: the one of the gateway up)\n"
	  "  -j, --json                 JSON instead of a table\n",
	  cmd_routes },
	{ "rules", "effective security rules of a NIC or subnet, in evaluation order",
	  "--nic NAME | --subnet VNET/SUBNET [-c FILE] [-j]",
	  "  --nic NAME                 the network interface: its subnet's NSG and its own\n"
	  "  --subnet VNET/SUBNET       the subnet (SUBNET alone when one VNet has it)\n"
	  "  -c, --config FILE          read this config (default: the one of the gateway up)\n"
	  "  -j, --json                 JSON as az network nic list-effective-nsg writes it\n"
	  "  Tags and application security groups are expanded to their prefixes.\n",
	  cmd_rules },
	{ "verify", "run a synthesized packet through the loaded program",
	  "--in IFACE --src IP[:PORT] --dst IP[:PORT] --proto tcp|udp|icmp [-n NAME] [-j] "
	  "[--repeat N]",
	  "  --in IFACE                 the interface the packet arrives on\n"
	  "  --src IP[:PORT]            its source (IPv6 with a port: [ADDR]:PORT)\n"
	  "  --dst IP[:PORT]            its destination\n"
	  "  --proto tcp|udp|icmp       its protocol\n"
	  "  -n, --name NAME            the gateway (default: the only one up)\n"
	  "  -j, --json                 JSON instead of text\n"
	  "  --repeat N                 run the packet N more times and print the mean time\n"
	  "                             per run (the dry run writes no flow)\n"
	  "  Exit status 3: the packet would be dropped (0: it would pass).\n",
	  verify_main },
	{ "clients", "point-to-site clients connected: identity, address, since, bytes",
	  "[-n NAME] [-j]",
	  "  -n, --name NAME            the gateway (default: the only one up)\n"
	  "  -j, --json                 JSON instead of a table\n"
	  "  A client whose certificate is revoked is disconnected first.\n",
	  clients_main },
	{ "flows", "the NSG flow table", "[-n NAME] [-j] [--gc] [FILTER...]",
	  "  -n, --name NAME            the gateway (default: the only one up)\n"
	  "  -j, --json                 JSON instead of a table\n"
	  "  --gc                       remove idle flows first\n"
	  ENTRY_FILTER_HELP
	  "  --state STATE              only entries in this state: active, expired, opening,\n"
	  "                             established, closing, closed\n",
	  flows_main },
	{ "snat", "SNAT mappings and per-VIP ports", "[-n NAME] [-j] [--gc] [FILTER...]",
	  "  -n, --name NAME            the gateway (default: the only one up)\n"
	  "  -j, --json                 JSON instead of a table\n"
	  "  --gc                       collect expired mappings first\n"
	  ENTRY_FILTER_HELP
	  "  --state STATE              only mappings in this state: active, expired, opening,\n"
	  "                             established, closing\n",
	  snat_main },
	{ "monitor", "live drops, flows and SNAT exhaustion from the datapath",
	  "[-n NAME] [-j] [--type TYPES] [--reason REASON] [--count N] [--timeout S] "
	  "[--rate N] [FILTER...]",
	  "  -n, --name NAME            the gateway (default: the only one up)\n"
	  "  -j, --json                 one JSON document per line instead of text\n"
	  "  --type TYPES               only these events, comma separated: drop, flow\n"
	  "                             (flow-begin and flow-end), snat-exhausted\n"
	  "  --reason REASON            only drops of this reason (as `stats` names them)\n"
	  "  --count N                  exit after N events\n"
	  "  --timeout S                exit after S seconds\n"
	  "  --rate N                   at most N events per second per CPU (default 20000);\n"
	  "                             what the bound leaves out is counted and said at exit\n"
	  ENTRY_FILTER_HELP
	  "  The datapath writes events only while a monitor runs; one monitor per gateway.\n",
	  monitor_main },
	{ "help", "a command's options", "[COMMAND]", "", cmd_help },
};

enum { N_COMMANDS = sizeof(commands) / sizeof(*commands) };

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

static void command_usage(const struct command *c)
{
	printf("usage: vnet-xdp %s %s\n\n%c%s.\n\n%s", c->name, c->synopsis,
	       toupper((unsigned char)c->summary[0]), c->summary + 1, c->options);
}

static void global_usage(void)
{
	fputs("usage: vnet-xdp [-v] [-p] COMMAND [OPTIONS]\n"
	      "       vnet-xdp help COMMAND | vnet-xdp COMMAND --help\n"
	      "       vnet-xdp --version\n"
	      "\nCommands:\n", stdout);
	for (size_t i = 0; i < N_COMMANDS; i++)
		printf("  %-8s %s\n", commands[i].name, commands[i].summary);
	fputs("\nOptions:\n"
	      "  -v, --verbose              debug messages, libbpf's and libxdp's included\n"
	      "  -p, --pretty               indent -j output (default: one compact line)\n"
	      "  -h, --help                 this text\n"
	      "  --version                  the version\n"
	      "\nExit status: 0 done, 1 failed (a gateway not up included), 2 usage error,\n"
	      "3 verify: the packet would be dropped. Manual: vnet-xdp(8) and\n"
	      "vnet-xdp-COMMAND(8).\n", stdout);
}

static int cmd_help(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		global_usage();
		return 0;
	}
	c = command_find(argv[1]);
	if (!c || argc > 2) {
		fprintf(stderr, c ? "vnet-xdp help: one command at a time\n"
				  : "vnet-xdp help: unknown command '%s'\n", argv[1]);
		cli_usage_hint(NULL);
		return EXIT_USAGE;
	}
	command_usage(c);
	return 0;
}

/* -h or --help anywhere among a command's arguments asks for its usage, not its work. */
static bool asks_for_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	const struct command *c;
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
	if (first >= argc) {
		fputs("vnet-xdp: no command given\n", stderr);
		cli_usage_hint(NULL);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[first], "-h") || !strcmp(argv[first], "--help")) {
		global_usage();
		return 0;
	}
	if (!strcmp(argv[first], "--version")) {
		printf("vnet-xdp %s\n", VNET_XDP_VERSION);
		return 0;
	}
	c = command_find(argv[first]);
	if (!c) {
		fprintf(stderr, "vnet-xdp: unknown %s '%s'\n",
			argv[first][0] == '-' ? "option" : "command", argv[first]);
		cli_usage_hint(NULL);
		return EXIT_USAGE;
	}
	if (asks_for_help(argc - first, argv + first)) {
		command_usage(c);
		return 0;
	}
	log_setup_libraries();
	return c->run(argc - first, argv + first);
}

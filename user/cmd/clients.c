/* `vnet-xdp clients`: the point-to-site clients charon has connected, with what the
 * datapath counted of each, as a table or JSON. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "cmd/commands.h"
#include "datapath/gateway.h"
#include "datapath/state.h"
#include "lib/cli.h"
#include "lib/gateway_name.h"
#include "lib/log.h"
#include "lib/vici.h"
#include "datapath/vpn_clients.h"

static void clients_print(FILE *out, json_t *clients)
{
	json_t *c;
	size_t i;

	fprintf(out, "%-16s %-15s %-20s %-40s %12s %12s\n", "GATEWAY", "ADDRESS", "SINCE",
		"IDENTITY", "BYTES IN", "BYTES OUT");
	json_array_foreach(clients, i, c) {
		time_t since = (time_t)json_integer_value(json_object_get(c, "since"));
		char when[32];

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&since));
		fprintf(out, "%-16s %-15s %-20s %-40s %12lld %12lld\n",
			json_string_value(json_object_get(c, "gateway")),
			json_string_value(json_object_get(c, "address")), when,
			json_string_value(json_object_get(c, "identity")),
			(long long)json_integer_value(json_object_get(c, "bytesIn")),
			(long long)json_integer_value(json_object_get(c, "bytesOut")));
	}
	if (!json_array_size(clients))
		fprintf(out, "no point-to-site client is connected\n");
}

int clients_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL;
	char gateway[128];
	json_t *state, *clients, *checked;
	bool json = false;
	int err, c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:j", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'j': json = true; break;
		default:
			cli_option_error("clients", c, argv);
			cli_usage_hint("clients");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vnet-xdp clients: unexpected argument '%s'\n", argv[optind]);
		cli_usage_hint("clients");
		return 2;
	}
	if (gateway_name_check("clients", name))
		return 2;
	err = gateway_resolve_name(name, gateway, sizeof(gateway));
	if (err) {
		log_error(err == -EEXIST ? "several gateways are up; name one with -n"
					 : "no gateway is up");
		return 1;
	}
	state = state_load(gateway);
	if (!state) {
		log_error("gateway %s is not up", gateway);
		return 1;
	}
	/* A revoked client that serve has not seen yet is not listed as connected, and the
	 * counters of clients gone are not taken for those of a new client. */
	checked = json_object();
	vpn_clients_refuse_revoked(state, checked);
	json_decref(checked);
	vpn_clients_forget_gone(gateway, state);
	clients = vpn_clients_list(state);
	if (!clients) {
		json_decref(state);
		log_error("cannot reach charon at %s", vici_socket_path());
		return 1;
	}
	err = vpn_clients_count(gateway, state, clients);
	json_decref(state);
	if (err) {
		json_decref(clients);
		log_error("cannot read the clients' counters of gateway %s: %s", gateway,
			  strerror(-err));
		return 1;
	}
	if (json)
		cli_json_print(clients);
	else
		clients_print(stdout, clients);
	json_decref(clients);
	return fflush(stdout) ? 1 : 0;
}

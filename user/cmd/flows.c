/* `vnet-xdp flows`: the flow table, filtered, optionally after a GC pass. */
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "cmd/commands.h"
#include "cmd/options.h"
#include "datapath/datapath.h"
#include "datapath/gateway.h"
#include "lib/cli.h"
#include "lib/lock.h"
#include "lib/log.h"
#include "observe/flows.h"

int flows_main(int argc, char **argv)
{
	struct table_options o;
	char gateway[128];
	json_t *list, *it;
	size_t i;
	int err;

	err = cli_table_options("flows", argc, argv, flow_states, &o);
	if (err)
		return err;
	err = cli_gateway_running(o.name, gateway, sizeof(gateway));
	if (err)
		return err;
	err = cli_filter_vnet_check("flows", gateway, &o.filter);
	if (err)
		return err;
	if (o.gc) {
		int lock = gateway_lock(gateway, GATEWAY_LOCK_WAIT_MS);
		long removed = lock < 0 ? lock : flows_gc(gateway, NULL, NULL);

		gateway_unlock(lock);
		if (lock < 0)
			return 1;
		if (removed < 0) {
			log_error("cannot collect idle flows: %s", strerror((int)-removed));
			return 1;
		}
		log_info("removed %ld idle flows", removed);
	}
	list = flows_list(gateway, &o.filter);
	if (o.json) {
		cli_json_print(list);
	} else {
		printf("%-6s %-42s %-42s %-12s %6s %6s %10s %10s\n", "PROTO", "SOURCE", "DESTINATION",
		       "STATE", "AGE", "IDLE", "PKTS FWD", "PKTS REV");
		json_array_foreach(list, i, it)
			printf("%-6s %-42s %-42s %-12s %6lld %6lld %10lld %10lld\n",
			       json_string_value(json_object_get(it, "protocol")),
			       json_string_value(json_object_get(it, "source")),
			       json_string_value(json_object_get(it, "destination")),
			       json_string_value(json_object_get(it, "state")),
			       json_integer_value(json_object_get(it, "ageSeconds")),
			       json_integer_value(json_object_get(it, "idleSeconds")),
			       json_integer_value(json_object_get(it, "packetsForward")),
			       json_integer_value(json_object_get(it, "packetsReverse")));
	}
	json_decref(list);
	return 0;
}

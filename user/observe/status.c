/* `vnet-xdp status`: each gateway's generation, config, interfaces and what is attached,
 * its tunnels, BGP peers and peerings, as text or JSON. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "compile/effective_routes.h"
#include "datapath/attach.h"
#include "datapath/bgp.h"
#include "datapath/datapath.h"
#include "datapath/state.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "observe/status.h"
#include "observe/tunnel_stats.h"

static json_t *status_of(const char *gateway)
{
	char pin_dir[256];
	json_t *state = state_load(gateway), *out = json_object(), *ifaces = json_array(), *it;
	size_t i;

	gateway_pin_dir(gateway, pin_dir, sizeof(pin_dir));
	json_object_set_new(out, "gateway", json_string(gateway));
	json_object_set_new(out, "pinDir", json_string(pin_dir));
	if (state) {
		json_object_set(out, "config", json_object_get(state, "config"));
		json_object_set(out, "generation", json_object_get(state, "generation"));
		if (json_object_get(state, "upInProgress"))
			json_object_set_new(out, "incomplete", json_true());
		json_object_set(out, "networkNamespace", json_object_get(state, "networkNamespace"));
	}
	if (!state_in_this_netns(state)) {
		/* Its ifindexes name other interfaces here: what is attached is not ours to say. */
		json_object_set_new(out, "inThisNetworkNamespace", json_false());
		if (state_netns_gone(state))
			json_object_set_new(out, "networkNamespaceGone", json_true());
		json_object_set_new(out, "interfaces", ifaces);
		json_decref(state);
		return out;
	}
	json_object_set_new(out, "inThisNetworkNamespace", json_true());
	json_object_set_new(out, "tunnels", tunnel_status(state));
	json_object_set_new(out, "bgpPeers", bgp_peers(gateway));
	json_object_set(out, "virtualNetworkPeerings",
			json_object_get(state, "virtualNetworkPeerings") ?: json_array());
	json_array_foreach(json_object_get(state, "interfaces"), i, it) {
		uint32_t ifindex = json_integer_value(json_object_get(it, "ifindex")), id = 0;
		const char *mode;
		bool attached;
		json_t *o = json_deep_copy(it);

		json_object_del(o, "mode");
		json_object_del(o, "programId");
		if (xdp_attached_program(pin_dir, ifindex, &id, &attached, &mode) == 0) {
			json_object_set_new(o, "programId", json_integer(id));
			json_object_set_new(o, "attached", json_boolean(attached));
			json_object_set_new(o, "mode", json_string(mode));
		} else {
			json_object_set_new(o, "attached", json_false());
		}
		json_array_append_new(ifaces, o);
	}
	json_object_set_new(out, "interfaces", ifaces);
	json_decref(state);
	return out;
}

int gateway_status(const char *name, bool as_json)
{
	json_t *all = json_array(), *g, *it;
	char **names;
	size_t count, i, j;

	gateway_names(&names, &count);
	for (i = 0; i < count; i++)
		if (!name || !strcmp(name, names[i]))
			json_array_append_new(all, status_of(names[i]));
	state_names_free(names);

	if (name && json_array_size(all) == 0) {
		/* Asked about one gateway: its absence is the answer, and an error. */
		log_error("gateway %s is not up", name);
		json_decref(all);
		return -ENOENT;
	}
	if (as_json) {
		cli_json_print(all);
	} else if (json_array_size(all) == 0) {
		printf("no gateway is up\n");
	}
	json_array_foreach(all, i, g) {
		if (as_json)
			break;
		printf("gateway %s  generation %lld  config %s\n",
		       json_string_value(json_object_get(g, "gateway")),
		       json_integer_value(json_object_get(g, "generation")),
		       json_string_value(json_object_get(g, "config")) ?: "-");
		if (!json_is_true(json_object_get(g, "inThisNetworkNamespace")))
			printf("  in network namespace %s, not this one: run status there to see "
			       "its interfaces\n",
			       json_string_value(json_object_get(g, "networkNamespace")));
		if (json_is_true(json_object_get(g, "incomplete")))
			printf("  INCOMPLETE: an `up` was interrupted; `vnet-xdp up` finishes it, "
			       "`vnet-xdp down` removes it\n");
		json_array_foreach(json_object_get(g, "interfaces"), j, it) {
			const char *vnet = json_string_value(json_object_get(it, "virtualNetwork"));
			const char *subnet = json_string_value(json_object_get(it, "subnet"));

			printf("  %-16s %-7s %-8s prog %-6lld %s%s%s%s\n",
			       json_string_value(json_object_get(it, "name")),
			       json_string_value(json_object_get(it, "role")),
			       json_is_true(json_object_get(it, "attached")) ?
				       json_string_value(json_object_get(it, "mode")) : "DETACHED",
			       json_integer_value(json_object_get(it, "programId")),
			       vnet ? "vnet " : "", vnet ? vnet : "", subnet ? "/" : "",
			       subnet ? subnet : "");
		}
		tunnel_status_print(stdout, json_object_get(g, "tunnels"));
		effective_peerings_text(stdout, json_object_get(g, "virtualNetworkPeerings"));
	}
	json_decref(all);
	return 0;
}

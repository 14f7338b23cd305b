#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include "cmd/options.h"
#include "lib/cli.h"
#include "datapath/datapath.h"
#include "datapath/gateway.h"
#include "lib/lock.h"
#include "lib/bpf_map.h"
#include "lib/log.h"
#include "compile/plan.h"
#include "datapath/snat.h"
#include "observe/snat_stats.h"
#include "datapath/state.h"

/* ---- `vnet-xdp snat` ------------------------------------------------------------------------ */

struct list_walk {
	json_t *list;
	uint64_t now;
	json_t *vnets; /* the state's virtualNetworks: names by index */
	const struct flow_filter *filter;
};

/* What --state matches: an expired mapping is expired whatever its TCP state. */
static const char *const mapping_states[] = { "active", "expired", "opening", "established",
					      "closing", NULL };

static const char *tcp_state_name(const struct snat_flow_key *key, const struct snat_mapping *m)
{
	if (key->proto != IPPROTO_TCP)
		return "-";
	switch (m->tcp_state) {
	case SNAT_TCP_OPENING: return "opening";
	case SNAT_TCP_ESTABLISHED: return "established";
	default: return "closing";
	}
}

static int list_mapping(const void *key, const void *value, void *ctx)
{
	const struct snat_flow_key *k = key;
	const struct snat_mapping *m = value;
	struct list_walk *w = ctx;
	int family = k->family == AF_INET ? AF_INET : AF_INET6;
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], vip[INET6_ADDRSTRLEN];
	int64_t idle = (int64_t)(clock_age_ns(w->now, m->last_seen_ns) / NS_PER_SECOND);

	bool expired = snat_mapping_expired(m, k->proto, w->now), ports = k->proto == IPPROTO_TCP ||
							       k->proto == IPPROTO_UDP;
	const char *vnet = json_string_value(json_array_get(w->vnets, m->vnet));
	struct flow_filter_entry e = {
		.family = (uint8_t)family, .proto = k->proto, .src = k->src, .dst = k->dst,
		.sport = ports ? ntohs(k->src_port) : -1, .dport = ports ? ntohs(k->dst_port) : -1,
		.vnets = { vnet }, .state = expired ? "expired" : k->proto == IPPROTO_TCP ?
							tcp_state_name(k, m) : "active",
	};
	json_t *mapping;

	if (!flow_filter_match(w->filter, &e))
		return 0;
	inet_ntop(family, k->src, src, sizeof(src));
	inet_ntop(family, k->dst, dst, sizeof(dst));
	inet_ntop(family, m->vip, vip, sizeof(vip));
	mapping = json_pack("{s:s, s:s, s:i, s:s, s:i, s:s, s:i, s:s, s:s, s:I, s:b}",
		"protocol", flow_protocol_name(k->proto) ?: "other", "source", src, "sourcePort", ntohs(k->src_port),
		"destination", dst, "destinationPort", ntohs(k->dst_port), "vip", vip,
		"vipPort", ntohs(m->vip_port), "tcpState", tcp_state_name(k, m), "state", e.state,
		"idleSeconds", (json_int_t)idle, "expired", expired);
	if (vnet)
		json_object_set_new(mapping, "virtualNetwork", json_string(vnet));
	json_array_append_new(w->list, mapping);
	return 0;
}

int snat_main(int argc, char **argv)
{
	struct list_walk w = { .now = datapath_clock_ns() };
	struct table_options o;
	char gateway[128];
	json_t *out, *it, *state;
	size_t i;
	int fd, err;

	err = cli_table_options("snat", argc, argv, mapping_states, &o);
	if (err)
		return err;
	err = gateway_resolve_name(o.name, gateway, sizeof(gateway));
	if (err) {
		log_error(err == -EEXIST ? "several gateways are up; name one with -n"
					 : "no gateway is up");
		return 1;
	}
	if (!gateway_pins_exist(gateway)) {
		log_error("gateway %s is not up", gateway);
		return 1;
	}
	err = cli_filter_vnet_check("snat", gateway, &o.filter);
	if (err)
		return err;
	out = json_object();
	if (o.gc) {
		struct snat_gc_result r;
		int lock = gateway_lock(gateway, GATEWAY_LOCK_WAIT_MS);

		if (lock < 0) {
			json_decref(out);
			return 1;
		}
		err = snat_gc(gateway, w.now, &r);
		gateway_unlock(lock);
		if (err) {
			log_error("gateway %s: SNAT GC failed: %s", gateway, strerror(-err));
			json_decref(out);
			return 1;
		}
		json_object_set_new(out, "gc", json_pack("{s:I, s:I, s:I, s:I, s:I}",
			"mappings", (json_int_t)r.mappings, "mappingsExpired", (json_int_t)r.mappings_expired,
			"reverse", (json_int_t)r.reverse, "reverseReleased", (json_int_t)r.reverse_released,
			"reverseFreed", (json_int_t)r.reverse_freed));
	}
	fd = datapath_map_open(gateway, MAP_snat_mappings);
	if (fd < 0) {
		log_error("gateway %s: cannot open its SNAT mappings: %s", gateway, strerror(-fd));
		json_decref(out);
		return 1;
	}
	w.list = json_array();
	w.filter = &o.filter;
	state = state_load(gateway);
	w.vnets = json_object_get(state, "virtualNetworks");
	map_each_entry(fd, sizeof(struct snat_flow_key), sizeof(struct snat_mapping), list_mapping, &w);
	close(fd);
	json_decref(state);
	json_object_set_new(out, "mappings", w.list);
	json_object_set_new(out, "vips", snat_stats_json(gateway, NULL));
	if (o.json) {
		cli_json_print(out);
	} else {
		json_t *gc = json_object_get(out, "gc");

		if (gc)
			printf("gc: %lld mappings expired, %lld ports released to cool down, %lld freed\n",
			       json_integer_value(json_object_get(gc, "mappingsExpired")),
			       json_integer_value(json_object_get(gc, "reverseReleased")),
			       json_integer_value(json_object_get(gc, "reverseFreed")));
		json_array_foreach(json_object_get(out, "vips"), i, it)
			printf("vip %-20s ports %lld of %lld in use, %lld flows, %lld exhausted\n",
			       json_string_value(json_object_get(it, "vip")),
			       json_integer_value(json_object_get(it, "portsInUse")),
			       json_integer_value(json_object_get(it, "portsTotal")),
			       json_integer_value(json_object_get(it, "flows")),
			       json_integer_value(json_object_get(it, "portExhausted")));
		json_array_foreach(w.list, i, it)
			printf("%-4s %s:%lld -> %s:%lld as %s:%lld %s idle %llds%s\n",
			       json_string_value(json_object_get(it, "protocol")),
			       json_string_value(json_object_get(it, "source")),
			       json_integer_value(json_object_get(it, "sourcePort")),
			       json_string_value(json_object_get(it, "destination")),
			       json_integer_value(json_object_get(it, "destinationPort")),
			       json_string_value(json_object_get(it, "vip")),
			       json_integer_value(json_object_get(it, "vipPort")),
			       json_string_value(json_object_get(it, "tcpState")),
			       json_integer_value(json_object_get(it, "idleSeconds")),
			       json_is_true(json_object_get(it, "expired")) ? " expired" : "");
	}
	json_decref(out);
	return fflush(stdout) ? 1 : 0;
}

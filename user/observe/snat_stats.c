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
#include "lib/cli.h"
#include "datapath/datapath.h"
#include "datapath/gateway.h"
#include "lib/lock.h"
#include "lib/bpf_map.h"
#include "lib/log.h"
#include "compile/plan.h"
#include "datapath/snat.h"
#include "datapath/state.h"

/* ---- gauges and counters ------------------------------------------------------------------ */

struct vip_usage {
	struct address_key vip;
	uint32_t ports_total;
	uint8_t used[65536 / 8];
	uint32_t in_use;
	struct snat_vip_counter counter;
};

struct usage_walk {
	struct vip_usage *vips;
	size_t n;
};

static struct vip_usage *usage_find(struct usage_walk *u, uint8_t family, const uint8_t *addr)
{
	for (size_t i = 0; i < u->n; i++)
		if (u->vips[i].vip.family == family && !memcmp(u->vips[i].vip.addr, addr, 16))
			return &u->vips[i];
	return NULL;
}

static int usage_reverse(const void *key, const void *value, void *ctx)
{
	const struct snat_flow_key *k = key;
	struct vip_usage *v = usage_find(ctx, k->family, k->dst);
	uint16_t port = ntohs(k->dst_port);

	/* A port cooling down is not available either: it counts as in use. */
	if (v && !(v->used[port / 8] & (1u << (port % 8)))) {
		v->used[port / 8] |= 1u << (port % 8);
		v->in_use++;
	}
	return 0;
}

static void address_text(const struct address_key *a, char *buf, size_t size)
{
	inet_ntop(a->family == AF_INET ? AF_INET : AF_INET6, a->addr, buf, size);
}

/* Every VIP the config maps, with its pool's port count and its per-CPU counters
 * summed. */
static void usage_load_vips(const char *gateway, struct usage_walk *u)
{
	int pools = datapath_map_open(gateway, MAP_snat_pools);
	int vips = datapath_map_open(gateway, MAP_snat_vips);
	int counters = datapath_map_open(gateway, MAP_snat_vip_counters);
	struct map_walk walk = MAP_WALK(vips, sizeof(struct address_key));
	struct address_key key;

	while (pools >= 0 && counters >= 0 && map_walk_next(&walk, &key)) {
		struct vip_usage *bigger = realloc(u->vips, (u->n + 1) * sizeof(*u->vips));
		struct snat_pool pool;
		uint32_t pool_id;

		if (!bigger)
			break;
		u->vips = bigger;
		memset(&u->vips[u->n], 0, sizeof(*u->vips));
		u->vips[u->n].vip = key;
		if (!bpf_map_lookup_elem(vips, &key, &pool_id) &&
		    !bpf_map_lookup_elem(pools, &pool_id, &pool))
			u->vips[u->n].ports_total = (uint32_t)pool.port_max - pool.port_min + 1;
		percpu_sum(counters, &key, &u->vips[u->n].counter, sizeof(u->vips[u->n].counter));
		u->n++;
	}
	if (pools >= 0)
		close(pools);
	if (vips >= 0)
		close(vips);
	if (counters >= 0)
		close(counters);
}

json_t *snat_ports_in_use(const char *gateway)
{
	int reverse = datapath_map_open(gateway, MAP_snat_reverse);
	struct usage_walk u = { 0 };
	json_t *out = json_object();

	usage_load_vips(gateway, &u);
	if (reverse >= 0) {
		map_each_entry(reverse, sizeof(struct snat_flow_key), sizeof(struct snat_reverse),
			 usage_reverse, &u);
		close(reverse);
	}
	for (size_t i = 0; i < u.n; i++) {
		char text[INET6_ADDRSTRLEN];

		address_text(&u.vips[i].vip, text, sizeof(text));
		json_object_set_new(out, text, json_integer(u.vips[i].in_use));
	}
	free(u.vips);
	return out;
}

json_t *snat_stats_json(const char *gateway, json_t *ports_in_use)
{
	json_t *counted = ports_in_use ? json_incref(ports_in_use) : snat_ports_in_use(gateway);
	struct usage_walk u = { 0 };
	json_t *out = json_array();

	usage_load_vips(gateway, &u);
	for (size_t i = 0; i < u.n; i++) {
		const struct vip_usage *v = &u.vips[i];
		char text[INET6_ADDRSTRLEN];
		json_t *vip;

		address_text(&v->vip, text, sizeof(text));
		vip = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "vip", text,
				"portsTotal", (json_int_t)v->ports_total,
				"flows", (json_int_t)v->counter.flows,
				"portExhausted", (json_int_t)v->counter.port_exhausted,
				"egressPackets", (json_int_t)v->counter.egress_packets,
				"egressBytes", (json_int_t)v->counter.egress_bytes,
				"ingressPackets", (json_int_t)v->counter.ingress_packets,
				"ingressBytes", (json_int_t)v->counter.ingress_bytes);
		/* A VIP the last count did not know yet has no figure rather than a made-up 0. */
		if (json_object_get(counted, text))
			json_object_set(vip, "portsInUse", json_object_get(counted, text));
		json_array_append_new(out, vip);
	}
	free(u.vips);
	json_decref(counted);
	return out;
}

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "lib/cli.h"
#include "datapath/datapath.h"
#include "observe/flows.h"
#include "datapath/gateway.h"
#include "lib/lock.h"
#include "lib/bpf_map.h"
#include "lib/log.h"
#include "compile/nsg.h"
#include "datapath/nsg_write.h"
#include "datapath/state.h"
#include "observe/stats.h"

static const char *const flow_counter_names[] = FLOW_COUNTER_NAMES;
_Static_assert(sizeof(flow_counter_names) / sizeof(*flow_counter_names) == FLOW_COUNTER_MAX,
	       "a flow counter without a name");

static int settings_read(const char *gateway, struct gateway_settings *s)
{
	int fd = datapath_map_open(gateway, MAP_settings);
	uint32_t zero = 0;

	memset(s, 0, sizeof(*s));
	if (fd < 0)
		return fd;
	bpf_map_lookup_elem(fd, &zero, s);
	close(fd);
	return 0;
}

static uint64_t counter_sum(int fd, uint32_t index)
{
	uint64_t sum;

	return percpu_sum(fd, &index, &sum, sizeof(sum)) ? 0 : sum;
}

/* The tables of the flows, answered ones first (bpf/flow.h). */
static const enum vnet_xdp_map flow_maps[] = { MAP_flows, MAP_new_flows };
#define FLOW_MAPS (sizeof(flow_maps) / sizeof(*flow_maps))

/* What the fast path forwarded under its leases and has not yet added to the flow
 * entries (bpf/fastpath.h), per flow and direction, sorted for flow_add_pending. */
struct pending_count {
	struct flow_key flow;
	uint32_t responder;
	uint64_t packets, bytes, last_seen_ns;
};

static int pending_compare(const void *a, const void *b)
{
	const struct pending_count *x = a, *y = b;
	int c = memcmp(&x->flow, &y->flow, sizeof(x->flow));

	return c ? c : (int)x->responder - (int)y->responder;
}

static const enum vnet_xdp_map fast_path_maps[] = { MAP_fast_paths4, MAP_fast_paths6 };

/* Appends the entries of one fast path map that hold anything pending; false when out of
 * memory. */
static bool pending_counts_append(int fd, struct pending_count **list, size_t *n, size_t *size)
{
	struct map_walk walk = MAP_WALK(fd, sizeof(struct fast_path_key6));
	uint8_t key[sizeof(struct fast_path_key6)];
	struct pending_count *bigger;
	struct fast_path_entry e;

	while (map_walk_next(&walk, key)) {
		if (!bpf_map_lookup_elem(fd, key, &e) && (e.pending_packets || e.last_seen_ns)) {
			if (*n == *size) {
				*size = *size ? 2 * *size : 64;
				bigger = realloc(*list, *size * sizeof(**list));
				if (!bigger)
					return false;
				*list = bigger;
			}
			(*list)[(*n)++] = (struct pending_count){ .flow = e.flow,
				.responder = e.responder & 1, .packets = e.pending_packets,
				.bytes = e.pending_bytes, .last_seen_ns = e.last_seen_ns };
		}
	}
	return true;
}

static size_t pending_counts_load(const char *gateway, struct pending_count **out)
{
	struct pending_count *list = NULL;
	size_t n = 0, size = 0;

	for (size_t i = 0; i < sizeof(fast_path_maps) / sizeof(*fast_path_maps); i++) {
		int fd = datapath_map_open(gateway, fast_path_maps[i]);
		bool ok = fd < 0 || pending_counts_append(fd, &list, &n, &size);

		if (fd >= 0)
			close(fd);
		if (!ok)
			break;
	}
	if (n)
		qsort(list, n, sizeof(*list), pending_compare);
	*out = list;
	return n;
}

/* The flow as it is: its entry plus what waits in the fast path for both directions. */
static void flow_add_pending(const struct flow_key *k, struct flow_entry *f,
			     const struct pending_count *pending, size_t n)
{
	for (uint32_t r = 0; r < 2; r++) {
		struct pending_count want = { .flow = *k, .responder = r };
		const struct pending_count *p = bsearch(&want, pending, n, sizeof(*pending),
							pending_compare);

		/* One direction arriving on two interfaces has two entries: all of them. */
		while (p && p > pending && !pending_compare(p - 1, &want))
			p--;
		for (; p && p < pending + n && !pending_compare(p, &want); p++) {
			f->packets[r] += p->packets;
			f->bytes[r] += p->bytes;
			if (p->last_seen_ns > f->last_seen_ns)
				f->last_seen_ns = p->last_seen_ns;
		}
	}
}

struct flow_removal {
	flow_visit_fn fn;
	void *ctx;
	struct pending_count *pending;
	size_t n_pending;
};

/* Removes one table's expired flows; returns how many went. */
static long flows_gc_map(int flows_fd, const struct gateway_settings *s,
			 const struct flow_removal *report)
{
	struct map_walk walk = MAP_WALK(flows_fd, sizeof(struct flow_key));
	struct flow_key key, *doomed = NULL;
	struct flow_entry entry;
	size_t n_doomed = 0, capacity = 0;
	uint64_t now = datapath_clock_ns();
	long removed = 0;

	/* Collected first: deleting while walking would restart the walk. */
	while (map_walk_next(&walk, &key)) {
		if (!bpf_map_lookup_elem(flows_fd, &key, &entry) &&
		    clock_age_ns(now, entry.last_seen_ns) > flow_timeout_ns(key.proto, entry.tcp_state, s)) {
			if (n_doomed == capacity) {
				struct flow_key *bigger;

				capacity = capacity ? capacity * 2 : 256;
				bigger = realloc(doomed, capacity * sizeof(*doomed));
				if (!bigger)
					break;
				doomed = bigger;
			}
			doomed[n_doomed++] = key;
		}
	}
	for (size_t i = 0; i < n_doomed; i++) {
		/* It may have come back to life since: look again. */
		if (bpf_map_lookup_elem(flows_fd, &doomed[i], &entry) ||
		    clock_age_ns(datapath_clock_ns(), entry.last_seen_ns) <= flow_timeout_ns(doomed[i].proto, entry.tcp_state, s))
			continue;
		if (report->fn) {
			flow_add_pending(&doomed[i], &entry, report->pending, report->n_pending);
			report->fn(report->ctx, &doomed[i], &entry);
		}
		if (!bpf_map_delete_elem(flows_fd, &doomed[i]))
			removed++;
	}
	free(doomed);
	return removed;
}

long flows_gc(const char *gateway, flow_visit_fn on_removed, void *ctx)
{
	struct flow_removal report = { .fn = on_removed, .ctx = ctx };
	struct gateway_settings s;
	long removed = 0;
	int counters_fd;

	if (settings_read(gateway, &s))
		return -ENOENT;
	counters_fd = datapath_map_open(gateway, MAP_flow_counters);
	if (counters_fd < 0)
		return -ENOENT;
	if (on_removed)
		report.n_pending = pending_counts_load(gateway, &report.pending);
	for (size_t i = 0; i < FLOW_MAPS; i++) {
		int fd = datapath_map_open(gateway, flow_maps[i]);

		if (fd < 0) {
			if (i == 0) {
				free(report.pending);
				close(counters_fd);
				return -ENOENT;
			}
			continue; /* a datapath from before new_flows */
		}
		removed += flows_gc_map(fd, &s, &report);
		close(fd);
	}
	free(report.pending);
	if (removed)
		percpu_add(counters_fd, &(uint32_t){ FLOW_GC_REMOVED }, (uint64_t)removed);
	close(counters_fd);
	return removed;
}

/* Entries in a flow table, 0 when it is not there. */
static long long flow_map_entries(const char *gateway, enum vnet_xdp_map map, uint32_t *capacity)
{
	int fd = datapath_map_open(gateway, map);
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	long long n;

	*capacity = 0;
	if (fd < 0)
		return 0;
	n = stats_map_entries(fd);
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		*capacity = info.max_entries;
	close(fd);
	return n > 0 ? n : 0;
}

json_t *flows_stats(const char *gateway)
{
	int counters_fd = datapath_map_open(gateway, MAP_flow_counters);
	uint64_t c[FLOW_COUNTER_MAX], gone;
	uint32_t capacity, new_capacity;
	long long active, unanswered;
	json_t *out;

	if (counters_fd < 0)
		return NULL;
	active = flow_map_entries(gateway, MAP_flows, &capacity);
	if (!capacity) {
		close(counters_fd);
		return NULL;
	}
	unanswered = flow_map_entries(gateway, MAP_new_flows, &new_capacity);
	out = json_pack("{s:I, s:I, s:I, s:I}", "active", (json_int_t)(active + unanswered),
			"capacity", (json_int_t)capacity, "unanswered", (json_int_t)unanswered,
			"unansweredCapacity", (json_int_t)new_capacity);
	for (uint32_t i = 0; i < FLOW_COUNTER_MAX; i++) {
		c[i] = counter_sum(counters_fd, i);
		json_object_set_new(out, flow_counter_names[i], json_integer((json_int_t)c[i]));
	}
	/* What the LRU tables pushed out when full (new flows, unless more flows are answered
	 * than flows holds): every entry made and not accounted for. */
	gone = c[FLOW_EXPIRED] + c[FLOW_DELETED] + c[FLOW_GC_REMOVED] + (uint64_t)(active + unanswered);
	json_object_set_new(out, "evicted",
			    json_integer((json_int_t)(c[FLOW_CREATED] > gone ? c[FLOW_CREATED] - gone : 0)));
	close(counters_fd);
	return out;
}

json_t *nsg_rule_stats(const char *gateway)
{
	struct nsg_ids ids = { 0 };
	int fd = datapath_map_open(gateway, MAP_nsg_rule_counters);
	json_t *out = json_array(), *rule;
	json_int_t generation;
	const char *key;

	if (fd < 0)
		return out;
	nsg_ids_load(gateway, &ids);
	generation = json_integer_value(json_object_get(ids.doc, "generation"));
	json_object_foreach(json_object_get(ids.doc, "rules"), key, rule) {
		uint32_t id = (uint32_t)json_integer_value(json_object_get(rule, "id"));
		struct nsg_rule_counter sum = { 0 };

		if (json_integer_value(json_object_get(rule, "generation")) != generation)
			continue; /* no longer in the config */
		percpu_sum(fd, &id, &sum, sizeof(sum));
		json_array_append_new(out, json_pack("{s:O, s:O, s:O, s:O, s:O, s:I, s:I, s:I}",
			"nsg", json_object_get(rule, "nsg"), "rule", json_object_get(rule, "rule"),
			"direction", json_object_get(rule, "direction"), "access",
			json_object_get(rule, "access"), "priority", json_object_get(rule, "priority"),
			"hits", (json_int_t)sum.hits, "packets", (json_int_t)sum.packets,
			"bytes", (json_int_t)sum.bytes));
	}
	nsg_ids_free(&ids);
	close(fd);
	return out;
}

static const char *const tcp_state_names[] = { "opening", "established", "closing", "closed" };

const char *const flow_states[] = { "active", "expired", "opening", "established",
					   "closing", "closed", NULL };

static const char *flow_state_name(json_t *flow)
{
	if (json_is_true(json_object_get(flow, "expired")))
		return "expired";
	return json_string_value(json_object_get(flow, "tcpState")) ?: "active";
}

static json_t *flow_json(const struct flow_key *k, const struct flow_entry *f,
			 const struct gateway_settings *s, json_t *vnets, uint64_t now)
{
	bool b_first = f->initiator_is_b, ports = k->proto == IPPROTO_TCP || k->proto == IPPROTO_UDP;
	char src[80], dst[80];
	uint16_t src_vnet = b_first ? k->vnet_b : k->vnet_a, dst_vnet = b_first ? k->vnet_a : k->vnet_b;
	uint64_t idle = clock_age_ns(now, f->last_seen_ns);
	json_t *o;

	flow_endpoint_text(k->family, b_first ? k->addr_b : k->addr_a, b_first ? k->port_b : k->port_a,
		      ports, src, sizeof(src));
	flow_endpoint_text(k->family, b_first ? k->addr_a : k->addr_b, b_first ? k->port_a : k->port_b,
		      ports, dst, sizeof(dst));
	o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:I}",
		      "protocol", flow_protocol_name(k->proto) ?: "other", "source", src, "destination", dst,
		      "ageSeconds", (json_int_t)(clock_age_ns(now, f->created_ns) / NS_PER_SECOND),
		      "idleSeconds", (json_int_t)(idle / NS_PER_SECOND),
		      "packetsForward", (json_int_t)f->packets[0], "bytesForward", (json_int_t)f->bytes[0],
		      "packetsReverse", (json_int_t)f->packets[1], "bytesReverse", (json_int_t)f->bytes[1],
		      "expired", idle > flow_timeout_ns(k->proto, f->tcp_state, s), "generation", (json_int_t)f->generation);
	if (k->proto == IPPROTO_TCP && f->tcp_state < 4)
		json_object_set_new(o, "tcpState", json_string(tcp_state_names[f->tcp_state]));
	json_object_set_new(o, "state", json_string(flow_state_name(o)));
	if (src_vnet != NSG_VNET_NONE && json_array_get(vnets, src_vnet))
		json_object_set(o, "sourceVirtualNetwork", json_array_get(vnets, src_vnet));
	if (dst_vnet != NSG_VNET_NONE && json_array_get(vnets, dst_vnet))
		json_object_set(o, "destinationVirtualNetwork", json_array_get(vnets, dst_vnet));
	return o;
}

/* Whether the filters keep the flow; they see the initiator's side as the source. */
static bool flow_kept(const struct flow_filter *filter, const struct flow_key *k,
		      const struct flow_entry *f, json_t *flow)
{
	bool b_first = f->initiator_is_b, ports = k->proto == IPPROTO_TCP || k->proto == IPPROTO_UDP;
	struct flow_filter_entry e = {
		.family = k->family, .proto = k->proto,
		.src = b_first ? k->addr_b : k->addr_a, .dst = b_first ? k->addr_a : k->addr_b,
		.sport = !ports ? -1 : b_first ? k->port_b : k->port_a,
		.dport = !ports ? -1 : b_first ? k->port_a : k->port_b,
		.vnets = { json_string_value(json_object_get(flow, "sourceVirtualNetwork")),
			   json_string_value(json_object_get(flow, "destinationVirtualNetwork")) },
		.state = json_string_value(json_object_get(flow, "state")),
	};

	return flow_filter_match(filter, &e);
}

int flows_foreach(const char *gateway, flow_visit_fn visit, void *ctx)
{
	struct flow_key key;
	struct flow_entry entry;
	struct pending_count *pending = NULL;
	size_t pending_n = pending_counts_load(gateway, &pending);
	int found = 0;

	for (size_t i = 0; i < FLOW_MAPS; i++) {
		int fd = datapath_map_open(gateway, flow_maps[i]);

		found |= fd >= 0;
		struct map_walk walk = MAP_WALK(fd, sizeof(key));

		while (map_walk_next(&walk, &key))
			if (!bpf_map_lookup_elem(fd, &key, &entry)) {
				flow_add_pending(&key, &entry, pending, pending_n);
				visit(ctx, &key, &entry);
			}
		if (fd >= 0)
			close(fd);
	}
	free(pending);
	return found ? 0 : -ENOENT;
}

struct flows_listing {
	const struct flow_filter *filter;
	struct gateway_settings s;
	json_t *vnets, *out;
	uint64_t now;
};

static void flow_listed(void *ctx, const struct flow_key *key, const struct flow_entry *entry)
{
	struct flows_listing *l = ctx;
	json_t *flow = flow_json(key, entry, &l->s, l->vnets, l->now);

	if (flow_kept(l->filter, key, entry, flow))
		json_array_append_new(l->out, flow);
	else
		json_decref(flow);
}

json_t *flows_list(const char *gateway, const struct flow_filter *filter)
{
	json_t *state = state_load(gateway);
	struct flows_listing l = { .filter = filter, .out = json_array(),
				   .vnets = json_object_get(state, "virtualNetworks"),
				   .now = datapath_clock_ns() };

	settings_read(gateway, &l.s);
	flows_foreach(gateway, flow_listed, &l);
	json_decref(state);
	return l.out;
}

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "datapath/bgp.h"
#include "lib/cli.h"
#include "datapath/datapath.h"
#include "datapath/gateway.h"
#include "lib/gateway_name.h"
#include "lib/bpf_map.h"
#include "lib/log.h"
#include "lib/map_entries.h"
#include "observe/metrics.h"
#include "datapath/snat.h"
#include "observe/snat_stats.h"
#include "datapath/state.h"
#include "observe/stats.h"
#include "observe/flows.h"
#include "observe/tunnel_stats.h"

static const char *const drop_reason_names[] = DROP_REASON_NAMES;
static const char *const datapath_counter_names[] = DATAPATH_COUNTER_NAMES;

_Static_assert(sizeof(drop_reason_names) / sizeof(*drop_reason_names) == DROP_REASON_MAX,
	       "a drop reason without a name");
_Static_assert(sizeof(datapath_counter_names) / sizeof(*datapath_counter_names) ==
		       DATAPATH_COUNTER_MAX, "a datapath counter without a name");

static json_t *counter_json(int fd, uint32_t index)
{
	struct packet_counter c = { 0 };

	datapath_read_counter(fd, index, &c);
	return json_pack("{s:I, s:I}", "packets", (json_int_t)c.packets, "bytes", (json_int_t)c.bytes);
}

/* {LABEL: NAME, packets, bytes}: one counter of a table indexed by a named enum. */
static json_t *named_counter_json(const char *label, const char *name, int fd, uint32_t index)
{
	json_t *o = json_pack("{s:s}", label, name);

	json_object_update(o, counter_json(fd, index));
	return o;
}

static bool map_type_is_array(enum bpf_map_type type)
{
	switch (type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_PROG_ARRAY:
	case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
	case BPF_MAP_TYPE_CGROUP_ARRAY:
	case BPF_MAP_TYPE_ARRAY_OF_MAPS:
	case BPF_MAP_TYPE_DEVMAP:
	case BPF_MAP_TYPE_CPUMAP:
	case BPF_MAP_TYPE_XSKMAP:
		return true;
	default:
		return false;
	}
}

/* The kernel counts the entries of hash maps itself (see map_entries.h). */
static bool map_type_is_hash(enum bpf_map_type type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_HASH_OF_MAPS:
		return true;
	default:
		return false;
	}
}

static long long map_keys_walk(int fd, const struct bpf_map_info *info)
{
	struct map_walk walk = MAP_WALK(fd, info->key_size);
	unsigned char key[MAP_KEY_MAX];
	long long count = 0;

	/* Bounded by the capacity: a map that changes under the walk may restart it. */
	while (count < info->max_entries && map_walk_next(&walk, key))
		count++;
	return count;
}

/* Where entry counts come from: the kernel's counters for hash maps (the flow and SNAT
 * tables among them) when it has them; otherwise, for LPM tries (sized by the config)
 * and hash maps on kernels before 6.6, a walk of the keys: the collector's last one in
 * walked ({map name: count}) when there is one, else one now. */
struct entry_sources {
	const struct map_entry_table *table;
	json_t *walked;
};

static bool map_counted_by_kernel(const struct bpf_map_info *info,
				  const struct entry_sources *from, long long *count)
{
	return map_type_is_hash(info->type) && from->table &&
	       (*count = map_entry_table_find(from->table, info->id)) >= 0;
}

static bool map_has_keys_to_walk(const struct bpf_map_info *info)
{
	return !map_type_is_array(info->type) && info->key_size; /* not a ring buffer, queue */
}

static long long map_entries_of(const char *name, int fd, const struct bpf_map_info *info,
				const struct entry_sources *from)
{
	json_t *walked = name ? json_object_get(from->walked, name) : NULL;
	long long count;

	if (map_type_is_array(info->type))
		return info->max_entries;
	if (!map_has_keys_to_walk(info))
		return -EOPNOTSUPP;
	if (map_counted_by_kernel(info, from, &count))
		return count;
	if (json_is_integer(walked))
		return json_integer_value(walked);
	return map_keys_walk(fd, info);
}

long long stats_map_entries(int map_fd)
{
	struct bpf_map_info info = { 0 };
	uint32_t length = sizeof(info);
	struct map_entry_table table;
	struct entry_sources from = { 0 };
	long long count;

	if (bpf_obj_get_info_by_fd(map_fd, &info, &length))
		return -errno;
	if (map_type_is_hash(info.type) && !map_entry_table_read(&table))
		from.table = &table;
	count = map_entries_of(NULL, map_fd, &info, &from);
	if (from.table)
		map_entry_table_free(&table);
	return count;
}

struct maps_walk {
	json_t *maps;
	const struct entry_sources *from;
};

static void map_json_append(const char *name, int fd, const struct bpf_map_info *info,
			    void *ctx)
{
	struct maps_walk *w = ctx;
	const char *type = libbpf_bpf_map_type_str(info->type);
	long long count = map_entries_of(name, fd, info, w->from);
	json_t *map = json_pack("{s:s, s:s, s:I}", "name", name, "type", type ? type : "unknown",
				"maxEntries", (json_int_t)info->max_entries);

	long long memlock = map_memlock_bytes(fd);

	if (count >= 0)
		json_object_set_new(map, "entries", json_integer(count));
	if (memlock >= 0)
		json_object_set_new(map, "memlockBytes", json_integer(memlock));
	json_array_append_new(w->maps, map);
}

static json_t *maps_json(const char *gateway, const struct entry_sources *from)
{
	struct maps_walk w = { json_array(), from };

	pinned_maps_foreach(gateway, map_json_append, &w);
	return w.maps;
}

static void map_walk_count(const char *name, int fd, const struct bpf_map_info *info,
			   void *ctx)
{
	struct maps_walk *w = ctx;
	long long count;

	if (map_has_keys_to_walk(info) && !map_counted_by_kernel(info, w->from, &count))
		json_object_set_new(w->maps, name, json_integer(map_keys_walk(fd, info)));
}

/* {map name: entries} of the pinned maps whose entries only a walk can count. */
static json_t *maps_walked(const char *gateway)
{
	struct map_entry_table table;
	struct entry_sources from = { 0 };
	struct maps_walk w = { json_object(), &from };

	if (!map_entry_table_read(&table))
		from.table = &table;
	pinned_maps_foreach(gateway, map_walk_count, &w);
	if (from.table)
		map_entry_table_free(&table);
	return w.maps;
}

json_t *stats_collect_slow(const char *gateway)
{
	if (!gateway_pins_exist(gateway)) {
		errno = ENOENT;
		return NULL;
	}
	return json_pack("{s:o, s:o}", "snatPortsInUse", snat_ports_in_use(gateway),
			 "mapEntriesWalked", maps_walked(gateway));
}

/* {interface, vnet, reason, packets, bytes} of each key drop_details holds; vnet null for
 * NSG_VNET_NONE (outside every VNet, or not known). Empty for a datapath without it. */
static json_t *drops_by_interface(const char *gateway, json_t *vnets)
{
	int fd = datapath_map_open(gateway, MAP_drop_details);
	struct map_walk walk = MAP_WALK(fd, sizeof(struct drop_detail_key));
	struct drop_detail_key key;
	json_t *out = json_array();
	char ifname[IF_NAMESIZE];

	if (fd < 0)
		return out;
	while (map_walk_next(&walk, &key)) {
		struct packet_counter c;
		json_t *o;

		if (key.reason >= DROP_REASON_MAX || percpu_sum(fd, &key, &c, sizeof(c)))
			continue;
		if (!if_indextoname(key.ifindex, ifname))
			snprintf(ifname, sizeof(ifname), "if%u", key.ifindex);
		o = json_pack("{s:s, s:O?, s:s, s:I, s:I}", "interface", ifname, "vnet",
			      key.vnet == NSG_VNET_NONE ? NULL : json_array_get(vnets, key.vnet),
			      "reason", drop_reason_names[key.reason], "packets", (json_int_t)c.packets,
			      "bytes", (json_int_t)c.bytes);
		json_array_append_new(out, o);
	}
	close(fd);
	return out;
}

/* {vnet, packets, bytes} of the drops that found no room in drop_details, per VNet slot
 * that had any. */
static json_t *drops_unattributed(const char *gateway, json_t *vnets)
{
	int fd = datapath_map_open(gateway, MAP_drop_detail_overflow);
	json_t *out = json_array();

	if (fd < 0)
		return out;
	for (uint32_t slot = 0; slot < DROP_DETAIL_VNET_SLOTS; slot++) {
		struct packet_counter c;

		if (datapath_read_counter(fd, slot, &c) || !c.packets)
			continue;
		json_array_append_new(out, json_pack("{s:O?, s:I, s:I}", "vnet",
						     slot == MAX_VNETS ? NULL : json_array_get(vnets, slot),
						     "packets", (json_int_t)c.packets,
						     "bytes", (json_int_t)c.bytes));
	}
	close(fd);
	return out;
}

json_t *stats_collect(const char *gateway)
{
	return stats_collect_with(gateway, NULL);
}

json_t *stats_collect_with(const char *gateway, json_t *slow)
{
	struct map_entry_table table;
	struct entry_sources from = { .walked = json_object_get(slow, "mapEntriesWalked") };
	struct datapath_maps maps;
	json_t *state, *out, *datapath, *drops, *peerings, *p;
	struct gateway_settings settings = { 0 };
	uint32_t zero = 0;
	size_t i;
	int err;

	err = datapath_maps_open(gateway, &maps);
	if (err) {
		errno = -err;
		return NULL;
	}
	state = state_load(gateway);
	bpf_map_lookup_elem(maps.fd[MAP_settings], &zero, &settings);
	out = json_object();
	datapath = json_array();
	drops = json_array();
	peerings = json_array();
	json_object_set_new(out, "gateway", json_string(gateway));
	json_object_set_new(out, "version", json_string(VNET_XDP_VERSION));
	json_object_set_new(out, "generation", json_integer(settings.generation));
	/* Arrays of {action|reason, packets, bytes}: the names are data (Prometheus label
	 * values, verify's dropReason), not JSON keys, so they keep one spelling everywhere. */
	for (i = 0; i < DATAPATH_COUNTER_MAX; i++)
		json_array_append_new(datapath, named_counter_json("action", datapath_counter_names[i],
								   maps.fd[MAP_datapath_counters], i));
	for (i = 1; i < DROP_REASON_MAX; i++)
		json_array_append_new(drops, named_counter_json("reason", drop_reason_names[i],
								maps.fd[MAP_drop_counters], i));
	json_array_foreach(json_object_get(state, "peerings"), i, p) {
		json_t *c = counter_json(maps.fd[MAP_peering_counters],
					 json_integer_value(json_object_get(p, "index")));

		json_object_set(c, "vnet", json_object_get(p, "vnet"));
		json_object_set(c, "remoteVnet", json_object_get(p, "remoteVnet"));
		json_object_set(c, "name", json_object_get(p, "name"));
		json_array_append_new(peerings, c);
	}
	json_object_set_new(out, "datapath", datapath);
	json_object_set_new(out, "drops", drops);
	json_object_set_new(out, "dropsByInterface",
			    drops_by_interface(gateway, json_object_get(state, "virtualNetworks")));
	json_object_set_new(out, "dropsUnattributed",
			    drops_unattributed(gateway, json_object_get(state, "virtualNetworks")));
	json_object_set_new(out, "peerings", peerings);
	tunnel_stats_add(gateway, state, out);
	json_object_set_new(out, "bgpPeers", bgp_peers(gateway));
	json_object_set_new(out, "nsgRuleHits", nsg_rule_stats(gateway));
	if ((p = flows_stats(gateway)))
		json_object_set_new(out, "flows", p);
	json_object_set_new(out, "snat", snat_stats_json(gateway,
				json_object_get(slow, "snatPortsInUse")));
	if (!map_entry_table_read(&table))
		from.table = &table;
	json_object_set_new(out, "maps", maps_json(gateway, &from));
	if (from.table)
		map_entry_table_free(&table);
	json_decref(state);
	datapath_maps_close(&maps);
	return out;
}

static long long field(json_t *o, const char *name)
{
	return json_integer_value(json_object_get(o, name));
}

void stats_print_text(FILE *out, json_t *stats)
{
	const char *key;
	json_t *v;
	size_t i;

	fprintf(out, "gateway %s  config generation %lld\n",
		json_string_value(json_object_get(stats, "gateway")), field(stats, "generation"));
	fprintf(out, "datapath:\n");
	json_array_foreach(json_object_get(stats, "datapath"), i, v)
		fprintf(out, "  %-20s %12llu packets %14llu bytes\n",
			json_string_value(json_object_get(v, "action")),
			(unsigned long long)field(v, "packets"), (unsigned long long)field(v, "bytes"));
	fprintf(out, "drops by reason:\n");
	json_array_foreach(json_object_get(stats, "drops"), i, v)
		if (field(v, "packets"))
			fprintf(out, "  %-26s %12llu packets %14llu bytes\n",
				json_string_value(json_object_get(v, "reason")),
				(unsigned long long)field(v, "packets"),
				(unsigned long long)field(v, "bytes"));
	if (json_array_size(json_object_get(stats, "dropsByInterface")))
		fprintf(out, "drops by interface and virtual network:\n");
	json_array_foreach(json_object_get(stats, "dropsByInterface"), i, v)
		fprintf(out, "  %-12s %-16s %-26s %12llu packets %14llu bytes\n",
			json_string_value(json_object_get(v, "interface")),
			json_string_value(json_object_get(v, "vnet")) ?: "-",
			json_string_value(json_object_get(v, "reason")),
			(unsigned long long)field(v, "packets"), (unsigned long long)field(v, "bytes"));
	json_array_foreach(json_object_get(stats, "dropsUnattributed"), i, v)
		fprintf(out, "  %-12s %-16s %-26s %12llu packets %14llu bytes (no room to say where)\n",
			"?", json_string_value(json_object_get(v, "vnet")) ?: "-", "?",
			(unsigned long long)field(v, "packets"), (unsigned long long)field(v, "bytes"));
	fprintf(out, "peerings:\n");
	json_array_foreach(json_object_get(stats, "peerings"), i, v)
		fprintf(out, "  %s -> %-16s %12llu packets %14llu bytes\n",
			json_string_value(json_object_get(v, "vnet")),
			json_string_value(json_object_get(v, "remoteVnet")),
			(unsigned long long)field(v, "packets"), (unsigned long long)field(v, "bytes"));
	if (json_array_size(json_object_get(stats, "tunnels")))
		fprintf(out, "tunnels:\n");
	json_array_foreach(json_object_get(stats, "tunnels"), i, v)
		fprintf(out, "  %-24s %-10s in %10llu packets out %10llu packets drops in %llu "
			"out %llu\n", json_string_value(json_object_get(v, "name")),
			json_string_value(json_object_get(v, "state")),
			(unsigned long long)field(v, "ingressPackets"),
			(unsigned long long)field(v, "egressPackets"),
			(unsigned long long)field(v, "ingressPacketDropCount"),
			(unsigned long long)field(v, "egressPacketDropCount"));
	if (json_array_size(json_object_get(stats, "nsgRuleHits")))
		fprintf(out, "network security group rules:\n");
	json_array_foreach(json_object_get(stats, "nsgRuleHits"), i, v)
		fprintf(out, "  %-20s %-8s %-28s %5lld %-5s %10llu hits %12llu packets %14llu bytes\n",
			json_string_value(json_object_get(v, "nsg")),
			json_string_value(json_object_get(v, "direction")),
			json_string_value(json_object_get(v, "rule")), field(v, "priority"),
			json_string_value(json_object_get(v, "access")),
			(unsigned long long)field(v, "hits"), (unsigned long long)field(v, "packets"),
			(unsigned long long)field(v, "bytes"));
	if (json_object_get(stats, "flows")) {
		fprintf(out, "flows:\n ");
		json_object_foreach(json_object_get(stats, "flows"), key, v)
			fprintf(out, " %s %lld", key, (long long)json_integer_value(v));
		fprintf(out, "\n");
	}
	fprintf(out, "maps:\n");
	json_array_foreach(json_object_get(stats, "maps"), i, v) {
		json_t *entries = json_object_get(v, "entries");
		long long max = field(v, "maxEntries");

		if (entries && max > 0)
			fprintf(out, "  %-20s %10lld of %10lld entries (%.1f%%)\n",
				json_string_value(json_object_get(v, "name")),
				(long long)json_integer_value(entries), max,
				100.0 * json_integer_value(entries) / max);
		else
			fprintf(out, "  %-20s %10s of %10lld entries\n",
				json_string_value(json_object_get(v, "name")), "-", max);
	}
}

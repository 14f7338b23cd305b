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


/* ---- filling the maps ---------------------------------------------------------------- */

static int config_maps_write(const struct datapath_maps *maps, const struct snat_plan *plan)
{
	int sources = maps->fd[MAP_snat_sources], pools = maps->fd[MAP_snat_pools];
	int vips = maps->fd[MAP_snat_vips], err;

	if ((err = map_clear(sources, sizeof(struct lpm_key))) ||
	    (err = map_clear(vips, sizeof(struct address_key))))
		return err;
	for (uint32_t i = 0; i < plan->n_pools; i++) {
		if (bpf_map_update_elem(pools, &i, &plan->pools[i].pool, BPF_ANY))
			return -errno;
		for (uint32_t v = 0; v < plan->pools[i].pool.n_vips; v++)
			if (bpf_map_update_elem(vips, &plan->pools[i].pool.vips[v], &i, BPF_ANY))
				return -errno;
	}
	for (size_t i = 0; i < plan->n_sources; i++)
		if (bpf_map_update_elem(sources, &plan->sources[i].key, &plan->sources[i].pool,
					BPF_ANY))
			return -errno;
	return 0;
}

/* Counter slots are state: a VIP that stays keeps its counts across reloads. */
static int counter_slots_add(const struct datapath_maps *maps, const struct snat_plan *plan)
{
	int err = 0;

	for (size_t i = 0; !err && i < plan->n_pools; i++)
		for (uint32_t v = 0; !err && v < plan->pools[i].pool.n_vips; v++)
			err = percpu_zero(maps->fd[MAP_snat_vip_counters], &plan->pools[i].pool.vips[v],
					  sizeof(struct snat_vip_counter), BPF_NOEXIST);
	return err;
}

static bool layout_planned(const struct snat_plan *plan, uint32_t layout)
{
	for (size_t i = 0; i < plan->n_pools; i++)
		if (plan->pools[i].pool.block_ports && plan->pools[i].pool.layout == layout)
			return true;
	return false;
}

/* Removes the entries of a port-block map (key_size bytes of key, the layout at
 * layout_offset of the value or, when value_size is 0, of the key) whose layout no pool
 * of the plan has: what the old layout's VMs held. 0 or -errno. */
static int blocks_prune_map(int fd, size_t key_size, size_t value_size, size_t layout_offset,
			    const struct snat_plan *plan)
{
	struct map_walk walk = MAP_WALK(fd, key_size);
	unsigned char key[MAP_KEY_MAX], value[64], *stale = NULL, *bigger;
	size_t n = 0;
	int err = 0;

	if (value_size > sizeof(value))
		return -EINVAL;
	while (map_walk_next(&walk, key)) {
		uint32_t layout;

		if (value_size && bpf_map_lookup_elem(fd, key, value))
			continue;
		memcpy(&layout, (value_size ? value : key) + layout_offset, sizeof(layout));
		if (layout_planned(plan, layout))
			continue;
		bigger = realloc(stale, (n + 1) * key_size);
		if (!bigger) {
			err = -ENOMEM;
			break;
		}
		stale = bigger;
		memcpy(stale + n++ * key_size, key, key_size);
	}
	for (size_t i = 0; !err && i < n; i++)
		if (bpf_map_delete_elem(fd, stale + i * key_size) && errno != ENOENT)
			err = -errno;
	free(stale);
	return err;
}

static int blocks_prune(const struct datapath_maps *maps, const struct snat_plan *plan)
{
	int err = blocks_prune_map(maps->fd[MAP_snat_block_owners], sizeof(struct snat_block_key), 0,
				   offsetof(struct snat_block_key, layout), plan);

	return err ? err : blocks_prune_map(maps->fd[MAP_snat_vm_blocks], sizeof(struct snat_vm_key),
					    sizeof(struct snat_vm_block),
					    offsetof(struct snat_vm_block, layout), plan);
}

int snat_plan_write(const struct datapath_maps *maps, const struct snat_plan *plan)
{
	int err = config_maps_write(maps, plan);

	if (!err)
		err = counter_slots_add(maps, plan);
	if (!err)
		err = blocks_prune(maps, plan);
	if (err)
		log_error("cannot fill the SNAT maps: %s", strerror(-err));
	return err;
}

/* ---- sizing ---------------------------------------------------------------------------- */

static uint32_t table_size = SNAT_TABLE_ENTRIES_DEFAULT;

void snat_table_size_set(uint32_t entries)
{
	if (entries)
		table_size = entries;
}

int snat_maps_size(struct bpf_object *obj, const char *pin_dir)
{
	static const char *const sized[] = { "snat_mappings", "snat_reverse" };

	for (size_t i = 0; i < sizeof(sized) / sizeof(*sized); i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(obj, sized[i]);
		struct bpf_map_info info = { 0 };
		uint32_t len = sizeof(info), entries = table_size;
		char path[400];
		int fd;

		if (!map)
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, sized[i]);
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			if (!bpf_obj_get_info_by_fd(fd, &info, &len))
				entries = info.max_entries;
			close(fd);
		}
		if (bpf_map__set_max_entries(map, entries))
			return -EINVAL;
	}
	return 0;
}

/* ---- walking the mapping maps ------------------------------------------------------------ */

/* The GC reads both maps in batches and decides in memory: a syscall per entry costs
 * microseconds, which at a million entries is most of a minute. */

struct entry_list {
	unsigned char *keys, *values;
	size_t n, capacity, key_size, value_size;
};

static int entry_list_add(struct entry_list *list, const void *key, const void *value)
{
	if (list->n == list->capacity) {
		size_t capacity = list->capacity ? list->capacity * 2 : 256;
		unsigned char *keys = realloc(list->keys, capacity * list->key_size);
		unsigned char *values = list->value_size ?
			realloc(list->values, capacity * list->value_size) : NULL;

		if (keys)
			list->keys = keys;
		if (values)
			list->values = values;
		if (!keys || (list->value_size && !values))
			return -ENOMEM;
		list->capacity = capacity;
	}
	memcpy(list->keys + list->n * list->key_size, key, list->key_size);
	if (list->value_size)
		memcpy(list->values + list->n * list->value_size, value, list->value_size);
	list->n++;
	return 0;
}

static void entry_list_free(struct entry_list *list)
{
	free(list->keys);
	free(list->values);
}

/* The mappings that survive this pass, by the VM's flow: what a reverse entry checks. */
struct live_slot {
	struct snat_flow_key key;
	uint8_t vip[16];
	uint16_t vip_port;
	bool used;
};

struct live_set {
	struct live_slot *slots;
	size_t mask;
};

static size_t flow_hash(const struct snat_flow_key *key)
{
	const unsigned char *p = (const unsigned char *)key;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < sizeof(*key); i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return (size_t)h;
}

static int live_set_init(struct live_set *set, size_t expected)
{
	size_t capacity = 1024;

	while (capacity < expected * 2)
		capacity *= 2;
	set->slots = calloc(capacity, sizeof(*set->slots));
	set->mask = capacity - 1;
	return set->slots ? 0 : -ENOMEM;
}

static struct live_slot *live_set_slot(const struct live_set *set, const struct snat_flow_key *key)
{
	size_t i = flow_hash(key) & set->mask;

	while (set->slots[i].used && memcmp(&set->slots[i].key, key, sizeof(*key)))
		i = (i + 1) & set->mask;
	return &set->slots[i];
}

struct gc_walk {
	uint64_t now;
	struct entry_list mappings; /* every mapping, value included */
	struct entry_list release, revive, release_values, free;
	struct live_set live;
	struct snat_gc_result *result;
};

static int gc_mapping(const void *key, const void *value, void *ctx)
{
	struct gc_walk *w = ctx;

	w->result->mappings++;
	return entry_list_add(&w->mappings, key, value);
}

static bool reverse_is_live(const struct live_set *live, const struct snat_flow_key *key,
			    const struct snat_reverse *rev)
{
	const struct live_slot *slot = live_set_slot(live, &rev->flow);

	return slot->used && slot->vip_port == key->dst_port && !memcmp(slot->vip, key->dst, 16);
}

static int gc_reverse(const void *key, const void *value, void *ctx)
{
	const struct snat_reverse *rev = value;
	struct gc_walk *w = ctx;
	bool live = reverse_is_live(&w->live, key, rev);
	struct snat_reverse changed = *rev;

	w->result->reverse++;
	if (!rev->released_ns) {
		if (live)
			return 0;
		changed.released_ns = w->now;
		return entry_list_add(&w->release, key, &changed);
	}
	if (live) { /* an allocation the walk saw half done: in use after all */
		changed.released_ns = 0;
		return entry_list_add(&w->revive, key, &changed);
	}
	/* Free only what two passes found orphaned, the cool-down apart. */
	if (clock_age_ns(w->now, rev->released_ns) >
	    (uint64_t)rev->transitory_timeout_seconds * NS_PER_SECOND)
		return entry_list_add(&w->free, key, NULL);
	return 0;
}

#define GC_BATCH 4096
/* Below this many, each candidate is read again just before it goes (a packet may have
 * touched it since the walk); above, they go in batches. */
#define GC_CHECK_EACH 1024

/* Deletes keys in batches; a key already gone (a packet replaced it, the datapath
 * deleted it) is skipped. Returns how many went; gone (if not NULL) marks which. */
static size_t delete_keys(int fd, const struct entry_list *list, uint8_t *gone)
{
	size_t done = 0, i = 0;

	while (i < list->n) {
		uint32_t count = list->n - i < GC_BATCH ? list->n - i : GC_BATCH;
		int rc = bpf_map_delete_batch(fd, list->keys + i * list->key_size, &count, NULL);

		if (gone)
			memset(gone + i, 1, count);
		done += count;
		i += count;
		if (rc) {
			if (errno != ENOENT)
				break;
			i++; /* the key that was not there */
		}
	}
	return done;
}

static size_t update_entries(int fd, const struct entry_list *list)
{
	size_t done = 0;

	for (size_t i = 0; i < list->n;) {
		uint32_t count = list->n - i < GC_BATCH ? list->n - i : GC_BATCH;
		/* Batches take no BPF_EXIST; only the GC itself deletes reverse entries. */
		int rc = bpf_map_update_batch(fd, list->keys + i * list->key_size,
					      list->values + i * list->value_size, &count, NULL);

		done += count;
		i += count;
		if (rc) {
			if (errno != ENOENT)
				break;
			i++; /* gone meanwhile */
		}
	}
	return done;
}

int snat_gc(const char *gateway, uint64_t now, struct snat_gc_result *result)
{
	int mappings = datapath_map_open(gateway, MAP_snat_mappings);
	int reverse = datapath_map_open(gateway, MAP_snat_reverse);
	const size_t kz = sizeof(struct snat_flow_key);
	struct gc_walk w = {
		.now = now, .result = result,
		.mappings = { .key_size = kz, .value_size = sizeof(struct snat_mapping) },
		.release = { .key_size = kz, .value_size = sizeof(struct snat_reverse) },
		.revive = { .key_size = kz, .value_size = sizeof(struct snat_reverse) },
		.free = { .key_size = kz },
	};
	struct entry_list expired = { .key_size = kz, .value_size = sizeof(struct snat_mapping) };
	uint8_t *gone = NULL;
	int err;

	memset(result, 0, sizeof(*result));
	if (mappings < 0 || reverse < 0) {
		err = mappings < 0 ? mappings : reverse;
		goto out;
	}
	err = map_each_entry(mappings, kz, sizeof(struct snat_mapping), gc_mapping, &w);
	if (!err)
		err = live_set_init(&w.live, w.mappings.n);
	for (size_t i = 0; !err && i < w.mappings.n; i++) {
		const struct snat_flow_key *key = (void *)(w.mappings.keys + i * kz);
		const struct snat_mapping *m =
			(void *)(w.mappings.values + i * sizeof(struct snat_mapping));
		struct live_slot *slot;

		if (snat_mapping_expired(m, key->proto, now)) {
			err = entry_list_add(&expired, key, m);
			continue;
		}
		slot = live_set_slot(&w.live, key);
		slot->used = true;
		slot->key = *key;
		memcpy(slot->vip, m->vip, 16);
		slot->vip_port = m->vip_port;
	}
	if (!err) {
		gone = calloc(expired.n ? expired.n : 1, 1);
		if (!gone)
			err = -ENOMEM;
	}
	if (!err && expired.n <= GC_CHECK_EACH) {
		for (size_t i = 0; i < expired.n; i++) {
			const struct snat_flow_key *key = (void *)(expired.keys + i * kz);
			struct snat_mapping m;

			if (bpf_map_lookup_elem(mappings, key, &m) ||
			    !snat_mapping_expired(&m, key->proto, now))
				continue;
			if (!bpf_map_delete_elem(mappings, key)) {
				gone[i] = 1;
				result->mappings_expired++;
			}
		}
	} else if (!err) {
		result->mappings_expired = delete_keys(mappings, &expired, gone);
	}
	if (!err)
		err = map_each_entry(reverse, kz, sizeof(struct snat_reverse), gc_reverse, &w);
	if (!err) {
		result->reverse_released = update_entries(reverse, &w.release);
		update_entries(reverse, &w.revive);
		result->reverse_freed = delete_keys(reverse, &w.free, NULL);
	}
out:
	entry_list_free(&w.mappings);
	entry_list_free(&w.release);
	entry_list_free(&w.revive);
	entry_list_free(&w.free);
	entry_list_free(&expired);
	free(gone);
	free(w.live.slots);
	if (mappings >= 0)
		close(mappings);
	if (reverse >= 0)
		close(reverse);
	return err;
}

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
#include "lib/log.h"
#include "compile/plan.h"
#include "datapath/snat.h"
#include "datapath/state.h"

#ifndef ENOTSUPP
#define ENOTSUPP 524 /* the kernel's "operation not supported" for map batches */
#endif

/* ---- the plan ---------------------------------------------------------------------- */

/* The port blocks of a pool (headers/vnet_xdp.h): limits.snatMappingsPerVm ports per VM
 * on each VIP, or the whole range when it is smaller. layout changes with anything that
 * moves a block's ports, so that claims of the old layout are void after a reload. */
static void pool_blocks_set(struct snat_pool *p, uint32_t ports_per_vm)
{
	uint32_t range = (uint32_t)p->port_max - p->port_min + 1;
	uint32_t h = 2166136261u;
	const unsigned char *vips = (const unsigned char *)p->vips;
	uint32_t words[3];

	if (!ports_per_vm)
		return;
	p->block_ports = ports_per_vm < range ? ports_per_vm : range;
	p->n_blocks = range / p->block_ports;
	words[0] = p->port_min;
	words[1] = p->port_max;
	words[2] = p->block_ports;
	for (size_t i = 0; i < sizeof(words); i++)
		h = (h ^ ((const unsigned char *)words)[i]) * 16777619u;
	for (size_t i = 0; i < p->n_vips * sizeof(p->vips[0]); i++)
		h = (h ^ vips[i]) * 16777619u;
	p->layout = h ? h : 1;
}

static int pool_add(struct snat_plan *plan, const char *owner, int family,
		    const struct ip_address *vips, size_t n_vips, const struct config_limits *lim,
		    uint32_t tcp_idle_seconds, uint32_t *index)
{
	struct snat_plan_pool *bigger, *p;

	if (plan->n_pools >= MAX_SNAT_POOLS)
		return -E2BIG;
	bigger = realloc(plan->pools, (plan->n_pools + 1) * sizeof(*bigger));
	if (!bigger)
		return -ENOMEM;
	plan->pools = bigger;
	p = &plan->pools[plan->n_pools];
	memset(p, 0, sizeof(*p));
	p->owner = owner;
	p->pool.port_min = lim->snat_port_min;
	p->pool.port_max = lim->snat_port_max;
	p->pool.tcp_idle_timeout_seconds = tcp_idle_seconds;
	p->pool.tcp_transitory_timeout_seconds = lim->tcp_transitory_timeout_seconds;
	p->pool.udp_idle_timeout_seconds = lim->udp_idle_timeout_seconds;
	p->pool.icmp_idle_timeout_seconds = lim->icmp_idle_timeout_seconds;
	for (size_t i = 0; i < n_vips; i++) {
		if (vips[i].family != family)
			continue;
		if (p->pool.n_vips >= MAX_SNAT_POOL_VIPS) {
			log_error("%s has more than %d public IPv%d addresses; SNAT pools at most %d",
				  owner, MAX_SNAT_POOL_VIPS, family == AF_INET ? 4 : 6,
				  MAX_SNAT_POOL_VIPS);
			return -E2BIG;
		}
		p->pool.vips[p->pool.n_vips].family = family;
		memcpy(p->pool.vips[p->pool.n_vips].addr, vips[i].addr, 16);
		p->pool.n_vips++;
	}
	if (!p->pool.n_vips)
		return -ENOENT; /* no address of this family: not a pool */
	pool_blocks_set(&p->pool, lim->snat_mappings_per_vm);
	*index = plan->n_pools++;
	return 0;
}

static int source_add(struct snat_plan *plan, uint32_t vnet, const struct ip_prefix *prefix,
		      uint32_t pool)
{
	struct snat_plan_source *bigger;

	if (plan->n_sources >= MAX_SNAT_SOURCES)
		return -E2BIG;
	bigger = realloc(plan->sources, (plan->n_sources + 1) * sizeof(*bigger));
	if (!bigger)
		return -ENOMEM;
	plan->sources = bigger;
	lpm_key_from_prefix(&plan->sources[plan->n_sources].key, vnet, prefix);
	plan->sources[plan->n_sources].pool = pool;
	plan->n_sources++;
	return 0;
}

static int vnet_pools(struct snat_plan *plan, const struct config *cfg,
		      const struct config_gateway_vnet *gv)
{
	const struct config_vnet *vnet = &cfg->vnets[gv->vnet];
	int families[] = { AF_INET, AF_INET6 }, err;

	for (size_t f = 0; f < 2; f++) {
		uint32_t pool;

		err = pool_add(plan, vnet->name, families[f], gv->vips, gv->n_vips, &cfg->limits,
			       cfg->limits.tcp_idle_timeout_seconds, &pool);
		if (err == -ENOENT)
			continue;
		if (err)
			return err;
		for (size_t p = 0; p < vnet->n_prefixes; p++)
			if (vnet->prefixes[p].family == families[f] &&
			    (err = source_add(plan, gv->vnet, &vnet->prefixes[p], pool)))
				return err;
	}
	return 0;
}

/* A NAT gateway's pool serves every subnet associated with it, in any VNet. */
static int nat_gateway_pools(struct snat_plan *plan, const struct config *cfg, size_t g)
{
	const struct config_nat_gateway *nat = &cfg->nat_gateways[g];
	int families[] = { AF_INET, AF_INET6 }, err;
	uint32_t tcp_idle = nat->idle_timeout_minutes > 0 ? (uint32_t)nat->idle_timeout_minutes * 60
							  : cfg->limits.tcp_idle_timeout_seconds;

	for (size_t f = 0; f < 2; f++) {
		uint32_t pool;

		err = pool_add(plan, nat->name, families[f], nat->public_ips, nat->n_public_ips,
			       &cfg->limits, tcp_idle, &pool);
		if (err == -ENOENT)
			continue;
		if (err)
			return err;
		for (size_t v = 0; v < cfg->n_vnets; v++)
			for (size_t s = 0; s < cfg->vnets[v].n_subnets; s++) {
				const struct config_subnet *subnet = &cfg->vnets[v].subnets[s];

				if (subnet->nat_gateway != (int)g)
					continue;
				for (size_t p = 0; p < subnet->n_prefixes; p++)
					if (subnet->prefixes[p].family == families[f] &&
					    (err = source_add(plan, v, &subnet->prefixes[p], pool)))
						return err;
			}
	}
	return 0;
}

int snat_plan_build(const struct config *cfg, struct snat_plan *out)
{
	int err = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; !err && i < cfg->n_gateway_vnets; i++)
		if (cfg->gateway_vnets[i].vnet != CONFIG_NONE)
			err = vnet_pools(out, cfg, &cfg->gateway_vnets[i]);
	for (size_t g = 0; !err && g < cfg->n_nat_gateways; g++)
		err = nat_gateway_pools(out, cfg, g);
	if (err)
		snat_plan_free(out);
	return err;
}

/* The pool a VM's address takes SNAT through: the longest source prefix of its VNet
 * that holds it, as the datapath's LPM lookup finds it; -1 for none. */
static int pool_of_address(const struct snat_plan *plan, uint32_t vnet,
			   const struct ip_address *a)
{
	uint32_t best_len = 0;
	int best = -1;

	for (size_t i = 0; i < plan->n_sources; i++) {
		const struct lpm_key *k = &plan->sources[i].key;
		uint32_t len = k->prefixlen - LPM_SCOPE_BITS, full = len / 8, rest = len % 8;

		if (k->scope != vnet || k->family != (uint32_t)a->family || (best >= 0 && len <= best_len))
			continue;
		if (memcmp(k->addr, a->addr, full) ||
		    (rest && (k->addr[full] ^ a->addr[full]) & (0xff << (8 - rest))))
			continue;
		best = (int)plan->sources[i].pool;
		best_len = len;
	}
	return best;
}

int snat_blocks_warn(const struct config *cfg)
{
	struct snat_plan plan;
	size_t *vms;
	int warned = 0;

	if (snat_plan_build(cfg, &plan))
		return 0; /* up says why */
	vms = calloc(plan.n_pools ? plan.n_pools : 1, sizeof(*vms));
	for (size_t n = 0; vms && n < cfg->n_nics; n++)
		for (size_t a = 0; cfg->nics[n].vnet != CONFIG_NONE && a < cfg->nics[n].n_addresses; a++) {
			int pool = pool_of_address(&plan, (uint32_t)cfg->nics[n].vnet,
						   &cfg->nics[n].addresses[a]);

			if (pool >= 0)
				vms[pool]++;
		}
	for (size_t i = 0; vms && i < plan.n_pools; i++) {
		const struct snat_pool *p = &plan.pools[i].pool;

		if (!p->block_ports || vms[i] <= p->n_blocks)
			continue;
		log_warn("%s: %zu network interface addresses take SNAT through %s, whose ports "
			 "%u-%u make %u blocks of limits.snatMappingsPerVm %u: the VMs beyond get no "
			 "port (snat_port_exhausted) until a VM's block idles; allowed: a smaller "
			 "snatMappingsPerVm or a wider snatPortMin-snatPortMax", cfg->path ? cfg->path : "config",
			 vms[i], plan.pools[i].owner, p->port_min, p->port_max, p->n_blocks, p->block_ports);
		warned++;
	}
	free(vms);
	snat_plan_free(&plan);
	return warned;
}

void snat_plan_free(struct snat_plan *plan)
{
	free(plan->pools);
	free(plan->sources);
	memset(plan, 0, sizeof(*plan));
}

/* ---- filling the maps ---------------------------------------------------------------- */

static int map_delete_all(int fd, size_t key_size)
{
	unsigned char key[64], next[64];
	int err = 0;

	if (key_size > sizeof(key))
		return -EINVAL;
	/* Always restart from the first key: deleting the current one ends a walk. */
	while (!bpf_map_get_next_key(fd, NULL, next)) {
		memcpy(key, next, key_size);
		if (bpf_map_delete_elem(fd, key)) {
			err = -errno;
			break;
		}
	}
	return err;
}

static int fill_config_maps(const char *gateway, const struct snat_plan *plan)
{
	int sources = datapath_map_open(gateway, "snat_sources");
	int pools = datapath_map_open(gateway, "snat_pools");
	int vips = datapath_map_open(gateway, "snat_vips");
	int err = 0;

	if (sources < 0 || pools < 0 || vips < 0) {
		err = sources < 0 ? sources : pools < 0 ? pools : vips;
		goto out;
	}
	if ((err = map_delete_all(sources, sizeof(struct lpm_key))) ||
	    (err = map_delete_all(vips, sizeof(struct address_key))))
		goto out;
	for (uint32_t i = 0; i < plan->n_pools; i++) {
		if (bpf_map_update_elem(pools, &i, &plan->pools[i].pool, BPF_ANY)) {
			err = -errno;
			goto out;
		}
		for (uint32_t v = 0; v < plan->pools[i].pool.n_vips; v++)
			if (bpf_map_update_elem(vips, &plan->pools[i].pool.vips[v], &i, BPF_ANY)) {
				err = -errno;
				goto out;
			}
	}
	for (size_t i = 0; i < plan->n_sources; i++)
		if (bpf_map_update_elem(sources, &plan->sources[i].key, &plan->sources[i].pool,
					BPF_ANY)) {
			err = -errno;
			goto out;
		}
out:
	if (sources >= 0)
		close(sources);
	if (pools >= 0)
		close(pools);
	if (vips >= 0)
		close(vips);
	return err;
}

/* Counter slots are state: a VIP that stays keeps its counts across reloads. */
static int counter_slots_add(const char *gateway, const struct snat_plan *plan)
{
	int fd = datapath_map_open(gateway, "snat_vip_counters"), cpus = libbpf_num_possible_cpus();
	struct snat_vip_counter *zero;
	int err = 0;

	if (fd < 0)
		return fd;
	zero = calloc(cpus > 0 ? cpus : 1, sizeof(*zero));
	if (!zero) {
		close(fd);
		return -ENOMEM;
	}
	for (size_t i = 0; !err && i < plan->n_pools; i++)
		for (uint32_t v = 0; !err && v < plan->pools[i].pool.n_vips; v++)
			if (bpf_map_update_elem(fd, &plan->pools[i].pool.vips[v], zero, BPF_NOEXIST) &&
			    errno != EEXIST)
				err = -errno;
	free(zero);
	close(fd);
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
static int blocks_prune_map(const char *gateway, const char *name, size_t key_size,
			    size_t value_size, size_t layout_offset, const struct snat_plan *plan)
{
	int fd = datapath_map_open(gateway, name);
	unsigned char key[64], next[64], value[64], *stale = NULL, *bigger;
	size_t n = 0;
	void *prev = NULL;
	int err = 0;

	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	while (!err && !bpf_map_get_next_key(fd, prev, next)) {
		uint32_t layout;

		memcpy(key, next, key_size);
		prev = key;
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
	close(fd);
	return err;
}

static int blocks_prune(const char *gateway, const struct snat_plan *plan)
{
	int err = blocks_prune_map(gateway, "snat_block_owners", sizeof(struct snat_block_key), 0,
				   offsetof(struct snat_block_key, layout), plan);

	return err ? err : blocks_prune_map(gateway, "snat_vm_blocks", sizeof(struct snat_vm_key),
					    sizeof(struct snat_vm_block),
					    offsetof(struct snat_vm_block, layout), plan);
}

int snat_maps_fill(const char *gateway, const struct config *cfg)
{
	struct snat_plan plan;
	int err = snat_plan_build(cfg, &plan);

	if (err) {
		log_error("cannot compute the SNAT pools: %s", strerror(-err));
		return err;
	}
	err = fill_config_maps(gateway, &plan);
	if (!err)
		err = counter_slots_add(gateway, &plan);
	if (!err)
		err = blocks_prune(gateway, &plan);
	if (err)
		log_error("cannot fill the SNAT maps: %s", strerror(-err));
	snat_plan_free(&plan);
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

typedef int (*entry_fn)(const void *key, const void *value, void *ctx);

/* Calls fn for every entry, read in batches (one syscall per few thousand entries, so
 * a pass over a million mappings takes well under a second), or key by key where the
 * kernel has no batch operations for the map. */
static int map_walk(int fd, size_t key_size, size_t value_size, entry_fn fn, void *ctx)
{
	enum { BATCH = 4096 };
	unsigned char *keys = malloc(BATCH * key_size), *values = malloc(BATCH * value_size);
	uint64_t in = 0, out = 0;
	bool first = true;
	int err = 0;

	if (!keys || !values) {
		free(keys);
		free(values);
		return -ENOMEM;
	}
	for (;;) {
		uint32_t count = BATCH;
		int rc = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, values, &count, NULL);
		bool done = rc && errno == ENOENT;

		if (rc && !done) {
			err = -errno;
			break;
		}
		for (uint32_t i = 0; i < count && !err; i++)
			err = fn(keys + i * key_size, values + i * value_size, ctx);
		if (done || err)
			break;
		in = out;
		first = false;
	}
	if (err == -EINVAL || err == -EOPNOTSUPP || err == -ENOTSUPP) {
		unsigned char key[64], value[256];
		void *prev = NULL;

		err = 0;
		while (key_size <= sizeof(key) && value_size <= sizeof(value) &&
		       !bpf_map_get_next_key(fd, prev, key) && !err) {
			if (!bpf_map_lookup_elem(fd, key, value))
				err = fn(key, value, ctx);
			memcpy(keys, key, key_size);
			prev = keys;
		}
	}
	free(keys);
	free(values);
	return err;
}

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
	int mappings = datapath_map_open(gateway, "snat_mappings");
	int reverse = datapath_map_open(gateway, "snat_reverse");
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
	err = map_walk(mappings, kz, sizeof(struct snat_mapping), gc_mapping, &w);
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
		err = map_walk(reverse, kz, sizeof(struct snat_reverse), gc_reverse, &w);
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
	int pools = datapath_map_open(gateway, "snat_pools");
	int vips = datapath_map_open(gateway, "snat_vips");
	int counters = datapath_map_open(gateway, "snat_vip_counters");
	int cpus = libbpf_num_possible_cpus();
	struct snat_vip_counter *per_cpu = calloc(cpus > 0 ? cpus : 1, sizeof(*per_cpu));
	struct address_key key, *prev = NULL;

	while (pools >= 0 && vips >= 0 && counters >= 0 && per_cpu &&
	       !bpf_map_get_next_key(vips, prev, &key)) {
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
		if (!bpf_map_lookup_elem(counters, &key, per_cpu))
			for (int c = 0; c < cpus; c++) {
				struct snat_vip_counter *t = &u->vips[u->n].counter;

				t->flows += per_cpu[c].flows;
				t->port_exhausted += per_cpu[c].port_exhausted;
				t->egress_packets += per_cpu[c].egress_packets;
				t->egress_bytes += per_cpu[c].egress_bytes;
				t->ingress_packets += per_cpu[c].ingress_packets;
				t->ingress_bytes += per_cpu[c].ingress_bytes;
			}
		u->n++;
		prev = &u->vips[u->n - 1].vip;
	}
	free(per_cpu);
	if (pools >= 0)
		close(pools);
	if (vips >= 0)
		close(vips);
	if (counters >= 0)
		close(counters);
}

json_t *snat_ports_in_use(const char *gateway)
{
	int reverse = datapath_map_open(gateway, "snat_reverse");
	struct usage_walk u = { 0 };
	json_t *out = json_object();

	usage_load_vips(gateway, &u);
	if (reverse >= 0) {
		map_walk(reverse, sizeof(struct snat_flow_key), sizeof(struct snat_reverse),
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
	fd = datapath_map_open(gateway, "snat_mappings");
	if (fd < 0) {
		log_error("gateway %s: cannot open its SNAT mappings: %s", gateway, strerror(-fd));
		json_decref(out);
		return 1;
	}
	w.list = json_array();
	w.filter = &o.filter;
	state = state_load(gateway);
	w.vnets = json_object_get(state, "virtualNetworks");
	map_walk(fd, sizeof(struct snat_flow_key), sizeof(struct snat_mapping), list_mapping, &w);
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

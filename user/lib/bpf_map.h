/* What any BPF map needs from user space: walking its keys, emptying it, and the
 * per-CPU values the kernel hands out one per possible CPU. */
#ifndef VNET_XDP_LIB_BPF_MAP_H
#define VNET_XDP_LIB_BPF_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAP_KEY_MAX 64 /* the largest key of the datapath's maps, with room */

/* A walk over a map's keys in the kernel's order. Read-only: for a hash map, deleting
 * the key just returned makes the next step start again from the first key, so a walk
 * that deletes collects its keys first (map_clear does). */
struct map_walk {
	int fd;
	size_t key_size;
	bool started;
	unsigned char prev[MAP_KEY_MAX];
};
#define MAP_WALK(map_fd, size) ((struct map_walk){ .fd = (map_fd), .key_size = (size) })
/* The next key into key; false at the end, on an error, or for a key too large. */
bool map_walk_next(struct map_walk *walk, void *key);

typedef int (*map_entry_fn)(const void *key, const void *value, void *ctx);
/* Calls fn for every entry until it returns non-zero (returned), read in batches (one syscall per few thousand entries, so
 * a pass over a million mappings takes well under a second), or key by key where the
 * kernel has no batch operations for the map. */
int map_each_entry(int fd, size_t key_size, size_t value_size, map_entry_fn fn, void *ctx);

/* Deletes every key of a hash or LPM map. 0 or -errno. */
int map_clear(int fd, size_t key_size);

/* Possible CPUs, as many values as a per-CPU lookup returns (at least 1). */
int percpu_count(void);
/* Sums the value under key over the CPUs, field by field: for values made of __u64
 * counters only (value_size a multiple of 8). 0 or -errno (-ENOENT: no such key). */
int percpu_sum(int fd, const void *key, void *sum, size_t value_size);
/* Writes a zero value on every CPU (flags: BPF_ANY, BPF_NOEXIST). 0 or -errno; an
 * existing key under BPF_NOEXIST is no error. */
int percpu_zero(int fd, const void *key, size_t value_size, uint64_t flags);
/* Adds n to the __u64 under key from user space, on the first CPU's share. */
int percpu_add(int fd, const void *key, uint64_t n);

#endif

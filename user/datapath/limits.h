/* Whether the maps that limits.flowTableSize and limits.snatTableSize size fit this
 * machine's memory: checked by `up` and `reload` before any map is created, so that a
 * size the machine cannot hold is one clear error, not a failed allocation half-way. */
#ifndef VNET_XDP_LIMITS_H
#define VNET_XDP_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config/config.h"

/* What the kernel takes for a hash or LRU hash map when it is created (its fdinfo
 * `memlock:`): the whole table for a preallocated map, the buckets alone for one created
 * with BPF_F_NO_PREALLOC (its elements come as they are used). */
uint64_t hash_map_bytes(uint32_t key_size, uint32_t value_size, uint32_t max_entries,
			bool preallocated, int possible_cpus);

/* The bytes that the maps sized by cfg's limits need, leaving out those already pinned in
 * pin_dir (kept as they are, their memory taken long ago). */
uint64_t limits_map_bytes(const struct config *cfg, const char *pin_dir, int possible_cpus);

/* This machine's available memory: MemAvailable of /proc/meminfo, else sysinfo's free and
 * buffer RAM. 0 or a negative errno. */
int memory_available(uint64_t *bytes);

/* 0 when `needed` bytes fit in `available`; else -ENOMEM with one line in `why` naming the
 * limits, the bytes needed and the bytes the machine has. */
int limits_memory_fits(const struct config *cfg, uint64_t needed, uint64_t available,
		       char *why, size_t size);

/* The three together, for `up` and `reload`: logs the line and returns -ENOMEM when the
 * maps would not fit. */
int limits_memory_check(const struct config *cfg, const char *pin_dir);

#endif

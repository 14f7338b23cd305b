/* How many entries the hash maps hold, as the kernel counts them: one pass of a bpf_map
 * iterator (bpf/map_entries.bpf.c) gives every map's count at a cost that does not grow
 * with the entries, where a walk of a million keys takes seconds. Needs kernel 6.6 or
 * later (bpf_map_sum_elem_count); without it the caller walks the keys. */
#ifndef VNET_XDP_MAP_ENTRIES_H
#define VNET_XDP_MAP_ENTRIES_H

#include <stddef.h>
#include <stdint.h>
#include "vnet_xdp.h"

struct map_entry_table {
	struct map_entry_count *records; /* in map id order */
	size_t n;
};

/* Reads the counts of every map of the system. 0, or -errno (-EOPNOTSUPP: the kernel has
 * no such counters). Safe from several threads; the iterator is loaded once a process. */
int map_entry_table_read(struct map_entry_table *table);
/* The count of map id, or -ENOENT when the table does not know it. */
long long map_entry_table_find(const struct map_entry_table *table, uint32_t id);
void map_entry_table_free(struct map_entry_table *table);

#endif

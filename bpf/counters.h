/* Per-CPU counters: every verdict the program returns passes through one of these. */
#ifndef BPF_COUNTERS_H
#define BPF_COUNTERS_H

#include "maps.h"

static __always_inline void counter_add(void *map, __u32 index, __u64 bytes)
{
	struct packet_counter *c;

	if (dry_run)
		return;
	c = bpf_map_lookup_elem(map, &index);
	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline void count_datapath(__u32 counter, __u64 bytes)
{
	counter_add(&datapath_counters, counter, bytes);
}

static __always_inline void count_drop(__u32 reason, __u64 bytes)
{
	counter_add(&drop_counters, reason, bytes);
	counter_add(&datapath_counters, COUNT_DROPPED, bytes);
}

static __always_inline void count_peering(__u32 peering, __u64 bytes)
{
	counter_add(&peering_counters, peering, bytes);
}

#endif

/* Per-CPU counters: every verdict the program returns passes through one of these. */
#ifndef BPF_COUNTERS_H
#define BPF_COUNTERS_H

#include <linux/errno.h>
#include "maps.h"

/* Drops by interface, VNet and reason (headers/vnet_xdp.h): state, kept across reloads. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_DROP_DETAILS);
	__type(key, struct drop_detail_key);
	__type(value, struct packet_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drop_details SEC(".maps");

/* Keys each VNet slot holds in drop_details: written only when a key is added. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DROP_DETAIL_VNET_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drop_detail_keys SEC(".maps");

/* Drops of a VNet slot that found no room in drop_details. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_DETAIL_VNET_SLOTS);
	__type(key, __u32);
	__type(value, struct packet_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drop_detail_overflow SEC(".maps");

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

/* A new (interface, VNet, reason) key, within its VNet's share of the table: 0, or -1
 * when there is no room. Two CPUs adding at once may take a share one key over. */
static __always_inline int drop_detail_add(const struct drop_detail_key *key, __u32 slot,
					   __u64 bytes)
{
	struct packet_counter first = { 1, bytes };
	__u64 *keys = bpf_map_lookup_elem(&drop_detail_keys, &slot);
	long err;

	if (!keys || *keys >= DROP_DETAILS_PER_VNET)
		return -1;
	err = bpf_map_update_elem(&drop_details, key, &first, BPF_NOEXIST);
	if (err == -EEXIST) /* another CPU added it just now */
		return -2;
	if (err)
		return -1;
	__sync_fetch_and_add(keys, 1);
	return 0;
}

/* Where a drop happened: one hash lookup per drop, an insert the first time. */
static __always_inline void count_drop_detail(__u32 ifindex, __u32 vnet, __u32 reason,
					      __u64 bytes)
{
	struct drop_detail_key key = { .ifindex = ifindex, .reason = (__u16)reason };
	__u32 slot = vnet < MAX_VNETS ? vnet : MAX_VNETS;
	struct packet_counter *c;
	int err;

	key.vnet = slot < MAX_VNETS ? (__u16)slot : NSG_VNET_NONE;
	c = bpf_map_lookup_elem(&drop_details, &key);
	if (!c) {
		err = drop_detail_add(&key, slot, bytes);
		if (!err)
			return;
		if (err == -2)
			c = bpf_map_lookup_elem(&drop_details, &key);
	}
	if (!c) {
		counter_add(&drop_detail_overflow, slot, bytes);
		return;
	}
	c->packets++;
	c->bytes += bytes;
}

/* Every drop, XDP's and the tunnel's (tc), is counted here: by reason, and by where. A
 * function of its own, verified once: its locals stay off the frame of the XDP program's
 * top level, which the deepest calls share (Debian 6.1 counts each frame in 32 bytes). */
__noinline int count_drop(__u32 ifindex, __u32 vnet, __u32 reason, __u64 bytes)
{
	if (dry_run)
		return 0;
	counter_add(&drop_counters, reason, bytes);
	counter_add(&datapath_counters, COUNT_DROPPED, bytes);
	count_drop_detail(ifindex, vnet, reason, bytes);
	return 0;
}

static __always_inline void count_peering(__u32 peering, __u64 bytes)
{
	counter_add(&peering_counters, peering, bytes);
}

#endif

/* Entries of every BPF map, as the kernel counts them (per-CPU insert/delete counters of
 * hash maps, kernel 6.6 and later): one record per map, {id, entries}, read by user space
 * through a bpf_map iterator. Reading it costs a few operations per map, however many
 * entries the map holds; a walk of a million-entry map costs seconds (user/lib/map_entries.c). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "vnet_xdp.h"

/* The few kernel fields read, relocated by CO-RE against the running kernel's BTF. */
struct bpf_map {
	__u32 id;
} __attribute__((preserve_access_index));

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_map {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
} __attribute__((preserve_access_index));

extern __s64 bpf_map_sum_elem_count(const struct bpf_map *map) __ksym;

SEC("iter/bpf_map")
int map_entries(struct bpf_iter__bpf_map *ctx)
{
	struct bpf_map *map = ctx->map;
	struct map_entry_count record;

	if (!map)
		return 0;
	record.id = map->id;
	record.pad = 0;
	record.entries = bpf_map_sum_elem_count(map);
	bpf_seq_write(ctx->meta->seq, &record, sizeof(record));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

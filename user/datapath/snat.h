/* SNAT's maps from user space: the plan written, the mapping maps sized, the GC of
 * expired mappings. The plan is compile/snat_plan.c; the datapath side is bpf/snat.h. */
#ifndef VNET_XDP_DATAPATH_SNAT_H
#define VNET_XDP_DATAPATH_SNAT_H

#include <stddef.h>
#include <stdint.h>
#include <bpf/libbpf.h>
#include "compile/snat_plan.h"
#include "datapath/maps.h"

/* Fills the config maps (sources, pools, VIPs), gives every VIP its counter slot and
 * drops the port blocks of layouts no pool has any more. 0 or -errno. */
int snat_plan_write(const struct datapath_maps *maps, const struct snat_plan *plan);

/* Capacity of the mapping maps for a gateway created from now on. */
void snat_table_size_set(uint32_t entries);
/* Before a load: pinned mapping maps keep their capacity (they are reused), new ones get
 * the configured size. 0 or -errno. */
int snat_maps_size(struct bpf_object *obj, const char *pin_dir);

struct snat_gc_result {
	size_t mappings, mappings_expired;   /* seen, removed */
	size_t reverse, reverse_released, reverse_freed;
};

/* One pass of the GC at time now_ns (CLOCK_MONOTONIC): removes mappings past their
 * timeout, starts the cool-down of reverse entries whose mapping ended, and frees the
 * ports whose cool-down is over. Live mappings are not touched. 0 or -errno. */
int snat_gc(const char *gateway, uint64_t now_ns, struct snat_gc_result *result);

#endif

/* The one way into a gateway's pinned maps: the contract's list of maps
 * (VNET_XDP_PINNED_MAPS), opened by id, one at a time or all at once. */
#ifndef VNET_XDP_DATAPATH_MAPS_H
#define VNET_XDP_DATAPATH_MAPS_H

#include <stdbool.h>
#include "vnet_xdp.h"

/* Every pinned map of one gateway, by id; -1 where a map is not open. */
struct datapath_maps {
	int fd[MAP_COUNT];
};

const char *datapath_map_name(enum vnet_xdp_map map);
/* Whether a map holds config (rebuilt per generation) rather than state (kept). */
bool datapath_map_is_config(enum vnet_xdp_map map);
/* The id of the map of that name, or -1 when the contract lists none. */
int datapath_map_find(const char *name);

/* Opens one pinned map of the gateway; while a reload is staging (see
 * datapath_stage_set), config maps open from the staging directory. fd or -errno. */
int datapath_map_open(const char *gateway, enum vnet_xdp_map map);
void datapath_stage_set(const char *dir);

/* Opens every map of the gateway. 0, or -errno with nothing left open. */
int datapath_maps_open(const char *gateway, struct datapath_maps *maps);
/* Marks every map not open, for a handle filled by hand (the bpf test tier). */
void datapath_maps_init(struct datapath_maps *maps);
void datapath_maps_close(struct datapath_maps *maps);

/* Every map pinned under the gateway's directory, whatever its name, in name order (the
 * maps of `stats` and the memory figures): fn is called with each one open. */
struct bpf_map_info;
typedef void pinned_map_fn(const char *name, int fd, const struct bpf_map_info *info,
			   void *ctx);
void pinned_maps_foreach(const char *gateway, pinned_map_fn *fn, void *ctx);
/* The kernel memory charged to a map, as its fdinfo says ("memlock": what RLIMIT_MEMLOCK
 * or the memory cgroup is charged), or -errno when the kernel does not say. */
long long map_memlock_bytes(int fd);
/* The kernel memory the gateway's pinned maps take, summed; 0 when none is pinned. */
long long datapath_maps_memlock_bytes(const char *gateway);

#endif

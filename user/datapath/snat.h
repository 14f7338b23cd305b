/* SNAT in user space: the pools and sources the config gives (VNet VIPs, NAT gateways),
 * the sizing of the mapping maps, the GC of expired mappings, per-VIP gauges and the
 * `vnet-xdp snat` command. The datapath side is bpf/snat.h. */
#ifndef VNET_XDP_SNAT_H
#define VNET_XDP_SNAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <bpf/libbpf.h>
#include "config/config.h"
#include "vnet_xdp.h"

struct snat_plan_source {
	struct lpm_key key; /* scope: the VNet id */
	uint32_t pool;
};

struct snat_plan_pool {
	struct snat_pool pool;
	const char *owner;   /* the VNet or NAT gateway it belongs to */
};

struct snat_plan {
	struct snat_plan_pool *pools;
	size_t n_pools;
	struct snat_plan_source *sources;
	size_t n_sources;
};

/* Pools per owner and family: each VNet with a VIP, each NAT gateway (which wins for its
 * subnets: their prefixes are longer than the VNet's). Returns 0 or -errno. */
int snat_plan_build(const struct config *cfg, struct snat_plan *out);
void snat_plan_free(struct snat_plan *plan);

/* Warns, for each pool whose port blocks (limits.snatMappingsPerVm) are fewer than the
 * config's network interface addresses that take SNAT through it, that the VMs beyond
 * get no port. Returns how many pools it warned of. */
int snat_blocks_warn(const struct config *cfg);

/* Fills the config maps (sources, pools, VIPs) of the gateway, staged or pinned as
 * datapath_map_open decides, and gives every VIP its counter slot. 0 or -errno. */
int snat_maps_fill(const char *gateway, const struct config *cfg);

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

/* Ports in use per VIP, {"VIP": count}, a port cooling down included: a walk of the
 * reverse table, so its cost grows with the live mappings (about a second at a million).
 * serve counts it in the background (see stats_collect_slow). */
json_t *snat_ports_in_use(const char *gateway);
/* The "snat" member of the stats document: per VIP {vip, portsInUse, portsTotal, flows,
 * portExhausted, egressPackets, egressBytes, ingressPackets, ingressBytes}; portsInUse
 * from ports_in_use (snat_ports_in_use's object), counted now when it is NULL. */
json_t *snat_stats_json(const char *gateway, json_t *ports_in_use);

/* `vnet-xdp snat [-n NAME] [-j] [--gc]`: the mappings, optionally after a GC pass. */
int snat_main(int argc, char **argv);

#endif

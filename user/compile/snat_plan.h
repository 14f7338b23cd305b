/* SNAT's plan, pure: the pools and sources the config gives (VNet VIPs, NAT gateways).
 * datapath/snat.c writes it; the datapath side is bpf/snat.h. */
#ifndef VNET_XDP_COMPILE_SNAT_PLAN_H
#define VNET_XDP_COMPILE_SNAT_PLAN_H

#include <stddef.h>
#include <stdint.h>
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

#endif

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "compile/plan.h"
#include "compile/snat_plan.h"
#include "lib/log.h"

/* ---- the plan ---------------------------------------------------------------------- */

/* The port blocks of a pool (headers/vnet_xdp.h): limits.snatMappingsPerVm ports per VM
 * on each VIP, or the whole range when it is smaller. layout changes with anything that
 * moves a block's ports, so that claims of the old layout are void after a reload. */
static void pool_blocks_set(struct snat_pool *p, uint32_t ports_per_vm)
{
	uint32_t range = (uint32_t)p->port_max - p->port_min + 1;
	uint32_t h = 2166136261u;
	const unsigned char *vips = (const unsigned char *)p->vips;
	uint32_t words[3];

	if (!ports_per_vm)
		return;
	p->block_ports = ports_per_vm < range ? ports_per_vm : range;
	p->n_blocks = range / p->block_ports;
	words[0] = p->port_min;
	words[1] = p->port_max;
	words[2] = p->block_ports;
	for (size_t i = 0; i < sizeof(words); i++)
		h = (h ^ ((const unsigned char *)words)[i]) * 16777619u;
	for (size_t i = 0; i < p->n_vips * sizeof(p->vips[0]); i++)
		h = (h ^ vips[i]) * 16777619u;
	p->layout = h ? h : 1;
}

static int pool_add(struct snat_plan *plan, const char *owner, int family,
		    const struct ip_address *vips, size_t n_vips, const struct config_limits *lim,
		    uint32_t tcp_idle_seconds, uint32_t *index)
{
	struct snat_plan_pool *bigger, *p;

	if (plan->n_pools >= MAX_SNAT_POOLS)
		return -E2BIG;
	bigger = realloc(plan->pools, (plan->n_pools + 1) * sizeof(*bigger));
	if (!bigger)
		return -ENOMEM;
	plan->pools = bigger;
	p = &plan->pools[plan->n_pools];
	memset(p, 0, sizeof(*p));
	p->owner = owner;
	p->pool.port_min = lim->snat_port_min;
	p->pool.port_max = lim->snat_port_max;
	p->pool.tcp_idle_timeout_seconds = tcp_idle_seconds;
	p->pool.tcp_transitory_timeout_seconds = lim->tcp_transitory_timeout_seconds;
	p->pool.udp_idle_timeout_seconds = lim->udp_idle_timeout_seconds;
	p->pool.icmp_idle_timeout_seconds = lim->icmp_idle_timeout_seconds;
	for (size_t i = 0; i < n_vips; i++) {
		if (vips[i].family != family)
			continue;
		if (p->pool.n_vips >= MAX_SNAT_POOL_VIPS) {
			log_error("%s has more than %d public IPv%d addresses; SNAT pools at most %d",
				  owner, MAX_SNAT_POOL_VIPS, family == AF_INET ? 4 : 6,
				  MAX_SNAT_POOL_VIPS);
			return -E2BIG;
		}
		p->pool.vips[p->pool.n_vips].family = family;
		memcpy(p->pool.vips[p->pool.n_vips].addr, vips[i].addr, 16);
		p->pool.n_vips++;
	}
	if (!p->pool.n_vips)
		return -ENOENT; /* no address of this family: not a pool */
	pool_blocks_set(&p->pool, lim->snat_mappings_per_vm);
	*index = plan->n_pools++;
	return 0;
}

static int source_add(struct snat_plan *plan, uint32_t vnet, const struct ip_prefix *prefix,
		      uint32_t pool)
{
	struct snat_plan_source *bigger;

	if (plan->n_sources >= MAX_SNAT_SOURCES)
		return -E2BIG;
	bigger = realloc(plan->sources, (plan->n_sources + 1) * sizeof(*bigger));
	if (!bigger)
		return -ENOMEM;
	plan->sources = bigger;
	lpm_key_from_prefix(&plan->sources[plan->n_sources].key, vnet, prefix);
	plan->sources[plan->n_sources].pool = pool;
	plan->n_sources++;
	return 0;
}

static int vnet_pools(struct snat_plan *plan, const struct config *cfg,
		      const struct config_gateway_vnet *gv)
{
	const struct config_vnet *vnet = &cfg->vnets[gv->vnet];
	int families[] = { AF_INET, AF_INET6 }, err;

	for (size_t f = 0; f < 2; f++) {
		uint32_t pool;

		err = pool_add(plan, vnet->name, families[f], gv->vips, gv->n_vips, &cfg->limits,
			       cfg->limits.tcp_idle_timeout_seconds, &pool);
		if (err == -ENOENT)
			continue;
		if (err)
			return err;
		for (size_t p = 0; p < vnet->n_prefixes; p++)
			if (vnet->prefixes[p].family == families[f] &&
			    (err = source_add(plan, gv->vnet, &vnet->prefixes[p], pool)))
				return err;
	}
	return 0;
}

/* A NAT gateway's pool serves every subnet associated with it, in any VNet. */
static int nat_gateway_pools(struct snat_plan *plan, const struct config *cfg, size_t g)
{
	const struct config_nat_gateway *nat = &cfg->nat_gateways[g];
	int families[] = { AF_INET, AF_INET6 }, err;
	uint32_t tcp_idle = nat->idle_timeout_minutes > 0 ? (uint32_t)nat->idle_timeout_minutes * 60
							  : cfg->limits.tcp_idle_timeout_seconds;

	for (size_t f = 0; f < 2; f++) {
		uint32_t pool;

		err = pool_add(plan, nat->name, families[f], nat->public_ips, nat->n_public_ips,
			       &cfg->limits, tcp_idle, &pool);
		if (err == -ENOENT)
			continue;
		if (err)
			return err;
		for (size_t v = 0; v < cfg->n_vnets; v++)
			for (size_t s = 0; s < cfg->vnets[v].n_subnets; s++) {
				const struct config_subnet *subnet = &cfg->vnets[v].subnets[s];

				if (subnet->nat_gateway != (int)g)
					continue;
				for (size_t p = 0; p < subnet->n_prefixes; p++)
					if (subnet->prefixes[p].family == families[f] &&
					    (err = source_add(plan, v, &subnet->prefixes[p], pool)))
						return err;
			}
	}
	return 0;
}

int snat_plan_build(const struct config *cfg, struct snat_plan *out)
{
	int err = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; !err && i < cfg->n_gateway_vnets; i++)
		if (cfg->gateway_vnets[i].vnet != CONFIG_NONE)
			err = vnet_pools(out, cfg, &cfg->gateway_vnets[i]);
	for (size_t g = 0; !err && g < cfg->n_nat_gateways; g++)
		err = nat_gateway_pools(out, cfg, g);
	if (err)
		snat_plan_free(out);
	return err;
}

/* The pool a VM's address takes SNAT through: the longest source prefix of its VNet
 * that holds it, as the datapath's LPM lookup finds it; -1 for none. */
static int pool_of_address(const struct snat_plan *plan, uint32_t vnet,
			   const struct ip_address *a)
{
	uint32_t best_len = 0;
	int best = -1;

	for (size_t i = 0; i < plan->n_sources; i++) {
		const struct lpm_key *k = &plan->sources[i].key;
		uint32_t len = k->prefixlen - LPM_SCOPE_BITS, full = len / 8, rest = len % 8;

		if (k->scope != vnet || k->family != (uint32_t)a->family || (best >= 0 && len <= best_len))
			continue;
		if (memcmp(k->addr, a->addr, full) ||
		    (rest && (k->addr[full] ^ a->addr[full]) & (0xff << (8 - rest))))
			continue;
		best = (int)plan->sources[i].pool;
		best_len = len;
	}
	return best;
}

int snat_blocks_warn(const struct config *cfg)
{
	struct snat_plan plan;
	size_t *vms;
	int warned = 0;

	if (snat_plan_build(cfg, &plan))
		return 0; /* up says why */
	vms = calloc(plan.n_pools ? plan.n_pools : 1, sizeof(*vms));
	for (size_t n = 0; vms && n < cfg->n_nics; n++)
		for (size_t a = 0; cfg->nics[n].vnet != CONFIG_NONE && a < cfg->nics[n].n_addresses; a++) {
			int pool = pool_of_address(&plan, (uint32_t)cfg->nics[n].vnet,
						   &cfg->nics[n].addresses[a]);

			if (pool >= 0)
				vms[pool]++;
		}
	for (size_t i = 0; vms && i < plan.n_pools; i++) {
		const struct snat_pool *p = &plan.pools[i].pool;

		if (!p->block_ports || vms[i] <= p->n_blocks)
			continue;
		log_warn("%s: %zu network interface addresses take SNAT through %s, whose ports "
			 "%u-%u make %u blocks of limits.snatMappingsPerVm %u: the VMs beyond get no "
			 "port (snat_port_exhausted) until a VM's block idles; allowed: a smaller "
			 "snatMappingsPerVm or a wider snatPortMin-snatPortMax", cfg->path ? cfg->path : "config",
			 vms[i], plan.pools[i].owner, p->port_min, p->port_max, p->n_blocks, p->block_ports);
		warned++;
	}
	free(vms);
	snat_plan_free(&plan);
	return warned;
}

void snat_plan_free(struct snat_plan *plan)
{
	free(plan->pools);
	free(plan->sources);
	memset(plan, 0, sizeof(*plan));
}

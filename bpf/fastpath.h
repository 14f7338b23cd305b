/* The established-flow fast path. The first packet of a flow in each direction goes
 * through the whole pipeline; when it is forwarded to a VNet (local or peered), what the
 * pipeline found is remembered per direction: the source VNet, the route, and the next
 * hop's MACs from bpf_fib_lookup. Later packets of that flow skip the anti-spoofing and
 * route LPMs, the local-address lookup and (for FAST_PATH_NEXT_HOP_REFRESH_NS) the FIB
 * lookup; the NSG stage still finds the flow in the flow table, so the flow's clock, TCP
 * state, counters and flushConnection re-evaluation stay exactly as without the cache.
 *
 * What invalidates an entry: a config generation other than the one that wrote it (a
 * reload also starts from an empty copy: the cache is one of the config maps), a flow
 * that is gone, idle past its timeout or due for re-evaluation (the packet takes the
 * whole pipeline, which rewrites the entry), and time: the next hop is asked again every
 * FAST_PATH_NEXT_HOP_REFRESH_NS, so a neighbour's new MAC (or a route the kernel changed)
 * is picked up within that time. SNAT'd flows (Internet routes, replies on the uplink)
 * are not cached: they go through the SNAT stages every time. */
#ifndef BPF_FASTPATH_H
#define BPF_FASTPATH_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "vnet_xdp.h"
#include "maps.h"
#include "parse.h"
#include "flow.h"

#define FAST_PATH_NEXT_HOP_REFRESH_NS (100ULL * 1000 * 1000)

/* One direction of a flow as it arrives: the ingress interface and the packet's own
 * addresses, protocol and ports (echo identifier in sport for ICMP). */
struct fast_path_key {
	__u8 src[16];
	__u8 dst[16];
	__u32 ingress_ifindex;
	__u16 sport, dport;
	__u8 family, proto;
	__u8 pad[2];
};

struct fast_path_entry {
	__u32 generation;          /* the config generation the pipeline ran under */
	__u32 src_vnet;
	struct route_info route;
	__u64 next_hop_checked_ns; /* when bpf_fib_lookup last gave these MACs */
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u8 pad[4];
};

/* Sized by the loader like the flow table. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct fast_path_key);
	__type(value, struct fast_path_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fast_paths SEC(".maps");

struct fast_path_scratch {
	struct fast_path_key key;
	struct fast_path_entry entry;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fast_path_scratch);
} fast_path_scratch SEC(".maps");

/* Only whole packets with a transport header: a fragment's flow is not the one its
 * ports would name. */
static __always_inline int fast_path_applies(const struct packet *pkt)
{
	return !pkt->is_fragment && pkt->l4;
}

static __always_inline struct fast_path_scratch *fast_path_key_fill(struct xdp_md *ctx,
								    const struct packet *pkt)
{
	__u32 zero = 0;
	struct fast_path_scratch *sc = bpf_map_lookup_elem(&fast_path_scratch, &zero);
	struct fast_path_key *key;

	if (!sc)
		return NULL;
	key = &sc->key;
	__builtin_memset(key, 0, sizeof(*key));
	if (pkt->family == AF_INET) {
		__builtin_memcpy(key->src, &pkt->ip4->saddr, 4);
		__builtin_memcpy(key->dst, &pkt->ip4->daddr, 4);
	} else {
		__builtin_memcpy(key->src, &pkt->ip6->saddr, 16);
		__builtin_memcpy(key->dst, &pkt->ip6->daddr, 16);
	}
	key->ingress_ifindex = ctx->ingress_ifindex;
	key->sport = pkt->sport;
	key->dport = pkt->dport;
	key->family = pkt->family;
	key->proto = pkt->l4_proto;
	return sc;
}

static __always_inline __u32 config_generation(void)
{
	__u32 zero = 0;
	struct gateway_settings *s = bpf_map_lookup_elem(&settings, &zero);

	return s ? s->generation : 0;
}

/* The cached result for this packet's direction of its flow, or NULL. */
static __always_inline struct fast_path_entry *fast_path_lookup(struct xdp_md *ctx,
								const struct packet *pkt)
{
	struct fast_path_scratch *sc;
	struct fast_path_entry *e;

	if (!fast_path_applies(pkt))
		return NULL;
	sc = fast_path_key_fill(ctx, pkt);
	if (!sc)
		return NULL;
	e = bpf_map_lookup_elem(&fast_paths, &sc->key);
	if (!e || e->generation != config_generation())
		return NULL;
	return e;
}

/* After the whole pipeline forwarded a packet of an allowed flow to a VNet: remember
 * what it found, with the MACs bpf_fib_lookup gave (params) at time now. */
static __always_inline void fast_path_remember(struct xdp_md *ctx, const struct packet *pkt,
					       __u32 src_vnet, const struct route_info *route,
					       const struct bpf_fib_lookup *params, __u64 now)
{
	struct fast_path_scratch *sc;
	struct fast_path_entry *e;

	if (dry_run || !fast_path_applies(pkt))
		return;
	sc = fast_path_key_fill(ctx, pkt);
	if (!sc)
		return;
	e = &sc->entry;
	__builtin_memset(e, 0, sizeof(*e));
	e->generation = config_generation();
	e->src_vnet = src_vnet;
	e->route = *route;
	e->next_hop_checked_ns = now;
	__builtin_memcpy(e->dmac, params->dmac, ETH_ALEN);
	__builtin_memcpy(e->smac, params->smac, ETH_ALEN);
	bpf_map_update_elem(&fast_paths, &sc->key, e, BPF_ANY);
}

/* The next hop asked again just now (a forward() that redirected): the entry keeps it. */
static __always_inline void fast_path_next_hop_update(struct fast_path_entry *e,
						      const struct bpf_fib_lookup *params,
						      __u64 now)
{
	if (dry_run)
		return;
	__builtin_memcpy(e->dmac, params->dmac, ETH_ALEN);
	__builtin_memcpy(e->smac, params->smac, ETH_ALEN);
	e->next_hop_checked_ns = now;
}

static __always_inline int fast_path_next_hop_stale(const struct fast_path_entry *e, __u64 now)
{
	return now - e->next_hop_checked_ns > FAST_PATH_NEXT_HOP_REFRESH_NS;
}

#endif

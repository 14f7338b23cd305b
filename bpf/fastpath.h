/* The established-flow fast path. The first packet of a flow in each direction goes
 * through the whole pipeline; when it is forwarded to a VNet (local or peered), what the
 * pipeline found is remembered per direction (struct fast_path_entry): the source VNet,
 * the route, the next hop's MACs from bpf_fib_lookup, and the flow entry it belongs to.
 *
 * Two speeds. A packet of a remembered direction skips the anti-spoofing and route LPMs,
 * the local-address lookup and the FIB lookup, and asks the flow table (nsg_established_
 * stage) as the whole pipeline would: FAST_PATH_CACHED. When that confirmation finds the
 * flow open (TCP established with no FIN yet, or any other protocol), it grants a lease of
 * FAST_PATH_LEASE_NS: until then the direction's packets that carry no SYN, FIN or RST are
 * forwarded from the entry alone, one hash lookup in all (FAST_PATH_LEASED). They move the
 * datapath, peering, NSG rule and flow-hit counters per packet as always; the flow entry's
 * packets, bytes and last activity wait in the cache entry (pending_*, last_seen_ns) and
 * the next confirmation folds them in; `vnet-xdp flows` adds what still waits.
 *
 * What ends a lease or an entry: time (every FAST_PATH_LEASE_NS the flow table and the FIB
 * are asked again, so a neighbour's new MAC, a route the kernel changed or a flow that is
 * gone is noticed within it), a TCP packet with SYN, FIN or RST (the flow table follows
 * the connection's state on every such packet), and a config generation other than the
 * one that wrote the entry (a reload: such an entry is never used, and its direction's
 * next packet takes the whole pipeline, which rewrites it). A flow the flow table no
 * longer has, has expired or must be re-evaluated (flushConnection) sends the packet
 * through the whole pipeline. SNAT'd flows (Internet routes, replies on the uplink) are
 * not cached: they go through the SNAT stages every time. */
#ifndef BPF_FASTPATH_H
#define BPF_FASTPATH_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "vnet_xdp.h"
#include "maps.h"
#include "parse.h"
#include "flow.h"

/* Idle timeouts are seconds to minutes: a flow entry's activity may lag this much. */
#define FAST_PATH_LEASE_NS (100ULL * 1000 * 1000)

/* Sized by the loader like the flow table; state, kept across reloads, so that counts
 * waiting in an entry survive one. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FLOW_TABLE_ENTRIES_DEFAULT);
	__type(key, struct fast_path_key4);
	__type(value, struct fast_path_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fast_paths4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FLOW_TABLE_ENTRIES_DEFAULT);
	__type(key, struct fast_path_key6);
	__type(value, struct fast_path_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fast_paths6 SEC(".maps");

struct fast_path_scratch {
	struct fast_path_key4 key4;
	struct fast_path_key6 key6;
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

/* The packet's key in its family's map, in the per-CPU scratch. */
static __always_inline struct fast_path_scratch *fast_path_key_fill(struct xdp_md *ctx,
								    const struct packet *pkt)
{
	__u32 zero = 0;
	struct fast_path_scratch *sc = bpf_map_lookup_elem(&fast_path_scratch, &zero);

	if (!sc)
		return NULL;
	if (pkt->family == AF_INET) {
		struct fast_path_key4 *key = &sc->key4;

		__builtin_memset(key, 0, sizeof(*key));
		__builtin_memcpy(key->src, &pkt->ip4->saddr, 4);
		__builtin_memcpy(key->dst, &pkt->ip4->daddr, 4);
		key->ingress_ifindex = ctx->ingress_ifindex;
		key->sport = pkt->sport;
		key->dport = pkt->dport;
		key->proto = pkt->l4_proto;
	} else {
		struct fast_path_key6 *key = &sc->key6;

		__builtin_memset(key, 0, sizeof(*key));
		__builtin_memcpy(key->src, &pkt->ip6->saddr, 16);
		__builtin_memcpy(key->dst, &pkt->ip6->daddr, 16);
		key->ingress_ifindex = ctx->ingress_ifindex;
		key->sport = pkt->sport;
		key->dport = pkt->dport;
		key->proto = pkt->l4_proto;
	}
	return sc;
}

/* Two calls the compiler must not merge into one with the map chosen before it: the
 * verifier inlines a lookup only where the call always names the same map. */
static __always_inline struct fast_path_entry *fast_path_find(const struct packet *pkt,
							      struct fast_path_scratch *sc)
{
	struct fast_path_entry *e;

	if (pkt->family == AF_INET) {
		e = bpf_map_lookup_elem(&fast_paths4, &sc->key4);
		asm volatile("%0 = %0" : "+r"(e)); /* the branches end apart */
	} else {
		e = bpf_map_lookup_elem(&fast_paths6, &sc->key6);
	}
	return e;
}

static __always_inline __u32 config_generation(void)
{
	__u32 zero = 0;
	struct gateway_settings *s = bpf_map_lookup_elem(&settings, &zero);

	return s ? s->generation : 0;
}

static __always_inline int same_mac(const __u8 *a, const __u8 *b)
{
	return *(const __u32 *)a == *(const __u32 *)b &&
	       *(const __u16 *)(a + 4) == *(const __u16 *)(b + 4);
}

/* The cached result for this packet's direction of its flow, or NULL: also when the frame
 * comes from another MAC than the one the pipeline judged (another NIC). */
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
	e = fast_path_find(pkt, sc);
	if (!e || e->generation != config_generation() || !same_mac(e->ingress_smac, pkt->eth->h_source))
		return NULL;
	return e;
}

static __always_inline int flow_key_equal(const struct flow_key *a, const struct flow_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

#pragma unroll
	for (int i = 0; i < sizeof(*a) / 4; i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

/* After the whole pipeline forwarded a packet of an allowed flow to a VNet: remember
 * what it found, with the MACs bpf_fib_lookup gave (params) at time now. The flow table
 * grants the lease on the next packet. Counts still waiting in the entry this one replaces
 * stay when it belongs to the same flow. */
static __always_inline void fast_path_remember(struct xdp_md *ctx, const struct packet *pkt,
					       const __u8 *ingress_smac,
					       __u32 src_vnet, const struct route_info *route,
					       const struct bpf_fib_lookup *params,
					       const struct flow_key *flow, __u64 now)
{
	struct fast_path_scratch *sc;
	struct fast_path_entry *e, *old;

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
	e->checked_ns = now;
	e->flow = *flow;
	__builtin_memcpy(e->dmac, params->dmac, ETH_ALEN);
	__builtin_memcpy(e->smac, params->smac, ETH_ALEN);
	__builtin_memcpy(e->ingress_smac, ingress_smac, ETH_ALEN);
	old = fast_path_find(pkt, sc);
	if (old && flow_key_equal(&old->flow, flow)) {
		e->pending_packets = old->pending_packets;
		e->pending_bytes = old->pending_bytes;
		e->last_seen_ns = old->last_seen_ns;
		e->responder = old->responder;
	}
	if (pkt->family == AF_INET)
		bpf_map_update_elem(&fast_paths4, &sc->key4, e, BPF_ANY);
	else
		bpf_map_update_elem(&fast_paths6, &sc->key6, e, BPF_ANY);
}

/* TCP's SYN, FIN and RST move the flow's state: such packets always ask the flow table. */
static __always_inline int tcp_control_packet(const struct packet *pkt)
{
	return tcp_flags_of(pkt) & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST);
}

static __always_inline int fast_path_lease_holds(const struct fast_path_entry *e,
						 const struct packet *pkt, __u64 now)
{
	return e->leased && clock_age_ns(now, e->checked_ns) <= FAST_PATH_LEASE_NS &&
	       !tcp_control_packet(pkt);
}

/* A packet forwarded under the lease: counted as nsg_established_stage would count it,
 * with the flow entry's share left in the cache entry. res is what the decision trace
 * shows of the NSG stages. */
static __always_inline void fast_path_count_leased(struct fast_path_entry *e, __u32 len,
						   __u64 now, struct nsg_result *res)
{
	nsg_count_stages(e->stages, 0, len);
	flow_count(FLOW_HIT);
	__builtin_memcpy(res->stages, e->stages, sizeof(res->stages));
	res->outcome = NSG_FLOW_HIT;
	if (dry_run)
		return;
	e->pending_packets++;
	e->pending_bytes += len;
	e->last_seen_ns = now;
}

/* The flow table just confirmed the flow (and folded the pending counts in): a new lease
 * when the flow is open, the MACs the FIB gave now when it was asked. */
static __always_inline void fast_path_confirmed(struct fast_path_entry *e,
						const struct flow_confirmation *c,
						const struct nsg_result *res,
						const struct bpf_fib_lookup *params, __u64 now)
{
	if (dry_run)
		return;
	e->pending_packets = 0;
	e->pending_bytes = 0;
	e->leased = c->leasable && params;
	e->responder = c->responder;
	e->checked_ns = now;
	__builtin_memcpy(e->stages, res->stages, sizeof(e->stages));
	if (params) {
		__builtin_memcpy(e->dmac, params->dmac, ETH_ALEN);
		__builtin_memcpy(e->smac, params->smac, ETH_ALEN);
	}
}

#endif

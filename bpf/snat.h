/* Outbound NAT of VM traffic to a public VIP, as Azure does it for a VNet (its binding's
 * VIPs) or a subnet (its NAT gateway): egress rewrites the source to VIP:port, replies
 * on the uplink are rewritten back to the VM, and nothing else reaches a VM through a
 * VIP. Mappings live in two hash maps (the VM's flow -> VIP:port, the reply's flow -> the
 * VM's flow). Each VM owns a block of the pool's ports (headers/vnet_xdp.h, "Port
 * blocks"), whose every port serves one flow at a time; without blocks ports are handed
 * out per destination, so one VIP:port serves many remote endpoints at once. An entry
 * that exists is never handed out again: a port comes back when a new flow takes over an
 * entry that expired a cool-down ago, or when the user-space GC removes it.
 *
 * Checksums (bpf/checksum.h): a TCP/UDP field that holds the folded pseudo-header sum, as
 * one a VM's veth left to offload does, keeps that form with the new addresses: a packet
 * the kernel forwards (XDP_PASS) is completed by the kernel, a redirected one by
 * l4_checksum_finish just before the redirect. Every other checksum is updated
 * incrementally (RFC 1624). */
#ifndef BPF_SNAT_H
#define BPF_SNAT_H

#include <linux/bpf.h>
#include <linux/errno.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "vnet_xdp.h"
#include "maps.h"
#include "parse.h"
#include "forward.h"
#include "checksum.h"
#include "flow.h"

#define SNAT_PROBES 16             /* ports tried for one new flow before giving up */
#define SNAT_REFRESH_NS 1000000000ULL /* last_seen is written at most once a second */

#define ICMP_ECHO_REPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO_REQUEST 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETER_PROBLEM 12
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129

/* What SNAT did to the packet, for the stages after it. */
struct snat_state {
	__u8 translated;        /* a reply rewritten back to a VM, or an egress rewritten */
	__u8 checksum_partial;  /* the L4 checksum is in partial form; complete on redirect */
	__u8 answered;          /* a reply of the VM's flow in snat_scratch.answered */
	__u8 tcp_flags;         /* its TCP flags */
	__u32 vnet;             /* replies: the VM's VNet, whose routes deliver it */
};

/* ---- mappings ---- */

static __always_inline int address_equal(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline void snat_count(const __u8 *vip, __u32 family, int egress, __u32 bytes)
{
	struct address_key key = { .family = family };
	struct snat_vip_counter *c;

	__builtin_memcpy(key.addr, vip, 16);
	c = bpf_map_lookup_elem(&snat_vip_counters, &key);
	if (!c)
		return;
	if (egress) {
		c->egress_packets++;
		c->egress_bytes += bytes;
	} else {
		c->ingress_packets++;
		c->ingress_bytes += bytes;
	}
}

static __always_inline void snat_count_event(const __u8 *vip, __u32 family, int exhausted)
{
	struct address_key key = { .family = family };
	struct snat_vip_counter *c;

	__builtin_memcpy(key.addr, vip, 16);
	c = bpf_map_lookup_elem(&snat_vip_counters, &key);
	if (!c)
		return;
	if (exhausted)
		c->port_exhausted++;
	else
		c->flows++;
}

/* Returns 1 when last_seen moved on (at most once a second). */
static __always_inline int snat_mapping_touch(struct snat_mapping *m, __u64 now)
{
	if (clock_age_ns(now, m->last_seen_ns) <= SNAT_REFRESH_NS)
		return 0;
	m->last_seen_ns = now;
	return 1;
}

/* FIN/RST tracking: a closing flow keeps its mapping for the transitory timeout only;
 * an answer from the remote turns an opening flow into an established one. */
static __always_inline void snat_track_tcp(struct snat_mapping *m, const struct packet *pkt,
					   int from_vm, __u64 now)
{
	struct tcphdr *tcp = pkt->l4;

	if (pkt->l4_proto != IPPROTO_TCP || !tcp || (void *)(tcp + 1) > pkt->data_end)
		return;
	if (tcp->rst) {
		if (m->tcp_state != SNAT_TCP_CLOSING) {
			m->tcp_state = SNAT_TCP_CLOSING;
			m->last_seen_ns = now;
		}
		return;
	}
	if (tcp->syn && !tcp->ack && from_vm && m->tcp_state == SNAT_TCP_CLOSING) {
		m->tcp_state = SNAT_TCP_OPENING; /* the VM opens the same 4-tuple anew */
		m->fin_seen = 0;
		m->last_seen_ns = now;
		return;
	}
	if (tcp->fin) {
		__u8 bit = from_vm ? 1 : 2;

		if (!(m->fin_seen & bit) || m->tcp_state != SNAT_TCP_CLOSING) {
			m->fin_seen |= bit;
			m->tcp_state = SNAT_TCP_CLOSING;
			m->last_seen_ns = now;
		}
		return;
	}
	if (!from_vm && tcp->ack && m->tcp_state == SNAT_TCP_OPENING) {
		m->tcp_state = SNAT_TCP_ESTABLISHED;
		m->last_seen_ns = now;
	}
}

/* The flow key of a packet as it is: source first. ICMP echo keeps its identifier on
 * the VM's side of the key (src_port on egress, dst_port on a reply). */
static __always_inline void snat_key_of_packet(struct snat_flow_key *key, const struct packet *pkt,
					       int egress)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->family = pkt->family;
	key->proto = pkt->l4_proto;
	address_copy(key->src, pkt, 1);
	address_copy(key->dst, pkt, 0);
	if (pkt->l4_proto == IPPROTO_ICMP || pkt->l4_proto == IPPROTO_ICMPV6) {
		if (egress)
			key->src_port = bpf_htons(pkt->sport);
		else
			key->dst_port = bpf_htons(pkt->sport);
	} else {
		key->src_port = bpf_htons(pkt->sport);
		key->dst_port = bpf_htons(pkt->dport);
	}
}

static __always_inline int snat_update_failure(long err)
{
	return err == -E2BIG || err == -ENOMEM ? DROP_SNAT_TABLE_FULL : DROP_SNAT_MAP_UPDATE_FAILED;
}

/* Scratch space: the keys and values of one allocation do not fit the BPF stack beside
 * the rest of the pipeline. */
struct snat_scratch {
	struct snat_flow_key key;         /* the VM's flow */
	struct snat_flow_key reverse_key;
	struct snat_reverse reverse;
	struct snat_mapping mapping;
	struct lpm_key source;
	struct bpf_fib_lookup params;
	struct address_key address;
	struct snat_vm_key vm;            /* a VM's port block */
	struct snat_vm_block vm_block;
	struct snat_block_key block_key;
	struct snat_block_owner owner;
	struct snat_flow_key answered;    /* the VM's flow a reply belongs to */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct snat_scratch);
} snat_scratch_space SEC(".maps");

/* ---- port blocks (headers/vnet_xdp.h) ---- */

static __always_inline void snat_vm_key_fill(struct snat_vm_key *key, const __u8 *vm,
					     __u32 family, __u32 vnet)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->vnet = vnet;
	key->family = family;
	__builtin_memcpy(key->addr, vm, 16);
}

static __always_inline int snat_vm_equal(const struct snat_vm_key *a, const struct snat_vm_key *b)
{
	return a->vnet == b->vnet && a->family == b->family && address_equal(a->addr, b->addr);
}

/* The VM's mapping saw a packet: its block stays its own while it is in use. */
static __always_inline void snat_vm_touch(struct snat_scratch *s, const __u8 *vm, __u32 family,
					  __u32 vnet, __u64 now)
{
	struct snat_vm_block *b;

	snat_vm_key_fill(&s->vm, vm, family, vnet);
	b = bpf_map_lookup_elem(&snat_vm_blocks, &s->vm);
	if (b && clock_age_ns(now, b->last_active_ns) > SNAT_REFRESH_NS)
		b->last_active_ns = now;
}

/* A packet of the VM's flow vm_flow, either way: the mapping and the VM's block live on. */
static __always_inline void snat_mapping_seen(struct snat_scratch *s, struct snat_mapping *m,
					      const struct snat_flow_key *vm_flow, __u64 now)
{
	if (snat_mapping_touch(m, now))
		snat_vm_touch(s, vm_flow->src, vm_flow->family, m->vnet, now);
}

/* One block a VM without one tries (a bpf_loop callback). */
struct snat_block_claim {
	struct snat_scratch *s;
	struct snat_pool *pool;
	__u64 now;
	__u32 start, block;
	int result;          /* -1 while no block was taken */
};

/* Whether the owner of the block at s->block_key gave it up: its VM holds another block
 * (or none), or idled past every mapping's life and cool-down. */
static __always_inline int snat_block_abandoned(const struct snat_block_owner *owner,
						const struct snat_block_key *key,
						const struct snat_pool *pool, __u64 now)
{
	struct snat_vm_block *held = bpf_map_lookup_elem(&snat_vm_blocks, &owner->vm);

	if (!held || held->layout != key->layout || held->block != key->block)
		return 1;
	return clock_age_ns(now, held->last_active_ns) > snat_block_idle_ns(pool);
}

/* Takes over an abandoned block: one CPU wins its claim token, drops the old VM's hold on
 * it and writes the new owner. Returns 0 when the block is ours, else as an insert that
 * met an existing entry. */
static __always_inline long snat_block_take_over(struct snat_block_claim *c)
{
	struct snat_scratch *s = c->s;
	struct snat_block_owner *owner = bpf_map_lookup_elem(&snat_block_owners, &s->block_key);
	struct snat_vm_block *held;
	__u64 claim;

	if (!owner || !snat_block_abandoned(owner, &s->block_key, c->pool, c->now))
		return -EEXIST;
	claim = owner->claim;
	if (__sync_val_compare_and_swap(&owner->claim, claim, s->owner.claim) != claim)
		return -EEXIST;
	held = bpf_map_lookup_elem(&snat_vm_blocks, &owner->vm);
	if (held && held->layout == s->block_key.layout && held->block == s->block_key.block)
		bpf_map_delete_elem(&snat_vm_blocks, &owner->vm);
	return bpf_map_update_elem(&snat_block_owners, &s->block_key, &s->owner, BPF_EXIST);
}

static long snat_block_try(__u32 i, void *data)
{
	struct snat_block_claim *c = data;
	struct snat_scratch *s = c->s;
	long err;

	if (!s || !c->pool || !c->pool->n_blocks) {
		c->result = DROP_SNAT_MAP_UPDATE_FAILED;
		return 1;
	}
	s->block_key.layout = c->pool->layout;
	s->block_key.block = (c->start + i) % c->pool->n_blocks;
	err = bpf_map_update_elem(&snat_block_owners, &s->block_key, &s->owner, BPF_NOEXIST);
	if (err == -EEXIST)
		err = snat_block_take_over(c);
	if (err == -EEXIST || err == -ENOENT) /* held, or gone meanwhile: the next block */
		return 0;
	c->result = err ? snat_update_failure(err) : DROP_NONE;
	c->block = s->block_key.block;
	return 1;
}

/* The block of the VM of the flow in s->key, claimed on its first flow: a free block, or
 * an abandoned one, SNAT_BLOCK_PROBES tried from a random start. Returns DROP_NONE with
 * *block set, DROP_SNAT_PORT_EXHAUSTED when every block tried is held, or the reason. */
static __always_inline int snat_vm_block(struct snat_scratch *s, struct snat_pool *pool,
					 __u32 vnet, __u64 now, __u32 *block)
{
	struct snat_block_claim claim = { .s = s, .pool = pool, .now = now, .result = -1 };
	struct snat_block_owner *owner;
	struct snat_vm_block *mine;
	long err;

	snat_vm_key_fill(&s->vm, s->key.src, s->key.family, vnet);
	mine = bpf_map_lookup_elem(&snat_vm_blocks, &s->vm);
	if (mine && mine->layout == pool->layout && mine->block < pool->n_blocks) {
		s->block_key.layout = pool->layout;
		s->block_key.block = mine->block;
		owner = bpf_map_lookup_elem(&snat_block_owners, &s->block_key);
		if (owner && snat_vm_equal(&owner->vm, &s->vm)) {
			if (clock_age_ns(now, mine->last_active_ns) > SNAT_REFRESH_NS)
				mine->last_active_ns = now;
			*block = mine->block;
			return DROP_NONE;
		}
	}
	if (!pool->n_blocks)
		return DROP_SNAT_PORT_EXHAUSTED;
	s->owner.vm = s->vm;
	s->owner.claim = (__u64)bpf_get_prandom_u32() << 32 | bpf_get_prandom_u32();
	claim.start = bpf_get_prandom_u32() % pool->n_blocks;
	bpf_loop(pool->n_blocks < SNAT_BLOCK_PROBES ? pool->n_blocks : SNAT_BLOCK_PROBES,
		 snat_block_try, &claim, 0);
	if (claim.result < 0)
		return DROP_SNAT_PORT_EXHAUSTED;
	if (claim.result)
		return claim.result;
	s->vm_block.layout = pool->layout;
	s->vm_block.block = claim.block;
	s->vm_block.last_active_ns = now;
	err = bpf_map_update_elem(&snat_vm_blocks, &s->vm, &s->vm_block, BPF_ANY);
	if (err) {
		bpf_map_delete_elem(&snat_block_owners, &s->block_key);
		return snat_update_failure(err);
	}
	*block = claim.block;
	return DROP_NONE;
}

/* Finds a VIP:port of the source's pool that is free toward this destination and takes
 * it by inserting the reverse entry (BPF_NOEXIST: never an entry that exists), or by
 * taking over an entry whose mapping ended a cool-down ago. Small pools are probed in
 * order from a random start, so every port is tried; large ones at random, SNAT_PROBES
 * times. */
/* One probe of the allocation loop (a bpf_loop callback: verified once, not once per
 * probe). Returns 0 to go on, 1 to stop; c->result says how it ended. */
struct snat_probe {
	struct snat_scratch *s;
	struct snat_pool *pool;
	__u64 now;
	__u32 range, space, start, vip;
	__u32 base;          /* the first port: the pool's, or the VM's block's */
	int result;          /* -1 while no port was taken */
	__u16 port;
};

/* Whether the port of a reverse entry that met a probe is free again: its mapping, still
 * on this port, expired a cool-down ago; or the mapping ended or moved to another port (a
 * new one of the same flow) and the entry was released a cool-down ago. The release is
 * stamped here when no collector did: the port comes back with the datapath alone.
 * *old is the mapping to remove with the port, if any. */
static __always_inline int snat_reverse_stale(struct snat_reverse *rev,
					      const struct snat_flow_key *reverse_key, __u64 now,
					      struct snat_mapping **old)
{
	struct snat_mapping *m = bpf_map_lookup_elem(&snat_mappings, &rev->flow);

	*old = NULL;
	if (m && m->vip_port == reverse_key->dst_port && address_equal(m->vip, reverse_key->dst)) {
		*old = m;
		return snat_mapping_port_reusable(m, rev->flow.proto, now);
	}
	if (!rev->released_ns) {
		__sync_val_compare_and_swap(&rev->released_ns, 0, now);
		return 0;
	}
	return snat_reverse_cooled_down(rev, now);
}

/* Takes over the stale reverse entry at s->reverse_key for the new flow: one CPU wins the
 * entry's claim token; it removes the old mapping and
 * replaces the entry in one update. Returns 0 when the port is ours, else as an insert
 * that met an existing entry. */
static __always_inline long snat_port_take_over(struct snat_probe *c)
{
	struct snat_scratch *s = c->s;
	struct snat_reverse *rev = bpf_map_lookup_elem(&snat_reverse, &s->reverse_key);
	struct snat_mapping *old;
	__u64 claim;

	if (!rev || !snat_reverse_stale(rev, &s->reverse_key, c->now, &old))
		return -EEXIST;
	claim = rev->claim;
	if (__sync_val_compare_and_swap(&rev->claim, claim, s->reverse.claim) != claim)
		return -EEXIST;
	/* Still the mapping of this port (its flow did not move it meanwhile): it goes. */
	old = bpf_map_lookup_elem(&snat_mappings, &rev->flow);
	if (old && old->vip_port == s->reverse_key.dst_port &&
	    address_equal(old->vip, s->reverse_key.dst))
		bpf_map_delete_elem(&snat_mappings, &rev->flow);
	return bpf_map_update_elem(&snat_reverse, &s->reverse_key, &s->reverse, BPF_EXIST);
}

static long snat_probe_one(__u32 i, void *data)
{
	struct snat_probe *c = data;
	struct snat_scratch *s = c->s;
	struct snat_pool *pool = c->pool;
	__u32 k, v;
	long err;

	if (!s || !pool || !c->space || !c->range) {
		c->result = DROP_SNAT_MAP_UPDATE_FAILED;
		return 1;
	}
	k = c->space <= SNAT_PROBES ? (c->start + i) % c->space : bpf_get_prandom_u32() % c->space;
	v = k / c->range;
	if (v >= MAX_SNAT_POOL_VIPS)
		return 1;
	c->port = c->base + k % c->range;
	__builtin_memcpy(s->reverse_key.dst, pool->vips[v].addr, 16);
	s->reverse_key.dst_port = bpf_htons(c->port);
	err = bpf_map_update_elem(&snat_reverse, &s->reverse_key, &s->reverse, BPF_NOEXIST);
	if (err == -EEXIST)
		err = snat_port_take_over(c);
	if (err == -EEXIST || err == -ENOENT) /* live, or gone meanwhile: the next port */
		return 0;
	c->result = err ? snat_update_failure(err) : DROP_NONE;
	c->vip = v;
	return 1;
}

static __always_inline int snat_allocate(struct snat_scratch *s, __u32 vnet, __u64 now)
{
	struct snat_probe probe = { .s = s, .now = now, .result = -1 };
	struct snat_flow_key *key;
	struct snat_pool *pool;
	__u32 *pool_id;

	if (!s)
		return DROP_SNAT_MAP_UPDATE_FAILED;
	key = &s->key;
	pool_id = bpf_map_lookup_elem(&snat_sources, &s->source);
	if (!pool_id)
		return DROP_SNAT_NO_PUBLIC_ADDRESS;
	pool = bpf_map_lookup_elem(&snat_pools, pool_id);
	if (!pool || pool->n_vips == 0 || pool->n_vips > MAX_SNAT_POOL_VIPS ||
	    pool->port_max < pool->port_min)
		return DROP_SNAT_NO_PUBLIC_ADDRESS;
	probe.pool = pool;
	probe.base = pool->port_min;
	probe.range = (__u32)pool->port_max - pool->port_min + 1;
	if (pool->block_ports) {
		__u32 block = 0;
		int reason = snat_vm_block(s, pool, vnet, now, &block);

		if (reason == DROP_SNAT_PORT_EXHAUSTED)
			snat_count_event(pool->vips[0].addr, key->family, 1);
		if (reason)
			return reason;
		probe.base += block * pool->block_ports;
		probe.range = pool->block_ports;
	}
	probe.space = probe.range * pool->n_vips;
	probe.start = bpf_get_prandom_u32() % probe.space;

	__builtin_memset(&s->reverse, 0, sizeof(s->reverse));
	s->reverse.flow = *key;
	s->reverse.transitory_timeout_seconds = pool->tcp_transitory_timeout_seconds;
	s->reverse.claim = (__u64)bpf_get_prandom_u32() << 32 | bpf_get_prandom_u32();
	__builtin_memset(&s->reverse_key, 0, sizeof(s->reverse_key));
	s->reverse_key.family = key->family;
	s->reverse_key.proto = key->proto;
	/* A block's port is the flow's alone; a shared one serves one flow per destination. */
	if (!pool->block_ports)
		__builtin_memcpy(s->reverse_key.src, key->dst, 16);
	if (!pool->block_ports && key->proto != IPPROTO_ICMP && key->proto != IPPROTO_ICMPV6)
		s->reverse_key.src_port = key->dst_port;

	bpf_loop(SNAT_PROBES, snat_probe_one, &probe, 0);
	if (probe.result > 0)
		return probe.result;
	if (probe.result < 0 || probe.vip >= MAX_SNAT_POOL_VIPS) {
		if (pool->block_ports) /* the VM's own ports are all in use */
			return DROP_SNAT_VM_LIMIT;
		snat_count_event(pool->vips[0].addr, key->family, 1);
		return DROP_SNAT_PORT_EXHAUSTED;
	}
	__builtin_memset(&s->mapping, 0, sizeof(s->mapping));
	__builtin_memcpy(s->mapping.vip, pool->vips[probe.vip].addr, 16);
	s->mapping.vip_port = bpf_htons(probe.port);
	s->mapping.vnet = vnet;
	s->mapping.transitory_timeout_seconds = pool->tcp_transitory_timeout_seconds;
	s->mapping.idle_timeout_seconds =
		key->proto == IPPROTO_TCP ? pool->tcp_idle_timeout_seconds :
		key->proto == IPPROTO_UDP ? pool->udp_idle_timeout_seconds :
					    pool->icmp_idle_timeout_seconds;
	s->mapping.last_seen_ns = now;
	s->mapping.created_ns = now;
	return DROP_NONE;
}

/* The live mapping of the VM's flow, a new one when it has none or only an expired one.
 * Returns the mapping or NULL with *reason set. */
static __always_inline struct snat_mapping *snat_mapping_get(const struct packet *pkt,
							     struct snat_scratch *s,
							     __u32 vnet, __u64 now, int *reason)
{
	struct snat_flow_key *key = &s->key;
	struct snat_mapping *m = bpf_map_lookup_elem(&snat_mappings, key);
	long err;

	if (m && !snat_mapping_expired(m, key->proto, now))
		return m;
	/* A function of its own: its probe loop is verified once, not on every path. */
	lpm_key_fill(&s->source, vnet, pkt, 1);
	*reason = snat_allocate(s, vnet, now);
	if (*reason)
		return NULL;
	/* The port taken may be the one the expired mapping held, which the take-over
	 * removed and counted closed to the VM: then the mapping is a new one. */
	if (m)
		m = bpf_map_lookup_elem(&snat_mappings, key);
	/* An expired mapping is replaced; its reverse entry stays behind for the cool-down
	 * (the GC sees it no longer matches and releases it). */
	err = bpf_map_update_elem(&snat_mappings, key, &s->mapping, m ? BPF_ANY : BPF_NOEXIST);
	if (err) {
		bpf_map_delete_elem(&snat_reverse, &s->reverse_key);
		if (err != -EEXIST) {
			*reason = snat_update_failure(err);
			return NULL;
		}
		/* Another CPU created it for the same flow first: use that one. */
		m = bpf_map_lookup_elem(&snat_mappings, key);
		if (!m)
			*reason = DROP_SNAT_MAP_UPDATE_FAILED;
		return m;
	}
	snat_count_event(s->mapping.vip, key->family, 0);
	m = bpf_map_lookup_elem(&snat_mappings, key);
	if (!m)
		*reason = DROP_SNAT_MAP_UPDATE_FAILED;
	return m;
}

/* ---- rewriting ---- */

/* Rewrites the source (source != 0) or destination address and port of the packet.
 * The IPv4 header checksum and the L4 checksum follow; for ICMP echo the identifier is
 * the port. A later fragment (bpf/frag.h) has only its addresses rewritten: the ports
 * and the L4 checksum, whose pseudo-header covers them, are in its first fragment. */
static __always_inline void snat_rewrite(struct packet *pkt, int source, const __u8 *addr,
					 __be16 port, int partial)
{
	__u64 addr_diff;
	__u16 *field;

	if (!pkt->l4 && !(pkt->is_fragment & FRAGMENT_TRANSPORT_KNOWN))
		return;
	if (pkt->family == AF_INET) {
		__be32 *slot = source ? &pkt->ip4->saddr : &pkt->ip4->daddr;

		addr_diff = csum_addr_diff((const __u8 *)slot, addr, AF_INET);
		csum_apply((__u16 *)&pkt->ip4->check, addr_diff, 0);
		__builtin_memcpy(slot, addr, 4);
	} else {
		struct in6_addr *slot = source ? &pkt->ip6->saddr : &pkt->ip6->daddr;

		addr_diff = csum_addr_diff((const __u8 *)slot, addr, AF_INET6);
		__builtin_memcpy(slot, addr, 16);
	}
	if (!pkt->l4)
		return;

	if (pkt->l4_proto == IPPROTO_TCP || pkt->l4_proto == IPPROTO_UDP) {
		struct udphdr *ports = pkt->l4; /* TCP and UDP both start with the ports */
		__be16 *slot;

		field = l4_checksum_field(pkt);
		if (!field || (void *)(ports + 1) > pkt->data_end)
			return;
		slot = source ? &ports->source : &ports->dest;
		if (pkt->l4_proto == IPPROTO_UDP && *field == 0) {
			*slot = port; /* IPv4 UDP without a checksum stays without */
		} else if (partial) {
			csum_apply(field, addr_diff, 1); /* the port is summed by the offload */
			*slot = port;
		} else {
			csum_apply(field, addr_diff + csum16_diff(*slot, port), 0);
			if (pkt->l4_proto == IPPROTO_UDP && *field == 0)
				*field = 0xffff;
			*slot = port;
		}
	} else if (pkt->l4_proto == IPPROTO_ICMP || pkt->l4_proto == IPPROTO_ICMPV6) {
		struct icmp_header *icmp = pkt->l4;
		__u64 diff;

		if ((void *)(icmp + 1) > pkt->data_end)
			return;
		diff = csum16_diff(icmp->id, port);
		if (pkt->l4_proto == IPPROTO_ICMPV6)
			diff += addr_diff; /* ICMPv6 sums a pseudo header */
		csum_apply((__u16 *)&icmp->checksum, diff, 0);
		icmp->id = port;
	}
}

#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PARAMETER_PROBLEM 4 /* 1-4: unreachable, too big, time exceeded, parameter */

static __always_inline int icmp_is_error(__u8 proto, __u8 type)
{
	if (proto == IPPROTO_ICMPV6)
		return type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMETER_PROBLEM;
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETER_PROBLEM;
}

/* An ICMP error about a translated flow: the quoted packet left with VIP:port as its
 * source. Its reverse key is that of a reply: remote -> VIP:port. */
struct icmp_quote {
	struct iphdr *ip;     /* an ICMPv4 error's quote */
	struct ipv6hdr *ip6;  /* an ICMPv6 error's quote */
	void *l4;
	__u8 proto;
};

static __always_inline int icmp_quote_parse(const struct packet *pkt, struct icmp_quote *q)
{
	struct iphdr *ip;
	void *l4;

	if (!pkt->l4)
		return -1;
	ip = pkt->l4 + sizeof(struct icmp_header);
	if ((void *)(ip + 1) > pkt->data_end || ip->version != 4 || ip->ihl < 5)
		return -1;
	l4 = (void *)ip + ip->ihl * 4;
	if (l4 + 8 > pkt->data_end) /* RFC 792: the IP header and 8 bytes of what follows */
		return -1;
	if (bpf_ntohs(ip->frag_off) & IP_OFFSET)
		return -1;
	q->ip = ip;
	q->l4 = l4;
	q->proto = ip->protocol;
	return 0;
}

/* RFC 4443 quotes as much of the packet as fits. A quote whose transport header follows
 * extension headers is not followed: the flows SNAT translates carry none. */
static __always_inline int icmp6_quote_parse(const struct packet *pkt, struct icmp_quote *q)
{
	struct ipv6hdr *ip6;
	void *l4;

	if (!pkt->l4)
		return -1;
	ip6 = pkt->l4 + sizeof(struct icmp_header);
	if ((void *)(ip6 + 1) > pkt->data_end || ip6->version != 6)
		return -1;
	l4 = (void *)(ip6 + 1);
	if (l4 + 8 > pkt->data_end)
		return -1;
	if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP &&
	    ip6->nexthdr != IPPROTO_ICMPV6)
		return -1;
	q->ip6 = ip6;
	q->l4 = l4;
	q->proto = ip6->nexthdr;
	return 0;
}

static __always_inline int icmp_quote_key(const struct icmp_quote *q, struct snat_flow_key *key)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->proto = q->proto;
	if (q->ip) {
		key->family = AF_INET;
		__builtin_memcpy(key->src, &q->ip->daddr, 4);
		__builtin_memcpy(key->dst, &q->ip->saddr, 4);
	} else if (q->ip6) {
		key->family = AF_INET6;
		__builtin_memcpy(key->src, &q->ip6->daddr, 16);
		__builtin_memcpy(key->dst, &q->ip6->saddr, 16);
	} else {
		return -1;
	}
	if (q->proto == IPPROTO_TCP || q->proto == IPPROTO_UDP) {
		__be16 *ports = q->l4;

		key->src_port = ports[1];
		key->dst_port = ports[0];
		return 0;
	}
	if (q->proto == IPPROTO_ICMP || q->proto == IPPROTO_ICMPV6) {
		struct icmp_header *echo = q->l4;

		if (echo->type != (q->proto == IPPROTO_ICMP ? ICMP_ECHO_REQUEST : ICMPV6_ECHO_REQUEST))
			return -1;
		key->dst_port = echo->id;
		return 0;
	}
	return -1;
}

/* The quoted source port (or echo identifier) back to the VM's, with the quoted L4
 * checksum where it was quoted. addr_diff is the quoted source address's change, which
 * that checksum covers through its pseudo-header (ICMPv4 echo has none). Returns what
 * the change adds to the ICMP message's own checksum. */
static __always_inline __u64 icmp_quote_rewrite_l4(struct packet *pkt, const struct icmp_quote *q,
						   __u64 addr_diff, __be16 vm_port)
{
	__u64 icmp_diff = 0;
	__u16 old_check;

	if (q->proto == IPPROTO_TCP || q->proto == IPPROTO_UDP) {
		__be16 *ports = q->l4;
		__u16 *check = NULL;

		if ((void *)(ports + 2) > pkt->data_end)
			return 0;
		if (q->proto == IPPROTO_UDP)
			check = (__u16 *)(q->l4 + 6);
		else if (q->l4 + 18 <= pkt->data_end)
			check = (__u16 *)(q->l4 + 16);
		if (check && (void *)(check + 1) <= pkt->data_end &&
		    !(q->proto == IPPROTO_UDP && *check == 0)) {
			old_check = *check;
			csum_apply(check, addr_diff + csum16_diff(ports[0], vm_port), 0);
			if (q->proto == IPPROTO_UDP && *check == 0)
				*check = 0xffff;
			icmp_diff += csum16_diff(old_check, *check);
		}
		icmp_diff += csum16_diff(ports[0], vm_port);
		ports[0] = vm_port;
	} else {
		struct icmp_header *echo = q->l4;

		if ((void *)(echo + 1) > pkt->data_end)
			return 0;
		if (q->proto == IPPROTO_ICMP)
			addr_diff = 0;
		old_check = echo->checksum;
		csum_apply((__u16 *)&echo->checksum, addr_diff + csum16_diff(echo->id, vm_port), 0);
		icmp_diff += csum16_diff(old_check, echo->checksum) + csum16_diff(echo->id, vm_port);
		echo->id = vm_port;
	}
	return icmp_diff;
}

/* Rewrites the outer destination, the quoted source address and port and every checksum
 * that covers them: outer IP, quoted IP, quoted L4 (where quoted), and the ICMP message. */
static __always_inline void icmp_quote_rewrite(struct packet *pkt, const struct icmp_quote *q,
					       const __u8 *vm_addr, __be16 vm_port)
{
	struct icmp_header *icmp = pkt->l4;
	struct iphdr *ip = q->ip;
	__u8 old[16] = {};
	__u64 icmp_diff, addr_diff;
	__u16 old_check;

	if (!pkt->ip4 || !ip || !icmp || (void *)(icmp + 1) > pkt->data_end ||
	    (void *)(ip + 1) > pkt->data_end)
		return;
	/* Outer destination. */
	__builtin_memcpy(old, &pkt->ip4->daddr, 4);
	csum_apply((__u16 *)&pkt->ip4->check, csum_addr_diff(old, vm_addr, AF_INET), 0);
	__builtin_memcpy(&pkt->ip4->daddr, vm_addr, 4);

	/* Quoted source address and the quoted IP header checksum. */
	__builtin_memcpy(old, &ip->saddr, 4);
	addr_diff = csum_addr_diff(old, vm_addr, AF_INET);
	old_check = ip->check;
	csum_apply((__u16 *)&ip->check, addr_diff, 0);
	__builtin_memcpy(&ip->saddr, vm_addr, 4);
	icmp_diff = addr_diff + csum16_diff(old_check, ip->check);

	icmp_diff += icmp_quote_rewrite_l4(pkt, q, addr_diff, vm_port);
	csum_apply((__u16 *)&icmp->checksum, icmp_diff, 0);
}

/* The same for ICMPv6, whose checksum also covers the outer addresses (pseudo-header);
 * IPv6 headers carry no checksum of their own. */
static __always_inline void icmp6_quote_rewrite(struct packet *pkt, const struct icmp_quote *q,
						const __u8 *vm_addr, __be16 vm_port)
{
	struct icmp_header *icmp = pkt->l4;
	struct ipv6hdr *ip6 = q->ip6;
	__u8 old[16];
	__u64 icmp_diff, addr_diff;

	if (!pkt->ip6 || !ip6 || !icmp || (void *)(icmp + 1) > pkt->data_end ||
	    (void *)(ip6 + 1) > pkt->data_end)
		return;
	__builtin_memcpy(old, &pkt->ip6->daddr, 16);
	icmp_diff = csum_addr_diff(old, vm_addr, AF_INET6);
	__builtin_memcpy(&pkt->ip6->daddr, vm_addr, 16);

	__builtin_memcpy(old, &ip6->saddr, 16);
	addr_diff = csum_addr_diff(old, vm_addr, AF_INET6);
	__builtin_memcpy(&ip6->saddr, vm_addr, 16);
	icmp_diff += addr_diff;

	icmp_diff += icmp_quote_rewrite_l4(pkt, q, addr_diff, vm_port);
	csum_apply((__u16 *)&icmp->checksum, icmp_diff, 0);
}

/* ---- the two stages ---- */

/* The pool of the VIP the packet is for, or NULL. */
static __always_inline struct snat_pool *snat_vip_pool(const struct packet *pkt)
{
	struct snat_scratch *s;
	__u32 zero = 0, *pool;

	s = bpf_map_lookup_elem(&snat_scratch_space, &zero);
	if (!s)
		return NULL;
	__builtin_memset(&s->address, 0, sizeof(s->address));
	s->address.family = pkt->family;
	address_copy(s->address.addr, pkt, 0);
	pool = bpf_map_lookup_elem(&snat_vips, &s->address);
	return pool ? bpf_map_lookup_elem(&snat_pools, pool) : NULL;
}

/* A block's port serves one flow: its reverse entry names no remote (snat_allocate), and
 * a reply's remote must be the flow's own. The remote is kept in s->reverse_key. */
static __always_inline void snat_reply_key_of_block(struct snat_scratch *s)
{
	__builtin_memcpy(s->reverse_key.src, s->key.src, 16);
	s->reverse_key.src_port = s->key.src_port;
	__builtin_memset(s->key.src, 0, 16);
	s->key.src_port = 0;
}

static __always_inline int snat_reply_from_its_remote(const struct snat_scratch *s,
						      const struct snat_reverse *rev)
{
	return address_equal(rev->flow.dst, s->reverse_key.src) &&
	       (rev->flow.proto == IPPROTO_ICMP || rev->flow.proto == IPPROTO_ICMPV6 ||
		rev->flow.dst_port == s->reverse_key.src_port);
}

/* A fragment is translated when its ports are known: a first fragment's own, a later
 * one's from its first (bpf/frag.h), which drops later fragments it knows nothing of. */
static __always_inline int snat_fragment_untranslatable(const struct packet *pkt)
{
	return pkt->is_fragment && !pkt->l4 && !(pkt->is_fragment & FRAGMENT_TRANSPORT_KNOWN);
}

/* Uplink ingress: a packet to a VIP is a reply to a mapping (or an ICMP error about one)
 * and goes back to the VM, or it is dropped: a VIP never opens a way in. Packets to
 * other addresses are left alone (DROP_NONE, st->translated 0). */
static __always_inline int snat_inbound(struct packet *pkt, struct snat_state *st)
{
	struct icmp_quote quote = {};
	struct snat_flow_key *key;
	struct snat_scratch *s;
	__u32 zero = 0;
	struct snat_reverse *rev;
	struct snat_mapping *m;
	struct snat_pool *pool;
	int is_error = 0;
	__u64 now;

	if (!pkt->family)
		return DROP_NONE;
	pool = snat_vip_pool(pkt);
	if (!pool)
		return DROP_NONE;
	if (snat_fragment_untranslatable(pkt))
		return DROP_SNAT_FRAGMENT;
	s = bpf_map_lookup_elem(&snat_scratch_space, &zero);
	if (!s)
		return DROP_INTERNAL_ERROR;
	key = &s->key;
	switch (pkt->l4_proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		snat_key_of_packet(key, pkt, 0);
		break;
	case IPPROTO_ICMP:
		if (pkt->icmp_type == ICMP_ECHO_REPLY) {
			snat_key_of_packet(key, pkt, 0);
			break;
		}
		if (!icmp_is_error(IPPROTO_ICMP, pkt->icmp_type) || icmp_quote_parse(pkt, &quote) ||
		    icmp_quote_key(&quote, key))
			return DROP_SNAT_UNSOLICITED;
		is_error = 1;
		break;
	case IPPROTO_ICMPV6: /* NAT66 */
		if (pkt->icmp_type == ICMPV6_ECHO_REPLY) {
			snat_key_of_packet(key, pkt, 0);
			break;
		}
		if (!icmp_is_error(IPPROTO_ICMPV6, pkt->icmp_type) ||
		    icmp6_quote_parse(pkt, &quote) || icmp_quote_key(&quote, key))
			return DROP_SNAT_UNSOLICITED;
		is_error = 1;
		break;
	default:
		return DROP_SNAT_UNSOLICITED;
	}

	if (pool->block_ports)
		snat_reply_key_of_block(s);
	rev = bpf_map_lookup_elem(&snat_reverse, key);
	if (!rev || (pool->block_ports && !snat_reply_from_its_remote(s, rev)))
		return DROP_SNAT_UNSOLICITED;
	m = bpf_map_lookup_elem(&snat_mappings, &rev->flow);
	now = bpf_ktime_get_coarse_ns();
	/* A reverse entry whose mapping ended or moved on is cooling down: not a way in. */
	if (!m || m->vip_port != key->dst_port || !address_equal(m->vip, key->dst) ||
	    snat_mapping_expired(m, key->proto, now))
		return DROP_SNAT_EXPIRED;

	st->translated = 1;
	st->vnet = m->vnet;
	if (is_error && quote.ip6) {
		icmp6_quote_rewrite(pkt, &quote, rev->flow.src, rev->flow.src_port);
	} else if (is_error) {
		icmp_quote_rewrite(pkt, &quote, rev->flow.src, rev->flow.src_port);
	} else {
		snat_track_tcp(m, pkt, 0, now);
		snat_mapping_seen(s, m, &rev->flow, now);
		st->answered = 1;
		st->tcp_flags = tcp_flags_of(pkt);
		s->answered = rev->flow;
		st->checksum_partial = l4_checksum_looks_partial(pkt);
		snat_rewrite(pkt, 0, rev->flow.src, rev->flow.src_port, st->checksum_partial);
	}
	snat_count(key->dst, key->family, 0, pkt->len);
	return DROP_NONE;
}

/* Whether the kernel, not the Internet, gets this packet next: it answers the VM itself
 * (fragmentation needed with DF, a local destination, no route), so the VM's own
 * address must stay. */
static __always_inline int snat_leaves_untranslated(const struct packet *pkt, int fib_rc)
{
	if (fib_rc == BPF_FIB_LKUP_RET_SUCCESS || fib_rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	if (fib_rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return pkt->family == AF_INET6 || (pkt->ip4->frag_off & bpf_htons(0x4000));
	return 1;
}

/* Egress toward the Internet (route type Internet), after the policy decision and the
 * FIB lookup: the VM's flow leaves with source VIP:port. */
/* What egress translates to, found before the packet is touched. */
struct snat_egress_plan {
	__u8 vip[16];
	__be16 vip_port;
	__u8 translate;
	__u8 pad;
	__s32 fib_rc;
};

static __always_inline int snat_outbound(struct packet *pkt, struct snat_egress_plan *plan,
					 __u32 vnet, int fib_rc)
{
	struct snat_scratch *s;
	struct snat_mapping *m;
	int reason = DROP_NONE;
	__u32 zero = 0;
	__u64 now;

	if (snat_leaves_untranslated(pkt, fib_rc))
		return DROP_NONE;
	if (snat_fragment_untranslatable(pkt))
		return DROP_SNAT_FRAGMENT;
	if (pkt->l4_proto == IPPROTO_ICMP && pkt->icmp_type != ICMP_ECHO_REQUEST)
		return DROP_SNAT_UNSUPPORTED;
	if (pkt->l4_proto == IPPROTO_ICMPV6 && pkt->icmp_type != ICMPV6_ECHO_REQUEST)
		return DROP_SNAT_UNSUPPORTED;
	if (pkt->l4_proto != IPPROTO_TCP && pkt->l4_proto != IPPROTO_UDP &&
	    pkt->l4_proto != IPPROTO_ICMP && pkt->l4_proto != IPPROTO_ICMPV6)
		return DROP_SNAT_UNSUPPORTED;

	s = bpf_map_lookup_elem(&snat_scratch_space, &zero);
	if (!s)
		return DROP_INTERNAL_ERROR;
	snat_key_of_packet(&s->key, pkt, 1);
	now = bpf_ktime_get_coarse_ns();
	m = snat_mapping_get(pkt, s, vnet, now, &reason);
	if (!m)
		return reason;
	snat_track_tcp(m, pkt, 1, now);
	snat_mapping_seen(s, m, &s->key, now);
	__builtin_memcpy(plan->vip, m->vip, 16);
	plan->vip_port = m->vip_port;
	plan->translate = 1;
	return DROP_NONE;
}

static __always_inline void snat_outbound_rewrite(struct packet *pkt, struct snat_state *st,
						  const struct snat_egress_plan *plan)
{
	st->translated = 1;
	st->checksum_partial = l4_checksum_looks_partial(pkt);
	snat_rewrite(pkt, 1, plan->vip, plan->vip_port, st->checksum_partial);
	snat_count(plan->vip, pkt->family, 1, pkt->len);
}

/* ---- entry points for the pipeline ----
 * SNAT runs as functions of their own that the verifier checks once, whatever path of
 * the pipeline leads to them; they see the packet through offsets the parser found. */

/* What a SNAT stage decided, for the pipeline's counters and trace. */
struct snat_verdict {
	__u32 handled;      /* 0: not a SNAT packet, the pipeline goes on */
	__u32 verdict;
	__u32 drop_reason;
	__u32 counter;
	__u32 vnet;         /* replies: the VM's VNet */
	__u32 egress_ifindex;
	__u8 translated;    /* replies: rewritten for the VM, to be delivered */
	__u8 answered;      /* replies: of a flow in snat_scratch.answered, not an ICMP error */
	__u8 tcp_flags;
	__u8 pad;
};

static __always_inline int snat_verdict_set(struct snat_verdict *v, __u32 verdict, __u32 reason,
					    __u32 counter)
{
	v->handled = 1;
	v->verdict = verdict;
	v->drop_reason = reason;
	v->counter = counter;
	return verdict;
}

/* After the FIB lookup: the way out of bpf/forward.h, for a translated packet. */
static __always_inline int snat_redirect(struct xdp_md *ctx, struct packet *pkt,
					 const struct bpf_fib_lookup *params, int rc,
					 __u32 egress_ifindex, struct snat_verdict *v)
{
	struct ethhdr *eth = pkt->data;
	__u32 counter;
	int reason;

	reason = fib_answer_judge(rc, params, egress_ifindex, &counter);
	if (!reason && counter)
		return snat_verdict_set(v, XDP_PASS, DROP_NONE, counter);
	if (!reason && (void *)(eth + 1) > pkt->data_end)
		reason = DROP_INTERNAL_ERROR; /* the parser saw this header */
	if (!reason)
		reason = egress_redirect(ctx, pkt, eth, params->dmac, params->smac, params->ifindex);
	if (reason)
		return snat_verdict_set(v, XDP_DROP, reason, COUNT_DROPPED);
	return snat_verdict_set(v, XDP_REDIRECT, DROP_NONE, COUNT_FORWARDED);
}

static __always_inline struct bpf_fib_lookup *snat_fib_params(void)
{
	struct snat_scratch *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&snat_scratch_space, &zero);
	return s ? &s->params : NULL;
}

/* route_lookup() with its key in the scratch space: the stack is short here. */
static __always_inline struct route_info *snat_route_lookup(const struct packet *pkt, __u32 vnet)
{
	struct snat_scratch *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&snat_scratch_space, &zero);
	if (!s)
		return NULL;
	lpm_key_fill(&s->source, vnet, pkt, 0);
	return bpf_map_lookup_elem(&routes, &s->source);
}

/* The forwarding stage for a route to the Internet, in two functions that the verifier
 * checks once each (one holding the port allocation, one the rewrite: together they
 * would not fit the stack beside the pipeline). The first looks up the next hop and
 * the mapping; it leaves untranslated what the kernel answers to the VM itself (TTL
 * expired, fragmentation needed). */
__attribute__((noinline)) int snat_internet_prepare(struct xdp_md *ctx, struct packet_info *info,
						   struct snat_verdict *v,
						   struct snat_egress_plan *plan)
{
	struct bpf_fib_lookup *params = snat_fib_params();
	struct packet pkt;
	int reason;

	if (!info || !v || !plan)
		return XDP_DROP;
	v->egress_ifindex = info->egress_ifindex;
	if (!params)
		return snat_verdict_set(v, XDP_DROP, DROP_INTERNAL_ERROR, COUNT_DROPPED);
	if (xdp_packet_of(ctx, info, &pkt))
		return snat_verdict_set(v, XDP_DROP, DROP_INTERNAL_ERROR, COUNT_DROPPED);
	if (hop_limit_expired(&pkt))
		return snat_verdict_set(v, XDP_PASS, DROP_NONE, COUNT_PASS_TTL_EXPIRED);
	plan->translate = 0;
	plan->fib_rc = next_hop_lookup(ctx, &pkt, params);
	/* The FIB names no egress for a too-big packet, which the kernel fragments (then it
	 * must leave translated) or answers (then it must not be). */
	if (params->ifindex == info->egress_ifindex || plan->fib_rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		reason = snat_outbound(&pkt, plan, info->vnet, plan->fib_rc);
		if (reason)
			return snat_verdict_set(v, XDP_DROP, reason, COUNT_DROPPED);
	}
	return XDP_PASS; /* not handled yet: the rewrite follows */
}

/* The second: rewrite, MACs, redirect (or the kernel). */
__attribute__((noinline)) int snat_internet_forward(struct xdp_md *ctx, struct packet_info *info,
						   struct snat_verdict *v,
						   struct snat_egress_plan *plan)
{
	struct bpf_fib_lookup *params = snat_fib_params();
	struct snat_state st = {};
	struct packet pkt;

	if (!info || !v || !plan)
		return XDP_DROP;
	if (!params)
		return snat_verdict_set(v, XDP_DROP, DROP_INTERNAL_ERROR, COUNT_DROPPED);
	if (xdp_packet_of(ctx, info, &pkt))
		return snat_verdict_set(v, XDP_DROP, DROP_INTERNAL_ERROR, COUNT_DROPPED);
	if (plan->translate)
		snat_outbound_rewrite(&pkt, &st, plan);
	return snat_redirect(ctx, &pkt, params, plan->fib_rc, info->egress_ifindex, v);
}

/* Uplink ingress, first of all: a packet to a VIP is a reply to a mapping (or an ICMP
 * error about one) and is delivered to its VM by the VM's VNet's own route, or dropped.
 * Replies skip the NSG stage: they belong to a flow the VM opened, which the outbound
 * rules allowed, and Azure's NSGs are stateful. Packets to other addresses: handled 0.
 * Two functions again, for the stack: this one translates, the next one delivers. */
__attribute__((noinline)) int snat_internet_reply(struct xdp_md *ctx, struct packet_info *info,
						 struct snat_verdict *v)
{
	struct snat_state st = {};
	struct route_info *route;
	struct packet pkt;
	int reason;

	if (!info || !v)
		return XDP_DROP;
	v->handled = 0;
	v->translated = 0;
	if (xdp_packet_of(ctx, info, &pkt))
		return 0;
	reason = snat_inbound(&pkt, &st);
	if (reason)
		return snat_verdict_set(v, XDP_DROP, reason, COUNT_DROPPED);
	if (!st.translated)
		return 0;
	v->vnet = st.vnet;
	v->answered = st.answered;
	v->tcp_flags = st.tcp_flags;
	route = snat_route_lookup(&pkt, st.vnet);
	if (!route || route->type != ROUTE_VNET_LOCAL)
		return snat_verdict_set(v, XDP_DROP, DROP_NO_ROUTE, COUNT_DROPPED);
	v->egress_ifindex = route->egress_ifindex;
	v->translated = 1;
	return 0;
}

__attribute__((noinline)) int snat_reply_deliver(struct xdp_md *ctx, struct packet_info *info,
						struct snat_verdict *v)
{
	struct bpf_fib_lookup *params = snat_fib_params();
	struct packet pkt;
	int rc;

	if (!info || !v)
		return XDP_DROP;
	if (!params)
		return snat_verdict_set(v, XDP_DROP, DROP_INTERNAL_ERROR, COUNT_DROPPED);
	if (xdp_packet_of(ctx, info, &pkt))
		return snat_verdict_set(v, XDP_DROP, DROP_INTERNAL_ERROR, COUNT_DROPPED);
	if (hop_limit_expired(&pkt))
		return snat_verdict_set(v, XDP_PASS, DROP_NONE, COUNT_PASS_TTL_EXPIRED);
	rc = next_hop_lookup(ctx, &pkt, params);
	return snat_redirect(ctx, &pkt, params, rc, v->egress_ifindex, v);
}

/* The arguments of a call into a SNAT stage live in a per-CPU map, not on the stack:
 * the stack of the pipeline and the stage together must stay within 512 bytes. */
struct snat_call {
	struct packet_info info;
	struct snat_verdict verdict;
	struct snat_egress_plan plan;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct snat_call);
} snat_calls SEC(".maps");

static __always_inline struct snat_call *snat_call_prepare(const struct packet *pkt)
{
	__u32 zero = 0;
	struct snat_call *call = bpf_map_lookup_elem(&snat_calls, &zero);

	if (call) {
		packet_info_fill(&call->info, pkt);
		__builtin_memset(&call->verdict, 0, sizeof(call->verdict));
	}
	return call;
}

/* The NSG flow of a reply the VM gets lives on and is promoted (bpf/flow.h), as its
 * responder's packet would make it on the NSG stage it skips. */
static __always_inline void snat_reply_answers_flow(struct snat_call *call)
{
	struct snat_scratch *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&snat_scratch_space, &zero);
	if (s)
		flow_snat_answered(&s->answered, call->verdict.vnet, call->info.len,
				   call->verdict.tcp_flags);
}

/* Uplink ingress: the verdict when the packet was for a VIP (handled), else NULL. */
static __always_inline struct snat_verdict *snat_from_internet(struct xdp_md *ctx,
							       const struct packet *pkt)
{
	struct snat_call *call = snat_call_prepare(pkt);

	if (!call)
		return NULL;
	snat_internet_reply(ctx, &call->info, &call->verdict);
	if (call->verdict.translated)
		snat_reply_deliver(ctx, &call->info, &call->verdict);
	if (call->verdict.answered && call->verdict.verdict != XDP_DROP)
		snat_reply_answers_flow(call);
	return call->verdict.handled ? &call->verdict : NULL;
}

/* Egress by an Internet route, instead of forward(). */
static __always_inline struct snat_verdict *snat_to_internet(struct xdp_md *ctx,
							     const struct packet *pkt, __u32 vnet,
							     __u32 egress_ifindex)
{
	struct snat_call *call = snat_call_prepare(pkt);

	if (!call)
		return NULL;
	call->info.vnet = vnet;
	call->info.egress_ifindex = egress_ifindex;
	snat_internet_prepare(ctx, &call->info, &call->verdict, &call->plan);
	if (!call->verdict.handled)
		snat_internet_forward(ctx, &call->info, &call->verdict, &call->plan);
	return &call->verdict;
}

#endif

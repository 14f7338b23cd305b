/* Live events for `vnet-xdp monitor`: drops, flows allowed and closed, SNAT exhaustion.
 * They cost a packet nothing but one array lookup unless a monitor listens, and at most
 * events_per_second per CPU while one does (see headers/vnet_xdp.h). */
#ifndef BPF_MONITOR_H
#define BPF_MONITOR_H

#include "maps.h"
#include "parse.h"
#include "nsg.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, MONITOR_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} monitor_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct monitor_control);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} monitor_control SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct monitor_budget);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} monitor_budget SEC(".maps");

/* What the caller knows of a packet's event; the addresses are read from the packet. */
struct monitor_packet_meta {
	__u32 type;
	__u32 drop_reason;
	__u32 l3_offset;
	__u32 family;
	__u32 proto;
	__u32 sport, dport;
	__u32 src_vnet, dst_vnet;
	__u32 nsg_id, rule_id;
	__u32 len;
};

/* The control while a monitor listens, or NULL: the one lookup a packet pays when nobody
 * does. *now is the clock then. */
static __always_inline struct monitor_control *monitor_listening(__u64 *now)
{
	__u32 zero = 0;
	struct monitor_control *c = bpf_map_lookup_elem(&monitor_control, &zero);

	if (dry_run || !c || !c->listening_until_ns)
		return NULL;
	*now = bpf_ktime_get_ns();
	return *now < c->listening_until_ns ? c : NULL;
}

/* Room for one event under this CPU's bound, or NULL (counted). */
static __always_inline struct monitor_event *monitor_reserve(const struct monitor_control *c,
							     __u64 now)
{
	__u32 zero = 0;
	struct monitor_budget *b = bpf_map_lookup_elem(&monitor_budget, &zero);
	struct monitor_event *e;
	__u64 rate;

	if (!b)
		return NULL;
	rate = c->events_per_second ?: MONITOR_DEFAULT_RATE;
	if (now - b->window_start_ns >= 1000000000ull) {
		b->window_start_ns = now;
		b->sent = 0;
	}
	if (b->sent >= rate) {
		b->rate_limited++;
		return NULL;
	}
	e = bpf_ringbuf_reserve(&monitor_events, sizeof(*e), 0);
	if (!e) {
		b->ring_full++;
		return NULL;
	}
	b->sent++;
	__builtin_memset(e, 0, sizeof(*e));
	e->time_ns = now;
	return e;
}

/* The NSG rule an event names: the first stage on the packet's way that denied it (a
 * drop) or that allowed it (a flow's begin). */
static __always_inline void monitor_deciding_rule(struct monitor_packet_meta *m,
						  const struct nsg_result *result, int dropped)
{
	m->nsg_id = NSG_NONE;
	m->rule_id = NSG_NONE;
	if (!result)
		return;
	for (int i = 0; i < NSG_STAGES; i++) {
		const struct nsg_decision *s = &result->stages[i];

		if (s->nsg_id == NSG_NONE || (dropped && !s->access))
			continue;
		m->nsg_id = s->nsg_id;
		m->rule_id = s->rule_id;
		break;
	}
}

/* A reserved packet event with what the caller knows of the packet, or NULL when nobody
 * listens or the bound leaves it out; the caller adds the addresses and submits it. */
static __always_inline struct monitor_event *monitor_packet_event(const struct monitor_packet_meta *m,
								  __u32 ifindex)
{
	struct monitor_control *c;
	struct monitor_event *e;
	__u64 now;

	c = monitor_listening(&now);
	if (!c)
		return NULL;
	e = monitor_reserve(c, now);
	if (!e)
		return NULL;
	e->type = m->type;
	e->drop_reason = m->drop_reason;
	e->ifindex = ifindex;
	e->src_vnet = (__u16)m->src_vnet;
	e->dst_vnet = (__u16)m->dst_vnet;
	e->nsg_id = m->nsg_id;
	e->rule_id = m->rule_id;
	e->len = m->len;
	e->family = (__u8)m->family;
	e->proto = (__u8)m->proto;
	e->sport = (__u16)m->sport;
	e->dport = (__u16)m->dport;
	return e;
}

/* A packet's event, its addresses read from the packet at the parser's offset: a function
 * of its own, verified once whichever verdict leads to it. */
__noinline int monitor_emit_packet(struct xdp_md *ctx, const struct monitor_packet_meta *m)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct monitor_event *e;
	void *l3;

	if (!m)
		return 0;
	e = monitor_packet_event(m, ctx->ingress_ifindex);
	if (!e)
		return 0;
	l3 = data + (m->l3_offset & 0x7f);
	if (m->family == AF_INET) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) <= end) {
			__builtin_memcpy(e->src, &ip->saddr, 4);
			__builtin_memcpy(e->dst, &ip->daddr, 4);
		}
	} else if (m->family == AF_INET6) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) <= end) {
			__builtin_memcpy(e->src, &ip6->saddr, 16);
			__builtin_memcpy(e->dst, &ip6->daddr, 16);
		}
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline void monitor_addresses_clear(struct monitor_event *e)
{
	__builtin_memset(e->src, 0, sizeof(e->src));
	__builtin_memset(e->dst, 0, sizeof(e->dst));
}

/* The same for a packet of the tc programs (a tunnel's xfrm interface), whose addresses
 * are copied out of the skb, linear or not. */
__noinline int monitor_emit_skb(struct __sk_buff *skb, const struct monitor_packet_meta *m)
{
	struct monitor_event *e;
	__u32 l3;

	if (!m)
		return 0;
	e = monitor_packet_event(m, skb->ifindex);
	if (!e)
		return 0;
	l3 = m->l3_offset & 0x7f;
	if (m->family == AF_INET) {
		if (bpf_skb_load_bytes(skb, l3 + offsetof(struct iphdr, saddr), e->src, 4) ||
		    bpf_skb_load_bytes(skb, l3 + offsetof(struct iphdr, daddr), e->dst, 4))
			monitor_addresses_clear(e);
	} else if (m->family == AF_INET6) {
		if (bpf_skb_load_bytes(skb, l3 + offsetof(struct ipv6hdr, saddr), e->src, 16) ||
		    bpf_skb_load_bytes(skb, l3 + offsetof(struct ipv6hdr, daddr), e->dst, 16))
			monitor_addresses_clear(e);
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* A TCP flow that just closed, from its table entry: the initiator is the source. */
static __always_inline void monitor_flow_end(const struct flow_key *key, const struct flow_entry *f)
{
	struct monitor_control *c;
	struct monitor_event *e;
	int b_first = f->initiator_is_b;
	__u64 now;

	c = monitor_listening(&now);
	if (!c)
		return;
	e = monitor_reserve(c, now);
	if (!e)
		return;
	e->type = MONITOR_FLOW_END;
	e->family = key->family;
	e->proto = key->proto;
	e->nsg_id = NSG_NONE;
	e->rule_id = NSG_NONE;
	__builtin_memcpy(e->src, b_first ? key->addr_b : key->addr_a, 16);
	__builtin_memcpy(e->dst, b_first ? key->addr_a : key->addr_b, 16);
	e->sport = b_first ? key->port_b : key->port_a;
	e->dport = b_first ? key->port_a : key->port_b;
	e->src_vnet = b_first ? key->vnet_b : key->vnet_a;
	e->dst_vnet = b_first ? key->vnet_a : key->vnet_b;
	e->packets[0] = f->packets[0];
	e->packets[1] = f->packets[1];
	e->bytes[0] = f->bytes[0];
	e->bytes[1] = f->bytes[1];
	bpf_ringbuf_submit(e, 0);
}

#endif

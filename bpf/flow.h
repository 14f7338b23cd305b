/* The stateful part of NSGs: a flow table that remembers every allowed connection for
 * both directions, so that return traffic passes without a rule, with idle timeouts per
 * protocol and TCP's FIN/RST shortening them. A flow starts in new_flows and moves to
 * flows when its responder first answers (FLOW_PROMOTED): a flood of new flows from one
 * VM evicts new flows only, never another VM's answered ones, SNAT's included (its replies
 * skip the NSG stage and promote through flow_snat_answered). A full table evicts its
 * least recently used flow (LRU hash); the evictions of both are visible as created -
 * expired - deleted - gc_removed - active (see FLOW_* counters). */
#ifndef BPF_FLOW_H
#define BPF_FLOW_H

#include <linux/bpf.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "vnet_xdp.h"
#include "maps.h"
#include "parse.h"
#include "nsg.h"
#include "monitor.h"

/* Sized by the loader from limits.flowTableSize before the first load. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FLOW_TABLE_ENTRIES_DEFAULT);
	__type(key, struct flow_key);
	__type(value, struct flow_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

/* Flows nobody answered yet; sized by the loader from flows' (NEW_FLOW_TABLE_DIVISOR). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} new_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOW_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_counters SEC(".maps");

/* What the established-flow fast path hands the flow table when it asks it again, and
 * what it learns back (bpf/fastpath.h). */
struct flow_confirmation {
	__u64 fold_packets, fold_bytes; /* forwarded under the lease since the last time */
	__u8 leasable;  /* the flow is open: no TCP state change is due but on SYN/FIN/RST */
	__u8 responder; /* the packet came from the flow's responder */
	__u8 pad[6];
};

/* Room for what does not fit the 512-byte stack beside the pipeline's own; the NSG
 * stage's result stays here for the decision trace. */
/* The NSG bindings of one leg through an appliance (see struct nsg_tuple), set by the
 * pipeline before its NSG stage: *_set 0 leaves that end the packet's own address. */
struct nsg_hop {
	__u8 src[16];
	__u8 dst[16];
	__u8 src_set, dst_set;
	__u8 pad[2];
};

struct flow_scratch {
	struct flow_confirmation confirmation;
	struct nsg_hop hop;
	struct packet_info info; /* the tc stages' view of the packet (bpf/tunnel.h) */
	struct nsg_result result;
	struct nsg_tuple tuple;
	struct flow_key key;
	struct nsg_tuple original;
	struct nsg_tuple quoted; /* the flow an ICMP error is about (icmp_error_quote) */
	__u32 quote_read;        /* the packet is an ICMP error whose quote is in quoted */
	struct flow_entry entry;
	__u64 now; /* the last NSG stage's clock, for the stages after it */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_scratch);
} flow_scratch SEC(".maps");

static __always_inline void flow_count(__u32 counter)
{
	__u64 *c;

	if (dry_run)
		return;
	c = bpf_map_lookup_elem(&flow_counters, &counter);
	if (c)
		(*c)++;
}

static __always_inline int is_echo(__u8 proto, __u8 type)
{
	if (proto == IPPROTO_ICMP)
		return type == 8 || type == 0;
	return proto == IPPROTO_ICMPV6 && (type == 128 || type == 129);
}

static __always_inline void nsg_tuple_reverse(const struct nsg_tuple *in, struct nsg_tuple *out)
{
	*out = *in;
	__builtin_memcpy(out->src, in->dst, 16);
	__builtin_memcpy(out->dst, in->src, 16);
	__builtin_memcpy(out->binding_src, in->binding_dst, 16);
	__builtin_memcpy(out->binding_dst, in->binding_src, 16);
	out->sport = in->dport;
	out->dport = in->sport;
	out->src_vnet = in->dst_vnet;
	out->dst_vnet = in->src_vnet;
}

/* -1, 0, 1 as (addr a, port a) compares to (addr b, port b). */
static __always_inline int endpoint_compare(const __u8 *a, __u16 pa, const __u8 *b, __u16 pb)
{
	const __u32 *wa = (const __u32 *)a, *wb = (const __u32 *)b;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 x = bpf_ntohl(wa[i]), y = bpf_ntohl(wb[i]);

		if (x != y)
			return x < y ? -1 : 1;
	}
	return pa < pb ? -1 : pa > pb;
}

/* Returns 1 when the packet goes from endpoint b to endpoint a of the key. */
static __always_inline int flow_key_build(const struct nsg_tuple *t, struct flow_key *key)
{
	int from_b = endpoint_compare(t->src, t->sport, t->dst, t->dport) > 0;

	__builtin_memset(key, 0, sizeof(*key));
	key->family = t->family;
	key->proto = t->proto;
	if (from_b) {
		__builtin_memcpy(key->addr_a, t->dst, 16);
		__builtin_memcpy(key->addr_b, t->src, 16);
		key->port_a = t->dport;
		key->port_b = t->sport;
		key->vnet_a = t->dst_vnet;
		key->vnet_b = t->src_vnet;
	} else {
		__builtin_memcpy(key->addr_a, t->src, 16);
		__builtin_memcpy(key->addr_b, t->dst, 16);
		key->port_a = t->sport;
		key->port_b = t->dport;
		key->vnet_a = t->src_vnet;
		key->vnet_b = t->dst_vnet;
	}
	return from_b;
}

/* The flow table's clock: CLOCK_MONOTONIC_COARSE, at the tick's resolution, which idle
 * timeouts of seconds do not notice; reading it costs a few loads where the precise clock
 * reads the hypervisor's clocksource on every packet. */
static __always_inline __u64 flow_clock(void)
{
	return bpf_ktime_get_coarse_ns();
}

static __always_inline __u64 flow_idle_ns(const struct flow_entry *f, __u64 now)
{
	return clock_age_ns(now, f->last_seen_ns);
}

/* Settings are missing only before the loader's first write (NULL): the defaults apply. */
static __always_inline __u64 flow_entry_timeout_ns(const struct flow_key *key,
						   const struct flow_entry *f,
						   const struct gateway_settings *s)
{
	return flow_timeout_ns(key->proto, f->tcp_state, s);
}

static __always_inline __u32 tcp_flags_of(const struct packet *pkt)
{
	struct tcphdr *tcp = pkt->l4;

	if (pkt->l4_proto != IPPROTO_TCP || !tcp || (void *)(tcp + 1) > pkt->data_end)
		return 0;
	return ((__u8 *)tcp)[13];
}

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* TCP's life: opening until the responder answers, established, then closing once both
 * sides sent FIN or either sent RST; opening and closing flows age out sooner. */
static __always_inline void flow_tcp_update(struct flow_entry *f, __u8 flags, int responder)
{
	if (flags & TCP_FLAG_RST) {
		if (f->tcp_state != TCP_FLOW_CLOSED)
			flow_count(FLOW_CLOSED);
		f->tcp_state = TCP_FLOW_CLOSED;
		return;
	}
	if (flags & TCP_FLAG_FIN) {
		f->fin_seen |= responder ? 2 : 1;
		if (f->fin_seen == 3 && f->tcp_state != TCP_FLOW_CLOSING) {
			f->tcp_state = TCP_FLOW_CLOSING;
			flow_count(FLOW_CLOSED);
		}
		return;
	}
	if (f->tcp_state == TCP_FLOW_OPENING && responder)
		f->tcp_state = TCP_FLOW_ESTABLISHED;
	else if (f->tcp_state == TCP_FLOW_CLOSED && (flags & TCP_FLAG_SYN) && !responder)
		f->tcp_state = TCP_FLOW_OPENING; /* the same ports reused for a new connection */
}

static __always_inline void flow_touch(struct flow_entry *f, const struct flow_key *key,
				       __u32 len, __u32 tcp_flags, int responder, __u64 now)
{
	if (dry_run)
		return;
	f->last_seen_ns = now;
	f->packets[responder & 1]++;
	f->bytes[responder & 1] += len;
	if (key->proto == IPPROTO_TCP) {
		__u8 before = f->tcp_state;

		flow_tcp_update(f, tcp_flags, responder);
		if (before < TCP_FLOW_CLOSING && f->tcp_state >= TCP_FLOW_CLOSING)
			monitor_flow_end(key, f);
	}
}

/* A flushConnection NSG on the flow's path changed its rules after the flow was allowed. */
static __always_inline int flow_needs_revalidation(const struct flow_entry *f,
						   const struct gateway_settings *s)
{
	if (!s || f->generation >= s->flush_generation)
		return 0;
	for (int i = 0; i < NSG_STAGES; i++) {
		__u32 id = f->nsg_id[i];
		__u32 *since;

		if (id == NSG_NONE)
			continue;
		since = bpf_map_lookup_elem(&nsg_flush, &id);
		if (since && *since > f->generation)
			return 1;
	}
	return 0;
}

static __always_inline void flow_record_stages(struct flow_entry *f,
					       const struct nsg_decision *stages)
{
	for (int i = 0; i < NSG_STAGES; i++) {
		f->nsg_id[i] = stages[i].nsg_id;
		f->rule_id[i] = stages[i].rule_id;
	}
}

static __always_inline void nsg_count_stages(const struct nsg_decision *stages, __u64 hits,
					     __u64 bytes)
{
	for (int i = 0; i < NSG_STAGES; i++)
		nsg_count_rule(stages[i].rule_id, hits, bytes);
}

static __always_inline void flow_create(struct flow_scratch *scratch, __u32 len, __u32 flags,
					int from_b, const struct nsg_decision *stages,
					const struct gateway_settings *s, __u64 now)
{
	struct flow_entry *f = &scratch->entry;

	if (dry_run)
		return;
	__builtin_memset(f, 0, sizeof(*f));
	f->last_seen_ns = now;
	f->created_ns = now;
	f->generation = s ? s->generation : 0;
	f->initiator_is_b = from_b;
	f->packets[0] = 1;
	f->bytes[0] = len;
	if (scratch->key.proto == IPPROTO_TCP) {
		/* A flow first seen mid-stream (after its entry expired or was evicted) is
		 * taken as established. */
		f->tcp_state = (flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN ?
				       TCP_FLOW_OPENING : TCP_FLOW_ESTABLISHED;
		if (flags & TCP_FLAG_RST)
			f->tcp_state = TCP_FLOW_CLOSED;
	}
	flow_record_stages(f, stages);
	if (bpf_map_update_elem(&new_flows, &scratch->key, f, BPF_ANY))
		flow_count(FLOW_INSERT_FAILED);
	else
		flow_count(FLOW_CREATED);
}

/* The flow of key, answered (in flows) or not yet (in new_flows, *unanswered set). */
static __always_inline struct flow_entry *flow_lookup(const struct flow_key *key, int *unanswered)
{
	struct flow_entry *f = bpf_map_lookup_elem(&flows, key);

	*unanswered = !f;
	return f ? f : bpf_map_lookup_elem(&new_flows, key);
}

static __always_inline long flow_delete(const struct flow_key *key, int unanswered)
{
	return bpf_map_delete_elem(unanswered ? (void *)&new_flows : (void *)&flows, key);
}

/* The responder's first packet: the flow moves to the table that new flows cannot
 * flush. Should flows refuse it, it stays where it is. */
static __always_inline void flow_promote(struct flow_scratch *scratch, const struct flow_entry *f)
{
	if (dry_run)
		return;
	scratch->entry = *f;
	if (bpf_map_update_elem(&flows, &scratch->key, &scratch->entry, BPF_ANY)) {
		flow_count(FLOW_INSERT_FAILED);
		return;
	}
	bpf_map_delete_elem(&new_flows, &scratch->key);
	flow_count(FLOW_PROMOTED);
}

/* A packet of a known flow that needs no new judgement: the rules that allowed the flow
 * count it, and the flow's clock, counters and TCP state move on. */
static __always_inline void flow_pass_known(struct flow_entry *f, const struct flow_key *key,
					    __u32 len, __u32 tcp_flags, int responder, __u64 now,
					    struct nsg_result *res)
{
	for (int i = 0; i < NSG_STAGES; i++) {
		res->stages[i].nsg_id = f->nsg_id[i];
		res->stages[i].rule_id = f->rule_id[i];
	}
	nsg_count_stages(res->stages, 0, len);
	flow_count(FLOW_HIT);
	res->outcome = NSG_FLOW_HIT;
	flow_touch(f, key, len, tcp_flags, responder, now);
}

/* The NSG stage of the pipeline: a packet of a known flow passes (re-evaluated first when
 * a flushConnection change asks for it); the first packet of a flow is classified and,
 * when allowed, remembered. An untracked packet (an ICMP error about no known flow) is
 * judged by the rules alone: it neither belongs to a flow nor opens one, so an error
 * cannot pass as an echo flow's packet that its bytes 4-5 happen to name, nor leave a
 * flow behind for the ICMP that follows. Returns DROP_NONE or the drop reason. */
static __always_inline int nsg_flow_stage(const struct nsg_tuple *t, __u32 len,
					  __u32 tcp_flags, int untracked, struct nsg_result *res)
{
	struct gateway_settings *s;
	struct flow_scratch *scratch;
	struct flow_key *key;
	struct flow_entry *f;
	__u32 zero = 0;
	__u64 now;
	int from_b, reason, unanswered;

	if (!t || !res)
		return DROP_NONE;
	for (int i = 0; i < NSG_STAGES; i++) {
		res->stages[i].nsg_id = NSG_NONE;
		res->stages[i].rule_id = NSG_NONE;
	}
	res->outcome = NSG_FLOW_NONE;
	if (nsg_exempt(t)) {
		res->outcome = NSG_FLOW_EXEMPT;
		return DROP_NONE;
	}
	if (untracked) {
		reason = nsg_classify(t, res);
		nsg_count_stages(res->stages, 1, len);
		res->outcome = reason ? NSG_FLOW_DENIED : NSG_FLOW_UNTRACKED;
		return reason;
	}
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch)
		return DROP_NONE;
	key = &scratch->key;
	s = bpf_map_lookup_elem(&settings, &zero);
	from_b = flow_key_build(t, key);
	now = flow_clock();
	scratch->now = now;
	f = flow_lookup(key, &unanswered);
	if (f && flow_idle_ns(f, now) > flow_entry_timeout_ns(key, f, s)) {
		flow_count(FLOW_EXPIRED);
		res->outcome = NSG_FLOW_EXPIRED;
		if (!dry_run && !unanswered)
			flow_delete(key, 0); /* the flow starts anew in new_flows */
		f = NULL;
	}
	if (f) {
		int responder = from_b != f->initiator_is_b;

		if (flow_needs_revalidation(f, s)) {
			/* Judged as the connection was opened, whichever side sends now. */
			if (responder)
				nsg_tuple_reverse(t, &scratch->original);
			else
				scratch->original = *t;
			reason = nsg_classify(&scratch->original, res);
			nsg_count_stages(res->stages, 1, len);
			if (reason) {
				if (!dry_run && !flow_delete(key, unanswered))
					flow_count(FLOW_DELETED);
				res->outcome = NSG_FLOW_DENIED;
				return reason;
			}
			if (!dry_run) {
				f->generation = s ? s->generation : 0;
				flow_record_stages(f, res->stages);
			}
			flow_count(FLOW_REVALIDATED);
			res->outcome = NSG_FLOW_REVALIDATED;
			flow_touch(f, key, len, tcp_flags, responder, now);
		} else {
			flow_pass_known(f, key, len, tcp_flags, responder, now, res);
		}
		if (unanswered && responder)
			flow_promote(scratch, f);
		return DROP_NONE;
	}

	reason = nsg_classify(t, res);
	nsg_count_stages(res->stages, 1, len);
	if (reason) {
		res->outcome = NSG_FLOW_DENIED;
		return reason;
	}
	flow_create(scratch, len, tcp_flags, from_b, res->stages, s, now);
	if (res->outcome != NSG_FLOW_EXPIRED)
		res->outcome = NSG_FLOW_NEW;
	return DROP_NONE;
}

/* The rules' view of the packet: addresses, ports (none for ICMP; a later fragment's
 * are its first's; ICMP echo keys its flow by the identifier both ways) and each end's VNet.
 * A global function cannot take packet pointers, so the addresses and TCP flags are read
 * from the frame at the parser's offsets. Returns DROP_NONE or the drop reason. */
static __always_inline int nsg_tuple_fill(void *data, void *data_end,
					  const struct packet_info *info, struct nsg_tuple *t,
					  __u32 *tcp_flags)
{
	__u32 l3, l4;
	int transport;

	__builtin_memset(t, 0, sizeof(*t));
	*tcp_flags = 0;
	l3 = info->l3_offset & 0xff; /* after at most two VLAN tags */
	if (info->family == AF_INET) {
		struct iphdr *ip = data + l3;

		if ((void *)(ip + 1) > data_end)
			return DROP_MALFORMED_IPV4;
		__builtin_memcpy(t->src, &ip->saddr, 4);
		__builtin_memcpy(t->dst, &ip->daddr, 4);
	} else {
		struct ipv6hdr *ip6 = data + l3;

		if ((void *)(ip6 + 1) > data_end)
			return DROP_MALFORMED_IPV6;
		__builtin_memcpy(t->src, &ip6->saddr, 16);
		__builtin_memcpy(t->dst, &ip6->daddr, 16);
	}
	__builtin_memcpy(t->binding_src, t->src, 16);
	__builtin_memcpy(t->binding_dst, t->dst, 16);
	t->family = info->family;
	t->proto = info->l4_proto;
	t->src_vnet = info->vnet;
	t->dst_vnet = info->dst_vnet;
	/* A later fragment's transport fields are its first fragment's (bpf/frag.h). */
	transport = info->l4_offset || (info->is_fragment & FRAGMENT_TRANSPORT_KNOWN);
	t->has_ports = transport && (info->l4_proto == IPPROTO_TCP || info->l4_proto == IPPROTO_UDP);
	if (t->has_ports) {
		t->sport = info->sport;
		t->dport = info->dport;
	} else if (transport && is_echo(info->l4_proto, info->icmp_type)) {
		t->sport = t->dport = info->sport;
	}
	l4 = info->l4_offset & 0x3ff;
	if (info->l4_proto == IPPROTO_TCP && l4) {
		__u8 *tcp = data + l4;

		if ((void *)(tcp + 14) <= data_end)
			*tcp_flags = tcp[13];
	}
	return DROP_NONE;
}

/* ---- ICMP errors, judged by the flow they are about ----
 * A destination unreachable, packet too big, time exceeded or parameter problem quotes
 * the packet it is about. Reversed, that packet names a flow: when the flow table holds
 * it (alive, in flows or new_flows) with the quote's sender where the error goes, in the
 * VNets the error comes from and goes to, the error passes with that flow's decisions,
 * as Azure's stateful NSGs let it: no rule judges it and it opens no flow of its own.
 * Otherwise it is an ICMP packet like any other, judged by the rules. */

static __always_inline int icmp_error_of(const struct packet_info *info)
{
	return info->l4_offset && icmp_is_error(info->l4_proto, info->icmp_type);
}

/* The quoted packet's tuple as nsg_tuple_fill would have made it when it was sent:
 * addresses, protocol, TCP/UDP ports, an echo's identifier. Its VNets are set where the
 * error's are known (flow_of_icmp_error). */
static __always_inline int icmp_quote_tuple(const struct icmp_quote *q, void *data_end,
					    struct nsg_tuple *t)
{
	__u8 *l4 = q->l4;

	__builtin_memset(t, 0, sizeof(*t));
	if (!l4 || (void *)(l4 + 8) > data_end)
		return ICMP_QUOTE_NO_TRANSPORT;
	if (q->ip) {
		t->family = AF_INET;
		__builtin_memcpy(t->src, &q->ip->saddr, 4);
		__builtin_memcpy(t->dst, &q->ip->daddr, 4);
	} else if (q->ip6) {
		t->family = AF_INET6;
		__builtin_memcpy(t->src, &q->ip6->saddr, 16);
		__builtin_memcpy(t->dst, &q->ip6->daddr, 16);
	} else {
		return ICMP_QUOTE_NO_TRANSPORT;
	}
	__builtin_memcpy(t->binding_src, t->src, 16);
	__builtin_memcpy(t->binding_dst, t->dst, 16);
	t->proto = q->proto;
	if (q->proto == IPPROTO_TCP || q->proto == IPPROTO_UDP) {
		t->has_ports = 1;
		t->sport = (__u16)l4[0] << 8 | l4[1];
		t->dport = (__u16)l4[2] << 8 | l4[3];
	} else if (is_echo(q->proto, l4[0])) {
		t->sport = t->dport = (__u16)l4[4] << 8 | l4[5];
	}
	return DROP_NONE;
}

/* Reads the quote of the ICMP error at the parser's offsets into flow_scratch.quoted:
 * DROP_NONE, ICMP_QUOTE_NO_TRANSPORT (a quote of a later fragment: no flow to find) or
 * DROP_ICMP_QUOTE_MALFORMED. One body, a global function per program type. */
static __always_inline int icmp_error_quote(void *data, void *data_end,
					    const struct packet_info *info)
{
	struct flow_scratch *scratch;
	struct icmp_quote q;
	struct packet pkt;
	__u32 zero = 0;
	int reason;

	if (packet_of(data, data_end, info, &pkt))
		return DROP_ICMP_QUOTE_MALFORMED;
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch)
		return DROP_ICMP_QUOTE_MALFORMED;
	reason = icmp_quote_parse(&pkt, &q);
	if (reason)
		return reason;
	return icmp_quote_tuple(&q, pkt.data_end, &scratch->quoted);
}

__noinline int icmp_error_quote_xdp(struct xdp_md *ctx, const struct packet_info *info)
{
	if (!info)
		return DROP_ICMP_QUOTE_MALFORMED;
	return icmp_error_quote((void *)(long)ctx->data, (void *)(long)ctx->data_end, info);
}

__noinline int icmp_error_quote_skb(struct __sk_buff *skb, const struct packet_info *info)
{
	if (!info)
		return DROP_ICMP_QUOTE_MALFORMED;
	return icmp_error_quote((void *)(long)skb->data, (void *)(long)skb->data_end, info);
}

/* Reads an ICMP error's quote (into flow_scratch, quote_read set) before the stages that
 * look for its flow, the peering check and the NSG stage: DROP_NONE, or
 * DROP_ICMP_QUOTE_MALFORMED. Called at the pipeline's own level, beside those stages
 * rather than beneath them: the calls along one chain share 512 bytes of stack. */
static __always_inline int icmp_error_read(struct flow_scratch *scratch, int reason)
{
	if (reason > 0)
		return reason;
	scratch->quote_read = reason == DROP_NONE;
	return DROP_NONE;
}

static __always_inline int icmp_error_read_xdp(struct xdp_md *ctx, const struct packet_info *info)
{
	__u32 zero = 0;
	struct flow_scratch *scratch = bpf_map_lookup_elem(&flow_scratch, &zero);

	if (!scratch)
		return DROP_ICMP_QUOTE_MALFORMED; /* cannot happen: a per-CPU array of one */
	scratch->quote_read = 0;
	if (!icmp_error_of(info))
		return DROP_NONE;
	return icmp_error_read(scratch, icmp_error_quote_xdp(ctx, info));
}

/* The flow that the error in scratch->tuple is about (its quote in scratch->quoted), or
 * NULL: the quote's sender must be the error's destination, and the quote's ends sit in
 * the error's VNets the other way round (the sender where the error goes, the quote's
 * destination where the error comes from). An expired flow, or one a flushConnection
 * change must judge again first, has nothing an error could belong to. */
static __always_inline struct flow_entry *flow_of_icmp_error(struct flow_scratch *scratch,
							     __u64 now)
{
	struct nsg_tuple *error = &scratch->tuple, *q = &scratch->quoted;
	const __u32 *a = (const __u32 *)error->dst, *b = (const __u32 *)q->src;
	struct gateway_settings *s;
	struct flow_entry *f;
	__u32 zero = 0;
	int unanswered;

	if (q->family != error->family || a[0] != b[0] || a[1] != b[1] || a[2] != b[2] ||
	    a[3] != b[3])
		return NULL;
	q->src_vnet = error->dst_vnet;
	q->dst_vnet = error->src_vnet;
	flow_key_build(q, &scratch->key);
	f = flow_lookup(&scratch->key, &unanswered);
	if (!f)
		return NULL;
	s = bpf_map_lookup_elem(&settings, &zero);
	if (flow_idle_ns(f, now) > flow_entry_timeout_ns(&scratch->key, f, s) ||
	    flow_needs_revalidation(f, s))
		return NULL;
	return f;
}

/* The NSG stage's answer for an ICMP error whose quote was read: 1 when it is about a
 * known flow, with that flow's decisions in res (counted on its rules, the flow itself
 * left as it was: an error neither refreshes nor answers it), 0 when the rules must
 * judge it. */
__noinline int nsg_icmp_error_flow(struct nsg_result *res, __u32 len)
{
	struct flow_scratch *scratch;
	struct flow_entry *f;
	__u32 zero = 0;
	__u64 now;

	if (!res)
		return 0;
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch)
		return 0;
	now = flow_clock();
	f = flow_of_icmp_error(scratch, now);
	if (!f)
		return 0;
	for (int i = 0; i < NSG_STAGES; i++) {
		res->stages[i].nsg_id = f->nsg_id[i];
		res->stages[i].rule_id = f->rule_id[i];
		res->stages[i].priority = 0;
		res->stages[i].access = 0;
	}
	nsg_count_stages(res->stages, 0, len);
	flow_count(FLOW_ICMP_ERROR_RELATED);
	res->outcome = NSG_FLOW_RELATED;
	scratch->now = now;
	return 1;
}

/* The NSG stage for one packet: info->vnet is the source's VNet, info->dst_vnet the
 * destination's (NSG_VNET_NONE outside VNets). Its result is left in flow_scratch. */
__noinline int nsg_packet_stage(struct xdp_md *ctx, const struct packet_info *info,
				struct nsg_result *res)
{
	struct flow_scratch *scratch;
	__u32 zero = 0, flags;
	int reason, error;

	if (!info || !res)
		return DROP_NONE;
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch)
		return DROP_NONE;
	reason = nsg_tuple_fill((void *)(long)ctx->data, (void *)(long)ctx->data_end, info,
				&scratch->tuple, &flags);
	if (reason)
		return reason;
	if (scratch->hop.src_set)
		__builtin_memcpy(scratch->tuple.binding_src, scratch->hop.src, 16);
	if (scratch->hop.dst_set)
		__builtin_memcpy(scratch->tuple.binding_dst, scratch->hop.dst, 16);
	/* An ICMP error: its quote was read by icmp_error_read_xdp */
	error = icmp_error_of(info);
	if (error && scratch->quote_read && nsg_icmp_error_flow(res, info->len))
		return DROP_NONE;
	return nsg_flow_stage(&scratch->tuple, info->len, flags, error, res);
}

/* Whether the packet answers a flow its destination opened: the flow table holds the flow
 * (alive) and the packet's sender is its responder; or it is an ICMP error about a flow
 * its destination opened. info->vnet and dst_vnet must be set. Counts and changes
 * nothing. */
__noinline int flow_is_reply(struct xdp_md *ctx, const struct packet_info *info)
{
	struct gateway_settings *s;
	struct flow_scratch *scratch;
	struct flow_entry *f;
	__u32 zero = 0, flags;
	int from_b, unanswered;

	if (!info)
		return 0;
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch ||
	    nsg_tuple_fill((void *)(long)ctx->data, (void *)(long)ctx->data_end, info,
			   &scratch->tuple, &flags))
		return 0;
	if (icmp_error_of(info) && scratch->quote_read) { /* icmp_error_read_xdp read it */
		f = flow_of_icmp_error(scratch, flow_clock());
		/* the quote's sender, where the error goes, opened the flow */
		return f && flow_key_build(&scratch->quoted, &scratch->key) == f->initiator_is_b;
	}
	from_b = flow_key_build(&scratch->tuple, &scratch->key);
	f = flow_lookup(&scratch->key, &unanswered);
	if (!f)
		return 0;
	s = bpf_map_lookup_elem(&settings, &zero);
	if (flow_idle_ns(f, flow_clock()) > flow_entry_timeout_ns(&scratch->key, f, s))
		return 0;
	return from_b != f->initiator_is_b;
}

/* A flow's packets whose turn needs no TCP state change: those of any other protocol,
 * and TCP's once established until a FIN or RST. */
static __always_inline int flow_leasable(const struct flow_key *key, const struct flow_entry *f)
{
	return key->proto != IPPROTO_TCP || (f->tcp_state == TCP_FLOW_ESTABLISHED && !f->fin_seen);
}

/* The NSG stage for a packet of a flow already allowed, as the established-flow fast path
 * (bpf/fastpath.h) asks it: 0 when the flow is known, alive and needs no re-evaluation
 * (then it is counted and touched exactly as nsg_packet_stage would, the counts the fast
 * path kept meanwhile are added, and scratch->confirmation says whether the flow is open),
 * -1 when the packet needs the whole pipeline, with nothing counted or changed. */
__noinline int nsg_established_stage(struct xdp_md *ctx, const struct packet_info *info,
				     struct nsg_result *res)
{
	struct flow_confirmation *c;
	struct gateway_settings *s;
	struct flow_scratch *scratch;
	struct flow_entry *f;
	__u32 zero = 0, flags;
	__u64 now;
	int from_b, responder, unanswered;

	if (!info || !res)
		return -1;
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch ||
	    nsg_tuple_fill((void *)(long)ctx->data, (void *)(long)ctx->data_end, info,
			   &scratch->tuple, &flags) ||
	    nsg_exempt(&scratch->tuple))
		return -1;
	from_b = flow_key_build(&scratch->tuple, &scratch->key);
	f = flow_lookup(&scratch->key, &unanswered);
	if (!f)
		return -1;
	s = bpf_map_lookup_elem(&settings, &zero);
	now = flow_clock();
	if (flow_idle_ns(f, now) > flow_entry_timeout_ns(&scratch->key, f, s) ||
	    flow_needs_revalidation(f, s))
		return -1;
	scratch->now = now;
	responder = from_b != f->initiator_is_b;
	c = &scratch->confirmation;
	/* Folded before the packet moves the TCP state: a FIN that ends the flow reports
	 * (monitor_flow_end) the packets forwarded under the lease too. */
	if (!dry_run) {
		f->packets[responder & 1] += c->fold_packets;
		f->bytes[responder & 1] += c->fold_bytes;
	}
	flow_pass_known(f, &scratch->key, info->len, flags, responder, now, res);
	c->leasable = flow_leasable(&scratch->key, f);
	c->responder = responder;
	if (unanswered && responder)
		flow_promote(scratch, f);
	return 0;
}

/* A reply SNAT translated back to its VM (bpf/snat.h) skips the NSG stage, but it is the
 * responder's packet of the VM's flow all the same: the flow lives on, and an unanswered
 * one moves to flows as any answered flow does. vm_flow is the SNAT mapping's key (the
 * VM's side first, ports in network order); the tuple is the reply's as the VM sees it. */
__noinline int flow_snat_answered(const struct snat_flow_key *vm_flow, __u32 vm_vnet, __u32 len,
				  __u32 tcp_flags)
{
	struct gateway_settings *s;
	struct flow_scratch *scratch;
	struct nsg_tuple *t;
	struct flow_entry *f;
	__u32 zero = 0;
	__u64 now;
	int from_b, unanswered;

	if (!vm_flow)
		return 0;
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch)
		return 0;
	t = &scratch->tuple;
	__builtin_memset(t, 0, sizeof(*t));
	__builtin_memcpy(t->src, vm_flow->dst, 16);
	__builtin_memcpy(t->dst, vm_flow->src, 16);
	t->family = vm_flow->family;
	t->proto = vm_flow->proto;
	t->src_vnet = NSG_VNET_NONE; /* the Internet, as route_destination_vnet has it */
	t->dst_vnet = vm_vnet;
	if (t->proto == IPPROTO_TCP || t->proto == IPPROTO_UDP) {
		t->has_ports = 1;
		t->sport = bpf_ntohs(vm_flow->dst_port);
		t->dport = bpf_ntohs(vm_flow->src_port);
	} else { /* ICMP echo: the identifier both ways */
		t->sport = t->dport = bpf_ntohs(vm_flow->src_port);
	}
	if (nsg_exempt(t))
		return 0;
	from_b = flow_key_build(t, &scratch->key);
	f = flow_lookup(&scratch->key, &unanswered);
	if (!f || from_b == f->initiator_is_b)
		return 0;
	s = bpf_map_lookup_elem(&settings, &zero);
	now = flow_clock();
	if (flow_idle_ns(f, now) > flow_entry_timeout_ns(&scratch->key, f, s))
		return 0;
	flow_touch(f, &scratch->key, len, tcp_flags, 1, now);
	if (unanswered)
		flow_promote(scratch, f);
	return 0;
}

/* The NSG stage as the pipeline runs it, from the parser's offsets and both ends' VNets;
 * when the route leads to an appliance (to_appliance), its next hop is the address whose
 * inbound NSGs judge the leg in (with dst_vnet its VNet). The address is copied either
 * way: no pointer that may be NULL, which Debian 6.1's verifier cannot follow. */
static __always_inline int nsg_stage(struct xdp_md *ctx, struct packet_info *info,
				     __u32 src_vnet, __u32 dst_vnet, int to_appliance,
				     const __u8 *next_hop)
{
	struct flow_scratch *scratch;
	__u32 zero = 0;

	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch)
		return DROP_INTERNAL_ERROR;
	scratch->hop.dst_set = to_appliance;
	__builtin_memcpy(scratch->hop.dst, next_hop, 16);
	info->vnet = src_vnet;
	info->dst_vnet = dst_vnet;
	return nsg_packet_stage(ctx, info, &scratch->result);
}

/* A new flow into a VNet whose side of the peering refuses access from the source's VNet
 * (ROUTE_FLAG_ACCESS_REFUSED): refused; a reply of a flow that VNet opened enters. */
static __always_inline int peering_access_refused(struct xdp_md *ctx, struct packet_info *info,
						  __u32 src_vnet, const struct route_info *route)
{
	if (route->type != ROUTE_VNET_PEERING || !(route->flags & ROUTE_FLAG_ACCESS_REFUSED))
		return 0;
	info->vnet = src_vnet;
	info->dst_vnet = route->dst_vnet;
	return !flow_is_reply(ctx, info);
}

/* The last NSG stage's decisions on this CPU, for the decision trace. */
static __always_inline const struct nsg_result *nsg_last_result(void)
{
	__u32 zero = 0;
	struct flow_scratch *scratch = bpf_map_lookup_elem(&flow_scratch, &zero);

	return scratch ? &scratch->result : NULL;
}

#endif

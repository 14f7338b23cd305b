/* The gateway's XDP program: parse, classify the ingress, forward between peered VNets.
 * One program on every bound interface; the maps say what each interface faces. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "vnet_xdp.h"
#include "maps.h"
#include "counters.h"
#include "parse.h"
#include "checksum.h"
#include "forward.h"
#include "tunnel.h"
#include "nsg.h"
#include "flow.h"
#include "snat.h"
#include "fastpath.h"
#include "frag.h"
#include "monitor.h"

struct decision {
	__u32 verdict;
	__u32 drop_reason;
	__u32 counter;
	__u32 src_vnet;
	__u32 route_scope;
	struct route_info route;
	__u32 nsg_ran; /* the NSG stage ran: its result is in flow_scratch */
	__u32 fast_path; /* decided by the established-flow fast path */
	__u8 ingress_smac[6]; /* the frame's source MAC before the rewrite, for the fast path */
	__u8 pad[2];
};

/* What identifies the packet in a trace: the IPv4 identification or the IPv6 flow label. */
static __always_inline __u32 packet_fingerprint(struct xdp_md *ctx, const struct packet_info *info)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	void *l3 = data + (info->l3_offset & 0x7f);

	if (info->family == AF_INET) {
		struct iphdr *ip = l3;

		return (void *)(ip + 1) <= end ? bpf_ntohs(ip->id) : 0;
	}
	if (info->family == AF_INET6) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) <= end)
			return bpf_ntohl(*(__be32 *)ip6 & bpf_htonl(0x000fffff));
	}
	return 0;
}

static __always_inline void trace_decision(struct xdp_md *ctx, const struct packet_info *info,
					   const struct decision *d)
{
	__u32 zero = 0;
	struct decision_trace *t = bpf_map_lookup_elem(&decision_traces, &zero);
	const struct nsg_result *nsg;

	if (!t || (!t->armed && !dry_run))
		return;
	t->sequence++;
	t->verdict = d->verdict;
	t->drop_reason = d->drop_reason;
	t->counter = d->counter;
	t->ingress_ifindex = ctx->ingress_ifindex;
	t->src_vnet = d->src_vnet;
	t->route_scope = d->route_scope;
	t->route_type = d->route.type;
	t->egress_ifindex = d->route.egress_ifindex;
	t->peering = d->route.peering;
	t->dst_vnet = d->route.dst_vnet;
	t->fingerprint = packet_fingerprint(ctx, info);
	nsg = d->nsg_ran ? nsg_last_result() : NULL;
	for (int i = 0; i < NSG_STAGES; i++) {
		if (nsg) {
			t->nsg[i] = nsg->stages[i];
		} else {
			t->nsg[i].nsg_id = NSG_NONE;
			t->nsg[i].rule_id = NSG_NONE;
		}
	}
	t->flow = nsg ? nsg->outcome : NSG_FLOW_NONE;
	t->fast_path = d->fast_path;
}

static __always_inline int drop(struct decision *d, __u32 reason)
{
	d->verdict = XDP_DROP;
	d->drop_reason = reason;
	d->counter = COUNT_DROPPED;
	return XDP_DROP;
}

static __always_inline int pass(struct decision *d, __u32 counter)
{
	d->verdict = XDP_PASS;
	d->counter = counter;
	return XDP_PASS;
}

/* Hands the packet to the egress the route chose, with the MACs the kernel's neighbour
 * table knows. What the kernel must do itself (resolve a neighbour, answer an expired
 * TTL or a too-big packet) goes to the kernel, after the policy decision was made. */
/* The FIB lookup's parameters live off the stack: the NSG stage's calls need the room. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpf_fib_lookup);
} fib_scratch SEC(".maps");

/* The VNet the destination sits in, for its inbound NSGs; NSG_VNET_NONE outside VNets. */
static __always_inline __u32 route_destination_vnet(const struct route_info *route)
{
	if (route->type == ROUTE_VNET_LOCAL || route->type == ROUTE_VNET_PEERING ||
	    route->type == ROUTE_VIRTUAL_APPLIANCE)
		return route->dst_vnet;
	return NSG_VNET_NONE;
}

/* The VNet a packet belongs to, for its drop's counter: its source's, or for a packet
 * from outside every VNet (Internet, on-premises) its destination's once routed. */
static __always_inline __u32 decision_vnet(const struct decision *d)
{
	return d->src_vnet != NSG_VNET_NONE ? d->src_vnet : route_destination_vnet(&d->route);
}

/* Per-NIC anti-spoofing (nic_source_check) right after the interface's, and which NSGs
 * judge what a NIC forwards (struct nsg_hop). Returns DROP_NONE or the drop reason. A
 * function of its own, off process_ip's stack. */
__noinline int nic_source_stage(struct xdp_md *ctx, const struct packet_info *info,
				const struct source_info *source, __u32 iface_flags)
{
	struct packet parsed, *pkt = &parsed;
	struct flow_scratch *scratch;
	__u32 zero = 0;
	int reason;

	if (!info || !source || xdp_packet_of(ctx, info, pkt))
		return DROP_INTERNAL_ERROR;
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch)
		return DROP_INTERNAL_ERROR;
	scratch->hop.src_set = nic_source_check(pkt, ctx->ingress_ifindex, iface_flags, source,
						scratch->hop.src, &reason);
	return reason;
}

static __always_inline int redirected(struct decision *d)
{
	d->verdict = XDP_REDIRECT;
	d->counter = COUNT_FORWARDED;
	return XDP_REDIRECT;
}

static __always_inline int forward(struct xdp_md *ctx, struct packet *pkt, struct decision *d)
{
	struct bpf_fib_lookup *params;
	__u32 zero = 0, counter;
	int reason;

	if (d->route.type == ROUTE_VNET_PEERING)
		count_peering(d->route.peering, pkt->len);
	if (hop_limit_expired(pkt))
		return pass(d, COUNT_PASS_TTL_EXPIRED);

	params = bpf_map_lookup_elem(&fib_scratch, &zero);
	if (!params)
		return drop(d, DROP_INTERNAL_ERROR);
	reason = fib_answer_judge(route_next_hop_lookup(ctx, pkt, &d->route, params), params,
				  d->route.egress_ifindex, &counter);
	if (reason)
		return drop(d, reason);
	/* The kernel would route the packet by its destination, past the appliance. */
	if (counter == COUNT_PASS_NEIGHBOUR && d->route.type == ROUTE_VIRTUAL_APPLIANCE)
		return drop(d, DROP_NEXT_HOP_UNRESOLVED);
	if (counter)
		return pass(d, counter);
	reason = egress_redirect(ctx, pkt, pkt->eth, params->dmac, params->smac, params->ifindex);
	return reason ? drop(d, reason) : redirected(d);
}

/* The whole pipeline forwarded a packet of a flow the NSG stage keeps: remember the
 * result for the flow's next packets in this direction (bpf/fastpath.h). A function of its
 * own, off process_ip's stack. */
__noinline int forward_remember(struct xdp_md *ctx, const struct packet_info *info,
				const struct decision *d)
{
	struct packet parsed, *pkt = &parsed;
	const struct flow_scratch *scratch;
	struct bpf_fib_lookup *params;
	__u32 zero = 0;

	if (!info || !d || xdp_packet_of(ctx, info, pkt))
		return 0;
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	params = bpf_map_lookup_elem(&fib_scratch, &zero);
	if (!scratch || !params || scratch->result.outcome == NSG_FLOW_EXEMPT)
		return 0;
	fast_path_remember(ctx, pkt, d->ingress_smac, d->src_vnet, &d->route, params, &scratch->key,
			   scratch->now);
	return 0;
}

/* The decision so far is the cache entry's: the source VNet and the route. */
static __always_inline void decided_from_cache(struct decision *d, const struct fast_path_entry *e)
{
	d->src_vnet = e->src_vnet;
	d->route = e->route;
	d->nsg_ran = 1;
}

/* Out to the route's egress with the next hop's MACs the cache holds. No FIB lookup
 * judged this frame's size: a frame larger than the egress MTU goes to the kernel, as
 * the FIB would send it. */
static __always_inline int forward_cached(struct xdp_md *ctx, struct packet *pkt,
					  const struct fast_path_entry *e, struct decision *d)
{
	int reason;

	if (e->route.type == ROUTE_VNET_PEERING)
		count_peering(e->route.peering, pkt->len);
	if (hop_limit_expired(pkt))
		return pass(d, COUNT_PASS_TTL_EXPIRED);
	if (!frame_fits_egress(ctx, e->route.egress_ifindex))
		return pass(d, COUNT_PASS_FRAG_NEEDED);
	reason = egress_redirect(ctx, pkt, pkt->eth, e->dmac, e->smac, e->route.egress_ifindex);
	return reason ? drop(d, reason) : redirected(d);
}

/* A packet under its direction's lease: counted as the flow table would count it (res
 * is what the decision trace shows of the NSG stages), and out. */
static __always_inline int forward_leased(struct xdp_md *ctx, struct packet *pkt,
					  struct fast_path_entry *e, struct decision *d,
					  struct nsg_result *res, __u64 now)
{
	d->fast_path = FAST_PATH_LEASED;
	fast_path_count_leased(e, pkt->len, now, res);
	return forward_cached(ctx, pkt, e, d);
}

/* The parser's findings and the decision live off the stack: the pipeline and its
 * deepest stage share 512 bytes of stack. */
struct pipeline_state {
	struct packet_info info;
	struct decision decision;
	/* The interface this CPU last received on and what the interfaces map says of it:
	 * a NAPI poll brings a burst from one interface. The map never changes under a
	 * program (a reload brings a new program, and with it a new, empty scratch). */
	__u32 iface_ifindex;
	struct interface_info iface;
	struct monitor_packet_meta monitor; /* the event being written, if any */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pipeline_state);
} pipeline_scratch SEC(".maps");

/* The common case under a lease, before the parser: an untagged IPv4 frame without
 * options or fragmentation, whose direction holds a lease. Every check the parser would
 * make on such a frame is made here; whatever does not fit, or any doubt, returns -1 and
 * the frame takes the pipeline from the parser on, which judges it as always. Skipping
 * the parser's general walk and the hand-over of its findings is a third of an
 * established packet's cost. A function of its own: its view of the packet stays off the
 * stack the whole pipeline's deepest calls share. */
__noinline int forward_leased_ipv4(struct xdp_md *ctx, struct pipeline_state *st)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct packet pkt = { .data = data, .data_end = end, .eth = eth, .l3 = ip, .ip4 = ip,
			      .family = AF_INET };
	struct fast_path_entry *e;
	struct flow_scratch *scratch;
	struct decision *d;
	__u32 zero = 0;
	__u64 now;

	if (!st)
		return -1;
	d = &st->decision;
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    *(__u8 *)ip != 0x45 || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return -1;
	pkt.len = bpf_ntohs(ip->tot_len);
	if (pkt.len < sizeof(*ip) || (void *)ip + bounded16(pkt.len) > end ||
	    !ipv4_header_checksum_ok(ip, end))
		return -1;
	pkt.l4 = ip + 1;
	pkt.l4_proto = ip->protocol;
	if (parse_transport(&pkt) || !fast_path_applies(&pkt))
		return -1;
	e = fast_path_lookup(ctx, &pkt);
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!e || !scratch)
		return -1;
	now = flow_clock();
	if (!fast_path_lease_holds(e, &pkt, now))
		return -1;
	/* What the decision trace reads of the parser's findings. */
	st->info.l3_offset = sizeof(*eth);
	st->info.family = AF_INET;
	decided_from_cache(d, e);
	return forward_leased(ctx, &pkt, e, d, &scratch->result, now);
}

/* A packet of a flow whose earlier packet in this direction the whole pipeline forwarded
 * (bpf/fastpath.h): under the flow's lease from the cache entry alone; otherwise the flow
 * table is asked (nsg_established_stage) and the FIB too, and a new lease granted when the
 * flow is open. Returns the verdict, or -1 when the packet must take the whole pipeline
 * (nothing was counted then). A function of its own: process_ip's stack stays what the
 * SNAT stages beneath it allow. */
__noinline int forward_established(struct xdp_md *ctx, struct packet_info *info,
				   struct decision *d)
{
	struct packet parsed, *pkt = &parsed;
	struct fast_path_entry *e;
	struct flow_scratch *scratch;
	struct bpf_fib_lookup *params;
	__u32 zero = 0;
	__u64 now;
	int verdict;

	if (!info || !d || xdp_packet_of(ctx, info, pkt))
		return -1;
	e = fast_path_lookup(ctx, pkt);
	if (!e)
		return -1;
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch)
		return -1;
	decided_from_cache(d, e);
	now = flow_clock();
	if (fast_path_lease_holds(e, pkt, now))
		return forward_leased(ctx, pkt, e, d, &scratch->result, now);

	scratch->confirmation.fold_packets = e->pending_packets;
	scratch->confirmation.fold_bytes = e->pending_bytes;
	info->vnet = e->src_vnet;
	info->dst_vnet = route_destination_vnet(&e->route);
	if (nsg_established_stage(ctx, info, &scratch->result))
		return -1;
	d->fast_path = FAST_PATH_CACHED;
	verdict = forward(ctx, pkt, d);
	params = bpf_map_lookup_elem(&fib_scratch, &zero);
	fast_path_confirmed(e, &scratch->confirmation, &scratch->result,
			    verdict == XDP_REDIRECT ? params : NULL, now);
	return verdict;
}

static __always_inline int snat_decided(struct decision *d, const struct snat_verdict *v)
{
	d->verdict = v->verdict;
	d->drop_reason = v->drop_reason;
	d->counter = v->counter;
	d->route.egress_ifindex = v->egress_ifindex;
	return d->verdict;
}

/* Out the uplink with SNAT: a stage of its own (bpf/snat.h), verified once. */
static __always_inline int forward_to_internet(struct xdp_md *ctx, struct packet *pkt,
					       struct decision *d)
{
	struct snat_verdict *v = snat_to_internet(ctx, pkt, d->src_vnet, d->route.egress_ifindex);

	if (!v)
		return drop(d, DROP_INTERNAL_ERROR);
	return snat_decided(d, v);
}

/* What arrives on the uplink before the rest of the pipeline: ESP and IKE of a tunnel's
 * peer for the kernel, replies to a VIP back to their VM. Returns the verdict, or -1 when
 * the packet goes on through process_ip. A function of its own: the SNAT reply stage's
 * stack beneath process_ip's would pass the 512 bytes Debian 6.1's verifier allows. */
__noinline int process_uplink(struct xdp_md *ctx, const struct packet_info *info,
			      struct decision *d)
{
	struct packet parsed, *pkt = &parsed;
	struct snat_verdict *v;

	if (!info || !d)
		return XDP_DROP;
	if (xdp_packet_of(ctx, info, pkt))
		return drop(d, DROP_INTERNAL_ERROR);
	switch (tunnel_classify(pkt)) {
	case TUNNEL_PASS_ESP:
		return pass(d, COUNT_PASS_ESP);
	case TUNNEL_PASS_IKE:
		return pass(d, COUNT_PASS_IKE);
	case TUNNEL_DROP_UNKNOWN_PEER:
		return drop(d, DROP_TUNNEL_UNKNOWN_PEER);
	}
	/* A reply to a VIP goes back to its VM (or is dropped) by a stage of its own; it
	 * belongs to a flow the VM opened, which the outbound NSGs allowed. */
	v = snat_from_internet(ctx, pkt);
	if (v) {
		d->route.type = ROUTE_VNET_LOCAL;
		d->route.dst_vnet = v->vnet;
		return snat_decided(d, v);
	}
	return -1;
}

/* Everything after the parser, for a bound interface and an IP packet. A function of its
 * own, verified once from the parser's offsets: the parser's many outcomes (VLAN tags,
 * extension headers, fragments) would otherwise each carry their own copy of every later
 * stage through the verifier, which Debian 6.1's refuses as too complex. */
__noinline int process_ip(struct xdp_md *ctx, struct packet_info *info, struct decision *d)
{
	struct interface_info *iface;
	struct source_info *source;
	struct route_info *route;
	__u32 ifindex = ctx->ingress_ifindex;
	struct packet parsed, *pkt = &parsed;
	int reason, vnet, verdict;

	if (!info || !d)
		return XDP_DROP;
	if (xdp_packet_of(ctx, info, pkt))
		return drop(d, DROP_INTERNAL_ERROR);
	iface = bpf_map_lookup_elem(&interfaces, &ifindex);
	if (!iface)
		return pass(d, COUNT_PASS_UNBOUND);
	if (is_control_traffic(pkt))
		return pass(d, COUNT_PASS_CONTROL);
	if (is_local_destination(pkt))
		return pass(d, COUNT_PASS_LOCAL);
	if (iface->role == INTERFACE_UPLINK)
		return drop(d, DROP_UPLINK_UNSOLICITED);
	if (is_link_local(pkt) && !is_platform_destination(pkt))
		return drop(d, DROP_LINK_LOCAL);

	source = source_lookup(pkt, ifindex);
	if (!source)
		return drop(d, DROP_SPOOFED_SOURCE);
	reason = nic_source_stage(ctx, info, source, iface->flags);
	if (reason)
		return drop(d, reason);
	vnet = source->vnet;
	d->src_vnet = vnet;
	d->route_scope = source->route_scope;
	if (is_platform_destination(pkt))
		return drop(d, DROP_PLATFORM_ADDRESS);

	route = route_lookup(pkt, source->route_scope);
	if (!route)
		return drop(d, DROP_NO_ROUTE);
	d->route = *route;
	if (route->type == ROUTE_NONE)
		return drop(d, DROP_ROUTE_NONE);
	if (route->flags & ROUTE_FLAG_INVALID)
		return drop(d, DROP_ROUTE_INVALID);
	if (route->flags & ROUTE_FLAG_GATEWAY_DROPS)
		return drop(d, DROP_GATEWAY_NO_ROUTE);
	if (forwarded_traffic_refused(source, route))
		return drop(d, DROP_FORWARDED_NOT_ALLOWED);
	reason = icmp_error_read_xdp(ctx, info);
	if (reason)
		return drop(d, reason);
	if (peering_access_refused(ctx, info, vnet, route))
		return drop(d, DROP_PEERING_ACCESS_REFUSED);

	d->nsg_ran = 1;
	reason = nsg_stage(ctx, info, vnet, route_destination_vnet(route),
			   route->type == ROUTE_VIRTUAL_APPLIANCE, route->next_hop);
	if (reason) {
		tunnel_count_egress_drop(route, pkt->len);
		return drop(d, reason);
	}
	if (route->type == ROUTE_TUNNEL) /* XDP cannot transmit on xfrm: the kernel routes it */
		return pass(d, COUNT_PASS_TUNNEL);
	if (route->type == ROUTE_INTERNET)
		return forward_to_internet(ctx, pkt, d);
	__builtin_memcpy(d->ingress_smac, pkt->eth->h_source, ETH_ALEN);
	verdict = forward(ctx, pkt, d);
	if (verdict == XDP_REDIRECT)
		forward_remember(ctx, info, d);
	return verdict;
}


/* The ingress interface's binding, or NULL when it is not bound. */
static __always_inline const struct interface_info *ingress_interface(struct xdp_md *ctx,
								      struct pipeline_state *st)
{
	__u32 ifindex = ctx->ingress_ifindex;
	struct interface_info *iface;

	if (st->iface_ifindex == ifindex)
		return &st->iface;
	iface = bpf_map_lookup_elem(&interfaces, &ifindex);
	if (!iface)
		return NULL;
	st->iface = *iface;
	st->iface_ifindex = ifindex;
	return iface;
}

/* A bound interface's IP packet, from the fast path or the uplink's stages on. */
static __always_inline int process_bound(struct xdp_md *ctx, const struct interface_info *iface,
					 struct packet_info *info, struct decision *d)
{
	int verdict;

	/* The uplink's traffic is the tunnels' or SNAT's: it never takes the fast path. */
	if (iface->role == INTERFACE_UPLINK)
		verdict = process_uplink(ctx, info, d);
	else
		verdict = forward_established(ctx, info, d);
	if (verdict >= 0)
		return verdict;
	return process_ip(ctx, info, d);
}

static __always_inline int process(struct xdp_md *ctx, struct pipeline_state *st)
{
	struct packet_info *info = &st->info;
	struct decision *d = &st->decision;
	const struct interface_info *iface;
	int reason, verdict;

	reason = parse_frame(ctx, info);
	if (reason)
		return drop(d, reason);
	iface = ingress_interface(ctx, st);
	if (!iface)
		return pass(d, COUNT_PASS_UNBOUND);
	if (info->vlan_tags)
		return drop(d, DROP_VLAN_NOT_BOUND);
	if (!info->family)
		return pass(d, COUNT_PASS_NOT_IP);
	/* A later fragment follows its first fragment's verdict (bpf/frag.h). */
	if (info->is_fragment) {
		reason = fragment_admit(ctx, info);
		if (reason)
			return drop(d, reason);
	}
	verdict = process_bound(ctx, iface, info, d);
	if (info->is_fragment & FRAGMENT_FIRST)
		fragment_remember(verdict, d->drop_reason);
	return verdict;
}

static __always_inline int drop_is_snat_exhaustion(__u32 reason)
{
	return reason == DROP_SNAT_PORT_EXHAUSTED || reason == DROP_SNAT_TABLE_FULL ||
	       reason == DROP_SNAT_VM_LIMIT;
}

/* The event a listening monitor gets of this verdict, if any: every drop, and a flow the
 * NSGs just allowed, with the first NSG rule on its way that denied or allowed it. A
 * function of its own, with the event built in the scratch: the XDP program's stack and
 * its deepest calls' already come near the 512 bytes they share. */
__noinline int monitor_decision(struct xdp_md *ctx, struct pipeline_state *st, int verdict)
{
	struct flow_scratch *scratch = NULL;
	struct monitor_packet_meta *m;
	const struct decision *d;
	__u32 zero = 0;

	if (!st)
		return 0;
	d = &st->decision;
	m = &st->monitor;
	if (d->nsg_ran)
		scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (verdict == XDP_DROP)
		m->type = drop_is_snat_exhaustion(d->drop_reason) ? MONITOR_SNAT_EXHAUSTED
								  : MONITOR_DROP;
	else if (scratch && scratch->result.outcome == NSG_FLOW_NEW)
		m->type = MONITOR_FLOW_BEGIN;
	else
		return 0;
	m->drop_reason = d->drop_reason;
	m->l3_offset = st->info.l3_offset;
	m->family = st->info.family;
	m->proto = st->info.l4_proto;
	m->sport = st->info.sport;
	m->dport = st->info.dport;
	m->src_vnet = d->src_vnet;
	m->dst_vnet = route_destination_vnet(&d->route);
	m->len = st->info.len;
	monitor_deciding_rule(m, scratch ? &scratch->result : NULL, verdict == XDP_DROP);
	return monitor_emit_packet(ctx, m);
}

SEC("xdp")
int xdp_gateway(struct xdp_md *ctx)
{
	__u64 bytes = ctx->data_end - ctx->data;
	struct pipeline_state *st;
	__u32 zero = 0;
	int verdict;

	count_datapath(COUNT_RX, bytes);
	st = bpf_map_lookup_elem(&pipeline_scratch, &zero);
	if (!st) {
		count_drop(ctx->ingress_ifindex, NSG_VNET_NONE, DROP_INTERNAL_ERROR, bytes);
		return XDP_DROP;
	}
	__builtin_memset(&st->decision, 0, sizeof(st->decision));
	st->decision.src_vnet = NSG_VNET_NONE;
	verdict = forward_leased_ipv4(ctx, st);
	if (verdict < 0)
		verdict = process(ctx, st);
	if (verdict == XDP_DROP)
		count_drop(ctx->ingress_ifindex, decision_vnet(&st->decision),
			   st->decision.drop_reason, bytes);
	else
		count_datapath(st->decision.counter, bytes);
	trace_decision(ctx, &st->info, &st->decision);
	monitor_decision(ctx, st, verdict);
	return verdict;
}

/* On each connection's xfrm interface (clsact): decrypted packets coming in, cleartext
 * packets going out into the tunnel. */
SEC("tc")
int tc_tunnel_ingress(struct __sk_buff *skb)
{
	return tunnel_ingress(skb);
}

SEC("tc")
int tc_tunnel_egress(struct __sk_buff *skb)
{
	return tunnel_egress(skb);
}

char LICENSE[] SEC("license") = "GPL";

/* Every map the contract lists (VNET_XDP_PINNED_MAPS) is defined: the loader opens maps
 * by that list alone. */
#define MAP_DEFINED(name) _Static_assert(sizeof(name) > 0, #name);
VNET_XDP_PINNED_MAPS(MAP_DEFINED, MAP_DEFINED)

/* IP fragments. Only a datagram's first fragment carries its transport header; its later
 * fragments carry neither ports nor TCP flags, so judged alone they would match other
 * rules than their first (a "deny port 22, allow all" set would let them through, an
 * "allow UDP 5354, deny all" set would drop them). As Cilium does, the first fragment
 * takes the pipeline and leaves what it carried and the verdict it got in the fragments
 * map (headers/vnet_xdp.h), keyed by what all fragments of the datagram share; a later
 * fragment looks it up and follows it:
 *   - first dropped: dropped, for the same reason;
 *   - first passed or forwarded: the pipeline again with the first's ports and ICMP type,
 *     which find the flow the first one opened (the same NSG decision), the same route,
 *     the same SNAT mapping (only the addresses change: the L4 checksum is in the first);
 *   - no first seen within FRAGMENT_TIMEOUT_NS: dropped (fragment_unseen). A datagram
 *     whose fragments arrive out of order is lost: senders emit the first one first;
 *   - starting inside the first's transport header (RFC 1858's overlap, offset 1 for
 *     IPv4 TCP): dropped (fragment_overlap);
 * and a first fragment that does not hold its whole transport header (RFC 1858's tiny
 * fragment) is dropped (fragment_tiny), so its datagram's later fragments are unseen.
 * Protocols whose transport header the pipeline does not read (ESP, GRE, ...) are judged
 * fragment by fragment as before: every fragment shows the pipeline the same fields. */
#ifndef BPF_FRAG_H
#define BPF_FRAG_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "vnet_xdp.h"
#include "maps.h"
#include "parse.h"

struct ipv6_fragment_header {
	__u8 nexthdr, reserved;
	__be16 frag_off;  /* offset in 8-byte units << 3, M flag in bit 0 */
	__be32 identification;
};

/* This packet's key and, for a first fragment, what its later ones will need: kept
 * from before the pipeline (which may translate the addresses) to after its verdict. */
struct fragment_scratch {
	struct fragment_key key;
	struct fragment_entry entry;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fragment_scratch);
} fragment_scratch SEC(".maps");

/* Where a fragment sits in its datagram. */
struct fragment_position {
	__u32 offset;      /* bytes into the fragmentable part */
	__u32 more;        /* more fragments follow */
	__u32 fragmentable; /* the fragmentable part's offset in the frame */
};

/* IPv6 headers the parser walks past to the transport header: a later fragment whose
 * fragmentable part starts with one belongs to a datagram whose first was tracked. */
static __always_inline int fragment_ipv6_extension(__u8 proto)
{
	return proto == IPPROTO_HOPOPTS || proto == IPPROTO_ROUTING ||
	       proto == IPPROTO_DSTOPTS || proto == IPPROTO_AH || proto == IPPROTO_FRAGMENT;
}

/* The key from the frame at the parser's offsets; `ifindex` is the interface it came in
 * on (XDP's ingress, or the xfrm interface that tc sees decrypted packets on). */
static __always_inline int fragment_key_fill(void *data, void *end, __u32 ifindex,
					     const struct packet_info *info,
					     struct fragment_key *key, struct fragment_position *pos)
{
	__u32 l3 = info->l3_offset & 0x7f; /* after at most two VLAN tags */
	__u16 frag;

	__builtin_memset(key, 0, sizeof(*key));
	key->ingress_ifindex = ifindex;
	key->family = info->family;
	if (info->family == AF_INET) {
		struct iphdr *ip = data + l3;

		if ((void *)(ip + 1) > end)
			return -1;
		__builtin_memcpy(key->src, &ip->saddr, 4);
		__builtin_memcpy(key->dst, &ip->daddr, 4);
		key->id = bpf_ntohs(ip->id);
		key->proto = ip->protocol;
		frag = bpf_ntohs(ip->frag_off);
		pos->offset = (frag & IP_OFFSET) * 8;
		pos->more = (frag & IP_MF) != 0;
		pos->fragmentable = l3 + ip->ihl * 4;
		return 0;
	}
	if (info->family == AF_INET6) {
		struct ipv6hdr *ip6 = data + l3;
		struct ipv6_fragment_header *fh = data + (info->ip6_fragment & 0x3ff);

		if (!info->ip6_fragment || (void *)(ip6 + 1) > end || (void *)(fh + 1) > end)
			return -1;
		__builtin_memcpy(key->src, &ip6->saddr, 16);
		__builtin_memcpy(key->dst, &ip6->daddr, 16);
		key->id = bpf_ntohl(fh->identification);
		key->proto = fh->nexthdr;
		frag = bpf_ntohs(fh->frag_off);
		pos->offset = frag & 0xfff8;
		pos->more = frag & 1;
		pos->fragmentable = (info->ip6_fragment & 0x3ff) + sizeof(*fh);
		return 0;
	}
	return -1;
}

/* A first fragment (the parser dropped it if tiny): what its later fragments need waits
 * in the scratch for the verdict (fragment_remember). */
static __always_inline int fragment_first(struct packet_info *info, struct fragment_scratch *s,
					  const struct fragment_position *pos)
{
	struct fragment_entry *e = &s->entry;
	__u32 header = fragment_transport_length(info->l4_proto);
	__u32 end = info->l4_offset + header;

	if (!pos->more)
		return DROP_NONE; /* an atomic fragment (RFC 6946): a whole datagram */
	if (!header && s->key.proto == info->l4_proto)
		return DROP_NONE; /* nothing the pipeline reads beyond the IP header */
	if (!info->l4_offset || end < pos->fragmentable)
		return DROP_INTERNAL_ERROR; /* the parser found the header */
	__builtin_memset(e, 0, sizeof(*e));
	e->sport = info->sport;
	e->dport = info->dport;
	e->l4_proto = info->l4_proto;
	e->icmp_type = info->icmp_type;
	e->icmp_code = info->icmp_code;
	e->transport_end = end - pos->fragmentable;
	info->is_fragment |= FRAGMENT_FIRST;
	return DROP_NONE;
}

/* A later fragment: it follows its first, whose transport fields it takes on. */
static __always_inline int fragment_later(struct packet_info *info, struct fragment_scratch *s,
					  const struct fragment_position *pos)
{
	struct fragment_entry *e;

	if (!transport_header_checked(s->key.proto) &&
	    !(info->family == AF_INET6 && fragment_ipv6_extension(s->key.proto)))
		return DROP_NONE;
	e = bpf_map_lookup_elem(&fragments, &s->key);
	if (!e || clock_age_ns(bpf_ktime_get_coarse_ns(), e->seen_ns) > FRAGMENT_TIMEOUT_NS)
		return DROP_FRAGMENT_UNSEEN;
	if (pos->offset < e->transport_end)
		return DROP_FRAGMENT_OVERLAP;
	if (e->verdict == XDP_DROP)
		return e->drop_reason ? e->drop_reason : DROP_FRAGMENT_UNSEEN;
	info->sport = e->sport;
	info->dport = e->dport;
	info->l4_proto = e->l4_proto;
	info->icmp_type = e->icmp_type;
	info->icmp_code = e->icmp_code;
	info->is_fragment |= FRAGMENT_TRANSPORT_KNOWN;
	return DROP_NONE;
}

/* Before the pipeline, for a fragment: DROP_NONE to go on (info then says, in its
 * is_fragment bits, what was learnt), or the reason to drop it. One path for both program
 * types; each has an entry of its own below (a global function's context is typed). */
static __always_inline int fragment_admit_frame(void *data, void *end, __u32 ifindex,
						struct packet_info *info)
{
	struct fragment_position pos = {};
	struct fragment_scratch *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&fragment_scratch, &zero);
	if (!s)
		return DROP_INTERNAL_ERROR;
	if (fragment_key_fill(data, end, ifindex, info, &s->key, &pos))
		return info->family == AF_INET ? DROP_MALFORMED_IPV4 : DROP_MALFORMED_IPV6_EXTENSION;
	if (pos.offset == 0)
		return fragment_first(info, s, &pos);
	return fragment_later(info, s, &pos);
}

/* Functions of their own: verified once, off the pipeline's paths. */
__noinline int fragment_admit(struct xdp_md *ctx, struct packet_info *info)
{
	if (!info)
		return DROP_FRAGMENT_UNSEEN;
	return fragment_admit_frame((void *)(long)ctx->data, (void *)(long)ctx->data_end,
				    ctx->ingress_ifindex, info);
}

/* A decrypted fragment on a connection's xfrm interface (bpf/tunnel.h): the tunnel's
 * fragments are keyed by that interface, apart from the same addresses' elsewhere. */
__noinline int fragment_admit_skb(struct __sk_buff *skb, struct packet_info *info)
{
	if (!info)
		return DROP_FRAGMENT_UNSEEN;
	return fragment_admit_frame((void *)(long)skb->data, (void *)(long)skb->data_end,
				    skb->ifindex, info);
}

/* After the pipeline judged a first fragment (FRAGMENT_FIRST): its verdict, for the
 * datagram's later fragments. In XDP's terms (XDP_DROP or not) whichever program judged. */
static __always_inline void fragment_remember(__u32 verdict, __u32 drop_reason)
{
	struct fragment_scratch *s;
	__u32 zero = 0;

	if (dry_run)
		return;
	s = bpf_map_lookup_elem(&fragment_scratch, &zero);
	if (!s)
		return;
	s->entry.seen_ns = bpf_ktime_get_coarse_ns();
	s->entry.verdict = verdict;
	s->entry.drop_reason = verdict == XDP_DROP ? drop_reason : DROP_NONE;
	bpf_map_update_elem(&fragments, &s->key, &s->entry, BPF_ANY);
}

#endif

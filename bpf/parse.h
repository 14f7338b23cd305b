/* Header parsing that never reads past data_end: Ethernet, 802.1Q/802.1ad, IPv4 with
 * options and fragments, IPv6 with extension headers, TCP, UDP, ICMP and ICMPv6. What
 * follows the IP header is read only within the IP packet's own length: the bytes a frame
 * carries past it are an Ethernet trailer, not transport header. Each malformed case
 * returns its own drop reason. */
#ifndef BPF_PARSE_H
#define BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "vnet_xdp.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif

/* ICMP and ICMPv6 share this first part; linux/icmp.h drags in libc socket headers. */
struct icmp_header {
	__u8 type;
	__u8 code;
	__be16 checksum;
	__be16 id;       /* echo request and reply */
	__be16 sequence;
};

/* is_fragment: set for every fragment; bpf/frag.h adds what it learnt of the datagram. */
#define FRAGMENT_ANY 1
#define FRAGMENT_FIRST 2           /* a first fragment whose verdict its later ones follow */
#define FRAGMENT_TRANSPORT_KNOWN 4 /* a later fragment: ports and types are its first's */

#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXTENSIONS 8

struct vlan_header {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct packet {
	void *data;
	void *data_end;
	struct ethhdr *eth;
	void *l3;               /* after the VLAN tags */
	struct iphdr *ip4;      /* set for IPv4 */
	struct ipv6hdr *ip6;    /* set for IPv6 */
	void *l4;               /* NULL for non-first fragments */
	__u32 family;
	__u32 len;
	__u16 vlan_tags;
	__u8 l4_proto;
	__u8 is_fragment;       /* any fragment, first or not: FRAGMENT_* bits */
	__u16 ip6_fragment;     /* IPv6: the fragment header's offset in the frame, 0 none */
	__u16 sport, dport;     /* ICMP: identifier in sport for echo */
	__u8 icmp_type, icmp_code;
};

/* Older verifiers (Debian's 6.1) know nothing of a value after a byte swap: a length
 * from the packet is bounded again, opaquely to the compiler, before it meets a packet
 * pointer. */
static __always_inline __u32 bounded16(__u32 value)
{
	asm volatile("" : "+r"(value));
	return value & 0xffff;
}

/* True when the IP packet holds everything before `end`: within the frame (which the
 * verifier needs) and within the IP length (what the packet says it is). */
static __always_inline int ip_holds(const struct packet *pkt, const void *end)
{
	return end <= pkt->data_end && end <= pkt->l3 + bounded16(pkt->len);
}

static __always_inline int parse_ethernet(struct packet *pkt, __u16 *proto)
{
	struct ethhdr *eth = pkt->data;
	void *cursor;
	int i;

	if ((void *)(eth + 1) > pkt->data_end)
		return DROP_MALFORMED_ETHERNET;
	pkt->eth = eth;
	*proto = eth->h_proto;
	cursor = eth + 1;

#pragma unroll
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_header *vlan = cursor;

		if (*proto != bpf_htons(ETH_P_8021Q) && *proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vlan + 1) > pkt->data_end)
			return DROP_MALFORMED_VLAN;
		*proto = vlan->encapsulated_proto;
		pkt->vlan_tags++;
		cursor = vlan + 1;
	}
	if (*proto == bpf_htons(ETH_P_8021Q) || *proto == bpf_htons(ETH_P_8021AD))
		return DROP_MALFORMED_VLAN; /* more tags than any binding uses */
	pkt->l3 = cursor;
	return DROP_NONE;
}

/* The one's complement sum of 32-bit words, folded to 16 bits, is the header's 16-bit
 * sum: a header without options takes five additions. */
static __always_inline __u32 csum_fold64(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	return (sum & 0xffff) + (sum >> 16);
}

static __always_inline int ipv4_header_checksum_ok(struct iphdr *ip, void *data_end)
{
	void *cursor = ip;
	__u32 words = ip->ihl * 2, sum = 0;
	int i;

	if (ip->ihl == 5) { /* the caller checked the 20 bytes */
		const __u32 *w = cursor;

		return csum_fold64((__u64)w[0] + w[1] + w[2] + w[3] + w[4]) == 0xffff;
	}
	for (i = 0; i < 30; i++) { /* 60 bytes: the longest header with options */
		__u16 *word = cursor;

		if (i >= words)
			break;
		if ((void *)(word + 1) > data_end)
			return 0;
		sum += *word;
		cursor = word + 1;
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

static __always_inline int parse_ipv4(struct packet *pkt, void *start)
{
	struct iphdr *ip = start;
	__u32 header_len, total_len;
	__u16 frag;

	if ((void *)(ip + 1) > pkt->data_end)
		return DROP_MALFORMED_IPV4;
	header_len = ip->ihl * 4;
	total_len = bpf_ntohs(ip->tot_len);
	if (ip->version != 4 || header_len < sizeof(*ip) || total_len < header_len)
		return DROP_MALFORMED_IPV4;
	total_len = bounded16(total_len);
	if (start + header_len > pkt->data_end || start + total_len > pkt->data_end)
		return DROP_MALFORMED_IPV4;
	if (!ipv4_header_checksum_ok(ip, pkt->data_end))
		return DROP_IPV4_BAD_CHECKSUM;

	pkt->ip4 = ip;
	pkt->family = AF_INET;
	pkt->l4_proto = ip->protocol;
	frag = bpf_ntohs(ip->frag_off);
	pkt->is_fragment = (frag & (IP_MF | IP_OFFSET)) ? FRAGMENT_ANY : 0;
	/* Only the first fragment carries the transport header. */
	pkt->l4 = (frag & IP_OFFSET) ? NULL : start + header_len;
	pkt->len = total_len;
	return DROP_NONE;
}

/* IPv4 options (RFC 791) that the walk knows; others are passed over by their length. */
#define IPV4_OPTION_END 0
#define IPV4_OPTION_NOP 1
#define IPV4_OPTION_LSRR 131
#define IPV4_OPTION_SSRR 137
#define IPV4_OPTIONS_MAX 40 /* a 60-byte header's 40 bytes after the fixed 20 */

/* A header's options copied off the packet, and the walk's place in them; the bytes are
 * sized to a power of two so that an index masked to it is in bounds for every verifier. */
struct ipv4_options {
	__u8 bytes[64];
	__u32 len;     /* of the options, at most IPV4_OPTIONS_MAX */
	__u32 at;      /* the next option's offset */
	int verdict;
};

/* One step of the walk (a bpf_loop callback, verified once whatever the options hold):
 * returns 1 when the walk is over, with o->verdict set. */
static long ipv4_option_step(__u32 step, void *context)
{
	struct ipv4_options *o = context;
	__u32 at = o->at, len = o->len;
	__u8 type, option_len;

	if (at >= len || at >= IPV4_OPTIONS_MAX)
		return 1;
	type = o->bytes[at & 63];
	if (type == IPV4_OPTION_END)
		return 1;
	if (type == IPV4_OPTION_NOP) {
		o->at = at + 1;
		return 0;
	}
	if (at + 1 >= len) {
		o->verdict = DROP_MALFORMED_IPV4;
		return 1;
	}
	option_len = o->bytes[(at + 1) & 63];
	if (option_len < 2 || option_len > len - at) {
		o->verdict = DROP_MALFORMED_IPV4;
		return 1;
	}
	if (type == IPV4_OPTION_LSRR || type == IPV4_OPTION_SSRR) {
		o->verdict = DROP_IPV4_SOURCE_ROUTE;
		return 1;
	}
	o->at = at + option_len;
	return 0;
}

/* What a header's options get: DROP_MALFORMED_IPV4 for an option whose length is short
 * or runs past the header, DROP_IPV4_SOURCE_ROUTE for a loose or strict source route
 * (Linux drops those unless accept_source_route is set, so the kernel behind us would
 * too), DROP_NONE otherwise (record route, timestamps, NOP, ...). Each step moves on at
 * least a byte, so IPV4_OPTIONS_MAX steps walk every header. */
static __always_inline int ipv4_options_verdict(struct ipv4_options *o)
{
	o->at = 0;
	o->verdict = DROP_NONE;
	bpf_loop(IPV4_OPTIONS_MAX, ipv4_option_step, o, 0);
	return o->verdict;
}

/* The options' length in a header of `ihl` words, 0 without options. */
static __always_inline __u32 ipv4_options_length(const struct iphdr *ip)
{
	return ip->ihl > 5 ? (ip->ihl - 5) * 4 : 0;
}

/* len again, between 1 and IPV4_OPTIONS_MAX where a verifier sees it, or 0 when it is
 * not. Debian 6.1's refuses a copy it cannot prove is not empty and learns nothing from
 * "!= 0": the bound is an upper one on len - 1 (len 0 wraps far above it), then + 1. */
static __always_inline __u64 ipv4_options_length_bounded(__u32 len)
{
	__u64 below = (__u64)len - 1;

	asm volatile("" : "+r"(below));
	if (below >= IPV4_OPTIONS_MAX)
		return 0;
	return below + 1;
}

/* The option walk as functions of their own, one per program type (each copies the
 * options with its own helper): verified once, not once per path through the parser.
 * `offset` is the IPv4 header's from the start of the frame, `len` ipv4_options_length. */
__noinline int ipv4_options_check_xdp(struct xdp_md *ctx, __u32 offset, __u32 len)
{
	__u64 bytes = ipv4_options_length_bounded(len);
	struct ipv4_options o = {};

	if (!bytes)
		return DROP_MALFORMED_IPV4;
	if (bpf_xdp_load_bytes(ctx, offset + sizeof(struct iphdr), o.bytes, bytes))
		return DROP_MALFORMED_IPV4;
	o.len = bytes;
	return ipv4_options_verdict(&o);
}

__noinline int ipv4_options_check_skb(struct __sk_buff *skb, __u32 offset, __u32 len)
{
	__u64 bytes = ipv4_options_length_bounded(len);
	struct ipv4_options o = {};

	if (!len)
		return DROP_NONE; /* no options */
	if (!bytes)
		return DROP_MALFORMED_IPV4;
	if (bpf_skb_load_bytes(skb, offset + sizeof(struct iphdr), o.bytes, bytes))
		return DROP_MALFORMED_IPV4;
	o.len = bytes;
	return ipv4_options_verdict(&o);
}

static __always_inline int ipv6_is_extension(__u8 next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
	       next == IPPROTO_FRAGMENT || next == IPPROTO_AH;
}

struct ipv6_extension {
	__u8 next_header;
	__u8 length; /* in 8-byte units, not counting the first 8 */
};

static __always_inline int parse_ipv6(struct packet *pkt, void *start)
{
	struct ipv6hdr *ip6 = start;
	void *cursor = ip6 + 1;
	__u8 next;
	int i;

	if ((void *)(ip6 + 1) > pkt->data_end)
		return DROP_MALFORMED_IPV6;
	if (ip6->version != 6 || cursor + bounded16(bpf_ntohs(ip6->payload_len)) > pkt->data_end)
		return DROP_MALFORMED_IPV6;
	pkt->ip6 = ip6;
	pkt->family = AF_INET6;
	pkt->len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	next = ip6->nexthdr;

#pragma unroll
	for (i = 0; i < MAX_IPV6_EXTENSIONS; i++) {
		struct ipv6_extension *ext = cursor;

		if (!ipv6_is_extension(next))
			break;
		if (!ip_holds(pkt, ext + 1))
			return DROP_MALFORMED_IPV6_EXTENSION;
		if (next == IPPROTO_FRAGMENT) {
			struct frag_hdr {
				__u8 nexthdr, reserved;
				__be16 frag_off;
				__be32 identification;
			} *fh = cursor;

			if (!ip_holds(pkt, fh + 1))
				return DROP_MALFORMED_IPV6_EXTENSION;
			pkt->is_fragment = FRAGMENT_ANY;
			pkt->ip6_fragment = (__u16)(cursor - pkt->data);
			if (bpf_ntohs(fh->frag_off) & 0xfff8) {
				pkt->l4_proto = fh->nexthdr;
				pkt->l4 = NULL;
				return DROP_NONE;
			}
			cursor = fh + 1;
		} else if (next == IPPROTO_AH) {
			cursor += (ext->length + 2) * 4;
		} else {
			cursor += (ext->length + 1) * 8;
		}
		next = ext->next_header;
	}
	if (ipv6_is_extension(next))
		return DROP_MALFORMED_IPV6_EXTENSION; /* a longer chain than we walk */
	if (!ip_holds(pkt, cursor))
		return DROP_MALFORMED_IPV6_EXTENSION; /* the last header runs past the payload */
	pkt->l4_proto = next;
	pkt->l4 = cursor;
	return DROP_NONE;
}

/* UDP's own length, as Linux's udp_rcv judges it: at least its header, and no more than
 * the IP payload holds (a shorter one Linux trims to, a longer one it drops). A first
 * fragment's length is the whole datagram's, which its later fragments bring. */
static __always_inline int udp_length_fits(const struct packet *pkt, const struct udphdr *udp)
{
	__u32 len = bpf_ntohs(udp->len);

	if (len < sizeof(*udp))
		return 0;
	return pkt->is_fragment || ip_holds(pkt, (void *)udp + bounded16(len));
}

static __always_inline int parse_transport(struct packet *pkt)
{
	void *l4 = pkt->l4;

	if (!l4)
		return DROP_NONE;
	switch (pkt->l4_proto) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = l4;

		if (!ip_holds(pkt, tcp + 1) || tcp->doff < 5 || !ip_holds(pkt, l4 + tcp->doff * 4))
			return DROP_MALFORMED_L4;
		pkt->sport = bpf_ntohs(tcp->source);
		pkt->dport = bpf_ntohs(tcp->dest);
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = l4;

		if (!ip_holds(pkt, udp + 1) || !udp_length_fits(pkt, udp))
			return DROP_MALFORMED_L4;
		pkt->sport = bpf_ntohs(udp->source);
		pkt->dport = bpf_ntohs(udp->dest);
		break;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		struct icmp_header *icmp = l4;

		if (!ip_holds(pkt, icmp + 1))
			return DROP_MALFORMED_L4;
		pkt->icmp_type = icmp->type;
		pkt->icmp_code = icmp->code;
		pkt->sport = bpf_ntohs(icmp->id);
		break;
	}
	default:
		break;
	}
	return DROP_NONE;
}

/* ---- ICMP errors and the packet they quote ---- */

#define ICMP_ECHO_REPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO_REQUEST 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETER_PROBLEM 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PARAMETER_PROBLEM 4 /* 1-4: unreachable, too big, time exceeded, parameter */
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129

/* The IPv6 extension headers a quote may carry before its transport header; a longer
 * chain is refused (DROP_ICMP_QUOTE_MALFORMED): the quote would be judged blind. */
#define MAX_QUOTE_IPV6_EXTENSIONS 4

/* icmp_quote_parse's answer for a well-formed quote of a later fragment: it holds no
 * transport header, so it names no flow. */
#define ICMP_QUOTE_NO_TRANSPORT (-1)

static __always_inline int icmp_is_error(__u8 proto, __u8 type)
{
	if (proto == IPPROTO_ICMPV6)
		return type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMETER_PROBLEM;
	return proto == IPPROTO_ICMP && (type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
					 type == ICMP_PARAMETER_PROBLEM);
}

/* What an ICMP error quotes: the IP header of the packet it is about and at least the 8
 * bytes after it (RFC 792; RFC 4443 quotes as much as fits). Both SNAT (to translate the
 * quote back) and the NSG stage (to find the flow it is about) read it here. */
struct icmp_quote {
	struct iphdr *ip;     /* an ICMPv4 error's quote */
	struct ipv6hdr *ip6;  /* an ICMPv6 error's quote */
	void *l4;             /* its transport header, 8 bytes at least; NULL: none quoted */
	__u8 proto;
};

static __always_inline int icmp4_quote_parse(const struct packet *pkt, struct iphdr *ip,
					     struct icmp_quote *q)
{
	void *l4;

	/* data_end first, on a branch of its own: older verifiers learn the packet's range
	 * only from such a comparison */
	if ((void *)(ip + 1) > pkt->data_end || !ip_holds(pkt, ip + 1) || ip->version != 4 ||
	    ip->ihl < 5)
		return DROP_ICMP_QUOTE_MALFORMED;
	q->ip = ip;
	q->proto = ip->protocol;
	if (bpf_ntohs(ip->frag_off) & IP_OFFSET)
		return ICMP_QUOTE_NO_TRANSPORT;
	l4 = (void *)ip + ip->ihl * 4;
	if (l4 + 8 > pkt->data_end || !ip_holds(pkt, l4 + 8))
		return DROP_ICMP_QUOTE_MALFORMED;
	q->l4 = l4;
	return DROP_NONE;
}

/* The quoted IPv6 header's extension headers are passed over (hop-by-hop, routing,
 * destination options, AH; a first fragment's fragment header), at most
 * MAX_QUOTE_IPV6_EXTENSIONS of them, each within the quote. */
static __always_inline int icmp6_quote_parse(const struct packet *pkt, struct ipv6hdr *ip6,
					     struct icmp_quote *q)
{
	void *cursor = ip6 + 1;
	__u8 next;

	if ((void *)(ip6 + 1) > pkt->data_end || !ip_holds(pkt, ip6 + 1) || ip6->version != 6)
		return DROP_ICMP_QUOTE_MALFORMED;
	q->ip6 = ip6;
	next = ip6->nexthdr;
#pragma unroll
	for (int i = 0; i < MAX_QUOTE_IPV6_EXTENSIONS; i++) {
		struct ipv6_extension *ext = cursor;

		if (!ipv6_is_extension(next))
			break;
		if (cursor + 8 > pkt->data_end || !ip_holds(pkt, cursor + 8))
			return DROP_ICMP_QUOTE_MALFORMED; /* each is 8 bytes or more */
		if (next == IPPROTO_FRAGMENT) {
			__be16 *frag_off = cursor + 2;

			if (bpf_ntohs(*frag_off) & 0xfff8) {
				q->proto = ext->next_header;
				return ICMP_QUOTE_NO_TRANSPORT;
			}
			cursor += 8;
		} else if (next == IPPROTO_AH) {
			cursor += (ext->length + 2) * 4;
		} else {
			cursor += (ext->length + 1) * 8;
		}
		next = ext->next_header;
	}
	if (ipv6_is_extension(next) || cursor + 8 > pkt->data_end || !ip_holds(pkt, cursor + 8))
		return DROP_ICMP_QUOTE_MALFORMED;
	q->l4 = cursor;
	q->proto = next;
	return DROP_NONE;
}

/* Reads the quote of the ICMP or ICMPv6 error in pkt (the caller checked icmp_is_error):
 * DROP_NONE with q filled, ICMP_QUOTE_NO_TRANSPORT (q->l4 NULL), or
 * DROP_ICMP_QUOTE_MALFORMED for a quote cut short, of the other IP version, or behind a
 * longer extension chain than we follow. Never reads past the outer IP packet. */
static __always_inline int icmp_quote_parse(const struct packet *pkt, struct icmp_quote *q)
{
	void *quoted;

	__builtin_memset(q, 0, sizeof(*q));
	if (!pkt->l4)
		return DROP_ICMP_QUOTE_MALFORMED;
	quoted = pkt->l4 + sizeof(struct icmp_header);
	if (pkt->l4_proto == IPPROTO_ICMP && pkt->family == AF_INET)
		return icmp4_quote_parse(pkt, quoted, q);
	if (pkt->l4_proto == IPPROTO_ICMPV6 && pkt->family == AF_INET6)
		return icmp6_quote_parse(pkt, quoted, q);
	return DROP_ICMP_QUOTE_MALFORMED;
}

/* The transport header a first fragment must hold whole: TCP's fixed part (ports and
 * flags), UDP's header, ICMP's type, code, checksum and echo identifier; 0 for protocols
 * whose header the pipeline does not read. */
static __always_inline __u32 fragment_transport_length(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return sizeof(struct tcphdr);
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return 8;
	default:
		return 0;
	}
}

/* RFC 1858's tiny fragment: a first fragment whose IP packet ends inside its transport
 * header, leaving ports or flags to a later fragment that no rule would see. */
static __always_inline int fragment_is_tiny(const struct packet *pkt)
{
	return pkt->l4 + fragment_transport_length(pkt->l4_proto) > pkt->l3 + bounded16(pkt->len);
}

/* Fills pkt from the frame up to its IP header; returns DROP_NONE or the reason the
 * frame is malformed. *proto is the innermost ethertype, for the caller to send non-IP to
 * the kernel. parse_transport goes on from there. */
static __always_inline int parse_network(struct packet *pkt, __u16 *proto)
{
	void *l3;
	int reason;

	reason = parse_ethernet(pkt, proto);
	if (reason)
		return reason;
	l3 = pkt->l3;
	if (*proto == bpf_htons(ETH_P_IP))
		reason = parse_ipv4(pkt, l3);
	else if (*proto == bpf_htons(ETH_P_IPV6))
		reason = parse_ipv6(pkt, l3);
	return reason;
}

/* After the IP header: a first fragment must hold its transport header whole. */
static __always_inline int parse_after_network(struct packet *pkt)
{
	if (pkt->is_fragment && pkt->l4 && fragment_is_tiny(pkt))
		return DROP_FRAGMENT_TINY;
	return parse_transport(pkt);
}

/* The parser's findings as offsets: what the pipeline hands to the stages that run as
 * functions of their own (global functions, verified once whatever path leads to them),
 * which rebuild their view of the packet with packet_of(). */
struct packet_info {
	__u32 l3_offset;
	__u32 l4_offset;  /* 0: no transport header (a later fragment) */
	__u32 len;
	__u32 family;
	__u32 vnet;       /* egress: the source VNet */
	__u32 egress_ifindex; /* egress: the uplink the route names */
	__u32 dst_vnet;   /* the destination's VNet, for its inbound NSGs */
	__u16 sport, dport;
	__u8 l4_proto, is_fragment, icmp_type, icmp_code;
	__u16 vlan_tags;
	__u16 ip6_fragment; /* IPv6: the fragment header's offset, 0 none */
};

static __always_inline void packet_info_fill(struct packet_info *info, const struct packet *pkt)
{
	__builtin_memset(info, 0, sizeof(*info));
	info->l3_offset = (__u32)(pkt->l3 - pkt->data);
	info->l4_offset = pkt->l4 ? (__u32)(pkt->l4 - pkt->data) : 0;
	info->len = pkt->len;
	info->family = pkt->family;
	info->sport = pkt->sport;
	info->dport = pkt->dport;
	info->l4_proto = pkt->l4_proto;
	info->is_fragment = pkt->is_fragment;
	info->icmp_type = pkt->icmp_type;
	info->icmp_code = pkt->icmp_code;
	info->vlan_tags = pkt->vlan_tags;
	info->ip6_fragment = pkt->ip6_fragment;
}

/* The parser as a function of its own: returns the drop reason, or DROP_NONE with the
 * findings in info (family 0: not IP). */
__noinline int parse_frame(struct xdp_md *ctx, struct packet_info *info)
{
	struct packet pkt = {
		.data = (void *)(long)ctx->data,
		.data_end = (void *)(long)ctx->data_end,
	};
	__u16 proto = 0;
	int reason;

	if (!info)
		return DROP_NONE;
	__builtin_memset(info, 0, sizeof(*info));
	reason = parse_network(&pkt, &proto);
	if (!reason && pkt.ip4 && ipv4_options_length(pkt.ip4))
		reason = ipv4_options_check_xdp(ctx, (__u32)(pkt.l3 - pkt.data),
						ipv4_options_length(pkt.ip4));
	if (!reason && pkt.family)
		reason = parse_after_network(&pkt);
	if (reason)
		return reason;
	if (pkt.family)
		packet_info_fill(info, &pkt);
	else
		info->vlan_tags = pkt.vlan_tags;
	return DROP_NONE;
}

static __always_inline int transport_header_checked(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_ICMP ||
	       proto == IPPROTO_ICMPV6;
}

/* The parser's view again, from offsets, each pointer checked against the frame. */
static __always_inline int packet_of(void *data, void *end, const struct packet_info *info,
				     struct packet *pkt)
{
	__builtin_memset(pkt, 0, sizeof(*pkt));
	if (info->l3_offset > 64 || info->l4_offset > 1024 || data + sizeof(struct ethhdr) > end)
		return -1;
	pkt->eth = data;
	pkt->data = data;
	pkt->data_end = end;
	pkt->l3 = data + info->l3_offset;
	pkt->len = info->len;
	pkt->l4_proto = info->l4_proto;
	pkt->is_fragment = info->is_fragment;
	pkt->ip6_fragment = info->ip6_fragment;
	pkt->sport = info->sport;
	pkt->dport = info->dport;
	pkt->icmp_type = info->icmp_type;
	pkt->icmp_code = info->icmp_code;
	if (info->family == AF_INET) {
		struct iphdr *ip = pkt->l3;

		if ((void *)(ip + 1) > end)
			return -1;
		pkt->ip4 = ip;
		/* A constant, not info's copy: Debian 6.1's verifier then knows on each path
		 * which of ip4 and ip6 is set. */
		pkt->family = AF_INET;
	} else if (info->family == AF_INET6) {
		struct ipv6hdr *ip6 = pkt->l3;

		if ((void *)(ip6 + 1) > end)
			return -1;
		pkt->ip6 = ip6;
		pkt->family = AF_INET6;
	} else {
		return -1;
	}
	if (info->l4_offset) {
		void *l4 = data + info->l4_offset;

		/* The parser checked at least 8 bytes of TCP, UDP and ICMP; a shorter payload
		 * of another protocol (ESP without room for an SPI) is left without l4. */
		if (l4 + 8 <= end)
			pkt->l4 = l4;
		else if (transport_header_checked(info->l4_proto))
			return -1;
	}
	return 0;
}

static __always_inline int xdp_packet_of(struct xdp_md *ctx, const struct packet_info *info,
					 struct packet *pkt)
{
	return packet_of((void *)(long)ctx->data, (void *)(long)ctx->data_end, info, pkt);
}

#endif

/* The forwarding stage: anti-spoofing on the ingress interface, the route lookup in the
 * source VNet's effective routes, what the FIB's answer means and the rewrite (TTL, MACs)
 * for XDP_REDIRECT. The three ways out (the pipeline's forward(), the fast path's cached
 * next hop, a translated SNAT packet) all take the last two from here. */
#ifndef BPF_FORWARD_H
#define BPF_FORWARD_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "vnet_xdp.h"
#include "maps.h"
#include "parse.h"
#include "checksum.h"

static __always_inline void address_copy(__u8 *dst, const struct packet *pkt, int source)
{
	if (pkt->family == AF_INET) {
		__builtin_memcpy(dst, source ? (void *)&pkt->ip4->saddr : (void *)&pkt->ip4->daddr, 4);
	} else {
		__builtin_memcpy(dst, source ? (void *)&pkt->ip6->saddr : (void *)&pkt->ip6->daddr, 16);
	}
}

static __always_inline void lpm_key_fill(struct lpm_key *key, __u32 scope, const struct packet *pkt,
					 int source)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->scope = scope;
	key->family = pkt->family;
	key->prefixlen = LPM_SCOPE_BITS + (pkt->family == AF_INET ? 32 : 128);
	address_copy(key->addr, pkt, source);
}

/* Where the source address belongs (its VNet, its route scope), or NULL when the ingress
 * interface's binding does not allow it (a spoofed or misplaced source). */
static __always_inline struct source_info *source_lookup(const struct packet *pkt, __u32 ifindex)
{
	struct lpm_key key;

	lpm_key_fill(&key, ifindex, pkt, 1);
	return bpf_map_lookup_elem(&source_prefixes, &key);
}

/* The VNet the source address belongs to, or -1 (see source_lookup). */
static __always_inline int source_vnet(const struct packet *pkt, __u32 ifindex)
{
	struct source_info *source = source_lookup(pkt, ifindex);

	return source ? (int)source->vnet : -1;
}

/* The NIC the frame comes from, by the ingress interface and the frame's source MAC; with
 * family set, the same NIC only when the address is one of its own. */
static __always_inline struct nic_info *nic_lookup(struct nic_key *key, const struct packet *pkt,
						   __u32 ifindex, __u32 family)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->ifindex = ifindex;
	__builtin_memcpy(key->mac, pkt->eth->h_source, ETH_ALEN);
	key->family = family;
	if (family)
		address_copy(key->addr, pkt, 1);
	return bpf_map_lookup_elem(&nic_sources, key);
}

/* Azure's per-NIC anti-spoofing: a frame from a known NIC must carry one of that NIC's
 * addresses unless the NIC forwards (enableIPForwarding); on an interface whose NICs all
 * have MACs, a frame from any other MAC is no NIC's. A NIC's forwarded packets are judged
 * by its own NSGs, so *forwarder receives its address for the NSG stage (1 returned with
 * DROP_NONE in *reason), as does the one forwarding NIC behind an interface where MACs are
 * unknown (SOURCE_FORWARDER_KNOWN). */
static __always_inline int nic_source_check(const struct packet *pkt, __u32 ifindex,
					    __u32 iface_flags, const struct source_info *source,
					    __u8 *forwarder, int *reason)
{
	struct nic_key key;
	struct nic_info *nic;

	*reason = DROP_NONE;
	nic = nic_lookup(&key, pkt, ifindex, 0);
	if (!nic) {
		if (iface_flags & INTERFACE_FLAG_NICS_BY_MAC) {
			*reason = DROP_NIC_SPOOFED_SOURCE;
			return 0;
		}
		if (source->flags & SOURCE_FORWARDER_KNOWN) {
			__builtin_memcpy(forwarder, source->forwarder, 16);
			return 1;
		}
		return 0;
	}
	if (nic_lookup(&key, pkt, ifindex, pkt->family))
		return 0;
	if (!(nic->flags & NIC_FLAG_IP_FORWARDING)) {
		*reason = DROP_NIC_SPOOFED_SOURCE;
		return 0;
	}
	if (nic->family != pkt->family)
		return 0;
	__builtin_memcpy(forwarder, nic->address, 16);
	return 1;
}

static __always_inline struct route_info *route_lookup(const struct packet *pkt, __u32 scope)
{
	struct lpm_key key;

	lpm_key_fill(&key, scope, pkt, 0);
	return bpf_map_lookup_elem(&routes, &key);
}

/* Traffic an NVA forwarded (a source outside its VNet) enters a peer only when the
 * peer's side of the peering allows forwarded traffic (allowForwardedTraffic). */
static __always_inline int forwarded_traffic_refused(const struct source_info *source,
						     const struct route_info *route)
{
	return (source->flags & SOURCE_FORWARDED) && route->type == ROUTE_VNET_PEERING &&
	       !(route->flags & ROUTE_FLAG_ACCEPTS_FORWARDED);
}

static __always_inline int is_local_destination(const struct packet *pkt)
{
	struct address_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.family = pkt->family;
	address_copy(key.addr, pkt, 0);
	return bpf_map_lookup_elem(&local_addresses, &key) != NULL;
}

static __always_inline int ipv6_is_link_local(const struct in6_addr *a)
{
	return a->in6_u.u6_addr8[0] == 0xfe && (a->in6_u.u6_addr8[1] & 0xc0) == 0x80;
}

/* RFC 4861: neighbour discovery always has hop limit 255, which no router's forwarding
 * leaves; anything else with these types is not ND. */
static __always_inline int is_neighbour_discovery(const struct packet *pkt)
{
	return pkt->family == AF_INET6 && pkt->l4_proto == IPPROTO_ICMPV6 && pkt->l4 &&
	       pkt->icmp_type >= 133 && pkt->icmp_type <= 137 && pkt->ip6->hop_limit == 255;
}

/* What the kernel gets before any policy: only what it would never forward, since `up`
 * turns forwarding on. Broadcast and multicast (no multicast routing here), and neighbour
 * discovery to a link-local address. The gateway's own addresses go to it too
 * (is_local_destination); everything else, ND to a unicast address included, takes the
 * pipeline. */
static __always_inline int is_control_traffic(const struct packet *pkt)
{
	if (pkt->family == AF_INET) {
		__u32 dst = bpf_ntohl(pkt->ip4->daddr);

		return dst == 0xffffffff || (dst >> 28) == 0xe;
	}
	if (pkt->ip6->daddr.in6_u.u6_addr8[0] == 0xff)
		return 1;
	return ipv6_is_link_local(&pkt->ip6->daddr) && is_neighbour_discovery(pkt);
}

/* RFC 3927 and RFC 4291: a router forwards nothing from or to a link-local address.
 * What is left of them after the kernel's share (is_control_traffic, our own addresses)
 * is dropped here, before a VNet's routes (an Internet route) could carry it away. */
static __always_inline int is_link_local(const struct packet *pkt)
{
	if (pkt->family == AF_INET)
		return (bpf_ntohl(pkt->ip4->daddr) >> 16) == 0xa9fe ||
		       (bpf_ntohl(pkt->ip4->saddr) >> 16) == 0xa9fe;
	return ipv6_is_link_local(&pkt->ip6->daddr) || ipv6_is_link_local(&pkt->ip6->saddr);
}

#define AZURE_WIRESERVER 0xa83f8110 /* 168.63.129.16: DNS, DHCP, health probes */
#define AZURE_IMDS       0xa9fea9fe /* 169.254.169.254: instance metadata */

/* Azure answers its platform addresses on the host: here they are never routed (the
 * Internet route would translate them) unless a local address answers. */
static __always_inline int is_platform_destination(const struct packet *pkt)
{
	__u32 dst;

	if (pkt->family != AF_INET)
		return 0;
	dst = bpf_ntohl(pkt->ip4->daddr);
	return dst == AZURE_WIRESERVER || dst == AZURE_IMDS;
}

static __always_inline int hop_limit_expired(const struct packet *pkt)
{
	return pkt->family == AF_INET ? pkt->ip4->ttl <= 1 : pkt->ip6->hop_limit <= 1;
}

/* RFC 1624 incremental update: TTL is the high byte of its 16-bit word. */
static __always_inline void hop_limit_decrement(struct packet *pkt)
{
	if (pkt->family == AF_INET) {
		__u32 check = pkt->ip4->check;

		check += bpf_htons(0x0100);
		pkt->ip4->check = (__u16)(check + (check >= 0xffff));
		pkt->ip4->ttl--;
	} else {
		pkt->ip6->hop_limit--;
	}
}

static __always_inline void next_hop_params(struct xdp_md *ctx, const struct packet *pkt,
					    struct bpf_fib_lookup *params)
{
	__builtin_memset(params, 0, sizeof(*params));
	params->family = pkt->family;
	params->l4_protocol = pkt->l4_proto;
	params->sport = bpf_htons(pkt->sport);
	params->dport = bpf_htons(pkt->dport);
	params->tot_len = pkt->len;
	params->ifindex = ctx->ingress_ifindex;
	if (pkt->family == AF_INET) {
		params->tos = pkt->ip4->tos;
		params->ipv4_src = pkt->ip4->saddr;
		params->ipv4_dst = pkt->ip4->daddr;
	} else {
		__builtin_memcpy(params->ipv6_src, &pkt->ip6->saddr, 16);
		__builtin_memcpy(params->ipv6_dst, &pkt->ip6->daddr, 16);
	}
}

/* Asks the kernel's FIB and neighbour table for the next hop. Returns the
 * BPF_FIB_LKUP_RET_* code; on success params holds the egress ifindex and MACs. */
static __always_inline int next_hop_lookup(struct xdp_md *ctx, const struct packet *pkt,
					   struct bpf_fib_lookup *params)
{
	next_hop_params(ctx, pkt, params);
	return bpf_fib_lookup(ctx, params, sizeof(*params), 0);
}

/* The same for the route's next hop: a VirtualAppliance route's frames go to the
 * appliance's MAC, so the FIB is asked for the appliance's address. */
static __always_inline int route_next_hop_lookup(struct xdp_md *ctx, const struct packet *pkt,
						 const struct route_info *route,
						 struct bpf_fib_lookup *params)
{
	next_hop_params(ctx, pkt, params);
	if (route->type == ROUTE_VIRTUAL_APPLIANCE) {
		if (pkt->family == AF_INET)
			__builtin_memcpy(&params->ipv4_dst, route->next_hop, 4);
		else
			__builtin_memcpy(params->ipv6_dst, route->next_hop, 16);
	}
	return bpf_fib_lookup(ctx, params, sizeof(*params), 0);
}

/* What the FIB's answer rc means for a packet the route sends out of egress_ifindex:
 * DROP_NONE with *pass_counter 0 to redirect; DROP_NONE with a pass counter for what the
 * kernel must do itself (resolve a neighbour, answer a too-big packet, deliver locally);
 * otherwise the drop reason. */
static __always_inline int fib_answer_judge(int rc, const struct bpf_fib_lookup *params,
					    __u32 egress_ifindex, __u32 *pass_counter)
{
	*pass_counter = 0;
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		/* The kernel's routes must agree with the VNet's: a mismatch is a config
		 * error on the gateway host, not something to paper over by trusting either
		 * side. */
		return params->ifindex == egress_ifindex ? DROP_NONE : DROP_FIB_MISMATCH;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		*pass_counter = COUNT_PASS_NEIGHBOUR;
		return DROP_NONE;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		*pass_counter = COUNT_PASS_FRAG_NEEDED;
		return DROP_NONE;
	case BPF_FIB_LKUP_RET_NOT_FWDED:
		*pass_counter = COUNT_PASS_LOCAL;
		return DROP_NONE;
	default:
		return DROP_FIB_FAILED;
	}
}

/* Out of ifindex to the next hop: TTL down, the next hop's MACs, the partial checksum an
 * offloading sender left completed. DROP_NONE or DROP_REDIRECT_FAILED. */
static __always_inline int egress_redirect(struct xdp_md *ctx, struct packet *pkt,
					   struct ethhdr *eth, const __u8 *dmac,
					   const __u8 *smac, __u32 ifindex)
{
	hop_limit_decrement(pkt);
	__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, smac, ETH_ALEN);
	l4_checksum_finish(ctx, pkt);
	return bpf_redirect(ifindex, 0) == XDP_REDIRECT ? DROP_NONE : DROP_REDIRECT_FAILED;
}

#endif

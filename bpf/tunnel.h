/* The tunnel stage: IPsec connections whose ESP the kernel's xfrm decrypts.
 *
 * On the uplink (XDP), ESP and ESP-in-UDP (port 4500) from a connection's peer to this
 * box's endpoint are counted per peer and SPI and handed to the kernel; IKE (UDP 500,
 * and 4500 with the non-ESP marker) goes to charon; ESP to an endpoint from anyone else
 * is dropped. After decryption the inner packet appears on the connection's xfrm
 * interface, where the tc programs below carry on the pipeline: anti-spoofing by the
 * connection's remote address spaces, the tunnel's routes (the gateway's VNet and the
 * spokes that use it for transit), the inbound NSGs of the destination (stateful, in the
 * flow table XDP keeps), then forwarding into the VNet. Packets routed into the tunnel
 * are counted on the xfrm interface's egress; those an outbound NSG denies before they
 * get there are the tunnel's egress drops. */
#ifndef BPF_TUNNEL_H
#define BPF_TUNNEL_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "vnet_xdp.h"
#include "maps.h"
#include "counters.h"
#include "parse.h"
#include "forward.h"
#include "flow.h"
#include "mss.h"
#include "frag.h"
#include "monitor.h"

#ifndef IPPROTO_ESP
#define IPPROTO_ESP 50
#endif
#define IKE_PORT 500
#define IKE_NAT_T_PORT 4500

/* Config maps: filled from the connections of the config. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, struct address_key); /* the peer's public address */
	__type(value, struct tunnel_peer);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnel_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, struct address_key); /* this box's tunnel endpoints */
	__type(value, __u32);            /* connections that use it */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnel_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, __u32); /* the xfrm interface's ifindex */
	__type(value, struct tunnel_interface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnel_interfaces SEC(".maps");

/* State maps: counters that outlive a reload. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_TUNNELS * TUNNEL_COUNTER_MAX);
	__type(key, __u32);
	__type(value, struct packet_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnel_counters SEC(".maps");

/* LRU: SPIs change with every rekey; stale ones age out instead of filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, MAX_TUNNEL_SPIS);
	__type(key, struct tunnel_spi_key);
	__type(value, struct packet_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnel_spi_counters SEC(".maps");

/* LRU: a gateway's point-to-site clients come and go; the entry of the one idle longest
 * makes room for a new one (headers/vnet_xdp.h, struct tunnel_client_key). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, MAX_TUNNEL_CLIENTS);
	__type(key, struct tunnel_client_key);
	__type(value, struct tunnel_client_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnel_client_counters SEC(".maps");

enum tunnel_verdict {
	TUNNEL_NOT_OURS = 0, /* not tunnel traffic: the pipeline carries on */
	TUNNEL_PASS_ESP,
	TUNNEL_PASS_IKE,
	TUNNEL_DROP_UNKNOWN_PEER,
};

static __always_inline void count_tunnel(__u32 tunnel, __u32 counter, __u64 bytes)
{
	if (tunnel < MAX_TUNNELS)
		counter_add(&tunnel_counters, tunnel * TUNNEL_COUNTER_MAX + counter, bytes);
}

static __always_inline void address_key_fill(struct address_key *key, const struct packet *pkt,
					     int source)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->family = pkt->family;
	address_copy(key->addr, pkt, source);
}

static __always_inline int address_key_equal(const struct address_key *a,
					     const struct address_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	int i;

#pragma unroll
	for (i = 0; i < sizeof(*a) / 4; i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

static __always_inline void count_spi(const struct address_key *peer, __u32 spi, __u64 bytes)
{
	struct tunnel_spi_key key = { .peer = *peer, .spi = spi };
	struct packet_counter *c = bpf_map_lookup_elem(&tunnel_spi_counters, &key);

	if (!c) {
		struct packet_counter zero = {};

		bpf_map_update_elem(&tunnel_spi_counters, &key, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&tunnel_spi_counters, &key);
		if (!c)
			return;
	}
	c->packets++;
	c->bytes += bytes;
}

/* Reads the 32-bit word at the start of the transport payload: the SPI of ESP, or
 * the non-ESP marker (zero) of IKE on port 4500. Returns -1 when it is not there. */
static __always_inline int first_word(const struct packet *pkt, void *at, __u32 *word)
{
	__be32 *p = at;

	if ((void *)(p + 1) > pkt->data_end)
		return -1;
	*word = bpf_ntohl(*p);
	return 0;
}

/* ESP from the peer to the endpoint it is configured with: counted and handed on. */
static __always_inline int tunnel_accept_esp(const struct packet *pkt, const struct address_key *dst,
					     int has_spi, __u32 spi)
{
	struct address_key src;
	struct tunnel_peer *peer;

	address_key_fill(&src, pkt, 1);
	peer = bpf_map_lookup_elem(&tunnel_peers, &src);
	if (!peer || !address_key_equal(&peer->local, dst)) {
		/* Point-to-site clients come from anywhere: the family's zero address stands
		 * for them, at the endpoint their gateway has. */
		struct address_key any = { .family = src.family };

		peer = bpf_map_lookup_elem(&tunnel_peers, &any);
	}
	if (!peer || !address_key_equal(&peer->local, dst))
		return TUNNEL_DROP_UNKNOWN_PEER;
	count_tunnel(peer->tunnel, TUNNEL_ESP_IN, pkt->len);
	if (has_spi)
		count_spi(&src, spi, pkt->len);
	return TUNNEL_PASS_ESP;
}

/* Classifies traffic arriving on the uplink for one of this box's tunnel endpoints. */
static __always_inline int tunnel_classify(const struct packet *pkt)
{
	struct address_key dst;
	__u32 word;

	if (pkt->l4_proto != IPPROTO_ESP && pkt->l4_proto != IPPROTO_UDP)
		return TUNNEL_NOT_OURS;
	address_key_fill(&dst, pkt, 0);
	if (!bpf_map_lookup_elem(&tunnel_endpoints, &dst))
		return TUNNEL_NOT_OURS;

	if (pkt->l4_proto == IPPROTO_ESP) {
		/* Later fragments carry no SPI: the kernel reassembles, xfrm decrypts. A
		 * whole packet without room for one is not ESP from a peer. */
		if (!pkt->l4 && pkt->is_fragment)
			return tunnel_accept_esp(pkt, &dst, 0, 0);
		if (!pkt->l4)
			return TUNNEL_DROP_UNKNOWN_PEER;
		if (first_word(pkt, pkt->l4, &word))
			return TUNNEL_DROP_UNKNOWN_PEER;
		return tunnel_accept_esp(pkt, &dst, 1, word);
	}
	if (!pkt->l4)
		return TUNNEL_NOT_OURS; /* a later UDP fragment: the kernel reassembles */
	if (pkt->dport == IKE_PORT)
		return TUNNEL_PASS_IKE;
	if (pkt->dport != IKE_NAT_T_PORT)
		return TUNNEL_NOT_OURS;
	/* RFC 3948: four zero bytes mark IKE; a lone 0xff byte is a NAT keepalive. */
	if (first_word(pkt, pkt->l4 + sizeof(struct udphdr), &word) || word == 0)
		return TUNNEL_PASS_IKE;
	return tunnel_accept_esp(pkt, &dst, 1, word);
}

/* ---- tc on the xfrm interfaces ---- */

/* Where the IP header starts. An xfrm interface has no link header of its own, but tc
 * ingress shows the skb from its MAC header on, and tunnel-mode decapsulation keeps the
 * outer Ethernet header's room (mac_len 14): so the offset is found, not assumed, as the
 * one where an IP header of the skb's family spans exactly the rest of the skb. On an
 * ExpressRoute link (a VLAN device, Ethernet) a short frame may carry the padding up to
 * Ethernet's 60 bytes (56 once its tag is taken off) after its IP packet. */
static __always_inline int tunnel_l3_offset(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	int offsets[2] = { 0, ETH_HLEN };
	int i;

#pragma unroll
	for (i = 0; i < 2; i++) {
		__u8 *ip = data + offsets[i];
		__u32 rest = skb->len - offsets[i], length;

		if ((void *)(ip + 6) > data_end)
			continue;
		if (skb->protocol == bpf_htons(ETH_P_IP) && (ip[0] >> 4) == 4)
			length = (ip[2] << 8) | ip[3];
		else if (skb->protocol == bpf_htons(ETH_P_IPV6) && (ip[0] >> 4) == 6)
			length = ((ip[4] << 8) | ip[5]) + 40;
		else
			continue;
		if (length == rest || (offsets[i] == ETH_HLEN && skb->len <= ETH_ZLEN && length < rest))
			return offsets[i];
	}
	return -1;
}

/* Parses the decrypted packet from its IP header on. */
static __always_inline int tunnel_parse_inner(struct __sk_buff *skb, struct packet *pkt)
{
	int offset, reason;

	if (skb->data_end - skb->data < skb->len)
		bpf_skb_pull_data(skb, skb->len);
	pkt->data = (void *)(long)skb->data;
	pkt->data_end = (void *)(long)skb->data_end;
	offset = tunnel_l3_offset(skb);
	if (offset < 0)
		return skb->protocol == bpf_htons(ETH_P_IPV6) ? DROP_MALFORMED_IPV6
							      : DROP_MALFORMED_IPV4;
	pkt->l3 = pkt->data + (offset ? ETH_HLEN : 0);
	if (skb->protocol == bpf_htons(ETH_P_IP))
		reason = parse_ipv4(pkt, pkt->l3);
	else
		reason = parse_ipv6(pkt, pkt->l3);
	/* Called for every IPv4 header, options or not: one path less for the verifier. */
	if (!reason && pkt->ip4)
		reason = ipv4_options_check_skb(skb, (__u32)(pkt->l3 - pkt->data),
						ipv4_options_length(pkt->ip4));
	if (reason)
		return reason;
	return parse_after_network(pkt);
}

/* The decrypted packet's parser as a function of its own, verified once whatever path
 * leads to it (as parse_frame is for XDP): the drop reason, or DROP_NONE with the
 * findings in info, which the caller turns back into a packet with packet_of(). */
__noinline int tunnel_parse_frame(struct __sk_buff *skb, struct packet_info *info)
{
	struct packet pkt = {};
	int reason;

	if (!info)
		return DROP_MALFORMED_IPV4;
	__builtin_memset(info, 0, sizeof(*info));
	reason = tunnel_parse_inner(skb, &pkt);
	if (!reason)
		packet_info_fill(info, &pkt);
	return reason;
}

static __always_inline void tunnel_client_add(struct tunnel_client_counter *c, int from_client,
					      __u32 packets, __u64 bytes)
{
	if (from_client) {
		c->ingress_packets += packets;
		c->ingress_bytes += bytes;
	} else {
		c->egress_packets += packets;
		c->egress_bytes += bytes;
	}
}

/* A point-to-site client's share of its tunnel's ingress (from_client) or egress, by its
 * virtual address (key->client): one lookup, and the client's first packet makes the
 * entry with its count. */
static __always_inline void count_tunnel_client(struct tunnel_client_key *key, int from_client,
						__u32 packets, __u64 bytes)
{
	struct tunnel_client_counter *c = bpf_map_lookup_elem(&tunnel_client_counters, key);
	struct tunnel_client_counter first = {};

	if (c) {
		tunnel_client_add(c, from_client, packets, bytes);
		return;
	}
	tunnel_client_add(&first, from_client, packets, bytes);
	if (!bpf_map_update_elem(&tunnel_client_counters, key, &first, BPF_NOEXIST))
		return;
	/* Another CPU made it first: add to it. */
	c = bpf_map_lookup_elem(&tunnel_client_counters, key);
	if (c)
		tunnel_client_add(c, from_client, packets, bytes);
}

/* What a client sent, by its source address: a function of its own, so that its key and
 * first count sit on a stack frame of their own, not on that of the tc ingress program,
 * whose deepest calls (the NSG stage) come near the verifier's 512 bytes. */
static __noinline void count_tunnel_client_ingress(const struct packet *pkt, __u32 tunnel,
						   __u32 packets, __u64 bytes)
{
	struct tunnel_client_key key = { .tunnel = tunnel };

	address_key_fill(&key.client, pkt, 1);
	count_tunnel_client(&key, 1, packets, bytes);
}

/* Packets and bytes as they crossed the tunnel: GRO on the xfrm interface may have merged
 * several decrypted TCP segments into this skb, each of which carried the headers.
 * from_client: the source is a point-to-site client's (the tunnel is theirs, and the source
 * is in their pool), which has the packet counted as that client's too. */
static __always_inline void count_tunnel_ingress(struct __sk_buff *skb, __u32 tunnel,
						 const struct packet *pkt, int from_client)
{
	__u32 segments = skb->gso_segs > 1 ? skb->gso_segs : 1, headers = 0, index;
	struct packet_counter *c;

	if (segments > 1 && pkt->l4 && pkt->l4_proto == IPPROTO_TCP) {
		struct tcphdr *tcp = pkt->l4;

		if ((void *)(tcp + 1) <= pkt->data_end)
			headers = (__u32)(pkt->l4 - pkt->l3) + tcp->doff * 4;
	}
	if (tunnel >= MAX_TUNNELS)
		return;
	index = tunnel * TUNNEL_COUNTER_MAX + TUNNEL_INGRESS;
	c = bpf_map_lookup_elem(&tunnel_counters, &index);
	if (c) {
		c->packets += segments;
		c->bytes += pkt->len + (segments - 1) * (headers & 0xffff);
	}
	if (from_client)
		count_tunnel_client_ingress(pkt, tunnel, segments,
					    pkt->len + (segments - 1) * (headers & 0xffff));
}


/* The rules' view of a decrypted packet, read from the skb at the parser's offsets: a
 * function of its own, verified once rather than once per path through the parser (as
 * nsg_packet_stage is for XDP). The source is outside every VNet (on-premises, or the
 * VNet behind the other gateway); the VM's packets of the same connection see the tunnel's
 * side as NSG_VNET_NONE too (route_destination_vnet), so both directions find one flow in
 * the table XDP keeps. */
__noinline int tunnel_nsg_stage(struct __sk_buff *skb, const struct packet_info *info)
{
	struct flow_scratch *scratch;
	__u32 zero = 0, flags;
	int reason, error;

	if (!info)
		return DROP_INTERNAL_ERROR;
	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch)
		return DROP_INTERNAL_ERROR;
	reason = nsg_tuple_fill((void *)(long)skb->data, (void *)(long)skb->data_end, info,
				&scratch->tuple, &flags);
	if (reason)
		return reason;
	/* An ICMP error, its quote read by tunnel_nsg_inbound: as nsg_packet_stage judges one */
	error = icmp_error_of(info);
	if (error && scratch->quote_read && nsg_icmp_error_flow(&scratch->result, info->len))
		return DROP_NONE;
	return nsg_flow_stage(&scratch->tuple, info->len, flags, error, &scratch->result);
}

/* The inbound NSGs of dst_vnet's destination subnet and NIC for a decrypted packet. */
static __always_inline int tunnel_nsg_inbound(struct __sk_buff *skb, const struct packet *pkt,
					      __u32 dst_vnet)
{
	struct flow_scratch *scratch;
	__u32 zero = 0;
	int reason;

	scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (!scratch)
		return DROP_INTERNAL_ERROR;
	packet_info_fill(&scratch->info, pkt);
	scratch->info.vnet = NSG_VNET_NONE;
	scratch->info.dst_vnet = dst_vnet;
	scratch->quote_read = 0;
	if (icmp_error_of(&scratch->info)) {
		reason = icmp_error_read(scratch, icmp_error_quote_skb(skb, &scratch->info));
		if (reason)
			return reason;
	}
	return tunnel_nsg_stage(skb, &scratch->info);
}

/* Traffic from a VNet that an outbound NSG denied on its way into the tunnel (XDP). */
static __always_inline void tunnel_count_egress_drop(const struct route_info *route, __u64 bytes)
{
	if (route->type == ROUTE_TUNNEL)
		count_tunnel(route->peering, TUNNEL_DROP_EGRESS_NSG, bytes);
}

/* The tunnel's drop counter for a drop reason: a later fragment takes its first's. */
static __always_inline __u32 tunnel_ingress_drop_counter(__u32 reason)
{
	switch (reason) {
	case DROP_TUNNEL_SPOOFED_INNER:
		return TUNNEL_DROP_INGRESS_SPOOFED;
	case DROP_TUNNEL_NO_ROUTE:
		return TUNNEL_DROP_INGRESS_NO_ROUTE;
	case DROP_NSG_DENIED_INBOUND:
	case DROP_NSG_DENIED_OUTBOUND:
		return TUNNEL_DROP_INGRESS_NSG;
	default:
		return TUNNEL_DROP_INGRESS_MALFORMED;
	}
}

/* A decrypted packet's drop as a monitor event, with the tunnel's interface: a function of
 * its own, off the tc program's stack. nsg_decided: the inbound NSGs judged this packet
 * (their stages are in flow_scratch). */
__noinline int tunnel_monitor_drop(struct __sk_buff *skb, const struct packet_info *info,
				   __u32 reason, __u32 nsg_decided)
{
	struct monitor_packet_meta m = {};
	struct flow_scratch *scratch = NULL;
	__u32 zero = 0;

	if (!info)
		return 0;
	if (nsg_decided)
		scratch = bpf_map_lookup_elem(&flow_scratch, &zero);
	m.type = MONITOR_DROP;
	m.drop_reason = reason;
	m.l3_offset = info->l3_offset;
	m.family = info->family;
	m.proto = info->l4_proto;
	m.sport = info->sport;
	m.dport = info->dport;
	m.src_vnet = NSG_VNET_NONE;
	m.dst_vnet = info->dst_vnet;
	m.len = info->len ?: skb->len;
	monitor_deciding_rule(&m, scratch ? &scratch->result : NULL, 1);
	return monitor_emit_skb(skb, &m);
}

/* Every drop of a decrypted packet: the tunnel's counter, the datapath's (by reason, and
 * by the xfrm interface and the destination's VNet) and the monitor's event. */
static __always_inline int tunnel_drop(struct __sk_buff *skb, __u32 tunnel,
				       const struct packet_info *info, __u32 reason,
				       __u32 nsg_decided, __u64 bytes)
{
	count_tunnel(tunnel, tunnel_ingress_drop_counter(reason), bytes);
	count_drop(skb->ifindex, info->dst_vnet, reason, bytes);
	tunnel_monitor_drop(skb, info, reason, nsg_decided);
	return TC_ACT_SHOT;
}

/* The stages after the parser (and, for a fragment, bpf/frag.h): the verdict, with the
 * drop reason in *reason when it is TC_ACT_SHOT (counted by the caller) and the
 * destination's VNet in info->dst_vnet once the route names it. */
static __always_inline int tunnel_ingress_stages(struct __sk_buff *skb,
						 const struct tunnel_interface *ti,
						 struct packet_info *info, __u32 *reason)
{
	__u32 ifindex = skb->ifindex;
	int point_to_site = ti->flags & TUNNEL_FLAG_POINT_TO_SITE;
	struct route_info *route;
	struct packet pkt;

	if (packet_of((void *)(long)skb->data, (void *)(long)skb->data_end, info, &pkt)) {
		*reason = info->family == AF_INET6 ? DROP_MALFORMED_IPV6 : DROP_MALFORMED_IPV4;
		return TC_ACT_SHOT;
	}
	if (is_control_traffic(&pkt) || is_local_destination(&pkt)) {
		/* Not judged by the source, which is a client's only when it is in the pool. */
		count_tunnel_ingress(skb, ti->tunnel, &pkt, point_to_site &&
				     source_vnet(&pkt, ifindex) >= 0);
		return TC_ACT_OK;
	}
	if (source_vnet(&pkt, ifindex) < 0) {
		*reason = DROP_TUNNEL_SPOOFED_INNER;
		return TC_ACT_SHOT;
	}
	route = route_lookup(&pkt, TUNNEL_ROUTE_SCOPE | ti->tunnel);
	if (!route || (route->type != ROUTE_VNET_LOCAL && route->type != ROUTE_VNET_PEERING)) {
		*reason = DROP_TUNNEL_NO_ROUTE;
		return TC_ACT_SHOT;
	}
	info->dst_vnet = route->dst_vnet;
	*reason = tunnel_nsg_inbound(skb, &pkt, route->dst_vnet);
	if (*reason)
		return TC_ACT_SHOT;
	count_tunnel_ingress(skb, ti->tunnel, &pkt, point_to_site);
	if (route->type == ROUTE_VNET_PEERING)
		count_peering(route->peering, pkt.len);
	if (hop_limit_expired(&pkt))
		return TC_ACT_OK; /* the kernel answers with time exceeded */
	hop_limit_decrement(&pkt);
	ifindex = route->egress_ifindex;
	/* The last change: it moves the packet's bytes, and pkt's pointers with them. */
	tcp_mss_clamp(skb, (__u32)(pkt.l3 - pkt.data), ti->tcp_mss);
	return bpf_redirect_neigh(ifindex, NULL, 0, 0);
}

/* The decrypted packet, on its way from on-premises (or the other VNet) into the VNet.
 * Its fragments take the fragment tracking XDP's do (bpf/frag.h): a later fragment carries
 * no ports, and follows its first's verdict rather than being judged without them. */
static __always_inline int tunnel_ingress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex, reason;
	struct tunnel_interface *ti = bpf_map_lookup_elem(&tunnel_interfaces, &ifindex);
	struct packet_info info;
	int verdict;

	if (!ti)
		return TC_ACT_OK; /* not one of ours */
	/* ARP and the like on an ExpressRoute link (an xfrm interface carries only IP) */
	if (skb->protocol != bpf_htons(ETH_P_IP) && skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	reason = tunnel_parse_frame(skb, &info);
	info.dst_vnet = NSG_VNET_NONE; /* until the route names it */
	if (!reason && info.is_fragment)
		reason = fragment_admit_skb(skb, &info);
	if (reason)
		return tunnel_drop(skb, ti->tunnel, &info, reason, 0, skb->len);
	reason = DROP_NONE;
	verdict = tunnel_ingress_stages(skb, ti, &info, &reason);
	if (info.is_fragment & FRAGMENT_FIRST)
		fragment_remember(verdict == TC_ACT_SHOT ? XDP_DROP : XDP_PASS, reason);
	if (verdict == TC_ACT_SHOT && reason)
		return tunnel_drop(skb, ti->tunnel, &info, reason,
				   reason == DROP_NSG_DENIED_INBOUND, info.len);
	return verdict;
}

/* Header bytes that each segment of a GSO TCP skb will carry (IP and TCP), read without
 * pulling the whole skb into its linear part. 0 when it is not TCP. */
static __always_inline __u32 gso_headers(struct __sk_buff *skb, int offset)
{
	__u8 ip[40], doff;
	__u32 ip_len;

	if (bpf_skb_load_bytes(skb, offset, ip, 1))
		return 0;
	if ((ip[0] >> 4) == 4) {
		if (bpf_skb_load_bytes(skb, offset, ip, 20) || ip[9] != IPPROTO_TCP)
			return 0;
		ip_len = (ip[0] & 0xf) * 4;
	} else {
		if (bpf_skb_load_bytes(skb, offset, ip, 40) || ip[6] != IPPROTO_TCP)
			return 0;
		ip_len = 40;
	}
	if (bpf_skb_load_bytes(skb, offset + ip_len + 12, &doff, 1))
		return 0;
	return ip_len + (doff >> 4) * 4;
}

/* The destination of a packet leaving into a point-to-site tunnel: the client it goes to.
 * -1 when the IP header is not there. */
static __always_inline int tunnel_client_of_egress(struct __sk_buff *skb, int offset,
						   struct tunnel_client_key *key)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		key->client.family = AF_INET;
		return bpf_skb_load_bytes(skb, offset + 16, key->client.addr, 4) ? -1 : 0;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		key->client.family = AF_INET6;
		return bpf_skb_load_bytes(skb, offset + 24, key->client.addr, 16) ? -1 : 0;
	}
	return -1;
}

/* Leaving into the tunnel: the kernel routed it here, xfrm encrypts it next. Counted as
 * the packets it becomes: a GSO skb is as many segments, each with its headers; into a
 * point-to-site tunnel, as its destination client's too. */
static __always_inline int tunnel_egress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct tunnel_interface *ti = bpf_map_lookup_elem(&tunnel_interfaces, &ifindex);
	__u32 segments = skb->gso_segs > 1 ? skb->gso_segs : 1, headers = 0, index;
	struct packet_counter *c;
	int offset;

	if (!ti || ti->tunnel >= MAX_TUNNELS)
		return TC_ACT_OK;
	if (skb->protocol != bpf_htons(ETH_P_IP) && skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK; /* ARP on an ExpressRoute link is not the tunnel's traffic */
	offset = tunnel_l3_offset(skb);
	if (offset < 0)
		offset = 0;
	if (segments > 1)
		headers = gso_headers(skb, offset);
	index = ti->tunnel * TUNNEL_COUNTER_MAX + TUNNEL_EGRESS;
	c = bpf_map_lookup_elem(&tunnel_counters, &index);
	if (c) {
		c->packets += segments;
		c->bytes += skb->len - offset + (segments - 1) * headers;
	}
	if (ti->flags & TUNNEL_FLAG_POINT_TO_SITE) {
		struct tunnel_client_key key = { .tunnel = ti->tunnel };

		if (!tunnel_client_of_egress(skb, offset, &key))
			count_tunnel_client(&key, 0, segments,
					    skb->len - offset + (segments - 1) * headers);
	}
	if (segments == 1)
		tcp_mss_clamp(skb, (__u32)offset, ti->tcp_mss); /* a SYN is never GSO */
	return TC_ACT_OK;
}

#endif

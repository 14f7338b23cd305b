/* The contract between the BPF datapath (bpf/) and the loader (user/): map keys and
 * values, actions, drop reasons and limits. Nothing here is defined twice. */
#ifndef VNET_XDP_H
#define VNET_XDP_H

#include <linux/types.h>

#define VNET_XDP_PIN_ROOT "/sys/fs/bpf/vnet-xdp"

#define MAX_VNETS        1024
#define MAX_INTERFACES   256
#define MAX_PEERINGS     4096
#define MAX_ROUTES       262144
#define MAX_SOURCE_PREFIXES 65536
#define MAX_LOCAL_ADDRESSES 4096
#define MAX_TUNNELS      256
#define MAX_TUNNEL_SPIS  4096

/* LPM key for both address families: the scope (a VNet id for routes, an ifindex for
 * source checks) and the family sit in front of the address, so one trie serves IPv4
 * and IPv6 without one family's default route covering the other. */
struct lpm_key {
	__u32 prefixlen; /* LPM_SCOPE_BITS + address prefix length */
	__u32 scope;
	__u32 family;    /* AF_INET (2) or AF_INET6 (10) */
	__u8 addr[16];   /* IPv4 in the first 4 bytes */
};
#define LPM_SCOPE_BITS 64

struct address_key {
	__u32 family;
	__u8 addr[16];
};

enum interface_role {
	INTERFACE_VNET = 0,   /* faces the VMs of one VNet (or one subnet of it) */
	INTERFACE_UPLINK = 1, /* faces the Internet and the on-premises underlay */
};

struct interface_info {
	__u32 role;   /* enum interface_role */
	__u32 vnet;   /* VNet id, for INTERFACE_VNET */
};

/* Azure's next hop types, as effective routes show them. */
enum route_type {
	ROUTE_VNET_LOCAL = 1,
	ROUTE_VNET_PEERING = 2,
	ROUTE_NONE = 3,        /* Azure's system routes that drop (10/8, 192.168/16, 100.64/10) */
	ROUTE_TUNNEL = 4,      /* VirtualNetworkGateway: into a connection's xfrm interface */
};

/* Routes that decrypted packets of a tunnel look up live in `routes` under this scope
 * (| tunnel id), apart from every VNet's own table: a connection reaches its gateway's
 * VNet and the spokes that use that gateway, nothing else. */
#define TUNNEL_ROUTE_SCOPE 0x80000000u

struct route_info {
	__u32 type;            /* enum route_type */
	__u32 egress_ifindex;  /* VNET_LOCAL, VNET_PEERING */
	__u32 peering;         /* peering counter index, VNET_PEERING */
	__u32 dst_vnet;
};

/* Every packet that is not forwarded or handed to the kernel on purpose ends here. */
enum drop_reason {
	DROP_NONE = 0,
	DROP_MALFORMED_ETHERNET,
	DROP_MALFORMED_VLAN,
	DROP_VLAN_NOT_BOUND,
	DROP_MALFORMED_IPV4,
	DROP_IPV4_BAD_CHECKSUM,
	DROP_MALFORMED_IPV6,
	DROP_MALFORMED_IPV6_EXTENSION,
	DROP_MALFORMED_L4,
	DROP_UNSUPPORTED_ETHERTYPE,
	DROP_SPOOFED_SOURCE,
	DROP_NO_ROUTE,
	DROP_ROUTE_NONE,
	DROP_FIB_MISMATCH,
	DROP_FIB_FAILED,
	DROP_REDIRECT_FAILED,
	DROP_UPLINK_UNSOLICITED,
	DROP_TUNNEL_UNKNOWN_PEER,  /* ESP to a tunnel endpoint from no configured peer */
	DROP_TUNNEL_SPOOFED_INNER, /* decrypted source outside the connection's remote spaces */
	DROP_TUNNEL_NO_ROUTE,      /* decrypted destination neither in the VNet nor a transit spoke */
	DROP_TUNNEL_REDIRECT_FAILED,
	DROP_REASON_MAX,
};

/* Reason names as metrics and `stats` print them; indexed by enum drop_reason. */
#define DROP_REASON_NAMES                                                                  \
	{ "none", "malformed_ethernet", "malformed_vlan", "vlan_not_bound",               \
	  "malformed_ipv4", "ipv4_bad_checksum", "malformed_ipv6",                        \
	  "malformed_ipv6_extension", "malformed_l4", "unsupported_ethertype",            \
	  "spoofed_source", "no_route", "route_none", "fib_mismatch", "fib_failed",       \
	  "redirect_failed", "uplink_unsolicited", "tunnel_unknown_peer",                 \
	  "tunnel_spoofed_inner", "tunnel_no_route", "tunnel_redirect_failed" }

/* Packets handed to the kernel on purpose, and packets forwarded, by why. */
enum datapath_counter {
	COUNT_RX = 0,
	COUNT_FORWARDED,
	COUNT_PASS_NOT_IP,         /* ARP and other non-IP frames */
	COUNT_PASS_LOCAL,          /* to the gateway's own addresses */
	COUNT_PASS_CONTROL,        /* multicast, link-local, ND */
	COUNT_PASS_TTL_EXPIRED,    /* the kernel answers with ICMP time exceeded */
	COUNT_PASS_NEIGHBOUR,      /* next hop MAC unknown: the kernel resolves and forwards */
	COUNT_PASS_FRAG_NEEDED,    /* larger than the egress MTU: the kernel answers */
	COUNT_PASS_UNBOUND,        /* arrived on an interface the config does not bind */
	COUNT_DROPPED,
	COUNT_PASS_ESP,            /* ESP from a tunnel's peer: the kernel's xfrm decrypts */
	COUNT_PASS_IKE,            /* IKE (UDP 500, 4500 with the non-ESP marker) for charon */
	COUNT_PASS_TUNNEL,         /* to an on-premises prefix: the kernel routes it into xfrm */
	DATAPATH_COUNTER_MAX,
};

#define DATAPATH_COUNTER_NAMES                                                             \
	{ "rx", "forwarded", "pass_not_ip", "pass_local", "pass_control",                 \
	  "pass_ttl_expired", "pass_neighbour", "pass_frag_needed", "pass_unbound",       \
	  "dropped", "pass_esp", "pass_ike", "pass_tunnel" }

struct packet_counter {
	__u64 packets;
	__u64 bytes;
};

/* The last decision on this CPU: `verify` reads it after BPF_PROG_TEST_RUN. */
struct decision_trace {
	__u64 sequence;
	__u32 verdict;          /* XDP action */
	__u32 drop_reason;
	__u32 counter;          /* enum datapath_counter that was bumped */
	__u32 ingress_ifindex;
	__u32 src_vnet;
	__u32 route_type;       /* 0: no route looked up */
	__u32 egress_ifindex;
	__u32 peering;
	__u32 dst_vnet;
	__u32 fingerprint;      /* IPv4 id or IPv6 flow label of the packet */
};

/* ---- tunnels (IPsec connections punted to xfrm interfaces) ---- */

/* tunnel_peers: the peer's public address -> the connection it belongs to. */
struct tunnel_peer {
	__u32 tunnel;            /* tunnel id: index into tunnel_counters */
	__u32 xfrm_ifindex;      /* the connection's xfrm interface */
	struct address_key local; /* this box's endpoint the peer talks to */
};

/* tunnel_interfaces: an xfrm interface's ifindex -> its connection. */
struct tunnel_interface {
	__u32 tunnel;
	__u32 vnet;     /* the VNet whose gateway terminates the connection */
	__u32 l2_len;   /* bytes before the IP header: 0 on xfrm interfaces (no link header) */
};

/* tunnel_spi_counters (LRU): encrypted packets by the peer that sent them and the SPI. */
struct tunnel_spi_key {
	struct address_key peer;
	__u32 spi;      /* host byte order */
};

/* tunnel_counters[tunnel * TUNNEL_COUNTER_MAX + counter] */
enum tunnel_counter {
	TUNNEL_ESP_IN = 0,         /* encrypted, from the peer, before xfrm (outer bytes) */
	TUNNEL_INGRESS,            /* decrypted and let into the VNet (Azure TunnelIngress*) */
	TUNNEL_EGRESS,             /* leaving into the tunnel, before encryption (TunnelEgress*) */
	TUNNEL_DROP_INGRESS_SPOOFED,
	TUNNEL_DROP_INGRESS_NO_ROUTE,
	TUNNEL_DROP_INGRESS_REDIRECT,
	TUNNEL_COUNTER_MAX,
};

#define TUNNEL_COUNTER_NAMES                                                               \
	{ "esp_in", "ingress", "egress", "spoofed_source", "no_route", "redirect_failed" }

/* Settings the loader writes once per config generation. */
struct gateway_settings {
	__u32 generation;
	__u32 flags;
};

#endif

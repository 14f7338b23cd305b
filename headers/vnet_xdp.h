/* The contract between the BPF datapath (bpf/) and the loader (user/): map keys and
 * values, actions, drop reasons and limits. Nothing here is defined twice. */
#ifndef VNET_XDP_H
#define VNET_XDP_H

#include <linux/types.h>

#define VNET_XDP_PIN_ROOT "/sys/fs/bpf/vnet-xdp"

/* Every pinned map of the datapath, by the name it is defined and pinned under, and its
 * class. CONFIG maps hold what a config compiles to: a reload builds a fresh set in a
 * staging directory and swaps them in with the programs, so a packet sees one generation
 * or the other. STATE maps (counters, flows, leases, SNAT mappings, events) outlive every
 * config. The loader opens maps only through this list (enum vnet_xdp_map); bpf/ checks
 * at compile time that each is defined, and the bpf test tier that each pinned map of the
 * object is here with its class. */
#define VNET_XDP_PINNED_MAPS(CONFIG, STATE)                                                \
	CONFIG(interfaces) CONFIG(routes) CONFIG(source_prefixes) CONFIG(nic_sources)      \
	CONFIG(local_addresses) CONFIG(settings)                                           \
	CONFIG(tunnel_peers) CONFIG(tunnel_endpoints) CONFIG(tunnel_interfaces)            \
	CONFIG(nsg_addresses) CONFIG(nsg_ports) CONFIG(nsg_port_intervals)                 \
	CONFIG(nsg_protocols) CONFIG(nsg_tables) CONFIG(nsg_rules) CONFIG(nsg_bindings)    \
	CONFIG(snat_sources) CONFIG(snat_pools) CONFIG(snat_vips)                          \
	STATE(peering_counters) STATE(drop_counters) STATE(datapath_counters)              \
	STATE(decision_traces) STATE(drop_details) STATE(drop_detail_keys)                 \
	STATE(drop_detail_overflow) STATE(fragments)                                       \
	STATE(fast_paths4) STATE(fast_paths6)                                              \
	STATE(flows) STATE(new_flows) STATE(flow_counters)                                 \
	STATE(nsg_rule_counters) STATE(nsg_flush)                                          \
	STATE(snat_mappings) STATE(snat_reverse) STATE(snat_vm_blocks)                     \
	STATE(snat_block_owners) STATE(snat_vip_counters)                                  \
	STATE(tunnel_counters) STATE(tunnel_spi_counters) STATE(tunnel_client_counters)    \
	STATE(monitor_events) STATE(monitor_control) STATE(monitor_budget)

#define VNET_XDP_MAP_ID(name) MAP_##name,
enum vnet_xdp_map { VNET_XDP_PINNED_MAPS(VNET_XDP_MAP_ID, VNET_XDP_MAP_ID) MAP_COUNT };
#undef VNET_XDP_MAP_ID

/* Time. The datapath stamps its entries with CLOCK_MONOTONIC (bpf_ktime_get_coarse_ns),
 * which starts near 0 at boot: a stamp minus a duration, or an earlier reading minus a later
 * stamp, wraps on a machine up for less than that duration. Every age, in bpf/ and user/, is
 * taken by clock_age_ns. A stamp a little ahead of the reader's clock is another CPU's (two
 * CPUs read the coarse clock at most a tick apart): it is fresh. One further ahead is no real
 * stamp (a wrap, a bug): it is older than any timeout, so the entry is judged anew instead of
 * holding forever. */
#define NS_PER_SECOND   1000000000ULL
#define CLOCK_SKEW_NS   (20ULL * 1000 * 1000) /* two ticks at HZ=100, the slowest tick */
#define CLOCK_AGE_UNKNOWN (~0ULL)

static inline __attribute__((always_inline)) __u64 clock_age_ns(__u64 now, __u64 stamp)
{
	if (now >= stamp)
		return now - stamp;
	return stamp - now <= CLOCK_SKEW_NS ? 0 : CLOCK_AGE_UNKNOWN;
}

#define MAX_VNETS        1024
#define MAX_INTERFACES   256
#define MAX_PEERINGS     4096
#define MAX_ROUTES       262144
#define MAX_SOURCE_PREFIXES 65536
#define MAX_LOCAL_ADDRESSES 4096
#define MAX_TUNNELS      256
#define MAX_TUNNEL_SPIS  4096
#define MAX_TUNNEL_CLIENTS 8192 /* point-to-site clients counted at once, every gateway's */

/* LPM key for both address families: the scope (a route scope for routes, an ifindex for
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
	__u32 flags;  /* INTERFACE_FLAG_* */
};
/* Every NIC the config puts behind the interface has a macAddress: a frame from any other
 * MAC is no NIC's, and is dropped (DROP_NIC_SPOOFED_SOURCE) rather than judged by the
 * subnet's prefixes. */
#define INTERFACE_FLAG_NICS_BY_MAC 1u

/* ---- Per-NIC anti-spoofing (nic_sources) ---------------------------------------------
 * Azure enforces a VM's source address per NIC: one of its ipConfigurations' addresses,
 * anything when the NIC has enableIPForwarding. The gateway knows a frame's NIC by the
 * ingress interface and the frame's source MAC (the NIC's macAddress). One hash map holds
 * both the NIC (family 0, address zero: its nic_info) and each of its addresses (the
 * same nic_info again), so the check is two lookups of one map. */
struct nic_key {
	__u32 ifindex;
	__u8 mac[6];
	__u8 pad[2];
	__u32 family;    /* 0: the NIC itself */
	__u8 addr[16];
};

struct nic_info {
	__u32 flags;     /* NIC_FLAG_* */
	__u32 family;    /* of address */
	__u8 address[16]; /* the NIC's first address: whose NSG binding judges what it sends,
			   * its own traffic and what it forwards */
};
#define NIC_FLAG_IP_FORWARDING 1u
#define MAX_NIC_SOURCES 65536

/* source_prefixes (scope: the ingress ifindex): where a source address on an interface
 * belongs. route_scope is the table its routes are looked up in: the VNet id, or the
 * subnet's scope (SUBNET_ROUTE_SCOPE) where the VNet has subnets with route tables.
 * SOURCE_FORWARDED marks the catch-all of an interface that faces a NIC with
 * enableIPForwarding: a source outside the VNet, forwarded by that NIC (an NVA). */
struct source_info {
	__u32 vnet;
	__u32 route_scope;
	__u32 flags;
	__u8 forwarder[16]; /* SOURCE_FORWARDER_KNOWN: the address of the one forwarding NIC
			     * behind the interface, whose NSGs judge what it forwards */
};
#define SOURCE_FORWARDED 1u
#define SOURCE_FORWARDER_KNOWN 2u

/* Azure's next hop types, as effective routes show them. */
enum route_type {
	ROUTE_VNET_LOCAL = 1,
	ROUTE_VNET_PEERING = 2,
	ROUTE_NONE = 3,        /* Azure's system routes that drop (10/8, 192.168/16, 100.64/10) */
	ROUTE_TUNNEL = 4,      /* VirtualNetworkGateway: into a connection's xfrm interface */
	ROUTE_INTERNET = 5,    /* 0.0.0.0/0 and UDRs to Internet: out the uplink, SNAT to a VIP */
	ROUTE_VIRTUAL_APPLIANCE = 6, /* a UDR to an NVA: to next_hop's MAC, out egress_ifindex */
};

/* The route scope of subnet s of VNet v, for VNets whose subnets have route tables: each
 * subnet's effective routes (its table's plus the VNet's system routes) in a table of
 * its own. Apart from VNet ids (< MAX_VNETS) and tunnel scopes. */
#define SUBNET_ROUTE_SCOPE 0x40000000u
#define subnet_route_scope(vnet, subnet) (SUBNET_ROUTE_SCOPE | ((__u32)(vnet) << 16) | (__u32)(subnet))

/* Routes that decrypted packets of a tunnel look up live in `routes` under this scope
 * (| tunnel id), apart from every VNet's own table: a connection reaches its gateway's
 * VNet and the spokes that use that gateway, nothing else. */
#define TUNNEL_ROUTE_SCOPE 0x80000000u

struct route_info {
	__u32 type;            /* enum route_type */
	__u32 egress_ifindex;  /* VNET_LOCAL, VNET_PEERING, VIRTUAL_APPLIANCE */
	__u32 peering;         /* peering counter index, VNET_PEERING */
	__u32 dst_vnet;        /* VIRTUAL_APPLIANCE: the appliance's VNet */
	__u32 flags;           /* ROUTE_FLAG_* */
	__u8 next_hop[16];     /* VIRTUAL_APPLIANCE: nextHopIpAddress, the packet's family */
};
/* Azure's Invalid state: the next hop is in no VNet this one reaches; packets drop. */
#define ROUTE_FLAG_INVALID 1u
/* VNET_PEERING: the destination VNet's peering back allows forwarded traffic (sources
 * outside this VNet's space, forwarded by an NVA here). */
#define ROUTE_FLAG_ACCEPTS_FORWARDED 2u
/* TUNNEL: a user route to the VNet gateway for a prefix none of the gateway's connections
 * holds. Azure sends such traffic to the gateway, which drops what it has no route for. */
#define ROUTE_FLAG_GATEWAY_DROPS 4u
/* VNET_PEERING: the destination VNet's side of the peering has allowVirtualNetworkAccess
 * false; only replies of flows that VNet opened enter it. */
#define ROUTE_FLAG_ACCESS_REFUSED 8u

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
	DROP_NSG_DENIED_OUTBOUND,  /* an outbound rule of the source's NIC or subnet NSG */
	DROP_NSG_DENIED_INBOUND,   /* an inbound rule of the destination's subnet or NIC NSG */
	DROP_SNAT_UNSOLICITED,      /* to a VIP, but no mapping: nobody inside asked for it */
	DROP_SNAT_EXPIRED,          /* to a VIP, for a mapping past its idle timeout */
	DROP_SNAT_PORT_EXHAUSTED,   /* no port block free for the VM (shared ports: no free port
				     * toward that destination) */
	DROP_SNAT_TABLE_FULL,       /* the mapping tables hold snatTableSize entries */
	DROP_SNAT_MAP_UPDATE_FAILED,/* the kernel refused a mapping insert for another reason */
	DROP_SNAT_NO_PUBLIC_ADDRESS,/* Internet route, but no VIP or NAT gateway for the source */
	DROP_SNAT_UNSUPPORTED,      /* a protocol or ICMP type SNAT cannot translate */
	DROP_SNAT_FRAGMENT,         /* IP fragments carry no ports to translate */
	DROP_LINK_LOCAL,            /* a link-local source or destination: never forwarded */
	DROP_PLATFORM_ADDRESS,      /* to 168.63.129.16 or 169.254.169.254, which Azure's host
				     * answers and nothing local does here */
	DROP_ROUTE_INVALID,         /* a route in Azure's Invalid state: its next hop is in no
				     * VNet the source reaches */
	DROP_NEXT_HOP_UNRESOLVED,   /* an appliance's MAC is not in the neighbour table yet */
	DROP_FORWARDED_NOT_ALLOWED, /* forwarded into a VNet over a peering whose side there
				     * does not allow forwarded traffic */
	DROP_FRAGMENT_UNSEEN,       /* a later fragment whose first fragment was not seen (or
				     * is older than FRAGMENT_TIMEOUT_NS) */
	DROP_FRAGMENT_TINY,         /* a first fragment without its whole transport header
				     * (RFC 1858) */
	DROP_FRAGMENT_OVERLAP,      /* a later fragment over its first fragment's transport
				     * header (RFC 1858) */
	DROP_SNAT_VM_LIMIT,         /* every port of the source VM's block (snatMappingsPerVm) is in use */
	DROP_IPV4_SOURCE_ROUTE,     /* an IPv4 loose or strict source route option (LSRR,
				     * SSRR), which Linux drops too by default */
	DROP_NIC_SPOOFED_SOURCE,    /* a source address that is not one of its NIC's (the NIC
				     * known by the frame's source MAC), or a MAC that is no
				     * NIC's where every NIC behind the interface has one */
	DROP_GATEWAY_NO_ROUTE,      /* a user route to the VNet gateway, for a prefix none of
				     * its connections' sites holds (ROUTE_FLAG_GATEWAY_DROPS) */
	DROP_PEERING_ACCESS_REFUSED,/* a new flow into a VNet whose side of the peering does
				     * not allow access from the source's VNet */
	DROP_INTERNAL_ERROR,        /* not the packet's fault: a per-CPU scratch lookup failed,
				     * or a packet parsed once did not parse again (a bug) */
	DROP_ICMP_QUOTE_MALFORMED,  /* an ICMP error whose quoted packet is cut short (less
				     * than its IP header and 8 bytes), not of the error's IP
				     * version, or behind a longer IPv6 extension chain than
				     * the datapath follows */
	DROP_REASON_MAX,
};

/* Reason names as metrics and `stats` print them; indexed by enum drop_reason. */
#define DROP_REASON_NAMES                                                                  \
	{ "none", "malformed_ethernet", "malformed_vlan", "vlan_not_bound",               \
	  "malformed_ipv4", "ipv4_bad_checksum", "malformed_ipv6",                        \
	  "malformed_ipv6_extension", "malformed_l4", "unsupported_ethertype",            \
	  "spoofed_source", "no_route", "route_none", "fib_mismatch", "fib_failed",       \
	  "redirect_failed", "uplink_unsolicited", "tunnel_unknown_peer",                 \
	  "tunnel_spoofed_inner", "tunnel_no_route",                                      \
	  "nsg_denied_outbound", "nsg_denied_inbound", "snat_unsolicited", "snat_expired",  \
	  "snat_port_exhausted", "snat_table_full", "snat_map_update_failed",             \
	  "snat_no_public_address", "snat_unsupported", "snat_fragment", "link_local",     \
	  "platform_address", "route_invalid", "next_hop_unresolved",                     \
	  "forwarded_not_allowed", "fragment_unseen", "fragment_tiny", "fragment_overlap", \
	  "snat_vm_limit", "ipv4_source_route", "nic_spoofed_source", "gateway_no_route", \
	  "peering_access_refused", "internal_error",                            \
	  "icmp_quote_malformed" }

/* Packets handed to the kernel on purpose, and packets forwarded, by why. */
enum datapath_counter {
	COUNT_RX = 0,
	COUNT_FORWARDED,
	COUNT_PASS_NOT_IP,         /* ARP and other non-IP frames */
	COUNT_PASS_LOCAL,          /* to the gateway's own addresses */
	COUNT_PASS_CONTROL,        /* multicast, broadcast, ND to link-local (hop limit 255) */
	COUNT_PASS_TTL_EXPIRED,    /* the kernel answers with ICMP time exceeded */
	COUNT_PASS_NEIGHBOUR,      /* next hop MAC unknown: the kernel resolves and forwards */
	COUNT_PASS_FRAG_NEEDED,    /* larger than the egress MTU: the kernel segments or answers */
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

/* Drops by where they happened (bpf/counters.h, at the one point that counts every drop by
 * reason): the interface they came in on (an xfrm interface for a tunnel's decrypted
 * packets), the VNet they belong to (the source's; for a packet from outside every VNet,
 * the destination's once routed; NSG_VNET_NONE when neither is known) and the reason.
 * A per-CPU hash: the keys a VNet can make are bounded by its interfaces and the reasons,
 * and each VNet (and "none", at slot MAX_VNETS) may hold at most DROP_DETAILS_PER_VNET of
 * them, so one tenant cannot fill the table for the others. A drop that finds no room is
 * still counted by reason (drop_counters) and, by its VNet, in drop_detail_overflow. */
#define MAX_DROP_DETAILS      8192
#define DROP_DETAILS_PER_VNET 256
#define DROP_DETAIL_VNET_SLOTS (MAX_VNETS + 1) /* the last: NSG_VNET_NONE */

struct drop_detail_key {
	__u32 ifindex;
	__u16 vnet;   /* NSG_VNET_NONE: outside every VNet, or not known */
	__u16 reason; /* enum drop_reason */
};

/* ---- Network security groups ----------------------------------------------------------
 * Bit-vector classification (LBVS): the rules of one NSG table (one NSG, one direction,
 * seen from one VNet, whose VirtualNetwork tag it fixes) are numbered by priority; each
 * field lookup returns the bit vector of the rules that field admits; the first bit set
 * in all five vectors is the deciding rule. The summary word has bit w set when words[w]
 * is not zero, so the AND visits only words that can hold a match. */
#define NSG_MAX_RULES        4096   /* per NSG and direction, defaults included */
#define NSG_BITMAP_WORDS     (NSG_MAX_RULES / 64)
#define MAX_NSG_TABLES       1024   /* (NSG, VNet) pairs x 2 directions */
#define MAX_NSG_RULE_SLOTS   65536  /* rules of every table, by table rule_base + bit */
#define MAX_NSG_RULE_IDS     65536  /* stable per-rule counter slots */
#define MAX_NSG_IDS          4096   /* stable NSG ids (flushConnection) */
#define MAX_NSG_PREFIXES     524288 /* address LPM entries, both sides of every table */
#define MAX_NSG_PORT_PREFIXES 1048576
#define MAX_NSG_PORT_INTERVALS 262144
#define MAX_NSG_BINDINGS     65536
#define NSG_PROTO_CLASSES    8
#define NSG_STAGES           4      /* source NIC, source subnet (outbound); destination
				     * subnet, destination NIC (inbound) */
#define NSG_NONE             0xffffffffu
#define NSG_VNET_NONE        0xffff /* an endpoint outside every VNet (Internet, on-premises) */

enum nsg_proto_class { NSG_CLASS_OTHER = 0, NSG_CLASS_TCP, NSG_CLASS_UDP, NSG_CLASS_ICMP,
		       NSG_CLASS_ESP, NSG_CLASS_AH };
enum nsg_stage_index { NSG_STAGE_SOURCE_NIC = 0, NSG_STAGE_SOURCE_SUBNET,
		       NSG_STAGE_DESTINATION_SUBNET, NSG_STAGE_DESTINATION_NIC };

struct nsg_bitmap {
	__u64 summary;
	__u64 words[NSG_BITMAP_WORDS];
};

/* Port LPM key: scope = table * 2 + side (0 source, 1 destination); data[0] is 1 when the
 * packet has ports (TCP, UDP), data[1..2] the port in network order. A packet without
 * ports matches the 8-bit entry data[0] = 0: only rules whose ranges cover every port. */
struct nsg_port_key {
	__u32 prefixlen; /* 32 + 8 + port bits */
	__u32 scope;
	__u8 data[4];
};
#define NSG_PORT_KEY_BITS (32 + 8 + 16)

struct nsg_table {
	__u32 rule_base;  /* slot of bit 0 in nsg_rules */
	__u32 n_rules;
	__u32 nsg_id;     /* stable NSG id */
	__u32 direction;  /* 0 inbound, 1 outbound */
};

struct nsg_rule {
	__u32 rule_id;    /* stable counter slot */
	__u16 priority;
	__u8 access;      /* 0 Allow, 1 Deny */
	__u8 pad;
};

/* Where the NSGs of an address sit: the subnet's and, for a NIC's address, the NIC's.
 * Values are NSG table pair indexes + 1 (0: none); the inbound table of pair p is 2p,
 * the outbound one 2p + 1. LPM scope: the VNet id. */
struct nsg_binding {
	__u32 subnet_pair;
	__u32 nic_pair;
};

struct nsg_rule_counter {
	__u64 hits;       /* flows (first packets) the rule decided */
	__u64 packets;
	__u64 bytes;
};

/* One NSG stage of one decision, for `verify` and the flow entry. */
struct nsg_decision {
	__u32 nsg_id;     /* NSG_NONE: no NSG at this stage */
	__u32 rule_id;
	__u16 priority;
	__u8 access;
	__u8 pad;
};

/* NSG_FLOW_RELATED: an ICMP error about a known flow (its quote, reversed), passed with
 * that flow's decisions. NSG_FLOW_UNTRACKED: an ICMP error about no known flow, allowed
 * by the rules alone and remembered nowhere. */
enum nsg_flow_outcome { NSG_FLOW_NONE = 0, NSG_FLOW_EXEMPT, NSG_FLOW_NEW, NSG_FLOW_HIT,
			NSG_FLOW_EXPIRED, NSG_FLOW_REVALIDATED, NSG_FLOW_DENIED,
			NSG_FLOW_RELATED, NSG_FLOW_UNTRACKED };

/* ---- Flow table (stateful NSGs) -------------------------------------------------------
 * One entry per connection, keyed canonically so both directions find it: the endpoint
 * with the smaller (address, port) is a. The VNet of each endpoint keeps flows of VNets
 * with overlapping address spaces apart. */
struct flow_key {
	__u8 addr_a[16];
	__u8 addr_b[16];
	__u16 port_a, port_b;  /* ICMP: the echo identifier on both */
	__u16 vnet_a, vnet_b;
	__u8 family, proto;
	__u8 pad[2];
};

enum tcp_flow_state { TCP_FLOW_OPENING = 0, TCP_FLOW_ESTABLISHED, TCP_FLOW_CLOSING,
		      TCP_FLOW_CLOSED };

struct flow_entry {
	__u64 last_seen_ns;     /* bpf_ktime_get_ns() */
	__u64 created_ns;
	__u32 generation;       /* config generation whose NSGs allowed it */
	__u8 initiator_is_b;    /* the first packet went from b to a */
	__u8 tcp_state;         /* enum tcp_flow_state */
	__u8 fin_seen;          /* bit 0: from the initiator, bit 1: from the responder */
	__u8 pad;
	__u32 nsg_id[NSG_STAGES];  /* stable NSG ids passed (NSG_NONE: none), for flushes */
	__u32 rule_id[NSG_STAGES]; /* the rule that allowed it at each stage */
	__u64 packets[2], bytes[2]; /* [0] from the initiator, [1] from the responder */
};

enum flow_counter {
	FLOW_CREATED = 0,
	FLOW_HIT,
	FLOW_EXPIRED,        /* found idle past its timeout on lookup, classified anew */
	FLOW_REVALIDATED,    /* re-evaluated after a flushConnection rule change */
	FLOW_CLOSED,         /* RST, or FIN both ways: kept for the transitory timeout */
	FLOW_DELETED,        /* removed by the datapath: denied on re-evaluation */
	FLOW_INSERT_FAILED,
	FLOW_GC_REMOVED,     /* written by user space: removed by its garbage collection */
	FLOW_PROMOTED,       /* answered: moved from new_flows to flows */
	FLOW_ICMP_ERROR_RELATED, /* an ICMP error passed with the flow its quote names */
	FLOW_COUNTER_MAX,
};

/* The members of `stats -j`'s "flows" object, so camelCase like every JSON key. */
#define FLOW_COUNTER_NAMES                                                                 \
	{ "created", "hit", "expired", "revalidated", "closed", "deleted", "insertFailed", \
	  "gcRemoved", "promoted", "icmpErrors" }

/* A flow nobody answered yet (TCP before the responder's first packet, UDP and ICMP
 * before a reply) lives in new_flows, an LRU table of its own, a quarter of flows' size
 * (at least NEW_FLOW_TABLE_MIN): a flood of new flows evicts other new flows, never an
 * established one, as conntrack's early drop takes unassured entries first. The
 * responder's first packet moves the flow to flows. */
/* limits.flowTableSize when the config gives none: the size the maps are declared with. */
#define FLOW_TABLE_ENTRIES_DEFAULT 262144
#define NEW_FLOW_TABLE_DIVISOR 4
#define NEW_FLOW_TABLE_MIN     1024

static inline __attribute__((always_inline)) __u32 new_flow_table_entries(__u32 flow_table_entries)
{
	__u32 n = flow_table_entries / NEW_FLOW_TABLE_DIVISOR;

	return n > NEW_FLOW_TABLE_MIN ? n : NEW_FLOW_TABLE_MIN;
}

/* The last decision on this CPU: `verify` reads it after BPF_PROG_TEST_RUN. */
struct decision_trace {
	__u64 sequence;
	__u32 verdict;          /* XDP action */
	__u32 drop_reason;
	__u32 counter;          /* enum datapath_counter that was bumped */
	__u32 ingress_ifindex;
	__u32 src_vnet;
	__u32 route_scope;      /* the table the route was looked up in */
	__u32 route_type;       /* 0: no route looked up */
	__u32 egress_ifindex;
	__u32 peering;
	__u32 dst_vnet;
	__u32 fingerprint;      /* IPv4 id or IPv6 flow label of the packet */
	struct nsg_decision nsg[NSG_STAGES]; /* what each NSG stage decided (see nsg_stage) */
	__u32 flow;             /* enum nsg_flow_outcome */
	__u32 fast_path;        /* enum fast_path_kind */
	__u32 armed;            /* set by the reader (tests): the datapath writes traces only
				 * then, as they cost every packet; verify's dry run always does */
};

/* ---- Established-flow fast path (bpf/fastpath.h) --------------------------------------
 * One direction of a flow as it arrives: the ingress interface and the packet's own
 * addresses, protocol and ports (echo identifier in sport for ICMP). One map per family:
 * the lookup hashes the whole key, and IPv4's is less than half of IPv6's. */
struct fast_path_key4 {
	__u8 src[4];
	__u8 dst[4];
	__u32 ingress_ifindex;
	__u16 sport, dport;
	__u8 proto;
	__u8 pad[3];
};

struct fast_path_key6 {
	__u8 src[16];
	__u8 dst[16];
	__u32 ingress_ifindex;
	__u16 sport, dport;
	__u8 proto;
	__u8 pad[3];
};

#define FAST_PATH_MAP_NAMES { "fast_paths4", "fast_paths6" }

enum fast_path_kind {
	FAST_PATH_NONE = 0,
	FAST_PATH_CACHED,  /* route and next hop from the cache, the flow table asked */
	FAST_PATH_LEASED,  /* and the flow as the flow table last confirmed it (the lease) */
};

/* What the whole pipeline found for one direction of an allowed flow. While the lease
 * holds (the flow table confirmed the flow established within FAST_PATH_LEASE_NS), the
 * direction's packets are forwarded from this entry alone, and what the flow entry would
 * count waits in pending_* until the next confirmation folds it in. */
struct fast_path_entry {
	__u32 generation;          /* the config generation the pipeline ran under */
	__u32 src_vnet;
	struct route_info route;
	__u64 checked_ns;          /* when the flow table and the FIB last confirmed it */
	__u64 last_seen_ns;        /* the last packet forwarded under the lease */
	__u64 pending_packets;     /* forwarded under the lease, not yet in the flow entry */
	__u64 pending_bytes;
	struct nsg_decision stages[NSG_STAGES]; /* the rules that allowed the flow */
	struct flow_key flow;      /* the flow entry this direction belongs to */
	__u8 dmac[6];
	__u8 smac[6];
	__u8 leased;               /* the flow was open for the lease at checked_ns */
	__u8 responder;            /* this direction is the flow's responder's */
	__u8 pad[2];
	__u8 ingress_smac[6];      /* the source MAC the pipeline judged (per-NIC anti-spoofing):
				    * a frame from another MAC takes the whole pipeline */
	__u8 pad2[2];
};

/* ---- Fragments (bpf/frag.h) ------------------------------------------------------------
 * A datagram's first fragment takes the pipeline; what it carried of its transport header
 * and the verdict it got are kept for its later fragments, which carry neither ports nor
 * flags: they follow it (its NSG decision, route and SNAT translation), as Cilium's
 * fragment map does. Fragments of one datagram follow each other within microseconds;
 * the timeout only bounds how long an IP id can name an old datagram. */
#define MAX_FRAGMENT_DATAGRAMS 8192 /* datagrams in flight at once; LRU beyond */
#define FRAGMENT_TIMEOUT_NS (2 * NS_PER_SECOND)

/* What all fragments of one datagram share. The ingress interface with the source address
 * names the source's VNet, so VNets of overlapping address spaces stay apart. */
struct fragment_key {
	__u8 src[16];
	__u8 dst[16];
	__u32 id;           /* IPv4: the 16-bit identification; IPv6: the fragment header's */
	__u32 ingress_ifindex;
	__u8 family;
	__u8 proto;         /* IPv4: the protocol; IPv6: the fragment header's next header */
	__u8 pad[2];
};

struct fragment_entry {
	__u64 seen_ns;       /* when the first fragment was judged */
	__u32 verdict;       /* the XDP action the first fragment got */
	__u32 drop_reason;   /* and why, when it was dropped */
	__u16 sport, dport;  /* ICMP: the echo identifier in sport */
	__u16 transport_end; /* where its transport header ends, in bytes of the fragmentable
			      * part: a later fragment starting before that overlaps it */
	__u8 l4_proto, icmp_type, icmp_code;
	__u8 pad[3];
};

/* ---- tunnels (IPsec connections punted to xfrm interfaces) ---- */

/* tunnel_peers: the peer's public address -> the connection it belongs to; the family's
 * zero address: a gateway's point-to-site clients, whatever their address. */
struct tunnel_peer {
	__u32 tunnel;            /* tunnel id: index into tunnel_counters */
	__u32 xfrm_ifindex;      /* the connection's xfrm interface */
	struct address_key local; /* this box's endpoint the peer talks to */
};

/* tunnel_interfaces: an xfrm interface's ifindex -> its connection. */
struct tunnel_interface {
	__u32 tunnel;
	__u32 vnet;     /* the VNet whose gateway terminates the connection */
	__u16 tcp_mss;  /* SYN and SYN-ACK MSS options above it are lowered to it (IPv6:
			 * to 20 less, for its longer header); 0: not */
	__u16 flags;    /* TUNNEL_FLAG_* */
};
/* The tunnel of a gateway's point-to-site clients: its traffic is counted per client too
 * (tunnel_client_counters). */
#define TUNNEL_FLAG_POINT_TO_SITE 1u
/* An ExpressRoute link is a tunnel without ESP: its VLAN device is in tunnel_interfaces
 * and its tc programs run the decrypted packets' pipeline on what the provider sends.
 * Its tunnel id is taken from the top, apart from the IPsec connections' (from 0). */
#define EXPRESS_ROUTE_TUNNEL_ID(link) (MAX_TUNNELS - 1 - (__u32)(link))

/* Azure's advice for devices on its tunnels (gateway.tunnelTcpMss). */
#define DEFAULT_TUNNEL_TCP_MSS 1350

/* tunnel_spi_counters (LRU): encrypted packets by the peer that sent them and the SPI. */
struct tunnel_spi_key {
	struct address_key peer;
	__u32 spi;      /* host byte order */
};

/* tunnel_client_counters (LRU, per CPU): a point-to-site client's traffic by its tunnel
 * and virtual address, counted where the tunnel's own ingress and egress are: ingress what
 * was decrypted from that source and let in, egress what left into the tunnel for that
 * destination. An entry is made by its client's first packet; LRU, so the oldest client's
 * entry makes room rather than a new client going uncounted. User space deletes the
 * entry of an address no client SA holds (`serve` every second, `clients` before it
 * lists), so the next client given that address starts from zero. */
struct tunnel_client_key {
	__u32 tunnel;
	struct address_key client; /* the virtual address; IPv4 in the first 4 bytes */
};

struct tunnel_client_counter {
	__u64 ingress_packets, ingress_bytes; /* from the client */
	__u64 egress_packets, egress_bytes;   /* to the client */
};

/* tunnel_counters[tunnel * TUNNEL_COUNTER_MAX + counter] */
enum tunnel_counter {
	TUNNEL_ESP_IN = 0,         /* encrypted, from the peer, before xfrm (outer bytes) */
	TUNNEL_INGRESS,            /* decrypted and let into the VNet (Azure TunnelIngress*) */
	TUNNEL_EGRESS,             /* leaving into the tunnel, before encryption (TunnelEgress*) */
	TUNNEL_DROP_INGRESS_SPOOFED,
	TUNNEL_DROP_INGRESS_NO_ROUTE,
	TUNNEL_DROP_INGRESS_MALFORMED, /* the drop reason names what */
	TUNNEL_DROP_INGRESS_NSG,   /* decrypted, denied by an inbound NSG of the destination */
	TUNNEL_DROP_EGRESS_NSG,    /* routed into the tunnel, denied by an outbound NSG */
	TUNNEL_COUNTER_MAX,
};

/* Where the drop counters of each direction start and end (Azure's
 * TunnelIngressPacketDropCount and TunnelEgressPacketDropCount are their sums). */
#define TUNNEL_INGRESS_DROPS_FIRST TUNNEL_DROP_INGRESS_SPOOFED
#define TUNNEL_INGRESS_DROPS_LAST  TUNNEL_DROP_INGRESS_NSG
#define TUNNEL_EGRESS_DROPS_FIRST  TUNNEL_DROP_EGRESS_NSG
#define TUNNEL_EGRESS_DROPS_LAST   TUNNEL_DROP_EGRESS_NSG

#define TUNNEL_COUNTER_NAMES                                                               \
	{ "esp_in", "ingress", "egress", "spoofed_source", "no_route", "malformed",        \
	  "nsg_denied_inbound", "nsg_denied_outbound" }

/* ---- SNAT: outbound NAT of VM traffic to the VNet's VIP ----------------------------- */

#define MAX_SNAT_POOLS     1024 /* one per VNet with a VIP, one per NAT gateway */
#define MAX_SNAT_POOL_VIPS 16   /* VIPs of one pool share its port range */
#define MAX_SNAT_VIPS      4096
#define SNAT_TABLE_ENTRIES_DEFAULT 1048576 /* limits.snatTableSize when the config gives none */
#define MAX_SNAT_SOURCES   65536

/* A flow as one packet shows it: on egress (VM -> remote) the mapping's key, on ingress
 * (remote -> VIP) the reverse key. ICMP echo: the identifier sits in src_port on egress
 * (dst_port 0) and in dst_port on ingress (src_port 0), where a reply carries it. */
struct snat_flow_key {
	__u8 family;
	__u8 proto;
	__u16 pad;
	__be16 src_port;
	__be16 dst_port;
	__u8 src[16];
	__u8 dst[16];
};

enum snat_tcp_state {
	SNAT_TCP_OPENING = 0,     /* SYN seen, no answer yet: transitory timeout */
	SNAT_TCP_ESTABLISHED = 1, /* the remote answered: idle timeout */
	SNAT_TCP_CLOSING = 2,     /* FIN or RST seen: transitory timeout */
};

/* Egress map value: what the VM's flow leaves as. last_seen_ns is bpf_ktime_get_coarse_ns
 * (CLOCK_MONOTONIC), refreshed by packets both ways; the timeouts are copied from the
 * pool at creation so that expiry needs no other lookup (user-space GC included). */
struct snat_mapping {
	__u8 vip[16];
	__be16 vip_port;
	__u8 tcp_state;      /* enum snat_tcp_state */
	__u8 fin_seen;       /* bit 0: from the VM, bit 1: from the remote */
	__u32 vnet;          /* the VM's VNet: replies are routed in it */
	__u32 idle_timeout_seconds;      /* established TCP, UDP or ICMP */
	__u32 transitory_timeout_seconds; /* opening or closing TCP; also the port cool-down */
	__u64 last_seen_ns;
	__u64 created_ns;
};

/* Reverse map value: the VM's flow a reply belongs to. released_ns is set by the GC when
 * the mapping ended; the entry stays (the port toward that destination stays taken) for
 * a cool-down of transitory_timeout_seconds, then the GC removes it. */
struct snat_reverse {
	struct snat_flow_key flow;
	__u64 released_ns;
	__u32 transitory_timeout_seconds;
	__u32 pad;
	__u64 claim;         /* a random token of the allocation that holds the port: a CPU
			      * taking over a stale entry swaps it first (compare and swap),
			      * so two CPUs never take over the same port */
};

/* When a mapping has expired: opening and closing TCP after the transitory timeout,
 * everything else after its idle timeout. One rule for the datapath and the collector. */
static inline __attribute__((always_inline)) int
snat_mapping_expired(const struct snat_mapping *m, __u8 proto, __u64 now)
{
	__u32 seconds = proto == 6 /* TCP */ && m->tcp_state != SNAT_TCP_ESTABLISHED ?
				m->transitory_timeout_seconds : m->idle_timeout_seconds;

	return clock_age_ns(now, m->last_seen_ns) > (__u64)seconds * NS_PER_SECOND;
}

/* When an expired mapping's port may serve another flow toward the same remote: after the
 * cool-down (the transitory timeout) past its expiry, so that late packets of the old flow
 * find no new one. */
static inline __attribute__((always_inline)) int
snat_mapping_port_reusable(const struct snat_mapping *m, __u8 proto, __u64 now)
{
	__u32 seconds = proto == 6 && m->tcp_state != SNAT_TCP_ESTABLISHED ?
				m->transitory_timeout_seconds : m->idle_timeout_seconds;
	__u64 age = clock_age_ns(now, m->last_seen_ns);

	return age > ((__u64)seconds + m->transitory_timeout_seconds) * NS_PER_SECOND;
}

/* A reverse entry whose mapping ended (released_ns set, by the collector or the datapath)
 * frees its port after the cool-down. */
static inline __attribute__((always_inline)) int
snat_reverse_cooled_down(const struct snat_reverse *rev, __u64 now)
{
	return rev->released_ns &&
	       clock_age_ns(now, rev->released_ns) > (__u64)rev->transitory_timeout_seconds * NS_PER_SECOND;
}

/* Port blocks (limits.snatMappingsPerVm, as Azure's allocatedOutboundPorts): a pool's port
 * range is cut into blocks of block_ports ports; a VM (a source address in its VNet) takes
 * one block on its first flow, and the same ports on every VIP of the pool are its own.
 * In a pool with blocks a port serves one flow at a time, whatever its destination, so a
 * VM holds at most block_ports mappings per VIP without anything counting them, and its
 * expired mappings' ports come back to it alone. A block whose VM was idle past
 * snat_block_idle_ns (every mapping of it expired and cooled down) goes to the next VM
 * that finds no free one. layout names the pool's VIPs, ports and block size: a claim made
 * under another layout (before a reload changed them) is void. */
#define MAX_SNAT_BLOCKS   65536 /* blocks claimed at once, over every pool */
#define SNAT_BLOCK_PROBES 128   /* blocks a VM without one tries per packet */

struct snat_vm_key {
	__u32 vnet;
	__u32 family;
	__u8 addr[16];
};

/* A VM's block; last_active_ns is refreshed (at most once a second) by its mappings' packets
 * both ways. */
struct snat_vm_block {
	__u32 layout;
	__u32 block;
	__u64 last_active_ns;
};

struct snat_block_key {
	__u32 layout;
	__u32 block;
};

struct snat_block_owner {
	struct snat_vm_key vm;
	__u64 claim;    /* a random token: a CPU taking over the block swaps it first */
};

/* One source of public addresses: a VNet's gateway binding (vip/vips) or an Azure NAT
 * gateway (its publicIpAddresses), with the port range its VIPs pool. */
struct snat_pool {
	__u32 n_vips;
	__u16 port_min, port_max;
	__u32 tcp_idle_timeout_seconds;
	__u32 tcp_transitory_timeout_seconds;
	__u32 udp_idle_timeout_seconds;
	__u32 icmp_idle_timeout_seconds;
	__u32 block_ports;      /* ports per VM and VIP (limits.snatMappingsPerVm); 0: none,
				 * the range is shared and a port serves many destinations */
	__u32 n_blocks;         /* (port_max - port_min + 1) / block_ports */
	__u32 layout;           /* nonzero when block_ports is */
	__u32 pad;
	struct address_key vips[MAX_SNAT_POOL_VIPS];
};

/* How long a VM idles before its block may go to another VM: the longest a mapping of
 * the pool lives unseen, and its port's cool-down after. */
static inline __attribute__((always_inline)) __u64
snat_block_idle_ns(const struct snat_pool *p)
{
	__u32 longest = p->tcp_idle_timeout_seconds;

	if (p->udp_idle_timeout_seconds > longest)
		longest = p->udp_idle_timeout_seconds;
	if (p->icmp_idle_timeout_seconds > longest)
		longest = p->icmp_idle_timeout_seconds;
	if (p->tcp_transitory_timeout_seconds > longest)
		longest = p->tcp_transitory_timeout_seconds;
	return ((__u64)longest + p->tcp_transitory_timeout_seconds) * NS_PER_SECOND;
}

/* Per VIP, per CPU. */
struct snat_vip_counter {
	__u64 flows;            /* mappings created */
	__u64 port_exhausted;   /* new flows dropped for want of a port */
	__u64 egress_packets, egress_bytes;   /* translated VM -> Internet */
	__u64 ingress_packets, ingress_bytes; /* translated back Internet -> VM */
};

/* Settings the loader writes once per config generation. */
struct gateway_settings {
	__u32 generation;
	__u32 flags;
	/* Idle timeouts of flows, in seconds (config limits); 0 falls back to defaults. */
	__u32 tcp_idle_timeout;
	__u32 tcp_transitory_timeout;
	__u32 udp_idle_timeout;
	__u32 icmp_idle_timeout;
	/* Flows allowed before this generation pass NSGs whose flushConnection rules changed
	 * since: they are re-evaluated when nsg_flush says so. */
	__u32 flush_generation;
	__u32 pad;
};

/* Azure's idle timeouts, the defaults of the config's limits (seconds). */
#define FLOW_TCP_IDLE_TIMEOUT_DEFAULT        240
#define FLOW_TCP_TRANSITORY_TIMEOUT_DEFAULT  30 /* half-open and closing TCP */
#define FLOW_UDP_IDLE_TIMEOUT_DEFAULT        240
#define FLOW_ICMP_IDLE_TIMEOUT_DEFAULT       30

static inline __attribute__((always_inline)) __u64 seconds_or_default_ns(__u32 configured,
									 __u32 fallback)
{
	return (configured ? configured : fallback) * NS_PER_SECOND;
}

/* How long a flow may be idle before it ends: the datapath judges a packet by it and the
 * collector (user/observe/flows.c) removes by it, so both read this one definition. No settings
 * (NULL): the defaults, with no zeroed copy on the datapath's stack. Protocol numbers are
 * written out: the two sides take IPPROTO_* from different headers. */
static inline __attribute__((always_inline)) __u64
flow_timeout_ns(__u8 proto, __u8 tcp_state, const struct gateway_settings *s)
{
	switch (proto) {
	case 6: /* TCP */
		if (tcp_state == TCP_FLOW_ESTABLISHED)
			return seconds_or_default_ns(s ? s->tcp_idle_timeout : 0,
						     FLOW_TCP_IDLE_TIMEOUT_DEFAULT);
		return seconds_or_default_ns(s ? s->tcp_transitory_timeout : 0,
					     FLOW_TCP_TRANSITORY_TIMEOUT_DEFAULT);
	case 1:  /* ICMP */
	case 58: /* ICMPv6 */
		return seconds_or_default_ns(s ? s->icmp_idle_timeout : 0,
					     FLOW_ICMP_IDLE_TIMEOUT_DEFAULT);
	default:
		return seconds_or_default_ns(s ? s->udp_idle_timeout : 0,
					     FLOW_UDP_IDLE_TIMEOUT_DEFAULT);
	}
}

/* ---- Live events (bpf/monitor.h, `vnet-xdp monitor`) ---------------------------------
 * The datapath writes events into a ring buffer only while a monitor says it listens
 * (monitor_control.listening_until_ns, renewed by the monitor every second, so a monitor
 * that dies stops the events within two seconds), at most events_per_second per CPU; what
 * the bound or a full ring left out is counted per CPU in monitor_budget. */
enum monitor_event_type {
	MONITOR_DROP = 1,           /* a packet dropped, with its reason */
	MONITOR_FLOW_BEGIN,         /* the NSGs allowed a new flow */
	MONITOR_FLOW_END,           /* a TCP flow closed (FIN both ways, or RST) */
	MONITOR_SNAT_EXHAUSTED,     /* a drop because SNAT had no port or mapping left */
};

#define MONITOR_RING_BYTES (512 * 1024)
#define MONITOR_DEFAULT_RATE 20000 /* events per second per CPU */

struct monitor_event {
	__u64 time_ns;       /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 type;          /* enum monitor_event_type */
	__u32 drop_reason;   /* enum drop_reason; DROP_NONE for flow events */
	__u32 ifindex;       /* where the packet came in; 0 for flow end */
	__u16 src_vnet, dst_vnet; /* NSG_VNET_NONE: outside every VNet or not known */
	__u32 nsg_id, rule_id;    /* the NSG rule that decided, NSG_NONE where none did */
	__u32 len;
	__u8 family, proto;
	__u16 sport, dport;  /* host order; ICMP: type and code */
	__u8 pad[2];
	__u8 src[16], dst[16];
	__u64 packets[2], bytes[2]; /* flow end: from the initiator, from the responder */
};

struct monitor_control {
	__u64 listening_until_ns; /* bpf_ktime_get_ns() */
	__u32 events_per_second;  /* per CPU; 0: MONITOR_DEFAULT_RATE */
	__u32 pad;
};

struct monitor_budget {
	__u64 window_start_ns;
	__u64 sent;        /* in this one-second window */
	__u64 rate_limited; /* ever, left out by the per-CPU bound */
	__u64 ring_full;    /* ever, left out because the ring had no room */
};

/* ---- Map fill (bpf/map_entries.bpf.c) ------------------------------------------------ */

/* What the bpf_map iterator writes per map: the kernel's own count of its entries (hash
 * maps; other types count 0). */
struct map_entry_count {
	__u32 id;
	__u32 pad;
	__s64 entries;
};

#endif

/* The datapath plan: what the config means for the BPF maps, computed without touching
 * the kernel so that it can be tested and shown (`routes`) on its own. */
#ifndef VNET_XDP_PLAN_H
#define VNET_XDP_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config/config.h"
#include "compile/tunnel_plan.h"
#include "vnet_xdp.h"

struct plan_interface {
	uint32_t ifindex;
	struct interface_info info;
	const char *name;
};

struct plan_prefix_entry {
	struct lpm_key key;
	struct source_info info;
};

/* Where a route comes from, as Azure's effective routes name it; at equal prefix the
 * higher one wins (Azure: user beats BGP beats system). Gateway routes (a local network
 * gateway's prefixes, later BGP's) sit between. */
enum route_source { ROUTE_SOURCE_DEFAULT = 0, ROUTE_SOURCE_GATEWAY, ROUTE_SOURCE_BGP,
		    ROUTE_SOURCE_USER };

struct plan_route {
	struct lpm_key key;
	struct route_info info;
	struct ip_prefix prefix; /* the same prefix, for display */
	uint32_t src_vnet;       /* the VNet whose route it is */
	int subnet;              /* the subnet whose table holds it, CONFIG_NONE: the VNet's */
	enum route_source source;
	bool active;             /* selected (in the datapath's map); false: another route of
				  * the same prefix won, Azure's Invalid */
	bool overridden;         /* a reserved None route a user's 0.0.0.0/0 sets aside */
	const char *table_name;  /* a user route's route table and route name, else NULL */
	const char *route_name;
	struct ip_address next_hop_ip; /* VirtualAppliance: nextHopIpAddress; BGP: the peer */
	const char *as_path;     /* BGP: the path the provider announced, else NULL */
	const char *connection;  /* BGP: the ExpressRoute connection that learned it */
	size_t order;            /* the order routes were found in, for display */
};

/* One entry of nic_sources (struct nic_key). */
struct plan_nic_source {
	struct nic_key key;
	struct nic_info info;
};

/* One counter slot per directed, connected peering bound on this gateway. */
struct plan_peering {
	uint32_t vnet, remote_vnet;
	const char *vnet_name, *remote_vnet_name, *peering_name;
};

/* A prefix an ExpressRoute link's bgpd learned (user/datapath/bgp.c reads them). */
struct plan_learned_route {
	size_t binding;          /* index into cfg->express_route_bindings */
	struct ip_prefix prefix;
	const char *as_path;     /* NULL: none given */
};

/* What the ExpressRoute links are at the time of the plan: each binding's VLAN device
 * (0 when missing) and the prefixes the sessions learned. */
struct plan_learned {
	const uint32_t *link_ifindexes; /* [cfg->n_express_route_bindings] */
	const struct plan_learned_route *routes;
	size_t n_routes;
};

/* One ExpressRoute link as the datapath runs it: a tunnel without ESP on its VLAN device,
 * routes of type VirtualNetworkGateway (source BGP) to what it learned, via the peer. */
struct plan_express_route {
	uint32_t id;             /* EXPRESS_ROUTE_TUNNEL_ID(binding) */
	size_t binding;
	uint32_t ifindex;        /* the VLAN device; 0: missing, nothing routed */
	uint32_t vnet;           /* the VNet of the connection's gateway */
	const char *connection, *interface;
	uint8_t local[4], peer[4]; /* the /30's second (ours) and first address */
	struct plan_learned_route *learned; /* this link's, of IPv4 */
	size_t n_learned;
};

struct plan {
	struct plan_interface *interfaces;
	size_t n_interfaces;
	struct plan_prefix_entry *source_prefixes;
	size_t n_source_prefixes;
	struct plan_route *routes;
	size_t n_routes;
	struct plan_peering *peerings;
	size_t n_peerings;
	struct tunnel *tunnels;  /* the connections this box terminates (compile/tunnel_plan.h) */
	size_t n_tunnels;
	struct plan_express_route *express_routes; /* one per gateway.expressRouteConnections */
	size_t n_express_routes;
	struct plan_nic_source *nic_sources; /* NICs known by their MAC (user/compile/plan_nics.c) */
	size_t n_nic_sources;
	/* The settings map but its generation (datapath_write_plan stamps it): what the NSG
	 * plan says of flows (nsg_plan_settings), zero until set. */
	struct gateway_settings settings;
};

/* ifindexes[i] is the kernel's index of cfg->ifaces[i]. The xfrm interfaces of tunnels
 * are found by name (index 0 while they do not exist). Returns 0 or -errno. */
int plan_build(const struct config *cfg, const uint32_t *ifindexes, struct plan *out);
void plan_free(struct plan *plan);
/* The same with the ExpressRoute links' learned prefixes (NULL: none learned, devices
 * found by name): a learned prefix is a route of every scope of the gateway's VNet and of
 * its transit spokes, but those whose route table has disableBgpRoutePropagation; a user
 * route of the same prefix wins over it, it wins over a local network gateway's prefix
 * and the system routes; it is a source the link's tc ingress accepts. */
int plan_build_learned(const struct config *cfg, const uint32_t *ifindexes,
		       const struct plan_learned *learned, struct plan *out);

/* A peering's counter slot from before a reload. */
struct plan_slot_hint {
	const char *vnet_name, *remote_vnet_name;
	uint32_t slot;
};
/* Gives each peering that existed before the slot it had, so its counters carry on, and
 * new peerings slots that no earlier peering held. Slots left empty keep a zero entry
 * (vnet_name NULL). fresh[slot] tells which slots are new. Returns 0 or -errno. */
int plan_keep_peering_slots(struct plan *plan, const struct plan_slot_hint *hints,
			    size_t n_hints, bool *fresh, size_t fresh_size);

/* user/compile/plan_nics.c: the NICs with a macAddress behind each interface, with their
 * addresses, into plan->nic_sources. Returns 0 or -errno. */
int plan_nic_sources(struct plan *plan, const struct config *cfg, const uint32_t *ifindexes);
/* INTERFACE_FLAG_NICS_BY_MAC when every NIC behind the interface (one at least) has a MAC. */
uint32_t plan_interface_flags(const struct config *cfg, const struct config_gateway_iface *iface);
/* The address (of family) of the one NIC with enableIPForwarding behind the interface:
 * whose NSGs judge what is forwarded there. False when none or several. */
bool plan_sole_forwarder(const struct config *cfg, const struct config_gateway_iface *iface,
			 uint8_t family, uint8_t addr[16]);

void lpm_key_from_prefix(struct lpm_key *key, uint32_t scope, const struct ip_prefix *prefix);
const char *route_type_name(uint32_t type);
const char *route_source_name(enum route_source source);
/* Azure's state of a route: Active, or Invalid (overridden, or its next hop unreachable). */
const char *route_state_name(const struct plan_route *route);
/* The route the datapath's trie of `scope` selects for address: the longest active
 * prefix holding it; NULL when none does. */
const struct plan_route *plan_route_lookup(const struct plan *plan, uint32_t scope,
					   const struct ip_address *address);
/* Whether the VNet's subnets each have a route scope of their own (some has a table). */
bool vnet_has_subnet_scopes(const struct config *cfg, uint32_t vnet);

#endif

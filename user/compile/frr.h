/* ExpressRoute private peering as FRR sees it: one bgpd per bound link, configured by
 * an frr.conf computed here from the config alone (pure: no file, no process). The
 * life cycle of that bgpd is user/datapath/bgp.c. */
#ifndef VNET_XDP_COMPILE_FRR_H
#define VNET_XDP_COMPILE_FRR_H

#include <stdint.h>
#include "config/config.h"

/* One link of gateway.expressRouteConnections, resolved. */
struct bgp_link {
	const char *connection;          /* the ExpressRoute connection's name */
	const char *interface;           /* the VLAN device facing the provider */
	enum express_route_link link;
	uint16_t vlan_id;                /* the circuit's private peering's */
	uint32_t local_asn, peer_asn;    /* the VNet gateway's (65515 unless set), the provider's */
	uint8_t local[4], peer[4];       /* the /30's second address (ours) and first */
	uint8_t prefix_len;              /* 30 */
	uint16_t hold_time_seconds;
	struct ip_prefix *advertised;    /* the VNet's spaces and its transit spokes' */
	size_t n_advertised;
};

/* Link `binding` of cfg->express_route_bindings into *out (free with bgp_link_release).
 * 0, -EINVAL when the binding lacks its circuit or peering, -ENOMEM. */
int bgp_link_of(const struct config *cfg, size_t binding, struct bgp_link *out);
void bgp_link_release(struct bgp_link *link);

/* frr.conf for one link: a NUL-terminated string the caller frees, or NULL (ENOMEM). */
char *frr_conf_build(const struct bgp_link *link);

#endif

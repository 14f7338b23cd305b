/* ExpressRoute forwarding: each link of gateway.expressRouteConnections is a tunnel
 * without ESP. Its VLAN device is in tunnel_interfaces and runs the tunnels' tc programs
 * (what the provider sends takes the decrypted packets' pipeline: the source among the
 * learned prefixes, the gateway's VNet and transit spokes, their inbound NSGs, the flow
 * table); the VNets' routes of source BGP send what is for a learned prefix to the
 * kernel, whose routes (main table, protocol bgp) lead via the provider's address out
 * of the VLAN device. What bgpd learns and withdraws follows map entry by map entry
 * (express_route_sync), never by a reload. */
#ifndef VNET_XDP_DATAPATH_EXPRESS_ROUTE_H
#define VNET_XDP_DATAPATH_EXPRESS_ROUTE_H

#include <stdbool.h>
#include <jansson.h>
#include "compile/plan.h"
#include "datapath/attach.h"
#include "datapath/maps.h"

/* plan_build with what the gateway's bgpd sessions learned now (none while no bgpd
 * runs). With as_paths, the routes keep their AS paths, which live in *as_paths until the
 * caller lets it go (json_decref); without, they have none. 0 or -errno. */
int express_route_plan_build(const struct config *cfg, const uint32_t *ifindexes,
			     struct plan *out, json_t **as_paths);
/* The links' entries of tunnel_interfaces (after tunnel_maps_write, which clears it) and
 * our /30 addresses in local_addresses (bgpd's session is the kernel's). */
int express_route_maps_write(const struct datapath_maps *maps, const struct plan *plan);
/* up and reload: the generation's tc programs on each link's VLAN device. */
int express_route_attach(const struct xdp_generation *gen, const char *pin_dir,
			 const struct plan *plan);
/* Brings the datapath to what bgpd learned now: the routes and source_prefixes entries
 * of learned prefixes (added, changed, removed one by one) and the kernel's routes.
 * *changes (may be NULL) counts the prefixes that came or went. 0 or -errno. */
int express_route_sync(const struct config *cfg, unsigned *changes);
/* down (before bgp_stop, while bgpd's records say which devices): our tc programs off
 * the VLAN devices, our kernel routes removed. */
void express_route_stop(const char *gateway);
/* reload: the links of the running gateway that the new config no longer has, as
 * express_route_stop does for all. */
void express_route_stop_others(const char *gateway, const struct plan *plan);

/* serve: express_route_sync every second, with the config of the gateway's state (read
 * again when a reload changed its generation). */
struct express_route_poller {
	char gateway[128];
	struct config *cfg;
	long long generation;
};
void express_route_poll(struct express_route_poller *poller);
void express_route_poller_free(struct express_route_poller *poller);

#endif

/* bgpd for the gateway's ExpressRoute links: one FRR bgpd per link of
 * gateway.expressRouteConnections, each with its own directory
 * /run/vnet-xdp-bgp/GATEWAY/linkN (0700: frr.conf 0600, pid file, vty socket), listening
 * on its own /30 address only, so that two gateways and the system's frr do not meet. */
#ifndef VNET_XDP_DATAPATH_BGP_H
#define VNET_XDP_DATAPATH_BGP_H

#include <jansson.h>
#include "config/config.h"

#define BGP_RUN_ROOT "/run/vnet-xdp-bgp"
#define BGPD_PATH "/usr/lib/frr/bgpd"
#define VTYSH_PATH "/usr/bin/vtysh"

/* `up`: checks each link's VLAN device (present, 802.1Q, the circuit's VLAN id), puts our
 * /30 address on it, writes frr.conf and starts bgpd. On failure nothing of it is left
 * running. 0 or -errno, one line logged per problem. */
int bgp_start(const struct config *cfg);
/* `reload`: a link whose frr.conf is unchanged keeps its bgpd; others restart; links
 * gone are stopped. */
int bgp_reload(const struct config *cfg);
/* `down`: stops every bgpd of the gateway and removes its addresses and directory. */
void bgp_stop(const char *gateway);
/* bgpPeers of status and stats: [{connection, peer, asn, state, routesAdvertised,
 * routesLearned, uptime, ...}], empty without links. */
json_t *bgp_peers(const char *gateway);
/* The prefixes each link learned: [{connection, prefix, nextHop, asPath}]. */
json_t *bgp_learned_routes(const char *gateway);

#endif

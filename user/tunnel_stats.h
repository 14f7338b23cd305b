/* Per-tunnel counters for `stats` and the metrics: the datapath's (tunnel_counters,
 * tunnel_spi_counters), the kernel's SA statistics (replay, integrity failures) and
 * whether charon has the tunnel's SAs up. */
#ifndef VNET_XDP_TUNNEL_STATS_H
#define VNET_XDP_TUNNEL_STATS_H

#include <jansson.h>

/* Adds "tunnels" [{name, ingressBytes, ingressPackets, egressBytes, egressPackets,
 * espPackets, espBytes, spis: [{spi, packets, bytes}], replayErrors, integrityFailures,
 * up}] and "tunnelDrops" [{tunnel, direction, reason, packets, bytes}] to doc, for the
 * tunnels the state names. */
void tunnel_stats_add(const char *gateway, json_t *state, json_t *doc);

/* One IKE SA of charon's list-sa event: whether it is established with an installed
 * CHILD SA. */
int swanctl_sa_is_up(const json_t *ike_sa);

#endif

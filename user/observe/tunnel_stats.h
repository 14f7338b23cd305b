/* Per-tunnel counters for `stats` and the metrics: the datapath's (tunnel_counters,
 * tunnel_spi_counters), the kernel's SA statistics (replay, integrity failures) and
 * whether charon has the tunnel's SAs up. */
#ifndef VNET_XDP_TUNNEL_STATS_H
#define VNET_XDP_TUNNEL_STATS_H

#include <stdio.h>
#include <jansson.h>
#include "datapath/tunnel_ike.h"

/* Adds "tunnels" [{name, ingressBytes, ingressPackets, egressBytes, egressPackets,
 * espPackets, espBytes, spis: [{spi, packets, bytes}], replayErrors, integrityFailures,
 * up, state}] and "tunnelDrops" [{tunnel, direction, reason, packets, bytes}] to doc, for the
 * tunnels the state names. */
void tunnel_stats_add(const char *gateway, json_t *state, json_t *doc);

/* [{name, interface, peer, state}] of the tunnels the state names, for `status`, and
 * their lines in its text ("tunnels:" then one a tunnel; nothing without tunnels). */
json_t *tunnel_status(json_t *state);
void tunnel_status_print(FILE *out, const json_t *tunnels);

#endif

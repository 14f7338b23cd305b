/* SNAT as operators see it: ports in use and counters per VIP. */
#ifndef VNET_XDP_OBSERVE_SNAT_STATS_H
#define VNET_XDP_OBSERVE_SNAT_STATS_H

#include <jansson.h>

/* Ports in use per VIP, {"VIP": count}, a port cooling down included: a walk of the
 * reverse table, so its cost grows with the live mappings (about a second at a million).
 * serve counts it in the background (see stats_collect_slow). */
json_t *snat_ports_in_use(const char *gateway);
/* The "snat" member of the stats document: per VIP {vip, portsInUse, portsTotal, flows,
 * portExhausted, egressPackets, egressBytes, ingressPackets, ingressBytes}; portsInUse
 * from ports_in_use (snat_ports_in_use's object), counted now when it is NULL. */
json_t *snat_stats_json(const char *gateway, json_t *ports_in_use);

#endif

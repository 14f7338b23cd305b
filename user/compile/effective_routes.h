/* The routes and peerings a config gives each VNet, as `routes`, `verify` and `status`
 * show them. */
#ifndef VNET_XDP_EFFECTIVE_ROUTES_H
#define VNET_XDP_EFFECTIVE_ROUTES_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "compile/plan.h"
#include "config/config.h"

/* `vnet-xdp routes`: the effective routes of one VNet in the plan, as
 * [{addressPrefix, nextHopType, interface, virtualNetwork}], and as a table. */
json_t *effective_routes_json(const struct config *cfg, const struct plan *plan,
			      const uint32_t *ifindexes, int vnet);
/* The effective routes of NIC nic: its subnet's (the VNet's where the subnet has no scope
 * of its own), in the shape of effective_routes_json. */
json_t *effective_nic_routes_json(const struct config *cfg, const struct plan *plan,
				  const uint32_t *ifindexes, int nic);
void effective_routes_text(FILE *out, json_t *routes);
/* One route as `routes -j` shows it (subnet, source, state, prefix, next hop, names). */
json_t *effective_route_json(const struct config *cfg, const struct plan_route *route,
			     const uint32_t *ifindexes);

/* The peerings of VNet vnet (CONFIG_NONE: of every VNet) as Azure shows them, with its
 * peeringState, the flags, and where traffic flows: trafficToRemote (the remote side
 * allows access) and trafficFromRemote (this side does), only when Connected. */
json_t *effective_peerings_json(const struct config *cfg, int vnet);
void effective_peerings_text(FILE *out, json_t *peerings);

#endif

/* The stateful NSG flow table seen from user space: the listing of `vnet-xdp flows`, its counters for
 * `stats` and metrics, and the garbage collection of idle flows that `serve` runs. */
#ifndef VNET_XDP_FLOWS_H
#define VNET_XDP_FLOWS_H

#include <stdint.h>
#include <jansson.h>

#include "observe/flow_filter.h"
#include "vnet_xdp.h"

/* One flow as it stands: its entry's counts with what the fast path holds for it. */
typedef void (*flow_visit_fn)(void *ctx, const struct flow_key *key, const struct flow_entry *f);

/* Deletes every flow idle past its timeout (the datapath's own rule: see flow_timeout_ns
 * in bpf/flow.h) and counts them as gcRemoved. `removed` (may be NULL) is told of each
 * flow, with its final counts, just before it is deleted (the flow log's End records).
 * Returns the number removed or -errno. */
long flows_gc(const char *gateway, flow_visit_fn removed, void *ctx);
/* Calls `visit` for every flow of both tables; returns 0 or -ENOENT. */
int flows_foreach(const char *gateway, flow_visit_fn visit, void *ctx);
/* {"active", "created", "hit", ..., "evicted"} for stats; NULL when the maps are missing. */
json_t *flows_stats(const char *gateway);
/* [{nsg, rule, direction, access, priority, hits, packets, bytes}] of the rules in force. */
json_t *nsg_rule_stats(const char *gateway);
/* What the STATE column shows and --state matches, NULL-terminated: an expired flow is
 * expired whatever its TCP state. */
extern const char *const flow_states[];
/* The flows the filter keeps, as `flows -j` prints them. */
json_t *flows_list(const char *gateway, const struct flow_filter *filter);

#endif

/* Counters read from the pinned maps, as one JSON document that every output format
 * (text, JSON, Prometheus exposition in metrics.h) is rendered from.
 *
 * The document:
 *   gateway, version, generation
 *   datapath  [{action, packets, bytes}]          what the XDP program did, per-CPU summed
 *   drops     [{reason, packets, bytes}]          drops by reason
 *   peerings  [{name, vnet, remoteVnet, packets, bytes}]
 *   maps      [{name, type, entries, maxEntries, memlockBytes}] every pinned map of the
 *             gateway; memlockBytes is the kernel memory its fdinfo says it takes
 * A feature's datapath adds its member (tunnels, nsgRuleHits, snat, flows) when it lands;
 * metrics.c already names the families they feed. */
#ifndef VNET_XDP_STATS_H
#define VNET_XDP_STATS_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

/* Returns a new document for the gateway, or NULL with errno set (ENOENT: not up).
 * Reads the maps afresh; safe to call from several threads at once. */
json_t *stats_collect(const char *gateway);
/* The figures that cost a walk, alone: SNAT ports in use (the reverse table, which grows
 * with the live flows) and the entries of maps the kernel does not count (LPM tries),
 * {"snatPortsInUse": {VIP: count}, "mapEntriesWalked": {map: count}}, or NULL with errno
 * set. serve refreshes them in the background, so that a scrape walks nothing. */
json_t *stats_collect_slow(const char *gateway);
/* stats_collect with those figures taken from slow; NULL: counted now. */
json_t *stats_collect_with(const char *gateway, json_t *slow);
void stats_print_text(FILE *out, json_t *stats);

/* Entries in a map: hash maps as the kernel counts them (map_entries.h; their keys are
 * walked on kernels before 6.6), LPM maps by walking their keys, arrays hold max_entries
 * by definition. Returns the count or -errno (-EOPNOTSUPP: no keys). */
long long stats_map_entries(int map_fd);


#endif

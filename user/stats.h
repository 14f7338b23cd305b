/* Counters read from the pinned maps, as one JSON document that every output format
 * (text, JSON, Prometheus exposition) is rendered from. */
#ifndef VNET_XDP_STATS_H
#define VNET_XDP_STATS_H

#include <stdio.h>
#include <jansson.h>

/* Returns a new document for the gateway, or NULL with errno set. */
json_t *stats_collect(const char *gateway);
void stats_print_text(FILE *out, json_t *stats);
void stats_print_prometheus(FILE *out, json_t *stats);

/* `vnet-xdp stats`: returns the exit code. */
int stats_main(int argc, char **argv);

#endif

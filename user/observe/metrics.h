/* Prometheus text exposition (format 0.0.4) of a stats document (see stats.h).
 *
 * Every family is one row of a table: its name, type, help, where its samples sit in
 * the stats document and which members become labels. A family whose member the
 * document lacks is left out entirely, so a datapath feature that has not landed yet
 * shows no invented values; when it lands, stats_collect() fills its member and the
 * family appears. */
#ifndef VNET_XDP_METRICS_H
#define VNET_XDP_METRICS_H

#include <stdio.h>
#include <jansson.h>

#ifndef VNET_XDP_VERSION
#define VNET_XDP_VERSION "0.1.0"
#endif

/* The file a textfile collector (node_exporter) reads, inside the --textfile DIR. */
#define METRICS_TEXTFILE_NAME "vnet_xdp.prom"
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Writes every family the document has. */
void metrics_render(FILE *out, json_t *stats);
/* The same into a new malloc'd, NUL-terminated buffer; NULL when out of memory. */
char *metrics_render_text(json_t *stats, size_t *length);
/* Writes DIR/vnet_xdp.prom atomically: a temporary file in DIR, then rename.
 * Returns 0 or -errno. */
int metrics_write_textfile(const char *dir, json_t *stats);

#endif

/* What `flows` and `snat` keep of their tables, filtered as `conntrack -L` filters:
 * --src/--dst ADDR[/LEN], --sport/--dport PORT, --proto tcp|udp|icmp|icmpv6|N,
 * --vnet NAME, --state STATE. Every filter given must match; none given keeps all. */
#ifndef VNET_XDP_FLOW_FILTER_H
#define VNET_XDP_FLOW_FILTER_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config/config.h"

struct flow_filter {
	struct ip_prefix src, dst; /* family 0: any */
	int sport, dport;          /* -1: any */
	int proto;                 /* -1: any */
	const char *vnet;          /* NULL: any; matches the source's or the destination's */
	const char *state;         /* NULL: any */
};

/* One entry of a table as the filter sees it; the initiator's side is the source. */
struct flow_filter_entry {
	uint8_t family, proto;
	const uint8_t *src, *dst; /* network byte order */
	int sport, dport;         /* -1: the protocol has no ports (ICMP's echo id is not one) */
	const char *vnets[2];     /* source's and destination's VNet; NULL where none */
	const char *state;
};

/* The options, in the order of flow_filter_option_names (their long names). */
enum flow_filter_option {
	FLOW_FILTER_SRC, FLOW_FILTER_DST, FLOW_FILTER_SPORT, FLOW_FILTER_DPORT,
	FLOW_FILTER_PROTO, FLOW_FILTER_VNET, FLOW_FILTER_STATE, FLOW_FILTER_COUNT
};
extern const char *const flow_filter_option_names[FLOW_FILTER_COUNT];

/* The filter options as getopt_long entries, for every command that filters (flows, snat,
 * monitor): their values lie past every character. Appends them (--state only when
 * with_state) to opts from n, which has room for FLOW_FILTER_COUNT more and the end
 * entry, and ends the table; returns the new n. */
#define FLOW_FILTER_GETOPT(o) (0x100 + (o))
size_t flow_filter_longopts(struct option *opts, size_t n, bool with_state);
/* One option getopt_long returned: 1 when c is no filter option; else what flow_filter_set
 * says of value. */
int flow_filter_getopt(struct flow_filter *f, const char *command, int c, const char *value,
		       const char *const *states);

void flow_filter_init(struct flow_filter *f);
/* Sets the filter of OPTION from VALUE; states is
 * the NULL-terminated list of what --state may be. 0, or -EINVAL after one line on stderr
 * naming the command, the option and what it takes. */
int flow_filter_set(struct flow_filter *f, const char *command, enum flow_filter_option option,
		    const char *value,
		    const char *const *states);
bool flow_filter_match(const struct flow_filter *f, const struct flow_filter_entry *e);

/* How the tables write an entry: the protocol by the name --proto takes (NULL for one
 * without a name), an end as ADDR, ADDR:PORT or [ADDR]:PORT. */
const char *flow_protocol_name(uint8_t proto);
void flow_endpoint_text(uint8_t family, const uint8_t *addr, uint16_t port, bool with_port,
			char *buf, size_t size);

#endif

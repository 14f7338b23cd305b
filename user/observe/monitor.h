/* The live events of a gateway: drops, flows and SNAT exhaustion from the datapath's ring
 * buffer (bpf/monitor.h), as text or JSON lines, filtered. */
#ifndef VNET_XDP_MONITOR_H
#define VNET_XDP_MONITOR_H

#include <stdbool.h>
#include "observe/flow_filter.h"

struct monitor_options {
	const char *name;
	bool json;
	unsigned types;      /* bit per enum monitor_event_type; 0: every type */
	int reason;          /* -1: any */
	struct flow_filter filter;
	long count;          /* exit after this many events shown; 0: never */
	double timeout;      /* exit after this many seconds; 0: never */
	unsigned rate;       /* events per second per CPU; 0: the datapath's default */
};

/* The enum monitor_event_type of a name ("drop", "flow-begin", ...), or -1. */
int monitor_event_type_of_name(const char *name);

/* Shows the events of gateway (its pins exist) that o keeps, while it says the datapath
 * should send them, until o's count or timeout, or SIGINT or SIGTERM. One monitor per
 * gateway. Returns 0, or -errno after logging one line. */
int monitor_follow(const char *gateway, const struct monitor_options *o);

#endif

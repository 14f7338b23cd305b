/* Flow logs in Azure's VNet flow log format (gateway.flowLogs), written by `serve`: every
 * interval one JSON document of records[].flowRecords.flows[].flowGroups[].flowTuples,
 * into hourly folders (y=/m=/d=/h=/m=00) under the directory, within a size bound.
 * Begin, Continuing (the counts since the last record) and End come from the flow tables
 * and their garbage collection; Denied from the datapath's drop events. */
#ifndef VNET_XDP_FLOW_LOG_H
#define VNET_XDP_FLOW_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>
#include "compile/nsg.h"
#include "config/config.h"
#include "vnet_xdp.h"

/* Where Azure's resource ids of the records point: the gateway has no subscription. */
#define FLOW_LOG_RESOURCE_GROUP "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/vnet-xdp"
/* aclID and rule of a flow that passed no NSG on its side. */
#define FLOW_LOG_NO_NSG_ACL "00000000-0000-0000-0000-000000000000"
#define FLOW_LOG_NO_NSG_RULE "NoNetworkSecurityGroup"

struct config_flow_logs;

/* Creates the directory (0750, root's) when missing; refuses a symbolic link, a file, one
 * that is writable by others. Returns 0 or -errno, having logged why. */
int flow_log_directory_prepare(const char *path);

/* One flow tuple, by ids; names come from flow_log_names when the document is made. */
struct flow_log_tuple {
	uint64_t time_ms;               /* Unix epoch, milliseconds */
	uint8_t family, proto;
	uint8_t src[16], dst[16];       /* the initiator is the source */
	uint16_t sport, dport;          /* 0 for ICMP */
	char direction;                 /* 'I' or 'O', seen from the target VNet */
	char state;                     /* 'B', 'C', 'E' or 'D' */
	uint16_t vnet;                  /* the target: the VNet the record is of */
	uint32_t nsg_id, rule_id;       /* NSG_NONE: no NSG on this side */
	uint64_t packets[2], bytes[2];  /* source to destination, destination to source */
};

struct flow_log_names {
	const char *gateway;
	json_t *vnets;                  /* VNet names by index (the state's virtualNetworks) */
	json_t *macs;                   /* {VNET: "00155D012345"}: its interface's MAC */
	const struct nsg_ids *ids;
};

/* "1700000000000,10.1.0.4,10.2.0.4,40000,80,6,O,B,NX,0,0,0,0" */
void flow_log_tuple_text(const struct flow_log_tuple *t, char *buf, size_t size);
/* The rule as Azure's flow logs name it: UserRule_NAME, DefaultRule_NAME. */
void flow_log_rule_text(const struct flow_log_names *names, uint32_t rule_id, char *buf,
			size_t size);
/* {"records": [...]}: one record per target VNet in order of first appearance, its flows
 * per aclID, its flowGroups per rule, tuples in the order given. Tuples of a VNet the
 * names do not know are left out. */
json_t *flow_log_document(const struct flow_log_names *names, const struct flow_log_tuple *t,
			  size_t n, struct timespec now);

/* ---- What a flow becomes (pure: no maps, no files) --------------------------------------- */

struct flow_log_tracker;

struct flow_log_tracker *flow_log_tracker_new(void);
void flow_log_tracker_free(struct flow_log_tracker *t);
/* A pass over the flow tables begins: flows not seen again by flow_log_pass_end vanished. */
void flow_log_pass_begin(struct flow_log_tracker *t);
/* One flow as it stands now: Begin when new, Continuing with what changed, End once a
 * closed TCP flow has been quiet for a second. `now_ns` is the datapath's clock,
 * `realtime_offset_ns` turns it into wall time. */
void flow_log_seen(struct flow_log_tracker *t, const struct flow_key *k, const struct flow_entry *f,
		   uint64_t now_ns, int64_t realtime_offset_ns);
/* The garbage collection deletes the flow: End with its final counts. */
void flow_log_removed(struct flow_log_tracker *t, const struct flow_key *k, const struct flow_entry *f,
		      uint64_t now_ns, int64_t realtime_offset_ns);
/* Flows gone from the tables without the GC (an LRU table evicted them, the datapath
 * replaced an expired one): End, with no counts since the last record (they are lost). */
void flow_log_pass_end(struct flow_log_tracker *t, uint64_t now_ns, int64_t realtime_offset_ns);
/* A denied packet (a drop event): one Denied tuple per 5-tuple and rule per interval, its
 * packets summed; false when the per-second bound leaves a new tuple out. */
bool flow_log_denied(struct flow_log_tracker *t, const struct monitor_event *e, uint32_t per_second,
		     int64_t realtime_offset_ns);
/* The tuples made since the last take; the caller frees *out. */
size_t flow_log_take(struct flow_log_tracker *t, struct flow_log_tuple **out);

/* ---- The writer in `serve` --------------------------------------------------------------- */

struct flow_log;

/* Starts the writer's thread; NULL (logged) when it cannot. */
struct flow_log *flow_log_start(const char *gateway, const struct config_flow_logs *settings);
/* Writes what is pending and stops. */
void flow_log_stop(struct flow_log *fl);
/* The GC's report of a flow it deletes (a flow_visit_fn; ctx is the flow log). */
void flow_log_flow_removed(void *ctx, const struct flow_key *k, const struct flow_entry *f);
/* Adds "flowLogRecords" [{state, records}] and "flowLogDropped" [{reason, records}]. */
void flow_log_stats(struct flow_log *fl, json_t *stats);
/* Whether these settings are the running ones. */
bool flow_log_settings_equal(const struct flow_log *fl, const struct config_flow_logs *settings);

#endif

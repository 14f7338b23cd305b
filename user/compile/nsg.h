/* Network security groups compiled for the datapath's bit-vector classifier, and the
 * stable ids that name NSGs and rules across reloads and loader restarts.
 *
 * A table is one NSG in one direction as seen from one VNet (the VirtualNetwork tag
 * means that VNet's space, its peers' spaces and the on-premises prefixes its gateway
 * reaches). Its rules, sorted by priority, are the bits of every vector:
 *   nsg_addresses  LPM per (table, side): prefix -> rules whose source (destination)
 *                  prefixes hold every address the entry stands for
 *   nsg_ports      LPM per (table, side) over the port -> elementary interval id
 *   nsg_port_intervals  interval id -> rules whose ranges cover the interval
 *   nsg_protocols  (table, protocol class) -> rules of that protocol or *
 * plus the rule slots (priority, access, counter id) and the bindings of addresses to
 * their subnet's and NIC's NSGs. */
#ifndef VNET_XDP_NSG_H
#define VNET_XDP_NSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "config/config.h"
#include "vnet_xdp.h"

/* Stable ids, kept in STATE_ROOT/<gateway>.nsg-ids.json:
 *   {"countersMap": ID, "generation": N,
 *    "nsgs":  {NAME: {"id", "fingerprint", "flushGeneration"}},
 *    "rules": [{"id", "nsg", "direction", "rule", "access", "priority", "active"}]} */
struct nsg_ids {
	json_t *doc;
};

void nsg_ids_free(struct nsg_ids *ids);
/* The rule and NSG of stable ids, NULL when unknown (for verify and stats). */
json_t *nsg_ids_rule(const struct nsg_ids *ids, uint32_t rule_id);
const char *nsg_ids_nsg_name(const struct nsg_ids *ids, uint32_t nsg_id);

/* The AzureLoadBalancer tag: the host's health probe address. */
extern const struct ip_prefix nsg_azure_load_balancer;

/* The VirtualNetwork tag as seen from one VNet. *out is malloc'd. */
int nsg_virtual_network_prefixes(const struct config *cfg, int vnet, struct ip_prefix **out,
				 size_t *n);

/* ---- the compiled plan: nsg_plan_build (pure), nsg_plan_assign_ids, nsg_plan_write ----
 * Table 2p is pair p's inbound table, 2p + 1 its outbound one; a pair is an (NSG, VNet)
 * that some binding names. Every array of the plan is what one map gets. */
struct nsg_plan_address {      /* nsg_addresses */
	struct lpm_key key;    /* scope: table * 2 + side */
	struct nsg_bitmap bits;
};

struct nsg_plan_port {         /* nsg_ports */
	struct nsg_port_key key;
	uint32_t interval;     /* index into nsg_plan.intervals */
};

struct nsg_plan_table {        /* nsg_tables[t] and nsg_protocols[t * NSG_PROTO_CLASSES + c] */
	struct nsg_table info; /* nsg_id: NSG_NONE until nsg_plan_assign_ids */
	struct nsg_bitmap protocols[NSG_PROTO_CLASSES];
	int nsg, vnet;         /* the config's NSG and the VNet whose view it has */
};

struct nsg_plan_rule {         /* nsg_rules[slot] */
	struct nsg_rule slot;  /* rule_id: NSG_NONE until nsg_plan_assign_ids */
	int nsg;
	const struct config_security_rule *rule;
};

struct nsg_plan_binding {      /* nsg_bindings */
	struct lpm_key key;    /* scope: VNet id */
	struct nsg_binding binding;
};

struct nsg_plan_flush {        /* nsg_flush */
	uint32_t nsg_id, since;
};

struct nsg_plan {
	struct nsg_plan_address *addresses;
	size_t n_addresses;
	struct nsg_plan_port *ports;
	size_t n_ports;
	struct nsg_bitmap *intervals; /* nsg_port_intervals, by interval id */
	size_t n_intervals;
	struct nsg_plan_table *tables;
	size_t n_tables;
	struct nsg_plan_rule *rules;
	size_t n_rules;
	struct nsg_plan_binding *bindings;
	size_t n_bindings;
	/* From nsg_plan_assign_ids: */
	struct nsg_plan_flush *flushes;
	size_t n_flushes;
	uint32_t *fresh_rule_ids;     /* counter slots new to their rule: zeroed by the writer */
	size_t n_fresh_rule_ids;
	uint32_t flush_generation;    /* the newest of the flushes */
	/* Flow timeouts in seconds (limits, or Azure's defaults), for the settings. */
	uint32_t tcp_idle_timeout, tcp_transitory_timeout, udp_idle_timeout, icmp_idle_timeout;
};

/* Compiles the config's NSGs into the plan: no maps, no files, no ids. 0 or -errno (the
 * error said on stderr). */
int nsg_plan_build(const struct config *cfg, struct nsg_plan *plan);
void nsg_plan_free(struct nsg_plan *plan);
/* Gives the plan's tables and rules their stable ids from ids (updated in memory: new
 * ids, fingerprints, flush generations) for config generation `generation`. */
int nsg_plan_assign_ids(struct nsg_plan *plan, const struct config *cfg, struct nsg_ids *ids,
			uint32_t generation);
/* A fresh ids document, for a gateway without one (or a test without a gateway). */
int nsg_ids_init(struct nsg_ids *ids, uint32_t counters_map_id);
/* What the gateway's settings carry of the NSGs: flow timeouts, the flush generation.
 * datapath_write_plan is the one writer of `settings`. */
void nsg_plan_settings(const struct nsg_plan *plan, struct gateway_settings *s);

/* The flow table's size for a first load: limits.flowTableSize. */
uint32_t nsg_flow_table_size(const struct config *cfg);

#endif

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
#include "config.h"
#include "vnet_xdp.h"

/* Stable ids, kept in STATE_ROOT/<gateway>.nsg-ids.json:
 *   {"countersMap": ID, "generation": N,
 *    "nsgs":  {NAME: {"id", "fingerprint", "flushGeneration"}},
 *    "rules": [{"id", "nsg", "direction", "rule", "access", "priority", "active"}]} */
struct nsg_ids {
	json_t *doc;
};

int nsg_ids_load(const char *gateway, struct nsg_ids *ids);
int nsg_ids_save(const char *gateway, const struct nsg_ids *ids);
void nsg_ids_free(struct nsg_ids *ids);
void nsg_ids_path(const char *gateway, char *buf, size_t size);
/* The rule and NSG of stable ids, NULL when unknown (for verify and stats). */
json_t *nsg_ids_rule(const struct nsg_ids *ids, uint32_t rule_id);
const char *nsg_ids_nsg_name(const struct nsg_ids *ids, uint32_t nsg_id);

/* The AzureLoadBalancer tag: the host's health probe address. */
extern const struct ip_prefix nsg_azure_load_balancer;

/* The VirtualNetwork tag as seen from one VNet. *out is malloc'd. */
int nsg_virtual_network_prefixes(const struct config *cfg, int vnet, struct ip_prefix **out,
				 size_t *n);

/* Compiles the config's NSGs and writes them into the gateway's config maps (the staged
 * ones during a reload), the flow settings (timeouts, flushConnection generations) and the
 * ids file. Called for `up` and `reload` alike. Returns 0 or -errno. */
int nsg_fill(const struct config *cfg, const char *gateway, uint32_t generation);

/* The flow table's size for a first load: limits.flowTableSize. */
uint32_t nsg_flow_table_size(const struct config *cfg);

#endif

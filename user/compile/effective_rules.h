/* The effective security rules of a NIC or a subnet, as `az network nic
 * list-effective-nsg` shows them: each NSG that applies with its rules (custom and
 * default) in evaluation order, service tags, VirtualNetwork, Internet and application
 * security groups expanded to the prefixes the datapath compiles for them. Pure: built
 * from the config alone. */
#ifndef VNET_XDP_EFFECTIVE_RULES_H
#define VNET_XDP_EFFECTIVE_RULES_H

#include <stdio.h>
#include <jansson.h>
#include "config/config.h"

/* {"networkInterface", "subnet", "virtualNetwork", "value": [{"association":
 * {"networkInterface"|"subnet": NAME}, "networkSecurityGroup": NAME,
 * "effectiveSecurityRules": [...]}]}: value in inbound evaluation order (subnet, then
 * NIC; outbound runs NIC, then subnet). For a NIC nic >= 0; for a subnet nic is
 * CONFIG_NONE. NULL on -ENOMEM. */
json_t *effective_rules_json(const struct config *cfg, int nic, int vnet, int subnet);

/* The same as text: per direction, the NSGs in the order they are evaluated and their
 * rules, each address as written and what it stands for. */
void effective_rules_text(FILE *out, json_t *doc);

/* "VNET/SUBNET", or SUBNET when one VNet alone has it: 0 with *vnet and *subnet set, or
 * -ENOENT (no such subnet), -EEXIST (a bare name several VNets have). */
int effective_rules_find_subnet(const struct config *cfg, const char *name, int *vnet,
				int *subnet);

#endif

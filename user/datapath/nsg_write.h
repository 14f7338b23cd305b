/* The NSGs on a gateway: the one writer of their maps, and their stable ids' file
 * (STATE_ROOT/<gateway>.nsg-ids.json). */
#ifndef VNET_XDP_DATAPATH_NSG_WRITE_H
#define VNET_XDP_DATAPATH_NSG_WRITE_H

#include "compile/nsg.h"
#include "datapath/maps.h"

int nsg_ids_load(const char *gateway, struct nsg_ids *ids);
int nsg_ids_save(const char *gateway, const struct nsg_ids *ids);
void nsg_ids_path(const char *gateway, char *buf, size_t size);

/* For `up` and `reload`: the plan with ids from the gateway's ids file (loaded into *ids,
 * saved by nsg_ids_save once every map is written by nsg_plan_write). */
int nsg_plan_for_gateway(const struct config *cfg, const char *gateway, uint32_t generation,
			 struct nsg_plan *plan, struct nsg_ids *ids);

/* Replaces the NSG config maps' contents with the plan, zeroes its fresh rules' counters
 * and records its flush generations. 0 or -errno. */
int nsg_plan_write(const struct datapath_maps *maps, const struct nsg_plan *plan);

#endif

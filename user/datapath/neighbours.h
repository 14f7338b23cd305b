/* The appliances' neighbour entries. The datapath takes a VirtualAppliance route's MAC
 * from the kernel's neighbour table (bpf_fib_lookup) and drops while there is none
 * (next_hop_unresolved), so the gateway asks the kernel to resolve every active
 * appliance next hop and keep it resolved: a managed entry (NTF_EXT_MANAGED, Linux 5.16)
 * on the interface the kernel routes the address out of. The entries it added are kept
 * in the state file ("managedNeighbours") so that `down` and a reload remove exactly
 * those. */
#ifndef VNET_XDP_NEIGHBOURS_H
#define VNET_XDP_NEIGHBOURS_H

#include <jansson.h>
#include "compile/plan.h"

/* Adds a managed entry for each active appliance next hop of plan that `previous` (the
 * set an earlier `up` or reload added, NULL for none) does not hold, and removes those
 * of `previous` that the plan no longer needs. Where the kernel refuses managed entries
 * it sends the address one probe instead and says so. Never fails: a next hop left
 * unresolved is logged. Returns the new set for the state file (a new reference). */
json_t *neighbours_manage(const struct plan *plan, json_t *previous);
/* Removes every entry of the set. */
void neighbours_release(json_t *managed);

#endif

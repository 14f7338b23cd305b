/* IPsec connections on this box: their xfrm interfaces and kernel routes (netlink), the
 * tunnel maps, tc and charon. Which connections it terminates is compile/tunnel_plan.h. */
#ifndef VNET_XDP_TUNNEL_H
#define VNET_XDP_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <net/if.h>
#include <jansson.h>
#include "datapath/attach.h"
#include "datapath/maps.h"
#include "config/config.h"
#include "compile/tunnel_plan.h"
#include "compile/swanctl.h"
#include "lib/vici.h"
#include "vnet_xdp.h"

/* The kernel side, all through rtnetlink. Each returns 0 or -errno after logging one
 * line; -EOPNOTSUPP when the kernel has no xfrm interfaces. */
/* Whether t's interface may be made or adopted: -EEXIST when an interface of its name is
 * not ours (kind xfrm, our if_id) or another xfrm interface has its if_id. */
int tunnel_interface_check(const struct tunnel *t, bool *exists);
/* Made with the MTU tunnel_inner_mtu (compile/tunnel_plan.h) gives for the uplink's, without IPv6 address
 * generation (nothing of the kernel's own goes into the tunnel), then up. */
int tunnel_interface_create(const struct tunnel *t, uint32_t uplink_ifindex);
/* Deletes ifname only if it is still ours: xfrm, with if_id (and ifindex unless 0);
 * another's is left alone with a warning. */
int tunnel_interface_delete(const char *ifname, uint32_t if_id, uint32_t ifindex);
int tunnel_routes_add(const struct tunnel *t);
/* The generation's tc programs on a device (an xfrm interface, an ExpressRoute link's
 * VLAN device), pinned as tc_in_IFINDEX and tc_out_IFINDEX. */
int tunnel_programs_attach(const struct xdp_generation *gen, const char *pin_dir,
			   uint32_t ifindex);
/* The uplink carrying the tunnel's local address, else the config's first uplink. */
uint32_t tunnel_uplink_ifindex(const struct config *cfg, const struct tunnel *t);

/* Fills tunnel_peers, tunnel_endpoints and tunnel_interfaces of the gateway (the staged
 * copies during a reload). */
int tunnel_maps_write(const struct datapath_maps *maps, const struct tunnel *tunnels,
		      size_t count);

/* ---- the life cycle, as `up`, `reload` and `down` use it ---- */

struct plan;
struct tunnels_progress {
	char created[MAX_TUNNELS][IF_NAMESIZE]; /* xfrm interfaces `up` created */
	uint32_t created_if_id[MAX_TUNNELS];
	size_t n_created;
	json_t *ike;        /* what charon holds of ours: name -> definition */
};

/* Creates the xfrm interface of every connection this box terminates (before the plan,
 * which needs their indexes). Returns 0 or -errno after logging. */
int tunnels_create_interfaces(const struct config *cfg, struct tunnels_progress *progress);
/* With the datapath up: the generation's tc programs (clsact ingress and egress) on each
 * xfrm interface, the kernel routes of the remote spaces into it, and the connections
 * loaded into charon. */
int tunnels_start(const struct config *cfg, const struct xdp_generation *gen,
		  const char *pin_dir, const struct plan *plan, struct tunnels_progress *progress);
/* What the state says charon holds of the gateway's: name -> definition (JSON null when
 * the state predates definitions). */
json_t *tunnels_ike_of_state(json_t *state);
/* A reload's charon part, made ready before the datapath swaps: the connections and
 * secrets of the new plan, those of the old state, and charon reached. */
struct tunnels_ike {
	struct vici vici;
	json_t *old;
	struct swanctl_set next;
};
/* Returns 0, or -errno after logging (a connection strongSwan cannot express, charon not
 * reachable): the reload is refused with nothing changed. */
int tunnels_ike_prepare(const struct config *cfg, const struct plan *plan, json_t *state,
			struct tunnels_ike *ike);
void tunnels_ike_free(struct tunnels_ike *ike);
/* After a reload swapped the config maps: the generation's tc programs attached, the kernel
 * routes of each connection's remote spaces (old ones removed), charon moved from the old
 * connections to the new (swanctl_apply: undone when charon refuses a step), and the
 * interfaces of connections gone deleted once charon let them go. *in_force is what
 * charon holds of ours. Returns 0, or charon's failure (-errno). */
int tunnels_reload(const struct xdp_generation *gen, const char *pin_dir,
		   const struct plan *plan, json_t *old_state, struct tunnels_ike *ike,
		   json_t **in_force);
/* Removes routes into the tunnel's interface that none of its remote spaces holds. */
int tunnel_routes_prune(const struct tunnel *t);
/* Undoes what progress records. */
void tunnels_undo(struct tunnels_progress *progress);
/* Forgets what progress records: kept, `down` removes it. */
void tunnels_progress_keep(struct tunnels_progress *progress);
/* The tunnels for the state file: name, interface, ifindex, if_id, swanctl name, its
 * number of child SAs and whether this side initiates (connectionMode). */
json_t *tunnels_state(const struct config *cfg, const struct plan *plan);
/* `down`: unloads the connections and deletes the interfaces the state names. */
int tunnels_down(const char *gateway, json_t *state);

/* `up` and `reload` refuse a config holding a sharedKey read from a file that is a
 * symbolic link, is not root's (or the running user's), or that other users may read or
 * write; judged on the descriptor the config was read from. Returns 0 or -EPERM after
 * saying so in one line. */
int tunnel_check_secret_file(const struct config *cfg);

#endif

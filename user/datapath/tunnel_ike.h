/* What charon says of the gateway's connections (list-sas over vici), for `stats`, the
 * metrics and the redial of `serve`. */
#ifndef VNET_XDP_TUNNEL_IKE_H
#define VNET_XDP_TUNNEL_IKE_H

#include <jansson.h>

/* One IKE SA of charon's list-sa event: whether it is established with an installed
 * CHILD SA. */
int swanctl_sa_is_up(const json_t *ike_sa);

/* What charon does with a tunnel: DOWN, no IKE SA at all (not loaded, or given up);
 * CONNECTING, an IKE SA being negotiated or retried, or up without its CHILD SA;
 * CONNECTED, up with an installed CHILD SA. UNKNOWN: charon did not answer. Ordered:
 * the best of several IKE SAs is the larger. */
enum tunnel_ike_state {
	TUNNEL_IKE_UNKNOWN = -1,
	TUNNEL_IKE_DOWN = 0,
	TUNNEL_IKE_CONNECTING,
	TUNNEL_IKE_CONNECTED,
};
enum tunnel_ike_state swanctl_sa_state(const json_t *ike_sa);
/* "connected", "connecting", "down", "unknown". */
const char *tunnel_ike_state_name(enum tunnel_ike_state s);
/* The names, by state from DOWN on, then UNKNOWN's; NULL-terminated. */
#define TUNNEL_IKE_STATE_NAMES { "down", "connecting", "connected", "unknown", NULL }
/* charon's connections by name -> enum tunnel_ike_state (as integers), from list-sas;
 * NULL when charon cannot be reached. */
json_t *tunnel_ike_states(void);
/* The state of one connection in that listing (UNKNOWN when states is NULL). */
enum tunnel_ike_state tunnel_ike_state_of(const json_t *states, const char *connection);

#endif

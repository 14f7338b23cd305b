/* Keeps every tunnel of a gateway trying, as Azure's gateway does. charon retries a
 * silent peer for ever (keyingtries 0) and restarts after a dead peer or a close, but a
 * peer that answers with an error ends its attempts for good: a device that restarts
 * answers NO_PROPOSAL_CHOSEN until its connections are loaded. `serve` looks at each
 * connection's state every second and initiates one that is down, with exponential
 * backoff, until it connects. */
#ifndef VNET_XDP_TUNNEL_REDIAL_H
#define VNET_XDP_TUNNEL_REDIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "compile/swanctl.h"
#include "datapath/tunnel_ike.h"

/* A connection seen down is initiated after REDIAL_FIRST_DELAY_MS (charon's own restart
 * after a close or a dead peer may be under way: it gets that long to show), then again
 * after twice as long each time it is down again, up to REDIAL_MAX_DELAY_MS; connected
 * starts over. */
#define REDIAL_FIRST_DELAY_MS 1000
#define REDIAL_MAX_DELAY_MS 60000
#define REDIAL_INTERVAL_MS 1000 /* how often serve looks */

/* What is known of one connection. */
struct redial_connection {
	char name[SWANCTL_NAME_MAX]; /* charon's name of it */
	uint64_t due_ms;   /* when it may be initiated; 0: not seen down since it connected */
	uint32_t delay_ms; /* the wait after the next initiation */
	unsigned attempts; /* initiations since it was last connected */
	bool listed;       /* in the gateway's state at the last look */
};

/* The connection in state s at now_ms: returns true when it is to be initiated now, and
 * counts the attempt. Down for the first time: due REDIAL_FIRST_DELAY_MS later.
 * Connecting or unknown: charon is at work, or cannot say; nothing changes. */
bool redial_due(struct redial_connection *c, enum tunnel_ike_state s, uint64_t now_ms);

struct redialer {
	char gateway[128];
	struct redial_connection *connections;
	size_t n;
	json_t *clients_checked; /* point-to-site IKE SAs let in (vpn_clients.h) */
};

/* One look at the gateway's connections (those its state names): each that is due is
 * initiated, saying so once per attempt. */
void redialer_tick(struct redialer *r, uint64_t now_ms);
void redialer_free(struct redialer *r);

#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "lib/lock.h"
#include "lib/log.h"
#include "datapath/state.h"
#include "compile/swanctl.h"
#include "datapath/tunnel_redial.h"
#include "lib/vici.h"
#include "datapath/vpn_clients.h"

bool redial_due(struct redial_connection *c, enum tunnel_ike_state s, uint64_t now_ms)
{
	if (s == TUNNEL_IKE_CONNECTED) {
		c->due_ms = 0;
		c->delay_ms = REDIAL_FIRST_DELAY_MS;
		c->attempts = 0;
		return false;
	}
	if (s != TUNNEL_IKE_DOWN)
		return false;
	if (!c->due_ms) {
		c->delay_ms = REDIAL_FIRST_DELAY_MS;
		c->due_ms = now_ms + c->delay_ms;
		return false;
	}
	if (now_ms < c->due_ms)
		return false;
	c->delay_ms = c->delay_ms * 2 < REDIAL_MAX_DELAY_MS ? c->delay_ms * 2 : REDIAL_MAX_DELAY_MS;
	c->due_ms = now_ms + c->delay_ms;
	c->attempts++;
	return true;
}

/* The entry of `name`, made when the state names a connection first. */
static struct redial_connection *connection_of(struct redialer *r, const char *name)
{
	struct redial_connection *c, *grown;

	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->connections[i].name, name))
			return &r->connections[i];
	grown = realloc(r->connections, (r->n + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	r->connections = grown;
	c = &r->connections[r->n++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	return c;
}

/* Connections a reload or `down` took away are forgotten. */
static void forget_unlisted(struct redialer *r)
{
	size_t kept = 0;

	for (size_t i = 0; i < r->n; i++)
		if (r->connections[i].listed)
			r->connections[kept++] = r->connections[i];
	r->n = kept;
}

/* Each of the connection's child SAs (a state without their number: the one named like
 * it), on the IKE SA the first one starts. */
static int initiate_children(struct vici *v, const char *name, size_t children, char *why,
			     size_t why_size)
{
	int err = 0;

	for (size_t i = 0; !err && i < (children ?: 1); i++) {
		char child[SWANCTL_NAME_MAX + 8];

		swanctl_child_name(name, i, child, sizeof(child));
		err = swanctl_initiate(v, name, child, why, why_size);
	}
	return err;
}

static void initiate(struct vici *v, struct redial_connection *c, size_t children)
{
	char why[256];
	int err = v->fd >= 0 ? initiate_children(v, c->name, children, why, sizeof(why))
			     : -ENOTCONN;

	if (err == -ENOTCONN)
		snprintf(why, sizeof(why), "charon cannot be reached");
	if (err)
		log_notice("tunnel %s is down: initiating it (attempt %u) failed: %s; next in %u s",
			   c->name, c->attempts, why, c->delay_ms / 1000);
	else
		log_notice("tunnel %s is down: initiating it (attempt %u; next in %u s while it "
			   "stays down)", c->name, c->attempts, c->delay_ms / 1000);
}

/* Under the gateway's lock, so that a reload or `down` in progress (which holds it)
 * is never raced: this turn is skipped instead. */
void redialer_tick(struct redialer *r, uint64_t now_ms)
{
	struct vici v = { .fd = -1, .timeout_ms = 5000 };
	json_t *state, *tunnels, *states = NULL, *it;
	int lock = gateway_lock(r->gateway, 0);
	size_t i;

	if (lock < 0)
		return;
	state = state_load(r->gateway);
	tunnels = json_object_get(state, "tunnels");
	for (i = 0; i < r->n; i++)
		r->connections[i].listed = false;
	if (json_array_size(tunnels))
		states = tunnel_ike_states();
	json_array_foreach(tunnels, i, it) {
		const char *name = json_string_value(json_object_get(it, "swanctl"));
		struct redial_connection *c = name ? connection_of(r, name) : NULL;
		enum tunnel_ike_state s = tunnel_ike_state_of(states, name ?: "");

		if (!c)
			continue;
		c->listed = true;
		/* connectionMode ResponderOnly: the peer starts it, never this side. */
		if (json_is_false(json_object_get(it, "initiates")))
			continue;
		if (c->attempts && s == TUNNEL_IKE_CONNECTED)
			log_notice("tunnel %s is connected again (after %u initiations)", c->name,
				   c->attempts);
		if (!redial_due(c, s, now_ms))
			continue;
		if (v.fd < 0 && vici_connect(&v, vici_socket_path()))
			v.fd = -1;
		initiate(&v, c, (size_t)json_integer_value(json_object_get(it, "children")));
	}
	forget_unlisted(r);
	if (!r->clients_checked)
		r->clients_checked = json_object();
	vpn_clients_refuse_revoked(state, r->clients_checked);
	/* A client gone takes its counters with it: the next given its address starts at 0. */
	vpn_clients_forget_gone(r->gateway, state);
	vici_close(&v);
	json_decref(states);
	json_decref(state);
	gateway_unlock(lock);
}

void redialer_free(struct redialer *r)
{
	free(r->connections);
	r->connections = NULL;
	r->n = 0;
	json_decref(r->clients_checked);
	r->clients_checked = NULL;
}

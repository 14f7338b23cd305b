/* What charon says of the gateway's connections: their IKE SAs' state, from list-sas. */
#include <string.h>
#include <jansson.h>
#include "datapath/tunnel_ike.h"
#include "lib/vici.h"

int swanctl_sa_is_up(const json_t *ike_sa)
{
	const char *state = json_string_value(json_object_get(ike_sa, "state"));
	const char *name;
	json_t *child;

	if (!state || strcmp(state, "ESTABLISHED"))
		return 0;
	json_object_foreach(json_object_get(ike_sa, "child-sas"), name, child) {
		const char *child_state = json_string_value(json_object_get(child, "state"));

		if (child_state && !strcmp(child_state, "INSTALLED"))
			return 1;
	}
	return 0;
}

enum tunnel_ike_state swanctl_sa_state(const json_t *ike_sa)
{
	if (!json_is_object(ike_sa))
		return TUNNEL_IKE_DOWN;
	/* Any IKE SA that is not up yet is charon at work on it: keyingtries 0 keeps one
	 * in CONNECTING (or being retried) for as long as the peer does not answer. */
	return swanctl_sa_is_up(ike_sa) ? TUNNEL_IKE_CONNECTED : TUNNEL_IKE_CONNECTING;
}

static const char *const tunnel_ike_state_names[] = TUNNEL_IKE_STATE_NAMES;
_Static_assert(sizeof(tunnel_ike_state_names) / sizeof(*tunnel_ike_state_names) ==
	       TUNNEL_IKE_CONNECTED + 3, "a tunnel state without a name");

const char *tunnel_ike_state_name(enum tunnel_ike_state s)
{
	return tunnel_ike_state_names[s >= TUNNEL_IKE_DOWN && s <= TUNNEL_IKE_CONNECTED ? s :
				      TUNNEL_IKE_CONNECTED + 1];
}

/* A list-sa event: { <connection> = { state, child-sas, ... } }; each connection gets the
 * best state among its IKE SAs (a reauthentication holds two for a while). */
static int sa_event(json_t *event, void *data)
{
	json_t *states = data, *sa;
	const char *name;

	json_object_foreach(event, name, sa) {
		enum tunnel_ike_state s = swanctl_sa_state(sa);

		if (s > json_integer_value(json_object_get(states, name)))
			json_object_set_new(states, name, json_integer(s));
	}
	return 0;
}

json_t *tunnel_ike_states(void)
{
	struct vici v = { .fd = -1, .timeout_ms = 5000 };
	json_t *states = json_object(), *args = json_pack("{s:s}", "noblock", "yes"), *reply = NULL;
	int err = vici_connect(&v, vici_socket_path());

	if (!err)
		err = vici_request_stream(&v, "list-sas", args, "list-sa", sa_event, states, &reply);
	vici_close(&v);
	json_decref(args);
	json_decref(reply);
	if (err) {
		json_decref(states);
		return NULL;
	}
	return states;
}

enum tunnel_ike_state tunnel_ike_state_of(const json_t *states, const char *connection)
{
	if (!states)
		return TUNNEL_IKE_UNKNOWN;
	return (enum tunnel_ike_state)json_integer_value(json_object_get(states, connection)) ?:
	       TUNNEL_IKE_DOWN;
}

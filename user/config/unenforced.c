/* What the reader accepts and the gateway does not enforce: one list, which shrinks as
 * features land. A config that uses one of these passes `check` with a warning per use
 * (its place and what the gateway does instead), so that no user believes traffic meets
 * a route, a flag or a rule that it does not; `check --strict` and `up --strict` refuse
 * such a config. */
#include <string.h>
#include <strings.h>
#include "config/internal.h"

/* What a property's value must be for its use to be unenforced. */
typedef bool (*value_test)(json_t *value);

struct unenforced {
	enum record_kind kind;
	/* Under the record's properties; "a[].b": b of each element of a (the element's own
	 * properties, ARM or flattened). */
	const char *path;
	value_test applies;
	const char *instead; /* what the gateway does instead */
};

static bool is_true(json_t *v)
{
	return json_is_true(v);
}

static bool is_used(json_t *v)
{
	if (json_is_array(v))
		return json_array_size(v) > 0;
	if (json_is_object(v))
		return json_object_size(v) > 0;
	if (json_is_string(v))
		return json_string_length(v) > 0;
	return v && !json_is_null(v) && !json_is_false(v);
}

static bool is_express_route(json_t *v)
{
	return json_is_string(v) && !strcasecmp(json_string_value(v), "ExpressRoute");
}

static const struct unenforced unenforced[] = {
	{ KIND_CONNECTION, "connectionType", is_express_route,
	  "learned prefixes are routed over the provider link, but are not in the NSGs' "
	  "VirtualNetwork tag: allow on-premises sources by their prefixes" },
	{ KIND_VNET_GATEWAY, "enableBgp", is_true,
	  "no BGP speaker runs: no route is learned or advertised" },
	{ KIND_VNET_GATEWAY, "activeActive", is_true,
	  "one tunnel per connection, from the gateway's first endpoint" },
	{ KIND_LOCAL_NETWORK_GATEWAY, "bgpSettings", is_used,
	  "no BGP session: only the addressPrefixes are routed to the site" },
	{ KIND_CONNECTION, "enableBgp", is_true,
	  "no BGP session over the tunnel: only static prefixes are routed" },
	{ KIND_VNET, "flowTimeoutInMinutes", is_used,
	  "flows idle out after gateway.limits' timeouts" },
};

static void warn_unenforced(struct loader *l, const struct unenforced *u, struct node n)
{
	l->cfg->n_unenforced++;
	if (json_is_string(n.value) && json_string_length(n.value) <= 64)
		reader_warning(&l->r, n.path, "\"%s\" accepted but not enforced: %s",
			       json_string_value(n.value), u->instead);
	else
		reader_warning(&l->r, n.path, "accepted but not enforced: %s", u->instead);
}

/* Follows path (see struct unenforced) from n, warning at each value it applies to. */
static void walk_unenforced(struct loader *l, const struct unenforced *u, struct node n,
			    const char *path)
{
	const char *dot = strchr(path, '.');
	size_t len = dot ? (size_t)(dot - path) : strlen(path);
	char key[128];

	if (len + 1 > sizeof(key) || !json_is_object(n.value))
		return;
	memcpy(key, path, len);
	key[len] = '\0';
	if (len > 2 && !strcmp(key + len - 2, "[]")) {
		struct node array;

		key[len - 2] = '\0';
		array = node_child(&l->r, n, key);
		for (size_t i = 0; dot && json_is_array(array.value) && i < json_array_size(array.value); i++)
			walk_unenforced(l, u, node_properties(&l->r, node_element(&l->r, array, i)),
					dot + 1);
		return;
	}
	if (dot) {
		walk_unenforced(l, u, node_child(&l->r, n, key), dot + 1);
		return;
	}
	n = node_child(&l->r, n, key);
	if (n.value && u->applies(n.value))
		warn_unenforced(l, u, n);
}

void report_unenforced(struct loader *l)
{
	for (size_t r = 0; r < l->n_records; r++)
		for (size_t i = 0; i < sizeof(unenforced) / sizeof(*unenforced); i++)
			if (unenforced[i].kind == l->records[r].kind)
				walk_unenforced(l, &unenforced[i], l->records[r].props,
						unenforced[i].path);
}

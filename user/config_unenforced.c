/* What the reader accepts and the gateway does not enforce: one list, which shrinks as
 * features land. A config that uses one of these passes `check` with a warning per use
 * (its place and what the gateway does instead), so that no user believes traffic meets
 * a route, a flag or a rule that it does not; `check --strict` and `up --strict` refuse
 * such a config. */
#include <string.h>
#include <strings.h>
#include "config_internal.h"

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

static bool is_not(json_t *v, const char *value)
{
	return json_is_string(v) && strcasecmp(json_string_value(v), value);
}

static bool protocol_not_ikev2(json_t *v)
{
	return is_not(v, "IKEv2");
}

static bool mode_not_default(json_t *v)
{
	return is_not(v, "Default");
}

/* A service tag the NSG compiler has no addresses for (it has VirtualNetwork, Internet and
 * AzureLoadBalancer): a rule naming it matches nothing. */
static bool names_unknown_tag_text(const char *text)
{
	static const char *const known[] = { "*", "VirtualNetwork", "Internet", "AzureLoadBalancer" };
	struct ip_prefix prefix;
	struct ip_address address;

	for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
		if (!strcasecmp(text, known[i]))
			return false;
	return *text && ip_prefix_parse(text, &prefix) && ip_address_parse(text, &address);
}

static bool names_unknown_tag(json_t *v)
{
	json_t *element;
	size_t i;

	if (json_is_string(v))
		return names_unknown_tag_text(json_string_value(v));
	json_array_foreach(v, i, element)
		if (json_is_string(element) && names_unknown_tag_text(json_string_value(element)))
			return true;
	return false;
}

#define ASG_INSTEAD "application security groups have no members in the datapath: the rule " \
		    "matches nothing (an Allow never allows, a Deny never denies)"
#define TAG_INSTEAD "of the service tags only VirtualNetwork, Internet and AzureLoadBalancer " \
		    "have addresses: the rule matches nothing for this tag (an Allow never " \
		    "allows, a Deny never denies)"

static const struct unenforced unenforced[] = {
	{ KIND_NIC, "ipConfigurations[].applicationSecurityGroups", is_used, ASG_INSTEAD },
	{ KIND_SECURITY_RULE, "sourceApplicationSecurityGroups", is_used, ASG_INSTEAD },
	{ KIND_SECURITY_RULE, "destinationApplicationSecurityGroups", is_used, ASG_INSTEAD },
	{ KIND_NSG, "securityRules[].sourceApplicationSecurityGroups", is_used, ASG_INSTEAD },
	{ KIND_NSG, "securityRules[].destinationApplicationSecurityGroups", is_used, ASG_INSTEAD },
	{ KIND_SECURITY_RULE, "sourceAddressPrefix", names_unknown_tag, TAG_INSTEAD },
	{ KIND_SECURITY_RULE, "sourceAddressPrefixes", names_unknown_tag, TAG_INSTEAD },
	{ KIND_SECURITY_RULE, "destinationAddressPrefix", names_unknown_tag, TAG_INSTEAD },
	{ KIND_SECURITY_RULE, "destinationAddressPrefixes", names_unknown_tag, TAG_INSTEAD },
	{ KIND_NSG, "securityRules[].sourceAddressPrefix", names_unknown_tag, TAG_INSTEAD },
	{ KIND_NSG, "securityRules[].sourceAddressPrefixes", names_unknown_tag, TAG_INSTEAD },
	{ KIND_NSG, "securityRules[].destinationAddressPrefix", names_unknown_tag, TAG_INSTEAD },
	{ KIND_NSG, "securityRules[].destinationAddressPrefixes", names_unknown_tag, TAG_INSTEAD },
	{ KIND_VNET_GATEWAY, "enableBgp", is_true,
	  "no BGP speaker runs: no route is learned or advertised" },
	{ KIND_VNET_GATEWAY, "activeActive", is_true,
	  "one tunnel per connection, from the gateway's first endpoint" },
	{ KIND_VNET_GATEWAY, "vpnClientConfiguration", is_used,
	  "no point-to-site clients are accepted" },
	{ KIND_LOCAL_NETWORK_GATEWAY, "bgpSettings", is_used,
	  "no BGP session: only the addressPrefixes are routed to the site" },
	{ KIND_CONNECTION, "enableBgp", is_true,
	  "no BGP session over the tunnel: only static prefixes are routed" },
	{ KIND_CONNECTION, "connectionProtocol", protocol_not_ikev2,
	  "the connection is negotiated with IKEv2" },
	{ KIND_CONNECTION, "connectionMode", mode_not_default,
	  "the gateway both initiates and responds" },
	{ KIND_CONNECTION, "usePolicyBasedTrafficSelectors", is_true,
	  "the tunnel carries any address of the VNets and the site (route based)" },
	{ KIND_CONNECTION, "trafficSelectorPolicies", is_used,
	  "the tunnel carries any address of the VNets and the site (route based)" },
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

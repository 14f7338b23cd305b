/* Network security groups: securityRules read and checked as Azure checks them, and
 * Azure's six default rules appended to every group. */
#include <ctype.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/internal.h"

static const char *const direction_names[] = { [NSG_INBOUND] = "Inbound",
					       [NSG_OUTBOUND] = "Outbound" };
static const char *const access_names[] = { [NSG_ALLOW] = "Allow", [NSG_DENY] = "Deny" };
static const char *const protocol_names[] = {
	[NSG_PROTO_ANY] = "*", [NSG_PROTO_TCP] = "Tcp", [NSG_PROTO_UDP] = "Udp",
	[NSG_PROTO_ICMP] = "Icmp", [NSG_PROTO_ESP] = "Esp", [NSG_PROTO_AH] = "Ah",
};

#define PRIORITY_MIN 100
#define PRIORITY_MAX 4096

/* A service tag looks like a word (Storage, Sql.WestEurope, AzureCloud.eastus2); anything
 * with digits and dots or colons up front is meant as an address. */
static bool looks_like_tag(const char *text)
{
	if (!isalpha((unsigned char)text[0]))
		return false;
	for (const char *p = text; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
			return false;
	/* "fd00::/8" starts with letters but has ':' and '/', handled above; "a.b" passes */
	return true;
}

static bool read_rule_address(struct loader *l, struct node n, struct nsg_address *out)
{
	const char *text;
	struct ip_address address;

	memset(out, 0, sizeof(*out));
	if (!get_string(&l->r, n, &text))
		return false;
	if (!strcmp(text, "*") || !strcasecmp(text, "Any")) {
		out->kind = NSG_ADDR_ANY;
	} else if (!strcasecmp(text, "VirtualNetwork")) {
		out->kind = NSG_ADDR_TAG_VIRTUAL_NETWORK;
	} else if (!strcasecmp(text, "Internet")) {
		out->kind = NSG_ADDR_TAG_INTERNET;
	} else if (!strcasecmp(text, "AzureLoadBalancer")) {
		out->kind = NSG_ADDR_TAG_AZURE_LOAD_BALANCER;
	} else if (strchr(text, '/')) {
		out->kind = NSG_ADDR_PREFIX;
		return read_prefix(l, n, &out->prefix);
	} else if (!ip_address_parse(text, &address)) {
		out->kind = NSG_ADDR_PREFIX;
		out->prefix.family = address.family;
		out->prefix.len = address.family == AF_INET ? 32 : 128;
		memcpy(out->prefix.addr, address.addr, sizeof(address.addr));
	} else if (strspn(text, "0123456789.") == strlen(text) &&
		   inet_aton(text, (struct in_addr *)out->prefix.addr)) {
		/* Azure takes the classic numeric forms ("789" is 0.0.3.21), as inet_aton does;
		 * recorded NSGs carry them. */
		out->kind = NSG_ADDR_PREFIX;
		out->prefix.family = AF_INET;
		out->prefix.len = 32;
	} else if (looks_like_tag(text)) {
		return resolve_service_tag(l, n, text, out);
	} else {
		reader_problem(&l->r, n.path, "\"%s\" is not an address prefix; allowed: a CIDR, an "
			       "IP address, *, or a service tag (VirtualNetwork, Internet, "
			       "AzureLoadBalancer, ...)", reader_shown(&l->r, text));
		return false;
	}
	return true;
}

static size_t read_rule_groups(struct loader *l, struct node groups, struct nsg_address *out)
{
	struct config *cfg = l->cfg;
	size_t n = 0;

	if (!is_array_or_report(&l->r, groups))
		return 0;
	for (size_t i = 0; i < json_array_size(groups.value); i++) {
		int index = resolve_reference(l, node_element(&l->r, groups, i),
					      KIND_APPLICATION_SECURITY_GROUP,
					      cfg->application_security_groups,
					      cfg->n_application_security_groups,
					      sizeof(*cfg->application_security_groups));

		if (index == CONFIG_NONE)
			continue;
		out[n].kind = NSG_ADDR_APPLICATION_SECURITY_GROUP;
		out[n++].group = index;
	}
	return n;
}

static bool is_set(json_t *v)
{
	return v && !json_is_null(v) && !(json_is_string(v) && !json_string_length(v)) &&
	       !(json_is_array(v) && !json_array_size(v));
}

/* xAddressPrefix, xAddressPrefixes (Azure takes either; empty ones are unset) or
 * xApplicationSecurityGroups, which Azure takes only alone. */
static size_t read_rule_addresses(struct loader *l, struct node props, const char *side,
				  struct nsg_address **out)
{
	char single_key[64], plural_key[64], groups_key[64];
	struct node single, plural, groups;
	size_t n = 0, max;

	snprintf(single_key, sizeof(single_key), "%sAddressPrefix", side);
	snprintf(plural_key, sizeof(plural_key), "%sAddressPrefixes", side);
	snprintf(groups_key, sizeof(groups_key), "%sApplicationSecurityGroups", side);
	single = node_child(&l->r, props, single_key);
	plural = node_child(&l->r, props, plural_key);
	groups = node_child(&l->r, props, groups_key);
	max = 1 + json_array_size(plural.value) + json_array_size(groups.value);
	*out = calloc(max, sizeof(**out));
	if (!*out)
		return 0;
	if (is_set(groups.value)) {
		if (is_set(single.value) || is_set(plural.value))
			reader_problem(&l->r, groups.path, "a rule side takes address prefixes or "
				       "application security groups, not both; allowed: %s alone, "
				       "or %s/%s without it", groups_key, single_key, plural_key);
		return read_rule_groups(l, groups, *out);
	}
	if (json_is_string(single.value) && !*json_string_value(single.value))
		single.value = NULL;
	if (single.value && !json_is_null(single.value) && read_rule_address(l, single, &(*out)[n]))
		n++;
	if (plural.value && is_array_or_report(&l->r, plural))
		for (size_t i = 0; i < json_array_size(plural.value); i++)
			if (read_rule_address(l, node_element(&l->r, plural, i), &(*out)[n]))
				n++;
	if (!n && !json_array_size(plural.value) && !single.value)
		reader_problem(&l->r, props.path, "no %s, %s or %s; allowed: a CIDR, an IP "
			       "address, *, a service tag, or application security groups",
			       single_key, plural_key, groups_key);
	return n;
}

static bool names_groups(const struct nsg_address *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].kind == NSG_ADDR_APPLICATION_SECURITY_GROUP)
			return true;
	return false;
}

static bool parse_port(const char *text, const char **end, uint16_t *out)
{
	char *stop;
	long v;

	if (!isdigit((unsigned char)*text))
		return false;
	v = strtol(text, &stop, 10);
	if (v < 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	*end = stop;
	return true;
}

static bool read_port_range(struct loader *l, struct node n, struct port_range *out)
{
	const char *text, *end;

	if (json_is_integer(n.value) && json_integer_value(n.value) >= 0 &&
	    json_integer_value(n.value) <= 65535) { /* az writes a bare port sometimes */
		out->from = out->to = (uint16_t)json_integer_value(n.value);
		return true;
	}
	if (!get_string(&l->r, n, &text))
		return false;
	if (!strcmp(text, "*")) {
		out->from = 0;
		out->to = 65535;
		return true;
	}
	if (parse_port(text, &end, &out->from)) {
		out->to = out->from;
		if (!*end)
			return true;
		if (*end == '-' && parse_port(end + 1, &end, &out->to) && !*end &&
		    out->from <= out->to)
			return true;
	}
	reader_problem(&l->r, n.path, "\"%s\" is not a port range; allowed: *, a port 0-65535, "
		       "or FROM-TO with FROM <= TO", reader_shown(&l->r, text));
	return false;
}

static size_t read_port_ranges(struct loader *l, struct node props, const char *side,
			       struct port_range **out)
{
	char single_key[64], plural_key[64];
	struct node single, plural;
	size_t n = 0;

	snprintf(single_key, sizeof(single_key), "%sPortRange", side);
	snprintf(plural_key, sizeof(plural_key), "%sPortRanges", side);
	single = node_child(&l->r, props, single_key);
	plural = node_child(&l->r, props, plural_key);
	*out = calloc(1 + json_array_size(plural.value), sizeof(**out));
	if (!*out)
		return 0;
	if (json_is_string(single.value) && !*json_string_value(single.value))
		single.value = NULL;
	if (single.value && !json_is_null(single.value) && read_port_range(l, single, &(*out)[n]))
		n++;
	if (plural.value && is_array_or_report(&l->r, plural))
		for (size_t i = 0; i < json_array_size(plural.value); i++)
			if (read_port_range(l, node_element(&l->r, plural, i), &(*out)[n]))
				n++;
	if (!n && !json_array_size(plural.value) && !single.value)
		reader_problem(&l->r, props.path, "no %s or %s; allowed: *, a port, or FROM-TO",
			       single_key, plural_key);
	return n;
}

static bool read_required_enum(struct loader *l, struct node props, const char *key,
			       const char *const *names, size_t count, int *out)
{
	struct node n = node_child(&l->r, props, key);
	char allowed[256] = "";

	if (n.value && !json_is_null(n.value))
		return read_enum(l, n, names, count, out);
	for (size_t i = 0; i < count; i++)
		snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s",
			 i ? ", " : "", names[i]);
	reader_problem(&l->r, n.path, "missing; allowed: %s", allowed);
	return false;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The first rule of each priority and direction: a table, the priorities being few. */
struct nsg_ctx {
	struct config_nsg *nsg;
	int (*first_at)[PRIORITY_MAX + 1]; /* [direction][priority]: rule index or CONFIG_NONE */
};

static void add_rule(struct loader *l, struct node res, const char *name, bool duplicate,
		     void *ctx)
{
	struct nsg_ctx *nc = ctx;
	struct config_nsg *nsg = nc->nsg;
	struct node props = node_properties(&l->r, res);
	struct node priority_node = node_child(&l->r, props, "priority");
	struct config_security_rule rule = { 0 };
	long long priority = 0;
	int direction = 0, access = 0, protocol = 0;
	int before = l->r.problems;
	int *first;

	if (duplicate) {
		reader_problem(&l->r, path_key(&l->r, res.path, "name"), "duplicate security rule "
			       "name \"%s\" in network security group \"%s\"; allowed: unique "
			       "names, compared without case", reader_shown(&l->r, name), nsg->name);
		return;
	}
	if (!priority_node.value)
		reader_problem(&l->r, priority_node.path, "missing; allowed: %d-%d", PRIORITY_MIN,
			       PRIORITY_MAX);
	get_int(&l->r, priority_node, PRIORITY_MIN, PRIORITY_MAX, &priority);
	read_required_enum(l, props, "direction", direction_names, COUNT(direction_names),
			   &direction);
	read_required_enum(l, props, "access", access_names, COUNT(access_names), &access);
	read_required_enum(l, props, "protocol", protocol_names, COUNT(protocol_names), &protocol);
	rule.n_sources = read_rule_addresses(l, props, "source", &rule.sources);
	rule.n_destinations = read_rule_addresses(l, props, "destination", &rule.destinations);
	rule.n_source_ports = read_port_ranges(l, props, "source", &rule.source_ports);
	rule.n_destination_ports = read_port_ranges(l, props, "destination",
						    &rule.destination_ports);
	rule.name = copy_string(name);
	rule.priority = (int)priority;
	rule.direction = (enum nsg_direction)direction;
	rule.access = (enum nsg_access)access;
	rule.protocol = (enum nsg_protocol)protocol;
	/* A rule read with problems still takes its priority: a later one is compared with it. */
	first = &nc->first_at[direction][rule.priority];
	if (*first != CONFIG_NONE && l->r.problems == before)
		reader_problem(&l->r, priority_node.path, "priority %d is already used by %s rule "
			       "\"%s\"; allowed: a priority unique per direction", rule.priority,
			       direction_names[direction], reader_shown(&l->r, nsg->rules[*first].name));
	else if (*first == CONFIG_NONE)
		*first = (int)nsg->n_rules;
	if ((names_groups(rule.sources, rule.n_sources) ||
	     names_groups(rule.destinations, rule.n_destinations)) &&
	    note_application_security_group_rule(l, (size_t)(nsg - l->cfg->nsgs), nsg->n_rules,
						 props.path))
		reader_problem(&l->r, props.path, "out of memory");
	nsg->rules[nsg->n_rules++] = rule;
}

/* Azure's default rules, in force in every NSG whatever the config lists. */
static void add_default_rule(struct config_nsg *nsg, const char *name, int priority,
			     enum nsg_direction direction, enum nsg_access access,
			     enum nsg_address_kind source, enum nsg_address_kind destination)
{
	struct config_security_rule *rule = &nsg->rules[nsg->n_rules++];

	memset(rule, 0, sizeof(*rule));
	rule->name = copy_string(name);
	rule->priority = priority;
	rule->direction = direction;
	rule->access = access;
	rule->protocol = NSG_PROTO_ANY;
	rule->sources = calloc(1, sizeof(*rule->sources));
	rule->destinations = calloc(1, sizeof(*rule->destinations));
	rule->source_ports = calloc(1, sizeof(*rule->source_ports));
	rule->destination_ports = calloc(1, sizeof(*rule->destination_ports));
	if (!rule->sources || !rule->destinations || !rule->source_ports ||
	    !rule->destination_ports)
		return;
	rule->sources[0].kind = source;
	rule->destinations[0].kind = destination;
	rule->source_ports[0] = (struct port_range){ 0, 65535 };
	rule->destination_ports[0] = (struct port_range){ 0, 65535 };
	rule->n_sources = rule->n_destinations = 1;
	rule->n_source_ports = rule->n_destination_ports = 1;
	rule->is_default = true;
}

#define N_DEFAULT_RULES 6

static void add_default_rules(struct config_nsg *nsg)
{
	add_default_rule(nsg, "AllowVnetInBound", 65000, NSG_INBOUND, NSG_ALLOW,
			 NSG_ADDR_TAG_VIRTUAL_NETWORK, NSG_ADDR_TAG_VIRTUAL_NETWORK);
	add_default_rule(nsg, "AllowAzureLoadBalancerInBound", 65001, NSG_INBOUND, NSG_ALLOW,
			 NSG_ADDR_TAG_AZURE_LOAD_BALANCER, NSG_ADDR_ANY);
	add_default_rule(nsg, "DenyAllInBound", 65500, NSG_INBOUND, NSG_DENY, NSG_ADDR_ANY,
			 NSG_ADDR_ANY);
	add_default_rule(nsg, "AllowVnetOutBound", 65000, NSG_OUTBOUND, NSG_ALLOW,
			 NSG_ADDR_TAG_VIRTUAL_NETWORK, NSG_ADDR_TAG_VIRTUAL_NETWORK);
	add_default_rule(nsg, "AllowInternetOutBound", 65001, NSG_OUTBOUND, NSG_ALLOW,
			 NSG_ADDR_ANY, NSG_ADDR_TAG_INTERNET);
	add_default_rule(nsg, "DenyAllOutBound", 65500, NSG_OUTBOUND, NSG_DENY, NSG_ADDR_ANY,
			 NSG_ADDR_ANY);
}

#define MISSING_RULE_NAME "a security rule without \"name\"; allowed: a name unique in its " \
	"network security group"

/* An NSG's rules, custom then default, with every custom rule's priority compared. */
static void read_rules(struct loader *l, const struct record *rec, struct config_nsg *nsg)
{
	struct children children;
	struct nsg_ctx nc = { nsg, malloc(2 * sizeof(*nc.first_at)) };

	if (children_list(l, rec, "securityRules", KIND_SECURITY_RULE, &children)) {
		reader_problem(&l->r, rec->resource.path, "out of memory");
		free(nc.first_at);
		return;
	}
	nsg->rules = calloc(children.n + N_DEFAULT_RULES, sizeof(*nsg->rules));
	if (!nsg->rules || !nc.first_at) {
		reader_problem(&l->r, rec->resource.path, "out of memory");
	} else {
		for (size_t d = 0; d < 2; d++)
			for (size_t p = 0; p <= PRIORITY_MAX; p++)
				nc.first_at[d][p] = CONFIG_NONE;
		children_each(l, rec, "securityRules", KIND_SECURITY_RULE, &children,
			      MISSING_RULE_NAME, add_rule, &nc);
		add_default_rules(nsg);
	}
	free(nc.first_at);
	children_free(&children);
}

void build_security_groups(struct loader *l)
{
	struct config *cfg = l->cfg;
	size_t n = 0;

	for (size_t i = 0; i < l->n_records; i++)
		n += l->records[i].kind == KIND_NSG;
	cfg->nsgs = calloc(n + 1, sizeof(*cfg->nsgs));
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct config_nsg *nsg;

		if (rec->kind != KIND_NSG)
			continue;
		if (l->record_first[i] != CONFIG_NONE) {
			reader_problem(&l->r, path_key(&l->r, rec->resource.path, "name"), "duplicate "
				       "network security group name \"%s\"; allowed: unique names, "
				       "compared without case", rec->name);
			continue;
		}
		nsg = &cfg->nsgs[cfg->n_nsgs++];
		nsg->name = copy_string(rec->name);
		get_bool(&l->r, node_child(&l->r, rec->props, "flushConnection"),
			 &nsg->flush_connection);
		read_rules(l, rec, nsg);
	}
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];

		if (rec->kind == KIND_SECURITY_RULE &&
		    loader_find_named(l, cfg->nsgs, cfg->n_nsgs, sizeof(*cfg->nsgs),
				      rec->parent) == CONFIG_NONE)
			reader_problem(&l->r, path_key(&l->r, rec->resource.path, "name"), "security "
				       "rule \"%s\" belongs to unknown network security group \"%s\"",
				       rec->name, rec->parent);
	}
}

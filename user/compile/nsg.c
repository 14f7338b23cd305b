/* Compiles the config's network security groups into the bit-vector maps of bpf/nsg.h.
 * See nsg.h for the layout; docs/nsg.md for why. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "lib/gateway_name.h"
#include "lib/log.h"
#include "lib/private_file.h"
#include "compile/nsg.h"
#include "compile/plan.h"

/* ---- stable ids --------------------------------------------------------------------- */

int nsg_ids_init(struct nsg_ids *ids, uint32_t counters_map_id)
{
	ids->doc = json_pack("{s:i, s:i, s:{}, s:{}}", "countersMap", (json_int_t)counters_map_id,
			     "generation", 0, "nsgs", "rules");
	return ids->doc ? 0 : -ENOMEM;
}

void nsg_ids_free(struct nsg_ids *ids)
{
	json_decref(ids->doc);
	ids->doc = NULL;
}

json_t *nsg_ids_rule(const struct nsg_ids *ids, uint32_t rule_id)
{
	const char *key;
	json_t *rule;

	json_object_foreach(json_object_get(ids->doc, "rules"), key, rule)
		if ((uint32_t)json_integer_value(json_object_get(rule, "id")) == rule_id)
			return rule;
	return NULL;
}

const char *nsg_ids_nsg_name(const struct nsg_ids *ids, uint32_t nsg_id)
{
	const char *key;
	json_t *nsg;

	json_object_foreach(json_object_get(ids->doc, "nsgs"), key, nsg)
		if ((uint32_t)json_integer_value(json_object_get(nsg, "id")) == nsg_id)
			return key;
	return NULL;
}

static const char *direction_name(enum nsg_direction d)
{
	return d == NSG_INBOUND ? "Inbound" : "Outbound";
}

/* The lowest id no entry of `list` holds. */
static int64_t free_id(json_t *list, uint32_t max)
{
	uint8_t *used = calloc(max, 1);
	const char *key;
	json_t *it;
	int64_t id = -1;

	if (!used)
		return -ENOMEM;
	json_object_foreach(list, key, it) {
		json_int_t v = json_integer_value(json_object_get(it, "id"));

		if (v >= 0 && v < max)
			used[v] = 1;
	}
	for (uint32_t i = 0; i < max; i++)
		if (!used[i]) {
			id = i;
			break;
		}
	free(used);
	return id < 0 ? -ENOSPC : id;
}

/* Drops rules that no current config holds, to make room for new ones. */
static void rules_forget_inactive(json_t *rules, uint32_t generation)
{
	const char *key;
	json_t *it;
	void *tmp;

	json_object_foreach_safe(rules, tmp, key, it)
		if ((uint32_t)json_integer_value(json_object_get(it, "generation")) != generation)
			json_object_del(rules, key);
}

/* The rule's stable id; *fresh says the id is new to the rule (its counter slot may have
 * served a removed rule, and is zeroed by the writer). */
static int64_t rule_id_for(struct nsg_ids *ids, const char *nsg,
			   const struct config_security_rule *rule, uint32_t generation,
			   bool *fresh)
{
	json_t *rules = json_object_get(ids->doc, "rules"), *entry;
	char key[600];
	int64_t id;

	snprintf(key, sizeof(key), "%s/%s/%s", nsg, direction_name(rule->direction), rule->name);
	entry = json_object_get(rules, key);
	if (!entry) {
		id = free_id(rules, MAX_NSG_RULE_IDS);
		if (id == -ENOSPC) {
			rules_forget_inactive(rules, generation);
			id = free_id(rules, MAX_NSG_RULE_IDS);
		}
		if (id < 0)
			return id;
		*fresh = true;
		entry = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "nsg", nsg,
				  "direction", direction_name(rule->direction), "rule", rule->name);
		json_object_set_new(rules, key, entry);
	}
	json_object_set_new(entry, "access", json_string(rule->access == NSG_ALLOW ? "Allow" : "Deny"));
	json_object_set_new(entry, "priority", json_integer(rule->priority));
	json_object_set_new(entry, "generation", json_integer(generation));
	return json_integer_value(json_object_get(entry, "id"));
}

/* FNV-1a over what the rules say, to tell whether an NSG changed between generations. */
static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* An address and, for a group, its members: a NIC joining an ASG changes the rule. */
static uint64_t address_fingerprint(uint64_t h, const struct config *cfg,
				    const struct nsg_address *a)
{
	const struct config_address_group *group = config_address_group_of(cfg, a);

	h = fnv(fnv(h, &a->kind, sizeof(int)), &a->prefix, sizeof(struct ip_prefix));
	if (group)
		h = fnv(h, group->prefixes, group->n_prefixes * sizeof(*group->prefixes));
	return h;
}

static uint64_t nsg_fingerprint(const struct config *cfg, const struct config_nsg *nsg)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t r = 0; r < nsg->n_rules; r++) {
		const struct config_security_rule *rule = &nsg->rules[r];
		int fields[] = { rule->priority, rule->direction, rule->access, rule->protocol };

		h = fnv(h, rule->name, strlen(rule->name) + 1);
		h = fnv(h, fields, sizeof(fields));
		for (size_t i = 0; i < rule->n_sources; i++)
			h = address_fingerprint(h, cfg, &rule->sources[i]);
		for (size_t i = 0; i < rule->n_destinations; i++)
			h = address_fingerprint(h, cfg, &rule->destinations[i]);
		h = fnv(h, rule->source_ports, rule->n_source_ports * sizeof(struct port_range));
		h = fnv(h, rule->destination_ports,
			rule->n_destination_ports * sizeof(struct port_range));
		h = fnv(h, "|", 1);
	}
	return h;
}

/* ---- the VirtualNetwork tag ---------------------------------------------------------- */

static int prefixes_append(struct ip_prefix **list, size_t *n, const struct ip_prefix *add,
			   size_t count)
{
	struct ip_prefix *bigger;

	if (!count)
		return 0;
	bigger = realloc(*list, (*n + count) * sizeof(**list));
	if (!bigger)
		return -ENOMEM;
	memcpy(bigger + *n, add, count * sizeof(*add));
	*list = bigger;
	*n += count;
	return 0;
}

/* On-premises and remote-VNet spaces a virtual network gateway reaches by its connections. */
static int gateway_reach(const struct config *cfg, int gateway, struct ip_prefix **out, size_t *n)
{
	int err = 0;

	for (size_t c = 0; !err && gateway != CONFIG_NONE && c < cfg->n_connections; c++) {
		const struct config_connection *conn = &cfg->connections[c];
		int other = CONFIG_NONE;

		if (conn->vnet_gateway1 == gateway)
			other = conn->vnet_gateway2;
		else if (conn->vnet_gateway2 == gateway)
			other = conn->vnet_gateway1;
		else
			continue;
		if (conn->type == CONNECTION_IPSEC && conn->local_network_gateway2 != CONFIG_NONE) {
			const struct config_local_network_gateway *lng =
				&cfg->local_network_gateways[conn->local_network_gateway2];

			err = prefixes_append(out, n, lng->prefixes, lng->n_prefixes);
		} else if (other != CONFIG_NONE && cfg->vnet_gateways[other].vnet != CONFIG_NONE) {
			const struct config_vnet *v = &cfg->vnets[cfg->vnet_gateways[other].vnet];

			err = prefixes_append(out, n, v->prefixes, v->n_prefixes);
		}
	}
	/* Its point-to-site clients are a connected space too, as in Azure's tag. */
	if (!err && gateway != CONFIG_NONE && cfg->vnet_gateways[gateway].vpn_client)
		err = prefixes_append(out, n, cfg->vnet_gateways[gateway].vpn_client->pool,
				      cfg->vnet_gateways[gateway].vpn_client->n_pool);
	return err;
}

int nsg_virtual_network_prefixes(const struct config *cfg, int vnet, struct ip_prefix **out,
				 size_t *n)
{
	const struct config_vnet *v = &cfg->vnets[vnet];
	int err;

	*out = NULL;
	*n = 0;
	err = prefixes_append(out, n, v->prefixes, v->n_prefixes);
	for (size_t p = 0; !err && p < v->n_peerings; p++) {
		const struct config_peering *peering = &v->peerings[p];

		/* Azure: the tag holds the peer only where this side allows access to it. */
		if (!peering->connected || !peering->allow_virtual_network_access ||
		    peering->remote_vnet == CONFIG_NONE)
			continue;
		err = prefixes_append(out, n, cfg->vnets[peering->remote_vnet].prefixes,
				      cfg->vnets[peering->remote_vnet].n_prefixes);
		if (!err && peering->use_remote_gateways)
			err = gateway_reach(cfg, cfg->vnets[peering->remote_vnet].virtual_network_gateway,
					    out, n);
	}
	if (!err)
		err = gateway_reach(cfg, v->virtual_network_gateway, out, n);
	if (err) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return err;
}

/* ---- compiling one table (pure: config in, plan out) -------------------------------- */

/* Appends one element to a growing array of the plan. */
static void *plan_append(void *array_ptr, size_t *n, size_t *capacity, size_t size)
{
	void **array = array_ptr;

	if (*n == *capacity) {
		size_t bigger = *capacity ? *capacity * 2 : 16;
		void *grown = realloc(*array, bigger * size);

		if (!grown)
			return NULL;
		*array = grown;
		*capacity = bigger;
	}
	memset((char *)*array + *n * size, 0, size);
	return (char *)*array + (*n)++ * size;
}

struct plan_capacity {
	size_t addresses, ports, intervals, tables, rules, bindings;
};

struct table_build {
	const struct config *cfg;
	const struct config_security_rule **rules; /* by priority */
	size_t n_rules;
	const struct ip_prefix *vnet_prefixes;     /* the VirtualNetwork tag here */
	size_t n_vnet_prefixes;
	uint32_t table;
};

static void bit_set(struct nsg_bitmap *b, size_t bit)
{
	b->words[bit / 64] |= 1ULL << (bit % 64);
	b->summary |= 1ULL << (bit / 64);
}

const struct ip_prefix nsg_azure_load_balancer = { .family = AF_INET, .len = 32,
						   .addr = { 168, 63, 129, 16 } };

static bool in_any(const struct ip_prefix *list, size_t n, const struct ip_prefix *p)
{
	for (size_t i = 0; i < n; i++)
		if (ip_prefix_contains(&list[i], p))
			return true;
	return false;
}

/* Whether an address spec holds every address of p (p is an entry of the trie, so no
 * spec boundary falls inside it: holding one address of it is holding all). */
static bool address_holds(const struct config *cfg, const struct nsg_address *a,
			  const struct ip_prefix *p, bool in_vnet)
{
	const struct config_address_group *group;

	switch (a->kind) {
	case NSG_ADDR_ANY: return true;
	case NSG_ADDR_PREFIX: return ip_prefix_contains(&a->prefix, p);
	case NSG_ADDR_TAG_VIRTUAL_NETWORK: return in_vnet;
	case NSG_ADDR_TAG_INTERNET: return !in_vnet;
	case NSG_ADDR_TAG_AZURE_LOAD_BALANCER: return ip_prefix_contains(&nsg_azure_load_balancer, p);
	case NSG_ADDR_SERVICE_TAG:
	case NSG_ADDR_APPLICATION_SECURITY_GROUP:
		group = config_address_group_of(cfg, a);
		return in_any(group->prefixes, group->n_prefixes, p);
	}
	return false;
}

static int prefix_compare(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ip_prefix));
}

/* Every prefix a rule of the table names on one side, both families' /0 and, where a rule
 * names VirtualNetwork or Internet, the tag's prefixes: sorted, each once. */
static int address_side_entries(const struct table_build *t, int side, struct ip_prefix **out,
				size_t *n_out)
{
	struct ip_prefix *entries = calloc(2, sizeof(*entries));
	size_t n = 0, unique = 0;
	bool tags = false;
	int err = 0;

	if (!entries)
		return -ENOMEM;
	entries[n++] = (struct ip_prefix){ .family = AF_INET };
	entries[n++] = (struct ip_prefix){ .family = AF_INET6 };
	for (size_t r = 0; !err && r < t->n_rules; r++) {
		const struct config_security_rule *rule = t->rules[r];
		const struct nsg_address *list = side ? rule->destinations : rule->sources;
		size_t count = side ? rule->n_destinations : rule->n_sources;

		for (size_t i = 0; !err && i < count; i++) {
			const struct config_address_group *group =
				config_address_group_of(t->cfg, &list[i]);

			if (group)
				err = prefixes_append(&entries, &n, group->prefixes,
						      group->n_prefixes);
			else if (list[i].kind == NSG_ADDR_PREFIX)
				err = prefixes_append(&entries, &n, &list[i].prefix, 1);
			else if (list[i].kind == NSG_ADDR_TAG_AZURE_LOAD_BALANCER)
				err = prefixes_append(&entries, &n, &nsg_azure_load_balancer, 1);
			else if (list[i].kind == NSG_ADDR_TAG_VIRTUAL_NETWORK ||
				 list[i].kind == NSG_ADDR_TAG_INTERNET)
				tags = true;
		}
	}
	if (!err && tags)
		err = prefixes_append(&entries, &n, t->vnet_prefixes, t->n_vnet_prefixes);
	if (err) {
		free(entries);
		return err;
	}
	qsort(entries, n, sizeof(*entries), prefix_compare);
	for (size_t i = 0; i < n; i++)
		if (!unique || prefix_compare(&entries[unique - 1], &entries[i]))
			entries[unique++] = entries[i];
	*out = entries;
	*n_out = unique;
	return 0;
}

static int address_side_compile(struct nsg_plan *plan, struct plan_capacity *cap,
				const struct table_build *t, int side)
{
	struct ip_prefix *entries = NULL;
	size_t n;
	int err = address_side_entries(t, side, &entries, &n);

	for (size_t e = 0; !err && e < n; e++) {
		const struct ip_prefix *p = &entries[e];
		bool in_vnet = in_any(t->vnet_prefixes, t->n_vnet_prefixes, p);
		struct nsg_plan_address *entry =
			plan_append(&plan->addresses, &plan->n_addresses, &cap->addresses,
				    sizeof(*entry));

		if (!entry) {
			err = -ENOMEM;
			break;
		}
		for (size_t r = 0; r < t->n_rules; r++) {
			const struct config_security_rule *rule = t->rules[r];
			const struct nsg_address *list = side ? rule->destinations : rule->sources;
			size_t count = side ? rule->n_destinations : rule->n_sources;

			for (size_t i = 0; i < count; i++)
				if (address_holds(t->cfg, &list[i], p, in_vnet)) {
					bit_set(&entry->bits, r);
					break;
				}
		}
		lpm_key_from_prefix(&entry->key, t->table * 2 + side, p);
	}
	free(entries);
	return err;
}

static int u16_compare(const void *a, const void *b)
{
	return (int)*(const uint32_t *)a - (int)*(const uint32_t *)b;
}

static bool ranges_cover(const struct port_range *ranges, size_t n, uint32_t lo, uint32_t hi)
{
	for (size_t i = 0; i < n; i++)
		if (ranges[i].from <= lo && hi <= ranges[i].to)
			return true;
	return false;
}

static int port_entry_add(struct nsg_plan *plan, struct plan_capacity *cap, uint32_t scope,
			  bool has_port, uint32_t value, unsigned bits, uint32_t interval)
{
	struct nsg_plan_port *entry = plan_append(&plan->ports, &plan->n_ports, &cap->ports,
						  sizeof(*entry));

	if (!entry)
		return -ENOMEM;
	entry->key = (struct nsg_port_key){ .prefixlen = 32 + 8 + bits, .scope = scope };
	entry->key.data[0] = has_port;
	entry->key.data[1] = value >> 8;
	entry->key.data[2] = value & 0xff;
	entry->interval = interval;
	return 0;
}

/* [lo, hi] as the fewest aligned power-of-two blocks: one LPM entry each. */
static int port_interval_add(struct nsg_plan *plan, struct plan_capacity *cap, uint32_t scope,
			     uint32_t lo, uint32_t hi, uint32_t interval)
{
	int err = 0;

	while (!err && lo <= hi) {
		unsigned bits = 0;

		while (bits < 16 && !(lo & (1u << bits)) && lo + (2u << bits) - 1 <= hi)
			bits++;
		err = port_entry_add(plan, cap, scope, true, lo, 16 - bits, interval);
		lo += 1u << bits;
	}
	return err;
}

static const struct port_range *side_ports(const struct config_security_rule *rule, int side,
					   size_t *n)
{
	*n = side ? rule->n_destination_ports : rule->n_source_ports;
	return side ? rule->destination_ports : rule->source_ports;
}

/* A new elementary interval: the rules of the table whose ranges cover [lo, hi]. */
static int interval_add(struct nsg_plan *plan, struct plan_capacity *cap,
			const struct table_build *t, int side, uint32_t lo, uint32_t hi,
			uint32_t *id)
{
	struct nsg_bitmap *bits;

	if (plan->n_intervals >= MAX_NSG_PORT_INTERVALS)
		return -ENOSPC;
	bits = plan_append(&plan->intervals, &plan->n_intervals, &cap->intervals, sizeof(*bits));
	if (!bits)
		return -ENOMEM;
	for (size_t r = 0; r < t->n_rules; r++) {
		size_t n;
		const struct port_range *ranges = side_ports(t->rules[r], side, &n);

		if (ranges_cover(ranges, n, lo, hi))
			bit_set(bits, r);
	}
	*id = (uint32_t)plan->n_intervals - 1;
	return 0;
}

static int port_side_compile(struct nsg_plan *plan, struct plan_capacity *cap,
			     const struct table_build *t, int side)
{
	uint32_t *bounds, scope = t->table * 2 + side, id;
	size_t n = 0, unique = 0, capacity = 2;
	int err;

	for (size_t r = 0; r < t->n_rules; r++)
		capacity += 2 * (side ? t->rules[r]->n_destination_ports : t->rules[r]->n_source_ports);
	bounds = calloc(capacity, sizeof(*bounds));
	if (!bounds)
		return -ENOMEM;
	bounds[n++] = 0;
	bounds[n++] = 65536;
	for (size_t r = 0; r < t->n_rules; r++) {
		size_t count;
		const struct port_range *ranges = side_ports(t->rules[r], side, &count);

		for (size_t i = 0; i < count; i++) {
			bounds[n++] = ranges[i].from;
			bounds[n++] = (uint32_t)ranges[i].to + 1;
		}
	}
	qsort(bounds, n, sizeof(*bounds), u16_compare);
	for (size_t i = 0; i < n; i++)
		if (!unique || bounds[unique - 1] != bounds[i])
			bounds[unique++] = bounds[i];

	/* Packets without ports: rules whose ranges cover every port. */
	err = interval_add(plan, cap, t, side, 0, 65535, &id);
	if (!err)
		err = port_entry_add(plan, cap, scope, false, 0, 0, id);
	for (size_t i = 0; !err && i + 1 < unique; i++) {
		uint32_t lo = bounds[i], hi = bounds[i + 1] - 1;

		err = interval_add(plan, cap, t, side, lo, hi, &id);
		if (!err)
			err = port_interval_add(plan, cap, scope, lo, hi, id);
	}
	free(bounds);
	return err;
}

static bool protocol_admits(enum nsg_protocol protocol, unsigned class)
{
	switch (protocol) {
	case NSG_PROTO_ANY: return true;
	case NSG_PROTO_TCP: return class == NSG_CLASS_TCP;
	case NSG_PROTO_UDP: return class == NSG_CLASS_UDP;
	case NSG_PROTO_ICMP: return class == NSG_CLASS_ICMP;
	case NSG_PROTO_ESP: return class == NSG_CLASS_ESP;
	case NSG_PROTO_AH: return class == NSG_CLASS_AH;
	}
	return false;
}

static void protocols_compile(struct nsg_plan_table *table, const struct table_build *t)
{
	for (unsigned class = 0; class < NSG_PROTO_CLASSES; class++)
		for (size_t r = 0; r < t->n_rules; r++)
			if (protocol_admits(t->rules[r]->protocol, class))
				bit_set(&table->protocols[class], r);
}

static int rule_priority_compare(const void *a, const void *b)
{
	const struct config_security_rule *x = *(const struct config_security_rule *const *)a;
	const struct config_security_rule *y = *(const struct config_security_rule *const *)b;

	return x->priority - y->priority;
}

static int table_compile(struct nsg_plan *plan, struct plan_capacity *cap,
			 const struct config *cfg, int nsg_index, int vnet, int direction)
{
	const struct config_nsg *nsg = &cfg->nsgs[nsg_index];
	struct table_build t = { .cfg = cfg, .table = (uint32_t)plan->n_tables };
	struct ip_prefix *vnet_prefixes = NULL;
	struct nsg_plan_table *table;
	int err;

	t.rules = calloc(nsg->n_rules + 1, sizeof(*t.rules));
	if (!t.rules)
		return -ENOMEM;
	for (size_t r = 0; r < nsg->n_rules; r++)
		if ((int)nsg->rules[r].direction == direction)
			t.rules[t.n_rules++] = &nsg->rules[r];
	qsort(t.rules, t.n_rules, sizeof(*t.rules), rule_priority_compare);
	if (t.n_rules > NSG_MAX_RULES || plan->n_rules + t.n_rules > MAX_NSG_RULE_SLOTS) {
		log_error("network security group %s: %zu %s rules; at most %d per direction",
			  nsg->name, t.n_rules, direction ? "outbound" : "inbound", NSG_MAX_RULES);
		free(t.rules);
		return -E2BIG;
	}
	table = plan_append(&plan->tables, &plan->n_tables, &cap->tables, sizeof(*table));
	err = table ? nsg_virtual_network_prefixes(cfg, vnet, &vnet_prefixes, &t.n_vnet_prefixes)
		    : -ENOMEM;
	t.vnet_prefixes = vnet_prefixes;
	if (table) {
		table->nsg = nsg_index;
		table->vnet = vnet;
		table->info = (struct nsg_table){ .rule_base = (uint32_t)plan->n_rules,
						  .n_rules = (uint32_t)t.n_rules,
						  .nsg_id = NSG_NONE, .direction = direction };
		protocols_compile(table, &t);
	}
	for (size_t r = 0; !err && r < t.n_rules; r++) {
		struct nsg_plan_rule *slot = plan_append(&plan->rules, &plan->n_rules, &cap->rules,
							 sizeof(*slot));

		if (!slot) {
			err = -ENOMEM;
			break;
		}
		slot->nsg = nsg_index;
		slot->rule = t.rules[r];
		slot->slot = (struct nsg_rule){ .rule_id = NSG_NONE,
						.priority = (uint16_t)t.rules[r]->priority,
						.access = t.rules[r]->access == NSG_DENY };
	}
	for (int side = 0; !err && side < 2; side++) {
		err = address_side_compile(plan, cap, &t, side);
		if (!err)
			err = port_side_compile(plan, cap, &t, side);
	}
	free(vnet_prefixes);
	free(t.rules);
	return err;
}

/* ---- pairs and bindings -------------------------------------------------------------- */

struct pair { int nsg, vnet; };

static int pair_index(struct pair **pairs, size_t *n, int nsg, int vnet)
{
	struct pair *bigger;

	for (size_t i = 0; i < *n; i++)
		if ((*pairs)[i].nsg == nsg && (*pairs)[i].vnet == vnet)
			return (int)i;
	if (*n * 2 + 2 > MAX_NSG_TABLES)
		return -E2BIG;
	bigger = realloc(*pairs, (*n + 1) * sizeof(**pairs));
	if (!bigger)
		return -ENOMEM;
	*pairs = bigger;
	(*pairs)[*n] = (struct pair){ nsg, vnet };
	return (int)(*n)++;
}

static int binding_add(struct nsg_plan *plan, struct plan_capacity *cap, int vnet,
		       const struct ip_prefix *prefix, uint32_t subnet_pair, uint32_t nic_pair)
{
	struct nsg_plan_binding *b = plan_append(&plan->bindings, &plan->n_bindings,
						 &cap->bindings, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->binding = (struct nsg_binding){ .subnet_pair = subnet_pair, .nic_pair = nic_pair };
	lpm_key_from_prefix(&b->key, (uint32_t)vnet, prefix);
	return 0;
}

/* The pair index + 1 of the subnet's NSG, 0 without one. */
static int subnet_pair(struct pair **pairs, size_t *n, const struct config *cfg, int vnet,
		       int subnet)
{
	int nsg, p;

	if (vnet == CONFIG_NONE || subnet == CONFIG_NONE)
		return 0;
	nsg = cfg->vnets[vnet].subnets[subnet].network_security_group;
	if (nsg == CONFIG_NONE)
		return 0;
	p = pair_index(pairs, n, nsg, vnet);
	return p < 0 ? p : p + 1;
}

static int bindings_compile(struct nsg_plan *plan, struct plan_capacity *cap,
			    const struct config *cfg, struct pair **pairs, size_t *n_pairs)
{
	int err = 0;

	for (size_t v = 0; !err && v < cfg->n_vnets; v++)
		for (size_t s = 0; !err && s < cfg->vnets[v].n_subnets; s++) {
			const struct config_subnet *subnet = &cfg->vnets[v].subnets[s];
			int p = subnet_pair(pairs, n_pairs, cfg, v, s);

			if (p < 0)
				return p;
			for (size_t i = 0; p && !err && i < subnet->n_prefixes; i++)
				err = binding_add(plan, cap, v, &subnet->prefixes[i], p, 0);
		}
	for (size_t i = 0; !err && i < cfg->n_nics; i++) {
		const struct config_nic *nic = &cfg->nics[i];
		int sp, np = 0;

		if (nic->network_security_group == CONFIG_NONE)
			continue;
		if (nic->vnet == CONFIG_NONE) {
			log_info("network interface %s: no subnet known, its NSG %s is not applied",
				 nic->name, cfg->nsgs[nic->network_security_group].name);
			continue;
		}
		sp = subnet_pair(pairs, n_pairs, cfg, nic->vnet, nic->subnet);
		np = pair_index(pairs, n_pairs, nic->network_security_group, nic->vnet);
		if (sp < 0 || np < 0)
			return sp < 0 ? sp : np;
		for (size_t a = 0; !err && a < nic->n_addresses; a++) {
			struct ip_prefix host = { .family = nic->addresses[a].family,
						  .len = nic->addresses[a].family == AF_INET ? 32 : 128 };

			memcpy(host.addr, nic->addresses[a].addr, 16);
			err = binding_add(plan, cap, nic->vnet, &host, sp, np + 1);
		}
	}
	return err;
}

static uint32_t seconds_or_default(uint32_t value, uint32_t fallback)
{
	return value ? value : fallback;
}

int nsg_plan_build(const struct config *cfg, struct nsg_plan *plan)
{
	const struct config_limits *lim = &cfg->limits;
	struct plan_capacity cap = { 0 };
	struct pair *pairs = NULL;
	size_t n_pairs = 0;
	int err;

	memset(plan, 0, sizeof(*plan));
	plan->tcp_idle_timeout =
		seconds_or_default(lim->tcp_idle_timeout_seconds, FLOW_TCP_IDLE_TIMEOUT_DEFAULT);
	plan->tcp_transitory_timeout = seconds_or_default(lim->tcp_transitory_timeout_seconds,
							  FLOW_TCP_TRANSITORY_TIMEOUT_DEFAULT);
	plan->udp_idle_timeout =
		seconds_or_default(lim->udp_idle_timeout_seconds, FLOW_UDP_IDLE_TIMEOUT_DEFAULT);
	plan->icmp_idle_timeout =
		seconds_or_default(lim->icmp_idle_timeout_seconds, FLOW_ICMP_IDLE_TIMEOUT_DEFAULT);
	err = bindings_compile(plan, &cap, cfg, &pairs, &n_pairs);
	/* Table 2p is pair p's inbound table, 2p + 1 its outbound one (struct nsg_binding). */
	for (size_t p = 0; !err && p < n_pairs; p++)
		for (int direction = 0; !err && direction < 2; direction++)
			err = table_compile(plan, &cap, cfg, pairs[p].nsg, pairs[p].vnet, direction);
	free(pairs);
	if (err) {
		log_error("cannot compile the network security groups: %s", strerror(-err));
		nsg_plan_free(plan);
	}
	return err;
}

void nsg_plan_free(struct nsg_plan *plan)
{
	free(plan->addresses);
	free(plan->ports);
	free(plan->intervals);
	free(plan->tables);
	free(plan->rules);
	free(plan->bindings);
	free(plan->flushes);
	free(plan->fresh_rule_ids);
	memset(plan, 0, sizeof(*plan));
}

/* ---- stable ids ---------------------------------------------------------------------- */

static int64_t nsg_id_for(struct nsg_ids *ids, const char *name)
{
	json_t *nsgs = json_object_get(ids->doc, "nsgs"), *entry = json_object_get(nsgs, name);
	int64_t id;

	if (entry)
		return json_integer_value(json_object_get(entry, "id"));
	id = free_id(nsgs, MAX_NSG_IDS);
	if (id < 0)
		return id;
	json_object_set_new(nsgs, name, json_pack("{s:I, s:i}", "id", (json_int_t)id,
						  "flushGeneration", 0));
	return id;
}

static int fresh_rule_id_add(struct nsg_plan *plan, size_t *capacity, uint32_t id)
{
	uint32_t *slot = plan_append(&plan->fresh_rule_ids, &plan->n_fresh_rule_ids, capacity,
				     sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	*slot = id;
	return 0;
}

/* flushConnection: an NSG whose rules changed since the last generation re-evaluates
 * the flows it allowed. Sets the plan's flush entries and its newest flush generation. */
static int flush_generations_compile(struct nsg_plan *plan, const struct config *cfg,
				     struct nsg_ids *ids, uint32_t generation)
{
	json_t *nsgs = json_object_get(ids->doc, "nsgs");
	size_t capacity = 0;

	plan->flush_generation = 0;
	for (size_t i = 0; i < cfg->n_nsgs; i++) {
		const struct config_nsg *nsg = &cfg->nsgs[i];
		json_t *entry = json_object_get(nsgs, nsg->name);
		const char *before;
		struct nsg_plan_flush *flush;
		char fingerprint[32];

		snprintf(fingerprint, sizeof(fingerprint), "%016llx",
			 (unsigned long long)nsg_fingerprint(cfg, nsg));
		if (!entry)
			continue;
		flush = plan_append(&plan->flushes, &plan->n_flushes, &capacity, sizeof(*flush));
		if (!flush)
			return -ENOMEM;
		flush->since = (uint32_t)json_integer_value(json_object_get(entry, "flushGeneration"));
		flush->nsg_id = (uint32_t)json_integer_value(json_object_get(entry, "id"));
		before = json_string_value(json_object_get(entry, "fingerprint"));
		if (nsg->flush_connection && before && strcmp(before, fingerprint)) {
			flush->since = generation;
			json_object_set_new(entry, "flushGeneration", json_integer(generation));
		}
		json_object_set_new(entry, "fingerprint", json_string(fingerprint));
		if (flush->since > plan->flush_generation)
			plan->flush_generation = flush->since;
	}
	return 0;
}

int nsg_plan_assign_ids(struct nsg_plan *plan, const struct config *cfg, struct nsg_ids *ids,
			uint32_t generation)
{
	size_t fresh_capacity = 0;
	int err = 0;

	for (size_t t = 0; !err && t < plan->n_tables; t++) {
		struct nsg_plan_table *table = &plan->tables[t];
		const struct config_nsg *nsg = &cfg->nsgs[table->nsg];
		int64_t id = nsg_id_for(ids, nsg->name);

		if (id < 0) {
			err = (int)id;
			break;
		}
		table->info.nsg_id = (uint32_t)id;
		for (uint32_t r = 0; !err && r < table->info.n_rules; r++) {
			struct nsg_plan_rule *rule = &plan->rules[table->info.rule_base + r];
			bool fresh = false;

			id = rule_id_for(ids, nsg->name, rule->rule, generation, &fresh);
			if (id < 0)
				err = (int)id;
			else if (fresh)
				err = fresh_rule_id_add(plan, &fresh_capacity, (uint32_t)id);
			rule->slot.rule_id = (uint32_t)id;
		}
	}
	if (!err) {
		json_object_set_new(ids->doc, "generation", json_integer(generation));
		err = flush_generations_compile(plan, cfg, ids, generation);
	}
	return err;
}

void nsg_plan_settings(const struct nsg_plan *plan, struct gateway_settings *s)
{
	s->tcp_idle_timeout = plan->tcp_idle_timeout;
	s->tcp_transitory_timeout = plan->tcp_transitory_timeout;
	s->udp_idle_timeout = plan->udp_idle_timeout;
	s->icmp_idle_timeout = plan->icmp_idle_timeout;
	s->flush_generation = plan->flush_generation;
}

uint32_t nsg_flow_table_size(const struct config *cfg)
{
	return cfg->limits.flow_table_size ? cfg->limits.flow_table_size : FLOW_TABLE_ENTRIES_DEFAULT;
}

/* Effective security rules: see effective_rules.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include "compile/effective_rules.h"
#include "compile/nsg.h"

/* ---- what an address stands for ------------------------------------------------------- */

static void prefix_append(json_t *list, const struct ip_prefix *p)
{
	char addr[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 8];

	inet_ntop(p->family, p->addr, addr, sizeof(addr));
	snprintf(text, sizeof(text), "%s/%u", addr, p->len);
	json_array_append_new(list, json_string(text));
}

/* p less every prefix of `holes`, as the fewest CIDRs: Internet is all that is not
 * VirtualNetwork. */
static void complement(const struct ip_prefix *p, const struct ip_prefix *holes, size_t n,
		       json_t *out)
{
	bool overlaps = false;
	struct ip_prefix half;

	for (size_t i = 0; i < n; i++) {
		if (ip_prefix_contains(&holes[i], p))
			return;
		overlaps |= ip_prefix_overlaps(&holes[i], p);
	}
	if (!overlaps) {
		prefix_append(out, p);
		return;
	}
	half = *p;
	half.len++;
	complement(&half, holes, n, out);
	half.addr[p->len / 8] |= (uint8_t)(0x80 >> (p->len % 8));
	complement(&half, holes, n, out);
}

struct view {
	const struct config *cfg;
	struct ip_prefix *virtual_network;
	size_t n_virtual_network;
};

static void expand(const struct view *v, const struct nsg_address *a, json_t *out)
{
	static const struct ip_prefix everything[2] = { { .family = AF_INET },
							{ .family = AF_INET6 } };
	const struct config_address_group *group = config_address_group_of(v->cfg, a);

	if (group) {
		for (size_t i = 0; i < group->n_prefixes; i++)
			prefix_append(out, &group->prefixes[i]);
		return;
	}
	switch (a->kind) {
	case NSG_ADDR_ANY:
		prefix_append(out, &everything[0]);
		prefix_append(out, &everything[1]);
		break;
	case NSG_ADDR_PREFIX:
		prefix_append(out, &a->prefix);
		break;
	case NSG_ADDR_TAG_VIRTUAL_NETWORK:
		for (size_t i = 0; i < v->n_virtual_network; i++)
			prefix_append(out, &v->virtual_network[i]);
		break;
	case NSG_ADDR_TAG_INTERNET:
		for (int f = 0; f < 2; f++)
			complement(&everything[f], v->virtual_network, v->n_virtual_network, out);
		break;
	case NSG_ADDR_TAG_AZURE_LOAD_BALANCER:
		prefix_append(out, &nsg_azure_load_balancer);
		break;
	default:
		break;
	}
}

/* ---- one rule as Azure shows it --------------------------------------------------------- */

static const char *protocol_name(enum nsg_protocol p)
{
	static const char *const names[] = { [NSG_PROTO_ANY] = "All", [NSG_PROTO_TCP] = "Tcp",
					     [NSG_PROTO_UDP] = "Udp", [NSG_PROTO_ICMP] = "Icmp",
					     [NSG_PROTO_ESP] = "Esp", [NSG_PROTO_AH] = "Ah" };

	return names[p];
}

static void side_json(const struct view *v, json_t *rule, const char *side,
		      const struct nsg_address *list, size_t n, const struct port_range *ports,
		      size_t n_ports)
{
	json_t *written = json_array(), *expanded = json_array(), *ranges = json_array();
	char key[64], buf[64];

	for (size_t i = 0; i < n; i++) {
		json_array_append_new(written, json_string(nsg_address_text(v->cfg, &list[i], buf,
									    sizeof(buf))));
		expand(v, &list[i], expanded);
	}
	for (size_t i = 0; i < n_ports; i++) {
		snprintf(buf, sizeof(buf), "%u-%u", ports[i].from, ports[i].to);
		json_array_append_new(ranges, json_string(buf));
	}
	snprintf(key, sizeof(key), "%sAddressPrefix", side);
	if (n == 1)
		json_object_set(rule, key, json_array_get(written, 0));
	snprintf(key, sizeof(key), "%sAddressPrefixes", side);
	json_object_set_new(rule, key, written);
	snprintf(key, sizeof(key), "expanded%c%sAddressPrefix", side[0] - 'a' + 'A', side + 1);
	json_object_set_new(rule, key, expanded);
	snprintf(key, sizeof(key), "%sPortRange", side);
	if (n_ports == 1)
		json_object_set(rule, key, json_array_get(ranges, 0));
	snprintf(key, sizeof(key), "%sPortRanges", side);
	json_object_set_new(rule, key, ranges);
}

static json_t *rule_json(const struct view *v, const struct config_security_rule *r)
{
	char name[300];
	json_t *rule;

	snprintf(name, sizeof(name), "%s/%s", r->is_default ? "defaultSecurityRules" :
		 "securityRules", r->name);
	rule = json_pack("{s:s, s:s, s:s, s:i, s:s}", "name", name, "direction",
			 r->direction == NSG_INBOUND ? "Inbound" : "Outbound", "access",
			 r->access == NSG_ALLOW ? "Allow" : "Deny", "priority", r->priority,
			 "protocol", protocol_name(r->protocol));
	if (!rule)
		return NULL;
	side_json(v, rule, "source", r->sources, r->n_sources, r->source_ports,
		  r->n_source_ports);
	side_json(v, rule, "destination", r->destinations, r->n_destinations,
		  r->destination_ports, r->n_destination_ports);
	return rule;
}

/* Inbound then outbound, each by priority: the order the datapath evaluates them. */
static int evaluation_order(const void *a, const void *b)
{
	const struct config_security_rule *x = *(const struct config_security_rule *const *)a;
	const struct config_security_rule *y = *(const struct config_security_rule *const *)b;

	if (x->direction != y->direction)
		return (int)x->direction - (int)y->direction;
	return x->priority - y->priority;
}

static json_t *nsg_json(const struct view *v, int nsg, const char *association,
			const char *associated)
{
	const struct config_nsg *g = &v->cfg->nsgs[nsg];
	const struct config_security_rule **order = calloc(g->n_rules + 1, sizeof(*order));
	json_t *rules = json_array(), *entry;

	if (!order || !rules) {
		free(order);
		json_decref(rules);
		return NULL;
	}
	for (size_t i = 0; i < g->n_rules; i++)
		order[i] = &g->rules[i];
	qsort(order, g->n_rules, sizeof(*order), evaluation_order);
	for (size_t i = 0; i < g->n_rules; i++)
		json_array_append_new(rules, rule_json(v, order[i]));
	free(order);
	entry = json_pack("{s:{s:s}, s:s, s:o}", "association", association, associated,
			  "networkSecurityGroup", g->name, "effectiveSecurityRules", rules);
	return entry;
}

json_t *effective_rules_json(const struct config *cfg, int nic, int vnet, int subnet)
{
	struct view v = { .cfg = cfg };
	json_t *doc, *value = json_array();
	char subnet_name[300] = "";

	if (nic != CONFIG_NONE) {
		vnet = cfg->nics[nic].vnet;
		subnet = cfg->nics[nic].subnet;
	}
	if (vnet != CONFIG_NONE && nsg_virtual_network_prefixes(cfg, vnet, &v.virtual_network,
								 &v.n_virtual_network)) {
		json_decref(value);
		return NULL;
	}
	if (vnet != CONFIG_NONE && subnet != CONFIG_NONE) {
		const struct config_subnet *s = &cfg->vnets[vnet].subnets[subnet];

		snprintf(subnet_name, sizeof(subnet_name), "%s/%s", cfg->vnets[vnet].name, s->name);
		if (s->network_security_group != CONFIG_NONE)
			json_array_append_new(value, nsg_json(&v, s->network_security_group,
							      "subnet", subnet_name));
	}
	if (nic != CONFIG_NONE && cfg->nics[nic].network_security_group != CONFIG_NONE)
		json_array_append_new(value, nsg_json(&v, cfg->nics[nic].network_security_group,
						      "networkInterface", cfg->nics[nic].name));
	doc = json_pack("{s:o}", "value", value);
	if (doc && nic != CONFIG_NONE)
		json_object_set_new(doc, "networkInterface", json_string(cfg->nics[nic].name));
	if (doc && subnet_name[0])
		json_object_set_new(doc, "subnet", json_string(subnet_name));
	if (doc && vnet != CONFIG_NONE)
		json_object_set_new(doc, "virtualNetwork", json_string(cfg->vnets[vnet].name));
	free(v.virtual_network);
	return doc;
}

int effective_rules_find_subnet(const struct config *cfg, const char *name, int *vnet,
				int *subnet)
{
	const char *slash = strchr(name, '/');
	int found = 0;

	*vnet = *subnet = CONFIG_NONE;
	for (size_t v = 0; v < cfg->n_vnets; v++) {
		const struct config_vnet *vn = &cfg->vnets[v];
		size_t len = strlen(vn->name);

		if (slash && ((size_t)(slash - name) != len || strncasecmp(name, vn->name, len)))
			continue;
		for (size_t s = 0; s < vn->n_subnets; s++)
			if (!strcasecmp(vn->subnets[s].name, slash ? slash + 1 : name)) {
				*vnet = (int)v;
				*subnet = (int)s;
				found++;
			}
	}
	return found == 1 ? 0 : found ? -EEXIST : -ENOENT;
}

/* ---- text ----------------------------------------------------------------------------------- */

#define SHOWN_PREFIXES 4

/* "web-asg = 10.11.1.4/32, 10.11.1.6/32": what was written, then what it stands for
 * where that differs (at most SHOWN_PREFIXES of them; -j has all). */
static void address_cell(json_t *rule, const char *side, char *buf, size_t size)
{
	char key[64];
	json_t *written, *expanded, *it;
	size_t i, at = 0;
	bool same;

	snprintf(key, sizeof(key), "%sAddressPrefixes", side);
	written = json_object_get(rule, key);
	snprintf(key, sizeof(key), "expanded%c%sAddressPrefix", side[0] - 'a' + 'A', side + 1);
	expanded = json_object_get(rule, key);
	buf[0] = '\0';
	json_array_foreach(written, i, it)
		at += (size_t)snprintf(buf + at, at < size ? size - at : 0, "%s%s", i ? "," : "",
				       json_string_value(it));
	same = json_equal(written, expanded) ||
	       (json_array_size(written) == 1 && !strcmp(json_string_value(json_array_get(written, 0)), "*"));
	if (same || at >= size)
		return;
	at += (size_t)snprintf(buf + at, size - at, " =");
	if (!json_array_size(expanded))
		snprintf(buf + at, at < size ? size - at : 0, " (nothing)");
	json_array_foreach(expanded, i, it) {
		if (at >= size)
			break;
		if (i == SHOWN_PREFIXES) {
			snprintf(buf + at, size - at, " +%zu more", json_array_size(expanded) - i);
			break;
		}
		at += (size_t)snprintf(buf + at, size - at, " %s", json_string_value(it));
	}
}

static void ports_cell(json_t *rule, const char *key, char *buf, size_t size)
{
	json_t *it;
	size_t i, at = 0;

	buf[0] = '\0';
	json_array_foreach(json_object_get(rule, key), i, it) {
		unsigned from = 0, to = 0;
		char one[16];

		sscanf(json_string_value(it), "%u-%u", &from, &to);
		if (from == to)
			snprintf(one, sizeof(one), "%u", from);
		else if (from == 0 && to == 65535)
			snprintf(one, sizeof(one), "*");
		else
			snprintf(one, sizeof(one), "%u-%u", from, to);
		at += (size_t)snprintf(buf + at, at < size ? size - at : 0, "%s%s", i ? "," : "",
				       one);
	}
}

enum { COLUMNS = 9, CELL = 512 };

static void row_of(json_t *rule, const char *nsg, char cells[COLUMNS][CELL])
{
	const char *name = json_string_value(json_object_get(rule, "name"));

	snprintf(cells[0], CELL, "%s", nsg);
	snprintf(cells[1], CELL, "%lld", json_integer_value(json_object_get(rule, "priority")));
	snprintf(cells[2], CELL, "%s", strchr(name, '/') ? strchr(name, '/') + 1 : name);
	snprintf(cells[3], CELL, "%s", json_string_value(json_object_get(rule, "access")));
	snprintf(cells[4], CELL, "%s", json_string_value(json_object_get(rule, "protocol")));
	address_cell(rule, "source", cells[5], CELL);
	ports_cell(rule, "sourcePortRanges", cells[6], CELL);
	address_cell(rule, "destination", cells[7], CELL);
	ports_cell(rule, "destinationPortRanges", cells[8], CELL);
}

static void cell_print(FILE *out, const char *text, int width, bool last)
{
	if (last)
		fprintf(out, "  %s\n", text);
	else
		fprintf(out, "  %-*s", width, text);
}

/* One direction's rules, NSG by NSG in evaluation order, as a table. */
static void direction_table(FILE *out, json_t *value, const char *direction, bool reverse)
{
	static const char *const headers[COLUMNS] = { "NSG", "PRIORITY", "NAME", "ACCESS",
						      "PROTOCOL", "SOURCE", "PORTS", "DESTINATION",
						      "PORTS" };
	size_t n = json_array_size(value), rows = 0, r = 0;
	int widths[COLUMNS];
	char (*cells)[COLUMNS][CELL];
	json_t *rule;
	size_t i;

	for (size_t g = 0; g < n; g++)
		json_array_foreach(json_object_get(json_array_get(value, g), "effectiveSecurityRules"),
				   i, rule)
			rows += !strcmp(json_string_value(json_object_get(rule, "direction")), direction);
	fprintf(out, "%s:", direction);
	for (size_t g = 0; g < n; g++) {
		json_t *entry = json_array_get(value, reverse ? n - 1 - g : g);
		const char *kind;
		json_t *v;

		json_object_foreach(json_object_get(entry, "association"), kind, v)
			fprintf(out, "%s %s NSG %s (%s %s)", g ? ", then" : "",
				!strcmp(kind, "subnet") ? "the subnet's" : "the NIC's",
				json_string_value(json_object_get(entry, "networkSecurityGroup")),
				!strcmp(kind, "subnet") ? "subnet" : "network interface",
				json_string_value(v));
	}
	fprintf(out, "%s\n", n ? "" : " no NSG applies: every packet passes");
	if (!rows || !(cells = calloc(rows, sizeof(*cells))))
		return;
	for (size_t g = 0; g < n; g++) {
		json_t *entry = json_array_get(value, reverse ? n - 1 - g : g);
		const char *nsg = json_string_value(json_object_get(entry, "networkSecurityGroup"));

		json_array_foreach(json_object_get(entry, "effectiveSecurityRules"), i, rule)
			if (!strcmp(json_string_value(json_object_get(rule, "direction")), direction))
				row_of(rule, nsg, cells[r++]);
	}
	for (int c = 0; c < COLUMNS; c++) {
		widths[c] = (int)strlen(headers[c]);
		for (r = 0; r < rows; r++)
			if ((int)strlen(cells[r][c]) > widths[c])
				widths[c] = (int)strlen(cells[r][c]);
	}
	for (int c = 0; c < COLUMNS; c++)
		cell_print(out, headers[c], widths[c], c + 1 == COLUMNS);
	for (r = 0; r < rows; r++)
		for (int c = 0; c < COLUMNS; c++)
			cell_print(out, cells[r][c], widths[c], c + 1 == COLUMNS);
	free(cells);
}

void effective_rules_text(FILE *out, json_t *doc)
{
	json_t *value = json_object_get(doc, "value");
	const char *nic = json_string_value(json_object_get(doc, "networkInterface"));
	const char *subnet = json_string_value(json_object_get(doc, "subnet"));

	if (nic)
		fprintf(out, "network interface %s, ", nic);
	fprintf(out, "subnet %s, virtual network %s\n", subnet ? subnet : "(none)",
		json_string_value(json_object_get(doc, "virtualNetwork")) ?: "(none)");
	/* Inbound: the subnet's NSG first, then the NIC's; outbound the other way round. */
	direction_table(out, value, "Inbound", false);
	direction_table(out, value, "Outbound", true);
}

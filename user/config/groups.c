/* Named address sets that security rules use: application security groups (the NICs that
 * join them in their ipConfigurations) and service tags (Azure's published tag file, named
 * by gateway.serviceTagsFile). Both become a config_address_group: a list of prefixes the
 * NSG compiler puts into the same tries as a rule's own prefixes. */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include "config/internal.h"

/* ---- application security groups ------------------------------------------------------- */

void build_application_security_groups(struct loader *l)
{
	struct config *cfg = l->cfg;
	size_t n = 0;

	for (size_t i = 0; i < l->n_records; i++)
		n += l->records[i].kind == KIND_APPLICATION_SECURITY_GROUP;
	cfg->application_security_groups = calloc(n + 1, sizeof(*cfg->application_security_groups));
	if (!cfg->application_security_groups) {
		reader_problem(&l->r, "resources", "out of memory");
		return;
	}
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct config_address_group *group;

		if (rec->kind != KIND_APPLICATION_SECURITY_GROUP || record_is_duplicate(l, i))
			continue;
		group = &cfg->application_security_groups[cfg->n_application_security_groups++];
		group->name = copy_string(rec->name);
		group->vnet = CONFIG_NONE;
	}
}

static int group_add_prefix(struct config_address_group *group, const struct ip_prefix *p)
{
	struct ip_prefix *bigger;

	for (size_t i = 0; i < group->n_prefixes; i++)
		if (!memcmp(&group->prefixes[i], p, sizeof(*p)))
			return 0;
	bigger = realloc(group->prefixes, (group->n_prefixes + 1) * sizeof(*bigger));
	if (!bigger)
		return -ENOMEM;
	bigger[group->n_prefixes++] = *p;
	group->prefixes = bigger;
	return 0;
}

static int nic_add_group(struct config_nic *nic, int group)
{
	int *bigger;

	for (size_t i = 0; i < nic->n_application_security_groups; i++)
		if (nic->application_security_groups[i] == group)
			return 0;
	bigger = realloc(nic->application_security_groups,
			 (nic->n_application_security_groups + 1) * sizeof(*bigger));
	if (!bigger)
		return -ENOMEM;
	bigger[nic->n_application_security_groups++] = group;
	nic->application_security_groups = bigger;
	return 0;
}

void read_nic_application_security_groups(struct loader *l, struct config_nic *nic,
					  struct node list, int vnet,
					  const struct ip_address *address)
{
	struct config *cfg = l->cfg;

	if (!list.value || json_is_null(list.value) || !is_array_or_report(&l->r, list))
		return;
	for (size_t i = 0; i < json_array_size(list.value); i++) {
		struct node element = node_element(&l->r, list, i);
		int index = resolve_reference(l, element, KIND_APPLICATION_SECURITY_GROUP,
					      cfg->application_security_groups,
					      cfg->n_application_security_groups,
					      sizeof(*cfg->application_security_groups));
		struct config_address_group *group;
		struct ip_prefix host = { 0 };

		if (index == CONFIG_NONE)
			continue;
		group = &cfg->application_security_groups[index];
		if (vnet != CONFIG_NONE && group->vnet != CONFIG_NONE && group->vnet != vnet) {
			reader_problem(&l->r, element.path, "application security group \"%s\" has "
				       "network interfaces in virtual network \"%s\", network "
				       "interface \"%s\" is in \"%s\"; allowed: the network "
				       "interfaces of an application security group in one virtual "
				       "network", group->name, cfg->vnets[group->vnet].name, nic->name,
				       cfg->vnets[vnet].name);
			continue;
		}
		if (vnet != CONFIG_NONE)
			group->vnet = vnet;
		host.family = address ? address->family : 0;
		host.len = host.family == AF_INET ? 32 : 128;
		if (address)
			memcpy(host.addr, address->addr, sizeof(host.addr));
		if (nic_add_group(nic, index) || (address && group_add_prefix(group, &host)))
			reader_problem(&l->r, element.path, "out of memory");
	}
}

/* Azure: "If you specify application security groups as the source and destination in a
 * security rule, the network interfaces in both application security groups must exist
 * in the same virtual network." Several on one side alike. */
void check_application_security_group_rules(struct loader *l)
{
	const struct config *cfg = l->cfg;

	for (size_t u = 0; u < l->n_asg_rules; u++) {
		const struct asg_rule *use = &l->asg_rules[u];
		const struct config_security_rule *rule = &cfg->nsgs[use->nsg].rules[use->rule];
		const struct config_address_group *first = NULL;

		for (size_t i = 0; i < rule->n_sources + rule->n_destinations; i++) {
			const struct nsg_address *a = i < rule->n_sources ? &rule->sources[i]
						   : &rule->destinations[i - rule->n_sources];
			const struct config_address_group *group;

			if (a->kind != NSG_ADDR_APPLICATION_SECURITY_GROUP)
				continue;
			group = &cfg->application_security_groups[a->group];
			if (group->vnet == CONFIG_NONE)
				continue;
			if (!first) {
				first = group;
			} else if (first->vnet != group->vnet) {
				reader_problem(&l->r, use->path, "rule \"%s\" names application "
					       "security group \"%s\" (network interfaces in virtual "
					       "network \"%s\") and \"%s\" (in \"%s\"); allowed: "
					       "application security groups of one virtual network in a "
					       "rule", rule->name, first->name, cfg->vnets[first->vnet].name,
					       group->name, cfg->vnets[group->vnet].name);
				break;
			}
		}
	}
}

int note_application_security_group_rule(struct loader *l, size_t nsg, size_t rule,
					 const char *path)
{
	struct asg_rule *bigger = realloc(l->asg_rules, (l->n_asg_rules + 1) * sizeof(*bigger));

	if (!bigger)
		return -ENOMEM;
	bigger[l->n_asg_rules++] = (struct asg_rule){ nsg, rule, path };
	l->asg_rules = bigger;
	return 0;
}

/* ---- service tags ------------------------------------------------------------------------- */

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* The file as the config names it: a relative path is relative to the config's folder. */
static char *tag_file_path(const char *config_path, const char *file)
{
	char *copy, *dir, *out;

	if (file[0] == '/' || !config_path || !strchr(config_path, '/'))
		return copy_string(file);
	copy = copy_string(config_path);
	if (!copy)
		return NULL;
	dir = dirname(copy);
	out = malloc(strlen(dir) + strlen(file) + 2);
	if (out)
		sprintf(out, "%s/%s", dir, file);
	free(copy);
	return out;
}

/* One values[] element: a name and properties.addressPrefixes of CIDRs. NULL when good,
 * else what is wrong, in buf. */
static const char *tag_problem(json_t *value, size_t index, char *buf, size_t size)
{
	json_t *name = json_object_get(value, "name");
	json_t *prefixes = json_object_get(json_object_get(value, "properties"), "addressPrefixes");
	json_t *prefix;
	size_t i;

	if (!json_is_string(name) || !json_string_length(name) ||
	    json_string_length(name) >= NAME_MAX_LEN) {
		snprintf(buf, size, "values[%zu].name: missing or not a name; allowed: the tag's "
			 "name (\"Storage\", \"Storage.WestEurope\")", index);
		return buf;
	}
	if (!json_is_array(prefixes)) {
		snprintf(buf, size, "values[%zu].properties.addressPrefixes: missing or not an "
			 "array; allowed: the tag's CIDRs", index);
		return buf;
	}
	json_array_foreach(prefixes, i, prefix) {
		struct ip_prefix p;

		if (!json_is_string(prefix) || ip_prefix_parse(json_string_value(prefix), &p)) {
			snprintf(buf, size, "values[%zu].properties.addressPrefixes[%zu]: not a CIDR "
				 "with its host bits zero; allowed: an IPv4 or IPv6 prefix", index, i);
			return buf;
		}
	}
	return NULL;
}

static const char *tag_file_problem(json_t *doc, char *buf, size_t size)
{
	json_t *values = json_object_get(doc, "values"), *value;
	size_t i;

	if (!json_is_object(doc) || !json_is_array(values)) {
		snprintf(buf, size, "no \"values\" array; allowed: Azure's service tag file "
			 "({\"values\": [{\"name\", \"properties\": {\"addressPrefixes\"}}]})");
		return buf;
	}
	json_array_foreach(values, i, value)
		if (tag_problem(value, i, buf, size))
			return buf;
	return NULL;
}

/* Reads the tag file before the NSGs, so that each rule's tag resolves where it is read. */
void load_service_tags(struct loader *l, struct node gateway)
{
	struct node file = node_child(&l->r, gateway, "serviceTagsFile");
	const char *text;
	char why[256];
	json_error_t jerr;
	json_t *doc, *value;
	FILE *f;
	size_t i;

	if (!json_is_object(gateway.value) || !file.value || !get_string(&l->r, file, &text))
		return;
	l->service_tags_path = file.path;
	if (!strcmp(text, "FILL-IN")) { /* `vnet-xdp import` writes it for rules with tags */
		reader_problem(&l->r, file.path, "still FILL-IN; allowed: the path of Azure's "
			       "service tag file (ServiceTags_Public_*.json, published weekly), for "
			       "the service tags the security rules name");
		return;
	}
	l->cfg->service_tags_file = tag_file_path(l->cfg->path, text);
	if (!l->cfg->service_tags_file) {
		reader_problem(&l->r, file.path, "out of memory");
		return;
	}
	f = fopen(l->cfg->service_tags_file, "r");
	if (!f) {
		reader_problem(&l->r, file.path, "cannot read service tag file %s: %s; allowed: "
			       "Azure's service tag file (ServiceTags_Public_*.json)",
			       reader_shown(&l->r, l->cfg->service_tags_file), strerror(errno));
		return;
	}
	doc = json_loadf(f, 0, &jerr);
	fclose(f);
	if (!doc) {
		reader_problem(&l->r, file.path, "service tag file %s: line %d: %s; allowed: "
			       "Azure's service tag file (ServiceTags_Public_*.json)",
			       reader_shown(&l->r, l->cfg->service_tags_file), jerr.line,
			       json_syntax_reason(&jerr));
		return;
	}
	if (tag_file_problem(doc, why, sizeof(why))) {
		reader_problem(&l->r, file.path, "service tag file %s: %s",
			       reader_shown(&l->r, l->cfg->service_tags_file), why);
		json_decref(doc);
		return;
	}
	l->service_tags = json_object();
	if (!l->service_tags) {
		reader_problem(&l->r, file.path, "out of memory");
		json_decref(doc);
		return;
	}
	json_array_foreach(json_object_get(doc, "values"), i, value) {
		char key[NAME_MAX_LEN];

		snprintf(key, sizeof(key), "%s", json_string_value(json_object_get(value, "name")));
		lower(key);
		json_object_set(l->service_tags, key, value);
	}
	json_decref(doc);
}

/* The index in cfg->service_tags of the tag named `name`, added at its first use;
 * CONFIG_NONE when the tag file does not have it, -ENOMEM-like failures reported. */
static int service_tag_index(struct loader *l, const char *name)
{
	struct config *cfg = l->cfg;
	char key[NAME_MAX_LEN];
	json_t *value, *prefix;
	struct config_address_group *bigger, *group;
	size_t i;

	if (strlen(name) >= sizeof(key))
		return CONFIG_NONE;
	strcpy(key, name);
	lower(key);
	value = json_object_get(l->service_tags, key);
	if (!value)
		return CONFIG_NONE;
	for (size_t t = 0; t < cfg->n_service_tags; t++)
		if (!strcasecmp(cfg->service_tags[t].name, name))
			return (int)t;
	bigger = realloc(cfg->service_tags, (cfg->n_service_tags + 1) * sizeof(*bigger));
	if (!bigger)
		return CONFIG_NONE;
	cfg->service_tags = bigger;
	group = &cfg->service_tags[cfg->n_service_tags];
	memset(group, 0, sizeof(*group));
	group->name = copy_string(json_string_value(json_object_get(value, "name")));
	group->vnet = CONFIG_NONE;
	json_array_foreach(json_object_get(json_object_get(value, "properties"), "addressPrefixes"),
			   i, prefix) {
		struct ip_prefix p;

		if (!ip_prefix_parse(json_string_value(prefix), &p) && group_add_prefix(group, &p))
			return CONFIG_NONE;
	}
	return (int)cfg->n_service_tags++;
}

bool resolve_service_tag(struct loader *l, struct node n, const char *name,
			 struct nsg_address *out)
{
	int index = service_tag_index(l, name);

	if (index != CONFIG_NONE) {
		out->kind = NSG_ADDR_SERVICE_TAG;
		out->group = index;
		return true;
	}
	if (l->service_tags_path && !l->service_tags)
		return false; /* the file's own problem (FILL-IN, unreadable, bad) is reported */
	if (l->service_tags_path)
		reader_problem(&l->r, n.path, "unknown service tag \"%s\"; allowed: VirtualNetwork, "
			       "Internet, AzureLoadBalancer or a tag of the service tag file %s "
			       "(gateway.serviceTagsFile)", reader_shown(&l->r, name),
			       reader_shown(&l->r, l->cfg->service_tags_file));
	else
		reader_problem(&l->r, n.path, "unknown service tag \"%s\"; allowed: VirtualNetwork, "
			       "Internet, AzureLoadBalancer, or Azure's service tag file named by "
			       "gateway.serviceTagsFile for other tags", reader_shown(&l->r, name));
	return false;
}

/* ---- for the compiler and the CLI ------------------------------------------------------------ */

const struct config_address_group *config_address_group_of(const struct config *cfg,
							   const struct nsg_address *address)
{
	if (address->kind == NSG_ADDR_SERVICE_TAG)
		return &cfg->service_tags[address->group];
	if (address->kind == NSG_ADDR_APPLICATION_SECURITY_GROUP)
		return &cfg->application_security_groups[address->group];
	return NULL;
}

const char *nsg_address_text(const struct config *cfg, const struct nsg_address *address,
			     char *buf, size_t size)
{
	switch (address->kind) {
	case NSG_ADDR_ANY: return "*";
	case NSG_ADDR_PREFIX: return prefix_text(&address->prefix, buf, size);
	case NSG_ADDR_TAG_VIRTUAL_NETWORK: return "VirtualNetwork";
	case NSG_ADDR_TAG_INTERNET: return "Internet";
	case NSG_ADDR_TAG_AZURE_LOAD_BALANCER: return "AzureLoadBalancer";
	case NSG_ADDR_SERVICE_TAG:
	case NSG_ADDR_APPLICATION_SECURITY_GROUP:
		snprintf(buf, size, "%s", config_address_group_of(cfg, address)->name);
		return buf;
	}
	return "?";
}

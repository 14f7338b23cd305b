/* The importer's collector: one normalized record per resource, whichever shape it came
 * in (ARM nested, az flattened, REST body), child resources folded into their parents,
 * resources declared twice merged, read-only noise dropped, references as full ids. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "import/arm_expr.h"
#include "config/config.h"
#include "import/internal.h"
#include "lib/local_interfaces.h"

struct type_info {
	const char *type;
	const char *parent_array; /* child types: the parent's properties array */
	bool modeled;
};

#define NET "Microsoft.Network/"

static const struct type_info types[] = {
	{ NET "virtualNetworks", NULL, true },
	{ NET "virtualNetworks/subnets", "subnets", true },
	{ NET "virtualNetworks/virtualNetworkPeerings", "virtualNetworkPeerings", true },
	{ NET "networkSecurityGroups", NULL, true },
	{ NET "networkSecurityGroups/securityRules", "securityRules", true },
	{ NET "networkSecurityGroups/defaultSecurityRules", "defaultSecurityRules", true },
	{ NET "routeTables", NULL, true },
	{ NET "routeTables/routes", "routes", true },
	{ NET "natGateways", NULL, true },
	{ NET "publicIPAddresses", NULL, true }, /* kept only when referenced */
	{ NET "networkInterfaces", NULL, true },
	{ NET "localNetworkGateways", NULL, true },
	{ NET "virtualNetworkGateways", NULL, true },
	{ NET "connections", NULL, true },
	{ NET "applicationSecurityGroups", NULL, true },
	/* Known, so ids and the summary use Azure's spelling, but not modeled. */
	{ NET "applicationGateways", NULL, false },
	{ NET "azureFirewalls", NULL, false },
	{ NET "bastionHosts", NULL, false },
	{ NET "ddosProtectionPlans", NULL, false },
	{ NET "firewallPolicies", NULL, false },
	{ NET "firewallPolicies/ruleCollectionGroups", NULL, false },
	{ NET "loadBalancers", NULL, false },
	{ NET "networkWatchers", NULL, false },
	{ NET "networkWatchers/flowLogs", NULL, false }, /* becomes gateway.flowLogs */
	{ NET "privateDnsZones", NULL, false },
	{ NET "privateEndpoints", NULL, false },
	{ NET "publicIPPrefixes", NULL, false },
	{ NET "virtualNetworkGateways/natRules", NULL, false },
	{ "Microsoft.Compute/virtualMachines", NULL, false },
	{ "Microsoft.Compute/virtualMachines/extensions", NULL, false },
	{ "Microsoft.Compute/disks", NULL, false },
	{ "Microsoft.Storage/storageAccounts", NULL, false },
};

#define N_TYPES (sizeof(types) / sizeof(types[0]))

static const struct type_info *type_lookup(const char *type)
{
	size_t len;

	if (!type)
		return NULL;
	len = strlen(type);
	while (len > 0 && type[len - 1] == '/')
		len--; /* 'Microsoft.Network/virtualNetworks/' as resourceId() accepts it */
	for (size_t i = 0; i < N_TYPES; i++)
		if (strlen(types[i].type) == len && !strncasecmp(types[i].type, type, len))
			return &types[i];
	return NULL;
}

const char *import_canonical_type(const char *type)
{
	const struct type_info *info = type_lookup(type);

	return info ? info->type : NULL;
}

bool import_type_is_modeled(const char *type)
{
	const struct type_info *info = type_lookup(type);

	return info && info->modeled;
}

/* ---- messages ------------------------------------------------------------------- */

void import_warn_text(struct importer *imp, const char *text)
{
	if (json_object_get(imp->written, text))
		return;
	json_object_set_new(imp->written, text, json_true());
	imp->warnings++;
	fprintf(imp->diag, "import: warning: %s\n", text);
}

void import_warn(struct importer *imp, const char *fmt, ...)
{
	char body[768], line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (imp->file)
		snprintf(line, sizeof(line), "%s: %s", imp->file, body);
	else
		snprintf(line, sizeof(line), "%s", body);
	import_warn_text(imp, line);
}

void importer_count_unmodeled(struct importer *imp, const char *type, int n)
{
	const char *canonical = import_canonical_type(type);
	const char *key = canonical ? canonical : type;
	json_int_t count = json_integer_value(json_object_get(imp->unmodeled, key));

	json_object_set_new(imp->unmodeled, key, json_integer(count + n));
}

void importer_note_flow_log(struct importer *imp, const char *type, json_t *resource)
{
	json_t *props = json_object_get(resource, "properties");
	json_t *enabled = json_object_get(props ? props : resource, "enabled");

	if (!type || strcmp(import_canonical_type(type) ?: "", NET "networkWatchers/flowLogs"))
		return;
	imp->flow_logs++;
	imp->flow_logs_disabled += json_is_false(enabled);
}

char *import_lower(const char *text)
{
	char *out = strdup(text);

	for (char *c = out; c && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return out;
}

/* ---- ids ------------------------------------------------------------------------ */

bool import_parse_id(const char *id, char **subscription, char **group, char **type,
		     char **name)
{
	char *copy, *save = NULL, *part;
	char *parts[32];
	size_t n = 0;
	FILE *ft, *fn;
	size_t lt = 0, ln = 0;

	if (!id || id[0] != '/')
		return false;
	copy = strdup(id);
	if (!copy)
		return false;
	for (part = strtok_r(copy, "/", &save); part && n < 32; part = strtok_r(NULL, "/", &save))
		parts[n++] = part;
	/* subscriptions S resourceGroups R providers NS t1 n1 [t n]... */
	if (n < 8 || strcasecmp(parts[0], "subscriptions") || strcasecmp(parts[2], "resourceGroups") ||
	    strcasecmp(parts[4], "providers") || (n - 6) % 2) {
		free(copy);
		return false;
	}
	*subscription = strdup(parts[1]);
	*group = strdup(parts[3]);
	*type = NULL;
	*name = NULL;
	ft = open_memstream(type, &lt);
	fn = open_memstream(name, &ln);
	fputs(parts[5], ft);
	for (size_t i = 6; i + 1 < n; i += 2) {
		fprintf(ft, "/%s", parts[i]);
		fprintf(fn, "%s%s", i > 6 ? "/" : "", parts[i + 1]);
	}
	fclose(ft);
	fclose(fn);
	free(copy);
	return true;
}

/* Azure's spelling of each type segment: the longest known prefix, then as written. */
static char *canonical_type_path(const char *type)
{
	char *out = strdup(type);
	size_t len = strlen(type);

	for (size_t cut = len; cut > 0; cut--) {
		char *prefix;
		const char *canonical;

		if (cut != len && type[cut] != '/')
			continue;
		prefix = strndup(type, cut);
		canonical = import_canonical_type(prefix);
		free(prefix);
		if (canonical && strlen(canonical) == cut) {
			memcpy(out, canonical, cut);
			break;
		}
	}
	return out;
}

static char *build_id(const char *subscription, const char *group, const char *type,
		      const char *name)
{
	char *canonical = canonical_type_path(type), *out = NULL, *text = NULL;
	char *types_copy = strdup(canonical), *names_copy = strdup(name);
	char *save_t = NULL, *save_n = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	char *t = strtok_r(types_copy, "/", &save_t);

	fprintf(f, "/subscriptions/%s/resourceGroups/%s/providers/%s", subscription, group, t);
	for (t = strtok_r(NULL, "/", &save_t); t; t = strtok_r(NULL, "/", &save_t)) {
		char *n = strtok_r(save_n ? NULL : names_copy, "/", &save_n);

		fprintf(f, "/%s/%s", t, n ? n : "");
	}
	fclose(f);
	out = text;
	free(canonical);
	free(types_copy);
	free(names_copy);
	return out;
}

static const char *last_segment(const char *name)
{
	const char *slash = strrchr(name, '/');

	return slash ? slash + 1 : name;
}

/* The type a reference under this key names, for references written as bare names. */
static const char *reference_type(const char *key)
{
	static const char *const map[][2] = {
		{ "networkSecurityGroup", NET "networkSecurityGroups" },
		{ "routeTable", NET "routeTables" },
		{ "natGateway", NET "natGateways" },
		{ "remoteVirtualNetwork", NET "virtualNetworks" },
		{ "subnet", NET "virtualNetworks/subnets" },
		{ "publicIPAddress", NET "publicIPAddresses" },
		{ "publicIpAddresses", NET "publicIPAddresses" },
		{ "virtualNetworkGateway1", NET "virtualNetworkGateways" },
		{ "virtualNetworkGateway2", NET "virtualNetworkGateways" },
		{ "localNetworkGateway2", NET "localNetworkGateways" },
		{ "virtualNetwork", NET "virtualNetworks" },
		{ "applicationSecurityGroups", NET "applicationSecurityGroups" },
		{ "sourceApplicationSecurityGroups", NET "applicationSecurityGroups" },
		{ "destinationApplicationSecurityGroups", NET "applicationSecurityGroups" },
	};

	for (size_t i = 0; key && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcasecmp(map[i][0], key))
			return map[i][1];
	return NULL;
}

/* Rewrites every {"id": ...} below `value` as a full id with Azure's type spelling. */
static void canonicalize_references(json_t *value, const char *key)
{
	json_t *child;
	const char *k;
	size_t i;

	if (json_is_array(value)) {
		json_array_foreach(value, i, child)
			canonicalize_references(child, key);
		return;
	}
	if (!json_is_object(value))
		return;
	json_object_foreach(value, k, child) {
		if (!strcmp(k, "id") && json_is_string(child)) {
			const char *id = json_string_value(child);
			char *sub, *group, *type, *name, *rebuilt = NULL;

			if (import_parse_id(id, &sub, &group, &type, &name)) {
				rebuilt = build_id(sub, group, type, name);
				free(sub);
				free(group);
				free(type);
				free(name);
			} else if (reference_type(key) && id[0] != '/' && *id) {
				rebuilt = build_id(ARM_SUBSCRIPTION_ID, ARM_RESOURCE_GROUP,
						   reference_type(key), id);
			}
			if (rebuilt)
				json_object_set_new(value, "id", json_string(rebuilt));
			free(rebuilt);
		} else {
			canonicalize_references(child, k);
		}
	}
}

/* ---- cleaning ------------------------------------------------------------------- */

static bool is_noise_key(const char *key)
{
	/* resourceGroup: az adds it beside every id */
	return !strcmp(key, "etag") || !strcmp(key, "provisioningState") ||
	       !strcmp(key, "resourceGuid") || !strcmp(key, "resourceGroup");
}

static void drop_noise(json_t *value)
{
	json_t *child;
	const char *key;
	void *tmp;
	size_t i;

	if (json_is_array(value)) {
		json_array_foreach(value, i, child)
			drop_noise(child);
	} else if (json_is_object(value)) {
		json_object_foreach_safe(value, tmp, key, child) {
			if (is_noise_key(key) || json_is_null(child))
				json_object_del(value, key);
			else
				drop_noise(child);
		}
	}
}

static bool in_list(const char *key, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(key, *list))
			return true;
	return false;
}

/* Azure accepts "false" and "100" for booleans and ints (templates write them so). */
static void coerce_scalars(json_t *value)
{
	static const char *const bools[] = { "enableBgp", "allowVirtualNetworkAccess",
		"allowForwardedTraffic", "allowGatewayTransit", "useRemoteGateways",
		"enableIPForwarding", "disableBgpRoutePropagation", "activeActive",
		"usePolicyBasedTrafficSelectors", "enableDdosProtection", "enableVmProtection",
		"useLocalAzureIpAddress", "expressRouteGatewayBypass",
		"enableAcceleratedNetworking", "primary", "flushConnection",
		"doNotVerifyRemoteGateways", "enablePrivateIpAddress",
		"enableBgpRouteTranslationForNat", "defaultOutboundAccess", NULL };
	static const char *const ints[] = { "priority", "routingWeight", "asn",
		"idleTimeoutInMinutes", "dpdTimeoutSeconds", "peerWeight", "saLifeTimeSeconds",
		"saDataSizeKilobytes", "connectionBandwidth", NULL };
	json_t *child;
	const char *key;
	size_t i;

	if (json_is_array(value)) {
		json_array_foreach(value, i, child)
			coerce_scalars(child);
		return;
	}
	if (!json_is_object(value))
		return;
	json_object_foreach(value, key, child) {
		const char *s = json_string_value(child);

		if (s && in_list(key, bools)) {
			if (!strcasecmp(s, "true"))
				json_object_set_new(value, key, json_true());
			else if (!strcasecmp(s, "false"))
				json_object_set_new(value, key, json_false());
		} else if (s && in_list(key, ints)) {
			char *end;
			long long n;

			errno = 0;
			n = strtoll(s, &end, 10);
			if (!errno && end != s && !*end)
				json_object_set_new(value, key, json_integer(n));
		} else {
			coerce_scalars(child);
		}
	}
}

/* Keys of a resource that are not its properties when az flattens them. */
static bool is_envelope_key(const char *key)
{
	static const char *const keys[] = { "id", "name", "type", "location", "tags", "etag",
		"resourceGroup", "zones", "extendedLocation", "kind", "identity", "managedBy",
		"systemData", "apiVersion", "dependsOn", "comments", "condition", "copy",
		"scope", "plan", "sku", "resources", NULL };

	return in_list(key, keys);
}

/* sku sits beside properties for these; for the others it is a property. */
static bool has_outer_sku(const char *type)
{
	return !strcmp(type, NET "natGateways") || !strcmp(type, NET "publicIPAddresses");
}

/* {"name", "properties"} for each element of a child array, in either input shape. */
static void normalize_children(json_t *props, const char *array_key)
{
	json_t *array = json_object_get(props, array_key), *element, *out;
	size_t i;

	if (!json_is_array(array))
		return;
	out = json_array();
	json_array_foreach(array, i, element) {
		json_t *normalized, *inner;
		const char *name, *id;

		if (!json_is_object(element)) {
			json_array_append(out, element);
			continue;
		}
		normalized = json_object();
		name = json_string_value(json_object_get(element, "name"));
		id = json_string_value(json_object_get(element, "id"));
		if (name)
			json_object_set_new(normalized, "name", json_string(name));
		else if (id)
			json_object_set_new(normalized, "name", json_string(last_segment(id)));
		inner = json_object_get(element, "properties");
		if (json_is_object(inner)) {
			json_object_set(normalized, "properties", inner);
		} else {
			const char *k;
			json_t *v;

			inner = json_object();
			json_object_foreach(element, k, v)
				if (strcmp(k, "name") && strcmp(k, "id") && strcmp(k, "etag") &&
				    strcmp(k, "type"))
					json_object_set(inner, k, v);
			json_object_set_new(normalized, "properties", inner);
		}
		json_array_append_new(out, normalized);
	}
	json_object_set_new(props, array_key, out);
}

static void drop_keys(json_t *object, const char *const *keys)
{
	for (; json_is_object(object) && *keys; keys++)
		json_object_del(object, *keys);
}

static const char *const subnet_read_only[] = { "ipConfigurations", "ipConfigurationProfiles",
	"resourceNavigationLinks", "serviceAssociationLinks", "privateEndpoints",
	"applicationGatewayIPConfigurations", NULL };
static const char *const peering_read_only[] = { "peeringState", "peeringSyncLevel", NULL };

/* Drops read-only back references of each element of a child array. */
static void drop_in_children(json_t *props, const char *array_key, const char *const *keys)
{
	json_t *array = json_object_get(props, array_key), *element;
	size_t i;

	json_array_foreach(array, i, element)
		drop_keys(json_object_get(element, "properties"), keys);
}

/* A connection may carry its gateways whole (a REST request does): each becomes its own
 * resource and the connection keeps a reference. */
static void extract_inline(struct importer *imp, json_t *props, const char *key,
			   const char *type, const char *path)
{
	json_t *ref = json_object_get(props, key), *inner, *resource;
	const char *id, *name;
	char *built = NULL, *sub, *group, *id_type, *id_name, *sub_path = NULL;

	if (!json_is_object(ref))
		return;
	id = json_string_value(json_object_get(ref, "id"));
	name = json_string_value(json_object_get(ref, "name"));
	inner = json_object_get(ref, "properties");
	if (json_is_object(inner) && json_object_size(inner) > 0) {
		resource = json_deep_copy(ref);
		json_object_set_new(resource, "type", json_string(type));
		if (!name && id && import_parse_id(id, &sub, &group, &id_type, &id_name)) {
			json_object_set_new(resource, "name", json_string(id_name));
			free(sub);
			free(group);
			free(id_type);
			free(id_name);
		}
		if (asprintf(&sub_path, "%s.properties.%s", path, key) < 0)
			sub_path = NULL;
		importer_add_resource(imp, resource, sub_path ? sub_path : path, NULL);
		free(sub_path);
		json_decref(resource);
	}
	if (!id && name)
		id = built = build_id(ARM_SUBSCRIPTION_ID, ARM_RESOURCE_GROUP, type, name);
	if (id)
		json_object_set_new(props, key, json_pack("{s:s}", "id", id));
	free(built);
}

static void clean_child_properties(const char *type, json_t *props)
{
	if (!strcmp(type, NET "virtualNetworks/subnets"))
		drop_keys(props, subnet_read_only);
	else if (!strcmp(type, NET "virtualNetworks/virtualNetworkPeerings"))
		drop_keys(props, peering_read_only);
}

static void clean_properties(struct importer *imp, const char *type, json_t *props,
			     const char *path)
{
	static const char *const nsg_read_only[] = { "networkInterfaces", "subnets",
		"flowLogs", NULL };
	static const char *const subnets_only[] = { "subnets", NULL };
	static const char *const pip_read_only[] = { "ipConfiguration", NULL };
	static const char *const nic_read_only[] = { "virtualMachine", "hostedWorkloads",
		"tapConfigurations", NULL };
	static const char *const connection_read_only[] = { "connectionStatus",
		"ingressBytesTransferred", "egressBytesTransferred", "tunnelConnectionStatus",
		NULL };

	if (!strcmp(type, NET "virtualNetworks")) {
		normalize_children(props, "subnets");
		normalize_children(props, "virtualNetworkPeerings");
		drop_in_children(props, "subnets", subnet_read_only);
		drop_in_children(props, "virtualNetworkPeerings", peering_read_only);
	} else if (!strcmp(type, NET "networkSecurityGroups")) {
		normalize_children(props, "securityRules");
		normalize_children(props, "defaultSecurityRules");
		drop_keys(props, nsg_read_only);
	} else if (!strcmp(type, NET "routeTables")) {
		normalize_children(props, "routes");
		drop_keys(props, subnets_only);
	} else if (!strcmp(type, NET "natGateways")) {
		drop_keys(props, subnets_only);
	} else if (!strcmp(type, NET "publicIPAddresses")) {
		drop_keys(props, pip_read_only);
	} else if (!strcmp(type, NET "networkInterfaces")) {
		normalize_children(props, "ipConfigurations");
		drop_keys(props, nic_read_only);
	} else if (!strcmp(type, NET "virtualNetworkGateways")) {
		normalize_children(props, "ipConfigurations");
	} else if (!strcmp(type, NET "connections")) {
		extract_inline(imp, props, "virtualNetworkGateway1", NET "virtualNetworkGateways",
			       path);
		extract_inline(imp, props, "virtualNetworkGateway2", NET "virtualNetworkGateways",
			       path);
		extract_inline(imp, props, "localNetworkGateway2", NET "localNetworkGateways",
			       path);
		drop_keys(props, connection_read_only);
	} else {
		clean_child_properties(type, props);
	}
	drop_noise(props);
	coerce_scalars(props);
	canonicalize_references(props, NULL);
}

/* ---- merging -------------------------------------------------------------------- */

static bool all_named(json_t *array)
{
	json_t *element;
	size_t i;

	json_array_foreach(array, i, element)
		if (!json_is_string(json_object_get(element, "name")))
			return false;
	return true;
}

static json_t *find_named(json_t *array, const char *name)
{
	json_t *element;
	size_t i;

	json_array_foreach(array, i, element) {
		const char *n = json_string_value(json_object_get(element, "name"));

		if (n && !strcasecmp(n, name))
			return element;
	}
	return NULL;
}

/* src over dst: objects merge, arrays of named objects merge by name (a subnet declared
 * inline and again as a child resource is one subnet), anything else is replaced. */
static void merge_into(json_t *dst, json_t *src)
{
	const char *key;
	json_t *value;

	json_object_foreach(src, key, value) {
		json_t *old = json_object_get(dst, key);

		if (json_is_object(old) && json_is_object(value)) {
			merge_into(old, value);
		} else if (json_is_array(old) && json_is_array(value) && all_named(old) &&
			   all_named(value)) {
			json_t *element;
			size_t i;

			json_array_foreach(value, i, element) {
				json_t *match = find_named(old, json_string_value(
						json_object_get(element, "name")));

				if (match)
					merge_into(match, element);
				else
					json_array_append_new(old, json_deep_copy(element));
			}
		} else {
			json_object_set_new(dst, key, json_deep_copy(value));
		}
	}
}

static char *record_key(const char *type, const char *name)
{
	char *key = NULL;

	if (asprintf(&key, "%s/%s", type, name) < 0)
		return NULL;
	for (char *c = key + strlen(type); *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return key;
}

static json_t *get_or_create(struct importer *imp, const char *type, const char *name,
			     const char *key, bool stub)
{
	json_t *record = json_object_get(imp->resources, key);

	if (record) {
		if (!stub)
			json_object_del(imp->stubs, key);
		return record;
	}
	record = json_pack("{s:s, s:s}", "type", type, "name", name);
	if (stub)
		json_object_set_new(record, "properties", json_object());
	json_object_set_new(imp->resources, key, record);
	if (stub)
		json_object_set_new(imp->stubs, key, json_true());
	return record;
}

static void keep_warnings(struct importer *imp, const char *key, json_t *pending)
{
	json_t *list, *w;
	size_t i;

	if (!json_array_size(pending))
		return;
	list = json_object_get(imp->record_warnings, key);
	if (!list) {
		list = json_array();
		json_object_set_new(imp->record_warnings, key, list);
	}
	json_array_foreach(pending, i, w)
		json_array_append(list, w);
}

void importer_add_resource(struct importer *imp, json_t *resource, const char *path,
			   json_t *pending)
{
	const char *raw_type = json_string_value(json_object_get(resource, "type"));
	const char *raw_name = json_string_value(json_object_get(resource, "name"));
	const char *id = json_string_value(json_object_get(resource, "id"));
	char *sub = NULL, *group = NULL, *id_type = NULL, *id_name = NULL, *key = NULL;
	const struct type_info *info;
	const char *type, *name = NULL;
	json_t *props = NULL, *record;
	bool have_id = id && import_parse_id(id, &sub, &group, &id_type, &id_name);

	if (!raw_type && have_id)
		raw_type = id_type;
	if (!raw_type) {
		import_warn(imp, "%s: no type and no resource id; left out", path);
		goto out;
	}
	info = type_lookup(raw_type);
	if (!info || !info->modeled) {
		importer_count_unmodeled(imp, raw_type, 1);
		importer_note_flow_log(imp, raw_type, resource);
		goto out;
	}
	type = info->type;
	/* The id names the resource; a REST list may carry a "name" that disagrees. */
	if (have_id && type_lookup(id_type) == info) {
		name = id_name;
		if (raw_name && strcasecmp(raw_name, id_name) &&
		    strcasecmp(raw_name, last_segment(id_name)))
			import_warn(imp, "%s: name '%s' differs from its id's '%s'; the id's is "
				    "used", path, raw_name, last_segment(id_name));
	} else {
		name = raw_name;
	}
	if (!name || !*name) {
		import_warn(imp, "%s: %s without a name; left out", path, type);
		goto out;
	}
	props = json_object_get(resource, "properties");
	if (json_is_object(props)) {
		props = json_deep_copy(props);
	} else {
		const char *k;
		json_t *v;

		props = json_object();
		json_object_foreach(resource, k, v)
			if (!is_envelope_key(k) || (!strcmp(k, "sku") && !has_outer_sku(type)))
				json_object_set(props, k, v);
	}
	clean_properties(imp, type, props, path);

	if (info->parent_array) {
		/* A child: "parent/child" folded into the parent's array. */
		const char *slash = strrchr(name, '/');
		char *parent_type, *parent_name;
		json_t *parent, *parent_props, *child, *wrapper;

		if (!slash || slash == name || !slash[1]) {
			import_warn(imp, "%s: %s '%s' does not name its parent ('parent/child'); "
				    "left out", path, type, name);
			goto out;
		}
		parent_type = strndup(type, (size_t)(strrchr(type, '/') - type));
		parent_name = strndup(name, (size_t)(slash - name));
		key = record_key(parent_type, parent_name);
		parent = get_or_create(imp, parent_type, parent_name, key, true);
		parent_props = json_object_get(parent, "properties");
		child = json_pack("{s:s, s:O}", "name", slash + 1, "properties", props);
		wrapper = json_pack("{s:[o]}", info->parent_array, child);
		merge_into(parent_props, wrapper);
		json_decref(wrapper);
		free(parent_type);
		free(parent_name);
	} else {
		json_t *update = json_object();
		json_t *sku = json_object_get(resource, "sku");

		if (has_outer_sku(type) && json_is_object(sku))
			json_object_set(update, "sku", sku);
		json_object_set(update, "properties", props);
		key = record_key(type, name);
		record = get_or_create(imp, type, name, key, false);
		merge_into(record, update);
		json_decref(update);
	}
	keep_warnings(imp, key, pending);
out:
	json_decref(props);
	free(key);
	free(sub);
	free(group);
	free(id_type);
	free(id_name);
}

/* ---- the result ----------------------------------------------------------------- */

static void collect_reference_name(json_t *reference, json_t *names)
{
	const char *id = json_string_value(json_object_get(reference, "id"));
	char *lower;

	if (!id)
		return;
	lower = import_lower(last_segment(id));
	if (lower)
		json_object_set_new(names, lower, json_true());
	free(lower);
}

/* Public IPs matter only where a NAT gateway or a VNet gateway uses them. */
static void drop_unreferenced_public_ips(struct importer *imp)
{
	json_t *used = json_object(), *record, *element;
	const char *key;
	void *tmp;
	size_t i;

	json_object_foreach(imp->resources, key, record) {
		const char *type = json_string_value(json_object_get(record, "type"));
		json_t *props = json_object_get(record, "properties");

		if (!strcmp(type, NET "natGateways")) {
			json_array_foreach(json_object_get(props, "publicIpAddresses"), i, element)
				collect_reference_name(element, used);
		} else if (!strcmp(type, NET "virtualNetworkGateways")) {
			json_array_foreach(json_object_get(props, "ipConfigurations"), i, element)
				collect_reference_name(json_object_get(json_object_get(element,
					"properties"), "publicIPAddress"), used);
		}
	}
	json_object_foreach_safe(imp->resources, tmp, key, record) {
		const char *type = json_string_value(json_object_get(record, "type"));
		char *lower;

		if (strcmp(type, NET "publicIPAddresses"))
			continue;
		lower = import_lower(json_string_value(json_object_get(record, "name")));
		if (lower && !json_object_get(used, lower)) {
			importer_count_unmodeled(imp, type, 1);
			json_object_del(imp->record_warnings, key);
			json_object_del(imp->resources, key);
		}
		free(lower);
	}
	json_decref(used);
}

static int compare_records(const void *a, const void *b)
{
	json_t *ra = *(json_t *const *)a, *rb = *(json_t *const *)b;
	int c = strcmp(json_string_value(json_object_get(ra, "type")),
		       json_string_value(json_object_get(rb, "type")));

	return c ? c : strcmp(json_string_value(json_object_get(ra, "name")),
			      json_string_value(json_object_get(rb, "name")));
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_unmodeled_summary(struct importer *imp)
{
	size_t n = json_object_size(imp->unmodeled), i = 0;
	const char **names;
	const char *key;
	json_t *count;

	if (!n)
		return;
	names = calloc(n, sizeof(*names));
	json_object_foreach(imp->unmodeled, key, count)
		names[i++] = key;
	qsort(names, n, sizeof(*names), compare_strings);
	fprintf(imp->diag, "import: not modeled, left out:");
	for (i = 0; i < n; i++)
		fprintf(imp->diag, "%s %" JSON_INTEGER_FORMAT " %s", i ? "," : "",
			json_integer_value(json_object_get(imp->unmodeled, names[i])), names[i]);
	fputc('\n', imp->diag);
	free(names);
}

static bool is_file_service_tag(const char *text)
{
	static const char *const built_in[] = { "*", "Any", "VirtualNetwork", "Internet",
						"AzureLoadBalancer" };

	if (!text || !isalpha((unsigned char)text[0]) || strchr(text, ':') || strchr(text, '/'))
		return false;
	for (size_t i = 0; i < sizeof(built_in) / sizeof(*built_in); i++)
		if (!strcasecmp(text, built_in[i]))
			return false;
	for (const char *p = text; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
			return false;
	return true;
}

static void collect_tag(json_t *value, json_t *tags)
{
	json_t *element;
	size_t i;

	if (json_is_string(value) && is_file_service_tag(json_string_value(value)))
		json_object_set_new(tags, json_string_value(value), json_true());
	json_array_foreach(value, i, element)
		collect_tag(element, tags);
}

/* The service tags beyond the built-in ones that the rules name: they resolve from
 * Azure's tag file, which only the user can give (gateway.serviceTagsFile). */
static json_t *rule_service_tags(struct importer *imp)
{
	static const char *const keys[] = { "sourceAddressPrefix", "sourceAddressPrefixes",
					     "destinationAddressPrefix",
					     "destinationAddressPrefixes" };
	json_t *tags = json_object(), *record, *rule;
	const char *key;
	size_t i;

	json_object_foreach(imp->resources, key, record) {
		json_t *props = json_object_get(record, "properties");

		if (strcmp(json_string_value(json_object_get(record, "type")),
			   NET "networkSecurityGroups"))
			continue;
		json_array_foreach(json_object_get(props, "securityRules"), i, rule) {
			json_t *rp = json_object_get(rule, "properties") ?
				     json_object_get(rule, "properties") : rule;

			for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++)
				collect_tag(json_object_get(rp, keys[k]), tags);
		}
	}
	return tags;
}

static char *joined_keys(json_t *object)
{
	size_t len = 1, used = 0;
	const char *key;
	json_t *v;
	char *out;

	json_object_foreach(object, key, v)
		len += strlen(key) + 2;
	out = malloc(len);
	if (!out)
		return NULL;
	out[0] = '\0';
	json_object_foreach(object, key, v)
		used += (size_t)sprintf(out + used, "%s%s", used ? ", " : "", key);
	return out;
}

/* What only the user knows is written FILL-IN; the note says where, and which
 * interfaces and addresses this machine has to choose from. */
static void print_fill_in_note(struct importer *imp, size_t interfaces, size_t bindings,
			       json_t *tags)
{
	char *candidates = local_interfaces_text();
	char *tag_list = json_object_size(tags) ? joined_keys(tags) : NULL;

	fprintf(imp->diag, "import: fill in: gateway.interfaces[].name (%zu, the Linux interface "
		"facing each VNet and the uplink)", interfaces);
	if (bindings)
		fprintf(imp->diag, ", gateway.virtualNetworkGateways[].address (%zu, this box's "
			"tunnel endpoint for each VPN gateway, an address of the uplink)", bindings);
	if (tag_list)
		fprintf(imp->diag, ", gateway.serviceTagsFile (the path of Azure's service tag "
			"file, ServiceTags_Public_*.json, for the rules' tags %s)", tag_list);
	fprintf(imp->diag, "; this machine's interfaces: %s\n",
		candidates ? candidates : "unknown (out of memory)");
	free(tag_list);
	free(candidates);
}

json_t *importer_finish(struct importer *imp)
{
	size_t n, i = 0;
	json_t **records, *resources, *interfaces, *vnets, *record, *w, *gateway, *bindings, *tags;
	const char *key;

	drop_unreferenced_public_ips(imp);
	n = json_object_size(imp->resources);
	records = calloc(n ? n : 1, sizeof(*records));
	json_object_foreach(imp->resources, key, record)
		records[i++] = record;
	qsort(records, n, sizeof(*records), compare_records);

	imp->file = NULL;
	import_assign_dynamic_addresses(imp);
	resources = json_array();
	interfaces = json_array();
	vnets = json_array();
	for (i = 0; i < n; i++) {
		const char *type = json_string_value(json_object_get(records[i], "type"));
		const char *name = json_string_value(json_object_get(records[i], "name"));
		char *k = record_key(type, name);
		size_t j;

		json_array_foreach(json_object_get(imp->record_warnings, k), j, w)
			import_warn_text(imp, json_string_value(w));
		if (json_object_get(imp->stubs, k))
			import_warn(imp, "%s '%s' is known only as the parent of child resources; "
				    "its own properties (addressSpace, ...) are not in the input",
				    type, name);
		free(k);
		json_array_append(resources, records[i]);
		if (!strcmp(type, NET "virtualNetworks")) {
			json_array_append_new(interfaces, json_pack("{s:s, s:s}", "name", "FILL-IN",
								    "virtualNetwork", name));
			json_array_append_new(vnets, json_pack("{s:s}", "name", name));
		}
	}
	json_array_append_new(interfaces, json_pack("{s:s, s:s}", "name", "FILL-IN",
						    "role", "uplink"));
	free(records);
	gateway = json_pack("{s:s, s:o, s:o}", "name", "gw1", "interfaces", interfaces,
			    "virtualNetworks", vnets);
	bindings = import_gateway_bindings(imp);
	if (json_array_size(bindings))
		json_object_set(gateway, "virtualNetworkGateways", bindings);
	tags = rule_service_tags(imp);
	if (json_object_size(tags))
		json_object_set_new(gateway, "serviceTagsFile", json_string("FILL-IN"));
	if (imp->flow_logs) {
		/* Azure's storage account, retention and analytics have no counterpart: the
		 * records go to a local directory, every minute as Azure writes them. */
		json_object_set_new(gateway, "flowLogs", json_pack("{s:b, s:s}", "enabled",
			imp->flow_logs > imp->flow_logs_disabled, "directory", FLOW_LOG_DEFAULT_DIRECTORY));
		fprintf(imp->diag, "import: gateway.flowLogs from %d flow log resource%s (written by "
			"`serve` into %s; storageId and retentionPolicy are not used)\n", imp->flow_logs,
			imp->flow_logs == 1 ? "" : "s", FLOW_LOG_DEFAULT_DIRECTORY);
	}
	print_fill_in_note(imp, json_array_size(interfaces), json_array_size(bindings), tags);
	json_decref(tags);
	json_decref(bindings);
	print_unmodeled_summary(imp);
	return json_pack("{s:o, s:o}", "gateway", gateway, "resources", resources);
}

/* Every Azure sample in ../shared/azure-samples imports without error and keeps every
 * VNet, subnet, peering, NSG rule (custom and default), route, local network gateway,
 * connection and NAT gateway it holds. The source is counted here by its own walk
 * (templates through the expression evaluator for names, conditions and copy counts),
 * not by the importer's code, and compared with the output. */
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>
#include <jansson.h>
#include "import/arm_expr.h"
#include "import/import.h"
#include "azure_samples.h"

enum kind { VNET, SUBNET, PEERING, RULE, DEFAULT_RULE, ROUTE, LNG, CONNECTION, NAT_GATEWAY,
	    N_KINDS };
static const char *const kind_names[N_KINDS] = { "vnets", "subnets", "peerings", "rules",
	"default rules", "routes", "local gws", "connections", "nat gws" };

struct counts {
	json_t *sets[N_KINDS]; /* lower-case "name" or "parent/child" -> true */
};

static void counts_init(struct counts *c)
{
	for (int k = 0; k < N_KINDS; k++)
		c->sets[k] = json_object();
}

static void counts_free(struct counts *c)
{
	for (int k = 0; k < N_KINDS; k++)
		json_decref(c->sets[k]);
}

static void add(struct counts *c, enum kind k, const char *parent, const char *name)
{
	char key[512];

	snprintf(key, sizeof(key), "%s%s%s", parent ? parent : "", parent ? "/" : "", name);
	for (char *p = key; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	json_object_set_new(c->sets[k], key, json_true());
}

static const char *type_tail(const char *type)
{
	return strncasecmp(type, "Microsoft.Network/", 18) ? "" : type + 18;
}

/* Elements of properties.<array> (named, in either shape) counted as parent/child. */
static void add_children(struct counts *c, enum kind k, const char *parent, json_t *props,
			 const char *array)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(props, array), i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));

		if (name)
			add(c, k, parent, name);
	}
}

/* One resource of the source, by its full type and name. */
static void classify(struct counts *c, const char *type, const char *name, json_t *props)
{
	const char *t = type_tail(type);
	char *parent = strdup(name), *slash = strrchr(parent, '/');
	const char *child = slash ? slash + 1 : NULL;

	if (slash)
		*slash = '\0';
	if (!strcasecmp(t, "virtualNetworks")) {
		add(c, VNET, NULL, name);
		add_children(c, SUBNET, name, props, "subnets");
		add_children(c, PEERING, name, props, "virtualNetworkPeerings");
	} else if (!strcasecmp(t, "networkSecurityGroups")) {
		add_children(c, RULE, name, props, "securityRules");
		add_children(c, DEFAULT_RULE, name, props, "defaultSecurityRules");
	} else if (!strcasecmp(t, "routeTables")) {
		add_children(c, ROUTE, name, props, "routes");
	} else if (!strcasecmp(t, "localNetworkGateways")) {
		add(c, LNG, NULL, name);
	} else if (!strcasecmp(t, "connections")) {
		add(c, CONNECTION, NULL, name);
	} else if (!strcasecmp(t, "natGateways")) {
		add(c, NAT_GATEWAY, NULL, name);
	} else if (child && !strcasecmp(t, "virtualNetworks/subnets")) {
		add(c, SUBNET, parent, child);
	} else if (child && !strcasecmp(t, "virtualNetworks/virtualNetworkPeerings")) {
		add(c, PEERING, parent, child);
	} else if (child && !strcasecmp(t, "networkSecurityGroups/securityRules")) {
		add(c, RULE, parent, child);
	} else if (child && !strcasecmp(t, "networkSecurityGroups/defaultSecurityRules")) {
		add(c, DEFAULT_RULE, parent, child);
	} else if (child && !strcasecmp(t, "routeTables/routes")) {
		add(c, ROUTE, parent, child);
	}
	free(parent);
}

/* ---- templates ---- */

static bool ignore_leaf(void *opaque, const char *path, const struct arm_error *err)
{
	return true;
}

static char *eval_name(struct arm_context *ctx, json_t *v)
{
	struct arm_error err;
	json_t *r = json_is_string(v) ? arm_eval_string(ctx, json_string_value(v), &err) : NULL;
	char *out = json_is_string(r) ? strdup(json_string_value(r)) : NULL;

	json_decref(r);
	return out;
}

static void walk_template(struct counts *c, struct arm_context *ctx, json_t *resources,
			  const char *parent_type, const char *parent_name)
{
	json_t *res;
	size_t i;

	json_array_foreach(resources, i, res) {
		json_t *copy = json_object_get(res, "copy");
		json_int_t n = 1;
		struct arm_error err;

		if (json_is_object(copy)) {
			json_t *count = arm_eval_tree(ctx, json_object_get(copy, "count"), "", NULL,
						      NULL, &err);

			n = json_integer_value(count);
			json_decref(count);
		}
		for (json_int_t k = 0; k < n; k++) {
			json_t *cond = json_object_get(res, "condition"), *cv, *props;
			char *type, *name, full_type[256], full_name[256];
			int type_segments = 0, name_segments = 1;

			arm_context_push_copy(ctx, json_string_value(json_object_get(copy, "name")),
					      (int)k);
			cv = cond ? arm_eval_tree(ctx, cond, "", NULL, NULL, &err) : NULL;
			if (json_is_false(cv)) {
				json_decref(cv);
				arm_context_pop_copy(ctx);
				continue;
			}
			json_decref(cv);
			type = eval_name(ctx, json_object_get(res, "type"));
			name = eval_name(ctx, json_object_get(res, "name"));
			assert_non_null(type);
			assert_non_null(name);
			if (parent_type && !strchr(type, '.'))
				snprintf(full_type, sizeof(full_type), "%s/%s", parent_type, type);
			else
				snprintf(full_type, sizeof(full_type), "%s", type);
			for (const char *p = full_type; *p; p++)
				type_segments += *p == '/';
			for (const char *p = name; *p; p++)
				name_segments += *p == '/';
			if (parent_name && name_segments < type_segments)
				snprintf(full_name, sizeof(full_name), "%s/%s", parent_name, name);
			else
				snprintf(full_name, sizeof(full_name), "%s", name);
			props = arm_eval_tree(ctx, json_object_get(res, "properties") ?
					      json_object_get(res, "properties") : json_object_get(res, "type"),
					      "", ignore_leaf, NULL, &err);
			classify(c, full_type, full_name, props);
			json_decref(props);
			walk_template(c, ctx, json_object_get(res, "resources"), full_type, full_name);
			arm_context_pop_copy(ctx);
			free(type);
			free(name);
		}
	}
	json_decref(arm_context_take_warnings(ctx));
}

/* ---- REST bodies, examples and az output ---- */

/* "/subscriptions/s/resourceGroups/g/providers/NS/t1/n1/t2/n2" -> type, name */
static bool split_id(const char *id, char *type, size_t tsize, char *name, size_t nsize)
{
	char copy[1024], *parts[32], *save = NULL;
	size_t n = 0;

	if (!id || id[0] != '/')
		return false;
	snprintf(copy, sizeof(copy), "%s", id);
	for (char *p = strtok_r(copy, "/", &save); p && n < 32; p = strtok_r(NULL, "/", &save))
		parts[n++] = p;
	if (n < 8 || strcasecmp(parts[4], "providers") || (n - 6) % 2)
		return false;
	snprintf(type, tsize, "%s", parts[5]);
	name[0] = '\0';
	for (size_t i = 6; i + 1 < n; i += 2) {
		size_t tl = strlen(type), nl = strlen(name);

		snprintf(type + tl, tsize - tl, "/%s", parts[i]);
		snprintf(name + nl, nsize - nl, "%s%s", nl ? "/" : "", parts[i + 1]);
	}
	return true;
}

static void walk_document(struct counts *c, json_t *v, const char *key)
{
	json_t *child;
	const char *k;
	size_t i;

	if (json_is_array(v)) {
		json_array_foreach(v, i, child)
			walk_document(c, child, key);
		return;
	}
	if (!json_is_object(v))
		return;
	{
		const char *type = json_string_value(json_object_get(v, "type"));
		const char *name = json_string_value(json_object_get(v, "name"));
		json_t *props = json_object_get(v, "properties");
		char id_type[256], id_name[256];
		bool has_id = split_id(json_string_value(json_object_get(v, "id")), id_type,
				       sizeof(id_type), id_name, sizeof(id_name));

		if (!type && has_id && json_is_object(props))
			type = id_type;
		/* A connection's request may hold its local network gateway whole. */
		if (!type && key && !strcmp(key, "localNetworkGateway2") && json_object_size(props))
			type = has_id ? id_type : "Microsoft.Network/localNetworkGateways";
		if (has_id && type && !strcasecmp(type, id_type))
			name = id_name;
		if (type && name)
			classify(c, type, name, json_is_object(props) ? props : v);
	}
	json_object_foreach(v, k, child)
		walk_document(c, child, k);
}

/* ---- the output ---- */

static void count_output(struct counts *c, json_t *config)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(config, "resources"), i, r)
		classify(c, json_string_value(json_object_get(r, "type")),
			 json_string_value(json_object_get(r, "name")),
			 json_object_get(r, "properties"));
}

/* ---- the tests ---- */


static json_t *import_one(const char *path, int *rc)
{
	FILE *diag = fopen("/dev/null", "w");
	struct importer *imp = importer_new(NULL, diag);
	json_t *config = NULL;

	*rc = importer_add_file(imp, path);
	if (!*rc)
		config = importer_finish(imp);
	importer_free(imp);
	fclose(diag);
	return config;
}

static void count_source(struct counts *c, const char *path)
{
	json_t *doc = json_load_file(path, 0, NULL);

	assert_non_null(doc);
	if (json_is_array(json_object_get(doc, "resources"))) {
		struct arm_context *ctx = arm_context_new(doc, NULL);

		walk_template(c, ctx, json_object_get(doc, "resources"), NULL, NULL);
		arm_context_free(ctx);
	} else {
		walk_document(c, doc, NULL);
	}
	json_decref(doc);
}

static void every_sample_imports_and_keeps_what_it_holds(void **state)
{
	size_t n;
	char **names = list_samples(&n);

	if (!names)
		skip();
	printf("%-40s", "sample (source/output)");
	for (int k = 0; k < N_KINDS; k++)
		printf(" %13s", kind_names[k]);
	printf("\n");
	for (size_t i = 0; i < n; i++) {
		char path[2048];
		struct counts source, output;
		json_t *config;
		const char *key;
		json_t *v;
		int rc;

		snprintf(path, sizeof(path), "%s/%s", samples_dir, names[i]);
		config = import_one(path, &rc);
		if (rc)
			fail_msg("%s: import failed", names[i]);
		counts_init(&source);
		counts_init(&output);
		count_source(&source, path);
		count_output(&output, config);
		printf("%-40s", names[i]);
		for (int k = 0; k < N_KINDS; k++) {
			char cell[32];

			snprintf(cell, sizeof(cell), "%zu/%zu", json_object_size(source.sets[k]),
				 json_object_size(output.sets[k]));
			printf(" %13s", cell);
		}
		printf("\n");
		for (int k = 0; k < N_KINDS; k++) {
			json_object_foreach(source.sets[k], key, v)
				if (!json_object_get(output.sets[k], key))
					fail_msg("%s: %s '%s' is lost", names[i], kind_names[k], key);
			/* A parent known only from its children (a peering list) is extra. */
			if (k != VNET && json_object_size(output.sets[k]) !=
					 json_object_size(source.sets[k]))
				fail_msg("%s: %zu %s in the source, %zu in the output", names[i],
					 json_object_size(source.sets[k]), kind_names[k],
					 json_object_size(output.sets[k]));
		}
		counts_free(&source);
		counts_free(&output);
		json_decref(config);
		free(names[i]);
	}
	free(names);
}

/* What SOURCES.md says each sample holds, so the walk above cannot agree with the
 * importer on a wrong number. */
struct expected {
	const char *file;
	size_t n[N_KINDS];
};

static const struct expected expectations[] = {
	{ "arm-azure-bastion-nsg.json",         { 1, 1, 0, 10, 0, 0, 0, 0, 0 } },
	{ "arm-hub-spoke-mslearn.json",         { 3, 7, 0, 0, 18, 0, 0, 0, 0 } },
	{ "arm-nat-gateway-hub-spoke-firewall.json", { 2, 4, 2, 0, 0, 1, 0, 0, 1 } },
	{ "arm-site-to-site-vpn.json",          { 1, 2, 0, 0, 0, 0, 1, 1, 0 } },
	{ "arm-udr-appliance.json",             { 1, 3, 0, 1, 0, 1, 0, 0, 0 } },
	{ "arm-vnet-to-vnet-peering.json",      { 2, 2, 2, 0, 0, 0, 0, 0, 0 } },
	{ "cli-nsg-get.json",                   { 0, 0, 0, 1, 6, 0, 0, 0, 0 } },
	{ "spec-connection-create.json",        { 0, 0, 0, 0, 0, 0, 1, 1, 0 } },
	{ "spec-lng-get.json",                  { 0, 0, 0, 0, 0, 0, 1, 0, 0 } },
	{ "spec-nsg-create-with-rule.json",     { 0, 0, 0, 1, 6, 0, 0, 0, 0 } },
	{ "spec-nsg-get.json",                  { 0, 0, 0, 1, 6, 0, 0, 0, 0 } },
	{ "spec-route-table-get.json",          { 0, 0, 0, 0, 0, 1, 0, 0, 0 } },
	{ "spec-vnet-get.json",                 { 1, 1, 0, 0, 0, 0, 0, 0, 0 } },
	{ "spec-vnet-peering-list.json",        { 1, 0, 2, 0, 0, 0, 0, 0, 0 } },
};

static void known_samples_hold_what_their_sources_say(void **state)
{
	size_t n, checked = 0;
	char **names = list_samples(&n);

	if (!names)
		skip();
	for (size_t i = 0; i < sizeof(expectations) / sizeof(expectations[0]); i++) {
		const struct expected *e = &expectations[i];
		char path[2048];
		struct counts output;
		json_t *config;
		int rc;
		FILE *probe;

		snprintf(path, sizeof(path), "%s/%s", samples_dir, e->file);
		probe = fopen(path, "r");
		if (!probe)
			continue; /* the sample set changed; the walk above still covers it */
		fclose(probe);
		config = import_one(path, &rc);
		assert_int_equal(rc, 0);
		counts_init(&output);
		count_output(&output, config);
		for (int k = 0; k < N_KINDS; k++)
			if (json_object_size(output.sets[k]) != e->n[k])
				fail_msg("%s: %zu %s, %zu expected", e->file,
					 json_object_size(output.sets[k]), kind_names[k], e->n[k]);
		counts_free(&output);
		json_decref(config);
		checked++;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	assert_true(checked > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_sample_imports_and_keeps_what_it_holds),
		cmocka_unit_test(known_samples_hold_what_their_sources_say),
	};

	return cmocka_run_group_tests_name("import_samples", tests, find_samples, NULL);
}

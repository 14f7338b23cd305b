/* ARM templates: evaluates each resource's expressions, expands copy loops, drops
 * resources whose condition is false, flattens nested child resources to their full
 * "parent/child" names and hands the results to the collector. dependsOn is ignored:
 * order does not matter to a config. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "import/arm_expr.h"
#include "import/internal.h"

struct leaf_errors {
	struct importer *imp;
	json_t *pending; /* warning lines about the resource being evaluated */
};

static void pending_add(struct importer *imp, json_t *pending, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void pending_add(struct importer *imp, json_t *pending, const char *fmt, ...)
{
	char body[768], line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s: %s", imp->file ? imp->file : "input", body);
	json_array_append_new(pending, json_string(line));
}

static void describe_error(const struct arm_error *err, char *out, size_t size)
{
	if (err->position > 0)
		snprintf(out, size, "%s (character %d)", err->message, err->position);
	else
		snprintf(out, size, "%s", err->message);
}

/* An expression inside properties that cannot be evaluated: leave that property out,
 * say so, and keep the rest of the resource. */
static bool leave_out(void *opaque, const char *path, const struct arm_error *err)
{
	struct leaf_errors *le = opaque;
	char what[400];

	describe_error(err, what, sizeof(what));
	pending_add(le->imp, le->pending, "%s: %s; left out", path, what);
	return true;
}

static void take_context_warnings(struct importer *imp, struct arm_context *ctx,
				  json_t *pending, const char *path)
{
	json_t *warnings = arm_context_take_warnings(ctx), *w;
	size_t i;

	json_array_foreach(warnings, i, w)
		if (pending)
			pending_add(imp, pending, "%s", json_string_value(w));
	json_decref(warnings);
}

/* A string-valued expression such as a type or a name; NULL with a warning. */
static char *eval_text(struct importer *imp, struct arm_context *ctx, json_t *value,
		       const char *path)
{
	struct arm_error err;
	json_t *v;
	char *out = NULL, what[400];

	if (!json_is_string(value)) {
		import_warn(imp, "%s: a string is needed; the resource is left out", path);
		return NULL;
	}
	v = arm_eval_string(ctx, json_string_value(value), &err);
	if (!v) {
		describe_error(&err, what, sizeof(what));
		import_warn(imp, "%s: %s; the resource is left out", path, what);
	} else if (!json_is_string(v)) {
		import_warn(imp, "%s: evaluates to a non-string; the resource is left out", path);
	} else {
		out = strdup(json_string_value(v));
	}
	json_decref(v);
	return out;
}

static size_t count_segments(const char *s)
{
	size_t n = 1;

	for (; *s; s++)
		n += *s == '/';
	return n;
}

static void expand_resource(struct importer *imp, struct arm_context *ctx, json_t *res,
			    const char *path, const char *parent_type, const char *parent_name);

#define DEPLOYMENTS "Microsoft.Resources/deployments"

static void expand_deployment(struct importer *imp, struct arm_context *ctx, json_t *res,
			      const char *path);

static void expand_instance(struct importer *imp, struct arm_context *ctx, json_t *res,
			    const char *path, const char *parent_type, const char *parent_name)
{
	json_t *condition = json_object_get(res, "condition");
	char *type = NULL, *name = NULL, *full_type = NULL, *full_name = NULL, *sub = NULL;
	json_t *nested, *child;
	size_t i;

	if (condition) {
		struct arm_error err;
		char *cpath = NULL, what[400];
		json_t *v;

		if (asprintf(&cpath, "%s.condition", path) < 0)
			return;
		v = arm_eval_tree(ctx, condition, cpath, NULL, NULL, &err);
		if (!v) {
			describe_error(&err, what, sizeof(what));
			import_warn(imp, "%s: %s; the resource is kept as if true", cpath, what);
		}
		free(cpath);
		if (json_is_false(v) || (json_is_string(v) &&
					 !strcasecmp(json_string_value(v), "false"))) {
			json_decref(v);
			take_context_warnings(imp, ctx, NULL, path);
			return; /* not deployed: neither kept nor counted */
		}
		json_decref(v);
	}
	if (!(sub = NULL, asprintf(&sub, "%s.type", path) >= 0) ||
	    !(type = eval_text(imp, ctx, json_object_get(res, "type"), sub)))
		goto out;
	free(sub);
	sub = NULL;
	if (asprintf(&sub, "%s.name", path) < 0 ||
	    !(name = eval_text(imp, ctx, json_object_get(res, "name"), sub)))
		goto out;

	/* A nested child may write its type short ("subnets") and its name short. */
	if (parent_type && !strchr(type, '.')) {
		if (asprintf(&full_type, "%s/%s", parent_type, type) < 0)
			goto out;
	} else {
		full_type = strdup(type);
	}
	if (parent_name && count_segments(name) < count_segments(full_type) - 1) {
		if (asprintf(&full_name, "%s/%s", parent_name, name) < 0)
			goto out;
	} else {
		full_name = strdup(name);
	}

	if (!strcasecmp(full_type, DEPLOYMENTS)) {
		expand_deployment(imp, ctx, res, path);
		take_context_warnings(imp, ctx, NULL, path);
	} else if (!import_type_is_modeled(full_type)) {
		importer_count_unmodeled(imp, full_type, 1);
		importer_note_flow_log(imp, full_type, res);
		take_context_warnings(imp, ctx, NULL, path);
	} else {
		struct leaf_errors le = { .imp = imp, .pending = json_array() };
		struct arm_error err;
		json_t *resource = json_pack("{s:s, s:s}", "type", full_type, "name", full_name);
		json_t *props = json_object_get(res, "properties"), *sku = json_object_get(res, "sku");
		char *ppath = NULL;

		if (props && asprintf(&ppath, "%s.properties", path) >= 0) {
			json_t *v = arm_eval_tree(ctx, props, ppath, leave_out, &le, &err);

			if (v)
				json_object_set_new(resource, "properties", v);
			free(ppath);
			ppath = NULL;
		}
		if (sku && asprintf(&ppath, "%s.sku", path) >= 0) {
			json_t *v = arm_eval_tree(ctx, sku, ppath, leave_out, &le, &err);

			if (v)
				json_object_set_new(resource, "sku", v);
			free(ppath);
		}
		take_context_warnings(imp, ctx, le.pending, path);
		importer_add_resource(imp, resource, path, le.pending);
		json_decref(resource);
		json_decref(le.pending);
	}

	nested = json_object_get(res, "resources");
	json_array_foreach(nested, i, child) {
		char *cpath = NULL;

		if (asprintf(&cpath, "%s.resources[%zu]", path, i) < 0)
			break;
		expand_resource(imp, ctx, child, cpath, full_type, full_name);
		free(cpath);
	}
out:
	free(sub);
	free(type);
	free(name);
	free(full_type);
	free(full_name);
}

static void expand_resource(struct importer *imp, struct arm_context *ctx, json_t *res,
			    const char *path, const char *parent_type, const char *parent_name)
{
	json_t *copy = json_object_get(res, "copy"), *count, *loop_name = NULL;
	struct arm_error err;
	char what[400];

	if (!json_is_object(res)) {
		import_warn(imp, "%s: a resource is an object; left out", path);
		return;
	}
	if (!json_is_object(copy)) {
		expand_instance(imp, ctx, res, path, parent_type, parent_name);
		return;
	}
	count = arm_eval_tree(ctx, json_object_get(copy, "count"), "copy.count", NULL, NULL,
			      &err);
	if (count && json_object_get(copy, "name"))
		loop_name = arm_eval_tree(ctx, json_object_get(copy, "name"), "copy.name", NULL,
					  NULL, &err);
	if (!count || !json_is_integer(count) || json_integer_value(count) < 0) {
		if (!count)
			describe_error(&err, what, sizeof(what));
		else
			snprintf(what, sizeof(what), "the count is not an int >= 0");
		import_warn(imp, "%s.copy.count: %s; the resource is left out", path, what);
		take_context_warnings(imp, ctx, NULL, path);
	} else {
		for (json_int_t k = 0; k < json_integer_value(count); k++) {
			char *ipath = NULL;

			if (asprintf(&ipath, "%s[copy %lld]", path, (long long)k) < 0)
				break;
			arm_context_push_copy(ctx, json_string_value(loop_name), (int)k);
			expand_instance(imp, ctx, res, ipath, parent_type, parent_name);
			arm_context_pop_copy(ctx);
			free(ipath);
		}
	}
	json_decref(count);
	json_decref(loop_name);
}

/* ---- reference(): what the template alone tells ------------------------------------- */

#define AZURE_FIREWALLS "Microsoft.Network/azureFirewalls"

/* The template resource of `type` and `name` (top level, as evaluated), borrowed. */
static json_t *template_resource(struct arm_context *ctx, json_t *doc, const char *type,
				 const char *name)
{
	json_t *res;
	size_t i;

	json_array_foreach(json_object_get(doc, "resources"), i, res) {
		json_t *t = json_object_get(res, "type"), *n = json_object_get(res, "name");
		struct arm_error err;
		json_t *tv, *nv;
		bool match;

		if (!json_is_string(t) || !json_is_string(n) ||
		    strcasecmp(json_string_value(t), type))
			continue;
		tv = arm_eval_string(ctx, json_string_value(t), &err);
		nv = tv ? arm_eval_string(ctx, json_string_value(n), &err) : NULL;
		match = json_is_string(nv) && !strcasecmp(json_string_value(nv), name);
		json_decref(tv);
		json_decref(nv);
		if (match)
			return res;
	}
	return NULL;
}

static bool quietly_leave_out(void *opaque, const char *path, const struct arm_error *err)
{
	return true;
}

/* A resource's properties evaluated, unevaluable leaves left out (the resource itself
 * gets its warnings when it is imported). */
static json_t *evaluated_properties(struct arm_context *ctx, json_t *res)
{
	struct arm_error err;

	return arm_eval_tree(ctx, json_object_get(res, "properties"), "properties",
			     quietly_leave_out, NULL, &err);
}

/* A subnet's properties, whether the VNet declares it inline or as a child resource. */
static json_t *subnet_properties(struct arm_context *ctx, json_t *doc, const char *name)
{
	const char *slash = strchr(name, '/');
	json_t *vnet, *props, *s, *out = NULL;
	char *vnet_name;
	size_t i;

	if (!slash)
		return NULL;
	vnet_name = strndup(name, (size_t)(slash - name));
	vnet = template_resource(ctx, doc, "Microsoft.Network/virtualNetworks", vnet_name);
	props = vnet ? evaluated_properties(ctx, vnet) : NULL;
	json_array_foreach(json_object_get(props, "subnets"), i, s)
		if (!strcasecmp(json_string_value(json_object_get(s, "name")) ?: "", slash + 1))
			out = json_incref(json_object_get(s, "properties"));
	json_decref(props);
	free(vnet_name);
	if (!out) {
		json_t *res = template_resource(ctx, doc, "Microsoft.Network/virtualNetworks/subnets",
						name);

		out = res ? evaluated_properties(ctx, res) : NULL;
	}
	return out;
}

/* The address prefix of subnet "vnet/subnet"; a new string or NULL. */
static char *subnet_prefix(struct arm_context *ctx, json_t *doc, const char *name)
{
	json_t *sprops = subnet_properties(ctx, doc, name);
	const char *prefix = json_string_value(json_object_get(sprops, "addressPrefix"));
	char *out;

	if (!prefix)
		prefix = json_string_value(json_array_get(json_object_get(sprops, "addressPrefixes"),
							  0));
	out = prefix ? strdup(prefix) : NULL;
	json_decref(sprops);
	return out;
}

/* An Azure Firewall's properties with each ipConfiguration's privateIPAddress derived
 * from its subnet (AzureFirewallSubnet), or NULL with the reason. */
static json_t *firewall_properties(struct arm_context *ctx, json_t *doc, json_t *res,
				   const char *name, const char *path, char *why, size_t why_size)
{
	json_t *props = evaluated_properties(ctx, res), *ipc;
	size_t i;

	json_array_foreach(json_object_get(props, "ipConfigurations"), i, ipc) {
		json_t *ipprops = json_object_get(ipc, "properties");
		const char *subnet_id = json_string_value(json_object_get(
			json_object_get(ipprops, "subnet"), "id"));
		char *s_sub = NULL, *s_group = NULL, *s_type = NULL, *s_name = NULL;
		char *prefix = NULL, address[INET_ADDRSTRLEN];

		if (!subnet_id ||
		    !import_parse_id(subnet_id, &s_sub, &s_group, &s_type, &s_name))
			continue;
		prefix = subnet_prefix(ctx, doc, s_name);
		if (prefix && import_first_free_address(prefix, NULL, address, sizeof(address))) {
			json_object_set_new(ipprops, "privateIPAddress", json_string(address));
			arm_context_warn(ctx, "%s: reference() to Azure Firewall '%s' is resolved "
					 "without a deployment: ipConfigurations[%zu] gets %s, the "
					 "first usable address (network + 4) of its subnet %s %s, as "
					 "Azure assigns it; check it after deploying", path, name, i,
					 address, strchr(s_name, '/') ? strchr(s_name, '/') + 1 :
					 s_name, prefix);
		}
		free(prefix);
		free(s_sub);
		free(s_group);
		free(s_type);
		free(s_name);
	}
	if (!json_is_string(json_object_get(json_object_get(json_array_get(
		    json_object_get(props, "ipConfigurations"), 0), "properties"),
		    "privateIPAddress"))) {
		snprintf(why, why_size, "reference() to Azure Firewall '%s': its subnet's "
			 "address prefix is not in the template, so its private IP is unknown",
			 name);
		json_decref(props);
		return NULL;
	}
	return props;
}

/* The address Azure gives the Dynamic ipConfiguration `index` of NIC `target`: the
 * template's static addresses in its subnet are taken, then its Dynamic ones in the
 * order the template declares the NICs. False when a NIC there comes from a copy loop
 * (its instances are not known here) or the subnet's prefix is not in the template. */
static bool template_dynamic_address(struct arm_context *ctx, json_t *doc, json_t *target,
				     size_t index, const char *subnet, char *out, size_t size)
{
	json_t *taken = json_object(), *all = json_array(), *res, *ipc;
	char *prefix = NULL, *want = import_lower(subnet);
	bool found = false;
	size_t i, j;

	json_array_foreach(json_object_get(doc, "resources"), i, res) {
		json_t *props;

		if (strcasecmp(json_string_value(json_object_get(res, "type")) ?: "",
			       "Microsoft.Network/networkInterfaces"))
			continue;
		if (json_object_get(res, "copy"))
			goto out;
		props = evaluated_properties(ctx, res);
		json_array_foreach(json_object_get(props, "ipConfigurations"), j, ipc) {
			json_t *ipprops = json_object_get(ipc, "properties");
			char *key = import_subnet_key(ipprops);
			const char *address = json_string_value(json_object_get(ipprops,
										"privateIPAddress"));

			if (key && want && !strcmp(key, want)) {
				if (address && *address)
					json_object_set_new(taken, address, json_true());
				else if (import_ipc_is_dynamic(ipprops))
					json_array_append_new(all, json_pack("{s:b}", "target",
						res == target && j == index));
			}
			free(key);
		}
		json_decref(props);
	}
	prefix = subnet_prefix(ctx, doc, subnet);
	json_array_foreach(all, i, ipc) {
		if (!prefix || !import_first_free_address(prefix, taken, out, size))
			break;
		if (json_is_true(json_object_get(ipc, "target"))) {
			found = true;
			break;
		}
		json_object_set_new(taken, out, json_true());
	}
out:
	free(prefix);
	free(want);
	json_decref(taken);
	json_decref(all);
	return found;
}

/* A NIC's properties, each Dynamic ipConfiguration given the address Azure assigns. */
static json_t *nic_properties(struct arm_context *ctx, json_t *doc, json_t *res,
			      const char *name, const char *path)
{
	json_t *props = evaluated_properties(ctx, res), *ipc;
	size_t i;

	json_array_foreach(json_object_get(props, "ipConfigurations"), i, ipc) {
		json_t *ipprops = json_object_get(ipc, "properties");
		const char *id = json_string_value(json_object_get(json_object_get(ipprops,
									       "subnet"), "id"));
		char *sub = NULL, *group = NULL, *type = NULL, *subnet = NULL;
		char address[INET_ADDRSTRLEN];

		if (!import_ipc_is_dynamic(ipprops) || !id ||
		    !import_parse_id(id, &sub, &group, &type, &subnet))
			continue;
		if (template_dynamic_address(ctx, doc, res, i, subnet, address, sizeof(address))) {
			json_object_set_new(ipprops, "privateIPAddress", json_string(address));
			arm_context_warn(ctx, "%s: reference() to network interface '%s' is resolved "
					 "without a deployment: ipConfigurations[%zu] is Dynamic and "
					 "gets %s, the first free address from .4 of subnet %s in the "
					 "order the template declares its NICs, as Azure assigns it; "
					 "check it after deploying", path, name, i, address, subnet);
		}
		free(sub);
		free(group);
		free(type);
		free(subnet);
	}
	return props;
}

/* A public IP's address is Azure's pick at deployment unless the template gives it. */
static json_t *public_ip_properties(struct arm_context *ctx, json_t *res, const char *name,
				    char *why, size_t why_size)
{
	json_t *props = evaluated_properties(ctx, res);

	if (json_is_string(json_object_get(props, "ipAddress")))
		return props;
	snprintf(why, why_size, "reference() to public IP '%s': Azure picks its ipAddress at "
		 "deployment, so it is not known from the template", name);
	json_decref(props);
	return NULL;
}

/* reference() of a resource the template declares: its declared properties, as Azure
 * will report them; what only a deployment decides is missing, so an expression reading
 * it fails and its property is left out with a warning. Derived where the template
 * decides it: an Azure Firewall's private IP. */
static json_t *resolve_reference(void *opaque, struct arm_context *ctx, const char *id,
				 const char *path, char *why, size_t why_size)
{
	json_t *doc = opaque, *res, *props = NULL;
	char *sub = NULL, *group = NULL, *type = NULL, *name = NULL;

	if (!import_parse_id(id, &sub, &group, &type, &name)) {
		snprintf(why, why_size, "reference() to '%s' needs a deployment and is not "
			 "supported; only a resource id of a resource in the template is resolved",
			 id);
		return NULL;
	}
	res = template_resource(ctx, doc, type, name);
	if (!strcasecmp(type, "Microsoft.Network/virtualNetworks/subnets"))
		props = subnet_properties(ctx, doc, name);
	else if (!res)
		; /* said below */
	else if (!strcasecmp(type, AZURE_FIREWALLS))
		props = firewall_properties(ctx, doc, res, name, path, why, why_size);
	else if (!strcasecmp(type, "Microsoft.Network/networkInterfaces"))
		props = nic_properties(ctx, doc, res, name, path);
	else if (!strcasecmp(type, "Microsoft.Network/publicIPAddresses"))
		props = public_ip_properties(ctx, res, name, why, why_size);
	else
		props = evaluated_properties(ctx, res);
	if (!props && !*why)
		snprintf(why, why_size, "reference() to %s '%s', which the template does not "
			 "declare, needs a deployment and is not supported", type, name);
	free(sub);
	free(group);
	free(type);
	free(name);
	return props;
}

/* ---- nested deployments ------------------------------------------------------------ */

/* Deployments nest no deeper, and no more are expanded, than this: with copy loops a
 * template could otherwise make the import's work grow without bound. */
#define DEPLOYMENT_DEPTH_MAX 8
#define DEPLOYMENTS_MAX 256

static void expand_template(struct importer *imp, struct arm_context *ctx, json_t *doc,
			    const char *path);

/* A value passed into a template is data: each string that starts with '[' is escaped
 * ("[[") so that the inner template does not evaluate it again. A new reference. */
static json_t *escaped_literal(json_t *value)
{
	const char *key;
	json_t *v, *out;
	size_t i;

	if (json_is_string(value) && json_string_value(value)[0] == '[') {
		char *escaped = NULL;

		if (asprintf(&escaped, "[%s", json_string_value(value)) < 0)
			return NULL;
		out = json_string(escaped);
		free(escaped);
		return out;
	}
	if (json_is_object(value)) {
		out = json_object();
		json_object_foreach(value, key, v)
			json_object_set_new(out, key, escaped_literal(v));
		return out;
	}
	if (json_is_array(value)) {
		out = json_array();
		json_array_foreach(value, i, v)
			json_array_append_new(out, escaped_literal(v));
		return out;
	}
	return json_incref(value);
}

/* The inner template with the values its deployment passes (evaluated in the outer
 * scope) as its parameters' defaults; NULL with a warning when one cannot be known. */
static json_t *inner_template(struct importer *imp, struct arm_context *ctx, json_t *props,
			      const char *path)
{
	json_t *doc = json_deep_copy(json_object_get(props, "template")), *given;
	json_t *decls = json_object_get(doc, "parameters");
	const char *name;

	json_object_foreach(json_object_get(props, "parameters"), name, given) {
		json_t *decl = json_object_get(decls, name), *value;
		struct arm_error err;
		char *vpath = NULL, what[400];

		if (!json_is_object(decl)) {
			import_warn(imp, "%s.properties.parameters.%s: the inner template does not "
				    "declare it; ignored", path, name);
			continue;
		}
		if (!json_object_get(given, "value")) {
			import_warn(imp, "%s.properties.parameters.%s: only a \"value\" can be "
				    "passed without a deployment (not a Key Vault reference); the "
				    "inner template's default is used", path, name);
			continue;
		}
		if (asprintf(&vpath, "%s.properties.parameters.%s.value", path, name) < 0)
			break;
		value = arm_eval_tree(ctx, json_object_get(given, "value"), vpath, NULL, NULL, &err);
		if (!value) {
			describe_error(&err, what, sizeof(what));
			import_warn(imp, "%s: %s; the inner template's default is used", vpath, what);
		} else {
			json_object_set_new(decl, "defaultValue", escaped_literal(value));
			json_decref(value);
		}
		free(vpath);
	}
	return doc;
}

/* Microsoft.Resources/deployments with an inline template: its resources are expanded
 * as Azure deploys them. Scope "inner": the template's own parameters (given the values
 * passed) and variables; "outer" (Azure's default): the parent's. */
static void expand_deployment(struct importer *imp, struct arm_context *ctx, json_t *res,
			      const char *path)
{
	json_t *props = json_object_get(res, "properties"), *doc;
	json_t *scope = json_object_get(json_object_get(props, "expressionEvaluationOptions"),
					"scope");
	char *tpath = NULL;
	struct arm_error err;
	json_t *scope_value = scope ? arm_eval_tree(ctx, scope, "scope", NULL, NULL, &err) : NULL;
	bool inner = json_is_string(scope_value) &&
		     !strcasecmp(json_string_value(scope_value), "inner");

	json_decref(scope_value);
	if (!json_is_object(json_object_get(props, "template"))) {
		import_warn(imp, "%s: a deployment of a linked template (templateLink) is not read; "
			    "import that template on its own", path);
		importer_count_unmodeled(imp, DEPLOYMENTS, 1);
		return;
	}
	if (imp->deployment_depth >= DEPLOYMENT_DEPTH_MAX ||
	    imp->deployments_expanded >= DEPLOYMENTS_MAX) {
		import_warn(imp, "%s: more than %d deployments, or nested deeper than %d; left "
			    "out", path, DEPLOYMENTS_MAX, DEPLOYMENT_DEPTH_MAX);
		return;
	}
	imp->deployments_expanded++;
	if (asprintf(&tpath, "%s.properties.template", path) < 0)
		return;
	imp->deployment_depth++;
	if (inner) {
		struct arm_context *inner_ctx;

		doc = inner_template(imp, ctx, props, path);
		inner_ctx = arm_context_new(doc, NULL);
		if (inner_ctx) {
			arm_context_set_reference_resolver(inner_ctx, resolve_reference, doc);
			expand_template(imp, inner_ctx, doc, tpath);
			arm_context_free(inner_ctx);
		}
		json_decref(doc);
	} else {
		expand_template(imp, ctx, json_object_get(props, "template"), tpath);
	}
	imp->deployment_depth--;
	free(tpath);
}

static void expand_template(struct importer *imp, struct arm_context *ctx, json_t *doc,
			    const char *path)
{
	json_t *res;
	size_t i;

	json_array_foreach(json_object_get(doc, "resources"), i, res) {
		char *rpath = NULL;

		if (asprintf(&rpath, "%s%sresources[%zu]", path, *path ? "." : "", i) < 0)
			break;
		expand_resource(imp, ctx, res, rpath, NULL, NULL);
		free(rpath);
	}
}

int import_arm_template(struct importer *imp, json_t *doc)
{
	json_t *resources = json_object_get(doc, "resources"), *decl;
	struct arm_context *ctx;
	const char *name;

	if (!json_is_array(resources)) {
		fprintf(imp->diag, "import: %s: \"resources\" is not an array\n", imp->file);
		return 1;
	}
	json_object_foreach(json_object_get(doc, "parameters"), name, decl) {
		char *lower = import_lower(name);

		if (lower)
			json_object_set_new(imp->declared_params, lower, json_string(name));
		free(lower);
	}
	ctx = arm_context_new(doc, imp->params);
	if (!ctx)
		return 1;
	arm_context_set_reference_resolver(ctx, resolve_reference, doc);
	expand_template(imp, ctx, doc, "");
	arm_context_free(ctx);
	return 0;
}

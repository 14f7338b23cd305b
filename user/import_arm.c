/* ARM templates: evaluates each resource's expressions, expands copy loops, drops
 * resources whose condition is false, flattens nested child resources to their full
 * "parent/child" names and hands the results to the collector. dependsOn is ignored:
 * order does not matter to a config. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "arm_expr.h"
#include "import_internal.h"

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

	if (!import_type_is_modeled(full_type)) {
		importer_count_unmodeled(imp, full_type, 1);
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

int import_arm_template(struct importer *imp, json_t *doc)
{
	json_t *resources = json_object_get(doc, "resources"), *res;
	struct arm_context *ctx;
	size_t i;

	if (!json_is_array(resources)) {
		fprintf(imp->diag, "import: %s: \"resources\" is not an array\n", imp->file);
		return 1;
	}
	ctx = arm_context_new(doc, imp->params);
	if (!ctx)
		return 1;
	json_array_foreach(resources, i, res) {
		char *path = NULL;

		if (asprintf(&path, "resources[%zu]", i) < 0)
			break;
		expand_resource(imp, ctx, res, path, NULL, NULL);
		free(path);
	}
	arm_context_free(ctx);
	return 0;
}

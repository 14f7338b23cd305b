/* ARM template expressions: a recursive-descent parser that evaluates as it parses.
 *
 *   expression := primary ( '.' name | '[' expression ']' )*
 *   primary    := 'string' | integer | name '(' arguments ')' | true | false | null
 *               | '[' arguments ']'                      (an array literal)
 *
 * Names of functions, parameters, variables and properties are case-insensitive, as in
 * ARM (templates in the wild write variables('subnet3Prefix') for "Subnet3Prefix"). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "import/arm_expr.h"
#include "import/arm_cidr.h"

#define ARM_MAX_DEPTH 64

struct copy_frame {
	char *name;
	int index;
};

struct arm_context {
	json_t *parameter_decls;  /* borrowed from the template */
	json_t *variable_decls;   /* borrowed from the template */
	json_t *overrides;        /* borrowed, may be NULL */
	json_t *parameter_values; /* cache, keyed by lower-case name */
	json_t *variable_values;  /* cache, keyed by lower-case name */
	json_t *resolving;        /* "p:name" / "v:name" being resolved: cycle detection */
	json_t *warnings;
	struct copy_frame *copies;
	size_t n_copies, cap_copies;
	int depth;
	arm_reference_fn reference;  /* may be NULL: reference() is then unsupported */
	void *reference_opaque;
	bool in_reference;           /* a resolver is running: reference() does not nest */
	const char *current_path;    /* the tree path being evaluated, for warnings */
};

struct parser {
	struct arm_context *ctx;
	const char *text; /* the whole string value, starting with '[' */
	size_t end;       /* index of the closing ']' */
	size_t pos;
	struct arm_error *err;
};

static void set_error(struct arm_error *err, enum arm_error_kind kind, int position,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_error(struct arm_error *err, enum arm_error_kind kind, int position,
		      const char *fmt, ...)
{
	va_list ap;

	if (!err || err->kind != ARM_OK)
		return; /* the innermost error is the useful one */
	err->kind = kind;
	err->position = position;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

static char *lower_dup(const char *s)
{
	char *copy = strdup(s);

	for (char *c = copy; c && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return copy;
}

/* Case-insensitive member lookup; exact spelling wins when both exist. */
static json_t *object_get_ci(json_t *object, const char *key)
{
	const char *k;
	json_t *v;
	json_t *exact;

	if (!json_is_object(object))
		return NULL;
	exact = json_object_get(object, key);
	if (exact)
		return exact;
	json_object_foreach(object, k, v) {
		if (!strcasecmp(k, key))
			return v;
	}
	return NULL;
}

struct arm_context *arm_context_new(json_t *template_doc, json_t *overrides)
{
	struct arm_context *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->parameter_decls = json_object_get(template_doc, "parameters");
	ctx->variable_decls = json_object_get(template_doc, "variables");
	ctx->overrides = overrides;
	ctx->parameter_values = json_object();
	ctx->variable_values = json_object();
	ctx->resolving = json_object();
	ctx->warnings = json_array();
	if (!ctx->parameter_values || !ctx->variable_values || !ctx->resolving ||
	    !ctx->warnings) {
		arm_context_free(ctx);
		return NULL;
	}
	return ctx;
}

void arm_context_free(struct arm_context *ctx)
{
	if (!ctx)
		return;
	json_decref(ctx->parameter_values);
	json_decref(ctx->variable_values);
	json_decref(ctx->resolving);
	json_decref(ctx->warnings);
	for (size_t i = 0; i < ctx->n_copies; i++)
		free(ctx->copies[i].name);
	free(ctx->copies);
	free(ctx);
}

int arm_context_push_copy(struct arm_context *ctx, const char *loop_name, int index)
{
	if (ctx->n_copies == ctx->cap_copies) {
		size_t cap = ctx->cap_copies ? ctx->cap_copies * 2 : 4;
		struct copy_frame *frames = realloc(ctx->copies, cap * sizeof(*frames));

		if (!frames)
			return -ENOMEM;
		ctx->copies = frames;
		ctx->cap_copies = cap;
	}
	ctx->copies[ctx->n_copies].name = strdup(loop_name ? loop_name : "");
	ctx->copies[ctx->n_copies].index = index;
	ctx->n_copies++;
	return 0;
}

void arm_context_pop_copy(struct arm_context *ctx)
{
	if (ctx->n_copies == 0)
		return;
	ctx->n_copies--;
	free(ctx->copies[ctx->n_copies].name);
}

json_t *arm_context_take_warnings(struct arm_context *ctx)
{
	json_t *taken = ctx->warnings;

	ctx->warnings = json_array();
	return taken;
}

void arm_context_warn(struct arm_context *ctx, const char *fmt, ...)
{
	char line[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	json_array_append_new(ctx->warnings, json_string(line));
}

void arm_context_set_reference_resolver(struct arm_context *ctx, arm_reference_fn fn,
					void *opaque)
{
	ctx->reference = fn;
	ctx->reference_opaque = opaque;
}

bool arm_is_expression(const char *text)
{
	size_t len = strlen(text);

	return len >= 2 && text[0] == '[' && text[1] != '[' && text[len - 1] == ']';
}

/* ---- conversions ---------------------------------------------------------------- */

/* The text ARM's string() and concat() make of a value. */
static char *value_to_text(json_t *v)
{
	char *s = NULL;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return strdup(json_string_value(v));
	case JSON_INTEGER:
		if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
			return NULL;
		return s;
	case JSON_REAL:
		if (asprintf(&s, "%g", json_real_value(v)) < 0)
			return NULL;
		return s;
	case JSON_TRUE:
		return strdup("True");
	case JSON_FALSE:
		return strdup("False");
	case JSON_NULL:
		return strdup("");
	default:
		return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	}
}

static const char *type_name(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "int";
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "bool";
	default: return "null";
	}
}

/* ---- parameters and variables --------------------------------------------------- */

static json_t *eval_tree(struct arm_context *ctx, json_t *value, const char *path,
			 arm_leaf_error_fn on_error, void *opaque, struct arm_error *err,
			 bool *omitted);

/* An error inside a parameter's default or a variable is reported where it is used. */
static void locate_inner_error(struct arm_error *err, const char *what, const char *name,
			       int position)
{
	char inner[sizeof(err->message)];

	if (!err || err->kind == ARM_OK || !strncmp(err->message, what, strlen(what)))
		return;
	memcpy(inner, err->message, sizeof(inner));
	snprintf(err->message, sizeof(err->message), "%s '%.40s', at %d: %.180s", what, name,
		 err->position, inner);
	err->position = position;
}

static json_t *convert_override(const char *name, const char *type, const char *text,
				struct arm_error *err, int position)
{
	json_t *v;
	char *end;
	long long n;

	if (!type || !strcasecmp(type, "string") || !strcasecmp(type, "securestring"))
		return json_string(text);
	if (!strcasecmp(type, "int")) {
		errno = 0;
		n = strtoll(text, &end, 10);
		if (errno || end == text || *end) {
			set_error(err, ARM_ERROR_EVAL, position,
				  "--param %s=%s: an int is needed", name, text);
			return NULL;
		}
		return json_integer(n);
	}
	if (!strcasecmp(type, "bool")) {
		if (!strcasecmp(text, "true"))
			return json_true();
		if (!strcasecmp(text, "false"))
			return json_false();
		set_error(err, ARM_ERROR_EVAL, position,
			  "--param %s=%s: true or false is needed", name, text);
		return NULL;
	}
	v = json_loads(text, JSON_DECODE_ANY, NULL);
	if (!v)
		set_error(err, ARM_ERROR_EVAL, position,
			  "--param %s: a JSON %s is needed", name, type);
	return v;
}

static json_t *parameter_value(struct arm_context *ctx, const char *name,
			       struct arm_error *err, int position)
{
	json_t *decl = object_get_ci(ctx->parameter_decls, name);
	json_t *cached, *override, *value = NULL;
	const char *type;
	char *key, *guard;
	bool omitted = false;

	if (!json_is_object(decl)) {
		set_error(err, ARM_ERROR_EVAL, position, "parameter '%s' is not declared", name);
		return NULL;
	}
	key = lower_dup(name);
	if (!key)
		return NULL;
	cached = json_object_get(ctx->parameter_values, key);
	if (cached) {
		free(key);
		return json_incref(cached);
	}
	type = json_string_value(json_object_get(decl, "type"));
	override = object_get_ci(ctx->overrides, name);
	if (json_is_string(override)) {
		value = convert_override(name, type, json_string_value(override), err, position);
	} else if (json_object_get(decl, "defaultValue")) {
		if (asprintf(&guard, "p:%s", key) < 0) {
			free(key);
			return NULL;
		}
		if (json_object_get(ctx->resolving, guard)) {
			set_error(err, ARM_ERROR_EVAL, position,
				  "parameter '%s' refers to itself", name);
		} else {
			json_object_set_new(ctx->resolving, guard, json_true());
			value = eval_tree(ctx, json_object_get(decl, "defaultValue"), name,
					  NULL, NULL, err, &omitted);
			if (!value)
				locate_inner_error(err, "parameter", name, position);
			json_object_del(ctx->resolving, guard);
		}
		free(guard);
	} else if (type && (!strcasecmp(type, "securestring") ||
			    !strcasecmp(type, "secureObject"))) {
		/* Not cached: every use warns, so the one that is kept is reported. */
		arm_context_warn(ctx, "parameter '%s' (%s) has no value: \"%s\" stands in for it; "
		     "set it with --param %s=VALUE", name, type, ARM_SECRET_PLACEHOLDER, name);
		free(key);
		return json_string(ARM_SECRET_PLACEHOLDER);
	} else if (!type || !strcasecmp(type, "string")) {
		arm_context_warn(ctx, "parameter '%s' has no value: its name stands in for it; "
		     "set it with --param %s=VALUE", name, name);
		free(key);
		return json_string(name);
	} else {
		set_error(err, ARM_ERROR_EVAL, position,
			  "parameter '%s' (%s) has no value; set it with --param %s=VALUE",
			  name, type, name);
	}
	if (value)
		json_object_set(ctx->parameter_values, key, value);
	free(key);
	return value;
}

/* A variable made by a variable copy loop ("variables": {"copy": [{name, count, input}]}). */
static json_t *variable_copy_decl(json_t *variables, const char *name)
{
	json_t *loops = json_object_get(variables, "copy");
	json_t *loop;
	size_t i;

	if (!json_is_array(loops))
		return NULL;
	json_array_foreach(loops, i, loop) {
		const char *loop_name = json_string_value(json_object_get(loop, "name"));

		if (loop_name && !strcasecmp(loop_name, name))
			return loop;
	}
	return NULL;
}

static json_t *variable_value(struct arm_context *ctx, const char *name,
			      struct arm_error *err, int position)
{
	json_t *decl = object_get_ci(ctx->variable_decls, name);
	json_t *cached, *value = NULL, *wrapper = NULL;
	char *key, *guard;
	bool omitted = false;

	if (!decl || !strcasecmp(name, "copy")) {
		json_t *loop = variable_copy_decl(ctx->variable_decls, name);

		if (!loop) {
			set_error(err, ARM_ERROR_EVAL, position,
				  "variable '%s' is not declared", name);
			return NULL;
		}
		/* Evaluate it as a one-entry property copy and take the result. */
		wrapper = json_pack("{s:[O]}", "copy", loop);
		decl = wrapper;
	}
	key = lower_dup(name);
	cached = key ? json_object_get(ctx->variable_values, key) : NULL;
	if (cached) {
		free(key);
		json_decref(wrapper);
		return json_incref(cached);
	}
	if (!key || asprintf(&guard, "v:%s", key) < 0) {
		free(key);
		json_decref(wrapper);
		return NULL;
	}
	if (json_object_get(ctx->resolving, guard)) {
		set_error(err, ARM_ERROR_EVAL, position, "variable '%s' refers to itself", name);
	} else {
		json_object_set_new(ctx->resolving, guard, json_true());
		value = eval_tree(ctx, decl, name, NULL, NULL, err, &omitted);
		json_object_del(ctx->resolving, guard);
		if (!value)
			locate_inner_error(err, "variable", name, position);
		if (value && wrapper) {
			json_t *inner = json_incref(object_get_ci(value, name));

			json_decref(value);
			value = inner;
		}
	}
	if (value)
		json_object_set(ctx->variable_values, key, value);
	free(guard);
	free(key);
	json_decref(wrapper);
	return value;
}

/* ---- functions ------------------------------------------------------------------ */

struct call {
	struct parser *p;
	const char *name;
	int position; /* of the function name */
	json_t **args;
	size_t n;
};

#define CALL_FAIL(c, ...) \
	(set_error((c)->p->err, ARM_ERROR_EVAL, (c)->position, __VA_ARGS__), (json_t *)NULL)

static bool want(struct call *c, size_t i, json_type type)
{
	if (json_typeof(c->args[i]) == type ||
	    (type == JSON_TRUE && json_is_boolean(c->args[i])))
		return true;
	set_error(c->p->err, ARM_ERROR_EVAL, c->position,
		  "%s(): argument %zu is %s, %s is needed", c->name, i + 1,
		  type_name(c->args[i]),
		  type == JSON_STRING ? "a string" : type == JSON_INTEGER ? "an int" :
		  type == JSON_ARRAY ? "an array" : type == JSON_OBJECT ? "an object" : "a bool");
	return false;
}

static json_t *fn_parameters(struct call *c)
{
	if (!want(c, 0, JSON_STRING))
		return NULL;
	return parameter_value(c->p->ctx, json_string_value(c->args[0]), c->p->err, c->position);
}

static json_t *fn_variables(struct call *c)
{
	if (!want(c, 0, JSON_STRING))
		return NULL;
	return variable_value(c->p->ctx, json_string_value(c->args[0]), c->p->err, c->position);
}

static json_t *fn_concat(struct call *c)
{
	json_t *out;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (c->n > 0 && json_is_array(c->args[0])) {
		out = json_array();
		for (size_t i = 0; i < c->n; i++) {
			if (!want(c, i, JSON_ARRAY)) {
				json_decref(out);
				return NULL;
			}
			json_array_extend(out, c->args[i]);
		}
		return out;
	}
	f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < c->n; i++) {
		char *part = value_to_text(c->args[i]);

		if (part)
			fputs(part, f);
		free(part);
	}
	fclose(f);
	out = json_string(text);
	free(text);
	return out;
}

/* .NET composite formatting: {0}, {1,-8:D}, with {{ and }} for braces. Alignment and
 * format specifiers are accepted and ignored. */
static json_t *fn_format(struct call *c)
{
	const char *fmt;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	json_t *out = NULL;

	if (!want(c, 0, JSON_STRING))
		return NULL;
	fmt = json_string_value(c->args[0]);
	f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	for (const char *s = fmt; *s; s++) {
		if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
			fputc(*s++, f);
		} else if (*s == '{') {
			char *end;
			long index = strtol(s + 1, &end, 10);
			const char *close = strchr(s, '}');
			char *part;

			if (end == s + 1 || !close || index < 0 || (size_t)index + 1 >= c->n) {
				fclose(f);
				free(text);
				return CALL_FAIL(c, "format(): bad or missing argument for '%.*s'",
						 close ? (int)(close - s + 1) : 1, s);
			}
			part = value_to_text(c->args[index + 1]);
			if (part)
				fputs(part, f);
			free(part);
			s = close;
		} else {
			fputc(*s, f);
		}
	}
	fclose(f);
	out = json_string(text);
	free(text);
	return out;
}

/* resourceId([subscriptionId,] [resourceGroupName,] type, name1 [, name2 ...]): the
 * type may end in '/', and a child type takes one name per segment. */
static json_t *make_resource_id(struct call *c, bool with_group)
{
	size_t type_at = 0, n_segments = 0;
	const char *subscription = ARM_SUBSCRIPTION_ID, *group = ARM_RESOURCE_GROUP;
	char *type, *out_text = NULL;
	size_t len = 0;
	json_t *names, *out;
	FILE *f;

	for (size_t i = 0; i < c->n; i++)
		if (!want(c, i, JSON_STRING))
			return NULL;
	while (type_at < c->n && !strchr(json_string_value(c->args[type_at]), '/'))
		type_at++;
	if (type_at == c->n || type_at > 2 || (!with_group && type_at > 1))
		return CALL_FAIL(c, "%s(): no resource type ('Namespace/type') among the "
				 "arguments", c->name);
	if (with_group && type_at == 2) {
		subscription = json_string_value(c->args[0]);
		group = json_string_value(c->args[1]);
	} else if (with_group && type_at == 1) {
		group = json_string_value(c->args[0]);
	} else if (!with_group && type_at == 1) {
		subscription = json_string_value(c->args[0]);
	}
	type = strdup(json_string_value(c->args[type_at]));
	if (!type)
		return NULL;
	while (*type && type[strlen(type) - 1] == '/')
		type[strlen(type) - 1] = '\0';
	for (char *s = type; *s; s++)
		n_segments += *s == '/';
	/* Names may come one per argument or joined with '/'. */
	names = json_array();
	for (size_t i = type_at + 1; i < c->n; i++) {
		char *copy = strdup(json_string_value(c->args[i])), *save = NULL;

		for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save))
			json_array_append_new(names, json_string(part));
		free(copy);
	}
	if (json_array_size(names) != n_segments) {
		json_decref(names);
		free(type);
		return CALL_FAIL(c, "%s(): type '%s' takes %zu name(s), %zu given", c->name,
				 json_string_value(c->args[type_at]), n_segments,
				 c->n - type_at - 1);
	}
	f = open_memstream(&out_text, &len);
	fprintf(f, "/subscriptions/%s", subscription);
	if (with_group)
		fprintf(f, "/resourceGroups/%s", group);
	fprintf(f, "/providers");
	{
		char *save = NULL;
		char *part = strtok_r(type, "/", &save);
		size_t i = 0;

		fprintf(f, "/%s", part); /* the namespace */
		for (part = strtok_r(NULL, "/", &save); part; part = strtok_r(NULL, "/", &save))
			fprintf(f, "/%s/%s", part, json_string_value(json_array_get(names, i++)));
	}
	fclose(f);
	out = json_string(out_text);
	free(out_text);
	free(type);
	json_decref(names);
	return out;
}

static json_t *fn_resource_id(struct call *c) { return make_resource_id(c, true); }
static json_t *fn_subscription_resource_id(struct call *c) { return make_resource_id(c, false); }

static json_t *fn_resource_group(struct call *c)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}",
			 "id", "/subscriptions/" ARM_SUBSCRIPTION_ID "/resourceGroups/"
			 ARM_RESOURCE_GROUP,
			 "name", ARM_RESOURCE_GROUP, "type", "Microsoft.Resources/resourceGroups",
			 "location", ARM_LOCATION, "properties", "provisioningState", "Succeeded");
}

static json_t *fn_subscription(struct call *c)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "id", "/subscriptions/" ARM_SUBSCRIPTION_ID,
			 "subscriptionId", ARM_SUBSCRIPTION_ID,
			 "tenantId", ARM_SUBSCRIPTION_ID, "displayName", "subscription");
}

static json_t *fn_copy_index(struct call *c)
{
	struct arm_context *ctx = c->p->ctx;
	const char *loop = NULL;
	json_int_t offset = 0;

	for (size_t i = 0; i < c->n; i++) {
		if (json_is_string(c->args[i]) && i == 0)
			loop = json_string_value(c->args[i]);
		else if (json_is_integer(c->args[i]))
			offset = json_integer_value(c->args[i]);
		else
			return CALL_FAIL(c, "copyIndex(): takes [loopName,] [offset]");
	}
	for (size_t i = ctx->n_copies; i-- > 0;) {
		if (!loop || !strcasecmp(ctx->copies[i].name, loop))
			return json_integer(ctx->copies[i].index + offset);
	}
	if (loop)
		return CALL_FAIL(c, "copyIndex('%s'): no copy loop of that name here", loop);
	return CALL_FAIL(c, "copyIndex(): used outside a copy loop");
}

static json_t *fn_equals(struct call *c)
{
	return json_boolean(json_equal(c->args[0], c->args[1]));
}

static json_t *fn_not(struct call *c)
{
	if (!want(c, 0, JSON_TRUE))
		return NULL;
	return json_boolean(!json_is_true(c->args[0]));
}

static json_t *fn_and_or(struct call *c)
{
	bool is_and = !strcasecmp(c->name, "and");
	bool result = is_and;

	for (size_t i = 0; i < c->n; i++) {
		if (!want(c, i, JSON_TRUE))
			return NULL;
		if (is_and)
			result = result && json_is_true(c->args[i]);
		else
			result = result || json_is_true(c->args[i]);
	}
	return json_boolean(result);
}

static json_t *fn_if(struct call *c)
{
	if (!want(c, 0, JSON_TRUE))
		return NULL;
	return json_incref(json_is_true(c->args[0]) ? c->args[1] : c->args[2]);
}

static json_t *fn_case(struct call *c)
{
	bool upper = !strcasecmp(c->name, "toUpper");
	char *s;
	json_t *out;

	if (!want(c, 0, JSON_STRING))
		return NULL;
	s = strdup(json_string_value(c->args[0]));
	for (char *p = s; p && *p; p++)
		*p = (char)(upper ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
	out = json_string(s);
	free(s);
	return out;
}

static json_t *fn_trim(struct call *c)
{
	const char *s;
	size_t len;

	if (!want(c, 0, JSON_STRING))
		return NULL;
	s = json_string_value(c->args[0]);
	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	return json_stringn(s, len);
}

static json_t *fn_length(struct call *c)
{
	json_t *v = c->args[0];

	if (json_is_string(v))
		return json_integer((json_int_t)json_string_length(v));
	if (json_is_array(v))
		return json_integer((json_int_t)json_array_size(v));
	if (json_is_object(v))
		return json_integer((json_int_t)json_object_size(v));
	return CALL_FAIL(c, "length(): a string, array or object is needed, not %s",
			 type_name(v));
}

static json_t *fn_empty(struct call *c)
{
	json_t *v = c->args[0];

	return json_boolean(json_is_null(v) || (json_is_string(v) && !json_string_length(v)) ||
			    (json_is_array(v) && !json_array_size(v)) ||
			    (json_is_object(v) && !json_object_size(v)));
}

static json_t *fn_contains(struct call *c)
{
	json_t *container = c->args[0], *item = c->args[1], *element;
	size_t i;

	if (json_is_string(container)) {
		char *needle = value_to_text(item);
		bool found = needle && strstr(json_string_value(container), needle);

		free(needle);
		return json_boolean(found);
	}
	if (json_is_array(container)) {
		json_array_foreach(container, i, element)
			if (json_equal(element, item))
				return json_true();
		return json_false();
	}
	if (json_is_object(container) && json_is_string(item))
		return json_boolean(object_get_ci(container, json_string_value(item)) != NULL);
	return CALL_FAIL(c, "contains(): a string, array or object is needed, not %s",
			 type_name(container));
}

static json_t *fn_arithmetic(struct call *c)
{
	json_int_t a, b;

	if (!want(c, 0, JSON_INTEGER) || !want(c, 1, JSON_INTEGER))
		return NULL;
	a = json_integer_value(c->args[0]);
	b = json_integer_value(c->args[1]);
	if (!strcasecmp(c->name, "add"))
		return json_integer(a + b);
	if (!strcasecmp(c->name, "sub"))
		return json_integer(a - b);
	if (!strcasecmp(c->name, "mul"))
		return json_integer(a * b);
	if (b == 0)
		return CALL_FAIL(c, "%s(): division by zero", c->name);
	return json_integer(!strcasecmp(c->name, "div") ? a / b : a % b);
}

static json_t *fn_compare(struct call *c)
{
	int cmp;

	if (json_is_integer(c->args[0]) && json_is_integer(c->args[1])) {
		json_int_t a = json_integer_value(c->args[0]), b = json_integer_value(c->args[1]);

		cmp = a < b ? -1 : a > b;
	} else if (json_is_string(c->args[0]) && json_is_string(c->args[1])) {
		cmp = strcmp(json_string_value(c->args[0]), json_string_value(c->args[1]));
	} else {
		return CALL_FAIL(c, "%s(): two ints or two strings are needed", c->name);
	}
	if (!strcasecmp(c->name, "less"))
		return json_boolean(cmp < 0);
	if (!strcasecmp(c->name, "lessOrEquals"))
		return json_boolean(cmp <= 0);
	if (!strcasecmp(c->name, "greater"))
		return json_boolean(cmp > 0);
	return json_boolean(cmp >= 0);
}

static json_t *fn_string(struct call *c)
{
	char *s = value_to_text(c->args[0]);
	json_t *out = json_string(s ? s : "");

	free(s);
	return out;
}

static json_t *fn_int(struct call *c)
{
	char *end;
	long long n;

	if (json_is_integer(c->args[0]))
		return json_incref(c->args[0]);
	if (json_is_string(c->args[0])) {
		errno = 0;
		n = strtoll(json_string_value(c->args[0]), &end, 10);
		if (!errno && end != json_string_value(c->args[0]) && !*end)
			return json_integer(n);
	}
	return CALL_FAIL(c, "int(): cannot make an int of this %s", type_name(c->args[0]));
}

static json_t *fn_bool(struct call *c)
{
	json_t *v = c->args[0];

	if (json_is_boolean(v))
		return json_incref(v);
	if (json_is_integer(v))
		return json_boolean(json_integer_value(v) != 0);
	if (json_is_string(v) && !strcasecmp(json_string_value(v), "true"))
		return json_true();
	if (json_is_string(v) && !strcasecmp(json_string_value(v), "false"))
		return json_false();
	return CALL_FAIL(c, "bool(): cannot make a bool of this %s", type_name(v));
}

static json_t *fn_true(struct call *c) { return json_true(); }
static json_t *fn_false(struct call *c) { return json_false(); }
static json_t *fn_null(struct call *c) { return json_null(); }

static json_t *fn_create_array(struct call *c)
{
	json_t *out = json_array();

	for (size_t i = 0; i < c->n; i++)
		json_array_append(out, c->args[i]);
	return out;
}

static json_t *fn_create_object(struct call *c)
{
	json_t *out;

	if (c->n % 2)
		return CALL_FAIL(c, "createObject(): takes key, value pairs");
	out = json_object();
	for (size_t i = 0; i < c->n; i += 2) {
		if (!want(c, i, JSON_STRING)) {
			json_decref(out);
			return NULL;
		}
		json_object_set(out, json_string_value(c->args[i]), c->args[i + 1]);
	}
	return out;
}

static json_t *fn_split(struct call *c)
{
	json_t *out, *delimiters, *d;
	const char *s;
	size_t i;

	if (!want(c, 0, JSON_STRING))
		return NULL;
	if (json_is_string(c->args[1]))
		delimiters = json_pack("[O]", c->args[1]);
	else if (json_is_array(c->args[1]))
		delimiters = json_incref(c->args[1]);
	else
		return CALL_FAIL(c, "split(): the delimiter is a string or an array of strings");
	out = json_array();
	s = json_string_value(c->args[0]);
	for (;;) {
		const char *best = NULL;
		size_t best_len = 0;

		json_array_foreach(delimiters, i, d) {
			const char *hit;

			if (!json_is_string(d) || !json_string_length(d))
				continue;
			hit = strstr(s, json_string_value(d));
			if (hit && (!best || hit < best)) {
				best = hit;
				best_len = json_string_length(d);
			}
		}
		if (!best) {
			json_array_append_new(out, json_string(s));
			break;
		}
		json_array_append_new(out, json_stringn(s, (size_t)(best - s)));
		s = best + best_len;
	}
	json_decref(delimiters);
	return out;
}

static json_t *fn_replace(struct call *c)
{
	const char *s, *old, *new, *hit;
	char *text = NULL;
	size_t len = 0, old_len;
	json_t *out;
	FILE *f;

	for (size_t i = 0; i < 3; i++)
		if (!want(c, i, JSON_STRING))
			return NULL;
	s = json_string_value(c->args[0]);
	old = json_string_value(c->args[1]);
	new = json_string_value(c->args[2]);
	old_len = strlen(old);
	if (!old_len)
		return json_incref(c->args[0]);
	f = open_memstream(&text, &len);
	while ((hit = strstr(s, old))) {
		fwrite(s, 1, (size_t)(hit - s), f);
		fputs(new, f);
		s = hit + old_len;
	}
	fputs(s, f);
	fclose(f);
	out = json_string(text);
	free(text);
	return out;
}

static json_t *fn_first_last(struct call *c)
{
	bool first = !strcasecmp(c->name, "first");
	json_t *v = c->args[0];

	if (json_is_array(v)) {
		size_t n = json_array_size(v);

		return n ? json_incref(json_array_get(v, first ? 0 : n - 1)) : json_null();
	}
	if (json_is_string(v)) {
		size_t n = json_string_length(v);

		return n ? json_stringn(json_string_value(v) + (first ? 0 : n - 1), 1) :
			   json_string("");
	}
	return CALL_FAIL(c, "%s(): a string or array is needed", c->name);
}

static json_t *fn_starts_ends(struct call *c)
{
	const char *s, *affix;
	size_t ls, la;

	if (!want(c, 0, JSON_STRING) || !want(c, 1, JSON_STRING))
		return NULL;
	s = json_string_value(c->args[0]);
	affix = json_string_value(c->args[1]);
	ls = strlen(s);
	la = strlen(affix);
	if (la > ls)
		return json_false();
	if (!strcasecmp(c->name, "startsWith"))
		return json_boolean(!strncasecmp(s, affix, la));
	return json_boolean(!strcasecmp(s + ls - la, affix));
}

static json_t *fn_substring(struct call *c)
{
	const char *s;
	json_int_t start, length, total;

	if (!want(c, 0, JSON_STRING) || !want(c, 1, JSON_INTEGER) ||
	    (c->n > 2 && !want(c, 2, JSON_INTEGER)))
		return NULL;
	s = json_string_value(c->args[0]);
	total = (json_int_t)strlen(s);
	start = json_integer_value(c->args[1]);
	length = c->n > 2 ? json_integer_value(c->args[2]) : total - start;
	if (start < 0 || length < 0 || start + length > total)
		return CALL_FAIL(c, "substring(): range is outside the string");
	return json_stringn(s + start, (size_t)length);
}

static json_t *fn_coalesce(struct call *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (!json_is_null(c->args[i]))
			return json_incref(c->args[i]);
	return json_null();
}

static json_t *fn_json(struct call *c)
{
	json_t *v;

	if (!want(c, 0, JSON_STRING))
		return NULL;
	v = json_loads(json_string_value(c->args[0]), JSON_DECODE_ANY, NULL);
	return v ? v : CALL_FAIL(c, "json(): the argument is not JSON");
}

/* ---- addresses and URIs (arm_cidr.c) ---- */

static json_t *cidr_result(struct call *c, json_t *value, const char *why)
{
	return value ? value : CALL_FAIL(c, "%s(): %s", c->name, why);
}

static json_t *fn_parse_cidr(struct call *c)
{
	char why[200];

	if (!want(c, 0, JSON_STRING))
		return NULL;
	return cidr_result(c, arm_parse_cidr(json_string_value(c->args[0]), why, sizeof(why)),
			   why);
}

static json_t *fn_cidr_subnet(struct call *c)
{
	char why[200];

	if (!want(c, 0, JSON_STRING) || !want(c, 1, JSON_INTEGER) || !want(c, 2, JSON_INTEGER))
		return NULL;
	return cidr_result(c, arm_cidr_subnet(json_string_value(c->args[0]),
					      json_integer_value(c->args[1]),
					      json_integer_value(c->args[2]), why, sizeof(why)), why);
}

static json_t *fn_cidr_host(struct call *c)
{
	char why[200];

	if (!want(c, 0, JSON_STRING) || !want(c, 1, JSON_INTEGER))
		return NULL;
	return cidr_result(c, arm_cidr_host(json_string_value(c->args[0]),
					    json_integer_value(c->args[1]), why, sizeof(why)), why);
}

static json_t *fn_uri(struct call *c)
{
	if (!want(c, 0, JSON_STRING) || !want(c, 1, JSON_STRING))
		return NULL;
	return arm_uri(json_string_value(c->args[0]), json_string_value(c->args[1]));
}

/* ---- arrays ---- */

#define RANGE_MAX 10000 /* as Azure limits range() */

static json_t *fn_range(struct call *c)
{
	json_int_t start, count;
	json_t *out;

	if (!want(c, 0, JSON_INTEGER) || !want(c, 1, JSON_INTEGER))
		return NULL;
	start = json_integer_value(c->args[0]);
	count = json_integer_value(c->args[1]);
	if (count < 0 || count > RANGE_MAX)
		return CALL_FAIL(c, "range(): the count is 0-%d", RANGE_MAX);
	out = json_array();
	for (json_int_t i = 0; i < count; i++)
		json_array_append_new(out, json_integer(start + i));
	return out;
}

static bool array_has(json_t *array, json_t *v)
{
	json_t *e;
	size_t i;

	json_array_foreach(array, i, e)
		if (json_equal(e, v))
			return true;
	return false;
}

/* union(): arrays joined without duplicates, or objects merged (later keys win). */
static json_t *fn_union(struct call *c)
{
	bool arrays = json_is_array(c->args[0]);
	json_t *out = arrays ? json_array() : json_object(), *v;
	const char *key;
	size_t j;

	for (size_t i = 0; i < c->n; i++) {
		if (arrays ? !json_is_array(c->args[i]) : !json_is_object(c->args[i])) {
			json_decref(out);
			return CALL_FAIL(c, "union(): all arrays or all objects are needed");
		}
		if (arrays) {
			json_array_foreach(c->args[i], j, v)
				if (!array_has(out, v))
					json_array_append(out, v);
		} else {
			json_object_foreach(c->args[i], key, v)
				json_object_set(out, key, v);
		}
	}
	return out;
}

static json_t *fn_index_of(struct call *c)
{
	bool last = !strcasecmp(c->name, "lastIndexOf");
	json_int_t found = -1;

	if (json_is_array(c->args[0])) {
		json_t *e;
		size_t i;

		json_array_foreach(c->args[0], i, e)
			if (json_equal(e, c->args[1]) && (last || found < 0))
				found = (json_int_t)i;
		return json_integer(found);
	}
	if (!want(c, 0, JSON_STRING) || !want(c, 1, JSON_STRING))
		return NULL;
	/* Strings compare without case, as Azure's indexOf does. */
	const char *text = json_string_value(c->args[0]), *needle = json_string_value(c->args[1]);
	size_t len = strlen(text), n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++) {
		if (strncasecmp(text + i, needle, n))
			continue;
		found = (json_int_t)i;
		if (!last)
			break;
	}
	return json_integer(found);
}

static json_t *fn_pad_left(struct call *c)
{
	const char *pad = c->n > 2 && json_is_string(c->args[2]) ? json_string_value(c->args[2]) :
			  " ";
	json_t *text = json_is_integer(c->args[0]) ? fn_string(c) : json_incref(c->args[0]);
	json_int_t width;
	size_t len;
	char *out;
	json_t *v;

	if (!json_is_string(text) || !want(c, 1, JSON_INTEGER) || strlen(pad) != 1) {
		json_decref(text);
		return CALL_FAIL(c, "padLeft(): a string or int, a width and one character");
	}
	width = json_integer_value(c->args[1]);
	len = json_string_length(text);
	if (width < 0 || width > 16 * 1024 || (size_t)width <= len)
		return text;
	out = malloc((size_t)width + 1);
	memset(out, pad[0], (size_t)width - len);
	memcpy(out + width - len, json_string_value(text), len + 1);
	v = json_string(out);
	free(out);
	json_decref(text);
	return v;
}

static json_t *fn_take_skip(struct call *c)
{
	bool take = !strcasecmp(c->name, "take");
	json_int_t n;
	size_t total, from, to;

	if (!want(c, 1, JSON_INTEGER))
		return NULL;
	n = json_integer_value(c->args[1]);
	if (json_is_array(c->args[0]))
		total = json_array_size(c->args[0]);
	else if (json_is_string(c->args[0]))
		total = json_string_length(c->args[0]);
	else
		return CALL_FAIL(c, "%s(): a string or array is needed", c->name);
	n = n < 0 ? 0 : (size_t)n > total ? (json_int_t)total : n;
	from = take ? 0 : (size_t)n;
	to = take ? (size_t)n : total;
	if (json_is_string(c->args[0]))
		return json_stringn(json_string_value(c->args[0]) + from, to - from);
	json_t *out = json_array();

	for (size_t i = from; i < to; i++)
		json_array_append(out, json_array_get(c->args[0], i));
	return out;
}

static json_t *fn_min_max(struct call *c)
{
	bool min = !strcasecmp(c->name, "min");
	json_t *list = c->n == 1 && json_is_array(c->args[0]) ? c->args[0] : NULL, *v, *best = NULL;
	size_t n = list ? json_array_size(list) : c->n;

	for (size_t i = 0; i < n; i++) {
		v = list ? json_array_get(list, i) : c->args[i];
		if (!json_is_integer(v))
			return CALL_FAIL(c, "%s(): ints or an array of ints are needed", c->name);
		if (!best || (min ? json_integer_value(v) < json_integer_value(best) :
			      json_integer_value(v) > json_integer_value(best)))
			best = v;
	}
	return best ? json_incref(best) : CALL_FAIL(c, "%s(): no value given", c->name);
}

static json_t *fn_array(struct call *c)
{
	return json_is_array(c->args[0]) ? json_incref(c->args[0]) : json_pack("[O]", c->args[0]);
}

static uint64_t hash_args(struct call *c, uint64_t seed)
{
	uint64_t h = 14695981039346656037ULL ^ seed;

	for (size_t i = 0; i < c->n; i++) {
		char *s = value_to_text(c->args[i]);

		for (const char *p = s; p && *p; p++) {
			h ^= (unsigned char)*p;
			h *= 1099511628211ULL;
		}
		h ^= 0xff; /* separates ("ab","c") from ("a","bc") */
		h *= 1099511628211ULL;
		free(s);
	}
	return h;
}

/* Deterministic, 13 characters like Azure's; not Azure's value (the resource group id
 * here is a placeholder anyway). Set the parameter that uses it to pick real names. */
static json_t *fn_unique_string(struct call *c)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	uint64_t h = hash_args(c, 0);
	char out[14];

	for (int i = 0; i < 13; i++) {
		out[i] = alphabet[h & 31];
		h = (h >> 5) | ((uint64_t)(i + 1) << 59);
	}
	out[13] = '\0';
	return json_string(out);
}

static json_t *fn_guid(struct call *c)
{
	uint64_t a = hash_args(c, 1), b = hash_args(c, 2);
	char out[37];

	snprintf(out, sizeof(out), "%08" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "-%04" PRIx32
		 "-%012" PRIx64, (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffff,
		 (uint32_t)a & 0xffff, (uint32_t)(b >> 48), (uint64_t)(b & 0xffffffffffffULL));
	return json_string(out);
}

struct function {
	const char *name;
	json_t *(*fn)(struct call *c);
	size_t min_args, max_args;
};

static const struct function functions[] = {
	{ "parameters", fn_parameters, 1, 1 },
	{ "variables", fn_variables, 1, 1 },
	{ "concat", fn_concat, 1, SIZE_MAX },
	{ "format", fn_format, 1, SIZE_MAX },
	{ "resourceId", fn_resource_id, 2, SIZE_MAX },
	{ "subscriptionResourceId", fn_subscription_resource_id, 2, SIZE_MAX },
	{ "resourceGroup", fn_resource_group, 0, 0 },
	{ "subscription", fn_subscription, 0, 0 },
	{ "copyIndex", fn_copy_index, 0, 2 },
	{ "equals", fn_equals, 2, 2 },
	{ "not", fn_not, 1, 1 },
	{ "and", fn_and_or, 2, SIZE_MAX },
	{ "or", fn_and_or, 2, SIZE_MAX },
	{ "if", fn_if, 3, 3 },
	{ "toLower", fn_case, 1, 1 },
	{ "toUpper", fn_case, 1, 1 },
	{ "trim", fn_trim, 1, 1 },
	{ "length", fn_length, 1, 1 },
	{ "empty", fn_empty, 1, 1 },
	{ "contains", fn_contains, 2, 2 },
	{ "add", fn_arithmetic, 2, 2 },
	{ "sub", fn_arithmetic, 2, 2 },
	{ "mul", fn_arithmetic, 2, 2 },
	{ "div", fn_arithmetic, 2, 2 },
	{ "mod", fn_arithmetic, 2, 2 },
	{ "less", fn_compare, 2, 2 },
	{ "lessOrEquals", fn_compare, 2, 2 },
	{ "greater", fn_compare, 2, 2 },
	{ "greaterOrEquals", fn_compare, 2, 2 },
	{ "string", fn_string, 1, 1 },
	{ "int", fn_int, 1, 1 },
	{ "bool", fn_bool, 1, 1 },
	{ "true", fn_true, 0, 0 },
	{ "false", fn_false, 0, 0 },
	{ "null", fn_null, 0, 0 },
	{ "createArray", fn_create_array, 0, SIZE_MAX },
	{ "createObject", fn_create_object, 0, SIZE_MAX },
	{ "split", fn_split, 2, 2 },
	{ "replace", fn_replace, 3, 3 },
	{ "first", fn_first_last, 1, 1 },
	{ "last", fn_first_last, 1, 1 },
	{ "startsWith", fn_starts_ends, 2, 2 },
	{ "endsWith", fn_starts_ends, 2, 2 },
	{ "substring", fn_substring, 2, 3 },
	{ "coalesce", fn_coalesce, 1, SIZE_MAX },
	{ "json", fn_json, 1, 1 },
	{ "uniqueString", fn_unique_string, 1, SIZE_MAX },
	{ "guid", fn_guid, 1, SIZE_MAX },
	{ "parseCidr", fn_parse_cidr, 1, 1 },
	{ "cidrSubnet", fn_cidr_subnet, 3, 3 },
	{ "cidrHost", fn_cidr_host, 2, 2 },
	{ "uri", fn_uri, 2, 2 },
	{ "range", fn_range, 2, 2 },
	{ "union", fn_union, 1, SIZE_MAX },
	{ "indexOf", fn_index_of, 2, 2 },
	{ "lastIndexOf", fn_index_of, 2, 2 },
	{ "padLeft", fn_pad_left, 2, 3 },
	{ "take", fn_take_skip, 2, 2 },
	{ "skip", fn_take_skip, 2, 2 },
	{ "min", fn_min_max, 1, SIZE_MAX },
	{ "max", fn_min_max, 1, SIZE_MAX },
	{ "array", fn_array, 1, 1 },
};

/* Functions whose value only a deployment knows. */
static bool needs_deployment(const char *name)
{
	static const char *const names[] = { "reference", "deployment", "environment",
		"providers", "pickZones", "tenant", "managementGroup", "newGuid", "utcNow",
		"resourceInfo" };

	if (!strncasecmp(name, "list", 4))
		return true; /* listKeys(), listSecrets(), list*() */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(name, names[i]))
			return true;
	return false;
}

/* ---- the parser ----------------------------------------------------------------- */

static json_t *parse_expression(struct parser *p);

static int column(struct parser *p) { return (int)p->pos + 1; }

static void skip_space(struct parser *p)
{
	while (p->pos < p->end && isspace((unsigned char)p->text[p->pos]))
		p->pos++;
}

static json_t *syntax_error(struct parser *p, const char *what)
{
	if (p->pos >= p->end)
		set_error(p->err, ARM_ERROR_SYNTAX, column(p), "%s, found the end", what);
	else
		set_error(p->err, ARM_ERROR_SYNTAX, column(p), "%s, found '%c'", what,
			  p->text[p->pos]);
	return NULL;
}

static json_t *parse_string_literal(struct parser *p)
{
	char *text = NULL;
	size_t len = 0;
	json_t *out;
	FILE *f = open_memstream(&text, &len);
	int start = column(p);

	p->pos++; /* the opening quote */
	for (;;) {
		if (p->pos >= p->end) {
			fclose(f);
			free(text);
			set_error(p->err, ARM_ERROR_SYNTAX, start, "unterminated string literal");
			return NULL;
		}
		if (p->text[p->pos] == '\'') {
			if (p->pos + 1 < p->end && p->text[p->pos + 1] == '\'') {
				fputc('\'', f);
				p->pos += 2;
				continue;
			}
			p->pos++;
			break;
		}
		fputc(p->text[p->pos++], f);
	}
	fclose(f);
	out = json_string(text);
	free(text);
	return out;
}

static json_t *parse_integer(struct parser *p)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(p->text + p->pos, &end, 10);
	if (errno) {
		set_error(p->err, ARM_ERROR_SYNTAX, column(p), "integer out of range");
		return NULL;
	}
	p->pos = (size_t)(end - p->text);
	return json_integer(n);
}

/* Arguments up to `close`; returns an array or NULL. */
static json_t *parse_list(struct parser *p, char close)
{
	json_t *list = json_array();

	p->pos++; /* the opening bracket */
	skip_space(p);
	if (p->pos < p->end && p->text[p->pos] == close) {
		p->pos++;
		return list;
	}
	for (;;) {
		json_t *v = parse_expression(p);

		if (!v) {
			json_decref(list);
			return NULL;
		}
		json_array_append_new(list, v);
		skip_space(p);
		if (p->pos < p->end && p->text[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->end && p->text[p->pos] == close) {
			p->pos++;
			return list;
		}
		json_decref(list);
		return syntax_error(p, close == ')' ? "expected ',' or ')'" : "expected ',' or ']'");
	}
}

/* reference(id [, apiVersion [, 'Full']]) through the installed resolver: the runtime
 * properties, or with 'Full' the resource around them. */
static json_t *call_reference(struct parser *p, int position, json_t *args)
{
	struct arm_context *ctx = p->ctx;
	const char *path = ctx->current_path, *full;
	size_t n = json_array_size(args);
	char why[256] = "";
	json_t *props;

	if (n < 1 || n > 3 || !json_is_string(json_array_get(args, 0))) {
		set_error(p->err, ARM_ERROR_EVAL, position,
			  "reference() takes a resource id and an optional apiVersion and 'Full'");
		return NULL;
	}
	/* The resolver evaluates the referenced resource's properties, which may call
	 * reference() again: nesting would let a template make the importer's work grow
	 * without bound, so only the outermost call is resolved. */
	if (ctx->in_reference) {
		set_error(p->err, ARM_ERROR_UNSUPPORTED, position,
			  "reference() inside a resource that reference() resolves is not "
			  "supported");
		return NULL;
	}
	ctx->in_reference = true;
	props = ctx->reference(ctx->reference_opaque, ctx,
			       json_string_value(json_array_get(args, 0)),
			       path ? path : "expression", why, sizeof(why));
	ctx->in_reference = false;
	ctx->current_path = path; /* the resolver evaluated other trees */
	if (!props) {
		set_error(p->err, ARM_ERROR_UNSUPPORTED, position, "%s", why);
		return NULL;
	}
	full = json_string_value(json_array_get(args, 2));
	if (full && !strcasecmp(full, "Full"))
		return json_pack("{s:o}", "properties", props);
	return props;
}

static json_t *call_function(struct parser *p, const char *name, int position, json_t *args)
{
	struct call c = { .p = p, .name = name, .position = position,
			  .n = json_array_size(args) };
	json_t *argv[64];

	for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
		const struct function *f = &functions[i];

		if (strcasecmp(f->name, name))
			continue;
		if (c.n < f->min_args || c.n > f->max_args || c.n > 64) {
			set_error(p->err, ARM_ERROR_EVAL, position,
				  "%s() takes %zu%s argument(s), %zu given", f->name, f->min_args,
				  f->max_args == f->min_args ? "" : " or more", c.n);
			return NULL;
		}
		for (size_t j = 0; j < c.n; j++)
			argv[j] = json_array_get(args, j);
		c.args = argv;
		c.name = f->name;
		return f->fn(&c);
	}
	if (!strcasecmp(name, "reference") && p->ctx->reference)
		return call_reference(p, position, args);
	if (needs_deployment(name))
		set_error(p->err, ARM_ERROR_UNSUPPORTED, position,
			  "%s() needs a deployment and is not supported", name);
	else
		set_error(p->err, ARM_ERROR_UNSUPPORTED, position,
			  "%s() is not a supported function", name);
	return NULL;
}

static json_t *parse_primary(struct parser *p)
{
	char c;
	size_t start;
	int position;
	char *name;
	json_t *args, *out;

	skip_space(p);
	if (p->pos >= p->end)
		return syntax_error(p, "expected a value");
	c = p->text[p->pos];
	if (c == '\'')
		return parse_string_literal(p);
	if (isdigit((unsigned char)c) ||
	    (c == '-' && p->pos + 1 < p->end && isdigit((unsigned char)p->text[p->pos + 1])))
		return parse_integer(p);
	if (c == '[')
		return parse_list(p, ']');
	if (!isalpha((unsigned char)c) && c != '_')
		return syntax_error(p, "expected a value");
	start = p->pos;
	position = column(p);
	while (p->pos < p->end &&
	       (isalnum((unsigned char)p->text[p->pos]) || p->text[p->pos] == '_'))
		p->pos++;
	name = strndup(p->text + start, p->pos - start);
	skip_space(p);
	if (p->pos < p->end && p->text[p->pos] == '(') {
		args = parse_list(p, ')');
		out = args ? call_function(p, name, position, args) : NULL;
		json_decref(args);
	} else if (!strcasecmp(name, "true")) {
		out = json_true();
	} else if (!strcasecmp(name, "false")) {
		out = json_false();
	} else if (!strcasecmp(name, "null")) {
		out = json_null();
	} else {
		out = syntax_error(p, "expected '(' after a function name");
	}
	free(name);
	return out;
}

static json_t *member(struct parser *p, json_t *v, const char *key, int position)
{
	json_t *m = object_get_ci(v, key);

	if (!json_is_object(v)) {
		set_error(p->err, ARM_ERROR_EVAL, position,
			  "'.%s' on %s: only objects have properties", key, type_name(v));
		return NULL;
	}
	if (!m) {
		set_error(p->err, ARM_ERROR_EVAL, position, "the object has no property '%s'", key);
		return NULL;
	}
	return json_incref(m);
}

static json_t *parse_expression(struct parser *p)
{
	json_t *v;

	if (++p->ctx->depth > ARM_MAX_DEPTH) {
		p->ctx->depth--;
		set_error(p->err, ARM_ERROR_SYNTAX, column(p), "expression nested too deeply");
		return NULL;
	}
	v = parse_primary(p);
	while (v) {
		skip_space(p);
		if (p->pos >= p->end)
			break;
		if (p->text[p->pos] == '.') {
			size_t start;
			int position = column(p);
			char *key;
			json_t *next;

			p->pos++;
			skip_space(p);
			start = p->pos;
			while (p->pos < p->end && (isalnum((unsigned char)p->text[p->pos]) ||
						   p->text[p->pos] == '_' || p->text[p->pos] == '$'))
				p->pos++;
			if (start == p->pos) {
				json_decref(v);
				v = syntax_error(p, "expected a property name after '.'");
				break;
			}
			key = strndup(p->text + start, p->pos - start);
			next = member(p, v, key, position);
			free(key);
			json_decref(v);
			v = next;
		} else if (p->text[p->pos] == '[') {
			int position = column(p);
			json_t *index, *next = NULL;

			p->pos++;
			index = parse_expression(p);
			skip_space(p);
			if (index && (p->pos >= p->end || p->text[p->pos] != ']')) {
				json_decref(index);
				index = syntax_error(p, "expected ']'");
			}
			if (index) {
				p->pos++;
				if (json_is_array(v) && json_is_integer(index)) {
					json_int_t i = json_integer_value(index);

					if (i < 0 || (size_t)i >= json_array_size(v))
						set_error(p->err, ARM_ERROR_EVAL, position,
							  "index %" JSON_INTEGER_FORMAT
							  " is outside the array (size %zu)",
							  i, json_array_size(v));
					else
						next = json_incref(json_array_get(v, (size_t)i));
				} else if (json_is_object(v) && json_is_string(index)) {
					next = member(p, v, json_string_value(index), position);
				} else {
					set_error(p->err, ARM_ERROR_EVAL, position,
						  "cannot index %s with %s", type_name(v),
						  type_name(index));
				}
			}
			json_decref(index);
			json_decref(v);
			v = next;
		} else {
			break;
		}
	}
	p->ctx->depth--;
	return v;
}

json_t *arm_eval_string(struct arm_context *ctx, const char *text, struct arm_error *err)
{
	struct parser p = { .ctx = ctx, .text = text, .err = err };
	json_t *v;

	if (err)
		memset(err, 0, sizeof(*err));
	if (text[0] == '[' && text[1] == '[')
		return json_string(text + 1);
	if (!arm_is_expression(text))
		return json_string(text);
	p.end = strlen(text) - 1;
	p.pos = 1;
	v = parse_expression(&p);
	if (!v)
		return NULL;
	skip_space(&p);
	if (p.pos != p.end) {
		json_decref(v);
		return syntax_error(&p, "expected the end of the expression");
	}
	return v;
}

/* ---- trees ---------------------------------------------------------------------- */

static char *child_path(const char *path, const char *key, size_t index, bool is_index)
{
	char *out = NULL;
	int rc;

	if (is_index)
		rc = asprintf(&out, "%s[%zu]", path, index);
	else if (!path || !*path)
		rc = asprintf(&out, "%s", key);
	else
		rc = asprintf(&out, "%s.%s", path, key);
	return rc < 0 ? NULL : out;
}

static bool is_property_copy(json_t *copy)
{
	json_t *loop;
	size_t i;

	if (!json_is_array(copy) || !json_array_size(copy))
		return false;
	json_array_foreach(copy, i, loop)
		if (!json_is_object(loop) || !json_object_get(loop, "input"))
			return false;
	return true;
}

/* "copy": [{"name": "subnets", "count": 3, "input": {...}}] sets out.subnets to an
 * array of 3 evaluated inputs, with copyIndex('subnets') counting. */
static bool expand_property_copy(struct arm_context *ctx, json_t *copy, json_t *out,
				 const char *path, arm_leaf_error_fn on_error, void *opaque,
				 struct arm_error *err)
{
	json_t *loop;
	size_t i;

	json_array_foreach(copy, i, loop) {
		char *loop_path = child_path(path, "copy", i, true);
		json_t *name = NULL, *count = NULL, *items = NULL;
		bool omitted = false, ok = false;

		name = eval_tree(ctx, json_object_get(loop, "name"), loop_path, NULL, NULL, err,
				 &omitted);
		count = name ? eval_tree(ctx, json_object_get(loop, "count"), loop_path, NULL,
					 NULL, err, &omitted) : NULL;
		if (name && count && (!json_is_string(name) || !json_is_integer(count) ||
				      json_integer_value(count) < 0)) {
			set_error(err, ARM_ERROR_EVAL, 0,
				  "%s: a copy loop needs a string name and a count >= 0", loop_path);
		} else if (name && count) {
			items = json_array();
			ok = true;
			for (json_int_t k = 0; k < json_integer_value(count); k++) {
				char *item_path = child_path(path, json_string_value(name), (size_t)k,
							     false);
				char *indexed = child_path(item_path, NULL, (size_t)k, true);
				json_t *item;

				arm_context_push_copy(ctx, json_string_value(name), (int)k);
				omitted = false;
				item = eval_tree(ctx, json_object_get(loop, "input"), indexed,
						 on_error, opaque, err, &omitted);
				arm_context_pop_copy(ctx);
				free(item_path);
				free(indexed);
				if (item) {
					json_array_append_new(items, item);
				} else if (!omitted) {
					ok = false;
					break;
				}
			}
			if (ok)
				json_object_set(out, json_string_value(name), items);
		}
		if (!ok && on_error && err->kind != ARM_OK && on_error(opaque, loop_path, err)) {
			memset(err, 0, sizeof(*err));
			ok = true;
		}
		json_decref(name);
		json_decref(count);
		json_decref(items);
		free(loop_path);
		if (!ok)
			return false;
	}
	return true;
}

static json_t *eval_tree(struct arm_context *ctx, json_t *value, const char *path,
			 arm_leaf_error_fn on_error, void *opaque, struct arm_error *err,
			 bool *omitted)
{
	json_t *out, *child;
	const char *key;
	size_t i;

	*omitted = false;
	if (!value) {
		set_error(err, ARM_ERROR_EVAL, 0, "%s: missing", path ? path : "value");
		return NULL;
	}
	switch (json_typeof(value)) {
	case JSON_STRING:
		ctx->current_path = path;
		out = arm_eval_string(ctx, json_string_value(value), err);
		ctx->current_path = NULL;
		if (!out && on_error && on_error(opaque, path, err)) {
			memset(err, 0, sizeof(*err));
			*omitted = true;
		}
		return out;
	case JSON_OBJECT:
		out = json_object();
		json_object_foreach(value, key, child) {
			char *sub;
			json_t *v;
			bool child_omitted;

			if (!strcmp(key, "copy") && is_property_copy(child)) {
				if (!expand_property_copy(ctx, child, out, path, on_error, opaque,
							  err)) {
					json_decref(out);
					return NULL;
				}
				continue;
			}
			sub = child_path(path, key, 0, false);
			v = eval_tree(ctx, child, sub, on_error, opaque, err, &child_omitted);
			free(sub);
			if (v)
				json_object_set_new(out, key, v);
			else if (!child_omitted) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	case JSON_ARRAY:
		out = json_array();
		json_array_foreach(value, i, child) {
			char *sub = child_path(path, NULL, i, true);
			json_t *v;
			bool child_omitted;

			v = eval_tree(ctx, child, sub, on_error, opaque, err, &child_omitted);
			free(sub);
			if (v)
				json_array_append_new(out, v);
			else if (!child_omitted) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	default:
		return json_incref(value);
	}
}

json_t *arm_eval_tree(struct arm_context *ctx, json_t *value, const char *path,
		      arm_leaf_error_fn on_error, void *opaque, struct arm_error *err)
{
	bool omitted;

	memset(err, 0, sizeof(*err));
	return eval_tree(ctx, value, path ? path : "", on_error, opaque, err, &omitted);
}

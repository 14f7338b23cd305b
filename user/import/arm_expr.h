/* The ARM template expression language, as far as network templates use it:
 * "[concat(parameters('prefix'), '-vnet')]" and friends. Values are jansson values.
 *
 * A context holds one template's parameters and variables (resolved lazily, so they may
 * refer to each other in any order) and the active copy loops. Functions that need a
 * deployment (reference(), listKeys(), ...) are reported as unsupported, never guessed. */
#ifndef VNET_XDP_ARM_EXPR_H
#define VNET_XDP_ARM_EXPR_H

#include <stdbool.h>
#include <jansson.h>

/* What the deployment functions answer outside a real deployment. */
#define ARM_SUBSCRIPTION_ID "00000000-0000-0000-0000-000000000000"
#define ARM_RESOURCE_GROUP  "rg"
#define ARM_LOCATION        "local"
/* Written where a secure parameter has no value. */
#define ARM_SECRET_PLACEHOLDER "FILL-IN"

enum arm_error_kind {
	ARM_OK = 0,
	ARM_ERROR_SYNTAX,      /* the expression text is malformed */
	ARM_ERROR_UNSUPPORTED, /* a function that needs a deployment, or one we lack */
	ARM_ERROR_EVAL,        /* well-formed but wrong: bad argument, unknown name */
};

struct arm_error {
	enum arm_error_kind kind;
	int position; /* 1-based character position in the string value, 0 when unknown */
	char message[256];
};

struct arm_context;

/* template_doc: the whole template (its "parameters" and "variables" are used);
 * overrides: object of parameter name -> string as given by --param, or NULL.
 * Neither is copied: both must outlive the context. */
struct arm_context *arm_context_new(json_t *template_doc, json_t *overrides);
void arm_context_free(struct arm_context *ctx);

/* Copy loops: copyIndex() answers the innermost, copyIndex('name') the named one. */
int arm_context_push_copy(struct arm_context *ctx, const char *loop_name, int index);
void arm_context_pop_copy(struct arm_context *ctx);

/* Warnings collected while evaluating (a parameter without a value, ...): the caller
 * takes ownership of the returned array of strings; the context starts a new one. */
json_t *arm_context_take_warnings(struct arm_context *ctx);

/* reference() needs a deployment, but for some resources the template alone says what
 * Azure will answer (an Azure Firewall's private IP is the first usable address of its
 * subnet). A resolver installed here gets reference()'s resource id and returns the
 * resource's runtime properties (a new reference), or NULL with a reason in `why`.
 * `path` names the string being evaluated, for warnings (arm_context_warn). */
typedef json_t *(*arm_reference_fn)(void *opaque, struct arm_context *ctx, const char *id,
				    const char *path, char *why, size_t why_size);
void arm_context_set_reference_resolver(struct arm_context *ctx, arm_reference_fn fn,
					void *opaque);
/* Adds a warning, taken later with arm_context_take_warnings(). */
void arm_context_warn(struct arm_context *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* True when the string is an expression ("[...]" but not the "[[" escape). */
bool arm_is_expression(const char *text);

/* Evaluates one JSON string as ARM does: "[expr]" gives the expression's value, "[[x"
 * gives the literal "[x", anything else is itself. Returns a new reference, or NULL
 * with *err filled. */
json_t *arm_eval_string(struct arm_context *ctx, const char *text, struct arm_error *err);

/* Called for a string inside a tree that fails to evaluate; path is its JSON path.
 * Return true to leave that property (or array element) out and go on, false to stop. */
typedef bool (*arm_leaf_error_fn)(void *opaque, const char *path, const struct arm_error *err);

/* Evaluates every string of a tree and expands property copy loops
 * ("copy": [{"name", "count", "input"}]). path names the tree in messages. With
 * on_error NULL the first error stops the walk. Returns a new reference or NULL. */
json_t *arm_eval_tree(struct arm_context *ctx, json_t *value, const char *path,
		      arm_leaf_error_fn on_error, void *opaque, struct arm_error *err);

#endif

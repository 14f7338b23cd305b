/* What the config reader needs around jansson: where each JSON value sits in the file
 * (for FILE:LINE:COL messages), problem reporting, typed field access that reports wrong
 * types, and Azure references (name, resourceId(...) or full resource id). */
#ifndef VNET_XDP_CONFIG_JSON_H
#define VNET_XDP_CONFIG_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* What is wrong with a document jansson could not parse, in general words. jansson's own
 * text quotes the offending token ("near '...'"), which may be a secret: never print it. */
const char *json_syntax_reason(const json_error_t *error);

/* JSON path -> line and column of the value, built by scanning the text once. */
struct json_positions;
struct json_positions *json_positions_scan(const char *text);
void json_positions_free(struct json_positions *positions);

struct reader {
	const char *file;
	FILE *errors;
	struct json_positions *positions;
	int problems;
	int warnings;
	char **paths; /* every path string handed out, freed together */
	size_t n_paths, cap_paths;
};

/* "FILE:LINE:COL: path: message", at the value's position or its nearest ancestor's.
 * Every problem is counted; the first READER_PROBLEMS_SHOWN are written. */
#define READER_PROBLEMS_SHOWN 100
void reader_problem(struct reader *r, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* One line saying how many problems were counted but not written, when some were. */
void reader_finish(struct reader *r);

/* A value as a problem echoes it: whole up to READER_SHOWN_MAX bytes, else its start, cut
 * at a character, then "..." and its length, so that a 10 MB string makes a short line.
 * Owned by the reader. Every value from the input that a message quotes goes through it. */
#define READER_SHOWN_MAX 200
const char *reader_shown(struct reader *r, const char *value);

/* The same line for what is valid but worth saying ("... path: warning: message"); not a
 * problem. */
void reader_warning(struct reader *r, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Paths are owned by the reader and live until reader_release(). */
const char *path_key(struct reader *r, const char *parent, const char *key);
const char *path_index(struct reader *r, const char *parent, size_t index);
void reader_release(struct reader *r);

/* A resource's properties: its `properties` object (ARM, REST) or the resource itself
 * (az CLI output, flattened). */
struct node {
	json_t *value;
	const char *path;
};
struct node node_child(struct reader *r, struct node parent, const char *key);
struct node node_element(struct reader *r, struct node array, size_t index);
struct node node_properties(struct reader *r, struct node resource);

/* Typed getters. A missing optional value leaves *out alone and returns false; a value
 * of the wrong type is reported and returns false. */
bool get_string(struct reader *r, struct node n, const char **out);
bool get_bool(struct reader *r, struct node n, bool *out);
bool get_int(struct reader *r, struct node n, long long min, long long max, long long *out);
bool is_array_or_report(struct reader *r, struct node n);
bool is_object_or_report(struct reader *r, struct node n);

/* An Azure reference split into its resource names: "hub", "hub/apps",
 * "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'hub', 'apps')]" and
 * "/subscriptions/../virtualNetworks/hub/subnets/apps" all give names {hub, apps}; the
 * type, where the text says it, in `type` ("virtualNetworks/subnets"), else "". */
#define REFERENCE_MAX_NAMES 4
struct reference {
	char type[128];
	char names[REFERENCE_MAX_NAMES][128];
	int n_names;
};
/* 0, or -EINVAL with `why` set to a short reason. */
int reference_parse(const char *text, struct reference *out, const char **why);
/* A reference value: a string, or an object whose "id" is one. */
bool get_reference(struct reader *r, struct node n, struct reference *out);

#endif

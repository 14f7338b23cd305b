#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "config/json.h"

const char *json_syntax_reason(const json_error_t *error)
{
	switch (json_error_code(error)) {
	case json_error_out_of_memory: return "out of memory";
	case json_error_stack_overflow: return "nested too deeply";
	case json_error_invalid_utf8: return "not valid UTF-8";
	case json_error_premature_end_of_input: return "the text ends inside a value";
	case json_error_end_of_input_expected: return "text after the end of the document";
	case json_error_null_character: return "a NUL character";
	case json_error_null_byte_in_key: return "a NUL character in a key";
	case json_error_duplicate_key: return "a key given twice in one object";
	case json_error_numeric_overflow: return "a number too large";
	case json_error_wrong_type: return "not a JSON object or array";
	default: return "invalid syntax";
	}
}

/* ---- positions --------------------------------------------------------------------
 * jansson reports line and column only for syntax errors, so the text is scanned once
 * more, here, recording where every value starts under its path. The scan runs after
 * jansson accepted the text, so it may assume the syntax is valid; it still never reads
 * past the end. */

#define SCAN_MAX_DEPTH 2048

struct json_positions {
	json_t *by_path; /* path -> line << 32 | column */
};

struct scanner {
	const char *p;
	int line, col;
	char *path;
	size_t len, cap;
	json_t *by_path;
};

static void scan_advance(struct scanner *s)
{
	if (*s->p == '\n') {
		s->line++;
		s->col = 1;
	} else if ((*s->p & 0xc0) != 0x80) { /* count characters, not UTF-8 continuation bytes */
		s->col++;
	}
	s->p++;
}

static void scan_space(struct scanner *s)
{
	while (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')
		scan_advance(s);
}

static bool path_reserve(struct scanner *s, size_t more)
{
	char *bigger;

	if (s->len + more + 1 <= s->cap)
		return true;
	bigger = realloc(s->path, (s->len + more + 1) * 2);
	if (!bigger)
		return false;
	s->path = bigger;
	s->cap = (s->len + more + 1) * 2;
	return true;
}

/* Reads a string, appending its decoded text to the path when `append` is set. Escapes
 * other than \uXXXX decode to their character; \uXXXX stays as written (keys with them
 * are rare enough that their positions only fall back to the parent). */
static void scan_string(struct scanner *s, bool append)
{
	scan_advance(s); /* opening quote */
	while (*s->p && *s->p != '"') {
		char c = *s->p;

		if (c == '\\' && s->p[1]) {
			scan_advance(s);
			c = *s->p == 'n' ? '\n' : *s->p == 't' ? '\t' : *s->p;
		}
		if (append && path_reserve(s, 1))
			s->path[s->len++] = c;
		scan_advance(s);
	}
	if (*s->p)
		scan_advance(s);
	if (append)
		s->path[s->len] = '\0';
}

static void scan_record(struct scanner *s, int line, int col)
{
	json_object_set_new(s->by_path, s->path, json_integer(((json_int_t)line << 32) | col));
}

static void scan_value(struct scanner *s, int depth);

static void scan_object(struct scanner *s, int depth)
{
	size_t base = s->len;

	scan_advance(s);
	scan_space(s);
	while (*s->p == '"') {
		if (base && path_reserve(s, 1))
			s->path[s->len++] = '.';
		scan_string(s, true);
		scan_space(s);
		if (*s->p == ':')
			scan_advance(s);
		scan_space(s);
		scan_value(s, depth + 1);
		s->len = base;
		s->path[base] = '\0';
		scan_space(s);
		if (*s->p != ',')
			break;
		scan_advance(s);
		scan_space(s);
	}
	if (*s->p == '}')
		scan_advance(s);
}

static void scan_array(struct scanner *s, int depth)
{
	size_t base = s->len, index = 0;

	scan_advance(s);
	scan_space(s);
	while (*s->p && *s->p != ']') {
		if (path_reserve(s, 24))
			s->len += (size_t)sprintf(s->path + s->len, "[%zu]", index++);
		scan_value(s, depth + 1);
		s->len = base;
		s->path[base] = '\0';
		scan_space(s);
		if (*s->p != ',')
			break;
		scan_advance(s);
		scan_space(s);
	}
	if (*s->p == ']')
		scan_advance(s);
}

static void scan_value(struct scanner *s, int depth)
{
	scan_space(s);
	if (!*s->p || depth > SCAN_MAX_DEPTH)
		return;
	scan_record(s, s->line, s->col);
	if (*s->p == '{')
		scan_object(s, depth);
	else if (*s->p == '[')
		scan_array(s, depth);
	else if (*s->p == '"')
		scan_string(s, false);
	else
		while (*s->p && !strchr(",]} \t\r\n", *s->p))
			scan_advance(s);
}

struct json_positions *json_positions_scan(const char *text)
{
	struct json_positions *positions = calloc(1, sizeof(*positions));
	struct scanner s = { .p = text, .line = 1, .col = 1 };

	if (!positions)
		return NULL;
	positions->by_path = json_object();
	s.by_path = positions->by_path;
	if (!path_reserve(&s, 64)) {
		json_positions_free(positions);
		return NULL;
	}
	s.path[0] = '\0';
	scan_value(&s, 0);
	free(s.path);
	return positions;
}

void json_positions_free(struct json_positions *positions)
{
	if (!positions)
		return;
	json_decref(positions->by_path);
	free(positions);
}

/* The position of `path`, or of the nearest ancestor that has one (a missing key is
 * reported where its object starts). */
static void position_of(const struct json_positions *positions, const char *path, int *line,
			int *col)
{
	char *p = strdup(path ? path : "");

	*line = 1;
	*col = 1;
	while (p && positions) {
		json_t *at = json_object_get(positions->by_path, p);
		char *cut;

		if (at) {
			*line = (int)(json_integer_value(at) >> 32);
			*col = (int)(json_integer_value(at) & 0xffffffff);
			break;
		}
		if (!*p)
			break;
		cut = strrchr(p, '.');
		if (!cut || (strrchr(p, '[') && strrchr(p, '[') > cut))
			cut = strrchr(p, '[');
		*(cut ? cut : p) = '\0';
	}
	free(p);
}

/* ---- problems and paths ------------------------------------------------------------ */

#define MESSAGE_MAX 2048

static size_t character_boundary(const char *text, size_t max);

/* One "FILE:LINE:COL: path: [label]message" line, bounded in length. */
static void reader_line(struct reader *r, const char *path, const char *label, const char *fmt,
			va_list ap)
{
	char *message;
	int line, col;

	position_of(r->positions, path, &line, &col);
	fprintf(r->errors, "%s:%d:%d: %s: %s", r->file, line, col,
		path && *path ? reader_shown(r, path) : "(top)", label);
	if (vasprintf(&message, fmt, ap) < 0)
		message = NULL;
	/* Values pass through reader_shown; should one not, the line still stays short. */
	if (message && strlen(message) > MESSAGE_MAX)
		fprintf(r->errors, "%.*s... (%zu bytes)\n",
			(int)character_boundary(message, MESSAGE_MAX), message, strlen(message));
	else
		fprintf(r->errors, "%s\n", message ? message : fmt);
	free(message);
}

void reader_problem(struct reader *r, const char *path, const char *fmt, ...)
{
	va_list ap;

	r->problems++;
	if (!r->errors || r->problems > READER_PROBLEMS_SHOWN)
		return;
	va_start(ap, fmt);
	reader_line(r, path, "", fmt, ap);
	va_end(ap);
}

void reader_warning(struct reader *r, const char *path, const char *fmt, ...)
{
	va_list ap;

	r->warnings++;
	if (!r->errors || r->warnings > READER_PROBLEMS_SHOWN)
		return;
	va_start(ap, fmt);
	reader_line(r, path, "warning: ", fmt, ap);
	va_end(ap);
}

void reader_finish(struct reader *r)
{
	if (r->errors && r->problems > READER_PROBLEMS_SHOWN)
		fprintf(r->errors, "%s: %d more problems not shown (the first %d are)\n", r->file,
			r->problems - READER_PROBLEMS_SHOWN, READER_PROBLEMS_SHOWN);
	if (r->errors && r->warnings > READER_PROBLEMS_SHOWN)
		fprintf(r->errors, "%s: %d more warnings not shown (the first %d are)\n", r->file,
			r->warnings - READER_PROBLEMS_SHOWN, READER_PROBLEMS_SHOWN);
}

static const char *path_keep(struct reader *r, char *path);

/* Where to cut `text` to at most `max` bytes without splitting a UTF-8 character. */
static size_t character_boundary(const char *text, size_t max)
{
	while (max && ((unsigned char)text[max] & 0xc0) == 0x80)
		max--;
	return max;
}

const char *reader_shown(struct reader *r, const char *value)
{
	size_t len, keep;
	char *shown;

	if (!value)
		return "";
	len = strnlen(value, READER_SHOWN_MAX + 1);
	if (len <= READER_SHOWN_MAX)
		return value;
	len += strlen(value + len);
	keep = character_boundary(value, READER_SHOWN_MAX - 40);
	if (asprintf(&shown, "%.*s... (%zu bytes)", (int)keep, value, len) < 0)
		return "(a long value)";
	return path_keep(r, shown);
}

static const char *path_keep(struct reader *r, char *path)
{
	if (!path)
		return "";
	if (r->n_paths == r->cap_paths) {
		size_t cap = r->cap_paths ? r->cap_paths * 2 : 256;
		char **bigger = realloc(r->paths, cap * sizeof(*bigger));

		if (!bigger) {
			free(path);
			return "";
		}
		r->paths = bigger;
		r->cap_paths = cap;
	}
	r->paths[r->n_paths++] = path;
	return path;
}

const char *path_key(struct reader *r, const char *parent, const char *key)
{
	char *path = NULL;

	if (asprintf(&path, "%s%s%s", parent, *parent ? "." : "", key) < 0)
		path = NULL;
	return path_keep(r, path);
}

const char *path_index(struct reader *r, const char *parent, size_t index)
{
	char *path = NULL;

	if (asprintf(&path, "%s[%zu]", parent, index) < 0)
		path = NULL;
	return path_keep(r, path);
}

void reader_release(struct reader *r)
{
	for (size_t i = 0; i < r->n_paths; i++)
		free(r->paths[i]);
	free(r->paths);
	r->paths = NULL;
	r->n_paths = r->cap_paths = 0;
}

/* ---- typed access ------------------------------------------------------------------ */

struct node node_child(struct reader *r, struct node parent, const char *key)
{
	struct node n = { json_object_get(parent.value, key), path_key(r, parent.path, key) };

	return n;
}

struct node node_element(struct reader *r, struct node array, size_t index)
{
	struct node n = { json_array_get(array.value, index), path_index(r, array.path, index) };

	return n;
}

struct node node_properties(struct reader *r, struct node resource)
{
	struct node props = node_child(r, resource, "properties");

	return json_is_object(props.value) ? props : resource;
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

bool get_string(struct reader *r, struct node n, const char **out)
{
	if (!n.value || json_is_null(n.value))
		return false;
	if (!json_is_string(n.value)) {
		reader_problem(r, n.path, "%s where a string is expected", json_type_name(n.value));
		return false;
	}
	*out = json_string_value(n.value);
	return true;
}

bool get_bool(struct reader *r, struct node n, bool *out)
{
	if (!n.value || json_is_null(n.value))
		return false;
	if (!json_is_boolean(n.value)) {
		reader_problem(r, n.path, "%s where a boolean is expected; allowed: true, false",
			       json_type_name(n.value));
		return false;
	}
	*out = json_is_true(n.value);
	return true;
}

bool get_int(struct reader *r, struct node n, long long min, long long max, long long *out)
{
	long long v;

	if (!n.value || json_is_null(n.value))
		return false;
	if (json_is_string(n.value)) { /* az and REST bodies sometimes quote numbers */
		const char *text = json_string_value(n.value);
		char *end;

		errno = 0;
		v = strtoll(text, &end, 10);
		if (!*text || *end || errno) {
			reader_problem(r, n.path, "\"%s\" is not an integer; allowed: %lld-%lld",
				       reader_shown(r, text), min, max);
			return false;
		}
	} else if (json_is_integer(n.value)) {
		v = json_integer_value(n.value);
	} else {
		reader_problem(r, n.path, "%s where an integer is expected; allowed: %lld-%lld",
			       json_type_name(n.value), min, max);
		return false;
	}
	if (v < min || v > max) {
		reader_problem(r, n.path, "%lld is out of range %lld-%lld", v, min, max);
		return false;
	}
	*out = v;
	return true;
}

bool is_array_or_report(struct reader *r, struct node n)
{
	if (!n.value || json_is_null(n.value))
		return false;
	if (!json_is_array(n.value)) {
		reader_problem(r, n.path, "%s where an array is expected", json_type_name(n.value));
		return false;
	}
	return true;
}

bool is_object_or_report(struct reader *r, struct node n)
{
	if (!n.value || json_is_null(n.value))
		return false;
	if (!json_is_object(n.value)) {
		reader_problem(r, n.path, "%s where an object is expected", json_type_name(n.value));
		return false;
	}
	return true;
}

/* ---- references -------------------------------------------------------------------- */

static int copy_segment(char *dst, size_t size, const char *src, size_t len)
{
	if (!len || len >= size)
		return -EINVAL;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

static int add_name(struct reference *ref, const char *src, size_t len)
{
	if (ref->n_names == REFERENCE_MAX_NAMES)
		return -EINVAL;
	return copy_segment(ref->names[ref->n_names++], sizeof(ref->names[0]), src, len);
}

static void add_type(struct reference *ref, const char *src, size_t len)
{
	size_t used = strlen(ref->type);

	if (used + len + 2 > sizeof(ref->type))
		return;
	if (used)
		ref->type[used++] = '/';
	memcpy(ref->type + used, src, len);
	ref->type[used + len] = '\0';
}

/* /subscriptions/S/resourceGroups/G/providers/Microsoft.Network/T1/N1[/T2/N2...] */
static int parse_resource_id(const char *text, struct reference *ref, const char **why)
{
	const char *p = strcasestr(text, "/providers/");

	if (!p) {
		*why = "a resource id needs /providers/<namespace>/<type>/<name>";
		return -EINVAL;
	}
	p += strlen("/providers/");
	p = strchr(p, '/'); /* skip the namespace */
	while (p && *p == '/') {
		const char *type = p + 1, *name, *end;

		name = strchr(type, '/');
		if (!name) {
			*why = "a resource id ends with a type but no name";
			return -EINVAL;
		}
		name++;
		end = strchr(name, '/');
		if (!end)
			end = name + strlen(name);
		add_type(ref, type, (size_t)(name - 1 - type));
		if (add_name(ref, name, (size_t)(end - name))) {
			*why = "a resource id with an empty or overlong name";
			return -EINVAL;
		}
		p = *end ? end : NULL;
	}
	return 0;
}

/* [resourceId(['sub',] ['group',] 'Namespace/type[/child]', 'name'[, 'child'])] with
 * literal strings only: the importer evaluates anything richer. */
static int parse_resource_id_call(const char *text, struct reference *ref, const char **why)
{
	const char *p = text + strlen("[resourceId(");
	bool seen_type = false;

	for (;;) {
		const char *start, *end;

		while (*p == ' ')
			p++;
		if (*p != '\'') {
			*why = "resourceId() with other than quoted literal arguments; run "
			       "`vnet-xdp import` on ARM templates";
			return -EINVAL;
		}
		start = ++p;
		end = strchr(start, '\'');
		if (!end) {
			*why = "an unterminated string in resourceId()";
			return -EINVAL;
		}
		if (!seen_type && memchr(start, '/', (size_t)(end - start))) {
			const char *slash = memchr(start, '/', (size_t)(end - start));

			add_type(ref, slash + 1, (size_t)(end - slash - 1));
			seen_type = true;
		} else if (seen_type && add_name(ref, start, (size_t)(end - start))) {
			*why = "resourceId() with an empty name or too many names";
			return -EINVAL;
		}
		p = end + 1;
		while (*p == ' ')
			p++;
		if (*p == ',') {
			p++;
			continue;
		}
		if (strcmp(p, ")]")) {
			*why = "resourceId() must be the whole expression";
			return -EINVAL;
		}
		break;
	}
	if (!seen_type || !ref->n_names) {
		*why = "resourceId() needs a resource type and a name";
		return -EINVAL;
	}
	return 0;
}

int reference_parse(const char *text, struct reference *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	*why = "an empty reference";
	if (!text || !*text)
		return -EINVAL;
	if (text[0] == '/')
		return parse_resource_id(text, out, why);
	if (!strncmp(text, "[resourceId(", strlen("[resourceId(")))
		return parse_resource_id_call(text, out, why);
	if (text[0] == '[') {
		*why = "an ARM expression other than resourceId(); run `vnet-xdp import` on ARM "
		       "templates";
		return -EINVAL;
	}
	for (const char *p = text; *p;) {
		const char *end = strchr(p, '/');

		if (!end)
			end = p + strlen(p);
		if (add_name(out, p, (size_t)(end - p))) {
			*why = "a name with an empty segment";
			return -EINVAL;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

bool get_reference(struct reader *r, struct node n, struct reference *out)
{
	const char *text = NULL, *why;
	struct node id = n;

	if (!n.value || json_is_null(n.value))
		return false;
	if (json_is_object(n.value)) {
		id = node_child(r, n, "id");
		if (!id.value) {
			reader_problem(r, n.path, "a reference object without \"id\"; allowed: "
				       "{\"id\": name, resourceId(...) or /subscriptions/... id}");
			return false;
		}
	}
	if (!get_string(r, id, &text))
		return false;
	if (reference_parse(text, out, &why)) {
		reader_problem(r, id.path, "\"%s\" is not a reference: %s", reader_shown(r, text), why);
		return false;
	}
	return true;
}

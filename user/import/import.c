/* vnet-xdp import: reads documents in the shapes Azure users hold and writes one config.
 *
 *   ARM template      {"$schema": ...deploymentTemplate..., "resources": [...]}
 *   REST example      {"parameters": {..., "<x>": request body}, "responses": {"200": {"body"}}}
 *   REST body / az    {"type": ..., "name": ..., "properties" | flattened properties}
 *   lists             {"value": [...]}, {"body": ...} or a JSON array of any of these */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "lib/cli.h"
#include "config/json.h"
#include "lib/private_file.h"
#include "import/internal.h"

struct importer *importer_new(json_t *params, FILE *diag)
{
	struct importer *imp = calloc(1, sizeof(*imp));

	if (!imp)
		return NULL;
	imp->diag = diag ? diag : stderr;
	imp->params = params;
	imp->resources = json_object();
	imp->stubs = json_object();
	imp->record_warnings = json_object();
	imp->unmodeled = json_object();
	imp->written = json_object();
	imp->declared_params = json_object();
	return imp;
}

void importer_free(struct importer *imp)
{
	if (!imp)
		return;
	json_decref(imp->resources);
	json_decref(imp->stubs);
	json_decref(imp->record_warnings);
	json_decref(imp->unmodeled);
	json_decref(imp->written);
	json_decref(imp->declared_params);
	free(imp);
}

int importer_warning_count(const struct importer *imp)
{
	return imp->warnings;
}

static bool looks_like_resource(json_t *v)
{
	return json_is_object(v) && (json_is_string(json_object_get(v, "type")) ||
				     json_is_string(json_object_get(v, "id")));
}

static int add_payload(struct importer *imp, json_t *body, const char *path);

static int add_list(struct importer *imp, json_t *list, const char *path)
{
	json_t *element;
	size_t i;
	int rc = 0;

	json_array_foreach(list, i, element) {
		char *sub = NULL;

		if (asprintf(&sub, "%s[%zu]", path, i) < 0)
			return 1;
		rc |= add_payload(imp, element, sub);
		free(sub);
	}
	return rc;
}

/* A resource, or a list of them in any of the wrappers Azure uses. */
static int add_payload(struct importer *imp, json_t *body, const char *path)
{
	char *sub = NULL;
	int rc;

	if (json_is_array(body))
		return add_list(imp, body, path);
	if (looks_like_resource(body)) {
		importer_add_resource(imp, body, path, NULL);
		return 0;
	}
	if (json_is_array(json_object_get(body, "value"))) {
		if (asprintf(&sub, "%s%svalue", path, *path ? "." : "") < 0)
			return 1;
		rc = add_list(imp, json_object_get(body, "value"), sub);
		free(sub);
		return rc;
	}
	if (json_is_object(json_object_get(body, "body")) ||
	    json_is_array(json_object_get(body, "body"))) {
		if (asprintf(&sub, "%s%sbody", path, *path ? "." : "") < 0)
			return 1;
		rc = add_payload(imp, json_object_get(body, "body"), sub);
		free(sub);
		return rc;
	}
	fprintf(imp->diag, "import: %s: %s: neither a resource (no \"type\" or \"id\") nor a "
		"list of them\n", imp->file, *path ? path : "the document");
	return 1;
}

/* REST examples name the resource in their parameters ("virtualNetworkName": "vnet1"). */
static const char *type_from_parameter(const char *key)
{
	static const char *const map[][2] = {
		{ "virtualNetworkName", "Microsoft.Network/virtualNetworks" },
		{ "networkSecurityGroupName", "Microsoft.Network/networkSecurityGroups" },
		{ "routeTableName", "Microsoft.Network/routeTables" },
		{ "natGatewayName", "Microsoft.Network/natGateways" },
		{ "publicIpAddressName", "Microsoft.Network/publicIPAddresses" },
		{ "networkInterfaceName", "Microsoft.Network/networkInterfaces" },
		{ "localNetworkGatewayName", "Microsoft.Network/localNetworkGateways" },
		{ "virtualNetworkGatewayName", "Microsoft.Network/virtualNetworkGateways" },
		{ "virtualNetworkGatewayConnectionName", "Microsoft.Network/connections" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcasecmp(map[i][0], key))
			return map[i][1];
	return NULL;
}

static json_t *pick_response_body(json_t *responses, const char **code)
{
	static const char *const preferred[] = { "200", "201" };
	const char *key;
	json_t *response;

	for (size_t i = 0; i < 2; i++) {
		json_t *body = json_object_get(json_object_get(responses, preferred[i]), "body");

		if (body) {
			*code = preferred[i];
			return body;
		}
	}
	json_object_foreach(responses, key, response) {
		if (key[0] == '2' && json_object_get(response, "body")) {
			*code = key;
			return json_object_get(response, "body");
		}
	}
	return NULL;
}

/* A request body inside parameters: the desired state, merged under the response (which
 * wins) so what only the request has (a connection's gateways, inline) is kept. */
static int add_request_bodies(struct importer *imp, json_t *parameters, json_t *response)
{
	const char *key, *pkey;
	json_t *request, *pvalue;
	const char *type = json_string_value(json_object_get(response, "type"));
	const char *name = json_string_value(json_object_get(response, "name"));
	const char *id = json_string_value(json_object_get(response, "id"));

	if (!type) {
		json_object_foreach(parameters, pkey, pvalue)
			if (type_from_parameter(pkey) && json_is_string(pvalue)) {
				type = type_from_parameter(pkey);
				name = json_string_value(pvalue);
			}
	}
	json_object_foreach(parameters, key, request) {
		json_t *resource;
		char *path = NULL;

		if (!json_is_object(request) || !json_is_object(json_object_get(request,
										"properties")))
			continue;
		if (!type || !name) {
			import_warn(imp, "parameters.%s: a request body without a response or a "
				    "name parameter to say what it is; left out", key);
			continue;
		}
		resource = json_deep_copy(request);
		json_object_set_new(resource, "type", json_string(type));
		json_object_set_new(resource, "name", json_string(name));
		if (id)
			json_object_set_new(resource, "id", json_string(id));
		if (asprintf(&path, "parameters.%s", key) >= 0)
			importer_add_resource(imp, resource, path, NULL);
		free(path);
		json_decref(resource);
	}
	return 0;
}

static int add_rest_example(struct importer *imp, json_t *doc)
{
	const char *code = NULL;
	json_t *body = pick_response_body(json_object_get(doc, "responses"), &code);
	json_t *parameters = json_object_get(doc, "parameters");
	char *path = NULL;
	int rc = 0;

	if (json_is_object(parameters))
		add_request_bodies(imp, parameters, looks_like_resource(body) ? body : NULL);
	if (body) {
		if (asprintf(&path, "responses.%s.body", code) < 0)
			return 1;
		rc = add_payload(imp, body, path);
		free(path);
	}
	return rc;
}

int importer_add_document(struct importer *imp, json_t *doc, const char *name)
{
	imp->file = name;
	if (json_is_array(doc))
		return add_list(imp, doc, "");
	if (!json_is_object(doc)) {
		fprintf(imp->diag, "import: %s: the document is not a JSON object or array\n",
			name);
		return 1;
	}
	if (json_is_array(json_object_get(doc, "resources")))
		return import_arm_template(imp, doc); /* a template, or a config */
	if (json_is_object(json_object_get(doc, "responses")))
		return add_rest_example(imp, doc);
	return add_payload(imp, doc, "");
}

/* Bicep is the source ARM templates are built from; its first word (after comments) is
 * one of its declarations. */
static bool looks_like_bicep(const char *path, const char *text, size_t len)
{
	static const char *const words[] = { "param", "resource", "targetScope", "var",
		"module", "metadata", "output", "type", "import", "using", "extension" };
	size_t n = strlen(path), i = 0;

	if (n > 6 && !strcasecmp(path + n - 6, ".bicep"))
		return true;
	while (i < len) {
		if (isspace((unsigned char)text[i])) {
			i++;
		} else if (i + 1 < len && text[i] == '/' && text[i + 1] == '/') {
			while (i < len && text[i] != '\n')
				i++;
		} else {
			break;
		}
	}
	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		size_t wl = strlen(words[w]);

		if (len - i > wl && !strncmp(text + i, words[w], wl) &&
		    isspace((unsigned char)text[i + wl]))
			return true;
	}
	return false;
}

static char *read_all(FILE *f, size_t *len)
{
	char *text = NULL, buf[65536];
	FILE *out = open_memstream(&text, len);
	size_t got;

	if (!out)
		return NULL;
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, got, out);
	if (ferror(f)) {
		fclose(out);
		free(text);
		return NULL;
	}
	fclose(out);
	return text;
}

int importer_add_file(struct importer *imp, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	json_error_t error;
	char *text;
	size_t len = 0;
	json_t *doc;
	int rc;

	if (!f) {
		fprintf(imp->diag, "import: %s: %s\n", path, strerror(errno));
		return 1;
	}
	text = read_all(f, &len);
	if (f != stdin)
		fclose(f);
	if (!text) {
		fprintf(imp->diag, "import: %s: cannot be read\n", path);
		return 1;
	}
	if (looks_like_bicep(path, text, len)) {
		fprintf(imp->diag, "import: %s: a Bicep file; build the ARM template first "
			"(az bicep build --file %s) and import the .json it writes\n", path, path);
		free(text);
		return 1;
	}
	/* jansson takes CRLF line ends as whitespace, as JSON allows. */
	doc = json_loadb(text, len, 0, &error);
	explicit_bzero(text, len); /* the document may hold a sharedKey */
	free(text);
	if (!doc) {
		fprintf(imp->diag, "import: %s:%d:%d: JSON syntax: %s\n", path, error.line,
			error.column, json_syntax_reason(&error));
		return 1;
	}
	rc = importer_add_document(imp, doc, path);
	json_decref(doc);
	return rc;
}

int importer_check_params(struct importer *imp)
{
	const char *name, *declared;
	json_t *value, *original;
	int rc = 0;

	json_object_foreach(imp->params, name, value) {
		char *lower = import_lower(name);

		if (lower && !json_object_get(imp->declared_params, lower)) {
			size_t i = 0;

			fprintf(imp->diag, "import: --param %s: no template among the inputs declares "
				"it; declared: ", name);
			json_object_foreach(imp->declared_params, declared, original)
				fprintf(imp->diag, "%s%s", i++ ? ", " : "", json_string_value(original));
			fprintf(imp->diag, "%s\n", i ? "" : "none");
			rc = 1;
		}
		free(lower);
	}
	return rc;
}

/* ---- the command ---------------------------------------------------------------- */

static int fill_text(FILE *out, void *text)
{
	return fputs(text, out) < 0 || fputc('\n', out) == EOF ? -EIO : 0;
}

static int write_output(json_t *config, const char *out_path)
{
	char *text = json_dumps(config, JSON_INDENT(2));
	int rc;

	if (!text)
		return 1;
	if (!out_path || !strcmp(out_path, "-")) {
		fputs(text, stdout);
		fputc('\n', stdout);
		rc = fflush(stdout) ? 1 : 0;
	} else {
		/* Private: the config may hold a sharedKey. */
		int err = private_file_write(out_path, fill_text, text);

		if (err)
			fprintf(stderr, "import: %s: %s\n", out_path, strerror(-err));
		rc = err ? 1 : 0;
	}
	explicit_bzero(text, strlen(text));
	free(text);
	return rc;
}

static int add_param(json_t *params, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *name;

	if (!eq || eq == arg)
		return -1;
	name = strndup(arg, (size_t)(eq - arg));
	json_object_set_new(params, name, json_string(eq + 1));
	free(name);
	return 0;
}

#define PARAM_FILE_MAX 65536

/* --param-file NAME=PATH: the value is PATH's text less one final line break (as `echo`
 * or an editor leaves it). Returns 0, -1 for a usage error, 1 after saying what failed. */
static int add_param_file(json_t *params, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char buf[PARAM_FILE_MAX + 1], *name;
	json_t *value;
	size_t used = 0;
	ssize_t got = 1;
	int fd, err = 0;

	if (!eq || eq == arg || !eq[1])
		return -1;
	fd = strcmp(eq + 1, "-") ? open(eq + 1, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0) {
		fprintf(stderr, "import: --param-file %s: %s\n", eq + 1, strerror(errno));
		return 1;
	}
	while (got > 0 && used < sizeof(buf)) {
		got = read(fd, buf + used, sizeof(buf) - used);
		if (got < 0 && errno == EINTR)
			got = 1;
		else if (got > 0)
			used += (size_t)got;
	}
	err = got < 0 ? errno : 0;
	if (fd != STDIN_FILENO)
		close(fd);
	if (err || used > PARAM_FILE_MAX || memchr(buf, '\0', used)) {
		fprintf(stderr, "import: --param-file %s: %s\n", eq + 1, err ? strerror(err) :
			used > PARAM_FILE_MAX ? "longer than 64 KiB" : "holds a NUL byte");
		explicit_bzero(buf, sizeof(buf));
		return 1;
	}
	if (used && buf[used - 1] == '\n')
		used--;
	if (used && buf[used - 1] == '\r')
		used--;
	value = json_stringn(buf, used);
	explicit_bzero(buf, sizeof(buf));
	if (!value) {
		fprintf(stderr, "import: --param-file %s: not UTF-8 text\n", eq + 1);
		return 1;
	}
	name = strndup(arg, (size_t)(eq - arg));
	json_object_set_new(params, name, value);
	free(name);
	return 0;
}

int import_main(int argc, char **argv)
{
	json_t *params = json_object(), *config;
	const char **files = calloc((size_t)argc + 1, sizeof(*files));
	const char *out_path = NULL;
	struct importer *imp = NULL;
	size_t n_files = 0;
	int rc = 0, stdin_readers = 0, i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (++i >= argc)
				goto missing_value;
			out_path = argv[i];
		} else if (!strncmp(a, "--output=", 9)) {
			out_path = a + 9;
		} else if (!strcmp(a, "-p") || !strcmp(a, "--param")) {
			if (++i >= argc)
				goto missing_value;
			if (add_param(params, argv[i]))
				goto not_name_value;
		} else if (!strncmp(a, "--param=", 8)) {
			if (add_param(params, a + 8))
				goto not_name_value;
		} else if (!strcmp(a, "--param-file") || !strncmp(a, "--param-file=", 13)) {
			const char *arg = a[12] ? a + 13 : ++i < argc ? argv[i] : NULL;

			if (!arg)
				goto missing_value;
			if (strlen(arg) > 2 && !strcmp(arg + strlen(arg) - 2, "=-"))
				stdin_readers++;
			rc = add_param_file(params, arg);
			if (rc < 0)
				goto not_name_value;
			if (rc)
				goto done;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "vnet-xdp import: unknown or misplaced option '%s'\n", a);
			goto usage_error;
		} else {
			stdin_readers += !strcmp(a, "-");
			files[n_files++] = a;
		}
	}
	if (stdin_readers > 1) {
		fprintf(stderr, "vnet-xdp import: standard input ('-') given twice\n");
		goto usage_error;
	}
	if (!n_files) {
		fprintf(stderr, "vnet-xdp import: no input file\n");
		goto usage_error;
	}
	imp = importer_new(params, stderr);
	for (size_t i = 0; imp && i < n_files; i++)
		if (importer_add_file(imp, files[i]))
			rc = 1;
	if (imp && !rc)
		rc = importer_check_params(imp);
	if (!imp || rc) {
		rc = 1; /* an input error: write nothing */
		goto done;
	}
	config = importer_finish(imp);
	rc = write_output(config, out_path);
	json_decref(config);
	goto done;

missing_value:
	fprintf(stderr, "vnet-xdp import: option '%s' needs a value\n", argv[argc - 1]);
	goto usage_error;
not_name_value:
	fprintf(stderr, "vnet-xdp import: '%s' is not NAME=VALUE\n", argv[i]);
usage_error:
	cli_usage_hint("import");
	rc = 2;
done:
	importer_free(imp);
	json_decref(params);
	free(files);
	return rc;
}

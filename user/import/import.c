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
#include "config/json.h"
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

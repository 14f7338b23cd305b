/* The config reader takes Azure's resources as Azure writes them: each REST response body
 * and az CLI document of ../shared/azure-samples is pasted, unchanged, into `resources`
 * beside a small gateway section, and read directly (no import). ARM templates carry
 * expressions and go through `vnet-xdp import` (test_import_check.c). Excerpts that name
 * resources they do not hold are refused with the precise reason. Skipped, saying why,
 * when ../shared is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>
#include <jansson.h>
#include "config/config.h"
#include "azure_samples.h"

/* What the reader says of the samples that are excerpts ('@' stands for "pasted/FILE:"). */
static const struct {
	const char *file;
	int problems;
	const char *expected;
} refused[] = {
	/* the response gives only the ids of the gateways the connection joins */
	{ "spec-connection-create.json", 2,
	  "@21:35: resources[0].properties.virtualNetworkGateway1: unknown "
	  "virtualNetworkGateways \"vpngw\"; allowed: one declared in resources\n"
	  "@25:33: resources[0].properties.localNetworkGateway2: unknown localNetworkGateways "
	  "\"localgw\"; allowed: one declared in resources\n" },
	/* the example's address is the placeholder x.x.x.x */
	{ "spec-lng-get.json", 1,
	  "@26:29: resources[0].properties.gatewayIpAddress: \"x.x.x.x\" is not an IP address; "
	  "allowed: IPv4 a.b.c.d or IPv6 x:x::x\n" },
	/* entries without "type" (their id says it) of a VNet the list does not hold */
	{ "spec-vnet-peering-list.json", 2,
	  "@14:15: resources[0].name: virtualNetworks/virtualNetworkPeerings \"peer\" belongs to "
	  "unknown virtualNetworks \"vnet1\"; allowed: a parent declared in resources\n"
	  "@44:15: resources[1].name: virtualNetworks/virtualNetworkPeerings \"peer\" belongs to "
	  "unknown virtualNetworks \"vnet1\"; allowed: a parent declared in resources\n" },
};

/* The resources of a REST example (200 response, else 201; a `value` list or one body)
 * or of az output (one object or a list), unchanged. NULL for an ARM template. */
static json_t *resources_as_written(json_t *doc)
{
	json_t *responses = json_object_get(doc, "responses"), *body;

	if (json_is_array(json_object_get(doc, "resources")))
		return NULL;
	if (json_is_array(doc))
		return json_incref(doc);
	if (!responses)
		return json_pack("[O]", doc);
	body = json_object_get(json_object_get(responses, "200"), "body");
	if (!body)
		body = json_object_get(json_object_get(responses, "201"), "body");
	if (json_is_array(json_object_get(body, "value")))
		return json_incref(json_object_get(body, "value"));
	return json_pack("[O]", body);
}

/* An uplink, and an interface toward each VNet among the resources. */
static json_t *gateway_for(json_t *resources)
{
	json_t *interfaces = json_array(), *r;
	size_t i;

	json_array_foreach(resources, i, r) {
		const char *type = json_string_value(json_object_get(r, "type"));
		char name[32];

		if (!type || strcasecmp(type, "Microsoft.Network/virtualNetworks"))
			continue;
		snprintf(name, sizeof(name), "cs-vnet%zu", i);
		json_array_append_new(interfaces, json_pack("{s:s, s:O}", "name", name,
				      "virtualNetwork", json_object_get(r, "name")));
	}
	json_array_append_new(interfaces, json_pack("{s:s, s:s}", "name", "cs-up0", "role",
						    "uplink"));
	return json_pack("{s:s, s:o}", "name", "cs", "interfaces", interfaces);
}

static void expect_text(const char *got, const char *expected, const char *name)
{
	char *want = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&want, &len);

	for (const char *p = expected; *p; p++)
		if (*p == '@' && (p == expected || p[-1] == '\n'))
			fprintf(f, "%s:", name);
		else
			fputc(*p, f);
	fclose(f);
	if (strcmp(got, want))
		fail_msg("%s:\n--- got\n%s--- expected\n%s", name, got, want);
	free(want);
}

static void rest_and_az_resources_are_read_as_written(void **state)
{
	size_t n, valid = 0, excerpts = 0, templates = 0;
	char **names = list_samples(&n);

	if (!names)
		skip();
	for (size_t i = 0; i < n; i++) {
		char path[2048], name[1100], *text, *problems = NULL;
		size_t len = 0;
		json_t *doc, *resources, *config;
		struct config *cfg = NULL;
		FILE *errors;
		int rc, r = -1;

		snprintf(path, sizeof(path), "%s/%s", samples_dir, names[i]);
		snprintf(name, sizeof(name), "pasted/%s", names[i]);
		doc = json_load_file(path, 0, NULL);
		assert_non_null(doc);
		resources = resources_as_written(doc);
		json_decref(doc);
		free(names[i]);
		if (!resources) {
			templates++;
			continue;
		}
		config = json_pack("{s:o, s:o}", "gateway", gateway_for(resources), "resources",
				   resources);
		text = json_dumps(config, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(config);
		errors = open_memstream(&problems, &len);
		rc = config_load_string(text, name, errors, &cfg);
		fclose(errors);
		for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]); k++)
			if (!strcmp(refused[k].file, name + strlen("pasted/")))
				r = (int)k;
		if (r < 0) {
			if (rc)
				fail_msg("%s: refused:\n%s", name, problems);
			printf("%-40s read as written: %zu VNets, %zu NSGs, %zu route tables\n",
			       name, cfg->n_vnets, cfg->n_nsgs, cfg->n_route_tables);
			valid++;
		} else {
			expect_text(problems, refused[r].expected, name);
			assert_int_equal(rc, refused[r].problems);
			excerpts++;
		}
		config_free(cfg);
		free(problems);
		free(text);
	}
	free(names);
	printf("%zu read as written, %zu excerpts refused, %zu templates left to import\n",
	       valid, excerpts, templates);
	assert_true(valid >= 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rest_and_az_resources_are_read_as_written),
	};

	return cmocka_run_group_tests_name("config_samples", tests, find_samples, NULL);
}

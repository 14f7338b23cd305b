/* What `vnet-xdp import` writes, `vnet-xdp check` accepts: every file of
 * ../shared/azure-samples is imported (secure template parameters given a value, as a
 * user gives them with --param), the gateway section's FILL-IN interface names filled
 * with distinct names, and the text read back by the config reader. Samples that are
 * excerpts of a larger state are refused with the precise reason (docs/import.md says
 * why). Skipped, saying why, when ../shared is absent. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "config/config.h"
#include "import/import.h"
#include "azure_samples.h"

#define DATA "tests/data/config/"
#define SERVICE_TAGS_SAMPLE_RELATIVE "tests/data/service-tags/ServiceTags_Public_sample.json"

/* The sample tag file by its full path: imported configs are checked under another name. */
static const char *service_tags_sample(void)
{
	static char path[4096];

	if (!path[0] && !realpath(SERVICE_TAGS_SAMPLE_RELATIVE, path))
		fail_msg("%s: missing", SERVICE_TAGS_SAMPLE_RELATIVE);
	return path;
}


/* The samples whose import is an excerpt: what check says about each, '@' standing for
 * "imported/NAME:". Everything else must be valid. */
static const struct {
	const char *file;
	const char *why;      /* why the refusal is right */
	int problems;
	const char *expected;
} refused[] = {
	{ "spec-connection-create.json",
	  "the request's gateway sits in vnet1's GatewaySubnet with public IP gwpip, neither "
	  "in the example, and its local network gateway's address is the placeholder x.x.x.x",
	  3,
	  "@92:25: resources[2].properties.ipConfigurations[0].properties.subnet: unknown "
	  "virtual network \"vnet1\"; allowed: one declared in resources\n"
	  "@95:34: resources[2].properties.ipConfigurations[0].properties.publicIPAddress: "
	  "unknown publicIPAddresses \"gwpip\"; allowed: one declared in resources\n"
	  "@80:29: resources[1].properties.gatewayIpAddress: \"x.x.x.x\" is not an IP "
	  "address; allowed: IPv4 a.b.c.d or IPv6 x:x::x\n" },
	{ "spec-lng-get.json",
	  "the example's gatewayIpAddress is the placeholder x.x.x.x",
	  1,
	  "@22:29: resources[0].properties.gatewayIpAddress: \"x.x.x.x\" is not an IP "
	  "address; allowed: IPv4 a.b.c.d or IPv6 x:x::x\n" },
	{ "spec-vnet-peering-list.json",
	  "a list of vnet1's peerings says nothing of vnet1's own address space",
	  1,
	  "@24:21: resources[0].properties: virtual network \"vnet1\" has no "
	  "addressSpace.addressPrefixes; allowed: a list of CIDR prefixes\n" },
};

static int refused_index(const char *file)
{
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (!strcmp(refused[i].file, file))
			return (int)i;
	return -1;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Secure parameters of a template without a default: the user gives them with --param. */
static json_t *secure_params(const char *path)
{
	json_t *doc = json_load_file(path, 0, NULL), *params = json_object(), *decl;
	const char *name;

	json_object_foreach(json_object_get(doc, "parameters"), name, decl) {
		const char *type = json_string_value(json_object_get(decl, "type"));

		if (type && !strncasecmp(type, "secure", 6) && !json_object_get(decl, "defaultValue"))
			json_object_set_new(params, name, json_string("test-secret"));
	}
	json_decref(doc);
	return params;
}

struct imported {
	char *text;  /* the config as `vnet-xdp import` writes it, interfaces filled in */
	char *diag;  /* the importer's warnings */
	int rc;
};

/* Imports FILES (NULL-terminated) as `vnet-xdp import` does and fills each FILL-IN
 * interface name with a distinct name and each VPN gateway's address with one of
 * 192.0.2.0/24. */
static struct imported import_and_fill(const char *const *files, json_t *params)
{
	struct imported out = { 0 };
	size_t diag_len = 0;
	FILE *diag = open_memstream(&out.diag, &diag_len);
	struct importer *imp = importer_new(params, diag);
	json_t *config = NULL, *iface;
	size_t i;

	for (i = 0; files[i] && !out.rc; i++)
		out.rc = importer_add_file(imp, files[i]);
	if (!out.rc)
		config = importer_finish(imp);
	importer_free(imp);
	fclose(diag);
	if (!config)
		return out;
	json_array_foreach(json_object_get(json_object_get(config, "gateway"), "interfaces"), i,
			   iface) {
		const char *name = json_string_value(json_object_get(iface, "name"));
		char filled[32];

		assert_non_null(name);
		assert_string_equal(name, "FILL-IN");
		snprintf(filled, sizeof(filled), "ct-if%zu", i);
		json_object_set_new(iface, "name", json_string(filled));
	}
	json_array_foreach(json_object_get(json_object_get(config, "gateway"),
					   "virtualNetworkGateways"), i, iface) {
		char filled[32];

		assert_string_equal(json_string_value(json_object_get(iface, "address")),
				    "FILL-IN");
		snprintf(filled, sizeof(filled), "192.0.2.%zu", i + 1);
		json_object_set_new(iface, "address", json_string(filled));
	}
	if (json_object_get(json_object_get(config, "gateway"), "serviceTagsFile")) {
		assert_string_equal(json_string_value(json_object_get(json_object_get(config,
				    "gateway"), "serviceTagsFile")), "FILL-IN");
		json_object_set_new(json_object_get(config, "gateway"), "serviceTagsFile",
				    json_string(service_tags_sample()));
	}
	out.text = json_dumps(config, JSON_INDENT(2));
	json_decref(config);
	return out;
}

static void imported_free(struct imported *im)
{
	free(im->text);
	free(im->diag);
}

/* config_load_string() on the imported text: the return code and every problem line. */
static int check_text(const char *text, const char *name, char **problems, struct config **cfg)
{
	size_t len = 0;
	FILE *errors = open_memstream(problems, &len);
	int rc = config_load_string(text, name, errors, cfg);

	fclose(errors);
	return rc;
}

static char *expand_at(const char *expected, const char *name)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	for (const char *p = expected; *p; p++)
		if (*p == '@' && (p == expected || p[-1] == '\n'))
			fprintf(f, "%s:", name);
		else
			fputc(*p, f);
	fclose(f);
	return out;
}

static void every_sample_imports_and_checks(void **state)
{
	size_t n, valid = 0, rejected = 0;
	char **names = list_samples(&n);

	if (!names)
		skip();
	for (size_t i = 0; i < n; i++) {
		char path[2048], name[1100], *problems = NULL;
		const char *files[] = { path, NULL };
		json_t *params;
		struct imported im;
		struct config *cfg = NULL;
		int r = refused_index(names[i]), rc;

		snprintf(path, sizeof(path), "%s/%s", samples_dir, names[i]);
		snprintf(name, sizeof(name), "imported/%s", names[i]);
		params = secure_params(path);
		im = import_and_fill(files, params);
		json_decref(params);
		if (im.rc || !im.text)
			fail_msg("%s: import failed:\n%s", names[i], im.diag);
		rc = check_text(im.text, name, &problems, &cfg);
		if (r < 0) {
			if (rc)
				fail_msg("%s: check refuses the import (%d):\n%s", names[i], rc,
					 problems);
			printf("%-42s valid: %zu VNets, %zu NSGs, %zu route tables, %zu "
			       "connections\n", names[i], cfg->n_vnets, cfg->n_nsgs,
			       cfg->n_route_tables, cfg->n_connections);
			valid++;
		} else {
			char *want = expand_at(refused[r].expected, name);

			if (strcmp(problems, want))
				fail_msg("%s:\n--- got\n%s--- expected\n%s", names[i], problems, want);
			assert_int_equal(rc, refused[r].problems);
			printf("%-42s refused as expected: %s\n", names[i], refused[r].why);
			free(want);
			rejected++;
		}
		config_free(cfg);
		free(problems);
		imported_free(&im);
	}
	free_names(names, n);
	printf("%zu valid, %zu refused as excerpts\n", valid, rejected);
	assert_true(valid > 0);
}

/* A peering list plus the VNet's own `az network vnet show` is a complete picture. */
static void peering_list_with_its_vnet_is_valid(void **state)
{
	char path[2048], *problems = NULL;
	const char *files[] = { path, DATA "import-vnet1-show.json", NULL };
	struct imported im;
	struct config *cfg = NULL;
	const struct config_vnet *vnet1;

	snprintf(path, sizeof(path), "%s/spec-vnet-peering-list.json", samples_dir);
	if (access(path, R_OK)) {
		printf("skipped: %s not found\n", path);
		skip();
	}
	im = import_and_fill(files, NULL);
	assert_int_equal(im.rc, 0);
	if (check_text(im.text, "imported/peering-list+vnet1", &problems, &cfg))
		fail_msg("refused:\n%s", problems);
	vnet1 = &cfg->vnets[config_find_vnet(cfg, "vnet1")];
	assert_int_equal(vnet1->n_prefixes, 1);
	assert_int_equal(vnet1->n_peerings, 2);
	/* vnet2 and vnet3 are not in the config: Azure's "Initiated", nothing forwarded */
	assert_int_equal(vnet1->peerings[0].remote_vnet, CONFIG_NONE);
	assert_false(vnet1->peerings[0].connected);
	assert_false(vnet1->peerings[1].connected);
	config_free(cfg);
	free(problems);
	imported_free(&im);
}

/* The route to the firewall keeps its next hop: reference() to the Azure Firewall is
 * answered with the first usable address of its AzureFirewallSubnet (10.0.1.64/26), and
 * the importer says so, naming the property. */
static void firewall_next_hop_is_derived_from_its_subnet(void **state)
{
	char path[2048], *problems = NULL;
	const char *files[] = { path, NULL };
	struct imported im;
	struct config *cfg = NULL;
	struct ip_address want;

	snprintf(path, sizeof(path), "%s/arm-nat-gateway-hub-spoke-firewall.json", samples_dir);
	if (access(path, R_OK)) {
		printf("skipped: %s not found\n", path);
		skip();
	}
	im = import_and_fill(files, NULL);
	assert_int_equal(im.rc, 0);
	assert_non_null(strstr(im.diag, "resources[12].properties.routes[0].properties."
				"nextHopIpAddress: reference() to Azure Firewall"));
	assert_non_null(strstr(im.diag, "gets 10.0.1.68, the first usable address (network + "
				"4) of its subnet AzureFirewallSubnet 10.0.1.64/26"));
	assert_null(strstr(im.diag, "left out\n"));
	if (check_text(im.text, "imported/nat-gateway", &problems, &cfg))
		fail_msg("refused:\n%s", problems);
	assert_int_equal(cfg->n_route_tables, 1);
	assert_int_equal(cfg->route_tables[0].n_routes, 1);
	assert_int_equal(cfg->route_tables[0].routes[0].next_hop_type, NEXT_HOP_VIRTUAL_APPLIANCE);
	assert_int_equal(ip_address_parse("10.0.1.68", &want), 0);
	assert_memory_equal(&cfg->route_tables[0].routes[0].next_hop_ip, &want, sizeof(want));
	config_free(cfg);
	free(problems);
	imported_free(&im);
}

/* The project's own template: reference() of a firewall whose subnet is a child resource,
 * with 'Full'; reference() of a public IP is left out, its path named, and check then
 * says the route lacks its next hop. */
static void reference_to_firewall_and_to_other_resources(void **state)
{
	const char *files[] = { DATA "import-reference.json", NULL };
	struct imported im = import_and_fill(files, NULL);
	struct config *cfg = NULL;
	char *problems = NULL;

	assert_int_equal(im.rc, 0);
	assert_non_null(strstr(im.diag, "resources[4].properties.routes[0].properties."
				"nextHopIpAddress: reference() to Azure Firewall 't-fw' is resolved "
				"without a deployment: ipConfigurations[0] gets 10.20.3.4, the first "
				"usable address (network + 4) of its subnet AzureFirewallSubnet "
				"10.20.3.0/26, as Azure assigns it; check it after deploying\n"));
	assert_non_null(strstr(im.diag, "resources[4].properties.routes[1].properties."
				"nextHopIpAddress: reference() to public IP 'pip': Azure picks its "
				"ipAddress at deployment, so it is not known from the template "
				"(character 2); left out\n"));
	assert_int_equal(check_text(im.text, "imported/reference", &problems, &cfg), 1);
	assert_non_null(strstr(problems, "properties.routes[1].properties.nextHopIpAddress: next "
				"hop VirtualAppliance needs nextHopIpAddress"));
	free(problems);
	imported_free(&im);
}

/* The two VNets of the peering quickstart peer both ways: Connected once imported. */
static void imported_peerings_are_connected(void **state)
{
	char path[2048], *problems = NULL;
	const char *files[] = { path, NULL };
	struct imported im;
	struct config *cfg = NULL;

	snprintf(path, sizeof(path), "%s/arm-vnet-to-vnet-peering.json", samples_dir);
	if (access(path, R_OK)) {
		printf("skipped: %s not found\n", path);
		skip();
	}
	im = import_and_fill(files, NULL);
	assert_int_equal(im.rc, 0);
	if (check_text(im.text, "imported/vnet-to-vnet", &problems, &cfg))
		fail_msg("refused:\n%s", problems);
	assert_int_equal(cfg->n_vnets, 2);
	for (size_t v = 0; v < cfg->n_vnets; v++) {
		assert_int_equal(cfg->vnets[v].n_peerings, 1);
		assert_int_equal(cfg->vnets[v].peerings[0].remote_vnet, (int)(1 - v));
		assert_true(cfg->vnets[v].peerings[0].connected);
	}
	config_free(cfg);
	free(problems);
	imported_free(&im);
}

/* Without --param for a secure parameter, check names the FILL-IN it left. */
static void secret_left_as_fill_in_is_refused(void **state)
{
	char path[2048], *problems = NULL;
	const char *files[] = { path, NULL };
	struct imported im;
	struct config *cfg = NULL;

	snprintf(path, sizeof(path), "%s/arm-site-to-site-vpn.json", samples_dir);
	if (access(path, R_OK)) {
		printf("skipped: %s not found\n", path);
		skip();
	}
	im = import_and_fill(files, NULL);
	assert_int_equal(im.rc, 0);
	assert_int_equal(check_text(im.text, "imported/s2s", &problems, &cfg), 1);
	assert_non_null(strstr(problems, ".properties.sharedKey: still FILL-IN; allowed: the "
				"pre-shared key"));
	free(problems);
	imported_free(&im);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_sample_imports_and_checks),
		cmocka_unit_test(peering_list_with_its_vnet_is_valid),
		cmocka_unit_test(firewall_next_hop_is_derived_from_its_subnet),
		cmocka_unit_test(imported_peerings_are_connected),
		cmocka_unit_test(reference_to_firewall_and_to_other_resources),
		cmocka_unit_test(secret_left_as_fill_in_is_refused),
	};

	return cmocka_run_group_tests_name("import_check", tests, find_samples, NULL);
}

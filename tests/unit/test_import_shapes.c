/* What Azure would deploy from a template is what the gateway enforces: templates shaped
 * like Azure's quickstarts (tests/data/import/shapes) are imported, the FILL-IN values
 * filled in, and the result must equal the hand-checked NAME.expected and pass the config
 * reader. Also the cases around it: Dynamic NIC addresses, VPN gateway binding,
 * reference() to resources among the inputs, nested deployments, Bicep and --param. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <jansson.h>
#include "config/config.h"
#include "config/internal.h"
#include "import/import.h"
#include "lib/local_interfaces.h"
#include "datapath/tunnel.h"
#include "compile/effective_rules.h"
#include "nsg_reference.h"

#define SHAPES "tests/data/import/shapes/"
#define IMPORT_DATA "tests/data/import/"

struct imported {
	json_t *config; /* FILL-IN values filled in */
	char *diag;
	int rc;
};

/* Imports one file as `vnet-xdp import FILE -p NAME=VALUE...` does, then fills each
 * interface name with shape-ifN and each VPN gateway address with 192.0.2.N. */
static struct imported import_filled(const char *file, const char *const *params)
{
	struct imported out = { 0 };
	size_t len = 0, i;
	FILE *diag = open_memstream(&out.diag, &len);
	json_t *overrides = json_object(), *entry, *gateway;
	struct importer *imp;

	for (; params && params[0]; params += 2)
		json_object_set_new(overrides, params[0], json_string(params[1]));
	imp = importer_new(overrides, diag);
	out.rc = importer_add_file(imp, file);
	if (!out.rc)
		out.rc = importer_check_params(imp);
	if (!out.rc)
		out.config = importer_finish(imp);
	importer_free(imp);
	fclose(diag);
	json_decref(overrides);
	gateway = json_object_get(out.config, "gateway");
	json_array_foreach(json_object_get(gateway, "interfaces"), i, entry) {
		char name[32];

		assert_string_equal(json_string_value(json_object_get(entry, "name")), "FILL-IN");
		snprintf(name, sizeof(name), "shape-if%zu", i);
		json_object_set_new(entry, "name", json_string(name));
	}
	json_array_foreach(json_object_get(gateway, "virtualNetworkGateways"), i, entry) {
		char address[32];

		assert_string_equal(json_string_value(json_object_get(entry, "address")), "FILL-IN");
		snprintf(address, sizeof(address), "192.0.2.%zu", i + 1);
		json_object_set_new(entry, "address", json_string(address));
	}
	return out;
}

static void imported_free(struct imported *im)
{
	json_decref(im->config);
	free(im->diag);
}

/* The config reader on the imported config: 0 and the config, or fails with its lines. */
static struct config *checked(json_t *config, const char *name)
{
	char *text = json_dumps(config, JSON_INDENT(2)), *problems = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&problems, &len);
	struct config *cfg = NULL;
	int rc = config_load_string(text, name, errors, &cfg);

	fclose(errors);
	if (rc)
		fail_msg("%s: check refuses the import:\n%s", name, problems);
	free(problems);
	free(text);
	return cfg;
}

static void expect_shape(const char *name, const char *const *params)
{
	char file[256], expected_file[256];
	struct imported im;
	json_t *expected;
	char *got, *want;

	snprintf(file, sizeof(file), SHAPES "%s.json", name);
	snprintf(expected_file, sizeof(expected_file), SHAPES "%s.expected", name);
	im = import_filled(file, params);
	if (im.rc)
		fail_msg("%s: import failed:\n%s", name, im.diag);
	expected = json_load_file(expected_file, 0, NULL);
	assert_non_null(expected);
	got = json_dumps(im.config, JSON_INDENT(2));
	want = json_dumps(expected, JSON_INDENT(2));
	if (!json_equal(im.config, expected))
		fail_msg("%s:\n--- got\n%s\n--- expected\n%s", name, got, want);
	config_free(checked(im.config, name));
	free(got);
	free(want);
	json_decref(expected);
	imported_free(&im);
}

static json_t *find_resource(json_t *config, const char *type, const char *name)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(config, "resources"), i, r)
		if (!strcmp(json_string_value(json_object_get(r, "type")), type) &&
		    !strcmp(json_string_value(json_object_get(r, "name")), name))
			return r;
	return NULL;
}

#define NET "Microsoft.Network/"

static const char *nic_address(json_t *config, const char *nic)
{
	const char *address = json_string_value(json_object_get(json_object_get(json_array_get(
		json_object_get(json_object_get(find_resource(config, NET "networkInterfaces", nic),
						"properties"), "ipConfigurations"), 0),
		"properties"), "privateIPAddress"));

	return address ? address : "(none)";
}

/* ---- the shapes ---- */

static void firewall_hub_with_route_tables_imports_as_expected(void **state)
{
	expect_shape("firewall-hub-routes", NULL);
}

static void vm_with_nic_nsg_and_dynamic_address_imports_as_expected(void **state)
{
	static const char *const params[] = { "adminPassword", "test-secret", NULL };

	expect_shape("vm-nic-nsg-dynamic", params);
}

static struct reference_verdict quickstart_verdict(const struct config *cfg, const char *src,
						   const char *dst, uint16_t port)
{
	struct reference_packet p = { .family = AF_INET, .proto = IPPROTO_TCP, .has_ports = true,
				      .sport = 50000, .dport = port };
	struct reference_nsg stages[REFERENCE_STAGES] = { { NULL } };
	static struct ip_prefix vnet;

	ip_prefix_parse("10.0.0.0/16", &vnet);
	inet_pton(AF_INET, src, p.src);
	inet_pton(AF_INET, dst, p.dst);
	stages[REFERENCE_DESTINATION_SUBNET] = (struct reference_nsg){
		&cfg->nsgs[cfg->vnets[0].subnets[0].network_security_group], &vnet, 1, cfg };
	return reference_evaluate(stages, &p);
}

/* Azure's ASG tutorial (web and management servers in application security groups, one
 * NSG allowing HTTP/HTTPS to the one and RDP to the other): imports, checks without a
 * warning, and its rules hold the groups' NICs and no other address. */
static void asg_quickstart_imports_checks_clean_and_its_rules_apply(void **state)
{
	struct imported im = import_filled(SHAPES "asg-quickstart.json", NULL);
	json_t *expected = json_load_file(SHAPES "asg-quickstart.expected", 0, NULL), *rules;
	char *text, *problems = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&problems, &len);
	struct config *cfg = NULL;
	struct reference_verdict v;

	if (im.rc)
		fail_msg("import failed:\n%s", im.diag);
	assert_non_null(expected);
	assert_true(json_equal(im.config, expected));
	text = json_dumps(im.config, JSON_INDENT(2));
	assert_int_equal(config_load_string(text, "asg-quickstart", errors, &cfg), 0);
	fclose(errors);
	assert_string_equal(problems, ""); /* not a warning */
	assert_int_equal(cfg->n_unenforced, 0);
	assert_int_equal(cfg->n_application_security_groups, 2);

	v = quickstart_verdict(cfg, "203.0.113.9", nic_address(im.config, "myVmWebNic"), 80);
	assert_true(v.allowed);
	assert_string_equal(v.rules[REFERENCE_DESTINATION_SUBNET]->name, "Allow-Web-All");
	v = quickstart_verdict(cfg, "203.0.113.9", nic_address(im.config, "myVmMgmtNic"), 80);
	assert_false(v.allowed);
	assert_string_equal(v.rules[REFERENCE_DESTINATION_SUBNET]->name, "DenyAllInBound");
	v = quickstart_verdict(cfg, "203.0.113.9", nic_address(im.config, "myVmMgmtNic"), 3389);
	assert_true(v.allowed);
	assert_string_equal(v.rules[REFERENCE_DESTINATION_SUBNET]->name, "Allow-RDP-All");

	/* the compiled side: the group is its NIC's address */
	rules = effective_rules_json(cfg, config_find_nic(cfg, "myVmWebNic"), CONFIG_NONE,
				     CONFIG_NONE);
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_array_get(
		json_object_get(json_array_get(json_object_get(rules, "value"), 0),
				"effectiveSecurityRules"), 0), "expandedDestinationAddressPrefix"), 0)),
		"10.0.0.4/32");
	json_decref(rules);
	config_free(cfg);
	free(problems);
	free(text);
	json_decref(expected);
	imported_free(&im);
}

static void site_to_site_vpn_imports_as_expected(void **state)
{
	static const char *const params[] = { "sharedKey", "test-secret", NULL };

	expect_shape("site-to-site-vpn", params);
}

static void nested_deployment_imports_as_expected(void **state)
{
	expect_shape("nested-deployment", NULL);
}

/* ---- Dynamic addresses ---- */

/* Statically given addresses are taken first; Dynamic ones follow from .4 in order. */
static void dynamic_nic_address_is_first_free_from_dot_four(void **state)
{
	static const char *const params[] = { "adminPassword", "x", NULL };
	struct imported im = import_filled(SHAPES "vm-nic-nsg-dynamic.json", params);

	assert_int_equal(im.rc, 0);
	assert_string_equal(nic_address(im.config, "vm1-nic-static"), "10.1.0.4");
	assert_string_equal(nic_address(im.config, "vm1-nic0"), "10.1.0.5");
	assert_string_equal(nic_address(im.config, "vm1-nic1"), "10.1.0.6");
	assert_non_null(strstr(im.diag, "import: warning: network interface 'vm1-nic0' "
			       "ipConfigurations[0]: Dynamic address 10.1.0.5, the first free one "
			       "from .4 of subnet vm1-vnet/default 10.1.0.0/24"));
	imported_free(&im);
}

/* An NSG on a NIC matches by the NIC's address: without one the VM would be unfiltered. */
static void nic_with_nsg_but_no_address_is_refused(void **state)
{
	char *problems = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&problems, &len);
	struct config *cfg = NULL;
	int rc = config_load("tests/data/config/nic-nsg-no-address.json", errors, &cfg);

	fclose(errors);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(problems, "network interface \"vm-nic\" has a "
			       "networkSecurityGroup but no privateIPAddress"));
	config_free(cfg);
	free(problems);
}

/* ---- VPN gateways ---- */

/* The binding makes the imported connection one this box terminates, toward the
 * on-premises prefixes. */
static void vpn_gateway_is_bound_and_its_connection_terminates_here(void **state)
{
	static const char *const params[] = { "sharedKey", "x", NULL };
	struct imported im = import_filled(SHAPES "site-to-site-vpn.json", params);
	struct config *cfg;
	struct tunnel *tunnels = NULL;
	size_t n = 0;
	char text[64];

	assert_int_equal(im.rc, 0);
	cfg = checked(im.config, "site-to-site-vpn");
	assert_int_equal(tunnels_of_config(cfg, stderr, &tunnels, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(tunnels[0].name, "azure-to-on-premises");
	assert_int_equal(tunnels[0].n_remote_prefixes, 2);
	assert_string_equal(prefix_text(&tunnels[0].remote_prefixes[0], text, sizeof(text)),
			    "192.168.0.0/16");
	free(tunnels);
	config_free(cfg);
	imported_free(&im);
}

/* ---- reference() ---- */

static void reference_to_inputs_resolves_subnet_nic_static_and_dynamic_and_static_public_ip(void **state)
{
	struct imported im = import_filled(IMPORT_DATA "reference-inputs.json", NULL);
	json_t *routes = json_object_get(json_object_get(find_resource(im.config,
		NET "routeTables", "rt"), "properties"), "routes");
	json_t *first = json_pack("{s:s, s:s, s:s}", "addressPrefix", "10.30.1.0/24",
				  "nextHopType", "VirtualAppliance", "nextHopIpAddress", "10.30.2.10");

	assert_int_equal(im.rc, 0);
	assert_true(json_equal(json_object_get(json_array_get(routes, 0), "properties"), first));
	json_decref(first);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
		json_array_get(routes, 1), "properties"), "addressPrefix")), "10.30.2.0/24");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
		json_array_get(routes, 2), "properties"), "addressPrefix")), "203.0.113.7/32");
	/* the static 10.30.2.10 is taken; the Dynamic NIC gets .4, here and in the config */
	assert_string_equal(json_string_value(json_object_get(json_object_get(
		json_array_get(routes, 3), "properties"), "nextHopIpAddress")), "10.30.2.4");
	assert_string_equal(nic_address(im.config, "dynamic-nic"), "10.30.2.4");
	assert_null(json_object_get(json_object_get(json_array_get(routes, 4), "properties"),
				    "addressPrefix"));
	assert_non_null(strstr(im.diag, "routes[4].properties.addressPrefix: reference() to "
			       "Microsoft.Network/virtualNetworks/subnets 'other/x', which the "
			       "template does not declare, needs a deployment"));
	imported_free(&im);
}

/* ---- nested deployments ---- */

/* Inner scope: the deployment's parameters; outer scope: the parent's variables. */
static void nested_deployment_resources_are_imported_not_left_out(void **state)
{
	struct imported im = import_filled(SHAPES "nested-deployment.json", NULL);

	assert_int_equal(im.rc, 0);
	assert_non_null(find_resource(im.config, NET "networkSecurityGroups", "app-vnet-web-nsg"));
	assert_non_null(find_resource(im.config, NET "routeTables", "app-rt"));
	assert_null(strstr(im.diag, "Microsoft.Resources/deployments"));
	imported_free(&im);
}

/* A copy loop of deployments gives one inner scope per index; a value passed in is data,
 * never evaluated again; a linked template is named, not fetched. */
static void nested_deployment_copies_pass_values_as_data(void **state)
{
	struct imported im = import_filled(IMPORT_DATA "nested-edges.json", NULL);
	const char *description;
	json_t *nsg1;

	assert_int_equal(im.rc, 0);
	assert_non_null(find_resource(im.config, NET "networkSecurityGroups", "nsg0"));
	nsg1 = find_resource(im.config, NET "networkSecurityGroups", "nsg1");
	assert_non_null(nsg1);
	description = json_string_value(json_object_get(json_object_get(json_array_get(
		json_object_get(json_object_get(nsg1, "properties"), "securityRules"), 0),
		"properties"), "description"));
	assert_non_null(description);
	assert_string_equal(description, "[not an expression]");
	assert_non_null(strstr(im.diag, "resources[1]: a deployment of a linked template "
			       "(templateLink) is not read; import that template on its own"));
	imported_free(&im);
}

/* ---- Bicep, --param and FILL-IN ---- */

static void bicep_file_is_refused_with_the_build_hint(void **state)
{
	struct imported im = import_filled(IMPORT_DATA "network.bicep", NULL);

	assert_int_equal(im.rc, 1);
	assert_non_null(strstr(im.diag, "import: " IMPORT_DATA "network.bicep: a Bicep file; "
			       "build the ARM template first (az bicep build --file "));
	imported_free(&im);
}

static void bicep_text_under_a_json_name_is_refused(void **state)
{
	struct imported im = import_filled(IMPORT_DATA "bicep-text.json", NULL);

	assert_int_equal(im.rc, 1);
	assert_non_null(strstr(im.diag, "a Bicep file; build the ARM template first"));
	imported_free(&im);
}

static void mistyped_param_is_an_error_naming_the_declared_ones(void **state)
{
	static const char *const params[] = { "adminPasword", "x", NULL };
	struct imported im = import_filled(SHAPES "vm-nic-nsg-dynamic.json", params);

	assert_int_equal(im.rc, 1);
	assert_null(im.config);
	assert_non_null(strstr(im.diag, "import: --param adminPasword: no template among the "
			       "inputs declares it; declared: vmName, addressPrefix, "
			       "adminPassword\n"));
	imported_free(&im);
}

static void fill_in_note_lists_this_machines_interfaces(void **state)
{
	static const char *const params[] = { "sharedKey", "x", NULL };
	struct imported im = import_filled(SHAPES "site-to-site-vpn.json", params);
	char *here = local_interfaces_text(), *line = NULL;

	assert_true(asprintf(&line, "import: fill in: gateway.interfaces[].name (2, the Linux "
			     "interface facing each VNet and the uplink), "
			     "gateway.virtualNetworkGateways[].address (1, this box's tunnel "
			     "endpoint for each VPN gateway, an address of the uplink); this "
			     "machine's interfaces: %s\n", here) > 0);
	assert_non_null(strstr(im.diag, line));
	free(line);
	free(here);
	imported_free(&im);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(firewall_hub_with_route_tables_imports_as_expected),
		cmocka_unit_test(vm_with_nic_nsg_and_dynamic_address_imports_as_expected),
		cmocka_unit_test(asg_quickstart_imports_checks_clean_and_its_rules_apply),
		cmocka_unit_test(site_to_site_vpn_imports_as_expected),
		cmocka_unit_test(nested_deployment_imports_as_expected),
		cmocka_unit_test(dynamic_nic_address_is_first_free_from_dot_four),
		cmocka_unit_test(nic_with_nsg_but_no_address_is_refused),
		cmocka_unit_test(vpn_gateway_is_bound_and_its_connection_terminates_here),
		cmocka_unit_test(reference_to_inputs_resolves_subnet_nic_static_and_dynamic_and_static_public_ip),
		cmocka_unit_test(nested_deployment_resources_are_imported_not_left_out),
		cmocka_unit_test(nested_deployment_copies_pass_values_as_data),
		cmocka_unit_test(bicep_file_is_refused_with_the_build_hint),
		cmocka_unit_test(bicep_text_under_a_json_name_is_refused),
		cmocka_unit_test(mistyped_param_is_an_error_naming_the_declared_ones),
		cmocka_unit_test(fill_in_note_lists_this_machines_interfaces),
	};

	return cmocka_run_group_tests_name("import shapes", tests, NULL, NULL);
}

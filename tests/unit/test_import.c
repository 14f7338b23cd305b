/* vnet-xdp import on the project's own fixtures (tests/data/import): each input shape,
 * folding and merging, warnings, stable output and the command's exit codes. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "cmd/commands.h"
#include "import/import.h"

#define DATA "tests/data/import/"

struct run {
	json_t *config;
	char *diag;
	int rc;
	int warnings;
};

/* Imports the files with the given --param overrides (NULL-terminated name, value). */
static struct run import_files(const char *const *files, const char *const *params)
{
	struct run r = { 0 };
	size_t len = 0;
	FILE *diag = open_memstream(&r.diag, &len);
	json_t *overrides = json_object();
	struct importer *imp;

	for (; params && params[0]; params += 2)
		json_object_set_new(overrides, params[0], json_string(params[1]));
	imp = importer_new(overrides, diag);
	for (; *files; files++)
		r.rc |= importer_add_file(imp, *files);
	if (!r.rc)
		r.config = importer_finish(imp);
	r.warnings = importer_warning_count(imp);
	importer_free(imp);
	fclose(diag);
	json_decref(overrides);
	return r;
}

static void run_free(struct run *r)
{
	json_decref(r->config);
	free(r->diag);
}

static json_t *find_resource(json_t *config, const char *type, const char *name)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(config, "resources"), i, r) {
		if (!strcmp(json_string_value(json_object_get(r, "type")), type) &&
		    !strcmp(json_string_value(json_object_get(r, "name")), name))
			return r;
	}
	return NULL;
}

static json_t *find_named(json_t *array, const char *name)
{
	json_t *e;
	size_t i;

	json_array_foreach(array, i, e)
		if (!strcmp(json_string_value(json_object_get(e, "name")), name))
			return e;
	return NULL;
}

static json_t *props(json_t *resource)
{
	return json_object_get(resource, "properties");
}

static bool text_contains(json_t *v, const char *needle)
{
	char *text = json_dumps(v, JSON_COMPACT);
	bool found = text && strstr(text, needle);

	free(text);
	return found;
}

#define NET "Microsoft.Network/"

static void arm_template_evaluates_folds_and_expands(void **state)
{
	const char *files[] = { DATA "template.json", NULL };
	struct run r = import_files(files, NULL);
	json_t *hub, *subnets, *shared, *nsg, *rules;

	assert_int_equal(r.rc, 0);
	hub = find_resource(r.config, NET "virtualNetworks", "lab-hub");
	assert_non_null(hub);
	/* "shared" is inline and again a top-level child resource: one subnet, merged. */
	subnets = json_object_get(props(hub), "subnets");
	assert_int_equal(json_array_size(subnets), 2);
	shared = props(find_named(subnets, "shared"));
	assert_non_null(json_object_get(shared, "networkSecurityGroup"));
	assert_non_null(json_object_get(shared, "routeTable"));
	/* The nested child with a short type and name is folded in; "true" became true. */
	assert_true(json_is_true(json_object_get(props(find_named(json_object_get(props(hub),
		"virtualNetworkPeerings"), "to-apps")), "allowVirtualNetworkAccess")));
	/* Copy loop over the spoke VNets, with copyIndex() in names and prefixes. */
	assert_non_null(find_resource(r.config, NET "virtualNetworks", "apps"));
	assert_true(text_contains(find_resource(r.config, NET "virtualNetworks", "data"),
				  "\"10.2.1.0/24\""));
	/* Property copy loop plus a parent/child rule; priorities are ints. */
	nsg = find_resource(r.config, NET "networkSecurityGroups", "lab-nsg");
	rules = json_object_get(props(nsg), "securityRules");
	assert_int_equal(json_array_size(rules), 3);
	assert_int_equal(json_integer_value(json_object_get(props(find_named(rules, "allow-443")),
							    "priority")), 101);
	assert_int_equal(json_integer_value(json_object_get(props(find_named(rules, "deny-rdp")),
							    "priority")), 4000);
	assert_string_equal(json_string_value(json_object_get(props(find_named(rules, "allow-80")),
							      "description")), "[web] inbound");
	/* enableBgp "false" is a bool. */
	assert_true(json_is_false(json_object_get(props(find_resource(r.config,
		NET "virtualNetworkGateways", "lab-vpngw")), "enableBgp")));
	run_free(&r);
}

static void references_are_full_ids(void **state)
{
	const char *files[] = { DATA "template.json", NULL };
	struct run r = import_files(files, NULL);
	json_t *shared = props(find_named(json_object_get(props(find_resource(r.config,
		NET "virtualNetworks", "lab-hub")), "subnets"), "shared"));

	assert_string_equal(json_string_value(json_object_get(json_object_get(shared,
		"networkSecurityGroup"), "id")),
		"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
		"Microsoft.Network/networkSecurityGroups/lab-nsg");
	run_free(&r);
}

static void unsupported_expression_is_left_out_with_its_path(void **state)
{
	const char *files[] = { DATA "template.json", NULL };
	struct run r = import_files(files, NULL);
	json_t *route = find_named(json_object_get(props(find_resource(r.config, NET "routeTables",
		"to-firewall")), "routes"), "default-via-firewall");

	assert_non_null(route); /* the route is kept ... */
	assert_null(json_object_get(props(route), "nextHopIpAddress")); /* ... without it */
	assert_non_null(strstr(r.diag, "resources[5].properties.routes[0].properties."
				       "nextHopIpAddress: reference()"));
	assert_non_null(strstr(r.diag, "left out"));
	run_free(&r);
}

static void conditions_decide_what_is_deployed(void **state)
{
	const char *files[] = { DATA "template.json", NULL };
	const char *params[] = { "deployBastion", "true", NULL };
	struct run r = import_files(files, NULL);

	assert_non_null(find_resource(r.config, NET "localNetworkGateways", "onprem"));
	assert_null(strstr(r.diag, "bastionHosts"));
	run_free(&r);
	r = import_files(files, params);
	assert_null(find_resource(r.config, NET "localNetworkGateways", "onprem"));
	assert_non_null(strstr(r.diag, "1 Microsoft.Network/bastionHosts"));
	run_free(&r);
}

static void param_overrides_default_value(void **state)
{
	const char *files[] = { DATA "template.json", NULL };
	const char *params[] = { "prefix", "prod", "spokeCount", "1", "vpnKey", "s3cret", NULL };
	struct run r = import_files(files, params);
	json_t *connection;

	assert_int_equal(r.rc, 0);
	assert_non_null(find_resource(r.config, NET "virtualNetworks", "prod-hub"));
	assert_null(find_resource(r.config, NET "virtualNetworks", "data")); /* count 1 */
	connection = find_resource(r.config, NET "connections", "to-onprem");
	assert_string_equal(json_string_value(json_object_get(props(connection), "sharedKey")),
			    "s3cret");
	assert_null(strstr(r.diag, "vpnKey"));
	run_free(&r);
}

static void secure_parameter_without_value_is_placeholder_and_warning(void **state)
{
	const char *files[] = { DATA "template.json", NULL };
	struct run r = import_files(files, NULL);
	json_t *connection = find_resource(r.config, NET "connections", "to-onprem");

	assert_string_equal(json_string_value(json_object_get(props(connection), "sharedKey")),
			    "FILL-IN");
	assert_non_null(strstr(r.diag, "parameter 'vpnKey' (securestring) has no value"));
	run_free(&r);
}

static void unmodeled_resources_are_one_summary_line(void **state)
{
	const char *files[] = { DATA "template.json", NULL };
	struct run r = import_files(files, NULL);
	const char *line = strstr(r.diag, "import: not modeled, left out: ");
	int lines = 0;

	assert_non_null(line);
	assert_non_null(strstr(line, "2 Microsoft.Compute/virtualMachines, "
				     "1 Microsoft.Network/publicIPAddresses\n"));
	for (const char *p = r.diag; (p = strstr(p, "not modeled")); p++)
		lines++;
	assert_int_equal(lines, 1);
	/* The VMs' own use of the secret parameter is not reported: they are left out. */
	run_free(&r);
}

/* A network watcher's flow log becomes gateway.flowLogs, into the default directory. */
static void flow_log_resources_become_the_gateways_flow_logs(void **state)
{
	const char *files[] = { DATA "flow-logs.json", NULL }, *plain[] = { DATA "template.json", NULL };
	struct run r = import_files(files, NULL);
	json_t *fl;

	assert_int_equal(r.rc, 0);
	fl = json_object_get(json_object_get(r.config, "gateway"), "flowLogs");
	assert_non_null(fl);
	assert_true(json_is_true(json_object_get(fl, "enabled")));
	assert_string_equal(json_string_value(json_object_get(fl, "directory")), "/var/log/vnet-xdp/flows");
	assert_non_null(strstr(r.diag, "import: gateway.flowLogs from 1 flow log resource ("));
	assert_non_null(strstr(r.diag, "1 Microsoft.Network/networkWatchers/flowLogs"));
	run_free(&r);
	r = import_files(plain, NULL);
	assert_null(json_object_get(json_object_get(r.config, "gateway"), "flowLogs"));
	run_free(&r);
}

static void public_ips_kept_only_when_a_gateway_uses_them(void **state)
{
	const char *files[] = { DATA "template.json", NULL };
	struct run r = import_files(files, NULL);
	json_t *pip = find_resource(r.config, NET "publicIPAddresses", "lab-gw-pip");

	assert_non_null(pip);
	assert_non_null(json_object_get(pip, "sku"));
	assert_null(find_resource(r.config, NET "publicIPAddresses", "lab-vm-pip"));
	run_free(&r);
}

static void gateway_section_names_every_vnet(void **state)
{
	const char *files[] = { DATA "template.json", NULL };
	struct run r = import_files(files, NULL);
	json_t *gateway = json_object_get(r.config, "gateway");
	json_t *interfaces = json_object_get(gateway, "interfaces");
	json_t *vnets = json_object_get(gateway, "virtualNetworks");
	json_t *last = json_array_get(interfaces, json_array_size(interfaces) - 1);

	assert_string_equal(json_string_value(json_object_get(gateway, "name")), "gw1");
	assert_int_equal(json_array_size(vnets), 3);
	assert_int_equal(json_array_size(interfaces), 4);
	assert_string_equal(json_string_value(json_object_get(last, "role")), "uplink");
	assert_string_equal(json_string_value(json_object_get(json_array_get(interfaces, 0),
							      "name")), "FILL-IN");
	assert_non_null(find_named(vnets, "lab-hub"));
	run_free(&r);
}

static void rest_example_prefers_200_and_merges_the_request(void **state)
{
	const char *files[] = { DATA "rest-example.json", NULL };
	struct run r = import_files(files, NULL);
	json_t *rt = find_resource(r.config, NET "routeTables", "spoke-rt");

	assert_int_equal(r.rc, 0);
	assert_non_null(rt);
	/* 201 says false and no routes; 200 wins. */
	assert_true(json_is_true(json_object_get(props(rt), "disableBgpRoutePropagation")));
	assert_int_equal(json_array_size(json_object_get(props(rt), "routes")), 1);
	/* Read-only noise and back references are dropped. */
	assert_false(text_contains(r.config, "provisioningState"));
	assert_false(text_contains(r.config, "etag"));
	assert_false(text_contains(r.config, "resourceGuid"));
	assert_null(json_object_get(props(rt), "subnets"));
	run_free(&r);
}

static void rest_value_list_takes_names_from_ids(void **state)
{
	const char *files[] = { DATA "rest-value-list.json", NULL };
	struct run r = import_files(files, NULL);
	json_t *hub = find_resource(r.config, NET "virtualNetworks", "hub");
	json_t *peerings = json_object_get(props(hub), "virtualNetworkPeerings");

	assert_int_equal(r.rc, 0);
	assert_int_equal(json_array_size(peerings), 2);
	assert_non_null(find_named(peerings, "hub-to-branch"));
	assert_null(json_object_get(props(find_named(peerings, "hub-to-spoke")), "peeringState"));
	assert_non_null(strstr(r.diag, "name 'renamed' differs from its id's 'hub-to-branch'"));
	assert_non_null(strstr(r.diag, "known only as the parent"));
	run_free(&r);
}

static void rest_body_wrapper_is_read(void **state)
{
	const char *files[] = { DATA "rest-body.json", NULL };
	struct run r = import_files(files, NULL);

	assert_int_equal(r.rc, 0);
	assert_non_null(find_resource(r.config, NET "localNetworkGateways", "branch-lng"));
	run_free(&r);
}

static void az_flattened_output_with_crlf_is_nested(void **state)
{
	const char *files[] = { DATA "az-vnet-list.json", DATA "az-nsg-show.json", NULL };
	struct run r = import_files(files, NULL);
	json_t *hub, *apps, *nsg, *ssh;

	assert_int_equal(r.rc, 0);
	hub = find_resource(r.config, NET "virtualNetworks", "hub");
	assert_non_null(hub);
	assert_non_null(json_object_get(props(hub), "addressSpace"));
	assert_null(json_object_get(hub, "location"));
	apps = find_named(json_object_get(props(hub), "subnets"), "apps");
	assert_string_equal(json_string_value(json_object_get(props(apps), "addressPrefix")),
			    "10.0.1.0/24");
	assert_null(json_object_get(props(apps), "natGateway")); /* null: unset */
	assert_null(json_object_get(apps, "id"));
	assert_non_null(find_resource(r.config, NET "virtualNetworks", "spoke"));
	nsg = find_resource(r.config, NET "networkSecurityGroups", "apps-nsg");
	ssh = find_named(json_object_get(props(nsg), "securityRules"), "ssh");
	assert_int_equal(json_integer_value(json_object_get(props(ssh), "priority")), 200);
	assert_int_equal(json_array_size(json_object_get(props(nsg), "defaultSecurityRules")), 1);
	assert_null(json_object_get(props(nsg), "subnets"));
	assert_false(text_contains(r.config, "resourceGroup\""));
	assert_false(text_contains(r.config, "etag"));
	run_free(&r);
}

static void output_is_sorted_and_stable(void **state)
{
	const char *files[] = { DATA "template.json", DATA "az-vnet-list.json",
				DATA "rest-example.json", NULL };
	struct run a = import_files(files, NULL), b = import_files(files, NULL);
	char *ta = json_dumps(a.config, JSON_INDENT(2)), *tb = json_dumps(b.config, JSON_INDENT(2));
	json_t *resources = json_object_get(a.config, "resources"), *prev = NULL, *r;
	size_t i;

	assert_string_equal(ta, tb);
	json_array_foreach(resources, i, r) {
		const char *keys[] = { "type", "name" };
		void *it = json_object_iter(r);

		for (size_t k = 0; k < 2; k++, it = json_object_iter_next(r, it))
			assert_string_equal(json_object_iter_key(it), keys[k]);
		if (prev) {
			int c = strcmp(json_string_value(json_object_get(prev, "type")),
				       json_string_value(json_object_get(r, "type")));

			assert_true(c < 0 || (c == 0 && strcmp(json_string_value(json_object_get(prev,
				"name")), json_string_value(json_object_get(r, "name"))) < 0));
		}
		prev = r;
	}
	free(ta);
	free(tb);
	run_free(&a);
	run_free(&b);
}

static void bad_input_is_an_input_error(void **state)
{
	char path[] = "/tmp/vnet-xdp-import-XXXXXX";
	int fd = mkstemp(path);
	const char *files[] = { path, NULL };
	const char *missing[] = { DATA "does-not-exist.json", NULL };
	struct run r;

	assert_true(fd >= 0);
	assert_true(write(fd, "{\"value\": [\n  {\"id\": 1,}\n]}", 26) == 26);
	close(fd);
	r = import_files(files, NULL);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.diag, ":2:")); /* line and column */
	run_free(&r);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(write(fd, "{\"hello\": 1}", 12) == 12);
	close(fd);
	r = import_files(files, NULL);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.diag, "neither a resource"));
	run_free(&r);
	r = import_files(missing, NULL);
	assert_int_equal(r.rc, 1);
	run_free(&r);
	unlink(path);
}

static int run_main(int argc, const char **argv)
{
	return import_main(argc, (char **)argv);
}

static void command_exit_codes_and_output_file(void **state)
{
	char out[] = "/tmp/vnet-xdp-import-out-XXXXXX";
	int fd = mkstemp(out);
	const char *no_files[] = { "import" };
	const char *bad_option[] = { "import", "--frobnicate", DATA "rest-body.json" };
	const char *bad_param[] = { "import", "--param", "novalue", DATA "rest-body.json" };
	const char *ok[] = { "import", DATA "rest-body.json", "-o", out };
	const char *missing[] = { "import", DATA "nope.json", "-o", out };
	json_t *written;
	FILE *saved;

	close(fd);
	saved = stderr;
	stderr = fopen("/dev/null", "w"); /* the usage text */
	assert_int_equal(run_main(1, no_files), 2);
	assert_int_equal(run_main(3, bad_option), 2);
	assert_int_equal(run_main(4, bad_param), 2);
	assert_int_equal(run_main(4, ok), 0);
	written = json_load_file(out, 0, NULL);
	assert_non_null(find_resource(written, NET "localNetworkGateways", "branch-lng"));
	json_decref(written);
	assert_int_equal(run_main(4, missing), 1);
	fclose(stderr);
	stderr = saved;
	unlink(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(arm_template_evaluates_folds_and_expands),
		cmocka_unit_test(references_are_full_ids),
		cmocka_unit_test(unsupported_expression_is_left_out_with_its_path),
		cmocka_unit_test(conditions_decide_what_is_deployed),
		cmocka_unit_test(param_overrides_default_value),
		cmocka_unit_test(secure_parameter_without_value_is_placeholder_and_warning),
		cmocka_unit_test(unmodeled_resources_are_one_summary_line),
		cmocka_unit_test(flow_log_resources_become_the_gateways_flow_logs),
		cmocka_unit_test(public_ips_kept_only_when_a_gateway_uses_them),
		cmocka_unit_test(gateway_section_names_every_vnet),
		cmocka_unit_test(rest_example_prefers_200_and_merges_the_request),
		cmocka_unit_test(rest_value_list_takes_names_from_ids),
		cmocka_unit_test(rest_body_wrapper_is_read),
		cmocka_unit_test(az_flattened_output_with_crlf_is_nested),
		cmocka_unit_test(output_is_sorted_and_stable),
		cmocka_unit_test(bad_input_is_an_input_error),
		cmocka_unit_test(command_exit_codes_and_output_file),
	};

	return cmocka_run_group_tests_name("import", tests, NULL, NULL);
}

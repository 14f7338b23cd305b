/* The ARM template expression evaluator: each function, nesting, property access,
 * copy loops, and errors that say where they are. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "import/arm_expr.h"

static const char template_text[] =
	"{\"parameters\": {"
	"  \"prefix\": {\"type\": \"string\", \"defaultValue\": \"lab\"},"
	"  \"count\": {\"type\": \"int\", \"defaultValue\": 3},"
	"  \"ports\": {\"type\": \"array\", \"defaultValue\": [\"80\", \"443\"]},"
	"  \"derived\": {\"type\": \"string\", \"defaultValue\": \"[concat(parameters('prefix'), '-x')]\"},"
	"  \"loop\": {\"type\": \"string\", \"defaultValue\": \"[parameters('loop')]\"},"
	"  \"secret\": {\"type\": \"securestring\"},"
	"  \"needed\": {\"type\": \"string\"},"
	"  \"neededInt\": {\"type\": \"int\"},"
	"  \"location\": {\"type\": \"string\", \"defaultValue\": \"[resourceGroup().location]\"}"
	"},"
	"\"variables\": {"
	"  \"Subnet3Prefix\": \"10.1.2.0/24\","
	"  \"later\": \"[variables('config').name]\","
	"  \"config\": {\"name\": \"[concat(parameters('prefix'), '-cfg')]\", \"list\": [{\"v\": 7}]},"
	"  \"broken\": \"[reference('x')]\","
	"  \"copy\": [{\"name\": \"subnetNames\", \"count\": 2,"
	"             \"input\": \"[concat('s', copyIndex('subnetNames'))]\"}]"
	"}}";

struct fixture {
	json_t *doc;
	json_t *overrides;
	struct arm_context *ctx;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->doc = json_loads(template_text, 0, NULL);
	f->overrides = json_pack("{s:s}", "count", "5");
	assert_non_null(f->doc);
	f->ctx = arm_context_new(f->doc, f->overrides);
	assert_non_null(f->ctx);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	arm_context_free(f->ctx);
	json_decref(f->doc);
	json_decref(f->overrides);
	free(f);
	return 0;
}

static json_t *eval_ok(struct fixture *f, const char *text)
{
	struct arm_error err;
	json_t *v = arm_eval_string(f->ctx, text, &err);

	if (!v)
		fail_msg("%s: %s (at %d)", text, err.message, err.position);
	return v;
}

static void assert_eval_string(struct fixture *f, const char *text, const char *expected)
{
	json_t *v = eval_ok(f, text);

	if (!json_is_string(v))
		fail_msg("%s: not a string", text);
	assert_string_equal(json_string_value(v), expected);
	json_decref(v);
}

static void assert_eval_int(struct fixture *f, const char *text, json_int_t expected)
{
	json_t *v = eval_ok(f, text);

	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), expected);
	json_decref(v);
}

static void assert_eval_bool(struct fixture *f, const char *text, bool expected)
{
	json_t *v = eval_ok(f, text);

	assert_true(json_is_boolean(v));
	assert_int_equal(json_is_true(v), expected);
	json_decref(v);
}

static struct arm_error eval_fails(struct fixture *f, const char *text)
{
	struct arm_error err;
	json_t *v = arm_eval_string(f->ctx, text, &err);

	if (v)
		fail_msg("%s: evaluated, an error was expected", text);
	return err;
}

static void plain_strings_are_themselves(void **state)
{
	struct fixture *f = *state;

	assert_eval_string(f, "10.0.0.0/16", "10.0.0.0/16");
	assert_eval_string(f, "[not closed", "[not closed");
	assert_eval_string(f, "", "");
}

static void double_bracket_escapes_a_literal_bracket(void **state)
{
	struct fixture *f = *state;

	assert_eval_string(f, "[[parameters('prefix')]", "[parameters('prefix')]");
	assert_eval_string(f, "[[web] inbound", "[web] inbound");
}

static void parameters_use_default_override_and_nested_default(void **state)
{
	struct fixture *f = *state;

	assert_eval_string(f, "[parameters('prefix')]", "lab");
	assert_eval_int(f, "[parameters('count')]", 5); /* --param count=5, converted to int */
	assert_eval_string(f, "[parameters('derived')]", "lab-x");
	assert_eval_string(f, "[parameters('PREFIX')]", "lab"); /* names are case-insensitive */
	assert_eval_string(f, "[parameters('location')]", ARM_LOCATION);
}

static void parameter_without_value_stands_in_and_warns(void **state)
{
	struct fixture *f = *state;
	json_t *warnings;

	assert_eval_string(f, "[parameters('secret')]", ARM_SECRET_PLACEHOLDER);
	assert_eval_string(f, "[parameters('needed')]", "needed");
	warnings = arm_context_take_warnings(f->ctx);
	assert_int_equal(json_array_size(warnings), 2);
	assert_non_null(strstr(json_string_value(json_array_get(warnings, 0)), "secret"));
	assert_non_null(strstr(json_string_value(json_array_get(warnings, 0)), "--param"));
	json_decref(warnings);
	assert_int_equal(eval_fails(f, "[parameters('neededInt')]").kind, ARM_ERROR_EVAL);
}

static void variables_resolve_lazily_case_insensitively(void **state)
{
	struct fixture *f = *state;

	assert_eval_string(f, "[variables('subnet3Prefix')]", "10.1.2.0/24");
	assert_eval_string(f, "[variables('later')]", "lab-cfg"); /* declared before config */
	assert_eval_string(f, "[variables('subnetNames')[1]]", "s1"); /* variable copy loop */
}

static void property_access_and_index(void **state)
{
	struct fixture *f = *state;

	assert_eval_string(f, "[variables('config').name]", "lab-cfg");
	assert_eval_int(f, "[variables('config').list[0].v]", 7);
	assert_eval_string(f, "[variables('config')['name']]", "lab-cfg");
	assert_eval_string(f, "[parameters('ports')[1]]", "443");
	assert_eval_string(f, "[resourceGroup().location]", ARM_LOCATION);
	assert_eval_string(f, "[resourceGroup().name]", ARM_RESOURCE_GROUP);
	assert_eval_string(f, "[subscription().subscriptionId]", ARM_SUBSCRIPTION_ID);
}

static void concat_joins_strings_and_arrays(void **state)
{
	struct fixture *f = *state;
	json_t *v;

	assert_eval_string(f, "[concat('a', 'b', 1, parameters('prefix'))]", "ab1lab");
	v = eval_ok(f, "[concat(parameters('ports'), createArray('22'))]");
	assert_int_equal(json_array_size(v), 3);
	assert_string_equal(json_string_value(json_array_get(v, 2)), "22");
	json_decref(v);
}

static void format_fills_placeholders(void **state)
{
	struct fixture *f = *state;

	assert_eval_string(f, "[format('{0}-vnet-{1}', 'hub', 2)]", "hub-vnet-2");
	assert_eval_string(f, "[format('{{literal}} {0:D}', 'x')]", "{literal} x");
	assert_int_equal(eval_fails(f, "[format('{1}', 'only')]").kind, ARM_ERROR_EVAL);
}

static void resource_id_builds_full_ids_in_each_segment_form(void **state)
{
	struct fixture *f = *state;
	const char *base = "/subscriptions/" ARM_SUBSCRIPTION_ID "/resourceGroups/" ARM_RESOURCE_GROUP
			   "/providers/Microsoft.Network/";
	char expected[512];

	snprintf(expected, sizeof(expected), "%svirtualNetworks/hub", base);
	assert_eval_string(f, "[resourceId('Microsoft.Network/virtualNetworks', 'hub')]", expected);
	assert_eval_string(f, "[resourceId('Microsoft.Network/virtualNetworks/', 'hub')]", expected);
	snprintf(expected, sizeof(expected), "%svirtualNetworks/hub/subnets/apps", base);
	assert_eval_string(f, "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'hub', "
			      "'apps')]", expected);
	assert_eval_string(f, "[resourceId('Microsoft.Network/virtualNetworks/subnets/', "
			      "'hub/apps')]", expected);
	assert_eval_string(f, "[resourceId('other-rg', 'Microsoft.Network/routeTables', 'rt')]",
			   "/subscriptions/" ARM_SUBSCRIPTION_ID "/resourceGroups/other-rg"
			   "/providers/Microsoft.Network/routeTables/rt");
	assert_eval_string(f, "[resourceId('sub9', 'rg9', 'Microsoft.Network/routeTables', 'rt')]",
			   "/subscriptions/sub9/resourceGroups/rg9/providers/Microsoft.Network/"
			   "routeTables/rt");
	assert_int_equal(eval_fails(f, "[resourceId('Microsoft.Network/virtualNetworks/subnets', "
				       "'hub')]").kind, ARM_ERROR_EVAL);
}

static void literals_and_nested_calls(void **state)
{
	struct fixture *f = *state;
	json_t *v;

	assert_eval_int(f, "[-12]", -12);
	assert_eval_string(f, "['it''s']", "it's");
	v = eval_ok(f, "[ ['a', 1, true]]"); /* "[[" would be the escape */
	assert_int_equal(json_array_size(v), 3);
	json_decref(v);
	assert_eval_string(f, "[ toUpper( concat( format('{0}', parameters('prefix')), "
			      "string(add(1, mul(2, 3))) ) ) ]", "LAB7");
	assert_eval_int(f, "[length(split('a,b;c', createArray(',', ';')))]", 3);
}

static void logic_and_comparison_functions(void **state)
{
	struct fixture *f = *state;

	assert_eval_bool(f, "[equals(parameters('prefix'), 'lab')]", true);
	assert_eval_bool(f, "[not(equals(1, 2))]", true);
	assert_eval_bool(f, "[and(true, false)]", false);
	assert_eval_bool(f, "[or(false, true())]", true);
	assert_eval_string(f, "[if(equals(1, 1), 'yes', 'no')]", "yes");
	assert_eval_bool(f, "[less(1, 2)]", true);
	assert_eval_bool(f, "[greaterOrEquals('b', 'a')]", true);
	assert_eval_bool(f, "[empty('')]", true);
	assert_eval_bool(f, "[contains(parameters('ports'), '443')]", true);
	assert_eval_bool(f, "[bool('true')]", true);
}

static void string_and_number_functions(void **state)
{
	struct fixture *f = *state;

	assert_eval_string(f, "[toLower('HuB')]", "hub");
	assert_eval_string(f, "[replace('a-b-c', '-', '/')]", "a/b/c");
	assert_eval_string(f, "[substring('gateway', 0, 4)]", "gate");
	assert_eval_string(f, "[trim('  x ')]", "x");
	assert_eval_string(f, "[first(parameters('ports'))]", "80");
	assert_eval_string(f, "[last('abc')]", "c");
	assert_eval_int(f, "[int('42')]", 42);
	assert_eval_int(f, "[sub(10, div(9, 3))]", 7);
	assert_eval_int(f, "[mod(7, 4)]", 3);
	assert_eval_string(f, "[string(true)]", "True");
	assert_eval_bool(f, "[startsWith('GatewaySubnet', 'gateway')]", true);
	assert_int_equal(eval_fails(f, "[div(1, 0)]").kind, ARM_ERROR_EVAL);
}

static void unique_string_is_stable_and_thirteen_characters(void **state)
{
	struct fixture *f = *state;
	json_t *a = eval_ok(f, "[uniqueString(resourceGroup().id)]");
	json_t *b = eval_ok(f, "[uniqueString(resourceGroup().id)]");
	json_t *c = eval_ok(f, "[uniqueString('other')]");

	assert_int_equal(json_string_length(a), 13);
	assert_true(json_equal(a, b));
	assert_false(json_equal(a, c));
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

static void copy_index_counts_innermost_or_named_loop(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(eval_fails(f, "[copyIndex()]").kind, ARM_ERROR_EVAL);
	arm_context_push_copy(f->ctx, "outer", 2);
	arm_context_push_copy(f->ctx, "inner", 5);
	assert_eval_int(f, "[copyIndex()]", 5);
	assert_eval_int(f, "[copyIndex(1)]", 6);
	assert_eval_int(f, "[copyIndex('outer')]", 2);
	assert_eval_int(f, "[copyIndex('OUTER', 10)]", 12);
	arm_context_pop_copy(f->ctx);
	arm_context_pop_copy(f->ctx);
}

static void unsupported_function_is_named_with_position(void **state)
{
	struct fixture *f = *state;
	struct arm_error err = eval_fails(f, "[concat('x', reference('fw').ipAddress)]");

	assert_int_equal(err.kind, ARM_ERROR_UNSUPPORTED);
	assert_int_equal(err.position, 14);
	assert_non_null(strstr(err.message, "reference()"));
	err = eval_fails(f, "[listKeys('a', '2020')]");
	assert_int_equal(err.kind, ARM_ERROR_UNSUPPORTED);
	err = eval_fails(f, "[variables('broken')]"); /* inside a variable: located at the use */
	assert_int_equal(err.kind, ARM_ERROR_UNSUPPORTED);
	assert_int_equal(err.position, 2);
	assert_non_null(strstr(err.message, "broken"));
}

static void syntax_errors_give_their_position(void **state)
{
	struct fixture *f = *state;
	struct arm_error err;

	err = eval_fails(f, "[concat('a', ]");
	assert_int_equal(err.kind, ARM_ERROR_SYNTAX);
	assert_int_equal(err.position, 14);
	err = eval_fails(f, "[concat('a)]");
	assert_int_equal(err.kind, ARM_ERROR_SYNTAX);
	assert_int_equal(err.position, 9);
	assert_non_null(strstr(err.message, "unterminated"));
	err = eval_fails(f, "[parameters('prefix') x]");
	assert_int_equal(err.kind, ARM_ERROR_SYNTAX);
	assert_int_equal(err.position, 23);
	err = eval_fails(f, "[prefix]");
	assert_int_equal(err.kind, ARM_ERROR_SYNTAX);
}

static void evaluation_errors_name_the_problem(void **state)
{
	struct fixture *f = *state;
	struct arm_error err;

	err = eval_fails(f, "[parameters('nope')]");
	assert_int_equal(err.kind, ARM_ERROR_EVAL);
	assert_non_null(strstr(err.message, "not declared"));
	err = eval_fails(f, "[parameters('loop')]");
	assert_non_null(strstr(err.message, "refers to itself"));
	err = eval_fails(f, "[parameters('ports')[5]]");
	assert_non_null(strstr(err.message, "outside the array"));
	err = eval_fails(f, "[variables('config').missing]");
	assert_non_null(strstr(err.message, "missing"));
	err = eval_fails(f, "[concat()]");
	assert_int_equal(err.kind, ARM_ERROR_EVAL);
}

struct leaf_log {
	char paths[4][128];
	int n;
};

static bool record_leaf(void *opaque, const char *path, const struct arm_error *err)
{
	struct leaf_log *log = opaque;

	if (log->n < 4)
		snprintf(log->paths[log->n++], sizeof(log->paths[0]), "%s", path);
	return true;
}

static void tree_leaves_out_what_cannot_be_evaluated(void **state)
{
	struct fixture *f = *state;
	json_t *tree = json_loads("{\"routes\": [{\"name\": \"r\", \"properties\": {"
				  "\"addressPrefix\": \"[parameters('prefix')]\","
				  "\"nextHopIpAddress\": \"[reference('fw').ip]\"}}]}", 0, NULL);
	struct leaf_log log = { .n = 0 };
	struct arm_error err;
	json_t *out = arm_eval_tree(f->ctx, tree, "properties", record_leaf, &log, &err);
	json_t *props = json_object_get(json_array_get(json_object_get(out, "routes"), 0),
					"properties");

	assert_non_null(out);
	assert_int_equal(log.n, 1);
	assert_string_equal(log.paths[0], "properties.routes[0].properties.nextHopIpAddress");
	assert_string_equal(json_string_value(json_object_get(props, "addressPrefix")), "lab");
	assert_null(json_object_get(props, "nextHopIpAddress"));
	json_decref(out);
	/* Without a handler the first error stops the walk. */
	assert_null(arm_eval_tree(f->ctx, tree, "properties", NULL, NULL, &err));
	assert_int_equal(err.kind, ARM_ERROR_UNSUPPORTED);
	json_decref(tree);
}

static void property_copy_loop_expands_into_an_array(void **state)
{
	struct fixture *f = *state;
	json_t *tree = json_loads("{\"copy\": [{\"name\": \"subnets\", \"count\": 3, \"input\": {"
				  "\"name\": \"[concat('s', copyIndex('subnets'))]\"}}],"
				  "\"other\": 1}", 0, NULL);
	struct arm_error err;
	json_t *out = arm_eval_tree(f->ctx, tree, "properties", NULL, NULL, &err);
	json_t *subnets = json_object_get(out, "subnets");

	assert_non_null(out);
	assert_null(json_object_get(out, "copy"));
	assert_int_equal(json_array_size(subnets), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(subnets, 2), "name")),
			    "s2");
	json_decref(out);
	json_decref(tree);
}

static void assert_eval_json(struct fixture *f, const char *text, const char *expected_json)
{
	json_t *v = eval_ok(f, text), *want = json_loads(expected_json, JSON_DECODE_ANY, NULL);
	char *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(want);
	if (!json_equal(v, want))
		fail_msg("%s: got %s, expected %s", text, got, expected_json);
	free(got);
	json_decref(v);
	json_decref(want);
}

/* As Azure documents them (template-functions-cidr): the examples of the docs. */
static void parse_cidr_gives_the_range_properties(void **state)
{
	assert_eval_json(*state, "[parseCidr('10.144.0.0/20')]",
		"{\"network\":\"10.144.0.0\",\"netmask\":\"255.255.240.0\","
		"\"broadcast\":\"10.144.15.255\",\"firstUsable\":\"10.144.0.1\","
		"\"lastUsable\":\"10.144.15.254\",\"cidr\":20}");
	assert_eval_json(*state, "[parseCidr('fdad:3236:5555::/48')]",
		"{\"network\":\"fdad:3236:5555::\",\"netmask\":\"ffff:ffff:ffff::\","
		"\"firstUsable\":\"fdad:3236:5555::\","
		"\"lastUsable\":\"fdad:3236:5555:ffff:ffff:ffff:ffff:ffff\",\"cidr\":48}");
	/* host bits given are masked off, as a network is */
	assert_eval_string(*state, "[parseCidr('10.1.2.3/24').network]", "10.1.2.0");
	assert_string_equal(eval_fails(*state, "[parseCidr('10.1.2.0')]").message,
			    "parseCidr(): '10.1.2.0' is not an address range in CIDR notation "
			    "(a.b.c.d/len or x:x::/len)");
	assert_string_equal(eval_fails(*state, "[parseCidr('10.1.2.0/33')]").message,
			    "parseCidr(): '10.1.2.0/33' is not an address range in CIDR notation "
			    "(a.b.c.d/len or x:x::/len)");
}

static void cidr_subnet_splits_a_range(void **state)
{
	assert_eval_string(*state, "[cidrSubnet('10.144.0.0/20', 24, 0)]", "10.144.0.0/24");
	assert_eval_string(*state, "[cidrSubnet('10.144.0.0/20', 24, 4)]", "10.144.4.0/24");
	assert_eval_string(*state, "[cidrSubnet('10.144.0.0/20', 20, 0)]", "10.144.0.0/20");
	assert_eval_string(*state, "[cidrSubnet('fdad:3236:5555::/48', 52, 1)]",
			   "fdad:3236:5555:1000::/52");
	assert_eval_string(*state, "[cidrSubnet('fdad:3236:5555::/48', 52, 4)]",
			   "fdad:3236:5555:4000::/52");
	assert_string_equal(eval_fails(*state, "[cidrSubnet('10.144.0.0/20', 24, 16)]").message,
			    "cidrSubnet(): subnet index 16 is outside the 16 subnets of /24 in "
			    "10.144.0.0/20");
	assert_string_equal(eval_fails(*state, "[cidrSubnet('10.144.0.0/20', 19, 0)]").message,
			    "cidrSubnet(): the new prefix length 19 is outside 20-32");
}

static void cidr_host_counts_usable_hosts_from_one(void **state)
{
	assert_eval_string(*state, "[cidrHost('10.144.3.0/24', 0)]", "10.144.3.1");
	assert_eval_string(*state, "[cidrHost('10.144.3.0/24', 4)]", "10.144.3.5");
	assert_eval_string(*state, "[cidrHost('10.144.3.0/24', 253)]", "10.144.3.254");
	assert_eval_string(*state, "[cidrHost('fdad:3236:5555:3000::/52', 0)]",
			   "fdad:3236:5555:3000::1");
	assert_string_equal(eval_fails(*state, "[cidrHost('10.144.3.0/24', 254)]").message,
			    "cidrHost(): host index 254 is outside the usable hosts of "
			    "10.144.3.0/24");
}

static void uri_combines_base_and_relative(void **state)
{
	assert_eval_string(*state, "[uri('http://contoso.org/firstpath/', 'myscript.sh')]",
			   "http://contoso.org/firstpath/myscript.sh");
	assert_eval_string(*state, "[uri('http://contoso.org/firstpath', 'myscript.sh')]",
			   "http://contoso.org/myscript.sh");
	assert_eval_string(*state, "[uri('http://contoso.org/firstpath/', '/myscript.sh')]",
			   "http://contoso.org/firstpath/myscript.sh");
	assert_eval_string(*state, "[uri('http://contoso.org', 'myscript.sh')]",
			   "http://contoso.org/myscript.sh");
}

static void array_and_string_functions_of_network_templates(void **state)
{
	assert_eval_json(*state, "[range(1, 3)]", "[1,2,3]");
	assert_eval_json(*state, "[union(createArray('a', 'b'), createArray('b', 'c'))]",
			 "[\"a\",\"b\",\"c\"]");
	assert_eval_json(*state, "[union(json('{\"a\":1,\"b\":2}'), json('{\"b\":3}'))]",
			 "{\"a\":1,\"b\":3}");
	assert_eval_int(*state, "[indexOf('test', 'T')]", 0);
	assert_eval_int(*state, "[lastIndexOf('abcabc', 'bc')]", 4);
	assert_eval_int(*state, "[indexOf('abc', 'z')]", -1);
	assert_eval_int(*state, "[indexOf(createArray('x', 'y'), 'y')]", 1);
	assert_eval_string(*state, "[padLeft('123', 6, '0')]", "000123");
	assert_eval_string(*state, "[padLeft(7, 3, '0')]", "007");
	assert_eval_string(*state, "[take('abcdef', 3)]", "abc");
	assert_eval_json(*state, "[skip(createArray(1, 2, 3), 2)]", "[3]");
	assert_eval_int(*state, "[min(createArray(5, 2, 9))]", 2);
	assert_eval_int(*state, "[max(5, 2, 9)]", 9);
	assert_eval_json(*state, "[array('x')]", "[\"x\"]");
	assert_eval_json(*state, "[cidrSubnet('10.0.0.0/16', 24, range(0, 3)[2])]",
			 "\"10.0.2.0/24\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(plain_strings_are_themselves, setup, teardown),
		cmocka_unit_test_setup_teardown(double_bracket_escapes_a_literal_bracket, setup, teardown),
		cmocka_unit_test_setup_teardown(parameters_use_default_override_and_nested_default, setup, teardown),
		cmocka_unit_test_setup_teardown(parameter_without_value_stands_in_and_warns, setup, teardown),
		cmocka_unit_test_setup_teardown(variables_resolve_lazily_case_insensitively, setup, teardown),
		cmocka_unit_test_setup_teardown(property_access_and_index, setup, teardown),
		cmocka_unit_test_setup_teardown(concat_joins_strings_and_arrays, setup, teardown),
		cmocka_unit_test_setup_teardown(format_fills_placeholders, setup, teardown),
		cmocka_unit_test_setup_teardown(resource_id_builds_full_ids_in_each_segment_form, setup, teardown),
		cmocka_unit_test_setup_teardown(literals_and_nested_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(logic_and_comparison_functions, setup, teardown),
		cmocka_unit_test_setup_teardown(string_and_number_functions, setup, teardown),
		cmocka_unit_test_setup_teardown(unique_string_is_stable_and_thirteen_characters, setup, teardown),
		cmocka_unit_test_setup_teardown(copy_index_counts_innermost_or_named_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(unsupported_function_is_named_with_position, setup, teardown),
		cmocka_unit_test_setup_teardown(syntax_errors_give_their_position, setup, teardown),
		cmocka_unit_test_setup_teardown(evaluation_errors_name_the_problem, setup, teardown),
		cmocka_unit_test_setup_teardown(tree_leaves_out_what_cannot_be_evaluated, setup, teardown),
		cmocka_unit_test_setup_teardown(property_copy_loop_expands_into_an_array, setup, teardown),
		cmocka_unit_test_setup_teardown(parse_cidr_gives_the_range_properties, setup, teardown),
		cmocka_unit_test_setup_teardown(cidr_subnet_splits_a_range, setup, teardown),
		cmocka_unit_test_setup_teardown(cidr_host_counts_usable_hosts_from_one, setup, teardown),
		cmocka_unit_test_setup_teardown(uri_combines_base_and_relative, setup, teardown),
		cmocka_unit_test_setup_teardown(array_and_string_functions_of_network_templates, setup, teardown),
	};

	return cmocka_run_group_tests_name("arm_expr", tests, NULL, NULL);
}

/* A gateway's name becomes a bpffs directory and file names under /run/vnet-xdp: the one
 * rule (user/lib/gateway_name.c) refuses every name that could reach outside them or be
 * another gateway's file, at the command line, in a config and in the paths made from it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "config/config.h"
#include "datapath/datapath.h"
#include "lib/gateway_name.h"
#include "compile/nsg.h"
#include "datapath/nsg_write.h"
#include "datapath/state.h"

/* "." and "..", a path, another gateway's files, hidden, empty, option-like, one too long,
 * and what a terminal or a shell would act on. */
static const char *const refused[] = {
	".", "..", "a/b", "../../../../tmp/victim", "/tmp/victim", "gw1.nsg-ids", "gw1.json",
	"gw1.lock", ".hidden", "", "-n", "_x", "gw 1", "gw\n1", "gw\x1b[2J", "gw$(id)", "gw*",
	"abcdefghijklmnop",
};

static void gateway_names_refused_are_dots_paths_hidden_empty_and_long(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		if (gateway_name_problem(refused[i]))
			continue;
		fail_msg("'%s' was taken for a gateway name", refused[i]);
	}
	assert_non_null(gateway_name_problem(NULL));
}

static void gateway_names_of_letters_digits_dash_underscore_are_taken(void **state)
{
	static const char *const taken[] = { "gw1", "g", "hub-gw_2", "GW", "7", "abcdefghijklmno" };

	(void)state;
	assert_int_equal(strlen("abcdefghijklmno"), GATEWAY_NAME_MAX);
	for (size_t i = 0; i < sizeof(taken) / sizeof(*taken); i++)
		assert_null(gateway_name_problem(taken[i]));
}

/* Every path made from a name is empty (refused by every system call) for a bad one. */
static void paths_from_a_bad_name_are_empty(void **state)
{
	char pin_dir[256], state_file[300], nsg_ids[300];

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		memset(pin_dir, 'x', sizeof(pin_dir));
		gateway_pin_dir(refused[i], pin_dir, sizeof(pin_dir));
		state_path(refused[i], state_file, sizeof(state_file));
		nsg_ids_path(refused[i], nsg_ids, sizeof(nsg_ids));
		assert_string_equal(pin_dir, "");
		assert_string_equal(state_file, "");
		assert_string_equal(nsg_ids, "");
	}
	gateway_pin_dir("gw1", pin_dir, sizeof(pin_dir));
	state_path("gw1", state_file, sizeof(state_file));
	nsg_ids_path("gw1", nsg_ids, sizeof(nsg_ids));
	assert_string_equal(pin_dir, VNET_XDP_PIN_ROOT "/gw1");
	assert_string_equal(state_file, STATE_ROOT "/gw1.json");
	assert_string_equal(nsg_ids, STATE_ROOT "/gw1.nsg-ids.json");
}

static void a_bad_name_on_the_command_line_is_one_line(void **state)
{
	char *text = NULL;
	size_t len = 0;
	int saved = dup(STDERR_FILENO);
	FILE *captured = tmpfile();

	(void)state;
	assert_non_null(captured);
	fflush(stderr);
	dup2(fileno(captured), STDERR_FILENO);
	assert_int_equal(gateway_name_check("down", "../../../../tmp/victim"), -EINVAL);
	assert_int_equal(gateway_name_check("down", NULL), 0);
	assert_int_equal(gateway_name_check("down", "gw1"), 0);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(captured);
	assert_true(getdelim(&text, &len, '\0', captured) > 0);
	fclose(captured);
	assert_string_equal(text, "vnet-xdp down: -n '../../../../tmp/victim' is not a gateway "
			    "name: only letters, digits, '-' and '_' are allowed\n");
	free(text);
}

static void a_config_naming_another_gateways_file_is_refused(void **state)
{
	static const char text[] =
		"{\"gateway\": {\"name\": \"gw1.nsg-ids\", \"interfaces\": [{\"name\": \"to-a\", "
		"\"virtualNetwork\": \"a\"}]},\n \"resources\": [\n"
		"{\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"a\", "
		"\"addressSpace\": {\"addressPrefixes\": [\"10.0.0.0/16\"]}}]}\n";
	struct config *cfg = NULL;
	char *problems = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&problems, &len);

	(void)state;
	assert_int_equal(config_load_string(text, "t.json", errors, &cfg), 1);
	fclose(errors);
	assert_null(cfg);
	assert_non_null(strstr(problems, "gateway.name: \"gw1.nsg-ids\" is not a gateway name: "
				"only letters, digits, '-' and '_' are allowed; allowed: 1 to 15 "
				"letters, digits, '-' and '_', starting with a letter or digit\n"));
	free(problems);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gateway_names_refused_are_dots_paths_hidden_empty_and_long),
		cmocka_unit_test(gateway_names_of_letters_digits_dash_underscore_are_taken),
		cmocka_unit_test(paths_from_a_bad_name_are_empty),
		cmocka_unit_test(a_bad_name_on_the_command_line_is_one_line),
		cmocka_unit_test(a_config_naming_another_gateways_file_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

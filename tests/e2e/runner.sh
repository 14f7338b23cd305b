#!/usr/bin/env bash
# The test runner's reading of cmocka (tests/cmocka.bash), on a binary built here whose
# tests pass, fail an assertion, skip, or fail their own or the group's setup as asked.
cd "$(dirname "$0")/../.."
. tests/lib.sh

WORK=$(mktemp -d /tmp/vnet-xdp-runner.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/sample.c" <<'C'
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>
static int wanted(const char *what) { const char *w = getenv("SAMPLE"); return w && strstr(w, what); }
static void passes(void **state) { assert_true(1); }
static void asserts(void **state) { assert_int_equal(wanted("assert") ? 1 : 2, 2); }
static void skips(void **state) { if (wanted("skip")) skip(); }
static int test_setup(void **state) { return wanted("test-setup") ? -1 : 0; }
static int group_setup(void **state) { return wanted("group-setup") ? -1 : 0; }
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(passes), cmocka_unit_test(asserts), cmocka_unit_test(skips),
		cmocka_unit_test_setup(passes, test_setup),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
C
if ! gcc -include string.h "$WORK/sample.c" -o "$WORK/sample" -lcmocka 2>"$WORK/cc.log"; then
	skip runner "cannot build a cmocka sample: $(head -1 "$WORK/cc.log")"
	exit 0
fi

# counts SAMPLE: "passed failed skipped" as the runner counts the sample run so.
counts() {
	(
		. tests/cmocka.bash
		passed=0 failed=0 skipped=0
		SAMPLE=$1 run_cmocka "$WORK/sample" >"$WORK/run.log"
		echo "$passed $failed $skipped"
	)
}

expect_counts() { # expect_counts SAMPLE "P F S"
	local got
	got=$(counts "$1")
	[ "$got" = "$2" ] || { echo "SAMPLE=$1: counted '$got', want '$2'"; cat "$WORK/run.log"; return 1; }
}

runner_counts_every_test_of_a_clean_run() { expect_counts "" "4 0 0"; }
runner_counts_a_failed_assertion_as_one_failure_and_keeps_the_passes() { expect_counts assert "3 1 0"; }
runner_counts_skips() { expect_counts skip "3 0 1"; }
runner_counts_a_failed_test_setup_as_a_failure() { expect_counts test-setup "3 1 0"; }
runner_counts_a_failed_assertion_and_a_failed_test_setup_apart() { expect_counts assert,test-setup "2 2 0"; }
runner_names_a_failed_group_setup() {
	expect_counts group-setup "0 1 0" && grep -q 'group setup failed, none of its tests ran' "$WORK/run.log"
}
runner_does_not_call_a_failed_assertion_a_setup_failure() {
	expect_counts assert "3 1 0" && ! grep -q 'setup failed' "$WORK/run.log"
}

run_case runner_counts_every_test_of_a_clean_run
run_case runner_counts_a_failed_assertion_as_one_failure_and_keeps_the_passes
run_case runner_counts_skips
run_case runner_counts_a_failed_test_setup_as_a_failure
run_case runner_counts_a_failed_assertion_and_a_failed_test_setup_apart
run_case runner_names_a_failed_group_setup
run_case runner_does_not_call_a_failed_assertion_a_setup_failure
exit 0

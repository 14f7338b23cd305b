# How tests/run.sh reads a cmocka binary's run (sourced; tests/e2e/runner.sh checks it on
# binaries it builds to pass, fail, skip and fail their setup). Adds to passed, failed
# and skipped, the runner's totals.

# count_cmocka LOG: a cmocka run's own summary: "[  PASSED  ] N test(s).", "[  SKIPPED ] N
# test(s)" and " N FAILED TEST(S)", which counts failed assertions and tests whose own
# setup failed alike ("[  ERROR   ]" lines belong to both, so they are not counted).
# cmocka_failed is what it counted of failures.
count_cmocka() {
	local log=$1 n
	n=$(grep -oP '^\[  PASSED  \] \K[0-9]+(?= test)' "$log" | awk '{s += $1} END {print s + 0}')
	passed=$((passed + n))
	n=$(grep -oP '^\[  SKIPPED \] \K[0-9]+(?= test)' "$log" | awk '{s += $1} END {print s + 0}')
	skipped=$((skipped + n))
	cmocka_failed=$(grep -oP '^ \K[0-9]+(?= FAILED TEST\(S\))' "$log" | awk '{s += $1} END {print s + 0}')
	failed=$((failed + cmocka_failed))
}

run_cmocka() {
	local bin=$1 log rc
	log=$(mktemp)
	echo "== $bin"
	"$bin" >"$log" 2>&1
	rc=$?
	cat "$log"
	if ! grep -q '^\[==========\] .* run\.$' "$log"; then
		echo "FAIL $bin: exited $rc before finishing"
		failed=$((failed + 1))
	elif grep -q '^\[  FAILED  \] GROUP SETUP' "$log"; then
		echo "FAIL $bin: its group setup failed, none of its tests ran"
		failed=$((failed + 1))
	else
		count_cmocka "$log"
		if grep -q '^\[  FAILED  \] GROUP TEARDOWN' "$log"; then
			echo "FAIL $bin: its group teardown failed"
			failed=$((failed + 1))
		elif [ "$rc" -ne 0 ] && [ "$cmocka_failed" -eq 0 ]; then
			echo "FAIL $bin: exited $rc with no failed test reported"
			failed=$((failed + 1))
		fi
	fi
	rm -f "$log"
}

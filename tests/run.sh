#!/usr/bin/env bash
# Runs every test suite and ends with one line: "N passed, N failed, N skipped".
#   unit    build/tests/unit/test_*    cmocka, user space only
#   bpf     build/tests/bpf/test_*     cmocka, the datapath's object loaded alone, maps
#                                      filled by the plan writers, BPF_PROG_TEST_RUN (seconds)
#   packet  build/tests/packet/test_*  cmocka, BPF_PROG_TEST_RUN on a real gateway
#   e2e     tests/e2e/*.sh             real traffic through namespaces
#   vm      tests/vm/*.sh              in a QEMU guest on Debian's kernel (ESP, xfrm
#                                      interfaces), one guest per script: scripts/vm/run.sh
#   sanitize build-san/tests/unit/*    the unit tests again, built with ASan and UBSan
#   fuzz    tests/fuzz/run.sh          libFuzzer on the config reader and the importer
# A suite may be picked: tests/run.sh unit packet
set -uo pipefail
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
export VNET_XDP=$PWD/$BUILD/vnet-xdp

passed=0 failed=0 skipped=0
suites=${*:-unit bpf packet e2e vm sanitize fuzz}

. tests/cmocka.bash

run_shell() { # run_shell SCRIPT [RUNNER]: RUNNER (default bash) runs SCRIPT
	local script=$1 runner=${2:-bash} log rc
	log=$(mktemp)
	echo "== $script"
	$runner "$script" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	# 77: skipped as a whole (e.g. no qemu), said so on a SKIP line
	if [ "$rc" -eq 77 ] && grep -q '^SKIP ' "$log"; then
		:
	elif [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$log"; then
		echo "FAIL $script: exited $rc before finishing"
		failed=$((failed + 1))
	fi
	passed=$((passed + $(grep -c '^PASS ' "$log")))
	failed=$((failed + $(grep -c '^FAIL ' "$log")))
	skipped=$((skipped + $(grep -c '^SKIP ' "$log")))
	rm -f "$log"
}

for suite in $suites; do
	case $suite in
	unit | bpf | packet)
		for bin in "$BUILD"/tests/"$suite"/test_*; do
			[ -x "$bin" ] && run_cmocka "$bin"
		done
		;;
	sanitize)
		echo "== building the unit tests with ASan and UBSan"
		if make -s SANITIZE=1 all >/dev/null; then
			for bin in build-san/tests/unit/test_*; do
				[ -x "$bin" ] && run_cmocka "$bin"
			done
		else
			echo "FAIL sanitize: the sanitizer build failed"
			failed=$((failed + 1))
		fi
		;;
	fuzz)
		run_shell tests/fuzz/run.sh
		;;
	e2e)
		for script in tests/e2e/*.sh; do
			[ -f "$script" ] && run_shell "$script"
		done
		;;
	vm)
		for script in tests/vm/*.sh; do
			[ "$script" = tests/vm/lib.sh ] && continue
			[ -f "$script" ] && run_shell "$script" scripts/vm/run.sh
		done
		;;
	*) echo "unknown suite $suite"; exit 2 ;;
	esac
done

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

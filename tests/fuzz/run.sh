#!/usr/bin/env bash
# Builds the libFuzzer targets with ASan and UBSan and runs each for a bounded time,
# seeded with the project's own JSON fixtures and, where present, ../shared/azure-samples.
#   FUZZ_SECONDS  time per target (default 60)
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh

SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
OUT=build-fuzz
SOURCES="user/config/config.c user/config/json.c user/config/network.c user/config/security.c
	 user/config/vpn.c user/config/vpn_client.c user/config/binding.c user/config/express_route.c user/config/unenforced.c user/config/groups.c user/lib/gateway_name.c user/lib/private_file.c user/lib/path_name.c user/import/import.c user/import/arm.c
	 user/import/model.c user/import/deploy.c user/lib/local_interfaces.c user/import/arm_expr.c user/import/arm_cidr.c
	 user/lib/cli_usage.c"
CFLAGS="-g -O1 -std=gnu11 -D_GNU_SOURCE -Iheaders -Iuser -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer"

mkdir -p "$OUT"
if ! command -v clang >/dev/null; then
	skip fuzz_targets "clang is not installed"
	exit 0
fi

seed_corpus() { # the project's fixtures, plus the shared Azure samples when beside us
	local dir=$1
	rm -rf "$dir"
	mkdir -p "$dir"
	cp tests/data/import/*.json tests/data/import/shapes/*.json "$dir"/ 2>/dev/null
	cp tests/data/config/*.json "$dir"/ 2>/dev/null
	cp tests/data/fuzz/* "$dir"/ 2>/dev/null # inputs that once crashed or hung a target
	if [ -d ../shared/azure-samples ]; then
		cp ../shared/azure-samples/*.json "$dir"/
	else
		echo "note: ../shared/azure-samples is absent; seeding with the project's fixtures only"
	fi
	# the demo config, a complete valid one
	bash -c '. scripts/topology.sh; topology_config fuzz' >"$dir/demo.json" 2>/dev/null
}

# What a clean clone's log needs to reproduce a finding: the sanitizer's report from its
# first line, and the input itself when it is small enough to paste.
report_finding() {
	local log=$1 dir=$2 input
	grep -m1 -A30 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|ALARM' "$log" |
		grep -vE '^ +#[0-9]+ .* in (fuzzer::|__libc|_start|main )'
	input=$(ls -t "$dir"/* 2>/dev/null | head -1)
	if [ -n "$input" ] && [ "$(stat -c %s "$input")" -le 4096 ]; then
		echo "the input, base64 (add it to tests/data/fuzz/ once fixed):"
		base64 -w 100 "$input"
	fi
}

for target in config import; do
	name=fuzz_${target}_reader_survives_arbitrary_input
	[ $target = import ] && name=fuzz_importer_survives_arbitrary_input
	# shellcheck disable=SC2086
	if ! clang $CFLAGS tests/fuzz/fuzz_$target.c $SOURCES -o "$OUT/fuzz_$target" -ljansson \
		>"$OUT/build_$target.log" 2>&1; then
		cat "$OUT/build_$target.log"
		fail "$name" "the fuzz target does not build"
		continue
	fi
	seed_corpus "$OUT/corpus_$target"
	mkdir -p "$OUT/crashes_$target"
	if "$OUT/fuzz_$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
		-rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$OUT/crashes_$target/" \
		-print_final_stats=1 "$OUT/corpus_$target" >"$OUT/run_$target.log" 2>&1; then
		pass "$name: $(grep -oP 'stat::number_of_executed_units: *\K[0-9]+' "$OUT/run_$target.log") runs in ${SECONDS_PER_TARGET}s"
	else
		report_finding "$OUT/run_$target.log" "$OUT/crashes_$target"
		fail "$name" "see $OUT/crashes_$target/"
	fi
done

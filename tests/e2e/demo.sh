#!/usr/bin/env bash
# End to end: `make demo`'s script shows the peering semantics and tears everything down;
# with --keep it leaves the gateway and the namespaces running. Run under this test's own
# namespace prefix and gateway name, so a user's demo and other suites are left alone.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_demo vxdt demotest
export DEMO_PREFIX=$PREFIX DEMO_GATEWAY=$GATEWAY
LOG=$WORK/demo.log
e2e_cleanup() { # the config a kept demo leaves for its user
	rm -f $(grep -o '/tmp/vnet-xdp-demo\.[A-Za-z0-9]*\.json' "$LOG" 2>/dev/null)
}

demo_shows_the_peering_semantics_and_cleans_up() {
	timeout 240 bash scripts/demo.sh >"$LOG" 2>&1 || { tail -30 "$LOG"; return 1; }
	grep -q 'demo: peering semantics as expected' "$LOG" || return 1
	grep -Eq 'ping hub -> spoke1 .* ok ' "$LOG" &&
		grep -Eq 'ping spoke1 -> spoke2 \(10\.12\.1\.4\) +refused' "$LOG" &&
		grep -Eq 'TCP 1 MiB spoke2 -> hub over IPv6 +ok' "$LOG" &&
		grep -Eq 'TCP spoke1 -> spoke2 +refused' "$LOG" || { cat "$LOG"; return 1; }
	grep -Eq '^  hub -> spoke1 +[1-9][0-9]* packets' "$LOG" || { echo "no peering counters"; return 1; }
	[ -z "$(ip netns list | grep "^$PREFIX-")" ] || { echo "namespaces left"; return 1; }
	[ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY ] || { echo "pins left"; return 1; }
}

demo_keep_leaves_it_running() {
	timeout 240 bash scripts/demo.sh --keep >"$LOG" 2>&1 || { tail -30 "$LOG"; return 1; }
	grep -q 'left running (--keep)' "$LOG" || return 1
	gw status -n $GATEWAY -j | jq -e '.[0].interfaces | length == 4' >/dev/null || return 1
	vm hub ping -c 2 -i 0.2 -W 1 10.11.1.4 >/dev/null || return 1
	! vm spoke1 ping -c 1 -W 1 10.12.1.4 >/dev/null
}

run_case demo_shows_the_peering_semantics_and_cleans_up
run_case demo_keep_leaves_it_running

#!/usr/bin/env bash
# Coexistence with other XDP programs through libxdp's dispatcher. On Debian's kernel
# libxdp can use freplace, so each gateway interface runs libxdp's dispatcher, which calls
# our program and any other program loaded through libxdp (xdp-filter, xdp-loader), in
# the order of their priorities (on the host's kernel the dispatcher fails and libxdp
# attaches ours directly). `reload` swaps our program inside the dispatcher under
# traffic, losing nothing and keeping the others in their places; `down` takes ours out
# and leaves the others running.
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
vm_enter "$@"
. scripts/topology.sh

P=vxdsp
GATEWAY=dsp
CFG=$(mktemp /tmp/$P.XXXXXX.json)
PING=$(mktemp /tmp/$P.XXXXXX.ping)
OTHER_OBJ=$(ls /usr/lib/*/bpf/xdpfilt_alw_all.o /usr/lib/bpf/xdpfilt_alw_all.o 2>/dev/null | head -1)
gw() { in_ns $P-gw "$VNET_XDP" "$@"; }
program_names() { # the XDP program each bound interface runs
	local i
	for i in to-hub to-spoke1 to-spoke2 uplink0; do
		ip -n $P-gw -d -j link show $i | jq -r '.[0].xdp.prog.name // "none"'
	done | sort -u | tr '\n' ' '
}
components() { # components IFACE: the programs in IFACE's dispatcher, in running order
	in_ns $P-gw xdp-loader status "$1" | awk '$1 == "=>" { printf "%s ", $3 }'
}
# passed PINDIR: packets the xdp-filter program whose maps are pinned in PINDIR passed on
# (its own per-action counters, XDP_PASS's record summed over the CPUs, read raw: the
# record's BTF has two unnamed unions, which a JSON reader cannot tell apart; the kernel's
# run_cnt does not count a dispatcher's components)
passed() {
	bpftool -j map dump pinned "$1/xdp_stats_map" | python3 -c '
import json, sys
raw = lambda b: int.from_bytes(bytes(int(x, 16) for x in b), "little")
print(sum(raw(v["value"][:8]) for e in json.load(sys.stdin) if raw(e["key"]) == 2
          for v in e["values"]))'
}
HUB_PINS=/sys/fs/bpf/xdp-filter
SPOKE_PINS=/sys/fs/bpf/$P-other

set_up() {
	vm_modules_load || return 1
	[ -n "$OTHER_OBJ" ] || { echo "xdp-tools' xdpfilt_alw_all.o is not installed"; return 1; }
	topology_down $P
	topology_up $P || return 1
	topology_config $GATEWAY >"$CFG"
}

# xdp-filter (priority 10, before ours) is on to-hub before the gateway comes up; a
# program loaded with xdp-loader joins to-spoke1 after `up`.
up_joins_the_programs_already_there() {
	in_ns $P-gw xdp-filter load to-hub || return 1
	gw up -c "$CFG" || return 1
	echo "programs after up: $(program_names); to-hub runs: $(components to-hub)"
	[ "$(program_names)" = "xdp_dispatcher " ] || return 1
	[ "$(components to-hub)" = "xdpfilt_alw_all xdp_gateway " ] || return 1
	in_ns $P-gw xdp-loader load -p $SPOKE_PINS to-spoke1 "$OTHER_OBJ" || return 1
	echo "to-spoke1 runs: $(components to-spoke1)"
	[ "$(components to-spoke1)" = "xdpfilt_alw_all xdp_gateway " ]
}

reloads_under_ping_lose_nothing_and_keep_the_others() {
	local i sent got hub0 spoke0 hub1 spoke1
	hub0=$(passed $HUB_PINS) spoke0=$(passed $SPOKE_PINS)
	in_ns $P-hub ping -i 0.05 -c 200 -W 1 10.11.1.4 >"$PING" &
	local pid=$!
	sleep 0.5
	for i in 1 2 3 4 5; do
		gw reload -c "$CFG" >/dev/null || { echo "reload $i failed"; wait $pid; return 1; }
		echo "after reload $i: $(program_names); to-hub: $(components to-hub);" \
			"to-spoke1: $(components to-spoke1); to-spoke2: $(components to-spoke2)"
		[ "$(program_names)" = "xdp_dispatcher " ] &&
			[ "$(components to-hub)" = "xdpfilt_alw_all xdp_gateway " ] &&
			[ "$(components to-spoke1)" = "xdpfilt_alw_all xdp_gateway " ] &&
			[ "$(components to-spoke2)" = "xdp_gateway " ] || { wait $pid; return 1; }
	done
	wait $pid
	sent=$(grep -oP '\d+(?= packets transmitted)' "$PING")
	got=$(grep -oP '\d+(?= received)' "$PING")
	hub1=$(passed $HUB_PINS) spoke1=$(passed $SPOKE_PINS)
	echo "ping: $sent sent, $got received; xdp-filter on to-hub passed $((hub1 - hub0))" \
		"packets, the xdp-loader program on to-spoke1 $((spoke1 - spoke0))"
	[ "$sent" = 200 ] && [ "$got" = 200 ] || return 1
	[ $((hub1 - hub0)) -ge 200 ] && [ $((spoke1 - spoke0)) -ge 200 ] || return 1
	[ "$(gw status -n $GATEWAY -j | jq -r '[.[0].interfaces[].attached] | all')" = true ]
}

down_leaves_the_other_programs_running() {
	local before
	gw down -n $GATEWAY || return 1
	echo "after down: to-hub: $(components to-hub); to-spoke1: $(components to-spoke1);" \
		"to-spoke2 runs $(ip -n $P-gw -d -j link show to-spoke2 | jq -r '.[0].xdp.prog.name // "none"')"
	[ "$(components to-hub)" = "xdpfilt_alw_all " ] &&
		[ "$(components to-spoke1)" = "xdpfilt_alw_all " ] || return 1
	[ "$(ip -n $P-gw -d -j link show to-spoke2 | jq -r '.[0].xdp.prog.name // "none"')" = none ] ||
		return 1
	before=$(passed $HUB_PINS)
	in_ns $P-hub ping -c 3 -i 0.2 -W 1 10.10.0.1 >/dev/null 2>&1
	echo "xdp-filter on to-hub passed $(($(passed $HUB_PINS) - before)) packets after down"
	[ "$(passed $HUB_PINS)" -gt "$before" ]
}

nothing_left_once_the_others_go() {
	in_ns $P-gw xdp-filter unload to-hub >/dev/null || return 1
	in_ns $P-gw xdp-loader unload --all to-spoke1 >/dev/null || return 1
	[ "$(program_names)" = "none " ] || { echo "left: $(program_names)"; return 1; }
	! ls -d /sys/fs/bpf/xdp/dispatch-* 2>/dev/null || { echo "libxdp pins left"; return 1; }
}

if set_up; then
	run_case up_joins_the_programs_already_there
	run_case reloads_under_ping_lose_nothing_and_keep_the_others
	run_case down_leaves_the_other_programs_running
	run_case nothing_left_once_the_others_go
else
	fail reload_dispatcher_setup "the topology could not be built in the guest"
fi
gw down -n $GATEWAY >/dev/null 2>&1
topology_down $P
rm -rf "$CFG" "$PING" "$SPOKE_PINS"

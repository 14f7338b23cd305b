#!/usr/bin/env bash
# Reload where libxdp attaches through its dispatcher. On Debian's kernel libxdp can use
# freplace, so `up` leaves each interface running libxdp's dispatcher, which calls our
# program (on the host's kernel the dispatcher fails and libxdp attaches ours directly).
# `reload` must still swap atomically under traffic: the first reload swaps the
# dispatcher itself for the new program, later ones swap ours; `down` leaves neither
# XDP nor libxdp's pins behind.
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
vm_enter "$@"
. scripts/topology.sh

P=vxdsp
GATEWAY=dsp
CFG=$(mktemp /tmp/$P.XXXXXX.json)
PING=$(mktemp /tmp/$P.XXXXXX.ping)
gw() { in_ns $P-gw "$VNET_XDP" "$@"; }
program_names() { # the XDP program each bound interface runs
	local i
	for i in to-hub to-spoke1 to-spoke2 uplink0; do
		ip -n $P-gw -d -j link show $i | jq -r '.[0].xdp.prog.name // "none"'
	done | sort -u | tr '\n' ' '
}

set_up() {
	vm_modules_load || return 1
	topology_down $P
	topology_up $P || return 1
	topology_config $GATEWAY >"$CFG"
}

up_runs_the_dispatcher() {
	gw up -c "$CFG" || return 1
	echo "programs after up: $(program_names)"
	[ "$(program_names)" = "xdp_dispatcher " ]
}

reloads_under_ping_lose_nothing() {
	local i sent got
	in_ns $P-hub ping -i 0.05 -c 200 -W 1 10.11.1.4 >"$PING" &
	local pid=$!
	sleep 0.5
	for i in 1 2 3 4; do
		gw reload -c "$CFG" >/dev/null || { echo "reload $i failed"; wait $pid; return 1; }
		echo "programs after reload $i: $(program_names)"
		[ "$(program_names)" = "xdp_gateway " ] || { wait $pid; return 1; }
	done
	wait $pid
	sent=$(grep -oP '\d+(?= packets transmitted)' "$PING")
	got=$(grep -oP '\d+(?= received)' "$PING")
	echo "ping: $sent sent, $got received"
	[ "$sent" = 200 ] && [ "$got" = 200 ] || return 1
	[ "$(gw status -n $GATEWAY -j | jq -r '[.[0].interfaces[].attached] | all')" = true ]
}

down_leaves_nothing() {
	gw down -n $GATEWAY || return 1
	[ "$(program_names)" = "none " ] || { echo "left: $(program_names)"; return 1; }
	! ls -d /sys/fs/bpf/xdp/dispatch-* 2>/dev/null || { echo "libxdp pins left"; return 1; }
}

if set_up; then
	run_case up_runs_the_dispatcher
	run_case reloads_under_ping_lose_nothing
	run_case down_leaves_nothing
else
	fail reload_dispatcher_setup "the topology could not be built in the guest"
fi
gw down -n $GATEWAY >/dev/null 2>&1
topology_down $P
rm -f "$CFG" "$PING"

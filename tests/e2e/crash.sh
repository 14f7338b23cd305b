#!/usr/bin/env bash
# End to end: `up` and `down` killed (SIGKILL, as an OOM kill or `kill -9` would) in the
# middle of their work. The next command finds the half-done work in bpffs and the state
# file and finishes it: nothing is left attached or pinned by accident, and IP forwarding
# goes back to what it was before the first `up`. (A reload killed midway is in
# reload.sh, `serve` killed under traffic in metrics.sh.)
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_crash vxcrash crash
e2e_topology "$WORK/gw.json"
in_ns $PREFIX-gw sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0

IFACES="to-hub to-spoke1 to-spoke2 uplink0"
attached_count() {
	local n=0 i
	for i in $IFACES; do
		xdp_attached $i && n=$((n + 1))
	done
	echo $n
}
forwarding() { in_ns $PREFIX-gw sysctl -n net.ipv4.ip_forward; }

up_killed_midway_is_finished_by_the_next_up() {
	VNET_XDP_FAULT=up-attach:2 gw up -c "$WORK/gw.json"
	[ $? -eq 137 ] || { echo "the fault did not fire"; return 1; }
	[ "$(attached_count)" -eq 2 ] || { echo "$(attached_count) attached after the kill"; return 1; }
	gw up -c "$WORK/gw.json" || return 1
	[ "$(attached_count)" -eq 4 ] || return 1
	reaches hub 10.11.1.4 && reaches hub 10.12.1.4 || return 1
	reaches spoke1 10.12.1.4 && { echo "spokes reach each other"; return 1; }
	# The second `up` kept what the first found before it changed anything.
	[ "$(jq -r '.previousForwarding.ipv4' /run/vnet-xdp/$GATEWAY.json)" = 0 ] || return 1
	[ "$(jq -r '.upInProgress // "none"' /run/vnet-xdp/$GATEWAY.json)" = none ]
}

up_again_is_harmless_and_keeps_the_programs() {
	local ids
	ids=$(gw status -n $GATEWAY -j | jq -c '[.[0].interfaces[].programId]')
	gw up -c "$WORK/gw.json" || return 1
	[ "$(gw status -n $GATEWAY -j | jq -c '[.[0].interfaces[].programId]')" = "$ids" ]
}

down_killed_midway_is_finished_by_the_next_down() {
	VNET_XDP_FAULT=down-detach:1 gw down -n $GATEWAY
	[ $? -eq 137 ] || { echo "the fault did not fire"; return 1; }
	[ "$(attached_count)" -eq 3 ] || { echo "$(attached_count) attached after the kill"; return 1; }
	gw down -n $GATEWAY || return 1
	[ "$(attached_count)" -eq 0 ] || return 1
	[ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY ] && [ ! -e /run/vnet-xdp/$GATEWAY.json ] || return 1
	[ "$(forwarding)" = 0 ] || { echo "forwarding left on"; return 1; }
}

failed_up_leaves_nothing_behind() {
	jq '.gateway.interfaces[3].name = "no-such-if0"' "$WORK/gw.json" >"$WORK/noif.json"
	gw up -c "$WORK/noif.json"; [ $? -eq 1 ] || return 1
	[ "$(attached_count)" -eq 0 ] && [ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY ] &&
		[ ! -e /run/vnet-xdp/$GATEWAY.json ] && [ "$(forwarding)" = 0 ]
}

down_after_a_killed_up_removes_everything() {
	VNET_XDP_FAULT=up-attach:3 gw up -c "$WORK/gw.json"
	[ $? -eq 137 ] || { echo "the fault did not fire"; return 1; }
	gw down -n $GATEWAY || return 1
	[ "$(attached_count)" -eq 0 ] && [ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY ] &&
		[ ! -e /run/vnet-xdp/$GATEWAY.json ] && [ "$(forwarding)" = 0 ]
}

run_case up_killed_midway_is_finished_by_the_next_up
run_case up_again_is_harmless_and_keeps_the_programs
run_case down_killed_midway_is_finished_by_the_next_down
run_case failed_up_leaves_nothing_behind
run_case down_after_a_killed_up_removes_everything

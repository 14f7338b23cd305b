#!/usr/bin/env bash
# End to end: `vnet-xdp reload` under traffic, and loader crashes in the middle of one.
# Two configs differ in one peering (hub <-> spoke2 present in A, gone in B). Streams
# with sequence numbers run through 100 reloads: hub -> spoke1 is allowed by both and
# must lose nothing; hub -> spoke2 is allowed by A and dropped as route None by B, so
# every datagram must be either delivered or counted as that drop: none lost, none
# judged by anything else.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_reload vxrld rld
RELOADS=${RELOADS:-100}
SEQ=$PWD/${BUILD:-build}/tests/tools/seqstream
e2e_cleanup() { # the streams' senders and receivers
	jobs -p | xargs -r kill 2>/dev/null
	wait 2>/dev/null
}
e2e_topology "$WORK/a.json"
jq '(.resources[] | select(.name == "hub") | .properties.virtualNetworkPeerings) |=
	map(select(.properties.remoteVirtualNetwork.id | test("spoke2$") | not))' \
	"$WORK/a.json" >"$WORK/b.json"

generation() { gw status -n $GATEWAY -j | jq -r '.[0].generation'; }
program_ids() { gw status -n $GATEWAY -j | jq -c '[.[0].interfaces[].programId]'; }

reload_without_a_running_gateway_fails() {
	gw reload -c "$WORK/a.json"
	[ $? -eq 1 ]
}

up_on_config_a() {
	gw up -c "$WORK/a.json" && reaches hub 10.12.1.4
}

invalid_config_changes_nothing() {
	local ids gen
	ids=$(program_ids) gen=$(generation)
	echo '{"gateway": {"name": "rld"' >"$WORK/broken.json"
	gw reload -c "$WORK/broken.json"; [ $? -eq 1 ] || return 1
	jq '.gateway.interfaces[0].name = "no-such-if0"' "$WORK/a.json" >"$WORK/noif.json"
	gw reload -c "$WORK/noif.json"; [ $? -eq 1 ] || return 1
	[ "$(program_ids)" = "$ids" ] && [ "$(generation)" = "$gen" ] || return 1
	[ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY/next ] && reaches hub 10.12.1.4
}

reload_applies_the_new_config() {
	local gen
	gen=$(generation)
	gw reload -c "$WORK/b.json" || return 1
	reaches hub 10.12.1.4 && { echo "spoke2 still reachable under B"; return 1; }
	reaches hub 10.11.1.4 || return 1
	gw reload -c "$WORK/a.json" || return 1
	reaches hub 10.12.1.4 || return 1
	[ "$(generation)" -eq $((gen + 2)) ]
}

pins() { ls /sys/fs/bpf/vnet-xdp/$GATEWAY | sort | tr '\n' ' '; }

# Two reloads started together would share the staging directory "next" and remove each
# other's maps; they take turns under the gateway's lock: each succeeds or refuses as
# busy in one line, and after them every pin is there and each interface runs a program.
concurrent_reloads_take_turns() {
	local gen pins_before ok=0 rc_a rc_b a b rc out
	gen=$(generation) pins_before=$(pins)
	for _ in 1 2 3; do
		gw reload -c "$WORK/b.json" >"$WORK/reload_a" 2>&1 &
		a=$!
		gw reload -c "$WORK/a.json" >"$WORK/reload_b" 2>&1 &
		b=$!
		wait $a; rc_a=$?
		wait $b; rc_b=$?
		for rc in "$rc_a:$WORK/reload_a" "$rc_b:$WORK/reload_b"; do
			out=$(grep -v ' reloaded from ' "${rc#*:}")
			case ${rc%%:*} in
			0) ok=$((ok + 1)) ;;
			1) grep -qx "vnet-xdp: error: gateway $GATEWAY is busy: .*; nothing was changed" \
				<<<"$out" && [ "$(wc -l <<<"$out")" = 1 ] ||
				{ echo "refused otherwise: $out"; return 1; } ;;
			*) echo "exit ${rc%%:*}: $out"; return 1 ;;
			esac
		done
		[ "$(pins)" = "$pins_before" ] || { echo "pins: $(pins), were: $pins_before"; return 1; }
		[ "$(gw status -n $GATEWAY -j | jq '[.[0].interfaces[] | select(.attached | not)] | length')" = 0 ] ||
			{ echo "an interface runs no program"; return 1; }
	done
	[ "$(generation)" -eq $((gen + ok)) ] || { echo "generation $(generation), $ok reloads"; return 1; }
	gw reload -c "$WORK/a.json" && reaches hub 10.12.1.4 && reaches hub 10.11.1.4
}

tcp_counter() { vm hub nstat -az "$1" | awk -v name="$1" '$1 == name {print $2}'; }

# Waits until a background receiver prints "listening".
wait_listening() {
	for _ in $(seq 50); do grep -q listening "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

reloads_under_traffic_lose_nothing() {
	local none_before none_after other_before other_after retrans_before retrans_after
	local dsack_before dsack_after lost_segments
	local sent1 sent2 got1 got2 lost1 dup1 dup2 tcp_sent tcp_got tcp_errors
	# The receivers wait as long as it takes (spoke2 hears nothing while B is in force):
	# they stop when told, after the senders.
	vm spoke1 "$SEQ" recv 5001 600 >"$WORK/r1" &
	local r1=$!
	vm spoke2 "$SEQ" recv 5002 600 >"$WORK/r2" &
	local r2=$!
	vm spoke1 "$SEQ" tcp-recv 5003 >"$WORK/rt" &
	local rt=$!
	wait_listening "$WORK/r1" && wait_listening "$WORK/r2" && wait_listening "$WORK/rt" || return 1
	gw stats -n $GATEWAY -j | jq -c '.datapath | map({(.action): .packets}) | add' >"$WORK/dp_before"
	none_before=$(stat_value '(.drops[] | select(.reason == "route_none") | .packets)')
	other_before=$(stat_value '[.drops[].packets] | add')
	retrans_before=$(tcp_counter TcpRetransSegs) dsack_before=$(tcp_counter TcpExtTCPDSACKRecv)

	vm hub "$SEQ" send 10.11.1.4 5001 2000 >"$WORK/s1" &
	local s1=$!
	vm hub "$SEQ" send 10.12.1.4 5002 2000 >"$WORK/s2" &
	local s2=$!
	vm hub "$SEQ" tcp-send 10.11.1.4 5003 2000 >"$WORK/st" &
	local st=$!
	sleep 0.5
	for i in $(seq "$RELOADS"); do
		if [ $((i % 2)) -eq 1 ]; then cfg=b; else cfg=a; fi
		gw reload -c "$WORK/$cfg.json" >/dev/null || { echo "reload $i failed"; return 1; }
	done
	gw reload -c "$WORK/a.json" >/dev/null || return 1
	sleep 0.5
	# The senders run under a backgrounded shell function: signal the programs themselves.
	pkill -TERM -P $s1; pkill -TERM -P $s2; pkill -TERM -P $st
	wait $s1 $s2 $st
	sleep 1 # the last datagrams in flight
	pkill -TERM -P $r1; pkill -TERM -P $r2
	wait $r1 $r2 $rt
	none_after=$(stat_value '(.drops[] | select(.reason == "route_none") | .packets)')
	other_after=$(stat_value '[.drops[].packets] | add')
	retrans_after=$(tcp_counter TcpRetransSegs) dsack_after=$(tcp_counter TcpExtTCPDSACKRecv)
	# A retransmission that the receiver reports as a duplicate (D-SACK) was spurious: a
	# timer fired on a starved CPU, the original had arrived. Any other one was a loss.
	lost_segments=$((retrans_after - retrans_before - (dsack_after - dsack_before)))

	sent1=$(awk '{print $2}' "$WORK/s1") sent2=$(awk '{print $2}' "$WORK/s2")
	read -r _ got1 _ lost1 _ dup1 _ _ _ _ < <(tail -n1 "$WORK/r1")
	read -r _ got2 _ _ _ dup2 _ _ _ _ < <(tail -n1 "$WORK/r2")
	tcp_sent=$(awk '{print $2}' "$WORK/st")
	read -r _ tcp_got _ _ tcp_errors < <(tail -n1 "$WORK/rt")
	echo "reloads: $RELOADS, generation now $(generation)"
	echo "hub->spoke1 udp: sent $sent1 received $got1 lost $lost1 duplicated $dup1"
	echo "hub->spoke2 udp: sent $sent2 received $got2 dropped as route None $((none_after - none_before)) duplicated $dup2"
	echo "hub->spoke1 tcp: sent $tcp_sent bytes received $tcp_got errors $tcp_errors retransmitted segments $((retrans_after - retrans_before)), reported duplicate by the receiver $((dsack_after - dsack_before))"
	echo "drops for other reasons: $((other_after - other_before - (none_after - none_before)))"
	# Where a datagram could go missing besides the datapath: the kernel's own paths
	# (verdicts handed to it), the veths, the receivers' sockets.
	echo "datapath before: $(cat "$WORK/dp_before")"
	echo "datapath after:  $(gw stats -n $GATEWAY -j | jq -c '.datapath | map({(.action): .packets}) | add')"
	echo "spoke1 udp: $(vm spoke1 nstat -az UdpRcvbufErrors UdpInErrors UdpNoPorts UdpInCsumErrors | awk 'NR>1 {printf "%s=%s ", $1, $2}')"
	echo "spoke2 udp: $(vm spoke2 nstat -az UdpRcvbufErrors UdpInErrors UdpNoPorts UdpInCsumErrors | awk 'NR>1 {printf "%s=%s ", $1, $2}')"
	echo "to-spoke2: $(ip -n $PREFIX-gw -s link show to-spoke2 | awk '/TX:/ {getline; print "tx packets " $2 " dropped " $4}')"
	echo "spoke2 eth0: $(ip -n $PREFIX-spoke2 -s link show eth0 | awk '/RX:/ {getline; print "rx packets " $2 " dropped " $4}')"
	[ "$sent1" -gt 0 ] && [ "$got1" -eq "$sent1" ] && [ "$lost1" -eq 0 ] && [ "$dup1" -eq 0 ] || return 1
	[ "$((got2 + none_after - none_before))" -eq "$sent2" ] && [ "$dup2" -eq 0 ] || return 1
	[ "$got2" -gt 0 ] && [ "$((none_after - none_before))" -gt 0 ] || { echo "B never applied"; return 1; }
	[ "$tcp_got" -eq "$tcp_sent" ] && [ "$tcp_errors" -eq 0 ] || return 1
	[ "$lost_segments" -le 0 ] || return 1
	[ "$((other_after - other_before))" -eq "$((none_after - none_before))" ]
}

# kill -9 in the middle of a reload, under traffic: forwarding goes on, and the next
# command finds a consistent gateway.
reload_killed_before_the_swap_leaves_the_old_config() {
	local gen
	gen=$(generation)
	VNET_XDP_FAULT=reload-fill:0 in_ns $PREFIX-gw "$VNET_XDP" reload -c "$WORK/b.json"
	[ $? -eq 137 ] || { echo "the fault did not fire"; return 1; }
	reaches hub 10.12.1.4 || return 1 # still config A
	gw up -c "$WORK/a.json" || return 1
	[ "$(generation)" = "$gen" ] && [ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY/next ]
}

reload_killed_midway_is_finished_by_the_next_command() {
	local gen
	gen=$(generation)
	vm hub ping -i 0.05 -c 200 -q 10.11.1.4 >"$WORK/ping" &
	local ping=$!
	VNET_XDP_FAULT=reload-swap:2 in_ns $PREFIX-gw "$VNET_XDP" reload -c "$WORK/b.json"
	[ $? -eq 137 ] || { echo "the fault did not fire"; return 1; }
	gw up -c "$WORK/a.json" || return 1 # finishes the reload to B first
	[ "$(generation)" -eq $((gen + 1)) ] || { echo "generation $(generation)"; return 1; }
	reaches hub 10.12.1.4 && { echo "B was not finished"; return 1; }
	wait $ping
	cat "$WORK/ping"
	grep -q ' 0% packet loss' "$WORK/ping" || return 1
	gw reload -c "$WORK/a.json" && reaches hub 10.12.1.4
}

down_after_reloads_removes_everything() {
	gw down -n $GATEWAY || return 1
	[ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY ] || return 1
	for i in to-hub to-spoke1 to-spoke2 uplink0; do
		xdp_attached $i && return 1
	done
	return 0
}

run_case reload_without_a_running_gateway_fails
run_case up_on_config_a
run_case invalid_config_changes_nothing
run_case reload_applies_the_new_config
run_case concurrent_reloads_take_turns
run_case reloads_under_traffic_lose_nothing
run_case reload_killed_before_the_swap_leaves_the_old_config
run_case reload_killed_midway_is_finished_by_the_next_command
run_case down_after_reloads_removes_everything

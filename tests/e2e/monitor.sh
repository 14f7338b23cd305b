#!/usr/bin/env bash
# End to end: `vnet-xdp monitor` shows the datapath's events live. spoke1's subnet NSG
# allows TCP 5201 and denies TCP 5202 and UDP 5302; the hub connects to both. The events
# must name the rule, arrive within a second, follow the filters and the rate bound, and
# never be written while nobody listens.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_monitor vxmon mon
e2e_topology "$WORK/topology.json"

NSG=$(cat <<JSON
{"type": "Microsoft.Network/networkSecurityGroups", "name": "spoke1-nsg", "properties": {
  "securityRules": [
    $(security_rule AllowTcp5201 100 Inbound Allow Tcp VirtualNetwork 5201),
    $(security_rule DenyTcp5202 110 Inbound Deny Tcp '*' 5202),
    $(security_rule DenyUdp5302 130 Inbound Deny Udp '*' 5302)
  ]}}
JSON
)
jq --argjson nsg "$NSG" '
	.resources += [$nsg]
	| (.resources[] | select(.name == "spoke1") | .properties.subnets[0].properties.networkSecurityGroup)
		= {"id": "spoke1-nsg"}' "$WORK/topology.json" >"$CONFIG"

PIN=/sys/fs/bpf/vnet-xdp/$GATEWAY
# listening: the datapath has been told a monitor listens (its deadline is in the future)
listening() {
	in_gw bpftool -j map dump pinned "$PIN/monitor_control" 2>/dev/null |
		jq -e '.[0].formatted.value.listening_until_ns > 0' >/dev/null
}
wait_listening() {
	local i
	for i in $(seq 50); do listening && return 0; sleep 0.1; done
	echo "the monitor never said it listens"; return 1
}
# start_monitor OUT ARGS...: a monitor in the background, its pid in $WORK/monitor.pid
start_monitor() {
	local out=$1; shift
	gw monitor -n "$GATEWAY" "$@" >"$out" 2>"$out.err" &
	echo $! >"$WORK/monitor.pid"
}
wait_monitor() { # waits for the background monitor; its exit code
	local pid rc
	pid=$(cat "$WORK/monitor.pid")
	wait "$pid"
	rc=$?
	rm -f "$WORK/monitor.pid"
	return $rc
}
syn_to() { vm hub timeout 2 nc -z -w 1 "$1" "$2" >/dev/null 2>&1; }
now() { date +%s.%N; }
# wait_listen VM PORT: until a listener holds the port (a loaded machine starts nc late)
wait_listen() {
	local i
	for i in $(seq 50); do
		vm "$1" ss -lnt | grep -q ":$2 " && return 0
		sleep 0.1
	done
	echo "nothing listens on $2 in $1"; return 1
}

up_with_a_security_group() {
	gw up -c "$CONFIG" || return 1
	[ -e "$PIN/monitor_events" ] || { echo "no monitor_events map"; return 1; }
	! listening || { echo "the datapath believes a monitor listens before any runs"; return 1; }
}

denied_connection_shows_with_its_rule_within_a_second() {
	local out=$WORK/denied.json t0 t1
	start_monitor "$out" -j --type drop --count 1 --timeout 10
	wait_listening || return 1
	t0=$(now)
	syn_to 10.11.1.4 5202 &
	wait_monitor || { echo "monitor exited $?: $(cat "$out.err")"; return 1; }
	t1=$(now)
	wait
	jq -e 'select(.type == "drop" and .reason == "nsg_denied_inbound" and .rule == "DenyTcp5202"
		and .nsg == "spoke1-nsg" and .protocol == "tcp" and .destination == "10.11.1.4:5202"
		and .interface == "to-hub" and .destinationVirtualNetwork == "spoke1")' "$out" >/dev/null ||
		{ echo "event: $(cat "$out")"; return 1; }
	awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 1.0) }' ||
		{ echo "shown $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s after the SYN"; return 1; }
}

# interface_drops REASON: the hub's drops for REASON on to-hub, from `stats -j` and `stats --prometheus`
interface_drops() {
	gw stats -n "$GATEWAY" -j | jq --arg r "$1" \
		'[.dropsByInterface[] | select(.interface == "to-hub" and .vnet == "hub" and .reason == $r)
		  | .packets] | add // 0'
}
interface_drops_metric() {
	gw stats -n "$GATEWAY" --prometheus | awk -v s="vnetxdp_interface_drop_packets_total{interface=\"to-hub\",vnet=\"hub\",reason=\"$1\"}" \
		'$1 == s { print $2; found = 1 } END { if (!found) print 0 }'
}

denied_connection_counts_by_interface_and_vnet() {
	local before metric_before after metric_after
	before=$(interface_drops nsg_denied_inbound)
	metric_before=$(interface_drops_metric nsg_denied_inbound)
	syn_to 10.11.1.4 5202
	after=$(interface_drops nsg_denied_inbound)
	metric_after=$(interface_drops_metric nsg_denied_inbound)
	[ "$after" -gt "$before" ] ||
		{ echo "to-hub/hub/nsg_denied_inbound: $before -> $after: $(gw stats -n "$GATEWAY" -j | jq -c .dropsByInterface)"; return 1; }
	[ "$metric_after" -gt "$metric_before" ] || { echo "metric $metric_before -> $metric_after"; return 1; }
	gw stats -n "$GATEWAY" --prometheus | promtool check metrics || return 1
	# the hub's denied SYNs are not counted on another interface or VNet
	gw stats -n "$GATEWAY" -j | jq -e '[.dropsByInterface[] | select(.reason == "nsg_denied_inbound"
		and (.interface != "to-hub" or .vnet != "hub"))] | length == 0' >/dev/null ||
		{ echo "elsewhere: $(gw stats -n "$GATEWAY" -j | jq -c .dropsByInterface)"; return 1; }
}

tcp_flow_begins_and_ends_with_its_counts() {
	local out=$WORK/flow.json sent=$WORK/sent
	head -c 200000 /dev/urandom >"$sent"
	start_monitor "$out" -j --type flow --dport 5201 --count 2 --timeout 15
	wait_listening || return 1
	vm spoke1 timeout 10 nc -l -N -p 5201 >/dev/null &
	wait_listen spoke1 5201 || return 1
	vm hub timeout 8 nc -N 10.11.1.4 5201 <"$sent"
	wait_monitor || { echo "monitor exited $?: $(cat "$out" "$out.err")"; return 1; }
	wait
	jq -s -e 'any(.[]; .type == "flow-begin" and .rule == "AllowTcp5201" and
		.destination == "10.11.1.4:5201" and .sourceVirtualNetwork == "hub")' "$out" >/dev/null ||
		{ echo "no flow-begin: $(cat "$out")"; return 1; }
	jq -s -e 'any(.[]; .type == "flow-end" and .destination == "10.11.1.4:5201" and
		.bytesForward >= 200000 and .packetsReverse > 0)' "$out" >/dev/null ||
		{ echo "no flow-end with the transfer's bytes: $(cat "$out")"; return 1; }
}

filters_keep_only_what_they_name() {
	local out=$WORK/filtered.txt
	start_monitor "$out" --type drop --dst 10.12.1.0/24 --timeout 2
	wait_listening || return 1
	syn_to 10.11.1.4 5202
	wait_monitor || return 1
	[ ! -s "$out" ] || { echo "a drop to spoke1 passed a filter on spoke2: $(cat "$out")"; return 1; }
	start_monitor "$out" --reason nsg_denied_inbound --proto udp --count 1 --timeout 5
	wait_listening || return 1
	vm hub bash -c 'echo x >/dev/udp/10.11.1.4/5302'
	wait_monitor || return 1
	grep -q 'drop .*udp .*:5302 .*reason nsg_denied_inbound rule spoke1-nsg/DenyUdp5302' "$out" ||
		{ echo "text: $(cat "$out")"; return 1; }
}

nothing_is_written_while_nobody_listens() {
	local out=$WORK/late.json i
	for i in $(seq 50); do listening || break; sleep 0.1; done
	! listening || { echo "still listening after the monitor left"; return 1; }
	for i in 1 2 3; do syn_to 10.11.1.4 5202; done
	# a monitor started now would read whatever the ring still holds
	start_monitor "$out" -j --timeout 1.5
	wait_monitor || return 1
	[ ! -s "$out" ] || { echo "events written with nobody listening: $(head -3 "$out")"; return 1; }
}

rate_bound_leaves_out_and_says_so() {
	local out=$WORK/rate.txt shown cpus
	cpus=$(nproc)
	start_monitor "$out" --type drop --rate 1 --timeout 2
	wait_listening || return 1
	vm hub bash -c 'for i in $(seq 40); do echo x >/dev/udp/10.11.1.4/5302; done'
	wait_monitor || return 1
	shown=$(grep -c ' drop ' "$out")
	[ "$shown" -ge 1 ] && [ "$shown" -le $((2 * cpus)) ] ||
		{ echo "$shown events shown at 1 per second per CPU ($cpus CPUs)"; return 1; }
	grep -q 'left out by the rate bound' "$out.err" || { echo "stderr: $(cat "$out.err")"; return 1; }
}

one_monitor_per_gateway() {
	local out=$WORK/first.txt err
	start_monitor "$out" --timeout 5
	wait_listening || return 1
	err=$(gw monitor -n "$GATEWAY" --timeout 1 2>&1)
	local rc=$?
	kill "$(cat "$WORK/monitor.pid")"
	wait_monitor
	[ $rc -eq 1 ] && [[ $err == *"another"* ]] || { echo "second monitor: rc $rc: $err"; return 1; }
}

usage_and_missing_gateway() {
	gw monitor -n "$GATEWAY" --type bogus >/dev/null 2>&1
	[ $? -eq 2 ] || { echo "--type bogus did not exit 2"; return 1; }
	gw monitor -n "$GATEWAY" --reason nosuch >/dev/null 2>&1
	[ $? -eq 2 ] || { echo "--reason nosuch did not exit 2"; return 1; }
	gw monitor -n nosuch$$ --timeout 1 >/dev/null 2>&1
	[ $? -eq 1 ] || { echo "a gateway that is not up did not exit 1"; return 1; }
}

run_case up_with_a_security_group
run_case denied_connection_shows_with_its_rule_within_a_second
run_case denied_connection_counts_by_interface_and_vnet
run_case tcp_flow_begins_and_ends_with_its_counts
run_case filters_keep_only_what_they_name
run_case nothing_is_written_while_nobody_listens
run_case rate_bound_leaves_out_and_says_so
run_case one_monitor_per_gateway
run_case usage_and_missing_gateway
exit ${FAILED:-0}

#!/usr/bin/env bash
# End to end: network security groups with real TCP, UDP and ICMP through the gateway.
# spoke1's subnet NSG denies some inbound ports and every new outbound flow, so each answer
# that arrives proves the flow table let it back; `verify`, `flows` and `stats` are checked
# against the same traffic.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_nsg vxnsg nsg
e2e_topology "$WORK/topology.json"

NSG=$(cat <<JSON
{"type": "Microsoft.Network/networkSecurityGroups", "name": "spoke1-nsg", "properties": {
  "securityRules": [
    $(security_rule AllowIperf 100 Inbound Allow Tcp VirtualNetwork 5201),
    $(security_rule DenyTcp5202 110 Inbound Deny Tcp '*' 5202),
    $(security_rule DenyUdp5302 130 Inbound Deny Udp '*' 5302),
    $(security_rule DenyAllOut 4000 Outbound Deny '*' '*' '*')
  ]}}
JSON
)
jq --argjson nsg "$NSG" '
	.resources += [$nsg]
	| (.resources[] | select(.name == "spoke1") | .properties.subnets[0].properties.networkSecurityGroup)
		= {"id": "spoke1-nsg"}' "$WORK/topology.json" >"$CONFIG"

# wait_listen VM PORT [-u]: until a listener holds the port (a loaded machine starts nc late)
wait_listen() {
	local i kind=t
	[ "${3:-}" = -u ] && kind=u
	for i in $(seq 50); do
		vm "$1" ss -ln$kind | grep -q ":$2 " && return 0
		sleep 0.1
	done
	return 1
}
rule_hits() { stat_value ".nsgRuleHits[] | select(.rule == \"$1\") | .hits"; }

up_with_network_security_groups() {
	gw up -c "$CONFIG" || return 1
	[ -e /sys/fs/bpf/vnet-xdp/$GATEWAY/nsg_addresses ] && [ -e /sys/fs/bpf/vnet-xdp/$GATEWAY/flows ]
}

tcp_allowed_and_answers_return() {
	local out sent rc
	out=$(mktemp) sent=$(mktemp)
	head -c 1048576 /dev/urandom >"$sent"
	vm spoke1 timeout 10 nc -l -N -p 5201 >"$out" &
	wait_listen spoke1 5201
	vm hub timeout 8 nc -N 10.11.1.4 5201 <"$sent"
	wait
	cmp -s "$out" "$sent"
	rc=$?
	rm -f "$out" "$sent"
	[ $rc -eq 0 ] || { echo "transfer differs"; return 1; }
	[ "$(rule_hits AllowIperf)" -ge 1 ] || { echo "AllowIperf hits $(rule_hits AllowIperf)"; return 1; }
}

tcp_denied_port_is_dropped_and_counted() {
	local before
	before=$(stat_value '(.drops[] | select(.reason == "nsg_denied_inbound") | .packets)')
	vm spoke1 timeout 4 nc -l -p 5202 >/dev/null &
	wait_listen spoke1 5202
	if vm hub timeout 2 nc -w 1 10.11.1.4 5202 </dev/null; then echo "connected to 5202"; return 1; fi
	kill %1 2>/dev/null; wait
	[ "$(stat_value '(.drops[] | select(.reason == "nsg_denied_inbound") | .packets)')" -gt "$before" ] || return 1
	[ "$(rule_hits DenyTcp5202)" -ge 1 ] || { echo "DenyTcp5202 hits $(rule_hits DenyTcp5202)"; return 1; }
}

udp_allowed_and_denied() {
	local got
	got=$(mktemp)
	vm spoke1 timeout 3 nc -u -l -p 5301 >"$got" &
	wait_listen spoke1 5301 -u
	echo allowed-datagram | vm hub nc -u -w 1 10.11.1.4 5301
	wait
	grep -q allowed-datagram "$got" || { echo "5301 datagram lost"; rm -f "$got"; return 1; }
	vm spoke1 timeout 3 nc -u -l -p 5302 >"$got" &
	wait_listen spoke1 5302 -u
	echo denied-datagram | vm hub nc -u -w 1 10.11.1.4 5302
	wait
	if grep -q denied-datagram "$got"; then echo "5302 datagram arrived"; rm -f "$got"; return 1; fi
	rm -f "$got"
	[ "$(rule_hits DenyUdp5302)" -ge 1 ]
}

icmp_answers_pass_new_outbound_does_not() {
	vm hub ping -c 3 -i 0.2 -W 2 10.11.1.4 || { echo "hub cannot ping spoke1"; return 1; }
	if vm spoke1 ping -c 2 -i 0.2 -W 1 10.10.1.4; then echo "spoke1 pinged out"; return 1; fi
	[ "$(rule_hits DenyAllOut)" -ge 2 ] || { echo "DenyAllOut hits $(rule_hits DenyAllOut)"; return 1; }
}

ipv6_tcp_with_return() {
	local out
	out=$(mktemp)
	vm spoke1 timeout 6 nc -6 -l -N -p 5201 >"$out" &
	wait_listen spoke1 5201
	echo over-ipv6 | vm hub timeout 4 nc -6 -N fd00:11:0:1::4 5201
	wait
	grep -q over-ipv6 "$out"
	local rc=$?
	rm -f "$out"
	return $rc
}

verify_names_the_deciding_rule() {
	local out
	out=$(gw verify -n $GATEWAY --in to-hub --src 10.10.1.4:40000 --dst 10.11.1.4:5202 --proto tcp -j)
	[ $? = 3 ] || { echo "a dropped packet: exit $?, not 3"; return 1; }
	[ "$(jq -r .verdict <<<"$out")" = dropped ] || { echo "$out"; return 1; }
	[ "$(jq -r .dropReason <<<"$out")" = nsg_denied_inbound ] || { echo "$out"; return 1; }
	[ "$(jq -r '.networkSecurityGroups[2].rule' <<<"$out")" = DenyTcp5202 ] || { echo "$out"; return 1; }
	[ "$(jq -r '.networkSecurityGroups[2].priority' <<<"$out")" = 110 ] || return 1
	out=$(gw verify -n $GATEWAY --in to-hub --src 10.10.1.4:40000 --dst 10.11.1.4:5201 --proto tcp -j) || return 1
	[ "$(jq -r .verdict <<<"$out")" = forwarded ] || { echo "$out"; return 1; }
	[ "$(jq -r '.route.nextHopType' <<<"$out")" = VNetPeering ] || { echo "$out"; return 1; }
	[ "$(jq -r '.networkSecurityGroups[2].rule' <<<"$out")" = AllowIperf ] || { echo "$out"; return 1; }
	out=$(gw verify -n $GATEWAY --in to-spoke1 --src 10.11.1.4 --dst 10.10.1.4 --proto icmp -j)
	[ $? = 3 ] || return 1
	[ "$(jq -r '.networkSecurityGroups[1].rule' <<<"$out")" = DenyAllOut ] || { echo "$out"; return 1; }
	gw verify -n $GATEWAY --in to-hub --src 10.10.1.4:40000 --dst 10.11.1.4:5202 --proto tcp | grep -q 'DenyTcp5202 (priority 110, Deny)'
}

verify_leaves_flows_and_counters_alone() {
	local flows_before hits_before rx_before
	flows_before=$(gw flows -n $GATEWAY -j | jq length)
	hits_before=$(rule_hits AllowIperf)
	rx_before=$(stat_value '(.datapath[] | select(.action == "forwarded") | .packets)')
	gw verify -n $GATEWAY --in to-hub --src 10.10.1.4:41234 --dst 10.11.1.4:5201 --proto tcp >/dev/null || return 1
	[ "$(gw flows -n $GATEWAY -j | jq length)" = "$flows_before" ] || { echo "flows changed"; return 1; }
	[ "$(rule_hits AllowIperf)" = "$hits_before" ] || { echo "rule hits changed"; return 1; }
	[ "$(stat_value '(.datapath[] | select(.action == "forwarded") | .packets)')" = "$rx_before" ] || { echo "forwarded count changed"; return 1; }
}

verify_repeat_reports_time() {
	local ns
	ns=$(gw verify -n $GATEWAY --in to-hub --src 10.10.1.4:40000 --dst 10.11.1.4:5201 --proto tcp -j --repeat 1000 | jq -r .nsPerRun)
	[ "$ns" -gt 0 ] 2>/dev/null || { echo "nsPerRun $ns"; return 1; }
	echo "first packet through the dry-run program: $ns ns"
}

# The fast path forwards most of a flow's packets under a lease and adds them to the flow
# entry later: `flows` counts every packet all the same, right after the last one.
flows_count_every_packet() {
	local list counts
	vm hub ping -q -c 40 -i 0.01 -W 1 10.11.1.4 >/dev/null || { echo "ping lost packets"; return 1; }
	list=$(gw flows -n $GATEWAY -j)
	counts=$(jq -r '[.[] | select(.protocol == "icmp" and .source == "10.10.1.4")]
		| max_by(.packetsForward) | "\(.packetsForward) \(.packetsReverse)"' <<<"$list")
	[ "$counts" = "40 40" ] || { echo "flow counts: $counts"; echo "$list"; return 1; }
}

flows_lists_the_connections() {
	local list
	vm spoke1 timeout 6 nc -l -p 5201 >/dev/null &
	wait_listen spoke1 5201
	(echo hello; sleep 2) | vm hub timeout 4 nc 10.11.1.4 5201 &
	sleep 1
	list=$(gw flows -n $GATEWAY -j)
	wait
	jq -e '.[] | select(.protocol == "tcp" and (.destination | endswith(":5201")) and .tcpState == "established")' <<<"$list" >/dev/null \
		|| { echo "$list"; return 1; }
	[ "$(stat_value .flows.active)" -ge 1 ]
}

metrics_show_rule_hits_and_flows() {
	local text
	text=$(gw stats -n $GATEWAY --prometheus)
	grep -q '^vnetxdp_nsg_rule_hits_total{nsg="spoke1-nsg",rule="DenyTcp5202",direction="Inbound",access="Deny"} [1-9]' <<<"$text" \
		|| { grep nsg_rule_hits <<<"$text"; return 1; }
	grep -q '^vnetxdp_flows_active [0-9]' <<<"$text" || { echo "no vnetxdp_flows_active"; return 1; }
	# the NSG and flow families pass promtool's lint (other families are other tests' business)
	if command -v promtool >/dev/null; then
		grep -E '^(# (HELP|TYPE) )?vnetxdp_(nsg_|flows_)' <<<"$text" | promtool check metrics || return 1
	fi
}

gc_removes_idle_flows() {
	# UDP flows idle past udpIdleTimeoutSeconds go; a 1 s timeout makes that quick
	jq '.gateway.limits = {"udpIdleTimeoutSeconds": 1}' "$CONFIG" >"$CONFIG.new" && mv "$CONFIG.new" "$CONFIG"
	gw reload -c "$CONFIG" || return 1
	echo x | vm hub nc -u -w 1 10.11.1.4 5399
	sleep 2.2
	gw flows -n $GATEWAY --gc >/dev/null || return 1
	if gw flows -n $GATEWAY -j | jq -e '.[] | select(.destination == "10.11.1.4:5399")' >/dev/null; then
		echo "idle UDP flow still there"; return 1
	fi
	[ "$(stat_value .flows.gcRemoved)" -ge 1 ]
}

run_case up_with_network_security_groups
run_case tcp_allowed_and_answers_return
run_case tcp_denied_port_is_dropped_and_counted
run_case udp_allowed_and_denied
run_case icmp_answers_pass_new_outbound_does_not
run_case flows_count_every_packet
run_case ipv6_tcp_with_return
run_case verify_names_the_deciding_rule
run_case verify_leaves_flows_and_counters_alone
run_case verify_repeat_reports_time
run_case flows_lists_the_connections
run_case metrics_show_rule_hits_and_flows
run_case gc_removes_idle_flows
exit ${FAILED:-0}

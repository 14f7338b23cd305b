#!/usr/bin/env bash
# End to end: the hub-and-spoke topology with real traffic (ping, TCP, UDP over IPv4
# and IPv6) through the gateway that `vnet-xdp up` attached, and the CLI's life cycle.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_peering vxe2e e2e
e2e_topology

check_accepts_the_demo_config() {
	gw check -c "$CONFIG"
}

up_attaches_to_every_interface() {
	gw up -c "$CONFIG" || return 1
	for i in to-hub to-spoke1 to-spoke2 uplink0; do
		xdp_attached $i || { echo "no XDP on $i"; return 1; }
	done
	gw status -j | jq -e 'any(.[].interfaces[]; .attached)' >/dev/null || return 1
	[ -d /sys/fs/bpf/vnet-xdp/$GATEWAY ] && [ -e /sys/fs/bpf/vnet-xdp/$GATEWAY/routes ]
}

up_twice_is_harmless() {
	local before after
	before=$(ip -n $PREFIX-gw -d link show to-hub | grep -o 'prog/xdp id [0-9]*')
	gw up -c "$CONFIG" || return 1
	after=$(ip -n $PREFIX-gw -d link show to-hub | grep -o 'prog/xdp id [0-9]*')
	[ "$before" = "$after" ] || { echo "program changed: $before -> $after"; return 1; }
}

hub_reaches_both_spokes_ipv4() {
	vm hub ping -c 3 -i 0.2 -W 2 10.11.1.4 && vm hub ping -c 3 -i 0.2 -W 2 10.12.1.4
}

spokes_reach_the_hub_ipv6() {
	vm spoke1 ping -6 -c 3 -i 0.2 -W 2 fd00:10:0:1::4 && vm spoke2 ping -6 -c 3 -i 0.2 -W 2 fd00:10:0:1::4
}

spoke_to_spoke_is_refused_and_counted() {
	local before after
	before=$(stat_value '(.drops[] | select(.reason == "route_none") | .packets)')
	if vm spoke1 ping -c 2 -i 0.2 -W 1 10.12.1.4; then echo "spoke1 reached spoke2"; return 1; fi
	if vm spoke1 ping -6 -c 2 -i 0.2 -W 1 fd00:12:0:1::4; then echo "spoke1 reached spoke2 (v6)"; return 1; fi
	after=$(stat_value '(.drops[] | select(.reason == "route_none") | .packets)')
	[ "$after" -ge $((before + 2)) ] || { echo "route_none drops $before -> $after"; return 1; }
}

tcp_transfer_hub_to_spoke1() {
	local out
	out=$(mktemp)
	vm spoke1 timeout 10 nc -l -N -p 5201 >"$out" &
	sleep 0.3
	head -c 4194304 /dev/urandom | tee /tmp/vnet-xdp-e2e-sent | vm hub timeout 8 nc -N 10.11.1.4 5201
	wait
	cmp -s "$out" /tmp/vnet-xdp-e2e-sent
	local rc=$?
	rm -f "$out" /tmp/vnet-xdp-e2e-sent
	return $rc
}

tcp_transfer_spoke2_to_hub_ipv6() {
	local out
	out=$(mktemp)
	vm hub timeout 10 nc -6 -l -N -p 5202 >"$out" &
	sleep 0.3
	head -c 1048576 /dev/urandom | tee /tmp/vnet-xdp-e2e-sent6 | vm spoke2 timeout 8 nc -6 -N fd00:10:0:1::4 5202
	wait
	cmp -s "$out" /tmp/vnet-xdp-e2e-sent6
	local rc=$?
	rm -f "$out" /tmp/vnet-xdp-e2e-sent6
	return $rc
}

iperf3_hub_to_spoke2() {
	vm spoke2 timeout 15 iperf3 -s -1 -p 5301 >/dev/null &
	sleep 0.5
	vm hub timeout 12 iperf3 -c 10.12.1.4 -p 5301 -t 2 >/tmp/vnet-xdp-e2e-iperf 2>&1
	local rc=$?
	wait
	grep -E 'receiver' /tmp/vnet-xdp-e2e-iperf
	rm -f /tmp/vnet-xdp-e2e-iperf
	return $rc
}

udp_datagrams_hub_to_spoke1() {
	local out
	out=$(mktemp)
	vm spoke1 timeout 3 nc -u -l -p 5300 >"$out" &
	sleep 0.3
	printf 'datagram-through-the-peering\n' | vm hub timeout 1 nc -u -q 1 10.11.1.4 5300
	wait
	grep -q datagram-through-the-peering "$out"
	local rc=$?
	rm -f "$out"
	return $rc
}

# The VMs keep the kernel's default offloads: their TCP and UDP leave with checksums left
# to offload, which the gateway completes before it redirects them.
vms_keep_transmit_checksum_offload_on() {
	[ -n "$VM_TX_CHECKSUM" ] && { echo "VM_TX_CHECKSUM=$VM_TX_CHECKSUM set for this run"; return 0; }
	vm hub ethtool -k eth0 | grep -q '^tx-checksumming: on' || { vm hub ethtool -k eth0 | head -3; return 1; }
}

# iperf3 TCP between peered VMs with default offloads: tens of thousands of segments with
# partial checksums, on the fast path's lease after the first.
iperf3_tcp_hub_to_spoke1() {
	vm spoke1 timeout 15 iperf3 -s -1 -p 5302 >/dev/null &
	sleep 0.5
	vm hub timeout 12 iperf3 -c 10.11.1.4 -p 5302 -t 2 -J >/tmp/vnet-xdp-e2e-iperf-$$ 2>&1
	local rc=$? bits
	wait
	bits=$(jq -r '.end.sum_received.bits_per_second // 0' /tmp/vnet-xdp-e2e-iperf-$$)
	rm -f /tmp/vnet-xdp-e2e-iperf-$$
	echo "received ${bits%.*} bit/s"
	[ $rc -eq 0 ] && [ "${bits%.*}" -gt 10000000 ]
}

# UDP both families: iperf3's datagrams (IPv6) and nc's (IPv4) arrive, none lost to a
# checksum the receiver refuses.
iperf3_udp_spoke1_to_hub_ipv6() {
	vm hub timeout 15 iperf3 -s -1 -p 5303 >/dev/null &
	sleep 0.5
	vm spoke1 timeout 12 iperf3 -6 -u -b 20M -c fd00:10:0:1::4 -p 5303 -t 2 -J >/tmp/vnet-xdp-e2e-iperf-$$ 2>&1
	local rc=$? sent lost
	wait
	sent=$(jq -r '.end.sum.packets // 0' /tmp/vnet-xdp-e2e-iperf-$$)
	lost=$(jq -r '.end.sum.lost_packets // 0' /tmp/vnet-xdp-e2e-iperf-$$)
	rm -f /tmp/vnet-xdp-e2e-iperf-$$
	echo "datagrams $sent lost $lost"
	[ $rc -eq 0 ] && [ "$sent" -gt 0 ] && [ $((lost * 100)) -le "$sent" ]
}

# One case with transmit checksum offload off in the VMs: full checksums, forwarded as
# they came.
transfers_with_offload_off_in_the_vms() {
	local ns rc
	for ns in hub spoke1; do vm $ns ethtool -K eth0 tx off >/dev/null 2>&1; done
	tcp_transfer_hub_to_spoke1 && udp_datagrams_hub_to_spoke1
	rc=$?
	for ns in hub spoke1; do vm $ns ethtool -K eth0 tx "${VM_TX_CHECKSUM:-on}" >/dev/null 2>&1; done
	return $rc
}

# Generic XDP: a veth hands the program GRO/GSO frames of up to 64 KB, larger than the
# egress MTU; they go to the kernel, which segments them (counted as pass_frag_needed).
iperf3_tcp_in_generic_mode() {
	local before after
	gw down -n $GATEWAY >/dev/null && gw up -c "$CONFIG" --mode generic >/dev/null || return 1
	before=$(stat_value '(.datapath[] | select(.action == "pass_frag_needed") | .packets) // 0')
	iperf3_tcp_hub_to_spoke1
	local rc=$?
	after=$(stat_value '(.datapath[] | select(.action == "pass_frag_needed") | .packets) // 0')
	echo "pass_frag_needed $before -> $after"
	gw down -n $GATEWAY >/dev/null && gw up -c "$CONFIG" >/dev/null || return 1
	[ $rc -eq 0 ] && [ "$after" -gt "$before" ]
}

peering_counters_count_the_traffic() {
	local before after
	before=$(stat_value '.peerings[] | select(.vnet == "hub" and .remoteVnet == "spoke1") | .packets')
	vm hub ping -c 5 -i 0.2 -W 2 10.11.1.4 >/dev/null || return 1
	after=$(stat_value '.peerings[] | select(.vnet == "hub" and .remoteVnet == "spoke1") | .packets')
	[ "$after" -ge $((before + 5)) ] || { echo "hub->spoke1 packets $before -> $after"; return 1; }
	gw stats -n $GATEWAY --prometheus | grep -q 'vnetxdp_peering_packets_total{vnet="hub",remote_vnet="spoke1"}'
}

# spoke1's side refuses access (allowVirtualNetworkAccess false): what the hub opens into
# spoke1 is refused and counted; spoke1 still opens ping and TCP into the hub, replies
# coming back; the peering stays Connected, and status says which way traffic flows.
access_refused_on_one_side_is_per_direction() {
	local edited=$WORK/refused.json before after rc=0
	jq '(.resources[] | select(.name == "spoke1") | .properties.virtualNetworkPeerings[0]
		.properties.allowVirtualNetworkAccess) = false' "$CONFIG" >"$edited"
	gw reload -c "$edited" || return 1
	before=$(stat_value '(.drops[] | select(.reason == "peering_access_refused") | .packets)')
	if vm hub ping -c 2 -i 0.2 -W 1 10.11.1.4; then echo "the hub opened a flow into spoke1"; rc=1; fi
	after=$(stat_value '(.drops[] | select(.reason == "peering_access_refused") | .packets)')
	[ "${after:-0}" -ge $((${before:-0} + 2)) ] || { echo "peering_access_refused $before -> $after"; rc=1; }
	vm spoke1 ping -c 3 -i 0.2 -W 2 10.10.1.4 || rc=1
	vm hub timeout 10 nc -l -N -p 5202 >"$WORK/tcp-in" &
	sleep 0.3
	echo "from spoke1" | vm spoke1 timeout 5 nc -N 10.10.1.4 5202 || rc=1
	wait
	grep -q "from spoke1" "$WORK/tcp-in" || { echo "TCP spoke1 -> hub failed"; rc=1; }
	gw status -n $GATEWAY -j | jq -e '.[0].virtualNetworkPeerings | map(select(.name == "hub-to-spoke1"))[0]
		| .peeringState == "Connected" and .trafficToRemote == false and .trafficFromRemote == true' ||
		{ gw status -n $GATEWAY; rc=1; }
	gw reload -c "$CONFIG" >/dev/null || return 1
	return $rc
}

# Azure's export marks spoke2's peering Disconnected (the hub deleted and recreated its
# own): nothing flows either way; routes and status show Disconnected and Initiated.
disconnected_peering_carries_nothing() {
	local edited=$WORK/disconnected.json rc=0
	jq '(.resources[] | select(.name == "spoke2") | .properties.virtualNetworkPeerings[0]
		.properties.peeringState) = "Disconnected"' "$CONFIG" >"$edited"
	gw reload -c "$edited" || return 1
	if vm hub ping -c 1 -W 1 10.12.1.4; then echo "hub reached spoke2"; rc=1; fi
	if vm spoke2 ping -c 1 -W 1 10.10.1.4; then echo "spoke2 reached the hub"; rc=1; fi
	gw routes -c "$edited" --vnet spoke2 | grep -E '^spoke2-to-hub +hub +Disconnected ' || rc=1
	gw status -n $GATEWAY | grep -E '^hub-to-spoke2 +spoke2 +Initiated ' || rc=1
	gw reload -c "$CONFIG" >/dev/null || return 1
	vm hub ping -c 1 -W 2 10.12.1.4 >/dev/null || rc=1
	return $rc
}

down_removes_everything() {
	gw down -n $GATEWAY || return 1
	for i in to-hub to-spoke1 to-spoke2 uplink0; do
		xdp_attached $i && { echo "XDP left on $i"; return 1; }
	done
	[ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY ] || { echo "pins left"; return 1; }
	[ ! -e /run/vnet-xdp/$GATEWAY.json ] || { echo "state left"; return 1; }
	# and the traffic the gateway carried stops
	! vm hub ping -c 1 -W 1 10.11.1.4 >/dev/null
}

failed_up_leaves_nothing_behind() {
	local bad
	bad=$(mktemp /tmp/vnet-xdp-e2e-bad.XXXXXX.json)
	sed 's/"to-spoke2"/"no-such-if0"/' "$CONFIG" >"$bad"
	if gw up -c "$bad" 2>/tmp/vnet-xdp-e2e-err; then rm -f "$bad"; echo "up succeeded"; return 1; fi
	cat /tmp/vnet-xdp-e2e-err
	rm -f "$bad"
	[ "$(wc -l </tmp/vnet-xdp-e2e-err)" -ge 1 ] || return 1
	grep -q 'no-such-if0' /tmp/vnet-xdp-e2e-err || return 1
	for i in to-hub to-spoke1 uplink0; do
		xdp_attached $i && { echo "XDP left on $i"; return 1; }
	done
	[ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY ]
}

cli_usage_errors_exit_2() {
	gw check; [ $? -eq 2 ] || return 1
	gw up --bogus; [ $? -eq 2 ] || return 1
	gw frobnicate; [ $? -eq 2 ] || return 1
}

run_case check_accepts_the_demo_config
run_case up_attaches_to_every_interface
run_case up_twice_is_harmless
run_case hub_reaches_both_spokes_ipv4
run_case spokes_reach_the_hub_ipv6
run_case spoke_to_spoke_is_refused_and_counted
run_case tcp_transfer_hub_to_spoke1
run_case tcp_transfer_spoke2_to_hub_ipv6
run_case iperf3_hub_to_spoke2
run_case udp_datagrams_hub_to_spoke1
run_case vms_keep_transmit_checksum_offload_on
run_case iperf3_tcp_hub_to_spoke1
run_case iperf3_udp_spoke1_to_hub_ipv6
run_case transfers_with_offload_off_in_the_vms
run_case iperf3_tcp_in_generic_mode
run_case peering_counters_count_the_traffic
run_case access_refused_on_one_side_is_per_direction
run_case disconnected_peering_carries_nothing
run_case down_removes_everything
run_case failed_up_leaves_nothing_behind
run_case cli_usage_errors_exit_2

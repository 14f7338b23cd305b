#!/usr/bin/env bash
# VNet-to-VNet IPsec end to end, in the QEMU guest (Debian's kernel: ESP, xfrm
# interfaces): two gateway namespaces, each running vnet-xdp with its own charon, a VNet
# with a VM behind each, and a Vnet2Vnet connection pair between them with a PSK. `up`
# creates the xfrm interface, the routes and the IKEv2 connection; ping and a TCP
# transfer between the VMs cross real ESP, and the per-tunnel counters equal the traffic
# sent: every packet into the tunnel on one side is one ESP packet and one decrypted
# packet on the other. `down` removes the interface and the connection.
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
# Two charons and IKE under TCG: more than the default guest time on a busy machine.
export VM_TIMEOUT=${VM_TIMEOUT:-1200}
vm_enter "$@"
. tests/vm/ipsec_helpers.bash

P=vxv2v
GW_A=$P-gwa GW_B=$P-gwb VM_A=$P-vma VM_B=$P-vmb
DIR=$(mktemp -d /tmp/$P.XXXXXX)
KEY="v2v-psk-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

set_up() {
	vm_modules_load || return 1
	vm_ns_add $GW_A $GW_B $VM_A $VM_B || return 1
	veth_link $GW_A uplink0 $GW_B uplink0
	ip -n $GW_A addr add 192.0.2.1/24 dev uplink0
	ip -n $GW_B addr add 192.0.2.2/24 dev uplink0
	vm_host $VM_A $GW_A to-a 10.1.1.4/16 10.1.0.1
	vm_host $VM_B $GW_B to-b 10.2.1.4/16 10.2.0.1
	(umask 077
	 v2v_config gwa vng-a 192.0.2.1 to-a vnet-a >"$DIR/a.json"
	 v2v_config gwb vng-b 192.0.2.2 to-b vnet-b >"$DIR/b.json")
	charon_start $GW_A || return 1
	charon_start $GW_B || return 1
}

up_creates_the_tunnel_on_both_sides() {
	vx $GW_A up -c "$DIR/a.json" 2>&1 | tee "$DIR/up-a.log" || return 1
	vx $GW_B up -c "$DIR/b.json" 2>&1 | tee "$DIR/up-b.log" || return 1
	! grep -q "$KEY" "$DIR/up-a.log" "$DIR/up-b.log" || { echo "the key was printed"; return 1; }
	XFRM_A=$(tunnel_interface gwa) IF_ID_A=$(tunnel_if_id gwa)
	[ "$XFRM_A" != "$(tunnel_interface gwb)" ] && [ "$IF_ID_A" != "$(tunnel_if_id gwb)" ] ||
		{ echo "both gateways' tunnels got $XFRM_A, if_id $IF_ID_A"; return 1; }
	ip -n $GW_A -d link show "$XFRM_A" | grep -q "xfrm if_id $IF_ID_A " || { ip -n $GW_A -d link; return 1; }
	ip -n $GW_A route show 10.2.0.0/16 | grep -q "dev $XFRM_A" || { ip -n $GW_A route; return 1; }
	vx $GW_A routes -c "$DIR/a.json" --vnet vnet-a | grep -E ' 10\.2\.0\.0/16 +VirtualNetworkGateway ' ||
		return 1
	wait_tunnel_up $GW_A gwa a-to-b 90 || return 1
	wait_tunnel_up $GW_B gwb a-to-b 30 || return 1
	# the kernel's SAs carry the interface's if_id, both directions
	[ "$(ip -n $GW_A xfrm state | grep -cw "if_id $IF_ID_A")" -ge 2 ] || { ip -n $GW_A xfrm state; return 1; }
}

ping_counts_equal_the_packets_sent() {
	local a0 a1 b0 b1
	a0=$(counters_snapshot $GW_A gwa a-to-b) b0=$(counters_snapshot $GW_B gwb a-to-b)
	ip netns exec $VM_A ping -c 5 -i 0.3 -W 5 10.2.1.4 ||
		{ { gateway_dump $GW_A gwa; gateway_dump $GW_B gwb; } >>"$DIR/dump.log" 2>&1; return 1; }
	a1=$(counters_snapshot $GW_A gwa a-to-b) b1=$(counters_snapshot $GW_B gwb a-to-b)
	figure "gwa: ingress +$(delta "$a0" "$a1" 1) egress +$(delta "$a0" "$a1" 2) esp +$(delta "$a0" "$a1" 3)"
	figure "gwb: ingress +$(delta "$b0" "$b1" 1) egress +$(delta "$b0" "$b1" 2) esp +$(delta "$b0" "$b1" 3)"
	# 5 requests leave A into the tunnel, arrive at B as 5 ESP packets, 5 decrypted; the
	# replies the other way. IKE (UDP 500) is not ESP and not tunnel traffic.
	[ "$(delta "$a0" "$a1" 2)" -eq 5 ] && [ "$(delta "$b0" "$b1" 3)" -eq 5 ] &&
	[ "$(delta "$b0" "$b1" 1)" -eq 5 ] && [ "$(delta "$b0" "$b1" 2)" -eq 5 ] &&
	[ "$(delta "$a0" "$a1" 3)" -eq 5 ] && [ "$(delta "$a0" "$a1" 1)" -eq 5 ] &&
	# ICMP echo of 56 bytes: 84 bytes of IP each way
	[ "$(delta "$a0" "$a1" 5)" -eq 420 ] && [ "$(delta "$b0" "$b1" 4)" -eq 420 ]
}

# within_loss SENT ARRIVED: ARRIVED is SENT less at most 1% (the emulated link may drop
# a few ESP packets under load; TCP sends those again, and they are counted again).
within_loss() { [ "$2" -le "$1" ] && [ $(($2 * 100)) -ge $(($1 * 99)) ]; }

tcp_transfer_counts_match_on_both_sides() {
	local a0 a1 b0 b1 sent esp decrypted acks acks_esp acks_decrypted
	a0=$(counters_snapshot $GW_A gwa a-to-b) b0=$(counters_snapshot $GW_B gwb a-to-b)
	tcp_transfer $VM_A $VM_B 10.2.1.4 2000000 "$DIR" || return 1
	a1=$(counters_snapshot $GW_A gwa a-to-b) b1=$(counters_snapshot $GW_B gwb a-to-b)
	sent=$(delta "$a0" "$a1" 2) esp=$(delta "$b0" "$b1" 3) decrypted=$(delta "$b0" "$b1" 1)
	acks=$(delta "$b0" "$b1" 2) acks_esp=$(delta "$a0" "$a1" 3) acks_decrypted=$(delta "$a0" "$a1" 1)
	figure "A->B: $sent packets into the tunnel at A ($(delta "$a0" "$a1" 5) bytes), $esp ESP" \
		"and $decrypted decrypted at B ($(delta "$b0" "$b1" 4) bytes)"
	figure "B->A: $acks into the tunnel at B, $acks_esp ESP and $acks_decrypted decrypted at A"
	# Every ESP packet that arrived is one decrypted packet let into the VNet; what left
	# one side arrived at the other, but for the link's losses.
	[ "$sent" -gt 1300 ] && [ "$esp" -eq "$decrypted" ] && within_loss "$sent" "$esp" &&
	[ "$(delta "$b0" "$b1" 4)" -gt 2000000 ] &&
	within_loss "$(delta "$a0" "$a1" 5)" "$(delta "$b0" "$b1" 4)" &&
	[ "$acks_esp" -eq "$acks_decrypted" ] && within_loss "$acks" "$acks_esp"
}

spi_counters_and_metrics_agree() {
	local esp spis ingress m v
	vx $GW_B stats -n gwb -j >"$DIR/stats.json"
	vx $GW_B stats -n gwb --prometheus >"$DIR/metrics"
	esp=$(jq '.tunnels[] | select(.name == "a-to-b") | .espPackets' "$DIR/stats.json")
	spis=$(jq '[.tunnels[] | select(.name == "a-to-b") | .spis[].packets] | add' "$DIR/stats.json")
	ingress=$(jq '.tunnels[] | select(.name == "a-to-b") | .ingressPackets' "$DIR/stats.json")
	figure "gwb: $esp ESP packets, $spis over the peer's SPIs, $ingress decrypted"
	[ "$esp" -eq "$spis" ] || return 1
	# Azure's six tunnel metrics, each the value `stats -j` has.
	for m in ingress_bytes:ingressBytes egress_bytes:egressBytes \
		ingress_packets:ingressPackets egress_packets:egressPackets \
		ingress_packet_drops:ingressPacketDropCount egress_packet_drops:egressPacketDropCount; do
		v=$(jq --arg f "${m#*:}" '.tunnels[] | select(.name == "a-to-b") | .[$f]' "$DIR/stats.json")
		figure "  vnetxdp_tunnel_${m%%:*}_total = $v"
		[ -n "$v" ] && [ "$v" != null ] &&
		grep -q "^vnetxdp_tunnel_${m%%:*}_total{tunnel=\"a-to-b\"} $v\$" "$DIR/metrics" ||
			{ grep "tunnel_${m%%:*}" "$DIR/metrics"; return 1; }
	done
	grep -q '^vnetxdp_tunnel_up{tunnel="a-to-b"} 1$' "$DIR/metrics" &&
	grep -q "^vnetxdp_tunnel_ingress_packets_total{tunnel=\"a-to-b\"} $ingress\$" "$DIR/metrics" &&
	grep -q '^vnetxdp_tunnel_integrity_failures_total{tunnel="a-to-b"} 0$' "$DIR/metrics" &&
	grep -q '^vnetxdp_tunnel_replay_errors_total{tunnel="a-to-b"} 0$' "$DIR/metrics" ||
		{ grep tunnel "$DIR/metrics"; return 1; }
}

down_removes_interface_routes_and_connection() {
	local xfrm
	xfrm=$(tunnel_interface gwa)
	vx $GW_A down -n gwa || return 1
	! ip -n $GW_A link show "$xfrm" 2>/dev/null || { echo "$xfrm still there"; return 1; }
	! ip -n $GW_A route show | grep -q 10.2.0.0 || return 1
	[ -z "$(swanctl_in $GW_A --list-conns 2>/dev/null | grep vnetxdp-gwa.a-to-b)" ] ||
		{ swanctl_in $GW_A --list-conns; return 1; }
	[ -z "$(swanctl_in $GW_A --list-sas 2>/dev/null | grep ESTABLISHED)" ] ||
		{ swanctl_in $GW_A --list-sas; return 1; }
	! ls /run/vnet-xdp/gwa.swanctl.conf 2>/dev/null
}

CASES="up_creates_the_tunnel_on_both_sides ping_counts_equal_the_packets_sent
	tcp_transfer_counts_match_on_both_sides spi_counters_and_metrics_agree
	down_removes_interface_routes_and_connection"
# shellcheck disable=SC2086
run_scenario ipsec_vnet2vnet $CASES || exit 1
[ -s "$DIR/dump.log" ] && sed 's/^/    # /' "$DIR/dump.log"
vx $GW_B down -n gwb >/dev/null 2>&1
charon_stop $GW_A
charon_stop $GW_B
[ -z "${FAILED:-}" ]

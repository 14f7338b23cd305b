#!/usr/bin/env bash
# End to end: path MTU discovery through the gateway, past an NSG that denies ICMP in.
# A client sits behind the hub VM, which routes to it over a link of MTU 1280 (the
# client's own NIC keeps 1500, so its MSS does not hide the narrow link). A server in
# spoke1 sends it TCP with DF set; the hub VM answers each segment too big for the link
# with ICMP fragmentation needed (or ICMPv6 packet too big), which crosses the gateway
# into spoke1, whose subnet NSG denies inbound ICMP. Only because the error is judged by
# the flow it quotes does it reach the server, which lowers its segments: the transfer
# completes. Without that, the segments are lost for good (a PMTU black hole).
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_pmtu vxpmtu pmtu
e2e_topology "$WORK/topology.json"

FAR=$PREFIX-far
NSG=$(cat <<JSON
{"type": "Microsoft.Network/networkSecurityGroups", "name": "spoke1-nsg", "properties": {
  "securityRules": [
    $(security_rule DenyIcmpIn 100 Inbound Deny Icmp '*' '*')
  ]}}
JSON
)
jq --argjson nsg "$NSG" '
	.resources += [$nsg]
	| (.resources[] | select(.name == "spoke1") | .properties.subnets[0].properties.networkSecurityGroup)
		= {"id": "spoke1-nsg"}' "$WORK/topology.json" >"$CONFIG"

e2e_cleanup() { ip netns del "$FAR" 2>/dev/null || true; }

# The client's namespace behind the hub VM: 10.10.2.2 and fd00:10:0:2::2, inside the hub
# VNet's space, so the gateway reaches it on to-hub (the hub VM answers ARP and ND for it).
far_client_behind_the_hub_vm() {
	ip netns add "$FAR" || return 1
	ip -n "$FAR" link set lo up
	veth_link "$PREFIX-hub" to-far "$FAR" eth0 || return 1
	ip -n "$PREFIX-hub" link set to-far mtu 1280
	ip -n "$PREFIX-hub" addr add 10.10.2.1/24 dev to-far
	ip -n "$PREFIX-hub" addr add fd00:10:0:2::1/64 dev to-far nodad
	ip -n "$FAR" addr add 10.10.2.2/24 dev eth0
	ip -n "$FAR" addr add fd00:10:0:2::2/64 dev eth0 nodad
	ip -n "$FAR" route add default via 10.10.2.1
	ip -n "$FAR" -6 route add default via fd00:10:0:2::1
	vm_nic_setup "$FAR" eth0
	vm hub sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.eth0.proxy_arp=1 net.ipv6.conf.eth0.proxy_ndp=1 || return 1
	ip -n "$PREFIX-hub" -6 neigh add proxy fd00:10:0:2::2 dev eth0
	# the server must discover the path's MTU, not probe around a black hole
	vm spoke1 sysctl -qw net.ipv4.tcp_mtu_probing=0 net.ipv4.ip_no_pmtu_disc=0
}

up_with_icmp_denied_into_spoke1() {
	gw up -c "$CONFIG" || return 1
	# the NSG does deny ICMP of its own into spoke1
	if vm hub ping -c 2 -i 0.2 -W 1 10.11.1.4 >/dev/null; then echo "ping reached spoke1"; return 1; fi
	[ "$(stat_value '.nsgRuleHits[] | select(.rule == "DenyIcmpIn") | .hits')" -ge 1 ]
}

# download FAMILY SERVER-ADDRESS: 2 MB from spoke1 to the far client; the bytes match.
download() {
	local sent got rc
	sent=$(mktemp) got=$(mktemp)
	head -c 2000000 /dev/urandom >"$sent"
	vm spoke1 timeout 20 nc "$1" -l -N -p 5201 <"$sent" &
	for _ in $(seq 50); do vm spoke1 ss -ltn | grep -q ':5201 ' && break; sleep 0.1; done
	ip netns exec "$FAR" timeout 15 nc "$1" -d "$2" 5201 >"$got"
	wait
	cmp -s "$sent" "$got"
	rc=$?
	[ $rc -eq 0 ] || echo "got $(stat -c %s "$got") of 2000000 bytes"
	rm -f "$sent" "$got"
	return $rc
}

frag_needed_reaches_the_server_and_the_transfer_completes() {
	local before
	before=$(stat_value .flows.icmpErrors)
	download -4 10.11.1.4 || return 1
	# the server lowered its path MTU to the narrow link's
	vm spoke1 ip route get 10.10.2.2 | grep -q 'mtu 1280' ||
		{ vm spoke1 ip route get 10.10.2.2; return 1; }
	[ "$(stat_value .flows.icmpErrors)" -gt "$before" ] ||
		{ echo "no ICMP error passed with its flow"; return 1; }
}

packet_too_big_reaches_the_server_and_the_transfer_completes() {
	local before
	before=$(stat_value .flows.icmpErrors)
	download -6 fd00:11:0:1::4 || return 1
	vm spoke1 ip -6 route get fd00:10:0:2::2 | grep -q 'mtu 1280' ||
		{ vm spoke1 ip -6 route get fd00:10:0:2::2; return 1; }
	[ "$(stat_value .flows.icmpErrors)" -gt "$before" ] ||
		{ echo "no ICMPv6 error passed with its flow"; return 1; }
}

run_case far_client_behind_the_hub_vm
run_case up_with_icmp_denied_into_spoke1
run_case frag_needed_reaches_the_server_and_the_transfer_completes
run_case packet_too_big_reaches_the_server_and_the_transfer_completes
exit ${FAILED:-0}

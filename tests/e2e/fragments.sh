#!/usr/bin/env bash
# End to end: IP fragments through network security groups. The hub VM sends 3000-byte
# UDP datagrams, which its kernel splits into three fragments at the veth's MTU; only the
# first carries the ports. spoke1's subnet NSG allows UDP 5354 from the hub and denies the
# rest over IPv4 ("allow one port, deny all": later fragments judged alone would be
# denied), and over IPv6 allows everything but UDP 5355 ("deny one port, allow all": later
# fragments judged alone would pass). A datagram to an allowed port must arrive whole; of
# one to a denied port, no fragment may reach the VM.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_fragments vxfrag frag
e2e_topology "$WORK/topology.json"

rule() { # rule NAME PRIORITY ACCESS PROTOCOL SOURCE DESTINATION-PORT
	printf '{"name": "%s", "properties": {"priority": %s, "direction": "Inbound", "access": "%s",
	  "protocol": "%s", "sourceAddressPrefix": "%s", "sourcePortRange": "*",
	  "destinationAddressPrefix": "*", "destinationPortRange": "%s"}}' "$@"
}
NSG=$(cat <<JSON
{"type": "Microsoft.Network/networkSecurityGroups", "name": "spoke1-fragments", "properties": {
  "securityRules": [
    $(rule AllowUdp5354 100 Allow Udp 10.10.0.0/16 5354),
    $(rule DenyUdp5355 110 Deny Udp '*' 5355),
    $(rule AllowHubIpv6 120 Allow '*' fd00:10::/48 '*'),
    $(rule DenyAllIn 4000 Deny '*' '*' '*')
  ]}}
JSON
)
jq --argjson nsg "$NSG" '
	.resources += [$nsg]
	| (.resources[] | select(.name == "spoke1") | .properties.subnets[0].properties.networkSecurityGroup)
		= {"id": "spoke1-fragments"}' "$WORK/topology.json" >"$CONFIG"

# receive.py ADDRESS PORT: the first datagram within 3 s, as "whole" when it is the one
# send.py sends, else its length; "none" when nothing came
cat >"$WORK/receive.py" <<'PY'
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
s.settimeout(3)
try:
    data, _ = s.recvfrom(65535)
except socket.timeout:
    print("none")
else:
    print("whole" if data == bytes(i % 251 for i in range(3000)) else len(data))
PY
# send.py ADDRESS PORT: one 3000-byte datagram
cat >"$WORK/send.py" <<'PY'
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(bytes(i % 251 for i in range(3000)), (addr, port))
PY
wait_listen_udp() { # wait_listen_udp VM PORT
	local i
	for i in $(seq 50); do
		vm "$1" ss -lnu | grep -q ":$2 " && return 0
		sleep 0.1
	done
	return 1
}
# fragments_received VM FAMILY: fragments the VM's kernel was given to reassemble
fragments_received() {
	if [ "$2" = 6 ]; then
		vm "$1" awk '$1 == "Ip6ReasmReqds" { print $2 }' /proc/net/snmp6
	else
		vm "$1" awk '$1 == "Ip:" && !h { for (i = 1; i <= NF; i++) if ($i == "ReasmReqds") c = i; h = 1; next }
			$1 == "Ip:" { print $c }' /proc/net/snmp
	fi
}
# deliver FAMILY DESTINATION PORT: what the VM's receiver got of one datagram from the hub
deliver() {
	local got
	got=$(mktemp -p "$WORK")
	vm spoke1 python3 "$WORK/receive.py" "$2" "$3" >"$got" &
	wait_listen_udp spoke1 "$3" || { echo "receiver did not start"; return 1; }
	vm hub python3 "$WORK/send.py" "$2" "$3"
	wait
	cat "$got"
}

up_with_a_fragment_nsg() {
	gw up -c "$CONFIG" || return 1
	[ -e /sys/fs/bpf/vnet-xdp/$GATEWAY/fragments ]
}

allowed_datagram_arrives_whole() { # FAMILY DESTINATION PORT
	local got
	got=$(deliver "$@")
	[ "$got" = whole ] || { echo "IPv$1 datagram to port $3: $got"; return 1; }
}

denied_datagram_leaves_nothing_at_the_vm() { # FAMILY DESTINATION PORT
	local before_frags before_drops got frags drops
	before_frags=$(fragments_received spoke1 "$1")
	before_drops=$(stat_value '(.drops[] | select(.reason == "nsg_denied_inbound") | .packets)')
	got=$(deliver "$@")
	frags=$(fragments_received spoke1 "$1")
	drops=$(stat_value '(.drops[] | select(.reason == "nsg_denied_inbound") | .packets)')
	echo "IPv$1 to port $3: receiver got $got; fragments at the VM $before_frags -> $frags;" \
		"nsg_denied_inbound $before_drops -> $drops"
	[ "$got" = none ] || return 1
	[ "$frags" = "$before_frags" ] || return 1
	[ "$drops" -ge $((before_drops + 3)) ] # the first fragment and both later ones
}

ipv4_datagram_to_an_allowed_port_arrives_whole() { allowed_datagram_arrives_whole 4 10.11.1.4 5354; }
ipv6_datagram_to_an_allowed_port_arrives_whole() { allowed_datagram_arrives_whole 6 fd00:11:0:1::4 5354; }
ipv4_datagram_to_a_denied_port_leaves_nothing_at_the_vm() {
	denied_datagram_leaves_nothing_at_the_vm 4 10.11.1.4 5355
}
ipv6_datagram_to_a_denied_port_leaves_nothing_at_the_vm() {
	denied_datagram_leaves_nothing_at_the_vm 6 fd00:11:0:1::4 5355
}

run_case up_with_a_fragment_nsg
run_case ipv4_datagram_to_an_allowed_port_arrives_whole
run_case ipv6_datagram_to_an_allowed_port_arrives_whole
run_case ipv4_datagram_to_a_denied_port_leaves_nothing_at_the_vm
run_case ipv6_datagram_to_a_denied_port_leaves_nothing_at_the_vm
exit ${FAILED:-0}

#!/usr/bin/env bash
# Site-to-site IPsec with gateway transit, end to end in the QEMU guest (Debian's kernel):
# a gateway namespace running vnet-xdp for a hub VNet with its VPN gateway and two peered
# spokes (spoke1 uses the hub's gateway, spoke2 does not), and an on-premises namespace
# whose own charon and xfrm interface play the customer's VPN device, with a host behind
# it. The config is tests/data/config/ipsec-transit.json. The hub and spoke1 reach
# on-premises and back through real ESP; spoke2 does not, either way; the per-tunnel
# counters equal the traffic sent; a fragmented datagram's later fragments follow their
# first's NSG verdict.
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
export VM_TIMEOUT=${VM_TIMEOUT:-1200}
vm_enter "$@"
. tests/vm/ipsec_helpers.bash

# `reload` swaps the XDP program in one netlink request, which it can do only where the
# program is attached directly; in this guest libxdp's dispatcher works and would hold the
# interfaces. Pointing libxdp at a folder that is no bpffs makes it attach directly, as it
# does on hosts where the dispatcher cannot load.
export LIBXDP_BPFFS=/tmp/vxs2s-no-bpffs
mkdir -p $LIBXDP_BPFFS

P=vxs2s
GW=$P-gw ONPREM=$P-onprem HOST=$P-host HUB=$P-hub SPOKE1=$P-spoke1 SPOKE2=$P-spoke2
DIR=$(mktemp -d /tmp/$P.XXXXXX)
CONFIG=tests/data/config/ipsec-transit.json
ONPREM_IF_ID=9

set_up() {
	s2s_topology_up 10.10.0.0/16 10.11.0.0/16 10.12.0.0/16 || return 1
	install -m 600 $CONFIG "$DIR/gw.json"
	onprem_conf_azure >"$DIR/onprem.conf"
	charon_start $GW || return 1
	charon_start $ONPREM || return 1
	swanctl_load $ONPREM "$DIR/onprem.conf"
}

up_brings_the_connection_up() {
	vx $GW up -c "$DIR/gw.json" || return 1
	wait_tunnel_up $GW ipsecgw to-onprem 120 || return 1
	vx $GW routes -c "$DIR/gw.json" --vnet spoke1 | grep -E ' 192\.168\.50\.0/24 +VirtualNetworkGateway ' &&
	! vx $GW routes -c "$DIR/gw.json" --vnet spoke2 | grep -q VirtualNetworkGateway
}

hub_and_onprem_reach_each_other() {
	ping_counted $HUB 192.168.50.10 && ping_counted $HOST 10.10.1.4
}

transit_spoke_and_onprem_reach_each_other() {
	ping_counted $SPOKE1 192.168.50.10 && ping_counted $HOST 10.11.1.4
}

spoke_without_transit_is_cut_off_both_ways() {
	local drops0 drops1 tdrops0 tdrops1
	drops0=$(vx $GW stats -n ipsecgw -j | jq '(.drops[] | select(.reason == "route_none") | .packets)')
	tdrops0=$(tunnel_drops $GW ipsecgw to-onprem no_route)
	! ip netns exec $SPOKE2 ping -c 2 -i 0.3 -W 2 192.168.50.10 || return 1
	! ip netns exec $HOST ping -c 2 -i 0.3 -W 2 10.12.1.4 || return 1
	drops1=$(vx $GW stats -n ipsecgw -j | jq '(.drops[] | select(.reason == "route_none") | .packets)')
	tdrops1=$(tunnel_drops $GW ipsecgw to-onprem no_route)
	figure "spoke2 -> on-premises: $((drops1 - drops0)) dropped by Azure's None route;" \
		"on-premises -> spoke2: $((tdrops1 - tdrops0)) dropped at the tunnel's ingress"
	[ $((drops1 - drops0)) -eq 2 ] && [ $((tdrops1 - tdrops0)) -eq 2 ]
}

tcp_from_onprem_to_the_transit_spoke() {
	local before after
	before=$(counters_snapshot $GW ipsecgw to-onprem)
	tcp_transfer $HOST $SPOKE1 10.11.1.4 500000 "$DIR" || return 1
	after=$(counters_snapshot $GW ipsecgw to-onprem)
	figure "decrypted +$(delta "$before" "$after" 1) packets, +$(delta "$before" "$after" 4) bytes;" \
		"ESP +$(delta "$before" "$after" 3)"
	[ "$(delta "$before" "$after" 4)" -gt 500000 ] &&
	[ "$(delta "$before" "$after" 3)" -eq "$(delta "$before" "$after" 1)" ]
}

# spoke1's subnet gets a route table that stops the gateway's routes and sends half the
# site, and a prefix no site holds, to the VirtualNetworkGateway: the half reaches
# on-premises through the tunnel on the user route alone (before, the table's Azure None
# route dropped it); the other prefix is dropped at the gateway (gateway_no_route).
gateway_user_route_sends_the_spoke_into_the_tunnel() {
	local drops0 drops1
	jq '.resources += [{"type": "Microsoft.Network/routeTables", "name": "rt-spoke1",
		"properties": {"disableBgpRoutePropagation": true, "routes": [
		  {"name": "site-half", "properties": {"addressPrefix": "192.168.50.0/25",
		    "nextHopType": "VirtualNetworkGateway"}},
		  {"name": "nowhere", "properties": {"addressPrefix": "203.0.113.0/24",
		    "nextHopType": "VirtualNetworkGateway"}}]}}]
	    | (.resources[] | select(.name == "spoke1") | .properties.subnets[0].properties
		.routeTable) = {"id": "rt-spoke1"}' "$DIR/gw.json" >"$DIR/gw-udr.json"
	chmod 600 "$DIR/gw-udr.json"
	vx $GW check -c "$DIR/gw-udr.json" 2>&1 | grep 'not enforced' &&
		{ echo "check: user routes to the VNet gateway accepted but not enforced"; return 1; }
	vx $GW reload -c "$DIR/gw-udr.json" || return 1
	vx $GW routes -c "$DIR/gw-udr.json" --vnet spoke1 |
		grep -E '^default +User +Active +192\.168\.50\.0/25 +VirtualNetworkGateway ' || return 1
	wait_tunnel_up $GW ipsecgw to-onprem 60 || return 1
	ping_counted $SPOKE1 192.168.50.10 || return 1
	drops0=$(vx $GW stats -n ipsecgw -j | jq '(.drops[] | select(.reason == "gateway_no_route") | .packets)')
	! ip netns exec $SPOKE1 ping -c 2 -i 0.3 -W 2 203.0.113.9 || return 1
	drops1=$(vx $GW stats -n ipsecgw -j | jq '(.drops[] | select(.reason == "gateway_no_route") | .packets)')
	figure "spoke1 -> 203.0.113.9 (no site's): gateway_no_route $drops0 -> $drops1"
	[ $((drops1 - drops0)) -eq 2 ] || return 1
	vx $GW reload -c "$DIR/gw.json"
}

# udp_datagrams SRC_NS DST PORT N: N datagrams of one line each.
udp_datagrams() {
	local i
	for ((i = 0; i < $4; i++)); do
		echo "datagram $i" | ip netns exec "$1" timeout 5 nc -u -q 0 "$2" "$3"
	done
}

# tunnel_drop_fields NS GATEWAY TUNNEL DIRECTION REASON: "REASON_PACKETS DIRECTION_SUM"
tunnel_drop_fields() {
	vx "$1" stats -n "$2" -j | jq -r --arg t "$3" --arg d "$4" --arg r "$5" '
		([.tunnelDrops[] | select(.tunnel == $t and .direction == $d and .reason == $r) |
		  .packets] | add // 0) as $p |
		(.tunnels[] | select(.name == $t) | .[$d + "PacketDropCount"]) as $sum |
		"\($p) \($sum) \(.drops[] | select(.reason == "nsg_denied_" + (if $d == "ingress"
		  then "inbound" else "outbound" end)) | .packets)"'
}

# The hub's NSG denies UDP port 5022 from on-premises: decrypted datagrams to it are
# dropped at the tunnel's ingress (TunnelIngressPacketDropCount), the next port passes.
inbound_nsg_denies_one_port_from_onprem() {
	local before after delivered listener
	before=$(tunnel_drop_fields $GW ipsecgw to-onprem ingress nsg_denied_inbound)
	ip netns exec $HUB timeout 20 nc -u -l 10.10.1.4 5024 >"$DIR/udp5024" &
	listener=$!
	sleep 0.5
	udp_datagrams $HOST 10.10.1.4 5022 3
	udp_datagrams $HOST 10.10.1.4 5024 1
	sleep 1
	after=$(tunnel_drop_fields $GW ipsecgw to-onprem ingress nsg_denied_inbound)
	kill $listener 2>/dev/null
	delivered=$(grep -c datagram "$DIR/udp5024")
	figure "to port 5022: tunnel nsg_denied_inbound $before -> $after" \
		"(reason, TunnelIngressPacketDropCount, all nsg_denied_inbound); port 5024 got $delivered"
	[ "$(delta "$before" "$after" 1)" -eq 3 ] && [ "$(delta "$before" "$after" 2)" -eq 3 ] &&
	[ "$(delta "$before" "$after" 3)" -eq 3 ] && [ "$delivered" -eq 1 ]
}

# udp_datagram_fragmented SRC_NS DST PORT BYTES: one UDP datagram of BYTES, which the
# sender fragments (PMTU discovery off: its fragments carry no DF) to fit its link's MTU.
udp_datagram_fragmented() {
	ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER: IP_PMTUDISC_DONT
s.sendto(b"f" * int(sys.argv[3]), (sys.argv[1], int(sys.argv[2])))' "$2" "$3" "$4"
}

# A UDP datagram too large for one packet crosses the tunnel in fragments, each its own
# ESP packet; decrypted, its later fragments carry no ports. To the allowed port 5024
# every fragment reaches the hub's VM, which reassembles the datagram; to the denied port
# 5022 none enters the VNet: the later fragments follow their first's inbound NSG drop
# (bpf/frag.h), rather than being judged without ports and allowed.
fragmented_udp_from_onprem_follows_its_first_fragment() {
	local before after c0 c1 c2 got listener
	ip netns exec $HUB timeout 20 nc -u -l 10.10.1.4 5024 >"$DIR/frag5024" &
	listener=$!
	sleep 0.5
	c0=$(counters_snapshot $GW ipsecgw to-onprem)
	udp_datagram_fragmented $HOST 10.10.1.4 5024 2000 || return 1
	sleep 1
	c1=$(counters_snapshot $GW ipsecgw to-onprem)
	kill $listener 2>/dev/null
	got=$(tr -cd f <"$DIR/frag5024" | wc -c)
	before=$(tunnel_drop_fields $GW ipsecgw to-onprem ingress nsg_denied_inbound)
	udp_datagram_fragmented $HOST 10.10.1.4 5022 2000 || return 1
	sleep 1
	after=$(tunnel_drop_fields $GW ipsecgw to-onprem ingress nsg_denied_inbound)
	c2=$(counters_snapshot $GW ipsecgw to-onprem)
	figure "2000 bytes to port 5024: $got delivered, decrypted +$(delta "$c0" "$c1" 1) packets;" \
		"to port 5022: nsg_denied_inbound +$(delta "$before" "$after" 1)," \
		"into the VNet +$(delta "$c1" "$c2" 1)"
	[ "$got" -eq 2000 ] && [ "$(delta "$c0" "$c1" 1)" -ge 2 ] &&
	[ "$(delta "$before" "$after" 1)" -ge 2 ] && [ "$(delta "$c1" "$c2" 1)" -eq 0 ]
}

# ... and UDP port 5023 toward on-premises outbound: dropped before the tunnel, counted
# as the tunnel's egress drops (TunnelEgressPacketDropCount), not as its egress.
outbound_nsg_denial_is_a_tunnel_egress_drop() {
	local before after c0 c1
	before=$(tunnel_drop_fields $GW ipsecgw to-onprem egress nsg_denied_outbound)
	c0=$(counters_snapshot $GW ipsecgw to-onprem)
	udp_datagrams $HUB 192.168.50.10 5023 2
	after=$(tunnel_drop_fields $GW ipsecgw to-onprem egress nsg_denied_outbound)
	c1=$(counters_snapshot $GW ipsecgw to-onprem)
	figure "to port 5023: tunnel nsg_denied_outbound $before -> $after; egress +$(delta "$c0" "$c1" 2)"
	[ "$(delta "$before" "$after" 1)" -eq 2 ] && [ "$(delta "$before" "$after" 2)" -eq 2 ] &&
	[ "$(delta "$before" "$after" 3)" -eq 2 ] && [ "$(delta "$c0" "$c1" 2)" -eq 0 ]
}

# sa_field NS GATEWAY TUNNEL FIELD
sa_field() { tunnel_field "$@"; }

# A forged ESP packet on the gateway's inbound SA from the peer's address: first with a
# sequence number the SA already saw (the kernel refuses it as a replay), then with a new
# one and a wrong ICV (an integrity failure). Both reach xfrm (counted as ESP) and show
# in the tunnel's SA statistics.
sa_statistics_count_replays_and_integrity_failures() {
	local spi seq r0 r1 i0 i1
	spi=$(ip -n $GW xfrm state | awk '$1 == "src" && $4 == "198.51.100.1" {getline; print $4; exit}')
	seq=$(ip -n $GW xfrm state | awk -v spi="$spi" '$1 == "proto" && $4 == spi {f = 1}
		f && /anti-replay context/ {sub(/,/, "", $4); print $4; exit}')
	r0=$(sa_field $GW ipsecgw to-onprem replayErrors)
	i0=$(sa_field $GW ipsecgw to-onprem integrityFailures)
	figure "inbound SA spi $spi, last sequence number $seq; replay $r0, integrity $i0"
	[ -n "$spi" ] && [ -n "$seq" ] || { ip -n $GW xfrm state; return 1; }
	ip netns exec $ONPREM python3 - "$spi" "$seq" <<-'PY' || return 1
	import socket, struct, sys
	spi, seq = int(sys.argv[1], 16), int(sys.argv[2], 16)
	s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
	for n in (seq, seq + 1000):  # seen already; new but forged
	    s.sendto(struct.pack("!II", spi, n) + bytes(8) + bytes(64) + bytes(16), ("198.51.100.1", 0))
	PY
	sleep 1
	r1=$(sa_field $GW ipsecgw to-onprem replayErrors)
	i1=$(sa_field $GW ipsecgw to-onprem integrityFailures)
	figure "after: replay $r1, integrity $i1"
	vx $GW stats -n ipsecgw --prometheus | grep -E 'tunnel_(replay|integrity)' 
	[ $((r1 - r0)) -eq 1 ] && [ $((i1 - i0)) -eq 1 ]
}

# A reload whose local network gateway has another address space: the kernel routes into
# the connection's interface follow, charon keeps the connection, traffic goes on.
reload_follows_changed_remote_spaces() {
	jq '(.resources[] | select(.name == "onprem") | .properties.localNetworkAddressSpace
		.addressPrefixes) = ["192.168.50.0/24", "172.21.0.0/16"]' "$DIR/gw.json" >"$DIR/gw2.json"
	chmod 600 "$DIR/gw2.json"
	local xfrm
	vx $GW reload -c "$DIR/gw2.json" || return 1
	xfrm=$(tunnel_interface ipsecgw)
	ip -n $GW route show dev "$xfrm"
	ip -n $GW route show dev "$xfrm" | grep -q '^172.21.0.0/16' &&
	! ip -n $GW route show dev "$xfrm" | grep -q '^172.20.0.0/16' &&
	ip -n $GW route show dev "$xfrm" | grep -q '^192.168.50.0/24' || return 1
	vx $GW routes -c "$DIR/gw2.json" --vnet hub | grep -E ' 172\.21\.0\.0/16 +VirtualNetworkGateway ' ||
		return 1
	swanctl_in $GW --list-conns | grep -q '^vnetxdp-ipsecgw.to-onprem:' ||
		{ swanctl_in $GW --list-conns; return 1; }
	wait_tunnel_up $GW ipsecgw to-onprem 60 && ping_counted $HUB 192.168.50.10
}

# The on-premises device forgets the connection and closes it: charon reports the tunnel
# down, and what the hub sends toward on-premises finds no SA on the connection's
# interface, which drops it: the tunnel's egress drops.
tunnel_down_is_reported_and_its_traffic_dropped() {
	local before after i
	before=$(tunnel_drop_fields $GW ipsecgw to-onprem egress xfrm_interface_dropped)
	printf 'connections {\n}\nsecrets {\n}\n' >"$DIR/empty.conf"
	swanctl_load $ONPREM "$DIR/empty.conf" >/dev/null 2>&1
	swanctl_in $ONPREM --terminate --ike azure --force --timeout 10 >/dev/null 2>&1
	for ((i = 0; i < 60; i++)); do
		[ "$(tunnel_field $GW ipsecgw to-onprem up)" = 0 ] && break
		sleep 0.5
	done
	[ "$(tunnel_field $GW ipsecgw to-onprem up)" = 0 ] || { swanctl_in $GW --list-sas; return 1; }
	vx $GW stats -n ipsecgw --prometheus | grep -q '^vnetxdp_tunnel_up{tunnel="to-onprem"} 0$' ||
		return 1
	! ip netns exec $HUB ping -c 2 -i 0.3 -W 1 192.168.50.10 || return 1
	after=$(tunnel_drop_fields $GW ipsecgw to-onprem egress xfrm_interface_dropped)
	figure "tunnel down (up 0): xfrm_interface_dropped and TunnelEgressPacketDropCount" \
		"$(echo "$before" | cut -d' ' -f1,2) -> $(echo "$after" | cut -d' ' -f1,2)"
	[ "$(delta "$before" "$after" 1)" -eq 2 ] && [ "$(delta "$before" "$after" 2)" -eq 2 ] || {
		ip -n $GW -s -s link show dev "$(tunnel_interface ipsecgw)"
		ip -n $GW xfrm policy
		vx $GW stats -n ipsecgw -j | jq -c '.tunnelDrops[] | select(.direction == "egress")'
		return 1
	}
}

down_removes_it() {
	local xfrm
	xfrm=$(tunnel_interface ipsecgw)
	vx $GW down -n ipsecgw || return 1
	! ip -n $GW link show "$xfrm" 2>/dev/null
}

CASES="up_brings_the_connection_up hub_and_onprem_reach_each_other
	transit_spoke_and_onprem_reach_each_other spoke_without_transit_is_cut_off_both_ways
	tcp_from_onprem_to_the_transit_spoke gateway_user_route_sends_the_spoke_into_the_tunnel
	inbound_nsg_denies_one_port_from_onprem fragmented_udp_from_onprem_follows_its_first_fragment
	outbound_nsg_denial_is_a_tunnel_egress_drop sa_statistics_count_replays_and_integrity_failures
	reload_follows_changed_remote_spaces tunnel_down_is_reported_and_its_traffic_dropped
	down_removes_it"
# shellcheck disable=SC2086
run_scenario ipsec_s2s_transit $CASES || exit 1
charon_stop $GW
charon_stop $ONPREM
[ -z "${FAILED:-}" ]

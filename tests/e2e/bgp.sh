#!/usr/bin/env bash
# End to end: ExpressRoute-style private peering. A provider namespace runs its own FRR
# bgpd (the on-premises edge) on a VLAN device of a veth towards the gateway; the
# gateway's `up` puts its side of the circuit's /30 on its VLAN device and starts its
# bgpd. The session reaches Established, the provider's prefixes appear in `status -j`,
# a withdrawn one vanishes, and the link going dark drops the session within the hold
# time. With `serve` following bgpd, the learned prefixes are forwarded: a host behind
# the provider's router (on-premises, inside an announced prefix) and the hub's VM reach
# each other across the circuit through the hub's NSG, a source the provider did not
# announce is dropped, and a withdrawn prefix stops being forwarded. Prints the figures
# measured.
cd "$(dirname "$0")/../.."
# The host kernel may lack 802.1Q (no `type vlan`): then the test runs in a guest on
# Debian's kernel (tests/vm/README.md), where 8021q loads.
if [ -n "$VNET_XDP_VM" ]; then
	modprobe -a veth 8021q
elif [ "$(id -u)" -eq 0 ] && ! { ip link add vxbgpv$$ type veth peer name vxbgpw$$ &&
	ip link add link vxbgpv$$ name vxbgpv$$.5 type vlan id 5; } 2>/dev/null; then
	ip link del vxbgpv$$ 2>/dev/null
	echo "e2e_bgp: this kernel has no 802.1Q VLAN devices; running in a guest"
	exec scripts/vm/run.sh -t 600 "$0" "$@"
fi
ip link del vxbgpv$$ 2>/dev/null
. tests/e2e/lib.bash
e2e_begin e2e_bgp vxbgp bgp
[ -x /usr/lib/frr/bgpd ] && command -v vtysh >/dev/null ||
	{ skip e2e_bgp "FRR (package frr, scripts/install-deps.sh) is not installed"; exit 0; }
PROV=$PREFIX-prov
ONPREM=$PREFIX-onprem
ONPREM_HOST=172.16.1.10
LISTEN=127.0.0.1:$((20000 + $$ % 20000))
PROV_DIR=/run/vnet-xdp-e2e-prov$$
HOLD=9

e2e_cleanup() {
	stop_pid_file "$PROV_DIR/bgpd.pid"
	rm -rf "$PROV_DIR"
	ip netns del "$PROV" 2>/dev/null
	ip netns del "$ONPREM" 2>/dev/null
}

e2e_topology
ip netns add "$PROV"
veth_link "$NS" er0 "$PROV" pe0
ip -n "$NS" link add link er0 name er0.100 type vlan id 100
ip -n "$NS" link set er0.100 up
ip -n "$PROV" link add link pe0 name pe0.100 type vlan id 100
ip -n "$PROV" link set pe0.100 up
ip -n "$PROV" addr add 192.168.15.17/30 dev pe0.100
# On-premises behind the provider's router, in the announced 172.16.1.0/24. The provider's
# bgpd runs without zebra: its routes back to the VNets are static.
ip netns add "$ONPREM"
ip -n "$ONPREM" link set lo up
veth_link "$PROV" pe1 "$ONPREM" op0
ip -n "$PROV" addr add 172.16.1.1/24 dev pe1
ip -n "$ONPREM" addr add $ONPREM_HOST/24 dev op0
ip -n "$ONPREM" route add default via 172.16.1.1
ip netns exec "$PROV" sysctl -qw net.ipv4.ip_forward=1
ip -n "$PROV" route add 10.10.0.0/16 via 192.168.15.18 dev pe0.100
ip -n "$PROV" route add 10.11.0.0/16 via 192.168.15.18 dev pe0.100
# A source the provider does not announce, for the anti-spoofing case.
ip -n "$PROV" addr add 172.16.9.9/32 dev lo
# A second VLAN device with another id, to see `up` refuse it.
ip -n "$NS" link add link er0 name er0.200 type vlan id 200

HUB_SPACE=$(jq -r '.resources[] | select(.name == "hub") | .properties.addressSpace.addressPrefixes[0]' "$CONFIG")
GW_SUBNET=$(python3 -c "import ipaddress,sys; n=ipaddress.ip_network(sys.argv[1]); print(list(n.subnets(new_prefix=27))[-1])" "$HUB_SPACE")
jq --arg gws "$GW_SUBNET" --argjson hold $HOLD \
  --argjson deny "$(security_rule DenyOnpremTcp5022 100 Inbound Deny Tcp 172.16.0.0/12 5022)" \
  --argjson allow "$(security_rule AllowOnprem 110 Inbound Allow '*' 172.16.0.0/12 '*')" '
  .gateway.expressRouteConnections = [{"name": "to-circuit", "interface": "er0.100",
     "link": "Primary", "holdTimeSeconds": $hold}]
  | (.resources[] | select(.name == "hub") | .properties.subnets) += [{"name": "GatewaySubnet",
     "properties": {"addressPrefix": $gws}}]
  | (.resources[] | select(.name == "hub") | .properties.virtualNetworkPeerings[0].properties.allowGatewayTransit) = true
  | (.resources[] | select(.name == "spoke1") | .properties.virtualNetworkPeerings[0].properties.useRemoteGateways) = true
  | (.resources[] | select(.name == "hub") | .properties.subnets[0].properties.networkSecurityGroup) = {"id": "hub-nsg"}
  | .resources += [
    {"type": "Microsoft.Network/networkSecurityGroups", "name": "hub-nsg",
     "properties": {"securityRules": [$deny, $allow]}},
    {"type": "Microsoft.Network/virtualNetworkGateways", "name": "hub-ergw",
     "properties": {"gatewayType": "ExpressRoute", "ipConfigurations": [{"name": "c",
       "properties": {"subnet": {"id": "hub/GatewaySubnet"}}}]}},
    {"type": "Microsoft.Network/expressRouteCircuits", "name": "circuit1",
     "properties": {"peerings": [{"name": "AzurePrivatePeering", "properties": {
       "peeringType": "AzurePrivatePeering", "peerASN": 64512, "vlanId": 100,
       "primaryPeerAddressPrefix": "192.168.15.16/30",
       "secondaryPeerAddressPrefix": "192.168.15.20/30"}}]}},
    {"type": "Microsoft.Network/connections", "name": "to-circuit",
     "properties": {"connectionType": "ExpressRoute",
       "virtualNetworkGateway1": {"id": "hub-ergw"}, "peer": {"id": "circuit1"}}}]' \
	"$CONFIG" >"$WORK/er.json"
jq '.gateway.expressRouteConnections[0].interface = "er0.200"' "$WORK/er.json" >"$WORK/wrong-vlan.json"

provider_start() {
	mkdir -p "$PROV_DIR"
	chown frr:frr "$PROV_DIR"
	chmod 0700 "$PROV_DIR"
	cat >"$PROV_DIR/frr.conf" <<CONF
frr defaults traditional
router bgp 64512
 bgp router-id 192.168.15.17
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 192.168.15.18 remote-as 65515
 neighbor 192.168.15.18 disable-connected-check
 neighbor 192.168.15.18 timers 1 $HOLD
 neighbor 192.168.15.18 timers connect 1
 address-family ipv4 unicast
  network 172.16.1.0/24
  network 172.16.2.0/24
 exit-address-family
CONF
	chown frr:frr "$PROV_DIR/frr.conf"
	in_ns "$PROV" /usr/lib/frr/bgpd -d -Z -f "$PROV_DIR/frr.conf" -i "$PROV_DIR/bgpd.pid" \
		--vty_socket "$PROV_DIR" -u frr -g frr -l 192.168.15.17 -P 0 \
		--log=file:"$PROV_DIR/bgpd.log"
}
provider() { vtysh --vty_socket "$PROV_DIR" -d bgpd "$@"; }

figure() { echo "$1" | tee -a "$WORK/figures"; }
# status -j lists gateways: this one's object
status_json() { gw status -n "$GATEWAY" -j | jq 'if type == "array" then .[0] else . end'; }
peers() { status_json | jq -c '.bgpPeers'; }
# wait_for JQ-EXPR SECONDS: until `status -j` satisfies it; prints the seconds waited.
wait_for() {
	local start now status
	start=$(date +%s.%N)
	while :; do
		status=$(status_json 2>/dev/null)
		[ -n "$status" ] && jq -e "$1" <<<"$status" >/dev/null && break
		now=$(date +%s.%N)
		awk -v s="$start" -v n="$now" -v m="$2" 'BEGIN { exit !(n - s > m) }' && return 1
		sleep 0.2
	done
	awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", n - s }'
}

up_refuses_a_vlan_device_of_another_id() {
	if gw up -c "$WORK/wrong-vlan.json" 2>"$WORK/wrong.log"; then
		gw down -n "$GATEWAY"; return 1
	fi
	grep -q "vlanId 100" "$WORK/wrong.log" || { cat "$WORK/wrong.log"; return 1; }
	# nothing of it left running
	! ls /run/vnet-xdp-bgp/"$GATEWAY" 2>/dev/null && ! pgrep -f "/run/vnet-xdp-bgp/$GATEWAY/" >/dev/null
}

session_establishes_and_learns_the_providers_prefixes() {
	provider_start || return 1
	gw up -c "$WORK/er.json" 2>"$WORK/up.log" || { cat "$WORK/up.log"; return 1; }
	ip -n "$NS" -4 addr show dev er0.100 | grep -q "192.168.15.18/30" || { echo "no address"; return 1; }
	[ "$(stat -c %a /run/vnet-xdp-bgp/"$GATEWAY"/link0)" = 700 ] &&
		[ "$(stat -c %a /run/vnet-xdp-bgp/"$GATEWAY"/link0/frr.conf)" = 600 ] || { echo "modes"; return 1; }
	local t
	t=$(wait_for '.bgpPeers[0].state == "Connected" and .bgpPeers[0].routesLearned == 2' 20) ||
		{ peers; cat /run/vnet-xdp-bgp/"$GATEWAY"/link0/bgpd.log; return 1; }
	figure "Connected with 2 routes learned ${t} s after up"
	peers
	status_json | jq -e '.bgpPeers[0] | .asn == 64512 and .peer == "192.168.15.17" and .routesAdvertised >= 1' >/dev/null || return 1
	# the provider learned the hub's space from us
	provider -c "show bgp ipv4 unicast json" | jq -e --arg p "$HUB_SPACE" '.routes[$p]' >/dev/null ||
		{ echo "provider did not learn $HUB_SPACE"; return 1; }
}

a_withdrawn_prefix_vanishes() {
	provider -c "configure terminal" -c "router bgp 64512" -c "address-family ipv4 unicast" \
		-c "no network 172.16.2.0/24" >/dev/null || return 1
	local t
	t=$(wait_for '.bgpPeers[0].routesLearned == 1' 10) || { peers; return 1; }
	figure "withdrawn prefix gone ${t} s after the withdrawal"
	provider -c "configure terminal" -c "router bgp 64512" -c "address-family ipv4 unicast" \
		-c "network 172.16.3.0/24" >/dev/null || return 1
	t=$(wait_for '.bgpPeers[0].routesLearned == 2' 10) || { peers; return 1; }
	figure "announced prefix learned ${t} s after the announcement"
}

routes_and_metrics_show_what_was_learned() {
	gw routes -c "$WORK/er.json" --vnet hub -j >"$WORK/routes.json" 2>/dev/null || return 1
	jq -e '[.[] | select(.source == "VirtualNetworkGateway" and .origin == "BGP"
		and .state == "Active" and .asPath == "64512" and .nextHopIpAddress == ["192.168.15.17"]
		and .interface == "er0.100")] | map(.addressPrefix) | sort
		== ["172.16.1.0/24", "172.16.3.0/24"]' "$WORK/routes.json" >/dev/null ||
		{ jq -c '.[] | select(.origin == "BGP")' "$WORK/routes.json"; return 1; }
	# spoke1 uses the hub's gateway and sees them; spoke2 does not and sees none
	gw routes -c "$WORK/er.json" --vnet spoke1 -j 2>/dev/null |
		jq -e '[.[] | select(.origin == "BGP")] | length == 2' >/dev/null || { echo spoke1; return 1; }
	gw routes -c "$WORK/er.json" --vnet spoke2 -j 2>/dev/null |
		jq -e '[.[] | select(.origin == "BGP")] | length == 0' >/dev/null || { echo spoke2; return 1; }
	gw routes -c "$WORK/er.json" --vnet hub 2>/dev/null | grep -Eq "VirtualNetworkGateway +Active +172.16.1.0/24" ||
		{ gw routes -c "$WORK/er.json" --vnet hub; return 1; }
	gw stats -n "$GATEWAY" -j | jq -e '.bgpPeers[0].routesLearned == 2' >/dev/null || { echo stats; return 1; }
	gw stats -n "$GATEWAY" --prometheus >"$WORK/metrics.txt" 2>/dev/null || return 1
	grep -q '^vnetxdp_bgp_peer_status{connection="to-circuit",peer="192.168.15.17"} 1$' "$WORK/metrics.txt" &&
		grep -q '^vnetxdp_bgp_routes_learned{connection="to-circuit",peer="192.168.15.17"} 2$' "$WORK/metrics.txt" &&
		grep -q '^vnetxdp_bgp_routes_advertised{connection="to-circuit",peer="192.168.15.17"} [1-9]' "$WORK/metrics.txt" ||
		{ grep bgp "$WORK/metrics.txt"; return 1; }
}

# wait_until SECONDS COMMAND...: until COMMAND succeeds; prints the seconds waited.
wait_until() {
	local start limit=$1
	shift
	start=$(date +%s.%N)
	until "$@" >/dev/null 2>&1; do
		awk -v s="$start" -v n="$(date +%s.%N)" -v m="$limit" 'BEGIN { exit !(n - s > m) }' && return 1
		sleep 0.1
	done
	awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", n - s }'
}
kernel_routes() { in_gw ip -4 route show proto bgp dev er0.100; }
kernel_routes_it() { kernel_routes | grep -q "^$1 via 192.168.15.17"; }
no_kernel_route() { ! kernel_routes_it "$1"; }
drops_of() { stat_value "[.drops[] | select(.reason == \"$1\") | .packets] | add // 0"; }
onprem() { ip netns exec "$ONPREM" "$@"; }
pings() { vm hub ping -c 1 -W 1 "$1"; }
no_pings() { ! vm hub ping -c 1 -W 0.3 "$1"; }

serve_routes_the_learned_prefixes() {
	local t
	nsenter --net=/run/netns/"$NS" "$VNET_XDP" serve -n "$GATEWAY" --listen "$LISTEN" \
		>>"$WORK/serve.log" 2>&1 &
	echo $! >"$WORK/serve.pid"
	t=$(wait_until 10 kernel_routes_it 172.16.1.0/24) || { cat "$WORK/serve.log"; kernel_routes; return 1; }
	figure "learned prefixes routed by the kernel ${t} s after serve started"
	kernel_routes_it 172.16.3.0/24 || { kernel_routes; return 1; }
	# the tc programs run on the VLAN device
	in_gw tc filter show dev er0.100 ingress | grep -q bpf || { echo "no tc ingress on er0.100"; return 1; }
}

hub_vm_and_on_premises_reach_each_other_across_the_circuit() {
	local sent=$WORK/sent received=$WORK/received listener
	REACH_PINGS=3 reaches hub $ONPREM_HOST || { gw stats -n "$GATEWAY" -j | jq -c .drops; return 1; }
	onprem ping -c 2 -i 0.2 -W 1 10.10.1.4 >/dev/null || { echo "on-premises cannot ping the hub VM"; return 1; }
	# TCP both ways: 4 MB from the hub VM to on-premises, 4 MB back
	head -c 4000000 /dev/urandom >"$sent"
	onprem timeout 20 nc -l -N -p 5201 >"$received" &
	listener=$!
	sleep 0.3
	vm hub timeout 15 nc -N $ONPREM_HOST 5201 <"$sent" || { echo "nc to on-premises failed"; return 1; }
	wait $listener
	cmp -s "$sent" "$received" || { echo "on-premises received $(stat -c %s "$received") bytes"; return 1; }
	vm hub timeout 20 nc -l -N -p 5201 >"$received" &
	listener=$!
	sleep 0.3
	onprem timeout 15 nc -N 10.10.1.4 5201 <"$sent" || { echo "nc from on-premises failed"; return 1; }
	wait $listener
	cmp -s "$sent" "$received" || { echo "the hub VM received $(stat -c %s "$received") bytes"; return 1; }
	figure "4 MB each way across the circuit"
}

hub_nsg_denies_a_port_from_on_premises() {
	local before after listener
	before=$(drops_of nsg_denied_inbound)
	vm hub timeout 10 nc -l -p 5022 >/dev/null &
	listener=$!
	sleep 0.3
	! onprem timeout 3 nc -z -w 1 10.10.1.4 5022 || { echo "port 5022 was reached"; return 1; }
	kill $listener 2>/dev/null
	wait $listener 2>/dev/null
	after=$(drops_of nsg_denied_inbound)
	[ "$after" -gt "$before" ] || { echo "nsg_denied_inbound $before -> $after"; return 1; }
	figure "on-premises to the hub's port 5022: denied by DenyOnpremTcp5022, nsg_denied_inbound $before -> $after"
}

source_the_provider_did_not_announce_is_dropped() {
	local before after
	before=$(drops_of tunnel_spoofed_inner)
	! ip netns exec "$PROV" ping -c 2 -i 0.2 -W 1 -I 172.16.9.9 10.10.1.4 >/dev/null ||
		{ echo "172.16.9.9 reached the hub VM"; return 1; }
	after=$(drops_of tunnel_spoofed_inner)
	[ "$after" -ge $((before + 2)) ] || { echo "tunnel_spoofed_inner $before -> $after"; return 1; }
	figure "a source outside the learned prefixes: dropped, tunnel_spoofed_inner $before -> $after"
}

withdrawn_prefix_is_no_longer_forwarded() {
	local t
	pings $ONPREM_HOST >/dev/null || return 1
	provider -c "configure terminal" -c "router bgp 64512" -c "address-family ipv4 unicast" \
		-c "no network 172.16.1.0/24" >/dev/null || return 1
	t=$(wait_until 15 no_pings $ONPREM_HOST) || { kernel_routes; return 1; }
	figure "withdrawn prefix no longer forwarded ${t} s after the withdrawal"
	wait_until 5 no_kernel_route 172.16.1.0/24 >/dev/null || { kernel_routes; return 1; }
	gw routes -c "$WORK/er.json" --vnet hub -j 2>/dev/null |
		jq -e '[.[] | select(.addressPrefix == "172.16.1.0/24" and .origin == "BGP")] | length == 0' \
		>/dev/null || { echo "routes still shows 172.16.1.0/24"; return 1; }
	# the prefix is no source of the link either: on-premises' packets are dropped
	! onprem ping -c 1 -W 1 10.10.1.4 >/dev/null || { echo "on-premises still reaches the hub"; return 1; }
	# announced again, forwarded again
	provider -c "configure terminal" -c "router bgp 64512" -c "address-family ipv4 unicast" \
		-c "network 172.16.1.0/24" >/dev/null || return 1
	t=$(wait_until 15 pings $ONPREM_HOST) || { kernel_routes; return 1; }
	figure "announced again, forwarded ${t} s after the announcement"
}

reload_keeps_bgpd_when_unchanged() {
	local before after
	before=$(cat /run/vnet-xdp-bgp/"$GATEWAY"/link0/bgpd.pid)
	gw reload -c "$WORK/er.json" 2>"$WORK/reload.log" || { cat "$WORK/reload.log"; return 1; }
	after=$(cat /run/vnet-xdp-bgp/"$GATEWAY"/link0/bgpd.pid)
	[ "$before" = "$after" ] || { echo "bgpd restarted: $before -> $after"; return 1; }
	wait_for '.bgpPeers[0].state == "Connected"' 2 >/dev/null
	# the new generation routes what was learned from its first packet on
	pings $ONPREM_HOST >/dev/null || { echo "no forwarding after the reload"; return 1; }
}

# The hold timer is bgpd's: the case checks that it ended the session, and prints how long
# that took as a figure (the polling of `status`, slow under emulation, adds to it).
dark_link_drops_the_session_by_its_hold_timer() {
	local t reason
	# serve's polling of bgpd, slow under emulation, would delay the polling of status:
	# it comes back once the session is down, to find nothing learned
	stop_pid_file "$WORK/serve.pid"
	ip -n "$PROV" link set pe0.100 down
	t=$(wait_for '.bgpPeers[0].state != "Connected" and .bgpPeers[0].routesLearned == 0' $((HOLD * 3))) ||
		{ peers; return 1; }
	reason=$(vtysh --vty_socket /run/vnet-xdp-bgp/"$GATEWAY"/link0 -d bgpd \
		-c "show bgp neighbors 192.168.15.17 json" | jq -r '.["192.168.15.17"] |
		"\(.lastResetDueTo // "-"), \(.lastNotificationReason // "-"), code \(.lastErrorCodeSubcode // "-")"')
	figure "session down ${t} s after the link went dark (hold time ${HOLD} s; bgpd: $reason)"
	# NOTIFICATION code 4: Hold Timer Expired (RFC 4271)
	[[ $reason == *[Hh]old* || $reason == *"code 04"* ]] || { echo "bgpd: $reason"; return 1; }
	# the session gone, nothing it learned is routed any more
	kernel_routes_it 172.16.3.0/24 || { echo "no route before serve"; kernel_routes; return 1; }
	nsenter --net=/run/netns/"$NS" "$VNET_XDP" serve -n "$GATEWAY" --listen "$LISTEN" \
		>>"$WORK/serve.log" 2>&1 &
	echo $! >"$WORK/serve.pid"
	t=$(wait_until 15 no_kernel_route 172.16.3.0/24) || { kernel_routes; return 1; }
	figure "routes of the lost session removed ${t} s after serve started"
	no_kernel_route 172.16.1.0/24 && no_pings $ONPREM_HOST
}

down_stops_bgpd_and_removes_the_address() {
	local pid
	pid=$(cat /run/vnet-xdp-bgp/"$GATEWAY"/link0/bgpd.pid)
	stop_pid_file "$WORK/serve.pid"
	gw down -n "$GATEWAY" || return 1
	! kill -0 "$pid" 2>/dev/null && [ ! -e /run/vnet-xdp-bgp/"$GATEWAY" ] &&
		! ip -n "$NS" -4 addr show dev er0.100 | grep -q 192.168.15.18 &&
		[ -z "$(kernel_routes)" ] && ! in_gw tc filter show dev er0.100 ingress | grep -q bpf
}

run_case up_refuses_a_vlan_device_of_another_id
run_case session_establishes_and_learns_the_providers_prefixes
run_case a_withdrawn_prefix_vanishes
run_case routes_and_metrics_show_what_was_learned
run_case serve_routes_the_learned_prefixes
run_case hub_vm_and_on_premises_reach_each_other_across_the_circuit
run_case hub_nsg_denies_a_port_from_on_premises
run_case source_the_provider_did_not_announce_is_dropped
run_case withdrawn_prefix_is_no_longer_forwarded
run_case reload_keeps_bgpd_when_unchanged
run_case dark_link_drops_the_session_by_its_hold_timer
run_case down_stops_bgpd_and_removes_the_address
sed 's/^/figure: /' "$WORK/figures" 2>/dev/null
exit ${FAILED:-0}

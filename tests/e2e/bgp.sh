#!/usr/bin/env bash
# End to end: ExpressRoute-style private peering. A provider namespace runs its own FRR
# bgpd (the on-premises edge) on a VLAN device of a veth towards the gateway; the
# gateway's `up` puts its side of the circuit's /30 on its VLAN device and starts its
# bgpd. The session reaches Established, the provider's prefixes appear in `status -j`,
# a withdrawn one vanishes, and the link going dark drops the session within the hold
# time. Prints the figures measured.
cd "$(dirname "$0")/../.."
# The host kernel may lack 802.1Q (no `type vlan`): then the test runs in a guest on
# Debian's kernel (tests/vm/README.md), where 8021q loads.
if [ -n "$VNET_XDP_VM" ]; then
	modprobe -a veth 8021q
elif [ "$(id -u)" -eq 0 ] && ! { ip link add vxbgpv$$ type veth peer name vxbgpw$$ &&
	ip link add link vxbgpv$$ name vxbgpv$$.5 type vlan id 5; } 2>/dev/null; then
	ip link del vxbgpv$$ 2>/dev/null
	echo "e2e_bgp: this kernel has no 802.1Q VLAN devices; running in a guest"
	exec scripts/vm/run.sh -t 300 "$0" "$@"
fi
ip link del vxbgpv$$ 2>/dev/null
. tests/e2e/lib.bash
e2e_begin e2e_bgp vxbgp bgp
[ -x /usr/lib/frr/bgpd ] && command -v vtysh >/dev/null ||
	{ skip e2e_bgp "FRR (package frr, scripts/install-deps.sh) is not installed"; exit 0; }
PROV=$PREFIX-prov
PROV_DIR=/run/vnet-xdp-e2e-prov$$
HOLD=9

e2e_cleanup() {
	stop_pid_file "$PROV_DIR/bgpd.pid"
	rm -rf "$PROV_DIR"
	ip netns del "$PROV" 2>/dev/null
}

e2e_topology
ip netns add "$PROV"
veth_link "$NS" er0 "$PROV" pe0
ip -n "$NS" link add link er0 name er0.100 type vlan id 100
ip -n "$NS" link set er0.100 up
ip -n "$PROV" link add link pe0 name pe0.100 type vlan id 100
ip -n "$PROV" link set pe0.100 up
ip -n "$PROV" addr add 192.168.15.17/30 dev pe0.100
# A second VLAN device with another id, to see `up` refuse it.
ip -n "$NS" link add link er0 name er0.200 type vlan id 200

HUB_SPACE=$(jq -r '.resources[] | select(.name == "hub") | .properties.addressSpace.addressPrefixes[0]' "$CONFIG")
GW_SUBNET=$(python3 -c "import ipaddress,sys; n=ipaddress.ip_network(sys.argv[1]); print(list(n.subnets(new_prefix=27))[-1])" "$HUB_SPACE")
jq --arg gws "$GW_SUBNET" --argjson hold $HOLD '
  .gateway.expressRouteConnections = [{"name": "to-circuit", "interface": "er0.100",
     "link": "Primary", "holdTimeSeconds": $hold}]
  | (.resources[] | select(.name == "hub") | .properties.subnets) += [{"name": "GatewaySubnet",
     "properties": {"addressPrefix": $gws}}]
  | (.resources[] | select(.name == "hub") | .properties.virtualNetworkPeerings[0].properties.allowGatewayTransit) = true
  | (.resources[] | select(.name == "spoke1") | .properties.virtualNetworkPeerings[0].properties.useRemoteGateways) = true
  | .resources += [
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
		and .state == "not routed yet" and .asPath == "64512")] | map(.addressPrefix) | sort
		== ["172.16.1.0/24", "172.16.3.0/24"]' "$WORK/routes.json" >/dev/null ||
		{ jq -c '.[] | select(.origin == "BGP")' "$WORK/routes.json"; return 1; }
	# spoke1 uses the hub's gateway and sees them; spoke2 does not and sees none
	gw routes -c "$WORK/er.json" --vnet spoke1 -j 2>/dev/null |
		jq -e '[.[] | select(.origin == "BGP")] | length == 2' >/dev/null || { echo spoke1; return 1; }
	gw routes -c "$WORK/er.json" --vnet spoke2 -j 2>/dev/null |
		jq -e '[.[] | select(.origin == "BGP")] | length == 0' >/dev/null || { echo spoke2; return 1; }
	gw routes -c "$WORK/er.json" --vnet hub 2>/dev/null | grep -q "VirtualNetworkGateway  not routed yet  172.16.1.0/24" ||
		{ gw routes -c "$WORK/er.json" --vnet hub; return 1; }
	gw stats -n "$GATEWAY" -j | jq -e '.bgpPeers[0].routesLearned == 2' >/dev/null || { echo stats; return 1; }
	gw stats -n "$GATEWAY" --prometheus >"$WORK/metrics.txt" 2>/dev/null || return 1
	grep -q '^vnetxdp_bgp_peer_status{connection="to-circuit",peer="192.168.15.17"} 1$' "$WORK/metrics.txt" &&
		grep -q '^vnetxdp_bgp_routes_learned{connection="to-circuit",peer="192.168.15.17"} 2$' "$WORK/metrics.txt" &&
		grep -q '^vnetxdp_bgp_routes_advertised{connection="to-circuit",peer="192.168.15.17"} [1-9]' "$WORK/metrics.txt" ||
		{ grep bgp "$WORK/metrics.txt"; return 1; }
}

reload_keeps_bgpd_when_unchanged() {
	local before after
	before=$(cat /run/vnet-xdp-bgp/"$GATEWAY"/link0/bgpd.pid)
	gw reload -c "$WORK/er.json" 2>"$WORK/reload.log" || { cat "$WORK/reload.log"; return 1; }
	after=$(cat /run/vnet-xdp-bgp/"$GATEWAY"/link0/bgpd.pid)
	[ "$before" = "$after" ] || { echo "bgpd restarted: $before -> $after"; return 1; }
	wait_for '.bgpPeers[0].state == "Connected"' 2 >/dev/null
}

# The hold timer is bgpd's: the case checks that it ended the session, and prints how long
# that took as a figure (the polling of `status`, slow under emulation, adds to it).
dark_link_drops_the_session_by_its_hold_timer() {
	local t reason
	ip -n "$PROV" link set pe0.100 down
	t=$(wait_for '.bgpPeers[0].state != "Connected" and .bgpPeers[0].routesLearned == 0' $((HOLD * 3))) ||
		{ peers; return 1; }
	reason=$(vtysh --vty_socket /run/vnet-xdp-bgp/"$GATEWAY"/link0 -d bgpd \
		-c "show bgp neighbors 192.168.15.17 json" | jq -r '.["192.168.15.17"] |
		"\(.lastResetDueTo // "-"), \(.lastNotificationReason // "-"), code \(.lastErrorCodeSubcode // "-")"')
	figure "session down ${t} s after the link went dark (hold time ${HOLD} s; bgpd: $reason)"
	# NOTIFICATION code 4: Hold Timer Expired (RFC 4271)
	[[ $reason == *[Hh]old* || $reason == *"code 04"* ]] || { echo "bgpd: $reason"; return 1; }
}

down_stops_bgpd_and_removes_the_address() {
	local pid
	pid=$(cat /run/vnet-xdp-bgp/"$GATEWAY"/link0/bgpd.pid)
	gw down -n "$GATEWAY" || return 1
	! kill -0 "$pid" 2>/dev/null && [ ! -e /run/vnet-xdp-bgp/"$GATEWAY" ] &&
		! ip -n "$NS" -4 addr show dev er0.100 | grep -q 192.168.15.18
}

run_case up_refuses_a_vlan_device_of_another_id
run_case session_establishes_and_learns_the_providers_prefixes
run_case a_withdrawn_prefix_vanishes
run_case routes_and_metrics_show_what_was_learned
run_case reload_keeps_bgpd_when_unchanged
run_case dark_link_drops_the_session_by_its_hold_timer
run_case down_stops_bgpd_and_removes_the_address
sed 's/^/figure: /' "$WORK/figures" 2>/dev/null
exit ${FAILED:-0}

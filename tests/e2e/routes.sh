#!/usr/bin/env bash
# End to end: service chaining through an NVA. The hub VM is the firewall of Azure's
# hub-and-spoke quickstart (tests/data/config/hub-firewall.json): IP forwarding on, an
# nft counter of what it forwards, masquerade toward the Internet as Azure Firewall does.
# The spokes' subnets route 0.0.0.0/0 to it; the gateway carries each leg.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_routes vxrt e2ert
e2e_topology
sed "s/\"name\": \"hubfw\"/\"name\": \"$GATEWAY\"/" tests/data/config/hub-firewall.json >"$CONFIG"

ip -n $PREFIX-internet route add 203.0.113.0/24 via 198.51.100.1
ip -n $PREFIX-spoke2 addr add 10.12.1.5/16 dev eth0
vm hub sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
	net.ipv4.conf.eth0.send_redirects=0
vm hub nft -f - <<'NFT'
table inet nva {
	counter forwarded { }
	chain forward { type filter hook forward priority 0; counter name forwarded; }
	chain out { type nat hook postrouting priority 100; ip daddr != 10.0.0.0/8 oifname "eth0" masquerade; }
}
NFT

forwarded_by_nva() { vm hub nft -j list counter inet nva forwarded | jq '.nftables[1].counter.packets'; }

# with_config SED-EXPR: reload the config with one edit; without: as written.
with_config() {
	sed "s/\"name\": \"hubfw\"/\"name\": \"$GATEWAY\"/" tests/data/config/hub-firewall.json |
		sed -e "${1:-s/^//}" >"$CONFIG"
	gw reload -c "$CONFIG"
}

# with_jq FILTER: reload the config with a jq edit.
with_jq() {
	sed "s/\"name\": \"hubfw\"/\"name\": \"$GATEWAY\"/" tests/data/config/hub-firewall.json |
		jq "$1" >"$CONFIG" || return 1
	gw reload -c "$CONFIG"
}

# An NSG with one Deny rule (direction, source, destination) on the NIC named first.
nsg_on_nic() {
	printf '.resources += [{"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01",
		"name": "nsg-test", "location": "westeurope", "properties": {"securityRules": [{"name": "deny",
		"properties": {"priority": 100, "direction": "%s", "access": "Deny", "protocol": "*",
		"sourceAddressPrefix": "%s", "sourcePortRange": "*", "destinationAddressPrefix": "%s",
		"destinationPortRange": "*"}}]}}]
		| (.resources[] | select(.name == "%s") | .properties.networkSecurityGroup) =
		{"id": "[resourceId('"'"'Microsoft.Network/networkSecurityGroups'"'"', '"'"'nsg-test'"'"')]"}' \
		"$2" "$3" "$4" "$1"
}

drops_of() { stat_value "(.drops[] | select(.reason == \"$1\") | .packets)"; }

up_with_the_firewall_config() {
	gw check --strict -c "$CONFIG" || return 1
	gw up -c "$CONFIG"
}

managed_neighbour() { in_gw ip -j neigh show 10.10.1.4 | jq -e '.[] | select(has("managed"))' >/dev/null; }

# The firewall has sent nothing yet: `up` alone made the kernel resolve it, and `down`
# takes back the entry it added.
appliance_next_hop_is_resolved_by_up() {
	vm spoke1 ping -c 1 -W 2 10.12.1.4 >/dev/null ||
		{ echo "first ping failed; next_hop_unresolved: $(stat_value '(.drops[] | select(.reason == "next_hop_unresolved") | .packets)')"; return 1; }
	managed_neighbour || { echo "no managed entry: $(in_gw ip neigh show 10.10.1.4)"; return 1; }
	local left=
	gw down -n $GATEWAY || return 1
	managed_neighbour && left=$(in_gw ip neigh show 10.10.1.4)
	gw up -c "$CONFIG" || return 1
	[ -z "$left" ] || { echo "managed entry left after down: $left"; return 1; }
}

# Without a route to the firewall its entry goes; with the routes back it returns.
reload_without_appliance_routes_removes_the_entry() {
	with_config 's/"nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.10.1.4"/"nextHopType": "None"/' >/dev/null || return 1
	! managed_neighbour || { echo "managed entry kept: $(in_gw ip neigh show 10.10.1.4)"; return 1; }
	with_config >/dev/null || return 1
	managed_neighbour || { echo "no managed entry after the routes came back"; return 1; }
	vm spoke1 ping -c 1 -W 2 10.12.1.4 >/dev/null || { echo "spoke1 -> spoke2 failed"; return 1; }
}

spoke1_to_spoke2_goes_through_the_nva_both_ways() {
	local before after
	before=$(forwarded_by_nva)
	vm spoke1 ping -c 3 -i 0.2 -W 2 10.12.1.4 >/dev/null || { echo "spoke1 -> spoke2 failed"; return 1; }
	vm spoke2 ping -c 3 -i 0.2 -W 2 10.11.1.4 >/dev/null || { echo "spoke2 -> spoke1 failed"; return 1; }
	after=$(forwarded_by_nva)
	# each echo and each reply crossed the NVA
	[ "$after" -ge $((before + 12)) ] || { echo "NVA forwarded $before -> $after"; return 1; }
}

tcp_spoke1_to_spoke2_through_the_nva() {
	local out before after rc
	out=$(mktemp)
	before=$(forwarded_by_nva)
	vm spoke2 timeout 10 nc -l -N -p 5401 >"$out" &
	sleep 0.3
	head -c 1048576 /dev/urandom | tee "$WORK/sent" | vm spoke1 timeout 8 nc -N 10.12.1.4 5401
	wait
	cmp -s "$out" "$WORK/sent"
	rc=$?
	rm -f "$out"
	after=$(forwarded_by_nva)
	[ $rc -eq 0 ] || { echo "transfer differs"; return 1; }
	[ "$after" -gt $((before + 100)) ] || { echo "NVA forwarded $before -> $after"; return 1; }
}

user_route_none_drops() {
	local before after
	before=$(stat_value '(.drops[] | select(.reason == "route_none") | .packets)')
	if vm spoke1 ping -c 2 -i 0.2 -W 1 10.12.1.5 >/dev/null; then echo "reached 10.12.1.5"; return 1; fi
	after=$(stat_value '(.drops[] | select(.reason == "route_none") | .packets)')
	[ "$after" -ge $((before + 2)) ] || { echo "route_none $before -> $after"; return 1; }
	# the user's route decided, not Azure's reserved 10.0.0.0/8
	gw verify -n $GATEWAY --in to-spoke1 --src 10.11.1.4 --dst 10.12.1.5:53 --proto udp -j |
		jq -e '.route.effectiveRoute | .name == "blackhole" and .routeTable == "rt-spoke1"' >/dev/null
}

verify_names_the_deciding_route() {
	local out
	out=$(gw verify -n $GATEWAY --in to-spoke2 --src 10.12.1.4 --dst 198.51.100.2:80 --proto tcp -j) || return 1
	jq -e '.route.nextHopType == "VirtualAppliance" and .route.effectiveRoute.name == "to-firewall" and
		.route.effectiveRoute.addressPrefix == "0.0.0.0/0" and .route.effectiveRoute.source == "User"' \
		<<<"$out" >/dev/null || { echo "$out"; return 1; }
	gw verify -n $GATEWAY --in to-spoke2 --src 10.12.1.4 --dst 198.51.100.2:80 --proto tcp |
		grep -q '0.0.0.0/0 (User: rt-spoke2/to-firewall)'
}

forced_tunnelling_sends_internet_traffic_through_the_nva() {
	local before after
	before=$(forwarded_by_nva)
	vm spoke1 ping -c 3 -i 0.2 -W 2 198.51.100.2 >/dev/null || { echo "no reply from the Internet"; return 1; }
	after=$(forwarded_by_nva)
	[ "$after" -ge $((before + 6)) ] || { echo "NVA forwarded $before -> $after"; return 1; }
}

forwarded_traffic_refused_where_spoke2_does_not_allow_it() {
	local before after
	with_config '/spoke2-to-hub/,/allowForwardedTraffic/ s/"allowForwardedTraffic": true/"allowForwardedTraffic": false/' || return 1
	before=$(stat_value '(.drops[] | select(.reason == "forwarded_not_allowed") | .packets)')
	if vm spoke1 ping -c 2 -i 0.2 -W 1 10.12.1.4 >/dev/null; then echo "spoke1 reached spoke2"; return 1; fi
	after=$(stat_value '(.drops[] | select(.reason == "forwarded_not_allowed") | .packets)')
	[ "$after" -ge $((before + 2)) ] || { echo "forwarded_not_allowed $before -> $after"; return 1; }
	# the hub's own traffic still enters spoke2
	vm hub ping -c 1 -W 2 10.12.1.4 >/dev/null || { echo "hub -> spoke2 failed"; return 1; }
	with_config
}

routes_show_the_effective_routes_per_subnet() {
	local routes
	routes=$(gw routes -c "$CONFIG" --vnet spoke1 -j) || return 1
	jq -e '.[] | select(.subnet == "workload" and .addressPrefix == "0.0.0.0/0" and
		.nextHopType == "VirtualAppliance" and .source == "User" and .state == "Active" and
		.nextHopIpAddress == ["10.10.1.4"] and .interface == "to-hub")' <<<"$routes" >/dev/null ||
		{ echo "$routes"; return 1; }
	jq -e '.[] | select(.subnet == "workload" and .addressPrefix == "0.0.0.0/0" and
		.nextHopType == "Internet" and .state == "Invalid")' <<<"$routes" >/dev/null
}

# spoke1's VM (its NIC known by its MAC, 02-00-00-00-11-04) takes the address of its
# neighbour's NIC (10.11.1.5): dropped per NIC, its own address still goes through.
vm_spoofing_its_neighbours_address_is_dropped() {
	local before after
	vm spoke1 ip addr add 10.11.1.5/24 dev eth0 || return 1
	before=$(drops_of nic_spoofed_source)
	if vm spoke1 ping -c 2 -i 0.2 -W 1 -I 10.11.1.5 10.12.1.4 >/dev/null; then
		vm spoke1 ip addr del 10.11.1.5/24 dev eth0; echo "the spoofed source reached spoke2"; return 1
	fi
	after=$(drops_of nic_spoofed_source)
	vm spoke1 ip addr del 10.11.1.5/24 dev eth0
	[ "$after" -ge $((before + 2)) ] || { echo "nic_spoofed_source $before -> $after"; return 1; }
	vm spoke1 ping -c 1 -W 2 10.12.1.4 >/dev/null || { echo "spoke1's own address failed"; return 1; }
}

# A rule of the firewall NIC's NSG denying spoke1 stops spoke1 -> spoke2 on the leg into
# the firewall (counted there, the firewall never sees it); spoke2 -> spoke1 still works
# both ways (its replies belong to the flow spoke2 opened).
nva_inbound_nsg_stops_the_spokes_traffic() {
	local before after nva_before nva_after
	with_jq "$(nsg_on_nic firewall-nic Inbound 10.11.0.0/16 '*')" >/dev/null || return 1
	before=$(drops_of nsg_denied_inbound)
	nva_before=$(forwarded_by_nva)
	if vm spoke1 ping -c 2 -i 0.2 -W 1 10.12.1.4 >/dev/null; then echo "spoke1 reached spoke2"; return 1; fi
	after=$(drops_of nsg_denied_inbound)
	nva_after=$(forwarded_by_nva)
	[ "$after" -ge $((before + 2)) ] || { echo "nsg_denied_inbound $before -> $after"; return 1; }
	[ "$nva_after" -eq "$nva_before" ] || { echo "the NVA forwarded $nva_before -> $nva_after"; return 1; }
	vm spoke2 ping -c 2 -i 0.2 -W 2 10.11.1.4 >/dev/null || { echo "spoke2 -> spoke1 failed"; return 1; }
	with_config >/dev/null
}

# What the firewall forwards meets its own outbound NSGs: a rule denying spoke2 stops
# spoke1 -> spoke2 after the firewall (it forwarded, the gateway dropped).
nva_outbound_nsg_stops_what_it_forwards() {
	local before after nva_before nva_after
	with_jq "$(nsg_on_nic firewall-nic Outbound '*' 10.12.0.0/16)" >/dev/null || return 1
	before=$(drops_of nsg_denied_outbound)
	nva_before=$(forwarded_by_nva)
	if vm spoke1 ping -c 2 -i 0.2 -W 1 10.12.1.4 >/dev/null; then echo "spoke1 reached spoke2"; return 1; fi
	after=$(drops_of nsg_denied_outbound)
	nva_after=$(forwarded_by_nva)
	[ "$after" -ge $((before + 2)) ] || { echo "nsg_denied_outbound $before -> $after"; return 1; }
	[ "$nva_after" -ge $((nva_before + 2)) ] || { echo "the NVA forwarded $nva_before -> $nva_after"; return 1; }
	with_config >/dev/null
}

# spoke1's NIC denies what spoke2 opens; spoke1's own flows through the firewall still get
# their replies on every leg (TCP and ping), and spoke2's new flows are refused.
replies_through_the_nva_pass_spoke1s_inbound_deny() {
	local out rc
	with_jq "$(nsg_on_nic spoke1-vm-nic Inbound 10.12.0.0/16 '*')" >/dev/null || return 1
	vm spoke1 ping -c 2 -i 0.2 -W 2 10.12.1.4 >/dev/null || { echo "spoke1 -> spoke2 ping failed"; return 1; }
	out=$(mktemp)
	vm spoke2 timeout 10 nc -l -N -p 5402 >"$out" &
	sleep 0.3
	head -c 65536 /dev/urandom | tee "$WORK/sent2" | vm spoke1 timeout 8 nc -N 10.12.1.4 5402
	wait
	cmp -s "$out" "$WORK/sent2"
	rc=$?
	rm -f "$out"
	[ $rc -eq 0 ] || { echo "TCP spoke1 -> spoke2 failed"; return 1; }
	if vm spoke2 ping -c 2 -i 0.2 -W 1 10.11.1.4 >/dev/null; then echo "spoke2 opened a flow to spoke1"; return 1; fi
	with_config >/dev/null
}

routes_nic_shows_its_subnets_effective_routes() {
	local routes text
	routes=$(gw routes -c "$CONFIG" --nic spoke1-vm-nic -j) || return 1
	jq -e 'length > 0 and all(.[]; .subnet == "workload") and
		any(.[]; .addressPrefix == "0.0.0.0/0" and .nextHopType == "VirtualAppliance" and
			.source == "User" and .state == "Active" and .nextHopIpAddress == ["10.10.1.4"])' \
		<<<"$routes" >/dev/null || { echo "$routes"; return 1; }
	text=$(gw routes -c "$CONFIG" --nic spoke1-vm-nic) || return 1
	grep -Eq '^workload +User +Active +0\.0\.0\.0/0 +VirtualAppliance +10\.10\.1\.4' <<<"$text" ||
		{ echo "$text"; return 1; }
	! gw routes -c "$CONFIG" --nic no-such-nic 2>/dev/null
}

run_case up_with_the_firewall_config
run_case appliance_next_hop_is_resolved_by_up
run_case spoke1_to_spoke2_goes_through_the_nva_both_ways
run_case tcp_spoke1_to_spoke2_through_the_nva
run_case user_route_none_drops
run_case forced_tunnelling_sends_internet_traffic_through_the_nva
run_case forwarded_traffic_refused_where_spoke2_does_not_allow_it
run_case routes_show_the_effective_routes_per_subnet
run_case verify_names_the_deciding_route
run_case reload_without_appliance_routes_removes_the_entry
run_case vm_spoofing_its_neighbours_address_is_dropped
run_case nva_inbound_nsg_stops_the_spokes_traffic
run_case nva_outbound_nsg_stops_what_it_forwards
run_case replies_through_the_nva_pass_spoke1s_inbound_deny
run_case routes_nic_shows_its_subnets_effective_routes

# What the benchmark configures, twice: the gateway's config (Azure JSON for `vnet-xdp
# up`) and the kernel path's nftables ruleset for the same job. Sourced by run.sh after
# scripts/topology.sh.
#
# NSG rule sets: N rules on the hub subnet, inbound. Rules 1..N-1 deny UDP from
# addresses the test traffic never uses (172.16.x.y) to other ports; rule N, the
# lowest priority (highest number), allows the test traffic (spoke1 -> hub VM, UDP port
# 9). So the traffic is decided by the last rule: the worst case for a linear evaluator
# and exactly what nftables walks through.

BENCH_FLOW_TABLE=${BENCH_FLOW_TABLE:-1048576}

# Azure's priorities (100-4096, unique per direction) leave room for 3,997 rules in one
# direction: an NSG of more rules holds the rest as outbound rules, which inbound
# traffic never meets.
NSG_DIRECTION_MAX=3997
nsg_inbound_count() { echo $(($1 < NSG_DIRECTION_MAX ? $1 : NSG_DIRECTION_MAX)); }

# nsg_rules_json N: the securityRules array.
nsg_rules_json() {
	awk -v n="$(nsg_inbound_count "$1")" -v out=$(($1 - $(nsg_inbound_count "$1"))) 'BEGIN {
		printf "["
		for (i = 0; i < n - 1; i++)
			printf "{\"name\":\"deny-%d\",\"properties\":{\"priority\":%d,\"direction\":\"Inbound\",\"access\":\"Deny\",\"protocol\":\"Udp\",\"sourceAddressPrefix\":\"172.16.%d.%d\",\"sourcePortRange\":\"*\",\"destinationAddressPrefix\":\"10.10.1.4\",\"destinationPortRange\":\"%d\"}},",
			       i, 100 + i, int(i / 256), i % 256, 10000 + i
		for (i = 0; i < out; i++)
			printf "{\"name\":\"deny-out-%d\",\"properties\":{\"priority\":%d,\"direction\":\"Outbound\",\"access\":\"Deny\",\"protocol\":\"Udp\",\"sourceAddressPrefix\":\"10.10.1.4\",\"sourcePortRange\":\"*\",\"destinationAddressPrefix\":\"172.17.%d.%d\",\"destinationPortRange\":\"%d\"}},",
			       i, 100 + i, int(i / 256), i % 256, 20000 + i
		printf "{\"name\":\"allow-bench\",\"properties\":{\"priority\":%d,\"direction\":\"Inbound\",\"access\":\"Allow\",\"protocol\":\"Udp\",\"sourceAddressPrefix\":\"10.11.0.0/16\",\"sourcePortRange\":\"*\",\"destinationAddressPrefix\":\"10.10.1.4\",\"destinationPortRange\":\"9\"}}]\n", 100 + n - 1
	}'
}

# bench_config GATEWAY [NSG_RULES]: the demo topology's config with a big flow table and,
# given a rule count, an NSG of that many rules on the hub's subnet.
bench_config() {
	local gateway=$1 rules=${2:-0}
	if [ "$rules" -eq 0 ]; then
		topology_config "$gateway" |
			jq --argjson size "$BENCH_FLOW_TABLE" '.gateway.limits = {flowTableSize: $size}'
		return
	fi
	topology_config "$gateway" | jq --argjson size "$BENCH_FLOW_TABLE" \
		--slurpfile rules <(nsg_rules_json "$rules") '
		.gateway.limits = {flowTableSize: $size}
		| .resources += [{type: "Microsoft.Network/networkSecurityGroups", name: "bench-nsg",
				  location: "westeurope", properties: {securityRules: $rules[0]}}]
		| (.resources[] | select(.name == "hub") | .properties.subnets[0].properties.networkSecurityGroup)
			= {id: "[resourceId(\u0027Microsoft.Network/networkSecurityGroups\u0027, \u0027bench-nsg\u0027)]"}'
}

# chain_config GATEWAY: service chaining, Azure's hub-and-spoke shape: spoke1's subnet (all
# of spoke1, so that every source the runs use is in it) routes spoke2 to the NVA in the
# hub (10.10.1.4, its NIC with enableIPForwarding), which hands the packets back to the
# gateway; spoke2's side of its peering accepts forwarded traffic.
chain_config() {
	bench_config "$1" | jq '
		.resources += [
		  {type: "Microsoft.Network/routeTables", name: "rt-chain", properties: {routes: [
		    {name: "spoke2-via-nva", properties: {addressPrefix: "10.12.0.0/16",
		      nextHopType: "VirtualAppliance", nextHopIpAddress: "10.10.1.4"}}]}},
		  {type: "Microsoft.Network/networkInterfaces", name: "nva-nic", properties: {
		    enableIPForwarding: true, ipConfigurations: [{name: "ipconfig1", properties: {
		      privateIPAddress: "10.10.1.4", subnet: {id: "hub/default"}}}]}}]
		| (.resources[] | select(.name == "spoke1") | .properties.subnets[0].properties)
			|= (.addressPrefixes = ["10.11.0.0/16"] | .routeTable = {id: "rt-chain"})
		| (.resources[] | select(.name == "spoke2") | .properties.virtualNetworkPeerings[0]
			.properties.allowForwardedTraffic) = true'
}

# The kernel's service chaining on the same topology: policy routing sends what spoke1
# sends to spoke2 to the NVA (a rule on the ingress interface, a table of its own); what
# the NVA hands back takes the main table to spoke2. Both paths keep it: our FIB lookups
# of the next hop find the same answers.
chain_policy_routing() { # chain_policy_routing GW-NS
	ip -n "$1" route replace 10.12.0.0/16 via 10.10.1.4 dev to-hub table 100 &&
	ip -n "$1" rule add iif to-spoke1 to 10.12.0.0/16 lookup 100 pref 100
}

# The kernel path's rules, as `nft -f` input. Every table lives in the gateway namespace.
nft_plain() {
	echo 'flush ruleset'
}

# nft_nsg N: conntrack for state (Azure's NSGs are stateful), the same N rules in the
# same order, then Azure's default inbound rules (AllowVnetInBound, DenyAllInBound).
nft_nsg() {
	local inbound
	inbound=$(nsg_inbound_count "$1")
	echo 'flush ruleset'
	echo 'table inet vxbench {'
	echo '  chain forward {'
	echo '    type filter hook forward priority 0; policy accept;'
	echo '    ct state established,related accept'
	echo '    iifname "to-hub" jump hub_outbound'
	echo '    oifname "to-hub" jump hub_inbound'
	echo '  }'
	echo '  chain hub_inbound {'
	awk -v n="$inbound" 'BEGIN {
		for (i = 0; i < n - 1; i++)
			printf "    ip saddr 172.16.%d.%d ip daddr 10.10.1.4 udp dport %d drop\n", int(i / 256), i % 256, 10000 + i
		print "    ip saddr 10.11.0.0/16 ip daddr 10.10.1.4 udp dport 9 accept"
	}'
	echo '    ip saddr { 10.10.0.0/16, 10.11.0.0/16, 10.12.0.0/16 } ip daddr 10.10.0.0/16 accept'
	echo '    drop'
	echo '  }'
	echo '  chain hub_outbound {'
	awk -v n=$(($1 - inbound)) 'BEGIN {
		for (i = 0; i < n; i++)
			printf "    ip saddr 10.10.1.4 ip daddr 172.17.%d.%d udp dport %d drop\n", int(i / 256), i % 256, 20000 + i
	}'
	echo '  }'
	echo '}'
}

# nft_snat VIP: the kernel's outbound NAT of spoke1 to its VIP on the uplink.
nft_snat() {
	echo 'flush ruleset'
	echo 'table ip vxbench_nat {'
	echo '  chain postrouting {'
	echo '    type nat hook postrouting priority srcnat; policy accept;'
	echo "    ip saddr 10.11.0.0/16 oifname \"uplink0\" snat to $1"
	echo '  }'
	echo '}'
}

#!/usr/bin/env bash
# End to end: application security groups with real TCP. spoke1's subnet NSG allows HTTP
# to the web ASG and denies SSH to it, then denies the rest inbound; the spoke1 VM's NIC
# (10.11.1.4) joins the group, its second address (10.11.1.5, no NIC of the group) does
# not. A reload that takes the NIC out of the group takes its HTTP away. `rules` shows
# the group expanded to the NIC's address.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_nsg_asg vxasg asg
e2e_topology "$WORK/topology.json"

rule() { # rule NAME PRIORITY ACCESS DESTINATION-JSON-KEY-AND-VALUE DESTINATION-PORT
	printf '{"name": "%s", "properties": {"priority": %s, "direction": "Inbound", "access": "%s",
	  "protocol": "Tcp", "sourceAddressPrefix": "*", "sourcePortRange": "*",
	  %s, "destinationPortRange": "%s"}}' "$@"
}
WEB_ASG='"destinationApplicationSecurityGroups": [{"id": "web-asg"}]'
NSG=$(cat <<JSON
{"type": "Microsoft.Network/networkSecurityGroups", "name": "spoke1-nsg", "properties": {
  "securityRules": [
    $(rule AllowHttpToWeb 100 Allow "$WEB_ASG" 80),
    $(rule DenySshToWeb 110 Deny "$WEB_ASG" 22),
    $(rule DenyRestInbound 4000 Deny '"destinationAddressPrefix": "*"' '*')
  ]}}
JSON
)
# write_config IN_GROUP: the NIC of 10.11.1.4 in web-asg (1) or in no group (0)
write_config() {
	local groups='[{"id": "web-asg"}]'
	[ "$1" = 1 ] || groups='[]'
	jq --argjson nsg "$NSG" --argjson groups "$groups" '
		.resources += [$nsg,
			{"type": "Microsoft.Network/applicationSecurityGroups", "name": "web-asg"},
			{"type": "Microsoft.Network/networkInterfaces", "name": "web-vm-nic", "properties": {
				"ipConfigurations": [{"name": "ipconfig1", "properties": {
					"privateIPAddress": "10.11.1.4", "subnet": {"id": "spoke1/default"},
					"applicationSecurityGroups": $groups}}]}}]
		| (.resources[] | select(.name == "spoke1") | .properties.subnets[0].properties.networkSecurityGroup)
			= {"id": "spoke1-nsg"}' "$WORK/topology.json" >"$CONFIG"
}
rule_hits() { stat_value ".nsgRuleHits[] | select(.rule == \"$1\") | .hits"; }

wait_listen() { # wait_listen PORT
	local i
	for i in $(seq 50); do
		vm spoke1 ss -lnt | grep -q ":$1 " && return 0
		sleep 0.1
	done
	return 1
}

# tcp_transfer ADDRESS PORT: 64 KiB from the hub VM to a listener on ADDRESS:PORT in
# spoke1, received whole.
tcp_transfer() {
	local out sent rc
	out=$(mktemp) sent=$(mktemp)
	head -c 65536 /dev/urandom >"$sent"
	vm spoke1 timeout 6 nc -l -N -s "$1" -p "$2" >"$out" &
	wait_listen "$2"
	vm hub timeout 4 nc -N -w 2 "$1" "$2" <"$sent"
	wait
	cmp -s "$out" "$sent"
	rc=$?
	rm -f "$out" "$sent"
	return $rc
}

up_with_an_application_security_group() {
	write_config 1
	gw check -c "$CONFIG" | grep -q "valid" || return 1
	! gw check -c "$CONFIG" 2>&1 | grep -q warning || { echo "check warns"; return 1; }
	ip -n "$PREFIX-spoke1" addr add 10.11.1.5/16 dev eth0 || return 1
	gw up -c "$CONFIG"
}

http_to_the_web_asg_is_allowed() {
	tcp_transfer 10.11.1.4 80 || { echo "HTTP to the web ASG did not arrive"; return 1; }
	[ "$(rule_hits AllowHttpToWeb)" -ge 1 ] || { echo "AllowHttpToWeb hits $(rule_hits AllowHttpToWeb)"; return 1; }
}

ssh_to_the_web_asg_is_denied() {
	if tcp_transfer 10.11.1.4 22; then echo "SSH reached the web ASG"; return 1; fi
	[ "$(rule_hits DenySshToWeb)" -ge 1 ] || { echo "DenySshToWeb hits $(rule_hits DenySshToWeb)"; return 1; }
}

http_to_an_address_outside_the_asg_is_denied() {
	if tcp_transfer 10.11.1.5 80; then echo "HTTP reached 10.11.1.5, outside the ASG"; return 1; fi
	[ "$(rule_hits DenyRestInbound)" -ge 1 ] || { echo "DenyRestInbound hits $(rule_hits DenyRestInbound)"; return 1; }
}

rules_show_the_asg_as_its_nics_address() {
	local out
	out=$(gw rules -c "$CONFIG" --nic web-vm-nic -j) || return 1
	[ "$(jq -c '.value[0].effectiveSecurityRules[0] | [.name, .expandedDestinationAddressPrefix]' <<<"$out")" \
		= '["securityRules/AllowHttpToWeb",["10.11.1.4/32"]]' ] || { echo "$out"; return 1; }
	gw rules -c "$CONFIG" --subnet spoke1/default | grep -q 'AllowHttpToWeb .* web-asg = 10.11.1.4/32' \
		|| { gw rules -c "$CONFIG" --subnet spoke1/default; return 1; }
}

leaving_the_asg_on_reload_ends_its_http() {
	write_config 0
	gw reload -c "$CONFIG" || return 1
	if tcp_transfer 10.11.1.4 80; then echo "HTTP still allowed after the NIC left the ASG"; return 1; fi
	write_config 1
	gw reload -c "$CONFIG" || return 1
	tcp_transfer 10.11.1.4 80 || { echo "HTTP not allowed after the NIC joined again"; return 1; }
}

run_case up_with_an_application_security_group
run_case http_to_the_web_asg_is_allowed
run_case ssh_to_the_web_asg_is_denied
run_case http_to_an_address_outside_the_asg_is_denied
run_case rules_show_the_asg_as_its_nics_address
run_case leaving_the_asg_on_reload_ends_its_http
exit ${FAILED:-0}

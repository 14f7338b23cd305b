#!/usr/bin/env bash
# End to end: what the commands print and exit with on a live gateway with real flows.
# Every `-j` document of every command has camelCase keys only and is one compact line
# (`-p` before the command indents it); the exit codes are README's (0 ok, 1 failed or
# gateway not up, 2 usage, verify 3 for a packet that would be dropped); `flows` and
# `snat` filter by address, port, protocol, VNet and state, text and -j alike.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_output vxout out
command -v jq >/dev/null || { skip e2e_output "jq is not installed (scripts/install-deps.sh)"; exit 0; }
PY=/usr/bin/python3
[ -x $PY ] || { skip e2e_output "python3 is not installed"; exit 0; }
e2e_topology "$WORK/topology.json"

# spoke1's subnet NSG denies TCP 5202 inbound: verify has a packet to drop.
NSG='{"type": "Microsoft.Network/networkSecurityGroups", "name": "spoke1-nsg", "properties": {
  "securityRules": [{"name": "DenyTcp5202", "properties": {"priority": 110,
    "direction": "Inbound", "access": "Deny", "protocol": "Tcp", "sourceAddressPrefix": "*",
    "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "5202"}}]}}'
jq --argjson nsg "$NSG" '.resources += [$nsg]
	| (.resources[] | select(.name == "spoke1") | .properties.subnets[0].properties.networkSecurityGroup)
		= {"id": "spoke1-nsg"}' "$WORK/topology.json" >"$CONFIG"
ip -n $PREFIX-gw route add default via 198.51.100.2
ip -n $PREFIX-internet route add 203.0.113.0/24 via 198.51.100.1
gw up -c "$CONFIG" >/dev/null 2>&1 || { fail e2e_output "up failed"; exit 1; }

# Flows of every kind, kept open while the cases look at them: ICMP hub -> spoke1, an
# established TCP connection hub:40100 -> spoke1:5201, UDP from spoke2 and ICMP from
# spoke1 to the Internet (SNAT mappings of two VNets).
cat >"$WORK/hold.py" <<'EOF'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.11.1.4", 5201))
s.listen(1)
c, _ = s.accept()
time.sleep(60)
EOF
nsenter --net=/run/netns/$PREFIX-spoke1 $PY "$WORK/hold.py" >/dev/null 2>&1 &
echo $! >"$WORK/listener.pid"
for _ in $(seq 50); do vm spoke1 ss -ltn | grep -q ':5201 ' && break; sleep 0.1; done
nsenter --net=/run/netns/$PREFIX-hub $PY -c '
import socket, time
c = socket.socket()
c.bind(("10.10.1.4", 40100))
c.connect(("10.11.1.4", 5201))
time.sleep(60)' >/dev/null 2>&1 &
echo $! >"$WORK/client.pid"
vm hub ping -c 2 -i 0.2 -W 1 10.11.1.4 >/dev/null
vm spoke1 ping -c 1 -W 1 198.51.100.2 >/dev/null
vm spoke2 bash -c 'echo hi >/dev/udp/198.51.100.2/9000'
sleep 0.5

# Every -j document the commands print on this gateway (one command a line).
JSON_COMMANDS=(
	"status -j" "status -n $GATEWAY -j" "stats -n $GATEWAY -j" "flows -n $GATEWAY -j"
	"flows -n $GATEWAY -j --gc" "snat -n $GATEWAY -j" "snat -n $GATEWAY -j --gc"
	"routes --vnet hub -c $CONFIG -j" "routes --vnet spoke1 -c $CONFIG -j"
	"verify -n $GATEWAY --in to-hub --src 10.10.1.4:40000 --dst 10.11.1.4:5201 --proto tcp -j"
	"verify -n $GATEWAY --in to-hub --src 10.10.1.4 --dst 198.51.100.2 --proto icmp -j --repeat 10"
)

# run_json ARGS...: the command's stdout; a dropped verify (3) is an answer too.
run_json() {
	local rc
	# shellcheck disable=SC2068
	gw $@ 2>/dev/null
	rc=$?
	[ $rc = 0 ] || [ $rc = 3 ] || { echo "vnet-xdp $*: exit $rc" >&2; return 1; }
}

every_json_key_is_camel_case() {
	local cmd out bad
	for cmd in "${JSON_COMMANDS[@]}"; do
		out=$(run_json $cmd) || return 1
		bad=$(jq -r '[paths | .[] | strings | select(test("^[a-z][a-zA-Z0-9]*$") | not)]
			| unique | join(" ")' <<<"$out") || { echo "$cmd: not JSON: $out"; return 1; }
		[ -z "$bad" ] || { echo "vnet-xdp $cmd: keys not camelCase: $bad"; return 1; }
	done
}

json_is_one_compact_line_by_default() {
	local cmd out
	for cmd in "${JSON_COMMANDS[@]}"; do
		out=$(run_json $cmd) || return 1
		[ "$(wc -l <<<"$out")" = 1 ] || { echo "vnet-xdp $cmd: $(wc -l <<<"$out") lines"; return 1; }
		[ "$(jq -c . <<<"$out")" = "$out" ] || { echo "vnet-xdp $cmd: not compact: $out"; return 1; }
	done
}

pretty_option_indents_the_same_document() {
	local plain pretty
	plain=$(gw status -n $GATEWAY -j) || return 1
	pretty=$(gw -p status -n $GATEWAY -j) || return 1
	[ "$(wc -l <<<"$pretty")" -gt 5 ] || { echo "-p: $pretty"; return 1; }
	grep -q '^  ' <<<"$pretty" || { echo "-p: not indented: $pretty"; return 1; }
	[ "$(jq -cS . <<<"$pretty")" = "$(jq -cS . <<<"$plain")" ] || { echo "-p changed the document"; return 1; }
	plain=$(gw routes --vnet hub -c "$CONFIG" -j) && [ -n "$plain" ] || return 1
	[ "$(gw --pretty routes --vnet hub -c "$CONFIG" -j | jq -c .)" = "$plain" ]
}

# The counters named by the datapath's enums are values of the entries, as the metrics'
# labels are: one spelling of a drop reason everywhere.
drop_reasons_are_values_not_keys() {
	local stats
	stats=$(gw stats -n $GATEWAY -j) || return 1
	jq -e '(.drops | type) == "array" and any(.drops[]; .reason == "nsg_denied_inbound")
		and any(.datapath[]; .action == "forwarded" and .packets > 0)
		and (.flows | has("insertFailed") and has("gcRemoved"))' <<<"$stats" >/dev/null ||
		{ echo "$stats"; return 1; }
	gw stats -n $GATEWAY --prometheus | grep -q '^vnetxdp_drop_packets_total{reason="nsg_denied_inbound"} '
}

# exits RC ARGS...: the command exits RC; for 1 and 2, one line on stderr, nothing on stdout.
exits() {
	local rc=$1 got
	shift
	gw "$@" >"$WORK/out" 2>"$WORK/err"
	got=$?
	[ "$got" = "$rc" ] || { echo "vnet-xdp $*: exit $got, expected $rc"; cat "$WORK/err"; return 1; }
	if [ "$rc" = 1 ] || [ "$rc" = 2 ]; then
		[ ! -s "$WORK/out" ] || { echo "vnet-xdp $*: printed $(cat "$WORK/out")"; return 1; }
		[ -s "$WORK/err" ] || { echo "vnet-xdp $*: said nothing on stderr"; return 1; }
	fi
}

a_gateway_that_is_not_up_is_exit_1() {
	local cmd nosuch=nosuch$$
	for cmd in "status" "status -j" "stats" "stats -j" "stats --prometheus" "flows" "snat" \
		"flows --gc" "snat --gc" "verify --in to-hub --src 10.10.1.4 --dst 10.11.1.4 --proto icmp"; do
		# shellcheck disable=SC2086
		exits 1 $cmd -n $nosuch || return 1
		grep -qx "vnet-xdp: error: gateway $nosuch is not up" "$WORK/err" ||
			{ echo "vnet-xdp $cmd -n $nosuch: $(cat "$WORK/err")"; return 1; }
	done
	# what a filter names that the gateway does not have is the same kind of answer
	exits 1 flows -n $GATEWAY --vnet nosuch && grep -q "has no virtual network named nosuch" "$WORK/err" &&
		exits 1 snat -n $GATEWAY --vnet nosuch
}

verify_exit_code_says_whether_the_packet_passes() {
	exits 0 verify -n $GATEWAY --in to-hub --src 10.10.1.4:40000 --dst 10.11.1.4:5201 --proto tcp &&
		exits 3 verify -n $GATEWAY --in to-hub --src 10.10.1.4:40000 --dst 10.11.1.4:5202 --proto tcp &&
		grep -q '^verdict  dropped' "$WORK/out" &&
		exits 3 verify -n $GATEWAY --in to-hub --src 10.10.1.4:40000 --dst 10.11.1.4:5202 --proto tcp -j &&
		jq -e '.verdict == "dropped"' "$WORK/out" >/dev/null &&
		exits 2 verify -n $GATEWAY --in to-hub --src 10.10.1.4 --dst 10.11.1.4 --proto sctp
}

# keeps FILTER-ARGS -- JQ-CONDITION: `flows FILTER-ARGS -j` lists at least one flow, and
# only flows that meet the condition; the text listing has as many rows.
flows_keep() {
	local args=() list rows
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	list=$(gw flows -n $GATEWAY -j "${args[@]}") || { echo "flows ${args[*]}: exit $?"; return 1; }
	jq -e "length > 0 and all(.[]; $1)" <<<"$list" >/dev/null ||
		{ echo "flows ${args[*]}: $list"; gw flows -n $GATEWAY -j; return 1; }
	rows=$(gw flows -n $GATEWAY "${args[@]}" | tail -n +2 | wc -l)
	[ "$rows" = "$(jq length <<<"$list")" ] || { echo "flows ${args[*]}: $rows rows of text"; return 1; }
}

flows_filter_like_conntrack() {
	local all
	vm hub ping -c 1 -W 1 10.11.1.4 >/dev/null # ICMP flows expire after 30 s: one active
	all=$(gw flows -n $GATEWAY -j | jq length)
	flows_keep --proto tcp -- '.protocol == "tcp"' &&
		flows_keep --proto icmp -- '.protocol == "icmp"' &&
		flows_keep --proto 6 -- '.protocol == "tcp"' &&
		flows_keep --src 10.10.1.4 -- '.source | startswith("10.10.1.4")' &&
		flows_keep --src 10.11.0.0/16 -- '.source | startswith("10.11.")' &&
		flows_keep --dst 198.51.100.0/24 -- '.destination | startswith("198.51.100.")' &&
		flows_keep --sport 40100 --dport 5201 -- '.source == "10.10.1.4:40100" and .destination == "10.11.1.4:5201"' &&
		flows_keep --vnet spoke2 -- '.sourceVirtualNetwork == "spoke2" or .destinationVirtualNetwork == "spoke2"' &&
		flows_keep --state established -- '.protocol == "tcp" and .state == "established"' &&
		flows_keep --proto icmp --state active --vnet hub -- '.protocol == "icmp" and .state == "active"' ||
		return 1
	[ "$(gw flows -n $GATEWAY -j --proto udp --vnet hub)" = "[]" ] || { echo "udp in hub"; return 1; }
	[ "$(gw flows -n $GATEWAY -j | jq length)" -ge "$all" ] || { echo "the filters changed the table"; return 1; }
}

snat_filters_its_mappings() {
	local out
	out=$(gw snat -n $GATEWAY -j --proto udp) || return 1
	jq -e '(.mappings | length) == 1 and .mappings[0].source == "10.12.1.4" and
		.mappings[0].destinationPort == 9000 and .mappings[0].virtualNetwork == "spoke2" and
		(.vips | length) == 3' <<<"$out" >/dev/null || { echo "$out"; return 1; }
	out=$(gw snat -n $GATEWAY -j --vnet spoke1 --dst 198.51.100.2) || return 1
	jq -e '(.mappings | length) > 0 and all(.mappings[]; .source == "10.11.1.4" and .protocol == "icmp")' \
		<<<"$out" >/dev/null || { echo "$out"; return 1; }
	out=$(gw snat -n $GATEWAY -j --dport 9000 --state active --src 10.12.0.0/16) || return 1
	jq -e '(.mappings | length) == 1' <<<"$out" >/dev/null || { echo "$out"; return 1; }
	[ "$(gw snat -n $GATEWAY -j --state expired --proto udp | jq '.mappings | length')" = 0 ] || return 1
	[ "$(gw snat -n $GATEWAY --proto udp | grep -c '^udp ')" = 1 ] &&
		[ "$(gw snat -n $GATEWAY --proto udp | grep -c '^icmp ')" = 0 ]
}

# refused_filter PATTERN ARGS...: exit 2, PATTERN on stderr's first line, the hint on its
# second and last.
refused_filter() {
	local pattern=$1 out
	shift
	out=$(gw "$@" 2>&1 >/dev/null)
	[ $? = 2 ] || { echo "vnet-xdp $*: not exit 2: $out"; return 1; }
	[ "$(wc -l <<<"$out")" = 2 ] && grep -qE -- "$pattern" <<<"$(head -1 <<<"$out")" &&
		[ "$(tail -1 <<<"$out")" = "Try 'vnet-xdp help $1'." ] || { echo "vnet-xdp $*: $out"; return 1; }
}

bad_filter_values_are_usage_errors() {
	local cmd
	for cmd in flows snat; do
		refused_filter "^vnet-xdp $cmd: --src '10.0.0.300' is not an address or a prefix" $cmd --src 10.0.0.300 &&
			refused_filter "^vnet-xdp $cmd: --dst '10.1.2.3/8' has host bits set" $cmd --dst 10.1.2.3/8 &&
			refused_filter "^vnet-xdp $cmd: --sport '70000' is not a port" $cmd --sport 70000 &&
			refused_filter "^vnet-xdp $cmd: --dport 'http' is not a port" $cmd --dport http &&
			refused_filter "^vnet-xdp $cmd: --proto 'sctpx' is not tcp, udp, icmp, icmpv6 or a protocol number" $cmd --proto sctpx &&
			refused_filter "^vnet-xdp $cmd: --proto '256' is not" $cmd --proto 256 &&
			refused_filter "^vnet-xdp $cmd: --state 'bogus' is not active, expired, " $cmd --state bogus ||
			return 1
	done
	refused_filter "^vnet-xdp snat: --state 'closed' is not" snat --state closed
}

run_case every_json_key_is_camel_case
run_case json_is_one_compact_line_by_default
run_case pretty_option_indents_the_same_document
run_case drop_reasons_are_values_not_keys
run_case a_gateway_that_is_not_up_is_exit_1
run_case verify_exit_code_says_whether_the_packet_passes
run_case flows_filter_like_conntrack
run_case snat_filters_its_mappings
run_case bad_filter_values_are_usage_errors
[ -z "${FAILED:-}" ]

#!/usr/bin/env bash
# End to end: `serve` writes flow logs in Azure's VNet flow log format (gateway.flowLogs).
# spoke1's subnet NSG allows TCP 5201 and denies TCP 5202; ICMP passes by the default
# AllowVnetInBound. The hub pings spoke1 five times, sends a known amount over TCP 5201
# and knocks on 5202: every flow must be logged with its exact counts, Begin and End, the
# denied one with its rule, in hourly folders, within the size bound.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_flowlog vxfl fl
e2e_topology "$WORK/topology.json"

FLOWS=$WORK/flows
LISTEN=127.0.0.1:$((20000 + $$ % 20000))
NSG=$(cat <<JSON
{"type": "Microsoft.Network/networkSecurityGroups", "name": "spoke1-nsg", "properties": {
  "securityRules": [
    $(security_rule AllowTcp5201 100 Inbound Allow Tcp VirtualNetwork 5201),
    $(security_rule DenyTcp5202 110 Inbound Deny Tcp '*' 5202)
  ]}}
JSON
)
jq --argjson nsg "$NSG" --arg dir "$FLOWS" --arg listen "$LISTEN" '
	.resources += [$nsg]
	| (.resources[] | select(.name == "spoke1") | .properties.subnets[0].properties.networkSecurityGroup)
		= {"id": "spoke1-nsg"}
	| .gateway.metrics = {"listen": $listen}
	| .gateway.limits = {"icmpIdleTimeoutSeconds": 2}
	| .gateway.flowLogs = {"directory": $dir, "intervalSeconds": 1, "maxMegabytes": 1,
			       "deniedPerSecond": 100}' "$WORK/topology.json" >"$CONFIG"

OLD_HOUR=$FLOWS/y=2020/m=01/d=01/h=00
SPOKE1_NSG=/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/vnet-xdp/providers/Microsoft.Network/networkSecurityGroups/spoke1-nsg

# tuples: every tuple written so far, one per line: TARGET-VNET|ACL|RULE|TUPLE
tuples() {
	find "$FLOWS" -name 'flowlog-*.json' -print0 | sort -z | xargs -0 -r cat |
		jq -r '.records[] | (.targetResourceID | split("/") | last) as $t
			| .flowRecords.flows[] | .aclID as $a | .flowGroups[] | .rule as $r
			| .flowTuples[] | "\($t)|\($a)|\($r)|\(.)"'
}
# flow_tuples SRC DST DPORT PROTO: the tuples of that flow in spoke1's record (inbound)
flow_tuples() {
	tuples | awk -F'|' -v s="$1" -v d="$2" -v p="$3" -v pr="$4" -v acl="$SPOKE1_NSG" '
		$1 == "spoke1" && $2 == acl { split($4, f, ","); if (f[2] == s && f[3] == d && f[5] == p && f[6] == pr) print }'
}
# wait_state SRC DST DPORT PROTO STATE SECONDS
wait_state() {
	local i
	for i in $(seq $(($6 * 5))); do
		flow_tuples "$1" "$2" "$3" "$4" | cut -d'|' -f4 | cut -d, -f8 | grep -qx "$5" && return 0
		sleep 0.2
	done
	echo "no $5 tuple of $1 -> $2:$3 after $6 s; tuples: $(tuples | tail -20)"
	return 1
}
# sums SRC DST DPORT PROTO: "packetsSrcToDst bytesSrcToDst packetsDstToSrc bytesDstToSrc"
sums() {
	flow_tuples "$@" | cut -d'|' -f4 | awk -F, '{ a += $10; b += $11; c += $12; d += $13 }
		END { print a + 0, b + 0, c + 0, d + 0 }'
}
states() { flow_tuples "$@" | cut -d'|' -f4 | cut -d, -f8 | tr -d '\n'; }

a_relative_or_dotted_directory_is_refused() {
	local bad=$WORK/bad.json out
	jq '.gateway.flowLogs.directory = "flows"' "$CONFIG" >"$bad"
	out=$(gw check -c "$bad" 2>&1) && { echo "check accepted a relative directory"; return 1; }
	[[ $out == *"gateway.flowLogs.directory"*"not an absolute path"* ]] || { echo "$out"; return 1; }
	jq '.gateway.flowLogs.directory = "/var/log/../tmp"' "$CONFIG" >"$bad"
	out=$(gw check -c "$bad" 2>&1) && { echo "check accepted a .. component"; return 1; }
	[[ $out == *'".." component'* ]] || { echo "$out"; return 1; }
	jq '.gateway.flowLogs.intervalSeconds = 0' "$CONFIG" >"$bad"
	! gw check -c "$bad" >/dev/null 2>&1 || { echo "check accepted intervalSeconds 0"; return 1; }
}

serve_refuses_a_world_writable_directory() {
	local out
	mkdir -p "$FLOWS" && chmod 0777 "$FLOWS"
	out=$(timeout 20 nsenter --net=/run/netns/"$NS" "$VNET_XDP" serve -c "$CONFIG" 2>&1)
	local rc=$?
	rm -rf "$FLOWS"
	[ $rc -eq 1 ] && [[ $out == *"writable by every user"* ]] || { echo "rc $rc: $out"; return 1; }
	! gw status -n "$GATEWAY" >/dev/null 2>&1 || { echo "the gateway came up anyway"; return 1; }
}

serve_creates_the_directory_and_writes() {
	# an old hour of 1.2 MB that the 1 MB bound must remove
	mkdir -p "$FLOWS/y=2020/m=01/d=01/h=00/m=00"
	head -c 1200000 /dev/zero >"$OLD_HOUR/m=00/flowlog-20200101T000000Z.json"
	chmod 0750 "$FLOWS"
	touch "$WORK/serve-started"
	serve_start "$LISTEN" || return 1
	[ "$(stat -c %a "$FLOWS")" = 750 ] || { echo "mode $(stat -c %a "$FLOWS")"; return 1; }
}

ping_flow_begins_and_ends_with_exact_counts() {
	local s
	vm hub ping -c 5 -i 0.2 -W 1 10.11.1.4 >/dev/null || { echo "ping failed"; return 1; }
	# ICMP idles out after 2 s; serve's GC runs every 5 s and tells the flow log first
	wait_state 10.10.1.4 10.11.1.4 0 1 E 20 || return 1
	s=$(sums 10.10.1.4 10.11.1.4 0 1)
	# 5 echo requests and 5 replies of 84 bytes (IP) each
	[ "$s" = "5 420 5 420" ] || { echo "sums $s; tuples: $(flow_tuples 10.10.1.4 10.11.1.4 0 1)"; return 1; }
	[[ $(states 10.10.1.4 10.11.1.4 0 1) == B*E ]] ||
		{ echo "states $(states 10.10.1.4 10.11.1.4 0 1)"; return 1; }
	flow_tuples 10.10.1.4 10.11.1.4 0 1 | grep -q '|DefaultRule_AllowVnetInBound|.*,I,B,NX,0,0,0,0$' ||
		{ echo "no Begin under AllowVnetInBound: $(flow_tuples 10.10.1.4 10.11.1.4 0 1)"; return 1; }
	# the hub's side of the same flow: outbound, no NSG there
	tuples | grep -q '^hub|00000000-0000-0000-0000-000000000000|NoNetworkSecurityGroup|[0-9]*,10.10.1.4,10.11.1.4,0,0,1,O,E,' ||
		{ echo "no outbound End in hub's record"; return 1; }
}

tcp_exchange_is_logged_with_its_exact_counts() {
	local sent=$WORK/sent s p_fwd p_rev
	head -c 200000 /dev/urandom >"$sent"
	vm spoke1 timeout 10 nc -l -N -p 5201 >/dev/null &
	for _ in $(seq 50); do vm spoke1 ss -lnt | grep -q ':5201 ' && break; sleep 0.1; done
	vm hub timeout 8 nc -N 10.11.1.4 5201 <"$sent" || { echo "nc failed"; return 1; }
	wait
	wait_state 10.10.1.4 10.11.1.4 5201 6 E 10 || { gw flows -n "$GATEWAY" -j; return 1; }
	[[ $(states 10.10.1.4 10.11.1.4 5201 6) == B*E ]] || { echo "states $(states 10.10.1.4 10.11.1.4 5201 6)"; return 1; }
	s=$(sums 10.10.1.4 10.11.1.4 5201 6)
	read -r p_fwd b_fwd p_rev b_rev <<<"$s"
	# the rule's own counters (every packet of the flows it decided) agree exactly
	local rule
	rule=$(stat_value '.nsgRuleHits[] | select(.rule == "AllowTcp5201") | "\(.packets)"')
	[ "$((p_fwd + p_rev))" = "$rule" ] || { echo "tuples $s, the rule counted $rule packets"; return 1; }
	[ "$b_fwd" -ge 200000 ] && [ "$b_fwd" -lt 220000 ] && [ "$p_rev" -gt 0 ] ||
		{ echo "sums $s for 200000 bytes sent"; return 1; }
	[ "$(flow_tuples 10.10.1.4 10.11.1.4 5201 6 | grep -c ',E,')" = 1 ] || { echo "more than one End"; return 1; }
	# FLOWLOG_SAMPLE=FILE keeps the document with its counts (README shows one)
	if [ -n "${FLOWLOG_SAMPLE:-}" ]; then
		grep -l ',5201,6,I,C,' $(find "$FLOWS" -name 'flowlog-*.json') | head -1 | xargs -r cat >"$FLOWLOG_SAMPLE"
	fi
}

denied_connection_has_a_denied_tuple_with_its_rule() {
	vm hub timeout 2 nc -z -w 1 10.11.1.4 5202 >/dev/null 2>&1
	wait_state 10.10.1.4 10.11.1.4 5202 6 D 5 || return 1
	flow_tuples 10.10.1.4 10.11.1.4 5202 6 | grep -q '^spoke1|[^|]*spoke1-nsg|UserRule_DenyTcp5202|[0-9]*,10.10.1.4,10.11.1.4,[0-9]*,5202,6,I,D,NX,[1-9]' ||
		{ echo "D tuple: $(flow_tuples 10.10.1.4 10.11.1.4 5202 6)"; return 1; }
}

files_are_whole_documents_in_hourly_folders() {
	local f bad=0 files
	files=$(find "$FLOWS" -type f -newer "$WORK/serve-started")
	[ -n "$files" ] || { echo "serve wrote no file: $(find "$FLOWS" | head)"; return 1; }
	for f in $files; do
		[[ ${f#"$FLOWS"/} =~ ^y=[0-9]{4}/m=[0-9]{2}/d=[0-9]{2}/h=[0-9]{2}/m=00/flowlog-[0-9]{8}T[0-9]{6}Z\.json$ ]] ||
			{ echo "not in Azure's path shape (or a temporary file left): $f"; bad=1; }
		# the folder is the file's own hour, as its name says
		[[ $f == */y=${f: -21:4}/m=${f: -17:2}/d=${f: -15:2}/h=${f: -12:2}/m=00/* ]] ||
			{ echo "in another hour's folder: $f"; bad=1; }
		jq -e '.records[0] | .flowLogVersion == 4 and .category == "FlowLogFlowEvent"
			and .operationName == "FlowLogFlowEvent" and (.macAddress | test("^[0-9A-F]{12}$")) and .macAddress != "000000000000"
			and (.flowLogGUID | test("^[0-9a-f-]{36}$"))' "$f" >/dev/null || { echo "not a record: $f"; bad=1; }
	done
	[ $bad = 0 ]
}

size_bound_removed_the_oldest_hour() {
	[ ! -e "$OLD_HOUR" ] || { echo "$OLD_HOUR is still there"; return 1; }
	[ ! -e "$FLOWS/y=2020" ] || { echo "the empty y=2020 folder stayed"; return 1; }
	[ "$(du -sb "$FLOWS" | cut -f1)" -lt 1100000 ] || { echo "$(du -sb "$FLOWS")"; return 1; }
}

# serve holds the drop events in turns and lets a monitor have them; denied flows are
# logged again once it exits
a_monitor_gets_the_events_and_hands_them_back() {
	local out=$WORK/monitor.json before
	timeout 15 nsenter --net=/run/netns/"$NS" "$VNET_XDP" monitor -n "$GATEWAY" -j --type drop \
		--count 1 --timeout 10 >"$out" 2>"$out.err" &
	local pid=$!
	sleep 2.5
	vm hub timeout 2 nc -z -w 1 -p 41999 10.11.1.4 5202 >/dev/null 2>&1
	wait $pid || { echo "monitor exited $?: $(cat "$out.err")"; return 1; }
	jq -e 'select(.rule == "DenyTcp5202")' "$out" >/dev/null || { echo "monitor: $(cat "$out")"; return 1; }
	before=$(flow_tuples 10.10.1.4 10.11.1.4 5202 6 | grep -c ',41998,')
	[ "$before" = 0 ] || { echo "port 41998 used before"; return 1; }
	sleep 2
	vm hub timeout 2 nc -z -w 1 -p 41998 10.11.1.4 5202 >/dev/null 2>&1
	for _ in $(seq 25); do
		flow_tuples 10.10.1.4 10.11.1.4 5202 6 | grep -q ',41998,5202,6,I,D,' && return 0
		sleep 0.2
	done
	echo "no D tuple after the monitor left: $(grep -i monitor "$WORK/serve.log")"
	return 1
}

metrics_count_the_records() {
	local m
	m=$(in_gw curl -sf "http://$LISTEN/metrics") || { echo "no metrics"; return 1; }
	for st in begin end denied; do
		echo "$m" | grep -Eq "^vnetxdp_flow_log_records_total\{state=\"$st\"\} [1-9]" ||
			{ echo "no $st records counted: $(echo "$m" | grep flow_log)"; return 1; }
	done
	echo "$m" | grep -q '^vnetxdp_flow_log_records_dropped_total{reason="rate"} 0$' ||
		{ echo "$(echo "$m" | grep flow_log_records_dropped)"; return 1; }
	if command -v promtool >/dev/null; then
		echo "$m" | promtool check metrics >/dev/null 2>"$WORK/promtool.err" ||
			{ cat "$WORK/promtool.err"; return 1; }
	fi
}

# SIGHUP with other flow log settings: the writer restarts into the new directory
reload_moves_the_flow_logs() {
	local moved=$WORK/flows2
	jq --arg dir "$moved" '.gateway.flowLogs.directory = $dir' "$CONFIG" >"$CONFIG.new" &&
		mv "$CONFIG.new" "$CONFIG"
	kill -HUP "$(cat "$WORK/serve.pid")"
	for _ in $(seq 50); do [ -d "$moved" ] && break; sleep 0.1; done
	[ -d "$moved" ] || { echo "no $moved after SIGHUP: $(tail -5 "$WORK/serve.log")"; return 1; }
	vm hub ping -c 2 -i 0.2 -W 1 10.11.1.4 >/dev/null || { echo "ping failed"; return 1; }
	for _ in $(seq 30); do
		find "$moved" -name 'flowlog-*.json' | xargs -r cat | grep -q '10.10.1.4,10.11.1.4,0,0,1,I,B' && return 0
		sleep 0.2
	done
	echo "the ping is not in $moved: $(find "$moved")"
	return 1
}

run_case a_relative_or_dotted_directory_is_refused
run_case serve_refuses_a_world_writable_directory
run_case serve_creates_the_directory_and_writes
run_case ping_flow_begins_and_ends_with_exact_counts
run_case tcp_exchange_is_logged_with_its_exact_counts
run_case denied_connection_has_a_denied_tuple_with_its_rule
run_case files_are_whole_documents_in_hourly_folders
run_case size_bound_removed_the_oldest_hour
run_case a_monitor_gets_the_events_and_hands_them_back
run_case metrics_count_the_records
run_case reload_moves_the_flow_logs
exit ${FAILED:-0}

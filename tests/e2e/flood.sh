#!/usr/bin/env bash
# End to end: one VM (hub) floods new UDP flows toward the Internet as fast as it can send
# them, to addresses that never answer; meanwhile another VM (spoke1) keeps an iperf3 TCP
# stream through SNAT going and opens new connections (curl). The flood gets its VM's
# port block, limits.snatMappingsPerVm ports (dropped beyond, snat_vm_limit), and not the
# shared SNAT table (snatTableSize 4096): the other VM's stream and new connections go on.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_flood vxfld flood
FLOOD=$PWD/${BUILD:-build}/tests/tools/flood
INTERNET=198.51.100.2
SILENT=192.0.2.1  # routed to the Internet host, which answers nothing there
in_vm() { local ns=$1; shift; in_ns "$PREFIX-$ns" "$@"; }
SERVERS=()
serve_in() { local ns=$1; shift; nsenter --net=/run/netns/"$PREFIX-$ns" "$@" & SERVERS+=($!); }
e2e_cleanup() { [ ${#SERVERS[@]} -eq 0 ] || kill "${SERVERS[@]}" 2>/dev/null; }

for tool in curl iperf3 jq python3; do
	command -v $tool >/dev/null || { skip e2e_flood "$tool is not installed (scripts/install-deps.sh)"; exit 0; }
done
[ -x "$FLOOD" ] || { skip e2e_flood "$FLOOD is not built (make all)"; exit 0; }

e2e_topology "$WORK/topology.json"
ip -n $PREFIX-gw route add default via $INTERNET
ip -n $PREFIX-internet route add 203.0.113.0/24 via 198.51.100.1
ip -n $PREFIX-internet route add 10.0.0.0/8 via 198.51.100.1
jq '.gateway.limits = {"snatTableSize": 4096, "flowTableSize": 4096, "snatMappingsPerVm": 1024}' \
	"$WORK/topology.json" >"$CONFIG"

echo hello-from-the-internet >"$WORK/index.html"
serve_in internet python3 -m http.server 8080 --bind $INTERNET --directory "$WORK" >/dev/null 2>&1
serve_in internet iperf3 -s -B $INTERNET -p 5201 >/dev/null 2>&1
listening() { ip netns exec $PREFIX-internet ss -Hlnt | grep -q ":$1 "; }
for _ in $(seq 100); do listening 8080 && listening 5201 && break; sleep 0.2; done

curls() { # N: new connections from spoke1, one every 0.5 s; prints how many succeeded
	local ok=0
	for _ in $(seq "$1"); do
		[ "$(in_vm spoke1 curl -s --max-time 3 http://$INTERNET:8080/index.html)" = \
			hello-from-the-internet ] && ok=$((ok + 1))
		sleep 0.5
	done
	echo $ok
}

up_with_limits() {
	gw up -c "$CONFIG"
}

other_vm_keeps_its_stream_and_new_connections_during_a_flood() {
	local baseline flood_out stream ok vm_limit table_full
	baseline=$(in_vm spoke1 iperf3 -c $INTERNET -p 5201 -t 2 -J | jq '.end.sum_received.bits_per_second')
	in_vm spoke1 iperf3 -c $INTERNET -p 5201 -t 8 -J >"$WORK/stream.json" &
	local stream_pid=$!
	sleep 1
	in_vm hub "$FLOOD" $SILENT 6 4 >"$WORK/flood.txt" &
	local flood_pid=$!
	sleep 0.5
	ok=$(curls 10)
	wait $flood_pid
	wait $stream_pid || { echo "the stream failed during the flood"; return 1; }
	flood_out=$(cat "$WORK/flood.txt")
	stream=$(jq '.end.sum_received.bits_per_second' "$WORK/stream.json")
	vm_limit=$(stat_value '[.drops[] | select(.reason == "snat_vm_limit") | .packets] | add // 0')
	table_full=$(stat_value '[.drops[] | select(.reason == "snat_table_full") | .packets] | add // 0')
	{
	echo "flood (hub): $flood_out"
	echo "victim (spoke1): stream $(awk -v b="$stream" 'BEGIN { printf "%.0f", b / 1e6 }') Mbit/s" \
		"during the flood, $(awk -v b="$baseline" 'BEGIN { printf "%.0f", b / 1e6 }') Mbit/s before;" \
		"$ok/10 new connections"
	echo "drops: snat_vm_limit $vm_limit, snat_table_full $table_full;" \
		"flows: $(gw stats -n $GATEWAY -j | jq -c '.flows | {active, unanswered, promoted, evicted}')"
	} | tee "$WORK/summary"
	[ "$ok" -eq 10 ] || { echo "new connections failed"; return 1; }
	[ "$vm_limit" -gt 0 ] || { echo "the flood was not held to its VM's limit"; return 1; }
	[ "$table_full" -eq 0 ] || { echo "the shared SNAT table filled up"; return 1; }
	awk -v b="$stream" 'BEGIN { exit !(b > 0) }'
}

run_case up_with_limits
run_case other_vm_keeps_its_stream_and_new_connections_during_a_flood
sed 's/^/    /' "$WORK/summary" 2>/dev/null
exit ${FAILED:-0}

#!/usr/bin/env bash
# End to end: `vnet-xdp serve` brings the hub-and-spoke gateway up and exports its
# counters; the exposition passes promtool; a real Prometheus server in the gateway's
# namespace scrapes it and answers with the traffic the test sent; the textfile is
# written; counters survive killing serve; stopping serve leaves the datapath running.
# A scrape answers within 2 s while 64 slow clients hold connections and with a million
# flows in the table (a generous bound: a scrape takes milliseconds).
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_metrics vxmet met
LISTEN=127.0.0.1:9469
PROMETHEUS_LISTEN=127.0.0.1:9470
PINGS=7
TEXTFILE_DIR=$WORK/textfile
TOOLS=$PWD/${BUILD:-build}/tests/tools
BIG_TABLE=1000000
mkdir -p "$TEXTFILE_DIR"
e2e_topology
# room for the million-flow case
jq '.gateway.limits.flowTableSize = 1048576' "$CONFIG" >"$CONFIG.new" && mv "$CONFIG.new" "$CONFIG"

scrape() { in_gw curl -sf --max-time 5 "http://$LISTEN/metrics"; }

# sample_value NAME{LABELS}: the value of one series in the exposition on stdin
sample_value() { awk -v series="$1" '$1 == series { print $2; found = 1 } END { exit !found }'; }

HUB_TO_SPOKE1='vnetxdp_peering_packets_total{vnet="hub",remote_vnet="spoke1"}'

# serve in the background (its output kept out of run_case's capture), with the config's
# listen address and a textfile
serve_with_textfile() { serve_start "$LISTEN" --textfile "$TEXTFILE_DIR"; }

serve_brings_the_gateway_up_and_serves_metrics() {
	serve_with_textfile || return 1
	for i in to-hub to-spoke1 to-spoke2 uplink0; do
		xdp_attached $i || { echo "no XDP on $i"; return 1; }
	done
	scrape | grep -q '^vnetxdp_build_info{version="[^"]*"} 1$'
}

metrics_listen_on_loopback_only() {
	in_gw ss -Hltn "sport = :9469" | awk '{print $4}' | tee "$WORK/listen"
	[ "$(cat "$WORK/listen")" = "$LISTEN" ]
}

pings_count_on_the_hub_to_spoke1_peering() {
	local before after
	before=$(scrape | sample_value "$HUB_TO_SPOKE1") || { echo "no $HUB_TO_SPOKE1"; return 1; }
	vm hub ping -c $PINGS -i 0.2 -W 2 10.11.1.4 >/dev/null || return 1
	after=$(scrape | sample_value "$HUB_TO_SPOKE1")
	echo "hub->spoke1 packets $before -> $after"
	[ "$after" -ge $((before + PINGS)) ]
}

stats_prometheus_passes_promtool() {
	gw stats -n $GATEWAY --prometheus >"$WORK/stats.prom" || return 1
	promtool check metrics <"$WORK/stats.prom" || return 1
	sample_value "$HUB_TO_SPOKE1" <"$WORK/stats.prom" >/dev/null
}

http_metrics_pass_promtool() {
	local headers
	headers=$(in_gw curl -sf -D - -o "$WORK/http.prom" "http://$LISTEN/metrics") || return 1
	grep -qi '^content-type: text/plain; version=0.0.4' <<<"$headers" || { echo "$headers"; return 1; }
	promtool check metrics <"$WORK/http.prom"
}

every_pinned_map_has_fill_metrics() {
	local map path n=0
	scrape >"$WORK/maps.prom" || return 1
	for path in /sys/fs/bpf/vnet-xdp/$GATEWAY/*; do
		map=$(basename "$path")
		case $map in xdp_*) continue ;; esac # the programs pinned per interface
		n=$((n + 1))
		sample_value "vnetxdp_map_max_entries{map=\"$map\"}" <"$WORK/maps.prom" >/dev/null ||
			{ echo "no max_entries for $map"; return 1; }
		# a ring buffer (monitor_events) holds bytes, not entries: its size is all there is
		[ "$map" = monitor_events ] && continue
		sample_value "vnetxdp_map_entries{map=\"$map\"}" <"$WORK/maps.prom" >/dev/null ||
			{ echo "no entries for $map"; return 1; }
	done
	[ $n -ge 9 ] || { echo "only $n maps"; return 1; }
	# the routes trie holds the demo's routes: counted, not zero, not its capacity
	local routes
	routes=$(sample_value 'vnetxdp_map_entries{map="routes"}' <"$WORK/maps.prom")
	[ "$routes" -gt 0 ] && [ "$routes" -lt 262144 ] || { echo "routes entries $routes"; return 1; }
}

concurrent_scrapes_all_succeed() {
	local i ok
	for i in $(seq 16); do
		(scrape >"$WORK/concurrent.$i" && promtool check metrics <"$WORK/concurrent.$i" >/dev/null 2>&1 &&
			sample_value "$HUB_TO_SPOKE1" <"$WORK/concurrent.$i" >/dev/null && touch "$WORK/concurrent.$i.ok") &
	done
	wait
	ok=$(ls "$WORK"/concurrent.*.ok 2>/dev/null | wc -l)
	rm -f "$WORK"/concurrent.*
	[ "$ok" -eq 16 ] || { echo "$((16 - ok)) of 16 concurrent scrapes failed"; return 1; }
}

# scrape_within_2s: one scrape, answered in full within 2 s
scrape_within_2s() {
	local took
	took=$(in_gw curl -sf --max-time 2 -o "$WORK/timed.prom" -w '%{time_total}' \
		"http://$LISTEN/metrics") || { echo "no answer within 2 s"; return 1; }
	echo "scrape took ${took} s"
	grep -q '^vnetxdp_build_info' "$WORK/timed.prom"
}

# slow_clients NAME COUNT SOURCE [distinct]: slow clients in the gateway's namespace, from
# SOURCE (or one address each from SOURCE on), until the case stops them
slow_clients() {
	# nsenter execs the tool, so the pid saved is the clients' own (a function run in
	# the background would be a subshell, and the clients would outlive its kill)
	nsenter --net=/run/netns/"$NS" "$TOOLS/slowclients" 127.0.0.1 9469 "$2" "$3" ${4:-} \
		>"$WORK/$1.log" 2>&1 &
	echo $! >"$WORK/$1.pid"
}

scrapes_answer_within_2s_while_64_slow_clients_hold_connections() {
	local i held rc=0
	slow_clients slow-spread 64 127.0.2.1 distinct # one address each
	slow_clients slow-one 64 127.0.3.1             # all from one address
	sleep 5 # connected, and past a header line and a connection timeout
	grep -h connected "$WORK"/slow-*.log
	for i in 1 2 3; do
		scrape_within_2s || { rc=1; break; }
		sleep 3
	done
	# one address holds no more than its share; the others were closed
	held=$(in_gw ss -Htn state established "( sport = :9469 and dst 127.0.3.1 )" | wc -l)
	echo "connections held from 127.0.3.1: $held"
	[ "$held" -le 16 ] || rc=1
	stop_pid_file "$WORK/slow-spread.pid"
	stop_pid_file "$WORK/slow-one.pid"
	return $rc
}

scrape_answers_within_2s_with_a_million_flows() {
	local active
	in_gw "$TOOLS/flowfill" /sys/fs/bpf/vnet-xdp/$GATEWAY $BIG_TABLE || return 1
	scrape_within_2s || return 1
	promtool check metrics <"$WORK/timed.prom" || return 1
	active=$(sample_value vnetxdp_flows_active <"$WORK/timed.prom")
	echo "flows active: $active"
	# an LRU table may push a few out while it fills
	[ "$active" -ge $((BIG_TABLE * 9 / 10)) ] || return 1
	sample_value 'vnetxdp_map_entries{map="flows"}' <"$WORK/timed.prom" >/dev/null || return 1
	grep -q '^vnetxdp_snat_ports_in_use{vip=' "$WORK/timed.prom" || { echo "no ports in use"; return 1; }
	scrape_within_2s
}

unknown_paths_are_404() {
	local code
	code=$(in_gw curl -s -o /dev/null -w '%{http_code}' "http://$LISTEN/nope")
	[ "$code" = 404 ] || { echo "got $code"; return 1; }
}

textfile_is_written_and_passes_promtool() {
	[ -s "$TEXTFILE_DIR/vnet_xdp.prom" ] || { echo "no textfile"; ls -la "$TEXTFILE_DIR"; return 1; }
	promtool check metrics <"$TEXTFILE_DIR/vnet_xdp.prom" || return 1
	sample_value "$HUB_TO_SPOKE1" <"$TEXTFILE_DIR/vnet_xdp.prom" >/dev/null || return 1
	# only the finished file is there, never a temporary one ending in .prom
	[ "$(ls "$TEXTFILE_DIR" | grep -c '\.prom$')" -eq 1 ]
}

prometheus_server_scrapes_the_peering_counter() {
	local value='' query
	prometheus_start "$LISTEN" "$PROMETHEUS_LISTEN"
	query="$HUB_TO_SPOKE1"
	for _ in $(seq 60); do
		value=$(in_gw curl -sfG --max-time 2 --data-urlencode "query=$query" \
			"http://$PROMETHEUS_LISTEN/api/v1/query" | jq -r '.data.result[0].value[1] // empty')
		[ -n "$value" ] && break
		sleep 0.5
	done
	[ -n "$value" ] || { echo "Prometheus has no $query"; tail -5 "$WORK/prometheus.log"; return 1; }
	echo "Prometheus: $query = $value"
	[ "$value" -ge $PINGS ] || return 1
	# and it found the target healthy
	value=$(in_gw curl -sfG --data-urlencode 'query=up{job="vnet-xdp"}' \
		"http://$PROMETHEUS_LISTEN/api/v1/query" | jq -r '.data.result[0].value[1]')
	[ "$value" = 1 ] || { echo "up = $value"; return 1; }
}

counters_survive_killing_serve() {
	local before during after
	before=$(scrape | sample_value "$HUB_TO_SPOKE1") || return 1
	stop_pid_file "$WORK/serve.pid" KILL
	# the datapath keeps forwarding and counting while no exporter runs
	vm hub ping -c 3 -i 0.2 -W 2 10.11.1.4 >/dev/null || { echo "no forwarding without serve"; return 1; }
	during=$(gw stats -n $GATEWAY -j | jq -r '.peerings[] | select(.vnet == "hub" and .remoteVnet == "spoke1") | .packets')
	serve_with_textfile || return 1
	after=$(scrape | sample_value "$HUB_TO_SPOKE1")
	echo "hub->spoke1 packets $before, after kill $during, after restart $after"
	[ "$during" -ge $((before + 3)) ] && [ "$after" -ge "$during" ]
}

sigterm_stops_serve_and_leaves_the_datapath() {
	local pid rc
	pid=$(cat "$WORK/serve.pid")
	kill -TERM "$pid"
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && { echo "serve still running"; return 1; }
	rm -f "$WORK/serve.pid"
	grep -q 'keeps forwarding' "$WORK/serve.log" || { cat "$WORK/serve.log"; return 1; }
	for i in to-hub to-spoke1 to-spoke2 uplink0; do
		xdp_attached $i || { echo "XDP gone from $i"; return 1; }
	done
	[ -d /sys/fs/bpf/vnet-xdp/$GATEWAY ] || { echo "pins gone"; return 1; }
	vm hub ping -c 1 -W 2 10.11.1.4 >/dev/null
}

serve_usage_errors_exit_2() {
	gw serve -c "$CONFIG" --listen nonsense; [ $? -eq 2 ] || return 1
	gw serve --bogus; [ $? -eq 2 ] || return 1
	gw serve -c "$CONFIG" -n other-gateway; [ $? -eq 2 ] || return 1
}

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
	scripts/install-deps.sh >/dev/null 2>&1 || true
fi
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
	skip e2e_metrics "prometheus (promtool and the server) cannot be installed"
	exit 0
fi

run_case serve_brings_the_gateway_up_and_serves_metrics
run_case metrics_listen_on_loopback_only
run_case pings_count_on_the_hub_to_spoke1_peering
run_case stats_prometheus_passes_promtool
run_case http_metrics_pass_promtool
run_case every_pinned_map_has_fill_metrics
run_case concurrent_scrapes_all_succeed
run_case scrapes_answer_within_2s_while_64_slow_clients_hold_connections
run_case scrape_answers_within_2s_with_a_million_flows
run_case unknown_paths_are_404
run_case textfile_is_written_and_passes_promtool
run_case prometheus_server_scrapes_the_peering_counter
run_case counters_survive_killing_serve
run_case sigterm_stops_serve_and_leaves_the_datapath
run_case serve_usage_errors_exit_2

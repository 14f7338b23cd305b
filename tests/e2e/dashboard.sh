#!/usr/bin/env bash
# End to end: the Grafana dashboard in dashboards/ asks a real Prometheus server (Debian's
# package) questions it can answer. `vnet-xdp serve` runs the hub-and-spoke gateway, the
# test sends traffic that is forwarded, dropped by routing and denied by an NSG rule,
# Prometheus scrapes and holds the per-rule and per-peering values that traffic made,
# and every query of every panel and of the instance variable is run through Prometheus'
# HTTP API with Grafana's variables filled in: each must parse, and each over families
# the exporter exports must return series. A family the exporter leaves out (its datapath
# feature has not landed, or the config has none of its objects) is named, its query
# still checked for syntax and its families against the exporter's table.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_dashboard vxdash dash
LISTEN=127.0.0.1:9479
PROMETHEUS_LISTEN=127.0.0.1:9480
DASHBOARD=${DASHBOARD:-dashboards/vnet-xdp.grafana.json}
PROMETHEUS_RULES=${PROMETHEUS_RULES:-dashboards/vnet-xdp.rules.yml}

if ! command -v prometheus >/dev/null; then
	skip dashboard_queries "prometheus is not installed (scripts/install-deps.sh installs it)"
	exit 0
fi
e2e_topology "$WORK/topology.json"
# spoke2's subnet NSG denies ICMP in: each ping from the hub is one packet on that rule
DENIED_PINGS=4
NSG='{"type": "Microsoft.Network/networkSecurityGroups", "name": "spoke2-nsg", "properties": {
  "securityRules": [{"name": "DenyPing", "properties": {"priority": 100, "direction": "Inbound",
    "access": "Deny", "protocol": "Icmp", "sourceAddressPrefix": "*", "sourcePortRange": "*",
    "destinationAddressPrefix": "*", "destinationPortRange": "*"}}]}}'
# the config keeps the default listen address; `serve --listen` overrides it
jq --argjson nsg "$NSG" '
	.resources += [$nsg]
	| (.resources[] | select(.name == "spoke2") | .properties.subnets[0].properties.networkSecurityGroup)
		= {"id": "spoke2-nsg"}' "$WORK/topology.json" >"$CONFIG"

query() { # query PROMQL: Prometheus' JSON answer
	in_gw curl -sfG --max-time 5 --data-urlencode "query=$1" "http://$PROMETHEUS_LISTEN/api/v1/query"
}

dashboard_is_grafana_json() {
	jq -e '.title and (.panels | length > 0) and .schemaVersion' "$DASHBOARD" >/dev/null || return 1
	# every panel with a query names the data source variable
	[ "$(jq '[.. | objects | select(has("targets")) | .datasource.uid] | map(select(. != "${datasource}")) | length' "$DASHBOARD")" = 0 ]
}

serve_traffic_and_prometheus() {
	serve_start $LISTEN --listen $LISTEN || return 1
	# --listen won over the config's default, and only that address is bound
	[ "$(in_gw ss -Hltn | awk '$4 ~ /:94(69|79)$/ {print $4}')" = $LISTEN ] ||
		{ in_gw ss -Hltn; return 1; }
	prometheus_start $LISTEN $PROMETHEUS_LISTEN
	# forwarded both ways, refused by routing (route_none) and denied by the NSG, while
	# Prometheus scrapes
	for _ in $(seq $DENIED_PINGS); do
		vm hub ping -c 3 -i 0.2 -W 1 10.11.1.4 >/dev/null || return 1
		vm spoke1 ping -c 2 -i 0.2 -W 1 10.12.1.4 >/dev/null && return 1
		vm hub ping -c 1 -W 1 10.12.1.4 >/dev/null && { echo "the NSG let a ping in"; return 1; }
		sleep 1
	done
	for _ in $(seq 60); do
		[ "$(query 'count(vnetxdp_peering_packets_total > 0)' | jq -r '.data.result[0].value[1] // 0')" -ge 1 ] &&
			return 0
		sleep 0.5
	done
	echo "Prometheus never saw the peering counters"; tail -5 "$WORK/prometheus.log"
	return 1
}

every_dashboard_query_answers() {
	local exported expr promql answer names missing n=0 empty=0
	# families with samples (a family may be typed but empty: no tunnel configured)
	exported=$(in_gw curl -sf "http://$LISTEN/metrics" | awk '!/^#/ { sub(/[{ ].*/, ""); print }' | sort -u)
	while IFS= read -r expr; do
		n=$((n + 1))
		promql=${expr//\$__rate_interval/1m}
		promql=${promql//\$__range/5m}
		promql=${promql//\$instance/.*}
		answer=$(query "$promql") || { echo "Prometheus refused: $promql"; return 1; }
		[ "$(jq -r .status <<<"$answer")" = success ] || { echo "$promql: $answer"; return 1; }
		missing=
		names=$(grep -o 'vnetxdp_[a-z_]*' <<<"$expr" | sort -u)
		for name in $names; do
			grep -qx "$name" <<<"$exported" || missing="$missing $name"
		done
		if [ -n "$missing" ]; then
			# a family the exporter defines but has no data for yet, never a typo
			for name in $missing; do
				grep -q "{ \"$name\"," user/observe/metrics.c || { echo "no such family: $name"; return 1; }
			done
			echo "no samples yet:$missing (query parses: $promql)"
			continue
		fi
		if [ "$(jq '.data.result | length' <<<"$answer")" -eq 0 ]; then
			echo "no series: $promql"
			empty=$((empty + 1))
		fi
	done < <(jq -r '.. | objects | select(has("expr")) | .expr' "$DASHBOARD")
	echo "$n queries"
	[ "$n" -gt 5 ] && [ "$empty" -eq 0 ]
}

# The values the traffic produced, as Prometheus stored them from its scrapes.
prometheus_holds_the_rule_and_peering_values() {
	local rule peering
	for _ in $(seq 30); do
		rule=$(query 'vnetxdp_nsg_rule_packets_total{nsg="spoke2-nsg",rule="DenyPing",direction="Inbound",access="Deny"}' |
			jq -r '.data.result[0].value[1] // empty')
		[ "$rule" = $DENIED_PINGS ] && break
		sleep 0.5
	done
	peering=$(query 'vnetxdp_peering_packets_total{vnet="hub",remote_vnet="spoke1"}' |
		jq -r '.data.result[0].value[1] // empty')
	echo "Prometheus: DenyPing packets $rule, hub->spoke1 packets $peering"
	[ "$rule" = $DENIED_PINGS ] && [ -n "$peering" ] && [ "$peering" -ge $((3 * DENIED_PINGS)) ]
}

# Arrays hold every slot always, so their entries equal their capacity: the fill panel
# shows the maps that fill up (the flow cache, tries), none of them full on this gateway.
map_fill_leaves_arrays_out() {
	local expr answer maps arrays
	expr=$(jq -r '.. | objects | select(.title? // "" | startswith("Map fill ratio")) | .targets[0].expr' "$DASHBOARD")
	answer=$(query "${expr//\$instance/.*}") || return 1
	maps=$(jq -r '.data.result[] | "\(.metric.map) \(.value[1])"' <<<"$answer")
	arrays=$(query 'vnetxdp_map_info{type=~".*array"}' | jq -r '.data.result[].metric.map')
	echo "fill panel: $(tr '\n' ' ' <<<"$maps")"
	[ -n "$arrays" ] || { echo "the exporter names no array map"; return 1; }
	grep -q '^flows ' <<<"$maps" || return 1
	for map in $arrays; do
		grep -q "^$map " <<<"$maps" && { echo "array $map in the fill panel"; return 1; }
	done
	! awk '$2 >= 1 { found = 1 } END { exit !found }' <<<"$maps"
}

# Prometheus evaluates every alert rule on the gateway's own series without an error,
# and a healthy gateway fires none of them.
alert_rules_evaluate_on_the_live_exporter() {
	local rules
	for _ in $(seq 30); do
		rules=$(in_gw curl -sf "http://$PROMETHEUS_LISTEN/api/v1/rules" | jq -c '[.data.groups[].rules[]]')
		[ "$(jq '[.[] | select(.lastEvaluation | startswith("0001"))] | length' <<<"$rules")" = 0 ] &&
			[ "$(jq length <<<"$rules")" -gt 0 ] && break
		sleep 0.5
	done
	jq -r '.[] | "\(.name) \(.health) \(.state) \(.lastError // "")"' <<<"$rules"
	[ "$(jq length <<<"$rules")" = "$(grep -c -- '- alert:' "$PROMETHEUS_RULES")" ] || return 1
	[ "$(jq '[.[] | select(.health != "ok")] | length' <<<"$rules")" = 0 ] &&
		[ "$(jq '[.[] | select(.state != "inactive")] | length' <<<"$rules")" = 0 ]
}

instance_variable_lists_the_exporter() {
	local q values
	q=$(jq -r '.templating.list[] | select(.name == "instance") | .query.query' "$DASHBOARD")
	[ "$q" = 'label_values(vnetxdp_build_info, instance)' ] || { echo "variable query: $q"; return 1; }
	values=$(in_gw curl -sfG --data-urlencode 'match[]=vnetxdp_build_info' \
		"http://$PROMETHEUS_LISTEN/api/v1/label/instance/values" | jq -r '.data[]')
	[ "$values" = "$LISTEN" ] || { echo "instances: $values"; return 1; }
}

run_case dashboard_is_grafana_json
run_case serve_traffic_and_prometheus
run_case prometheus_holds_the_rule_and_peering_values
run_case every_dashboard_query_answers
run_case instance_variable_lists_the_exporter
run_case map_fill_leaves_arrays_out
run_case alert_rules_evaluate_on_the_live_exporter

# Shared by the end-to-end scripts (tests/e2e/*.sh; this file is not named *.sh, so the
# runner does not run it): the prologue every script starts with and the helpers they
# have in common, on top of tests/lib.sh and scripts/topology.sh.
#
#   cd "$(dirname "$0")/../.."
#   . tests/e2e/lib.bash
#   e2e_begin e2e_peering vxe2e e2e   # root or skip; names; $WORK; cleanup on exit
#   e2e_topology                      # fresh namespaces, the topology's config in $CONFIG
#
# A script that starts more (servers, receivers) defines e2e_cleanup; it runs first on
# exit. A process whose id the script keeps in $WORK/NAME.pid is stopped on exit too.
. tests/lib.sh
. scripts/topology.sh

# e2e_begin SUITE PREFIX GATEWAY: skips the script unless root. PREFIX (the namespaces)
# and GATEWAY (the gateway's name) get the process id appended: checkouts running the
# suite at once do not collide. NS is the gateway's namespace, WORK a scratch folder,
# CONFIG the config's path in it.
e2e_begin() {
	need_root "$1"
	PREFIX=$2$$
	GATEWAY=$3$$
	NS=$PREFIX-gw
	WORK=$(mktemp -d "/tmp/vnet-xdp-$3.XXXXXX")
	CONFIG=$WORK/gateway.json
	trap e2e_end EXIT
}

e2e_end() {
	local pid_file
	if declare -F e2e_cleanup >/dev/null; then
		e2e_cleanup
	fi
	for pid_file in "$WORK"/*.pid; do
		stop_pid_file "$pid_file"
	done
	gw down -n "$GATEWAY" >/dev/null 2>&1
	topology_down "$PREFIX"
	rm -rf "$WORK"
}

# e2e_topology [FILE]: the hub-and-spoke namespaces, fresh, and the topology's own config
# for this gateway in FILE (default $CONFIG).
e2e_topology() {
	topology_down "$PREFIX"
	topology_up "$PREFIX"
	topology_config "$GATEWAY" >"${1:-$CONFIG}"
}

# One NSG security rule as JSON (any source port, any destination address).
security_rule() { # security_rule NAME PRIORITY DIRECTION ACCESS PROTOCOL SOURCE DESTINATION-PORT
	printf '{"name": "%s", "properties": {"priority": %s, "direction": "%s", "access": "%s",
	  "protocol": "%s", "sourceAddressPrefix": "%s", "sourcePortRange": "*",
	  "destinationAddressPrefix": "*", "destinationPortRange": "%s"}}' "$@"
}

# The CLI in the gateway's namespace; any command there; a command in a VM's namespace.
gw() { in_ns "$NS" "$VNET_XDP" "$@"; }
in_gw() { in_ns "$NS" "$@"; }
vm() { local ns=$1; shift; ip netns exec "$PREFIX-$ns" "$@"; }

# reaches VM ADDRESS: a ping from the VM is answered (REACH_PINGS pings, default 1).
reaches() { vm "$1" ping -c "${REACH_PINGS:-1}" -i 0.2 -W 1 "$2" >/dev/null; }

# stat_value JQ-FILTER: one value from `stats -j`.
stat_value() { gw stats -n "$GATEWAY" -j | jq -r "$1"; }

# unit_verifies [OPTION...] UNIT: `systemd-analyze verify` passes UNIT without a word; a
# unit it has anything to say about fails it.
unit_verifies() {
	local out
	out=$(systemd-analyze verify "$@" 2>&1) && [ -z "$out" ] || { echo "$out"; return 1; }
}

xdp_attached() { ip -n "$NS" -d link show "$1" | grep -q 'prog/xdp'; }

# stop_pid_file FILE [SIGNAL]: ends the process this test started whose id FILE holds,
# by that id (TERM by default, KILL after 5 s).
stop_pid_file() {
	local pid
	[ -s "$1" ] || return 0
	pid=$(cat "$1")
	kill -"${2:-TERM}" "$pid" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	rm -f "$1"
}

# serve_start LISTEN [ARGS...]: `vnet-xdp serve -c $CONFIG ARGS` in the background (its
# output in $WORK/serve.log, its id in $WORK/serve.pid), until /metrics answers on LISTEN.
serve_start() {
	local listen=$1
	shift
	# nsenter execs the command, so $! is serve itself (a shell function would fork)
	nsenter --net=/run/netns/"$NS" "$VNET_XDP" serve -c "$CONFIG" "$@" >>"$WORK/serve.log" 2>&1 &
	echo $! >"$WORK/serve.pid"
	for _ in $(seq 100); do
		in_gw curl -sf --max-time 2 "http://$listen/metrics" >/dev/null 2>&1 && return 0
		kill -0 "$(cat "$WORK/serve.pid")" 2>/dev/null || break
		sleep 0.1
	done
	echo "serve did not answer on $listen"
	cat "$WORK/serve.log"
	return 1
}

# prometheus_start TARGET LISTEN: a Prometheus server in the gateway's namespace that
# scrapes TARGET every second and answers on LISTEN (its id in $WORK/prometheus.pid);
# it evaluates the rule file $PROMETHEUS_RULES, if set, every second.
prometheus_start() {
	cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [${PROMETHEUS_RULES:+'$PWD/$PROMETHEUS_RULES'}]
scrape_configs:
  - job_name: vnet-xdp
    static_configs:
      - targets: ['$1']
YAML
	nsenter --net=/run/netns/"$NS" prometheus --config.file="$WORK/prometheus.yml" \
		--storage.tsdb.path="$WORK/tsdb" --web.listen-address="$2" >"$WORK/prometheus.log" 2>&1 &
	echo $! >"$WORK/prometheus.pid"
}

#!/usr/bin/env bash
# Scrape-time benchmark: brings the demo gateway up in namespaces, fills the routes trie
# and the source prefixes with many extra entries (in a scope no VNet uses, so no packet
# is affected) and the flow and SNAT reverse tables with FLOWS made-up live entries each
# (tests/tools/flowfill), runs `vnet-xdp serve`, and prints how long /metrics and `stats
# --prometheus` take, with a PASS/FAIL line for the target: a scrape within 2 s with a
# million flows. LPM tries are walked key by key; hash maps are not (the kernel counts
# them), so the routes cost and the flows should not.
#   ROUTES=65536 FLOWS=1000000 SCRAPES=50 [SCRAPE_TARGET_FILE=F] scripts/bench/scrape.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
. scripts/topology.sh

PREFIX=vxscrape
GATEWAY=scrape
NS=$PREFIX-gw
LISTEN=127.0.0.1:9469
ROUTES=${ROUTES:-65536}
FLOWS=${FLOWS:-1000000}
SCRAPES=${SCRAPES:-50}
FLOWFILL=$PWD/${BUILD:-build}/tests/tools/flowfill
WORK=$(mktemp -d /tmp/vnet-xdp-scrape.XXXXXX)
PIN=/sys/fs/bpf/vnet-xdp/$GATEWAY

[ "$(id -u)" -eq 0 ] || { echo "scrape.sh: needs root" >&2; exit 1; }
[ -x "$VNET_XDP" ] || { echo "scrape.sh: build first ($VNET_XDP missing)" >&2; exit 1; }

cleanup() {
	if [ -s "$WORK/serve.pid" ]; then
		kill "$(cat "$WORK/serve.pid")" 2>/dev/null || true
		sleep 0.3
	fi
	in_ns $NS "$VNET_XDP" down -n $GATEWAY >/dev/null 2>&1 || true
	topology_down $PREFIX
	rm -rf "$WORK"
}
trap cleanup EXIT

topology_down $PREFIX
topology_up $PREFIX
topology_config $GATEWAY | jq '.gateway.limits.flowTableSize = 1048576' >"$WORK/gateway.json"
in_ns $NS "$VNET_XDP" up -c "$WORK/gateway.json" >/dev/null

# Extra entries: lpm_key {prefixlen, scope, family, addr[16]} as little-endian u32s, an
# IPv4 /32 in 10.0.0.0/8 under scope 0xffffff00; routes get ROUTE_NONE (3). The source
# prefixes trie holds at most 65536, so it gets half as many.
echo "filling routes with $ROUTES and source_prefixes with $((ROUTES / 2)) extra entries"
awk -v n="$ROUTES" -v pin="$PIN" 'BEGIN {
	for (i = 0; i < n; i++) {
		key = sprintf("60 00 00 00 00 ff ff ff 02 00 00 00 0a %02x %02x %02x 00 00 00 00 00 00 00 00 00 00 00 00",
			      int(i / 65536) % 256, int(i / 256) % 256, i % 256)
		printf "map update pinned %s/routes key hex %s value hex 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n", pin, key
		if (i < n / 2)
			printf "map update pinned %s/source_prefixes key hex %s value hex 00 00 00 00\n", pin, key
	}
}' >"$WORK/batch"
bpftool batch file "$WORK/batch" >/dev/null
echo "filling flows and snat_reverse with $FLOWS entries each"
in_ns $NS "$FLOWFILL" "$PIN" "$FLOWS"

in_ns $NS "$VNET_XDP" serve -c "$WORK/gateway.json" --listen $LISTEN >"$WORK/serve.log" 2>&1 &
echo $! >"$WORK/serve.pid"
for _ in $(seq 100); do
	in_ns $NS curl -sf -o /dev/null "http://$LISTEN/metrics" && break
	sleep 0.1
done

in_ns $NS curl -sf "http://$LISTEN/metrics" | grep -E '^vnetxdp_(map_entries|flows_active)'
for _ in $(seq "$SCRAPES"); do
	in_ns $NS curl -s -o /dev/null --max-time 10 -w '%{http_code} %{time_total}\n' "http://$LISTEN/metrics"
done | sort -k2 -n | awk -v flows="$FLOWS" -v target="${SCRAPE_TARGET_FILE:-/dev/null}" '
	{ t[NR] = $2 * 1000; if ($1 != 200) failed++ }
	END {
		printf "scrape /metrics over %d runs: min %.1f ms, median %.1f ms, p90 %.1f ms, max %.1f ms\n",
		       NR, t[1], t[int((NR + 1) / 2)], t[int(NR * 0.9)], t[NR]
		line = sprintf("  %s /metrics scrape with %d flows and %d SNAT entries < 2 s: median %.1f ms, max %.1f ms%s",
			       (!failed && t[NR] < 2000) ? "PASS" : "FAIL", flows, flows, t[int((NR + 1) / 2)], t[NR],
			       failed ? sprintf(", %d not answered", failed) : "")
		print line
		print line >target
	}'
start=$(date +%s%N)
in_ns $NS "$VNET_XDP" stats -n $GATEWAY --prometheus >/dev/null
echo "stats --prometheus (process start and a count of the SNAT table included): $((($(date +%s%N) - start) / 1000000)) ms"

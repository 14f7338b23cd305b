#!/usr/bin/env bash
# make bench: the gateway's fast path against the Linux kernel path configured for the
# same job, side by side in one run on one topology (docs/benchmarks.md).
#
#   vxbench-spoke1 (sender) --> vxbench-gw (gateway bench1) --> vxbench-hub (receiver)
#                                                           --> vxbench-internet (receiver)
#
# Traffic: build/bench/vxbench sends 60-byte frames with BPF_PROG_TEST_RUN in live-frames
# mode from the sender's veth; the receivers count and drop them in XDP. Each pair of
# measurements runs the same frames through the same namespaces twice: once with our
# XDP program on the gateway's ingress ("ours"), once with it detached so the kernel
# routes (ip_forward, nftables rules equivalent to the NSG, nftables SNAT to the VIP).
#
# On a 2-core machine the sender, the gateway and the receivers share one core (the
# veths' NAPI runs in the sender's softirq), so packets per second measure the whole
# chain; cost per packet (CPU time of the core / packets, minus the cost of the sender
# alone) is the figure to compare. Knobs: BENCH_SECONDS (per run), BENCH_REPS,
# BENCH_NEW_FLOWS, BENCH_RULES, BENCH_CPU, BENCH_IPSEC=0 to skip scripts/bench/ipsec.sh,
# BENCH_SCENARIOS (a subset of "peering checksum nsg snat esp chain monitor scrape"; scrape is
# scripts/bench/scrape.sh: /metrics with a million flows, on namespaces of its own).
#
# The tunnel throughput (scripts/bench/ipsec.sh, a QEMU guest) runs after the namespace
# measurements: a guest emulated beside them, even on the other core, slowed their
# per-packet figures by a third to a half here. BENCH_IPSEC_OVERLAP=1 boots it at the
# start on the other core, at low priority, to set its tunnel up meanwhile (quicker, at
# that price). BENCH_IPSEC_SECONDS, BENCH_IPSEC_REPS (per path), BENCH_IPSEC_BUDGET
# (seconds it may take after the namespace measurements).
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib.sh
. scripts/topology.sh
. scripts/bench/config.sh

PREFIX=${BENCH_PREFIX:-vxbench}   # namespaces; another name lets two runs coexist
GATEWAY=${BENCH_GATEWAY:-bench1}
GWNS=$PREFIX-gw
BUILD=${BUILD:-build}
OUT=$BUILD/bench
VXBENCH=$PWD/$BUILD/bench/vxbench
RUN_SECONDS=${BENCH_SECONDS:-0.5}
REPS=${BENCH_REPS:-3}
NEW_FLOWS=${BENCH_NEW_FLOWS:-50000}
RULE_COUNTS=${BENCH_RULES:-10 100 1000 4096}
CPU=${BENCH_CPU:-1}
SCENARIOS=" ${BENCH_SCENARIOS:-peering checksum nsg snat esp chain monitor scrape} "
PINS=/sys/fs/bpf/$PREFIX
GW_PINS=/sys/fs/bpf/vnet-xdp/$GATEWAY
WORK=$(mktemp -d /tmp/vnet-xdp-bench.XXXXXX)
CLK_TCK=$(getconf CLK_TCK)
STARTED=$(date +%s)

[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, BPF)" >&2; exit 1; }
for f in "$VNET_XDP" "$VXBENCH"; do
	[ -x "$f" ] || { echo "bench: $f missing: run make first" >&2; exit 1; }
done
for tool in nft jq gnuplot conntrack bpftool; do
	command -v $tool >/dev/null || { echo "bench: $tool missing: run scripts/install-deps.sh" >&2; exit 1; }
done
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mkdir -p "$OUT" "$PINS"
rm -f "$OUT/profile.txt" "$OUT/scrape-target.txt"

STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
	monitor_stop
	ipsec_stop
	sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
	ours_attach_all
	in_ns $GWNS "$VNET_XDP" down -n $GATEWAY >/dev/null 2>&1 || true
	topology_down $PREFIX
	rm -rf "$PINS" "$WORK"
}
[ "${BENCH_KEEP:-0}" = 1 ] || trap cleanup EXIT

log() { printf '%s\n' "$*" >&2; }
elapsed() { echo "[$(($(date +%s) - STARTED)) s]"; }
gw() { in_ns $GWNS "$VNET_XDP" "$@"; }
ifindex() { ip -n $GWNS -j link show "$1" | jq '.[0].ifindex'; }

# ---- the two paths -------------------------------------------------------------------------
# Ours: the gateway's pinned programs on its veths. Kernel: none (the kernel still
# receives through the veths' NAPI, GRO on), ip_forward on.
GW_IFACES="to-hub to-spoke1 to-spoke2 uplink0"
ours_attach() {
	ip -n $GWNS link set dev "$1" xdp off 2>/dev/null
	# not `ip -n`: it remounts /sys, and the pins in bpffs with it
	[ -e "$GW_PINS/xdp_$(ifindex "$1")" ] &&
		in_ns $GWNS ip link set dev "$1" xdpdrv pinned "$GW_PINS/xdp_$(ifindex "$1")"
}
ours_attach_all() { local i; for i in $GW_IFACES; do ours_attach $i 2>/dev/null; done; }
kernel_attach_all() {
	local i
	for i in $GW_IFACES; do ip -n $GWNS link set dev $i xdp off; done
	in_ns $GWNS sysctl -qw net.ipv4.ip_forward=1
}
use_path() { if [ "$1" = ours ]; then ours_attach_all; else kernel_attach_all; fi; }

gateway_up() { # gateway_up CONFIG-FILE
	gw down -n $GATEWAY >/dev/null 2>&1
	gw up -c "$1" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; return 1; }
}

# ---- senders and meters --------------------------------------------------------------------
SPOKE1=(--dev eth0 --src-mac 02:00:00:00:11:04 --dst-mac 02:00:00:00:11:01)
INTERNET=(--dev eth0 --src-mac 02:00:00:00:99:02 --dst-mac 02:00:00:00:99:01)
HUB=(--dev eth0 --src-mac 02:00:00:00:10:04 --dst-mac 02:00:00:00:10:01)
send_from() { local ns=$1; shift; in_ns $PREFIX-$ns "$VXBENCH" send --cpu "$CPU" "$@"; }
sink_count() { "$VXBENCH" count --pin "$PINS/$1"; }
cpu_ticks() { awk -v c="cpu$CPU" '$1 == c { print $4, $8 }' /proc/stat; } # system softirq
prog_stat() { "$VXBENCH" stat --prog "$GW_PINS/xdp_$(ifindex "$1")" | awk '{ print $2, $4 }'; }

# Each run of new flows gets source addresses of its own (10.11.NET.x), so no run meets a
# flow, a conntrack entry or a NAT mapping an earlier run left behind.
NEXT_NET=10
fresh_source() { # sets SRC
	if [ "$1" = internet ]; then SRC=198.51.100.2; return; fi
	NEXT_NET=$((NEXT_NET + 1))
	SRC=10.11.$NEXT_NET.1
}

# measure SINK SENDER-NS SEND-ARGS...: one run; prints "pps cpu_ns softirq_ns delivered".
# cpu_ns: the sending thread's CPU time (the veths' NAPI, so the gateway's and the
# receivers' work, runs in its softirqs) plus what ksoftirqd on that core took over,
# per delivered packet. softirq_ns: the core's softirq time from /proc/stat (tick
# sampled, other tenants included). SINK "-": the packets end in the gateway (ESP
# punt), delivered = sent.
KSOFTIRQD=$(pgrep -x "ksoftirqd/$CPU" | head -1)
ksoftirqd_ns() { awk '{ print $1 }' "/proc/$KSOFTIRQD/schedstat" 2>/dev/null || echo 0; }
measure() {
	local sink=$1 ns=$2 before=0 after sent secs cpu t0 t1 k0 k1
	shift 2
	[ "$sink" != - ] && before=$(sink_count "$sink")
	t0=$(cpu_ticks)
	k0=$(ksoftirqd_ns)
	read -r _ sent _ secs _ _ _ cpu < <(send_from "$ns" "$@") || return 1
	k1=$(ksoftirqd_ns)
	t1=$(cpu_ticks)
	if [ "$sink" != - ]; then after=$(sink_count "$sink"); else after=$sent; fi
	awk -v t0="$t0" -v t1="$t1" -v n=$((after - before)) -v s="$secs" -v hz="$CLK_TCK" \
	    -v cpu="$cpu" -v k=$((k1 - k0)) 'BEGIN {
		split(t0, a, " "); split(t1, b, " ")
		if (n <= 0) { print "0 0 0 0"; exit }
		si = (b[2] - a[2]) / hz
		printf "%.0f %.1f %.1f %d\n", n / s, (cpu + k / 1e9) * 1e9 / n, si * 1e9 / n, n
	}'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "" }'; }

# ---- results -------------------------------------------------------------------------------
CSV=$OUT/results.csv
echo "scenario,path,rx_pps,cpu_ns_per_packet,softirq_ns_per_packet,gateway_ns_per_packet,bpf_ns_per_packet,testrun_ns_per_packet,delivered,note" >"$CSV"
BASELINE_NS=0

# record SCENARIO PATH PPS CPU_NS SOFTIRQ_NS BPF_NS TESTRUN_NS DELIVERED NOTE
record() {
	local gwns
	gwns=$(awk -v c="$4" -v b="$BASELINE_NS" 'BEGIN { if (c == "") print ""; else printf "%.1f", c - b }')
	echo "$1,$2,$3,$4,$5,$gwns,$6,$7,$8,$9" >>"$CSV"
}
not_built() { # not_built SCENARIO WHY: our row says so; no figures are invented
	echo "$1,ours,,,,,,,,n/a: feature not built ($2)" >>"$CSV"
}

# pair SCENARIO KIND INGRESS SINK SENDER-NS DST-ARGS...: REPS runs of each path,
# alternating, medians recorded. KIND "first": every packet opens a new flow; KIND
# "established": one flow, opened (and for NSG rows answered once, so conntrack calls it
# established) before the measured run. OURS=0 measures the kernel only.
pair() {
	local scenario=$1 kind=$2 ingress=$3 sink=$4 ns=$5
	shift 5
	local path rep src args r
	for rep in $(seq "$REPS"); do
		for path in kernel ours; do
			[ "$path" = ours ] && [ "${OURS:-1}" = 0 ] && continue
			use_path $path "$ingress"
			fresh_source "$ns"
			src=$SRC
			if [ "$kind" = first ]; then
				state_reset $path
				args=(--src "$src" --flows "$NEW_FLOWS" --count "$NEW_FLOWS" --seconds "$RUN_SECONDS")
			else
				args=(--src "$src" --seconds "$RUN_SECONDS")
				prime "$ns" "$src" "$@"
			fi
			r=$(measure "$sink" "$ns" "${!ns_args}" "$@" "${args[@]}") || r="0 0 0 0"
			echo "$path $r" >>"$WORK/$scenario.runs"
		done
	done
	for path in kernel ours; do
		[ "$path" = ours ] && [ "${OURS:-1}" = 0 ] && continue
		local pps cpu si n bpf="" testrun=""
		pps=$(awk -v p=$path '$1 == p { print $2 }' "$WORK/$scenario.runs" | median)
		cpu=$(awk -v p=$path '$1 == p { print $3 }' "$WORK/$scenario.runs" | median)
		si=$(awk -v p=$path '$1 == p { print $4 }' "$WORK/$scenario.runs" | median)
		n=$(awk -v p=$path '$1 == p { s += $5 } END { print s + 0 }' "$WORK/$scenario.runs")
		if [ "$path" = ours ]; then
			fresh_source "$ns"
			bpf=$(bpf_cost "$SRC" "$kind" "$ingress" "$ns" "$@")
			fresh_source "$ns"
			if [ "${REWRITES:-0}" = 1 ]; then
				testrun="" # repeats run on one buffer: after the first, another frame
			elif [ "$kind" = established ]; then
				testrun=$(testrun_cost "$SRC" "$ingress" "$ns" "$@")
			else
				testrun=$(first_packet_cost "$SRC" "$ingress" "$@")
			fi
		fi
		record "$scenario" $path "$pps" "$cpu" "$si" "$bpf" "$testrun" "$n" "${NOTE:-}"
		log "  $(elapsed) $scenario $path: $pps pps, $cpu ns/packet on the core, bpf ${bpf:-n/a} ns, test_run ${testrun:-n/a} ns"
	done
}

# Runs of new flows start from empty state: the kernel's conntrack table (262144 entries
# here) and the NAT's ports (64512 per VIP and destination) would fill up over the
# runs; RESET_OURS=1 brings the gateway up afresh too (its SNAT mappings live minutes).
state_reset() {
	if [ "$1" = kernel ]; then
		ip netns exec $GWNS conntrack -F >/dev/null 2>&1
	elif [ "${RESET_OURS:-0}" = 1 ]; then
		gateway_up "$CONFIG" && ours_attach_all
	fi
	return 0
}

# prime NS SRC DST-ARGS...: the flow's first packet, then for the hub one reply.
prime() {
	local ns=$1 src=$2
	shift 2
	send_from "$ns" "${!ns_args}" "$@" --src "$src" --count 1 >/dev/null
	[ "$ns" = spoke1 ] && [ "$(arg_value --dst "$@")" = 10.10.1.4 ] &&
		send_from hub "${HUB[@]}" --src 10.10.1.4 --dst "$src" --sport "$(arg_value --dport "$@")" \
			--dport "$(arg_value --sport "$@" || echo 1024)" --count 1 >/dev/null
	return 0
}
arg_value() { # arg_value OPTION ARGS...: the value after OPTION
	local want=$1
	shift
	while [ $# -gt 1 ]; do [ "$1" = "$want" ] && { echo "$2"; return 0; }; shift; done
	return 1
}

# bpf_cost SRC KIND INGRESS NS DST-ARGS...: the kernel's run-time statistics of our
# program (run_time_ns / run_cnt) over a run of its own, with kernel.bpf_stats_enabled=1.
bpf_cost() {
	local src=$1 kind=$2 ingress=$3 ns=$4 c0 c1 args rep
	shift 4
	if [ "$kind" = first ]; then
		state_reset ours >&2
		args=(--src "$src" --flows "$NEW_FLOWS" --count "$NEW_FLOWS" --seconds "$RUN_SECONDS")
	else
		prime "$ns" "$src" "$@"
		args=(--src "$src" --count 500000 --seconds "$RUN_SECONDS")
	fi
	ours_attach_all
	# Three runs of an established flow, their median: one run can meet a busy moment of
	# a shared machine. New flows run once: a second run would find them.
	local runs=3
	[ "$kind" = first ] && runs=1
	for rep in $(seq $runs); do
		sysctl -qw kernel.bpf_stats_enabled=1
		c0=$(prog_stat "$ingress")
		send_from "$ns" "${!ns_args}" "$@" "${args[@]}" >/dev/null
		c1=$(prog_stat "$ingress")
		sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
		awk -v a="$c0" -v b="$c1" 'BEGIN { split(a, x, " "); split(b, y, " ")
			if (y[1] > x[1]) printf "%.1f\n", (y[2] - x[2]) / (y[1] - x[1]) }'
	done | median
}

# testrun_cost SRC INGRESS NS DST-ARGS...: BPF_PROG_TEST_RUN with repeat of the flow's
# frame through our program, in the gateway's namespace (the pure program cost).
testrun_cost() {
	local src=$1 ingress=$2 ns=$3
	shift 3
	prime "$ns" "$src" "$@"
	local -n mac=${ns_args%%[*}
	for _ in 1 2 3; do
		in_ns $GWNS "$VXBENCH" run --prog "$GW_PINS/xdp_$(ifindex "$ingress")" --dev "$ingress" \
			--src-mac "${mac[3]}" --dst-mac "${mac[5]}" --src "$src" --cpu "$CPU" \
			--repeat 600000 "$@" | awk '{ print $2 }'
	done | median
}

# address_key {u32 family; u8 addr[16]} of an IPv4 address, as bpftool hex bytes.
address_key_hex() {
	printf '02 00 00 00 '
	printf '%02x ' ${1//./ }
	printf '00 %.0s' $(seq 12)
}

# One IPsec connection: the internet host (198.51.100.2) is the peer of the uplink's
# endpoint (198.51.100.1), tunnel 0, no xfrm interface.
tunnel_peer_fill() {
	bpftool map update pinned "$GW_PINS/tunnel_endpoints" key hex $(address_key_hex 198.51.100.1) \
		value hex 01 00 00 00 &&
	bpftool map update pinned "$GW_PINS/tunnel_peers" key hex $(address_key_hex 198.51.100.2) \
		value hex 00 00 00 00 00 00 00 00 $(address_key_hex 198.51.100.1)
}

# profile_program SCENARIO INGRESS FRAME-ARGS...: where our program's time goes, by
# kernel symbol (perf over BPF_PROG_TEST_RUN of one frame), into profile.txt.
profile_program() {
	local scenario=$1 ingress=$2
	shift 2
	command -v perf >/dev/null || { echo "$scenario: perf not installed" >"$OUT/profile.txt"; return 0; }
	perf record -q -o "$WORK/perf.data" -- nsenter --net=/run/netns/$GWNS "$VXBENCH" run \
		--prog "$GW_PINS/xdp_$(ifindex "$ingress")" --dev "$ingress" --src-mac "${SPOKE1[3]}" \
		--dst-mac "${SPOKE1[5]}" --cpu "$CPU" --repeat 2000000 "$@" >/dev/null 2>&1 || return 0
	{
		echo "where the time of BPF_PROG_TEST_RUN of one $scenario frame goes (perf, share of samples;"
		echo "the rest is the syscall around each batch of 60 repetitions):"
		perf report -i "$WORK/perf.data" --no-children --sort symbol -q -g none --percent-limit 2 2>/dev/null |
			awk 'NF >= 3 { printf "  %7s  %s\n", $1, $3 }'
	} >"$OUT/profile.txt"
}

# first_packet_cost SRC INGRESS DST-ARGS...: `vnet-xdp verify --repeat` runs the frame
# through a dry-run instance of the program (it writes no flow, so every run is a first
# packet). Every repetition starts from the original frame, so each one is the whole
# first packet: NSG classification, FIB lookup, rewrite.
first_packet_cost() {
	local src=$1 ingress=$2 dst dport
	shift 2
	gw help 2>&1 | grep -q 'verify.*--repeat' || return 0
	dst=$(arg_value --dst "$@") dport=$(arg_value --dport "$@" || echo 9)
	gw verify -n $GATEWAY --in "$ingress" --src "$src:1024" --dst "$dst:$dport" --proto udp \
		--repeat 100000 -j 2>/dev/null | jq -r '.nsPerRun // empty'
}

# ---- the tunnel throughput, in a QEMU guest beside the namespace measurements -------------
IPSEC_DIR=$WORK/ipsec
IPSEC_PID=
IPSEC_NA=
IPSEC_OVERLAP=${BENCH_IPSEC_OVERLAP:-0}
IPSEC_BUDGET=${BENCH_IPSEC_BUDGET:-$([ "$IPSEC_OVERLAP" = 1 ] && echo 240 || echo 420)}
descendants() { local p; for p in $(pgrep -P "$1"); do echo "$p"; descendants "$p"; done; }

# ipsec_start: the guest kernel first (downloaded once into build/vm/, in the foreground
# so that no download runs under the measurements), then the guest in the background;
# beside the measurements (overlap) pinned to the core the sender does not use, niced,
# holding before its iperf3 runs.
ipsec_start() {
	[ "${BENCH_IPSEC:-1}" != 0 ] && [ -x scripts/bench/ipsec.sh ] || return 0
	mkdir -p "$IPSEC_DIR"
	local t0=$SECONDS other
	if ! scripts/vm/prepare.sh >/dev/null 2>"$IPSEC_DIR/prepare.log"; then
		IPSEC_NA="the guest kernel cannot be prepared ($(tail -1 "$IPSEC_DIR/prepare.log"))"
		log "bench: $IPSEC_NA"
		return 0
	fi
	[ "$IPSEC_OVERLAP" = 1 ] &&
		other=$(awk -v c="$CPU" '$1 ~ /^cpu[0-9]+$/ && $1 != "cpu" c { print substr($1, 4); exit }' /proc/stat)
	VM_TIMEOUT=1800 nice -n $((IPSEC_OVERLAP * 10)) ${other:+taskset -c "$other"} scripts/bench/ipsec.sh -w "$IPSEC_DIR" \
		"${BENCH_IPSEC_SECONDS:-3}" "${BENCH_IPSEC_REPS:-5}" >"$IPSEC_DIR/console" 2>&1 &
	IPSEC_PID=$!
	log "bench: guest kernel ready in $((SECONDS - t0)) s; QEMU guest for the tunnel throughput booting${other:+ on CPU $other}"
}

# ipsec_release: the guest gets both cores and normal priority for its measurements.
ipsec_release() {
	local pid task all
	all=0-$(($(nproc) - 1))
	for pid in $IPSEC_PID $(descendants "$IPSEC_PID"); do
		taskset -a -p -c "$all" "$pid" >/dev/null 2>&1
		for task in /proc/"$pid"/task/*; do renice -n 0 -p "${task##*/}" >/dev/null 2>&1; done
	done
}

ipsec_stop() { # the guest's processes, by id (timeout passes the signal on to qemu)
	[ -n "$IPSEC_PID" ] || return 0
	local pids
	pids="$(descendants "$IPSEC_PID") $IPSEC_PID"
	kill $pids 2>/dev/null
	wait "$IPSEC_PID" 2>/dev/null
	IPSEC_PID=
}

# ipsec_finish: go, wait within the budget, the figures (or one line why not) into
# results.txt.
ipsec_finish() {
	[ "${BENCH_IPSEC:-1}" != 0 ] && [ -x scripts/bench/ipsec.sh ] || return 0
	local t0=$SECONDS rc=0 ready="still setting up" why
	{ echo; echo "tunnel throughput through xfrm (scripts/bench/ipsec.sh, QEMU guest):"; } >>"$OUT/results.txt"
	if [ -z "$IPSEC_PID" ]; then
		echo "  n/a: $IPSEC_NA" | tee -a "$OUT/results.txt"
		return 0
	fi
	[ -e "$IPSEC_DIR/ready" ] && ready="ready (tunnel up after $(cat "$IPSEC_DIR/ready") s of guest uptime)"
	log "bench: tunnel throughput: the guest is $ready; measuring (at most $IPSEC_BUDGET s)"
	ipsec_release
	touch "$IPSEC_DIR/go"
	while kill -0 "$IPSEC_PID" 2>/dev/null && [ $((SECONDS - t0)) -lt "$IPSEC_BUDGET" ]; do sleep 1; done
	if kill -0 "$IPSEC_PID" 2>/dev/null; then
		ipsec_stop
		why="did not finish within $IPSEC_BUDGET s after the namespace measurements (the guest was $ready when they ended)"
	else
		wait "$IPSEC_PID"
		rc=$?
		IPSEC_PID=
	fi
	if [ -z "${why:-}" ] && [ "$rc" = 0 ] && [ -s "$IPSEC_DIR/result" ]; then
		cat "$IPSEC_DIR/result"
		if [ "$IPSEC_OVERLAP" = 1 ]; then
			echo "  host: the guest booted with the namespace measurements and was $ready when they ended;" \
				"done $((SECONDS - t0)) s after them"
		else
			echo "  host: the guest ran after the namespace measurements, $((SECONDS - t0)) s in all"
		fi
	else
		# the guest's own line: its failure, a SKIP, or the harness's timeout
		why=${why:-$(cat "$IPSEC_DIR/failed" 2>/dev/null || grep -hE '^(SKIP|ipsec bench: |vm: timed out|vm: the guest)' "$IPSEC_DIR/console" | tail -1)}
		echo "  n/a: ${why:-scripts/bench/ipsec.sh exited $rc}; run scripts/bench/ipsec.sh alone (console: $OUT/ipsec-console.log)"
		cp "$IPSEC_DIR/console" "$OUT/ipsec-console.log" 2>/dev/null
	fi | tee -a "$OUT/results.txt"
}

# ---- the run -------------------------------------------------------------------------------
[ "$IPSEC_OVERLAP" = 1 ] && ipsec_start
log "bench: topology $PREFIX-*, gateway $GATEWAY, sender and receivers on CPU $CPU, $REPS runs per path"
topology_down $PREFIX
topology_up $PREFIX
# Static neighbours: the receivers' sinks drop ARP, and both paths should find the MACs.
ip -n $GWNS neigh replace 10.10.1.4 lladdr 02:00:00:00:10:04 dev to-hub nud permanent
ip -n $GWNS neigh replace 198.51.100.2 lladdr 02:00:00:00:99:02 dev uplink0 nud permanent
# The kernel path receives the sender's XDP frames only with NAPI on the ingress veths.
for i in $GW_IFACES; do ip netns exec $GWNS ethtool -K $i gro on >/dev/null; done
in_ns $PREFIX-hub "$VXBENCH" sink --dev eth0 --pin "$PINS/hub" || exit 1
in_ns $PREFIX-internet "$VXBENCH" sink --dev eth0 --pin "$PINS/internet" || exit 1

# The sender alone: its frames die in a sink on the gateway's ingress. What the paths
# cost beyond this is the gateway's (and the receiver's) work.
in_ns $GWNS "$VXBENCH" sink --dev to-spoke1 --pin "$PINS/ingress" || exit 1
ns_args="SPOKE1[@]"
for rep in $(seq "$REPS"); do
	measure ingress spoke1 "${SPOKE1[@]}" --src 10.11.1.4 --dst 10.10.1.4 --seconds "$RUN_SECONDS"
done | awk '{ print $2 }' | median >"$WORK/baseline"
BASELINE_NS=$(cat "$WORK/baseline")
record sender-alone - "" "$BASELINE_NS" "" "" "" "" "sender and sink only; subtracted from gateway_ns"
ip -n $GWNS link set dev to-spoke1 xdp off
log "  sender alone: $BASELINE_NS ns/packet on the core"

wanted() { [[ $SCENARIOS == *" $1 "* ]]; }

# Peering: plain forwarding spoke1 -> hub; the kernel path is ip_forward with no rules.
wanted peering && {
bench_config $GATEWAY >"$WORK/peering.json"
CONFIG=$WORK/peering.json
gateway_up "$CONFIG" || exit 1
ip netns exec $GWNS nft -f - < <(nft_plain)
pair peering established to-spoke1 hub spoke1 --dst 10.10.1.4 --dport 9
profile_program peering to-spoke1 --src 10.11.1.4 --dst 10.10.1.4 --dport 9
}

# Checksums: the peering flow's frames at 60 and 1500 bytes, as a sender with transmit
# checksum offload off (full checksum) and on (partial: the gateway completes it before
# the redirect; the kernel path forwards it as it is) sends them.
wanted checksum && {
bench_config $GATEWAY >"$WORK/peering.json"
CONFIG=$WORK/peering.json
gateway_up "$CONFIG" || exit 1
ip netns exec $GWNS nft -f - < <(nft_plain)
# A completed checksum is written into the frame: test_run's repeats would judge a full one.
for size in 60 1500; do
	REWRITES=0 pair "checksum-full-$size" established to-spoke1 hub spoke1 --dst 10.10.1.4 \
		--dport 9 --size $size --checksum full
	REWRITES=1 pair "checksum-partial-$size" established to-spoke1 hub spoke1 --dst 10.10.1.4 \
		--dport 9 --size $size --checksum partial
done
}

# NSG: N rules on the hub's subnet; the kernel path walks the same rules in nftables.
wanted nsg && for n in $RULE_COUNTS; do
	bench_config $GATEWAY "$n" >"$WORK/nsg-$n.json"
	ip netns exec $GWNS nft -f - < <(nft_nsg "$n") || exit 1
	OURS=1
	if [ ! -f bpf/nsg.h ]; then
		OURS=0
		not_built "nsg-$n-first" "no bpf/nsg.h"
		not_built "nsg-$n-established" "no bpf/nsg.h"
	else
		CONFIG=$WORK/nsg-$n.json
		gateway_up "$CONFIG" || exit 1
	fi
	ip netns exec $GWNS conntrack -F >/dev/null 2>&1
	OURS=$OURS pair "nsg-$n-first" first to-spoke1 hub spoke1 --dst 10.10.1.4 --dport 9
	OURS=$OURS pair "nsg-$n-established" established to-spoke1 hub spoke1 --dst 10.10.1.4 --dport 9
done

# SNAT: spoke1 -> the internet host, translated to spoke1's VIP.
wanted snat && {
bench_config $GATEWAY >"$WORK/peering.json"
CONFIG=$WORK/peering.json
gateway_up "$CONFIG" || exit 1
ip netns exec $GWNS nft -f - < <(nft_snat 203.0.113.11) || exit 1
ip netns exec $GWNS conntrack -F >/dev/null 2>&1
OURS=1
if [ ! -f bpf/snat.h ]; then
	OURS=0
	not_built snat-new "no bpf/snat.h"
	not_built snat-established "no bpf/snat.h"
fi
RESET_OURS=1 OURS=$OURS pair snat-new first to-spoke1 internet spoke1 --dst 198.51.100.2 --dport 9
# SNAT rewrites the frame in place: test_run's repeats would judge the translated one.
REWRITES=1 OURS=$OURS pair snat-established established to-spoke1 internet spoke1 --dst 198.51.100.2 --dport 9
}

# ESP punt: ESP from the internet host to the gateway's uplink address, handed to the
# kernel (which has no ESP here and drops it after the IP layer: the same for both).
# With the tunnel stage built, the internet host is a connection's peer: its ESP is
# classified and counted per tunnel and SPI on the way. The host kernel has no xfrm
# interfaces, so the tunnel maps are filled here as `up` fills them for a connection.
wanted esp && {
bench_config $GATEWAY >"$WORK/peering.json"
CONFIG=$WORK/peering.json
gateway_up "$CONFIG" || exit 1
ip netns exec $GWNS nft -f - < <(nft_plain)
if [ -e "$GW_PINS/tunnel_peers" ]; then
	tunnel_peer_fill || exit 1
	ESP_NOTE="classified per tunnel"
else
	ESP_NOTE="no bpf/tunnel.h: passed as traffic to the gateway's own address"
fi
ns_args="INTERNET[@]"
OURS=1 NOTE=$ESP_NOTE pair esp-punt established uplink0 - internet --dst 198.51.100.1 --proto esp
if [ -e "$GW_PINS/tunnel_peers" ]; then
	esp=$(gw stats -n $GATEWAY -j | jq '(.datapath[] | select(.action == "pass_esp") | .packets) // 0')
	[ "$esp" -gt 0 ] || log "bench: ESP was not classified per tunnel (pass_esp $esp)"
fi
ns_args="SPOKE1[@]"
}

# Service chaining: spoke1 -> the NVA in the hub -> spoke2, through the gateway twice (a
# UDR to the VirtualAppliance, then forwarded traffic over spoke2's peering); the kernel
# path does the same with policy routing. The NVA is the hub VM's kernel forwarding
# (its sink is taken off), the same work in both paths; spoke2's VM counts.
wanted chain && {
chain_config $GATEWAY >"$WORK/chain.json"
CONFIG=$WORK/chain.json
gateway_up "$CONFIG" || exit 1
ip netns exec $GWNS nft -f - < <(nft_plain)
chain_policy_routing $GWNS || exit 1
ip -n $GWNS neigh replace 10.12.1.4 lladdr 02:00:00:00:12:04 dev to-spoke2 nud permanent
ip -n $PREFIX-hub link set dev eth0 xdp off
ip -n $PREFIX-hub neigh replace 10.10.0.1 lladdr 02:00:00:00:10:01 dev eth0 nud permanent
ip netns exec $PREFIX-hub sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
	net.ipv4.conf.eth0.send_redirects=0
in_ns $PREFIX-spoke2 "$VXBENCH" sink --dev eth0 --pin "$PINS/spoke2" || exit 1
NOTE="BPF and test_run: the first leg's program (spoke1's ingress)" \
	pair service-chain established to-spoke1 spoke2 spoke1 --dst 10.12.1.4 --dport 9
ip -n $GWNS rule del pref 100
}

# Monitor: what a listening `vnet-xdp monitor` costs the datapath. The established path
# writes no event (its packets are neither drops nor new flows), so a listener should cost
# it nothing; a drop writes one, under the per-CPU bound (monitor_budget), so a flood of
# drops with a listener costs an event each up to the bound and a counter past it. Rows:
# the established peering flow and a flood of spoofed-source drops from spoke1, each with
# no listener, a listener, and a listener whose filter (--dst) shows nothing. BPF and
# test_run figures only (the same frames, the same path): alternated, medians of REPS.
MONITOR_PID=
# monitor_start ARGS...: a monitor in the background, its own pid in MONITOR_PID (nsenter
# execs it: no shell in between that a kill would stop instead)
monitor_start() {
	nsenter --net=/run/netns/$GWNS "$VNET_XDP" monitor -n $GATEWAY -j "$@" >"$WORK/monitor.out" \
		2>"$WORK/monitor.err" &
	MONITOR_PID=$!
}
monitor_listen() { # monitor_listen none|listening|filtered
	MONITOR_PID=
	case $1 in
	none) return 0 ;;
	listening) monitor_start ;;
	filtered) monitor_start --dst 192.0.2.1 ;;
	esac
	local i
	for i in $(seq 50); do # until the datapath knows it listens
		bpftool -j map dump pinned "$GW_PINS/monitor_control" 2>/dev/null |
			jq -e '.[0].formatted.value.listening_until_ns > 0' >/dev/null && return 0
		sleep 0.1
	done
	log "bench: the monitor never said it listens"
}
monitor_stop() { [ -n "$MONITOR_PID" ] && kill "$MONITOR_PID" 2>/dev/null && wait "$MONITOR_PID" 2>/dev/null; MONITOR_PID=; }
# monitor_budget_sum FIELD...: monitor_budget's FIELDs summed over the CPUs
monitor_budget_sum() {
	bpftool -j map dump pinned "$GW_PINS/monitor_budget" |
		jq --args '[.[0].formatted.values[].value as $v | $ARGS.positional[] | $v[.]] | add // 0' "$@"
}

wanted monitor && {
bench_config $GATEWAY >"$WORK/peering.json"
CONFIG=$WORK/peering.json
gateway_up "$CONFIG" || exit 1
ip netns exec $GWNS nft -f - < <(nft_plain)
ours_attach_all
: >"$WORK/monitor.runs"
for rep in $(seq "$REPS"); do
	for mode in none listening filtered; do
		monitor_listen $mode
		fresh_source spoke1
		b=$(bpf_cost "$SRC" established to-spoke1 spoke1 --dst 10.10.1.4 --dport 9)
		t=$(testrun_cost "$SRC" to-spoke1 spoke1 --dst 10.10.1.4 --dport 9)
		echo "established $mode ${b:-0} ${t:-0}" >>"$WORK/monitor.runs"
		l0=$(monitor_budget_sum rate_limited ring_full)
		# 10.99.0.0/16 is no source of spoke1's: every frame is a drop (spoofed_source)
		b=$(bpf_cost 10.99.$rep.1 established to-spoke1 spoke1 --dst 10.10.1.4 --dport 9)
		l1=$(monitor_budget_sum rate_limited ring_full)
		t=$(testrun_cost 10.99.$rep.2 to-spoke1 spoke1 --dst 10.10.1.4 --dport 9)
		monitor_stop
		echo "drop $mode ${b:-0} ${t:-0} $((l1 - l0))" >>"$WORK/monitor.runs"
	done
done
for kind in established drop; do
	for mode in none listening filtered; do
		b=$(awk -v k=$kind -v m=$mode '$1 == k && $2 == m { print $3 }' "$WORK/monitor.runs" | median)
		t=$(awk -v k=$kind -v m=$mode '$1 == k && $2 == m { print $4 }' "$WORK/monitor.runs" | median)
		note="monitor: $mode"
		[ $kind = drop ] && [ $mode != none ] &&
			note="$note; events left out (the bound or a full ring) in the BPF run: $(awk -v m=$mode '$1 == "drop" && $2 == m { print $5 }' "$WORK/monitor.runs" | median) events"
		record "monitor-$kind-$mode" ours "" "" "" "$b" "$t" "" "$note"
		log "  $(elapsed) monitor $kind, $mode: bpf ${b:-n/a} ns, test_run ${t:-n/a} ns"
	done
done
# The bound holds: over one second of drops with a listener at --rate 1000, at most
# 1000 events per CPU (and a window's more where the run straddles two).
monitor_start --rate 1000
sleep 1.5
l0=$(monitor_budget_sum rate_limited)
e0=$(wc -l <"$WORK/monitor.out")
send_from spoke1 "${SPOKE1[@]}" --src 10.99.9.1 --dst 10.10.1.4 --dport 9 --seconds 1 >/dev/null
sleep 1.2
e1=$(wc -l <"$WORK/monitor.out")
l1=$(monitor_budget_sum rate_limited)
monitor_stop
echo "monitor-bound,ours,,,,,,,$((e1 - e0)),$((l1 - l0)) left out by the bound" >>"$CSV"
log "  $(elapsed) monitor bound: $((e1 - e0)) events of 1 s of drops at --rate 1000 per CPU, $((l1 - l0)) left out"
}

# Scrape time with a million flows and SNAT entries: its PASS/FAIL line joins the targets.
wanted scrape && {
SCRAPE_TARGET_FILE=$PWD/$OUT/scrape-target.txt scripts/bench/scrape.sh >"$WORK/scrape.log" 2>&1 ||
	{ log "bench: scripts/bench/scrape.sh failed"; tail -5 "$WORK/scrape.log" >&2; }
grep '^scrape /metrics' "$WORK/scrape.log"
}

ELAPSED=$(($(date +%s) - STARTED))
scripts/bench/report.sh "$CSV" "$OUT" "$ELAPSED"

[ "$IPSEC_OVERLAP" = 1 ] || ipsec_start
ipsec_finish
echo "make bench: $(($(date +%s) - STARTED)) s in all (namespace measurements and table $ELAPSED s)" |
	tee -a "$OUT/results.txt"

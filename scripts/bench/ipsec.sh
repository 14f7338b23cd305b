#!/usr/bin/env bash
# Tunnel throughput: iperf3 TCP from a VM in vnet-a to a VM in vnet-b across a Vnet2Vnet
# connection (two vnet-xdp gateways, each with its own charon, real ESP with AES-GCM) in
# the QEMU guest, with our programs attached (XDP on the gateways' interfaces, tc on
# the xfrm interfaces) and with them detached (the kernel alone forwards through the
# same namespaces, xfrm interfaces and SAs). The runs alternate between the two paths
# (with, without, without, with, with, without...); prints the medians and their ratio.
#
#   scripts/bench/ipsec.sh [-w DIR] [SECONDS [REPS]]     (default: 3 s runs, 3 per path)
#
#   -w DIR  DIR is the guest's run directory on the host (scripts/vm/run.sh -d): once the
#           tunnel is up the guest writes DIR/ready and measures only when DIR/go
#           appears, so `make bench` boots it while the namespace measurements run.
#           The result block is written to DIR/result too.
#
# Exit codes: 0 with the result block; 77 with one SKIP line when qemu cannot run here;
# anything else with one "ipsec bench: ..." line saying what failed.
# Under TCG the absolute figures measure the emulator; the ratio is what to read.
SELF=$(realpath "$0")
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh

WAIT_DIR=
if [ "${1:-}" = -w ]; then
	WAIT_DIR=$2
	shift 2
fi
SECONDS_PER_RUN=${1:-3}
REPS=${2:-3}
[[ $SECONDS_PER_RUN =~ ^[1-9][0-9]*$ && $REPS =~ ^[1-9][0-9]*$ ]] ||
	{ echo "ipsec bench: SECONDS and REPS are whole numbers from 1 (iperf3 -t 0 never ends)"; exit 2; }

if ! vm_in_guest; then
	if [ -n "$WAIT_DIR" ]; then
		# It may wait for the namespace measurements: the caller bounds it.
		exec scripts/vm/run.sh -t "${VM_TIMEOUT:-1800}" -d "$WAIT_DIR" \
			"$SELF" -w "$WAIT_DIR" "$SECONDS_PER_RUN" "$REPS"
	fi
	export VM_TIMEOUT=${VM_TIMEOUT:-600}
	exec scripts/vm/run.sh "$SELF" "$SECONDS_PER_RUN" "$REPS"
fi
. tests/vm/ipsec_helpers.bash

P=vxbipsec
GW_A=$P-gwa GW_B=$P-gwb VM_A=$P-vma VM_B=$P-vmb
DIR=$(mktemp -d /tmp/$P.XXXXXX)
PINS=/sys/fs/bpf/$P
KEY="bench-psk-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

die() {
	echo "ipsec bench: $*"
	[ -n "$WAIT_DIR" ] && echo "n/a: $*" >/vmio/failed
	exit 1
}

# Where the guest's time goes: each phase's length, without a process per reading
# (every process start costs a good part of a second under emulation).
MARK=${EPOCHREALTIME/./}
PHASES=()
phase_done() {
	local t=${EPOCHREALTIME/./}
	PHASES+=("$1 $(((t - MARK) / 1000000)).$(((t - MARK) / 100000 % 10)) s")
	MARK=$t
}

vm_modules_load || die "cannot load the ESP modules"
phase_done modules
vm_ns_add $GW_A $GW_B $VM_A $VM_B || die "cannot create the namespaces"
veth_link $GW_A uplink0 $GW_B uplink0
ip -n $GW_A addr add 192.0.2.1/24 dev uplink0
ip -n $GW_B addr add 192.0.2.2/24 dev uplink0
vm_host $VM_A $GW_A to-a 10.1.1.4/16 10.1.0.1
vm_host $VM_B $GW_B to-b 10.2.1.4/16 10.2.0.1
(umask 077
 v2v_config gwa vng-a 192.0.2.1 to-a vnet-a >"$DIR/a.json"
 v2v_config gwb vng-b 192.0.2.2 to-b vnet-b >"$DIR/b.json")
phase_done namespaces

# Both charons and both gateways come up side by side: `up` verifies the whole object
# once per interface, most of the setup's time under emulation.
CHARON_PLUGINS=$CHARON_PLUGINS_IKE
charon_start $GW_A & a=$!
charon_start $GW_B & b=$!
wait $a || die "charon of $GW_A did not start"
wait $b || die "charon of $GW_B did not start"
phase_done charons
vx $GW_A up -c "$DIR/a.json" >"$DIR/up-a.log" 2>&1 & a=$!
vx $GW_B up -c "$DIR/b.json" >"$DIR/up-b.log" 2>&1 & b=$!
wait $a || die "up gwa: $(tail -1 "$DIR/up-a.log")"
wait $b || die "up gwb: $(tail -1 "$DIR/up-b.log")"
phase_done "gateways up"
wait_tunnel_up $GW_A gwa a-to-b 120 >"$DIR/tunnel.log" 2>&1 || die "tunnel a-to-b not up after 120 s"
phase_done "tunnel up"

ip netns exec $VM_B iperf3 -s -D -B 10.2.1.4 >/dev/null 2>&1 || die "iperf3 server did not start"
# A first short run, through our programs: the server listens, the path is warm.
for try in 1 2 3 4 5; do
	ip netns exec $VM_A iperf3 -c 10.2.1.4 -t 1 >/dev/null 2>&1 && break
	[ $try = 5 ] && die "iperf3 cannot reach 10.2.1.4 through the tunnel"
	sleep 0.5
done
phase_done warm-up

# ---- our programs on and off --------------------------------------------------------------
# What runs on each gateway interface now (our program, or libxdp's dispatcher around
# it) is pinned, so that detaching (xdp off, the tc filters deleted) and attaching
# again (the same programs, by pin) are a batch of netlink requests per namespace.
mkdir -p "$PINS"
attach_plan() { # attach_plan NS GATEWAY XFRM-IF IFACE...: writes NS.on and NS.off
	local ns=$1 gateway=$2 xfrm=$3 dev mode id ifindex dir
	shift 3
	: >"$DIR/$ns.on"
	: >"$DIR/$ns.off"
	: >"$DIR/$ns.tc-on"
	: >"$DIR/$ns.tc-off"
	for dev in "$@"; do
		read -r mode id < <(ip -n "$ns" -j link show dev "$dev" |
			jq -r '.[0].xdp | "\(.mode // 0) \(.prog.id // .attached[0].prog.id // 0)"')
		[ "$id" != 0 ] || die "no XDP program on $dev of $ns"
		case $mode in 1) mode=xdpdrv ;; 2) mode=xdpgeneric ;; *) die "XDP mode $mode on $dev of $ns" ;; esac
		bpftool prog pin id "$id" "$PINS/$ns-$dev" || die "cannot pin program $id"
		echo "link set dev $dev $mode off" >>"$DIR/$ns.off"
		echo "link set dev $dev $mode pinned $PINS/$ns-$dev" >>"$DIR/$ns.on"
	done
	ifindex=$(ip -n "$ns" -j link show dev "$xfrm" | jq '.[0].ifindex')
	for dir in in:ingress out:egress; do
		[ -e "/sys/fs/bpf/vnet-xdp/$gateway/tc_${dir%:*}_$ifindex" ] || die "no tc program pinned for $xfrm"
		echo "filter del dev $xfrm ${dir#*:}" >>"$DIR/$ns.tc-off"
		echo "filter add dev $xfrm ${dir#*:} protocol all prio 1 handle 1 bpf" \
			"object-pinned /sys/fs/bpf/vnet-xdp/$gateway/tc_${dir%:*}_$ifindex direct-action" >>"$DIR/$ns.tc-on"
	done
}
# use_path ours|kernel: every gateway interface runs our programs, or none.
use_path() {
	local ns suffix=on
	[ "$1" = kernel ] && suffix=off
	for ns in $GW_A $GW_B; do
		# nsenter, not `ip -n`: that one mounts a fresh /sys, without bpffs and its pins
		in_ns "$ns" ip -batch "$DIR/$ns.$suffix" || die "cannot switch $ns to the $1 path"
		in_ns "$ns" tc -batch "$DIR/$ns.tc-$suffix" || die "cannot switch $ns's tc to the $1 path"
	done
}
attach_plan $GW_A gwa "$(tunnel_interface gwa)" uplink0 to-a
attach_plan $GW_B gwb "$(tunnel_interface gwb)" uplink0 to-b

# iperf3_mbps: one TCP run (its first second, slow start, not counted); received Mbit/s.
# Bounded: a stalled tunnel ends the run without a figure instead of holding it.
iperf3_mbps() {
	ip netns exec $VM_A timeout $((SECONDS_PER_RUN * 3 + 30)) \
		iperf3 -c 10.2.1.4 -O 1 -t "$SECONDS_PER_RUN" -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e6'
}
tunnel_egress() { tunnel_field $GW_A gwa a-to-b egressPackets; }

read -r up _ </proc/uptime
echo "ipsec bench: ready after $up s of guest uptime ($(IFS=,; echo "${PHASES[*]}" | sed 's/,/, /g'))"
if [ -n "$WAIT_DIR" ]; then
	echo "$up" >/vmio/ready
	until [ -e /vmio/go ]; do sleep 1; done
	MARK=${EPOCHREALTIME/./}
fi

# Alternating runs: with, without, without, with, ...: one switch per two runs, and
# neither path always first after a switch. Our tc program's count of what entered the
# tunnel is read at each switch (a process start each): it must move with our programs
# and stay still without them, or the comparison is not what it claims.
path=ours
with=() without=() pairs=() counted=0 leaked=0
count_block() {
	local now
	now=$(tunnel_egress)
	[[ $now =~ ^[0-9]+$ ]] || die "cannot read the tunnel's counters of gwa"
	if [ $path = ours ]; then counted=$((counted + now - last)); else leaked=$((leaked + now - last)); fi
	last=$now
}
last=$(tunnel_egress)
[[ $last =~ ^[0-9]+$ ]] || die "cannot read the tunnel's counters of gwa"
for ((i = 0; i < 2 * REPS; i++)); do
	if ((i % 2 == 1)); then
		count_block
		if [ $path = ours ]; then path=kernel; else path=ours; fi
		use_path $path
	fi
	mbps=$(iperf3_mbps)
	[ -n "$mbps" ] && [ "$mbps" != null ] || die "iperf3 run $((i + 1)) ($path) gave no figure"
	echo "ipsec bench: run $((i + 1)) $path: $mbps Mbit/s"
	if [ $path = ours ]; then with+=("$mbps"); else without+=("$mbps"); fi
	# each run with its neighbour of the other path (1-2, 3-4, ...): a ratio that a change
	# of the host's load between the pairs does not move
	((i % 2 == 1)) && pairs+=("$(awk -v a="${with[-1]}" -v b="${without[-1]}" 'BEGIN { printf "%.3f", a / b }')")
done
count_block
phase_done measured

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
m_with=$(median "${with[@]}")
m_without=$(median "${without[@]}")
[ "$counted" -gt 0 ] || die "our programs counted nothing into the tunnel while attached"
[ "$leaked" = 0 ] || die "our programs counted $leaked packets while detached"

{
	printf 'ipsec tunnel, iperf3 TCP, %s runs of %s s per path alternating, medians; AES-GCM ESP under TCG\n' \
		"$REPS" "$SECONDS_PER_RUN"
	printf '  with vnet-xdp attached:   %8.1f Mbit/s (runs %s; %s packets counted into the tunnel)\n' \
		"$m_with" "$(printf '%.1f ' "${with[@]}" | sed 's/ $//')" "$counted"
	printf '  kernel alone:             %8.1f Mbit/s (runs %s)\n' \
		"$m_without" "$(printf '%.1f ' "${without[@]}" | sed 's/ $//')"
	awk -v a="$m_with" -v b="$m_without" 'BEGIN { if (b > 0) printf "  ratio with/without:       %8.3f", a / b }'
	printf ' (of the medians; run by run, neighbours paired: %s, median %s)\n' "${pairs[*]}" "$(median "${pairs[@]}")"
	printf '  guest: %s\n' "$(IFS=,; echo "${PHASES[*]}" | sed 's/,/, /g')"
} >"$DIR/result"
cat "$DIR/result"
[ -n "$WAIT_DIR" ] && cp "$DIR/result" /vmio/result
exit 0 # the guest is thrown away: charons, namespaces and all

#!/usr/bin/env bash
# End to end: `up` and `reload` end with one line saying what they did: every bound
# interface with the XDP mode it runs (the kernel's, as `ip link` shows it) and why one
# runs generic, the kernel memory the gateway's maps take (within rounding of the sum of
# their memlock as `bpftool map show` reports it) and the time taken. A bridge, which has
# no native XDP, is the interface that falls back to generic.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_up_report vxrep rep
e2e_topology "$WORK/gw.json"
ip -n $PREFIX-gw link add rep-br0 type bridge
ip -n $PREFIX-gw link set rep-br0 up
jq '.gateway.interfaces += [{"name": "rep-br0", "virtualNetwork": "hub"}]' \
	"$WORK/gw.json" >"$WORK/bridge.json"
IFACES="to-hub to-spoke1 to-spoke2 uplink0 rep-br0"

link_mode() { # IFACE: "native", "generic" or "none", as the kernel reports it
	case $(ip -n $PREFIX-gw -d link show "$1") in
	*xdpgeneric*) echo generic ;;
	*" xdp "* | *"prog/xdp"*) echo native ;;
	*) echo none ;;
	esac
}

# The memlock of every map pinned for the gateway, as bpftool reads it, in bytes.
maps_memlock() {
	local path sum=0 bytes
	for path in /sys/fs/bpf/vnet-xdp/$GATEWAY/*; do
		case $(basename "$path") in xdp_*) continue ;; esac
		bytes=$(bpftool -j map show pinned "$path" | jq '.bytes_memlock // 0') || return 1
		sum=$((sum + bytes))
	done
	echo $sum
}

# report_checks LINE WHAT REASON: LINE is "gateway GW WHAT: N interfaces: IFACE MODE, ...;
# maps X MiB kernel memory; T s" with each interface's kernel mode, REASON after each
# generic one (REASON: a glob pattern), X within rounding of the maps' memlock and T a plausible time.
report_checks() {
	local line=$1 what=$2 reason=$3 expect="" iface mode mib memlock seconds
	for iface in $IFACES; do
		mode=$(link_mode $iface)
		expect="$expect${expect:+,} $iface $mode"
		[ "$mode" = generic ] && expect="$expect ($reason)"
	done
	expect="vnet-xdp: gateway $GATEWAY $what: 5 interfaces:$expect; maps "
	# shellcheck disable=SC2053 # REASON may be a pattern
	[[ $line == $expect* ]] || { printf 'said:   %s\nexpect: %s...\n' "$line" "$expect"; return 1; }
	mib=$(sed -nE 's/.*; maps ([0-9]+\.[0-9]) MiB kernel memory; ([0-9]+\.[0-9]{2}) s$/\1/p' <<<"$line")
	seconds=$(sed -nE 's/.*; maps ([0-9]+\.[0-9]) MiB kernel memory; ([0-9]+\.[0-9]{2}) s$/\2/p' <<<"$line")
	[ -n "$mib" ] && [ -n "$seconds" ] || { echo "no memory or time in: $line"; return 1; }
	memlock=$(maps_memlock) || return 1
	echo "said $mib MiB, bpftool sums $memlock bytes; $seconds s"
	awk -v mib="$mib" -v b="$memlock" -v s="$seconds" \
		'BEGIN { d = mib - b / 1048576; exit !(b > 0 && d <= 0.051 && d >= -0.051 && s > 0 && s < 120) }'
}

up_says_each_interfaces_mode_memory_and_time() {
	gw up -c "$WORK/bridge.json" 2>"$WORK/up.log" || { cat "$WORK/up.log"; return 1; }
	[ "$(link_mode rep-br0)" = generic ] && [ "$(link_mode to-hub)" = native ] || return 1
	report_checks "$(tail -1 "$WORK/up.log")" "is up" "native XDP refused: *"
}

reload_says_the_same() {
	gw reload -c "$WORK/bridge.json" 2>"$WORK/reload.log" || { cat "$WORK/reload.log"; return 1; }
	report_checks "$(tail -1 "$WORK/reload.log")" "reloaded from $WORK/bridge.json" \
		"native XDP refused: *"
}

up_mode_generic_says_it_was_asked() {
	gw down -n $GATEWAY 2>/dev/null || return 1
	gw up -c "$WORK/bridge.json" --mode generic 2>"$WORK/generic.log" || { cat "$WORK/generic.log"; return 1; }
	report_checks "$(tail -1 "$WORK/generic.log")" "is up" "--mode generic"
}

run_case up_says_each_interfaces_mode_memory_and_time
run_case reload_says_the_same
run_case up_mode_generic_says_it_was_asked
exit ${FAILED:-0}

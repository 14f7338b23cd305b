#!/usr/bin/env bash
# The demo: a hub and two spokes in network namespaces, the gateway brought up with
# `vnet-xdp up` on the embedded default config, then traffic that shows Azure's peering
# semantics: hub <-> spoke works, spoke1 -> spoke2 does not (peering is not transitive).
#   scripts/demo.sh [--keep]     --keep leaves the topology and gateway running
set -uo pipefail

cd "$(dirname "$0")/.."
. scripts/topology.sh

PREFIX=${DEMO_PREFIX:-vxdemo}   # the tests run the demo under their own names
GATEWAY=${DEMO_GATEWAY:-demo}
VNET_XDP=${VNET_XDP:-$PWD/${BUILD:-build}/vnet-xdp}
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (network namespaces and BPF)"; exit 1; }

CONFIG=$(mktemp /tmp/vnet-xdp-demo.XXXXXX.json)
cleanup() {
	if [ "$KEEP" -eq 0 ]; then
		nsenter --net=/run/netns/$PREFIX-gw "$VNET_XDP" down -n "$GATEWAY" 2>/dev/null
		topology_down "$PREFIX"
		rm -f "$CONFIG"
	fi
}
trap cleanup EXIT
gw() { nsenter --net=/run/netns/$PREFIX-gw "$VNET_XDP" "$@"; }
step() { printf '\n== %s\n' "$*"; }
expect() { # expect ok|refused DESCRIPTION COMMAND...
	local want=$1 what=$2
	shift 2
	if "$@" >/dev/null 2>&1; then got=ok; else got=refused; fi
	if [ "$got" = "$want" ]; then
		printf '  %-44s %-8s (as Azure does)\n' "$what" "$got"
	else
		printf '  %-44s %-8s UNEXPECTED: wanted %s\n' "$what" "$got" "$want"
		RESULT=1
	fi
}
tcp_transfer() { # tcp_transfer FROM TO_ADDR: 1 MiB over TCP, received byte count checked
	local from=$1 to_ns=$2 addr=$3 port=5201 out family=-4
	case $addr in *:*) family=-6 ;; esac # nc listens on IPv4 only unless told
	out=$(mktemp)
	ip netns exec "$to_ns" timeout 8 nc $family -l -N -p $port >"$out" 2>/dev/null &
	sleep 0.3
	head -c 1048576 /dev/zero | ip netns exec "$from" timeout 5 nc -N -w 3 "$addr" $port 2>/dev/null
	wait
	[ "$(stat -c %s "$out")" -eq 1048576 ]
	local rc=$?
	rm -f "$out"
	return $rc
}

topology_down "$PREFIX"
gw down -n "$GATEWAY" >/dev/null 2>&1
step "topology: namespaces $PREFIX-{gw,hub,spoke1,spoke2}"
topology_up "$PREFIX"
topology_config "$GATEWAY" >"$CONFIG"

step "vnet-xdp check -c $CONFIG"
gw check -c "$CONFIG" || exit 1
step "vnet-xdp up -c $CONFIG"
gw up -c "$CONFIG" || exit 1
step "vnet-xdp status"
gw status
step "vnet-xdp routes --vnet spoke1 (effective routes)"
gw routes --vnet spoke1 -c "$CONFIG"

RESULT=0
step "traffic"
expect ok      "ping hub -> spoke1 (10.11.1.4)"        ip netns exec $PREFIX-hub ping -c 3 -i 0.2 -W 1 10.11.1.4
expect ok      "ping hub -> spoke2 (10.12.1.4)"        ip netns exec $PREFIX-hub ping -c 3 -i 0.2 -W 1 10.12.1.4
expect ok      "ping spoke1 -> hub (fd00:10:0:1::4)"   ip netns exec $PREFIX-spoke1 ping -6 -c 3 -i 0.2 -W 1 fd00:10:0:1::4
expect refused "ping spoke1 -> spoke2 (10.12.1.4)"     ip netns exec $PREFIX-spoke1 ping -c 3 -i 0.2 -W 1 10.12.1.4
expect refused "ping spoke1 -> spoke2 (fd00:12:0:1::4)" ip netns exec $PREFIX-spoke1 ping -6 -c 3 -i 0.2 -W 1 fd00:12:0:1::4
expect ok      "TCP 1 MiB hub -> spoke1"               tcp_transfer $PREFIX-hub $PREFIX-spoke1 10.11.1.4
expect ok      "TCP 1 MiB spoke2 -> hub over IPv6"     tcp_transfer $PREFIX-spoke2 $PREFIX-hub fd00:10:0:1::4
expect refused "TCP spoke1 -> spoke2"                  tcp_transfer $PREFIX-spoke1 $PREFIX-spoke2 10.12.1.4

step "vnet-xdp stats -n $GATEWAY"
gw stats -n "$GATEWAY"

if [ "$KEEP" -eq 1 ]; then
	step "left running (--keep): namespaces $PREFIX-*, config $CONFIG"
	echo "  try: ip netns exec $PREFIX-hub ping 10.11.1.4"
	echo "  stop: nsenter --net=/run/netns/$PREFIX-gw $VNET_XDP down -n $GATEWAY;" \
		"for ns in gw hub spoke1 spoke2 internet; do ip netns del $PREFIX-\$ns; done"
else
	step "vnet-xdp down, topology removed"
fi
[ "$RESULT" -eq 0 ] && echo "demo: peering semantics as expected" || echo "demo: UNEXPECTED results above"
exit "$RESULT"

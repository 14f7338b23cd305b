#!/usr/bin/env bash
# Tunnel throughput: iperf3 TCP from a VM in vnet-a to a VM in vnet-b across a Vnet2Vnet
# connection (two vnet-xdp gateways, each with its own charon, real ESP with AES-GCM) in
# the QEMU guest, once with our programs attached (XDP on the gateways' interfaces, tc on
# the xfrm interfaces) and once with them detached (the kernel alone forwards through the
# same xfrm interfaces and SAs). One run of each; prints both and their ratio.
#
#   scripts/bench/ipsec.sh [SECONDS]      (default 10 per run)
#
# Under TCG the absolute figures measure the emulator; the ratio is what to read.
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
export VM_TIMEOUT=${VM_TIMEOUT:-1200}
vm_enter "$@"
. tests/vm/ipsec_helpers.bash

SECONDS_PER_RUN=${1:-10}
P=vxbipsec
GW_A=$P-gwa GW_B=$P-gwb VM_A=$P-vma VM_B=$P-vmb
DIR=$(mktemp -d /tmp/$P.XXXXXX)
KEY="bench-psk-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

die() { echo "ipsec bench: $*" >&2; exit 1; }

vm_modules_load || die "modules"
vm_ns_add $GW_A $GW_B $VM_A $VM_B || die "namespaces"
veth_link $GW_A uplink0 $GW_B uplink0
ip -n $GW_A addr add 192.0.2.1/24 dev uplink0
ip -n $GW_B addr add 192.0.2.2/24 dev uplink0
vm_host $VM_A $GW_A to-a 10.1.1.4/16 10.1.0.1
vm_host $VM_B $GW_B to-b 10.2.1.4/16 10.2.0.1
(umask 077
 v2v_config gwa vng-a 192.0.2.1 to-a vnet-a >"$DIR/a.json"
 v2v_config gwb vng-b 192.0.2.2 to-b vnet-b >"$DIR/b.json")
charon_start $GW_A || die "charon"
charon_start $GW_B || die "charon"
vx $GW_A up -c "$DIR/a.json" || die "up gwa"
vx $GW_B up -c "$DIR/b.json" || die "up gwb"
wait_tunnel_up $GW_A gwa a-to-b 120 >/dev/null || die "tunnel not up"

ip netns exec $VM_B iperf3 -s -D -1 -B 10.2.1.4 >/dev/null 2>&1 || die "iperf3 server"
sleep 1

# iperf3_mbps: one TCP run, its received throughput in Mbit/s.
iperf3_mbps() {
	ip netns exec $VM_B iperf3 -s -D -1 -B 10.2.1.4 >/dev/null 2>&1
	sleep 1
	ip netns exec $VM_A iperf3 -c 10.2.1.4 -t "$SECONDS_PER_RUN" -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e6'
}

ip netns exec $VM_A iperf3 -c 10.2.1.4 -t 2 >/dev/null 2>&1 # warm-up, first server
with=$(iperf3_mbps)
packets=$(tunnel_field $GW_A gwa a-to-b egressPackets)

# Detach: XDP off every gateway interface, clsact off the xfrm interfaces.
for ns in $GW_A $GW_B; do
	for dev in uplink0 to-a to-b; do
		ip -n $ns link set dev $dev xdp off 2>/dev/null
	done
done
tc -n $GW_A qdisc del dev vx0-gwa clsact
tc -n $GW_B qdisc del dev vx0-gwb clsact
without=$(iperf3_mbps)

printf 'ipsec tunnel, iperf3 TCP %ss, AES-GCM ESP under TCG\n' "$SECONDS_PER_RUN"
printf '  with vnet-xdp attached:   %8.1f Mbit/s (%s packets counted into the tunnel)\n' "$with" "$packets"
printf '  kernel alone:             %8.1f Mbit/s\n' "$without"
awk -v a="$with" -v b="$without" 'BEGIN { if (b > 0) printf "  ratio with/without:       %8.3f\n", a / b }'
charon_stop $GW_A
charon_stop $GW_B

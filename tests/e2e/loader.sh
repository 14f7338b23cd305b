#!/usr/bin/env bash
# End to end: the loader's attach modes and its all-or-nothing promise when attaching
# fails part way (not a kill: a real error from the kernel). `up --mode native|generic`
# forces the XDP mode; without it veths get native. A config whose last interface is a
# bridge, which has no native XDP, makes `up --mode native` fail after the veths
# were attached: it must detach them, unpin, leave no state and say one clear line.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_loader vxldr ldr
e2e_topology "$WORK/gw.json"
ip -n $PREFIX-gw link add ldr-br0 type bridge
ip -n $PREFIX-gw link set ldr-br0 up
in_ns $PREFIX-gw sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
# the bridge as a second interface toward the hub, listed last
jq '.gateway.interfaces += [{"name": "ldr-br0", "virtualNetwork": "hub"}]' \
	"$WORK/gw.json" >"$WORK/bridge.json"

IFACES="to-hub to-spoke1 to-spoke2 uplink0"
# link_mode IFACE: "native", "generic" or "none", as the kernel reports it
link_mode() {
	local line
	line=$(ip -n $PREFIX-gw -d link show "$1")
	case $line in
	*xdpgeneric*) echo generic ;;
	*" xdp "* | *"prog/xdp"*) echo native ;;
	*) echo none ;;
	esac
}
all_modes() { local i; for i in $IFACES; do link_mode $i; done | sort -u | tr '\n' ' '; }
REACH_PINGS=2
nothing_left() {
	local i
	for i in $IFACES ldr-br0; do
		[ "$(link_mode $i)" = none ] || { echo "XDP left on $i"; return 1; }
	done
	[ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY ] || { echo "pins left"; return 1; }
	[ ! -e /run/vnet-xdp/$GATEWAY.json ] || { echo "state left"; return 1; }
	[ "$(in_ns $PREFIX-gw sysctl -n net.ipv4.ip_forward)" = 0 ] || { echo "forwarding on"; return 1; }
}

up_without_a_mode_picks_native_on_veth() {
	gw up -c "$WORK/gw.json" || return 1
	[ "$(all_modes)" = "native " ] || { echo "modes: $(all_modes)"; return 1; }
	[ "$(gw status -n $GATEWAY -j | jq -r '[.[0].interfaces[].mode] | unique | join(",")')" = native ] ||
		{ gw status -n $GATEWAY -j; return 1; }
	reaches hub 10.11.1.4 && reaches spoke2 fd00:10:0:1::4 || return 1
	gw down -n $GATEWAY && nothing_left
}

up_mode_generic_forces_generic() {
	gw up -c "$WORK/gw.json" --mode generic || return 1
	[ "$(all_modes)" = "generic " ] || { echo "modes: $(all_modes)"; return 1; }
	[ "$(gw status -n $GATEWAY -j | jq -r '[.[0].interfaces[].mode] | unique | join(",")')" = generic ] ||
		{ gw status -n $GATEWAY -j; return 1; }
	reaches hub 10.12.1.4 && reaches spoke1 fd00:10:0:1::4 || return 1
	reaches spoke1 10.12.1.4 && { echo "spoke1 reached spoke2"; return 1; }
	gw down -n $GATEWAY && nothing_left
}

up_mode_native_forces_native() {
	gw up -c "$WORK/gw.json" --mode native || return 1
	[ "$(all_modes)" = "native " ] || { echo "modes: $(all_modes)"; return 1; }
	reaches hub 10.11.1.4 || return 1
	gw down -n $GATEWAY && nothing_left
}

up_mode_bogus_is_a_usage_error() {
	gw up -c "$WORK/gw.json" --mode turbo 2>"$WORK/err"
	[ $? -eq 2 ] || return 1
	grep -q -- '--mode is native or generic' "$WORK/err" && nothing_left
}

# Four veths attach natively, then the bridge refuses: everything is undone.
failed_attach_part_way_undoes_everything() {
	local out
	out=$(gw up -c "$WORK/bridge.json" --mode native 2>&1)
	[ $? -eq 1 ] || { echo "up did not fail: $out"; return 1; }
	echo "$out"
	[ "$(printf '%s\n' "$out" | grep -c .)" -eq 1 ] || { echo "more than one line"; return 1; }
	printf '%s\n' "$out" | grep -q 'cannot attach XDP to ldr-br0 (native mode)' || return 1
	nothing_left || return 1
	# and the same config in generic mode, which the bridge supports, comes up whole
	gw up -c "$WORK/bridge.json" --mode generic || return 1
	[ "$(link_mode ldr-br0)" = generic ] && [ "$(all_modes)" = "generic " ] || return 1
	reaches hub 10.11.1.4 || return 1
	gw down -n $GATEWAY && nothing_left
}

# limits.flowTableSize 2^27, the largest hash table the kernel makes: the flow table and
# its two caches would take 99 GB. `up` says so in one line before it creates anything.
up_refuses_a_flow_table_the_machine_cannot_hold() {
	local out
	jq '.gateway.limits = {"flowTableSize": 134217728}' "$WORK/gw.json" >"$WORK/huge.json"
	out=$(gw up -c "$WORK/huge.json" 2>&1)
	[ $? -eq 1 ] || { echo "up did not fail: $out"; return 1; }
	echo "$out"
	[ "$(printf '%s\n' "$out" | grep -c .)" -eq 1 ] || { echo "more than one line"; return 1; }
	printf '%s\n' "$out" | grep -qE "limits.flowTableSize 134217728 and limits.snatTableSize 1048576 need [0-9]{11,} bytes of kernel memory for their maps; this machine has [0-9]* bytes available" ||
		return 1
	nothing_left
}

# bpffs missing (a fresh boot): `up` mounts it. Run in a private mount namespace, whose
# unmounted /sys/fs/bpf nobody else sees.
up_mounts_bpffs_where_missing() {
	unshare -m --propagation private bash -c '
		umount /sys/fs/bpf 2>/dev/null
		[ "$(findmnt -n -o FSTYPE /sys/fs/bpf)" != bpf ] || { echo "bpffs still mounted"; exit 1; }
		nsenter --net=/run/netns/'$PREFIX'-gw "'$VNET_XDP'" up -c "'$WORK'/gw.json" || exit 1
		[ "$(findmnt -n -o FSTYPE /sys/fs/bpf)" = bpf ] || { echo "bpffs not mounted"; exit 1; }
		[ -e /sys/fs/bpf/vnet-xdp/'$GATEWAY'/routes ] || { echo "no pins"; exit 1; }
		nsenter --net=/run/netns/'$PREFIX'-gw "'$VNET_XDP'" down -n '$GATEWAY'
	' || return 1
	nothing_left
}

run_case up_mounts_bpffs_where_missing
run_case up_without_a_mode_picks_native_on_veth
run_case up_mode_generic_forces_generic
run_case up_mode_native_forces_native
run_case up_mode_bogus_is_a_usage_error
run_case failed_attach_part_way_undoes_everything
# MemAvailable in MiB; the maps need 94,240 MiB
if [ "$(awk '/^MemAvailable:/ {printf "%d", $2 / 1024}' /proc/meminfo)" -lt 94240 ]; then
	run_case up_refuses_a_flow_table_the_machine_cannot_hold
else
	skip up_refuses_a_flow_table_the_machine_cannot_hold "this machine holds 99 GB of maps"
fi

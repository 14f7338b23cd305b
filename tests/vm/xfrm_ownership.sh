#!/usr/bin/env bash
# Only a gateway's own xfrm interfaces are its, in the QEMU guest (Debian's kernel has xfrm
# interfaces): `up` refuses, in one line and leaving everything as it was, when an
# interface of its tunnel's name is someone else's (another if_id) or another xfrm
# interface holds its tunnel's if_id; `down` leaves alone an interface that took the
# recorded name since `up`.
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
vm_enter "$@"
. tests/vm/ipsec_helpers.bash

P=vxown
GW=$P-gw PEER=$P-peer VM=$P-vm
DIR=$(mktemp -d /tmp/$P.XXXXXX)
KEY="own-psk-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
FOREIGN_IF_ID=5

# The tunnel's interface name and if_id, from an `up` and `down` of the gateway.
set_up() {
	vm_modules_load || return 1
	vm_ns_add $GW $PEER $VM || return 1
	veth_link $GW uplink0 $PEER uplink0
	ip -n $GW addr add 192.0.2.1/24 dev uplink0
	vm_host $VM $GW to-a 10.1.1.4/16 10.1.0.1
	(umask 077; v2v_config gwa vng-a 192.0.2.1 to-a vnet-a >"$DIR/a.json")
	charon_start $GW || return 1
	vx $GW up -c "$DIR/a.json" || return 1
	XFRM=$(tunnel_interface gwa) IF_ID=$(tunnel_if_id gwa)
	vx $GW down -n gwa || return 1
	[ -n "$XFRM" ] && ! ip -n $GW link show "$XFRM" 2>/dev/null
}

# up_refuses OUTPUT-PATTERN: `up` fails with one error line matching the pattern and
# leaves no gateway, no connection in charon and no interface of the tunnel's name.
up_refuses() {
	local out
	! out=$(vx $GW up -c "$DIR/a.json" 2>&1) || { echo "up succeeded: $out"; return 1; }
	echo "$out"
	[ "$(grep -c "$1" <<<"$out")" = 1 ] || return 1
	[ ! -e /run/vnet-xdp/gwa.json ] || { echo "a state was written"; return 1; }
	[ -z "$(swanctl_in $GW --list-conns 2>/dev/null | grep vnetxdp-gwa)" ] ||
		{ swanctl_in $GW --list-conns; return 1; }
}

# foreign_is_intact NAME IF_ID: the interface is there, with the if_id it was made with.
foreign_is_intact() {
	ip -n $GW -d link show "$1" | grep -q "xfrm if_id $(printf '0x%x' "$2") " ||
		{ ip -n $GW -d link; return 1; }
}

up_refuses_an_interface_of_its_name_that_is_not_ours() {
	vm_xfrm_if $GW "$XFRM" uplink0 $FOREIGN_IF_ID || return 1
	up_refuses "interface $XFRM exists and is not this gateway's" &&
		foreign_is_intact "$XFRM" $FOREIGN_IF_ID || return 1
	ip -n $GW link del "$XFRM"
}

up_refuses_another_xfrm_interface_with_its_if_id() {
	vm_xfrm_if $GW other0 uplink0 "$IF_ID" || return 1
	up_refuses "xfrm interface other0 already has if_id" &&
		foreign_is_intact other0 "$IF_ID" || return 1
	! ip -n $GW link show "$XFRM" 2>/dev/null || { echo "$XFRM was made"; return 1; }
	ip -n $GW link del other0
}

down_leaves_a_foreign_interface_of_the_recorded_name_alone() {
	vx $GW up -c "$DIR/a.json" || return 1
	ip -n $GW link del "$XFRM" || return 1
	vm_xfrm_if $GW "$XFRM" uplink0 $FOREIGN_IF_ID || return 1
	vx $GW down -n gwa || return 1
	foreign_is_intact "$XFRM" $FOREIGN_IF_ID
}

if ! set_up >"$DIR/setup.log" 2>&1; then
	fail xfrm_ownership_setup "$(tail -5 "$DIR/setup.log")"
	exit 1
fi
for t in up_refuses_an_interface_of_its_name_that_is_not_ours \
	up_refuses_another_xfrm_interface_with_its_if_id \
	down_leaves_a_foreign_interface_of_the_recorded_name_alone; do
	run_case_reporting $t
done
charon_stop $GW
[ -z "${FAILED:-}" ]

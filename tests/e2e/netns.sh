#!/usr/bin/env bash
# End to end: a gateway belongs to the network namespace it was brought up in. Its pins
# and state are visible from every namespace (one bpffs, one /run), but its interface
# indexes name other interfaces elsewhere: from another namespace, `status` says where
# it runs instead of probing those indexes, and `down`, `reload` and `up` of the same
# name refuse with one clear line and touch nothing.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_netns vxnns nns
OTHER=$PREFIX-other # carries the prefix: removed with the topology's namespaces
other() { in_ns $OTHER "$VNET_XDP" "$@"; }

e2e_topology "$WORK/gw.json"
ip netns add $OTHER
# the other namespace has interfaces of the same names, so nothing but the namespace
# tells them apart
for i in to-hub to-spoke1 to-spoke2 uplink0; do
	ip -n $OTHER link add $i type veth peer name $i-p && ip -n $OTHER link set $i up
done

attached_ids() { gw status -n $GATEWAY -j | jq -r '[.[0].interfaces[] | select(.attached) | .programId] | join(",")'; }

up_records_its_namespace() {
	gw up -c "$WORK/gw.json" || return 1
	[ "$(gw status -n $GATEWAY -j | jq -r '.[0].networkNamespace')" = \
		"$(in_ns $PREFIX-gw readlink /proc/self/ns/net)" ] || return 1
	[ "$(gw status -n $GATEWAY -j | jq -r '.[0].inThisNetworkNamespace')" = true ]
}

status_elsewhere_says_where_it_runs() {
	local out
	out=$(other status -n $GATEWAY) || return 1
	echo "$out"
	grep -q "in network namespace net:\[[0-9]*\], not this one" <<<"$out" || return 1
	[ "$(other status -n $GATEWAY -j | jq -r '.[0].inThisNetworkNamespace, (.[0].interfaces | length)' | tr '\n' ' ')" = "false 0 " ]
}

down_reload_and_up_elsewhere_refuse_and_touch_nothing() {
	local before out cmd
	before=$(attached_ids)
	[ -n "$before" ] || return 1
	for cmd in "down -n $GATEWAY" "reload -c $WORK/gw.json" "up -c $WORK/gw.json"; do
		# shellcheck disable=SC2086
		if out=$(other $cmd 2>&1); then
			echo "$cmd succeeded in the other namespace"
			return 1
		fi
		grep -q "runs in network namespace .*, this command in .*: run it there" <<<"$out" ||
			{ echo "$cmd: $out"; return 1; }
	done
	[ "$(attached_ids)" = "$before" ] || { echo "attachments changed: $(attached_ids)"; return 1; }
	! ip -n $OTHER -d link show | grep -q "prog/xdp" || { echo "XDP in the other namespace"; return 1; }
	in_ns $PREFIX-hub ping -c 2 -i 0.2 -W 1 10.11.1.4 >/dev/null
}

down_in_its_own_namespace_works() {
	gw down -n $GATEWAY || return 1
	[ ! -e /run/vnet-xdp/$GATEWAY.json ]
}

run_case up_records_its_namespace
run_case status_elsewhere_says_where_it_runs
run_case down_reload_and_up_elsewhere_refuse_and_touch_nothing
run_case down_in_its_own_namespace_works

# A namespace deleted under a running gateway takes its interfaces and programs along;
# pins and state are what is left: `up` elsewhere says so, `down` from anywhere clears it.
GONE=$PREFIX-gone
gone() { in_ns $GONE "$VNET_XDP" "$@"; }
down_after_its_namespace_is_gone_clears_what_is_left() {
	local out
	ip netns add $GONE || return 1
	ip -n $GONE link add to-hub type veth peer name to-hub-p && ip -n $GONE link set to-hub up &&
		ip -n $GONE link set lo up || return 1
	jq '.gateway.interfaces = [.gateway.interfaces[] | select(.name == "to-hub")]' "$WORK/gw.json" \
		>"$WORK/gone.json" || return 1
	gone up -c "$WORK/gone.json" || return 1
	ip netns del $GONE
	[ "$(other status -n $GATEWAY -j | jq -r '.[0].networkNamespaceGone')" = true ] ||
		{ other status -n $GATEWAY -j; return 1; }
	if out=$(other up -c "$WORK/gw.json" 2>&1); then
		echo "up succeeded beside the remains"; return 1
	fi
	grep -q "which is gone with its interfaces: .vnet-xdp down -n $GATEWAY. removes what is left" <<<"$out" ||
		{ echo "up: $out"; return 1; }
	! ip -n $OTHER -d link show | grep -q "prog/xdp" || { echo "XDP in the other namespace"; return 1; }
	other down -n $GATEWAY || return 1
	[ ! -e /run/vnet-xdp/$GATEWAY.json ] && [ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY ] || return 1
	gw up -c "$WORK/gw.json" && gw down -n $GATEWAY
}
run_case down_after_its_namespace_is_gone_clears_what_is_left

#!/usr/bin/env bash
# Tunnels that come back by themselves, carry full-size TCP and count only real drops,
# end to end in the QEMU guest (Debian's kernel): the site-to-site topology of
# ipsec_s2s_transit.sh (tests/data/config/ipsec-transit.json), whose on-premises device
# (its own charon) never initiates. The gateway's charon retransmits quickly here, so
# that giving up (what charon does by default after one retransmission sequence) would
# show within seconds:
# - `up` (and `serve`) while the device is not there yet: the tunnel says "connecting",
#   and comes up by itself once the device starts 30 s later.
# - with `vnet-xdp serve` running: a device that restarts (its charon answers
#   NO_PROPOSAL_CHOSEN for 15 s, until its connections are loaded) and one that closes the
#   tunnel while its connection is unloaded for 10 s both end charon's own attempts; serve
#   initiates the down tunnel again (backoff 1, 2, 4, 8... s) and traffic passes again.
#   vnetxdp_tunnel_state says down, then connected.
# Cases can be named as arguments: a subset, run on a tunnel brought up first.
# - 30 s after an `up` with the device there, no traffic: every drop counter of the tunnel
#   is 0 (the xfrm interface has no IPv6 link-local address, so the kernel sends no router
#   solicitations into it).
# - the xfrm interface's MTU leaves room for ESP, and 1 MB of TCP each way crosses
#   without an egress drop, the far side seeing the MSS clamped to 1350.
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
export VM_TIMEOUT=${VM_TIMEOUT:-1200}
vm_enter "$@"
. tests/vm/ipsec_helpers.bash

P=vxhealth
GW=$P-gw ONPREM=$P-onprem HOST=$P-host HUB=$P-hub SPOKE1=$P-spoke1 SPOKE2=$P-spoke2
DIR=$(mktemp -d /tmp/$P.XXXXXX)
ONPREM_IF_ID=9
# Two tries 2 s and 3 s apart, then 4.5 s: a sequence ends 9.5 s after it starts.
FAST_RETRANSMITS="retransmit_tries = 2
    retransmit_timeout = 2
    retransmit_base = 1.5"

# (A stopped charon leaves its socket behind: charon_start would take it for the new one's.)
onprem_start() {
	rm -f "$(charon_dir $ONPREM)/charon.vici"
	charon_start $ONPREM && swanctl_load $ONPREM "$DIR/onprem.conf" >/dev/null
}

set_up() {
	s2s_topology_up 10.10.0.0/16 || return 1
	# DPD every 5 s: a restarted device is noticed within seconds.
	(umask 077; jq '(.resources[] | select(.name == "to-onprem") | .properties
		.dpdTimeoutSeconds) = 15' tests/data/config/ipsec-transit.json >"$DIR/gw.json")
	onprem_conf_azure >"$DIR/onprem.conf"
	charon_start $GW "$FAST_RETRANSMITS" || return 1
}

tunnel_state() { tunnel_field $GW ipsecgw to-onprem state; }

a_device_that_starts_late_is_reached_without_help() {
	local state
	UP_AT=$SECONDS
	vx $GW up -c "$DIR/gw.json" || return 1
	# The gateway as it runs: charon gives up for good when the device's first answer is
	# NO_PROPOSAL_CHOSEN (its charon up, its connection not loaded yet), and serve then
	# initiates the tunnel again.
	serve_start || return 1
	# Past the first retransmission sequence (9.5 s): charon keeps trying.
	sleep 20
	state=$(tunnel_state)
	vx $GW status -n ipsecgw | grep -E '^tunnels:|to-onprem'
	figure "20 s after up, no device: $state"
	[ "$state" = connecting ] || { charon_log $GW | grep -E 'giving up|trying again|IKE_SA' | tail; return 1; }
	sleep 10
	onprem_start || return 1
	wait_tunnel_up $GW ipsecgw to-onprem 150 || return 1
	figure "up $((SECONDS - UP_AT)) s after \`up\`, the device started at 30 s;" \
		"$(charon_log $GW | grep -c 'trying again') retries by charon," \
		"$(serve_initiations) initiations by serve"
	charon_log $GW | grep -E 'initiating IKE_SA|trying again|giving up|NO_PROPOSAL|established' |
		sed 's/^/= charon: /' | head -20
	[ "$(tunnel_state)" = connected ] &&
	vx $GW status -n ipsecgw -j | jq -e '.[0].tunnels[] | select(.name == "to-onprem") |
		.state == "connected"' >/dev/null
}

the_interface_mtu_leaves_room_for_esp() {
	local mtu
	mtu=$(ip -n $GW -j link show "$(tunnel_interface ipsecgw)" | jq '.[0].mtu')
	figure "uplink MTU 1500, xfrm interface MTU $mtu"
	# Azure's default ESP offers, AES-CBC with SHA256 the largest: see test_swanctl.c.
	[ "$mtu" = 1422 ]
}

# syn_capture NS DEV FILE: captures the first SYN (or SYN-ACK) seen on DEV into FILE, in the
# background; its pid is printed. mss_of_capture FILE: the MSS option it carried.
syn_capture() {
	ip netns exec "$1" timeout 60 tcpdump -l -n -v -c 1 -i "$2" \
		'tcp[tcpflags] & tcp-syn != 0 and port 5001' >"$3" 2>/dev/null &
	echo $!
}
mss_of_capture() { grep -o 'mss [0-9]*' "$1" | head -1 | cut -d' ' -f2; }
# capture_done PID FILE: until tcpdump wrote the segment (10 s at most), then it is stopped.
capture_done() {
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q 'mss' "$2" 2>/dev/null && break
		sleep 0.2
	done
	kill "$1" 2>/dev/null
	return 0
}

full_size_tcp_crosses_without_drops_with_the_mss_clamped() {
	local e0 e1 pid mss_to_onprem mss_to_hub
	e0=$(tunnel_field $GW ipsecgw to-onprem egressPacketDropCount)
	pid=$(syn_capture $HOST eth0 "$DIR/syn-host")
	sleep 1
	tcp_transfer $HUB $HOST 192.168.50.10 1000000 "$DIR" || return 1
	capture_done "$pid" "$DIR/syn-host"
	pid=$(syn_capture $HUB eth0 "$DIR/syn-hub")
	sleep 1
	tcp_transfer $HOST $HUB 10.10.1.4 1000000 "$DIR" || return 1
	capture_done "$pid" "$DIR/syn-hub"
	e1=$(tunnel_field $GW ipsecgw to-onprem egressPacketDropCount)
	mss_to_onprem=$(mss_of_capture "$DIR/syn-host") mss_to_hub=$(mss_of_capture "$DIR/syn-hub")
	figure "1 MB each way: egress drops $e0 -> $e1; MSS seen on-premises $mss_to_onprem," \
		"in the hub $mss_to_hub"
	[ "$e1" = "$e0" ] && [ -n "$mss_to_onprem" ] && [ "$mss_to_onprem" -le 1350 ] &&
	[ -n "$mss_to_hub" ] && [ "$mss_to_hub" -le 1350 ]
}

SERVE_LISTEN=127.0.0.1:$((20000 + $$ % 20000))
# serve_start: `vnet-xdp serve` for the gateway that is up, until the script ends (each
# case runs in a subshell: the pid is kept in a file).
serve_start() {
	local i
	[ -f "$DIR/serve.pid" ] && kill -0 "$(cat "$DIR/serve.pid")" 2>/dev/null && return 0
	vx $GW serve -n ipsecgw --listen $SERVE_LISTEN >>"$DIR/serve.log" 2>&1 &
	echo $! >"$DIR/serve.pid"
	for ((i = 0; i < 60; i++)); do
		metrics_of_serve >/dev/null && return 0
		sleep 0.5
	done
	cat "$DIR/serve.log"
	return 1
}
serve_initiations() { grep -c 'initiating it' "$DIR/serve.log"; }
metrics_of_serve() { nsenter --net=/run/netns/$GW curl -sf "http://$SERVE_LISTEN/metrics"; }
# tunnel_state_metric: the state vnetxdp_tunnel_state says is the tunnel's (value 1).
tunnel_state_metric() {
	metrics_of_serve | sed -n 's/^vnetxdp_tunnel_state{tunnel="to-onprem",state="\([a-z]*\)"} 1$/\1/p'
}
# until_down SECONDS: until charon has let the tunnel go (no IKE SA at all).
until_down() {
	local i
	for ((i = 0; i < $1 * 2; i++)); do
		[ "$(tunnel_state)" = down ] && return 0
		sleep 0.5
	done
	return 1
}
# back_up_within WHAT START SECONDS INITIATIONS: the tunnel up and carrying pings again
# within SECONDS of the device being ready (START), with the time it took and serve's
# initiations since the case started (it had made INITIATIONS before).
back_up_within() {
	local what=$1 start=$2 bound=$3 before=$4 metric
	wait_tunnel_up $GW ipsecgw to-onprem "$bound" || { tail -5 "$DIR/serve.log"; return 1; }
	figure "up again $((SECONDS - start)) s after the device $what;" \
		"serve initiated it $(($(serve_initiations) - before)) times"
	ip netns exec $HUB ping -c 2 -i 0.3 -W 5 192.168.50.10 >/dev/null || return 1
	metric=$(tunnel_state_metric)
	figure "vnetxdp_tunnel_state: $metric"
	[ "$metric" = connected ]
}

# The device restarts: its charon is back at once but loads its connections only 15 s
# later, answering NO_PROPOSAL_CHOSEN meanwhile, which ends charon's attempts.
a_device_that_restarts_is_reached_again() {
	local state down_metric before
	serve_start || return 1
	before=$(serve_initiations)
	charon_stop $ONPREM
	rm -f "$(charon_dir $ONPREM)/charon.vici"
	charon_start $ONPREM || return 1
	if until_down 30; then
		state=down down_metric=$(tunnel_state_metric)
	else
		state=$(tunnel_state)
	fi
	sleep 15
	swanctl_load $ONPREM "$DIR/onprem.conf" >/dev/null || return 1
	figure "while the device started: tunnel $state, vnetxdp_tunnel_state ${down_metric:-?};" \
		"charon: $(charon_log $GW | grep -c 'NO_PROPOSAL_CHOSEN') NO_PROPOSAL_CHOSEN"
	[ "$state" = down ] || return 1
	back_up_within "loaded its connections" $SECONDS 60 "$before" || return 1
	[ "$down_metric" = down ]
}

# The device closes the tunnel (an IKE delete) with its connection unloaded for 10 s, as
# while it is reconfigured: charon's restart (close_action) is refused.
a_close_by_the_device_brings_it_back() {
	local state before
	serve_start || return 1
	before=$(serve_initiations)
	printf 'connections {\n}\n' >"$DIR/onprem-none.conf"
	swanctl_in $ONPREM --load-conns --file "$DIR/onprem-none.conf" >/dev/null || return 1
	swanctl_in $ONPREM --terminate --ike azure >/dev/null || return 1
	until_down 10 && state=down || state=$(tunnel_state)
	sleep 10
	swanctl_load $ONPREM "$DIR/onprem.conf" >/dev/null || return 1
	figure "while the device had no connection: tunnel $state"
	[ "$state" = down ] || return 1
	back_up_within "loaded its connection again" $SECONDS 60 "$before"
}

# A fresh `up` with the device there: the tunnel comes up at once, as the kernel would
# send its router solicitations (a second or so after the interface is up, then every
# 4 s), which xfrm drops for want of an IPv6 SA (the device's selectors are IPv4 only)
# and counts as transmit drops.
no_drops_30_s_after_up_without_traffic() {
	local xfrm up_at drops rest
	vx $GW down -n ipsecgw >/dev/null || return 1
	up_at=$SECONDS
	vx $GW up -c "$DIR/gw.json" >/dev/null || return 1
	wait_tunnel_up $GW ipsecgw to-onprem 60 || return 1
	xfrm=$(tunnel_interface ipsecgw)
	rest=$((30 - (SECONDS - up_at)))
	[ "$rest" -le 0 ] || sleep "$rest"
	vx $GW stats -n ipsecgw -j >"$DIR/quiet.json"
	drops=$(jq -c '[.tunnelDrops[] | select(.packets > 0) | "\(.direction) \(.reason) \(.packets)"]' "$DIR/quiet.json")
	figure "$((SECONDS - up_at)) s after up, $xfrm: ingress drops" \
		"$(jq '.tunnels[0].ingressPacketDropCount' "$DIR/quiet.json")," \
		"egress drops $(jq '.tunnels[0].egressPacketDropCount' "$DIR/quiet.json") $drops;" \
		"IPv6 addresses: $(ip -n $GW -6 -o addr show dev "$xfrm" | wc -l)"
	[ "$(jq '.tunnels[0].ingressPacketDropCount' "$DIR/quiet.json")" = 0 ] &&
	[ "$(jq '.tunnels[0].egressPacketDropCount' "$DIR/quiet.json")" = 0 ] &&
	[ "$drops" = "[]" ] &&
	[ -z "$(ip -n $GW -6 -o addr show dev "$xfrm")" ]
}

CASES="a_device_that_starts_late_is_reached_without_help the_interface_mtu_leaves_room_for_esp
	full_size_tcp_crosses_without_drops_with_the_mss_clamped a_device_that_restarts_is_reached_again
	a_close_by_the_device_brings_it_back no_drops_30_s_after_up_without_traffic"
# A subset named as arguments starts from a tunnel that is up, the device there.
[ $# -eq 0 ] || CASES="$*"
subset_start() {
	[ $# -eq 0 ] || [ "$1" = a_device_that_starts_late_is_reached_without_help ] && return 0
	onprem_start && vx $GW up -c "$DIR/gw.json" >/dev/null && wait_tunnel_up $GW ipsecgw to-onprem 120
}
SUBSET=("$@")
set_up_for_the_subset() { set_up && subset_start "${SUBSET[@]}"; }
SET_UP=set_up_for_the_subset
# shellcheck disable=SC2086
run_scenario ipsec_tunnel_health $CASES || exit 1
[ -f "$DIR/serve.pid" ] && kill "$(cat "$DIR/serve.pid")" 2>/dev/null
vx $GW down -n ipsecgw >/dev/null 2>&1
charon_stop $GW
charon_stop $ONPREM
[ -z "${FAILED:-}" ]

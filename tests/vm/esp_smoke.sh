#!/usr/bin/env bash
# The VM harness's proof: in the guest (Debian's kernel), two gateway namespaces joined
# by an underlay veth, an xfrm interface with its own if_id on each, two charon instances
# negotiating IKEv2 with a PSK and binding their SAs to those if_ids, and a host behind
# each gateway. Ping and a TCP transfer between the hosts must cross as real ESP: the
# xfrm interfaces and the ESP SAs count them. Runs itself through scripts/vm/run.sh when
# started on the host.
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
vm_enter "$@"

P=vxsmk
GW_A=$P-gwa GW_B=$P-gwb VM_A=$P-vma VM_B=$P-vmb
IF_ID=7
DIR=$(mktemp -d /tmp/$P.XXXXXX)

set_up() {
	CHARON_PLUGINS=$CHARON_PLUGINS_IKE # the short list, to keep it covered
	vm_modules_load || return 1
	vm_ns_add $GW_A $GW_B $VM_A $VM_B || return 1
	# underlay: 192.0.2.1 <-> 192.0.2.2
	veth_link $GW_A under $GW_B under
	ip -n $GW_A addr add 192.0.2.1/24 dev under
	ip -n $GW_B addr add 192.0.2.2/24 dev under
	# a host behind each gateway
	veth_link $VM_A eth0 $GW_A to-vm
	ip -n $GW_A addr add 10.1.0.1/24 dev to-vm
	ip -n $VM_A addr add 10.1.0.4/24 dev eth0
	ip -n $VM_A route add default via 10.1.0.1
	veth_link $VM_B eth0 $GW_B to-vm
	ip -n $GW_B addr add 10.2.0.1/24 dev to-vm
	ip -n $VM_B addr add 10.2.0.4/24 dev eth0
	ip -n $VM_B route add default via 10.2.0.1
	# route-based tunnel: the remote host network goes into the xfrm interface
	vm_xfrm_if $GW_A ipsec0 under $IF_ID || return 1
	vm_xfrm_if $GW_B ipsec0 under $IF_ID || return 1
	ip -n $GW_A route add 10.2.0.0/24 dev ipsec0
	ip -n $GW_B route add 10.1.0.0/24 dev ipsec0
}

swanctl_conf() { # swanctl_conf LOCAL REMOTE LOCAL_NET REMOTE_NET
	cat <<-CONF
	connections {
	    smoke {
	        version = 2
	        local_addrs = $1
	        remote_addrs = $2
	        proposals = aes256-sha256-modp2048
	        local {
	            auth = psk
	            id = $1
	        }
	        remote {
	            auth = psk
	            id = $2
	        }
	        children {
	            net {
	                local_ts = $3
	                remote_ts = $4
	                esp_proposals = aes256gcm16
	                if_id_in = $IF_ID
	                if_id_out = $IF_ID
	                start_action = none
	            }
	        }
	    }
	}
	secrets {
	    ike-smoke {
	        id-a = 192.0.2.1
	        id-b = 192.0.2.2
	        secret = "smoke-test-pre-shared-key-0123456789"
	    }
	}
	CONF
}

ike_negotiates_with_psk() {
	charon_start $GW_A || return 1
	charon_start $GW_B || return 1
	swanctl_conf 192.0.2.1 192.0.2.2 10.1.0.0/24 10.2.0.0/24 >"$DIR/a.conf"
	swanctl_conf 192.0.2.2 192.0.2.1 10.2.0.0/24 10.1.0.0/24 >"$DIR/b.conf"
	swanctl_load $GW_A "$DIR/a.conf" || return 1
	swanctl_load $GW_B "$DIR/b.conf" || return 1
	swanctl_in $GW_A --initiate --child net --timeout 60 || { charon_log $GW_A | tail -40; return 1; }
	swanctl_in $GW_B --list-sas | grep -q 'smoke: #.*ESTABLISHED' || { swanctl_in $GW_B --list-sas; return 1; }
	# both directions of the child SA carry the interface's if_id
	[ "$(ip -n $GW_A xfrm state | grep -c "if_id 0x$IF_ID")" -eq 2 ] || { ip -n $GW_A xfrm state; return 1; }
}

esp_packets() { local c; c=$(vm_esp_counters "$1" $IF_ID) && echo "${c%% *}"; }

ping_crosses_the_tunnel_as_esp() {
	local tx0 rx0 esp0 tx1 rx1 esp1
	tx0=$(vm_link_stat $GW_A ipsec0 tx_packets)
	rx0=$(vm_link_stat $GW_A ipsec0 rx_packets)
	esp0=$(esp_packets $GW_B)
	ip netns exec $VM_A ping -c 5 -i 0.2 -W 3 10.2.0.4 || return 1
	tx1=$(vm_link_stat $GW_A ipsec0 tx_packets)
	rx1=$(vm_link_stat $GW_A ipsec0 rx_packets)
	esp1=$(esp_packets $GW_B)
	echo "ipsec0 on $GW_A: tx +$((tx1 - tx0)) rx +$((rx1 - rx0)); ESP SAs on $GW_B: +$((esp1 - esp0))"
	[ $((tx1 - tx0)) -ge 5 ] && [ $((rx1 - rx0)) -ge 5 ] && [ $((esp1 - esp0)) -ge 10 ] ||
		{ ip -n $GW_B -s xfrm state; return 1; }
}

tcp_transfer_crosses_the_tunnel() {
	local rx0 rx1 sum_in sum_out
	head -c 2000000 /dev/urandom >"$DIR/payload"
	rx0=$(vm_link_stat $GW_B ipsec0 rx_bytes)
	ip netns exec $VM_B timeout 60 nc -l -N 10.2.0.4 5001 >"$DIR/received" &
	local server=$!
	sleep 0.5
	ip netns exec $VM_A timeout 60 nc -N 10.2.0.4 5001 <"$DIR/payload" || { kill $server; return 1; }
	wait $server || return 1
	rx1=$(vm_link_stat $GW_B ipsec0 rx_bytes)
	sum_out=$(sha256sum <"$DIR/payload") sum_in=$(sha256sum <"$DIR/received")
	echo "received $(stat -c %s "$DIR/received") bytes; ipsec0 on $GW_B: rx +$((rx1 - rx0)) bytes"
	[ "$sum_in" = "$sum_out" ] && [ $((rx1 - rx0)) -ge 2000000 ]
}

no_cleartext_on_the_underlay() {
	# Everything between the gateways was ESP or IKE: the SAs' byte counters cover the
	# payload, and no inner address ever routed over the underlay itself.
	! ip -n $GW_A route get 10.2.0.4 | grep -q 'dev under'
}

start=$SECONDS
if ! set_up >"$DIR/setup.log" 2>&1; then
	fail esp_smoke_setup "$(tail -5 "$DIR/setup.log")"
	exit 1
fi
echo "    (set_up: $((SECONDS - start))s)"
for t in ike_negotiates_with_psk ping_crosses_the_tunnel_as_esp tcp_transfer_crosses_the_tunnel \
	no_cleartext_on_the_underlay; do
	start=$SECONDS
	run_case $t
	echo "    ($t: $((SECONDS - start))s)"
done
charon_stop $GW_A
charon_stop $GW_B
[ -z "${FAILED:-}" ]

#!/usr/bin/env bash
# One charon shared by an administrator's own tunnel and two vnet-xdp gateways, in the
# QEMU guest (Debian's kernel and strongSwan): each gateway's `up`, `reload` and `down`
# add, change and remove only its own connections and secrets (vnetxdp-<gateway>.<name>)
# over vici. The administrator's connection, loaded and established before any `up`,
# stays loaded and up throughout, and can still be started afresh at the end (its secret
# is still in charon); the other gateway's connection stays loaded, and an established
# gateway tunnel keeps its IKE SA across the other gateway's commands.
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
# Two gateways, three charon users and IKE under TCG: 20 minutes on a busy machine.
export VM_TIMEOUT=${VM_TIMEOUT:-2400}
vm_enter "$@"
. tests/vm/ipsec_helpers.bash

export LIBXDP_BPFFS=/tmp/vxshr-no-bpffs # direct attachment, as ipsec_s2s_transit.sh says
mkdir -p $LIBXDP_BPFFS

P=vxshr
GW=$P-gw GW2=$P-gw2 ONPREM=$P-onprem
DIR=$(mktemp -d /tmp/$P.XXXXXX)
CONFIG=tests/data/config/ipsec-transit.json
GW1_CONN=vnetxdp-ipsecgw.to-onprem GW2_CONN=vnetxdp-gw2.to-onprem

# The on-premises device: the gateway's connection (responder) and the administrator's.
onprem_conf() {
	cat <<-'CONF'
	connections {
	    azure {
	        version = 2
	        local_addrs = 198.51.100.2
	        remote_addrs = 198.51.100.1
	        proposals = aes256-sha1-modp1024
	        local { auth = psk
	                id = 198.51.100.2 }
	        remote { auth = psk
	                 id = 198.51.100.1 }
	        children {
	            azure {
	                local_ts = 0.0.0.0/0
	                remote_ts = 0.0.0.0/0
	                esp_proposals = aes256gcm16
	                if_id_in = 9
	                if_id_out = 9
	            }
	        }
	    }
	    admin {
	        version = 2
	        local_addrs = 198.51.100.12
	        remote_addrs = 198.51.100.11
	        local { auth = psk
	                id = 198.51.100.12 }
	        remote { auth = psk
	                 id = 198.51.100.11 }
	        children {
	            admin {
	                local_ts = 10.92.0.0/24
	                remote_ts = 10.91.0.0/24
	            }
	        }
	    }
	}
	secrets {
	    ike-azure {
	        id-a = 198.51.100.1
	        id-b = 198.51.100.2
	        secret = "s3cret \"quoted\""
	    }
	    ike-admin {
	        id-a = 198.51.100.11
	        id-b = 198.51.100.12
	        secret = "admin-psk"
	    }
	}
	CONF
}

# The administrator's own connection on the gateway's charon.
admin_conf() {
	cat <<-'CONF'
	connections {
	    admin {
	        version = 2
	        local_addrs = 198.51.100.11
	        remote_addrs = 198.51.100.12
	        local { auth = psk
	                id = 198.51.100.11 }
	        remote { auth = psk
	                 id = 198.51.100.12 }
	        children {
	            admin {
	                local_ts = 10.91.0.0/24
	                remote_ts = 10.92.0.0/24
	            }
	        }
	    }
	}
	secrets {
	    ike-admin {
	        id-a = 198.51.100.11
	        id-b = 198.51.100.12
	        secret = "admin-psk"
	    }
	}
	CONF
}

# vx2 ARGS...: vnet-xdp for the second gateway, in its own namespace, on GW's charon.
vx2() {
	STRONGSWAN_CONF=$(charon_dir $GW)/strongswan.conf \
		VNET_XDP_VICI="unix://$(charon_dir $GW)/charon.vici" \
		nsenter --net=/run/netns/$GW2 "$VNET_XDP" "$@"
}

loaded() { swanctl_in $GW --list-conns --raw 2>/dev/null | grep -q "list-conn event {$1 {"; }

# ike_sa_id NAME: the unique id of the connection's established IKE SA with an installed
# CHILD SA (empty when there is none).
ike_sa_id() {
	swanctl_in $GW --list-sas --ike "$1" --raw 2>/dev/null |
		grep "list-sa event {$1 {" | grep 'state=ESTABLISHED' | grep 'state=INSTALLED' |
		sed -n 's/.*uniqueid=\([0-9]*\).*/\1/p' | head -1
}

# admin_intact: the administrator's connection is loaded and its SA the one set up first.
admin_intact() {
	loaded admin || { echo "the administrator's connection was unloaded"; swanctl_in $GW --list-conns; return 1; }
	[ "$(ike_sa_id admin)" = "$(cat "$DIR/admin.sa")" ] ||
		{ echo "the administrator's SA is gone"; swanctl_in $GW --list-sas; return 1; }
}

set_up() {
	vm_modules_load || return 1
	vm_ns_add $GW $GW2 $ONPREM || return 1
	veth_link $GW uplink0 $ONPREM uplink0
	ip -n $GW addr add 198.51.100.1/24 dev uplink0
	ip -n $GW addr add 198.51.100.11/24 dev uplink0
	ip -n $ONPREM addr add 198.51.100.2/24 dev uplink0
	ip -n $ONPREM addr add 198.51.100.12/24 dev uplink0
	for ns in $GW $GW2; do
		for i in to-hub to-spoke1 to-spoke2; do veth_link $ns $i $ns x$i; done
	done
	veth_link $GW2 uplink0 $GW2 xuplink0
	ip -n $GW2 addr add 198.51.100.21/24 dev uplink0
	vm_xfrm_if $ONPREM ipsec0 uplink0 9 || return 1
	install -m 600 $CONFIG "$DIR/gw1.json"
	# The same connection name on another gateway: another connection in charon.
	jq '.gateway.name = "gw2" | .gateway.virtualNetworkGateways[0].address = "198.51.100.21" |
	    (.resources[] | select(.name == "onprem") | .properties.gatewayIpAddress) = "198.51.100.22"' \
		$CONFIG >"$DIR/gw2.json"
	chmod 600 "$DIR/gw2.json"
	onprem_conf >"$DIR/onprem.conf"
	admin_conf >"$DIR/admin.conf"
	charon_start $GW || return 1
	charon_start $ONPREM || return 1
	swanctl_load $ONPREM "$DIR/onprem.conf" >/dev/null || return 1
}

the_administrators_tunnel_is_up_before() {
	swanctl_load $GW "$DIR/admin.conf" || return 1
	swanctl_in $GW --initiate --child admin --timeout 60 >/dev/null ||
		{ charon_log $GW | tail -30; return 1; }
	ike_sa_id admin >"$DIR/admin.sa" # each case runs in a subshell: kept in a file
	[ -s "$DIR/admin.sa" ] || { swanctl_in $GW --list-sas; return 1; }
	figure "administrator's IKE SA #$(cat "$DIR/admin.sa")"
}

up_leaves_the_administrators_tunnel_alone() {
	vx $GW up -c "$DIR/gw1.json" || return 1
	admin_intact || return 1
	loaded $GW1_CONN || { swanctl_in $GW --list-conns; return 1; }
	wait_tunnel_up $GW ipsecgw to-onprem 120 || return 1
	ike_sa_id $GW1_CONN >"$DIR/gw1.sa"
	figure "gateway ipsecgw's IKE SA #$(cat "$DIR/gw1.sa")"
	[ ! -e /run/vnet-xdp/ipsecgw.swanctl.conf ] || { echo "a file with the secret"; return 1; }
}

a_second_gateway_shares_the_charon() {
	vx2 up -c "$DIR/gw2.json" || return 1
	loaded $GW2_CONN && loaded $GW1_CONN || { swanctl_in $GW --list-conns; return 1; }
	admin_intact || return 1
	[ "$(ike_sa_id $GW1_CONN)" = "$(cat "$DIR/gw1.sa")" ] ||
		{ echo "gateway ipsecgw's SA changed"; swanctl_in $GW --list-sas; return 1; }
}

reload_changes_only_its_own_connection() {
	jq '(.resources[] | select(.name == "to-onprem") | .properties.dpdTimeoutSeconds) = 30' \
		"$DIR/gw2.json" >"$DIR/gw2b.json"
	chmod 600 "$DIR/gw2b.json"
	vx2 reload -c "$DIR/gw2b.json" || return 1
	loaded $GW2_CONN && loaded $GW1_CONN || { swanctl_in $GW --list-conns; return 1; }
	admin_intact || return 1
	[ "$(ike_sa_id $GW1_CONN)" = "$(cat "$DIR/gw1.sa")" ] || { echo "gateway ipsecgw's SA changed"; return 1; }
	# The first gateway's own reload with its connection unchanged keeps its SA too.
	vx $GW reload -c "$DIR/gw1.json" || return 1
	loaded $GW2_CONN || { swanctl_in $GW --list-conns; return 1; }
	admin_intact || return 1
	[ "$(ike_sa_id $GW1_CONN)" = "$(cat "$DIR/gw1.sa")" ] ||
		{ echo "an unchanged connection lost its SA on reload"; swanctl_in $GW --list-sas; return 1; }
}

down_removes_only_its_own_connection() {
	vx2 down -n gw2 || return 1
	! loaded $GW2_CONN || { swanctl_in $GW --list-conns; return 1; }
	loaded $GW1_CONN || { swanctl_in $GW --list-conns; return 1; }
	[ "$(ike_sa_id $GW1_CONN)" = "$(cat "$DIR/gw1.sa")" ] || { echo "gateway ipsecgw's SA changed"; return 1; }
	admin_intact || return 1
	vx $GW down -n ipsecgw || return 1
	! loaded $GW1_CONN || { swanctl_in $GW --list-conns; return 1; }
	admin_intact || return 1
	# Its secret is still there: the administrator's tunnel starts afresh.
	swanctl_in $GW --terminate --ike admin --timeout 10 >/dev/null 2>&1
	swanctl_in $GW --initiate --child admin --timeout 60 >/dev/null ||
		{ echo "the administrator's tunnel no longer starts"; charon_log $GW | tail -20; return 1; }
	[ -n "$(ike_sa_id admin)" ]
}

CASES="the_administrators_tunnel_is_up_before up_leaves_the_administrators_tunnel_alone
	a_second_gateway_shares_the_charon reload_changes_only_its_own_connection
	down_removes_only_its_own_connection"
# shellcheck disable=SC2086
run_scenario ipsec_shared_charon $CASES || exit 1
charon_stop $GW
charon_stop $ONPREM
[ -z "${FAILED:-}" ]

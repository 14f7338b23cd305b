#!/usr/bin/env bash
# Point-to-site, end to end in the QEMU guest (Debian's kernel): the hub VNet's gateway of
# tests/data/config/ipsec-transit.json gets a vpnClientConfiguration (pool 172.16.201.0/24,
# IKEv2, certificates of a root this test makes with openssl, one client certificate's
# thumbprint revoked), and a client namespace with its own charon plays a remote user's
# device. The client gets an address from the pool, reaches a VM in the hub and one in
# the transit spoke, an NSG rule of the hub denies one UDP port from the pool, the
# revoked certificate's client is disconnected, `clients` (its bytes the datapath's) and
# the P2S metrics show the connected client, and its counters go once it is gone.
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
export VM_TIMEOUT=${VM_TIMEOUT:-1200}
vm_enter "$@"
. tests/vm/ipsec_helpers.bash

P=vxp2s
GW=$P-gw CLIENT=$P-client HUB=$P-hub SPOKE1=$P-spoke1 SPOKE2=$P-spoke2
DIR=$(mktemp -d /tmp/$P.XXXXXX)
CLIENT_IF_ID=7
SERVE_PID=

# certificate NAME SUBJECT [EXTENSIONS]: NAME.pem and NAME.key, signed by the test's root.
certificate() {
	openssl req -new -newkey rsa:2048 -nodes -keyout "$DIR/$1.key" -out "$DIR/$1.csr" \
		-subj "$2" 2>/dev/null || return 1
	printf '%s\n' "${3:-basicConstraints=CA:FALSE}" >"$DIR/$1.ext"
	openssl x509 -req -in "$DIR/$1.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
		-CAcreateserial -days 30 -out "$DIR/$1.pem" -extfile "$DIR/$1.ext" 2>/dev/null
}

make_certificates() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/ca.key" -out "$DIR/ca.pem" \
		-days 30 -subj "/CN=VnetXdp P2S Test Root" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || return 1
	certificate server "/CN=p2s.vnet-xdp.test" "subjectAltName=DNS:p2s.vnet-xdp.test" &&
	certificate client1 "/CN=client1" &&
	certificate revoked "/CN=revoked-laptop"
	chmod 600 "$DIR/server.key"
}

# The hub gateway with point-to-site clients; no site-to-site connection.
p2s_config() {
	local root revoked
	root=$(openssl x509 -in "$DIR/ca.pem" -outform der | base64 -w0)
	revoked=$(openssl x509 -in "$DIR/revoked.pem" -noout -fingerprint -sha1 | cut -d= -f2)
	jq --arg root "$root" --arg revoked "$revoked" --arg dir "$DIR" '
	  .gateway.virtualNetworkGateways[0] += {"vpnClientServerCertificate": "\($dir)/server.pem",
	    "vpnClientServerKey": "\($dir)/server.key"}
	  | .resources |= map(select(.name != "to-onprem" and .name != "onprem"))
	  | (.resources[] | select(.name == "hub-vpngw") | .properties.vpnClientConfiguration) = {
	      "vpnClientAddressPool": {"addressPrefixes": ["172.16.201.0/24"]},
	      "vpnClientProtocols": ["IkeV2"], "vpnAuthenticationTypes": ["Certificate"],
	      "vpnClientRootCertificates": [{"name": "TestRoot", "properties": {"publicCertData": $root}}],
	      "vpnClientRevokedCertificates": [{"name": "lost-laptop", "properties": {"thumbprint": $revoked}}]}
	  | (.resources[] | select(.name == "hub-nsg") | .properties.securityRules) += [
	      {"name": "DenyClientsUdp5024", "properties": {"priority": 110, "direction": "Inbound",
	        "access": "Deny", "protocol": "Udp", "sourceAddressPrefix": "172.16.201.0/24",
	        "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "5024"}}]
	' tests/data/config/ipsec-transit.json
}

# The remote user's device: two identities, the good one and the revoked one.
client_conf() {
	local name
	echo "connections {"
	for name in client1 revoked; do
		cat <<-CONF
		    $name {
		        version = 2
		        remote_addrs = 198.51.100.1
		        vips = 0.0.0.0
		        proposals = aes256-sha256-modp2048
		        local {
		            auth = pubkey
		            certs = $DIR/$name.pem
		        }
		        remote {
		            auth = pubkey
		            cacerts = $DIR/ca.pem
		        }
		        children {
		            $name {
		                remote_ts = 10.10.0.0/16,10.11.0.0/16
		                esp_proposals = aes256-sha256
		                if_id_in = $CLIENT_IF_ID
		                if_id_out = $CLIENT_IF_ID
		                start_action = none
		            }
		        }
		    }
		CONF
	done
	echo "}"
}

set_up() {
	vm_modules_load || return 1
	make_certificates || { echo "openssl could not make the certificates"; return 1; }
	vm_ns_add $GW $CLIENT $HUB $SPOKE1 $SPOKE2 || return 1
	veth_link $GW uplink0 $CLIENT uplink0
	ip -n $GW addr add 198.51.100.1/24 dev uplink0
	ip -n $CLIENT addr add 198.51.100.5/24 dev uplink0
	vm_host $HUB $GW to-hub 10.10.1.4/16 10.10.0.1
	vm_host $SPOKE1 $GW to-spoke1 10.11.1.4/16 10.11.0.1
	vm_host $SPOKE2 $GW to-spoke2 10.12.1.4/16 10.12.0.1
	vm_xfrm_if $CLIENT ipsec0 uplink0 $CLIENT_IF_ID || return 1
	p2s_config >"$DIR/gw.json" || return 1
	chmod 600 "$DIR/gw.json"
	charon_start $GW || return 1
	charon_start $CLIENT || return 1
	# swanctl itself parses the client's RSA keys: it needs gmp beside lib.sh's plugins
	sed -i 's/^\( *load = random nonce pem pkcs1 pkcs8 x509 pubkey\)$/\1 gmp/' \
		"$(charon_dir $CLIENT)/strongswan.conf"
	# swanctl loads private keys from private/ beside the file it is given
	mkdir -p "$DIR/client/private"
	install -m 600 "$DIR/client1.key" "$DIR/revoked.key" "$DIR/client/private/"
	client_conf >"$DIR/client/swanctl.conf"
	swanctl_load $CLIENT "$DIR/client/swanctl.conf"
}

# client_address: the virtual address charon installed on the client's uplink.
client_address() {
	ip -n $CLIENT -4 -o addr show dev uplink0 | grep -o '172\.16\.201\.[0-9]*' | head -1
}

# connect NAME: the client initiates with that identity and routes the VNets into its
# xfrm interface from its virtual address.
connect() {
	local vip
	swanctl_in $CLIENT --initiate --child "$1" --timeout 60 >"$DIR/initiate-$1.log" 2>&1 ||
		{ tail -5 "$DIR/initiate-$1.log"; return 1; }
	vip=$(client_address)
	[ -n "$vip" ] || { echo "no virtual address on the client"; return 1; }
	for p in 10.10.0.0/16 10.11.0.0/16 10.12.0.0/16; do
		ip -n $CLIENT route replace $p dev ipsec0 src "$vip"
	done
	echo "$vip"
}

up_accepts_the_vpn_client_configuration() {
	vx $GW check -c "$DIR/gw.json" 2>&1 | grep 'not enforced' &&
		{ echo "vpnClientConfiguration accepted but not enforced"; return 1; }
	vx $GW up -c "$DIR/gw.json" || return 1
	vx $GW routes -c "$DIR/gw.json" --vnet spoke1 |
		grep -E ' 172\.16\.201\.0/24 +VirtualNetworkGateway ' || return 1
	! vx $GW routes -c "$DIR/gw.json" --vnet spoke2 | grep -q '172\.16\.201\.0/24'
}

client_gets_an_address_from_the_pool() {
	local vip
	vip=$(connect client1) || { echo "$vip"; charon_log $GW | grep -E 'IKE|auth|cert' | tail -20; return 1; }
	figure "client1 got $vip"
	[[ $vip == 172.16.201.* ]]
}

client_reaches_the_hub_vm() {
	local before after
	before=$(counters_snapshot $GW ipsecgw hub-vpngw)
	ip netns exec $CLIENT ping -c 3 -i 0.3 -W 5 10.10.1.4 || { gateway_dump $GW ipsecgw; return 1; }
	after=$(counters_snapshot $GW ipsecgw hub-vpngw)
	figure "into the clients' tunnel +$(delta "$before" "$after" 2), decrypted +$(delta "$before" "$after" 1)"
}

client_reaches_the_transit_spoke_vm() {
	ip netns exec $CLIENT ping -c 3 -i 0.3 -W 5 10.11.1.4 || { gateway_dump $GW ipsecgw; return 1; }
	tcp_transfer $CLIENT $SPOKE1 10.11.1.4 200000 "$DIR"
}

client_does_not_reach_the_spoke_without_transit() {
	! ip netns exec $CLIENT ping -c 2 -i 0.3 -W 2 10.12.1.4
}

nsg_denies_the_clients_one_udp_port() {
	local before after
	before=$(tunnel_drops $GW ipsecgw hub-vpngw nsg_denied_inbound)
	ip netns exec $HUB timeout 30 nc -u -l 10.10.1.4 5025 >"$DIR/udp5025" &
	for _ in $(seq 100); do
		ip netns exec $HUB ss -Hlun "sport = :5025" | grep -q . && break
		sleep 0.1
	done
	udp_datagrams $CLIENT 10.10.1.4 5024 3
	udp_datagrams $CLIENT 10.10.1.4 5025 1
	for _ in $(seq 50); do grep -q datagram "$DIR/udp5025" && break; sleep 0.1; done
	after=$(tunnel_drops $GW ipsecgw hub-vpngw nsg_denied_inbound)
	figure "to 5024: nsg_denied_inbound ${before:-0} -> ${after:-0}; to 5025: $(wc -l <"$DIR/udp5025") arrived"
	[ $((after - ${before:-0})) -eq 3 ] && grep -q datagram "$DIR/udp5025"
}

udp_datagrams() {
	local i
	for ((i = 0; i < $4; i++)); do
		echo "datagram $i" | ip netns exec "$1" timeout 5 nc -u -q 0 "$2" "$3"
	done
}

# The client's bytes are the datapath's (tunnel_client_counters): at least the 200 kB it
# sent to the spoke, and within what the clients' tunnel let in, which this one client
# alone has used.
clients_lists_the_connected_client() {
	local out tunnel_in
	out=$(vx $GW clients -n ipsecgw -j) || return 1
	tunnel_in=$(vx $GW stats -n ipsecgw -j |
		jq '.tunnels[] | select(.name == "hub-vpngw") | .ingressBytes')
	figure "$(echo "$out" | jq -c '.[] | {identity, address, bytesIn, bytesOut, packetsIn,
		packetsOut}'); the clients' tunnel let in $tunnel_in bytes"
	echo "$out" | jq -e --arg a "$(client_address)" --argjson t "${tunnel_in:-0}" '.[] |
		select(.identity == "CN=client1" and .address == $a and .gateway == "hub-vpngw" and
		.bytesIn >= 200000 and .bytesIn <= $t and .bytesOut > 0 and .packetsIn > 0 and
		.packetsOut > 0 and .since > 0)' >/dev/null || return 1
	vx $GW clients -n ipsecgw | grep -E "^hub-vpngw +$(client_address) .*CN=client1"
}

# The datapath's entries of the clients: how many the gateway's map holds.
client_entries() {
	bpftool -j map dump pinned "$(ls -d /sys/fs/bpf/vnet-xdp/ipsecgw*)/tunnel_client_counters" |
		jq length
}

metrics_count_the_client() {
	local m
	m=$(vx $GW stats -n ipsecgw --prometheus) || return 1
	echo "$m" | grep -E '^vnetxdp_p2s_' | sed 's/^/= /'
	echo "$m" | grep -qE '^vnetxdp_p2s_connections\{gateway="hub-vpngw"\} 1$' &&
	echo "$m" | grep -qE '^vnetxdp_p2s_bytes_total\{gateway="hub-vpngw"\} [1-9]'
}

revoked_client_is_refused() {
	local i
	swanctl_in $CLIENT --terminate --ike client1 --timeout 10 >/dev/null 2>&1
	vx $GW serve -n ipsecgw --listen 127.0.0.1:19469 >"$DIR/serve.log" 2>&1 &
	SERVE_PID=$!
	sleep 2
	swanctl_in $CLIENT --initiate --child revoked --timeout 60 >"$DIR/initiate-revoked.log" 2>&1
	for ((i = 0; i < 20; i++)); do
		swanctl_in $CLIENT --list-sas | grep -q 'revoked.*ESTABLISHED' || break
		sleep 0.5
	done
	figure "$(grep -m1 'revoked' "$DIR/serve.log")"
	kill $SERVE_PID; wait $SERVE_PID 2>/dev/null; SERVE_PID=
	! swanctl_in $CLIENT --list-sas | grep -q 'revoked.*ESTABLISHED' || { echo "still connected"; return 1; }
	grep -q 'certificate .* is revoked: disconnected' "$DIR/serve.log" || { cat "$DIR/serve.log"; return 1; }
	! vx $GW clients -n ipsecgw -j | jq -e '.[] | select(.identity == "CN=revoked-laptop")' >/dev/null
}

# client1 disconnected (above): serve's look deleted its counters, so a client given the
# address next starts from zero.
gone_clients_counters_are_deleted() {
	local entries i
	vx $GW serve -n ipsecgw --listen 127.0.0.1:19469 >"$DIR/serve2.log" 2>&1 &
	SERVE_PID=$!
	for ((i = 0; i < 20; i++)); do
		entries=$(client_entries)
		[ "$entries" = 0 ] && break
		sleep 0.5
	done
	kill $SERVE_PID; wait $SERVE_PID 2>/dev/null; SERVE_PID=
	figure "entries once no client is connected: $entries"
	[ "$entries" = 0 ]
}

down_removes_it() {
	local xfrm
	xfrm=$(tunnel_interface ipsecgw)
	vx $GW down -n ipsecgw || return 1
	! ip -n $GW link show "$xfrm" 2>/dev/null
}

CASES="up_accepts_the_vpn_client_configuration client_gets_an_address_from_the_pool
	client_reaches_the_hub_vm client_reaches_the_transit_spoke_vm
	client_does_not_reach_the_spoke_without_transit nsg_denies_the_clients_one_udp_port
	clients_lists_the_connected_client metrics_count_the_client revoked_client_is_refused
	gone_clients_counters_are_deleted down_removes_it"
fail_unless_the_datapath_loads $CASES

start=$SECONDS
if ! set_up >"$DIR/setup.log" 2>&1; then
	fail ipsec_p2s_setup "$(tail -5 "$DIR/setup.log")"
	exit 1
fi
echo "    (set_up: $((SECONDS - start))s)"
for t in $CASES; do
	start=$SECONDS
	run_case_reporting $t
	echo "    ($t: $((SECONDS - start))s)"
done
[ -n "$SERVE_PID" ] && kill $SERVE_PID
charon_stop $GW
charon_stop $CLIENT
[ -z "${FAILED:-}" ]

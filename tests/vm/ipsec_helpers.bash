# Helpers the IPsec scenarios (tests/vm/ipsec_*.sh) share, on top of tests/vm/lib.sh:
# vnet-xdp gateways in guest namespaces, each with its own charon, and their per-tunnel
# counters. (Named .bash so the vm suite does not run it as a test.)

# figure TEXT: a measured figure of a case, printed under its PASS or FAIL line.
figure() { echo "= $*"; }

# run_case_reporting CASE: run_case, with the case's figures under a passing case too.
run_case_reporting() {
	local out
	if out=$("$1" 2>&1); then
		pass "$1"
		printf '%s\n' "$out" | sed -n 's/^= /    = /p'
	else
		fail "$1"
		printf '%s\n' "$out" | sed 's/^/    | /' | tail -25
	fi
}

# run_scenario NAME CASES...: the verifier check, the scenario's set-up (${SET_UP:-set_up},
# failing as NAME_setup with its log's tail), then each case with its figures and time.
run_scenario() {
	local name=$1 start t
	shift
	fail_unless_the_datapath_loads "$@"
	start=$SECONDS
	if ! "${SET_UP:-set_up}" >"$DIR/setup.log" 2>&1; then
		fail "${name}_setup" "$(tail -5 "$DIR/setup.log")"
		return 1
	fi
	echo "    (set_up: $((SECONDS - start))s)"
	for t in "$@"; do
		start=$SECONDS
		run_case_reporting "$t"
		echo "    ($t: $((SECONDS - start))s)"
	done
}

# vx NS ARGS...: vnet-xdp in namespace NS, talking to that namespace's charon.
vx() {
	local ns=$1
	shift
	STRONGSWAN_CONF=$(charon_dir "$ns")/strongswan.conf \
		VNET_XDP_VICI="unix://$(charon_dir "$ns")/charon.vici" \
		nsenter --net=/run/netns/"$ns" "$VNET_XDP" "$@"
}

# tunnel_interface GATEWAY: the xfrm interface of the gateway's (one) tunnel, and its
# if_id as ip prints it (0x...), as `up` recorded them in the state.
tunnel_interface() { jq -r '.tunnels[0].interface' "/run/vnet-xdp/$1.json"; }
tunnel_if_id() { printf '0x%x' "$(jq -r '.tunnels[0].ifId' "/run/vnet-xdp/$1.json")"; }

# tunnel_field NS GATEWAY TUNNEL FIELD: one member of the tunnel's entry in `stats -j`.
tunnel_field() {
	vx "$1" stats -n "$2" -j | jq -r --arg t "$3" --arg f "$4" \
		'.tunnels[] | select(.name == $t) | .[$f]'
}

# tunnel_spi_packets NS GATEWAY TUNNEL: ESP packets over all SPIs of the tunnel's peer.
tunnel_spi_packets() {
	vx "$1" stats -n "$2" -j | jq -r --arg t "$3" \
		'[.tunnels[] | select(.name == $t) | .spis[].packets] | add // 0'
}

# tunnel_drops NS GATEWAY TUNNEL REASON
tunnel_drops() {
	vx "$1" stats -n "$2" -j | jq -r --arg t "$3" --arg r "$4" \
		'.tunnelDrops[] | select(.tunnel == $t and .reason == $r) | .packets'
}

# wait_tunnel_up NS GATEWAY TUNNEL SECONDS: until charon has the tunnel's SAs (as our
# stats report them).
wait_tunnel_up() {
	local i
	for ((i = 0; i < $4 * 2; i++)); do
		[ "$(tunnel_field "$1" "$2" "$3" up)" = 1 ] && return 0
		sleep 0.5
	done
	echo "tunnel $3 of $2 not up after $4 s"
	swanctl_in "$1" --list-sas
	charon_log "$1" | grep -E 'IKE|CHILD|error|failed' | tail -20
	return 1
}

# vm_host NS GW_NS GW_IF ADDR/LEN GW_ADDR: a VM behind a gateway interface.
vm_host() {
	veth_link "$1" eth0 "$2" "$3"
	ip -n "$2" addr add "$5/${4#*/}" dev "$3"
	ip -n "$1" addr add "$4" dev eth0
	ip -n "$1" route add default via "$5"
	vm_nic_setup "$1" eth0
}

# counters_snapshot NS GATEWAY TUNNEL: "ingressPackets egressPackets espPackets
# ingressBytes egressBytes" of the tunnel.
counters_snapshot() {
	vx "$1" stats -n "$2" -j | jq -r --arg t "$3" \
		'.tunnels[] | select(.name == $t) |
		 "\(.ingressPackets) \(.egressPackets) \(.espPackets) \(.ingressBytes) \(.egressBytes)"'
}

# delta BEFORE AFTER INDEX: the difference of one field of two snapshots (1-based).
delta() {
	local a b
	a=$(echo "$1" | cut -d' ' -f"$3")
	b=$(echo "$2" | cut -d' ' -f"$3")
	echo $((b - a))
}

# tcp_transfer SRC_NS DST_NS DST_ADDR BYTES DIR: sends BYTES random bytes with nc and
# checks they arrived intact.
tcp_transfer() {
	local src=$1 dst=$2 addr=$3 bytes=$4 dir=$5 server
	head -c "$bytes" /dev/urandom >"$dir/payload"
	ip netns exec "$dst" timeout 120 nc -l -N "$addr" 5001 >"$dir/received" &
	server=$!
	# a connection before the listener is up is refused, silently without nc -v
	for _ in $(seq 100); do
		ip netns exec "$dst" ss -Hltn "sport = :5001" | grep -q . && break
		sleep 0.1
	done
	ip netns exec "$src" timeout 120 nc -N "$addr" 5001 <"$dir/payload" || { kill $server; return 1; }
	wait $server || return 1
	[ "$(sha256sum <"$dir/payload")" = "$(sha256sum <"$dir/received")" ] ||
		{ echo "payload changed on the way"; return 1; }
}

# gateway_dump NS GATEWAY: what the datapath did, for a failing case's output.
gateway_dump() {
	echo "--- $2: datapath, drops, tunnels"
	vx "$1" stats -n "$2" -j | jq -c '[.datapath[] | select(.packets > 0) |
		"\(.action)=\(.packets)"], [.drops[] | select(.packets > 0) |
		"\(.reason)=\(.packets)"], [.tunnels[] | del(.spis)], [.tunnelDrops[] |
		select(.packets > 0)]'
	ip -n "$1" -s link show | grep -A3 -E "vx[0-9]|to-|uplink" | grep -vE "^ +link|altname" | head -30
	ip -n "$1" route
	ip -n "$1" -s xfrm state | grep -E "^src|if_id|lifetime current" -A1 | head -20
}

# VNet-to-VNet: vnet-a 10.1.0.0/16 behind gateway 192.0.2.1, vnet-b 10.2.0.0/16 behind
# 192.0.2.2; $KEY is the shared key.
# v2v_config GATEWAY LOCAL_VNG ADDRESS IFACE VNET: both VNets, both gateways with their
# public IPs and both connections; the gateway section binds this side only.
v2v_config() {
	cat <<-JSON
	{
	  "gateway": {
	    "name": "$1",
	    "interfaces": [
	      {"name": "$4", "virtualNetwork": "$5"},
	      {"name": "uplink0", "role": "uplink"}
	    ],
	    "virtualNetworks": [{"name": "$5"}],
	    "virtualNetworkGateways": [{"name": "$2", "address": "$3"}]
	  },
	  "resources": [
	    {"type": "Microsoft.Network/virtualNetworks", "name": "vnet-a",
	     "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
	       "subnets": [{"name": "default", "properties": {"addressPrefix": "10.1.1.0/24"}},
	                   {"name": "GatewaySubnet", "properties": {"addressPrefix": "10.1.255.0/27"}}]}},
	    {"type": "Microsoft.Network/virtualNetworks", "name": "vnet-b",
	     "properties": {"addressSpace": {"addressPrefixes": ["10.2.0.0/16"]},
	       "subnets": [{"name": "default", "properties": {"addressPrefix": "10.2.1.0/24"}},
	                   {"name": "GatewaySubnet", "properties": {"addressPrefix": "10.2.255.0/27"}}]}},
	    {"type": "Microsoft.Network/publicIPAddresses", "name": "pip-a", "properties": {"ipAddress": "192.0.2.1"}},
	    {"type": "Microsoft.Network/publicIPAddresses", "name": "pip-b", "properties": {"ipAddress": "192.0.2.2"}},
	    {"type": "Microsoft.Network/virtualNetworkGateways", "name": "vng-a",
	     "properties": {"ipConfigurations": [{"name": "c", "properties": {
	       "subnet": {"id": "vnet-a/GatewaySubnet"}, "publicIPAddress": {"id": "pip-a"}}}]}},
	    {"type": "Microsoft.Network/virtualNetworkGateways", "name": "vng-b",
	     "properties": {"ipConfigurations": [{"name": "c", "properties": {
	       "subnet": {"id": "vnet-b/GatewaySubnet"}, "publicIPAddress": {"id": "pip-b"}}}]}},
	    {"type": "Microsoft.Network/connections", "name": "a-to-b",
	     "properties": {"connectionType": "Vnet2Vnet", "sharedKey": "$KEY", "dpdTimeoutSeconds": 45,
	       "virtualNetworkGateway1": {"id": "vng-a"}, "virtualNetworkGateway2": {"id": "vng-b"}}},
	    {"type": "Microsoft.Network/connections", "name": "b-to-a",
	     "properties": {"connectionType": "Vnet2Vnet", "sharedKey": "$KEY", "dpdTimeoutSeconds": 45,
	       "virtualNetworkGateway1": {"id": "vng-b"}, "virtualNetworkGateway2": {"id": "vng-a"}}}
	  ]
	}
	JSON
}

# fail_unless_the_datapath_loads CASE...: loads the XDP/tc object once on this kernel (in
# a private mount namespace with its own bpffs, so no pin outlives the probe). The guest
# runs Debian's own kernel, on which the datapath must load: when its verifier refuses a
# program, every case fails with the verifier's own words, and the script ends
# (tests/vm/datapath_loads.sh checks the loading on its own).
fail_unless_the_datapath_loads() {
	local obj=${BUILD:-build}/vnet_xdp.bpf.o log reason case
	log=$(mktemp)
	if unshare -m sh -c "mount -t bpf bpf /sys/fs/bpf && mkdir /sys/fs/bpf/probe &&
		bpftool prog loadall $obj /sys/fs/bpf/probe" >"$log" 2>&1; then
		rm -f "$log"
		return 0
	fi
	reason=$(grep -E "invalid|unbounded|too large|too complex|failed to load|load failed" "$log" |
		head -2 | tr '\n' ' ')
	for case in "$@"; do
		fail "$case" "the BPF verifier of kernel $(uname -r) refuses the datapath: ${reason:-no reason in the log}"
	done
	rm -f "$log"
	exit 1
}

# The site-to-site topology the scenarios share: the gateway GW (uplink 198.51.100.1) and
# the on-premises device ONPREM (198.51.100.2, xfrm interface ipsec0 with ONPREM_IF_ID),
# the hub and two spokes behind the gateway, HOST on the device's LAN.
# s2s_topology_up PREFIX...: that, with routes into the tunnel for each VNet PREFIX.
s2s_topology_up() {
	local p
	vm_modules_load || return 1
	vm_ns_add $GW $ONPREM $HOST $HUB $SPOKE1 $SPOKE2 || return 1
	veth_link $GW uplink0 $ONPREM uplink0
	ip -n $GW addr add 198.51.100.1/24 dev uplink0
	ip -n $ONPREM addr add 198.51.100.2/24 dev uplink0
	vm_host $HUB $GW to-hub 10.10.1.4/16 10.10.0.1
	vm_host $SPOKE1 $GW to-spoke1 10.11.1.4/16 10.11.0.1
	vm_host $SPOKE2 $GW to-spoke2 10.12.1.4/16 10.12.0.1
	vm_host $HOST $ONPREM lan 192.168.50.10/24 192.168.50.1
	vm_xfrm_if $ONPREM ipsec0 uplink0 $ONPREM_IF_ID || return 1
	for p in "$@"; do
		ip -n $ONPREM route add "$p" dev ipsec0 || return 1
	done
}

# ping_counted SRC_NS DST: 3 echoes that must each cross GW's tunnel to-onprem once each
# way.
ping_counted() {
	local before after
	before=$(counters_snapshot $GW ipsecgw to-onprem)
	ip netns exec "$1" ping -c 3 -i 0.3 -W 5 "$2" || return 1
	after=$(counters_snapshot $GW ipsecgw to-onprem)
	figure "into the tunnel +$(delta "$before" "$after" 2), ESP +$(delta "$before" "$after" 3)," \
		"decrypted +$(delta "$before" "$after" 1)"
	[ "$(delta "$before" "$after" 2)" -eq 3 ] && [ "$(delta "$before" "$after" 3)" -eq 3 ] &&
	[ "$(delta "$before" "$after" 1)" -eq 3 ]
}

# onprem_connection NAME VERSION ESP_PROPOSALS [SELECTOR...]: one connection of the
# on-premises device to the gateway with the pre-shared key of onprem_secret: Azure's
# default IKE proposal among what it offers, never started by the device itself, one
# child per SELECTOR (its traffic selector both ways; default 0.0.0.0/0, any IPv4
# traffic), the first named NAME, the next NAME-2, NAME-3...
onprem_connection() {
	local name=$1 version=$2 esp=$3 selector child n=0
	shift 3
	[ $# -gt 0 ] || set -- 0.0.0.0/0
	cat <<-CONF
	    $name {
	        version = $version
	        aggressive = no
	        local_addrs = 198.51.100.2
	        remote_addrs = 198.51.100.1
	        proposals = aes256-sha1-modp1024
	        local {
	            auth = psk
	            id = 198.51.100.2
	        }
	        remote {
	            auth = psk
	            id = 198.51.100.1
	        }
	        children {
	CONF
	for selector; do
		n=$((n + 1))
		child=$name
		[ $n -eq 1 ] || child=$name-$n
		cat <<-CONF
	            $child {
	                local_ts = $selector
	                remote_ts = $selector
	                esp_proposals = $esp
	                if_id_in = $ONPREM_IF_ID
	                if_id_out = $ONPREM_IF_ID
	                start_action = none
	            }
	CONF
	done
	cat <<-CONF
	        }
	    }
	CONF
}

# onprem_secret: the device's secrets section; the key is the one of
# tests/data/config/ipsec-transit.json, quotes included.
onprem_secret() {
	cat <<-'CONF'
	secrets {
	    ike-azure {
	        id-a = 198.51.100.1
	        id-b = 198.51.100.2
	        secret = "s3cret \"quoted\""
	    }
	}
	CONF
}

# onprem_conf_azure: the device of the IKEv2 scenarios, its one connection named azure.
onprem_conf_azure() {
	echo "connections {"
	onprem_connection azure 2 aes256gcm16
	echo "}"
	onprem_secret
}

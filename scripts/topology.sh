# The hub-and-two-spokes topology that the demo and the end-to-end tests share:
# a gateway namespace with one veth per VNet, and one VM namespace per VNet.
#
#   PREFIX-hub    eth0 10.10.1.4/16 fd00:10:0:1::4/48 --- to-hub    (10.10.0.1, fd00:10::1)
#   PREFIX-spoke1 eth0 10.11.1.4/16 fd00:11:0:1::4/48 --- to-spoke1 (10.11.0.1, fd00:11::1)
#   PREFIX-spoke2 eth0 10.12.1.4/16 fd00:12:0:1::4/48 --- to-spoke2 (10.12.0.1, fd00:12::1)
#                                                       PREFIX-gw
#   PREFIX-internet eth0 198.51.100.2/24 ------------ uplink0   (198.51.100.1)
# hub is peered with spoke1 and spoke2; the spokes are not peered with each other.
# Every MAC is fixed (02:00:00:00:NN:HH, NN the VNet's octet, HH the host) so that
# packet tests know the bytes to expect.
# Source it, then call topology_up / topology_config / topology_down.

TOPOLOGY_VNETS="hub:10 spoke1:11 spoke2:12"

topology_up() {
	local prefix=$1 entry vnet n
	ip netns add "$prefix-gw"
	ip -n "$prefix-gw" link set lo up
	for entry in $TOPOLOGY_VNETS; do
		vnet=${entry%%:*} n=${entry##*:}
		ip netns add "$prefix-$vnet"
		ip -n "$prefix-$vnet" link set lo up
		ip link add "to-$vnet" netns "$prefix-gw" type veth peer name eth0 netns "$prefix-$vnet"
		ip -n "$prefix-gw" link set "to-$vnet" address "02:00:00:00:$n:01" up
		ip -n "$prefix-$vnet" link set eth0 address "02:00:00:00:$n:04"
		ip -n "$prefix-gw" addr add "10.$n.0.1/16" dev "to-$vnet"
		ip -n "$prefix-gw" addr add "fd00:$n::1/48" dev "to-$vnet" nodad
		ip -n "$prefix-$vnet" link set eth0 up
		ip -n "$prefix-$vnet" addr add "10.$n.1.4/16" dev eth0
		ip -n "$prefix-$vnet" addr add "fd00:$n:0:1::4/48" dev eth0 nodad
		ip -n "$prefix-$vnet" route add default via "10.$n.0.1"
		ip -n "$prefix-$vnet" -6 route add default via "fd00:$n::1"
		vm_nic_setup "$prefix-$vnet" eth0
	done
	ip netns add "$prefix-internet"
	ip -n "$prefix-internet" link set lo up
	ip link add uplink0 netns "$prefix-gw" type veth peer name eth0 netns "$prefix-internet"
	ip -n "$prefix-gw" link set uplink0 address 02:00:00:00:99:01 up
	ip -n "$prefix-gw" addr add 198.51.100.1/24 dev uplink0
	ip -n "$prefix-internet" link set eth0 address 02:00:00:00:99:02 up
	ip -n "$prefix-internet" addr add 198.51.100.2/24 dev eth0
	vm_nic_setup "$prefix-internet" eth0
}

# A VM's NIC keeps the kernel's default offloads, transmit checksum offload on, as a VM
# or container on a veth or tap has them (VM_TX_CHECKSUM=off switches it off for a run);
# GRO on, so that frames XDP redirects into the veth are delivered (veth needs NAPI).
vm_nic_setup() {
	ip netns exec "$1" ethtool -K "$2" gro on ${VM_TX_CHECKSUM:+tx "$VM_TX_CHECKSUM"} \
		>/dev/null 2>&1 || true
}

topology_down() {
	local prefix=$1 ns
	for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-" || true); do
		ip netns del "$ns" 2>/dev/null || true
	done
}

# The embedded default config, in Azure's own ARM JSON (properties nested).
topology_config() {
	local gateway=$1
	cat <<JSON
{
  "gateway": {
    "name": "$gateway",
    "interfaces": [
      {"name": "to-hub", "virtualNetwork": "hub"},
      {"name": "to-spoke1", "virtualNetwork": "spoke1"},
      {"name": "to-spoke2", "virtualNetwork": "spoke2"},
      {"name": "uplink0", "role": "uplink"}
    ],
    "virtualNetworks": [
      {"name": "hub", "vip": "203.0.113.10"},
      {"name": "spoke1", "vip": "203.0.113.11"},
      {"name": "spoke2", "vip": "203.0.113.12"}
    ],
    "metrics": {"listen": "127.0.0.1:9469"}
  },
  "resources": [
    {
      "type": "Microsoft.Network/virtualNetworks",
      "name": "hub",
      "location": "westeurope",
      "properties": {
        "addressSpace": {"addressPrefixes": ["10.10.0.0/16", "fd00:10::/48"]},
        "subnets": [
          {"name": "default", "properties": {"addressPrefixes": ["10.10.1.0/24", "fd00:10:0:1::/64"]}}
        ],
        "virtualNetworkPeerings": [
          {"name": "hub-to-spoke1", "properties": {
            "remoteVirtualNetwork": {"id": "[resourceId('Microsoft.Network/virtualNetworks', 'spoke1')]"},
            "allowVirtualNetworkAccess": true, "allowForwardedTraffic": false,
            "allowGatewayTransit": false, "useRemoteGateways": false}},
          {"name": "hub-to-spoke2", "properties": {
            "remoteVirtualNetwork": {"id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo/providers/Microsoft.Network/virtualNetworks/spoke2"},
            "allowVirtualNetworkAccess": true}}
        ]
      }
    },
    {
      "type": "Microsoft.Network/virtualNetworks",
      "name": "spoke1",
      "location": "westeurope",
      "properties": {
        "addressSpace": {"addressPrefixes": ["10.11.0.0/16", "fd00:11::/48"]},
        "subnets": [
          {"name": "default", "properties": {"addressPrefixes": ["10.11.1.0/24", "fd00:11:0:1::/64"]}}
        ],
        "virtualNetworkPeerings": [
          {"name": "spoke1-to-hub", "properties": {
            "remoteVirtualNetwork": {"id": "[resourceId('Microsoft.Network/virtualNetworks', 'hub')]"},
            "allowVirtualNetworkAccess": true}}
        ]
      }
    },
    {
      "type": "Microsoft.Network/virtualNetworks",
      "name": "spoke2",
      "location": "westeurope",
      "properties": {
        "addressSpace": {"addressPrefixes": ["10.12.0.0/16", "fd00:12::/48"]},
        "subnets": [
          {"name": "default", "properties": {"addressPrefixes": ["10.12.1.0/24", "fd00:12:0:1::/64"]}}
        ],
        "virtualNetworkPeerings": [
          {"name": "spoke2-to-hub", "properties": {
            "remoteVirtualNetwork": {"id": "hub"},
            "allowVirtualNetworkAccess": true}}
        ]
      }
    }
  ]
}
JSON
}

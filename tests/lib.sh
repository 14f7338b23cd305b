# Shared by the shell test suites: result lines the runner counts, and network
# namespace helpers. Every namespace name carries the suite's prefix so that a
# suite only ever removes what it made.

VNET_XDP=${VNET_XDP:-$PWD/${BUILD:-build}/vnet-xdp}

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; FAILED=1; }
skip() { echo "SKIP $1: $2"; }

# Runs one test case: a shell function; its name is the test's name.
run_case() {
	local name=$1
	shift
	local out
	if out=$("$name" "$@" 2>&1); then
		pass "$name"
	else
		fail "$name"
		printf '%s\n' "$out" | sed 's/^/    | /' | tail -25
	fi
}

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		skip "$1" "needs root for network namespaces and BPF"
		exit 0
	fi
}

# Runs a command inside a namespace while keeping the host's mount namespace, so
# the gateway's bpffs pins stay visible from one command to the next.
in_ns() { local ns=$1; shift; nsenter --net=/run/netns/"$ns" "$@"; }

# veth_link NS_A IF_A NS_B IF_B: a veth pair between two namespaces, both ends up.
veth_link() {
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
}

# vm_nic_setup NS IF: a VM's NIC as scripts/topology.sh sets it up (kernel's default
# offloads; VM_TX_CHECKSUM=off switches transmit checksum offload off).
. scripts/topology.sh

ns_cleanup() {
	local prefix=$1 ns
	for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix" || true); do
		ip netns del "$ns" 2>/dev/null || true
	done
}

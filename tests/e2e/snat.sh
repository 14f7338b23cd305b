#!/usr/bin/env bash
# End to end: outbound SNAT. Three VM namespaces (hub, spoke1, spoke2) reach an Internet
# namespace through the gateway with real TCP (curl, nc, iperf3) and UDP, with the VMs'
# and the Internet host's transmit checksum offload ON (the veths leave checksums
# partial); the Internet side captures and must see only the VIPs. Then: port
# exhaustion with 4 ports per VIP, a reply after the idle timeout, and an Internet host
# that tries to open connections to a VM.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_snat vxsnat snat
PY=/usr/bin/python3
VIPS="203.0.113.10 203.0.113.11 203.0.113.12"
INTERNET=198.51.100.2
in_vm() { local ns=$1; shift; in_ns "$PREFIX-$ns" "$@"; }
# Servers run as direct children (nsenter execs them) so that their ids are known and
# they end with the test.
SERVERS=()
serve_in() { local ns=$1; shift; nsenter --net=/run/netns/"$PREFIX-$ns" "$@" & SERVERS+=($!); }
e2e_cleanup() { [ ${#SERVERS[@]} -eq 0 ] || kill "${SERVERS[@]}" 2>/dev/null; }

for tool in curl iperf3 tcpdump nc jq; do
	command -v $tool >/dev/null || { skip e2e_snat "$tool is not installed (scripts/install-deps.sh)"; exit 0; }
done
[ -x $PY ] || { skip e2e_snat "python3 is not installed"; exit 0; }

e2e_topology "$WORK/topology.json"
# The gateway reaches the Internet by its peer; the Internet reaches the VIPs by the
# gateway (they are routed to it, as Azure routes a VIP to its load balancer).
ip -n $PREFIX-gw route add default via $INTERNET
ip -n $PREFIX-internet route add 203.0.113.0/24 via 198.51.100.1
ip -n $PREFIX-internet route add 10.0.0.0/8 via 198.51.100.1
# Transmit checksum offload on, the way VMs and hosts run by default.
for ns in hub spoke1 spoke2 internet; do
	ip netns exec $PREFIX-$ns ethtool -K eth0 tx on >/dev/null 2>&1
done
# 4 ports per VIP, one block: the VM's limit (exhaustion), UDP idle timeout 3 s (expiry), short cool-down.
jq '.gateway.limits = {"snatPortMin": 20000, "snatPortMax": 20003,
	"udpIdleTimeoutSeconds": 3, "tcpTransitoryTimeoutSeconds": 2}' "$WORK/topology.json" >"$CONFIG"

vip_stat() { stat_value ".snat[] | select(.vip == \"$1\") | .$2"; }

# The Internet host: a web server, an iperf3 server, a UDP echo that also answers
# once more after 6 s (later than the idle timeout), and a TCP sink that keeps
# connections open. Everything it receives is captured.
serve_in internet tcpdump -i eth0 -nn -U -w "$WORK/internet.pcap" ip 2>/dev/null
echo hello-from-the-internet >"$WORK/index.html"
serve_in internet $PY -m http.server 8080 --bind $INTERNET --directory "$WORK" >/dev/null 2>&1
serve_in internet iperf3 -s -B $INTERNET -p 5201 >/dev/null 2>&1
cat >"$WORK/udp_echo.py" <<'EOF'
import socket, threading, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("198.51.100.2", 9000))
def late(addr):
    time.sleep(6)
    u.sendto(b"late", addr)
while True:
    data, addr = u.recvfrom(2048)
    u.sendto(b"echo:" + data, addr)
    if data.startswith(b"expire"):
        threading.Thread(target=late, args=(addr,), daemon=True).start()
EOF
cat >"$WORK/tcp_echo.py" <<'EOF'
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.51.100.2", 7000))
s.listen(64)
def serve(c):
    while True:
        data = c.recv(4096)
        if not data:
            return
        c.sendall(data)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
# (a background job's stdin is /dev/null: the servers read their code from files)
serve_in internet $PY "$WORK/udp_echo.py" >/dev/null 2>&1
serve_in internet $PY "$WORK/tcp_echo.py" >/dev/null 2>&1
# Python servers take a while to start on a loaded machine: wait until each listens.
servers_listening() {
	local sockets
	sockets=$(ip netns exec $PREFIX-internet ss -Hlntu)
	for port in 8080 5201 7000 9000; do
		echo "$sockets" | grep -q ":$port " || return 1
	done
}
for _ in $(seq 100); do servers_listening && break; sleep 0.2; done
servers_listening || echo "the Internet host's servers did not start listening"

up_with_snat() {
	gw up -c "$CONFIG" || return 1
	gw routes --vnet hub -j | jq -e '.[] | select(.addressPrefix == "0.0.0.0/0" and .nextHopType == "Internet")'
}

tcp_from_every_vm_with_curl() {
	local vm body
	for vm in hub spoke1 spoke2; do
		body=$(in_vm $vm curl -s --max-time 15 http://$INTERNET:8080/index.html) ||
			{ echo "curl from $vm failed"; return 1; }
		[ "$body" = hello-from-the-internet ] || { echo "$vm got '$body'"; return 1; }
	done
}

tcp_bulk_transfer_comes_back_intact() {
	head -c 2097152 /dev/urandom >"$WORK/sent"
	# The sink echoes: what comes back must be what went out.
	in_vm spoke1 timeout 10 $PY - "$WORK/sent" <<'EOF'
import socket, sys
data = open(sys.argv[1], "rb").read()
c = socket.create_connection(("198.51.100.2", 7000), timeout=5)
got = bytearray()
sent = 0
while sent < len(data):
    sent += c.send(data[sent:sent + 65536])
    while True:
        c.setblocking(False)
        try:
            chunk = c.recv(1 << 20)
        except BlockingIOError:
            break
        finally:
            c.setblocking(True)
        got += chunk
c.settimeout(5)
while len(got) < len(data):
    chunk = c.recv(1 << 20)
    if not chunk:
        break
    got += chunk
sys.exit(0 if bytes(got) == data else 1)
EOF
}

udp_round_trip_from_every_vm() {
	local vm
	for vm in hub spoke1 spoke2; do
		in_vm $vm $PY - <<'EOF' || { echo "no UDP echo for $vm"; return 1; }
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(3)
u.sendto(b"ping", ("198.51.100.2", 9000))
sys.exit(0 if u.recvfrom(2048)[0] == b"echo:ping" else 1)
EOF
	done
}

iperf3_through_snat() {
	local bps
	in_vm hub iperf3 -c $INTERNET -p 5201 -t 3 -J >"$WORK/iperf.json" || return 1
	bps=$(jq -r '.end.sum_received.bits_per_second' "$WORK/iperf.json")
	echo "iperf3 hub -> internet through SNAT: $(awk -v b="$bps" 'BEGIN { printf "%.2f Gbit/s", b / 1e9 }')"
	awk -v b="$bps" 'BEGIN { exit !(b > 1e6) }'
}

ping_from_every_vm() {
	local vm
	for vm in hub spoke1 spoke2; do
		in_vm $vm ping -c 2 -i 0.2 -W 2 $INTERNET >/dev/null || { echo "no ping from $vm"; return 1; }
	done
}

internet_sees_only_the_vips() {
	local sources bad
	sleep 0.5
	sources=$(tcpdump -nn -r "$WORK/internet.pcap" 2>/dev/null |
		awk '$2 == "IP" { split($3, a, "."); print a[1] "." a[2] "." a[3] "." a[4] }' | sort -u)
	echo "sources seen by the Internet host: $(echo $sources)"
	[ -n "$sources" ] || { echo "nothing captured"; return 1; }
	bad=$(echo "$sources" | grep -v -x -e $INTERNET -e 203.0.113.10 -e 203.0.113.11 -e 203.0.113.12)
	[ -z "$bad" ] || { echo "private or unexpected sources: $bad"; return 1; }
	for vip in $VIPS; do
		echo "$sources" | grep -qx "$vip" || { echo "$vip never seen"; return 1; }
	done
}

exhaustion_drops_new_flows_and_keeps_live_ones() {
	local before after i held
	# A port of a block carries one flow at a time: the earlier cases' mappings of the hub
	# VM hold its 4 ports until they idle out (UDP 3 s, closed TCP 2 s, cool-down).
	for i in $(seq 60); do
		held=$(gw snat -n "$GATEWAY" -j --src 10.10.1.4 --state active | jq '.mappings // . | length')
		[ "$held" = 0 ] && break
		sleep 0.5
	done
	[ "$held" = 0 ] || { echo "the hub VM still holds $held mappings"; gw snat -n "$GATEWAY" --src 10.10.1.4; return 1; }
	sleep 2.5 # the cool-down (the transitory timeout) past their expiry
	before=$(stat_value '[.drops[] | select(.reason == "snat_vm_limit") | .packets] | add // 0')
	# 4 connections to 198.51.100.2:7000 take the 4 ports of the hub VM's block (the
	# range is smaller than limits.snatMappingsPerVm: one block); a fifth finds none;
	# the four still carry data afterwards.
	in_vm hub $PY - <<'EOF'
import socket, sys
conns = [socket.create_connection(("198.51.100.2", 7000), timeout=3) for _ in range(4)]
try:
    socket.create_connection(("198.51.100.2", 7000), timeout=2)
    print("a fifth connection got through")
    sys.exit(1)
except OSError:
    pass
for i, c in enumerate(conns):
    c.sendall(b"still here %d" % i)
    if c.recv(100) != b"still here %d" % i:
        print("connection", i, "lost")
        sys.exit(1)
EOF
	[ $? -eq 0 ] || return 1
	after=$(stat_value '[.drops[] | select(.reason == "snat_vm_limit") | .packets] | add // 0')
	echo "snat_vm_limit drops: $before -> $after"
	[ "$after" -gt "$before" ]
}

reply_after_idle_timeout_is_dropped() {
	local before after
	before=$(stat_value '(.drops[] | select(.reason == "snat_expired") | .packets)')
	# The echo answers at once, then again after 6 s: the mapping idles out after 3 s.
	in_vm spoke2 $PY - <<'EOF' || return 1
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(3)
u.sendto(b"expire", ("198.51.100.2", 9000))
if u.recvfrom(2048)[0] != b"echo:expire":
    sys.exit(1)
u.settimeout(9)
try:
    print("late reply arrived:", u.recvfrom(2048)[0])
    sys.exit(1)
except socket.timeout:
    pass
EOF
	after=$(stat_value '(.drops[] | select(.reason == "snat_expired") | .packets)')
	echo "snat_expired drops: $before -> $after"
	[ "$after" -gt "$before" ]
}

gc_collects_expired_mappings() {
	local expired
	expired=$(gw snat -n $GATEWAY --gc -j | jq -r '.gc.mappingsExpired')
	echo "GC removed $expired expired mappings"
	[ "$expired" -ge 1 ]
}

internet_cannot_open_a_connection_to_a_vm() {
	local unsolicited_before uplink_before
	unsolicited_before=$(stat_value '(.drops[] | select(.reason == "snat_unsolicited") | .packets)')
	uplink_before=$(stat_value '(.drops[] | select(.reason == "uplink_unsolicited") | .packets)')
	serve_in hub timeout 12 nc -l -p 2222 >/dev/null 2>&1
	sleep 0.3
	# To the VM's own address, and to the VIP on every port the pool hands out.
	if in_vm internet nc -z -w 2 10.10.1.4 2222; then echo "reached the VM directly"; return 1; fi
	for port in 2222 20000 20001 20002 20003; do
		if in_vm internet nc -z -w 2 203.0.113.10 $port; then echo "reached the VM via the VIP:$port"; return 1; fi
	done
	if in_vm internet nc -u -z -w 1 203.0.113.10 20000; then :; fi
	[ "$(stat_value '(.drops[] | select(.reason == "snat_unsolicited") | .packets)')" -gt "$unsolicited_before" ] || { echo "no snat_unsolicited drop"; return 1; }
	[ "$(stat_value '(.drops[] | select(.reason == "uplink_unsolicited") | .packets)')" -gt "$uplink_before" ] || { echo "no uplink_unsolicited drop"; return 1; }
}

metrics_show_snat_per_vip() {
	local text
	text=$(gw stats -n $GATEWAY --prometheus)
	for family in vnetxdp_snat_ports_in_use vnetxdp_snat_ports_capacity vnetxdp_snat_flows_total \
		vnetxdp_snat_port_exhausted_total vnetxdp_snat_egress_packets_total \
		vnetxdp_snat_ingress_packets_total; do
		echo "$text" | grep -q "^$family{vip=\"203.0.113.10\"}" || { echo "no $family"; return 1; }
	done
	echo "$text" | grep -q '^vnetxdp_snat_ports_capacity{vip="203.0.113.11"} 4$' || return 1
	echo "$text" | awk '/^vnetxdp_snat_flows_total\{vip="203.0.113.10"\}/ { exit !($2 >= 5) }'
}

run_case up_with_snat
run_case tcp_from_every_vm_with_curl
run_case tcp_bulk_transfer_comes_back_intact
run_case udp_round_trip_from_every_vm
run_case ping_from_every_vm
run_case iperf3_through_snat
run_case internet_sees_only_the_vips
run_case exhaustion_drops_new_flows_and_keeps_live_ones
run_case reply_after_idle_timeout_is_dropped
run_case gc_collects_expired_mappings
run_case internet_cannot_open_a_connection_to_a_vm
run_case metrics_show_snat_per_vip
exit ${FAILED:-0}

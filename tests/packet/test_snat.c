/* SNAT packet tests: frames through the loaded XDP program (BPF_PROG_TEST_RUN) of a real
 * gateway in network namespaces, with the config tests/data/snat/packet.json (256 ports
 * per VIP in 32 blocks of 8, one per VM, spoke1 pooling two VIPs, spoke2's subnet behind a NAT gateway, UDP idle
 * timeout 2 s). Every checksum of every frame that comes out is recomputed here. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "vnet_xdp.h"
#include "datapath/datapath.h"
#include "datapath/snat.h"
#include "observe/snat_stats.h"
#include "observe/stats.h"
#include "packet/gateway_harness.h"

#define HUB_VIP "203.0.113.10"
#define PORT_MIN 1024
#define PORT_MAX 1279
#define BLOCK 8 /* limits.snatMappingsPerVm: each VM's ports on each VIP */

/* The config is tests/data/snat/packet.json under this gateway's name. Default routes via
 * the Internet peer make the FIB's answer, and so every MAC of a frame leaving for the
 * Internet, known in advance. */
static struct gateway_harness gw = {
	.prefix = "vxsn",
	.gateway = "snatpkt",
	.config_command = "sed \"s/\\\"snatpkt\\\"/\\\"$GATEWAY\\\"/\" tests/data/snat/packet.json",
	.gateway_setup = "ip -n $GATEWAY_NS route add default via 198.51.100.2"
			 " && ip -n $GATEWAY_NS addr add 2001:db8:100::1/64 dev uplink0 nodad"
			 " && ip -n $GATEWAY_NS neigh replace 2001:db8:100::2 lladdr " UPLINK_PEER_MAC
			 " dev uplink0 nud permanent"
			 " && ip -n $GATEWAY_NS -6 route add default via 2001:db8:100::2",
};
#define GATEWAY gw.name

static struct {
	int mappings_fd, reverse_fd;
} snat_maps;

static int setup_gateway(void **state)
{
	if (harness_up(&gw))
		return -1;
	if (!gw.ready) /* skipped, with the reason */
		return 0;
	snat_maps.mappings_fd = harness_map(&gw, "snat_mappings");
	snat_maps.reverse_fd = harness_map(&gw, "snat_reverse");
	gw.ready = snat_maps.mappings_fd >= 0 && snat_maps.reverse_fd >= 0;
	if (!gw.ready)
		gw.why_not = "the SNAT maps are not pinned";
	return gw.ready ? 0 : -1;
}

static int teardown_gateway(void **state)
{
	harness_down(&gw);
	return 0;
}

/* Makes every mapping of the VM (source) or toward the remote (destination) `address`,
 * or every mapping when address is NULL, look last seen at boot: expired, and past its
 * port's cool-down. */
static void mappings_aged(const char *address, int by_source)
{
	struct snat_flow_key key, next, *prev = NULL;
	struct snat_mapping m;
	uint8_t want[4];

	if (address)
		inet_pton(AF_INET, address, want);
	while (!bpf_map_get_next_key(snat_maps.mappings_fd, prev, &next)) {
		if ((!address ||
		     (next.family == AF_INET && !memcmp(by_source ? next.src : next.dst, want, 4))) &&
		    !bpf_map_lookup_elem(snat_maps.mappings_fd, &next, &m)) {
			m.last_seen_ns = 1;
			assert_int_equal(bpf_map_update_elem(snat_maps.mappings_fd, &next, &m, BPF_EXIST), 0);
		}
		key = next;
		prev = &key;
	}
}

/* Each test starts with the ports of every VM's block free to take over: the tests share
 * the VMs, whose blocks hold BLOCK ports each. */
static int every_mapping_expired(void **state)
{
	struct snat_flow_key key, next, *prev = NULL;
	struct snat_reverse rev;

	if (!gw.ready)
		return 0;
	mappings_aged(NULL, 0);
	/* Their ports cooled down too, whatever moved on from them. */
	while (!bpf_map_get_next_key(snat_maps.reverse_fd, prev, &next)) {
		if (!bpf_map_lookup_elem(snat_maps.reverse_fd, &next, &rev)) {
			rev.released_ns = 1;
			bpf_map_update_elem(snat_maps.reverse_fd, &next, &rev, BPF_EXIST);
		}
		key = next;
		prev = &key;
	}
	return 0;
}

static void require_gateway(void) { harness_require(&gw); }

static struct harness_result run(int iface, const struct frame *in) { return harness_run(&gw, iface, in); }

static void assert_dropped(const struct frame *in, int iface, enum drop_reason reason)
{
	harness_assert_dropped(&gw, in, iface, reason);
}

/* ---- reading frames back, checksums recomputed from scratch ---- */

static uint8_t *ip_of(struct frame *f) { return f->data + 14; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static size_t ip_header_len(const uint8_t *ip) { return (ip[0] & 0xf) * 4; }
static uint8_t *l4_of(struct frame *f) { return ip_of(f) + ip_header_len(ip_of(f)); }

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void assert_ipv4_checksum(const uint8_t *ip)
{
	assert_int_equal(fold(checksum_add(0, ip, ip_header_len(ip))), 0xffff);
}

/* An L4 checksum over len bytes of segment: pseudo header for TCP/UDP, none for ICMP. */
static void assert_l4_checksum(const uint8_t *ip, const uint8_t *l4, size_t len)
{
	uint32_t sum = 0;

	if (ip[9] == IPPROTO_UDP && get16(l4 + 6) == 0)
		return; /* no checksum */
	if (ip[9] != IPPROTO_ICMP) {
		sum = checksum_add(sum, ip + 12, 8);
		sum += ip[9] + len;
	}
	sum = checksum_add(sum, l4, len);
	assert_int_equal(fold(sum), 0xffff);
}

static void assert_packet_checksums(struct frame *f)
{
	uint8_t *ip = ip_of(f);

	assert_ipv4_checksum(ip);
	assert_l4_checksum(ip, l4_of(f), get16(ip + 2) - ip_header_len(ip));
}

static void assert_address(const uint8_t *at, const char *text)
{
	uint8_t want[4];

	inet_pton(AF_INET, text, want);
	assert_memory_equal(at, want, 4);
}

/* Rewrites the transport checksum after a test changed the header. */
static void l4_checksum_fix(struct frame *f)
{
	uint8_t *ip = ip_of(f), *l4 = l4_of(f);
	size_t len = get16(ip + 2) - ip_header_len(ip);
	size_t at = ip[9] == IPPROTO_TCP ? 16 : ip[9] == IPPROTO_UDP ? 6 : 2;
	uint32_t sum = 0;

	l4[at] = l4[at + 1] = 0;
	if (ip[9] != IPPROTO_ICMP) {
		sum = checksum_add(sum, ip + 12, 8);
		sum += ip[9] + len;
	}
	sum = checksum_add(sum, l4, len);
	put16(l4 + at, (uint16_t)~fold(sum));
}

/* What a veth leaves in the field when the checksum is offloaded: the folded pseudo
 * header sum, not complemented. */
static void l4_checksum_make_partial(struct frame *f)
{
	uint8_t *ip = ip_of(f), *l4 = l4_of(f);
	size_t len = get16(ip + 2) - ip_header_len(ip);
	size_t at = ip[9] == IPPROTO_TCP ? 16 : 6;
	uint32_t sum = checksum_add(0, ip + 12, 8) + ip[9] + len;

	put16(l4 + at, fold(sum));
}

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static struct flow flow4(const char *src, const char *dst, uint8_t proto, uint16_t sport,
			 uint16_t dport)
{
	return (struct flow){ .family = AF_INET, .src = src, .dst = dst, .proto = proto,
			      .sport = sport, .dport = dport, .ip_id = 0x4242, .payload = 24 };
}

static const char *const vm_mac[] = { HUB_VM_MAC, SPOKE1_VM_MAC, SPOKE2_VM_MAC };
static const char *const gw_mac[] = { HUB_GW_MAC, SPOKE1_GW_MAC, SPOKE2_GW_MAC };

/* Sends a VM's frame out; asserts it left by the uplink, fully rewritten and checksummed.
 * Returns the frame as it left. */
static struct frame egress(int vnet, const struct flow *fl)
{
	struct frame in;
	struct harness_result r;
	uint8_t mac[6];

	frame_build(&in, gw_mac[vnet], vm_mac[vnet], fl);
	r = run(vnet, &in);
	if (r.verdict != XDP_REDIRECT)
		print_message("verdict %d drop reason %u\n", r.verdict, r.trace.drop_reason);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.egress_ifindex, gw.ifaces[UPLINK].ifindex);
	mac_parse(UPLINK_PEER_MAC, mac);
	assert_memory_equal(r.out.data, mac, 6);
	mac_parse(UPLINK_GW_MAC, mac);
	assert_memory_equal(r.out.data + 6, mac, 6);
	assert_int_equal(ip_of(&r.out)[8], (fl->ttl ? fl->ttl : 64) - 1);
	assert_address(ip_of(&r.out) + 16, fl->dst);
	assert_packet_checksums(&r.out);
	return r.out;
}

static uint16_t source_port(struct frame *f)
{
	return ip_of(f)[9] == IPPROTO_ICMP ? get16(l4_of(f) + 4) : get16(l4_of(f));
}

/* The Internet's answer to a frame that left: addresses and ports swapped. */
static struct frame reply_to(struct frame *left, uint8_t tcp_flags)
{
	struct frame f = *left;
	uint8_t *ip = ip_of(&f), *l4 = l4_of(&f), tmp[4];
	uint8_t mac[6];

	mac_parse(UPLINK_GW_MAC, mac);
	memcpy(f.data, mac, 6);
	mac_parse(UPLINK_PEER_MAC, mac);
	memcpy(f.data + 6, mac, 6);
	memcpy(tmp, ip + 12, 4);
	memcpy(ip + 12, ip + 16, 4);
	memcpy(ip + 16, tmp, 4);
	ip[8] = 60;
	if (ip[9] == IPPROTO_ICMP) {
		l4[0] = 0; /* echo reply */
	} else {
		memcpy(tmp, l4, 2);
		memcpy(l4, l4 + 2, 2);
		memcpy(l4 + 2, tmp, 2);
		if (ip[9] == IPPROTO_TCP)
			l4[13] = tcp_flags;
	}
	ipv4_header_checksum(ip);
	l4_checksum_fix(&f);
	return f;
}

/* Sends an Internet frame to the uplink; asserts it reached the VM of vnet with dst and
 * port restored and every checksum right. */
static struct frame ingress(const struct frame *in, int vnet, const char *vm, uint16_t vm_port)
{
	struct harness_result r = run(UPLINK, in);
	uint8_t mac[6];

	if (r.verdict != XDP_REDIRECT)
		print_message("verdict %d drop reason %u\n", r.verdict, r.trace.drop_reason);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.egress_ifindex, gw.ifaces[vnet].ifindex);
	mac_parse(vm_mac[vnet], mac);
	assert_memory_equal(r.out.data, mac, 6);
	assert_address(ip_of(&r.out) + 16, vm);
	if (ip_of(&r.out)[9] == IPPROTO_ICMP && l4_of(&r.out)[0] == 0)
		assert_int_equal(get16(l4_of(&r.out) + 4), vm_port);
	else if (ip_of(&r.out)[9] != IPPROTO_ICMP)
		assert_int_equal(get16(l4_of(&r.out) + 2), vm_port);
	assert_packet_checksums(&r.out);
	return r.out;
}

/* ---- TCP, UDP, ICMP echo ---- */

static void snat_tcp_leaves_with_the_vip_and_replies_come_back(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.80", IPPROTO_TCP, 40000, 443);
	struct frame out, again, back;
	uint16_t port;

	require_gateway();
	out = egress(HUB, &fl);
	assert_address(ip_of(&out) + 12, HUB_VIP);
	port = source_port(&out);
	assert_in_range(port, PORT_MIN, PORT_MAX);
	/* The same flow keeps its port. */
	again = egress(HUB, &fl);
	assert_int_equal(source_port(&again), port);

	back = reply_to(&out, TCP_SYN | TCP_ACK);
	ingress(&back, HUB, "10.10.1.4", 40000);
}

static void snat_udp_round_trip(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.80", IPPROTO_UDP, 40001, 53);
	struct frame out, back;

	require_gateway();
	out = egress(HUB, &fl);
	assert_address(ip_of(&out) + 12, HUB_VIP);
	assert_int_not_equal(get16(l4_of(&out) + 6), 0);
	back = reply_to(&out, 0);
	ingress(&back, HUB, "10.10.1.4", 40001);
}

/* ---- fragments ---- */

/* The datagram in `whole` (IPv4) in three fragments: 512, 512 and the rest bytes. */
static void fragments_of(const struct frame *whole, struct frame out[3])
{
	size_t total = get16(whole->data + 14 + 2) - 20;

	frame_fragment(&out[0], whole, 0, 512, 1, 0);
	frame_fragment(&out[1], whole, 512, 512, 1, 0);
	frame_fragment(&out[2], whole, 1024, total - 1024, 0, 0);
}

/* The fragments as they left, put together: the UDP checksum must hold over the whole
 * datagram with its new addresses, though only the first fragment carried it. */
static void assert_reassembled_udp_checksum(struct frame out[3])
{
	static uint8_t datagram[4096];
	size_t len = 0;

	for (int i = 0; i < 3; i++) {
		uint8_t *ip = ip_of(&out[i]);
		size_t at = (get16(ip + 6) & 0x1fff) * 8, n = get16(ip + 2) - ip_header_len(ip);

		assert_memory_equal(ip + 12, ip_of(&out[0]) + 12, 8); /* the same addresses */
		memcpy(datagram + at, ip + ip_header_len(ip), n);
		len = at + n > len ? at + n : len;
	}
	assert_int_equal(get16(datagram + 4), len);
	assert_l4_checksum(ip_of(&out[0]), datagram, len);
}

/* Every fragment leaves with the VIP, every fragment of the answer reaches the VM: the
 * first with its port translated, the later ones with only their addresses changed. */
static void snat_translates_every_fragment_both_ways(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.90", IPPROTO_UDP, 40010, 53);
	struct frame whole, frags[3], out[3], back[3];
	struct harness_result r;
	uint16_t port;

	require_gateway();
	fl.payload = 1200;
	frame_build(&whole, HUB_GW_MAC, HUB_VM_MAC, &fl);
	fragments_of(&whole, frags);
	for (int i = 0; i < 3; i++) {
		r = run(HUB, &frags[i]);
		if (r.verdict != XDP_REDIRECT)
			print_message("fragment %d: verdict %d drop reason %u\n", i, r.verdict,
				      r.trace.drop_reason);
		assert_int_equal(r.verdict, XDP_REDIRECT);
		assert_int_equal(r.trace.egress_ifindex, gw.ifaces[UPLINK].ifindex);
		out[i] = r.out;
		assert_address(ip_of(&out[i]) + 12, HUB_VIP);
		assert_address(ip_of(&out[i]) + 16, "192.0.2.90");
		assert_ipv4_checksum(ip_of(&out[i]));
		assert_int_equal(get16(ip_of(&out[i]) + 6), get16(ip_of(&frags[i]) + 6));
		if (i) /* a later fragment's payload is as the VM sent it */
			assert_memory_equal(l4_of(&out[i]), l4_of(&frags[i]), frags[i].len - 34);
	}
	port = source_port(&out[0]);
	assert_in_range(port, PORT_MIN, PORT_MAX);
	assert_reassembled_udp_checksum(out);

	/* The answer, as large, from the Internet to VIP:port. */
	fl = flow4("192.0.2.90", HUB_VIP, IPPROTO_UDP, 53, port);
	fl.payload = 1200;
	frame_build(&whole, UPLINK_GW_MAC, UPLINK_PEER_MAC, &fl);
	fragments_of(&whole, frags);
	for (int i = 0; i < 3; i++) {
		r = run(UPLINK, &frags[i]);
		if (r.verdict != XDP_REDIRECT)
			print_message("reply fragment %d: verdict %d drop reason %u\n", i, r.verdict,
				      r.trace.drop_reason);
		assert_int_equal(r.verdict, XDP_REDIRECT);
		assert_int_equal(r.trace.egress_ifindex, gw.ifaces[HUB].ifindex);
		back[i] = r.out;
		assert_address(ip_of(&back[i]) + 12, "192.0.2.90");
		assert_address(ip_of(&back[i]) + 16, "10.10.1.4");
		assert_ipv4_checksum(ip_of(&back[i]));
	}
	assert_int_equal(get16(l4_of(&back[0]) + 2), 40010);
	assert_reassembled_udp_checksum(back);
}

/* IPv4 UDP may go without a checksum: it must stay without, both ways. */
static void snat_udp_zero_checksum_stays_zero(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.80", IPPROTO_UDP, 40002, 123);
	struct frame in, back, vm;
	struct harness_result r;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	put16(l4_of(&in) + 6, 0);
	r = run(HUB, &in);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_address(ip_of(&r.out) + 12, HUB_VIP);
	assert_int_equal(get16(l4_of(&r.out) + 6), 0);
	assert_ipv4_checksum(ip_of(&r.out));

	back = reply_to(&r.out, 0);
	put16(l4_of(&back) + 6, 0);
	vm = ingress(&back, HUB, "10.10.1.4", 40002);
	assert_int_equal(get16(l4_of(&vm) + 6), 0);
}

static void snat_icmp_echo_identifier_is_translated(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.80", IPPROTO_ICMP, 0x1234, 0);
	struct frame out, back;

	require_gateway();
	out = egress(HUB, &fl);
	assert_address(ip_of(&out) + 12, HUB_VIP);
	assert_int_equal(l4_of(&out)[0], 8);
	assert_in_range(source_port(&out), PORT_MIN, PORT_MAX);
	back = reply_to(&out, 0);
	ingress(&back, HUB, "10.10.1.4", 0x1234);
}

/* A veth leaves TCP and UDP checksums to offload: the frame carries only the pseudo
 * header sum. What leaves by redirect must carry the full checksum. */
static void snat_partial_checksum_is_completed_both_ways(void **state)
{
	struct flow tcp = flow4("10.10.1.4", "192.0.2.82", IPPROTO_TCP, 40003, 80);
	struct flow udp = flow4("10.10.1.4", "192.0.2.82", IPPROTO_UDP, 40003, 80);
	struct flow *flows[] = { &tcp, &udp };

	require_gateway();
	for (int i = 0; i < 2; i++) {
		struct frame in, back;
		struct harness_result r;

		flows[i]->payload = 333; /* odd, and longer than one block */
		frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, flows[i]);
		l4_checksum_make_partial(&in);
		r = run(HUB, &in);
		assert_int_equal(r.verdict, XDP_REDIRECT);
		assert_address(ip_of(&r.out) + 12, HUB_VIP);
		assert_packet_checksums(&r.out);

		back = reply_to(&r.out, TCP_SYN | TCP_ACK);
		l4_checksum_make_partial(&back);
		ingress(&back, HUB, "10.10.1.4", 40003);
	}
}

/* ---- ICMP errors about a translated flow ---- */

/* An ICMP error from a router on the way (src) about the frame that left, quoting its
 * IP header and `quote` bytes of what follows. */
static struct frame icmp_error(struct frame *left, const char *router, uint8_t type,
			       uint8_t code, size_t quote)
{
	uint8_t *quoted = ip_of(left);
	char vip[INET_ADDRSTRLEN];
	struct frame f;

	inet_ntop(AF_INET, quoted + 12, vip, sizeof(vip)); /* the VIP the quoted packet left from */
	frame_icmp_error(&f, UPLINK_GW_MAC, UPLINK_PEER_MAC, AF_INET, router, vip, type, code,
			 type == 3 && code == 4 ? 1400 : 0, quoted, ip_header_len(quoted) + quote);
	return f;
}

/* The error reaches the VM with the outer destination, the quoted source and port
 * translated back, and the outer IP, ICMP, quoted IP (and quoted L4, where whole)
 * checksums right. */
static void assert_icmp_error_translated(struct frame *err, const char *vm, uint16_t vm_port,
					 bool quoted_l4_whole)
{
	struct harness_result r = run(UPLINK, err);
	uint8_t *ip, *icmp, *quoted, *ql4;
	size_t icmp_len;

	if (r.verdict != XDP_REDIRECT)
		print_message("verdict %d drop reason %u\n", r.verdict, r.trace.drop_reason);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.egress_ifindex, gw.ifaces[HUB].ifindex);
	ip = ip_of(&r.out);
	icmp = ip + ip_header_len(ip);
	icmp_len = get16(ip + 2) - ip_header_len(ip);
	quoted = icmp + 8;
	ql4 = quoted + ip_header_len(quoted);
	assert_ipv4_checksum(ip);
	assert_address(ip + 16, vm);
	assert_int_equal(fold(checksum_add(0, icmp, icmp_len)), 0xffff);
	assert_address(quoted + 12, vm);
	assert_ipv4_checksum(quoted);
	assert_int_equal(quoted[9] == IPPROTO_ICMP ? get16(ql4 + 4) : get16(ql4), vm_port);
	if (quoted_l4_whole)
		assert_l4_checksum(quoted, ql4, get16(quoted + 2) - ip_header_len(quoted));
}

static void snat_icmp_port_unreachable_reaches_the_vm(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.83", IPPROTO_UDP, 40010, 5000);
	struct frame out, err;

	require_gateway();
	out = egress(HUB, &fl);
	/* The host itself answers, quoting the whole datagram. */
	err = icmp_error(&out, "192.0.2.83", 3, 3, get16(ip_of(&out) + 2) - 20);
	assert_icmp_error_translated(&err, "10.10.1.4", 40010, true);
}

static void snat_icmp_fragmentation_needed_reaches_the_vm(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.84", IPPROTO_TCP, 40011, 443);
	struct frame out, err;

	require_gateway();
	out = egress(HUB, &fl);
	/* A router on the way, quoting the whole TCP segment. */
	err = icmp_error(&out, "198.51.100.2", 3, 4, get16(ip_of(&out) + 2) - 20);
	assert_icmp_error_translated(&err, "10.10.1.4", 40011, true);
	/* And one quoting only the 8 bytes RFC 792 asks for. */
	err = icmp_error(&out, "198.51.100.2", 3, 4, 8);
	assert_icmp_error_translated(&err, "10.10.1.4", 40011, false);
}

static void snat_icmp_time_exceeded_reaches_the_vm(void **state)
{
	struct flow udp = flow4("10.10.1.4", "192.0.2.85", IPPROTO_UDP, 40012, 33434);
	struct flow echo = flow4("10.10.1.4", "192.0.2.85", IPPROTO_ICMP, 0x7777, 0);
	struct frame out, err;

	require_gateway();
	out = egress(HUB, &udp);
	err = icmp_error(&out, "198.51.100.2", 11, 0, 8);
	assert_icmp_error_translated(&err, "10.10.1.4", 40012, false);
	/* traceroute with ping: the quoted packet is an echo request. */
	out = egress(HUB, &echo);
	err = icmp_error(&out, "198.51.100.2", 11, 0, get16(ip_of(&out) + 2) - 20);
	assert_icmp_error_translated(&err, "10.10.1.4", 0x7777, true);
}

/* ---- nothing gets in unasked ---- */

static void snat_unsolicited_inbound_to_a_vip_is_dropped(void **state)
{
	struct flow fl = flow4("192.0.2.90", HUB_VIP, IPPROTO_TCP, 50000, PORT_MIN);
	struct frame in, err;

	require_gateway();
	frame_build(&in, UPLINK_GW_MAC, UPLINK_PEER_MAC, &fl);
	assert_dropped(&in, UPLINK, DROP_SNAT_UNSOLICITED);
	fl.proto = IPPROTO_UDP;
	frame_build(&in, UPLINK_GW_MAC, UPLINK_PEER_MAC, &fl);
	assert_dropped(&in, UPLINK, DROP_SNAT_UNSOLICITED);
	fl.proto = IPPROTO_ICMP; /* an echo request to the VIP */
	frame_build(&in, UPLINK_GW_MAC, UPLINK_PEER_MAC, &fl);
	assert_dropped(&in, UPLINK, DROP_SNAT_UNSOLICITED);
	/* An ICMP error about a flow that never was. */
	fl = flow4(HUB_VIP, "192.0.2.91", IPPROTO_UDP, PORT_MIN, 53);
	frame_build(&in, UPLINK_GW_MAC, UPLINK_PEER_MAC, &fl);
	err = icmp_error(&in, "192.0.2.91", 3, 3, 8);
	assert_dropped(&err, UPLINK, DROP_SNAT_UNSOLICITED);
	/* Straight to a VM's private address. */
	fl = flow4("192.0.2.90", "10.10.1.4", IPPROTO_TCP, 50000, 22);
	frame_build(&in, UPLINK_GW_MAC, UPLINK_PEER_MAC, &fl);
	assert_dropped(&in, UPLINK, DROP_UPLINK_UNSOLICITED);
}

/* A reply that answers from another port than the one the VM talked to is not a reply. */
static void snat_reply_from_another_port_is_dropped(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.86", IPPROTO_TCP, 40020, 443);
	struct frame out, back;

	require_gateway();
	out = egress(HUB, &fl);
	back = reply_to(&out, TCP_SYN | TCP_ACK);
	put16(l4_of(&back), 444);
	l4_checksum_fix(&back);
	assert_dropped(&back, UPLINK, DROP_SNAT_UNSOLICITED);
}

static void snat_reply_after_idle_timeout_is_dropped(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.87", IPPROTO_UDP, 40030, 53);
	struct frame out, back, again;
	struct snat_gc_result gc;

	require_gateway();
	out = egress(HUB, &fl);
	back = reply_to(&out, 0);
	ingress(&back, HUB, "10.10.1.4", 40030);
	sleep(3); /* udpIdleTimeoutSeconds is 2 */
	assert_dropped(&back, UPLINK, DROP_SNAT_EXPIRED);

	/* The GC removes the mapping and holds the port toward that destination for the
	 * cool-down; the VM's next packet gets a new mapping, on another port. */
	assert_int_equal(snat_gc(GATEWAY, datapath_clock_ns(), &gc), 0);
	assert_true(gc.mappings_expired >= 1);
	assert_true(gc.reverse_released >= 1);
	again = egress(HUB, &fl);
	assert_int_not_equal(source_port(&again), source_port(&out));
	assert_dropped(&back, UPLINK, DROP_SNAT_EXPIRED); /* the old port is cooling down */
	back = reply_to(&again, 0);
	ingress(&back, HUB, "10.10.1.4", 40030);
}

/* Stamps every mapping's last activity `ahead` ns later than the datapath's clock. */
static void mappings_stamped_ahead(uint64_t ahead)
{
	struct snat_flow_key key, next, *prev = NULL;
	struct snat_mapping m;

	while (!bpf_map_get_next_key(snat_maps.mappings_fd, prev, &next)) {
		if (!bpf_map_lookup_elem(snat_maps.mappings_fd, &next, &m)) {
			m.last_seen_ns = datapath_clock_ns() + ahead;
			assert_int_equal(bpf_map_update_elem(snat_maps.mappings_fd, &next, &m, BPF_EXIST), 0);
		}
		key = next;
		prev = &key;
	}
}

/* A mapping last seen "later" than now is fresh within the clocks' skew; one stamped an
 * hour ahead does not keep its port open forever. */
static void snat_mapping_stamped_ahead_expires(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.89", IPPROTO_UDP, 40031, 53);
	struct frame out, back;

	require_gateway();
	out = egress(HUB, &fl);
	back = reply_to(&out, 0);
	mappings_stamped_ahead(CLOCK_SKEW_NS / 4);
	ingress(&back, HUB, "10.10.1.4", 40031);
	mappings_stamped_ahead(3600 * NS_PER_SECOND);
	assert_dropped(&back, UPLINK, DROP_SNAT_EXPIRED);
}

static void snat_tcp_rst_shortens_the_timeout(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.88", IPPROTO_TCP, 40040, 443);
	struct frame out, back, data;

	require_gateway();
	out = egress(HUB, &fl);
	back = reply_to(&out, TCP_SYN | TCP_ACK);
	ingress(&back, HUB, "10.10.1.4", 40040);
	/* Established: a reply still gets through after the transitory timeout (2 s)... */
	sleep(3);
	data = reply_to(&out, TCP_ACK);
	ingress(&data, HUB, "10.10.1.4", 40040);
	/* ...until a RST closes the flow: then only for the transitory timeout. */
	data = reply_to(&out, TCP_RST | TCP_ACK);
	ingress(&data, HUB, "10.10.1.4", 40040);
	sleep(3);
	data = reply_to(&out, TCP_ACK);
	assert_dropped(&data, UPLINK, DROP_SNAT_EXPIRED);
}

/* ---- ports ---- */

/* A VM's block of BLOCK ports, whatever the destinations: each flow its own port, every
 * port once, in one block; the next flow is dropped as the VM's limit (not the VIP's
 * exhaustion); live mappings are never taken over. */
static void snat_exhaustion_drops_new_flows_and_keeps_live_ones(void **state)
{
	uint16_t ports[BLOCK], port_set[PORT_MAX - PORT_MIN + 1] = { 0 };
	json_t *vips, *it;
	uint64_t exhausted_before = 0, exhausted_after = 0;
	struct frame in;
	size_t i;

	require_gateway();
	vips = snat_stats_json(GATEWAY, NULL);
	json_array_foreach(vips, i, it)
		if (!strcmp(json_string_value(json_object_get(it, "vip")), HUB_VIP))
			exhausted_before = json_integer_value(json_object_get(it, "portExhausted"));
	json_decref(vips);

	for (int n = 0; n < BLOCK; n++) {
		struct flow fl = flow4("10.10.1.4", "192.0.2.99", IPPROTO_TCP, 41000 + n, 9999);
		struct frame out = egress(HUB, &fl);

		ports[n] = source_port(&out);
		assert_in_range(ports[n], PORT_MIN, PORT_MAX);
		assert_int_equal(port_set[ports[n] - PORT_MIN]++, 0); /* each port once */
		assert_int_equal((ports[n] - PORT_MIN) / BLOCK, (ports[0] - PORT_MIN) / BLOCK);
	}
	/* All the VM's ports are taken: the next flow is dropped, toward any destination. */
	struct flow ninth = flow4("10.10.1.4", "192.0.2.99", IPPROTO_TCP, 41000 + BLOCK, 9999);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &ninth);
	assert_dropped(&in, HUB, DROP_SNAT_VM_LIMIT);
	ninth = flow4("10.10.1.4", "192.0.2.98", IPPROTO_TCP, 41000, 9999);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &ninth);
	assert_dropped(&in, HUB, DROP_SNAT_VM_LIMIT);
	vips = snat_stats_json(GATEWAY, NULL);
	json_array_foreach(vips, i, it)
		if (!strcmp(json_string_value(json_object_get(it, "vip")), HUB_VIP)) {
			exhausted_after = json_integer_value(json_object_get(it, "portExhausted"));
			assert_int_equal(json_integer_value(json_object_get(it, "portsTotal")),
					 PORT_MAX - PORT_MIN + 1);
			assert_true(json_integer_value(json_object_get(it, "portsInUse")) >= BLOCK);
		}
	json_decref(vips);
	assert_int_equal(exhausted_after, exhausted_before);

	/* No live mapping was taken over: each flow still has its port, and replies reach
	 * the flow they belong to. */
	for (int n = 0; n < BLOCK; n++) {
		struct flow fl = flow4("10.10.1.4", "192.0.2.99", IPPROTO_TCP, 41000 + n, 9999);
		struct frame out = egress(HUB, &fl), back;

		assert_int_equal(source_port(&out), ports[n]);
		back = reply_to(&out, TCP_SYN | TCP_ACK);
		ingress(&back, HUB, "10.10.1.4", 41000 + n);
	}
	/* A block's port is its flow's alone: another remote gets nothing back through it. */
	{
		struct flow fl = flow4("10.10.1.4", "192.0.2.99", IPPROTO_TCP, 41000, 9999);
		struct frame out = egress(HUB, &fl), back = reply_to(&out, TCP_ACK);

		inet_pton(AF_INET, "192.0.2.98", ip_of(&back) + 12);
		ipv4_header_checksum(ip_of(&back));
		l4_checksum_fix(&back);
		assert_dropped(&back, UPLINK, DROP_SNAT_UNSOLICITED);
	}
}

/* With the datapath alone (no collector runs), a port whose mapping expired comes back: a
 * new flow takes it over. */
static void snat_expired_port_is_reused_without_the_collector(void **state)
{
	struct flow ninth = flow4("10.10.1.4", "192.0.2.97", IPPROTO_UDP, 42000 + BLOCK, 9999);
	struct frame in, out, back;

	require_gateway();
	for (int n = 0; n < BLOCK; n++) {
		struct flow fl = flow4("10.10.1.4", "192.0.2.97", IPPROTO_UDP, 42000 + n, 9999);

		egress(HUB, &fl);
	}
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &ninth);
	assert_dropped(&in, HUB, DROP_SNAT_VM_LIMIT);
	mappings_aged("192.0.2.97", 0);
	out = egress(HUB, &ninth);
	assert_in_range(source_port(&out), PORT_MIN, PORT_MAX);
	back = reply_to(&out, 0);
	ingress(&back, HUB, "10.10.1.4", 42000 + BLOCK);
}

/* The VM's block of `vm` as the datapath recorded it; 0 when it has none. */
static int vm_block_of(const char *vm, struct snat_vm_block *out)
{
	int fd = harness_map(&gw, "snat_vm_blocks");
	struct snat_vm_key key, next, *prev = NULL;
	uint8_t want[4];
	int found = 0;

	assert_true(fd >= 0);
	inet_pton(AF_INET, vm, want);
	while (!found && !bpf_map_get_next_key(fd, prev, &next)) {
		if (next.family == AF_INET && !memcmp(next.addr, want, 4) &&
		    !bpf_map_lookup_elem(fd, &next, out))
			found = 1;
		key = next;
		prev = &key;
	}
	close(fd);
	return found;
}

/* limits.snatMappingsPerVm 8: a VM holds a block of 8 ports, its 9th flow is dropped as
 * snat_vm_limit (toward other destinations too), its flows go on, another VM's ports are
 * another block; and once the VM's mappings expire it opens flows again with the
 * datapath alone, no collector (`up` without `serve`). */
static void snat_vm_at_its_port_block_gets_ports_again_when_its_mappings_expire_without_the_collector(
	void **state)
{
	uint16_t first[BLOCK];
	char remote[32];
	struct flow fl;
	struct frame in, out;
	uint64_t dropped;

	require_gateway();
	for (int n = 0; n < BLOCK; n++) {
		snprintf(remote, sizeof(remote), "198.18.0.%d", n + 1);
		fl = flow4("10.10.1.5", remote, IPPROTO_UDP, 43000, 53);
		out = egress(HUB, &fl);
		first[n] = source_port(&out);
	}
	dropped = harness_counter(gw.drops_fd, DROP_SNAT_VM_LIMIT);
	fl = flow4("10.10.1.5", "198.18.1.1", IPPROTO_UDP, 43000, 53);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_dropped(&in, HUB, DROP_SNAT_VM_LIMIT);
	assert_int_equal(harness_counter(gw.drops_fd, DROP_SNAT_VM_LIMIT), dropped + 1);
	/* Its own flows keep their ports; another VM opens its flows in its own block. */
	fl = flow4("10.10.1.5", "198.18.0.1", IPPROTO_UDP, 43000, 53);
	out = egress(HUB, &fl);
	assert_int_equal(source_port(&out), first[0]);
	for (int n = 0; n < BLOCK; n++) {
		snprintf(remote, sizeof(remote), "198.18.0.%d", n + 1);
		fl = flow4("10.10.1.6", remote, IPPROTO_UDP, 43000, 53);
		out = egress(HUB, &fl);
		assert_int_not_equal((source_port(&out) - PORT_MIN) / BLOCK,
				     (first[0] - PORT_MIN) / BLOCK);
	}
	/* Its mappings expire; nothing but the datapath runs: the VM opens flows again, in
	 * its own block. */
	mappings_aged("10.10.1.5", 1);
	for (int n = 0; n < BLOCK; n++) {
		snprintf(remote, sizeof(remote), "198.18.1.%d", n + 1);
		fl = flow4("10.10.1.5", remote, IPPROTO_UDP, 43001, 53);
		out = egress(HUB, &fl);
		assert_int_equal((source_port(&out) - PORT_MIN) / BLOCK, (first[0] - PORT_MIN) / BLOCK);
	}
}

/* The pool's blocks all held: a VM without one is dropped as snat_port_exhausted (the
 * VIP's exhaustion); once a VM idled past every mapping's life, its block goes to the VM
 * that needs one, and the idle VM's hold on it ends. */
static void snat_vm_without_a_free_block_gets_an_idle_vms_block(void **state)
{
	const int blocks = (PORT_MAX - PORT_MIN + 1) / BLOCK;
	struct snat_vm_block held, before;
	struct snat_vm_key key = { .family = AF_INET };
	char vm[32], last[32] = "";
	struct flow fl;
	struct frame in, out;
	int opened = 0, fd;

	require_gateway();
	/* spoke2's NAT gateway pool: claim every block left, one VM each. */
	for (int n = 0; n <= blocks; n++) {
		struct harness_result r;

		snprintf(vm, sizeof(vm), "10.12.1.%d", 100 + n);
		fl = flow4(vm, "192.0.2.60", IPPROTO_UDP, 44000, 53);
		frame_build(&in, SPOKE2_GW_MAC, SPOKE2_VM_MAC, &fl);
		r = run(SPOKE2, &in);
		if (r.verdict == XDP_DROP) {
			assert_int_equal(r.trace.drop_reason, DROP_SNAT_PORT_EXHAUSTED);
			break;
		}
		assert_int_equal(r.verdict, XDP_REDIRECT);
		opened++;
	}
	assert_in_range(opened, 1, blocks - 1); /* 10.12.1.4 holds one block already */
	assert_true(vm_block_of("10.12.1.100", &before));
	snprintf(last, sizeof(last), "10.12.1.%d", 100 + opened);

	/* 10.12.1.100 idles: its mappings expired, its block unused for as long. */
	fd = harness_map(&gw, "snat_vm_blocks");
	assert_true(fd >= 0);
	inet_pton(AF_INET, "10.12.1.100", key.addr);
	key.vnet = 0;
	{
		struct snat_vm_key k, next, *prev = NULL;

		while (!bpf_map_get_next_key(fd, prev, &next)) {
			if (next.family == AF_INET && !memcmp(next.addr, key.addr, 4))
				key = next;
			k = next;
			prev = &k;
		}
	}
	held = before;
	held.last_active_ns = 1;
	assert_int_equal(bpf_map_update_elem(fd, &key, &held, BPF_EXIST), 0);
	close(fd);
	mappings_aged("10.12.1.100", 1);

	fl = flow4(last, "192.0.2.60", IPPROTO_UDP, 44000, 53);
	out = egress(SPOKE2, &fl);
	assert_true(vm_block_of(last, &held));
	assert_int_equal(held.block, before.block);
	assert_int_equal((source_port(&out) - PORT_MIN) / BLOCK, before.block);
	assert_false(vm_block_of("10.12.1.100", &held));
}

static uint64_t flow_counter(uint32_t counter)
{
	int fd = harness_map(&gw, "flow_counters"), cpus = libbpf_num_possible_cpus();
	uint64_t values[cpus], sum = 0;

	assert_true(fd >= 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &counter, values), 0);
	close(fd);
	for (int c = 0; c < cpus; c++)
		sum += values[c];
	return sum;
}

/* Whether the flow table `name` holds the NSG flow of vm:port <-> remote:port (IPv4). */
static int flow_held(const char *name, const char *vm, uint16_t vm_port, const char *remote,
		     uint16_t remote_port)
{
	int fd = harness_map(&gw, name), found = 0;
	struct flow_key key, next, *prev = NULL;
	uint8_t a[4], b[4];

	assert_true(fd >= 0);
	inet_pton(AF_INET, vm, a);
	inet_pton(AF_INET, remote, b);
	while (!found && !bpf_map_get_next_key(fd, prev, &next)) {
		found = next.family == AF_INET &&
			((!memcmp(next.addr_a, a, 4) && next.port_a == vm_port &&
			  !memcmp(next.addr_b, b, 4) && next.port_b == remote_port) ||
			 (!memcmp(next.addr_a, b, 4) && next.port_a == remote_port &&
			  !memcmp(next.addr_b, a, 4) && next.port_b == vm_port));
		key = next;
		prev = &key;
	}
	close(fd);
	return found;
}

/* A SNAT flow is promoted to flows when its reply comes back through SNAT, as any other
 * answered flow is; a flood of new flows then evicts only new flows, never it. */
static void snat_answered_flow_is_promoted_and_outlives_a_flood_of_new_flows(void **state)
{
	struct flow fl = flow4("10.10.1.4", "192.0.2.70", IPPROTO_TCP, 45000, 443);
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	struct frame out, back;
	uint64_t promoted;
	int fd;

	require_gateway();
	out = egress(HUB, &fl);
	assert_true(flow_held("new_flows", "10.10.1.4", 45000, "192.0.2.70", 443));
	promoted = flow_counter(FLOW_PROMOTED);
	back = reply_to(&out, TCP_SYN | TCP_ACK);
	ingress(&back, HUB, "10.10.1.4", 45000);
	assert_int_equal(flow_counter(FLOW_PROMOTED), promoted + 1);

	/* The flood: twice new_flows' capacity of flows nobody answers. */
	fd = harness_map(&gw, "new_flows");
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	for (uint32_t i = 0; i < 2 * info.max_entries; i++) {
		struct flow_key junk = { .family = AF_INET, .proto = IPPROTO_UDP, .port_a = 1,
					 .port_b = 53 };
		struct flow_entry entry = { .last_seen_ns = 1 };
		uint32_t addr = htonl(0x0a630000 + i);

		memcpy(junk.addr_a, &addr, 4);
		assert_int_equal(bpf_map_update_elem(fd, &junk, &entry, BPF_ANY), 0);
	}
	close(fd);
	assert_true(flow_held("flows", "10.10.1.4", 45000, "192.0.2.70", 443));
}

static void snat_vips_of_a_vnet_pool_their_ports(void **state)
{
	int seen11 = 0, seen21 = 0;
	struct frame in;

	require_gateway();
	for (int n = 0; n < 16; n++) {
		struct flow fl = flow4("10.11.1.4", "192.0.2.97", IPPROTO_UDP, 42000 + n, 443);
		struct frame out = egress(SPOKE1, &fl);
		uint8_t vip11[4], vip21[4];

		inet_pton(AF_INET, "203.0.113.11", vip11);
		inet_pton(AF_INET, "203.0.113.21", vip21);
		if (!memcmp(ip_of(&out) + 12, vip11, 4))
			seen11++;
		else if (!memcmp(ip_of(&out) + 12, vip21, 4))
			seen21++;
		else
			fail_msg("left with a source that is not one of spoke1's VIPs");
	}
	/* The VM's block on each: the 16 flows fill both, the 17th finds none. */
	assert_int_equal(seen11, 8);
	assert_int_equal(seen21, 8);
	struct flow fl = flow4("10.11.1.4", "192.0.2.97", IPPROTO_UDP, 42016, 443);
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	assert_dropped(&in, SPOKE1, DROP_SNAT_VM_LIMIT);
}

static void snat_nat_gateway_wins_for_its_subnet(void **state)
{
	struct flow fl = flow4("10.12.1.4", "192.0.2.96", IPPROTO_TCP, 43000, 443);
	struct frame out, back;

	require_gateway();
	out = egress(SPOKE2, &fl);
	assert_address(ip_of(&out) + 12, "203.0.113.30");
	back = reply_to(&out, TCP_SYN | TCP_ACK);
	ingress(&back, SPOKE2, "10.12.1.4", 43000);
}

static void snat_counts_translations_each_way(void **state)
{
	json_t *vips, *it;
	size_t i;
	bool found = false;

	require_gateway();
	vips = snat_stats_json(GATEWAY, NULL);
	json_array_foreach(vips, i, it)
		if (!strcmp(json_string_value(json_object_get(it, "vip")), HUB_VIP)) {
			found = true;
			assert_true(json_integer_value(json_object_get(it, "flows")) >= 10);
			assert_true(json_integer_value(json_object_get(it, "egressPackets")) >= 10);
			assert_true(json_integer_value(json_object_get(it, "ingressPackets")) >= 10);
			assert_true(json_integer_value(json_object_get(it, "egressBytes")) >
				    json_integer_value(json_object_get(it, "egressPackets")) * 40);
		}
	json_decref(vips);
	assert_true(found);
}

/* ---- NAT66 ---- */

static void assert_ipv6_l4_checksum(const uint8_t *ip6)
{
	size_t len = get16(ip6 + 4);
	uint32_t sum = checksum_add(0, ip6 + 8, 32) + ip6[6] + len;

	sum = checksum_add(sum, ip6 + 40, len);
	assert_int_equal(fold(sum), 0xffff);
}

static void swap_ipv6(struct frame *f)
{
	uint8_t *ip6 = f->data + 14, tmp[16], mac[6];

	mac_parse(UPLINK_GW_MAC, mac);
	memcpy(f->data, mac, 6);
	mac_parse(UPLINK_PEER_MAC, mac);
	memcpy(f->data + 6, mac, 6);
	memcpy(tmp, ip6 + 8, 16);
	memcpy(ip6 + 8, ip6 + 24, 16);
	memcpy(ip6 + 24, tmp, 16);
	ip6[7] = 60;
}

static void snat_nat66_tcp_and_echo_round_trip(void **state)
{
	struct flow tcp = { .family = AF_INET6, .src = "fd00:10:0:1::4", .dst = "2001:db8:200::80",
			    .proto = IPPROTO_TCP, .sport = 45000, .dport = 443, .payload = 20 };
	struct flow echo = tcp;
	uint8_t vip[16], vm[16];
	struct frame in;
	struct harness_result r;

	require_gateway();
	inet_pton(AF_INET6, "2001:db8:f::10", vip);
	inet_pton(AF_INET6, "fd00:10:0:1::4", vm);
	echo.proto = IPPROTO_ICMPV6;
	echo.sport = 0x4321;
	struct flow *flows[] = { &tcp, &echo };
	for (int i = 0; i < 2; i++) {
		uint8_t *ip6, *l4;
		uint16_t port;

		frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, flows[i]);
		r = run(HUB, &in);
		assert_int_equal(r.verdict, XDP_REDIRECT);
		assert_int_equal(r.trace.egress_ifindex, gw.ifaces[UPLINK].ifindex);
		ip6 = r.out.data + 14;
		l4 = ip6 + 40;
		assert_memory_equal(ip6 + 8, vip, 16);
		assert_int_equal(ip6[7], 63);
		port = i == 0 ? get16(l4) : get16(l4 + 4);
		assert_in_range(port, PORT_MIN, PORT_MAX);
		assert_ipv6_l4_checksum(ip6);

		/* The answer comes back to the VM. */
		swap_ipv6(&r.out);
		if (i == 0) {
			uint8_t tmp[2];

			memcpy(tmp, l4, 2);
			memcpy(l4, l4 + 2, 2);
			memcpy(l4 + 2, tmp, 2);
			l4[13] = 0x12; /* SYN ACK */
		} else {
			l4[0] = 129; /* echo reply */
		}
		put16(l4 + (i == 0 ? 16 : 2), 0);
		{
			uint32_t sum = checksum_add(0, ip6 + 8, 32) + ip6[6] + get16(ip6 + 4);

			sum = checksum_add(sum, l4, get16(ip6 + 4));
			memcpy(l4 + (i == 0 ? 16 : 2), &(uint16_t){ checksum_fold(sum) }, 2);
		}
		r = run(UPLINK, &r.out);
		assert_int_equal(r.verdict, XDP_REDIRECT);
		assert_int_equal(r.trace.egress_ifindex, gw.ifaces[HUB].ifindex);
		ip6 = r.out.data + 14;
		l4 = ip6 + 40;
		assert_memory_equal(ip6 + 24, vm, 16);
		assert_int_equal(i == 0 ? get16(l4 + 2) : get16(l4 + 4), i == 0 ? 45000 : 0x4321);
		assert_ipv6_l4_checksum(ip6);
	}
}

/* The TCP/UDP checksum an IPv6 segment must carry, computed from scratch. */
static uint16_t ipv6_l4_checksum_expected(uint8_t *ip6)
{
	size_t len = get16(ip6 + 4), at = 40 + (ip6[6] == IPPROTO_TCP ? 16 : 6);
	uint8_t saved[2];
	uint32_t sum;
	uint16_t check;

	memcpy(saved, ip6 + at, 2);
	put16(ip6 + at, 0);
	sum = checksum_add(0, ip6 + 8, 32) + ip6[6] + len;
	sum = checksum_add(sum, ip6 + 40, len);
	memcpy(ip6 + at, saved, 2);
	check = (uint16_t)~fold(sum);
	return ip6[6] == IPPROTO_UDP && check == 0 ? 0xffff : check;
}

static void assert_ipv6_l4_checksum_exact(uint8_t *ip6)
{
	assert_int_equal(get16(ip6 + 40 + (ip6[6] == IPPROTO_TCP ? 16 : 6)),
			 ipv6_l4_checksum_expected(ip6));
}

/* What a veth with offload on leaves in an IPv6 segment's field: the pseudo-header sum. */
static void ipv6_l4_checksum_make_partial(uint8_t *ip6)
{
	put16(ip6 + 40 + (ip6[6] == IPPROTO_TCP ? 16 : 6),
	      fold(checksum_add(0, ip6 + 8, 32) + ip6[6] + get16(ip6 + 4)));
}

/* NAT66 with the VM's and the Internet host's offload on: what leaves by redirect, either
 * way, carries the full checksum, exactly. */
static void snat_nat66_partial_checksum_is_completed_both_ways(void **state)
{
	struct flow tcp = { .family = AF_INET6, .src = "fd00:10:0:1::4", .dst = "2001:db8:200::81",
			    .proto = IPPROTO_TCP, .sport = 45100, .dport = 443, .payload = 1201 };
	struct flow udp = tcp;
	struct flow *flows[] = { &tcp, &udp };
	uint8_t vm[16];

	require_gateway();
	inet_pton(AF_INET6, "fd00:10:0:1::4", vm);
	udp.proto = IPPROTO_UDP;
	for (int i = 0; i < 2; i++) {
		struct harness_result r;
		struct frame in;
		uint8_t *ip6, *l4, tmp[2];

		frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, flows[i]);
		ipv6_l4_checksum_make_partial(in.data + 14);
		r = run(HUB, &in);
		assert_int_equal(r.verdict, XDP_REDIRECT);
		assert_int_equal(r.trace.egress_ifindex, gw.ifaces[UPLINK].ifindex);
		ip6 = r.out.data + 14;
		l4 = ip6 + 40;
		assert_ipv6_l4_checksum_exact(ip6);

		swap_ipv6(&r.out);
		memcpy(tmp, l4, 2);
		memcpy(l4, l4 + 2, 2);
		memcpy(l4 + 2, tmp, 2);
		if (i == 0)
			l4[13] = TCP_SYN | TCP_ACK;
		ipv6_l4_checksum_make_partial(ip6);
		r = run(UPLINK, &r.out);
		assert_int_equal(r.verdict, XDP_REDIRECT);
		assert_int_equal(r.trace.egress_ifindex, gw.ifaces[HUB].ifindex);
		ip6 = r.out.data + 14;
		assert_memory_equal(ip6 + 24, vm, 16);
		assert_ipv6_l4_checksum_exact(ip6);
	}
}

/* A full checksum is only updated for the rewrite, never recomputed: a wrong one leaves
 * as wrong as it came (the receiver judges it), IPv4 and IPv6. */
static void snat_wrong_full_checksum_stays_wrong(void **state)
{
	struct flow v4 = flow4("10.10.1.4", "192.0.2.83", IPPROTO_UDP, 40007, 53);
	struct flow v6 = { .family = AF_INET6, .src = "fd00:10:0:1::4", .dst = "2001:db8:200::82",
			   .proto = IPPROTO_TCP, .sport = 45200, .dport = 443, .payload = 64 };
	struct harness_result r;
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &v4);
	l4_of(&in)[6] ^= 0x5a;
	r = run(HUB, &in);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	{
		uint8_t *ip = ip_of(&r.out), *l4 = l4_of(&r.out);
		size_t len = get16(ip + 2) - ip_header_len(ip);

		assert_int_not_equal(fold(checksum_add(checksum_add(0, ip + 12, 8) + ip[9] + len, l4, len)),
				     0xffff);
	}
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &v6);
	in.data[14 + 40 + 16] ^= 0x5a;
	r = run(HUB, &in);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_not_equal(get16(r.out.data + 14 + 40 + 16), ipv6_l4_checksum_expected(r.out.data + 14));
}

/* An ICMPv6 error from a router on the way about the frame that left, quoting `quote`
 * bytes of it from its IPv6 header on (RFC 4443: as much as fits). */
static struct frame icmp6_error(struct frame *left, uint8_t type, uint8_t code, size_t quote)
{
	uint8_t *quoted = left->data + 14;
	char vip[INET6_ADDRSTRLEN];
	struct frame f;

	inet_ntop(AF_INET6, quoted + 8, vip, sizeof(vip)); /* the VIP the quoted packet left from */
	frame_icmp_error(&f, UPLINK_GW_MAC, UPLINK_PEER_MAC, AF_INET6, "2001:db8:100::2", vip, type,
			 code, type == 2 ? 1280 : 0, quoted, quote);
	return f;
}

/* NAT66: ICMPv6 errors about a translated flow reach the VM with the outer destination,
 * the quoted source and port (or echo identifier) translated back and every checksum
 * right: the ICMPv6 message's (which covers the outer addresses) and the quoted one's. */
static void snat_nat66_icmpv6_errors_reach_the_vm(void **state)
{
	static const struct { uint8_t proto, type, code; uint16_t sport; bool whole; } cases[] = {
		{ IPPROTO_UDP, 1, 4, 45100, true },     /* port unreachable */
		{ IPPROTO_TCP, 2, 0, 45101, true },     /* packet too big */
		{ IPPROTO_ICMPV6, 3, 0, 0x5151, true }, /* time exceeded, about an echo */
		{ IPPROTO_TCP, 3, 0, 45102, false },    /* a quote cut after 8 bytes of TCP */
	};
	uint8_t vm[16];

	require_gateway();
	inet_pton(AF_INET6, "fd00:10:0:1::4", vm);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct flow fl = { .family = AF_INET6, .src = "fd00:10:0:1::4",
				   .dst = "2001:db8:200::81", .proto = cases[i].proto,
				   .sport = cases[i].sport, .dport = 5353, .payload = 16 };
		struct frame out, err;
		struct harness_result r;
		uint8_t *ip6, *quoted, *ql4;
		size_t quote;

		frame_build(&out, HUB_GW_MAC, HUB_VM_MAC, &fl);
		r = run(HUB, &out);
		assert_int_equal(r.verdict, XDP_REDIRECT);
		quote = cases[i].whole ? r.out.len - 14 : 40 + 8;
		err = icmp6_error(&r.out, cases[i].type, cases[i].code, quote);
		r = run(UPLINK, &err);
		if (r.verdict != XDP_REDIRECT)
			print_message("case %zu: verdict %d drop reason %u\n", i, r.verdict,
				      r.trace.drop_reason);
		assert_int_equal(r.verdict, XDP_REDIRECT);
		assert_int_equal(r.trace.egress_ifindex, gw.ifaces[HUB].ifindex);
		ip6 = r.out.data + 14;
		quoted = ip6 + 48;
		ql4 = quoted + 40;
		assert_memory_equal(ip6 + 24, vm, 16);
		assert_ipv6_l4_checksum(ip6);
		assert_memory_equal(quoted + 8, vm, 16);
		assert_int_equal(cases[i].proto == IPPROTO_ICMPV6 ? get16(ql4 + 4) : get16(ql4),
				 cases[i].sport);
		if (cases[i].whole)
			assert_ipv6_l4_checksum(quoted);
	}
}

/* ---- capacity and GC ---- */

static void snat_a_million_mappings_fit_a_full_table_drops_and_the_gc_collects(void **state)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	const uint32_t n = 1000000;
	struct snat_gc_result gc;
	struct timespec t0, t1;
	uint32_t live_before;

	require_gateway();
	assert_int_equal(bpf_obj_get_info_by_fd(snat_maps.mappings_fd, &info, &len), 0);
	assert_int_equal(info.max_entries, 1048576); /* limits.snatTableSize's default */
	len = sizeof(info);
	assert_int_equal(bpf_obj_get_info_by_fd(snat_maps.reverse_fd, &info, &len), 0);
	assert_int_equal(info.max_entries, 1048576);
	live_before = (uint32_t)stats_map_entries(snat_maps.mappings_fd);

	/* A million expired mappings (last seen at boot), each with its reverse entry
	 * released long ago, written in batches as a restarted loader would find them. */
	struct snat_flow_key *keys = calloc(n, sizeof(*keys)), *rkeys = calloc(n, sizeof(*rkeys));
	struct snat_mapping *values = calloc(n, sizeof(*values));
	struct snat_reverse *rvalues = calloc(n, sizeof(*rvalues));

	assert_non_null(keys);
	assert_non_null(rkeys);
	assert_non_null(values);
	assert_non_null(rvalues);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t src = htonl(0x0a630000 + (i >> 8)), dst = htonl(0xc6336400 + (i & 0xff));
		uint32_t vip = htonl(0xcb007101 + (i >> 15));

		keys[i].family = rkeys[i].family = AF_INET;
		keys[i].proto = rkeys[i].proto = IPPROTO_UDP;
		memcpy(keys[i].src, &src, 4);
		memcpy(keys[i].dst, &dst, 4);
		keys[i].src_port = htons(1000 + (i & 0xff));
		keys[i].dst_port = htons(53);
		values[i].idle_timeout_seconds = values[i].transitory_timeout_seconds = 1;
		memcpy(values[i].vip, &vip, 4);
		values[i].vip_port = htons(1024 + (i & 0x7fff));
		memcpy(rkeys[i].src, keys[i].dst, 16);
		rkeys[i].src_port = keys[i].dst_port;
		memcpy(rkeys[i].dst, &vip, 4);
		rkeys[i].dst_port = values[i].vip_port;
		rvalues[i].flow = keys[i];
		rvalues[i].released_ns = 1;
	}
	for (uint32_t i = 0; i < n; i += 65536) {
		uint32_t count = n - i < 65536 ? n - i : 65536, count2 = count;
		if (bpf_map_update_batch(snat_maps.mappings_fd, keys + i, values + i, &count, NULL) ||
		    bpf_map_update_batch(snat_maps.reverse_fd, rkeys + i, rvalues + i, &count2, NULL))
			fail_msg("insert at %u failed: %s", i, strerror(errno));
	}
	free(keys);
	free(rkeys);
	free(values);
	free(rvalues);

	/* Fill the reverse table to its capacity: a new flow then finds no room, is dropped
	 * as snat_table_full, and leaves nothing half made behind. */
	for (uint32_t i = 0;; i++) {
		struct snat_flow_key rkey = { .family = AF_INET, .proto = IPPROTO_TCP };
		struct snat_reverse rev = { .released_ns = 1 };
		uint32_t addr = htonl(0xc6336500 + i);

		memcpy(rkey.src, &addr, 4);
		if (bpf_map_update_elem(snat_maps.reverse_fd, &rkey, &rev, BPF_NOEXIST)) {
			assert_int_equal(errno, E2BIG);
			break;
		}
		assert_true(i < 100000);
	}
	{
		/* A VM new to SNAT: its block's ports have no entry to take over. */
		struct flow fl = flow4("10.10.1.30", "192.0.2.95", IPPROTO_TCP, 44000, 443);
		struct snat_flow_key key = { .family = AF_INET, .proto = IPPROTO_TCP };
		struct snat_mapping m;
		struct frame in;

		frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
		assert_dropped(&in, HUB, DROP_SNAT_TABLE_FULL);
		inet_pton(AF_INET, "10.10.1.30", key.src);
		inet_pton(AF_INET, "192.0.2.95", key.dst);
		key.src_port = htons(44000);
		key.dst_port = htons(443);
		assert_int_not_equal(bpf_map_lookup_elem(snat_maps.mappings_fd, &key, &m), 0);
	}
	assert_true(stats_map_entries(snat_maps.mappings_fd) >= n);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(snat_gc(GATEWAY, datapath_clock_ns(), &gc), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("gc pass over %zu mappings and %zu reverse entries: %.2f s\n", gc.mappings,
		      gc.reverse, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	assert_true(gc.mappings_expired >= n);
	assert_true(gc.reverse_freed >= n);
	/* The live mappings of the other tests are still there (none expired inside a
	 * second), and none of the million. */
	assert_true(stats_map_entries(snat_maps.mappings_fd) <= live_before);
}

/* What the kernel would forward out the uplink untranslated, or the Internet route would
 * translate, and must do neither: Azure's platform addresses, link-local destinations,
 * neighbour discovery to an Internet address. */
static void snat_platform_and_link_local_never_leave_by_the_uplink(void **state)
{
	struct flow fl = flow4("10.10.1.4", "168.63.129.16", IPPROTO_UDP, 40100, 53);
	struct flow nd = { .family = AF_INET6, .src = "fd00:10:0:1::4", .dst = "2001:db8::50",
			   .proto = IPPROTO_ICMPV6, .ttl = 255, .payload = 16 };
	struct frame in;
	uint8_t *ip;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_dropped(&in, HUB, DROP_PLATFORM_ADDRESS);
	fl = flow4("10.10.1.4", "169.254.169.254", IPPROTO_TCP, 40101, 80);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_dropped(&in, HUB, DROP_PLATFORM_ADDRESS);
	fl = flow4("10.10.1.4", "169.254.10.10", IPPROTO_UDP, 40102, 5000);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_dropped(&in, HUB, DROP_LINK_LOCAL);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &nd);
	ip = ip_of(&in);
	ip[40] = 135; /* neighbour solicitation */
	transport_checksum(ip + 40, in.len - 14 - 40, &nd, ip + 8, ip + 24, 16);
	assert_dropped(&in, HUB, DROP_SNAT_UNSUPPORTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(snat_tcp_leaves_with_the_vip_and_replies_come_back, every_mapping_expired),
		cmocka_unit_test_setup(snat_udp_round_trip, every_mapping_expired),
		cmocka_unit_test_setup(snat_translates_every_fragment_both_ways, every_mapping_expired),
		cmocka_unit_test_setup(snat_udp_zero_checksum_stays_zero, every_mapping_expired),
		cmocka_unit_test_setup(snat_icmp_echo_identifier_is_translated, every_mapping_expired),
		cmocka_unit_test_setup(snat_partial_checksum_is_completed_both_ways, every_mapping_expired),
		cmocka_unit_test_setup(snat_nat66_partial_checksum_is_completed_both_ways, every_mapping_expired),
		cmocka_unit_test_setup(snat_wrong_full_checksum_stays_wrong, every_mapping_expired),
		cmocka_unit_test_setup(snat_icmp_port_unreachable_reaches_the_vm, every_mapping_expired),
		cmocka_unit_test_setup(snat_icmp_fragmentation_needed_reaches_the_vm, every_mapping_expired),
		cmocka_unit_test_setup(snat_icmp_time_exceeded_reaches_the_vm, every_mapping_expired),
		cmocka_unit_test_setup(snat_unsolicited_inbound_to_a_vip_is_dropped, every_mapping_expired),
		cmocka_unit_test_setup(snat_reply_from_another_port_is_dropped, every_mapping_expired),
		cmocka_unit_test_setup(snat_exhaustion_drops_new_flows_and_keeps_live_ones, every_mapping_expired),
		cmocka_unit_test_setup(snat_expired_port_is_reused_without_the_collector, every_mapping_expired),
		cmocka_unit_test_setup(snat_vm_at_its_port_block_gets_ports_again_when_its_mappings_expire_without_the_collector, every_mapping_expired),
		cmocka_unit_test_setup(snat_answered_flow_is_promoted_and_outlives_a_flood_of_new_flows, every_mapping_expired),
		cmocka_unit_test_setup(snat_vips_of_a_vnet_pool_their_ports, every_mapping_expired),
		cmocka_unit_test_setup(snat_nat_gateway_wins_for_its_subnet, every_mapping_expired),
		cmocka_unit_test_setup(snat_vm_without_a_free_block_gets_an_idle_vms_block, every_mapping_expired),
		cmocka_unit_test_setup(snat_counts_translations_each_way, every_mapping_expired),
		cmocka_unit_test_setup(snat_platform_and_link_local_never_leave_by_the_uplink, every_mapping_expired),
		cmocka_unit_test_setup(snat_nat66_tcp_and_echo_round_trip, every_mapping_expired),
		cmocka_unit_test_setup(snat_nat66_icmpv6_errors_reach_the_vm, every_mapping_expired),
		cmocka_unit_test_setup(snat_reply_after_idle_timeout_is_dropped, every_mapping_expired),
		cmocka_unit_test_setup(snat_mapping_stamped_ahead_expires, every_mapping_expired),
		cmocka_unit_test_setup(snat_tcp_rst_shortens_the_timeout, every_mapping_expired),
		cmocka_unit_test_setup(snat_a_million_mappings_fit_a_full_table_drops_and_the_gc_collects, every_mapping_expired),
	};

	return cmocka_run_group_tests_name("snat", tests, setup_gateway, teardown_gateway);
}

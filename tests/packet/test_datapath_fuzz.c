/* Datapath fuzzing: random and mutated frames through the loaded program with
 * BPF_PROG_TEST_RUN. Well-formed frames between the topology's VNets are checked against
 * a reference model of Azure's forwarding (source VNet, peering, system routes); every
 * frame, mutated or not, must get a defined verdict with a counted reason, a frame handed
 * to the kernel must be untouched, and a forwarded frame must leave well-formed. The
 * model knows IPv4 options (source routes dropped), Ethernet trailers (transport headers
 * only within the IP length), neighbour discovery and link-local sources, and fragment
 * sequences (in order, a later fragment first, duplicated, overlapping). A second gateway
 * checks the SNAT tables (ports per destination, take-over of aged mappings, per-VM
 * counts and limits) and the flow tables (new_flows, promotion to flows) against a model
 * of their own, table by table after every step.
 * FUZZ_SEED picks the sequence (printed, so a failure can be replayed); FUZZ_FRAMES how
 * many frames. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include "vnet_xdp.h"
#include "packet/gateway_harness.h"

static struct gateway_harness gw = { .prefix = "vxfuzz", .gateway = "fuzz" };

static int setup_gateway(void **state) { return harness_up(&gw); }
static int teardown_gateway(void **state) { harness_down(&gw); return 0; }

static void require_gateway(void) { harness_require(&gw); }

/* xorshift64*: reproducible from the printed seed, independent of libc's rand(). */
static uint64_t rng_state;
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}
static uint32_t below(uint32_t n) { return n ? rng() % n : 0; }
static int chance(int percent) { return below(100) < (uint32_t)percent; }

static void rng_seed_from_env(void)
{
	const char *seed = getenv("FUZZ_SEED");

	rng_state = seed ? strtoull(seed, NULL, 0) : (uint64_t)time(NULL);
	if (!rng_state)
		rng_state = 1;
	print_message("datapath fuzz seed %llu (replay with FUZZ_SEED)\n",
		      (unsigned long long)rng_state);
}

static size_t frames_from_env(size_t fallback)
{
	const char *n = getenv("FUZZ_FRAMES");

	return n ? strtoul(n, NULL, 0) : fallback;
}

/* ---- the reference model of the topology (scripts/topology.sh) ---- */

static const int vnet_octet[3] = { 10, 11, 12 };           /* hub, spoke1, spoke2 */
static const char *vm_mac[3] = { HUB_VM_MAC, SPOKE1_VM_MAC, SPOKE2_VM_MAC };
static const char *gw_mac[3] = { HUB_GW_MAC, SPOKE1_GW_MAC, SPOKE2_GW_MAC };

static int peered(int a, int b) { return a == b || a == HUB || b == HUB; }

struct expectation {
	int verdict;
	uint32_t drop_reason;   /* XDP_DROP */
	uint32_t counter;       /* XDP_PASS */
	int egress;             /* XDP_REDIRECT */
};

/* A well-formed frame from a host of VNet `from` (spoofed: an address outside it) to host
 * `host` of VNet `to` (host 1 is the gateway's own address, 4 a VM with a known
 * neighbour, 5 an address nobody answers for). */
static struct expectation expected_forwarding(int from, int to, int host, int spoofed,
					      int family, int ttl)
{
	/* The gateway's own addresses belong to the kernel, whose own source checks apply. */
	if (host == 1)
		return (struct expectation){ XDP_PASS, 0, COUNT_PASS_LOCAL };
	if (spoofed)
		return (struct expectation){ XDP_DROP, DROP_SPOOFED_SOURCE };
	if (!peered(from, to)) /* peering is not transitive */
		return family == AF_INET ? (struct expectation){ XDP_DROP, DROP_ROUTE_NONE }
					 : (struct expectation){ XDP_DROP, DROP_NO_ROUTE };
	if (ttl <= 1)
		return (struct expectation){ XDP_PASS, 0, COUNT_PASS_TTL_EXPIRED };
	if (host == 5)
		return (struct expectation){ XDP_PASS, 0, COUNT_PASS_NEIGHBOUR };
	return (struct expectation){ XDP_REDIRECT, 0, COUNT_FORWARDED, to };
}

static void address_of(char *buf, size_t size, int family, int vnet_octet_value, int host)
{
	if (family == AF_INET)
		snprintf(buf, size, "10.%d.%d.%d", vnet_octet_value, host == 1 ? 0 : 1, host);
	else
		snprintf(buf, size, "fd00:%d:0:%d::%d", vnet_octet_value, host == 1 ? 0 : 1, host);
}

static const uint8_t protocols[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP };

/* A random well-formed flow; the caller knows where it goes. */
static struct flow random_flow(int family, char *src, char *dst)
{
	uint8_t proto = protocols[below(3)];

	if (proto == IPPROTO_ICMP && family == AF_INET6)
		proto = IPPROTO_ICMPV6;
	return (struct flow){ .family = family, .src = src, .dst = dst, .proto = proto,
			      .sport = 1 + below(65535), .dport = 1 + below(65535),
			      .ttl = chance(5) ? 1 : 2 + below(254), .ip_id = (uint32_t)rng(),
			      .payload = below(200) };
}

/* ---- checks every verdict must pass ---- */

static uint16_t get16(const uint8_t *p) { return (p[0] << 8) | p[1]; }

static int ipv4_header_valid(const uint8_t *ip, size_t avail)
{
	size_t hlen;

	if (avail < 20 || (ip[0] >> 4) != 4)
		return 0;
	hlen = (ip[0] & 0xf) * 4;
	if (hlen < 20 || hlen > avail || get16(ip + 2) < hlen || get16(ip + 2) > avail)
		return 0;
	return checksum_fold(checksum_add(0, ip, hlen)) == 0;
}

/* The datapath completes a TCP/UDP checksum a sender left to offload (bpf/checksum.h): an
 * unfragmented segment whose checksum field holds the folded pseudo-header sum. A mutated
 * frame's field holds that sum by a 1 in 65536 chance, and its forwarded copy then carries
 * the segment's full checksum. Returns the field's offset in the IP packet at ip (IPv4, or
 * IPv6 with the segment right after its header), 0 where the frame holds no such field. */
static size_t offload_checksum_field(const uint8_t *ip, size_t avail, int ipv4)
{
	size_t hlen = ipv4 ? (ip[0] & 0xf) * 4u : 40, l4_len, at;
	uint8_t proto = ipv4 ? ip[9] : ip[6];
	uint32_t sum;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	if (ipv4 && (get16(ip + 6) & 0x3fff)) /* a fragment: never completed */
		return 0;
	l4_len = ipv4 ? get16(ip + 2) - hlen : get16(ip + 4);
	at = hlen + (proto == IPPROTO_TCP ? 16 : 6);
	if (at + 2 > avail)
		return 0;
	sum = checksum_add(0, ip + (ipv4 ? 12 : 8), ipv4 ? 8 : 32) + proto + l4_len;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return get16(ip + at) == sum ? at : 0;
}

/* The segment's checksum verifies: its sum with the pseudo header folds to all ones. */
static int transport_checksum_verifies(const uint8_t *ip, size_t avail, int ipv4)
{
	size_t hlen = ipv4 ? (ip[0] & 0xf) * 4u : 40;
	size_t l4_len = ipv4 ? get16(ip + 2) - hlen : get16(ip + 4);
	uint8_t proto = ipv4 ? ip[9] : ip[6];
	uint32_t sum;

	if (hlen + l4_len > avail)
		return 0;
	sum = checksum_add(0, ip + (ipv4 ? 12 : 8), ipv4 ? 8 : 32) + proto + l4_len;
	sum = checksum_add(sum, ip + hlen, l4_len);
	return checksum_fold(sum) == 0;
}

/* A forwarded frame must be the input with new MACs, the TTL or hop limit one lower
 * and (IPv4) a header checksum that verifies; nothing else may change but a checksum
 * left to offload, which must then verify. */
static void assert_forwarded_well_formed(const struct frame *in, const struct harness_result *r)
{
	const uint8_t *ip = r->out.data + 14;
	uint16_t ethertype = get16(in->data + 12);
	struct frame expected = *in;
	size_t completed;

	assert_int_equal(r->out.len, in->len);
	completed = offload_checksum_field(in->data + 14, in->len - 14, ethertype == 0x0800);
	if (completed && memcmp(ip + completed, in->data + 14 + completed, 2)) {
		assert_true(transport_checksum_verifies(ip, r->out.len - 14, ethertype == 0x0800));
		memcpy(expected.data + 14 + completed, ip + completed, 2);
		in = &expected;
	}
	assert_true(ethertype == 0x0800 || ethertype == 0x86dd);
	assert_int_equal(get16(r->out.data + 12), ethertype);
	/* The destination MAC is the next hop's, the source MAC the egress's own. */
	assert_memory_not_equal(r->out.data, in->data, 12);
	if (ethertype == 0x0800) {
		assert_true(ipv4_header_valid(ip, r->out.len - 14));
		assert_int_equal(ip[8], in->data[14 + 8] - 1);
		assert_memory_equal(ip, in->data + 14, 8);
		assert_int_equal(ip[9], in->data[14 + 9]);
		assert_memory_equal(ip + 12, in->data + 14 + 12, r->out.len - 14 - 12);
	} else {
		assert_true(r->out.len >= 14 + 40u && (ip[0] >> 4) == 6);
		assert_true(14 + 40u + get16(ip + 4) <= r->out.len);
		assert_int_equal(ip[7], in->data[14 + 7] - 1);
		assert_memory_equal(ip, in->data + 14, 7);
		assert_memory_equal(ip + 8, in->data + 14 + 8, r->out.len - 14 - 8);
	}
}

struct tally {
	uint64_t drops[DROP_REASON_MAX];
	uint64_t rx;
	size_t verdicts[5];
};

static void tally_baseline(struct tally *t)
{
	for (uint32_t i = 0; i < DROP_REASON_MAX; i++)
		t->drops[i] = harness_counter(gw.drops_fd, i);
	t->rx = harness_counter(gw.datapath_fd, COUNT_RX);
}

/* Runs a frame and checks what holds for every frame; returns the result. */
static struct harness_result run_checked(int iface, const struct frame *in, struct tally *t)
{
	struct harness_result r = harness_run(&gw, iface, in);

	switch (r.verdict) {
	case XDP_DROP:
		assert_true(r.trace.drop_reason > DROP_NONE && r.trace.drop_reason < DROP_REASON_MAX);
		t->drops[r.trace.drop_reason] += r.runs;
		break;
	case XDP_PASS:
		assert_int_equal(r.out.len, in->len);
		assert_memory_equal(r.out.data, in->data, in->len);
		break;
	case XDP_REDIRECT:
		assert_forwarded_well_formed(in, &r);
		break;
	default:
		fail_msg("verdict %d is not one the datapath defines", r.verdict);
	}
	t->verdicts[r.verdict]++;
	t->rx += r.runs;
	return r;
}

/* Every verdict was counted under its reason: the counters moved exactly as the runs. */
static void assert_counters_match(const struct tally *t)
{
	for (uint32_t i = 0; i < DROP_REASON_MAX; i++)
		assert_int_equal(harness_counter(gw.drops_fd, i), t->drops[i]);
	/* The VMs' own router solicitations reach the real interfaces meanwhile. */
	assert_true(harness_counter(gw.datapath_fd, COUNT_RX) >= t->rx);
}

/* ---- mutations ---- */

static void frame_truncate(struct frame *f)
{
	f->len = below(f->len);
}

static void frame_flip_bytes(struct frame *f)
{
	for (uint32_t n = 1 + below(4); n && f->len; n--)
		f->data[below(f->len)] ^= 1 + below(255);
}

static void frame_garbage_tail(struct frame *f)
{
	size_t extra = below(64);

	for (size_t i = 0; i < extra && f->len < FRAME_MAX; i++)
		f->data[f->len++] = rng();
}

static void frame_insert(struct frame *f, size_t at, const uint8_t *bytes, size_t n)
{
	if (at > f->len || f->len + n > FRAME_MAX)
		return;
	memmove(f->data + at + n, f->data + at, f->len - at);
	memcpy(f->data + at, bytes, n);
	f->len += n;
}

static void frame_stack_vlans(struct frame *f)
{
	uint32_t tags = 1 + below(4);

	for (uint32_t i = 0; i < tags; i++) {
		uint8_t tag[4] = { 0, 0, below(16), below(256) };
		uint16_t tpid = chance(50) ? 0x8100 : 0x88a8;

		/* The new tag goes in front of the ethertype, which then names the tag. */
		tag[0] = f->data[12];
		tag[1] = f->data[13];
		frame_insert(f, 14, tag, 4);
		put16(f->data + 12, tpid);
		memcpy(tag, f->data + 14, 4);
		f->data[14] = tag[2] & 0x0f;
		f->data[15] = tag[3];
		f->data[16] = tag[0];
		f->data[17] = tag[1];
	}
}

static void ipv4_bad_ihl(struct frame *f)
{
	f->data[14] = 0x40 | below(16);
	ipv4_header_checksum(f->data + 14);
}

static void ipv4_random_options(struct frame *f)
{
	uint8_t options[40];
	size_t n = 4 * (1 + below(10));
	uint8_t *ip = f->data + 14;

	if ((ip[0] & 0xf) != 5)
		return;
	for (size_t i = 0; i < n; i++)
		options[i] = chance(50) ? 1 : rng();
	frame_insert(f, 14 + 20, options, n);
	ip[0] = 0x40 | (uint8_t)((20 + n) / 4);
	put16(ip + 2, get16(ip + 2) + n);
	ipv4_header_checksum(ip);
}

static void ipv4_fragment(struct frame *f)
{
	uint8_t *ip = f->data + 14;
	uint16_t frag = (chance(50) ? 0x2000 : 0) | (chance(50) ? below(0x2000) : 0);

	put16(ip + 6, frag);
	if (chance(30)) { /* a first fragment too short to hold its transport header */
		size_t hlen = (ip[0] & 0xf) * 4;

		f->len = 14 + hlen + below(8);
		put16(ip + 2, f->len - 14);
	}
	ipv4_header_checksum(ip);
}

static void ipv6_extension_chain(struct frame *f)
{
	static const uint8_t types[] = { 0 /* hop-by-hop */, 60 /* destination */, 43 /* routing */,
					 44 /* fragment */ };
	uint32_t n = 1 + below(12);
	uint8_t *ip = f->data + 14;

	for (uint32_t i = 0; i < n; i++) {
		uint8_t ext[24] = { 0 };
		uint8_t type = types[below(4)];
		size_t len = type == 44 ? 8 : 8 * (1 + below(3));

		ext[0] = ip[6];
		ext[1] = type == 44 ? 0 : len / 8 - 1;
		if (type == 44)
			put16(ext + 2, chance(50) ? below(0x10000) & 0xfff9 : 0);
		if (chance(10))
			ext[1] = rng(); /* a length that runs past the frame */
		frame_insert(f, 14 + 40, ext, len);
		ip[6] = type;
		put16(ip + 4, get16(ip + 4) + len);
	}
}

static void icmp_error_with_garbage(struct frame *f, int family)
{
	uint8_t *ip = f->data + 14;
	size_t hlen = family == AF_INET ? (size_t)(ip[0] & 0xf) * 4 : 40;
	uint8_t *icmp = ip + hlen;
	size_t inner = below(80);

	if (14 + hlen + 8 + inner > FRAME_MAX)
		return;
	if (family == AF_INET) {
		ip[9] = IPPROTO_ICMP;
		icmp[0] = chance(50) ? 3 : 11;
	} else {
		ip[6] = IPPROTO_ICMPV6;
		icmp[0] = chance(50) ? 1 : 3;
	}
	icmp[1] = below(16);
	memset(icmp + 2, 0, 6);
	for (size_t i = 0; i < inner; i++)
		icmp[8 + i] = rng();
	f->len = 14 + hlen + 8 + inner;
	if (family == AF_INET) {
		put16(ip + 2, hlen + 8 + inner);
		ipv4_header_checksum(ip);
	} else {
		put16(ip + 4, 8 + inner);
	}
}

/* Builds a well-formed frame, then breaks it in one or more ways. */
static void mutated_frame(struct frame *f, int *iface)
{
	int from = below(3), to = below(3), family = chance(50) ? AF_INET : AF_INET6;
	char src[64], dst[64];
	struct flow fl;

	*iface = chance(10) ? UPLINK : from;
	address_of(src, sizeof(src), family, vnet_octet[from], 4);
	address_of(dst, sizeof(dst), family, vnet_octet[to], 4);
	fl = random_flow(family, src, dst);
	frame_build(f, gw_mac[from], vm_mac[from], &fl);
	for (uint32_t n = 1 + below(2); n; n--) {
		switch (below(9)) {
		case 0: frame_truncate(f); break;
		case 1: frame_flip_bytes(f); break;
		case 2: frame_garbage_tail(f); break;
		case 3: frame_stack_vlans(f); break;
		case 4: if (family == AF_INET) ipv4_bad_ihl(f); else frame_truncate(f); break;
		case 5: if (family == AF_INET) ipv4_random_options(f); else ipv6_extension_chain(f); break;
		case 6: if (family == AF_INET) ipv4_fragment(f); else ipv6_extension_chain(f); break;
		case 7: icmp_error_with_garbage(f, family); break;
		default: /* random bytes of a random length */
			f->len = below(FRAME_MAX);
			for (size_t i = 0; i < f->len; i++)
				f->data[i] = rng();
		}
	}
	/* BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header: a NIC never
	 * delivers one either. */
	if (f->len < 14)
		f->len = 14;
}

/* ---- the classes the reference model knows beyond plain forwarding ---- */

/* Eight bytes of IPv4 options in the frame's header: a NOP run, record route, a timestamp
 * (all forwarded as the plain frame is) or a loose or strict source route (dropped). */
enum ipv4_option_class { OPTIONS_NOP, OPTIONS_RECORD_ROUTE, OPTIONS_TIMESTAMP, OPTIONS_LSRR,
			 OPTIONS_SSRR, OPTION_CLASSES };

static int ipv4_option_is_source_route(int class)
{
	return class == OPTIONS_LSRR || class == OPTIONS_SSRR;
}

static void ipv4_valid_options(struct frame *f, int class)
{
	static const uint8_t options[OPTION_CLASSES][8] = {
		[OPTIONS_NOP] = { 1, 1, 1, 1, 1, 1, 1, 1 },
		[OPTIONS_RECORD_ROUTE] = { 7, 7, 4, 0, 0, 0, 0, 1 },
		[OPTIONS_TIMESTAMP] = { 68, 8, 5, 0, 0, 0, 0, 0 },
		[OPTIONS_LSRR] = { 131, 7, 4, 10, 11, 1, 4, 0 },
		[OPTIONS_SSRR] = { 1, 137, 7, 4, 10, 12, 1, 4 },
	};
	uint8_t *ip = f->data + 14;

	frame_insert(f, 14 + 20, options[class], 8);
	ip[0] = 0x47;
	put16(ip + 2, get16(ip + 2) + 8);
	ipv4_header_checksum(ip);
}

/* Bytes past the IP packet, as a NIC delivers a padded or trailed frame: they are no
 * part of the packet and change nothing of its verdict. */
static void frame_trailer(struct frame *f)
{
	for (size_t n = 1 + below(63); n && f->len < FRAME_MAX; n--)
		f->data[f->len++] = rng();
}

/* The IP packet ends inside its transport header (which the frame still carries whole,
 * in its trailer): the ports and flags there are the trailer's, not the packet's. */
static void ip_ends_before_transport(struct frame *f, const struct flow *fl)
{
	uint8_t *ip = f->data + 14;
	size_t header = fl->proto == IPPROTO_TCP ? 20 : 8, cut = below(header);

	if (fl->family == AF_INET) {
		put16(ip + 2, (ip[0] & 0xf) * 4 + cut);
		ipv4_header_checksum(ip);
	} else {
		put16(ip + 4, cut);
	}
}

/* ICMPv6 neighbour solicitation (hop limit 255, as RFC 4861 sends it) in place of the
 * echo request the flow built. */
static void icmpv6_to_neighbour_solicitation(struct frame *f, struct flow *fl)
{
	uint8_t *ip = f->data + 14, *icmp = ip + 40;

	ip[7] = 255;
	fl->ttl = 255;
	icmp[0] = 135;
	transport_checksum(icmp, get16(ip + 4), fl, ip + 8, ip + 24, 16);
}

/* What one well-formed frame is, beyond where it goes. */
struct frame_case {
	int from, to, host, spoofed, family, ttl;
	int source_route;        /* IPv4 LSRR or SSRR option */
	int transport_in_trailer;
	int link_local_source;   /* fe80::4 or 169.254.1.4 */
	int nd_to_link_local;    /* neighbour discovery to fe80::1 */
};

/* The parser's refusals come first, then the kernel's share (neighbour discovery to a
 * link-local address, the gateway's own addresses), then link-local traffic, which is
 * never forwarded; the rest is forwarding. Neighbour discovery to a unicast address is
 * forwarding like any packet. */
static struct expectation expected_verdict(const struct frame_case *c)
{
	if (c->source_route)
		return (struct expectation){ XDP_DROP, DROP_IPV4_SOURCE_ROUTE };
	if (c->transport_in_trailer)
		return (struct expectation){ XDP_DROP, DROP_MALFORMED_L4 };
	if (c->nd_to_link_local)
		return (struct expectation){ XDP_PASS, 0, COUNT_PASS_CONTROL };
	if (c->link_local_source)
		return c->host == 1 ? (struct expectation){ XDP_PASS, 0, COUNT_PASS_LOCAL }
				    : (struct expectation){ XDP_DROP, DROP_LINK_LOCAL };
	return expected_forwarding(c->from, c->to, c->host, c->spoofed, c->family, c->ttl);
}

static int result_matches_on(const struct gateway_harness *h, const struct harness_result *r,
			     const struct expectation *want)
{
	return r->verdict == want->verdict &&
	       (want->verdict != XDP_DROP || r->trace.drop_reason == want->drop_reason) &&
	       (want->verdict != XDP_PASS || r->trace.counter == want->counter) &&
	       (want->verdict != XDP_REDIRECT ||
		r->trace.egress_ifindex == h->ifaces[want->egress].ifindex);
}

static int result_matches(const struct harness_result *r, const struct expectation *want)
{
	return result_matches_on(&gw, r, want);
}

/* ---- tests ---- */

static void well_formed_frames_match_the_reference_model(void **state)
{
	size_t frames = frames_from_env(20000), mismatches = 0;
	struct tally t = { 0 };

	require_gateway();
	tally_baseline(&t);
	for (size_t i = 0; i < frames; i++) {
		int from = below(3), to = below(3), family = chance(50) ? AF_INET : AF_INET6;
		int hosts[] = { 1, 4, 5 }, host = hosts[below(3)], spoofed = chance(10);
		char src[64], dst[64];
		struct expectation want;
		struct harness_result r;
		struct frame in;
		struct flow fl;

		struct frame_case c = { .from = from, .to = to, .host = host, .spoofed = spoofed,
					.family = family };

		/* A spoofed source claims a VM address of another VNet (or of no VNet). */
		address_of(src, sizeof(src), family, spoofed ? (from == 2 ? 40 : vnet_octet[from + 1]) :
							       vnet_octet[from], 4);
		address_of(dst, sizeof(dst), family, vnet_octet[to], host);
		if (chance(5)) {
			c.link_local_source = 1;
			snprintf(src, sizeof(src), family == AF_INET ? "169.254.1.4" : "fe80::4");
		}
		fl = random_flow(family, src, dst);
		if (family == AF_INET6 && fl.proto == IPPROTO_ICMPV6 && chance(30)) {
			c.nd_to_link_local = chance(50);
			if (c.nd_to_link_local)
				snprintf(dst, sizeof(dst), "fe80::1");
			fl.ttl = 255;
		}
		if (chance(10)) /* options and extension headers must not change the verdict */
			fl.payload = fl.payload > 20 ? fl.payload : 20;
		frame_build(&in, gw_mac[from], vm_mac[from], &fl);
		if (fl.ttl == 255 && fl.proto == IPPROTO_ICMPV6)
			icmpv6_to_neighbour_solicitation(&in, &fl);
		c.ttl = fl.ttl;
		if (family == AF_INET && chance(20)) {
			int options = below(OPTION_CLASSES);

			ipv4_valid_options(&in, options);
			c.source_route = ipv4_option_is_source_route(options);
		}
		if (chance(15)) {
			frame_trailer(&in);
			if (chance(30)) {
				ip_ends_before_transport(&in, &fl);
				c.transport_in_trailer = 1;
			}
		}
		want = expected_verdict(&c);
		r = run_checked(from, &in, &t);
		if (!result_matches(&r, &want)) {
			if (mismatches++ < 5)
				print_message("mismatch: %s -> %s proto %u ttl %u from %d: verdict %d reason %u "
					      "counter %u, model %d reason %u counter %u\n",
					      src, dst, fl.proto, fl.ttl, from, r.verdict, r.trace.drop_reason,
					      r.trace.counter, want.verdict, want.drop_reason, want.counter);
		}
	}
	print_message("%zu frames: %zu forwarded, %zu passed, %zu dropped, %zu mismatches\n", frames,
		      t.verdicts[XDP_REDIRECT], t.verdicts[XDP_PASS], t.verdicts[XDP_DROP], mismatches);
	assert_int_equal(mismatches, 0);
	assert_true(t.verdicts[XDP_REDIRECT] > 0 && t.verdicts[XDP_PASS] > 0 && t.verdicts[XDP_DROP] > 0);
	assert_counters_match(&t);
}

/* A datagram's fragments in one of these orders: the first fragment first, a later one
 * before its first, a later one twice, or (TCP) a later one starting inside the first's
 * transport header. */
enum fragment_order { IN_ORDER, LATER_BEFORE_FIRST, DUPLICATE, OVERLAPPING, FRAGMENT_ORDERS };

/* What a later fragment gets once its first was judged (bpf/frag.h): dropped when it
 * starts inside the first's transport header, else the first's verdict. */
static struct expectation expected_later_fragment(const struct expectation *first,
						  size_t offset, size_t transport_header)
{
	if (offset < transport_header)
		return (struct expectation){ XDP_DROP, DROP_FRAGMENT_OVERLAP };
	return *first;
}

static void fragment_check(const struct frame *f, const struct expectation *want,
			   const char *what, struct tally *t, size_t *mismatches)
{
	struct harness_result r = run_checked(HUB, f, t);

	if (!result_matches(&r, want) && (*mismatches)++ < 5)
		print_message("mismatch: %s fragment: verdict %d reason %u, model %d reason %u\n",
			      what, r.verdict, r.trace.drop_reason, want->verdict, want->drop_reason);
}

static void fragment_sequences_match_the_reference_model(void **state)
{
	size_t datagrams = frames_from_env(20000) / 20, mismatches = 0;
	uint32_t id = (uint32_t)rng();
	struct tally t = { 0 };

	require_gateway();
	tally_baseline(&t);
	for (size_t i = 0; i < datagrams; i++) {
		int to = below(3), family = chance(50) ? AF_INET : AF_INET6, order = below(FRAGMENT_ORDERS);
		size_t header, first_len, later_at;
		struct expectation first, unseen = { XDP_DROP, DROP_FRAGMENT_UNSEEN }, later;
		struct frame whole, head, rest, overlap;
		char src[64], dst[64];
		struct flow fl;

		address_of(src, sizeof(src), family, vnet_octet[HUB], 4);
		address_of(dst, sizeof(dst), family, vnet_octet[to], 4);
		fl = random_flow(family, src, dst);
		fl.ttl = 2 + below(254);
		fl.ip_id = ++id & (family == AF_INET ? 0xffff : 0xfffff);
		if (order == OVERLAPPING) /* only TCP's header is longer than a fragment unit */
			fl.proto = IPPROTO_TCP;
		header = fl.proto == IPPROTO_TCP ? 20 : 8;
		fl.payload = 48 + below(100);
		frame_build(&whole, HUB_GW_MAC, HUB_VM_MAC, &fl);
		/* The first fragment holds the transport header whole, in 8-byte units. */
		first_len = (header + 7) / 8 * 8 + 8 * below(3);
		frame_fragment(&head, &whole, 0, first_len, 1, id);
		later_at = first_len;
		frame_fragment(&rest, &whole, later_at, header + fl.payload - later_at, 0, id);
		/* A same-VNet destination is forwarded back out of the hub like any other. */
		first = expected_forwarding(HUB, to, 4, 0, family, fl.ttl);
		later = expected_later_fragment(&first, later_at, header);
		switch (order) {
		case LATER_BEFORE_FIRST:
			fragment_check(&rest, &unseen, "later before first", &t, &mismatches);
			fragment_check(&head, &first, "first after later", &t, &mismatches);
			fragment_check(&rest, &later, "later again", &t, &mismatches);
			break;
		case DUPLICATE:
			fragment_check(&head, &first, "first", &t, &mismatches);
			fragment_check(&rest, &later, "later", &t, &mismatches);
			fragment_check(&rest, &later, "duplicate later", &t, &mismatches);
			break;
		case OVERLAPPING: {
			struct expectation over = expected_later_fragment(&first, 8, header);

			frame_fragment(&overlap, &whole, 8, header + fl.payload - 8, 0, id);
			fragment_check(&head, &first, "first", &t, &mismatches);
			fragment_check(&overlap, &over, "overlapping", &t, &mismatches);
			fragment_check(&rest, &later, "later", &t, &mismatches);
			break;
		}
		default:
			fragment_check(&head, &first, "first", &t, &mismatches);
			fragment_check(&rest, &later, "later", &t, &mismatches);
		}
	}
	print_message("%zu datagrams: %zu forwarded, %zu dropped, %zu mismatches\n", datagrams,
		      t.verdicts[XDP_REDIRECT], t.verdicts[XDP_DROP], mismatches);
	assert_int_equal(mismatches, 0);
	assert_true(t.verdicts[XDP_REDIRECT] > 0 && t.verdicts[XDP_DROP] > 0);
	assert_counters_match(&t);
}

static void mutated_frames_get_defined_verdicts(void **state)
{
	size_t frames = frames_from_env(50000);
	struct tally t = { 0 };
	size_t reasons = 0;

	require_gateway();
	tally_baseline(&t);
	for (size_t i = 0; i < frames; i++) {
		struct frame in;
		int iface;

		memset(&in, 0, sizeof(in));
		mutated_frame(&in, &iface);
		run_checked(iface, &in, &t);
	}
	assert_counters_match(&t);
	for (uint32_t i = 1; i < DROP_REASON_MAX; i++)
		reasons += harness_counter(gw.drops_fd, i) > 0;
	print_message("%zu frames: %zu forwarded, %zu passed, %zu dropped under %zu reasons\n", frames,
		      t.verdicts[XDP_REDIRECT], t.verdicts[XDP_PASS], t.verdicts[XDP_DROP], reasons);
	/* The mutations reach the parser's malformed cases, not just one of them. */
	assert_true(reasons >= 8);
}

/* ---- the SNAT and flow tables against their reference model ---- */

/* A gateway of its own: tests/data/snat/packet.json with the hub's one IPv4 VIP holding 4
 * ports (1024-1027) shared by every VM (snatMappingsPerVm 0: no per-VM port blocks, each
 * port reused per destination; the blocks have their tests in test_snat.c), timeouts long enough that nothing ages on its
 * own while the test runs, and an NSG of Azure's default rules on the hub's subnet, so
 * that its flows are kept in the flow tables. */
static struct gateway_harness snat_gw = {
	.prefix = "vxfzsn",
	.gateway = "fuzzsnat",
	.config_command =
		"sed \"s/\\\"snatpkt\\\"/\\\"$GATEWAY\\\"/\" tests/data/snat/packet.json | jq '"
		".gateway.limits += {\"snatPortMax\": 1027, \"udpIdleTimeoutSeconds\": 120,"
		" \"tcpTransitoryTimeoutSeconds\": 120, \"snatMappingsPerVm\": 0} |"
		" .resources += [{\"type\": \"Microsoft.Network/networkSecurityGroups\","
		" \"name\": \"hub-fuzz\", \"properties\": {\"securityRules\": []}}] |"
		" (.resources[] | select(.name == \"hub\") | .properties.subnets[0].properties"
		".networkSecurityGroup) = {\"id\": \"hub-fuzz\"}'",
	.gateway_setup = "ip -n $GATEWAY_NS route add default via 198.51.100.2 && for h in 5 6 7;"
			 " do ip -n $GATEWAY_NS neigh replace 10.10.1.$h lladdr 02:00:00:00:10:0$h"
			 " dev to-hub nud permanent; done",
};

static struct {
	int mappings_fd, flows_fd, new_flows_fd;
} snat_maps;

static int setup_snat_gateway(void **state)
{
	if (harness_up(&snat_gw))
		return -1;
	if (!snat_gw.ready)
		return 0;
	snat_maps.mappings_fd = harness_map(&snat_gw, "snat_mappings");
	snat_maps.flows_fd = harness_map(&snat_gw, "flows");
	snat_maps.new_flows_fd = harness_map(&snat_gw, "new_flows");
	snat_gw.ready = snat_maps.mappings_fd >= 0 &&
			snat_maps.flows_fd >= 0 && snat_maps.new_flows_fd >= 0;
	if (!snat_gw.ready)
		snat_gw.why_not = "the SNAT or flow maps are not pinned";
	return snat_gw.ready ? 0 : -1;
}

static int teardown_snat_gateway(void **state) { harness_down(&snat_gw); return 0; }

#define SNAT_VIP "203.0.113.10"
#define SNAT_PORT_MIN 1024
#define SNAT_PORTS 4
#define SNAT_VMS 4      /* 10.10.1.4 - 10.10.1.7 */
#define SNAT_SPORTS 4   /* 40000 - 40003 */
#define SNAT_REMOTES 2  /* 192.0.2.1:53, 192.0.2.2:53 */
#define SNAT_FLOWS (SNAT_VMS * SNAT_SPORTS * SNAT_REMOTES)

/* The model: each VM flow's mapping (the port it holds, whether it was aged past its
 * timeout and cool-down), each destination's ports (the flow whose reverse entry holds
 * it), and where the flow tables keep the flow. */
enum flow_table_place { FLOW_NOWHERE, FLOW_NEW, FLOW_ANSWERED };

#define VNET_FLOWS 4 /* 10.10.1.4:40000-40003 <-> 10.10.1.5:53, through the hub's NSG */

struct snat_model {
	struct { int mapped, port, aged; } mapping[SNAT_FLOWS];
	int holder[SNAT_REMOTES][SNAT_PORTS]; /* the flow + 1 whose reverse entry holds it */
	int place[SNAT_FLOWS];
	int vnet_place[VNET_FLOWS], vnet_initiator[VNET_FLOWS]; /* 0 from .4, 1 from .5 */
};

/* A reply translated back to its VM answers the VM's flow (flow_snat_answered in
 * bpf/flow.h): the flow moves from new_flows to flows. */
#define SNAT_REPLY_PROMOTES 1

static int flow_vm(int f) { return f / (SNAT_SPORTS * SNAT_REMOTES); }
static int flow_sport(int f) { return 40000 + f / SNAT_REMOTES % SNAT_SPORTS; }
static int flow_remote(int f) { return f % SNAT_REMOTES; }

static void flow_addresses(int f, char vm[32], char remote[32])
{
	snprintf(vm, 32, "10.10.1.%d", 4 + flow_vm(f));
	snprintf(remote, 32, "192.0.2.%d", 1 + flow_remote(f));
}

/* A port toward the flow's destination is free when no reverse entry holds it, or the
 * mapping of the flow that holds it is still on it and aged (it is taken over). */
static int model_port_free(const struct snat_model *m, int remote, int port)
{
	int holder = m->holder[remote][port] - 1;

	return holder < 0 || (m->mapping[holder].mapped && m->mapping[holder].port == port &&
			      m->mapping[holder].aged);
}

static void snat_key_of_flow(int f, struct snat_flow_key *key)
{
	char vm[32], remote[32];

	memset(key, 0, sizeof(*key));
	flow_addresses(f, vm, remote);
	key->family = AF_INET;
	key->proto = IPPROTO_UDP;
	key->src_port = htons(flow_sport(f));
	key->dst_port = htons(53);
	inet_pton(AF_INET, vm, key->src);
	inet_pton(AF_INET, remote, key->dst);
}

/* Whether a flow table holds the UDP flow between the two ends, whichever way round its
 * key names them. */
static int flow_table_holds(int fd, const char *end_text, int end_port, const char *peer_text,
			    int peer_port)
{
	struct flow_key key, next, *prev = NULL;
	uint8_t end[4], peer[4];

	inet_pton(AF_INET, end_text, end);
	inet_pton(AF_INET, peer_text, peer);
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		int ab = !memcmp(next.addr_a, end, 4) && !memcmp(next.addr_b, peer, 4) &&
			 next.port_a == end_port && next.port_b == peer_port;
		int ba = !memcmp(next.addr_b, end, 4) && !memcmp(next.addr_a, peer, 4) &&
			 next.port_b == end_port && next.port_a == peer_port;

		if (next.family == AF_INET && next.proto == IPPROTO_UDP && (ab || ba))
			return 1;
		key = next;
		prev = &key;
	}
	return 0;
}

static int flow_table_place_of(const char *end, int end_port, const char *peer, int peer_port)
{
	int answered = flow_table_holds(snat_maps.flows_fd, end, end_port, peer, peer_port);
	int unanswered = flow_table_holds(snat_maps.new_flows_fd, end, end_port, peer, peer_port);

	if (answered && unanswered)
		return -1; /* in both: never */
	return answered ? FLOW_ANSWERED : unanswered ? FLOW_NEW : FLOW_NOWHERE;
}

static int flow_table_place(int f)
{
	char vm[32], remote[32];

	flow_addresses(f, vm, remote);
	return flow_table_place_of(vm, flow_sport(f), remote, 53);
}

/* Ages the flow's mapping past its idle timeout and its port's cool-down, as time would. */
static void mapping_age(int f)
{
	struct snat_flow_key key;
	struct snat_mapping m;

	snat_key_of_flow(f, &key);
	assert_int_equal(bpf_map_lookup_elem(snat_maps.mappings_fd, &key, &m), 0);
	m.last_seen_ns = 1;
	assert_int_equal(bpf_map_update_elem(snat_maps.mappings_fd, &key, &m, BPF_EXIST), 0);
}

static struct frame snat_egress_frame(int f)
{
	char vm[32], remote[32];
	struct flow fl = { .family = AF_INET, .src = vm, .dst = remote, .proto = IPPROTO_UDP,
			   .sport = flow_sport(f), .dport = 53, .ttl = 64,
			   .ip_id = (uint32_t)rng() & 0xffff, .payload = below(64) };
	struct frame in;

	flow_addresses(f, vm, remote);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	return in;
}

/* The Internet's datagram from the flow's remote to VIP:port. */
static struct frame snat_reply_frame(int remote, int port)
{
	char from[32];
	struct flow fl = { .family = AF_INET, .src = from, .dst = SNAT_VIP, .proto = IPPROTO_UDP,
			   .sport = 53, .dport = SNAT_PORT_MIN + port, .ttl = 60,
			   .ip_id = (uint32_t)rng() & 0xffff, .payload = below(64) };
	struct frame in;

	snprintf(from, sizeof(from), "192.0.2.%d", 1 + remote);
	frame_build(&in, UPLINK_GW_MAC, UPLINK_PEER_MAC, &fl);
	return in;
}

struct snat_step {
	const char *what;
	int flow;
	struct expectation want;
	int ports_allowed[SNAT_PORTS]; /* egress that opens a mapping: the ports it may take */
};

/* The model's verdict for the flow's next datagram out, and the ports it may take. */
static void model_egress(const struct snat_model *m, int f, struct snat_step *step)
{
	int free = 0;

	memset(step->ports_allowed, 0, sizeof(step->ports_allowed));
	if (m->mapping[f].mapped && !m->mapping[f].aged) {
		step->ports_allowed[m->mapping[f].port] = 1;
		step->want = (struct expectation){ XDP_REDIRECT, 0, COUNT_FORWARDED, UPLINK };
		return;
	}
	/* No per-VM limit without blocks: an aged mapping is replaced, a new one takes any free
	 * port toward its destination. */
	for (int p = 0; p < SNAT_PORTS; p++)
		free += step->ports_allowed[p] = model_port_free(m, flow_remote(f), p);
	step->want = free ? (struct expectation){ XDP_REDIRECT, 0, COUNT_FORWARDED, UPLINK }
			  : (struct expectation){ XDP_DROP, DROP_SNAT_PORT_EXHAUSTED };
}

/* The flow took `port`: a holder whose aged mapping was on it loses that mapping. */
static void model_take(struct snat_model *m, int f, int port)
{
	int remote = flow_remote(f), holder = m->holder[remote][port] - 1;

	if (m->mapping[f].mapped && !m->mapping[f].aged)
		return; /* its own live port */
	if (holder >= 0 && m->mapping[holder].mapped && m->mapping[holder].port == port)
		m->mapping[holder].mapped = 0;
	m->holder[remote][port] = f + 1;
	m->mapping[f].mapped = 1;
	m->mapping[f].port = port;
	m->mapping[f].aged = 0;
}

static uint16_t frame_source_port(const struct frame *f) { return get16(f->data + 14 + 20); }

static int snat_step_matches(const struct harness_result *r, const struct snat_step *step,
			     int *port)
{
	uint8_t vip[4];

	if (!result_matches_on(&snat_gw, r, &step->want))
		return 0;
	if (r->verdict != XDP_REDIRECT || step->want.egress != UPLINK)
		return 1;
	inet_pton(AF_INET, SNAT_VIP, vip);
	*port = frame_source_port(&r->out) - SNAT_PORT_MIN;
	return !memcmp(r->out.data + 14 + 12, vip, 4) && *port >= 0 && *port < SNAT_PORTS &&
	       step->ports_allowed[*port];
}

/* After every step the tables say what the model says: each flow's place in the flow
 * tables. */
static int snat_state_matches(const struct snat_model *m, char *why, size_t size)
{
	for (int f = 0; f < SNAT_FLOWS; f++) {
		int place = flow_table_place(f);

		if (place != m->place[f]) {
			snprintf(why, size, "flow %d is %s in the flow tables, the model says %s", f,
				 place < 0 ? "in both new_flows and flows" :
				 place == FLOW_ANSWERED ? "answered (flows)" :
				 place == FLOW_NEW ? "unanswered (new_flows)" : "absent",
				 m->place[f] == FLOW_ANSWERED ? "answered" :
				 m->place[f] == FLOW_NEW ? "unanswered" : "absent");
			return 0;
		}
	}
	for (int v = 0; v < VNET_FLOWS; v++) {
		int place = flow_table_place_of("10.10.1.4", 40000 + v, "10.10.1.5", 53);

		if (place != m->vnet_place[v]) {
			snprintf(why, size, "VNet flow %d is %s in the flow tables, the model says %s",
				 v, place < 0 ? "in both new_flows and flows" :
				 place == FLOW_ANSWERED ? "answered (flows)" :
				 place == FLOW_NEW ? "unanswered (new_flows)" : "absent",
				 m->vnet_place[v] == FLOW_ANSWERED ? "answered" :
				 m->vnet_place[v] == FLOW_NEW ? "unanswered" : "absent");
			return 0;
		}
	}
	return 1;
}

/* A datagram of VNet flow v from 10.10.1.4 (from_peer 0) or 10.10.1.5: forwarded within
 * the hub through its subnet's NSG both ways, and the flow answered once its responder
 * sent. */
static int vnet_flow_step(struct snat_model *m, int v, int from_peer, size_t *promoted)
{
	struct flow fl = { .family = AF_INET, .proto = IPPROTO_UDP, .ttl = 64,
			   .src = from_peer ? "10.10.1.5" : "10.10.1.4",
			   .dst = from_peer ? "10.10.1.4" : "10.10.1.5",
			   .sport = from_peer ? 53 : 40000 + v, .dport = from_peer ? 40000 + v : 53,
			   .ip_id = (uint32_t)rng() & 0xffff, .payload = below(64) };
	struct expectation want = { XDP_REDIRECT, 0, COUNT_FORWARDED, HUB };
	struct harness_result r;
	struct frame in;

	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	r = harness_run(&snat_gw, HUB, &in);
	if (!result_matches_on(&snat_gw, &r, &want)) {
		print_message("mismatch: VNet flow %d from 10.10.1.%d: verdict %d reason %u, model "
			      "forwarded\n", v, from_peer ? 5 : 4, r.verdict, r.trace.drop_reason);
		return 0;
	}
	if (m->vnet_place[v] == FLOW_NOWHERE) {
		m->vnet_place[v] = FLOW_NEW;
		m->vnet_initiator[v] = from_peer;
	} else if (m->vnet_place[v] == FLOW_NEW && m->vnet_initiator[v] != from_peer) {
		m->vnet_place[v] = FLOW_ANSWERED;
		(*promoted)++;
	}
	return 1;
}

enum snat_op { SNAT_OP_EGRESS, SNAT_OP_REPLY, SNAT_OP_STRAY_REPLY, SNAT_OP_AGE, SNAT_OP_VNET };

static void snat_and_flow_tables_match_the_reference_model(void **state)
{
	size_t steps = frames_from_env(20000) / 10, mismatches = 0, verdicts[5] = { 0 };
	size_t takeovers = 0, limits = 0, exhausted = 0, promoted = 0;
	struct snat_model m;
	char why[160];

	harness_require(&snat_gw);
	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < steps && mismatches == 0; i++) {
		int op = below(100) < 50 ? SNAT_OP_EGRESS : below(100) < 15 ? SNAT_OP_VNET :
			 below(100) < 60 ? SNAT_OP_REPLY : below(100) < 50 ? SNAT_OP_STRAY_REPLY :
			 SNAT_OP_AGE;
		int f = below(SNAT_FLOWS), port = -1, remote = flow_remote(f);
		struct snat_step step = { .flow = f };
		struct harness_result r;
		struct frame in;

		if (op == SNAT_OP_VNET) {
			if (!vnet_flow_step(&m, below(VNET_FLOWS), chance(50), &promoted))
				mismatches++;
			else if (!snat_state_matches(&m, why, sizeof(why)) && ++mismatches)
				print_message("mismatch after step %zu (VNet flow): %s\n", i, why);
			continue;
		}
		if (op == SNAT_OP_AGE) {
			if (m.mapping[f].mapped && !m.mapping[f].aged) {
				mapping_age(f);
				m.mapping[f].aged = 1;
			}
			continue;
		}
		if (op == SNAT_OP_EGRESS) {
			step.what = "egress";
			model_egress(&m, f, &step);
			in = snat_egress_frame(f);
			r = harness_run(&snat_gw, HUB, &in);
		} else {
			/* A reply to a port the flow's destination has, held or not. */
			int p = op == SNAT_OP_REPLY && m.mapping[f].mapped ? m.mapping[f].port
									   : (int)below(SNAT_PORTS);
			int holder = m.holder[remote][p] - 1;

			step.what = "reply";
			if (holder < 0)
				step.want = (struct expectation){ XDP_DROP, DROP_SNAT_UNSOLICITED };
			else if (!m.mapping[holder].mapped || m.mapping[holder].port != p ||
				 m.mapping[holder].aged)
				step.want = (struct expectation){ XDP_DROP, DROP_SNAT_EXPIRED };
			else
				step.want = (struct expectation){ XDP_REDIRECT, 0, COUNT_FORWARDED, HUB };
			step.flow = holder;
			in = snat_reply_frame(remote, p);
			r = harness_run(&snat_gw, UPLINK, &in);
		}
		if (r.verdict >= 0 && r.verdict < 5)
			verdicts[r.verdict]++;
		if (!snat_step_matches(&r, &step, &port)) {
			char allowed[SNAT_PORTS * 6 + 1] = "", *at = allowed;

			for (int p = 0; p < SNAT_PORTS; p++)
				if (step.ports_allowed[p])
					at += sprintf(at, " %d", SNAT_PORT_MIN + p);
			mismatches++;
			print_message("mismatch at step %zu: %s of flow %d: verdict %d reason %u port %d, "
				      "model %d reason %u ports%s\n", i, step.what, step.flow, r.verdict,
				      r.trace.drop_reason, port < 0 ? -1 : SNAT_PORT_MIN + port,
				      step.want.verdict, step.want.drop_reason, allowed[0] ? allowed : " none");
			break;
		}
		/* The model moves on as the datapath did. */
		if (op == SNAT_OP_EGRESS) {
			/* The NSG stage ran before SNAT: the flow is kept whatever SNAT decided. */
			if (m.place[f] == FLOW_NOWHERE)
				m.place[f] = FLOW_NEW;
			if (r.verdict == XDP_REDIRECT) {
				int holder = m.holder[remote][port] - 1;

				if (m.mapping[f].mapped && m.mapping[f].aged)
					step.what = holder == f ? "egress replacing its aged mapping on its own port"
								: "egress replacing its aged mapping";
				takeovers += holder >= 0 && holder != f;
				model_take(&m, f, port);
			}
			limits += step.want.drop_reason == DROP_SNAT_VM_LIMIT;
			exhausted += step.want.drop_reason == DROP_SNAT_PORT_EXHAUSTED;
		} else if (SNAT_REPLY_PROMOTES && r.verdict == XDP_REDIRECT &&
			   m.place[step.flow] == FLOW_NEW) {
			m.place[step.flow] = FLOW_ANSWERED; /* the responder's first packet */
			promoted++;
		}
		if (!snat_state_matches(&m, why, sizeof(why))) {
			mismatches++;
			print_message("mismatch after step %zu (%s of flow %d): %s\n", i, step.what,
				      step.flow, why);
		}
	}
	print_message("%zu steps: %zu forwarded, %zu dropped; %zu ports taken over, %zu VM limit "
		      "drops, %zu exhausted, %zu flows promoted, %zu mismatches\n", steps,
		      verdicts[XDP_REDIRECT], verdicts[XDP_DROP], takeovers, limits, exhausted,
		      promoted, mismatches);
	assert_int_equal(mismatches, 0);
	/* The classes were reached, not just the common case. */
	assert_true(takeovers > 0 && exhausted > 0 && promoted > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(well_formed_frames_match_the_reference_model),
		cmocka_unit_test(fragment_sequences_match_the_reference_model),
		cmocka_unit_test(mutated_frames_get_defined_verdicts),
	};

	const struct CMUnitTest snat_tests[] = {
		cmocka_unit_test(snat_and_flow_tables_match_the_reference_model),
	};
	int failed;

	rng_seed_from_env();
	failed = cmocka_run_group_tests_name("datapath fuzz", tests, setup_gateway, teardown_gateway);
	return failed + cmocka_run_group_tests_name("datapath fuzz: SNAT and flow tables", snat_tests,
						    setup_snat_gateway, teardown_snat_gateway);
}

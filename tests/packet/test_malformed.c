/* Packet tests for the malformed classes the parser must refuse without reading past the
 * frame, one class per test, each with its headers otherwise consistent (IP lengths and
 * checksums match the cut frame) so that only the class under test is wrong: an IPv4
 * header shorter than 20 bytes, and TCP, UDP, ICMP and ICMPv6 headers that the frame
 * ends inside; transport and IPv6 extension headers that the IP packet ends before, the
 * frame carrying them on in an Ethernet trailer; IPv4 options with a bad length or a
 * source route. Each is dropped with its reason and counted once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <cmocka.h>
#include "vnet_xdp.h"
#include "packet/gateway_harness.h"

static struct gateway_harness gw = { .prefix = "vxmal", .gateway = "mal" };

static int setup_gateway(void **state) { return harness_up(&gw); }
static int teardown_gateway(void **state) { harness_down(&gw); return 0; }

#define ETH 14
#define IP4 20
#define IP6 40

static void require_gateway(void) { harness_require(&gw); }

static void assert_dropped(const struct frame *in, int iface, enum drop_reason reason)
{
	harness_assert_dropped(&gw, in, iface, reason);
}

static struct flow flow4(uint8_t proto)
{
	return (struct flow){ .family = AF_INET, .src = "10.10.1.4", .dst = "10.11.1.4",
			      .proto = proto, .sport = 40000, .dport = 80, .ip_id = 7,
			      .payload = 0 };
}

/* Cuts an IPv4 frame to `l4_bytes` of transport header and makes the IP header agree. */
static void cut_ipv4(struct frame *f, size_t l4_bytes)
{
	f->len = ETH + IP4 + l4_bytes;
	put16(f->data + ETH + 2, (uint16_t)(IP4 + l4_bytes));
	ipv4_header_checksum(f->data + ETH);
}

static void cut_ipv6(struct frame *f, size_t l4_bytes)
{
	f->len = ETH + IP6 + l4_bytes;
	put16(f->data + ETH + 4, (uint16_t)l4_bytes);
}

/* A frame of the same flow, whole, is forwarded: what follows fails only for the cut. */
static void assert_whole_frame_forwarded(const struct flow *fl)
{
	struct frame in;
	struct harness_result r;

	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, fl);
	r = harness_run(&gw, HUB, &in);
	assert_int_equal(r.verdict, XDP_REDIRECT);
}

static void ipv4_header_shorter_than_20_bytes_is_dropped(void **state)
{
	struct flow fl = flow4(IPPROTO_UDP);
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	in.len = ETH + 12; /* the frame ends inside the IPv4 header */
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV4);
}

static void tcp_header_cut_by_the_frame_is_dropped(void **state)
{
	struct flow fl = flow4(IPPROTO_TCP);
	struct frame in;

	require_gateway();
	assert_whole_frame_forwarded(&fl);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	cut_ipv4(&in, 12); /* 12 of TCP's 20 bytes */
	assert_dropped(&in, HUB, DROP_MALFORMED_L4);
}

static void udp_header_cut_by_the_frame_is_dropped(void **state)
{
	struct flow fl = flow4(IPPROTO_UDP);
	struct frame in;

	require_gateway();
	assert_whole_frame_forwarded(&fl);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	cut_ipv4(&in, 6); /* 6 of UDP's 8 bytes */
	assert_dropped(&in, HUB, DROP_MALFORMED_L4);
}

static void icmp_header_cut_by_the_frame_is_dropped(void **state)
{
	struct flow fl = flow4(IPPROTO_ICMP);
	struct frame in;

	require_gateway();
	fl.sport = 9; /* echo identifier */
	assert_whole_frame_forwarded(&fl);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	cut_ipv4(&in, 4); /* type, code and checksum, no identifier */
	assert_dropped(&in, HUB, DROP_MALFORMED_L4);
}

static void icmpv6_header_cut_by_the_frame_is_dropped(void **state)
{
	struct flow fl = { .family = AF_INET6, .src = "fd00:10:0:1::4", .dst = "fd00:11:0:1::4",
			   .proto = IPPROTO_ICMPV6, .sport = 9, .ip_id = 7, .payload = 0 };
	struct frame in;

	require_gateway();
	assert_whole_frame_forwarded(&fl);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	cut_ipv6(&in, 3);
	assert_dropped(&in, HUB, DROP_MALFORMED_L4);
}

/* The IP packet ends after `l4_bytes` of its transport header; the frame keeps the rest
 * (and any payload) as an Ethernet trailer. */
static void end_ip_before_trailer(struct frame *f, size_t l4_bytes)
{
	if ((f->data[ETH] >> 4) == 4) {
		put16(f->data + ETH + 2, (uint16_t)(IP4 + l4_bytes));
		ipv4_header_checksum(f->data + ETH);
	} else {
		put16(f->data + ETH + 4, (uint16_t)l4_bytes);
	}
}

static void tcp_header_in_an_ethernet_trailer_is_dropped(void **state)
{
	struct flow fl = flow4(IPPROTO_TCP);
	struct frame in;

	require_gateway();
	assert_whole_frame_forwarded(&fl);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	end_ip_before_trailer(&in, 0); /* ports and flags only in the trailer */
	assert_dropped(&in, HUB, DROP_MALFORMED_L4);
}

static void udp_header_in_an_ethernet_trailer_is_dropped(void **state)
{
	struct flow fl = flow4(IPPROTO_UDP);
	struct frame in;

	require_gateway();
	fl.payload = 16;
	assert_whole_frame_forwarded(&fl);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	end_ip_before_trailer(&in, 4); /* the ports inside, the length and checksum not */
	assert_dropped(&in, HUB, DROP_MALFORMED_L4);
}

static void ipv6_udp_header_in_an_ethernet_trailer_is_dropped(void **state)
{
	struct flow fl = { .family = AF_INET6, .src = "fd00:10:0:1::4", .dst = "fd00:11:0:1::4",
			   .proto = IPPROTO_UDP, .sport = 40000, .dport = 80, .ip_id = 7,
			   .payload = 0 };
	struct frame in;

	require_gateway();
	assert_whole_frame_forwarded(&fl);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	end_ip_before_trailer(&in, 0);
	assert_dropped(&in, HUB, DROP_MALFORMED_L4);
}

/* A destination options header of 16 bytes in a payload of 8: its second half and the
 * UDP header after it are the frame's trailer. */
static void ipv6_extension_header_past_the_payload_length_is_dropped(void **state)
{
	struct flow fl = { .family = AF_INET6, .src = "fd00:10:0:1::4", .dst = "fd00:11:0:1::4",
			   .proto = IPPROTO_UDP, .sport = 40000, .dport = 80, .ip_id = 7,
			   .payload = 0 };
	struct frame in;
	uint8_t *ip6 = in.data + ETH, *ext = ip6 + IP6;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	memmove(ext + 16, ext, 8); /* the UDP header after the options */
	memset(ext, 0, 16);
	ext[0] = IPPROTO_UDP;
	ext[1] = 1;       /* 16 bytes */
	ext[2] = 1;       /* PadN over the rest */
	ext[3] = 12;
	ip6[6] = IPPROTO_DSTOPTS;
	put16(ip6 + 4, 8);
	in.len = ETH + IP6 + 16 + 8;
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV6_EXTENSION);
}

/* UDP's own length against the IP payload, as Linux's udp_rcv judges it: longer than the
 * payload or shorter than the header is dropped, shorter than the payload (the rest is
 * padding the receiver trims) goes on. `len_at` is where the UDP length sits. */
static void assert_udp_length_judged(struct frame *in, size_t len_at, size_t udp_bytes)
{
	struct harness_result r;

	put16(in->data + len_at, (uint16_t)(udp_bytes + 1));
	assert_dropped(in, HUB, DROP_MALFORMED_L4);
	put16(in->data + len_at, 7);
	assert_dropped(in, HUB, DROP_MALFORMED_L4);
	put16(in->data + len_at, 0);
	assert_dropped(in, HUB, DROP_MALFORMED_L4);
	put16(in->data + len_at, (uint16_t)(udp_bytes - 4));
	r = harness_run(&gw, HUB, in);
	assert_int_equal(r.verdict, XDP_REDIRECT);
}

static void udp_length_beyond_the_ip_payload_is_dropped(void **state)
{
	struct flow fl = flow4(IPPROTO_UDP);
	struct frame in;

	require_gateway();
	fl.payload = 24;
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_udp_length_judged(&in, ETH + IP4 + 4, 8 + 24);
	/* The frame carrying more than the IP packet does not make the UDP length fit. */
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	memset(in.data + in.len, 0, 16);
	in.len += 16;
	put16(in.data + ETH + IP4 + 4, 8 + 24 + 16);
	assert_dropped(&in, HUB, DROP_MALFORMED_L4);
}

static void ipv6_udp_length_beyond_the_ip_payload_is_dropped(void **state)
{
	struct flow fl = { .family = AF_INET6, .src = "fd00:10:0:1::4", .dst = "fd00:11:0:1::4",
			   .proto = IPPROTO_UDP, .sport = 40000, .dport = 80, .ip_id = 7,
			   .payload = 24 };
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_udp_length_judged(&in, ETH + IP6 + 4, 8 + 24);
}

/* An IPv4 frame of the hub VM's flow whose header carries the 8 option bytes given. */
static void frame_with_ipv4_options(struct frame *f, const uint8_t options[8])
{
	struct flow fl = flow4(IPPROTO_UDP);

	frame_ethernet(f, HUB_GW_MAC, HUB_VM_MAC, 0x0800);
	frame_ip(f, &fl, 8);
	memcpy(f->data + ETH + IP4, options, 8);
	ipv4_header_checksum(f->data + ETH);
}

static void ipv4_loose_source_route_is_dropped(void **state)
{
	/* LSRR through 10.11.1.5, then a NOP to fill the header's last word. */
	const uint8_t lsrr[8] = { 131, 7, 4, 10, 11, 1, 5, 1 };
	struct frame in;

	require_gateway();
	frame_with_ipv4_options(&in, lsrr);
	assert_dropped(&in, HUB, DROP_IPV4_SOURCE_ROUTE);
}

static void ipv4_strict_source_route_is_dropped(void **state)
{
	const uint8_t ssrr[8] = { 1, 137, 7, 4, 10, 11, 1, 5 }; /* after a NOP */
	struct frame in;

	require_gateway();
	frame_with_ipv4_options(&in, ssrr);
	assert_dropped(&in, HUB, DROP_IPV4_SOURCE_ROUTE);
}

static void ipv4_record_route_and_timestamp_are_forwarded(void **state)
{
	const uint8_t record_route[8] = { 7, 7, 4, 0, 0, 0, 0, 0 };
	const uint8_t timestamp[8] = { 68, 8, 5, 0, 0, 0, 0, 0 };
	struct frame in;
	struct harness_result r;

	require_gateway();
	frame_with_ipv4_options(&in, record_route);
	r = harness_run(&gw, HUB, &in);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	frame_with_ipv4_options(&in, timestamp);
	r = harness_run(&gw, HUB, &in);
	assert_int_equal(r.verdict, XDP_REDIRECT);
}

static void ipv4_option_longer_than_the_header_is_dropped(void **state)
{
	const uint8_t too_long[8] = { 1, 7, 12, 4, 0, 0, 0, 0 }; /* 12 bytes from byte 1 of 8 */
	const uint8_t too_short[8] = { 7, 1, 0, 0, 0, 0, 0, 0 }; /* a length below 2 */
	struct frame in;

	require_gateway();
	frame_with_ipv4_options(&in, too_long);
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV4);
	frame_with_ipv4_options(&in, too_short);
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ipv4_header_shorter_than_20_bytes_is_dropped),
		cmocka_unit_test(tcp_header_cut_by_the_frame_is_dropped),
		cmocka_unit_test(udp_header_cut_by_the_frame_is_dropped),
		cmocka_unit_test(icmp_header_cut_by_the_frame_is_dropped),
		cmocka_unit_test(icmpv6_header_cut_by_the_frame_is_dropped),
		cmocka_unit_test(tcp_header_in_an_ethernet_trailer_is_dropped),
		cmocka_unit_test(udp_header_in_an_ethernet_trailer_is_dropped),
		cmocka_unit_test(ipv6_udp_header_in_an_ethernet_trailer_is_dropped),
		cmocka_unit_test(ipv6_extension_header_past_the_payload_length_is_dropped),
		cmocka_unit_test(ipv4_loose_source_route_is_dropped),
		cmocka_unit_test(ipv4_strict_source_route_is_dropped),
		cmocka_unit_test(ipv4_record_route_and_timestamp_are_forwarded),
		cmocka_unit_test(ipv4_option_longer_than_the_header_is_dropped),
		cmocka_unit_test(udp_length_beyond_the_ip_payload_is_dropped),
		cmocka_unit_test(ipv6_udp_length_beyond_the_ip_payload_is_dropped),
	};

	return cmocka_run_group_tests_name("malformed", tests, setup_gateway, teardown_gateway);
}

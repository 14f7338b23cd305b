/* Packet tests: frames run through the loaded XDP program with BPF_PROG_TEST_RUN on a
 * real gateway (`vnet-xdp up` in a network namespace of the hub-and-spoke topology).
 * Each test gives an input frame and checks the verdict, the drop reason or the
 * datapath counter, and, for forwarded frames, every byte of the rewritten frame. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include "vnet_xdp.h"
#include "packet/gateway_harness.h"

/* The gateway answers 168.63.129.16 itself (a local address): the platform address that
 * "something local answers"; 169.254.169.254 has nobody. */
static struct gateway_harness gw = { .prefix = "vxpkt", .gateway = "pkt",
				     .gateway_setup = "ip -n $GATEWAY_NS addr add 168.63.129.16/32 dev lo" };

static int setup_gateway(void **state) { return harness_up(&gw); }
static int teardown_gateway(void **state) { harness_down(&gw); return 0; }

static void require_gateway(void) { harness_require(&gw); }

static struct harness_result run(int iface, const struct frame *in) { return harness_run(&gw, iface, in); }

static uint64_t counter_sum(int fd, uint32_t index) { return harness_counter(fd, index); }

static void assert_dropped(const struct frame *in, int iface, enum drop_reason reason)
{
	harness_assert_dropped(&gw, in, iface, reason);
}

static void assert_passed(const struct frame *in, int iface, enum datapath_counter why)
{
	uint64_t before = counter_sum(gw.datapath_fd, why);
	struct harness_result r = run(iface, in);

	assert_int_equal(r.verdict, XDP_PASS);
	assert_int_equal(r.trace.counter, why);
	assert_int_equal(counter_sum(gw.datapath_fd, why), before + 1);
	/* Handed to the kernel untouched. */
	assert_int_equal(r.out.len, in->len);
	assert_memory_equal(r.out.data, in->data, in->len);
}

/* Forwarded: redirected to `egress`, and byte for byte the frame a router sends. */
static void assert_forwarded(const struct frame *in, int ingress, int egress,
			     const struct frame *expected)
{
	struct harness_result r = run(ingress, in);

	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.egress_ifindex, gw.ifaces[egress].ifindex);
	assert_int_equal(r.out.len, expected->len);
	assert_memory_equal(r.out.data, expected->data, expected->len);
}

static struct flow udp4(const char *src, const char *dst)
{
	return (struct flow){ .family = AF_INET, .src = src, .dst = dst, .proto = IPPROTO_UDP,
			      .sport = 40000, .dport = 53, .ip_id = 0x1234, .payload = 32 };
}

static struct flow tcp6(const char *src, const char *dst)
{
	return (struct flow){ .family = AF_INET6, .src = src, .dst = dst, .proto = IPPROTO_TCP,
			      .sport = 40000, .dport = 443, .ip_id = 0x54321, .payload = 0 };
}

/* ---- forwarding ---- */

static void peering_forwards_hub_to_spoke1_ipv4(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.11.1.4"), out_fl = fl;
	struct frame in, expected;
	uint64_t before;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	out_fl.ttl = 63;
	frame_build(&expected, SPOKE1_VM_MAC, SPOKE1_GW_MAC, &out_fl);
	before = counter_sum(gw.peerings_fd, 0);
	assert_forwarded(&in, HUB, SPOKE1, &expected);
	assert_int_equal(run(HUB, &in).trace.route_type, ROUTE_VNET_PEERING);
	assert_int_equal(counter_sum(gw.peerings_fd, 0), before + 2);
}

static void peering_forwards_spoke1_to_hub_ipv6(void **state)
{
	struct flow fl = tcp6("fd00:11:0:1::4", "fd00:10:0:1::4"), out_fl = fl;
	struct frame in, expected;

	require_gateway();
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	out_fl.ttl = 63;
	frame_build(&expected, HUB_VM_MAC, HUB_GW_MAC, &out_fl);
	assert_forwarded(&in, SPOKE1, HUB, &expected);
}

static void icmp_echo_forwarded_hub_to_spoke1(void **state)
{
	struct flow fl = { .family = AF_INET, .src = "10.10.1.4", .dst = "10.11.1.4",
			   .proto = IPPROTO_ICMP, .sport = 7, .ip_id = 9, .payload = 56 };
	struct flow out_fl = fl;
	struct frame in, expected;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	out_fl.ttl = 63;
	frame_build(&expected, SPOKE1_VM_MAC, SPOKE1_GW_MAC, &out_fl);
	assert_forwarded(&in, HUB, SPOKE1, &expected);
}

static void ipv4_options_are_forwarded_with_valid_checksum(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.11.1.4"), out_fl = fl;
	struct frame in, expected;

	require_gateway();
	frame_ethernet(&in, HUB_GW_MAC, HUB_VM_MAC, 0x0800);
	frame_ip(&in, &fl, 8);
	out_fl.ttl = 63;
	frame_ethernet(&expected, SPOKE1_VM_MAC, SPOKE1_GW_MAC, 0x0800);
	frame_ip(&expected, &out_fl, 8);
	assert_forwarded(&in, HUB, SPOKE1, &expected);
}

static void ipv4_fragments_are_forwarded(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.11.1.4"), out_fl = fl;
	struct frame whole, out_whole, in, expected;
	size_t rest;

	require_gateway();
	/* The first fragment, then a later one: offset 185 * 8, no transport header. */
	fl.payload = out_fl.payload = 1500;
	out_fl.ttl = 63;
	frame_build(&whole, HUB_GW_MAC, HUB_VM_MAC, &fl);
	frame_build(&out_whole, SPOKE1_VM_MAC, SPOKE1_GW_MAC, &out_fl);
	frame_fragment(&in, &whole, 0, 1480, 1, 0);
	frame_fragment(&expected, &out_whole, 0, 1480, 1, 0);
	assert_forwarded(&in, HUB, SPOKE1, &expected);
	rest = whole.len - 14 - 20 - 1480;
	frame_fragment(&in, &whole, 1480, rest, 0, 0);
	frame_fragment(&expected, &out_whole, 1480, rest, 0, 0);
	assert_forwarded(&in, HUB, SPOKE1, &expected);
}

/* Inserts an IPv6 extension header of type `type` (8 bytes) after the fixed header. */
static void ipv6_insert_extension(struct frame *f, uint8_t type)
{
	uint8_t *ip = f->data + 14, next = ip[6];
	size_t payload = (ip[4] << 8 | ip[5]);

	memmove(ip + 48, ip + 40, payload);
	memset(ip + 40, 0, 8);
	ip[40] = next;
	ip[41] = 0;
	if (type == IPPROTO_DSTOPTS || type == IPPROTO_HOPOPTS) {
		ip[42] = 1; /* PadN over the remaining 6 bytes */
		ip[43] = 4;
	}
	ip[6] = type;
	put16(ip + 4, payload + 8);
	f->len += 8;
}

static void ipv6_extension_headers_are_forwarded(void **state)
{
	struct flow fl = tcp6("fd00:10:0:1::4", "fd00:11:0:1::4"), out_fl = fl;
	struct frame in, expected;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	ipv6_insert_extension(&in, IPPROTO_DSTOPTS);
	ipv6_insert_extension(&in, IPPROTO_ROUTING);
	out_fl.ttl = 63;
	frame_build(&expected, SPOKE1_VM_MAC, SPOKE1_GW_MAC, &out_fl);
	ipv6_insert_extension(&expected, IPPROTO_DSTOPTS);
	ipv6_insert_extension(&expected, IPPROTO_ROUTING);
	assert_forwarded(&in, HUB, SPOKE1, &expected);
}

/* ---- Azure's peering semantics ---- */

static void peering_is_not_transitive_ipv4(void **state)
{
	struct flow fl = udp4("10.11.1.4", "10.12.1.4");
	struct frame in;

	require_gateway();
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	/* spoke2 is no route of spoke1's: Azure's 10/8 system route, next hop None. */
	assert_dropped(&in, SPOKE1, DROP_ROUTE_NONE);
}

static void peering_is_not_transitive_ipv6(void **state)
{
	struct flow fl = tcp6("fd00:11:0:1::4", "fd00:12:0:1::4");
	struct frame in;

	require_gateway();
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	assert_dropped(&in, SPOKE1, DROP_NO_ROUTE);
}

static void spoofed_source_is_dropped(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.10.1.9"); /* a hub address, from spoke1's port */
	struct frame in;

	require_gateway();
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	assert_dropped(&in, SPOKE1, DROP_SPOOFED_SOURCE);
}

/* IPv4 has Azure's default route to the Internet; IPv6 has none without NAT66. */
static void destination_without_route_is_dropped(void **state)
{
	struct flow fl = tcp6("fd00:10:0:1::4", "2001:db8::50");
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_dropped(&in, HUB, DROP_NO_ROUTE);
}

static void uplink_traffic_to_a_vm_is_dropped(void **state)
{
	struct flow fl = udp4("198.51.100.2", "10.10.1.4");
	struct frame in;

	require_gateway();
	frame_build(&in, UPLINK_GW_MAC, UPLINK_PEER_MAC, &fl);
	assert_dropped(&in, UPLINK, DROP_UPLINK_UNSOLICITED);
}

/* ---- what belongs to the kernel ---- */

static void ttl_expiry_goes_to_the_kernel(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.11.1.4");
	struct frame in;

	require_gateway();
	fl.ttl = 1;
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_passed(&in, HUB, COUNT_PASS_TTL_EXPIRED);
	fl = tcp6("fd00:10:0:1::4", "fd00:11:0:1::4");
	fl.ttl = 1;
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_passed(&in, HUB, COUNT_PASS_TTL_EXPIRED);
}

static void arp_goes_to_the_kernel(void **state)
{
	struct frame in;

	require_gateway();
	frame_ethernet(&in, "ff:ff:ff:ff:ff:ff", HUB_VM_MAC, 0x0806);
	memset(in.data + 14, 0, 28);
	in.len = 42;
	assert_passed(&in, HUB, COUNT_PASS_NOT_IP);
}

static void traffic_to_the_gateway_goes_to_the_kernel(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.10.0.1");
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_passed(&in, HUB, COUNT_PASS_LOCAL);
	fl = udp4("198.51.100.2", "198.51.100.1"); /* IKE or SSH to the uplink address */
	frame_build(&in, UPLINK_GW_MAC, UPLINK_PEER_MAC, &fl);
	assert_passed(&in, UPLINK, COUNT_PASS_LOCAL);
}

static void neighbour_discovery_goes_to_the_kernel(void **state)
{
	struct flow fl = { .family = AF_INET6, .src = "fd00:10:0:1::4", .dst = "ff02::1:ff00:1",
			   .proto = IPPROTO_ICMPV6, .payload = 16 };
	struct frame in;

	require_gateway();
	frame_build(&in, "33:33:ff:00:00:01", HUB_VM_MAC, &fl);
	in.data[14 + 40] = 135; /* neighbour solicitation */
	assert_passed(&in, HUB, COUNT_PASS_CONTROL);
}

/* An ICMPv6 neighbour discovery message (type 133-137) with its checksum. */
static void nd_frame(struct frame *f, const char *src, const char *dst, uint8_t type,
		     uint8_t hop_limit)
{
	struct flow fl = { .family = AF_INET6, .src = src, .dst = dst, .proto = IPPROTO_ICMPV6,
			   .ttl = hop_limit, .payload = 16 };
	uint8_t *ip = f->data + 14;

	frame_build(f, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	ip[40] = type;
	transport_checksum(ip + 40, f->len - 14 - 40, &fl, ip + 8, ip + 24, 16);
}

/* ND to a unicast address that is not the gateway's is a packet like any other: the
 * kernel, which forwards, never sees it before the routes and NSGs did. */
static void neighbour_discovery_to_a_unicast_address_takes_the_pipeline(void **state)
{
	struct frame in;

	require_gateway();
	/* spoke1 and spoke2 are not peered */
	nd_frame(&in, "fd00:11:0:1::4", "fd00:12:0:1::4", 135, 255);
	assert_dropped(&in, SPOKE1, DROP_NO_ROUTE);
	nd_frame(&in, "fd00:11:0:1::4", "2001:db8::50", 136, 255);
	assert_dropped(&in, SPOKE1, DROP_NO_ROUTE);
	/* from a link-local source, to a VM of a peered VNet */
	nd_frame(&in, "fe80::4", "fd00:10:0:1::4", 135, 255);
	assert_dropped(&in, SPOKE1, DROP_LINK_LOCAL);
	/* to the gateway's own address: the kernel's */
	nd_frame(&in, "fd00:11:0:1::4", "fd00:11::1", 135, 255);
	assert_passed(&in, SPOKE1, COUNT_PASS_LOCAL);
}

static void neighbour_discovery_to_link_local_goes_to_the_kernel(void **state)
{
	struct frame in;

	require_gateway();
	nd_frame(&in, "fe80::4", "fe80::1", 135, 255);
	assert_passed(&in, SPOKE1, COUNT_PASS_CONTROL);
	nd_frame(&in, "fd00:11:0:1::4", "fe80::1", 136, 255);
	assert_passed(&in, SPOKE1, COUNT_PASS_CONTROL);
	/* hop limit below 255: not ND (RFC 4861), and nothing a router forwards */
	nd_frame(&in, "fe80::4", "fe80::1", 135, 64);
	assert_dropped(&in, SPOKE1, DROP_LINK_LOCAL);
}

static void link_local_traffic_is_never_forwarded(void **state)
{
	struct flow fl = tcp6("fe80::4", "fd00:10:0:1::4");
	struct frame in;

	require_gateway();
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	assert_dropped(&in, SPOKE1, DROP_LINK_LOCAL);
	fl = tcp6("fd00:11:0:1::4", "fe80::99");
	frame_build(&in, SPOKE1_GW_MAC, SPOKE1_VM_MAC, &fl);
	assert_dropped(&in, SPOKE1, DROP_LINK_LOCAL);
	/* IPv4: 169.254/16 either way; the default route would take it to the Internet */
	fl = udp4("10.10.1.4", "169.254.7.7");
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_dropped(&in, HUB, DROP_LINK_LOCAL);
	fl = udp4("169.254.7.7", "10.11.1.4");
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_dropped(&in, HUB, DROP_LINK_LOCAL);
}

static void platform_addresses_are_dropped_unless_answered_locally(void **state)
{
	struct flow fl = udp4("10.10.1.4", "169.254.169.254");
	struct frame in;

	require_gateway();
	fl.dport = 80;
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_dropped(&in, HUB, DROP_PLATFORM_ADDRESS);
	fl = udp4("10.10.1.4", "168.63.129.16");
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_passed(&in, HUB, COUNT_PASS_LOCAL);
}

static void unknown_neighbour_is_resolved_by_the_kernel(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.11.1.99");
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_passed(&in, HUB, COUNT_PASS_NEIGHBOUR);
}

/* ---- malformed frames: each class has its verdict and reason ---- */

/* Shorter than an Ethernet header never reaches XDP (the kernel refuses it first); an
 * Ethernet header announcing IPv4 with nothing after it is the shortest frame we judge. */
static void ethernet_header_without_payload_is_dropped(void **state)
{
	struct frame in;

	require_gateway();
	frame_ethernet(&in, HUB_GW_MAC, HUB_VM_MAC, 0x0800);
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV4);
}

static void vlan_tagged_frame_is_dropped(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.11.1.4");
	struct frame in;

	require_gateway();
	frame_ethernet(&in, HUB_GW_MAC, HUB_VM_MAC, 0x0800);
	frame_vlan(&in, 0x8100, 42, 0x0800);
	frame_ip(&in, &fl, 0);
	assert_dropped(&in, HUB, DROP_VLAN_NOT_BOUND);
}

static void truncated_or_deep_vlan_stack_is_dropped(void **state)
{
	struct frame in;

	require_gateway();
	frame_ethernet(&in, HUB_GW_MAC, HUB_VM_MAC, 0x0800);
	frame_vlan(&in, 0x8100, 42, 0x0800);
	in.len -= 2; /* the tag is cut short */
	assert_dropped(&in, HUB, DROP_MALFORMED_VLAN);
	frame_ethernet(&in, HUB_GW_MAC, HUB_VM_MAC, 0x0800);
	frame_vlan(&in, 0x88a8, 1, 0x8100);
	frame_vlan(&in, 0x8100, 2, 0x8100);
	frame_vlan(&in, 0x8100, 3, 0x0800);
	assert_dropped(&in, HUB, DROP_MALFORMED_VLAN);
}

static void ipv4_bad_header_length_is_dropped(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.11.1.4");
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	in.data[14] = 0x44; /* IHL 4: shorter than the fixed header */
	ipv4_header_checksum(in.data + 14);
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV4);
}

static void ipv4_total_length_beyond_frame_is_dropped(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.11.1.4");
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	put16(in.data + 14 + 2, in.len); /* claims 14 bytes more than there are */
	ipv4_header_checksum(in.data + 14);
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV4);
	in.len = 14 + 12; /* a header cut in the middle */
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV4);
}

static void ipv4_bad_checksum_is_dropped(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.11.1.4");
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	in.data[14 + 10] ^= 0x55;
	assert_dropped(&in, HUB, DROP_IPV4_BAD_CHECKSUM);
}

static void truncated_transport_header_is_dropped(void **state)
{
	struct flow fl = udp4("10.10.1.4", "10.11.1.4");
	struct frame in;

	require_gateway();
	fl.proto = IPPROTO_TCP;
	fl.payload = 0;
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	in.data[14 + 20 + 12] = 4 << 4; /* TCP data offset 4: shorter than its header */
	assert_dropped(&in, HUB, DROP_MALFORMED_L4);
	/* IP says 10 bytes of UDP follow, which cannot hold the 8-byte header plus length */
	fl = udp4("10.10.1.4", "10.11.1.4");
	fl.payload = 0;
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	put16(in.data + 14 + 20 + 4, 4); /* UDP length 4 < 8 */
	assert_dropped(&in, HUB, DROP_MALFORMED_L4);
}

static void ipv6_truncated_header_is_dropped(void **state)
{
	struct flow fl = tcp6("fd00:10:0:1::4", "fd00:11:0:1::4");
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	in.len = 14 + 30;
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV6);
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	put16(in.data + 14 + 4, 200); /* payload length beyond the frame */
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV6);
}

static void ipv6_long_extension_chain_is_dropped(void **state)
{
	struct flow fl = tcp6("fd00:10:0:1::4", "fd00:11:0:1::4");
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	for (int i = 0; i < 9; i++)
		ipv6_insert_extension(&in, IPPROTO_DSTOPTS);
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV6_EXTENSION);
	/* An extension header whose length runs past the frame */
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	ipv6_insert_extension(&in, IPPROTO_DSTOPTS);
	in.data[14 + 41] = 30;
	assert_dropped(&in, HUB, DROP_MALFORMED_IPV6_EXTENSION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(peering_forwards_hub_to_spoke1_ipv4),
		cmocka_unit_test(peering_forwards_spoke1_to_hub_ipv6),
		cmocka_unit_test(icmp_echo_forwarded_hub_to_spoke1),
		cmocka_unit_test(ipv4_options_are_forwarded_with_valid_checksum),
		cmocka_unit_test(ipv4_fragments_are_forwarded),
		cmocka_unit_test(ipv6_extension_headers_are_forwarded),
		cmocka_unit_test(peering_is_not_transitive_ipv4),
		cmocka_unit_test(peering_is_not_transitive_ipv6),
		cmocka_unit_test(spoofed_source_is_dropped),
		cmocka_unit_test(destination_without_route_is_dropped),
		cmocka_unit_test(uplink_traffic_to_a_vm_is_dropped),
		cmocka_unit_test(ttl_expiry_goes_to_the_kernel),
		cmocka_unit_test(arp_goes_to_the_kernel),
		cmocka_unit_test(traffic_to_the_gateway_goes_to_the_kernel),
		cmocka_unit_test(neighbour_discovery_goes_to_the_kernel),
		cmocka_unit_test(neighbour_discovery_to_a_unicast_address_takes_the_pipeline),
		cmocka_unit_test(neighbour_discovery_to_link_local_goes_to_the_kernel),
		cmocka_unit_test(link_local_traffic_is_never_forwarded),
		cmocka_unit_test(platform_addresses_are_dropped_unless_answered_locally),
		cmocka_unit_test(unknown_neighbour_is_resolved_by_the_kernel),
		cmocka_unit_test(ethernet_header_without_payload_is_dropped),
		cmocka_unit_test(vlan_tagged_frame_is_dropped),
		cmocka_unit_test(truncated_or_deep_vlan_stack_is_dropped),
		cmocka_unit_test(ipv4_bad_header_length_is_dropped),
		cmocka_unit_test(ipv4_total_length_beyond_frame_is_dropped),
		cmocka_unit_test(ipv4_bad_checksum_is_dropped),
		cmocka_unit_test(truncated_transport_header_is_dropped),
		cmocka_unit_test(ipv6_truncated_header_is_dropped),
		cmocka_unit_test(ipv6_long_extension_chain_is_dropped),
	};

	return cmocka_run_group_tests_name("datapath", tests, setup_gateway, teardown_gateway);
}

/* Packet tests of IP fragments (bpf/frag.h): a datagram's later fragments carry no ports,
 * so they must follow their first fragment's verdict. The gateway's spoke1 subnet has an
 * NSG that allows UDP 5354, denies port 22, allows other TCP and denies the rest inbound:
 * judged alone, a later fragment of UDP 5354 would be denied and one of TCP 22 allowed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "packet/nsg_harness.h"

#define FRAG_NSG "spoke1-fragments"

static int write_config(void)
{
	char *r[4], resources[4096];
	int n = 0, err;

	r[n++] = nsg_rule_json("AllowUdp5354", 100, "Inbound", "Allow", "Udp", "*", "*", "*", "5354");
	r[n++] = nsg_rule_json("DenyPort22", 110, "Inbound", "Deny", "*", "*", "*", "*", "22");
	r[n++] = nsg_rule_json("AllowTcp", 120, "Inbound", "Allow", "Tcp", "*", "*", "*", "*");
	r[n++] = nsg_rule_json("DenyAllIn", 4000, "Inbound", "Deny", "*", "*", "*", "*", "*");
	snprintf(resources, sizeof(resources),
		 "{\"type\": \"Microsoft.Network/networkSecurityGroups\", \"name\": \"" FRAG_NSG "\","
		 " \"properties\": {\"securityRules\": [%s, %s, %s, %s]}}",
		 r[0], r[1], r[2], r[3]);
	err = nsg_write_config("", "", FRAG_NSG, resources, "\"flowTableSize\": 1024");
	for (int i = 0; i < n; i++)
		free(r[i]);
	return err;
}

static int setup(void **state)
{
	if (!nsg_init("vxfrag", "fragp"))
		return 0;
	if (write_config())
		return -1;
	return nsg_up();
}

static int teardown(void **state)
{
	nsg_down();
	return 0;
}

/* hub's web VM to spoke1's VM; every datagram its own IP id. */
static struct flow datagram(int family, uint8_t proto, uint16_t dport, size_t payload)
{
	static uint32_t next_id = 0x1000;

	return (struct flow){ .family = family, .proto = proto, .sport = 40000, .dport = dport,
			      .src = family == AF_INET ? "10.10.1.4" : "fd00:10:0:1::4",
			      .dst = family == AF_INET ? "10.11.1.4" : "fd00:11:0:1::4",
			      .ip_id = next_id++, .payload = payload };
}

/* The datagram in three fragments of 512, 512 and the rest bytes of IP payload. */
static int fragments_of(const struct flow *fl, struct frame out[3])
{
	struct frame whole;
	size_t ip, total;

	ip = frame_build(&whole, HUB_GW_MAC, HUB_VM_MAC, fl);
	total = whole.len - ip - (fl->family == AF_INET ? 20 : 40);
	assert_true(total > 1024);
	frame_fragment(&out[0], &whole, 0, 512, 1, fl->ip_id);
	frame_fragment(&out[1], &whole, 512, 512, 1, fl->ip_id);
	frame_fragment(&out[2], &whole, 1024, total - 1024, 0, fl->ip_id);
	return 3;
}

static void assert_forwarded_to_spoke1(struct harness_result r, const struct frame *in)
{
	if (r.verdict != XDP_REDIRECT)
		print_message("verdict %d drop reason %u\n", r.verdict, r.trace.drop_reason);
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.egress_ifindex, gw.ifaces[SPOKE1].ifindex);
	assert_int_equal(r.out.len, in->len);
	/* Past the IPv4 header (hop limit, checksum), the fragment is as it came. */
	assert_memory_equal(r.out.data + 34, in->data + 34, in->len - 34);
}

static void every_fragment_of_an_allowed_datagram_passes(void **state)
{
	int families[] = { AF_INET, AF_INET6 };

	require_gateway();
	for (int i = 0; i < 2; i++) {
		struct flow fl = datagram(families[i], IPPROTO_UDP, 5354, 1200);
		struct frame frags[3];

		fragments_of(&fl, frags);
		for (int f = 0; f < 3; f++)
			assert_forwarded_to_spoke1(harness_run(&gw, HUB, &frags[f]), &frags[f]);
	}
}

static void no_fragment_of_a_denied_datagram_passes(void **state)
{
	int families[] = { AF_INET, AF_INET6 };

	require_gateway();
	for (int i = 0; i < 2; i++) {
		struct flow fl = datagram(families[i], IPPROTO_TCP, 22, 1200);
		struct frame frags[3];

		fragments_of(&fl, frags);
		for (int f = 0; f < 3; f++)
			harness_assert_dropped(&gw, &frags[f], HUB, DROP_NSG_DENIED_INBOUND);
	}
}

static void later_fragment_without_its_first_is_dropped(void **state)
{
	int families[] = { AF_INET, AF_INET6 };

	require_gateway();
	for (int i = 0; i < 2; i++) {
		struct flow fl = datagram(families[i], IPPROTO_UDP, 5354, 1200);
		struct frame frags[3];

		fragments_of(&fl, frags);
		harness_assert_dropped(&gw, &frags[1], HUB, DROP_FRAGMENT_UNSEEN);
		harness_assert_dropped(&gw, &frags[2], HUB, DROP_FRAGMENT_UNSEEN);
	}
}

/* Another datagram's first fragment does not open the way for this one's. */
static void first_fragment_admits_only_its_own_datagram(void **state)
{
	struct flow allowed = datagram(AF_INET, IPPROTO_UDP, 5354, 1200);
	struct flow other = datagram(AF_INET, IPPROTO_UDP, 5354, 1200);
	struct frame a[3], b[3];

	require_gateway();
	fragments_of(&allowed, a);
	fragments_of(&other, b);
	assert_forwarded_to_spoke1(harness_run(&gw, HUB, &a[0]), &a[0]);
	harness_assert_dropped(&gw, &b[1], HUB, DROP_FRAGMENT_UNSEEN);
}

/* RFC 1858: a first fragment too short for the ports and flags could hide them in the
 * next fragment. Ethernet pads the frame to 60 bytes: nothing may be read past the IP
 * packet. */
static void tiny_first_fragment_is_dropped(void **state)
{
	struct flow tcp = datagram(AF_INET, IPPROTO_TCP, 80, 1200);
	struct flow udp6 = datagram(AF_INET6, IPPROTO_UDP, 5354, 1200);
	struct frame whole, tiny;

	require_gateway();
	frame_build(&whole, HUB_GW_MAC, HUB_VM_MAC, &tcp);
	frame_fragment(&tiny, &whole, 0, 8, 1, tcp.ip_id);
	memset(tiny.data + tiny.len, 0, 60 - tiny.len);
	tiny.len = 60;
	harness_assert_dropped(&gw, &tiny, HUB, DROP_FRAGMENT_TINY);

	frame_build(&whole, HUB_GW_MAC, HUB_VM_MAC, &udp6);
	frame_fragment(&tiny, &whole, 0, 4, 1, udp6.ip_id);
	memset(tiny.data + tiny.len, 0, 8);
	tiny.len += 8; /* a trailer where the UDP header would end */
	harness_assert_dropped(&gw, &tiny, HUB, DROP_FRAGMENT_TINY);
}

/* RFC 1858: a fragment at offset 8 rewrites a TCP header's flags at reassembly. */
static void fragment_over_the_transport_header_is_dropped(void **state)
{
	struct flow tcp = datagram(AF_INET, IPPROTO_TCP, 80, 1200);
	struct frame whole, first, overlap;

	require_gateway();
	frame_build(&whole, HUB_GW_MAC, HUB_VM_MAC, &tcp);
	frame_fragment(&first, &whole, 0, 24, 1, tcp.ip_id);
	frame_fragment(&overlap, &whole, 8, 512, 1, tcp.ip_id);
	assert_forwarded_to_spoke1(harness_run(&gw, HUB, &first), &first);
	harness_assert_dropped(&gw, &overlap, HUB, DROP_FRAGMENT_OVERLAP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_fragment_of_an_allowed_datagram_passes),
		cmocka_unit_test(no_fragment_of_a_denied_datagram_passes),
		cmocka_unit_test(later_fragment_without_its_first_is_dropped),
		cmocka_unit_test(first_fragment_admits_only_its_own_datagram),
		cmocka_unit_test(tiny_first_fragment_is_dropped),
		cmocka_unit_test(fragment_over_the_transport_header_is_dropped),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

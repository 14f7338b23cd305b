/* Benchmark traffic programs: a sender run by BPF_PROG_TEST_RUN in live-frames mode
 * (every run transmits the frame out of the sender's veth, as xdp-trafficgen does), and
 * a sink on the receivers that counts and drops, so both paths under test end in the
 * same cheap way. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Set by the loader before load. flows == 0: the frame is sent unchanged. Otherwise
 * run i carries flow i % flows: the UDP source port and the low bits of the source
 * address change so that every flow is a distinct 5-tuple. */
const volatile __u32 flows = 0;
const volatile __u16 first_port = 1024;
const volatile __u16 ports_per_address = 64000;
const volatile __u32 first_address = 0; /* host order */

/* What every frame starts with. Live frames keep what the last trip through the
 * gateway and the receiver wrote into their pages (TTL, MACs, translated addresses), so
 * the sender writes its headers afresh on every run. */
#define FRAME_HEADERS (sizeof(struct ethhdr) + sizeof(struct iphdr) + 8)
__u8 frame_headers[FRAME_HEADERS] = { 1 }; /* .data: the loader fills it */

__u64 sent = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} received SEC(".maps");

static __always_inline __u16 ipv4_checksum(struct iphdr *ip)
{
	__u16 *word = (__u16 *)ip;
	__u32 sum = 0;

	ip->check = 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(*ip) / 2; i++)
		sum += word[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int xdp_send(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 flow, host;

	if (data + FRAME_HEADERS > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, frame_headers, FRAME_HEADERS);
	if (!flows || ip->protocol != IPPROTO_UDP)
		return XDP_TX;
	flow = sent++ % flows;
	host = flow / ports_per_address;
	udp->source = bpf_htons(first_port + flow % ports_per_address);
	udp->check = 0; /* UDP over IPv4 may go without a checksum */
	/* Frames keep what the last run wrote into them, so derive from the first. */
	ip->saddr = bpf_htonl(first_address + host);
	ip->check = ipv4_checksum(ip);
	return XDP_TX;
}

SEC("xdp")
int xdp_sink(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&received, &zero);

	if (count)
		(*count)++;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

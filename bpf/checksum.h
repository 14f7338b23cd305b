/* One's complement checksums: incremental updates (RFC 1624) for the rewrites, and the
 * completion of TCP/UDP checksums that a sender left to offload, before every redirect.
 *
 * Why completion: a veth or tap keeps transmit checksum offload on by default, so a VM's
 * TCP/UDP segment arrives with CHECKSUM_PARTIAL: its checksum field holds only the folded
 * pseudo-header sum, and the skb tells the next device to finish it. A frame redirected in
 * XDP leaves as an xdp_frame without that skb, so nothing would finish it and the receiver
 * drops the segment. A frame the kernel forwards (XDP_PASS) keeps its skb and is left as
 * it is.
 *
 * Why on evidence: XDP sees no ip_summed, so the frame itself must tell. A partial
 * checksum equals the folded pseudo-header sum; a full one equals it only by a 1 in 65536
 * chance. So: only where the field equals that sum (a few additions, all that a frame
 * from a real wire costs) is the whole segment summed, and only where the checksum does
 * not verify is it completed. A frame whose full checksum verifies is never touched, and
 * a corrupt one stays corrupt unless its field happens to equal the pseudo-header sum.
 * An IPv4 UDP checksum of 0 (none) never equals it and stays 0. */
#ifndef BPF_CHECKSUM_H
#define BPF_CHECKSUM_H

#include <linux/bpf.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"

/* The longest segment summed: a jumbo frame's. A longer one is larger than any MTU the
 * gateway forwards at and never reaches a redirect (the FIB or the MTU check sends it to
 * the kernel first). */
#define L4_CHECKSUM_MAX_BYTES 9216
/* bpf_csum_diff sums at most 512 bytes per call. */
#define CSUM_CHUNK 512

/* diff: sum(new words) - sum(old words). A full checksum field holds ~sum; a partial one
 * holds the pseudo-header sum itself. */
static __always_inline void csum_apply(__u16 *field, __u64 diff, int partial)
{
	if (partial)
		*field = csum_fold64((__u64)*field + diff);
	else
		*field = ~csum_fold64((__u64)(__u16)~*field + diff);
}

static __always_inline __u64 csum16_diff(__u16 from, __u16 to)
{
	return (__u64)(__u16)~from + to;
}

static __always_inline __u64 csum_addr_diff(const __u8 *from, const __u8 *to, __u32 family)
{
	const __u32 *a = (const __u32 *)from, *b = (const __u32 *)to;

	if (family == AF_INET)
		return (__u64)(__u32)~a[0] + b[0];
	return (__u64)(__u32)~a[0] + b[0] + (__u32)~a[1] + b[1] + (__u32)~a[2] + b[2] +
	       (__u32)~a[3] + b[3];
}

static __always_inline __u16 *l4_checksum_field(const struct packet *pkt)
{
	void *l4 = pkt->l4;

	if (!l4)
		return NULL;
	if (pkt->l4_proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > pkt->data_end)
			return NULL;
		return (__u16 *)&tcp->check;
	}
	if (pkt->l4_proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > pkt->data_end)
			return NULL;
		return (__u16 *)&udp->check;
	}
	return NULL;
}

static __always_inline __u32 l4_length(const struct packet *pkt)
{
	if (pkt->family == AF_INET)
		return pkt->len - pkt->ip4->ihl * 4;
	return pkt->len - (__u32)((void *)pkt->l4 - (void *)pkt->ip6);
}

static __always_inline __u64 pseudo_header_sum(const struct packet *pkt)
{
	__u32 addrs[8];
	__u64 sum = bpf_htons((__u16)pkt->l4_proto) + bpf_htons((__u16)l4_length(pkt));

	if (pkt->family == AF_INET) {
		__builtin_memcpy(addrs, &pkt->ip4->saddr, 8);
		return sum + addrs[0] + addrs[1];
	}
	__builtin_memcpy(addrs, &pkt->ip6->saddr, 32);
#pragma unroll
	for (int i = 0; i < 8; i++)
		sum += addrs[i];
	return sum;
}

/* The first half of the evidence, cheap: the field holds the folded pseudo-header sum.
 * SNAT's rewrite keeps such a field in that form; l4_checksum_finish decides. */
static __always_inline int l4_checksum_looks_partial(const struct packet *pkt)
{
	__u16 *field = l4_checksum_field(pkt);

	if (!field || pkt->is_fragment)
		return 0;
	return *field == csum_fold64(pseudo_header_sum(pkt));
}

/* Whether n bytes at p lie within the frame. The barrier keeps clang from turning the
 * test into arithmetic on the end pointer, which the verifier refuses. */
static __always_inline int packet_has(void *p, __u32 n, void *end)
{
	void *last = p + n;

	asm volatile("" : "+r"(last));
	return last <= end;
}

/* n bytes at *cursor, n a constant multiple of 4 up to CSUM_CHUNK, when `remaining` says
 * so; -1 when the frame ends first. */
#define CSUM_TAIL(n)                                                                       \
	do {                                                                               \
		if (remaining & (n)) {                                                     \
			if (!packet_has(cursor, (n), end))                                 \
				return -1;                                                 \
			sum += (__u32)bpf_csum_diff(NULL, 0, cursor, (n), 0);              \
			cursor += (n);                                                     \
		}                                                                          \
	} while (0)

/* The second half: sums the segment (pseudo-header sum `sum` given) and, when it does not
 * verify, writes the full checksum into the field. Returns 1 when it wrote, 0 when the
 * checksum verified, -1 when the segment is not all in the frame or too long. The sum runs
 * in bpf_csum_diff's 512-byte chunks, then one call per bit of the rest: at most 18 + 7
 * calls, a bound the verifier sees. A function of its own (verified once, not once per
 * path of the pipeline): it sees the packet through offsets. */
__attribute__((noinline)) int l4_checksum_complete(struct xdp_md *ctx, __u32 l4_offset,
						   __u32 field_offset, __u32 length, __u64 sum)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 remaining = length;
	void *cursor;
	__u16 *field, result;
	int i;

	if (l4_offset > 2048 || field_offset > 2048 || length > L4_CHECKSUM_MAX_BYTES)
		return -1;
	/* The arguments of a function of its own carry no bounds: the checks above, again
	 * where the verifier sees them. */
	l4_offset = bounded16(l4_offset) & 0xfff;
	field_offset = bounded16(field_offset) & 0xfff;
	remaining = bounded16(remaining) & 0x3fff;
	field = data + field_offset;
	if (!packet_has(field, sizeof(*field), end))
		return -1;
	cursor = data + l4_offset;
	for (i = 0; i < L4_CHECKSUM_MAX_BYTES / CSUM_CHUNK; i++) {
		if (remaining < CSUM_CHUNK)
			break;
		if (!packet_has(cursor, CSUM_CHUNK, end))
			return -1;
		sum += (__u32)bpf_csum_diff(NULL, 0, cursor, CSUM_CHUNK, 0);
		cursor += CSUM_CHUNK;
		remaining -= CSUM_CHUNK;
	}
	CSUM_TAIL(256);
	CSUM_TAIL(128);
	CSUM_TAIL(64);
	CSUM_TAIL(32);
	CSUM_TAIL(16);
	CSUM_TAIL(8);
	CSUM_TAIL(4);
	if (remaining & 2) {
		if (!packet_has(cursor, 2, end))
			return -1;
		sum += *(__u16 *)cursor;
		cursor += 2;
	}
	if (remaining & 1) {
		if (!packet_has(cursor, 1, end))
			return -1;
		sum += *(__u8 *)cursor; /* the odd byte is the first of a zero-padded word */
	}
	if (csum_fold64(sum) == 0xffff)
		return 0; /* a full checksum after all */
	result = ~csum_fold64(sum + (__u16)~*field); /* the sum without the field's value */
	if (l4_offset + 6 == field_offset && result == 0) /* UDP: 0 would mean none */
		result = 0xffff;
	*field = result;
	return 1;
}

/* Before a redirect: a checksum left to offload is completed (see the top). */
static __always_inline void l4_checksum_finish(struct xdp_md *ctx, const struct packet *pkt)
{
	__u16 *field = l4_checksum_field(pkt);
	__u64 pseudo;

	if (!field || pkt->is_fragment)
		return;
	pseudo = pseudo_header_sum(pkt);
	if (*field != csum_fold64(pseudo))
		return;
	/* Offsets within the first 64 KiB. */
	l4_checksum_complete(ctx, (__u32)(pkt->l4 - pkt->data) & 0xffff,
			     (__u32)((void *)field - pkt->data) & 0xffff, l4_length(pkt), pseudo);
}

/* Whether the frame fits the egress's MTU: a frame GRO or a sender's GSO coalesced (a
 * veth in generic mode hands XDP such frames) is larger, and only the kernel segments it.
 * For paths that skip the FIB lookup, which checks the same. */
static __always_inline int frame_fits_egress(struct xdp_md *ctx, __u32 egress_ifindex)
{
	__u32 mtu = 0;

	return bpf_check_mtu(ctx, egress_ifindex, &mtu, 0, 0) == BPF_MTU_CHK_RET_SUCCESS;
}

#endif

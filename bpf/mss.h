/* TCP MSS clamping on the tunnels' xfrm interfaces (tc), as Azure advises of the devices
 * on its VPN tunnels: the MSS option of a SYN or SYN-ACK through a tunnel is lowered to
 * the tunnel's tcp_mss, so that neither end sends segments that, encrypted, exceed the
 * underlay's MTU and are dropped until path-MTU discovery learns better. tcp_mss is
 * IPv4's (Azure's advice is 1350); an IPv6 header is 20 bytes longer, so an IPv6 SYN gets
 * 20 less and its full-size segments make packets of the same size.
 *
 * Read and written through bpf_skb_load_bytes/bpf_skb_store_bytes at offsets, in a
 * function of its own: the tc programs are near the verifier's complexity limit, and a
 * global function is verified once, whatever the paths that call it. */
#ifndef BPF_MSS_H
#define BPF_MSS_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCP_FLAG_SYN_BYTE 0x02 /* in byte 13 of the TCP header */
#define TCP_OPTIONS_MAX 40
/* An IPv6 header (40 bytes) less an IPv4 header without options (20). */
#define MSS_IPV6_HEADER_EXTRA 20

/* Where the TCP header of the packet at l3 starts, or 0 when it is no TCP segment
 * whose header is in this packet (a later fragment, an IPv6 extension header first).
 * For IPv6, *max_mss is lowered by the header's extra length. */
static __always_inline __u32 mss_tcp_offset(struct __sk_buff *skb, __u32 l3, __u32 *max_mss)
{
	__u8 ip[20];

	if (bpf_skb_load_bytes(skb, l3, ip, sizeof(ip)))
		return 0;
	if ((ip[0] >> 4) == 4) {
		if (ip[9] != IPPROTO_TCP || ((ip[6] & 0x1f) | ip[7]) || (ip[0] & 0xf) < 5)
			return 0;
		return l3 + (ip[0] & 0xf) * 4;
	}
	if ((ip[0] >> 4) == 6 && ip[6] == IPPROTO_TCP && *max_mss > MSS_IPV6_HEADER_EXTRA) {
		*max_mss -= MSS_IPV6_HEADER_EXTRA;
		return l3 + 40;
	}
	return 0;
}

/* Lowers the MSS option of a SYN (or SYN-ACK) at l3 to max_mss (IPv4's), fixing the TCP checksum
 * incrementally. bpf_l4_csum_replace, not checksum.h's csum_apply on the field: tc cannot
 * see whether the skb's checksum is left to offload (CHECKSUM_PARTIAL, a VM's segment the
 * kernel forwards), where the field holds the pseudo-header sum and must not change; the
 * kernel's helper knows. Returns 1 when it rewrote the option, 0 otherwise.
 *
 * The options are copied to the stack and walked by position, not by a cursor: at each
 * of the 40 positions the walk only compares the position with where the next option
 * starts, a value the verifier need not know exactly, so the paths of every option
 * layout meet again at the next position instead of multiplying. */
__noinline int tcp_mss_clamp(struct __sk_buff *skb, __u32 l3, __u32 max_mss)
{
	__u8 hdr[14], opts[TCP_OPTIONS_MAX + 4] = {};
	__u32 tcp, len, next = 0, at = 0, mss = 0, done = 0;
	__be16 old, new;

	if (!skb || !max_mss)
		return 0;
	tcp = mss_tcp_offset(skb, l3, &max_mss);
	if (!tcp || bpf_skb_load_bytes(skb, tcp, hdr, sizeof(hdr)) ||
	    !(hdr[13] & TCP_FLAG_SYN_BYTE))
		return 0;
	len = (hdr[12] >> 4) * 4;
	if (len <= 20)
		return 0;
	len -= 20;
	if (len > TCP_OPTIONS_MAX || bpf_skb_load_bytes(skb, tcp + 20, opts, len))
		return 0;
#pragma unroll
	for (__u32 p = 0; p + 4 <= TCP_OPTIONS_MAX; p++) {
		if (done || p != next)
			continue;
		if (opts[p] == TCPOPT_EOL || p >= len) {
			done = 1;
		} else if (opts[p] == TCPOPT_NOP) {
			next = p + 1;
		} else if (opts[p] == TCPOPT_MSS) {
			done = 1;
			if (opts[p + 1] == 4 && p + 4 <= len) {
				at = 20 + p + 2;
				mss = (__u32)opts[p + 2] << 8 | opts[p + 3];
			}
		} else if (opts[p + 1] < 2) {
			done = 1;
		} else {
			next = p + opts[p + 1];
		}
	}
	if (!at || mss <= max_mss)
		return 0;
	old = bpf_htons((__u16)mss);
	new = bpf_htons((__u16)max_mss);
	if (bpf_skb_store_bytes(skb, tcp + at, &new, 2, 0))
		return 0;
	bpf_l4_csum_replace(skb, tcp + 16, old, new, 2);
	return 1;
}

#endif

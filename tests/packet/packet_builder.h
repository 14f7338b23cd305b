/* Builds test frames byte by byte (Ethernet, VLAN, IPv4, IPv6, TCP, UDP, ICMP) with
 * correct checksums, so a test can say exactly what goes in and what must come out. */
#ifndef TESTS_PACKET_BUILDER_H
#define TESTS_PACKET_BUILDER_H

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FRAME_MAX 1600

struct frame {
	uint8_t data[FRAME_MAX];
	size_t len;
};

struct flow {
	int family;              /* AF_INET or AF_INET6 */
	const char *src, *dst;
	uint8_t proto;           /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6 */
	uint16_t sport, dport;   /* ICMP: sport is the echo identifier */
	uint8_t ttl;             /* 0 means 64 */
	uint32_t ip_id;          /* IPv4 identification (16 bits) / IPv6 flow label (20) */
	size_t payload;          /* bytes of payload after the transport header */
};

static inline void mac_parse(const char *text, uint8_t *mac)
{
	unsigned int b[6];

	sscanf(text, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]);
	for (int i = 0; i < 6; i++)
		mac[i] = b[i];
}

static inline uint32_t checksum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	return sum;
}

static inline uint16_t checksum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}

static inline void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }

/* Appends Ethernet; ethertype in host order. Returns the offset after it. */
static inline size_t frame_ethernet(struct frame *f, const char *dst, const char *src,
				    uint16_t ethertype)
{
	mac_parse(dst, f->data);
	mac_parse(src, f->data + 6);
	put16(f->data + 12, ethertype);
	f->len = 14;
	return f->len;
}

static inline void frame_vlan(struct frame *f, uint16_t tpid, uint16_t vid, uint16_t inner)
{
	/* Rewrites the ethertype slot at len-2 into a tag, then the inner type. */
	put16(f->data + f->len - 2, tpid);
	put16(f->data + f->len, vid);
	put16(f->data + f->len + 2, inner);
	f->len += 4;
}

static inline size_t transport_build(uint8_t *l4, const struct flow *fl)
{
	size_t hdr;

	switch (fl->proto) {
	case IPPROTO_TCP:
		hdr = 20;
		memset(l4, 0, hdr);
		put16(l4, fl->sport);
		put16(l4 + 2, fl->dport);
		l4[12] = 5 << 4;
		l4[13] = 0x02; /* SYN */
		put16(l4 + 14, 65535);
		break;
	case IPPROTO_UDP:
		hdr = 8;
		put16(l4, fl->sport);
		put16(l4 + 2, fl->dport);
		put16(l4 + 4, hdr + fl->payload);
		put16(l4 + 6, 0);
		break;
	default: /* ICMP / ICMPv6 echo request */
		hdr = 8;
		memset(l4, 0, hdr);
		l4[0] = fl->proto == IPPROTO_ICMPV6 ? 128 : 8;
		put16(l4 + 4, fl->sport);
		put16(l4 + 6, 1);
		break;
	}
	for (size_t i = 0; i < fl->payload; i++)
		l4[hdr + i] = (uint8_t)i;
	return hdr + fl->payload;
}

static inline void transport_checksum(uint8_t *l4, size_t len, const struct flow *fl,
				      const uint8_t *src, const uint8_t *dst, size_t alen)
{
	uint32_t sum = 0;
	size_t at = fl->proto == IPPROTO_TCP ? 16 : fl->proto == IPPROTO_UDP ? 6 : 2;

	l4[at] = l4[at + 1] = 0;
	if (fl->proto != IPPROTO_ICMP) { /* ICMPv4 has no pseudo header */
		sum = checksum_add(sum, src, alen);
		sum = checksum_add(sum, dst, alen);
		sum += fl->proto + len;
	}
	sum = checksum_add(sum, l4, len);
	memcpy(l4 + at, &(uint16_t){ checksum_fold(sum) }, 2);
}

static inline void ipv4_header_checksum(uint8_t *ip)
{
	size_t hlen = (ip[0] & 0xf) * 4;

	ip[10] = ip[11] = 0;
	memcpy(ip + 10, &(uint16_t){ checksum_fold(checksum_add(0, ip, hlen)) }, 2);
}

/* Appends an IP packet with its transport header after the Ethernet header already in f;
 * options_len bytes of IPv4 options (NOPs) may be added. Returns the IP offset. */
static inline size_t frame_ip(struct frame *f, const struct flow *fl, size_t options_len)
{
	size_t at = f->len;
	uint8_t *ip = f->data + at;

	if (fl->family == AF_INET) {
		size_t hlen = 20 + options_len, l4len;

		memset(ip, 0, hlen);
		ip[0] = 0x40 | (hlen / 4);
		put16(ip + 4, fl->ip_id);
		ip[8] = fl->ttl ? fl->ttl : 64;
		ip[9] = fl->proto;
		inet_pton(AF_INET, fl->src, ip + 12);
		inet_pton(AF_INET, fl->dst, ip + 16);
		memset(ip + 20, 1, options_len); /* NOP options */
		l4len = transport_build(ip + hlen, fl);
		transport_checksum(ip + hlen, l4len, fl, ip + 12, ip + 16, 4);
		put16(ip + 2, hlen + l4len);
		ipv4_header_checksum(ip);
		f->len = at + hlen + l4len;
	} else {
		size_t l4len;

		memset(ip, 0, 40);
		ip[0] = 0x60;
		ip[1] = (fl->ip_id >> 16) & 0xf;
		put16(ip + 2, fl->ip_id & 0xffff);
		ip[6] = fl->proto;
		ip[7] = fl->ttl ? fl->ttl : 64;
		inet_pton(AF_INET6, fl->src, ip + 8);
		inet_pton(AF_INET6, fl->dst, ip + 24);
		l4len = transport_build(ip + 40, fl);
		transport_checksum(ip + 40, l4len, fl, ip + 8, ip + 24, 16);
		put16(ip + 4, l4len);
		f->len = at + 40 + l4len;
	}
	return at;
}

/* The common case: Ethernet + IP + transport. */
static inline size_t frame_build(struct frame *f, const char *dst_mac, const char *src_mac,
				 const struct flow *fl)
{
	frame_ethernet(f, dst_mac, src_mac, fl->family == AF_INET ? 0x0800 : 0x86dd);
	return frame_ip(f, fl, 0);
}

/* An ICMP (family AF_INET) or ICMPv6 error from `from` to `to`: type, code, the four
 * bytes after the checksum (`rest`: the next-hop MTU of fragmentation needed, an IPv6
 * MTU, a pointer), then `quote_len` bytes of the IP packet at `quoted` (RFC 792: its
 * header and 8 bytes; RFC 4443: as much as fits). Checksums are right. Returns the IP
 * offset. */
static inline size_t frame_icmp_error(struct frame *f, const char *dst_mac, const char *src_mac,
				      int family, const char *from, const char *to, uint8_t type,
				      uint8_t code, uint32_t rest, const uint8_t *quoted,
				      size_t quote_len)
{
	size_t ip_at = frame_ethernet(f, dst_mac, src_mac, family == AF_INET ? 0x0800 : 0x86dd);
	size_t hlen = family == AF_INET ? 20 : 40;
	uint8_t *ip = f->data + ip_at, *icmp = ip + hlen;
	uint32_t sum = 0;

	memset(ip, 0, hlen + 8);
	icmp[0] = type;
	icmp[1] = code;
	put16(icmp + 4, rest >> 16);
	put16(icmp + 6, rest & 0xffff);
	memcpy(icmp + 8, quoted, quote_len);
	if (family == AF_INET) {
		ip[0] = 0x45;
		put16(ip + 2, 20 + 8 + quote_len);
		ip[8] = 64;
		ip[9] = IPPROTO_ICMP;
		inet_pton(AF_INET, from, ip + 12);
		inet_pton(AF_INET, to, ip + 16);
		ipv4_header_checksum(ip);
	} else {
		ip[0] = 0x60;
		put16(ip + 4, 8 + quote_len);
		ip[6] = IPPROTO_ICMPV6;
		ip[7] = 64;
		inet_pton(AF_INET6, from, ip + 8);
		inet_pton(AF_INET6, to, ip + 24);
		sum = checksum_add(0, ip + 8, 32) + IPPROTO_ICMPV6 + 8 + quote_len;
	}
	sum = checksum_add(sum, icmp, 8 + quote_len);
	memcpy(icmp + 2, &(uint16_t){ checksum_fold(sum) }, 2);
	f->len = ip_at + hlen + 8 + quote_len;
	return ip_at;
}

/* One fragment of the datagram in `whole` (Ethernet + IPv4 or IPv6 without extension
 * headers, as frame_build makes it): `len` bytes of its IP payload from byte `offset` (a
 * multiple of 8), with MF set when `more`. IPv4 keeps the datagram's identification;
 * IPv6 gets a fragment header with identification `id`. Returns the IP offset. */
static inline size_t frame_fragment(struct frame *out, const struct frame *whole, size_t offset,
				    size_t len, int more, uint32_t id)
{
	const uint8_t *ip = whole->data + 14;

	memcpy(out->data, whole->data, 14);
	if ((ip[0] >> 4) == 4) {
		size_t hlen = (ip[0] & 0xf) * 4;
		uint8_t *o = out->data + 14;

		memcpy(o, ip, hlen);
		memcpy(o + hlen, ip + hlen + offset, len);
		put16(o + 2, hlen + len);
		put16(o + 6, (more ? 0x2000 : 0) | (offset / 8));
		ipv4_header_checksum(o);
		out->len = 14 + hlen + len;
	} else {
		uint8_t *o = out->data + 14, *fh = o + 40;

		memcpy(o, ip, 40);
		memset(fh, 0, 8);
		fh[0] = ip[6];
		put16(fh + 2, (offset & 0xfff8) | (more ? 1 : 0));
		put16(fh + 4, id >> 16);
		put16(fh + 6, id & 0xffff);
		o[6] = 44; /* fragment header */
		memcpy(fh + 8, ip + 40 + offset, len);
		put16(o + 4, 8 + len);
		out->len = 14 + 48 + len;
	}
	return 14;
}

#endif

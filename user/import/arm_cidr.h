/* The ARM template functions on address ranges (parseCidr, cidrSubnet, cidrHost) and
 * uri(), as Azure documents them, for IPv4 and IPv6. Each returns a new value, or NULL
 * with the reason in `why`. */
#ifndef VNET_XDP_ARM_CIDR_H
#define VNET_XDP_ARM_CIDR_H

#include <stddef.h>
#include <jansson.h>

/* {network, netmask, broadcast (IPv4 only), firstUsable, lastUsable, cidr} */
json_t *arm_parse_cidr(const char *network, char *why, size_t why_size);
/* The subnet number `index` of length `new_length` inside `network`: "a.b.c.d/len". */
json_t *arm_cidr_subnet(const char *network, long long new_length, long long index,
			char *why, size_t why_size);
/* The usable host number `index` (0 is network + 1) of `network`. */
json_t *arm_cidr_host(const char *network, long long index, char *why, size_t why_size);
/* baseUri and relativeUri combined as uri() does. */
json_t *arm_uri(const char *base, const char *relative);

#endif

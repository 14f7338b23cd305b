/* parseCidr, cidrSubnet, cidrHost and uri() of ARM templates. Addresses are held as
 * 128-bit numbers so that one path serves IPv4 (the low 32 bits) and IPv6. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "import/arm_cidr.h"

typedef unsigned __int128 u128;

struct cidr {
	int family;
	int bits;   /* 32 or 128 */
	int length; /* the prefix length */
	u128 network;
};

static u128 host_mask(const struct cidr *c, int length)
{
	int host_bits = c->bits - length;

	return host_bits >= 128 ? ~(u128)0 : host_bits ? ((u128)1 << host_bits) - 1 : 0;
}

static bool parse(const char *text, struct cidr *c, char *why, size_t why_size)
{
	char address[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	unsigned char bytes[16];
	char *end;
	long length;

	if (!slash || (size_t)(slash - text) >= sizeof(address) || !slash[1])
		goto bad;
	memcpy(address, text, (size_t)(slash - text));
	address[slash - text] = '\0';
	c->family = strchr(address, ':') ? AF_INET6 : AF_INET;
	c->bits = c->family == AF_INET ? 32 : 128;
	length = strtol(slash + 1, &end, 10);
	if (*end || length < 0 || length > c->bits ||
	    inet_pton(c->family, address, bytes) != 1)
		goto bad;
	c->length = (int)length;
	c->network = 0;
	for (int i = 0; i < c->bits / 8; i++)
		c->network = c->network << 8 | bytes[i];
	c->network &= ~host_mask(c, c->length) & (c->bits == 32 ? 0xffffffffu : ~(u128)0);
	return true;
bad:
	snprintf(why, why_size, "'%s' is not an address range in CIDR notation (a.b.c.d/len "
		 "or x:x::/len)", text);
	return false;
}

static json_t *address_text(const struct cidr *c, u128 value)
{
	unsigned char bytes[16];
	char text[INET6_ADDRSTRLEN];

	for (int i = c->bits / 8 - 1; i >= 0; i--, value >>= 8)
		bytes[i] = (unsigned char)value;
	inet_ntop(c->family, bytes, text, sizeof(text));
	return json_string(text);
}

json_t *arm_parse_cidr(const char *network, char *why, size_t why_size)
{
	struct cidr c;
	u128 hosts, last;
	json_t *out;

	if (!parse(network, &c, why, why_size))
		return NULL;
	hosts = host_mask(&c, c.length);
	last = c.network | hosts;
	out = json_pack("{s:o, s:o}", "network", address_text(&c, c.network), "netmask",
			address_text(&c, ~hosts & (c.bits == 32 ? 0xffffffffu : ~(u128)0)));
	/* IPv4 keeps the network and broadcast addresses from hosts (not in a /31 or /32);
	 * IPv6 has no broadcast. */
	if (c.family == AF_INET) {
		json_object_set_new(out, "broadcast", address_text(&c, last));
		json_object_set_new(out, "firstUsable", address_text(&c, c.network +
								     (hosts > 1)));
		json_object_set_new(out, "lastUsable", address_text(&c, last - (hosts > 1)));
	} else {
		json_object_set_new(out, "firstUsable", address_text(&c, c.network));
		json_object_set_new(out, "lastUsable", address_text(&c, last));
	}
	json_object_set_new(out, "cidr", json_integer(c.length));
	return out;
}

json_t *arm_cidr_subnet(const char *network, long long new_length, long long index,
			char *why, size_t why_size)
{
	struct cidr c;
	char text[INET6_ADDRSTRLEN + 8];
	json_t *address;
	u128 count;

	if (!parse(network, &c, why, why_size))
		return NULL;
	if (new_length < c.length || new_length > c.bits) {
		snprintf(why, why_size, "the new prefix length %lld is outside %d-%d", new_length,
			 c.length, c.bits);
		return NULL;
	}
	count = new_length - c.length >= 127 ? ~(u128)0 : (u128)1 << (new_length - c.length);
	if (index < 0 || (u128)index >= count) {
		snprintf(why, why_size, "subnet index %lld is outside the %d subnets of /%lld in "
			 "%s", index, count > 1000000000 ? 1000000000 : (int)count, new_length,
			 network);
		return NULL;
	}
	address = address_text(&c, c.network + ((u128)index << (c.bits - new_length)));
	snprintf(text, sizeof(text), "%s/%lld", json_string_value(address), new_length);
	json_decref(address);
	return json_string(text);
}

json_t *arm_cidr_host(const char *network, long long index, char *why, size_t why_size)
{
	struct cidr c;
	u128 hosts;

	if (!parse(network, &c, why, why_size))
		return NULL;
	hosts = host_mask(&c, c.length);
	/* IPv4's usable hosts end before the broadcast address. */
	if (index < 0 || (u128)index + 1 > hosts - (c.family == AF_INET && hosts > 0)) {
		snprintf(why, why_size, "host index %lld is outside the usable hosts of %s", index,
			 network);
		return NULL;
	}
	return address_text(&c, c.network + 1 + (u128)index);
}

/* As Azure documents uri(): a base ending in '/' is followed by the relative part (one
 * slash where both have one); otherwise what follows the base's last slash is replaced,
 * and a base with no path at all gets a slash. */
json_t *arm_uri(const char *base, const char *relative)
{
	const char *scheme = strstr(base, "//");
	const char *path = strchr(scheme ? scheme + 2 : base, '/');
	size_t keep = strlen(base);
	char *text = NULL;
	json_t *out;
	const char *sep = "";

	if (keep && base[keep - 1] == '/') {
		if (relative[0] == '/')
			relative++;
	} else if (path) {
		keep = (size_t)(strrchr(base, '/') - base) + 1;
		if (relative[0] == '/')
			relative++;
	} else if (relative[0] != '/') {
		sep = "/";
	}
	if (asprintf(&text, "%.*s%s%s", (int)keep, base, sep, relative) < 0)
		return NULL;
	out = json_string(text);
	free(text);
	return out;
}

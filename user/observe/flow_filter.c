#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "observe/flow_filter.h"

const char *const flow_filter_option_names[FLOW_FILTER_COUNT] = {
	"src", "dst", "sport", "dport", "proto", "vnet", "state",
};

size_t flow_filter_longopts(struct option *opts, size_t n, bool with_state)
{
	for (int i = 0; i < FLOW_FILTER_COUNT; i++)
		if (i != FLOW_FILTER_STATE || with_state)
			opts[n++] = (struct option){ flow_filter_option_names[i], required_argument,
						     NULL, FLOW_FILTER_GETOPT(i) };
	opts[n] = (struct option){ 0 };
	return n;
}

int flow_filter_getopt(struct flow_filter *f, const char *command, int c, const char *value,
		       const char *const *states)
{
	if (c < FLOW_FILTER_GETOPT(0) || c >= FLOW_FILTER_GETOPT(FLOW_FILTER_COUNT))
		return 1;
	return flow_filter_set(f, command, c - FLOW_FILTER_GETOPT(0), value, states);
}

void flow_filter_init(struct flow_filter *f)
{
	*f = (struct flow_filter){ .sport = -1, .dport = -1, .proto = -1 };
}

/* ADDR alone is the host's prefix (/32, /128). */
static int address_filter_parse(const char *text, struct ip_prefix *out)
{
	struct ip_address a;

	if (!strchr(text, '/')) {
		if (ip_address_parse(text, &a))
			return -EINVAL;
		*out = (struct ip_prefix){ .family = a.family, .len = a.family == AF_INET ? 32 : 128 };
		memcpy(out->addr, a.addr, sizeof(out->addr));
		return 0;
	}
	return ip_prefix_parse(text, out);
}

static int number_parse(const char *text, long max)
{
	char *end;
	long n;

	if (!*text || *text == '-' || *text == '+')
		return -1;
	errno = 0;
	n = strtol(text, &end, 10);
	return errno || *end || n > max ? -1 : (int)n;
}

/* The protocols --proto and the tables name; any other is a number. */
static const struct { const char *name; int number; } protocol_names[] = {
	{ "tcp", IPPROTO_TCP }, { "udp", IPPROTO_UDP }, { "icmp", IPPROTO_ICMP },
	{ "icmpv6", IPPROTO_ICMPV6 },
};

static int protocol_parse(const char *text)
{
	for (size_t i = 0; i < sizeof(protocol_names) / sizeof(*protocol_names); i++)
		if (!strcasecmp(text, protocol_names[i].name))
			return protocol_names[i].number;
	return number_parse(text, 255);
}

const char *flow_protocol_name(uint8_t proto)
{
	for (size_t i = 0; i < sizeof(protocol_names) / sizeof(*protocol_names); i++)
		if (protocol_names[i].number == proto)
			return protocol_names[i].name;
	return NULL;
}

void flow_endpoint_text(uint8_t family, const uint8_t *addr, uint16_t port, bool with_port,
			char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (family == AF_INET || family == AF_INET6)
		inet_ntop(family, addr, a, sizeof(a));
	if (!with_port)
		snprintf(buf, size, "%s", a);
	else if (family == AF_INET6)
		snprintf(buf, size, "[%s]:%u", a, port);
	else
		snprintf(buf, size, "%s:%u", a, port);
}

static bool state_known(const char *state, const char *const *states)
{
	for (; *states; states++)
		if (!strcmp(state, *states))
			return true;
	return false;
}

static void states_list(FILE *out, const char *const *states)
{
	for (const char *const *s = states; *s; s++)
		fprintf(out, "%s%s", s == states ? "" : s[1] ? ", " : " or ", *s);
}

int flow_filter_set(struct flow_filter *f, const char *command, enum flow_filter_option option,
		    const char *value, const char *const *states)
{
	const char *name = flow_filter_option_names[option];
	int err = 0;

	switch (option) {
	case FLOW_FILTER_SRC:
	case FLOW_FILTER_DST: {
		struct ip_prefix *p = option == FLOW_FILTER_SRC ? &f->src : &f->dst;

		err = address_filter_parse(value, p);
		if (err == -EDOM)
			fprintf(stderr, "vnet-xdp %s: --%s '%s' has host bits set: give the network's "
				"own address\n", command, name, value);
		else if (err)
			fprintf(stderr, "vnet-xdp %s: --%s '%s' is not an address or a prefix "
				"(ADDR or ADDR/LEN, IPv4 or IPv6)\n", command, name, value);
		break;
	}
	case FLOW_FILTER_SPORT:
	case FLOW_FILTER_DPORT: {
		int port = number_parse(value, 65535);

		if (port < 0) {
			fprintf(stderr, "vnet-xdp %s: --%s '%s' is not a port (0-65535)\n", command,
				name, value);
			err = -EINVAL;
		}
		*(option == FLOW_FILTER_SPORT ? &f->sport : &f->dport) = port;
		break;
	}
	case FLOW_FILTER_PROTO:
		f->proto = protocol_parse(value);
		if (f->proto < 0) {
			fprintf(stderr, "vnet-xdp %s: --proto '%s' is not tcp, udp, icmp, icmpv6 or a "
				"protocol number (0-255)\n", command, value);
			err = -EINVAL;
		}
		break;
	case FLOW_FILTER_VNET:
		if (!*value) {
			fprintf(stderr, "vnet-xdp %s: --vnet needs a virtual network's name\n", command);
			err = -EINVAL;
		}
		f->vnet = value;
		break;
	case FLOW_FILTER_STATE:
		if (!state_known(value, states)) {
			fprintf(stderr, "vnet-xdp %s: --state '%s' is not ", command, value);
			states_list(stderr, states);
			fputc('\n', stderr);
			err = -EINVAL;
		}
		f->state = value;
		break;
	case FLOW_FILTER_COUNT:
		break;
	}
	return err ? -EINVAL : 0;
}

static bool address_matches(const struct ip_prefix *p, uint8_t family, const uint8_t *addr)
{
	struct ip_prefix host = { .family = family, .len = family == AF_INET ? 32 : 128 };

	if (!p->family)
		return true;
	memcpy(host.addr, addr, family == AF_INET ? 4 : 16);
	return ip_prefix_contains(p, &host);
}

static bool vnet_matches(const char *want, const char *const *vnets)
{
	return !want || (vnets[0] && !strcmp(want, vnets[0])) || (vnets[1] && !strcmp(want, vnets[1]));
}

bool flow_filter_match(const struct flow_filter *f, const struct flow_filter_entry *e)
{
	return address_matches(&f->src, e->family, e->src) &&
	       address_matches(&f->dst, e->family, e->dst) &&
	       (f->sport < 0 || f->sport == e->sport) && (f->dport < 0 || f->dport == e->dport) &&
	       (f->proto < 0 || f->proto == e->proto) && vnet_matches(f->vnet, e->vnets) &&
	       (!f->state || (e->state && !strcmp(f->state, e->state)));
}

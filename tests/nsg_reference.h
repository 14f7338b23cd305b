/* A reference model of Azure's network security groups for differential tests: a plain
 * linear first-match evaluator over the config's rules, written from Azure's
 * documentation and independent of the datapath's bit-vector compiler (user/compile/nsg.c) and
 * classifier (bpf/nsg.h). Slow on purpose: every rule of the direction is looked at, the
 * one with the lowest priority number among those that match decides.
 *
 * Semantics it states:
 *  - address: "*" everything; a CIDR of the packet's family; VirtualNetwork the VNet's
 *    space with its peers' and the on-premises prefixes its gateway reaches (the caller
 *    passes that list); Internet every address outside VirtualNetwork; AzureLoadBalancer
 *    168.63.129.16; another service tag the prefixes Azure's tag file lists for it (the
 *    config's service_tags, read from gateway.serviceTagsFile); an application security
 *    group the addresses of every NIC whose ipConfigurations join it (found from the
 *    config's NICs, not from the group's compiled prefix list).
 *  - ports: TCP and UDP have ports; a packet without (ICMP, ESP, AH, other protocols, a
 *    non-first fragment) matches only rules whose ranges cover 0-65535.
 *  - protocol: * any; Icmp is ICMP and ICMPv6.
 *  - path: outbound the source NIC's NSG then its subnet's; inbound the destination
 *    subnet's then its NIC's; the first NSG that denies ends the evaluation.
 *  - ICMP errors (destination unreachable, packet too big, time exceeded, parameter
 *    problem): the NSGs are stateful, so an error about a connection they allowed reaches
 *    its end with that connection, whatever the rules say of ICMP (reference_error_belongs);
 *    any other error is an ICMP packet of its own, judged by the rules. */
#ifndef TESTS_NSG_REFERENCE_H
#define TESTS_NSG_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include "config/config.h"

struct reference_packet {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t src[16], dst[16];
	uint8_t proto;     /* IP protocol number */
	bool has_ports;
	uint16_t sport, dport;
};

/* One NSG as seen from one place: which group, and the VirtualNetwork tag there. */
struct reference_nsg {
	const struct config_nsg *nsg;  /* NULL: no NSG at this stage */
	const struct ip_prefix *virtual_network;
	size_t n_virtual_network;
	const struct config *cfg;      /* for service tags and application security groups */
};

static inline bool reference_address_in(const uint8_t *addr, int family,
					const struct ip_prefix *p)
{
	if (p->family != family)
		return false;
	for (unsigned bit = 0; bit < p->len; bit++) {
		uint8_t mask = 0x80 >> (bit % 8);

		if ((addr[bit / 8] & mask) != (p->addr[bit / 8] & mask))
			return false;
	}
	return true;
}

static inline bool reference_in_list(const uint8_t *addr, int family,
				     const struct ip_prefix *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (reference_address_in(addr, family, &list[i]))
			return true;
	return false;
}

static inline bool reference_nic_joins(const struct config_nic *nic, int group)
{
	for (size_t i = 0; i < nic->n_application_security_groups; i++)
		if (nic->application_security_groups[i] == group)
			return true;
	return false;
}

/* Whether a NIC that joins the group has the address. */
static inline bool reference_in_group(const struct config *cfg, int group, const uint8_t *addr,
				      int family)
{
	for (size_t n = 0; n < cfg->n_nics; n++) {
		const struct config_nic *nic = &cfg->nics[n];

		if (!reference_nic_joins(nic, group))
			continue;
		for (size_t a = 0; a < nic->n_addresses; a++)
			if (nic->addresses[a].family == family &&
			    !memcmp(nic->addresses[a].addr, addr, family == AF_INET ? 4 : 16))
				return true;
	}
	return false;
}

static inline bool reference_address_matches(const struct nsg_address *a, const uint8_t *addr,
					     int family, const struct reference_nsg *where)
{
	static const uint8_t load_balancer[4] = { 168, 63, 129, 16 };

	switch (a->kind) {
	case NSG_ADDR_ANY:
		return true;
	case NSG_ADDR_PREFIX:
		return reference_address_in(addr, family, &a->prefix);
	case NSG_ADDR_TAG_VIRTUAL_NETWORK:
		return reference_in_list(addr, family, where->virtual_network, where->n_virtual_network);
	case NSG_ADDR_TAG_INTERNET:
		return !reference_in_list(addr, family, where->virtual_network, where->n_virtual_network);
	case NSG_ADDR_TAG_AZURE_LOAD_BALANCER:
		return family == AF_INET && !memcmp(addr, load_balancer, 4);
	case NSG_ADDR_SERVICE_TAG:
		return reference_in_list(addr, family, where->cfg->service_tags[a->group].prefixes,
					 where->cfg->service_tags[a->group].n_prefixes);
	case NSG_ADDR_APPLICATION_SECURITY_GROUP:
		return reference_in_group(where->cfg, a->group, addr, family);
	}
	return false;
}

static inline bool reference_addresses_match(const struct nsg_address *list, size_t n,
					     const uint8_t *addr, int family,
					     const struct reference_nsg *where)
{
	for (size_t i = 0; i < n; i++)
		if (reference_address_matches(&list[i], addr, family, where))
			return true;
	return false;
}

static inline bool reference_ports_match(const struct port_range *ranges, size_t n,
					 bool has_ports, uint16_t port)
{
	for (size_t i = 0; i < n; i++) {
		if (has_ports && ranges[i].from <= port && port <= ranges[i].to)
			return true;
		if (!has_ports && ranges[i].from == 0 && ranges[i].to == 65535)
			return true;
	}
	return false;
}

static inline bool reference_protocol_matches(enum nsg_protocol protocol, uint8_t proto)
{
	switch (protocol) {
	case NSG_PROTO_ANY: return true;
	case NSG_PROTO_TCP: return proto == IPPROTO_TCP;
	case NSG_PROTO_UDP: return proto == IPPROTO_UDP;
	case NSG_PROTO_ICMP: return proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;
	case NSG_PROTO_ESP: return proto == IPPROTO_ESP;
	case NSG_PROTO_AH: return proto == IPPROTO_AH;
	}
	return false;
}

/* The rule of one NSG and direction that decides, or NULL when none matches. */
static inline const struct config_security_rule *
reference_first_match(const struct reference_nsg *where, enum nsg_direction direction,
		      const struct reference_packet *p)
{
	const struct config_security_rule *best = NULL;

	for (size_t i = 0; i < where->nsg->n_rules; i++) {
		const struct config_security_rule *r = &where->nsg->rules[i];

		if (r->direction != direction || (best && best->priority <= r->priority))
			continue;
		if (reference_protocol_matches(r->protocol, p->proto) &&
		    reference_addresses_match(r->sources, r->n_sources, p->src, p->family, where) &&
		    reference_addresses_match(r->destinations, r->n_destinations, p->dst, p->family,
					      where) &&
		    reference_ports_match(r->source_ports, r->n_source_ports, p->has_ports, p->sport) &&
		    reference_ports_match(r->destination_ports, r->n_destination_ports, p->has_ports,
					  p->dport))
			best = r;
	}
	return best;
}

enum reference_stage { REFERENCE_SOURCE_NIC = 0, REFERENCE_SOURCE_SUBNET,
		       REFERENCE_DESTINATION_SUBNET, REFERENCE_DESTINATION_NIC,
		       REFERENCE_STAGES };

struct reference_verdict {
	bool allowed;
	int deciding_stage;  /* the stage that denied; -1 when allowed */
	/* Per stage: the deciding rule, NULL when the stage has no NSG or was not reached. */
	const struct config_security_rule *rules[REFERENCE_STAGES];
};

/* stages[i]: the NSG of each stage, in enum reference_stage order. */
static inline struct reference_verdict
reference_evaluate(const struct reference_nsg stages[REFERENCE_STAGES],
		   const struct reference_packet *p)
{
	struct reference_verdict v = { .allowed = true, .deciding_stage = -1 };

	for (int s = 0; s < REFERENCE_STAGES; s++) {
		const struct config_security_rule *r;

		if (!stages[s].nsg)
			continue;
		r = reference_first_match(&stages[s],
					  s < REFERENCE_DESTINATION_SUBNET ? NSG_OUTBOUND : NSG_INBOUND, p);
		v.rules[s] = r;
		if (!r || r->access == NSG_DENY) {
			v.allowed = false;
			v.deciding_stage = s;
			break;
		}
	}
	return v;
}

/* One end of an allowed flow: address, port (TCP/UDP) and the VNet it is in. */
struct reference_flow_end {
	uint8_t addr[16];
	uint16_t port;
	int vnet;
};

struct reference_flow {
	int family;
	uint8_t proto;
	struct reference_flow_end a, b; /* a opened it */
};

static inline bool reference_end_is(const struct reference_flow_end *end, const uint8_t *addr,
				    uint16_t port, int vnet, int family)
{
	return !memcmp(end->addr, addr, family == AF_INET ? 4 : 16) && end->port == port &&
	       end->vnet == vnet;
}

/* Whether an ICMP error belongs to the flow: the packet it quotes is one of the flow's,
 * either way (protocol, addresses, ports, each end's VNet), and the error travels to the
 * quoted packet's sender. The quote's sender sits in the VNet the error goes to, its
 * destination in the VNet the error comes from. */
static inline bool reference_error_belongs(const struct reference_flow *flow,
					   const struct reference_packet *error, int error_src_vnet,
					   int error_dst_vnet, const struct reference_packet *quoted)
{
	size_t n = error->family == AF_INET ? 4 : 16;

	if (quoted->family != error->family || flow->family != error->family ||
	    quoted->proto != flow->proto || memcmp(error->dst, quoted->src, n))
		return false;
	return (reference_end_is(&flow->a, quoted->src, quoted->sport, error_dst_vnet, flow->family) &&
		reference_end_is(&flow->b, quoted->dst, quoted->dport, error_src_vnet, flow->family)) ||
	       (reference_end_is(&flow->b, quoted->src, quoted->sport, error_dst_vnet, flow->family) &&
		reference_end_is(&flow->a, quoted->dst, quoted->dport, error_src_vnet, flow->family));
}

#endif

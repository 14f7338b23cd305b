/* Network security groups: bit-vector classification (LBVS, as bpf-iptables does it).
 * One lookup per field (source prefix, destination prefix, source port, destination port,
 * protocol) gives the bit vector of the rules of one NSG table that admit the field; the
 * first bit set in all five is the rule that decides, because bits are numbered by
 * priority. The cost is five lookups and an AND over the words that can hold a match,
 * whatever the number of rules. */
#ifndef BPF_NSG_H
#define BPF_NSG_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "vnet_xdp.h"
#include "maps.h"
#include "parse.h"

/* Config maps (rebuilt per generation, see config_map_names in user/datapath/datapath.c). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_NSG_PREFIXES);
	__type(key, struct lpm_key); /* scope: table * 2 + side (0 source, 1 destination) */
	__type(value, struct nsg_bitmap);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nsg_addresses SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_NSG_PORT_PREFIXES);
	__type(key, struct nsg_port_key);
	__type(value, __u32); /* elementary port interval, key of nsg_port_intervals */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nsg_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_NSG_PORT_INTERVALS);
	__type(key, __u32);
	__type(value, struct nsg_bitmap);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nsg_port_intervals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_NSG_TABLES * NSG_PROTO_CLASSES);
	__type(key, __u32); /* table * NSG_PROTO_CLASSES + enum nsg_proto_class */
	__type(value, struct nsg_bitmap);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nsg_protocols SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_NSG_TABLES);
	__type(key, __u32);
	__type(value, struct nsg_table);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nsg_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_NSG_RULE_SLOTS);
	__type(key, __u32);
	__type(value, struct nsg_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nsg_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_NSG_BINDINGS);
	__type(key, struct lpm_key); /* scope: VNet id */
	__type(value, struct nsg_binding);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nsg_bindings SEC(".maps");

/* State maps (kept across reloads). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_NSG_RULE_IDS);
	__type(key, __u32);
	__type(value, struct nsg_rule_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nsg_rule_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_NSG_IDS);
	__type(key, __u32);   /* stable NSG id */
	__type(value, __u32); /* generation since which its flows are re-evaluated */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nsg_flush SEC(".maps");

/* Lookup keys of the classifier, off the stack: the pipeline's frame and the NSG stage's
 * leave little of the 512 bytes for it. */
struct nsg_keys {
	struct lpm_key address;
	struct nsg_port_key port;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nsg_keys);
} nsg_scratch SEC(".maps");

/* The packet's fields as the rules see them; for a flow's return packet, swapped.
 * binding_src and binding_dst are the addresses whose NSG bindings judge each end: the
 * packet's own, except on the legs through an appliance (a VirtualAppliance route's leg
 * in meets the appliance's inbound NSGs, what an appliance forwards its outbound ones). */
struct nsg_tuple {
	__u8 src[16];
	__u8 dst[16];
	__u8 binding_src[16];
	__u8 binding_dst[16];
	__u32 family;
	__u16 sport, dport;
	__u16 src_vnet, dst_vnet;
	__u8 proto;
	__u8 has_ports;
	__u8 pad[2];
};

static __always_inline __u32 nsg_proto_class(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP: return NSG_CLASS_TCP;
	case IPPROTO_UDP: return NSG_CLASS_UDP;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: return NSG_CLASS_ICMP;
	case IPPROTO_ESP: return NSG_CLASS_ESP;
	case IPPROTO_AH: return NSG_CLASS_AH;
	default: return NSG_CLASS_OTHER;
	}
}

/* BPF has no count-trailing-zeros instruction: de Bruijn multiplication instead. */
static const __u8 debruijn_positions[64] = {
	0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4,
	62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18, 12, 5,
	63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11,
	46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6,
};

static __always_inline __u32 lowest_bit(__u64 x)
{
	return debruijn_positions[(((x & -x) * 0x03f79d71b4cb0a89ULL) >> 58) & 63];
}

static __always_inline struct nsg_bitmap *nsg_address_vector(const struct nsg_tuple *t,
							     struct lpm_key *key, __u32 table,
							     __u32 side)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->prefixlen = LPM_SCOPE_BITS + (t->family == AF_INET ? 32 : 128);
	key->scope = table * 2 + side;
	key->family = t->family;
	__builtin_memcpy(key->addr, side ? t->dst : t->src, 16);
	return bpf_map_lookup_elem(&nsg_addresses, key);
}

static __always_inline struct nsg_bitmap *nsg_port_vector(const struct nsg_tuple *t,
							  struct nsg_port_key *key, __u32 table,
							  __u32 side)
{
	__u16 port = side ? t->dport : t->sport;
	__u32 *interval;

	key->prefixlen = NSG_PORT_KEY_BITS;
	key->scope = table * 2 + side;
	key->data[0] = t->has_ports;
	key->data[1] = t->has_ports ? port >> 8 : 0;
	key->data[2] = t->has_ports ? port & 0xff : 0;
	key->data[3] = 0;
	interval = bpf_map_lookup_elem(&nsg_ports, key);
	if (!interval)
		return NULL;
	return bpf_map_lookup_elem(&nsg_port_intervals, interval);
}

/* Judges the tuple by one NSG table. Returns 0 with the deciding rule in *out, or -1
 * when a vector is missing (a table the loader did not finish: deny, as DenyAll would).
 * A global function: the verifier checks it once, not once per caller. */
__noinline int nsg_table_classify(const struct nsg_tuple *t, __u32 table,
				  struct nsg_decision *out)
{
	struct nsg_bitmap *src, *dst, *sport, *dport, *proto;
	struct nsg_table *info;
	struct nsg_rule *rule;
	struct nsg_keys *keys;
	__u32 proto_index, slot, bit = NSG_MAX_RULES, zero = 0;
	__u64 candidates;
	int i;

	if (!t || !out)
		return -1;
	keys = bpf_map_lookup_elem(&nsg_scratch, &zero);
	if (!keys)
		return -1;
	info = bpf_map_lookup_elem(&nsg_tables, &table);
	if (!info)
		return -1;
	out->nsg_id = info->nsg_id;
	proto_index = table * NSG_PROTO_CLASSES + nsg_proto_class(t->proto);
	src = nsg_address_vector(t, &keys->address, table, 0);
	dst = nsg_address_vector(t, &keys->address, table, 1);
	sport = nsg_port_vector(t, &keys->port, table, 0);
	dport = nsg_port_vector(t, &keys->port, table, 1);
	proto = bpf_map_lookup_elem(&nsg_protocols, &proto_index);
	if (!src || !dst || !sport || !dport || !proto)
		return -1;

	candidates = src->summary & dst->summary & sport->summary & dport->summary &
		     proto->summary;
	for (i = 0; i < NSG_BITMAP_WORDS && candidates; i++) {
		__u32 w = lowest_bit(candidates) & (NSG_BITMAP_WORDS - 1);
		__u64 match = src->words[w] & dst->words[w] & sport->words[w] & dport->words[w] &
			      proto->words[w];

		if (match) {
			bit = w * 64 + lowest_bit(match);
			break;
		}
		candidates &= candidates - 1;
	}
	if (bit >= info->n_rules)
		return -1;
	slot = info->rule_base + bit;
	rule = bpf_map_lookup_elem(&nsg_rules, &slot);
	if (!rule)
		return -1;
	out->rule_id = rule->rule_id;
	out->priority = rule->priority;
	out->access = rule->access;
	return 0;
}

static __always_inline void nsg_count_rule(__u32 rule_id, __u64 hits, __u64 bytes)
{
	struct nsg_rule_counter *c;

	if (dry_run || rule_id == NSG_NONE)
		return;
	c = bpf_map_lookup_elem(&nsg_rule_counters, &rule_id);
	if (c) {
		c->hits += hits;
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline struct nsg_binding *nsg_binding_of(const __u8 *addr, __u32 family,
							  __u16 vnet)
{
	struct nsg_keys *keys;
	__u32 zero = 0;

	if (vnet == NSG_VNET_NONE)
		return NULL;
	keys = bpf_map_lookup_elem(&nsg_scratch, &zero);
	if (!keys)
		return NULL;
	__builtin_memset(&keys->address, 0, sizeof(keys->address));
	keys->address.prefixlen = LPM_SCOPE_BITS + (family == AF_INET ? 32 : 128);
	keys->address.scope = vnet;
	keys->address.family = family;
	__builtin_memcpy(keys->address.addr, addr, 16);
	return bpf_map_lookup_elem(&nsg_bindings, &keys->address);
}

/* Azure's platform addresses (the host's DNS/health probe address and the instance
 * metadata service) are not subject to NSGs. */
static __always_inline int nsg_exempt(const struct nsg_tuple *t)
{
	__u32 s, d;

	if (t->family != AF_INET)
		return 0;
	__builtin_memcpy(&s, t->src, 4);
	__builtin_memcpy(&d, t->dst, 4);
	return s == bpf_htonl(0xa83f8110) || d == bpf_htonl(0xa83f8110) ||
	       s == bpf_htonl(0xa9fea9fe) || d == bpf_htonl(0xa9fea9fe);
}

/* Runs one stage: pair is a binding's pair index + 1 (0: no NSG there). Returns 1 when
 * the stage denies. */
static __always_inline int nsg_stage_run(const struct nsg_tuple *t, __u32 pair,
					 __u32 direction, struct nsg_decision *out)
{
	out->nsg_id = NSG_NONE;
	out->rule_id = NSG_NONE;
	if (!pair)
		return 0;
	if (nsg_table_classify(t, (pair - 1) * 2 + direction, out)) {
		out->access = 1;
		return 1;
	}
	return out->access != 0;
}

struct nsg_result {
	struct nsg_decision stages[NSG_STAGES];
	__u32 outcome; /* enum nsg_flow_outcome */
	__u32 pad;
};

/* Azure's order: outbound the source NIC's NSG then its subnet's, inbound the
 * destination subnet's then its NIC's; every NSG on the way must allow. Returns
 * DROP_NONE or the direction's deny reason; stages holds every stage's decision. */
static __always_inline int nsg_classify(const struct nsg_tuple *t, struct nsg_result *res)
{
	struct nsg_decision *stages = res->stages;
	struct nsg_binding *b;
	__u32 src_nic = 0, src_subnet = 0, dst_subnet = 0, dst_nic = 0;

	b = nsg_binding_of(t->binding_src, t->family, t->src_vnet);
	if (b) {
		src_nic = b->nic_pair;
		src_subnet = b->subnet_pair;
	}
	b = nsg_binding_of(t->binding_dst, t->family, t->dst_vnet);
	if (b) {
		dst_subnet = b->subnet_pair;
		dst_nic = b->nic_pair;
	}
	for (int i = 0; i < NSG_STAGES; i++) {
		stages[i].nsg_id = NSG_NONE;
		stages[i].rule_id = NSG_NONE;
	}
	if (nsg_stage_run(t, src_nic, 1, &stages[NSG_STAGE_SOURCE_NIC]) ||
	    nsg_stage_run(t, src_subnet, 1, &stages[NSG_STAGE_SOURCE_SUBNET]))
		return DROP_NSG_DENIED_OUTBOUND;
	if (nsg_stage_run(t, dst_subnet, 0, &stages[NSG_STAGE_DESTINATION_SUBNET]) ||
	    nsg_stage_run(t, dst_nic, 0, &stages[NSG_STAGE_DESTINATION_NIC]))
		return DROP_NSG_DENIED_INBOUND;
	return DROP_NONE;
}

#endif

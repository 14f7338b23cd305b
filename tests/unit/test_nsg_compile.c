/* The NSG compiler (user/compile/nsg.c, nsg_plan_build) against the reference evaluator
 * (tests/nsg_reference.h), with no kernel: the compiled plan is walked here the way
 * bpf/nsg.h walks its maps (longest-prefix lookups of the address and port tries, the
 * port interval's vector, the protocol's, an AND, the lowest bit), and each stage's
 * deciding rule must be the very rule the reference picks. Hand-written rule sets name
 * what each case is about; random ones (priorities, tags, ASGs, service tags, port lists
 * and ranges, protocols) cover the rest. NSG_SEED replays a run; NSG_RULE_SETS and
 * NSG_PACKETS size it. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "config/config.h"
#include "compile/nsg.h"
#include "nsg_reference.h"
#include "nsg_random.h"

/* ---- the plan, walked as bpf/nsg.h walks the maps ------------------------------------ */

/* Whether an LPM entry (its first prefixlen bits of data) holds the query's data. */
static bool lpm_entry_holds(const uint8_t *entry, uint32_t prefixlen, const uint8_t *query)
{
	for (uint32_t bit = 0; bit < prefixlen; bit++) {
		uint8_t mask = 0x80 >> (bit % 8);

		if ((entry[bit / 8] & mask) != (query[bit / 8] & mask))
			return false;
	}
	return true;
}

static const uint8_t *lpm_data(const struct lpm_key *k) { return (const uint8_t *)&k->scope; }

static struct lpm_key address_query(uint32_t scope, int family, const uint8_t *addr)
{
	struct lpm_key k = { .prefixlen = LPM_SCOPE_BITS + (family == AF_INET ? 32 : 128),
			     .scope = scope, .family = family };

	memcpy(k.addr, addr, 16);
	return k;
}

static const struct nsg_bitmap *plan_address_vector(const struct nsg_plan *plan, uint32_t table,
						    int side, const struct reference_packet *p)
{
	struct lpm_key q = address_query(table * 2 + side, p->family, side ? p->dst : p->src);
	const struct nsg_plan_address *best = NULL;

	for (size_t i = 0; i < plan->n_addresses; i++) {
		const struct nsg_plan_address *e = &plan->addresses[i];

		if (lpm_entry_holds(lpm_data(&e->key), e->key.prefixlen, lpm_data(&q)) &&
		    (!best || e->key.prefixlen > best->key.prefixlen))
			best = e;
	}
	return best ? &best->bits : NULL;
}

static const struct nsg_bitmap *plan_port_vector(const struct nsg_plan *plan, uint32_t table,
						 int side, const struct reference_packet *p)
{
	uint16_t port = side ? p->dport : p->sport;
	struct nsg_port_key q = { .prefixlen = NSG_PORT_KEY_BITS, .scope = table * 2 + side };
	const struct nsg_plan_port *best = NULL;

	q.data[0] = p->has_ports;
	q.data[1] = p->has_ports ? port >> 8 : 0;
	q.data[2] = p->has_ports ? port & 0xff : 0;
	for (size_t i = 0; i < plan->n_ports; i++) {
		const struct nsg_plan_port *e = &plan->ports[i];

		if (lpm_entry_holds((const uint8_t *)&e->key.scope, e->key.prefixlen,
				    (const uint8_t *)&q.scope) &&
		    (!best || e->key.prefixlen > best->key.prefixlen))
			best = e;
	}
	if (!best || best->interval >= plan->n_intervals)
		return NULL;
	return &plan->intervals[best->interval];
}

static unsigned proto_class(uint8_t proto)
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

/* nsg_table_classify: the deciding rule of one table, NULL when a vector is missing or no
 * bit is set in all five (the datapath denies then). */
static const struct nsg_plan_rule *plan_table_classify(const struct nsg_plan *plan,
						       uint32_t table,
						       const struct reference_packet *p)
{
	const struct nsg_plan_table *t;
	const struct nsg_bitmap *v[5];

	if (table >= plan->n_tables)
		return NULL;
	t = &plan->tables[table];
	v[0] = plan_address_vector(plan, table, 0, p);
	v[1] = plan_address_vector(plan, table, 1, p);
	v[2] = plan_port_vector(plan, table, 0, p);
	v[3] = plan_port_vector(plan, table, 1, p);
	v[4] = &t->protocols[proto_class(p->proto)];
	for (int i = 0; i < 5; i++)
		if (!v[i])
			return NULL;
	for (unsigned w = 0; w < NSG_BITMAP_WORDS; w++) {
		uint64_t match = ~0ULL;

		if (!(v[0]->summary & v[1]->summary & v[2]->summary & v[3]->summary &
		      v[4]->summary & (1ULL << w)))
			continue;
		for (int i = 0; i < 5; i++)
			match &= v[i]->words[w];
		if (match) {
			uint32_t bit = w * 64 + (uint32_t)__builtin_ctzll(match);

			return bit < t->info.n_rules ? &plan->rules[t->info.rule_base + bit] : NULL;
		}
	}
	return NULL;
}

static const struct nsg_binding *plan_binding(const struct nsg_plan *plan, uint32_t vnet,
					      const struct reference_packet *p, const uint8_t *addr)
{
	struct lpm_key q = address_query(vnet, p->family, addr);
	const struct nsg_plan_binding *best = NULL;

	for (size_t i = 0; i < plan->n_bindings; i++) {
		const struct nsg_plan_binding *b = &plan->bindings[i];

		if (lpm_entry_holds(lpm_data(&b->key), b->key.prefixlen, lpm_data(&q)) &&
		    (!best || b->key.prefixlen > best->key.prefixlen))
			best = b;
	}
	return best ? &best->binding : NULL;
}

struct plan_verdict {
	bool allowed;
	int deciding_stage;
	bool ran[REFERENCE_STAGES];
	const struct config_security_rule *rules[REFERENCE_STAGES];
};

/* nsg_classify: outbound the source NIC's then subnet's table, inbound the destination
 * subnet's then NIC's; the first that denies ends it. */
static struct plan_verdict plan_evaluate(const struct nsg_plan *plan, uint32_t src_vnet,
					 uint32_t dst_vnet, const struct reference_packet *p)
{
	const struct nsg_binding *src = plan_binding(plan, src_vnet, p, p->src);
	const struct nsg_binding *dst = plan_binding(plan, dst_vnet, p, p->dst);
	uint32_t pairs[REFERENCE_STAGES] = { src ? src->nic_pair : 0, src ? src->subnet_pair : 0,
					     dst ? dst->subnet_pair : 0, dst ? dst->nic_pair : 0 };
	struct plan_verdict v = { .allowed = true, .deciding_stage = -1 };

	for (int s = 0; s < REFERENCE_STAGES; s++) {
		const struct nsg_plan_rule *rule;

		if (!pairs[s])
			continue;
		v.ran[s] = true;
		rule = plan_table_classify(plan, (pairs[s] - 1) * 2 +
						 (s < REFERENCE_DESTINATION_SUBNET ? 1 : 0), p);
		v.rules[s] = rule ? rule->rule : NULL;
		if (!rule || rule->slot.access) {
			v.allowed = false;
			v.deciding_stage = s;
			break;
		}
	}
	return v;
}

/* ---- the world: the hub and spokes of tests/packet/nsg_harness.h --------------------- */

#define WEB "randweb"
#define SUBNET "randsubnet"
#define NIC NSG_RANDOM_NIC

static char tags_path[96];

/* hub/web has NSG web, spoke1/default NSG subnet, vm-nic (10.11.1.4, fd00:11:0:1::4 in
 * spoke1, in asg-app) NSG nic; db-nic is in asg-db, hub-nic (10.10.1.4) in asg-hub. */
static char *world_config(const char *nsgs)
{
	char *out = NULL;

	if (asprintf(&out,
"{\"gateway\": {\"name\": \"t\", \"interfaces\": [\n"
"  {\"name\": \"to-hub\", \"virtualNetwork\": \"hub\"},\n"
"  {\"name\": \"to-spoke1\", \"virtualNetwork\": \"spoke1\"},\n"
"  {\"name\": \"to-spoke2\", \"virtualNetwork\": \"spoke2\"},\n"
"  {\"name\": \"uplink0\", \"role\": \"uplink\"}],\n"
" \"virtualNetworks\": [{\"name\": \"hub\", \"vip\": \"203.0.113.10\"},\n"
"  {\"name\": \"spoke1\", \"vip\": \"203.0.113.11\"}, {\"name\": \"spoke2\", \"vip\": \"203.0.113.12\"}],\n"
" \"serviceTagsFile\": \"%s\"},\n"
" \"resources\": [\n"
"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"hub\", \"properties\": {\n"
"   \"addressSpace\": {\"addressPrefixes\": [\"10.10.0.0/16\", \"fd00:10::/48\"]},\n"
"   \"subnets\": [\n"
"    {\"name\": \"web\", \"properties\": {\"addressPrefixes\": [\"10.10.1.0/24\", \"fd00:10:0:1::/64\"], \"networkSecurityGroup\": {\"id\": \"" WEB "\"}}},\n"
"    {\"name\": \"db\", \"properties\": {\"addressPrefix\": \"10.10.2.0/24\"}},\n"
"    {\"name\": \"plain\", \"properties\": {\"addressPrefix\": \"10.10.3.0/24\"}}],\n"
"   \"virtualNetworkPeerings\": [\n"
"    {\"name\": \"hub-to-spoke1\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"spoke1\"}, \"allowVirtualNetworkAccess\": true}},\n"
"    {\"name\": \"hub-to-spoke2\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"spoke2\"}, \"allowVirtualNetworkAccess\": true}}]}},\n"
"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"spoke1\", \"properties\": {\n"
"   \"addressSpace\": {\"addressPrefixes\": [\"10.11.0.0/16\", \"fd00:11::/48\"]},\n"
"   \"subnets\": [{\"name\": \"default\", \"properties\": {\"addressPrefixes\": [\"10.11.1.0/24\", \"fd00:11:0:1::/64\"], \"networkSecurityGroup\": {\"id\": \"" SUBNET "\"}}}],\n"
"   \"virtualNetworkPeerings\": [{\"name\": \"spoke1-to-hub\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"hub\"}, \"allowVirtualNetworkAccess\": true}}]}},\n"
"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"spoke2\", \"properties\": {\n"
"   \"addressSpace\": {\"addressPrefixes\": [\"10.12.0.0/16\", \"fd00:12::/48\"]},\n"
"   \"subnets\": [{\"name\": \"default\", \"properties\": {\"addressPrefixes\": [\"10.12.1.0/24\", \"fd00:12:0:1::/64\"]}}],\n"
"   \"virtualNetworkPeerings\": [{\"name\": \"spoke2-to-hub\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"hub\"}, \"allowVirtualNetworkAccess\": true}}]}},\n"
"%s,\n"
NSG_RANDOM_NICS "\n"
" ]}\n", tags_path, nsgs) < 0)
		return NULL;
	return out;
}

struct world {
	struct nsg_world view; /* the reference's */
	struct nsg_plan plan;
	uint32_t hub, spoke1;
};

/* Loads the world with the given NSG resources and compiles it; 0 or the loader's error. */
static int world_load(struct world *w, const char *nsgs)
{
	char *text = world_config(nsgs);
	int err;

	memset(w, 0, sizeof(*w));
	err = text ? config_load_string(text, "nsg-compile.json", stderr, &w->view.cfg) : -ENOMEM;
	free(text);
	if (err)
		return err;
	nsg_world_init(&w->view);
	w->view.web = nsg_named(w->view.cfg, WEB);
	w->view.subnet = nsg_named(w->view.cfg, SUBNET);
	w->view.nic = nsg_named(w->view.cfg, NIC);
	w->hub = (uint32_t)config_find_vnet(w->view.cfg, "hub");
	w->spoke1 = (uint32_t)config_find_vnet(w->view.cfg, "spoke1");
	return nsg_plan_build(w->view.cfg, &w->plan);
}

static void world_free(struct world *w)
{
	nsg_plan_free(&w->plan);
	config_free(w->view.cfg);
}

static struct reference_verdict reference_of(const struct world *w, const struct reference_packet *p)
{
	return nsg_world_reference(&w->view, p);
}

static uint32_t vnet_of(const struct world *w, const struct reference_packet *p, const uint8_t *a)
{
	return p->family == AF_INET ? (a[1] == 10 ? w->hub : w->spoke1)
				    : (a[3] == 0x10 ? w->hub : w->spoke1);
}

static struct reference_packet packet(const char *src, const char *dst, uint8_t proto,
				      uint16_t sport, uint16_t dport)
{
	struct reference_packet p = { .family = strchr(src, ':') ? AF_INET6 : AF_INET,
				      .proto = proto, .sport = sport, .dport = dport };

	inet_pton(p.family, src, p.src);
	inet_pton(p.family, dst, p.dst);
	p.has_ports = proto == IPPROTO_TCP || proto == IPPROTO_UDP;
	if (!p.has_ports)
		p.sport = p.dport = 0;
	return p;
}

static const char *rule_name(const struct config_security_rule *r)
{
	return r ? r->name : "(none)";
}

/* Whether the plan decides p as the reference does, stage by stage, to the rule. */
static bool agrees(const struct world *w, const struct reference_packet *p, char *why, size_t size)
{
	struct reference_verdict ref = reference_of(w, p);
	struct plan_verdict got = plan_evaluate(&w->plan, vnet_of(w, p, p->src),
						vnet_of(w, p, p->dst), p);

	if (got.allowed != ref.allowed || got.deciding_stage != ref.deciding_stage) {
		snprintf(why, size, "plan %s (stage %d), reference %s (stage %d)",
			 got.allowed ? "allows" : "denies", got.deciding_stage,
			 ref.allowed ? "allows" : "denies", ref.deciding_stage);
		return false;
	}
	for (int s = 0; s < REFERENCE_STAGES; s++)
		if (got.rules[s] != ref.rules[s]) {
			snprintf(why, size, "stage %d: plan's rule %s, reference's %s", s,
				 rule_name(got.rules[s]), rule_name(ref.rules[s]));
			return false;
		}
	return true;
}

static char *packet_text(const struct reference_packet *p, char *buf, size_t size)
{
	char s[64], d[64];

	inet_ntop(p->family, p->src, s, sizeof(s));
	inet_ntop(p->family, p->dst, d, sizeof(d));
	snprintf(buf, size, "%s:%u -> %s:%u proto %u", s, p->sport, d, p->dport, p->proto);
	return buf;
}

/* ---- hand-written rule sets ---------------------------------------------------------- */

struct rule_spec {
	int priority;
	const char *direction, *access, *protocol, *src, *sport, *dst, *dport;
};

/* NSG resources: web with the given rules, subnet and nic with none (Azure's defaults). */
static char *nsgs_with_web_rules(const struct rule_spec *rules, size_t n)
{
	static char out[16384];
	size_t at = 0;

	at += snprintf(out + at, sizeof(out) - at, "{\"type\": \"Microsoft.Network/networkSecurityGroups\","
		       " \"name\": \"" WEB "\", \"properties\": {\"securityRules\": [");
	for (size_t i = 0; i < n; i++) {
		char name[16], *rule;

		snprintf(name, sizeof(name), "r%zu", i);
		rule = nsg_rule_json(name, rules[i].priority, rules[i].direction, rules[i].access,
				     rules[i].protocol, rules[i].src, rules[i].sport, rules[i].dst,
				     rules[i].dport);
		at += snprintf(out + at, sizeof(out) - at, "%s%s", i ? ", " : "", rule);
		free(rule);
	}
	snprintf(out + at, sizeof(out) - at, "]}},\n"
		 "{\"type\": \"Microsoft.Network/networkSecurityGroups\", \"name\": \"" SUBNET "\"},\n"
		 "{\"type\": \"Microsoft.Network/networkSecurityGroups\", \"name\": \"" NIC "\"}");
	return out;
}

struct expectation {
	struct reference_packet p;
	bool allowed;
	const char *rule; /* the name of the rule the web NSG decides by, at its stage */
};

/* The web NSG decides at the destination subnet stage for traffic into hub/web, at the
 * source subnet stage for traffic out of it. */
static void check_expectations(const struct rule_spec *rules, size_t n_rules,
			       const struct expectation *cases, size_t n_cases)
{
	struct world w;
	char why[256], text[160];

	assert_int_equal(world_load(&w, nsgs_with_web_rules(rules, n_rules)), 0);
	for (size_t i = 0; i < n_cases; i++) {
		const struct reference_packet *p = &cases[i].p;
		struct plan_verdict got = plan_evaluate(&w.plan, vnet_of(&w, p, p->src),
							vnet_of(&w, p, p->dst), p);
		int stage = reference_in_list(p->dst, p->family, w.view.web_prefixes, 2)
				    ? REFERENCE_DESTINATION_SUBNET : REFERENCE_SOURCE_SUBNET;

		if (!agrees(&w, p, why, sizeof(why)))
			fail_msg("%s: %s", packet_text(p, text, sizeof(text)), why);
		if (got.allowed != cases[i].allowed ||
		    strcmp(rule_name(got.rules[stage]), cases[i].rule))
			fail_msg("%s: %s by %s, expected %s by %s", packet_text(p, text, sizeof(text)),
				 got.allowed ? "allowed" : "denied", rule_name(got.rules[stage]),
				 cases[i].allowed ? "allowed" : "denied", cases[i].rule);
	}
	world_free(&w);
}

#define N(a) (sizeof(a) / sizeof(*(a)))

static void lower_priority_number_decides_whatever_the_order_written(void **state)
{
	static const struct rule_spec rules[] = {
		{ 300, "Inbound", "Allow", "Tcp", "*", "*", "*", "22" },
		{ 200, "Inbound", "Deny", "Tcp", "10.11.0.0/16", "*", "*", "22" },
		{ 100, "Inbound", "Allow", "Tcp", "10.11.1.4", "*", "*", "*" },
	};
	const struct expectation cases[] = {
		{ packet("10.11.1.4", "10.10.1.9", IPPROTO_TCP, 5000, 22), true, "r2" },
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_TCP, 5000, 22), false, "r1" },
		{ packet("10.10.3.7", "10.10.1.9", IPPROTO_TCP, 5000, 22), true, "r0" },
		{ packet("10.10.3.7", "10.10.1.9", IPPROTO_TCP, 5000, 23), true, "AllowVnetInBound" },
	};

	check_expectations(rules, N(rules), cases, N(cases));
}

static void port_lists_and_ranges_match_their_edges_only(void **state)
{
	static const struct rule_spec rules[] = {
		{ 100, "Inbound", "Deny", "*", "*", "*", "*", "[\"80\", \"1000-2000\", \"65535\"]" },
		{ 110, "Inbound", "Deny", "Udp", "*", "0-1023", "*", "*" },
	};
	const struct expectation cases[] = {
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_TCP, 5000, 80), false, "r0" },
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_TCP, 5000, 79), true, "AllowVnetInBound" },
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_TCP, 5000, 81), true, "AllowVnetInBound" },
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_UDP, 5000, 999), true, "AllowVnetInBound" },
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_UDP, 5000, 1000), false, "r0" },
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_UDP, 5000, 2000), false, "r0" },
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_UDP, 5000, 2001), true, "AllowVnetInBound" },
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_TCP, 5000, 65535), false, "r0" },
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_UDP, 1023, 53), false, "r1" },
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_UDP, 1024, 53), true, "AllowVnetInBound" },
		/* without ports only rules of every port match: r0 and r1 do not */
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_ICMP, 0, 0), true, "AllowVnetInBound" },
	};

	check_expectations(rules, N(rules), cases, N(cases));
}

static void protocol_any_holds_everything_and_icmp_both_families(void **state)
{
	static const struct rule_spec rules[] = {
		{ 100, "Inbound", "Deny", "Icmp", "*", "*", "*", "*" },
		{ 200, "Inbound", "Allow", "*", "*", "*", "*", "*" },
		{ 300, "Outbound", "Deny", "Esp", "*", "*", "*", "*" },
	};
	const struct expectation cases[] = {
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_ICMP, 0, 0), false, "r0" },
		{ packet("fd00:11:0:1::7", "fd00:10:0:1::9", IPPROTO_ICMPV6, 0, 0), false, "r0" },
		{ packet("10.11.1.7", "10.10.1.9", IPPROTO_TCP, 1, 2), true, "r1" },
		{ packet("10.11.1.7", "10.10.1.9", 47 /* GRE */, 0, 0), true, "r1" },
		{ packet("10.10.1.9", "10.11.1.7", IPPROTO_ESP, 0, 0), false, "r2" },
		{ packet("10.10.1.9", "10.11.1.7", IPPROTO_AH, 0, 0), true, "AllowVnetOutBound" },
	};

	check_expectations(rules, N(rules), cases, N(cases));
}

static void tags_and_groups_stand_for_their_addresses(void **state)
{
	static const struct rule_spec rules[] = {
		{ 100, "Inbound", "Deny", "*", "@asg-app", "*", "*", "*" },
		{ 110, "Inbound", "Allow", "*", "Sql.WestEurope", "*", "*", "*" },
		{ 120, "Inbound", "Deny", "*", "VirtualNetwork", "*", "AzureMonitor", "*" },
		{ 130, "Outbound", "Deny", "*", "*", "*", "Internet", "*" },
		{ 140, "Outbound", "Deny", "*", "@asg-hub", "*", "Storage", "*" },
	};
	const struct expectation cases[] = {
		/* vm-nic is in asg-app (and in Sql.WestEurope's 10.11.1.0/29) */
		{ packet("10.11.1.4", "10.10.1.9", IPPROTO_TCP, 1, 2), false, "r0" },
		{ packet("fd00:11:0:1::4", "fd00:10:0:1::9", IPPROTO_TCP, 1, 2), false, "r0" },
		{ packet("10.11.1.5", "10.10.1.9", IPPROTO_TCP, 1, 2), true, "r1" },
		{ packet("10.11.1.9", "10.10.1.200", IPPROTO_TCP, 1, 2), false, "r2" },
		{ packet("10.11.1.9", "10.10.1.9", IPPROTO_TCP, 1, 2), true, "AllowVnetInBound" },
		{ packet("10.10.1.4", "10.10.2.9", IPPROTO_UDP, 1, 2), false, "r4" },
		{ packet("10.10.1.5", "10.10.2.9", IPPROTO_UDP, 1, 2), true, "AllowVnetOutBound" },
		/* 10.12.x is spoke2's, peered: VirtualNetwork, not Internet */
		{ packet("10.10.1.5", "10.11.9.9", IPPROTO_UDP, 1, 2), true, "AllowVnetOutBound" },
	};

	check_expectations(rules, N(rules), cases, N(cases));
}

/* ---- random rule sets ---------------------------------------------------------------- */

static const char *random_nsgs(void)
{
	static char out[131072];
	size_t at = 0;

	at += random_nsg(WEB, out + at, sizeof(out) - at);
	at += snprintf(out + at, sizeof(out) - at, ",\n");
	at += random_nsg(SUBNET, out + at, sizeof(out) - at);
	at += snprintf(out + at, sizeof(out) - at, ",\n");
	random_nsg(NIC, out + at, sizeof(out) - at);
	return out;
}

static struct reference_packet random_packet(void)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDP,
					  IPPROTO_ICMP, IPPROTO_ESP, IPPROTO_AH, 47 };
	bool v6 = below(10) < 3, from_hub = below(2), to_hub = below(10) < (from_hub ? 3 : 7);
	const char *src, *dst;
	uint8_t proto = protos[below(N(protos))];

	do {
		src = from_hub ? (v6 ? PICK(hub6) : PICK(hub4)) : (v6 ? PICK(spoke6) : PICK(spoke4));
		dst = to_hub ? (v6 ? PICK(hub6) : PICK(hub4)) : (v6 ? PICK(spoke6) : PICK(spoke4));
	} while (!strcmp(src, dst));
	if (proto == IPPROTO_ICMP && v6)
		proto = IPPROTO_ICMPV6;
	return packet(src, dst, proto, random_port(), random_port());
}

static void compiled_random_rule_sets_decide_as_the_reference(void **state)
{
	long sets = getenv("NSG_RULE_SETS") ? strtol(getenv("NSG_RULE_SETS"), NULL, 10) : 400;
	long packets = getenv("NSG_PACKETS") ? strtol(getenv("NSG_PACKETS"), NULL, 10) : 300;
	long compared = 0, mismatches = 0, denied = 0;

	for (long set = 0; set < sets; set++) {
		struct world w;

		assert_int_equal(world_load(&w, random_nsgs()), 0);
		for (long i = 0; i < packets; i++) {
			struct reference_packet p = random_packet();
			char why[256], text[160];

			compared++;
			denied += !reference_of(&w, &p).allowed;
			if (!agrees(&w, &p, why, sizeof(why))) {
				if (mismatches++ < 10)
					print_message("mismatch: set %ld %s: %s\n", set,
						      packet_text(&p, text, sizeof(text)), why);
			}
		}
		world_free(&w);
	}
	print_message("%ld rule sets, %ld packets (%ld denied): %ld mismatches\n", sets, compared,
		      denied, mismatches);
	assert_int_equal(mismatches, 0);
	/* the draw must exercise both outcomes */
	assert_true(denied > compared / 20 && denied < compared - compared / 20);
}

/* The plan's ids: every table and rule gets one, the same on the next generation, and a
 * rule new to the document is among the counters the writer zeroes. */
static void ids_are_stable_across_generations_and_new_rules_fresh(void **state)
{
	struct nsg_ids ids;
	struct world w;

	assert_int_equal(nsg_ids_init(&ids, 0), 0);
	assert_int_equal(world_load(&w, random_nsgs()), 0);
	assert_int_equal(nsg_plan_assign_ids(&w.plan, w.view.cfg, &ids, 1), 0);
	assert_int_equal(w.plan.n_fresh_rule_ids, json_object_size(json_object_get(ids.doc, "rules")));
	for (size_t r = 0; r < w.plan.n_rules; r++)
		assert_int_not_equal(w.plan.rules[r].slot.rule_id, NSG_NONE);
	for (size_t t = 0; t < w.plan.n_tables; t++)
		assert_int_not_equal(w.plan.tables[t].info.nsg_id, NSG_NONE);
	{
		struct nsg_plan again;
		uint32_t first = w.plan.rules[0].slot.rule_id;

		assert_int_equal(nsg_plan_build(w.view.cfg, &again), 0);
		assert_int_equal(nsg_plan_assign_ids(&again, w.view.cfg, &ids, 2), 0);
		assert_int_equal(again.n_fresh_rule_ids, 0);
		assert_int_equal(again.rules[0].slot.rule_id, first);
		nsg_plan_free(&again);
	}
	world_free(&w);
	nsg_ids_free(&ids);
}

static int setup(void **state)
{
	const char *seed = getenv("NSG_SEED");
	FILE *f;

	rng_state = seed ? strtoull(seed, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
	if (!rng_state)
		rng_state = 1;
	print_message("nsg compile seed %llu (replay with NSG_SEED)\n", (unsigned long long)rng_state);
	snprintf(tags_path, sizeof(tags_path), "/tmp/vnet-xdp-nsg-compile-%d.tags.json", (int)getpid());
	f = fopen(tags_path, "w");
	if (!f)
		return -1;
	fputs(NSG_SERVICE_TAGS, f);
	return fclose(f);
}

static int teardown(void **state)
{
	unlink(tags_path);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lower_priority_number_decides_whatever_the_order_written),
		cmocka_unit_test(port_lists_and_ranges_match_their_edges_only),
		cmocka_unit_test(protocol_any_holds_everything_and_icmp_both_families),
		cmocka_unit_test(tags_and_groups_stand_for_their_addresses),
		cmocka_unit_test(compiled_random_rule_sets_decide_as_the_reference),
		cmocka_unit_test(ids_are_stable_across_generations_and_new_rules_fresh),
	};

	return cmocka_run_group_tests_name("nsg compile", tests, setup, teardown);
}

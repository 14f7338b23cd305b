/* Random NSG rule sets and the world they are judged in, shared by the NSG compiler's
 * unit test (tests/unit/test_nsg_compile.c) and the differential packet test
 * (tests/packet/test_nsg_differential.c): the rules' JSON, the pools a rule's sides are
 * drawn from (prefixes, tags, service tags, ASGs, ports, protocols), the NICs and ASGs of
 * the world, and the reference's view of it (tests/nsg_reference.h).
 *
 * The world is tests/packet/nsg_harness.h's hub and spokes: hub 10.10.0.0/16 fd00:10::/48
 * (subnet web 10.10.1.0/24 + fd00:10:0:1::/64), spoke1 10.11.0.0/16 fd00:11::/48 (subnet
 * default 10.11.1.0/24 + fd00:11:0:1::/64), spoke2 10.12.0.0/16, hub peered with both. */
#ifndef TESTS_NSG_RANDOM_H
#define TESTS_NSG_RANDOM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/config.h"
#include "nsg_reference.h"

/* One side of a rule: a value starting with '[' is a JSON list and goes to the plural key
 * (sourceAddressPrefixes, destinationPortRanges, ...); "@a,b" names application security
 * groups a and b (sourceApplicationSecurityGroups). */
static inline void nsg_side_json(char *out, size_t size, const char *side, const char *key,
				 const char *v)
{
	if (v[0] == '[') {
		snprintf(out, size, "\"%s%s%s\": %s", side, key, strcmp(key, "PortRange") ? "es" : "s",
			 v);
	} else if (v[0] == '@') {
		size_t at = (size_t)snprintf(out, size, "\"%sApplicationSecurityGroups\": [", side);
		char names[256], *save = NULL;

		snprintf(names, sizeof(names), "%s", v + 1);
		for (char *name = strtok_r(names, ",", &save); name && at < size;
		     name = strtok_r(NULL, ",", &save))
			at += (size_t)snprintf(out + at, size - at, "%s{\"id\": \"%s\"}",
					       out[at - 1] == '[' ? "" : ", ", name);
		if (at < size)
			snprintf(out + at, size - at, "]");
	} else {
		snprintf(out, size, "\"%s%s\": \"%s\"", side, key, v);
	}
}

/* One securityRules entry; sides as nsg_side_json takes them. */
static inline char *nsg_rule_json(const char *name, int priority, const char *direction,
				  const char *access, const char *protocol, const char *src,
				  const char *sport, const char *dst, const char *dport)
{
	char src_json[512], sport_json[256], dst_json[512], dport_json[256], *out = NULL;

	nsg_side_json(src_json, sizeof(src_json), "source", "AddressPrefix", src);
	nsg_side_json(sport_json, sizeof(sport_json), "source", "PortRange", sport);
	nsg_side_json(dst_json, sizeof(dst_json), "destination", "AddressPrefix", dst);
	nsg_side_json(dport_json, sizeof(dport_json), "destination", "PortRange", dport);
	if (asprintf(&out, "{\"name\": \"%s\", \"properties\": {\"priority\": %d, \"direction\": "
		     "\"%s\", \"access\": \"%s\", \"protocol\": \"%s\", %s, %s, %s, %s}}", name,
		     priority, direction, access, protocol, src_json, sport_json, dst_json,
		     dport_json) < 0)
		return NULL;
	return out;
}

/* The service tag file the config names (gateway.serviceTagsFile, relative to the config,
 * in Azure's format): tags over the test VNets' addresses, so that rules naming them
 * decide real packets. */
#define NSG_SERVICE_TAGS \
"{\"changeNumber\": 1, \"cloud\": \"Public\", \"values\": [\n" \
" {\"name\": \"Storage\", \"id\": \"Storage\", \"properties\": {\"addressPrefixes\": [\"10.10.2.0/24\", \"fd00:10:0:2::/64\"]}},\n" \
" {\"name\": \"Sql.WestEurope\", \"id\": \"Sql.WestEurope\", \"properties\": {\"region\": \"westeurope\", \"addressPrefixes\": [\"10.11.1.0/29\", \"10.10.3.128/25\", \"fd00:11:0:1::/124\"]}},\n" \
" {\"name\": \"AzureMonitor\", \"id\": \"AzureMonitor\", \"properties\": {\"addressPrefixes\": [\"10.10.1.128/25\", \"192.168.1.0/24\"]}}]}\n"


static uint64_t rng_state;

static inline uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static inline uint32_t below(uint32_t n) { return rnd() % n; }
static inline const char *pick(const char *const *list, size_t n) { return list[below(n)]; }
#define PICK(list) pick(list, sizeof(list) / sizeof(*list))

static const char *const address_pool[] = {
	"*", "VirtualNetwork", "Internet", "AzureLoadBalancer", "Storage", "Sql.WestEurope",
	"AzureMonitor",
	"10.10.0.0/16", "10.10.1.0/24", "10.10.1.0/25", "10.10.1.128/25", "10.10.1.4",
	"10.10.1.5/32", "10.10.2.0/23", "10.10.0.0/17", "10.11.0.0/16", "10.11.1.0/24",
	"10.11.1.4", "10.11.1.0/30", "10.11.1.8/29", "10.0.0.0/8", "0.0.0.0/0", "10.12.0.0/16",
	"192.168.1.0/24", "fd00:10::/48", "fd00:10:0:1::/64", "fd00:11:0:1::4", "fd00::/8",
	"::/0", "fd00:11::/48", "fd00:11:0:1::/120", "fd00:10:0:1::5",
};
/* Application security groups (NSG_RANDOM_NICS): a side names one or several of
 * one VNet. */
static const char *const asg_pool[] = {
	"@asg-app", "@asg-db", "@asg-app,asg-db", "@asg-empty", "@asg-hub", "@asg-db,asg-empty",
};
static const char *const port_pool[] = {
	"*", "22", "80", "80-81", "1000-2000", "1500", "2000-65535", "0-999", "443", "3000",
	"65535", "0", "1-65535", "53", "1000", "2001-2999",
};
static const char *const protocol_pool[] = { "*", "*", "Tcp", "Tcp", "Udp", "Udp", "Icmp", "Esp", "Ah" };

/* One side's value: "*" often (so that rules match often enough to matter), a single
 * item, or a JSON list of one to three. */
static inline void side_value(const char *const *pool, size_t n, char *buf, size_t size)
{
	if (!below(3)) {
		snprintf(buf, size, "*");
		return;
	}
	if (below(4)) {
		snprintf(buf, size, "%s", pool[below(n)]);
		return;
	}
	size_t count = 1 + below(3), at = 0;

	at += snprintf(buf + at, size - at, "[");
	for (size_t i = 0; i < count; i++)
		at += snprintf(buf + at, size - at, "%s\"%s\"", i ? ", " : "", pool[below(n)]);
	snprintf(buf + at, size - at, "]");
}

static inline void address_side(char *buf, size_t size)
{
	if (!below(6))
		snprintf(buf, size, "%s", PICK(asg_pool));
	else
		side_value(address_pool, sizeof(address_pool) / sizeof(*address_pool), buf, size);
}

/* A random NSG resource: up to 12 rules per direction, unique priorities. */
static inline size_t random_nsg(const char *name, char *out, size_t size)
{
	size_t at = 0;
	int n = 0;

	at += snprintf(out + at, size - at, "{\"type\": \"Microsoft.Network/networkSecurityGroups\","
		       " \"name\": \"%s\", \"properties\": {\"securityRules\": [", name);
	for (int direction = 0; direction < 2; direction++) {
		int count = (int)below(13), used[13];

		for (int i = 0; i < count; i++) {
			char src[160], dst[160], sport[80], dport[80], rule_name[16], *rule;
			int priority;
			bool unique;

			do {
				priority = 100 + (int)below(3997);
				unique = true;
				for (int j = 0; j < i; j++)
					unique &= used[j] != priority;
			} while (!unique);
			used[i] = priority;
			address_side(src, sizeof(src));
			address_side(dst, sizeof(dst));
			/* Azure refuses ASGs of two VNets in one rule (asg-hub is the hub's) */
			if (src[0] == '@' && dst[0] == '@' &&
			    !strstr(src, "asg-hub") != !strstr(dst, "asg-hub"))
				snprintf(dst, sizeof(dst), "*");
			/* source ports are mostly "*" in real NSGs; keep them varied anyway */
			if (below(3))
				snprintf(sport, sizeof(sport), "*");
			else
				side_value(port_pool, sizeof(port_pool) / sizeof(*port_pool), sport, sizeof(sport));
			side_value(port_pool, sizeof(port_pool) / sizeof(*port_pool), dport, sizeof(dport));
			snprintf(rule_name, sizeof(rule_name), "%c%d", direction ? 'o' : 'i', i);
			rule = nsg_rule_json(rule_name, priority, direction ? "Outbound" : "Inbound",
					     below(2) ? "Allow" : "Deny", PICK(protocol_pool), src, sport,
					     dst, dport);
			at += snprintf(out + at, size - at, "%s%s", n++ ? ", " : "", rule);
			free(rule);
		}
	}
	at += snprintf(out + at, size - at, "]}}");
	return at;
}


/* vm-nic (10.11.1.4 and fd00:11:0:1::4 in spoke1/default, NSG NSG_RANDOM_NIC) joins asg-app;
 * db-nic asg-db with one address of each family; hub-nic (10.10.1.4, hub/web) asg-hub;
 * asg-empty has no NIC. */
#define NSG_RANDOM_NIC "randnic"
#define NSG_RANDOM_NICS \
	"{\"type\": \"Microsoft.Network/networkInterfaces\", \"name\": \"vm-nic\", \"properties\": {" \
	" \"networkSecurityGroup\": {\"id\": \"" NSG_RANDOM_NIC "\"}, \"ipConfigurations\": [" \
	"  {\"name\": \"a\", \"properties\": {\"privateIPAddress\": \"10.11.1.4\"," \
	"   \"applicationSecurityGroups\": [{\"id\": \"asg-app\"}]," \
	"   \"subnet\": {\"id\": \"/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/spoke1/subnets/default\"}}}," \
	"  {\"name\": \"b\", \"properties\": {\"privateIPAddress\": \"fd00:11:0:1::4\"," \
	"   \"applicationSecurityGroups\": [{\"id\": \"asg-app\"}]," \
	"   \"subnet\": {\"id\": \"/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/spoke1/subnets/default\"}}}]}},\n" \
	"{\"type\": \"Microsoft.Network/networkInterfaces\", \"name\": \"db-nic\", \"properties\": {" \
	" \"ipConfigurations\": [" \
	"  {\"name\": \"a\", \"properties\": {\"privateIPAddress\": \"10.11.1.5\"," \
	"   \"applicationSecurityGroups\": [{\"id\": \"asg-db\"}]," \
	"   \"subnet\": {\"id\": \"spoke1/default\"}}}," \
	"  {\"name\": \"b\", \"properties\": {\"privateIPAddress\": \"fd00:11:0:1::9\"," \
	"   \"applicationSecurityGroups\": [{\"id\": \"asg-db\"}]," \
	"   \"subnet\": {\"id\": \"spoke1/default\"}}}]}},\n" \
	"{\"type\": \"Microsoft.Network/networkInterfaces\", \"name\": \"hub-nic\", \"properties\": {" \
	" \"ipConfigurations\": [{\"name\": \"a\", \"properties\": {\"privateIPAddress\": \"10.10.1.4\"," \
	"   \"applicationSecurityGroups\": [{\"id\": \"asg-hub\"}], \"subnet\": {\"id\": \"hub/web\"}}}]}},\n" \
	"{\"type\": \"Microsoft.Network/applicationSecurityGroups\", \"name\": \"asg-app\"},\n" \
	"{\"type\": \"Microsoft.Network/applicationSecurityGroups\", \"name\": \"asg-db\"},\n" \
	"{\"type\": \"Microsoft.Network/applicationSecurityGroups\", \"name\": \"asg-hub\"},\n" \
	"{\"type\": \"Microsoft.Network/applicationSecurityGroups\", \"name\": \"asg-empty\"}"

static const char *const hub4[] = { "10.10.1.4", "10.10.1.5", "10.10.1.130", "10.10.2.9",
				     "10.10.3.7", "10.10.200.1", "10.10.1.127", "10.10.0.9" };
static const char *const spoke4[] = { "10.11.1.4", "10.11.1.5", "10.11.1.3", "10.11.1.9",
				       "10.11.2.1", "10.11.1.200" };
static const char *const hub6[] = { "fd00:10:0:1::4", "fd00:10:0:1::5", "fd00:10:0:2::9",
				     "fd00:10:0:ff::1" };
static const char *const spoke6[] = { "fd00:11:0:1::4", "fd00:11:0:1::9", "fd00:11:0:2::1",
				       "fd00:11:0:1::ff" };
static const uint16_t port_values[] = { 0, 1, 22, 53, 79, 80, 81, 82, 443, 999, 1000, 1001,
					1500, 1999, 2000, 2001, 2999, 3000, 8080, 65534, 65535 };

static inline uint16_t random_port(void)
{
	return below(4) ? port_values[below(sizeof(port_values) / sizeof(*port_values))]
			: (uint16_t)rnd();
}

struct nsg_world {
	struct config *cfg;
	const struct config_nsg *web, *subnet, *nic;
	struct ip_prefix hub_view[6], spoke1_view[4];
	struct ip_prefix web_prefixes[2], spoke1_prefixes[2];
	struct ip_address nic_addresses[2];
};

static inline const struct config_nsg *nsg_named(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_nsgs; i++)
		if (!strcmp(cfg->nsgs[i].name, name))
			return &cfg->nsgs[i];
	return NULL;
}

static inline void nsg_world_init(struct nsg_world *w)
{
	static const char *const hub_view[] = { "10.10.0.0/16", "fd00:10::/48", "10.11.0.0/16",
						"fd00:11::/48", "10.12.0.0/16", "fd00:12::/48" };
	static const char *const spoke1_view[] = { "10.11.0.0/16", "fd00:11::/48", "10.10.0.0/16",
						   "fd00:10::/48" };

	for (int i = 0; i < 6; i++)
		ip_prefix_parse(hub_view[i], &w->hub_view[i]);
	for (int i = 0; i < 4; i++)
		ip_prefix_parse(spoke1_view[i], &w->spoke1_view[i]);
	ip_prefix_parse("10.10.1.0/24", &w->web_prefixes[0]);
	ip_prefix_parse("fd00:10:0:1::/64", &w->web_prefixes[1]);
	ip_prefix_parse("10.11.1.0/24", &w->spoke1_prefixes[0]);
	ip_prefix_parse("fd00:11:0:1::/64", &w->spoke1_prefixes[1]);
	ip_address_parse("10.11.1.4", &w->nic_addresses[0]);
	ip_address_parse("fd00:11:0:1::4", &w->nic_addresses[1]);
}

static inline struct reference_nsg nsg_world_subnet(const struct nsg_world *w, const uint8_t *addr, int family)
{
	if (reference_in_list(addr, family, w->web_prefixes, 2))
		return (struct reference_nsg){ w->web, w->hub_view, 6, w->cfg };
	if (reference_in_list(addr, family, w->spoke1_prefixes, 2))
		return (struct reference_nsg){ w->subnet, w->spoke1_view, 4, w->cfg };
	return (struct reference_nsg){ NULL };
}

static inline struct reference_nsg nsg_world_nic(const struct nsg_world *w, const uint8_t *addr, int family)
{
	for (int i = 0; i < 2; i++)
		if (w->nic_addresses[i].family == family &&
		    !memcmp(w->nic_addresses[i].addr, addr, family == AF_INET ? 4 : 16))
			return (struct reference_nsg){ w->nic, w->spoke1_view, 4, w->cfg };
	return (struct reference_nsg){ NULL };
}

/* Each stage's NSG for p in this world, found from the config's subnets and NICs, not
 * from the compiler's bindings. */
static inline void nsg_world_stages(const struct nsg_world *w, const struct reference_packet *p,
				    struct reference_nsg stages[REFERENCE_STAGES])
{
	stages[REFERENCE_SOURCE_NIC] = nsg_world_nic(w, p->src, p->family);
	stages[REFERENCE_SOURCE_SUBNET] = nsg_world_subnet(w, p->src, p->family);
	stages[REFERENCE_DESTINATION_SUBNET] = nsg_world_subnet(w, p->dst, p->family);
	stages[REFERENCE_DESTINATION_NIC] = nsg_world_nic(w, p->dst, p->family);
}

/* What the reference says of p in this world. */
static inline struct reference_verdict nsg_world_reference(const struct nsg_world *w,
							   const struct reference_packet *p)
{
	struct reference_nsg stages[REFERENCE_STAGES];

	nsg_world_stages(w, p, stages);
	return reference_evaluate(stages, p);
}

#endif

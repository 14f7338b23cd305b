/* A gateway with network security groups for packet tests: the hub-and-spokes namespaces
 * of scripts/topology.sh, a config whose subnets, NICs and NSGs the test writes, `vnet-xdp
 * up` (or reload), and frames run through the attached program with BPF_PROG_TEST_RUN.
 *
 *   hub    10.10.0.0/16 fd00:10::/48  subnets web 10.10.1.0/24 + fd00:10:0:1::/64,
 *                                             db 10.10.2.0/24, plain 10.10.3.0/24
 *   spoke1 10.11.0.0/16 fd00:11::/48  subnet default 10.11.1.0/24 + fd00:11:0:1::/64
 *   spoke2 10.12.0.0/16 fd00:12::/48  subnet default 10.12.1.0/24 + fd00:12:0:1::/64
 * hub is peered with both spokes. */
#ifndef TESTS_PACKET_NSG_HARNESS_H
#define TESTS_PACKET_NSG_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <jansson.h>
#include "vnet_xdp.h"
#include "packet/packet_builder.h"

#define HUB_VM_MAC "02:00:00:00:10:04"
#define HUB_GW_MAC "02:00:00:00:10:01"
#define SPOKE1_VM_MAC "02:00:00:00:11:04"
#define SPOKE1_GW_MAC "02:00:00:00:11:01"

enum { HUB, SPOKE1, SPOKE2, UPLINK };

struct nsg_gateway {
	bool ready;
	const char *why_not;
	const char *prefix, *name;
	char prefix_buf[32], name_buf[32];
	char config_path[128], pin_dir[128];
	int host_netns;
	struct { const char *name; uint32_t ifindex; int prog_fd; } ifaces[4];
	int traces_fd, drops_fd, flows_fd, rule_counters_fd, flow_counters_fd;
};

static struct nsg_gateway gw;

static inline int harness_shell(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static inline const char *harness_build(void)
{
	return getenv("BUILD") ? getenv("BUILD") : "build";
}

/* One securityRules entry. A value starting with '[' is a JSON list and goes to the plural
 * key (sourceAddressPrefixes, destinationPortRanges, ...). */
static inline char *nsg_rule_json(const char *name, int priority, const char *direction,
				  const char *access, const char *protocol, const char *src,
				  const char *sport, const char *dst, const char *dport)
{
	char *out = NULL;
#define SIDE(key, v) (v[0] == '[' ? key "es\": " : key "\": \""), v, (v[0] == '[' ? "" : "\"")
#define PORTS(key, v) (v[0] == '[' ? key "s\": " : key "\": \""), v, (v[0] == '[' ? "" : "\"")
	if (asprintf(&out, "{\"name\": \"%s\", \"properties\": {\"priority\": %d, \"direction\": "
		     "\"%s\", \"access\": \"%s\", \"protocol\": \"%s\", \"%s%s%s, \"%s%s%s, "
		     "\"%s%s%s, \"%s%s%s}}", name, priority, direction, access, protocol,
		     SIDE("sourceAddressPrefix", src), PORTS("sourcePortRange", sport),
		     SIDE("destinationAddressPrefix", dst), PORTS("destinationPortRange", dport)) < 0)
		return NULL;
#undef SIDE
#undef PORTS
	return out;
}

/* The config: subnet_nsgs names the NSG of hub/web, hub/db, spoke1/default ("" for none);
 * resources is a comma-separated list of extra resources (NSGs, NICs), may be "". */
static inline int harness_write_config(const char *hub_web, const char *hub_db,
				       const char *spoke1, const char *resources,
				       const char *limits)
{
	FILE *f = fopen(gw.config_path, "w");
	char web_ref[128] = "", db_ref[128] = "", spoke1_ref[128] = "";

	if (!f)
		return -errno;
	if (hub_web[0])
		snprintf(web_ref, sizeof(web_ref), ", \"networkSecurityGroup\": {\"id\": \"%s\"}", hub_web);
	if (hub_db[0])
		snprintf(db_ref, sizeof(db_ref), ", \"networkSecurityGroup\": {\"id\": \"%s\"}", hub_db);
	if (spoke1[0])
		snprintf(spoke1_ref, sizeof(spoke1_ref), ", \"networkSecurityGroup\": {\"id\": \"%s\"}", spoke1);
	fprintf(f,
"{\"gateway\": {\"name\": \"%s\", \"interfaces\": [\n"
"  {\"name\": \"to-hub\", \"virtualNetwork\": \"hub\"},\n"
"  {\"name\": \"to-spoke1\", \"virtualNetwork\": \"spoke1\"},\n"
"  {\"name\": \"to-spoke2\", \"virtualNetwork\": \"spoke2\"},\n"
"  {\"name\": \"uplink0\", \"role\": \"uplink\"}],\n"
" \"virtualNetworks\": [{\"name\": \"hub\", \"vip\": \"203.0.113.10\"},\n"
"  {\"name\": \"spoke1\", \"vip\": \"203.0.113.11\"}, {\"name\": \"spoke2\", \"vip\": \"203.0.113.12\"}],\n"
" \"limits\": {%s}},\n"
" \"resources\": [\n"
"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"hub\", \"properties\": {\n"
"   \"addressSpace\": {\"addressPrefixes\": [\"10.10.0.0/16\", \"fd00:10::/48\"]},\n"
"   \"subnets\": [\n"
"    {\"name\": \"web\", \"properties\": {\"addressPrefixes\": [\"10.10.1.0/24\", \"fd00:10:0:1::/64\"]%s}},\n"
"    {\"name\": \"db\", \"properties\": {\"addressPrefix\": \"10.10.2.0/24\"%s}},\n"
"    {\"name\": \"plain\", \"properties\": {\"addressPrefix\": \"10.10.3.0/24\"}}],\n"
"   \"virtualNetworkPeerings\": [\n"
"    {\"name\": \"hub-to-spoke1\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"spoke1\"}, \"allowVirtualNetworkAccess\": true}},\n"
"    {\"name\": \"hub-to-spoke2\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"spoke2\"}, \"allowVirtualNetworkAccess\": true}}]}},\n"
"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"spoke1\", \"properties\": {\n"
"   \"addressSpace\": {\"addressPrefixes\": [\"10.11.0.0/16\", \"fd00:11::/48\"]},\n"
"   \"subnets\": [{\"name\": \"default\", \"properties\": {\"addressPrefixes\": [\"10.11.1.0/24\", \"fd00:11:0:1::/64\"]%s}}],\n"
"   \"virtualNetworkPeerings\": [{\"name\": \"spoke1-to-hub\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"hub\"}, \"allowVirtualNetworkAccess\": true}}]}},\n"
"  {\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"spoke2\", \"properties\": {\n"
"   \"addressSpace\": {\"addressPrefixes\": [\"10.12.0.0/16\", \"fd00:12::/48\"]},\n"
"   \"subnets\": [{\"name\": \"default\", \"properties\": {\"addressPrefixes\": [\"10.12.1.0/24\", \"fd00:12:0:1::/64\"]}}],\n"
"   \"virtualNetworkPeerings\": [{\"name\": \"spoke2-to-hub\", \"properties\": {\"remoteVirtualNetwork\": {\"id\": \"hub\"}, \"allowVirtualNetworkAccess\": true}}]}}%s%s\n"
" ]}\n", gw.name, limits ? limits : "", web_ref, db_ref, spoke1_ref, resources[0] ? ",\n" : "",
		resources);
	return fclose(f) ? -errno : 0;
}

static inline int harness_open_programs(void)
{
	char path[256];

	for (int i = 0; i < 4; i++) {
		if (gw.ifaces[i].prog_fd > 0)
			close(gw.ifaces[i].prog_fd);
		snprintf(path, sizeof(path), "%s/xdp_%u", gw.pin_dir, gw.ifaces[i].ifindex);
		gw.ifaces[i].prog_fd = bpf_obj_get(path);
		if (gw.ifaces[i].prog_fd < 0)
			return -1;
	}
	return 0;
}

static inline int harness_map(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", gw.pin_dir, name);
	return bpf_obj_get(path);
}

/* Builds the namespaces and brings the gateway up with the config already written by
 * harness_write_config (call harness_init first). */
static inline int harness_up(void)
{
	char path[128];
	int ns;

	if (harness_shell("bash -c '. scripts/topology.sh && topology_down %s && topology_up %s"
			  " && for n in 10 11 12; do v=$([ $n = 10 ] && echo hub || echo spoke$((n-10)));"
			  " ip -n %s-gw neigh replace 10.$n.1.4 lladdr 02:00:00:00:$n:04 dev to-$v nud permanent;"
			  " ip -n %s-gw neigh replace fd00:$n:0:1::4 lladdr 02:00:00:00:$n:04 dev to-$v nud permanent; done"
			  " && nsenter --net=/run/netns/%s-gw %s/vnet-xdp down -n %s >/dev/null 2>&1;"
			  " nsenter --net=/run/netns/%s-gw %s/vnet-xdp up -c %s'",
			  gw.prefix, gw.prefix, gw.prefix, gw.prefix, gw.prefix, harness_build(), gw.name,
			  gw.prefix, harness_build(), gw.config_path)) {
		gw.why_not = "could not build the topology or bring the gateway up";
		return -1;
	}
	gw.host_netns = open("/proc/self/ns/net", O_RDONLY);
	snprintf(path, sizeof(path), "/run/netns/%s-gw", gw.prefix);
	ns = open(path, O_RDONLY);
	if (ns < 0 || setns(ns, CLONE_NEWNET)) {
		gw.why_not = "cannot enter the gateway's namespace";
		return -1;
	}
	close(ns);
	/* Traces are per CPU: BPF_PROG_TEST_RUN runs on the caller's CPU. */
	cpu_set_t cpus;
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	for (int i = 0; i < 4; i++)
		gw.ifaces[i].ifindex = if_nametoindex(gw.ifaces[i].name);
	if (harness_open_programs()) {
		gw.why_not = "the gateway's program is not pinned";
		return -1;
	}
	gw.traces_fd = harness_map("decision_traces");
	gw.drops_fd = harness_map("drop_counters");
	gw.flows_fd = harness_map("flows");
	gw.rule_counters_fd = harness_map("nsg_rule_counters");
	gw.flow_counters_fd = harness_map("flow_counters");
	gw.ready = gw.traces_fd >= 0 && gw.drops_fd >= 0 && gw.flows_fd >= 0 &&
		   gw.rule_counters_fd >= 0 && gw.flow_counters_fd >= 0;
	return gw.ready ? 0 : -1;
}

/* Names carry the process id: checkouts running the suites at once do not collide. */
static inline void harness_init(const char *prefix, const char *name)
{
	snprintf(gw.prefix_buf, sizeof(gw.prefix_buf), "%s%d", prefix, (int)getpid());
	snprintf(gw.name_buf, sizeof(gw.name_buf), "%s%d", name, (int)getpid());
	gw.prefix = gw.prefix_buf;
	gw.name = gw.name_buf;
	snprintf(gw.config_path, sizeof(gw.config_path), "/tmp/vnet-xdp-%s.json", gw.name);
	snprintf(gw.pin_dir, sizeof(gw.pin_dir), VNET_XDP_PIN_ROOT "/%s", gw.name);
	gw.ifaces[HUB].name = "to-hub";
	gw.ifaces[SPOKE1].name = "to-spoke1";
	gw.ifaces[SPOKE2].name = "to-spoke2";
	gw.ifaces[UPLINK].name = "uplink0";
}

/* `vnet-xdp reload` of the config file as it is now; the programs are new afterwards. */
static inline int harness_reload(void)
{
	if (harness_shell("%s/vnet-xdp reload -c %s", harness_build(), gw.config_path))
		return -1;
	return harness_open_programs();
}

static inline void harness_down(void)
{
	if (gw.host_netns > 0)
		setns(gw.host_netns, CLONE_NEWNET);
	if (geteuid() == 0 && gw.prefix)
		harness_shell("nsenter --net=/run/netns/%s-gw %s/vnet-xdp down -n %s >/dev/null;"
			      " bash -c '. scripts/topology.sh && topology_down %s'; rm -f %s",
			      gw.prefix, harness_build(), gw.name, gw.prefix, gw.config_path);
}

struct run_result {
	int verdict;
	struct decision_trace trace;
	struct frame out;
};

static inline struct run_result harness_run(int iface, const struct frame *in)
{
	struct run_result r = { .verdict = -1 };
	struct xdp_md ctx = { .data_end = in->len, .ingress_ifindex = gw.ifaces[iface].ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->data, .data_size_in = in->len,
		    .data_out = r.out.data, .data_size_out = sizeof(r.out.data), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int cpus = libbpf_num_possible_cpus();
	struct decision_trace traces[cpus];
	uint32_t zero = 0;

	if (bpf_prog_test_run_opts(gw.ifaces[iface].prog_fd, &opts))
		return r;
	r.verdict = opts.retval;
	r.out.len = opts.data_size_out;
	if (!bpf_map_lookup_elem(gw.traces_fd, &zero, traces))
		r.trace = traces[0];
	return r;
}

/* Moves every flow's last activity back by `seconds`, as if it had been idle that long. */
static inline int harness_age_flows(uint64_t seconds)
{
	struct flow_key key, next, *prev = NULL;
	struct flow_entry entry;
	int n = 0;

	while (!bpf_map_get_next_key(gw.flows_fd, prev, &next)) {
		if (!bpf_map_lookup_elem(gw.flows_fd, &next, &entry)) {
			entry.last_seen_ns -= seconds * 1000000000ULL;
			if (!bpf_map_update_elem(gw.flows_fd, &next, &entry, BPF_EXIST))
				n++;
		}
		key = next;
		prev = &key;
	}
	return n;
}

static inline void harness_clear_flows(void)
{
	struct flow_key key;

	while (!bpf_map_get_next_key(gw.flows_fd, NULL, &key))
		bpf_map_delete_elem(gw.flows_fd, &key);
}

static inline uint64_t harness_rule_hits(uint32_t rule_id)
{
	int cpus = libbpf_num_possible_cpus();
	struct nsg_rule_counter values[cpus];
	uint64_t sum = 0;

	if (bpf_map_lookup_elem(gw.rule_counters_fd, &rule_id, values))
		return 0;
	for (int c = 0; c < cpus; c++)
		sum += values[c].hits;
	return sum;
}

/* The stable id of a rule, from the ids file the loader keeps; -1 when unknown. */
static inline int64_t harness_rule_id(const char *nsg, const char *direction, const char *rule)
{
	char path[256], key[256];
	json_t *doc, *entry;
	int64_t id = -1;

	snprintf(path, sizeof(path), "/run/vnet-xdp/%s.nsg-ids.json", gw.name);
	snprintf(key, sizeof(key), "%s/%s/%s", nsg, direction, rule);
	doc = json_load_file(path, 0, NULL);
	entry = json_object_get(json_object_get(doc, "rules"), key);
	if (entry)
		id = json_integer_value(json_object_get(entry, "id"));
	json_decref(doc);
	return id;
}

#endif

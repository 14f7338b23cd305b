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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>
#include "vnet_xdp.h"
#include "datapath/datapath.h" /* datapath_clock_ns: the clock the datapath stamps with */
#include "compile/nsg.h"
#include "datapath/nsg_write.h"
#include "packet/gateway_harness.h"
#include "nsg_random.h" /* nsg_rule_json, NSG_SERVICE_TAGS */

/* The gateway of the test file; it writes its own config (nsg_write_config). */
static struct gateway_harness gw = { .config_written = true };

/* The NSG's state maps, opened by nsg_up. */
static struct {
	int flows_fd, rule_counters_fd, flow_counters_fd;
	int flow_tables_fd[2];  /* flows (answered), new_flows (not yet answered) */
	int fast_paths_fd[2]; /* FAST_PATH_MAP_NAMES: IPv4, IPv6 */
} nsg_maps;

static inline void nsg_service_tags_path(char *buf, size_t size)
{
	snprintf(buf, size, "%.*s.service-tags.json", (int)strlen(gw.config_path) - 5,
		 gw.config_path);
}

static inline int nsg_write_service_tags(void)
{
	char path[160];
	FILE *f;

	nsg_service_tags_path(path, sizeof(path));
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs(NSG_SERVICE_TAGS, f);
	return fclose(f) ? -errno : 0;
}

/* The config: subnet_nsgs names the NSG of hub/web, hub/db, spoke1/default ("" for none);
 * resources is a comma-separated list of extra resources (NSGs, NICs), may be "". */
static inline int nsg_write_config(const char *hub_web, const char *hub_db,
				   const char *spoke1, const char *resources, const char *limits)
{
	FILE *f = fopen(gw.config_path, "w");
	char web_ref[128] = "", db_ref[128] = "", spoke1_ref[128] = "", tags[160];

	if (!f || nsg_write_service_tags())
		return -errno;
	nsg_service_tags_path(tags, sizeof(tags));
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
" \"serviceTagsFile\": \"%s\", \"limits\": {%s}},\n"
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
" ]}\n", gw.name, strrchr(tags, '/') + 1, limits ? limits : "", web_ref, db_ref, spoke1_ref, resources[0] ? ",\n" : "",
		resources);
	return fclose(f) ? -errno : 0;
}

/* Takes the gateway down and removes the files the config names. */
static inline void nsg_down(void)
{
	char tags[160];

	nsg_service_tags_path(tags, sizeof(tags));
	harness_down(&gw);
	if (gw.name[0])
		unlink(tags);
}

/* Names the gateway (prefix and name get the pid); call before writing the config.
 * False where the gateway cannot be built: the tests are skipped. */
static inline bool nsg_init(const char *prefix, const char *name)
{
	gw.prefix = prefix;
	gw.gateway = name;
	harness_init(&gw);
	return harness_can_run(&gw);
}

/* Builds the namespaces and brings the gateway up with the config already written by
 * nsg_write_config, then opens the NSG's maps. */
static inline int nsg_up(void)
{
	if (harness_up(&gw))
		return -1;
	if (!gw.ready) /* skipped, with the reason */
		return 0;
	nsg_maps.flows_fd = harness_map(&gw, "flows");
	nsg_maps.flow_tables_fd[0] = nsg_maps.flows_fd;
	nsg_maps.flow_tables_fd[1] = harness_map(&gw, "new_flows");
	nsg_maps.rule_counters_fd = harness_map(&gw, "nsg_rule_counters");
	nsg_maps.flow_counters_fd = harness_map(&gw, "flow_counters");
	nsg_maps.fast_paths_fd[0] = harness_map(&gw, "fast_paths4");
	nsg_maps.fast_paths_fd[1] = harness_map(&gw, "fast_paths6");
	gw.ready = nsg_maps.flows_fd >= 0 && nsg_maps.flow_tables_fd[1] >= 0 &&
		   nsg_maps.rule_counters_fd >= 0 &&
		   nsg_maps.flow_counters_fd >= 0 && nsg_maps.fast_paths_fd[0] >= 0 &&
		   nsg_maps.fast_paths_fd[1] >= 0;
	if (!gw.ready)
		gw.why_not = "the NSG maps are not pinned";
	return gw.ready ? 0 : -1;
}

static void require_gateway(void) { harness_require(&gw); }

/* The config's NSGs compiled and written into the running gateway's maps, as `up` and
 * `reload` do it (without the rest of the datapath's maps). 0 or -errno. */
static inline int nsg_apply(const struct config *cfg, uint32_t generation)
{
	struct nsg_ids ids = { 0 };
	struct nsg_plan plan;
	int err = nsg_plan_for_gateway(cfg, gw.name, generation, &plan, &ids);

	if (err)
		return err;
	struct datapath_maps maps;

	err = datapath_maps_open(gw.name, &maps);
	if (!err) {
		err = nsg_plan_write(&maps, &plan);
		datapath_maps_close(&maps);
	}
	if (!err)
		err = nsg_ids_save(gw.name, &ids);
	nsg_plan_free(&plan);
	nsg_ids_free(&ids);
	return err;
}

/* Calls visit on every entry of both fast path maps; an entry visit changed (returns 1)
 * is written back, one it returns -1 for is deleted. */
static inline void nsg_fast_paths_each(int (*visit)(struct fast_path_entry *e, void *arg),
				       void *arg)
{
	for (int m = 0; m < 2; m++) {
		int fd = nsg_maps.fast_paths_fd[m];
		uint8_t key[sizeof(struct fast_path_key6)], prev_key[sizeof(key)];
		struct fast_path_entry e;
		void *prev = NULL;

		while (!bpf_map_get_next_key(fd, prev, key)) {
			int r = bpf_map_lookup_elem(fd, key, &e) ? 0 : visit(&e, arg);

			if (r > 0)
				bpf_map_update_elem(fd, key, &e, BPF_EXIST);
			if (r < 0) {
				bpf_map_delete_elem(fd, key);
				prev = NULL; /* start over: the deleted key was the cursor */
				continue;
			}
			memcpy(prev_key, key, sizeof(key));
			prev = prev_key;
		}
	}
}

/* A stamp moved ns into the past, never before the clock's start at boot. */
static inline uint64_t stamp_aged(uint64_t stamp, uint64_t ns)
{
	return stamp > ns ? stamp - ns : 0;
}

/* A stamp can only be moved ns back once the clock has run that long (and a second more,
 * for the stamps taken just now): on a machine booted less than that ago, wait for it. */
static inline void clock_wait_past(uint64_t ns)
{
	uint64_t now = datapath_clock_ns();

	if (now > ns + NS_PER_SECOND)
		return;
	fprintf(stderr, "# up for %llu s only: waiting until stamps can be aged %llu s\n",
		(unsigned long long)(now / NS_PER_SECOND), (unsigned long long)(ns / NS_PER_SECOND));
	while (datapath_clock_ns() <= ns + NS_PER_SECOND)
		usleep(100 * 1000);
}

static inline int fast_path_age(struct fast_path_entry *e, void *arg)
{
	uint64_t ns = *(uint64_t *)arg;

	e->checked_ns = stamp_aged(e->checked_ns, ns);
	e->last_seen_ns = stamp_aged(e->last_seen_ns, ns);
	return 1;
}

/* Moves every flow's last activity back by `seconds`, as if it had been idle that long;
 * the fast path's leases and what waits in its entries age with them. */
static inline int nsg_age_flows(uint64_t seconds)
{
	struct flow_key key, next, *prev = NULL;
	struct flow_entry entry;
	uint64_t ns = seconds * NS_PER_SECOND;
	int n = 0;

	clock_wait_past(ns);
	for (int t = 0; t < 2; t++) {
		int fd = nsg_maps.flow_tables_fd[t];

		prev = NULL;
		while (!bpf_map_get_next_key(fd, prev, &next)) {
			if (!bpf_map_lookup_elem(fd, &next, &entry)) {
				entry.last_seen_ns = stamp_aged(entry.last_seen_ns, ns);
				if (!bpf_map_update_elem(fd, &next, &entry, BPF_EXIST))
					n++;
			}
			key = next;
			prev = &key;
		}
	}
	nsg_fast_paths_each(fast_path_age, &ns);
	return n;
}

static inline int fast_path_forget(struct fast_path_entry *e, void *arg)
{
	(void)e;
	(void)arg;
	return -1;
}

/* Empty flow tables, and no fast path that would carry a flow it no longer has. */
static inline void nsg_clear_flows(void)
{
	struct flow_key key;

	for (int t = 0; t < 2; t++)
		while (!bpf_map_get_next_key(nsg_maps.flow_tables_fd[t], NULL, &key))
			bpf_map_delete_elem(nsg_maps.flow_tables_fd[t], &key);
	nsg_fast_paths_each(fast_path_forget, NULL);
}

static inline uint64_t nsg_rule_hits(uint32_t rule_id)
{
	int cpus = libbpf_num_possible_cpus();
	struct nsg_rule_counter values[cpus];
	uint64_t sum = 0;

	if (bpf_map_lookup_elem(nsg_maps.rule_counters_fd, &rule_id, values))
		return 0;
	for (int c = 0; c < cpus; c++)
		sum += values[c].hits;
	return sum;
}

/* The stable id of a rule, from the ids file the loader keeps; -1 when unknown. */
static inline int64_t nsg_rule_id(const char *nsg, const char *direction, const char *rule)
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

/* The BPF tier: one stage of the pipeline at a time, as Cilium's bpf/tests and Katran's
 * tester do it. The datapath's object ($BUILD/vnet_xdp.bpf.o) is loaded with libbpf, its
 * maps unpinned (nothing reaches /sys/fs/bpf, nothing is left behind), filled straight
 * from a config by the loader's own plan writers (plan_build + datapath_write_plan,
 * nsg_plan_build + nsg_plan_write), and frames run through BPF_PROG_TEST_RUN. No `up`, no
 * topology of namespaces.
 *
 * bpf_fib_lookup and the ingress ifindex must name real devices: the process takes a
 * network namespace of its own (unshare, nothing named, gone when it exits) holding one
 * veth pair per interface of the config, addresses on the gateway's ends, forwarding on,
 * and permanent neighbours for the VMs the tests name. That is all the kernel supplies.
 *
 *   setup:    bpf_harness_load(&h, config_text, neighbours)
 *   test:     struct bpf_result r = bpf_harness_run(&h, "to-spoke1", &frame);
 *   teardown: bpf_harness_unload(&h) */
#ifndef TESTS_BPF_HARNESS_H
#define TESTS_BPF_HARNESS_H

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include "config/config.h"
#include "datapath/datapath.h"
#include "compile/nsg.h"
#include "datapath/nsg_write.h"
#include "compile/plan.h"
#include "vnet_xdp.h"
#include "packet/gateway_harness.h" /* harness_traces_arm, harness_counter, the MACs */

/* One veth pair: the gateway's end (an interface of the config) and the VM side's. */
struct bpf_link_spec {
	const char *name, *mac, *peer_mac;
	const char *addresses; /* on the gateway's end, space-separated CIDRs */
};

struct bpf_harness {
	struct bpf_object *obj;
	int prog_fd, traces_fd, drops_fd, peerings_fd;
	struct config *cfg;
	struct plan plan;
	struct nsg_plan nsg;
	struct nsg_ids ids;
	bool ready;
	const char *why_not;
};

/* The process's own network namespace with the links, forwarding on (bpf_fib_lookup
 * answers "forwarding disabled" otherwise) and the neighbours ("ADDRESS MAC DEV", one a
 * line), so every forwarded frame's MACs are known in advance. */
static inline int bpf_harness_network(const struct bpf_link_spec *links, size_t n,
				      const char *neighbours)
{
	char line[256];
	const char *at = neighbours;

	if (unshare(CLONE_NEWNET))
		return -errno;
	if (harness_shell("ip link set lo up && sysctl -qw net.ipv4.conf.all.forwarding=1"
			      " net.ipv6.conf.all.forwarding=1"))
		return -1;
	for (size_t i = 0; i < n; i++) {
		char addrs[256], *save = NULL;

		if (harness_shell("ip link add %s address %s type veth peer name %.8s-vm address %s"
				      " && ip link set %s up && ip link set %.8s-vm up",
				      links[i].name, links[i].mac, links[i].name, links[i].peer_mac,
				      links[i].name, links[i].name))
			return -1;
		snprintf(addrs, sizeof(addrs), "%s", links[i].addresses);
		for (char *a = strtok_r(addrs, " ", &save); a; a = strtok_r(NULL, " ", &save))
			if (harness_shell("ip addr add %s dev %s%s", a, links[i].name,
					      strchr(a, ':') ? " nodad" : ""))
				return -1;
	}
	while (at && *at) {
		const char *end = strchr(at, '\n');
		size_t len = end ? (size_t)(end - at) : strlen(at);
		char addr[64], mac[32], dev[32];

		snprintf(line, sizeof(line), "%.*s", (int)len, at);
		at += len + (end ? 1 : 0);
		if (sscanf(line, "%63s %31s %31s", addr, mac, dev) != 3)
			continue;
		if (harness_shell("ip neigh replace %s lladdr %s dev %s nud permanent", addr, mac,
				      dev))
			return -1;
	}
	return 0;
}

static inline const char *bpf_harness_object_path(char *buf, size_t size)
{
	snprintf(buf, size, "%s/vnet_xdp.bpf.o", getenv("BUILD") ? getenv("BUILD") : "build");
	return buf;
}

static inline int bpf_harness_map(const struct bpf_harness *h, const char *name)
{
	struct bpf_map *map = bpf_object__find_map_by_name(h->obj, name);

	return map ? bpf_map__fd(map) : -1;
}

/* The object, unpinned, its big state tables small (a test holds a few flows), only the
 * XDP program loaded (the tunnels' tc programs are no stage tested here). */
static inline int bpf_harness_object_load(struct bpf_harness *h)
{
	char path[256];
	struct bpf_program *prog;
	struct bpf_map *map;
	int err;

	h->obj = bpf_object__open_file(bpf_harness_object_path(path, sizeof(path)), NULL);
	if (!h->obj)
		return -errno;
	bpf_object__for_each_map(map, h->obj) {
		enum bpf_map_type type = bpf_map__type(map);

		if ((err = bpf_map__set_pin_path(map, NULL)))
			return err;
		if ((type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_LRU_HASH ||
		     type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH) &&
		    bpf_map__max_entries(map) > 4096)
			bpf_map__set_max_entries(map, 4096);
	}
	bpf_object__for_each_program(prog, h->obj)
		bpf_program__set_autoload(prog, bpf_program__type(prog) == BPF_PROG_TYPE_XDP);
	if ((err = bpf_object__load(h->obj)))
		return err;
	prog = bpf_object__find_program_by_name(h->obj, "xdp_gateway");
	h->prog_fd = prog ? bpf_program__fd(prog) : -1;
	h->traces_fd = bpf_harness_map(h, "decision_traces");
	h->drops_fd = bpf_harness_map(h, "drop_counters");
	h->peerings_fd = bpf_harness_map(h, "peering_counters");
	return h->prog_fd < 0 || h->traces_fd < 0 || h->drops_fd < 0 || h->peerings_fd < 0 ? -ENOENT : 0;
}

/* The config's maps, written by the loader's writers from its plans, as `up` does. */
static inline int bpf_harness_apply(struct bpf_harness *h, const char *config_text,
				    uint32_t generation)
{
	uint32_t ifindexes[MAX_INTERFACES];
	struct datapath_maps maps;
	int err;

	if (h->cfg) {
		plan_free(&h->plan);
		nsg_plan_free(&h->nsg);
		config_free(h->cfg);
		h->cfg = NULL;
	}
	if ((err = config_load_string(config_text, "bpf-tier.json", stderr, &h->cfg)))
		return err < 0 ? err : -EINVAL;
	for (size_t i = 0; i < h->cfg->n_ifaces; i++)
		if (!(ifindexes[i] = if_nametoindex(h->cfg->ifaces[i].name)))
			return -ENODEV;
	if ((err = plan_build(h->cfg, ifindexes, &h->plan)) ||
	    (err = nsg_plan_build(h->cfg, &h->nsg)) ||
	    (!h->ids.doc && (err = nsg_ids_init(&h->ids, 0))) ||
	    (err = nsg_plan_assign_ids(&h->nsg, h->cfg, &h->ids, generation)))
		return err;
	nsg_plan_settings(&h->nsg, &h->plan.settings);
	datapath_maps_init(&maps);
	for (int m = 0; m < MAP_COUNT; m++)
		maps.fd[m] = bpf_harness_map(h, datapath_map_name(m));
	if ((err = nsg_plan_write(&maps, &h->nsg)) ||
	    (err = datapath_write_plan(&maps, &h->plan, generation)) ||
	    (err = datapath_write_local_addresses(&maps)))
		return err;
	return 0;
}

/* Everything a test needs, or the reason why not in h->why_not (its tests skip). */
static inline int bpf_harness_load(struct bpf_harness *h, const struct bpf_link_spec *links,
				   size_t n_links, const char *neighbours, const char *config_text)
{
	cpu_set_t cpus;
	int err;

	if (geteuid() != 0) {
		h->why_not = "needs root for BPF and a network namespace of its own";
		return 0;
	}
	if ((err = bpf_harness_network(links, n_links, neighbours))) {
		h->why_not = "cannot set up the process's own network namespace";
		return -1;
	}
	if ((err = bpf_harness_object_load(h))) {
		fprintf(stderr, "cannot load the datapath's object: %s\n", strerror(-err));
		h->why_not = "cannot load the datapath's object";
		return -1;
	}
	if ((err = bpf_harness_apply(h, config_text, 1))) {
		fprintf(stderr, "cannot fill the maps from the config: %s\n", strerror(-err));
		h->why_not = "cannot fill the maps";
		return -1;
	}
	/* Every trace read is this CPU's: BPF_PROG_TEST_RUN runs on the caller's CPU, and
	 * nothing else runs the program (no interface has it attached). */
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	if (harness_traces_arm(h->traces_fd)) {
		h->why_not = "cannot arm the decision traces";
		return -1;
	}
	h->ready = true;
	return 0;
}

static inline void bpf_harness_unload(struct bpf_harness *h)
{
	if (h->cfg) {
		plan_free(&h->plan);
		nsg_plan_free(&h->nsg);
		config_free(h->cfg);
	}
	nsg_ids_free(&h->ids);
	bpf_object__close(h->obj);
	memset(h, 0, sizeof(*h));
}

static inline void bpf_harness_require(const struct bpf_harness *h)
{
	if (!h->ready) {
		print_message("skipped: %s\n", h->why_not ? h->why_not : "not loaded");
		skip();
	}
}

struct bpf_result {
	int verdict;
	struct frame out;
	struct decision_trace trace;
};

/* One frame through the program as if it arrived on interface `iface`. */
static inline struct bpf_result bpf_harness_run(const struct bpf_harness *h, const char *iface,
						const struct frame *in)
{
	int cpus = libbpf_num_possible_cpus();
	struct decision_trace traces[cpus];
	struct bpf_result r = { .verdict = -1 };
	struct xdp_md ctx = { .data_end = in->len, .ingress_ifindex = if_nametoindex(iface) };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->data, .data_size_in = in->len,
		    .data_out = r.out.data, .data_size_out = sizeof(r.out.data), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	uint32_t zero = 0;

	assert_int_not_equal(ctx.ingress_ifindex, 0);
	assert_int_equal(bpf_prog_test_run_opts(h->prog_fd, &opts), 0);
	r.verdict = (int)opts.retval;
	r.out.len = opts.data_size_out;
	assert_int_equal(bpf_map_lookup_elem(h->traces_fd, &zero, traces), 0);
	r.trace = traces[0];
	return r;
}

#endif

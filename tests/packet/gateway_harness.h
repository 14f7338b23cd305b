/* A real gateway for packet tests: the hub-and-spoke topology of scripts/topology.sh in
 * namespaces, `vnet-xdp up` on a config, and the pinned program of every interface ready
 * for BPF_PROG_TEST_RUN. A test file sets the names and the config, then runs frames. */
#ifndef TESTS_PACKET_GATEWAY_HARNESS_H
#define TESTS_PACKET_GATEWAY_HARNESS_H

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include "vnet_xdp.h"
#include "packet/packet_builder.h"

#define HUB_VM_MAC "02:00:00:00:10:04"
#define HUB_GW_MAC "02:00:00:00:10:01"
#define SPOKE1_VM_MAC "02:00:00:00:11:04"
#define SPOKE1_GW_MAC "02:00:00:00:11:01"
#define SPOKE2_VM_MAC "02:00:00:00:12:04"
#define SPOKE2_GW_MAC "02:00:00:00:12:01"
#define UPLINK_PEER_MAC "02:00:00:00:99:02"
#define UPLINK_GW_MAC "02:00:00:00:99:01"

enum { HUB, SPOKE1, SPOKE2, UPLINK, HARNESS_IFACES };

struct gateway_harness {
	const char *prefix;     /* namespace prefix, unique per test file */
	const char *gateway;    /* gateway name, unique per test file */
	/* Shell command (run after sourcing scripts/topology.sh) printing the config on
	 * stdout; "" for the topology's default. It may use $GATEWAY. */
	const char *config_command;
	bool ready;
	const char *why_not;
	int host_netns;
	struct { const char *name; uint32_t ifindex; int prog_fd; } ifaces[HARNESS_IFACES];
	int traces_fd, drops_fd, datapath_fd, peerings_fd;
};

static inline const char *harness_build_dir(void)
{
	return getenv("BUILD") ? getenv("BUILD") : "build";
}

static inline int harness_shell(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static inline int harness_pinned(const struct gateway_harness *h, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), VNET_XDP_PIN_ROOT "/%s/%s", h->gateway, name);
	return bpf_obj_get(path);
}

static inline int harness_up(struct gateway_harness *h)
{
	static const char *names[HARNESS_IFACES] = { "to-hub", "to-spoke1", "to-spoke2", "uplink0" };
	const char *build = harness_build_dir();
	char name[64];
	cpu_set_t cpus;
	int ns;

	for (int i = 0; i < HARNESS_IFACES; i++)
		h->ifaces[i].name = names[i];
	if (geteuid() != 0) {
		h->why_not = "needs root for network namespaces and BPF";
		return 0;
	}
	/* Static neighbours make the kernel's answer to bpf_fib_lookup, and so the MACs
	 * of every forwarded frame, known in advance. */
	if (setenv("CONFIG_COMMAND", h->config_command, 1) ||
	    harness_shell(
		    "GATEWAY=%s bash -c '. scripts/topology.sh && topology_down %s && topology_up %s"
		    " && eval \"${CONFIG_COMMAND:-topology_config $GATEWAY}\" > /tmp/vnet-xdp-%s.json"
		    " && for n in 10 11 12; do v=$([ $n = 10 ] && echo hub || echo spoke$((n-10)));"
		    " ip -n %s-gw neigh replace 10.$n.1.4 lladdr 02:00:00:00:$n:04 dev to-$v nud permanent;"
		    " ip -n %s-gw neigh replace fd00:$n:0:1::4 lladdr 02:00:00:00:$n:04 dev to-$v nud permanent; done"
		    " && ip -n %s-gw neigh replace 198.51.100.2 lladdr " UPLINK_PEER_MAC " dev uplink0 nud permanent"
		    " && nsenter --net=/run/netns/%s-gw %s/vnet-xdp down -n %s >/dev/null 2>&1;"
		    " nsenter --net=/run/netns/%s-gw %s/vnet-xdp up -c /tmp/vnet-xdp-%s.json'",
		    h->gateway, h->prefix, h->prefix, h->gateway, h->prefix, h->prefix, h->prefix,
		    h->prefix, build, h->gateway, h->prefix, build, h->gateway)) {
		h->why_not = "could not build the topology or bring the gateway up";
		return -1;
	}
	h->host_netns = open("/proc/self/ns/net", O_RDONLY);
	snprintf(name, sizeof(name), "/run/netns/%s-gw", h->prefix);
	ns = open(name, O_RDONLY);
	if (ns < 0 || setns(ns, CLONE_NEWNET)) {
		h->why_not = "cannot enter the gateway's namespace";
		return -1;
	}
	close(ns);
	/* Every trace read is this CPU's: BPF_PROG_TEST_RUN runs on the caller's CPU. */
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);

	for (int i = 0; i < HARNESS_IFACES; i++) {
		h->ifaces[i].ifindex = if_nametoindex(h->ifaces[i].name);
		snprintf(name, sizeof(name), "xdp_%u", h->ifaces[i].ifindex);
		h->ifaces[i].prog_fd = harness_pinned(h, name);
		if (h->ifaces[i].prog_fd < 0) {
			h->why_not = "the gateway's program is not pinned";
			return -1;
		}
	}
	h->traces_fd = harness_pinned(h, "decision_traces");
	h->drops_fd = harness_pinned(h, "drop_counters");
	h->datapath_fd = harness_pinned(h, "datapath_counters");
	h->peerings_fd = harness_pinned(h, "peering_counters");
	h->ready = h->traces_fd >= 0 && h->drops_fd >= 0 && h->datapath_fd >= 0 && h->peerings_fd >= 0;
	return h->ready ? 0 : -1;
}

static inline void harness_down(struct gateway_harness *h)
{
	if (h->host_netns > 0)
		setns(h->host_netns, CLONE_NEWNET);
	if (geteuid() == 0)
		harness_shell("nsenter --net=/run/netns/%s-gw %s/vnet-xdp down -n %s >/dev/null;"
			      " bash -c '. scripts/topology.sh && topology_down %s'; rm -f /tmp/vnet-xdp-%s.json",
			      h->prefix, harness_build_dir(), h->gateway, h->prefix, h->gateway);
}

struct harness_result {
	int rc;       /* of bpf_prog_test_run_opts */
	int verdict;
	int runs;     /* more than 1 when a live packet overwrote the trace in between */
	struct frame out;
	struct decision_trace trace;
};

static inline int harness_trace(const struct gateway_harness *h, struct decision_trace *trace)
{
	int cpus = libbpf_num_possible_cpus();
	struct decision_trace traces[cpus];
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(h->traces_fd, &zero, traces))
		return -1;
	*trace = traces[0];
	return 0;
}

/* Runs one frame through the program of interface `iface` as if it arrived there. The
 * trace is CPU 0's last decision, so a frame the VMs send meanwhile (a router
 * solicitation) can overwrite it: then the frame runs again, at most three times. */
static inline struct harness_result harness_run(const struct gateway_harness *h, int iface,
						const struct frame *in)
{
	struct harness_result r = { 0 };
	struct xdp_md ctx = { .data_end = in->len, .ingress_ifindex = h->ifaces[iface].ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->data, .data_size_in = in->len,
		    .data_out = r.out.data, .data_size_out = sizeof(r.out.data), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	struct decision_trace before;

	do {
		r.runs++;
		opts.data_size_out = sizeof(r.out.data);
		if (harness_trace(h, &before))
			before.sequence = 0;
		r.rc = bpf_prog_test_run_opts(h->ifaces[iface].prog_fd, &opts);
		r.verdict = opts.retval;
		r.out.len = opts.data_size_out;
		if (harness_trace(h, &r.trace))
			break;
	} while (r.rc == 0 && r.trace.sequence != before.sequence + 1 && r.runs < 3);
	return r;
}

/* A per-CPU packet counter summed over every CPU. */
static inline uint64_t harness_counter(int fd, uint32_t index)
{
	int cpus = libbpf_num_possible_cpus();
	struct packet_counter values[cpus];
	uint64_t sum = 0;

	if (bpf_map_lookup_elem(fd, &index, values))
		return 0;
	for (int c = 0; c < cpus; c++)
		sum += values[c].packets;
	return sum;
}

#endif

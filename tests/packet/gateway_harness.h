/* A real gateway for packet tests: the hub-and-spoke topology of scripts/topology.sh in
 * namespaces, `vnet-xdp up` on a config, and the pinned program of every interface ready
 * for BPF_PROG_TEST_RUN. A test file names its gateway, says where the config comes from,
 * then runs frames:
 *
 *   static struct gateway_harness gw = { .prefix = "vxpkt", .gateway = "pkt" };
 *   setup:    harness_up(&gw)   (harness_init(&gw) first when the test writes the config)
 *   test:     harness_require(&gw); struct harness_result r = harness_run(&gw, HUB, &frame);
 *   teardown: harness_down(&gw)
 *
 * The process stays in the gateway's namespace between setup and teardown, pinned to
 * CPU 0, so BPF_PROG_TEST_RUN and the decision trace it reads are CPU 0's. */
#ifndef TESTS_PACKET_GATEWAY_HARNESS_H
#define TESTS_PACKET_GATEWAY_HARNESS_H

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>
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
	/* Set by the test file. */
	const char *prefix;  /* namespace prefix, unique per test file; the pid is appended */
	const char *gateway; /* gateway name, unique per test file; the pid is appended */
	/* Shell command (run after sourcing scripts/topology.sh) printing the config on
	 * stdout, with $GATEWAY the gateway's name; NULL or "" for the topology's default. */
	const char *config_command;
	/* The test writes the config to config_path itself, after harness_init. */
	bool config_written;
	/* Shell commands run before `up`, once the neighbours are set; $GATEWAY_NS is the
	 * gateway's namespace (routes the test needs, say). NULL for none. */
	const char *gateway_setup;

	/* Set by the harness. */
	char name[48];        /* the gateway's name: gateway and pid */
	char ns_prefix[48];   /* the namespaces' prefix: prefix and pid */
	char config_path[128];
	char pin_dir[128];
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

/* Names carry the process id: checkouts running the suites at once do not collide. */
static inline void harness_init(struct gateway_harness *h)
{
	static const char *names[HARNESS_IFACES] = { "to-hub", "to-spoke1", "to-spoke2", "uplink0" };

	if (h->name[0])
		return;
	snprintf(h->ns_prefix, sizeof(h->ns_prefix), "%s%d", h->prefix, (int)getpid());
	snprintf(h->name, sizeof(h->name), "%s%d", h->gateway, (int)getpid());
	snprintf(h->config_path, sizeof(h->config_path), "/tmp/vnet-xdp-%s.json", h->name);
	snprintf(h->pin_dir, sizeof(h->pin_dir), VNET_XDP_PIN_ROOT "/%s", h->name);
	for (int i = 0; i < HARNESS_IFACES; i++)
		h->ifaces[i].name = names[i];
}

/* False, with the reason, where the gateway cannot be built: its tests are skipped. */
static inline bool harness_can_run(struct gateway_harness *h)
{
	if (geteuid() != 0) {
		h->why_not = "needs root for network namespaces and BPF";
		return false;
	}
	return true;
}

/* A pinned map (or program) of the gateway by name; -1 when it is not there. */
static inline int harness_map(const struct gateway_harness *h, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", h->pin_dir, name);
	return bpf_obj_get(path);
}

/* The program attached to every interface; reload replaces them. */
/* The datapath writes its per-CPU decision trace only when the reader asks for it. */
static inline int harness_traces_arm(int traces_fd)
{
	int cpus = libbpf_num_possible_cpus();
	uint32_t zero = 0;

	if (cpus <= 0)
		return -1;
	struct decision_trace traces[cpus];

	memset(traces, 0, sizeof(traces));
	for (int c = 0; c < cpus; c++)
		traces[c].armed = 1;
	return bpf_map_update_elem(traces_fd, &zero, traces, BPF_ANY);
}

static inline int harness_open_programs(struct gateway_harness *h)
{
	char name[32];

	for (int i = 0; i < HARNESS_IFACES; i++) {
		if (h->ifaces[i].prog_fd > 0)
			close(h->ifaces[i].prog_fd);
		snprintf(name, sizeof(name), "xdp_%u", h->ifaces[i].ifindex);
		h->ifaces[i].prog_fd = harness_map(h, name);
		if (h->ifaces[i].prog_fd < 0)
			return -1;
	}
	return 0;
}

/* Builds the namespaces and brings the gateway up. */
static inline int harness_up(struct gateway_harness *h)
{
	char path[128];
	cpu_set_t cpus;
	int ns;

	harness_init(h);
	if (!harness_can_run(h))
		return 0;
	/* Static neighbours make the kernel's answer to bpf_fib_lookup, and so the MACs of
	 * every forwarded frame, known in advance. The VMs stop soliciting routers: a
	 * solicitation crossing the gateway on CPU 0 would overwrite a test's trace. */
	if (setenv("CONFIG_COMMAND", h->config_command && !h->config_written ? h->config_command : "", 1) ||
	    setenv("GATEWAY_SETUP", h->gateway_setup ? h->gateway_setup : "", 1) ||
	    harness_shell(
		    "GATEWAY=%s GATEWAY_NS=%s-gw CONFIG=%s WRITTEN=%d bash -c '"
		    ". scripts/topology.sh && topology_down %s && topology_up %s"
		    " && for ns in hub spoke1 spoke2 internet; do nsenter --net=/run/netns/%s-$ns"
		    " sysctl -qw net.ipv6.conf.eth0.router_solicitations=0 || true; done"
		    " && { [ $WRITTEN = 1 ] || eval \"${CONFIG_COMMAND:-topology_config $GATEWAY}\" > $CONFIG; }"
		    " && for n in 10 11 12; do v=$([ $n = 10 ] && echo hub || echo spoke$((n-10)));"
		    " ip -n $GATEWAY_NS neigh replace 10.$n.1.4 lladdr 02:00:00:00:$n:04 dev to-$v nud permanent;"
		    " ip -n $GATEWAY_NS neigh replace fd00:$n:0:1::4 lladdr 02:00:00:00:$n:04 dev to-$v nud permanent; done"
		    " && ip -n $GATEWAY_NS neigh replace 198.51.100.2 lladdr " UPLINK_PEER_MAC " dev uplink0 nud permanent"
		    " && eval \"${GATEWAY_SETUP:-true}\""
		    " && nsenter --net=/run/netns/$GATEWAY_NS %s/vnet-xdp down -n $GATEWAY >/dev/null 2>&1;"
		    " nsenter --net=/run/netns/$GATEWAY_NS %s/vnet-xdp up -c $CONFIG'",
		    h->name, h->ns_prefix, h->config_path, h->config_written, h->ns_prefix,
		    h->ns_prefix, h->ns_prefix, harness_build_dir(), harness_build_dir())) {
		h->why_not = "could not build the topology or bring the gateway up";
		return -1;
	}
	h->host_netns = open("/proc/self/ns/net", O_RDONLY);
	snprintf(path, sizeof(path), "/run/netns/%s-gw", h->ns_prefix);
	ns = open(path, O_RDONLY);
	if (ns < 0 || setns(ns, CLONE_NEWNET)) {
		h->why_not = "cannot enter the gateway's namespace";
		return -1;
	}
	close(ns);
	/* Every trace read is this CPU's: BPF_PROG_TEST_RUN runs on the caller's CPU. */
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);

	for (int i = 0; i < HARNESS_IFACES; i++)
		h->ifaces[i].ifindex = if_nametoindex(h->ifaces[i].name);
	if (harness_open_programs(h)) {
		h->why_not = "the gateway's program is not pinned";
		return -1;
	}
	h->traces_fd = harness_map(h, "decision_traces");
	if (h->traces_fd >= 0 && harness_traces_arm(h->traces_fd)) {
		h->why_not = "cannot arm the decision traces";
		return -1;
	}
	h->drops_fd = harness_map(h, "drop_counters");
	h->datapath_fd = harness_map(h, "datapath_counters");
	h->peerings_fd = harness_map(h, "peering_counters");
	h->ready = h->traces_fd >= 0 && h->drops_fd >= 0 && h->datapath_fd >= 0 && h->peerings_fd >= 0;
	if (!h->ready)
		h->why_not = "the gateway's maps are not pinned";
	return h->ready ? 0 : -1;
}

/* `vnet-xdp reload` of the config file as it is now; the programs are new afterwards. */
static inline int harness_reload(struct gateway_harness *h)
{
	if (harness_shell("%s/vnet-xdp reload -c %s", harness_build_dir(), h->config_path))
		return -1;
	return harness_open_programs(h);
}

static inline void harness_down(struct gateway_harness *h)
{
	if (h->host_netns > 0)
		setns(h->host_netns, CLONE_NEWNET);
	if (geteuid() == 0 && h->name[0])
		harness_shell("nsenter --net=/run/netns/%s-gw %s/vnet-xdp down -n %s >/dev/null;"
			      " bash -c '. scripts/topology.sh && topology_down %s'; rm -f %s",
			      h->ns_prefix, harness_build_dir(), h->name, h->ns_prefix, h->config_path);
}

/* Skips the calling test, with the reason, when the gateway did not come up. */
static inline void harness_require(const struct gateway_harness *h)
{
	if (!h->ready) {
		print_message("skipped: %s\n", h->why_not ? h->why_not : "gateway not ready");
		skip();
	}
}

struct harness_result {
	int rc;       /* of bpf_prog_test_run_opts, or -1 when the trace could not be read */
	int verdict;  /* -1 when the frame did not run */
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

/* Runs one frame through the program of interface `iface` as if it arrived there; the
 * calling test fails when the frame cannot run or its trace cannot be read. The trace is
 * CPU 0's last decision, so a frame the VMs send meanwhile can overwrite it: then the
 * frame runs again, at most three times. */
static inline struct harness_result harness_run(const struct gateway_harness *h, int iface,
						const struct frame *in)
{
	struct harness_result r = { .verdict = -1 };
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
		if (r.rc) {
			r.verdict = -1;
			break;
		}
		r.verdict = opts.retval;
		r.out.len = opts.data_size_out;
		if (harness_trace(h, &r.trace)) {
			r.rc = -1;
			break;
		}
	} while (r.trace.sequence != before.sequence + 1 && r.runs < 3);
	assert_int_equal(r.rc, 0);
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

/* Dropped for `reason`: the verdict, the trace and that reason's counter say so. */
static inline void harness_assert_dropped(const struct gateway_harness *h, const struct frame *in,
					  int iface, enum drop_reason reason)
{
	uint64_t before = harness_counter(h->drops_fd, reason);
	struct harness_result r = harness_run(h, iface, in);

	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(r.trace.drop_reason, reason);
	assert_int_equal(harness_counter(h->drops_fd, reason), before + 1);
}

#endif

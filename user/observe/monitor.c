/* `vnet-xdp monitor`'s reader: the datapath's live events (bpf/monitor.h), read from its
 * ring buffer while the monitor says it listens, shown as text or as JSON lines. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>
#include "datapath/datapath.h"
#include "observe/flow_filter.h"
#include "datapath/gateway.h"
#include "lib/lock.h"
#include "lib/bpf_map.h"
#include "lib/log.h"
#include "observe/monitor.h"
#include "compile/nsg.h"
#include "datapath/nsg_write.h"
#include "datapath/state.h"
#include "vnet_xdp.h"

static const char *const drop_reason_names[] = DROP_REASON_NAMES;
static const char *const event_type_names[] = {
	[MONITOR_DROP] = "drop",
	[MONITOR_FLOW_BEGIN] = "flow-begin",
	[MONITOR_FLOW_END] = "flow-end",
	[MONITOR_SNAT_EXHAUSTED] = "snat-exhausted",
};
#define N_EVENT_TYPES (sizeof(event_type_names) / sizeof(*event_type_names))

struct monitor {
	struct monitor_options o;
	json_t *vnets;       /* the running config's VNet names, by index */
	struct nsg_ids ids;
	int64_t realtime_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	long shown;
	int fast_paths[2];   /* fast_paths4, fast_paths6; -1 when absent */
	struct if_nameindex *ifaces; /* where a flow's directions may come in */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int monitor_event_type_of_name(const char *name)
{
	for (size_t i = 1; i < N_EVENT_TYPES; i++)
		if (event_type_names[i] && !strcasecmp(name, event_type_names[i]))
			return (int)i;
	return -1;
}

static const char *vnet_name(const struct monitor *m, uint16_t vnet)
{
	return vnet == NSG_VNET_NONE ? NULL : json_string_value(json_array_get(m->vnets, vnet));
}

static bool event_has_ports(const struct monitor_event *e)
{
	return e->proto == IPPROTO_TCP || e->proto == IPPROTO_UDP;
}

static bool event_kept(const struct monitor *m, const struct monitor_event *e)
{
	struct flow_filter_entry fe = {
		.family = e->family, .proto = e->proto, .src = e->src, .dst = e->dst,
		.sport = event_has_ports(e) ? e->sport : -1,
		.dport = event_has_ports(e) ? e->dport : -1,
		.vnets = { vnet_name(m, e->src_vnet), vnet_name(m, e->dst_vnet) },
	};

	if (m->o.types && (e->type >= N_EVENT_TYPES || !(m->o.types & (1u << e->type))))
		return false;
	if (m->o.reason >= 0 && (int)e->drop_reason != m->o.reason)
		return false;
	return flow_filter_match(&m->o.filter, &fe);
}

static const char *protocol_text(uint8_t proto, char *buf, size_t size)
{
	const char *name = flow_protocol_name(proto);

	if (name)
		return name;
	snprintf(buf, size, "%u", proto);
	return buf;
}

/* Packets the fast path forwarded in one direction of a flow since its last confirmation:
 * its entry is keyed by the ingress interface, so each interface is asked. */
static void fast_path_pending(const struct monitor *m, const struct monitor_event *e, int reply,
			      uint64_t *packets, uint64_t *bytes)
{
	int v6 = e->family == AF_INET6, fd = m->fast_paths[v6];
	size_t n = v6 ? 16 : 4;

	for (const struct if_nameindex *i = m->ifaces; fd >= 0 && i && i->if_index; i++) {
		struct fast_path_key6 k6 = { .ingress_ifindex = i->if_index, .proto = e->proto };
		struct fast_path_key4 k4 = { .ingress_ifindex = i->if_index, .proto = e->proto };
		struct fast_path_entry entry;

		memcpy(v6 ? k6.src : k4.src, reply ? e->dst : e->src, n);
		memcpy(v6 ? k6.dst : k4.dst, reply ? e->src : e->dst, n);
		k4.sport = k6.sport = reply ? e->dport : e->sport;
		k4.dport = k6.dport = reply ? e->sport : e->dport;
		if (!bpf_map_lookup_elem(fd, v6 ? (void *)&k6 : (void *)&k4, &entry)) {
			*packets += entry.pending_packets;
			*bytes += entry.pending_bytes;
		}
	}
}

static json_t *event_json(const struct monitor *m, const struct monitor_event *e)
{
	char src[64], dst[64], proto[8], ifname[IF_NAMESIZE] = "";
	const char *sv = vnet_name(m, e->src_vnet), *dv = vnet_name(m, e->dst_vnet);
	int64_t wall = (int64_t)e->time_ns + m->realtime_offset_ns;
	char when[64];
	struct tm tm;
	time_t secs = (time_t)(wall / 1000000000);
	json_t *o;

	gmtime_r(&secs, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (long)(wall % 1000000000 / 1000));
	flow_endpoint_text(e->family, e->src, e->sport, event_has_ports(e), src, sizeof(src));
	flow_endpoint_text(e->family, e->dst, e->dport, event_has_ports(e), dst, sizeof(dst));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "time", when, "type",
		      e->type < N_EVENT_TYPES && event_type_names[e->type] ?
			      event_type_names[e->type] : "unknown",
		      "protocol", protocol_text(e->proto, proto, sizeof(proto)), "source", src,
		      "destination", dst);
	if (e->type == MONITOR_DROP || e->type == MONITOR_SNAT_EXHAUSTED)
		json_object_set_new(o, "reason", json_string(e->drop_reason < DROP_REASON_MAX ?
					drop_reason_names[e->drop_reason] : "unknown"));
	if (e->ifindex) {
		if (!if_indextoname(e->ifindex, ifname))
			snprintf(ifname, sizeof(ifname), "if%u", e->ifindex);
		json_object_set_new(o, "interface", json_string(ifname));
	}
	if (sv)
		json_object_set_new(o, "sourceVirtualNetwork", json_string(sv));
	if (dv)
		json_object_set_new(o, "destinationVirtualNetwork", json_string(dv));
	if (e->proto == IPPROTO_ICMP || e->proto == IPPROTO_ICMPV6)
		json_object_set_new(o, "icmpId", json_integer(e->sport));
	if (e->rule_id != NSG_NONE) {
		json_t *rule = nsg_ids_rule(&m->ids, e->rule_id);
		const char *nsg = nsg_ids_nsg_name(&m->ids, e->nsg_id);

		if (nsg)
			json_object_set_new(o, "nsg", json_string(nsg));
		if (rule && json_object_get(rule, "rule"))
			json_object_set(o, "rule", json_object_get(rule, "rule"));
	}
	if (e->type == MONITOR_FLOW_END) {
		/* The event has the flow table's counts; a connection that closes within one
		 * fast-path lease has most of its packets still waiting in the fast path. */
		uint64_t packets[2] = { e->packets[0], e->packets[1] };
		uint64_t bytes[2] = { e->bytes[0], e->bytes[1] };

		fast_path_pending(m, e, 0, &packets[0], &bytes[0]);
		fast_path_pending(m, e, 1, &packets[1], &bytes[1]);
		json_object_set_new(o, "packetsForward", json_integer((json_int_t)packets[0]));
		json_object_set_new(o, "packetsReverse", json_integer((json_int_t)packets[1]));
		json_object_set_new(o, "bytesForward", json_integer((json_int_t)bytes[0]));
		json_object_set_new(o, "bytesReverse", json_integer((json_int_t)bytes[1]));
	} else {
		json_object_set_new(o, "length", json_integer(e->len));
	}
	return o;
}

static void event_print_text(json_t *o)
{
	const char *reason = json_string_value(json_object_get(o, "reason"));
	const char *rule = json_string_value(json_object_get(o, "rule"));
	const char *nsg = json_string_value(json_object_get(o, "nsg"));
	const char *iface = json_string_value(json_object_get(o, "interface"));

	printf("%s %-14s %-6s %s -> %s", json_string_value(json_object_get(o, "time")) + 11,
	       json_string_value(json_object_get(o, "type")),
	       json_string_value(json_object_get(o, "protocol")),
	       json_string_value(json_object_get(o, "source")),
	       json_string_value(json_object_get(o, "destination")));
	if (iface)
		printf(" in %s", iface);
	if (reason)
		printf(" reason %s", reason);
	if (rule)
		printf(" rule %s/%s", nsg ? nsg : "?", rule);
	if (json_object_get(o, "packetsForward"))
		printf(" packets %lld/%lld bytes %lld/%lld",
		       json_integer_value(json_object_get(o, "packetsForward")),
		       json_integer_value(json_object_get(o, "packetsReverse")),
		       json_integer_value(json_object_get(o, "bytesForward")),
		       json_integer_value(json_object_get(o, "bytesReverse")));
	putchar('\n');
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct monitor *m = ctx;
	json_t *o;

	if (size < sizeof(struct monitor_event) || !event_kept(m, data))
		return 0;
	o = event_json(m, data);
	if (m->o.json) {
		char *line = json_dumps(o, JSON_COMPACT);

		if (line)
			puts(line);
		free(line);
	} else {
		event_print_text(o);
	}
	json_decref(o);
	fflush(stdout);
	m->shown++;
	return m->o.count && m->shown >= m->o.count ? 1 : 0; /* 1 stops the poll */
}

static int control_write(int fd, uint64_t until_ns, unsigned rate)
{
	struct monitor_control c = { .listening_until_ns = until_ns, .events_per_second = rate };
	uint32_t zero = 0;

	return bpf_map_update_elem(fd, &zero, &c, BPF_ANY) ? -errno : 0;
}

/* What the per-CPU bound and a full ring left out so far, summed over the CPUs. */
static void budget_left_out(int fd, uint64_t *rate_limited, uint64_t *ring_full)
{
	struct monitor_budget b;

	if (percpu_sum(fd, &(uint32_t){ 0 }, &b, sizeof(b)))
		memset(&b, 0, sizeof(b));
	*rate_limited = b.rate_limited;
	*ring_full = b.ring_full;
}

static int64_t realtime_offset(void)
{
	struct timespec r, mono;

	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	return ((int64_t)r.tv_sec - mono.tv_sec) * 1000000000 + (r.tv_nsec - mono.tv_nsec);
}

/* One monitor per gateway: the ring buffer has one reader. */
static int monitor_lock(const char *gateway)
{
	int fd = gateway_monitor_lock(gateway);

	/* `serve` writing flow logs holds the ring in turns of a second and lets go between
	 * them (user/observe/flow_log.c): a monitor waits one turn for it. */
	for (int tries = 0; fd == -EBUSY && tries < 25; tries++) {
		usleep(50000);
		fd = gateway_monitor_lock(gateway);
	}

	if (fd == -EBUSY)
		log_error("another `vnet-xdp monitor` reads the events of gateway %s", gateway);
	else if (fd < 0)
		log_error("cannot take the monitor lock of gateway %s: %s", gateway, strerror(-fd));
	return fd;
}

static int monitor_run(struct monitor *m, int events, int control, int budget)
{
	struct ring_buffer *rb = ring_buffer__new(events, on_event, m, NULL);
	uint64_t start = datapath_clock_ns(), renewed = 0, before_rl, before_rf, rl, rf;
	int err = 0;

	if (!rb)
		return -errno;
	budget_left_out(budget, &before_rl, &before_rf);
	while (!stop) {
		uint64_t now = datapath_clock_ns();

		if (m->o.timeout && now - start >= (uint64_t)(m->o.timeout * 1e9))
			break;
		if (now - renewed >= 1000000000ull) {
			err = control_write(control, now + 2000000000ull, m->o.rate);
			if (err)
				break;
			renewed = now;
		}
		err = ring_buffer__poll(rb, 200);
		if (err == -EINTR) {
			err = 0;
			continue;
		}
		if (err < 0)
			break;
		if (m->o.count && m->shown >= m->o.count)
			break;
		err = 0;
	}
	control_write(control, 0, m->o.rate);
	ring_buffer__free(rb);
	budget_left_out(budget, &rl, &rf);
	if (rl - before_rl || rf - before_rf)
		log_warn("%llu events left out by the rate bound, %llu by a full ring",
			 (unsigned long long)(rl - before_rl), (unsigned long long)(rf - before_rf));
	return err < 0 ? err : 0;
}

int monitor_follow(const char *gateway, const struct monitor_options *o)
{
	struct monitor m = { .o = *o };
	int events = -1, control = -1, budget = -1, lock = -1, err = -ENOENT;
	json_t *state;

	events = datapath_map_open(gateway, MAP_monitor_events);
	control = datapath_map_open(gateway, MAP_monitor_control);
	budget = datapath_map_open(gateway, MAP_monitor_budget);
	if (events < 0 || control < 0 || budget < 0) {
		log_error("gateway %s runs a datapath without live events (`vnet-xdp down` and `up` "
			  "bring one that has them)", gateway);
		goto out;
	}
	lock = monitor_lock(gateway);
	if (lock < 0) {
		err = lock;
		goto out;
	}
	state = state_load(gateway);
	m.vnets = json_incref(json_object_get(state, "virtualNetworks"));
	json_decref(state);
	nsg_ids_load(gateway, &m.ids);
	m.realtime_offset_ns = realtime_offset();
	m.fast_paths[0] = datapath_map_open(gateway, MAP_fast_paths4);
	m.fast_paths[1] = datapath_map_open(gateway, MAP_fast_paths6);
	m.ifaces = if_nameindex();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	err = monitor_run(&m, events, control, budget);
	if (err)
		log_error("cannot read the events of gateway %s: %s", gateway, strerror(-err));
	json_decref(m.vnets);
	nsg_ids_free(&m.ids);
	for (int i = 0; i < 2; i++)
		if (m.fast_paths[i] >= 0)
			close(m.fast_paths[i]);
	if (m.ifaces)
		if_freenameindex(m.ifaces);
out:
	if (lock >= 0)
		close(lock);
	if (events >= 0)
		close(events);
	if (control >= 0)
		close(control);
	if (budget >= 0)
		close(budget);
	return err;
}

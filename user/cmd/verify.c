#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <jansson.h>
#include "lib/cli.h"
#include "compile/effective_routes.h"
#include "datapath/attach.h"
#include "datapath/datapath.h"
#include "datapath/gateway.h"
#include "lib/gateway_name.h"
#include "lib/bpf_map.h"
#include "lib/log.h"
#include "compile/nsg.h"
#include "datapath/nsg_write.h"
#include "compile/plan.h"
#include "datapath/express_route.h"
#include "datapath/state.h"
#include "cmd/verify.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define FRAME_SIZE 256

static const char *const drop_reason_names[] = DROP_REASON_NAMES;
static const char *const datapath_counter_names[] = DATAPATH_COUNTER_NAMES;

struct endpoint {
	struct ip_address address;
	int port; /* -1: none given */
};

/* IP, IP:PORT (IPv4) or [IPv6]:PORT. */
static int endpoint_parse(const char *text, struct endpoint *out)
{
	char buf[128], *colon;

	out->port = -1;
	snprintf(buf, sizeof(buf), "%s", text);
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (!close)
			return -EINVAL;
		*close = '\0';
		if (close[1] == ':')
			out->port = atoi(close + 2);
		else if (close[1])
			return -EINVAL;
		memmove(buf, buf + 1, strlen(buf));
	} else if ((colon = strchr(buf, ':')) && !strchr(colon + 1, ':')) {
		*colon = '\0';
		out->port = atoi(colon + 1);
	}
	if (out->port > 65535)
		return -EINVAL;
	return ip_address_parse(buf, &out->address);
}

static uint32_t checksum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	return sum;
}

static uint16_t checksum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* Ethernet + IP + a TCP SYN, UDP datagram or ICMP echo request, with valid checksums.
 * The fingerprint (IPv4 id or IPv6 flow label) finds this packet's trace again. */
static size_t frame_synthesize(uint8_t *f, const uint8_t *dst_mac, const uint8_t *src_mac,
			       const struct endpoint *src, const struct endpoint *dst, int proto,
			       uint32_t fingerprint)
{
	bool v4 = src->address.family == AF_INET;
	size_t ip_len = v4 ? 20 : 40, l4_len = proto == IPPROTO_TCP ? 20 : 8;
	uint8_t *ip = f + 14, *l4 = ip + ip_len;
	uint8_t l4_proto = proto == IPPROTO_ICMP && !v4 ? IPPROTO_ICMPV6 : proto;
	uint32_t sum = 0;

	memset(f, 0, 14 + ip_len + l4_len);
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	put16(f + 12, v4 ? 0x0800 : 0x86dd);
	if (l4_proto == IPPROTO_TCP) {
		put16(l4, src->port >= 0 ? src->port : 49152);
		put16(l4 + 2, dst->port);
		l4[12] = 5 << 4;
		l4[13] = 0x02; /* SYN */
		put16(l4 + 14, 65535);
	} else if (l4_proto == IPPROTO_UDP) {
		put16(l4, src->port >= 0 ? src->port : 49152);
		put16(l4 + 2, dst->port);
		put16(l4 + 4, 8);
	} else {
		l4[0] = l4_proto == IPPROTO_ICMPV6 ? 128 : 8;
		put16(l4 + 4, src->port >= 0 ? src->port : 1);
		put16(l4 + 6, 1);
	}
	if (v4) {
		ip[0] = 0x45;
		put16(ip + 2, ip_len + l4_len);
		put16(ip + 4, fingerprint & 0xffff);
		ip[8] = 64;
		ip[9] = l4_proto;
		memcpy(ip + 12, src->address.addr, 4);
		memcpy(ip + 16, dst->address.addr, 4);
		put16(ip + 10, checksum_fold(checksum_add(0, ip, 20)));
	} else {
		ip[0] = 0x60 | ((fingerprint >> 16) & 0xf);
		put16(ip + 2, fingerprint & 0xffff);
		put16(ip + 4, l4_len);
		ip[6] = l4_proto;
		ip[7] = 64;
		memcpy(ip + 8, src->address.addr, 16);
		memcpy(ip + 24, dst->address.addr, 16);
	}
	if (l4_proto != IPPROTO_ICMP) {
		size_t alen = v4 ? 4 : 16;

		sum = checksum_add(sum, src->address.addr, alen);
		sum = checksum_add(sum, dst->address.addr, alen);
		sum += l4_proto + l4_len;
	}
	sum = checksum_add(sum, l4, l4_len);
	put16(l4 + (l4_proto == IPPROTO_TCP ? 16 : l4_proto == IPPROTO_UDP ? 6 : 2),
	      checksum_fold(sum));
	return 14 + ip_len + l4_len;
}

static void interface_mac(const char *name, uint8_t *mac)
{
	struct ifreq req = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(mac, 0, 6);
	snprintf(req.ifr_name, sizeof(req.ifr_name), "%s", name);
	if (fd >= 0 && !ioctl(fd, SIOCGIFHWADDR, &req))
		memcpy(mac, req.ifr_hwaddr.sa_data, 6);
	if (fd >= 0)
		close(fd);
}

/* The MAC a frame from src on interface ifindex comes from: the NIC's that holds the
 * address there (nic_sources), else a forwarding NIC's there, else a MAC no NIC has. The
 * datapath judges a frame's source per NIC by its MAC. */
static void source_mac(const char *gateway, uint32_t ifindex, const struct endpoint *src,
		       uint8_t *mac)
{
	int fd = datapath_map_open(gateway, MAP_nic_sources);
	struct map_walk walk = MAP_WALK(fd, sizeof(struct nic_key));
	struct nic_key key;
	struct nic_info info;
	bool forwarder = false;

	memcpy(mac, (uint8_t[]){ 0x02, 0, 0, 0, 0, 0x01 }, 6);
	while (map_walk_next(&walk, &key)) {
		if (key.ifindex != ifindex || bpf_map_lookup_elem(fd, &key, &info))
			continue;
		if (key.family == src->address.family && !memcmp(key.addr, src->address.addr, 16)) {
			memcpy(mac, key.mac, 6);
			break;
		}
		if (!forwarder && !key.family && (info.flags & NIC_FLAG_IP_FORWARDING)) {
			memcpy(mac, key.mac, 6);
			forwarder = true;
		}
	}
	if (fd >= 0)
		close(fd);
}

static const char *xdp_action_name(int verdict)
{
	switch (verdict) {
	case XDP_ABORTED: return "aborted";
	case XDP_DROP: return "dropped";
	case XDP_PASS: return "passed to the kernel";
	case XDP_TX: return "sent back";
	case XDP_REDIRECT: return "forwarded";
	default: return "unknown";
	}
}

static const char *flow_outcome_name(uint32_t outcome)
{
	static const char *const names[] = { "none", "exempt", "new", "existing", "expired",
					     "re-evaluated", "denied",
					     "error of an existing flow",
					     "error of no flow, judged alone" };

	return outcome < sizeof(names) / sizeof(*names) ? names[outcome] : "unknown";
}

static const char *const stage_names[NSG_STAGES] = { "source NIC", "source subnet",
						      "destination subnet", "destination NIC" };

static json_t *stage_json(const struct nsg_ids *ids, int stage, const struct nsg_decision *d)
{
	json_t *o = json_pack("{s:s, s:s}", "stage", stage_names[stage], "direction",
			      stage < NSG_STAGE_DESTINATION_SUBNET ? "Outbound" : "Inbound");
	const char *nsg = d->nsg_id == NSG_NONE ? NULL : nsg_ids_nsg_name(ids, d->nsg_id);
	json_t *rule = d->rule_id == NSG_NONE ? NULL : nsg_ids_rule(ids, d->rule_id);

	json_object_set_new(o, "networkSecurityGroup", nsg ? json_string(nsg) : json_null());
	if (d->nsg_id != NSG_NONE && d->rule_id != NSG_NONE) {
		json_object_set(o, "rule", rule ? json_object_get(rule, "rule") : json_null());
		json_object_set_new(o, "priority", rule ? json_copy(json_object_get(rule, "priority"))
							: json_integer(d->priority));
		json_object_set(o, "access", rule ? json_object_get(rule, "access") :
				json_string(d->access ? "Deny" : "Allow"));
	}
	return o;
}

static const char *vnet_name(json_t *state, uint32_t vnet)
{
	return json_string_value(json_array_get(json_object_get(state, "virtualNetworks"), vnet));
}

/* How much of the pipeline the established-flow cache stood in for (bpf/fastpath.h). */
static const char *fast_path_kind_name(uint32_t kind)
{
	switch (kind) {
	case FAST_PATH_NONE: return "none";
	case FAST_PATH_CACHED: return "cached";
	case FAST_PATH_LEASED: return "leased";
	default: return "?";
	}
}

static bool is_uplink(const struct config *cfg, const uint32_t *ifindexes, uint32_t ifindex)
{
	for (size_t i = 0; i < cfg->n_ifaces; i++)
		if (ifindexes[i] == ifindex)
			return cfg->ifaces[i].role == IFACE_UPLINK;
	return false;
}

/* The route that decided, as `routes` shows it: the running config's plan looked up in
 * the scope the trace names, for the packet's destination. NULL where the trace names no
 * scope (the fast path looks nothing up; the uplink's replies follow their mapping) or
 * the config cannot be read. */
static json_t *deciding_route(json_t *state, const struct decision_trace *t,
			      const struct ip_address *dst)
{
	const char *path = json_string_value(json_object_get(state, "config"));
	uint32_t ifindexes[MAX_INTERFACES] = { 0 };
	const struct plan_route *route;
	struct config *cfg = NULL;
	json_t *out = NULL;
	struct plan plan;
	FILE *quiet;

	if (!path || !t->route_type || t->fast_path != FAST_PATH_NONE)
		return NULL;
	quiet = fopen("/dev/null", "w");
	if (!quiet || config_load(path, quiet, &cfg)) {
		if (quiet)
			fclose(quiet);
		return NULL;
	}
	fclose(quiet);
	for (size_t i = 0; i < cfg->n_ifaces && i < MAX_INTERFACES; i++)
		ifindexes[i] = if_nametoindex(cfg->ifaces[i].name);
	if (cfg->n_ifaces <= MAX_INTERFACES && !is_uplink(cfg, ifindexes, t->ingress_ifindex) &&
	    !express_route_plan_build(cfg, ifindexes, &plan, NULL)) {
		route = plan_route_lookup(&plan, t->route_scope, dst);
		if (route)
			out = effective_route_json(cfg, route, ifindexes);
		plan_free(&plan);
	}
	config_free(cfg);
	return out;
}

static json_t *result_json(const struct decision_trace *t, json_t *state,
			   const struct nsg_ids *ids, json_t *effective_route)
{
	json_t *out = json_object(), *stages = json_array(), *route;
	char egress[IF_NAMESIZE] = "";

	json_object_set_new(out, "verdict", json_string(xdp_action_name((int)t->verdict)));
	if (t->verdict == XDP_DROP && t->drop_reason < DROP_REASON_MAX)
		json_object_set_new(out, "dropReason", json_string(drop_reason_names[t->drop_reason]));
	else if (t->counter < DATAPATH_COUNTER_MAX)
		json_object_set_new(out, "action", json_string(datapath_counter_names[t->counter]));
	if (t->route_type) {
		if_indextoname(t->egress_ifindex, egress);
		route = json_pack("{s:s, s:s}", "nextHopType", route_type_name(t->route_type),
				  "interface", egress);
		if (vnet_name(state, t->src_vnet))
			json_object_set_new(route, "sourceVirtualNetwork",
					    json_string(vnet_name(state, t->src_vnet)));
		if (t->route_type != ROUTE_NONE && vnet_name(state, t->dst_vnet))
			json_object_set_new(route, "virtualNetwork",
					    json_string(vnet_name(state, t->dst_vnet)));
		if (effective_route)
			json_object_set(route, "effectiveRoute", effective_route);
		json_object_set_new(out, "route", route);
	}
	for (int i = 0; i < NSG_STAGES; i++)
		json_array_append_new(stages, stage_json(ids, i, &t->nsg[i]));
	json_object_set_new(out, "networkSecurityGroups", stages);
	json_object_set_new(out, "flow", json_string(flow_outcome_name(t->flow)));
	json_object_set_new(out, "fastPath", json_string(fast_path_kind_name(t->fast_path)));
	return out;
}

static void result_print(json_t *r)
{
	json_t *route = json_object_get(r, "route"), *it;
	size_t i;

	printf("verdict  %s", json_string_value(json_object_get(r, "verdict")));
	if (json_object_get(r, "dropReason"))
		printf(" (%s)", json_string_value(json_object_get(r, "dropReason")));
	else if (json_object_get(r, "action"))
		printf(" (%s)", json_string_value(json_object_get(r, "action")));
	printf("\nroute    ");
	if (route)
		printf("%s %s%s%s%s\n", json_string_value(json_object_get(route, "nextHopType")),
		       json_object_get(route, "virtualNetwork") ? "to " : "",
		       json_object_get(route, "virtualNetwork") ?
			       json_string_value(json_object_get(route, "virtualNetwork")) : "",
		       *json_string_value(json_object_get(route, "interface")) ? " via " : "",
		       json_string_value(json_object_get(route, "interface")));
	else
		printf("-\n");
	if (route && json_object_get(route, "effectiveRoute")) {
		json_t *e = json_object_get(route, "effectiveRoute");

		printf("         %s (%s%s%s%s%s)\n",
		       json_string_value(json_object_get(e, "addressPrefix")),
		       json_string_value(json_object_get(e, "source")),
		       json_object_get(e, "name") ? ": " : "",
		       json_object_get(e, "name") ?
			       json_string_value(json_object_get(e, "routeTable")) : "",
		       json_object_get(e, "name") ? "/" : "",
		       json_object_get(e, "name") ? json_string_value(json_object_get(e, "name")) : "");
	}
	json_array_foreach(json_object_get(r, "networkSecurityGroups"), i, it) {
		const char *nsg = json_string_value(json_object_get(it, "networkSecurityGroup"));

		printf("%-8s %-19s ", json_string_value(json_object_get(it, "direction")),
		       json_string_value(json_object_get(it, "stage")));
		if (!nsg)
			printf("-\n");
		else if (!json_object_get(it, "rule"))
			printf("%s: not reached\n", nsg);
		else
			printf("%s: %s (priority %lld, %s)\n", nsg,
			       json_string_value(json_object_get(it, "rule")) ?: "?",
			       json_integer_value(json_object_get(it, "priority")),
			       json_string_value(json_object_get(it, "access")));
	}
	printf("flow     %s\n", json_string_value(json_object_get(r, "flow")));
	printf("fastpath %s\n", json_string_value(json_object_get(r, "fastPath")));
	if (json_object_get(r, "nsPerRun"))
		printf("time     %lld ns per run (%lld runs)\n",
		       json_integer_value(json_object_get(r, "nsPerRun")),
		       json_integer_value(json_object_get(r, "runs")));
}

/* Runs the frame and reads this CPU's trace; retried when live traffic on the same CPU
 * overwrote it before it was read. */
static int run_traced(int prog_fd, int traces_fd, uint32_t ifindex, uint8_t *frame, size_t len,
		      uint32_t fingerprint, struct decision_trace *trace)
{
	int cpus = percpu_count();
	struct decision_trace *traces;
	uint32_t zero = 0;
	int err = -EAGAIN;

	if (cpus <= 0 || !(traces = calloc(cpus, sizeof(*traces))))
		return -ENOMEM;
	for (int attempt = 0; attempt < 5 && err == -EAGAIN; attempt++) {
		uint8_t out[FRAME_SIZE];
		struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifindex };
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = len,
			    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1);

		if (bpf_prog_test_run_opts(prog_fd, &opts) ||
		    bpf_map_lookup_elem(traces_fd, &zero, traces)) {
			err = -errno;
			break;
		}
		if (traces[0].fingerprint == fingerprint && traces[0].ingress_ifindex == ifindex) {
			*trace = traces[0];
			trace->verdict = opts.retval;
			err = 0;
		}
	}
	free(traces);
	return err;
}

/* The program's mean time per run over `repeat` runs of the frame. BPF_PROG_TEST_RUN's
 * own repeat runs every repetition on one buffer, so the program's rewrite (TTL, MACs,
 * SNAT) of one run would be the next run's input: a forwarded frame's TTL runs out after
 * 63 runs and the rest would time the TTL-expired path. Each run here starts from the
 * original frame instead; the kernel's figure of a single run includes one clock read. */
static int64_t run_timed(int prog_fd, uint32_t ifindex, const uint8_t *frame, size_t len,
			 uint32_t repeat)
{
	uint8_t in[FRAME_SIZE], out[FRAME_SIZE];
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifindex };
	uint64_t total = 0;

	if (len > sizeof(in))
		return -EINVAL;
	for (uint32_t i = 0; i < repeat; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = len,
			    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1);

		memcpy(in, frame, len);
		if (bpf_prog_test_run_opts(prog_fd, &opts))
			return -errno;
		total += opts.duration;
	}
	return repeat ? (int64_t)(total / repeat) : 0;
}

struct verify_options {
	const char *in, *src, *dst, *proto, *name;
	bool json;
	long repeat;
};

static int parse_verify_options(int argc, char **argv, struct verify_options *o)
{
	static const struct option longopts[] = {
		{ "in", required_argument, NULL, 'i' },
		{ "src", required_argument, NULL, 's' },
		{ "dst", required_argument, NULL, 'd' },
		{ "proto", required_argument, NULL, 'p' },
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "repeat", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:j", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o->in = optarg; break;
		case 's': o->src = optarg; break;
		case 'd': o->dst = optarg; break;
		case 'p': o->proto = optarg; break;
		case 'n': o->name = optarg; break;
		case 'j': o->json = true; break;
		case 'r': o->repeat = strtol(optarg, NULL, 10); break;
		default:
			cli_option_error("verify", c, argv);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vnet-xdp verify: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!o->in || !o->src || !o->dst || !o->proto) {
		fputs("vnet-xdp verify: needs --in, --src, --dst and --proto\n", stderr);
		return -1;
	}
	if (o->repeat < 0 || o->repeat > 100000000) {
		fputs("vnet-xdp verify: --repeat is 0 to 100000000\n", stderr);
		return -1;
	}
	return 0;
}

static int protocol_of(const char *name)
{
	if (!strcasecmp(name, "tcp"))
		return IPPROTO_TCP;
	if (!strcasecmp(name, "udp"))
		return IPPROTO_UDP;
	if (!strcasecmp(name, "icmp"))
		return IPPROTO_ICMP;
	return -1;
}

int verify_main(int argc, char **argv)
{
	struct verify_options o = { 0 };
	struct endpoint src, dst;
	struct decision_trace trace = { 0 };
	struct xdp_generation *gen;
	struct nsg_ids ids = { 0 };
	char gateway[128], pin_dir[256];
	uint8_t frame[FRAME_SIZE], mac[6], from_mac[6];
	uint32_t ifindex, fingerprint;
	cpu_set_t one_cpu, saved;
	json_t *state, *result, *effective_route;
	int proto, traces_fd, err;
	size_t len;

	if (parse_verify_options(argc, argv, &o)) {
		cli_usage_hint("verify");
		return EXIT_USAGE;
	}
	if (gateway_name_check("verify", o.name))
		return EXIT_USAGE;
	proto = protocol_of(o.proto);
	if (proto < 0 || endpoint_parse(o.src, &src) || endpoint_parse(o.dst, &dst) ||
	    src.address.family != dst.address.family) {
		fprintf(stderr, "vnet-xdp verify: --src and --dst are addresses of one family "
			"(IP, IP:PORT, [IPV6]:PORT), --proto is tcp, udp or icmp\n");
		return EXIT_USAGE;
	}
	if (proto != IPPROTO_ICMP && dst.port < 0) {
		fprintf(stderr, "vnet-xdp verify: --dst needs a port for %s\n", o.proto);
		return EXIT_USAGE;
	}
	ifindex = if_nametoindex(o.in);
	if (!ifindex) {
		log_error("--in %s: no such interface in this network namespace", o.in);
		return EXIT_FAILED;
	}
	err = gateway_resolve_name(o.name, gateway, sizeof(gateway));
	if (err) {
		log_error(err == -EEXIST ? "several gateways are up; name one with -n"
					 : "no gateway is up");
		return EXIT_FAILED;
	}
	gateway_pin_dir(gateway, pin_dir, sizeof(pin_dir));
	traces_fd = datapath_map_open(gateway, MAP_decision_traces);
	if (traces_fd < 0) {
		log_error("gateway %s is not up", gateway);
		return EXIT_FAILED;
	}
	gen = xdp_dry_run_load(pin_dir);
	if (!gen) {
		log_error("cannot load the program's dry-run instance: %s", strerror(errno));
		close(traces_fd);
		return EXIT_FAILED;
	}
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	fingerprint = (uint32_t)rand() & (src.address.family == AF_INET ? 0xffff : 0xfffff);
	interface_mac(o.in, mac);
	source_mac(gateway, ifindex, &src, from_mac);
	len = frame_synthesize(frame, mac, from_mac, &src, &dst, proto, fingerprint);

	/* The trace is per CPU: run and read on one. */
	sched_getaffinity(0, sizeof(saved), &saved);
	CPU_ZERO(&one_cpu);
	CPU_SET(0, &one_cpu); /* the trace read below is CPU 0's */
	sched_setaffinity(0, sizeof(one_cpu), &one_cpu);
	err = run_traced(xdp_generation_fd(gen), traces_fd, ifindex, frame, len, fingerprint, &trace);
	if (err) {
		log_error("BPF_PROG_TEST_RUN: %s", strerror(-err));
		goto out;
	}
	state = state_load(gateway);
	nsg_ids_load(gateway, &ids);
	effective_route = deciding_route(state, &trace, &dst.address);
	result = result_json(&trace, state, &ids, effective_route);
	json_decref(effective_route);
	if (o.repeat > 0) {
		int64_t ns = run_timed(xdp_generation_fd(gen), ifindex, frame, len, (uint32_t)o.repeat);

		if (ns >= 0) {
			json_object_set_new(result, "nsPerRun", json_integer(ns));
			json_object_set_new(result, "runs", json_integer(o.repeat));
		}
	}
	if (o.json) {
		cli_json_print(result);
	} else {
		result_print(result);
	}
	json_decref(result);
	json_decref(state);
	nsg_ids_free(&ids);
out:
	sched_setaffinity(0, sizeof(saved), &saved);
	xdp_generation_close(gen);
	close(traces_fd);
	if (err)
		return EXIT_FAILED;
	/* A script asks "would it pass?" by the exit code alone. */
	return trace.verdict == XDP_DROP || trace.verdict == XDP_ABORTED ? CLI_EXIT_DROPPED : 0;
}

/* vxbench: the benchmark's traffic source and meters.
 *
 *   send  --dev IF --src-mac MAC --dst-mac MAC --src IP --dst IP [--proto udp|esp]
 *         [--sport N] [--dport N] [--flows N] [--count N] [--seconds S] [--size BYTES]
 *         [--cpu N] [--checksum full|partial]
 *       transmits frames out of IF with BPF_PROG_TEST_RUN in live-frames mode: the
 *       kernel runs a tiny XDP program that answers XDP_TX for every repetition, so one
 *       core puts several million frames a second into a veth (what xdp-trafficgen
 *       does). --flows N makes repetition i carry flow i % N (distinct source port and
 *       address), so every packet of a run can be the first of its flow. --checksum
 *       partial leaves the UDP checksum as a sender with transmit checksum offload on
 *       does (the folded pseudo-header sum only); full by default.
 *   sink  --dev IF --pin PATH      attach a count-and-drop XDP program, pin its counter
 *   count --pin PATH               print what a sink counted
 *   run   --prog PIN --dev IF --src IP --dst IP [--proto ...] [--repeat N] [...]
 *       BPF_PROG_TEST_RUN (not live) of a pinned program on one frame, repeated: prints
 *       the kernel's mean run time per repetition in ns and the program's verdict
 *   stat  --prog PIN               print run_cnt and run_time_ns (kernel.bpf_stats_enabled)
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "vxbench.skel.h"

#define IPPROTO_ESP_NUMBER 50

struct options {
	const char *dev, *src_mac, *dst_mac, *src, *dst, *proto, *pin, *prog;
	unsigned sport, dport, flows, size, repeat;
	long long count;
	double seconds;
	int cpu;
	bool partial; /* the UDP checksum as offload leaves it: the pseudo-header sum */
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "vxbench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

static int parse_mac(const char *text, unsigned char *mac)
{
	return sscanf(text, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3],
		      &mac[4], &mac[5]) == 6 ? 0 : -EINVAL;
}

static uint16_t checksum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t checksum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

/* Ethernet + IPv4 + UDP (or ESP: SPI and sequence number) padded to size bytes. */
static int frame_build(const struct options *o, unsigned char *frame, size_t *len)
{
	struct ethhdr *eth = (void *)frame;
	struct iphdr *ip = (void *)(eth + 1);
	unsigned char *l4 = (unsigned char *)(ip + 1);
	size_t size = o->size < 60 ? 60 : o->size;
	bool esp = o->proto && !strcmp(o->proto, "esp");

	if (size > 1500)
		return -EINVAL;
	memset(frame, 0, size);
	if (!o->src_mac || !o->dst_mac || !o->src || !o->dst || parse_mac(o->dst_mac, eth->h_dest) ||
	    parse_mac(o->src_mac, eth->h_source))
		return -EINVAL;
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->tot_len = htons(size - sizeof(*eth));
	ip->protocol = esp ? IPPROTO_ESP_NUMBER : IPPROTO_UDP;
	if (inet_pton(AF_INET, o->src, &ip->saddr) != 1 || inet_pton(AF_INET, o->dst, &ip->daddr) != 1)
		return -EINVAL;
	ip->check = htons(checksum_fold(checksum_add(0, ip, sizeof(*ip))));
	if (esp) {
		uint32_t spi = htonl(0x1000 + o->sport), seq = htonl(1);

		memcpy(l4, &spi, 4);
		memcpy(l4 + 4, &seq, 4);
	} else {
		struct udphdr *udp = (void *)l4;
		size_t udp_len = size - sizeof(*eth) - sizeof(*ip);
		uint32_t sum;

		udp->source = htons(o->sport);
		udp->dest = htons(o->dport);
		udp->len = htons(udp_len);
		sum = checksum_add(0, &ip->saddr, 8);
		sum += IPPROTO_UDP + udp_len;
		if (o->partial) {
			udp->check = htons((uint16_t)~checksum_fold(sum));
		} else {
			sum = checksum_add(sum, udp, udp_len);
			udp->check = htons(checksum_fold(sum) ?: 0xffff);
		}
	}
	*len = size;
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The sending thread's CPU time, precise to the scheduler's clock. The veths' NAPI runs
 * in this thread's softirqs, so it includes the gateway's and the receivers' work. */
static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fprintf(stderr, "vxbench: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
}

static int command_send(const struct options *o)
{
	unsigned char frame[1600];
	struct xdp_md ctx = {};
	struct vxbench_bpf *skel;
	long long sent = 0, limit = o->count > 0 ? o->count : -1;

	if (limit < 0 && o->seconds <= 0)
		return fail("send needs --count or --seconds", EINVAL);
	double start, elapsed, cpu_start;
	size_t len;
	int err;

	if (!o->dev || !(ctx.ingress_ifindex = if_nametoindex(o->dev)))
		return fail("--dev names no interface here", ENODEV);
	err = frame_build(o, frame, &len);
	if (err)
		return fail("--src, --dst, --src-mac and --dst-mac make the frame", err);
	pin_cpu(o->cpu);
	skel = vxbench_bpf__open();
	if (!skel)
		return fail("open the sender program", errno);
	skel->rodata->flows = o->flows;
	skel->rodata->first_port = o->sport;
	skel->rodata->first_address = ntohl(((struct iphdr *)(frame + sizeof(struct ethhdr)))->saddr);
	memcpy(skel->data->frame_headers, frame, sizeof(skel->data->frame_headers));
	err = vxbench_bpf__load(skel);
	if (err) {
		vxbench_bpf__destroy(skel);
		return fail("load the sender program", err);
	}
	ctx.data_end = len;
	cpu_start = thread_cpu();
	start = now();
	/* Stop at --count or after --seconds, whichever comes first; each syscall sends
	 * about 20 ms worth, so a slow path does not overshoot the time. */
	for (long long batch = 1024;;) {
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame, .data_size_in = len,
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);
		double t;

		if (limit >= 0 && limit - sent < batch)
			batch = limit - sent;
		if (batch <= 0)
			break;
		run.repeat = batch;
		err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.xdp_send), &run);
		if (err) {
			vxbench_bpf__destroy(skel);
			return fail("BPF_PROG_TEST_RUN in live-frames mode", errno);
		}
		sent += batch;
		t = now() - start;
		if (o->seconds > 0 && t >= o->seconds)
			break;
		batch = sent / t * 0.02;
		batch = batch < 64 ? 64 : batch > (1 << 18) ? (1 << 18) : batch;
	}
	elapsed = now() - start;
	printf("sent %lld seconds %.6f pps %.0f cpu_seconds %.6f\n", sent, elapsed, sent / elapsed,
	       thread_cpu() - cpu_start);
	vxbench_bpf__destroy(skel);
	return 0;
}

static int command_sink(const struct options *o)
{
	struct vxbench_bpf *skel;
	int ifindex, err;

	if (!o->dev || !(ifindex = if_nametoindex(o->dev)) || !o->pin)
		return fail("sink needs --dev IF and --pin PATH", EINVAL);
	skel = vxbench_bpf__open_and_load();
	if (!skel)
		return fail("load the sink program", errno);
	unlink(o->pin);
	err = bpf_map__pin(skel->maps.received, o->pin);
	if (!err)
		err = bpf_xdp_attach(ifindex, bpf_program__fd(skel->progs.xdp_sink), XDP_FLAGS_DRV_MODE, NULL);
	vxbench_bpf__destroy(skel);
	return err ? fail("pin and attach the sink", err) : 0;
}

static int command_count(const struct options *o)
{
	int n = libbpf_num_possible_cpus(), fd;
	unsigned long long total = 0;
	__u64 values[n > 0 ? n : 1];
	__u32 zero = 0;

	fd = o->pin ? bpf_obj_get(o->pin) : -EINVAL;
	if (fd < 0 || bpf_map_lookup_elem(fd, &zero, values))
		return fail("read the sink's counter", errno);
	for (int i = 0; i < n; i++)
		total += values[i];
	printf("%llu\n", total);
	return 0;
}

static int command_run(const struct options *o)
{
	unsigned char frame[1600], out[1600];
	struct xdp_md ctx = {};
	double ns_total = 0;
	unsigned runs = 0, retval = 0;
	size_t len;
	int fd, err;

	if (!o->prog || (fd = bpf_obj_get(o->prog)) < 0)
		return fail("--prog names no pinned program", errno);
	if (!o->dev || !(ctx.ingress_ifindex = if_nametoindex(o->dev)))
		return fail("--dev names no interface here", ENODEV);
	err = frame_build(o, frame, &len);
	if (err)
		return fail("--src, --dst, --src-mac and --dst-mac make the frame", err);
	pin_cpu(o->cpu);
	ctx.data_end = len;
	/* The kernel runs every repetition on the same buffer, so a forwarded frame loses
	 * one TTL each time: repeat in chunks that stay well above TTL 1, and average. */
	for (unsigned done = 0, total = o->repeat ? o->repeat : 600000; done < total;) {
		unsigned chunk = total - done < 60 ? total - done : 60;
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame, .data_size_in = len,
			    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = chunk);

		if (bpf_prog_test_run_opts(fd, &run))
			return fail("BPF_PROG_TEST_RUN", errno);
		ns_total += (double)run.duration * chunk;
		retval = run.retval;
		done += chunk;
		runs = done;
	}
	printf("ns %.1f verdict %u repeat %u\n", ns_total / runs, retval, runs);
	return 0;
}

static int command_stat(const struct options *o)
{
	struct bpf_prog_info info = {};
	__u32 info_len = sizeof(info);
	int fd;

	if (!o->prog || (fd = bpf_obj_get(o->prog)) < 0)
		return fail("--prog names no pinned program", errno);
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len))
		return fail("read the program's statistics", errno);
	printf("run_cnt %llu run_time_ns %llu\n", (unsigned long long)info.run_cnt,
	       (unsigned long long)info.run_time_ns);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dev", required_argument, NULL, 'd' },   { "src-mac", required_argument, NULL, 'M' },
		{ "dst-mac", required_argument, NULL, 'm' }, { "src", required_argument, NULL, 's' },
		{ "dst", required_argument, NULL, 't' },   { "proto", required_argument, NULL, 'p' },
		{ "sport", required_argument, NULL, 'S' }, { "dport", required_argument, NULL, 'D' },
		{ "flows", required_argument, NULL, 'f' }, { "count", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 'T' }, { "size", required_argument, NULL, 'z' },
		{ "cpu", required_argument, NULL, 'c' },   { "pin", required_argument, NULL, 'P' },
		{ "prog", required_argument, NULL, 'g' },  { "repeat", required_argument, NULL, 'r' },
		{ "checksum", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	struct options o = { .sport = 1024, .dport = 9, .size = 60, .cpu = -1 };
	const char *command = argc > 1 ? argv[1] : "";
	int c;

	while ((c = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.dev = optarg; break;
		case 'M': o.src_mac = optarg; break;
		case 'm': o.dst_mac = optarg; break;
		case 's': o.src = optarg; break;
		case 't': o.dst = optarg; break;
		case 'p': o.proto = optarg; break;
		case 'S': o.sport = strtoul(optarg, NULL, 0); break;
		case 'D': o.dport = strtoul(optarg, NULL, 0); break;
		case 'f': o.flows = strtoul(optarg, NULL, 0); break;
		case 'n': o.count = strtoll(optarg, NULL, 0); break;
		case 'T': o.seconds = strtod(optarg, NULL); break;
		case 'z': o.size = strtoul(optarg, NULL, 0); break;
		case 'c': o.cpu = atoi(optarg); break;
		case 'P': o.pin = optarg; break;
		case 'g': o.prog = optarg; break;
		case 'r': o.repeat = strtoul(optarg, NULL, 0); break;
		case 'k':
			if (strcmp(optarg, "full") && strcmp(optarg, "partial")) {
				fprintf(stderr, "vxbench: --checksum is full or partial\n");
				return 2;
			}
			o.partial = !strcmp(optarg, "partial");
			break;
		default:
			fprintf(stderr, "vxbench: unknown option\n");
			return 2;
		}
	}
	libbpf_set_print(NULL);
	if (!strcmp(command, "send"))
		return command_send(&o);
	if (!strcmp(command, "sink"))
		return command_sink(&o);
	if (!strcmp(command, "count"))
		return command_count(&o);
	if (!strcmp(command, "run"))
		return command_run(&o);
	if (!strcmp(command, "stat"))
		return command_stat(&o);
	fprintf(stderr, "usage: vxbench send|sink|count|run|stat [OPTIONS] (see the source's head)\n");
	return 2;
}

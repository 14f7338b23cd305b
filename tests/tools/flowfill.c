/* Fills a gateway's pinned flow table, and its SNAT reverse table toward its first VIP,
 * with COUNT made-up live entries, fast (bpf_map_update_batch): the tables a gateway
 * with a million flows has, for scrape-time tests and benchmarks.
 *   flowfill PIN_DIR COUNT
 * The flows are UDP between 198.51.100.0/24-style addresses in no VNet, stamped now so
 * that the GC keeps them for the idle timeout; the reverse entries take ports of the VIP
 * toward many remote addresses, with an hour's cool-down. Prints "flows N reverse N". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "vnet_xdp.h"

#define BATCH 8192

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int map_open(const char *dir, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		fprintf(stderr, "flowfill: %s: %s\n", path, strerror(errno));
	return fd;
}

/* Writes count entries made by make(i, key, value) in batches; returns how many. */
static long fill(int fd, long count, size_t key_size, size_t value_size,
		 void (*make)(long i, void *key, void *value, const void *ctx), const void *ctx)
{
	unsigned char *keys = calloc(BATCH, key_size), *values = calloc(BATCH, value_size);
	long done = 0;

	while (keys && values && done < count) {
		uint32_t n = count - done < BATCH ? (uint32_t)(count - done) : BATCH;

		memset(keys, 0, BATCH * key_size);
		memset(values, 0, BATCH * value_size);
		for (uint32_t i = 0; i < n; i++)
			make(done + i, keys + i * key_size, values + i * value_size, ctx);
		if (bpf_map_update_batch(fd, keys, values, &n, NULL)) {
			fprintf(stderr, "flowfill: batch update: %s\n", strerror(errno));
			done += n;
			break;
		}
		done += n;
	}
	free(keys);
	free(values);
	return done;
}

static void address_of(long i, uint8_t first, uint8_t *addr)
{
	addr[0] = first;
	addr[1] = (uint8_t)(i >> 16);
	addr[2] = (uint8_t)(i >> 8);
	addr[3] = (uint8_t)i;
}

static void make_flow(long i, void *key, void *value, const void *ctx)
{
	struct flow_key *k = key;
	struct flow_entry *f = value;
	uint64_t now = *(const uint64_t *)ctx;

	address_of(i, 198, k->addr_a);
	address_of(i, 203, k->addr_b);
	k->port_a = htons(1024 + i % 50000);
	k->port_b = htons(53);
	k->vnet_a = k->vnet_b = NSG_VNET_NONE;
	k->family = AF_INET;
	k->proto = IPPROTO_UDP;
	f->last_seen_ns = f->created_ns = now;
}

static void make_reverse(long i, void *key, void *value, const void *ctx)
{
	const struct address_key *vip = ctx;
	struct snat_flow_key *k = key;
	struct snat_reverse *r = value;

	k->family = (uint8_t)vip->family;
	k->proto = IPPROTO_UDP;
	address_of(i / 60000, 203, k->src);
	k->src_port = htons(53);
	memcpy(k->dst, vip->addr, 16);
	k->dst_port = htons(1024 + i % 60000);
	r->flow.family = k->family;
	r->flow.proto = IPPROTO_UDP;
	address_of(i, 10, r->flow.src);
	r->transitory_timeout_seconds = 3600;
}

int main(int argc, char **argv)
{
	struct address_key vip;
	long count, flows, reverse = 0;
	uint64_t now = now_ns();
	int flows_fd, vips_fd, reverse_fd;

	if (argc != 3 || (count = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: flowfill PIN_DIR COUNT\n");
		return 2;
	}
	flows_fd = map_open(argv[1], "flows");
	vips_fd = map_open(argv[1], "snat_vips");
	reverse_fd = map_open(argv[1], "snat_reverse");
	if (flows_fd < 0 || vips_fd < 0 || reverse_fd < 0)
		return 1;
	flows = fill(flows_fd, count, sizeof(struct flow_key), sizeof(struct flow_entry),
		     make_flow, &now);
	if (!bpf_map_get_next_key(vips_fd, NULL, &vip))
		reverse = fill(reverse_fd, count, sizeof(struct snat_flow_key),
			       sizeof(struct snat_reverse), make_reverse, &vip);
	printf("flows %ld reverse %ld\n", flows, reverse);
	return flows == count ? 0 : 1;
}

#include "lib/bpf_map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#ifndef ENOTSUPP
#define ENOTSUPP 524 /* the kernel's "operation not supported" for map batches */
#endif

bool map_walk_next(struct map_walk *walk, void *key)
{
	if (walk->fd < 0 || walk->key_size > sizeof(walk->prev) ||
	    bpf_map_get_next_key(walk->fd, walk->started ? walk->prev : NULL, key))
		return false;
	memcpy(walk->prev, key, walk->key_size);
	walk->started = true;
	return true;
}

int map_each_entry(int fd, size_t key_size, size_t value_size, map_entry_fn fn, void *ctx)
{
	enum { BATCH = 4096 };
	unsigned char *keys = malloc(BATCH * key_size), *values = malloc(BATCH * value_size);
	uint64_t in = 0, out = 0;
	bool first = true;
	int err = 0;

	if (!keys || !values) {
		free(keys);
		free(values);
		return -ENOMEM;
	}
	for (;;) {
		uint32_t count = BATCH;
		int rc = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, values, &count, NULL);
		bool done = rc && errno == ENOENT;

		if (rc && !done) {
			err = -errno;
			break;
		}
		for (uint32_t i = 0; i < count && !err; i++)
			err = fn(keys + i * key_size, values + i * value_size, ctx);
		if (done || err)
			break;
		in = out;
		first = false;
	}
	if (err == -EINVAL || err == -EOPNOTSUPP || err == -ENOTSUPP) {
		struct map_walk walk = MAP_WALK(fd, key_size);

		err = 0;
		while (!err && map_walk_next(&walk, keys))
			if (!bpf_map_lookup_elem(fd, keys, values))
				err = fn(keys, values, ctx);
	}
	free(keys);
	free(values);
	return err;
}

int map_clear(int fd, size_t key_size)
{
	struct map_walk walk = MAP_WALK(fd, key_size);
	size_t count = 0, capacity = 64;
	unsigned char *keys = malloc(capacity * key_size);
	int err = 0;

	if (key_size > MAP_KEY_MAX || !keys) {
		free(keys);
		return key_size > MAP_KEY_MAX ? -EINVAL : -ENOMEM;
	}
	for (;;) {
		if (count == capacity) {
			unsigned char *bigger = realloc(keys, capacity * 2 * key_size);

			if (!bigger) {
				free(keys);
				return -ENOMEM;
			}
			keys = bigger;
			capacity *= 2;
		}
		if (!map_walk_next(&walk, keys + count * key_size))
			break;
		count++;
	}
	for (size_t i = 0; i < count && !err; i++)
		if (bpf_map_delete_elem(fd, keys + i * key_size) && errno != ENOENT)
			err = -errno;
	free(keys);
	return err;
}

int percpu_count(void)
{
	static int cpus;

	if (!cpus) {
		int n = libbpf_num_possible_cpus();

		cpus = n > 0 ? n : 1;
	}
	return cpus;
}

/* The kernel lays per-CPU values out at 8-byte strides. */
static size_t percpu_stride(size_t value_size)
{
	return (value_size + 7) & ~(size_t)7;
}

int percpu_sum(int fd, const void *key, void *sum, size_t value_size)
{
	int cpus = percpu_count();
	size_t stride = percpu_stride(value_size), words = value_size / sizeof(uint64_t);
	unsigned char *values = calloc((size_t)cpus, stride);
	uint64_t *out = sum;
	int err = 0;

	memset(sum, 0, value_size);
	if (!values)
		return -ENOMEM;
	if (value_size % sizeof(uint64_t))
		err = -EINVAL;
	else if (bpf_map_lookup_elem(fd, key, values))
		err = -errno;
	for (int c = 0; !err && c < cpus; c++)
		for (size_t w = 0; w < words; w++) {
			uint64_t v;

			memcpy(&v, values + (size_t)c * stride + w * sizeof(v), sizeof(v));
			out[w] += v;
		}
	free(values);
	return err;
}

int percpu_zero(int fd, const void *key, size_t value_size, uint64_t flags)
{
	void *zero = calloc((size_t)percpu_count(), percpu_stride(value_size));
	int err = 0;

	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(fd, key, zero, flags) && !(flags == BPF_NOEXIST && errno == EEXIST))
		err = -errno;
	free(zero);
	return err;
}

int percpu_add(int fd, const void *key, uint64_t n)
{
	uint64_t *values = calloc((size_t)percpu_count(), sizeof(*values));
	int err = 0;

	if (!values)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, key, values))
		err = -errno;
	else {
		values[0] += n;
		if (bpf_map_update_elem(fd, key, values, BPF_EXIST))
			err = -errno;
	}
	free(values);
	return err;
}

/* The formula of user/datapath/limits.c against the running kernel: a map created with the flow
 * table's, the fast path caches' and the SNAT maps' key and value sizes is charged
 * (fdinfo `memlock:`) what hash_map_bytes says, so that `up` refuses exactly the sizes
 * that would not fit. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>
#include "datapath/limits.h"
#include "vnet_xdp.h"

static long long memlock_of(int fd)
{
	char path[64], line[256];
	long long bytes = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "memlock:", 8))
			bytes = atoll(line + 8);
	fclose(f);
	return bytes;
}

/* What the kernel charges and what the formula says differ by the size of struct
 * bpf_htab's fields, well under a kilobyte; nothing per entry. */
static void expect_charged(const char *name, enum bpf_map_type type, uint32_t key,
			   uint32_t value, uint32_t entries, bool preallocated)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = preallocated ? 0 : BPF_F_NO_PREALLOC);
	int fd = bpf_map_create(type, name, key, value, entries, &opts);
	long long charged, formula;

	if (fd < 0 && (errno == EPERM || errno == ENOSYS))
		skip();
	assert_true(fd >= 0);
	charged = memlock_of(fd);
	formula = (long long)hash_map_bytes(key, value, entries, preallocated,
					     libbpf_num_possible_cpus());
	print_message("%s, %u entries: charged %lld, formula %lld\n", name, entries, charged,
		      formula);
	assert_true(llabs(charged - formula) <= 1024);
	close(fd);
}

static void preallocated_maps_cost_what_the_formula_says(void **state)
{
	expect_charged("flows", BPF_MAP_TYPE_LRU_HASH, sizeof(struct flow_key),
		       sizeof(struct flow_entry), 65536, true);
	expect_charged("new_flows", BPF_MAP_TYPE_LRU_HASH, sizeof(struct flow_key),
		       sizeof(struct flow_entry), new_flow_table_entries(65536), true);
	expect_charged("fast_paths4", BPF_MAP_TYPE_LRU_HASH, sizeof(struct fast_path_key4),
		       sizeof(struct fast_path_entry), 100000, true);
	expect_charged("fast_paths6", BPF_MAP_TYPE_LRU_HASH, sizeof(struct fast_path_key6),
		       sizeof(struct fast_path_entry), 65536, true);
}

static void maps_without_preallocation_cost_their_buckets(void **state)
{
	expect_charged("snat_mappings", BPF_MAP_TYPE_HASH, sizeof(struct snat_flow_key),
		       sizeof(struct snat_mapping), 1048576, false);
	expect_charged("snat_reverse", BPF_MAP_TYPE_HASH, sizeof(struct snat_flow_key),
		       sizeof(struct snat_reverse), 100000, false);
	expect_charged("snat_vm_blocks", BPF_MAP_TYPE_HASH, sizeof(struct snat_vm_key),
		       sizeof(struct snat_vm_block), MAX_SNAT_BLOCKS, false);
	expect_charged("snat_block_owners", BPF_MAP_TYPE_HASH, sizeof(struct snat_block_key),
		       sizeof(struct snat_block_owner), MAX_SNAT_BLOCKS, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(preallocated_maps_cost_what_the_formula_says),
		cmocka_unit_test(maps_without_preallocation_cost_their_buckets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

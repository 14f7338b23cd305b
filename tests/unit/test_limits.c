/* The memory check of `up` and `reload`: the bytes the maps that limits size take, from
 * the key and value sizes of headers/vnet_xdp.h and the kernel's hash table layout, and
 * the one line that refuses a size the machine cannot hold. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "config/config.h"
#include "datapath/limits.h"
#include "vnet_xdp.h"

static struct config *config_with_limits(const char *limits)
{
	struct config *cfg = NULL;
	char *text;

	assert_true(asprintf(&text,
		"{\"gateway\": {\"name\": \"t\", \"interfaces\": [{\"name\": \"to-a\", "
		"\"virtualNetwork\": \"a\"}], \"limits\": {%s}},\n \"resources\": [\n"
		"{\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"a\", "
		"\"addressSpace\": {\"addressPrefixes\": [\"10.0.0.0/16\"]}}]}\n", limits) > 0);
	assert_int_equal(config_load_string(text, "t.json", stderr, &cfg), 0);
	free(text);
	return cfg;
}

#define ROUND8(n) (((uint64_t)(n) + 7) & ~7ULL)
/* the kernel's htab at two CPUs: fixed part, buckets, 48 + key + value per element */
#define PREALLOCATED(entries, buckets, key, value) \
	(1024 + 64 + 16ULL * (buckets) + (uint64_t)(entries) * (48 + ROUND8(key) + ROUND8(value)))
#define BUCKETS_ONLY(buckets) (1024 + 64 + 16ULL * (buckets))

static void hash_map_bytes_follow_the_kernel_layout(void **state)
{
	/* 1,000,000 entries take 2^20 buckets */
	assert_int_equal(hash_map_bytes(44, 88, 1000000, true, 2),
			 PREALLOCATED(1000000, 1 << 20, 44, 88));
	assert_int_equal(hash_map_bytes(40, 48, 1000000, false, 2), BUCKETS_ONLY(1 << 20));
}

/* 2^27 flows, the largest hash table the kernel makes: the flow table, its quarter for
 * new flows and the two fast path caches alone need more than 99 GB. */
static void a_flow_table_of_2_to_the_27_is_refused_with_its_byte_count(void **state)
{
	struct config *cfg = config_with_limits("\"flowTableSize\": 134217728");
	uint64_t flows = 1ULL << 27, snat = 1ULL << 20;
	uint64_t expected = PREALLOCATED(flows, flows, sizeof(struct flow_key),
					 sizeof(struct flow_entry)) +
			    PREALLOCATED(flows / 4, flows / 4, sizeof(struct flow_key),
					 sizeof(struct flow_entry)) +
			    PREALLOCATED(flows, flows, sizeof(struct fast_path_key4),
					 sizeof(struct fast_path_entry)) +
			    PREALLOCATED(flows, flows, sizeof(struct fast_path_key6),
					 sizeof(struct fast_path_entry)) +
			    BUCKETS_ONLY(snat) + BUCKETS_ONLY(snat) + BUCKETS_ONLY(MAX_SNAT_BLOCKS) +
			    BUCKETS_ONLY(MAX_SNAT_BLOCKS);
	uint64_t needed = limits_map_bytes(cfg, NULL, 2);
	char why[320], want[320];

	assert_int_equal(needed, expected);
	assert_true(needed > 98000000000ULL);
	assert_int_equal(limits_memory_fits(cfg, needed, 25000000000ULL, why, sizeof(why)),
			 -ENOMEM);
	snprintf(want, sizeof(want), "limits.flowTableSize 134217728 and limits.snatTableSize "
		 "1048576 need %llu bytes of kernel memory for their maps; this machine has "
		 "25000000000 bytes available; allowed: smaller limits",
		 (unsigned long long)expected);
	assert_string_equal(why, want);
	config_free(cfg);
}

/* The defaults, 262,144 flows (and 65,536 new ones) and 1,048,576 SNAT mappings, take
 * about 255 MB. */
static void the_default_limits_fit_a_small_machine(void **state)
{
	struct config *cfg = config_with_limits("");
	uint64_t needed = limits_map_bytes(cfg, NULL, 2);
	char why[320] = "";

	assert_true(needed > 200000000ULL && needed < 270000000ULL);
	assert_int_equal(limits_memory_fits(cfg, needed, 1ULL << 30, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	config_free(cfg);
}

/* A map already pinned is kept as it is: it needs nothing more. */
static void pinned_maps_need_nothing_more(void **state)
{
	struct config *cfg = config_with_limits("\"flowTableSize\": 134217728");
	char dir[] = "/tmp/vnet-xdp-limits-XXXXXX", path[64];
	const char *const names[] = { "flows", "new_flows", "fast_paths4", "fast_paths6",
				      "snat_mappings", "snat_reverse", "snat_vm_blocks",
				      "snat_block_owners" };

	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	}
	assert_int_equal(limits_map_bytes(cfg, dir, 2), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
	config_free(cfg);
}

/* Above the kernel's largest hash table the config itself is refused. */
static void a_flow_table_above_the_kernel_limit_is_refused_by_check(void **state)
{
	char *problems = NULL;
	size_t len = 0;
	FILE *errors = open_memstream(&problems, &len);
	struct config *cfg = NULL;
	int rc = config_load_string(
		"{\"gateway\": {\"name\": \"t\", \"interfaces\": [{\"name\": \"to-a\", "
		"\"virtualNetwork\": \"a\"}], \"limits\": {\"flowTableSize\": 2147483648}},\n"
		" \"resources\": [{\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"a\", "
		"\"addressSpace\": {\"addressPrefixes\": [\"10.0.0.0/16\"]}}]}\n", "t.json", errors,
		&cfg);

	fclose(errors);
	assert_int_equal(rc, 1);
	assert_string_equal(problems, "t.json:1:112: gateway.limits.flowTableSize: 2147483648 is "
			    "out of range 1024-134217728\n");
	free(problems);
}

static void memory_available_reads_the_machine(void **state)
{
	uint64_t bytes = 0;

	assert_int_equal(memory_available(&bytes), 0);
	assert_true(bytes > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hash_map_bytes_follow_the_kernel_layout),
		cmocka_unit_test(a_flow_table_of_2_to_the_27_is_refused_with_its_byte_count),
		cmocka_unit_test(the_default_limits_fit_a_small_machine),
		cmocka_unit_test(pinned_maps_need_nothing_more),
		cmocka_unit_test(a_flow_table_above_the_kernel_limit_is_refused_by_check),
		cmocka_unit_test(memory_available_reads_the_machine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

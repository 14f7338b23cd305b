#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include "datapath/limits.h"
#include "lib/bpf_map.h"
#include "lib/log.h"
#include "compile/nsg.h"
#include "vnet_xdp.h"

static uint64_t round_up_8(uint64_t n)
{
	return (n + 7) & ~7ULL;
}

static uint64_t power_of_two_at_least(uint64_t n)
{
	uint64_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/* The kernel's htab (kernel/bpf/hashtab.c, htab_map_mem_usage) takes
 *   bytes = 1024 (struct bpf_htab, rounded up) + 32 per possible CPU (bucket locks)
 *         + 16 (struct bucket) x max_entries rounded up to a power of two
 *         + when preallocated, per element: 48 (struct htab_elem, its LRU node
 *           included) + the key and the value, each rounded up to 8.
 * Measured on 6.18 at two CPUs with the flow table's, the fast path caches' and the SNAT
 * maps' key and value sizes, 1,024 to 4,194,304 entries: fdinfo's memlock was 128 bytes
 * under this every time (tests/packet/test_map_memory.c checks it on the running
 * kernel). Other maps have fixed sizes, a few MB together, and are left out. */
#define HTAB_FIXED_BYTES 1024
#define HTAB_LOCK_BYTES_PER_CPU 32
#define HTAB_BUCKET_BYTES 16
#define HTAB_ELEMENT_BYTES 48

uint64_t hash_map_bytes(uint32_t key_size, uint32_t value_size, uint32_t max_entries,
			bool preallocated, int possible_cpus)
{
	uint64_t bytes = HTAB_FIXED_BYTES + (uint64_t)HTAB_LOCK_BYTES_PER_CPU *
			 (uint64_t)(possible_cpus > 0 ? possible_cpus : 1);

	bytes += HTAB_BUCKET_BYTES * power_of_two_at_least(max_entries);
	if (preallocated)
		bytes += (uint64_t)max_entries * (HTAB_ELEMENT_BYTES + round_up_8(key_size) +
						  round_up_8(value_size));
	return bytes;
}

/* What sets a map's size. */
enum map_size_source { SIZE_FLOW_TABLE, SIZE_NEW_FLOW_TABLE, SIZE_SNAT_TABLE, SIZE_FIXED };

struct sized_map {
	const char *name; /* as pinned */
	uint32_t key_size, value_size;
	bool preallocated;
	enum map_size_source size_source;
	uint32_t fixed_entries; /* SIZE_FIXED */
};

/* The maps whose size the config sets (bpf/flow.h, bpf/fastpath.h, bpf/maps.h), and the
 * SNAT port blocks, whose size is the contract's. */
static const struct sized_map sized_maps[] = {
	{ "flows", sizeof(struct flow_key), sizeof(struct flow_entry), true, SIZE_FLOW_TABLE, 0 },
	{ "new_flows", sizeof(struct flow_key), sizeof(struct flow_entry), true,
	  SIZE_NEW_FLOW_TABLE, 0 },
	{ "fast_paths4", sizeof(struct fast_path_key4), sizeof(struct fast_path_entry), true,
	  SIZE_FLOW_TABLE, 0 },
	{ "fast_paths6", sizeof(struct fast_path_key6), sizeof(struct fast_path_entry), true,
	  SIZE_FLOW_TABLE, 0 },
	{ "snat_mappings", sizeof(struct snat_flow_key), sizeof(struct snat_mapping), false,
	  SIZE_SNAT_TABLE, 0 },
	{ "snat_reverse", sizeof(struct snat_flow_key), sizeof(struct snat_reverse), false,
	  SIZE_SNAT_TABLE, 0 },
	{ "snat_vm_blocks", sizeof(struct snat_vm_key), sizeof(struct snat_vm_block), false,
	  SIZE_FIXED, MAX_SNAT_BLOCKS },
	{ "snat_block_owners", sizeof(struct snat_block_key), sizeof(struct snat_block_owner),
	  false, SIZE_FIXED, MAX_SNAT_BLOCKS },
};

static uint32_t snat_table_size(const struct config *cfg)
{
	return cfg->limits.snat_table_size ? cfg->limits.snat_table_size : SNAT_TABLE_ENTRIES_DEFAULT;
}

static uint32_t sized_map_entries(const struct sized_map *m, const struct config *cfg)
{
	switch (m->size_source) {
	case SIZE_FLOW_TABLE:
		return nsg_flow_table_size(cfg);
	case SIZE_NEW_FLOW_TABLE:
		return new_flow_table_entries(nsg_flow_table_size(cfg));
	case SIZE_SNAT_TABLE:
		return snat_table_size(cfg);
	default:
		return m->fixed_entries;
	}
}

static bool pinned(const char *pin_dir, const char *name)
{
	char path[512];
	struct stat st;

	if (!pin_dir)
		return false;
	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return !stat(path, &st);
}

uint64_t limits_map_bytes(const struct config *cfg, const char *pin_dir, int possible_cpus)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < sizeof(sized_maps) / sizeof(*sized_maps); i++) {
		const struct sized_map *m = &sized_maps[i];

		if (pinned(pin_dir, m->name))
			continue;
		bytes += hash_map_bytes(m->key_size, m->value_size, sized_map_entries(m, cfg),
					m->preallocated, possible_cpus);
	}
	return bytes;
}

int memory_available(uint64_t *bytes)
{
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long kib;
	struct sysinfo si;
	char line[256];

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
			fclose(f);
			*bytes = (uint64_t)kib * 1024;
			return 0;
		}
	if (f)
		fclose(f);
	if (sysinfo(&si))
		return -errno;
	*bytes = ((uint64_t)si.freeram + si.bufferram) * si.mem_unit;
	return 0;
}

int limits_memory_fits(const struct config *cfg, uint64_t needed, uint64_t available,
		       char *why, size_t size)
{
	if (needed <= available)
		return 0;
	snprintf(why, size, "limits.flowTableSize %u and limits.snatTableSize %u need %llu "
		 "bytes of kernel memory for their maps; this machine has %llu bytes available; "
		 "allowed: smaller limits", nsg_flow_table_size(cfg), snat_table_size(cfg),
		 (unsigned long long)needed, (unsigned long long)available);
	return -ENOMEM;
}

int limits_memory_check(const struct config *cfg, const char *pin_dir)
{
	uint64_t available, needed = limits_map_bytes(cfg, pin_dir, percpu_count());
	char why[320];
	int err;

	if (!needed)
		return 0;
	err = memory_available(&available);
	if (err) {
		log_warn("cannot read the available memory (%s); the map sizes go unchecked",
			 strerror(-err));
		return 0;
	}
	err = limits_memory_fits(cfg, needed, available, why, sizeof(why));
	if (err)
		log_error("%s: %s", cfg->path ? cfg->path : "config", why);
	return err;
}

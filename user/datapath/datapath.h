/* The pinned maps of one gateway: open them, program them from a plan, read counters. */
#ifndef VNET_XDP_DATAPATH_H
#define VNET_XDP_DATAPATH_H

#include <stdbool.h>
#include <stdint.h>
#include "compile/plan.h"
#include "vnet_xdp.h"

#define STATE_ROOT "/run/vnet-xdp"

struct datapath_maps {
	int interfaces, routes, source_prefixes, nic_sources, local_addresses;
	int peering_counters, drop_counters, datapath_counters, decision_traces, settings;
};

/* /sys/fs/bpf/vnet-xdp/<gateway> into buf. */
void gateway_pin_dir(const char *gateway, char *buf, size_t size);
/* Mounts bpffs on /sys/fs/bpf when it is not there. Returns 0 or -errno. */
int bpffs_ensure(void);
/* The clock the datapath stamps flows, leases and SNAT mappings with
 * (bpf_ktime_get_coarse_ns), in ns; ages against it go through clock_age_ns. */
uint64_t datapath_clock_ns(void);
bool gateway_pins_exist(const char *gateway);

/* Opens one pinned map of the gateway by name; while a reload is staging (see
 * datapath_stage_set), config maps open from the staging directory. fd or -errno. */
int datapath_map_open(const char *gateway, const char *name);
/* Whether a map holds config (rebuilt per generation) rather than state (kept). */
bool datapath_is_config_map(const char *name);
void datapath_stage_set(const char *dir);

int datapath_maps_open(const char *gateway, struct datapath_maps *maps);
void datapath_maps_close(struct datapath_maps *maps);
/* Replaces the config maps' contents with the plan (counters are left alone); the one
 * writer of `settings` (plan->settings, stamped with the generation). */
int datapath_write_plan(const struct datapath_maps *maps, const struct plan *plan,
			uint32_t generation);
/* Records every address of this network namespace, which the datapath hands to the kernel. */
int datapath_write_local_addresses(const struct datapath_maps *maps);
/* Deletes every key of a hash or LPM map. Returns 0 or -errno. */
int datapath_map_clear(int fd, size_t key_size);
/* Sums a per-CPU packet counter over all CPUs. */
int datapath_read_counter(int map_fd, uint32_t index, struct packet_counter *sum);
/* The same for the counter under key of a per-CPU hash. */
int datapath_read_counter_at(int map_fd, const void *key, struct packet_counter *sum);
/* Zeroes the peering counter slots that a reload gives to new peerings. */
int datapath_reset_peering_slots(const char *gateway, const bool *fresh, size_t n);
/* Removes every pin of the gateway and its directory. */
int gateway_pins_remove(const char *gateway);

#endif

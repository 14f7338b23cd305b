/* The pinned maps of one gateway: open them, program them from a plan, read counters. */
#ifndef VNET_XDP_DATAPATH_H
#define VNET_XDP_DATAPATH_H

#include <stdbool.h>
#include <stdint.h>
#include "compile/plan.h"
#include "datapath/maps.h"
#include "lib/gateway_name.h"
#include "vnet_xdp.h"

/* /sys/fs/bpf/vnet-xdp/<gateway> into buf. */
void gateway_pin_dir(const char *gateway, char *buf, size_t size);
/* Mounts bpffs on /sys/fs/bpf when it is not there. Returns 0 or -errno. */
int bpffs_ensure(void);
/* The clock the datapath stamps flows, leases and SNAT mappings with
 * (bpf_ktime_get_coarse_ns), in ns; ages against it go through clock_age_ns. */
uint64_t datapath_clock_ns(void);
bool gateway_pins_exist(const char *gateway);

/* Replaces the config maps' contents with the plan (counters are left alone); the one
 * writer of `settings` (plan->settings, stamped with the generation). */
int datapath_write_plan(const struct datapath_maps *maps, const struct plan *plan,
			uint32_t generation);
/* Records every address of this network namespace, which the datapath hands to the kernel. */
int datapath_write_local_addresses(const struct datapath_maps *maps);
/* Sums a per-CPU packet counter over all CPUs. */
int datapath_read_counter(int map_fd, uint32_t index, struct packet_counter *sum);
/* Zeroes the peering counter slots that a reload gives to new peerings. */
int datapath_reset_peering_slots(const char *gateway, const bool *fresh, size_t n);
/* Removes every pin of the gateway and its directory. */
int gateway_pins_remove(const char *gateway);

#endif

/* Every map of the datapath, pinned by name under the gateway's bpffs directory so the
 * loader can exit, crash or be upgraded while forwarding goes on. */
#ifndef BPF_MAPS_H
#define BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "vnet_xdp.h"

/* Set before load by `vnet-xdp verify` for its second instance of this program: the
 * same code judges a synthesized packet against the pinned maps, but writes no flow and
 * counts nothing, so the live datapath's state and counters stay untouched. */
const volatile __u32 dry_run = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_INTERFACES);
	__type(key, __u32); /* ifindex */
	__type(value, struct interface_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} interfaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_ROUTES);
	__type(key, struct lpm_key); /* scope: a route scope (source_info.route_scope) */
	__type(value, struct route_info);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_SOURCE_PREFIXES);
	__type(key, struct lpm_key); /* scope: ingress ifindex */
	__type(value, struct source_info);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} source_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_NIC_SOURCES);
	__type(key, struct nic_key); /* family 0: the NIC; else one of its addresses */
	__type(value, struct nic_info);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nic_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_LOCAL_ADDRESSES);
	__type(key, struct address_key);
	__type(value, __u32); /* ifindex that holds it */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} local_addresses SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_PEERINGS);
	__type(key, __u32);
	__type(value, struct packet_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} peering_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_REASON_MAX);
	__type(key, __u32);
	__type(value, struct packet_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drop_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DATAPATH_COUNTER_MAX);
	__type(key, __u32);
	__type(value, struct packet_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} datapath_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct decision_trace);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} decision_traces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gateway_settings);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} settings SEC(".maps");

/* ---- Fragments (bpf/frag.h). State: each datagram's first fragment for its later ones;
 * a few seconds' worth, so a fixed size, preallocated, the oldest pushed out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_FRAGMENT_DATAGRAMS);
	__type(key, struct fragment_key);
	__type(value, struct fragment_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fragments SEC(".maps");

/* ---- SNAT (bpf/snat.h). Config: sources, pools, VIPs. State, kept across reloads:
 * the mappings both ways and the per-VIP counters. The loader sizes the mapping maps
 * from limits.snatTableSize before the first load; no entry is preallocated. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_SNAT_SOURCES);
	__type(key, struct lpm_key); /* scope: source VNet id */
	__type(value, __u32);        /* snat_pools index */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} snat_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SNAT_POOLS);
	__type(key, __u32);
	__type(value, struct snat_pool);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} snat_pools SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SNAT_VIPS);
	__type(key, struct address_key);
	__type(value, __u32); /* snat_pools index */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} snat_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SNAT_TABLE_ENTRIES_DEFAULT);
	__type(key, struct snat_flow_key);   /* the VM's flow */
	__type(value, struct snat_mapping);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} snat_mappings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SNAT_TABLE_ENTRIES_DEFAULT);
	__type(key, struct snat_flow_key);   /* a reply: remote -> VIP:port */
	__type(value, struct snat_reverse);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} snat_reverse SEC(".maps");

/* Port blocks (headers/vnet_xdp.h): each VM's, and each claimed block's VM. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SNAT_BLOCKS);
	__type(key, struct snat_vm_key);
	__type(value, struct snat_vm_block);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} snat_vm_blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SNAT_BLOCKS);
	__type(key, struct snat_block_key);
	__type(value, struct snat_block_owner);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} snat_block_owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_SNAT_VIPS);
	__type(key, struct address_key); /* the VIP: counters follow it across reloads */
	__type(value, struct snat_vip_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} snat_vip_counters SEC(".maps");

#endif

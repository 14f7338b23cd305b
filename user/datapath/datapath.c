#include <errno.h>
#include <time.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "datapath/datapath.h"
#include "lib/gateway_name.h"
#include "lib/log.h"

void gateway_pin_dir(const char *gateway, char *buf, size_t size)
{
	gateway_path(VNET_XDP_PIN_ROOT, gateway, "", buf, size);
}

uint64_t datapath_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SECOND + ts.tv_nsec;
}

int bpffs_ensure(void)
{
	struct statfs fs;

	if (statfs("/sys/fs/bpf", &fs) == 0 && fs.f_type == BPF_FS_MAGIC)
		return 0;
	if (mkdir("/sys/fs/bpf", 0755) && errno != EEXIST)
		return -errno;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		return -errno;
	return 0;
}

bool gateway_pins_exist(const char *gateway)
{
	char path[256];
	struct stat st;

	gateway_pin_dir(gateway, path, sizeof(path));
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Maps that hold the config, as opposed to state (counters, flows, mappings) that must
 * outlive any one config. A reload builds a fresh set of these in a staging directory,
 * fills them, then swaps programs, so a packet sees either the old set or the new one. */
static const char *const config_map_names[] = {
	"interfaces", "routes", "source_prefixes", "nic_sources", "local_addresses", "settings",
	"tunnel_peers", "tunnel_endpoints", "tunnel_interfaces",
	"nsg_addresses", "nsg_ports", "nsg_port_intervals", "nsg_protocols", "nsg_tables",
	"nsg_rules", "nsg_bindings",
	"snat_sources", "snat_pools", "snat_vips",
};

bool datapath_is_config_map(const char *name)
{
	for (size_t i = 0; i < sizeof(config_map_names) / sizeof(*config_map_names); i++)
		if (!strcmp(name, config_map_names[i]))
			return true;
	return false;
}

/* Set while a reload fills the next generation: config maps open from there. */
static char stage_dir[320];

void datapath_stage_set(const char *dir)
{
	snprintf(stage_dir, sizeof(stage_dir), "%s", dir ? dir : "");
}

int datapath_map_open(const char *gateway, const char *name)
{
	char dir[256], path[400];
	int fd;

	if (stage_dir[0] && datapath_is_config_map(name))
		snprintf(path, sizeof(path), "%s/%s", stage_dir, name);
	else {
		gateway_pin_dir(gateway, dir, sizeof(dir));
		if (!dir[0])
			return -EINVAL;
		snprintf(path, sizeof(path), "%s/%s", dir, name);
	}
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

static int pinned_map_open(const char *gateway, const char *name)
{
	return datapath_map_open(gateway, name);
}

int datapath_maps_open(const char *gateway, struct datapath_maps *maps)
{
	struct { int *fd; const char *name; } all[] = {
		{ &maps->interfaces, "interfaces" },
		{ &maps->routes, "routes" },
		{ &maps->source_prefixes, "source_prefixes" },
		{ &maps->nic_sources, "nic_sources" },
		{ &maps->local_addresses, "local_addresses" },
		{ &maps->peering_counters, "peering_counters" },
		{ &maps->drop_counters, "drop_counters" },
		{ &maps->datapath_counters, "datapath_counters" },
		{ &maps->decision_traces, "decision_traces" },
		{ &maps->settings, "settings" },
	};
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(*all); i++)
		*all[i].fd = -1;
	for (i = 0; i < sizeof(all) / sizeof(*all); i++) {
		int fd = pinned_map_open(gateway, all[i].name);

		if (fd < 0) {
			log_debug("cannot open pinned map %s of %s: %s", all[i].name, gateway,
				  strerror(-fd));
			datapath_maps_close(maps);
			return fd;
		}
		*all[i].fd = fd;
	}
	return 0;
}

void datapath_maps_close(struct datapath_maps *maps)
{
	int *fds[] = { &maps->interfaces, &maps->routes, &maps->source_prefixes, &maps->nic_sources,
		       &maps->local_addresses, &maps->peering_counters, &maps->drop_counters,
		       &maps->datapath_counters, &maps->decision_traces, &maps->settings };

	for (size_t i = 0; i < sizeof(fds) / sizeof(*fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Deletes every key of a hash or LPM map. Keys are collected first: deleting while
 * iterating would skip entries. */
int datapath_map_clear(int fd, size_t key_size)
{
	size_t count = 0, capacity = 64;
	unsigned char *keys = malloc(capacity * key_size), *key = NULL;
	int err = 0;

	if (!keys)
		return -ENOMEM;
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
		if (bpf_map_get_next_key(fd, key, keys + count * key_size))
			break;
		key = keys + count * key_size;
		count++;
	}
	for (size_t i = 0; i < count && !err; i++)
		if (bpf_map_delete_elem(fd, keys + i * key_size) && errno != ENOENT)
			err = -errno;
	free(keys);
	return err;
}

int datapath_write_plan(const struct datapath_maps *maps, const struct plan *plan,
			uint32_t generation)
{
	struct gateway_settings settings = plan->settings;
	uint32_t zero = 0;
	int err;

	settings.generation = generation;
	if ((err = datapath_map_clear(maps->interfaces, sizeof(uint32_t))) ||
	    (err = datapath_map_clear(maps->routes, sizeof(struct lpm_key))) ||
	    (err = datapath_map_clear(maps->source_prefixes, sizeof(struct lpm_key))) ||
	    (err = datapath_map_clear(maps->nic_sources, sizeof(struct nic_key))))
		return err;
	for (size_t i = 0; i < plan->n_nic_sources; i++)
		if (bpf_map_update_elem(maps->nic_sources, &plan->nic_sources[i].key,
					&plan->nic_sources[i].info, BPF_ANY))
			return -errno;
	for (size_t i = 0; i < plan->n_source_prefixes; i++)
		if (bpf_map_update_elem(maps->source_prefixes, &plan->source_prefixes[i].key,
					&plan->source_prefixes[i].info, BPF_ANY))
			return -errno;
	for (size_t i = 0; i < plan->n_routes; i++)
		if (plan->routes[i].active && bpf_map_update_elem(maps->routes, &plan->routes[i].key, &plan->routes[i].info,
					BPF_ANY))
			return -errno;
	/* Interfaces last: until an interface is known, the program leaves its packets to
	 * the kernel, so no packet meets a half-written route table. */
	for (size_t i = 0; i < plan->n_interfaces; i++)
		if (bpf_map_update_elem(maps->interfaces, &plan->interfaces[i].ifindex,
					&plan->interfaces[i].info, BPF_ANY))
			return -errno;
	if (bpf_map_update_elem(maps->settings, &zero, &settings, BPF_ANY))
		return -errno;
	return 0;
}

int datapath_write_local_addresses(const struct datapath_maps *maps)
{
	struct ifaddrs *list, *ifa;
	int err;

	if (getifaddrs(&list))
		return -errno;
	err = datapath_map_clear(maps->local_addresses, sizeof(struct address_key));
	for (ifa = list; ifa && !err; ifa = ifa->ifa_next) {
		struct address_key key = { 0 };
		uint32_t ifindex;

		if (!ifa->ifa_addr)
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET) {
			key.family = AF_INET;
			memcpy(key.addr, &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr, 4);
		} else if (ifa->ifa_addr->sa_family == AF_INET6) {
			key.family = AF_INET6;
			memcpy(key.addr, &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		ifindex = if_nametoindex(ifa->ifa_name);
		if (bpf_map_update_elem(maps->local_addresses, &key, &ifindex, BPF_ANY))
			err = -errno;
	}
	freeifaddrs(list);
	return err;
}

int datapath_read_counter(int map_fd, uint32_t index, struct packet_counter *sum)
{
	return datapath_read_counter_at(map_fd, &index, sum);
}

int datapath_read_counter_at(int map_fd, const void *key, struct packet_counter *sum)
{
	int cpus = libbpf_num_possible_cpus();
	struct packet_counter *values;

	if (cpus <= 0)
		return -EINVAL;
	values = calloc(cpus, sizeof(*values));
	if (!values)
		return -ENOMEM;
	memset(sum, 0, sizeof(*sum));
	if (bpf_map_lookup_elem(map_fd, key, values)) {
		int err = -errno;

		free(values);
		return err;
	}
	for (int c = 0; c < cpus; c++) {
		sum->packets += values[c].packets;
		sum->bytes += values[c].bytes;
	}
	free(values);
	return 0;
}

int gateway_pins_remove(const char *gateway)
{
	char dir[256], path[600];
	struct dirent *entry;
	DIR *d;
	int err = 0;

	gateway_pin_dir(gateway, dir, sizeof(dir));
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((entry = readdir(d))) {
		if (entry->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
		if (entry->d_type == DT_DIR) { /* a reload's staging directory */
			DIR *sub = opendir(path);
			struct dirent *e;
			char inner[900];

			while (sub && (e = readdir(sub)))
				if (e->d_name[0] != '.') {
					snprintf(inner, sizeof(inner), "%s/%s", path, e->d_name);
					unlink(inner);
				}
			if (sub)
				closedir(sub);
			if (rmdir(path) && !err)
				err = -errno;
		} else if (unlink(path) && !err) {
			err = -errno;
		}
	}
	closedir(d);
	if (rmdir(dir) && !err)
		err = -errno;
	rmdir(VNET_XDP_PIN_ROOT); /* only succeeds when no other gateway is left */
	return err;
}

int datapath_reset_peering_slots(const char *gateway, const bool *fresh, size_t n)
{
	int cpus = libbpf_num_possible_cpus(), fd, err = 0;
	struct packet_counter *zero;

	if (cpus < 0)
		return cpus;
	zero = calloc((size_t)cpus, sizeof(*zero));
	fd = datapath_map_open(gateway, "peering_counters");
	if (!zero || fd < 0) {
		free(zero);
		return fd < 0 ? fd : -ENOMEM;
	}
	for (uint32_t slot = 0; !err && slot < n; slot++)
		if (fresh[slot] && bpf_map_update_elem(fd, &slot, zero, BPF_ANY))
			err = -errno;
	close(fd);
	free(zero);
	return err;
}

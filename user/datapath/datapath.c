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
#include "lib/bpf_map.h"
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

int datapath_write_plan(const struct datapath_maps *maps, const struct plan *plan,
			uint32_t generation)
{
	struct gateway_settings settings = plan->settings;
	uint32_t zero = 0;
	int err;

	settings.generation = generation;
	if ((err = map_clear(maps->fd[MAP_interfaces], sizeof(uint32_t))) ||
	    (err = map_clear(maps->fd[MAP_routes], sizeof(struct lpm_key))) ||
	    (err = map_clear(maps->fd[MAP_source_prefixes], sizeof(struct lpm_key))) ||
	    (err = map_clear(maps->fd[MAP_nic_sources], sizeof(struct nic_key))))
		return err;
	for (size_t i = 0; i < plan->n_nic_sources; i++)
		if (bpf_map_update_elem(maps->fd[MAP_nic_sources], &plan->nic_sources[i].key,
					&plan->nic_sources[i].info, BPF_ANY))
			return -errno;
	for (size_t i = 0; i < plan->n_source_prefixes; i++)
		if (bpf_map_update_elem(maps->fd[MAP_source_prefixes], &plan->source_prefixes[i].key,
					&plan->source_prefixes[i].info, BPF_ANY))
			return -errno;
	for (size_t i = 0; i < plan->n_routes; i++)
		if (plan->routes[i].active && bpf_map_update_elem(maps->fd[MAP_routes], &plan->routes[i].key, &plan->routes[i].info,
					BPF_ANY))
			return -errno;
	/* Interfaces last: until an interface is known, the program leaves its packets to
	 * the kernel, so no packet meets a half-written route table. */
	for (size_t i = 0; i < plan->n_interfaces; i++)
		if (bpf_map_update_elem(maps->fd[MAP_interfaces], &plan->interfaces[i].ifindex,
					&plan->interfaces[i].info, BPF_ANY))
			return -errno;
	if (bpf_map_update_elem(maps->fd[MAP_settings], &zero, &settings, BPF_ANY))
		return -errno;
	return 0;
}

int datapath_write_local_addresses(const struct datapath_maps *maps)
{
	struct ifaddrs *list, *ifa;
	int err;

	if (getifaddrs(&list))
		return -errno;
	err = map_clear(maps->fd[MAP_local_addresses], sizeof(struct address_key));
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
		if (bpf_map_update_elem(maps->fd[MAP_local_addresses], &key, &ifindex, BPF_ANY))
			err = -errno;
	}
	freeifaddrs(list);
	return err;
}

int datapath_read_counter(int map_fd, uint32_t index, struct packet_counter *sum)
{
	return percpu_sum(map_fd, &index, sum, sizeof(*sum));
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
	int fd = datapath_map_open(gateway, MAP_peering_counters), err = 0;

	if (fd < 0)
		return fd;
	for (uint32_t slot = 0; !err && slot < n; slot++)
		if (fresh[slot])
			err = percpu_zero(fd, &slot, sizeof(struct packet_counter), BPF_ANY);
	close(fd);
	return err;
}

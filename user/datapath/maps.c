#include "datapath/maps.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "datapath/datapath.h"
#include "lib/log.h"

static const struct {
	const char *name;
	bool config;
} catalogue[MAP_COUNT] = {
#define CONFIG_MAP(n) [MAP_##n] = { #n, true },
#define STATE_MAP(n) [MAP_##n] = { #n, false },
	VNET_XDP_PINNED_MAPS(CONFIG_MAP, STATE_MAP)
#undef CONFIG_MAP
#undef STATE_MAP
};

const char *datapath_map_name(enum vnet_xdp_map map)
{
	return (unsigned)map < MAP_COUNT ? catalogue[map].name : "?";
}

bool datapath_map_is_config(enum vnet_xdp_map map)
{
	return (unsigned)map < MAP_COUNT && catalogue[map].config;
}

int datapath_map_find(const char *name)
{
	for (int m = 0; m < MAP_COUNT; m++)
		if (!strcmp(catalogue[m].name, name))
			return m;
	return -1;
}

/* Set while a reload fills the next generation: config maps open from there. */
static char stage_dir[320];

void datapath_stage_set(const char *dir)
{
	snprintf(stage_dir, sizeof(stage_dir), "%s", dir ? dir : "");
}

int datapath_map_open(const char *gateway, enum vnet_xdp_map map)
{
	char dir[256], path[400];
	int fd;

	if ((unsigned)map >= MAP_COUNT)
		return -EINVAL;
	if (stage_dir[0] && datapath_map_is_config(map))
		snprintf(path, sizeof(path), "%s/%s", stage_dir, catalogue[map].name);
	else {
		gateway_pin_dir(gateway, dir, sizeof(dir));
		if (!dir[0])
			return -EINVAL;
		snprintf(path, sizeof(path), "%s/%s", dir, catalogue[map].name);
	}
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

void datapath_maps_init(struct datapath_maps *maps)
{
	for (int m = 0; m < MAP_COUNT; m++)
		maps->fd[m] = -1;
}

int datapath_maps_open(const char *gateway, struct datapath_maps *maps)
{
	datapath_maps_init(maps);
	for (int m = 0; m < MAP_COUNT; m++) {
		int fd = datapath_map_open(gateway, m);

		if (fd < 0) {
			log_debug("cannot open pinned map %s of %s: %s", catalogue[m].name, gateway,
				  strerror(-fd));
			datapath_maps_close(maps);
			return fd;
		}
		maps->fd[m] = fd;
	}
	return 0;
}

void datapath_maps_close(struct datapath_maps *maps)
{
	for (int m = 0; m < MAP_COUNT; m++) {
		if (maps->fd[m] >= 0)
			close(maps->fd[m]);
		maps->fd[m] = -1;
	}
}

/* ---- every map pinned under the gateway's directory ---- */

/* A pinned object is a map when its fd is one: programs sit in the same directory. */
static bool fd_is_map(int fd)
{
	char link[64], target[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return !strcmp(target, "anon_inode:bpf-map");
}

void pinned_maps_foreach(const char *gateway, pinned_map_fn *fn, void *ctx)
{
	char dir[256], path[600];
	struct dirent **entries;
	int n;

	gateway_pin_dir(gateway, dir, sizeof(dir));
	n = scandir(dir, &entries, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		struct bpf_map_info info = { 0 };
		uint32_t length = sizeof(info);
		int fd = -1;

		snprintf(path, sizeof(path), "%s/%s", dir, entries[i]->d_name);
		if (entries[i]->d_name[0] != '.')
			fd = bpf_obj_get(path);
		if (fd >= 0 && fd_is_map(fd) && !bpf_obj_get_info_by_fd(fd, &info, &length))
			fn(entries[i]->d_name, fd, &info, ctx);
		if (fd >= 0)
			close(fd);
		free(entries[i]);
	}
	if (n >= 0)
		free(entries);
}

long long map_memlock_bytes(int fd)
{
	char path[64], line[128];
	long long bytes = -ENODATA;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (bytes < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lld", &bytes) != 1)
			bytes = -ENODATA;
	fclose(f);
	return bytes;
}

static void memlock_add(const char *name, int fd, const struct bpf_map_info *info, void *ctx)
{
	long long bytes = map_memlock_bytes(fd);

	if (bytes > 0)
		*(long long *)ctx += bytes;
}

long long datapath_maps_memlock_bytes(const char *gateway)
{
	long long total = 0;

	pinned_maps_foreach(gateway, memlock_add, &total);
	return total;
}

#include "datapath/maps.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
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

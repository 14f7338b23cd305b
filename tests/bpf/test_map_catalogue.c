/* The contract's list of pinned maps (VNET_XDP_PINNED_MAPS) and the object agree: every
 * map the object pins is listed, so a reload stages it or keeps it by its class, and
 * every listed map is pinned by the object. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <bpf/libbpf.h>
#include "datapath/maps.h"

static struct bpf_object *object_open(void)
{
	char path[256];
	struct bpf_object *obj;

	snprintf(path, sizeof(path), "%s/vnet_xdp.bpf.o", getenv("BUILD") ? getenv("BUILD") : "build");
	obj = bpf_object__open_file(path, NULL);
	if (!obj)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	return obj;
}

static void every_pinned_map_of_the_object_is_in_the_contract(void **state)
{
	struct bpf_object *obj = object_open();
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		if (!bpf_map__pin_path(map))
			continue;
		if (datapath_map_find(bpf_map__name(map)) < 0)
			fail_msg("map %s is pinned but not in VNET_XDP_PINNED_MAPS", bpf_map__name(map));
	}
	bpf_object__close(obj);
}

static void every_map_of_the_contract_is_pinned_by_the_object(void **state)
{
	struct bpf_object *obj = object_open();

	for (int m = 0; m < MAP_COUNT; m++) {
		struct bpf_map *map = bpf_object__find_map_by_name(obj, datapath_map_name(m));

		if (!map || !bpf_map__pin_path(map))
			fail_msg("%s is in VNET_XDP_PINNED_MAPS but the object does not pin it",
				 datapath_map_name(m));
	}
	bpf_object__close(obj);
}

static void config_maps_are_what_a_reload_rebuilds(void **state)
{
	/* Counters, flows and mappings must survive a reload; what a config compiles to
	 * must not. */
	assert_true(datapath_map_is_config(MAP_routes));
	assert_true(datapath_map_is_config(MAP_nsg_rules));
	assert_true(datapath_map_is_config(MAP_snat_vips));
	assert_false(datapath_map_is_config(MAP_flows));
	assert_false(datapath_map_is_config(MAP_snat_mappings));
	assert_false(datapath_map_is_config(MAP_drop_counters));
	assert_false(datapath_map_is_config(MAP_nsg_rule_counters));
	assert_false(datapath_map_is_config(MAP_tunnel_client_counters));
	assert_false(datapath_map_is_config(datapath_map_find("no_such_map")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_pinned_map_of_the_object_is_in_the_contract),
		cmocka_unit_test(every_map_of_the_contract_is_pinned_by_the_object),
		cmocka_unit_test(config_maps_are_what_a_reload_rebuilds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

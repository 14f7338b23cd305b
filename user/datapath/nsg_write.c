/* The NSGs on a gateway: their plan (compile/nsg.c builds it) written into the maps,
 * and the file that keeps their stable ids. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "compile/nsg.h"
#include "datapath/nsg_write.h"
#include "datapath/datapath.h"
#include "lib/bpf_map.h"
#include "lib/gateway_name.h"
#include "lib/private_file.h"
#include "lib/log.h"

/* ---- stable ids ---------------------------------------------------------------------- */

void nsg_ids_path(const char *gateway, char *buf, size_t size)
{
	gateway_path(STATE_ROOT, gateway, ".nsg-ids.json", buf, size);
}

static uint32_t counters_map_id(const char *gateway)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	int fd = datapath_map_open(gateway, MAP_nsg_rule_counters);

	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.id = 0;
	close(fd);
	return info.id;
}

int nsg_ids_load(const char *gateway, struct nsg_ids *ids)
{
	char path[512];
	uint32_t map_id = counters_map_id(gateway);

	nsg_ids_path(gateway, path, sizeof(path));
	ids->doc = json_load_file(path, 0, NULL);
	/* Ids belong to one set of counters: a file left from an earlier `up` is stale. */
	if (ids->doc && map_id &&
	    (uint32_t)json_integer_value(json_object_get(ids->doc, "countersMap")) != map_id) {
		json_decref(ids->doc);
		ids->doc = NULL;
	}
	if (!ids->doc)
		return nsg_ids_init(ids, map_id);
	return 0;
}

int nsg_ids_save(const char *gateway, const struct nsg_ids *ids)
{
	char path[512], tmp[600];
	int err;

	err = private_dir_ensure(STATE_ROOT);
	if (err)
		return err;
	nsg_ids_path(gateway, path, sizeof(path));
	if (!path[0])
		return -EINVAL;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(ids->doc, tmp, JSON_COMPACT))
		return -EIO;
	if (rename(tmp, path))
		return -errno;
	return 0;
}

int nsg_plan_for_gateway(const struct config *cfg, const char *gateway, uint32_t generation,
			 struct nsg_plan *plan, struct nsg_ids *ids)
{
	int err = nsg_plan_build(cfg, plan);

	if (err)
		return err;
	err = nsg_ids_load(gateway, ids);
	if (!err)
		err = nsg_plan_assign_ids(plan, cfg, ids, generation);
	if (err) {
		log_error("cannot give the network security groups their ids: %s", strerror(-err));
		nsg_ids_free(ids);
		nsg_plan_free(plan);
	}
	return err;
}

/* ---- writing the maps ---------------------------------------------------------------- */

static int maps_clear(const struct datapath_maps *m)
{
	int err;

	if ((err = map_clear(m->fd[MAP_nsg_bindings], sizeof(struct lpm_key))) ||
	    (err = map_clear(m->fd[MAP_nsg_addresses], sizeof(struct lpm_key))) ||
	    (err = map_clear(m->fd[MAP_nsg_ports], sizeof(struct nsg_port_key))) ||
	    (err = map_clear(m->fd[MAP_nsg_port_intervals], sizeof(uint32_t))))
		return err;
	return 0;
}

static int map_put(int fd, const void *key, const void *value)
{
	return bpf_map_update_elem(fd, key, value, BPF_ANY) ? -errno : 0;
}

/* Zeroes a counter slot handed to a new rule (it may have served a removed one). */
static void rule_counter_reset(int counters_fd, uint32_t id)
{
	percpu_zero(counters_fd, &id, sizeof(struct nsg_rule_counter), BPF_ANY);
}

static int tables_write(const struct datapath_maps *m, const struct nsg_plan *plan)
{
	int err = 0;

	for (uint32_t t = 0; !err && t < plan->n_tables; t++) {
		for (uint32_t class = 0; !err && class < NSG_PROTO_CLASSES; class++) {
			uint32_t index = t * NSG_PROTO_CLASSES + class;

			err = map_put(m->fd[MAP_nsg_protocols], &index, &plan->tables[t].protocols[class]);
		}
		if (!err)
			err = map_put(m->fd[MAP_nsg_tables], &t, &plan->tables[t].info);
	}
	return err;
}

int nsg_plan_write(const struct datapath_maps *m, const struct nsg_plan *plan)
{
	int err = maps_clear(m);

	for (size_t i = 0; i < plan->n_fresh_rule_ids; i++)
		rule_counter_reset(m->fd[MAP_nsg_rule_counters], plan->fresh_rule_ids[i]);
	for (uint32_t i = 0; !err && i < plan->n_rules; i++)
		err = map_put(m->fd[MAP_nsg_rules], &i, &plan->rules[i].slot);
	for (size_t i = 0; !err && i < plan->n_addresses; i++)
		err = map_put(m->fd[MAP_nsg_addresses], &plan->addresses[i].key, &plan->addresses[i].bits);
	for (uint32_t i = 0; !err && i < plan->n_intervals; i++)
		err = map_put(m->fd[MAP_nsg_port_intervals], &i, &plan->intervals[i]);
	for (size_t i = 0; !err && i < plan->n_ports; i++)
		err = map_put(m->fd[MAP_nsg_ports], &plan->ports[i].key, &plan->ports[i].interval);
	if (!err)
		err = tables_write(m, plan);
	/* Bindings last: an address without one meets no NSG, so none may point at a table
	 * not yet written. */
	for (size_t i = 0; !err && i < plan->n_bindings; i++)
		err = map_put(m->fd[MAP_nsg_bindings], &plan->bindings[i].key, &plan->bindings[i].binding);
	for (size_t i = 0; !err && i < plan->n_flushes; i++)
		if (map_put(m->fd[MAP_nsg_flush], &plan->flushes[i].nsg_id, &plan->flushes[i].since))
			log_error("cannot record the flush generation of NSG id %u",
				  plan->flushes[i].nsg_id);
	if (err)
		log_error("cannot fill the network security group maps: %s", strerror(-err));
	return err;
}

#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "datapath/bgp.h"
#include "datapath/express_route.h"
#include "datapath/attach.h"
#include "compile/effective_routes.h"
#include "datapath/datapath.h"
#include "datapath/gateway.h"
#include "lib/gateway_name.h"
#include "datapath/limits.h"
#include "lib/lock.h"
#include "lib/bpf_map.h"
#include "lib/log.h"
#include "datapath/neighbours.h"
#include "compile/nsg.h"
#include "datapath/nsg_write.h"
#include "compile/plan.h"
#include "datapath/snat.h"
#include "datapath/state.h"
#include "datapath/tunnel.h"

#define IPV4_FORWARDING "/proc/sys/net/ipv4/ip_forward"
#define IPV6_FORWARDING "/proc/sys/net/ipv6/conf/all/forwarding"

static int sysctl_read(const char *path)
{
	char buf[16] = "";
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoi(buf) : -EIO;
}

static int sysctl_write(const char *path, int value)
{
	char buf[16];
	int fd = open(path, O_WRONLY), len, err = 0;

	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%d\n", value);
	if (write(fd, buf, len) != len)
		err = -errno;
	close(fd);
	return err;
}

int gateway_resolve_name(const char *name, char *out, size_t size)
{
	char **names;
	size_t count;

	if (name) {
		if (!gateway_name_valid(name))
			return -EINVAL;
		snprintf(out, size, "%s", name);
		return 0;
	}
	gateway_names(&names, &count);
	if (count != 1) {
		state_names_free(names);
		return count == 0 ? -ENOENT : -EEXIST;
	}
	snprintf(out, size, "%s", names[0]);
	state_names_free(names);
	return 0;
}

/* Fault injection for the crash-safety tests: VNET_XDP_FAULT=POINT:N kills this process
 * (SIGKILL, as an OOM kill or `kill -9` would) when it reaches POINT the Nth time. */
static void fault_point(const char *point, size_t count)
{
	const char *fault = getenv("VNET_XDP_FAULT");
	size_t len = strlen(point);

	if (fault && !strncmp(fault, point, len) && fault[len] == ':' &&
	    strtoul(fault + len + 1, NULL, 10) == count)
		raise(SIGKILL);
}

static enum xdp_attach_mode mode_of_name(const char *name)
{
	return name && !strcmp(name, "generic") ? XDP_MODE_SKB : XDP_MODE_NATIVE;
}

/* Everything `up` did so far, so that a failure can undo exactly that. */
struct up_progress {
	char pin_dir[256];
	bool created_pins;
	bool journal_written;
	uint32_t attached[MAX_INTERFACES];
	size_t n_attached;
	int ipv4_forwarding, ipv6_forwarding; /* previous values, -1 untouched */
	struct tunnels_progress tunnels;
	json_t *neighbours; /* the managed entries added (neighbours.h) */
};

static void up_undo(const char *gateway, struct up_progress *progress)
{
	tunnels_undo(&progress->tunnels);
	neighbours_release(progress->neighbours);
	for (size_t i = 0; i < progress->n_attached; i++)
		xdp_detach_interface(progress->pin_dir, progress->attached[i]);
	if (progress->ipv4_forwarding >= 0)
		sysctl_write(IPV4_FORWARDING, progress->ipv4_forwarding);
	if (progress->ipv6_forwarding >= 0)
		sysctl_write(IPV6_FORWARDING, progress->ipv6_forwarding);
	if (progress->created_pins)
		gateway_pins_remove(gateway);
	if (progress->journal_written)
		state_remove(gateway);
}

static int resolve_ifindexes(const struct config *cfg, uint32_t *ifindexes)
{
	for (size_t i = 0; i < cfg->n_ifaces; i++) {
		ifindexes[i] = if_nametoindex(cfg->ifaces[i].name);
		if (!ifindexes[i]) {
			log_error("%s: gateway.interfaces[%zu]: interface %s does not exist in this "
				  "network namespace", cfg->path ? cfg->path : "config", i,
				  cfg->ifaces[i].name);
			return -ENODEV;
		}
	}
	return 0;
}

/* The namespace whose interfaces the state's ifindexes name. */
static void state_set_netns(json_t *state)
{
	char netns[64];

	if (!netns_current(netns, sizeof(netns)))
		json_object_set_new(state, "networkNamespace", json_string(netns));
}

/* A gateway of this name that runs in another network namespace is not ours to touch. */
static int gateway_netns_check(const char *gateway)
{
	json_t *state = state_load(gateway);
	int err = state ? state_netns_check(gateway, state) : 0;

	json_decref(state);
	return err;
}

static json_t *state_build(const struct config *cfg, const struct plan *plan,
			   const uint32_t *prog_ids, const enum xdp_attach_mode *modes,
			   const struct up_progress *progress, uint32_t generation)
{
	json_t *state = json_object(), *ifaces = json_array(), *peerings = json_array(),
	       *vnets = json_array();
	char abspath[PATH_MAX];

	json_object_set_new(state, "gateway", json_string(cfg->gateway_name));
	if (cfg->path && realpath(cfg->path, abspath))
		json_object_set_new(state, "config", json_string(abspath));
	json_object_set_new(state, "generation", json_integer(generation));
	state_set_netns(state);
	json_object_set_new(state, "metricsListen", json_string(cfg->metrics_listen ? cfg->metrics_listen : ""));
	if (cfg->flow_logs.enabled) /* for `serve`, which may start from the state alone */
		json_object_set_new(state, "flowLogs", json_pack("{s:s, s:i, s:i, s:i}",
			"directory", cfg->flow_logs.directory, "intervalSeconds",
			(json_int_t)cfg->flow_logs.interval_seconds, "maxMegabytes",
			(json_int_t)cfg->flow_logs.max_megabytes, "deniedPerSecond",
			(json_int_t)cfg->flow_logs.denied_per_second));
	for (size_t v = 0; v < cfg->n_vnets; v++)
		json_array_append_new(vnets, json_string(cfg->vnets[v].name));
	for (size_t i = 0; i < plan->n_interfaces; i++) {
		const struct config_gateway_iface *ci = &cfg->ifaces[i];
		json_t *o = json_pack("{s:s, s:i, s:s, s:i, s:s}", "name", ci->name, "ifindex",
				      (json_int_t)plan->interfaces[i].ifindex, "role",
				      ci->role == IFACE_UPLINK ? "uplink" : "vnet", "programId",
				      (json_int_t)prog_ids[i], "mode", xdp_mode_name(modes[i]));

		if (ci->role == IFACE_VNET) {
			json_object_set_new(o, "virtualNetwork", json_string(cfg->vnets[ci->vnet].name));
			if (ci->subnet != CONFIG_NONE)
				json_object_set_new(o, "subnet",
					json_string(cfg->vnets[ci->vnet].subnets[ci->subnet].name));
		}
		json_array_append_new(ifaces, o);
	}
	for (size_t p = 0; p < plan->n_peerings; p++)
		if (plan->peerings[p].vnet_name) /* a slot kept free across a reload */
			json_array_append_new(peerings, json_pack("{s:i, s:s, s:s, s:s}", "index", (json_int_t)p,
			"name", plan->peerings[p].peering_name ? plan->peerings[p].peering_name : "",
			"vnet", plan->peerings[p].vnet_name, "remoteVnet",
			plan->peerings[p].remote_vnet_name));
	json_object_set_new(state, "virtualNetworks", vnets);
	json_object_set_new(state, "interfaces", ifaces);
	json_object_set_new(state, "peerings", peerings);
	json_object_set_new(state, "virtualNetworkPeerings", effective_peerings_json(cfg, CONFIG_NONE));
	json_object_set_new(state, "tunnels", tunnels_state(cfg, plan));
	json_object_set_new(state, "previousForwarding",
			    json_pack("{s:i, s:i}", "ipv4", progress->ipv4_forwarding,
				      "ipv6", progress->ipv6_forwarding));
	if (progress->neighbours)
		json_object_set(state, "managedNeighbours", progress->neighbours);
	return state;
}

/* Up means: every interface runs our program and `up` got to write the final state (a
 * state that still carries the "upInProgress" journal belongs to an `up` that died). */
static bool gateway_fully_up(const struct config *cfg, const char *pin_dir,
			     const uint32_t *ifindexes)
{
	json_t *state = state_load(cfg->gateway_name);
	bool complete = state && !json_object_get(state, "upInProgress");

	json_decref(state);
	if (!complete)
		return false;
	for (size_t i = 0; i < cfg->n_ifaces; i++) {
		const char *mode;
		uint32_t id;
		bool attached;

		if (xdp_attached_program(pin_dir, ifindexes[i], &id, &attached, &mode) || !attached)
			return false;
	}
	return true;
}

/* Records, before `up` changes anything, what `down` must restore. An `up` killed
 * midway leaves this journal; the next `up` keeps its values rather than reading the
 * forwarding that the dead `up` may already have switched on. */
static int up_journal_write(const char *gateway, struct up_progress *progress)
{
	json_t *state = state_load(gateway), *fwd;
	int err;

	fwd = state && json_object_get(state, "upInProgress") ?
		      json_object_get(state, "previousForwarding") : NULL;
	if (fwd) {
		progress->ipv4_forwarding = json_integer_value(json_object_get(fwd, "ipv4"));
		progress->ipv6_forwarding = json_integer_value(json_object_get(fwd, "ipv6"));
		json_decref(state);
		return 0;
	}
	json_decref(state);
	progress->ipv4_forwarding = sysctl_read(IPV4_FORWARDING);
	if (progress->ipv4_forwarding < 0)
		return progress->ipv4_forwarding;
	progress->ipv6_forwarding = sysctl_read(IPV6_FORWARDING); /* -1: no IPv6, fine */
	state = json_pack("{s:s, s:b, s:{s:i, s:i}}", "gateway", gateway, "upInProgress", 1,
			  "previousForwarding", "ipv4", progress->ipv4_forwarding, "ipv6",
			  progress->ipv6_forwarding);
	state_set_netns(state);
	err = state_save(gateway, state);
	json_decref(state);
	progress->journal_written = err == 0;
	return err;
}

static int forwarding_enable(const struct up_progress *progress)
{
	int err = sysctl_write(IPV4_FORWARDING, 1);

	if (!err && progress->ipv6_forwarding >= 0)
		err = sysctl_write(IPV6_FORWARDING, 1);
	return err;
}

/* An interface that still runs our program from an `up` that died keeps it: the
 * program uses the same pinned maps, and re-attaching would drop packets. */
static bool adopt_attached(const char *pin_dir, uint32_t ifindex, uint32_t *prog_id,
			   enum xdp_attach_mode *mode)
{
	const char *mode_name;
	bool attached;

	if (xdp_attached_program(pin_dir, ifindex, prog_id, &attached, &mode_name) || !attached)
		return false;
	*mode = mode_of_name(mode_name);
	return true;
}

/* Fills every map that the config determines: the same for `up` and for a reload
 * (which has pointed the config maps at its staging directory first). The NSG plan is
 * compiled first, so a config it refuses writes nothing, and gives the settings what
 * they say of flows. */
static int datapath_fill(const struct config *cfg, struct plan *plan, uint32_t generation)
{
	struct datapath_maps maps;
	struct nsg_ids ids = { 0 };
	struct snat_plan snat;
	struct nsg_plan nsg;
	int err;

	err = snat_plan_build(cfg, &snat);
	if (err) {
		log_error("cannot compute the SNAT pools: %s", strerror(-err));
		return err;
	}
	err = nsg_plan_for_gateway(cfg, cfg->gateway_name, generation, &nsg, &ids);
	if (err) {
		snat_plan_free(&snat);
		return err;
	}
	nsg_plan_settings(&nsg, &plan->settings);
	err = datapath_maps_open(cfg->gateway_name, &maps);
	if (err) {
		log_error("cannot open the pinned maps of %s: %s", cfg->gateway_name, strerror(-err));
		goto out;
	}
	err = nsg_plan_write(&maps, &nsg);
	if (!err)
		err = datapath_write_plan(&maps, plan, generation);
	if (!err)
		err = datapath_write_local_addresses(&maps);
	if (!err)
		err = tunnel_maps_write(&maps, plan->tunnels, plan->n_tunnels);
	if (!err)
		err = express_route_maps_write(&maps, plan);
	if (!err)
		err = nsg_ids_save(cfg->gateway_name, &ids);
	if (err)
		log_error("cannot fill the datapath maps: %s", strerror(-err));
	else
		err = snat_plan_write(&maps, &snat);
	datapath_maps_close(&maps);
out:
	snat_plan_free(&snat);
	nsg_plan_free(&nsg);
	nsg_ids_free(&ids);
	return err;
}

/* Why each interface that runs generic XDP does, kept in the state file
 * ("genericReason") for the reports of `up` and of the reloads after it. */
static void interfaces_set_generic_reasons(json_t *state, enum xdp_attach_mode asked,
					   const enum xdp_attach_mode *modes,
					   const int *native_errs)
{
	json_t *it;
	size_t i;

	json_array_foreach(json_object_get(state, "interfaces"), i, it) {
		char why[128];

		if (modes[i] != XDP_MODE_SKB)
			continue;
		if (asked == XDP_MODE_SKB)
			snprintf(why, sizeof(why), "--mode generic");
		else if (native_errs[i])
			snprintf(why, sizeof(why), "native XDP refused: %s", strerror(-native_errs[i]));
		else
			continue; /* adopted from an earlier `up`, which said why */
		json_object_set_new(it, "genericReason", json_string(why));
	}
}

/* A reload keeps the interfaces and their modes, so also the reasons. */
static void interfaces_keep_generic_reasons(json_t *next, json_t *state)
{
	json_t *old = json_object_get(state, "interfaces"), *it, *why;
	size_t i;

	json_array_foreach(json_object_get(next, "interfaces"), i, it)
		if ((why = json_object_get(json_array_get(old, i), "genericReason")))
			json_object_set(it, "genericReason", why);
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

/* What `up` or a reload did, in one line: each interface's XDP mode (and why generic),
 * the kernel memory the gateway's maps take, the time it took. */
static void gateway_report(const char *gateway, const char *what, double seconds)
{
	json_t *state = state_load(gateway), *ifaces = json_object_get(state, "interfaces"), *it;
	size_t i, n = json_array_size(ifaces), size = 0;
	char *line = NULL;
	FILE *out = open_memstream(&line, &size);

	if (!out) {
		json_decref(state);
		return;
	}
	fprintf(out, "gateway %s %s: %zu interface%s:", gateway, what, n, n == 1 ? "" : "s");
	json_array_foreach(ifaces, i, it) {
		const char *why = json_string_value(json_object_get(it, "genericReason"));

		fprintf(out, "%s %s %s", i ? "," : "",
			json_string_value(json_object_get(it, "name")) ?: "?",
			json_string_value(json_object_get(it, "mode")) ?: "?");
		if (why)
			fprintf(out, " (%s)", why);
	}
	fprintf(out, "; maps %.1f MiB kernel memory; %.2f s",
		datapath_maps_memlock_bytes(gateway) / (1024.0 * 1024.0), seconds);
	if (!fclose(out))
		log_info("%s", line);
	free(line);
	json_decref(state);
}

static int up_locked(const struct config *cfg, enum xdp_attach_mode mode)
{
	struct up_progress progress = { .ipv4_forwarding = -1, .ipv6_forwarding = -1 };
	uint32_t ifindexes[MAX_INTERFACES], prog_ids[MAX_INTERFACES] = { 0 };
	enum xdp_attach_mode modes[MAX_INTERFACES];
	int native_errs[MAX_INTERFACES] = { 0 };
	struct xdp_generation *gen = NULL;
	struct plan plan;
	json_t *state;
	int err;

	err = tunnel_check_secret_file(cfg);
	if (err)
		return err;
	if (cfg->n_ifaces > MAX_INTERFACES) {
		log_error("%zu interfaces bound; at most %d", cfg->n_ifaces, MAX_INTERFACES);
		return -E2BIG;
	}
	err = gateway_netns_check(cfg->gateway_name);
	if (err)
		return err;
	err = resolve_ifindexes(cfg, ifindexes);
	if (err)
		return err;
	gateway_pin_dir(cfg->gateway_name, progress.pin_dir, sizeof(progress.pin_dir));
	err = limits_memory_check(cfg, progress.pin_dir);
	if (err)
		return err;
	err = bpffs_ensure();
	if (err) {
		log_error("cannot mount bpffs on /sys/fs/bpf: %s", strerror(-err));
		return err;
	}
	err = gateway_recover(cfg->gateway_name);
	if (err) {
		log_error("cannot finish the interrupted reload of %s: %s", cfg->gateway_name,
			  strerror(-err));
		return err;
	}
	if (gateway_pins_exist(cfg->gateway_name) && gateway_fully_up(cfg, progress.pin_dir, ifindexes)) {
		log_info("gateway %s is already up; `vnet-xdp reload` applies a changed config",
			 cfg->gateway_name);
		return 0;
	}
	/* The connections' xfrm interfaces first: the plan routes into them by index. */
	err = tunnels_create_interfaces(cfg, &progress.tunnels);
	if (err) {
		tunnels_undo(&progress.tunnels);
		return err;
	}
	err = express_route_plan_build(cfg, ifindexes, &plan, NULL);
	if (err) {
		log_error("cannot compute the datapath plan: %s", strerror(-err));
		tunnels_undo(&progress.tunnels);
		return err;
	}

	progress.created_pins = !gateway_pins_exist(cfg->gateway_name);
	err = up_journal_write(cfg->gateway_name, &progress);
	if (err) {
		log_error("cannot write the gateway state under %s: %s", STATE_ROOT, strerror(-err));
		goto fail;
	}
	if ((mkdir(VNET_XDP_PIN_ROOT, 0700) && errno != EEXIST) ||
	    (mkdir(progress.pin_dir, 0700) && errno != EEXIST)) {
		err = -errno;
		log_error("cannot create %s: %s", progress.pin_dir, strerror(-err));
		goto fail;
	}
	xdp_flow_table_size_set(nsg_flow_table_size(cfg));
	snat_table_size_set(cfg->limits.snat_table_size);
	gen = xdp_generation_load(progress.pin_dir);
	if (!gen) {
		err = -errno;
		log_error("cannot load the XDP object (run with -v for the verifier's log): %s",
			  strerror(-err));
		goto fail;
	}
	err = datapath_fill(cfg, &plan, 1);
	if (err)
		goto fail;
	for (size_t i = 0; i < cfg->n_ifaces; i++) {
		if (!progress.created_pins &&
		    adopt_attached(progress.pin_dir, ifindexes[i], &prog_ids[i], &modes[i]))
			continue;
		fault_point("up-attach", i);
		err = xdp_attach_interface(gen, progress.pin_dir, ifindexes[i], mode, &prog_ids[i],
					   &modes[i], &native_errs[i]);
		if (err) {
			log_error("cannot attach XDP to %s (%s mode): %s", cfg->ifaces[i].name,
				  mode == XDP_MODE_UNSPEC ? "native or generic" : xdp_mode_name(mode),
				  strerror(-err));
			goto fail;
		}
		progress.attached[progress.n_attached++] = ifindexes[i];
	}
	err = forwarding_enable(&progress);
	if (err) {
		log_error("cannot enable IP forwarding: %s", strerror(-err));
		goto fail;
	}
	err = tunnels_start(cfg, gen, progress.pin_dir, &plan, &progress.tunnels);
	if (err)
		goto fail;
	err = bgp_start(cfg);
	if (!err)
		err = express_route_attach(gen, progress.pin_dir, &plan);
	if (err)
		goto fail;
	progress.neighbours = neighbours_manage(&plan, NULL);
	state = state_build(cfg, &plan, prog_ids, modes, &progress, 1);
	interfaces_set_generic_reasons(state, mode, modes, native_errs);
	if (progress.tunnels.ike)
		json_object_set(state, "ike", progress.tunnels.ike);
	err = state_save(cfg->gateway_name, state);
	json_decref(state);
	if (err) {
		log_error("cannot write the gateway state under %s: %s", STATE_ROOT, strerror(-err));
		goto fail;
	}
	tunnels_progress_keep(&progress.tunnels); /* `down` removes them */
	xdp_generation_close(gen);
	json_decref(progress.neighbours);
	plan_free(&plan);
	return 0;

fail:
	if (cfg->n_express_route_bindings) {
		express_route_stop(cfg->gateway_name);
		bgp_stop(cfg->gateway_name);
	}
	up_undo(cfg->gateway_name, &progress);
	xdp_generation_close(gen);
	json_decref(progress.neighbours);
	plan_free(&plan);
	return err;
}

int gateway_up(const struct config *cfg, enum xdp_attach_mode mode)
{
	struct timespec start;
	int lock, err;

	clock_gettime(CLOCK_MONOTONIC, &start);
	lock = gateway_lock(cfg->gateway_name, GATEWAY_LOCK_WAIT_MS);
	if (lock < 0)
		return lock;
	err = up_locked(cfg, mode);
	if (!err)
		gateway_report(cfg->gateway_name, "is up", seconds_since(&start));
	if (err && !gateway_pins_exist(cfg->gateway_name)) /* nothing of it is left */
		gateway_lock_remove(cfg->gateway_name);
	gateway_unlock(lock);
	return err;
}

/* Detaches from every interface the interfaces map names: it holds exactly what `up`
 * bound, so `down` works even when the state file is gone. */
static int detach_all(const char *gateway, const char *pin_dir)
{
	int interfaces = datapath_map_open(gateway, MAP_interfaces);
	struct map_walk walk = MAP_WALK(interfaces, sizeof(uint32_t));
	size_t detached = 0;
	uint32_t next;
	int err = 0, rc;

	if (interfaces < 0)
		return interfaces == -ENOENT ? 0 : interfaces;
	while (map_walk_next(&walk, &next)) {
		fault_point("down-detach", detached++);
		rc = xdp_detach_interface(pin_dir, next);
		if (rc && !err)
			err = rc;
	}
	close(interfaces);
	return err;
}

/* The pins, the state file and the NSG ids: the last of a gateway. */
static int gateway_remains_remove(const char *gateway)
{
	char path[256];
	int err = gateway_pins_remove(gateway);

	if (err) {
		log_error("cannot remove the pins of %s: %s", gateway, strerror(-err));
		return err;
	}
	state_remove(gateway);
	nsg_ids_path(gateway, path, sizeof(path));
	unlink(path);
	return 0;
}

static int down_locked(const char *gateway)
{
	char pin_dir[256];
	json_t *state;
	int err;

	state = state_load(gateway);
	if (state && state_netns_gone(state)) {
		/* Its interfaces, programs, xfrm interfaces and sysctls went with the namespace:
		 * what is left here is bpffs pins and state. */
		log_warn("gateway %s: its network namespace %s is gone; removing its pins and state",
			 gateway, json_string_value(json_object_get(state, "networkNamespace")));
		json_decref(state);
		express_route_stop(gateway);
		bgp_stop(gateway);
		return gateway_remains_remove(gateway);
	}
	json_decref(state);
	err = gateway_netns_check(gateway);
	if (err)
		return err;
	if (!gateway_pins_exist(gateway)) {
		log_info("gateway %s is not up", gateway);
		state_remove(gateway);
		return 0;
	}
	gateway_pin_dir(gateway, pin_dir, sizeof(pin_dir));
	err = detach_all(gateway, pin_dir);
	if (err) {
		log_error("cannot detach gateway %s: %s", gateway, strerror(-err));
		return err;
	}
	express_route_stop(gateway);
	bgp_stop(gateway);
	state = state_load(gateway);
	if (state && tunnels_down(gateway, state))
		log_warn("gateway %s: some xfrm interfaces could not be removed", gateway);
	if (state)
		neighbours_release(json_object_get(state, "managedNeighbours"));
	if (state) {
		json_t *fwd = json_object_get(state, "previousForwarding");
		int v4 = json_integer_value(json_object_get(fwd, "ipv4"));
		int v6 = json_integer_value(json_object_get(fwd, "ipv6"));

		if (fwd && v4 >= 0)
			sysctl_write(IPV4_FORWARDING, v4);
		if (fwd && v6 >= 0)
			sysctl_write(IPV6_FORWARDING, v6);
		json_decref(state);
	}
	return gateway_remains_remove(gateway);
}

int gateway_down(const char *requested)
{
	char gateway[128];
	int err, lock;

	err = gateway_resolve_name(requested, gateway, sizeof(gateway));
	if (err == -ENOENT && !requested) {
		log_info("no gateway is up");
		return 0;
	}
	if (err == -EEXIST) {
		log_error("several gateways are up; name one with -n");
		return err;
	}
	if (err)
		return err;
	lock = gateway_lock(gateway, GATEWAY_LOCK_WAIT_MS);
	if (lock < 0)
		return lock;
	err = down_locked(gateway);
	if (!err)
		gateway_lock_remove(gateway);
	gateway_unlock(lock);
	return err;
}

/* ---- reload ------------------------------------------------------------------------
 * The next generation's config maps are created and filled in a staging directory while
 * the running programs keep the current ones; then each interface's program is replaced
 * atomically by one bound to the new maps (state maps, counters and flows, are shared),
 * and the staged maps take the place of the old pins. A journal in the state file lets
 * the next command finish a reload that was killed after its maps were complete. */

#define STAGE_NAME "next"


static void stage_path(const char *pin_dir, char *buf, size_t size)
{
	snprintf(buf, size, "%s/" STAGE_NAME, pin_dir);
}

static void stage_remove(const char *stage)
{
	char path[600];
	struct dirent *entry;
	DIR *d = opendir(stage);

	if (!d)
		return;
	while ((entry = readdir(d)))
		if (entry->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", stage, entry->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(stage);
}

/* The staged maps replace the pinned ones (rename over them: one step per map). */
static int stage_promote(const char *pin_dir, const char *stage)
{
	char from[600], to[600];
	struct dirent *entry;
	DIR *d = opendir(stage);
	int err = 0;

	if (!d)
		return -errno;
	while ((entry = readdir(d)))
		if (entry->d_name[0] != '.') {
			snprintf(from, sizeof(from), "%s/%s", stage, entry->d_name);
			snprintf(to, sizeof(to), "%s/%s", pin_dir, entry->d_name);
			if (rename(from, to) && !err)
				err = -errno;
		}
	closedir(d);
	rmdir(stage);
	return err;
}

/* Which interfaces run which programs must match what the state says before and after. */
static bool same_interfaces(json_t *state, const uint32_t *ifindexes, size_t n)
{
	json_t *ifaces = json_object_get(state, "interfaces"), *it;
	size_t i;

	if (json_array_size(ifaces) != n)
		return false;
	json_array_foreach(ifaces, i, it)
		if ((uint32_t)json_integer_value(json_object_get(it, "ifindex")) != ifindexes[i])
			return false;
	return true;
}

static size_t slot_hints(json_t *state, struct plan_slot_hint *hints, size_t max)
{
	json_t *p;
	size_t i, n = 0;

	json_array_foreach(json_object_get(state, "peerings"), i, p) {
		if (n == max)
			break;
		hints[n].vnet_name = json_string_value(json_object_get(p, "vnet"));
		hints[n].remote_vnet_name = json_string_value(json_object_get(p, "remoteVnet"));
		hints[n].slot = (uint32_t)json_integer_value(json_object_get(p, "index"));
		if (hints[n].vnet_name && hints[n].remote_vnet_name)
			n++;
	}
	return n;
}

/* Moves every interface to the generation's program, then promotes the staged maps. On
 * a failure the interfaces already moved get their previous programs back. */
static int swap_generation(const char *pin_dir, const char *stage,
			   struct xdp_generation *gen, const uint32_t *ifindexes, size_t n,
			   uint32_t *prog_ids)
{
	struct xdp_swap swaps[MAX_INTERFACES];
	size_t done = 0;
	int err = 0;

	for (; done < n; done++) {
		fault_point("reload-swap", done);
		err = xdp_swap_begin(pin_dir, gen, ifindexes[done], &swaps[done], &prog_ids[done]);
		if (err) {
			log_error("cannot replace the program on ifindex %u: %s%s", ifindexes[done],
				  strerror(-err), err == -EBUSY ? " (another program holds the "
				  "interface, and not through libxdp's dispatcher)" : "");
			break;
		}
	}
	if (!err)
		err = stage_promote(pin_dir, stage);
	for (size_t i = 0; i < done; i++)
		if (err)
			xdp_swap_abort(pin_dir, &swaps[i]);
		else if (xdp_swap_commit(&swaps[i]))
			log_error("the previous program stays in the dispatcher of ifindex %u beside "
				  "the new one", ifindexes[i]);
	return err;
}

/* A reload killed after its staged maps were complete is finished; one killed earlier
 * never touched the running programs, and its leftovers go. */
static int reload_recover(const char *gateway, json_t *state)
{
	json_t *journal = json_object_get(state, "reload");
	char pin_dir[256], stage[320];
	uint32_t ifindexes[MAX_INTERFACES], prog_ids[MAX_INTERFACES];
	json_t *it, *ifaces = json_object_get(state, "interfaces");
	struct xdp_generation *gen;
	size_t i, n = 0;
	int err = 0;

	gateway_pin_dir(gateway, pin_dir, sizeof(pin_dir));
	stage_path(pin_dir, stage, sizeof(stage));
	if (!journal) {
		stage_remove(stage);
		return 0;
	}
	log_info("finishing the reload to generation %lld that was interrupted",
		 json_integer_value(json_object_get(journal, "generation")));
	json_array_foreach(ifaces, i, it)
		if (n < MAX_INTERFACES)
			ifindexes[n++] = (uint32_t)json_integer_value(json_object_get(it, "ifindex"));
	/* The staged maps were complete: promote what is left of them, then give every
	 * interface a program bound to the promoted set (harmless where one already is). */
	if (access(stage, F_OK) == 0) {
		err = stage_promote(pin_dir, stage);
		if (err)
			return err;
	}
	gen = xdp_generation_load(pin_dir);
	if (!gen)
		return -errno;
	for (i = 0; !err && i < n; i++) {
		struct xdp_swap swap;

		err = xdp_swap_begin(pin_dir, gen, ifindexes[i], &swap, &prog_ids[i]);
		if (!err)
			xdp_swap_commit(&swap);
	}
	xdp_generation_close(gen);
	if (err)
		return err;
	json_object_set(state, "generation", json_object_get(journal, "generation"));
	json_object_set(state, "config", json_object_get(journal, "config"));
	json_object_set(state, "peerings", json_object_get(journal, "peerings"));
	if (json_object_get(journal, "virtualNetworkPeerings"))
		json_object_set(state, "virtualNetworkPeerings",
				json_object_get(journal, "virtualNetworkPeerings"));
	json_array_foreach(ifaces, i, it)
		json_object_set_new(it, "programId", json_integer(prog_ids[i]));
	json_object_del(state, "reload");
	return state_save(gateway, state);
}

int gateway_recover(const char *gateway)
{
	json_t *state = state_load(gateway);
	int err = 0;

	if (state && gateway_pins_exist(gateway))
		err = reload_recover(gateway, state);
	json_decref(state);
	return err;
}

static int reload_locked(const struct config *cfg)
{
	uint32_t ifindexes[MAX_INTERFACES], prog_ids[MAX_INTERFACES] = { 0 };
	struct plan_slot_hint hints[MAX_PEERINGS];
	enum xdp_attach_mode modes[MAX_INTERFACES];
	bool fresh[MAX_PEERINGS] = { false };
	struct up_progress progress = { .ipv4_forwarding = -1, .ipv6_forwarding = -1 };
	struct tunnels_ike ike = { .vici.fd = -1 };
	char pin_dir[256], stage[320];
	json_t *state, *next = NULL, *it, *journal, *in_force = NULL;
	struct xdp_generation *gen;
	uint32_t generation;
	struct plan plan = { 0 };
	size_t i;
	int err, ike_err;

	/* Before anything: the running gateway is kept whatever else is wrong. */
	err = tunnel_check_secret_file(cfg);
	if (err)
		return err;
	if (!gateway_pins_exist(cfg->gateway_name) || !(state = state_load(cfg->gateway_name))) {
		log_error("gateway %s is not up; `vnet-xdp up -c FILE` starts it", cfg->gateway_name);
		return -ENOENT;
	}
	err = state_netns_check(cfg->gateway_name, state);
	if (err)
		goto out;
	err = reload_recover(cfg->gateway_name, state);
	if (err)
		goto out;
	if (cfg->n_ifaces > MAX_INTERFACES) {
		err = -E2BIG;
		log_error("%zu interfaces bound; at most %d", cfg->n_ifaces, MAX_INTERFACES);
		goto out;
	}
	err = resolve_ifindexes(cfg, ifindexes);
	if (err)
		goto out;
	if (!same_interfaces(state, ifindexes, cfg->n_ifaces)) {
		log_error("%s binds other interfaces than the running gateway; a reload keeps the "
			  "interfaces (run `vnet-xdp down` and `up` to change them)", cfg->path);
		err = -EINVAL;
		goto out;
	}
	generation = (uint32_t)json_integer_value(json_object_get(state, "generation")) + 1;
	gateway_pin_dir(cfg->gateway_name, pin_dir, sizeof(pin_dir));
	err = limits_memory_check(cfg, pin_dir);
	if (err)
		goto out;
	stage_path(pin_dir, stage, sizeof(stage));
	/* A connection new in this config needs its interface before the plan indexes it. */
	err = tunnels_create_interfaces(cfg, &progress.tunnels);
	if (!err) /* what bgpd learned stays routed across the swap */
		err = express_route_plan_build(cfg, ifindexes, &plan, NULL);
	if (!err)
		err = plan_keep_peering_slots(&plan, hints, slot_hints(state, hints, MAX_PEERINGS),
					      fresh, MAX_PEERINGS);
	if (err) {
		log_error("cannot compute the datapath plan: %s", strerror(-err));
		goto out;
	}
	/* charon's part made ready before anything changes: a connection strongSwan cannot
	 * express, or no charon to talk to, refuses the reload here. */
	err = tunnels_ike_prepare(cfg, &plan, state, &ike);
	if (err) {
		log_error("the reload of %s changed nothing", cfg->gateway_name);
		goto out;
	}

	stage_remove(stage);
	if (mkdir(stage, 0700)) {
		err = -errno;
		log_error("cannot create %s: %s", stage, strerror(-err));
		goto out;
	}
	datapath_stage_set(stage);
	xdp_stage_set(stage);
	gen = xdp_generation_load(pin_dir);
	err = gen ? 0 : -errno;
	if (err)
		log_error("cannot load the XDP object for the new generation (run with -v for the "
			  "verifier's log): %s", strerror(-err));
	if (!err)
		err = datapath_fill(cfg, &plan, generation);
	fault_point("reload-fill", 0);
	if (!err)
		err = datapath_reset_peering_slots(cfg->gateway_name, fresh, MAX_PEERINGS);
	datapath_stage_set(NULL);
	xdp_stage_set(NULL);
	if (err) {
		xdp_generation_close(gen);
		stage_remove(stage);
		goto out;
	}

	json_array_foreach(json_object_get(state, "interfaces"), i, it)
		modes[i] = mode_of_name(json_string_value(json_object_get(it, "mode")));
	progress.ipv4_forwarding = (int)json_integer_value(json_object_get(
		json_object_get(state, "previousForwarding"), "ipv4"));
	progress.ipv6_forwarding = (int)json_integer_value(json_object_get(
		json_object_get(state, "previousForwarding"), "ipv6"));
	next = state_build(cfg, &plan, prog_ids, modes, &progress, generation);
	journal = json_pack("{s:i, s:O, s:O, s:O}", "generation", (json_int_t)generation, "config",
			    json_object_get(next, "config") ?: json_null(), "peerings",
			    json_object_get(next, "peerings"), "virtualNetworkPeerings",
			    json_object_get(next, "virtualNetworkPeerings"));
	json_object_set_new(state, "reload", journal);
	err = state_save(cfg->gateway_name, state);
	if (!err)
		err = swap_generation(pin_dir, stage, gen, ifindexes, cfg->n_ifaces, prog_ids);
	if (err) {
		xdp_generation_close(gen);
		json_object_del(state, "reload");
		state_save(cfg->gateway_name, state);
		stage_remove(stage);
		goto out;
	}
	json_array_foreach(json_object_get(next, "interfaces"), i, it)
		json_object_set_new(it, "programId", json_integer(prog_ids[i]));
	progress.tunnels.n_created = 0; /* in use now: `down` removes them */
	/* The tunnels' tc programs still hold the old config maps until the generation's
	 * replace them; the kernel's routes and charon's connections follow the new
	 * connections. */
	ike_err = tunnels_reload(gen, pin_dir, &plan, state, &ike, &in_force);
	express_route_stop_others(cfg->gateway_name, &plan);
	if (express_route_attach(gen, pin_dir, &plan))
		ike_err = ike_err ? ike_err : -EIO;
	xdp_generation_close(gen);
	if (in_force)
		json_object_set(next, "ike", in_force); /* what the next reload or down owns */
	if (ike_err)
		log_error("the datapath of %s runs the new config; its IPsec connections in charon "
			  "are the previous config's, as said above (reload again once charon "
			  "accepts them)", cfg->gateway_name);
	interfaces_keep_generic_reasons(next, state);
	json_object_set_new(next, "managedNeighbours",
			    neighbours_manage(&plan, json_object_get(state, "managedNeighbours")));
	err = state_save(cfg->gateway_name, next);
	if (err)
		log_error("the new generation runs, but the state file was not written: %s",
			  strerror(-err));
	err = err ? err : ike_err;
	if (bgp_reload(cfg)) {
		log_error("the datapath of %s runs the new config; its ExpressRoute bgpd could not "
			  "follow it, as said above", cfg->gateway_name);
		err = err ? err : -EIO;
	}
out:
	if (err)
		tunnels_undo(&progress.tunnels);
	tunnels_ike_free(&ike);
	json_decref(in_force);
	json_decref(next);
	json_decref(state);
	plan_free(&plan);
	return err;
}

int gateway_reload(const struct config *cfg)
{
	struct timespec start;
	char what[PATH_MAX + 64];
	int lock, err;

	clock_gettime(CLOCK_MONOTONIC, &start);
	lock = gateway_lock(cfg->gateway_name, GATEWAY_LOCK_WAIT_MS);
	if (lock < 0)
		return lock;
	err = reload_locked(cfg);
	if (!err) {
		snprintf(what, sizeof(what), "reloaded from %s", cfg->path ?: "-");
		gateway_report(cfg->gateway_name, what, seconds_since(&start));
	}
	gateway_unlock(lock);
	return err;
}

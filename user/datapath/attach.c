#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include "datapath/attach.h"
#include "datapath/datapath.h"
#include "lib/log.h"
#include "datapath/snat.h"
#include "vnet_xdp.skel.h"

#define PROGRAM_NAME "xdp_gateway"

const char *xdp_mode_name(enum xdp_attach_mode mode)
{
	switch (mode) {
	case XDP_MODE_NATIVE: return "native";
	case XDP_MODE_SKB: return "generic";
	case XDP_MODE_HW: return "offload";
	default: return "none";
	}
}

/* Every map pinned by name under pin_dir; while a reload stages the next generation,
 * config maps under the staging directory instead (see datapath_stage_set). */
static char staging[320];

void xdp_stage_set(const char *stage_dir)
{
	snprintf(staging, sizeof(staging), "%s", stage_dir ? stage_dir : "");
}

static uint32_t flow_table_size;

void xdp_flow_table_size_set(uint32_t entries)
{
	flow_table_size = entries;
}

/* The pinned flow table's size when there is one (libbpf reuses a pin only when the
 * definitions agree), else the configured one. */
static void flow_table_size_apply(struct vnet_xdp_bpf *skel, const char *pin_dir)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/flows", pin_dir);
	fd = bpf_obj_get(path);
	if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len))
		bpf_map__set_max_entries(skel->maps.flows, info.max_entries);
	else if (flow_table_size)
		bpf_map__set_max_entries(skel->maps.flows, flow_table_size);
	if (fd >= 0)
		close(fd);
	/* A pinned new_flows keeps its size, as flows does; else it follows flows'. */
	snprintf(path, sizeof(path), "%s/new_flows", pin_dir);
	fd = bpf_obj_get(path);
	info.max_entries = 0;
	len = sizeof(info);
	if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len))
		bpf_map__set_max_entries(skel->maps.new_flows, info.max_entries);
	else
		bpf_map__set_max_entries(skel->maps.new_flows,
					 new_flow_table_entries(bpf_map__max_entries(skel->maps.flows)));
	if (fd >= 0)
		close(fd);
	/* The established-flow cache holds a flow's two directions at most. */
	bpf_map__set_max_entries(skel->maps.fast_paths4, bpf_map__max_entries(skel->maps.flows));
	bpf_map__set_max_entries(skel->maps.fast_paths6, bpf_map__max_entries(skel->maps.flows));
}

static struct vnet_xdp_bpf *skeleton_open(const char *pin_dir)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct vnet_xdp_bpf *skel = vnet_xdp_bpf__open_opts(&opts);
	struct bpf_map *map;

	if (skel)
		flow_table_size_apply(skel, pin_dir);
	if (skel && snat_maps_size(skel->obj, pin_dir)) {
		vnet_xdp_bpf__destroy(skel);
		errno = EINVAL;
		return NULL;
	}
	if (!skel || !staging[0])
		return skel;
	bpf_object__for_each_map(map, skel->obj) {
		char path[400];

		if (!bpf_map__pin_path(map) ||
		    !datapath_map_is_config(datapath_map_find(bpf_map__name(map))))
			continue;
		snprintf(path, sizeof(path), "%s/%s", staging, bpf_map__name(map));
		if (bpf_map__set_pin_path(map, path)) {
			int err = -errno;

			vnet_xdp_bpf__destroy(skel);
			errno = -err;
			return NULL;
		}
	}
	return skel;
}

static void program_pin_path(const char *pin_dir, uint32_t ifindex, char *buf, size_t size)
{
	snprintf(buf, size, "%s/xdp_%u", pin_dir, ifindex);
}

static uint32_t program_id_of_fd(int fd)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* Finds our program among what is attached to ifindex: the only program in legacy
 * mode, or one of the dispatcher's. Returns the libxdp handle to detach or NULL. */
static struct xdp_program *find_attached(struct xdp_multiprog *mp, uint32_t prog_id)
{
	struct xdp_program *p;

	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		return p && xdp_program__id(p) == prog_id ? p : NULL;
	}
	for (p = xdp_multiprog__next_prog(NULL, mp); p; p = xdp_multiprog__next_prog(p, mp))
		if (xdp_program__id(p) == prog_id)
			return p;
	return NULL;
}

int xdp_attached_program(const char *pin_dir, uint32_t ifindex, uint32_t *prog_id,
			 bool *attached, const char **mode_name)
{
	struct xdp_multiprog *mp;
	char path[320];
	int fd;

	*attached = false;
	*mode_name = "none";
	program_pin_path(pin_dir, ifindex, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	*prog_id = program_id_of_fd(fd);
	close(fd);
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (libxdp_get_error(mp))
		return 0;
	if (find_attached(mp, *prog_id)) {
		*attached = true;
		*mode_name = xdp_mode_name(xdp_multiprog__attach_mode(mp));
	}
	xdp_multiprog__close(mp);
	return 0;
}

int xdp_detach_interface(const char *pin_dir, uint32_t ifindex)
{
	struct xdp_multiprog *mp;
	struct xdp_program *ours;
	uint32_t prog_id;
	char path[320];
	int fd, err = 0;

	program_pin_path(pin_dir, ifindex, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	prog_id = program_id_of_fd(fd);
	close(fd);

	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (!libxdp_get_error(mp)) {
		ours = find_attached(mp, prog_id);
		if (ours && xdp_multiprog__is_legacy(mp))
			err = xdp_multiprog__detach(mp);
		else if (ours)
			err = xdp_program__detach(ours, ifindex, xdp_multiprog__attach_mode(mp), 0);
		xdp_multiprog__close(mp);
	}
	if (!err) {
		unlink(path);
		/* a dispatcher that a reload replaced stays pinned by libxdp until this */
		libxdp_clean_references((int)ifindex);
	}
	return err;
}

/* The kernel's attach mode on ifindex and the id of the one program attached there. */
static int attached_mode(uint32_t ifindex, uint32_t *prog_id, uint32_t *flags)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query((int)ifindex, 0, &q))
		return -errno;
	switch (q.attach_mode) {
	case XDP_ATTACHED_DRV:
		*prog_id = q.drv_prog_id;
		*flags = XDP_FLAGS_DRV_MODE;
		return 0;
	case XDP_ATTACHED_SKB:
		*prog_id = q.skb_prog_id;
		*flags = XDP_FLAGS_SKB_MODE;
		return 0;
	default:
		return -ENOENT; /* nothing, or several modes at once */
	}
}

static bool program_is_ours(int fd)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	return !bpf_obj_get_info_by_fd(fd, &info, &len) && !strcmp(info.name, PROGRAM_NAME);
}

static int pin_replace(int fd, const char *path)
{
	char tmp[400];

	snprintf(tmp, sizeof(tmp), "%s_new", path); /* bpffs refuses dots in names */
	unlink(tmp);
	if (bpf_obj_pin(fd, tmp))
		return -errno;
	if (rename(tmp, path)) {
		int err = -errno;

		unlink(tmp);
		return err;
	}
	return 0;
}

/* A loaded program on its maps. The extension that dispatchers call is loaded once, by
 * the first interface that runs a dispatcher, and linked into every other one. */
struct xdp_generation {
	struct vnet_xdp_bpf *skel;
	struct vnet_xdp_bpf *ext_skel;
	int ext_fd;
};

static struct xdp_generation *generation_load(const char *pin_dir, bool dry_run)
{
	struct xdp_generation *gen = calloc(1, sizeof(*gen));
	int err;

	if (!gen)
		return NULL;
	gen->ext_fd = -1;
	gen->skel = skeleton_open(pin_dir);
	if (!gen->skel) {
		free(gen);
		return NULL;
	}
	gen->skel->rodata->dry_run = dry_run;
	err = vnet_xdp_bpf__load(gen->skel);
	if (err) {
		xdp_generation_close(gen);
		errno = -err;
		return NULL;
	}
	return gen;
}

struct xdp_generation *xdp_generation_load(const char *pin_dir)
{
	return generation_load(pin_dir, false);
}

struct xdp_generation *xdp_dry_run_load(const char *pin_dir)
{
	return generation_load(pin_dir, true);
}

int xdp_generation_fd(const struct xdp_generation *gen)
{
	return bpf_program__fd(gen->skel->progs.xdp_gateway);
}

void xdp_generation_tc_programs(const struct xdp_generation *gen, int *ingress, int *egress)
{
	*ingress = bpf_program__fd(gen->skel->progs.tc_tunnel_ingress);
	*egress = bpf_program__fd(gen->skel->progs.tc_tunnel_egress);
}

void xdp_generation_close(struct xdp_generation *gen)
{
	if (!gen)
		return;
	if (gen->ext_fd >= 0)
		close(gen->ext_fd);
	vnet_xdp_bpf__destroy(gen->ext_skel);
	vnet_xdp_bpf__destroy(gen->skel);
	free(gen);
}

static int xdp_swap_program(uint32_t ifindex, int expected_fd, int new_fd)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = expected_fd);
	uint32_t current, flags;
	int err = attached_mode(ifindex, &current, &flags);

	if (err)
		return err;
	/* One netlink request: the interface runs the old program or the new one, and every
	 * packet is judged entirely by one of them. */
	if (bpf_xdp_attach((int)ifindex, new_fd, flags | XDP_FLAGS_REPLACE, &opts))
		return -errno;
	return 0;
}

static int xdp_pin_program(const char *pin_dir, uint32_t ifindex, int fd)
{
	char path[320];

	program_pin_path(pin_dir, ifindex, path, sizeof(path));
	return pin_replace(fd, path);
}

/* Our program in the dispatcher libxdp runs on ifindex, -ENOENT where the interface runs
 * a program directly (legacy), -EBUSY where the dispatcher holds no program of ours. */
static int dispatcher_slot(uint32_t ifindex, uint32_t prog_id, struct xdp_multiprog **mp,
			   struct xdp_program **ours)
{
	*mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (libxdp_get_error(*mp)) {
		*mp = NULL;
		return -ENOENT;
	}
	if (xdp_multiprog__is_legacy(*mp)) {
		xdp_multiprog__close(*mp);
		*mp = NULL;
		return -ENOENT;
	}
	*ours = find_attached(*mp, prog_id);
	if (!*ours) {
		xdp_multiprog__close(*mp);
		*mp = NULL;
		return -EBUSY;
	}
	return 0;
}

/* Removes one program from ifindex's dispatcher: libxdp builds a dispatcher without it
 * and swaps it in with one netlink request, so the programs beside ours keep running. */
static int dispatcher_remove(uint32_t ifindex, uint32_t prog_id)
{
	struct xdp_multiprog *mp;
	struct xdp_program *p;
	int err = dispatcher_slot(ifindex, prog_id, &mp, &p);

	if (err)
		return err;
	err = xdp_program__detach(p, ifindex, xdp_multiprog__attach_mode(mp), 0);
	xdp_multiprog__close(mp);
	if (!err)
		libxdp_clean_references((int)ifindex); /* the dispatcher just replaced */
	return err;
}

/* A fresh, unloaded copy of the generation's program on exactly the generation's maps
 * (staged config maps included), for libxdp to load as an extension of a dispatcher. */
static struct vnet_xdp_bpf *skeleton_sharing(const struct vnet_xdp_bpf *gen)
{
	struct vnet_xdp_bpf *skel = vnet_xdp_bpf__open();
	struct bpf_map *map;
	int err = 0;

	if (!skel)
		return NULL;
	bpf_object__for_each_map(map, skel->obj) {
		struct bpf_map *theirs;

		if (bpf_map__is_internal(map))
			continue;
		theirs = bpf_object__find_map_by_name(gen->obj, bpf_map__name(map));
		if (!theirs) {
			err = -ENOENT;
			break;
		}
		/* no pin path: libbpf would otherwise adopt the live pin over the shared fd */
		err = bpf_map__set_pin_path(map, NULL) ?: bpf_map__reuse_fd(map, bpf_map__fd(theirs));
		if (err)
			break;
	}
	if (err) {
		vnet_xdp_bpf__destroy(skel);
		errno = -err;
		return NULL;
	}
	return skel;
}

/* Attaches the generation's program to ifindex in mode and returns its fd there. The
 * first attachment loads it (libxdp loads it as the extension of the interface's
 * dispatcher, or as a plain XDP program where it attaches without one); every other
 * interface shares that one program, so the verifier runs once, not once per interface.
 * A first attachment that fails drops its copy: libbpf loads an object only once. */
static int generation_attach(struct xdp_generation *gen, uint32_t ifindex,
			     enum xdp_attach_mode mode, int *fd)
{
	DECLARE_LIBXDP_OPTS(xdp_program_opts, opts, .prog_name = PROGRAM_NAME);
	struct xdp_program *prog;
	bool attached;
	int err;

	if (gen->ext_fd >= 0) {
		prog = xdp_program__from_fd(gen->ext_fd);
	} else {
		gen->ext_skel = gen->ext_skel ?: skeleton_sharing(gen->skel);
		if (!gen->ext_skel)
			return -errno;
		opts.obj = gen->ext_skel->obj;
		prog = xdp_program__create(&opts);
	}
	err = libxdp_get_error(prog);
	if (err)
		return err;
	err = xdp_program__attach(prog, ifindex, mode, 0);
	attached = !err;
	if (!err && gen->ext_fd < 0) {
		gen->ext_fd = fcntl(xdp_program__fd(prog), F_DUPFD_CLOEXEC, 3);
		if (gen->ext_fd < 0)
			err = -errno;
	}
	if (!err) {
		*fd = fcntl(gen->ext_fd, F_DUPFD_CLOEXEC, 3);
		if (*fd < 0)
			err = -errno;
	}
	if (err && attached)
		xdp_program__detach(prog, ifindex, mode, 0);
	xdp_program__close(prog);
	if (err && gen->ext_fd < 0) {
		vnet_xdp_bpf__destroy(gen->ext_skel);
		gen->ext_skel = NULL;
	}
	return err;
}

/* Undoes generation_attach where pinning it failed. */
static void generation_detach(int fd, uint32_t ifindex, enum xdp_attach_mode mode)
{
	struct xdp_program *prog = xdp_program__from_fd(fd);

	if (!libxdp_get_error(prog)) {
		xdp_program__detach(prog, ifindex, mode, 0);
		xdp_program__close(prog);
	}
}

/* Under a dispatcher, the new program joins the dispatcher beside the old one (libxdp
 * swaps in a dispatcher holding both, atomically); the old one leaves at commit. Until
 * then a packet the old program hands to the kernel (XDP_PASS) meets the new one too,
 * which judges it as it will from now on; every other verdict is the old program's. */
static int dispatcher_join(struct xdp_generation *gen, uint32_t ifindex, int *new_fd)
{
	enum xdp_attach_mode mode = XDP_MODE_UNSPEC;
	struct xdp_multiprog *mp;

	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (!libxdp_get_error(mp)) {
		mode = xdp_multiprog__attach_mode(mp);
		xdp_multiprog__close(mp);
	}
	return generation_attach(gen, ifindex, mode, new_fd);
}

int xdp_attach_interface(struct xdp_generation *gen, const char *pin_dir, uint32_t ifindex,
			 enum xdp_attach_mode mode, uint32_t *prog_id,
			 enum xdp_attach_mode *attached_mode, int *native_err)
{
	char path[320];
	int err, fd = -1;

	*native_err = 0;
	if (mode == XDP_MODE_UNSPEC) {
		/* Native where the driver has it; a driver without it still gets generic. */
		err = generation_attach(gen, ifindex, XDP_MODE_NATIVE, &fd);
		*attached_mode = XDP_MODE_NATIVE;
		if (err) {
			*native_err = err;
			log_debug("native XDP on ifindex %u failed (%s), trying generic", ifindex,
				  strerror(-err));
			err = generation_attach(gen, ifindex, XDP_MODE_SKB, &fd);
			*attached_mode = XDP_MODE_SKB;
		}
	} else {
		err = generation_attach(gen, ifindex, mode, &fd);
		*attached_mode = mode;
	}
	if (err)
		return err;

	program_pin_path(pin_dir, ifindex, path, sizeof(path));
	unlink(path);
	if (bpf_obj_pin(fd, path)) {
		err = -errno;
		generation_detach(fd, ifindex, *attached_mode);
	} else {
		*prog_id = program_id_of_fd(fd);
	}
	close(fd);
	return err;
}

/* Swaps our program on a legacy attachment: one XDP_FLAGS_REPLACE request. */
static int legacy_swap_begin(const struct xdp_generation *gen, struct xdp_swap *s)
{
	uint32_t current = 0, flags = 0;
	int err = attached_mode(s->ifindex, &current, &flags);

	if (err)
		return err;
	/* What runs there, which is what the pin names unless an earlier reload died
	 * between swapping and re-pinning. */
	s->old_fd = bpf_prog_get_fd_by_id(current);
	if (s->old_fd < 0)
		return -errno;
	if (!program_is_ours(s->old_fd))
		return -EBUSY; /* someone else's program */
	s->new_fd = fcntl(xdp_generation_fd(gen), F_DUPFD_CLOEXEC, 3);
	if (s->new_fd < 0)
		return -errno;
	return xdp_swap_program(s->ifindex, s->old_fd, s->new_fd);
}

static void swap_close(struct xdp_swap *s)
{
	if (s->old_fd >= 0)
		close(s->old_fd);
	if (s->new_fd >= 0)
		close(s->new_fd);
	s->old_fd = s->new_fd = -1;
}

int xdp_swap_begin(const char *pin_dir, struct xdp_generation *gen, uint32_t ifindex,
		   struct xdp_swap *s, uint32_t *prog_id)
{
	struct xdp_multiprog *mp;
	struct xdp_program *ours;
	uint32_t pinned_id = 0;
	char path[320];
	int err, fd;

	*s = (struct xdp_swap){ .ifindex = ifindex, .old_fd = -1, .new_fd = -1 };
	program_pin_path(pin_dir, ifindex, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		pinned_id = program_id_of_fd(fd);
		close(fd);
	}
	err = dispatcher_slot(ifindex, pinned_id, &mp, &ours);
	if (!err) {
		s->shared = true;
		s->old_fd = fcntl(xdp_program__fd(ours), F_DUPFD_CLOEXEC, 3);
		xdp_multiprog__close(mp);
		err = s->old_fd < 0 ? -errno : dispatcher_join(gen, ifindex, &s->new_fd);
	} else if (err == -ENOENT) {
		err = legacy_swap_begin(gen, s);
	}
	if (!err) {
		err = pin_replace(s->new_fd, path);
		if (err) { /* keep what the pins say true: put the old program back */
			xdp_swap_abort(pin_dir, s);
			return err;
		}
		*prog_id = program_id_of_fd(s->new_fd);
		return 0;
	}
	if (s->shared && s->new_fd >= 0)
		dispatcher_remove(ifindex, program_id_of_fd(s->new_fd));
	swap_close(s);
	return err;
}

int xdp_swap_commit(struct xdp_swap *s)
{
	int err = 0;

	if (s->shared && s->old_fd >= 0)
		err = dispatcher_remove(s->ifindex, program_id_of_fd(s->old_fd));
	swap_close(s);
	return err;
}

void xdp_swap_abort(const char *pin_dir, struct xdp_swap *s)
{
	int err;

	if (s->old_fd < 0 || s->new_fd < 0) {
		swap_close(s);
		return;
	}
	if (s->shared)
		err = dispatcher_remove(s->ifindex, program_id_of_fd(s->new_fd));
	else
		err = xdp_swap_program(s->ifindex, s->new_fd, s->old_fd);
	if (!err)
		err = xdp_pin_program(pin_dir, s->ifindex, s->old_fd);
	if (err)
		log_error("could not put the previous program back on ifindex %u: %s", s->ifindex,
			  strerror(-err));
	swap_close(s);
}

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include "attach.h"
#include "log.h"
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

static struct vnet_xdp_bpf *skeleton_open(const char *pin_dir)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);

	return vnet_xdp_bpf__open_opts(&opts);
}

int xdp_maps_create(const char *pin_dir)
{
	struct vnet_xdp_bpf *skel = skeleton_open(pin_dir);
	int err;

	if (!skel)
		return -errno;
	err = vnet_xdp_bpf__load(skel);
	vnet_xdp_bpf__destroy(skel);
	return err;
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

static int attach_in_mode(struct vnet_xdp_bpf **skel, const char *pin_dir, uint32_t ifindex,
			  enum xdp_attach_mode mode, struct xdp_program **out)
{
	DECLARE_LIBXDP_OPTS(xdp_program_opts, opts, .prog_name = PROGRAM_NAME);
	struct xdp_program *prog;
	int err;

	*skel = skeleton_open(pin_dir);
	if (!*skel)
		return -errno;
	opts.obj = (*skel)->obj;
	prog = xdp_program__create(&opts);
	err = libxdp_get_error(prog);
	if (err) {
		vnet_xdp_bpf__destroy(*skel);
		*skel = NULL;
		return err;
	}
	err = xdp_program__attach(prog, ifindex, mode, 0);
	if (err) {
		xdp_program__close(prog);
		vnet_xdp_bpf__destroy(*skel);
		*skel = NULL;
		return err;
	}
	*out = prog;
	return 0;
}

int xdp_attach_interface(const char *pin_dir, uint32_t ifindex, enum xdp_attach_mode mode,
			 uint32_t *prog_id, enum xdp_attach_mode *attached_mode)
{
	struct vnet_xdp_bpf *skel = NULL;
	struct xdp_program *prog = NULL;
	char path[320];
	int err;

	if (mode == XDP_MODE_UNSPEC) {
		/* Native where the driver has it; a driver without it still gets generic. */
		err = attach_in_mode(&skel, pin_dir, ifindex, XDP_MODE_NATIVE, &prog);
		*attached_mode = XDP_MODE_NATIVE;
		if (err) {
			log_debug("native XDP on ifindex %u failed (%s), trying generic", ifindex,
				  strerror(-err));
			err = attach_in_mode(&skel, pin_dir, ifindex, XDP_MODE_SKB, &prog);
			*attached_mode = XDP_MODE_SKB;
		}
	} else {
		err = attach_in_mode(&skel, pin_dir, ifindex, mode, &prog);
		*attached_mode = mode;
	}
	if (err)
		return err;

	program_pin_path(pin_dir, ifindex, path, sizeof(path));
	unlink(path);
	if (bpf_obj_pin(xdp_program__fd(prog), path)) {
		err = -errno;
		xdp_program__detach(prog, ifindex, *attached_mode, 0);
	} else {
		*prog_id = program_id_of_fd(xdp_program__fd(prog));
	}
	xdp_program__close(prog);
	vnet_xdp_bpf__destroy(skel);
	return err;
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
	if (!err)
		unlink(path);
	return err;
}

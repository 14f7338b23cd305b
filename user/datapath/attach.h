/* Attaching the XDP program to interfaces through libxdp, and finding it again. */
#ifndef VNET_XDP_ATTACH_H
#define VNET_XDP_ATTACH_H

#include <stdbool.h>
#include <stdint.h>
#include <xdp/libxdp.h>

struct xdp_generation;
/* Attaches the generation's program to one interface and pins it as xdp_<ifindex>; every
 * interface runs the one program the generation loaded. mode XDP_MODE_UNSPEC tries native
 * first, then generic; *native_err is then why native was refused (-errno), 0 when native
 * was not tried or took. */
int xdp_attach_interface(struct xdp_generation *gen, const char *pin_dir, uint32_t ifindex,
			 enum xdp_attach_mode mode, uint32_t *prog_id,
			 enum xdp_attach_mode *attached_mode, int *native_err);
/* Detaches our program from the interface if it is the one attached; removes its pin. */
int xdp_detach_interface(const char *pin_dir, uint32_t ifindex);
/* The id of the program pinned for ifindex and whether it is attached there. */
int xdp_attached_program(const char *pin_dir, uint32_t ifindex, uint32_t *prog_id,
			 bool *attached, const char **mode_name);
const char *xdp_mode_name(enum xdp_attach_mode mode);

/* The flow table's capacity for the first load (limits.flowTableSize); a pinned table
 * keeps the size it was created with. */
void xdp_flow_table_size_set(uint32_t entries);

/* Reload: config maps of programs loaded from now on come from stage_dir (NULL: back to
 * the pinned ones). */
void xdp_stage_set(const char *stage_dir);
/* One loaded object (its programs and its maps, pinned or adopted: the first load creates
 * the maps): `up` and a reload attach it to every interface. NULL with errno set on
 * failure. */
struct xdp_generation *xdp_generation_load(const char *pin_dir);
int xdp_generation_fd(const struct xdp_generation *gen);
/* The generation's tc programs, for every tunnel's xfrm interface. */
void xdp_generation_tc_programs(const struct xdp_generation *gen, int *ingress, int *egress);
/* Another instance of the same program on the pinned maps, with dry_run set: it judges
 * packets exactly as the attached one does, but writes no flow and counts nothing
 * (`vnet-xdp verify`). Never attached. NULL with errno set on failure. */
struct xdp_generation *xdp_dry_run_load(const char *pin_dir);
void xdp_generation_close(struct xdp_generation *gen);
/* One interface's move to a new generation (reload). begin puts the new program in
 * place and pins it: where our program runs directly, by one XDP_FLAGS_REPLACE request;
 * where it runs in libxdp's dispatcher beside other programs, by adding the new program
 * to the dispatcher, the old one leaving at commit, so the others keep running. abort
 * puts the old program back. -EBUSY where another program holds the interface. */
struct xdp_swap {
	uint32_t ifindex;
	int old_fd, new_fd;
	bool shared; /* in a dispatcher */
};
int xdp_swap_begin(const char *pin_dir, struct xdp_generation *gen, uint32_t ifindex,
		   struct xdp_swap *s, uint32_t *prog_id);
int xdp_swap_commit(struct xdp_swap *s);
void xdp_swap_abort(const char *pin_dir, struct xdp_swap *s);

#endif

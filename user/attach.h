/* Attaching the XDP program to interfaces through libxdp, and finding it again. */
#ifndef VNET_XDP_ATTACH_H
#define VNET_XDP_ATTACH_H

#include <stdint.h>
#include <xdp/libxdp.h>

/* Loads the object once so its maps exist (pinned, or adopted when already pinned)
 * before any interface sees the program. Returns 0 or -errno. */
int xdp_maps_create(const char *pin_dir);
/* Loads the program for one interface, attaches it and pins it as xdp_<ifindex>.
 * mode XDP_MODE_UNSPEC tries native first, then generic. */
int xdp_attach_interface(const char *pin_dir, uint32_t ifindex, enum xdp_attach_mode mode,
			 uint32_t *prog_id, enum xdp_attach_mode *attached_mode);
/* Detaches our program from the interface if it is the one attached; removes its pin. */
int xdp_detach_interface(const char *pin_dir, uint32_t ifindex);
/* The id of the program pinned for ifindex and whether it is attached there. */
int xdp_attached_program(const char *pin_dir, uint32_t ifindex, uint32_t *prog_id,
			 bool *attached, const char **mode_name);
const char *xdp_mode_name(enum xdp_attach_mode mode);

#endif

/* The gateway's life cycle: up, reload, down (status is observe/status.h). Each is all or
 * nothing; up, reload and down hold the gateway's lock (lock.h) throughout, and refuse
 * with -EBUSY when another command keeps it longer than GATEWAY_LOCK_WAIT_MS. */
#ifndef VNET_XDP_GATEWAY_H
#define VNET_XDP_GATEWAY_H

#include <stdbool.h>
#include <xdp/libxdp.h>
#include "config/config.h"

/* Returns 0, or -errno after undoing everything it did. */
int gateway_up(const struct config *cfg, enum xdp_attach_mode mode);
/* Swaps the running gateway to cfg atomically (see gateway.c); on failure the running
 * generation is untouched. Returns 0 or -errno. */
int gateway_reload(const struct config *cfg);
/* Finishes or discards a reload that was killed midway. */
int gateway_recover(const char *gateway);
/* name NULL: the only gateway on this host. */
int gateway_down(const char *name);
/* Picks the gateway a command means: the one named, or the only one there is (-ENOENT
 * none, -EEXIST several, -EINVAL a name that is not a gateway name). */
int gateway_resolve_name(const char *name, char *out, size_t size);

#endif

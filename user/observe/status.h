/* `vnet-xdp status`: what runs of each gateway on this host. */
#ifndef VNET_XDP_STATUS_H
#define VNET_XDP_STATUS_H

#include <stdbool.h>

/* name NULL: every gateway. Prints the text or, with json, one document. Returns 0, or
 * -ENOENT after one line when the gateway named is not up. */
int gateway_status(const char *name, bool json);

#endif

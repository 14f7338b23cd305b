/* This machine's network interfaces, named where a value is still FILL-IN so that the
 * user sees what to write. */
#ifndef VNET_XDP_LOCAL_INTERFACES_H
#define VNET_XDP_LOCAL_INTERFACES_H

/* "eth0 (10.0.0.4, fe80::1), eth1 (none)": every interface but loopback, in the kernel's
 * order, with its IPv4 and IPv6 addresses; "none found" when there is none. A new
 * string (NULL when out of memory). */
char *local_interfaces_text(void);

#endif

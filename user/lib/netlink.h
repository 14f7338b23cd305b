/* Netlink for every layer that asks the kernel: rtnetlink requests (links, routes,
 * neighbours) and dumps of any bus (NETLINK_ROUTE, NETLINK_XFRM). */
#ifndef VNET_XDP_NETLINK_H
#define VNET_XDP_NETLINK_H

#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

/* Dumps one kind of netlink object (bus NETLINK_ROUTE or NETLINK_XFRM, request type and
 * its fixed header) through cb. Returns 0 or -errno. */
int netlink_dump(int bus, uint16_t type, const void *header, size_t header_size,
		 int (*cb)(const struct nlmsghdr *nlh, void *data), void *data);
/* Sends one rtnetlink request and waits for its answer: without cb its acknowledgement,
 * with cb the one reply, read by cb. Returns 0 or -errno (the kernel's refusal). */
int rtnl_request(struct nlmsghdr *nlh, int (*cb)(const struct nlmsghdr *nlh, void *data),
		 void *data);

#endif

/* The tunnels of a config (pure but for the interfaces' indexes): which connections this
 * box terminates, and the point-to-site clients of its gateways, each one tunnel with its
 * xfrm interface's name and if_id, and the MTU inside it. The kernel side is
 * datapath/tunnel.h. */
#ifndef VNET_XDP_TUNNEL_PLAN_H
#define VNET_XDP_TUNNEL_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <net/if.h>
#include "config/config.h"
#include "vnet_xdp.h"

struct tunnel {
	const char *name;   /* the connection's name */
	const struct config_connection *connection;
	/* Point-to-site: the gateway's clients (connection is then vpn_client->connection),
	 * any peer, the pool as the remote space. NULL for a connection. */
	const struct config_vpn_client *vpn_client;
	uint32_t id;        /* index in the tunnel list: counters and routes key on it */
	uint32_t vnet;      /* the VNet whose gateway is this side */
	struct ip_address local, peer; /* this box's endpoint, the other side's */
	const struct ip_prefix *remote_prefixes; /* on-premises space or the other VNet's */
	size_t n_remote_prefixes;
	char ifname[IF_NAMESIZE]; /* its xfrm interface */
	uint32_t if_id;
	uint32_t ifindex;   /* 0 while the interface does not exist */
	uint16_t tcp_mss;   /* gateway.tunnelTcpMss */
};

/* The connections this box terminates: those whose virtual network gateway is bound to
 * a local address in the gateway section. Problems (an other side without an address)
 * are written to `errors`, one line each. Returns 0 or -errno; *out is freed with free(). */
int tunnels_of_config(const struct config *cfg, FILE *errors, struct tunnel **out, size_t *count);
/* The xfrm interface name and if_id of the gateway's connection: "vx" and eight hex
 * digits of a hash of both names, the if_id that hash. Never truncated, the same on
 * every run, and apart across the gateways of one host. */
void tunnel_name_interface(const char *gateway, const char *connection, struct tunnel *t);
/* Fills each tunnel's ifindex from the interfaces of this network namespace: the one
 * thing plan_build asks the kernel (by name), since the interfaces are made first. */
void tunnels_resolve_ifindexes(struct tunnel *tunnels, size_t count);

/* The largest inner packet that, encrypted with the connection's ESP (its first
 * ipsecPolicy, else the largest of Azure's default offers) and UDP-encapsulated, fits an
 * underlay of underlay_mtu with outer IP headers of outer_family. 0: none fits. */
unsigned tunnel_inner_mtu(const struct config_connection *c, int outer_family,
			  unsigned underlay_mtu);

#endif

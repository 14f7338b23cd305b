#include <errno.h>
#include <ifaddrs.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <jansson.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "datapath/datapath.h"
#include "lib/bpf_map.h"
#include "lib/log.h"
#include "lib/netlink.h"
#include "compile/plan.h"
#include "compile/swanctl.h"
#include "datapath/tunnel.h"
#include "lib/vici.h"
#include "datapath/vpn_clients.h"
#include "vnet_xdp.h"

/* ---- rtnetlink ---------------------------------------------------------------------- */

/* Sends one request and waits for its acknowledgement. Returns 0 or -errno. */
static int rtnl_talk(struct nlmsghdr *nlh)
{
	return rtnl_request(nlh, NULL, NULL);
}

/* What an interface is, as far as telling ours from another's goes. */
struct link_identity {
	char name[IF_NAMESIZE];
	uint32_t ifindex;
	bool xfrm;
	uint32_t if_id;
};

static int link_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, IFLA_MAX) > 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static int link_info_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, IFLA_INFO_MAX) > 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static int xfrm_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, IFLA_XFRM_MAX) > 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static void link_identity_parse(const struct nlmsghdr *nlh, struct link_identity *id)
{
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFLA_MAX + 1] = { 0 }, *info[IFLA_INFO_MAX + 1] = { 0 };
	const struct nlattr *xfrm[IFLA_XFRM_MAX + 1] = { 0 };

	memset(id, 0, sizeof(*id));
	id->ifindex = (uint32_t)ifm->ifi_index;
	mnl_attr_parse(nlh, sizeof(*ifm), link_attr, tb);
	if (tb[IFLA_IFNAME])
		snprintf(id->name, sizeof(id->name), "%s", mnl_attr_get_str(tb[IFLA_IFNAME]));
	if (!tb[IFLA_LINKINFO])
		return;
	mnl_attr_parse_nested(tb[IFLA_LINKINFO], link_info_attr, info);
	id->xfrm = info[IFLA_INFO_KIND] && !strcmp(mnl_attr_get_str(info[IFLA_INFO_KIND]), "xfrm");
	if (!id->xfrm || !info[IFLA_INFO_DATA])
		return;
	mnl_attr_parse_nested(info[IFLA_INFO_DATA], xfrm_attr, xfrm);
	if (xfrm[IFLA_XFRM_IF_ID])
		id->if_id = mnl_attr_get_u32(xfrm[IFLA_XFRM_IF_ID]);
}

static int link_identity_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type == RTM_NEWLINK)
		link_identity_parse(nlh, data);
	return MNL_CB_OK;
}

/* The interface named ifname: 0, or -ENODEV when there is none. */
static int link_identity_of(const char *ifname, struct link_identity *id)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = RTM_GETLINK;
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	memset(id, 0, sizeof(*id));
	return rtnl_request(nlh, link_identity_cb, id);
}

/* Ours: an xfrm interface with the if_id we gave it (and the index we saw, if any). */
static bool link_is_ours(const struct link_identity *id, uint32_t if_id, uint32_t ifindex)
{
	return id->xfrm && id->if_id == if_id && (!ifindex || id->ifindex == ifindex);
}

static void link_describe(const struct link_identity *id, char *buf, size_t size)
{
	if (id->xfrm)
		snprintf(buf, size, "an xfrm interface with if_id %u", id->if_id);
	else
		snprintf(buf, size, "not an xfrm interface");
}

struct if_id_search {
	const struct tunnel *t;
	struct link_identity found;
};

static int if_id_search_cb(const struct nlmsghdr *nlh, void *data)
{
	struct if_id_search *search = data;
	struct link_identity id;

	link_identity_parse(nlh, &id);
	if (id.xfrm && id.if_id == search->t->if_id && strcmp(id.name, search->t->ifname))
		search->found = id;
	return MNL_CB_OK;
}

int tunnel_interface_check(const struct tunnel *t, bool *exists)
{
	struct if_id_search search = { .t = t };
	struct ifinfomsg ifm = { .ifi_family = AF_UNSPEC };
	struct link_identity id;
	char what[64];
	int err = link_identity_of(t->ifname, &id);

	*exists = !err;
	if (err && err != -ENODEV)
		return err;
	if (!err && !link_is_ours(&id, t->if_id, 0)) {
		link_describe(&id, what, sizeof(what));
		log_error("connection %s: interface %s exists and is not this gateway's (%s, "
			  "ours has if_id %u); allowed: remove it or rename the connection",
			  t->name, t->ifname, what, t->if_id);
		return -EEXIST;
	}
	/* Another interface with our if_id would get our SAs' traffic, or we its. */
	err = netlink_dump(NETLINK_ROUTE, RTM_GETLINK, &ifm, sizeof(ifm), if_id_search_cb,
			   &search);
	if (!err && search.found.xfrm) {
		log_error("connection %s: xfrm interface %s already has if_id %u, which %s needs; "
			  "allowed: remove it or rename the connection", t->name, search.found.name,
			  t->if_id, t->ifname);
		return -EEXIST;
	}
	return err;
}

static unsigned interface_mtu(uint32_t ifindex)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsigned mtu = 0;

	if (fd < 0)
		return 0;
	if (if_indextoname(ifindex, ifr.ifr_name) && ioctl(fd, SIOCGIFMTU, &ifr) == 0)
		mtu = (unsigned)ifr.ifr_mtu;
	close(fd);
	return mtu;
}

/* The interface made down: what must hold before it is up is set in between. */
static int interface_add(const struct tunnel *t, uint32_t uplink_ifindex, unsigned mtu)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlattr *linkinfo, *data;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, t->ifname);
	mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "xfrm");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	mnl_attr_put_u32(nlh, IFLA_XFRM_LINK, uplink_ifindex);
	mnl_attr_put_u32(nlh, IFLA_XFRM_IF_ID, t->if_id);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);
	return rtnl_talk(nlh);
}

/* No IPv6 address generation: without a link-local address the kernel sends nothing of
 * its own into the tunnel (router solicitations, which xfrm would drop for want of an SA
 * and count as the tunnel's egress drops); IPv6 through the tunnel is forwarded all the
 * same. The kernel reads the mode as the interface comes up, so it is set while it is
 * down (RTM_NEWLINK ignores IFLA_AF_SPEC). A kernel without IPv6 has nothing to say. */
static int interface_no_ipv6_autoconf(uint32_t ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;
	struct nlattr *af_spec, *inet6;
	int err;

	nlh->nlmsg_type = RTM_SETLINK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_index = (int)ifindex;
	af_spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
	inet6 = mnl_attr_nest_start(nlh, AF_INET6);
	mnl_attr_put_u8(nlh, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
	mnl_attr_nest_end(nlh, inet6);
	mnl_attr_nest_end(nlh, af_spec);
	err = rtnl_talk(nlh);
	return err == -EAFNOSUPPORT ? 0 : err;
}

static int interface_set_up(uint32_t ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;

	nlh->nlmsg_type = RTM_SETLINK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_index = (int)ifindex;
	ifm->ifi_flags = IFF_UP;
	ifm->ifi_change = IFF_UP;
	return rtnl_talk(nlh);
}

int tunnel_interface_create(const struct tunnel *t, uint32_t uplink_ifindex)
{
	const char *step = "create";
	uint32_t ifindex = 0;
	unsigned underlay = interface_mtu(uplink_ifindex) ?: 1500;
	unsigned mtu = tunnel_inner_mtu(t->connection, t->local.family, underlay);
	int err;

	/* Full-size packets into the tunnel still fit the underlay once encrypted, instead
	 * of being dropped until path-MTU discovery learns better. */
	if (mtu < 68) {
		log_error("connection %s: the uplink's MTU %u leaves no room for ESP", t->name,
			  underlay);
		return -EMSGSIZE;
	}
	err = interface_add(t, uplink_ifindex, mtu);

	if (err == -EOPNOTSUPP || err == -ENOENT) {
		log_error("connection %s: this kernel has no xfrm interfaces (CONFIG_XFRM_INTERFACE, "
			  "module xfrm_interface), which IPsec connections need; it also needs ESP "
			  "(CONFIG_INET_ESP, module esp4/esp6)", t->name);
		return -EOPNOTSUPP;
	}
	if (!err) {
		ifindex = if_nametoindex(t->ifname);
		err = ifindex ? 0 : -errno;
		step = "find the new";
	}
	if (!err) {
		err = interface_no_ipv6_autoconf(ifindex);
		step = "switch IPv6 address generation off on";
	}
	if (!err) {
		err = interface_set_up(ifindex);
		step = "bring up";
	}
	if (err) {
		log_error("connection %s: cannot %s xfrm interface %s (if_id %u): %s", t->name,
			  step, t->ifname, t->if_id, strerror(-err));
		/* Nothing half-made stays: the interface is ours until it is up. */
		if (ifindex)
			tunnel_interface_delete(t->ifname, t->if_id, ifindex);
	}
	return err;
}

int tunnel_interface_delete(const char *ifname, uint32_t if_id, uint32_t ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE], what[64];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;
	struct link_identity id;
	int err = link_identity_of(ifname, &id);

	if (err == -ENODEV)
		return 0;
	if (!err && !link_is_ours(&id, if_id, ifindex)) {
		link_describe(&id, what, sizeof(what));
		log_warn("interface %s is not the one this gateway made (%s, index %u; ours: if_id "
			 "%u, index %u): left alone", ifname, what, id.ifindex, if_id, ifindex);
		return 0;
	}
	if (!err) {
		/* By index: the name may have changed hands since we looked. */
		nlh->nlmsg_type = RTM_DELLINK;
		ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
		ifm->ifi_index = (int)id.ifindex;
		err = rtnl_talk(nlh);
	}
	if (err == -ENODEV)
		return 0;
	if (err)
		log_error("cannot delete xfrm interface %s: %s", ifname, strerror(-err));
	return err;
}

static int route_add(const struct tunnel *t, const struct ip_prefix *p)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = RTM_NEWROUTE;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = p->family;
	rtm->rtm_dst_len = p->len;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_DST, p->family == AF_INET ? 4 : 16, p->addr);
	mnl_attr_put_u32(nlh, RTA_OIF, t->ifindex);
	return rtnl_talk(nlh);
}

int tunnel_routes_add(const struct tunnel *t)
{
	for (size_t i = 0; i < t->n_remote_prefixes; i++) {
		int err = route_add(t, &t->remote_prefixes[i]);

		if (err) {
			char addr[INET6_ADDRSTRLEN];

			inet_ntop(t->remote_prefixes[i].family, t->remote_prefixes[i].addr, addr,
				  sizeof(addr));
			log_error("connection %s: cannot route %s/%u into %s: %s", t->name, addr,
				  t->remote_prefixes[i].len, t->ifname, strerror(-err));
			return err;
		}
	}
	return 0;
}

/* ---- routes a reload leaves behind ---- */

struct route_prune {
	const struct tunnel *t;
	struct rtmsg keys[64];    /* family and length of each route to delete */
	uint8_t dst[64][16];
	size_t n;
};

static bool remote_prefix_of(const struct tunnel *t, int family, unsigned len, const void *dst)
{
	for (size_t i = 0; i < t->n_remote_prefixes; i++) {
		const struct ip_prefix *p = &t->remote_prefixes[i];

		if (p->family == family && p->len == len &&
		    !memcmp(p->addr, dst, family == AF_INET ? 4 : 16))
			return true;
	}
	return false;
}

static int route_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, RTA_MAX) > 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

/* Collects the routes into the tunnel's interface that are none of its remote spaces. */
static int route_prune_cb(const struct nlmsghdr *nlh, void *data)
{
	struct route_prune *prune = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };
	size_t alen = rtm->rtm_family == AF_INET ? 4 : 16;

	mnl_attr_parse(nlh, sizeof(*rtm), route_attr, tb);
	if (rtm->rtm_table != RT_TABLE_MAIN || rtm->rtm_protocol != RTPROT_STATIC ||
	    !tb[RTA_OIF] || mnl_attr_get_u32(tb[RTA_OIF]) != prune->t->ifindex || !tb[RTA_DST] ||
	    mnl_attr_get_payload_len(tb[RTA_DST]) != alen || prune->n >= 64)
		return MNL_CB_OK;
	if (remote_prefix_of(prune->t, rtm->rtm_family, rtm->rtm_dst_len,
			     mnl_attr_get_payload(tb[RTA_DST])))
		return MNL_CB_OK;
	prune->keys[prune->n] = *rtm;
	memcpy(prune->dst[prune->n], mnl_attr_get_payload(tb[RTA_DST]), alen);
	prune->n++;
	return MNL_CB_OK;
}

static int routes_dump(int family, struct route_prune *prune)
{
	struct rtmsg rtm = { .rtm_family = family };

	return netlink_dump(NETLINK_ROUTE, RTM_GETROUTE, &rtm, sizeof(rtm), route_prune_cb, prune);
}

/* Removes the routes into the tunnel's interface that its remote spaces no longer hold
 * (after tunnel_routes_add put the current ones in: no moment without a route). */
int tunnel_routes_prune(const struct tunnel *t)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct route_prune prune = { .t = t };
	int err = 0;

	if (!t->ifindex)
		return 0;
	for (size_t f = 0; !err && f < 2; f++)
		err = routes_dump(families[f], &prune);
	for (size_t i = 0; !err && i < prune.n; i++) {
		char buf[MNL_SOCKET_BUFFER_SIZE];
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
		struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

		nlh->nlmsg_type = RTM_DELROUTE;
		*rtm = prune.keys[i];
		mnl_attr_put(nlh, RTA_DST, rtm->rtm_family == AF_INET ? 4 : 16, prune.dst[i]);
		mnl_attr_put_u32(nlh, RTA_OIF, t->ifindex);
		err = rtnl_talk(nlh);
		if (err == -ESRCH)
			err = 0;
	}
	if (err)
		log_error("connection %s: cannot remove the old routes into %s: %s", t->name,
			  t->ifname, strerror(-err));
	return err;
}

static bool address_equal(const struct sockaddr *sa, const struct ip_address *a)
{
	if (sa->sa_family != a->family)
		return false;
	if (a->family == AF_INET)
		return !memcmp(&((const struct sockaddr_in *)sa)->sin_addr, a->addr, 4);
	return !memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, a->addr, 16);
}

uint32_t tunnel_uplink_ifindex(const struct config *cfg, const struct tunnel *t)
{
	struct ifaddrs *list, *ifa;
	uint32_t ifindex = 0;

	if (getifaddrs(&list) == 0) {
		for (ifa = list; ifa && !ifindex; ifa = ifa->ifa_next)
			if (ifa->ifa_addr && address_equal(ifa->ifa_addr, &t->local))
				ifindex = if_nametoindex(ifa->ifa_name);
		freeifaddrs(list);
	}
	for (size_t i = 0; !ifindex && i < cfg->n_ifaces; i++)
		if (cfg->ifaces[i].role == IFACE_UPLINK)
			ifindex = if_nametoindex(cfg->ifaces[i].name);
	return ifindex;
}

/* ---- tc ----------------------------------------------------------------------------- */

static int tc_attach_one(int prog_fd, uint32_t ifindex, enum bpf_tc_attach_point where)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = where);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1, .prog_fd = prog_fd,
		    .flags = BPF_TC_F_REPLACE);
	int err;

	hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS; /* the clsact qdisc */
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	hook.attach_point = where;
	return bpf_tc_attach(&hook, &opts);
}

static void program_pin(const char *pin_dir, const char *what, uint32_t ifindex, int fd)
{
	char path[300];

	/* Pinned so that status and reload find them; the attachment itself holds them. */
	snprintf(path, sizeof(path), "%s/%s_%u", pin_dir, what, ifindex);
	unlink(path);
	if (bpf_obj_pin(fd, path))
		log_debug("cannot pin %s: %s", path, strerror(errno));
}

int tunnel_programs_attach(const struct xdp_generation *gen, const char *pin_dir,
			   uint32_t ifindex)
{
	int err, in, out;

	xdp_generation_tc_programs(gen, &in, &out);
	err = tc_attach_one(in, ifindex, BPF_TC_INGRESS);
	if (!err)
		err = tc_attach_one(out, ifindex, BPF_TC_EGRESS);
	if (!err) {
		program_pin(pin_dir, "tc_in", ifindex, in);
		program_pin(pin_dir, "tc_out", ifindex, out);
	}
	return err;
}

/* ---- maps --------------------------------------------------------------------------- */

static void address_key_from(struct address_key *key, const struct ip_address *a)
{
	memset(key, 0, sizeof(*key));
	key->family = a->family;
	memcpy(key->addr, a->addr, a->family == AF_INET ? 4 : 16);
}

int tunnel_maps_write(const struct datapath_maps *maps, const struct tunnel *tunnels,
		      size_t count)
{
	int peers = maps->fd[MAP_tunnel_peers], endpoints = maps->fd[MAP_tunnel_endpoints];
	int ifaces = maps->fd[MAP_tunnel_interfaces];
	int err;

	if ((err = map_clear(peers, sizeof(struct address_key))) ||
	    (err = map_clear(endpoints, sizeof(struct address_key))) ||
	    (err = map_clear(ifaces, sizeof(uint32_t))))
		return err;
	for (size_t i = 0; i < count && !err; i++) {
		const struct tunnel *t = &tunnels[i];
		struct tunnel_peer peer = { .tunnel = t->id, .xfrm_ifindex = t->ifindex };
		struct tunnel_interface ti = { .tunnel = t->id, .vnet = t->vnet,
					       .tcp_mss = t->tcp_mss,
					       .flags = t->vpn_client ? TUNNEL_FLAG_POINT_TO_SITE : 0 };
		struct address_key key;
		uint32_t users = 0;

		address_key_from(&peer.local, &t->local);
		address_key_from(&key, &t->peer);
		if (t->vpn_client) /* any client: the family's zero address stands for them */
			key.family = t->local.family;
		if (bpf_map_update_elem(peers, &key, &peer, BPF_ANY))
			err = -errno;
		bpf_map_lookup_elem(endpoints, &peer.local, &users);
		users++;
		if (!err && bpf_map_update_elem(endpoints, &peer.local, &users, BPF_ANY))
			err = -errno;
		if (!err && t->ifindex && bpf_map_update_elem(ifaces, &t->ifindex, &ti, BPF_ANY))
			err = -errno;
	}
	return err;
}

/* ---- the secret --------------------------------------------------------------------- */

/* Why the file the config was read from may not hold a secret, or NULL when it may.
 * The owner may be root or the user running us: a gateway run by a service user with
 * CAP_NET_ADMIN and CAP_BPF trusts its own files as much as itself; as root, only root's. */
static const char *secret_file_unsafe(const struct config_source *source, char *buf, size_t size)
{
	if (source->via_symlink)
		return "it is a symbolic link; allowed: the file itself";
	if (source->owner != 0 && source->owner != geteuid()) {
		snprintf(buf, size, "it is owned by uid %u; allowed: owned by root",
			 (unsigned)source->owner);
		return buf;
	}
	if (source->mode & 077) {
		snprintf(buf, size, "other users may read or write it (mode %04o); allowed: "
			 "readable by its owner only (chmod 600)", (unsigned)source->mode);
		return buf;
	}
	return NULL;
}

int tunnel_check_secret_file(const struct config *cfg)
{
	char buf[128];
	const char *why;
	bool has_key = false;

	for (size_t i = 0; i < cfg->n_connections; i++)
		has_key |= cfg->connections[i].shared_key != NULL;
	/* Not a file (a pipe, a document in memory): nothing on disk to protect. A link to
	 * a pipe, such as /dev/stdin, is one too. */
	if (!has_key || !cfg->path || !cfg->source.regular_file)
		return 0;
	why = secret_file_unsafe(&cfg->source, buf, sizeof(buf));
	if (!why)
		return 0;
	log_error("%s holds a sharedKey but %s", cfg->path, why);
	return -EPERM;
}

/* ---- the life cycle ----------------------------------------------------------------- */

int tunnels_create_interfaces(const struct config *cfg, struct tunnels_progress *progress)
{
	struct tunnel *tunnels;
	size_t count;
	int err;

	err = tunnels_of_config(cfg, stderr, &tunnels, &count);
	if (err)
		return err;
	for (size_t i = 0; !err && i < count; i++) {
		uint32_t uplink;
		bool exists;

		err = tunnel_interface_check(&tunnels[i], &exists);
		if (err)
			break;
		if (exists)
			continue; /* ours, left by an earlier `up`: adopted */
		uplink = tunnel_uplink_ifindex(cfg, &tunnels[i]);
		if (!uplink) {
			log_error("connection %s: no uplink interface to carry it; allowed: an "
				  "interface with role uplink in gateway.interfaces", tunnels[i].name);
			err = -ENODEV;
			break;
		}
		err = tunnel_interface_create(&tunnels[i], uplink);
		if (!err) {
			progress->created_if_id[progress->n_created] = tunnels[i].if_id;
			snprintf(progress->created[progress->n_created++], IF_NAMESIZE, "%s",
				 tunnels[i].ifname);
		}
	}
	free(tunnels);
	return err;
}

/* The set of the plan's tunnels, in charon's words. */
static int ike_set_of_plan(const struct config *cfg, const struct plan *plan,
			   struct swanctl_set *set)
{
	return swanctl_set_build(cfg, plan->tunnels, plan->n_tunnels, set);
}

int tunnels_start(const struct config *cfg, const struct xdp_generation *gen,
		  const char *pin_dir, const struct plan *plan, struct tunnels_progress *progress)
{
	struct swanctl_set set;
	struct vici v = { .fd = -1 };
	json_t *none;
	int err = 0;

	if (!plan->n_tunnels)
		return 0;
	for (size_t i = 0; !err && i < plan->n_tunnels; i++) {
		const struct tunnel *t = &plan->tunnels[i];

		err = tunnel_programs_attach(gen, pin_dir, t->ifindex);
		if (err) {
			log_error("connection %s: cannot attach the tc programs to %s: %s", t->name,
				  t->ifname, strerror(-err));
			break;
		}
		err = tunnel_routes_add(t);
	}
	if (err)
		return err;
	err = ike_set_of_plan(cfg, plan, &set);
	if (err)
		return err;
	err = swanctl_connect(&v);
	none = json_object();
	if (!err)
		err = swanctl_apply(&v, none, &set, &progress->ike);
	vici_close(&v);
	json_decref(none);
	swanctl_set_free(&set);
	return err;
}

json_t *tunnels_ike_of_state(json_t *state)
{
	json_t *ike = json_object_get(state, "ike"), *owned, *it;
	size_t i;

	if (json_is_object(ike))
		return json_incref(ike);
	/* A state written before it recorded the definitions: the names only. */
	owned = json_object();
	json_array_foreach(json_object_get(state, "tunnels"), i, it) {
		const char *name = json_string_value(json_object_get(it, "swanctl"));

		if (name && *name)
			json_object_set_new(owned, name, json_null());
	}
	return owned;
}

int tunnels_ike_prepare(const struct config *cfg, const struct plan *plan, json_t *state,
			struct tunnels_ike *ike)
{
	int err;

	ike->vici.fd = -1;
	ike->old = tunnels_ike_of_state(state);
	err = ike_set_of_plan(cfg, plan, &ike->next);
	if (!err && (json_object_size(ike->old) || json_object_size(ike->next.connections)))
		err = swanctl_connect(&ike->vici);
	if (err)
		tunnels_ike_free(ike);
	return err;
}

void tunnels_ike_free(struct tunnels_ike *ike)
{
	vici_close(&ike->vici);
	swanctl_set_free(&ike->next);
	json_decref(ike->old);
	ike->old = NULL;
}

/* Deletes the interface a state's tunnel names, if it is still the one recorded. */
static int tunnel_interface_delete_recorded(const json_t *tunnel)
{
	const char *ifname = json_string_value(json_object_get(tunnel, "interface"));
	json_int_t if_id = json_integer_value(json_object_get(tunnel, "ifId"));
	json_int_t ifindex = json_integer_value(json_object_get(tunnel, "ifindex"));

	if (!ifname)
		return 0;
	/* No if_id recorded: nothing tells ours from another's, so it stays. */
	return tunnel_interface_delete(ifname, (uint32_t)if_id, (uint32_t)ifindex);
}

/* Whether the plan still has a connection on the interface named in the old state. */
static bool plan_has_interface(const struct plan *plan, const char *ifname)
{
	for (size_t i = 0; ifname && i < plan->n_tunnels; i++)
		if (!strcmp(plan->tunnels[i].ifname, ifname))
			return true;
	return false;
}

int tunnels_reload(const struct xdp_generation *gen, const char *pin_dir,
		   const struct plan *plan, json_t *old_state,
		   struct tunnels_ike *ike, json_t **in_force)
{
	json_t *old = json_object_get(old_state, "tunnels"), *it;
	size_t i;
	int err = 0, ike_err = 0;

	for (i = 0; !err && i < plan->n_tunnels; i++) {
		const struct tunnel *t = &plan->tunnels[i];

		if (!t->ifindex)
			continue;
		err = tunnel_programs_attach(gen, pin_dir, t->ifindex);
		if (err)
			log_error("connection %s: cannot re-attach the tc programs to %s: %s",
				  t->name, t->ifname, strerror(-err));
		if (!err)
			err = tunnel_routes_add(t);
		if (!err)
			err = tunnel_routes_prune(t);
	}
	*in_force = NULL;
	if (ike->vici.fd >= 0)
		ike_err = swanctl_apply(&ike->vici, ike->old, &ike->next, in_force);
	else
		*in_force = json_object();
	/* The interfaces of connections gone go only once charon has let them go. */
	json_array_foreach(old, i, it) {
		const char *ifname = json_string_value(json_object_get(it, "interface"));

		if (!err && !ike_err && ifname && !plan_has_interface(plan, ifname))
			tunnel_interface_delete_recorded(it);
	}
	if (err)
		log_warn("the tunnels keep (part of) the previous connections until the next reload");
	return ike_err;
}

/* Unloads what owned names from charon, saying so when charon cannot be reached. */
static int ike_remove(json_t *owned)
{
	struct vici v = { .fd = -1 };
	int err;

	if (!json_object_size(owned))
		return 0;
	err = swanctl_connect(&v);
	if (!err)
		err = swanctl_remove(&v, owned);
	vici_close(&v);
	return err;
}

void tunnels_undo(struct tunnels_progress *progress)
{
	ike_remove(progress->ike);
	for (size_t i = 0; i < progress->n_created; i++)
		tunnel_interface_delete(progress->created[i], progress->created_if_id[i], 0);
	tunnels_progress_keep(progress);
}

void tunnels_progress_keep(struct tunnels_progress *progress)
{
	progress->n_created = 0;
	json_decref(progress->ike);
	progress->ike = NULL;
}

/* For serve and `clients`, which refuse clients with these after authentication. */
static json_t *revoked_list(const struct config_vpn_client *vc)
{
	json_t *list = json_array();

	for (size_t i = 0; i < vc->n_revoked; i++) {
		char text[2 * SHA1_DIGEST_LEN + 1];

		thumbprint_text(vc->revoked[i], text);
		json_array_append_new(list, json_string(text));
	}
	return list;
}

json_t *tunnels_state(const struct config *cfg, const struct plan *plan)
{
	json_t *list = json_array();

	for (size_t i = 0; i < plan->n_tunnels; i++) {
		const struct tunnel *t = &plan->tunnels[i];
		char name[200], peer[INET6_ADDRSTRLEN] = "", local[INET6_ADDRSTRLEN] = "";

		swanctl_connection_name(cfg->gateway_name, t, name, sizeof(name));
		inet_ntop(t->peer.family, t->peer.addr, peer, sizeof(peer));
		inet_ntop(t->local.family, t->local.addr, local, sizeof(local));
		/* For serve's redial: which child SAs to start, and whether this side may. */
		json_array_append_new(list, json_pack("{s:s, s:i, s:s, s:i, s:i, s:s, s:s, s:s, "
			"s:i, s:b, s:b}", "name", t->name, "id", (json_int_t)t->id, "interface",
			t->ifname, "ifindex", (json_int_t)t->ifindex, "ifId", (json_int_t)t->if_id,
			"swanctl", name, "peer", peer, "local", local, "children",
			(json_int_t)swanctl_child_count(cfg, t), "initiates",
			t->connection->mode != CONNECTION_MODE_RESPONDER_ONLY,
			"pointToSite", t->vpn_client != NULL));
		if (t->vpn_client)
			json_object_set_new(json_array_get(list, json_array_size(list) - 1),
					    "revokedThumbprints", revoked_list(t->vpn_client));
	}
	return list;
}

int tunnels_down(const char *gateway, json_t *state)
{
	json_t *list = json_object_get(state, "tunnels"), *owned, *it;
	size_t i;
	int err = 0;

	owned = tunnels_ike_of_state(state);
	/* charon gone is not a reason to keep the rest */
	if (ike_remove(owned))
		log_warn("charon may still hold connections of gateway %s (see above)", gateway);
	json_decref(owned);
	json_array_foreach(list, i, it) {
		int rc = tunnel_interface_delete_recorded(it);

		if (rc && !err)
			err = rc;
	}
	return err;
}

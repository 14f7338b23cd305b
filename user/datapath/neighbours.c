#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include "lib/log.h"
#include "datapath/neighbours.h"
#include "lib/netlink.h"

/* One neighbour entry: the address resolved, on the interface it is resolved on. */
struct neighbour {
	struct ip_address address;
	uint32_t ifindex;
};

static size_t address_len(const struct ip_address *a)
{
	return a->family == AF_INET ? 4 : 16;
}

/* ---- the kernel --------------------------------------------------------------------- */

struct route_answer {
	const struct ip_address *destination;
	struct neighbour *out;
	bool unicast;
};

static int route_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, RTA_MAX) > 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static int route_answer_read(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct route_answer *answer = data;
	size_t alen = address_len(answer->destination);

	mnl_attr_parse(nlh, sizeof(*rtm), route_attr, tb);
	if (rtm->rtm_type != RTN_UNICAST || !tb[RTA_OIF])
		return MNL_CB_OK;
	answer->unicast = true;
	answer->out->ifindex = mnl_attr_get_u32(tb[RTA_OIF]);
	answer->out->address = *answer->destination;
	/* Behind a router the frames go to the router's MAC: that is the entry to resolve,
	 * as bpf_fib_lookup will look it up. */
	if (tb[RTA_GATEWAY] && mnl_attr_get_payload_len(tb[RTA_GATEWAY]) == alen)
		memcpy(answer->out->address.addr, mnl_attr_get_payload(tb[RTA_GATEWAY]), alen);
	return MNL_CB_OK;
}

/* The neighbour the kernel's FIB sends traffic for hop to. -ENETUNREACH when it routes
 * hop nowhere (or to itself). */
static int next_hop_neighbour(const struct ip_address *hop, struct neighbour *out)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct route_answer answer = { .destination = hop, .out = out };
	struct rtmsg *rtm;
	int err;

	nlh->nlmsg_type = RTM_GETROUTE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = hop->family;
	rtm->rtm_dst_len = address_len(hop) * 8;
	mnl_attr_put(nlh, RTA_DST, address_len(hop), hop->addr);
	err = rtnl_request(nlh, route_answer_read, &answer);
	if (err)
		return err;
	return answer.unicast ? 0 : -ENETUNREACH;
}

static struct nlmsghdr *neighbour_request(char *buf, uint16_t type, uint16_t flags,
					  const struct neighbour *n, uint16_t state)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ndmsg *ndm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = n->address.family;
	ndm->ndm_ifindex = (int)n->ifindex;
	ndm->ndm_state = state;
	mnl_attr_put(nlh, NDA_DST, address_len(&n->address), n->address.addr);
	return nlh;
}

/* NUD_NONE plus the managed flag: the kernel resolves the entry now and keeps it
 * resolved (what `ip neigh replace ADDR dev DEV managed` asks for). Replace, so that an
 * entry the kernel learned already becomes managed too. */
static int managed_entry_add(const struct neighbour *n)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = neighbour_request(buf, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE,
						 n, NUD_NONE);

	mnl_attr_put_u32(nlh, NDA_FLAGS_EXT, NTF_EXT_MANAGED);
	return rtnl_request(nlh, NULL, NULL);
}

static int entry_delete(const struct neighbour *n)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int err = rtnl_request(neighbour_request(buf, RTM_DELNEIGH, 0, n, 0), NULL, NULL);

	return err == -ENOENT ? 0 : err;
}

/* One datagram to the discard port from the interface: the kernel resolves the address
 * to send it (ARP or ND), and the entry holds until it ages out. */
static int probe_send(const struct neighbour *n)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9) };
	char ifname[IF_NAMESIZE];
	int fd, err = 0;

	if (!if_indextoname(n->ifindex, ifname))
		return -errno;
	fd = socket(n->address.family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (n->address.family == AF_INET) {
		memcpy(&sin.sin_addr, n->address.addr, 4);
	} else {
		memcpy(&sin6.sin6_addr, n->address.addr, 16);
		sin6.sin6_scope_id = n->ifindex;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, strlen(ifname) + 1) ||
	    (n->address.family == AF_INET ? connect(fd, (struct sockaddr *)&sin, sizeof(sin)) :
					    connect(fd, (struct sockaddr *)&sin6, sizeof(sin6))) ||
	    send(fd, "", 0, 0) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* ---- the set in the state file ------------------------------------------------------ */

static json_t *neighbour_json(const struct neighbour *n)
{
	char text[INET6_ADDRSTRLEN];

	inet_ntop(n->address.family, n->address.addr, text, sizeof(text));
	return json_pack("{s:s, s:i}", "address", text, "ifindex", (json_int_t)n->ifindex);
}

static bool neighbour_of_json(json_t *o, struct neighbour *n)
{
	const char *text = json_string_value(json_object_get(o, "address"));

	memset(n, 0, sizeof(*n));
	n->ifindex = (uint32_t)json_integer_value(json_object_get(o, "ifindex"));
	if (!text || !n->ifindex)
		return false;
	n->address.family = strchr(text, ':') ? AF_INET6 : AF_INET;
	return inet_pton(n->address.family, text, n->address.addr) == 1;
}

static bool set_holds(json_t *set, const struct neighbour *n)
{
	struct neighbour other;
	json_t *o;
	size_t i;

	json_array_foreach(set, i, o)
		if (neighbour_of_json(o, &other) && other.ifindex == n->ifindex &&
		    !memcmp(&other.address, &n->address, sizeof(other.address)))
			return true;
	return false;
}

static void address_text(const struct ip_address *a, char *buf, size_t size)
{
	inet_ntop(a->family, a->addr, buf, size);
}

/* The appliance at hop resolved from now on: kept in `set` when the entry is ours. */
static void next_hop_resolve(const struct ip_address *hop, json_t *previous, json_t *set)
{
	char text[INET6_ADDRSTRLEN], ifname[IF_NAMESIZE] = "?";
	struct neighbour n;
	int err;

	address_text(hop, text, sizeof(text));
	err = next_hop_neighbour(hop, &n);
	if (err) {
		log_warn("next hop %s: the kernel has no route to it (%s); its routes drop as "
			 "next_hop_unresolved", text, strerror(-err));
		return;
	}
	if (set_holds(set, &n))
		return;
	if (set_holds(previous, &n)) { /* managed already: replacing would unresolve it */
		json_array_append_new(set, neighbour_json(&n));
		return;
	}
	if_indextoname(n.ifindex, ifname);
	err = managed_entry_add(&n);
	if (!err) {
		json_array_append_new(set, neighbour_json(&n));
		return;
	}
	address_text(&n.address, text, sizeof(text));
	log_warn("the kernel refuses a managed neighbour entry for %s on %s (%s; Linux 5.16 "
		 "has them): sending it one probe instead, resolved until the entry ages out",
		 text, ifname, strerror(-err));
	err = probe_send(&n);
	if (err)
		log_warn("cannot send a probe to %s on %s: %s", text, ifname, strerror(-err));
}

json_t *neighbours_manage(const struct plan *plan, json_t *previous)
{
	json_t *set = json_array(), *o;
	struct neighbour n;
	size_t i;

	for (i = 0; i < plan->n_routes; i++) {
		const struct plan_route *r = &plan->routes[i];

		if (r->active && r->info.type == ROUTE_VIRTUAL_APPLIANCE)
			next_hop_resolve(&r->next_hop_ip, previous, set);
	}
	json_array_foreach(previous, i, o)
		if (neighbour_of_json(o, &n) && !set_holds(set, &n) && entry_delete(&n))
			log_warn("cannot remove the neighbour entry for %s",
				 json_string_value(json_object_get(o, "address")));
	return set;
}

void neighbours_release(json_t *managed)
{
	struct plan none = { 0 };

	json_decref(neighbours_manage(&none, managed));
}

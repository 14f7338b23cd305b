#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>
#include "datapath/bgp.h"
#include "datapath/express_route.h"
#include "datapath/state.h"
#include "datapath/tunnel.h"
#include "lib/bpf_map.h"
#include "lib/lock.h"
#include "lib/log.h"
#include "lib/netlink.h"

/* ---- the plan with what bgpd learned ----------------------------------------------- */

static int binding_of(const struct config *cfg, const char *connection)
{
	for (size_t b = 0; connection && b < cfg->n_express_route_bindings; b++) {
		const struct config_express_route_binding *binding = &cfg->express_route_bindings[b];

		if (!strcasecmp(cfg->connections[binding->connection].name, connection))
			return (int)b;
	}
	return -1;
}

int express_route_plan_build(const struct config *cfg, const uint32_t *ifindexes,
			     struct plan *out, json_t **as_paths)
{
	size_t n = cfg->n_express_route_bindings;
	json_t *learned = n && cfg->gateway_name ? bgp_learned_routes(cfg->gateway_name) : NULL;
	struct plan_learned_route *routes = calloc(json_array_size(learned) + 1, sizeof(*routes));
	uint32_t *links = calloc(n + 1, sizeof(*links));
	struct plan_learned in = { .link_ifindexes = links, .routes = routes };
	json_t *it;
	size_t i;
	int err;

	if (!routes || !links) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t b = 0; b < n; b++)
		links[b] = if_nametoindex(cfg->express_route_bindings[b].interface);
	json_array_foreach(learned, i, it) {
		struct plan_learned_route *r = &routes[in.n_routes];
		int b = binding_of(cfg, json_string_value(json_object_get(it, "connection")));
		const char *prefix = json_string_value(json_object_get(it, "prefix"));

		/* one path per prefix and link: the best of those from the peer */
		if (b < 0 || !prefix || !json_is_true(json_object_get(it, "best")) ||
		    ip_prefix_parse(prefix, &r->prefix))
			continue;
		r->binding = (size_t)b;
		r->as_path = json_string_value(json_object_get(it, "asPath"));
		in.n_routes++;
	}
	err = plan_build_learned(cfg, ifindexes, &in, out);
	if (!err && as_paths) { /* the AS paths live in `learned`: the caller keeps it */
		*as_paths = learned;
		learned = NULL;
	} else if (!err) {
		for (size_t r = 0; r < out->n_routes; r++)
			out->routes[r].as_path = NULL;
		for (size_t e = 0; e < out->n_express_routes; e++)
			for (size_t p = 0; p < out->express_routes[e].n_learned; p++)
				out->express_routes[e].learned[p].as_path = NULL;
	}
out:
	free(routes);
	free(links);
	json_decref(learned);
	return err;
}

/* ---- maps ---------------------------------------------------------------------------- */

int express_route_maps_write(const struct datapath_maps *maps, const struct plan *plan)
{
	for (size_t e = 0; e < plan->n_express_routes; e++) {
		const struct plan_express_route *er = &plan->express_routes[e];
		struct tunnel_interface ti = { .tunnel = er->id, .vnet = er->vnet };
		struct address_key local = { .family = AF_INET };

		if (!er->ifindex)
			continue;
		memcpy(local.addr, er->local, 4);
		if (bpf_map_update_elem(maps->fd[MAP_tunnel_interfaces], &er->ifindex, &ti, BPF_ANY) ||
		    bpf_map_update_elem(maps->fd[MAP_local_addresses], &local, &er->ifindex, BPF_ANY))
			return -errno;
	}
	return 0;
}

static bool is_link_ifindex(const struct plan *plan, uint32_t ifindex)
{
	for (size_t e = 0; ifindex && e < plan->n_express_routes; e++)
		if (plan->express_routes[e].ifindex == ifindex)
			return true;
	return false;
}

/* A route of the map or the plan that an ExpressRoute link owns: into its device, with
 * its tunnel id. */
static bool is_learned_route(const struct plan *plan, const struct route_info *info)
{
	for (size_t e = 0; info->type == ROUTE_TUNNEL && e < plan->n_express_routes; e++)
		if (plan->express_routes[e].id == info->peering &&
		    plan->express_routes[e].ifindex == info->egress_ifindex)
			return true;
	return false;
}

struct keys {
	struct lpm_key *key;
	size_t n, size;
};

static int keys_add(struct keys *k, const struct lpm_key *key)
{
	if (k->n == k->size) {
		void *bigger = realloc(k->key, (k->size ? k->size * 2 : 64) * sizeof(*key));

		if (!bigger)
			return -ENOMEM;
		k->key = bigger;
		k->size = k->size ? k->size * 2 : 64;
	}
	k->key[k->n++] = *key;
	return 0;
}

struct walk {
	const struct plan *plan;
	struct keys stale;
	bool sources;
};

static bool planned_source(const struct plan *plan, const struct lpm_key *key)
{
	for (size_t i = 0; i < plan->n_source_prefixes; i++)
		if (!memcmp(&plan->source_prefixes[i].key, key, sizeof(*key)))
			return true;
	return false;
}

static const struct plan_route *planned_route(const struct plan *plan, const struct lpm_key *key)
{
	for (size_t i = 0; i < plan->n_routes; i++)
		if (plan->routes[i].active && !memcmp(&plan->routes[i].key, key, sizeof(*key)))
			return &plan->routes[i];
	return NULL;
}

/* The map's entries that are a link's and that the plan no longer has as they are. */
static int stale_entry(const void *key, const void *value, void *ctx)
{
	struct walk *w = ctx;
	const struct lpm_key *k = key;

	if (w->sources)
		return is_link_ifindex(w->plan, k->scope) && !planned_source(w->plan, k) ?
			       keys_add(&w->stale, k) : 0;
	const struct plan_route *planned = planned_route(w->plan, k);

	return is_learned_route(w->plan, value) &&
		       (!planned || memcmp(&planned->info, value, sizeof(planned->info))) ?
		       keys_add(&w->stale, k) : 0;
}

/* One map brought to the plan for the links' entries: what the plan has of them written
 * where the map differs, the links' entries it no longer has deleted (a withdrawn prefix
 * whose key another route holds, a local network gateway's say, gets that route back). */
static int map_follow(int fd, const struct plan *plan, bool sources, unsigned *changes)
{
	struct walk w = { .plan = plan, .sources = sources };
	size_t value_size = sources ? sizeof(struct source_info) : sizeof(struct route_info);
	int err = map_each_entry(fd, sizeof(struct lpm_key), value_size, stale_entry, &w);

	for (size_t i = 0; !err && i < w.stale.n; i++) {
		const struct plan_route *back = sources ? NULL : planned_route(plan, &w.stale.key[i]);

		if (back ? bpf_map_update_elem(fd, &back->key, &back->info, BPF_ANY)
			 : bpf_map_delete_elem(fd, &w.stale.key[i]) && errno != ENOENT)
			err = -errno;
		else if (changes)
			++*changes;
	}
	free(w.stale.key);
	for (size_t i = 0; !err && sources && i < plan->n_source_prefixes; i++) {
		const struct plan_prefix_entry *e = &plan->source_prefixes[i];
		struct source_info now;

		if (!is_link_ifindex(plan, e->key.scope) ||
		    (!bpf_map_lookup_elem(fd, &e->key, &now) && !memcmp(&now, &e->info, sizeof(now))))
			continue;
		if (bpf_map_update_elem(fd, &e->key, &e->info, BPF_ANY))
			err = -errno;
	}
	for (size_t i = 0; !err && !sources && i < plan->n_routes; i++) {
		const struct plan_route *r = &plan->routes[i];
		struct route_info now;

		if (!r->active || r->source != ROUTE_SOURCE_BGP ||
		    (!bpf_map_lookup_elem(fd, &r->key, &now) && !memcmp(&now, &r->info, sizeof(now))))
			continue;
		if (bpf_map_update_elem(fd, &r->key, &r->info, BPF_ANY))
			err = -errno;
		else if (changes)
			++*changes;
	}
	return err;
}

/* ---- tc ---------------------------------------------------------------------------- */

int express_route_attach(const struct xdp_generation *gen, const char *pin_dir,
			 const struct plan *plan)
{
	for (size_t e = 0; e < plan->n_express_routes; e++) {
		const struct plan_express_route *er = &plan->express_routes[e];
		int err;

		if (!er->ifindex)
			continue;
		err = tunnel_programs_attach(gen, pin_dir, er->ifindex);
		if (err) {
			log_error("ExpressRoute connection %s: cannot attach the tc programs to %s: %s",
				  er->connection, er->interface, strerror(-err));
			return err;
		}
	}
	return 0;
}

static void tc_detach(uint32_t ifindex)
{
	static const enum bpf_tc_attach_point points[] = { BPF_TC_INGRESS, BPF_TC_EGRESS };

	for (size_t i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = points[i]);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1);

		bpf_tc_detach(&hook, &opts); /* gone with its device is as good */
	}
}

/* ---- kernel routes ----------------------------------------------------------------- */

static int kernel_route(uint16_t type, uint16_t flags, uint32_t ifindex, const uint8_t via[4],
			const struct ip_prefix *p)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = p->len;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BGP;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_DST, 4, p->addr);
	mnl_attr_put(nlh, RTA_GATEWAY, 4, via);
	mnl_attr_put_u32(nlh, RTA_OIF, ifindex);
	return rtnl_request(nlh, NULL, NULL);
}

/* Our routes in the kernel: main table, protocol bgp, via the peer out of the device. */
struct kernel_routes {
	uint32_t ifindex;
	uint8_t via[4];
	struct ip_prefix prefix[1024];
	size_t n;
};

static int kernel_route_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, RTA_MAX) > 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static int kernel_route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct kernel_routes *k = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };
	struct ip_prefix *p;

	mnl_attr_parse(nlh, sizeof(*rtm), kernel_route_attr, tb);
	if (rtm->rtm_family != AF_INET || rtm->rtm_table != RT_TABLE_MAIN ||
	    rtm->rtm_protocol != RTPROT_BGP || !tb[RTA_OIF] || !tb[RTA_DST] || !tb[RTA_GATEWAY] ||
	    mnl_attr_get_u32(tb[RTA_OIF]) != k->ifindex ||
	    memcmp(mnl_attr_get_payload(tb[RTA_GATEWAY]), k->via, 4) ||
	    k->n >= sizeof(k->prefix) / sizeof(*k->prefix))
		return MNL_CB_OK;
	p = &k->prefix[k->n++];
	memset(p, 0, sizeof(*p));
	p->family = AF_INET;
	p->len = rtm->rtm_dst_len;
	memcpy(p->addr, mnl_attr_get_payload(tb[RTA_DST]), 4);
	return MNL_CB_OK;
}

static int kernel_routes_of(uint32_t ifindex, const uint8_t via[4], struct kernel_routes *k)
{
	struct rtmsg rtm = { .rtm_family = AF_INET };

	k->ifindex = ifindex;
	memcpy(k->via, via, 4);
	k->n = 0;
	return netlink_dump(NETLINK_ROUTE, RTM_GETROUTE, &rtm, sizeof(rtm), kernel_route_cb, k);
}

static bool same_prefix(const struct ip_prefix *a, const struct ip_prefix *b)
{
	return a->family == b->family && a->len == b->len &&
	       !memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16);
}

static void prefix_text(const struct ip_prefix *p, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, addr, sizeof(addr));
	snprintf(buf, size, "%s/%u", addr, p->len);
}

/* A withdrawn prefix that a local network gateway also has: its route into the xfrm
 * interface again (ours replaced it, ExpressRoute winning). */
static void tunnel_route_restore(const struct plan *plan, const struct ip_prefix *p)
{
	for (size_t t = 0; t < plan->n_tunnels; t++)
		for (size_t r = 0; r < plan->tunnels[t].n_remote_prefixes; r++)
			if (plan->tunnels[t].ifindex &&
			    same_prefix(&plan->tunnels[t].remote_prefixes[r], p)) {
				tunnel_routes_add(&plan->tunnels[t]);
				return;
			}
}

static int kernel_follow(const struct plan *plan, const struct plan_express_route *er,
			 unsigned *changes)
{
	struct kernel_routes *now = malloc(sizeof(*now));
	char text[64];
	int err;

	if (!now)
		return -ENOMEM;
	err = kernel_routes_of(er->ifindex, er->peer, now);
	for (size_t i = 0; !err && i < now->n; i++) {
		bool kept = false;

		for (size_t p = 0; p < er->n_learned; p++)
			kept |= same_prefix(&er->learned[p].prefix, &now->prefix[i]);
		if (kept)
			continue;
		prefix_text(&now->prefix[i], text, sizeof(text));
		err = kernel_route(RTM_DELROUTE, 0, er->ifindex, er->peer, &now->prefix[i]);
		if (err == -ESRCH)
			err = 0;
		tunnel_route_restore(plan, &now->prefix[i]);
		log_info("ExpressRoute connection %s: %s withdrawn, no longer routed", er->connection,
			 text);
		if (changes)
			++*changes;
	}
	for (size_t p = 0; !err && p < er->n_learned; p++) {
		bool there = false;

		for (size_t i = 0; i < now->n; i++)
			there |= same_prefix(&er->learned[p].prefix, &now->prefix[i]);
		if (there)
			continue;
		prefix_text(&er->learned[p].prefix, text, sizeof(text));
		err = kernel_route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, er->ifindex, er->peer,
				   &er->learned[p].prefix);
		if (err)
			log_error("ExpressRoute connection %s: cannot route %s via the peer: %s",
				  er->connection, text, strerror(-err));
		else
			log_info("ExpressRoute connection %s: %s learned, routed out of %s",
				 er->connection, text, er->interface);
		if (changes)
			++*changes;
	}
	free(now);
	return err;
}

/* ---- following bgpd ---------------------------------------------------------------- */

int express_route_sync(const struct config *cfg, unsigned *changes)
{
	uint32_t ifindexes[MAX_INTERFACES] = { 0 };
	struct plan plan;
	int routes = -1, sources = -1, err;

	if (!cfg->n_express_route_bindings)
		return 0;
	for (size_t i = 0; i < cfg->n_ifaces && i < MAX_INTERFACES; i++)
		ifindexes[i] = if_nametoindex(cfg->ifaces[i].name);
	err = express_route_plan_build(cfg, ifindexes, &plan, NULL);
	if (err)
		return err;
	routes = datapath_map_open(cfg->gateway_name, MAP_routes);
	sources = datapath_map_open(cfg->gateway_name, MAP_source_prefixes);
	if (routes < 0 || sources < 0)
		err = routes < 0 ? routes : sources;
	/* New sources before their routes: a reply never meets a route without its source */
	if (!err)
		err = map_follow(sources, &plan, true, NULL);
	if (!err)
		err = map_follow(routes, &plan, false, changes);
	for (size_t e = 0; !err && e < plan.n_express_routes; e++)
		if (plan.express_routes[e].ifindex)
			err = kernel_follow(&plan, &plan.express_routes[e], NULL);
	if (routes >= 0)
		close(routes);
	if (sources >= 0)
		close(sources);
	plan_free(&plan);
	return err;
}

/* ---- down ---------------------------------------------------------------------------- */

static void link_stop(const char *interface, const char *peer)
{
	struct kernel_routes *now = malloc(sizeof(*now));
	uint32_t ifindex = interface ? if_nametoindex(interface) : 0;
	struct in_addr via;

	if (ifindex && now && peer && inet_pton(AF_INET, peer, &via) == 1 &&
	    !kernel_routes_of(ifindex, (uint8_t *)&via, now))
		for (size_t i = 0; i < now->n; i++)
			kernel_route(RTM_DELROUTE, 0, ifindex, (uint8_t *)&via, &now->prefix[i]);
	if (ifindex)
		tc_detach(ifindex);
	free(now);
}

void express_route_stop(const char *gateway)
{
	express_route_stop_others(gateway, NULL);
}

void express_route_stop_others(const char *gateway, const struct plan *plan)
{
	json_t *peers = bgp_peers(gateway), *it;
	size_t i;

	json_array_foreach(peers, i, it) {
		const char *interface = json_string_value(json_object_get(it, "interface"));
		bool kept = false;

		for (size_t e = 0; plan && interface && e < plan->n_express_routes; e++)
			kept |= !strcmp(plan->express_routes[e].interface, interface);
		if (!kept)
			link_stop(interface, json_string_value(json_object_get(it, "peer")));
	}
	json_decref(peers);
}

/* ---- serve ----------------------------------------------------------------------------- */

void express_route_poll(struct express_route_poller *poller)
{
	json_t *state = state_load(poller->gateway);
	long long generation = (long long)json_integer_value(json_object_get(state, "generation"));
	const char *path = json_string_value(json_object_get(state, "config"));
	unsigned changes = 0;
	int lock, err;

	if (!state || !path) {
		json_decref(state);
		return;
	}
	if (!poller->cfg || generation != poller->generation) {
		express_route_poller_free(poller);
		if (config_load(path, NULL, &poller->cfg))
			poller->cfg = NULL;
		poller->generation = generation;
	}
	json_decref(state);
	if (!poller->cfg || !poller->cfg->n_express_route_bindings)
		return;
	lock = gateway_lock(poller->gateway, 0); /* an up, reload or down: the next second */
	if (lock < 0)
		return;
	err = express_route_sync(poller->cfg, &changes);
	gateway_unlock(lock);
	if (err)
		log_warn("gateway %s: the ExpressRoute routes could not follow bgpd: %s",
			 poller->gateway, strerror(-err));
}

void express_route_poller_free(struct express_route_poller *poller)
{
	if (poller->cfg)
		config_free(poller->cfg);
	poller->cfg = NULL;
}

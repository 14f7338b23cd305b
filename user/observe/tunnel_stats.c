#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ifaddrs.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <libmnl/libmnl.h>
#include <linux/xfrm.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "datapath/datapath.h"
#include "lib/bpf_map.h"
#include "lib/netlink.h"
#include "datapath/tunnel_ike.h"
#include "observe/tunnel_stats.h"
#include "datapath/vpn_clients.h"
#include "lib/vici.h"
#include "vnet_xdp.h"

static const char *const tunnel_counter_names[] = TUNNEL_COUNTER_NAMES;
_Static_assert(sizeof(tunnel_counter_names) / sizeof(*tunnel_counter_names) == TUNNEL_COUNTER_MAX,
	       "a tunnel counter without a name");

/* ---- the kernel's SA statistics, per if_id ---- */

struct sa_totals {
	uint32_t if_id;
	uint64_t replay, integrity_failed, replay_window;
};

struct sa_walk {
	struct sa_totals *totals;
	size_t n;
};

static int sa_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, XFRMA_MAX) > 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static int sa_cb(const struct nlmsghdr *nlh, void *data)
{
	struct sa_walk *walk = data;
	const struct xfrm_usersa_info *sa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[XFRMA_MAX + 1] = { 0 };
	uint32_t if_id;

	mnl_attr_parse(nlh, sizeof(*sa), sa_attr, tb);
	if (!tb[XFRMA_IF_ID])
		return MNL_CB_OK;
	if_id = mnl_attr_get_u32(tb[XFRMA_IF_ID]);
	for (size_t i = 0; i < walk->n; i++)
		if (walk->totals[i].if_id == if_id) {
			walk->totals[i].replay += sa->stats.replay;
			walk->totals[i].integrity_failed += sa->stats.integrity_failed;
			walk->totals[i].replay_window += sa->stats.replay_window;
		}
	return MNL_CB_OK;
}

/* Dumps every SA of this network namespace; 0 or -errno (no xfrm_user: -EPROTONOSUPPORT). */
static int sa_stats(struct sa_totals *totals, size_t n)
{
	struct xfrm_usersa_id id = { 0 };
	struct sa_walk walk = { totals, n };

	return netlink_dump(NETLINK_XFRM, XFRM_MSG_GETSA, &id, sizeof(id), sa_cb, &walk);
}

/* ---- the document ---- */

static struct packet_counter read_counter(int fd, uint32_t tunnel, uint32_t counter)
{
	struct packet_counter c = { 0 };

	if (fd >= 0)
		datapath_read_counter(fd, tunnel * TUNNEL_COUNTER_MAX + counter, &c);
	return c;
}

static json_t *spi_json(uint32_t spi, const struct packet_counter *sum)
{
	char text[16];

	snprintf(text, sizeof(text), "0x%08x", spi);
	return json_pack("{s:s, s:I, s:I}", "spi", text, "packets", (json_int_t)sum->packets,
			 "bytes", (json_int_t)sum->bytes);
}

static json_t *spis_of(int fd, const char *peer)
{
	struct map_walk walk = MAP_WALK(fd, sizeof(struct tunnel_spi_key));
	struct tunnel_spi_key key;
	struct address_key want = { 0 };
	json_t *list = json_array();

	want.family = strchr(peer, ':') ? AF_INET6 : AF_INET;
	inet_pton(want.family, peer, want.addr);
	while (map_walk_next(&walk, &key)) {
		struct packet_counter sum;

		if (memcmp(&key.peer, &want, sizeof(want)) || percpu_sum(fd, &key, &sum, sizeof(sum)))
			continue;
		json_array_append_new(list, spi_json(key.spi, &sum));
	}
	return list;
}

/* Packets the xfrm interface dropped on transmit: above all those it found no SA for
 * (the tunnel is down: the kernel has no policy with the interface's if_id). They were
 * counted into the tunnel by the tc program before; -1 when the interface is not there. */
static int64_t interface_tx_dropped(const char *ifname)
{
	struct ifaddrs *list, *ifa;
	int64_t dropped = -1;

	if (!ifname || getifaddrs(&list))
		return -1;
	/* The link's entry is the one with statistics; an xfrm interface has no link-layer
	 * address, so glibc leaves its ifa_addr NULL. */
	for (ifa = list; ifa; ifa = ifa->ifa_next)
		if (ifa->ifa_data && (!ifa->ifa_addr || ifa->ifa_addr->sa_family == AF_PACKET) &&
		    !strcmp(ifa->ifa_name, ifname)) {
			dropped = ((const struct rtnl_link_stats *)ifa->ifa_data)->tx_dropped;
			break;
		}
	freeifaddrs(list);
	return dropped;
}

/* Azure's TunnelIngressPacketDropCount and TunnelEgressPacketDropCount on the tunnel,
 * each reason of each direction in `drops`. */
static void tunnel_drops_add(json_t *t, json_t *drops, int fd, uint32_t id, const char *name,
			     const char *ifname)
{
	static const struct { const char *direction, *member; uint32_t first, last; } dirs[] = {
		{ "ingress", "ingressPacketDropCount", TUNNEL_INGRESS_DROPS_FIRST,
		  TUNNEL_INGRESS_DROPS_LAST },
		{ "egress", "egressPacketDropCount", TUNNEL_EGRESS_DROPS_FIRST,
		  TUNNEL_EGRESS_DROPS_LAST },
	};

	for (size_t d = 0; d < sizeof(dirs) / sizeof(*dirs); d++) {
		uint64_t sum = 0;

		for (uint32_t c = dirs[d].first; c <= dirs[d].last; c++) {
			struct packet_counter n = read_counter(fd, id, c);

			sum += n.packets;
			json_array_append_new(drops, json_pack("{s:s, s:s, s:s, s:I, s:I}",
				"tunnel", name, "direction", dirs[d].direction, "reason",
				tunnel_counter_names[c], "packets", (json_int_t)n.packets,
				"bytes", (json_int_t)n.bytes));
		}
		if (!strcmp(dirs[d].direction, "egress")) {
			int64_t no_sa = interface_tx_dropped(ifname);

			if (no_sa >= 0) {
				sum += (uint64_t)no_sa;
				json_array_append_new(drops, json_pack("{s:s, s:s, s:s, s:I}",
					"tunnel", name, "direction", "egress", "reason",
					"xfrm_interface_dropped", "packets", (json_int_t)no_sa));
			}
		}
		json_object_set_new(t, dirs[d].member, json_integer((json_int_t)sum));
	}
}

/* Azure's P2SConnectionCount and P2SBandwidth per gateway with clients: the clients
 * charon has connected, and the bytes of the clients' tunnel both ways (the rate of
 * which is the bandwidth), counted where the datapath counts each client's share
 * (tunnel_client_counters), so the clients' bytes add up to them. */
static json_t *point_to_site_of(json_t *state, json_t *tunnels)
{
	json_t *out = json_array(), *clients = NULL, *it;
	size_t i;

	json_array_foreach(json_object_get(state, "tunnels"), i, it) {
		json_t *counts = json_array_get(tunnels, i), *c;
		json_int_t n = 0;
		size_t k;

		if (!json_is_true(json_object_get(it, "pointToSite")))
			continue;
		if (!clients)
			clients = vpn_clients_list(state);
		json_array_foreach(clients, k, c)
			n += json_equal(json_object_get(c, "gateway"), json_object_get(it, "name"));
		json_array_append_new(out, json_pack("{s:O, s:I, s:I, s:I, s:I}",
			"gateway", json_object_get(it, "name"), "connections", n,
			"bytes", json_integer_value(json_object_get(counts, "ingressBytes")) +
				 json_integer_value(json_object_get(counts, "egressBytes")),
			"ingressBytes", json_integer_value(json_object_get(counts, "ingressBytes")),
			"egressBytes", json_integer_value(json_object_get(counts, "egressBytes"))));
	}
	json_decref(clients);
	return out;
}

void tunnel_stats_add(const char *gateway, json_t *state, json_t *doc)
{
	json_t *list = json_object_get(state, "tunnels"), *tunnels = json_array(),
	       *drops = json_array(), *it;
	int counters = datapath_map_open(gateway, MAP_tunnel_counters);
	int spis = datapath_map_open(gateway, MAP_tunnel_spi_counters);
	size_t n = json_array_size(list), i;
	struct sa_totals *totals = calloc(n + 1, sizeof(*totals));
	json_t *sas = n ? tunnel_ike_states() : NULL;
	bool have_sa_stats;

	json_array_foreach(list, i, it)
		totals[i].if_id = (uint32_t)json_integer_value(json_object_get(it, "ifId"));
	have_sa_stats = totals && n && sa_stats(totals, n) == 0;
	json_array_foreach(list, i, it) {
		const char *name = json_string_value(json_object_get(it, "name")) ?: "";
		const char *peer = json_string_value(json_object_get(it, "peer")) ?: "";
		const char *ike = json_string_value(json_object_get(it, "swanctl")) ?: "";
		uint32_t id = (uint32_t)json_integer_value(json_object_get(it, "id"));
		struct packet_counter in = read_counter(counters, id, TUNNEL_INGRESS);
		struct packet_counter out = read_counter(counters, id, TUNNEL_EGRESS);
		struct packet_counter esp = read_counter(counters, id, TUNNEL_ESP_IN);
		enum tunnel_ike_state ike_state = tunnel_ike_state_of(sas, ike);
		json_t *t = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:s}",
			"name", name, "peer", peer,
			"ingressBytes", (json_int_t)in.bytes, "ingressPackets", (json_int_t)in.packets,
			"egressBytes", (json_int_t)out.bytes, "egressPackets", (json_int_t)out.packets,
			"espBytes", (json_int_t)esp.bytes, "espPackets", (json_int_t)esp.packets,
			"up", ike_state == TUNNEL_IKE_CONNECTED,
			"state", tunnel_ike_state_name(ike_state));

		tunnel_drops_add(t, drops, counters, id, name,
				 json_string_value(json_object_get(it, "interface")));
		json_object_set_new(t, "spis", spis_of(spis, peer));
		if (have_sa_stats) {
			json_object_set_new(t, "replayErrors", json_integer(totals[i].replay));
			json_object_set_new(t, "integrityFailures",
					    json_integer(totals[i].integrity_failed));
		}
		json_array_append_new(tunnels, t);
	}
	json_object_set_new(doc, "pointToSite", point_to_site_of(state, tunnels));
	json_object_set_new(doc, "tunnels", tunnels);
	json_object_set_new(doc, "tunnelDrops", drops);
	free(totals);
	json_decref(sas);
	if (counters >= 0)
		close(counters);
	if (spis >= 0)
		close(spis);
}

json_t *tunnel_status(json_t *state)
{
	json_t *list = json_object_get(state, "tunnels"), *out = json_array(), *it;
	json_t *states = json_array_size(list) ? tunnel_ike_states() : NULL;
	size_t i;

	json_array_foreach(list, i, it) {
		const char *ike = json_string_value(json_object_get(it, "swanctl")) ?: "";

		json_array_append_new(out, json_pack("{s:O?, s:O?, s:O?, s:s}",
			"name", json_object_get(it, "name"), "interface",
			json_object_get(it, "interface"), "peer", json_object_get(it, "peer"),
			"state", tunnel_ike_state_name(tunnel_ike_state_of(states, ike))));
	}
	json_decref(states);
	return out;
}

void tunnel_status_print(FILE *out, const json_t *tunnels)
{
	const json_t *it;
	size_t i;

	if (json_array_size(tunnels))
		fprintf(out, "tunnels:\n");
	json_array_foreach(tunnels, i, it)
		fprintf(out, "  %-24s %-16s peer %-39s %s\n",
			json_string_value(json_object_get(it, "name")) ?: "-",
			json_string_value(json_object_get(it, "interface")) ?: "-",
			json_string_value(json_object_get(it, "peer")) ?: "-",
			json_string_value(json_object_get(it, "state")) ?: "unknown");
}

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "observe/metrics.h"
#include "lib/private_file.h"
#include "observe/tunnel_stats.h"

#define METRIC_MAX_LABELS 4

enum metric_type { METRIC_COUNTER, METRIC_GAUGE };

struct metric_label {
	const char *name;  /* label name in the exposition */
	const char *field; /* member of the sample object */
};

struct metric_family {
	const char *name;
	enum metric_type type;
	const char *help;
	/* Member of the stats document that holds the samples: an array of objects (names
	 * such as drop reasons are members of them, never keys), or one object that is the
	 * one sample. NULL: the document itself is the one sample. */
	const char *source;
	/* Member of the sample that holds the value; NULL: the constant 1 (an info metric). */
	const char *value;
	struct metric_label labels[METRIC_MAX_LABELS];
	/* A state set: the value is a string among these (NULL-terminated); each sample
	 * becomes one per state, labelled `state`, 1 for the sample's, 0 for the others. */
	const char *const *states;
};

static const char *const tunnel_states[] = TUNNEL_IKE_STATE_NAMES;

/* Labels name Azure objects by their names. A new family is one row here plus the
 * member stats_collect() fills for it. */
static const struct metric_family families[] = {
	{ "vnetxdp_build_info", METRIC_GAUGE,
	  "Version of the vnet-xdp exporter; the value is always 1.",
	  NULL, NULL, { { "version", "version" } } },
	{ "vnetxdp_config_generation", METRIC_GAUGE,
	  "Generation of the config the datapath runs.", NULL, "generation" },

	{ "vnetxdp_peering_packets_total", METRIC_COUNTER,
	  "Packets forwarded over a VNet peering, from vnet to remote_vnet.",
	  "peerings", "packets", { { "vnet", "vnet" }, { "remote_vnet", "remoteVnet" } } },
	{ "vnetxdp_peering_bytes_total", METRIC_COUNTER,
	  "Bytes forwarded over a VNet peering, from vnet to remote_vnet.",
	  "peerings", "bytes", { { "vnet", "vnet" }, { "remote_vnet", "remoteVnet" } } },

	{ "vnetxdp_drop_packets_total", METRIC_COUNTER,
	  "Packets the datapath dropped, by reason.", "drops", "packets", { { "reason", "reason" } } },
	{ "vnetxdp_drop_bytes_total", METRIC_COUNTER,
	  "Bytes the datapath dropped, by reason.", "drops", "bytes", { { "reason", "reason" } } },
	/* "dropsByInterface": {interface, vnet, reason, packets, bytes}; vnet null (an empty
	 * label) for packets outside every VNet. Their sum by reason is the one above, less
	 * what found no room in the table (vnetxdp_interface_drop_unattributed_*). */
	{ "vnetxdp_interface_drop_packets_total", METRIC_COUNTER,
	  "Packets the datapath dropped, by the interface they came in on, their VNet and the reason.",
	  "dropsByInterface", "packets",
	  { { "interface", "interface" }, { "vnet", "vnet" }, { "reason", "reason" } } },
	{ "vnetxdp_interface_drop_bytes_total", METRIC_COUNTER,
	  "Bytes the datapath dropped, by the interface they came in on, their VNet and the reason.",
	  "dropsByInterface", "bytes",
	  { { "interface", "interface" }, { "vnet", "vnet" }, { "reason", "reason" } } },
	{ "vnetxdp_interface_drop_unattributed_packets_total", METRIC_COUNTER,
	  "Dropped packets of a VNet counted by reason only: its share of the table of drops by "
	  "interface was full.",
	  "dropsUnattributed", "packets", { { "vnet", "vnet" } } },
	{ "vnetxdp_datapath_packets_total", METRIC_COUNTER,
	  "Packets the XDP program saw, by what it did with them.",
	  "datapath", "packets", { { "action", "action" } } },
	{ "vnetxdp_datapath_bytes_total", METRIC_COUNTER,
	  "Bytes the XDP program saw, by what it did with them.",
	  "datapath", "bytes", { { "action", "action" } } },

	/* Tunnels (Azure: TunnelIngressBytes, TunnelEgressBytes, ...): "tunnels" is an
	 * array of {name, ingressBytes, ...}, filled once the tunnel datapath counts. */
	{ "vnetxdp_tunnel_ingress_bytes_total", METRIC_COUNTER,
	  "Bytes received from a tunnel (Azure: TunnelIngressBytes).",
	  "tunnels", "ingressBytes", { { "tunnel", "name" } } },
	{ "vnetxdp_tunnel_egress_bytes_total", METRIC_COUNTER,
	  "Bytes sent into a tunnel (Azure: TunnelEgressBytes).",
	  "tunnels", "egressBytes", { { "tunnel", "name" } } },
	{ "vnetxdp_tunnel_ingress_packets_total", METRIC_COUNTER,
	  "Packets received from a tunnel (Azure: TunnelIngressPackets).",
	  "tunnels", "ingressPackets", { { "tunnel", "name" } } },
	{ "vnetxdp_tunnel_egress_packets_total", METRIC_COUNTER,
	  "Packets sent into a tunnel (Azure: TunnelEgressPackets).",
	  "tunnels", "egressPackets", { { "tunnel", "name" } } },
	/* Point-to-site (Azure: P2SConnectionCount, P2SBandwidth): "pointToSite" is an
	 * array of {gateway, connections, bytes}; the bandwidth is rate() of the bytes. */
	{ "vnetxdp_p2s_connections", METRIC_GAUGE,
	  "Point-to-site clients connected to a virtual network gateway (Azure: "
	  "P2SConnectionCount).",
	  "pointToSite", "connections", { { "gateway", "gateway" } } },
	{ "vnetxdp_p2s_bytes_total", METRIC_COUNTER,
	  "Bytes to and from a gateway's point-to-site clients (its clients' tunnel's "
	  "ingress and egress, which `vnet-xdp clients` shares out per client); its rate "
	  "is Azure's P2SBandwidth.",
	  "pointToSite", "bytes", { { "gateway", "gateway" } } },
	/* ExpressRoute private peering (Azure: BgpPeerStatus, BgpRoutesAdvertised,
	 * BgpRoutesLearned): "bgpPeers" is an array of one session per link. */
	{ "vnetxdp_bgp_peer_status", METRIC_GAUGE,
	  "1 when the BGP session with the peer is established, else 0 (Azure: BgpPeerStatus).",
	  "bgpPeers", "up", { { "connection", "connection" }, { "peer", "peer" } } },
	{ "vnetxdp_bgp_routes_advertised", METRIC_GAUGE,
	  "Prefixes advertised to the BGP peer (Azure: BgpRoutesAdvertised).",
	  "bgpPeers", "routesAdvertised", { { "connection", "connection" }, { "peer", "peer" } } },
	{ "vnetxdp_bgp_routes_learned", METRIC_GAUGE,
	  "Prefixes learned from the BGP peer (Azure: BgpRoutesLearned).",
	  "bgpPeers", "routesLearned", { { "connection", "connection" }, { "peer", "peer" } } },
	{ "vnetxdp_tunnel_up", METRIC_GAUGE,
	  "1 when the tunnel's IPsec SAs are established, else 0.",
	  "tunnels", "up", { { "tunnel", "name" } } },
	{ "vnetxdp_tunnel_state", METRIC_GAUGE,
	  "What charon does with the tunnel, 1 for its state: connected (IKE SA and a CHILD SA "
	  "up), connecting (being negotiated or retried), down (no IKE SA: vnet-xdp serve "
	  "initiates it again, with backoff), unknown (charon did not answer).",
	  "tunnels", "state", { { "tunnel", "name" } }, tunnel_states },
	{ "vnetxdp_tunnel_drop_packets_total", METRIC_COUNTER,
	  "Packets of a tunnel dropped, by direction and reason.",
	  "tunnelDrops", "packets",
	  { { "tunnel", "tunnel" }, { "direction", "direction" }, { "reason", "reason" } } },
	{ "vnetxdp_tunnel_ingress_packet_drops_total", METRIC_COUNTER,
	  "Packets from a tunnel dropped (Azure: TunnelIngressPacketDropCount).",
	  "tunnels", "ingressPacketDropCount", { { "tunnel", "name" } } },
	{ "vnetxdp_tunnel_egress_packet_drops_total", METRIC_COUNTER,
	  "Packets toward a tunnel dropped (Azure: TunnelEgressPacketDropCount).",
	  "tunnels", "egressPacketDropCount", { { "tunnel", "name" } } },
	{ "vnetxdp_tunnel_esp_packets_total", METRIC_COUNTER,
	  "Encrypted packets from the tunnel's peer handed to xfrm, before decryption.",
	  "tunnels", "espPackets", { { "tunnel", "name" } } },
	{ "vnetxdp_tunnel_replay_errors_total", METRIC_COUNTER,
	  "Packets the kernel's SAs of the tunnel refused as replayed.",
	  "tunnels", "replayErrors", { { "tunnel", "name" } } },
	{ "vnetxdp_tunnel_integrity_failures_total", METRIC_COUNTER,
	  "Packets the kernel's SAs of the tunnel refused for a failed integrity check.",
	  "tunnels", "integrityFailures", { { "tunnel", "name" } } },

	/* Flow logs (gateway.flowLogs, written by serve): "flowLogRecords" and
	 * "flowLogDropped" are arrays of {state|reason, records}, present while they run. */
	{ "vnetxdp_flow_log_records_total", METRIC_COUNTER,
	  "Flow log tuples written, by flow state (begin, continuing, end, denied).",
	  "flowLogRecords", "records", { { "state", "state" } } },
	{ "vnetxdp_flow_log_records_dropped_total", METRIC_COUNTER,
	  "Flow log tuples left out: rate (deniedPerSecond), size (the hour alone fills "
	  "maxMegabytes), write (the file could not be written), ring (drop events the "
	  "datapath's bound or a full ring left out while serve listened).",
	  "flowLogDropped", "records", { { "reason", "reason" } } },

	/* NSG rules: "nsgRuleHits" is an array of {nsg, rule, direction, access, hits}. */
	{ "vnetxdp_nsg_rule_hits_total", METRIC_COUNTER,
	  "First packets of flows that a network security group rule decided.",
	  "nsgRuleHits", "hits",
	  { { "nsg", "nsg" }, { "rule", "rule" }, { "direction", "direction" },
	    { "access", "access" } } },

	{ "vnetxdp_nsg_rule_packets_total", METRIC_COUNTER,
	  "Packets of the flows a network security group rule decided.",
	  "nsgRuleHits", "packets",
	  { { "nsg", "nsg" }, { "rule", "rule" }, { "direction", "direction" },
	    { "access", "access" } } },
	{ "vnetxdp_nsg_rule_bytes_total", METRIC_COUNTER,
	  "Bytes of the flows a network security group rule decided.",
	  "nsgRuleHits", "bytes",
	  { { "nsg", "nsg" }, { "rule", "rule" }, { "direction", "direction" },
	    { "access", "access" } } },

	/* SNAT: "snat" is an array of {vip, portsInUse, portsTotal, flows, portExhausted}. */
	{ "vnetxdp_snat_ports_in_use", METRIC_GAUGE,
	  "SNAT ports of a VIP in use, cooling-down ones included. A count of the SNAT table: "
	  "vnet-xdp serve counts it every 10 s, so it may be up to 10 s old (plus the count's "
	  "own time, about a second at a million mappings).",
	  "snat", "portsInUse", { { "vip", "vip" } } },
	{ "vnetxdp_snat_ports_capacity", METRIC_GAUGE, "SNAT ports of a VIP that can be handed out.",
	  "snat", "portsTotal", { { "vip", "vip" } } },
	{ "vnetxdp_snat_flows_total", METRIC_COUNTER, "Flows translated to a VIP.",
	  "snat", "flows", { { "vip", "vip" } } },
	{ "vnetxdp_snat_port_exhausted_total", METRIC_COUNTER,
	  "Flows that found no free SNAT port on a VIP.",
	  "snat", "portExhausted", { { "vip", "vip" } } },
	{ "vnetxdp_snat_egress_packets_total", METRIC_COUNTER,
	  "Packets translated from a VM's address to a VIP.",
	  "snat", "egressPackets", { { "vip", "vip" } } },
	{ "vnetxdp_snat_egress_bytes_total", METRIC_COUNTER,
	  "Bytes translated from a VM's address to a VIP.",
	  "snat", "egressBytes", { { "vip", "vip" } } },
	{ "vnetxdp_snat_ingress_packets_total", METRIC_COUNTER,
	  "Replies to a VIP translated back to a VM.",
	  "snat", "ingressPackets", { { "vip", "vip" } } },
	{ "vnetxdp_snat_ingress_bytes_total", METRIC_COUNTER,
	  "Bytes of replies to a VIP translated back to a VM.",
	  "snat", "ingressBytes", { { "vip", "vip" } } },

	/* Flow cache: "flows" is an object {active}. */
	{ "vnetxdp_flows_active", METRIC_GAUGE, "Entries in the flow cache.",
	  "flows", "active" },
	{ "vnetxdp_flows_capacity", METRIC_GAUGE, "Entries the flow cache holds at most.",
	  "flows", "capacity" },
	{ "vnetxdp_flows_created_total", METRIC_COUNTER, "Flows the NSG stage allowed and cached.",
	  "flows", "created" },
	{ "vnetxdp_flows_evicted_total", METRIC_COUNTER,
	  "Flows the full flow cache pushed out (least recently used).", "flows", "evicted" },

	{ "vnetxdp_map_entries", METRIC_GAUGE,
	  "Entries in a pinned BPF map of the datapath (an array counts its size). Hash maps: "
	  "the kernel's count. LPM tries: counted by vnet-xdp serve every 10 s, so up to 10 s old.",
	  "maps", "entries", { { "map", "name" } } },
	{ "vnetxdp_map_max_entries", METRIC_GAUGE,
	  "Capacity of a pinned BPF map of the datapath.",
	  "maps", "maxEntries", { { "map", "name" } } },
	/* The type tells an array (every slot always exists, so entries equal capacity)
	 * from a map that fills up. */
	{ "vnetxdp_map_info", METRIC_GAUGE,
	  "A pinned BPF map of the datapath and its kernel type (array, percpu_array, hash, "
	  "lru_hash, lpm_trie, ...); the value is always 1.",
	  "maps", NULL, { { "map", "name" }, { "type", "type" } } },
	{ "vnetxdp_map_memory_bytes", METRIC_GAUGE,
	  "Kernel memory a pinned BPF map of the datapath takes (memlock in its fdinfo).",
	  "maps", "memlockBytes", { { "map", "name" } } },
};

/* HELP text escapes backslash and newline; label values also the double quote. */
static void escaped(FILE *out, const char *text, bool quote)
{
	for (const char *c = text; *c; c++) {
		if (*c == '\\')
			fputs("\\\\", out);
		else if (*c == '\n')
			fputs("\\n", out);
		else if (*c == '"' && quote)
			fputs("\\\"", out);
		else
			fputc(*c, out);
	}
}

static void label_value(FILE *out, json_t *value)
{
	if (json_is_string(value))
		escaped(out, json_string_value(value), true);
	else if (json_is_integer(value))
		fprintf(out, "%lld", (long long)json_integer_value(value));
	else if (json_is_true(value))
		fputs("true", out);
	else if (json_is_false(value))
		fputs("false", out);
}

/* Counters are unsigned 64-bit in the maps; jansson keeps them as signed. */
static bool sample_value(FILE *out, const struct metric_family *family, json_t *value)
{
	if (!family->value) {
		fputs("1", out);
	} else if (json_is_integer(value)) {
		if (family->type == METRIC_COUNTER)
			fprintf(out, "%llu", (unsigned long long)json_integer_value(value));
		else
			fprintf(out, "%lld", (long long)json_integer_value(value));
	} else if (json_is_real(value)) {
		fprintf(out, "%.17g", json_real_value(value));
	} else if (json_is_boolean(value)) {
		fputs(json_is_true(value) ? "1" : "0", out);
	} else {
		return false;
	}
	return true;
}

/* The name and labels of one sample, with `state` for a state set's. */
static void sample_name(FILE *out, const struct metric_family *family, json_t *object,
			const char *state)
{
	bool first = true;

	fputs(family->name, out);
	for (int i = 0; i < METRIC_MAX_LABELS && family->labels[i].name; i++) {
		const struct metric_label *label = &family->labels[i];

		fprintf(out, "%s%s=\"", first ? "{" : ",", label->name);
		label_value(out, json_object_get(object, label->field));
		fputc('"', out);
		first = false;
	}
	if (state)
		fprintf(out, "%sstate=\"%s\"", first ? "{" : ",", state);
	fputs(first && !state ? " " : "} ", out);
}

static void sample(FILE *out, const struct metric_family *family, json_t *object)
{
	json_t *value = family->value ? json_object_get(object, family->value) : NULL;

	if (family->value && !value)
		return; /* nothing measured: no sample rather than an invented one */
	if (family->states) {
		for (const char *const *s = family->states; *s; s++) {
			sample_name(out, family, object, *s);
			fprintf(out, "%d\n", json_is_string(value) &&
					       !strcmp(json_string_value(value), *s));
		}
		return;
	}
	sample_name(out, family, object, NULL);
	if (!sample_value(out, family, value))
		fputs("NaN", out);
	fputc('\n', out);
}

static void family_render(FILE *out, const struct metric_family *family, json_t *stats)
{
	json_t *source = family->source ? json_object_get(stats, family->source) : stats;
	json_t *it;
	size_t i;

	if (!source)
		return;
	fprintf(out, "# HELP %s ", family->name);
	escaped(out, family->help, false);
	fprintf(out, "\n# TYPE %s %s\n", family->name,
		family->type == METRIC_COUNTER ? "counter" : "gauge");
	if (json_is_array(source))
		json_array_foreach(source, i, it)
			sample(out, family, it);
	else
		sample(out, family, source);
}

void metrics_render(FILE *out, json_t *stats)
{
	for (size_t i = 0; i < sizeof(families) / sizeof(*families); i++)
		family_render(out, &families[i], stats);
}

char *metrics_render_text(json_t *stats, size_t *length)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	if (!out)
		return NULL;
	metrics_render(out, stats);
	if (fclose(out)) {
		free(text);
		return NULL;
	}
	if (length)
		*length = size;
	return text;
}

int metrics_write_textfile(const char *dir, json_t *stats)
{
	char path[4096], tmp[4096];
	size_t length;
	char *text;
	int fd, err = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, METRICS_TEXTFILE_NAME) >= sizeof(path))
		return -ENAMETOOLONG;
	/* A name the textfile collector ignores (it reads *.prom only) until the rename. */
	snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, METRICS_TEXTFILE_NAME);
	text = metrics_render_text(stats, &length);
	if (!text)
		return -ENOMEM;
	fd = mkstemp(tmp);
	if (fd < 0) {
		err = -errno;
		free(text);
		return err;
	}
	err = fd_write_all(fd, text, length);
	free(text);
	if (!err && fchmod(fd, 0644))
		err = -errno;
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <bpf/bpf.h>
#include <stdio.h>
#include <string.h>
#include "datapath.h"
#include "gateway.h"
#include "log.h"
#include "state.h"
#include "stats.h"

static const char *const drop_reason_names[] = DROP_REASON_NAMES;
static const char *const datapath_counter_names[] = DATAPATH_COUNTER_NAMES;

_Static_assert(sizeof(drop_reason_names) / sizeof(*drop_reason_names) == DROP_REASON_MAX,
	       "a drop reason without a name");
_Static_assert(sizeof(datapath_counter_names) / sizeof(*datapath_counter_names) ==
		       DATAPATH_COUNTER_MAX, "a datapath counter without a name");

static json_t *counter_json(int fd, uint32_t index)
{
	struct packet_counter c = { 0 };

	datapath_read_counter(fd, index, &c);
	return json_pack("{s:I, s:I}", "packets", (json_int_t)c.packets, "bytes", (json_int_t)c.bytes);
}

json_t *stats_collect(const char *gateway)
{
	struct datapath_maps maps;
	json_t *state, *out, *datapath, *drops, *peerings, *p;
	struct gateway_settings settings = { 0 };
	uint32_t zero = 0;
	size_t i;
	int err;

	err = datapath_maps_open(gateway, &maps);
	if (err) {
		errno = -err;
		return NULL;
	}
	state = state_load(gateway);
	bpf_map_lookup_elem(maps.settings, &zero, &settings);
	out = json_object();
	datapath = json_object();
	drops = json_object();
	peerings = json_array();
	json_object_set_new(out, "gateway", json_string(gateway));
	json_object_set_new(out, "generation", json_integer(settings.generation));
	for (i = 0; i < DATAPATH_COUNTER_MAX; i++)
		json_object_set_new(datapath, datapath_counter_names[i],
				    counter_json(maps.datapath_counters, i));
	for (i = 1; i < DROP_REASON_MAX; i++)
		json_object_set_new(drops, drop_reason_names[i], counter_json(maps.drop_counters, i));
	json_array_foreach(json_object_get(state, "peerings"), i, p) {
		json_t *c = counter_json(maps.peering_counters,
					 json_integer_value(json_object_get(p, "index")));

		json_object_set(c, "vnet", json_object_get(p, "vnet"));
		json_object_set(c, "remoteVnet", json_object_get(p, "remoteVnet"));
		json_object_set(c, "name", json_object_get(p, "name"));
		json_array_append_new(peerings, c);
	}
	json_object_set_new(out, "datapath", datapath);
	json_object_set_new(out, "drops", drops);
	json_object_set_new(out, "peerings", peerings);
	json_decref(state);
	datapath_maps_close(&maps);
	return out;
}

static long long field(json_t *o, const char *name)
{
	return json_integer_value(json_object_get(o, name));
}

void stats_print_text(FILE *out, json_t *stats)
{
	const char *key;
	json_t *v;
	size_t i;

	fprintf(out, "gateway %s  config generation %lld\n",
		json_string_value(json_object_get(stats, "gateway")), field(stats, "generation"));
	fprintf(out, "datapath:\n");
	json_object_foreach(json_object_get(stats, "datapath"), key, v)
		fprintf(out, "  %-20s %12lld packets %14lld bytes\n", key, field(v, "packets"),
			field(v, "bytes"));
	fprintf(out, "drops by reason:\n");
	json_object_foreach(json_object_get(stats, "drops"), key, v)
		if (field(v, "packets"))
			fprintf(out, "  %-26s %12lld packets %14lld bytes\n", key,
				field(v, "packets"), field(v, "bytes"));
	fprintf(out, "peerings:\n");
	json_array_foreach(json_object_get(stats, "peerings"), i, v)
		fprintf(out, "  %s -> %-16s %12lld packets %14lld bytes\n",
			json_string_value(json_object_get(v, "vnet")),
			json_string_value(json_object_get(v, "remoteVnet")), field(v, "packets"),
			field(v, "bytes"));
}

/* Label values escaped as the exposition format wants: backslash, quote, newline. */
static void label_value(FILE *out, const char *value)
{
	for (const char *c = value ? value : ""; *c; c++) {
		if (*c == '\\' || *c == '"')
			fputc('\\', out);
		if (*c == '\n') {
			fputs("\\n", out);
			continue;
		}
		fputc(*c, out);
	}
}

static void family_header(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void stats_print_prometheus(FILE *out, json_t *stats)
{
	static const char *const units[] = { "packets", "bytes" };
	const char *key;
	json_t *v;
	size_t i;

	family_header(out, "vnetxdp_config_generation", "gauge",
		      "Generation of the config the datapath runs.");
	fprintf(out, "vnetxdp_config_generation %lld\n", field(stats, "generation"));
	for (int u = 0; u < 2; u++) {
		char name[64];

		snprintf(name, sizeof(name), "vnetxdp_drop_%s_total", units[u]);
		family_header(out, name, "counter", "Packets dropped by the datapath, by reason.");
		json_object_foreach(json_object_get(stats, "drops"), key, v)
			fprintf(out, "%s{reason=\"%s\"} %lld\n", name, key, field(v, units[u]));
		snprintf(name, sizeof(name), "vnetxdp_datapath_%s_total", units[u]);
		family_header(out, name, "counter",
			      "Packets seen by the XDP program, by what it did with them.");
		json_object_foreach(json_object_get(stats, "datapath"), key, v)
			fprintf(out, "%s{action=\"%s\"} %lld\n", name, key, field(v, units[u]));
		snprintf(name, sizeof(name), "vnetxdp_peering_%s_total", units[u]);
		family_header(out, name, "counter", "Traffic forwarded over a VNet peering.");
		json_array_foreach(json_object_get(stats, "peerings"), i, v) {
			fprintf(out, "%s{vnet=\"", name);
			label_value(out, json_string_value(json_object_get(v, "vnet")));
			fputs("\",remote_vnet=\"", out);
			label_value(out, json_string_value(json_object_get(v, "remoteVnet")));
			fprintf(out, "\"} %lld\n", field(v, units[u]));
		}
	}
}

int stats_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct { const char *name; bool json, prometheus; } o = { 0 };
	char gateway[128];
	json_t *stats;
	int err, c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "n:j", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o.name = optarg; break;
		case 'j': o.json = true; break;
		case 'P': o.prometheus = true; break;
		default:
			fprintf(stderr, "vnet-xdp stats: unknown option '%s'\nusage: vnet-xdp stats [-n NAME] [-j | --prometheus]\n", argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc || (o.json && o.prometheus)) {
		fprintf(stderr, "usage: vnet-xdp stats [-n NAME] [-j | --prometheus]\n");
		return 2;
	}
	err = gateway_resolve_name(o.name, gateway, sizeof(gateway));
	if (err) {
		log_error(err == -EEXIST ? "several gateways are up; name one with -n"
					 : "no gateway is up");
		return 1;
	}
	stats = stats_collect(gateway);
	if (!stats) {
		log_error("gateway %s: cannot read its counters: %s", gateway, strerror(errno));
		return 1;
	}
	if (o.json) {
		json_dumpf(stats, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else if (o.prometheus) {
		stats_print_prometheus(stdout, stats);
	} else {
		stats_print_text(stdout, stats);
	}
	json_decref(stats);
	return 0;
}


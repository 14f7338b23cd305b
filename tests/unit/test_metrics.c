/* The Prometheus exposition rendered from a hand-built stats document: HELP/TYPE lines,
 * escaping, counter values, families left out until their datapath exists, the
 * textfile; and the two collector pieces that need a kernel map (per-CPU sums, entry
 * counts), skipped where BPF maps cannot be created. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "datapath/datapath.h"
#include "observe/metrics.h"
#include "lib/map_entries.h"
#include "observe/stats.h"

static const char *const stats_text =
	"{\"gateway\": \"t\", \"version\": \"1.2.3\", \"generation\": 7,"
	" \"datapath\": [{\"action\": \"rx\", \"packets\": 10, \"bytes\": 1000},"
	"               {\"action\": \"forwarded\", \"packets\": 8, \"bytes\": 800}],"
	" \"drops\": [{\"reason\": \"no_route\", \"packets\": 2, \"bytes\": 120},"
	"            {\"reason\": \"route_none\", \"packets\": 0, \"bytes\": 0}],"
	" \"dropsByInterface\": ["
	"   {\"interface\": \"to-hub\", \"vnet\": \"hub\", \"reason\": \"nsg_denied_inbound\", \"packets\": 3, \"bytes\": 222},"
	"   {\"interface\": \"xfrm-s2s\", \"vnet\": null, \"reason\": \"tunnel_spoofed_inner\", \"packets\": 1, \"bytes\": 84}],"
	" \"dropsUnattributed\": [{\"vnet\": \"hub\", \"packets\": 7, \"bytes\": 420}],"
	" \"peerings\": ["
	"   {\"name\": \"hub-to-spoke1\", \"vnet\": \"hub\", \"remoteVnet\": \"spoke1\", \"packets\": 5, \"bytes\": 490},"
	"   {\"name\": \"odd\", \"vnet\": \"we\\\"ird\\\\name\\nx\", \"remoteVnet\": \"hub\", \"packets\": -1, \"bytes\": 9007199254740993}],"
	" \"maps\": ["
	"   {\"name\": \"routes\", \"type\": \"lpm_trie\", \"entries\": 12, \"maxEntries\": 262144, \"memlockBytes\": 5242880},"
	"   {\"name\": \"ringbuf\", \"type\": \"ringbuf\", \"maxEntries\": 4096}],"
	" \"flowLogRecords\": [{\"state\": \"begin\", \"records\": 4}, {\"state\": \"denied\", \"records\": 1}],"
	" \"flowLogDropped\": [{\"reason\": \"rate\", \"records\": 3}, {\"reason\": \"size\", \"records\": 0}]}";

static json_t *stats_fixture(void)
{
	json_error_t error;
	json_t *stats = json_loads(stats_text, 0, &error);

	if (!stats)
		fail_msg("fixture: %s at %d:%d", error.text, error.line, error.column);
	return stats;
}

static char *render(json_t *stats)
{
	char *text = metrics_render_text(stats, NULL);

	assert_non_null(text);
	return text;
}

static char *render_fixture(void)
{
	json_t *stats = stats_fixture();
	char *text = render(stats);

	json_decref(stats);
	return text;
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p += n)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

static void assert_line(const char *text, const char *line)
{
	if (!has_line(text, line))
		fail_msg("no line '%s' in:\n%s", line, text);
}

/* Every sample follows the HELP and TYPE of its family, and each family has them once. */
static void every_sample_follows_help_and_type_of_its_family(void **state)
{
	char *text = render_fixture(), *copy = strdup(text), *save = NULL, *line;
	char family[128] = "", seen[64][128];
	int n_seen = 0, samples = 0;

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], type[32];

		if (sscanf(line, "# HELP %127s", name) == 1) {
			for (int i = 0; i < n_seen; i++)
				if (!strcmp(seen[i], name))
					fail_msg("family %s described twice", name);
			snprintf(seen[n_seen++], sizeof(seen[0]), "%s", name);
			snprintf(family, sizeof(family), "%s", name);
			continue;
		}
		if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
			assert_string_equal(name, family);
			assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge"));
			if (strstr(name, "_total"))
				assert_string_equal(type, "counter");
			continue;
		}
		assert_int_equal(strncmp(line, family, strlen(family)), 0);
		assert_true(line[strlen(family)] == '{' || line[strlen(family)] == ' ');
		assert_int_equal(strncmp(line, "vnetxdp_", 8), 0);
		samples++;
	}
	assert_true(samples > 10);
	free(copy);
	free(text);
}

static void label_values_escape_backslash_quote_and_newline(void **state)
{
	char *text = render_fixture();

	assert_line(text, "vnetxdp_peering_bytes_total{vnet=\"we\\\"ird\\\\name\\nx\",remote_vnet=\"hub\"} 9007199254740993");
	free(text);
}

static void peering_counters_carry_azure_names(void **state)
{
	char *text = render_fixture();

	assert_line(text, "# TYPE vnetxdp_peering_packets_total counter");
	assert_line(text, "vnetxdp_peering_packets_total{vnet=\"hub\",remote_vnet=\"spoke1\"} 5");
	assert_line(text, "vnetxdp_peering_bytes_total{vnet=\"hub\",remote_vnet=\"spoke1\"} 490");
	free(text);
}

/* The maps hold unsigned 64-bit sums; jansson stores them signed. */
static void counters_render_as_unsigned_64_bit(void **state)
{
	char *text = render_fixture();

	assert_line(text, "vnetxdp_peering_packets_total{vnet=\"we\\\"ird\\\\name\\nx\",remote_vnet=\"hub\"} 18446744073709551615");
	free(text);
}

static void drops_are_labelled_by_interface_vnet_and_reason(void **state)
{
	char *text = render_fixture();

	assert_line(text, "# TYPE vnetxdp_interface_drop_packets_total counter");
	assert_line(text, "vnetxdp_interface_drop_packets_total{interface=\"to-hub\",vnet=\"hub\","
			  "reason=\"nsg_denied_inbound\"} 3");
	assert_line(text, "vnetxdp_interface_drop_bytes_total{interface=\"to-hub\",vnet=\"hub\","
			  "reason=\"nsg_denied_inbound\"} 222");
	/* Outside every VNet: the label is empty, which Prometheus reads as absent. */
	assert_line(text, "vnetxdp_interface_drop_packets_total{interface=\"xfrm-s2s\",vnet=\"\","
			  "reason=\"tunnel_spoofed_inner\"} 1");
	assert_line(text, "vnetxdp_interface_drop_unattributed_packets_total{vnet=\"hub\"} 7");
	/* The drops by reason keep their name and labels. */
	assert_line(text, "vnetxdp_drop_packets_total{reason=\"no_route\"} 2");
	free(text);
}

static void drops_are_labelled_by_reason(void **state)
{
	char *text = render_fixture();

	assert_line(text, "# TYPE vnetxdp_drop_packets_total counter");
	assert_line(text, "vnetxdp_drop_packets_total{reason=\"no_route\"} 2");
	assert_line(text, "vnetxdp_drop_packets_total{reason=\"route_none\"} 0");
	assert_line(text, "vnetxdp_drop_bytes_total{reason=\"no_route\"} 120");
	assert_line(text, "vnetxdp_datapath_packets_total{action=\"forwarded\"} 8");
	free(text);
}

static void flow_log_records_are_counted_by_state_and_drop_reason(void **state)
{
	char *text = render_fixture();

	assert_line(text, "# TYPE vnetxdp_flow_log_records_total counter");
	assert_line(text, "vnetxdp_flow_log_records_total{state=\"begin\"} 4");
	assert_line(text, "vnetxdp_flow_log_records_total{state=\"denied\"} 1");
	assert_line(text, "# TYPE vnetxdp_flow_log_records_dropped_total counter");
	assert_line(text, "vnetxdp_flow_log_records_dropped_total{reason=\"rate\"} 3");
	assert_line(text, "vnetxdp_flow_log_records_dropped_total{reason=\"size\"} 0");
	free(text);
}

static void build_info_and_config_generation(void **state)
{
	char *text = render_fixture();

	assert_line(text, "# TYPE vnetxdp_build_info gauge");
	assert_line(text, "vnetxdp_build_info{version=\"1.2.3\"} 1");
	assert_line(text, "# TYPE vnetxdp_config_generation gauge");
	assert_line(text, "vnetxdp_config_generation 7");
	free(text);
}

static void map_fill_has_entries_and_capacity(void **state)
{
	char *text = render_fixture();

	assert_line(text, "vnetxdp_map_entries{map=\"routes\"} 12");
	assert_line(text, "vnetxdp_map_max_entries{map=\"routes\"} 262144");
	/* a map without keys has a capacity but no invented entry count */
	assert_line(text, "vnetxdp_map_max_entries{map=\"ringbuf\"} 4096");
	assert_null(strstr(text, "vnetxdp_map_entries{map=\"ringbuf\"}"));
	free(text);
}

/* An array's entries always equal its capacity: the type label lets a fill panel leave
 * arrays out. */
static void map_info_names_the_type_and_memory(void **state)
{
	char *text = render_fixture();

	assert_line(text, "vnetxdp_map_info{map=\"routes\",type=\"lpm_trie\"} 1");
	assert_line(text, "vnetxdp_map_info{map=\"ringbuf\",type=\"ringbuf\"} 1");
	assert_line(text, "vnetxdp_map_memory_bytes{map=\"routes\"} 5242880");
	assert_null(strstr(text, "vnetxdp_map_memory_bytes{map=\"ringbuf\"}"));
	free(text);
}

/* Tunnels, NSG rules, SNAT and flows have no datapath yet: nothing of theirs shows,
 * and when the document carries them, their families appear. */
static void families_without_data_are_left_out(void **state)
{
	json_t *stats = stats_fixture();
	char *text = render(stats);

	assert_null(strstr(text, "vnetxdp_tunnel_"));
	assert_null(strstr(text, "vnetxdp_nsg_"));
	assert_null(strstr(text, "vnetxdp_snat_"));
	assert_null(strstr(text, "vnetxdp_flows_"));
	free(text);

	json_object_set_new(stats, "tunnels", json_pack("[{s:s, s:i, s:i}]", "name", "to-onprem",
							"ingressBytes", 100, "up", 1));
	json_object_set_new(stats, "nsgRuleHits",
			    json_pack("[{s:s, s:s, s:s, s:s, s:i}]", "nsg", "web-nsg", "rule",
				      "allow-https", "direction", "Inbound", "access", "Allow",
				      "hits", 3));
	text = render(stats);
	assert_line(text, "vnetxdp_tunnel_ingress_bytes_total{tunnel=\"to-onprem\"} 100");
	assert_line(text, "vnetxdp_tunnel_up{tunnel=\"to-onprem\"} 1");
	/* measured members only: no egress value was given, so no egress sample */
	assert_null(strstr(text, "vnetxdp_tunnel_egress_bytes_total{"));
	assert_line(text, "vnetxdp_nsg_rule_hits_total{nsg=\"web-nsg\",rule=\"allow-https\","
			  "direction=\"Inbound\",access=\"Allow\"} 3");
	free(text);
	json_decref(stats);
}

static void textfile_is_replaced_atomically(void **state)
{
	char dir[] = "/tmp/vnet-xdp-test-textfile.XXXXXX", path[512], buf[65536];
	json_t *stats = stats_fixture();
	char *expected = render(stats);
	struct dirent *entry;
	struct stat st;
	size_t n;
	FILE *in;
	DIR *d;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(metrics_write_textfile(dir, stats), 0);
	assert_int_equal(metrics_write_textfile(dir, stats), 0); /* over an existing file */
	snprintf(path, sizeof(path), "%s/" METRICS_TEXTFILE_NAME, dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	in = fopen(path, "r");
	assert_non_null(in);
	n = fread(buf, 1, sizeof(buf) - 1, in);
	buf[n] = '\0';
	fclose(in);
	assert_string_equal(buf, expected);
	d = opendir(dir);
	while ((entry = readdir(d))) /* no temporary file is left behind */
		if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..")) {
			assert_string_equal(entry->d_name, METRICS_TEXTFILE_NAME);
			snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
	assert_int_equal(metrics_write_textfile("/nonexistent-vnet-xdp-dir", stats), -ENOENT);
	free(expected);
	json_decref(stats);
}

/* A state set: one sample per state of each tunnel, 1 for the one it is in; a tunnel
 * whose state was not measured has none. */
static void tunnel_state_has_a_sample_per_state_1_for_the_tunnels(void **state)
{
	json_t *stats = stats_fixture();
	char *text;

	json_object_set_new(stats, "tunnels", json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s}]",
							"name", "to-onprem", "state", "down",
							"name", "to-dc", "state", "connected",
							"name", "to-lab"));
	text = render(stats);
	assert_non_null(strstr(text, "# TYPE vnetxdp_tunnel_state gauge\n"));
	assert_line(text, "vnetxdp_tunnel_state{tunnel=\"to-onprem\",state=\"down\"} 1");
	assert_line(text, "vnetxdp_tunnel_state{tunnel=\"to-onprem\",state=\"connecting\"} 0");
	assert_line(text, "vnetxdp_tunnel_state{tunnel=\"to-onprem\",state=\"connected\"} 0");
	assert_line(text, "vnetxdp_tunnel_state{tunnel=\"to-onprem\",state=\"unknown\"} 0");
	assert_line(text, "vnetxdp_tunnel_state{tunnel=\"to-dc\",state=\"connected\"} 1");
	assert_line(text, "vnetxdp_tunnel_state{tunnel=\"to-dc\",state=\"down\"} 0");
	assert_null(strstr(text, "tunnel=\"to-lab\",state="));
	free(text);
	json_decref(stats);
}

/* The exposition must pass Prometheus' own checker, where it is installed. */
static void rendered_text_passes_promtool(void **state)
{
	char path[] = "/tmp/vnet-xdp-test-promtool.XXXXXX", command[256];
	char *text = render_fixture();
	int fd, rc;

	if (system("command -v promtool >/dev/null 2>&1")) {
		free(text);
		skip();
	}
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(command, sizeof(command), "promtool check metrics <%s", path);
	rc = system(command);
	unlink(path);
	free(text);
	assert_int_equal(rc, 0);
}

static int percpu_map_or_skip(enum bpf_map_type type, uint32_t key_size, uint32_t value_size,
			      uint32_t max_entries, uint32_t flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	int fd = bpf_map_create(type, NULL, key_size, value_size, max_entries, &opts);

	if (fd < 0) {
		print_message("cannot create a BPF map (%s): not root or no BPF\n", strerror(errno));
		skip();
	}
	return fd;
}

static void per_cpu_values_are_summed(void **state)
{
	int cpus = libbpf_num_possible_cpus();
	struct packet_counter *values = calloc(cpus, sizeof(*values)), sum;
	uint32_t key = 3;
	int fd;

	assert_true(cpus > 0);
	fd = percpu_map_or_skip(BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(uint32_t),
				sizeof(struct packet_counter), 8, 0);
	for (int i = 0; i < cpus; i++) {
		values[i].packets = i + 1;
		values[i].bytes = 100 * (i + 1);
	}
	assert_int_equal(bpf_map_update_elem(fd, &key, values, BPF_ANY), 0);
	assert_int_equal(datapath_read_counter(fd, key, &sum), 0);
	assert_int_equal(sum.packets, (uint64_t)cpus * (cpus + 1) / 2);
	assert_int_equal(sum.bytes, 100 * (uint64_t)cpus * (cpus + 1) / 2);
	close(fd);
	free(values);
}

static void map_entries_walk_keys_but_arrays_count_their_size(void **state)
{
	struct lpm_key lpm = { .family = 2 };
	uint32_t value = 0;
	int hash, trie, array;

	hash = percpu_map_or_skip(BPF_MAP_TYPE_HASH, sizeof(uint32_t), sizeof(uint32_t), 64, 0);
	for (uint32_t k = 0; k < 5; k++)
		assert_int_equal(bpf_map_update_elem(hash, &k, &value, BPF_ANY), 0);
	assert_int_equal(stats_map_entries(hash), 5);

	trie = percpu_map_or_skip(BPF_MAP_TYPE_LPM_TRIE, sizeof(lpm), sizeof(uint32_t), 64,
				  BPF_F_NO_PREALLOC);
	assert_int_equal(stats_map_entries(trie), 0);
	for (int i = 0; i < 3; i++) {
		lpm.prefixlen = LPM_SCOPE_BITS + 8 * (i + 1);
		lpm.addr[0] = 10;
		assert_int_equal(bpf_map_update_elem(trie, &lpm, &value, BPF_ANY), 0);
	}
	assert_int_equal(stats_map_entries(trie), 3);

	array = percpu_map_or_skip(BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(uint32_t), sizeof(uint64_t),
				   17, 0);
	assert_int_equal(stats_map_entries(array), 17);
	close(hash);
	close(trie);
	close(array);
}

static long long keys_walked(int fd)
{
	uint32_t key, *prev = NULL;
	long long n = 0;

	while (!bpf_map_get_next_key(fd, prev, &key)) {
		n++;
		prev = &key;
	}
	return n;
}

/* The kernel's own count (map_entries.h), checked against a walk where an LRU table
 * pushes entries out and where entries are deleted. */
static void hash_map_entries_are_the_kernels_count_through_evictions_and_deletes(void **state)
{
	struct map_entry_table table;
	struct bpf_map_info info = { 0 };
	uint32_t length = sizeof(info), value = 0;
	int lru, hash;

	lru = percpu_map_or_skip(BPF_MAP_TYPE_LRU_HASH, sizeof(uint32_t), sizeof(uint32_t), 256, 0);
	hash = percpu_map_or_skip(BPF_MAP_TYPE_HASH, sizeof(uint32_t), sizeof(uint32_t), 256,
				  BPF_F_NO_PREALLOC);
	if (map_entry_table_read(&table)) {
		print_message("no bpf_map iterator with entry counts (kernel before 6.6?)\n");
		skip();
	}
	assert_int_equal(bpf_obj_get_info_by_fd(lru, &info, &length), 0);
	assert_int_equal(map_entry_table_find(&table, info.id), 0);
	map_entry_table_free(&table);

	for (uint32_t k = 0; k < 1000; k++)
		assert_int_equal(bpf_map_update_elem(lru, &k, &value, BPF_ANY), 0);
	for (uint32_t k = 0; k < 100; k++)
		assert_int_equal(bpf_map_update_elem(hash, &k, &value, BPF_ANY), 0);
	for (uint32_t k = 0; k < 40; k++)
		assert_int_equal(bpf_map_delete_elem(hash, &k), 0);
	for (uint32_t k = 999; k > 989; k--)
		bpf_map_delete_elem(lru, &k);
	assert_int_equal(stats_map_entries(lru), keys_walked(lru));
	assert_true(keys_walked(lru) > 0 && keys_walked(lru) <= 256);
	assert_int_equal(stats_map_entries(hash), 60);
	close(lru);
	close(hash);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_sample_follows_help_and_type_of_its_family),
		cmocka_unit_test(label_values_escape_backslash_quote_and_newline),
		cmocka_unit_test(peering_counters_carry_azure_names),
		cmocka_unit_test(counters_render_as_unsigned_64_bit),
		cmocka_unit_test(drops_are_labelled_by_reason),
		cmocka_unit_test(drops_are_labelled_by_interface_vnet_and_reason),
		cmocka_unit_test(build_info_and_config_generation),
		cmocka_unit_test(flow_log_records_are_counted_by_state_and_drop_reason),
		cmocka_unit_test(map_fill_has_entries_and_capacity),
		cmocka_unit_test(map_info_names_the_type_and_memory),
		cmocka_unit_test(families_without_data_are_left_out),
		cmocka_unit_test(textfile_is_replaced_atomically),
		cmocka_unit_test(tunnel_state_has_a_sample_per_state_1_for_the_tunnels),
		cmocka_unit_test(rendered_text_passes_promtool),
		cmocka_unit_test(per_cpu_values_are_summed),
		cmocka_unit_test(map_entries_walk_keys_but_arrays_count_their_size),
		cmocka_unit_test(hash_map_entries_are_the_kernels_count_through_evictions_and_deletes),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}

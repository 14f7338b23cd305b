/* Flow logs in Azure's VNet flow log format (see flow_log.h and docs/nsg.md, "Flow logs"). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <linux/limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <net/if.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "config/config.h"
#include "lib/path_name.h"
#include "lib/private_file.h"
#include "datapath/datapath.h"
#include "observe/flow_log.h"
#include "datapath/nsg_write.h"
#include "observe/flows.h"
#include "lib/lock.h"
#include "lib/bpf_map.h"
#include "lib/log.h"
#include "datapath/state.h"

/* ---- The directory ------------------------------------------------------------------------ */

static int mkdir_parents(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

int flow_log_directory_prepare(const char *path)
{
	const char *problem = path_name_problem(path);
	struct stat st;
	int err;

	if (problem) {
		log_error("flow log directory %s %s", path, problem);
		return -EINVAL;
	}
	if (lstat(path, &st) && errno == ENOENT) {
		err = mkdir_parents(path, 0750);
		if (err || chown(path, 0, 0) || chmod(path, 0750)) {
			err = err ? err : -errno;
			log_error("cannot create the flow log directory %s: %s", path, strerror(-err));
			return err;
		}
	}
	if (lstat(path, &st)) {
		err = -errno;
		log_error("flow log directory %s: %s", path, strerror(-err));
		return err;
	}
	if (S_ISLNK(st.st_mode)) {
		log_error("flow log directory %s is a symbolic link; give the directory itself", path);
		return -ELOOP;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("flow log directory %s is not a directory", path);
		return -ENOTDIR;
	}
	if (st.st_mode & S_IWOTH) {
		log_error("flow log directory %s is writable by every user (mode %04o); allowed: "
			  "0750 or stricter", path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* ---- The document ------------------------------------------------------------------------- */

static void address_text(uint8_t family, const uint8_t *addr, char *buf, size_t size)
{
	if (!inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr, buf, (socklen_t)size))
		snprintf(buf, size, "?");
}

void flow_log_tuple_text(const struct flow_log_tuple *t, char *buf, size_t size)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];

	address_text(t->family, t->src, src, sizeof(src));
	address_text(t->family, t->dst, dst, sizeof(dst));
	/* NX: vnet-xdp does not encrypt between VMs (Azure's "not encrypted"). */
	snprintf(buf, size, "%" PRIu64 ",%s,%s,%u,%u,%u,%c,%c,NX,%" PRIu64 ",%" PRIu64 ",%" PRIu64
		 ",%" PRIu64, t->time_ms, src, dst, t->sport, t->dport, t->proto, t->direction,
		 t->state, t->packets[0], t->bytes[0], t->packets[1], t->bytes[1]);
}

void flow_log_rule_text(const struct flow_log_names *names, uint32_t rule_id, char *buf,
			size_t size)
{
	json_t *rule = rule_id == NSG_NONE || !names->ids ? NULL : nsg_ids_rule(names->ids, rule_id);
	const char *name = json_string_value(json_object_get(rule, "rule"));

	if (rule_id == NSG_NONE)
		snprintf(buf, size, "%s", FLOW_LOG_NO_NSG_RULE);
	else if (!name)
		snprintf(buf, size, "UserRule_rule-%u", rule_id);
	else /* Azure's default rules sit at 65000 and above */
		snprintf(buf, size, "%s_%s", json_integer_value(json_object_get(rule, "priority")) >= 65000 ?
			 "DefaultRule" : "UserRule", name);
}

static void acl_text(const struct flow_log_names *names, uint32_t nsg_id, char *buf, size_t size)
{
	const char *name = nsg_id == NSG_NONE || !names->ids ? NULL : nsg_ids_nsg_name(names->ids, nsg_id);

	if (nsg_id == NSG_NONE)
		snprintf(buf, size, "%s", FLOW_LOG_NO_NSG_ACL);
	else if (name)
		snprintf(buf, size, FLOW_LOG_RESOURCE_GROUP "/providers/Microsoft.Network/"
			 "networkSecurityGroups/%s", name);
	else
		snprintf(buf, size, FLOW_LOG_RESOURCE_GROUP "/providers/Microsoft.Network/"
			 "networkSecurityGroups/nsg-%u", nsg_id);
}

static uint64_t fnv1a(const void *data, size_t len, uint64_t h)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The same GUID for a gateway every time: readers group a flow log's records by it. */
static void flow_log_guid(const char *gateway, char *buf, size_t size)
{
	uint64_t a = fnv1a(gateway, strlen(gateway), 0xcbf29ce484222325ull);
	uint64_t b = fnv1a(gateway, strlen(gateway), a);

	snprintf(buf, size, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
		 (unsigned)(a >> 16) & 0xffff, (unsigned)(0x4000 | (a & 0x0fff)),
		 (unsigned)(0x8000 | ((b >> 48) & 0x3fff)), (unsigned long long)(b & 0xffffffffffffull));
}

static void time_text(struct timespec now, char *buf, size_t size)
{
	struct tm tm;

	gmtime_r(&now.tv_sec, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%07ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 100);
}

static json_t *record_new(const struct flow_log_names *names, const char *vnet, const char *when)
{
	const char *mac = json_string_value(json_object_get(names->macs, vnet));
	char guid[40], flow_log_id[512], target[512];

	flow_log_guid(names->gateway, guid, sizeof(guid));
	snprintf(flow_log_id, sizeof(flow_log_id), FLOW_LOG_RESOURCE_GROUP "/providers/"
		 "Microsoft.Network/networkWatchers/NetworkWatcher_vnetxdp/flowLogs/%s", names->gateway);
	snprintf(target, sizeof(target), FLOW_LOG_RESOURCE_GROUP "/providers/Microsoft.Network/"
		 "virtualNetworks/%s", vnet);
	return json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:[]}}", "time", when,
			 "flowLogVersion", 4, "flowLogGUID", guid, "macAddress", mac ? mac : "000000000000",
			 "category", "FlowLogFlowEvent", "flowLogResourceID", flow_log_id,
			 "targetResourceID", target, "operationName", "FlowLogFlowEvent",
			 "flowRecords", "flows");
}

/* The member of `list` whose `key` is `value`, made when there is none. */
static json_t *group_of(json_t *list, const char *key, const char *value, const char *members)
{
	size_t i;
	json_t *it;

	json_array_foreach(list, i, it)
		if (!strcmp(json_string_value(json_object_get(it, key)), value))
			return json_object_get(it, members);
	it = json_pack("{s:s, s:[]}", key, value, members);
	json_array_append_new(list, it);
	return json_object_get(it, members);
}

json_t *flow_log_document(const struct flow_log_names *names, const struct flow_log_tuple *t,
			  size_t n, struct timespec now)
{
	json_t *records = json_array(), *by_vnet = json_object();
	char when[64], acl[512], rule[300], tuple[200];

	time_text(now, when, sizeof(when));
	for (size_t i = 0; i < n; i++) {
		const char *vnet = json_string_value(json_array_get(names->vnets, t[i].vnet));
		json_t *record, *groups, *tuples;

		if (!vnet)
			continue;
		record = json_object_get(by_vnet, vnet);
		if (!record) {
			record = record_new(names, vnet, when);
			json_array_append_new(records, record);
			json_object_set(by_vnet, vnet, record);
		}
		acl_text(names, t[i].nsg_id, acl, sizeof(acl));
		flow_log_rule_text(names, t[i].rule_id, rule, sizeof(rule));
		flow_log_tuple_text(&t[i], tuple, sizeof(tuple));
		groups = group_of(json_object_get(json_object_get(record, "flowRecords"), "flows"),
				  "aclID", acl, "flowGroups");
		tuples = group_of(groups, "rule", rule, "flowTuples");
		json_array_append_new(tuples, json_string(tuple));
	}
	json_decref(by_vnet);
	return json_pack("{s:o}", "records", records);
}

/* ---- The tracker -------------------------------------------------------------------------- */

struct known_flow {
	struct flow_key key;
	uint64_t created_ns;
	uint64_t packets[2], bytes[2];  /* as far as records have told */
	uint64_t pass;                  /* the last pass that saw it */
	uint32_t nsg_id[NSG_STAGES], rule_id[NSG_STAGES]; /* for an End once the entry is gone */
	uint8_t initiator_is_b;
	bool ended, removed;
};

struct denied_key {
	uint8_t family, proto;
	char direction;
	uint8_t pad;
	uint16_t sport, dport;
	uint32_t nsg_id, rule_id;
	uint8_t src[16], dst[16];
};

struct flow_log_tracker {
	struct known_flow *flows;
	size_t n_flows, flows_size;
	uint32_t *slots;                /* index + 1 into flows; 0: empty */
	size_t n_slots;
	uint64_t pass;
	struct flow_log_tuple *tuples;
	size_t n_tuples, tuples_size;
	struct denied_key *denied;      /* parallel to denied_tuple */
	size_t *denied_tuple;
	size_t n_denied, denied_size;
	uint64_t denied_second;
	uint32_t denied_in_second;
};

struct flow_log_tracker *flow_log_tracker_new(void)
{
	return calloc(1, sizeof(struct flow_log_tracker));
}

void flow_log_tracker_free(struct flow_log_tracker *t)
{
	if (!t)
		return;
	free(t->flows);
	free(t->slots);
	free(t->tuples);
	free(t->denied);
	free(t->denied_tuple);
	free(t);
}

static uint64_t flow_hash(const struct flow_key *k, uint64_t created_ns)
{
	return fnv1a(&created_ns, sizeof(created_ns), fnv1a(k, sizeof(*k), 0xcbf29ce484222325ull));
}

static bool known_is(const struct known_flow *f, const struct flow_key *k, uint64_t created_ns)
{
	return f->created_ns == created_ns && !memcmp(&f->key, k, sizeof(*k));
}

static void slots_rebuild(struct flow_log_tracker *t, size_t n_slots)
{
	uint32_t *slots = calloc(n_slots, sizeof(*slots));

	if (!slots)
		return; /* keeps the old ones, fuller */
	free(t->slots);
	t->slots = slots;
	t->n_slots = n_slots;
	for (size_t i = 0; i < t->n_flows; i++) {
		size_t s = flow_hash(&t->flows[i].key, t->flows[i].created_ns) % n_slots;

		while (slots[s])
			s = (s + 1) % n_slots;
		slots[s] = (uint32_t)(i + 1);
	}
}

static struct known_flow *known_find(struct flow_log_tracker *t, const struct flow_key *k,
				     uint64_t created_ns)
{
	size_t s;

	if (!t->n_slots)
		return NULL;
	for (s = flow_hash(k, created_ns) % t->n_slots; t->slots[s]; s = (s + 1) % t->n_slots)
		if (known_is(&t->flows[t->slots[s] - 1], k, created_ns))
			return &t->flows[t->slots[s] - 1];
	return NULL;
}

static struct known_flow *known_add(struct flow_log_tracker *t, const struct flow_key *k,
				    uint64_t created_ns)
{
	struct known_flow *f;
	size_t s;

	if (t->n_flows == t->flows_size) {
		size_t size = t->flows_size ? 2 * t->flows_size : 256;
		struct known_flow *bigger = realloc(t->flows, size * sizeof(*bigger));

		if (!bigger)
			return NULL;
		t->flows = bigger;
		t->flows_size = size;
	}
	if (2 * (t->n_flows + 1) > t->n_slots)
		slots_rebuild(t, 4 * (t->n_flows + 1));
	if (2 * (t->n_flows + 1) > t->n_slots)
		return NULL;
	f = &t->flows[t->n_flows];
	*f = (struct known_flow){ .key = *k, .created_ns = created_ns };
	for (s = flow_hash(k, created_ns) % t->n_slots; t->slots[s]; s = (s + 1) % t->n_slots)
		;
	t->slots[s] = (uint32_t)(++t->n_flows);
	return f;
}

static struct flow_log_tuple *tuple_add(struct flow_log_tracker *t)
{
	if (t->n_tuples == t->tuples_size) {
		size_t size = t->tuples_size ? 2 * t->tuples_size : 256;
		struct flow_log_tuple *bigger = realloc(t->tuples, size * sizeof(*bigger));

		if (!bigger)
			return NULL;
		t->tuples = bigger;
		t->tuples_size = size;
	}
	return memset(&t->tuples[t->n_tuples++], 0, sizeof(*t->tuples));
}

static uint64_t wall_ms(uint64_t mono_ns, int64_t realtime_offset_ns)
{
	return (uint64_t)((int64_t)mono_ns + realtime_offset_ns) / 1000000;
}

/* The tuples of one flow in one state: one per NSG on each side that is a VNet (its own
 * direction there), or one with no NSG where a side has none. */
static void flow_tuples(struct flow_log_tracker *t, const struct flow_key *k,
			const struct flow_entry *f, char state, const uint64_t packets[2],
			const uint64_t bytes[2], uint64_t time_ms)
{
	static const int side_stages[2][2] = {
		{ NSG_STAGE_SOURCE_NIC, NSG_STAGE_SOURCE_SUBNET },
		{ NSG_STAGE_DESTINATION_SUBNET, NSG_STAGE_DESTINATION_NIC },
	};
	bool b_first = f->initiator_is_b, ports = k->proto == IPPROTO_TCP || k->proto == IPPROTO_UDP;
	uint16_t vnets[2] = { b_first ? k->vnet_b : k->vnet_a, b_first ? k->vnet_a : k->vnet_b };

	for (int side = 0; side < 2; side++) {
		int stages_with_nsg = 0;

		if (vnets[side] == NSG_VNET_NONE)
			continue;
		for (int i = 0; i < 3; i++) {
			int stage = i < 2 ? side_stages[side][i] : -1;
			struct flow_log_tuple *tu;

			if (stage >= 0 && f->nsg_id[stage] == NSG_NONE)
				continue;
			if (stage < 0 && stages_with_nsg)
				break;
			stages_with_nsg += stage >= 0;
			tu = tuple_add(t);
			if (!tu)
				return;
			tu->time_ms = time_ms;
			tu->family = k->family;
			tu->proto = k->proto;
			memcpy(tu->src, b_first ? k->addr_b : k->addr_a, 16);
			memcpy(tu->dst, b_first ? k->addr_a : k->addr_b, 16);
			tu->sport = !ports ? 0 : b_first ? k->port_b : k->port_a;
			tu->dport = !ports ? 0 : b_first ? k->port_a : k->port_b;
			tu->direction = side == 0 ? 'O' : 'I';
			tu->state = state;
			tu->vnet = vnets[side];
			tu->nsg_id = stage >= 0 ? f->nsg_id[stage] : NSG_NONE;
			tu->rule_id = stage >= 0 ? f->rule_id[stage] : NSG_NONE;
			for (int d = 0; d < 2; d++) {
				tu->packets[d] = packets[d];
				tu->bytes[d] = bytes[d];
			}
		}
	}
}

/* A record of what changed since the last one; the flow's counts are then told. */
static void flow_record_delta(struct flow_log_tracker *t, struct known_flow *kf,
			      const struct flow_key *k, const struct flow_entry *f, char state,
			      uint64_t time_ms)
{
	uint64_t packets[2], bytes[2];

	for (int d = 0; d < 2; d++) {
		packets[d] = f->packets[d] > kf->packets[d] ? f->packets[d] - kf->packets[d] : 0;
		bytes[d] = f->bytes[d] > kf->bytes[d] ? f->bytes[d] - kf->bytes[d] : 0;
		kf->packets[d] = f->packets[d];
		kf->bytes[d] = f->bytes[d];
	}
	flow_tuples(t, k, f, state, packets, bytes, time_ms);
}

void flow_log_pass_begin(struct flow_log_tracker *t)
{
	t->pass++;
}

static const uint64_t zero_counts[2];

/* A TCP flow is over at FIN both ways or RST, but the last ACK follows the second FIN: its End waits for a quiet second. */
#define FLOW_LOG_CLOSE_QUIET_NS 1000000000ull

void flow_log_seen(struct flow_log_tracker *t, const struct flow_key *k, const struct flow_entry *f,
		   uint64_t now_ns, int64_t realtime_offset_ns)
{
	struct known_flow *kf = known_find(t, k, f->created_ns);
	bool changed = false;
	uint64_t now_ms = wall_ms(now_ns, realtime_offset_ns);

	if (!kf) {
		kf = known_add(t, k, f->created_ns);
		if (!kf)
			return;
		flow_tuples(t, k, f, 'B', zero_counts, zero_counts,
			    wall_ms(f->created_ns, realtime_offset_ns));
	}
	kf->pass = t->pass;
	kf->initiator_is_b = f->initiator_is_b;
	memcpy(kf->nsg_id, f->nsg_id, sizeof(kf->nsg_id));
	memcpy(kf->rule_id, f->rule_id, sizeof(kf->rule_id));
	if (kf->ended || kf->removed)
		return;
	for (int d = 0; d < 2; d++)
		changed |= f->packets[d] != kf->packets[d] || f->bytes[d] != kf->bytes[d];
	if (k->proto == IPPROTO_TCP && f->tcp_state >= TCP_FLOW_CLOSING &&
	    now_ns >= f->last_seen_ns && now_ns - f->last_seen_ns >= FLOW_LOG_CLOSE_QUIET_NS) {
		flow_record_delta(t, kf, k, f, 'E', now_ms);
		kf->ended = true;
	} else if (changed) {
		flow_record_delta(t, kf, k, f, 'C', now_ms);
	}
}

void flow_log_removed(struct flow_log_tracker *t, const struct flow_key *k, const struct flow_entry *f,
		      uint64_t now_ns, int64_t realtime_offset_ns)
{
	struct known_flow *kf = known_find(t, k, f->created_ns), fresh = { 0 };

	if (!kf) { /* came and went between two passes */
		flow_tuples(t, k, f, 'B', zero_counts, zero_counts,
			    wall_ms(f->created_ns, realtime_offset_ns));
		kf = &fresh;
	}
	if (!kf->ended && !kf->removed)
		flow_record_delta(t, kf, k, f, 'E', wall_ms(now_ns, realtime_offset_ns));
	kf->removed = true;
}

void flow_log_pass_end(struct flow_log_tracker *t, uint64_t now_ns, int64_t realtime_offset_ns)
{
	size_t kept = 0;

	for (size_t i = 0; i < t->n_flows; i++) {
		struct known_flow *kf = &t->flows[i];

		if (kf->pass == t->pass && !kf->removed) {
			t->flows[kept++] = *kf;
			continue;
		}
		if (kf->ended || kf->removed)
			continue;
		/* Gone without the GC: what it carried since the last record is not known. */
		{
			struct flow_entry f = { .created_ns = kf->created_ns,
						.initiator_is_b = kf->initiator_is_b };

			memcpy(f.nsg_id, kf->nsg_id, sizeof(f.nsg_id));
			memcpy(f.rule_id, kf->rule_id, sizeof(f.rule_id));
			flow_tuples(t, &kf->key, &f, 'E', zero_counts, zero_counts,
				    wall_ms(now_ns, realtime_offset_ns));
		}
	}
	if (kept != t->n_flows) {
		t->n_flows = kept;
		slots_rebuild(t, t->n_slots > 4 * (kept + 1) ? 4 * (kept + 1) : t->n_slots);
	}
}

static bool denied_key_of(const struct monitor_event *e, struct denied_key *k)
{
	bool ports = e->proto == IPPROTO_TCP || e->proto == IPPROTO_UDP;

	if (e->type != MONITOR_DROP || (e->drop_reason != DROP_NSG_DENIED_OUTBOUND &&
					e->drop_reason != DROP_NSG_DENIED_INBOUND))
		return false;
	memset(k, 0, sizeof(*k));
	k->family = e->family;
	k->proto = e->proto;
	k->direction = e->drop_reason == DROP_NSG_DENIED_OUTBOUND ? 'O' : 'I';
	k->sport = ports ? e->sport : 0;
	k->dport = ports ? e->dport : 0;
	k->nsg_id = e->nsg_id;
	k->rule_id = e->rule_id;
	memcpy(k->src, e->src, 16);
	memcpy(k->dst, e->dst, 16);
	return true;
}

bool flow_log_denied(struct flow_log_tracker *t, const struct monitor_event *e, uint32_t per_second,
		     int64_t realtime_offset_ns)
{
	struct denied_key k;
	struct flow_log_tuple *tu;
	uint16_t vnet;

	if (!denied_key_of(e, &k))
		return true;
	vnet = k.direction == 'O' ? e->src_vnet : e->dst_vnet;
	if (vnet == NSG_VNET_NONE)
		return true;
	/* Few tuples per interval (the bound): a linear search. */
	for (size_t i = 0; i < t->n_denied; i++)
		if (!memcmp(&t->denied[i], &k, sizeof(k))) {
			tu = &t->tuples[t->denied_tuple[i]];
			tu->packets[0]++;
			tu->bytes[0] += e->len;
			return true;
		}
	if (e->time_ns / 1000000000ull != t->denied_second) {
		t->denied_second = e->time_ns / 1000000000ull;
		t->denied_in_second = 0;
	}
	if (t->denied_in_second >= per_second)
		return false;
	if (t->n_denied == t->denied_size) {
		size_t size = t->denied_size ? 2 * t->denied_size : 64;
		struct denied_key *keys = realloc(t->denied, size * sizeof(*keys));
		size_t *index;

		if (!keys)
			return false;
		t->denied = keys;
		index = realloc(t->denied_tuple, size * sizeof(*index));
		if (!index)
			return false;
		t->denied_tuple = index;
		t->denied_size = size;
	}
	tu = tuple_add(t);
	if (!tu)
		return false;
	t->denied_in_second++;
	t->denied[t->n_denied] = k;
	t->denied_tuple[t->n_denied++] = t->n_tuples - 1;
	*tu = (struct flow_log_tuple){ .time_ms = wall_ms(e->time_ns, realtime_offset_ns),
		.family = k.family, .proto = k.proto, .sport = k.sport, .dport = k.dport,
		.direction = k.direction, .state = 'D', .vnet = vnet, .nsg_id = k.nsg_id,
		.rule_id = k.rule_id, .packets = { 1, 0 }, .bytes = { e->len, 0 } };
	memcpy(tu->src, k.src, 16);
	memcpy(tu->dst, k.dst, 16);
	return true;
}

size_t flow_log_take(struct flow_log_tracker *t, struct flow_log_tuple **out)
{
	size_t n = t->n_tuples;

	*out = t->tuples;
	t->tuples = NULL;
	t->n_tuples = t->tuples_size = 0;
	t->n_denied = 0;
	return n;
}

/* ---- The writer ------------------------------------------------------------------------ */

enum flow_log_drop { FLOW_LOG_DROP_RATE = 0, FLOW_LOG_DROP_SIZE, FLOW_LOG_DROP_WRITE,
		     FLOW_LOG_DROP_RING, FLOW_LOG_DROPS };
static const char *const drop_names[FLOW_LOG_DROPS] = { "rate", "size", "write", "ring" };
static const char state_letters[] = "BCED";
static const char *const state_names[] = { "begin", "continuing", "end", "denied" };

struct flow_log {
	char gateway[128];
	struct config_flow_logs s;
	pthread_t thread;
	pthread_mutex_t lock;           /* the tracker and the counters */
	atomic_bool stopping;
	struct flow_log_tracker *tracker;
	int64_t realtime_offset_ns;
	uint64_t written[4];            /* by state_letters */
	uint64_t dropped[FLOW_LOG_DROPS];
	bool write_failing;
	/* The drop events' listener: the monitor's ring, while no `vnet-xdp monitor` reads it. */
	int lock_fd, events_fd, control_fd, budget_fd;
	struct ring_buffer *ring;
	uint64_t taken_ms, renewed_ms, retry_ms, budget_at_take;
	bool told_monitor;
};

static uint64_t monotonic_ms_now(void)
{
	return datapath_clock_ns() / 1000000;
}

static int64_t realtime_offset_now(void)
{
	struct timespec r, m;

	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return ((int64_t)r.tv_sec - m.tv_sec) * 1000000000 + (r.tv_nsec - m.tv_nsec);
}

bool flow_log_settings_equal(const struct flow_log *fl, const struct config_flow_logs *s)
{
	return fl && s->enabled && fl->s.interval_seconds == s->interval_seconds &&
	       fl->s.max_megabytes == s->max_megabytes &&
	       fl->s.denied_per_second == s->denied_per_second &&
	       !strcmp(fl->s.directory, s->directory ? s->directory : "");
}

/* ---- Files: hourly folders, written whole, the oldest hours removed beyond the bound ---- */

static int write_whole(const char *dir, const char *name, const char *text, size_t len)
{
	char tmp[PATH_MAX + 80], path[PATH_MAX + 80];
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	err = fd_write_all(fd, text, len);
	if (!err && fdatasync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* nftw has no context argument: one walk at a time, under walk_lock. */
static pthread_mutex_t walk_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t walk_bytes;
static char (*walk_hours)[PATH_MAX];
static size_t walk_n_hours, walk_hours_size;
static size_t walk_root_len;

static int hour_dir(const char *rel)
{
	int y, mo, d, h, n = 0;

	return sscanf(rel, "y=%4d/m=%2d/d=%2d/h=%2d%n", &y, &mo, &d, &h, &n) == 4 && !rel[n];
}

static int size_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type == FTW_F)
		walk_bytes += (uint64_t)st->st_size;
	if (type == FTW_D && strlen(path) > walk_root_len && hour_dir(path + walk_root_len + 1)) {
		if (walk_n_hours == walk_hours_size) {
			size_t size = walk_hours_size ? 2 * walk_hours_size : 64;
			void *bigger = realloc(walk_hours, size * sizeof(*walk_hours));

			if (!bigger)
				return 0;
			walk_hours = bigger;
			walk_hours_size = size;
		}
		snprintf(walk_hours[walk_n_hours++], PATH_MAX, "%s", path);
	}
	return 0;
}

static int remove_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type == FTW_F || type == FTW_SL || type == FTW_SLN)
		walk_bytes += (uint64_t)st->st_size;
	return remove(path) && errno != ENOENT ? -1 : 0;
}

static int hours_compare(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Removes the oldest hours (never `current`) until `incoming` more bytes fit the bound;
 * false when they do not fit even so. */
static bool room_make(const char *root, const char *current, uint64_t incoming, uint64_t max)
{
	uint64_t total;
	bool fits;

	pthread_mutex_lock(&walk_lock);
	walk_bytes = 0;
	walk_n_hours = 0;
	walk_root_len = strlen(root);
	nftw(root, size_visit, 16, FTW_PHYS);
	total = walk_bytes;
	if (walk_n_hours)
		qsort(walk_hours, walk_n_hours, sizeof(*walk_hours), hours_compare);
	for (size_t i = 0; i < walk_n_hours && total + incoming > max; i++) {
		char parent[PATH_MAX];

		if (!strcmp(walk_hours[i], current))
			continue;
		walk_bytes = 0;
		nftw(walk_hours[i], remove_visit, 16, FTW_PHYS | FTW_DEPTH);
		total = total > walk_bytes ? total - walk_bytes : 0;
		log_info("flow logs: removed %s (the directory passed its size bound)", walk_hours[i]);
		/* d=, m=, y= folders left empty go too (rmdir refuses the others) */
		snprintf(parent, sizeof(parent), "%s", walk_hours[i]);
		for (int up = 0; up < 3; up++) {
			char *slash = strrchr(parent, '/');

			if (!slash || (size_t)(slash - parent) <= walk_root_len)
				break;
			*slash = '\0';
			if (rmdir(parent))
				break;
		}
	}
	fits = total + incoming <= max;
	pthread_mutex_unlock(&walk_lock);
	return fits;
}

static void counts_of(const struct flow_log_tuple *t, size_t n, uint64_t out[4])
{
	memset(out, 0, 4 * sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		const char *at = strchr(state_letters, t[i].state);

		if (at && *at)
			out[at - state_letters]++;
	}
}

/* One document into y=YYYY/m=MM/d=DD/h=HH/m=00/ (Azure's blob path), as
 * flowlog-YYYYMMDDTHHMMSSZ.json. */
static void document_write(struct flow_log *fl, json_t *doc, const struct flow_log_tuple *t,
			   size_t n, struct timespec now)
{
	char hour[PATH_MAX], dir[PATH_MAX + 8], name[64];
	char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t len = text ? strlen(text) : 0;
	uint64_t counts[4];
	struct tm tm;
	int err;

	counts_of(t, n, counts);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(hour, sizeof(hour), "%s/y=%04d/m=%02d/d=%02d/h=%02d", fl->s.directory,
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
	snprintf(dir, sizeof(dir), "%s/m=00", hour);
	snprintf(name, sizeof(name), "flowlog-%04d%02d%02dT%02d%02d%02dZ.json", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (!text) {
		err = -ENOMEM;
	} else if (!room_make(fl->s.directory, hour, len + 1,
			      (uint64_t)fl->s.max_megabytes * 1024 * 1024)) {
		pthread_mutex_lock(&fl->lock);
		fl->dropped[FLOW_LOG_DROP_SIZE] += n;
		pthread_mutex_unlock(&fl->lock);
		log_warn("flow logs: %zu records left out: this hour alone fills %u MB", n,
			 fl->s.max_megabytes);
		free(text);
		return;
	} else {
		text[len] = '\n'; /* json_dumps's terminator becomes the line's end */
		err = mkdir_parents(dir, 0750);
		if (!err)
			err = write_whole(dir, name, text, len + 1);
	}
	free(text);
	pthread_mutex_lock(&fl->lock);
	if (err) {
		fl->dropped[FLOW_LOG_DROP_WRITE] += n;
	} else {
		for (int i = 0; i < 4; i++)
			fl->written[i] += counts[i];
	}
	pthread_mutex_unlock(&fl->lock);
	if (err && !fl->write_failing)
		log_warn("flow logs: cannot write %s/%s: %s", dir, name, strerror(-err));
	else if (!err && fl->write_failing)
		log_info("flow logs: writing again into %s", fl->s.directory);
	fl->write_failing = err != 0;
}

/* Names for the document: the VNets of the running config, their interfaces' MACs, the
 * NSG and rule ids. */
static json_t *vnet_macs(json_t *state)
{
	json_t *macs = json_object(), *it;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	size_t i;

	/* by ioctl, not /sys: sysfs shows the namespace it was mounted in, not serve's */
	json_array_foreach(json_object_get(state, "interfaces"), i, it) {
		const char *vnet = json_string_value(json_object_get(it, "virtualNetwork"));
		const char *name = json_string_value(json_object_get(it, "name"));
		struct ifreq ifr = { 0 };
		const unsigned char *a = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
		char mac[16];

		if (fd < 0 || !vnet || !name || json_object_get(macs, vnet) || strlen(name) >= IFNAMSIZ)
			continue;
		memcpy(ifr.ifr_name, name, strlen(name));
		if (ioctl(fd, SIOCGIFHWADDR, &ifr))
			continue;
		snprintf(mac, sizeof(mac), "%02X%02X%02X%02X%02X%02X", a[0], a[1], a[2], a[3], a[4], a[5]);
		json_object_set_new(macs, vnet, json_string(mac));
	}
	if (fd >= 0)
		close(fd);
	return macs;
}

struct pass_ctx {
	struct flow_log *fl;
	uint64_t now_ns;
};

static void flow_visited(void *ctx, const struct flow_key *k, const struct flow_entry *f)
{
	struct pass_ctx *p = ctx;

	flow_log_seen(p->fl->tracker, k, f, p->now_ns, p->fl->realtime_offset_ns);
}

void flow_log_flow_removed(void *ctx, const struct flow_key *k, const struct flow_entry *f)
{
	struct flow_log *fl = ctx;

	pthread_mutex_lock(&fl->lock);
	flow_log_removed(fl->tracker, k, f, datapath_clock_ns(), fl->realtime_offset_ns);
	pthread_mutex_unlock(&fl->lock);
}

static void interval_run(struct flow_log *fl)
{
	struct pass_ctx p = { .fl = fl };
	struct flow_log_names names = { .gateway = fl->gateway };
	struct nsg_ids ids = { 0 };
	struct flow_log_tuple *tuples;
	struct timespec now;
	json_t *state, *doc;
	size_t n;

	pthread_mutex_lock(&fl->lock);
	p.now_ns = datapath_clock_ns();
	flow_log_pass_begin(fl->tracker);
	if (!flows_foreach(fl->gateway, flow_visited, &p))
		flow_log_pass_end(fl->tracker, p.now_ns, fl->realtime_offset_ns);
	n = flow_log_take(fl->tracker, &tuples);
	pthread_mutex_unlock(&fl->lock);
	if (!n) {
		free(tuples);
		return;
	}
	state = state_load(fl->gateway);
	nsg_ids_load(fl->gateway, &ids);
	names.vnets = json_object_get(state, "virtualNetworks");
	names.macs = vnet_macs(state);
	names.ids = &ids;
	clock_gettime(CLOCK_REALTIME, &now);
	doc = flow_log_document(&names, tuples, n, now);
	document_write(fl, doc, tuples, n, now);
	json_decref(doc);
	json_decref(names.macs);
	json_decref(state);
	nsg_ids_free(&ids);
	free(tuples);
}

/* ---- Denied flows: serve reads the monitor's ring while no monitor does ---------------- */

/* A `vnet-xdp monitor` that wants the ring waits for the lock (user/observe/monitor.c): serve
 * lets go of it for this long every second. */
#define LISTENER_HOLD_MS 1000
#define LISTENER_GAP_MS 150

static int denied_event(void *ctx, void *data, size_t size)
{
	struct flow_log *fl = ctx;

	if (size < sizeof(struct monitor_event))
		return 0;
	pthread_mutex_lock(&fl->lock);
	if (!flow_log_denied(fl->tracker, data, fl->s.denied_per_second, fl->realtime_offset_ns))
		fl->dropped[FLOW_LOG_DROP_RATE]++;
	pthread_mutex_unlock(&fl->lock);
	return 0;
}

static uint64_t budget_lost(int fd)
{
	struct monitor_budget b;

	return percpu_sum(fd, &(uint32_t){ 0 }, &b, sizeof(b)) ? 0 : b.rate_limited + b.ring_full;
}

static void control_write(int fd, uint64_t until_ns)
{
	/* events_per_second 0: the datapath's default bound, the one a monitor has */
	struct monitor_control c = { .listening_until_ns = until_ns };
	uint32_t zero = 0;

	bpf_map_update_elem(fd, &zero, &c, BPF_ANY);
}

static void listener_release(struct flow_log *fl, bool stop_events)
{
	uint64_t lost;

	if (fl->lock_fd < 0)
		return;
	lost = budget_lost(fl->budget_fd) - fl->budget_at_take;
	if (stop_events)
		control_write(fl->control_fd, 0);
	pthread_mutex_lock(&fl->lock);
	fl->dropped[FLOW_LOG_DROP_RING] += lost;
	pthread_mutex_unlock(&fl->lock);
	gateway_unlock(fl->lock_fd);
	fl->lock_fd = -1;
}

/* Polls the ring for up to 200 ms, or sleeps as long while a monitor holds it. */
static void listener_tick(struct flow_log *fl)
{
	uint64_t now = monotonic_ms_now();

	if (fl->lock_fd < 0 && now >= fl->retry_ms) {
		fl->lock_fd = gateway_monitor_lock(fl->gateway);
		if (fl->lock_fd < 0) {
			if (!fl->told_monitor)
				log_info("flow logs: `vnet-xdp monitor` reads the drop events; denied "
					 "flows go unlogged until it exits");
			fl->told_monitor = true;
			fl->retry_ms = now + LISTENER_HOLD_MS;
		} else {
			if (fl->told_monitor)
				log_info("flow logs: logging denied flows again");
			fl->told_monitor = false;
			fl->taken_ms = now;
			fl->renewed_ms = 0;
			fl->budget_at_take = budget_lost(fl->budget_fd);
		}
	}
	if (fl->lock_fd < 0 || !fl->ring) {
		usleep(200000);
		return;
	}
	if (now - fl->renewed_ms >= 500) {
		control_write(fl->control_fd, datapath_clock_ns() + 2000000000ull);
		fl->renewed_ms = now;
	}
	ring_buffer__poll(fl->ring, 200);
	if (monotonic_ms_now() - fl->taken_ms >= LISTENER_HOLD_MS) {
		listener_release(fl, false);
		fl->retry_ms = monotonic_ms_now() + LISTENER_GAP_MS;
	}
}

static bool listener_open(struct flow_log *fl)
{
	fl->lock_fd = -1;
	fl->events_fd = datapath_map_open(fl->gateway, MAP_monitor_events);
	fl->control_fd = datapath_map_open(fl->gateway, MAP_monitor_control);
	fl->budget_fd = datapath_map_open(fl->gateway, MAP_monitor_budget);
	if (fl->events_fd < 0 || fl->control_fd < 0 || fl->budget_fd < 0) {
		log_warn("flow logs: gateway %s runs a datapath without drop events; denied flows "
			 "are not logged", fl->gateway);
		return false;
	}
	fl->ring = ring_buffer__new(fl->events_fd, denied_event, fl, NULL);
	if (!fl->ring)
		log_warn("flow logs: cannot read the drop events: %s; denied flows are not logged",
			 strerror(errno));
	return fl->ring != NULL;
}

static void listener_close(struct flow_log *fl)
{
	listener_release(fl, true);
	if (fl->ring)
		ring_buffer__free(fl->ring);
	fl->ring = NULL;
	for (int *fd = &fl->events_fd; fd <= &fl->budget_fd; fd++)
		if (*fd >= 0) {
			close(*fd);
			*fd = -1;
		}
}

static void *flow_log_run(void *arg)
{
	struct flow_log *fl = arg;
	bool denied = fl->s.denied_per_second && listener_open(fl);
	uint64_t next = monotonic_ms_now() + (uint64_t)fl->s.interval_seconds * 1000;

	while (!atomic_load(&fl->stopping)) {
		uint64_t now;

		if (denied)
			listener_tick(fl);
		else
			usleep(200000);
		now = monotonic_ms_now();
		if (now >= next) {
			interval_run(fl);
			next += (uint64_t)fl->s.interval_seconds * 1000;
			if (next <= now) /* a pass that took longer than the interval */
				next = now + (uint64_t)fl->s.interval_seconds * 1000;
		}
	}
	if (denied)
		ring_buffer__consume(fl->ring);
	listener_close(fl);
	interval_run(fl);
	return NULL;
}

struct flow_log *flow_log_start(const char *gateway, const struct config_flow_logs *s)
{
	struct flow_log *fl = calloc(1, sizeof(*fl));
	int err;

	if (!fl || !(fl->tracker = flow_log_tracker_new()) || !(fl->s.directory = strdup(s->directory))) {
		log_error("flow logs: out of memory");
		goto fail;
	}
	snprintf(fl->gateway, sizeof(fl->gateway), "%s", gateway);
	fl->s.enabled = true;
	fl->s.interval_seconds = s->interval_seconds;
	fl->s.max_megabytes = s->max_megabytes;
	fl->s.denied_per_second = s->denied_per_second;
	fl->realtime_offset_ns = realtime_offset_now();
	fl->lock_fd = fl->events_fd = fl->control_fd = fl->budget_fd = -1;
	pthread_mutex_init(&fl->lock, NULL);
	err = pthread_create(&fl->thread, NULL, flow_log_run, fl);
	if (err) {
		log_error("flow logs: cannot start the writer: %s", strerror(err));
		goto fail;
	}
	log_info("gateway %s: flow logs into %s every %u s (at most %u MB, %u denied tuples/s)",
		 gateway, s->directory, s->interval_seconds, s->max_megabytes, s->denied_per_second);
	return fl;
fail:
	if (fl) {
		flow_log_tracker_free(fl->tracker);
		free(fl->s.directory);
	}
	free(fl);
	return NULL;
}

void flow_log_stop(struct flow_log *fl)
{
	if (!fl)
		return;
	atomic_store(&fl->stopping, true);
	pthread_join(fl->thread, NULL);
	flow_log_tracker_free(fl->tracker);
	pthread_mutex_destroy(&fl->lock);
	free(fl->s.directory);
	free(fl);
}

void flow_log_stats(struct flow_log *fl, json_t *stats)
{
	json_t *records = json_array(), *dropped = json_array();

	pthread_mutex_lock(&fl->lock);
	for (int i = 0; i < 4; i++)
		json_array_append_new(records, json_pack("{s:s, s:I}", "state", state_names[i],
							 "records", (json_int_t)fl->written[i]));
	for (int i = 0; i < FLOW_LOG_DROPS; i++)
		json_array_append_new(dropped, json_pack("{s:s, s:I}", "reason", drop_names[i],
							 "records", (json_int_t)fl->dropped[i]));
	pthread_mutex_unlock(&fl->lock);
	json_object_set_new(stats, "flowLogRecords", records);
	json_object_set_new(stats, "flowLogDropped", dropped);
}

/* Config reader: one JSON file, a `gateway` binding plus Azure resources, read into the
 * model of config.h and validated against Azure's rules. Every problem is reported as
 * FILE:LINE:COL: json.path: what is wrong; what is allowed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config/internal.h"

/* ---- addresses --------------------------------------------------------------------- */

int ip_address_parse(const char *text, struct ip_address *out)
{
	memset(out, 0, sizeof(*out));
	if (!text)
		return -EINVAL;
	if (inet_pton(AF_INET, text, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, text, out->addr) == 1)
		out->family = AF_INET6;
	else
		return -EINVAL;
	return 0;
}

static bool host_bits_zero(const struct ip_prefix *p)
{
	int bytes = p->family == AF_INET ? 4 : 16;

	for (int i = 0; i < bytes; i++) {
		int keep = p->len - i * 8;
		uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));

		if (p->addr[i] & ~mask)
			return false;
	}
	return true;
}

/* "10.0.0.0/16" or "fd00::/48", network address only; -EINVAL otherwise, -EDOM when the
 * host bits are set (so callers can say which address was meant). */
int ip_prefix_parse(const char *text, struct ip_prefix *out)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	struct ip_address address;
	long len;

	memset(out, 0, sizeof(*out));
	if (!text || strlen(text) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	if (ip_address_parse(buf, &address))
		return -EINVAL;
	errno = 0;
	len = strtol(slash + 1, &end, 10);
	if (!slash[1] || *end || errno || len < 0 ||
	    len > (address.family == AF_INET ? 32 : 128) || !(slash[1] >= '0' && slash[1] <= '9'))
		return -EINVAL;
	out->family = address.family;
	out->len = (uint8_t)len;
	memcpy(out->addr, address.addr, sizeof(out->addr));
	return host_bits_zero(out) ? 0 : -EDOM;
}

static bool prefix_bits_equal(const uint8_t *a, const uint8_t *b, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)full))
		return false;
	if (!rest)
		return true;
	return ((a[full] ^ b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool ip_prefix_overlaps(const struct ip_prefix *a, const struct ip_prefix *b)
{
	if (a->family != b->family)
		return false;
	return prefix_bits_equal(a->addr, b->addr, a->len < b->len ? a->len : b->len);
}

bool ip_prefix_contains(const struct ip_prefix *outer, const struct ip_prefix *inner)
{
	return outer->family == inner->family && outer->len <= inner->len &&
	       prefix_bits_equal(outer->addr, inner->addr, outer->len);
}

const char *prefix_text(const struct ip_prefix *p, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, addr, sizeof(addr));
	snprintf(buf, size, "%s/%u", addr, p->len);
	return buf;
}

static void masked_prefix_text(const struct ip_prefix *p, char *buf, size_t size)
{
	struct ip_prefix masked = *p;
	int bytes = p->family == AF_INET ? 4 : 16;

	for (int i = 0; i < bytes; i++) {
		int keep = p->len - i * 8;

		masked.addr[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
	prefix_text(&masked, buf, size);
}

bool read_prefix(struct loader *l, struct node n, struct ip_prefix *out)
{
	const char *text;
	char fixed[64];
	int rc;

	if (!get_string(&l->r, n, &text))
		return false;
	rc = ip_prefix_parse(text, out);
	if (rc == -EDOM) {
		masked_prefix_text(out, fixed, sizeof(fixed));
		reader_problem(&l->r, n.path, "\"%s\" has host bits set; allowed: the network "
			       "address, %s", reader_shown(&l->r, text), fixed);
		return false;
	}
	if (rc) {
		reader_problem(&l->r, n.path, "\"%s\" is not a CIDR prefix; allowed: IPv4 "
			       "a.b.c.d/0-32 or IPv6 x:x::/0-128", reader_shown(&l->r, text));
		return false;
	}
	return true;
}

bool read_address(struct loader *l, struct node n, struct ip_address *out)
{
	const char *text;

	if (!get_string(&l->r, n, &text))
		return false;
	if (ip_address_parse(text, out)) {
		reader_problem(&l->r, n.path, "\"%s\" is not an IP address; allowed: IPv4 a.b.c.d "
			       "or IPv6 x:x::x", reader_shown(&l->r, text));
		return false;
	}
	return true;
}

size_t read_prefix_list(struct loader *l, struct node single, struct node plural,
			struct ip_prefix **out)
{
	size_t n_plural = json_is_array(plural.value) ? json_array_size(plural.value) : 0, n = 0;
	struct ip_prefix *list = calloc(n_plural + 1, sizeof(*list));

	*out = list;
	if (!list)
		return 0;
	if (single.value && !json_is_null(single.value) && read_prefix(l, single, &list[n]))
		n++;
	if (plural.value && is_array_or_report(&l->r, plural))
		for (size_t i = 0; i < n_plural; i++) {
			struct ip_prefix p;

			if (!read_prefix(l, node_element(&l->r, plural, i), &p))
				continue;
			/* az output repeats addressPrefix inside addressPrefixes */
			if (n && !memcmp(&p, &list[0], sizeof(p)))
				continue;
			list[n++] = p;
		}
	return n;
}

/* ---- small helpers shared by the parts ---------------------------------------------- */

char *copy_string(const char *s)
{
	return s ? strdup(s) : NULL;
}

int find_named(const void *array, size_t count, size_t size, const char *name)
{
	for (size_t i = 0; i < count; i++) {
		const char *candidate = *(char *const *)((const char *)array + i * size);

		if (candidate && name && !strcasecmp(candidate, name))
			return (int)i;
	}
	return CONFIG_NONE;
}

/* ---- sorted lookups ------------------------------------------------------------------ */

struct index_order {
	int (*compare)(const void *ctx, size_t a, size_t b);
	const void *ctx;
};

/* Equal items keep their order of declaration, so the first of a run is the earliest. */
static int compare_positions(const void *a, const void *b, void *arg)
{
	const struct index_order *o = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = o->compare(o->ctx, i, j);

	return c ? c : (i > j) - (i < j);
}

static size_t *sorted_positions(size_t count, int (*compare)(const void *, size_t, size_t),
				const void *ctx)
{
	struct index_order o = { compare, ctx };
	size_t *order = malloc((count + 1) * sizeof(*order));

	if (!order)
		return NULL;
	for (size_t i = 0; i < count; i++)
		order[i] = i;
	qsort_r(order, count, sizeof(*order), compare_positions, &o);
	return order;
}

int find_duplicates(size_t count, int (*compare)(const void *ctx, size_t a, size_t b),
		    const void *ctx, int *first)
{
	size_t *order = sorted_positions(count, compare, ctx), head = 0;

	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		first[order[i]] = CONFIG_NONE;
		if (i && !compare(ctx, order[i - 1], order[i]))
			first[order[i]] = (int)order[head];
		else
			head = i;
	}
	free(order);
	return 0;
}

/* NULL names sort first and equal nothing, not even each other. */
static int compare_names(const char *a, const char *b)
{
	if (!a || !b)
		return a ? 1 : b ? -1 : 0;
	return strcasecmp(a, b);
}

static int compare_name_list(const void *ctx, size_t a, size_t b)
{
	const char *const *names = ctx;

	if (!names[a] && !names[b])
		return (a > b) - (a < b);
	return compare_names(names[a], names[b]);
}

int find_duplicate_names(const char *const *names, size_t count, int *first)
{
	return find_duplicates(count, compare_name_list, names, first);
}

static const char *name_at(const struct name_index *index, size_t i)
{
	return *(char *const *)((const char *)index->array + i * index->size);
}

static int compare_indexed_names(const void *ctx, size_t a, size_t b)
{
	return compare_names(name_at(ctx, a), name_at(ctx, b));
}

static int name_index_build(struct name_index *index, const void *array, size_t count,
			    size_t size)
{
	free(index->order);
	*index = (struct name_index){ array, count, size, NULL };
	index->order = sorted_positions(count, compare_indexed_names, index);
	return index->order ? 0 : -ENOMEM;
}

/* The first element named `name`: the lowest position among equal names. */
static int name_index_find(const struct name_index *index, const char *name)
{
	size_t low = 0, high = index->count;

	while (low < high) {
		size_t mid = low + (high - low) / 2;

		if (compare_names(name_at(index, index->order[mid]), name) < 0)
			low = mid + 1;
		else
			high = mid;
	}
	if (low < index->count && name && name_at(index, index->order[low]) &&
	    !strcasecmp(name_at(index, index->order[low]), name))
		return (int)index->order[low];
	return CONFIG_NONE;
}

/* Small arrays are scanned: building an index would cost more than it saves. */
#define NAME_INDEX_MIN 16

int loader_find_named(struct loader *l, const void *array, size_t count, size_t size,
		      const char *name)
{
	struct name_index *slot = NULL;

	if (count < NAME_INDEX_MIN)
		return find_named(array, count, size, name);
	for (size_t i = 0; i < LOADER_NAME_INDEXES && !slot; i++)
		if (l->name_indexes[i].array == array)
			slot = &l->name_indexes[i];
	for (size_t i = 0; i < LOADER_NAME_INDEXES && !slot; i++)
		if (!l->name_indexes[i].array)
			slot = &l->name_indexes[i];
	if (!slot) /* every slot taken: give up the oldest */
		slot = &l->name_indexes[0];
	if ((slot->array != array || slot->count != count || slot->size != size) &&
	    name_index_build(slot, array, count, size))
		return find_named(array, count, size, name);
	return name_index_find(slot, name);
}

int loader_find_subnet(struct loader *l, int vnet, const char *name)
{
	const struct config_vnet *v = &l->cfg->vnets[vnet];
	struct name_index *index;

	if (v->n_subnets < NAME_INDEX_MIN)
		return find_named(v->subnets, v->n_subnets, sizeof(*v->subnets), name);
	if (!l->subnet_indexes)
		l->subnet_indexes = calloc(l->cfg->n_vnets + 1, sizeof(*l->subnet_indexes));
	if (!l->subnet_indexes)
		return find_named(v->subnets, v->n_subnets, sizeof(*v->subnets), name);
	index = &l->subnet_indexes[vnet];
	if ((index->array != v->subnets || index->count != v->n_subnets) &&
	    name_index_build(index, v->subnets, v->n_subnets, sizeof(*v->subnets)))
		return find_named(v->subnets, v->n_subnets, sizeof(*v->subnets), name);
	return name_index_find(index, name);
}

static void name_indexes_free(struct loader *l)
{
	for (size_t i = 0; i < LOADER_NAME_INDEXES; i++)
		free(l->name_indexes[i].order);
	for (size_t i = 0; l->subnet_indexes && i < l->cfg->n_vnets; i++)
		free(l->subnet_indexes[i].order);
	free(l->subnet_indexes);
}

int config_find_vnet(const struct config *cfg, const char *name)
{
	return find_named(cfg->vnets, cfg->n_vnets, sizeof(cfg->vnets[0]), name);
}

int config_find_nic(const struct config *cfg, const char *name)
{
	return find_named(cfg->nics, cfg->n_nics, sizeof(cfg->nics[0]), name);
}

bool read_enum(struct loader *l, struct node n, const char *const *names, size_t count,
	       int *out)
{
	const char *text;
	char allowed[512] = "";

	if (!get_string(&l->r, n, &text))
		return false;
	for (size_t i = 0; i < count; i++)
		if (!strcasecmp(text, names[i])) {
			*out = (int)i;
			return true;
		}
	for (size_t i = 0; i < count; i++)
		snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s",
			 i ? ", " : "", names[i]);
	reader_problem(&l->r, n.path, "\"%s\" is not a known value; allowed: %s", reader_shown(&l->r, text), allowed);
	return false;
}

/* ---- records ------------------------------------------------------------------------ */

static const struct {
	const char *type; /* after "Microsoft.Network/" */
	enum record_kind kind;
} record_types[] = {
	{ "virtualNetworks", KIND_VNET },
	{ "virtualNetworks/subnets", KIND_SUBNET },
	{ "virtualNetworks/virtualNetworkPeerings", KIND_PEERING },
	{ "networkSecurityGroups", KIND_NSG },
	{ "networkSecurityGroups/securityRules", KIND_SECURITY_RULE },
	{ "networkSecurityGroups/defaultSecurityRules", KIND_DEFAULT_SECURITY_RULE },
	{ "routeTables", KIND_ROUTE_TABLE },
	{ "routeTables/routes", KIND_ROUTE },
	{ "natGateways", KIND_NAT_GATEWAY },
	{ "publicIPAddresses", KIND_PUBLIC_IP },
	{ "networkInterfaces", KIND_NIC },
	{ "localNetworkGateways", KIND_LOCAL_NETWORK_GATEWAY },
	{ "virtualNetworkGateways", KIND_VNET_GATEWAY },
	{ "connections", KIND_CONNECTION },
	{ "applicationSecurityGroups", KIND_APPLICATION_SECURITY_GROUP },
	{ "expressRouteCircuits", KIND_EXPRESS_ROUTE_CIRCUIT },
};

#define NETWORK_NAMESPACE "Microsoft.Network/"

const char *record_kind_type(enum record_kind kind)
{
	for (size_t i = 0; i < sizeof(record_types) / sizeof(record_types[0]); i++)
		if (record_types[i].kind == kind)
			return record_types[i].type;
	return "resource";
}

static enum record_kind kind_of_type(const char *type)
{
	if (strncasecmp(type, NETWORK_NAMESPACE, strlen(NETWORK_NAMESPACE)))
		return KIND_OTHER;
	type += strlen(NETWORK_NAMESPACE);
	for (size_t i = 0; i < sizeof(record_types) / sizeof(record_types[0]); i++)
		if (!strcasecmp(type, record_types[i].type))
			return record_types[i].kind;
	return KIND_OTHER;
}

static bool kind_is_child(enum record_kind kind)
{
	return kind == KIND_SUBNET || kind == KIND_PEERING || kind == KIND_SECURITY_RULE ||
	       kind == KIND_DEFAULT_SECURITY_RULE || kind == KIND_ROUTE;
}

static int record_append(struct loader *l, const struct record *rec)
{
	if (l->n_records == l->cap_records) {
		size_t cap = l->cap_records ? l->cap_records * 2 : 64;
		struct record *bigger = realloc(l->records, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		l->records = bigger;
		l->cap_records = cap;
	}
	l->records[l->n_records++] = *rec;
	return 0;
}

static bool copy_name(struct loader *l, const char *path, char *dst, const char *src,
		      size_t len)
{
	if (!len || len >= NAME_MAX_LEN) {
		reader_problem(&l->r, path, "a name of %zu characters; allowed: 1-%d", len,
			       NAME_MAX_LEN - 1);
		return false;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

/* Child names: "parent/child" at top level, "child" inside a parent (parent given), or
 * "child" with the parent in the resource id (az output of a child). */
static bool split_child_name(struct loader *l, struct record *rec, const char *name,
			     const char *parent)
{
	struct node name_node = node_child(&l->r, rec->resource, "name");
	const char *slash = strchr(name, '/');
	struct reference id_ref;
	const char *id, *why;

	if (slash && !strchr(slash + 1, '/'))
		return copy_name(l, name_node.path, rec->parent, name, (size_t)(slash - name)) &&
		       copy_name(l, name_node.path, rec->name, slash + 1, strlen(slash + 1));
	if (slash) {
		reader_problem(&l->r, name_node.path, "\"%s\" has more than one '/'; allowed: "
			       "\"parent/child\" or \"child\"", reader_shown(&l->r, name));
		return false;
	}
	if (parent)
		return copy_name(l, name_node.path, rec->parent, parent, strlen(parent)) &&
		       copy_name(l, name_node.path, rec->name, name, strlen(name));
	id = json_string_value(json_object_get(rec->resource.value, "id"));
	if (id && !reference_parse(id, &id_ref, &why) && id_ref.n_names == 2)
		return copy_name(l, name_node.path, rec->parent, id_ref.names[0],
				 strlen(id_ref.names[0])) &&
		       copy_name(l, name_node.path, rec->name, name, strlen(name));
	reader_problem(&l->r, name_node.path, "child resource \"%s\" names no parent; allowed: "
		       "\"parent/%s\", or declare it inside its parent", reader_shown(&l->r, name),
		       reader_shown(&l->r, name));
	return false;
}

static int collect_one(struct loader *l, struct node res, const char *parent,
		       enum record_kind parent_kind);

static int collect_nested(struct loader *l, struct node res, const struct record *parent)
{
	struct node nested = node_child(&l->r, res, "resources");

	if (!nested.value || !is_array_or_report(&l->r, nested))
		return 0;
	for (size_t i = 0; i < json_array_size(nested.value); i++) {
		int rc = collect_one(l, node_element(&l->r, nested, i), parent->name, parent->kind);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* A nested child's type may be relative ("subnets") to its parent's. */
static enum record_kind kind_of_nested_type(const char *type, enum record_kind parent_kind)
{
	char full[256];

	if (!strncasecmp(type, NETWORK_NAMESPACE, strlen(NETWORK_NAMESPACE)))
		return kind_of_type(type);
	snprintf(full, sizeof(full), NETWORK_NAMESPACE "%s/%s", record_kind_type(parent_kind),
		 type);
	return kind_of_type(full);
}

/* List responses of some API versions leave "type" out of each entry; the entry's
 * resource id says it ("/subscriptions/../providers/Microsoft.Network/T1/N1/T2/N2"). */
static bool kind_of_id(json_t *resource, enum record_kind *kind)
{
	const char *id = json_string_value(json_object_get(resource, "id")), *why;
	char full[256];
	struct reference ref;

	if (!id || id[0] != '/' || reference_parse(id, &ref, &why) || !ref.type[0])
		return false;
	*kind = KIND_OTHER; /* another namespace: not modeled */
	if (strcasestr(id, "/providers/" NETWORK_NAMESPACE)) {
		snprintf(full, sizeof(full), NETWORK_NAMESPACE "%s", ref.type);
		*kind = kind_of_type(full);
	}
	return true;
}

static int collect_one(struct loader *l, struct node res, const char *parent,
		       enum record_kind parent_kind)
{
	struct record rec = { .resource = res };
	const char *type, *name;

	if (!is_object_or_report(&l->r, res))
		return 0;
	if (!json_object_get(res.value, "type") && !parent && kind_of_id(res.value, &rec.kind)) {
		type = NULL;
	} else if (!get_string(&l->r, node_child(&l->r, res, "type"), &type)) {
		reader_problem(&l->r, res.path, "a resource without \"type\"; allowed: "
			       "\"Microsoft.Network/<type>\"");
		return 0;
	}
	if (type)
		rec.kind = parent ? kind_of_nested_type(type, parent_kind) : kind_of_type(type);
	if (rec.kind == KIND_OTHER)
		return 0; /* not modeled: VMs, bastions, firewalls... */
	if (!get_string(&l->r, node_child(&l->r, res, "name"), &name)) {
		reader_problem(&l->r, res.path, "a %s without \"name\"", record_kind_type(rec.kind));
		return 0;
	}
	if (name[0] == '[') {
		reader_problem(&l->r, path_key(&l->r, res.path, "name"), "\"%s\" is an ARM "
			       "expression; allowed: a plain name (run `vnet-xdp import` on ARM "
			       "templates)", reader_shown(&l->r, name));
		return 0;
	}
	if (kind_is_child(rec.kind)) {
		if (!split_child_name(l, &rec, name, parent))
			return 0;
	} else if (parent || strchr(name, '/')) {
		reader_problem(&l->r, path_key(&l->r, res.path, "name"), "\"%s\": a %s cannot be "
			       "a child resource", reader_shown(&l->r, name),
			       record_kind_type(rec.kind));
		return 0;
	} else if (!copy_name(l, path_key(&l->r, res.path, "name"), rec.name, name,
			      strlen(name))) {
		return 0;
	}
	rec.props = node_properties(&l->r, res);
	if (record_append(l, &rec))
		return -ENOMEM;
	return parent ? 0 : collect_nested(l, res, &rec);
}

int records_collect(struct loader *l, struct node resources)
{
	if (!resources.value) {
		reader_problem(&l->r, resources.path, "missing; allowed: an array of Azure "
			       "resources");
		return 0;
	}
	if (!is_array_or_report(&l->r, resources))
		return 0;
	for (size_t i = 0; i < json_array_size(resources.value); i++) {
		int rc = collect_one(l, node_element(&l->r, resources, i), NULL, KIND_OTHER);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- lookups over the records ------------------------------------------------------- */

static int compare_records_by_name(const void *ctx, size_t a, size_t b)
{
	const struct record *x = &((const struct record *)ctx)[a];
	const struct record *y = &((const struct record *)ctx)[b];
	int c;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	c = strcasecmp(x->parent, y->parent);
	return c ? c : strcasecmp(x->name, y->name);
}

static int compare_records_by_parent(const void *ctx, size_t a, size_t b)
{
	const struct record *x = &((const struct record *)ctx)[a];
	const struct record *y = &((const struct record *)ctx)[b];

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcasecmp(x->parent, y->parent);
}

/* Sorted once, so that duplicates and each parent's children are found by a search. */
static int records_index(struct loader *l)
{
	struct record *records = l->records;
	size_t *order;

	l->record_first = calloc(l->n_records + 1, sizeof(*l->record_first));
	if (!l->record_first ||
	    find_duplicates(l->n_records, compare_records_by_name, records, l->record_first))
		return -ENOMEM;
	order = sorted_positions(l->n_records, compare_records_by_parent, records);
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < l->n_records; i++)
		if (kind_is_child(records[order[i]].kind))
			order[l->n_children++] = order[i];
	l->children = order;
	return 0;
}

bool record_is_duplicate(struct loader *l, size_t index)
{
	const struct record *rec = &l->records[index], *earlier;

	if (!l->record_first || l->record_first[index] == CONFIG_NONE)
		return false;
	earlier = &l->records[l->record_first[index]];
	reader_problem(&l->r, path_key(&l->r, rec->resource.path, "name"), "duplicate %s name "
		       "\"%s\" (also at %s); allowed: unique names, compared without case",
		       record_kind_type(rec->kind), rec->name, earlier->resource.path);
	return true;
}

/* The child records of `kind` under `parent`, in their order of declaration. */
static size_t child_records(const struct loader *l, enum record_kind kind, const char *parent,
			    const size_t **out)
{
	size_t low = 0, high = l->n_children, end;

	while (low < high) {
		size_t mid = low + (high - low) / 2;
		const struct record *rec = &l->records[l->children[mid]];

		if (rec->kind < kind || (rec->kind == kind && strcasecmp(rec->parent, parent) < 0))
			low = mid + 1;
		else
			high = mid;
	}
	for (end = low; end < l->n_children; end++) {
		const struct record *rec = &l->records[l->children[end]];

		if (rec->kind != kind || strcasecmp(rec->parent, parent))
			break;
	}
	*out = l->children + low;
	return end - low;
}

int children_list(struct loader *l, const struct record *parent, const char *inline_key,
		  enum record_kind kind, struct children *out)
{
	json_t *list = json_object_get(parent->props.value, inline_key);
	size_t n_inline = json_is_array(list) ? json_array_size(list) : 0;
	const size_t *records;
	size_t n_records = child_records(l, kind, parent->name, &records);

	memset(out, 0, sizeof(*out));
	out->names = calloc(n_inline + n_records + 1, sizeof(*out->names));
	out->first = calloc(n_inline + n_records + 1, sizeof(*out->first));
	if (!out->names || !out->first) {
		children_free(out);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_inline; i++) {
		json_t *child = json_array_get(list, i);

		if (json_is_object(child) && json_is_string(json_object_get(child, "name")))
			out->names[out->n++] = json_string_value(json_object_get(child, "name"));
	}
	for (size_t i = 0; i < n_records; i++)
		out->names[out->n++] = l->records[records[i]].name;
	if (find_duplicate_names(out->names, out->n, out->first)) {
		children_free(out);
		return -ENOMEM;
	}
	return 0;
}

void children_each(struct loader *l, const struct record *parent, const char *inline_key,
		   enum record_kind kind, const struct children *list,
		   const char *missing_name, child_fn each, void *ctx)
{
	struct node inline_list = node_child(&l->r, parent->props, inline_key);
	const size_t *records;
	size_t n_records = child_records(l, kind, parent->name, &records), k = 0;

	if (inline_list.value && is_array_or_report(&l->r, inline_list))
		for (size_t i = 0; i < json_array_size(inline_list.value); i++) {
			struct node child = node_element(&l->r, inline_list, i);
			const char *name;

			if (!is_object_or_report(&l->r, child))
				continue;
			if (!get_string(&l->r, node_child(&l->r, child, "name"), &name)) {
				reader_problem(&l->r, child.path, "%s", missing_name);
				continue;
			}
			/* bounded as a child declared on its own is (copy_name) */
			if (!*name || strlen(name) >= NAME_MAX_LEN)
				reader_problem(&l->r, path_key(&l->r, child.path, "name"), "a name of "
					       "%zu characters; allowed: 1-%d", strlen(name),
					       NAME_MAX_LEN - 1);
			else
				each(l, child, name, k < list->n && list->first[k] != CONFIG_NONE, ctx);
			k++;
		}
	for (size_t i = 0; i < n_records; i++, k++)
		each(l, l->records[records[i]].resource, l->records[records[i]].name,
		     k < list->n && list->first[k] != CONFIG_NONE, ctx);
}

void children_free(struct children *list)
{
	free(list->names);
	free(list->first);
	memset(list, 0, sizeof(*list));
}

/* ---- prefix overlaps -------------------------------------------------------------------- */

static int compare_prefix_start(const void *ctx, size_t a, size_t b)
{
	const struct ip_prefix *x = &((const struct owned_prefix *)ctx)[a].prefix;
	const struct ip_prefix *y = &((const struct owned_prefix *)ctx)[b].prefix;
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	c = memcmp(x->addr, y->addr, sizeof(x->addr));
	if (c)
		return c;
	return (x->len > y->len) - (x->len < y->len); /* a container before what it holds */
}

static bool declared_before(const struct owned_prefix *a, const struct owned_prefix *b)
{
	return a->owner != b->owner ? a->owner < b->owner : a->index < b->index;
}

static int compare_overlaps(const void *a, const void *b, void *ctx)
{
	const struct owned_prefix *items = ctx;
	const struct prefix_overlap *x = a, *y = b;

	if (x->later != y->later)
		return declared_before(&items[x->later], &items[y->later]) ? -1 : 1;
	if (x->earlier != y->earlier)
		return declared_before(&items[x->earlier], &items[y->earlier]) ? -1 : 1;
	return 0;
}

static bool same_prefix(const struct ip_prefix *a, const struct ip_prefix *b)
{
	return a->family == b->family && a->len == b->len && !memcmp(a->addr, b->addr, 16);
}

/* Sorted by start address, a container before what it holds, two prefixes overlap only
 * when one contains the other, and what contains a prefix sits on a stack of open
 * containers when the sweep reaches it. Nesting is at most 129 deep, and equal prefixes
 * of one owner are kept once, so a walk down the stack is short. */
int prefix_overlaps(const struct owned_prefix *items, size_t count,
		    struct prefix_overlap **out, size_t *n_out)
{
	size_t *order = sorted_positions(count, compare_prefix_start, items);
	size_t *stack = malloc((count + 1) * sizeof(*stack)), depth = 0, n = 0;
	struct prefix_overlap *found = malloc((count + 1) * sizeof(*found));

	*out = NULL;
	*n_out = 0;
	if (!order || !stack || !found) {
		free(order);
		free(stack);
		free(found);
		return -ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		const struct owned_prefix *item = &items[order[i]];

		while (depth && !ip_prefix_contains(&items[stack[depth - 1]].prefix, &item->prefix))
			depth--;
		for (size_t d = depth; d > 0; d--) {
			const struct owned_prefix *outer = &items[stack[d - 1]];

			if (outer->owner == item->owner)
				continue;
			found[n++] = declared_before(outer, item) ?
				(struct prefix_overlap){ order[i], stack[d - 1] } :
				(struct prefix_overlap){ stack[d - 1], order[i] };
			break;
		}
		if (!depth || !same_prefix(&items[stack[depth - 1]].prefix, &item->prefix) ||
		    items[stack[depth - 1]].owner != item->owner)
			stack[depth++] = order[i];
	}
	qsort_r(found, n, sizeof(*found), compare_overlaps, (void *)items);
	free(order);
	free(stack);
	*out = found;
	*n_out = n;
	return 0;
}

/* ---- references ---------------------------------------------------------------------- */

static bool reference_type_matches(const struct reference *ref, enum record_kind kind)
{
	return !ref->type[0] || !strcasecmp(ref->type, record_kind_type(kind));
}

int resolve_reference(struct loader *l, struct node n, enum record_kind kind,
		      const void *array, size_t count, size_t size)
{
	struct reference ref;
	int index;

	if (!get_reference(&l->r, n, &ref))
		return CONFIG_NONE;
	if (!reference_type_matches(&ref, kind) || ref.n_names != 1) {
		reader_problem(&l->r, n.path, "refers to a %s; allowed: a reference to a %s",
			       ref.type[0] ? ref.type : "child resource", record_kind_type(kind));
		return CONFIG_NONE;
	}
	index = loader_find_named(l, array, count, size, ref.names[0]);
	if (index == CONFIG_NONE)
		reader_problem(&l->r, n.path, "unknown %s \"%s\"; allowed: one declared in "
			       "resources", record_kind_type(kind), ref.names[0]);
	return index;
}

bool resolve_subnet_reference(struct loader *l, struct node n, int *vnet, int *subnet)
{
	struct config *cfg = l->cfg;
	struct reference ref;

	*vnet = *subnet = CONFIG_NONE;
	if (!get_reference(&l->r, n, &ref))
		return false;
	if (!reference_type_matches(&ref, KIND_SUBNET) || ref.n_names != 2) {
		reader_problem(&l->r, n.path, "refers to a %s; allowed: a reference to a subnet "
			       "(\"vnet/subnet\", resourceId or id)", ref.type[0] ? ref.type :
			       "resource without its virtual network");
		return false;
	}
	*vnet = loader_find_named(l, cfg->vnets, cfg->n_vnets, sizeof(*cfg->vnets), ref.names[0]);
	if (*vnet == CONFIG_NONE) {
		reader_problem(&l->r, n.path, "unknown virtual network \"%s\"; allowed: one "
			       "declared in resources", ref.names[0]);
		return false;
	}
	*subnet = loader_find_subnet(l, *vnet, ref.names[1]);
	if (*subnet == CONFIG_NONE) {
		reader_problem(&l->r, n.path, "virtual network \"%s\" has no subnet \"%s\"; "
			       "allowed: a subnet declared in \"%s\"", ref.names[0], ref.names[1],
			       ref.names[0]);
		*vnet = CONFIG_NONE;
		return false;
	}
	return true;
}

/* ---- load ---------------------------------------------------------------------------- */

static void check_top_level_keys(struct loader *l, struct node root)
{
	const char *key;
	json_t *value;

	json_object_foreach(root.value, key, value)
		if (strcmp(key, "gateway") && strcmp(key, "resources") && key[0] != '$' &&
		    strcmp(key, "contentVersion") && strcmp(key, "comments"))
			reader_problem(&l->r, path_key(&l->r, "", key), "unknown key; allowed: "
				       "gateway, resources");
}

static void build_model(struct loader *l, json_t *doc)
{
	struct node root = { doc, "" };

	if (!is_object_or_report(&l->r, root))
		return;
	check_top_level_keys(l, root);
	if (records_collect(l, node_child(&l->r, root, "resources")) < 0 || records_index(l)) {
		reader_problem(&l->r, "resources", "out of memory");
		return;
	}
	build_application_security_groups(l);
	load_service_tags(l, node_child(&l->r, root, "gateway"));
	build_security_groups(l);
	build_route_tables(l);
	build_public_ips(l);
	build_nat_gateways(l);
	build_virtual_networks(l);
	build_vnet_gateways(l);
	build_local_network_gateways(l);
	build_express_route_circuits(l);
	build_connections(l);
	check_vpn_client_pools(l);
	build_network_interfaces(l);
	check_application_security_group_rules(l);
	build_peerings(l);
	build_gateway_binding(l, node_child(&l->r, root, "gateway"));
	if (!l->r.problems)
		report_unenforced(l);
}

static void loader_release(struct loader *l)
{
	for (size_t i = 0; i < l->n_public_ips; i++)
		free(l->public_ips[i].name);
	free(l->public_ips);
	json_decref(l->service_tags);
	free(l->asg_rules);
	free(l->records);
	free(l->record_first);
	free(l->children);
	name_indexes_free(l);
	reader_release(&l->r);
	json_positions_free(l->r.positions);
}

int config_load_string(const char *text, const char *name, FILE *errors, struct config **out)
{
	struct loader l = { .r = { .file = name ? name : "config", .errors = errors } };
	json_error_t jerr;
	json_t *doc;
	int problems;

	*out = NULL;
	doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		if (errors)
			fprintf(errors, "%s:%d:%d: JSON syntax: %s; allowed: one JSON object "
				"(RFC 8259, no duplicate keys)\n", l.r.file, jerr.line, jerr.column,
				json_syntax_reason(&jerr));
		return 1;
	}
	l.r.positions = json_positions_scan(text);
	l.cfg = calloc(1, sizeof(*l.cfg));
	if (!l.r.positions || !l.cfg) {
		json_decref(doc);
		free(l.cfg);
		loader_release(&l);
		return -ENOMEM;
	}
	l.cfg->path = copy_string(name);
	build_model(&l, doc);
	reader_finish(&l.r);
	problems = l.r.problems;
	json_decref(doc);
	loader_release(&l);
	if (problems) {
		config_free(l.cfg);
		return problems;
	}
	*out = l.cfg;
	return 0;
}

/* Opens the file itself (a symbolic link only when it is one, remembered), so that what
 * fstat says of the descriptor is what is read: no stat-then-open race. */
static int open_config(const char *path, struct config_source *source)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	source->via_symlink = fd < 0 && errno == ELOOP;
	if (source->via_symlink)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		int err = -errno;

		close(fd);
		return err;
	}
	source->regular_file = S_ISREG(st.st_mode);
	source->owner = st.st_uid;
	source->mode = st.st_mode & 07777;
	return fd;
}

int config_load(const char *path, FILE *errors, struct config **out)
{
	struct config_source source;
	int fd = open_config(path, &source);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	char *text = NULL;
	size_t size = 0, used = 0;
	int rc;

	*out = NULL;
	if (!f) {
		rc = fd < 0 ? fd : -errno;
		if (fd >= 0)
			close(fd);
		if (errors)
			fprintf(errors, "%s: cannot open: %s\n", path, strerror(-rc));
		return rc;
	}
	for (;;) {
		size_t got;

		if (used + 4096 + 1 > size) {
			char *bigger = realloc(text, size ? size * 2 : 65536);

			if (!bigger) {
				free(text);
				fclose(f);
				return -ENOMEM;
			}
			text = bigger;
			size = size ? size * 2 : 65536;
		}
		got = fread(text + used, 1, size - used - 1, f);
		used += got;
		if (!got)
			break;
	}
	rc = ferror(f) ? -EIO : 0;
	fclose(f);
	if (rc) {
		if (errors)
			fprintf(errors, "%s: cannot read\n", path);
		free(text);
		return rc;
	}
	text[used] = '\0';
	if (strlen(text) != used) {
		if (errors)
			fprintf(errors, "%s:1:1: JSON syntax: a NUL byte in the file; allowed: UTF-8 "
				"JSON text\n", path);
		free(text);
		return 1;
	}
	rc = config_load_string(text, path, errors, out);
	explicit_bzero(text, used); /* it may hold a sharedKey */
	free(text);
	if (!rc)
		(*out)->source = source;
	return rc;
}

/* ---- free ----------------------------------------------------------------------------- */

static void free_rule(struct config_security_rule *rule)
{
	free(rule->name);
	free(rule->sources);
	free(rule->destinations);
	free(rule->source_ports);
	free(rule->destination_ports);
}

static void free_address_groups(struct config_address_group *groups, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(groups[i].name);
		free(groups[i].prefixes);
	}
	free(groups);
}

static void free_vnet(struct config_vnet *vnet)
{
	for (size_t s = 0; s < vnet->n_subnets; s++) {
		free(vnet->subnets[s].name);
		free(vnet->subnets[s].prefixes);
	}
	for (size_t p = 0; p < vnet->n_peerings; p++) {
		free(vnet->peerings[p].name);
		free(vnet->peerings[p].remote_name);
	}
	free(vnet->name);
	free(vnet->prefixes);
	free(vnet->subnets);
	free(vnet->peerings);
}

static void free_connection(struct config_connection *c)
{
	for (size_t p = 0; p < c->n_ipsec_policies; p++) {
		struct config_ipsec_policy *pol = &c->ipsec_policies[p];

		free(pol->ipsec_encryption);
		free(pol->ipsec_integrity);
		free(pol->ike_encryption);
		free(pol->ike_integrity);
		free(pol->dh_group);
		free(pol->pfs_group);
	}
	if (c->shared_key) /* do not leave the key behind in freed memory */
		explicit_bzero(c->shared_key, strlen(c->shared_key));
	free(c->shared_key);
	free(c->name);
	free(c->ipsec_policies);
	for (size_t i = 0; i < c->n_traffic_selectors; i++) {
		free(c->traffic_selectors[i].local);
		free(c->traffic_selectors[i].remote);
	}
	free(c->traffic_selectors);
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_vnets; i++)
		free_vnet(&cfg->vnets[i]);
	for (size_t i = 0; i < cfg->n_nsgs; i++) {
		for (size_t r = 0; r < cfg->nsgs[i].n_rules; r++)
			free_rule(&cfg->nsgs[i].rules[r]);
		free(cfg->nsgs[i].name);
		free(cfg->nsgs[i].rules);
	}
	free_address_groups(cfg->application_security_groups, cfg->n_application_security_groups);
	free_address_groups(cfg->service_tags, cfg->n_service_tags);
	free(cfg->service_tags_file);
	for (size_t i = 0; i < cfg->n_route_tables; i++) {
		for (size_t r = 0; r < cfg->route_tables[i].n_routes; r++)
			free(cfg->route_tables[i].routes[r].name);
		free(cfg->route_tables[i].name);
		free(cfg->route_tables[i].routes);
	}
	for (size_t i = 0; i < cfg->n_nat_gateways; i++) {
		free(cfg->nat_gateways[i].name);
		free(cfg->nat_gateways[i].public_ips);
	}
	for (size_t i = 0; i < cfg->n_nics; i++) {
		free(cfg->nics[i].name);
		free(cfg->nics[i].addresses);
		free(cfg->nics[i].application_security_groups);
	}
	for (size_t i = 0; i < cfg->n_local_network_gateways; i++) {
		free(cfg->local_network_gateways[i].name);
		free(cfg->local_network_gateways[i].prefixes);
	}
	for (size_t i = 0; i < cfg->n_vnet_gateways; i++) {
		free(cfg->vnet_gateways[i].name);
		free(cfg->vnet_gateways[i].public_ips);
		config_vpn_client_free(cfg->vnet_gateways[i].vpn_client);
	}
	for (size_t i = 0; i < cfg->n_connections; i++)
		free_connection(&cfg->connections[i]);
	for (size_t i = 0; i < cfg->n_ifaces; i++)
		free(cfg->ifaces[i].name);
	for (size_t i = 0; i < cfg->n_gateway_vnets; i++)
		free(cfg->gateway_vnets[i].vips);
	free(cfg->vnets);
	free(cfg->nsgs);
	free(cfg->route_tables);
	free(cfg->nat_gateways);
	free(cfg->nics);
	free(cfg->local_network_gateways);
	free(cfg->vnet_gateways);
	free(cfg->connections);
	for (size_t i = 0; i < cfg->n_express_route_circuits; i++)
		free(cfg->express_route_circuits[i].name);
	free(cfg->express_route_circuits);
	for (size_t i = 0; i < cfg->n_express_route_bindings; i++)
		free(cfg->express_route_bindings[i].interface);
	free(cfg->express_route_bindings);
	free(cfg->ifaces);
	free(cfg->gateway_vnets);
	free(cfg->gateway_name);
	free(cfg->metrics_listen);
	free(cfg->flow_logs.directory);
	free(cfg->path);
	free(cfg);
}

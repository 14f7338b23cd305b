/* The address-space side of the config: virtual networks, subnets, peerings, route
 * tables, public IPs, NAT gateways and network interfaces. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/internal.h"

static size_t count_kind(const struct loader *l, enum record_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n_records; i++)
		n += l->records[i].kind == kind;
	return n;
}

/* Children whose parent is not among the resources. */
static void report_orphans(struct loader *l, enum record_kind child, enum record_kind parent,
			   const void *array, size_t count, size_t size)
{
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];

		if (rec->kind == child &&
		    loader_find_named(l, array, count, size, rec->parent) == CONFIG_NONE)
			reader_problem(&l->r, path_key(&l->r, rec->resource.path, "name"),
				       "%s \"%s\" belongs to unknown %s \"%s\"; allowed: a parent "
				       "declared in resources", record_kind_type(child), rec->name,
				       record_kind_type(parent), rec->parent);
	}
}

#define MISSING_CHILD_NAME "missing \"name\"; allowed: a name unique in its parent"

/* ---- route tables ------------------------------------------------------------------- */

static const char *const next_hop_names[] = {
	[NEXT_HOP_VIRTUAL_NETWORK_GATEWAY] = "VirtualNetworkGateway",
	[NEXT_HOP_VNET_LOCAL] = "VnetLocal",
	[NEXT_HOP_INTERNET] = "Internet",
	[NEXT_HOP_VIRTUAL_APPLIANCE] = "VirtualAppliance",
	[NEXT_HOP_NONE] = "None",
};

struct route_ctx {
	struct config_route_table *table;
	const char **prefix_paths; /* where each route's addressPrefix is */
};

static void add_route(struct loader *l, struct node res, const char *name, bool duplicate,
		      void *ctx)
{
	struct route_ctx *rc = ctx;
	struct config_route_table *table = rc->table;
	struct node props = node_properties(&l->r, res);
	struct node hop_ip = node_child(&l->r, props, "nextHopIpAddress");
	struct config_route route = { 0 };
	int hop;

	if (duplicate) {
		reader_problem(&l->r, path_key(&l->r, res.path, "name"), "duplicate route name "
			       "\"%s\" in route table \"%s\"; allowed: unique names, compared "
			       "without case", name, table->name);
		return;
	}
	if (!read_prefix(l, node_child(&l->r, props, "addressPrefix"), &route.prefix)) {
		if (!json_object_get(props.value, "addressPrefix"))
			reader_problem(&l->r, props.path, "route \"%s\" has no addressPrefix", name);
		return;
	}
	if (!read_enum(l, node_child(&l->r, props, "nextHopType"), next_hop_names,
		       sizeof(next_hop_names) / sizeof(next_hop_names[0]), &hop)) {
		if (!json_object_get(props.value, "nextHopType"))
			reader_problem(&l->r, props.path, "route \"%s\" has no nextHopType; allowed: "
				       "VirtualNetworkGateway, VnetLocal, Internet, VirtualAppliance, "
				       "None", name);
		return;
	}
	route.next_hop_type = (enum route_next_hop)hop;
	if (hop == NEXT_HOP_VIRTUAL_APPLIANCE) {
		if (!json_string_value(hop_ip.value) || !*json_string_value(hop_ip.value)) {
			reader_problem(&l->r, hop_ip.path, "next hop VirtualAppliance needs "
				       "nextHopIpAddress; allowed: the appliance's IP address");
			return;
		}
		if (!read_address(l, hop_ip, &route.next_hop_ip))
			return;
	} else if (json_string_value(hop_ip.value) && *json_string_value(hop_ip.value)) {
		reader_problem(&l->r, hop_ip.path, "nextHopIpAddress is allowed only with next hop "
			       "VirtualAppliance, not %s", next_hop_names[hop]);
		return;
	}
	route.name = copy_string(name);
	rc->prefix_paths[table->n_routes] = path_key(&l->r, props.path, "addressPrefix");
	table->routes[table->n_routes++] = route;
}

static int compare_route_prefixes(const void *ctx, size_t a, size_t b)
{
	const struct config_route *routes = ctx;

	return memcmp(&routes[a].prefix, &routes[b].prefix, sizeof(routes[a].prefix));
}

static void check_route_prefixes(struct loader *l, const struct route_ctx *rc)
{
	const struct config_route_table *table = rc->table;
	int *first = calloc(table->n_routes + 1, sizeof(*first));
	char text[64];

	if (!first || find_duplicates(table->n_routes, compare_route_prefixes, table->routes,
				      first)) {
		reader_problem(&l->r, rc->prefix_paths[0], "out of memory");
		free(first);
		return;
	}
	for (size_t i = 0; i < table->n_routes; i++)
		if (first[i] != CONFIG_NONE)
			reader_problem(&l->r, rc->prefix_paths[i], "%s is already the prefix of "
				       "route \"%s\"; allowed: one route per prefix",
				       prefix_text(&table->routes[i].prefix, text, sizeof(text)),
				       table->routes[first[i]].name);
	free(first);
}

void build_route_tables(struct loader *l)
{
	struct config *cfg = l->cfg;

	cfg->route_tables = calloc(count_kind(l, KIND_ROUTE_TABLE) + 1, sizeof(*cfg->route_tables));
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct config_route_table *table;
		struct children children;
		struct route_ctx rc;

		if (rec->kind != KIND_ROUTE_TABLE || record_is_duplicate(l, i))
			continue;
		table = &cfg->route_tables[cfg->n_route_tables++];
		table->name = copy_string(rec->name);
		get_bool(&l->r, node_child(&l->r, rec->props, "disableBgpRoutePropagation"),
			 &table->disable_bgp_route_propagation);
		if (children_list(l, rec, "routes", KIND_ROUTE, &children)) {
			reader_problem(&l->r, rec->resource.path, "out of memory");
			continue;
		}
		table->routes = calloc(children.n + 1, sizeof(*table->routes));
		rc = (struct route_ctx){ table, calloc(children.n + 1, sizeof(char *)) };
		if (table->routes && rc.prefix_paths) {
			children_each(l, rec, "routes", KIND_ROUTE, &children, MISSING_CHILD_NAME,
				      add_route, &rc);
			check_route_prefixes(l, &rc);
		} else {
			reader_problem(&l->r, rec->resource.path, "out of memory");
		}
		free(rc.prefix_paths);
		children_free(&children);
	}
	report_orphans(l, KIND_ROUTE, KIND_ROUTE_TABLE, cfg->route_tables, cfg->n_route_tables,
		       sizeof(*cfg->route_tables));
}

/* ---- public IPs and NAT gateways ---------------------------------------------------- */

void build_public_ips(struct loader *l)
{
	l->public_ips = calloc(count_kind(l, KIND_PUBLIC_IP) + 1, sizeof(*l->public_ips));
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct public_ip *ip;
		struct node address;

		if (rec->kind != KIND_PUBLIC_IP || record_is_duplicate(l, i))
			continue;
		ip = &l->public_ips[l->n_public_ips++];
		ip->name = copy_string(rec->name);
		address = node_child(&l->r, rec->props, "ipAddress");
		if (address.value) /* a dynamic address has none until Azure assigns it */
			read_address(l, address, &ip->address);
	}
}

/* The addresses of a list of public IP references, where they are known. */
static size_t resolve_public_ips(struct loader *l, struct node list, struct ip_address **out)
{
	size_t n = 0;

	*out = calloc(json_array_size(list.value) + 1, sizeof(**out));
	if (!*out || !list.value || !is_array_or_report(&l->r, list))
		return 0;
	for (size_t i = 0; i < json_array_size(list.value); i++) {
		int ip = resolve_reference(l, node_element(&l->r, list, i), KIND_PUBLIC_IP,
					   l->public_ips, l->n_public_ips, sizeof(*l->public_ips));

		if (ip != CONFIG_NONE && l->public_ips[ip].address.family)
			(*out)[n++] = l->public_ips[ip].address;
	}
	return n;
}

void build_nat_gateways(struct loader *l)
{
	struct config *cfg = l->cfg;

	cfg->nat_gateways = calloc(count_kind(l, KIND_NAT_GATEWAY) + 1, sizeof(*cfg->nat_gateways));
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct config_nat_gateway *nat;
		struct node ips;
		long long minutes = 4;

		if (rec->kind != KIND_NAT_GATEWAY || record_is_duplicate(l, i))
			continue;
		nat = &cfg->nat_gateways[cfg->n_nat_gateways++];
		nat->name = copy_string(rec->name);
		/* ARM writes publicIpAddresses, some REST bodies publicIPAddresses */
		ips = node_child(&l->r, rec->props, "publicIpAddresses");
		if (!ips.value)
			ips = node_child(&l->r, rec->props, "publicIPAddresses");
		nat->n_public_ips = resolve_public_ips(l, ips, &nat->public_ips);
		get_int(&l->r, node_child(&l->r, rec->props, "idleTimeoutInMinutes"), 4, 120,
			&minutes);
		nat->idle_timeout_minutes = (int)minutes;
	}
}

/* ---- virtual networks and subnets ---------------------------------------------------- */

struct subnet_ctx {
	struct config_vnet *vnet;
	const char *vnet_path;
	const char **paths; /* where each subnet was declared, for overlap messages */
};

static int optional_reference(struct loader *l, struct node props, const char *key,
			      enum record_kind kind, const void *array, size_t count, size_t size)
{
	struct node n = node_child(&l->r, props, key);

	if (!n.value || json_is_null(n.value))
		return CONFIG_NONE;
	return resolve_reference(l, n, kind, array, count, size);
}

static void add_subnet(struct loader *l, struct node res, const char *name, bool duplicate,
		       void *ctx)
{
	struct subnet_ctx *sc = ctx;
	struct config *cfg = l->cfg;
	struct config_vnet *vnet = sc->vnet;
	struct node props = node_properties(&l->r, res);
	struct config_subnet subnet = { 0 };

	if (duplicate) {
		reader_problem(&l->r, path_key(&l->r, res.path, "name"), "duplicate subnet name "
			       "\"%s\" in virtual network \"%s\"; allowed: unique names, "
			       "compared without case", name, vnet->name);
		return;
	}
	subnet.n_prefixes = read_prefix_list(l, node_child(&l->r, props, "addressPrefix"),
					     node_child(&l->r, props, "addressPrefixes"),
					     &subnet.prefixes);
	if (!subnet.n_prefixes) {
		if (!json_object_get(props.value, "addressPrefix") &&
		    !json_object_get(props.value, "addressPrefixes"))
			reader_problem(&l->r, props.path, "subnet \"%s\" has no addressPrefix; "
				       "allowed: a CIDR inside the virtual network's address space",
				       name);
		free(subnet.prefixes);
		return;
	}
	subnet.network_security_group = optional_reference(l, props, "networkSecurityGroup",
		KIND_NSG, cfg->nsgs, cfg->n_nsgs, sizeof(*cfg->nsgs));
	subnet.route_table = optional_reference(l, props, "routeTable", KIND_ROUTE_TABLE,
		cfg->route_tables, cfg->n_route_tables, sizeof(*cfg->route_tables));
	subnet.nat_gateway = optional_reference(l, props, "natGateway", KIND_NAT_GATEWAY,
		cfg->nat_gateways, cfg->n_nat_gateways, sizeof(*cfg->nat_gateways));
	subnet.name = copy_string(name);
	sc->paths[vnet->n_subnets] = props.path;
	vnet->subnets[vnet->n_subnets++] = subnet;
}

static bool inside_address_space(const struct config_vnet *vnet, const struct ip_prefix *p)
{
	for (size_t i = 0; i < vnet->n_prefixes; i++)
		if (ip_prefix_contains(&vnet->prefixes[i], p))
			return true;
	return false;
}

static void address_space_text(const struct config_vnet *vnet, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; i < vnet->n_prefixes; i++) {
		char text[64];

		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? ", " : "",
			 prefix_text(&vnet->prefixes[i], text, sizeof(text)));
	}
}

/* Every prefix of every subnet with its owner, for prefix_overlaps. */
static struct owned_prefix *subnet_prefixes(const struct config_vnet *vnet, size_t *count)
{
	struct owned_prefix *items;
	size_t n = 0;

	for (size_t s = 0; s < vnet->n_subnets; s++)
		n += vnet->subnets[s].n_prefixes;
	items = calloc(n + 1, sizeof(*items));
	*count = 0;
	if (!items)
		return NULL;
	for (size_t s = 0; s < vnet->n_subnets; s++)
		for (size_t p = 0; p < vnet->subnets[s].n_prefixes; p++)
			items[(*count)++] = (struct owned_prefix){ vnet->subnets[s].prefixes[p], s, p };
	return items;
}

static void check_subnets(struct loader *l, const struct subnet_ctx *sc)
{
	const struct config_vnet *vnet = sc->vnet;
	char space[512], a[64], b[64];
	struct prefix_overlap *overlaps = NULL;
	struct owned_prefix *items;
	size_t n_items, n_overlaps = 0, o = 0;

	address_space_text(vnet, space, sizeof(space));
	items = subnet_prefixes(vnet, &n_items);
	if (!items || prefix_overlaps(items, n_items, &overlaps, &n_overlaps)) {
		reader_problem(&l->r, sc->vnet_path, "out of memory");
		free(items);
		return;
	}
	/* In the order of declaration: each prefix outside the space, then its overlaps. */
	for (size_t i = 0; i < n_items; i++) {
		const struct owned_prefix *item = &items[i];
		const struct config_subnet *subnet = &vnet->subnets[item->owner];

		if (!inside_address_space(vnet, &item->prefix))
			reader_problem(&l->r, sc->paths[item->owner], "subnet \"%s\" prefix %s is "
				       "outside the address space of \"%s\"; allowed: inside %s",
				       subnet->name, prefix_text(&item->prefix, a, sizeof(a)),
				       vnet->name, space);
		for (; o < n_overlaps && overlaps[o].later == i; o++) {
			const struct owned_prefix *earlier = &items[overlaps[o].earlier];

			reader_problem(&l->r, sc->paths[item->owner], "subnet \"%s\" prefix %s "
				       "overlaps subnet \"%s\" prefix %s; allowed: subnets that do "
				       "not overlap", subnet->name,
				       prefix_text(&item->prefix, a, sizeof(a)),
				       vnet->subnets[earlier->owner].name,
				       prefix_text(&earlier->prefix, b, sizeof(b)));
		}
	}
	free(overlaps);
	free(items);
}

static void read_address_space(struct loader *l, const struct record *rec,
			       struct config_vnet *vnet)
{
	struct node space = node_child(&l->r, rec->props, "addressSpace");
	struct node prefixes = node_child(&l->r, space, "addressPrefixes");
	struct prefix_overlap *overlaps = NULL;
	struct owned_prefix *items;
	size_t n_overlaps = 0;
	char a[64], b[64];

	if (!space.value || !prefixes.value) {
		reader_problem(&l->r, space.value ? space.path : rec->props.path, "virtual network "
			       "\"%s\" has no addressSpace.addressPrefixes; allowed: a list of "
			       "CIDR prefixes", vnet->name);
		return;
	}
	if (!is_object_or_report(&l->r, space))
		return;
	vnet->n_prefixes = read_prefix_list(l, (struct node){ NULL, "" }, prefixes,
					    &vnet->prefixes);
	if (!vnet->n_prefixes && json_is_array(prefixes.value) && !json_array_size(prefixes.value))
		reader_problem(&l->r, prefixes.path, "empty; allowed: at least one CIDR prefix");
	items = calloc(vnet->n_prefixes + 1, sizeof(*items));
	for (size_t i = 0; items && i < vnet->n_prefixes; i++)
		items[i] = (struct owned_prefix){ vnet->prefixes[i], i, 0 };
	if (!items || prefix_overlaps(items, vnet->n_prefixes, &overlaps, &n_overlaps)) {
		reader_problem(&l->r, prefixes.path, "out of memory");
		free(items);
		return;
	}
	for (size_t o = 0; o < n_overlaps; o++)
		reader_problem(&l->r, prefixes.path, "%s overlaps %s in the same address space; "
			       "allowed: prefixes that do not overlap",
			       prefix_text(&items[overlaps[o].later].prefix, a, sizeof(a)),
			       prefix_text(&items[overlaps[o].earlier].prefix, b, sizeof(b)));
	free(overlaps);
	free(items);
}

void build_virtual_networks(struct loader *l)
{
	struct config *cfg = l->cfg;

	cfg->vnets = calloc(count_kind(l, KIND_VNET) + 1, sizeof(*cfg->vnets));
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct children children;
		struct subnet_ctx sc;
		struct config_vnet *vnet;

		if (rec->kind != KIND_VNET || record_is_duplicate(l, i))
			continue;
		vnet = &cfg->vnets[cfg->n_vnets++];
		vnet->name = copy_string(rec->name);
		vnet->virtual_network_gateway = CONFIG_NONE;
		read_address_space(l, rec, vnet);
		if (children_list(l, rec, "subnets", KIND_SUBNET, &children)) {
			reader_problem(&l->r, rec->resource.path, "out of memory");
			continue;
		}
		vnet->subnets = calloc(children.n + 1, sizeof(*vnet->subnets));
		sc = (struct subnet_ctx){ vnet, rec->resource.path,
					  calloc(children.n + 1, sizeof(char *)) };
		if (vnet->subnets && sc.paths) {
			children_each(l, rec, "subnets", KIND_SUBNET, &children, MISSING_CHILD_NAME,
				      add_subnet, &sc);
			check_subnets(l, &sc);
		} else {
			reader_problem(&l->r, rec->resource.path, "out of memory");
		}
		free(sc.paths);
		children_free(&children);
	}
	report_orphans(l, KIND_SUBNET, KIND_VNET, cfg->vnets, cfg->n_vnets, sizeof(*cfg->vnets));
}

/* ---- network interfaces --------------------------------------------------------------- */

static void read_ip_configuration(struct loader *l, struct config_nic *nic, struct node ipc,
				  size_t index)
{
	struct config *cfg = l->cfg;
	struct node props = node_properties(&l->r, ipc);
	struct node subnet = node_child(&l->r, props, "subnet");
	struct node address = node_child(&l->r, props, "privateIPAddress");
	struct node groups = node_child(&l->r, props, "applicationSecurityGroups");
	int vnet = CONFIG_NONE, sub = CONFIG_NONE;

	if (subnet.value && !json_is_null(subnet.value))
		resolve_subnet_reference(l, subnet, &vnet, &sub);
	if (index == 0) {
		nic->vnet = vnet;
		nic->subnet = sub;
	}
	if (!address.value || json_is_null(address.value) ||
	    !read_address(l, address, &nic->addresses[nic->n_addresses])) {
		read_nic_application_security_groups(l, nic, groups, vnet, NULL);
		return;
	}
	if (sub != CONFIG_NONE) {
		const struct config_subnet *s = &cfg->vnets[vnet].subnets[sub];
		struct ip_prefix host = { .family = nic->addresses[nic->n_addresses].family };
		bool inside = false;

		host.len = host.family == AF_INET ? 32 : 128;
		memcpy(host.addr, nic->addresses[nic->n_addresses].addr, 16);
		for (size_t p = 0; p < s->n_prefixes; p++)
			inside |= ip_prefix_contains(&s->prefixes[p], &host);
		if (!inside) {
			reader_problem(&l->r, address.path, "%s is outside subnet \"%s\"; allowed: "
				       "an address inside the subnet's prefixes",
				       reader_shown(&l->r, json_string_value(address.value)), s->name);
			return;
		}
	}
	read_nic_application_security_groups(l, nic, groups, vnet,
					     &nic->addresses[nic->n_addresses]);
	nic->n_addresses++;
}

/* Azure writes a NIC's MAC as six dash-separated hex pairs ("00-0D-3A-12-34-56"); the
 * colon form Linux prints is taken too. */
static bool parse_mac(const char *text, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		unsigned int byte;
		char sep = text[2];

		if (!isxdigit((unsigned char)text[0]) || !isxdigit((unsigned char)text[1]) ||
		    sscanf(text, "%2x", &byte) != 1)
			return false;
		mac[i] = (uint8_t)byte;
		if (i < 5 && sep != '-' && sep != ':')
			return false;
		if (i == 5 && sep != '\0')
			return false;
		text += 3;
	}
	return true;
}

/* A NIC's macAddress: a unicast MAC, the key its frames are known by (per-NIC
 * anti-spoofing). */
static void read_mac_address(struct loader *l, struct config_nic *nic, struct node props,
			     const char **path)
{
	struct node n = node_child(&l->r, props, "macAddress");
	const char *text;

	if (!n.value || json_is_null(n.value))
		return;
	*path = n.path;
	text = json_string_value(n.value);
	if (!text || !*text)
		return; /* Azure leaves it empty until the NIC is attached to a VM */
	if (!parse_mac(text, nic->mac) || (nic->mac[0] & 1) ||
	    !memcmp(nic->mac, "\0\0\0\0\0\0", 6)) {
		reader_problem(&l->r, n.path, "macAddress %s is not a unicast MAC address; allowed: "
			       "six hex pairs separated by '-' or ':', e.g. 00-0D-3A-12-34-56",
			       reader_shown(&l->r, text));
		return;
	}
	nic->has_mac = true;
}

/* NICs without a MAC order before any with one and never equal each other. */
static int compare_nic_macs(const void *ctx, size_t a, size_t b)
{
	const struct config_nic *nics = ctx;

	if (!nics[a].has_mac || !nics[b].has_mac)
		return nics[a].has_mac != nics[b].has_mac ? nics[a].has_mac - nics[b].has_mac :
							    (a > b) - (a < b);
	return memcmp(nics[a].mac, nics[b].mac, 6);
}

/* Two NICs with one MAC would make a frame's NIC ambiguous. */
static void check_nic_macs(struct loader *l, const char *const *paths)
{
	struct config *cfg = l->cfg;
	int *first = calloc(cfg->n_nics + 1, sizeof(*first));

	if (!first || find_duplicates(cfg->n_nics, compare_nic_macs, cfg->nics, first)) {
		reader_problem(&l->r, "resources", "out of memory");
		free(first);
		return;
	}
	for (size_t i = 0; i < cfg->n_nics; i++)
		if (first[i] != CONFIG_NONE)
			reader_problem(&l->r, paths[i], "network interface \"%s\" has the "
				       "macAddress of network interface \"%s\"; allowed: one NIC "
				       "per MAC address", cfg->nics[i].name, cfg->nics[first[i]].name);
	free(first);
}

void build_network_interfaces(struct loader *l)
{
	struct config *cfg = l->cfg;
	const char **mac_paths = calloc(count_kind(l, KIND_NIC) + 1, sizeof(*mac_paths));

	cfg->nics = calloc(count_kind(l, KIND_NIC) + 1, sizeof(*cfg->nics));
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct node ipcs = node_child(&l->r, rec->props, "ipConfigurations");
		struct config_nic *nic;

		if (rec->kind != KIND_NIC || record_is_duplicate(l, i))
			continue;
		nic = &cfg->nics[cfg->n_nics++];
		nic->name = copy_string(rec->name);
		nic->vnet = nic->subnet = CONFIG_NONE;
		nic->network_security_group = optional_reference(l, rec->props,
			"networkSecurityGroup", KIND_NSG, cfg->nsgs, cfg->n_nsgs, sizeof(*cfg->nsgs));
		get_bool(&l->r, node_child(&l->r, rec->props, "enableIPForwarding"),
			 &nic->enable_ip_forwarding);
		if (mac_paths)
			read_mac_address(l, nic, rec->props, &mac_paths[cfg->n_nics - 1]);
		nic->addresses = calloc(json_array_size(ipcs.value) + 1, sizeof(*nic->addresses));
		if (!ipcs.value || !is_array_or_report(&l->r, ipcs) || !nic->addresses)
			continue;
		for (size_t c = 0; c < json_array_size(ipcs.value); c++)
			read_ip_configuration(l, nic, node_element(&l->r, ipcs, c), c);
		/* An NSG matches a NIC by its address: without one the VM is unfiltered. */
		if (nic->network_security_group != CONFIG_NONE && !nic->n_addresses)
			reader_problem(&l->r, rec->props.path, "network interface \"%s\" has a "
				       "networkSecurityGroup but no privateIPAddress, so its rules "
				       "could never apply; allowed: the address Azure gave it in an "
				       "ipConfiguration (vnet-xdp import assigns Dynamic ones)",
				       nic->name);
	}
	if (mac_paths)
		check_nic_macs(l, mac_paths);
	free(mac_paths);
}

/* ---- peerings --------------------------------------------------------------------------- */

struct peering_ctx {
	int vnet;
	const char **paths;        /* where each peering's properties are */
	const char **remote_paths; /* and its remoteVirtualNetwork */
};

const char *peering_state_name(enum peering_state state)
{
	switch (state) {
	case PEERING_CONNECTED: return "Connected";
	case PEERING_DISCONNECTED: return "Disconnected";
	default: return "Initiated";
	}
}

/* peeringState, which Azure's exports carry (read-only there): what the gateway cannot
 * see for itself is that the remote side deleted its peering (Disconnected). */
static bool get_peering_state(struct loader *l, struct node n, enum peering_state *out)
{
	static const enum peering_state states[] = { PEERING_INITIATED, PEERING_CONNECTED,
						     PEERING_DISCONNECTED };
	const char *text;

	*out = PEERING_INITIATED;
	if (!n.value)
		return true;
	if (!get_string(&l->r, n, &text))
		return false;
	for (size_t i = 0; i < sizeof(states) / sizeof(*states); i++)
		if (!strcasecmp(text, peering_state_name(states[i]))) {
			*out = states[i];
			return true;
		}
	reader_problem(&l->r, n.path, "peering state \"%.64s\"; allowed: Initiated, Connected, "
		       "Disconnected", text);
	return false;
}

const struct config_peering *config_peering_to(const struct config *cfg, int from, int to)
{
	const struct config_vnet *v = &cfg->vnets[from];

	for (size_t p = 0; p < v->n_peerings; p++)
		if (v->peerings[p].remote_vnet == to)
			return &v->peerings[p];
	return NULL;
}

/* A peering's state from both sides, as Azure derives it: Disconnected stays so (the
 * remote side deleted it; only recreating this side mends it); Connected when the remote
 * VNet has a peering back that is not itself Disconnected; else Initiated. A remote VNet
 * outside the config is taken at the state the JSON gives. */
static enum peering_state peering_state_of(const struct config_peering *peering,
					   const struct config_peering *back)
{
	if (peering->stated == PEERING_DISCONNECTED)
		return PEERING_DISCONNECTED;
	if (peering->remote_vnet == CONFIG_NONE)
		return peering->stated;
	return back && back->stated != PEERING_DISCONNECTED ? PEERING_CONNECTED :
							      PEERING_INITIATED;
}

static void add_peering(struct loader *l, struct node res, const char *name, bool duplicate,
			void *ctx)
{
	struct peering_ctx *pc = ctx;
	struct config_vnet *vnet = &l->cfg->vnets[pc->vnet];
	struct node props = node_properties(&l->r, res);
	struct node remote = node_child(&l->r, props, "remoteVirtualNetwork");
	struct config_peering peering = { .allow_virtual_network_access = true,
					  .remote_vnet = CONFIG_NONE };
	struct reference ref;

	if (duplicate) {
		reader_problem(&l->r, path_key(&l->r, res.path, "name"), "duplicate peering name "
			       "\"%s\" in virtual network \"%s\"; allowed: unique names, "
			       "compared without case", name, vnet->name);
		return;
	}
	if (!remote.value) {
		reader_problem(&l->r, props.path, "peering \"%s\" has no remoteVirtualNetwork; "
			       "allowed: a reference to a virtual network", name);
		return;
	}
	if (!get_reference(&l->r, remote, &ref))
		return;
	if (ref.n_names != 1 || (ref.type[0] && strcasecmp(ref.type, "virtualNetworks"))) {
		reader_problem(&l->r, remote.path, "refers to a %s; allowed: a reference to a "
			       "virtual network", ref.type[0] ? ref.type : "child resource");
		return;
	}
	/* A remote VNet outside this config is legal (another subscription); the peering
	 * then stays "Initiated" and forwards nothing. */
	peering.remote_vnet = loader_find_named(l, l->cfg->vnets, l->cfg->n_vnets,
						sizeof(*l->cfg->vnets), ref.names[0]);
	if (peering.remote_vnet == pc->vnet) {
		reader_problem(&l->r, remote.path, "virtual network \"%s\" peers with itself; "
			       "allowed: another virtual network", vnet->name);
		return;
	}
	if (!get_peering_state(l, node_child(&l->r, props, "peeringState"), &peering.stated))
		return;
	get_bool(&l->r, node_child(&l->r, props, "allowVirtualNetworkAccess"),
		 &peering.allow_virtual_network_access);
	get_bool(&l->r, node_child(&l->r, props, "allowForwardedTraffic"),
		 &peering.allow_forwarded_traffic);
	get_bool(&l->r, node_child(&l->r, props, "allowGatewayTransit"),
		 &peering.allow_gateway_transit);
	get_bool(&l->r, node_child(&l->r, props, "useRemoteGateways"),
		 &peering.use_remote_gateways);
	peering.name = copy_string(name);
	peering.remote_name = copy_string(ref.names[0]);
	pc->paths[vnet->n_peerings] = props.path;
	pc->remote_paths[vnet->n_peerings] = remote.path;
	vnet->peerings[vnet->n_peerings++] = peering;
}

/* A second peering toward the same remote VNet is reported and dropped, as if never read. */
static void drop_repeated_remotes(struct loader *l, const struct peering_ctx *pc)
{
	struct config_vnet *vnet = &l->cfg->vnets[pc->vnet];
	const char **remotes = calloc(vnet->n_peerings + 1, sizeof(*remotes));
	int *first = calloc(vnet->n_peerings + 1, sizeof(*first));
	size_t kept = 0;

	for (size_t p = 0; remotes && p < vnet->n_peerings; p++)
		remotes[p] = vnet->peerings[p].remote_name;
	if (!remotes || !first || find_duplicate_names(remotes, vnet->n_peerings, first)) {
		reader_problem(&l->r, pc->paths[0], "out of memory");
		free(remotes);
		free(first);
		return;
	}
	for (size_t p = 0; p < vnet->n_peerings; p++)
		if (first[p] != CONFIG_NONE)
			reader_problem(&l->r, pc->remote_paths[p], "\"%s\" is already peered with "
				       "\"%s\" by peering \"%s\"; allowed: one peering per remote "
				       "virtual network", vnet->name, vnet->peerings[p].remote_name,
				       vnet->peerings[first[p]].name);
	for (size_t p = 0; p < vnet->n_peerings; p++) {
		if (first[p] == CONFIG_NONE) {
			pc->paths[kept] = pc->paths[p];
			vnet->peerings[kept++] = vnet->peerings[p];
			continue;
		}
		free(vnet->peerings[p].name);
		free(vnet->peerings[p].remote_name);
	}
	vnet->n_peerings = kept;
	free(remotes);
	free(first);
}

/* Every peering by (VNet, remote VNet), so that the way back is found by a search. */
struct peering_ref {
	int from, to;
	size_t peering;
};

static int compare_peering_refs(const void *a, const void *b)
{
	const struct peering_ref *x = a, *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	return (x->peering > y->peering) - (x->peering < y->peering);
}

static struct peering_ref *peering_refs(const struct config *cfg, size_t *count)
{
	struct peering_ref *refs;
	size_t n = 0;

	for (size_t v = 0; v < cfg->n_vnets; v++)
		n += cfg->vnets[v].n_peerings;
	refs = calloc(n + 1, sizeof(*refs));
	*count = 0;
	if (!refs)
		return NULL;
	for (size_t v = 0; v < cfg->n_vnets; v++)
		for (size_t p = 0; p < cfg->vnets[v].n_peerings; p++)
			refs[(*count)++] = (struct peering_ref){ (int)v,
				cfg->vnets[v].peerings[p].remote_vnet, p };
	qsort(refs, *count, sizeof(*refs), compare_peering_refs);
	return refs;
}

/* The first peering of `from` toward `to`, or NULL. */
static const struct config_peering *peering_back(const struct config *cfg,
						 const struct peering_ref *refs, size_t count,
						 int from, int to)
{
	size_t low = 0, high = count;

	while (low < high) {
		size_t mid = low + (high - low) / 2;

		if (refs[mid].from < from || (refs[mid].from == from && refs[mid].to < to))
			low = mid + 1;
		else
			high = mid;
	}
	if (low < count && refs[low].from == from && refs[low].to == to)
		return &cfg->vnets[from].peerings[refs[low].peering];
	return NULL;
}

/* The first overlapping pair of prefixes of two VNets (first in a's order, then b's), or
 * false. */
static bool address_spaces_overlap(const struct config_vnet *a, const struct config_vnet *b,
				   char *a_text, char *b_text, size_t size)
{
	struct owned_prefix *items = calloc(a->n_prefixes + b->n_prefixes + 1, sizeof(*items));
	struct prefix_overlap *overlaps = NULL, *best = NULL;
	size_t n = 0, n_overlaps = 0;

	for (size_t i = 0; items && i < a->n_prefixes; i++)
		items[n++] = (struct owned_prefix){ a->prefixes[i], 0, i };
	for (size_t j = 0; items && j < b->n_prefixes; j++)
		items[n++] = (struct owned_prefix){ b->prefixes[j], 1, j };
	if (!items || prefix_overlaps(items, n, &overlaps, &n_overlaps)) {
		free(items);
		return false;
	}
	for (size_t o = 0; o < n_overlaps; o++) /* earlier: a's prefix; later: b's */
		if (!best || overlaps[o].earlier < best->earlier ||
		    (overlaps[o].earlier == best->earlier && overlaps[o].later < best->later))
			best = &overlaps[o];
	if (best) {
		prefix_text(&items[best->earlier].prefix, a_text, size);
		prefix_text(&items[best->later].prefix, b_text, size);
	}
	free(overlaps);
	free(items);
	return best != NULL;
}

static void check_peerings_of(struct loader *l, int v, const char **paths,
			      const struct peering_ref *refs, size_t n_refs)
{
	struct config *cfg = l->cfg;
	struct config_vnet *vnet = &cfg->vnets[v];
	int remote_gateways = 0;

	for (size_t p = 0; p < vnet->n_peerings; p++) {
		struct config_peering *peering = &vnet->peerings[p];
		const struct config_peering *back;
		char a[64], b[64];

		if (peering->remote_vnet != CONFIG_NONE &&
		    address_spaces_overlap(vnet, &cfg->vnets[peering->remote_vnet], a, b, sizeof(a)))
			reader_problem(&l->r, paths[p], "peering \"%s\": address space %s of \"%s\" "
				       "overlaps %s of \"%s\"; allowed: peered virtual networks with "
				       "address spaces that do not overlap", peering->name, a,
				       vnet->name, b, cfg->vnets[peering->remote_vnet].name);
		back = peering->remote_vnet == CONFIG_NONE ? NULL :
		       peering_back(cfg, refs, n_refs, peering->remote_vnet, v);
		peering->state = peering_state_of(peering, back);
		peering->connected = peering->state == PEERING_CONNECTED;
		if (!peering->use_remote_gateways)
			continue;
		if (++remote_gateways == 2)
			reader_problem(&l->r, paths[p], "virtual network \"%s\" sets "
				       "useRemoteGateways on more than one peering; allowed: at "
				       "most one", vnet->name);
		if (peering->remote_vnet != CONFIG_NONE &&
		    cfg->vnets[peering->remote_vnet].virtual_network_gateway == CONFIG_NONE)
			reader_problem(&l->r, paths[p], "peering \"%s\" sets useRemoteGateways but "
				       "\"%s\" has no virtual network gateway; allowed: "
				       "useRemoteGateways toward a virtual network with one",
				       peering->name, cfg->vnets[peering->remote_vnet].name);
		if (vnet->virtual_network_gateway != CONFIG_NONE)
			reader_problem(&l->r, paths[p], "peering \"%s\" sets useRemoteGateways but "
				       "\"%s\" has its own virtual network gateway \"%s\"; allowed: "
				       "useRemoteGateways only on a virtual network without one",
				       peering->name, vnet->name,
				       cfg->vnet_gateways[vnet->virtual_network_gateway].name);
	}
}

void build_peerings(struct loader *l)
{
	struct config *cfg = l->cfg;
	const char ***paths = calloc(cfg->n_vnets + 1, sizeof(*paths));
	struct peering_ref *refs;
	size_t n_refs;

	if (!paths)
		return;
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct children children;
		struct peering_ctx pc;
		struct config_vnet *vnet;

		if (rec->kind != KIND_VNET)
			continue;
		pc.vnet = loader_find_named(l, cfg->vnets, cfg->n_vnets, sizeof(*cfg->vnets),
					    rec->name);
		vnet = &cfg->vnets[pc.vnet];
		if (vnet->peerings) /* a duplicate VNet record, already reported */
			continue;
		if (children_list(l, rec, "virtualNetworkPeerings", KIND_PEERING, &children)) {
			reader_problem(&l->r, rec->resource.path, "out of memory");
			continue;
		}
		vnet->peerings = calloc(children.n + 1, sizeof(*vnet->peerings));
		pc.paths = paths[pc.vnet] = calloc(children.n + 1, sizeof(char *));
		pc.remote_paths = calloc(children.n + 1, sizeof(char *));
		if (vnet->peerings && pc.paths && pc.remote_paths) {
			children_each(l, rec, "virtualNetworkPeerings", KIND_PEERING, &children,
				      MISSING_CHILD_NAME, add_peering, &pc);
			drop_repeated_remotes(l, &pc);
		} else {
			reader_problem(&l->r, rec->resource.path, "out of memory");
		}
		free(pc.remote_paths);
		children_free(&children);
	}
	report_orphans(l, KIND_PEERING, KIND_VNET, cfg->vnets, cfg->n_vnets, sizeof(*cfg->vnets));
	refs = peering_refs(cfg, &n_refs);
	if (!refs)
		reader_problem(&l->r, "resources", "out of memory");
	for (size_t v = 0; refs && v < cfg->n_vnets; v++)
		if (paths[v])
			check_peerings_of(l, (int)v, paths[v], refs, n_refs);
	for (size_t v = 0; v < cfg->n_vnets; v++)
		free(paths[v]);
	free(paths);
	free(refs);
}

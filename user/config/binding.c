/* The `gateway` section: how this box binds to the Azure model (interfaces, VIPs,
 * tunnel endpoints, metrics, limits). Unlike Azure's own resources, whose extra keys are
 * ignored, an unknown key here is reported: it is most likely a typo. */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/internal.h"
#include "lib/path_name.h"
#include "lib/gateway_name.h"
#include "lib/local_interfaces.h"
#include "vnet_xdp.h"

#define DEFAULT_METRICS_LISTEN "127.0.0.1:9469"

static void check_keys(struct loader *l, struct node obj, const char *const *allowed,
		       size_t count)
{
	const char *key;
	json_t *value;

	json_object_foreach(obj.value, key, value) {
		char list[512] = "";
		bool known = false;

		for (size_t i = 0; i < count; i++)
			known |= !strcmp(key, allowed[i]);
		if (known)
			continue;
		for (size_t i = 0; i < count; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i ? ", " : "", allowed[i]);
		reader_problem(&l->r, path_key(&l->r, obj.path, key), "unknown key; allowed: %s",
			       list);
	}
}

#define CHECK_KEYS(l, obj, ...) do {                                                   \
		static const char *const keys_[] = { __VA_ARGS__ };                      \
		check_keys(l, obj, keys_, sizeof(keys_) / sizeof(keys_[0]));             \
	} while (0)

static bool valid_interface_name(const char *name)
{
	size_t len = strlen(name);

	return len && len < IFNAMSIZ && !strpbrk(name, "/: \t\n") && strcmp(name, ".") &&
	       strcmp(name, "..");
}

static int required_vnet(struct loader *l, struct node obj, const char *key)
{
	struct node n = node_child(&l->r, obj, key);
	const char *name;
	int vnet;

	if (!n.value) {
		reader_problem(&l->r, n.path, "missing; allowed: the name of a virtual network in "
			       "resources");
		return CONFIG_NONE;
	}
	if (!get_string(&l->r, n, &name))
		return CONFIG_NONE;
	vnet = loader_find_named(l, l->cfg->vnets, l->cfg->n_vnets, sizeof(*l->cfg->vnets), name);
	if (vnet == CONFIG_NONE)
		reader_problem(&l->r, n.path, "unknown virtual network \"%s\"; allowed: one declared "
			       "in resources", reader_shown(&l->r, name));
	return vnet;
}

/* `vnet-xdp import` writes FILL-IN where only the user knows the value. */
static bool still_fill_in(struct loader *l, struct node n, const char *allowed)
{
	if (!json_is_string(n.value) || strcmp(json_string_value(n.value), "FILL-IN"))
		return false;
	reader_problem(&l->r, n.path, "still FILL-IN; allowed: %s", allowed);
	return true;
}

/* A FILL-IN that names something of this machine: its interfaces are the candidates. */
static void fill_in_from_this_machine(struct loader *l, struct node n, const char *allowed)
{
	char *candidates = local_interfaces_text();

	reader_problem(&l->r, n.path, "still FILL-IN; allowed: %s; this machine's interfaces: "
		       "%s", allowed, candidates ? candidates : "unknown (out of memory)");
	free(candidates);
}

/* ---- interfaces ----------------------------------------------------------------------- */

static void read_interface(struct loader *l, struct node n, struct config_gateway_iface *iface)
{
	struct config *cfg = l->cfg;
	struct node name_node = node_child(&l->r, n, "name"), role_node = node_child(&l->r, n, "role");
	const char *name = NULL, *subnet = NULL;
	static const char *const roles[] = { [IFACE_VNET] = "vnet", [IFACE_UPLINK] = "uplink" };
	int role = IFACE_VNET;

	iface->vnet = iface->subnet = CONFIG_NONE;
	CHECK_KEYS(l, n, "name", "virtualNetwork", "subnet", "role");
	if (!name_node.value)
		reader_problem(&l->r, name_node.path, "missing; allowed: a Linux interface name");
	else if (get_string(&l->r, name_node, &name) && !strcmp(name, "FILL-IN"))
		fill_in_from_this_machine(l, name_node, "the Linux interface that faces this "
					  "virtual network (or the uplink)");
	else if (name && !valid_interface_name(name))
		reader_problem(&l->r, name_node.path, "\"%s\" is not an interface name; allowed: "
			       "1-%d characters without '/', ':' or spaces", reader_shown(&l->r, name),
			       IFNAMSIZ - 1);
	else if (name)
		iface->name = copy_string(name);
	if (role_node.value && !read_enum(l, role_node, roles, 2, &role))
		return; /* neither a VNet interface nor the uplink: nothing more to check */
	iface->role = (enum gateway_iface_role)role;
	if (iface->role == IFACE_UPLINK) {
		if (json_object_get(n.value, "virtualNetwork"))
			reader_problem(&l->r, path_key(&l->r, n.path, "virtualNetwork"), "the uplink "
				       "faces the Internet and tunnel peers, not a virtual network; "
				       "allowed: leave it out");
		return;
	}
	iface->vnet = required_vnet(l, n, "virtualNetwork");
	if (iface->vnet == CONFIG_NONE ||
	    !get_string(&l->r, node_child(&l->r, n, "subnet"), &subnet))
		return;
	iface->subnet = loader_find_subnet(l, iface->vnet, subnet);
	if (iface->subnet == CONFIG_NONE)
		reader_problem(&l->r, path_key(&l->r, n.path, "subnet"), "virtual network \"%s\" has "
			       "no subnet \"%s\"; allowed: one of its subnets, or leave \"subnet\" "
			       "out for the whole VNet", cfg->vnets[iface->vnet].name,
			       reader_shown(&l->r, subnet));
}

static int compare_interface_names(const void *ctx, size_t a, size_t b)
{
	const struct config_gateway_iface *ifaces = ctx;

	if (!ifaces[a].name || !ifaces[b].name) /* unnamed: reported already, equal nothing */
		return ifaces[a].name ? 1 : ifaces[b].name ? -1 : (a > b) - (a < b);
	return strcmp(ifaces[a].name, ifaces[b].name); /* Linux names are case-sensitive */
}

static void check_interfaces_once(struct loader *l, struct node list)
{
	struct config *cfg = l->cfg;
	int *first = calloc(cfg->n_ifaces + 1, sizeof(*first));

	if (!first || find_duplicates(cfg->n_ifaces, compare_interface_names, cfg->ifaces, first)) {
		reader_problem(&l->r, list.path, "out of memory");
		free(first);
		return;
	}
	for (size_t i = 0, element = 0; i < cfg->n_ifaces; i++, element++) {
		while (!json_is_object(json_array_get(list.value, element)))
			element++; /* elements that are no object were skipped */
		if (first[i] != CONFIG_NONE)
			reader_problem(&l->r, path_key(&l->r, path_index(&l->r, list.path, element),
						       "name"), "interface \"%s\" is listed twice; "
				       "allowed: each interface once",
				       reader_shown(&l->r, cfg->ifaces[i].name));
	}
	free(first);
}

static void read_interfaces(struct loader *l, struct node list)
{
	struct config *cfg = l->cfg;
	size_t n = json_array_size(list.value), uplinks = 0;

	if (!list.value) {
		reader_problem(&l->r, list.path, "missing; allowed: a list of {name, virtualNetwork "
			       "[, subnet]} and one {name, role: uplink}");
		return;
	}
	if (!is_array_or_report(&l->r, list))
		return;
	if (!n)
		reader_problem(&l->r, list.path, "empty; allowed: at least one interface");
	cfg->ifaces = calloc(n + 1, sizeof(*cfg->ifaces));
	if (!cfg->ifaces)
		return;
	for (size_t i = 0; i < n; i++) {
		struct node element = node_element(&l->r, list, i);
		struct config_gateway_iface *iface = &cfg->ifaces[cfg->n_ifaces];

		if (!is_object_or_report(&l->r, element))
			continue;
		read_interface(l, element, iface);
		cfg->n_ifaces++;
		if (iface->role == IFACE_UPLINK && ++uplinks == 2)
			reader_problem(&l->r, element.path, "a second uplink; allowed: one interface "
				       "with role uplink");
	}
	check_interfaces_once(l, list);
}

/* ---- virtual networks: VIPs --------------------------------------------------------------- */

static bool vip_known(const struct config_gateway_vnet *gv, const struct ip_address *a)
{
	for (size_t i = 0; i < gv->n_vips; i++)
		if (!memcmp(&gv->vips[i], a, sizeof(*a)))
			return true;
	return false;
}

#define VIP_ALLOWED "the public IPv4 or IPv6 address this VNet's outbound traffic is " \
	"NATed to, or leave \"vip\" out for no outbound NAT"

static void read_vips(struct loader *l, struct node n, struct config_gateway_vnet *gv)
{
	struct node vip = node_child(&l->r, n, "vip"), vips = node_child(&l->r, n, "vips");
	struct ip_address a;

	gv->vips = calloc(json_array_size(vips.value) + 2, sizeof(*gv->vips));
	if (!gv->vips)
		return;
	if (vip.value && !still_fill_in(l, vip, VIP_ALLOWED) && read_address(l, vip, &a))
		gv->vips[gv->n_vips++] = a;
	if (vips.value && is_array_or_report(&l->r, vips))
		for (size_t i = 0; i < json_array_size(vips.value); i++) {
			struct node element = node_element(&l->r, vips, i);

			if (still_fill_in(l, element, VIP_ALLOWED) || !read_address(l, element, &a))
				continue;
			if (vip_known(gv, &a))
				reader_problem(&l->r, element.path, "VIP listed twice");
			else
				gv->vips[gv->n_vips++] = a;
		}
	if (gv->n_vips)
		gv->vip = gv->vips[0];
}

static void read_gateway_vnets(struct loader *l, struct node list)
{
	struct config *cfg = l->cfg;
	size_t n = json_array_size(list.value);
	bool *listed; /* per VNet */

	if (!list.value || !is_array_or_report(&l->r, list))
		return;
	cfg->gateway_vnets = calloc(n + 1, sizeof(*cfg->gateway_vnets));
	listed = calloc(cfg->n_vnets + 1, sizeof(*listed));
	if (!cfg->gateway_vnets || !listed) {
		free(listed);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct node element = node_element(&l->r, list, i);
		struct config_gateway_vnet *gv = &cfg->gateway_vnets[cfg->n_gateway_vnets];

		if (!is_object_or_report(&l->r, element))
			continue;
		CHECK_KEYS(l, element, "name", "vip", "vips");
		gv->vnet = required_vnet(l, element, "name");
		read_vips(l, element, gv);
		cfg->n_gateway_vnets++;
		if (gv->vnet != CONFIG_NONE && listed[gv->vnet])
			reader_problem(&l->r, path_key(&l->r, element.path, "name"), "virtual "
				       "network \"%s\" is listed twice; allowed: once, with "
				       "\"vips\" for several VIPs", cfg->vnets[gv->vnet].name);
		if (gv->vnet != CONFIG_NONE)
			listed[gv->vnet] = true;
	}
	free(listed);
}

/* ---- tunnel endpoints ---------------------------------------------------------------------- */

/* An absolute path of the binding: where `up` reads a credential of the gateway. */
static char *read_credential_path(struct loader *l, struct node n, const char *what)
{
	const char *path = NULL;

	if (!n.value) {
		reader_problem(&l->r, n.path, "missing; allowed: the absolute path of %s", what);
		return NULL;
	}
	if (!get_string(&l->r, n, &path))
		return NULL;
	if (path_name_problem(path)) {
		reader_problem(&l->r, n.path, "\"%s\" %s; allowed: the absolute path of %s",
			       reader_shown(&l->r, path), path_name_problem(path), what);
		return NULL;
	}
	return copy_string(path);
}

/* A gateway with point-to-site clients authenticates itself to them by a certificate of
 * its own (Azure's is its own business; here the operator's). Only the paths are read
 * here: `up` reads the files, the key one only if no one else may read it. */
static void read_vpn_client_server(struct loader *l, struct config_vnet_gateway *gw,
				   struct node element)
{
	struct node cert = node_child(&l->r, element, "vpnClientServerCertificate");
	struct node key = node_child(&l->r, element, "vpnClientServerKey");

	if (!gw->vpn_client) {
		if (cert.value || key.value)
			reader_problem(&l->r, (cert.value ? cert : key).path, "virtual network "
				       "gateway \"%s\" has no vpnClientConfiguration; allowed: only "
				       "with one", gw->name);
		return;
	}
	gw->vpn_client->server_certificate = read_credential_path(l, cert,
		"the PEM certificate the gateway shows point-to-site clients");
	gw->vpn_client->server_key = read_credential_path(l, key,
		"the PEM private key of vpnClientServerCertificate (mode 0600)");
}

static void read_tunnel_endpoints(struct loader *l, struct node list)
{
	struct config *cfg = l->cfg;

	if (!list.value || !is_array_or_report(&l->r, list))
		return;
	for (size_t i = 0; i < json_array_size(list.value); i++) {
		struct node element = node_element(&l->r, list, i);
		struct node name = node_child(&l->r, element, "name");
		struct node address = node_child(&l->r, element, "address");
		struct config_vnet_gateway *gw;
		int g;

		if (!is_object_or_report(&l->r, element))
			continue;
		CHECK_KEYS(l, element, "name", "address", "vpnClientServerCertificate",
			   "vpnClientServerKey");
		g = resolve_reference(l, name, KIND_VNET_GATEWAY, cfg->vnet_gateways,
				      cfg->n_vnet_gateways, sizeof(*cfg->vnet_gateways));
		if (!address.value)
			reader_problem(&l->r, address.path, "missing; allowed: this box's tunnel "
				       "endpoint address for the gateway");
		if (g == CONFIG_NONE || !address.value)
			continue;
		gw = &cfg->vnet_gateways[g];
		if (gw->local_address.family)
			reader_problem(&l->r, element.path, "virtual network gateway \"%s\" is bound "
				       "twice; allowed: once", gw->name);
		else if (json_is_string(address.value) &&
			 !strcmp(json_string_value(address.value), "FILL-IN"))
			fill_in_from_this_machine(l, address, "this box's tunnel endpoint address "
						  "for the gateway, an IPv4 or IPv6 address");
		else
			read_address(l, address, &gw->local_address);
		read_vpn_client_server(l, gw, element);
	}
}

/* ---- metrics and limits --------------------------------------------------------------------- */

/* ADDR:PORT with an IPv4 address or a bracketed IPv6 one. */
static bool valid_listen(const char *text)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(text, ':');
	struct ip_address a;
	char *end;
	long port;
	size_t len;

	if (!colon)
		return false;
	len = (size_t)(colon - text);
	if (len >= sizeof(host))
		return false;
	memcpy(host, text, len);
	host[len] = '\0';
	if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
		host[len - 1] = '\0';
		if (ip_address_parse(host + 1, &a) || a.family != AF_INET6)
			return false;
	} else if (ip_address_parse(host, &a) || a.family != AF_INET) {
		return false;
	}
	port = strtol(colon + 1, &end, 10);
	return colon[1] && !*end && port > 0 && port <= 65535;
}

static void read_metrics(struct loader *l, struct node metrics)
{
	struct node listen = node_child(&l->r, metrics, "listen");
	const char *text = DEFAULT_METRICS_LISTEN;

	if (metrics.value && is_object_or_report(&l->r, metrics)) {
		CHECK_KEYS(l, metrics, "listen");
		if (get_string(&l->r, listen, &text) && !valid_listen(text))
			reader_problem(&l->r, listen.path, "\"%s\" is not ADDR:PORT; allowed: "
				       "127.0.0.1:9469, [::1]:9469, 0.0.0.0:PORT", reader_shown(&l->r, text));
	}
	l->cfg->metrics_listen = copy_string(text);
}

/* gateway.flowLogs. Only the path's shape is checked here (`check` touches no file);
 * `serve` creates the directory or refuses one that is a link or world-writable
 * (flow_log_directory_prepare). */
static void read_flow_logs(struct loader *l, struct node fl)
{
	struct config_flow_logs *f = &l->cfg->flow_logs;
	struct node dir = node_child(&l->r, fl, "directory");
	const char *text = FLOW_LOG_DEFAULT_DIRECTORY;
	long long v;

	*f = (struct config_flow_logs){ .interval_seconds = 60, .max_megabytes = 256,
					.denied_per_second = 100 };
	if (!fl.value || !is_object_or_report(&l->r, fl))
		return;
	f->enabled = true;
	CHECK_KEYS(l, fl, "enabled", "directory", "intervalSeconds", "maxMegabytes",
		   "deniedPerSecond");
	get_bool(&l->r, node_child(&l->r, fl, "enabled"), &f->enabled);
	if (dir.value && get_string(&l->r, dir, &text)) {
		const char *problem = path_name_problem(text);

		if (problem) {
			reader_problem(&l->r, dir.path, "\"%s\" %s; allowed: an absolute path such as "
				       FLOW_LOG_DEFAULT_DIRECTORY, reader_shown(&l->r, text), problem);
			text = FLOW_LOG_DEFAULT_DIRECTORY;
		}
	}
	f->directory = copy_string(text);
	/* Azure writes every minute (intervals of 1 s are for tests). */
	v = f->interval_seconds;
	if (get_int(&l->r, node_child(&l->r, fl, "intervalSeconds"), 1, 3600, &v))
		f->interval_seconds = (uint32_t)v;
	v = f->max_megabytes;
	if (get_int(&l->r, node_child(&l->r, fl, "maxMegabytes"), 1, 1048576, &v))
		f->max_megabytes = (uint32_t)v;
	v = f->denied_per_second;
	if (get_int(&l->r, node_child(&l->r, fl, "deniedPerSecond"), 0, 1000000, &v))
		f->denied_per_second = (uint32_t)v;
}

/* The MSS of TCP SYN and SYN-ACK segments through a tunnel is lowered to this, as Azure's
 * VPN gateway advises of devices on its tunnels: a segment of it fits the tunnel's MTU
 * whatever the ESP proposal. From IPv4's minimum (576 less headers) to what a jumbo
 * underlay could carry. */
static void read_tunnel_tcp_mss(struct loader *l, struct node mss)
{
	long long v = DEFAULT_TUNNEL_TCP_MSS;

	if (mss.value && get_int(&l->r, mss, 536, 8960, &v))
		l->cfg->tunnel_tcp_mss = (uint16_t)v;
}

#define HASH_MAP_MAX_ENTRIES (1 << 27)

static void read_limit(struct loader *l, struct node limits, const char *key, long long min,
		       long long max, uint32_t *out)
{
	long long v = *out;

	if (get_int(&l->r, node_child(&l->r, limits, key), min, max, &v))
		*out = (uint32_t)v;
}

/* One VM's SNAT ports per VIP, its port block (limits.snatMappingsPerVm): Azure gives every instance
 * of a load balancer's backend pool a fixed share of SNAT ports, 1024 for pools of up to 50
 * instances ("Default port allocation", learn.microsoft.com/azure/load-balancer/
 * load-balancer-outbound-connections), so that one VM cannot take the ports of all. */
#define DEFAULT_SNAT_MAPPINGS_PER_VM 1024

static void read_limits(struct loader *l, struct node limits)
{
	struct config_limits *lim = &l->cfg->limits;
	uint32_t port_min = 1024, port_max = 65535;

	*lim = (struct config_limits){
		.flow_table_size = FLOW_TABLE_ENTRIES_DEFAULT,
		.snat_port_min = 1024,
		.snat_port_max = 65535,
		.tcp_idle_timeout_seconds = FLOW_TCP_IDLE_TIMEOUT_DEFAULT,
		.udp_idle_timeout_seconds = FLOW_UDP_IDLE_TIMEOUT_DEFAULT,
		.icmp_idle_timeout_seconds = FLOW_ICMP_IDLE_TIMEOUT_DEFAULT,
		.tcp_transitory_timeout_seconds = FLOW_TCP_TRANSITORY_TIMEOUT_DEFAULT,
		.snat_table_size = SNAT_TABLE_ENTRIES_DEFAULT,
		.snat_mappings_per_vm = DEFAULT_SNAT_MAPPINGS_PER_VM,
	};
	if (!limits.value || !is_object_or_report(&l->r, limits))
		return;
	CHECK_KEYS(l, limits, "flowTableSize", "snatPortMin", "snatPortMax", "snatTableSize",
		   "tcpIdleTimeoutSeconds", "tcpTransitoryTimeoutSeconds", "udpIdleTimeoutSeconds",
		   "icmpIdleTimeoutSeconds", "snatMappingsPerVm");
	/* Up to the kernel's largest hash table (its bucket array must stay under 4 GiB);
	 * whether this machine holds them `up` says, from its memory. */
	read_limit(l, limits, "flowTableSize", 1024, HASH_MAP_MAX_ENTRIES, &lim->flow_table_size);
	read_limit(l, limits, "snatTableSize", 1024, HASH_MAP_MAX_ENTRIES, &lim->snat_table_size);
	read_limit(l, limits, "snatMappingsPerVm", 0, HASH_MAP_MAX_ENTRIES,
		   &lim->snat_mappings_per_vm);
	read_limit(l, limits, "snatPortMin", 1, 65535, &port_min);
	read_limit(l, limits, "snatPortMax", 1, 65535, &port_max);
	if (port_min > port_max)
		reader_problem(&l->r, path_key(&l->r, limits.path, "snatPortMin"), "snatPortMin %u "
			       "is above snatPortMax %u; allowed: MIN <= MAX", port_min, port_max);
	lim->snat_port_min = (uint16_t)port_min;
	lim->snat_port_max = (uint16_t)port_max;
	/* Azure: TCP idle 4-120 minutes; shorter values are allowed here for tests. */
	read_limit(l, limits, "tcpIdleTimeoutSeconds", 1, 7200, &lim->tcp_idle_timeout_seconds);
	read_limit(l, limits, "tcpTransitoryTimeoutSeconds", 1, 7200,
		   &lim->tcp_transitory_timeout_seconds);
	read_limit(l, limits, "udpIdleTimeoutSeconds", 1, 7200, &lim->udp_idle_timeout_seconds);
	read_limit(l, limits, "icmpIdleTimeoutSeconds", 1, 7200, &lim->icmp_idle_timeout_seconds);
}

/* ---- checks across the binding ------------------------------------------------------------- */

static bool *bound_vnets(const struct config *cfg)
{
	bool *bound = calloc(cfg->n_vnets + 1, sizeof(*bound));

	for (size_t i = 0; bound && i < cfg->n_ifaces; i++)
		if (cfg->ifaces[i].vnet >= 0)
			bound[cfg->ifaces[i].vnet] = true;
	for (size_t i = 0; bound && i < cfg->n_gateway_vnets; i++)
		if (cfg->gateway_vnets[i].vnet >= 0)
			bound[cfg->gateway_vnets[i].vnet] = true;
	return bound;
}

/* One gateway forwards between all VNets bound to it, so they must not overlap, as
 * peered VNets must not. Each pair of VNets is reported once, at its first overlap. */
static void check_bound_vnets_disjoint(struct loader *l, struct node gateway)
{
	struct config *cfg = l->cfg;
	bool *bound = bound_vnets(cfg);
	size_t *reported_with = calloc(cfg->n_vnets + 1, sizeof(*reported_with));
	struct owned_prefix *items = NULL;
	struct prefix_overlap *overlaps = NULL;
	size_t n = 0, n_overlaps = 0, total = 0;
	char a[64], b[64];

	for (size_t v = 0; bound && v < cfg->n_vnets; v++)
		total += bound[v] ? cfg->vnets[v].n_prefixes : 0;
	if (bound && reported_with)
		items = calloc(total + 1, sizeof(*items));
	for (size_t v = 0; items && v < cfg->n_vnets; v++)
		for (size_t i = 0; bound[v] && i < cfg->vnets[v].n_prefixes; i++)
			items[n++] = (struct owned_prefix){ cfg->vnets[v].prefixes[i], v, i };
	if (!items || prefix_overlaps(items, n, &overlaps, &n_overlaps)) {
		reader_problem(&l->r, gateway.path, "out of memory");
		free(bound);
		free(reported_with);
		free(items);
		return;
	}
	for (size_t o = 0; o < n_overlaps; o++) {
		const struct owned_prefix *v = &items[overlaps[o].later];
		const struct owned_prefix *w = &items[overlaps[o].earlier];

		/* The pairs come grouped by their later VNet: a mark per earlier one. */
		if (reported_with[w->owner] == v->owner + 1)
			continue;
		reported_with[w->owner] = v->owner + 1;
		reader_problem(&l->r, gateway.path, "virtual networks \"%s\" (%s) and \"%s\" (%s) "
			       "are both bound to this gateway and overlap; allowed: VNets with "
			       "disjoint address spaces", cfg->vnets[v->owner].name,
			       prefix_text(&v->prefix, a, sizeof(a)), cfg->vnets[w->owner].name,
			       prefix_text(&w->prefix, b, sizeof(b)));
	}
	free(overlaps);
	free(items);
	free(bound);
	free(reported_with);
}

void build_gateway_binding(struct loader *l, struct node gateway)
{
	struct node name = node_child(&l->r, gateway, "name"), nat66 = node_child(&l->r, gateway, "nat66");
	const char *text;

	read_limits(l, (struct node){ NULL, "" });
	read_flow_logs(l, (struct node){ NULL, "" });
	l->cfg->tunnel_tcp_mss = DEFAULT_TUNNEL_TCP_MSS;
	if (!gateway.value) {
		reader_problem(&l->r, gateway.path, "missing; allowed: {\"name\", \"interfaces\", "
			       "...} binding this box to the virtual networks");
		l->cfg->metrics_listen = copy_string(DEFAULT_METRICS_LISTEN);
		return;
	}
	if (!is_object_or_report(&l->r, gateway))
		return;
	CHECK_KEYS(l, gateway, "name", "interfaces", "virtualNetworks", "virtualNetworkGateways",
		   "nat66", "metrics", "limits", "tunnelTcpMss", "serviceTagsFile", "flowLogs", "expressRouteConnections");
	if (!name.value)
		reader_problem(&l->r, name.path, "missing; allowed: " GATEWAY_NAME_ALLOWED);
	else if (!get_string(&l->r, name, &text))
		; /* get_string reported the wrong type */
	else if (gateway_name_problem(text))
		reader_problem(&l->r, name.path, "\"%s\" is not a gateway name: %s; allowed: "
			       GATEWAY_NAME_ALLOWED, reader_shown(&l->r, text),
			       gateway_name_problem(text));
	else
		l->cfg->gateway_name = copy_string(text);
	read_interfaces(l, node_child(&l->r, gateway, "interfaces"));
	read_gateway_vnets(l, node_child(&l->r, gateway, "virtualNetworks"));
	read_tunnel_endpoints(l, node_child(&l->r, gateway, "virtualNetworkGateways"));
	read_express_route_bindings(l, node_child(&l->r, gateway, "expressRouteConnections"));
	get_bool(&l->r, nat66, &l->cfg->nat66);
	read_tunnel_tcp_mss(l, node_child(&l->r, gateway, "tunnelTcpMss"));
	read_metrics(l, node_child(&l->r, gateway, "metrics"));
	read_limits(l, node_child(&l->r, gateway, "limits"));
	read_flow_logs(l, node_child(&l->r, gateway, "flowLogs"));
	check_bound_vnets_disjoint(l, gateway);
}

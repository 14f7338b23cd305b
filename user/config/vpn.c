/* The VPN side of the config: virtual network gateways, local network gateways and the
 * connections (IPsec site-to-site, Vnet2Vnet) between them. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/internal.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define GATEWAY_SUBNET "GatewaySubnet"

static size_t count_kind(const struct loader *l, enum record_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n_records; i++)
		n += l->records[i].kind == kind;
	return n;
}

static bool first_of_name(struct loader *l, size_t index)
{
	const struct record *earlier;

	if (l->record_first[index] == CONFIG_NONE)
		return true;
	earlier = &l->records[l->record_first[index]];
	reader_problem(&l->r, path_key(&l->r, l->records[index].resource.path, "name"),
		       "duplicate %s name \"%s\" (also at %s); allowed: unique names, compared "
		       "without case", record_kind_type(earlier->kind), earlier->name,
		       earlier->resource.path);
	return false;
}

/* ---- virtual network gateways -------------------------------------------------------- */

/* The VNet of a gateway ipConfiguration's subnet, which must be the GatewaySubnet. */
static int gateway_vnet_of(struct loader *l, struct config_vnet_gateway *gw, struct node ipc)
{
	struct node props = node_properties(&l->r, ipc);
	struct node subnet = node_child(&l->r, props, "subnet");
	struct reference ref;
	int vnet;

	if (!subnet.value) {
		reader_problem(&l->r, props.path, "virtual network gateway \"%s\": ipConfiguration "
			       "without subnet; allowed: a reference to the VNet's GatewaySubnet",
			       gw->name);
		return CONFIG_NONE;
	}
	if (!get_reference(&l->r, subnet, &ref))
		return CONFIG_NONE;
	if (ref.n_names != 2) {
		reader_problem(&l->r, subnet.path, "not a subnet reference; allowed: "
			       "\"<vnet>/GatewaySubnet\", resourceId or id");
		return CONFIG_NONE;
	}
	if (strcmp(ref.names[1], GATEWAY_SUBNET)) {
		reader_problem(&l->r, subnet.path, "virtual network gateway \"%s\" is in subnet "
			       "\"%s\"; allowed: the subnet named exactly GatewaySubnet", gw->name,
			       ref.names[1]);
		return CONFIG_NONE;
	}
	vnet = loader_find_named(l, l->cfg->vnets, l->cfg->n_vnets, sizeof(*l->cfg->vnets),
				 ref.names[0]);
	if (vnet == CONFIG_NONE)
		reader_problem(&l->r, subnet.path, "unknown virtual network \"%s\"; allowed: one "
			       "declared in resources", ref.names[0]);
	return vnet;
}

static void read_gateway_ip_configurations(struct loader *l, struct config_vnet_gateway *gw,
					   struct node list)
{
	gw->public_ips = calloc(json_array_size(list.value) + 1, sizeof(*gw->public_ips));
	if (!gw->public_ips || !list.value || !is_array_or_report(&l->r, list))
		return;
	for (size_t c = 0; c < json_array_size(list.value); c++) {
		struct node ipc = node_element(&l->r, list, c);
		struct node pip = node_child(&l->r, node_properties(&l->r, ipc), "publicIPAddress");
		int vnet = gateway_vnet_of(l, gw, ipc);

		if (vnet != CONFIG_NONE && gw->vnet == CONFIG_NONE)
			gw->vnet = vnet;
		else if (vnet != CONFIG_NONE && vnet != gw->vnet)
			reader_problem(&l->r, ipc.path, "ipConfigurations of \"%s\" name different "
				       "virtual networks; allowed: one", gw->name);
		if (pip.value && !json_is_null(pip.value)) {
			int ip = resolve_reference(l, pip, KIND_PUBLIC_IP, l->public_ips,
						   l->n_public_ips, sizeof(*l->public_ips));

			if (ip != CONFIG_NONE && l->public_ips[ip].address.family)
				gw->public_ips[gw->n_public_ips++] = l->public_ips[ip].address;
		}
	}
}

static void attach_gateway_to_vnet(struct loader *l, int g, struct node where)
{
	struct config *cfg = l->cfg;
	struct config_vnet *vnet = &cfg->vnets[cfg->vnet_gateways[g].vnet];

	if (find_named(vnet->subnets, vnet->n_subnets, sizeof(vnet->subnets[0]),
		       GATEWAY_SUBNET) == CONFIG_NONE ||
	    strcmp(vnet->subnets[find_named(vnet->subnets, vnet->n_subnets,
					    sizeof(vnet->subnets[0]), GATEWAY_SUBNET)].name,
		   GATEWAY_SUBNET))
		reader_problem(&l->r, where.path, "virtual network \"%s\" has gateway \"%s\" but no "
			       "subnet named exactly GatewaySubnet; allowed: add one", vnet->name,
			       cfg->vnet_gateways[g].name);
	if (vnet->virtual_network_gateway != CONFIG_NONE)
		reader_problem(&l->r, where.path, "virtual network \"%s\" already has gateway "
			       "\"%s\"; allowed: one virtual network gateway per VNet", vnet->name,
			       cfg->vnet_gateways[vnet->virtual_network_gateway].name);
	else
		vnet->virtual_network_gateway = g;
}

/* bgpSettings.asn: Azure's 65515 unless given; 65516-65520 are Azure's own. */
static void read_gateway_asn(struct loader *l, struct config_vnet_gateway *gw, struct node n)
{
	long long asn = BGP_ASN_AZURE;

	if (n.value && get_int(&l->r, n, 1, 4294967295LL, &asn) && asn >= 65516 && asn <= 65520)
		reader_problem(&l->r, n.path, "%lld is reserved by Azure; allowed: 1-4294967295 "
			       "except 65516-65520 (65515 is Azure's default)", asn);
	gw->bgp_asn = (uint32_t)asn;
}

void build_vnet_gateways(struct loader *l)
{
	struct config *cfg = l->cfg;

	cfg->vnet_gateways = calloc(count_kind(l, KIND_VNET_GATEWAY) + 1,
				    sizeof(*cfg->vnet_gateways));
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct config_vnet_gateway *gw;
		struct node ipcs = node_child(&l->r, rec->props, "ipConfigurations");

		if (rec->kind != KIND_VNET_GATEWAY || !first_of_name(l, i))
			continue;
		gw = &cfg->vnet_gateways[cfg->n_vnet_gateways++];
		gw->name = copy_string(rec->name);
		gw->vnet = CONFIG_NONE;
		get_bool(&l->r, node_child(&l->r, rec->props, "activeActive"), &gw->active_active);
		read_gateway_asn(l, gw, node_child(&l->r, node_child(&l->r, rec->props,
							  "bgpSettings"), "asn"));
		read_gateway_ip_configurations(l, gw, ipcs);
		read_vpn_client_configuration(l, gw, node_child(&l->r, rec->props,
								"vpnClientConfiguration"));
		if (gw->vnet != CONFIG_NONE)
			attach_gateway_to_vnet(l, (int)(cfg->n_vnet_gateways - 1), ipcs);
		else if (!ipcs.value)
			reader_problem(&l->r, rec->props.path, "virtual network gateway \"%s\" has no "
				       "ipConfigurations; allowed: one naming its VNet's GatewaySubnet",
				       gw->name);
	}
}

/* ---- local network gateways ----------------------------------------------------------- */

void build_local_network_gateways(struct loader *l)
{
	struct config *cfg = l->cfg;

	cfg->local_network_gateways = calloc(count_kind(l, KIND_LOCAL_NETWORK_GATEWAY) + 1,
					     sizeof(*cfg->local_network_gateways));
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct config_local_network_gateway *lng;
		struct node ip, space;

		if (rec->kind != KIND_LOCAL_NETWORK_GATEWAY || !first_of_name(l, i))
			continue;
		lng = &cfg->local_network_gateways[cfg->n_local_network_gateways++];
		lng->name = copy_string(rec->name);
		ip = node_child(&l->r, rec->props, "gatewayIpAddress");
		if (ip.value)
			read_address(l, ip, &lng->gateway_ip);
		else if (!json_object_get(rec->props.value, "fqdn"))
			reader_problem(&l->r, ip.path, "missing; allowed: the on-premises VPN "
				       "device's public IP address");
		space = node_child(&l->r, rec->props, "localNetworkAddressSpace");
		lng->n_prefixes = read_prefix_list(l, (struct node){ NULL, "" },
						   node_child(&l->r, space, "addressPrefixes"),
						   &lng->prefixes);
	}
}

/* ---- connections ---------------------------------------------------------------------- */

static const char *const connection_type_names[] = { [CONNECTION_IPSEC] = "IPsec",
						     [CONNECTION_VNET2VNET] = "Vnet2Vnet",
						     "ExpressRoute", "VPNClient" };

/* Azure's allowed values for a custom IPsec/IKE policy. */
static const char *const ipsec_encryptions[] = { "None", "DES", "DES3", "AES128", "AES192",
	"AES256", "GCMAES128", "GCMAES192", "GCMAES256" };
static const char *const ipsec_integrities[] = { "MD5", "SHA1", "SHA256", "GCMAES128",
	"GCMAES192", "GCMAES256" };
static const char *const ike_encryptions[] = { "DES", "DES3", "AES128", "AES192", "AES256",
	"GCMAES128", "GCMAES256" };
static const char *const ike_integrities[] = { "MD5", "SHA1", "SHA256", "SHA384",
	"GCMAES128", "GCMAES256" };
static const char *const dh_groups[] = { "None", "DHGroup1", "DHGroup2", "DHGroup14",
	"DHGroup2048", "DHGroup24", "ECP256", "ECP384" };
static const char *const pfs_groups[] = { "None", "PFS1", "PFS2", "PFS14", "PFS2048", "PFS24",
	"PFSMM", "ECP256", "ECP384" };

static char *read_policy_enum(struct loader *l, struct node policy, const char *key,
			      const char *const *names, size_t count)
{
	struct node n = node_child(&l->r, policy, key);
	int index;

	if (!n.value) {
		reader_problem(&l->r, n.path, "missing; an ipsecPolicy needs every algorithm");
		return NULL;
	}
	if (!read_enum(l, n, names, count, &index))
		return NULL;
	return copy_string(names[index]); /* Azure's spelling, whatever case was written */
}

static void read_ipsec_policies(struct loader *l, struct config_connection *c, struct node list)
{
	if (!list.value || !is_array_or_report(&l->r, list))
		return;
	c->ipsec_policies = calloc(json_array_size(list.value) + 1, sizeof(*c->ipsec_policies));
	if (!c->ipsec_policies)
		return;
	for (size_t i = 0; i < json_array_size(list.value); i++) {
		struct node n = node_element(&l->r, list, i);
		struct config_ipsec_policy *p = &c->ipsec_policies[c->n_ipsec_policies++];
		long long seconds = 27000, kilobytes = 102400000;

		if (!is_object_or_report(&l->r, n))
			continue;
		p->ipsec_encryption = read_policy_enum(l, n, "ipsecEncryption", ipsec_encryptions,
						       COUNT(ipsec_encryptions));
		p->ipsec_integrity = read_policy_enum(l, n, "ipsecIntegrity", ipsec_integrities,
						      COUNT(ipsec_integrities));
		p->ike_encryption = read_policy_enum(l, n, "ikeEncryption", ike_encryptions,
						     COUNT(ike_encryptions));
		p->ike_integrity = read_policy_enum(l, n, "ikeIntegrity", ike_integrities,
						    COUNT(ike_integrities));
		p->dh_group = read_policy_enum(l, n, "dhGroup", dh_groups, COUNT(dh_groups));
		p->pfs_group = read_policy_enum(l, n, "pfsGroup", pfs_groups, COUNT(pfs_groups));
		get_int(&l->r, node_child(&l->r, n, "saLifeTimeSeconds"), 300, 172799, &seconds);
		get_int(&l->r, node_child(&l->r, n, "saDataSizeKilobytes"), 1024, 2147483647,
			&kilobytes);
		p->sa_lifetime_seconds = (int)seconds;
		p->sa_data_size_kilobytes = (int)kilobytes;
	}
}

static const char *const connection_protocols[] = { [CONNECTION_IKEV2] = "IKEv2",
						    [CONNECTION_IKEV1] = "IKEv1" };
static const char *const connection_modes[] = {
	[CONNECTION_MODE_DEFAULT] = "Default", [CONNECTION_MODE_RESPONDER_ONLY] = "ResponderOnly",
	[CONNECTION_MODE_INITIATOR_ONLY] = "InitiatorOnly" };

static bool same_family_pair(const struct config_traffic_selector *ts)
{
	for (size_t i = 0; i < ts->n_local; i++)
		for (size_t k = 0; k < ts->n_remote; k++)
			if (ts->local[i].family == ts->remote[k].family)
				return true;
	return false;
}

/* One trafficSelectorPolicies entry: both lists, each with at least one range, and a
 * local and a remote range of one family (IPsec selects within one). */
static void read_traffic_selector(struct loader *l, struct config_traffic_selector *ts,
				  struct node n)
{
	struct node none = { NULL, "" };
	struct node local = node_child(&l->r, n, "localAddressRanges");
	struct node remote = node_child(&l->r, n, "remoteAddressRanges");

	ts->n_local = read_prefix_list(l, none, local, &ts->local);
	ts->n_remote = read_prefix_list(l, none, remote, &ts->remote);
	if (!ts->n_local || !ts->n_remote)
		reader_problem(&l->r, (!ts->n_local ? local : remote).path, "%s; allowed: a list "
			       "of one or more address ranges (CIDR)", (!ts->n_local ? local :
			       remote).value ? "empty" : "missing");
	else if (!same_family_pair(ts))
		reader_problem(&l->r, n.path, "no local and remote address range of the same "
			       "family; allowed: IPv4 with IPv4, IPv6 with IPv6");
}

static void read_traffic_selectors(struct loader *l, struct config_connection *c,
				   struct node list)
{
	if (!list.value || json_is_null(list.value) || !is_array_or_report(&l->r, list))
		return;
	c->traffic_selectors = calloc(json_array_size(list.value) + 1,
				      sizeof(*c->traffic_selectors));
	if (!c->traffic_selectors)
		return;
	for (size_t i = 0; i < json_array_size(list.value); i++) {
		struct node n = node_element(&l->r, list, i);

		if (!is_object_or_report(&l->r, n))
			continue;
		read_traffic_selector(l, &c->traffic_selectors[c->n_traffic_selectors++], n);
	}
}

/* An optional enum; absent or null: the first name (Azure's default). */
static int read_optional_enum(struct loader *l, struct node props, const char *key,
			      const char *const *names, size_t count)
{
	struct node n = node_child(&l->r, props, key);
	int index = 0;

	if (n.value && !json_is_null(n.value) && !read_enum(l, n, names, count, &index))
		return 0;
	return index;
}

static int required_reference(struct loader *l, struct node props, const char *key,
			      enum record_kind kind, const void *array, size_t count, size_t size,
			      const char *why)
{
	struct node n = node_child(&l->r, props, key);

	if (!n.value || json_is_null(n.value)) {
		reader_problem(&l->r, n.path, "missing; %s", why);
		return CONFIG_NONE;
	}
	return resolve_reference(l, n, kind, array, count, size);
}

static void read_connection_ends(struct loader *l, struct config_connection *c, struct node props)
{
	struct config *cfg = l->cfg;

	c->vnet_gateway1 = required_reference(l, props, "virtualNetworkGateway1", KIND_VNET_GATEWAY,
		cfg->vnet_gateways, cfg->n_vnet_gateways, sizeof(*cfg->vnet_gateways),
		"allowed: a reference to this side's virtual network gateway");
	if (c->type == CONNECTION_EXPRESS_ROUTE)
		c->express_route_circuit = required_reference(l, props, "peer",
			KIND_EXPRESS_ROUTE_CIRCUIT, cfg->express_route_circuits,
			cfg->n_express_route_circuits, sizeof(*cfg->express_route_circuits),
			"an ExpressRoute connection needs its circuit (an expressRouteCircuits "
			"resource)");
	else if (c->type == CONNECTION_IPSEC)
		c->local_network_gateway2 = required_reference(l, props, "localNetworkGateway2",
			KIND_LOCAL_NETWORK_GATEWAY, cfg->local_network_gateways,
			cfg->n_local_network_gateways, sizeof(*cfg->local_network_gateways),
			"an IPsec connection needs the on-premises side's local network gateway");
	else
		c->vnet_gateway2 = required_reference(l, props, "virtualNetworkGateway2",
			KIND_VNET_GATEWAY, cfg->vnet_gateways, cfg->n_vnet_gateways,
			sizeof(*cfg->vnet_gateways), "a Vnet2Vnet connection needs the other "
			"side's virtual network gateway");
	if (c->vnet_gateway2 != CONFIG_NONE && c->vnet_gateway2 == c->vnet_gateway1)
		reader_problem(&l->r, path_key(&l->r, props.path, "virtualNetworkGateway2"),
			       "connection \"%s\" joins a gateway to itself; allowed: two different "
			       "gateways", c->name);
}

void build_connections(struct loader *l)
{
	struct config *cfg = l->cfg;

	cfg->connections = calloc(count_kind(l, KIND_CONNECTION) + 1, sizeof(*cfg->connections));
	for (size_t i = 0; i < l->n_records; i++) {
		const struct record *rec = &l->records[i];
		struct node type_node = node_child(&l->r, rec->props, "connectionType");
		struct config_connection *c;
		const char *key = NULL;
		long long dpd = 45;
		int type;

		if (rec->kind != KIND_CONNECTION || !first_of_name(l, i))
			continue;
		if (!type_node.value) {
			reader_problem(&l->r, type_node.path, "missing; allowed: IPsec, Vnet2Vnet, "
				       "ExpressRoute");
			continue;
		}
		if (!read_enum(l, type_node, connection_type_names, COUNT(connection_type_names),
			       &type))
			continue;
		if (type == CONNECTION_VPN_CLIENT) {
			reader_problem(&l->r, type_node.path, "VPNClient connections are not "
				       "resources of their own; allowed: IPsec, Vnet2Vnet, ExpressRoute (point-to-site "
				       "clients come from the virtual network gateway's "
				       "vpnClientConfiguration)");
			continue;
		}
		c = &cfg->connections[cfg->n_connections++];
		c->name = copy_string(rec->name);
		c->type = (enum connection_type)type;
		c->vnet_gateway1 = c->vnet_gateway2 = c->local_network_gateway2 = CONFIG_NONE;
		c->express_route_circuit = CONFIG_NONE;
		read_connection_ends(l, c, rec->props);
		if (get_string(&l->r, node_child(&l->r, rec->props, "sharedKey"), &key)) {
			if (!strcmp(key, "FILL-IN")) /* the importer's stand-in for a secret */
				reader_problem(&l->r, path_key(&l->r, rec->props.path, "sharedKey"),
					       "still FILL-IN; allowed: the pre-shared key (import "
					       "with --param-file NAME=PATH or --param NAME=KEY, or write it here)");
			c->shared_key = copy_string(key);
		}
		read_ipsec_policies(l, c, node_child(&l->r, rec->props, "ipsecPolicies"));
		get_bool(&l->r, node_child(&l->r, rec->props, "usePolicyBasedTrafficSelectors"),
			 &c->use_policy_based_traffic_selectors);
		get_int(&l->r, node_child(&l->r, rec->props, "dpdTimeoutSeconds"), 9, 3600, &dpd);
		c->dpd_timeout_seconds = (int)dpd;
		c->protocol = (enum connection_protocol)read_optional_enum(l, rec->props,
			"connectionProtocol", connection_protocols, COUNT(connection_protocols));
		c->mode = (enum connection_mode)read_optional_enum(l, rec->props, "connectionMode",
			connection_modes, COUNT(connection_modes));
		read_traffic_selectors(l, c, node_child(&l->r, rec->props,
							"trafficSelectorPolicies"));
	}
}

/* What Azure decides only at deployment, as far as the inputs determine it: the private
 * address of a NIC whose ipConfiguration says Dynamic, and the tunnel endpoint each VPN
 * gateway needs on this box. Without these a NIC's NSG could never match (the VM would be
 * unfiltered) and every IPsec or Vnet2Vnet connection would stay inert. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "import/internal.h"

#define NET "Microsoft.Network/"

bool import_prefix_range(const char *prefix, uint32_t *first, uint32_t *last)
{
	char net[INET_ADDRSTRLEN];
	const char *slash = strchr(prefix, '/');
	struct in_addr a;
	char *end;
	long len;

	if (!slash || (size_t)(slash - prefix) >= sizeof(net))
		return false;
	memcpy(net, prefix, (size_t)(slash - prefix));
	net[slash - prefix] = '\0';
	len = strtol(slash + 1, &end, 10);
	if (inet_pton(AF_INET, net, &a) != 1 || *end || !slash[1] || len < 0 || len > 32)
		return false;
	*first = ntohl(a.s_addr) & (len ? ~0u << (32 - len) : 0);
	*last = *first | (len ? ~(~0u << (32 - len)) : ~0u);
	return true;
}

void import_address_text(uint32_t address, char *out, size_t size)
{
	struct in_addr a = { .s_addr = htonl(address) };

	inet_ntop(AF_INET, &a, out, (socklen_t)size);
}

/* Azure keeps the first four addresses of a subnet (network, gateway, two for DNS) and
 * the last (broadcast); it gives the lowest free one of the rest, from network + 4. */
bool import_first_free_address(const char *prefix, json_t *taken, char *out, size_t size)
{
	uint32_t first, last;

	if (!import_prefix_range(prefix, &first, &last) || last - first < 5)
		return false;
	for (uint32_t a = first + 4; a < last; a++) {
		import_address_text(a, out, size);
		if (!json_object_get(taken, out))
			return true;
	}
	return false;
}

char *import_subnet_key(json_t *ipc_props)
{
	const char *id = json_string_value(json_object_get(json_object_get(ipc_props, "subnet"),
							   "id"));
	char *sub = NULL, *group = NULL, *type = NULL, *name = NULL, *key = NULL;

	if (id && import_parse_id(id, &sub, &group, &type, &name)) {
		if (!strcasecmp(type, NET "virtualNetworks/subnets"))
			key = import_lower(name);
		free(sub);
		free(group);
		free(type);
		free(name);
	}
	return key;
}

/* "vnet/subnet" (lower case) -> {name: "vnet/subnet" as declared, prefix: its first IPv4
 * prefix}, from the imported VNets. */
static json_t *subnet_prefixes(struct importer *imp)
{
	json_t *out = json_object(), *record, *subnet;
	const char *key;
	size_t i;

	json_object_foreach(imp->resources, key, record) {
		const char *vnet = json_string_value(json_object_get(record, "name"));

		if (strcmp(json_string_value(json_object_get(record, "type")), NET "virtualNetworks"))
			continue;
		json_array_foreach(json_object_get(json_object_get(record, "properties"), "subnets"),
				   i, subnet) {
			json_t *props = json_object_get(subnet, "properties");
			const char *prefix = json_string_value(json_object_get(props, "addressPrefix"));
			const char *name = json_string_value(json_object_get(subnet, "name"));
			json_t *list = json_object_get(props, "addressPrefixes"), *p;
			size_t j;
			char *k = NULL, *lower;

			json_array_foreach(list, j, p)
				if (!prefix && json_is_string(p) && !strchr(json_string_value(p), ':'))
					prefix = json_string_value(p);
			if (!name || !prefix || asprintf(&k, "%s/%s", vnet, name) < 0)
				continue;
			lower = import_lower(k);
			json_object_set_new(out, lower, json_pack("{s:s, s:s}", "name", k,
								  "prefix", prefix));
			free(lower);
			free(k);
		}
	}
	return out;
}

bool import_ipc_is_dynamic(json_t *ipc_props)
{
	const char *method = json_string_value(json_object_get(ipc_props,
							       "privateIPAllocationMethod"));
	const char *version = json_string_value(json_object_get(ipc_props,
								"privateIPAddressVersion"));
	json_t *address = json_object_get(ipc_props, "privateIPAddress");

	/* Dynamic is Azure's default; IPv6 addresses are not assigned here. */
	return (!method || !strcasecmp(method, "Dynamic")) &&
	       (!version || !strcasecmp(version, "IPv4")) &&
	       (!address || json_is_null(address) ||
		(json_is_string(address) && !json_string_length(address)));
}

/* Each NIC's ipConfigurations in the order the inputs declare them (the collector keeps
 * that order), as [{nic, index, properties}] borrowing the properties. */
static json_t *nic_ip_configurations(struct importer *imp)
{
	json_t *out = json_array(), *record, *ipc;
	const char *key;
	size_t i;

	json_object_foreach(imp->resources, key, record) {
		json_t *props = json_object_get(record, "properties");

		if (strcmp(json_string_value(json_object_get(record, "type")), NET "networkInterfaces"))
			continue;
		json_array_foreach(json_object_get(props, "ipConfigurations"), i, ipc)
			if (json_is_object(json_object_get(ipc, "properties")))
				json_array_append_new(out, json_pack("{s:O, s:I, s:O}", "nic",
					json_object_get(record, "name"), "index", (json_int_t)i,
					"properties", json_object_get(ipc, "properties")));
	}
	return out;
}

/* subnet key -> {address: true} of every address given statically. */
static json_t *static_addresses(json_t *ipcs)
{
	json_t *taken = json_object(), *ipc;
	size_t i;

	json_array_foreach(ipcs, i, ipc) {
		json_t *props = json_object_get(ipc, "properties");
		const char *address = json_string_value(json_object_get(props, "privateIPAddress"));
		char *subnet = import_subnet_key(props);

		if (subnet && address && *address) {
			if (!json_object_get(taken, subnet))
				json_object_set_new(taken, subnet, json_object());
			json_object_set_new(json_object_get(taken, subnet), address, json_true());
		}
		free(subnet);
	}
	return taken;
}

void import_assign_dynamic_addresses(struct importer *imp)
{
	json_t *prefixes = subnet_prefixes(imp), *ipcs = nic_ip_configurations(imp), *ipc;
	json_t *taken = static_addresses(ipcs);
	size_t n;

	json_array_foreach(ipcs, n, ipc) {
		json_t *props = json_object_get(ipc, "properties");
		const char *nic = json_string_value(json_object_get(ipc, "nic"));
		json_int_t i = json_integer_value(json_object_get(ipc, "index"));
		char *subnet = import_subnet_key(props);
		json_t *known = subnet ? json_object_get(prefixes, subnet) : NULL;
		const char *prefix = json_string_value(json_object_get(known, "prefix"));
		const char *shown = known ? json_string_value(json_object_get(known, "name")) : subnet;
		char address[INET_ADDRSTRLEN];

		if (!subnet || !import_ipc_is_dynamic(props)) {
			free(subnet);
			continue;
		}
		if (!json_object_get(taken, subnet))
			json_object_set_new(taken, subnet, json_object());
		if (!prefix) {
			import_warn(imp, "network interface '%s' ipConfigurations[%" JSON_INTEGER_FORMAT
				    "]: a Dynamic address in subnet %s, whose IPv4 prefix is not in "
				    "the input; no address, so its NSG cannot apply (write "
				    "privateIPAddress)", nic, i, shown);
		} else if (!import_first_free_address(prefix, json_object_get(taken, subnet),
						      address, sizeof(address))) {
			import_warn(imp, "network interface '%s' ipConfigurations[%" JSON_INTEGER_FORMAT
				    "]: subnet %s %s has no free address left; no address", nic, i,
				    shown, prefix);
		} else {
			json_object_set_new(json_object_get(taken, subnet), address, json_true());
			json_object_set_new(props, "privateIPAddress", json_string(address));
			import_warn(imp, "network interface '%s' ipConfigurations[%" JSON_INTEGER_FORMAT
				    "]: Dynamic address %s, the first free one from .4 of subnet %s "
				    "%s in the order the input declares its NICs, as Azure assigns "
				    "it; check it after deploying", nic, i, address, shown, prefix);
		}
		free(subnet);
	}
	json_decref(prefixes);
	json_decref(ipcs);
	json_decref(taken);
}

/* gateway.virtualNetworkGateways: one {name, address: FILL-IN} per VPN gateway. */
json_t *import_gateway_bindings(struct importer *imp)
{
	json_t *out = json_array(), *record;
	const char *key;

	json_object_foreach(imp->resources, key, record) {
		const char *type = json_string_value(json_object_get(record, "type"));
		const char *gateway_type = json_string_value(json_object_get(
			json_object_get(record, "properties"), "gatewayType"));

		if (strcmp(type, NET "virtualNetworkGateways") ||
		    (gateway_type && strcasecmp(gateway_type, "Vpn")))
			continue;
		json_array_append_new(out, json_pack("{s:s, s:s}", "name",
						     json_string_value(json_object_get(record, "name")),
						     "address", "FILL-IN"));
	}
	return out;
}

/* Shared by the parts of the config reader: the flat list of resource records and the
 * helpers each part uses. Not part of the config API. */
#ifndef VNET_XDP_CONFIG_INTERNAL_H
#define VNET_XDP_CONFIG_INTERNAL_H

#include "config.h"
#include "config_json.h"

enum record_kind {
	KIND_OTHER = 0, /* a resource vnet-xdp does not model: skipped */
	KIND_VNET, KIND_SUBNET, KIND_PEERING,
	KIND_NSG, KIND_SECURITY_RULE, KIND_DEFAULT_SECURITY_RULE,
	KIND_ROUTE_TABLE, KIND_ROUTE,
	KIND_NAT_GATEWAY, KIND_PUBLIC_IP, KIND_NIC,
	KIND_LOCAL_NETWORK_GATEWAY, KIND_VNET_GATEWAY, KIND_CONNECTION,
};

#define NAME_MAX_LEN 128

/* One resource of `resources`, a child declared inside a parent's `resources`, or a
 * top-level child ("hub/apps" of type virtualNetworks/subnets). */
struct record {
	enum record_kind kind;
	char parent[NAME_MAX_LEN]; /* children only */
	char name[NAME_MAX_LEN];
	struct node resource;
	struct node props;
};

struct public_ip {
	char *name;
	struct ip_address address; /* family 0 when the resource has no ipAddress yet */
};

struct loader {
	struct reader r;
	struct config *cfg;
	struct record *records;
	size_t n_records;
	struct public_ip *public_ips;
	size_t n_public_ips;
};

const char *record_kind_type(enum record_kind kind); /* "virtualNetworks/subnets" */

/* Index of the resource named `name` among `count` elements of `size` bytes whose first
 * member is a `char *name` (Azure names are case-insensitive), or CONFIG_NONE. */
int find_named(const void *array, size_t count, size_t size, const char *name);

/* Resolves a reference to a top-level resource of `kind`, reporting an unknown name or
 * a reference to another type. CONFIG_NONE when absent or wrong. */
int resolve_reference(struct loader *l, struct node n, enum record_kind kind,
		      const void *array, size_t count, size_t size);
/* A subnet reference: vnet and subnet index. false (reported) when wrong. */
bool resolve_subnet_reference(struct loader *l, struct node n, int *vnet, int *subnet);

char *copy_string(const char *s);

/* Address fields: report "what is wrong; what is allowed" and return false. */
bool read_prefix(struct loader *l, struct node n, struct ip_prefix *out);
bool read_address(struct loader *l, struct node n, struct ip_address *out);
/* addressPrefix and/or addressPrefixes (either may be missing). Returns the count. */
size_t read_prefix_list(struct loader *l, struct node single, struct node plural,
			struct ip_prefix **out);
const char *prefix_text(const struct ip_prefix *p, char *buf, size_t size);

/* Parts of config_load, in the order they run. */
int records_collect(struct loader *l, struct node resources);
void build_security_groups(struct loader *l);
void build_route_tables(struct loader *l);
void build_public_ips(struct loader *l);
void build_nat_gateways(struct loader *l);
void build_virtual_networks(struct loader *l);
void build_vnet_gateways(struct loader *l);
void build_local_network_gateways(struct loader *l);
void build_connections(struct loader *l);
void build_network_interfaces(struct loader *l);
void build_peerings(struct loader *l);
void build_gateway_binding(struct loader *l, struct node gateway);

/* An enum value written as one of `names` (case-insensitive, as Azure accepts them). */
bool read_enum(struct loader *l, struct node n, const char *const *names, size_t count,
	       int *out);

#endif

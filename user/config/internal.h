/* Shared by the parts of the config reader: the flat list of resource records and the
 * helpers each part uses. Not part of the config API. */
#ifndef VNET_XDP_CONFIG_INTERNAL_H
#define VNET_XDP_CONFIG_INTERNAL_H

#include "config/config.h"
#include "config/json.h"

enum record_kind {
	KIND_OTHER = 0, /* a resource vnet-xdp does not model: skipped */
	KIND_VNET, KIND_SUBNET, KIND_PEERING,
	KIND_NSG, KIND_SECURITY_RULE, KIND_DEFAULT_SECURITY_RULE,
	KIND_ROUTE_TABLE, KIND_ROUTE,
	KIND_NAT_GATEWAY, KIND_PUBLIC_IP, KIND_NIC,
	KIND_LOCAL_NETWORK_GATEWAY, KIND_VNET_GATEWAY, KIND_CONNECTION,
	KIND_APPLICATION_SECURITY_GROUP,
	KIND_EXPRESS_ROUTE_CIRCUIT,
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

/* Names of one array sorted for lookups (Azure names compare without case). */
struct name_index {
	const void *array;
	size_t count, size;
	size_t *order;
};

#define LOADER_NAME_INDEXES 8

struct loader {
	struct reader r;
	struct config *cfg;
	struct record *records;
	size_t n_records, cap_records;
	int *record_first; /* per record: the first record of its type and name, or CONFIG_NONE */
	size_t *children;  /* child records sorted by kind, parent (without case), position */
	size_t n_children;
	struct name_index name_indexes[LOADER_NAME_INDEXES]; /* of the arrays looked up most */
	struct name_index *subnet_indexes; /* per VNet, built at its first lookup */
	struct public_ip *public_ips;
	size_t n_public_ips;
	json_t *service_tags; /* lower-case tag name -> its values[] element, while reading */
	const char *service_tags_path; /* gateway.serviceTagsFile, for messages */
	struct asg_rule *asg_rules; /* rules naming ASGs, checked once NICs have joined them */
	size_t n_asg_rules;
};

/* A rule that names application security groups, and where it was written. */
struct asg_rule {
	size_t nsg, rule;
	const char *path;
};

const char *record_kind_type(enum record_kind kind); /* "virtualNetworks/subnets" */

/* Index of the resource named `name` among `count` elements of `size` bytes whose first
 * member is a `char *name` (Azure names are case-insensitive), or CONFIG_NONE. */
int find_named(const void *array, size_t count, size_t size, const char *name);

/* find_named for arrays that are complete (references, parents): a sorted index kept by
 * the loader, so that n lookups cost n log n rather than n squared. */
int loader_find_named(struct loader *l, const void *array, size_t count, size_t size,
		      const char *name);

/* The subnet of cfg->vnets[vnet] named `name`, or CONFIG_NONE, by the VNet's own index
 * (the subnets must be complete). */
int loader_find_subnet(struct loader *l, int vnet, const char *name);

/* For each of `count` items, the index of the first earlier item equal to it, or
 * CONFIG_NONE in first[i]: one sort of the indices and a look at neighbours instead of
 * comparing every pair. `compare` orders items a and b of ctx. 0 or -ENOMEM. */
int find_duplicates(size_t count, int (*compare)(const void *ctx, size_t a, size_t b),
		    const void *ctx, int *first);
/* The same for names compared without case; a NULL name equals nothing. */
int find_duplicate_names(const char *const *names, size_t count, int *first);

/* The record that `index` repeats (same type, parent and name), reported, or false when
 * it is the first of its name. */
bool record_is_duplicate(struct loader *l, size_t index);

/* Children of one parent record: those written inline (`inline_key` in the parent's
 * properties) and those declared as resources of their own, in that order. `each` gets
 * every one that has a name, with `duplicate` set when an earlier child has its name;
 * an element without a name is reported as `missing_name` says. */
typedef void (*child_fn)(struct loader *l, struct node child, const char *name,
			 bool duplicate, void *ctx);
struct children {
	const char **names;
	int *first; /* find_duplicate_names of names */
	size_t n;
};
int children_list(struct loader *l, const struct record *parent, const char *inline_key,
		  enum record_kind kind, struct children *out); /* quiet; 0 or -ENOMEM */
void children_each(struct loader *l, const struct record *parent, const char *inline_key,
		   enum record_kind kind, const struct children *list,
		   const char *missing_name, child_fn each, void *ctx);
void children_free(struct children *list);

/* Prefixes of several owners (subnets, VNets, or one each) checked for overlap in one
 * sort: each prefix that lies inside, or equals, a prefix of another owner is paired
 * with the nearest such. Pairs come in the order of the later prefix's declaration
 * (owner, then index), then the earlier's, as a comparison of every pair would find
 * them. */
struct owned_prefix {
	struct ip_prefix prefix;
	size_t owner, index;
};
struct prefix_overlap {
	size_t later, earlier; /* indices into the items */
};
int prefix_overlaps(const struct owned_prefix *items, size_t count,
		    struct prefix_overlap **out, size_t *n_out); /* 0 or -ENOMEM */

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
void build_application_security_groups(struct loader *l);
void load_service_tags(struct loader *l, struct node gateway);
/* A service tag of the tag file into *out; false (reported at n) when it has none. */
bool resolve_service_tag(struct loader *l, struct node n, const char *name,
			 struct nsg_address *out);
/* Rule `rule` of NSG `nsg` names ASGs: checked by check_application_security_group_rules. */
int note_application_security_group_rule(struct loader *l, size_t nsg, size_t rule,
					 const char *path);
/* ipConfigurations[].applicationSecurityGroups: the NIC joins each group with `address`
 * (NULL without one), the group's VNet being the NIC's. */
void read_nic_application_security_groups(struct loader *l, struct config_nic *nic,
					  struct node list, int vnet,
					  const struct ip_address *address);
void build_security_groups(struct loader *l);
void build_route_tables(struct loader *l);
void build_public_ips(struct loader *l);
void build_nat_gateways(struct loader *l);
void build_virtual_networks(struct loader *l);
void build_vnet_gateways(struct loader *l);
void build_local_network_gateways(struct loader *l);
void build_express_route_circuits(struct loader *l); /* before the connections */
void build_connections(struct loader *l);
/* A gateway's vpnClientConfiguration into gw->vpn_client (config_vpn_client.c). */
void read_vpn_client_configuration(struct loader *l, struct config_vnet_gateway *gw,
				   struct node config);
/* After the VNets and sites: no client pool overlaps one of them or another pool. */
void check_vpn_client_pools(struct loader *l);
void build_network_interfaces(struct loader *l);
void build_peerings(struct loader *l);
/* After the NICs: the ASGs of one rule have their NICs in one VNet, as Azure requires. */
void check_application_security_group_rules(struct loader *l);
void build_gateway_binding(struct loader *l, struct node gateway);
/* gateway.expressRouteConnections (config/express_route.c), from build_gateway_binding. */
void read_express_route_bindings(struct loader *l, struct node list);
/* After the model: a warning for each use of what the gateway does not enforce. */
void report_unenforced(struct loader *l);

/* An enum value written as one of `names` (case-insensitive, as Azure accepts them). */
bool read_enum(struct loader *l, struct node n, const char *const *names, size_t count,
	       int *out);

#endif

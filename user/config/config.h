/* Config model: the gateway binding plus the Azure resources it refers to, with every
 * reference resolved to an index. Built by config_load(), which also validates it. */
#ifndef VNET_XDP_CONFIG_H
#define VNET_XDP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define CONFIG_NONE (-1) /* an unset index */

struct ip_prefix {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t len;    /* prefix length in bits */
	uint8_t addr[16]; /* network byte order; IPv4 in the first 4 bytes, host bits zero */
};

struct ip_address {
	uint8_t family; /* 0 when unset */
	uint8_t addr[16];
};

struct config_subnet {
	char *name;
	struct ip_prefix *prefixes; /* addressPrefix and/or addressPrefixes */
	size_t n_prefixes;
	int network_security_group; /* index into config.nsgs or CONFIG_NONE */
	int route_table;            /* index into config.route_tables or CONFIG_NONE */
	int nat_gateway;            /* index into config.nat_gateways or CONFIG_NONE */
};

/* Azure's peering states: Initiated while only this side has a peering, Connected when
 * both have, Disconnected when the remote side's was deleted (Azure keeps this side so
 * until it is recreated). Traffic flows only when Connected. */
enum peering_state { PEERING_INITIATED = 0, PEERING_CONNECTED, PEERING_DISCONNECTED };
const char *peering_state_name(enum peering_state state);

struct config_peering {
	char *name;
	char *remote_name;  /* name of the remote VNet as written (last id segment) */
	int remote_vnet;    /* index into config.vnets, CONFIG_NONE when not in this config */
	bool allow_virtual_network_access; /* Azure default: true */
	bool allow_forwarded_traffic;      /* default false */
	bool allow_gateway_transit;        /* default false */
	bool use_remote_gateways;          /* default false */
	enum peering_state state;
	enum peering_state stated; /* peeringState as the JSON gives it (Initiated if absent) */
	bool connected; /* state == PEERING_CONNECTED: traffic may flow, per direction as the
			 * receiving side's allowVirtualNetworkAccess says */
};

struct config_vnet {
	char *name;
	struct ip_prefix *prefixes; /* addressSpace.addressPrefixes */
	size_t n_prefixes;
	struct config_subnet *subnets;
	size_t n_subnets;
	struct config_peering *peerings;
	size_t n_peerings;
	int virtual_network_gateway; /* index into config.vnet_gateways or CONFIG_NONE */
};

enum nsg_direction { NSG_INBOUND = 0, NSG_OUTBOUND = 1 };
enum nsg_access { NSG_ALLOW = 0, NSG_DENY = 1 };
enum nsg_protocol { NSG_PROTO_ANY = 0, NSG_PROTO_TCP, NSG_PROTO_UDP, NSG_PROTO_ICMP,
		    NSG_PROTO_ESP, NSG_PROTO_AH };

struct port_range { uint16_t from, to; };

/* A set of addresses named once and used by rules: an application security group (its
 * member NICs' addresses) or a service tag of gateway.serviceTagsFile. */
struct config_address_group {
	char *name;
	struct ip_prefix *prefixes;
	size_t n_prefixes;
	int vnet; /* ASGs: the VNet of their NICs, CONFIG_NONE while they have none */
};

/* An address of a rule: a CIDR, "*", a built-in service tag, a service tag of the tag
 * file or an application security group (the last two name a config_address_group). */
enum nsg_address_kind { NSG_ADDR_ANY = 0, NSG_ADDR_PREFIX, NSG_ADDR_TAG_VIRTUAL_NETWORK,
			NSG_ADDR_TAG_INTERNET, NSG_ADDR_TAG_AZURE_LOAD_BALANCER,
			NSG_ADDR_SERVICE_TAG, NSG_ADDR_APPLICATION_SECURITY_GROUP };
struct nsg_address {
	enum nsg_address_kind kind;
	struct ip_prefix prefix; /* NSG_ADDR_PREFIX */
	int group; /* index into config.service_tags or config.application_security_groups */
};

struct config_security_rule {
	char *name;
	int priority;
	enum nsg_direction direction;
	enum nsg_access access;
	enum nsg_protocol protocol;
	struct nsg_address *sources, *destinations;
	size_t n_sources, n_destinations;
	struct port_range *source_ports, *destination_ports;
	size_t n_source_ports, n_destination_ports;
	bool is_default; /* one of Azure's six default rules */
};

struct config_nsg {
	char *name;
	struct config_security_rule *rules; /* securityRules then the six default rules */
	size_t n_rules;
	bool flush_connection;
};

enum route_next_hop { NEXT_HOP_VIRTUAL_NETWORK_GATEWAY = 0, NEXT_HOP_VNET_LOCAL,
		      NEXT_HOP_INTERNET, NEXT_HOP_VIRTUAL_APPLIANCE, NEXT_HOP_NONE };
struct config_route {
	char *name;
	struct ip_prefix prefix;
	enum route_next_hop next_hop_type;
	struct ip_address next_hop_ip; /* VirtualAppliance only */
};
struct config_route_table {
	char *name;
	struct config_route *routes;
	size_t n_routes;
	bool disable_bgp_route_propagation;
};

struct config_nat_gateway {
	char *name;
	struct ip_address *public_ips; /* resolved from publicIPAddresses' ipAddress */
	size_t n_public_ips;
	int idle_timeout_minutes;
};

struct config_nic {
	char *name;
	struct ip_address *addresses; /* ipConfigurations[].privateIPAddress */
	size_t n_addresses;
	int network_security_group; /* CONFIG_NONE when unset */
	int vnet, subnet;           /* from ipConfigurations[0].subnet, or CONFIG_NONE */
	int *application_security_groups; /* ipConfigurations[].applicationSecurityGroups */
	size_t n_application_security_groups;
	bool enable_ip_forwarding;  /* forwards packets whose addresses are not its own (an NVA) */
	bool has_mac;               /* macAddress given: the gateway knows its frames by it */
	uint8_t mac[6];
};

struct config_local_network_gateway {
	char *name;
	struct ip_address gateway_ip;
	struct ip_prefix *prefixes; /* localNetworkAddressSpace.addressPrefixes */
	size_t n_prefixes;
};

enum connection_type { CONNECTION_IPSEC = 0, CONNECTION_VNET2VNET,
		       CONNECTION_EXPRESS_ROUTE = 2, /* private peering of a circuit (peer) */
		       CONNECTION_VPN_CLIENT = 3 /* a gateway's point-to-site clients */ };
struct config_ipsec_policy {
	char *ipsec_encryption, *ipsec_integrity, *ike_encryption, *ike_integrity, *dh_group,
		*pfs_group;
	int sa_lifetime_seconds, sa_data_size_kilobytes;
};
/* connectionProtocol: the IKE version. */
enum connection_protocol { CONNECTION_IKEV2 = 0, CONNECTION_IKEV1 };
/* connectionMode: who may start the IKE SA. */
enum connection_mode {
	CONNECTION_MODE_DEFAULT = 0,    /* this side initiates and responds */
	CONNECTION_MODE_RESPONDER_ONLY, /* never initiates: the peer must */
	CONNECTION_MODE_INITIATOR_ONLY, /* initiates; the peer's own initiation is refused */
};
/* One trafficSelectorPolicies entry: the tunnel carries what goes between any of the
 * local ranges (this side's VNet) and any of the remote ranges (the peer's). */
struct config_traffic_selector {
	struct ip_prefix *local, *remote;
	size_t n_local, n_remote;
};
struct config_connection {
	char *name;
	enum connection_type type;
	int vnet_gateway1;      /* index into vnet_gateways */
	int vnet_gateway2;      /* Vnet2Vnet: index, else CONFIG_NONE */
	int local_network_gateway2; /* IPsec: index, else CONFIG_NONE */
	int express_route_circuit;  /* ExpressRoute: index of `peer`, else CONFIG_NONE */
	char *shared_key;       /* never print it */
	struct config_ipsec_policy *ipsec_policies;
	size_t n_ipsec_policies;
	bool use_policy_based_traffic_selectors;
	int dpd_timeout_seconds;
	enum connection_protocol protocol;
	enum connection_mode mode;
	struct config_traffic_selector *traffic_selectors; /* trafficSelectorPolicies */
	size_t n_traffic_selectors;
};

/* vpnClientConfiguration of a virtual network gateway: point-to-site clients over IKEv2,
 * authenticated by certificates a root of the list signed and not revoked. */
#define SHA1_LEN 20
struct config_vpn_client {
	struct ip_prefix *pool;  /* vpnClientAddressPool.addressPrefixes: IPv4, the clients'
				  * virtual addresses */
	size_t n_pool;
	char **root_names;       /* vpnClientRootCertificates[].name */
	unsigned char **roots;   /* their publicCertData decoded: DER */
	size_t *root_lengths;
	size_t n_roots;
	uint8_t (*revoked)[SHA1_LEN]; /* vpnClientRevokedCertificates[].properties.thumbprint */
	size_t n_revoked;
	/* gateway.virtualNetworkGateways[]: this side's own certificate (PEM) and its private
	 * key (PEM, a file only its owner may read), which clients authenticate it by */
	char *server_certificate, *server_key;
	/* What the tunnel code needs of a connection: IKEv2, never initiated (clients
	 * start), Azure's P2S offers, named like the gateway. */
	struct config_connection connection;
};

/* An expressRouteCircuits resource: what vnet-xdp uses of it is its private peering. */
#define BGP_ASN_AZURE 65515u /* a VNet gateway's ASN unless bgpSettings.asn says otherwise */
struct config_express_route_circuit {
	char *name;
	bool has_private_peering;       /* a peerings[] element of type AzurePrivatePeering */
	uint32_t peer_asn;              /* the provider's (on-premises) ASN */
	struct ip_prefix primary, secondary; /* /30s: .1 the provider's, .2 Microsoft's */
	uint16_t vlan_id;
};

/* gateway.expressRouteConnections[]: an ExpressRoute connection's link on this box. */
enum express_route_link { EXPRESS_ROUTE_PRIMARY = 0, EXPRESS_ROUTE_SECONDARY };
struct config_express_route_binding {
	int connection;                 /* index into connections (type ExpressRoute) */
	char *interface;                /* the 802.1Q VLAN device facing the provider */
	enum express_route_link link;
	uint16_t hold_time_seconds;     /* 3..65535, default 180 as Azure */
};

const char *express_route_link_name(enum express_route_link link); /* "Primary" */

struct config_vnet_gateway {
	char *name;
	uint32_t bgp_asn;           /* bgpSettings.asn, default BGP_ASN_AZURE */
	struct config_vpn_client *vpn_client; /* NULL without vpnClientConfiguration */
	int vnet;   /* VNet of the GatewaySubnet its ipConfiguration names */
	bool active_active;
	struct ip_address *public_ips; /* ipConfigurations[].publicIPAddress, where known */
	size_t n_public_ips;
	struct ip_address local_address; /* gateway.virtualNetworkGateways[].address: this
					  * box's tunnel endpoint for it; family 0 when the
					  * gateway is not on this box */
};


enum gateway_iface_role { IFACE_VNET = 0, IFACE_UPLINK = 1 };
struct config_gateway_iface {
	char *name;             /* Linux interface name */
	enum gateway_iface_role role;
	int vnet;               /* IFACE_VNET: index into vnets */
	int subnet;             /* index into vnets[vnet].subnets or CONFIG_NONE (whole VNet) */
};

struct config_gateway_vnet {
	int vnet;               /* index into vnets */
	struct ip_address vip;  /* public VIP for outbound NAT; family 0 when unset (= vips[0]) */
	struct ip_address *vips; /* "vip" and "vips" together: several VIPs pool their ports */
	size_t n_vips;
};

struct config_limits {
	uint32_t flow_table_size;        /* default FLOW_TABLE_ENTRIES_DEFAULT */
	uint16_t snat_port_min, snat_port_max; /* default 1024-65535 */
	uint32_t tcp_idle_timeout_seconds;     /* FLOW_*_TIMEOUT_DEFAULT */
	uint32_t udp_idle_timeout_seconds;     /* FLOW_*_TIMEOUT_DEFAULT */
	uint32_t icmp_idle_timeout_seconds;    /* FLOW_*_TIMEOUT_DEFAULT */
	uint32_t tcp_transitory_timeout_seconds; /* half-open and closing TCP */
	uint32_t snat_table_size;        /* SNAT mappings, default SNAT_TABLE_ENTRIES_DEFAULT */
	uint32_t snat_mappings_per_vm;   /* concurrent SNAT mappings of one VM, 0: no limit */
};

/* gateway.flowLogs: `serve` writes Azure VNet flow log documents (user/observe/flow_log.c). */
#define FLOW_LOG_DEFAULT_DIRECTORY "/var/log/vnet-xdp/flows"
struct config_flow_logs {
	bool enabled;                    /* default true when the section is given */
	char *directory;                 /* absolute, no "..": default FLOW_LOG_DEFAULT_DIRECTORY */
	uint32_t interval_seconds;       /* default 60, 1-3600 */
	uint32_t max_megabytes;          /* default 256: the oldest hours go beyond it */
	uint32_t denied_per_second;      /* default 100: new denied tuples per second */
};

/* What config_load found when it opened the file (fstat of the descriptor it read), for
 * the check of a file holding a sharedKey. All zero for a document read from memory. */
struct config_source {
	bool regular_file;
	bool via_symlink;
	uid_t owner;
	mode_t mode;
};

struct config {
	char *path;
	struct config_source source;
	size_t n_unenforced; /* uses of what is accepted but not enforced, each warned of */
	char *gateway_name;
	struct config_gateway_iface *ifaces;
	size_t n_ifaces;
	struct config_gateway_vnet *gateway_vnets;
	size_t n_gateway_vnets;
	char *metrics_listen;            /* default "127.0.0.1:9469" */
	bool nat66;                      /* gateway.nat66: SNAT IPv6 too (default false) */
	uint16_t tunnel_tcp_mss;         /* gateway.tunnelTcpMss: TCP MSS clamped to (1350) */
	struct config_limits limits;
	struct config_flow_logs flow_logs;

	struct config_vnet *vnets;
	size_t n_vnets;
	struct config_nsg *nsgs;
	size_t n_nsgs;
	struct config_address_group *application_security_groups;
	size_t n_application_security_groups;
	char *service_tags_file;         /* gateway.serviceTagsFile as resolved, or NULL */
	struct config_address_group *service_tags; /* the tags of that file that rules name */
	size_t n_service_tags;
	struct config_route_table *route_tables;
	size_t n_route_tables;
	struct config_nat_gateway *nat_gateways;
	size_t n_nat_gateways;
	struct config_nic *nics;
	size_t n_nics;
	struct config_local_network_gateway *local_network_gateways;
	size_t n_local_network_gateways;
	struct config_vnet_gateway *vnet_gateways;
	size_t n_vnet_gateways;
	struct config_connection *connections;
	size_t n_connections;
	struct config_express_route_circuit *express_route_circuits;
	size_t n_express_route_circuits;
	struct config_express_route_binding *express_route_bindings;
	size_t n_express_route_bindings;
};

/* Reads and validates FILE. On success returns 0 and *out owns the model. On failure
 * returns the number of problems (> 0) or a negative errno, having written one line per
 * problem to `errors` ("FILE:LINE:COL: json.path: what is wrong; what is allowed"), and
 * *out is NULL. */
int config_load(const char *path, FILE *errors, struct config **out);
/* The same for a document already in memory; `name` stands for FILE in messages. */
int config_load_string(const char *text, const char *name, FILE *errors, struct config **out);
void config_free(struct config *cfg);

/* Helpers the loader and tests share. */
/* Base64 (whitespace skipped) into out; 0, or -1 when it is not base64 or overflows. */
int base64_decode(const char *text, unsigned char *out, size_t size, size_t *length);
/* A SHA-1 thumbprint: 40 hex digits, spaces or colons between pairs allowed. 0 or -1. */
int thumbprint_parse(const char *text, uint8_t out[SHA1_LEN]);
void config_vpn_client_free(struct config_vpn_client *vc);
int ip_prefix_parse(const char *text, struct ip_prefix *out);   /* 0 or -EINVAL */
int ip_address_parse(const char *text, struct ip_address *out); /* 0 or -EINVAL */
bool ip_prefix_overlaps(const struct ip_prefix *a, const struct ip_prefix *b);
bool ip_prefix_contains(const struct ip_prefix *outer, const struct ip_prefix *inner);
int config_find_vnet(const struct config *cfg, const char *name); /* index or CONFIG_NONE */
int config_find_nic(const struct config *cfg, const char *name);  /* index or CONFIG_NONE */
/* The group a rule address names (service tag of the file, ASG), NULL for other kinds. */
const struct config_address_group *config_address_group_of(const struct config *cfg,
							   const struct nsg_address *address);
/* An address as the config wrote it: "*", a prefix, a tag or an ASG's name. */
const char *nsg_address_text(const struct config *cfg, const struct nsg_address *address,
			     char *buf, size_t size);
/* VNet from's peering toward VNet to, or NULL. */
const struct config_peering *config_peering_to(const struct config *cfg, int from, int to);

#endif

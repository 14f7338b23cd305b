/* strongSwan for IKE: each connection becomes a charon connection bound to its xfrm
 * interface (if_id), with its sharedKey as a secret, both loaded over charon's vici
 * socket (user/lib/vici.c) under names that carry the gateway's. Only those are ever loaded,
 * changed or unloaded: an administrator's own connections and other gateways' stay. */
#ifndef VNET_XDP_SWANCTL_H
#define VNET_XDP_SWANCTL_H

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>
#include "config/config.h"
struct tunnel;

/* Azure's default offers for a route-based gateway (IKEv2), in strongSwan's syntax. */
#define AZURE_DEFAULT_IKE_PROPOSALS \
	"aes256-sha1-modp1024,aes256-sha256-modp1024,aes128-sha1-modp1024," \
	"aes128-sha256-modp1024,3des-sha1-modp1024,3des-sha256-modp1024"
#define AZURE_DEFAULT_ESP_PROPOSALS \
	"aes256gcm16,aes256-sha1,3des-sha1,aes256-sha256,aes128-sha1,3des-sha256"
#define AZURE_DEFAULT_SA_LIFETIME_SECONDS 27000
#define AZURE_DEFAULT_SA_DATA_KILOBYTES 102400000
#define AZURE_IKE_SA_LIFETIME_SECONDS 28800

/* An Azure ipsecPolicy as strongSwan proposals. Returns 0, or -EINVAL naming in `why` the
 * value strongSwan has no equivalent for. */
int swanctl_ike_proposal(const struct config_ipsec_policy *p, char *buf, size_t size,
			 const char **why);
int swanctl_esp_proposal(const struct config_ipsec_policy *p, char *buf, size_t size,
			 const char **why);

/* The charon name of a tunnel's connection and of its secret:
 * vnetxdp-<gateway>.<connection>. A gateway name holds no '.', so the names of two
 * gateways never meet. */
#define SWANCTL_NAME_PREFIX "vnetxdp-"
#define SWANCTL_NAME_MAX 300
void swanctl_connection_name(const char *gateway, const struct tunnel *t, char *buf, size_t size);
/* A tunnel's child SAs: one per trafficSelectorPolicies entry (else one), and with IKEv1,
 * which negotiates one local and one remote selector per Quick Mode, one per pair of a
 * local and a remote range of one family. The first is named like the connection, the
 * next <connection>~2, ~3, ... At most SWANCTL_MAX_CHILDREN (Azure's Quick Mode SAs per
 * connection). */
#define SWANCTL_MAX_CHILDREN 100
void swanctl_child_name(const char *connection, size_t index, char *buf, size_t size);
/* The tunnel's number of child SAs; 0 when its selectors make none or too many. */
size_t swanctl_child_count(const struct config *cfg, const struct tunnel *t);

/* load-conn's message for the tunnel ({ <name> = { ... } }), without its secret. Returns 0,
 * or -EINVAL/-ENAMETOOLONG after saying what strongSwan cannot express. */
int swanctl_connection_message(const struct config *cfg, const struct tunnel *t, json_t **out);
/* load-shared's message for the tunnel's sharedKey; *out NULL when it has none. */
int swanctl_secret_message(const struct config *cfg, const struct tunnel *t, json_t **out);

/* What a gateway wants charon to hold, by charon name: connections (load-conn messages,
 * kept in the gateway's state to put back after a failed reload) and secrets (load-shared
 * messages, never written anywhere). */
struct swanctl_set {
	json_t *connections, *secrets;
	/* Point-to-site: the client address pools (load-pool messages, by pool name) and
	 * the gateway's private keys (load-key messages, never written anywhere either). */
	json_t *pools, *keys;
};
/* Azure's offers to point-to-site IKEv2 clients, in strongSwan's syntax. */
#define AZURE_P2S_IKE_PROPOSALS \
	"aes256-sha256-modp2048,aes256-sha256-modp1024,aes256-sha1-modp1024," \
	"aes256gcm16-prfsha384-ecp384,aes256gcm16-prfsha256-ecp256,aes128-sha1-modp1024," \
	"3des-sha1-modp1024"
#define AZURE_P2S_ESP_PROPOSALS "aes256gcm16,aes256-sha256,aes256-sha1,aes128-sha1,3des-sha1"
/* The name of pool `index` of a point-to-site connection: <connection>~pool<index+1>. */
void swanctl_pool_name(const char *connection, size_t index, char *buf, size_t size);
/* A DER certificate as PEM text (malloc'd), as charon takes certificates over vici. */
char *swanctl_pem_certificate(const unsigned char *der, size_t length);
int swanctl_set_build(const struct config *cfg, const struct tunnel *tunnels, size_t count,
		      struct swanctl_set *out);
void swanctl_set_free(struct swanctl_set *set);

struct vici;
/* Connects to charon's vici socket, saying so when it cannot. */
int swanctl_connect(struct vici *v);
/* Makes charon hold `next` where it held `old` (name -> load-conn message, JSON null when
 * not known) of ours: the secrets, then the connections (charon keeps one that did not
 * change, SAs and all), then those of `old` no longer wanted unloaded and their SAs
 * closed. When charon refuses a step, the steps before are undone: the previous
 * definitions loaded again, what was new unloaded, and what could not be undone said.
 * *in_force is what charon holds of ours afterwards, either way. Returns 0 or -errno. */
int swanctl_apply(struct vici *v, json_t *old, const struct swanctl_set *next, json_t **in_force);
/* Asks charon to start the CHILD SA `child` of connection `name` (on its IKE SA, which
 * charon starts unless it has one) and returns without waiting for the peer. Returns 0,
 * -EIO with *why (charon's words: no such connection, ...) or -errno when charon did not
 * answer. */
int swanctl_initiate(struct vici *v, const char *name, const char *child, char *why,
		     size_t why_size);
/* Unloads the connections and secrets named in owned and closes their SAs. */
int swanctl_remove(struct vici *v, json_t *owned);

#endif

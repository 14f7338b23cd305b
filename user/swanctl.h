/* strongSwan for IKE: each connection becomes a swanctl connection bound to its xfrm
 * interface (if_id), written as a swanctl.conf and loaded into charon over its vici
 * socket with `swanctl --load-all`. */
#ifndef VNET_XDP_SWANCTL_H
#define VNET_XDP_SWANCTL_H

#include <stddef.h>
#include <stdio.h>
#include "config.h"
#include "tunnel.h"

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

/* The swanctl connection name of a tunnel: <gateway>-<connection>. */
void swanctl_connection_name(const char *gateway, const struct tunnel *t, char *buf, size_t size);

/* Writes the swanctl.conf for the tunnels (the secrets included). Returns 0 or -errno. */
int swanctl_render(FILE *out, const struct config *cfg, const struct tunnel *tunnels,
		   size_t count);

/* The charon to talk to: $VNET_XDP_VICI (a vici URI such as unix:///run/x/charon.vici),
 * else swanctl's default. */
const char *swanctl_uri(void);
/* Writes the file (mode 0600) under the gateway's state directory and loads it. */
int swanctl_load(const char *gateway, const struct config *cfg, const struct tunnel *tunnels,
		 size_t count);
/* Closes the IKE SAs (and their CHILD SAs) of the named connections. */
void swanctl_terminate(const char *const *names, size_t count);
/* Unloads the gateway's connections and closes their SAs (names from `up`'s state). */
int swanctl_unload(const char *gateway, const char *const *names, size_t count);

#endif

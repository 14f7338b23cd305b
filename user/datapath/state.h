/* What `up` set up, kept beside the pins so that later commands (status, stats, down)
 * can name things in the user's words. The pinned maps stay the source of truth for
 * the datapath; this file only carries names and what to undo. */
#ifndef VNET_XDP_STATE_H
#define VNET_XDP_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* STATE_ROOT/<gateway>.json */
void state_path(const char *gateway, char *buf, size_t size);
/* Writes atomically (temporary file, then rename). Returns 0 or -errno. */
int state_save(const char *gateway, json_t *state);
/* Returns a new reference or NULL when there is none. */
json_t *state_load(const char *gateway);
int state_remove(const char *gateway);
/* The network namespace this process runs in, as the kernel names it
 * ("net:[4026531840]"). Interfaces, and so a gateway's attachments, belong to one. */
int netns_current(char *buf, size_t size);
/* Whether `state` was written in this network namespace (a state that does not say is
 * taken to be). */
bool state_in_this_netns(json_t *state);
/* The same as 0, or -EXDEV with a message naming both namespaces. */
int state_netns_check(const char *gateway, json_t *state);
/* The namespace the gateway was brought up in no longer exists. */
bool state_netns_gone(json_t *state);
/* Names of the gateways that have pins; *names is NULL-terminated, free with
 * state_names_free. */
int gateway_names(char ***names, size_t *count);
void state_names_free(char **names);

#endif

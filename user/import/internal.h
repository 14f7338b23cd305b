/* Shared between the parts of the importer: the collector (import_model.c), the ARM
 * template expander (import_arm.c) and the document reader and CLI (import.c). */
#ifndef VNET_XDP_IMPORT_INTERNAL_H
#define VNET_XDP_IMPORT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "import/import.h"

struct importer {
	FILE *diag;
	json_t *params;          /* borrowed --param overrides */
	json_t *resources;       /* "type/lower-case name" -> resource record */
	json_t *stubs;           /* keys of parents created only to hold a child */
	json_t *record_warnings; /* key -> array of warnings, written if the record is kept */
	json_t *unmodeled;       /* type -> count */
	json_t *written;         /* warnings already written (each once) */
	json_t *declared_params; /* lower-case name -> name of each template parameter */
	const char *file;        /* the document being read, for messages */
	int warnings;
	int deployment_depth;    /* nested deployments being expanded */
	int deployments_expanded; /* nested deployments expanded so far */
	int flow_logs, flow_logs_disabled; /* networkWatchers/flowLogs seen, those disabled */
};

/* Writes "import: warning: FILE: message" once per distinct message. */
void import_warn(struct importer *imp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Writes an already formatted warning line body (as import_warn), once. */
void import_warn_text(struct importer *imp, const char *text);

/* A lower-case copy (names compare without case in Azure), or NULL. */
char *import_lower(const char *text);

/* The canonical spelling of a resource type vnet-xdp knows of, else NULL. */
const char *import_canonical_type(const char *type);
/* True for the types whose resources go into the config (children included). */
bool import_type_is_modeled(const char *type);

/* Adds one resource in ARM (nested) or az (flattened) shape. `path` names it in
 * messages; `pending` (may be NULL) holds warnings about it, written only if it is kept.
 * Unmodeled types are counted for the summary. Borrows both. */
void importer_add_resource(struct importer *imp, json_t *resource, const char *path,
			   json_t *pending);
void importer_count_unmodeled(struct importer *imp, const char *type, int n);
/* A resource left out: a network watcher's flow log becomes gateway.flowLogs. */
void importer_note_flow_log(struct importer *imp, const char *type, json_t *resource);

/* Expands an ARM template's resources into the importer. Returns 0 or 1 (input error). */
int import_arm_template(struct importer *imp, json_t *doc);

/* Splits a full id "/subscriptions/S/resourceGroups/R/providers/NS/t1/n1[/t2/n2...]"
 * into type "NS/t1[/t2]" and name "n1[/n2]". Returns false when it is not one. Frees
 * nothing on failure; the caller frees *type and *name on success. */
bool import_parse_id(const char *id, char **subscription, char **group, char **type,
		     char **name);

/* An IPv4 "a.b.c.d/len" as its first (network) and last (broadcast) address. */
bool import_prefix_range(const char *prefix, uint32_t *first, uint32_t *last);
void import_address_text(uint32_t address, char *out, size_t size);
/* The address Azure gives the next resource placed in subnet `prefix`: the lowest one from
 * network + 4 (before the broadcast) not in `taken` (address text -> true; may be NULL). */
bool import_first_free_address(const char *prefix, json_t *taken, char *out, size_t size);
/* "vnet/subnet" (lower case) of an ipConfiguration's subnet reference, or NULL. */
char *import_subnet_key(json_t *ipc_props);
/* An IPv4 ipConfiguration without an address that Azure assigns one (Dynamic, its
 * default). */
bool import_ipc_is_dynamic(json_t *ipc_props);
/* NICs whose ipConfigurations say Dynamic get the address Azure assigns, with a warning. */
void import_assign_dynamic_addresses(struct importer *imp);
/* gateway.virtualNetworkGateways: each VPN gateway with its local address to fill in. */
json_t *import_gateway_bindings(struct importer *imp);

#endif

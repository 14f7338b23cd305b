/* vnet-xdp import: ARM templates, REST API bodies and az CLI output -> one config.
 *
 * The importer collects resources from any number of documents, folds child resources
 * into their parents, merges what is declared twice, drops read-only noise and writes
 * references as full resource ids. Warnings go to a stream, one line each, prefixed
 * "import: "; nothing is left out silently. */
#ifndef VNET_XDP_IMPORT_H
#define VNET_XDP_IMPORT_H

#include <stdio.h>
#include <jansson.h>

struct importer;

/* params: object of parameter name -> string (--param), or NULL; borrowed.
 * diag: where warnings go (stderr in the CLI). */
struct importer *importer_new(json_t *params, FILE *diag);
void importer_free(struct importer *imp);

/* Adds one file / one parsed document; `name` names it in messages. Returns 0, or 1 on
 * an input error (unreadable, not JSON, not a shape import knows), already reported. */
int importer_add_file(struct importer *imp, const char *path);
int importer_add_document(struct importer *imp, json_t *doc, const char *name);

/* After the inputs: each --param must name a parameter some template declares (a typo
 * would otherwise leave the default in place silently). Returns 0, or 1 after naming the
 * declared ones. */
int importer_check_params(struct importer *imp);

/* The config: {"gateway": {...to fill in...}, "resources": [...sorted...]}. Prints the
 * summary of what is not modeled. Returns a new reference. */
json_t *importer_finish(struct importer *imp);

/* Number of warnings written so far (tests use it). */
int importer_warning_count(const struct importer *imp);

#endif

/* libFuzzer target: the importer (ARM templates with their expression language, REST
 * bodies, az output) on arbitrary JSON, then the config reader on what it wrote. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "config/config.h"
#include "import/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *sink = fopen("/dev/null", "w");
	json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	struct importer *imp;
	struct config *cfg = NULL;

	if (!sink || !doc)
		goto out;
	imp = importer_new(NULL, sink);
	if (imp) {
		if (importer_add_document(imp, doc, "fuzz.json") == 0) {
			json_t *out = importer_finish(imp);
			char *text = out ? json_dumps(out, JSON_INDENT(2)) : NULL;

			if (text && config_load_string(text, "imported.json", sink, &cfg) == 0)
				config_free(cfg);
			free(text);
			json_decref(out);
		}
		importer_free(imp);
	}
out:
	json_decref(doc);
	if (sink)
		fclose(sink);
	return 0;
}

/* libFuzzer target: the config reader on arbitrary bytes. It must report problems, never
 * crash, leak or hang; a config it accepts must be freed cleanly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	FILE *sink = fopen("/dev/null", "w");
	struct config *cfg = NULL;

	if (!text || !sink) {
		free(text);
		if (sink)
			fclose(sink);
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	if (config_load_string(text, "fuzz.json", sink, &cfg) == 0)
		config_free(cfg);
	fclose(sink);
	free(text);
	return 0;
}

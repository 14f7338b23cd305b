/* A test config read from a file with edits: each pair's first text (it must be there)
 * replaced by its second, in turn. Include after cmocka.h. */
#ifndef VNET_XDP_TESTS_CONFIG_EDIT_H
#define VNET_XDP_TESTS_CONFIG_EDIT_H

#include <stdio.h>
#include <string.h>
#include "config/config.h"

static inline void config_edited(const char *path, const char *const *edits, struct config **cfg)
{
	FILE *in = fopen(path, "r");
	char text[16384], edited[16384], *at;
	size_t len;

	assert_non_null(in);
	len = fread(text, 1, sizeof(text) - 1, in);
	fclose(in);
	text[len] = '\0';
	for (; edits && edits[0]; edits += 2) {
		at = strstr(text, edits[0]);
		assert_non_null(at);
		snprintf(edited, sizeof(edited), "%.*s%s%s", (int)(at - text), text, edits[1],
			 at + strlen(edits[0]));
		memcpy(text, edited, sizeof(text));
	}
	assert_int_equal(config_load_string(text, "variant.json", stderr, cfg), 0);
}

#endif

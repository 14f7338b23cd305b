#include <stdbool.h>
#include <stdio.h>
#include "lib/cli.h"

bool cli_json_pretty;

void cli_json_print(json_t *doc)
{
	json_dumpf(doc, stdout, cli_json_pretty ? JSON_INDENT(2) : JSON_COMPACT);
	fputc('\n', stdout);
}

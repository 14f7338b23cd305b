#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "lib/gateway_name.h"

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
#define SHOWN_MAX 40

const char *gateway_name_problem(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (!len)
		return "it is empty";
	if (strspn(name, NAME_CHARS) != len)
		return "only letters, digits, '-' and '_' are allowed";
	/* '-' first reads as an option wherever the name is passed on */
	if (!isalnum((unsigned char)name[0]))
		return "it must start with a letter or digit";
	if (len > GATEWAY_NAME_MAX)
		return "it is longer than " GATEWAY_NAME_TEXT(GATEWAY_NAME_MAX) " characters";
	return NULL;
}

/* The name as the user typed it, cut short and with what the terminal would act on
 * replaced, for the one line that refuses it. */
static void name_shown(const char *name, char *buf, size_t size)
{
	size_t n = 0;

	for (; name[n] && n < size - 1; n++)
		buf[n] = isprint((unsigned char)name[n]) ? name[n] : '?';
	buf[n] = '\0';
	if (name[n] && size > 4)
		memcpy(buf + size - 4, "...", 4);
}

int gateway_name_check(const char *command, const char *name)
{
	const char *problem = name ? gateway_name_problem(name) : NULL;
	char shown[SHOWN_MAX + 1];

	if (!problem)
		return 0;
	name_shown(name, shown, sizeof(shown));
	fprintf(stderr, "vnet-xdp %s: -n '%s' is not a gateway name: %s\n", command, shown,
		problem);
	return -EINVAL;
}

void gateway_path(const char *root, const char *name, const char *suffix, char *buf,
		  size_t size)
{
	int len;

	if (!size)
		return;
	len = gateway_name_valid(name) ? snprintf(buf, size, "%s/%s%s", root, name, suffix) : -1;
	if (len < 0 || (size_t)len >= size)
		buf[0] = '\0';
}

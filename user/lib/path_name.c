/* What the config may name as a path of its own (a flow log directory, a credential). */
#include <linux/limits.h>
#include <stddef.h>
#include <string.h>
#include "lib/path_name.h"

const char *path_name_problem(const char *path)
{
	const char *p = path;

	if (path[0] != '/')
		return "is not an absolute path";
	if (strlen(path) > PATH_MAX / 2)
		return "is too long";
	while (*p) {
		const char *next;
		size_t len;

		while (*p == '/')
			p++;
		next = strchrnul(p, '/');
		len = (size_t)(next - p);
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return "holds a \".\" or \"..\" component";
		p = next;
	}
	return NULL;
}

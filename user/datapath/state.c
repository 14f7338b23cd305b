#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "datapath/datapath.h"
#include "lib/gateway_name.h"
#include "lib/log.h"
#include "lib/private_file.h"
#include "datapath/state.h"

void state_path(const char *gateway, char *buf, size_t size)
{
	gateway_path(STATE_ROOT, gateway, ".json", buf, size);
}

int state_save(const char *gateway, json_t *state)
{
	char path[300], tmp[320];
	int err;

	err = private_dir_ensure(STATE_ROOT);
	if (err)
		return err;
	state_path(gateway, path, sizeof(path));
	if (!path[0]) /* not a gateway name */
		return -EINVAL;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(state, tmp, JSON_INDENT(2) | JSON_SORT_KEYS))
		return -EIO;
	if (rename(tmp, path)) {
		err = -errno;
		unlink(tmp);
		return err;
	}
	return 0;
}

json_t *state_load(const char *gateway)
{
	char path[300];

	state_path(gateway, path, sizeof(path));
	return json_load_file(path, 0, NULL);
}

int state_remove(const char *gateway)
{
	char path[300];

	state_path(gateway, path, sizeof(path));
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return 0;
}

int netns_current(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/ns/net", buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

bool state_in_this_netns(json_t *state)
{
	const char *recorded = json_string_value(json_object_get(state, "networkNamespace"));
	char here[64];

	return !recorded || netns_current(here, sizeof(here)) || !strcmp(recorded, here);
}

/* Whether a network namespace ("net:[INODE]") still exists: named under /run/netns or
 * held by a process. A namespace nothing holds is gone, with its interfaces. */
static bool netns_named(const char *id, const char *dir_path, bool by_process)
{
	DIR *dir = opendir(dir_path);
	struct dirent *entry;
	char path[320], link[64];
	bool found = false;
	struct stat st;

	while (dir && !found && (entry = readdir(dir))) {
		if (entry->d_name[0] == '.')
			continue;
		if (by_process) {
			ssize_t n;

			if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "%s/%s/ns/net", dir_path, entry->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n < 0)
				continue;
			link[n] = '\0';
		} else {
			snprintf(path, sizeof(path), "%s/%s", dir_path, entry->d_name);
			if (stat(path, &st))
				continue;
			snprintf(link, sizeof(link), "net:[%lu]", (unsigned long)st.st_ino);
		}
		found = !strcmp(link, id);
	}
	if (dir)
		closedir(dir);
	return found;
}

bool state_netns_gone(json_t *state)
{
	const char *recorded = json_string_value(json_object_get(state, "networkNamespace"));

	return recorded && !state_in_this_netns(state) && !netns_named(recorded, "/run/netns", false) &&
	       !netns_named(recorded, "/proc", true);
}

int state_netns_check(const char *gateway, json_t *state)
{
	char here[64] = "?";

	if (state_in_this_netns(state))
		return 0;
	if (state_netns_gone(state)) {
		log_error("gateway %s ran in network namespace %s, which is gone with its interfaces: "
			  "`vnet-xdp down -n %s` removes what is left", gateway,
			  json_string_value(json_object_get(state, "networkNamespace")), gateway);
		return -EXDEV;
	}
	netns_current(here, sizeof(here));
	/* Interface indexes mean other interfaces here: acting on them could detach or
	 * replace another namespace's programs. */
	log_error("gateway %s runs in network namespace %s, this command in %s: run it there "
		  "(nsenter --net=/run/netns/NAME or ip netns exec)", gateway,
		  json_string_value(json_object_get(state, "networkNamespace")), here);
	return -EXDEV;
}

int gateway_names(char ***names, size_t *count)
{
	struct dirent *entry;
	DIR *d = opendir(VNET_XDP_PIN_ROOT);
	char **list = calloc(1, sizeof(*list));
	size_t n = 0;

	*names = NULL;
	*count = 0;
	if (!list) {
		if (d)
			closedir(d);
		return -ENOMEM;
	}
	while (d && (entry = readdir(d))) {
		char **bigger;

		if (!gateway_name_valid(entry->d_name)) /* not made by `up` */
			continue;
		bigger = realloc(list, (n + 2) * sizeof(*list));
		if (!bigger)
			break;
		list = bigger;
		list[n++] = strdup(entry->d_name);
		list[n] = NULL;
	}
	if (d)
		closedir(d);
	*names = list;
	*count = n;
	return 0;
}

void state_names_free(char **names)
{
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "lib/log.h"
#include "lib/map_entries.h"
#include "map_entries.skel.h"

static pthread_once_t iterator_once = PTHREAD_ONCE_INIT;
static struct map_entries_bpf *iterator; /* NULL when the kernel cannot run it */
static int iterator_error;

/* Kept for the life of the process: loading it parses the kernel's BTF (tens of ms),
 * too much for every scrape. */
static void iterator_load(void)
{
	struct map_entries_bpf *skel = map_entries_bpf__open_and_load();

	if (!skel || map_entries_bpf__attach(skel)) {
		iterator_error = errno ? -errno : -EOPNOTSUPP;
		log_debug("map entry counters unavailable (%s): walking the keys instead",
			  strerror(-iterator_error));
		map_entries_bpf__destroy(skel);
		return;
	}
	iterator = skel;
}

static int records_read(int fd, struct map_entry_table *table)
{
	size_t size = 0, bytes = 0;

	for (;;) {
		ssize_t n;

		if (bytes == size * sizeof(*table->records)) {
			struct map_entry_count *bigger;

			size = size ? 2 * size : 256;
			bigger = realloc(table->records, size * sizeof(*bigger));
			if (!bigger)
				return -ENOMEM;
			table->records = bigger;
		}
		n = read(fd, (char *)table->records + bytes, size * sizeof(*table->records) - bytes);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		bytes += (size_t)n;
	}
	table->n = bytes / sizeof(*table->records);
	return 0;
}

int map_entry_table_read(struct map_entry_table *table)
{
	int fd, err;

	table->records = NULL;
	table->n = 0;
	pthread_once(&iterator_once, iterator_load);
	if (!iterator)
		return iterator_error;
	fd = bpf_iter_create(bpf_link__fd(iterator->links.map_entries));
	if (fd < 0)
		return -errno;
	err = records_read(fd, table);
	close(fd);
	if (err)
		map_entry_table_free(table);
	return err;
}

long long map_entry_table_find(const struct map_entry_table *table, uint32_t id)
{
	size_t low = 0, high = table->n;

	while (low < high) {
		size_t mid = low + (high - low) / 2;

		if (table->records[mid].id == id)
			return table->records[mid].entries;
		if (table->records[mid].id < id)
			low = mid + 1;
		else
			high = mid;
	}
	return -ENOENT;
}

void map_entry_table_free(struct map_entry_table *table)
{
	free(table->records);
	table->records = NULL;
	table->n = 0;
}

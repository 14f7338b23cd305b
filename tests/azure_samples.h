/* The Azure samples of ../shared/azure-samples (or $VNET_XDP_SHARED/azure-samples), for
 * the tests that read them. Header-only: each test binary is one file. */
#ifndef VNET_XDP_TESTS_AZURE_SAMPLES_H
#define VNET_XDP_TESTS_AZURE_SAMPLES_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char samples_dir[1024];

/* A cmocka group setup: where the samples are. */
static int find_samples(void **state)
{
	const char *shared = getenv("VNET_XDP_SHARED");

	snprintf(samples_dir, sizeof(samples_dir), "%s/azure-samples",
		 shared && *shared ? shared : "../shared");
	return 0;
}

static int compare_sample_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sample files, sorted; NULL, having said why, when the directory is absent. */
static char **list_samples(size_t *n)
{
	DIR *dir = opendir(samples_dir);
	struct dirent *e;
	char **names = NULL;

	*n = 0;
	if (!dir) {
		printf("skipped: %s not found (set VNET_XDP_SHARED to the shared directory)\n",
		       samples_dir);
		return NULL;
	}
	while ((e = readdir(dir))) {
		size_t len = strlen(e->d_name);

		if (len > 5 && !strcmp(e->d_name + len - 5, ".json")) {
			names = realloc(names, (*n + 1) * sizeof(*names));
			names[(*n)++] = strdup(e->d_name);
		}
	}
	closedir(dir);
	qsort(names, *n, sizeof(*names), compare_sample_names);
	return names;
}

#endif

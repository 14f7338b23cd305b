/* `vnet-xdp import`: its options (-o, --param, --param-file) and inputs parsed, the
 * importer (import/import.c) run over the inputs, the config written. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "cmd/commands.h"
#include "import/import.h"
#include "lib/cli.h"
#include "lib/private_file.h"

static int fill_text(FILE *out, void *text)
{
	return fputs(text, out) < 0 || fputc('\n', out) == EOF ? -EIO : 0;
}

static int write_output(json_t *config, const char *out_path)
{
	char *text = json_dumps(config, JSON_INDENT(2));
	int rc;

	if (!text)
		return 1;
	if (!out_path || !strcmp(out_path, "-")) {
		fputs(text, stdout);
		fputc('\n', stdout);
		rc = fflush(stdout) ? 1 : 0;
	} else {
		/* Private: the config may hold a sharedKey. */
		int err = private_file_write(out_path, fill_text, text);

		if (err)
			fprintf(stderr, "import: %s: %s\n", out_path, strerror(-err));
		rc = err ? 1 : 0;
	}
	explicit_bzero(text, strlen(text));
	free(text);
	return rc;
}

static int add_param(json_t *params, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *name;

	if (!eq || eq == arg)
		return -1;
	name = strndup(arg, (size_t)(eq - arg));
	json_object_set_new(params, name, json_string(eq + 1));
	free(name);
	return 0;
}

#define PARAM_FILE_MAX 65536

/* --param-file NAME=PATH: the value is PATH's text less one final line break (as `echo`
 * or an editor leaves it). Returns 0, -1 for a usage error, 1 after saying what failed. */
static int add_param_file(json_t *params, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char buf[PARAM_FILE_MAX + 1], *name;
	json_t *value;
	size_t used = 0;
	ssize_t got = 1;
	int fd, err = 0;

	if (!eq || eq == arg || !eq[1])
		return -1;
	fd = strcmp(eq + 1, "-") ? open(eq + 1, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0) {
		fprintf(stderr, "import: --param-file %s: %s\n", eq + 1, strerror(errno));
		return 1;
	}
	while (got > 0 && used < sizeof(buf)) {
		got = read(fd, buf + used, sizeof(buf) - used);
		if (got < 0 && errno == EINTR)
			got = 1;
		else if (got > 0)
			used += (size_t)got;
	}
	err = got < 0 ? errno : 0;
	if (fd != STDIN_FILENO)
		close(fd);
	if (err || used > PARAM_FILE_MAX || memchr(buf, '\0', used)) {
		fprintf(stderr, "import: --param-file %s: %s\n", eq + 1, err ? strerror(err) :
			used > PARAM_FILE_MAX ? "longer than 64 KiB" : "holds a NUL byte");
		explicit_bzero(buf, sizeof(buf));
		return 1;
	}
	if (used && buf[used - 1] == '\n')
		used--;
	if (used && buf[used - 1] == '\r')
		used--;
	value = json_stringn(buf, used);
	explicit_bzero(buf, sizeof(buf));
	if (!value) {
		fprintf(stderr, "import: --param-file %s: not UTF-8 text\n", eq + 1);
		return 1;
	}
	name = strndup(arg, (size_t)(eq - arg));
	json_object_set_new(params, name, value);
	free(name);
	return 0;
}

int import_main(int argc, char **argv)
{
	json_t *params = json_object(), *config;
	const char **files = calloc((size_t)argc + 1, sizeof(*files));
	const char *out_path = NULL;
	struct importer *imp = NULL;
	size_t n_files = 0;
	int rc = 0, stdin_readers = 0, i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (++i >= argc)
				goto missing_value;
			out_path = argv[i];
		} else if (!strncmp(a, "--output=", 9)) {
			out_path = a + 9;
		} else if (!strcmp(a, "-p") || !strcmp(a, "--param")) {
			if (++i >= argc)
				goto missing_value;
			if (add_param(params, argv[i]))
				goto not_name_value;
		} else if (!strncmp(a, "--param=", 8)) {
			if (add_param(params, a + 8))
				goto not_name_value;
		} else if (!strcmp(a, "--param-file") || !strncmp(a, "--param-file=", 13)) {
			const char *arg = a[12] ? a + 13 : ++i < argc ? argv[i] : NULL;

			if (!arg)
				goto missing_value;
			if (strlen(arg) > 2 && !strcmp(arg + strlen(arg) - 2, "=-"))
				stdin_readers++;
			rc = add_param_file(params, arg);
			if (rc < 0)
				goto not_name_value;
			if (rc)
				goto done;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "vnet-xdp import: unknown or misplaced option '%s'\n", a);
			goto usage_error;
		} else {
			stdin_readers += !strcmp(a, "-");
			files[n_files++] = a;
		}
	}
	if (stdin_readers > 1) {
		fprintf(stderr, "vnet-xdp import: standard input ('-') given twice\n");
		goto usage_error;
	}
	if (!n_files) {
		fprintf(stderr, "vnet-xdp import: no input file\n");
		goto usage_error;
	}
	imp = importer_new(params, stderr);
	for (size_t i = 0; imp && i < n_files; i++)
		if (importer_add_file(imp, files[i]))
			rc = 1;
	if (imp && !rc)
		rc = importer_check_params(imp);
	if (!imp || rc) {
		rc = 1; /* an input error: write nothing */
		goto done;
	}
	config = importer_finish(imp);
	rc = write_output(config, out_path);
	json_decref(config);
	goto done;

missing_value:
	fprintf(stderr, "vnet-xdp import: option '%s' needs a value\n", argv[argc - 1]);
	goto usage_error;
not_name_value:
	fprintf(stderr, "vnet-xdp import: '%s' is not NAME=VALUE\n", argv[i]);
usage_error:
	cli_usage_hint("import");
	rc = 2;
done:
	importer_free(imp);
	json_decref(params);
	free(files);
	return rc;
}

/* A sharedKey's way through the loader: the file it is read from must be root's and
 * private (judged on the descriptor read), `up` and `reload` both say so, `import -o`
 * writes it privately, a secret can come from a file instead of argv, a JSON syntax
 * error never quotes the text, and the process cannot dump core. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "config/config.h"
#include "datapath/datapath.h"
#include "datapath/gateway.h"
#include "cmd/commands.h"
#include "import/import.h"
#include "lib/log.h"
#include "lib/private_file.h"
#include "lib/process.h"
#include "compile/swanctl.h"
#include "lib/vici.h"
#include "datapath/tunnel.h"

#define KEYED_CONFIG "tests/data/config/ipsec-transit.json"
#define KEY "s3cret" /* the sharedKey in KEYED_CONFIG starts so */
#define TEMPLATE "tests/data/import/template.json"
#define NOBODY 65534

/* ---- helpers ---- */

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "re");
	char *text = calloc(1, 1 << 20);
	size_t got;

	assert_non_null(f);
	assert_non_null(text);
	got = fread(text, 1, (1 << 20) - 1, f);
	text[got] = '\0';
	fclose(f);
	return text;
}

/* A copy of KEYED_CONFIG at a new path with `mode`; the caller frees and unlinks it. */
static char *keyed_copy(mode_t mode)
{
	char *path = strdup("/tmp/vnet-xdp-secrets-XXXXXX");
	char *text = read_all(KEYED_CONFIG);
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	free(text);
	return path;
}

static struct config *load(const char *path)
{
	struct config *cfg = NULL;

	assert_int_equal(config_load(path, stderr, &cfg), 0);
	return cfg;
}

/* Runs fn(arg) with fd 2 sent to a file; returns its result and, in *said, what it wrote. */
static int with_stderr_captured(int (*fn)(void *), void *arg, char **said)
{
	char path[] = "/tmp/vnet-xdp-secrets-err-XXXXXX";
	int fd = mkstemp(path), saved = dup(2), rc;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	rc = fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	*said = read_all(path);
	unlink(path);
	return rc;
}

static int check_secret_file(void *cfg)
{
	return tunnel_check_secret_file(cfg);
}

static int reload(void *cfg)
{
	return gateway_reload(cfg);
}

/* The verdict of the check on a keyed config read from `path`; the line it wrote, if
 * any, must hold neither the secret nor be more than one line. */
static int verdict_of(const char *path)
{
	struct config *cfg = load(path);
	char *said;
	int rc = with_stderr_captured(check_secret_file, cfg, &said);

	assert_null(strstr(said, KEY));
	assert_true(!*said || strchr(said, '\n') == said + strlen(said) - 1);
	if (rc)
		assert_non_null(strstr(said, "holds a sharedKey"));
	free(said);
	config_free(cfg);
	return rc;
}

/* ---- the file a key is read from ---- */

static void secret_file_readable_or_writable_by_others_is_refused(void **state)
{
	static const mode_t unsafe[] = { 0644, 0640, 0604, 0620, 0602 };

	for (size_t i = 0; i < sizeof(unsafe) / sizeof(*unsafe); i++) {
		char *path = keyed_copy(unsafe[i]);

		assert_int_equal(verdict_of(path), -EPERM);
		unlink(path);
		free(path);
	}
}

static void secret_file_of_another_owner_is_refused(void **state)
{
	char *path = keyed_copy(0600);

	assert_int_equal(chown(path, NOBODY, NOBODY), 0);
	assert_int_equal(verdict_of(path), -EPERM);
	unlink(path);
	free(path);
}

static void secret_file_reached_through_a_symlink_is_refused(void **state)
{
	char *path = keyed_copy(0600);
	char link[64];

	snprintf(link, sizeof(link), "/tmp/vnet-xdp-secrets-link-%d", (int)getpid());
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(verdict_of(link), -EPERM);
	unlink(link);
	unlink(path);
	free(path);
}

/* The mode that counts is the one of the file as it was read, not as it is later. */
static void secret_file_is_judged_as_it_was_opened(void **state)
{
	char *path = keyed_copy(0644);
	struct config *cfg = load(path);

	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(tunnel_check_secret_file(cfg), -EPERM);
	config_free(cfg);
	unlink(path);
	free(path);
}

static void private_secret_file_of_root_is_accepted(void **state)
{
	char *path = keyed_copy(0600);
	struct config *cfg;

	assert_int_equal(verdict_of(path), 0);
	/* Without a sharedKey the file's mode is nobody's business here. */
	assert_int_equal(chmod(path, 0644), 0);
	cfg = load(path);
	for (size_t i = 0; i < cfg->n_connections; i++) {
		free(cfg->connections[i].shared_key);
		cfg->connections[i].shared_key = NULL;
	}
	assert_int_equal(tunnel_check_secret_file(cfg), 0);
	config_free(cfg);
	unlink(path);
	free(path);
}

/* Checked before anything else, whether the gateway is up or not. */
static void reload_refuses_a_secret_file_others_may_read(void **state)
{
	char *path = keyed_copy(0644);
	struct config *cfg = load(path);
	char *said;

	assert_int_equal(with_stderr_captured(reload, cfg, &said), -EPERM);
	assert_non_null(strstr(said, "holds a sharedKey but other users may read"));
	assert_null(strstr(said, KEY));
	free(said);
	config_free(cfg);
	unlink(path);
	free(path);
}

/* ---- JSON syntax errors ---- */

static const char *const broken_after_a_secret[] = {
	"{\"resources\": [{\"properties\": {\"sharedKey\" \"TopSecretKey42\"}}]}",
	"{\"resources\": [{\"properties\": {\"sharedKey\": TopSecretKey42}}]}",
	"{\"resources\": [{\"properties\": {\"sharedKey\": \"TopSecretKey42\n\"}}]}",
};

static void config_syntax_error_does_not_echo_the_text(void **state)
{
	for (size_t i = 0; i < sizeof(broken_after_a_secret) / sizeof(*broken_after_a_secret); i++) {
		char *said = NULL;
		size_t len = 0;
		FILE *errors = open_memstream(&said, &len);
		struct config *cfg;

		assert_int_equal(config_load_string(broken_after_a_secret[i], "gw.json", errors, &cfg), 1);
		fclose(errors);
		assert_non_null(strstr(said, "gw.json:1:"));
		assert_non_null(strstr(said, "JSON syntax: "));
		assert_null(strstr(said, "TopSecret"));
		assert_null(strstr(said, "near"));
		free(said);
	}
}

static void import_syntax_error_does_not_echo_the_text(void **state)
{
	for (size_t i = 0; i < sizeof(broken_after_a_secret) / sizeof(*broken_after_a_secret); i++) {
		char path[] = "/tmp/vnet-xdp-secrets-import-XXXXXX";
		int fd = mkstemp(path);
		const char *text = broken_after_a_secret[i];
		char *said = NULL;
		size_t len = 0;
		FILE *diag = open_memstream(&said, &len);
		struct importer *imp = importer_new(NULL, diag);

		assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
		close(fd);
		assert_int_equal(importer_add_file(imp, path), 1);
		importer_free(imp);
		fclose(diag);
		assert_non_null(strstr(said, ":1:"));
		assert_null(strstr(said, "TopSecret"));
		free(said);
		unlink(path);
	}
}

/* ---- import ---- */

static int import_run(int argc, const char **argv)
{
	FILE *saved = stderr;
	int rc;

	stderr = fopen("/dev/null", "w"); /* warnings of the template */
	rc = import_main(argc, (char **)argv);
	fclose(stderr);
	stderr = saved;
	return rc;
}

static const char *imported_key(const char *path)
{
	static char key[64];
	json_t *doc = json_load_file(path, 0, NULL), *r;
	size_t i;

	key[0] = '\0';
	json_array_foreach(json_object_get(doc, "resources"), i, r) {
		const char *k = json_string_value(json_object_get(json_object_get(r, "properties"),
								  "sharedKey"));
		if (k)
			snprintf(key, sizeof(key), "%s", k);
	}
	json_decref(doc);
	return key;
}

static void import_output_is_private_and_replaces_a_planted_symlink(void **state)
{
	char out[64], victim[64];
	const char *argv[] = { "import", TEMPLATE, "-o", out, "--param", "vpnKey=" KEY };
	struct stat st;
	int fd;

	snprintf(out, sizeof(out), "/tmp/vnet-xdp-secrets-out-%d", (int)getpid());
	snprintf(victim, sizeof(victim), "/tmp/vnet-xdp-secrets-victim-%d", (int)getpid());
	umask(022);
	assert_int_equal(import_run(6, argv), 0);
	assert_int_equal(lstat(out, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_string_equal(imported_key(out), KEY);
	unlink(out);

	fd = open(victim, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0 && write(fd, "untouched", 9) == 9);
	close(fd);
	assert_int_equal(symlink(victim, out), 0);
	assert_int_equal(import_run(6, argv), 0);
	assert_int_equal(lstat(out, &st), 0);
	assert_true(S_ISREG(st.st_mode)); /* the link replaced, not followed */
	assert_int_equal(st.st_mode & 07777, 0600);
	{
		char *text = read_all(victim);

		assert_string_equal(text, "untouched");
		free(text);
	}
	unlink(out);
	unlink(victim);
}

static void param_file_gives_a_secret_off_the_command_line(void **state)
{
	char out[64], keyfile[64], arg[80];
	const char *from_file[] = { "import", TEMPLATE, "-o", out, "--param-file", arg };
	const char *from_stdin[] = { "import", TEMPLATE, "-o", out, "--param-file=vpnKey=-" };
	const char *stdin_twice[] = { "import", "-", "--param-file", "vpnKey=-" };
	int fd, pipefd[2], saved;

	snprintf(out, sizeof(out), "/tmp/vnet-xdp-secrets-pout-%d", (int)getpid());
	snprintf(keyfile, sizeof(keyfile), "/tmp/vnet-xdp-secrets-key-%d", (int)getpid());
	snprintf(arg, sizeof(arg), "vpnKey=%s", keyfile);
	fd = open(keyfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0 && write(fd, KEY "-file\n", strlen(KEY) + 6) == (ssize_t)strlen(KEY) + 6);
	close(fd);
	assert_int_equal(import_run(6, from_file), 0);
	assert_string_equal(imported_key(out), KEY "-file"); /* the final line break dropped */
	unlink(out);

	assert_int_equal(pipe(pipefd), 0);
	assert_true(write(pipefd[1], KEY "-stdin", strlen(KEY) + 6) == (ssize_t)strlen(KEY) + 6);
	close(pipefd[1]);
	saved = dup(0);
	dup2(pipefd[0], 0);
	close(pipefd[0]);
	assert_int_equal(import_run(5, from_stdin), 0);
	dup2(saved, 0);
	close(saved);
	assert_string_equal(imported_key(out), KEY "-stdin");
	unlink(out);

	assert_int_equal(import_run(4, stdin_twice), 2);
	unlink(keyfile);
}

/* ---- what is handed to strongSwan ---- */

struct swanctl_call {
	struct config *cfg;
};

/* What `up` hands to strongSwan: the messages built, then charon asked for. */
static int load_into_charon(void *arg)
{
	struct swanctl_call *call = arg;
	struct swanctl_set set;
	struct tunnel *tunnels;
	struct vici v;
	size_t count;
	int err;

	assert_int_equal(tunnels_of_config(call->cfg, stderr, &tunnels, &count), 0);
	assert_int_equal(swanctl_set_build(call->cfg, tunnels, count, &set), 0);
	err = swanctl_connect(&v);
	if (!err)
		vici_close(&v);
	swanctl_set_free(&set);
	free(tunnels);
	return err;
}

/* Whether or not charon answers (not here), no file with the secret is written and
 * nothing said, even with -v, holds it. */
static void secret_for_charon_is_never_written_nor_said(void **state)
{
	char path[128];
	struct swanctl_call call = { load(KEYED_CONFIG) };
	struct stat st;
	char *said;

	snprintf(path, sizeof(path), "%s/%s.swanctl.conf", STATE_ROOT, call.cfg->gateway_name);
	log_verbose = true;
	setenv("VNET_XDP_VICI", "unix:///nonexistent/charon.vici", 1);
	with_stderr_captured(load_into_charon, &call, &said);
	log_verbose = false;
	assert_null(strstr(said, KEY));
	assert_int_equal(lstat(path, &st), -1);
	free(said);
	config_free(call.cfg);
}

static void private_dir_is_made_private_or_refused(void **state)
{
	char dir[64], link[80];
	struct stat st;

	snprintf(dir, sizeof(dir), "/tmp/vnet-xdp-secrets-dir-%d", (int)getpid());
	snprintf(link, sizeof(link), "%s-link", dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(private_dir_ensure(dir), 0); /* ours: tightened */
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(symlink(dir, link), 0);
	assert_int_equal(private_dir_ensure(link), -ENOTDIR);
	assert_int_equal(chown(dir, NOBODY, NOBODY), 0);
	assert_int_equal(private_dir_ensure(dir), -EPERM);
	unlink(link);
	rmdir(dir);
}

/* ---- the process ---- */

static void process_holding_keys_cannot_dump_core(void **state)
{
	struct rlimit core;

	assert_int_equal(process_forbid_core_dumps(), 0);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	assert_int_equal(getrlimit(RLIMIT_CORE, &core), 0);
	assert_int_equal(core.rlim_cur, 0);
	assert_int_equal(core.rlim_max, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(secret_file_readable_or_writable_by_others_is_refused),
		cmocka_unit_test(secret_file_of_another_owner_is_refused),
		cmocka_unit_test(secret_file_reached_through_a_symlink_is_refused),
		cmocka_unit_test(secret_file_is_judged_as_it_was_opened),
		cmocka_unit_test(private_secret_file_of_root_is_accepted),
		cmocka_unit_test(reload_refuses_a_secret_file_others_may_read),
		cmocka_unit_test(config_syntax_error_does_not_echo_the_text),
		cmocka_unit_test(import_syntax_error_does_not_echo_the_text),
		cmocka_unit_test(import_output_is_private_and_replaces_a_planted_symlink),
		cmocka_unit_test(param_file_gives_a_secret_off_the_command_line),
		cmocka_unit_test(secret_for_charon_is_never_written_nor_said),
		cmocka_unit_test(private_dir_is_made_private_or_refused),
		cmocka_unit_test(process_holding_keys_cannot_dump_core),
	};

	return cmocka_run_group_tests_name("secrets", tests, NULL, NULL);
}

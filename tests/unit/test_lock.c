/* The gateway's lock (user/lib/lock.c): a second command waits a bounded time, then refuses
 * with one line naming the gateway; a lock released in time passes on; the lock file is
 * private and never followed through a link; a lock taken on a file `down` removed is
 * taken again on the file in its place. Each holder is a process of its own (flock is
 * per open file), the second one forked. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "datapath/datapath.h"
#include "lib/lock.h"

static char gateway[32], lock_file[64];

static int setup(void **state)
{
	(void)state;
	snprintf(gateway, sizeof(gateway), "lk%d", (int)getpid());
	snprintf(lock_file, sizeof(lock_file), STATE_ROOT "/%s.lock", gateway);
	return 0; /* without root, each test skips: STATE_ROOT is root's */
}

static int teardown(void **state)
{
	(void)state;
	unlink(lock_file);
	return 0;
}

static long long elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000LL + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* In a child: gateway_lock(wait_ms) with stderr into `err_fd`; exits 0 when the lock was
 * got, 1 when it was refused as busy after at least wait_ms, 2 otherwise. */
static pid_t second_holder(int wait_ms, int err_fd, int inherited)
{
	pid_t pid = fork();
	struct timespec start;
	int fd;

	assert_true(pid >= 0);
	if (pid)
		return pid;
	close(inherited); /* the parent's open file: it must not keep the lock alive here */
	dup2(err_fd, STDERR_FILENO);
	clock_gettime(CLOCK_MONOTONIC, &start);
	fd = gateway_lock(gateway, wait_ms);
	if (fd >= 0)
		_exit(0);
	_exit(fd == -EBUSY && elapsed_ms(&start) >= wait_ms ? 1 : 2);
}

static int exit_code(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void a_second_holder_times_out_with_one_line_naming_the_gateway(void **state)
{
	char text[512] = "", want[256];
	int pipe_fds[2], held;
	ssize_t n;
	pid_t child;

	(void)state;
	if (geteuid() != 0)
		skip();
	held = gateway_lock(gateway, 0);
	assert_true(held >= 0);
	assert_int_equal(pipe(pipe_fds), 0);
	child = second_holder(300, pipe_fds[1], held);
	close(pipe_fds[1]);
	for (size_t len = 0; (n = read(pipe_fds[0], text + len, sizeof(text) - 1 - len)) > 0;)
		len += (size_t)n;
	close(pipe_fds[0]);
	assert_int_equal(exit_code(child), 1);
	snprintf(want, sizeof(want), "vnet-xdp: error: gateway %s is busy: another command (up, "
		 "reload, down or a collector) still holds it after 0.3 s; nothing was changed\n",
		 gateway);
	assert_string_equal(text, want);
	gateway_unlock(held);
}

/* Takes the lock, then starts a second holder that waits up to 3 s and gives it time to
 * start waiting. Returns the lock's descriptor. */
static int held_with_one_waiting(pid_t *child)
{
	int held = gateway_lock(gateway, 0);

	assert_true(held >= 0);
	*child = second_holder(3000, STDERR_FILENO, held);
	usleep(200 * 1000);
	return held;
}

static void a_lock_released_in_time_passes_to_the_second_holder(void **state)
{
	pid_t child;

	(void)state;
	if (geteuid() != 0)
		skip();
	gateway_unlock(held_with_one_waiting(&child));
	assert_int_equal(exit_code(child), 0);
}

/* `down` removes the lock file while it holds it; the waiter must not take the lock of
 * the removed file while a third command locks the new one. */
static void a_lock_on_a_removed_file_is_taken_again_on_the_new_one(void **state)
{
	struct stat st;
	int held, third;
	pid_t child;

	(void)state;
	if (geteuid() != 0)
		skip();
	held = held_with_one_waiting(&child);
	gateway_lock_remove(gateway);
	third = gateway_lock(gateway, 0); /* the new file, while the child still waits */
	assert_true(third >= 0);
	gateway_unlock(held);
	usleep(200 * 1000);
	assert_int_equal(waitpid(child, NULL, WNOHANG), 0); /* still waiting: third holds it */
	gateway_unlock(third);
	assert_int_equal(exit_code(child), 0);
	assert_int_equal(stat(lock_file, &st), 0);
}

static void the_lock_file_is_private_and_never_followed(void **state)
{
	char target[64];
	struct stat st;
	int fd;

	(void)state;
	if (geteuid() != 0)
		skip();
	snprintf(target, sizeof(target), "/tmp/vnet-xdp-lock-target.%d", (int)getpid());
	unlink(lock_file);
	mkdir(STATE_ROOT, 0700);
	assert_int_equal(symlink(target, lock_file), 0);
	assert_int_equal(gateway_lock(gateway, 0), -ELOOP);
	assert_int_equal(lstat(target, &st), -1);
	unlink(lock_file);
	fd = gateway_lock(gateway, 0);
	assert_true(fd >= 0);
	assert_int_equal(lstat(lock_file, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	gateway_unlock(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_second_holder_times_out_with_one_line_naming_the_gateway),
		cmocka_unit_test(a_lock_released_in_time_passes_to_the_second_holder),
		cmocka_unit_test(a_lock_on_a_removed_file_is_taken_again_on_the_new_one),
		cmocka_unit_test(the_lock_file_is_private_and_never_followed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

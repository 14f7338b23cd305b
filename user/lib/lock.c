#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "lib/gateway_name.h"
#include "lib/lock.h"
#include "lib/log.h"

#define POLL_MS 20

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void lock_path(const char *gateway, char *buf, size_t size)
{
	gateway_path(STATE_ROOT, gateway, ".lock", buf, size);
}

/* The lock file: never followed through a link, never readable by others. */
static int lock_file_open(const char *path)
{
	int fd;

	if (!path[0])
		return -EINVAL;
	if (mkdir(STATE_ROOT, 0700) && errno != EEXIST)
		return -errno;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* `down` removes the file while it holds the lock: a command that got the lock on the
 * removed file holds nothing and must lock the file now in its place. */
static bool lock_file_current(const char *path, int fd)
{
	struct stat held, named;

	return !fstat(fd, &held) && !lstat(path, &named) && held.st_ino == named.st_ino &&
	       held.st_dev == named.st_dev;
}

static int lock_file_reopen(const char *gateway, const char *path, int fd)
{
	if (fd >= 0)
		close(fd);
	fd = lock_file_open(path);
	if (fd < 0)
		log_error("cannot open the lock of gateway %s under %s: %s", gateway, STATE_ROOT,
			  strerror(-fd));
	return fd;
}

int gateway_lock(const char *gateway, int wait_ms)
{
	long long deadline = now_ms() + wait_ms;
	char path[300];
	int fd;

	lock_path(gateway, path, sizeof(path));
	fd = lock_file_reopen(gateway, path, -1);
	/* flock has no timeout: poll, a few times a second, until the deadline */
	while (fd >= 0) {
		if (!flock(fd, LOCK_EX | LOCK_NB)) {
			if (lock_file_current(path, fd))
				return fd;
			fd = lock_file_reopen(gateway, path, fd);
			continue;
		}
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int err = -errno;

			log_error("cannot lock gateway %s: %s", gateway, strerror(-err));
			close(fd);
			return err;
		}
		if (now_ms() >= deadline) {
			if (wait_ms > 0)
				log_error("gateway %s is busy: another command (up, reload, down or a "
					  "collector) still holds it after %d.%d s; nothing was changed",
					  gateway, wait_ms / 1000, wait_ms % 1000 / 100);
			close(fd);
			return -EBUSY;
		}
		usleep(POLL_MS * 1000);
	}
	return fd;
}

static void monitor_lock_path(const char *gateway, char *buf, size_t size)
{
	gateway_path(STATE_ROOT, gateway, ".monitor.lock", buf, size);
}

void gateway_lock_remove(const char *gateway)
{
	char path[300];

	lock_path(gateway, path, sizeof(path));
	if (path[0])
		unlink(path);
	monitor_lock_path(gateway, path, sizeof(path));
	if (path[0])
		unlink(path);
}

int gateway_monitor_lock(const char *gateway)
{
	char path[300];
	int fd;

	monitor_lock_path(gateway, path, sizeof(path));
	fd = lock_file_open(path);
	if (fd < 0)
		return fd;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd);
		return -EBUSY;
	}
	return fd;
}

void gateway_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* closing the last descriptor releases the flock */
}

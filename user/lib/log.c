#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include <systemd/sd-daemon.h>
#include "lib/log.h"

bool log_verbose;

/* systemd says in JOURNAL_STREAM which stream it connected to the journal; only on that
 * one do lines carry their priority as journald reads it ("<3>", sd-daemon.h), and no
 * program name, which the journal records itself. */
static bool stderr_is_journal(void)
{
	static int known = -1;
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (known < 0)
		known = stream && sscanf(stream, "%llu:%llu", &dev, &ino) == 2 &&
			!fstat(fileno(stderr), &st) && st.st_dev == dev && st.st_ino == ino;
	return known;
}

static void log_line(const char *priority, const char *level, const char *fmt, va_list ap)
{
	if (stderr_is_journal())
		fprintf(stderr, "%s%s", priority, level);
	else
		fprintf(stderr, "vnet-xdp: %s", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(SD_ERR, "error: ", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(SD_WARNING, "warning: ", fmt, ap);
	va_end(ap);
}

void log_notice(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(SD_NOTICE, "", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(SD_INFO, "", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_line(SD_DEBUG, "debug: ", fmt, ap);
	va_end(ap);
}

/* The libraries' messages end in their own newline, and come in pieces (a verifier log
 * line by line): each piece is passed on as it is, with our prefix and its priority. */
static int library_print(const char *priority, const char *level, const char *fmt, va_list ap)
{
	if (stderr_is_journal())
		fprintf(stderr, "%s%s", priority, level);
	else
		fprintf(stderr, "vnet-xdp: %s", level);
	return vfprintf(stderr, fmt, ap);
}

/* The libraries' warnings go to the journal at their priority. On a terminal a failed
 * command says what failed in one line of ours, and libxdp's fallbacks (a dispatcher the
 * kernel refuses, then a plain attach) make libbpf warn on the way to a success, so
 * there they are shown with -v, as are info and debug messages everywhere. */
static bool library_shown(bool warning)
{
	return log_verbose || (warning && stderr_is_journal());
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!library_shown(level == LIBBPF_WARN))
		return 0;
	if (level == LIBBPF_WARN)
		return library_print(SD_WARNING, "warning: ", fmt, ap);
	return library_print(level == LIBBPF_INFO ? SD_INFO : SD_DEBUG, "debug: ", fmt, ap);
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	if (!library_shown(level == LIBXDP_WARN))
		return 0;
	if (level == LIBXDP_WARN)
		return library_print(SD_WARNING, "warning: ", fmt, ap);
	return library_print(level == LIBXDP_INFO ? SD_INFO : SD_DEBUG, "debug: ", fmt, ap);
}

void log_setup_libraries(void)
{
	libbpf_set_print(libbpf_print);
	libxdp_set_print(libxdp_print);
}

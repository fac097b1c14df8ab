/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Logging: to stderr in the foreground (-d, or under systemd, whose journal
 * reads stderr), to syslog otherwise. log_warn appends strerror(errno);
 * fatal and fatalx are for broken invariants only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "common.h"

static const char *log_progname = "freehint";
static int log_foreground = 1;
static int log_verbose;

static void vlog(int, const char *, va_list)
    __attribute__((format(printf, 2, 0)));
static void vlog_errno(int, int, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

void
log_init(const char *progname, int foreground, int verbose)
{
	log_progname = progname;
	log_foreground = foreground;
	log_verbose = verbose;
	if (!foreground)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	tzset();
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

int
log_getverbose(void)
{
	return log_verbose;
}

static void
vlog(int pri, const char *fmt, va_list ap)
{
	static const char *const prefix[] = { [LOG_CRIT] = "fatal: ",
		[LOG_ERR] = "error: ",
		[LOG_WARNING] = "warning: ",
		[LOG_INFO] = "",
		[LOG_DEBUG] = "debug: " };
	int saved = errno;

	if (log_foreground) {
		fprintf(stderr, "%s: %s", log_progname, prefix[pri]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		fflush(stderr);
	} else
		vsyslog(pri, fmt, ap);
	errno = saved;
}

static void
vlog_errno(int pri, int err, const char *fmt, va_list ap)
{
	va_list copy;
	char *msg;
	int n;

	/* vasprintf consumes ap; the fallback needs its own copy. */
	va_copy(copy, ap);
	n = vasprintf(&msg, fmt, ap);
	if (n == -1) {
		vlog(pri, fmt, copy);
		va_end(copy);
		errno = err;
		return;
	}
	va_end(copy);
	if (log_foreground)
		fprintf(stderr, "%s: %s%s: %s\n", log_progname,
		    pri == LOG_CRIT ? "fatal: " : "warning: ", msg,
		    strerror(err));
	else
		syslog(pri, "%s: %s", msg, strerror(err));
	free(msg);
	errno = err;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(LOG_WARNING, errno, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
log_warnx_rl(struct log_rl *rl, const char *fmt, ...)
{
	struct timespec now;
	va_list ap;
	char *msg;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - rl->start >= LOG_RL_SECONDS) {
		rl->start = now.tv_sec;
		rl->logged = 0;
	}
	if (rl->logged >= LOG_RL_BURST) {
		rl->suppressed++;
		return;
	}
	rl->logged++;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	if (rl->suppressed > 0)
		log_warnx("%s (%u similar messages suppressed before)",
		    msg != NULL ? msg : fmt, rl->suppressed);
	else if (rl->logged == LOG_RL_BURST)
		log_warnx("%s (suppressing similar messages for %d s)",
		    msg != NULL ? msg : fmt, LOG_RL_SECONDS);
	else
		log_warnx("%s", msg != NULL ? msg : fmt);
	rl->suppressed = 0;
	free(msg);
}

void
fh_strvis(char *dst, size_t len, const char *src)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;

	if (len == 0)
		return;
	for (; *s != '\0'; s++) {
		if (*s >= 0x20 && *s < 0x7f && *s != '\\') {
			if (o + 1 >= len)
				break;
			dst[o++] = (char)*s;
		} else {
			if (o + 4 >= len)
				break;
			snprintf(dst + o, 5, "\\x%02x", *s);
			o += 4;
		}
	}
	dst[o] = '\0';
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(LOG_CRIT, errno, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}

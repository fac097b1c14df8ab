/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Logging: to stderr in the foreground (-d, or under systemd, whose journal
 * reads stderr), to syslog otherwise. When stderr is the journal's stream,
 * each line starts with its syslog priority as <N> so that the journal files
 * it at that priority; a terminal or a file gets plain text. log_warn
 * appends strerror(errno); fatal and fatalx are for broken invariants only.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "common.h"

static const char *log_progname = "freehint";
static int log_foreground = 1;
static int log_verbose;
static int log_journal;

static void log_prefix(int);
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
	log_journal = foreground &&
	    log_is_journal_stream(fileno(stderr), getenv("JOURNAL_STREAM"));
	if (!foreground)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	tzset();
}

/*
 * systemd sets JOURNAL_STREAM to "DEV:INO" of the stream it connects to
 * stdout and stderr; the fd is still that stream only if its device and
 * inode match (a shell redirect under the unit changes them).
 */
int
log_is_journal_stream(int fd, const char *env)
{
	uintmax_t dev, ino;
	struct stat st;
	int end = 0;

	if (env == NULL || sscanf(env, "%ju:%ju%n", &dev, &ino, &end) != 2 ||
	    env[end] != '\0')
		return 0;
	if (fstat(fd, &st) != 0)
		return 0;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

/* The start of a line on stderr: "<N>" for the journal, then the name. */
static void
log_prefix(int pri)
{
	if (log_journal)
		fprintf(stderr, "<%d>", pri);
	fprintf(stderr, "%s: ", log_progname);
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
		log_prefix(pri);
		fputs(prefix[pri], stderr);
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
	if (log_foreground) {
		log_prefix(pri);
		fprintf(stderr, "%s%s: %s\n",
		    pri == LOG_CRIT ? "fatal: " : "warning: ", msg,
		    strerror(err));
	} else
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

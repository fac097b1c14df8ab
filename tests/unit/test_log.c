/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Logging: stderr gets "<N>" priority prefixes only when it is the journal
 * stream that $JOURNAL_STREAM names (device and inode), plain text otherwise.
 */
#include <sys/stat.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "common.h"

static int tmpfile_fd(void);
static void stream_env(int, char *, size_t);
static void capture(const char *, char *, size_t);

static int
tmpfile_fd(void)
{
	char path[] = "/tmp/fh-test-log.XXXXXX";
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

/* What systemd would put in JOURNAL_STREAM for fd. */
static void
stream_env(int fd, char *buf, size_t len)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	snprintf(
	    buf, len, "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
}

/*
 * Log a warning, a warning with errno and an info line with stderr on a
 * file, JOURNAL_STREAM set to env (or unset), and return what was written.
 */
static void
capture(const char *env, char *out, size_t len)
{
	int fd, saved;
	ssize_t n;

	fd = tmpfile_fd();
	saved = dup(2);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_int_equal(dup2(fd, 2), 2);
	if (env != NULL && strcmp(env, "self") == 0) {
		char buf[64];

		stream_env(fd, buf, sizeof buf);
		setenv("JOURNAL_STREAM", buf, 1);
	} else if (env != NULL)
		setenv("JOURNAL_STREAM", env, 1);
	else
		unsetenv("JOURNAL_STREAM");
	log_init("t", 1, 0);
	log_warnx("hello %d", 1);
	errno = ENOENT;
	log_warn("open %s", "x");
	log_info("up");
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	unsetenv("JOURNAL_STREAM");
	n = pread(fd, out, len - 1, 0);
	assert_true(n >= 0);
	out[n] = '\0';
	close(fd);
}

static void
test_is_journal_stream(void **state)
{
	char env[64];
	int fd, other;

	fd = tmpfile_fd();
	other = tmpfile_fd();
	stream_env(fd, env, sizeof env);
	assert_int_equal(log_is_journal_stream(fd, env), 1);
	/* Another file on the same device: a redirect under the unit. */
	assert_int_equal(log_is_journal_stream(other, env), 0);
	assert_int_equal(log_is_journal_stream(fd, NULL), 0);
	assert_int_equal(log_is_journal_stream(fd, ""), 0);
	assert_int_equal(log_is_journal_stream(fd, "garbage"), 0);
	strcat(env, "x");
	assert_int_equal(log_is_journal_stream(fd, env), 0);
	stream_env(fd, env, sizeof env);
	assert_int_equal(log_is_journal_stream(-1, env), 0);
	close(fd);
	close(other);
}

static void
test_journal_prefixes(void **state)
{
	char out[512];

	capture("self", out, sizeof out);
	assert_string_equal(out,
	    "<4>t: warning: hello 1\n"
	    "<4>t: warning: open x: No such file or directory\n"
	    "<6>t: up\n");
}

static void
test_plain_text(void **state)
{
	char out[512];
	const char *want = "t: warning: hello 1\n"
	                   "t: warning: open x: No such file or directory\n"
	                   "t: up\n";

	capture(NULL, out, sizeof out);
	assert_string_equal(out, want);
	/* A stream that is not stderr's (stdout redirected elsewhere). */
	capture("1:2", out, sizeof out);
	assert_string_equal(out, want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_journal_stream),
		cmocka_unit_test(test_journal_prefixes),
		cmocka_unit_test(test_plain_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

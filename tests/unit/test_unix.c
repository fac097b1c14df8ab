/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unix socket addresses (lib/unix.c): a path that does not fit is
 * refused, and a socket file is told live (something listens, even with
 * its backlog full) from stale (its listener is gone), and what cannot be
 * told is said, so that a daemon never removes another's socket.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
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

static char dir[] = "/tmp/fh-test-unix.XXXXXX";

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof path, "%s/sock", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/file", dir);
	unlink(path);
	return rmdir(dir);
}

static void
test_addr_too_long(void **state)
{
	struct sockaddr_un sun;
	char path[sizeof sun.sun_path + 1];

	(void)state;
	memset(path, 'a', sizeof path - 1);
	path[sizeof path - 1] = '\0';
	errno = 0;
	assert_int_equal(fh_unix_addr(&sun, path), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	/* One byte shorter fits, with its terminator. */
	path[sizeof path - 2] = '\0';
	assert_int_equal(fh_unix_addr(&sun, path), 0);
	assert_string_equal(sun.sun_path, path);
}

static void
test_in_use(void **state)
{
	char sock[128], file[128];
	int l, fd;

	(void)state;
	snprintf(sock, sizeof sock, "%s/sock", dir);
	snprintf(file, sizeof file, "%s/file", dir);
	/* Nothing there. */
	assert_int_equal(fh_unix_in_use(sock), 0);
	/* A listener: live. */
	l = fh_unix_listen(sock, 1, SOCK_CLOEXEC);
	assert_true(l >= 0);
	assert_int_equal(fh_unix_in_use(sock), 1);
	/* Its listener closed, the file left behind: stale. */
	close(l);
	assert_int_equal(access(sock, F_OK), 0);
	assert_int_equal(fh_unix_in_use(sock), 0);
	/* A plain file where a socket was expected: nobody listens. */
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fh_unix_in_use(file), 0);
}

/* A listener whose backlog is full still listens (connect: EAGAIN). */
static void
test_in_use_backlog_full(void **state)
{
	struct sockaddr_un sun;
	char sock[128];
	int l, c[4], i, n = 0;

	(void)state;
	snprintf(sock, sizeof sock, "%s/sock", dir);
	l = fh_unix_listen(sock, 0, SOCK_CLOEXEC);
	assert_true(l >= 0);
	assert_int_equal(fh_unix_addr(&sun, sock), 0);
	for (i = 0; i < 4; i++) {
		c[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		assert_true(c[i] >= 0);
		if (connect(c[i], (struct sockaddr *)&sun, sizeof sun) != 0) {
			assert_int_equal(errno, EAGAIN);
			n++;
		}
	}
	assert_true(n > 0); /* the backlog is full */
	assert_int_equal(fh_unix_in_use(sock), 1);
	for (i = 0; i < 4; i++)
		close(c[i]);
	close(l);
	unlink(sock);
}

/* What cannot be told is said (-1 and errno), never taken as stale. */
static void
test_in_use_unknown(void **state)
{
	struct sockaddr_un sun;
	char sock[128];
	int d;

	(void)state;
	snprintf(sock, sizeof sock, "%s/sock", dir);
	/* A datagram socket bound there: a stream connect is refused with
	 * EPROTOTYPE, and the socket is somebody's. */
	d = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(d >= 0);
	assert_int_equal(fh_unix_addr(&sun, sock), 0);
	assert_int_equal(bind(d, (struct sockaddr *)&sun, sizeof sun), 0);
	errno = 0;
	assert_int_equal(fh_unix_in_use(sock), -1);
	assert_int_equal(errno, EPROTOTYPE);
	close(d);
	unlink(sock);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_too_long),
		cmocka_unit_test(test_in_use),
		cmocka_unit_test(test_in_use_backlog_full),
		cmocka_unit_test(test_in_use_unknown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

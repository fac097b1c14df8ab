/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unix socket addresses (lib/unix.c): a path that does not fit is
 * refused, and a socket file is told live (something listens) from stale
 * (its listener is gone), so that a daemon never removes another's.
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
	assert_false(fh_unix_in_use(sock));
	/* A listener: live, and a second listen must not be told stale. */
	l = fh_unix_listen(sock, 1, SOCK_CLOEXEC);
	assert_true(l >= 0);
	assert_true(fh_unix_in_use(sock));
	/* Its listener closed, the file left behind: stale. */
	close(l);
	assert_int_equal(access(sock, F_OK), 0);
	assert_false(fh_unix_in_use(sock));
	/* A plain file where a socket was expected: nobody listens. */
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_false(fh_unix_in_use(file));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_too_long),
		cmocka_unit_test(test_in_use),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

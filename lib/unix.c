/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unix socket addresses: the one place a path becomes a sockaddr_un
 * (refused when it does not fit, never cut short), a listener on one, and
 * whether something listens there already.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

int
fh_unix_addr(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun->sun_path, path);
	return 0;
}

int
fh_unix_listen(const char *path, int backlog, int flags)
{
	struct sockaddr_un sun;
	int fd, saved;

	if (fh_unix_addr(&sun, path) != 0)
		return -1;
	/* A socket file left by a previous run would make bind fail. */
	if (unlink(path) != 0 && errno != ENOENT)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | flags, 0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 ||
	    listen(fd, backlog) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * Does a process listen on path? 1 when a connect succeeds or finds the
 * backlog full; 0 when it is refused (a socket file left by a listener
 * that is gone, or not a socket) or nothing is there; -1 with errno when
 * it cannot be told (a path we may not search, a datagram socket there):
 * the caller must not remove what is there on a guess.
 */
int
fh_unix_in_use(const char *path)
{
	struct sockaddr_un sun;
	int fd, rc, err;

	if (fh_unix_addr(&sun, path) != 0)
		return -1;
	if ((fd = socket(
	         AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	rc = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	err = errno;
	close(fd);
	if (rc == 0 || err == EAGAIN)
		return 1;
	if (err == ECONNREFUSED || err == ENOENT)
		return 0;
	errno = err;
	return -1;
}

/*
 * A listening socket of sa's family (SOCK_STREAM, close-on-exec), with
 * SO_REUSEADDR where it means something; -1 with errno.
 */
int
fh_listen_addr(const struct sockaddr *sa, socklen_t len, int backlog)
{
	int fd, on = 1, saved;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (sa->sa_family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	if (bind(fd, sa, len) != 0 || listen(fd, backlog) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

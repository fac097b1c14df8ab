// SPDX-License-Identifier: GPL-2.0
/*
 * fhuser: open a file as an unprivileged user, inside the guest.
 *   fhuser UID PATH   drop to UID (gid too, no supplementary groups, no
 *                     capabilities left) and open PATH for reading
 * Prints "open ok" or "open failed: <errno name>" and exits 0 if the open
 * failed with EACCES, 1 if it succeeded, 2 on any other outcome.
 */
#include <grp.h>

#include "fhtest.h"

int
main(int argc, char **argv)
{
	uid_t uid;
	int fd;

	if (argc != 3)
		return fprintf(stderr, "usage: fhuser UID PATH\n"), 2;
	uid = strtoul(argv[1], NULL, 10);
	if (!uid)
		return fprintf(stderr, "fhuser: UID must not be 0\n"), 2;
	if (setgroups(0, NULL) || setgid(uid) || setuid(uid))
		die("drop privileges");
	if (getuid() != uid || geteuid() != uid)
		return say("fhuser: still uid %d\n", (int)geteuid()), 2;
	fd = open(argv[2], O_RDONLY);
	if (fd >= 0) {
		say("open ok\n");
		return 1;
	}
	say("open failed: %s\n", errno == EACCES ? "EACCES" : strerror(errno));
	return errno == EACCES ? 0 : 2;
}

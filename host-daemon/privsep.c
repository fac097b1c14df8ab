/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * freehintd's two processes, split as OpenBSD's daemons split theirs. The
 * parent keeps root and its capabilities: it binds the sockets, talks to
 * QEMU and libvirt (the sources), and does what needs privileges for the
 * worker (ps_parent.c). The worker is forked before anything from outside
 * is read; it serves the guests' agents, freehintctl and the metrics as
 * an unprivileged user (freehintd's own, else nobody), with no
 * capabilities and no way to gain one (no_new_privs), in an empty root.
 * It punches holes only in the backing files the parent opened for it,
 * which are guest RAM.
 */
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <linux/capability.h>

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "freehintd.h"

/*
 * LeakSanitizer reads /proc at exit, which the empty root has not: a
 * sanitizer build (the tests') keeps the worker's root as it is, and
 * everything else of the drop.
 */
#if defined(__SANITIZE_ADDRESS__)
#define PS_CHROOT 0
#else
#define PS_CHROOT 1
#endif

/* Both ends' buffers: a record must fit in the sender's (privsep.h). */
#define PS_SOCKBUF (1024 * 1024)
/* The worker's ids where no user database names one. */
#define PS_NOBODY 65534
/* How long the worker may take to end its discards at exit. */
#define PS_REAP_MS 10000

static int privsep_root_ok(const char *, char *, size_t);
static int privsep_no_caps(char *, size_t);
static void privsep_bounding_drop(void);

/*
 * Find the worker's user and make its empty root. Not root ourselves,
 * there is nothing to drop: the worker runs as we do.
 */
int
privsep_prepare(struct privsep_conf *pc, char *err, size_t errlen)
{
	struct passwd *pw;
	char *dir, *slash;

	pc->uid = getuid();
	pc->gid = getgid();
	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam(pc->user)) == NULL &&
	    (pw = getpwnam("nobody")) != NULL)
		log_warnx("worker user %s: no such user; the worker runs as "
		          "nobody (install freehintd's sysusers.d file)",
		    pc->user);
	if (pw == NULL) {
		/* A system with no user database (an initramfs): an id that
		 * owns nothing is as unprivileged. */
		log_warnx("worker user %s: no such user, nor nobody; the "
		          "worker runs as uid and gid %u",
		    pc->user, PS_NOBODY);
		pc->uid = pc->gid = PS_NOBODY;
	} else if (pw->pw_uid == 0) {
		snprintf(err, errlen, "worker user %s is root", pw->pw_name);
		return -1;
	} else {
		pc->uid = pw->pw_uid;
		pc->gid = pw->pw_gid;
	}
	/* Its parents too: an initramfs may have no /run. */
	dir = xstrdup(pc->root);
	for (slash = strchr(dir + 1, '/'); slash != NULL;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			log_warn("mkdir %s", dir);
		*slash = '/';
	}
	free(dir);
	if (mkdir(pc->root, 0555) != 0 && errno != EEXIST) {
		snprintf(
		    err, errlen, "mkdir %s: %s", pc->root, strerror(errno));
		return -1;
	}
	/* The worker's zone strings, read before it cannot. */
	tzset();
	return privsep_root_ok(pc->root, err, errlen);
}

/* Root's own, writable by nobody else, and empty. */
static int
privsep_root_ok(const char *root, char *err, size_t errlen)
{
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (lstat(root, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 022) != 0) {
		snprintf(err, errlen,
		    "%s: not a directory of root's that only root may write",
		    root);
		return -1;
	}
	if ((d = opendir(root)) == NULL) {
		snprintf(err, errlen, "%s: %s", root, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			closedir(d);
			snprintf(err, errlen, "%s: not empty", root);
			return -1;
		}
	closedir(d);
	return 0;
}

/* The bounding set, where we may (CAP_SETPCAP: root before setresuid). */
static void
privsep_bounding_drop(void)
{
	int cap;

	/* CAP_SETPCAP last: dropping the others needs it. */
	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (cap != CAP_SETPCAP)
			prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	prctl(PR_CAPBSET_DROP, CAP_SETPCAP, 0, 0, 0);
}

/*
 * No capability left in any set, whatever the user: root's permitted set
 * survives setresuid under SECBIT_KEEP_CAPS, and a daemon started by a
 * user with ambient or file capabilities would hand them on. Checked
 * with capget.
 */
static int
privsep_no_caps(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3,
		0 };
	struct __user_cap_data_struct data[2];

	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	memset(data, 0, sizeof data);
	if (syscall(SYS_capset, &hdr, data) != 0 ||
	    syscall(SYS_capget, &hdr, data) != 0 || data[0].effective != 0 ||
	    data[0].permitted != 0 || data[1].effective != 0 ||
	    data[1].permitted != 0) {
		snprintf(err, errlen, "capabilities could not all be dropped");
		return -1;
	}
	return 0;
}

/* The socketpair and the fork: 0 in the worker, its pid in the parent. */
pid_t
privsep_fork(struct privsep_conf *pc, int *fd)
{
	int sv[2], i, sz = PS_SOCKBUF;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		fatal("socketpair");
	for (i = 0; i < 2; i++) {
		/* Beyond the system's limit only with CAP_NET_ADMIN. */
		if (setsockopt(
		        sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) != 0)
			setsockopt(
			    sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		if (setsockopt(
		        sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) != 0)
			setsockopt(
			    sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	}
	fflush(NULL);
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		close(sv[0]);
		*fd = sv[1];
		return 0;
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

/*
 * In the worker, before it reads anything: the empty root, the user, and
 * no way back. Checked: getting root back must fail.
 */
int
privsep_drop(const struct privsep_conf *pc, char *err, size_t errlen)
{
	prctl(PR_SET_NAME, "freehintd-work", 0, 0, 0);
	privsep_bounding_drop();
	if (geteuid() == 0) {
		if (!PS_CHROOT)
			log_debug("worker: no chroot in a sanitizer build");
		else if (chroot(pc->root) != 0 || chdir("/") != 0) {
			snprintf(err, errlen, "chroot %s: %s", pc->root,
			    strerror(errno));
			return -1;
		}
		if (setgroups(1, &pc->gid) != 0 ||
		    setresgid(pc->gid, pc->gid, pc->gid) != 0 ||
		    setresuid(pc->uid, pc->uid, pc->uid) != 0) {
			snprintf(err, errlen, "dropping to uid %u: %s",
			    (unsigned)pc->uid, strerror(errno));
			return -1;
		}
		if (setuid(0) == 0 || seteuid(0) == 0) {
			snprintf(err, errlen, "root could be regained");
			return -1;
		}
	}
	if (privsep_no_caps(err, errlen) != 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		return -1;
	}
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer's check at exit ptraces this process. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	return 0;
}

/*
 * Wait for the worker to end its discards in flight and exit; one that
 * does not within PS_REAP_MS is killed. Says how it ended when not well,
 * and returns -1 then (under valgrind or a sanitizer, the worker's
 * errors are the daemon's).
 */
int
privsep_reap(pid_t pid)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	int status, waited = 0;
	pid_t r;

	while (
	    (r = waitpid(pid, &status, WNOHANG)) == 0 && waited < PS_REAP_MS) {
		nanosleep(&ts, NULL);
		waited += 50;
	}
	if (r == 0) {
		log_warnx(
		    "the worker (pid %ld) did not exit: killed", (long)pid);
		kill(pid, SIGKILL);
		r = waitpid(pid, &status, 0);
	}
	if (r == -1) {
		log_warn("waitpid %ld", (long)pid);
		return -1;
	}
	if (WIFSIGNALED(status)) {
		log_warnx("the worker ended by signal %d", WTERMSIG(status));
		return -1;
	}
	if (WEXITSTATUS(status) != 0) {
		log_warnx(
		    "the worker exited with status %d", WEXITSTATUS(status));
		return -1;
	}
	return 0;
}

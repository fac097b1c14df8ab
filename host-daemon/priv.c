/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The operations that need freehintd's privileges: opening a VM's RAM
 * backing and reading QEMU's descriptors (memmap.c), connecting to its
 * channel, the libvirt hook's word. The worker asks its parent for them
 * (ps_worker.c); in one process they are done here, at once. The
 * parent does them here too, for the worker, with what the VM's source
 * said rather than what the worker asked.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "freehintd.h"
#ifdef HAVE_LIBVIRT
#include "libvirt.h"
#endif

void
priv_resolve(struct vm *vm, struct memmap *m, priv_resolve_done done, void *arg)
{
	char err[256] = "", why[320];
	int rc;

	if (ps_worker_active()) {
		ps_worker_resolve(vm, m, done, arg);
		return;
	}
	rc = priv_open_backing(
	    m, vm->qemu_pid, vm->qemu_pidfd, err, sizeof err, why, sizeof why);
	done(arg, rc, err, why[0] != '\0' ? why : NULL);
}

/*
 * One request's work, here or in the parent: each region's backing
 * opened in QEMU process pid (memmap_resolve), and QEMU's devices that
 * DMA looked for with it, so that the map and that verdict come
 * together: dma names one, or is empty.
 */
int
priv_open_backing(struct memmap *m, pid_t pid, int pidfd, char *err,
    size_t errlen, char *dma, size_t dmalen)
{
	int rc;

	rc = memmap_resolve(m, pid, pidfd, err, errlen);
	if (pid <= 0 || memmap_dma_devices(pid, dma, dmalen) != 1)
		dma[0] = '\0';
	return rc;
}

void
priv_dma(struct vm *vm, priv_done done, void *arg)
{
	char why[320] = "";
	int rc = 0;

	if (ps_worker_active()) {
		ps_worker_dma(vm, done, arg);
		return;
	}
	if (vm->qemu_pid > 0)
		rc = memmap_dma_devices(vm->qemu_pid, why, sizeof why);
	done(arg, rc, why);
}

void
priv_channel(struct vm *vm, priv_fd_done done, void *arg)
{
	char err[256];
	int fd;

	if (ps_worker_active()) {
		ps_worker_channel(vm, done, arg);
		return;
	}
	fd = priv_channel_connect(
	    vm->channel, vm->qemu_pid, vm->channel_qemu, err, sizeof err);
	done(arg, fd, fd < 0 ? err : NULL);
}

void
priv_notify(const char *event, const char *name, priv_done done, void *arg)
{
	char msg[256];
	int rc = -1;

	if (ps_worker_active()) {
		ps_worker_notify(event, name, done, arg);
		return;
	}
#ifdef HAVE_LIBVIRT
	rc = vl_notify(event, name, msg, sizeof msg);
#else
	snprintf(msg, sizeof msg, "built without libvirt");
#endif
	done(arg, rc, msg);
}

/*
 * Connect to a channel's unix socket, without waiting. The guest is
 * whoever listens there: it must be QEMU (SO_PEERCRED gives the
 * listener's pid and uid), or for a static VM a process of QEMU's user,
 * never some other process that bound the path first or after QEMU's
 * socket was unlinked. Returns the connected fd; -1 and why when it
 * cannot connect; PRIV_REFUSED and why when the listener is not QEMU's.
 */
int
priv_channel_connect(const char *path, pid_t qemu_pid, bool channel_qemu,
    char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct ucred cr;
	socklen_t len = sizeof cr;
	struct stat st;
	char proc[64];
	int fd;

	if (path == NULL || fh_unix_addr(&sun, path) != 0) {
		snprintf(err, errlen, "channel path missing or too long");
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1) {
		snprintf(err, errlen, "SO_PEERCRED: %s", strerror(errno));
		close(fd);
		return PRIV_REFUSED;
	}
	if (qemu_pid > 0 && cr.pid == qemu_pid)
		return fd;
	snprintf(proc, sizeof proc, "/proc/%ld", (long)qemu_pid);
	if (!channel_qemu && qemu_pid > 0 && stat(proc, &st) == 0 &&
	    st.st_uid == cr.uid)
		return fd;
	close(fd);
	snprintf(err, errlen,
	    "its listener (pid %ld, uid %u) is not %s QEMU (pid %ld)",
	    (long)cr.pid, (unsigned)cr.uid,
	    channel_qemu ? "the VM's" : "a process of the user of",
	    (long)qemu_pid);
	return PRIV_REFUSED;
}

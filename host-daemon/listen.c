/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Where agents come from. The AF_VSOCK listener takes connections from any
 * CID and hands them to the VM that owns the CID (unknown CIDs are refused
 * and logged). For a VM with a virtio-serial channel, QEMU listens on the
 * chardev's unix socket and the daemon connects to it, reconnecting with a
 * growing delay when QEMU restarts or the socket goes away. Identity is
 * the CID or the channel, never anything the guest says.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <linux/vm_sockets.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "freehintd.h"

#define CHAN_BACKOFF_MIN_MS 200
#define CHAN_BACKOFF_MAX_MS 5000
/* A listener out of descriptors (EMFILE, ENFILE) pauses this long. */
#define ACCEPT_BACKOFF_MS 500

struct chan {
	struct vm *vm;
	struct event *ev;
	int backoff_ms;
	bool warned;
};

static struct evconnlistener *vsock_listener;
static struct accept_backoff vsock_backoff;
static struct log_rl vsock_rl;

static void vsock_accept(
    struct evconnlistener *, evutil_socket_t, struct sockaddr *, int, void *);
static void accept_error(struct evconnlistener *, void *);
static void accept_resume(evutil_socket_t, short, void *);
static void chan_try(evutil_socket_t, short, void *);
static bool chan_peer_ok(struct chan *, int);
static void chan_schedule(struct chan *, int);

int
listen_vsock(uint32_t port)
{
	struct sockaddr_vm svm;

	memset(&svm, 0, sizeof svm);
	svm.svm_family = AF_VSOCK;
	svm.svm_cid = VMADDR_CID_ANY;
	svm.svm_port = port;
	vsock_listener = evconnlistener_new_bind(ev_base, vsock_accept,
	    &vsock_backoff,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
	    16, (struct sockaddr *)&svm, sizeof svm);
	if (vsock_listener == NULL) {
		log_warn("vsock port %u", port);
		return -1;
	}
	accept_backoff_init(&vsock_backoff, vsock_listener, "vsock", NULL);
	log_info("listening on vsock port %u", port);
	return 0;
}

/*
 * An accept error that does not go away by itself (out of descriptors:
 * EMFILE, ENFILE; ENOBUFS, ENOMEM) leaves the connection in the backlog
 * and the listener readable: left enabled, it would spin. Pause it and
 * try again after a while. b is the listener's callback argument.
 */
void
accept_backoff_init(struct accept_backoff *b, struct evconnlistener *l,
    const char *name, bool (*full)(void))
{
	memset(b, 0, sizeof *b);
	b->l = l;
	b->name = name;
	b->full = full;
	b->ev = evtimer_new(ev_base, accept_resume, b);
	if (b->ev == NULL)
		fatalx("%s: evtimer_new", __func__);
	evconnlistener_set_error_cb(l, accept_error);
}

void
accept_backoff_free(struct accept_backoff *b)
{
	if (b->ev != NULL)
		event_free(b->ev);
	memset(b, 0, sizeof *b);
}

bool
accept_backoff_pending(const struct accept_backoff *b)
{
	return b->ev != NULL && evtimer_pending(b->ev, NULL);
}

static void
accept_error(struct evconnlistener *l, void *arg)
{
	struct accept_backoff *b = arg;
	struct timeval tv = { 0, ACCEPT_BACKOFF_MS * 1000 };
	int err = errno;

	if (err == EINTR || err == EAGAIN || err == ECONNABORTED)
		return;
	errno = err;
	log_warnx_rl(&b->rl, "%s: accept: %s; pausing %d ms", b->name,
	    strerror(err), ACCEPT_BACKOFF_MS);
	evconnlistener_disable(l);
	evtimer_add(b->ev, &tv);
}

static void
accept_resume(evutil_socket_t unused, short what, void *arg)
{
	struct accept_backoff *b = arg;

	if (b->full == NULL || !b->full())
		evconnlistener_enable(b->l);
}

void
listen_vsock_close(void)
{
	accept_backoff_free(&vsock_backoff);
	if (vsock_listener != NULL)
		evconnlistener_free(vsock_listener);
	vsock_listener = NULL;
}

static void
vsock_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct sockaddr_vm *svm = (struct sockaddr_vm *)sa;
	struct vm *vm;

	if (sa->sa_family != AF_VSOCK || salen < (int)sizeof *svm) {
		close(fd);
		return;
	}
	if ((vm = vm_find_cid(svm->svm_cid)) == NULL) {
		log_warnx_rl(&vsock_rl,
		    "vsock: connection from unknown cid %u refused",
		    svm->svm_cid);
		close(fd);
		return;
	}
	if (vm->guest != NULL) {
		log_warnx_rl(&vsock_rl,
		    "vm %s: second agent connection refused", vm->name);
		close(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	if (guest_new(vm, fd, VM_TRANSPORT_VSOCK) == NULL)
		close(fd);
}

static void
chan_schedule(struct chan *c, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(c->ev, &tv);
}

static void
chan_try(evutil_socket_t unused, short what, void *arg)
{
	struct chan *c = arg;
	struct vm *vm = c->vm;
	struct sockaddr_un sun;
	int fd;

	if (vm->guest != NULL)
		return;
	if (fh_unix_addr(&sun, vm->channel) != 0) {
		vm_set_error(vm, "channel path too long");
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		if (!c->warned)
			log_warn("vm %s: channel %s", vm->name, vm->channel);
		c->warned = true;
		if (fd != -1)
			close(fd);
		chan_schedule(c, c->backoff_ms);
		c->backoff_ms *= 2;
		if (c->backoff_ms > CHAN_BACKOFF_MAX_MS)
			c->backoff_ms = CHAN_BACKOFF_MAX_MS;
		return;
	}
	c->warned = false;
	if (!chan_peer_ok(c, fd)) {
		close(fd);
		chan_lost(vm);
		return;
	}
	c->backoff_ms = CHAN_BACKOFF_MIN_MS;
	if (guest_new(vm, fd, VM_TRANSPORT_CHANNEL) == NULL) {
		close(fd);
		chan_schedule(c, c->backoff_ms);
	}
}

/*
 * The guest is whoever listens on the channel's path: it must be QEMU
 * (SO_PEERCRED gives the listener's pid and uid), or for a static VM a
 * process of QEMU's user, never some other process that bound the path
 * first or after QEMU's socket was unlinked.
 */
static bool
chan_peer_ok(struct chan *c, int fd)
{
	struct vm *vm = c->vm;
	struct ucred cr;
	socklen_t len = sizeof cr;
	struct stat st;
	char path[64];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1) {
		log_warn(
		    "vm %s: channel %s: SO_PEERCRED", vm->name, vm->channel);
		return false;
	}
	if (vm->qemu_pid > 0 && cr.pid == vm->qemu_pid)
		return true;
	snprintf(path, sizeof path, "/proc/%ld", (long)vm->qemu_pid);
	if (!vm->channel_qemu && vm->qemu_pid > 0 && stat(path, &st) == 0 &&
	    st.st_uid == cr.uid)
		return true;
	vm_set_error(vm,
	    "channel: its listener (pid %ld, uid %u) is not %s QEMU "
	    "(pid %ld): refused",
	    (long)cr.pid, (unsigned)cr.uid,
	    vm->channel_qemu ? "the VM's" : "a process of the user of",
	    (long)vm->qemu_pid);
	return false;
}

void
chan_start(struct vm *vm)
{
	struct chan *c;

	if ((c = vm->chan) == NULL) {
		c = xcalloc(1, sizeof *c);
		c->vm = vm;
		c->ev = evtimer_new(ev_base, chan_try, c);
		if (c->ev == NULL)
			fatalx("%s: evtimer_new", __func__);
		vm->chan = c;
	}
	c->backoff_ms = CHAN_BACKOFF_MIN_MS;
	chan_schedule(c, 0);
}

/* The agent on the channel went away: try again after a while. */
void
chan_lost(struct vm *vm)
{
	struct chan *c = vm->chan;

	if (c == NULL)
		return;
	chan_schedule(c, c->backoff_ms);
	c->backoff_ms *= 2;
	if (c->backoff_ms > CHAN_BACKOFF_MAX_MS)
		c->backoff_ms = CHAN_BACKOFF_MAX_MS;
}

void
chan_stop(struct vm *vm)
{
	struct chan *c = vm->chan;

	if (c == NULL)
		return;
	event_free(c->ev);
	free(c);
	vm->chan = NULL;
}

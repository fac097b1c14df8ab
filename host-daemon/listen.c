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
	bool asking; /* priv_channel has not answered yet */
};

static struct evconnlistener *vsock_listener;
static struct accept_backoff vsock_backoff;
static struct log_rl vsock_rl;

static void vsock_accept(
    struct evconnlistener *, evutil_socket_t, struct sockaddr *, int, void *);
static void accept_error(struct evconnlistener *, void *);
static void accept_resume(evutil_socket_t, short, void *);
static void chan_try(evutil_socket_t, short, void *);
static void chan_connected(void *, int, const char *);
static void chan_schedule(struct chan *, int);

int
listen_vsock(uint32_t port)
{
	int fd;

	if ((fd = vsock_bind(port)) == -1)
		return -1;
	return listen_vsock_fd(fd, port);
}

/* The listening socket alone (the privileged parent binds it). */
int
vsock_bind(uint32_t port)
{
	struct sockaddr_vm svm;
	int fd;

	memset(&svm, 0, sizeof svm);
	svm.svm_family = AF_VSOCK;
	svm.svm_cid = VMADDR_CID_ANY;
	svm.svm_port = port;
	if ((fd = fh_listen_addr((struct sockaddr *)&svm, sizeof svm, 16)) ==
	    -1)
		log_warn("vsock port %u", port);
	return fd;
}

/* Take agents from a listening vsock socket, which is ours from now. */
int
listen_vsock_fd(int fd, uint32_t port)
{
	evutil_make_socket_nonblocking(fd);
	vsock_listener =
	    evconnlistener_new(ev_base, vsock_accept, &vsock_backoff,
	        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (vsock_listener == NULL) {
		log_warn("vsock port %u", port);
		close(fd);
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

	if (sa->sa_family != AF_VSOCK || salen < (int)sizeof *svm) {
		close(fd);
		return;
	}
	listen_vsock_take(fd, svm->svm_cid);
}

/*
 * An agent connected from cid (the kernel's word for it, not the
 * guest's): the VM that owns the CID takes it. fd is ours either way.
 */
void
listen_vsock_take(int fd, uint32_t cid)
{
	struct vm *vm;

	if ((vm = vm_find_cid(cid)) == NULL) {
		log_warnx_rl(&vsock_rl,
		    "vsock: connection from unknown cid %u refused", cid);
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
	struct timeval tv = fh_ms_timeval(ms);

	evtimer_add(c->ev, &tv);
}

static void
chan_try(evutil_socket_t unused, short what, void *arg)
{
	struct chan *c = arg;

	if (c->vm->guest != NULL || c->asking)
		return;
	c->asking = true;
	priv_channel(c->vm, chan_connected, c);
}

/* The connection came back (priv.c); the channel may be stopped since. */
static void
chan_connected(void *arg, int fd, const char *err)
{
	struct chan *c = arg;
	struct vm *vm = c->vm;

	c->asking = false;
	if (vm == NULL) {
		if (fd >= 0)
			close(fd);
		event_free(c->ev);
		free(c);
		return;
	}
	if (fd == PRIV_REFUSED) {
		vm_set_error(vm, "channel: %s: refused", err);
		chan_lost(vm);
		return;
	}
	if (fd == -1) {
		if (!c->warned)
			log_warnx("vm %s: channel %s", vm->name, err);
		c->warned = true;
		chan_lost(vm);
		return;
	}
	c->warned = false;
	if (vm->guest != NULL) {
		close(fd);
		return;
	}
	c->backoff_ms = CHAN_BACKOFF_MIN_MS;
	evutil_make_socket_nonblocking(fd);
	if (guest_new(vm, fd, VM_TRANSPORT_CHANNEL) == NULL) {
		close(fd);
		chan_schedule(c, c->backoff_ms);
	}
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

/*
 * The channel is dialled again after a while: its agent went away (the
 * registry's call, vm_guest_lost) or could not be reached.
 */
void
chan_lost(struct vm *vm)
{
	struct chan *c = vm->chan;

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
	vm->chan = NULL;
	/* An answer on its way frees it (chan_connected). */
	if (c->asking) {
		c->vm = NULL;
		evtimer_del(c->ev);
		return;
	}
	event_free(c->ev);
	free(c);
}

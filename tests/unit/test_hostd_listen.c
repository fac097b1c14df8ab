/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The channel side of host-daemon/listen.c: the test plays QEMU's
 * virtio-serial chardev, a unix socket it listens on, and freehintd
 * dials it once the VM's map is read (the fake source of
 * hostd_fixture.h). Who listens is checked with SO_PEERCRED: here the
 * listener is the test process itself, which is the VM's QEMU when
 * qemu_pid is our pid, a process of QEMU's user when it is init's (both
 * root), and neither for a libvirt-style VM whose QEMU is init. Delays
 * are checked from below only (a timer never fires early), so a slow
 * machine cannot fail them. A request the channel makes of the
 * privileged parent can be left unanswered: there the daemon is the
 * worker and the test its parent, on a socketpair (ps_worker.c).
 * Agents from vsock are routed by CID on socketpairs (no AF_VSOCK
 * socket is ever opened here). And the accept backoff of listen.c's
 * listeners, out of descriptors. Each case gets a fresh fixture.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "unit.h"
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "freehintd.h"
#include "hostd_fixture.h"
#include "privsep.h"

/* listen.c's CHAN_BACKOFF_MIN_MS and CHAN_BACKOFF_MAX_MS. */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000

struct event_base *ev_base;
struct config *conf;

struct fx {
	struct fake_qemu q;
	char dir[64];
	char path[100]; /* the channel */
	int lfd; /* listening, -1 until fixture_listen */
	char cpath[100]; /* a client's own address */
	struct ps_chan *parent; /* the fake parent, once fixture_worker */
};

/* What the worker asked of the fake parent. */
static struct {
	int n; /* channel requests */
	uint64_t id; /* the last one's */
	char name[64]; /* its VM */
} asked;

/* bufferevent_socket_new fails this many more times. */
static int bev_fail;

static int setup(void **);
static int teardown(void **);
static struct vm *add(struct fx *, pid_t, bool channel_qemu);
static void fixture_worker(struct fx *);
static void parent_answer(struct fx *, uint64_t, int);
static bool peer_closed(int);

static int
setup(void **state)
{
	struct fx *f;

	f = xcalloc(1, sizeof *f);
	f->lfd = -1;
	/* Timers from the clock of now, not the loop's cached time: a
	 * delay measured from a callback is then never short. */
	assert_int_equal(fixture_daemon_start("test_hostd_listen",
	                     EVENT_BASE_FLAG_NO_CACHE_TIME),
	    0);
	assert_int_equal(fake_qemu_init(&f->q), 0);
	fixture_mkdir(f->dir, sizeof f->dir, "listen", f->path, sizeof f->path,
	    "chan.sock");
	snprintf(f->cpath, sizeof f->cpath, "%s/client.sock", f->dir);
	memset(&asked, 0, sizeof asked);
	bev_fail = 0;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	/* A request still out is failed, as when the parent goes. */
	if (ps_worker_active())
		ps_worker_stop();
	ps_chan_free(f->parent);
	listen_vsock_close();
	fixture_daemon_end();
	if (f->lfd != -1)
		close(f->lfd);
	unlink(f->path);
	unlink(f->cpath);
	rmdir(f->dir);
	fake_qemu_free(&f->q);
	free(f);
	return 0;
}

static struct vm *
add(struct fx *f, pid_t qemu_pid, bool channel_qemu)
{
	struct vm_desc d = {
		.name = "vm1",
		.source = channel_qemu ? "libvirt" : "static",
		.channel = f->path,
		.channel_qemu = channel_qemu,
		.qemu_pid = qemu_pid,
	};

	return fixture_vm_desc(&f->q, &d);
}

/*
 * Out of memory for an agent's buffers, on demand: guest_new fails.
 * The test program's definition comes before libevent's.
 */
struct bufferevent *
bufferevent_socket_new(struct event_base *base, evutil_socket_t fd, int opt)
{
	static struct bufferevent *(*real)(
	    struct event_base *, evutil_socket_t, int);

	if (bev_fail > 0) {
		bev_fail--;
		return NULL;
	}
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "bufferevent_socket_new");
	assert_non_null(real);
	return real(base, fd, opt);
}

static int
parent_chan(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);

	if (name == NULL)
		return -1;
	asked.n++;
	asked.id = id;
	snprintf(asked.name, sizeof asked.name, "%s", name);
	return 0;
}

static void
parent_gone(struct ps_chan *c, const char *why)
{
	fail_msg("the worker's end: %s", why);
}

static const struct ps_handler parent_handlers[] = {
	{ PS_CHAN, parent_chan },
};

/*
 * From now on the daemon is the worker: what needs privileges is asked
 * of the test, its parent on a socketpair, which answers when it likes.
 */
static void
fixture_worker(struct fx *f)
{
	int sv[2];

	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ps_worker_start(ev_base, sv[0]);
	f->parent = ps_chan_new(ev_base, sv[1], parent_handlers,
	    FH_ARRAY_SIZE(parent_handlers), parent_gone, NULL);
}

/* The parent's answer to channel request id: connected, fd is the QEMU
 * end. The test keeps its own fd. */
static void
parent_answer(struct fx *f, uint64_t id, int fd)
{
	struct ps_buf b = { 0 };

	ps_put_u32(&b, 0);
	ps_put_str(&b, NULL);
	assert_int_equal(ps_put_fd(&b, fd), 0);
	ps_send(f->parent, PS_CHAN_DONE, id, &b);
}

/* The daemon closed the other end of fd: it reads end of file. */
static bool
peer_closed(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

/* QEMU's end of the next dial, which comes no sooner than min_ms after t0. */
static int
dialled_after(struct fx *f, uint64_t t0, uint64_t min_ms)
{
	int fd;

	fd = fixture_accept(f->lfd);
	assert_true(fh_monotonic_ms() - t0 >= min_ms - 10);
	return fd;
}

/* The daemon dials the channel: QEMU's end, once a session stands. */
static int
channel_session(struct fx *f, struct vm *vm)
{
	int fd;

	fd = fixture_accept(f->lfd);
	FIXTURE_SPIN_UNTIL(ev_base, vm->guest != NULL);
	assert_int_equal(vm->transport, VM_TRANSPORT_CHANNEL);
	return fd;
}

/* The VM's QEMU listens: dialled once the map is read, a session. */
static void
test_connect(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	int fd;

	f->lfd = fixture_listen(f->path);
	vm = add(f, getpid(), true);
	assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
	fd = channel_session(f, vm);
	assert_string_equal(vm->last_error, "");
	close(fd);
}

/*
 * The agent goes away (QEMU closed the chardev): the session ends and
 * the channel is dialled again, not at once but after the backoff.
 */
static void
test_reconnect(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	uint64_t t0;
	int fd, i;

	f->lfd = fixture_listen(f->path);
	vm = add(f, getpid(), false);
	fd = fixture_accept(f->lfd);
	for (i = 0; i < 3; i++) {
		FIXTURE_SPIN_UNTIL(ev_base, vm->guest != NULL);
		close(fd);
		t0 = fh_monotonic_ms();
		FIXTURE_SPIN_UNTIL(ev_base, vm->guest == NULL);
		assert_int_equal(vm->transport, VM_TRANSPORT_NONE);
		/* A good connection resets the delay: the least, each time. */
		fd = dialled_after(f, t0, BACKOFF_MIN_MS);
	}
	close(fd);
}

/* No listener yet (QEMU not started): dialled until there is one. */
static void
test_no_listener(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	int fd, i;

	vm = add(f, getpid(), true);
	/* A few failed attempts, about 300 ms of them. */
	for (i = 0; i < 300; i++) {
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	assert_null(vm->guest);
	assert_non_null(vm->chan);
	f->lfd = fixture_listen(f->path);
	fd = fixture_accept(f->lfd);
	FIXTURE_SPIN_UNTIL(ev_base, vm->guest != NULL);
	close(fd);
}

/*
 * A libvirt VM's channel must be served by its QEMU: the listener here
 * is not (our pid is not init's), so each connection is refused, said
 * in status, and dialled again later and later.
 */
static void
test_refused(void **state)
{
	struct fx *f = *state;
	uint64_t t[4];
	struct vm *vm;
	char want[160];
	int fd, i;

	f->lfd = fixture_listen(f->path);
	vm = add(f, 1, true);
	for (i = 0; i < 4; i++) {
		fd = fixture_accept(f->lfd);
		t[i] = fh_monotonic_ms();
		close(fd);
	}
	assert_null(vm->guest);
	snprintf(want, sizeof want,
	    "channel: its listener (pid %ld, uid %u) is not the VM's QEMU "
	    "(pid 1): refused",
	    (long)getpid(), (unsigned)getuid());
	assert_string_equal(vm->last_error, want);
	/* 200, 400, 800 ms at least: the delay doubles. */
	assert_true(t[1] - t[0] >= BACKOFF_MIN_MS - 10);
	assert_true(t[2] - t[1] >= 2 * BACKOFF_MIN_MS - 10);
	assert_true(t[3] - t[2] >= 4 * BACKOFF_MIN_MS - 10);
}

/*
 * A static VM's channel may be served by a helper of QEMU's user: with
 * init as "QEMU" (root, as we are) our listener is accepted.
 */
static void
test_static_same_user(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	int fd;

	if (getuid() != 0)
		skip();
	f->lfd = fixture_listen(f->path);
	vm = add(f, 1, false);
	fd = channel_session(f, vm);
	close(fd);
}

/* An unservable VM is never dialled. */
static void
test_unservable(void **state)
{
	struct fx *f = *state;
	struct vm_desc d = {
		.name = "u",
		.source = "static",
		.channel = f->path,
		.qemu_pid = getpid(),
		.unservable = "test",
	};
	int i;

	f->lfd = fixture_listen(f->path);
	assert_int_equal(vm_source_add(&d, fake_hmp, &f->q), 0);
	for (i = 0; i < 50; i++)
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
	assert_int_equal(accept(f->lfd, NULL, NULL), -1);
	assert_int_equal(errno, EAGAIN);
	assert_null(vm_find("u")->chan);
}

/*
 * Out of memory for the session: the connection is closed and the
 * channel dialled again after the least delay.
 */
static void
test_guest_new_fails(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	uint64_t t0;
	int fd;

	f->lfd = fixture_listen(f->path);
	bev_fail = 1;
	vm = add(f, getpid(), false);
	fd = fixture_accept(f->lfd);
	t0 = fh_monotonic_ms();
	assert_int_equal(bev_fail, 0);
	assert_null(vm->guest);
	assert_true(peer_closed(fd));
	close(fd);
	fd = dialled_after(f, t0, BACKOFF_MIN_MS);
	FIXTURE_SPIN_UNTIL(ev_base, vm->guest != NULL);
	assert_int_equal(vm->transport, VM_TRANSPORT_CHANNEL);
	close(fd);
}

/*
 * The delay doubles up to BACKOFF_MAX_MS and no further: after ten
 * failures in a row (200 ms doubled nine times is 102 s, past the
 * fixture's 30 s) the channel is still dialled, not before 5 s.
 */
static void
test_backoff_max(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	int fd, i;

	f->lfd = fixture_listen(f->path);
	vm = add(f, getpid(), false);
	assert_non_null(vm->chan);
	for (i = 0; i < 10; i++)
		chan_lost(vm);
	fd = dialled_after(f, fh_monotonic_ms(), BACKOFF_MAX_MS);
	FIXTURE_SPIN_UNTIL(ev_base, vm->guest != NULL);
	close(fd);
}

/*
 * The VM goes away while the parent has not answered the channel's
 * request: the answer, when it comes, has its connection closed and
 * frees the connector (a leak or a use after free fails under ASan and
 * valgrind).
 */
static void
test_stop_asking(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	int sv[2];

	vm = add(f, getpid(), false);
	assert_non_null(vm->chan);
	fixture_worker(f);
	FIXTURE_SPIN_UNTIL(ev_base, asked.n == 1);
	assert_string_equal(asked.name, "vm1");
	vm_source_remove("vm1");
	assert_null(vm_find("vm1"));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	parent_answer(f, asked.id, sv[0]);
	close(sv[0]);
	FIXTURE_SPIN_UNTIL(ev_base, peer_closed(sv[1]));
	assert_int_equal(asked.n, 1);
	close(sv[1]);
}

/* An agent that connects over vsock from cid; its end in *agent. */
static struct guest *
vsock_agent(struct vm *vm, uint32_t cid, int *agent)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	listen_vsock_take(sv[0], cid);
	*agent = sv[1];
	assert_non_null(vm->guest);
	return vm->guest;
}

/* The first agent's session stands: same guest and generation, open. */
static void
assert_session_kept(
    const struct vm *vm, struct guest *g, uint32_t gen, int agent)
{
	assert_ptr_equal(vm->guest, g);
	assert_int_equal(vm->agent_gen, gen);
	assert_false(peer_closed(agent));
}

/*
 * An agent came by vsock while the channel's request was out: the
 * channel's connection, when it comes, is closed; the vsock session
 * stays.
 */
static void
test_chan_after_vsock(void **state)
{
	struct fx *f = *state;
	struct guest *g;
	struct vm *vm;
	uint32_t gen;
	int a, c[2];

	vm = fixture_vm(&f->q, "vm1", 5, f->path);
	fixture_worker(f);
	FIXTURE_SPIN_UNTIL(ev_base, asked.n == 1);
	g = vsock_agent(vm, 5, &a);
	gen = vm->agent_gen;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, c), 0);
	parent_answer(f, asked.id, c[0]);
	close(c[0]);
	FIXTURE_SPIN_UNTIL(ev_base, peer_closed(c[1]));
	assert_session_kept(vm, g, gen, a);
	assert_int_equal(vm->transport, VM_TRANSPORT_VSOCK);
	close(a);
	close(c[1]);
}

/* An agent from a VM's CID: that VM's session. */
static void
test_vsock_take(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	uint32_t gen;
	int sv[2];

	vm = fixture_vm(&f->q, "vm1", 5, NULL);
	gen = vm->agent_gen;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	listen_vsock_take(sv[0], 5);
	assert_non_null(vm->guest);
	assert_int_equal(vm->transport, VM_TRANSPORT_VSOCK);
	assert_int_equal(vm->agent_gen, gen + 1);
	assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
	assert_false(peer_closed(sv[1]));
	close(sv[1]);
}

/* A CID no VM has: refused. */
static void
test_vsock_unknown_cid(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	int sv[2];

	vm = fixture_vm(&f->q, "vm1", 5, NULL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	listen_vsock_take(sv[0], 6);
	assert_true(peer_closed(sv[1]));
	assert_null(vm->guest);
	close(sv[1]);
}

/* A second agent for a VM that has one: refused, the first one kept. */
static void
test_vsock_second(void **state)
{
	struct fx *f = *state;
	struct guest *g;
	struct vm *vm;
	uint32_t gen;
	int a, b[2];

	vm = fixture_vm(&f->q, "vm1", 5, NULL);
	g = vsock_agent(vm, 5, &a);
	gen = vm->agent_gen;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	listen_vsock_take(b[0], 5);
	assert_true(peer_closed(b[1]));
	assert_session_kept(vm, g, gen, a);
	close(a);
	close(b[1]);
}

/*
 * The vsock listener given a socket of another family (a unix one, as
 * no AF_VSOCK socket is opened here): each connection refused. The
 * client's address read as a sockaddr_vm would name a VM's CID, so
 * only the family check refuses it.
 */
static void
test_vsock_family(void **state)
{
	struct fx *f = *state;
	struct sockaddr_storage ss;
	struct sockaddr_un sun;
	socklen_t sslen = sizeof ss;
	struct vm *vm;
	uint32_t cid;
	int lfd, c;

	lfd = fh_unix_listen(f->path, 8, SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_int_not_equal(lfd, -1);
	assert_int_equal(listen_vsock_fd(lfd, 1024), 0);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_not_equal(c, -1);
	fixture_sun(&sun, f->cpath);
	assert_int_equal(bind(c, (struct sockaddr *)&sun, sizeof sun), 0);
	assert_int_equal(getsockname(c, (struct sockaddr *)&ss, &sslen), 0);
	assert_true(sslen >= sizeof(struct sockaddr_vm));
	memcpy(&cid, (char *)&ss + offsetof(struct sockaddr_vm, svm_cid),
	    sizeof cid);
	assert_int_not_equal(cid, 0);
	vm = fixture_vm(&f->q, "vm1", cid, NULL);
	fixture_sun(&sun, f->path);
	assert_int_equal(connect(c, (struct sockaddr *)&sun, sizeof sun), 0);
	FIXTURE_SPIN_UNTIL(ev_base, peer_closed(c));
	assert_null(vm->guest);
	close(c);
}

static int accepted; /* by count_accept */

static void
count_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	close(fd);
	accepted++;
}

/*
 * accept_backoff: out of descriptors (EMFILE), the connection stays in
 * the backlog and the listener would spin; it pauses instead, and takes
 * the connection once descriptors are back, after ACCEPT_BACKOFF_MS.
 */
static void
test_accept_backoff_emfile(void **state)
{
	struct fx *f = *state;
	struct accept_backoff b;
	struct evconnlistener *l;
	struct sockaddr_un sun;
	struct rlimit old, low;
	int c, c2, k, i, fill[17];
	size_t n;

	f->lfd = fh_unix_listen(f->path, 8, SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_int_not_equal(f->lfd, -1);
	/* Already listening (backlog 0); the fd stays the fixture's. */
	l = evconnlistener_new(ev_base, count_accept, &b, 0, 0, f->lfd);
	assert_non_null(l);
	accept_backoff_init(&b, l, "test", NULL);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_not_equal(c, -1);
	fixture_sun(&sun, f->path);
	assert_int_equal(connect(c, (struct sockaddr *)&sun, sizeof sun), 0);
	/*
	 * Every descriptor below a lowered limit in use: accept fails
	 * EMFILE. Given back by closing them, not by raising the limit
	 * again (valgrind keeps a limit of its own).
	 */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	k = dup(0);
	assert_int_not_equal(k, -1);
	low = old;
	low.rlim_cur = (rlim_t)k + 16;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	fill[0] = k;
	for (n = 1; n < FH_ARRAY_SIZE(fill); n++)
		if ((fill[n] = dup(0)) == -1)
			break;
	assert_int_equal(fill[n], -1);
	assert_int_equal(errno, EMFILE);
	for (i = 0; i < 50; i++)
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
	assert_true(accept_backoff_pending(&b));
	assert_int_equal(accepted, 0);
	while (n-- > 0)
		close(fill[n]);
	setrlimit(RLIMIT_NOFILE, &old);
	/* Resumed: a new client is taken too (under valgrind, whose EMFILE
	 * is its own, the first one was dropped). */
	c2 = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_not_equal(c2, -1);
	assert_int_equal(connect(c2, (struct sockaddr *)&sun, sizeof sun), 0);
	FIXTURE_SPIN_UNTIL(
	    ev_base, accepted >= 1 && !accept_backoff_pending(&b));
	close(c);
	close(c2);
	accept_backoff_free(&b);
	evconnlistener_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		UNIT_FX(test_connect),
		UNIT_FX(test_reconnect),
		UNIT_FX(test_no_listener),
		UNIT_FX(test_refused),
		UNIT_FX(test_static_same_user),
		UNIT_FX(test_unservable),
		UNIT_FX(test_guest_new_fails),
		UNIT_FX(test_backoff_max),
		UNIT_FX(test_stop_asking),
		UNIT_FX(test_chan_after_vsock),
		UNIT_FX(test_vsock_take),
		UNIT_FX(test_vsock_unknown_cid),
		UNIT_FX(test_vsock_second),
		UNIT_FX(test_vsock_family),
		UNIT_FX(test_accept_backoff_emfile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

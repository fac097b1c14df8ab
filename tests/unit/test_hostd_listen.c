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
 * machine cannot fail them. And the accept backoff of listen.c's
 * listeners, out of descriptors. Each case gets a fresh fixture.
 */
#include <errno.h>
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

#include "unit.h"
#include <event2/event.h>
#include <event2/listener.h>

#include "freehintd.h"
#include "hostd_fixture.h"

/* listen.c's CHAN_BACKOFF_MIN_MS. */
#define BACKOFF_MIN_MS 200

struct event_base *ev_base;
struct config *conf;

struct fx {
	struct fake_qemu q;
	char dir[64];
	char path[100]; /* the channel */
	int lfd; /* listening, -1 until fixture_listen */
};

static int setup(void **);
static int teardown(void **);
static struct vm *add(struct fx *, pid_t, bool channel_qemu);

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
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	fixture_daemon_end();
	if (f->lfd != -1)
		close(f->lfd);
	unlink(f->path);
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
	fd = fixture_accept(f->lfd);
	FIXTURE_SPIN_UNTIL(ev_base, vm->guest != NULL);
	assert_int_equal(vm->transport, VM_TRANSPORT_CHANNEL);
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
		fd = fixture_accept(f->lfd);
		/* A good connection resets the delay: the least, each time. */
		assert_true(fh_monotonic_ms() - t0 >= BACKOFF_MIN_MS - 10);
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
	fd = fixture_accept(f->lfd);
	FIXTURE_SPIN_UNTIL(ev_base, vm->guest != NULL);
	assert_int_equal(vm->transport, VM_TRANSPORT_CHANNEL);
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
		UNIT_FX(test_accept_backoff_emfile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

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
 * machine cannot fail them. Each case gets a fresh fixture.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "unit.h"
#include <event2/event.h>

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

	log_init("test_hostd_listen", 1, 0);
	f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->lfd = -1;
	/* Timers from the clock of now, not the loop's cached time: a
	 * delay measured from a callback is then never short. */
	assert_int_equal(
	    fixture_daemon_start(EVENT_BASE_FLAG_NO_CACHE_TIME), 0);
	assert_int_equal(fake_qemu_init(&f->q), 0);
	snprintf(f->dir, sizeof f->dir, "/tmp/fh-listen-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/chan.sock", f->dir);
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
	struct vm *vm;

	assert_int_equal(vm_source_add(&d, fake_hmp, &f->q), 0);
	vm = vm_find("vm1");
	assert_non_null(vm);
	return vm;
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_no_listener, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_static_same_user, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unservable, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

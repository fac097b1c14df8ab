/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The privileged parent's end of freehintd's two processes (ps_parent.c)
 * serves a worker only within what the VM's source said. The test plays
 * the worker, on the other end of a real SOCK_SEQPACKET socketpair
 * (privsep_fixture.h), against the real parent end: the worker parses
 * everything guests send, so it is the one that may be taken over.
 */
#include <sys/socket.h>
#include <sys/stat.h>

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
#include <event2/event.h>

#include "freehintd.h"
#include "hostd_fixture.h"
#include "privsep.h"
#include "privsep_fixture.h"

struct event_base *ev_base;
struct config *conf;

/* The fake source's monitor. */
static char hmp_cmd[256];
static int hmp_calls;

/* A monitor that does not answer keeps the calls here. */
static bool hmp_mute;
static struct {
	vm_hmp_done done;
	void *arg;
} held_calls[PS_INFLIGHT_MAX];

static void
monitor_hmp(void *ctx, const char *cmd, vm_hmp_done done, void *arg)
{
	snprintf(hmp_cmd, sizeof hmp_cmd, "%s", cmd);
	if (hmp_mute) {
		held_calls[hmp_calls].done = done;
		held_calls[hmp_calls].arg = arg;
		hmp_calls++;
		return;
	}
	hmp_calls++;
	done(arg, "the monitor's answer");
}

static int
setup(void **state)
{
	(void)state;
	if (ps_fixture_setup("test_hostd_ps_parent") != 0)
		return -1;
	hmp_calls = 0;
	hmp_mute = false;
	ps_parent_failed = false;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ps_parent_stop();
	ps_fixture_teardown();
	return 0;
}

/* The parent's end on sv[0], with one VM the source knows, no channel. */
static void
parent_with_vm(void)
{
	struct vm_desc d = { .name = "a", .source = "static" };

	ps_parent_start(ev_base, sv[0], getpid());
	assert_int_equal(vm_source_add(&d, monitor_hmp, NULL), 0);
	UNIT_SPIN_UNTIL(turn(), 1000, got.type == PS_SRC_ADD);
	assert_string_equal(got.str, "a");
}

static void
send_name(uint32_t type, uint64_t id, const char *name, const char *more)
{
	struct ps_buf b = { 0 };

	ps_put_str(&b, name);
	if (more != NULL)
		ps_put_str(&b, more);
	ps_send(mine, type, id, &b);
}

/* The sources' calls reach the worker's end. */
static void
test_parent_forwards(void **state)
{
	(void)state;
	parent_with_vm();
	assert_false(ps_parent_failed);
}

/* Monitor commands the registry reads the map with reach the source. */
static void
test_parent_hmp_allowed(void **state)
{
	(void)state;
	parent_with_vm();
	send_name(PS_HMP, 4, "a", "info migrate");
	UNIT_SPIN_UNTIL(turn(), 1000, got.id == 4);
	assert_string_equal(hmp_cmd, "info migrate");
	send_name(PS_HMP, 5, "a", "gpa2hva 0x100000");
	UNIT_SPIN_UNTIL(turn(), 1000, got.id == 5);
	assert_int_equal(got.id, 5);
	assert_int_equal(hmp_calls, 2);
	assert_string_equal(hmp_cmd, "gpa2hva 0x100000");
	assert_string_equal(got.str, "the monitor's answer");
	/* A VM the source never named: failed, the source not asked. */
	send_name(PS_HMP, 6, "b", "info mtree -f");
	UNIT_SPIN_UNTIL(turn(), 1000, got.id == 6);
	assert_true(got.str_null);
	assert_int_equal(hmp_calls, 2);
	assert_false(ps_parent_failed);
}

/* A worker taken over asks QEMU to quit, or to run anything but the
 * read-only list: refused, and the worker is given up. */
static void
test_parent_hmp_refused(void **state)
{
	static const char *const bad[] = { "quit", "qom-get /machine type; q",
		"gpa2hva 0x1 quit", "info mtree\nquit", "migrate tcp:x:1",
		"qom-set /machine x 1", "qom-get /machine", "gpa2hva 0x" };
	size_t i;

	(void)state;
	for (i = 0; i < FH_ARRAY_SIZE(bad); i++) {
		if (i > 0) {
			teardown(NULL);
			setup(NULL);
		}
		parent_with_vm();
		send_name(PS_HMP, 9, "a", bad[i]);
		UNIT_SPIN_UNTIL(turn(), 1000, ps_parent_failed);
		assert_int_equal(hmp_calls, 0);
	}
}

/* A monitor that never answers: the worker may have PS_INFLIGHT_MAX
 * commands out at it, no more; the next one fails at once. */
static void
test_parent_inflight_capped(void **state)
{
	int i;

	(void)state;
	parent_with_vm();
	hmp_mute = true;
	for (i = 0; i <= PS_INFLIGHT_MAX; i++)
		send_name(PS_HMP, 100 + (uint64_t)i, "a", "info mtree -f");
	UNIT_SPIN_UNTIL(turn(), 1000, got.id == 100 + PS_INFLIGHT_MAX);
	assert_true(got.str_null);
	assert_int_equal(got.count, 2); /* the add, and the one refused */
	assert_int_equal(hmp_calls, PS_INFLIGHT_MAX);
	/* Answered, they are passed on; the worker is still served. */
	for (i = 0; i < PS_INFLIGHT_MAX; i++)
		held_calls[i].done(held_calls[i].arg, "late");
	UNIT_SPIN_UNTIL(turn(), 1000, got.count == 2 + PS_INFLIGHT_MAX);
	assert_false(ps_parent_failed);
}

/* Backing fds only for a VM the source named, in the process it named. */
static void
test_parent_resolve(void **state)
{
	struct ps_buf b = { 0 };

	(void)state;
	parent_with_vm();
	ps_put_str(&b, "nosuch");
	ps_put_u32(&b, 1);
	ps_put_u64(&b, 0);
	ps_put_u64(&b, 1 << 20);
	ps_put_u64(&b, 0x7f0000000000);
	ps_send(mine, PS_RESOLVE, 3, &b);
	UNIT_SPIN_UNTIL(turn(), 1000, got.type == PS_RESOLVE_DONE);
	assert_int_equal(got.u32, 1);
	assert_string_equal(got.str, "no such VM");
	assert_int_equal(got.u64, 0);
	/* Known, but the source named no process: nothing opened. */
	ps_put_str(&b, "a");
	ps_put_u32(&b, 1);
	ps_put_u64(&b, 0);
	ps_put_u64(&b, 1 << 20);
	ps_put_u64(&b, 0x7f0000000000);
	ps_send(mine, PS_RESOLVE, 4, &b);
	UNIT_SPIN_UNTIL(turn(), 1000, got.id == 4);
	assert_int_equal(got.u32, 1);
	assert_string_equal(got.str, "no QEMU process");
	assert_true(got.str_null);
	assert_false(mine_lost);
	/* More regions than a record may carry fds for: given up. */
	ps_put_str(&b, "a");
	ps_put_u32(&b, PS_MAX_REGIONS + 1);
	ps_send(mine, PS_RESOLVE, 5, &b);
	UNIT_SPIN_UNTIL(turn(), 1000, ps_parent_failed);
}

/* Only the channel the source gave: none here. */
static void
test_parent_channel(void **state)
{
	(void)state;
	parent_with_vm();
	send_name(PS_CHAN, 8, "a", NULL);
	UNIT_SPIN_UNTIL(turn(), 1000, got.type == PS_CHAN_DONE);
	assert_int_equal(got.u32, 1);
	assert_string_equal(got.str, "no channel known for this VM");
	assert_false(ps_parent_failed);
}

/* An answer to no request, or a request of no known type: given up. */
static void
test_parent_unknown_type(void **state)
{
	(void)state;
	parent_with_vm();
	send_name(PS_SRC_ADD, 1, "a", NULL);
	UNIT_SPIN_UNTIL(turn(), 1000, ps_parent_failed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		UNIT_FX(test_parent_forwards),
		UNIT_FX(test_parent_hmp_allowed),
		UNIT_FX(test_parent_hmp_refused),
		UNIT_FX(test_parent_inflight_capped),
		UNIT_FX(test_parent_resolve),
		UNIT_FX(test_parent_channel),
		UNIT_FX(test_parent_unknown_type),
	};

	return UNIT_RUN("test_hostd_ps_parent", tests);
}

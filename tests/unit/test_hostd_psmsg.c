/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The message layer between freehintd's two processes (psmsg.c): fields
 * and descriptors go across as sent, and a message that does not check
 * is refused and its channel given up. Real channels on the two ends of
 * a SOCK_SEQPACKET socketpair (privsep_fixture.h).
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

static int
setup(void **state)
{
	(void)state;
	return ps_fixture_setup("test_hostd_psmsg");
}

static int
teardown(void **state)
{
	(void)state;
	ps_fixture_teardown();
	return 0;
}

/* Fields and a descriptor go across as sent. */
static void
test_round_trip(void **state)
{
	struct ps_chan *other;
	struct ps_buf b = { 0 };
	struct stat a, c;
	int fd;

	(void)state;
	other = ps_chan_new(ev_base, sv[0], mine_handlers,
	    FH_ARRAY_SIZE(mine_handlers), mine_gone, NULL);
	fd = memfd_create("privsep", MFD_CLOEXEC);
	assert_true(fd >= 0);
	ps_put_u32(&b, 7);
	ps_put_u64(&b, UINT64_MAX - 1);
	ps_put_str(&b, "pc.ram");
	ps_put_str(&b, NULL);
	assert_int_equal(ps_put_fd(&b, fd), 0);
	ps_send(other, 999, 42, &b);
	UNIT_SPIN_UNTIL(turn(), 1000, got.count == 1);
	assert_int_equal(got.id, 42);
	assert_int_equal(got.u32, 7);
	assert_true(got.u64 == UINT64_MAX - 1);
	assert_string_equal(got.str, "pc.ram");
	assert_true(got.str_null);
	assert_true(got.fd >= 0 && got.fd != fd);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstat(got.fd, &c), 0);
	assert_true(a.st_ino == c.st_ino && a.st_dev == c.st_dev);
	assert_false(mine_lost);
	close(fd);
	ps_chan_free(other);
}

/* A record shorter than a header: the channel is given up. */
static void
test_malformed_short(void **state)
{
	(void)state;
	assert_int_equal(write(sv[0], "xyz", 3), 3);
	UNIT_SPIN_UNTIL(turn(), 1000, mine_lost);
	assert_int_equal(got.count, 0);
	close(sv[0]);
}

/* A string running past its message: not taken, and given up. */
static void
test_malformed_string(void **state)
{
	struct {
		uint32_t type, len;
		uint64_t id;
		uint32_t status, slen;
		char s[4];
	} m;

	(void)state;
	memset(&m, 0, sizeof m);
	m.type = PS_CHAN_DONE;
	m.len = sizeof m - 16;
	m.id = m.status = 1;
	m.slen = 100;
	memcpy(m.s, "abc", 4);
	assert_int_equal(write(sv[0], &m, sizeof m), (ssize_t)sizeof m);
	UNIT_SPIN_UNTIL(turn(), 1000, mine_lost);
	assert_string_equal(got.str, "");
	close(sv[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		UNIT_FX(test_round_trip),
		UNIT_FX(test_malformed_short),
		UNIT_FX(test_malformed_string),
	};

	return UNIT_RUN("test_hostd_psmsg", tests);
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the tests of freehintd's two processes share (psmsg.c, ps_parent.c):
 * a real SOCK_SEQPACKET socketpair sv, the test's channel on sv[1] (mine)
 * and what it received last (got), on the daemon's globals
 * (hostd_fixture.h). Included after "unit.h" and "hostd_fixture.h".
 */
#ifndef FH_PRIVSEP_FIXTURE_H
#define FH_PRIVSEP_FIXTURE_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "freehintd.h"
#include "privsep.h"

/* What the test's end received last. */
static struct {
	uint32_t type;
	uint64_t id;
	uint32_t u32;
	uint64_t u64;
	char str[256];
	bool str_null;
	int fd;
	int count;
} got;
static int sv[2];
static struct ps_chan *mine; /* the test's end */
static bool mine_lost;

static inline void
turn(void)
{
	event_base_loop(ev_base, EVLOOP_NONBLOCK);
}

static inline void
mine_gone(struct ps_chan *c, const char *why)
{
	mine_lost = true;
}

/* Any answer: its first fields, as each answer type lays them out. */
static inline int
on_any(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *s;

	got.type = type;
	got.id = id;
	got.count++;
	got.fd = -1;
	switch (type) {
	case PS_HMP_DONE:
		s = ps_get_str(rd, PS_MAX_PAYLOAD);
		got.str_null = s == NULL;
		snprintf(got.str, sizeof got.str, "%s", s ? s : "");
		break;
	case PS_RESOLVE_DONE:
		got.u32 = ps_get_u32(rd);
		s = ps_get_str(rd, PS_STR_MAX);
		snprintf(got.str, sizeof got.str, "%s", s ? s : "");
		ps_get_u32(rd);
		got.u64 = ps_get_u32(rd); /* regions: none here */
		got.str_null = ps_get_str(rd, PS_STR_MAX) == NULL; /* dma */
		break;
	case PS_CHAN_DONE:
		got.u32 = ps_get_u32(rd);
		s = ps_get_str(rd, PS_STR_MAX);
		snprintf(got.str, sizeof got.str, "%s", s ? s : "");
		break;
	case PS_SRC_ADD:
		s = ps_get_str(rd, PS_STR_MAX);
		snprintf(got.str, sizeof got.str, "%s", s ? s : "");
		rd->left = 0; /* the rest is the registry's */
		break;
	default:
		/* The round trip's message: every kind of field. */
		got.u32 = ps_get_u32(rd);
		got.u64 = ps_get_u64(rd);
		s = ps_get_str(rd, 64);
		snprintf(got.str, sizeof got.str, "%s", s ? s : "");
		got.str_null = ps_get_str(rd, 64) == NULL;
		got.fd = ps_get_fd(rd);
		break;
	}
	return 0;
}

static const struct ps_handler mine_handlers[] = {
	{ PS_HMP_DONE, on_any },
	{ PS_RESOLVE_DONE, on_any },
	{ PS_CHAN_DONE, on_any },
	{ PS_SRC_ADD, on_any },
	{ 999, on_any },
};

/* The daemon's globals under prog's name, sv, and the test's end on sv[1]. */
static inline int
ps_fixture_setup(const char *prog)
{
	if (fixture_daemon_start(prog, 0) != 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	memset(&got, 0, sizeof got);
	got.fd = -1;
	mine_lost = false;
	mine = ps_chan_new(ev_base, sv[1], mine_handlers,
	    FH_ARRAY_SIZE(mine_handlers), mine_gone, NULL);
	return 0;
}

static inline void
ps_fixture_teardown(void)
{
	ps_chan_free(mine);
	if (got.fd != -1)
		close(got.fd);
	fixture_daemon_end();
}

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * /proc/freehint/blocks: the free lists, read periodically and on the
 * host's request. The host gets free memory per order as Stats, and on
 * SNAPSHOT the blocks themselves as HINT ranges, which it only counts
 * (the guest may allocate them a moment later). One snapshot is sent at a
 * time, in batches as flow control allows; a new request replaces it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "agent.h"

struct snapshot {
	struct agent *agent;
	char *path;
	struct event *ev_timer;
	struct fh_rangeset hints;
	size_t hint_off; /* hints[hint_off..] are still to send */
};

static int snapshot_read(struct snapshot *, uint64_t by_order[],
    struct fh_rangeset *, unsigned min_order);
static void snapshot_timer_cb(int, short, void *);

struct snapshot *
snapshot_new(struct agent *a)
{
	struct snapshot *s;

	s = xcalloc(1, sizeof *s);
	s->agent = a;
	s->path = agent_proc_path(a, "blocks");
	fh_rs_init(&s->hints);
	s->ev_timer = event_new(a->base, -1, EV_PERSIST, snapshot_timer_cb, s);
	if (s->ev_timer == NULL)
		fatalx("%s: event_new", __func__);
	return s;
}

void
snapshot_free(struct snapshot *s)
{
	if (s == NULL)
		return;
	event_free(s->ev_timer);
	fh_rs_free(&s->hints);
	free(s->path);
	free(s);
}

/* Periodic Stats every ms milliseconds; 0 stops them. */
void
snapshot_set_interval(struct snapshot *s, uint32_t ms)
{
	struct timeval tv;

	evtimer_del(s->ev_timer);
	if (ms == 0)
		return;
	tv = fh_ms_timeval(ms);
	evtimer_add(s->ev_timer, &tv);
}

/* The host is gone: no timer, nothing left to send. */
void
snapshot_drop(struct snapshot *s)
{
	evtimer_del(s->ev_timer);
	fh_rs_clear(&s->hints);
	s->hint_off = 0;
}

static void
snapshot_timer_cb(int fd, short what, void *arg)
{
	snapshot_send_stats(arg);
}

static int
snapshot_read(struct snapshot *s, uint64_t by_order[], struct fh_rangeset *rs,
    unsigned min_order)
{
	char err[128], *buf;
	size_t len;
	int rc;

	if (kmod_read_file(s->path, &buf, &len) != 0) {
		log_warn("%s", s->path);
		agent_error(s->agent, "%s: cannot read", s->path);
		return -1;
	}
	rc = kmod_parse_blocks(
	    buf, len, min_order, by_order, rs, err, sizeof err);
	if (rc != 0) {
		log_warnx("%s: %s", s->path, err);
		agent_error(s->agent, "blocks: %s", err);
	}
	free(buf);
	return rc;
}

int
snapshot_send_stats(struct snapshot *s)
{
	uint64_t by_order[AGENT_MAX_ORDERS], free_pages = 0;
	size_t norders = 0, o;

	if (!session_ready(s->agent->session))
		return -1;
	if (snapshot_read(s, by_order, NULL, 0) != 0)
		return -1;
	for (o = 0; o < AGENT_MAX_ORDERS; o++) {
		if (by_order[o] == 0)
			continue;
		free_pages += by_order[o] << o;
		norders = o + 1;
	}
	session_send_stats(s->agent->session, by_order, norders,
	    free_pages * s->agent->page_size);
	return 0;
}

int
snapshot_send_hints(struct snapshot *s)
{
	uint64_t by_order[AGENT_MAX_ORDERS];
	struct session *ses = s->agent->session;

	if (!session_ready(ses))
		return -1;
	s->hint_off = 0;
	if (snapshot_read(s, by_order, &s->hints, session_min_order(ses)) !=
	    0) {
		fh_rs_clear(&s->hints);
		return -1;
	}
	log_debug("snapshot: %zu HINT ranges to send", s->hints.n);
	snapshot_pump(s);
	return 0;
}

/* Send the rest of the snapshot while the host has room. */
void
snapshot_pump(struct snapshot *s)
{
	struct session *ses;
	struct fh_rangeset view;
	struct kbatch *kb;
	size_t n;

	while (s->hint_off < s->hints.n &&
	    session_free_slots(ses = s->agent->session) > 0) {
		n = s->hints.n - s->hint_off;
		if (n > session_batch_ranges(ses))
			n = session_batch_ranges(ses);
		view.r = s->hints.r + s->hint_off;
		view.n = view.cap = n;
		s->hint_off += n;
		kb = xcalloc(1, sizeof *kb);
		kb->hint = true;
		session_send_ranges(
		    ses, FREEHINT__RANGE_KIND__HINT, &view, 0, false, kb);
	}
	if (s->hint_off >= s->hints.n) {
		fh_rs_clear(&s->hints);
		s->hint_off = 0;
	}
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * /proc/freehint/report: the kernel's page reporting, one batch at a time.
 * Each batch becomes REPORTED RangeBatches (coalesced); the host's Acks
 * become "ack <id>", a rejection, a lost host or no host at all "fail
 * <id>" at once, so the kernel puts the pages back.
 *
 * What is sent keeps the headroom (headroom.c) of free memory unreported:
 * a batch that would leave less is sent only in part (the pages sent are
 * discarded; the rest, acknowledged with them, stays with the guest and
 * is not offered again until it has been allocated), or failed back when
 * there is nothing to spare. A failed batch ends the kernel's pass, which
 * is what a guest without memory to spare wants.
 *
 * With report-defer-rate set, a guest that allocates faster than that in
 * the REPORT_PROBE_MS after a batch is read has the batch failed back too
 * (allocrate.c): the older, all-or-nothing policy, off by default. The
 * rate is taken then, not over the past: the kernel reports 2 s after a
 * large free, often just after the allocations that came before it. After
 * a quiet probe the next batches go without one for REPORT_QUIET_MS.
 * Nothing is queued here: while max_inflight batches are out, the next
 * kernel batch is left unread in the module, which times it out by
 * itself.
 *
 * After a batch failed back the kernel's reporting sleeps until the next
 * large free, which a guest gone quiet may never make: once a host is
 * there and there is memory to spare again, "rearm" has the kernel walk
 * its free lists again. The first connection does the same for what was
 * freed before the agent ran.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"

#define REPORT_PROBE_MS 200
/* After a quiet probe, the kernel's next batches go without one. */
#define REPORT_QUIET_MS 1000
/* Spare memory worth a new pass of the kernel over its free lists. */
#define REPORT_REARM_MIN_BYTES (8ULL << 20)
/*
 * With that much spare and no batch for this long, rearm anyway: the
 * kernel starts a pass only on a free that leaves a block of its
 * reporting order, and a batch's block put back merges with neighbours
 * freed meanwhile without one. A rearm that brings nothing doubles the
 * wait, up to REPORT_STALE_MAX_MS (spare memory in small pieces never
 * comes).
 */
#define REPORT_STALE_MS     1000
#define REPORT_STALE_MAX_MS 64000

struct report {
	struct agent *agent;
	char *path;
	int fd;
	struct event *ev;
	bool armed;
	bool dead; /* the module went away: never read again */
	bool owed; /* a batch failed back since the last rearm */
	uint64_t last_ms; /* the last batch read, or rearm */
	uint64_t stale_ms; /* the wait before the next stale rearm */
	struct allocrate *rate;
	struct headroom headroom;
	/* A batch read, waiting REPORT_PROBE_MS to see the guest's rate. */
	struct event *ev_probe;
	struct kbatch *probe_kb;
	uint64_t probe_pages, probe_ms;
	uint64_t quiet_until_ms;
	struct kbatch_list kbs; /* sent, waiting for the host */
	/* Sent, the host gone: given back when their lease is over. */
	struct kbatch_list expiring;
	struct event *ev_expire;
	struct fh_rangeset rs;
	uint32_t rs_grace_ms;
	char buf[AGENT_KBUF_SIZE];
};

static void report_read_cb(int, short, void *);
static void report_arm(struct report *, bool);
static void report_fail(struct report *, uint64_t id, const char *why);
static void report_tick(void *);
static void report_probe_cb(int, short, void *);
static void report_send(struct report *, struct kbatch *);
static void report_expire_cb(int, short, void *);
static void report_kbatch_done(struct kbatch *, void *);
static uint64_t report_keep_pages(const struct report *);
static int report_headroom(struct report *, uint64_t id);

/* Open the report channel; NULL with *err = errno when it cannot be. */
struct report *
report_open(struct agent *a, int *err)
{
	struct report *r;
	int fd;

	r = xcalloc(1, sizeof *r);
	r->agent = a;
	r->path = agent_proc_path(a, "report");
	TAILQ_INIT(&r->kbs);
	TAILQ_INIT(&r->expiring);
	fh_rs_init(&r->rs);
	/* Exclusive in the module: EBUSY means another agent runs. */
	fd = open(r->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		*err = errno;
		free(r->path);
		free(r);
		return NULL;
	}
	r->fd = fd;
	r->owed = true;
	r->stale_ms = REPORT_STALE_MS;
	r->last_ms = fh_monotonic_ms();
	kmod_lock_buffer(r->path, r->buf, sizeof r->buf);
	headroom_init(&r->headroom);
	r->rate = allocrate_new(
	    a->base, "/proc/vmstat", &r->headroom, report_tick, r);
	r->ev_probe = evtimer_new(a->base, report_probe_cb, r);
	r->ev_expire = evtimer_new(a->base, report_expire_cb, r);
	if (r->ev_probe == NULL || r->ev_expire == NULL)
		fatalx("%s: evtimer_new", __func__);
	r->ev = event_new(a->base, fd, EV_READ | EV_PERSIST, report_read_cb, r);
	if (r->ev == NULL)
		fatalx("%s: event_new", __func__);
	report_arm(r, true);
	return r;
}

/* The session is gone by now, so every batch has been answered. */
void
report_free(struct report *r)
{
	struct kbatch *kb;

	if (r == NULL)
		return;
	while ((kb = TAILQ_FIRST(&r->kbs)) != NULL) {
		TAILQ_REMOVE(&r->kbs, kb, entry);
		kb->done = NULL;
	}
	/* Closing the file gives them their grace in the module. */
	while ((kb = TAILQ_FIRST(&r->expiring)) != NULL) {
		TAILQ_REMOVE(&r->expiring, kb, entry);
		free(kb);
	}
	event_free(r->ev_expire);
	/* Never sent: the host cannot be discarding it. */
	if (r->probe_kb != NULL)
		report_fail(r, r->probe_kb->kid, "stopping");
	free(r->probe_kb);
	event_free(r->ev_probe);
	allocrate_free(r->rate);
	event_free(r->ev);
	close(r->fd);
	fh_rs_free(&r->rs);
	free(r->path);
	free(r);
}

bool
report_registered(const struct report *r)
{
	return r != NULL;
}

static void
report_arm(struct report *r, bool on)
{
	if (r->dead)
		on = false;
	if (on == r->armed)
		return;
	r->armed = on;
	if (on)
		event_add(r->ev, NULL);
	else
		event_del(r->ev);
}

/* Read again once the host has room; without a host, fail at once. */
void
report_pump(struct report *r)
{
	struct session *s;

	if (r == NULL)
		return;
	s = r->agent->session;
	report_arm(r,
	    r->probe_kb == NULL &&
	        (!session_ready(s) || session_free_slots(s) > 0));
}

static void
report_fail(struct report *r, uint64_t id, const char *why)
{
	log_debug(
	    "report batch %llu failed back: %s", (unsigned long long)id, why);
	r->owed = true;
	if (kmod_answer(r->fd, "fail", id) != 0)
		log_warn("%s: fail %llu", r->path, (unsigned long long)id);
}

/* A rate in bytes a second over report-defer-rate; never when that is 0. */
static bool
report_over_limit(const struct report *r, uint64_t rate)
{
	uint32_t limit = r->agent->conf.report_defer_rate;

	return limit != 0 && rate > ((uint64_t)limit << 20);
}

/*
 * Faster than report-defer-rate over the last second, for the rearm. In
 * the first second there is no rate yet: wait for one. Without counters
 * to read, never.
 */
static bool
report_allocating_fast(const struct report *r)
{
	uint64_t rate;
	int rc;

	if (r->agent->conf.report_defer_rate == 0)
		return false;
	rc = allocrate_bytes_per_sec(r->rate, r->agent->page_size, &rate);
	if (rc != 0)
		return rc == -1;
	return report_over_limit(r, rate);
}

/* Every second, after the allocation counters were sampled. */
static void
report_tick(void *arg)
{
	struct report *r = arg;
	static const char cmd[] = "rearm\n";
	uint64_t spare, now = fh_monotonic_ms();
	bool stale = false;

	if (!session_ready(r->agent->session) || report_allocating_fast(r))
		return;
	if (r->agent->conf.report_headroom != 0 && r->headroom.free_now != 0) {
		spare = headroom_spare(
		    &r->headroom, r->headroom.free_now, report_keep_pages(r));
		if (spare * r->agent->page_size < REPORT_REARM_MIN_BYTES)
			return;
		stale = now - r->last_ms >= r->stale_ms;
	}
	if (!r->owed && !stale)
		return;
	if (!r->owed) {
		r->stale_ms *= 2;
		if (r->stale_ms > REPORT_STALE_MAX_MS)
			r->stale_ms = REPORT_STALE_MAX_MS;
	}
	r->owed = false;
	r->last_ms = now;
	if (write(r->fd, cmd, sizeof cmd - 1) != (ssize_t)(sizeof cmd - 1)) {
		log_warn("%s: rearm", r->path);
		return;
	}
	log_debug("asked the kernel to re-arm page reporting%s",
	    stale ? " (spare memory, no batch)" : "");
}

static void
report_read_cb(int fd, short what, void *arg)
{
	struct report *r = arg;
	struct session *s = r->agent->session;
	struct kbatch *kb;
	uint64_t id = UINT64_MAX;
	char err[128];
	ssize_t n;

	if (session_ready(s) &&
	    session_free_slots(s) < session_batches_needed(s, 1)) {
		report_arm(r, false);
		return;
	}
	n = read(fd, r->buf, sizeof r->buf);
	if (n == -1 && (errno == ENODEV || errno == EIO)) {
		/* The module is going away: its files are dead, and its
		 * poll says readable for ever. Stop reading them. */
		log_warn("%s: read", r->path);
		agent_error(r->agent, "report: the module went away");
		report_arm(r, false);
		r->dead = true;
		return;
	}
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("%s: read", r->path);
		return;
	}
	if (kmod_parse_batch(r->buf, (size_t)n, &id, &r->rs_grace_ms, &r->rs,
	        err, sizeof err) != 0) {
		log_warnx("%s: %s", r->path, err);
		agent_error(r->agent, "report: %s", err);
		if (id != UINT64_MAX)
			report_fail(r, id, "malformed");
		return;
	}
	r->last_ms = fh_monotonic_ms();
	r->stale_ms = REPORT_STALE_MS;
	if (!session_ready(s)) {
		report_fail(r, id, "no host");
		return;
	}
	if (report_headroom(r, id) != 0)
		return;
	kb = xcalloc(1, sizeof *kb);
	kb->done = report_kbatch_done;
	kb->done_arg = r;
	kb->kid = id;
	kb->grace_ms = r->rs_grace_ms;
	kb->bytes = fh_rs_pages(&r->rs) * r->agent->page_size;
	if (r->agent->conf.report_defer_rate != 0 &&
	    fh_monotonic_ms() >= r->quiet_until_ms &&
	    allocrate_pages(r->rate, &r->probe_pages) == 0) {
		struct timeval tv = { 0, REPORT_PROBE_MS * 1000 };

		/* r->rs is kept: nothing is read until the probe ends. */
		r->probe_kb = kb;
		r->probe_ms = fh_monotonic_ms();
		report_arm(r, false);
		evtimer_add(r->ev_probe, &tv);
		return;
	}
	report_send(r, kb);
}

/* The headroom in pages: fixed by report-headroom, or the guest's dips. */
static uint64_t
report_keep_pages(const struct report *r)
{
	uint32_t mib = r->agent->conf.report_headroom;

	if (mib == HEADROOM_AUTO)
		return headroom_pages(&r->headroom);
	return ((uint64_t)mib << 20) / r->agent->page_size;
}

/*
 * Cut r->rs down to what leaves the headroom unreported; -1 when nothing
 * of it may go (the batch is failed back). Without counters to read,
 * everything goes, as it did before there was a headroom.
 */
static int
report_headroom(struct report *r, uint64_t id)
{
	uint64_t pages = fh_rs_pages(&r->rs), keep, budget, alloc, free_pages;

	if (r->agent->conf.report_headroom == 0 ||
	    allocrate_read(r->rate, &alloc, &free_pages) != 0)
		return 0;
	keep = report_keep_pages(r);
	budget = headroom_budget(&r->headroom, free_pages, pages, keep);
	/* Whole blocks only: a budget below the first block is nothing
	 * (an empty batch is refused by the host). */
	if (budget < pages) {
		headroom_trim(&r->rs, budget);
		budget = fh_rs_pages(&r->rs);
	}
	log_debug("report batch %llu at %llu ms: %llu pages, %llu free, "
	          "%llu reported, headroom %llu: %llu go",
	    (unsigned long long)id, (unsigned long long)fh_monotonic_ms(),
	    (unsigned long long)pages, (unsigned long long)free_pages,
	    (unsigned long long)r->headroom.reported, (unsigned long long)keep,
	    (unsigned long long)budget);
	if (budget == 0) {
		r->agent->stats.batches_kept++;
		report_fail(r, id, "within the headroom");
		return -1;
	}
	r->agent->stats.bytes_kept += (pages - budget) * r->agent->page_size;
	return 0;
}

static void
report_send(struct report *r, struct kbatch *kb)
{
	TAILQ_INSERT_TAIL(&r->kbs, kb, entry);
	session_send_ranges(r->agent->session, FREEHINT__RANGE_KIND__REPORTED,
	    &r->rs, 0, false, kb);
	report_pump(r);
}

/* REPORT_PROBE_MS after the read: send the batch, or give it back. */
static void
report_probe_cb(int fd, short what, void *arg)
{
	struct report *r = arg;
	struct kbatch *kb = r->probe_kb;
	uint64_t pages, ms, rate;

	r->probe_kb = NULL;
	ms = fh_monotonic_ms();
	if (!session_ready(r->agent->session))
		report_fail(r, kb->kid, "no host");
	else if (allocrate_pages(r->rate, &pages) == 0 &&
	    allocrate_rate(r->probe_pages, r->probe_ms, pages, ms,
	        r->agent->page_size, &rate) == 0 &&
	    report_over_limit(r, rate)) {
		r->agent->stats.batches_deferred++;
		report_fail(r, kb->kid, "the guest is allocating fast");
	} else {
		r->quiet_until_ms = ms + REPORT_QUIET_MS;
		report_send(r, kb);
		return;
	}
	free(kb);
	report_pump(r);
}

/* Wake up when the first expiring batch's lease is over. */
static void
report_expire_arm(struct report *r)
{
	struct kbatch *kb = TAILQ_FIRST(&r->expiring);

	if (kb == NULL) {
		evtimer_del(r->ev_expire);
		return;
	}
	fh_evtimer_at(r->ev_expire, kb->expire_ms);
}

/*
 * Every RangeBatch of a kernel batch is answered: tell the module. One the
 * host may still be discarding waits for its lease to end first: the
 * module keeps it for us until then, however long. Leases end in the
 * order the batches were sent.
 */
static void
report_kbatch_done(struct kbatch *kb, void *arg)
{
	struct report *r = arg;

	TAILQ_REMOVE(&r->kbs, kb, entry);
	if (!kb->failed && !kb->unanswered)
		headroom_reported(
		    &r->headroom, kb->bytes / r->agent->page_size);
	if (kb->unanswered && kb->expire_ms > fh_monotonic_ms()) {
		TAILQ_INSERT_TAIL(&r->expiring, kb, entry);
		report_expire_arm(r);
		return;
	}
	kb->unanswered = 0;
	agent_kbatch_answer(r->fd, r->path, kb);
}

static void
report_expire_cb(int fd, short what, void *arg)
{
	struct report *r = arg;
	struct kbatch *kb;

	while ((kb = TAILQ_FIRST(&r->expiring)) != NULL &&
	    kb->expire_ms <= fh_monotonic_ms()) {
		TAILQ_REMOVE(&r->expiring, kb, entry);
		log_info("report batch %llu: lease over, given back",
		    (unsigned long long)kb->kid);
		kb->unanswered = 0;
		agent_kbatch_answer(r->fd, r->path, kb);
	}
	report_expire_arm(r);
	report_pump(r);
}

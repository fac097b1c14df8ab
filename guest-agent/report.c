/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * /proc/freehint/report: the kernel's page reporting, one batch at a time.
 * Each batch becomes REPORTED RangeBatches (coalesced); the host's Acks
 * become "ack <id>", a rejection, a lost host or no host at all "fail
 * <id>" at once, so the kernel puts the pages back. So does a guest that
 * allocates faster than report-defer-rate (allocrate.c): what it frees it
 * allocates again within seconds, and every discarded page would cost a
 * host fault. Nothing is queued here: while max_inflight batches are out,
 * the next kernel batch is left unread in the module, which times it out
 * by itself.
 *
 * After a batch failed back the kernel's reporting sleeps until the next
 * large free, which a guest gone quiet may never make: once a host is
 * there and the guest allocates slowly, "rearm" has the kernel walk its
 * free lists again. The first connection does the same for what was freed
 * before the agent ran.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"

struct report {
	struct agent *agent;
	char *path;
	int fd;
	struct event *ev;
	bool armed;
	bool owed; /* a batch failed back since the last rearm */
	struct allocrate *rate;
	struct kbatch_list kbs; /* sent, waiting for the host */
	struct fh_rangeset rs;
	char buf[AGENT_KBUF_SIZE];
};

static void report_read_cb(int, short, void *);
static void report_arm(struct report *, bool);
static void report_fail(struct report *, uint64_t id, const char *why);
static void report_tick(void *);

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
	r->rate = allocrate_new(a->base, "/proc/vmstat", report_tick, r);
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
		kb->source = KB_ORPHAN;
	}
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
	report_arm(r, !session_ready(s) || session_free_slots(s) > 0);
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

/*
 * Faster than report-defer-rate over the last second. In the first second
 * there is no rate yet: wait for one (the batch is owed a rearm). Without
 * counters to read, never.
 */
static bool
report_allocating_fast(const struct report *r)
{
	uint32_t limit = r->agent->conf.report_defer_rate;
	uint64_t rate;
	int rc;

	if (limit == 0)
		return false;
	rc = allocrate_bytes_per_sec(r->rate, r->agent->page_size, &rate);
	if (rc != 0)
		return rc == -1;
	return rate > ((uint64_t)limit << 20);
}

/* Every second, after the allocation counters were sampled. */
static void
report_tick(void *arg)
{
	struct report *r = arg;
	static const char cmd[] = "rearm\n";

	if (!r->owed || !session_ready(r->agent->session) ||
	    report_allocating_fast(r))
		return;
	r->owed = false;
	if (write(r->fd, cmd, sizeof cmd - 1) != (ssize_t)(sizeof cmd - 1)) {
		log_warn("%s: rearm", r->path);
		return;
	}
	log_debug("page reporting re-armed");
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
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("%s: read", r->path);
		return;
	}
	if (kmod_parse_batch(r->buf, (size_t)n, &id, &r->rs, err, sizeof err) !=
	    0) {
		log_warnx("%s: %s", r->path, err);
		agent_error(r->agent, "report: %s", err);
		if (id != UINT64_MAX)
			report_fail(r, id, "malformed");
		return;
	}
	if (!session_ready(s)) {
		report_fail(r, id, "no host");
		return;
	}
	if (report_allocating_fast(r)) {
		r->agent->stats.batches_deferred++;
		report_fail(r, id, "the guest is allocating fast");
		return;
	}
	kb = xcalloc(1, sizeof *kb);
	kb->source = KB_REPORT;
	kb->kid = id;
	agent_lease_start(r->agent, kb);
	kb->bytes = fh_rs_pages(&r->rs) * r->agent->page_size;
	TAILQ_INSERT_TAIL(&r->kbs, kb, entry);
	session_send_ranges(
	    s, FREEHINT__RANGE_KIND__REPORTED, &r->rs, 0, false, kb);
	report_pump(r);
}

/* Every RangeBatch of a kernel batch is answered: tell the module. */
void
report_kbatch_done(struct report *r, struct kbatch *kb)
{
	TAILQ_REMOVE(&r->kbs, kb, entry);
	agent_kbatch_answer(r->fd, r->path, kb);
}

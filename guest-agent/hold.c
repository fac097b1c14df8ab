/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Hint passes: on the host's HINT_PASS, "capture" free blocks through
 * /proc/freehint/hold, read them batch by batch and send them as HELD
 * ranges of the pass, the final one marked last. Each host Ack becomes
 * "ack <id>" (or "fail <id>") to the module. Everything is released on
 * the host's RELEASE, when the host goes away, after HOLD_TIMEOUT_SEC and
 * when the agent stops; closing the file releases whatever is left.
 *
 * One batch is read ahead, so that we know which batch is the last one:
 * the module answers EOF once every held block has been read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"

/* A pass the host forgets to release ends after this. */
#define HOLD_TIMEOUT_SEC 120

struct hold {
	struct agent *agent;
	char *path;
	int fd; /* -1: no pass */
	uint64_t pass_id;
	uint64_t bytes; /* sent in this pass */
	bool eof; /* the module has nothing more */
	bool last_sent;
	struct fh_rangeset cur, next;
	uint64_t cur_id, next_id; /* 0: nothing read */
	uint32_t cur_grace, next_grace; /* their grace_ms */
	struct kbatch_list kbs;
	struct event *ev_timeout;
	char buf[AGENT_KBUF_SIZE];
};

static int hold_read(
    struct hold *, struct fh_rangeset *, uint64_t *, uint32_t *);
static void hold_timeout_cb(int, short, void *);
static void hold_send(struct hold *, bool last);
static void hold_kbatch_done(struct kbatch *, void *);

struct hold *
hold_new(struct agent *a)
{
	struct hold *h;

	h = xcalloc(1, sizeof *h);
	h->agent = a;
	h->fd = -1;
	h->path = agent_proc_path(a, "hold");
	kmod_lock_buffer(h->path, h->buf, sizeof h->buf);
	TAILQ_INIT(&h->kbs);
	fh_rs_init(&h->cur);
	fh_rs_init(&h->next);
	h->ev_timeout = evtimer_new(a->base, hold_timeout_cb, h);
	if (h->ev_timeout == NULL)
		fatalx("%s: evtimer_new", __func__);
	return h;
}

void
hold_free(struct hold *h)
{
	if (h == NULL)
		return;
	hold_release(h, "agent stops");
	event_free(h->ev_timeout);
	fh_rs_free(&h->cur);
	fh_rs_free(&h->next);
	free(h->path);
	free(h);
}

uint64_t
hold_bytes(const struct hold *h)
{
	return h != NULL && h->fd != -1 ? h->bytes : 0;
}

int
hold_start(struct hold *h, uint64_t pass_id, uint32_t min_order,
    uint64_t byte_limit, bool zero)
{
	struct timeval tv = { HOLD_TIMEOUT_SEC, 0 };
	char cmd[128], limit[40] = "";
	uint64_t t0;
	ssize_t n;
	int len;

	if (h->fd != -1) {
		log_warnx("hint pass %llu refused: pass %llu still holds",
		    (unsigned long long)pass_id,
		    (unsigned long long)h->pass_id);
		return -1;
	}
	if ((h->fd = open(h->path, O_RDWR | O_CLOEXEC)) == -1) {
		log_warn(
		    "hint pass %llu: %s", (unsigned long long)pass_id, h->path);
		return -1;
	}
	/* No byte_limit: the module's own floor above the watermarks. */
	if (byte_limit != 0)
		snprintf(limit, sizeof limit, " limit=%llu",
		    (unsigned long long)byte_limit);
	/*
	 * Never what the kernel reported: the host discarded it, so it is a
	 * hole that a migration sends as a zero page anyway, and capturing
	 * it would write it (init_on_alloc) only to have it punched again.
	 */
	len = snprintf(cmd, sizeof cmd,
	    "capture min_order=%u%s%s skip_reported\n", min_order, limit,
	    zero ? " zero" : "");
	/* Synchronous in the module: bounded work, no reclaim. */
	t0 = fh_monotonic_ms();
	n = write(h->fd, cmd, (size_t)len);
	if (n != len) {
		log_warn("hint pass %llu: %s: capture",
		    (unsigned long long)pass_id, h->path);
		close(h->fd);
		h->fd = -1;
		return -1;
	}
	h->pass_id = pass_id;
	h->bytes = 0;
	h->eof = h->last_sent = false;
	h->cur_id = h->next_id = 0;
	evtimer_add(h->ev_timeout, &tv);
	/* The capture's share of the pass, for whoever weighs its cost. */
	log_info("hint pass %llu: captured in %llu ms (min_order %u%s%s)",
	    (unsigned long long)pass_id,
	    (unsigned long long)(fh_monotonic_ms() - t0), min_order, limit,
	    zero ? ", zero" : "");
	hold_pump(h);
	return 0;
}

/* Give everything back to the guest. */
void
hold_release(struct hold *h, const char *why)
{
	struct kbatch *kb;
	ssize_t n;

	if (h == NULL || h->fd == -1)
		return;
	/* Not yet sent: fail them now so they are not in flight for long. */
	if (h->cur_id != 0 && kmod_answer(h->fd, "fail", h->cur_id) != 0)
		log_warn(
		    "%s: fail %llu", h->path, (unsigned long long)h->cur_id);
	if (h->next_id != 0 && kmod_answer(h->fd, "fail", h->next_id) != 0)
		log_warn(
		    "%s: fail %llu", h->path, (unsigned long long)h->next_id);
	n = write(h->fd, "release\n", 8);
	if (n != 8)
		log_warn("%s: release", h->path);
	/* Sent and unanswered: closing gives them their grace. */
	while ((kb = TAILQ_FIRST(&h->kbs)) != NULL) {
		TAILQ_REMOVE(&h->kbs, kb, entry);
		kb->done = NULL;
	}
	close(h->fd);
	h->fd = -1;
	h->cur_id = h->next_id = 0;
	evtimer_del(h->ev_timeout);
	log_info("hint pass %llu released (%s), %llu bytes were held",
	    (unsigned long long)h->pass_id, why, (unsigned long long)h->bytes);
}

static void
hold_timeout_cb(int fd, short what, void *arg)
{
	hold_release(arg, "timeout");
}

/*
 * Read the next batch into rs. 1: a batch; 0: EOF; -1: an error (a batch
 * that could not be parsed is failed back to the module); -2: the module
 * has as much in flight as it allows: read again after an answer.
 */
static int
hold_read(
    struct hold *h, struct fh_rangeset *rs, uint64_t *id, uint32_t *grace_ms)
{
	struct session *s = h->agent->session;
	size_t want = sizeof h->buf;
	char err[128];
	ssize_t n;

	/*
	 * The module fills a batch to the buffer: no more blocks than one
	 * RangeBatch takes, so that a kernel batch never needs more pieces
	 * than the host lets in flight.
	 */
	if (session_ready(s) &&
	    AGENT_KBATCH_BYTES(session_batch_ranges(s)) < want)
		want = AGENT_KBATCH_BYTES(session_batch_ranges(s));
	*id = UINT64_MAX;
	do
		n = read(h->fd, h->buf, want);
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno == EBUSY)
		return -2;
	if (n == -1) {
		log_warn("%s: read", h->path);
		return -1;
	}
	if (n == 0)
		return 0;
	if (kmod_parse_batch(
	        h->buf, (size_t)n, id, grace_ms, rs, err, sizeof err) != 0) {
		log_warnx("%s: %s", h->path, err);
		if (*id != UINT64_MAX)
			kmod_answer(h->fd, "fail", *id);
		return -1;
	}
	if (*id == 0) {
		log_warnx("%s: batch id 0", h->path);
		return -1;
	}
	return 1;
}

/* Send cur (which may be empty when nothing was captured). */
static void
hold_send(struct hold *h, bool last)
{
	struct kbatch *kb;

	kb = xcalloc(1, sizeof *kb);
	kb->done = hold_kbatch_done;
	kb->done_arg = h;
	kb->kid = h->cur_id; /* 0: nothing to answer */
	/* Kept by the module until answered, or grace_ms after a close. */
	kb->grace_ms = h->cur_grace;
	kb->bytes = fh_rs_pages(&h->cur) * h->agent->page_size;
	h->bytes += kb->bytes;
	TAILQ_INSERT_TAIL(&h->kbs, kb, entry);
	h->cur_id = 0;
	if (last)
		h->last_sent = true;
	session_send_ranges(h->agent->session, FREEHINT__RANGE_KIND__HELD,
	    &h->cur, h->pass_id, last, kb);
	fh_rs_clear(&h->cur);
}

/* Send held batches while the host has room. */
void
hold_pump(struct hold *h)
{
	struct session *s = h->agent->session;
	struct fh_rangeset tmp;
	int rc;

	while (h->fd != -1 && !h->last_sent && session_ready(s) &&
	    session_free_slots(s) > 0) {
		if (h->cur_id == 0 && !h->eof) {
			rc = hold_read(h, &h->cur, &h->cur_id, &h->cur_grace);
			if (rc == -2) {
				h->cur_id = 0;
				break;
			}
			/* After an error, end the pass with what was sent. */
			if (rc <= 0) {
				h->eof = true;
				h->cur_id = 0;
				fh_rs_clear(&h->cur);
			}
		}
		if (h->cur_id != 0 && h->next_id == 0 && !h->eof) {
			rc =
			    hold_read(h, &h->next, &h->next_id, &h->next_grace);
			/*
			 * -2: the module has all it allows in flight, cur
			 * included. Send cur as not the last; if nothing
			 * follows, an empty last batch ends the pass.
			 */
			if (rc == -2)
				h->next_id = 0;
			else if (rc <= 0) {
				h->eof = true;
				h->next_id = 0;
			}
		}
		if (session_free_slots(s) < session_batches_needed(s, h->cur.n))
			break;
		hold_send(h, h->eof && h->next_id == 0);
		/* hold_send may end the session: look again. */
		s = h->agent->session;
		tmp = h->cur;
		h->cur = h->next;
		h->next = tmp;
		h->cur_id = h->next_id;
		h->cur_grace = h->next_grace;
		h->next_id = 0;
	}
}

/*
 * A HELD batch the host did not answer within its lease means a host
 * that is stalled or gone: the pass is over, and everything it holds goes
 * back to the guest rather than one lease after another.
 */
static void
hold_kbatch_done(struct kbatch *kb, void *arg)
{
	struct hold *h = arg;

	bool expired = kb->expired;

	TAILQ_REMOVE(&h->kbs, kb, entry);
	agent_kbatch_answer(h->fd, h->path, kb);
	if (expired)
		hold_release(h, "the host did not answer within the lease");
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One connection's protocol with the host, on top of fh_peer: Hello, then
 * the host's Welcome (its policy), then RangeBatches out and Acks,
 * Commands, Stats and Errors in. Every RangeBatch sent is pending until
 * its Ack; at most max_inflight are. A REPORTED or HELD one that gets no
 * Ack within its lease expires: the host no longer discards it after its
 * deadline, so the module gets its pages back at once. When the
 * connection ends, every pending batch counts as failed; those the host
 * may still be discarding go back to the module only when their lease is
 * over (report.c, hold.c).
 */
#include <sys/utsname.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"

/* A host that does not answer Hello within this is not there. */
#define HANDSHAKE_TIMEOUT_SEC 10
/* Periodic Stats no more often than this, whatever the host asks (each
 * one reads /proc/freehint/blocks); 0 stays "only on request". */
#define STATS_INTERVAL_MIN_MS 1000
/* The rate taken after a refusal from a host that said none. */
#define SESSION_RATE_UNSAID 100

struct pending {
	TAILQ_ENTRY(pending) entry;
	uint64_t id;
	uint64_t bytes;
	uint64_t expire_ms; /* 0: never (HINT) */
	struct kbatch *kb;
};

struct session {
	struct agent *agent;
	struct fh_peer *peer;
	struct event *ev_handshake;
	struct event *ev_expire;
	struct event *ev_rate; /* pumps again once the rate allows */
	bool welcomed;
	/* The host speaks no message set we do (or frames we cannot read):
	 * reconnecting soon would only repeat that. */
	bool incompatible;
	uint32_t version; /* the message set the host chose */
	uint32_t host_caps; /* Welcome.capabilities */
	Freehint__Mode mode;
	uint32_t max_inflight;
	uint32_t batch_ranges;
	uint32_t min_order;
	unsigned inflight;
	/*
	 * The host's batch rate (Welcome.max_batches_per_sec; 0: none said)
	 * as a token bucket in thousandths of a batch, last filled at
	 * rate_ms: see session_rate_tokens.
	 */
	uint32_t rate;
	int64_t rate_tokens;
	uint64_t rate_ms;
	/* The host's clock, from Welcome and Acks (lease.c). */
	struct hostclock clock;
	TAILQ_HEAD(, pending) pending;
};

static int handle_welcome(struct fh_peer *, const struct fh_msg *, void *);
static int handle_ack(struct fh_peer *, const struct fh_msg *, void *);
static int handle_command(struct fh_peer *, const struct fh_msg *, void *);
static int handle_stats(struct fh_peer *, const struct fh_msg *, void *);
static int handle_error(struct fh_peer *, const struct fh_msg *, void *);
static void session_lost(struct fh_peer *, const char *, void *);
static void session_handshake_cb(int, short, void *);
static void session_expire_cb(int, short, void *);
static void session_rate_cb(int, short, void *);
static void session_expire_arm(struct session *);
static int session_not_sent(struct session *, struct kbatch *);
static void session_end(struct session *, const char *why);
static void session_policy(struct session *, const Freehint__Welcome *);
static int session_hello(struct session *);
static void session_answer(struct session *, const Freehint__Command *,
    int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void session_answer_rc(struct agent *, struct session *,
    const Freehint__Command *, int rc, const char *, const char *);
enum pending_outcome {
	PENDING_APPLIED,
	PENDING_REJECTED,
	PENDING_EXPIRED,
	PENDING_LOST
};
static void pending_done(
    struct session *, struct pending *, enum pending_outcome);

static const struct fh_handler session_handlers[] = {
	{ FH_MSG_WELCOME, handle_welcome },
	{ FH_MSG_ACK, handle_ack },
	{ FH_MSG_COMMAND, handle_command },
	{ FH_MSG_STATS, handle_stats },
	{ FH_MSG_ERROR, handle_error },
};

struct session *
session_new(struct agent *a, int fd, const char *what)
{
	struct timeval tv = { HANDSHAKE_TIMEOUT_SEC, 0 };
	struct session *s;

	s = xcalloc(1, sizeof *s);
	s->agent = a;
	TAILQ_INIT(&s->pending);
	hostclock_init(&s->clock);
	s->peer = fh_peer_new(a->base, fd, what, session_handlers,
	    FH_ARRAY_SIZE(session_handlers), session_lost, s);
	if (s->peer == NULL) {
		close(fd);
		free(s);
		return NULL;
	}
	s->ev_handshake = evtimer_new(a->base, session_handshake_cb, s);
	s->ev_expire = evtimer_new(a->base, session_expire_cb, s);
	s->ev_rate = evtimer_new(a->base, session_rate_cb, s);
	if (s->ev_handshake == NULL || s->ev_expire == NULL ||
	    s->ev_rate == NULL)
		fatalx("%s: evtimer_new", __func__);
	evtimer_add(s->ev_handshake, &tv);
	if (session_hello(s) != 0) {
		fh_peer_free(s->peer);
		event_free(s->ev_handshake);
		event_free(s->ev_expire);
		event_free(s->ev_rate);
		free(s);
		return NULL;
	}
	return s;
}

/* Fail everything pending, then close. Safe from a peer callback. */
void
session_free(struct session *s)
{
	struct pending *p;

	if (s == NULL)
		return;
	while ((p = TAILQ_FIRST(&s->pending)) != NULL)
		pending_done(s, p, PENDING_LOST);
	fh_peer_free(s->peer);
	event_free(s->ev_handshake);
	event_free(s->ev_expire);
	event_free(s->ev_rate);
	free(s);
}

bool
session_ready(const struct session *s)
{
	return s != NULL && s->welcomed;
}

/*
 * The host counts batches in whole seconds of its clock, which may run
 * slower than ours, and a kernel batch's pieces go out together. Filled
 * at 3/5 of its rate and holding at most 1/5 of it (one batch at least),
 * the bucket lets out at most 1/5 + 9/8 x 3/5 of the rate, plus one
 * kernel batch's pieces (max_inflight), in any second of the host's:
 * below the rate from about 32 a second (the host's default is 200).
 * Tokens are millionths of a batch: RATE_FILL a millisecond is exact.
 */
#define RATE_ONE        1000000
#define RATE_FILL(rate) ((int64_t)(rate)*600)
#define RATE_CAP(rate)  ((rate) >= 5 ? (int64_t)(rate)*200000 : RATE_ONE)

/* The bucket at now, in millionths of a batch (may be below 0). */
int64_t
session_rate_tokens(const struct session *s, uint64_t now)
{
	uint64_t dt;

	if (s->rate == 0)
		return RATE_ONE; /* no rate: always one more */
	if (now <= s->rate_ms)
		return s->rate_tokens;
	/* Full after (CAP - tokens) / FILL ms: no product to overflow. */
	dt = now - s->rate_ms;
	if (dt >= (uint64_t)((RATE_CAP(s->rate) - s->rate_tokens) /
	              RATE_FILL(s->rate)))
		return RATE_CAP(s->rate);
	return s->rate_tokens + (int64_t)dt * RATE_FILL(s->rate);
}

/*
 * Pump again once the bucket holds a batch. evtimer_add reschedules a
 * pending timer; the extra millisecond covers libevent's cached clock.
 */
static void
session_rate_arm(struct session *s, uint64_t now)
{
	int64_t short_by = RATE_ONE - session_rate_tokens(s, now);
	struct timeval tv;
	int64_t ms;

	if (short_by <= 0)
		return;
	ms = (short_by + RATE_FILL(s->rate) - 1) / RATE_FILL(s->rate) + 1;
	tv = fh_ms_timeval((uint64_t)ms);
	evtimer_add(s->ev_rate, &tv);
}

/* A batch goes out: take it from the bucket. */
static void
session_rate_take(struct session *s)
{
	uint64_t now = fh_monotonic_ms();

	if (s->rate == 0)
		return;
	s->rate_tokens = session_rate_tokens(s, now) - RATE_ONE;
	s->rate_ms = now;
	session_rate_arm(s, now);
}

/* A new rate (0: none) with an empty bucket, one batch's worth at most. */
static void
session_rate_set(struct session *s, uint32_t rate)
{
	s->rate = rate;
	s->rate_tokens = 0;
	s->rate_ms = fh_monotonic_ms();
	if (rate == 0)
		evtimer_del(s->ev_rate);
	else
		session_rate_arm(s, s->rate_ms);
}

static void
session_rate_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	uint64_t now = fh_monotonic_ms();

	if (s->rate != 0 && session_rate_tokens(s, now) < RATE_ONE)
		session_rate_arm(s, now);
	else
		agent_pump(s->agent);
}

/* A wake is set for when the rate allows the next batch. */
bool
session_rate_waiting(const struct session *s)
{
	return evtimer_pending(s->ev_rate, NULL) != 0;
}

unsigned
session_free_slots(const struct session *s)
{
	if (!session_ready(s) || s->inflight >= s->max_inflight)
		return 0;
	if (s->rate != 0 &&
	    session_rate_tokens(s, fh_monotonic_ms()) < RATE_ONE)
		return 0;
	return s->max_inflight - s->inflight;
}

uint32_t
session_batch_ranges(const struct session *s)
{
	return s->batch_ranges;
}

uint32_t
session_min_order(const struct session *s)
{
	return s->min_order;
}

bool
session_zero(const struct session *s)
{
	return s->mode == FREEHINT__MODE__ZERO_IN_GUEST;
}

/* How many RangeBatches nranges ranges take (an empty set takes one). */
size_t
session_batches_needed(const struct session *s, size_t nranges)
{
	size_t n;

	if (nranges == 0)
		return 1;
	n = (nranges + s->batch_ranges - 1) / s->batch_ranges;
	/* More pieces than ever fit in flight go out once all slots are
	 * free, or a kernel batch would wait for ever. */
	return n < s->max_inflight ? n : s->max_inflight;
}

/* kb is not sent: it goes back to the module (kbatch_done), failed. */
static int
session_not_sent(struct session *s, struct kbatch *kb)
{
	kb->failed = 1;
	s->agent->stats.batches_failed++;
	if (kb->remaining == 0)
		kbatch_done(kb);
	return -1;
}

/*
 * Send rs as RangeBatches of at most batch_ranges ranges, each pending
 * until acknowledged and counted against kb. Whatever happens, kb is
 * completed (kbatch_done) exactly once, possibly before this
 * returns: the caller must not touch kb afterwards.
 */
static struct log_rl nolease_rl;

int
session_send_ranges(struct session *s, Freehint__RangeKind kind,
    const struct fh_rangeset *rs, uint64_t pass_id, bool last,
    struct kbatch *kb)
{
	Freehint__RangeBatch b;
	struct fh_rangeset view;
	struct pending *p;
	uint64_t *scratch, now, deadline;
	bool lease, leased;
	size_t off = 0, n;
	int rc = 0, err;

	/*
	 * Before the send: the module keeps the pages at least grace_ms
	 * after any moment the agent still has the file open. An empty
	 * batch (only the last HELD one of a pass, which ends it) gives the
	 * host nothing to discard: no lease, no deadline. A pass that
	 * captured nothing has no grace_ms from the module to lease with;
	 * it waits AGENT_PASS_END_WAIT_MS for its Ack.
	 */
	now = fh_monotonic_ms();
	lease = kind != FREEHINT__RANGE_KIND__HINT && rs->n != 0;
	leased = lease &&
	    hostclock_deadline(&s->clock, now, kb->grace_ms,
	        AGENT_LEASE_MARGIN_MS, &deadline) == 0;
	if (lease)
		kb->expire_ms = now + kb->grace_ms;
	else if (kind != FREEHINT__RANGE_KIND__HINT)
		kb->expire_ms = now + AGENT_PASS_END_WAIT_MS;
	/*
	 * A discarding host needs a deadline (it refuses a batch without
	 * one, as a fault): with no lease to state (grace_ms within the
	 * margin, or no clock sample yet) the pages go back to the module.
	 * Only the last HELD batch of a pass may be empty (it ends the
	 * pass); the host refuses any other empty batch as MALFORMED.
	 */
	if (lease && !leased && s->mode == FREEHINT__MODE__DISCARD) {
		log_warnx_rl(&nolease_rl,
		    "batch %" PRIu64 " not sent: no lease to state "
		    "(grace_ms %u, margin %u)",
		    kb->kid, kb->grace_ms, AGENT_LEASE_MARGIN_MS);
		return session_not_sent(s, kb);
	}
	if (rs->n == 0 && !(kind == FREEHINT__RANGE_KIND__HELD && last)) {
		log_warnx("batch %" PRIu64 " not sent: no ranges", kb->kid);
		return session_not_sent(s, kb);
	}
	scratch = xreallocarray(NULL, 2 * s->batch_ranges + 2, sizeof *scratch);
	kb->remaining++; /* held until every piece is out */
	do {
		n = rs->n - off;
		if (n > s->batch_ranges)
			n = s->batch_ranges;
		view.r = rs->r + off;
		view.n = view.cap = n;
		freehint__range_batch__init(&b);
		b.batch_id = ++s->agent->next_batch_id;
		b.kind = kind;
		if (leased) {
			b.has_deadline_ms = true;
			b.deadline_ms = deadline;
		}
		if (kind == FREEHINT__RANGE_KIND__HELD) {
			b.has_pass_id = true;
			b.pass_id = pass_id;
			b.has_last = true;
			b.last = last && off + n == rs->n;
		}
		if ((err = fh_batch_pack(&b, &view, scratch)) != FH_OK) {
			log_warnx("%s: %s", __func__, fh_strerror(err));
			rc = -1;
			break;
		}
		if (fh_peer_send(s->peer, FH_MSG_RANGES, &b.base) != 0) {
			rc = -1;
			break;
		}
		p = xcalloc(1, sizeof *p);
		p->id = b.batch_id;
		p->bytes = fh_rs_pages(&view) * s->agent->page_size;
		p->expire_ms = kb->expire_ms;
		p->kb = kb;
		kb->remaining++;
		TAILQ_INSERT_TAIL(&s->pending, p, entry);
		s->inflight++;
		session_rate_take(s);
		s->agent->stats.batches_sent++;
		if (kind != FREEHINT__RANGE_KIND__HINT)
			s->agent->stats.bytes_reported += p->bytes;
		off += n;
	} while (off < rs->n);
	free(scratch);
	session_expire_arm(s);
	if (rc != 0)
		kb->failed = 1;
	if (--kb->remaining == 0)
		kbatch_done(kb);
	return rc;
}

void
session_send_stats(struct session *s, const uint64_t *by_order, size_t norders,
    uint64_t free_bytes)
{
	Freehint__Stats st = FREEHINT__STATS__INIT;
	struct agent_stats *as = &s->agent->stats;

	st.has_free_bytes = true;
	st.free_bytes = free_bytes;
	st.n_free_blocks_by_order = norders;
	st.free_blocks_by_order = (uint64_t *)(uintptr_t)by_order;
	st.has_held_bytes = true;
	st.held_bytes = hold_bytes(s->agent->hold);
	st.has_batches_sent = st.has_batches_acked = true;
	st.batches_sent = as->batches_sent;
	st.batches_acked = as->batches_acked;
	st.has_batches_failed = st.has_bytes_reported = true;
	st.batches_failed = as->batches_failed;
	st.bytes_reported = as->bytes_reported;
	st.has_bytes_discarded = st.has_reconnects = true;
	st.bytes_discarded = as->bytes_acked;
	st.reconnects = as->reconnects;
	if (as->last_error[0] != '\0')
		st.last_error = as->last_error;
	fh_peer_send(s->peer, FH_MSG_STATS, &st.base);
}

static int
session_hello(struct session *s)
{
	Freehint__Hello h = FREEHINT__HELLO__INIT;
	struct agent *a = s->agent;
	struct kmod_stats ks;
	struct utsname u;
	char err[128], *buf, *path;
	size_t len;
	long pages;
	int ok = -1;

	path = agent_proc_path(a, "stats");
	if (kmod_read_file(path, &buf, &len) == 0) {
		ok = kmod_parse_stats(buf, len, &ks, err, sizeof err);
		if (ok != 0)
			log_warnx("%s: %s", path, err);
		free(buf);
	} else
		log_warn("%s", path);
	free(path);
	if (ok != 0)
		return -1;

	/* Field 1 is the lowest set we speak: what a host that knows no
	 * range compares. */
	h.proto_version = FH_PROTO_MIN;
	h.has_max_proto_version = true;
	h.max_proto_version = FH_PROTO_MAX;
	h.agent_version = (char *)(uintptr_t)FREEHINT_VERSION;
	h.page_size = (uint32_t)ks.page_size;
	a->page_size = h.page_size;
	pages = sysconf(_SC_PHYS_PAGES);
	h.ram_bytes = pages > 0 ? (uint64_t)pages * ks.page_size : 0;
	h.max_pfn = ks.max_pfn;
	if (uname(&u) == 0)
		h.kernel_release = u.release;
	h.has_page_poisoning = h.has_init_on_free = true;
	h.page_poisoning = ks.page_poisoning != 0;
	h.init_on_free = ks.init_on_free != 0;
	h.has_init_on_alloc = true;
	h.init_on_alloc = ks.init_on_alloc != 0;
	h.has_poison_value = true;
	h.poison_value = (uint32_t)(ks.poison_value & 0xff);
	h.has_capabilities = true;
	h.capabilities = FREEHINT__CAPABILITY__CAP_HOLD |
	    FREEHINT__CAPABILITY__CAP_ZERO | FREEHINT__CAPABILITY__CAP_HINT |
	    FREEHINT__CAPABILITY__CAP_SKIP_REPORTED;
	if (report_registered(a->report))
		h.capabilities |= FREEHINT__CAPABILITY__CAP_REPORT;
	if (ks.report_order <= 20) {
		h.has_report_order = true;
		h.report_order = (uint32_t)ks.report_order;
	}
	/* virtio-serial keeps the bytes of an agent killed mid-frame: the
	 * sync run lets the host find this Hello after them. */
	if (transport_current(a->transport) == TRANSPORT_SERIAL &&
	    fh_peer_send_sync(s->peer) != 0)
		return -1;
	return fh_peer_send(s->peer, FH_MSG_HELLO, &h.base);
}

/* The host's policy, capped by ours. */
static void
session_policy(struct session *s, const Freehint__Welcome *w)
{
	const struct agent_conf *c = &s->agent->conf;
	uint32_t interval;

	s->mode = w->mode;
	s->max_inflight = c->max_inflight;
	if (w->has_max_inflight && w->max_inflight < s->max_inflight)
		s->max_inflight = w->max_inflight;
	s->batch_ranges = c->batch_ranges;
	if (w->has_max_batch_ranges && w->max_batch_ranges < s->batch_ranges)
		s->batch_ranges = w->max_batch_ranges;
	s->min_order = w->has_min_order ? w->min_order : 0;
	/*
	 * A new rate starts from an empty bucket: the host's second may
	 * already count this agent's batches of the session before.
	 */
	if (!w->has_max_batches_per_sec || w->max_batches_per_sec != s->rate)
		session_rate_set(
		    s, w->has_max_batches_per_sec ? w->max_batches_per_sec : 0);
	/* The decoder keeps max_inflight, max_batch_ranges and min_order in
	 * their domains (at least 1; at most 20 for the order) and ours caps
	 * them above; the interval has no domain there. */
	interval = w->has_stats_interval_ms ? w->stats_interval_ms
	                                    : c->stats_interval * 1000;
	if (interval != 0 && interval < STATS_INTERVAL_MIN_MS) {
		log_info("%s: stats interval %u ms raised to %u ms",
		    fh_peer_name(s->peer), interval, STATS_INTERVAL_MIN_MS);
		interval = STATS_INTERVAL_MIN_MS;
	}
	snapshot_set_interval(s->agent->snapshot, interval);
}

static int
handle_welcome(struct fh_peer *peer, const struct fh_msg *m, void *arg)
{
	const Freehint__Welcome *w = m->u.welcome;
	struct session *s = arg;

	if (s->welcomed)
		return FREEHINT__REJECT_REASON__NOT_ALLOWED;
	if (w->proto_version < FH_PROTO_MIN ||
	    w->proto_version > FH_PROTO_MAX) {
		fh_peer_send_error(peer, FREEHINT__REJECT_REASON__BAD_VERSION,
		    true, "message set %u chosen; this agent speaks %u to %u",
		    w->proto_version, FH_PROTO_MIN, FH_PROTO_MAX);
		s->incompatible = true;
		fh_peer_close_after_flush(
		    peer, "host chose a message set we do not speak");
		return 0;
	}
	s->version = w->proto_version;
	s->host_caps = w->has_capabilities ? w->capabilities : 0;
	evtimer_del(s->ev_handshake);
	/*
	 * The host read its clock before we received this, so mapping our
	 * receive time to its clock reading can only make deadlines early,
	 * never late, whatever the delay on the way.
	 */
	if (w->has_host_clock_ms)
		hostclock_sample(
		    &s->clock, w->host_clock_ms, fh_monotonic_ms());
	session_policy(s, w);
	s->welcomed = true;
	transport_established(s->agent->transport);
	log_info("%s: welcomed, message set %u, mode %s%s%s",
	    fh_peer_name(peer), s->version,
	    w->mode == FREEHINT__MODE__DISCARD             ? "discard"
	        : w->mode == FREEHINT__MODE__ZERO_IN_GUEST ? "zero-in-guest"
	                                                   : "record-only",
	    w->reason != NULL ? ": " : "", w->reason != NULL ? w->reason : "");
	agent_status(s->agent);
	agent_pump(s->agent);
	return 0;
}

static int
handle_ack(struct fh_peer *peer, const struct fh_msg *m, void *arg)
{
	const Freehint__Ack *ack = m->u.ack;
	struct session *s = arg;
	struct pending *p;
	bool ok;

	if (!s->welcomed)
		return FREEHINT__REJECT_REASON__NOT_ALLOWED;
	if (ack->has_host_clock_ms)
		hostclock_sample(
		    &s->clock, ack->host_clock_ms, fh_monotonic_ms());
	TAILQ_FOREACH(p, &s->pending, entry)
		if (p->id == ack->batch_id)
			break;
	if (p == NULL && ack->batch_id != 0 &&
	    ack->batch_id <= s->agent->next_batch_id) {
		/* Expired before its Ack came: the host did not discard it
		 * after the deadline, and the module has it back. */
		log_debug("%s: late Ack for batch %llu", fh_peer_name(peer),
		    (unsigned long long)ack->batch_id);
		return 0;
	}
	if (p == NULL) {
		log_warnx("%s: Ack for unknown batch %llu", fh_peer_name(peer),
		    (unsigned long long)ack->batch_id);
		return FREEHINT__REJECT_REASON__DUPLICATE_ID;
	}
	ok = ack->status == FREEHINT__ACK_STATUS__APPLIED;
	if (!ok)
		log_info("%s: batch %llu rejected: reason %d%s%s",
		    fh_peer_name(peer), (unsigned long long)ack->batch_id,
		    ack->has_reason ? (int)ack->reason : 0,
		    ack->detail != NULL ? ": " : "",
		    ack->detail != NULL ? ack->detail : "");
	/*
	 * Refused for the rate: the host's limit is lower than we keep (a
	 * host that says none, a limit lowered since its Welcome): halve
	 * ours, as each refusal is a fault to the host.
	 */
	if (!ok && ack->has_reason &&
	    ack->reason == FREEHINT__REJECT_REASON__RATE_LIMITED) {
		session_rate_set(s,
		    s->rate > 1        ? s->rate / 2
		        : s->rate == 0 ? SESSION_RATE_UNSAID
		                       : 1);
		log_info("%s: batches refused for the rate: at most %u a "
		         "second now",
		    fh_peer_name(peer), s->rate);
	}
	pending_done(s, p, ok ? PENDING_APPLIED : PENDING_REJECTED);
	agent_pump(s->agent);
	return 0;
}

static void
pending_done(struct session *s, struct pending *p, enum pending_outcome outcome)
{
	struct kbatch *kb = p->kb;

	TAILQ_REMOVE(&s->pending, p, entry);
	s->inflight--;
	if (outcome == PENDING_APPLIED) {
		s->agent->stats.batches_acked++;
		if (!kb->hint)
			s->agent->stats.bytes_acked += p->bytes;
	} else {
		s->agent->stats.batches_failed++;
		kb->failed = 1;
		if (outcome == PENDING_LOST && p->expire_ms != 0)
			kb->unanswered = 1;
		if (outcome == PENDING_EXPIRED)
			kb->expired = 1;
	}
	free(p);
	if (--kb->remaining == 0)
		kbatch_done(kb);
}

/* Wake up when the first pending batch's lease is over. */
static void
session_expire_arm(struct session *s)
{
	struct pending *p;
	uint64_t first = 0;

	TAILQ_FOREACH(p, &s->pending, entry)
		if (p->expire_ms != 0 && (first == 0 || p->expire_ms < first))
			first = p->expire_ms;
	if (first == 0) {
		evtimer_del(s->ev_expire);
		return;
	}
	fh_evtimer_at(s->ev_expire, first);
}

/*
 * Pending batches whose lease is over: the host begins no discard after
 * the deadline it was given, which came before this, so the module may
 * have the pages back. A host that never answers stalls nothing.
 */
static void
session_expire_cb(int fd, short what, void *arg)
{
	struct session *s = arg;
	struct agent *a = s->agent;
	struct pending *p, *next;
	uint64_t now = fh_monotonic_ms();
	unsigned n = 0;

	for (p = TAILQ_FIRST(&s->pending); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->expire_ms == 0 || p->expire_ms > now)
			continue;
		log_info("%s: batch %llu: no Ack within its lease, given back",
		    fh_peer_name(s->peer), (unsigned long long)p->id);
		/* next may be completed with p: start over from the head. */
		pending_done(s, p, PENDING_EXPIRED);
		next = TAILQ_FIRST(&s->pending);
		n++;
	}
	session_expire_arm(s);
	if (n != 0)
		agent_pump(a);
}

static int
handle_command(struct fh_peer *peer, const struct fh_msg *m, void *arg)
{
	const Freehint__Command *c = m->u.command;
	struct session *s = arg;
	struct agent *a = s->agent; /* s may end while we send */

	int rc = 0;

	if (!s->welcomed)
		return FREEHINT__REJECT_REASON__NOT_ALLOWED;
	/*
	 * Only the host's mistakes are faults (a HINT_PASS without a pass);
	 * our own refusals and failures, and a command type newer than us,
	 * are answered (session_answer) and never counted against it.
	 */
	switch (c->type) {
	case FREEHINT__COMMAND_TYPE__HINT_PASS:
		if (!c->has_pass_id) {
			session_answer(s, c, FREEHINT__REJECT_REASON__MALFORMED,
			    "HINT_PASS without a pass_id");
			return FREEHINT__REJECT_REASON__MALFORMED;
		}
		rc = hold_start(a->hold, c->pass_id,
		    c->has_min_order ? c->min_order : s->min_order,
		    c->has_byte_limit ? c->byte_limit : 0,
		    (c->has_zero && c->zero) || session_zero(s));
		if (a->session == s)
			session_answer(s, c,
			    rc != 0 ? FREEHINT__REJECT_REASON__NOT_ALLOWED : 0,
			    rc != 0 ? "hint pass %llu not started"
			            : "hint pass %llu started",
			    (unsigned long long)c->pass_id);
		break;
	case FREEHINT__COMMAND_TYPE__RELEASE:
		hold_release(a->hold, "host asked");
		if (a->session == s)
			session_answer(s, c, 0, "released");
		break;
	case FREEHINT__COMMAND_TYPE__SET_POLICY:
		session_policy(s, c->policy);
		session_answer(s, c, 0, "policy set");
		break;
	case FREEHINT__COMMAND_TYPE__STATS_REQUEST:
		rc = snapshot_send_stats(a->snapshot);
		session_answer_rc(a, s, c, rc, "cannot read the module's stats",
		    "stats sent");
		break;
	case FREEHINT__COMMAND_TYPE__SNAPSHOT:
		rc = snapshot_send_hints(a->snapshot);
		session_answer_rc(a, s, c, rc, "cannot read the free lists",
		    "snapshot started");
		break;
	default:
		session_answer(s, c, FREEHINT__REJECT_REASON__NOT_SUPPORTED,
		    "unknown command type %d", (int)c->type);
		return 0;
	}
	agent_pump(a);
	return 0;
}

/*
 * The answer to a command the module failed (rc != 0: HOST_ERROR, the
 * guest's side) or did; none when sending ended session s (a holds the
 * current one).
 */
static void
session_answer_rc(struct agent *a, struct session *s,
    const Freehint__Command *c, int rc, const char *failed, const char *done)
{
	if (a->session == s)
		session_answer(s, c,
		    rc != 0 ? FREEHINT__REJECT_REASON__HOST_ERROR : 0, "%s",
		    rc != 0 ? failed : done);
}

/*
 * Answer a Command: a CommandResult with its id when the host numbered it
 * (message set 2); otherwise a failure as a non-fatal Error, as before
 * ids, and a success silently. Never a fault (the peer counts those).
 */
static void
session_answer(struct session *s, const Freehint__Command *c, int code,
    const char *fmt, ...)
{
	Freehint__CommandResult r = FREEHINT__COMMAND_RESULT__INIT;
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	if (code != 0)
		log_info("%s: command %d refused: %s", fh_peer_name(s->peer),
		    (int)c->type, detail);
	if (s->version >= 2 && c->has_id && c->id != 0) {
		r.id = c->id;
		r.ok = code == 0;
		r.has_code = code != 0;
		r.code = (uint32_t)code;
		r.detail = detail;
		fh_peer_send(s->peer, FH_MSG_COMMAND_RESULT, &r.base);
		return;
	}
	if (code != 0)
		fh_peer_send_error(s->peer, code, false, "%s", detail);
}

static int
handle_stats(struct fh_peer *peer, const struct fh_msg *m, void *arg)
{
	const Freehint__Stats *st = m->u.stats;

	log_debug("%s: host discarded %llu bytes", fh_peer_name(peer),
	    (unsigned long long)st->bytes_discarded);
	return 0;
}

static int
handle_error(struct fh_peer *peer, const struct fh_msg *m, void *arg)
{
	const Freehint__Error *e = m->u.error;

	struct session *s = arg;

	log_warnx("%s: host error %u: %s", fh_peer_name(peer), e->code,
	    e->detail != NULL ? e->detail : "");
	/* Before Welcome: the host speaks none of our message sets. */
	if (!s->welcomed && e->code == FREEHINT__REJECT_REASON__BAD_VERSION)
		s->incompatible = true;
	if (e->has_fatal && e->fatal)
		fh_peer_close_after_flush(peer, "fatal error from host");
	return 0;
}

static void
session_lost(struct fh_peer *peer, const char *why, void *arg)
{
	struct session *s = arg;

	/* Always from the event loop (lib/peer.c), never inside a send. */
	session_end(s, why);
}

static void
session_handshake_cb(int fd, short what, void *arg)
{
	session_end(arg, "no Welcome from the host");
}

/* The connection is over: give everything back and reconnect later. */
static void
session_end(struct session *s, const char *why)
{
	struct agent *a = s->agent;
	bool incompatible =
	    s->incompatible || fh_peer_fatal_error(s->peer) == FH_EVERSION;

	log_info("%s: disconnected: %s", fh_peer_name(s->peer), why);
	a->session = NULL;
	session_free(s);
	hold_release(a->hold, "host disconnected");
	snapshot_drop(a->snapshot);
	if (!a->stopping && incompatible)
		transport_incompatible(a->transport, why);
	else if (!a->stopping)
		transport_lost(a->transport, why);
	agent_status(a);
}

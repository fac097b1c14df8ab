/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's session (session.c) against a test host on the other end
 * of a socketpair, on a real event base (agent_fixture.h). The report and
 * hold channels need the real module and are tested in a guest
 * (tests/checks.d/40-agent-guest.sh); the snapshot's cases are in
 * test_agent_snapshot.c.
 */
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include <event2/buffer.h>
#include <event2/event.h>

#include "agent.h"
#include "agent_fixture.h"

/* Hello first, from the module's stats; Welcome caps our policy. */
static void
test_handshake(void **state)
{
	struct fx *f = *state;
	const Freehint__Hello *h;

	SPIN_UNTIL(f, f->nrx == 1);
	assert_int_equal(f->msg[0].type, FH_MSG_HELLO);
	h = f->msg[0].u.hello;
	assert_int_equal(h->proto_version, FH_PROTO_VERSION);
	/* The range of message sets: field 1 the lowest, 12 the highest. */
	assert_int_equal(h->proto_version, FH_PROTO_MIN);
	assert_true(h->has_max_proto_version);
	assert_int_equal(h->max_proto_version, FH_PROTO_MAX);
	assert_int_equal(h->page_size, 4096);
	assert_int_equal(h->max_pfn, 131072);
	assert_true(h->has_report_order && h->report_order == 9);
	/* No report channel open in this test: no CAP_REPORT. */
	assert_int_equal(h->capabilities & FREEHINT__CAPABILITY__CAP_REPORT, 0);
	assert_false(session_ready(f->a.session));
	assert_int_equal(session_free_slots(f->a.session), 0);
	welcome(f, 3, 0);
	assert_int_equal(session_free_slots(f->a.session), 3);
	assert_int_equal(session_batch_ranges(f->a.session), 1024);
}

/* An Ack for no batch, and a Command before Welcome, get an Error. */
static void
test_bad_host(void **state)
{
	struct fx *f = *state;
	int i;

	command(f, FREEHINT__COMMAND_TYPE__SNAPSHOT);
	SPIN_UNTIL(f, count(f, FH_MSG_ERROR) == 1);
	welcome(f, 0, 0);
	ack(f, 12345, true);
	SPIN_UNTIL(f, count(f, FH_MSG_ERROR) == 2);
	for (i = 0; i < f->nrx; i++)
		if (f->msg[i].type == FH_MSG_ERROR)
			assert_false(f->msg[i].u.error->fatal);
	assert_true(session_ready(f->a.session));
}

/* Garbage frames: errors back, then the agent hangs up and retries. */
static void
test_garbage_reconnects(void **state)
{
	struct fx *f = *state;
	static const uint8_t junk[FH_HDR_SIZE + 3] = { 0x46, 0x48, 0x4e, 0x54,
		1, FH_MSG_COMMAND, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff };
	int i;

	welcome(f, 0, 0);
	for (i = 0; i < 20 && !f->eof; i++) {
		if (write(f->fd, junk, sizeof junk) != (ssize_t)sizeof junk)
			break;
		settle(f);
	}
	SPIN_UNTIL(f, f->eof);
	assert_null(f->a.session);
	assert_int_equal(f->a.stats.reconnects, 1);
	assert_true(count(f, FH_MSG_ERROR) >= 2);
}

/* The host goes away with batches in flight: they all count as failed. */
static void
test_disconnect_fails_pending(void **state)
{
	struct fx *f = *state;

	welcome(f, 0, 4);
	command(f, FREEHINT__COMMAND_TYPE__SNAPSHOT);
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 2);
	assert_int_equal(f->a.stats.batches_failed, 0);
	shutdown(f->fd, SHUT_RDWR);
	SPIN_UNTIL(f, f->a.session == NULL);
	assert_int_equal(f->a.stats.batches_failed, 2);
	assert_int_equal(f->a.stats.reconnects, 1);
}

/* A REPORTED batch of 2 MiB with the module's grace, sent now. */
static struct kbatch *
send_reported(struct fx *f, uint32_t grace_ms)
{
	struct fh_rangeset rs;
	struct kbatch *kb;

	fh_rs_init(&rs);
	assert_int_equal(fh_rs_add(&rs, 0x4000, 512), 0);
	kb = xcalloc(1, sizeof *kb);
	kb->grace_ms = grace_ms;
	session_send_ranges(
	    f->a.session, FREEHINT__RANGE_KIND__REPORTED, &rs, 0, false, kb);
	fh_rs_free(&rs);
	return kb;
}

static const Freehint__RangeBatch *
last_ranges(struct fx *f)
{
	const Freehint__RangeBatch *b = NULL;
	int i;

	for (i = 0; i < f->nrx; i++)
		if (f->msg[i].type == FH_MSG_RANGES)
			b = f->msg[i].u.ranges;
	assert_non_null(b);
	return b;
}

/*
 * REPORTED and HELD batches carry their deadline on the host's clock: the
 * module's grace from the send, less the lease margin and the drift
 * allowance (lease.c), moved by the host's clock in Welcome.
 */
static void
test_deadline_on_host_clock(void **state)
{
	struct fx *f = *state;
	Freehint__Welcome w = FREEHINT__WELCOME__INIT;
	const Freehint__RangeBatch *b;
	uint64_t t0 = fh_monotonic_ms(), host0 = t0 + 1000000, after;

	w.proto_version = FH_PROTO_VERSION;
	w.mode = FREEHINT__MODE__DISCARD;
	w.has_host_clock_ms = true;
	w.host_clock_ms = host0;
	put(f, FH_MSG_WELCOME, &w.base);
	SPIN_UNTIL(f, session_ready(f->a.session));

	send_reported(f, 2000);
	after = fh_monotonic_ms();
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 1);
	b = last_ranges(f);
	assert_true(b->has_deadline_ms);
	/*
	 * Here the host's clock is ours plus 1000000 ms. The batch was sent
	 * by "after", so the module keeps it at least until after + 2000 on
	 * our clock: the deadline is never later than that on the host's
	 * (the safety property), and not much earlier than the margin and
	 * the 8/9 drift allowance make it.
	 */
	assert_true(b->deadline_ms <= after + 2000 + 1000000);
	assert_true(b->deadline_ms >= host0 + (2000 - 100) * 8 / 9 - 2);
}

/*
 * A Welcome that took 3 s to arrive makes deadlines 3 s early; the host's
 * clock in the next Ack puts them right, and never late.
 */
static void
test_deadline_refined_by_ack(void **state)
{
	struct fx *f = *state;
	Freehint__Welcome w = FREEHINT__WELCOME__INIT;
	Freehint__Ack a = FREEHINT__ACK__INIT;
	const Freehint__RangeBatch *b[2];
	uint64_t after[2], host_ack;

	w.proto_version = FH_PROTO_VERSION;
	w.mode = FREEHINT__MODE__DISCARD;
	w.has_host_clock_ms = true;
	w.host_clock_ms = fh_monotonic_ms() + 1000000 - 3000;
	put(f, FH_MSG_WELCOME, &w.base);
	SPIN_UNTIL(f, session_ready(f->a.session));

	send_reported(f, 2000);
	after[0] = fh_monotonic_ms();
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 1);
	b[0] = last_ranges(f);
	a.batch_id = b[0]->batch_id;
	a.status = FREEHINT__ACK_STATUS__APPLIED;
	a.has_host_clock_ms = true;
	host_ack = a.host_clock_ms = fh_monotonic_ms() + 1000000;
	put(f, FH_MSG_ACK, &a.base);
	SPIN_UNTIL(f, f->a.stats.batches_acked == 1);

	send_reported(f, 2000);
	after[1] = fh_monotonic_ms();
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 2);
	b[1] = last_ranges(f);
	assert_true(b[0]->has_deadline_ms && b[1]->has_deadline_ms);
	assert_true(b[0]->deadline_ms <= after[0] + 2000 + 1000000 - 3000);
	assert_true(b[1]->deadline_ms >= host_ack + (2000 - 100) * 8 / 9 - 2);
	assert_true(b[1]->deadline_ms <= after[1] + 2000 + 1000000);
}

/* Without the host's clock there is no deadline, and a discarding host
 * refuses a REPORTED batch without one (a fault): the batch is not sent
 * but failed back to the module at once. Nor without the module's grace
 * (a batch header without grace_ms, or one within the lease margin). A
 * host that does not discard needs no deadline: the batch goes out. */
static int
send_unleased(struct fx *f, uint32_t grace_ms)
{
	struct fh_rangeset rs;
	struct kbatch *kb;
	int rc;

	fh_rs_init(&rs);
	assert_int_equal(fh_rs_add(&rs, 0x4000, 512), 0);
	kb = xcalloc(1, sizeof *kb);
	kb->grace_ms = grace_ms;
	rc = session_send_ranges(
	    f->a.session, FREEHINT__RANGE_KIND__REPORTED, &rs, 0, false, kb);
	fh_rs_free(&rs);
	return rc;
}

/* A fresh session welcomed in mode, with the host's clock or without. */
static struct fx *
rewelcome(void **state, Freehint__Mode mode, bool clock)
{
	Freehint__Welcome w = FREEHINT__WELCOME__INIT;
	struct fx *f;

	teardown(state);
	setup(state);
	f = *state;
	w.proto_version = FH_PROTO_VERSION;
	w.mode = mode;
	w.has_host_clock_ms = clock;
	w.host_clock_ms = clock ? fh_monotonic_ms() : 0;
	put(f, FH_MSG_WELCOME, &w.base);
	SPIN_UNTIL(f, session_ready(f->a.session));
	return f;
}

static void
test_no_host_clock_no_deadline(void **state)
{
	struct fx *f = *state;
	uint64_t failed;
	uint32_t grace[] = { 0, AGENT_LEASE_MARGIN_MS };
	size_t i;

	welcome(f, 0, 0);
	failed = f->a.stats.batches_failed;
	assert_int_equal(send_unleased(f, 2000), -1);
	assert_int_equal(f->a.stats.batches_failed, failed + 1);
	for (i = 0; i < sizeof grace / sizeof grace[0]; i++) {
		f = rewelcome(state, FREEHINT__MODE__DISCARD, true);
		assert_int_equal(send_unleased(f, grace[i]), -1);
	}
	/* A batch with a lease goes out, so the ones above were refused
	 * for the lease alone. */
	send_reported(f, 2000);
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 1);
	assert_true(last_ranges(f)->has_deadline_ms);
	f = rewelcome(state, FREEHINT__MODE__ZERO_IN_GUEST, false);
	assert_int_equal(send_unleased(f, 2000), 0);
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 1);
	assert_false(last_ranges(f)->has_deadline_ms);
}

/*
 * A Welcome in discard mode with the host's clock of now (batches get a
 * lease), at most inflight batches in flight and rate a second (0: the
 * field absent).
 */
static void
welcome_leased(struct fx *f, uint32_t inflight, uint32_t rate)
{
	Freehint__Welcome w = FREEHINT__WELCOME__INIT;

	w.proto_version = FH_PROTO_VERSION;
	w.mode = FREEHINT__MODE__DISCARD;
	w.has_host_clock_ms = true;
	w.host_clock_ms = fh_monotonic_ms();
	w.has_max_inflight = inflight != 0;
	w.max_inflight = inflight;
	w.has_max_batches_per_sec = rate != 0;
	w.max_batches_per_sec = rate;
	put(f, FH_MSG_WELCOME, &w.base);
	SPIN_UNTIL(f, session_ready(f->a.session));
}

/*
 * A host that never answers stalls nothing: a pending batch expires when
 * its lease is over (failed back, its slot free again), and the Ack that
 * comes late is not held against the host.
 */
static void
test_pending_expires(void **state)
{
	struct fx *f = *state;
	Freehint__Ack a = FREEHINT__ACK__INIT;
	uint64_t t0;

	welcome_leased(f, 1, 0);
	t0 = fh_monotonic_ms();
	send_reported(f, 300);
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 1);
	assert_int_equal(session_free_slots(f->a.session), 0);
	settle(f);
	assert_int_equal(f->a.stats.batches_failed, 0);
	SPIN_UNTIL(f, f->a.stats.batches_failed == 1);
	assert_true(fh_monotonic_ms() >= t0 + 300);
	assert_int_equal(session_free_slots(f->a.session), 1);
	/* The Ack, too late: no fault, the session goes on. */
	a.batch_id = last_ranges(f)->batch_id;
	a.status = FREEHINT__ACK_STATUS__REJECTED;
	put(f, FH_MSG_ACK, &a.base);
	settle(f);
	assert_int_equal(count(f, FH_MSG_ERROR), 0);
	assert_true(session_ready(f->a.session));
}

/*
 * The host's batch rate (Welcome.max_batches_per_sec) paces the sends:
 * from an empty bucket, one batch each 1/(3/5 of it) s, at most a fifth
 * of it at once, so that no second of the host's sees more (it refuses
 * those as faults). A batch refused for the rate halves it.
 */
static void
test_rate_paced(void **state)
{
	struct fx *f = *state;
	Freehint__Ack a = FREEHINT__ACK__INIT;
	uint64_t t0 = fh_monotonic_ms();

	welcome_leased(f, 0, 10);
	/* Slots in flight are left (8), the rate has none yet. */
	assert_int_equal(session_free_slots(f->a.session), 0);
	SPIN_UNTIL(f, session_free_slots(f->a.session) > 0);
	/* 1000 / 6 ms for one batch at 3/5 of 10 a second. */
	assert_true(fh_monotonic_ms() - t0 >= 150);
	send_reported(f, 60000);
	t0 = fh_monotonic_ms();
	assert_int_equal(session_free_slots(f->a.session), 0);
	SPIN_UNTIL(f, session_free_slots(f->a.session) > 0);
	assert_true(fh_monotonic_ms() - t0 >= 150);
	/* The bucket holds a fifth of the rate, however long it waits. */
	assert_int_equal(
	    session_rate_tokens(f->a.session, fh_monotonic_ms() + 60000),
	    2000000);
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 1);
	/* Refused for the rate: 5 a second now, a bucket of one batch. */
	a.batch_id = last_ranges(f)->batch_id;
	a.status = FREEHINT__ACK_STATUS__REJECTED;
	a.has_reason = true;
	a.reason = FREEHINT__REJECT_REASON__RATE_LIMITED;
	put(f, FH_MSG_ACK, &a.base);
	SPIN_UNTIL(f, f->a.stats.batches_failed == 1);
	assert_int_equal(
	    session_rate_tokens(f->a.session, fh_monotonic_ms() + 60000),
	    1000000);
	assert_true(session_ready(f->a.session));
}

/*
 * Whenever the rate holds the sends back, a wake is set (the pumps stop
 * until it comes): two batches at once put the bucket below 0, and a
 * timer set for the first alone fired while it was still short.
 */
static void
test_rate_wakes_again(void **state)
{
	struct fx *f = *state;
	int i;

	welcome_leased(f, 0, 40);
	for (i = 0; i < 3; i++) {
		UNIT_SPIN_UNTIL(
		    (assert_true(session_free_slots(f->a.session) > 0 ||
		         session_rate_waiting(f->a.session)),
		        event_base_loop(f->a.base, EVLOOP_NONBLOCK), drain(f)),
		    3000, session_free_slots(f->a.session) > 0);
		send_reported(f, 60000);
		send_reported(f, 60000);
	}
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 6);
}

/* No rate said: only the slots in flight bound the sends. */
static void
test_rate_none(void **state)
{
	struct fx *f = *state;
	int i;

	welcome_leased(f, 5, 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(session_free_slots(f->a.session), 5 - i);
		send_reported(f, 60000);
	}
	assert_int_equal(session_free_slots(f->a.session), 0);
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 5);
}

/* A kernel batch's completion: how many, and how many failed. */
static int done_n, done_failed;

static void
count_done(struct kbatch *kb, void *arg)
{
	done_n++;
	done_failed += kb->failed != 0;
	free(kb);
}

/* session_send_ranges of an empty set of kind; last for HELD. */
static int
send_empty_grace(
    struct fx *f, Freehint__RangeKind kind, bool last, uint32_t grace_ms)
{
	struct fh_rangeset rs;
	struct kbatch *kb;
	int rc;

	fh_rs_init(&rs);
	kb = xcalloc(1, sizeof *kb);
	kb->grace_ms = grace_ms;
	kb->hint = kind == FREEHINT__RANGE_KIND__HINT;
	kb->done = count_done;
	rc = session_send_ranges(f->a.session, kind, &rs, 7, last, kb);
	fh_rs_free(&rs);
	return rc;
}

static int
send_empty(struct fx *f, Freehint__RangeKind kind, bool last)
{
	return send_empty_grace(f, kind, last, 2000);
}

/*
 * The host refuses an empty batch as MALFORMED, unless it is the last
 * HELD batch of a pass (docs/protocol.md): the agent never sends one. A
 * report batch cut down to nothing by the headroom came here empty and
 * was sent; now it goes back to the module, failed, and nothing is sent.
 */
static void
test_no_empty_batch(void **state)
{
	struct fx *f = rewelcome(state, FREEHINT__MODE__DISCARD, true);

	done_n = done_failed = 0;
	assert_int_equal(
	    send_empty(f, FREEHINT__RANGE_KIND__REPORTED, false), -1);
	assert_int_equal(send_empty(f, FREEHINT__RANGE_KIND__HELD, false), -1);
	assert_int_equal(send_empty(f, FREEHINT__RANGE_KIND__HINT, false), -1);
	assert_int_equal(done_n, 3);
	assert_int_equal(done_failed, 3);
	assert_int_equal(f->a.stats.batches_failed, 3);
	assert_int_equal(f->a.stats.batches_sent, 0);
	settle(f);
	assert_int_equal(count(f, FH_MSG_RANGES), 0);
	/* The empty last HELD batch that ends a pass still goes. */
	assert_int_equal(send_empty(f, FREEHINT__RANGE_KIND__HELD, true), 0);
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 1);
	assert_true(last_ranges(f)->last);
	assert_int_equal(last_ranges(f)->n_gaps, 0);
	assert_int_equal(done_n, 3);
}

/*
 * A pass that captured nothing ends with an empty last HELD batch, and
 * the module gave it no grace_ms (none was read). It leases nothing, so
 * it goes without a deadline to a discarding host (which takes an empty
 * batch without one) and waits for its Ack: it was refused as unleased,
 * so the host never saw the pass end, or, without a deadline to check,
 * expired at once and released the pass as if the host had not answered.
 */
static void
test_empty_last_held_no_lease(void **state)
{
	struct fx *f = rewelcome(state, FREEHINT__MODE__DISCARD, true);
	Freehint__Ack a = FREEHINT__ACK__INIT;
	const Freehint__RangeBatch *b;
	uint64_t t0;

	done_n = done_failed = 0;
	assert_int_equal(
	    send_empty_grace(f, FREEHINT__RANGE_KIND__HELD, true, 0), 0);
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 1);
	b = last_ranges(f);
	assert_true(b->last);
	assert_int_equal(b->n_gaps, 0);
	assert_false(b->has_deadline_ms);
	/* Unanswered for a while: still pending, not expired. */
	t0 = fh_monotonic_ms();
	while (fh_monotonic_ms() < t0 + 200)
		settle(f);
	assert_int_equal(done_n, 0);
	assert_int_equal(f->a.stats.batches_failed, 0);
	a.batch_id = b->batch_id;
	a.status = FREEHINT__ACK_STATUS__APPLIED;
	put(f, FH_MSG_ACK, &a.base);
	SPIN_UNTIL(f, done_n == 1);
	assert_int_equal(done_failed, 0);
	assert_int_equal(f->a.stats.batches_acked, 1);
}

/* A host speaking another protocol version is told so and left. */
static void
test_wrong_version(void **state)
{
	struct fx *f = *state;
	Freehint__Welcome w = FREEHINT__WELCOME__INIT;

	w.proto_version = 99;
	w.mode = FREEHINT__MODE__DISCARD;
	put(f, FH_MSG_WELCOME, &w.base);
	SPIN_UNTIL(f, f->eof);
	assert_int_equal(count(f, FH_MSG_ERROR), 1);
	assert_null(f->a.session);
}

/* A Welcome choosing message set 2 (command ids and results). */
static void
welcome2(struct fx *f, uint32_t stats_ms)
{
	Freehint__Welcome w = FREEHINT__WELCOME__INIT;

	w.proto_version = 2;
	w.mode = FREEHINT__MODE__DISCARD;
	w.has_stats_interval_ms = true;
	w.stats_interval_ms = stats_ms;
	w.has_capabilities = true;
	w.capabilities = FREEHINT__HOST_CAPABILITY__HOST_CAP_COMMAND_RESULT;
	w.has_host_clock_ms = true;
	w.host_clock_ms = fh_monotonic_ms();
	put(f, FH_MSG_WELCOME, &w.base);
	SPIN_UNTIL(f, session_ready(f->a.session));
}

static void
command_id(struct fx *f, int type, uint64_t id)
{
	Freehint__Command c = FREEHINT__COMMAND__INIT;

	c.type = (Freehint__CommandType)type;
	c.has_id = id != 0;
	c.id = id;
	put(f, FH_MSG_COMMAND, &c.base);
}

static const Freehint__CommandResult *
result_for(struct fx *f, uint64_t id)
{
	int i;

	for (i = 0; i < f->nrx; i++)
		if (f->msg[i].type == FH_MSG_COMMAND_RESULT &&
		    f->msg[i].u.result->id == id)
			return f->msg[i].u.result;
	return NULL;
}

/*
 * An Ack with a reject reason newer than us is still an Ack: the batch
 * is failed back at once and its slot freed, no Error. (It used to fail
 * to decode, be answered MALFORMED and leave the batch pending.)
 */
static void
test_ack_unknown_reason(void **state)
{
	struct fx *f = *state;
	Freehint__Ack a = FREEHINT__ACK__INIT;

	welcome2(f, 0);
	send_reported(f, 60000);
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 1);
	a.batch_id = last_ranges(f)->batch_id;
	a.status = FREEHINT__ACK_STATUS__REJECTED;
	a.has_reason = true;
	a.reason = (Freehint__RejectReason)99;
	put(f, FH_MSG_ACK, &a.base);
	SPIN_UNTIL(f, f->a.stats.batches_failed == 1);
	settle(f);
	assert_int_equal(count(f, FH_MSG_ERROR), 0);
	assert_int_equal(session_free_slots(f->a.session), 8);
}

/*
 * Command types newer than us, over a long session: each answered
 * NOT_SUPPORTED (a CommandResult with its id in set 2, an Error in set
 * 1), none a fault: more of them than the fault limit, still connected.
 */
static void
test_unknown_command(void **state)
{
	struct fx *f = *state;
	const Freehint__CommandResult *r;
	int i;

	welcome2(f, 0);
	for (i = 1; i <= 20; i++)
		command_id(f, 40 + i, (uint64_t)i);
	SPIN_UNTIL(f, count(f, FH_MSG_COMMAND_RESULT) == 20);
	for (i = 1; i <= 20; i++) {
		assert_non_null(r = result_for(f, (uint64_t)i));
		assert_false(r->ok);
		assert_int_equal(
		    r->code, FREEHINT__REJECT_REASON__NOT_SUPPORTED);
	}
	assert_int_equal(count(f, FH_MSG_ERROR), 0);
	assert_true(session_ready(f->a.session));
	teardown(state);
	setup(state);
	f = *state;
	welcome(f, 0, 0);
	for (i = 1; i <= 20; i++)
		command_id(f, 40 + i, 0);
	SPIN_UNTIL(f, count(f, FH_MSG_ERROR) == 20);
	for (i = 0; i < f->nrx; i++)
		if (f->msg[i].type == FH_MSG_ERROR) {
			assert_false(f->msg[i].u.error->fatal);
			assert_int_equal(f->msg[i].u.error->code,
			    FREEHINT__REJECT_REASON__NOT_SUPPORTED);
		}
	settle(f);
	assert_false(f->eof);
	assert_true(session_ready(f->a.session));
}

/*
 * Numbered commands get a result with their id. The agent's own failure
 * (no free lists to read) is reported, not counted against the host:
 * more failures than the fault limit, still connected.
 */
static void
test_command_results(void **state)
{
	struct fx *f = *state;
	const Freehint__CommandResult *r;
	char path[128];
	int i;

	welcome2(f, 0);
	command_id(f, FREEHINT__COMMAND_TYPE__STATS_REQUEST, 7);
	SPIN_UNTIL(f, result_for(f, 7) != NULL);
	r = result_for(f, 7);
	assert_true(r->ok);
	assert_int_equal(count(f, FH_MSG_STATS), 1);
	snprintf(path, sizeof path, "%s/blocks", f->dir);
	unlink(path);
	for (i = 0; i < 12; i++)
		command_id(f, FREEHINT__COMMAND_TYPE__SNAPSHOT, 100 + i);
	SPIN_UNTIL(f, result_for(f, 111) != NULL);
	for (i = 0; i < 12; i++) {
		assert_non_null(r = result_for(f, 100 + i));
		assert_false(r->ok);
		assert_int_equal(r->code, FREEHINT__REJECT_REASON__HOST_ERROR);
	}
	settle(f);
	assert_int_equal(count(f, FH_MSG_ERROR), 0);
	assert_false(f->eof);
	assert_true(session_ready(f->a.session));
	write_file(f, "blocks", "# freehint blocks: min_order=0\n");
}

/*
 * A host that chooses a message set we do not speak, or refuses our
 * range (BAD_VERSION), or writes frames of a newer framing: the agent
 * says so, leaves, and retries only after a long wait, with the reason
 * in its status; not the half-second backoff of an ordinary loss.
 */
static void
test_incompatible_backs_off(void **state)
{
	struct fx *f = *state;
	Freehint__Welcome w = FREEHINT__WELCOME__INIT;
	Freehint__Error e = FREEHINT__ERROR__INIT;
	uint8_t hdr[FH_HDR_SIZE];
	int round;

	for (round = 0; round < 3; round++) {
		if (round > 0) {
			teardown(state);
			setup(state);
			f = *state;
		}
		if (round == 0) {
			w.proto_version = FH_PROTO_MAX + 1;
			w.mode = FREEHINT__MODE__DISCARD;
			put(f, FH_MSG_WELCOME, &w.base);
		} else if (round == 1) {
			e.code = FREEHINT__REJECT_REASON__BAD_VERSION;
			e.detail = "this host speaks 3 to 4";
			e.has_fatal = e.fatal = true;
			put(f, FH_MSG_ERROR, &e.base);
		} else {
			fh_hdr_pack(hdr, FH_MSG_WELCOME, 0);
			hdr[4] = FH_FRAME_VERSION + 1;
			assert_int_equal(
			    write(f->fd, hdr, sizeof hdr), (ssize_t)sizeof hdr);
		}
		SPIN_UNTIL(f, f->a.session == NULL);
		assert_true(transport_retry_in_ms(f->a.transport) >= 300000);
		assert_non_null(strstr(f->a.stats.last_error, "incompatible"));
	}
	/* An ordinary loss still retries soon. */
	teardown(state);
	setup(state);
	f = *state;
	welcome(f, 0, 0);
	shutdown(f->fd, SHUT_RDWR);
	SPIN_UNTIL(f, f->a.session == NULL);
	assert_true(transport_retry_in_ms(f->a.transport) <= 1000);
}

/* A host asking for Stats every millisecond gets them once a second. */
static void
test_stats_interval_clamped(void **state)
{
	struct fx *f = *state;
	int i;

	welcome2(f, 1);
	for (i = 0; i < 4; i++)
		settle(f);
	assert_true(count(f, FH_MSG_STATS) <= 1);
	assert_true(session_ready(f->a.session));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		UNIT_FX(test_handshake),
		UNIT_FX(test_bad_host),
		UNIT_FX(test_deadline_on_host_clock),
		UNIT_FX(test_deadline_refined_by_ack),
		UNIT_FX(test_no_host_clock_no_deadline),
		UNIT_FX(test_pending_expires),
		UNIT_FX(test_rate_paced),
		UNIT_FX(test_rate_wakes_again),
		UNIT_FX(test_rate_none),
		UNIT_FX(test_no_empty_batch),
		UNIT_FX(test_empty_last_held_no_lease),
		UNIT_FX(test_garbage_reconnects),
		UNIT_FX(test_disconnect_fails_pending),
		UNIT_FX(test_wrong_version),
		UNIT_FX(test_ack_unknown_reason),
		UNIT_FX(test_unknown_command),
		UNIT_FX(test_command_results),
		UNIT_FX(test_incompatible_backs_off),
		UNIT_FX(test_stats_interval_clamped),
	};

	return UNIT_RUN("test_agent_session", tests);
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The snapshot (snapshot.c): the free lists in /proc/freehint/blocks as
 * HINT ranges and as Stats, sent over a session to a test host on the
 * other end of a socketpair, on a real event base (agent_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "unit.h"

#include "agent.h"
#include "agent_fixture.h"

/*
 * A snapshot of seven ranges in batches of two, at most three in flight:
 * three batches, then one more per Ack, all HINT, ranges intact.
 */
static void
test_snapshot_flow(void **state)
{
	struct fx *f = *state;
	struct fh_rangeset all, one;
	const Freehint__RangeBatch *b;
	int i;

	fh_rs_init(&all);
	fh_rs_init(&one);
	welcome(f, 3, 2);
	command(f, FREEHINT__COMMAND_TYPE__SNAPSHOT);
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 3);
	settle(f);
	assert_int_equal(count(f, FH_MSG_RANGES), 3);
	for (i = 1; i < f->nrx; i++) {
		assert_int_equal(f->msg[i].type, FH_MSG_RANGES);
		ack(f, f->msg[i].u.ranges->batch_id, true);
		break;
	}
	SPIN_UNTIL(f, count(f, FH_MSG_RANGES) == 4);
	for (i = 2; i < f->nrx; i++)
		ack(f, f->msg[i].u.ranges->batch_id, true);
	settle(f);
	assert_int_equal(count(f, FH_MSG_RANGES), 4);
	for (i = 0; i < f->nrx; i++) {
		if (f->msg[i].type != FH_MSG_RANGES)
			continue;
		b = f->msg[i].u.ranges;
		assert_int_equal(b->kind, FREEHINT__RANGE_KIND__HINT);
		assert_true(b->n_gaps <= 2);
		assert_int_equal(fh_batch_unpack(b, &one, 2), FH_OK);
		assert_int_equal(
		    fh_rs_add(&all, one.r[0].start, one.r[0].npages), 0);
		if (one.n == 2)
			assert_int_equal(
			    fh_rs_add(&all, one.r[1].start, one.r[1].npages),
			    0);
	}
	/* Eight blocks, none adjacent: exactly what the file lists. */
	fh_rs_normalize(&all);
	assert_int_equal(all.n, 8);
	for (i = 0; i < 7; i++) {
		assert_int_equal(all.r[i].start, 0x400 * i);
		assert_int_equal(all.r[i].npages, 512);
	}
	assert_int_equal(all.r[7].start, 0x3001);
	assert_int_equal(all.r[7].npages, 1);
	assert_int_equal(f->a.stats.batches_acked, 4);
	assert_int_equal(session_free_slots(f->a.session), 3);
	fh_rs_free(&all);
	fh_rs_free(&one);
}

static void
test_stats_request(void **state)
{
	struct fx *f = *state;
	const Freehint__Stats *st = NULL;
	int i;

	welcome(f, 0, 0);
	command(f, FREEHINT__COMMAND_TYPE__STATS_REQUEST);
	SPIN_UNTIL(f, count(f, FH_MSG_STATS) == 1);
	for (i = 0; i < f->nrx; i++)
		if (f->msg[i].type == FH_MSG_STATS)
			st = f->msg[i].u.stats;
	assert_non_null(st);
	assert_int_equal(st->free_bytes, (7 * 512 + 1) * 4096ULL);
	assert_int_equal(st->n_free_blocks_by_order, 10);
	assert_int_equal(st->free_blocks_by_order[9], 7);
	assert_int_equal(st->free_blocks_by_order[0], 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		UNIT_FX(test_snapshot_flow),
		UNIT_FX(test_stats_request),
	};

	return UNIT_RUN("test_agent_snapshot", tests);
}

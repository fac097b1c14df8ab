/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * validate.c, the one judge of what a guest sends: each RejectReason from
 * a batch built to deserve it, and the well-formed batches that pass.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "freehintd.h"

#define MiB (1ULL << 20)

/* pc machine, 512 MiB: RAM below the VGA hole and from 1 MiB up. */
static struct memregion regions[2] = {
	{ 0, 0xa0000, 0, 0, -1, 0, 4096 },
	{ 0x100000, 512 * MiB - 0x100000, 0x100000, 0, -1, 0, 4096 },
};
static const struct memmap map = { regions, 2, NULL, VM_BACKING_MEMFD };
static const struct policy pol = {
	.min_order = 9,
	.max_batch_ranges = 64,
	.max_batch_bytes = 256 * MiB,
	.max_batches_sec = 10,
	.max_bytes_sec = 1024 * MiB,
	.max_faults = 8,
};

struct fixture {
	struct vstate vs;
	struct budget bud;
	struct fh_rangeset out;
	struct timespec now;
	uint64_t id;
	bool last; /* the next batch is HELD's last */
	char err[256];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	vstate_init(&f->vs);
	fh_rs_init(&f->out);
	f->now.tv_sec = 1000;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	vstate_free(&f->vs);
	fh_rs_free(&f->out);
	free(f);
	return 0;
}

/*
 * One batch from (gap, length) pairs in pages, validated under policy p
 * with its ranges aligned to unit pages; last marks the pass's last.
 */
static int
judge_with(struct fixture *f, const struct policy *p, Freehint__RangeKind kind,
    uint64_t unit, bool last, const uint64_t *pairs, size_t n)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	uint64_t gaps[128], lens[128];
	size_t i;

	for (i = 0; i < n; i++) {
		gaps[i] = pairs[2 * i];
		lens[i] = pairs[2 * i + 1];
	}
	b.batch_id = ++f->id;
	b.kind = kind;
	b.gaps = gaps;
	b.lengths = lens;
	b.n_gaps = b.n_lengths = n;
	b.has_last = b.last = last;
	return validate_batch(&f->vs, &f->bud, p, &map, 4096, unit, &b, &f->now,
	    &f->out, f->err, sizeof f->err);
}

/* Under the test's policy, 2 MiB units. */
static int
judge(struct fixture *f, Freehint__RangeKind kind, const uint64_t *pairs,
    size_t n)
{
	return judge_with(f, &pol, kind, 512, f->last, pairs, n);
}

/* Single-page ranges, which the usual alignment would refuse. */
static int
validate_tiny(
    struct fixture *f, struct policy *p, const uint64_t *pairs, size_t n)
{
	p->max_batches_sec = 1000;
	return judge_with(
	    f, p, FREEHINT__RANGE_KIND__REPORTED, 1, false, pairs, n);
}

#define REP  FREEHINT__RANGE_KIND__REPORTED
#define R(x) FREEHINT__REJECT_REASON__##x

static void
test_valid(void **state)
{
	struct fixture *f = *state;
	const uint64_t two[] = { 0x4000, 512, 512, 1024 };

	assert_int_equal(judge(f, REP, two, 2), 0);
	assert_int_equal(f->out.n, 2);
	assert_int_equal(f->out.r[1].start, 0x4000 + 512 + 512);
	/* The last 2 MiB of RAM. */
	const uint64_t last[] = { (512 * MiB >> 12) - 512, 512 };
	assert_int_equal(judge(f, REP, last, 1), 0);
}

static void
test_out_of_range(void **state)
{
	struct fixture *f = *state;
	const uint64_t past[] = { 512 * MiB >> 12, 512 };
	const uint64_t straddle[] = { (512 * MiB >> 12) - 512, 1024 };
	const uint64_t hole[] = { 0, 512 }; /* VGA hole, BIOS */
	const uint64_t bar[] = { 0xfe000000ULL >> 12, 512 }; /* a BAR */
	const uint64_t huge[] = { (1ULL << 52) - 512, 512, 512, 512 };

	assert_int_equal(judge(f, REP, past, 1), R(OUT_OF_RANGE));
	assert_int_equal(judge(f, REP, straddle, 1), R(OUT_OF_RANGE));
	assert_int_equal(judge(f, REP, hole, 1), R(OUT_OF_RANGE));
	assert_int_equal(judge(f, REP, bar, 1), R(OUT_OF_RANGE));
	assert_int_equal(judge(f, REP, huge, 2), R(OUT_OF_RANGE));
	/* HINTs are bounded too, though never discarded. */
	assert_int_equal(
	    judge(f, FREEHINT__RANGE_KIND__HINT, past, 1), R(OUT_OF_RANGE));
}

/*
 * A guest may claim 64 KiB pages. pfn 2^48 + 0x400 of those is 2^64 plus
 * 64 MiB: computed without care it wraps to 64 MiB, inside RAM.
 */
static void
test_page_size_wrap(void **state)
{
	struct fixture *f = *state;
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	uint64_t gaps[1] = { (1ULL << 48) + 0x400 }, lens[1] = { 32 };
	uint64_t ok_gaps[1] = { 0x400 };

	b.batch_id = ++f->id;
	b.kind = REP;
	b.gaps = gaps;
	b.lengths = lens;
	b.n_gaps = b.n_lengths = 1;
	assert_int_equal(validate_batch(&f->vs, &f->bud, &pol, &map, 65536, 32,
	                     &b, &f->now, &f->out, f->err, sizeof f->err),
	    R(OUT_OF_RANGE));
	/* The same range without the 2^48 lies inside RAM and passes. */
	b.batch_id = ++f->id;
	b.gaps = ok_gaps;
	assert_int_equal(validate_batch(&f->vs, &f->bud, &pol, &map, 65536, 32,
	                     &b, &f->now, &f->out, f->err, sizeof f->err),
	    0);
}

static void
test_unaligned(void **state)
{
	struct fixture *f = *state;
	const uint64_t start[] = { 0x4001, 512 };
	const uint64_t length[] = { 0x4000, 513 };

	assert_int_equal(judge(f, REP, start, 1), R(UNALIGNED));
	assert_int_equal(judge(f, REP, length, 1), R(UNALIGNED));
	assert_int_equal(
	    judge(f, FREEHINT__RANGE_KIND__HELD, start, 1), R(UNALIGNED));
	/* A snapshot is a hint: single pages are fine. */
	assert_int_equal(judge(f, FREEHINT__RANGE_KIND__HINT, start, 1), 0);
}

static void
test_overlapping(void **state)
{
	struct fixture *f = *state;
	const uint64_t adjacent[] = { 0x4000, 512, 0, 512 };
	const uint64_t ok[] = { 0x4000, 512 };
	const uint64_t again[] = { 0x4000, 1024 };

	assert_int_equal(judge(f, REP, adjacent, 2), R(OVERLAPPING));
	/* HELD twice in one pass. */
	assert_int_equal(judge(f, FREEHINT__RANGE_KIND__HELD, ok, 1), 0);
	fh_rs_add(&f->vs.held, 0x4000, 512);
	assert_int_equal(
	    judge(f, FREEHINT__RANGE_KIND__HELD, again, 1), R(OVERLAPPING));
}

static void
test_too_large(void **state)
{
	struct fixture *f = *state;
	uint64_t many[2 * 65];
	const uint64_t bytes[] = { 0x4000, 256 * MiB / 4096 + 512 };
	size_t i;

	for (i = 0; i < 65; i++) {
		many[2 * i] = i == 0 ? 0x4000 : 512;
		many[2 * i + 1] = 512;
	}
	assert_int_equal(judge(f, REP, many, 65), R(TOO_LARGE));
	assert_int_equal(judge(f, REP, many, 64), 0);
	assert_int_equal(judge(f, REP, bytes, 1), R(TOO_LARGE));
}

static void
test_rate_and_ids(void **state)
{
	struct fixture *f = *state;
	const uint64_t ok[] = { 0x4000, 512 };
	int i;

	for (i = 0; i < 10; i++)
		assert_int_equal(judge(f, REP, ok, 1), 0);
	assert_int_equal(judge(f, REP, ok, 1), R(RATE_LIMITED));
	f->now.tv_sec++;
	assert_int_equal(judge(f, REP, ok, 1), 0);
	/* Ids only go up. */
	f->id -= 1;
	assert_int_equal(judge(f, REP, ok, 1), R(DUPLICATE_ID));
	f->id += 5;
	assert_int_equal(judge(f, REP, ok, 1), 0);
}

/*
 * The budget is the VM's: a guest that says Hello again (a new vstate)
 * before every batch still runs into RATE_LIMITED. And each range costs
 * FREEHINTD_RANGE_COST: a batch of 64 single pages is charged 64 MiB,
 * not 256 KiB, so tiny ranges buy no more fallocate calls.
 */
static void
test_budget_outlives_hello(void **state)
{
	struct fixture *f = *state;
	const uint64_t ok[] = { 0x4000, 512 };
	uint64_t tiny[128];
	struct policy p = pol;
	int i;

	for (i = 0; i < 10; i++) {
		vstate_free(&f->vs);
		vstate_init(&f->vs);
		f->id = 0;
		assert_int_equal(judge(f, REP, ok, 1), 0);
	}
	vstate_free(&f->vs);
	vstate_init(&f->vs);
	f->id = 0;
	assert_int_equal(judge(f, REP, ok, 1), R(RATE_LIMITED));

	f->now.tv_sec++;
	memset(&f->bud, 0, sizeof f->bud);
	for (i = 0; i < 64; i++) {
		tiny[2 * i] = i == 0 ? 0x4000 : 511; /* one page in 512 */
		tiny[2 * i + 1] = 1;
	}
	/* 1 GiB a second: 15 such batches (64.25 MiB each), then no more. */
	for (i = 0; i < 15; i++) {
		vstate_free(&f->vs);
		vstate_init(&f->vs);
		f->id = 0;
		if (validate_tiny(f, &p, tiny, 64) != 0)
			fail_msg("batch %d: %s", i, f->err);
	}
	assert_int_equal(validate_tiny(f, &p, tiny, 64), R(RATE_LIMITED));
}

/*
 * A pass's held ranges cost FREEHINTD_HELD_RANGE_COST, an eighth of a
 * reported one's: 64 single pages (a pass of small blocks) cost 8.25
 * MiB, so 124 such batches go in a second of 1 GiB, where reported ones
 * stop after 15. Their bytes count too.
 */
static void
test_held_ranges_per_pass(void **state)
{
	struct fixture *f = *state;
	uint64_t tiny[128];
	struct policy p = pol;
	int i, j, rc = 0;

	p.max_batches_sec = 1000;
	for (i = 0; i < 125; i++) {
		for (j = 0; j < 64; j++) {
			tiny[2 * j] = j == 0 ? 0x4000 + i * 256 : 1;
			tiny[2 * j + 1] = 1;
		}
		rc = judge_with(
		    f, &p, FREEHINT__RANGE_KIND__HELD, 1, false, tiny, 64);
		if (i < 124 && rc != 0)
			fail_msg("held batch %d: %s", i, f->err);
	}
	assert_int_equal(rc, R(RATE_LIMITED));
	f->now.tv_sec++;
	memset(&f->bud, 0, sizeof f->bud);
	for (i = 0; i < 15; i++) {
		for (j = 0; j < 64; j++) {
			tiny[2 * j] = j == 0 ? 0x10000 + i * 1024 : 1;
			tiny[2 * j + 1] = 1;
		}
		if (validate_tiny(f, &p, tiny, 64) != 0)
			fail_msg("reported batch %d: %s", i, f->err);
	}
	assert_int_equal(validate_tiny(f, &p, tiny, 64), R(RATE_LIMITED));
	/* Bytes count, held or not: 1 GiB a second here, so the sixth
	 * 200 MiB batch is refused (validate_batch does not record what is
	 * held: guest.c does, so the same ranges may come again here). */
	f->now.tv_sec++;
	memset(&f->bud, 0, sizeof f->bud);
	for (i = 0; i < 6; i++) {
		const uint64_t big[] = { 0x1000 + (i % 2) * 51200, 51200 };

		assert_int_equal(judge_with(f, &p, FREEHINT__RANGE_KIND__HELD,
		                     512, false, big, 1),
		    i < 5 ? 0 : R(RATE_LIMITED));
	}
}

static void
test_malformed(void **state)
{
	struct fixture *f = *state;
	const uint64_t zero_len[] = { 0x4000, 0 };

	assert_int_equal(judge(f, REP, zero_len, 1), R(MALFORMED));
	assert_int_equal(judge(f, REP, zero_len, 0), R(MALFORMED)); /* empty */
	/* Empty is how a hint pass with nothing more ends: only that. */
	assert_int_equal(
	    judge(f, FREEHINT__RANGE_KIND__HELD, zero_len, 0), R(MALFORMED));
	f->last = true;
	assert_int_equal(judge(f, FREEHINT__RANGE_KIND__HELD, zero_len, 0), 0);
	assert_int_equal(judge(f, REP, zero_len, 0), R(MALFORMED));
	f->last = false;
	assert_int_equal(
	    judge(f, FREEHINT__RANGE_KIND__RANGE_KIND_UNSPECIFIED, zero_len, 1),
	    R(BAD_KIND));
	assert_string_equal(
	    validate_reason_name(R(OUT_OF_RANGE)), "OUT_OF_RANGE");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		UNIT_FX(test_valid),
		UNIT_FX(test_out_of_range),
		UNIT_FX(test_page_size_wrap),
		UNIT_FX(test_unaligned),
		UNIT_FX(test_overlapping),
		UNIT_FX(test_too_large),
		UNIT_FX(test_rate_and_ids),
		UNIT_FX(test_budget_outlives_hello),
		UNIT_FX(test_held_ranges_per_pass),
		UNIT_FX(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Range sets: normalisation, coverage, intersection and subtraction, on
 * the edge cases (empty, adjacent, overlapping, contained, near 2^64),
 * and against a page-by-page model on random sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "common.h"

#define MODEL_PAGES 256

static void set(struct fh_rangeset *, const uint64_t *pairs, size_t n);
static void expect(const struct fh_rangeset *, const uint64_t *, size_t);
static void random_set(struct fh_rangeset *, uint8_t *model, unsigned *);

/* Fill rs from (start, npages) pairs. */
static void
set(struct fh_rangeset *rs, const uint64_t *pairs, size_t n)
{
	size_t i;

	fh_rs_clear(rs);
	for (i = 0; i < n; i++)
		assert_int_equal(
		    fh_rs_add(rs, pairs[2 * i], pairs[2 * i + 1]), 0);
}

static void
expect(const struct fh_rangeset *rs, const uint64_t *pairs, size_t n)
{
	size_t i;

	assert_int_equal(rs->n, n);
	for (i = 0; i < n; i++) {
		assert_int_equal(rs->r[i].start, pairs[2 * i]);
		assert_int_equal(rs->r[i].npages, pairs[2 * i + 1]);
	}
	assert_true(fh_rs_is_normal(rs));
}

static void
test_add(void **state)
{
	struct fh_rangeset rs;
	size_t i;

	fh_rs_init(&rs);
	assert_int_equal(fh_rs_add(&rs, 5, 0), -1);
	assert_int_equal(fh_rs_add(&rs, UINT64_MAX, 1), -1);
	assert_int_equal(fh_rs_add(&rs, 2, UINT64_MAX - 1), -1);
	assert_int_equal(fh_rs_add(&rs, 1, UINT64_MAX - 1), 0);
	assert_int_equal(fh_rs_add(&rs, UINT64_MAX - 1, 1), 0);
	assert_int_equal(rs.n, 2);
	assert_int_equal(fh_rs_pages(&rs), UINT64_MAX);
	/* Growth keeps what was there. */
	fh_rs_clear(&rs);
	assert_int_equal(rs.n, 0);
	for (i = 0; i < 1000; i++)
		assert_int_equal(fh_rs_add(&rs, 3 * i, 2), 0);
	assert_int_equal(rs.r[999].start, 2997);
	assert_int_equal(fh_rs_pages(&rs), 2000);
	assert_true(fh_rs_is_normal(&rs));
	fh_rs_free(&rs);
	assert_null(rs.r);
	fh_rs_free(&rs); /* twice is harmless */
}

static void
test_normalize(void **state)
{
	static const uint64_t in[] = { 50, 10, 0, 5, 5, 5, 100, 1, 2, 2, 55, 20,
		60, 1, 101, 4, 200, 3 };
	static const uint64_t out[] = { 0, 10, 50, 25, 100, 5, 200, 3 };
	struct fh_rangeset rs;

	fh_rs_init(&rs);
	fh_rs_normalize(&rs); /* empty */
	assert_true(fh_rs_is_normal(&rs));
	set(&rs, in, 9);
	assert_false(fh_rs_is_normal(&rs));
	fh_rs_normalize(&rs);
	expect(&rs, out, 4);
	/* Near the top of the pfn space. */
	set(&rs, (const uint64_t[]){ UINT64_MAX - 10, 10, UINT64_MAX - 20, 10 },
	    2);
	assert_false(fh_rs_is_normal(&rs)); /* unsorted */
	fh_rs_normalize(&rs);
	expect(&rs, (const uint64_t[]){ UINT64_MAX - 20, 20 }, 1);
	/* Adjacent and equal are not normal; a gap of one is. */
	set(&rs, (const uint64_t[]){ 0, 4, 4, 4 }, 2);
	assert_false(fh_rs_is_normal(&rs));
	set(&rs, (const uint64_t[]){ 0, 4, 0, 4 }, 2);
	assert_false(fh_rs_is_normal(&rs));
	fh_rs_normalize(&rs);
	expect(&rs, (const uint64_t[]){ 0, 4 }, 1);
	set(&rs, (const uint64_t[]){ 0, 4, 5, 4 }, 2);
	assert_true(fh_rs_is_normal(&rs));
	/* Hand-made entries that wrap are caught. */
	rs.r[1].npages = UINT64_MAX;
	assert_false(fh_rs_is_normal(&rs));
	rs.r[1].npages = 0;
	assert_false(fh_rs_is_normal(&rs));
	fh_rs_free(&rs);
}

static void
test_covers(void **state)
{
	struct fh_rangeset rs;

	fh_rs_init(&rs);
	assert_false(fh_rs_covers(&rs, 0, 1));
	set(&rs, (const uint64_t[]){ 10, 10, 30, 5, UINT64_MAX - 5, 5 }, 3);
	assert_true(fh_rs_covers(&rs, 10, 10));
	assert_true(fh_rs_covers(&rs, 10, 1));
	assert_true(fh_rs_covers(&rs, 19, 1));
	assert_false(fh_rs_covers(&rs, 9, 1));
	assert_false(fh_rs_covers(&rs, 9, 2));
	assert_false(fh_rs_covers(&rs, 20, 1));
	assert_false(fh_rs_covers(&rs, 19, 2));
	/* Spanning two ranges, even across the gap, is not covered. */
	assert_false(fh_rs_covers(&rs, 15, 20));
	assert_true(fh_rs_covers(&rs, 34, 1));
	assert_false(fh_rs_covers(&rs, 35, 1));
	assert_false(fh_rs_covers(&rs, 0, 5));
	assert_false(fh_rs_covers(&rs, 12, 0));
	assert_true(fh_rs_covers(&rs, UINT64_MAX - 5, 5));
	assert_false(fh_rs_covers(&rs, UINT64_MAX - 5, 6)); /* wraps */
	assert_false(fh_rs_covers(&rs, UINT64_MAX, UINT64_MAX));
	fh_rs_free(&rs);
}

static void
test_intersect_subtract_edges(void **state)
{
	struct fh_rangeset a, b, o;

	fh_rs_init(&a);
	fh_rs_init(&b);
	fh_rs_init(&o);
	/* Empty operands. */
	assert_int_equal(fh_rs_intersect(&a, &b, &o), 0);
	assert_int_equal(o.n, 0);
	set(&a, (const uint64_t[]){ 0, 10 }, 1);
	assert_int_equal(fh_rs_subtract(&a, &b, &o), 0);
	expect(&o, (const uint64_t[]){ 0, 10 }, 1);
	assert_int_equal(fh_rs_intersect(&a, &b, &o), 0);
	assert_int_equal(o.n, 0);
	assert_false(fh_rs_overlaps(&a, &b));
	assert_int_equal(fh_rs_subtract(&b, &a, &o), 0);
	assert_int_equal(o.n, 0);
	/* Adjacent: no page shared. */
	set(&b, (const uint64_t[]){ 10, 5 }, 1);
	assert_false(fh_rs_overlaps(&a, &b));
	fh_rs_intersect(&a, &b, &o);
	assert_int_equal(o.n, 0);
	fh_rs_subtract(&a, &b, &o);
	expect(&o, (const uint64_t[]){ 0, 10 }, 1);
	/* Overlapping by one page. */
	set(&b, (const uint64_t[]){ 9, 5 }, 1);
	assert_true(fh_rs_overlaps(&a, &b));
	fh_rs_intersect(&a, &b, &o);
	expect(&o, (const uint64_t[]){ 9, 1 }, 1);
	fh_rs_subtract(&a, &b, &o);
	expect(&o, (const uint64_t[]){ 0, 9 }, 1);
	/* Contained: a hole in the middle. */
	set(&b, (const uint64_t[]){ 3, 2 }, 1);
	fh_rs_subtract(&a, &b, &o);
	expect(&o, (const uint64_t[]){ 0, 3, 5, 5 }, 2);
	fh_rs_subtract(&b, &a, &o);
	assert_int_equal(o.n, 0);
	/* One b range across several a ranges, and equal sets. */
	set(&a, (const uint64_t[]){ 0, 2, 4, 2, 8, 2, 12, 2 }, 4);
	set(&b, (const uint64_t[]){ 1, 8 }, 1);
	fh_rs_intersect(&a, &b, &o);
	expect(&o, (const uint64_t[]){ 1, 1, 4, 2, 8, 1 }, 3);
	fh_rs_subtract(&a, &b, &o);
	expect(&o, (const uint64_t[]){ 0, 1, 9, 1, 12, 2 }, 3);
	fh_rs_intersect(&a, &a, &o);
	expect(&o, (const uint64_t[]){ 0, 2, 4, 2, 8, 2, 12, 2 }, 4);
	fh_rs_subtract(&a, &a, &o);
	assert_int_equal(o.n, 0);
	/* At the top of the space. */
	set(&a, (const uint64_t[]){ UINT64_MAX - 10, 10 }, 1);
	set(&b, (const uint64_t[]){ UINT64_MAX - 3, 3 }, 1);
	fh_rs_subtract(&a, &b, &o);
	expect(&o, (const uint64_t[]){ UINT64_MAX - 10, 7 }, 1);
	fh_rs_intersect(&a, &b, &o);
	expect(&o, (const uint64_t[]){ UINT64_MAX - 3, 3 }, 1);
	fh_rs_free(&a);
	fh_rs_free(&b);
	fh_rs_free(&o);
}

/* Merging: the cases a coalescing insertion can get wrong. */
static void
test_merge(void **state)
{
	struct fh_rangeset a, b;
	const uint64_t a1[] = { 10, 5, 30, 5, 50, 5 };
	const uint64_t b1[] = { 0, 2, 15, 3, 20, 10, 52, 1, 60, 1 };
	const uint64_t o1[] = { 0, 2, 10, 8, 20, 15, 50, 5, 60, 1 };
	const uint64_t b2[] = { 2, 8, 18, 2, 100, 1 };
	const uint64_t o2[] = { 0, 35, 50, 5, 60, 1, 100, 1 };
	const uint64_t hi[] = { UINT64_MAX - 10, 10 };
	const uint64_t o3[] = { 0, 35, 50, 5, 60, 1, 100, 1, UINT64_MAX - 10,
		10 };

	fh_rs_init(&a);
	fh_rs_init(&b);
	/* Into an empty set, and nothing added. */
	set(&b, a1, 3);
	assert_int_equal(fh_rs_merge(&a, &b), 0);
	expect(&a, a1, 3);
	fh_rs_clear(&b);
	assert_int_equal(fh_rs_merge(&a, &b), 0);
	expect(&a, a1, 3);
	/* Before, adjacent on both sides, contained, after. */
	set(&b, b1, 5);
	assert_int_equal(fh_rs_merge(&a, &b), 0);
	expect(&a, o1, 5);
	/* One range joining three. */
	set(&b, b2, 3);
	assert_int_equal(fh_rs_merge(&a, &b), 0);
	expect(&a, o2, 4);
	/* Up to the last page below 2^64. */
	set(&b, hi, 1);
	assert_int_equal(fh_rs_merge(&a, &b), 0);
	expect(&a, o3, 5);
	fh_rs_free(&a);
	fh_rs_free(&b);
}

/*
 * A hint pass's held set, built a batch at a time: 300 batches of 100
 * ranges, interleaved so that nothing coalesces until the last third
 * fills the gaps. The merge gives what sorting the whole set again after
 * every batch (what freehintd did) gives, in well under half the time
 * (several times less without sanitizers).
 */
static void
test_merge_large(void **state)
{
	struct fh_rangeset merged, sorted, batch;
	double t0, t_merge, t_sort;
	unsigned k, i;

	fh_rs_init(&merged);
	fh_rs_init(&sorted);
	fh_rs_init(&batch);
	t_merge = t_sort = 0;
	for (k = 0; k < 300; k++) {
		fh_rs_clear(&batch);
		/* Batch k: pages (i * 300 + k) * 4 .. +2 (+4 from k 200 on,
		 * touching the next batch's range). */
		for (i = 0; i < 100; i++)
			assert_int_equal(
			    fh_rs_add(&batch, ((uint64_t)i * 300 + k) * 4,
			        k >= 200 ? 4 : 2),
			    0);
		t0 = fh_monotonic_s();
		assert_int_equal(fh_rs_merge(&merged, &batch), 0);
		t_merge += fh_monotonic_s() - t0;
		t0 = fh_monotonic_s();
		for (i = 0; i < batch.n; i++)
			assert_int_equal(fh_rs_add(&sorted, batch.r[i].start,
			                     batch.r[i].npages),
			    0);
		fh_rs_normalize(&sorted);
		t_sort += fh_monotonic_s() - t0;
	}
	assert_true(fh_rs_is_normal(&merged));
	assert_int_equal(merged.n, sorted.n);
	assert_memory_equal(merged.r, sorted.r, merged.n * sizeof *merged.r);
	assert_int_equal(fh_rs_pages(&merged), 200 * 100 * 2 + 100 * 100 * 4);
	print_message("merge %.3f s, sort %.3f s\n", t_merge, t_sort);
	assert_true(t_merge * 2 < t_sort);
	fh_rs_free(&merged);
	fh_rs_free(&sorted);
	fh_rs_free(&batch);
}

/* A random normal set over MODEL_PAGES pages, and its page map. */
static void
random_set(struct fh_rangeset *rs, uint8_t *model, unsigned *seed)
{
	uint64_t s, n;
	size_t i, k = (size_t)rand_r(seed) % 12;

	fh_rs_clear(rs);
	memset(model, 0, MODEL_PAGES);
	for (i = 0; i < k; i++) {
		s = (uint64_t)rand_r(seed) % (MODEL_PAGES - 1);
		n = (uint64_t)rand_r(seed) % 40 + 1;
		if (s + n > MODEL_PAGES)
			n = MODEL_PAGES - s;
		fh_rs_add(rs, s, n);
		memset(model + s, 1, n);
	}
	fh_rs_normalize(rs);
}

static void
test_against_model(void **state)
{
	uint8_t ma[MODEL_PAGES], mb[MODEL_PAGES], mo[MODEL_PAGES];
	struct fh_rangeset a, b, o;
	unsigned seed = 3, round, p, q, any;
	size_t i;

	fh_rs_init(&a);
	fh_rs_init(&b);
	fh_rs_init(&o);
	for (round = 0; round < 3000; round++) {
		random_set(&a, ma, &seed);
		random_set(&b, mb, &seed);
		assert_true(fh_rs_is_normal(&a));
		for (p = 0, any = 0; p < MODEL_PAGES; p++)
			any |= ma[p] & mb[p];
		assert_int_equal(fh_rs_overlaps(&a, &b), any);
		for (q = 0; q < 2; q++) {
			if (q == 0)
				assert_int_equal(
				    fh_rs_intersect(&a, &b, &o), 0);
			else
				assert_int_equal(fh_rs_subtract(&a, &b, &o), 0);
			assert_true(fh_rs_is_normal(&o));
			memset(mo, 0, sizeof mo);
			for (i = 0; i < o.n; i++)
				memset(mo + o.r[i].start, 1, o.r[i].npages);
			for (p = 0; p < MODEL_PAGES; p++)
				assert_int_equal(mo[p],
				    q == 0 ? ma[p] & mb[p] : ma[p] & !mb[p]);
		}
		/* a ∪ b, merged into a copy of a. */
		fh_rs_clear(&o);
		for (i = 0; i < a.n; i++)
			assert_int_equal(
			    fh_rs_add(&o, a.r[i].start, a.r[i].npages), 0);
		assert_int_equal(fh_rs_merge(&o, &b), 0);
		assert_true(fh_rs_is_normal(&o));
		memset(mo, 0, sizeof mo);
		for (i = 0; i < o.n; i++)
			memset(mo + o.r[i].start, 1, o.r[i].npages);
		for (p = 0; p < MODEL_PAGES; p++)
			assert_int_equal(mo[p], ma[p] | mb[p]);
		/* covers() of every window of a few sizes. */
		for (p = 0; p < MODEL_PAGES; p += 3) {
			for (q = 1; q < 6 && p + q <= MODEL_PAGES; q++) {
				for (i = p, any = 1; i < p + q; i++)
					any &= ma[i];
				/* Normal ranges never touch: a run of set
				 * pages lies in exactly one range. */
				assert_int_equal(fh_rs_covers(&a, p, q), any);
			}
		}
	}
	fh_rs_free(&a);
	fh_rs_free(&b);
	fh_rs_free(&o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_covers),
		cmocka_unit_test(test_intersect_subtract_edges),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_merge_large),
		cmocka_unit_test(test_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

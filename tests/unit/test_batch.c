/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Range batches: fh_batch_pack and fh_batch_unpack round trips, the unit
 * the encoder picks, and every way a hostile batch can try to wrap, pass
 * FH_PFN_LIMIT or overlap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "common.h"

static void roundtrip(const struct fh_rangeset *, unsigned want_unit);
static int unpack2(uint64_t g0, uint64_t l0, uint64_t g1, uint64_t l1,
    unsigned unit, size_t n, struct fh_rangeset *);

/* Pack rs, check the unit, unpack and compare. */
static void
roundtrip(const struct fh_rangeset *rs, unsigned want_unit)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	struct fh_rangeset out;
	uint64_t *scratch;
	size_t i;

	scratch = calloc(2 * rs->n + 1, sizeof *scratch);
	assert_non_null(scratch);
	fh_rs_init(&out);
	b.kind = FREEHINT__RANGE_KIND__REPORTED;
	assert_int_equal(fh_batch_pack(&b, rs, scratch), FH_OK);
	assert_int_equal(b.unit_order, want_unit);
	assert_int_equal(b.has_unit_order, want_unit != 0);
	assert_int_equal(b.n_gaps, rs->n);
	assert_true(protobuf_c_message_get_packed_size(&b.base) <=
	    fh_batch_max_encoded(rs->n));
	assert_int_equal(fh_batch_unpack(&b, &out, rs->n), FH_OK);
	assert_int_equal(out.n, rs->n);
	for (i = 0; i < rs->n; i++) {
		assert_int_equal(out.r[i].start, rs->r[i].start);
		assert_int_equal(out.r[i].npages, rs->r[i].npages);
	}
	if (rs->n > 0)
		assert_int_equal(
		    fh_batch_unpack(&b, &out, rs->n - 1), FH_ELIMIT);
	fh_rs_free(&out);
	free(scratch);
}

static void
test_roundtrip_units(void **state)
{
	struct fh_rangeset rs;

	fh_rs_init(&rs);
	roundtrip(&rs, 0); /* empty */
	fh_rs_add(&rs, 0, 1);
	roundtrip(&rs, 0);
	fh_rs_clear(&rs);
	fh_rs_add(&rs, 512, 512);
	fh_rs_add(&rs, 4096, 1024);
	roundtrip(&rs, 9);
	fh_rs_add(&rs, 8192, 16); /* one smaller block lowers the unit */
	roundtrip(&rs, 4);
	fh_rs_clear(&rs);
	fh_rs_add(&rs, 1ULL << 40, 1ULL << 35);
	roundtrip(&rs, 30); /* capped */
	fh_rs_clear(&rs);
	/* The last page below the limit, alone and as a range end. */
	fh_rs_add(&rs, FH_PFN_LIMIT - 1, 1);
	roundtrip(&rs, 0);
	fh_rs_clear(&rs);
	fh_rs_add(&rs, 0, 1);
	fh_rs_add(&rs, FH_PFN_LIMIT - (1ULL << 30), 1ULL << 30);
	roundtrip(&rs, 0);
	fh_rs_free(&rs);
}

static void
test_roundtrip_random(void **state)
{
	struct fh_rangeset rs;
	unsigned seed = 7, round, order;
	uint64_t pos;
	size_t i;

	fh_rs_init(&rs);
	for (round = 0; round < 200; round++) {
		fh_rs_clear(&rs);
		pos = (uint64_t)rand_r(&seed) << 12;
		order = round % 11;
		for (i = 0; i < (size_t)(rand_r(&seed) % 2000); i++) {
			pos += ((uint64_t)(rand_r(&seed) % 1000) + 1) << order;
			fh_rs_add(&rs, pos,
			    (uint64_t)(rand_r(&seed) % 7 + 1) << order);
			pos += rs.r[rs.n - 1].npages;
		}
		fh_rs_normalize(&rs);
		roundtrip(&rs, rs.n ? order : 0);
	}
	fh_rs_free(&rs);
}

/* The worked example of docs/protocol.md, byte for byte. */
static void
test_worked_example(void **state)
{
	static const uint8_t want[] = { 0x08, 0x01, 0x10, 0x02, 0x18, 0x08,
		0x22, 0x03, 0x01, 0x01, 0x08, 0x2a, 0x03, 0x02, 0x04, 0x02 };
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	struct fh_rangeset rs;
	uint64_t scratch[6];
	uint8_t out[64];

	fh_rs_init(&rs);
	fh_rs_add(&rs, 0x100, 0x200);
	fh_rs_add(&rs, 0x400, 0x400);
	fh_rs_add(&rs, 0x1000, 0x200);
	b.batch_id = 1;
	b.kind = FREEHINT__RANGE_KIND__REPORTED;
	assert_int_equal(fh_batch_pack(&b, &rs, scratch), FH_OK);
	assert_int_equal(
	    protobuf_c_message_get_packed_size(&b.base), sizeof want);
	protobuf_c_message_pack(&b.base, out);
	assert_memory_equal(out, want, sizeof want);
	fh_rs_free(&rs);
}

static void
test_pack_errors(void **state)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	struct fh_rangeset rs;
	uint64_t *scratch;
	size_t i;

	scratch = calloc(2 * (FH_BATCH_MAX_RANGES + 1), sizeof *scratch);
	assert_non_null(scratch);
	fh_rs_init(&rs);
	fh_rs_add(&rs, 10, 5);
	fh_rs_add(&rs, 0, 5); /* unsorted */
	assert_int_equal(fh_batch_pack(&b, &rs, scratch), FH_EORDER);
	fh_rs_clear(&rs);
	fh_rs_add(&rs, 0, 5);
	fh_rs_add(&rs, 5, 5); /* adjacent */
	assert_int_equal(fh_batch_pack(&b, &rs, scratch), FH_EORDER);
	fh_rs_clear(&rs);
	fh_rs_add(&rs, 0, 5);
	fh_rs_add(&rs, 4, 5); /* overlapping */
	assert_int_equal(fh_batch_pack(&b, &rs, scratch), FH_EORDER);
	fh_rs_clear(&rs);
	fh_rs_add(&rs, FH_PFN_LIMIT - 1, 2);
	assert_int_equal(fh_batch_pack(&b, &rs, scratch), FH_EOVERFLOW);
	fh_rs_clear(&rs);
	fh_rs_add(&rs, UINT64_MAX - 1, 1);
	assert_int_equal(fh_batch_pack(&b, &rs, scratch), FH_EOVERFLOW);
	fh_rs_clear(&rs);
	for (i = 0; i <= FH_BATCH_MAX_RANGES; i++)
		fh_rs_add(&rs, 2 * i, 1);
	assert_int_equal(fh_batch_pack(&b, &rs, scratch), FH_ELIMIT);
	rs.n--;
	assert_int_equal(fh_batch_pack(&b, &rs, scratch), FH_OK);
	assert_int_equal(b.n_gaps, FH_BATCH_MAX_RANGES);
	fh_rs_free(&rs);
	free(scratch);
}

/* Unpack a batch of n (1 or 2) ranges built from raw wire values. */
static int
unpack2(uint64_t g0, uint64_t l0, uint64_t g1, uint64_t l1, unsigned unit,
    size_t n, struct fh_rangeset *out)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	uint64_t g[2] = { g0, g1 }, l[2] = { l0, l1 };
	int err;

	b.kind = FREEHINT__RANGE_KIND__HELD;
	b.has_unit_order = unit != 0;
	b.unit_order = unit;
	b.gaps = g;
	b.lengths = l;
	b.n_gaps = b.n_lengths = n;
	/* Start from a non-empty set: it must come back cleared. */
	fh_rs_add(out, 1, 1);
	err = fh_batch_unpack(&b, out, 16);
	if (err != FH_OK)
		assert_int_equal(out->n, 0);
	return err;
}

static void
test_unpack_errors(void **state)
{
	const uint64_t L = FH_PFN_LIMIT;
	struct fh_rangeset o;

	fh_rs_init(&o);
	assert_int_equal(unpack2(0, 1, 1, 1, 0, 2, &o), FH_OK);
	assert_int_equal(o.n, 2);
	assert_int_equal(o.r[1].start, 2);
	assert_int_equal(unpack2(0, 0, 1, 1, 0, 1, &o), FH_EFIELD);
	assert_int_equal(unpack2(0, 1, 1, 0, 0, 2, &o), FH_EFIELD);
	/* Gap 0 after the first range: adjacent, never sent coalesced. */
	assert_int_equal(unpack2(0, 1, 0, 1, 0, 2, &o), FH_EORDER);
	assert_int_equal(unpack2(5, 1, 0, 1, 0, 2, &o), FH_EORDER);
	assert_int_equal(unpack2(0, 1, 1, 1, 41, 1, &o), FH_EFIELD);
	/* Right up to the limit, and one page past it. */
	assert_int_equal(unpack2(L - 1, 1, 0, 0, 0, 1, &o), FH_OK);
	assert_int_equal(o.r[0].start, L - 1);
	assert_int_equal(unpack2(L - 1, 2, 0, 0, 0, 1, &o), FH_EOVERFLOW);
	assert_int_equal(unpack2(L, 1, 0, 0, 0, 1, &o), FH_EOVERFLOW);
	assert_int_equal(unpack2(0, L, 0, 0, 0, 1, &o), FH_OK);
	assert_int_equal(unpack2(0, L + 1, 0, 0, 0, 1, &o), FH_EOVERFLOW);
	assert_int_equal(unpack2(0, L - 2, 1, 1, 0, 2, &o), FH_OK);
	assert_int_equal(unpack2(0, L - 2, 1, 2, 0, 2, &o), FH_EOVERFLOW);
	/* Values that wrap 2^64 on their own, or summed, or shifted. */
	assert_int_equal(unpack2(UINT64_MAX, 1, 0, 0, 0, 1, &o), FH_EOVERFLOW);
	assert_int_equal(unpack2(0, UINT64_MAX, 0, 0, 0, 1, &o), FH_EOVERFLOW);
	assert_int_equal(
	    unpack2(1, 1, UINT64_MAX - 1, 1, 0, 2, &o), FH_EOVERFLOW);
	assert_int_equal(
	    unpack2(UINT64_MAX / 2 + 1, 1, UINT64_MAX / 2 + 1, 1, 0, 2, &o),
	    FH_EOVERFLOW);
	assert_int_equal(unpack2(0, 1ULL << 24, 0, 0, 40, 1, &o), FH_EOVERFLOW);
	assert_int_equal(unpack2(0, 1ULL << 12, 0, 0, 40, 1, &o), FH_OK);
	assert_int_equal(o.r[0].npages, L);
	assert_int_equal(unpack2(1, 1ULL << 12, 0, 0, 40, 1, &o), FH_EOVERFLOW);
	assert_int_equal(unpack2(1ULL << 21, 1, 0, 0, 31, 1, &o), FH_EOVERFLOW);
	assert_int_equal(unpack2((1ULL << 21) - 1, 1, 0, 0, 31, 1, &o), FH_OK);
	assert_int_equal(o.r[0].start + o.r[0].npages, L);
	fh_rs_free(&o);
}

static void
test_unpack_limits(void **state)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	struct fh_rangeset o;
	uint64_t *v;
	size_t i;

	v = calloc(FH_BATCH_MAX_RANGES + 1, sizeof *v);
	assert_non_null(v);
	for (i = 0; i <= FH_BATCH_MAX_RANGES; i++)
		v[i] = 1;
	fh_rs_init(&o);
	b.kind = FREEHINT__RANGE_KIND__HINT;
	b.gaps = b.lengths = v;
	b.n_gaps = b.n_lengths = FH_BATCH_MAX_RANGES + 1;
	assert_int_equal(fh_batch_unpack(&b, &o, SIZE_MAX), FH_ELIMIT);
	b.n_gaps = b.n_lengths = FH_BATCH_MAX_RANGES;
	assert_int_equal(fh_batch_unpack(&b, &o, SIZE_MAX), FH_OK);
	assert_int_equal(o.n, FH_BATCH_MAX_RANGES);
	assert_true(fh_rs_is_normal(&o));
	assert_int_equal(fh_batch_unpack(&b, &o, 100), FH_ELIMIT);
	assert_int_equal(o.n, 0);
	b.n_lengths = 3;
	assert_int_equal(fh_batch_unpack(&b, &o, SIZE_MAX), FH_EFIELD);
	fh_rs_free(&o);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_units),
		cmocka_unit_test(test_roundtrip_random),
		cmocka_unit_test(test_worked_example),
		cmocka_unit_test(test_pack_errors),
		cmocka_unit_test(test_unpack_errors),
		cmocka_unit_test(test_unpack_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

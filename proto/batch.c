/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Range batches on the wire. A normalized range set becomes two packed
 * varint arrays: the gap before each range and its length, both in units
 * of 1 << unit_order pages (docs/protocol.md). Decoding rebuilds the set
 * and refuses anything that wraps, passes FH_PFN_LIMIT or is not strictly
 * increasing.
 */
#include <string.h>

#include "common.h"
#include "proto.h"

static int batch_unpack(
    const Freehint__RangeBatch *, struct fh_rangeset *, size_t);

/* The largest unit the encoder may pick; the decoder accepts up to 40. */
#define UNIT_ORDER_MAX 30

/* Upper bound of the encoded size of a batch of nranges ranges. */
size_t
fh_batch_max_encoded(size_t nranges)
{
	/* Two 10-byte varints a range, plus tags, lengths and fixed fields. */
	return nranges * 20 + 64;
}

/*
 * Fill a RangeBatch's ranges from a normalized set. scratch holds 2 * n
 * values and must live as long as the batch is used.
 */
int
fh_batch_pack(
    Freehint__RangeBatch *b, const struct fh_rangeset *rs, uint64_t *scratch)
{
	uint64_t bits = 0, prev_end = 0;
	unsigned unit = 0;
	size_t i;

	if (rs->n > FH_BATCH_MAX_RANGES)
		return FH_ELIMIT;
	if (!fh_rs_is_normal(rs))
		return FH_EORDER;
	for (i = 0; i < rs->n; i++) {
		if (rs->r[i].start + rs->r[i].npages > FH_PFN_LIMIT)
			return FH_EOVERFLOW;
		bits |= rs->r[i].start | rs->r[i].npages;
	}
	if (bits != 0)
		unit = (unsigned)__builtin_ctzll(bits);
	if (unit > UNIT_ORDER_MAX)
		unit = UNIT_ORDER_MAX;

	b->gaps = scratch;
	b->lengths = scratch + rs->n;
	b->n_gaps = b->n_lengths = rs->n;
	for (i = 0; i < rs->n; i++) {
		b->gaps[i] = (rs->r[i].start - prev_end) >> unit;
		b->lengths[i] = rs->r[i].npages >> unit;
		prev_end = rs->r[i].start + rs->r[i].npages;
	}
	b->has_unit_order = unit != 0;
	b->unit_order = unit;
	return FH_OK;
}

/*
 * Decode a batch's ranges into out (cleared first). Fails on more than
 * max_ranges ranges, on zero lengths, on adjacent ranges (gap 0 after the
 * first: the encoder always coalesces) and on any pfn at or past
 * FH_PFN_LIMIT. On failure out is left empty, never half-filled, so that a
 * caller cannot act on part of a refused batch.
 */
int
fh_batch_unpack(
    const Freehint__RangeBatch *b, struct fh_rangeset *out, size_t max_ranges)
{
	int err;

	if ((err = batch_unpack(b, out, max_ranges)) != FH_OK)
		fh_rs_clear(out);
	return err;
}

static int
batch_unpack(
    const Freehint__RangeBatch *b, struct fh_rangeset *out, size_t max_ranges)
{
	uint64_t pos = 0, gap, len, limit;
	unsigned unit;
	size_t i;

	fh_rs_clear(out);
	if (b->n_gaps != b->n_lengths)
		return FH_EFIELD;
	if (b->n_gaps > max_ranges || b->n_gaps > FH_BATCH_MAX_RANGES)
		return FH_ELIMIT;
	unit = b->has_unit_order ? b->unit_order : 0;
	if (unit > 40)
		return FH_EFIELD;
	limit = FH_PFN_LIMIT >> unit;

	/* Work in units so that nothing can overflow before the check. */
	for (i = 0; i < b->n_gaps; i++) {
		gap = b->gaps[i];
		len = b->lengths[i];
		if (len == 0)
			return FH_EFIELD;
		if (i > 0 && gap == 0)
			return FH_EORDER;
		if (gap > limit - pos || len > limit - pos - gap)
			return FH_EOVERFLOW;
		pos += gap;
		if (fh_rs_add(out, pos << unit, len << unit) != 0)
			return FH_ENOMEM;
		pos += len;
	}
	return FH_OK;
}

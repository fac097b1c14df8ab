/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Sets of page ranges. A set is "normal" when its ranges are sorted,
 * non-empty, and neither overlap nor touch; most operations want normal
 * input and give normal output. All arithmetic is checked: a range whose
 * end would wrap is refused when it is added.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"

static int range_cmp(const void *, const void *);

void
fh_rs_init(struct fh_rangeset *rs)
{
	memset(rs, 0, sizeof *rs);
}

void
fh_rs_free(struct fh_rangeset *rs)
{
	free(rs->r);
	memset(rs, 0, sizeof *rs);
}

void
fh_rs_clear(struct fh_rangeset *rs)
{
	rs->n = 0;
}

/*
 * Append a range. Fails (-1) on an empty or wrapping range, or when memory
 * runs out: ranges come from peers, so this never aborts.
 */
int
fh_rs_add(struct fh_rangeset *rs, uint64_t start, uint64_t npages)
{
	struct fh_range *nr;
	size_t ncap;

	if (npages == 0 || start + npages < start)
		return -1;
	if (rs->n == rs->cap) {
		ncap = rs->cap ? rs->cap * 2 : 16;
		nr = reallocarray(rs->r, ncap, sizeof *nr);
		if (nr == NULL)
			return -1;
		rs->r = nr;
		rs->cap = ncap;
	}
	rs->r[rs->n].start = start;
	rs->r[rs->n].npages = npages;
	rs->n++;
	return 0;
}

static int
range_cmp(const void *a, const void *b)
{
	const struct fh_range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->npages != y->npages)
		return x->npages < y->npages ? -1 : 1;
	return 0;
}

/* Sort and merge overlapping and adjacent ranges. */
void
fh_rs_normalize(struct fh_rangeset *rs)
{
	size_t i, o = 0;
	uint64_t end, nend;

	if (rs->n < 2)
		return;
	qsort(rs->r, rs->n, sizeof *rs->r, range_cmp);
	for (i = 1; i < rs->n; i++) {
		end = rs->r[o].start + rs->r[o].npages;
		if (rs->r[i].start <= end) {
			nend = rs->r[i].start + rs->r[i].npages;
			if (nend > end)
				rs->r[o].npages = nend - rs->r[o].start;
		} else
			rs->r[++o] = rs->r[i];
	}
	rs->n = o + 1;
}

/*
 * rs = rs ∪ add, for normal rs and add: rs moves up by add->n, then one
 * merge from the front back into place, so that a set that grows by a
 * batch at a time is never sorted again. -1 (rs unchanged) when memory
 * runs out.
 */
int
fh_rs_merge(struct fh_rangeset *rs, const struct fh_rangeset *add)
{
	struct fh_range *nr, r;
	size_t i, j = 0, o = 0, k = add->n, total, ncap;
	uint64_t end;

	if (k == 0)
		return 0;
	if (__builtin_add_overflow(rs->n, k, &total))
		return -1;
	if (total > rs->cap) {
		ncap = rs->cap ? rs->cap : 16;
		while (ncap < total)
			if (__builtin_mul_overflow(ncap, 2, &ncap))
				return -1;
		if ((nr = reallocarray(rs->r, ncap, sizeof *nr)) == NULL)
			return -1;
		rs->r = nr;
		rs->cap = ncap;
	}
	memmove(rs->r + k, rs->r, rs->n * sizeof *rs->r);
	/* Written at o, never above what is still to be read (at i). */
	i = k;
	while (i < total || j < k) {
		if (j == k || (i < total && rs->r[i].start <= add->r[j].start))
			r = rs->r[i++];
		else
			r = add->r[j++];
		end = o > 0 ? rs->r[o - 1].start + rs->r[o - 1].npages : 0;
		if (o > 0 && r.start <= end) {
			if (r.start + r.npages > end)
				rs->r[o - 1].npages =
				    r.start + r.npages - rs->r[o - 1].start;
		} else
			rs->r[o++] = r;
	}
	rs->n = o;
	return 0;
}

bool
fh_rs_is_normal(const struct fh_rangeset *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++) {
		if (rs->r[i].npages == 0 ||
		    rs->r[i].start + rs->r[i].npages < rs->r[i].start)
			return false;
		if (i > 0 &&
		    rs->r[i].start <= rs->r[i - 1].start + rs->r[i - 1].npages)
			return false;
	}
	return true;
}

uint64_t
fh_rs_pages(const struct fh_rangeset *rs)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < rs->n; i++)
		total += rs->r[i].npages;
	return total;
}

/* Is [start, start + npages) wholly inside one range of a normal set? */
bool
fh_rs_covers(const struct fh_rangeset *rs, uint64_t start, uint64_t npages)
{
	size_t lo = 0, hi = rs->n, mid;
	uint64_t end = start + npages;

	if (npages == 0 || end < start)
		return false;
	/* Find the last range starting at or before start. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (rs->r[mid].start <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return false;
	return end <= rs->r[lo - 1].start + rs->r[lo - 1].npages;
}

/* Do two normal sets share a page? */
bool
fh_rs_overlaps(const struct fh_rangeset *a, const struct fh_rangeset *b)
{
	size_t i = 0, j = 0;

	while (i < a->n && j < b->n) {
		if (a->r[i].start + a->r[i].npages <= b->r[j].start)
			i++;
		else if (b->r[j].start + b->r[j].npages <= a->r[i].start)
			j++;
		else
			return true;
	}
	return false;
}

/* out = a ∩ b, for normal a and b. */
int
fh_rs_intersect(const struct fh_rangeset *a, const struct fh_rangeset *b,
    struct fh_rangeset *out)
{
	size_t i = 0, j = 0;
	uint64_t s, e, ae, be;

	fh_rs_clear(out);
	while (i < a->n && j < b->n) {
		ae = a->r[i].start + a->r[i].npages;
		be = b->r[j].start + b->r[j].npages;
		s = a->r[i].start > b->r[j].start ? a->r[i].start
		                                  : b->r[j].start;
		e = ae < be ? ae : be;
		if (s < e && fh_rs_add(out, s, e - s) != 0)
			return -1;
		if (ae < be)
			i++;
		else
			j++;
	}
	return 0;
}

/* out = a \ b, for normal a and b. */
int
fh_rs_subtract(const struct fh_rangeset *a, const struct fh_rangeset *b,
    struct fh_rangeset *out)
{
	size_t i, j = 0;
	uint64_t s, e, bs, be;

	fh_rs_clear(out);
	for (i = 0; i < a->n; i++) {
		s = a->r[i].start;
		e = s + a->r[i].npages;
		/* Skip b ranges wholly before this one. */
		while (j < b->n && b->r[j].start + b->r[j].npages <= s)
			j++;
		while (s < e && j < b->n && b->r[j].start < e) {
			bs = b->r[j].start;
			be = bs + b->r[j].npages;
			if (bs > s && fh_rs_add(out, s, bs - s) != 0)
				return -1;
			if (be >= e) {
				s = e;
				break;
			}
			s = be > s ? be : s;
			j++;
		}
		if (s < e && fh_rs_add(out, s, e - s) != 0)
			return -1;
	}
	return 0;
}

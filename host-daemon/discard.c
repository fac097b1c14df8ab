/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one place a hole is punched in a guest's memory. Callers have
 * validated the range (validate.c); this file only maps it to the backing
 * file and frees whole host pages of it: what does not cover a whole host
 * page (2 MiB on hugetlbfs) is left alone and counted as skipped.
 *
 * The guest keeps the pages isolated only until the batch's deadline: a
 * range is punched in pieces of at most DISCARD_CHUNK, and no piece
 * begins within FREEHINTD_LEASE_MARGIN_MS of the deadline. The margin
 * covers one piece, however slow the backing.
 *
 * discard_resolve runs on the event loop (it reads the map);
 * discard_piece on a punch worker (punch.c), on the fd it is given.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "freehintd.h"

#define DISCARD_CHUNK (32ULL << 20)

/* Test-only: sleep this long before each piece, as a slow backing. */
static void
discard_test_delay(void)
{
	const char *v = getenv("FREEHINTD_TEST_DISCARD_DELAY_MS");
	struct timespec ts;
	long ms;

	if (v == NULL || (ms = strtol(v, NULL, 10)) <= 0 || ms > 60000)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
}

/*
 * The whole host pages inside [off, off + len): true with *toff, *tlen
 * set, false when there is none.
 */
bool
discard_trim(
    uint64_t off, uint64_t len, uint64_t pagesz, uint64_t *toff, uint64_t *tlen)
{
	uint64_t start, end;

	if (pagesz == 0 || (pagesz & (pagesz - 1)) != 0 || len == 0 ||
	    off + len < off || off > UINT64_MAX - (pagesz - 1))
		return false;
	start = (off + pagesz - 1) & ~(pagesz - 1);
	end = (off + len) & ~(pagesz - 1);
	if (end <= start)
		return false;
	*toff = start;
	*tlen = end - start;
	return true;
}

/*
 * Map [gpa, gpa + len) to its backing: *s gets the whole host pages of it
 * (s->len 0 when there are none); what is left out is added to
 * res->skipped. 0, or -1 when the range has no backing.
 */
int
discard_resolve(const struct memmap *m, uint64_t gpa, uint64_t len,
    struct discard_span *s, struct discard_result *res, char *err,
    size_t errlen)
{
	const struct memregion *r;
	uint64_t toff, tlen;

	if ((r = memmap_find(m, gpa, len)) == NULL || r->fd == -1) {
		/* validate.c let it through: a broken invariant. */
		snprintf(err, errlen,
		    "0x%" PRIx64 "+0x%" PRIx64 " has no backing", gpa, len);
		return -1;
	}
	s->fd = r->fd;
	s->off = s->len = 0;
	if (!discard_trim(
	        r->file_off + (gpa - r->gpa), len, r->pagesz, &toff, &tlen)) {
		res->skipped += len;
		return 0;
	}
	res->skipped += len - tlen;
	s->off = toff;
	s->len = tlen;
	return 0;
}

/*
 * Punch the next piece of *s (at most DISCARD_CHUNK) unless it would
 * begin within the margin of deadline_ms (host CLOCK_MONOTONIC); adds
 * what was punched to *res. 0: s->len is what is left; -1: failed;
 * DISCARD_TOO_LATE: nothing more may be punched.
 */
int
discard_piece(struct discard_span *s, uint64_t deadline_ms,
    struct discard_result *res, char *err, size_t errlen)
{
	uint64_t piece, now;

	if (s->len == 0)
		return 0;
	discard_test_delay();
	if (fh_monotonic_ms() + FREEHINTD_LEASE_MARGIN_MS >= deadline_ms) {
		snprintf(err, errlen, "too late to discard");
		return DISCARD_TOO_LATE;
	}
	piece = s->len < DISCARD_CHUNK ? s->len : DISCARD_CHUNK;
	if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	        (off_t)s->off, (off_t)piece) != 0) {
		snprintf(err, errlen, "fallocate: %s", strerror(errno));
		return -1;
	}
	res->bytes += piece;
	s->off += piece;
	s->len -= piece;
	/*
	 * The check and the punch cannot be one step: a daemon stalled
	 * between them, or a piece slower than the margin, punched past
	 * the deadline. Never expected: the caller says so loudly (this
	 * may run on a worker thread, which does not log).
	 */
	if ((now = fh_monotonic_ms()) >= deadline_ms &&
	    now - deadline_ms > res->late_ms)
		res->late_ms = now - deadline_ms;
	return 0;
}

/* Punch a whole range on this thread; as discard_piece for each piece. */
int
discard_range(const struct memmap *m, uint64_t gpa, uint64_t len,
    uint64_t deadline_ms, struct discard_result *res, char *err, size_t errlen)
{
	struct discard_span s;
	int rc;

	if (discard_resolve(m, gpa, len, &s, res, err, errlen) != 0)
		return -1;
	while (s.len > 0)
		if ((rc = discard_piece(&s, deadline_ms, res, err, errlen)) !=
		    0)
			return rc;
	return 0;
}

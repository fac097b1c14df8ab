/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one place a hole is punched in a guest's memory. Callers have
 * validated the range (validate.c); this file only maps it to the backing
 * file and frees whole host pages of it: what does not cover a whole host
 * page (2 MiB on hugetlbfs) is left alone and counted as skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "freehintd.h"

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

/* Punch [gpa, gpa + len) out of the backing; adds to *res. */
int
discard_range(const struct memmap *m, uint64_t gpa, uint64_t len,
    struct discard_result *res, char *err, size_t errlen)
{
	const struct memregion *r;
	uint64_t off, toff, tlen;

	if ((r = memmap_find(m, gpa, len)) == NULL || r->fd == -1) {
		/* validate.c let it through: a broken invariant. */
		snprintf(err, errlen,
		    "0x%" PRIx64 "+0x%" PRIx64 " has no backing", gpa, len);
		return -1;
	}
	off = r->file_off + (gpa - r->gpa);
	if (!discard_trim(off, len, r->pagesz, &toff, &tlen)) {
		res->skipped += len;
		return 0;
	}
	if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	        (off_t)toff, (off_t)tlen) != 0) {
		snprintf(err, errlen, "fallocate: %s", strerror(errno));
		return -1;
	}
	res->bytes += tlen;
	res->skipped += len - tlen;
	return 0;
}

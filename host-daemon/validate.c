/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one place a batch of ranges from a guest is judged. The guest may be
 * hostile: every range must decode, lie inside the VM's RAM map (from QEMU,
 * never from the guest), be whole blocks of the order we asked for, and not
 * overlap anything held for the current pass; batches and bytes are
 * limited per batch and per second, so that one VM cannot keep the daemon
 * from serving the others. The per-second budget belongs to the VM (a new
 * Hello or connection does not refill it) and each reported range costs
 * FREEHINTD_RANGE_COST on top of its bytes. A held range costs
 * FREEHINTD_HELD_RANGE_COST: the pass bounds those too (each page once a
 * pass, nothing after its last batch, and only the host starts one), and
 * a pass of small blocks charged as much per range would be held to 16
 * ranges a millisecond, slower than the migration it is for. The answer
 * is a RejectReason.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "freehintd.h"

static int check_rate(struct budget *, const struct policy *,
    const struct timespec *, uint64_t, char *, size_t);

void
vstate_init(struct vstate *v)
{
	memset(v, 0, sizeof *v);
	fh_rs_init(&v->held);
}

void
vstate_free(struct vstate *v)
{
	fh_rs_free(&v->held);
}

const char *
validate_reason_name(int reason)
{
	const ProtobufCEnumValue *ev;

	ev = protobuf_c_enum_descriptor_get_value(
	    &freehint__reject_reason__descriptor, reason);
	return ev != NULL ? ev->name : "UNKNOWN";
}

static int
check_rate(struct budget *v, const struct policy *pol,
    const struct timespec *now, uint64_t bytes, char *err, size_t errlen)
{
	if (now->tv_sec != v->window.tv_sec) {
		v->window = *now;
		v->window_batches = 0;
		v->window_bytes = 0;
	}
	v->window_batches++;
	if (v->window_batches > pol->max_batches_sec) {
		snprintf(err, errlen, "more than %u batches a second",
		    pol->max_batches_sec);
		return FREEHINT__REJECT_REASON__RATE_LIMITED;
	}
	if (bytes > pol->max_bytes_sec - v->window_bytes ||
	    v->window_bytes > pol->max_bytes_sec) {
		snprintf(err, errlen, "more than %" PRIu64 " bytes a second",
		    pol->max_bytes_sec);
		return FREEHINT__REJECT_REASON__RATE_LIMITED;
	}
	v->window_bytes += bytes;
	return 0;
}

/*
 * Check batch b of a guest with pages of page_size bytes, whose reported
 * and held blocks are multiples of align_pages (a power of two). On success
 * returns 0 with the ranges in out (pages); otherwise a RejectReason with
 * the detail in err, and nothing may be touched.
 */
int
validate_batch(struct vstate *v, struct budget *bud, const struct policy *pol,
    const struct memmap *m, uint32_t page_size, uint64_t align_pages,
    const Freehint__RangeBatch *b, const struct timespec *now,
    struct fh_rangeset *out, char *err, size_t errlen)
{
	uint64_t gpa, len, bytes = 0;
	size_t i;
	int rc;

	err[0] = '\0';
	if (b->kind != FREEHINT__RANGE_KIND__HINT &&
	    b->kind != FREEHINT__RANGE_KIND__REPORTED &&
	    b->kind != FREEHINT__RANGE_KIND__HELD) {
		snprintf(err, errlen, "kind %d", (int)b->kind);
		return FREEHINT__REJECT_REASON__BAD_KIND;
	}
	if (v->have_batch_id && b->batch_id <= v->last_batch_id) {
		snprintf(err, errlen, "batch id %" PRIu64 " not above %" PRIu64,
		    b->batch_id, v->last_batch_id);
		return FREEHINT__REJECT_REASON__DUPLICATE_ID;
	}
	v->have_batch_id = true;
	v->last_batch_id = b->batch_id;
	if (b->n_gaps > pol->max_batch_ranges) {
		snprintf(err, errlen, "%zu ranges, at most %u", b->n_gaps,
		    pol->max_batch_ranges);
		return FREEHINT__REJECT_REASON__TOO_LARGE;
	}
	switch (fh_batch_unpack(b, out, pol->max_batch_ranges)) {
	case FH_OK:
		break;
	case FH_EORDER:
		snprintf(err, errlen, "%s", fh_strerror(FH_EORDER));
		return FREEHINT__REJECT_REASON__OVERLAPPING;
	case FH_EOVERFLOW:
		snprintf(err, errlen, "%s", fh_strerror(FH_EOVERFLOW));
		return FREEHINT__REJECT_REASON__OUT_OF_RANGE;
	case FH_ELIMIT:
		snprintf(err, errlen, "too many ranges");
		return FREEHINT__REJECT_REASON__TOO_LARGE;
	default:
		snprintf(err, errlen, "ranges do not decode");
		return FREEHINT__REJECT_REASON__MALFORMED;
	}
	/* An empty last HELD batch ends a pass that had nothing more. */
	if (out->n == 0 &&
	    !(b->kind == FREEHINT__RANGE_KIND__HELD && b->has_last &&
	        b->last)) {
		snprintf(err, errlen, "empty batch");
		return FREEHINT__REJECT_REASON__MALFORMED;
	}
	for (i = 0; i < out->n; i++) {
		/* Below FH_PFN_LIMIT (checked by unpack), but a guest may
		 * claim 64 KiB pages: 2^52 of those do not fit in 64 bits. */
		if (__builtin_mul_overflow(out->r[i].start, page_size, &gpa) ||
		    __builtin_mul_overflow(out->r[i].npages, page_size, &len) ||
		    gpa + len < gpa) {
			snprintf(err, errlen, "%s", fh_strerror(FH_EOVERFLOW));
			return FREEHINT__REJECT_REASON__OUT_OF_RANGE;
		}
		if (memmap_find(m, gpa, len) == NULL) {
			snprintf(err, errlen,
			    "0x%" PRIx64 "+0x%" PRIx64 " outside guest RAM",
			    gpa, len);
			return FREEHINT__REJECT_REASON__OUT_OF_RANGE;
		}
		/* Reported and held blocks are whole buddy blocks of at
		 * least the order we asked for: anything else is not. */
		if (b->kind != FREEHINT__RANGE_KIND__HINT &&
		    ((out->r[i].start | out->r[i].npages) &
		        (align_pages - 1)) != 0) {
			snprintf(err, errlen,
			    "0x%" PRIx64 "+0x%" PRIx64
			    " not aligned to %" PRIu64 " pages",
			    gpa, len, align_pages);
			return FREEHINT__REJECT_REASON__UNALIGNED;
		}
		bytes += len;
	}
	if (bytes > pol->max_batch_bytes) {
		snprintf(err, errlen, "%" PRIu64 " bytes, at most %" PRIu64,
		    bytes, pol->max_batch_bytes);
		return FREEHINT__REJECT_REASON__TOO_LARGE;
	}
	if (b->kind == FREEHINT__RANGE_KIND__HELD &&
	    fh_rs_overlaps(&v->held, out)) {
		snprintf(err, errlen, "ranges already held in this pass");
		return FREEHINT__REJECT_REASON__OVERLAPPING;
	}
	/* Snapshots are only counted: no fallocate per range to pay for. */
	if (b->kind == FREEHINT__RANGE_KIND__REPORTED)
		bytes += out->n * FREEHINTD_RANGE_COST;
	else if (b->kind == FREEHINT__RANGE_KIND__HELD)
		bytes += out->n * FREEHINTD_HELD_RANGE_COST;
	if ((rc = check_rate(bud, pol, now, bytes, err, errlen)) != 0)
		return rc;
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The headroom: how much free memory the guest keeps unreported, so that
 * a churning workload finds what it allocates without a host fault, and
 * how a report batch is cut down to what leaves it (headroom_trim).
 *
 * The kernel allocates from the head of its free lists and puts reported
 * blocks at their tail, so a workload that frees and allocates again
 * reuses unreported memory first; it pays a host fault only once the
 * unreported free memory runs out. That memory has to cover the largest
 * amount the guest allocates and frees again in a short time: the depth
 * of the dips in free memory that recover within a second (a fill that
 * only goes down, or a free that only goes up, is no dip). The sampler
 * (allocrate.c) feeds free memory every 100 ms; each second's deepest dip
 * goes into a ring of HEADROOM_SECONDS, and the headroom is the
 * HEADROOM_SKIP+1-th deepest of them: a workload that keeps churning
 * fills the ring, a one-off burst (a fill freed at once) is skipped.
 *
 * How much free memory is unreported is estimated: reported pages are
 * what the host acknowledged, less whatever the guest allocated since
 * (never more than the free memory). The estimate errs on the high side
 * (a reported block that merges with a freed neighbour becomes unreported
 * in the kernel, not here), which keeps more unreported, never less.
 */
#include <string.h>

#include "agent.h"

/* The deepest recovered dip in free[0..n): max over j of min(before, after). */
uint64_t
headroom_dip(const uint64_t *free, size_t n)
{
	uint64_t before = 0, best = 0, after, d;
	size_t i, j;

	for (j = 0; j < n; j++) {
		if (free[j] > before)
			before = free[j];
		after = 0;
		for (i = j + 1; i < n; i++)
			if (free[i] > after)
				after = free[i];
		if (after <= free[j])
			continue;
		d = (before < after ? before : after) - free[j];
		if (d > best)
			best = d;
	}
	return best;
}

void
headroom_init(struct headroom *h)
{
	memset(h, 0, sizeof *h);
}

/*
 * A sample of free memory (pages), every HEADROOM_SAMPLE_MS. Each second's
 * window starts with the last sample of the one before, so that a dip
 * across the boundary is seen.
 */
void
headroom_sample(struct headroom *h, uint64_t free_pages)
{
	if (h->reported > free_pages)
		h->reported = free_pages;
	h->free_now = free_pages;
	if (h->nwin == HEADROOM_WINDOW) {
		h->dip[h->next] = headroom_dip(h->win, h->nwin);
		h->next = (h->next + 1) % HEADROOM_SECONDS;
		h->win[0] = h->win[h->nwin - 1];
		h->nwin = 1;
	}
	h->win[h->nwin++] = free_pages;
}

/* The headroom in pages: the HEADROOM_SKIP+1-th deepest dip of the ring. */
uint64_t
headroom_pages(const struct headroom *h)
{
	uint64_t top[HEADROOM_SKIP + 1] = { 0 }, v;
	size_t i, k;

	for (i = 0; i < HEADROOM_SECONDS; i++) {
		v = h->dip[i];
		for (k = 0; k <= HEADROOM_SKIP; k++) {
			if (v > top[k]) {
				uint64_t t = top[k];

				top[k] = v;
				v = t;
			}
		}
	}
	return top[HEADROOM_SKIP];
}

/* The host discarded these pages: they are reported now. */
void
headroom_reported(struct headroom *h, uint64_t pages)
{
	/* Clipped at the next sample: free memory does not count the batch
	 * until the module has it back. */
	h->reported += pages;
}

/* Unreported free pages beyond keep, with free_pages free now. */
uint64_t
headroom_spare(struct headroom *h, uint64_t free_pages, uint64_t keep)
{
	uint64_t unreported;

	if (h->reported > free_pages)
		h->reported = free_pages;
	unreported = free_pages - h->reported;
	return unreported > keep ? unreported - keep : 0;
}

/*
 * Pages of a batch of batch_pages that may be reported with free_pages
 * free now (the batch, isolated, is not counted there): what leaves keep
 * pages of free memory unreported afterwards. What is not reported of the
 * batch goes back to the free lists and counts as unreported. keep is
 * headroom_pages() or a fixed size.
 */
uint64_t
headroom_budget(struct headroom *h, uint64_t free_pages, uint64_t batch_pages,
    uint64_t keep)
{
	uint64_t spare;

	h->free_now = free_pages;
	/*
	 * The kernel isolates only unreported blocks: the batch is
	 * unreported, whatever the estimate (clipped to a free memory that
	 * still held the batch) says. Clip it to what is left first.
	 */
	if (h->reported > free_pages)
		h->reported = free_pages;
	spare = headroom_spare(h, free_pages + batch_pages, keep);
	return spare < batch_pages ? spare : batch_pages;
}

/*
 * Keep at most the first pages of a normal range set, drop the rest. A
 * range is cut only at a multiple of its own alignment (the smallest of
 * the buddy blocks it is made of), so what goes stays aligned as the host
 * checks it (validate.c).
 */
void
headroom_trim(struct fh_rangeset *rs, uint64_t pages)
{
	uint64_t unit;
	size_t i;

	for (i = 0; i < rs->n; i++) {
		if (rs->r[i].npages <= pages) {
			pages -= rs->r[i].npages;
			continue;
		}
		unit = 1ULL
		    << __builtin_ctzll(rs->r[i].start | rs->r[i].npages);
		rs->r[i].npages = pages & ~(unit - 1);
		if (rs->r[i].npages != 0)
			i++;
		break;
	}
	rs->n = i;
}

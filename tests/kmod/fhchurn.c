// SPDX-License-Identifier: GPL-2.0
/*
 * fhchurn: a busy guest's workload that notices lost memory.
 *   fhchurn MB SECONDS   for SECONDS, go round an MB MiB buffer in 2 MiB
 *                        pieces (huge pages where the guest allows them
 *                        with madvise): check the stamp the last round wrote in
 *                        every page of the piece, give the piece back to
 *                        the kernel (MADV_DONTNEED, as malloc does when it
 *                        trims), allocate it again (MADV_POPULATE_WRITE)
 *                        and write new stamps; print "fhchurn: N rounds of MB MiB, B bad
 *                        pages".
 * The guest allocates and frees MB MiB a round, at the speed of its CPU,
 * while its footprint stays MB MiB: freed pages are reused at once, as
 * a busy program's are. A host discard that hit memory in use (a page
 * that reads back as zeroes) is seen by the next round's check. Exit 0
 * when no page lost its stamp.
 */
#include "fhtest.h"

#define PIECE_PAGES 512
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static uint64_t
stamp(uint64_t round, size_t page)
{
	return (0x9e3779b97f4a7c15ULL * (round + 1)) ^ page;
}

/* Pages of buf[first, first + n) whose stamp of round is not there. */
static size_t
check(uint64_t *buf, size_t first, size_t n, uint64_t round)
{
	size_t i, bad = 0;
	uint64_t *w;

	for (i = first; i < first + n; i++) {
		w = buf + i * 512;
		bad += w[0] != stamp(round, i) || w[511] != ~w[0] ||
		    w[256] != (w[0] ^ round);
	}
	return bad;
}

static void
fill(uint64_t *buf, size_t first, size_t n, uint64_t round)
{
	uint64_t *w;
	size_t i;

	for (i = first; i < first + n; i++) {
		w = buf + i * 512;
		w[0] = stamp(round, i);
		w[256] = w[0] ^ round;
		w[511] = ~w[0];
	}
}

int
main(int argc, char **argv)
{
	size_t mb, pages, p, n, bad = 0;
	uint64_t *buf, round = 0;
	double end;

	if (argc != 3)
		return fprintf(stderr, "usage: fhchurn MB SECONDS\n"), 2;
	mb = strtoul(argv[1], NULL, 0);
	pages = mb << 8;
	p = (size_t)mmap(NULL, (mb + 2) << 20, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((void *)p == MAP_FAILED)
		die("mmap");
	/* Pieces of a huge page each, where the guest has them. */
	buf = (uint64_t *)((p + (2 << 20) - 1) & ~(size_t)((2 << 20) - 1));
	madvise(buf, mb << 20, MADV_HUGEPAGE);
	fill(buf, 0, pages, round);
	end = now_s() + atof(argv[2]);
	while (now_s() < end) {
		round++;
		for (p = 0; p < pages; p += n) {
			n = pages - p < PIECE_PAGES ? pages - p : PIECE_PAGES;
			bad += check(buf, p, n, round - 1);
			if (madvise(buf + p * 512, n << 12, MADV_DONTNEED))
				die("madvise");
			/* One call instead of a fault per page: a busier guest. */
			madvise(buf + p * 512, n << 12, MADV_POPULATE_WRITE);
			fill(buf, p, n, round);
		}
	}
	bad += check(buf, 0, pages, round);
	say("fhchurn: %" PRIu64 " rounds of %zu MiB, %zu bad pages\n", round,
	    mb, bad);
	return bad ? 1 : 0;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Workload (b): fragmented free memory. Fills FILL MiB with non-zero data,
 * then frees every other PIECE KiB of it and keeps the rest, so that the freed memory lies in blocks far below 4 MiB that the
 * buddy allocator cannot merge. Stays alive (holding its half) until
 * killed; prints "frag: ready" once the pieces are freed.
 *
 *   frag FILL_MIB [PIECE_KIB]   (default piece: 64)
 *
 * The fill is given, not taken from MemFree: while page reporting runs,
 * isolated blocks are missing from MemFree, and the fill must not depend
 * on that.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wl.h"

int
main(int argc, char **argv)
{
	long fill_mib = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	long piece_kib = argc > 2 ? strtol(argv[2], NULL, 10) : 64;
	size_t len, piece, off, freed = 0;
	unsigned char *p;

	if (piece_kib < 4 || piece_kib % 4 != 0 || fill_mib <= 0) {
		fprintf(stderr, "usage: frag FILL_MIB [PIECE_KIB]\n");
		return 1;
	}
	piece = (size_t)piece_kib * 1024;
	len = (size_t)fill_mib * WL_MIB;
	len -= len % (2 * piece);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED) {
		perror("frag: mmap");
		return 1;
	}
	/* Huge pages would make the holes 2 MiB apart from each other. */
	if (madvise(p, len, MADV_NOHUGEPAGE) == -1)
		perror("frag: madvise NOHUGEPAGE");
	wl_dirty(p, len, 2);
	for (off = 0; off < len; off += 2 * piece) {
		if (madvise(p + off, piece, MADV_DONTNEED) == -1) {
			perror("frag: madvise DONTNEED");
			return 1;
		}
		freed += piece;
	}
	printf("frag: filled %zu MiB, freed %zu MiB in %ld KiB pieces\n",
	    len / WL_MIB, freed / WL_MIB, piece_kib);
	printf("frag: ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Guest side of tests/checks.d/56-hostd-migration-pass.sh: fragmented
 * free memory whose kept half is checked after a migration. Fills FILL
 * MiB with a pattern that is never zero, frees every other PIECE KiB (the
 * buddy allocator cannot merge the holes into large blocks), then checks
 * the kept half against the checksum taken at the fill every 2 s:
 * "FRAG verify ok N" or "FRAG verify BAD N" on stdout. One second after
 * the free, "FRAG free_kib=N": MemFree, from which the host counts the
 * pages the guest uses.
 *
 *   fh-fragsum FILL_MIB PIECE_KIB
 */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static uint64_t
word(size_t i)
{
	return (i * 0x9e3779b97f4a7c15ULL) | 1;
}

/* The kept pieces: each word its pattern, and their sum. */
static uint64_t
kept_sum(const uint64_t *p, size_t len, size_t piece, int *bad)
{
	uint64_t sum = 0;
	size_t off, i;

	for (off = piece; off < len; off += 2 * piece)
		for (i = off / 8; i < (off + piece) / 8; i++) {
			if (p[i] != word(i))
				*bad = 1;
			sum += p[i] * (i | 1);
		}
	return sum;
}

int
main(int argc, char **argv)
{
	long fill = argc > 2 ? strtol(argv[1], NULL, 10) : 0;
	long piece_kib = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
	size_t len, piece, off, i;
	uint64_t *p, want;
	unsigned long n;
	char line[128];
	int bad = 0;
	FILE *f;

	if (fill <= 0 || piece_kib < 4 || piece_kib % 4 != 0) {
		fprintf(stderr, "usage: fh-fragsum FILL_MIB PIECE_KIB\n");
		return 2;
	}
	piece = (size_t)piece_kib << 10;
	len = (size_t)fill << 20;
	len -= len % (2 * piece);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED) {
		perror("fh-fragsum: mmap");
		return 1;
	}
	/* Huge pages would put the holes 2 MiB apart. */
	madvise(p, len, MADV_NOHUGEPAGE);
	for (i = 0; i < len / 8; i++)
		p[i] = word(i);
	want = kept_sum(p, len, piece, &bad);
	for (off = 0; off < len; off += 2 * piece)
		if (madvise((char *)p + off, piece, MADV_DONTNEED) == -1) {
			perror("fh-fragsum: madvise");
			return 1;
		}
	printf("FRAG ready %zu MiB kept in %ld KiB pieces\n", len >> 21,
	    piece_kib);
	fflush(stdout);
	sleep(1);
	if ((f = fopen("/proc/meminfo", "r")) != NULL) {
		while (fgets(line, sizeof line, f) != NULL)
			if (sscanf(line, "MemFree: %lu", &n) == 1)
				printf("FRAG free_kib=%lu\n", n);
		fclose(f);
	}
	fflush(stdout);
	for (n = 1;; n++) {
		sleep(2);
		if (kept_sum(p, len, piece, &bad) != want)
			bad = 1;
		printf("FRAG verify %s %lu\n", bad ? "BAD" : "ok", n);
		fflush(stdout);
	}
}

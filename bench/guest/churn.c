/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Overhead workload: allocate SIZE MiB, write every page, free it, in a
 * loop for SECONDS; prints the throughput in MiB/s. Freed memory goes back
 * to the buddy allocator each round, so page reporting (and freehint) keep
 * finding free blocks while it runs.
 *
 *   churn [SECONDS] [SIZE_MIB]   (defaults 20 and 128)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "wl.h"

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? strtod(argv[1], NULL) : 20;
	long size_mib = argc > 2 ? strtol(argv[2], NULL, 10) : 128;
	size_t len;
	double t0, t;
	uint64_t rounds = 0;

	if (secs <= 0 || size_mib <= 0) {
		fprintf(stderr, "churn: bad arguments\n");
		return 1;
	}
	len = (size_t)size_mib * WL_MIB;
	t0 = wl_now();
	do {
		unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			perror("churn: mmap");
			return 1;
		}
		wl_dirty(p, len, (unsigned)rounds);
		if (munmap(p, len) == -1) {
			perror("churn: munmap");
			return 1;
		}
		rounds++;
		t = wl_now() - t0;
	} while (t < secs);
	printf("churn: %llu rounds of %ld MiB in %.2f s: %.1f MiB/s\n",
	    (unsigned long long)rounds, size_mib, t,
	    (double)rounds * (double)size_mib / t);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Workload (a): dirty PERCENT of the guest's RAM with non-zero data, then
 * free it all. The freed pages keep their contents, so without hinting a
 * migration must send them whole.
 *
 *   dirty [PERCENT]   (default 60)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "wl.h"

int
main(int argc, char **argv)
{
	uint64_t total_kib = wl_meminfo_kib("MemTotal");
	long pct = argc > 1 ? strtol(argv[1], NULL, 10) : 60;
	size_t len;
	unsigned char *p;
	double t0;

	if (total_kib == 0 || pct <= 0 || pct > 90) {
		fprintf(stderr, "dirty: bad MemTotal or percent\n");
		return 1;
	}
	len = (size_t)(total_kib * 1024 / 100 * (uint64_t)pct);
	len &= ~(WL_PAGE - 1);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED) {
		perror("dirty: mmap");
		return 1;
	}
	t0 = wl_now();
	wl_dirty(p, len, 1);
	printf("dirty: wrote %zu MiB in %.2f s\n", len / WL_MIB, wl_now() - t0);
	if (munmap(p, len) == -1) {
		perror("dirty: munmap");
		return 1;
	}
	printf("dirty: freed %zu MiB\n", len / WL_MIB);
	return 0;
}

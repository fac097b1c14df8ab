/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the guest workloads of bench/: they run as static
 * binaries in a busybox initramfs, so only libc is available.
 */
#ifndef FREEHINT_BENCH_WL_H
#define FREEHINT_BENCH_WL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define WL_PAGE 4096UL
#define WL_MIB  (1024UL * 1024UL)

/* A field of /proc/meminfo in KiB, or 0 when absent. */
static inline uint64_t
wl_meminfo_kib(const char *key)
{
	char line[256];
	unsigned long long v;
	size_t klen = strlen(key);
	uint64_t found = 0;
	FILE *f;

	if ((f = fopen("/proc/meminfo", "r")) == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':' &&
		    sscanf(line + klen + 1, "%llu", &v) == 1) {
			found = v;
			break;
		}
	}
	fclose(f);
	return found;
}

static inline double
wl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes a non-zero pattern to every page so that none reads as zero. */
static inline void
wl_dirty(unsigned char *p, size_t len, unsigned seed)
{
	size_t off;

	for (off = 0; off < len; off += WL_PAGE) {
		uint64_t *w = (uint64_t *)(void *)(p + off);
		size_t i;

		for (i = 0; i < WL_PAGE / sizeof *w; i += 8)
			w[i] = 0x9e3779b97f4a7c15ULL * (off + i + seed + 1);
	}
}

#endif

// SPDX-License-Identifier: GPL-2.0
/*
 * fhfill: take memory and keep it, to see whether the host punched it.
 *   fhfill MB SECONDS   allocate MB MiB, stamp every page with its index,
 *                       print "fhfill: filled", sleep SECONDS, then check
 *                       every page and print how many lost their stamp
 *                       (zeroes: a host discard hit memory in use).
 * Exit 0 when every page kept its stamp.
 */
#include "fhtest.h"

int
main(int argc, char **argv)
{
	size_t mb, pages, i, bad = 0, zero = 0;
	uint64_t *w;
	char *p;

	if (argc != 3)
		return fprintf(stderr, "usage: fhfill MB SECONDS\n"), 2;
	mb = strtoul(argv[1], NULL, 0);
	pages = mb << 8;
	p = mmap(NULL, mb << 20, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	madvise(p, mb << 20, MADV_NOHUGEPAGE);
	for (i = 0; i < pages; i++) {
		w = (uint64_t *)(p + i * 4096);
		w[0] = 0xf11f11f100000000ULL | i;
		w[511] = ~w[0];
	}
	say("fhfill: filled %zu MiB\n", mb);
	sleep_ms(atol(argv[2]) * 1000);
	for (i = 0; i < pages; i++) {
		w = (uint64_t *)(p + i * 4096);
		if (w[0] != (0xf11f11f100000000ULL | i) || w[511] != ~w[0]) {
			bad++;
			zero += w[0] == 0 && w[511] == 0;
		}
	}
	say("fhfill: %zu of %zu pages lost their stamp (%zu zeroed)\n", bad,
	    pages, zero);
	return bad ? 1 : 0;
}

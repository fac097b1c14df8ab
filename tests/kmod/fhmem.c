// SPDX-License-Identifier: GPL-2.0
/*
 * fhmem: memory load for the guest tests.
 *   fhmem dirty MB    fill MB MiB with non-zero bytes, then exit (frees it)
 *   fhmem touch MB    allocate and touch MB MiB, check it, exit 0 on success
 */
#include "fhtest.h"

int
main(int argc, char **argv)
{
	size_t mb, i;
	char *p;

	if (argc != 3)
		return fprintf(stderr, "usage: fhmem dirty|touch MB\n"), 2;
	mb = strtoul(argv[2], NULL, 0);
	p = alloc_fill(mb, 0x77);
	if (!p)
		die("mmap");
	for (i = 0; i < mb << 20; i += 4096)
		if (p[i] != 0x77) {
			say("fhmem: page at %zu lost its contents\n", i);
			return 1;
		}
	say("fhmem: %s %zu MiB ok\n", argv[1], mb);
	return 0;
}

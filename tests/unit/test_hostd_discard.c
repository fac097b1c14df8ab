/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * freehintd's discards (discard.c): trimming to 4 KiB and 2 MiB host
 * pages, real holes punched in a memfd, and the batch's deadline checked
 * between the pieces of a large range.
 */
#include <sys/mman.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "freehintd.h"

#define MiB         (1ULL << 20)
#define NO_DEADLINE UINT64_MAX

static void
test_trim(void **state)
{
	uint64_t off, len;

	assert_true(discard_trim(0x1000, 0x3000, 4096, &off, &len));
	assert_int_equal(off, 0x1000);
	assert_int_equal(len, 0x3000);
	/* 2 MiB pages: only the whole page in the middle. */
	assert_true(discard_trim(MiB, 4 * MiB, 2 * MiB, &off, &len));
	assert_int_equal(off, 2 * MiB);
	assert_int_equal(len, 2 * MiB);
	assert_false(discard_trim(MiB, 2 * MiB, 2 * MiB, &off, &len));
	assert_false(discard_trim(0, 4096, 2 * MiB, &off, &len));
	assert_true(discard_trim(0, 2 * MiB, 2 * MiB, &off, &len));
	assert_false(discard_trim(0, 0, 4096, &off, &len));
	assert_false(discard_trim(0, 4096, 3000, &off, &len));
	assert_false(discard_trim(UINT64_MAX - 4095, 8192, 4096, &off, &len));
}

/* Real holes in a memfd: the offset arithmetic and nothing around. */
static void
test_discard_memfd(void **state)
{
	struct memregion r[2];
	struct memmap m;
	struct discard_result res = { 0 };
	char err[128];
	uint8_t *p;
	size_t i;
	int fd;

	p = unit_memfd(8 * MiB, 0xa5, &fd);
	/* Guest RAM at 0 is the file at 1 MiB; at 16 MiB, the file at 4M. */
	r[0] = (struct memregion){ 0, 2 * MiB, 0, 0, fd, MiB, 4096 };
	r[1] = (struct memregion){ 16 * MiB, 4 * MiB, 2 * MiB, 0, fd, 4 * MiB,
		4096 };
	m = (struct memmap){ r, 2, NULL, VM_BACKING_MEMFD };
	assert_int_equal(discard_range(&m, 0x1000, 0x2000, NO_DEADLINE, &res,
	                     err, sizeof err),
	    0);
	assert_int_equal(discard_range(&m, 16 * MiB + 0x10000, 0x1000,
	                     NO_DEADLINE, &res, err, sizeof err),
	    0);
	assert_int_equal(res.bytes, 0x3000);
	assert_int_equal(res.skipped, 0);
	for (i = 0; i < 8 * MiB; i++) {
		int hole = (i >= MiB + 0x1000 && i < MiB + 0x3000) ||
		    (i >= 4 * MiB + 0x10000 && i < 4 * MiB + 0x11000);

		if (p[i] != (hole ? 0 : 0xa5))
			fail_msg("byte 0x%zx is 0x%02x", i, p[i]);
	}
	/* Outside the map: refused, nothing touched. */
	assert_int_equal(discard_range(&m, 2 * MiB, 0x1000, NO_DEADLINE, &res,
	                     err, sizeof err),
	    -1);
	/* 2 MiB host pages: a 1 MiB range is skipped, not rounded. */
	r[0].pagesz = 2 * MiB;
	res.bytes = res.skipped = 0;
	assert_int_equal(
	    discard_range(&m, 0, MiB, NO_DEADLINE, &res, err, sizeof err), 0);
	assert_int_equal(res.bytes, 0);
	assert_int_equal(res.skipped, MiB);
	assert_int_equal(p[MiB], 0xa5);
	munmap(p, 8 * MiB);
	close(fd);
}

/*
 * A deadline already within the margin: nothing is punched. One that
 * passes while a large range is punched (a test delay of 150 ms a piece,
 * 250 ms margin): the punching stops between pieces, part is done.
 */
static void
test_discard_deadline(void **state)
{
	struct memregion r;
	struct memmap m;
	struct discard_result res = { 0 };
	char err[128], *p;
	uint64_t now;
	int fd;

	p = unit_memfd(256 * MiB, 0xa5, &fd);
	r = (struct memregion){ 0, 256 * MiB, 0, 0, fd, 0, 4096 };
	m = (struct memmap){ &r, 1, NULL, VM_BACKING_MEMFD };

	now = fh_monotonic_ms();
	assert_int_equal(
	    discard_range(&m, 0, 256 * MiB, now + FREEHINTD_LEASE_MARGIN_MS,
	        &res, err, sizeof err),
	    DISCARD_TOO_LATE);
	assert_int_equal(res.bytes, 0);
	assert_int_equal((unsigned char)p[0], 0xa5);

	setenv("FREEHINTD_TEST_DISCARD_DELAY_MS", "150", 1);
	now = fh_monotonic_ms();
	assert_int_equal(
	    discard_range(&m, 0, 256 * MiB,
	        now + FREEHINTD_LEASE_MARGIN_MS + 400, &res, err, sizeof err),
	    DISCARD_TOO_LATE);
	/* Stopped between pieces: at least one punched, not all. */
	assert_true(res.bytes > 0);
	assert_true(res.bytes < 256 * MiB);
	assert_true(fh_monotonic_ms() <= now + FREEHINTD_LEASE_MARGIN_MS + 400);
	assert_int_equal(p[res.bytes - 1], 0);
	assert_int_equal((unsigned char)p[res.bytes], 0xa5);
	munmap(p, 256 * MiB);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_discard_memfd),
		/* Last: it sets the test delay for the rest of the process. */
		cmocka_unit_test(test_discard_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

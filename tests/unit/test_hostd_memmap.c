/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * freehintd's memory map, trimming and discards: "info mtree -f" as QEMU
 * 7.2 printed it here (tests/hostd/data/), lookups at region edges, the
 * arithmetic from guest-physical address to backing offset, trimming to
 * 4 KiB and 2 MiB host pages, and real holes punched in a memfd.
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

#include <cmocka.h>

#include "freehintd.h"

#define DATA "tests/hostd/data/"
#define MiB  (1ULL << 20)

static char *slurp(const char *);
static void parse(const char *, const char *, struct memmap *);

static char *
slurp(const char *name)
{
	char *buf;
	long len;
	FILE *f;

	f = fopen(name, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

static void
parse(const char *file, const char *block, struct memmap *m)
{
	char err[256], *text = slurp(file);

	memmap_init(m);
	assert_int_equal(
	    memmap_parse_mtree(text, block, m, err, sizeof err), 0);
	free(text);
}

static void
test_pc_512m(void **state)
{
	struct memmap m;

	parse(DATA "mtree-pc-512m.txt", "mem0", &m);
	/* Below the VGA hole, and from 1 MiB to the top of RAM. */
	assert_int_equal(m.n, 2);
	assert_int_equal(m.r[0].gpa, 0);
	assert_int_equal(m.r[0].size, 0xa0000);
	assert_int_equal(m.r[0].blk_off, 0);
	assert_int_equal(m.r[1].gpa, 0x100000);
	assert_int_equal(m.r[1].size, 512 * MiB - 0x100000);
	assert_int_equal(m.r[1].blk_off, 0x100000);
	assert_int_equal(memmap_ram_bytes(&m), 512 * MiB - 0x60000);
	memmap_free(&m);
}

static void
test_pc_4g(void **state)
{
	struct memmap m;

	parse(DATA "mtree-pc-4g.txt", "mem0", &m);
	/* ram-below-4g ends at 3 GiB; ram-above-4g maps the rest at 4 GiB. */
	assert_int_equal(m.n, 3);
	assert_int_equal(m.r[1].gpa + m.r[1].size, 0xc0000000ULL);
	assert_int_equal(m.r[2].gpa, 0x100000000ULL);
	assert_int_equal(m.r[2].size, 1024 * MiB);
	assert_int_equal(m.r[2].blk_off, 0xc0000000ULL);
	assert_int_equal(m.r[0].blk_off, 0);
	assert_int_equal(m.r[1].blk_off, 0x100000);
	assert_int_equal(memmap_ram_bytes(&m), 4096 * MiB - 0x60000);
	/* The PCI hole and everything past RAM are not RAM. */
	assert_null(memmap_find(&m, 0xc0000000ULL, 4096));
	assert_null(memmap_find(&m, 0xbffff000ULL, 8192));
	assert_non_null(memmap_find(&m, 0xbffff000ULL, 4096));
	assert_non_null(memmap_find(&m, 0x13ffff000ULL, 4096));
	assert_null(memmap_find(&m, 0x140000000ULL, 4096));
	memmap_free(&m);
}

/* After the firmware ran: ROM-mapped RAM, vga.vram and the ivshmem BAR. */
static void
test_running_bars_excluded(void **state)
{
	struct memmap m;
	char err[256], *text;
	size_t i;

	parse(DATA "mtree-pc-512m-ivshmem-running.txt", "mem0", &m);
	for (i = 0; i < m.n; i++)
		assert_true(m.r[i].gpa + m.r[i].size <= 512 * MiB);
	assert_null(memmap_find(&m, 0xfe000000ULL, 4096)); /* canary BAR */
	assert_null(memmap_find(&m, 0xfd000000ULL, 4096)); /* vga.vram */
	assert_null(memmap_find(&m, 0xc0000, 4096)); /* ROM-mapped */
	assert_non_null(memmap_find(&m, 0xcb000, 4096)); /* RAM again */
	memmap_free(&m);

	/* The canary's own name does not make it guest RAM either way. */
	text = slurp(DATA "mtree-pc-512m-ivshmem-running.txt");
	memmap_init(&m);
	assert_int_equal(
	    memmap_parse_mtree(text, "canary", &m, err, sizeof err), 0);
	assert_int_equal(m.n, 1);
	memmap_free(&m);
	memmap_init(&m);
	assert_int_equal(
	    memmap_parse_mtree(text, "pc.ram", &m, err, sizeof err), -1);
	memmap_free(&m);
	free(text);
}

static void
test_garbage(void **state)
{
	static const char *const bad[] = {
		"",
		"FlatView #0\n AS \"memory\", root: system\n",
		"  0000000000000000-000000000009ffff (prio 0, ram): mem0\n",
		"FlatView #0\n AS \"memory\", root: system\n"
		"  0000000000100000-000000001fffffff (prio 0, ram): mem0\n"
		"  0000000000000000-000000000fffffff (prio 0, ram): mem0\n",
	};
	struct memmap m;
	char err[256];
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(bad); i++) {
		memmap_init(&m);
		assert_int_equal(
		    memmap_parse_mtree(bad[i], "mem0", &m, err, sizeof err),
		    -1);
		memmap_free(&m);
	}
}

static void
test_find_edges(void **state)
{
	struct memregion r[2] = {
		{ 0, 0xa0000, 0, 0, -1, 0, 4096 },
		{ 0x100000, 0x1ff00000, 0x100000, 0, -1, 0, 4096 },
	};
	struct memmap m = { r, 2, NULL, VM_BACKING_MEMFD };

	assert_ptr_equal(memmap_find(&m, 0, 0xa0000), &r[0]);
	assert_null(memmap_find(&m, 0, 0xa0001));
	assert_null(memmap_find(&m, 0x9f000, 0x62000)); /* spans the hole */
	assert_ptr_equal(memmap_find(&m, 0x1ffff000, 4096), &r[1]);
	assert_null(memmap_find(&m, 0x20000000, 4096));
	assert_null(memmap_find(&m, 0x100000, 0));
	assert_null(memmap_find(&m, UINT64_MAX - 4095, 8192)); /* wraps */
}

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
	struct discard_result res = { 0, 0 };
	char err[128];
	uint8_t *p;
	size_t i;
	int fd;

	fd = memfd_create("test", 0);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8 * MiB), 0);
	p = mmap(NULL, 8 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	memset(p, 0xa5, 8 * MiB);
	/* Guest RAM at 0 is the file at 1 MiB; at 16 MiB, the file at 4M. */
	r[0] = (struct memregion){ 0, 2 * MiB, 0, 0, fd, MiB, 4096 };
	r[1] = (struct memregion){ 16 * MiB, 4 * MiB, 2 * MiB, 0, fd, 4 * MiB,
		4096 };
	m = (struct memmap){ r, 2, NULL, VM_BACKING_MEMFD };
	assert_int_equal(
	    discard_range(&m, 0x1000, 0x2000, &res, err, sizeof err), 0);
	assert_int_equal(discard_range(&m, 16 * MiB + 0x10000, 0x1000, &res,
	                     err, sizeof err),
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
	assert_int_equal(
	    discard_range(&m, 2 * MiB, 0x1000, &res, err, sizeof err), -1);
	/* 2 MiB host pages: a 1 MiB range is skipped, not rounded. */
	r[0].pagesz = 2 * MiB;
	res.bytes = res.skipped = 0;
	assert_int_equal(discard_range(&m, 0, MiB, &res, err, sizeof err), 0);
	assert_int_equal(res.bytes, 0);
	assert_int_equal(res.skipped, MiB);
	assert_int_equal(p[MiB], 0xa5);
	munmap(p, 8 * MiB);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pc_512m),
		cmocka_unit_test(test_pc_4g),
		cmocka_unit_test(test_running_bars_excluded),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_find_edges),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_discard_memfd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * passcost.c, whether a migration's own hint pass pays: from the figures
 * of guests the benchmarks and the checks migrate (an idle guest whose
 * free memory page reporting has discarded; one whose free memory lies
 * in 32 KiB pieces), the bandwidth below which the pass is asked for;
 * and a guest's figures that claim more than its RAM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "freehintd.h"

#define MiB (1ULL << 20)

struct config *conf;
struct event_base *ev_base;

/* A 512 MiB guest with 4 KiB pages whose free blocks are by_order; the
 * pass at 512 MiB/s, a 1 GiB/s link (freehintd's defaults). */
static struct pass_figures
guest(uint64_t alloc_mib, const uint64_t *by_order, size_t norders)
{
	struct pass_figures in = {
		.ram = 512 * MiB,
		.alloc = (int64_t)(alloc_mib * MiB),
		.limit = alloc_mib * MiB,
		.by_order = by_order,
		.norders = norders,
		.page = 4096,
		.min_order = 0,
		.speed = 512 * MiB,
		.link = 1024 * MiB,
	};

	return in;
}

/*
 * The cost: the capture at the pass's speed and QEMU's wait; the
 * ceiling: gain over cost; none when even the link is below it.
 */
static void
test_ceiling(void **state)
{
	uint64_t ms;

	(void)state;
	/* 256 MiB at 512 MiB/s: 500 ms, and the wait. 128 MiB kept back
	 * pays below 128 MiB / 0.6 s. */
	assert_int_equal(
	    pass_ceiling(256 * MiB, 128 * MiB, 512 * MiB, 1024 * MiB, &ms),
	    (uint64_t)(128 * MiB * 1000 / 600));
	assert_int_equal(ms, 500 + FREEHINTD_HOLD_WAIT_MS);
	/* A 100 MiB/s link: the pass pays at any bandwidth. */
	assert_true(pass_ceiling(256 * MiB, 128 * MiB, 512 * MiB, 100 * MiB,
	                &ms) == UINT64_MAX);
	/* A speed of 0 (never measured so) divides by nothing. */
	(void)pass_ceiling(MiB, MiB, 0, MiB, &ms);
	assert_true(ms > FREEHINTD_HOLD_WAIT_MS);
}

/*
 * The benchmark's idle guest: 350 MiB free, 171 MiB allocated (page
 * reporting discarded the rest), so only about 9 MiB of free memory is
 * still there to be sent whole. At 128 MiB/s (QEMU's default) sending it
 * takes 70 ms, less than the 334 ms the pass takes to capture 171 MiB:
 * no pass at QEMU's default, let alone faster.
 */
static void
test_idle_reported(void **state)
{
	uint64_t by_order[11] = { 0 };
	struct pass_estimate e;
	struct pass_figures in;
	char why[256];

	(void)state;
	by_order[10] = 87; /* 348 MiB in 4 MiB blocks */
	by_order[0] = 512; /* and 2 MiB in pages */
	in = guest(171, by_order, 11);
	assert_int_equal(pass_weigh(&in, &e, why, sizeof why), 0);
	assert_int_equal(e.capture, 171 * MiB);
	assert_int_equal(e.gain, 9 * MiB);
	assert_int_equal(e.cost_ms, 171 * 1000 / 512 + FREEHINTD_HOLD_WAIT_MS);
	assert_true(e.ceiling < 128 * MiB);
	assert_true(e.ceiling > 8 * MiB); /* 1 Gbit/s is 119 MiB/s */
	assert_true(e.ceiling < 119 * MiB / 4);
}

/*
 * The same idle guest, whose pass leaves reported blocks alone
 * (CAP_SKIP_REPORTED): it captures only the 9 MiB the backing still
 * holds, in 117 ms, so it pays below about 77 MiB/s; QEMU's wait is now
 * most of its cost. Private memory has no such count: the capture stays
 * (up to the byte limit).
 */
static void
test_skips_reported(void **state)
{
	uint64_t by_order[11] = { 0 };
	struct pass_estimate e;
	struct pass_figures in;
	char why[256];

	(void)state;
	by_order[10] = 87;
	by_order[0] = 512;
	in = guest(171, by_order, 11);
	in.skips_reported = true;
	assert_int_equal(pass_weigh(&in, &e, why, sizeof why), 0);
	assert_int_equal(e.capture, 9 * MiB);
	assert_int_equal(e.gain, 9 * MiB);
	assert_int_equal(e.cost_ms, 9 * 1000 / 512 + FREEHINTD_HOLD_WAIT_MS);
	assert_true(e.ceiling > 70 * MiB);
	assert_true(e.ceiling < 80 * MiB);
	in.alloc = -1;
	assert_int_equal(pass_weigh(&in, &e, why, sizeof why), 0);
	assert_int_equal(e.capture, 171 * MiB); /* the byte limit */
}

/*
 * The check's fragmented guest: 280 MiB free in 32 KiB pieces, all of it
 * written once, so all of it allocated. At QEMU's default 128 MiB/s the
 * pass (about 650 ms) keeps back 280 MiB, 2.2 s of sending: it pays. At
 * the 1 GiB/s link it would not (273 ms of sending).
 */
static void
test_fragmented(void **state)
{
	uint64_t by_order[4] = { 0, 0, 0, 8960 }; /* 280 MiB of order 3 */
	struct pass_estimate e;
	struct pass_figures in;
	char why[256];

	(void)state;
	in = guest(512, by_order, 4);
	assert_int_equal(pass_weigh(&in, &e, why, sizeof why), 0);
	assert_int_equal(e.capture, 280 * MiB);
	assert_int_equal(e.gain, 280 * MiB);
	assert_true(e.ceiling > 128 * MiB);
	assert_true(e.ceiling < 1024 * MiB);
	/* hugetlbfs (order 9 at least): none of it in such blocks. */
	in.min_order = 9;
	assert_int_equal(pass_weigh(&in, &e, why, sizeof why), -1);
	assert_non_null(strstr(why, "order 9 or more"));
	/* Measured faster (a KVM guest's pass): it pays at the link. */
	in.min_order = 0;
	in.speed = 8192 * MiB;
	assert_int_equal(pass_weigh(&in, &e, why, sizeof why), 0);
	assert_true(e.ceiling == UINT64_MAX);
}

/* Private memory: no count of what is there; all it captures counts. */
static void
test_private(void **state)
{
	uint64_t by_order[1] = { 2560 }; /* 10 MiB */
	struct pass_estimate e;
	struct pass_figures in;
	char why[256];

	(void)state;
	in = guest(512, by_order, 1);
	in.alloc = -1;
	assert_int_equal(pass_weigh(&in, &e, why, sizeof why), 0);
	assert_int_equal(e.gain, 10 * MiB);
}

/*
 * Nothing the backing holds is free: the guest uses all that is
 * allocated. No pass, and why.
 */
static void
test_nothing_to_gain(void **state)
{
	uint64_t by_order[11] = { 0 };
	struct pass_estimate e;
	struct pass_figures in;
	char why[256];

	(void)state;
	by_order[10] = 100; /* 400 MiB free, all of it reported */
	in = guest(100, by_order, 11);
	assert_int_equal(pass_weigh(&in, &e, why, sizeof why), -1);
	assert_non_null(strstr(why, "400 MiB of them, 112 MiB used"));
	/* No free blocks at all. */
	in = guest(512, by_order, 0);
	assert_int_equal(pass_weigh(&in, &e, why, sizeof why), -1);
}

/*
 * A guest's Stats claim more than its RAM (the counts are the guest's
 * own): no order counts more than the RAM, nor does their sum; nothing
 * overflows.
 */
static void
test_claims_beyond_ram(void **state)
{
	uint64_t by_order[20];
	struct pass_estimate e;
	struct pass_figures in;
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < 20; i++)
		by_order[i] = UINT64_MAX >> i;
	in = guest(512, by_order, 20);
	in.limit = UINT64_MAX;
	assert_int_equal(pass_weigh(&in, &e, why, sizeof why), 0);
	assert_int_equal(e.capture, 512 * MiB);
	assert_int_equal(e.gain, 512 * MiB);
	in.page = 0;
	assert_int_equal(pass_weigh(&in, &e, why, sizeof why), 0);
	assert_true(e.capture <= 512 * MiB);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ceiling),
		cmocka_unit_test(test_idle_reported),
		cmocka_unit_test(test_skips_reported),
		cmocka_unit_test(test_fragmented),
		cmocka_unit_test(test_private),
		cmocka_unit_test(test_nothing_to_gain),
		cmocka_unit_test(test_claims_beyond_ram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

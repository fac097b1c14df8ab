/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's parsers of /proc/freehint's text formats (kmodfile.c).
 * Every malformed input must be an error with a message, never a crash
 * or a range that should not be.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "agent.h"

static int parse(const char *, uint64_t *, struct fh_rangeset *);
static uint32_t last_grace;

static int
parse(const char *s, uint64_t *id, struct fh_rangeset *rs)
{
	char err[128] = "";
	int rc;

	rc = kmod_parse_batch(
	    s, strlen(s), id, &last_grace, rs, err, sizeof err);
	if (rc != 0)
		assert_true(err[0] != '\0');
	return rc;
}

/* Adjacent and overlapping blocks coalesce; the set comes out normal. */
static void
test_batch_coalesces(void **state)
{
	struct fh_rangeset rs;
	uint64_t id = 0;

	fh_rs_init(&rs);
	assert_int_equal(parse("batch 7 4\n0x400 9\n0x200 9\n0x1000 0\n"
	                       "0x2000 10\n",
	                     &id, &rs),
	    0);
	assert_int_equal(id, 7);
	assert_int_equal(rs.n, 3);
	assert_int_equal(rs.r[0].start, 0x200);
	assert_int_equal(rs.r[0].npages, 1024);
	assert_int_equal(rs.r[1].start, 0x1000);
	assert_int_equal(rs.r[1].npages, 1);
	assert_int_equal(rs.r[2].start, 0x2000);
	assert_int_equal(rs.r[2].npages, 1024);
	assert_true(fh_rs_is_normal(&rs));
	fh_rs_free(&rs);
}

static void
test_batch_malformed(void **state)
{
	static const char *bad[] = {
		"", "batch 1 1\n", /* fewer lines than count */
		"batch 1 1\n0x200 9", /* no final newline */
		"batch 1 1\n0x200 9\n0x400 9\n", /* trailing line */
		"batch 1 0\n", /* empty batch */
		"batch x 1\n0x200 9\n", /* bad id */
		"batch -1 1\n0x200 9\n", /* negative id */
		"batch 1 1 \n0x200 9\n", /* trailing space */
		"batch  1\n0x200 9\n", /* missing field */
		"batch 99999999999999999999 1\n0x200 9\n", /* id overflow */
		"batch 1 1\n200 9\n", /* no 0x */
		"batch 1 1\n0x 9\n", /* no digits */
		"batch 1 1\n0x200 -9\n", /* negative order */
		"batch 1 1\n0x200 21\n", /* order too large */
		"batch 1 1\n0x201 9\n", /* unaligned block */
		"batch 1 1\n0x10000000000000 0\n", /* pfn at FH_PFN_LIMIT */
		"batch 1 1\n0xfffffffffffffe00 9\n", /* wraps */
		"batch 1 1\n0x11111111111111111 0\n", /* hex overflow */
		"batch 1 1\n0x200 9 x\n", /* extra field */
		"batch 1 1\n0x200\t9\n", /* tab */
		"batch 1 1\n0x200 9\0\n", /* NUL inside */
		"BATCH 1 1\n0x200 9\n", /* wrong keyword */
		"batch 1 100000\n0x200 9\n", /* absurd count */
		"batch 1 1 grace_ms\n0x200 9\n", /* not key=value */
		"batch 1 1 grace_ms=\n0x200 9\n", /* no value */
		"batch 1 1 grace_ms=-5\n0x200 9\n", /* negative */
		"batch 1 1 grace_ms=4294967296\n0x200 9\n", /* > u32 */
		"batch 1 1 grace_ms=10x\n0x200 9\n", /* junk */
		"batch 1 1 grace_ms=10 \n0x200 9\n", /* trailing space */
	};
	struct fh_rangeset rs;
	uint64_t id;
	size_t i;

	fh_rs_init(&rs);
	for (i = 0; i < FH_ARRAY_SIZE(bad); i++) {
		if (parse(bad[i], &id, &rs) == 0)
			fail_msg("accepted bad batch #%zu: %s", i, bad[i]);
	}
	fh_rs_free(&rs);
}

/*
 * The grace the module promised with the batch; other key=value words
 * (a later module's) are skipped; without it, no lease (0).
 */
static void
test_batch_grace(void **state)
{
	struct fh_rangeset rs;
	uint64_t id = 0;

	fh_rs_init(&rs);
	assert_int_equal(
	    parse("batch 5 1 grace_ms=10000\n0x200 9\n", &id, &rs), 0);
	assert_int_equal(id, 5);
	assert_int_equal(last_grace, 10000);
	assert_int_equal(
	    parse("batch 6 1 zone=2 grace_ms=250 x=y\n0x200 9\n", &id, &rs), 0);
	assert_int_equal(last_grace, 250);
	assert_int_equal(parse("batch 7 1\n0x200 9\n", &id, &rs), 0);
	assert_int_equal(last_grace, 0);
	fh_rs_free(&rs);
}

/* Whatever the bytes, the parser answers without crashing. */
static void
test_batch_garbage(void **state)
{
	struct fh_rangeset rs;
	char buf[256], err[128];
	uint64_t id;
	unsigned i, j;

	fh_rs_init(&rs);
	srandom(1);
	for (i = 0; i < 20000; i++) {
		size_t n = (size_t)(random() % sizeof buf);

		memcpy(buf, "batch 3 2\n0x200 9\n0x400 9\n", 26);
		for (j = 0; j < 4; j++)
			buf[random() % 26] = (char)(random() & 0xff);
		if (n < 26)
			n = 26;
		for (j = 26; j < n; j++)
			buf[j] = "0x123456789 \nbatch"[random() % 18];
		if (kmod_parse_batch(
		        buf, n, &id, &last_grace, &rs, err, sizeof err) == 0)
			assert_true(fh_rs_is_normal(&rs));
	}
	fh_rs_free(&rs);
}

static void
test_blocks(void **state)
{
	static const char good[] =
	    "# freehint blocks: min_order=0 page_size=4096 max_order=10\n"
	    "# pfn order zone migratetype\n"
	    "0x1 0 DMA 0\n"
	    "0x400 10 DMA32 1\n"
	    "0x800 10 DMA32 1\n"
	    "0x1002 1 Normal 2\n";
	uint64_t by_order[AGENT_MAX_ORDERS];
	struct fh_rangeset rs;
	char err[128];

	fh_rs_init(&rs);
	assert_int_equal(kmod_parse_blocks(good, strlen(good), 1, by_order, &rs,
	                     err, sizeof err),
	    0);
	assert_int_equal(by_order[0], 1);
	assert_int_equal(by_order[1], 1);
	assert_int_equal(by_order[10], 2);
	/* min_order 1 drops the order-0 block; the two 10s coalesce. */
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.r[0].start, 0x400);
	assert_int_equal(rs.r[0].npages, 2048);
	assert_int_equal(rs.r[1].start, 0x1002);
	assert_int_equal(rs.r[1].npages, 2);

	assert_int_equal(
	    kmod_parse_blocks("", 0, 0, by_order, NULL, err, sizeof err), 0);
	assert_int_not_equal(kmod_parse_blocks("0x1 0 DMA\n", 10, 0, by_order,
	                         &rs, err, sizeof err),
	    0);
	assert_int_not_equal(kmod_parse_blocks("0x1 0 DMA 0", 11, 0, by_order,
	                         &rs, err, sizeof err),
	    0);
	assert_int_not_equal(kmod_parse_blocks("0x3 1 DMA 0\n", 12, 0, by_order,
	                         &rs, err, sizeof err),
	    0);
	assert_int_not_equal(kmod_parse_blocks("0x0 64 DMA 0\n", 13, 0,
	                         by_order, &rs, err, sizeof err),
	    0);
	fh_rs_free(&rs);
}

static void
test_stats(void **state)
{
	static const char good[] = "snapshots 3\npage_size 4096\n"
	                           "max_pfn 131072\nreport_registered 1\n"
	                           "report_order 9\nfuture_key 5\n"
	                           "report_owner freehint\n";
	struct kmod_stats st;
	char err[128];

	assert_int_equal(
	    kmod_parse_stats(good, strlen(good), &st, err, sizeof err), 0);
	assert_int_equal(st.page_size, 4096);
	assert_int_equal(st.max_pfn, 131072);
	assert_int_equal(st.report_order, 9);
	assert_int_not_equal(
	    kmod_parse_stats("page_size 4096\n", 15, &st, err, sizeof err),
	    0); /* no max_pfn */
	assert_int_not_equal(kmod_parse_stats("page_size 4095\nmax_pfn 1\n", 25,
	                         &st, err, sizeof err),
	    0);
	assert_int_not_equal(kmod_parse_stats("page_size\nmax_pfn 1\n", 20, &st,
	                         err, sizeof err),
	    0);
	/* A word where one of ours wants a number is still an error. */
	assert_int_not_equal(kmod_parse_stats("page_size big\nmax_pfn 1\n", 24,
	                         &st, err, sizeof err),
	    0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_coalesces),
		cmocka_unit_test(test_batch_malformed),
		cmocka_unit_test(test_batch_grace),
		cmocka_unit_test(test_batch_garbage),
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_stats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

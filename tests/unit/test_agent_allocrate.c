/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's allocation-rate sampler (allocrate.c): the /proc/vmstat
 * parser, and the sampler on a real event base reading a file that the
 * test rewrites between ticks.
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
#include <event2/event.h>

#include "agent.h"

/* The pgalloc lines of a real 6.1 guest's /proc/vmstat, and neighbours. */
static const char vmstat[] = "nr_free_pages 97513\n"
                             "pgpgin 0\n"
                             "pgalloc_dma 12\n"
                             "pgalloc_dma32 1000000\n"
                             "pgalloc_normal 234\n"
                             "pgalloc_movable 0\n"
                             "allocstall_normal 0\n"
                             "pgfree 1054321\n";

static void
test_parse(void **state)
{
	static const char two[] = "nr_free_pages 3\npgalloc_dma32 7\n"
	                          "pgalloc_normal 5\n";
	uint64_t pages = 0, nfree = 0;

	assert_int_equal(
	    allocrate_parse(vmstat, strlen(vmstat), &pages, &nfree), 0);
	assert_int_equal(pages, 12 + 1000000 + 234);
	assert_int_equal(nfree, 97513);
	/* No trailing newline: the last line still counts. */
	assert_int_equal(allocrate_parse("nr_free_pages 1\npgalloc_dma32 7", 31,
	                     &pages, &nfree),
	    0);
	assert_int_equal(pages, 7);
	assert_int_equal(nfree, 1);
	/* Only the given length is read. */
	assert_int_equal(allocrate_parse(two, 32, &pages, &nfree), 0);
	assert_int_equal(pages, 7);
	assert_int_equal(nfree, 3);
}

static void
test_parse_bad(void **state)
{
	uint64_t pages = 99, nfree = 98;

	assert_int_equal(allocrate_parse("", 0, &pages, &nfree), -1);
	assert_int_equal(allocrate_parse("pgfree 5\n", 9, &pages, &nfree), -1);
	assert_int_equal(
	    allocrate_parse("pgalloc_dma x\n", 14, &pages, &nfree), -1);
	assert_int_equal(
	    allocrate_parse("pgalloc_dma 5 6\n", 16, &pages, &nfree), -1);
	/* Each of the two is needed. */
	assert_int_equal(
	    allocrate_parse("pgalloc_dma 5\n", 14, &pages, &nfree), -1);
	assert_int_equal(
	    allocrate_parse("nr_free_pages 5\n", 16, &pages, &nfree), -1);
	assert_int_equal(allocrate_parse("nr_free_pages x\npgalloc_dma 5\n", 30,
	                     &pages, &nfree),
	    -1);
	assert_int_equal(pages, 99);
	assert_int_equal(nfree, 98);
}

/* The probe's rate: bytes a second, never from a missing or later sample. */
static void
test_rate(void **state)
{
	uint64_t rate = 7;

	assert_int_equal(
	    allocrate_rate(1000, 5000, 1000 + 12800, 5200, 4096, &rate), 0);
	assert_int_equal(rate, 64000ULL * 4096);
	assert_int_equal(
	    allocrate_rate(1000, 5000, 1000, 6000, 4096, &rate), 0);
	assert_int_equal(rate, 0);
	rate = 7;
	assert_int_equal(allocrate_rate(1000, 0, 2000, 6000, 4096, &rate), -1);
	assert_int_equal(
	    allocrate_rate(1000, 6000, 2000, 6000, 4096, &rate), -1);
	assert_int_equal(
	    allocrate_rate(2000, 5000, 1000, 6000, 4096, &rate), -1);
	assert_int_equal(rate, 7);
}

struct sampler {
	char path[64];
	struct event_base *base;
	struct allocrate *ar;
	int ticks;
	int rc[3];
	uint64_t rate[3];
};

static void
write_pages(const char *path, unsigned long long pages)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "nr_free_pages 1\npgalloc_normal %llu\npgfree 2\n", pages);
	fclose(f);
}

/*
 * Tick 1: nothing new since the first sample; tick 2: +25600 pages; tick
 * 3: the file is gone.
 */
static void
sampler_cb(void *arg)
{
	struct sampler *s = arg;

	s->rc[s->ticks] =
	    allocrate_bytes_per_sec(s->ar, 4096, &s->rate[s->ticks]);
	s->ticks++;
	if (s->ticks == 1)
		write_pages(s->path, 1000 + 25600);
	else if (s->ticks == 2)
		unlink(s->path);
	else
		event_base_loopbreak(s->base);
}

static void
test_sampler(void **state)
{
	struct sampler s = { .path = "/tmp/fh-vmstat.XXXXXX" };
	int fd;

	assert_true((fd = mkstemp(s.path)) != -1);
	close(fd);
	write_pages(s.path, 1000);
	assert_non_null(s.base = event_base_new());
	s.ar = allocrate_new(s.base, s.path, NULL, sampler_cb, &s);
	/* One sample at once, no rate before the first tick. */
	assert_int_equal(allocrate_bytes_per_sec(s.ar, 4096, &s.rate[0]), -1);
	event_base_dispatch(s.base);
	assert_int_equal(s.ticks, 3);
	assert_int_equal(s.rc[0], 0);
	assert_int_equal(s.rate[0], 0);
	/* 100 MiB in a second, give or take the timer's jitter. */
	assert_int_equal(s.rc[1], 0);
	assert_true(s.rate[1] > (80ULL << 20) && s.rate[1] < (112ULL << 20));
	/* Unreadable counters: no rate, and not for a while either. */
	assert_int_equal(s.rc[2], -2);
	allocrate_free(s.ar);
	event_base_free(s.base);
	assert_int_equal(allocrate_bytes_per_sec(NULL, 4096, &s.rate[0]), -2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_sampler),
	};

	return UNIT_RUN("test_agent_allocrate", tests);
}

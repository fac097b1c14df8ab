/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's headroom (headroom.c): the dips of free memory a churning
 * guest makes, a one-off burst skipped, and what of a report batch may go.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "unit.h"

#include "agent.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A dip counts only as deep as free memory comes back from it. */
static void
test_dip(void **state)
{
	static const uint64_t churn[] = { 100, 80, 60, 100, 70, 100 };
	static const uint64_t fill[] = { 100, 90, 80, 70, 60, 50 };
	static const uint64_t freed[] = { 50, 50, 60, 80, 100, 300 };
	static const uint64_t half[] = { 100, 40, 70, 70 };
	static const uint64_t flat[] = { 5, 5, 5 };

	assert_int_equal(headroom_dip(churn, N(churn)), 40);
	assert_int_equal(headroom_dip(fill, N(fill)), 0);
	assert_int_equal(headroom_dip(freed, N(freed)), 0);
	assert_int_equal(headroom_dip(half, N(half)), 30);
	assert_int_equal(headroom_dip(flat, N(flat)), 0);
	assert_int_equal(headroom_dip(churn, 0), 0);
	assert_int_equal(headroom_dip(churn, 1), 0);
}

/* seconds of samples: each second dips by depth[s] and comes back. */
static void
feed(struct headroom *h, const uint64_t *depth, size_t seconds)
{
	size_t s, i;

	for (s = 0; s < seconds; s++)
		for (i = 0; i < HEADROOM_WINDOW - 1; i++)
			headroom_sample(h, i == 4 ? 1000 - depth[s] : 1000);
}

/*
 * A churn that dips every second sets the headroom; a burst of up to
 * HEADROOM_SKIP seconds does not, and a churn ends HEADROOM_SECONDS
 * after its last dip.
 */
static void
test_ring(void **state)
{
	uint64_t depth[HEADROOM_SECONDS + 1];
	struct headroom h;
	size_t i;

	headroom_init(&h);
	assert_int_equal(headroom_pages(&h), 0);
	for (i = 0; i < N(depth); i++)
		depth[i] = 40;
	feed(&h, depth, 5);
	/* A window closes at the sample after it: four seconds so far. */
	headroom_sample(&h, 1000);
	assert_int_equal(headroom_pages(&h), 40);

	headroom_init(&h);
	memset(depth, 0, sizeof depth);
	depth[1] = 300;
	depth[2] = 250;
	depth[5] = 10;
	feed(&h, depth, 8);
	headroom_sample(&h, 1000);
	assert_int_equal(headroom_pages(&h), 10);
	depth[6] = 200;
	feed(&h, depth, 8);
	headroom_sample(&h, 1000);
	assert_int_equal(headroom_pages(&h), 250);

	headroom_init(&h);
	for (i = 0; i < N(depth); i++)
		depth[i] = 40;
	feed(&h, depth, 5);
	memset(depth, 0, sizeof depth);
	feed(&h, depth, HEADROOM_SECONDS - 3);
	headroom_sample(&h, 1000);
	assert_int_equal(headroom_pages(&h), 40);
	feed(&h, depth, 3);
	headroom_sample(&h, 1000);
	assert_int_equal(headroom_pages(&h), 0);
}

/*
 * What of a batch goes: all of it with room to spare, a part when it would
 * eat into the headroom, none without spare memory. Reported pages count
 * against the free memory until the guest has allocated them.
 */
static void
test_budget(void **state)
{
	struct headroom h;

	headroom_init(&h);
	/* 1000 free, batch 64, keep 100: plenty. */
	assert_int_equal(headroom_budget(&h, 1000, 64, 100), 64);
	headroom_reported(&h, 64);
	headroom_sample(&h, 1064);
	assert_int_equal(h.reported, 64);
	/* 1000 unreported of 1064 free, batch 960, keep 100: 900 go. */
	assert_int_equal(headroom_budget(&h, 104, 960, 100), 900);
	headroom_reported(&h, 900);
	headroom_sample(&h, 1064);
	assert_int_equal(h.reported, 964);
	/* 100 unreported: nothing more goes, nothing spare. */
	assert_int_equal(headroom_budget(&h, 1000, 64, 100), 0);
	assert_int_equal(headroom_spare(&h, 1064, 100), 0);
	/* The guest allocates 900: what it took was reported, at worst. */
	headroom_sample(&h, 164);
	assert_int_equal(h.reported, 164);
	/* It frees 900 again: unreported now, spare beyond the headroom. */
	headroom_sample(&h, 1064);
	assert_int_equal(headroom_spare(&h, 1064, 100), 800);
	/* A fixed headroom of 0 sends everything. */
	assert_int_equal(headroom_budget(&h, 1064, 64, 0), 64);
}

/*
 * The kernel isolates only unreported blocks, so a batch is unreported
 * memory whatever the estimate says: a sample that found all free memory
 * "reported" (the estimate is clipped to it) must not make the batch,
 * taken out of free memory after that sample, count as reported too. It
 * did (measured in 56-hostd-busy: "512 pages, 63065 free, 63065
 * reported, headroom 0: 0 go"), and a batch failed back ends the kernel's
 * pass.
 */
static void
test_budget_overestimate(void **state)
{
	struct headroom h;

	headroom_init(&h);
	headroom_reported(&h, 65024);
	/* Free memory fell below what was acknowledged: all of it may be
	 * reported. */
	headroom_sample(&h, 63577);
	assert_int_equal(h.reported, 63577);
	/* The kernel takes a 512-page batch out of free memory. */
	assert_int_equal(headroom_budget(&h, 63065, 512, 0), 512);
	assert_int_equal(h.reported, 63065);
	/* With a headroom, the batch is what is unreported: 300 may not
	 * go, the rest may. */
	headroom_sample(&h, 63577);
	assert_int_equal(headroom_budget(&h, 63065, 512, 300), 212);
	assert_int_equal(headroom_budget(&h, 63065, 512, 512), 0);
	/* 512 pages freed beside it are unreported as well. */
	headroom_sample(&h, 64089);
	assert_int_equal(h.reported, 63065);
	assert_int_equal(headroom_budget(&h, 63577, 512, 512), 512);
}

/* What goes after a cut is still whole blocks as the host checks them:
 * a range is cut at a multiple of its own alignment, or dropped. */
static void
test_trim(void **state)
{
	static const struct {
		uint64_t pages;
		size_t n;
		uint64_t last;
	} cases[] = {
		{ 700, 1, 512 }, /* into the 4 MiB range: one 2 MiB unit */
		{ 1024 + 100, 1, 1024 }, /* the 2 MiB range: nothing fits */
		{ 1536, 2, 512 }, /* all of it */
		{ 5000, 2, 512 }, /* more than there is */
		{ 300, 0, 0 }, /* less than a block */
		{ 0, 0, 0 },
	};
	struct fh_rangeset rs;
	size_t i, k;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fh_rs_init(&rs);
		assert_int_equal(fh_rs_add(&rs, 0x200, 1024), 0);
		assert_int_equal(fh_rs_add(&rs, 0x1000, 512), 0);
		headroom_trim(&rs, cases[i].pages);
		assert_int_equal(rs.n, cases[i].n);
		if (rs.n != 0)
			assert_int_equal(rs.r[rs.n - 1].npages, cases[i].last);
		for (k = 0; k < rs.n; k++)
			assert_int_equal(
			    (rs.r[k].start | rs.r[k].npages) & 511, 0);
		fh_rs_free(&rs);
	}
	/* Order-0 blocks cut anywhere. */
	fh_rs_init(&rs);
	assert_int_equal(fh_rs_add(&rs, 5, 3), 0);
	headroom_trim(&rs, 2);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].npages, 2);
	fh_rs_free(&rs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dip),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_budget_overestimate),
		cmocka_unit_test(test_trim),
	};

	return UNIT_RUN("test_agent_headroom", tests);
}

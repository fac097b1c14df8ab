/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The lease arithmetic (lease.c): a batch's deadline on the host's clock
 * must never be later than the moment the guest kernel may give its pages
 * back, whatever the delays on the way, the age of the clock samples, and
 * the guest's clock running slow, standing still (a paused guest) or up
 * to 12.5% fast. The clocks here are simulated, so every case is exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "unit.h"

#include "agent.h"

/*
 * A guest whose clock runs at num/den of the host's: guest time g is host
 * time h0 + (g - g0) * den / num. A stopped clock is num = 0 (any host
 * time maps to g0).
 */
struct sim {
	uint64_t h0, g0;
	uint64_t num, den;
};

/* Host time at guest time g, rounded down (the earliest it can be). */
static uint64_t
sim_host(const struct sim *c, uint64_t g)
{
	return c->h0 + (g - c->g0) * c->den / c->num;
}

/* Guest time at host time h, rounded down. */
static uint64_t
sim_guest(const struct sim *c, uint64_t h)
{
	return c->g0 + (h - c->h0) * c->num / c->den;
}

/* No sample, or a grace no larger than the margin: no deadline at all. */
static void
test_no_deadline(void **state)
{
	struct hostclock hc;
	uint64_t d;

	hostclock_init(&hc);
	assert_int_equal(hostclock_deadline(&hc, 1000, 10000, 100, &d), -1);
	hostclock_sample(&hc, 5000, 1000);
	assert_int_equal(hostclock_deadline(&hc, 1000, 100, 100, &d), -1);
	assert_int_equal(hostclock_deadline(&hc, 1000, 0, 100, &d), -1);
	assert_int_equal(hostclock_deadline(&hc, 1000, 10000, 100, &d), 0);
}

/*
 * For guest clock rates from half to 9/8 of the host's, sample delays
 * from 0 to 5 s, sample ages from 0 to 10 minutes and graces from 1 to 60
 * s: the deadline is at or before the true end of the lease, and with
 * equal clocks and a fresh sample it is not needlessly early.
 */
static void
test_never_late(void **state)
{
	static const uint64_t rates[][2] = { { 1, 2 }, { 9, 10 }, { 1, 1 },
		{ 1001, 1000 }, { 11, 10 }, { 9, 8 } };
	static const uint64_t delays[] = { 0, 1, 40, 3000, 5000 };
	static const uint64_t ages[] = { 0, 10, 1000, 60000, 600000 };
	static const uint32_t graces[] = { 1000, 10000, 60000 };
	struct hostclock hc;
	struct sim c;
	uint64_t h, a, t, d, truth;
	size_t ri, di, ai, gi;

	for (ri = 0; ri < FH_ARRAY_SIZE(rates); ri++)
		for (di = 0; di < FH_ARRAY_SIZE(delays); di++)
			for (ai = 0; ai < FH_ARRAY_SIZE(ages); ai++)
				for (gi = 0; gi < FH_ARRAY_SIZE(graces); gi++) {
					c = (struct sim){ 7000000, 123456,
						rates[ri][0], rates[ri][1] };
					/* The host reads h; it reaches us delay ms later. */
					h = 7001000;
					a = sim_guest(&c, h + delays[di]);
					hostclock_init(&hc);
					hostclock_sample(&hc, h, a);
					t = a + ages[ai];
					assert_int_equal(
					    hostclock_deadline(
					        &hc, t, graces[gi], 100, &d),
					    0);
					truth = sim_host(&c, t + graces[gi]);
					if (d > truth)
						fail_msg("rate %llu/%llu delay "
						         "%llu age %llu grace "
						         "%u: deadline %llu "
						         "after the lease %llu",
						    (unsigned long long)
						        rates[ri][0],
						    (unsigned long long)
						        rates[ri][1],
						    (unsigned long long)
						        delays[di],
						    (unsigned long long)
						        ages[ai],
						    graces[gi],
						    (unsigned long long)d,
						    (unsigned long long)truth);
					if (rates[ri][0] == rates[ri][1] &&
					    delays[di] == 0 && ages[ai] == 0)
						assert_true(d + graces[gi] / 9 +
						        100 + 2 >=
						    truth);
				}
}

/*
 * A paused guest: its clock stands still while the host's goes on, so the
 * lease ends later on the host's clock than computed, never earlier.
 */
static void
test_paused_guest(void **state)
{
	struct hostclock hc;
	uint64_t d;

	hostclock_init(&hc);
	/* Sampled at guest 1000 = host 50000; then paused 30 s at 2000. */
	hostclock_sample(&hc, 50000, 1000);
	assert_int_equal(hostclock_deadline(&hc, 2000, 10000, 100, &d), 0);
	/* Without the pause the lease ends at host 61000; with it, later. */
	assert_true(d <= 61000);
}

/*
 * The best sample wins: a Welcome delayed 3 s does not drag later
 * deadlines down once a prompt Ack came, and a delayed Ack after that
 * does not either.
 */
static void
test_best_sample(void **state)
{
	struct hostclock hc;
	uint64_t d1, d2, d3;

	hostclock_init(&hc);
	/* Host = guest + 1000000; Welcome read at host 1001000, received 3 s
	 * later at guest 4000. */
	hostclock_sample(&hc, 1001000, 4000);
	assert_int_equal(hostclock_deadline(&hc, 5000, 10000, 100, &d1), 0);
	hostclock_sample(&hc, 1005000, 5000);
	assert_int_equal(hostclock_deadline(&hc, 5000, 10000, 100, &d2), 0);
	assert_true(d2 > d1 + 2000);
	assert_true(d2 <= 1015000);
	hostclock_sample(&hc, 1001000, 5000);
	assert_int_equal(hostclock_deadline(&hc, 5000, 10000, 100, &d3), 0);
	assert_int_equal(d3, d2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_deadline),
		cmocka_unit_test(test_never_late),
		cmocka_unit_test(test_paused_guest),
		cmocka_unit_test(test_best_sample),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

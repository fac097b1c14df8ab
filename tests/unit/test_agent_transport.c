/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's transport (transport.c): its reconnection backoff.
 */
#include <stdint.h>
#include <stdlib.h>

#include "unit.h"

#include "agent.h"

/* Doubles from the base, never passes the cap, jitter in [d/2, d]. */
static void
test_backoff(void **state)
{
	uint32_t d, prev = 0;
	unsigned a;

	for (a = 0; a < 20; a++) {
		assert_int_equal(backoff_delay(a, 500, 30000, 0),
		    (a >= 6 ? 30000 : 500U << a) / 2);
		d = backoff_delay(a, 500, 30000, UINT32_MAX);
		assert_true(d <= 30000);
		assert_true(d >= prev);
		prev = d;
	}
	assert_int_equal(backoff_delay(0, 500, 30000, 250), 500);
	assert_int_equal(backoff_delay(1, 500, 30000, 500), 1000);
	assert_int_equal(backoff_delay(1, 500, 30000, 501), 500);
	/* Huge attempt counts neither overflow nor pass the cap. */
	assert_true(backoff_delay(UINT32_MAX, 500, 30000, 12345) <= 30000);
	assert_true(backoff_delay(UINT32_MAX, 500, 30000, 12345) >= 15000);
	/* A cap below the base is the base. */
	assert_true(backoff_delay(3, 500, 100, 7) <= 500);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What every unit test includes instead of <cmocka.h>: cmocka, with the
 * integer assertions redefined so that a failure names the expression
 * and prints its values in decimal (cmocka's own print "0x4 != 0x2"),
 * and the chores every test program repeats: turning an event loop until
 * something holds, a memfd full of a pattern, and a table of cases run
 * between setup and teardown.
 */
#ifndef FH_UNIT_H
#define FH_UNIT_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

/* Through _assert_true, which cmocka reports in every output format
 * (fail_msg bypasses TAP's "# " lines). */
#define FH_ASSERT_INT(a, op, b)                                              \
	do {                                                                 \
		intmax_t fh_a_ = (intmax_t)(a), fh_b_ = (intmax_t)(b);       \
		char fh_m_[512];                                             \
		if (!(fh_a_ op fh_b_)) {                                     \
			snprintf(fh_m_, sizeof fh_m_,                        \
			    "%s " #op " %s: %" PRIdMAX " and %" PRIdMAX, #a, \
			    #b, fh_a_, fh_b_);                               \
			_assert_true(0, fh_m_, __FILE__, __LINE__);          \
		}                                                            \
	} while (0)

#undef assert_int_equal
#undef assert_int_not_equal
#define assert_int_equal(a, b)     FH_ASSERT_INT(a, ==, b)
#define assert_int_not_equal(a, b) FH_ASSERT_INT(a, !=, b)

/*
 * Do turn (one non-blocking turn of a loop, and whatever the test reads
 * after it) until cond holds, sleeping 1 ms between turns, at most spins
 * times; then cond must hold.
 */
#define UNIT_SPIN_UNTIL(turn, spins, cond)                             \
	do {                                                           \
		int spin_;                                             \
		for (spin_ = 0; spin_ < (spins) && !(cond); spin_++) { \
			turn;                                          \
			if (!(cond))                                   \
				usleep(1000);                          \
		}                                                      \
		assert_true(cond);                                     \
	} while (0)

/* A memfd of size bytes (into *fd), mapped shared, every byte fill. */
static inline void *
unit_memfd(size_t size, int fill, int *fd)
{
	void *p;

	*fd = memfd_create("test", 0);
	assert_true(*fd >= 0);
	assert_int_equal(ftruncate(*fd, (off_t)size), 0);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	assert_true(p != MAP_FAILED);
	memset(p, fill, size);
	return p;
}

/* A case of a table whose every case has the file's setup and teardown. */
#define UNIT_FX(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* The end of main: the program's name on its log lines, then its table. */
#define UNIT_RUN(prog, tests) \
	(log_init((prog), 1, 0), cmocka_run_group_tests(tests, NULL, NULL))

#endif

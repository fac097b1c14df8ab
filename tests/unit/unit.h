/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What every unit test includes instead of <cmocka.h>: cmocka, with the
 * integer assertions redefined so that a failure names the expression
 * and prints its values in decimal (cmocka's own print "0x4 != 0x2").
 */
#ifndef FH_UNIT_H
#define FH_UNIT_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

#endif

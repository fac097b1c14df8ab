/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The hint pass a VM gets (vm_pass_policy in host-daemon/vm.c): with
 * hint-min-order "auto", blocks of every order the backing can discard
 * (one host page); an order set by hand is kept; the hold's bound comes
 * from migration-hold-ms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "freehintd.h"

struct event_base *ev_base;
struct config *conf;

static struct config cf;
static struct memregion regs[2];

/* A VM whose two regions are backed by pages of pagesz, in mode. */
static void
vm_with(struct vm *vm, uint64_t pagesz, Freehint__Mode mode)
{
	memset(vm, 0, sizeof *vm);
	memset(regs, 0, sizeof regs);
	regs[0].fd = regs[1].fd = pagesz != 0 ? 3 : -1;
	regs[0].pagesz = regs[1].pagesz = pagesz;
	vm->map.r = regs;
	vm->map.n = 2;
	vm->mode = mode;
}

static int
setup(void **state)
{
	memset(&cf, 0, sizeof cf);
	cf.policy.hint_min_order = FREEHINTD_ORDER_AUTO;
	cf.policy.migration_hold_ms = 5000;
	conf = &cf;
	return 0;
}

static void
test_auto_memfd(void **state)
{
	struct vm vm;

	vm_with(&vm, 4096, FREEHINT__MODE__DISCARD);
	assert_int_equal(vm_pass_policy(&vm, 4096).min_order, 0);
}

static void
test_auto_hugetlbfs(void **state)
{
	struct vm vm;

	vm_with(&vm, 2 << 20, FREEHINT__MODE__DISCARD);
	assert_int_equal(vm_pass_policy(&vm, 4096).min_order, 9);
	vm_with(&vm, 1 << 30, FREEHINT__MODE__DISCARD);
	assert_int_equal(vm_pass_policy(&vm, 4096).min_order, 18);
}

/* Private memory: held blocks are zeroed in the guest, any order. */
static void
test_auto_zero_in_guest(void **state)
{
	struct vm vm;

	vm_with(&vm, 0, FREEHINT__MODE__ZERO_IN_GUEST);
	assert_int_equal(vm_pass_policy(&vm, 4096).min_order, 0);
}

/* Before the Hello (no page size yet): never above what auto gives. */
static void
test_auto_no_guest_page(void **state)
{
	struct vm vm;

	vm_with(&vm, 2 << 20, FREEHINT__MODE__DISCARD);
	assert_int_equal(vm_pass_policy(&vm, 0).min_order, 0);
}

static void
test_set_by_hand(void **state)
{
	struct vm vm;

	cf.policy.hint_min_order = 4;
	cf.policy.migration_hold_ms = 0;
	vm_with(&vm, 2 << 20, FREEHINT__MODE__DISCARD);
	assert_int_equal(vm_pass_policy(&vm, 4096).min_order, 4);
	assert_int_equal(vm_pass_policy(&vm, 4096).hold_ms, 0);
}

static void
test_hold(void **state)
{
	struct vm vm;
	struct pass_policy p;

	vm_with(&vm, 4096, FREEHINT__MODE__DISCARD);
	p = vm_pass_policy(&vm, 4096);
	assert_int_equal(p.hold_ms, 5000);
	assert_true(p.hold_bps > 0 && p.hold_bps < (1ULL << 20));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_auto_memfd, setup),
		cmocka_unit_test_setup(test_auto_hugetlbfs, setup),
		cmocka_unit_test_setup(test_auto_zero_in_guest, setup),
		cmocka_unit_test_setup(test_auto_no_guest_page, setup),
		cmocka_unit_test_setup(test_set_by_hand, setup),
		cmocka_unit_test_setup(test_hold, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The VM registry (host-daemon/vm.c) through what sources call
 * (vmsource.h): VMs added, found by name and CID, added again, refused,
 * removed; the memory map read through a fake monitor (hostd_fixture.h),
 * retried after a monitor that does not answer; the reasons status
 * shows. The pass policy has its own tests (test_hostd_passpolicy.c).
 * Each case gets a fresh fixture; the teardown is the one cleanup path.
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

#include "freehintd.h"
#include "hostd_fixture.h"

#define MiB (1ULL << 20)
/* Monitor commands of one map load of the fake (non-PC) VM. */
#define MAP_LOAD_CMDS 4

struct event_base *ev_base;
struct config *conf;

static int setup(void **);
static int teardown(void **);
static unsigned count_vms(void);
static struct vm *add(struct fake_qemu *, const char *, uint32_t);

static int
setup(void **state)
{
	struct fake_qemu *q;

	log_init("test_hostd_vm", 1, 0);
	q = calloc(1, sizeof *q);
	assert_non_null(q);
	assert_int_equal(fixture_daemon_start(0), 0);
	assert_int_equal(fake_qemu_init(q), 0);
	*state = q;
	return 0;
}

static int
teardown(void **state)
{
	struct fake_qemu *q = *state;

	fixture_daemon_end();
	assert_int_equal(count_vms(), 0);
	fake_qemu_free(q);
	free(q);
	return 0;
}

static unsigned
count_vms(void)
{
	struct vm *vm;
	unsigned n = 0;

	TAILQ_FOREACH(vm, &vms, entry)
		n++;
	return n;
}

static struct vm *
add(struct fake_qemu *q, const char *name, uint32_t cid)
{
	struct vm *vm;

	assert_int_equal(fake_vm_add(q, name, cid, NULL), 0);
	vm = vm_find(name);
	assert_non_null(vm);
	return vm;
}

/* Added, its map read at once (the monitor answers synchronously). */
static void
test_add_find_remove(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	vm = add(q, "a", 3);
	assert_non_null(vm);
	assert_ptr_equal(vm_find_cid(3), vm);
	assert_null(vm_find_cid(4));
	/* CID 0 is no CID. */
	assert_null(vm_find_cid(0));
	assert_null(vm_find("b"));
	assert_string_equal(vm->source, "static");
	assert_int_equal(vm->qemu_pid, getpid());
	assert_int_equal(vm->map.n, 1);
	assert_int_equal(memmap_ram_bytes(&vm->map), 16 * MiB);
	assert_int_equal(vm->map.kind, VM_BACKING_MEMFD);
	assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
	assert_string_equal(vm->mode_why, "shared memfd backing");
	assert_string_equal(vm_mode_name(vm->mode), "discard");
	assert_string_equal(vm_transport_name(vm->transport), "none");
	/* qom-get of the backend and of the machine type, info mtree -f,
	 * one gpa2hva. */
	assert_int_equal(q->nhmp, MAP_LOAD_CMDS);
	assert_int_equal(fake_vm_add(q, "b", 0, NULL), 0);
	assert_int_equal(count_vms(), 2);
	vm_source_remove("a");
	assert_null(vm_find("a"));
	assert_null(vm_find_cid(3));
	assert_non_null(vm_find("b"));
	/* Unknown: nothing happens. */
	vm_source_remove("a");
	assert_int_equal(count_vms(), 1);
}

/* The same name again is the same VM (a new QEMU): one entry, new data. */
static void
test_add_again(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	vm = add(q, "a", 3);
	vm_set_error(vm, "old trouble");
	assert_int_equal(fake_vm_add(q, "a", 5, NULL), 0);
	assert_int_equal(count_vms(), 1);
	assert_ptr_equal(vm_find("a"), vm);
	assert_int_equal(vm->cid, 5);
	assert_null(vm_find_cid(3));
	assert_ptr_equal(vm_find_cid(5), vm);
	/* The map was read again. */
	assert_int_equal(q->nhmp, 2 * MAP_LOAD_CMDS);
	assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
}

static void
test_add_refused(void **state)
{
	struct fake_qemu *q = *state;
	struct vm_desc d = { .name = "", .source = "static" };

	assert_int_equal(fake_vm_add(q, "a", 3, NULL), 0);
	/* Another VM's CID. */
	assert_int_equal(fake_vm_add(q, "b", 3, NULL), -1);
	assert_null(vm_find("b"));
	assert_ptr_equal(vm_find_cid(3), vm_find("a"));
	assert_int_equal(vm_source_add(&d, fake_hmp, q), -1);
	d.name = NULL;
	assert_int_equal(vm_source_add(&d, fake_hmp, q), -1);
	assert_int_equal(count_vms(), 1);
}

/* A VM that cannot be served says why; no monitor command is run. */
static void
test_unservable(void **state)
{
	struct fake_qemu *q = *state;
	struct vm_desc d = {
		.name = "u",
		.source = "libvirt",
		.unservable = "no shared memory: add <memoryBacking>",
	};
	struct vm *vm;

	assert_int_equal(vm_source_add(&d, fake_hmp, q), 0);
	vm = vm_find("u");
	assert_non_null(vm);
	assert_int_equal(q->nhmp, 0);
	assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
	assert_string_equal(vm->mode_why, d.unservable);
	assert_int_equal(vm->map.n, 0);
	assert_int_equal(vm_returned_bytes(vm), -1);
	/* A reset changes nothing for it. */
	vm_source_changed("u");
	assert_int_equal(q->nhmp, 0);
}

/* Control characters (an agent's words) never reach status raw. */
static void
test_set_error(void **state)
{
	struct fake_qemu *q = *state;
	char big[600];
	struct vm *vm;

	vm = add(q, "a", 0);
	vm_set_error(vm, "agent says: %s (%d)", "\x1b[31mred\x9b", 7);
	assert_string_equal(
	    vm->last_error, "agent says: \\x1b[31mred\\x9b (7)");
	memset(big, 'e', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	vm_set_error(vm, "%s", big);
	/* Cut to its buffer, still a string. */
	assert_int_equal(strlen(vm->last_error), sizeof vm->last_error - 1);
}

/*
 * A monitor that does not answer: record-only, status says why and
 * when the map is read again; it is, and the VM gets its mode.
 */
static void
test_map_retry(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	q->mute = true;
	vm = add(q, "a", 0);
	assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
	assert_string_equal(vm->mode_why,
	    "memory map: qom-get: the monitor does not answer (retrying in "
	    "1 s)");
	assert_string_equal(
	    vm->last_error, "memory map: qom-get: the monitor does not answer");
	assert_int_equal(vm->map.n, 0);
	q->mute = false;
	FIXTURE_SPIN_UNTIL(ev_base, vm->mode == FREEHINT__MODE__DISCARD);
	assert_int_equal(vm->map.n, 1);
	assert_string_equal(vm->mode_why, "shared memfd backing");
}

/* A map that names no RAM of the machine's block. */
static void
test_map_bad_mtree(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	snprintf(q->mtree, sizeof q->mtree,
	    "FlatView #0\n AS \"memory\", root: system\n"
	    "  0000000000000000-0000000000ffffff (prio 0, ram): pc.ram\n");
	vm = add(q, "a", 0);
	assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
	assert_string_equal(vm->last_error,
	    "memory map: memory map: no RAM region of block mem0");
}

/* A reset: the map is read again, the mode stays. */
static void
test_changed(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	vm = add(q, "a", 0);
	vm_source_changed("a");
	assert_int_equal(q->nhmp, 2 * MAP_LOAD_CMDS);
	assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
	/* Unknown: nothing. */
	vm_source_changed("nosuch");
	assert_int_equal(q->nhmp, 2 * MAP_LOAD_CMDS);
}

/* A device that DMAs into guest memory makes the VM record-only. */
static void
test_dma(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	vm = add(q, "a", 0);
	vm_source_dma("a", "hostdev 0000:01:00.0");
	assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
	assert_string_equal(vm->mode_why, "hostdev 0000:01:00.0");
	assert_true(vm_check_dma(vm));
	/* Forgotten; the map read at the next add decides again. */
	vm_source_dma("a", NULL);
	assert_false(vm_check_dma(vm));
	assert_int_equal(fake_vm_add(q, "a", 0, NULL), 0);
	assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
}

/* What the backing gives back now: RAM less what its file holds. */
static void
test_returned_bytes(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	vm = add(q, "a", 0);
	assert_int_equal(vm_returned_bytes(vm), 16 * MiB);
	memset(q->ram, 1, 4 * MiB);
	assert_int_equal(vm_returned_bytes(vm), 12 * MiB);
}

/* No agent: a hint pass cannot start, and says why. */
static void
test_hint_no_agent(void **state)
{
	struct fake_qemu *q = *state;
	char err[128] = "";
	struct vm *vm;

	vm = add(q, "a", 0);
	assert_int_equal(vm_hint(vm, err, sizeof err), -1);
	assert_true(strlen(err) > 0);
	assert_false(vm->pass_active);
	assert_int_equal(vm->pass_id, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_add_find_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_add_again, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_add_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unservable, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_set_error, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_map_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_map_bad_mtree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_returned_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_hint_no_agent, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

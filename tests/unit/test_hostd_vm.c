/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The VM registry (host-daemon/vm.c, vm_map.c) through what sources call
 * (vmsource.h): VMs added, found by name and CID, added again, refused,
 * removed; the memory map read through a fake monitor (hostd_fixture.h),
 * less a PC's SMRAM, retried after a monitor that does not answer; the
 * mode its backing allows; its QEMU's exit (a forked child); postcopy,
 * the VM's running state and its metadata's policy as its source says
 * them; the reasons status shows; the hint pass a VM gets
 * (vm_pass_policy), at most what its backing holds allocated (a real
 * memfd), refused where it cannot serve, and released.
 * Each case gets a fresh fixture; the teardown is the one cleanup path.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
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

/* The forked "QEMU" of the test that runs, or 0. */
static pid_t qemu_child;

static int setup(void **);
static int teardown(void **);
static unsigned count_vms(void);
static pid_t fork_qemu(void);
static void reap_qemu(void);

static int
setup(void **state)
{
	struct fake_qemu *q;

	q = xcalloc(1, sizeof *q);
	assert_int_equal(fixture_daemon_start("test_hostd_vm", 0), 0);
	assert_int_equal(fake_qemu_init(q), 0);
	*state = q;
	return 0;
}

static int
teardown(void **state)
{
	struct fake_qemu *q = *state;

	reap_qemu();
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

/* Added, its map read at once (the monitor answers synchronously). */
static void
test_add_find_remove(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	vm = fixture_vm(q, "a", 3, NULL);
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

	vm = fixture_vm(q, "a", 3, NULL);
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

	vm = fixture_vm(q, "a", 0, NULL);
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
	vm = fixture_vm(q, "a", 0, NULL);
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
	vm = fixture_vm(q, "a", 0, NULL);
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

	vm = fixture_vm(q, "a", 0, NULL);
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

	vm = fixture_vm(q, "a", 0, NULL);
	vm_source_dma("a", "hostdev 0000:01:00.0");
	assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
	assert_string_equal(vm->mode_why, "hostdev 0000:01:00.0");
	vm_check_dma(vm);
	assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
	/* Forgotten; the map read at the next add decides again. This
	 * process holds no such device: the check ends at once. */
	vm_source_dma("a", NULL);
	vm_check_dma(vm);
	assert_int_equal(vm->dma_checks, 0);
	assert_int_equal(fake_vm_add(q, "a", 0, NULL), 0);
	assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
}

/* What the backing gives back now: RAM less what its file holds. */
static void
test_returned_bytes(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	vm = fixture_vm(q, "a", 0, NULL);
	assert_int_equal(vm_returned_bytes(vm), 16 * MiB);
	memset(q->ram, 1, 4 * MiB);
	assert_int_equal(vm_returned_bytes(vm), 12 * MiB);
}

/* The map of a q35 machine: SMRAM (legacy, SMBASE, TSEG) is no RAM. */
static void
test_map_q35(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	q->machine = "\"pc-q35-7.2-machine\"\r\n";
	q->below_4g = "16777216\r\n";
	/* More than the 8 MiB TSEG can always be. */
	q->tseg_mb = "12\r\n";
	vm = fixture_vm(q, "a", 0, NULL);
	assert_string_equal(vm->last_error, "");
	assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
	assert_int_equal(vm->map.n, 3);
	assert_int_equal(vm->map.r[0].gpa, 0);
	assert_int_equal(vm->map.r[0].size, 0x30000);
	assert_int_equal(vm->map.r[1].gpa, 0x50000);
	assert_int_equal(vm->map.r[1].size, 0xa0000 - 0x50000);
	assert_int_equal(vm->map.r[2].gpa, 0xc0000);
	assert_int_equal(vm->map.r[2].size, 4 * MiB - 0xc0000);
	/* Each region at its place in the RAM block. */
	assert_int_equal(vm->map.r[2].file_off, 0xc0000);
	/* The backend, the machine type, below-4g, TSEG, info mtree -f and
	 * a gpa2hva for each region. */
	assert_int_equal(q->nhmp, 5 + 3);
}

/* i440fx: only the legacy SMRAM window is cut out. */
static void
test_map_i440fx(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	q->machine = "\"pc-i440fx-7.2-machine\"\r\n";
	vm = fixture_vm(q, "a", 0, NULL);
	assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
	assert_int_equal(vm->map.n, 2);
	assert_int_equal(vm->map.r[0].gpa, 0);
	assert_int_equal(vm->map.r[0].size, 0xa0000);
	assert_int_equal(vm->map.r[1].gpa, 0xc0000);
	assert_int_equal(vm->map.r[1].size, 16 * MiB - 0xc0000);
	assert_int_equal(q->nhmp, 3 + 2);
}

/* A q35 whose TSEG cannot be placed is not served: record-only. */
static void
test_map_q35_unknown(void **state)
{
	static const struct {
		const char *below_4g, *tseg_mb, *error;
	} c[] = {
		{ NULL, "8",
		    "memory map: q35: below-4g-mem-size unknown: "
		    "cannot tell where TSEG is" },
		{ "0", "8",
		    "memory map: q35: below-4g-mem-size unknown: "
		    "cannot tell where TSEG is" },
		{ "8589934592", "8",
		    "memory map: q35: below-4g-mem-size "
		    "unknown: cannot tell where TSEG is" },
		{ "16777216x", "8",
		    "memory map: q35: below-4g-mem-size "
		    "unknown: cannot tell where TSEG is" },
		{ "16777216", NULL,
		    "memory map: q35: extended-tseg-mbytes "
		    "unknown: cannot tell where TSEG is" },
		{ "16777216", "-1",
		    "memory map: q35: extended-tseg-mbytes "
		    "unknown: cannot tell where TSEG is" },
		{ "16777216", "4097",
		    "memory map: q35: extended-tseg-mbytes "
		    "unknown: cannot tell where TSEG is" },
		/* TSEG as large as the RAM below 4 GiB leaves none. */
		{ "16777216", "16",
		    "memory map: memory map: no RAM outside "
		    "SMRAM" },
	};
	struct fake_qemu *q = *state;
	struct vm *vm;
	size_t i;

	q->machine = "\"pc-q35-7.2-machine\"\r\n";
	for (i = 0; i < FH_ARRAY_SIZE(c); i++) {
		q->below_4g = c[i].below_4g;
		q->tseg_mb = c[i].tseg_mb;
		vm = fixture_vm(q, "a", 0, NULL);
		assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
		assert_int_equal(vm->map.n, 0);
		assert_string_equal(vm->last_error, c[i].error);
		vm_source_remove("a");
	}
}

/*
 * Private memory cannot be punched from outside QEMU: the guest zeroes
 * what it frees; no backing file, no count of what it holds.
 */
static void
test_map_anonymous(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	assert_ptr_equal(mmap(q->ram, FAKE_RAM_SIZE, PROT_READ | PROT_WRITE,
	                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
	    q->ram);
	vm = fixture_vm(q, "a", 0, NULL);
	assert_int_equal(vm->map.kind, VM_BACKING_ANONYMOUS);
	assert_int_equal(vm->map.n, 1);
	assert_int_equal(vm->map.r[0].fd, -1);
	assert_int_equal(vm->mode, FREEHINT__MODE__ZERO_IN_GUEST);
	assert_int_equal(vm->map_mode, FREEHINT__MODE__ZERO_IN_GUEST);
	assert_string_equal(vm->mode_why,
	    "private memory cannot be discarded from outside QEMU");
	assert_int_equal(vm_returned_bytes(vm), -1);
}

/*
 * A map read again that allows another mode ends the session, which
 * was told the old one; a VM without a channel dials nothing.
 */
static void
test_map_mode_change_restarts(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;
	int sv[2];

	vm = fixture_vm(q, "a", 3, NULL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_non_null(guest_new(vm, sv[0], VM_TRANSPORT_VSOCK));
	assert_ptr_not_equal(
	    mmap(q->ram, FAKE_RAM_SIZE, PROT_READ | PROT_WRITE,
	        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
	    MAP_FAILED);
	vm_source_changed("a");
	assert_int_equal(vm->map_mode, FREEHINT__MODE__ZERO_IN_GUEST);
	assert_null(vm->guest);
	assert_int_equal(vm->transport, VM_TRANSPORT_NONE);
	assert_null(vm->chan);
	close(sv[1]);
}

/* An agent that hangs up: a VM without a channel dials nothing. */
static void
test_guest_lost_no_channel(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;
	int sv[2];

	vm = fixture_vm(q, "a", 3, NULL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	evutil_make_socket_nonblocking(sv[0]);
	assert_non_null(guest_new(vm, sv[0], VM_TRANSPORT_VSOCK));
	close(sv[1]);
	FIXTURE_SPIN_UNTIL(ev_base, vm->guest == NULL);
	assert_null(vm->chan);
	assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
}

/*
 * A child that waits to be killed: the VM's "QEMU" (the teardown kills
 * one a failed test left). Skipped without pidfd_open (valgrind 3.19).
 */
static pid_t
fork_qemu(void)
{
	int fd;

	if ((fd = (int)syscall(SYS_pidfd_open, getpid(), 0)) == -1 &&
	    errno == ENOSYS)
		skip();
	assert_int_not_equal(fd, -1);
	close(fd);
	qemu_child = fork();
	assert_true(qemu_child != -1);
	if (qemu_child == 0) {
		for (;;)
			pause();
	}
	return qemu_child;
}

/* The child killed and reaped. */
static void
reap_qemu(void)
{
	int status;

	if (qemu_child <= 0)
		return;
	kill(qemu_child, SIGKILL);
	assert_int_equal(waitpid(qemu_child, &status, 0), qemu_child);
	qemu_child = 0;
}

/*
 * QEMU exits under a VM its source still lists: the backing is closed
 * and the VM is record-only, saying why, until the source adds it again.
 */
static void
test_qemu_exited(void **state)
{
	struct fake_qemu *q = *state;
	struct vm_desc d = fake_vm_desc("a", 0, NULL);
	char why[64];
	struct vm *vm;

	d.qemu_pid = fork_qemu();
	vm = fixture_vm_desc(q, &d);
	/* The child shares the memfd mapping: its backing is found. */
	assert_int_equal(vm->map.kind, VM_BACKING_MEMFD);
	assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
	assert_int_not_equal(vm->qemu_pidfd, -1);
	assert_int_equal(kill(d.qemu_pid, SIGKILL), 0);
	FIXTURE_SPIN_UNTIL(ev_base, vm->qemu_gone);
	reap_qemu();
	snprintf(why, sizeof why, "QEMU process %d exited", (int)d.qemu_pid);
	assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
	assert_int_equal(vm->map_mode, FREEHINT__MODE__RECORD_ONLY);
	assert_int_equal(vm->map.kind, VM_BACKING_UNKNOWN);
	assert_int_equal(vm->map.r[0].fd, -1);
	assert_string_equal(vm->mode_why, why);
	assert_string_equal(vm->map_why, why);
	assert_int_equal(vm->qemu_pid, 0);
	assert_int_equal(vm->qemu_pidfd, -1);
	/* A reset reads nothing of a QEMU that is gone. */
	q->nhmp = 0;
	vm_source_changed("a");
	assert_int_equal(q->nhmp, 0);
	/* Its source adds it again with a new QEMU: served again. */
	assert_int_equal(fake_vm_add(q, "a", 0, NULL), 0);
	assert_false(vm->qemu_gone);
	assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
}

/* A QEMU already gone when the VM is added: no map is read at all. */
static void
test_qemu_gone_at_add(void **state)
{
	struct fake_qemu *q = *state;
	struct vm_desc d = fake_vm_desc("a", 0, NULL);
	char why[64];
	struct vm *vm;

	d.qemu_pid = fork_qemu();
	reap_qemu();
	vm = fixture_vm_desc(q, &d);
	snprintf(why, sizeof why, "QEMU process %d exited", (int)d.qemu_pid);
	assert_true(vm->qemu_gone);
	assert_int_equal(q->nhmp, 0);
	assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
	assert_string_equal(vm->mode_why, why);
	assert_int_equal(vm->map.n, 0);
}

/*
 * Postcopy on the destination: no discard from its start until it is
 * over; a guest that runs here meanwhile changes nothing.
 */
static void
test_postcopy_destination(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	vm = fixture_vm(q, "a", 0, NULL);
	assert_null(vm->nodiscard_why);
	vm_source_migration("a", VM_MIGRATION_POSTCOPY);
	assert_true(vm->postcopy);
	assert_string_equal(vm->nodiscard_why,
	    "postcopy migration: no discard until it completes");
	vm_source_running("a", true);
	assert_string_equal(vm->nodiscard_why,
	    "postcopy migration: no discard until it completes");
	vm_source_migration("a", VM_MIGRATION_FINISHED);
	assert_false(vm->postcopy);
	assert_null(vm->nodiscard_why);
	/* Unknown VMs: nothing. */
	vm_source_migration("nosuch", VM_MIGRATION_POSTCOPY);
	vm_source_running("nosuch", false);
}

/*
 * Postcopy on the source: over, the guest runs elsewhere, no discard;
 * until the guest is started here again (a failed migration).
 */
static void
test_postcopy_source(void **state)
{
	struct fake_qemu *q = *state;
	struct vm *vm;

	vm = fixture_vm(q, "a", 0, NULL);
	/* Stopped without a migration: nothing to say. */
	vm_source_running("a", false);
	assert_null(vm->nodiscard_why);
	vm_source_migration("a", VM_MIGRATION_POSTCOPY);
	vm_source_migration("a", VM_MIGRATION_FINISHED);
	assert_false(vm->postcopy);
	assert_string_equal(vm->nodiscard_why,
	    "postcopy migration over: the guest does not run on this QEMU");
	vm_source_running("a", true);
	assert_true(vm->running);
	assert_null(vm->nodiscard_why);
}

/* The policy a VM carries in its metadata; a bad one changes nothing. */
static void
test_policy_metadata(void **state)
{
	struct fake_qemu *q = *state;
	struct policy p;
	struct vm *vm;

	vm = fixture_vm(q, "a", 0, NULL);
	vm_source_policy("a",
	    "<policy xmlns='" FREEHINT_XMLNS "'><min-order>3</min-order>"
	    "</policy>");
	vm_policy(vm, &p);
	assert_int_equal(p.min_order, 3);
	assert_string_equal(vm->last_error, "");
	vm_source_policy("a", "<policy");
	vm_policy(vm, &p);
	assert_int_equal(p.min_order, 3);
	assert_true(strncmp(vm->last_error, "policy not changed: ", 20) == 0);
	assert_true(strlen(vm->last_error) > 20);
	/* None any more: the daemon's own. */
	vm_source_policy("a", NULL);
	vm_policy(vm, &p);
	assert_int_equal(p.min_order, conf->policy.min_order);
	assert_int_not_equal(p.min_order, 3);
	/* Unknown: nothing. */
	vm_source_policy("nosuch", "<policy");
}

/* An agent on a socketpair that never says Hello; the peer's end. */
static int
silent_agent(struct vm *vm)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	evutil_make_socket_nonblocking(sv[0]);
	assert_non_null(guest_new(vm, sv[0], VM_TRANSPORT_VSOCK));
	return sv[1];
}

/* A pass is refused, saying why, where it could not serve. */
static void
test_hint_refused(void **state)
{
	struct fake_qemu *q = *state;
	char err[256];
	struct vm *vm;
	int fd;

	/* Record-only: the map could not be read. */
	q->mute = true;
	vm = fixture_vm(q, "a", 0, NULL);
	fd = silent_agent(vm);
	assert_int_equal(vm_hint(vm, err, sizeof err), -1);
	assert_string_equal(err,
	    "record-only: memory map: qom-get: the monitor does not answer "
	    "(retrying in 1 s)");
	/* No map, yet a mode (what a session was told): defensive only,
	 * no source reaches it. */
	vm->mode = FREEHINT__MODE__ZERO_IN_GUEST;
	assert_int_equal(vm_hint(vm, err, sizeof err), -1);
	assert_string_equal(err, "the memory map is not read yet");
	vm_source_remove("a");
	close(fd);

	/* A map, but a backing that holds nothing yet. */
	q->mute = false;
	vm = fixture_vm(q, "a", 0, NULL);
	fd = silent_agent(vm);
	assert_int_equal(vm_hint(vm, err, sizeof err), -1);
	assert_string_equal(
	    err, "the backing holds no memory: nothing to capture");
	/* All there but the agent's Hello. */
	memset(q->ram, 1, 4 * MiB);
	assert_int_equal(vm_hint(vm, err, sizeof err), -1);
	assert_string_equal(err, "the agent has not said Hello yet");
	assert_int_equal(vm->pass_id, 0);
	assert_int_equal(vm->counters.passes, 0);
	assert_false(vm->pass_active);
	close(fd);
}

/* A pass the registry takes as running, as vm_hint leaves one. */
static void
pass_running(struct vm *vm, uint64_t id, uint64_t held)
{
	vm->pass_active = true;
	vm->pass_done = false;
	vm->pass_id = id;
	vm->pass_started_ms = fh_monotonic_ms();
	vm->held_bytes = held;
}

/* The pass is over and nothing is counted as held. */
static void
assert_pass_over(const struct vm *vm)
{
	assert_false(vm->pass_active);
	assert_true(vm->pass_done);
	assert_int_equal(vm->held_bytes, 0);
}

/* A VM with an agent that says nothing, and a pass running. */
static struct vm *
vm_in_pass(struct fake_qemu *q, uint64_t id, uint64_t held, int *agent)
{
	struct vm *vm;

	vm = fixture_vm(q, "a", 0, NULL);
	*agent = silent_agent(vm);
	pass_running(vm, id, held);
	return vm;
}

/* A second request while a pass holds is that pass: no new one. */
static void
test_hint_pass_active(void **state)
{
	struct fake_qemu *q = *state;
	char err[256] = "";
	struct vm *vm;
	int fd;

	vm = vm_in_pass(q, 4, 0, &fd);
	assert_int_equal(vm_hint(vm, err, sizeof err), 0);
	assert_string_equal(err, "");
	assert_int_equal(vm->pass_id, 4);
	assert_int_equal(vm->counters.passes, 0);
	assert_true(vm->pass_active);
	/* One past the agent's own limit is over: released here too. */
	vm->held_bytes = MiB;
	vm->pass_started_ms = fh_monotonic_ms() - FREEHINTD_PASS_TIMEOUT_MS;
	assert_false(vm_pass_active(vm));
	assert_pass_over(vm);
	close(fd);
}

/* Released: the pass is over whether or not the agent hears it. */
static void
test_release_pass_active(void **state)
{
	struct fake_qemu *q = *state;
	char err[256] = "";
	struct vm *vm;
	int fd;

	vm = vm_in_pass(q, 2, 4 * MiB, &fd);
	/* No Hello yet: the Release cannot be sent. */
	assert_int_equal(vm_release(vm, err, sizeof err), -1);
	assert_pass_over(vm);
	assert_int_equal(vm->pass_id, 2);
	close(fd);
	FIXTURE_SPIN_UNTIL(ev_base, vm->guest == NULL);
	/* No agent: the same, and says so. */
	pass_running(vm, 2, MiB);
	assert_int_equal(vm_release(vm, err, sizeof err), -1);
	assert_string_equal(err, "no agent connected");
	assert_pass_over(vm);
}

/* No agent: a hint pass cannot start, and says why. */
static void
test_hint_no_agent(void **state)
{
	struct fake_qemu *q = *state;
	char err[128] = "";
	struct vm *vm;

	vm = fixture_vm(q, "a", 0, NULL);
	assert_int_equal(vm_hint(vm, err, sizeof err), -1);
	assert_true(strlen(err) > 0);
	assert_false(vm->pass_active);
	assert_int_equal(vm->pass_id, 0);
}

/* A VM outside the registry whose two regions are backed by pages of
 * pagesz (none: private memory), in mode. */
static void
vm_with(struct vm *vm, struct memregion regs[2], uint64_t pagesz,
    Freehint__Mode mode)
{
	memset(vm, 0, sizeof *vm);
	memset(regs, 0, 2 * sizeof *regs);
	regs[0].fd = regs[1].fd = pagesz != 0 ? 3 : -1;
	regs[0].pagesz = regs[1].pagesz = pagesz;
	vm->map.r = regs;
	vm->map.n = 2;
	vm->mode = mode;
}

/*
 * hint-min-order "auto": blocks of every order the backing
 * can discard, one host page; private memory is zeroed in the guest, any
 * order; before the Hello (no guest page size yet), never above what
 * auto gives.
 */
static void
test_pass_auto(void **state)
{
	static const struct {
		uint64_t pagesz;
		Freehint__Mode mode;
		uint32_t guest_page, order;
	} c[] = {
		{ 4096, FREEHINT__MODE__DISCARD, 4096, 0 },
		{ 2 << 20, FREEHINT__MODE__DISCARD, 4096, 9 },
		{ 1 << 30, FREEHINT__MODE__DISCARD, 4096, 18 },
		{ 0, FREEHINT__MODE__ZERO_IN_GUEST, 4096, 0 },
		{ 2 << 20, FREEHINT__MODE__DISCARD, 0, 0 },
	};
	struct memregion regs[2];
	struct vm vm;
	size_t i;

	conf->policy.hint_min_order = FREEHINTD_ORDER_AUTO;
	for (i = 0; i < FH_ARRAY_SIZE(c); i++) {
		vm_with(&vm, regs, c[i].pagesz, c[i].mode);
		assert_int_equal(
		    vm_pass_policy(&vm, c[i].guest_page).min_order, c[i].order);
	}
}

/* An order set by hand is kept; so is a hold of 0 ms. */
static void
test_pass_set_by_hand(void **state)
{
	struct memregion regs[2];
	struct vm vm;

	conf->policy.hint_min_order = 4;
	conf->policy.migration_hold_ms = 0;
	vm_with(&vm, regs, 2 << 20, FREEHINT__MODE__DISCARD);
	assert_int_equal(vm_pass_policy(&vm, 4096).min_order, 4);
	assert_int_equal(vm_pass_policy(&vm, 4096).hold_ms, 0);
}

/* The hold's bound comes from migration-hold-ms. */
static void
test_pass_hold(void **state)
{
	struct memregion regs[2];
	struct pass_policy p;
	struct vm vm;

	conf->policy.migration_hold_ms = 5000;
	vm_with(&vm, regs, 4096, FREEHINT__MODE__DISCARD);
	p = vm_pass_policy(&vm, 4096);
	assert_int_equal(p.hold_ms, 5000);
	assert_true(p.hold_bps > 0 && p.hold_bps < (1ULL << 20));
}

#define MIB (1ULL << 20)

/*
 * A 64 MiB memfd as two regions (each through its own fd, as the map
 * opens them) of which touched bytes are allocated.
 */
static void
vm_memfd(struct vm *vm, struct memregion regs[2], uint64_t touched)
{
	char *p;
	int fd;

	vm_with(vm, regs, 4096, FREEHINT__MODE__DISCARD);
	fd = memfd_create("test_hostd_vm", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 64 * MIB), 0);
	if (touched != 0) {
		p = mmap(NULL, touched, PROT_WRITE, MAP_SHARED, fd, 0);
		assert_true(p != MAP_FAILED);
		memset(p, 1, touched);
		munmap(p, touched);
	}
	regs[0].fd = fd;
	regs[0].size = 16 * MIB;
	regs[1].fd = dup(fd);
	assert_true(regs[1].fd >= 0);
	regs[1].size = 48 * MIB;
	regs[1].file_off = 16 * MIB;
}

static void
vm_memfd_close(struct memregion regs[2])
{
	close(regs[0].fd);
	close(regs[1].fd);
}

/* The pass captures at most what the backing holds, counted once. */
static void
test_pass_limit_allocated(void **state)
{
	struct memregion regs[2];
	struct vm vm;

	vm_memfd(&vm, regs, 8 * MIB);
	assert_int_equal(vm_allocated_bytes(&vm), 8 * MIB);
	assert_int_equal(vm_pass_byte_limit(&vm), 8 * MIB);
	assert_int_equal(vm_returned_bytes(&vm), 56 * MIB);
	vm_memfd_close(regs);
	/* Less allocated, a smaller limit (the pass's order plays no part). */
	vm_memfd(&vm, regs, 2 * MIB);
	assert_int_equal(vm_pass_byte_limit(&vm), 2 * MIB);
	vm_memfd_close(regs);
}

/* All of it allocated: the guest's RAM; a backing that holds nothing: 0
 * (vm_hint refuses such a pass: 0 would be no limit to the agent). */
static void
test_pass_limit_full_and_empty(void **state)
{
	struct memregion regs[2];
	struct vm vm;

	vm_memfd(&vm, regs, 64 * MIB);
	assert_int_equal(vm_pass_byte_limit(&vm), 64 * MIB);
	vm_memfd_close(regs);
	vm_memfd(&vm, regs, 0);
	assert_int_equal(vm_pass_byte_limit(&vm), 0);
	vm_memfd_close(regs);
}

/* No backing file (private memory): no count, the RAM is the limit. */
static void
test_pass_limit_no_backing(void **state)
{
	struct memregion regs[2];
	struct vm vm;

	vm_with(&vm, regs, 0, FREEHINT__MODE__ZERO_IN_GUEST);
	regs[0].size = regs[1].size = 32 * MIB;
	assert_int_equal(vm_allocated_bytes(&vm), -1);
	assert_int_equal(vm_pass_byte_limit(&vm), 64 * MIB);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		UNIT_FX(test_add_find_remove),
		UNIT_FX(test_add_again),
		UNIT_FX(test_add_refused),
		UNIT_FX(test_unservable),
		UNIT_FX(test_set_error),
		UNIT_FX(test_map_retry),
		UNIT_FX(test_map_bad_mtree),
		UNIT_FX(test_changed),
		UNIT_FX(test_dma),
		UNIT_FX(test_returned_bytes),
		UNIT_FX(test_hint_no_agent),
		UNIT_FX(test_map_q35),
		UNIT_FX(test_map_i440fx),
		UNIT_FX(test_map_q35_unknown),
		UNIT_FX(test_map_anonymous),
		UNIT_FX(test_map_mode_change_restarts),
		UNIT_FX(test_guest_lost_no_channel),
		UNIT_FX(test_qemu_exited),
		UNIT_FX(test_qemu_gone_at_add),
		UNIT_FX(test_postcopy_destination),
		UNIT_FX(test_postcopy_source),
		UNIT_FX(test_policy_metadata),
		UNIT_FX(test_hint_refused),
		UNIT_FX(test_hint_pass_active),
		UNIT_FX(test_release_pass_active),
		UNIT_FX(test_pass_auto),
		UNIT_FX(test_pass_set_by_hand),
		UNIT_FX(test_pass_hold),
		UNIT_FX(test_pass_limit_allocated),
		UNIT_FX(test_pass_limit_full_and_empty),
		UNIT_FX(test_pass_limit_no_backing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The interface between freehintd's VM registry (vm.c) and the sources
 * that know which VMs exist: static configuration with a QMP socket
 * (qmp.c) and libvirt (libvirt.c). A source describes a VM, gives a way to
 * run read-only human monitor commands on it, and reports migrations; the
 * registry does everything else (memory map, backing, guests, discards).
 */
#ifndef FREEHINT_VMSOURCE_H
#define FREEHINT_VMSOURCE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum vm_backing_kind {
	VM_BACKING_UNKNOWN = 0, /* find out from /proc/PID/maps */
	VM_BACKING_MEMFD,
	VM_BACKING_FILE,
	VM_BACKING_HUGETLBFS,
	VM_BACKING_ANONYMOUS /* private: cannot be discarded from outside */
};

struct vm_desc {
	const char *name; /* unique; the libvirt domain name */
	const char *source; /* "static" or "libvirt" */
	uint32_t cid; /* vsock CID, 0 when none */
	const char *channel; /* unix socket of the virtio-serial chardev */
	/* The channel's listener must be the QEMU process itself (libvirt:
	 * QEMU binds it); otherwise a process of QEMU's user (a static VM's
	 * channel may be served by a helper). */
	bool channel_qemu;
	pid_t qemu_pid; /* 0: find it (SO_PEERCRED on QMP) */
	enum vm_backing_kind backing; /* what the domain XML says, if known */
	bool shared; /* memory backing is shared (MAP_SHARED) */
	const char *unservable; /* why it cannot be served, with the fix */
};

/*
 * Runs one human monitor command ("info mtree -f", "gpa2hva 0x...") and
 * calls done exactly once with its output (borrowed: valid during the
 * call), or with NULL when it failed. done may be called before the
 * function returns (a synchronous source) or later from the event loop
 * (the QMP client): a source never blocks the loop waiting for QEMU, and
 * fails a command QEMU does not answer in time. Must not change any
 * state of the VM.
 */
typedef void (*vm_hmp_done)(void *arg, const char *out);
typedef void (*vm_hmp_fn)(
    void *ctx, const char *cmd, vm_hmp_done done, void *arg);

/*
 * Sets the running migration's bandwidth to bps bytes a second, when the
 * bandwidth in force is at most ceiling (UINT64_MAX: always), and calls
 * done exactly once with the bandwidth in force before (bytes a second),
 * or with -1 when QEMU did not answer or did not take it. Above ceiling
 * nothing is set: was > ceiling says so. Like vm_hmp_fn, done may be
 * called before the function returns; the loop never waits.
 */
typedef void (*vm_speed_done)(void *arg, int64_t was);
typedef void (*vm_speed_fn)(
    void *ctx, uint64_t bps, uint64_t ceiling, vm_speed_done done, void *arg);

enum vm_migration_event {
	VM_MIGRATION_STARTED, /* ask the guest for a hint pass */
	VM_MIGRATION_FINISHED, /* completed, failed or cancelled: release */
	/*
	 * Postcopy has begun (postcopy-active, -paused, -recover), on either
	 * side: the guest's RAM is split between source and destination,
	 * and no hole may be punched in this QEMU's until the migration is
	 * over and the guest runs here (vm_source_running).
	 */
	VM_MIGRATION_POSTCOPY,
};

/* Called by sources (vmsource.c). The registry copies what it keeps. */
int vm_source_add(const struct vm_desc *, vm_hmp_fn, void *ctx);
void vm_source_remove(const char *name);
void vm_source_migration(const char *name, enum vm_migration_event);
/*
 * The source knows of a device that DMAs into the VM's memory (libvirt:
 * a <hostdev> or a vDPA interface in the domain XML): why says which, and
 * the VM is record-only from now on. NULL forgets it (the device was
 * removed); the map is read again at the next vm_source_add.
 */
void vm_source_dma(const char *name, const char *why);
/*
 * The policy the VM carries (libvirt: freehint's element in the domain's
 * <metadata>, docs/libvirt.md), as XML; NULL when it carries none. Read
 * whenever the source reads the VM, so it follows the VM when it moves.
 */
void vm_source_policy(const char *name, const char *xml);
/* The namespace of freehint's element in a domain's <metadata>. */
#define FREEHINT_XMLNS "https://freehint.org/xmlns/libvirt/1"
/*
 * The source can set the migration's bandwidth (after vm_source_add, with
 * its ctx): the registry holds it down while a migration's hint pass runs.
 */
void vm_source_speed(const char *name, vm_speed_fn, void *ctx);
/* The guest's vCPUs run on this QEMU (QMP RESUME), or stopped (STOP). */
void vm_source_running(const char *name, bool running);
/* The memory map may have changed (a reset): read it again. */
void vm_source_changed(const char *name);

/*
 * Where the sources' calls go (vmsource.c): the registry (vm.c) when it
 * is in this process; in freehintd's privileged parent, the worker that
 * holds it (ps_parent.c).
 */
struct vm_sink {
	int (*add)(const struct vm_desc *, vm_hmp_fn, void *);
	void (*remove)(const char *);
	void (*migration)(const char *, enum vm_migration_event);
	void (*dma)(const char *, const char *);
	void (*policy)(const char *, const char *);
	void (*speed)(const char *, vm_speed_fn, void *);
	void (*running)(const char *, bool);
	void (*changed)(const char *);
};
extern const struct vm_sink vm_registry;
extern const struct vm_sink *vm_sink;

#endif

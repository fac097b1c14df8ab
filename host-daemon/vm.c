/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The VM registry: the VMs freehintd serves, kept as their sources
 * (static configuration, libvirt) report them: added, changed, migrating,
 * removed, their QEMU gone; the mode each is served in and why, its hint
 * passes and its counters. Its memory map is read by vm_map.c.
 */
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "freehintd.h"

struct vm_list vms = TAILQ_HEAD_INITIALIZER(vms);

static struct vm *vm_new(const char *);
static void vm_free(struct vm *);
static void vm_watch_qemu(struct vm *);
static void vm_unwatch_qemu(struct vm *);
static void vm_qemu_exited(evutil_socket_t, short, void *);
static void vm_postcopy(struct vm *, enum vm_migration_event);
static int registry_add(const struct vm_desc *, vm_hmp_fn, void *);
static void registry_remove(const char *);
static void registry_migration(const char *, enum vm_migration_event);
static void registry_dma(const char *, const char *);
static void registry_policy(const char *, const char *);
static void registry_speed(const char *, vm_speed_fn, void *);
static void registry_running(const char *, bool);
static void registry_changed(const char *);
static void vm_dma_checked(void *, int, const char *);

/* A VM's string replaced by a copy of src (NULL: none). */
void
vm_set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src != NULL ? xstrdup(src) : NULL;
}

struct vm *
vm_find(const char *name)
{
	struct vm *vm;

	TAILQ_FOREACH(vm, &vms, entry)
		if (strcmp(vm->name, name) == 0)
			return vm;
	return NULL;
}

struct vm *
vm_find_cid(uint32_t cid)
{
	struct vm *vm;

	if (cid == 0)
		return NULL;
	TAILQ_FOREACH(vm, &vms, entry)
		if (vm->cid == cid)
			return vm;
	return NULL;
}

const char *
vm_mode_name(Freehint__Mode mode)
{
	switch (mode) {
	case FREEHINT__MODE__DISCARD:
		return "discard";
	case FREEHINT__MODE__ZERO_IN_GUEST:
		return "zero-in-guest";
	case FREEHINT__MODE__RECORD_ONLY:
		return "record-only";
	default:
		return "none";
	}
}

const char *
vm_transport_name(enum vm_transport t)
{
	switch (t) {
	case VM_TRANSPORT_CHANNEL:
		return "virtio-serial";
	case VM_TRANSPORT_VSOCK:
		return "vsock";
	case VM_TRANSPORT_NONE:
		break;
	}
	return "none";
}

/*
 * The error shown by status and logged. Its text may come from the guest
 * (an agent's error detail, a rejected batch): stored as printable ASCII
 * (\xNN for the rest, so no terminal escape reaches freehintctl), logged
 * at a bounded rate per VM.
 */
void
vm_set_error(struct vm *vm, const char *fmt, ...)
{
	char raw[sizeof vm->last_error];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	fh_strvis(vm->last_error, sizeof vm->last_error, raw);
	log_warnx_rl(&vm->error_rl, "vm %s: %s", vm->name, vm->last_error);
}

static struct vm *
vm_new(const char *name)
{
	struct vm *vm;

	vm = xcalloc(1, sizeof *vm);
	vm->name = xstrdup(name);
	memmap_init(&vm->map);
	vm->mode = FREEHINT__MODE__RECORD_ONLY;
	vm->qemu_pidfd = -1;
	vm->running = true;
	vm->pq = punchq_new(guest_punch_done, vm);
	TAILQ_INSERT_TAIL(&vms, vm, entry);
	return vm;
}

static void
vm_free(struct vm *vm)
{
	TAILQ_REMOVE(&vms, vm, entry);
	vm_unwatch_qemu(vm);
	vm_map_cancel(vm);
	mighold_end(vm, NULL);
	if (vm->map_retry != NULL)
		event_free(vm->map_retry);
	chan_stop(vm);
	if (vm->guest != NULL)
		guest_free(vm->guest);
	/* What is still punched ends on the workers' own fds, uncounted. */
	punchq_free(vm->pq);
	memmap_free(&vm->map);
	free(vm->name);
	free(vm->source);
	free(vm->channel);
	free(vm->unservable);
	free(vm->dma_why);
	free(vm->nodiscard_why);
	free(vm->mode_why);
	free(vm->map_why);
	free(vm);
}

/*
 * The VM's agent session is over. The registry owns the guest and says
 * what comes next: a channel it started (vm_map_settled: a servable VM
 * with one) is dialled again after a backoff; a vsock agent calls back
 * by itself, and a VM whose channel is not started yet gets it when its
 * map is read.
 */
void
vm_guest_lost(struct vm *vm)
{
	if (vm->chan == NULL)
		return;
	chan_lost(vm);
}

/*
 * A device that DMAs into guest memory (VFIO, vDPA) keeps using pages
 * after their hole is punched: the VM is record-only while QEMU holds
 * one (checked when the map is read and at every Hello, for hot-plugged
 * devices) or its source says it has one. Until the answer is back
 * (priv_dma), nothing of the VM is punched (guest.c).
 */
void
vm_check_dma(struct vm *vm)
{
	if (vm->dma_why != NULL) {
		vm_dma_found(vm, vm->dma_why);
		return;
	}
	if (vm->qemu_pid <= 0)
		return;
	vm->dma_checks++;
	priv_dma(vm, vm_dma_checked, xstrdup(vm->name));
}

static void
vm_dma_checked(void *arg, int rc, const char *why)
{
	char *name = arg;
	struct vm *vm;

	if ((vm = vm_find(name)) != NULL) {
		if (vm->dma_checks > 0)
			vm->dma_checks--;
		if (rc == 1)
			vm_dma_found(vm, why);
		if (vm->guest != NULL)
			guest_devices_checked(vm->guest);
	}
	free(name);
}

void
vm_dma_found(struct vm *vm, const char *why)
{
	if (vm->map_mode == FREEHINT__MODE__RECORD_ONLY &&
	    vm->map_why != NULL && strcmp(vm->map_why, why) == 0)
		return;
	log_warnx("vm %s: record-only: %s", vm->name, why);
	vm->map_mode = vm->mode = FREEHINT__MODE__RECORD_ONLY;
	vm_set_str(&vm->map_why, why);
	vm_set_str(&vm->mode_why, why);
	if (vm->guest != NULL)
		guest_record_only(vm->guest);
}

static void
registry_dma(const char *name, const char *why)
{
	struct vm *vm;

	if ((vm = vm_find(name)) == NULL)
		return;
	vm_set_str(&vm->dma_why, why);
	if (why != NULL)
		vm_check_dma(vm);
}

static void
vm_unwatch_qemu(struct vm *vm)
{
	if (vm->qemu_exit != NULL)
		event_free(vm->qemu_exit);
	vm->qemu_exit = NULL;
	if (vm->qemu_pidfd != -1)
		close(vm->qemu_pidfd);
	vm->qemu_pidfd = -1;
	vm->qemu_gone = false;
}

/*
 * A pidfd on the QEMU process: it reads as ready when the process exits,
 * whether or not the source notices (libvirt may be disconnected, a
 * monitor may outlive its process), and it names that very process
 * where a pid could be reused (memmap_resolve).
 */
static void
vm_watch_qemu(struct vm *vm)
{
	vm_unwatch_qemu(vm);
	if (vm->qemu_pid <= 0)
		return;
	vm->qemu_pidfd = (int)syscall(SYS_pidfd_open, vm->qemu_pid, 0);
	if (vm->qemu_pidfd == -1) {
		if (errno == ESRCH) {
			vm_qemu_exited(-1, 0, vm);
			return;
		}
		log_warn("vm %s: pidfd_open %d", vm->name, (int)vm->qemu_pid);
		return;
	}
	vm->qemu_exit =
	    event_new(ev_base, vm->qemu_pidfd, EV_READ, vm_qemu_exited, vm);
	if (vm->qemu_exit == NULL || event_add(vm->qemu_exit, NULL) != 0)
		fatalx("%s: event_new", __func__);
}

/*
 * QEMU is gone: its RAM is no guest's any more, and a new guest (with
 * its CID, say) must never be served against this map. The backing fds
 * are closed at once, so that the dead VM's memory is freed; the VM is
 * record-only until its source announces a new QEMU.
 */
static void
vm_qemu_exited(evutil_socket_t fd, short what, void *arg)
{
	struct vm *vm = arg;
	char why[96];

	snprintf(why, sizeof why, "QEMU process %d exited", (int)vm->qemu_pid);
	log_info("vm %s: %s: backing closed, record-only", vm->name, why);
	vm_unwatch_qemu(vm);
	vm->qemu_gone = true;
	vm->qemu_pid = 0;
	vm_map_cancel(vm);
	memmap_drop_fds(&vm->map);
	vm->map.kind = VM_BACKING_UNKNOWN;
	vm->map_mode = vm->mode = FREEHINT__MODE__RECORD_ONLY;
	vm_set_str(&vm->map_why, why);
	vm_set_str(&vm->mode_why, why);
	if (vm->guest != NULL)
		guest_record_only(vm->guest);
}

static int
registry_add(const struct vm_desc *d, vm_hmp_fn hmp, void *ctx)
{
	struct vm *vm, *other;

	if (d->name == NULL || *d->name == '\0')
		return -1;
	if (d->cid != 0 && (other = vm_find_cid(d->cid)) != NULL &&
	    strcmp(other->name, d->name) != 0) {
		log_warnx("vm %s: cid %u already belongs to %s", d->name,
		    d->cid, other->name);
		return -1;
	}
	if ((vm = vm_find(d->name)) == NULL)
		vm = vm_new(d->name);
	/* A new QEMU: the old one's bandwidth is not ours to restore. */
	if (vm->mighold != NULL)
		mighold_end(vm, NULL);
	if (vm->guest != NULL) {
		/* QEMU may have restarted: a new map, a new session. */
		guest_free(vm->guest);
		vm->guest = NULL;
		vm->transport = VM_TRANSPORT_NONE;
	}
	vm_set_str(&vm->source, d->source);
	vm_set_str(&vm->unservable, d->unservable);
	vm->cid = d->cid;
	vm->qemu_pid = d->qemu_pid;
	vm->channel_qemu = d->channel_qemu;
	vm_watch_qemu(vm);
	/* A new QEMU (or the same one again): no migration known yet. */
	vm->postcopy = false;
	vm->running = true;
	vm_set_str(&vm->nodiscard_why, NULL);
	vm->hmp = hmp;
	vm->hmp_ctx = ctx;
	vm->speed = NULL;
	vm->speed_ctx = NULL;
	vm->pass_active = false;
	vm->held_bytes = 0;
	if (d->channel == NULL || vm->channel == NULL ||
	    strcmp(d->channel, vm->channel) != 0) {
		chan_stop(vm);
		vm_set_str(&vm->channel, d->channel);
	}
	/* The channel starts once the map is read (vm_map_settled). */
	vm->map_backoff_ms = 0;
	vm_load_map(vm, true);
	return 0;
}

/* A reset: read the map again; the old one serves meanwhile. */
static void
vm_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	char *name = arg;

	vm_source_changed(name);
	free(name);
}

/*
 * Read the map again once the caller has returned: a new agent may come
 * after a reboot, a memory device or a migration changed it, and reading
 * it may end in a new mode, which can end the very session that asked.
 */
void
vm_refresh_later(struct vm *vm)
{
	struct timeval tv = { 0, 0 };
	char *name = xstrdup(vm->name);

	if (event_base_once(
	        ev_base, -1, EV_TIMEOUT, vm_refresh_cb, name, &tv) != 0) {
		log_warnx("vm %s: cannot schedule a map refresh", vm->name);
		free(name);
	}
}

static void
registry_changed(const char *name)
{
	struct vm *vm;

	if ((vm = vm_find(name)) == NULL || vm->unservable != NULL)
		return;
	log_info("vm %s: reading the memory map again", name);
	vm_load_map(vm, false);
}

static void
registry_remove(const char *name)
{
	struct vm *vm;

	if ((vm = vm_find(name)) != NULL) {
		log_info("vm %s: removed", name);
		vm_free(vm);
	}
}

void
vm_remove_all(void)
{
	while (!TAILQ_EMPTY(&vms))
		vm_free(TAILQ_FIRST(&vms));
}

/*
 * Postcopy: from its start the guest runs on the destination while pages
 * are still fetched from the source. On the destination a hole punched
 * in a page already received would never be filled again (the vCPU
 * would read zeroes or stall); on the source the RAM is no longer the
 * guest's, and a hole there is sent to the destination as zeroes. So
 * neither side punches until the migration is over, and then only where
 * the guest runs: the destination (RESUME came with postcopy), or a
 * source whose guest is started again.
 */
static void
vm_postcopy(struct vm *vm, enum vm_migration_event ev)
{
	if (ev == VM_MIGRATION_POSTCOPY && !vm->postcopy) {
		vm->postcopy = true;
		vm_set_str(&vm->nodiscard_why,
		    "postcopy migration: no discard until it completes");
		if (vm->guest != NULL)
			guest_stop_punching(vm->guest);
		log_info("vm %s: postcopy: discards stopped", vm->name);
	} else if (ev == VM_MIGRATION_FINISHED && vm->postcopy) {
		vm->postcopy = false;
		if (vm->running) {
			vm_set_str(&vm->nodiscard_why, NULL);
			log_info("vm %s: postcopy over, the guest runs here: "
			         "discarding again",
			    vm->name);
		} else {
			vm_set_str(&vm->nodiscard_why,
			    "postcopy migration over: the guest does not run "
			    "on this QEMU");
			log_info("vm %s: postcopy over, the guest does not run "
			         "here: no discard until it does",
			    vm->name);
		}
	}
}

static void
registry_running(const char *name, bool running)
{
	struct vm *vm;

	if ((vm = vm_find(name)) == NULL)
		return;
	vm->running = running;
	if (running && !vm->postcopy && vm->nodiscard_why != NULL) {
		vm_set_str(&vm->nodiscard_why, NULL);
		log_info("vm %s: the guest runs here again: discarding again",
		    vm->name);
	}
}

static void
registry_speed(const char *name, vm_speed_fn fn, void *ctx)
{
	struct vm *vm;

	if ((vm = vm_find(name)) == NULL)
		return;
	vm->speed = fn;
	vm->speed_ctx = ctx;
}

static void
registry_migration(const char *name, enum vm_migration_event ev)
{
	struct vm *vm;
	char err[256];

	if ((vm = vm_find(name)) == NULL)
		return;
	if (ev == VM_MIGRATION_POSTCOPY) {
		vm_postcopy(vm, ev);
		return;
	}
	log_info("vm %s: migration %s", name,
	    ev == VM_MIGRATION_STARTED ? "started" : "finished");
	vm_postcopy(vm, ev);
	/*
	 * A pass started by hand before the migration serves it; else the
	 * migration gets its own, when one pays (mighold_migration). Until
	 * the pass is over, what QEMU reads of a page the pass would hold
	 * is sent whole: hold the migration back meanwhile.
	 */
	if (ev == VM_MIGRATION_STARTED) {
		if (!vm_pass_active(vm))
			mighold_migration(vm);
		else if (!vm->pass_done)
			mighold_start(vm, NULL);
	} else {
		vm_release(vm, err, sizeof err);
		/* The destination's map, or the source's after a failure. */
		vm_refresh_later(vm);
	}
}

/*
 * Is a hint pass holding? One older than FREEHINTD_PASS_TIMEOUT_MS has
 * ended in the guest (the agent's own limit): it is released here too, so
 * that its HELD batches are refused and a new pass can start.
 */
bool
vm_pass_active(struct vm *vm)
{
	char err[256];

	if (!vm->pass_active)
		return false;
	if (fh_monotonic_ms() - vm->pass_started_ms < FREEHINTD_PASS_TIMEOUT_MS)
		return true;
	log_info(
	    "vm %s: hint pass %" PRIu64 " timed out", vm->name, vm->pass_id);
	vm_release(vm, err, sizeof err);
	return false;
}

/*
 * The hint pass this VM gets. hint-min-order "auto": blocks of every
 * order the backing can discard, which is one host page: order 0 on
 * 4 KiB pages (memfd, tmpfs, private memory zeroed in the guest), the
 * huge page's order on hugetlbfs. Smaller blocks would be held for
 * nothing (the host punches whole host pages only).
 */
struct pass_policy
vm_pass_policy(const struct vm *vm, uint32_t guest_page)
{
	struct pass_policy p;
	struct policy pol;
	uint64_t hpage = 0;
	size_t i;

	vm_policy(vm, &pol); /* the daemon's, with the VM's own keys */
	p.hold_ms = pol.migration_hold_ms;
	p.hold_bps = FREEHINTD_HOLD_BPS;
	p.min_order = pol.hint_min_order;
	if (p.min_order != FREEHINTD_ORDER_AUTO)
		return p;
	for (i = 0; i < vm->map.n && hpage == 0; i++)
		if (vm->map.r[i].fd != -1)
			hpage = vm->map.r[i].pagesz;
	p.min_order = 0;
	if (vm->mode != FREEHINT__MODE__DISCARD || guest_page == 0)
		return p;
	while (
	    p.min_order < 20 && ((uint64_t)guest_page << p.min_order) < hpage)
		p.min_order++;
	return p;
}

/*
 * Memory the backing does not hold costs QEMU a zero page to send: a
 * pass need not capture more than the backing holds, and every block it
 * captures beyond that is zeroed in the guest (and allocated in the
 * backing) for nothing. Private memory has no count: its RAM. (fstat of
 * every backing: only when a pass starts, never per batch.)
 */
uint64_t
vm_pass_byte_limit(const struct vm *vm)
{
	uint64_t limit = memmap_ram_bytes(&vm->map);
	int64_t alloc = vm_allocated_bytes(vm);

	if (alloc >= 0 && (uint64_t)alloc < limit)
		limit = (uint64_t)alloc;
	return limit;
}

/*
 * Why no pass can be asked of this VM now (-1), or 0. The migration's
 * own pass is weighed (passcost.c) only once it could be asked.
 */
int
vm_pass_refused(struct vm *vm, char *err, size_t errlen)
{
	if (vm->guest == NULL) {
		snprintf(err, errlen, "no agent connected");
		return -1;
	}
	if (vm->mode == FREEHINT__MODE__RECORD_ONLY) {
		snprintf(err, errlen, "record-only: %s",
		    vm->mode_why != NULL ? vm->mode_why : "");
		return -1;
	}
	if (vm->map.n == 0) {
		snprintf(err, errlen, "the memory map is not read yet");
		return -1;
	}
	/* 0 would be no limit to the agent. */
	if (vm_pass_byte_limit(vm) == 0) {
		snprintf(err, errlen,
		    "the backing holds no memory: "
		    "nothing to capture");
		return -1;
	}
	if (!guest_ready(vm->guest)) {
		snprintf(err, errlen, "the agent has not said Hello yet");
		return -1;
	}
	return 0;
}

/* Ask the guest to capture and hold most of its free memory. */
int
vm_hint(struct vm *vm, char *err, size_t errlen)
{
	struct pass_policy pol;
	uint64_t limit;

	/* A second request while a pass holds would start another pass,
	 * and the first one's HELD batches would then be refused. */
	if (vm->guest != NULL && vm_pass_active(vm)) {
		log_info("vm %s: hint pass %" PRIu64 " already active",
		    vm->name, vm->pass_id);
		return 0;
	}
	if (vm_pass_refused(vm, err, errlen) != 0)
		return -1;
	pol = vm_pass_policy(vm, guest_page_size(vm->guest));
	limit = vm_pass_byte_limit(vm);
	if (guest_command(vm->guest, FREEHINT__COMMAND_TYPE__HINT_PASS,
	        vm->pass_id + 1, pol.min_order, limit,
	        vm->mode == FREEHINT__MODE__ZERO_IN_GUEST) != 0) {
		snprintf(err, errlen, "the agent has not said Hello yet");
		return -1;
	}
	vm->pass_id++;
	vm->counters.passes++;
	vm->pass_active = true;
	vm->pass_done = false;
	vm->pass_sent_bytes = vm->pass_ranges = vm->pass_batches = 0;
	vm->pass_last_in = false;
	vm->pass_started_ms = fh_monotonic_ms();
	log_info("vm %s: hint pass %" PRIu64 " started (min order %u, at "
	         "most %" PRIu64 " MiB)",
	    vm->name, vm->pass_id, pol.min_order, limit >> 20);
	return 0;
}

/*
 * The pass holds all it will (its last HELD batch is applied), or never
 * will (failed, released, agent gone): a migration held back for it goes
 * on at its own bandwidth.
 */
void
vm_pass_over(struct vm *vm, const char *why)
{
	if (vm->pass_active && !vm->pass_done)
		log_info("vm %s: hint pass %" PRIu64 " over after %" PRIu64
		         " ms (%s), %" PRIu64 " MiB held in %" PRIu64
		         " ranges, %" PRIu64 " batches",
		    vm->name, vm->pass_id,
		    fh_monotonic_ms() - vm->pass_started_ms, why,
		    vm->pass_sent_bytes >> 20, vm->pass_ranges,
		    vm->pass_batches);
	vm->pass_done = true;
	mighold_end(vm, why);
}

/* One of the pass's HELD batches is taken (punched or not). */
void
vm_pass_taken(struct vm *vm, uint64_t bytes, size_t ranges)
{
	vm->pass_sent_bytes += bytes;
	vm->pass_ranges += ranges;
	vm->pass_batches++;
}

/*
 * The pass's last HELD batch is applied: its speed is what the next
 * migration's estimate uses (passcost.c), from a pass of some size.
 */
void
vm_pass_complete(struct vm *vm)
{
	uint64_t ms = fh_monotonic_ms() - vm->pass_started_ms;

	if (vm->pass_active && !vm->pass_done &&
	    vm->pass_sent_bytes >= FREEHINTD_PASS_SPEED_MIN)
		vm->pass_bps = vm->pass_sent_bytes * 1000 / (ms != 0 ? ms : 1);
	vm_pass_over(vm, "the pass holds all it captured");
}

int
vm_release(struct vm *vm, char *err, size_t errlen)
{
	if (vm->pass_active)
		log_info("vm %s: hint pass %" PRIu64 " released, %" PRIu64
		         " MiB held",
		    vm->name, vm->pass_id, vm->held_bytes >> 20);
	vm_pass_over(vm, "released");
	vm->pass_active = false;
	vm->held_bytes = 0;
	if (vm->guest == NULL) {
		snprintf(err, errlen, "no agent connected");
		return -1;
	}
	return guest_command(vm->guest, FREEHINT__COMMAND_TYPE__RELEASE,
	    vm->pass_id, 0, 0, false);
}

/* Upper bounds of the discard latency histogram's buckets, in seconds. */
const double vm_lat_bounds[VM_LAT_BUCKETS] = { 0.0001, 0.00025, 0.0005, 0.001,
	0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1 };

/* One batch judged: kind as on the wire, reason 0 when applied. */
void
vm_count_batch(struct vm *vm, int kind, int reason, size_t ranges)
{
	int k = kind >= FREEHINT__RANGE_KIND__HINT &&
	        kind <= FREEHINT__RANGE_KIND__HELD
	    ? kind
	    : 0;

	if (reason < 0 || reason >= VM_NREASONS)
		reason = FREEHINT__REJECT_REASON__HOST_ERROR;
	vm->counters.batches[k][reason]++;
	vm->counters.ranges[k][reason] += ranges;
}

/* The time one batch's discard took. */
void
vm_count_discard(struct vm *vm, uint64_t usec)
{
	double s = (double)usec / 1e6;
	size_t i;

	for (i = 0; i < VM_LAT_BUCKETS && s > vm_lat_bounds[i]; i++)
		;
	vm->counters.lat_count[i]++;
	vm->counters.lat_sum += s;
}

/*
 * What the VM's backing files hold allocated (st_blocks, which holes do
 * not count). -1 without a backing file: anonymous memory has no such
 * count.
 */
int64_t
vm_allocated_bytes(const struct vm *vm)
{
	struct stat st, other;
	uint64_t alloc = 0;
	size_t i, j;

	if (vm->map.n == 0)
		return -1;
	for (i = 0; i < vm->map.n; i++) {
		if (vm->map.r[i].fd == -1 || fstat(vm->map.r[i].fd, &st) != 0)
			return -1;
		/* Regions of one RAM block share its file (each through an
		 * fd of its own): count the file once. */
		for (j = 0; j < i; j++)
			if (fstat(vm->map.r[j].fd, &other) == 0 &&
			    other.st_dev == st.st_dev &&
			    other.st_ino == st.st_ino)
				break;
		if (j == i)
			alloc += (uint64_t)st.st_blocks * 512;
	}
	return alloc > INT64_MAX ? INT64_MAX : (int64_t)alloc;
}

/* What the host gives back now: the VM's RAM less what its backing holds. */
int64_t
vm_returned_bytes(const struct vm *vm)
{
	uint64_t ram = memmap_ram_bytes(&vm->map);
	int64_t alloc = vm_allocated_bytes(vm);

	if (alloc < 0)
		return -1;
	return (uint64_t)alloc >= ram ? 0 : (int64_t)(ram - (uint64_t)alloc);
}

void
vm_policy(const struct vm *vm, struct policy *p)
{
	policy_of(&vm->pol, &conf->policy, p);
}

/* freehintctl set: from the next batch on. */
int
vm_policy_set(struct vm *vm, char **kv, int n, char *err, size_t errlen)
{
	int i;

	if (policy_parse_set(&vm->pol, kv, n, err, errlen) != 0)
		return -1;
	for (i = 0; i < n; i++)
		log_info("vm %s: policy %s", vm->name, kv[i]);
	return 0;
}

/* The policy the VM carries (libvirt metadata); a bad one changes nothing. */
static void
registry_policy(const char *name, const char *xml)
{
	struct vm *vm;
	char err[256];

	if ((vm = vm_find(name)) == NULL)
		return;
	if (policy_parse_metadata(&vm->pol, xml, err, sizeof err) != 0) {
		vm_set_error(vm, "policy not changed: %s", err);
		log_warnx("vm %s: policy not changed: %s", vm->name, err);
		return;
	}
	log_info("vm %s: policy from its metadata%s", vm->name,
	    xml == NULL ? ": none" : "");
}

/* The sources' calls, when the registry is in this process (vmsource.c). */
const struct vm_sink vm_registry = { registry_add, registry_remove,
	registry_migration, registry_dma, registry_policy, registry_speed,
	registry_running, registry_changed };

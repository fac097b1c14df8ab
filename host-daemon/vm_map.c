/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A VM's memory map, read from its QEMU's monitor, and the mode its
 * backing allows: where the registry (vm.c) learns what it may punch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "freehintd.h"

/* A failed map load is tried again after this, doubling. */
#define VM_MAP_RETRY_MIN_MS 1000
#define VM_MAP_RETRY_MAX_MS 30000

struct vm_mapload;

static bool vm_map_cancelled(struct vm_mapload *);
static void vm_map_block(void *, const char *);
static void vm_map_container(void *, const char *);
static void vm_map_type(void *, const char *);
static void vm_map_below4g(void *, const char *);
static void vm_map_tseg(void *, const char *);
static bool vm_map_number(const char *, uint64_t *);
static void vm_map_mtree(void *, const char *);
static void vm_map_next(struct vm_mapload *);
static void vm_map_gpa2hva(void *, const char *);
static void vm_map_done(struct vm_mapload *);
static void vm_map_resolved(void *, int, const char *, const char *);
static void vm_map_failed(struct vm_mapload *, const char *);
static void vm_map_settled(struct vm *, Freehint__Mode);
static void vm_map_retry_cb(evutil_socket_t, short, void *);

/*
 * The memory map is read with a chain of monitor commands, each started
 * from the previous one's answer: the machine's memory backend (its RAM
 * block), or without one the RAM container's blocks (NUMA nodes) from
 * "info mtree"; the machine type, and on q35 where TSEG can be; "info
 * mtree -f", less SMRAM; then gpa2hva for each region. The source calls
 * back from the event loop (QMP) or at once (libvirt); nothing waits.
 * The load belongs to its chain: a VM freed or loading anew only cuts
 * the load's link to it, and the next answer frees the load.
 */
struct vm_mapload {
	struct vm *vm; /* NULL once cancelled */
	Freehint__Mode was; /* what an agent's Hello meanwhile got */
	size_t i; /* the region whose gpa2hva is asked */
	char block[512]; /* RAM block names, separated by commas */
	bool pc, q35; /* the machine type: where SMRAM can be */
	uint64_t below_4g, tseg_max;
	struct memmap map;
};

static bool
vm_map_cancelled(struct vm_mapload *ml)
{
	if (ml->vm != NULL)
		return false;
	memmap_free(&ml->map);
	free(ml);
	return true;
}

void
vm_map_cancel(struct vm *vm)
{
	if (vm->mapload != NULL)
		vm->mapload->vm = NULL;
	vm->mapload = NULL;
	if (vm->map_retry != NULL)
		evtimer_del(vm->map_retry);
}

/*
 * The load is over, whichever way: the channel starts now (an agent that
 * said Hello before the map was there would have been told record-only),
 * and a session that was told less than the map now allows is restarted.
 */
static void
vm_map_settled(struct vm *vm, Freehint__Mode was)
{
	if (vm->guest != NULL && was != vm->map_mode) {
		log_info("vm %s: the memory map now allows %s: restarting "
		         "the agent's session",
		    vm->name, vm_mode_name(vm->map_mode));
		guest_free(vm->guest);
		vm_guest_lost(vm);
		return;
	}
	if (vm->channel != NULL && vm->unservable == NULL && vm->guest == NULL)
		chan_start(vm);
}

static void
vm_map_retry_cb(evutil_socket_t unused, short what, void *arg)
{
	struct vm *vm = arg;

	if (vm->mapload == NULL && vm->unservable == NULL)
		vm_load_map(vm, vm->map.n == 0);
}

/* Keep the old map if there is one; try again later, backing off. */
static void
vm_map_failed(struct vm_mapload *ml, const char *why)
{
	struct vm *vm = ml->vm;
	Freehint__Mode was = ml->was;
	struct timeval tv;

	vm->mapload = NULL;
	memmap_free(&ml->map);
	free(ml);
	if (vm->map_backoff_ms == 0)
		vm->map_backoff_ms = VM_MAP_RETRY_MIN_MS;
	if (vm->map.n == 0) {
		free(vm->mode_why);
		xasprintf(&vm->mode_why, "memory map: %s (retrying in %d s)",
		    why, (vm->map_backoff_ms + 999) / 1000);
	}
	vm_set_error(vm, "memory map: %s", why);
	if (vm->map_retry == NULL &&
	    (vm->map_retry = evtimer_new(ev_base, vm_map_retry_cb, vm)) == NULL)
		fatalx("%s: evtimer_new", __func__);
	tv = fh_ms_timeval(vm->map_backoff_ms);
	evtimer_add(vm->map_retry, &tv);
	vm->map_backoff_ms *= 2;
	if (vm->map_backoff_ms > VM_MAP_RETRY_MAX_MS)
		vm->map_backoff_ms = VM_MAP_RETRY_MAX_MS;
	vm_map_settled(vm, was);
}

/* Every region has its host address: find the backing (priv.c). */
static void
vm_map_done(struct vm_mapload *ml)
{
	priv_resolve(ml->vm, &ml->map, vm_map_resolved, ml);
}

/* The backing is open, or refused: decide the mode. */
static void
vm_map_resolved(void *arg, int rc, const char *why, const char *dma)
{
	struct vm_mapload *ml = arg;
	struct vm *vm;
	Freehint__Mode was = ml->was, mode;
	char err[256];

	if (vm_map_cancelled(ml))
		return;
	vm = ml->vm;
	snprintf(err, sizeof err, "%s", rc != 0 ? why : "");
	if (rc != 0) {
		/*
		 * The regions are known but their backing is not one we may
		 * punch (or could not be found): serve the guest record-only,
		 * counting what it reports, with no fd to touch anything.
		 */
		memmap_drop_fds(&ml->map);
		ml->map.kind = VM_BACKING_UNKNOWN;
		log_warnx("vm %s: %s: record-only", vm->name, err);
	}
	memmap_free(&vm->map);
	vm->map = ml->map;
	vm->mapload = NULL;
	vm->map_backoff_ms = 0;
	switch (vm->map.kind) {
	case VM_BACKING_MEMFD:
	case VM_BACKING_FILE:
	case VM_BACKING_HUGETLBFS:
		mode = FREEHINT__MODE__DISCARD;
		snprintf(err, sizeof err, "shared %s backing",
		    memmap_kind_name(vm->map.kind));
		break;
	case VM_BACKING_ANONYMOUS:
		mode = FREEHINT__MODE__ZERO_IN_GUEST;
		snprintf(err, sizeof err,
		    "private memory cannot be discarded from outside QEMU");
		break;
	default:
		/* err says why when memmap_resolve refused the backing. */
		mode = FREEHINT__MODE__RECORD_ONLY;
		if (err[0] == '\0')
			snprintf(err, sizeof err, "unknown backing");
		break;
	}
	vm->map_mode = mode;
	vm_set_str(&vm->map_why, err);
	/*
	 * What a connected agent was told (page poisoning may have made it
	 * less) stays until its session restarts, which vm_map_settled does
	 * when the map's mode changed.
	 */
	if (vm->guest == NULL) {
		vm->mode = mode;
		vm_set_str(&vm->mode_why, err);
	}
	/* Read with the map: what the source says, or what QEMU holds. */
	if (vm->dma_why != NULL || dma != NULL)
		vm_dma_found(vm, vm->dma_why != NULL ? vm->dma_why : dma);
	log_info("vm %s: %" PRIu64 " MiB of RAM in %zu regions, block %s, "
	         "mode %s (%s)",
	    vm->name, memmap_ram_bytes(&vm->map) >> 20, vm->map.n, ml->block,
	    vm_mode_name(vm->map_mode), vm->map_why);
	free(ml);
	vm_map_settled(vm, was);
}

static void
vm_map_next(struct vm_mapload *ml)
{
	char cmd[64];

	if (ml->i == ml->map.n) {
		vm_map_done(ml);
		return;
	}
	snprintf(cmd, sizeof cmd, "gpa2hva 0x%" PRIx64, ml->map.r[ml->i].gpa);
	ml->vm->hmp(ml->vm->hmp_ctx, cmd, vm_map_gpa2hva, ml);
}

static void
vm_map_gpa2hva(void *arg, const char *out)
{
	struct vm_mapload *ml = arg;
	struct memregion *r;
	char why[64];

	if (vm_map_cancelled(ml))
		return;
	r = &ml->map.r[ml->i];
	if (out == NULL || memmap_parse_gpa2hva(out, &r->hva) != 0) {
		snprintf(
		    why, sizeof why, "gpa2hva 0x%" PRIx64 " failed", r->gpa);
		vm_map_failed(ml, why);
		return;
	}
	ml->i++;
	vm_map_next(ml);
}

static void
vm_map_mtree(void *arg, const char *out)
{
	struct vm_mapload *ml = arg;
	char err[256];

	if (vm_map_cancelled(ml))
		return;
	if (out == NULL) {
		vm_map_failed(ml, "info mtree -f: the monitor does not answer");
		return;
	}
	if (memmap_parse_mtree(out, ml->block, &ml->map, err, sizeof err) !=
	    0) {
		vm_map_failed(ml, err);
		return;
	}
	memmap_exclude_smm(
	    &ml->map, ml->pc, ml->q35, ml->below_4g, ml->tseg_max);
	if (ml->map.n == 0) {
		vm_map_failed(ml, "memory map: no RAM outside SMRAM");
		return;
	}
	ml->i = 0;
	vm_map_next(ml);
}

/* A number qom-get printed ("16"); false for an error or anything else. */
static bool
vm_map_number(const char *out, uint64_t *v)
{
	char *end;

	if (out == NULL || out[0] < '0' || out[0] > '9')
		return false;
	errno = 0;
	*v = strtoull(out, &end, 10);
	return errno == 0 && (*end == '\0' || *end == '\r' || *end == '\n');
}

static void
vm_map_tseg(void *arg, const char *out)
{
	struct vm_mapload *ml = arg;
	uint64_t mb;

	if (vm_map_cancelled(ml))
		return;
	if (!vm_map_number(out, &mb) || mb > 4096) {
		vm_map_failed(ml,
		    "q35: extended-tseg-mbytes unknown: cannot "
		    "tell where TSEG is");
		return;
	}
	ml->tseg_max = mb << 20;
	ml->vm->hmp(ml->vm->hmp_ctx, "info mtree -f", vm_map_mtree, ml);
}

static void
vm_map_below4g(void *arg, const char *out)
{
	struct vm_mapload *ml = arg;

	if (vm_map_cancelled(ml))
		return;
	if (!vm_map_number(out, &ml->below_4g) || ml->below_4g == 0 ||
	    ml->below_4g > (4ULL << 30)) {
		vm_map_failed(ml,
		    "q35: below-4g-mem-size unknown: cannot "
		    "tell where TSEG is");
		return;
	}
	ml->vm->hmp(ml->vm->hmp_ctx,
	    "qom-get /machine/q35/mch extended-tseg-mbytes", vm_map_tseg, ml);
}

/*
 * The machine type says where SMRAM can be: "pc-q35-7.2-machine" (TSEG
 * and SMBASE too), "pc-i440fx-7.2-machine", "isapc-machine". A type we
 * cannot read is no PC (a PC's QEMU always has one).
 */
static void
vm_map_type(void *arg, const char *out)
{
	struct vm_mapload *ml = arg;

	if (vm_map_cancelled(ml))
		return;
	if (out == NULL) {
		vm_map_failed(ml, "qom-get: the monitor does not answer");
		return;
	}
	ml->q35 = strstr(out, "q35") != NULL;
	ml->pc =
	    strncmp(out, "\"pc", 3) == 0 || strncmp(out, "\"isapc", 6) == 0;
	if (ml->q35)
		ml->vm->hmp(ml->vm->hmp_ctx,
		    "qom-get /machine/q35 below-4g-mem-size", vm_map_below4g,
		    ml);
	else
		ml->vm->hmp(ml->vm->hmp_ctx, "info mtree -f", vm_map_mtree, ml);
}

/* Without a machine backend: NUMA nodes' backends, or QEMU's pc.ram. */
static void
vm_map_container(void *arg, const char *out)
{
	struct vm_mapload *ml = arg;

	if (vm_map_cancelled(ml))
		return;
	if (out == NULL) {
		vm_map_failed(ml, "info mtree: the monitor does not answer");
		return;
	}
	if (memmap_parse_container(
	        out, "pc.ram", ml->block, sizeof ml->block) <= 0)
		snprintf(ml->block, sizeof ml->block, "pc.ram");
	ml->vm->hmp(ml->vm->hmp_ctx, "qom-get /machine type", vm_map_type, ml);
}

/* The id of the machine's memory backend: its RAM block's name. */
static void
vm_map_block(void *arg, const char *out)
{
	struct vm_mapload *ml = arg;
	const char *p, *e;

	if (vm_map_cancelled(ml))
		return;
	if (out == NULL) {
		vm_map_failed(ml, "qom-get: the monitor does not answer");
		return;
	}
	/* "/objects/mem0" with quotes; nothing when there is no backend. */
	if ((p = strrchr(out, '/')) != NULL && (e = strchr(p, '"')) != NULL &&
	    e - p > 1 && (size_t)(e - p) <= sizeof ml->block &&
	    memchr(p, ',', (size_t)(e - p)) == NULL) {
		memcpy(ml->block, p + 1, (size_t)(e - p - 1));
		ml->block[e - p - 1] = '\0';
		ml->vm->hmp(
		    ml->vm->hmp_ctx, "qom-get /machine type", vm_map_type, ml);
		return;
	}
	ml->vm->hmp(ml->vm->hmp_ctx, "info mtree", vm_map_container, ml);
}

/*
 * Read the memory map and decide what this VM's guests get. fresh: drop
 * the old map first (a new QEMU); otherwise the old one serves until the
 * new one is there.
 */
void
vm_load_map(struct vm *vm, bool fresh)
{
	struct vm_mapload *ml;

	vm_map_cancel(vm);
	if (fresh || vm->unservable != NULL) {
		memmap_free(&vm->map);
		vm->mode = vm->map_mode = FREEHINT__MODE__RECORD_ONLY;
		free(vm->map_why);
		vm->map_why = NULL;
	}
	if (vm->unservable != NULL) {
		vm_set_str(&vm->mode_why, vm->unservable);
		vm->map_backoff_ms = 0;
		return;
	}
	if (vm->qemu_gone)
		return;
	if (fresh)
		vm_set_str(&vm->mode_why, "reading the memory map");
	ml = xcalloc(1, sizeof *ml);
	ml->vm = vm;
	ml->was = vm->map_mode;
	memmap_init(&ml->map);
	vm->mapload = ml;
	/* The last thing: the chain may run to its end before it returns. */
	vm->hmp(
	    vm->hmp_ctx, "qom-get /machine memory-backend", vm_map_block, ml);
}

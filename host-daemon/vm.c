/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The VM registry: what freehintd knows of each VM (from a source: static
 * configuration or libvirt), its memory map and backing, the mode the
 * daemon serves it in and why, its agent session and its counters.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freehintd.h"

struct vm_list vms = TAILQ_HEAD_INITIALIZER(vms);

static struct vm *vm_new(const char *);
static void vm_free(struct vm *);
static void vm_load_map(struct vm *);
static int vm_ramblock(struct vm *, char *, size_t);
static void set_str(char **, const char *);

static void
set_str(char **dst, const char *src)
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
	TAILQ_INSERT_TAIL(&vms, vm, entry);
	return vm;
}

static void
vm_free(struct vm *vm)
{
	TAILQ_REMOVE(&vms, vm, entry);
	chan_stop(vm);
	if (vm->guest != NULL)
		guest_free(vm->guest);
	memmap_free(&vm->map);
	free(vm->name);
	free(vm->source);
	free(vm->channel);
	free(vm->unservable);
	free(vm->dma_why);
	free(vm->mode_why);
	free(vm->map_why);
	free(vm);
}

/* The id of the machine's memory backend: its RAM block's name. */
static int
vm_ramblock(struct vm *vm, char *buf, size_t len)
{
	char *out = NULL, *p, *e;

	snprintf(buf, len, "pc.ram");
	if (vm->hmp(vm->hmp_ctx, "qom-get /machine memory-backend", &out) != 0)
		return -1;
	/* "/objects/mem0" with quotes; nothing when there is no backend. */
	if ((p = strrchr(out, '/')) != NULL && (e = strchr(p, '"')) != NULL &&
	    e - p > 1 && (size_t)(e - p) <= len) {
		memcpy(buf, p + 1, (size_t)(e - p - 1));
		buf[e - p - 1] = '\0';
	}
	free(out);
	return 0;
}

/* Build the memory map and decide what this VM's guests get. */
static void
vm_load_map(struct vm *vm)
{
	char err[256], block[128], *mtree = NULL;

	memmap_free(&vm->map);
	vm->mode = vm->map_mode = FREEHINT__MODE__RECORD_ONLY;
	free(vm->map_why);
	vm->map_why = NULL;
	if (vm->unservable != NULL) {
		set_str(&vm->mode_why, vm->unservable);
		return;
	}
	if (vm_ramblock(vm, block, sizeof block) != 0 ||
	    vm->hmp(vm->hmp_ctx, "info mtree -f", &mtree) != 0) {
		set_str(&vm->mode_why, "the monitor does not answer");
		vm_set_error(vm, "%s", vm->mode_why);
		return;
	}
	if (memmap_parse_mtree(mtree, block, &vm->map, err, sizeof err) != 0 ||
	    memmap_resolve(&vm->map, vm->qemu_pid, vm->hmp, vm->hmp_ctx, err,
	        sizeof err) != 0) {
		free(mtree);
		set_str(&vm->mode_why, err);
		vm_set_error(vm, "%s", err);
		return;
	}
	free(mtree);
	switch (vm->map.kind) {
	case VM_BACKING_MEMFD:
	case VM_BACKING_FILE:
	case VM_BACKING_HUGETLBFS:
		vm->mode = FREEHINT__MODE__DISCARD;
		snprintf(err, sizeof err, "shared %s backing",
		    memmap_kind_name(vm->map.kind));
		break;
	case VM_BACKING_ANONYMOUS:
		vm->mode = FREEHINT__MODE__ZERO_IN_GUEST;
		snprintf(err, sizeof err,
		    "private memory cannot be discarded from outside QEMU");
		break;
	default:
		snprintf(err, sizeof err, "unknown backing");
		break;
	}
	set_str(&vm->mode_why, err);
	vm->map_mode = vm->mode;
	set_str(&vm->map_why, err);
	vm_check_dma(vm);
	log_info("vm %s: %" PRIu64 " MiB of RAM in %zu regions, block %s, "
	         "mode %s (%s)",
	    vm->name, memmap_ram_bytes(&vm->map) >> 20, vm->map.n, block,
	    vm_mode_name(vm->mode), vm->mode_why);
}

/*
 * A device that DMAs into guest memory (VFIO, vDPA) keeps using pages
 * after their hole is punched: the VM is record-only while QEMU holds
 * one (checked when the map is read and at every Hello, for hot-plugged
 * devices) or its source says it has one. Returns true when so.
 */
bool
vm_check_dma(struct vm *vm)
{
	char why[320];

	if (vm->dma_why != NULL)
		snprintf(why, sizeof why, "%s", vm->dma_why);
	else if (vm->qemu_pid <= 0 ||
	    memmap_dma_devices(vm->qemu_pid, why, sizeof why) != 1)
		return false;
	if (vm->map_mode == FREEHINT__MODE__RECORD_ONLY &&
	    vm->map_why != NULL && strcmp(vm->map_why, why) == 0)
		return true;
	log_warnx("vm %s: record-only: %s", vm->name, why);
	vm->map_mode = vm->mode = FREEHINT__MODE__RECORD_ONLY;
	set_str(&vm->map_why, why);
	set_str(&vm->mode_why, why);
	if (vm->guest != NULL)
		guest_record_only(vm->guest);
	return true;
}

void
vm_source_dma(const char *name, const char *why)
{
	struct vm *vm;

	if ((vm = vm_find(name)) == NULL)
		return;
	set_str(&vm->dma_why, why);
	if (why != NULL)
		vm_check_dma(vm);
}

int
vm_source_add(const struct vm_desc *d, vm_hmp_fn hmp, void *ctx)
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
	else if (vm->guest != NULL) {
		/* QEMU may have restarted: a new map, a new session. */
		guest_free(vm->guest);
		vm->guest = NULL;
		vm->transport = VM_TRANSPORT_NONE;
	}
	set_str(&vm->source, d->source);
	set_str(&vm->unservable, d->unservable);
	vm->cid = d->cid;
	vm->qemu_pid = d->qemu_pid;
	vm->hmp = hmp;
	vm->hmp_ctx = ctx;
	vm->pass_active = false;
	vm->held_bytes = 0;
	vm_load_map(vm);
	if (d->channel == NULL || vm->channel == NULL ||
	    strcmp(d->channel, vm->channel) != 0) {
		chan_stop(vm);
		set_str(&vm->channel, d->channel);
	}
	if (vm->channel != NULL && vm->unservable == NULL)
		chan_start(vm);
	return 0;
}

void
vm_source_remove(const char *name)
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

void
vm_source_migration(const char *name, enum vm_migration_event ev)
{
	struct vm *vm;
	char err[256];

	if ((vm = vm_find(name)) == NULL)
		return;
	log_info("vm %s: migration %s", name,
	    ev == VM_MIGRATION_STARTED ? "started" : "finished");
	/* A pass started by hand before the migration serves it. */
	if (ev == VM_MIGRATION_STARTED) {
		if (!vm_pass_active(vm))
			vm_hint(vm, err, sizeof err);
	} else
		vm_release(vm, err, sizeof err);
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
	if (monotonic_ms() - vm->pass_started_ms < FREEHINTD_PASS_TIMEOUT_MS)
		return true;
	log_info(
	    "vm %s: hint pass %" PRIu64 " timed out", vm->name, vm->pass_id);
	vm_release(vm, err, sizeof err);
	return false;
}

/* Ask the guest to capture and hold most of its free memory. */
int
vm_hint(struct vm *vm, char *err, size_t errlen)
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
	/* A second request while a pass holds would start another pass,
	 * and the first one's HELD batches would then be refused. */
	if (vm_pass_active(vm)) {
		log_info("vm %s: hint pass %" PRIu64 " already active",
		    vm->name, vm->pass_id);
		return 0;
	}
	if (guest_command(vm->guest, FREEHINT__COMMAND_TYPE__HINT_PASS,
	        vm->pass_id + 1, conf->policy.hint_min_order,
	        memmap_ram_bytes(&vm->map),
	        vm->mode == FREEHINT__MODE__ZERO_IN_GUEST) != 0) {
		snprintf(err, errlen, "the agent has not said Hello yet");
		return -1;
	}
	vm->pass_id++;
	vm->pass_active = true;
	vm->pass_started_ms = monotonic_ms();
	log_info("vm %s: hint pass %" PRIu64 " started", vm->name, vm->pass_id);
	return 0;
}

int
vm_release(struct vm *vm, char *err, size_t errlen)
{
	if (vm->pass_active)
		log_info("vm %s: hint pass %" PRIu64 " released, %" PRIu64
		         " MiB held",
		    vm->name, vm->pass_id, vm->held_bytes >> 20);
	vm->pass_active = false;
	vm->held_bytes = 0;
	if (vm->guest == NULL) {
		snprintf(err, errlen, "no agent connected");
		return -1;
	}
	return guest_command(vm->guest, FREEHINT__COMMAND_TYPE__RELEASE,
	    vm->pass_id, 0, 0, false);
}

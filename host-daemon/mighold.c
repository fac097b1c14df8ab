/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A migration's bandwidth, held down while the hint pass it started runs.
 * QEMU's first walk over RAM sends whole every page it reads before the
 * pass has held it: until the pass is over (vm_pass_over) or its bound
 * (migration-hold-ms) has passed, QEMU may send only FREEHINTD_HOLD_BPS;
 * then the bandwidth it had is given back. The source sets it
 * (vm_speed_fn): QMP's migrate-set-parameters, libvirt's
 * virDomainMigrateSetMaxSpeed.
 *
 * The hold belongs to its chain of answers, as a map load does: ending it
 * only cuts its link to the VM, and the last answer frees it.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "freehintd.h"

struct mighold {
	struct vm *vm; /* NULL once cut off */
	struct event *bound;
	uint64_t started_ms;
	int64_t was; /* the bandwidth to give back; -1 until known */
	int pending; /* answers not yet in */
	bool over; /* the pass ended before QEMU answered */
};

static void mighold_free_maybe(struct mighold *);
static void mighold_set_cb(void *, int64_t);
static void mighold_restore_cb(void *, int64_t);
static void mighold_bound_cb(evutil_socket_t, short, void *);
static void mighold_sent_cb(void *, const char *);

static void
mighold_free_maybe(struct mighold *mh)
{
	if (mh->vm != NULL || mh->pending > 0)
		return;
	event_free(mh->bound);
	free(mh);
}

void
mighold_start(struct vm *vm)
{
	struct pass_policy pol;
	struct mighold *mh;
	struct timeval tv;

	pol = vm_pass_policy(vm, 0);
	if (vm->speed == NULL || vm->mighold != NULL || pol.hold_ms == 0)
		return;
	mh = xcalloc(1, sizeof *mh);
	mh->vm = vm;
	mh->was = -1;
	mh->started_ms = fh_monotonic_ms();
	if ((mh->bound = evtimer_new(ev_base, mighold_bound_cb, mh)) == NULL)
		fatalx("%s: evtimer_new", __func__);
	tv = fh_ms_timeval((int)pol.hold_ms);
	evtimer_add(mh->bound, &tv);
	vm->mighold = mh;
	mh->pending++;
	/* Last: the source may answer before it returns. */
	vm->speed(vm->speed_ctx, pol.hold_bps, mighold_set_cb, mh);
}

/* QEMU holds the migration down: remember what to give back. */
static void
mighold_set_cb(void *arg, int64_t was)
{
	struct mighold *mh = arg;
	struct vm *vm = mh->vm;

	mh->pending--;
	if (vm == NULL) {
		mighold_free_maybe(mh);
		return;
	}
	if (was < 0) {
		log_warnx("vm %s: cannot hold the migration's bandwidth "
		          "down: the pass races it",
		    vm->name);
		mighold_end(vm, NULL);
		return;
	}
	mh->was = was;
	log_info("vm %s: migration bandwidth held at %" PRIu64
	         " bytes/s (was %" PRId64 ") until the hint pass is over",
	    vm->name, vm_pass_policy(vm, 0).hold_bps, was);
	/* What QEMU sent whole before the hold: the race it lost. */
	mh->pending++;
	vm->hmp(vm->hmp_ctx, "info migrate", mighold_sent_cb, mh);
	/* Lower than ours already, or the pass was over first. */
	if (mh->over || (uint64_t)was <= vm_pass_policy(vm, 0).hold_bps)
		mighold_end(vm, mh->over ? "the pass was over" : "was lower");
}

static void
mighold_sent_cb(void *arg, const char *out)
{
	struct mighold *mh = arg;
	const char *p;

	mh->pending--;
	if (mh->vm != NULL && out != NULL &&
	    (p = strstr(out, "\nnormal: ")) != NULL)
		log_info("vm %s: %lld pages sent whole when the hold began",
		    mh->vm->name, strtoll(p + 9, NULL, 10));
	mighold_free_maybe(mh);
}

static void
mighold_bound_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mighold *mh = arg;

	if (mh->vm != NULL)
		mighold_end(mh->vm, "migration-hold-ms passed");
}

static void
mighold_restore_cb(void *arg, int64_t was)
{
	struct mighold *mh = arg;

	mh->pending--;
	if (was < 0)
		log_warnx("%s: QEMU did not take the bandwidth back", __func__);
	mighold_free_maybe(mh);
}

/*
 * Give the migration its bandwidth back (why != NULL), or only forget
 * the hold (why == NULL: the QEMU went away or is not ours any more).
 */
void
mighold_end(struct vm *vm, const char *why)
{
	struct mighold *mh = vm->mighold;

	if (mh == NULL)
		return;
	if (why != NULL && mh->was < 0 && mh->pending > 0) {
		/* The set is still out: give back once it is answered. */
		mh->over = true;
		return;
	}
	vm->mighold = NULL;
	mh->vm = NULL;
	evtimer_del(mh->bound);
	if (why != NULL && mh->was >= 0 && vm->speed != NULL) {
		log_info("vm %s: migration bandwidth back to %" PRId64
		         " bytes/s after %" PRIu64 " ms (%s)",
		    vm->name, mh->was, fh_monotonic_ms() - mh->started_ms, why);
		mh->pending++;
		vm->speed(
		    vm->speed_ctx, (uint64_t)mh->was, mighold_restore_cb, mh);
		return;
	}
	mighold_free_maybe(mh);
}

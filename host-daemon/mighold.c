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
 * The migration's own pass starts only once QEMU is held, and only when
 * it pays at the bandwidth in force (passcost.c): the hold is asked with
 * the bandwidth below which it does, and QEMU above it is left alone.
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
	bool start_pass; /* the migration's own pass, once held */
	struct pass_estimate est; /* its figures */
};

static void mighold_free_maybe(struct mighold *);
static void mighold_set_cb(void *, int64_t);
static void mighold_restore_cb(void *, int64_t);
static void mighold_bound_cb(evutil_socket_t, short, void *);
static void mighold_sent_cb(void *, const char *);
static void mighold_log_unpaid(
    const struct vm *, const struct pass_estimate *, uint64_t);

static void
mighold_free_maybe(struct mighold *mh)
{
	if (mh->vm != NULL || mh->pending > 0)
		return;
	event_free(mh->bound);
	free(mh);
}

/*
 * A migration started with no pass running: its own pass, if one pays.
 * A source that cannot hold QEMU down, or hold-ms 0, gets the pass at
 * once, racing QEMU's walk: the bandwidth is not known to weigh it.
 */
void
mighold_migration(struct vm *vm)
{
	struct pass_estimate est;
	char err[256];

	if (pass_estimate(vm, &est, err, sizeof err) != 0) {
		log_info("vm %s: no hint pass: %s", vm->name, err);
		return;
	}
	if (vm->speed == NULL || vm_pass_policy(vm, 0).hold_ms == 0 ||
	    vm->mighold != NULL) {
		if (vm_hint(vm, err, sizeof err) != 0)
			log_info("vm %s: no hint pass: %s", vm->name, err);
		return;
	}
	mighold_start(vm, &est);
}

/*
 * Hold the migration down: for the pass running (est NULL), or for the
 * migration's own pass, started once QEMU is held, and only when the
 * bandwidth in force is below est's ceiling.
 */
void
mighold_start(struct vm *vm, const struct pass_estimate *est)
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
	if (est != NULL) {
		mh->start_pass = true;
		mh->est = *est;
	}
	mh->started_ms = fh_monotonic_ms();
	if ((mh->bound = evtimer_new(ev_base, mighold_bound_cb, mh)) == NULL)
		fatalx("%s: evtimer_new", __func__);
	tv = fh_ms_timeval((int)pol.hold_ms);
	evtimer_add(mh->bound, &tv);
	vm->mighold = mh;
	mh->pending++;
	/* Last: the source may answer before it returns. */
	vm->speed(vm->speed_ctx, pol.hold_bps,
	    mh->start_pass ? mh->est.ceiling : UINT64_MAX, mighold_set_cb, mh);
}

/* QEMU holds the migration down: remember what to give back. */
static void
mighold_set_cb(void *arg, int64_t was)
{
	struct mighold *mh = arg;
	struct vm *vm = mh->vm;
	bool start = mh->start_pass;
	char err[256];

	mh->pending--;
	if (vm == NULL) {
		mighold_free_maybe(mh);
		return;
	}
	/*
	 * Over before QEMU answered (the migration ended, the agent went,
	 * the bound passed): no pass for it now, and what was set is given
	 * back.
	 */
	if (start && mh->over) {
		if (was >= 0 && (uint64_t)was <= mh->est.ceiling)
			mh->was = was;
		log_info(
		    "vm %s: no hint pass: over before QEMU answered", vm->name);
		mighold_end(vm, "over before QEMU answered");
		return;
	}
	if (start && was >= 0 && (uint64_t)was > mh->est.ceiling) {
		/* QEMU was left alone: it sends faster than a pass saves. */
		mighold_log_unpaid(vm, &mh->est, (uint64_t)was);
		mighold_end(vm, NULL);
		return;
	}
	if (was < 0) {
		log_warnx("vm %s: cannot hold the migration's bandwidth "
		          "down: the pass races it",
		    vm->name);
		mighold_end(vm, NULL);
		if (start && vm_hint(vm, err, sizeof err) != 0)
			log_info("vm %s: no hint pass: %s", vm->name, err);
		return;
	}
	mh->was = was;
	if (start && vm_hint(vm, err, sizeof err) != 0) {
		log_info("vm %s: no hint pass: %s", vm->name, err);
		mighold_end(vm, "no hint pass");
		return;
	}
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
mighold_log_unpaid(
    const struct vm *vm, const struct pass_estimate *e, uint64_t was)
{
	uint64_t bps = conf->policy.migration_link_bps;

	if (was < bps)
		bps = was;
	if (bps == 0)
		bps = 1;
	log_info("vm %s: no hint pass: at %" PRIu64 " MiB/s the migration "
	         "sends the %" PRIu64 " MiB a pass would keep back in "
	         "%" PRIu64 " ms, and the pass would take about %" PRIu64
	         " ms (%" PRIu64 " MiB at %" PRIu64 " MiB/s, and QEMU's wait)",
	    vm->name, bps >> 20, e->gain >> 20,
	    (uint64_t)((double)e->gain * 1000 / (double)bps), e->cost_ms,
	    e->capture >> 20, e->speed >> 20);
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
		vm->speed(vm->speed_ctx, (uint64_t)mh->was, UINT64_MAX,
		    mighold_restore_cb, mh);
		return;
	}
	mighold_free_maybe(mh);
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libvirt's domain events, and the migrations they start and end. The
 * callbacks run on libvirt's event thread (libvirt_loop.c): each posts
 * what it got, and the loop acts on it. A migration ends with an event or
 * when polling the domain's job finds it gone.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common.h"
#include "libvirt.h"

#define VL_JOBPOLL_MS 500

enum vl_ev {
	VL_EV_LIFECYCLE,
	VL_EV_ITERATION,
	VL_EV_JOB_COMPLETED,
	VL_EV_DEVICE,
	VL_EV_METADATA,
	VL_EV_COUNT
};

static void vl_ev_post(virDomainPtr, enum vl_ev, int, int);
static int vl_lifecycle_cb(virConnectPtr, virDomainPtr, int, int, void *);
static void vl_iteration_cb(virConnectPtr, virDomainPtr, int, void *);
static void vl_job_completed_cb(
    virConnectPtr, virDomainPtr, virTypedParameterPtr, int, void *);
static void vl_device_cb(virConnectPtr, virDomainPtr, const char *, void *);
static void vl_metadata_cb(
    virConnectPtr, virDomainPtr, int, const char *, void *);
static void vl_ev_done(struct vl_job *);
static void vl_lifecycle(const char *, int, int);
static void vl_jobpoll_arm(struct vl_dom *);
static void vl_jobpoll_work(struct vl_job *, virConnectPtr);
static void vl_jobpoll_done(struct vl_job *);

/* What the source follows; a device plugged or unplugged may be a
 * <hostdev>; freehint's metadata is the VM's policy. */
static const struct {
	int id;
	virConnectDomainEventGenericCallback cb;
} vl_events[] = {
	{ VIR_DOMAIN_EVENT_ID_LIFECYCLE,
	    VIR_DOMAIN_EVENT_CALLBACK(vl_lifecycle_cb) },
	{ VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
	    VIR_DOMAIN_EVENT_CALLBACK(vl_iteration_cb) },
	{ VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
	    VIR_DOMAIN_EVENT_CALLBACK(vl_job_completed_cb) },
	{ VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
	    VIR_DOMAIN_EVENT_CALLBACK(vl_device_cb) },
	{ VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
	    VIR_DOMAIN_EVENT_CALLBACK(vl_device_cb) },
	{ VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
	    VIR_DOMAIN_EVENT_CALLBACK(vl_metadata_cb) },
};

/* The workers' own: registered by a connect, dropped by a disconnect. */
static int vl_cb_ids[FH_ARRAY_SIZE(vl_events)] = { -1, -1, -1, -1, -1, -1 };

/* On a worker, with the connection just opened. */
void
vl_events_register(virConnectPtr conn)
{
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(vl_events); i++)
		vl_cb_ids[i] = virConnectDomainEventRegisterAny(
		    conn, NULL, vl_events[i].id, vl_events[i].cb, NULL, NULL);
}

void
vl_events_deregister(virConnectPtr conn)
{
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(vl_cb_ids); i++) {
		if (vl_cb_ids[i] >= 0)
			virConnectDomainEventDeregisterAny(conn, vl_cb_ids[i]);
		vl_cb_ids[i] = -1;
	}
}

/* ---- on libvirt's event thread: copy and post ---- */

static void
vl_ev_post(virDomainPtr dom, enum vl_ev what, int event, int detail)
{
	struct vl_job *j;

	j = vl_job_new(NULL, vl_ev_done, virDomainGetName(dom));
	j->kind = (int)what;
	j->state = event;
	j->reason = detail;
	vl_post(j);
}

static int
vl_lifecycle_cb(
    virConnectPtr conn, virDomainPtr dom, int event, int detail, void *arg)
{
	vl_ev_post(dom, VL_EV_LIFECYCLE, event, detail);
	return 0;
}

static void
vl_iteration_cb(virConnectPtr conn, virDomainPtr dom, int iteration, void *arg)
{
	vl_ev_post(dom, VL_EV_ITERATION, 0, 0);
}

static void
vl_job_completed_cb(virConnectPtr conn, virDomainPtr dom,
    virTypedParameterPtr params, int nparams, void *arg)
{
	vl_ev_post(dom, VL_EV_JOB_COMPLETED, 0, 0);
}

static void
vl_device_cb(virConnectPtr conn, virDomainPtr dom, const char *alias, void *arg)
{
	vl_ev_post(dom, VL_EV_DEVICE, 0, 0);
}

static void
vl_metadata_cb(virConnectPtr conn, virDomainPtr dom, int type,
    const char *nsuri, void *arg)
{
	if (type == VIR_DOMAIN_METADATA_ELEMENT && nsuri != NULL &&
	    strcmp(nsuri, FREEHINT_XMLNS) == 0)
		vl_ev_post(dom, VL_EV_METADATA, 0, 0);
}

/* ---- on the loop ---- */

static void
vl_ev_done(struct vl_job *j)
{
	struct vl_dom *d;

	if (j->name == NULL)
		return;
	switch ((enum vl_ev)j->kind) {
	case VL_EV_LIFECYCLE:
		vl_lifecycle(j->name, j->state, j->reason);
		break;
	case VL_EV_ITERATION:
		vl_migration_start(j->name, "migration iteration");
		break;
	case VL_EV_JOB_COMPLETED:
		vl_migration_end(j->name, "job completed");
		break;
	case VL_EV_DEVICE:
	case VL_EV_METADATA: /* read with the domain */
		if ((d = vl_dom_find(j->name)) != NULL)
			vl_dom_schedule(d, 0);
		break;
	case VL_EV_COUNT:
		break;
	}
}

static void
vl_lifecycle(const char *name, int event, int detail)
{
	struct vl_dom *d;

	log_debug(
	    "libvirt: %s: lifecycle event %d detail %d", name, event, detail);
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		d = vl_dom_get(name);
		/* An incoming migration: treated as postcopy from the
		 * start, so that the switchover's event, which comes after
		 * the guest runs here, leaves no moment to punch in. */
		if (detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED)
			vl_postcopy(d, true, "incoming migration");
		vl_dom_schedule(d, 0);
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		if ((d = vl_dom_find(name)) == NULL)
			break;
		if (detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED)
			vl_migration_start(name, "suspended for migration");
		else if (detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY ||
		    detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED) {
			/* The source: its vCPUs stop, the guest runs on. */
			vl_migration_start(name, "suspended for postcopy");
			vl_postcopy(d, false, "suspended for postcopy");
		} else if (detail == VIR_DOMAIN_EVENT_SUSPENDED_PAUSED)
			vl_dom_schedule(d, 0); /* a save pauses first */
		break;
	case VIR_DOMAIN_EVENT_RESUMED:
		d = vl_dom_get(name);
		/*
		 * The destination runs the guest before it has its RAM. Its
		 * RESUMED_MIGRATED comes while postcopy still runs (libvirt
		 * 9.0: at the start of its Finish phase): a read of the
		 * domain, running and no longer in postcopy, ends it.
		 */
		if (detail == VIR_DOMAIN_EVENT_RESUMED_POSTCOPY ||
		    detail == VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED)
			vl_postcopy(d, true, "resumed in postcopy");
		else if (!d->postcopy)
			vl_migration_end(name, "resumed");
		vl_dom_schedule(d, 0);
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		if ((d = vl_dom_find(name)) == NULL)
			break;
		vl_migration_end(name, "stopped");
		log_info("libvirt: %s stopped (detail %d)", name, detail);
		vl_dom_remove(d);
		break;
	default:
		break;
	}
}

void
vl_migration_start(const char *name, const char *why)
{
	struct vl_dom *d;

	if ((d = vl_dom_find(name)) == NULL || d->migrating)
		return;
	d->migrating = true;
	log_info("libvirt: %s: migration started (%s)", d->name, why);
	if (d->added)
		vm_source_migration(d->name, VM_MIGRATION_STARTED);
	/* Not every way a job ends has an event: poll until it is gone. */
	vl_jobpoll_arm(d);
}

/*
 * The end of a migration, or of an incoming one or a postcopy (on the
 * destination: JOB_COMPLETED, or a read that finds the domain running
 * outside postcopy). A postcopy that ends leaves discards on only where
 * the guest runs.
 */
void
vl_migration_end(const char *name, const char *why)
{
	struct vl_dom *d;
	bool postcopy;

	if ((d = vl_dom_find(name)) == NULL || (!d->migrating && !d->postcopy))
		return;
	postcopy = d->postcopy;
	d->migrating = false;
	d->postcopy = false;
	evtimer_del(d->jobpoll);
	log_info("libvirt: %s: %s finished (%s)", d->name,
	    postcopy ? "postcopy migration" : "migration", why);
	if (!d->added)
		return;
	if (postcopy)
		vm_source_running(d->name, d->pc_here);
	vm_source_migration(d->name, VM_MIGRATION_FINISHED);
}

/*
 * Postcopy, on either side (here: the guest's vCPUs run on this host, the
 * destination), and every incoming migration: the registry punches
 * nothing in this QEMU's RAM until the migration is over (vm.c,
 * vm_postcopy). Told again after every add, which starts a VM afresh
 * (libvirt_dom.c).
 */
void
vl_postcopy(struct vl_dom *d, bool here, const char *why)
{
	if (!d->postcopy) {
		d->postcopy = true;
		d->pc_seq++;
		log_info("libvirt: %s: postcopy migration, %s (%s): no "
		         "discard until it ends",
		    d->name, here ? "the guest runs here" : "the guest left",
		    why);
	}
	d->pc_here = here;
	if (d->added) {
		vm_source_migration(d->name, VM_MIGRATION_POSTCOPY);
		vm_source_running(d->name, here);
	}
	vl_dom_schedule(d, VL_POSTCOPY_POLL_MS);
}

/*
 * What a read of the domain says of postcopy. A read asked before the
 * last postcopy start (!fresh) may predate it and cannot end it; a
 * fresh one that finds the guest running, not in postcopy, can.
 */
void
vl_postcopy_state(struct vl_dom *d, int state, int reason, bool fresh)
{
	if (state == VIR_DOMAIN_RUNNING &&
	    (reason == VIR_DOMAIN_RUNNING_POSTCOPY ||
	        reason == VIR_DOMAIN_RUNNING_POSTCOPY_FAILED))
		vl_postcopy(d, true, "running in postcopy");
	else if (state == VIR_DOMAIN_PAUSED &&
	    (reason == VIR_DOMAIN_PAUSED_POSTCOPY ||
	        reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED))
		vl_postcopy(d, false, "paused in postcopy");
	else if (d->postcopy && fresh && state == VIR_DOMAIN_RUNNING) {
		d->pc_here = true;
		vl_migration_end(d->name, "running, postcopy over");
	} else if (d->postcopy)
		vl_dom_schedule(d, VL_POSTCOPY_POLL_MS);
}

static void
vl_jobpoll_arm(struct vl_dom *d)
{
	struct timeval tv = { 0, VL_JOBPOLL_MS * 1000 };

	evtimer_add(d->jobpoll, &tv);
}

/* d->jobpoll's timer. */
void
vl_jobpoll(int fd, short what, void *arg)
{
	struct vl_dom *d = arg;
	struct vl_job *j;

	if (!d->migrating || d->jobpolling)
		return;
	if (!vl_is_up()) {
		/* Poll again once libvirtd is back. */
		vl_jobpoll_arm(d);
		return;
	}
	d->jobpolling = true;
	j = vl_job_new(vl_jobpoll_work, vl_jobpoll_done, d->name);
	j->gen = d->gen;
	vl_submit(j);
}

static void
vl_jobpoll_work(struct vl_job *j, virConnectPtr conn)
{
	virDomainJobInfo info;
	virDomainPtr dom;

	if ((dom = vl_job_domain(j, conn)) == NULL)
		return;
	if (virDomainGetJobInfo(dom, &info) < 0)
		vl_job_fail(j);
	else
		j->state = info.type;
	virDomainFree(dom);
}

static void
vl_jobpoll_done(struct vl_job *j)
{
	struct vl_dom *d;

	if ((d = vl_dom_find(j->name)) == NULL || d->gen != j->gen)
		return;
	d->jobpolling = false;
	if (!d->migrating)
		return;
	if (j->err != NULL && (j->code == -1 || !vl_is_up())) {
		vl_jobpoll_arm(d);
		return;
	}
	if (j->err != NULL) {
		log_debug("libvirt: %s: job info: %s", d->name, j->err);
		vl_migration_end(d->name, "job info unavailable");
		return;
	}
	if (j->state == VIR_DOMAIN_JOB_BOUNDED ||
	    j->state == VIR_DOMAIN_JOB_UNBOUNDED) {
		vl_jobpoll_arm(d);
		return;
	}
	vl_migration_end(d->name, "job gone");
}

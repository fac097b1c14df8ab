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
		vl_dom_schedule(vl_dom_get(name), 0);
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		if ((d = vl_dom_find(name)) == NULL)
			break;
		if (detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED)
			vl_migration_start(name, "suspended for migration");
		else if (detail == VIR_DOMAIN_EVENT_SUSPENDED_PAUSED)
			vl_dom_schedule(d, 0); /* a save pauses first */
		break;
	case VIR_DOMAIN_EVENT_RESUMED:
		d = vl_dom_get(name);
		if (detail != VIR_DOMAIN_EVENT_RESUMED_POSTCOPY)
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

void
vl_migration_end(const char *name, const char *why)
{
	struct vl_dom *d;

	if ((d = vl_dom_find(name)) == NULL || !d->migrating)
		return;
	d->migrating = false;
	evtimer_del(d->jobpoll);
	log_info("libvirt: %s: migration finished (%s)", d->name, why);
	if (d->added)
		vm_source_migration(d->name, VM_MIGRATION_FINISHED);
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

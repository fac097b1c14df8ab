/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The libvirt VM source: finds running domains through libvirt's C API,
 * reads what freehintd needs from their live XML (channel, vsock CID,
 * memory backing), finds their QEMU process, follows lifecycle and
 * migration events and hands all of it to the VM registry (vmsource.h).
 *
 * libvirt's client runs on freehintd's own libevent loop: vl_event_*
 * implement virEventRegisterImpl on top of libevent, so the daemon stays
 * single-threaded. Besides the peer module, this is the one place that
 * registers events on file descriptors, and only on libvirt's own.
 *
 * Nothing here changes state libvirt tracks: the only monitor commands
 * are read-only HMP queries (info mtree -f, gpa2hva, info cpus).
 */
#include <sys/queue.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common.h"
#include "libvirt.h"
#include "vmsource.h"

#define VL_CHANNEL_NAME    "org.freehint.agent.0"
#define VL_PID_DIR         "/run/libvirt/qemu"
#define VL_RECONNECT_MIN_S 1
#define VL_RECONNECT_MAX_S 30
#define VL_KEEPALIVE_S     5
#define VL_KEEPALIVE_COUNT 3
/* After a hook, let freehintctl's answer go out before asking libvirtd:
 * libvirtd holds the domain while the hook runs. */
#define VL_HOOK_DELAY_MS 100
#define VL_JOBPOLL_MS    500
#define VL_XML_DEPTH     16

/* libvirt's event loop on libevent: one handle or timeout. */
struct vl_watch {
	int id;
	bool timer;
	bool deleted;
	int fd;
	struct event *ev;
	virEventHandleCallback hcb;
	virEventTimeoutCallback tcb;
	void *opaque;
	virFreeCallback ff;
	TAILQ_ENTRY(vl_watch) entry;
};
TAILQ_HEAD(vl_watch_list, vl_watch);

/* One running domain the source knows. */
struct vl_dom {
	char *name;
	virDomainPtr dom; /* NULL while disconnected */
	bool added; /* known to the registry */
	char *key; /* the vm_desc last added, to add again only on change */
	bool migrating;
	struct event *refresh;
	struct event *jobpoll;
	TAILQ_ENTRY(vl_dom) entry;
};
TAILQ_HEAD(vl_dom_list, vl_dom);

static void vl_ev_handle_cb(int, short, void *);
static void vl_ev_timeout_cb(int, short, void *);
static struct vl_watch *vl_watch_find(int, bool);
static void vl_watch_reap(int, short, void *);
static void vl_watch_delete(struct vl_watch *);
static int vl_add_handle(
    int, int, virEventHandleCallback, void *, virFreeCallback);
static void vl_update_handle(int, int);
static int vl_remove_handle(int);
static int vl_add_timeout(
    int, virEventTimeoutCallback, void *, virFreeCallback);
static void vl_update_timeout(int, int);
static int vl_remove_timeout(int);
static void vl_timeout_arm(struct vl_watch *, int);
static void vl_error_func(void *, virErrorPtr);
static const char *vl_lasterr(void);

static void vl_connect(int, short, void *);
static void vl_schedule_reconnect(void);
static void vl_disconnect(void);
static void vl_close_cb(virConnectPtr, int, void *);
static void vl_lost(int, short, void *);
static int vl_lifecycle_cb(virConnectPtr, virDomainPtr, int, int, void *);
static void vl_iteration_cb(virConnectPtr, virDomainPtr, int, void *);
static void vl_job_completed_cb(
    virConnectPtr, virDomainPtr, virTypedParameterPtr, int, void *);

static struct vl_dom *vl_dom_find(const char *);
static struct vl_dom *vl_dom_get(const char *);
static void vl_dom_remove(struct vl_dom *);
static void vl_dom_set(struct vl_dom *, virDomainPtr);
static void vl_dom_schedule(struct vl_dom *, int);
static void vl_dom_refresh_cb(int, short, void *);
static void vl_dom_refresh(struct vl_dom *);
static void vl_migration_start(struct vl_dom *, const char *);
static void vl_migration_end(struct vl_dom *, const char *);
static void vl_jobpoll_cb(int, short, void *);
static int vl_hmp(void *, const char *, char **);
static void vl_hmp_registry(void *, const char *, vm_hmp_done, void *);
static pid_t vl_find_pid(struct vl_dom *);
static bool vl_pid_is(pid_t, const char *);

static void vl_xml_path(char *, size_t, const char *, size_t);
static bool vl_xml_shared(const struct vl_xml *);
static int vl_xml_attr(
    const char *, const char *, const char *, char *, size_t);
static int vl_xml_decode(const char *, size_t, char *, size_t);
static void vl_xml_start(
    struct vl_xml *, const char *, const char *, const char *, char *, size_t);
static void vl_why(char *, size_t, size_t *, const char *);

static struct event_base *vl_base;
static struct vl_watch_list vl_watches = TAILQ_HEAD_INITIALIZER(vl_watches);
static int vl_next_watch = 1;
static struct event *vl_reap_ev;
static bool vl_impl_registered;

static char *vl_uri;
static virConnectPtr vl_conn;
static int vl_cb_ids[4] = { -1, -1, -1, -1 };
static struct event *vl_reconnect_ev;
static struct event *vl_lost_ev;
static int vl_backoff = VL_RECONNECT_MIN_S;
static struct vl_dom_list vl_doms = TAILQ_HEAD_INITIALIZER(vl_doms);

/* ---- libvirt's event loop on libevent ---- */

static void
vl_ev_handle_cb(int fd, short what, void *arg)
{
	struct vl_watch *w = arg;
	int events = 0;

	if (w->deleted)
		return;
	if (what & EV_READ)
		events |= VIR_EVENT_HANDLE_READABLE;
	if (what & EV_WRITE)
		events |= VIR_EVENT_HANDLE_WRITABLE;
	w->hcb(w->id, w->fd, events, w->opaque);
}

static void
vl_ev_timeout_cb(int fd, short what, void *arg)
{
	struct vl_watch *w = arg;

	if (!w->deleted)
		w->tcb(w->id, w->opaque);
}

static struct vl_watch *
vl_watch_find(int id, bool timer)
{
	struct vl_watch *w;

	TAILQ_FOREACH(w, &vl_watches, entry)
	{
		if (w->id == id && w->timer == timer && !w->deleted)
			return (w);
	}
	return (NULL);
}

/*
 * libvirt wants the free callback run from a clean stack, never from
 * inside remove (it may take locks the caller holds): deleted watches are
 * freed on the next loop iteration.
 */
static void
vl_watch_reap(int fd, short what, void *arg)
{
	struct vl_watch *w, *tmp;

	for (w = TAILQ_FIRST(&vl_watches); w != NULL; w = tmp) {
		tmp = TAILQ_NEXT(w, entry);
		if (!w->deleted)
			continue;
		TAILQ_REMOVE(&vl_watches, w, entry);
		if (w->ff != NULL)
			w->ff(w->opaque);
		free(w);
	}
}

static void
vl_watch_delete(struct vl_watch *w)
{
	struct timeval tv = { 0, 0 };

	event_free(w->ev);
	w->ev = NULL;
	w->deleted = true;
	evtimer_add(vl_reap_ev, &tv);
}

static int
vl_add_handle(int fd, int events, virEventHandleCallback cb, void *opaque,
    virFreeCallback ff)
{
	struct vl_watch *w;

	w = xcalloc(1, sizeof(*w));
	w->id = vl_next_watch++;
	w->fd = fd;
	w->hcb = cb;
	w->opaque = opaque;
	w->ff = ff;
	TAILQ_INSERT_TAIL(&vl_watches, w, entry);
	vl_update_handle(w->id, events);
	return (w->id);
}

static void
vl_update_handle(int id, int events)
{
	struct vl_watch *w;
	short what = EV_PERSIST;

	if ((w = vl_watch_find(id, false)) == NULL)
		return;
	if (events & VIR_EVENT_HANDLE_READABLE)
		what |= EV_READ;
	if (events & VIR_EVENT_HANDLE_WRITABLE)
		what |= EV_WRITE;
	if (w->ev != NULL)
		event_free(w->ev);
	w->ev = event_new(vl_base, w->fd, what, vl_ev_handle_cb, w);
	if (w->ev == NULL)
		fatalx("%s: event_new", __func__);
	if ((what & (EV_READ | EV_WRITE)) && event_add(w->ev, NULL) == -1)
		fatalx("%s: event_add", __func__);
}

static int
vl_remove_handle(int id)
{
	struct vl_watch *w;

	if ((w = vl_watch_find(id, false)) == NULL)
		return (-1);
	vl_watch_delete(w);
	return (0);
}

static void
vl_timeout_arm(struct vl_watch *w, int ms)
{
	struct timeval tv;

	evtimer_del(w->ev);
	if (ms < 0)
		return;
	tv = fh_ms_timeval(ms);
	if (event_add(w->ev, &tv) == -1)
		fatalx("%s: event_add", __func__);
}

static int
vl_add_timeout(
    int ms, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff)
{
	struct vl_watch *w;

	w = xcalloc(1, sizeof(*w));
	w->id = vl_next_watch++;
	w->timer = true;
	w->fd = -1;
	w->tcb = cb;
	w->opaque = opaque;
	w->ff = ff;
	/* A libvirt timeout repeats every ms until removed or disabled. */
	w->ev = event_new(vl_base, -1, EV_PERSIST, vl_ev_timeout_cb, w);
	if (w->ev == NULL)
		fatalx("%s: event_new", __func__);
	TAILQ_INSERT_TAIL(&vl_watches, w, entry);
	vl_timeout_arm(w, ms);
	return (w->id);
}

static void
vl_update_timeout(int id, int ms)
{
	struct vl_watch *w;

	if ((w = vl_watch_find(id, true)) != NULL)
		vl_timeout_arm(w, ms);
}

static int
vl_remove_timeout(int id)
{
	struct vl_watch *w;

	if ((w = vl_watch_find(id, true)) == NULL)
		return (-1);
	vl_watch_delete(w);
	return (0);
}

/* libvirt prints every error to stderr unless told otherwise. */
static void
vl_error_func(void *arg, virErrorPtr err)
{
	if (err != NULL && err->message != NULL)
		log_debug("libvirt: %s", err->message);
}

static const char *
vl_lasterr(void)
{
	const char *s = virGetLastErrorMessage();

	return (s != NULL ? s : "unknown libvirt error");
}

/* ---- the connection ---- */

int
vl_init(struct event_base *base, const char *uri)
{
	if (vl_base != NULL && vl_base != base) {
		log_warnx(
		    "%s: already running on another event base", __func__);
		return (-1);
	}
	vl_base = base;
	if (virInitialize() < 0) {
		log_warnx("%s: virInitialize failed", __func__);
		return (-1);
	}
	virSetErrorFunc(NULL, vl_error_func);
	if (vl_reap_ev == NULL &&
	    (vl_reap_ev = evtimer_new(base, vl_watch_reap, NULL)) == NULL) {
		log_warnx("%s: evtimer_new", __func__);
		return (-1);
	}
	/* Once per process: libvirt keeps the first implementation. */
	if (!vl_impl_registered) {
		virEventRegisterImpl(vl_add_handle, vl_update_handle,
		    vl_remove_handle, vl_add_timeout, vl_update_timeout,
		    vl_remove_timeout);
		vl_impl_registered = true;
	}
	free(vl_uri);
	vl_uri = xstrdup(uri != NULL && *uri != '\0' ? uri : VL_DEFAULT_URI);
	if (vl_reconnect_ev == NULL)
		vl_reconnect_ev = evtimer_new(base, vl_connect, NULL);
	if (vl_lost_ev == NULL)
		vl_lost_ev = evtimer_new(base, vl_lost, NULL);
	if (vl_reconnect_ev == NULL || vl_lost_ev == NULL) {
		log_warnx("%s: evtimer_new", __func__);
		return (-1);
	}
	vl_backoff = VL_RECONNECT_MIN_S;
	vl_connect(-1, 0, NULL);
	return (0);
}

void
vl_shutdown(void)
{
	struct vl_dom *d;

	if (vl_base == NULL)
		return;
	vl_disconnect();
	while ((d = TAILQ_FIRST(&vl_doms)) != NULL)
		vl_dom_remove(d);
	if (vl_reconnect_ev != NULL)
		event_free(vl_reconnect_ev);
	if (vl_lost_ev != NULL)
		event_free(vl_lost_ev);
	vl_reconnect_ev = vl_lost_ev = NULL;
	free(vl_uri);
	vl_uri = NULL;
	/* The reap event stays: libvirt may still remove watches later. */
	vl_watch_reap(-1, 0, NULL);
}

static void
vl_connect(int fd, short what, void *arg)
{
	virDomainPtr *list = NULL;
	struct vl_dom *d, *tmp;
	int i, n;

	if (vl_conn != NULL)
		return;
	if ((vl_conn = virConnectOpen(vl_uri)) == NULL) {
		log_warnx("libvirt: cannot connect to %s: %s (retry in %d s)",
		    vl_uri, vl_lasterr(), vl_backoff);
		vl_schedule_reconnect();
		return;
	}
	if (virConnectSetKeepAlive(
	        vl_conn, VL_KEEPALIVE_S, VL_KEEPALIVE_COUNT) < 0)
		log_debug("libvirt: no keepalive: %s", vl_lasterr());
	if (virConnectRegisterCloseCallback(vl_conn, vl_close_cb, NULL, NULL) <
	    0)
		log_warnx("libvirt: no close callback: %s", vl_lasterr());
	vl_cb_ids[0] = virConnectDomainEventRegisterAny(vl_conn, NULL,
	    VIR_DOMAIN_EVENT_ID_LIFECYCLE,
	    VIR_DOMAIN_EVENT_CALLBACK(vl_lifecycle_cb), NULL, NULL);
	vl_cb_ids[1] = virConnectDomainEventRegisterAny(vl_conn, NULL,
	    VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
	    VIR_DOMAIN_EVENT_CALLBACK(vl_iteration_cb), NULL, NULL);
	vl_cb_ids[2] = virConnectDomainEventRegisterAny(vl_conn, NULL,
	    VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
	    VIR_DOMAIN_EVENT_CALLBACK(vl_job_completed_cb), NULL, NULL);
	vl_cb_ids[3] = vlp_register(vl_conn);
	if (vl_cb_ids[0] < 0)
		log_warnx("libvirt: no lifecycle events: %s", vl_lasterr());

	n = virConnectListAllDomains(
	    vl_conn, &list, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0) {
		log_warnx("libvirt: cannot list domains: %s", vl_lasterr());
		vl_disconnect();
		vl_schedule_reconnect();
		return;
	}
	log_info("libvirt: connected to %s, %d running domain%s", vl_uri, n,
	    n == 1 ? "" : "s");
	vl_backoff = VL_RECONNECT_MIN_S;

	/* Domains that stopped while libvirtd was away are gone now. */
	for (d = TAILQ_FIRST(&vl_doms); d != NULL; d = tmp) {
		tmp = TAILQ_NEXT(d, entry);
		for (i = 0; i < n; i++) {
			if (strcmp(virDomainGetName(list[i]), d->name) == 0)
				break;
		}
		if (i == n) {
			log_info("libvirt: %s no longer runs", d->name);
			vl_dom_remove(d);
		}
	}
	for (i = 0; i < n; i++) {
		d = vl_dom_get(virDomainGetName(list[i]));
		vl_dom_set(d, list[i]);
		vl_dom_refresh(d);
		virDomainFree(list[i]);
	}
	free(list);
}

static void
vl_schedule_reconnect(void)
{
	struct timeval tv = { vl_backoff, 0 };

	if (vl_reconnect_ev == NULL)
		return;
	evtimer_add(vl_reconnect_ev, &tv);
	vl_backoff *= 2;
	if (vl_backoff > VL_RECONNECT_MAX_S)
		vl_backoff = VL_RECONNECT_MAX_S;
}

/* Domains stay with the registry: QEMU runs on without libvirtd. */
static void
vl_disconnect(void)
{
	struct vl_dom *d;
	size_t i;

	TAILQ_FOREACH(d, &vl_doms, entry)
	vl_dom_set(d, NULL);
	if (vl_conn == NULL)
		return;
	for (i = 0; i < FH_ARRAY_SIZE(vl_cb_ids); i++) {
		if (vl_cb_ids[i] >= 0)
			virConnectDomainEventDeregisterAny(
			    vl_conn, vl_cb_ids[i]);
		vl_cb_ids[i] = -1;
	}
	virConnectUnregisterCloseCallback(vl_conn, vl_close_cb);
	virConnectClose(vl_conn);
	vl_conn = NULL;
}

/* Called by libvirt inside its own dispatch: act from a clean stack. */
static void
vl_close_cb(virConnectPtr conn, int reason, void *arg)
{
	struct timeval tv = { 0, 0 };

	log_warnx("libvirt: connection to %s lost (reason %d)", vl_uri, reason);
	if (vl_lost_ev != NULL)
		evtimer_add(vl_lost_ev, &tv);
}

static void
vl_lost(int fd, short what, void *arg)
{
	vl_disconnect();
	vl_backoff = VL_RECONNECT_MIN_S;
	vl_schedule_reconnect();
}

/* ---- events ---- */

static int
vl_lifecycle_cb(
    virConnectPtr conn, virDomainPtr dom, int event, int detail, void *arg)
{
	const char *name = virDomainGetName(dom);
	struct vl_dom *d;

	log_debug(
	    "libvirt: %s: lifecycle event %d detail %d", name, event, detail);
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		d = vl_dom_get(name);
		vl_dom_set(d, dom);
		vl_dom_schedule(d, 0);
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		if ((d = vl_dom_find(name)) == NULL)
			break;
		if (detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED)
			vl_migration_start(d, "suspended for migration");
		else if (detail == VIR_DOMAIN_EVENT_SUSPENDED_PAUSED)
			vl_dom_schedule(d, 0); /* a save pauses first */
		break;
	case VIR_DOMAIN_EVENT_RESUMED:
		if ((d = vl_dom_find(name)) == NULL) {
			d = vl_dom_get(name);
			vl_dom_set(d, dom);
		}
		if (detail != VIR_DOMAIN_EVENT_RESUMED_POSTCOPY)
			vl_migration_end(d, "resumed");
		vl_dom_schedule(d, 0);
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		if ((d = vl_dom_find(name)) == NULL)
			break;
		vl_migration_end(d, "stopped");
		log_info("libvirt: %s stopped (detail %d)", name, detail);
		vl_dom_remove(d);
		break;
	default:
		break;
	}
	return (0);
}

static void
vl_iteration_cb(virConnectPtr conn, virDomainPtr dom, int iteration, void *arg)
{
	struct vl_dom *d;

	if ((d = vl_dom_find(virDomainGetName(dom))) != NULL)
		vl_migration_start(d, "migration iteration");
}

static void
vl_job_completed_cb(virConnectPtr conn, virDomainPtr dom,
    virTypedParameterPtr params, int nparams, void *arg)
{
	struct vl_dom *d;

	if ((d = vl_dom_find(virDomainGetName(dom))) != NULL)
		vl_migration_end(d, "job completed");
}

static void
vl_migration_start(struct vl_dom *d, const char *why)
{
	struct timeval tv = { 0, VL_JOBPOLL_MS * 1000 };

	if (d->migrating)
		return;
	d->migrating = true;
	log_info("libvirt: %s: migration started (%s)", d->name, why);
	if (d->added)
		vm_source_migration(d->name, VM_MIGRATION_STARTED);
	/* Not every way a job ends has an event: poll until it is gone. */
	evtimer_add(d->jobpoll, &tv);
}

static void
vl_migration_end(struct vl_dom *d, const char *why)
{
	if (!d->migrating)
		return;
	d->migrating = false;
	evtimer_del(d->jobpoll);
	log_info("libvirt: %s: migration finished (%s)", d->name, why);
	if (d->added)
		vm_source_migration(d->name, VM_MIGRATION_FINISHED);
}

static void
vl_jobpoll_cb(int fd, short what, void *arg)
{
	struct vl_dom *d = arg;
	struct timeval tv = { 0, VL_JOBPOLL_MS * 1000 };
	virDomainJobInfo info;

	if (!d->migrating)
		return;
	if (d->dom == NULL) {
		/* Disconnected: poll again once libvirtd is back. */
		evtimer_add(d->jobpoll, &tv);
		return;
	}
	if (virDomainGetJobInfo(d->dom, &info) < 0) {
		log_debug("libvirt: %s: job info: %s", d->name, vl_lasterr());
		vl_migration_end(d, "job info unavailable");
		return;
	}
	if (info.type == VIR_DOMAIN_JOB_BOUNDED ||
	    info.type == VIR_DOMAIN_JOB_UNBOUNDED) {
		evtimer_add(d->jobpoll, &tv);
		return;
	}
	vl_migration_end(d, "job gone");
}

/* ---- domains ---- */

static struct vl_dom *
vl_dom_find(const char *name)
{
	struct vl_dom *d;

	TAILQ_FOREACH(d, &vl_doms, entry)
	{
		if (strcmp(d->name, name) == 0)
			return (d);
	}
	return (NULL);
}

static struct vl_dom *
vl_dom_get(const char *name)
{
	struct vl_dom *d;

	if ((d = vl_dom_find(name)) != NULL)
		return (d);
	d = xcalloc(1, sizeof(*d));
	d->name = xstrdup(name);
	d->refresh = evtimer_new(vl_base, vl_dom_refresh_cb, d);
	d->jobpoll = evtimer_new(vl_base, vl_jobpoll_cb, d);
	if (d->refresh == NULL || d->jobpoll == NULL)
		fatalx("%s: evtimer_new", __func__);
	TAILQ_INSERT_TAIL(&vl_doms, d, entry);
	return (d);
}

static void
vl_dom_remove(struct vl_dom *d)
{
	TAILQ_REMOVE(&vl_doms, d, entry);
	if (d->added)
		vm_source_remove(d->name);
	event_free(d->refresh);
	event_free(d->jobpoll);
	vl_dom_set(d, NULL);
	free(d->key);
	free(d->name);
	free(d);
}

static void
vl_dom_set(struct vl_dom *d, virDomainPtr dom)
{
	if (d->dom == dom)
		return;
	if (dom != NULL && virDomainRef(dom) < 0)
		dom = NULL;
	if (d->dom != NULL)
		virDomainFree(d->dom);
	d->dom = dom;
}

static void
vl_dom_schedule(struct vl_dom *d, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(d->refresh, &tv);
}

static void
vl_dom_refresh_cb(int fd, short what, void *arg)
{
	vl_dom_refresh(arg);
}

/*
 * Reads the domain again and tells the registry when what it knows
 * changed. A domain that no longer runs is removed.
 */
static void
vl_dom_refresh(struct vl_dom *d)
{
	struct vm_desc desc;
	struct vl_xml x;
	char *xml, *why, *key;
	int state, reason;
	pid_t pid;

	if (d->dom == NULL)
		return;
	if (virDomainGetState(d->dom, &state, &reason, 0) < 0) {
		/* Only libvirtd saying so means gone: a connection lost
		 * while libvirtd restarts keeps the domain until the
		 * reconnection reads it again. */
		if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN) {
			log_debug(
			    "libvirt: %s: state: %s", d->name, vl_lasterr());
			return;
		}
		state = VIR_DOMAIN_SHUTOFF;
	}
	if (state == VIR_DOMAIN_SHUTOFF || state == VIR_DOMAIN_NOSTATE) {
		log_info("libvirt: %s is not running", d->name);
		vl_migration_end(d, "not running");
		vl_dom_remove(d);
		return;
	}
	/* A save pauses the guest before its job runs: the first sign of
	 * it. (PAUSED_MIGRATION is also an incoming migration or a restore,
	 * and an outgoing one has its own event.) */
	if (state == VIR_DOMAIN_PAUSED &&
	    (reason == VIR_DOMAIN_PAUSED_SAVE ||
	        reason == VIR_DOMAIN_PAUSED_SNAPSHOT))
		vl_migration_start(d, "paused for a save");

	if ((xml = virDomainGetXMLDesc(d->dom, 0)) == NULL) {
		log_warnx("libvirt: %s: cannot read its XML: %s", d->name,
		    vl_lasterr());
		return;
	}
	if (vl_xml_parse(xml, &x) == -1)
		log_warnx("libvirt: %s: malformed domain XML", d->name);
	free(xml);
	pid = vl_find_pid(d);
	why = vl_unservable(&x, pid);

	memset(&desc, 0, sizeof(desc));
	desc.name = d->name;
	desc.source = "libvirt";
	desc.cid = x.cid;
	desc.channel = x.channel;
	desc.qemu_pid = pid;
	desc.backing = x.backing;
	desc.shared = vl_xml_shared(&x);
	desc.unservable = why;
	xasprintf(&key, "%u|%s|%ld|%d|%d|%s", desc.cid,
	    desc.channel != NULL ? desc.channel : "", (long)desc.qemu_pid,
	    (int)desc.backing, (int)desc.shared, why != NULL ? why : "");
	if (!d->added || d->key == NULL || strcmp(key, d->key) != 0) {
		log_info("libvirt: %s: pid %ld, channel %s, cid %u%s%s",
		    d->name, (long)pid, x.channel != NULL ? x.channel : "none",
		    x.cid, why != NULL ? ", unservable: " : "",
		    why != NULL ? why : "");
		if (vm_source_add(&desc, vl_hmp_registry, d) == 0) {
			d->added = true;
			free(d->key);
			d->key = key;
			key = NULL;
			if (d->migrating)
				vm_source_migration(
				    d->name, VM_MIGRATION_STARTED);
		} else
			log_warnx(
			    "libvirt: %s: the registry refused it", d->name);
	}
	free(key);
	free(why);
	vl_xml_free(&x);
	vlp_read(d->dom);
}

/* The registry's read-only monitor access. */
static int
vl_hmp(void *ctx, const char *cmd, char **out)
{
	struct vl_dom *d = ctx;

	*out = NULL;
	if (d->dom == NULL) {
		log_debug("libvirt: %s: no connection for '%s'", d->name, cmd);
		return (-1);
	}
	if (virDomainQemuMonitorCommand(
	        d->dom, cmd, out, VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP) < 0) {
		log_warnx("libvirt: %s: '%s': %s", d->name, cmd, vl_lasterr());
		*out = NULL;
		return (-1);
	}
	return (0);
}

/* The registry's calling convention: done is called before returning. */
static void
vl_hmp_registry(void *ctx, const char *cmd, vm_hmp_done done, void *arg)
{
	char *out = NULL;

	if (vl_hmp(ctx, cmd, &out) != 0 || out == NULL) {
		free(out);
		done(arg, NULL);
		return;
	}
	done(arg, out);
	free(out);
}

/*
 * The QEMU process: the thread of a vCPU (info cpus) belongs to it,
 * which stays right with several libvirtd instances on one host; the pid
 * file of the system instance otherwise. Either is checked against the
 * process's command line.
 */
static pid_t
vl_find_pid(struct vl_dom *d)
{
	char *out = NULL, *p, path[PATH_MAX], line[128];
	long tid = 0, pid = 0;
	FILE *f;

	if (vl_hmp(d, "info cpus", &out) == 0 &&
	    (p = strstr(out, "thread_id=")) != NULL)
		tid = strtol(p + strlen("thread_id="), NULL, 10);
	free(out);
	if (tid > 0) {
		snprintf(path, sizeof(path), "/proc/%ld/status", tid);
		if ((f = fopen(path, "re")) != NULL) {
			while (fgets(line, sizeof(line), f) != NULL) {
				if (sscanf(line, "Tgid: %ld", &pid) == 1)
					break;
			}
			fclose(f);
		}
		if (pid > 0 && vl_pid_is(pid, d->name))
			return ((pid_t)pid);
	}
	pid = 0;
	snprintf(path, sizeof(path), "%s/%s.pid", VL_PID_DIR, d->name);
	if ((f = fopen(path, "re")) != NULL) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid > 0 && vl_pid_is(pid, d->name))
		return ((pid_t)pid);
	return (0);
}

/* libvirt starts QEMU with -name guest=NAME,... (commas doubled). */
static bool
vl_pid_is(pid_t pid, const char *name)
{
	char path[64], buf[8192], want[600], *p, *q;
	const char *s;
	ssize_t n;
	int fd;

	q = want;
	q += snprintf(want, sizeof(want), "guest=");
	for (s = name; *s != '\0' && q < want + sizeof(want) - 3; s++) {
		*q++ = *s;
		if (*s == ',')
			*q++ = ',';
	}
	*q = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (false);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return (false);
	buf[n] = '\0';
	for (p = buf; p < buf + n; p += strlen(p) + 1) {
		if (strncmp(p, want, strlen(want)) == 0 &&
		    (p[strlen(want)] == '\0' ||
		        (p[strlen(want)] == ',' && p[strlen(want) + 1] != ',')))
			return (true);
	}
	return (false);
}

/* ---- hooks ---- */

int
vl_notify(const char *event, const char *name, char *msg, size_t msglen)
{
	struct vl_dom *d;
	const char *s;

	*msg = '\0';
	if (vl_base == NULL) {
		snprintf(msg, msglen, "libvirt source not running");
		return (-1);
	}
	if (name == NULL || *name == '\0' || strlen(name) > 255) {
		snprintf(msg, msglen, "bad domain name");
		return (-1);
	}
	for (s = name; *s != '\0'; s++) {
		if (*s == '/' || iscntrl((unsigned char)*s)) {
			snprintf(msg, msglen, "bad domain name");
			return (-1);
		}
	}
	if (event == NULL)
		event = "";
	if (strcmp(event, "prepare") == 0 || strcmp(event, "start") == 0 ||
	    strcmp(event, "started") == 0) {
		/* libvirtd holds the domain until the hook returns: read it
		 * a little later, after this answer has gone out. */
		d = vl_dom_get(name);
		if (d->dom == NULL && vl_conn != NULL) {
			virDomainPtr dom = virDomainLookupByName(vl_conn, name);

			if (dom != NULL) {
				vl_dom_set(d, dom);
				virDomainFree(dom);
			}
		}
		if (d->dom == NULL && !d->added) {
			vl_dom_remove(d);
			snprintf(msg, msglen, "%s: unknown to libvirt", name);
			return (-1);
		}
		vl_dom_schedule(d, VL_HOOK_DELAY_MS);
		snprintf(msg, msglen, "%s: %s noted", name, event);
		return (0);
	}
	if (strcmp(event, "stopped") == 0 || strcmp(event, "release") == 0) {
		if ((d = vl_dom_find(name)) != NULL) {
			vl_migration_end(d, event);
			vl_dom_remove(d);
			snprintf(msg, msglen, "%s: removed", name);
		} else
			snprintf(msg, msglen, "%s: not known", name);
		return (0);
	}
	if (strcmp(event, "migrate") == 0) {
		log_info("libvirt: %s: incoming migration", name);
		snprintf(msg, msglen, "%s: migrate noted", name);
		return (0);
	}
	snprintf(msg, msglen, "unknown event '%s'", event);
	return (-1);
}

/* ---- the domain XML ---- */

/*
 * A minimal reader for the XML libvirt itself writes: elements,
 * attributes in ' or ", the five entities and character references,
 * comments and processing instructions skipped. It only looks at the few
 * elements below; malformed input ends the walk with -1.
 */
int
vl_xml_parse(const char *xml, struct vl_xml *x)
{
	const char *stack[VL_XML_DEPTH], *p = xml, *end, *text = NULL;
	size_t lens[VL_XML_DEPTH], n;
	char path[256], chpath[PATH_MAX], buf[PATH_MAX];
	int depth = 0, i;
	bool chan = false, chan_ok = false;

	memset(x, 0, sizeof(*x));
	chpath[0] = '\0';
	while ((p = strchr(p, '<')) != NULL) {
		if (strncmp(p, "<!--", 4) == 0) {
			if ((end = strstr(p, "-->")) == NULL)
				return (-1);
			p = end + 3;
			continue;
		}
		if (p[1] == '?' || p[1] == '!') {
			if ((end = strchr(p, '>')) == NULL)
				return (-1);
			p = end + 1;
			continue;
		}
		/* A '>' inside a quoted value does not end the tag. */
		for (end = p + 1; *end != '\0' && *end != '>'; end++) {
			if (*end == '\'' || *end == '"') {
				const char *q = strchr(end + 1, *end);

				if (q == NULL)
					return (-1);
				end = q;
			}
		}
		if (*end != '>')
			return (-1);
		path[0] = '\0';
		for (i = 0; i < depth && i < VL_XML_DEPTH; i++) {
			vl_xml_path(path, sizeof(path), stack[i], lens[i]);
			vl_xml_path(path, sizeof(path), "/", 1);
		}
		if (p[1] == '/') {
			if (depth == 0)
				return (-1);
			depth--;
			if (strcmp(path, "domain/os/cmdline/") == 0 &&
			    text != NULL) {
				vl_xml_decode(text, p - text, buf, sizeof(buf));
				if (strstr(buf, "page_poison=1") != NULL ||
				    strstr(buf, "page_poison=on") != NULL)
					x->poison = true;
			}
			if (strcmp(path, "domain/devices/channel/") == 0 &&
			    chan) {
				if (chan_ok && chpath[0] != '\0' &&
				    x->channel == NULL)
					x->channel = xstrdup(chpath);
				chan = false;
			}
			text = NULL;
			p = end + 1;
			continue;
		}
		n = strcspn(p + 1, " \t\r\n/>");
		if (n == 0)
			return (-1);
		if (depth < VL_XML_DEPTH) {
			stack[depth] = p + 1;
			lens[depth] = n;
		}
		vl_xml_path(path, sizeof(path), p + 1, n);
		if (strcmp(path, "domain/devices/channel") == 0) {
			chan = true;
			chan_ok = vl_xml_attr(
			              p, end, "type", buf, sizeof(buf)) == 0 &&
			    strcmp(buf, "unix") == 0;
			chpath[0] = '\0';
		} else if (chan &&
		    strcmp(path, "domain/devices/channel/source") == 0) {
			if (vl_xml_attr(p, end, "mode", buf, sizeof(buf)) ||
			    strcmp(buf, "bind") != 0)
				chan_ok = false;
			else if (vl_xml_attr(
			             p, end, "path", chpath, sizeof(chpath)))
				chpath[0] = '\0';
		} else if (chan &&
		    strcmp(path, "domain/devices/channel/target") == 0) {
			if (vl_xml_attr(p, end, "type", buf, sizeof(buf)) ||
			    strcmp(buf, "virtio") != 0 ||
			    vl_xml_attr(p, end, "name", buf, sizeof(buf)) ||
			    strcmp(buf, VL_CHANNEL_NAME) != 0)
				chan_ok = false;
		} else
			vl_xml_start(x, path, p, end, buf, sizeof(buf));
		if (end[-1] != '/') {
			depth++;
			text = end + 1;
		}
		p = end + 1;
	}
	return (depth == 0 ? 0 : -1);
}

/*
 * Appends n bytes of s to the element path, as much as fits: a path cut
 * short is longer than any of the few paths looked for, and never
 * matches one.
 */
static void
vl_xml_path(char *path, size_t size, const char *s, size_t n)
{
	size_t o = strlen(path);

	if (o + 1 >= size)
		return;
	if (n > size - 1 - o)
		n = size - 1 - o;
	memcpy(path + o, s, n);
	path[o + n] = '\0';
}

static void
vl_xml_start(struct vl_xml *x, const char *path, const char *tag,
    const char *end, char *buf, size_t len)
{
	uint64_t v;

	if (strcmp(path, "domain/devices/vsock/cid") == 0) {
		if (vl_xml_attr(tag, end, "address", buf, len) == 0 &&
		    fh_parse_u64(buf, 3, UINT32_MAX - 1, &v) == 0)
			x->cid = (uint32_t)v;
	} else if (strcmp(path, "domain/memoryBacking/source") == 0) {
		if (vl_xml_attr(tag, end, "type", buf, len) != 0)
			return;
		x->have_source = true;
		if (strcmp(buf, "memfd") == 0)
			x->backing = VM_BACKING_MEMFD;
		else if (strcmp(buf, "file") == 0)
			x->backing = VM_BACKING_FILE;
		else if (strcmp(buf, "anonymous") == 0)
			x->backing = VM_BACKING_ANONYMOUS;
	} else if (strcmp(path, "domain/memoryBacking/access") == 0) {
		if (vl_xml_attr(tag, end, "mode", buf, len) == 0)
			x->access = strcmp(buf, "shared") == 0 ? 1 : -1;
	} else if (strcmp(path, "domain/memoryBacking/hugepages") == 0) {
		x->hugepages = true;
		if (x->backing == VM_BACKING_UNKNOWN)
			x->backing = VM_BACKING_HUGETLBFS;
	} else if (strcmp(path, "domain/cpu/numa/cell") == 0) {
		if (vl_xml_attr(tag, end, "memAccess", buf, len) == 0 &&
		    strcmp(buf, "shared") == 0)
			x->numa_shared++;
		else
			x->numa_other++;
	}
}

/*
 * The value of attribute name in the tag [tag, end), decoded; -1 when
 * it is missing or does not fit in len (a value cut short would be
 * another value).
 */
static int
vl_xml_attr(
    const char *tag, const char *end, const char *name, char *buf, size_t len)
{
	const char *p, *v, *q;
	size_t n, nl = strlen(name);

	p = tag + 1 + strcspn(tag + 1, " \t\r\n/>");
	while (p < end) {
		while (p < end && isspace((unsigned char)*p))
			p++;
		n = strcspn(p, " \t\r\n=/>");
		v = p + n;
		while (v < end && isspace((unsigned char)*v))
			v++;
		if (v >= end || *v != '=')
			return (-1);
		v++;
		while (v < end && isspace((unsigned char)*v))
			v++;
		if (v >= end || (*v != '\'' && *v != '"'))
			return (-1);
		if ((q = memchr(v + 1, *v, end - v - 1)) == NULL)
			return (-1);
		if (n == nl && strncmp(p, name, nl) == 0)
			return (vl_xml_decode(v + 1, q - v - 1, buf, len));
		p = q + 1;
	}
	return (-1);
}

/* Decodes [s, s + n) into buf; -1 when it does not fit. */
static int
vl_xml_decode(const char *s, size_t n, char *buf, size_t len)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' }, { "&apos;", '\'' } };
	const char *e = s + n;
	size_t o = 0, i, el;
	unsigned long c;
	char *q;

	while (s < e && o + 1 < len) {
		if (*s != '&') {
			buf[o++] = *s++;
			continue;
		}
		for (i = 0; i < FH_ARRAY_SIZE(ents); i++) {
			el = strlen(ents[i].ent);
			if ((size_t)(e - s) >= el &&
			    strncmp(s, ents[i].ent, el) == 0)
				break;
		}
		if (i < FH_ARRAY_SIZE(ents)) {
			buf[o++] = ents[i].c;
			s += el;
			continue;
		}
		if (e - s > 3 && s[1] == '#') {
			errno = 0;
			c = s[2] == 'x' ? strtoul(s + 3, &q, 16)
			                : strtoul(s + 2, &q, 10);
			if (errno == 0 && q < e && *q == ';' && c > 0 &&
			    c < 0x80) {
				buf[o++] = (char)c;
				s = q + 1;
				continue;
			}
		}
		/* Anything else is kept as it stands. */
		buf[o++] = *s++;
	}
	buf[o] = '\0';
	return (s < e ? -1 : 0);
}

void
vl_xml_free(struct vl_xml *x)
{
	free(x->channel);
	x->channel = NULL;
}

/*
 * Shared memory: said by <access mode='shared'/>, implied by a memfd
 * source, or by memAccess='shared' on every NUMA cell.
 */
static bool
vl_xml_shared(const struct vl_xml *x)
{
	return (x->access > 0 ||
	    (x->access == 0 && x->backing == VM_BACKING_MEMFD) ||
	    (x->numa_shared > 0 && x->numa_other == 0));
}

char *
vl_unservable(const struct vl_xml *x, pid_t pid)
{
	char buf[1024];
	size_t o = 0;

	buf[0] = '\0';
	if (!vl_xml_shared(x) || x->backing == VM_BACKING_ANONYMOUS)
		vl_why(buf, sizeof(buf), &o,
		    "guest memory is private: add <memoryBacking><source "
		    "type='memfd'/><access mode='shared'/></memoryBacking>");
	if (x->channel == NULL && x->cid == 0)
		vl_why(buf, sizeof(buf), &o,
		    "no freehint channel: add <channel type='unix'><source "
		    "mode='bind'/><target type='virtio' "
		    "name='" VL_CHANNEL_NAME "'/></channel> (or <vsock "
		    "model='virtio'><cid auto='yes'/></vsock>) to <devices>");
	if (x->poison)
		vl_why(buf, sizeof(buf), &o,
		    "the guest kernel poisons free pages (page_poison=1): "
		    "remove it from the kernel command line");
	if (pid == 0)
		vl_why(buf, sizeof(buf), &o, "QEMU process not found");
	return (o > 0 ? xstrdup(buf) : NULL);
}

static void
vl_why(char *buf, size_t len, size_t *o, const char *s)
{
	int n;

	if (*o >= len)
		return;
	n = snprintf(buf + *o, len - *o, "%s%s", *o > 0 ? "; " : "", s);
	if (n > 0)
		*o += (size_t)n;
	if (*o >= len)
		*o = len - 1;
}

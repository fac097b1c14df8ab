/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The libvirt source's connection to libvirtd: opened and closed by a
 * worker (libvirt_loop.c), watched with keepalives, opened again with a
 * growing delay when libvirtd goes away. On the loop, one connect or
 * disconnect is out at a time. Domains stay with the registry while
 * libvirtd is away: QEMU runs on without it.
 *
 * Nothing in the libvirt source changes state libvirt tracks: the only
 * monitor commands are read-only HMP queries (info mtree -f, gpa2hva,
 * info cpus).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common.h"
#include "libvirt.h"

#define VL_RECONNECT_MIN_S 1
#define VL_RECONNECT_MAX_S 30
#define VL_KEEPALIVE_S     5
#define VL_KEEPALIVE_COUNT 3

static void vl_connect(int, short, void *);
static void vl_connect_work(struct vl_job *, virConnectPtr);
static void vl_connect_done(struct vl_job *);
static void vl_disconnect(void);
static void vl_disconnect_work(struct vl_job *, virConnectPtr);
static void vl_disconnect_done(struct vl_job *);
static void vl_schedule_reconnect(void);
static void vl_close_cb(virConnectPtr, int, void *);
static void vl_lost_done(struct vl_job *);

struct event_base *vl_base;
static char *vl_uri;
static struct event *vl_reconnect_ev;
static int vl_backoff = VL_RECONNECT_MIN_S;
static bool vl_up; /* connected, as far as the loop knows */
static bool vl_busy; /* a connect or disconnect job is out */
static bool vl_lost_meanwhile; /* the connection closed while busy */
static bool vl_stopping;

int
vl_init(struct event_base *base, const char *uri)
{
	if (vl_base != NULL && vl_base != base) {
		log_warnx(
		    "%s: already running on another event base", __func__);
		return -1;
	}
	vl_base = base;
	if (vl_loop_init(base) != 0)
		return -1;
	free(vl_uri);
	vl_uri = xstrdup(uri != NULL && *uri != '\0' ? uri : VL_DEFAULT_URI);
	if (vl_reconnect_ev == NULL &&
	    (vl_reconnect_ev = evtimer_new(base, vl_connect, NULL)) == NULL) {
		log_warnx("%s: evtimer_new", __func__);
		return -1;
	}
	vl_stopping = false;
	vl_backoff = VL_RECONNECT_MIN_S;
	vl_connect(-1, 0, NULL);
	return 0;
}

void
vl_shutdown(void)
{
	if (vl_base == NULL)
		return;
	vl_stopping = true;
	vl_dom_remove_all();
	if (vl_up)
		vl_disconnect();
	vl_loop_shutdown();
	if (vl_reconnect_ev != NULL)
		event_free(vl_reconnect_ev);
	vl_reconnect_ev = NULL;
	vl_up = vl_busy = vl_lost_meanwhile = false;
	free(vl_uri);
	vl_uri = NULL;
}

bool
vl_is_up(void)
{
	return vl_up;
}

static void
vl_connect(int fd, short what, void *arg)
{
	struct vl_job *j;

	if (vl_up || vl_busy || vl_stopping)
		return;
	vl_busy = true;
	j = vl_job_new(vl_connect_work, vl_connect_done, NULL);
	j->in = xstrdup(vl_uri);
	vl_submit(j);
}

/* On a worker: open, follow events, list what runs. */
static void
vl_connect_work(struct vl_job *j, virConnectPtr unused)
{
	virDomainPtr *list = NULL;
	virConnectPtr conn;
	int i, n;

	if ((conn = virConnectOpen(j->in)) == NULL) {
		vl_job_fail(j);
		return;
	}
	/* Without keepalives a libvirtd that stops answering would hold a
	 * worker for good. */
	if (virConnectSetKeepAlive(conn, VL_KEEPALIVE_S, VL_KEEPALIVE_COUNT) <
	    0)
		j->state = -1;
	virConnectRegisterCloseCallback(conn, vl_close_cb, NULL, NULL);
	vl_events_register(conn);
	n = virConnectListAllDomains(
	    conn, &list, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0) {
		vl_job_fail(j);
		vl_events_deregister(conn);
		virConnectUnregisterCloseCallback(conn, vl_close_cb);
		virConnectClose(conn);
		return;
	}
	j->names = xcalloc((size_t)n + 1, sizeof *j->names);
	for (i = 0; i < n; i++) {
		j->names[i] = xstrdup(virDomainGetName(list[i]));
		virDomainFree(list[i]);
	}
	j->n = n;
	free(list);
	vl_swap_conn(conn);
}

static void
vl_connect_done(struct vl_job *j)
{
	vl_busy = false;
	if (vl_stopping)
		return;
	if (j->err != NULL) {
		vl_lost_meanwhile = false;
		log_warnx("libvirt: cannot connect to %s: %s (retry in %d s)",
		    vl_uri, j->err, vl_backoff);
		vl_schedule_reconnect();
		return;
	}
	if (j->state < 0)
		log_debug("libvirt: no keepalive");
	log_info("libvirt: connected to %s, %d running domain%s", vl_uri, j->n,
	    j->n == 1 ? "" : "s");
	vl_up = true;
	vl_backoff = VL_RECONNECT_MIN_S;
	vl_dom_listed(j->names, j->n);
	if (vl_lost_meanwhile) {
		vl_lost_meanwhile = false;
		vl_disconnect();
	}
}

static void
vl_schedule_reconnect(void)
{
	struct timeval tv = { vl_backoff, 0 };

	if (vl_reconnect_ev == NULL || vl_stopping)
		return;
	evtimer_add(vl_reconnect_ev, &tv);
	vl_backoff *= 2;
	if (vl_backoff > VL_RECONNECT_MAX_S)
		vl_backoff = VL_RECONNECT_MAX_S;
}

static void
vl_disconnect(void)
{
	vl_up = false;
	vl_busy = true;
	vl_submit(vl_job_new(vl_disconnect_work, vl_disconnect_done, NULL));
}

static void
vl_disconnect_work(struct vl_job *j, virConnectPtr unused)
{
	virConnectPtr conn;

	if ((conn = vl_swap_conn(NULL)) == NULL)
		return;
	vl_events_deregister(conn);
	virConnectUnregisterCloseCallback(conn, vl_close_cb);
	virConnectClose(conn);
}

static void
vl_disconnect_done(struct vl_job *j)
{
	vl_busy = false;
	vl_lost_meanwhile = false;
	vl_backoff = VL_RECONNECT_MIN_S;
	vl_schedule_reconnect();
}

/* On libvirt's event thread: tell the loop. */
static void
vl_close_cb(virConnectPtr conn, int reason, void *arg)
{
	struct vl_job *j;

	j = vl_job_new(NULL, vl_lost_done, NULL);
	j->reason = reason;
	vl_post(j);
}

static void
vl_lost_done(struct vl_job *j)
{
	if (vl_stopping)
		return;
	log_warnx(
	    "libvirt: connection to %s lost (reason %d)", vl_uri, j->reason);
	if (vl_busy)
		vl_lost_meanwhile = true;
	else if (vl_up)
		vl_disconnect();
}

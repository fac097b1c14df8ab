/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libvirt off the daemon's event loop. libvirt's client blocks in each
 * call until libvirtd answers, and libvirtd waits for QEMU monitors and
 * for its own hooks: a stalled libvirtd or a stuck monitor must never
 * stall freehintd. So libvirt has threads of its own:
 *   - libvirt's default event loop (virEventRegisterDefaultImpl) runs in
 *     one thread for the life of the process: keepalives, the
 *     connection's close, domain events. Its callbacks copy what they got
 *     into a job and post it, nothing more;
 *   - VL_WORKERS workers take the jobs that call libvirt (connect, list,
 *     state, XML, monitor commands, job info) in the order submitted;
 *   - a finished job is posted back through a pipe that the loop reads;
 *     its done callback then runs on the loop, which alone owns the
 *     source's state and talks to the registry.
 * The connection is the one thing the threads share: under the lock, and
 * each worker holds a reference to it for the length of a job.
 */
#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common.h"
#include "libvirt.h"

/* Two: one job stuck on a monitor leaves another worker for the rest. */
#define VL_WORKERS 2
/* At shutdown, how long workers may take to finish a call. */
#define VL_JOIN_MS 3000

TAILQ_HEAD(vl_job_list, vl_job);

static void *vl_evloop(void *);
static void *vl_worker(void *);
static void vl_pipe_cb(int, short, void *);
static void vl_error_func(void *, virErrorPtr);
static void vl_job_drop(struct vl_job *);

static pthread_mutex_t vl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t vl_cond = PTHREAD_COND_INITIALIZER;
/* Under vl_lock: */
static struct vl_job_list vl_todo = TAILQ_HEAD_INITIALIZER(vl_todo);
static struct vl_job_list vl_done = TAILQ_HEAD_INITIALIZER(vl_done);
static virConnectPtr vl_conn;
static bool vl_quit;
static bool vl_closed = true; /* nobody reads the pipe */
static int vl_pipe[2] = { -1, -1 };

/* The loop's own: */
static pthread_t vl_workers[VL_WORKERS];
static int vl_nworkers;
static struct event *vl_pipe_ev;
static bool vl_evloop_started;

/* libvirt prints every error to stderr unless told otherwise; each job
 * takes its own error (virGetLastErrorMessage is per thread). */
static void
vl_error_func(void *arg, virErrorPtr err)
{
}

static void *
vl_evloop(void *arg)
{
	for (;;) {
		if (virEventRunDefaultImpl() < 0)
			usleep(100 * 1000);
	}
	return NULL;
}

int
vl_loop_init(struct event_base *base)
{
	pthread_t t;
	int i;

	if (vl_pipe_ev != NULL)
		return 0;
	if (virInitialize() < 0) {
		log_warnx("%s: virInitialize failed", __func__);
		return -1;
	}
	virSetErrorFunc(NULL, vl_error_func);
	/* Once per process: libvirt keeps the first implementation, and its
	 * default loop has no way to stop. */
	if (!vl_evloop_started) {
		if (virEventRegisterDefaultImpl() < 0) {
			log_warnx("%s: no libvirt event loop", __func__);
			return -1;
		}
		if (pthread_create(&t, NULL, vl_evloop, NULL) != 0) {
			log_warnx("%s: pthread_create", __func__);
			return -1;
		}
		pthread_detach(t);
		vl_evloop_started = true;
	}
	if (pipe2(vl_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		log_warn("%s: pipe", __func__);
		return -1;
	}
	vl_pipe_ev =
	    event_new(base, vl_pipe[0], EV_READ | EV_PERSIST, vl_pipe_cb, NULL);
	if (vl_pipe_ev == NULL || event_add(vl_pipe_ev, NULL) == -1)
		fatalx("%s: event_new", __func__);
	pthread_mutex_lock(&vl_lock);
	vl_quit = false;
	vl_closed = false;
	pthread_mutex_unlock(&vl_lock);
	for (i = 0; i < VL_WORKERS; i++) {
		if (pthread_create(&vl_workers[i], NULL, vl_worker, NULL) != 0)
			fatalx("%s: pthread_create", __func__);
		vl_nworkers++;
	}
	return 0;
}

/*
 * Workers finish what is queued, within VL_JOIN_MS; one stuck in a call
 * is left to end with the process. Jobs not run or not yet back are
 * dropped, a monitor command answered as failed.
 */
void
vl_loop_shutdown(void)
{
	struct vl_job_list left = TAILQ_HEAD_INITIALIZER(left);
	struct vl_job *j;
	struct timespec ts;
	int i;

	if (vl_pipe_ev == NULL)
		return;
	pthread_mutex_lock(&vl_lock);
	vl_quit = true;
	pthread_cond_broadcast(&vl_cond);
	pthread_mutex_unlock(&vl_lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += VL_JOIN_MS / 1000;
	for (i = 0; i < vl_nworkers; i++) {
		if (pthread_timedjoin_np(vl_workers[i], NULL, &ts) != 0) {
			log_warnx(
			    "libvirt: a call does not return; leaving it");
			pthread_detach(vl_workers[i]);
		}
	}
	vl_nworkers = 0;
	pthread_mutex_lock(&vl_lock);
	vl_closed = true;
	TAILQ_CONCAT(&left, &vl_todo, entry);
	TAILQ_CONCAT(&left, &vl_done, entry);
	pthread_mutex_unlock(&vl_lock);
	while ((j = TAILQ_FIRST(&left)) != NULL) {
		TAILQ_REMOVE(&left, j, entry);
		vl_job_drop(j);
	}
	event_free(vl_pipe_ev);
	vl_pipe_ev = NULL;
	close(vl_pipe[0]);
	close(vl_pipe[1]);
	vl_pipe[0] = vl_pipe[1] = -1;
}

struct vl_job *
vl_job_new(void (*work)(struct vl_job *, virConnectPtr),
    void (*done)(struct vl_job *), const char *name)
{
	struct vl_job *j;

	j = xcalloc(1, sizeof *j);
	j->work = work;
	j->done = done;
	if (name != NULL)
		j->name = xstrdup(name);
	return j;
}

void
vl_job_free(struct vl_job *j)
{
	int i;

	for (i = 0; i < j->n; i++)
		free(j->names[i]);
	free(j->names);
	free(j->name);
	free(j->in);
	free(j->out);
	free(j->meta);
	free(j->err);
	free(j);
}

/* On a worker: the call failed, say why (libvirt's last error). */
void
vl_job_fail(struct vl_job *j)
{
	const char *s = virGetLastErrorMessage();

	j->code = virGetLastErrorCode();
	free(j->err);
	j->err = xstrdup(s != NULL ? s : "unknown libvirt error");
}

/* On a worker: the job's domain, or NULL with why (code -1: no
 * connection). */
virDomainPtr
vl_job_domain(struct vl_job *j, virConnectPtr conn)
{
	virDomainPtr dom;

	if (conn == NULL) {
		j->err = xstrdup("no connection to libvirtd");
		j->code = -1;
		return NULL;
	}
	if ((dom = virDomainLookupByName(conn, j->name)) == NULL)
		vl_job_fail(j);
	return dom;
}

/* Never run: a monitor command's or a bandwidth's caller is still told. */
static void
vl_job_drop(struct vl_job *j)
{
	if (j->hmp_done != NULL)
		j->hmp_done(j->hmp_arg, NULL);
	if (j->speed_done != NULL)
		j->speed_done(j->speed_arg, -1);
	vl_job_free(j);
}

/* From the loop. */
void
vl_submit(struct vl_job *j)
{
	pthread_mutex_lock(&vl_lock);
	if (vl_closed) {
		pthread_mutex_unlock(&vl_lock);
		vl_job_drop(j);
		return;
	}
	TAILQ_INSERT_TAIL(&vl_todo, j, entry);
	pthread_cond_signal(&vl_cond);
	pthread_mutex_unlock(&vl_lock);
}

/*
 * From any thread: j->done runs on the loop. A byte per job, so that the
 * loop always wakes; a full pipe already has it awake.
 */
void
vl_post(struct vl_job *j)
{
	ssize_t n;

	pthread_mutex_lock(&vl_lock);
	if (vl_closed) {
		pthread_mutex_unlock(&vl_lock);
		vl_job_free(j);
		return;
	}
	TAILQ_INSERT_TAIL(&vl_done, j, entry);
	do
		n = write(vl_pipe[1], "j", 1);
	while (n == -1 && errno == EINTR);
	pthread_mutex_unlock(&vl_lock);
}

static void
vl_pipe_cb(int fd, short what, void *arg)
{
	struct vl_job_list batch = TAILQ_HEAD_INITIALIZER(batch);
	struct vl_job *j;
	char buf[256];

	while (read(fd, buf, sizeof buf) > 0)
		continue;
	pthread_mutex_lock(&vl_lock);
	TAILQ_CONCAT(&batch, &vl_done, entry);
	pthread_mutex_unlock(&vl_lock);
	while ((j = TAILQ_FIRST(&batch)) != NULL) {
		TAILQ_REMOVE(&batch, j, entry);
		j->done(j);
		vl_job_free(j);
	}
}

static void *
vl_worker(void *arg)
{
	virConnectPtr conn;
	struct vl_job *j;

	pthread_mutex_lock(&vl_lock);
	for (;;) {
		while (TAILQ_EMPTY(&vl_todo) && !vl_quit)
			pthread_cond_wait(&vl_cond, &vl_lock);
		if ((j = TAILQ_FIRST(&vl_todo)) == NULL)
			break;
		TAILQ_REMOVE(&vl_todo, j, entry);
		if ((conn = vl_conn) != NULL)
			virConnectRef(conn);
		pthread_mutex_unlock(&vl_lock);
		j->work(j, conn);
		if (conn != NULL)
			virConnectClose(conn);
		vl_post(j);
		pthread_mutex_lock(&vl_lock);
	}
	pthread_mutex_unlock(&vl_lock);
	return NULL;
}

/* On a worker: the connection jobs use from now on; the old one, whose
 * reference passes to the caller. */
virConnectPtr
vl_swap_conn(virConnectPtr conn)
{
	virConnectPtr old;

	pthread_mutex_lock(&vl_lock);
	old = vl_conn;
	vl_conn = conn;
	pthread_mutex_unlock(&vl_lock);
	return old;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The punch workers: fallocate runs on a few threads so that the event
 * loop never waits on it and the busiest VM cannot delay another's
 * deadline.
 *
 * Each VM has a queue (struct punchq). A queue with work and no worker
 * sits on the ready list; a worker takes the first queue, punches one
 * piece of its first job (discard_piece, which checks the deadline right
 * before it), and puts the queue back at the tail: round robin between
 * VMs, one piece at a time, and never two workers on one VM. A finished
 * job goes to the done list and an eventfd wakes the loop, which hands it
 * to the queue's owner. Only the loop creates, submits, delivers and
 * frees; the workers touch jobs only between taking and returning them.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "freehintd.h"

TAILQ_HEAD(punch_jobs, punch_job);

struct punchq {
	struct punch_jobs jobs; /* queued; the first may be running */
	TAILQ_ENTRY(punchq) entry; /* on the ready list */
	bool ready; /* on the ready list */
	bool busy; /* a worker has its first job */
	bool cancelled; /* the owner is gone: end every job, unpunched */
	bool detached; /* the owner is gone: drop what comes back */
	unsigned refs; /* jobs not yet delivered (the loop's count) */
	punch_done_fn done;
	void *arg;
};

static struct {
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	TAILQ_HEAD(, punchq) ready;
	struct punch_jobs done;
	bool stop;
	pthread_t *threads;
	unsigned nthreads;
	int efd;
	struct event *ev;
} pool = { .mtx = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.efd = -1 };

static void *punch_worker(void *);
static bool punch_step(struct punch_job *, bool);
static void punch_deliver(evutil_socket_t, short, void *);
static void punchq_release(struct punchq *);

int
punch_init(struct event_base *base, unsigned workers)
{
	sigset_t all, old;
	unsigned i;
	int e;

	TAILQ_INIT(&pool.ready);
	TAILQ_INIT(&pool.done);
	pool.stop = false;
	if ((pool.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		log_warn("punch: eventfd");
		return -1;
	}
	pool.ev = event_new(
	    base, pool.efd, EV_READ | EV_PERSIST, punch_deliver, NULL);
	if (pool.ev == NULL || event_add(pool.ev, NULL) != 0)
		fatalx("punch: event_new");
	pool.threads = xcalloc(workers, sizeof *pool.threads);
	/* Signals are the loop's (libevent's handlers): the workers, which
	 * inherit this mask, never take one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < workers; i++) {
		if ((e = pthread_create(
		         &pool.threads[i], NULL, punch_worker, NULL)) != 0) {
			errno = e;
			log_warn("punch: pthread_create");
			break;
		}
		pool.nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pool.nthreads == 0) {
		punch_shutdown();
		return -1;
	}
	return 0;
}

/*
 * Let the workers finish what is queued (a detached queue's jobs end at
 * once, unpunched), then deliver what came back and free everything.
 */
void
punch_shutdown(void)
{
	unsigned i;

	pthread_mutex_lock(&pool.mtx);
	pool.stop = true;
	pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mtx);
	for (i = 0; i < pool.nthreads; i++)
		pthread_join(pool.threads[i], NULL);
	pool.nthreads = 0;
	free(pool.threads);
	pool.threads = NULL;
	punch_deliver(-1, 0, NULL);
	if (pool.ev != NULL)
		event_free(pool.ev);
	pool.ev = NULL;
	if (pool.efd != -1)
		close(pool.efd);
	pool.efd = -1;
}

struct punchq *
punchq_new(punch_done_fn done, void *arg)
{
	struct punchq *q = xcalloc(1, sizeof *q);

	TAILQ_INIT(&q->jobs);
	q->done = done;
	q->arg = arg;
	return q;
}

/* The owner is gone: its jobs end unpunched and are freed on return. */
void
punchq_free(struct punchq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&pool.mtx);
	q->cancelled = true;
	q->detached = true;
	pthread_mutex_unlock(&pool.mtx);
	if (q->refs == 0)
		free(q);
}

/*
 * End the jobs queued now (those begun after their current piece) with
 * rc -1, unpunched; jobs submitted later run as usual.
 */
void
punchq_cancel(struct punchq *q)
{
	struct punch_job *j;

	pthread_mutex_lock(&pool.mtx);
	TAILQ_FOREACH(j, &q->jobs, entry)
		j->cancelled = true;
	pthread_mutex_unlock(&pool.mtx);
}

/* Jobs submitted and not yet delivered. */
unsigned
punchq_pending(const struct punchq *q)
{
	return q->refs;
}

struct punch_job *
punch_job_new(size_t nranges, uint64_t deadline_ms)
{
	struct punch_job *j = xcalloc(1, sizeof *j);

	j->deadline_ms = deadline_ms;
	j->spans = xcalloc(nranges ? nranges : 1, sizeof *j->spans);
	fh_rs_init(&j->ranges);
	return j;
}

/*
 * Append [gpa, gpa + len) (validated) to the job, on the job's own
 * duplicate of the backing fd: one per backing, not per range, as a
 * thousand VMs with many ranges each must not run out of fds.
 */
int
punch_job_add(struct punch_job *j, const struct memmap *m, uint64_t gpa,
    uint64_t len, char *err, size_t errlen)
{
	struct discard_span *s = &j->spans[j->nspans];
	size_t i;
	int fd;

	if (discard_resolve(m, gpa, len, s, &j->res, err, errlen) != 0)
		return -1;
	for (i = 0; i < j->nfds && j->orig[i] != s->fd; i++)
		;
	if (i == j->nfds) {
		if ((fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0)) == -1) {
			snprintf(err, errlen, "dup: %s", strerror(errno));
			return -1;
		}
		j->fds = xreallocarray(j->fds, j->nfds + 1, sizeof *j->fds);
		j->orig = xreallocarray(j->orig, j->nfds + 1, sizeof *j->orig);
		j->orig[j->nfds] = s->fd;
		j->fds[j->nfds++] = fd;
	}
	s->fd = j->fds[i];
	j->nspans++;
	return 0;
}

void
punch_job_free(struct punch_job *j)
{
	size_t i;

	if (j == NULL)
		return;
	for (i = 0; i < j->nfds; i++)
		close(j->fds[i]);
	free(j->fds);
	free(j->orig);
	free(j->spans);
	fh_rs_free(&j->ranges);
	free(j);
}

void
punch_submit(struct punchq *q, struct punch_job *j)
{
	j->q = q;
	q->refs++;
	pthread_mutex_lock(&pool.mtx);
	TAILQ_INSERT_TAIL(&q->jobs, j, entry);
	if (!q->busy && !q->ready) {
		TAILQ_INSERT_TAIL(&pool.ready, q, entry);
		q->ready = true;
		pthread_cond_signal(&pool.cv);
	}
	pthread_mutex_unlock(&pool.mtx);
}

/* One piece of j, or its end: true when the job is finished. */
static bool
punch_step(struct punch_job *j, bool cancelled)
{
	struct discard_span *s;
	int rc;

	if (cancelled) {
		j->rc = -1;
		snprintf(j->err, sizeof j->err, "discard cancelled");
		return true;
	}
	while (j->spans_done < j->nspans && j->spans[j->spans_done].len == 0)
		j->spans_done++;
	if (j->spans_done == j->nspans)
		return true;
	s = &j->spans[j->spans_done];
	rc = discard_piece(s, j->deadline_ms, &j->res, j->err, sizeof j->err);
	if (rc != 0) {
		j->rc = rc;
		return true;
	}
	while (j->spans_done < j->nspans && j->spans[j->spans_done].len == 0)
		j->spans_done++;
	return j->spans_done == j->nspans;
}

static void *
punch_worker(void *arg)
{
	struct punchq *q;
	struct punch_job *j;
	uint64_t one = 1;
	bool cancelled, finished;

	pthread_mutex_lock(&pool.mtx);
	for (;;) {
		/* At stop the queued work is still finished: see above. */
		while (TAILQ_EMPTY(&pool.ready) && !pool.stop)
			pthread_cond_wait(&pool.cv, &pool.mtx);
		if ((q = TAILQ_FIRST(&pool.ready)) == NULL)
			break;
		TAILQ_REMOVE(&pool.ready, q, entry);
		q->ready = false;
		q->busy = true;
		j = TAILQ_FIRST(&q->jobs);
		cancelled = q->cancelled || j->cancelled;
		pthread_mutex_unlock(&pool.mtx);

		finished = punch_step(j, cancelled);

		pthread_mutex_lock(&pool.mtx);
		q->busy = false;
		if (finished) {
			TAILQ_REMOVE(&q->jobs, j, entry);
			TAILQ_INSERT_TAIL(&pool.done, j, entry);
			/* Cannot fail short of a counter at 2^64 - 2. */
			(void)!write(pool.efd, &one, sizeof one);
		}
		if (!TAILQ_EMPTY(&q->jobs)) {
			TAILQ_INSERT_TAIL(&pool.ready, q, entry);
			q->ready = true;
			pthread_cond_signal(&pool.cv);
		}
	}
	pthread_mutex_unlock(&pool.mtx);
	return NULL;
}

/* On the loop: hand each finished job to its queue's owner. */
static void
punch_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct punch_jobs done = TAILQ_HEAD_INITIALIZER(done);
	struct punch_job *j;
	struct punchq *q;
	uint64_t n;

	if (pool.efd != -1)
		(void)!read(pool.efd, &n, sizeof n);
	pthread_mutex_lock(&pool.mtx);
	TAILQ_CONCAT(&done, &pool.done, entry);
	pthread_mutex_unlock(&pool.mtx);
	while ((j = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, j, entry);
		q = j->q;
		if (j->res.late_ms != 0)
			log_warnx("discard: a piece ended %llu ms after the "
			          "batch's deadline",
			    (unsigned long long)j->res.late_ms);
		/* The owner may free the queue from its callback: the
		 * job's reference keeps it until the callback returned. */
		if (!q->detached)
			q->done(j, q->arg);
		punch_job_free(j);
		punchq_release(q);
	}
}

static void
punchq_release(struct punchq *q)
{
	if (--q->refs == 0 && q->detached)
		free(q);
}

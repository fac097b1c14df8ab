/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The punch workers (punch.c) on real memfds and real threads: the VMs
 * are served round robin a piece at a time, a job's fds outlive the map
 * they came from, a queue freed with work in flight gets no callback and
 * leaks nothing, a deadline passing midway stops a job with the whole
 * ranges punched counted, and a cancel ends what is queued, not what
 * comes after.
 */
#include <sys/mman.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "unit.h"

#include "freehintd.h"

#define MiB         (1ULL << 20)
#define NO_DEADLINE UINT64_MAX

struct fixture {
	struct event_base *base;
	int fd;
	struct memregion r;
	struct memmap m;
	char *p;
	uint64_t size;
	/* What came back, in order: each job's batch_id. */
	uint64_t order[16];
	int rc[16];
	size_t spans_done[16];
	uint64_t bytes[16];
	unsigned n;
};

struct config *conf;
struct event_base *ev_base;

static void
done(struct punch_job *j, void *arg)
{
	struct fixture *f = arg;

	assert_true(f->n < 16);
	f->order[f->n] = j->batch_id;
	f->rc[f->n] = j->rc;
	f->spans_done[f->n] = j->spans_done;
	f->bytes[f->n] = j->res.bytes;
	f->n++;
}

static void
never(struct punch_job *j, void *arg)
{
	fail_msg("callback of a freed queue, job %llu",
	    (unsigned long long)j->batch_id);
}

/* A fresh loop, `workers` threads, a memfd of size bytes full of 0xa5. */
static struct fixture *
setup(unsigned workers, uint64_t size, const char *delay_ms)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	if (delay_ms != NULL)
		setenv("FREEHINTD_TEST_DISCARD_DELAY_MS", delay_ms, 1);
	else
		unsetenv("FREEHINTD_TEST_DISCARD_DELAY_MS");
	f->base = event_base_new();
	assert_non_null(f->base);
	assert_int_equal(punch_init(f->base, workers), 0);
	f->size = size;
	f->p = unit_memfd(size, 0xa5, &f->fd);
	f->r = (struct memregion){ 0, size, 0, 0, f->fd, 0, 4096 };
	f->m = (struct memmap){ &f->r, 1, NULL, VM_BACKING_MEMFD };
	return f;
}

static void
teardown(struct fixture *f)
{
	punch_shutdown();
	event_base_free(f->base);
	munmap(f->p, f->size);
	if (f->fd != -1)
		close(f->fd);
	free(f);
}

/* A job of n ranges of len bytes from off, stride apart. */
static struct punch_job *
job(struct fixture *f, uint64_t id, size_t n, uint64_t off, uint64_t len,
    uint64_t stride, uint64_t deadline)
{
	struct punch_job *j = punch_job_new(n, deadline);
	char err[128];
	size_t i;

	for (i = 0; i < n; i++)
		assert_int_equal(punch_job_add(j, &f->m, off + i * stride, len,
		                     err, sizeof err),
		    0);
	j->batch_id = id;
	return j;
}

/* Jobs 1..n of one 2 MiB range each, at 0, 2, 4... MiB. */
static void
submit_small(struct fixture *f, struct punchq *q, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		punch_submit(
		    q, job(f, 1 + i, 1, i * 2 * MiB, 2 * MiB, 0, NO_DEADLINE));
}

/* Run the loop until `n` jobs came back (10 s at most). */
static void
run_until(struct fixture *f, unsigned n)
{
	uint64_t end = fh_monotonic_ms() + 10000;

	while (f->n < n && fh_monotonic_ms() < end)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(f->n, n);
}

/*
 * One worker, VM A's job of four pieces queued first, VM B's job of one
 * piece after it: B's comes back first, after one piece of A's at most.
 * Handled a batch at a time, B would wait for all of A's.
 */
static void
test_round_robin(void **state)
{
	struct fixture *f = setup(1, 160 * MiB, "50");
	struct punchq *a = punchq_new(done, f), *b = punchq_new(done, f);

	punch_submit(a, job(f, 1, 1, 0, 128 * MiB, 0, NO_DEADLINE));
	punch_submit(b, job(f, 2, 1, 128 * MiB, 32 * MiB, 0, NO_DEADLINE));
	assert_int_equal(punchq_pending(a), 1);
	run_until(f, 2);
	assert_int_equal(f->order[0], 2);
	assert_int_equal(f->order[1], 1);
	assert_int_equal(f->rc[0], 0);
	assert_int_equal(f->rc[1], 0);
	assert_int_equal(f->bytes[1], 128 * MiB);
	assert_int_equal(f->p[0], 0);
	assert_int_equal(f->p[160 * MiB - 1], 0);
	assert_int_equal(punchq_pending(a), 0);
	punchq_free(a);
	punchq_free(b);
	teardown(f);
}

/*
 * Several VMs with several jobs each on two workers: every job comes
 * back once, a VM's own jobs in the order they were submitted.
 */
static void
test_many_queues(void **state)
{
	struct fixture *f = setup(2, 64 * MiB, NULL);
	struct punchq *q[4];
	uint64_t last[4] = { 0 };
	unsigned i, k;

	for (i = 0; i < 4; i++)
		q[i] = punchq_new(done, f);
	for (k = 0; k < 3; k++)
		for (i = 0; i < 4; i++)
			punch_submit(q[i],
			    job(f, 1 + i * 10 + k, 2, (i * 16 + k * 4) * MiB,
			        2 * MiB, 2 * MiB, NO_DEADLINE));
	run_until(f, 12);
	for (k = 0; k < 12; k++) {
		i = (unsigned)(f->order[k] - 1) / 10;
		assert_true(f->order[k] > last[i]);
		last[i] = f->order[k];
		assert_int_equal(f->rc[k], 0);
		assert_int_equal(f->bytes[k], 4 * MiB);
	}
	for (i = 0; i < 4; i++)
		punchq_free(q[i]);
	teardown(f);
}

/* The map is read again (its fd closed) before the job runs. */
static void
test_fd_outlives_map(void **state)
{
	struct fixture *f = setup(1, 8 * MiB, NULL);
	struct punchq *q = punchq_new(done, f);
	struct punch_job *j = job(f, 1, 2, 0, 2 * MiB, 4 * MiB, NO_DEADLINE);

	close(f->fd);
	f->fd = -1;
	f->r.fd = -1;
	punch_submit(q, j);
	run_until(f, 1);
	assert_int_equal(f->rc[0], 0);
	assert_int_equal(f->spans_done[0], 2);
	assert_int_equal(f->bytes[0], 4 * MiB);
	assert_int_equal(f->p[0], 0);
	assert_int_equal((unsigned char)f->p[2 * MiB], 0xa5);
	assert_int_equal(f->p[4 * MiB], 0);
	assert_int_equal((unsigned char)f->p[6 * MiB], 0xa5);
	punchq_free(q);
	teardown(f);
}

/*
 * The owner goes away with four jobs in flight: no callback, and the
 * jobs not yet begun are not punched. Leaks show under valgrind/ASan.
 */
static void
test_detach_in_flight(void **state)
{
	struct fixture *f = setup(1, 8 * MiB, "100");
	struct punchq *q = punchq_new(never, f);

	submit_small(f, q, 4);
	punchq_free(q);
	punch_shutdown();
	/* The first job may have begun; none after it. */
	assert_int_equal((unsigned char)f->p[2 * MiB], 0xa5);
	assert_int_equal((unsigned char)f->p[6 * MiB], 0xa5);
	assert_int_equal(punch_init(f->base, 1), 0);
	teardown(f);
}

/*
 * Four ranges of one 32 MiB piece each at 150 ms a piece, the deadline
 * 400 ms past the margin: stopped midway, the ranges before it whole.
 */
static void
test_deadline_midway(void **state)
{
	struct fixture *f = setup(1, 160 * MiB, "150");
	struct punchq *q = punchq_new(done, f);
	uint64_t now = fh_monotonic_ms();

	punch_submit(q,
	    job(f, 1, 4, 0, 32 * MiB, 40 * MiB,
	        now + FREEHINTD_LEASE_MARGIN_MS + 400));
	run_until(f, 1);
	assert_int_equal(f->rc[0], DISCARD_TOO_LATE);
	assert_true(f->spans_done[0] > 0 && f->spans_done[0] < 4);
	assert_int_equal(f->bytes[0], f->spans_done[0] * 32 * MiB);
	assert_int_equal(
	    (unsigned char)f->p[f->spans_done[0] * 40 * MiB], 0xa5);
	punchq_free(q);
	teardown(f);
}

/* A cancel ends the jobs queued then; a later job is punched. */
static void
test_cancel(void **state)
{
	struct fixture *f = setup(1, 8 * MiB, "50");
	struct punchq *q = punchq_new(done, f);

	submit_small(f, q, 3);
	punchq_cancel(q);
	punch_submit(q, job(f, 4, 1, 6 * MiB, 2 * MiB, 0, NO_DEADLINE));
	run_until(f, 4);
	assert_int_equal(f->order[3], 4);
	assert_int_equal(f->rc[3], 0);
	assert_int_equal(f->p[6 * MiB], 0);
	/* Whatever had not begun came back cancelled, unpunched. */
	assert_int_equal(f->rc[2], -1);
	assert_int_equal((unsigned char)f->p[4 * MiB], 0xa5);
	punchq_free(q);
	teardown(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_robin),
		cmocka_unit_test(test_many_queues),
		cmocka_unit_test(test_fd_outlives_map),
		cmocka_unit_test(test_detach_in_flight),
		cmocka_unit_test(test_deadline_midway),
		cmocka_unit_test(test_cancel),
	};

	return UNIT_RUN("test_hostd_punch", tests);
}

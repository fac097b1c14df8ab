/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The worker's end of the socketpair to the privileged parent. What the
 * parent's sources say goes to the registry (vm.c) as if the sources
 * were here; what the registry asks of them (monitor commands, the
 * migration's bandwidth) and what needs privileges (priv.c) goes to the
 * parent, and the answer comes back by request id. The parent is
 * trusted: a message from it that does not check ends the worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "freehintd.h"
#include "privsep.h"

/* A request waiting for its answer. */
struct wreq {
	uint64_t id;
	uint32_t answer; /* the answer's type */
	union {
		vm_hmp_done hmp;
		vm_speed_done speed;
		priv_done done;
		priv_resolve_done resolve;
		priv_fd_done fd;
	} cb;
	void *arg;
	struct memmap *map; /* PS_RESOLVE: filled in by the answer */
	size_t n;
	TAILQ_ENTRY(wreq) entry;
};

/* A source's VM, named in the requests its hmp and speed make. */
struct wsrc {
	char *name;
	TAILQ_ENTRY(wsrc) entry;
};

static struct ps_chan *wchan;
static uint64_t wnext_id;
static TAILQ_HEAD(, wreq) wreqs = TAILQ_HEAD_INITIALIZER(wreqs);
static TAILQ_HEAD(, wsrc) wsrcs = TAILQ_HEAD_INITIALIZER(wsrcs);

static ps_handler_fn w_src_add, w_src_remove, w_src_migration, w_src_dma,
    w_src_policy, w_src_speed, w_src_running, w_src_changed, w_policy_conf,
    w_ping, w_answer;
static void w_lost(struct ps_chan *, const char *);
static void w_hmp(void *, const char *, vm_hmp_done, void *);
static void w_speed(void *, uint64_t, uint64_t, vm_speed_done, void *);

static const struct ps_handler w_handlers[] = {
	{ PS_SRC_ADD, w_src_add },
	{ PS_SRC_REMOVE, w_src_remove },
	{ PS_SRC_MIGRATION, w_src_migration },
	{ PS_SRC_DMA, w_src_dma },
	{ PS_SRC_POLICY, w_src_policy },
	{ PS_SRC_SPEED, w_src_speed },
	{ PS_SRC_RUNNING, w_src_running },
	{ PS_SRC_CHANGED, w_src_changed },
	{ PS_POLICY_CONF, w_policy_conf },
	{ PS_PING, w_ping },
	{ PS_HMP_DONE, w_answer },
	{ PS_SPEED_DONE, w_answer },
	{ PS_RESOLVE_DONE, w_answer },
	{ PS_DMA_DONE, w_answer },
	{ PS_CHAN_DONE, w_answer },
	{ PS_NOTIFY_DONE, w_answer },
};

void
ps_worker_start(struct event_base *base, int fd)
{
	wchan = ps_chan_new(
	    base, fd, w_handlers, FH_ARRAY_SIZE(w_handlers), w_lost, NULL);
}

bool
ps_worker_active(void)
{
	return wchan != NULL;
}

static void
w_fail(struct wreq *r)
{
	switch (r->answer) {
	case PS_HMP_DONE:
		r->cb.hmp(r->arg, NULL);
		break;
	case PS_SPEED_DONE:
		r->cb.speed(r->arg, -1);
		break;
	case PS_RESOLVE_DONE:
		r->cb.resolve(r->arg, -1, "the parent is gone", NULL);
		break;
	case PS_DMA_DONE:
		r->cb.done(r->arg, 0, "");
		break;
	case PS_NOTIFY_DONE:
		r->cb.done(r->arg, -1, "the parent is gone");
		break;
	case PS_CHAN_DONE:
		r->cb.fd(r->arg, -1, "the parent is gone");
		break;
	}
}

void
ps_worker_stop(void)
{
	struct wsrc *ws;
	struct wreq *r;

	/* Every caller is told, as if the parent had failed it: what
	 * waits on an answer (a map load, a channel, a hold) is freed. */
	while ((r = TAILQ_FIRST(&wreqs)) != NULL) {
		TAILQ_REMOVE(&wreqs, r, entry);
		w_fail(r);
		free(r);
	}
	while ((ws = TAILQ_FIRST(&wsrcs)) != NULL) {
		TAILQ_REMOVE(&wsrcs, ws, entry);
		free(ws->name);
		free(ws);
	}
	ps_chan_free(wchan);
	wchan = NULL;
}

/* The parent is gone: so is the reason to serve anyone. */
static void
w_lost(struct ps_chan *c, const char *why)
{
	log_info("worker: the parent's channel: %s; exiting", why);
	event_base_loopbreak(ev_base);
}

static struct wreq *
w_request(uint32_t type, uint32_t answer, struct ps_buf *b, void *arg)
{
	struct wreq *r;

	r = xcalloc(1, sizeof *r);
	r->id = ++wnext_id;
	r->answer = answer;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&wreqs, r, entry);
	ps_send(wchan, type, r->id, b);
	return r;
}

static struct wsrc *
wsrc_find(const char *name)
{
	struct wsrc *ws;

	TAILQ_FOREACH(ws, &wsrcs, entry)
		if (strcmp(ws->name, name) == 0)
			return ws;
	return NULL;
}

static int
w_src_add(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	struct vm_desc d;
	struct wsrc *ws;

	memset(&d, 0, sizeof d);
	d.name = ps_get_str(rd, PS_STR_MAX);
	d.source = ps_get_str(rd, PS_STR_MAX);
	d.cid = ps_get_u32(rd);
	d.channel = ps_get_str(rd, PS_STR_MAX);
	d.channel_qemu = ps_get_u32(rd) != 0;
	d.qemu_pid = (pid_t)ps_get_u32(rd);
	d.backing = (enum vm_backing_kind)ps_get_u32(rd);
	d.shared = ps_get_u32(rd) != 0;
	d.unservable = ps_get_str(rd, PS_STR_MAX);
	if (rd->bad || d.name == NULL)
		return -1;
	if ((ws = wsrc_find(d.name)) == NULL) {
		ws = xcalloc(1, sizeof *ws);
		ws->name = xstrdup(d.name);
		TAILQ_INSERT_TAIL(&wsrcs, ws, entry);
	}
	vm_source_add(&d, w_hmp, ws);
	return 0;
}

static int
w_src_remove(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);
	struct wsrc *ws;

	if (name == NULL)
		return -1;
	vm_source_remove(name);
	if ((ws = wsrc_find(name)) != NULL) {
		TAILQ_REMOVE(&wsrcs, ws, entry);
		free(ws->name);
		free(ws);
	}
	return 0;
}

static int
w_src_migration(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);
	uint32_t ev = ps_get_u32(rd);

	if (name == NULL || ev > VM_MIGRATION_POSTCOPY)
		return -1;
	vm_source_migration(name, (enum vm_migration_event)ev);
	return 0;
}

static int
w_src_dma(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);
	const char *why = ps_get_str(rd, PS_STR_MAX);

	if (name == NULL || rd->bad)
		return -1;
	vm_source_dma(name, why);
	return 0;
}

static int
w_src_policy(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);
	const char *xml = ps_get_str(rd, PS_MAX_PAYLOAD);

	if (name == NULL || rd->bad)
		return -1;
	vm_source_policy(name, xml);
	return 0;
}

static int
w_src_speed(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);
	uint32_t can = ps_get_u32(rd);
	struct wsrc *ws;

	if (name == NULL || rd->bad)
		return -1;
	if (can == 0 || (ws = wsrc_find(name)) == NULL)
		vm_source_speed(name, NULL, NULL);
	else
		vm_source_speed(name, w_speed, ws);
	return 0;
}

static int
w_src_running(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);
	uint32_t running = ps_get_u32(rd);

	if (name == NULL || rd->bad)
		return -1;
	vm_source_running(name, running != 0);
	return 0;
}

static int
w_src_changed(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);

	if (name == NULL)
		return -1;
	vm_source_changed(name);
	return 0;
}

/* The daemon's policy after a reload (ps_parent_policy writes it). */
static int
w_policy_conf(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	struct policy p;

	p.min_order = ps_get_u32(rd);
	p.max_batch_ranges = ps_get_u32(rd);
	p.max_batch_bytes = ps_get_u64(rd);
	p.max_batches_sec = ps_get_u32(rd);
	p.max_bytes_sec = ps_get_u64(rd);
	p.max_faults = ps_get_u32(rd);
	p.hint_min_order = ps_get_u32(rd);
	p.stats_interval_ms = ps_get_u32(rd);
	p.migration_hold_ms = ps_get_u32(rd);
	p.migration_link_bps = ps_get_u64(rd);
	p.hint_pass_bps = ps_get_u64(rd);
	p.no_discard = ps_get_u32(rd) != 0;
	if (rd->bad)
		return -1;
	conf->policy = p;
	log_info("worker: policy reloaded");
	return 0;
}

/* The parent's watchdog: this loop turns, and how many VMs it serves. */
static int
w_ping(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	struct ps_buf b = { 0 };
	unsigned n = 0, up = 0;
	struct vm *vm;

	TAILQ_FOREACH(vm, &vms, entry) {
		n++;
		up += vm->guest != NULL;
	}
	ps_put_u32(&b, n);
	ps_put_u32(&b, up);
	ps_send(c, PS_PONG, id, &b);
	return 0;
}

/* PS_RESOLVE_DONE: the fds and where each region lies in its file. */
static int
w_resolved(struct wreq *r, struct ps_rd *rd)
{
	uint32_t rc, kind, n, i, hasfd;
	const char *err, *dma;
	struct memregion *m;

	rc = ps_get_u32(rd);
	err = ps_get_str(rd, PS_STR_MAX);
	kind = ps_get_u32(rd);
	n = ps_get_u32(rd);
	if (rd->bad || kind > VM_BACKING_ANONYMOUS || (rc == 0 && n != r->n) ||
	    (rc != 0 && n != 0))
		return -1;
	for (i = 0; i < n; i++) {
		m = &r->map->r[i];
		hasfd = ps_get_u32(rd);
		m->file_off = ps_get_u64(rd);
		m->pagesz = ps_get_u64(rd);
		m->fd = hasfd ? ps_get_fd(rd) : -1;
	}
	dma = ps_get_str(rd, PS_STR_MAX);
	if (rd->bad)
		return -1;
	r->map->kind =
	    rc == 0 ? (enum vm_backing_kind)kind : VM_BACKING_UNKNOWN;
	r->cb.resolve(r->arg, rc == 0 ? 0 : -1, err != NULL ? err : "", dma);
	return 0;
}

static int
w_answer_of(struct wreq *r, uint32_t type, struct ps_rd *rd)
{
	const char *s;
	uint32_t rc;
	int fd;

	switch (type) {
	case PS_HMP_DONE:
		s = ps_get_str(rd, PS_MAX_PAYLOAD);
		if (rd->bad)
			return -1;
		r->cb.hmp(r->arg, s);
		return 0;
	case PS_SPEED_DONE:
		r->cb.speed(r->arg, (int64_t)ps_get_u64(rd));
		return rd->bad ? -1 : 0;
	case PS_RESOLVE_DONE:
		return w_resolved(r, rd);
	case PS_DMA_DONE:
	case PS_NOTIFY_DONE:
		rc = ps_get_u32(rd);
		s = ps_get_str(rd, PS_STR_MAX);
		if (rd->bad)
			return -1;
		r->cb.done(r->arg, (int)rc, s != NULL ? s : "");
		return 0;
	case PS_CHAN_DONE:
		rc = ps_get_u32(rd);
		s = ps_get_str(rd, PS_STR_MAX);
		if (rd->bad || rc > 2)
			return -1;
		fd = rc == 0 ? ps_get_fd(rd) : rc == 1 ? -1 : PRIV_REFUSED;
		if (rd->bad)
			return -1;
		r->cb.fd(r->arg, fd, s != NULL ? s : "");
		return 0;
	}
	return -1;
}

/* An answer: to the request of its id, which must expect its type. */
static int
w_answer(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	struct wreq *r;
	int rc;

	TAILQ_FOREACH(r, &wreqs, entry)
		if (r->id == id)
			break;
	if (r == NULL || r->answer != type)
		return -1;
	TAILQ_REMOVE(&wreqs, r, entry);
	rc = w_answer_of(r, type, rd);
	free(r);
	return rc;
}

static void
w_hmp(void *ctx, const char *cmd, vm_hmp_done done, void *arg)
{
	struct wsrc *ws = ctx;
	struct ps_buf b = { 0 };
	struct wreq *r;

	ps_put_str(&b, ws->name);
	ps_put_str(&b, cmd);
	r = w_request(PS_HMP, PS_HMP_DONE, &b, arg);
	r->cb.hmp = done;
}

static void
w_speed(
    void *ctx, uint64_t bps, uint64_t ceiling, vm_speed_done done, void *arg)
{
	struct wsrc *ws = ctx;
	struct ps_buf b = { 0 };
	struct wreq *r;

	ps_put_str(&b, ws->name);
	ps_put_u64(&b, bps);
	ps_put_u64(&b, ceiling);
	r = w_request(PS_SPEED, PS_SPEED_DONE, &b, arg);
	r->cb.speed = done;
}

void
ps_worker_resolve(
    struct vm *vm, struct memmap *m, priv_resolve_done done, void *arg)
{
	struct ps_buf b = { 0 };
	struct wreq *r;
	size_t i;

	if (m->n > PS_MAX_REGIONS) {
		done(arg, -1, "too many RAM regions", NULL);
		return;
	}
	ps_put_str(&b, vm->name);
	ps_put_u32(&b, (uint32_t)m->n);
	for (i = 0; i < m->n; i++) {
		ps_put_u64(&b, m->r[i].gpa);
		ps_put_u64(&b, m->r[i].size);
		ps_put_u64(&b, m->r[i].hva);
	}
	r = w_request(PS_RESOLVE, PS_RESOLVE_DONE, &b, arg);
	r->cb.resolve = done;
	r->map = m;
	r->n = m->n;
}

void
ps_worker_dma(struct vm *vm, priv_done done, void *arg)
{
	struct ps_buf b = { 0 };
	struct wreq *r;

	ps_put_str(&b, vm->name);
	r = w_request(PS_DMA, PS_DMA_DONE, &b, arg);
	r->cb.done = done;
}

void
ps_worker_channel(struct vm *vm, priv_fd_done done, void *arg)
{
	struct ps_buf b = { 0 };
	struct wreq *r;

	ps_put_str(&b, vm->name);
	r = w_request(PS_CHAN, PS_CHAN_DONE, &b, arg);
	r->cb.fd = done;
}

void
ps_worker_notify(const char *event, const char *name, priv_done done, void *arg)
{
	struct ps_buf b = { 0 };
	struct wreq *r;

	ps_put_str(&b, event);
	ps_put_str(&b, name);
	r = w_request(PS_NOTIFY, PS_NOTIFY_DONE, &b, arg);
	r->cb.done = done;
}

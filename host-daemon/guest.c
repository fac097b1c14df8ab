/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The protocol session with one guest agent, on top of the peer module.
 * Hello is answered with the VM's mode (decided from its backing, never
 * from what the guest says); each RangeBatch is validated, then REPORTED
 * and HELD ranges are handed to the punch workers (punch.c) and
 * acknowledged only once their discard came back; HINT ranges are only
 * counted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "freehintd.h"

struct guest {
	struct vm *vm;
	struct fh_peer *peer;
	bool hello;
	uint32_t version; /* the message set chosen in Welcome */
	uint64_t next_cmd_id;
	uint32_t page_size;
	uint32_t report_order; /* the guest's, or UINT32_MAX */
	Freehint__Mode mode;
	uint32_t poison; /* the guest's non-zero poison pattern, or 0 */
	bool zeroed; /* Hello's init_on_alloc: captured blocks read as 0 */
	bool skips_reported; /* Hello's CAP_SKIP_REPORTED */
	bool reports; /* Hello's CAP_REPORT */
	char agent_version[64]; /* printable (fh_strvis) */
	bool await_welcome; /* Hello answered once the devices are known */
	struct vstate vs;
	struct fh_rangeset ranges;
};

/* guest_apply: the batch went to the punch workers; no Ack yet. */
#define GUEST_QUEUED (-1)

static int guest_hello(struct fh_peer *, const struct fh_msg *, void *);
static int guest_ranges(struct fh_peer *, const struct fh_msg *, void *);
static int guest_stats(struct fh_peer *, const struct fh_msg *, void *);
static int guest_error(struct fh_peer *, const struct fh_msg *, void *);
static int guest_result(struct fh_peer *, const struct fh_msg *, void *);
static void guest_lost(struct fh_peer *, const char *, void *);
static void guest_welcome(struct guest *);
static int guest_apply(struct guest *, const struct policy *,
    const Freehint__RangeBatch *, char *, size_t);
static uint64_t guest_align(
    const struct guest *, const struct policy *, Freehint__RangeKind);
static int guest_submit(
    struct guest *, const Freehint__RangeBatch *, uint64_t, char *, size_t);
static void guest_ack(struct guest *, uint64_t id, int reason, char *,
    size_t applied, size_t nranges, const struct discard_result *);

static const struct fh_handler guest_handlers[] = {
	{ FH_MSG_HELLO, guest_hello },
	{ FH_MSG_RANGES, guest_ranges },
	{ FH_MSG_STATS, guest_stats },
	{ FH_MSG_ERROR, guest_error },
	{ FH_MSG_COMMAND_RESULT, guest_result },
};

struct guest *
guest_new(struct vm *vm, int fd, enum vm_transport t)
{
	struct guest *g;
	char name[128];

	snprintf(
	    name, sizeof name, "vm %s (%s)", vm->name, vm_transport_name(t));
	g = xcalloc(1, sizeof *g);
	g->vm = vm;
	vstate_init(&g->vs);
	fh_rs_init(&g->ranges);
	g->peer = fh_peer_new(ev_base, fd, name, guest_handlers,
	    FH_ARRAY_SIZE(guest_handlers), guest_lost, g);
	if (g->peer == NULL) {
		vstate_free(&g->vs);
		free(g);
		return NULL;
	}
	fh_peer_set_max_faults(g->peer, conf->policy.max_faults);
	/* A port has no connections: an agent killed mid-frame leaves its
	 * half frame in the stream; its successor's sync mark ends it. */
	if (t == VM_TRANSPORT_CHANNEL)
		fh_peer_set_resync(g->peer, true);
	vm->guest = g;
	vm->transport = t;
	vm->agent_gen++;
	vm->guest_stats_ms = 0; /* a new agent: perhaps a new guest */
	log_info("%s: connected", name);
	return g;
}

void
guest_free(struct guest *g)
{
	if (g == NULL)
		return;
	if (g->vm->guest == g) {
		/* The agent released what it held when the host went away. */
		vm_pass_over(g->vm, "agent lost");
		g->vm->guest = NULL;
		g->vm->transport = VM_TRANSPORT_NONE;
		g->vm->held_bytes = 0;
		/* What is queued ends unpunched, a piece begun is
		 * finished: the VM's queue counts both (guest_punch_done),
		 * and no later agent is answered for them. */
		punchq_cancel(g->vm->pq);
	}
	fh_peer_free(g->peer);
	vstate_free(&g->vs);
	fh_rs_free(&g->ranges);
	free(g);
}

static void
guest_lost(struct fh_peer *p, const char *why, void *arg)
{
	struct guest *g = arg;
	struct vm *vm = g->vm;

	/* An agent that hangs up (a guest reboot, an agent restart) is a
	 * state status shows, not an error; a session ended by a fault is. */
	if (strcmp(why, "connection closed") == 0)
		log_info("vm %s: agent gone: %s", vm->name, why);
	else
		vm_set_error(vm, "agent lost: %s", why);
	guest_free(g);
	vm_guest_lost(vm);
}

/* The agent said Hello and was welcomed: commands may be sent. */
bool
guest_ready(const struct guest *g)
{
	return g->hello && !g->await_welcome;
}

/* The guest's page size from its Hello; 0 before. */
uint32_t
guest_page_size(const struct guest *g)
{
	return g != NULL && g->hello ? g->page_size : 0;
}

/*
 * Does the guest's hint pass leave alone what the host already discarded?
 * Only when it reports to us (CAP_REPORT): else its free memory is not
 * reported at all, and skipping reported blocks skips nothing.
 */
bool
guest_skips_reported(const struct guest *g)
{
	return g != NULL && g->hello && g->skips_reported && g->reports;
}

int
guest_command(struct guest *g, Freehint__CommandType type, uint64_t pass_id,
    uint32_t min_order, uint64_t byte_limit, bool zero)
{
	Freehint__Command c = FREEHINT__COMMAND__INIT;

	if (!g->hello || g->await_welcome)
		return -1;
	c.type = type;
	c.has_pass_id = true;
	c.pass_id = pass_id;
	if (type == FREEHINT__COMMAND_TYPE__HINT_PASS) {
		c.has_min_order = c.has_byte_limit = c.has_zero = true;
		c.min_order = min_order;
		c.byte_limit = byte_limit;
		c.zero = zero;
	}
	if (type == FREEHINT__COMMAND_TYPE__RELEASE)
		fh_rs_clear(&g->vs.held);
	/* Set 2: numbered, answered by a CommandResult of that id. */
	if (g->version >= 2) {
		c.has_id = true;
		c.id = ++g->next_cmd_id;
	}
	if (fh_peer_send(g->peer, FH_MSG_COMMAND, &c.base) != 0)
		return -1;
	g->vm->cmd_id = c.id;
	g->vm->cmd_type = type;
	g->vm->cmd_state = c.has_id ? VM_CMD_PENDING : VM_CMD_NONE;
	g->vm->cmd_detail[0] = '\0';
	return 0;
}

/*
 * Stop discarding for this session (the VM turned out to be unsafe):
 * batches not yet punched come back rejected.
 */
void
guest_record_only(struct guest *g)
{
	g->mode = FREEHINT__MODE__RECORD_ONLY;
	punchq_cancel(g->vm->pq);
}

/* Discarding stops for a while (postcopy): what is queued comes back
 * rejected; a piece a worker has begun is the last. */
void
guest_stop_punching(struct guest *g)
{
	punchq_cancel(g->vm->pq);
}

static int
guest_hello(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	const Freehint__Hello *h = m->u.hello;
	struct guest *g = arg;
	struct vm *vm = g->vm;
	uint32_t lo, hi;

	/* The agent's range of message sets; we answer with the highest
	 * both speak, or say why not and close: no agent should retry. */
	lo = h->proto_version;
	hi = h->has_max_proto_version ? h->max_proto_version : lo;
	if (hi < FH_PROTO_MIN || lo > FH_PROTO_MAX) {
		log_warnx("vm %s: agent speaks message sets %u to %u, we %u to "
		          "%u",
		    vm->name, lo, hi, FH_PROTO_MIN, FH_PROTO_MAX);
		vm_set_error(vm,
		    "agent speaks message sets %u to %u, we %u to %u", lo, hi,
		    FH_PROTO_MIN, FH_PROTO_MAX);
		fh_peer_send_error(p, FREEHINT__REJECT_REASON__BAD_VERSION,
		    true,
		    "message sets %u to %u not spoken; this host speaks %u "
		    "to %u",
		    lo, hi, FH_PROTO_MIN, FH_PROTO_MAX);
		fh_peer_close_after_flush(p, "no message set in common");
		return 0;
	}
	if (g->hello) {
		/* virtio-serial has no connections: a restarted agent says
		 * Hello on the same stream. Start the session afresh. */
		if (vm->transport != VM_TRANSPORT_CHANNEL)
			return FREEHINT__REJECT_REASON__NOT_ALLOWED;
		log_info("vm %s: agent restarted", vm->name);
		/* Discards of the old agent's batches still end (their
		 * lease holds), unacknowledged: the ids are not the new
		 * agent's. */
		vm->agent_gen++;
		vstate_free(&g->vs);
		vstate_init(&g->vs);
		vm_pass_over(vm, "agent restarted");
		vm->pass_active = false;
		vm->held_bytes = 0;
	}
	g->hello = true;
	g->version = hi < FH_PROTO_MAX ? hi : FH_PROTO_MAX;
	g->page_size = h->page_size;
	g->poison =
	    h->has_page_poisoning && h->page_poisoning && h->has_poison_value
	    ? h->poison_value
	    : 0;
	g->report_order = h->has_report_order ? h->report_order : UINT32_MAX;
	g->zeroed = h->has_init_on_alloc && h->init_on_alloc;
	g->reports = h->has_capabilities &&
	    (h->capabilities & FREEHINT__CAPABILITY__CAP_REPORT) != 0;
	g->skips_reported = h->has_capabilities &&
	    (h->capabilities & FREEHINT__CAPABILITY__CAP_SKIP_REPORTED) != 0;
	fh_strvis(g->agent_version, sizeof g->agent_version,
	    h->agent_version != NULL ? h->agent_version : "");
	/* A new agent: the map may have changed since it was read. */
	vm_refresh_later(vm);
	/* The Welcome says the mode: not before the VM's devices are
	 * known (vm_check_dma answers in guest_devices_checked). */
	g->await_welcome = true;
	vm_check_dma(vm);
	if (vm->dma_checks == 0 && g->await_welcome)
		guest_welcome(g);
	return 0;
}

/* The VM's device check is back (vm.c): the Welcome may go. */
void
guest_devices_checked(struct guest *g)
{
	if (g->await_welcome && g->vm->dma_checks == 0)
		guest_welcome(g);
}

static void
guest_welcome(struct guest *g)
{
	Freehint__Welcome w = FREEHINT__WELCOME__INIT;
	struct vm *vm = g->vm;
	struct policy pol;
	char why[256];

	g->await_welcome = false;
	/* Start from what the backing allows, not from what an earlier
	 * guest of this VM (before a reboot, say) was given. */
	g->mode = vm->map_mode;
	snprintf(why, sizeof why, "%s",
	    vm->map_why != NULL        ? vm->map_why
	        : vm->mode_why != NULL ? vm->mode_why
	                               : "");
	/* Holes read back as zeroes: that fails a non-zero poison check. */
	if (g->poison != 0 && g->mode != FREEHINT__MODE__RECORD_ONLY) {
		g->mode = FREEHINT__MODE__RECORD_ONLY;
		snprintf(
		    why, sizeof why, "page poisoning with 0x%02x", g->poison);
	}
	vm->mode = g->mode;
	free(vm->mode_why);
	vm->mode_why = xstrdup(why);

	w.proto_version = g->version;
	if (g->version >= 2) {
		w.has_capabilities = true;
		w.capabilities = FREEHINT__HOST_CAPABILITY__HOST_CAP_DEADLINE |
		    FREEHINT__HOST_CAPABILITY__HOST_CAP_COMMAND_RESULT;
		if (vm->transport == VM_TRANSPORT_CHANNEL)
			w.capabilities |=
			    FREEHINT__HOST_CAPABILITY__HOST_CAP_RESYNC;
	}
	w.mode = g->mode;
	w.reason = why;
	w.has_min_order = w.has_max_batch_ranges = true;
	vm_policy(vm, &pol);
	w.min_order = pol.min_order;
	w.max_batch_ranges = conf->policy.max_batch_ranges;
	w.has_max_inflight = true;
	w.max_inflight = 4;
	w.has_max_batches_per_sec = true;
	w.max_batches_per_sec = pol.max_batches_sec;
	w.has_stats_interval_ms = true;
	w.stats_interval_ms = conf->policy.stats_interval_ms;
	w.has_host_clock_ms = true;
	w.host_clock_ms = fh_monotonic_ms();
	log_info("vm %s: agent %s, %u-byte pages, mode %s (%s)", vm->name,
	    g->agent_version, g->page_size, vm_mode_name(g->mode), why);
	fh_peer_send(g->peer, FH_MSG_WELCOME, &w.base);
}

/*
 * Blocks come whole from the buddy allocator: reported ones of at least
 * the smaller of our minimum and the guest's report order, held ones of
 * at least the hint pass's minimum order. From the VM's policy of now:
 * freehintctl set applies from the next batch.
 */
static uint64_t
guest_align(
    const struct guest *g, const struct policy *pol, Freehint__RangeKind kind)
{
	uint32_t order = pol->min_order, hint;

	if (g->report_order < order)
		order = g->report_order;
	if (kind != FREEHINT__RANGE_KIND__HELD &&
	    kind != FREEHINT__RANGE_KIND__HINT)
		return 1ULL << order;
	/* The pass's order: held blocks are of it; hints are never
	 * discarded, so the smallest block either sends. */
	hint = vm_pass_policy(g->vm, g->page_size).min_order;
	if (kind == FREEHINT__RANGE_KIND__HELD)
		return 1ULL << hint;
	return 1ULL << (hint < order ? hint : order);
}

/*
 * Count a validated batch, or hand it to the punch workers: 0 (applied
 * now), GUEST_QUEUED, or a RejectReason.
 */
static int
guest_apply(struct guest *g, const struct policy *pol,
    const Freehint__RangeBatch *b, char *err, size_t errlen)
{
	struct vm *vm = g->vm;
	uint64_t bytes = 0;
	size_t i;

	/* Only counted: a snapshot may take several batches, and the
	 * guest's free memory comes whole in its Stats. */
	if (b->kind == FREEHINT__RANGE_KIND__HINT)
		return 0;
	for (i = 0; i < g->ranges.n; i++)
		bytes += g->ranges.r[i].npages * g->page_size;
	/* discard=off: judged and counted, nothing punched. */
	if (g->mode == FREEHINT__MODE__DISCARD && !pol->no_discard &&
	    g->ranges.n != 0)
		return guest_submit(g, b, bytes, err, errlen);
	if (b->kind == FREEHINT__RANGE_KIND__HELD) {
		/* Both normal (validate.c): merged, never sorted again. */
		if (fh_rs_merge(&g->vs.held, &g->ranges) != 0) {
			snprintf(err, errlen, "out of memory");
			return FREEHINT__REJECT_REASON__HOST_ERROR;
		}
		vm->held_bytes += bytes;
		vm->counters.pass_bytes += bytes;
		vm_pass_taken(vm, bytes, g->ranges.n);
		if (b->has_last && b->last)
			vm_pass_complete(vm);
	}
	return 0;
}

/* Hand a REPORTED or HELD batch to the punch workers. */
static int
guest_submit(struct guest *g, const Freehint__RangeBatch *b, uint64_t bytes,
    char *err, size_t errlen)
{
	struct vm *vm = g->vm;
	struct punch_job *j;
	bool last = b->has_last && b->last;
	size_t i;

	/*
	 * The guest kernel keeps these pages isolated only until a deadline
	 * the agent states on our clock; a batch without one is never
	 * discarded. It holds however long the batch sat in buffers while
	 * this daemon was stalled or busy elsewhere.
	 */
	if (!b->has_deadline_ms) {
		snprintf(err, errlen, "no deadline: not discarded");
		return FREEHINT__REJECT_REASON__NOT_ALLOWED;
	}
	/*
	 * Too late is this daemon's delay (or the link's), not the guest's
	 * fault: HOST_ERROR, which counts no fault. So is a queue longer
	 * than an agent keeping to max_inflight can make.
	 */
	if (fh_monotonic_ms() + FREEHINTD_LEASE_MARGIN_MS >= b->deadline_ms) {
		snprintf(err, errlen, "too late to discard");
		return FREEHINT__REJECT_REASON__HOST_ERROR;
	}
	/* Postcopy (vm.c): the host's state, not the guest's fault. */
	if (vm->nodiscard_why != NULL) {
		snprintf(err, errlen, "%s", vm->nodiscard_why);
		return FREEHINT__REJECT_REASON__HOST_ERROR;
	}
	/* A device check asked at Hello is not back yet (vm_check_dma). */
	if (vm->dma_checks != 0) {
		snprintf(err, errlen, "checking the VM's devices");
		return FREEHINT__REJECT_REASON__HOST_ERROR;
	}
	if (punchq_pending(vm->pq) >= FREEHINTD_PUNCH_QUEUE) {
		snprintf(err, errlen, "%u batches being discarded already",
		    punchq_pending(vm->pq));
		return FREEHINT__REJECT_REASON__HOST_ERROR;
	}
	j = punch_job_new(g->ranges.n, b->deadline_ms);
	for (i = 0; i < g->ranges.n; i++)
		if (punch_job_add(j, &vm->map,
		        g->ranges.r[i].start * g->page_size,
		        g->ranges.r[i].npages * g->page_size, err,
		        errlen) != 0) {
			punch_job_free(j);
			return FREEHINT__REJECT_REASON__HOST_ERROR;
		}
	j->batch_id = b->batch_id;
	j->gen = vm->agent_gen;
	j->pass_id = b->pass_id;
	j->kind = b->kind;
	j->last = last;
	j->bytes = bytes;
	j->submitted_usec = fh_monotonic_us();
	/*
	 * Held from now on, so that a batch overlapping this one is refused
	 * while it is punched; given up again if the discard fails.
	 */
	if (b->kind == FREEHINT__RANGE_KIND__HELD &&
	    (fh_rs_merge(&j->ranges, &g->ranges) != 0 ||
	        fh_rs_merge(&g->vs.held, &g->ranges) != 0)) {
		punch_job_free(j);
		snprintf(err, errlen, "out of memory");
		return FREEHINT__REJECT_REASON__HOST_ERROR;
	}
	punch_submit(vm->pq, j);
	if (b->kind == FREEHINT__RANGE_KIND__HELD) {
		vm_pass_taken(vm, bytes, g->ranges.n);
		/*
		 * Captured blocks came zeroed: QEMU reads a held page as a zero
		 * page whether it is punched yet or not, so the migration need
		 * not wait for the punches (its hold ends here).
		 */
		if (last && g->zeroed)
			vm_pass_complete(vm);
	}
	return GUEST_QUEUED;
}

/*
 * A discard came back from the workers (the VM's queue, vm.c): what it
 * punched counts whoever is connected now; its batch is acknowledged
 * only to the agent that sent it.
 */
void
guest_punch_done(struct punch_job *j, void *arg)
{
	struct vm *vm = arg;
	struct guest *g = vm->guest;
	struct fh_rangeset rest;

	vm->reclaimed_bytes += j->res.bytes;
	vm_count_discard(vm, fh_monotonic_us() - j->submitted_usec);
	if (g == NULL || j->gen != vm->agent_gen)
		return;
	vm_count_batch(vm, j->kind,
	    j->rc == 0 ? 0 : FREEHINT__REJECT_REASON__HOST_ERROR,
	    j->rc == 0 ? j->nspans : j->nspans - j->spans_done);
	if (j->rc == 0) {
		/* Not once the pass was released while this was punched. */
		if (j->kind == FREEHINT__RANGE_KIND__HELD && vm->pass_active &&
		    vm->pass_id == j->pass_id) {
			vm->held_bytes += j->bytes;
			vm->counters.pass_bytes += j->bytes;
			if (j->last)
				vm_pass_complete(vm);
		}
		guest_ack(
		    g, j->batch_id, 0, NULL, j->nspans, j->nspans, &j->res);
		return;
	}
	if (j->kind == FREEHINT__RANGE_KIND__HELD) {
		/* The guest takes a rejected batch back: not held. */
		fh_rs_init(&rest);
		if (fh_rs_subtract(&g->vs.held, &j->ranges, &rest) == 0) {
			fh_rs_free(&g->vs.held);
			g->vs.held = rest;
		} else
			fh_rs_free(&rest);
	}
	guest_ack(g, j->batch_id, FREEHINT__REJECT_REASON__HOST_ERROR, j->err,
	    j->spans_done, j->nspans, &j->res);
}

/*
 * Send the Ack of a batch of nranges ranges. Rejected after a discard
 * began (res != NULL), the first `applied` ranges were discarded whole and
 * res->bytes in all: the Ack says so (ranges_applied, bytes_discarded)
 * and the counters count them as applied; the guest takes the whole batch
 * back, which is safe, as it was free.
 */
static void
guest_ack(struct guest *g, uint64_t id, int reason, char *err, size_t applied,
    size_t nranges, const struct discard_result *res)
{
	Freehint__Ack a = FREEHINT__ACK__INIT;
	struct vm *vm = g->vm;

	a.batch_id = id;
	if (res != NULL) {
		a.has_bytes_discarded = true;
		a.bytes_discarded = res->bytes;
	}
	a.has_ranges_applied = reason == 0 || applied != 0;
	a.ranges_applied = applied;
	vm->ranges_applied += applied;
	if (reason == 0) {
		a.status = FREEHINT__ACK_STATUS__APPLIED;
		vm->batches_applied++;
	} else {
		a.status = FREEHINT__ACK_STATUS__REJECTED;
		a.has_reason = true;
		a.reason = (Freehint__RejectReason)reason;
		a.detail = err;
		vm->ranges_rejected += nranges - applied;
		vm->batches_rejected++;
		vm_set_error(vm, "batch %" PRIu64 " rejected: %s: %s", id,
		    validate_reason_name(reason), err);
	}
	a.has_host_clock_ms = true;
	a.host_clock_ms = fh_monotonic_ms();
	fh_peer_send(g->peer, FH_MSG_ACK, &a.base);
}

static int
guest_ranges(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	const Freehint__RangeBatch *b = m->u.ranges;
	const struct discard_result none = { 0 };
	struct guest *g = arg;
	struct vm *vm = g->vm;
	struct policy pol;
	struct timespec now;
	char err[256];
	int reason;

	clock_gettime(CLOCK_REALTIME, &now);
	if (!g->hello || g->await_welcome)
		return FREEHINT__REJECT_REASON__NOT_ALLOWED;
	vm_policy(vm, &pol);
	reason = validate_batch(&g->vs, &vm->budget, &pol, &vm->map,
	    g->page_size, guest_align(g, &pol, b->kind), b, &now, &g->ranges,
	    err, sizeof err);
	/* Nothing after the pass's last batch: the pass bounds what a
	 * guest may have punched (validate.c). */
	if (reason == 0 && b->kind == FREEHINT__RANGE_KIND__HELD &&
	    (!vm_pass_active(vm) || !b->has_pass_id ||
	        b->pass_id != vm->pass_id || vm->pass_last_in)) {
		snprintf(err, sizeof err, "HELD outside the active hint pass");
		reason = FREEHINT__REJECT_REASON__NOT_ALLOWED;
	}
	if (reason == 0 && b->kind == FREEHINT__RANGE_KIND__HELD &&
	    b->has_last && b->last)
		vm->pass_last_in = true;
	if (reason == 0)
		reason = guest_apply(g, &pol, b, err, sizeof err);
	if (reason == GUEST_QUEUED)
		return 0;
	vm_count_batch(
	    vm, (int)b->kind, reason, reason == 0 ? g->ranges.n : b->n_gaps);
	/* Nothing was discarded: a discard-mode batch says so. */
	guest_ack(g, b->batch_id, reason, err, reason == 0 ? g->ranges.n : 0,
	    reason == 0 ? g->ranges.n : b->n_gaps,
	    g->mode == FREEHINT__MODE__DISCARD &&
	            b->kind != FREEHINT__RANGE_KIND__HINT
	        ? &none
	        : NULL);
	/* A failed discard is ours, not the guest's fault. */
	return reason == FREEHINT__REJECT_REASON__HOST_ERROR ? 0 : reason;
}

static int
guest_stats(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	struct guest *g = arg;
	struct vm *vm = g->vm;
	const Freehint__Stats *st = m->u.stats;
	size_t n = st->n_free_blocks_by_order;

	if (!g->hello || g->await_welcome)
		return FREEHINT__REJECT_REASON__NOT_ALLOWED;
	/* Figures only (pass_estimate): what a guest claims moves no more
	 * than whether its own migration waits for its pass. */
	if (!st->has_free_bytes)
		return 0;
	vm->guest_free_bytes = st->free_bytes;
	if (n > FREEHINTD_MAX_ORDERS)
		n = FREEHINTD_MAX_ORDERS;
	memset(vm->guest_free_by_order, 0, sizeof vm->guest_free_by_order);
	if (n > 0)
		memcpy(vm->guest_free_by_order, st->free_blocks_by_order,
		    n * sizeof *vm->guest_free_by_order);
	vm->guest_free_norders = n;
	vm->guest_stats_ms = fh_monotonic_ms();
	return 0;
}

static int
guest_error(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	struct guest *g = arg;

	vm_set_error(g->vm, "agent says: %s (%s)",
	    m->u.error->detail ? m->u.error->detail : "",
	    validate_reason_name((int)m->u.error->code));
	if (m->u.error->has_fatal && m->u.error->fatal)
		fh_peer_close_after_flush(p, "agent gave up");
	return 0;
}

/*
 * The answer to a numbered Command. Only the last one is tracked (a new
 * command supersedes it); an id never handed out is the agent's mistake.
 */
static int
guest_result(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	const Freehint__CommandResult *r = m->u.result;
	struct guest *g = arg;
	struct vm *vm = g->vm;
	char detail[128];

	if (!g->hello || g->await_welcome || g->version < 2 || r->id == 0 ||
	    r->id > g->next_cmd_id)
		return FREEHINT__REJECT_REASON__NOT_ALLOWED;
	fh_strvis(detail, sizeof detail, r->detail != NULL ? r->detail : "");
	if (r->id != vm->cmd_id) {
		log_debug("vm %s: result of superseded command %" PRIu64,
		    vm->name, r->id);
		return 0;
	}
	vm->cmd_state = r->ok ? VM_CMD_OK : VM_CMD_FAILED;
	snprintf(vm->cmd_detail, sizeof vm->cmd_detail, "%s", detail);
	if (r->ok) {
		log_info("vm %s: command %" PRIu64 " done: %s", vm->name, r->id,
		    detail);
		return 0;
	}
	vm_set_error(vm, "command %" PRIu64 " failed: %s (%s)", r->id, detail,
	    validate_reason_name(r->has_code ? (int)r->code : 0));
	/* The guest holds nothing for a pass it did not start. */
	if (vm->cmd_type == FREEHINT__COMMAND_TYPE__HINT_PASS) {
		vm_pass_over(vm, "the pass failed in the guest");
		vm->pass_active = false;
	}
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One guest session (host-daemon/guest.c) over a socketpair: the test
 * plays the agent with the real codec (fh_frame_put, fh_msg_pull,
 * fh_batch_pack), says Hello, reads the Welcome, sends batches and reads
 * their Acks. The VM comes from the registry through a fake source
 * (hostd_fixture.h) whose RAM is a memfd of this process, so a REPORTED
 * batch is really punched by the punch workers and reads back as zeroes;
 * so is a HELD one of a hint pass the host started, whose Command the
 * test answers with a CommandResult. Where a batch must stay queued (to
 * be cancelled, or to fill the queue), the workers are slowed down by
 * discard.c's test hook. Each case gets a fresh fixture; the teardown is
 * the one cleanup path.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"
#include <event2/buffer.h>
#include <event2/event.h>

#include "freehintd.h"
#include "hostd_fixture.h"
#include "proto.h"

#define PAGE 4096
/* Each piece a punch worker begins sleeps this long first (discard.c's
 * test hook): a batch behind the one it punches stays queued meanwhile. */
#define SLOW_MS "1000"

struct event_base *ev_base;
struct config *conf;

struct fx {
	struct fake_qemu q;
	struct vm *vm;
	int fd; /* the agent's end */
	struct evbuffer *in;
	bool eof;
	bool init_on_alloc; /* the Hello says so */
};

static int setup(void **);
static int teardown(void **);
static void send_msg(struct fx *, uint8_t, const ProtobufCMessage *);
static void next_msg(struct fx *, uint8_t, struct fh_msg *);
static void send_hello(struct fx *, uint32_t poison);
static void hello(struct fx *, uint32_t poison, Freehint__Welcome **);
static void reconnect(struct fx *, enum vm_transport);
static void send_batch(struct fx *, uint64_t id, Freehint__RangeKind,
    uint64_t start, uint64_t npages, uint64_t deadline_ms);
static uint64_t start_pass(struct fx *, uint64_t *);
static void wait_pending(struct fx *, unsigned);

static int
setup(void **state)
{
	struct fx *f;
	int sv[2];

	f = xcalloc(1, sizeof *f);
	assert_int_equal(fixture_daemon_start("test_hostd_guest", 0), 0);
	assert_int_equal(punch_init(ev_base, 2), 0);
	assert_int_equal(fake_qemu_init(&f->q), 0);
	f->vm = fixture_vm(&f->q, "vm1", 0, NULL);
	/* The map was read at once: a memfd, so discard mode. */
	assert_int_equal(f->vm->map_mode, FREEHINT__MODE__DISCARD);
	assert_int_equal(f->vm->map.kind, VM_BACKING_MEMFD);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_non_null(guest_new(f->vm, sv[0], VM_TRANSPORT_VSOCK));
	f->fd = sv[1];
	f->in = evbuffer_new();
	assert_non_null(f->in);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	/* The sessions first: their discards end on the workers. */
	vm_remove_all();
	punch_shutdown();
	unsetenv("FREEHINTD_TEST_DISCARD_DELAY_MS");
	fixture_daemon_end();
	close(f->fd);
	evbuffer_free(f->in);
	fake_qemu_free(&f->q);
	free(f);
	return 0;
}

static void
send_msg(struct fx *f, uint8_t type, const ProtobufCMessage *m)
{
	struct evbuffer *out = evbuffer_new();

	assert_non_null(out);
	assert_int_equal(fh_frame_put(out, type, m), FH_OK);
	while (evbuffer_get_length(out) > 0)
		assert_true(evbuffer_write(out, f->fd) > 0);
	evbuffer_free(out);
}

static void
send_raw(struct fx *f, const void *buf, size_t len)
{
	assert_int_equal(write(f->fd, buf, len), (ssize_t)len);
}

/* Turn the loop until the daemon sent a whole message; it must be type. */
static void
next_msg(struct fx *f, uint8_t type, struct fh_msg *m)
{
	int err = FH_ENEED, spin;

	evutil_make_socket_nonblocking(f->fd);
	for (spin = 0; spin < FIXTURE_SPINS; spin++) {
		if ((err = fh_msg_pull(f->in, m)) != FH_ENEED)
			break;
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		if (evbuffer_read(f->in, f->fd, -1) == 0) {
			f->eof = true;
			break;
		}
		usleep(200);
	}
	assert_int_equal(err, FH_OK);
	assert_string_equal(fh_msg_name(m->type), fh_msg_name(type));
}

/* The daemon closes: everything it still sends, then EOF. */
static void
wait_eof(struct fx *f)
{
	int spin;

	for (spin = 0; spin < FIXTURE_SPINS && !f->eof; spin++) {
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		if (evbuffer_read(f->in, f->fd, -1) == 0)
			f->eof = true;
		else
			usleep(200);
	}
	assert_true(f->eof);
}

static void
send_hello(struct fx *f, uint32_t poison)
{
	Freehint__Hello h = FREEHINT__HELLO__INIT;

	h.proto_version = FH_PROTO_MIN;
	h.has_max_proto_version = true;
	h.max_proto_version = FH_PROTO_MAX;
	h.agent_version = "test";
	h.page_size = PAGE;
	h.ram_bytes = FAKE_RAM_SIZE;
	h.max_pfn = FAKE_RAM_SIZE / PAGE;
	h.has_init_on_alloc = f->init_on_alloc;
	h.init_on_alloc = f->init_on_alloc;
	if (poison != 0) {
		h.has_page_poisoning = h.page_poisoning = true;
		h.has_poison_value = true;
		h.poison_value = poison;
	}
	send_msg(f, FH_MSG_HELLO, &h.base);
}

static void
hello(struct fx *f, uint32_t poison, Freehint__Welcome **wp)
{
	struct fh_msg m;

	send_hello(f, poison);
	next_msg(f, FH_MSG_WELCOME, &m);
	*wp = m.u.welcome;
}

/* The session gone (as guest_lost ends it), a new agent on a new
 * connection of transport t, before its Hello. */
static void
reconnect(struct fx *f, enum vm_transport t)
{
	int sv[2];

	if (f->vm->guest != NULL)
		guest_free(f->vm->guest);
	close(f->fd);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_non_null(guest_new(f->vm, sv[0], t));
	f->fd = sv[1];
	evbuffer_drain(f->in, evbuffer_get_length(f->in));
	f->eof = false;
}

/* One range; a deadline and a pass when not 0; last: the pass's last. */
static void
send_pass_batch(struct fx *f, uint64_t id, Freehint__RangeKind kind,
    uint64_t start, uint64_t npages, uint64_t deadline_ms, uint64_t pass_id,
    bool last)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	struct fh_rangeset rs;
	uint64_t scratch[3];

	fh_rs_init(&rs);
	assert_int_equal(fh_rs_add(&rs, start, npages), 0);
	assert_int_equal(fh_batch_pack(&b, &rs, scratch), FH_OK);
	b.batch_id = id;
	b.kind = kind;
	if (deadline_ms != 0) {
		b.has_deadline_ms = true;
		b.deadline_ms = deadline_ms;
	}
	if (pass_id != 0) {
		b.has_pass_id = true;
		b.pass_id = pass_id;
	}
	if (last)
		b.has_last = b.last = true;
	send_msg(f, FH_MSG_RANGES, &b.base);
	fh_rs_free(&rs);
}

static void
send_batch(struct fx *f, uint64_t id, Freehint__RangeKind kind, uint64_t start,
    uint64_t npages, uint64_t deadline_ms)
{
	send_pass_batch(f, id, kind, start, npages, deadline_ms, 0, false);
}

static Freehint__Ack *
next_ack(struct fx *f, uint64_t id)
{
	struct fh_msg m;

	next_msg(f, FH_MSG_ACK, &m);
	assert_int_equal(m.u.ack->batch_id, id);
	return m.u.ack;
}

static void
free_msg(void *p)
{
	struct fh_msg m = { .u.base = p };

	fh_msg_free(&m);
}

/* Guest RAM with a pattern a hole would wipe, and a session. */
static void
start(struct fx *f)
{
	Freehint__Welcome *w;

	memset(f->q.ram, 0x5a, 2048 * PAGE);
	hello(f, 0, &w);
	free_msg(w);
}

/* The host starts a hint pass (vm_hint): its pass id, and into *id (when
 * not NULL) the id of its Command, which the agent has read. */
static uint64_t
start_pass(struct fx *f, uint64_t *id)
{
	struct fh_msg m;
	char err[128];
	uint64_t pass;

	assert_int_equal(vm_hint(f->vm, err, sizeof err), 0);
	next_msg(f, FH_MSG_COMMAND, &m);
	assert_int_equal(m.u.command->type, FREEHINT__COMMAND_TYPE__HINT_PASS);
	pass = m.u.command->pass_id;
	if (id != NULL)
		*id = m.u.command->id;
	fh_msg_free(&m);
	assert_true(f->vm->pass_active);
	return pass;
}

/* Discards slowed down (SLOW_MS): the workers read it at every piece. */
static void
slow_discards(void)
{
	assert_int_equal(
	    setenv("FREEHINTD_TEST_DISCARD_DELAY_MS", SLOW_MS, 1), 0);
}

/* Turn the loop until n of the VM's batches are with the workers. */
static void
wait_pending(struct fx *f, unsigned n)
{
	FIXTURE_SPIN_UNTIL(ev_base, punchq_pending(f->vm->pq) == n);
}

static void
expect_error(struct fx *f, int code, bool fatal)
{
	struct fh_msg m;

	next_msg(f, FH_MSG_ERROR, &m);
	assert_int_equal(m.u.error->code, code);
	assert_int_equal(m.u.error->fatal, fatal);
	fh_msg_free(&m);
}

/* The next Ack: applied (reason 0) or rejected for reason; the caller
 * frees it. */
static Freehint__Ack *
ack_is(struct fx *f, uint64_t id, int reason)
{
	Freehint__Ack *a = next_ack(f, id);

	assert_int_equal(a->status,
	    reason == 0 ? FREEHINT__ACK_STATUS__APPLIED
	                : FREEHINT__ACK_STATUS__REJECTED);
	assert_int_equal(a->reason, reason);
	return a;
}

static void
expect_ack(struct fx *f, uint64_t id, int reason)
{
	free_msg(ack_is(f, id, reason));
}

/* The session started and its first batch sent: ack_is's Ack. */
static Freehint__Ack *
first_batch(struct fx *f, uint64_t id, Freehint__RangeKind kind, uint64_t pfn,
    uint64_t npages, uint64_t deadline_ms, int reason)
{
	start(f);
	send_batch(f, id, kind, pfn, npages, deadline_ms);
	return ack_is(f, id, reason);
}

static void
test_welcome(void **state)
{
	struct fx *f = *state;
	Freehint__Welcome *w;

	hello(f, 0, &w);
	assert_int_equal(w->proto_version, FH_PROTO_MAX);
	assert_int_equal(w->mode, FREEHINT__MODE__DISCARD);
	assert_string_equal(w->reason, "shared memfd backing");
	assert_true(w->has_min_order);
	assert_int_equal(w->min_order, 9);
	assert_int_equal(w->max_batch_ranges, 4096);
	/* The rate past which batches are refused, for the agent to keep. */
	assert_true(w->has_max_batches_per_sec);
	assert_int_equal(w->max_batches_per_sec, 200);
	assert_true(w->has_capabilities);
	assert_true(
	    w->capabilities & FREEHINT__HOST_CAPABILITY__HOST_CAP_DEADLINE);
	/* A socket, not a port: no resynchronisation. */
	assert_false(
	    w->capabilities & FREEHINT__HOST_CAPABILITY__HOST_CAP_RESYNC);
	assert_true(w->has_host_clock_ms);
	assert_true(w->host_clock_ms <= fh_monotonic_ms());
	assert_int_equal(guest_page_size(f->vm->guest), PAGE);
	assert_int_equal(f->vm->transport, VM_TRANSPORT_VSOCK);
	free_msg(w);
}

/* A message set this host does not speak: an Error, then the close. */
static void
test_bad_version(void **state)
{
	struct fx *f = *state;
	Freehint__Hello h = FREEHINT__HELLO__INIT;

	h.proto_version = FH_PROTO_MAX + 1;
	h.agent_version = "future";
	h.page_size = PAGE;
	h.ram_bytes = FAKE_RAM_SIZE;
	h.max_pfn = FAKE_RAM_SIZE / PAGE;
	send_msg(f, FH_MSG_HELLO, &h.base);
	expect_error(f, FREEHINT__REJECT_REASON__BAD_VERSION, true);
	wait_eof(f);
	/* The session is gone, and status says why. */
	assert_null(f->vm->guest);
	assert_string_equal(
	    f->vm->last_error, "agent lost: no message set in common");
}

/* HINT ranges are counted, never discarded. */
static void
test_hint(void **state)
{
	struct fx *f = *state;
	Freehint__Ack *a =
	    first_batch(f, 1, FREEHINT__RANGE_KIND__HINT, 16, 512, 0, 0);

	assert_int_equal(a->ranges_applied, 1);
	assert_false(a->has_bytes_discarded);
	free_msg(a);
	/* One batch of a snapshot is not the guest's free memory: Stats is. */
	assert_int_equal(f->vm->guest_free_bytes, 0);
	assert_int_equal(f->vm->batches_applied, 1);
	assert_int_equal(f->q.ram[16 * PAGE], 0x5a);
	assert_int_equal(f->q.ram[528 * PAGE - 1], 0x5a);
}

/* REPORTED with a deadline: punched, then acknowledged; reads zeroes. */
static void
test_reported(void **state)
{
	struct fx *f = *state;
	Freehint__Ack *a = first_batch(f, 7, FREEHINT__RANGE_KIND__REPORTED,
	    512, 512, fh_monotonic_ms() + 60000, 0);

	assert_true(a->has_bytes_discarded);
	assert_int_equal(a->bytes_discarded, 512 * PAGE);
	free_msg(a);
	assert_int_equal(f->vm->reclaimed_bytes, 512 * PAGE);
	/* The hole, and nothing beside it. */
	assert_int_equal(f->q.ram[512 * PAGE - 1], 0x5a);
	assert_int_equal(f->q.ram[512 * PAGE], 0);
	assert_int_equal(f->q.ram[1024 * PAGE - 1], 0);
	assert_int_equal(f->q.ram[1024 * PAGE], 0x5a);
}

/*
 * The agent goes away while its batch is punched: the discard is the
 * VM's, not the session's, so what it punched still counts in the VM's
 * reclaimed bytes, and the next agent gets no Ack for it.
 */
static void
test_reported_agent_gone(void **state)
{
	struct fx *f = *state;
	Freehint__Welcome *w;
	int spin;

	start(f);
	send_batch(f, 9, FREEHINT__RANGE_KIND__REPORTED, 512, 512,
	    fh_monotonic_ms() + 60000);
	/*
	 * One round of callbacks at a time (EVLOOP_ONCE): a plain
	 * non-blocking loop goes round again while callbacks are active
	 * and can deliver the finished punch before we look.
	 */
	for (spin = 0; spin < FIXTURE_SPINS; spin++) {
		if (punchq_pending(f->vm->pq) > 0)
			break;
		event_base_loop(ev_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(200);
	}
	assert_int_equal(punchq_pending(f->vm->pq), 1);
	/* Punched by a worker, not yet back on the loop, which stays
	 * still until the session is gone. */
	for (spin = 0; spin < FIXTURE_SPINS; spin++) {
		if (lseek(f->q.memfd, 512 * PAGE, SEEK_DATA) >= 1024 * PAGE)
			break;
		usleep(1000);
	}
	assert_true(lseek(f->q.memfd, 512 * PAGE, SEEK_DATA) >= 1024 * PAGE);
	guest_free(f->vm->guest); /* what guest_lost does */
	assert_null(f->vm->guest);
	for (spin = 0; spin < FIXTURE_SPINS; spin++) {
		if (punchq_pending(f->vm->pq) == 0)
			break;
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		usleep(200);
	}
	assert_int_equal(punchq_pending(f->vm->pq), 0);
	assert_int_equal(f->vm->reclaimed_bytes, 512 * PAGE);
	assert_int_equal(f->vm->held_bytes, 0);
	assert_int_equal(f->vm->ranges_applied, 0);
	/* A new agent: its first message is its Welcome, no stray Ack. */
	reconnect(f, VM_TRANSPORT_VSOCK);
	hello(f, 0, &w);
	free_msg(w);
}

/* No deadline: never discarded, refused NOT_ALLOWED. */
static void
test_reported_no_deadline(void **state)
{
	struct fx *f = *state;
	Freehint__Ack *a = first_batch(f, 2, FREEHINT__RANGE_KIND__REPORTED,
	    512, 512, 0, FREEHINT__REJECT_REASON__NOT_ALLOWED);

	assert_string_equal(a->detail, "no deadline: not discarded");
	assert_int_equal(a->bytes_discarded, 0);
	free_msg(a);
	/* And a fault of the guest's: an Error follows. */
	expect_error(f, FREEHINT__REJECT_REASON__NOT_ALLOWED, false);
	assert_int_equal(f->vm->batches_rejected, 1);
	assert_int_equal(f->vm->ranges_rejected, 1);
	assert_int_equal(f->q.ram[512 * PAGE], 0x5a);
}

/* A deadline already past: too late, the host's fault, no Error. */
static void
test_reported_late(void **state)
{
	struct fx *f = *state;

	free_msg(first_batch(f, 3, FREEHINT__RANGE_KIND__REPORTED, 512, 512, 1,
	    FREEHINT__REJECT_REASON__HOST_ERROR));
	assert_int_equal(f->q.ram[512 * PAGE], 0x5a);
	/* The session goes on: the next batch is served. */
	send_batch(f, 4, FREEHINT__RANGE_KIND__HINT, 0, 1, 0);
	expect_ack(f, 4, 0);
}

/* Outside the guest's RAM, or not aligned to the policy's order. */
static void
test_reported_invalid(void **state)
{
	struct fx *f = *state;

	start(f);
	send_batch(f, 5, FREEHINT__RANGE_KIND__REPORTED, FAKE_RAM_SIZE / PAGE,
	    512, fh_monotonic_ms() + 60000);
	expect_ack(f, 5, FREEHINT__REJECT_REASON__OUT_OF_RANGE);
	expect_error(f, FREEHINT__REJECT_REASON__OUT_OF_RANGE, false);
	send_batch(f, 6, FREEHINT__RANGE_KIND__REPORTED, 1, 512,
	    fh_monotonic_ms() + 60000);
	expect_ack(f, 6, FREEHINT__REJECT_REASON__UNALIGNED);
	expect_error(f, FREEHINT__REJECT_REASON__UNALIGNED, false);
	assert_int_equal(f->vm->batches_rejected, 2);
}

/* A batch before Hello is refused. */
static void
test_batch_before_hello(void **state)
{
	struct fx *f = *state;

	send_batch(f, 1, FREEHINT__RANGE_KIND__HINT, 0, 1, 0);
	expect_error(f, FREEHINT__REJECT_REASON__NOT_ALLOWED, false);
	assert_int_equal(f->vm->batches_applied, 0);
}

/* A frame whose payload is no RangeBatch: an Error, the session lives. */
static void
test_malformed(void **state)
{
	struct fx *f = *state;
	uint8_t frame[FH_HDR_SIZE + 8];

	start(f);
	fh_hdr_pack(frame, FH_MSG_RANGES, 8);
	memset(frame + FH_HDR_SIZE, 0xff, 8);
	send_raw(f, frame, sizeof frame);
	expect_error(f, FREEHINT__REJECT_REASON__MALFORMED, false);
	send_batch(f, 9, FREEHINT__RANGE_KIND__HINT, 0, 1, 0);
	expect_ack(f, 9, 0);
}

/* Too many faults: the last Error is fatal, and the daemon closes. */
static void
test_too_many_faults(void **state)
{
	struct fx *f = *state;
	uint8_t frame[FH_HDR_SIZE + 8];
	unsigned i;

	fh_hdr_pack(frame, FH_MSG_RANGES, 8);
	memset(frame + FH_HDR_SIZE, 0xff, 8);
	for (i = 0; i < conf->policy.max_faults; i++) {
		send_raw(f, frame, sizeof frame);
		expect_error(f, FREEHINT__REJECT_REASON__MALFORMED,
		    i + 1 == conf->policy.max_faults);
	}
	wait_eof(f);
	assert_null(f->vm->guest);
}

/*
 * Page poisoning with a non-zero pattern: a hole would fail the poison
 * check, so the VM is record-only: batches are counted, nothing punched.
 */
static void
test_record_only(void **state)
{
	struct fx *f = *state;
	Freehint__Welcome *w;
	Freehint__Ack *a;

	memset(f->q.ram, 0x5a, 2048 * PAGE);
	hello(f, 0xaa, &w);
	assert_int_equal(w->mode, FREEHINT__MODE__RECORD_ONLY);
	assert_string_equal(w->reason, "page poisoning with 0xaa");
	free_msg(w);
	assert_int_equal(f->vm->mode, FREEHINT__MODE__RECORD_ONLY);
	send_batch(f, 11, FREEHINT__RANGE_KIND__REPORTED, 512, 512,
	    fh_monotonic_ms() + 60000);
	a = ack_is(f, 11, 0);
	assert_false(a->has_bytes_discarded);
	free_msg(a);
	assert_int_equal(f->vm->reclaimed_bytes, 0);
	assert_int_equal(f->q.ram[512 * PAGE], 0x5a);
	assert_int_equal(f->q.ram[1024 * PAGE - 1], 0x5a);
}

/* Stats carry the guest's free memory; a fatal Error ends the session. */
static void
test_stats_error(void **state)
{
	struct fx *f = *state;
	Freehint__Stats s = FREEHINT__STATS__INIT;
	Freehint__Error e = FREEHINT__ERROR__INIT;

	start(f);
	s.has_free_bytes = true;
	s.free_bytes = 12345 * PAGE;
	send_msg(f, FH_MSG_STATS, &s.base);
	FIXTURE_SPIN_UNTIL(ev_base, f->vm->guest_free_bytes == 12345 * PAGE);
	e.code = FREEHINT__REJECT_REASON__HOST_ERROR;
	e.detail = "module unloaded";
	e.has_fatal = e.fatal = true;
	send_msg(f, FH_MSG_ERROR, &e.base);
	/* Recorded before the session ends. */
	FIXTURE_SPIN_UNTIL(ev_base, f->vm->guest == NULL);
	assert_string_equal(f->vm->last_error, "agent lost: agent gave up");
	assert_int_equal(f->vm->transport, VM_TRANSPORT_NONE);
}

/*
 * HELD ranges only in the pass the host started (vm_hint): refused
 * before it, punched and acknowledged in it. The guest's CommandResult
 * for the pass's Command is recorded; one for a command never sent is a
 * fault.
 */
static void
test_held_and_result(void **state)
{
	struct fx *f = *state;
	Freehint__CommandResult r = FREEHINT__COMMAND_RESULT__INIT;
	uint64_t deadline = fh_monotonic_ms() + 60000, pass;
	struct fh_msg m;
	char err[128];

	start(f);
	send_pass_batch(
	    f, 1, FREEHINT__RANGE_KIND__HELD, 512, 512, deadline, 1, false);
	expect_ack(f, 1, FREEHINT__REJECT_REASON__NOT_ALLOWED);
	expect_error(f, FREEHINT__REJECT_REASON__NOT_ALLOWED, false);
	assert_int_equal(f->q.ram[512 * PAGE], 0x5a);

	assert_int_equal(vm_hint(f->vm, err, sizeof err), 0);
	next_msg(f, FH_MSG_COMMAND, &m);
	assert_int_equal(m.u.command->type, FREEHINT__COMMAND_TYPE__HINT_PASS);
	assert_true(m.u.command->has_id);
	pass = m.u.command->pass_id;
	r.id = m.u.command->id;
	fh_msg_free(&m);
	send_pass_batch(
	    f, 2, FREEHINT__RANGE_KIND__HELD, 512, 512, deadline, pass, false);
	expect_ack(f, 2, 0);
	assert_int_equal(f->q.ram[512 * PAGE - 1], 0x5a);
	assert_int_equal(f->q.ram[512 * PAGE], 0);
	assert_int_equal(f->q.ram[1024 * PAGE], 0x5a);

	r.ok = true;
	r.detail = "hint pass started";
	send_msg(f, FH_MSG_COMMAND_RESULT, &r.base);
	FIXTURE_SPIN_UNTIL(ev_base, f->vm->cmd_state == VM_CMD_OK);
	r.id += 1000;
	send_msg(f, FH_MSG_COMMAND_RESULT, &r.base);
	expect_error(f, FREEHINT__REJECT_REASON__NOT_ALLOWED, false);
}

/*
 * virtio-serial has no connections: a restarted agent writes its sync
 * bytes and says Hello again on the same stream. The session starts
 * afresh: a new Welcome, the pass and what it held gone, batch ids from
 * the start again. The old agent's discard still ends and counts, but
 * its Ack goes to nobody: the ids are not the new agent's.
 */
static void
test_channel_restart(void **state)
{
	struct fx *f = *state;
	uint64_t deadline = fh_monotonic_ms() + 60000, gen, pass;
	uint8_t sync[FH_SYNC_LEN];
	Freehint__Welcome *w;

	reconnect(f, VM_TRANSPORT_CHANNEL);
	memset(f->q.ram, 0x5a, 2048 * PAGE);
	hello(f, 0, &w);
	/* A port: the agent may resynchronise. */
	assert_true(w->has_capabilities);
	assert_true(
	    w->capabilities & FREEHINT__HOST_CAPABILITY__HOST_CAP_RESYNC);
	free_msg(w);
	assert_int_equal(f->vm->transport, VM_TRANSPORT_CHANNEL);
	pass = start_pass(f, NULL);
	send_pass_batch(
	    f, 2, FREEHINT__RANGE_KIND__HELD, 512, 512, deadline, pass, false);
	expect_ack(f, 2, 0);
	assert_int_equal(f->vm->held_bytes, 512 * PAGE);
	gen = f->vm->agent_gen;

	/* Being punched (slowly) when the agent restarts. */
	slow_discards();
	send_batch(f, 3, FREEHINT__RANGE_KIND__REPORTED, 1024, 512, deadline);
	memset(sync, FH_SYNC_BYTE, sizeof sync);
	send_raw(f, sync, sizeof sync);
	hello(f, 0, &w);
	assert_true(
	    w->capabilities & FREEHINT__HOST_CAPABILITY__HOST_CAP_RESYNC);
	free_msg(w);
	assert_int_equal(f->vm->agent_gen, gen + 1);
	assert_int_equal(f->vm->held_bytes, 0);
	assert_false(f->vm->pass_active);
	assert_true(f->vm->pass_done);
	assert_int_equal(punchq_pending(f->vm->pq), 1);

	wait_pending(f, 0);
	assert_int_equal(f->vm->reclaimed_bytes, 1024 * PAGE);
	assert_int_equal(f->q.ram[1024 * PAGE], 0);
	/* Ids from 1 again; the next message is this Ack, not batch 3's. */
	send_batch(f, 1, FREEHINT__RANGE_KIND__HINT, 0, 1, 0);
	expect_ack(f, 1, 0);
	/* The old agent's pass is over. */
	send_pass_batch(
	    f, 2, FREEHINT__RANGE_KIND__HELD, 1536, 512, deadline, pass, false);
	expect_ack(f, 2, FREEHINT__REJECT_REASON__NOT_ALLOWED);
	expect_error(f, FREEHINT__REJECT_REASON__NOT_ALLOWED, false);
	assert_int_equal(f->vm->held_bytes, 0);
}

/* A socket is a session: a second Hello on it is refused, and the
 * session goes on as it was (its pass, its batch ids). */
static void
test_second_hello_vsock(void **state)
{
	struct fx *f = *state;
	uint64_t gen, pass;

	start(f);
	pass = start_pass(f, NULL);
	send_batch(f, 5, FREEHINT__RANGE_KIND__HINT, 0, 1, 0);
	expect_ack(f, 5, 0);
	gen = f->vm->agent_gen;
	send_hello(f, 0);
	expect_error(f, FREEHINT__REJECT_REASON__NOT_ALLOWED, false);
	assert_int_equal(f->vm->agent_gen, gen);
	assert_true(f->vm->pass_active);
	assert_int_equal(f->vm->pass_id, pass);
	assert_false(f->vm->pass_done);
	assert_int_equal(f->vm->transport, VM_TRANSPORT_VSOCK);
	/* Not started afresh: batch 5 was seen. */
	send_batch(f, 5, FREEHINT__RANGE_KIND__HINT, 0, 1, 0);
	expect_ack(f, 5, FREEHINT__REJECT_REASON__DUPLICATE_ID);
	expect_error(f, FREEHINT__REJECT_REASON__DUPLICATE_ID, false);
}

/* The guest could not start the pass: status says why, the pass is
 * over, and its HELD batches are refused. */
static void
test_result_failed(void **state)
{
	struct fx *f = *state;
	Freehint__CommandResult r = FREEHINT__COMMAND_RESULT__INIT;
	uint64_t pass;
	char want[256];

	start(f);
	pass = start_pass(f, &r.id);
	r.ok = false;
	r.has_code = true;
	r.code = FREEHINT__REJECT_REASON__NOT_SUPPORTED;
	r.detail = "no page reporting";
	send_msg(f, FH_MSG_COMMAND_RESULT, &r.base);
	FIXTURE_SPIN_UNTIL(ev_base, f->vm->cmd_state == VM_CMD_FAILED);
	snprintf(want, sizeof want,
	    "command %" PRIu64 " failed: no page reporting (NOT_SUPPORTED)",
	    r.id);
	assert_string_equal(f->vm->last_error, want);
	assert_string_equal(f->vm->cmd_detail, "no page reporting");
	assert_false(f->vm->pass_active);
	assert_true(f->vm->pass_done);
	send_pass_batch(f, 1, FREEHINT__RANGE_KIND__HELD, 512, 512,
	    fh_monotonic_ms() + 60000, pass, false);
	expect_ack(f, 1, FREEHINT__REJECT_REASON__NOT_ALLOWED);
	expect_error(f, FREEHINT__REJECT_REASON__NOT_ALLOWED, false);
}

/* The answer to a command a later one superseded changes nothing, and
 * is no fault: the next message is the next batch's Ack, not an Error. */
static void
test_result_superseded(void **state)
{
	struct fx *f = *state;
	Freehint__CommandResult r = FREEHINT__COMMAND_RESULT__INIT;
	uint64_t last, pass;
	struct fh_msg m;
	char err[128], before[sizeof f->vm->last_error];

	start(f);
	start_pass(f, &r.id);
	assert_int_equal(vm_release(f->vm, err, sizeof err), 0);
	next_msg(f, FH_MSG_COMMAND, &m);
	assert_int_equal(m.u.command->type, FREEHINT__COMMAND_TYPE__RELEASE);
	fh_msg_free(&m);
	pass = start_pass(f, &last);
	assert_true(last > r.id);
	snprintf(before, sizeof before, "%s", f->vm->last_error);
	r.ok = false;
	r.has_code = true;
	r.code = FREEHINT__REJECT_REASON__HOST_ERROR;
	r.detail = "stale";
	send_msg(f, FH_MSG_COMMAND_RESULT, &r.base);
	send_batch(f, 1, FREEHINT__RANGE_KIND__HINT, 0, 1, 0);
	expect_ack(f, 1, 0);
	assert_int_equal(f->vm->cmd_id, last);
	assert_int_equal(f->vm->cmd_state, VM_CMD_PENDING);
	assert_string_equal(f->vm->cmd_detail, "");
	assert_string_equal(f->vm->last_error, before);
	assert_true(f->vm->pass_active);
	assert_false(f->vm->pass_done);
	assert_int_equal(f->vm->pass_id, pass);
}

/*
 * discard=off: a pass's HELD batches are judged and counted, nothing is
 * punched (so no deadline is needed). What they hold is held: a batch
 * overlapping it is refused. The last one ends the pass.
 */
static void
test_held_discard_off(void **state)
{
	struct fx *f = *state;
	char kv0[] = "discard=off", err[128];
	char *kv[] = { kv0 };
	Freehint__Ack *a;
	uint64_t pass;

	start(f);
	assert_int_equal(vm_policy_set(f->vm, kv, 1, err, sizeof err), 0);
	pass = start_pass(f, NULL);
	send_pass_batch(
	    f, 1, FREEHINT__RANGE_KIND__HELD, 512, 512, 0, pass, false);
	a = ack_is(f, 1, 0);
	assert_int_equal(a->ranges_applied, 1);
	assert_int_equal(a->bytes_discarded, 0);
	free_msg(a);
	assert_int_equal(f->vm->held_bytes, 512 * PAGE);
	assert_int_equal(f->vm->counters.pass_bytes, 512 * PAGE);
	assert_false(f->vm->pass_done);
	send_pass_batch(
	    f, 2, FREEHINT__RANGE_KIND__HELD, 768, 256, 0, pass, false);
	expect_ack(f, 2, FREEHINT__REJECT_REASON__OVERLAPPING);
	expect_error(f, FREEHINT__REJECT_REASON__OVERLAPPING, false);
	send_pass_batch(
	    f, 3, FREEHINT__RANGE_KIND__HELD, 1024, 512, 0, pass, true);
	expect_ack(f, 3, 0);
	assert_int_equal(f->vm->held_bytes, 1024 * PAGE);
	assert_int_equal(f->vm->counters.pass_bytes, 1024 * PAGE);
	assert_true(f->vm->pass_done);
	/* Held until released. */
	assert_true(f->vm->pass_active);
	assert_int_equal(f->vm->reclaimed_bytes, 0);
	assert_int_equal(f->q.ram[512 * PAGE], 0x5a);
	assert_int_equal(f->q.ram[1536 * PAGE - 1], 0x5a);
}

/* A device that DMAs turns up during a pass: the VM is record-only, and
 * the pass's HELD batches are counted, not punched. */
static void
test_held_record_only(void **state)
{
	struct fx *f = *state;
	Freehint__Ack *a;
	uint64_t pass;

	start(f);
	pass = start_pass(f, NULL);
	vm_source_dma("vm1", "a VFIO device");
	assert_int_equal(f->vm->mode, FREEHINT__MODE__RECORD_ONLY);
	send_pass_batch(f, 1, FREEHINT__RANGE_KIND__HELD, 512, 512,
	    fh_monotonic_ms() + 60000, pass, true);
	a = ack_is(f, 1, 0);
	assert_int_equal(a->ranges_applied, 1);
	assert_false(a->has_bytes_discarded);
	free_msg(a);
	assert_int_equal(f->vm->held_bytes, 512 * PAGE);
	assert_true(f->vm->pass_done);
	assert_int_equal(f->vm->reclaimed_bytes, 0);
	assert_int_equal(f->q.ram[512 * PAGE], 0x5a);
}

/* The last HELD batch of a pass ends it once its discard is back. */
static void
test_held_last_punched(void **state)
{
	struct fx *f = *state;
	Freehint__Ack *a;
	uint64_t pass;

	start(f);
	pass = start_pass(f, NULL);
	send_pass_batch(f, 1, FREEHINT__RANGE_KIND__HELD, 512, 512,
	    fh_monotonic_ms() + 60000, pass, true);
	a = ack_is(f, 1, 0);
	assert_int_equal(a->bytes_discarded, 512 * PAGE);
	free_msg(a);
	assert_int_equal(f->vm->held_bytes, 512 * PAGE);
	assert_int_equal(f->vm->counters.pass_bytes, 512 * PAGE);
	assert_true(f->vm->pass_done);
	assert_int_equal(f->q.ram[512 * PAGE], 0);
	/* Nothing after the last: the pass bounds what is punched. */
	send_pass_batch(f, 2, FREEHINT__RANGE_KIND__HELD, 1024, 512,
	    fh_monotonic_ms() + 60000, pass, false);
	free_msg(ack_is(f, 2, FREEHINT__REJECT_REASON__NOT_ALLOWED));
	assert_int_equal(f->q.ram[1024 * PAGE], 0x5a);
}

/*
 * A pass that captured nothing ends with an empty last HELD batch with
 * no deadline (it leases nothing): applied, and the pass is done.
 */
static void
test_held_empty_last_no_deadline(void **state)
{
	struct fx *f = *state;
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;

	start(f);
	b.batch_id = 1;
	b.kind = FREEHINT__RANGE_KIND__HELD;
	b.has_pass_id = true;
	b.pass_id = start_pass(f, NULL);
	b.has_last = b.last = true;
	send_msg(f, FH_MSG_RANGES, &b.base);
	free_msg(ack_is(f, 1, 0));
	assert_true(f->vm->pass_done);
	assert_int_equal(f->vm->held_bytes, 0);
}

/*
 * A HELD batch is held from when it is queued: a batch overlapping it is
 * refused meanwhile. Its discard fails (cancelled behind a slow one):
 * the guest takes it back, so it is held no more, and the same ranges
 * are accepted again.
 */
static void
test_held_punch_failed(void **state)
{
	struct fx *f = *state;
	uint64_t deadline = fh_monotonic_ms() + 60000, pass;
	Freehint__Ack *a;

	start(f);
	pass = start_pass(f, NULL);
	slow_discards();
	/* A worker sleeps on batch 1 (whether it had begun or not is no
	 * matter here); batch 2 waits behind it. */
	send_batch(f, 1, FREEHINT__RANGE_KIND__REPORTED, 0, 512, deadline);
	send_pass_batch(
	    f, 2, FREEHINT__RANGE_KIND__HELD, 512, 512, deadline, pass, false);
	wait_pending(f, 2);
	send_pass_batch(
	    f, 3, FREEHINT__RANGE_KIND__HELD, 512, 512, deadline, pass, false);
	expect_ack(f, 3, FREEHINT__REJECT_REASON__OVERLAPPING);
	expect_error(f, FREEHINT__REJECT_REASON__OVERLAPPING, false);
	guest_stop_punching(f->vm->guest);
	free_msg(next_ack(f, 1));
	a = ack_is(f, 2, FREEHINT__REJECT_REASON__HOST_ERROR);
	assert_string_equal(a->detail, "discard cancelled");
	assert_false(a->has_ranges_applied);
	assert_int_equal(a->bytes_discarded, 0);
	free_msg(a);
	assert_string_equal(f->vm->last_error,
	    "batch 2 rejected: HOST_ERROR: discard cancelled");
	assert_int_equal(f->vm->held_bytes, 0);
	assert_int_equal(f->q.ram[512 * PAGE], 0x5a);
	send_pass_batch(
	    f, 4, FREEHINT__RANGE_KIND__HELD, 512, 512, deadline, pass, false);
	expect_ack(f, 4, 0);
	assert_int_equal(f->vm->held_bytes, 512 * PAGE);
	assert_int_equal(f->q.ram[512 * PAGE], 0);
}

/* Postcopy: nothing is punched, and that is the host's state, not the
 * guest's fault: HOST_ERROR with the reason, and no Error follows. */
static void
test_postcopy_refused(void **state)
{
	struct fx *f = *state;
	Freehint__Ack *a;

	start(f);
	vm_source_migration("vm1", VM_MIGRATION_POSTCOPY);
	send_batch(f, 1, FREEHINT__RANGE_KIND__REPORTED, 512, 512,
	    fh_monotonic_ms() + 60000);
	a = ack_is(f, 1, FREEHINT__REJECT_REASON__HOST_ERROR);
	assert_string_equal(
	    a->detail, "postcopy migration: no discard until it completes");
	assert_true(a->has_bytes_discarded);
	assert_int_equal(a->bytes_discarded, 0);
	free_msg(a);
	send_batch(f, 2, FREEHINT__RANGE_KIND__HINT, 0, 1, 0);
	expect_ack(f, 2, 0);
	assert_int_equal(f->vm->batches_rejected, 1);
	assert_int_equal(f->vm->reclaimed_bytes, 0);
	assert_int_equal(f->q.ram[512 * PAGE], 0x5a);
}

/* A device check not back yet (vm_check_dma): nothing is punched until
 * it is; the host's delay, no fault. */
static void
test_devices_pending_refused(void **state)
{
	struct fx *f = *state;
	uint64_t deadline = fh_monotonic_ms() + 60000;
	Freehint__Ack *a;

	start(f);
	f->vm->dma_checks = 1; /* priv_dma asked, not answered */
	send_batch(f, 1, FREEHINT__RANGE_KIND__REPORTED, 512, 512, deadline);
	a = ack_is(f, 1, FREEHINT__REJECT_REASON__HOST_ERROR);
	assert_string_equal(a->detail, "checking the VM's devices");
	free_msg(a);
	send_batch(f, 2, FREEHINT__RANGE_KIND__HINT, 0, 1, 0);
	expect_ack(f, 2, 0);
	assert_int_equal(f->q.ram[512 * PAGE], 0x5a);
	f->vm->dma_checks = 0;
	send_batch(f, 3, FREEHINT__RANGE_KIND__REPORTED, 512, 512, deadline);
	expect_ack(f, 3, 0);
	assert_int_equal(f->q.ram[512 * PAGE], 0);
}

/*
 * No more queued than an agent keeping to max_inflight can make: past
 * FREEHINTD_PUNCH_QUEUE a batch is refused at once, the host's fault (no
 * Error). Stopping the punching sends what is queued back rejected.
 */
static void
test_punch_queue_full(void **state)
{
	struct fx *f = *state;
	uint64_t deadline = fh_monotonic_ms() + 60000, i;
	Freehint__Ack *a;
	char want[64];

	start(f);
	slow_discards();
	for (i = 1; i <= FREEHINTD_PUNCH_QUEUE + 1; i++)
		send_batch(f, i, FREEHINT__RANGE_KIND__REPORTED, (i % 8) * 512,
		    512, deadline);
	/* The first Ack: the others wait behind the slow discard. */
	a = ack_is(
	    f, FREEHINTD_PUNCH_QUEUE + 1, FREEHINT__REJECT_REASON__HOST_ERROR);
	snprintf(want, sizeof want, "%u batches being discarded already",
	    FREEHINTD_PUNCH_QUEUE);
	assert_string_equal(a->detail, want);
	free_msg(a);
	assert_int_equal(punchq_pending(f->vm->pq), FREEHINTD_PUNCH_QUEUE);
	guest_stop_punching(f->vm->guest);
	/* Punched if a worker had begun it, else cancelled: either way. */
	free_msg(next_ack(f, 1));
	for (i = 2; i <= FREEHINTD_PUNCH_QUEUE; i++) {
		a = ack_is(f, i, FREEHINT__REJECT_REASON__HOST_ERROR);
		assert_string_equal(a->detail, "discard cancelled");
		free_msg(a);
	}
	assert_int_equal(punchq_pending(f->vm->pq), 0);
}

/* A device that DMAs turns up while batches are queued: they come back
 * rejected, and later ones are counted, never punched. */
static void
test_record_only_cancels(void **state)
{
	struct fx *f = *state;
	uint64_t deadline = fh_monotonic_ms() + 60000;
	Freehint__Ack *a;

	start(f);
	slow_discards();
	send_batch(f, 1, FREEHINT__RANGE_KIND__REPORTED, 0, 512, deadline);
	send_batch(f, 2, FREEHINT__RANGE_KIND__REPORTED, 512, 512, deadline);
	wait_pending(f, 2);
	vm_source_dma("vm1", "a VFIO device");
	/* Punched if a worker had begun it, else cancelled: either way. */
	free_msg(next_ack(f, 1));
	a = ack_is(f, 2, FREEHINT__REJECT_REASON__HOST_ERROR);
	assert_string_equal(a->detail, "discard cancelled");
	free_msg(a);
	assert_int_equal(f->q.ram[512 * PAGE], 0x5a);
	send_batch(f, 3, FREEHINT__RANGE_KIND__REPORTED, 512, 512, deadline);
	a = ack_is(f, 3, 0);
	assert_false(a->has_bytes_discarded);
	free_msg(a);
	assert_int_equal(punchq_pending(f->vm->pq), 0);
	assert_int_equal(f->q.ram[512 * PAGE], 0x5a);
}

/*
 * A device check still out at Hello (one asked when the map was read,
 * say): the Welcome, which says the mode, waits for its answer. Until
 * then the session serves nothing and no command goes.
 */
static void
test_welcome_after_devices(void **state)
{
	struct fx *f = *state;
	struct fh_msg m;
	char err[128];

	/* Memory in the backing: a pass would have something to capture. */
	memset(f->q.ram, 0x5a, 2048 * PAGE);
	f->vm->dma_checks = 1;
	send_hello(f, 0);
	/* Refused: the Error is the next message, no Welcome before it. */
	send_batch(f, 1, FREEHINT__RANGE_KIND__HINT, 0, 1, 0);
	expect_error(f, FREEHINT__REJECT_REASON__NOT_ALLOWED, false);
	assert_int_equal(vm_hint(f->vm, err, sizeof err), -1);
	assert_string_equal(err, "the agent has not said Hello yet");
	f->vm->dma_checks = 0;
	guest_devices_checked(f->vm->guest); /* as vm_dma_checked does */
	next_msg(f, FH_MSG_WELCOME, &m);
	assert_int_equal(m.u.welcome->mode, FREEHINT__MODE__DISCARD);
	fh_msg_free(&m);
	send_batch(f, 2, FREEHINT__RANGE_KIND__HINT, 0, 1, 0);
	expect_ack(f, 2, 0);
}

/* The source's bandwidth, played by the test: each call, and QEMU's. */
struct speed_calls {
	int n;
	uint64_t bps[4], ceiling[4];
	int64_t in_force;
	bool defer; /* answer only at speed_answer() */
	vm_speed_done done;
	void *arg;
};

static void
speed_answer(struct speed_calls *s)
{
	int64_t was = s->in_force;

	if ((uint64_t)was <= s->ceiling[s->n - 1])
		s->in_force = (int64_t)s->bps[s->n - 1];
	s->done(s->arg, was);
}

static void
speed_fn(
    void *ctx, uint64_t bps, uint64_t ceiling, vm_speed_done done, void *arg)
{
	struct speed_calls *s = ctx;

	assert_true(s->n < 4);
	s->bps[s->n] = bps;
	s->ceiling[s->n++] = ceiling;
	s->done = done;
	s->arg = arg;
	if (!s->defer)
		speed_answer(s);
}

/* The agent's Stats: free MiB in 4 KiB pages; all of RAM written. */
static void
send_stats(struct fx *f, uint64_t free_mib)
{
	Freehint__Stats st = FREEHINT__STATS__INIT;
	uint64_t by_order[1] = { free_mib * 256 };

	memset(f->q.ram, 0x5a, FAKE_RAM_SIZE);
	st.has_free_bytes = true;
	st.free_bytes = free_mib << 20;
	st.n_free_blocks_by_order = 1;
	st.free_blocks_by_order = by_order;
	send_msg(f, FH_MSG_STATS, &st.base);
	FIXTURE_SPIN_UNTIL(ev_base, f->vm->guest_stats_ms != 0);
}

/* A session with the source's bandwidth played by s, whose agent sent
 * Stats of free_mib (none when 0), and a migration started. */
static void
migrate_with(struct fx *f, struct speed_calls *s, uint64_t free_mib)
{
	start(f);
	if (free_mib != 0)
		send_stats(f, free_mib);
	f->vm->speed = speed_fn;
	f->vm->speed_ctx = s;
	vm_registry.migration("vm1", VM_MIGRATION_STARTED);
}

/* The next message is a Command of type: its pass id. */
static uint64_t
expect_command(struct fx *f, Freehint__CommandType type)
{
	struct fh_msg m;
	uint64_t pass;

	next_msg(f, FH_MSG_COMMAND, &m);
	assert_int_equal(m.u.command->type, type);
	pass = m.u.command->pass_id;
	fh_msg_free(&m);
	return pass;
}

/*
 * A migration's own pass when it pays: 12 of the 16 MiB free and all of
 * it allocated. At 512 MiB/s the pass takes 23 ms and QEMU's wait 100:
 * it pays below 12 MiB / 0.123 s, about 97 MiB/s. QEMU at 32 MiB/s is
 * held (the ceiling is asked with), then the pass starts; its last HELD
 * batch ends the hold, which gives 32 MiB/s back, and its speed is
 * learnt.
 */
static void
test_migration_pass_pays(void **state)
{
	struct fx *f = *state;
	struct speed_calls s = { .in_force = 32 << 20 };
	uint64_t deadline = fh_monotonic_ms() + 60000;

	migrate_with(f, &s, 12);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.bps[0], FREEHINTD_HOLD_BPS);
	assert_true(s.ceiling[0] > 90ULL << 20 && s.ceiling[0] < 100ULL << 20);
	assert_int_equal(
	    expect_command(f, FREEHINT__COMMAND_TYPE__HINT_PASS), 1);
	assert_true(f->vm->pass_active);
	send_pass_batch(f, 1, FREEHINT__RANGE_KIND__HELD, 0,
	    FAKE_RAM_SIZE / PAGE, deadline, 1, true);
	expect_ack(f, 1, 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.bps[1], 32 << 20);
	assert_true(s.ceiling[1] == UINT64_MAX);
	assert_true(f->vm->pass_bps > 0);
}

/*
 * A guest that zeroes what it allocates (init_on_alloc): its captured
 * blocks read as zeroes before they are punched, so the hold ends with
 * the last HELD batch taken, while its punch is still on the workers.
 */
static void
test_migration_pass_zeroed(void **state)
{
	struct fx *f = *state;
	struct speed_calls s = { .in_force = 32 << 20 };
	uint64_t deadline = fh_monotonic_ms() + 60000;

	f->init_on_alloc = true;
	slow_discards();
	migrate_with(f, &s, 12);
	assert_int_equal(
	    expect_command(f, FREEHINT__COMMAND_TYPE__HINT_PASS), 1);
	send_pass_batch(f, 1, FREEHINT__RANGE_KIND__HELD, 0,
	    FAKE_RAM_SIZE / PAGE, deadline, 1, true);
	FIXTURE_SPIN_UNTIL(ev_base, s.n == 2);
	assert_int_equal(s.bps[1], 32 << 20);
	assert_true(f->vm->pass_done);
	assert_int_equal(punchq_pending(f->vm->pq), 1);
	expect_ack(f, 1, 0);
	assert_int_equal(s.n, 2);
}

/*
 * The migration ends while QEMU's answer is out (a migration that fails
 * at once): no pass starts when the answer comes, and the hold QEMU took
 * is given back.
 */
static void
test_migration_pass_over_first(void **state)
{
	struct fx *f = *state;
	struct speed_calls s = { .in_force = 32 << 20, .defer = true };
	char err[128];

	migrate_with(f, &s, 12);
	assert_int_equal(s.n, 1);
	vm_registry.migration("vm1", VM_MIGRATION_FINISHED);
	expect_command(f, FREEHINT__COMMAND_TYPE__RELEASE);
	speed_answer(&s);
	assert_false(f->vm->pass_active);
	assert_null(f->vm->mighold);
	assert_int_equal(s.n, 2); /* given back */
	speed_answer(&s);
	assert_int_equal(s.in_force, 32 << 20);
	/* Nothing was sent after the Release: the next pass is the first. */
	assert_int_equal(vm_hint(f->vm, err, sizeof err), 0);
	assert_int_equal(
	    expect_command(f, FREEHINT__COMMAND_TYPE__HINT_PASS), 1);
}

/*
 * The same guest, QEMU at 1 GiB/s: above the ceiling, nothing is set,
 * no pass starts, nothing is given back.
 */
static void
test_migration_pass_unpaid(void **state)
{
	struct fx *f = *state;
	struct speed_calls s = { .in_force = 1 << 30 };
	char err[128];

	migrate_with(f, &s, 12);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.in_force, 1 << 30);
	assert_false(f->vm->pass_active);
	assert_null(f->vm->mighold);
	vm_registry.migration("vm1", VM_MIGRATION_FINISHED);
	assert_int_equal(s.n, 1);
	/* The agent reads the migration's Release, and no pass before it;
	 * then a first pass of its own. */
	expect_command(f, FREEHINT__COMMAND_TYPE__RELEASE);
	assert_int_equal(vm_hint(f->vm, err, sizeof err), 0);
	assert_int_equal(
	    expect_command(f, FREEHINT__COMMAND_TYPE__HINT_PASS), 1);
}

/*
 * No Stats yet: nothing known, the hold asked for at any bandwidth. All
 * free memory reported (none of it allocated): no pass, no hold.
 */
static void
test_migration_pass_figures(void **state)
{
	struct fx *f = *state;
	struct speed_calls s = { .in_force = 1 << 30 };

	migrate_with(f, &s, 0);
	assert_int_equal(s.n, 1);
	assert_true(s.ceiling[0] == UINT64_MAX);
	expect_command(f, FREEHINT__COMMAND_TYPE__HINT_PASS);
	vm_registry.migration("vm1", VM_MIGRATION_FINISHED);
	expect_command(f, FREEHINT__COMMAND_TYPE__RELEASE);
	assert_int_equal(s.n, 2); /* given back */

	send_stats(f, 12);
	/* Page reporting discarded all 16 MiB: only the 4 used are back. */
	assert_int_equal(
	    fallocate(f->q.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
	        (off_t)FAKE_RAM_SIZE),
	    0);
	memset(f->q.ram, 0x5a, 4 << 20);
	vm_registry.migration("vm1", VM_MIGRATION_STARTED);
	assert_int_equal(s.n, 2);
	assert_false(f->vm->pass_active);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		UNIT_FX(test_welcome),
		UNIT_FX(test_bad_version),
		UNIT_FX(test_hint),
		UNIT_FX(test_reported),
		UNIT_FX(test_reported_agent_gone),
		UNIT_FX(test_reported_no_deadline),
		UNIT_FX(test_reported_late),
		UNIT_FX(test_reported_invalid),
		UNIT_FX(test_batch_before_hello),
		UNIT_FX(test_malformed),
		UNIT_FX(test_too_many_faults),
		UNIT_FX(test_record_only),
		UNIT_FX(test_stats_error),
		UNIT_FX(test_held_and_result),
		UNIT_FX(test_channel_restart),
		UNIT_FX(test_second_hello_vsock),
		UNIT_FX(test_result_failed),
		UNIT_FX(test_result_superseded),
		UNIT_FX(test_held_discard_off),
		UNIT_FX(test_held_record_only),
		UNIT_FX(test_held_last_punched),
		UNIT_FX(test_held_empty_last_no_deadline),
		UNIT_FX(test_held_punch_failed),
		UNIT_FX(test_postcopy_refused),
		UNIT_FX(test_devices_pending_refused),
		UNIT_FX(test_punch_queue_full),
		UNIT_FX(test_record_only_cancels),
		UNIT_FX(test_welcome_after_devices),
		UNIT_FX(test_migration_pass_pays),
		UNIT_FX(test_migration_pass_zeroed),
		UNIT_FX(test_migration_pass_over_first),
		UNIT_FX(test_migration_pass_unpaid),
		UNIT_FX(test_migration_pass_figures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

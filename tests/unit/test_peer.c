/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The peer module, driven through a real event base and a socketpair: the
 * test writes frames into one end and reads what the peer answers on it.
 * Each case gets a fresh fixture (event base, socketpair, peer); the
 * teardown is the one cleanup path.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "common.h"
#include "samples.h"

#define MAX_SEEN 64

struct fx {
	struct event_base *base;
	int fd[2]; /* fd[0] belongs to the peer once it exists */
	struct fh_peer *p;
	struct evbuffer *rx;
	/* What the handlers saw. */
	int ndispatched;
	uint8_t dispatched[MAX_SEEN];
	uint32_t hello_page_size;
	int handler_rc;
	int free_in_handler;
	/* What came back over the socket. */
	int nrx;
	uint8_t rx_type[MAX_SEEN];
	uint32_t rx_code[MAX_SEEN];
	int rx_fatal[MAX_SEEN];
	int eof;
	/* The lost callback. */
	int lost;
	char why[128];
	int free_in_lost;
};

static int on_msg(struct fh_peer *, const struct fh_msg *, void *);
static void on_lost(struct fh_peer *, const char *, void *);
static int setup(void **);
static int teardown(void **);
static void put(struct fx *, uint8_t type);
static void put_raw(struct fx *, const void *, size_t);
static void drain(struct fx *);

static const struct fh_handler handlers[] = {
	{ FH_MSG_HELLO, on_msg },
	{ FH_MSG_ACK, on_msg },
	{ FH_MSG_RANGES, on_msg },
};

/* Turn the loop until cond holds, for at most about five seconds. */
#define SPIN_UNTIL(f, cond)                                                \
	UNIT_SPIN_UNTIL(                                                   \
	    (event_base_loop((f)->base, EVLOOP_NONBLOCK), drain(f)), 5000, \
	    cond)

static int
on_msg(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	struct fx *f = arg;

	assert_ptr_equal(p, f->p);
	assert_true(f->ndispatched < MAX_SEEN);
	f->dispatched[f->ndispatched++] = m->type;
	if (m->type == FH_MSG_HELLO)
		f->hello_page_size = m->u.hello->page_size;
	if (f->free_in_handler) {
		fh_peer_free(p);
		f->p = NULL;
		return 0;
	}
	return f->handler_rc;
}

static void
on_lost(struct fh_peer *p, const char *why, void *arg)
{
	struct fx *f = arg;

	assert_ptr_equal(p, f->p);
	f->lost++;
	snprintf(f->why, sizeof f->why, "%s", why);
	if (f->free_in_lost) {
		fh_peer_free(p);
		f->p = NULL;
	}
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	/* Blocking, as a plainly opened port would be: the peer fixes that. */
	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->fd), 0);
	assert_int_equal(fcntl(f->fd[1], F_SETFL, O_NONBLOCK), 0);
	f->rx = evbuffer_new();
	f->p = fh_peer_new(f->base, f->fd[0], "test", handlers,
	    FH_ARRAY_SIZE(handlers), on_lost, f);
	assert_non_null(f->p);
	f->fd[0] = -1;
	f->free_in_lost = 1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	fh_peer_free(f->p);
	if (f->fd[0] != -1)
		close(f->fd[0]);
	if (f->fd[1] != -1)
		close(f->fd[1]);
	evbuffer_free(f->rx);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
put_raw(struct fx *f, const void *buf, size_t len)
{
	assert_int_equal(write(f->fd[1], buf, len), (ssize_t)len);
}

static void
put(struct fx *f, uint8_t type)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;

	assert_int_equal(fh_frame_put(b, type, sample_message(type)), FH_OK);
	len = evbuffer_get_length(b);
	put_raw(f, evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
}

/* Read and decode whatever the peer has sent us. */
static void
drain(struct fx *f)
{
	struct fh_msg m;
	int n, err;

	if (f->fd[1] == -1)
		return;
	while ((n = evbuffer_read(f->rx, f->fd[1], 65536)) > 0)
		;
	if (n == 0)
		f->eof = 1;
	while ((err = fh_msg_pull(f->rx, &m)) == FH_OK) {
		assert_true(f->nrx < MAX_SEEN);
		f->rx_type[f->nrx] = m.type;
		if (m.type == FH_MSG_ERROR) {
			f->rx_code[f->nrx] = m.u.error->code;
			f->rx_fatal[f->nrx] = m.u.error->fatal;
		}
		f->nrx++;
		fh_msg_free(&m);
	}
	assert_int_equal(err, FH_ENEED);
}

static void
test_dispatch(void **state)
{
	struct fx *f = *state;

	put(f, FH_MSG_HELLO);
	put(f, FH_MSG_ACK);
	put(f, FH_MSG_RANGES);
	SPIN_UNTIL(f, f->ndispatched == 3);
	assert_int_equal(f->dispatched[0], FH_MSG_HELLO);
	assert_int_equal(f->dispatched[1], FH_MSG_ACK);
	assert_int_equal(f->dispatched[2], FH_MSG_RANGES);
	assert_int_equal(f->hello_page_size, 4096);
	assert_int_equal(fh_peer_faults(f->p), 0);
	assert_int_equal(f->nrx, 0);
	assert_int_equal(f->lost, 0);
	assert_string_equal(fh_peer_name(f->p), "test");
	assert_true(fcntl(fh_peer_fd(f->p), F_GETFL) & O_NONBLOCK);
}

static void
test_send(void **state)
{
	struct fx *f = *state;

	assert_int_equal(
	    fh_peer_send(f->p, FH_MSG_WELCOME, sample_message(FH_MSG_WELCOME)),
	    0);
	assert_true(fh_peer_queued(f->p) > FH_HDR_SIZE);
	assert_int_equal(fh_peer_send_error(f->p, 3, false, "x %d", 1), 0);
	SPIN_UNTIL(f, f->nrx == 2);
	assert_int_equal(f->rx_type[0], FH_MSG_WELCOME);
	assert_int_equal(f->rx_type[1], FH_MSG_ERROR);
	assert_int_equal(f->rx_code[1], 3);
	assert_false(f->rx_fatal[1]);
	assert_int_equal(fh_peer_queued(f->p), 0);
}

static void
test_unexpected_type(void **state)
{
	struct fx *f = *state;
	uint8_t hdr[FH_HDR_SIZE];

	/* A known type with no handler, then a type nobody knows. */
	put(f, FH_MSG_STATS);
	fh_hdr_pack(hdr, 77, 3);
	put_raw(f, hdr, sizeof hdr);
	put_raw(f, "abc", 3);
	put(f, FH_MSG_HELLO);
	SPIN_UNTIL(f, f->nrx == 2 && f->ndispatched == 1);
	assert_int_equal(f->rx_type[0], FH_MSG_ERROR);
	assert_int_equal(f->rx_code[0], FREEHINT__REJECT_REASON__NOT_ALLOWED);
	/* Issue 12 changed this: a type we do not know is a newer peer's,
	 * answered NOT_SUPPORTED (was MALFORMED) and not counted (was 2). */
	assert_int_equal(f->rx_code[1], FREEHINT__REJECT_REASON__NOT_SUPPORTED);
	assert_false(f->rx_fatal[0] || f->rx_fatal[1]);
	assert_int_equal(fh_peer_faults(f->p), 1);
	assert_int_equal(fh_peer_unknown(f->p), 1);
	/* Still talking: the Hello after them was handled. */
	assert_int_equal(f->dispatched[0], FH_MSG_HELLO);
	assert_int_equal(f->lost, 0);
}

static void
test_handler_refuses(void **state)
{
	struct fx *f = *state;

	f->handler_rc = FREEHINT__REJECT_REASON__OUT_OF_RANGE;
	put(f, FH_MSG_RANGES);
	SPIN_UNTIL(f, f->nrx == 1);
	assert_int_equal(f->ndispatched, 1);
	assert_int_equal(f->rx_code[0], FREEHINT__REJECT_REASON__OUT_OF_RANGE);
	assert_int_equal(fh_peer_faults(f->p), 1);
}

static void
test_too_many_faults(void **state)
{
	struct fx *f = *state;
	int i;

	fh_peer_set_max_faults(f->p, 3);
	for (i = 0; i < 3; i++)
		put(f, FH_MSG_STATS);
	put(f, FH_MSG_HELLO); /* never reached */
	SPIN_UNTIL(f, f->lost == 1 && f->eof);
	assert_int_equal(f->nrx, 3);
	assert_false(f->rx_fatal[0] || f->rx_fatal[1]);
	/* The last answer says the link is closing. */
	assert_true(f->rx_fatal[2]);
	assert_string_equal(f->why, "too many protocol errors");
	assert_int_equal(f->ndispatched, 0);
	assert_null(f->p);
}

static void
test_fatal_framing(void **state)
{
	struct fx *f = *state;
	uint8_t hdr[FH_HDR_SIZE];

	put(f, FH_MSG_HELLO);
	fh_hdr_pack(hdr, FH_MSG_ACK, 4);
	hdr[0] = 'X';
	put_raw(f, hdr, sizeof hdr);
	put(f, FH_MSG_HELLO); /* after the garbage: never read */
	SPIN_UNTIL(f, f->lost == 1 && f->eof);
	assert_int_equal(f->ndispatched, 1);
	assert_int_equal(f->nrx, 1);
	assert_int_equal(f->rx_type[0], FH_MSG_ERROR);
	assert_int_equal(f->rx_code[0], FREEHINT__REJECT_REASON__MALFORMED);
	assert_true(f->rx_fatal[0]);
	assert_string_equal(f->why, "bad frame: bad magic");
}

static void
test_oversized_frame(void **state)
{
	struct fx *f = *state;
	uint8_t hdr[FH_HDR_SIZE];

	/* Refused from its header: nothing waits for 4 GiB to arrive. */
	fh_hdr_pack(hdr, FH_MSG_RANGES, UINT32_MAX);
	put_raw(f, hdr, sizeof hdr);
	SPIN_UNTIL(f, f->lost == 1 && f->eof);
	assert_true(f->rx_fatal[0]);
	assert_string_equal(f->why, "bad frame: frame too large");
}

static void
test_free_in_handler(void **state)
{
	struct fx *f = *state;

	f->free_in_handler = 1;
	put(f, FH_MSG_HELLO);
	put(f, FH_MSG_ACK);
	SPIN_UNTIL(f, f->ndispatched >= 1 && f->eof);
	/* Freed on return from the handler: nothing after it, no lost. */
	assert_int_equal(f->ndispatched, 1);
	assert_int_equal(f->lost, 0);
	assert_null(f->p);
}

static void
test_free_in_lost_on_eof(void **state)
{
	struct fx *f = *state;

	put(f, FH_MSG_HELLO);
	close(f->fd[1]);
	f->fd[1] = -1;
	SPIN_UNTIL(f, f->lost == 1);
	assert_int_equal(f->ndispatched, 1);
	assert_string_equal(f->why, "connection closed");
	assert_null(f->p);
}

static void
test_eof_inside_frame(void **state)
{
	struct fx *f = *state;
	struct evbuffer *b = evbuffer_new();

	fh_frame_put(b, FH_MSG_HELLO, sample_message(FH_MSG_HELLO));
	put_raw(f, evbuffer_pullup(b, -1), evbuffer_get_length(b) - 1);
	evbuffer_free(b);
	shutdown(f->fd[1], SHUT_WR);
	SPIN_UNTIL(f, f->lost == 1);
	assert_int_equal(f->ndispatched, 0);
	assert_string_equal(f->why, "stream ended inside a frame");
}

static void
test_keep_after_lost(void **state)
{
	struct fx *f = *state;

	/* An owner may keep a lost peer a while; it sends nothing more. */
	f->free_in_lost = 0;
	shutdown(f->fd[1], SHUT_WR);
	SPIN_UNTIL(f, f->lost == 1);
	assert_int_equal(
	    fh_peer_send(f->p, FH_MSG_ACK, sample_message(FH_MSG_ACK)), -1);
	assert_non_null(f->p);
}

static void
test_close_after_flush(void **state)
{
	struct fx *f = *state;

	fh_peer_send_error(f->p, 9, true, "bye");
	fh_peer_close_after_flush(f->p, "closing");
	/* The owner's call never runs the lost callback under its feet. */
	assert_int_equal(f->lost, 0);
	SPIN_UNTIL(f, f->lost == 1 && f->eof);
	assert_int_equal(f->nrx, 1);
	assert_true(f->rx_fatal[0]);
	assert_string_equal(f->why, "closing");
}

static void
test_close_nothing_queued(void **state)
{
	struct fx *f = *state;

	fh_peer_close_after_flush(f->p, "idle");
	fh_peer_close_after_flush(f->p, "twice");
	assert_int_equal(f->lost, 0);
	assert_non_null(f->p);
	SPIN_UNTIL(f, f->lost == 1);
	assert_string_equal(f->why, "idle");
}

static void
test_free_with_loss_pending(void **state)
{
	struct fx *f = *state;

	/* The owner frees the peer before the deferred loss is reported. */
	fh_peer_close_after_flush(f->p, "idle");
	fh_peer_free(f->p);
	f->p = NULL;
	SPIN_UNTIL(f, f->eof);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(f->lost, 0);
}

static void
test_not_reading(void **state)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	struct fx *f = *state;
	uint64_t *v;
	size_t n = 10000, i;
	int rc = 0;

	/* About 200 KB a message; the test side never reads. */
	v = calloc(n, sizeof *v);
	assert_non_null(v);
	for (i = 0; i < n; i++)
		v[i] = UINT64_MAX >> 1;
	b.kind = FREEHINT__RANGE_KIND__HINT;
	b.gaps = b.lengths = v;
	b.n_gaps = b.n_lengths = n;
	for (i = 0; i < 100 && rc == 0; i++)
		rc = fh_peer_send(f->p, FH_MSG_RANGES, &b.base);
	free(v);
	assert_int_equal(rc, -1);
	assert_true(i > FH_PEER_MAX_QUEUED / (2 * 9 * n));
	/* Well below the 8 MiB it once was: a few frames at most. */
	assert_true(FH_PEER_MAX_QUEUED <= 1024 * 1024);
	assert_true(i <= FH_PEER_MAX_QUEUED / (9 * n) + 2);
	/* Lost on the next turn of the loop, not inside fh_peer_send. */
	assert_int_equal(f->lost, 0);
	assert_non_null(f->p);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(f->lost, 1);
	assert_string_equal(f->why, "peer is not reading");
	assert_null(f->p);
}

/* Unknown types over a long session: each answered, none a fault. */
static void
test_unknown_types_long_session(void **state)
{
	struct fx *f = *state;
	uint8_t hdr[FH_HDR_SIZE];
	int i;

	fh_peer_set_max_faults(f->p, 3);
	for (i = 0; i < 40; i++) {
		fh_hdr_pack(hdr, (uint8_t)(FH_MSG_MAX + 1 + i % 3), 2);
		put_raw(f, hdr, sizeof hdr);
		put_raw(f, "\x08\x01", 2);
		if (i % 10 == 0)
			put(f, FH_MSG_HELLO);
	}
	put(f, FH_MSG_ACK);
	SPIN_UNTIL(f, f->nrx == 40 && f->ndispatched == 5);
	for (i = 0; i < 40; i++) {
		assert_int_equal(f->rx_type[i], FH_MSG_ERROR);
		assert_int_equal(
		    f->rx_code[i], FREEHINT__REJECT_REASON__NOT_SUPPORTED);
		assert_false(f->rx_fatal[i]);
	}
	assert_int_equal(fh_peer_unknown(f->p), 40);
	assert_int_equal(fh_peer_faults(f->p), 0);
	assert_int_equal(f->lost, 0);
	assert_int_equal(f->dispatched[4], FH_MSG_ACK);
}

/* Faults decay: a peer that errs now and then is not disconnected. */
static void
test_fault_decay(void **state)
{
	struct fx *f = *state;
	int i;

	fh_peer_set_max_faults(f->p, 3);
	fh_peer_set_fault_decay(f->p, 100);
	for (i = 0; i < 6; i++) {
		put(f, FH_MSG_STATS); /* no handler: a fault */
		SPIN_UNTIL(f, f->nrx == i + 1);
		assert_false(f->rx_fatal[i]);
		assert_int_equal(fh_peer_faults(f->p), 1);
		usleep(130 * 1000);
		assert_int_equal(fh_peer_faults(f->p), 0);
	}
	assert_int_equal(f->lost, 0);
	/* Without decay the same six close it after three. */
	fh_peer_set_fault_decay(f->p, 0);
	for (i = 0; i < 3; i++)
		put(f, FH_MSG_STATS);
	SPIN_UNTIL(f, f->lost == 1);
	assert_true(f->rx_fatal[f->nrx - 1]);
}

/* Frames of a newer frame version: fatal, BAD_VERSION, remembered. */
static void
test_newer_frame_version(void **state)
{
	struct fx *f = *state;
	uint8_t hdr[FH_HDR_SIZE];

	f->free_in_lost = 0;
	fh_hdr_pack(hdr, FH_MSG_HELLO, 0);
	hdr[4] = FH_FRAME_VERSION + 1;
	put_raw(f, hdr, sizeof hdr);
	SPIN_UNTIL(f, f->lost == 1 && f->nrx == 1);
	assert_int_equal(f->rx_code[0], FREEHINT__REJECT_REASON__BAD_VERSION);
	assert_true(f->rx_fatal[0]);
	assert_int_equal(fh_peer_fatal_error(f->p), FH_EVERSION);
}

/* Write the first half of a RangeBatch frame, as a killed agent would. */
static void
put_half_frame(struct fx *f)
{
	struct evbuffer *b = evbuffer_new();

	fh_frame_put(b, FH_MSG_RANGES, sample_message(FH_MSG_RANGES));
	put_raw(f, evbuffer_pullup(b, -1), evbuffer_get_length(b) / 2);
	evbuffer_free(b);
}

static void
put_sync(struct fx *f)
{
	static const uint8_t sync[FH_SYNC_LEN] = { 0xff, 0xff, 0xff, 0xff };

	put_raw(f, sync, sizeof sync);
}

/*
 * virtio-serial: half a frame from a killed agent, then a new agent's
 * sync and Hello on the same byte stream. The torn frame is skipped, the
 * Hello handled, nothing answered, the stream kept.
 */
static void
test_resync_torn_frame(void **state)
{
	struct fx *f = *state;

	fh_peer_set_resync(f->p, true);
	put(f, FH_MSG_HELLO);
	put_half_frame(f);
	put_sync(f);
	put(f, FH_MSG_HELLO);
	put(f, FH_MSG_ACK);
	SPIN_UNTIL(f, f->ndispatched == 3);
	assert_int_equal(f->dispatched[1], FH_MSG_HELLO);
	assert_int_equal(f->dispatched[2], FH_MSG_ACK);
	assert_int_equal(f->hello_page_size, 4096);
	assert_int_equal(f->nrx, 0);
	assert_int_equal(f->lost, 0);
}

/* Garbage: one Error, then skipped up to the next mark; kept open. */
static void
test_resync_garbage(void **state)
{
	struct fx *f = *state;
	uint8_t junk[300];
	int i;

	fh_peer_set_resync(f->p, true);
	memset(junk, 0x5a, sizeof junk);
	for (i = 0; i < 20; i += 4)
		junk[i] = 0xff;
	put_raw(f, junk, sizeof junk);
	SPIN_UNTIL(f, f->nrx == 1);
	put(f, FH_MSG_ACK); /* not after a mark: skipped */
	put_sync(f);
	put(f, FH_MSG_HELLO);
	SPIN_UNTIL(f, f->ndispatched == 1);
	assert_int_equal(f->dispatched[0], FH_MSG_HELLO);
	assert_int_equal(f->rx_code[0], FREEHINT__REJECT_REASON__MALFORMED);
	assert_false(f->rx_fatal[0]);
	assert_int_equal(f->nrx, 1);
	assert_int_equal(f->lost, 0);
}

/* The same torn stream without resync: closed, as on a socket. */
static void
test_no_resync_on_sockets(void **state)
{
	struct fx *f = *state;

	put_half_frame(f);
	put_sync(f);
	put(f, FH_MSG_HELLO);
	SPIN_UNTIL(f, f->lost == 1);
	assert_int_equal(f->ndispatched, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		UNIT_FX(test_dispatch),
		UNIT_FX(test_send),
		UNIT_FX(test_unexpected_type),
		UNIT_FX(test_handler_refuses),
		UNIT_FX(test_too_many_faults),
		UNIT_FX(test_fatal_framing),
		UNIT_FX(test_oversized_frame),
		UNIT_FX(test_free_in_handler),
		UNIT_FX(test_free_in_lost_on_eof),
		UNIT_FX(test_eof_inside_frame),
		UNIT_FX(test_keep_after_lost),
		UNIT_FX(test_close_after_flush),
		UNIT_FX(test_close_nothing_queued),
		UNIT_FX(test_free_with_loss_pending),
		UNIT_FX(test_not_reading),
		UNIT_FX(test_unknown_types_long_session),
		UNIT_FX(test_fault_decay),
		UNIT_FX(test_newer_frame_version),
		UNIT_FX(test_resync_torn_frame),
		UNIT_FX(test_resync_garbage),
		UNIT_FX(test_no_resync_on_sockets),
	};

	return UNIT_RUN("test_peer", tests);
}

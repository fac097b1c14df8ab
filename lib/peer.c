/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A peer: one protocol connection (a socket, or a virtio-serial port) with
 * its input and output buffers and its one bufferevent. This is the only
 * place that registers events for protocol connections: it frames, decodes
 * and dispatches each message to a table of { type, handler }, rejects
 * unknown or unexpected types in one place, and counts what a peer gets
 * wrong. The owner learns of the end of a connection from one callback.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common.h"

/* A peer that makes this many mistakes is disconnected. */
#define PEER_MAX_FAULTS 8
/* One fault is forgiven for each this long without a new one. */
#define PEER_FAULT_DECAY_MS (60 * 1000)
/* A peer that leaves this much of our output unread is disconnected: a
 * few whole frames; nothing we send needs more (common.h). */
#define PEER_MAX_QUEUED FH_PEER_MAX_QUEUED
/* A peer closing after an error gets this long to read what is queued. */
#define PEER_FLUSH_TIMEOUT_SEC 5

struct fh_peer {
	struct bufferevent *bev;
	char *name;
	const struct fh_handler *handlers;
	size_t nhandlers;
	fh_peer_lost_cb lost_cb;
	void *arg;
	unsigned max_faults;
	uint64_t faults;
	uint64_t fault_decay_ms; /* 0: faults never decay */
	uint64_t fault_ms; /* when the last fault came or was forgiven */
	uint64_t unknown; /* messages of unknown types, answered */
	int fatal_err; /* the framing error that ended the stream */
	struct log_rl fault_rl;
	struct log_rl unknown_rl;
	/* virtio-serial: resynchronise on the sync mark (fh_sync_find). */
	bool resync;
	bool seeking; /* frame boundary lost: skipping to the next mark */
	size_t scanned; /* offsets of the front frame searched for a mark */
	/*
	 * One way through: OPEN, then CLOSING (flushing what is queued),
	 * LOSING (lost on the next turn of the loop, never inside a caller),
	 * LOST (the callback ran), FREED (freed by its owner while a
	 * callback of ours is on the stack: destroyed when it returns).
	 */
	enum {
		PEER_OPEN,
		PEER_CLOSING,
		PEER_LOSING,
		PEER_LOST,
		PEER_FREED
	} state;
	char *why; /* of CLOSING and LOSING */
	int in_dispatch;
};

static void peer_read_cb(struct bufferevent *, void *);
static void peer_write_cb(struct bufferevent *, void *);
static void peer_event_cb(struct bufferevent *, short, void *);
static void peer_lose(struct fh_peer *, const char *);
static void peer_lose_later(struct fh_peer *, const char *);
static void peer_fault(
    struct fh_peer *, int reason, int fatal, const char *what);
static void peer_destroy(struct fh_peer *);
static void peer_decay(struct fh_peer *);
static int peer_resync(struct fh_peer *, struct evbuffer *);

struct fh_peer *
fh_peer_new(struct event_base *base, int fd, const char *name,
    const struct fh_handler *handlers, size_t nhandlers,
    fh_peer_lost_cb lost_cb, void *arg)
{
	struct fh_peer *p;

	p = xcalloc(1, sizeof *p);
	p->name = xstrdup(name);
	p->handlers = handlers;
	p->nhandlers = nhandlers;
	p->lost_cb = lost_cb;
	p->arg = arg;
	p->max_faults = PEER_MAX_FAULTS;
	p->fault_decay_ms = PEER_FAULT_DECAY_MS;
	/*
	 * A blocking fd (a virtio-serial port opened plainly) would let a
	 * peer that stops reading hang the whole daemon in write().
	 */
	if (evutil_make_socket_nonblocking(fd) != 0) {
		log_warn("%s: cannot make fd non-blocking", name);
		free(p->name);
		free(p);
		return NULL;
	}
	p->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (p->bev == NULL) {
		free(p->name);
		free(p);
		return NULL;
	}
	/* Never buffer more than one frame and one read beyond it. */
	bufferevent_setwatermark(
	    p->bev, EV_READ, 0, FH_HDR_SIZE + FH_FRAME_MAX);
	bufferevent_setcb(p->bev, peer_read_cb, NULL, peer_event_cb, p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	return p;
}

/* Safe to call from a handler or the lost callback: freed on return. */
void
fh_peer_free(struct fh_peer *p)
{
	if (p == NULL)
		return;
	if (p->in_dispatch) {
		p->state = PEER_FREED;
		bufferevent_disable(p->bev, EV_READ | EV_WRITE);
		return;
	}
	peer_destroy(p);
}

static void
peer_destroy(struct fh_peer *p)
{
	/* Also cancels a deferred callback still pending for this peer. */
	bufferevent_free(p->bev);
	free(p->why);
	free(p->name);
	free(p);
}

const char *
fh_peer_name(const struct fh_peer *p)
{
	return p->name;
}

int
fh_peer_fd(const struct fh_peer *p)
{
	return (int)bufferevent_getfd(p->bev);
}

size_t
fh_peer_queued(const struct fh_peer *p)
{
	return evbuffer_get_length(bufferevent_get_output(p->bev));
}

void
fh_peer_set_max_faults(struct fh_peer *p, unsigned n)
{
	p->max_faults = n;
}

void
fh_peer_set_fault_decay(struct fh_peer *p, uint64_t ms)
{
	p->fault_decay_ms = ms;
}

/* Outstanding faults: those made, less those forgiven since. */
uint64_t
fh_peer_faults(struct fh_peer *p)
{
	peer_decay(p);
	return p->faults;
}

/* Messages of a type this code does not know, answered NOT_SUPPORTED. */
uint64_t
fh_peer_unknown(const struct fh_peer *p)
{
	return p->unknown;
}

/* The fatal framing error (FH_EVERSION, ...) that ended the stream, or 0. */
int
fh_peer_fatal_error(const struct fh_peer *p)
{
	return p->fatal_err;
}

/*
 * A stream without connection semantics (virtio-serial): a frame torn by
 * a writer killed in the middle of it, or garbage, does not end it; the
 * reader skips to the next sync mark and resumes with the Hello after it.
 */
void
fh_peer_set_resync(struct fh_peer *p, bool on)
{
	p->resync = on;
}

/* Forgive one fault for every fault_decay_ms without a new one. */
static void
peer_decay(struct fh_peer *p)
{
	uint64_t now = fh_monotonic_ms(), n;

	if (p->faults == 0 || p->fault_decay_ms == 0) {
		p->fault_ms = now;
		return;
	}
	n = (now - p->fault_ms) / p->fault_decay_ms;
	if (n == 0)
		return;
	if (n >= p->faults) {
		p->faults = 0;
		p->fault_ms = now;
		return;
	}
	p->faults -= n;
	p->fault_ms += n * p->fault_decay_ms;
}

int
fh_peer_send(struct fh_peer *p, uint8_t type, const ProtobufCMessage *m)
{
	int err;

	if (p->state >= PEER_LOSING)
		return -1;
	if (fh_peer_queued(p) > PEER_MAX_QUEUED) {
		log_warnx("%s: not reading: %zu bytes of output queued, the "
		          "limit is %u; disconnecting",
		    p->name, fh_peer_queued(p), (unsigned)PEER_MAX_QUEUED);
		peer_lose_later(p, "peer is not reading");
		return -1;
	}
	err = fh_frame_put(bufferevent_get_output(p->bev), type, m);
	if (err != FH_OK) {
		log_warnx("%s: cannot send %s: %s", p->name, fh_msg_name(type),
		    fh_strerror(err));
		return -1;
	}
	return 0;
}

/* The sync run before a Hello on virtio-serial (fh_sync_put). */
int
fh_peer_send_sync(struct fh_peer *p)
{
	if (p->state >= PEER_LOSING)
		return -1;
	return fh_sync_put(bufferevent_get_output(p->bev)) == FH_OK ? 0 : -1;
}

int
fh_peer_send_error(
    struct fh_peer *p, int reason, bool fatal, const char *fmt, ...)
{
	Freehint__Error e = FREEHINT__ERROR__INIT;
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	e.code = (uint32_t)reason;
	e.detail = detail;
	e.has_fatal = fatal;
	e.fatal = fatal;
	return fh_peer_send(p, FH_MSG_ERROR, &e.base);
}

/*
 * Stop reading; report the peer lost once everything queued is written, or
 * after PEER_FLUSH_TIMEOUT_SEC if the peer does not read it. The lost
 * callback always comes from the event loop, never from inside this call.
 */
void
fh_peer_close_after_flush(struct fh_peer *p, const char *why)
{
	struct timeval tv = { PEER_FLUSH_TIMEOUT_SEC, 0 };

	if (p->state != PEER_OPEN)
		return;
	p->state = PEER_CLOSING;
	p->why = xstrdup(why);
	bufferevent_disable(p->bev, EV_READ);
	bufferevent_setcb(p->bev, NULL, peer_write_cb, peer_event_cb, p);
	bufferevent_set_timeouts(p->bev, NULL, &tv);
	if (fh_peer_queued(p) == 0)
		peer_lose_later(p, why);
}

static void
peer_write_cb(struct bufferevent *bev, void *arg)
{
	struct fh_peer *p = arg;

	if (p->state == PEER_CLOSING && fh_peer_queued(p) == 0)
		peer_lose(p, p->why);
}

/*
 * Report the peer lost on the next turn of the event loop. Used where the
 * owner called us (fh_peer_send, fh_peer_close_after_flush): a lost
 * callback run from there could free the peer under the caller's feet.
 */
static void
peer_lose_later(struct fh_peer *p, const char *why)
{
	if (p->state >= PEER_LOSING)
		return;
	if (p->state == PEER_OPEN)
		p->why = xstrdup(why);
	p->state = PEER_LOSING;
	bufferevent_disable(p->bev, EV_READ);
	bufferevent_trigger_event(
	    p->bev, BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
}

static void
peer_lose(struct fh_peer *p, const char *why)
{
	if (p->state >= PEER_LOST)
		return;
	p->state = PEER_LOST;
	bufferevent_disable(p->bev, EV_READ);
	log_debug("%s: lost: %s", p->name, why);
	p->in_dispatch++;
	p->lost_cb(p, why, p->arg);
	p->in_dispatch--;
	if (p->state == PEER_FREED && p->in_dispatch == 0)
		peer_destroy(p);
}

/* Answer a mistake; close after too many, or at once after a fatal one. */
static void
peer_fault(struct fh_peer *p, int reason, int fatal, const char *what)
{
	peer_decay(p);
	p->faults++;
	log_warnx_rl(&p->fault_rl, "%s: %s", p->name, what);
	fh_peer_send_error(
	    p, reason, fatal || p->faults >= p->max_faults, "%s", what);
	if (fatal)
		fh_peer_close_after_flush(p, what);
	else if (p->faults >= p->max_faults)
		fh_peer_close_after_flush(p, "too many protocol errors");
}

static void
peer_read_cb(struct bufferevent *bev, void *arg)
{
	struct fh_peer *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const struct fh_handler *h;
	struct fh_msg m;
	char what[128];
	size_t i;
	int err, rc;

	p->in_dispatch++;
	while (p->state == PEER_OPEN) {
		if (p->resync && peer_resync(p, in) != 0)
			break;
		err = fh_msg_pull(in, &m);
		if (err == FH_ENEED)
			break;
		p->scanned = 0;
		if (err == FH_ETYPE) {
			/* A newer peer's message: answered, not a fault. */
			p->unknown++;
			log_warnx_rl(&p->unknown_rl,
			    "%s: message of unknown type ignored", p->name);
			fh_peer_send_error(p,
			    FREEHINT__REJECT_REASON__NOT_SUPPORTED, false,
			    "unknown message type");
			continue;
		}
		if (p->resync && FH_ERR_FATAL(err) && err != FH_EVERSION &&
		    err != FH_ETRUNC) {
			snprintf(what, sizeof what,
			    "bad frame: %s; resynchronising", fh_strerror(err));
			p->seeking = true;
			peer_fault(
			    p, FREEHINT__REJECT_REASON__MALFORMED, 0, what);
			continue;
		}
		if (err != FH_OK) {
			snprintf(what, sizeof what, "bad frame: %s",
			    fh_strerror(err));
			if (FH_ERR_FATAL(err))
				p->fatal_err = err;
			peer_fault(p,
			    err == FH_ELIMIT
			        ? FREEHINT__REJECT_REASON__TOO_LARGE
			        : err == FH_EVERSION
			        ? FREEHINT__REJECT_REASON__BAD_VERSION
			        : FREEHINT__REJECT_REASON__MALFORMED,
			    FH_ERR_FATAL(err), what);
			continue;
		}
		for (h = NULL, i = 0; i < p->nhandlers; i++) {
			if (p->handlers[i].type == m.type) {
				h = &p->handlers[i];
				break;
			}
		}
		if (h == NULL) {
			snprintf(what, sizeof what, "unexpected %s message",
			    fh_msg_name(m.type));
			peer_fault(
			    p, FREEHINT__REJECT_REASON__NOT_ALLOWED, 0, what);
		} else if ((rc = h->fn(p, &m, p->arg)) != 0 &&
		    p->state < PEER_LOST) {
			snprintf(what, sizeof what, "%s message refused",
			    fh_msg_name(m.type));
			peer_fault(p, rc, 0, what);
		}
		fh_msg_free(&m);
	}
	p->in_dispatch--;
	if (p->state == PEER_FREED && p->in_dispatch == 0)
		peer_destroy(p);
}

static void
peer_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fh_peer *p = arg;
	char why[128];

	if (p->state == PEER_LOSING)
		peer_lose(p, p->why);
	else if (p->state == PEER_CLOSING &&
	    (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		peer_lose(p, p->why);
	else if (what & BEV_EVENT_TIMEOUT)
		peer_lose(p, "timed out flushing output");
	else if (what & BEV_EVENT_EOF) {
		if (evbuffer_get_length(bufferevent_get_input(bev)) != 0)
			peer_lose(p, fh_strerror(FH_ETRUNC));
		else
			peer_lose(p, "connection closed");
	} else if (what & BEV_EVENT_ERROR) {
		snprintf(
		    why, sizeof why, "%s", strerror(EVUTIL_SOCKET_ERROR()));
		peer_lose(p, why);
	}
}

/*
 * Resynchronisation (fh_peer_set_resync), before each frame is pulled.
 * Returns 0 when the front of the input may be a frame, 1 to wait for
 * more. Skips: sync bytes before a frame (a fresh agent's), everything
 * up to the next mark while seeking, and the front frame when a mark
 * begins inside it (its writer died in the middle; a new one said Hello).
 */
static int
peer_resync(struct fh_peer *p, struct evbuffer *in)
{
	struct fh_frame_hdr h;
	const uint8_t *buf;
	size_t have, end, i, lim;
	long at;
	int err;

	have = evbuffer_get_length(in);
	if (have == 0 || (buf = evbuffer_pullup(in, -1)) == NULL)
		return 1;
	if (p->seeking) {
		if ((at = fh_sync_find(buf, have)) < 0) {
			/* Keep what may be the beginning of a mark. */
			if (have > FH_SYNC_MARK - 1)
				evbuffer_drain(in, have - (FH_SYNC_MARK - 1));
			return 1;
		}
		evbuffer_drain(in, (size_t)at);
		p->seeking = false;
		p->scanned = 0;
		log_info("%s: resynchronised on a Hello", p->name);
		return 0;
	}
	for (i = 0; i < have && buf[i] == FH_SYNC_BYTE; i++)
		;
	if (i > 0) {
		evbuffer_drain(in, i);
		p->scanned = 0;
		return peer_resync(p, in);
	}
	if (have < FH_HDR_SIZE)
		return 0;
	err = fh_hdr_unpack(buf, &h);
	if (err != FH_OK && err != FH_ETYPE)
		return 0; /* fh_msg_pull says what is wrong */
	/* A mark that begins inside this frame: the frame was torn. */
	end = FH_HDR_SIZE + (size_t)h.length;
	if (have < FH_SYNC_MARK)
		return 0;
	lim = have - FH_SYNC_MARK + 1;
	if (lim > end)
		lim = end;
	if (p->scanned < 1)
		p->scanned = 1;
	if (lim <= p->scanned)
		return 0;
	at =
	    fh_sync_find(buf + p->scanned, lim - p->scanned + FH_SYNC_MARK - 1);
	if (at < 0) {
		p->scanned = lim;
		return 0;
	}
	log_warnx("%s: %s frame torn by a new Hello; resynchronised", p->name,
	    fh_msg_name(h.type));
	evbuffer_drain(in, p->scanned + (size_t)at);
	p->scanned = 0;
	return 0;
}

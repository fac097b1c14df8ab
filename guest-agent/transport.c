/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The channel to the host, qemu-guest-agent style: one switch on the
 * method (vsock, virtio-serial, unix; auto tries vsock, then
 * virtio-serial). With auto, a channel that opened but was lost before
 * the host's Welcome (freehintd refused our CID, or nobody answers there)
 * makes the other method the first one next time. This file only opens
 * and reopens the channel; once open, the fd belongs to the session's
 * fh_peer, which owns its events.
 *
 * virtio-serial has no connection semantics: the port opens whether or not
 * the host listens, and reads EOF (POLLHUP) while nobody is there. The
 * session sees that as a lost peer and we retry on the backoff timer, so
 * an absent host costs one open() per backoff period, never a spin.
 */
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include <event2/event.h>

#include "agent.h"

/* First retry after this; doubled up to conf.backoff_max. */
#define BACKOFF_BASE_MS 500
/* A socket connect that takes longer than this has failed. */
#define CONNECT_TIMEOUT_SEC 5
/* A host that speaks none of our versions: retry this rarely (at least
 * conf.backoff_max); it will not change its mind before an upgrade. */
#define INCOMPATIBLE_RETRY_MS (10 * 60 * 1000)

enum transport_state {
	TS_IDLE,
	TS_CONNECTING,
	TS_CONNECTED,
	TS_WAITING,
};

struct transport {
	struct agent *agent;
	transport_cb cb;
	enum transport_state state;
	enum transport_kind trying; /* the method of the current attempt */
	enum transport_kind auto_first; /* auto: the method tried first */
	bool welcomed; /* this connection got the host's Welcome */
	unsigned attempt;
	int fd; /* while connecting */
	bool incompatible_said; /* the reason was logged at warning once */
	struct event *ev_retry;
	struct event *ev_connect;
	char what[160];
};

static void transport_try(struct transport *, enum transport_kind);
static void transport_failed(struct transport *, const char *why);
static void transport_done(struct transport *);
static void transport_retry_cb(int, short, void *);
static void transport_connect_cb(int, short, void *);
static int open_socket(
    struct transport *, int family, const struct sockaddr *, socklen_t);
static void describe(struct transport *, enum transport_kind);

static const char *const kind_names[] = {
	[TRANSPORT_AUTO] = "auto",
	[TRANSPORT_VSOCK] = "vsock",
	[TRANSPORT_SERIAL] = "virtio-serial",
	[TRANSPORT_UNIX] = "unix",
};

const char *
transport_kind_name(enum transport_kind k)
{
	if ((size_t)k >= FH_ARRAY_SIZE(kind_names))
		return "?";
	return kind_names[k];
}

int
transport_kind_parse(const char *s, enum transport_kind *k)
{
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(kind_names); i++) {
		if (strcmp(s, kind_names[i]) == 0) {
			*k = (enum transport_kind)i;
			return 0;
		}
	}
	return -1;
}

/*
 * Capped exponential backoff with "equal jitter": half of the delay is
 * fixed, the other half random (rnd), so that many guests restarted
 * together do not reconnect in step, and no retry comes sooner than half
 * the nominal delay.
 */
uint32_t
backoff_delay(unsigned attempt, uint32_t base_ms, uint32_t max_ms, uint32_t rnd)
{
	uint64_t d = base_ms;
	uint32_t half;

	if (base_ms == 0)
		base_ms = d = 1;
	if (max_ms < base_ms)
		max_ms = base_ms;
	while (attempt-- > 0 && d < max_ms)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	half = (uint32_t)(d / 2);
	return half + rnd % ((uint32_t)d - half + 1);
}

struct transport *
transport_new(struct agent *a, transport_cb cb)
{
	struct transport *t;

	t = xcalloc(1, sizeof *t);
	t->agent = a;
	t->cb = cb;
	t->fd = -1;
	t->auto_first = TRANSPORT_VSOCK;
	t->ev_retry = evtimer_new(a->base, transport_retry_cb, t);
	if (t->ev_retry == NULL)
		fatalx("%s: evtimer_new", __func__);
	snprintf(t->what, sizeof t->what, "not connected");
	return t;
}

void
transport_free(struct transport *t)
{
	if (t == NULL)
		return;
	if (t->ev_connect != NULL)
		event_free(t->ev_connect);
	if (t->fd != -1)
		close(t->fd);
	event_free(t->ev_retry);
	free(t);
}

const char *
transport_what(const struct transport *t)
{
	return t->what;
}

bool
transport_connected(const struct transport *t)
{
	return t->state == TS_CONNECTED;
}

/* The host answered a handshake: the next loss starts a fresh backoff. */
void
transport_established(struct transport *t)
{
	t->attempt = 0;
	t->welcomed = true;
}

static enum transport_kind
auto_other(enum transport_kind k)
{
	return k == TRANSPORT_VSOCK ? TRANSPORT_SERIAL : TRANSPORT_VSOCK;
}

void
transport_start(struct transport *t)
{
	enum transport_kind k = t->agent->conf.transport;

	t->state = TS_CONNECTING;
	transport_try(t, k == TRANSPORT_AUTO ? t->auto_first : k);
}

/* Drop any attempt and connect again now (after a reload). */
void
transport_restart(struct transport *t)
{
	if (t->ev_connect != NULL) {
		event_free(t->ev_connect);
		t->ev_connect = NULL;
	}
	if (t->fd != -1) {
		close(t->fd);
		t->fd = -1;
	}
	evtimer_del(t->ev_retry);
	t->attempt = 0;
	transport_start(t);
}

/* The method of the current (or last) attempt. */
enum transport_kind
transport_current(const struct transport *t)
{
	return t->trying;
}

/*
 * The host speaks no message set we speak, or frames we cannot read:
 * retry, but only after INCOMPATIBLE_RETRY_MS, and say why in the status
 * (and once at warning level, not at every retry).
 */
void
transport_incompatible(struct transport *t, const char *why)
{
	struct timeval tv;
	uint32_t ms = INCOMPATIBLE_RETRY_MS;

	if (ms < t->agent->conf.backoff_max)
		ms = t->agent->conf.backoff_max;
	ms = backoff_delay(0, ms, ms, (uint32_t)random());
	t->state = TS_WAITING;
	t->agent->stats.reconnects++;
	agent_error(t->agent, "incompatible host on %s: %s; next try in %u s",
	    t->what, why, ms / 1000);
	if (!t->incompatible_said)
		log_warnx("%s: incompatible host: %s; retrying every %u s",
		    t->what, why, ms / 1000);
	else
		log_debug("%s: incompatible host: %s", t->what, why);
	t->incompatible_said = true;
	tv = fh_ms_timeval(ms);
	evtimer_add(t->ev_retry, &tv);
	agent_status(t->agent);
}

/* The next retry's delay, in ms; 0 when none is scheduled. */
uint64_t
transport_retry_in_ms(const struct transport *t)
{
	struct timeval tv, now;

	if (!evtimer_pending(t->ev_retry, &tv))
		return 0;
	event_base_gettimeofday_cached(t->agent->base, &now);
	if (timercmp(&tv, &now, <))
		return 0;
	timersub(&tv, &now, &tv);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/*
 * A seed for the backoff jitter from the kernel's entropy: clones of one
 * image booted together get different ones, unlike time ^ pid.
 */
unsigned
transport_seed(void)
{
	struct timespec ts;
	unsigned seed;

	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) ==
	    (ssize_t)sizeof seed)
		return seed;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned)ts.tv_nsec ^ (unsigned)getpid();
}

/* The session lost the channel (it closed the fd): retry after a while. */
void
transport_lost(struct transport *t, const char *why)
{
	if (t->agent->conf.transport == TRANSPORT_AUTO && !t->welcomed &&
	    t->trying == t->auto_first) {
		t->auto_first = auto_other(t->trying);
		log_info("%s: no Welcome there; auto tries %s first now",
		    t->what, transport_kind_name(t->auto_first));
	}
	t->state = TS_IDLE;
	agent_error(t->agent, "%s: %s", t->what, why);
	t->agent->stats.reconnects++;
	transport_failed(t, why);
}

static void
describe(struct transport *t, enum transport_kind k)
{
	const struct agent_conf *c = &t->agent->conf;

	switch (k) {
	case TRANSPORT_VSOCK:
		snprintf(t->what, sizeof t->what, "vsock %u:%u", c->vsock_cid,
		    c->vsock_port);
		break;
	case TRANSPORT_SERIAL:
		snprintf(t->what, sizeof t->what, "virtio-serial %s",
		    c->serial_path);
		break;
	case TRANSPORT_UNIX:
		snprintf(t->what, sizeof t->what, "unix %s",
		    c->unix_path != NULL ? c->unix_path : "(none)");
		break;
	case TRANSPORT_AUTO:
		snprintf(t->what, sizeof t->what, "auto");
		break;
	}
}

static void
transport_try(struct transport *t, enum transport_kind k)
{
	const struct agent_conf *c = &t->agent->conf;
	struct sockaddr_vm svm;
	struct sockaddr_un sun;
	char why[256];
	int fd;

	t->trying = k;
	describe(t, k);
	switch (k) {
	case TRANSPORT_VSOCK:
		memset(&svm, 0, sizeof svm);
		svm.svm_family = AF_VSOCK;
		svm.svm_cid = c->vsock_cid;
		svm.svm_port = c->vsock_port;
		if (open_socket(
		        t, AF_VSOCK, (struct sockaddr *)&svm, sizeof svm) == 0)
			return;
		break;
	case TRANSPORT_UNIX:
		if (c->unix_path == NULL) {
			transport_failed(t, "no unix-path configured");
			return;
		}
		if (fh_unix_addr(&sun, c->unix_path) != 0) {
			transport_failed(t, "unix-path too long");
			return;
		}
		if (open_socket(
		        t, AF_UNIX, (struct sockaddr *)&sun, sizeof sun) == 0)
			return;
		break;
	case TRANSPORT_SERIAL:
		fd = open(c->serial_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fd != -1) {
			t->fd = fd;
			transport_done(t);
			return;
		}
		snprintf(why, sizeof why, "%s", strerror(errno));
		transport_failed(t, why);
		return;
	case TRANSPORT_AUTO:
		fatalx("%s: auto is not a method", __func__);
	}
	snprintf(why, sizeof why, "%s", strerror(errno));
	transport_failed(t, why);
}

/*
 * Start a non-blocking connect. 0: connected or in progress (the callback
 * follows); -1 with errno: failed now.
 */
static int
open_socket(
    struct transport *t, int family, const struct sockaddr *sa, socklen_t salen)
{
	struct timeval tv = { CONNECT_TIMEOUT_SEC, 0 };
	int fd, saved;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, sa, salen) == 0) {
		t->fd = fd;
		transport_done(t);
		return 0;
	}
	if (errno != EINPROGRESS) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	t->fd = fd;
	/* Only until the connect completes; then fh_peer takes the fd. */
	t->ev_connect =
	    event_new(t->agent->base, fd, EV_WRITE, transport_connect_cb, t);
	if (t->ev_connect == NULL)
		fatalx("%s: event_new", __func__);
	event_add(t->ev_connect, &tv);
	return 0;
}

static void
transport_connect_cb(int fd, short what, void *arg)
{
	struct transport *t = arg;
	socklen_t len = sizeof(int);
	int err = 0;

	event_free(t->ev_connect);
	t->ev_connect = NULL;
	if (what & EV_TIMEOUT)
		err = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		close(t->fd);
		t->fd = -1;
		transport_failed(t, strerror(err));
		return;
	}
	transport_done(t);
}

static void
transport_done(struct transport *t)
{
	int fd = t->fd;

	t->fd = -1;
	t->state = TS_CONNECTED;
	t->welcomed = false;
	log_info("connected over %s", t->what);
	t->cb(t->agent, fd, t->what);
}

/* This attempt failed: try the next method (auto), or wait and retry. */
static void
transport_failed(struct transport *t, const char *why)
{
	struct timeval tv;
	uint32_t ms;

	if (t->state == TS_CONNECTING &&
	    t->agent->conf.transport == TRANSPORT_AUTO &&
	    t->trying == t->auto_first) {
		log_debug("%s: %s; trying %s", t->what, why,
		    transport_kind_name(auto_other(t->trying)));
		transport_try(t, auto_other(t->trying));
		return;
	}
	ms = backoff_delay(t->attempt, BACKOFF_BASE_MS,
	    t->agent->conf.backoff_max, (uint32_t)random());
	if (t->attempt < 32)
		t->attempt++;
	/* Every retry is logged at debug only: an absent host is normal. */
	if (t->attempt == 1)
		log_info("%s: %s; retrying", t->what, why);
	else
		log_debug("%s: %s; retry in %u ms", t->what, why, ms);
	if (t->agent->conf.transport == TRANSPORT_AUTO)
		snprintf(
		    t->what, sizeof t->what, "auto (vsock, virtio-serial)");
	t->state = TS_WAITING;
	tv = fh_ms_timeval(ms);
	evtimer_add(t->ev_retry, &tv);
	agent_status(t->agent);
}

static void
transport_retry_cb(int fd, short what, void *arg)
{
	struct transport *t = arg;

	if (!t->agent->stopping)
		transport_start(t);
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * An asynchronous QMP client on the event loop: nothing here ever waits
 * for QEMU. The socket is connected without blocking, read through a
 * bufferevent and framed by json-c's incremental tokener (a message may
 * come in any number of pieces, several in one read). Every command
 * carries an "id" that its reply repeats; replies are matched by it, so
 * events and replies may come in any order. A command not answered
 * within the timeout, a greeting that does not come, malformed JSON or a
 * message larger than QMPC_MSG_MAX end the connection: every pending
 * command gets its callback with the reason, then the owner's lost
 * callback. The owner frees the client (also from inside a callback)
 * and reconnects when it wants.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "freehintd.h"

/* "info mtree -f" of a large VM is tens of KiB; nothing is near this. */
#define QMPC_MSG_MAX (4 * 1024 * 1024)
/* Commands are small: a monitor that lets this much pile up is stuck. */
#define QMPC_OUT_MAX (1024 * 1024)

enum qmpc_state {
	QMPC_GREETING, /* connected (or connecting), waiting for "QMP" */
	QMPC_NEGOTIATING, /* qmp_capabilities sent */
	QMPC_READY,
	QMPC_DEAD /* failed or freed: no callback but replies' "closed" */
};

struct qmpc_cmd {
	uint64_t id;
	char *what; /* "execute", for errors */
	qmpc_reply_fn fn;
	void *arg;
	uint64_t deadline; /* monotonic ms */
	TAILQ_ENTRY(qmpc_cmd) entry;
};
TAILQ_HEAD(qmpc_cmds, qmpc_cmd);

struct qmpc {
	struct bufferevent *bev;
	json_tokener *tok;
	size_t msg_len; /* bytes of the message being parsed */
	enum qmpc_state state;
	uint64_t next_id;
	struct qmpc_cmds cmds; /* in the order sent: deadlines ascend */
	struct event *timer; /* the greeting's or the oldest command's */
	uint64_t greet_deadline;
	int timeout_ms;
	pid_t pid;
	const struct qmpc_ops *ops;
	void *arg;
	int busy; /* inside one of our callbacks */
	bool zombie; /* freed while busy */
};

static struct qmpc *qmpc_setup(
    struct event_base *, int, int, const struct qmpc_ops *, void *);
static void qmpc_read(struct bufferevent *, void *);
static void qmpc_bev_event(struct bufferevent *, short, void *);
static void qmpc_timer(evutil_socket_t, short, void *);
static void qmpc_arm(struct qmpc *);
static void qmpc_dispatch(struct qmpc *, json_object *);
static void qmpc_reply(struct qmpc *, json_object *);
static void qmpc_negotiated(struct qmpc *, json_object *, const char *, void *);
static int qmpc_queue(
    struct qmpc *, const char *, json_object *, qmpc_reply_fn, void *);
static void qmpc_fail(struct qmpc *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void qmpc_flush(struct qmpc *, const char *);
static void qmpc_release(struct qmpc *);
static void qmpc_destroy(struct qmpc *);
/*
 * Connect to the monitor at path without blocking. NULL (and why in err)
 * when that fails at once: no such socket, nobody listening, or a
 * listener whose backlog is full (EAGAIN: it does not accept).
 */
struct qmpc *
qmpc_connect(struct event_base *base, const char *path, int timeout_ms,
    const struct qmpc_ops *ops, void *arg, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd;

	if (fh_unix_addr(&sun, path) != 0) {
		snprintf(err, errlen, "monitor path too long");
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0 &&
	    errno != EINPROGRESS && errno != EINTR) {
		if (errno == EAGAIN)
			snprintf(err, errlen,
			    "monitor %s does not accept connections "
			    "(listen backlog full)",
			    path);
		else
			snprintf(err, errlen, "monitor %s: %s", path,
			    strerror(errno));
		close(fd);
		return NULL;
	}
	return qmpc_setup(base, fd, timeout_ms, ops, arg);
}

/* A client on fd, connected or connecting; the client owns fd. */
struct qmpc *
qmpc_new(struct event_base *base, int fd, int timeout_ms,
    const struct qmpc_ops *ops, void *arg)
{
	if (evutil_make_socket_nonblocking(fd) != 0) {
		close(fd);
		return NULL;
	}
	return qmpc_setup(base, fd, timeout_ms, ops, arg);
}

static struct qmpc *
qmpc_setup(struct event_base *base, int fd, int timeout_ms,
    const struct qmpc_ops *ops, void *arg)
{
	struct qmpc *q;

	q = xcalloc(1, sizeof *q);
	TAILQ_INIT(&q->cmds);
	q->timeout_ms = timeout_ms;
	q->ops = ops;
	q->arg = arg;
	q->next_id = 1;
	q->state = QMPC_GREETING;
	q->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	q->tok = json_tokener_new();
	q->timer = evtimer_new(base, qmpc_timer, q);
	if (q->bev == NULL || q->tok == NULL || q->timer == NULL)
		fatalx("%s: out of memory", __func__);
	bufferevent_setcb(q->bev, qmpc_read, NULL, qmpc_bev_event, q);
	bufferevent_enable(q->bev, EV_READ);
	q->greet_deadline = fh_monotonic_ms() + (uint64_t)timeout_ms;
	qmpc_arm(q);
	return q;
}

bool
qmpc_ready(const struct qmpc *q)
{
	return q->state == QMPC_READY && !q->zombie;
}

/* The process that listens on the monitor socket (SO_PEERCRED). */
pid_t
qmpc_pid(const struct qmpc *q)
{
	return q->pid;
}

/*
 * Send a command (args, may be NULL, is consumed). fn gets the "return"
 * value, or NULL and why, exactly once: at the reply, at a timeout, when
 * the connection is lost, or when the client is freed. Returns -1, and
 * never calls fn, when the client is not ready.
 */
int
qmpc_send(struct qmpc *q, const char *execute, json_object *args,
    qmpc_reply_fn fn, void *arg)
{
	int rc;

	if (!qmpc_ready(q)) {
		json_object_put(args);
		return -1;
	}
	q->busy++;
	rc = qmpc_queue(q, execute, args, fn, arg);
	q->busy--;
	qmpc_release(q);
	return rc;
}

static int
qmpc_queue(struct qmpc *q, const char *execute, json_object *args,
    qmpc_reply_fn fn, void *arg)
{
	struct evbuffer *out = bufferevent_get_output(q->bev);
	struct qmpc_cmd *c;
	json_object *o;

	if (evbuffer_get_length(out) > QMPC_OUT_MAX) {
		json_object_put(args);
		qmpc_fail(q, "the monitor does not read its input");
		return -1;
	}
	c = xcalloc(1, sizeof *c);
	c->id = q->next_id++;
	c->what = xstrdup(execute);
	c->fn = fn;
	c->arg = arg;
	c->deadline = fh_monotonic_ms() + (uint64_t)q->timeout_ms;
	o = json_object_new_object();
	json_object_object_add(o, "execute", json_object_new_string(execute));
	if (args != NULL)
		json_object_object_add(o, "arguments", args);
	json_object_object_add(o, "id", json_object_new_uint64(c->id));
	evbuffer_add_printf(out, "%s\r\n",
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	TAILQ_INSERT_TAIL(&q->cmds, c, entry);
	if (c == TAILQ_FIRST(&q->cmds))
		qmpc_arm(q);
	return 0;
}

/* The timer follows the greeting, then the oldest unanswered command. */
static void
qmpc_arm(struct qmpc *q)
{
	struct qmpc_cmd *c;
	uint64_t when;

	if (q->state == QMPC_DEAD) {
		evtimer_del(q->timer);
		return;
	}
	if (q->state == QMPC_GREETING)
		when = q->greet_deadline;
	else if ((c = TAILQ_FIRST(&q->cmds)) != NULL)
		when = c->deadline;
	else {
		evtimer_del(q->timer);
		return;
	}
	fh_evtimer_at(q->timer, when);
}

static void
qmpc_timer(evutil_socket_t unused, short what, void *arg)
{
	struct qmpc *q = arg;
	struct qmpc_cmd *c;
	uint64_t now = fh_monotonic_ms();

	q->busy++;
	if (q->state == QMPC_GREETING && now >= q->greet_deadline)
		qmpc_fail(
		    q, "the monitor did not greet within %d ms", q->timeout_ms);
	else if ((c = TAILQ_FIRST(&q->cmds)) != NULL && now >= c->deadline)
		qmpc_fail(q, "the monitor did not answer '%s' within %d ms",
		    c->what, q->timeout_ms);
	else
		qmpc_arm(q);
	q->busy--;
	qmpc_release(q);
}

static void
qmpc_bev_event(struct bufferevent *bev, short what, void *arg)
{
	struct qmpc *q = arg;

	q->busy++;
	if (what & BEV_EVENT_EOF)
		qmpc_fail(q, "the monitor closed the connection");
	else if (what & BEV_EVENT_ERROR)
		qmpc_fail(q, "monitor: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	q->busy--;
	qmpc_release(q);
}

/* Feed what arrived to the tokener, one whole message at a time. */
static void
qmpc_read(struct bufferevent *bev, void *arg)
{
	struct qmpc *q = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v;
	enum json_tokener_error jerr;
	json_object *o;
	size_t used;

	q->busy++;
	while (q->state != QMPC_DEAD && !q->zombie &&
	    evbuffer_peek(in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		o = json_tokener_parse_ex(q->tok, v.iov_base, (int)v.iov_len);
		jerr = json_tokener_get_error(q->tok);
		used = json_tokener_get_parse_end(q->tok);
		if (o == NULL && jerr != json_tokener_continue) {
			qmpc_fail(q, "monitor: malformed JSON (%s)",
			    json_tokener_error_desc(jerr));
			break;
		}
		if (used == 0 || used > v.iov_len) {
			json_object_put(o);
			qmpc_fail(q, "monitor: the JSON parser is stuck");
			break;
		}
		evbuffer_drain(in, used);
		q->msg_len += used;
		if (o == NULL) {
			if (q->msg_len > QMPC_MSG_MAX)
				qmpc_fail(q, "monitor: message over %d bytes",
				    QMPC_MSG_MAX);
			continue;
		}
		json_tokener_reset(q->tok);
		q->msg_len = 0;
		qmpc_dispatch(q, o);
		json_object_put(o);
	}
	q->busy--;
	qmpc_release(q);
}

static void
qmpc_dispatch(struct qmpc *q, json_object *o)
{
	json_object *ev, *data = NULL;
	socklen_t len;
	struct ucred cred;

	if (!json_object_is_type(o, json_type_object)) {
		qmpc_fail(q, "monitor: a message that is not an object");
		return;
	}
	if (q->state == QMPC_GREETING) {
		if (!json_object_object_get_ex(o, "QMP", NULL)) {
			qmpc_fail(q, "monitor: no QMP greeting");
			return;
		}
		len = sizeof cred;
		if (getsockopt(bufferevent_getfd(q->bev), SOL_SOCKET,
		        SO_PEERCRED, &cred, &len) != 0 ||
		    cred.pid <= 0) {
			qmpc_fail(q, "SO_PEERCRED: %s", strerror(errno));
			return;
		}
		q->pid = cred.pid;
		q->state = QMPC_NEGOTIATING;
		qmpc_queue(q, "qmp_capabilities", NULL, qmpc_negotiated, NULL);
		return;
	}
	if (json_object_object_get_ex(o, "event", &ev)) {
		if (!json_object_is_type(ev, json_type_string))
			return;
		json_object_object_get_ex(o, "data", &data);
		if (q->state == QMPC_READY && q->ops->event != NULL)
			q->ops->event(
			    q, json_object_get_string(ev), data, q->arg);
		return;
	}
	if (json_object_object_get_ex(o, "return", NULL) ||
	    json_object_object_get_ex(o, "error", NULL))
		qmpc_reply(q, o);
}

/* A reply: to the command with its id, which leaves the queue. */
static void
qmpc_reply(struct qmpc *q, json_object *o)
{
	struct qmpc_cmd *c;
	json_object *id, *r, *cls, *desc;
	char err[256];
	uint64_t n;

	if (!json_object_object_get_ex(o, "id", &id) ||
	    !json_object_is_type(id, json_type_int)) {
		log_debug("%s: a reply without our id, ignored", __func__);
		return;
	}
	n = json_object_get_uint64(id);
	TAILQ_FOREACH(c, &q->cmds, entry)
		if (c->id == n)
			break;
	if (c == NULL) {
		log_debug(
		    "%s: a reply to no command (id %" PRIu64 ")", __func__, n);
		return;
	}
	TAILQ_REMOVE(&q->cmds, c, entry);
	qmpc_arm(q);
	if (json_object_object_get_ex(o, "return", &r))
		c->fn(q, r, NULL, c->arg);
	else {
		json_object_object_get_ex(o, "error", &r);
		if (json_object_object_get_ex(r, "desc", &desc) &&
		    json_object_object_get_ex(r, "class", &cls))
			snprintf(err, sizeof err, "%s: %s (%s)", c->what,
			    json_object_get_string(desc),
			    json_object_get_string(cls));
		else
			snprintf(err, sizeof err, "%s: %s", c->what,
			    json_object_to_json_string(r));
		c->fn(q, NULL, err, c->arg);
	}
	free(c->what);
	free(c);
}

static void
qmpc_negotiated(struct qmpc *q, json_object *r, const char *err, void *arg)
{
	if (r == NULL) {
		if (q->state != QMPC_DEAD)
			qmpc_fail(q, "%s", err);
		return;
	}
	q->state = QMPC_READY;
	if (q->ops->ready != NULL)
		q->ops->ready(q, q->arg);
}

/* Fail every pending command with why, oldest first. */
static void
qmpc_flush(struct qmpc *q, const char *why)
{
	struct qmpc_cmd *c;

	while ((c = TAILQ_FIRST(&q->cmds)) != NULL) {
		TAILQ_REMOVE(&q->cmds, c, entry);
		c->fn(q, NULL, why, c->arg);
		free(c->what);
		free(c);
	}
}

/* The connection is over: pending commands, then the owner, are told. */
static void
qmpc_fail(struct qmpc *q, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (q->state == QMPC_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	q->state = QMPC_DEAD;
	bufferevent_disable(q->bev, EV_READ | EV_WRITE);
	evtimer_del(q->timer);
	q->busy++;
	qmpc_flush(q, why);
	if (!q->zombie && q->ops->lost != NULL)
		q->ops->lost(q, why, q->arg);
	q->busy--;
}

/* Freed from inside a callback: really freed once it returned. */
static void
qmpc_release(struct qmpc *q)
{
	if (q->zombie && q->busy == 0)
		qmpc_destroy(q);
}

void
qmpc_free(struct qmpc *q)
{
	if (q == NULL || q->zombie)
		return;
	q->zombie = true;
	if (q->busy == 0)
		qmpc_destroy(q);
}

static void
qmpc_destroy(struct qmpc *q)
{
	q->busy++;
	q->state = QMPC_DEAD;
	qmpc_flush(q, "the monitor connection was closed");
	bufferevent_free(q->bev);
	json_tokener_free(q->tok);
	event_free(q->timer);
	free(q);
}

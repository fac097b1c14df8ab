/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The asynchronous QMP client (host-daemon/qmpc.c) through a real event
 * base and a socketpair: the test plays QEMU on the other end, writing
 * greetings, replies and events in pieces, out of order, or not at all,
 * and reads the commands the client sends. Each case gets a fresh
 * fixture; the teardown is the one cleanup path.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "unit.h"
#include <event2/event.h>
#include <json-c/json.h>

#include "freehintd.h"
#include "hostd_fixture.h"

#define MAX_SEEN 16

struct event_base *ev_base;
struct config *conf;

struct fx {
	struct event_base *base;
	int fd; /* QEMU's end */
	struct qmpc *q;
	struct fixture_lines rx; /* what the client wrote, unread */
	int ready;
	int nevents;
	char events[MAX_SEEN][32];
	int lost;
	char why[256];
	int free_in_lost;
	/* Replies, by the order they came. */
	int nreplies;
	char replies[MAX_SEEN][64];
	int free_in_reply;
};

static int setup(void **);
static int teardown(void **);
static void on_ready(struct qmpc *, void *);
static void on_event(struct qmpc *, const char *, json_object *, void *);
static void on_lost(struct qmpc *, const char *, void *);
static void on_reply(struct qmpc *, json_object *, const char *, void *);
static void put(struct fx *, const char *);
static json_object *take(struct fx *);
static uint64_t negotiate(struct fx *);

static const struct qmpc_ops ops = { on_ready, on_event, on_lost };

/* Turn the loop until cond holds, for at most about five seconds. */
#define SPIN_UNTIL(f, cond) \
	UNIT_SPIN_UNTIL(event_base_loop((f)->base, EVLOOP_NONBLOCK), 5000, cond)

static void
on_ready(struct qmpc *q, void *arg)
{
	struct fx *f = arg;

	f->ready++;
}

static void
on_event(struct qmpc *q, const char *name, json_object *data, void *arg)
{
	struct fx *f = arg;

	if (f->nevents < MAX_SEEN)
		snprintf(
		    f->events[f->nevents++], sizeof f->events[0], "%s", name);
}

static void
on_lost(struct qmpc *q, const char *why, void *arg)
{
	struct fx *f = arg;

	f->lost++;
	snprintf(f->why, sizeof f->why, "%s", why);
	if (f->free_in_lost) {
		qmpc_free(f->q);
		f->q = NULL;
	}
}

/* arg is the tag the test gave the command; the fixture is global. */
static struct fx *cur;

static void
on_reply(struct qmpc *q, json_object *r, const char *err, void *arg)
{
	struct fx *f = cur;

	if (f->nreplies < MAX_SEEN)
		snprintf(f->replies[f->nreplies++], sizeof f->replies[0],
		    "%s=%s", (const char *)arg,
		    r != NULL ? json_object_to_json_string_ext(
		                    r, JSON_C_TO_STRING_PLAIN)
		              : err);
	if (f->free_in_reply && f->q != NULL) {
		qmpc_free(f->q);
		f->q = NULL;
	}
}

static int
setup(void **state)
{
	struct fx *f;
	int sv[2];

	log_init("test_hostd_qmpc", 1, 0);
	f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	f->fd = sv[1];
	f->q = qmpc_new(f->base, sv[0], 300, &ops, f);
	assert_non_null(f->q);
	cur = f;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	qmpc_free(f->q);
	close(f->fd);
	event_base_free(f->base);
	free(f);
	cur = NULL;
	return 0;
}

static void
put(struct fx *f, const char *s)
{
	assert_int_equal(write(f->fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* The next command the client wrote, one per line. */
static json_object *
take(struct fx *f)
{
	return fixture_take_json(f->base, f->fd, &f->rx);
}

static uint64_t
cmd_id(json_object *o, const char *want)
{
	json_object *ex, *id;

	assert_true(json_object_object_get_ex(o, "execute", &ex));
	assert_string_equal(json_object_get_string(ex), want);
	assert_true(json_object_object_get_ex(o, "id", &id));
	return json_object_get_uint64(id);
}

/* The id of the next command the client wrote, which must be want. */
static uint64_t
take_id(struct fx *f, const char *want)
{
	json_object *o = take(f);
	uint64_t id = cmd_id(o, want);

	json_object_put(o);
	return id;
}

/* Greeting in pieces, then the capabilities negotiation. */
static uint64_t
negotiate(struct fx *f)
{
	char buf[128];
	uint64_t id;

	put(f, "{\"QMP\": {\"version\": {\"qemu\": ");
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	put(f, "{\"micro\": 0, \"minor\": 2, \"major\": 7}}, \"capabil");
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	put(f, "ities\": [\"oob\"]}}\r\n");
	id = take_id(f, "qmp_capabilities");
	assert_int_equal(f->ready, 0);
	snprintf(buf, sizeof buf, "{\"return\": {}, \"id\": %llu}\r\n",
	    (unsigned long long)id);
	put(f, buf);
	SPIN_UNTIL(f, f->ready == 1);
	assert_true(qmpc_ready(f->q));
	assert_int_equal(qmpc_pid(f->q), getpid());
	return id;
}

static void
test_greeting_in_pieces(void **state)
{
	struct fx *f = *state;

	assert_false(qmpc_ready(f->q));
	assert_int_equal(
	    qmpc_send(f->q, "query-status", NULL, on_reply, "early"), -1);
	negotiate(f);
	assert_int_equal(f->lost, 0);
}

/* Two commands answered in the opposite order, an event between. */
static void
test_replies_matched_by_id(void **state)
{
	struct fx *f = *state;
	uint64_t a, b, cap;
	char buf[256];

	cap = negotiate(f);
	assert_int_equal(qmpc_send(f->q, "query-a", NULL, on_reply, "a"), 0);
	assert_int_equal(qmpc_send(f->q, "query-b", NULL, on_reply, "b"), 0);
	a = take_id(f, "query-a");
	b = take_id(f, "query-b");
	assert_true(a != b && a != cap && b != cap);
	/* A reply to nothing we sent, and one without an id: ignored. */
	snprintf(buf, sizeof buf,
	    "{\"return\": 9, \"id\": 999}{\"return\": 8}\r\n"
	    "{\"return\": {\"x\": 2}, \"id\": %llu}\r\n"
	    "{\"event\": \"RESET\", \"data\": {}, \"timestamp\": {}}",
	    (unsigned long long)b);
	put(f, buf);
	SPIN_UNTIL(f, f->nreplies == 1 && f->nevents == 1);
	assert_string_equal(f->replies[0], "b={\"x\":2}");
	assert_string_equal(f->events[0], "RESET");
	/* The reply to a, split in the middle of its id. */
	snprintf(buf, sizeof buf,
	    "{\"error\": {\"class\": \"GenericError\", "
	    "\"desc\": \"no\"}, \"id\": %llu}\r\n",
	    (unsigned long long)a);
	put(f, "\r\n");
	put(f,
	    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, "
	    "\"id\": ");
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	snprintf(buf, sizeof buf, "%llu}\r\n", (unsigned long long)a);
	put(f, buf);
	SPIN_UNTIL(f, f->nreplies == 2);
	assert_string_equal(f->replies[1], "a=query-a: no (GenericError)");
	assert_int_equal(f->lost, 0);
}

/* A command not answered in time fails, and so does the connection. */
static void
test_timeout(void **state)
{
	struct fx *f = *state;
	json_object *o;

	negotiate(f);
	assert_int_equal(qmpc_send(f->q, "stuck", NULL, on_reply, "s"), 0);
	assert_int_equal(qmpc_send(f->q, "later", NULL, on_reply, "l"), 0);
	o = take(f);
	json_object_put(o);
	SPIN_UNTIL(f, f->lost == 1);
	assert_non_null(strstr(f->why, "did not answer 'stuck' within 300"));
	/* Both pending commands heard of it, before the owner. */
	assert_int_equal(f->nreplies, 2);
	assert_non_null(strstr(f->replies[0], "s=the monitor did not answer"));
	assert_non_null(strstr(f->replies[1], "l=the monitor did not answer"));
	assert_false(qmpc_ready(f->q));
	assert_int_equal(qmpc_send(f->q, "after", NULL, on_reply, "x"), -1);
}

static void
test_no_greeting(void **state)
{
	struct fx *f = *state;

	f->free_in_lost = 1;
	SPIN_UNTIL(f, f->lost == 1);
	assert_null(f->q);
	assert_non_null(strstr(f->why, "did not greet within 300 ms"));
}

static void
test_not_qmp(void **state)
{
	struct fx *f = *state;

	put(f, "{\"hello\": 1}\r\n");
	SPIN_UNTIL(f, f->lost == 1);
	assert_string_equal(f->why, "monitor: no QMP greeting");
}

static void
test_garbage(void **state)
{
	struct fx *f = *state;

	negotiate(f);
	assert_int_equal(qmpc_send(f->q, "q", NULL, on_reply, "q"), 0);
	put(f, "{\"return\": }\r\n");
	SPIN_UNTIL(f, f->lost == 1);
	assert_non_null(strstr(f->why, "malformed JSON"));
	assert_int_equal(f->nreplies, 1);
}

static void
test_nul_byte(void **state)
{
	struct fx *f = *state;

	assert_int_equal(write(f->fd, "\0{}", 3), 3);
	SPIN_UNTIL(f, f->lost == 1);
	assert_non_null(strstr(f->why, "monitor:"));
}

static void
test_oversized(void **state)
{
	struct fx *f = *state;
	static char big[65536];
	int i;

	negotiate(f);
	memset(big, 'a', sizeof big - 1);
	put(f, "{\"return\": \"");
	/* 4 MiB and a bit of a string that never ends. */
	for (i = 0; i < 66 && f->lost == 0; i++) {
		(void)!write(f->fd, big, sizeof big - 1);
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	}
	SPIN_UNTIL(f, f->lost == 1);
	assert_non_null(strstr(f->why, "message over"));
}

static void
test_eof(void **state)
{
	struct fx *f = *state;

	negotiate(f);
	assert_int_equal(qmpc_send(f->q, "q", NULL, on_reply, "q"), 0);
	shutdown(f->fd, SHUT_WR);
	SPIN_UNTIL(f, f->lost == 1);
	assert_string_equal(f->why, "the monitor closed the connection");
	assert_string_equal(
	    f->replies[0], "q=the monitor closed the connection");
}

/* Negotiated, then commands "a" and "b" out, whose replies on_reply
 * records as "a=..." and "b=...". */
static void
send_two(struct fx *f)
{
	negotiate(f);
	assert_int_equal(qmpc_send(f->q, "a", NULL, on_reply, "a"), 0);
	assert_int_equal(qmpc_send(f->q, "b", NULL, on_reply, "b"), 0);
}

/* send_two's replies came, a then b, and the client was not lost. */
static void
replies_two(struct fx *f, const char *a, const char *b)
{
	assert_int_equal(f->nreplies, 2);
	assert_string_equal(f->replies[0], a);
	assert_string_equal(f->replies[1], b);
	assert_int_equal(f->lost, 0);
}

/* Freed with commands out: each gets its callback, then nothing more. */
static void
test_free_pending(void **state)
{
	struct fx *f = *state;

	send_two(f);
	qmpc_free(f->q);
	f->q = NULL;
	replies_two(f, "a=the monitor connection was closed",
	    "b=the monitor connection was closed");
}

/* Freed from inside a reply, with more replies in the same read. */
static void
test_free_in_reply(void **state)
{
	struct fx *f = *state;
	uint64_t a, b;
	char buf[256];

	send_two(f);
	a = take_id(f, "a");
	b = take_id(f, "b");
	f->free_in_reply = 1;
	snprintf(buf, sizeof buf,
	    "{\"return\": 1, \"id\": %llu}{\"return\": 2, \"id\": %llu}",
	    (unsigned long long)a, (unsigned long long)b);
	put(f, buf);
	SPIN_UNTIL(f, f->q == NULL);
	replies_two(f, "a=1", "b=the monitor connection was closed");
}

/* qmpc_connect: no socket, and a listener whose backlog is full. */
static void
test_connect_fails_at_once(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sun;
	char dir[] = "/tmp/fh-qmpc.XXXXXX", path[64], err[256];
	int l, c[8], n = 0, i;
	struct qmpc *q;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/qmp", dir);
	q = qmpc_connect(f->base, path, 300, &ops, f, err, sizeof err);
	assert_null(q);
	assert_non_null(strstr(err, "No such file"));

	assert_int_equal(fh_unix_addr(&sun, path), 0);
	/* Bound and listening, with a backlog of none. */
	l = fh_unix_listen(path, 0, 0);
	assert_int_not_equal(l, -1);
	/* Fill the backlog: connections nobody accepts. */
	for (i = 0; i < 8; i++) {
		c[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(c[n], (struct sockaddr *)&sun, sizeof sun) != 0) {
			close(c[n]);
			break;
		}
		n++;
	}
	assert_true(n < 8);
	q = qmpc_connect(f->base, path, 300, &ops, f, err, sizeof err);
	assert_null(q);
	assert_non_null(strstr(err, "listen backlog full"));
	while (n > 0)
		close(c[--n]);
	close(l);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		UNIT_FX(test_greeting_in_pieces),
		UNIT_FX(test_replies_matched_by_id),
		UNIT_FX(test_timeout),
		UNIT_FX(test_no_greeting),
		UNIT_FX(test_not_qmp),
		UNIT_FX(test_garbage),
		UNIT_FX(test_nul_byte),
		UNIT_FX(test_oversized),
		UNIT_FX(test_eof),
		UNIT_FX(test_free_pending),
		UNIT_FX(test_free_in_reply),
		UNIT_FX(test_connect_fails_at_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

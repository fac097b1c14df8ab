/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The static VM source: --vm name=NAME,qmp=PATH[,channel=PATH][,cid=N].
 * A small QMP client on the VM's monitor socket: it finds the QEMU
 * process (SO_PEERCRED) and runs read-only human monitor commands for the
 * registry, synchronously: they are few, and only when a guest connects.
 * Migrations come as MIGRATION events, which QEMU sends once the "events"
 * migration capability is on; the socket is watched by the event loop, so
 * a thousand idle monitors cost nothing. If QEMU refuses the capability
 * (it does while a migration runs), query-migrate is polled instead until
 * it can be set. QMP takes one client per socket, so the VM needs a
 * monitor of its own for us.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "freehintd.h"

#define QMP_TIMEOUT_MS 5000
#define QMP_POLL_MS    200
#define QMP_LINE_MAX   (4 * 1024 * 1024)

struct qmp {
	struct vm_conf vc;
	int fd;
	pid_t pid;
	char *buf;
	size_t len;
	struct event *ev; /* reconnect timer; the poll when !events */
	struct event *rev; /* the monitor socket, for events */
	bool events; /* MIGRATION events on; else poll */
	bool migrating;
	char status[32]; /* the last migration status QEMU gave */
	bool announced; /* the registry knows this VM */
	char err[256];
	LIST_ENTRY(qmp) entry;
};

static LIST_HEAD(, qmp) qmps = LIST_HEAD_INITIALIZER(qmps);

static int qmp_connect(struct qmp *);
static void qmp_disconnect(struct qmp *);
static int qmp_readline(struct qmp *, char **);
static int qmp_write(struct qmp *, const char *, size_t);
static int qmp_exec(struct qmp *, json_object *, json_object **);
static void qmp_note_event(struct qmp *, json_object *);
static int qmp_hmp(void *, const char *, char **);
static void qmp_tick(evutil_socket_t, short, void *);
static void qmp_readable(evutil_socket_t, short, void *);
static void qmp_announce(struct qmp *);
static void qmp_set_events(struct qmp *);
static void qmp_poll_migration(struct qmp *);
static void qmp_apply_migration(struct qmp *);
static void qmp_lost(struct qmp *);
static bool same_conf(const struct vm_conf *, const struct vm_conf *);
static void qmp_free(struct qmp *);

/* "name=NAME,qmp=PATH[,channel=PATH][,cid=N]" */
int
qmp_parse_vm(const char *arg, struct vm_conf *vc, char *err, size_t errlen)
{
	char *s, *tok, *save = NULL, *val;
	uint64_t cid;
	int rc = -1;

	memset(vc, 0, sizeof *vc);
	s = xstrdup(arg);
	for (tok = strtok_r(s, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if ((val = strchr(tok, '=')) == NULL || val[1] == '\0') {
			snprintf(err, errlen, "vm: '%s' is not key=value", tok);
			goto out;
		}
		*val++ = '\0';
		if (strcmp(tok, "name") == 0 && vc->name == NULL)
			vc->name = xstrdup(val);
		else if (strcmp(tok, "qmp") == 0 && vc->qmp == NULL)
			vc->qmp = xstrdup(val);
		else if (strcmp(tok, "channel") == 0 && vc->channel == NULL)
			vc->channel = xstrdup(val);
		else if (strcmp(tok, "cid") == 0 &&
		    fh_parse_u64(val, 3, UINT32_MAX - 1, &cid) == 0)
			vc->cid = (uint32_t)cid;
		else {
			snprintf(err, errlen, "vm: bad or repeated '%s'", tok);
			goto out;
		}
	}
	if (vc->name == NULL || vc->qmp == NULL) {
		snprintf(err, errlen, "vm: name= and qmp= are required");
		goto out;
	}
	rc = 0;
out:
	free(s);
	if (rc != 0) {
		free(vc->name);
		free(vc->qmp);
		free(vc->channel);
		memset(vc, 0, sizeof *vc);
	}
	return rc;
}

int
qmp_static_start(const struct vm_conf *vc)
{
	struct qmp *q;

	q = xcalloc(1, sizeof *q);
	q->vc.name = xstrdup(vc->name);
	q->vc.qmp = xstrdup(vc->qmp);
	q->vc.channel = vc->channel ? xstrdup(vc->channel) : NULL;
	q->vc.cid = vc->cid;
	q->fd = -1;
	q->ev = event_new(ev_base, -1, EV_PERSIST, qmp_tick, q);
	if (q->ev == NULL)
		fatalx("%s: event_new", __func__);
	LIST_INSERT_HEAD(&qmps, q, entry);
	qmp_tick(-1, 0, q);
	{
		struct timeval tv = { 0, QMP_POLL_MS * 1000 };

		event_add(q->ev, &tv);
	}
	return 0;
}

static bool
same_conf(const struct vm_conf *a, const struct vm_conf *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->qmp, b->qmp) == 0 &&
	    a->cid == b->cid &&
	    ((a->channel == NULL && b->channel == NULL) ||
	        (a->channel != NULL && b->channel != NULL &&
	            strcmp(a->channel, b->channel) == 0));
}

static void
qmp_free(struct qmp *q)
{
	LIST_REMOVE(q, entry);
	vm_source_remove(q->vc.name);
	qmp_disconnect(q);
	event_free(q->ev);
	free(q->vc.name);
	free(q->vc.qmp);
	free(q->vc.channel);
	free(q);
}

/*
 * SIGHUP: VMs whose line did not change keep their monitor and agent;
 * the others are removed, and new ones started.
 */
void
qmp_static_reload(const struct vm_conf_list *list)
{
	const struct vm_conf *vc;
	struct qmp *q, *next;

	for (q = LIST_FIRST(&qmps); q != NULL; q = next) {
		next = LIST_NEXT(q, entry);
		TAILQ_FOREACH(vc, list, entry)
		if (same_conf(&q->vc, vc))
			break;
		if (vc == NULL)
			qmp_free(q);
	}
	TAILQ_FOREACH(vc, list, entry)
	{
		LIST_FOREACH(q, &qmps, entry)
		if (same_conf(&q->vc, vc))
			break;
		if (q == NULL)
			qmp_static_start(vc);
	}
}

void
qmp_static_stop_all(void)
{
	struct qmp *q;

	while ((q = LIST_FIRST(&qmps)) != NULL)
		qmp_free(q);
}

static void
qmp_disconnect(struct qmp *q)
{
	if (q->rev != NULL)
		event_free(q->rev);
	q->rev = NULL;
	q->events = false;
	if (q->fd != -1)
		close(q->fd);
	q->fd = -1;
	q->len = 0;
	free(q->buf);
	q->buf = NULL;
}

/* One line from QEMU, within the timeout; *line points into q->buf. */
static int
qmp_readline(struct qmp *q, char **line)
{
	struct pollfd pfd;
	char *nl;
	ssize_t n;
	size_t used;

	for (;;) {
		if (q->buf != NULL &&
		    (nl = memchr(q->buf, '\n', q->len)) != NULL) {
			*nl = '\0';
			*line = xstrdup(q->buf);
			used = (size_t)(nl - q->buf) + 1;
			memmove(q->buf, nl + 1, q->len - used);
			q->len -= used;
			return 0;
		}
		if (q->len >= QMP_LINE_MAX) {
			snprintf(q->err, sizeof q->err, "QMP line too long");
			return -1;
		}
		pfd.fd = q->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, QMP_TIMEOUT_MS) != 1) {
			snprintf(q->err, sizeof q->err, "QMP timeout");
			return -1;
		}
		q->buf = xreallocarray(q->buf, 1, q->len + 65536 + 1);
		n = read(q->fd, q->buf + q->len, 65536);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			snprintf(q->err, sizeof q->err, "QMP closed");
			return -1;
		}
		q->len += (size_t)n;
	}
}

/* The socket is nonblocking (the event loop reads it too): wait to write. */
static int
qmp_write(struct qmp *q, const char *s, size_t len)
{
	struct pollfd pfd;
	ssize_t n;

	while (len > 0) {
		n = write(q->fd, s, len);
		if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
			pfd.fd = q->fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, QMP_TIMEOUT_MS) != 1) {
				snprintf(q->err, sizeof q->err, "QMP timeout");
				return -1;
			}
			continue;
		}
		if (n <= 0) {
			snprintf(q->err, sizeof q->err, "QMP write: %s",
			    n == 0 ? "closed" : strerror(errno));
			return -1;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send cmd (consumed); *ret gets the "return" value (a reference). */
static int
qmp_exec(struct qmp *q, json_object *cmd, json_object **ret)
{
	const char *s;
	json_object *o, *r;
	char *line;
	size_t len;

	s = json_object_to_json_string_ext(cmd, JSON_C_TO_STRING_PLAIN);
	len = strlen(s);
	if (qmp_write(q, s, len) != 0 || qmp_write(q, "\n", 1) != 0) {
		json_object_put(cmd);
		return -1;
	}
	json_object_put(cmd);
	for (;;) {
		if (qmp_readline(q, &line) != 0)
			return -1;
		o = json_tokener_parse(line);
		free(line);
		if (o == NULL)
			continue;
		if (json_object_object_get_ex(o, "return", &r)) {
			*ret = json_object_get(r);
			json_object_put(o);
			return 0;
		}
		if (json_object_object_get_ex(o, "error", &r)) {
			snprintf(q->err, sizeof q->err, "QMP error: %s",
			    json_object_to_json_string(r));
			json_object_put(o);
			return -1;
		}
		qmp_note_event(q, o);
		json_object_put(o);
	}
}

/*
 * A MIGRATION event only records the status: it may arrive in the middle
 * of a registry query, so it is acted on from the event loop. Statuses
 * that pass while we are busy collapse into the last, which is what
 * matters (a migration that already ended needs no hint pass).
 */
static void
qmp_note_event(struct qmp *q, json_object *o)
{
	json_object *ev, *data, *st;

	if (!json_object_object_get_ex(o, "event", &ev) ||
	    strcmp(json_object_get_string(ev), "MIGRATION") != 0 ||
	    !json_object_object_get_ex(o, "data", &data) ||
	    !json_object_object_get_ex(data, "status", &st) ||
	    !json_object_is_type(st, json_type_string))
		return;
	snprintf(q->status, sizeof q->status, "%s", json_object_get_string(st));
	if (q->rev != NULL)
		event_active(q->rev, EV_TIMEOUT, 0);
}

static json_object *
qmp_cmd(const char *execute)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "execute", json_object_new_string(execute));
	return o;
}

static int
qmp_connect(struct qmp *q)
{
	struct sockaddr_un sun;
	struct ucred cred;
	socklen_t clen = sizeof cred;
	json_object *r;
	char *line;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(q->vc.qmp) >= sizeof sun.sun_path) {
		snprintf(q->err, sizeof q->err, "QMP path too long");
		return -1;
	}
	strcpy(sun.sun_path, q->vc.qmp);
	if ((q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(q->fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		snprintf(q->err, sizeof q->err, "QMP %s: %s", q->vc.qmp,
		    strerror(errno));
		qmp_disconnect(q);
		return -1;
	}
	if (getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    cred.pid <= 0) {
		snprintf(
		    q->err, sizeof q->err, "SO_PEERCRED: %s", strerror(errno));
		qmp_disconnect(q);
		return -1;
	}
	q->pid = cred.pid;
	if (fcntl(q->fd, F_SETFL, fcntl(q->fd, F_GETFL) | O_NONBLOCK) == -1) {
		snprintf(
		    q->err, sizeof q->err, "O_NONBLOCK: %s", strerror(errno));
		qmp_disconnect(q);
		return -1;
	}
	/* The greeting, then capabilities negotiation. */
	if (qmp_readline(q, &line) != 0) {
		qmp_disconnect(q);
		return -1;
	}
	free(line);
	if (qmp_exec(q, qmp_cmd("qmp_capabilities"), &r) != 0) {
		qmp_disconnect(q);
		return -1;
	}
	json_object_put(r);
	q->rev =
	    event_new(ev_base, q->fd, EV_READ | EV_PERSIST, qmp_readable, q);
	if (q->rev == NULL || event_add(q->rev, NULL) != 0)
		fatalx("%s: event", __func__);
	return 0;
}

static int
qmp_hmp(void *ctx, const char *cmdline, char **out)
{
	struct qmp *q = ctx;
	json_object *cmd, *args, *r;

	*out = NULL;
	if (q->fd == -1)
		return -1;
	cmd = qmp_cmd("human-monitor-command");
	args = json_object_new_object();
	json_object_object_add(
	    args, "command-line", json_object_new_string(cmdline));
	json_object_object_add(cmd, "arguments", args);
	if (qmp_exec(q, cmd, &r) != 0) {
		log_warnx("vm %s: %s: %s", q->vc.name, cmdline, q->err);
		return -1;
	}
	if (!json_object_is_type(r, json_type_string)) {
		json_object_put(r);
		return -1;
	}
	*out = xstrdup(json_object_get_string(r));
	json_object_put(r);
	return 0;
}

static void
qmp_announce(struct qmp *q)
{
	struct vm_desc d;

	memset(&d, 0, sizeof d);
	d.name = q->vc.name;
	d.source = "static";
	d.cid = q->vc.cid;
	d.channel = q->vc.channel;
	d.qemu_pid = q->fd != -1 ? q->pid : 0;
	d.unservable = q->fd == -1 ? q->err : NULL;
	if (vm_source_add(&d, qmp_hmp, q) == 0)
		q->announced = true;
}

/*
 * Ask for MIGRATION events. QEMU refuses while a migration runs; then
 * query-migrate is polled, and the capability asked for again once the
 * migration is over.
 */
static void
qmp_set_events(struct qmp *q)
{
	json_object *cmd, *args, *caps, *cap, *r;

	cmd = qmp_cmd("migrate-set-capabilities");
	args = json_object_new_object();
	caps = json_object_new_array();
	cap = json_object_new_object();
	json_object_object_add(
	    cap, "capability", json_object_new_string("events"));
	json_object_object_add(cap, "state", json_object_new_boolean(1));
	json_object_array_add(caps, cap);
	json_object_object_add(args, "capabilities", caps);
	json_object_object_add(cmd, "arguments", args);
	if (qmp_exec(q, cmd, &r) != 0) {
		log_info("vm %s: no migration events (%s): polling "
		         "query-migrate",
		    q->vc.name, q->err);
		return;
	}
	json_object_put(r);
	q->events = true;
}

static bool
status_active(const char *s)
{
	return strcmp(s, "setup") == 0 || strcmp(s, "active") == 0 ||
	    strcmp(s, "pre-switchover") == 0 || strcmp(s, "device") == 0 ||
	    strcmp(s, "postcopy-active") == 0 ||
	    strcmp(s, "postcopy-paused") == 0 ||
	    strcmp(s, "postcopy-recover") == 0 || strcmp(s, "wait-unplug") == 0;
}

/* query-migrate: at connect (a migration may be running), and when polling. */
static void
qmp_poll_migration(struct qmp *q)
{
	json_object *r, *st;

	if (qmp_exec(q, qmp_cmd("query-migrate"), &r) != 0) {
		qmp_lost(q);
		return;
	}
	/* No "status" before the first migration: none is running. */
	if (json_object_object_get_ex(r, "status", &st) &&
	    json_object_is_type(st, json_type_string))
		snprintf(q->status, sizeof q->status, "%s",
		    json_object_get_string(st));
	else
		q->status[0] = '\0';
	json_object_put(r);
	qmp_apply_migration(q);
}

static void
qmp_apply_migration(struct qmp *q)
{
	bool active = status_active(q->status);

	if (active && !q->migrating) {
		q->migrating = true;
		vm_source_migration(q->vc.name, VM_MIGRATION_STARTED);
	} else if (!active && q->migrating) {
		q->migrating = false;
		vm_source_migration(q->vc.name, VM_MIGRATION_FINISHED);
	}
}

/* The monitor went away (QEMU stopped or restarted): announce, retry. */
static void
qmp_lost(struct qmp *q)
{
	log_warnx("vm %s: %s", q->vc.name, q->err);
	qmp_disconnect(q);
	if (q->migrating) {
		q->migrating = false;
		vm_source_migration(q->vc.name, VM_MIGRATION_FINISHED);
	}
	qmp_announce(q);
}

/* Events (and nothing else: we send no command from here) from QEMU. */
static void
qmp_readable(evutil_socket_t fd, short what, void *arg)
{
	struct qmp *q = arg;
	json_object *o;
	char *nl;
	ssize_t n;
	size_t used;

	if (what & EV_READ) {
		if (q->len >= QMP_LINE_MAX) {
			snprintf(q->err, sizeof q->err, "QMP line too long");
			qmp_lost(q);
			return;
		}
		q->buf = xreallocarray(q->buf, 1, q->len + 65536 + 1);
		n = read(fd, q->buf + q->len, 65536);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			snprintf(q->err, sizeof q->err, "QMP closed");
			qmp_lost(q);
			return;
		}
		q->len += (size_t)n;
		while ((nl = memchr(q->buf, '\n', q->len)) != NULL) {
			*nl = '\0';
			if ((o = json_tokener_parse(q->buf)) != NULL) {
				qmp_note_event(q, o);
				json_object_put(o);
			}
			used = (size_t)(nl - q->buf) + 1;
			memmove(q->buf, nl + 1, q->len - used);
			q->len -= used;
		}
	}
	qmp_apply_migration(q);
}

static void
qmp_tick(evutil_socket_t unused, short what, void *arg)
{
	struct qmp *q = arg;
	bool was;

	if (q->fd == -1) {
		if (qmp_connect(q) != 0) {
			if (!q->announced)
				qmp_announce(q);
			return;
		}
		log_info("vm %s: monitor %s, qemu pid %d", q->vc.name,
		    q->vc.qmp, (int)q->pid);
		qmp_announce(q);
		qmp_set_events(q);
		if (q->fd != -1)
			qmp_poll_migration(q);
		return;
	}
	if (q->events)
		return;
	was = q->migrating;
	qmp_poll_migration(q);
	if (q->fd != -1 && was && !q->migrating)
		qmp_set_events(q);
}

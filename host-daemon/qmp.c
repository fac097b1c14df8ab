/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The static VM source: --vm name=NAME,qmp=PATH[,channel=PATH][,cid=N].
 * Each VM's monitor is an asynchronous QMP client (qmpc.c): freehintd
 * never waits for QEMU. A monitor that cannot be reached, does not greet
 * or does not answer a command in time makes its VM record-only, with
 * the reason in freehintctl status, and is connected again with backoff.
 * The QEMU process is the one that listens on the socket (SO_PEERCRED),
 * and it must be a QEMU. The registry's human monitor commands (its
 * memory map) go through the same client. Migrations come as MIGRATION
 * events, which QEMU sends once the "events" migration capability is on.
 * If QEMU refuses the capability (it does while a migration runs),
 * query-migrate is polled instead until it can be set. QMP takes one
 * client per socket, so the VM needs a monitor of its own for us.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "freehintd.h"

/* A monitor that does not greet or answer within this has failed. */
#define QMP_TIMEOUT_MS     5000
#define QMP_POLL_MS        200
#define QMP_BACKOFF_MIN_MS 200
#define QMP_BACKOFF_MAX_MS 5000

struct qmp {
	struct vm_conf vc;
	struct qmpc *c; /* NULL while disconnected */
	pid_t pid;
	struct event *retry; /* the next connection attempt */
	struct event *poll; /* query-migrate, while !events */
	int backoff_ms;
	bool events; /* MIGRATION events on; else poll */
	bool polling; /* a query-migrate is out */
	bool migrating;
	bool postcopy; /* this migration reached postcopy */
	char status[32]; /* the last migration status QEMU gave */
	bool announced; /* the registry knows this VM */
	char announced_why[256]; /* as what ("" served) */
	char err[256];
	LIST_ENTRY(qmp) entry;
};

/* A bandwidth change of the registry's, in flight. */
struct qmp_speed_req {
	struct qmp *q;
	vm_speed_done done;
	void *arg;
	int64_t was; /* from query-migrate-parameters; -1 unknown */
	uint64_t bps;
	uint64_t ceiling; /* set only when was is at most this */
};

/* A human monitor command of the registry's, in flight. */
struct qmp_hmp_req {
	vm_hmp_done done;
	void *arg;
};

struct qmp_event {
	const char *name;
	void (*fn)(struct qmp *, json_object *);
};

static LIST_HEAD(, qmp) qmps = LIST_HEAD_INITIALIZER(qmps);

static void qmp_connect(evutil_socket_t, short, void *);
static void qmp_schedule(struct qmp *);
static void qmp_ready(struct qmpc *, void *);
static void qmp_event(struct qmpc *, const char *, json_object *, void *);
static void qmp_lost(struct qmpc *, const char *, void *);
static void qmp_ev_migration(struct qmp *, json_object *);
static void qmp_ev_reset(struct qmp *, json_object *);
static void qmp_ev_resume(struct qmp *, json_object *);
static void qmp_ev_stop(struct qmp *, json_object *);
static const char *qmp_check_pid(struct qmp *, char *, size_t);
static void qmp_hmp(void *, const char *, vm_hmp_done, void *);
static void qmp_hmp_reply(struct qmpc *, json_object *, const char *, void *);
static void qmp_speed(void *, uint64_t, uint64_t, vm_speed_done, void *);
static void qmp_speed_query_reply(
    struct qmpc *, json_object *, const char *, void *);
static void qmp_speed_set_reply(
    struct qmpc *, json_object *, const char *, void *);
static void qmp_announce(struct qmp *, const char *);
static void qmp_set_events(struct qmp *);
static void qmp_events_reply(
    struct qmpc *, json_object *, const char *, void *);
static void qmp_poll(evutil_socket_t, short, void *);
static void qmp_poll_reply(struct qmpc *, json_object *, const char *, void *);
static void qmp_apply_migration(struct qmp *);
static bool same_conf(const struct vm_conf *, const struct vm_conf *);
static void qmp_free(struct qmp *);

static const struct qmpc_ops qmp_ops = { qmp_ready, qmp_event, qmp_lost };

/* QEMU's events that matter here; the others are ignored. */
static const struct qmp_event qmp_events[] = {
	{ "MIGRATION", qmp_ev_migration },
	{ "RESET", qmp_ev_reset },
	/* Each may change guest RAM or what the firmware lets us see. */
	{ "RESUME", qmp_ev_resume },
	{ "STOP", qmp_ev_stop },
	{ "MEMORY_DEVICE_SIZE_CHANGE", qmp_ev_reset },
	{ "DEVICE_DELETED", qmp_ev_reset },
};

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
	/* The name goes into every log line and status row about the VM. */
	for (val = vc->name; *val != '\0'; val++)
		if ((unsigned char)*val < 0x20 || *val == 0x7f) {
			snprintf(err, errlen,
			    "vm: name has a control character (0x%02x)",
			    (unsigned char)*val);
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
	q->backoff_ms = QMP_BACKOFF_MIN_MS;
	q->retry = evtimer_new(ev_base, qmp_connect, q);
	q->poll = event_new(ev_base, -1, EV_PERSIST, qmp_poll, q);
	if (q->retry == NULL || q->poll == NULL)
		fatalx("%s: event_new", __func__);
	LIST_INSERT_HEAD(&qmps, q, entry);
	/* Never blocks: a connection that cannot be made at once fails. */
	qmp_connect(-1, 0, q);
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
	struct qmpc *c = q->c;

	LIST_REMOVE(q, entry);
	vm_source_remove(q->vc.name);
	q->c = NULL;
	qmpc_free(c);
	event_free(q->retry);
	event_free(q->poll);
	free(q->vc.name);
	free(q->vc.qmp);
	free(q->vc.channel);
	free(q);
}

static void
qmp_schedule(struct qmp *q)
{
	struct timeval tv;

	tv = fh_ms_timeval(q->backoff_ms);
	evtimer_add(q->retry, &tv);
	q->backoff_ms *= 2;
	if (q->backoff_ms > QMP_BACKOFF_MAX_MS)
		q->backoff_ms = QMP_BACKOFF_MAX_MS;
}

/* The registry hears of every change of what is wrong, once. */
static void
qmp_announce(struct qmp *q, const char *why)
{
	struct vm_desc d;

	if (why != NULL && q->announced && strcmp(q->announced_why, why) == 0)
		return;
	memset(&d, 0, sizeof d);
	d.name = q->vc.name;
	d.source = "static";
	d.cid = q->vc.cid;
	d.channel = q->vc.channel;
	d.qemu_pid = why == NULL ? q->pid : 0;
	d.unservable = why;
	snprintf(q->announced_why, sizeof q->announced_why, "%s",
	    why != NULL ? why : "");
	if (vm_source_add(&d, qmp_hmp, q) == 0) {
		q->announced = true;
		vm_source_speed(q->vc.name, qmp_speed, q);
	}
}

static void
qmp_connect(evutil_socket_t unused, short what, void *arg)
{
	struct qmp *q = arg;

	if (q->c != NULL)
		return;
	q->c = qmpc_connect(ev_base, q->vc.qmp, QMP_TIMEOUT_MS, &qmp_ops, q,
	    q->err, sizeof q->err);
	if (q->c == NULL) {
		if (!q->announced || strcmp(q->announced_why, q->err) != 0)
			log_warnx("vm %s: %s", q->vc.name, q->err);
		qmp_announce(q, q->err);
		qmp_schedule(q);
	}
}

/* The inodes of the sockets listening on one path (/proc/net/unix). */
/* Every match: a fixed few would let sockets bound first under the same
 * name (another VM's QEMU) push the real one out. */
struct qmp_listeners {
	unsigned long *ino;
	size_t n, cap;
};

/*
 * Which sockets listen on path: __SO_ACCEPTCON (0x10000) in the flags,
 * the path as bound (QEMU binds the path it was given: the one
 * configured here, or the same file by another name).
 */
static void
qmp_listeners(const char *path, struct qmp_listeners *l)
{
	char line[PATH_MAX + 128], sock[PATH_MAX], real[PATH_MAX], *nl;
	unsigned long flags, ino;
	bool have_real;
	FILE *f;
	int off;

	l->ino = NULL;
	l->n = l->cap = 0;
	have_real = realpath(path, real) != NULL;
	if ((f = fopen("/proc/net/unix", "re")) == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		off = 0;
		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %n", &flags, &ino,
		        &off) != 2 ||
		    off == 0 || !(flags & 0x10000))
			continue;
		snprintf(sock, sizeof sock, "%s", line + off);
		if ((nl = strchr(sock, '\n')) != NULL)
			*nl = '\0';
		if (strcmp(sock, path) != 0 &&
		    (!have_real || strcmp(sock, real) != 0))
			continue;
		if (l->n == l->cap) {
			l->cap = l->cap != 0 ? 2 * l->cap : 8;
			l->ino = xreallocarray(l->ino, l->cap, sizeof *l->ino);
		}
		l->ino[l->n++] = ino;
	}
	fclose(f);
}

static int
qmp_holds_match(const char *target, void *arg)
{
	const struct qmp_listeners *l = arg;
	unsigned long ino;
	size_t i;
	char end;

	if (sscanf(target, "socket:[%lu%c", &ino, &end) != 2 || end != ']')
		return 0;
	for (i = 0; i < l->n; i++)
		if (l->ino[i] == ino)
			return 1;
	return 0;
}

/*
 * SO_PEERCRED names the process that called listen(), which may have
 * handed the socket on and now be another VM's QEMU (or its pid be
 * reused by one): that process must still hold a socket listening on
 * the monitor's path, or whatever answers there is not its monitor.
 */
static bool
qmp_holds_listener(struct qmp *q)
{
	struct qmp_listeners l;
	bool held;

	qmp_listeners(q->vc.qmp, &l);
	held = l.n > 0 && memmap_fd_walk(q->pid, qmp_holds_match, &l) == 1;
	free(l.ino);
	return held;
}

/*
 * The process listening on the monitor must be a QEMU, and hold the
 * socket: its executable's
 * name starts with "qemu" (qemu-system-x86_64, qemu-kvm). Where that
 * cannot be read, its command line must name the monitor socket. NULL
 * when it is; why not otherwise.
 */
static const char *
qmp_check_pid(struct qmp *q, char *why, size_t len)
{
	char path[64], exe[PATH_MAX], *base, buf[16384];
	ssize_t n;
	size_t i;
	int fd;

	if (!qmp_holds_listener(q)) {
		snprintf(why, len,
		    "the monitor's listener (pid %d) does not hold a socket "
		    "listening on %.100s: not the QEMU of this monitor",
		    (int)q->pid, q->vc.qmp);
		return why;
	}
	snprintf(path, sizeof path, "/proc/%d/exe", (int)q->pid);
	if ((n = readlink(path, exe, sizeof exe - 1)) > 0) {
		exe[n] = '\0';
		base = strrchr(exe, '/');
		base = base != NULL ? base + 1 : exe;
		if (strncmp(base, "qemu", 4) == 0)
			return NULL;
		snprintf(why, len,
		    "the monitor's listener (pid %d, %.160s) is not a QEMU "
		    "process",
		    (int)q->pid, exe);
		return why;
	}
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)q->pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			for (i = 0; i < (size_t)n; i++)
				if (buf[i] == '\0')
					buf[i] = ' ';
			buf[n] = '\0';
			if (strstr(buf, q->vc.qmp) != NULL)
				return NULL;
		}
	}
	snprintf(why, len,
	    "the monitor's listener (pid %d) is not the QEMU of %.100s "
	    "(its command line does not name the socket)",
	    (int)q->pid, q->vc.qmp);
	return why;
}

/* Greeted and negotiated: the VM can be served, and followed. */
static void
qmp_ready(struct qmpc *c, void *arg)
{
	struct qmp *q = arg;
	char why[256];
	const char *bad;

	q->pid = qmpc_pid(c);
	q->backoff_ms = QMP_BACKOFF_MIN_MS;
	log_info("vm %s: monitor %s, qemu pid %d", q->vc.name, q->vc.qmp,
	    (int)q->pid);
	if ((bad = qmp_check_pid(q, why, sizeof why)) != NULL)
		log_warnx("vm %s: %s", q->vc.name, bad);
	q->announced_why[0] = '\0';
	qmp_announce(q, bad);
	qmp_set_events(q);
	/* A migration may be running already. */
	qmp_poll(-1, 0, q);
}

static void
qmp_event(struct qmpc *c, const char *name, json_object *data, void *arg)
{
	struct qmp *q = arg;
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(qmp_events); i++)
		if (strcmp(name, qmp_events[i].name) == 0) {
			qmp_events[i].fn(q, data);
			return;
		}
	log_debug("vm %s: event %s", q->vc.name, name);
}

/* The monitor went away or failed: say why, and try again later. */
static void
qmp_lost(struct qmpc *c, const char *why, void *arg)
{
	struct qmp *q = arg;

	log_warnx("vm %s: %s", q->vc.name, why);
	snprintf(q->err, sizeof q->err, "%s", why);
	q->c = NULL;
	qmpc_free(c);
	q->events = q->polling = false;
	event_del(q->poll);
	if (q->migrating) {
		q->migrating = false;
		vm_source_migration(q->vc.name, VM_MIGRATION_FINISHED);
	}
	qmp_announce(q, q->err);
	qmp_schedule(q);
}

static void
qmp_ev_migration(struct qmp *q, json_object *data)
{
	json_object *st;

	if (data == NULL || !json_object_object_get_ex(data, "status", &st) ||
	    !json_object_is_type(st, json_type_string))
		return;
	snprintf(q->status, sizeof q->status, "%s", json_object_get_string(st));
	qmp_apply_migration(q);
}

/*
 * After a reset the firmware maps memory anew; after a resume, a memory
 * device resized or a device removed, the map may differ too.
 */
static void
qmp_ev_reset(struct qmp *q, json_object *data)
{
	vm_source_changed(q->vc.name);
}

/* The guest runs here (after postcopy: on the destination). */
static void
qmp_ev_resume(struct qmp *q, json_object *data)
{
	vm_source_running(q->vc.name, true);
	vm_source_changed(q->vc.name);
}

/* Stopped (after postcopy's switchover: the source). */
static void
qmp_ev_stop(struct qmp *q, json_object *data)
{
	vm_source_running(q->vc.name, false);
}

static void
qmp_hmp(void *ctx, const char *cmdline, vm_hmp_done done, void *arg)
{
	struct qmp *q = ctx;
	struct qmp_hmp_req *req;
	json_object *args;

	if (q->c == NULL || !qmpc_ready(q->c)) {
		done(arg, NULL);
		return;
	}
	req = xcalloc(1, sizeof *req);
	req->done = done;
	req->arg = arg;
	args = json_object_new_object();
	json_object_object_add(
	    args, "command-line", json_object_new_string(cmdline));
	if (qmpc_send(
	        q->c, "human-monitor-command", args, qmp_hmp_reply, req) != 0) {
		free(req);
		done(arg, NULL);
	}
}

static void
qmp_hmp_reply(struct qmpc *c, json_object *r, const char *err, void *arg)
{
	struct qmp_hmp_req *req = arg;
	vm_hmp_done done = req->done;
	void *darg = req->arg;

	free(req);
	if (r == NULL || !json_object_is_type(r, json_type_string)) {
		if (err != NULL)
			log_debug("%s: %s", __func__, err);
		done(darg, NULL);
		return;
	}
	done(darg, json_object_get_string(r));
}

/*
 * The bandwidth in force, then the new one, set only once the answer is
 * in and at most the ceiling. Sent back to back, a refused query with a
 * set that took would leave QEMU held with nothing known to restore;
 * waiting costs one round trip on a local socket.
 */
static void
qmp_speed(
    void *ctx, uint64_t bps, uint64_t ceiling, vm_speed_done done, void *arg)
{
	struct qmp *q = ctx;
	struct qmp_speed_req *req;

	if (q->c == NULL || !qmpc_ready(q->c) || bps > INT64_MAX) {
		done(arg, -1);
		return;
	}
	req = xcalloc(1, sizeof *req);
	req->q = q;
	req->done = done;
	req->arg = arg;
	req->was = -1;
	req->bps = bps;
	req->ceiling = ceiling;
	if (qmpc_send(q->c, "query-migrate-parameters", NULL,
	        qmp_speed_query_reply, req) != 0) {
		free(req);
		done(arg, -1);
	}
}

static void
qmp_speed_query_reply(
    struct qmpc *c, json_object *r, const char *err, void *arg)
{
	struct qmp_speed_req *req = arg;
	json_object *args, *v;

	if (r != NULL && json_object_object_get_ex(r, "max-bandwidth", &v) &&
	    json_object_is_type(v, json_type_int))
		req->was = json_object_get_int64(v);
	/* Above the ceiling, or no answer: nothing is set. */
	if (req->was >= 0 && (uint64_t)req->was <= req->ceiling) {
		args = json_object_new_object();
		json_object_object_add(args, "max-bandwidth",
		    json_object_new_int64((int64_t)req->bps));
		if (qmpc_send(req->q->c, "migrate-set-parameters", args,
		        qmp_speed_set_reply, req) == 0)
			return;
		req->was = -1;
	}
	req->done(req->arg, req->was);
	free(req);
}

static void
qmp_speed_set_reply(struct qmpc *c, json_object *r, const char *err, void *arg)
{
	struct qmp_speed_req *req = arg;
	vm_speed_done done = req->done;
	void *darg = req->arg;
	int64_t was = r != NULL ? req->was : -1;

	if (err != NULL)
		log_debug("%s: %s", __func__, err);
	free(req);
	done(darg, was < 0 ? -1 : was);
}

/*
 * Ask for MIGRATION events. QEMU refuses while a migration runs; then
 * query-migrate is polled, and the capability asked for again once the
 * migration is over.
 */
static void
qmp_set_events(struct qmp *q)
{
	json_object *args, *caps, *cap;

	if (q->c == NULL)
		return;
	args = json_object_new_object();
	caps = json_object_new_array();
	cap = json_object_new_object();
	json_object_object_add(
	    cap, "capability", json_object_new_string("events"));
	json_object_object_add(cap, "state", json_object_new_boolean(1));
	json_object_array_add(caps, cap);
	json_object_object_add(args, "capabilities", caps);
	qmpc_send(q->c, "migrate-set-capabilities", args, qmp_events_reply, q);
}

static void
qmp_events_reply(struct qmpc *c, json_object *r, const char *err, void *arg)
{
	struct qmp *q = arg;
	struct timeval tv = { 0, QMP_POLL_MS * 1000 };

	/* A connection lost fails its commands before qmp_lost is told. */
	if (c != q->c || !qmpc_ready(c))
		return;
	if (r == NULL) {
		log_info("vm %s: no migration events (%s): polling "
		         "query-migrate",
		    q->vc.name, err);
		q->events = false;
		event_add(q->poll, &tv);
		return;
	}
	q->events = true;
	event_del(q->poll);
}

static void
qmp_poll(evutil_socket_t unused, short what, void *arg)
{
	struct qmp *q = arg;

	if (q->polling || q->c == NULL)
		return;
	if (qmpc_send(q->c, "query-migrate", NULL, qmp_poll_reply, q) == 0)
		q->polling = true;
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
qmp_poll_reply(struct qmpc *c, json_object *r, const char *err, void *arg)
{
	struct qmp *q = arg;
	json_object *st;
	bool was;

	if (c != q->c)
		return;
	q->polling = false;
	if (!qmpc_ready(c))
		return;
	if (r == NULL) {
		log_warnx("vm %s: %s", q->vc.name, err);
		return;
	}
	/* No "status" before the first migration: none is running. */
	if (json_object_object_get_ex(r, "status", &st) &&
	    json_object_is_type(st, json_type_string))
		snprintf(q->status, sizeof q->status, "%s",
		    json_object_get_string(st));
	else
		q->status[0] = '\0';
	was = q->migrating;
	qmp_apply_migration(q);
	if (!q->events && was && !q->migrating)
		qmp_set_events(q);
}

static void
qmp_apply_migration(struct qmp *q)
{
	bool active = status_active(q->status);

	if (active && !q->migrating) {
		q->migrating = true;
		q->postcopy = false;
		vm_source_migration(q->vc.name, VM_MIGRATION_STARTED);
	} else if (!active && q->migrating) {
		q->migrating = false;
		vm_source_migration(q->vc.name, VM_MIGRATION_FINISHED);
	}
	if (q->migrating && !q->postcopy &&
	    strncmp(q->status, "postcopy-", 9) == 0) {
		q->postcopy = true;
		vm_source_migration(q->vc.name, VM_MIGRATION_POSTCOPY);
	}
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
	TAILQ_FOREACH(vc, list, entry) {
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

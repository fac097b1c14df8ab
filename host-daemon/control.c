/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control socket for freehintctl: one request line per connection
 * ("status", "metrics", "hint NAME", "release NAME", "notify EVENT NAME",
 * "set NAME KEY=VALUE..."), one JSON object back, then the daemon closes.
 * Mode 0600, or 0660 with a group; each verb checked against the peer's
 * credentials (SO_PEERCRED).
 */
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <json-c/json.h>

#include "freehintd.h"

#define CONTROL_LINE_MAX 512
/* Connections served at once; the listener pauses beyond. */
#define CONTROL_MAX_CONNS  64
#define CONTROL_GROUPS_MAX 256
/* Words of a request, the verb's included. */
#define CONTROL_ARGS_MAX 16

/* What a connection's peer may do, from SO_PEERCRED and its groups. */
enum ctl_right { CTL_READ, CTL_ADMIN };

struct ctl_conn {
	struct bufferevent *bev;
	struct ucred cred;
	bool may_read;
	bool may_admin;
	/* A verb answered later (notify, by the parent): the connection
	 * waits, and outlives its socket until the answer is in. */
	bool pending;
	bool in_do; /* the answer came before the verb returned */
	json_object *early;
};

struct ctl_verb {
	const char *name;
	int argc; /* with the verb; the least when more is set */
	bool more; /* takes argc words or more */
	enum ctl_right right;
	json_object *(*fn)(struct ctl_conn *, char **);
};

static struct evconnlistener *control_listener;
static struct accept_backoff control_backoff;
static char *control_path;
/* The socket file we bound: at exit only it is removed, not one that a
 * later daemon bound at the same path after ours was taken away. */
static bool control_bound;
static dev_t control_dev;
static ino_t control_ino;
/* PATH.lock, held (flock) for the daemon's life: of two daemons started
 * at the same instant, both could find a stale socket file; one gets the
 * lock. Never removed: a lock file removed can be held twice. */
static int control_lock = -1;
static gid_t control_gid, admin_gid;
static uid_t control_owner; /* the daemon's user, not the worker's */
static bool have_control_gid, have_admin_gid;
static unsigned control_nconns;
static struct log_rl control_rl;

static int control_take_lock(const char *);
static void control_accept(
    struct evconnlistener *, evutil_socket_t, struct sockaddr *, int, void *);
static bool control_full(void);
static void control_read(struct bufferevent *, void *);
static void control_write(struct bufferevent *, void *);
static void control_event(struct bufferevent *, short, void *);
static void control_conn_free(struct ctl_conn *);
static void control_rights(struct ctl_conn *, int);
static json_object *control_status(struct ctl_conn *, char **);
static json_object *control_notify(struct ctl_conn *, char **);
static void control_notified(void *, int, const char *);
static void control_reply(struct ctl_conn *, json_object *);
static json_object *control_hint(struct ctl_conn *, char **);
static json_object *control_set(struct ctl_conn *, char **);
static json_object *control_metrics(struct ctl_conn *, char **);
static json_object *control_command_json(const struct vm *);
static json_object *control_do(struct ctl_conn *, char *);
static json_object *reply_error(const char *, const char *);
static json_object *reply_ok(void);

/* Every verb; anything that changes state needs CTL_ADMIN. */
static const struct ctl_verb ctl_verbs[] = {
	{ "status", 1, false, CTL_READ, control_status },
	{ "metrics", 1, false, CTL_READ, control_metrics },
	{ "hint", 2, false, CTL_ADMIN, control_hint },
	{ "release", 2, false, CTL_ADMIN, control_hint },
	{ "notify", 3, false, CTL_ADMIN, control_notify },
	{ "set", 3, true, CTL_ADMIN, control_set },
};

/*
 * The socket is mode 0600, or 0660 and owned by the control group (the
 * admin group when only that is given). Whoever connects is identified
 * by SO_PEERCRED: root and our own user may do everything, members of
 * the admin group too, members of the control group only read.
 */
int
control_open(const char *path, const char *group, const char *admin)
{
	int fd;

	if ((fd = control_bind(path, group, admin)) == -1)
		return -1;
	if (control_serve(fd) != 0) {
		control_close();
		return -1;
	}
	return 0;
}

/*
 * Bind the socket (the privileged parent does; the worker serves it):
 * the listening fd, or -1. The file is ours to remove at exit.
 */
int
control_bind(const char *path, const char *group, const char *admin)
{
	struct sockaddr_un sun;
	struct group *gr;
	char *dir, *slash;
	struct stat st;
	mode_t old;
	int fd;

	if (fh_unix_addr(&sun, path) != 0) {
		log_warnx("control socket path too long: %s", path);
		return -1;
	}
	have_control_gid = have_admin_gid = false;
	control_owner = geteuid();
	if (group != NULL) {
		if ((gr = getgrnam(group)) == NULL) {
			log_warnx("control group %s: no such group", group);
			return -1;
		}
		control_gid = gr->gr_gid;
		have_control_gid = true;
	}
	if (admin != NULL) {
		if ((gr = getgrnam(admin)) == NULL) {
			log_warnx("admin group %s: no such group", admin);
			return -1;
		}
		admin_gid = gr->gr_gid;
		have_admin_gid = true;
	}
	/* Started by hand, with no RuntimeDirectory= to make it for us. */
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == 0)
			log_info("created %s", dir);
		else if (errno != EEXIST)
			log_warn("mkdir %s", dir);
	}
	free(dir);
	if (control_take_lock(path) != 0)
		return -1;
	/* Never take the socket of a daemon that still answers on it. */
	switch (fh_unix_in_use(path)) {
	case 1:
		log_warnx("control socket %s: another process listens there "
		          "(a freehintd already running?); stop it or give "
		          "--control another path",
		    path);
		return -1;
	case -1:
		log_warn("control socket %s: cannot tell whether another "
		         "process listens there",
		    path);
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		log_warn("unlink %s", path);
		return -1;
	}
	old = umask(have_control_gid || have_admin_gid ? 0117 : 0177);
	fd = fh_listen_addr((struct sockaddr *)&sun, sizeof sun, 16);
	umask(old);
	if (fd == -1) {
		log_warn("control socket %s", path);
		return -1;
	}
	control_path = xstrdup(path);
	if ((control_bound = stat(path, &st) == 0)) {
		control_dev = st.st_dev;
		control_ino = st.st_ino;
	}
	if ((have_control_gid || have_admin_gid) &&
	    chown(path, (uid_t)-1,
	        have_control_gid ? control_gid : admin_gid) != 0) {
		log_warn("chown %s (needs CAP_CHOWN)", path);
		close(fd);
		control_close();
		return -1;
	}
	return fd;
}

static int
control_take_lock(const char *path)
{
	char *lock;

	if (control_lock != -1)
		return 0;
	xasprintf(&lock, "%s.lock", path);
	if ((control_lock = open(lock,
	         O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) == -1) {
		log_warn("control socket lock %s", lock);
		free(lock);
		return -1;
	}
	if (flock(control_lock, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			log_warnx("control socket %s: another process holds "
			          "%s (a freehintd starting or running?); stop "
			          "it or give --control another path",
			    path, lock);
		else
			log_warn("flock %s", lock);
		close(control_lock);
		control_lock = -1;
		free(lock);
		return -1;
	}
	free(lock);
	return 0;
}

/* Serve freehintctl on a listening socket, which is ours from now. */
int
control_serve(int fd)
{
	evutil_make_socket_nonblocking(fd);
	control_listener =
	    evconnlistener_new(ev_base, control_accept, &control_backoff,
	        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (control_listener == NULL) {
		log_warn("control socket");
		close(fd);
		return -1;
	}
	accept_backoff_init(
	    &control_backoff, control_listener, "control socket", control_full);
	return 0;
}

/* The socket file is not this process's to remove (the worker's case). */
void
control_disown(void)
{
	free(control_path);
	control_path = NULL;
	control_bound = false;
	if (control_lock != -1)
		close(control_lock);
	control_lock = -1;
}

void
control_close(void)
{
	struct stat st;

	/*
	 * The file goes while we still listen: a daemon starting meanwhile
	 * finds us and refuses, or finds nothing; it cannot bind a socket
	 * there between our check and our unlink.
	 */
	if (control_path != NULL && control_bound &&
	    stat(control_path, &st) == 0 && st.st_dev == control_dev &&
	    st.st_ino == control_ino)
		unlink(control_path);
	control_disown();
	accept_backoff_free(&control_backoff);
	if (control_listener != NULL) {
		evconnlistener_free(control_listener);
		control_listener = NULL;
	}
}

static bool
control_full(void)
{
	return control_nconns >= CONTROL_MAX_CONNS;
}

/* Root, our own user, and the groups' members (SO_PEERGROUPS). */
static void
control_rights(struct ctl_conn *c, int fd)
{
	gid_t groups[CONTROL_GROUPS_MAX];
	socklen_t len = sizeof groups;
	size_t i, n = 0;
	bool in_control, in_admin;

	if (c->cred.uid == 0 || c->cred.uid == control_owner) {
		c->may_read = c->may_admin = true;
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
		n = len / sizeof groups[0];
	in_control = have_control_gid && c->cred.gid == control_gid;
	in_admin = have_admin_gid && c->cred.gid == admin_gid;
	for (i = 0; i < n; i++) {
		in_control |= have_control_gid && groups[i] == control_gid;
		in_admin |= have_admin_gid && groups[i] == admin_gid;
	}
	c->may_admin = in_admin;
	c->may_read = in_admin || in_control;
}

static void
control_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct ctl_conn *c;
	socklen_t len = sizeof c->cred;
	struct timeval tv = { 5, 0 };

	c = xcalloc(1, sizeof *c);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) != 0) {
		log_warn("control: SO_PEERCRED");
		free(c);
		close(fd);
		return;
	}
	control_rights(c, fd);
	evutil_make_socket_nonblocking(fd);
	c->bev = bufferevent_socket_new(ev_base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		free(c);
		close(fd);
		return;
	}
	if (++control_nconns >= CONTROL_MAX_CONNS) {
		log_warnx_rl(&control_rl,
		    "control: %u connections, not accepting more for now",
		    control_nconns);
		evconnlistener_disable(l);
	}
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONTROL_LINE_MAX);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setcb(c->bev, control_read, NULL, control_event, c);
	bufferevent_enable(c->bev, EV_READ);
}

static void
control_conn_free(struct ctl_conn *c)
{
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (!c->pending)
		free(c);
	control_nconns--;
	if (control_listener != NULL && !control_full() &&
	    !accept_backoff_pending(&control_backoff))
		evconnlistener_enable(control_listener);
}

static void
control_event(struct bufferevent *bev, short what, void *arg)
{
	control_conn_free(arg);
}

static void
control_write(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		control_conn_free(arg);
}

static void
control_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct ctl_conn *c = arg;
	json_object *reply;
	char *line;
	size_t len;

	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) < CONTROL_LINE_MAX)
			return;
		reply = reply_error("usage", "request too long");
	} else {
		reply = control_do(c, line);
		free(line);
	}
	bufferevent_disable(bev, EV_READ);
	if (reply != NULL)
		control_reply(c, reply);
}

/* The one answer, then the connection closes once it is written. */
static void
control_reply(struct ctl_conn *c, json_object *reply)
{
	evbuffer_add_printf(bufferevent_get_output(c->bev), "%s\n",
	    json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
	json_object_put(reply);
	bufferevent_setcb(c->bev, NULL, control_write, control_event, c);
	bufferevent_enable(c->bev, EV_WRITE);
}

static json_object *
reply_ok(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static json_object *
reply_error(const char *code, const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "code", json_object_new_string(code));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

static json_object *
control_status(struct ctl_conn *c, char **argv)
{
	json_object *o, *arr, *v;
	struct vm *vm;
	int64_t ret;

	arr = json_object_new_array();
	TAILQ_FOREACH(vm, &vms, entry) {
		v = json_object_new_object();
		json_object_object_add(
		    v, "name", json_object_new_string(vm->name));
		json_object_object_add(
		    v, "connected", json_object_new_boolean(vm->guest != NULL));
		json_object_object_add(v, "transport",
		    json_object_new_string(vm_transport_name(vm->transport)));
		json_object_object_add(
		    v, "mode", json_object_new_string(vm_mode_name(vm->mode)));
		json_object_object_add(v, "mode_reason",
		    json_object_new_string(vm->mode_why ? vm->mode_why : ""));
		/* The backing the map found, and its host page size (the
		 * unit of every discard; 0 without a backing fd). */
		json_object_object_add(v, "backing",
		    json_object_new_string(memmap_kind_name(vm->map.kind)));
		json_object_object_add(v, "host_page_size",
		    json_object_new_uint64(
		        vm->map.n > 0 && vm->map.r[0].fd != -1
		            ? vm->map.r[0].pagesz
		            : 0));
		json_object_object_add(v, "ram_bytes",
		    json_object_new_uint64(memmap_ram_bytes(&vm->map)));
		json_object_object_add(v, "guest_free_bytes",
		    json_object_new_uint64(vm->guest_free_bytes));
		json_object_object_add(v, "reclaimed_bytes",
		    json_object_new_uint64(vm->reclaimed_bytes));
		/* Given back now, unlike reclaimed_bytes (every discard
		 * ever); null where the backing has no file to ask. */
		json_object_object_add(v, "returned_bytes",
		    (ret = vm_returned_bytes(vm)) >= 0
		        ? json_object_new_uint64((uint64_t)ret)
		        : NULL);
		json_object_object_add(
		    v, "held_bytes", json_object_new_uint64(vm->held_bytes));
		json_object_object_add(v, "ranges_applied",
		    json_object_new_uint64(vm->ranges_applied));
		json_object_object_add(v, "ranges_rejected",
		    json_object_new_uint64(vm->ranges_rejected));
		json_object_object_add(
		    v, "last_error", json_object_new_string(vm->last_error));
		/* Why discards stop for now whatever the mode (postcopy). */
		json_object_object_add(v, "discard_paused",
		    json_object_new_string(
		        vm->nodiscard_why != NULL ? vm->nodiscard_why : ""));
		json_object_object_add(
		    v, "policy", policy_json(&vm->pol, &conf->policy));
		if (vm->cmd_id != 0)
			json_object_object_add(
			    v, "last_command", control_command_json(vm));
		json_object_array_add(arr, v);
	}
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "vms", arr);
	return o;
}

/* The libvirt source's, in the parent (priv.c): answered when it is. */
static json_object *
control_notify(struct ctl_conn *c, char **argv)
{
	json_object *early;

	c->pending = c->in_do = true;
	priv_notify(argv[1], argv[2], control_notified, c);
	c->in_do = false;
	early = c->early;
	c->early = NULL;
	return early;
}

static void
control_notified(void *arg, int rc, const char *msg)
{
	struct ctl_conn *c = arg;
	json_object *reply;

	c->pending = false;
	reply = rc != 0 ? reply_error("failed", msg) : reply_ok();
	if (c->in_do) {
		c->early = reply;
		return;
	}
	if (c->bev == NULL) {
		/* Gone meanwhile (control_conn_free left it to us). */
		json_object_put(reply);
		free(c);
		return;
	}
	control_reply(c, reply);
}

/* The same text GET /metrics answers. */
static json_object *
control_metrics(struct ctl_conn *c, char **argv)
{
	struct evbuffer *b = evbuffer_new();
	json_object *o;

	if (b == NULL)
		return reply_error("failed", "out of memory");
	metrics_render(b);
	o = reply_ok();
	json_object_object_add(o, "metrics",
	    json_object_new_string_len((const char *)evbuffer_pullup(b, -1),
	        (int)evbuffer_get_length(b)));
	evbuffer_free(b);
	return o;
}

/* set NAME KEY=VALUE...: all or nothing, from the VM's next batch. */
static json_object *
control_set(struct ctl_conn *c, char **argv)
{
	struct vm *vm;
	char msg[256];
	int n = 0;

	if ((vm = vm_find(argv[1])) == NULL)
		return reply_error("unknown-vm", "no such VM");
	while (argv[2 + n] != NULL)
		n++;
	if (vm_policy_set(vm, argv + 2, n, msg, sizeof msg) != 0)
		return reply_error("usage", msg);
	return reply_ok();
}

static json_object *
control_hint(struct ctl_conn *c, char **argv)
{
	struct vm *vm;
	char msg[256];
	int rc;

	if ((vm = vm_find(argv[1])) == NULL)
		return reply_error("unknown-vm", "no such VM");
	msg[0] = '\0';
	if (strcmp(argv[0], "hint") == 0)
		rc = vm_hint(vm, msg, sizeof msg);
	else
		rc = vm_release(vm, msg, sizeof msg);
	if (rc != 0)
		return reply_error(
		    "failed", msg[0] ? msg : "agent unreachable");
	return reply_ok();
}

static json_object *
control_do(struct ctl_conn *c, char *line)
{
	const struct ctl_verb *v = NULL;
	char *argv[CONTROL_ARGS_MAX + 1], *save = NULL, msg[160];
	int argc = 0;
	size_t i;

	while (argc < CONTROL_ARGS_MAX &&
	    (argv[argc] = strtok_r(argc == 0 ? line : NULL, " \t\r", &save)) !=
	        NULL)
		argc++;
	argv[argc] = NULL;
	if (argc == 0)
		return reply_error("usage", "empty request");
	if (argc == CONTROL_ARGS_MAX && strtok_r(NULL, " \t\r", &save) != NULL)
		return reply_error("usage", "too many words");
	for (i = 0; i < FH_ARRAY_SIZE(ctl_verbs); i++)
		if (strcmp(argv[0], ctl_verbs[i].name) == 0 &&
		    (argc == ctl_verbs[i].argc ||
		        (ctl_verbs[i].more && argc > ctl_verbs[i].argc)))
			v = &ctl_verbs[i];
	if (v == NULL)
		return reply_error("usage", "unknown request");
	if (!c->may_read || (v->right == CTL_ADMIN && !c->may_admin)) {
		log_warnx_rl(&control_rl,
		    "control: '%s' refused to uid %u (pid %d)", v->name,
		    (unsigned)c->cred.uid, (int)c->cred.pid);
		snprintf(msg, sizeof msg, "'%s' is not permitted: %s", v->name,
		    v->right == CTL_ADMIN
		        ? "it needs root or the admin group (admin-group)"
		        : "it needs root, the control or the admin group");
		return reply_error("denied", msg);
	}
	return v->fn(c, argv);
}

/* The last numbered Command and what the agent answered. */
static json_object *
control_command_json(const struct vm *vm)
{
	static const char *const states[] = {
		[VM_CMD_NONE] = "unnumbered",
		[VM_CMD_PENDING] = "pending",
		[VM_CMD_OK] = "ok",
		[VM_CMD_FAILED] = "failed",
	};
	json_object *c = json_object_new_object();

	json_object_object_add(c, "id", json_object_new_uint64(vm->cmd_id));
	json_object_object_add(c, "type",
	    json_object_new_string(
	        vm->cmd_type == FREEHINT__COMMAND_TYPE__HINT_PASS ? "hint"
	            : vm->cmd_type == FREEHINT__COMMAND_TYPE__RELEASE
	            ? "release"
	            : "other"));
	json_object_object_add(
	    c, "result", json_object_new_string(states[vm->cmd_state]));
	json_object_object_add(
	    c, "detail", json_object_new_string(vm->cmd_detail));
	return c;
}

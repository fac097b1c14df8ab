/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control socket (host-daemon/control.c) on a real event base: the
 * socket is opened on a temporary path, the test connects as freehintctl
 * would, writes request lines (whole, in pieces, too long, several at
 * once) and reads the one JSON object the daemon answers before it
 * closes. A VM is added through the registry (vmsource.h) as an
 * unservable VM, which reads no memory map. Under root, other users are
 * played by a child that becomes nobody (group nogroup, as its own group
 * or a supplementary one). The connection cap and the idle timeout with
 * 64 silent clients. notify is answered by priv.c at once in one process;
 * in the worker, the test plays the privileged parent on the other end of
 * the worker's socketpair (ps_worker.c) and answers when it likes. A
 * successful hint and release go to an agent the test plays, on a
 * socketpair, for a VM whose RAM is a memfd (hostd_fixture.h). Each case
 * gets a fresh fixture; the teardown is the one cleanup path.
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
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <grp.h>
#include <signal.h>
#include <unistd.h>

#include "unit.h"
#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "freehintd.h"
#include "hostd_fixture.h"
#include "privsep.h"
#include "proto.h"

struct event_base *ev_base;
struct config *conf;

struct fx {
	char dir[64];
	char path[100]; /* the socket, in a directory control_open makes */
	int fd; /* the client's end */
	char rx[1 << 17];
	size_t rxlen;
	bool eof;
};

static int setup(void **);
static int teardown(void **);
static void client_connect(struct fx *);
static void put(struct fx *, const char *);
static void pump(struct fx *);
static json_object *answer(struct fx *);
static json_object *ask(struct fx *, const char *);
static void assert_error(json_object *, const char *, const char *);
static void add_vm(const char *);

/* 30 s: valgrind on a loaded machine is slow. */
#define SPIN_MAX 30000

/* The privileged parent the test plays, and the last PS_NOTIFY it got. */
static struct ps_chan *parent;
static int parent_sv[2] = { -1, -1 };
static struct {
	uint64_t id;
	char event[64];
	char name[64];
	int count;
	bool lost; /* the worker's end closed */
} notified;

static int
setup(void **state)
{
	struct fx *f;

	f = xcalloc(1, sizeof *f);
	f->fd = -1;
	assert_int_equal(fixture_daemon_start("test_hostd_control", 0), 0);
	/* A directory that does not exist yet: control_open makes it. */
	fixture_mkdir(f->dir, sizeof f->dir, "control", f->path, sizeof f->path,
	    "run/ctl.sock");
	assert_int_equal(control_open(f->path, NULL, NULL), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char sub[160];

	if (f->fd != -1)
		close(f->fd);
	/* A request still out is failed back, then the channel goes. */
	if (parent != NULL) {
		ps_worker_stop();
		ps_chan_free(parent);
		parent = NULL;
	}
	control_close();
	/* It also lets the daemon free the connections it still holds. */
	fixture_daemon_end();
	/* The lock file stays (control.c): removed by its owner only. */
	snprintf(sub, sizeof sub, "%s.lock", f->path);
	unlink(sub);
	snprintf(sub, sizeof sub, "%s/run", f->dir);
	rmdir(sub);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
client_connect(struct fx *f)
{
	struct sockaddr_un sun;

	if (f->fd != -1)
		close(f->fd);
	f->rxlen = 0;
	f->eof = false;
	fixture_sun(&sun, f->path);
	f->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_not_equal(f->fd, -1);
	/* The listener's backlog takes it before the loop accepts. */
	assert_int_equal(
	    connect(f->fd, (struct sockaddr *)&sun, sizeof sun), 0);
}

static void
put(struct fx *f, const char *s)
{
	assert_int_equal(write(f->fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* One turn of the loop, then whatever the daemon wrote. */
static void
pump(struct fx *f)
{
	ssize_t n;

	event_base_loop(ev_base, EVLOOP_NONBLOCK);
	n = recv(
	    f->fd, f->rx + f->rxlen, sizeof f->rx - f->rxlen - 1, MSG_DONTWAIT);
	if (n > 0)
		f->rxlen += (size_t)n;
	else if (n == 0)
		f->eof = true;
	else
		usleep(1000);
}

/* The daemon's answer: one line, then it closes. */
static json_object *
answer(struct fx *f)
{
	json_object *o;
	int spin;

	for (spin = 0; spin < SPIN_MAX && !f->eof; spin++)
		pump(f);
	assert_true(f->eof);
	assert_true(f->rxlen > 0);
	assert_int_equal(f->rx[f->rxlen - 1], '\n');
	/* Exactly one line. */
	assert_null(memchr(f->rx, '\n', f->rxlen - 1));
	f->rx[f->rxlen] = '\0';
	o = json_tokener_parse(f->rx);
	assert_non_null(o);
	return o;
}

static json_object *
ask(struct fx *f, const char *req)
{
	client_connect(f);
	put(f, req);
	return answer(f);
}

static const char *
get_str(json_object *o, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_string(v);
}

static bool
get_ok(json_object *o)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, "ok", &v));
	assert_true(json_object_is_type(v, json_type_boolean));
	return json_object_get_boolean(v);
}

static void
assert_error(json_object *o, const char *code, const char *error)
{
	assert_false(get_ok(o));
	assert_string_equal(get_str(o, "code"), code);
	if (error != NULL)
		assert_string_equal(get_str(o, "error"), error);
	json_object_put(o);
}

static void
assert_ok(json_object *o)
{
	assert_true(get_ok(o));
	json_object_put(o);
}

/* A VM no map is read for: record-only with the reason given. */
static void
add_vm(const char *name)
{
	struct vm_desc d = {
		.name = name,
		.source = "static",
		.unservable = "test: no QEMU",
	};

	assert_int_equal(vm_source_add(&d, NULL, NULL), 0);
	assert_non_null(vm_find(name));
}

static void
test_socket_mode(void **state)
{
	struct fx *f = *state;
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	/* No group given: the owner only. */
	assert_int_equal(st.st_mode & 0777, 0600);
	control_close();
	/* Closed: the path is gone. */
	assert_int_equal(stat(f->path, &st), -1);
	assert_int_equal(errno, ENOENT);
	/* Opened again over a stale socket file. */
	assert_int_equal(control_open(f->path, NULL, NULL), 0);
	assert_int_equal(stat(f->path, &st), 0);
}

static void
test_open_errors(void **state)
{
	char longpath[200];

	control_close();
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	assert_int_equal(control_open(longpath, NULL, NULL), -1);
	assert_int_equal(
	    control_open("/tmp/fh-x.sock", "fh-no-such-group-at-all", NULL),
	    -1);
	assert_int_equal(
	    control_open("/tmp/fh-x.sock", NULL, "fh-no-such-group-at-all"),
	    -1);
}

static void
test_status_empty(void **state)
{
	struct fx *f = *state;
	json_object *o, *list;

	o = ask(f, "status\n");
	assert_true(get_ok(o));
	assert_true(json_object_object_get_ex(o, "vms", &list));
	assert_true(json_object_is_type(list, json_type_array));
	assert_int_equal(json_object_array_length(list), 0);
	json_object_put(o);
}

static void
test_status_vm(void **state)
{
	struct fx *f = *state;
	json_object *o, *list, *v, *x;

	add_vm("vm-a");
	add_vm("vm-b");
	o = ask(f, "status\n");
	assert_true(get_ok(o));
	assert_true(json_object_object_get_ex(o, "vms", &list));
	assert_int_equal(json_object_array_length(list), 2);
	v = json_object_array_get_idx(list, 0);
	assert_string_equal(get_str(v, "name"), "vm-a");
	assert_string_equal(get_str(v, "mode"), "record-only");
	assert_string_equal(get_str(v, "mode_reason"), "test: no QEMU");
	assert_true(json_object_object_get_ex(v, "connected", &x));
	assert_false(json_object_get_boolean(x));
	assert_true(json_object_object_get_ex(v, "ram_bytes", &x));
	assert_int_equal(json_object_get_int64(x), 0);
	assert_false(json_object_object_get_ex(v, "last_command", &x));
	v = json_object_array_get_idx(list, 1);
	assert_string_equal(get_str(v, "name"), "vm-b");
	json_object_put(o);
}

/* set changes the VM's policy, status shows it and where it came from. */
static void
test_set(void **state)
{
	struct fx *f = *state;
	json_object *o, *list, *pol, *ov, *x;
	struct policy p;

	add_vm("vm-a");
	assert_ok(ask(f, "set vm-a min-order=9 discard=off\n"));
	o = ask(f, "status\n");
	assert_true(json_object_object_get_ex(o, "vms", &list));
	assert_true(json_object_object_get_ex(
	    json_object_array_get_idx(list, 0), "policy", &pol));
	assert_true(json_object_object_get_ex(pol, "min-order", &x));
	assert_int_equal(json_object_get_int64(x), 9);
	assert_true(json_object_object_get_ex(pol, "discard", &x));
	assert_false(json_object_get_boolean(x));
	assert_true(json_object_object_get_ex(pol, "overrides", &ov));
	assert_string_equal(get_str(ov, "min-order"), "set");
	json_object_put(o);

	/* All or nothing: a bad word changes no other. */
	o = ask(f, "set vm-a min-order=3 bogus=1\n");
	assert_false(get_ok(o));
	assert_string_equal(get_str(o, "code"), "usage");
	json_object_put(o);
	assert_error(ask(f, "set vm-a min-order=99\n"), "usage", NULL);
	policy_of(&vm_find("vm-a")->pol, &conf->policy, &p);
	assert_int_equal(p.min_order, 9);
	assert_error(
	    ask(f, "set vm-x min-order=9\n"), "unknown-vm", "no such VM");
}

static void
test_unknown_vm(void **state)
{
	struct fx *f = *state;

	assert_error(ask(f, "hint nosuch\n"), "unknown-vm", "no such VM");
	assert_error(ask(f, "release nosuch\n"), "unknown-vm", "no such VM");
}

/* A VM without an agent: the command fails, and says so. */
static void
test_hint_no_agent(void **state)
{
	struct fx *f = *state;
	json_object *o;

	add_vm("vm-a");
	o = ask(f, "hint vm-a\n");
	assert_false(get_ok(o));
	assert_string_equal(get_str(o, "code"), "failed");
	assert_true(strlen(get_str(o, "error")) > 0);
	json_object_put(o);
	assert_error(ask(f, "release vm-a\n"), "failed", NULL);
}

static void
test_usage(void **state)
{
	struct fx *f = *state;
	char req[128];
	int i;

	assert_error(ask(f, "frobnicate\n"), "usage", "unknown request");
	assert_error(ask(f, "\n"), "usage", "empty request");
	assert_error(ask(f, " \t \r\n"), "usage", "empty request");
	/* The right verb with the wrong number of words. */
	assert_error(ask(f, "status now\n"), "usage", "unknown request");
	assert_error(ask(f, "hint\n"), "usage", "unknown request");
	assert_error(ask(f, "hint a b\n"), "usage", "unknown request");
	assert_error(ask(f, "set vm-a\n"), "usage", "unknown request");
	assert_error(ask(f, "notify started\n"), "usage", "unknown request");
	/* Verbs are case-sensitive. */
	assert_error(ask(f, "STATUS\n"), "usage", "unknown request");
	/* 16 words are read, a 17th is too many. */
	snprintf(req, sizeof req, "set vm-a");
	for (i = 2; i < 17; i++)
		strcat(req, " x=1");
	strcat(req, "\n");
	assert_error(ask(f, req), "usage", "too many words");
}

/* No newline within 512 bytes: refused, without waiting for one. */
static void
test_too_long(void **state)
{
	struct fx *f = *state;
	char req[600];

	memset(req, 'x', sizeof req - 1);
	req[sizeof req - 1] = '\0';
	client_connect(f);
	put(f, req);
	assert_error(answer(f), "usage", "request too long");
}

/* A line that comes in pieces is answered once it is whole. */
static void
test_split(void **state)
{
	struct fx *f = *state;
	int i;

	client_connect(f);
	put(f, "sta");
	for (i = 0; i < 50; i++)
		pump(f);
	assert_false(f->eof);
	assert_int_equal(f->rxlen, 0);
	put(f, "tu");
	for (i = 0; i < 50; i++)
		pump(f);
	assert_int_equal(f->rxlen, 0);
	put(f, "s\n");
	assert_ok(answer(f));
}

/* One request per connection: a second line is never answered. */
static void
test_several(void **state)
{
	struct fx *f = *state;

	assert_ok(ask(f, "status\nfrobnicate\nstatus\n"));
	assert_error(
	    ask(f, "frobnicate\nstatus\n"), "usage", "unknown request");
}

/* A client that goes away before its line ends costs nothing. */
static void
test_client_gone(void **state)
{
	struct fx *f = *state;
	int i;

	for (i = 0; i < 8; i++) {
		client_connect(f);
		put(f, "stat");
		close(f->fd);
		f->fd = -1;
	}
	for (i = 0; i < 100; i++)
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
	assert_ok(ask(f, "status\n"));
}

/*
 * 64 connections that say nothing fill the daemon's table: the listener
 * pauses, and a 65th client's request waits unanswered in the backlog.
 * The idle ones are closed after 5 s; then the listener takes the one
 * waiting and answers it.
 */
static void
test_conn_cap_idle(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sun;
	int idle[64], i;
	uint64_t t0;
	char c;

	fixture_sun(&sun, f->path);
	for (i = 0; i < 64; i++) {
		idle[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_int_not_equal(idle[i], -1);
		assert_int_equal(
		    connect(idle[i], (struct sockaddr *)&sun, sizeof sun), 0);
		/* Accepted before the backlog (16) fills. */
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
	}
	t0 = fh_monotonic_ms();
	client_connect(f);
	put(f, "status\n");
	for (i = 0; i < 500; i++)
		pump(f);
	assert_int_equal(f->rxlen, 0);
	assert_false(f->eof);
	assert_ok(answer(f));
	assert_true(fh_monotonic_ms() - t0 >= 4000);
	/* The idle ones are closed by the daemon, each after its 5 s. */
	for (i = 0; i < 64; i++) {
		UNIT_SPIN_UNTIL(event_base_loop(ev_base, EVLOOP_NONBLOCK),
		    SPIN_MAX, recv(idle[i], &c, 1, MSG_DONTWAIT) == 0);
		close(idle[i]);
	}
}

/*
 * The test's own user may do everything (SO_PEERCRED is our uid): the
 * admin verbs get past the rights check to the VM lookup. Other users,
 * played by a child as nobody, follow; users of groups of their own are
 * tests/checks.d/50-hostd-control.sh's.
 */
static void
test_rights_own_user(void **state)
{
	struct fx *f = *state;

	assert_ok(ask(f, "metrics\n"));
	assert_error(ask(f, "hint nosuch\n"), "unknown-vm", NULL);
	assert_error(ask(f, "set nosuch discard=on\n"), "unknown-vm", NULL);
}

/*
 * A client of another user, in a child that gives up root: uid nobody,
 * gid gid and, unless sup is -1, the supplementary group sup. It writes
 * req and passes back through a pipe what it read, or "connect: ERRNO".
 * The parent turns the loop until the child is done.
 */
static void
ask_as_groups(struct fx *f, gid_t gid, gid_t sup, const char *req, char *out,
    size_t outlen)
{
	struct sockaddr_un sun;
	int p[2], fd, spin, st = -1;
	ssize_t n, got = 0;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_int_not_equal(pid, -1);
	if (pid == 0) {
		char buf[1024];

		close(p[0]);
		if (setgroups(sup == (gid_t)-1 ? 0 : 1, &sup) != 0 ||
		    setgid(gid) != 0 || setuid(65534) != 0)
			_exit(2);
		fixture_sun(&sun, f->path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
			n = snprintf(buf, sizeof buf, "connect: %d", errno);
			_exit(write(p[1], buf, (size_t)n) == n ? 0 : 3);
		}
		if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
			_exit(4);
		while ((n = read(fd, buf, sizeof buf)) > 0)
			if (write(p[1], buf, (size_t)n) != n)
				_exit(5);
		_exit(0);
	}
	close(p[1]);
	for (spin = 0; spin < FIXTURE_SPINS; spin++) {
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		usleep(1000);
	}
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	while (got < (ssize_t)outlen - 1 &&
	    (n = read(p[0], out + got, outlen - 1 - (size_t)got)) > 0)
		got += n;
	out[got] = '\0';
	close(p[0]);
}

/* ask_as_groups with no supplementary group. */
static void
ask_as(struct fx *f, gid_t gid, const char *req, char *out, size_t outlen)
{
	ask_as_groups(f, gid, (gid_t)-1, req, out, outlen);
}

static bool
have_nogroup(void)
{
	return geteuid() == 0 && getgrnam("nogroup") != NULL &&
	    getgrgid(65534) != NULL;
}

/*
 * Other users, as root can play them: with the socket 0600 they cannot
 * connect at all; with control-group nogroup (gid 65534) its members may
 * read but not change anything, others still cannot connect.
 */
static void
test_rights_other_users(void **state)
{
	struct fx *f = *state;
	char out[1024], want[32];
	json_object *o;
	struct stat st;

	if (!have_nogroup())
		skip();
	assert_int_equal(chmod(f->dir, 0755), 0);
	snprintf(want, sizeof want, "connect: %d", EACCES);
	ask_as(f, 65534, "status\n", out, sizeof out);
	assert_string_equal(out, want);

	control_close();
	assert_int_equal(control_open(f->path, "nogroup", NULL), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(st.st_gid, 65534);
	ask_as(f, 65534, "status\n", out, sizeof out);
	o = json_tokener_parse(out);
	assert_non_null(o);
	assert_ok(o);
	ask_as(f, 65534, "hint vm-a\n", out, sizeof out);
	assert_error(json_tokener_parse(out), "denied",
	    "'hint' is not permitted: it needs root or the admin group "
	    "(admin-group)");
	ask_as(f, 65534, "set vm-a discard=off\n", out, sizeof out);
	assert_error(json_tokener_parse(out), "denied", NULL);
	/* An unknown verb is a usage error before any right is checked. */
	ask_as(f, 65534, "frobnicate\n", out, sizeof out);
	assert_error(json_tokener_parse(out), "usage", "unknown request");
	/* Not in the group: the mode keeps it out. */
	ask_as(f, 1, "status\n", out, sizeof out);
	assert_string_equal(out, want);
}

/* admin-group only: the socket is the admin group's, its members may
 * change state too. */
static void
test_rights_admin_group(void **state)
{
	struct fx *f = *state;
	char out[1024];

	if (!have_nogroup())
		skip();
	assert_int_equal(chmod(f->dir, 0755), 0);
	control_close();
	assert_int_equal(control_open(f->path, NULL, "nogroup"), 0);
	ask_as(f, 65534, "hint nosuch\n", out, sizeof out);
	assert_error(json_tokener_parse(out), "unknown-vm", "no such VM");
	ask_as(f, 65534, "status\n", out, sizeof out);
	assert_ok(json_tokener_parse(out));
}

static void
test_metrics(void **state)
{
	struct fx *f = *state;
	json_object *o;

	add_vm("vm-a");
	o = ask(f, "metrics\n");
	assert_true(get_ok(o));
	assert_non_null(strstr(get_str(o, "metrics"), "vm=\"vm-a\""));
	json_object_put(o);
}

/*
 * Members of the groups by a supplementary group only (SO_PEERGROUPS):
 * the peer's own gid is daemon's (1), nogroup is one of its groups.
 */
static void
test_rights_supplementary(void **state)
{
	struct fx *f = *state;
	char out[1024];

	if (!have_nogroup() || getgrgid(1) == NULL)
		skip();
	assert_int_equal(chmod(f->dir, 0755), 0);
	control_close();
	assert_int_equal(control_open(f->path, "nogroup", NULL), 0);
	ask_as_groups(f, 1, 65534, "status\n", out, sizeof out);
	assert_ok(json_tokener_parse(out));
	ask_as_groups(f, 1, 65534, "hint nosuch\n", out, sizeof out);
	assert_error(json_tokener_parse(out), "denied", NULL);

	control_close();
	assert_int_equal(control_open(f->path, NULL, "nogroup"), 0);
	ask_as_groups(f, 1, 65534, "hint nosuch\n", out, sizeof out);
	assert_error(json_tokener_parse(out), "unknown-vm", "no such VM");
}

/* status's last_command: the VM's last numbered Command, as guest.c
 * records it. */
static void
test_status_last_command(void **state)
{
	static const struct {
		Freehint__CommandType type;
		int cmd_state;
		const char *type_s, *result_s;
	} cases[] = {
		{ FREEHINT__COMMAND_TYPE__HINT_PASS, VM_CMD_PENDING, "hint",
		    "pending" },
		{ FREEHINT__COMMAND_TYPE__HINT_PASS, VM_CMD_FAILED, "hint",
		    "failed" },
		{ FREEHINT__COMMAND_TYPE__RELEASE, VM_CMD_OK, "release", "ok" },
		{ FREEHINT__COMMAND_TYPE__SNAPSHOT, VM_CMD_NONE, "other",
		    "unnumbered" },
	};
	struct fx *f = *state;
	json_object *o, *list, *lc, *x;
	struct vm *vm;
	size_t i;

	add_vm("vm-a");
	vm = vm_find("vm-a");
	for (i = 0; i < FH_ARRAY_SIZE(cases); i++) {
		vm->cmd_id = 40 + i;
		vm->cmd_type = cases[i].type;
		vm->cmd_state = cases[i].cmd_state;
		snprintf(
		    vm->cmd_detail, sizeof vm->cmd_detail, "detail %zu", i);
		o = ask(f, "status\n");
		assert_true(json_object_object_get_ex(o, "vms", &list));
		assert_true(json_object_object_get_ex(
		    json_object_array_get_idx(list, 0), "last_command", &lc));
		assert_true(json_object_object_get_ex(lc, "id", &x));
		assert_int_equal(json_object_get_int64(x), 40 + i);
		assert_string_equal(get_str(lc, "type"), cases[i].type_s);
		assert_string_equal(get_str(lc, "result"), cases[i].result_s);
		assert_string_equal(get_str(lc, "detail"), vm->cmd_detail);
		json_object_put(o);
	}
}

/*
 * What log lines fn writes to stderr while it runs, into buf: the log
 * writes there under log_init(..., 1, ...), as the fixture sets it.
 */
static int
stderr_of(int (*fn)(struct fx *), struct fx *f, char *buf, size_t len)
{
	char path[] = "/tmp/fh-test-control-err.XXXXXX";
	int fd, saved, rc;
	ssize_t n;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	rc = fn(f);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	n = pread(fd, buf, len - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return rc;
}

static int
open_again(struct fx *f)
{
	return control_open(f->path, NULL, NULL);
}

/*
 * A second daemon on the same path: refused while another process holds
 * PATH.lock (two daemons starting at once), and while a process listens
 * on the socket; the socket it found is left as it was.
 */
static void
test_second_daemon(void **state)
{
	struct fx *f = *state;
	struct stat st, st2;
	char lock[128], err[1024];
	int lfd, other;

	control_close();
	snprintf(lock, sizeof lock, "%s.lock", f->path);
	lfd = open(lock, O_RDWR | O_CLOEXEC);
	assert_true(lfd >= 0);
	assert_int_equal(flock(lfd, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(stderr_of(open_again, f, err, sizeof err), -1);
	assert_non_null(strstr(err, "another process holds"));
	assert_non_null(strstr(err, lock));
	/* Refused before the socket is made. */
	assert_int_equal(stat(f->path, &st), -1);
	close(lfd);

	other = fixture_listen(f->path);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(stderr_of(open_again, f, err, sizeof err), -1);
	assert_non_null(strstr(err, "another process listens there"));
	assert_int_equal(stat(f->path, &st2), 0);
	assert_int_equal(st2.st_ino, st.st_ino);
	close(other);
	/* Nobody listens on it now: a stale file, replaced. */
	control_close();
	assert_int_equal(control_open(f->path, NULL, NULL), 0);
	assert_ok(ask(f, "status\n"));
}

/* The worker's case: the socket file and its lock are not its to keep
 * or remove. */
static void
test_disown(void **state)
{
	struct fx *f = *state;
	struct stat st;
	char lock[128];
	int lfd;

	snprintf(lock, sizeof lock, "%s.lock", f->path);
	lfd = open(lock, O_RDWR | O_CLOEXEC);
	assert_true(lfd >= 0);
	assert_int_equal(flock(lfd, LOCK_EX | LOCK_NB), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	control_disown();
	/* Still serving: only the file is not ours any more. */
	assert_ok(ask(f, "status\n"));
	assert_int_equal(flock(lfd, LOCK_EX | LOCK_NB), 0);
	close(lfd);
	control_close();
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
}

/* One process: priv.c answers before control_notify returns. */
static void
test_notify_in_process(void **state)
{
	struct fx *f = *state;
	const char *e;
	json_object *o;

	o = ask(f, "notify started vm-a\n");
	assert_false(get_ok(o));
	assert_string_equal(get_str(o, "code"), "failed");
	/* The libvirt source is not running here, or not built. */
	e = get_str(o, "error");
	if (strcmp(e, "built without libvirt") != 0)
		assert_string_equal(e, "libvirt source not running");
	json_object_put(o);
	/* The connection it used is gone: the next one is served. */
	assert_ok(ask(f, "status\n"));
}

static int
parent_notify(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *event, *name;

	event = ps_get_str(rd, PS_STR_MAX);
	name = ps_get_str(rd, PS_STR_MAX);
	if (rd->bad || event == NULL || name == NULL)
		return -1;
	notified.id = id;
	snprintf(notified.event, sizeof notified.event, "%s", event);
	snprintf(notified.name, sizeof notified.name, "%s", name);
	notified.count++;
	return 0;
}

static const struct ps_handler parent_handlers[] = {
	{ PS_NOTIFY, parent_notify },
};

static void
parent_lost(struct ps_chan *c, const char *why)
{
	notified.lost = true;
}

/* This process as the worker, the test as its parent. */
static void
parent_start(void)
{
	memset(&notified, 0, sizeof notified);
	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, parent_sv),
	    0);
	ps_worker_start(ev_base, parent_sv[0]);
	parent = ps_chan_new(ev_base, parent_sv[1], parent_handlers,
	    FH_ARRAY_SIZE(parent_handlers), parent_lost, NULL);
	assert_true(ps_worker_active());
}

static void
parent_answer(uint32_t rc, const char *msg)
{
	struct ps_buf b = { 0 };

	ps_put_u32(&b, rc);
	ps_put_str(&b, msg);
	ps_send(parent, PS_NOTIFY_DONE, notified.id, &b);
}

/* The request is at the parent, and the client has no answer yet. */
static void
notify_asked(struct fx *f, const char *req, int count)
{
	int i;

	client_connect(f);
	put(f, req);
	UNIT_SPIN_UNTIL(pump(f), SPIN_MAX, notified.count == count);
	for (i = 0; i < 50; i++)
		pump(f);
	assert_int_equal(f->rxlen, 0);
	assert_false(f->eof);
}

/* In the worker: answered when the parent's answer comes, as it says. */
static void
test_notify_worker(void **state)
{
	struct fx *f = *state;

	parent_start();
	notify_asked(f, "notify started vm-a\n", 1);
	assert_string_equal(notified.event, "started");
	assert_string_equal(notified.name, "vm-a");
	parent_answer(0, "vm-a: started noted");
	assert_ok(answer(f));
	assert_false(notified.lost);

	notify_asked(f, "notify bogus vm-a\n", 2);
	assert_string_equal(notified.event, "bogus");
	parent_answer(1, "unknown event 'bogus'");
	assert_error(answer(f), "failed", "unknown event 'bogus'");

	/* The parent gone: what waits on it fails, and says why. */
	notify_asked(f, "notify stopped vm-a\n", 3);
	ps_worker_stop();
	assert_false(ps_worker_active());
	assert_error(answer(f), "failed", "the parent is gone");
	assert_true(notified.lost);
}

/* The descriptors this process has open. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/*
 * A client that leaves while its notify is at the parent. The daemon
 * reads nothing from it meanwhile, so it finds it gone when the answer
 * is written: then the connection is freed (its descriptor here; its
 * state, whose leak ASan and valgrind would see).
 */
static void
test_notify_client_gone(void **state)
{
	struct fx *f = *state;
	int fds, i;

	/* The daemon ignores it too: the answer is written to a peer gone. */
	signal(SIGPIPE, SIG_IGN);
	parent_start();
	fds = open_fds();
	notify_asked(f, "notify started vm-a\n", 1);
	close(f->fd);
	f->fd = -1;
	for (i = 0; i < 50; i++)
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
	parent_answer(0, "vm-a: started noted");
	UNIT_SPIN_UNTIL(event_base_loop(ev_base, EVLOOP_NONBLOCK), SPIN_MAX,
	    open_fds() == fds);
	/* And the daemon serves the next one. */
	assert_ok(ask(f, "status\n"));
	signal(SIGPIPE, SIG_DFL);
}

/* The agent the test plays for test_hint_release: one message. */
static void
agent_send(int fd, uint8_t type, const ProtobufCMessage *m)
{
	struct evbuffer *out = evbuffer_new();

	assert_non_null(out);
	assert_int_equal(fh_frame_put(out, type, m), FH_OK);
	while (evbuffer_get_length(out) > 0)
		assert_true(evbuffer_write(out, fd) > 0);
	evbuffer_free(out);
}

/* Turn the loop until the daemon sent the agent a whole message. */
static void
agent_next(int fd, struct evbuffer *in, uint8_t type, struct fh_msg *m)
{
	int err = FH_ENEED, spin;

	for (spin = 0; spin < SPIN_MAX; spin++) {
		if ((err = fh_msg_pull(in, m)) != FH_ENEED)
			break;
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		if (evbuffer_read(in, fd, -1) <= 0)
			usleep(1000);
	}
	assert_int_equal(err, FH_OK);
	assert_string_equal(fh_msg_name(m->type), fh_msg_name(type));
}

/* The VM's last_command in status. */
static void
last_command(struct fx *f, const char *type, const char *result, uint64_t id)
{
	json_object *o, *list, *lc, *x;

	o = ask(f, "status\n");
	assert_true(json_object_object_get_ex(o, "vms", &list));
	assert_true(json_object_object_get_ex(
	    json_object_array_get_idx(list, 0), "last_command", &lc));
	assert_string_equal(get_str(lc, "type"), type);
	assert_string_equal(get_str(lc, "result"), result);
	assert_true(json_object_object_get_ex(lc, "id", &x));
	assert_int_equal(json_object_get_int64(x), id);
	json_object_put(o);
}

/*
 * hint and release with an agent connected: each answered ok once the
 * agent has its Command, which status then shows as the last one,
 * pending until the agent's CommandResult.
 */
static void
test_hint_release(void **state)
{
	Freehint__CommandResult r = FREEHINT__COMMAND_RESULT__INIT;
	Freehint__Hello h = FREEHINT__HELLO__INIT;
	struct fx *f = *state;
	struct fake_qemu q;
	struct evbuffer *in;
	struct fh_msg m;
	struct vm *vm;
	uint64_t id;
	int sv[2];

	assert_int_equal(punch_init(ev_base, 1), 0);
	assert_int_equal(fake_qemu_init(&q), 0);
	vm = fixture_vm(&q, "vm-a", 0, NULL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_non_null(guest_new(vm, sv[0], VM_TRANSPORT_VSOCK));
	evutil_make_socket_nonblocking(sv[1]);
	in = evbuffer_new();
	assert_non_null(in);
	h.proto_version = FH_PROTO_MIN;
	h.has_max_proto_version = true;
	h.max_proto_version = FH_PROTO_MAX;
	h.agent_version = "test";
	h.page_size = 4096;
	h.ram_bytes = FAKE_RAM_SIZE;
	h.max_pfn = FAKE_RAM_SIZE / 4096;
	agent_send(sv[1], FH_MSG_HELLO, &h.base);
	agent_next(sv[1], in, FH_MSG_WELCOME, &m);
	fh_msg_free(&m);

	/* A pass captures at most what the backing holds: some pages. */
	memset(q.ram, 0x5a, 8 << 20);
	assert_ok(ask(f, "hint vm-a\n"));
	agent_next(sv[1], in, FH_MSG_COMMAND, &m);
	assert_int_equal(m.u.command->type, FREEHINT__COMMAND_TYPE__HINT_PASS);
	assert_true(m.u.command->has_id);
	id = m.u.command->id;
	fh_msg_free(&m);
	last_command(f, "hint", "pending", id);
	r.id = id;
	r.ok = true;
	r.detail = "hint pass started";
	agent_send(sv[1], FH_MSG_COMMAND_RESULT, &r.base);
	FIXTURE_SPIN_UNTIL(ev_base, vm->cmd_state == VM_CMD_OK);
	last_command(f, "hint", "ok", id);

	assert_ok(ask(f, "release vm-a\n"));
	agent_next(sv[1], in, FH_MSG_COMMAND, &m);
	assert_int_equal(m.u.command->type, FREEHINT__COMMAND_TYPE__RELEASE);
	assert_true(m.u.command->id > id);
	id = m.u.command->id;
	fh_msg_free(&m);
	last_command(f, "release", "pending", id);

	/* The sessions first: their discards end on the workers. */
	vm_remove_all();
	punch_shutdown();
	close(sv[1]);
	evbuffer_free(in);
	fake_qemu_free(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		UNIT_FX(test_socket_mode),
		UNIT_FX(test_open_errors),
		UNIT_FX(test_status_empty),
		UNIT_FX(test_status_vm),
		UNIT_FX(test_set),
		UNIT_FX(test_unknown_vm),
		UNIT_FX(test_hint_no_agent),
		UNIT_FX(test_usage),
		UNIT_FX(test_too_long),
		UNIT_FX(test_split),
		UNIT_FX(test_several),
		UNIT_FX(test_client_gone),
		UNIT_FX(test_conn_cap_idle),
		UNIT_FX(test_rights_own_user),
		UNIT_FX(test_rights_other_users),
		UNIT_FX(test_rights_admin_group),
		UNIT_FX(test_metrics),
		UNIT_FX(test_rights_supplementary),
		UNIT_FX(test_status_last_command),
		UNIT_FX(test_second_daemon),
		UNIT_FX(test_disown),
		UNIT_FX(test_notify_in_process),
		UNIT_FX(test_notify_worker),
		UNIT_FX(test_notify_client_gone),
		UNIT_FX(test_hint_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The static VM source (host-daemon/qmp.c): its --vm lines, and its
 * monitors against a fake QEMU monitor, a unix socket the test listens
 * on and answers as QEMU would. The listener is the test process, which
 * is no QEMU: the VM is announced to the registry unservable, with the
 * reason. A monitor missing or lost is dialled again. (The QMP client
 * itself has its tests in test_hostd_qmpc.c.) Each case gets a fresh
 * fixture; the teardown is the one cleanup path.
 */
#include <errno.h>
#include <limits.h>
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

struct event_base *ev_base;
struct config *conf;

struct fx {
	char dir[64];
	char path[100]; /* the monitor */
	int lfd; /* listening, -1 until fixture_listen */
	int fd; /* the monitor's connection */
	struct fixture_lines rx; /* what freehintd wrote, unread */
	struct vm_conf vc;
};

static int setup(void **);
static int teardown(void **);
static void mon_accept(struct fx *);
static void put(struct fx *, const char *);
static json_object *take(struct fx *, const char *, uint64_t *);
static void negotiate(struct fx *);

static int
setup(void **state)
{
	struct fx *f;

	f = xcalloc(1, sizeof *f);
	f->lfd = f->fd = -1;
	assert_int_equal(fixture_daemon_start("test_hostd_qmp", 0), 0);
	fixture_mkdir(
	    f->dir, sizeof f->dir, "qmp", f->path, sizeof f->path, "qmp.sock");
	f->vc.name = "vm1";
	f->vc.qmp = f->path;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	qmp_static_stop_all();
	fixture_daemon_end();
	if (f->fd != -1)
		close(f->fd);
	if (f->lfd != -1)
		close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Turn the loop until freehintd connected to the monitor. */
static void
mon_accept(struct fx *f)
{
	if (f->fd != -1)
		close(f->fd);
	f->rx.len = 0;
	f->fd = fixture_accept(f->lfd);
}

static void
put(struct fx *f, const char *s)
{
	assert_int_equal(write(f->fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* The next command freehintd sent, which must be `want`; its id. */
static json_object *
take(struct fx *f, const char *want, uint64_t *id)
{
	json_object *o, *v;

	o = fixture_take_json(ev_base, f->fd, &f->rx);
	assert_true(json_object_object_get_ex(o, "execute", &v));
	assert_string_equal(json_object_get_string(v), want);
	assert_true(json_object_object_get_ex(o, "id", &v));
	*id = json_object_get_uint64(v);
	return o;
}

/* Answer command id with the JSON text r. */
static void
reply(struct fx *f, uint64_t id, const char *r)
{
	char buf[512];

	snprintf(buf, sizeof buf, "{\"return\": %s, \"id\": %llu}\r\n", r,
	    (unsigned long long)id);
	put(f, buf);
}

/* Answer command id with QEMU's error. */
static void
refuse(struct fx *f, uint64_t id)
{
	char buf[256];

	snprintf(buf, sizeof buf,
	    "{\"error\": {\"class\": \"GenericError\", \"desc\": "
	    "\"busy\"}, \"id\": %llu}\r\n",
	    (unsigned long long)id);
	put(f, buf);
}

static void
negotiate(struct fx *f)
{
	uint64_t id;

	mon_accept(f);
	put(f,
	    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": "
	    "2, \"major\": 7}}, \"capabilities\": []}}\r\n");
	json_object_put(take(f, "qmp_capabilities", &id));
	reply(f, id, "{}");
}

static void
test_parse_vm(void **state)
{
	struct vm_conf vc;
	char err[128];

	assert_int_equal(qmp_parse_vm("name=a,qmp=/run/a.sock,channel=/run/"
	                              "a.chan,cid=3",
	                     &vc, err, sizeof err),
	    0);
	assert_string_equal(vc.name, "a");
	assert_string_equal(vc.qmp, "/run/a.sock");
	assert_string_equal(vc.channel, "/run/a.chan");
	assert_int_equal(vc.cid, 3);
	free(vc.name);
	free(vc.qmp);
	free(vc.channel);
	assert_int_equal(
	    qmp_parse_vm("qmp=/x,name=b", &vc, err, sizeof err), 0);
	assert_null(vc.channel);
	assert_int_equal(vc.cid, 0);
	free(vc.name);
	free(vc.qmp);
	assert_int_equal(qmp_parse_vm("name=a", &vc, err, sizeof err), -1);
	assert_string_equal(err, "vm: name= and qmp= are required");
	assert_null(vc.name);
	assert_int_equal(
	    qmp_parse_vm("name=a,qmp=/x,name=b", &vc, err, sizeof err), -1);
	assert_string_equal(err, "vm: bad or repeated 'name'");
	assert_null(vc.name);
	assert_int_equal(qmp_parse_vm("name=a,qmp", &vc, err, sizeof err), -1);
	assert_string_equal(err, "vm: 'qmp' is not key=value");
	assert_int_equal(qmp_parse_vm("name=a,qmp=", &vc, err, sizeof err), -1);
	assert_int_equal(
	    qmp_parse_vm("name=a,qmp=/x,mem=1", &vc, err, sizeof err), -1);
	/* CIDs 0 to 2 are the hypervisor's and the host's. */
	assert_int_equal(
	    qmp_parse_vm("name=a,qmp=/x,cid=2", &vc, err, sizeof err), -1);
	assert_int_equal(
	    qmp_parse_vm("name=a,qmp=/x,cid=4294967295", &vc, err, sizeof err),
	    -1);
	assert_int_equal(qmp_parse_vm("", &vc, err, sizeof err), -1);
}

/*
 * Negotiated; the listener is this test, not a QEMU: the VM is known,
 * unservable, with the reason. The source asks for migration events and
 * whether a migration runs already.
 */
static void
test_not_qemu(void **state)
{
	struct fx *f = *state;
	char exe[PATH_MAX], want[512];
	json_object *o, *args, *caps, *cap, *v;
	struct vm *vm;
	uint64_t id;
	ssize_t n;

	f->lfd = fixture_listen(f->path);
	assert_int_equal(qmp_static_start(&f->vc), 0);
	negotiate(f);
	o = take(f, "migrate-set-capabilities", &id);
	assert_true(json_object_object_get_ex(o, "arguments", &args));
	assert_true(json_object_object_get_ex(args, "capabilities", &caps));
	cap = json_object_array_get_idx(caps, 0);
	assert_true(json_object_object_get_ex(cap, "capability", &v));
	assert_string_equal(json_object_get_string(v), "events");
	assert_true(json_object_object_get_ex(cap, "state", &v));
	assert_true(json_object_get_boolean(v));
	json_object_put(o);
	reply(f, id, "{}");
	json_object_put(take(f, "query-migrate", &id));
	reply(f, id, "{}");
	vm = vm_find("vm1");
	assert_non_null(vm);
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	snprintf(want, sizeof want,
	    "the monitor's listener (pid %d, %.160s) is not a QEMU process",
	    (int)getpid(), exe);
	assert_string_equal(vm->unservable, want);
	assert_string_equal(vm->mode_why, want);
	assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
	assert_string_equal(vm->source, "static");
	/* Nothing of it is read: no human monitor command comes. */
	event_base_loop(ev_base, EVLOOP_NONBLOCK);
	assert_int_equal(
	    recv(f->fd, f->rx.buf, sizeof f->rx.buf, MSG_DONTWAIT), -1);
}

/* QEMU refuses the events capability (a migration runs): polled. */
static void
test_polls_without_events(void **state)
{
	struct fx *f = *state;
	uint64_t id;
	int i;

	f->lfd = fixture_listen(f->path);
	assert_int_equal(qmp_static_start(&f->vc), 0);
	negotiate(f);
	json_object_put(take(f, "migrate-set-capabilities", &id));
	refuse(f, id);
	/* The first query-migrate, then more, each after the last's
	 * answer. */
	for (i = 0; i < 3; i++) {
		json_object_put(take(f, "query-migrate", &id));
		reply(f, id, "{\"status\": \"active\"}");
	}
	/* Over: the capability is asked for again. */
	json_object_put(take(f, "query-migrate", &id));
	reply(f, id, "{\"status\": \"completed\"}");
	json_object_put(take(f, "migrate-set-capabilities", &id));
}

/* No monitor yet: known, unservable with the reason, dialled again. */
static void
test_no_monitor(void **state)
{
	struct fx *f = *state;
	char want[256];
	struct vm *vm;

	assert_int_equal(qmp_static_start(&f->vc), 0);
	vm = vm_find("vm1");
	assert_non_null(vm);
	snprintf(
	    want, sizeof want, "monitor %s: %s", f->path, strerror(ENOENT));
	assert_string_equal(vm->unservable, want);
	f->lfd = fixture_listen(f->path);
	negotiate(f);
}

/* The monitor goes away: the reason is shown, and it is dialled again. */
static void
test_lost(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	uint64_t id;

	f->lfd = fixture_listen(f->path);
	assert_int_equal(qmp_static_start(&f->vc), 0);
	negotiate(f);
	json_object_put(take(f, "migrate-set-capabilities", &id));
	close(f->fd);
	f->fd = -1;
	vm = vm_find("vm1");
	assert_non_null(vm);
	FIXTURE_SPIN_UNTIL(ev_base,
	    vm->unservable != NULL &&
	        strstr(vm->unservable, "not a QEMU") == NULL);
	negotiate(f);
}

/* SIGHUP: a VM whose line is gone is removed, a new one started. */
static void
test_reload(void **state)
{
	struct fx *f = *state;
	struct vm_conf_list list;
	struct vm_conf b = { .name = "vm2", .qmp = f->path };

	assert_int_equal(qmp_static_start(&f->vc), 0);
	assert_non_null(vm_find("vm1"));
	TAILQ_INIT(&list);
	TAILQ_INSERT_TAIL(&list, &b, entry);
	qmp_static_reload(&list);
	assert_null(vm_find("vm1"));
	assert_non_null(vm_find("vm2"));
	/* The same line again: kept as it is. */
	vm_set_error(vm_find("vm2"), "marker");
	qmp_static_reload(&list);
	assert_string_equal(vm_find("vm2")->last_error, "marker");
	qmp_static_stop_all();
	assert_null(vm_find("vm2"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_vm),
		UNIT_FX(test_not_qemu),
		UNIT_FX(test_polls_without_events),
		UNIT_FX(test_no_monitor),
		UNIT_FX(test_lost),
		UNIT_FX(test_reload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

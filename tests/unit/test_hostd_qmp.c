/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The static VM source (host-daemon/qmp.c): its --vm lines, and its
 * monitors against a fake QEMU monitor, a unix socket the test listens
 * on and answers as QEMU 7.2 would. Where the listener is the test
 * process, which is no QEMU, the VM is announced to the registry
 * unservable, with the reason. To be taken for a QEMU, the socket is
 * bound and listened on by a child exec'd from a link to this program
 * named qemu-system-x86_64 (so that /proc/PID/exe says so), which maps
 * a memfd as its guest RAM and hands the listening socket to the test:
 * the test still plays the monitor, and freehintd's real checks pass.
 * What qmp.c tells the registry is recorded on the way (vm_sink). A
 * monitor missing or lost is dialled again. (The QMP client itself has
 * its tests in test_hostd_qmpc.c.) Each case gets a fresh fixture; the
 * teardown is the one cleanup path.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	char exe[100]; /* this program, linked as qemu-system-x86_64 */
	pid_t qpid; /* the fake QEMU, 0 when none */
	int ctl; /* the fake QEMU's end: closed, it exits */
	uint64_t hva; /* where the fake QEMU maps its RAM */
	bool deep; /* deep_mkdir's directories are there */
};

/* The fake QEMU's guest RAM: q35's TSEG (16 MiB) takes the top. */
#define FAKE_QEMU_RAM (64ULL << 20)
/* argv[1] that makes this program the fake QEMU (fake_qemu_main). */
#define FAKE_QEMU_ARG "-fake-qemu"
/* Where it finds its monitor's path when argv does not name it. */
#define FAKE_QEMU_ENV "FH_TEST_QMP_PATH"
/* Directories of 250 bytes' names nested this deep: a path over 4 KiB. */
#define DEEP_LEVELS 20

/* What qmp.c told the registry, "what name[ arg]" separated by ';'. */
static char sunk[1024];

static int setup(void **);
static int teardown(void **);
static void mon_accept(struct fx *);
static void put(struct fx *, const char *);
static json_object *take(struct fx *, const char *, uint64_t *);
static void negotiate(struct fx *);
static int fake_qemu_main(const char *);
static void qemu_start(struct fx *, const char *, bool);
static void sink_note(const char *, ...);
static void exe_link(int, const char *);
static void reply_text(struct fx *, uint64_t, const char *);
static uint64_t take_hmp(struct fx *, const char *);
static void hmp(struct fx *, const char *);
static void map_rest(struct fx *);
static void map_reload(struct fx *, struct vm *);
static uint64_t serve_start(struct fx *, const char *);
static struct vm *serve(struct fx *);
static void event(struct fx *, const char *, const char *);
static void sunk_until(const char *);
static const char *deep_name(void);
static int deep_mkdir(struct fx *);
static void deep_remove(struct fx *);
static void deep_qemu_start(struct fx *, bool);

static void
sink_note(const char *fmt, ...)
{
	size_t len = strlen(sunk);
	va_list ap;

	if (len > 0 && len < sizeof sunk - 1)
		sunk[len++] = ';';
	va_start(ap, fmt);
	vsnprintf(sunk + len, sizeof sunk - len, fmt, ap);
	va_end(ap);
}

/* The registry's calls, noted on the way to it. */
static int
sink_add(const struct vm_desc *d, vm_hmp_fn fn, void *ctx)
{
	return vm_registry.add(d, fn, ctx);
}

static void
sink_remove(const char *name)
{
	vm_registry.remove(name);
}

static void
sink_migration(const char *name, enum vm_migration_event ev)
{
	sink_note("migration %s %s", name,
	    ev == VM_MIGRATION_STARTED        ? "started"
	        : ev == VM_MIGRATION_FINISHED ? "finished"
	                                      : "postcopy");
	vm_registry.migration(name, ev);
}

static void
sink_dma(const char *name, const char *why)
{
	vm_registry.dma(name, why);
}

static void
sink_policy(const char *name, const char *xml)
{
	vm_registry.policy(name, xml);
}

static void
sink_speed(const char *name, vm_speed_fn fn, void *ctx)
{
	vm_registry.speed(name, fn, ctx);
}

static void
sink_running(const char *name, bool running)
{
	sink_note("running %s %d", name, running);
	vm_registry.running(name, running);
}

static void
sink_changed(const char *name)
{
	sink_note("changed %s", name);
	vm_registry.changed(name);
}

static const struct vm_sink sink = { sink_add, sink_remove, sink_migration,
	sink_dma, sink_policy, sink_speed, sink_running, sink_changed };

static int
setup(void **state)
{
	struct fx *f;

	f = xcalloc(1, sizeof *f);
	f->lfd = f->fd = f->ctl = -1;
	sunk[0] = '\0';
	vm_sink = &sink;
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
	vm_sink = &vm_registry;
	if (f->fd != -1)
		close(f->fd);
	if (f->lfd != -1)
		close(f->lfd);
	/* Its end of ctl gone, the fake QEMU exits. */
	if (f->ctl != -1)
		close(f->ctl);
	if (f->qpid > 0)
		waitpid(f->qpid, NULL, 0);
	if (f->exe[0] != '\0')
		unlink(f->exe);
	if (f->deep)
		deep_remove(f);
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
	char buf[2048];

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

/*
 * The fake QEMU, in the child: it binds and listens on the monitor's
 * path (so that SO_PEERCRED names it and it holds the listener), maps a
 * memfd shared as QEMU's memory-backend-memfd does, and sends the test
 * the listening socket and the RAM's address on fd 3. It lives until
 * the test closes its end. path "-": the path is in the environment.
 */
static int
fake_qemu_main(const char *path)
{
	char cbuf[CMSG_SPACE(sizeof(int))], c;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	uint64_t hva;
	void *ram;
	int lfd, mfd;

	if (strcmp(path, "-") == 0 && (path = getenv(FAKE_QEMU_ENV)) == NULL)
		return 1;
	if ((lfd = fh_unix_listen(path, 8, SOCK_NONBLOCK)) == -1)
		return 1;
	if ((mfd = memfd_create("memory-backend-memfd", MFD_CLOEXEC)) == -1 ||
	    ftruncate(mfd, (off_t)FAKE_QEMU_RAM) != 0)
		return 1;
	ram = mmap(
	    NULL, FAKE_QEMU_RAM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (ram == MAP_FAILED)
		return 1;
	hva = (uint64_t)(uintptr_t)ram;
	memset(&msg, 0, sizeof msg);
	memset(cbuf, 0, sizeof cbuf);
	iov.iov_base = &hva;
	iov.iov_len = sizeof hva;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof cbuf;
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &lfd, sizeof lfd);
	if (sendmsg(3, &msg, 0) != (ssize_t)sizeof hva)
		return 1;
	while (read(3, &c, 1) > 0)
		;
	return 0;
}

/*
 * This program as name in directory dirfd: a hard link, or a copy where
 * the directory is on another file system.
 */
static void
exe_link(int dirfd, const char *name)
{
	char self[PATH_MAX], buf[65536];
	ssize_t n;
	int in, out;

	n = readlink("/proc/self/exe", self, sizeof self - 1);
	assert_true(n > 0);
	self[n] = '\0';
	if (linkat(AT_FDCWD, self, dirfd, name, 0) == 0)
		return;
	in = open(self, O_RDONLY | O_CLOEXEC);
	assert_int_not_equal(in, -1);
	out =
	    openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
	assert_int_not_equal(out, -1);
	while ((n = read(in, buf, sizeof buf)) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

/*
 * The fake QEMU started from exe (a path: execve names the executable
 * after what it resolves to), listening on the monitor's path, which
 * its command line names (named) or its environment holds.
 */
static void
qemu_start(struct fx *f, const char *exe, bool named)
{
	char cbuf[CMSG_SPACE(sizeof(int))], env[160];
	char *argv[] = { "qemu-system-x86_64", FAKE_QEMU_ARG,
		named ? f->path : "-", NULL };
	char *envp[] = { env, NULL };
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	int sv[2];

	snprintf(env, sizeof env, "%s=%s", FAKE_QEMU_ENV, f->path);
	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->qpid = fork();
	assert_int_not_equal(f->qpid, -1);
	if (f->qpid == 0) {
		/* dup2 clears close-on-exec, except onto the fd itself. */
		if ((sv[1] == 3 ? fcntl(3, F_SETFD, 0) : dup2(sv[1], 3)) == -1)
			_exit(127);
		execve(exe, argv, envp);
		_exit(127);
	}
	close(sv[1]);
	f->ctl = sv[0];
	memset(&msg, 0, sizeof msg);
	iov.iov_base = &f->hva;
	iov.iov_len = sizeof f->hva;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof cbuf;
	assert_int_equal(
	    recvmsg(f->ctl, &msg, MSG_CMSG_CLOEXEC), (ssize_t)sizeof f->hva);
	cm = CMSG_FIRSTHDR(&msg);
	assert_non_null(cm);
	assert_int_equal(cm->cmsg_type, SCM_RIGHTS);
	memcpy(&f->lfd, CMSG_DATA(cm), sizeof f->lfd);
}

/*
 * What QEMU 7.2 prints for "info mtree -f" with -machine
 * q35,memory-backend=mem0 -m 64M, before the firmware closes SMRAM;
 * HMP ends its lines with CR LF.
 */
static const char mtree_q35[] =
    "FlatView #0\r\n"
    " AS \"I/O\", root: io\r\n"
    " Root memory region: io\r\n"
    "  0000000000000000-0000000000000007 (prio 0, i/o): dma-chan\r\n"
    "  0000000000000008-000000000000000f (prio 0, i/o): dma-cont\r\n"
    "\r\n"
    "FlatView #1\r\n"
    " AS \"memory\", root: system\r\n"
    " AS \"cpu-memory-0\", root: system\r\n"
    " Root memory region: system\r\n"
    "  0000000000000000-00000000000bffff (prio 0, ram): mem0\r\n"
    "  00000000000c0000-00000000000dffff (prio 1, rom): pc.rom\r\n"
    "  00000000000e0000-00000000000fffff (prio 0, rom): pc.bios "
    "@0000000000020000\r\n"
    "  0000000000100000-0000000003ffffff (prio 0, ram): mem0 "
    "@0000000000100000\r\n"
    "  00000000b0000000-00000000bfffffff (prio 0, i/o): "
    "pcie-mmcfg-mmio\r\n"
    "  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic\r\n"
    "  00000000fed00000-00000000fed003ff (prio 0, i/o): hpet\r\n"
    "  00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi\r\n"
    "  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios\r\n"
    "\r\n";

/* query-migrate-parameters of QEMU 7.2 with its defaults. */
static const char params_7_2[] =
    "{\"cpu-throttle-tailslow\": false, \"xbzrle-cache-size\": 67108864, "
    "\"cpu-throttle-initial\": 20, \"announce-max\": 550, "
    "\"decompress-threads\": 2, \"compress-threads\": 8, "
    "\"compress-level\": 1, \"multifd-channels\": 2, "
    "\"multifd-compression\": \"none\", \"announce-initial\": 50, "
    "\"block-incremental\": false, \"compress-wait-thread\": true, "
    "\"downtime-limit\": 300, \"tls-authz\": \"\", "
    "\"multifd-zstd-level\": 1, \"announce-rounds\": 5, "
    "\"announce-step\": 100, \"tls-creds\": \"\", "
    "\"multifd-zlib-level\": 1, \"max-cpu-throttle\": 99, "
    "\"max-postcopy-bandwidth\": 0, \"tls-hostname\": \"\", "
    "\"throttle-trigger-threshold\": 50, \"max-bandwidth\": 134217728, "
    "\"x-checkpoint-delay\": 20000, \"cpu-throttle-increment\": 10}";

/* Answer command id with text, a string, as human-monitor-command does. */
static void
reply_text(struct fx *f, uint64_t id, const char *text)
{
	json_object *o;

	o = json_object_new_object();
	json_object_object_add(o, "return", json_object_new_string(text));
	json_object_object_add(o, "id", json_object_new_int64((int64_t)id));
	put(f, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	put(f, "\r\n");
	json_object_put(o);
}

/* The next command, which must be the human monitor's want; its id. */
static uint64_t
take_hmp(struct fx *f, const char *want)
{
	json_object *o, *args, *v;
	uint64_t id;

	o = take(f, "human-monitor-command", &id);
	assert_true(json_object_object_get_ex(o, "arguments", &args));
	assert_true(json_object_object_get_ex(args, "command-line", &v));
	assert_string_equal(json_object_get_string(v), want);
	json_object_put(o);
	return id;
}

/* The human monitor's want, next, answered as the fake q35 QEMU would. */
static void
hmp(struct fx *f, const char *want)
{
	static const struct {
		const char *cmd, *out;
	} qemu[] = {
		{ "qom-get /machine memory-backend", "\"/objects/mem0\"\r\n" },
		{ "qom-get /machine type", "\"pc-q35-7.2-machine\"\r\n" },
		{ "qom-get /machine/q35 below-4g-mem-size", "67108864\r\n" },
		{ "qom-get /machine/q35/mch extended-tseg-mbytes", "16\r\n" },
		{ "info mtree -f", mtree_q35 },
	};
	unsigned long long gpa;
	char out[128];
	uint64_t id;
	size_t i;

	id = take_hmp(f, want);
	for (i = 0; i < FH_ARRAY_SIZE(qemu); i++)
		if (strcmp(want, qemu[i].cmd) == 0) {
			reply_text(f, id, qemu[i].out);
			return;
		}
	assert_int_equal(sscanf(want, "gpa2hva 0x%llx", &gpa), 1);
	snprintf(out, sizeof out,
	    "Host virtual address for 0x%llx (mem0) is 0x%" PRIx64 "\r\n", gpa,
	    f->hva + (uint64_t)gpa);
	reply_text(f, id, out);
}

/* The map's commands after the first, in the order the registry asks. */
static void
map_rest(struct fx *f)
{
	hmp(f, "qom-get /machine type");
	hmp(f, "qom-get /machine/q35 below-4g-mem-size");
	hmp(f, "qom-get /machine/q35/mch extended-tseg-mbytes");
	hmp(f, "info mtree -f");
	/* RAM less SMRAM: SMBASE, the legacy window and TSEG. */
	hmp(f, "gpa2hva 0x0");
	hmp(f, "gpa2hva 0x50000");
	hmp(f, "gpa2hva 0x100000");
}

/* The map read again (a reset, a migration over), to its end. */
static void
map_reload(struct fx *f, struct vm *vm)
{
	hmp(f, "qom-get /machine memory-backend");
	map_rest(f);
	FIXTURE_SPIN_UNTIL(ev_base, vm->mapload == NULL);
}

/*
 * The fake QEMU started from exe and freehintd's connection negotiated,
 * up to the registry's first command for the map, whose id this returns
 * unanswered: announced as servable, the VM's map is asked for at once,
 * before the migration events and whether a migration runs.
 */
static uint64_t
serve_start(struct fx *f, const char *exe)
{
	uint64_t hid, id;

	qemu_start(f, exe, true);
	assert_int_equal(qmp_static_start(&f->vc), 0);
	negotiate(f);
	hid = take_hmp(f, "qom-get /machine memory-backend");
	json_object_put(take(f, "migrate-set-capabilities", &id));
	reply(f, id, "{}");
	/* QEMU 7.2 before any migration: no status. */
	json_object_put(take(f, "query-migrate", &id));
	reply(f, id, "{}");
	return hid;
}

/* The fake QEMU served, its map read: the VM. */
static struct vm *
serve(struct fx *f)
{
	struct vm *vm;
	uint64_t id;

	snprintf(f->exe, sizeof f->exe, "%s/qemu-system-x86_64", f->dir);
	exe_link(AT_FDCWD, f->exe);
	id = serve_start(f, f->exe);
	reply_text(f, id, "\"/objects/mem0\"\r\n");
	map_rest(f);
	vm = vm_find("vm1");
	assert_non_null(vm);
	FIXTURE_SPIN_UNTIL(ev_base, vm->mapload == NULL);
	return vm;
}

/* A QMP event as QEMU sends it; data NULL for none. */
static void
event(struct fx *f, const char *name, const char *data)
{
	char buf[256];

	snprintf(buf, sizeof buf,
	    "{\"timestamp\": {\"seconds\": 1764741600, \"microseconds\": "
	    "250000}, \"event\": \"%s\"%s%s}\r\n",
	    name, data != NULL ? ", \"data\": " : "", data != NULL ? data : "");
	put(f, buf);
}

/* Turn the loop until qmp.c told the registry as much as want says. */
static void
sunk_until(const char *want)
{
	int spin;

	for (spin = 0; spin < FIXTURE_SPINS && strlen(sunk) < strlen(want);
	     spin++) {
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	assert_string_equal(sunk, want);
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

/*
 * The listener is a QEMU (its executable says so) holding the socket:
 * the VM is served, and its map read through human monitor commands,
 * answered as QEMU 7.2 does: RAM less SMRAM, backed by the fake QEMU's
 * memfd at the addresses gpa2hva gave.
 */
static void
test_qemu_served(void **state)
{
	struct fx *f = *state;
	struct vm *vm;

	vm = serve(f);
	assert_null(vm->unservable);
	assert_string_equal(vm->source, "static");
	assert_int_equal(vm->qemu_pid, f->qpid);
	assert_int_equal(vm->map.n, 3);
	assert_int_equal(vm->map.r[0].gpa, 0);
	assert_int_equal(vm->map.r[0].size, 0x30000);
	assert_int_equal(vm->map.r[1].gpa, 0x50000);
	assert_int_equal(vm->map.r[1].size, 0x50000);
	assert_int_equal(vm->map.r[2].gpa, 0x100000);
	assert_int_equal(vm->map.r[2].size, 0x2f00000);
	assert_int_equal(vm->map.r[2].hva, f->hva + 0x100000);
	assert_string_equal(vm->map.ramblock, "mem0");
	/* map_files, which finds the memfd, is root's. */
	if (geteuid() == 0) {
		assert_string_equal(vm->map_why, "shared memfd backing");
		assert_int_equal(vm->mode, FREEHINT__MODE__DISCARD);
		assert_int_equal(vm->map.r[2].file_off, 0x100000);
	}
	assert_non_null(vm->speed);
	/* Served: nothing told the registry but the VM itself. */
	assert_string_equal(sunk, "");
}

static void
hmp_done(void *arg, const char *out)
{
	char *got = arg;

	snprintf(got, 128, "%s", out != NULL ? out : "(failed)");
}

/*
 * QEMU refuses a human monitor command: it failed, and the map is tried
 * again later; a command without a monitor fails at once.
 */
static void
test_hmp_refused(void **state)
{
	struct fx *f = *state;
	char got[128] = "";
	struct vm *vm;
	uint64_t id;

	snprintf(f->exe, sizeof f->exe, "%s/qemu-system-x86_64", f->dir);
	exe_link(AT_FDCWD, f->exe);
	id = serve_start(f, f->exe);
	refuse(f, id);
	vm = vm_find("vm1");
	assert_non_null(vm);
	FIXTURE_SPIN_UNTIL(ev_base, vm->mapload == NULL);
	assert_string_equal(vm->mode_why,
	    "memory map: qom-get: the monitor does not answer (retrying in "
	    "1 s)");
	/* An answer that is not text fails the same way. */
	vm->hmp(vm->hmp_ctx, "info mtree -f", hmp_done, got);
	reply(f, take_hmp(f, "info mtree -f"), "{}");
	FIXTURE_SPIN_UNTIL(ev_base, got[0] != '\0');
	assert_string_equal(got, "(failed)");
	/* A second later, read again. */
	map_reload(f, vm);
	assert_int_equal(vm->map.n, 3);
	close(f->fd);
	f->fd = -1;
	FIXTURE_SPIN_UNTIL(ev_base, vm->unservable != NULL);
	got[0] = '\0';
	vm->hmp(vm->hmp_ctx, "info mtree -f", hmp_done, got);
	assert_string_equal(got, "(failed)");
}

/*
 * A migration from setup to completed: started once, finished once,
 * then the map read again. A status after it is over changes nothing,
 * nor does a MIGRATION event without a status.
 */
static void
test_migration(void **state)
{
	struct fx *f = *state;
	struct vm *vm;

	vm = serve(f);
	event(f, "MIGRATION", "{\"status\": \"setup\"}");
	event(f, "MIGRATION", "{\"status\": \"active\"}");
	event(f, "MIGRATION_PASS", "{\"pass\": 1}");
	event(f, "MIGRATION", "{\"status\": \"active\"}");
	sunk_until("migration vm1 started");
	event(f, "MIGRATION", "{\"status\": \"completed\"}");
	/* The registry's refresh: the destination's map, or ours. */
	sunk_until("migration vm1 started;migration vm1 finished;changed vm1");
	map_reload(f, vm);
	assert_false(vm->postcopy);
	sunk[0] = '\0';
	event(f, "MIGRATION", "{\"status\": \"completed\"}");
	event(f, "MIGRATION", "{\"status\": 7}");
	event(f, "MIGRATION", NULL);
	event(f, "RESET", "{\"guest\": true, \"reason\": \"guest-reset\"}");
	sunk_until("changed vm1");
	map_reload(f, vm);
	/* A failed migration is over too. */
	event(f, "MIGRATION", "{\"status\": \"active\"}");
	event(f, "MIGRATION", "{\"status\": \"failed\"}");
	sunk_until("changed vm1;migration vm1 started;migration vm1 "
	           "finished;changed vm1");
	map_reload(f, vm);
}

/*
 * Postcopy: reported once, discards stop; the source stops (STOP), so
 * after the migration the guest does not run here, until RESUME.
 */
static void
test_postcopy(void **state)
{
	struct fx *f = *state;
	struct vm *vm;

	vm = serve(f);
	event(f, "MIGRATION", "{\"status\": \"active\"}");
	event(f, "MIGRATION", "{\"status\": \"postcopy-active\"}");
	sunk_until("migration vm1 started;migration vm1 postcopy");
	assert_true(vm->postcopy);
	assert_string_equal(vm->nodiscard_why,
	    "postcopy migration: no discard until it completes");
	sunk[0] = '\0';
	event(f, "STOP", NULL);
	event(f, "MIGRATION", "{\"status\": \"postcopy-paused\"}");
	event(f, "MIGRATION", "{\"status\": \"postcopy-recover\"}");
	event(f, "MIGRATION", "{\"status\": \"postcopy-active\"}");
	event(f, "MIGRATION", "{\"status\": \"completed\"}");
	sunk_until("running vm1 0;migration vm1 finished;changed vm1");
	assert_false(vm->running);
	assert_false(vm->postcopy);
	assert_string_equal(vm->nodiscard_why,
	    "postcopy migration over: the guest does not run on this QEMU");
	map_reload(f, vm);
	sunk[0] = '\0';
	event(f, "RESUME", NULL);
	sunk_until("running vm1 1;changed vm1");
	assert_true(vm->running);
	assert_null(vm->nodiscard_why);
	map_reload(f, vm);
	/* A new migration may reach postcopy again. */
	sunk[0] = '\0';
	event(f, "MIGRATION", "{\"status\": \"postcopy-active\"}");
	sunk_until("migration vm1 started;migration vm1 postcopy");
}

/*
 * A reset, a memory device resized, a device removed: the map is read
 * again, the old one serving meanwhile. Other events are ignored.
 */
static void
test_reset(void **state)
{
	struct fx *f = *state;
	struct vm *vm;

	vm = serve(f);
	event(f, "RESET", "{\"guest\": true, \"reason\": \"guest-reset\"}");
	sunk_until("changed vm1");
	assert_int_equal(vm->map.n, 3);
	map_reload(f, vm);
	event(f, "MEMORY_DEVICE_SIZE_CHANGE",
	    "{\"id\": \"vm0\", \"size\": 67108864, \"qom-path\": "
	    "\"/machine/peripheral/vm0\"}");
	sunk_until("changed vm1;changed vm1");
	map_reload(f, vm);
	event(f, "POWERDOWN", NULL);
	event(f, "NIC_RX_FILTER_CHANGED",
	    "{\"path\": "
	    "\"/machine/peripheral-anon/device[0]/virtio-backend\"}");
	event(f, "DEVICE_DELETED",
	    "{\"device\": \"dimm1\", \"path\": \"/machine/peripheral/dimm1\"}");
	sunk_until("changed vm1;changed vm1;changed vm1");
	map_reload(f, vm);
	assert_int_equal(vm->map.n, 3);
}

/*
 * The monitor lost while a migration runs: its end will never be told,
 * so it is reported over now. Lost again with none running: nothing.
 */
static void
test_lost_migrating(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	uint64_t id;

	vm = serve(f);
	event(f, "MIGRATION", "{\"status\": \"active\"}");
	sunk_until("migration vm1 started");
	close(f->fd);
	f->fd = -1;
	sunk_until("migration vm1 started;migration vm1 finished;changed vm1");
	assert_string_equal(
	    vm->unservable, "the monitor closed the connection");
	assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
	/* Dialled again: a QEMU again, served again. */
	sunk[0] = '\0';
	negotiate(f);
	take_hmp(f, "qom-get /machine memory-backend");
	assert_null(vm->unservable);
	json_object_put(take(f, "migrate-set-capabilities", &id));
	close(f->fd);
	f->fd = -1;
	/* Told before the VM is announced lost: nothing of a migration. */
	FIXTURE_SPIN_UNTIL(ev_base, vm->unservable != NULL);
	assert_string_equal(sunk, "");
}

struct speed {
	int n; /* answers */
	int64_t was;
};

static void
speed_done(void *arg, int64_t was)
{
	struct speed *sp = arg;

	sp->n++;
	sp->was = was;
}

/*
 * The bandwidth change: the query, answered with params, then the set
 * of bps (its id in *sid).
 */
static void
speed_sent(struct fx *f, uint64_t *sid, const char *params, int64_t bps)
{
	json_object *o, *args, *v;
	uint64_t qid;

	json_object_put(take(f, "query-migrate-parameters", &qid));
	reply(f, qid, params);
	o = take(f, "migrate-set-parameters", sid);
	assert_true(json_object_object_get_ex(o, "arguments", &args));
	assert_true(json_object_object_get_ex(args, "max-bandwidth", &v));
	assert_int_equal(json_object_get_int64(v), bps);
	json_object_put(o);
}

/*
 * The registry sets the migration's bandwidth: the one in force is
 * asked for, and the new one set only once the answer is in; the old
 * one is the answer, or -1 when either failed or the monitor went away.
 * A refused query sets nothing: QEMU is never left held with nothing
 * known to restore.
 */
static void
test_speed(void **state)
{
	struct fx *f = *state;
	struct speed sp = { 0, 0 };
	uint64_t qid, sid;
	struct vm *vm;

	vm = serve(f);
	vm->speed(vm->speed_ctx, 1 << 20, UINT64_MAX, speed_done, &sp);
	assert_int_equal(sp.n, 0);
	speed_sent(f, &sid, params_7_2, 1 << 20);
	assert_int_equal(sp.n, 0);
	reply(f, sid, "{}");
	FIXTURE_SPIN_UNTIL(ev_base, sp.n == 1);
	assert_int_equal(sp.was, 134217728);
	/* What was in force is unknown: nothing set, -1. */
	vm->speed(vm->speed_ctx, 134217728, UINT64_MAX, speed_done, &sp);
	json_object_put(take(f, "query-migrate-parameters", &qid));
	refuse(f, qid);
	FIXTURE_SPIN_UNTIL(ev_base, sp.n == 2);
	assert_int_equal(sp.was, -1);
	/* An answer with no usable max-bandwidth is no answer. */
	vm->speed(vm->speed_ctx, 4096, UINT64_MAX, speed_done, &sp);
	json_object_put(take(f, "query-migrate-parameters", &qid));
	reply(f, qid, "{\"max-bandwidth\": \"lots\"}");
	FIXTURE_SPIN_UNTIL(ev_base, sp.n == 3);
	assert_int_equal(sp.was, -1);
	/* Not taken. */
	vm->speed(vm->speed_ctx, 4096, UINT64_MAX, speed_done, &sp);
	speed_sent(f, &sid, "{\"max-bandwidth\": 4096}", 4096);
	refuse(f, sid);
	FIXTURE_SPIN_UNTIL(ev_base, sp.n == 4);
	assert_int_equal(sp.was, -1);
	/* More than QMP's integers hold: refused before anything is sent. */
	vm->speed(vm->speed_ctx, (uint64_t)INT64_MAX + 1, UINT64_MAX,
	    speed_done, &sp);
	assert_int_equal(sp.n, 5);
	assert_int_equal(sp.was, -1);
	/* The monitor lost with the change out: failed. */
	sp.was = 0;
	vm->speed(vm->speed_ctx, 8192, UINT64_MAX, speed_done, &sp);
	speed_sent(f, &sid, params_7_2, 8192);
	close(f->fd);
	f->fd = -1;
	FIXTURE_SPIN_UNTIL(ev_base, sp.n == 6);
	assert_int_equal(sp.was, -1);
	/* No monitor: refused at once. */
	assert_non_null(vm->speed);
	sp.was = 0;
	vm->speed(vm->speed_ctx, 8192, UINT64_MAX, speed_done, &sp);
	assert_int_equal(sp.n, 7);
	assert_int_equal(sp.was, -1);
}

/*
 * With a ceiling the set is sent only when the bandwidth in force is at
 * most the ceiling; above it, or with no answer, nothing is set and the
 * answer says so.
 */
static void
test_speed_ceiling(void **state)
{
	struct fx *f = *state;
	struct speed sp = { 0, 0 };
	uint64_t qid, sid;
	struct vm *vm;

	vm = serve(f);
	/* 128 MiB/s in force, at most 200 MiB/s: held. */
	vm->speed(vm->speed_ctx, 4096, 200 << 20, speed_done, &sp);
	speed_sent(f, &sid, params_7_2, 4096);
	assert_int_equal(sp.n, 0);
	reply(f, sid, "{}");
	FIXTURE_SPIN_UNTIL(ev_base, sp.n == 1);
	assert_int_equal(sp.was, 134217728);
	/* Above 64 MiB/s: nothing set, and the next command is a query. */
	vm->speed(vm->speed_ctx, 4096, 64 << 20, speed_done, &sp);
	json_object_put(take(f, "query-migrate-parameters", &qid));
	reply(f, qid, params_7_2);
	FIXTURE_SPIN_UNTIL(ev_base, sp.n == 2);
	assert_int_equal(sp.was, 134217728);
	/* The query refused: nothing set, -1. */
	vm->speed(vm->speed_ctx, 4096, 200 << 20, speed_done, &sp);
	json_object_put(take(f, "query-migrate-parameters", &qid));
	refuse(f, qid);
	FIXTURE_SPIN_UNTIL(ev_base, sp.n == 3);
	assert_int_equal(sp.was, -1);
	/* The set refused: -1. */
	vm->speed(vm->speed_ctx, 4096, 200 << 20, speed_done, &sp);
	speed_sent(f, &sid, params_7_2, 4096);
	refuse(f, sid);
	FIXTURE_SPIN_UNTIL(ev_base, sp.n == 4);
	assert_int_equal(sp.was, -1);
	/* The monitor lost before the query's answer: -1, once. */
	vm->speed(vm->speed_ctx, 4096, 200 << 20, speed_done, &sp);
	json_object_put(take(f, "query-migrate-parameters", &qid));
	close(f->fd);
	f->fd = -1;
	FIXTURE_SPIN_UNTIL(ev_base, sp.n == 5);
	assert_int_equal(sp.was, -1);
}

/* A directory's name, nearly the longest a name may be. */
static const char *
deep_name(void)
{
	static char name[251];

	if (name[0] == '\0')
		memset(name, 'd', sizeof name - 1);
	return name;
}

/*
 * Directories nested under the fixture's, deeper than the page that
 * /proc/PID/exe's target must fit in; the deepest, open.
 */
static int
deep_mkdir(struct fx *f)
{
	int fd, next, i;

	fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_not_equal(fd, -1);
	f->deep = true;
	for (i = 0; i < DEEP_LEVELS; i++) {
		assert_int_equal(mkdirat(fd, deep_name(), 0700), 0);
		next =
		    openat(fd, deep_name(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		assert_int_not_equal(next, -1);
		fd = next;
	}
	return fd;
}

/* What deep_mkdir made, and the fake QEMU's executable in it. */
static void
deep_remove(struct fx *f)
{
	int fds[DEEP_LEVELS + 1], i;

	fds[0] = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (i = 1; i <= DEEP_LEVELS; i++)
		fds[i] = fds[i - 1] == -1
		    ? -1
		    : openat(fds[i - 1], deep_name(),
		          O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fds[DEEP_LEVELS] != -1)
		unlinkat(fds[DEEP_LEVELS], "qemu-system-x86_64", 0);
	for (i = DEEP_LEVELS; i > 0; i--) {
		if (fds[i] != -1)
			close(fds[i]);
		if (fds[i - 1] != -1)
			unlinkat(fds[i - 1], deep_name(), AT_REMOVEDIR);
	}
	if (fds[0] != -1)
		close(fds[0]);
}

/*
 * The fake QEMU started from an executable whose path is too long for
 * /proc/PID/exe to give (ENAMETOOLONG), named on its command line or not.
 */
static void
deep_qemu_start(struct fx *f, bool named)
{
	char exe[32], link[64], buf[PATH_MAX];
	int dfd, efd;

	dfd = deep_mkdir(f);
	exe_link(dfd, "qemu-system-x86_64");
	efd = openat(dfd, "qemu-system-x86_64", O_RDONLY | O_CLOEXEC);
	assert_int_not_equal(efd, -1);
	/* Resolved by execve (before close-on-exec): the file itself. */
	snprintf(exe, sizeof exe, "/proc/self/fd/%d", efd);
	qemu_start(f, exe, named);
	close(efd);
	close(dfd);
	snprintf(link, sizeof link, "/proc/%d/exe", (int)f->qpid);
	errno = 0;
	assert_int_equal(readlink(link, buf, sizeof buf), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

/*
 * Where /proc/PID/exe cannot be read, the listener's command line names
 * the monitor's socket, as QEMU's -qmp unix:PATH does: served.
 */
static void
test_cmdline_names_socket(void **state)
{
	struct fx *f = *state;
	struct vm *vm;
	uint64_t id;

	deep_qemu_start(f, true);
	assert_int_equal(qmp_static_start(&f->vc), 0);
	negotiate(f);
	id = take_hmp(f, "qom-get /machine memory-backend");
	vm = vm_find("vm1");
	assert_non_null(vm);
	assert_null(vm->unservable);
	assert_int_equal(vm->qemu_pid, f->qpid);
	json_object_put(take(f, "migrate-set-capabilities", &id));
}

/* Neither its executable nor its command line says so: not served. */
static void
test_cmdline_silent(void **state)
{
	struct fx *f = *state;
	char want[512];
	struct vm *vm;
	uint64_t id;

	deep_qemu_start(f, false);
	assert_int_equal(qmp_static_start(&f->vc), 0);
	negotiate(f);
	json_object_put(take(f, "migrate-set-capabilities", &id));
	vm = vm_find("vm1");
	assert_non_null(vm);
	snprintf(want, sizeof want,
	    "the monitor's listener (pid %d) is not the QEMU of %s (its "
	    "command line does not name the socket)",
	    (int)f->qpid, f->path);
	assert_string_equal(vm->unservable, want);
	assert_int_equal(vm->mode, FREEHINT__MODE__RECORD_ONLY);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_vm),
		UNIT_FX(test_not_qemu),
		UNIT_FX(test_polls_without_events),
		UNIT_FX(test_no_monitor),
		UNIT_FX(test_lost),
		UNIT_FX(test_reload),
		UNIT_FX(test_qemu_served),
		UNIT_FX(test_hmp_refused),
		UNIT_FX(test_migration),
		UNIT_FX(test_postcopy),
		UNIT_FX(test_reset),
		UNIT_FX(test_lost_migrating),
		UNIT_FX(test_speed),
		UNIT_FX(test_speed_ceiling),
		UNIT_FX(test_cmdline_names_socket),
		UNIT_FX(test_cmdline_silent),
	};

	/* Exec'd as the fake QEMU (qemu_start). */
	if (argc == 3 && strcmp(argv[1], FAKE_QEMU_ARG) == 0)
		return fake_qemu_main(argv[2]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

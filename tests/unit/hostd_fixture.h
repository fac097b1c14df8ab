/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the freehintd unit tests that need a VM share: the daemon's
 * default policy, and a fake VM source whose "QEMU" is the test process
 * itself. Its RAM is a memfd the test maps shared; the human monitor is
 * a callback that answers "qom-get", "info mtree -f" (one RAM region of
 * block mem0 at guest-physical 0) and "gpa2hva" (an address in that
 * mapping) synchronously, as vmsource.h allows. With qemu_pid set to
 * getpid(), the registry finds the memfd in /proc/self/maps exactly as
 * it would QEMU's (root: map_files). Also the socket chores of the tests
 * that play a peer. Included after "unit.h" (it asserts).
 */
#ifndef FH_HOSTD_FIXTURE_H
#define FH_HOSTD_FIXTURE_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "freehintd.h"
#include "vmsource.h"

#define FAKE_RAM_SIZE (16ULL << 20)
/* Turns of the loop before a condition is given up (1 ms each when
 * idle): 30 s, for valgrind on a loaded machine. */
#define FIXTURE_SPINS 30000

struct fake_qemu {
	int memfd;
	uint8_t *ram;
	char mtree[512];
	unsigned nhmp; /* monitor commands run */
	bool mute; /* the monitor answers nothing */
	/* qom-get's answers for a PC: the machine type (NULL: no PC), q35's
	 * below-4g-mem-size and extended-tseg-mbytes (NULL: none). */
	const char *machine, *below_4g, *tseg_mb;
};

/* The daemon's default policy, as without a configuration file. */
static inline struct config *
fixture_conf(void)
{
	struct config *c = xcalloc(1, sizeof *c);

	TAILQ_INIT(&c->vms);
	policy_defaults(&c->policy);
	return c;
}

/*
 * The daemon's globals, which every test program defines: a fresh event
 * base (with flags, e.g. EVENT_BASE_FLAG_NO_CACHE_TIME) and the default
 * configuration, the logs under the program's name prog. 0, or -1 when
 * there is no base.
 */
static inline int
fixture_daemon_start(const char *prog, int flags)
{
	struct event_config *cfg;

	log_init(prog, 1, 0);
	if ((cfg = event_config_new()) == NULL)
		return -1;
	event_config_set_flag(cfg, flags);
	ev_base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	conf = fixture_conf();
	return ev_base != NULL ? 0 : -1;
}

/* Every VM removed, what that deferred run, the globals freed. */
static inline void
fixture_daemon_end(void)
{
	vm_remove_all();
	event_base_loop(ev_base, EVLOOP_NONBLOCK);
	event_base_free(ev_base);
	ev_base = NULL;
	free(conf);
	conf = NULL;
}

/*
 * A fresh directory /tmp/fh-TAG-XXXXXX into dir (dsz bytes), and the
 * path of file in it into path (psz bytes): where a test puts a socket.
 */
static inline void
fixture_mkdir(char *dir, size_t dsz, const char *tag, char *path, size_t psz,
    const char *file)
{
	snprintf(dir, dsz, "/tmp/fh-%s-XXXXXX", tag);
	assert_non_null(mkdtemp(dir));
	snprintf(path, psz, "%s/%s", dir, file);
}

/* A unix socket's address; the paths here are short. */
static inline void
fixture_sun(struct sockaddr_un *sun, const char *path)
{
	assert_int_equal(fh_unix_addr(sun, path), 0);
}

/* A listening unix socket at path, non-blocking. */
static inline int
fixture_listen(const char *path)
{
	int fd = fh_unix_listen(path, 8, SOCK_NONBLOCK);

	assert_int_not_equal(fd, -1);
	return fd;
}

/* Turn the loop until the daemon connected to lfd; the connection. */
static inline int
fixture_accept(int lfd)
{
	int fd = -1, spin;

	for (spin = 0; spin < FIXTURE_SPINS && fd == -1; spin++) {
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		if ((fd = accept(lfd, NULL, NULL)) == -1)
			usleep(1000);
	}
	assert_int_not_equal(fd, -1);
	return fd;
}

/* What a peer wrote and the test has not read yet, by lines. */
struct fixture_lines {
	char buf[65536];
	size_t len;
};

/* Turn base's loop until fd brought a whole line: a JSON object. */
static inline json_object *
fixture_take_json(struct event_base *base, int fd, struct fixture_lines *l)
{
	json_object *o;
	char *nl = NULL;
	ssize_t n;
	int spin;

	for (spin = 0; spin < FIXTURE_SPINS; spin++) {
		if ((nl = memchr(l->buf, '\n', l->len)) != NULL)
			break;
		event_base_loop(base, EVLOOP_NONBLOCK);
		n = recv(fd, l->buf + l->len, sizeof l->buf - l->len - 1,
		    MSG_DONTWAIT);
		if (n > 0)
			l->len += (size_t)n;
		else
			usleep(1000);
	}
	assert_non_null(nl);
	*nl = '\0';
	o = json_tokener_parse(l->buf);
	assert_non_null(o);
	l->len -= (size_t)(nl + 1 - l->buf);
	memmove(l->buf, nl + 1, l->len);
	return o;
}

static inline int
fake_qemu_init(struct fake_qemu *q)
{
	memset(q, 0, sizeof *q);
	if ((q->memfd = memfd_create("fake-guest-ram", MFD_CLOEXEC)) == -1)
		return -1;
	if (ftruncate(q->memfd, (off_t)FAKE_RAM_SIZE) != 0)
		return -1;
	q->ram = mmap(NULL, FAKE_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    q->memfd, 0);
	if (q->ram == MAP_FAILED)
		return -1;
	snprintf(q->mtree, sizeof q->mtree,
	    "FlatView #0\n"
	    " AS \"memory\", root: system\n"
	    " Root memory region: system\n"
	    "  0000000000000000-%016" PRIx64 " (prio 0, ram): mem0\n",
	    (uint64_t)FAKE_RAM_SIZE - 1);
	return 0;
}

static inline void
fake_qemu_free(struct fake_qemu *q)
{
	if (q->ram != NULL && q->ram != MAP_FAILED)
		munmap(q->ram, FAKE_RAM_SIZE);
	if (q->memfd > 0)
		close(q->memfd);
}

static inline void
fake_hmp(void *ctx, const char *cmd, vm_hmp_done done, void *arg)
{
	struct fake_qemu *q = ctx;
	unsigned long long gpa;
	char out[128];

	q->nhmp++;
	if (q->mute)
		done(arg, NULL);
	else if (q->machine != NULL &&
	    strcmp(cmd, "qom-get /machine type") == 0)
		done(arg, q->machine);
	else if (strcmp(cmd, "qom-get /machine/q35 below-4g-mem-size") == 0)
		done(arg, q->below_4g);
	else if (strcmp(cmd, "qom-get /machine/q35/mch extended-tseg-mbytes") ==
	    0)
		done(arg, q->tseg_mb);
	else if (strcmp(cmd, "qom-get /machine type") == 0)
		/* Not a PC: no SMRAM to cut out of the map. */
		done(arg, "\"none-machine\"\r\n");
	else if (strncmp(cmd, "qom-get ", 8) == 0)
		done(arg, "\"/objects/mem0\"\r\n");
	else if (strcmp(cmd, "info mtree -f") == 0)
		done(arg, q->mtree);
	else if (sscanf(cmd, "gpa2hva 0x%llx", &gpa) == 1 &&
	    gpa < FAKE_RAM_SIZE) {
		snprintf(out, sizeof out,
		    "Host virtual address for 0x%llx (mem0) is 0x%llx\r\n", gpa,
		    (unsigned long long)(uintptr_t)(q->ram + gpa));
		done(arg, out);
	} else
		done(arg, NULL);
}

/* A static VM whose QEMU is this process. */
static inline struct vm_desc
fake_vm_desc(const char *name, uint32_t cid, const char *channel)
{
	struct vm_desc d = {
		.name = name,
		.source = "static",
		.cid = cid,
		.channel = channel,
		.qemu_pid = getpid(),
	};

	return d;
}

/* fake_vm_desc's VM added: 0, or -1 when the registry refused it. */
static inline int
fake_vm_add(
    struct fake_qemu *q, const char *name, uint32_t cid, const char *channel)
{
	struct vm_desc d = fake_vm_desc(name, cid, channel);

	return vm_source_add(&d, fake_hmp, q);
}

/* The VM d describes, whose QEMU is q; added, and found by its name. */
static inline struct vm *
fixture_vm_desc(struct fake_qemu *q, const struct vm_desc *d)
{
	struct vm *vm;

	assert_int_equal(vm_source_add(d, fake_hmp, q), 0);
	vm = vm_find(d->name);
	assert_non_null(vm);
	return vm;
}

/* fake_vm_desc's VM, which must be added; found by its name. */
static inline struct vm *
fixture_vm(
    struct fake_qemu *q, const char *name, uint32_t cid, const char *channel)
{
	struct vm_desc d = fake_vm_desc(name, cid, channel);

	return fixture_vm_desc(q, &d);
}

/* Turn the loop until cond holds, for at most about 30 s. */
#define FIXTURE_SPIN_UNTIL(base, cond) \
	UNIT_SPIN_UNTIL(               \
	    event_base_loop((base), EVLOOP_NONBLOCK), FIXTURE_SPINS, cond)

#endif

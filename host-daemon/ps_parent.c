/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The privileged parent's end of the socketpair to the worker. The
 * sources' calls (vmsource.h) go to the worker, which holds the registry;
 * what the worker asks is served only within what the VM's source said:
 * monitor commands from a short read-only list, the backing of the QEMU
 * process the source named (memmap.c's checks, with the parent's own
 * pidfd), the channel path the source gave. The worker parses everything
 * guests send, so it is not trusted: a request that does not check ends
 * it, and this daemon with it (systemd restarts both).
 */
#include <sys/syscall.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "freehintd.h"
#include "privsep.h"
#ifdef HAVE_LIBVIRT
#include "libvirt.h"
#endif

/* What a source said of a VM: all the worker's requests may reach. */
struct pvm {
	char *name;
	uint32_t cid;
	char *channel;
	bool channel_qemu;
	pid_t pid;
	int pidfd; /* the process the source named, -1 when none */
	vm_hmp_fn hmp;
	void *hmp_ctx;
	vm_speed_fn speed;
	void *speed_ctx;
	TAILQ_ENTRY(pvm) entry;
};

/* A monitor command or bandwidth change on its way to a source. */
struct preq {
	uint64_t id;
};

bool ps_parent_failed;

static struct ps_chan *pchan;
/* Monitor commands and bandwidth changes out at the sources for the
 * worker: beyond PS_INFLIGHT_MAX it is refused, not queued. */
static unsigned p_inflight;
static pid_t pworker;
static bool pstopping;
static uint64_t ping_sent, pong_got;
static unsigned pong_vms, pong_agents;
static TAILQ_HEAD(, pvm) pvms = TAILQ_HEAD_INITIALIZER(pvms);

static ps_handler_fn p_hmp, p_speed, p_resolve, p_dma, p_chan, p_notify, p_pong;
static void p_lost(struct ps_chan *, const char *);

static const struct ps_handler p_handlers[] = {
	{ PS_HMP, p_hmp },
	{ PS_SPEED, p_speed },
	{ PS_RESOLVE, p_resolve },
	{ PS_DMA, p_dma },
	{ PS_CHAN, p_chan },
	{ PS_NOTIFY, p_notify },
	{ PS_PONG, p_pong },
};

void
ps_parent_start(struct event_base *base, int fd, pid_t worker)
{
	pworker = worker;
	pstopping = false;
	ping_sent = pong_got = 0;
	pchan = ps_chan_new(
	    base, fd, p_handlers, FH_ARRAY_SIZE(p_handlers), p_lost, NULL);
	vm_sink = &ps_parent_sink;
}

static void
pvm_free(struct pvm *p)
{
	TAILQ_REMOVE(&pvms, p, entry);
	if (p->pidfd != -1)
		close(p->pidfd);
	free(p->name);
	free(p->channel);
	free(p);
}

/*
 * Our end closes: the worker ends its discards in flight and exits. What
 * was not sent yet is dropped (it removes every VM anyway); nothing here
 * waits on a worker that may be stopped.
 */
void
ps_parent_stop(void)
{
	pstopping = true;
	while (!TAILQ_EMPTY(&pvms))
		pvm_free(TAILQ_FIRST(&pvms));
	ps_chan_free(pchan);
	pchan = NULL;
	vm_sink = &vm_registry;
}

/*
 * The watchdog's question: has the worker answered the last ping? Then
 * ping again. The first call asks only.
 */
bool
ps_parent_alive(unsigned *nvms, unsigned *agents)
{
	struct ps_buf b = { 0 };
	bool alive = pong_got == ping_sent;

	*nvms = pong_vms;
	*agents = pong_agents;
	if (alive && pchan != NULL)
		ps_send(pchan, PS_PING, ++ping_sent, &b);
	return alive;
}

static void
p_lost(struct ps_chan *c, const char *why)
{
	if (pstopping)
		return;
	log_warnx(
	    "the worker (pid %ld) is gone: %s; exiting", (long)pworker, why);
	ps_parent_failed = true;
	event_base_loopbreak(ev_base);
}

static struct pvm *
pvm_find(const char *name)
{
	struct pvm *p;

	if (name == NULL)
		return NULL;
	TAILQ_FOREACH(p, &pvms, entry)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static void
p_send_name(uint32_t type, const char *name)
{
	struct ps_buf b = { 0 };

	ps_put_str(&b, name);
	ps_send(pchan, type, 0, &b);
}

/* The sources' calls, as the registry (vm.c) would take them. */
static int
sink_add(const struct vm_desc *d, vm_hmp_fn hmp, void *ctx)
{
	struct ps_buf b = { 0 };
	struct pvm *p, *o;

	if (d->name == NULL || *d->name == '\0')
		return -1;
	/* What the worker would refuse, and the daemon with it. */
	if (strlen(d->name) > PS_STR_MAX ||
	    (d->source != NULL && strlen(d->source) > PS_STR_MAX) ||
	    (d->channel != NULL && strlen(d->channel) > PS_STR_MAX) ||
	    (d->unservable != NULL && strlen(d->unservable) > PS_STR_MAX)) {
		log_warnx(
		    "vm %.64s: a description too long to pass on", d->name);
		return -1;
	}
	TAILQ_FOREACH(o, &pvms, entry)
		if (d->cid != 0 && o->cid == d->cid &&
		    strcmp(o->name, d->name) != 0) {
			log_warnx("vm %s: cid %u already belongs to %s",
			    d->name, d->cid, o->name);
			return -1;
		}
	if ((p = pvm_find(d->name)) == NULL) {
		p = xcalloc(1, sizeof *p);
		p->name = xstrdup(d->name);
		p->pidfd = -1;
		TAILQ_INSERT_TAIL(&pvms, p, entry);
	}
	p->cid = d->cid;
	free(p->channel);
	p->channel = d->channel != NULL ? xstrdup(d->channel) : NULL;
	p->channel_qemu = d->channel_qemu;
	p->hmp = hmp;
	p->hmp_ctx = ctx;
	p->speed = NULL;
	p->speed_ctx = NULL;
	if (p->pidfd != -1)
		close(p->pidfd);
	p->pidfd = -1;
	p->pid = d->qemu_pid;
	/* The very process the source named: a pid reused later is not. */
	if (p->pid > 0 &&
	    (p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0)) == -1)
		log_warn("vm %s: pidfd_open %ld", d->name, (long)p->pid);
	ps_put_str(&b, d->name);
	ps_put_str(&b, d->source);
	ps_put_u32(&b, d->cid);
	ps_put_str(&b, d->channel);
	ps_put_u32(&b, d->channel_qemu);
	ps_put_u32(&b, (uint32_t)d->qemu_pid);
	ps_put_u32(&b, (uint32_t)d->backing);
	ps_put_u32(&b, d->shared);
	ps_put_str(&b, d->unservable);
	ps_send(pchan, PS_SRC_ADD, 0, &b);
	return 0;
}

static void
sink_remove(const char *name)
{
	struct pvm *p;

	if ((p = pvm_find(name)) != NULL)
		pvm_free(p);
	p_send_name(PS_SRC_REMOVE, name);
}

static void
sink_migration(const char *name, enum vm_migration_event ev)
{
	struct ps_buf b = { 0 };

	ps_put_str(&b, name);
	ps_put_u32(&b, (uint32_t)ev);
	ps_send(pchan, PS_SRC_MIGRATION, 0, &b);
}

static void
sink_dma(const char *name, const char *why)
{
	struct ps_buf b = { 0 };

	ps_put_str(&b, name);
	ps_put_str(&b, why);
	ps_send(pchan, PS_SRC_DMA, 0, &b);
}

static void
sink_policy(const char *name, const char *xml)
{
	struct ps_buf b = { 0 };

	if (xml != NULL && strlen(xml) > PS_POLICY_XML_MAX) {
		log_warnx("vm %s: policy metadata of %zu bytes ignored", name,
		    strlen(xml));
		xml = NULL;
	}
	ps_put_str(&b, name);
	ps_put_str(&b, xml);
	ps_send(pchan, PS_SRC_POLICY, 0, &b);
}

static void
sink_speed(const char *name, vm_speed_fn fn, void *ctx)
{
	struct ps_buf b = { 0 };
	struct pvm *p;

	if ((p = pvm_find(name)) == NULL)
		return;
	p->speed = fn;
	p->speed_ctx = ctx;
	ps_put_str(&b, name);
	ps_put_u32(&b, fn != NULL);
	ps_send(pchan, PS_SRC_SPEED, 0, &b);
}

static void
sink_running(const char *name, bool running)
{
	struct ps_buf b = { 0 };

	ps_put_str(&b, name);
	ps_put_u32(&b, running);
	ps_send(pchan, PS_SRC_RUNNING, 0, &b);
}

static void
sink_changed(const char *name)
{
	p_send_name(PS_SRC_CHANGED, name);
}

const struct vm_sink ps_parent_sink = { sink_add, sink_remove, sink_migration,
	sink_dma, sink_policy, sink_speed, sink_running, sink_changed };

/* The daemon's policy, read again (SIGHUP), for the worker. */
void
ps_parent_policy(const struct policy *p)
{
	struct ps_buf b = { 0 };

	ps_put_u32(&b, p->min_order);
	ps_put_u32(&b, p->max_batch_ranges);
	ps_put_u64(&b, p->max_batch_bytes);
	ps_put_u32(&b, p->max_batches_sec);
	ps_put_u64(&b, p->max_bytes_sec);
	ps_put_u32(&b, p->max_faults);
	ps_put_u32(&b, p->hint_min_order);
	ps_put_u32(&b, p->stats_interval_ms);
	ps_put_u32(&b, p->migration_hold_ms);
	ps_put_u64(&b, p->migration_link_bps);
	ps_put_u64(&b, p->hint_pass_bps);
	ps_put_u32(&b, p->no_discard);
	ps_send(pchan, PS_POLICY_CONF, 0, &b);
}

/*
 * The monitor commands the registry reads the map with (vm.c) and a
 * migration's progress (mighold.c), and nothing else: a worker taken
 * over must not stop, migrate or change a VM through its QEMU.
 */
static bool
p_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isprint((unsigned char)*s))
			return false;
	return true;
}

static bool
p_hmp_allowed(const char *cmd)
{
	static const char *const exact[] = { "info mtree", "info mtree -f",
		"info migrate", "qom-get /machine memory-backend",
		"qom-get /machine type",
		"qom-get /machine/q35/mch extended-tseg-mbytes",
		"qom-get /machine/q35 below-4g-mem-size" };
	const char *s;
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(exact); i++)
		if (strcmp(cmd, exact[i]) == 0)
			return true;
	if (strncmp(cmd, "gpa2hva 0x", 10) != 0)
		return false;
	for (s = cmd + 10; isxdigit((unsigned char)*s); s++)
		;
	return *s == '\0' && s - cmd > 10 && s - cmd <= 26;
}

static void
p_hmp_done(void *arg, const char *out)
{
	struct preq *q = arg;
	struct ps_buf b = { 0 };

	if (out != NULL && strlen(out) > PS_HMP_OUT_MAX) {
		log_warnx(
		    "a monitor answer of %zu bytes is too long to pass on",
		    strlen(out));
		out = NULL;
	}
	ps_put_str(&b, out);
	if (pchan != NULL)
		ps_send(pchan, PS_HMP_DONE, q->id, &b);
	else
		ps_buf_free(&b);
	free(q);
	p_inflight--;
}

static int
p_hmp(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);
	const char *cmd = ps_get_str(rd, 256);
	struct preq *q;
	struct pvm *p;

	if (name == NULL || cmd == NULL || !p_hmp_allowed(cmd)) {
		log_warnx("worker: monitor command refused: %.60s",
		    cmd != NULL && p_printable(cmd) ? cmd : "(not printable)");
		return -1;
	}
	q = xcalloc(1, sizeof *q);
	q->id = id;
	p_inflight++;
	if ((p = pvm_find(name)) == NULL || p->hmp == NULL ||
	    p_inflight > PS_INFLIGHT_MAX) {
		p_hmp_done(q, NULL);
		return 0;
	}
	p->hmp(p->hmp_ctx, cmd, p_hmp_done, q);
	return 0;
}

static void
p_speed_done(void *arg, int64_t was)
{
	struct preq *q = arg;
	struct ps_buf b = { 0 };

	ps_put_u64(&b, (uint64_t)was);
	if (pchan != NULL)
		ps_send(pchan, PS_SPEED_DONE, q->id, &b);
	else
		ps_buf_free(&b);
	free(q);
	p_inflight--;
}

static int
p_speed(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);
	uint64_t bps = ps_get_u64(rd);
	uint64_t ceiling = ps_get_u64(rd);
	struct preq *q;
	struct pvm *p;

	if (name == NULL || rd->bad)
		return -1;
	q = xcalloc(1, sizeof *q);
	q->id = id;
	p_inflight++;
	if ((p = pvm_find(name)) == NULL || p->speed == NULL ||
	    p_inflight > PS_INFLIGHT_MAX) {
		p_speed_done(q, -1);
		return 0;
	}
	p->speed(p->speed_ctx, bps, ceiling, p_speed_done, q);
	return 0;
}

/*
 * Open the backing of the regions the worker found in QEMU's answers,
 * in the process the source named: memmap.c checks each (a memfd, tmpfs
 * or hugetlbfs file of QEMU's user, mapped shared and writable there).
 * QEMU's devices that DMA are looked for with it (priv_open_backing).
 */
static int
p_resolve(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);
	uint32_t n = ps_get_u32(rd), i;
	struct ps_buf b = { 0 };
	struct memmap m;
	struct pvm *p;
	char err[256] = "", why[320] = "";
	int rc = -1;

	if (rd->bad || name == NULL || n > PS_MAX_REGIONS)
		return -1;
	memmap_init(&m);
	m.r = xcalloc(n ? n : 1, sizeof *m.r);
	m.n = n;
	for (i = 0; i < n; i++) {
		m.r[i].gpa = ps_get_u64(rd);
		m.r[i].size = ps_get_u64(rd);
		m.r[i].hva = ps_get_u64(rd);
		m.r[i].fd = -1;
	}
	if (rd->bad) {
		memmap_free(&m);
		return -1;
	}
	if ((p = pvm_find(name)) == NULL)
		snprintf(err, sizeof err, "no such VM");
	else
		rc = priv_open_backing(
		    &m, p->pid, p->pidfd, err, sizeof err, why, sizeof why);
	ps_put_u32(&b, rc == 0 ? 0 : 1);
	ps_put_str(&b, err);
	ps_put_u32(&b, rc == 0 ? (uint32_t)m.kind : 0);
	ps_put_u32(&b, rc == 0 ? n : 0);
	for (i = 0; rc == 0 && i < n; i++) {
		ps_put_u32(&b, m.r[i].fd != -1);
		ps_put_u64(&b, m.r[i].file_off);
		ps_put_u64(&b, m.r[i].pagesz);
		if (m.r[i].fd != -1 && ps_put_fd(&b, m.r[i].fd) != 0)
			fatal("privsep: passing a backing fd");
	}
	ps_put_str(&b, why[0] != '\0' ? why : NULL);
	memmap_free(&m);
	ps_send(c, PS_RESOLVE_DONE, id, &b);
	return 0;
}

static int
p_dma(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);
	struct ps_buf b = { 0 };
	char why[320] = "";
	struct pvm *p;
	int rc = 0;

	if (name == NULL)
		return -1;
	if ((p = pvm_find(name)) != NULL && p->pid > 0)
		rc = memmap_dma_devices(p->pid, why, sizeof why);
	ps_put_u32(&b, (uint32_t)rc);
	ps_put_str(&b, why);
	ps_send(c, PS_DMA_DONE, id, &b);
	return 0;
}

/* The channel the source gave, checked to be QEMU's (priv.c). */
static int
p_chan(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *name = ps_get_str(rd, PS_STR_MAX);
	struct ps_buf b = { 0 };
	char err[256] = "";
	struct pvm *p;
	int fd = -1;

	if (name == NULL)
		return -1;
	if ((p = pvm_find(name)) == NULL || p->channel == NULL)
		snprintf(err, sizeof err, "no channel known for this VM");
	else
		fd = priv_channel_connect(
		    p->channel, p->pid, p->channel_qemu, err, sizeof err);
	ps_put_u32(&b, fd >= 0 ? 0 : fd == PRIV_REFUSED ? 2 : 1);
	ps_put_str(&b, fd >= 0 ? NULL : err);
	if (fd >= 0) {
		if (ps_put_fd(&b, fd) != 0)
			fatal("privsep: passing a channel fd");
		close(fd);
	}
	ps_send(c, PS_CHAN_DONE, id, &b);
	return 0;
}

static int
p_notify(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	const char *event = ps_get_str(rd, 64);
	const char *name = ps_get_str(rd, PS_STR_MAX);
	struct ps_buf b = { 0 };
	char msg[256];
	int rc = -1;

	if (rd->bad)
		return -1;
#ifdef HAVE_LIBVIRT
	rc = vl_notify(event, name, msg, sizeof msg);
#else
	snprintf(msg, sizeof msg, "built without libvirt");
#endif
	ps_put_u32(&b, (uint32_t)rc);
	ps_put_str(&b, msg);
	ps_send(c, PS_NOTIFY_DONE, id, &b);
	return 0;
}

static int
p_pong(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_rd *rd)
{
	uint32_t n = ps_get_u32(rd), up = ps_get_u32(rd);

	if (rd->bad || id != ping_sent)
		return -1;
	pong_got = id;
	pong_vms = n;
	pong_agents = up;
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The domains the libvirt source knows: each is read (state, live XML,
 * QEMU's pid) by a worker, and the registry is told on the loop when what
 * it knows changed; and which process is its QEMU.
 */
#include <sys/queue.h>
#include <sys/types.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common.h"
#include "libvirt.h"

#define VL_PID_DIR "/run/libvirt/qemu"

TAILQ_HEAD(vl_dom_list, vl_dom);

static void vl_dom_refresh_cb(int, short, void *);
static void vl_dom_read(struct vl_dom *);
static void vl_dom_read_work(struct vl_job *, virConnectPtr);
static void vl_dom_read_done(struct vl_job *);
static void vl_dom_describe(struct vl_dom *, const char *, pid_t);
static pid_t vl_find_pid(virDomainPtr, const char *);
static bool vl_pid_is(pid_t, const char *);

static struct vl_dom_list vl_doms = TAILQ_HEAD_INITIALIZER(vl_doms);
static unsigned long vl_dom_gen;

struct vl_dom *
vl_dom_find(const char *name)
{
	struct vl_dom *d;

	TAILQ_FOREACH(d, &vl_doms, entry) {
		if (strcmp(d->name, name) == 0)
			return d;
	}
	return NULL;
}

struct vl_dom *
vl_dom_get(const char *name)
{
	struct vl_dom *d;

	if ((d = vl_dom_find(name)) != NULL)
		return d;
	d = xcalloc(1, sizeof *d);
	d->name = xstrdup(name);
	d->gen = ++vl_dom_gen;
	d->refresh = evtimer_new(vl_base, vl_dom_refresh_cb, d);
	d->jobpoll = evtimer_new(vl_base, vl_jobpoll, d);
	if (d->refresh == NULL || d->jobpoll == NULL)
		fatalx("%s: evtimer_new", __func__);
	TAILQ_INSERT_TAIL(&vl_doms, d, entry);
	return d;
}

void
vl_dom_remove(struct vl_dom *d)
{
	TAILQ_REMOVE(&vl_doms, d, entry);
	if (d->added)
		vm_source_remove(d->name);
	event_free(d->refresh);
	event_free(d->jobpoll);
	free(d->key);
	free(d->name);
	free(d);
}

void
vl_dom_remove_all(void)
{
	struct vl_dom *d;

	while ((d = TAILQ_FIRST(&vl_doms)) != NULL)
		vl_dom_remove(d);
}

/*
 * What runs after a (re)connection: domains that stopped while libvirtd
 * was away are gone, the others are read again.
 */
void
vl_dom_listed(char **names, int n)
{
	struct vl_dom *d, *tmp;
	int i;

	for (d = TAILQ_FIRST(&vl_doms); d != NULL; d = tmp) {
		tmp = TAILQ_NEXT(d, entry);
		for (i = 0; i < n; i++) {
			if (strcmp(names[i], d->name) == 0)
				break;
		}
		if (i == n) {
			log_info("libvirt: %s no longer runs", d->name);
			vl_dom_remove(d);
		}
	}
	for (i = 0; i < n; i++)
		vl_dom_schedule(vl_dom_get(names[i]), 0);
}

void
vl_dom_schedule(struct vl_dom *d, int ms)
{
	struct timeval tv = fh_ms_timeval(ms);

	evtimer_add(d->refresh, &tv);
}

static void
vl_dom_refresh_cb(int fd, short what, void *arg)
{
	vl_dom_read(arg);
}

/* One read out per domain; asked again meanwhile, it runs once more. */
static void
vl_dom_read(struct vl_dom *d)
{
	struct vl_job *j;

	if (!vl_is_up())
		return;
	if (d->reading) {
		d->again = true;
		return;
	}
	d->reading = true;
	j = vl_job_new(vl_dom_read_work, vl_dom_read_done, d->name);
	j->gen = d->gen;
	j->seq = d->pc_seq;
	vl_submit(j);
}

/*
 * On a worker: freehint's policy element in the domain's <metadata>.
 * libvirt hands it out without its namespace; policy.c parses it. Any
 * error but "no such metadata" leaves the VM's policy as it was.
 */
static void
vl_dom_read_meta(struct vl_job *j, virDomainPtr dom)
{
	j->meta = virDomainGetMetadata(
	    dom, VIR_DOMAIN_METADATA_ELEMENT, FREEHINT_XMLNS, 0);
	j->meta_read = j->meta != NULL ||
	    virGetLastErrorCode() == VIR_ERR_NO_DOMAIN_METADATA;
}

/* On a worker: everything the loop needs, in one go. */
static void
vl_dom_read_work(struct vl_job *j, virConnectPtr conn)
{
	virDomainPtr dom;

	j->state = -1; /* until libvirtd has said */
	if ((dom = vl_job_domain(j, conn)) == NULL)
		return;
	if (virDomainGetState(dom, &j->state, &j->reason, 0) < 0) {
		vl_job_fail(j);
		j->state = -1;
	} else if (j->state != VIR_DOMAIN_SHUTOFF &&
	    j->state != VIR_DOMAIN_NOSTATE) {
		if ((j->out = virDomainGetXMLDesc(dom, 0)) == NULL)
			vl_job_fail(j);
		else {
			j->pid = vl_find_pid(dom, j->name);
			vl_dom_read_meta(j, dom);
		}
	}
	virDomainFree(dom);
}

static void
vl_dom_read_done(struct vl_job *j)
{
	struct vl_dom *d;
	int state = j->state, reason = j->reason;

	if ((d = vl_dom_find(j->name)) == NULL || d->gen != j->gen)
		return;
	d->reading = false;
	if (state < 0) {
		/* Only libvirtd saying so means gone: a connection lost
		 * while libvirtd restarts keeps the domain until the
		 * reconnection reads it again. */
		if (j->code != VIR_ERR_NO_DOMAIN) {
			log_debug("libvirt: %s: state: %s", d->name, j->err);
			/* Only a read ends postcopy: keep asking. */
			if (d->postcopy)
				vl_dom_schedule(d, VL_POSTCOPY_POLL_MS);
			goto again;
		}
		state = VIR_DOMAIN_SHUTOFF;
	}
	if (state == VIR_DOMAIN_SHUTOFF || state == VIR_DOMAIN_NOSTATE) {
		log_info("libvirt: %s is not running", d->name);
		vl_migration_end(d->name, "not running");
		vl_dom_remove(d);
		return;
	}
	/* A save pauses the guest before its job runs: the first sign of
	 * it. (PAUSED_MIGRATION is also an incoming migration or a restore,
	 * and an outgoing one has its own event.) */
	if (state == VIR_DOMAIN_PAUSED &&
	    (reason == VIR_DOMAIN_PAUSED_SAVE ||
	        reason == VIR_DOMAIN_PAUSED_SNAPSHOT))
		vl_migration_start(d->name, "paused for a save");
	if (j->out == NULL)
		log_warnx("libvirt: %s: cannot read its XML: %s", d->name,
		    j->err != NULL ? j->err : "?");
	else {
		vl_dom_describe(d, j->out, j->pid);
		if (j->meta_read && d->added)
			vm_source_policy(d->name, j->meta);
	}
	vl_postcopy_state(d, state, reason, j->seq == d->pc_seq);
again:
	if (d->again) {
		d->again = false;
		vl_dom_read(d);
	}
}

/*
 * The domain's live XML: what the registry is told. Everything freehintd
 * takes from a domain's XML or metadata is read here.
 */
static void
vl_dom_describe(struct vl_dom *d, const char *xml, pid_t pid)
{
	struct vm_desc desc;
	struct vl_xml x;
	char *why, *key;

	if (vl_xml_parse(xml, &x) == -1)
		log_warnx("libvirt: %s: malformed domain XML", d->name);
	why = vl_unservable(&x, pid);

	memset(&desc, 0, sizeof desc);
	desc.name = d->name;
	desc.source = "libvirt";
	desc.cid = x.cid;
	desc.channel = x.channel;
	desc.channel_qemu = true;
	desc.qemu_pid = pid;
	desc.backing = x.backing;
	desc.shared = vl_xml_shared(&x);
	desc.unservable = why;
	xasprintf(&key, "%u|%s|%ld|%d|%d|%s|%s", desc.cid,
	    desc.channel != NULL ? desc.channel : "", (long)desc.qemu_pid,
	    (int)desc.backing, (int)desc.shared, why != NULL ? why : "",
	    x.dma != NULL ? x.dma : "");
	if (!d->added || d->key == NULL || strcmp(key, d->key) != 0) {
		log_info("libvirt: %s: pid %ld, channel %s, cid %u%s%s",
		    d->name, (long)pid, x.channel != NULL ? x.channel : "none",
		    x.cid, why != NULL ? ", unservable: " : "",
		    why != NULL ? why : "");
		if (vm_source_add(&desc, vl_hmp, d) == 0) {
			d->added = true;
			/* The automatic pass may hold the migration back. */
			vm_source_speed(d->name, vl_speed, d);
			free(d->key);
			d->key = key;
			key = NULL;
			/* After the add: the registry knows it now. */
			vm_source_dma(d->name, x.dma);
			if (d->migrating)
				vm_source_migration(
				    d->name, VM_MIGRATION_STARTED);
			/* An add starts the VM afresh: not in postcopy. */
			if (d->postcopy)
				vl_postcopy(d, d->pc_here, "read again");
		} else
			log_warnx(
			    "libvirt: %s: the registry refused it", d->name);
	}
	free(key);
	free(why);
	vl_xml_free(&x);
}

/*
 * On a worker. The QEMU process: the thread of a vCPU (info cpus)
 * belongs to it, which stays right with several libvirtd instances on one
 * host; the pid file of the system instance otherwise. Either is checked
 * against the process's command line.
 */
static pid_t
vl_find_pid(virDomainPtr dom, const char *name)
{
	char *out = NULL, *p, path[PATH_MAX], line[128];
	long tid = 0, pid = 0;
	FILE *f;

	if (virDomainQemuMonitorCommand(dom, "info cpus", &out,
	        VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP) == 0 &&
	    out != NULL && (p = strstr(out, "thread_id=")) != NULL)
		tid = strtol(p + strlen("thread_id="), NULL, 10);
	free(out);
	if (tid > 0) {
		snprintf(path, sizeof path, "/proc/%ld/status", tid);
		if ((f = fopen(path, "re")) != NULL) {
			while (fgets(line, sizeof line, f) != NULL) {
				if (sscanf(line, "Tgid: %ld", &pid) == 1)
					break;
			}
			fclose(f);
		}
		if (pid > 0 && vl_pid_is(pid, name))
			return (pid_t)pid;
	}
	pid = 0;
	snprintf(path, sizeof path, "%s/%s.pid", VL_PID_DIR, name);
	if ((f = fopen(path, "re")) != NULL) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid > 0 && vl_pid_is(pid, name))
		return (pid_t)pid;
	return 0;
}

/* libvirt starts QEMU with -name guest=NAME,... (commas doubled). */
static bool
vl_pid_is(pid_t pid, const char *name)
{
	char path[64], buf[8192], want[600], *p, *q;
	const char *s;
	ssize_t n;
	int fd;

	q = want;
	q += snprintf(want, sizeof want, "guest=");
	for (s = name; *s != '\0' && q < want + sizeof want - 3; s++) {
		*q++ = *s;
		if (*s == ',')
			*q++ = ',';
	}
	*q = '\0';
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (p = buf; p < buf + n; p += strlen(p) + 1) {
		if (strncmp(p, want, strlen(want)) == 0 &&
		    (p[strlen(want)] == '\0' ||
		        (p[strlen(want)] == ',' && p[strlen(want) + 1] != ',')))
			return true;
	}
	return false;
}

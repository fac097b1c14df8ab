/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vlprobe: host-daemon/libvirt.c alone against a real libvirtd. The VM
 * registry is replaced by one line per call on stdout, so that
 * tests/checks.d/60-libvirt.sh can check what the libvirt source reports
 * independently of the rest of freehintd. Commands on stdin:
 * "notify EVENT NAME", "hmp NAME CMD", "xml FILE", "quit".
 */
#include <sys/types.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "libvirt.h"
#include "vmsource.h"

struct probe_vm {
	char name[256];
	vm_hmp_fn hmp;
	void *ctx;
};

static void probe_line(char *);
static void probe_xml(const char *);
static void probe_stdin(int, short, void *);
static struct probe_vm *probe_find(const char *);

static struct probe_vm vms[16];
static struct event_base *base;

static struct probe_vm *
probe_find(const char *name)
{
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(vms); i++) {
		if (strcmp(vms[i].name, name) == 0)
			return &vms[i];
	}
	return NULL;
}

/* An HMP answer comes later, from the loop: printed when it comes. */
struct probe_hmp {
	char line[600]; /* what to print before the answer */
	char unservable[1024]; /* an ADD: "ok" or "fail", then this */
	bool mtree;
};

static void
probe_hmp_done(void *arg, const char *out)
{
	struct probe_hmp *h = arg;

	if (h->mtree)
		printf("%s mtree=%s unservable=%s\n", h->line,
		    out != NULL && strstr(out, "ram") != NULL ? "ok" : "fail",
		    h->unservable);
	else
		printf("%s %d %s\n", h->line, out != NULL ? 0 : -1,
		    out != NULL ? out : "");
	fflush(stdout);
	free(h);
}

/* unservable: NULL for a plain command, else an ADD's. */
static void
probe_hmp(vm_hmp_fn hmp, void *ctx, const char *cmd, const char *line,
    const char *unservable)
{
	struct probe_hmp *h = xcalloc(1, sizeof(*h));

	snprintf(h->line, sizeof(h->line), "%s", line);
	h->mtree = unservable != NULL;
	if (unservable != NULL)
		snprintf(
		    h->unservable, sizeof(h->unservable), "%s", unservable);
	hmp(ctx, cmd, probe_hmp_done, h);
}

int
vm_source_add(const struct vm_desc *d, vm_hmp_fn hmp, void *ctx)
{
	struct probe_vm *v;
	char line[600];

	if ((v = probe_find(d->name)) == NULL && (v = probe_find("")) == NULL)
		return -1;
	snprintf(v->name, sizeof(v->name), "%s", d->name);
	v->hmp = hmp;
	v->ctx = ctx;
	/* What the registry does first: the guest-physical map. The ADD
	 * line is printed with the answer. */
	snprintf(line, sizeof(line),
	    "ADD %s source=%s pid=%ld channel=%s cid=%u backing=%d shared=%d",
	    d->name, d->source, (long)d->qemu_pid,
	    d->channel != NULL ? d->channel : "-", d->cid, (int)d->backing,
	    (int)d->shared);
	probe_hmp(hmp, ctx, "info mtree -f", line,
	    d->unservable != NULL ? d->unservable : "-");
	return 0;
}

/* The policy in a domain's metadata is the registry's, tested through
 * freehintd in 62-libvirt-policy. */
void
vm_source_policy(const char *name, const char *xml)
{
}

/* The migration's bandwidth is held by the registry (mighold.c), tested
 * through freehintd in 64-libvirt-postcopy. */
void
vm_source_speed(const char *name, vm_speed_fn fn, void *ctx)
{
}

void
vm_source_dma(const char *name, const char *why)
{
	printf("DMA %s %s\n", name, why != NULL ? why : "-");
	fflush(stdout);
}

void
vm_source_remove(const char *name)
{
	struct probe_vm *v;

	if ((v = probe_find(name)) != NULL)
		memset(v, 0, sizeof(*v));
	printf("REMOVE %s\n", name);
	fflush(stdout);
}

void
vm_source_migration(const char *name, enum vm_migration_event ev)
{
	printf("MIGRATION %s %s\n", name,
	    ev == VM_MIGRATION_STARTED        ? "STARTED"
	        : ev == VM_MIGRATION_POSTCOPY ? "POSTCOPY"
	                                      : "FINISHED");
	fflush(stdout);
}

void
vm_source_running(const char *name, bool running)
{
	printf("RUNNING %s %d\n", name, (int)running);
	fflush(stdout);
}

/* "xml FILE": how the XML reader judges a domain's XML. */
static void
probe_xml(const char *path)
{
	struct vl_xml x;
	char buf[256 * 1024], *why;
	size_t n;
	FILE *f;
	int rc;

	if ((f = fopen(path, "r")) == NULL) {
		printf("XML -1 cannot open %s\n", path);
		return;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rc = vl_xml_parse(buf, &x);
	why = vl_unservable(&x, 1);
	printf("XML %d channel=%s cid=%u shared=%d dma=%s unservable=%s\n", rc,
	    x.channel != NULL ? x.channel : "-", x.cid, (int)vl_xml_shared(&x),
	    x.dma != NULL ? x.dma : "-", why != NULL ? why : "-");
	free(why);
	vl_xml_free(&x);
}

static void
probe_line(char *line)
{
	char ev[64], name[256], msg[256], path[4096], pfx[300];
	struct probe_vm *v;
	int rc;

	if (sscanf(line, "notify %63s %255s", ev, name) == 2) {
		rc = vl_notify(ev, name, msg, sizeof(msg));
		printf("NOTIFY %d %s\n", rc, msg);
	} else if (sscanf(line, "hmp %255s", name) == 1 &&
	    (v = probe_find(name)) != NULL) {
		snprintf(pfx, sizeof(pfx), "HMP");
		probe_hmp(v->hmp, v->ctx, line + 5 + strlen(name), pfx, NULL);
	} else if (sscanf(line, "xml %4095s", path) == 1)
		probe_xml(path);
	else if (strcmp(line, "quit") == 0)
		event_base_loopbreak(base);
	else
		printf("ERR %s\n", line);
	fflush(stdout);
}

static void
probe_stdin(int fd, short what, void *arg)
{
	static char buf[4096];
	static size_t len;
	char *nl;
	ssize_t n;

	if ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0) {
		event_base_loopbreak(base);
		return;
	}
	len += (size_t)n;
	buf[len] = '\0';
	while ((nl = strchr(buf, '\n')) != NULL) {
		*nl = '\0';
		probe_line(buf);
		len -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, len + 1);
	}
	if (len == sizeof(buf) - 1)
		len = 0;
}

int
main(int argc, char **argv)
{
	struct event *ev;

	log_init("vlprobe", 1, argc > 2 ? 2 : 0);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if (vl_init(base, argc > 1 ? argv[1] : NULL) == -1)
		fatalx("vl_init failed");
	ev = event_new(
	    base, STDIN_FILENO, EV_READ | EV_PERSIST, probe_stdin, NULL);
	if (ev == NULL || event_add(ev, NULL) == -1)
		fatalx("stdin event");
	event_base_dispatch(base);
	event_free(ev);
	vl_shutdown();
	event_base_free(base);
	return 0;
}

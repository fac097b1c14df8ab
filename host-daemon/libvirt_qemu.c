/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the registry asks of a libvirt domain's QEMU (vm_hmp_fn,
 * vm_speed_fn): read-only monitor commands and the migration's
 * bandwidth, each run by a worker through libvirt, its answer given back
 * on the loop.
 */
#include <stdint.h>
#include <stdlib.h>

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>

#include "common.h"
#include "libvirt.h"

static void vl_hmp_work(struct vl_job *, virConnectPtr);
static void vl_hmp_done(struct vl_job *);
static void vl_speed_work(struct vl_job *, virConnectPtr);
static void vl_speed_done(struct vl_job *);

/* The registry's read-only monitor access: done comes from the loop. */
void
vl_hmp(void *ctx, const char *cmd, vm_hmp_done done, void *arg)
{
	struct vl_dom *d = ctx;
	struct vl_job *j;

	j = vl_job_new(vl_hmp_work, vl_hmp_done, d->name);
	j->in = xstrdup(cmd);
	j->hmp_done = done;
	j->hmp_arg = arg;
	vl_submit(j);
}

static void
vl_hmp_work(struct vl_job *j, virConnectPtr conn)
{
	virDomainPtr dom;

	if ((dom = vl_job_domain(j, conn)) == NULL)
		return;
	if (virDomainQemuMonitorCommand(
	        dom, j->in, &j->out, VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP) < 0) {
		vl_job_fail(j);
		j->out = NULL;
	}
	virDomainFree(dom);
}

static void
vl_hmp_done(struct vl_job *j)
{
	vm_hmp_done done = j->hmp_done;

	if (j->err != NULL)
		log_warnx("libvirt: %s: '%s': %s", j->name, j->in, j->err);
	/* Told exactly once, whatever became of the domain meanwhile. */
	j->hmp_done = NULL;
	done(j->hmp_arg, j->err == NULL ? j->out : NULL);
}

/*
 * The running migration's bandwidth (mighold.c), on a worker: libvirt
 * counts it in MiB/s, so a hold below 1 MiB/s is 1 MiB/s; the one in
 * force before is given back as it was.
 */
void
vl_speed(
    void *ctx, uint64_t bps, uint64_t ceiling, vm_speed_done done, void *arg)
{
	struct vl_dom *d = ctx;
	struct vl_job *j;

	j = vl_job_new(vl_speed_work, vl_speed_done, d->name);
	j->bps = bps;
	j->ceiling = ceiling;
	j->speed_done = done;
	j->speed_arg = arg;
	vl_submit(j);
}

static void
vl_speed_work(struct vl_job *j, virConnectPtr conn)
{
	unsigned long was, mib;
	virDomainPtr dom;

	j->was = -1;
	if ((dom = vl_job_domain(j, conn)) == NULL)
		return;
	mib = (unsigned long)(j->bps >> 20);
	if (mib == 0)
		mib = 1;
	if (virDomainMigrateGetMaxSpeed(dom, &was, 0) < 0) {
		vl_job_fail(j);
		virDomainFree(dom);
		return;
	}
	j->was = was > (unsigned long)(INT64_MAX >> 20) ? INT64_MAX
	                                                : (int64_t)was << 20;
	/* Above the ceiling nothing is set, and was says so. */
	if ((uint64_t)j->was <= j->ceiling &&
	    virDomainMigrateSetMaxSpeed(dom, mib, 0) < 0) {
		j->was = -1;
		vl_job_fail(j);
	}
	virDomainFree(dom);
}

static void
vl_speed_done(struct vl_job *j)
{
	vm_speed_done done = j->speed_done;

	if (j->err != NULL)
		log_warnx(
		    "libvirt: %s: migration bandwidth: %s", j->name, j->err);
	j->speed_done = NULL;
	done(j->speed_arg, j->err == NULL ? j->was : -1);
}

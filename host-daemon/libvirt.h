/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The libvirt VM source: finds running domains through libvirt's C API,
 * follows their lifecycle and migrations, and hands them to the VM
 * registry through vmsource.h. Its files, one job each:
 *   libvirt.c         the connection and its backoff
 *   libvirt_loop.c    libvirt's calls and events off the daemon's loop
 *   libvirt_event.c   lifecycle and migration events
 *   libvirt_dom.c     domain refresh, finding QEMU
 *   libvirt_qemu.c    the registry's monitor commands and bandwidth
 *   libvirt_notify.c  the hook's notify
 *   libvirt_xml.c     the domain XML reader (libxml2, XPath)
 */
#ifndef FREEHINT_LIBVIRT_H
#define FREEHINT_LIBVIRT_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#include "vmsource.h"

struct event_base;
struct vl_dom;

#define VL_DEFAULT_URI  "qemu:///system"
#define VL_CHANNEL_NAME "org.freehint.agent.0"
/* While in postcopy the domain is read this often: its end may come
 * without an event (libvirtd reconnected meanwhile). */
#define VL_POSTCOPY_POLL_MS 1000

/*
 * Starts the libvirt source on the daemon's event loop: connects to uri
 * (NULL: VL_DEFAULT_URI), adds every running domain, follows events and
 * reconnects when libvirtd goes away. Returns 0, or -1 when libvirt's
 * event loop cannot be installed (a failed first connection is retried).
 */
int vl_init(struct event_base *, const char *uri);
void vl_shutdown(void);

/*
 * A libvirt hook event (freehintctl notify EVENT NAME): prepare, start,
 * started read the domain again soon; stopped, release remove it; migrate
 * is noted. Never waits for libvirtd. Returns 0, or -1 with a message in
 * msg.
 */
int vl_notify(const char *event, const char *name, char *msg, size_t msglen);

/*
 * The domain XML reader, apart so that tests/unit/test_hostd_libvirt_xml.c
 * can feed it what virsh dumpxml prints and worse.
 */
struct vl_xml {
	uint32_t cid; /* <vsock><cid address='N'/>, 0 when none */
	char *channel; /* unix socket of the freehint channel (bind mode) */
	unsigned channels; /* freehint channels found: one is served */
	bool have_source; /* <memoryBacking><source type=.../> */
	enum vm_backing_kind backing;
	int access; /* -1 private, 0 default, 1 shared */
	bool hugepages;
	unsigned numa_shared; /* NUMA cells with memAccess='shared' */
	unsigned numa_other;
	bool poison; /* page_poison=1 on the kernel command line */
	char *dma; /* a device that DMAs into guest RAM, or NULL */
};

/*
 * Reads what freehintd needs from a domain's XML into x (zeroed first).
 * Returns -1 on malformed XML, with x empty; x must be freed with
 * vl_xml_free either way.
 */
int vl_xml_parse(const char *, struct vl_xml *);
void vl_xml_free(struct vl_xml *);
bool vl_xml_shared(const struct vl_xml *);
/* Why a domain cannot be served, and what to add to its XML; or NULL.
 * pid is QEMU's, 0 when not found. Malloc'ed. */
char *vl_unservable(const struct vl_xml *, pid_t);

/* ---- between the files of the libvirt source ---- */

/*
 * One piece of work for libvirt: work runs on a worker thread (NULL: none,
 * an event's message), then done on the event loop. The fields are the
 * worker's until it is posted, the loop's afterwards.
 */
struct vl_job {
	void (*work)(struct vl_job *, virConnectPtr);
	void (*done)(struct vl_job *);
	char *name; /* the domain's */
	unsigned long gen; /* which vl_dom of that name asked */
	unsigned long seq; /* its pc_seq when a read was asked */
	char *in; /* a monitor command */
	char *out; /* its answer, the domain's XML */
	char *meta; /* freehint's element of the domain's <metadata> */
	bool meta_read; /* meta is what libvirtd said (NULL: none) */
	char *err; /* why the call failed; NULL when it did not */
	int code; /* libvirt's error code when it failed */
	int state, reason; /* domain state, or event and detail */
	pid_t pid; /* QEMU's */
	char **names; /* domains listed */
	int n;
	int kind; /* which event (libvirt_event.c) */
	vm_hmp_done hmp_done;
	void *hmp_arg;
	uint64_t bps; /* a migration's bandwidth to set */
	uint64_t ceiling; /* only when the one in force is at most this */
	int64_t was; /* the one it had, bytes a second; -1: refused */
	vm_speed_done speed_done;
	void *speed_arg;
	TAILQ_ENTRY(vl_job) entry;
};

/* libvirt_loop.c */
int vl_loop_init(struct event_base *);
void vl_loop_shutdown(void);
struct vl_job *vl_job_new(void (*)(struct vl_job *, virConnectPtr),
    void (*)(struct vl_job *), const char *name);
void vl_job_free(struct vl_job *);
void vl_job_fail(struct vl_job *);
virDomainPtr vl_job_domain(struct vl_job *, virConnectPtr);
void vl_submit(struct vl_job *);
void vl_post(struct vl_job *);
virConnectPtr vl_swap_conn(virConnectPtr);

/* libvirt.c */
extern struct event_base *vl_base;
bool vl_is_up(void);

/* libvirt_event.c */
void vl_events_register(virConnectPtr);
void vl_events_deregister(virConnectPtr);
void vl_jobpoll(int, short, void *);
void vl_migration_start(const char *, const char *);
void vl_migration_end(const char *, const char *);
void vl_postcopy(struct vl_dom *, bool here, const char *why);
void vl_postcopy_state(struct vl_dom *, int state, int reason, bool fresh);

/* libvirt_dom.c: the domains the source knows. */
struct vl_dom {
	char *name;
	bool added; /* known to the registry */
	char *key; /* the vm_desc last added, to add again only on change */
	bool migrating;
	/* In postcopy (libvirt_event.c): the guest's RAM is split between
	 * two hosts; pc_here: its vCPUs run on this one; pc_seq counts the
	 * postcopy starts seen, to tell a read made before one. */
	bool postcopy, pc_here;
	unsigned long pc_seq;
	bool reading; /* a refresh job is out */
	bool again; /* read it again when that one is back */
	bool jobpolling; /* a job info poll is out */
	unsigned long gen; /* tells apart domains of one name */
	struct event *refresh;
	struct event *jobpoll;
	TAILQ_ENTRY(vl_dom) entry;
};

struct vl_dom *vl_dom_find(const char *);
struct vl_dom *vl_dom_get(const char *);
void vl_dom_remove(struct vl_dom *);
void vl_dom_remove_all(void);
void vl_dom_schedule(struct vl_dom *, int ms);
void vl_dom_listed(char **, int);

/* libvirt_qemu.c */
void vl_hmp(void *, const char *, vm_hmp_done, void *);
void vl_speed(void *, uint64_t, uint64_t, vm_speed_done, void *);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libvirt.c: the libvirt VM source. Finds running domains through
 * libvirt's C API, follows their lifecycle and migrations, and hands them
 * to the VM registry through vmsource.h.
 */
#ifndef FREEHINT_LIBVIRT_H
#define FREEHINT_LIBVIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmsource.h"

struct event_base;

#define VL_DEFAULT_URI "qemu:///system"

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
 * started re-read the domain now; stopped, release remove it; migrate is
 * noted. Returns 0, or -1 with a message in msg.
 */
int vl_notify(const char *event, const char *name, char *msg, size_t msglen);

/* vlpolicy.c: the policy in a domain's <metadata> (virDomainPtr and
 * virConnectPtr, spelt so that this header needs no libvirt). */
struct _virDomain;
struct _virConnect;
void vlp_read(struct _virDomain *);
int vlp_register(struct _virConnect *);

/*
 * The domain XML reader, apart so that tests/unit/test_hostd_libvirt_xml.c
 * can feed it what virsh dumpxml prints and worse.
 */
struct vl_xml {
	uint32_t cid; /* <vsock><cid address='N'/>, 0 when none */
	char *channel; /* unix socket of the freehint channel (bind mode) */
	bool have_source; /* <memoryBacking><source type=.../> */
	enum vm_backing_kind backing;
	int access; /* -1 private, 0 default, 1 shared */
	bool hugepages;
	unsigned numa_shared; /* NUMA cells with memAccess='shared' */
	unsigned numa_other;
	bool poison; /* page_poison=1 on the kernel command line */
};

/*
 * Reads what freehintd needs from a domain's XML into x (zeroed first).
 * Returns -1 on malformed XML, with what was read until then in x; x
 * must be freed with vl_xml_free either way.
 */
int vl_xml_parse(const char *, struct vl_xml *);
void vl_xml_free(struct vl_xml *);
/* Why a domain cannot be served, and what to add to its XML; or NULL.
 * pid is QEMU's, 0 when not found. Malloc'ed. */
char *vl_unservable(const struct vl_xml *, pid_t);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libvirt.c: the libvirt VM source. Finds running domains through
 * libvirt's C API, follows their lifecycle and migrations, and hands them
 * to the VM registry through vmsource.h.
 */
#ifndef FREEHINT_LIBVIRT_H
#define FREEHINT_LIBVIRT_H

#include <stddef.h>

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

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The libvirt hook's word (freehintctl notify EVENT NAME). The hook runs
 * while libvirtd holds the domain, and libvirtd waits for it: the answer
 * goes out at once, and whatever needs libvirtd is queued for a worker
 * (libvirt_loop.c), a little later.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "libvirt.h"

/* Let the hook end before asking libvirtd about the domain it holds. */
#define VL_HOOK_DELAY_MS 100

int
vl_notify(const char *event, const char *name, char *msg, size_t msglen)
{
	struct vl_dom *d;
	const char *s;

	*msg = '\0';
	if (vl_base == NULL) {
		snprintf(msg, msglen, "libvirt source not running");
		return -1;
	}
	if (name == NULL || *name == '\0' || strlen(name) > 255) {
		snprintf(msg, msglen, "bad domain name");
		return -1;
	}
	for (s = name; *s != '\0'; s++) {
		if (*s == '/' || iscntrl((unsigned char)*s)) {
			snprintf(msg, msglen, "bad domain name");
			return -1;
		}
	}
	if (event == NULL)
		event = "";
	if (strcmp(event, "prepare") == 0 || strcmp(event, "start") == 0 ||
	    strcmp(event, "started") == 0) {
		/* A name libvirtd does not know is dropped by the read. */
		vl_dom_schedule(vl_dom_get(name), VL_HOOK_DELAY_MS);
		snprintf(msg, msglen, "%s: %s noted", name, event);
		return 0;
	}
	if (strcmp(event, "stopped") == 0 || strcmp(event, "release") == 0) {
		if ((d = vl_dom_find(name)) != NULL) {
			vl_migration_end(name, event);
			vl_dom_remove(d);
			snprintf(msg, msglen, "%s: removed", name);
		} else
			snprintf(msg, msglen, "%s: not known", name);
		return 0;
	}
	if (strcmp(event, "migrate") == 0) {
		log_info("libvirt: %s: incoming migration", name);
		snprintf(msg, msglen, "%s: migrate noted", name);
		return 0;
	}
	snprintf(msg, msglen, "unknown event '%s'", event);
	return -1;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The libvirt VM source (stub: the interface first, the work follows).
 */
#include <stdio.h>

#include "common.h"
#include "libvirt.h"
#include "vmsource.h"

int
vl_init(struct event_base *base, const char *uri)
{
	log_warnx("%s: libvirt support not built yet", __func__);
	return (-1);
}

void
vl_shutdown(void)
{
}

int
vl_notify(const char *event, const char *name, char *msg, size_t msglen)
{
	snprintf(msg, msglen, "libvirt support not built yet");
	return (-1);
}

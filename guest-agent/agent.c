/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's life: finding the module and opening its channels (report,
 * hold, snapshot) in the files under proc-dir, a session for each
 * connection to the host, room handed to the channels while it lasts (the
 * pump), and the stop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "agent.h"

/* How often --wait-module looks for the module. */
#define MODULE_POLL_SEC 2

char *
agent_proc_path(const struct agent *a, const char *name)
{
	char *p;

	xasprintf(&p, "%s/%s", a->conf.proc_dir, name);
	return p;
}

void
agent_connected(struct agent *a, int fd, const char *what)
{
	a->session = session_new(a, fd, what);
	if (a->session == NULL)
		transport_lost(a->transport, "cannot start a session");
	agent_status(a);
}

/*
 * Find the module and open its report channel. 0: the module is there;
 * -1: it is not (logged once unless quiet), the one error --wait-module
 * waits out; -2: another agent has it. Without page reporting (another
 * driver such as virtio_balloon holds the kernel's only slot, or page
 * poisoning) the agent carries on with holds and snapshots.
 */
int
agent_module(struct agent *a, int quiet)
{
	char *path;
	int err = 0;

	a->report = report_open(a, &err);
	if (a->report != NULL) {
		a->module = true;
		return 0;
	}
	path = agent_proc_path(a, "report");
	if (err == ENOENT && !quiet)
		log_warnx(
		    "freehint.ko is not loaded: %s: %s; modprobe freehint",
		    path, strerror(err));
	else if (err == EBUSY)
		log_warnx("%s: %s: is another freehint-agent running?", path,
		    strerror(err));
	else if (err == ENODEV)
		log_warnx("%s: the module has no page reporting (see "
		          "report_owner in its stats): hint passes and "
		          "snapshots only",
		    path);
	else if (err != ENOENT)
		log_warnx("%s: %s", path, strerror(err));
	free(path);
	if (err == ENOENT)
		return -1;
	if (err == EBUSY)
		return -2;
	a->module = true;
	return 0;
}

void
agent_module_cb(int fd, short what, void *arg)
{
	struct agent *a = arg;
	struct timeval tv = { MODULE_POLL_SEC, 0 };
	int rc;

	if ((rc = agent_module(a, 1)) == -1) {
		evtimer_add(a->ev_module, &tv);
		return;
	}
	if (rc != 0) {
		a->exit_code = 1;
		agent_stop(a, "cannot open the module's report channel");
		return;
	}
	log_info("freehint.ko is there");
	a->hold = hold_new(a);
	a->snapshot = snapshot_new(a);
	transport_start(a->transport);
	agent_status(a);
}

void
agent_pump(struct agent *a)
{
	if (a->stopping)
		return;
	report_pump(a->report);
	if (a->hold != NULL)
		hold_pump(a->hold);
	if (a->snapshot != NULL)
		snapshot_pump(a->snapshot);
}

void
agent_stop(struct agent *a, const char *why)
{
	if (a->stopping)
		return;
	a->stopping = 1;
	log_info("stopping: %s", why);
	sd_notify(0, "STOPPING=1");
	/* Pending batches are failed back, held blocks released. */
	session_free(a->session);
	a->session = NULL;
	hold_free(a->hold);
	a->hold = NULL;
	event_base_loopbreak(a->base);
}

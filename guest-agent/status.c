/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the agent tells a person: its last error, and the one-line status
 * systemd shows (STATUS=) that carries it.
 */
#include <stdarg.h>
#include <stdio.h>

#include <systemd/sd-daemon.h>

#include "agent.h"

void
agent_error(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->stats.last_error, sizeof a->stats.last_error, fmt, ap);
	va_end(ap);
}

/* One line a person can read, for systemctl status. */
void
agent_status(struct agent *a)
{
	const char *what = transport_what(a->transport);
	char line[512];

	if (!a->module)
		snprintf(line, sizeof line, "waiting for freehint.ko (%s)",
		    a->conf.proc_dir);
	else if (session_ready(a->session))
		snprintf(line, sizeof line,
		    "connected over %s; %llu MiB reported, %llu MiB acked, "
		    "%llu batches failed, %llu deferred, %llu kept%s",
		    what, (unsigned long long)(a->stats.bytes_reported >> 20),
		    (unsigned long long)(a->stats.bytes_acked >> 20),
		    (unsigned long long)a->stats.batches_failed,
		    (unsigned long long)a->stats.batches_deferred,
		    (unsigned long long)a->stats.batches_kept,
		    a->report == NULL ? "; no page reporting (see the log)"
		                      : "");
	else
		snprintf(line, sizeof line,
		    "not connected (%s)%s%s; %llu MiB reported so far", what,
		    a->stats.last_error[0] != '\0' ? ": " : "",
		    a->stats.last_error,
		    (unsigned long long)(a->stats.bytes_reported >> 20));
	sd_notifyf(0, "STATUS=%s", line);
}

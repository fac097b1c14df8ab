/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The glue between the channel to the host and the module's files: who
 * gets room when the host acknowledges, who answers the module when a
 * kernel batch is done, and the one-line status systemd shows.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "agent.h"

char *
agent_proc_path(const struct agent *a, const char *name)
{
	char *p;

	xasprintf(&p, "%s/%s", a->conf.proc_dir, name);
	return p;
}

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

	if (a->report == NULL)
		snprintf(line, sizeof line, "waiting for freehint.ko (%s)",
		    a->conf.proc_dir);
	else if (session_ready(a->session))
		snprintf(line, sizeof line,
		    "connected over %s; %llu MiB reported, %llu MiB acked, "
		    "%llu batches failed, %llu deferred",
		    what, (unsigned long long)(a->stats.bytes_reported >> 20),
		    (unsigned long long)(a->stats.bytes_acked >> 20),
		    (unsigned long long)a->stats.batches_failed,
		    (unsigned long long)a->stats.batches_deferred);
	else
		snprintf(line, sizeof line,
		    "not connected (%s)%s%s; %llu MiB reported so far", what,
		    a->stats.last_error[0] != '\0' ? ": " : "",
		    a->stats.last_error,
		    (unsigned long long)(a->stats.bytes_reported >> 20));
	sd_notifyf(0, "STATUS=%s", line);
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
agent_kbatch_done(struct agent *a, struct kbatch *kb)
{
	switch (kb->source) {
	case KB_REPORT:
		report_kbatch_done(a->report, kb);
		break;
	case KB_HOLD:
		hold_kbatch_done(a->hold, kb);
		break;
	case KB_HINT:
	case KB_ORPHAN:
		free(kb);
		break;
	}
}

/*
 * Answer the module for a kernel batch whose RangeBatches are all done,
 * and free it. One the host may still be discarding (the link dropped
 * before its Ack) is not answered: "fail" would hand its pages out at
 * once; the module's timeout and grace give them back instead.
 */
void
agent_kbatch_answer(int fd, const char *path, struct kbatch *kb)
{
	const char *verb = kb->failed ? "fail" : "ack";

	if (kb->unanswered)
		log_info("batch %llu: host gone before answering; left to "
		         "the module's timeout",
		    (unsigned long long)kb->kid);
	else if (kb->kid != 0 && kmod_answer(fd, verb, kb->kid) != 0)
		/* Too late: the module timed the batch out already. */
		log_warn(
		    "%s: %s %llu", path, verb, (unsigned long long)kb->kid);
	else
		log_debug("%s: batch %llu: %s", path,
		    (unsigned long long)kb->kid, verb);
	free(kb);
}

/* The module's report_grace_ms, when it cannot be read. */
#define AGENT_GRACE_DEFAULT_MS 2000
/* Taken off the grace for clock drift and scheduling between the two. */
#define AGENT_LEASE_MARGIN_MS 300
#define AGENT_GRACE_PARAM     "/sys/module/freehint/parameters/report_grace_ms"

uint64_t
agent_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/*
 * Once read, a reported or held block stays with the module at least
 * report_grace_ms after the agent stops answering for it (timeout, fail
 * by close, release): that is the lease a batch's deadline is built on.
 * Read at every handshake, since root may change the parameter.
 */
void
agent_read_lease(struct agent *a)
{
	unsigned long grace = AGENT_GRACE_DEFAULT_MS;
	FILE *f;

	if ((f = fopen(AGENT_GRACE_PARAM, "re")) != NULL) {
		if (fscanf(f, "%lu", &grace) != 1)
			grace = AGENT_GRACE_DEFAULT_MS;
		fclose(f);
	} else
		log_debug("%s: %s; assuming %u ms", AGENT_GRACE_PARAM,
		    "cannot read", AGENT_GRACE_DEFAULT_MS);
	if (grace > 3600 * 1000)
		grace = 3600 * 1000;
	a->lease_ms = grace > AGENT_LEASE_MARGIN_MS
	    ? (uint32_t)(grace - AGENT_LEASE_MARGIN_MS)
	    : 0;
}

/* Called as a batch is read from the module: its lease starts now. */
void
agent_lease_start(struct agent *a, struct kbatch *kb)
{
	kb->lease_end_ms = agent_now_ms() + a->lease_ms;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A kernel batch (a report or hold batch the module handed out, or a
 * snapshot's hints) once all of its RangeBatches are done: its channel's
 * callback, and the answer ("ack" or "fail") written to the module.
 */
#include <stdlib.h>

#include "agent.h"

/* A kernel batch is done: its channel answers the module, if any. */
void
kbatch_done(struct kbatch *kb)
{
	if (kb->done != NULL)
		kb->done(kb, kb->done_arg);
	else
		free(kb);
}

/*
 * Answer the module for a kernel batch whose RangeBatches are all done,
 * and free it. One the host may still be discarding (the link dropped
 * before its Ack) is not answered: "fail" would hand its pages out at
 * once; closing the file (grace) or its expiry (report.c) gives it back.
 */
void
agent_kbatch_answer(int fd, const char *path, struct kbatch *kb)
{
	const char *verb = kb->failed ? "fail" : "ack";

	if (kb->unanswered)
		log_info("batch %llu: host gone before answering; left to "
		         "the module's grace",
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

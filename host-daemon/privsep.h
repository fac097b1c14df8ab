/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The messages between freehintd's privileged parent (ps_parent.c) and
 * its unprivileged worker (ps_worker.c); psmsg.c frames them. Each is
 * one record: an id (a request's, echoed by its answer) and fields in
 * the order listed. Strings are bounded (PS_STR_MAX unless said).
 */
#ifndef FREEHINT_PRIVSEP_H
#define FREEHINT_PRIVSEP_H

#define PS_STR_MAX      4096
#define PS_MAX_REGIONS  240 /* a map's regions, each with its fd */
#define PS_INFLIGHT_MAX 256 /* requests out at the sources at once */
/* Within what one record can carry with the smallest socket buffers
 * (privsep.c sets them): a longer monitor answer fails that command. */
#define PS_HMP_OUT_MAX    (192 * 1024)
#define PS_POLICY_XML_MAX (64 * 1024)

enum ps_type {
	/* Parent to worker: what the sources say (vmsource.h). */
	PS_SRC_ADD = 1, /* name source cid channel channel_qemu pid
	                   backing shared unservable */
	PS_SRC_REMOVE, /* name */
	PS_SRC_MIGRATION, /* name event */
	PS_SRC_DMA, /* name why */
	PS_SRC_POLICY, /* name xml */
	PS_SRC_SPEED, /* name (the source can set the bandwidth) */
	PS_SRC_RUNNING, /* name running */
	PS_SRC_CHANGED, /* name */
	PS_POLICY_CONF, /* the daemon's policy, after a reload */
	PS_PING, /* answered by PS_PONG of the same id */
	/* Parent to worker: answers. */
	PS_HMP_DONE, /* out (NULL: failed) */
	PS_SPEED_DONE, /* was (-1: refused) */
	PS_RESOLVE_DONE, /* rc err kind n {fd? file_off pagesz}... dma,
	                    one fd per region that has one */
	PS_DMA_DONE, /* rc why */
	PS_CHAN_DONE, /* err (NULL: the connected fd comes with it) */
	PS_NOTIFY_DONE, /* rc msg */
	/* Worker to parent: requests, each answered. */
	PS_HMP = 100, /* name cmd */
	PS_SPEED, /* name bps ceiling */
	PS_RESOLVE, /* name n {gpa size hva}... */
	PS_DMA, /* name */
	PS_CHAN, /* name */
	PS_NOTIFY, /* event name */
	PS_PONG, /* vms agents */
};

#endif

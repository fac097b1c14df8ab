/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the agent's unit tests that talk to a host share: an agent on a
 * real event base, its session on one end of a socketpair and the test
 * host on the other, reading and framing messages there. The module
 * files the agent reads (stats, blocks) are regular files in a temporary
 * proc-dir. Included after "unit.h" (it asserts).
 */
#ifndef FH_AGENT_FIXTURE_H
#define FH_AGENT_FIXTURE_H

#include <sys/socket.h>
#include <sys/stat.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "agent.h"

#define MAX_RX 64

struct fx {
	struct agent a;
	char dir[64];
	int fd; /* the host's end */
	struct evbuffer *rx;
	int nrx;
	struct fh_msg msg[MAX_RX];
	int eof;
};

#define SPIN_UNTIL(f, cond)                                                  \
	UNIT_SPIN_UNTIL(                                                     \
	    (event_base_loop((f)->a.base, EVLOOP_NONBLOCK), drain(f)), 3000, \
	    cond)

/* Read and decode whatever the agent sent. */
static inline void
drain(struct fx *f)
{
	struct fh_msg m;
	int n;

	for (;;) {
		n = evbuffer_read(f->rx, f->fd, 65536);
		if (n == 0)
			f->eof = 1;
		if (n <= 0)
			break;
	}
	while (fh_msg_pull(f->rx, &m) == FH_OK) {
		assert_true(f->nrx < MAX_RX);
		f->msg[f->nrx++] = m;
	}
}

/* Turn the loop a little while, for things that must not happen. */
static inline void
settle(struct fx *f)
{
	int i;

	for (i = 0; i < 50; i++) {
		event_base_loop(f->a.base, EVLOOP_NONBLOCK);
		drain(f);
		usleep(1000);
	}
}

static inline void
write_file(struct fx *f, const char *name, const char *text)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", f->dir, name);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
}

static inline int
setup(void **state)
{
	struct fx *f;
	int sv[2];

	f = xcalloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/fhagent.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	write_file(f, "stats",
	    "page_size 4096\nmax_pfn 131072\nreport_order 9\n"
	    "page_poisoning 0\n");
	/* Seven separate blocks of order 9 and one of order 0. */
	write_file(f, "blocks",
	    "# freehint blocks: min_order=0\n"
	    "0x0 9 DMA32 1\n0x400 9 DMA32 1\n0x800 9 DMA32 1\n"
	    "0xc00 9 DMA32 1\n0x1000 9 DMA32 1\n0x1400 9 DMA32 1\n"
	    "0x1800 9 DMA32 1\n0x3001 0 Normal 0\n");
	f->a.conf.transport = TRANSPORT_UNIX;
	f->a.conf.unix_path = xstrdup("/nonexistent/fh.sock");
	f->a.conf.serial_path = xstrdup("/nonexistent");
	f->a.conf.proc_dir = xstrdup(f->dir);
	f->a.conf.max_inflight = 8;
	f->a.conf.batch_ranges = 1024;
	f->a.conf.backoff_max = 60000;
	f->a.page_size = 4096;
	f->a.base = event_base_new();
	f->a.transport = transport_new(&f->a, NULL);
	f->a.hold = hold_new(&f->a);
	f->a.snapshot = snapshot_new(&f->a);
	f->rx = evbuffer_new();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		return -1;
	f->fd = sv[1];
	f->a.session = session_new(&f->a, sv[0], "test");
	if (f->a.session == NULL)
		return -1;
	*state = f;
	return 0;
}

static inline int
teardown(void **state)
{
	struct fx *f = *state;
	char path[128];
	int i;

	session_free(f->a.session);
	hold_free(f->a.hold);
	snapshot_free(f->a.snapshot);
	transport_free(f->a.transport);
	event_base_free(f->a.base);
	for (i = 0; i < f->nrx; i++)
		fh_msg_free(&f->msg[i]);
	evbuffer_free(f->rx);
	close(f->fd);
	snprintf(path, sizeof path, "%s/stats", f->dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/blocks", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f->a.conf.unix_path);
	free(f->a.conf.serial_path);
	free(f->a.conf.proc_dir);
	free(f);
	return 0;
}

static inline void
put(struct fx *f, uint8_t type, const ProtobufCMessage *m)
{
	struct evbuffer *b = evbuffer_new();

	assert_int_equal(fh_frame_put(b, type, m), FH_OK);
	while (evbuffer_get_length(b) > 0)
		assert_true(evbuffer_write(b, f->fd) > 0);
	evbuffer_free(b);
}

static inline int
count(struct fx *f, uint8_t type)
{
	int i, n = 0;

	for (i = 0; i < f->nrx; i++)
		n += f->msg[i].type == type;
	return n;
}

static inline void
welcome(struct fx *f, uint32_t inflight, uint32_t ranges)
{
	Freehint__Welcome w = FREEHINT__WELCOME__INIT;

	w.proto_version = FH_PROTO_VERSION;
	w.mode = FREEHINT__MODE__DISCARD;
	w.has_max_inflight = inflight != 0;
	w.max_inflight = inflight;
	w.has_max_batch_ranges = ranges != 0;
	w.max_batch_ranges = ranges;
	w.has_stats_interval_ms = true;
	w.stats_interval_ms = 0;
	put(f, FH_MSG_WELCOME, &w.base);
	SPIN_UNTIL(f, session_ready(f->a.session));
}

static inline void
command(struct fx *f, Freehint__CommandType type)
{
	Freehint__Command c = FREEHINT__COMMAND__INIT;

	c.type = type;
	put(f, FH_MSG_COMMAND, &c.base);
}

static inline void
ack(struct fx *f, uint64_t id, bool ok)
{
	Freehint__Ack a = FREEHINT__ACK__INIT;

	a.batch_id = id;
	a.status =
	    ok ? FREEHINT__ACK_STATUS__APPLIED : FREEHINT__ACK_STATUS__REJECTED;
	put(f, FH_MSG_ACK, &a.base);
}

#endif

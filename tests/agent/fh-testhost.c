/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fh-testhost: a scripted host for the agent's black-box tests, built from
 * the project's own codec and peer module. It listens (unix or vsock) or
 * connects (unix: a QEMU virtio-serial chardev), answers Hello with
 * Welcome, acknowledges or rejects what the agent sends, drives hint
 * passes, drops connections and sends garbage on request, checks what it
 * gets, and prints one line per event and a SUMMARY line at the end.
 *
 *   fh-testhost (-l unix:PATH | -l vsock:PORT | -c unix:PATH) [options]
 *
 * Exit 0 when every goal was met without a violation, 1 otherwise.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include <event2/event.h>

#include "common.h"

struct opts {
	unsigned reject_every; /* reject every Nth REPORTED batch */
	unsigned hint_after; /* HINT_PASS after N REPORTED batches (+1) */
	uint32_t pass_min_order;
	uint64_t pass_limit;
	int pass_zero;
	unsigned drop_after; /* connection 1: close after N batches */
	unsigned drop_after_held; /* connection 1: close after N HELD */
	int garbage; /* connection 2 (or 1): junk after Welcome */
	int snapshot;
	unsigned until_reported;
	unsigned until_connections;
	unsigned until_passes;
	unsigned until_lost;
	int keep_pass; /* never RELEASE */
	uint32_t inflight, batch_ranges, stats_ms;
	unsigned timeout;
};

struct counts {
	unsigned connections, hellos, reported, reported_acked,
	    reported_rejected, held, passes_started, passes_done, hint, stats,
	    errors, lost, violations;
	uint64_t reported_bytes, held_bytes;
};

struct conn {
	struct fh_peer *peer;
	unsigned n;
	uint64_t max_pfn;
	uint32_t page_size;
	unsigned batches, reported, held;
	uint64_t pass_id;
	int pass_open;
	int garbage;
};

static struct opts o = { .inflight = 4,
	.batch_ranges = 256,
	.stats_ms = 1000,
	.timeout = 120,
	.pass_min_order = 9 };
static struct counts c;
static struct event_base *base;
static struct conn *cur;
static int listen_fd = -1;
static char *connect_path;

static void summary_exit(void) __attribute__((noreturn));
static void garbage_cb(int, short, void *);
static void check_goals(void);
static void conn_new(int fd);
static void conn_drop(struct conn *, const char *);
static int h_hello(struct fh_peer *, const struct fh_msg *, void *);
static int h_ranges(struct fh_peer *, const struct fh_msg *, void *);
static int h_stats(struct fh_peer *, const struct fh_msg *, void *);
static int h_error(struct fh_peer *, const struct fh_msg *, void *);
static void h_lost(struct fh_peer *, const char *, void *);

static const struct fh_handler handlers[] = {
	{ FH_MSG_HELLO, h_hello },
	{ FH_MSG_RANGES, h_ranges },
	{ FH_MSG_STATS, h_stats },
	{ FH_MSG_ERROR, h_error },
};

static void
summary_exit(void)
{
	int met = c.reported_acked >= o.until_reported &&
	    c.connections >= o.until_connections &&
	    c.passes_done >= o.until_passes && c.lost >= o.until_lost;

	printf("SUMMARY connections=%u hellos=%u reported=%u acked=%u "
	       "rejected=%u reported_bytes=%llu held=%u held_bytes=%llu "
	       "passes=%u/%u hint=%u stats=%u errors=%u lost=%u "
	       "violations=%u goals=%s\n",
	    c.connections, c.hellos, c.reported, c.reported_acked,
	    c.reported_rejected, (unsigned long long)c.reported_bytes, c.held,
	    (unsigned long long)c.held_bytes, c.passes_done, c.passes_started,
	    c.hint, c.stats, c.errors, c.lost, c.violations,
	    met ? "met" : "missed");
	fflush(stdout);
	exit(met && c.violations == 0 ? 0 : 1);
}

static void
check_goals(void)
{
	if (c.reported_acked >= o.until_reported &&
	    c.connections >= o.until_connections &&
	    c.passes_done >= o.until_passes && c.lost >= o.until_lost)
		summary_exit();
}

static void
violation(const char *what, unsigned long long v)
{
	printf("VIOLATION %s %llu\n", what, v);
	c.violations++;
}

static void
send_command(struct conn *k, Freehint__CommandType type)
{
	Freehint__Command cmd = FREEHINT__COMMAND__INIT;

	cmd.type = type;
	if (type == FREEHINT__COMMAND_TYPE__HINT_PASS) {
		cmd.has_pass_id = true;
		cmd.pass_id = k->pass_id = 100 * k->n + (++c.passes_started);
		cmd.has_min_order = true;
		cmd.min_order = o.pass_min_order;
		cmd.has_byte_limit = o.pass_limit != 0;
		cmd.byte_limit = o.pass_limit;
		cmd.has_zero = true;
		cmd.zero = o.pass_zero;
		k->pass_open = 1;
		printf("HINT_PASS conn=%u pass=%llu\n", k->n,
		    (unsigned long long)k->pass_id);
	}
	fh_peer_send(k->peer, FH_MSG_COMMAND, &cmd.base);
}

static void
garbage_cb(int fd, short what, void *arg)
{
	static const uint8_t junk[] = { 0x46, 0x48, 0x4e, 0x54, 1, FH_MSG_ACK,
		0, 0, 0, 0, 0, 2, 0xff, 0xff };
	struct conn *k = arg;
	int i;

	if (k != cur)
		return;
	printf("GARBAGE conn=%u\n", k->n);
	for (i = 0; i < 12; i++)
		if (write(fh_peer_fd(k->peer), junk, sizeof junk) !=
		    (ssize_t)sizeof junk)
			break;
}

static int
h_hello(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	const Freehint__Hello *h = m->u.hello;
	Freehint__Welcome w = FREEHINT__WELCOME__INIT;
	struct conn *k = arg;
	struct timeval tv = { 0, 300000 };

	c.hellos++;
	k->max_pfn = h->max_pfn;
	k->page_size = h->page_size;
	printf("HELLO conn=%u version=%s page_size=%u max_pfn=%llu "
	       "caps=%u kernel=%s\n",
	    k->n, h->agent_version, h->page_size,
	    (unsigned long long)h->max_pfn, h->capabilities,
	    h->kernel_release != NULL ? h->kernel_release : "?");
	w.proto_version = FH_PROTO_VERSION;
	w.mode = FREEHINT__MODE__RECORD_ONLY;
	w.reason = (char *)(uintptr_t) "fh-testhost";
	w.has_max_inflight = w.has_max_batch_ranges = true;
	w.max_inflight = o.inflight;
	w.max_batch_ranges = o.batch_ranges;
	w.has_stats_interval_ms = true;
	w.stats_interval_ms = o.stats_ms;
	fh_peer_send(p, FH_MSG_WELCOME, &w.base);
	/* Raw junk once the Welcome is surely written. */
	if (k->garbage)
		event_base_once(base, -1, EV_TIMEOUT, garbage_cb, k, &tv);
	if (o.snapshot) {
		send_command(k, FREEHINT__COMMAND_TYPE__STATS_REQUEST);
		send_command(k, FREEHINT__COMMAND_TYPE__SNAPSHOT);
	}
	if (o.hint_after == 1)
		send_command(k, FREEHINT__COMMAND_TYPE__HINT_PASS);
	check_goals();
	return 0;
}

static void
send_ack(struct conn *k, uint64_t id, int ok, int reason)
{
	Freehint__Ack a = FREEHINT__ACK__INIT;

	a.batch_id = id;
	a.status =
	    ok ? FREEHINT__ACK_STATUS__APPLIED : FREEHINT__ACK_STATUS__REJECTED;
	if (!ok) {
		a.has_reason = true;
		a.reason = reason;
		a.detail = (char *)(uintptr_t) "fh-testhost rejects this one";
	}
	fh_peer_send(k->peer, FH_MSG_ACK, &a.base);
}

static int
h_ranges(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	const Freehint__RangeBatch *b = m->u.ranges;
	struct conn *k = arg;
	struct fh_rangeset rs;
	uint64_t pages, bytes;
	const char *kind;
	size_t i;
	int ok = 1, err;

	fh_rs_init(&rs);
	err = fh_batch_unpack(b, &rs, FH_BATCH_MAX_RANGES);
	if (err != FH_OK) {
		violation("undecodable batch", b->batch_id);
		fh_rs_free(&rs);
		send_ack(k, b->batch_id, 0, FREEHINT__REJECT_REASON__MALFORMED);
		return 0;
	}
	for (i = 0; i < rs.n; i++)
		if (rs.r[i].start + rs.r[i].npages > k->max_pfn + 1)
			violation("range past max_pfn", rs.r[i].start);
	pages = fh_rs_pages(&rs);
	bytes = pages * k->page_size;
	fh_rs_free(&rs);
	k->batches++;
	switch (b->kind) {
	case FREEHINT__RANGE_KIND__REPORTED:
		kind = "REPORTED";
		k->reported++;
		c.reported++;
		if (o.reject_every != 0 && c.reported % o.reject_every == 0)
			ok = 0;
		break;
	case FREEHINT__RANGE_KIND__HELD:
		kind = "HELD";
		k->held++;
		c.held++;
		c.held_bytes += bytes;
		if (!k->pass_open || !b->has_pass_id ||
		    b->pass_id != k->pass_id)
			violation("HELD outside the pass", b->pass_id);
		break;
	default:
		kind = "HINT";
		c.hint++;
		break;
	}
	printf("RANGES conn=%u id=%llu kind=%s ranges=%zu pages=%llu pass=%llu "
	       "last=%d ack=%s\n",
	    k->n, (unsigned long long)b->batch_id, kind, b->n_gaps,
	    (unsigned long long)pages, (unsigned long long)b->pass_id,
	    b->has_last && b->last, ok ? "applied" : "rejected");
	if (k->n == 1 && o.drop_after != 0 && k->batches >= o.drop_after) {
		conn_drop(k, "drop-after");
		return 0;
	}
	if (k->n == 1 && o.drop_after_held != 0 &&
	    k->held >= o.drop_after_held) {
		conn_drop(k, "drop-after-held");
		return 0;
	}
	send_ack(k, b->batch_id, ok, FREEHINT__REJECT_REASON__HOST_ERROR);
	if (b->kind == FREEHINT__RANGE_KIND__REPORTED) {
		if (ok) {
			c.reported_acked++;
			c.reported_bytes += bytes;
		} else
			c.reported_rejected++;
		if (o.hint_after > 1 && k->reported == o.hint_after - 1 &&
		    !k->pass_open)
			send_command(k, FREEHINT__COMMAND_TYPE__HINT_PASS);
	}
	if (b->kind == FREEHINT__RANGE_KIND__HELD && b->has_last && b->last) {
		printf("PASS_DONE conn=%u pass=%llu held_bytes=%llu\n", k->n,
		    (unsigned long long)k->pass_id,
		    (unsigned long long)c.held_bytes);
		if (!o.keep_pass) {
			send_command(k, FREEHINT__COMMAND_TYPE__RELEASE);
			k->pass_open = 0;
		}
		c.passes_done++;
	}
	fflush(stdout);
	check_goals();
	return 0;
}

static int
h_stats(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	const Freehint__Stats *st = m->u.stats;

	c.stats++;
	printf("STATS free_bytes=%llu orders=%zu held=%llu sent=%llu "
	       "acked=%llu failed=%llu reconnects=%llu\n",
	    (unsigned long long)st->free_bytes, st->n_free_blocks_by_order,
	    (unsigned long long)st->held_bytes,
	    (unsigned long long)st->batches_sent,
	    (unsigned long long)st->batches_acked,
	    (unsigned long long)st->batches_failed,
	    (unsigned long long)st->reconnects);
	fflush(stdout);
	return 0;
}

static int
h_error(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	const Freehint__Error *e = m->u.error;

	c.errors++;
	printf("ERROR code=%u fatal=%d detail=%s\n", e->code,
	    e->has_fatal && e->fatal, e->detail != NULL ? e->detail : "");
	fflush(stdout);
	return 0;
}

static void
reconnect_cb(int fd, short what, void *arg)
{
	struct sockaddr_un sun;
	int s;

	if (fh_unix_addr(&sun, connect_path) != 0)
		fatal("%s", connect_path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s == -1 || connect(s, (struct sockaddr *)&sun, sizeof sun) != 0) {
		struct timeval tv = { 0, 200000 };

		if (s != -1)
			close(s);
		event_base_once(base, -1, EV_TIMEOUT, reconnect_cb, NULL, &tv);
		return;
	}
	conn_new(s);
}

static void
conn_drop(struct conn *k, const char *why)
{
	struct timeval tv = { 0, 100000 };

	printf("LOST conn=%u why=%s\n", k->n, why);
	fflush(stdout);
	c.lost++;
	fh_peer_free(k->peer);
	if (cur == k)
		cur = NULL;
	free(k);
	check_goals();
	if (connect_path != NULL)
		event_base_once(base, -1, EV_TIMEOUT, reconnect_cb, NULL, &tv);
}

static void
h_lost(struct fh_peer *p, const char *why, void *arg)
{
	conn_drop(arg, why);
}

static void
conn_new(int fd)
{
	struct conn *k;

	if (cur != NULL)
		conn_drop(cur, "replaced by a new connection");
	k = xcalloc(1, sizeof *k);
	k->n = ++c.connections;
	k->garbage = o.garbage == (int)k->n;
	k->peer = fh_peer_new(
	    base, fd, "agent", handlers, FH_ARRAY_SIZE(handlers), h_lost, k);
	if (k->peer == NULL)
		fatalx("fh_peer_new");
	/* Connected to a virtio-serial chardev: a port, as freehintd's. */
	if (connect_path != NULL)
		fh_peer_set_resync(k->peer, true);
	cur = k;
	printf("CONNECT conn=%u\n", k->n);
	fflush(stdout);
}

static void
accept_cb(int fd, short what, void *arg)
{
	int s;

	s = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (s == -1)
		return;
	conn_new(s);
}

static void
timeout_cb(int fd, short what, void *arg)
{
	printf("TIMEOUT\n");
	summary_exit();
}

static int
listen_on(const char *spec)
{
	struct sockaddr_vm svm;
	int fd;

	if (strncmp(spec, "unix:", 5) == 0) {
		if ((fd = fh_unix_listen(spec + 5, 4, SOCK_CLOEXEC)) == -1)
			fatal("%s", spec);
		return fd;
	} else if (strncmp(spec, "vsock:", 6) == 0) {
		/* Only ever inside a guest (vsock_loopback). */
		memset(&svm, 0, sizeof svm);
		svm.svm_family = AF_VSOCK;
		svm.svm_cid = VMADDR_CID_ANY;
		svm.svm_port = (unsigned)atoi(spec + 6);
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd == -1 ||
		    bind(fd, (struct sockaddr *)&svm, sizeof svm) != 0)
			fatal("%s", spec);
	} else
		fatalx("bad listen address %s", spec);
	if (listen(fd, 4) != 0)
		fatal("listen");
	return fd;
}

int
main(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "reject-every", required_argument, NULL, 'r' },
		{ "hint-after", required_argument, NULL, 'H' },
		{ "pass-min-order", required_argument, NULL, 'O' },
		{ "pass-limit", required_argument, NULL, 'L' },
		{ "pass-zero", no_argument, NULL, 'Z' },
		{ "drop-after", required_argument, NULL, 'D' },
		{ "drop-after-held", required_argument, NULL, 'E' },
		{ "garbage", required_argument, NULL, 'G' },
		{ "snapshot", no_argument, NULL, 'S' },
		{ "until-reported", required_argument, NULL, 'u' },
		{ "until-connections", required_argument, NULL, 'n' },
		{ "until-passes", required_argument, NULL, 'P' },
		{ "until-lost", required_argument, NULL, 'U' },
		{ "keep-pass", no_argument, NULL, 'K' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "batch-ranges", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct event *ev_listen = NULL, *ev_timeout;
	struct timeval tv;
	const char *listen_spec = NULL;
	int ch;

	while ((ch = getopt_long(argc, argv, "l:c:", lo, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'c':
			if (strncmp(optarg, "unix:", 5) != 0)
				fatalx("-c takes unix:PATH");
			connect_path = optarg + 5;
			break;
		case 'r':
			o.reject_every = (unsigned)atoi(optarg);
			break;
		case 'H':
			o.hint_after = (unsigned)atoi(optarg);
			break;
		case 'O':
			o.pass_min_order = (uint32_t)atoi(optarg);
			break;
		case 'L':
			if (fh_parse_size(optarg, &o.pass_limit) != 0)
				fatalx("bad --pass-limit");
			break;
		case 'Z':
			o.pass_zero = 1;
			break;
		case 'D':
			o.drop_after = (unsigned)atoi(optarg);
			break;
		case 'E':
			o.drop_after_held = (unsigned)atoi(optarg);
			break;
		case 'G':
			o.garbage = atoi(optarg);
			break;
		case 'S':
			o.snapshot = 1;
			break;
		case 'u':
			o.until_reported = (unsigned)atoi(optarg);
			break;
		case 'n':
			o.until_connections = (unsigned)atoi(optarg);
			break;
		case 'P':
			o.until_passes = (unsigned)atoi(optarg);
			break;
		case 'U':
			o.until_lost = (unsigned)atoi(optarg);
			break;
		case 'K':
			o.keep_pass = 1;
			break;
		case 'i':
			o.inflight = (uint32_t)atoi(optarg);
			break;
		case 'b':
			o.batch_ranges = (uint32_t)atoi(optarg);
			break;
		case 't':
			o.timeout = (unsigned)atoi(optarg);
			break;
		default:
			fprintf(stderr,
			    "usage: fh-testhost (-l unix:PATH | "
			    "-l vsock:PORT | -c unix:PATH) ...\n");
			return 2;
		}
	}
	if ((listen_spec == NULL) == (connect_path == NULL))
		fatalx("one of -l or -c is needed");
	log_init("fh-testhost", 1, 0);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if (listen_spec != NULL) {
		listen_fd = listen_on(listen_spec);
		ev_listen = event_new(
		    base, listen_fd, EV_READ | EV_PERSIST, accept_cb, NULL);
		event_add(ev_listen, NULL);
		printf("LISTEN %s\n", listen_spec);
	} else
		reconnect_cb(-1, 0, NULL);
	tv.tv_sec = o.timeout;
	tv.tv_usec = 0;
	ev_timeout = evtimer_new(base, timeout_cb, NULL);
	evtimer_add(ev_timeout, &tv);
	event_base_dispatch(base);
	summary_exit();
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A hostile guest agent for freehintd's black-box test. It listens where
 * QEMU's virtio-serial chardev would (freehintd connects to it), speaks
 * the protocol through the project's own codec and breaks it on purpose.
 * Each case prints PASS or FAIL; the exit status is the number of FAILs.
 *
 *   fh-hostile SOCK hostile RAM_BYTES CANARY_GPA   the attacks, in phases
 *   fh-hostile SOCK steady SECONDS PFN             a well-behaved guest
 *   fh-hostile SOCK deputy RAM_BYTES MODE          REPORTED batches over
 *       all of RAM; the Welcome must give MODE (discard, record-only)
 *   fh-hostile SOCK escape N SECONDS               N batches past RAM,
 *       then an Error whose detail is terminal escapes; stays SECONDS
 *   fh-hostile SOCK script NAME -                  batches read from
 *       stdin, one a line: "KIND PFN NPAGES EXPECT" (KIND hint, reported
 *       or held; EXPECT applied or a RejectReason's name); each line's
 *       check is NAME:N, printed once its Ack came
 *   fh-hostile SOCK timed SECONDS PFN              the same, and every
 *       REPORTED batch must be acknowledged APPLIED within 1 s (from the
 *       first connection: the daemon must reach us within 10 s)
 *   fh-hostile SOCK flood SECONDS RANGES           large REPORTED batches
 *       (RANGES ranges of 30 MiB from 16 MiB) kept 4 in flight, then one
 *       batch whose deadline passes while it is punched: it must come
 *       back rejected with what was punched (ranges_applied whole ranges)
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common.h"

#define TIMEOUT_MS 10000
/* The daemon's (re)connection: under valgrind on a loaded machine its
 * start and first map load alone can take longer than a reply. */
#define CONNECT_TIMEOUT_MS 60000

static int lfd = -1, fd = -1, fails;
static uint64_t next_id = 1;
/* The daemon's clock less ours (Welcome.host_clock_ms), and what deadline
 * the next REPORTED or HELD batch carries. */
static int64_t clock_offset;
static enum { DEADLINE_OK, DEADLINE_NONE, DEADLINE_PAST } deadline_mode;
static struct evbuffer *in;

static void evolution(void);
static const ProtobufCMessage *sample_batch(void);
static void check(int, const char *, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static int accept_daemon(void);
static int sendmsg_(uint8_t, const ProtobufCMessage *);
static int recv_msg(struct fh_msg *, int);
static int64_t now_ms(void);
static int hello(void);
static int hello_mode(int, int *);
static int hello_range(uint32_t lo, uint32_t hi, struct fh_msg *);
static int write_all(const void *, size_t);
static int send_batch(Freehint__RangeKind, uint64_t id, uint64_t *gaps,
    uint64_t *lens, size_t n, uint32_t unit);
static int expect_ack(uint64_t id, int status, int reason, uint64_t *);
static int expect_error(int code);
static int expect_eof(void);
static void script(const char *);

static void
check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		printf("PASS %s\n", name);
	} else {
		printf("FAIL %s: ", name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
		fails++;
	}
	fflush(stdout);
}

static int
accept_daemon(void)
{
	struct pollfd p = { lfd, POLLIN, 0 };

	if (fd != -1)
		close(fd);
	fd = -1;
	evbuffer_drain(in, evbuffer_get_length(in));
	if (poll(&p, 1, CONNECT_TIMEOUT_MS) != 1)
		return -1;
	fd = accept(lfd, NULL, NULL);
	return fd == -1 ? -1 : 0;
}

static int
sendmsg_(uint8_t type, const ProtobufCMessage *m)
{
	struct evbuffer *out = evbuffer_new();
	int rc;

	fh_frame_put(out, type, m);
	rc = evbuffer_write(out, fd) < 0 ? -1 : 0;
	while (rc == 0 && evbuffer_get_length(out) > 0)
		rc = evbuffer_write(out, fd) < 0 ? -1 : 0;
	evbuffer_free(out);
	return rc;
}

/* 1 with a message, 0 on EOF, -1 on timeout or a bad frame. */
static int
recv_msg(struct fh_msg *m, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int err, n;

	for (;;) {
		err = fh_msg_pull(in, m);
		if (err == FH_OK)
			return 1;
		if (err != FH_ENEED)
			return -1;
		if (poll(&p, 1, timeout_ms) != 1)
			return -1;
		n = evbuffer_read(in, fd, 65536);
		if (n == 0)
			return 0;
		if (n < 0)
			return errno == ECONNRESET ? 0 : -1;
	}
}

static int64_t
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A RangeBatch of a few ranges, for tearing in half. */
static const ProtobufCMessage *
sample_batch(void)
{
	static uint64_t gaps[] = { 0x4000, 512, 512 },
	                lens[] = { 512, 512, 512 };
	static Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;

	b.batch_id = 999;
	b.kind = FREEHINT__RANGE_KIND__REPORTED;
	b.n_gaps = b.n_lengths = 3;
	b.gaps = gaps;
	b.lengths = lens;
	return &b.base;
}

static int
hello(void)
{
	return hello_mode(FREEHINT__MODE__DISCARD, NULL);
}

/* Hello; the Welcome must give mode want (-1: any), *got says which. */
static int
hello_mode(int want, int *got)
{
	Freehint__Hello h = FREEHINT__HELLO__INIT;
	struct fh_msg m;
	int ok;

	h.proto_version = FH_PROTO_VERSION;
	h.agent_version = "hostile";
	h.page_size = 4096;
	h.ram_bytes = 1ULL << 40; /* lies: must not matter */
	h.max_pfn = 1ULL << 28;
	h.has_capabilities = true;
	h.capabilities = 15;
	if (sendmsg_(FH_MSG_HELLO, &h.base) != 0 ||
	    recv_msg(&m, TIMEOUT_MS) != 1)
		return -1;
	ok = m.type == FH_MSG_WELCOME &&
	    (want == -1 || (int)m.u.welcome->mode == want) &&
	    m.u.welcome->has_host_clock_ms;
	if (got != NULL)
		*got = m.type == FH_MSG_WELCOME ? (int)m.u.welcome->mode : -1;
	if (ok)
		clock_offset = (int64_t)m.u.welcome->host_clock_ms - now_ms();
	fh_msg_free(&m);
	return ok ? 0 : -1;
}

static int
send_batch(Freehint__RangeKind kind, uint64_t id, uint64_t *gaps,
    uint64_t *lens, size_t n, uint32_t unit)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;

	b.batch_id = id;
	b.kind = kind;
	b.n_gaps = b.n_lengths = n;
	b.gaps = gaps;
	b.lengths = lens;
	b.has_unit_order = unit != 0;
	b.unit_order = unit;
	if (kind != FREEHINT__RANGE_KIND__HINT &&
	    deadline_mode != DEADLINE_NONE) {
		b.has_deadline_ms = true;
		b.deadline_ms = (uint64_t)(now_ms() + clock_offset +
		    (deadline_mode == DEADLINE_OK ? 1500 : -1));
	}
	return sendmsg_(FH_MSG_RANGES, &b.base);
}

/* Skips Errors (the daemon sends one per fault besides the Ack). */
static int
expect_ack(uint64_t id, int status, int reason, uint64_t *discarded)
{
	struct fh_msg m;
	int ok = 0;

	while (recv_msg(&m, TIMEOUT_MS) == 1) {
		if (m.type == FH_MSG_ERROR) {
			fh_msg_free(&m);
			continue;
		}
		ok = m.type == FH_MSG_ACK && m.u.ack->batch_id == id &&
		    (int)m.u.ack->status == status &&
		    (reason == 0 || (int)m.u.ack->reason == reason);
		if (!ok)
			printf("# got %s id %llu status %d reason %d (%s)\n",
			    fh_msg_name(m.type),
			    m.type == FH_MSG_ACK
			        ? (unsigned long long)m.u.ack->batch_id
			        : 0ULL,
			    m.type == FH_MSG_ACK ? (int)m.u.ack->status : -1,
			    m.type == FH_MSG_ACK ? (int)m.u.ack->reason : -1,
			    m.type == FH_MSG_ACK && m.u.ack->detail
			        ? m.u.ack->detail
			        : "");
		if (ok && discarded != NULL)
			*discarded = m.u.ack->bytes_discarded;
		fh_msg_free(&m);
		/* A guest's fault is also answered with an Error. */
		if (ok && status == FREEHINT__ACK_STATUS__REJECTED &&
		    reason != FREEHINT__REJECT_REASON__HOST_ERROR)
			ok = expect_error(reason);
		return ok;
	}
	return 0;
}

/* Hello with a range of message sets; *m gets the answer (caller frees). */
static int
hello_range(uint32_t lo, uint32_t hi, struct fh_msg *m)
{
	Freehint__Hello h = FREEHINT__HELLO__INIT;

	h.proto_version = lo;
	h.has_max_proto_version = true;
	h.max_proto_version = hi;
	h.agent_version = "hostile";
	h.page_size = 4096;
	h.ram_bytes = 1ULL << 40;
	h.max_pfn = 1ULL << 28;
	if (sendmsg_(FH_MSG_HELLO, &h.base) != 0 ||
	    recv_msg(m, TIMEOUT_MS) != 1)
		return -1;
	return 0;
}

static int
write_all(const void *buf, size_t len)
{
	return write(fd, buf, len) == (ssize_t)len ? 0 : -1;
}

static int
expect_error(int code)
{
	struct fh_msg m;
	int ok;

	if (recv_msg(&m, TIMEOUT_MS) != 1)
		return 0;
	ok = m.type == FH_MSG_ERROR && (int)m.u.error->code == code;
	fh_msg_free(&m);
	return ok;
}

static int
expect_eof(void)
{
	struct fh_msg m;
	int rc;

	while ((rc = recv_msg(&m, TIMEOUT_MS)) == 1)
		fh_msg_free(&m);
	return rc == 0;
}

#define ACK(id, st, rs) expect_ack(id, FREEHINT__ACK_STATUS__##st, rs, NULL)
#define REJ(r)          FREEHINT__REJECT_REASON__##r

static void
hostile(uint64_t ram, uint64_t canary)
{
	uint64_t g[8], l[8], id, bytes = 0, *many;
	uint8_t junk[64];
	size_t i;
	int rl = 0, ok;

	/* Phase 1: ranges that are not this guest's RAM, or not whole. */
	check(accept_daemon() == 0 && hello() == 0, "hostile:welcome",
	    "no connection or no DISCARD welcome");
	g[0] = 0x4000;
	l[0] = 512;
	id = next_id++;
	send_batch(FREEHINT__RANGE_KIND__REPORTED, id, g, l, 1, 0);
	check(expect_ack(id, FREEHINT__ACK_STATUS__APPLIED, 0, &bytes) &&
	        bytes == 2 << 20,
	    "hostile:valid-reported", "bytes %llu", (unsigned long long)bytes);
	g[0] = ram >> 12;
	send_batch(FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 1, 0);
	check(ACK(id, REJECTED, REJ(OUT_OF_RANGE)), "hostile:past-ram", "-");
	g[0] = canary >> 12;
	send_batch(FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 1, 0);
	check(ACK(id, REJECTED, REJ(OUT_OF_RANGE)), "hostile:canary-bar", "-");
	g[0] = (ram >> 12) - 512;
	l[0] = 1024;
	send_batch(FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 1, 0);
	check(
	    ACK(id, REJECTED, REJ(OUT_OF_RANGE)), "hostile:straddle-end", "-");
	g[0] = 0;
	l[0] = 512; /* 0-2M covers the VGA hole and the BIOS */
	send_batch(FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 1, 0);
	check(ACK(id, REJECTED, REJ(OUT_OF_RANGE)), "hostile:vga-hole", "-");
	g[0] = 0x4001;
	l[0] = 1;
	send_batch(FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 1, 0);
	check(ACK(id, REJECTED, REJ(UNALIGNED)), "hostile:unaligned", "-");
	g[0] = 0x4000;
	l[0] = 512;
	g[1] = 0; /* adjacent or overlapping: the encoder never sends it */
	l[1] = 512;
	send_batch(FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 2, 0);
	check(ACK(id, REJECTED, REJ(OVERLAPPING)), "hostile:overlapping", "-");
	g[0] = 0x4000;
	l[0] = 512;
	send_batch(FREEHINT__RANGE_KIND__HELD, id = next_id++, g, l, 1, 0);
	check(ACK(id, REJECTED, REJ(NOT_ALLOWED)), "hostile:held-outside-pass",
	    "-");

	/* Phase 1b: no discard without a deadline on the daemon's clock,
	 * and none once it has passed (however the batch was delayed). */
	check(accept_daemon() == 0 && hello() == 0, "hostile:reconnect-lease",
	    "daemon did not come back");
	g[0] = 0x8000;
	l[0] = 512;
	deadline_mode = DEADLINE_NONE;
	send_batch(FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 1, 0);
	check(ACK(id, REJECTED, REJ(NOT_ALLOWED)), "hostile:no-deadline", "-");
	deadline_mode = DEADLINE_PAST;
	bytes = 1;
	send_batch(FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 1, 0);
	check(expect_ack(id, FREEHINT__ACK_STATUS__REJECTED, REJ(HOST_ERROR),
	          &bytes) &&
	        bytes == 0,
	    "hostile:deadline-passed", "bytes %llu", (unsigned long long)bytes);
	deadline_mode = DEADLINE_OK;

	/* Phase 2: limits, ids, bad messages. */
	check(accept_daemon() == 0 && hello() == 0, "hostile:reconnect-1",
	    "daemon did not come back");
	send_batch(FREEHINT__RANGE_KIND__HINT, 100, g, l, 1, 0);
	check(ACK(100, APPLIED, 0), "hostile:hint-applied", "-");
	send_batch(FREEHINT__RANGE_KIND__HINT, 100, g, l, 1, 0);
	check(
	    ACK(100, REJECTED, REJ(DUPLICATE_ID)), "hostile:duplicate-id", "-");
	many = calloc(2 * 5000, sizeof *many);
	for (i = 0; i < 5000; i++) {
		many[i] = i == 0 ? 0x4000 : 512;
		many[5000 + i] = 512;
	}
	send_batch(
	    FREEHINT__RANGE_KIND__REPORTED, 101, many, many + 5000, 5000, 0);
	check(
	    ACK(101, REJECTED, REJ(TOO_LARGE)), "hostile:too-many-ranges", "-");
	free(many);
	g[0] = 0x4000;
	l[0] = 64 * 512; /* 64 MiB: above --max-batch-bytes 32M */
	send_batch(FREEHINT__RANGE_KIND__REPORTED, 102, g, l, 1, 0);
	check(
	    ACK(102, REJECTED, REJ(TOO_LARGE)), "hostile:too-many-bytes", "-");
	send_batch((Freehint__RangeKind)0, 103, g, l, 1, 0);
	check(expect_error(REJ(MALFORMED)), "hostile:bad-kind", "-");
	/* A sound header around a payload cut inside a field. */
	fh_hdr_pack(junk, FH_MSG_RANGES, 3);
	junk[12] = 0x08;
	junk[13] = 0xff;
	junk[14] = 0xff;
	ok = write(fd, junk, 15) == 15;
	check(ok && expect_error(REJ(MALFORMED)), "hostile:truncated-payload",
	    "-");

	/* Phase 3: a flood; rate limits, then too many faults. */
	check(accept_daemon() == 0 && hello() == 0, "hostile:reconnect-2",
	    "daemon did not come back");
	for (i = 0; i < 200; i++) {
		g[0] = 0x4000;
		l[0] = 512;
		send_batch(FREEHINT__RANGE_KIND__HINT, 1000 + i, g, l, 1, 0);
	}
	for (;;) {
		struct fh_msg m;

		if (recv_msg(&m, TIMEOUT_MS) != 1)
			break;
		if (m.type == FH_MSG_ACK &&
		    m.u.ack->reason == REJ(RATE_LIMITED))
			rl++;
		fh_msg_free(&m);
	}
	check(rl > 0, "hostile:flood-rate-limited", "no RATE_LIMITED");
	check(recv_msg(&(struct fh_msg){ 0 }, 100) == 0,
	    "hostile:flood-disconnected", "still connected");

	/*
	 * Phase 4: garbage on the port. Issue 12 changed this (it closed
	 * the stream): a virtio-serial port has no connections, so the
	 * daemon answers one Error and skips to the next sync mark, where
	 * a (new) agent's Hello starts the session again.
	 */
	check(accept_daemon() == 0, "hostile:reconnect-3", "-");
	memset(junk, 0x5a, sizeof junk);
	ok = write(fd, junk, sizeof junk) == (ssize_t)sizeof junk;
	check(
	    ok && expect_error(REJ(MALFORMED)), "hostile:garbage", "no error");
	memset(junk, 0xff, FH_SYNC_LEN);
	check(write_all(junk, FH_SYNC_LEN) == 0 && hello() == 0,
	    "hostile:garbage-resync", "no Welcome after the sync mark");

	/* Phase 5: a stream cut inside a frame, then still served. */
	check(accept_daemon() == 0 && hello() == 0, "hostile:reconnect-4", "-");
	fh_hdr_pack(junk, FH_MSG_RANGES, 40);
	ok = write(fd, junk, 20) == 20;
	close(fd);
	fd = -1;
	check(ok && accept_daemon() == 0 && hello() == 0,
	    "hostile:truncated-stream", "-");
	/* The flood spent this second's budget, which is the VM's and
	 * outlives the reconnects: served again from the next second. */
	usleep(1100000);
	g[0] = 0x4000;
	l[0] = 512;
	send_batch(FREEHINT__RANGE_KIND__REPORTED, 1, g, l, 1, 0);
	check(ACK(1, APPLIED, 0), "hostile:still-served", "-");

	evolution();
}

/*
 * Phase 6, protocol evolution (issue 12): an agent killed mid-frame and
 * its successor on the same port; message types from a newer agent over
 * a long session; Hellos with ranges of message sets.
 */
static void
evolution(void)
{
	struct evbuffer *b = evbuffer_new();
	uint64_t g[1] = { 0x4000 }, l[1] = { 512 };
	uint8_t hdr[FH_HDR_SIZE], sync[FH_SYNC_LEN];
	struct fh_msg m;
	int i, n = 0, ok;

	/* Half a RangeBatch, then a sync run and a Hello: served again. */
	fh_frame_put(b, FH_MSG_RANGES, sample_batch());
	ok = write_all(evbuffer_pullup(b, -1), evbuffer_get_length(b) / 2);
	evbuffer_free(b);
	memset(sync, 0xff, sizeof sync);
	check(ok == 0 && write_all(sync, sizeof sync) == 0 && hello() == 0,
	    "evolution:torn-frame-resync", "no Welcome after a torn frame");
	send_batch(FREEHINT__RANGE_KIND__REPORTED, 1, g, l, 1, 0);
	check(ACK(1, APPLIED, 0), "evolution:served-after-resync", "-");

	/* More unknown types than --max-faults: answered, not a fault. */
	for (i = 0; i < 30; i++) {
		fh_hdr_pack(hdr, 50 + i % 5, 0);
		if (write_all(hdr, sizeof hdr) != 0)
			break;
	}
	for (i = 0; i < 30; i++)
		if (expect_error(REJ(NOT_SUPPORTED)))
			n++;
	check(n == 30, "evolution:unknown-types-answered", "%d of 30", n);
	send_batch(FREEHINT__RANGE_KIND__HINT, 2, g, l, 1, 0);
	check(ACK(2, APPLIED, 0), "evolution:unknown-types-no-fault",
	    "disconnected");

	/* A range: the highest both speak, with the host's capabilities. */
	ok = accept_daemon() == 0 && hello_range(1, 9, &m) == 0;
	check(ok && m.type == FH_MSG_WELCOME &&
	        m.u.welcome->proto_version == FH_PROTO_MAX &&
	        m.u.welcome->has_capabilities &&
	        (m.u.welcome->capabilities &
	            FREEHINT__HOST_CAPABILITY__HOST_CAP_COMMAND_RESULT) &&
	        (m.u.welcome->capabilities &
	            FREEHINT__HOST_CAPABILITY__HOST_CAP_RESYNC),
	    "evolution:version-range", "no Welcome for set %u with caps",
	    FH_PROTO_MAX);
	if (ok)
		fh_msg_free(&m);
	/* No set in common: a fatal BAD_VERSION, and the port closed. */
	ok = accept_daemon() == 0 &&
	    hello_range(FH_PROTO_MAX + 1, FH_PROTO_MAX + 2, &m) == 0;
	check(ok && m.type == FH_MSG_ERROR &&
	        m.u.error->code == REJ(BAD_VERSION) && m.u.error->fatal &&
	        expect_eof(),
	    "evolution:version-mismatch", "no fatal BAD_VERSION and close");
	if (ok)
		fh_msg_free(&m);
}

static void
steady(unsigned seconds, uint64_t pfn)
{
	uint64_t g[2], l[2], id;
	time_t end;
	unsigned n = 0, bad = 0;

	check(accept_daemon() == 0 && hello() == 0, "steady:welcome", "-");
	/* From the Welcome: a daemon slow to start (valgrind on a loaded
	 * machine) must not eat the window the attack runs in. */
	end = time(NULL) + seconds;
	/* A HINT over pfn + 512: never discarded (the script checks). */
	g[0] = pfn + 512;
	l[0] = 512;
	send_batch(FREEHINT__RANGE_KIND__HINT, id = next_id++, g, l, 1, 0);
	check(ACK(id, APPLIED, 0), "steady:hint", "-");
	while (time(NULL) < end) {
		g[0] = pfn;
		l[0] = 512;
		send_batch(
		    FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 1, 0);
		if (!ACK(id, APPLIED, 0))
			bad++;
		n++;
		usleep(100000);
	}
	check(bad == 0 && n > 5, "steady:served-during-attack",
	    "%u of %u batches not applied", bad, n);
}

/*
 * A guest whose QEMU lies about where its RAM is: REPORTED batches over
 * every 2 MiB of it, each acknowledged; with mode record-only nothing may
 * be discarded.
 */
static void
deputy(uint64_t ram, const char *mode)
{
	uint64_t g[1], l[1], id, bytes, total = 0;
	int want, got = -1, ok;
	unsigned bad = 0;

	want = strcmp(mode, "discard") == 0 ? FREEHINT__MODE__DISCARD
	                                    : FREEHINT__MODE__RECORD_ONLY;
	ok = accept_daemon() == 0 && hello_mode(want, &got) == 0;
	check(ok, "deputy:welcome-mode", "welcome mode %d, want %s", got, mode);
	for (g[0] = 0; (g[0] + 512) << 12 <= ram; g[0] += 512) {
		l[0] = 512;
		bytes = 0;
		send_batch(
		    FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 1, 0);
		if (!expect_ack(id, FREEHINT__ACK_STATUS__APPLIED, 0, &bytes))
			bad++;
		total += bytes;
	}
	check(bad == 0, "deputy:acked", "%u batches not applied", bad);
	if (want == FREEHINT__MODE__RECORD_ONLY)
		check(total == 0, "deputy:nothing-discarded",
		    "%llu bytes discarded", (unsigned long long)total);
	else
		check(total == ram, "deputy:all-discarded",
		    "%llu of %llu bytes discarded", (unsigned long long)total,
		    (unsigned long long)ram);
}

/*
 * Text a terminal would obey, in what freehintctl status shows: C1
 * controls (0x9b is CSI), before a flood of rejected batches that must
 * not flood the daemon's log.
 */
static void
escape(unsigned n, unsigned seconds)
{
	Freehint__Error e = FREEHINT__ERROR__INIT;
	uint64_t g[1], l[1], id;
	unsigned i, bad = 0;

	check(accept_daemon() == 0 && hello_mode(-1, NULL) == 0,
	    "escape:welcome", "-");
	for (i = 0; i < n; i++) {
		g[0] = 1ULL << 30; /* past RAM */
		l[0] = 512;
		send_batch(
		    FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 1, 0);
		if (!ACK(id, REJECTED, REJ(OUT_OF_RANGE)))
			bad++;
	}
	check(bad == 0, "escape:rejected", "%u of %u not rejected", bad, n);
	e.code = FREEHINT__REJECT_REASON__HOST_ERROR;
	/* The codec refuses C0 controls; C1 ones pass it, raw (0x9b is
	 * CSI to an 8-bit terminal) and as UTF-8 (U+009B). */
	e.detail = "\x9b"
	           "2J\x9b"
	           "31m\xc2\x9b"
	           "1m\xc2\x90q\xc2\x9c\x85 end";
	check(sendmsg_(FH_MSG_ERROR, &e.base) == 0, "escape:sent", "-");
	sleep(seconds);
}

/* n ranges of 30 MiB, 2 MiB apart, from 16 MiB (in 4 KiB pages). */
#define FLOOD_RANGE (30 * 256)
static void
flood_ranges(uint64_t *g, uint64_t *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		g[i] = i == 0 ? 16 * 256 : 2 * 256;
		l[i] = FLOOD_RANGE;
	}
}

static void
flood(unsigned seconds, size_t nranges)
{
	uint64_t g[8], l[8], id, applied = 0;
	time_t end = time(NULL) + seconds;
	unsigned inflight = 0, lost = 0;
	struct fh_msg m;
	bool ok;

	check(accept_daemon() == 0 && hello() == 0 && nranges <= 8,
	    "flood:welcome", "-");
	if (fd == -1)
		return;
	flood_ranges(g, l, nranges);
	while (time(NULL) < end || inflight > 0) {
		while (inflight < 4 && time(NULL) < end) {
			send_batch(FREEHINT__RANGE_KIND__REPORTED, next_id++, g,
			    l, nranges, 0);
			inflight++;
		}
		if (recv_msg(&m, TIMEOUT_MS) != 1) {
			lost = inflight;
			break;
		}
		if (m.type == FH_MSG_ACK) {
			inflight--;
			applied +=
			    m.u.ack->status == FREEHINT__ACK_STATUS__APPLIED;
		}
		fh_msg_free(&m);
	}
	check(lost == 0 && applied > 0, "flood:acked",
	    "%u batches unanswered, %llu applied", lost,
	    (unsigned long long)applied);

	/* Punched at 300 ms a piece, the deadline (1.5 s) passes midway. */
	flood_ranges(g, l, 6);
	send_batch(FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 6, 0);
	ok = false;
	while (recv_msg(&m, TIMEOUT_MS) == 1) {
		if (m.type != FH_MSG_ACK) {
			fh_msg_free(&m);
			continue;
		}
		printf("# partial: status %d reason %d, %llu bytes, %llu "
		       "ranges applied\n",
		    (int)m.u.ack->status, (int)m.u.ack->reason,
		    (unsigned long long)m.u.ack->bytes_discarded,
		    (unsigned long long)m.u.ack->ranges_applied);
		ok = m.u.ack->batch_id == id &&
		    m.u.ack->status == FREEHINT__ACK_STATUS__REJECTED &&
		    m.u.ack->reason == FREEHINT__REJECT_REASON__HOST_ERROR &&
		    m.u.ack->has_ranges_applied &&
		    m.u.ack->ranges_applied > 0 &&
		    m.u.ack->ranges_applied < 6 &&
		    m.u.ack->bytes_discarded ==
		        m.u.ack->ranges_applied * FLOOD_RANGE * 4096;
		fh_msg_free(&m);
		break;
	}
	check(ok, "flood:partial-ack",
	    "not rejected with its whole punched ranges in ranges_applied");
}

static void
timed(unsigned seconds, uint64_t pfn)
{
	uint64_t g[2], l[2], id, bytes = 0, total = 0;
	int64_t t0, dt, worst = 0;
	time_t end = time(NULL) + seconds;
	unsigned n = 0, bad = 0, late = 0;

	check(accept_daemon() == 0 && hello() == 0, "timed:welcome", "-");
	if (fd == -1)
		return;
	while (time(NULL) < end) {
		g[0] = pfn;
		l[0] = 512;
		t0 = now_ms();
		send_batch(
		    FREEHINT__RANGE_KIND__REPORTED, id = next_id++, g, l, 1, 0);
		if (!expect_ack(id, FREEHINT__ACK_STATUS__APPLIED, 0, &bytes))
			bad++;
		dt = now_ms() - t0;
		if (dt > worst)
			worst = dt;
		if (dt > 1000)
			late++;
		total += bytes;
		n++;
		usleep(100000);
	}
	printf("# %u batches, slowest ack %lld ms, %llu bytes discarded\n", n,
	    (long long)worst, (unsigned long long)total);
	check(bad == 0 && n > 20, "timed:applied",
	    "%u of %u batches not applied", bad, n);
	check(late == 0 && n > 20, "timed:acked-within-1s",
	    "%u of %u batches acknowledged after more than 1 s (slowest %lld "
	    "ms)",
	    late, n, (long long)worst);
}

/* Precise batches, one per stdin line, for a test that changes the
 * daemon's policy between them (tests/hostd/policy.sh). */
static void
script(const char *name)
{
	char line[256], kind[16], expect[32], cname[64];
	unsigned long long pfn, npages;
	const ProtobufCEnumValue *ev;
	uint64_t g[1], l[1], id;
	Freehint__RangeKind k;
	int n = 0, reason;

	check(accept_daemon() == 0 && hello() == 0, "script:welcome", "-");
	if (fd == -1)
		return;
	while (fgets(line, sizeof line, stdin) != NULL) {
		snprintf(cname, sizeof cname, "%s:%d", name, ++n);
		if (sscanf(line, "%15s %lli %lli %31s", kind, &pfn, &npages,
		        expect) != 4) {
			check(0, cname, "bad line: %s", line);
			continue;
		}
		k = strcmp(kind, "hint") == 0 ? FREEHINT__RANGE_KIND__HINT
		    : strcmp(kind, "held") == 0
		    ? FREEHINT__RANGE_KIND__HELD
		    : FREEHINT__RANGE_KIND__REPORTED;
		g[0] = pfn;
		l[0] = npages;
		send_batch(k, id = next_id++, g, l, 1, 0);
		if (strcmp(expect, "applied") == 0) {
			check(ACK(id, APPLIED, 0), cname, "%s", line);
			continue;
		}
		ev = protobuf_c_enum_descriptor_get_value_by_name(
		    &freehint__reject_reason__descriptor, expect);
		reason = ev != NULL ? ev->value : -1;
		check(
		    ev != NULL && ACK(id, REJECTED, reason), cname, "%s", line);
	}
}

int
main(int argc, char **argv)
{

	if (argc != 5) {
		fprintf(stderr,
		    "usage: fh-hostile SOCK "
		    "hostile|steady|deputy|escape|timed|script|flood "
		    "A B\n");
		return 2;
	}
	log_init("fh-hostile", 1, 0);
	signal(SIGPIPE, SIG_IGN);
	in = evbuffer_new();
	if ((lfd = fh_unix_listen(argv[1], 4, 0)) == -1) {
		perror(argv[1]);
		return 2;
	}
	if (strcmp(argv[2], "hostile") == 0)
		hostile(strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
	else if (strcmp(argv[2], "deputy") == 0)
		deputy(strtoull(argv[3], NULL, 0), argv[4]);
	else if (strcmp(argv[2], "escape") == 0)
		escape((unsigned)strtoul(argv[3], NULL, 0),
		    (unsigned)strtoul(argv[4], NULL, 0));
	else if (strcmp(argv[2], "script") == 0)
		script(argv[3]);
	else if (strcmp(argv[2], "flood") == 0)
		flood((unsigned)strtoul(argv[3], NULL, 0),
		    (size_t)strtoul(argv[4], NULL, 0));
	else if (strcmp(argv[2], "timed") == 0)
		timed((unsigned)strtoul(argv[3], NULL, 0),
		    strtoull(argv[4], NULL, 0));
	else
		steady((unsigned)strtoul(argv[3], NULL, 0),
		    strtoull(argv[4], NULL, 0));
	if (fd != -1)
		close(fd);
	close(lfd);
	unlink(argv[1]);
	evbuffer_free(in);
	return fails;
}

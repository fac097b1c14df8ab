// SPDX-License-Identifier: GPL-2.0
/*
 * fhreport: tests of /proc/freehint/report, run inside the guest.
 *   fhreport TIMEOUT_MS GRACE_MS   (the module's report_timeout_ms and
 *                                   report_grace_ms)
 * Needs /bin/fhmem to dirty and free memory.
 */
#include <poll.h>
#include <sys/wait.h>

#include "fhtest.h"

#define MAXB    32
#define MAXSEEN 65536

struct seen {
	struct fh_block b[MAXSEEN];
	int n;
};

static struct seen acked, failed;
static int fd;

static int
seen_has(struct seen *s, struct fh_block *b)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (s->b[i].pfn == b->pfn && s->b[i].order == b->order)
			return 1;
	return 0;
}

static void
seen_add(struct seen *s, struct fh_block *b)
{
	if (s->n < MAXSEEN)
		s->b[s->n++] = *b;
}

static void
run_fhmem(const char *mode, const char *mb)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		execl("/bin/fhmem", "fhmem", mode, mb, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
}

/* Dirty and free memory so that the kernel starts a new reporting pass. */
static void
nudge(void)
{
	char *p = alloc_fill(16, 0x33);

	if (p)
		munmap(p, 16 << 20);
}

/* Wait up to @ms for a batch; returns its block count or -1. */
static int
next_batch(int ms, uint64_t *id, struct fh_block *blk)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[4096];
	ssize_t n;

	if (poll(&pfd, 1, ms) <= 0 || !(pfd.revents & POLLIN))
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	return parse_batch(buf, n, id, blk, MAXB);
}

static void
reply(const char *verb, uint64_t id)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "%s %" PRIu64 "\n", verb, id);
	if (write_str(fd, cmd))
		say("note: '%s %" PRIu64 "' -> %s\n", verb, id,
		    strerror(errno));
}

/* Pages of @a inside @b. */
static long long
block_overlap(const struct fh_block *a, const struct fh_block *b)
{
	uint64_t lo = a->pfn > b->pfn ? a->pfn : b->pfn;
	uint64_t ea = a->pfn + (1ULL << a->order);
	uint64_t eb = b->pfn + (1ULL << b->order);
	uint64_t hi = ea < eb ? ea : eb;

	return hi > lo ? (long long)(hi - lo) : 0;
}

/*
 * Capture with @args through /proc/freehint/hold, read every held block
 * (acking each batch), release. Returns how many held pages lie in blocks
 * this test acked as reported, or -1; *held gets the bytes captured, and
 * *small (when not NULL) those in blocks below order 9.
 */
/* Of the last capture_overlap(): its largest batch, in blocks, and its
 * batches over 256 MiB of more than one block. */
static int capture_most, capture_too_big;

static long long
capture_overlap(const char *args, long long *held, long long *small)
{
	static struct fh_block hb[FH_HOLD_MAXB];
	static char buf[FH_HOLD_BUFSZ];
	long long over = 0, bytes;
	char c[128];
	uint64_t hid;
	int hfd, i, j, n;
	ssize_t len;

	hfd = open(FH_PROC "hold", O_RDWR);
	snprintf(c, sizeof(c), "capture %s\n", args);
	if (hfd < 0 || write_str(hfd, c) != 0) {
		say("note: %s: %s\n", c, strerror(errno));
		if (hfd >= 0)
			close(hfd);
		return -1;
	}
	*held = stat_get("hold_bytes");
	if (small != NULL)
		*small = 0;
	capture_most = capture_too_big = 0;
	while ((len = read(hfd, buf, sizeof(buf) - 1)) > 0) {
		n = parse_batch(buf, len, &hid, hb, FH_HOLD_MAXB);
		if (n < 0)
			break;
		if (n > capture_most)
			capture_most = n;
		for (i = 0, bytes = 0; i < n; i++)
			bytes += 4096LL << hb[i].order;
		capture_too_big += n > 1 && bytes > 256LL << 20;
		for (i = 0; i < n; i++) {
			if (small != NULL && hb[i].order < 9)
				*small += 4096LL << hb[i].order;
			for (j = 0; j < acked.n; j++)
				over += block_overlap(&hb[i], &acked.b[j]);
		}
		snprintf(c, sizeof(c), "ack %" PRIu64 "\n", hid);
		write_str(hfd, c);
	}
	write_str(hfd, "release\n");
	close(hfd);
	return over;
}

/*
 * FRAG_MIB of memory written, then every other 32 KiB of it freed: free
 * memory in small unreported pieces. The buffer is carved from memory
 * this test acked, which is no longer reported once allocated: the
 * acked blocks it touched leave the set (their PFNs from
 * /proc/self/pagemap). NULL on failure.
 */
#define FRAG_MIB 64L
static char *
fragment(size_t mib)
{
	size_t len = mib << 20, off;
	uint64_t pfn;
	int fd, i, j;
	char *p;

	if ((p = alloc_fill(mib, 0x5a)) == NULL) {
		say("note: fragment: mmap: %s\n", strerror(errno));
		return NULL;
	}
	if ((fd = open("/proc/self/pagemap", O_RDONLY)) == -1) {
		say("note: fragment: pagemap: %s\n", strerror(errno));
		munmap(p, len);
		return NULL;
	}
	for (off = 0; off < len; off += 4096) {
		if ((pfn = addr_pfn(fd, p + off)) == 0)
			continue;
		for (i = j = 0; i < acked.n; i++)
			if (pfn < acked.b[i].pfn ||
			    pfn >= acked.b[i].pfn + (1ULL << acked.b[i].order))
				acked.b[j++] = acked.b[i];
		acked.n = j;
	}
	close(fd);
	for (off = 0; off < len; off += 64 << 10)
		madvise(p + off, 32 << 10, MADV_DONTNEED);
	return p;
}

int
main(int argc, char **argv)
{
	long timeout_ms = argc > 1 ? atol(argv[1]) : 5000;
	long grace_ms = argc > 2 ? atol(argv[2]) : 2000;
	struct fh_block blk[MAXB];
	long long acked0, failed0, timeouts0, rearms0, acked_bytes = 0;
	long long skipped0, skipped, over_skip, over_skip0, over_all,
	    held_skip = 0, held_skip0 = 0, small_skip0 = 0, held_all = 0;
	char *frag;
	int i, n, fd2, poll_bad = 0, batches = 0, repeats = 0, reoffered = 0,
	               nfailed = 0, most_small, big_small;
	char small[16];
	double t0, gap;
	uint64_t id, tid;

	if (stat_get("report_registered") != 1) {
		say("FAIL report-registered: report channel is off\n");
		return 1;
	}
	fd = open(FH_PROC "report", O_RDWR | O_NONBLOCK);
	if (fd < 0)
		die("open report");
	fd2 = open(FH_PROC "report", O_RDWR);
	CHECK(fd2 < 0 && errno == EBUSY, "report-second-open-ebusy",
	    "second open: fd %d, %s", fd2, strerror(errno));
	n = read(fd, small, sizeof(small));
	CHECK(n < 0 && errno == EAGAIN, "report-nonblock-eagain",
	    "read with nothing pending returned %d (%s)", n, strerror(errno));
	CHECK(write_str(fd, "ack 12345\n") < 0 && errno == EINVAL,
	    "report-unknown-id-einval", "ack of unknown id accepted");
	CHECK(write_str(fd, "hello\n") < 0 && errno == EINVAL,
	    "report-malformed-einval", "malformed line accepted");

	acked0 = stat_get("report_acked_bytes");
	failed0 = stat_get("report_failed_batches");
	timeouts0 = stat_get("report_timeouts");

	/* Phase 1: dirty and free 200 MiB, ack every batch. */
	say("report: freeing 200 MiB; waiting for batches (the kernel reports "
	    "blocks of order >= %lld about 2 s after they accumulate)\n",
	    stat_get("report_order"));
	run_fhmem("dirty", "200");
	t0 = now_s();
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char buf[4096];
		ssize_t len;

		if (poll(&pfd, 1, batches ? 6000 : 15000) <= 0 ||
		    now_s() - t0 > 40)
			break;
		poll_bad += !(pfd.revents & POLLIN);
		if (!batches) {
			len = read(fd, small, sizeof(small));
			CHECK(len < 0 && errno == EINVAL,
			    "report-short-buffer-einval",
			    "16-byte read returned %zd", len);
		}
		len = read(fd, buf, sizeof(buf) - 1);
		n = len > 0 ? parse_batch(buf, len, &id, blk, MAXB) : -1;
		if (n <= 0) {
			CHECK(0, "report-batch-format", "read %zd, parse %d",
			    len, n);
			break;
		}
		if (!batches) {
			len = read(fd, small, sizeof(small));
			CHECK(len < 0 && errno == EAGAIN, "report-read-once",
			    "batch read twice (%zd)", len);
		}
		for (i = 0; i < n; i++) {
			repeats += seen_has(&acked, &blk[i]);
			seen_add(&acked, &blk[i]);
			acked_bytes += 4096LL << blk[i].order;
		}
		reply("ack", id);
		batches++;
	}
	CHECK(batches && !poll_bad, "report-poll-in",
	    "%d wakeups without POLLIN", poll_bad);
	say("report: %d batches, %d blocks, %lld MiB acked in %.1f s; %d "
	    "repeated\n",
	    batches, acked.n, acked_bytes >> 20, now_s() - t0, repeats);
	CHECK(batches >= 2 && acked_bytes >= (100LL << 20),
	    "report-batches-arrive", "only %d batches, %lld MiB", batches,
	    acked_bytes >> 20);
	CHECK(repeats <= acked.n / 50, "report-acked-not-reoffered",
	    "%d acked blocks offered again", repeats);
	CHECK(stat_get("report_acked_bytes") - acked0 == acked_bytes,
	    "report-stats-acked-bytes", "stats say %lld, we acked %lld",
	    stat_get("report_acked_bytes") - acked0, acked_bytes);

	/* Phase 2: fail two batches; they must be offered again. */
	run_fhmem("dirty", "64");
	for (t0 = now_s(); nfailed < 2 && now_s() - t0 < 20;) {
		n = next_batch(3000, &id, blk);
		if (n <= 0) {
			nudge();
			continue;
		}
		for (i = 0; i < n; i++)
			seen_add(&failed, &blk[i]);
		reply("fail", id);
		nfailed++;
	}
	CHECK(nfailed == 2, "report-fail-batches", "got %d batches to fail",
	    nfailed);
	for (t0 = now_s(); !reoffered && now_s() - t0 < 25;) {
		n = next_batch(3000, &id, blk);
		if (n <= 0) {
			nudge();
			continue;
		}
		for (i = 0; i < n; i++)
			reoffered += seen_has(&failed, &blk[i]);
		reply("ack", id);
	}
	say("report: %d of %d failed blocks offered again\n", reoffered,
	    failed.n);
	CHECK(reoffered > 0, "report-failed-reoffered",
	    "none of %d failed blocks came back", failed.n);
	CHECK(stat_get("report_failed_batches") - failed0 >= 2,
	    "report-stats-failed", "report_failed_batches +%lld",
	    stat_get("report_failed_batches") - failed0);

	/*
	 * Phase 3a: a batch left unread goes back after the timeout: nobody
	 * can be discarding it.
	 */
	run_fhmem("dirty", "64");
	{
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		for (t0 = now_s();
		     poll(&pfd, 1, 2000) <= 0 && now_s() - t0 < 20;)
			nudge();
		sleep_ms(timeout_ms + 500);
		CHECK(stat_get("report_timeouts") > timeouts0,
		    "report-unread-times-out", "report_timeouts did not grow");
	}

	/*
	 * Phase 3b: a batch read and never answered stays the reader's while
	 * the file is open, however long: no timeout, no grace, no next batch.
	 */
	for (t0 = now_s(), n = -1; n <= 0 && now_s() - t0 < 20;) {
		n = next_batch(3000, &tid, blk);
		if (n <= 0)
			nudge();
	}
	CHECK(n > 0 && fh_last_grace == grace_ms, "report-header-grace",
	    "batch %d, grace_ms=%ld in its header, want %ld", n, fh_last_grace,
	    grace_ms);
	timeouts0 = stat_get("report_timeouts");
	t0 = now_s();
	gap = -1;
	while (n > 0 && now_s() - t0 < (timeout_ms + grace_ms) / 1000.0 + 3) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 500) > 0) {
			gap = now_s() - t0;
			break;
		}
		nudge();
	}
	say("report: %s %.1f s after an unanswered read batch\n",
	    gap < 0 ? "no batch" : "a batch", gap < 0 ? now_s() - t0 : gap);
	CHECK(n > 0 && gap < 0 && stat_get("report_timeouts") == timeouts0,
	    "report-read-batch-kept-while-open",
	    "next batch after %.2f s (timeout %ld + grace %ld ms), "
	    "report_timeouts +%lld",
	    gap, timeout_ms, grace_ms, stat_get("report_timeouts") - timeouts0);
	{
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "fail %" PRIu64 "\n", tid);
		CHECK(write_str(fd, cmd) == 0, "report-late-answer-accepted",
		    "fail after %.1f s: %s", now_s() - t0, strerror(errno));
		CHECK(write_str(fd, cmd) < 0 && errno == EINVAL,
		    "report-answer-once-einval", "second fail accepted");
	}

	/*
	 * Phase 3c: the grace is the one fixed when the batch was read: a
	 * lower report_grace_ms after the read does not shorten it. Close
	 * with a batch read: its blocks stay isolated (out of MemFree) for
	 * the old grace, not the new one.
	 */
	for (t0 = now_s(), n = -1; n <= 0 && now_s() - t0 < 20;) {
		n = next_batch(3000, &tid, blk);
		if (n <= 0)
			nudge();
	}
	{
		long long bytes = 0, m1, m2;

		for (i = 0; i < n; i++)
			bytes += 4096LL << blk[i].order;
		CHECK(set_param("report_grace_ms", 50) == 0,
		    "report-grace-writable", "%s", strerror(errno));
		close(fd);
		sleep_ms(grace_ms / 2);
		m1 = meminfo_kb("MemFree");
		sleep_ms(grace_ms + 500);
		m2 = meminfo_kb("MemFree");
		say("report: MemFree +%lld KiB between %ld and %ld ms after a "
		    "close with %lld KiB read (grace %ld ms at the read, 50 "
		    "now)\n",
		    m2 - m1, grace_ms / 2, grace_ms * 3 / 2 + 500, bytes >> 10,
		    grace_ms);
		CHECK(n > 0 && (m2 - m1) * 1024 >= bytes / 2,
		    "report-grace-fixed-at-read",
		    "MemFree +%lld KiB after the new grace, batch %lld KiB",
		    m2 - m1, bytes >> 10);
		set_param("report_grace_ms", grace_ms);
		fd = open(FH_PROC "report", O_RDWR | O_NONBLOCK);
		if (fd < 0)
			die("reopen report");
	}

	/*
	 * Phase 4: fail every batch until the kernel stops offering (a
	 * failed pass leaves its reporting idle until the next large free),
	 * then "rearm": a new pass must come without any free.
	 */
	for (t0 = now_s(); now_s() - t0 < 40;) {
		n = next_batch(6000, &id, blk);
		if (n <= 0)
			break;
		reply("fail", id);
	}
	rearms0 = stat_get("report_rearms");
	CHECK(n <= 0, "report-idle-after-fail",
	    "batches kept coming for 40 s while failed");
	CHECK(write_str(fd, "rearm\n") == 0, "report-rearm-write", "%s",
	    strerror(errno));
	n = next_batch(8000, &id, blk);
	say("report: rearm -> %s\n", n > 0 ? "a new pass" : "nothing");
	CHECK(n > 0 && stat_get("report_rearms") == rearms0 + 1,
	    "report-rearm-new-pass", "batch %d, report_rearms %lld -> %lld", n,
	    rearms0, stat_get("report_rearms"));
	if (n > 0)
		reply("ack", id);

	/*
	 * Phase 5: blocks acked above that are still free are Reported
	 * (holes on a discarding host): "capture skip_reported" leaves them
	 * free, where a plain capture takes them too. Orders of at least 9
	 * only, the kernel's reporting order.
	 */
	skipped0 = stat_get("hold_skipped_bytes");
	over_skip =
	    capture_overlap("min_order=9 skip_reported", &held_skip, NULL);
	skipped = stat_get("hold_skipped_bytes") - skipped0;
	/*
	 * Every order, as a hint pass on a 4 KiB backing asks, on a guest
	 * with free memory in 32 KiB pieces beside the reported blocks: the
	 * pieces are what it must take. A small order's allocation must not
	 * split a reported block (the allocator steals the largest free
	 * block of another type once its own lists run dry).
	 */
	frag = fragment(FRAG_MIB);
	over_skip0 = capture_overlap(
	    "min_order=0 skip_reported", &held_skip0, &small_skip0);
	most_small = capture_most;
	big_small = capture_too_big;
	if (frag != NULL)
		munmap(frag, FRAG_MIB << 20);
	over_all = capture_overlap("min_order=9", &held_all, NULL);
	say("report: capture skip_reported held %lld MiB, %lld pages of them "
	    "reported, %lld MiB skipped; a plain capture held %lld MiB, %lld "
	    "pages reported\n",
	    held_skip >> 20, over_skip, skipped >> 20, held_all >> 20,
	    over_all);
	CHECK(over_skip >= 0 && over_all > 0 && over_skip <= over_all / 8 &&
	        skipped >= over_all * 4096LL / 2,
	    "report-capture-skips-reported",
	    "held reported pages: %lld with skip_reported, %lld without; "
	    "%lld bytes skipped",
	    over_skip, over_all, skipped);
	say("report: capture min_order=0 skip_reported held %lld MiB (%lld "
	    "MiB in blocks below order 9), %lld pages of them reported\n",
	    held_skip0 >> 20, small_skip0 >> 20, over_skip0);
	/*
	 * The pieces (half of FRAG_MIB) are what it takes below order 9. A
	 * per-CPU list's refill may still split a reported block or two
	 * (docs/kmod.md); the old capture held almost nothing else.
	 */
	CHECK(frag != NULL && over_skip0 >= 0 &&
	        small_skip0 - over_skip0 * 4096LL >= (FRAG_MIB << 20) / 4 &&
	        over_skip0 * 4096LL <= small_skip0 / 2,
	    "report-capture-small-skips-reported",
	    "held %lld bytes, %lld of them below order 9, %lld reported "
	    "pages of them",
	    held_skip0, small_skip0, over_skip0);
	/*
	 * Small blocks go a thousand to a batch, not 64: the host takes a
	 * batch at a time, and a pass of pieces moved at 64 per batch.
	 */
	CHECK(most_small > 64 && big_small == 0, "hold-batch-many-small-blocks",
	    "largest batch %d blocks; %d batches over 256 MiB", most_small,
	    big_small);
	/*
	 * The release gave the plain capture's blocks back unreported: ack
	 * the pass that reports them, so that no batch stays isolated, out
	 * of the allocator's reach, while the next test fills memory.
	 */
	for (t0 = now_s(); now_s() - t0 < 40;) {
		n = next_batch(6000, &id, blk);
		if (n <= 0)
			break;
		reply("ack", id);
	}

	/* Close with a batch read: the next opener can open at once. */
	n = next_batch(5000, &id, blk);
	close(fd);
	fd = open(FH_PROC "report", O_RDWR | O_NONBLOCK);
	CHECK(fd >= 0, "report-reopen-after-close", "%s", strerror(errno));
	close(fd);
	return fh_failures ? 1 : 0;
}

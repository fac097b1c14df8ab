// SPDX-License-Identifier: GPL-2.0
/*
 * fhhold: tests of /proc/freehint/hold, run inside the guest.
 *   fhhold GRACE_MS   (the module's report_grace_ms)
 */
#include <poll.h>

#include "fhtest.h"

#define MAXB FH_HOLD_MAXB

static int fd;

static int
read_batch(uint64_t *id, struct fh_block *blk)
{
	static char buf[FH_HOLD_BUFSZ];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	if (n <= 0)
		return n < 0 ? -1 : 0;
	return parse_batch(buf, n, id, blk, MAXB);
}

static int
pollin(void)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static int
cmd(const char *fmt, uint64_t id)
{
	char c[64];

	snprintf(c, sizeof(c), fmt, id);
	return write_str(fd, c);
}

int
main(int argc, char **argv)
{
	long grace_ms = argc > 1 ? atol(argv[1]) : 2000;
	static struct fh_block blk[MAXB], flight[MAXB];
	char tiny[64 + 3 * 24 + 1];
	long long free0, held, shrunk0, v;
	size_t len = 200 << 20, i, overlap = 0;
	int n, nflight, fd2, pm;
	uint64_t id, fid;
	double t0;
	char *p;

	pm = open("/proc/self/pagemap", O_RDONLY);
	fd = open(FH_PROC "hold", O_RDWR | O_NONBLOCK);
	if (fd < 0 || pm < 0)
		die("open hold/pagemap");
	fd2 = open(FH_PROC "hold", O_RDWR);
	CHECK(fd2 < 0 && errno == EBUSY, "hold-second-open-ebusy",
	    "second open: fd %d, %s", fd2, strerror(errno));
	CHECK(read_batch(&id, blk) == 0, "hold-read-empty-eof",
	    "read with nothing held did not return 0");
	CHECK(!pollin(), "hold-poll-empty", "POLLIN with nothing held");
	CHECK(write_str(fd, "capture bogus=1\n") < 0 && errno == EINVAL,
	    "hold-bad-command-einval", "bad capture accepted");
	CHECK(cmd("ack %" PRIu64 "\n", 999) < 0 && errno == EINVAL,
	    "hold-unknown-id-einval", "ack of unknown id accepted");

	/* Dirty memory first so that "zero" has something to do. */
	p = alloc_fill(64, 0x55);
	if (!p)
		die("alloc 64 MiB");
	munmap(p, 64 << 20);
	free0 = meminfo_kb("MemFree");
	t0 = now_s();
	CHECK(write_str(fd, "capture min_order=0 limit=64G zero\n") == 0,
	    "hold-capture", "%s", strerror(errno));
	held = stat_get("hold_bytes");
	say("hold: captured %lld MiB of %lld MiB free in %.2f s, zeroed %lld "
	    "pages, MemFree now %lld MiB\n",
	    held >> 20, free0 >> 10, now_s() - t0,
	    stat_get("hold_zeroed_pages"), meminfo_kb("MemFree") >> 10);
	CHECK(stat_get("hold_zeroed_pages") > 0, "hold-zero",
	    "no dirty page zeroed");
	CHECK(held > free0 * 1024 / 2, "hold-captures-most",
	    "held %lld MiB of %lld MiB free", held >> 20, free0 >> 10);
	CHECK(pollin(), "hold-poll-in", "no POLLIN with unread blocks");

	/*
	 * A batch fits the reader's buffer: 64 bytes and 24 a block, so
	 * three blocks here; below one block's room, EINVAL.
	 */
	CHECK(read(fd, tiny, 87) < 0 && errno == EINVAL,
	    "hold-read-buffer-too-small-einval", "%s", strerror(errno));
	v = read(fd, tiny, sizeof(tiny) - 1);
	n = v > 0 ? parse_batch(tiny, (size_t)v, &id, blk, MAXB) : -1;
	CHECK(n >= 1 && n <= 3 && cmd("ack %" PRIu64 "\n", id) == 0,
	    "hold-batch-fits-buffer", "read %lld bytes, %d blocks", v, n);

	/* One batch acked (done), one left in flight. */
	n = read_batch(&id, blk);
	CHECK(n > 0 && cmd("ack %" PRIu64 "\n", id) == 0, "hold-read-ack",
	    "read %d, ack: %s", n, strerror(errno));
	nflight = read_batch(&fid, flight);
	CHECK(nflight > 0, "hold-read-second", "read %d", nflight);

	/* 200 MiB must be allocatable: the shrinker gives blocks back. */
	shrunk0 = stat_get("hold_shrunk_bytes");
	t0 = now_s();
	p = alloc_fill(200, 0x44);
	if (!p)
		die("alloc 200 MiB");
	say("hold: allocated 200 MiB in %.2f s; shrunk %lld MiB; held now %lld "
	    "MiB\n",
	    now_s() - t0, (stat_get("hold_shrunk_bytes") - shrunk0) >> 20,
	    stat_get("hold_bytes") >> 20);
	CHECK(stat_get("hold_shrunk_bytes") > shrunk0,
	    "hold-shrinker-gives-back", "hold_shrunk_bytes did not grow");
	for (i = 0; i < len; i += 4096) {
		uint64_t pfn = addr_pfn(pm, p + i);
		int b;

		for (b = 0; b < nflight; b++)
			overlap += pfn >= flight[b].pfn &&
			    pfn < flight[b].pfn + (1ULL << flight[b].order);
		if (p[i] != 0x44)
			overlap++;
	}
	CHECK(overlap == 0, "hold-in-flight-kept",
	    "%zu of our pages are in the in-flight batch", overlap);
	CHECK(cmd("fail %" PRIu64 "\n", fid) == 0, "hold-fail", "%s",
	    strerror(errno));
	munmap(p, len);

	CHECK(write_str(fd, "release\n") == 0 && stat_get("hold_bytes") == 0,
	    "hold-release", "hold_bytes %lld after release",
	    stat_get("hold_bytes"));
	CHECK(read_batch(&id, blk) == 0, "hold-read-eof-after-release",
	    "read did not return 0");

	/*
	 * hold_timeout_ms frees what is unread or done, never a batch in
	 * flight while the file is open, however long the host takes: this
	 * is what lost guest pages when freehintd stalled through a pass.
	 */
	CHECK(set_param("hold_timeout_ms", 500) == 0, "hold-timeout-writable",
	    "%s", strerror(errno));
	CHECK(write_str(fd, "capture min_order=9 limit=64M\n") == 0,
	    "hold-capture-limit", "%s", strerror(errno));
	v = stat_get("hold_bytes");
	CHECK(v > 0 && v <= 64 << 20, "hold-limit-respected",
	    "held %lld bytes for limit=64M", v);
	n = read_batch(&id, blk);
	CHECK(n > 0 && fh_last_grace == grace_ms, "hold-header-grace",
	    "batch %d, grace_ms=%ld in its header, want %ld", n, fh_last_grace,
	    grace_ms);
	{
		long long bytes = 0;
		int b;

		for (b = 0; b < n; b++)
			bytes += 4096LL << blk[b].order;
		sleep_ms(500 + grace_ms + 1000);
		v = stat_get("hold_bytes");
		CHECK(n > 0 && v == bytes, "hold-in-flight-outlives-timeout",
		    "held %lld bytes %ld ms after the timeout, batch %lld", v,
		    grace_ms + 1000, bytes);
	}
	CHECK(cmd("ack %" PRIu64 "\n", id) == 0, "hold-late-ack-accepted", "%s",
	    strerror(errno));
	set_param("hold_timeout_ms", 60000);
	CHECK(write_str(fd, "release\n") == 0 && stat_get("hold_bytes") == 0,
	    "hold-release-done", "hold_bytes %lld", stat_get("hold_bytes"));

	/*
	 * A reader that never answers pins a bounded number of batches and
	 * at most a quarter of memory: reads beyond get EBUSY, the rest
	 * stays shrinkable.
	 */
	CHECK(write_str(fd, "capture min_order=0\n") == 0, "hold-capture-again",
	    "%s", strerror(errno));
	{
		long long total = meminfo_kb("MemTotal") << 10, inflight = 0;
		long long last = 0;
		int reads = 0, busy, b;

		while (reads < 100 && (n = read_batch(&id, blk)) > 0) {
			reads++;
			for (last = 0, b = 0; b < n; b++)
				last += 4096LL << blk[b].order;
			inflight += last;
		}
		busy = n < 0 && errno == EBUSY;
		say("hold: %d batches, %lld MiB in flight before %s\n", reads,
		    inflight >> 20, busy ? "EBUSY" : "the end");
		CHECK(busy && reads <= 32 && inflight <= total / 4,
		    "hold-inflight-capped",
		    "%d reads, %lld MiB in flight of %lld, then %s", reads,
		    inflight >> 20, total >> 20,
		    n == 0 ? "EOF" : strerror(errno));
	}
	/*
	 * Pressure with a reader that never answers: what is not in flight
	 * (unread blocks) goes to the shrinker, so memory that can be given
	 * back is, and the OOM killer stays away (checked by kmod-no-oom).
	 */
	shrunk0 = stat_get("hold_shrunk_bytes");
	p = alloc_fill(100, 0x22);
	CHECK(p != NULL && stat_get("hold_shrunk_bytes") > shrunk0,
	    "hold-pressure-with-unanswered-reader",
	    "alloc 100 MiB: %s, shrunk %lld MiB", p ? "ok" : "failed",
	    (stat_get("hold_shrunk_bytes") - shrunk0) >> 20);
	if (p)
		munmap(p, 100 << 20);
	CHECK(write_str(fd, "release\n") == 0, "hold-release-capped", "%s",
	    strerror(errno));

	/*
	 * Close with batches in flight: kept for the grace fixed at their
	 * read, even after report_grace_ms was lowered.
	 */
	v = stat_get("hold_bytes");
	CHECK(set_param("report_grace_ms", 50) == 0, "hold-grace-lowered", "%s",
	    strerror(errno));
	close(fd);
	sleep_ms(grace_ms / 2);
	CHECK(v > 0 && stat_get("hold_bytes") == v,
	    "hold-close-keeps-in-flight-for-read-grace",
	    "held %lld bytes %ld ms after close, %lld before",
	    stat_get("hold_bytes"), grace_ms / 2, v);
	sleep_ms(grace_ms + 500);
	set_param("report_grace_ms", grace_ms);
	CHECK(stat_get("hold_bytes") == 0, "hold-close-releases-after-grace",
	    "hold_bytes %lld", stat_get("hold_bytes"));
	v = meminfo_kb("MemFree");
	CHECK(v > free0 - (32 << 10), "hold-memfree-recovers",
	    "MemFree %lld MiB, was %lld MiB", v >> 10, free0 >> 10);
	fd = open(FH_PROC "hold", O_RDWR);
	CHECK(fd >= 0, "hold-reopen", "%s", strerror(errno));
	close(fd);
	return fh_failures ? 1 : 0;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * How fast the guest allocates memory: the kernel's pgalloc_* counters in
 * /proc/vmstat. report.c reads them around each kernel batch it probes
 * (memory a churning guest frees is allocated again within seconds, and
 * discarding it costs a host fault and a zeroed page each time), and the
 * sampler here calls it every second, with the last second's rate, to
 * re-arm the kernel's reporting once the guest has calmed down. Every
 * 100 ms in between it hands the free memory (nr_free_pages) to the
 * headroom (headroom.c), which needs to see dips shorter than a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"

#define ALLOCRATE_PERIOD_MS 1000
#define ALLOCRATE_TICKS     (ALLOCRATE_PERIOD_MS / HEADROOM_SAMPLE_MS)
#define ALLOCRATE_BUF       16384

struct allocrate {
	char *path;
	struct event *ev;
	struct headroom *headroom;
	unsigned tick;
	void (*cb)(void *);
	void *arg;
	/* The last two samples; ms 0: none. */
	uint64_t prev_pages, prev_ms;
	uint64_t last_pages, last_ms;
	bool unreadable; /* the last read failed */
	bool warned;
};

static void allocrate_tick(int, short, void *);
static void allocrate_sample(struct allocrate *);

/*
 * The sum of the "pgalloc_<zone>" lines of a /proc/vmstat text: pages
 * handed out by the page allocator since boot; and nr_free_pages. -1 when
 * either is missing.
 */
int
allocrate_parse(
    const char *buf, size_t len, uint64_t *pages, uint64_t *free_pages)
{
	const char *p, *end = buf + len, *nl;
	unsigned long long v;
	uint64_t sum = 0, nfree = 0;
	bool found = false, found_free = false;
	char line[128], name[64], extra;

	for (p = buf; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		/* One line at a time: sscanf must not read into the next. */
		if ((size_t)(nl - p) < 8 || (size_t)(nl - p) >= sizeof line ||
		    (memcmp(p, "pgalloc_", 8) != 0 &&
		        memcmp(p, "nr_free_pages ", 14) != 0))
			continue;
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		if (sscanf(line, "%63s %llu %c", name, &v, &extra) != 2)
			return -1;
		if (strcmp(name, "nr_free_pages") == 0) {
			nfree = v;
			found_free = true;
			continue;
		}
		sum += v;
		found = true;
	}
	if (!found || !found_free)
		return -1;
	*pages = sum;
	*free_pages = nfree;
	return 0;
}

struct allocrate *
allocrate_new(struct event_base *base, const char *path, struct headroom *h,
    void (*cb)(void *), void *arg)
{
	struct allocrate *ar;
	struct timeval tv = { 0, HEADROOM_SAMPLE_MS * 1000 };

	ar = xcalloc(1, sizeof *ar);
	ar->path = xstrdup(path);
	ar->headroom = h;
	ar->cb = cb;
	ar->arg = arg;
	ar->ev = event_new(base, -1, EV_PERSIST, allocrate_tick, ar);
	if (ar->ev == NULL)
		fatalx("%s: event_new", __func__);
	event_add(ar->ev, &tv);
	/* The first sample now: a rate a second from now. */
	allocrate_sample(ar);
	return ar;
}

void
allocrate_free(struct allocrate *ar)
{
	if (ar == NULL)
		return;
	event_free(ar->ev);
	free(ar->path);
	free(ar);
}

/* The counters now: pages allocated since boot. -1 if unreadable. */
int
allocrate_pages(struct allocrate *ar, uint64_t *pages)
{
	uint64_t free_pages;

	return allocrate_read(ar, pages, &free_pages);
}

/* The counters and the free pages now; -1 if unreadable. */
int
allocrate_read(struct allocrate *ar, uint64_t *pages, uint64_t *free_pages)
{
	char buf[ALLOCRATE_BUF];
	ssize_t n;
	size_t len = 0;
	int fd;

	if ((fd = open(ar->path, O_RDONLY | O_CLOEXEC)) == -1)
		goto fail;
	while (
	    len < sizeof buf && (n = read(fd, buf + len, sizeof buf - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (allocrate_parse(buf, len, pages, free_pages) == 0)
		return 0;
	errno = EINVAL;
fail:
	if (!ar->warned)
		log_warn("%s: no allocation counters; report batches are "
		         "never deferred and no headroom is kept",
		    ar->path);
	ar->warned = true;
	return -1;
}

/* Every 100 ms the free memory; every second the rate and the callback. */
static void
allocrate_tick(int fd, short what, void *arg)
{
	struct allocrate *ar = arg;
	uint64_t pages, free_pages;

	if (++ar->tick < ALLOCRATE_TICKS) {
		if (ar->headroom != NULL &&
		    allocrate_read(ar, &pages, &free_pages) == 0)
			headroom_sample(ar->headroom, free_pages);
		return;
	}
	ar->tick = 0;
	allocrate_sample(ar);
	if (ar->cb != NULL)
		ar->cb(ar->arg);
}

static void
allocrate_sample(struct allocrate *ar)
{
	uint64_t pages, free_pages;

	ar->unreadable = allocrate_read(ar, &pages, &free_pages) != 0;
	if (!ar->unreadable && ar->headroom != NULL)
		headroom_sample(ar->headroom, free_pages);
	if (ar->unreadable) {
		ar->prev_ms = ar->last_ms = 0;
		return;
	}
	ar->prev_pages = ar->last_pages;
	ar->prev_ms = ar->last_ms;
	ar->last_pages = pages;
	ar->last_ms = fh_monotonic_ms();
}

/*
 * Bytes a second the guest allocated between the last two samples (the
 * last second, seen from the sampler's callback). -1 before the second
 * sample, -2 when the counters cannot be read.
 */
int
allocrate_bytes_per_sec(
    const struct allocrate *ar, uint32_t page_size, uint64_t *out)
{
	if (ar == NULL || ar->unreadable)
		return -2;
	return allocrate_rate(ar->prev_pages, ar->prev_ms, ar->last_pages,
	    ar->last_ms, page_size, out);
}

/*
 * Bytes a second from pages0 at ms0 to pages1 at ms1; -1 without a first
 * sample (ms0 0) or when time or the counters went backwards.
 */
int
allocrate_rate(uint64_t pages0, uint64_t ms0, uint64_t pages1, uint64_t ms1,
    uint32_t page_size, uint64_t *out)
{
	if (ms0 == 0 || ms1 <= ms0 || pages1 < pages0)
		return -1;
	*out = (pages1 - pages0) * 1000 / (ms1 - ms0) * page_size;
	return 0;
}

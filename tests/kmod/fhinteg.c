// SPDX-License-Identifier: GPL-2.0
/*
 * fhinteg: data integrity under reporting and holds, run inside the guest
 * with the scribbling module (blocks are filled with 0x5a as soon as they
 * are read, like a host discard at its worst).
 *   fhinteg SECONDS MB
 * A worker keeps MB MiB of checksummed pages, freeing and reallocating 4 MiB
 * chunks; one thread acks every report batch, another captures, reads, acks
 * and releases holds. No checksum may fail, and no block handed out may
 * contain a page mapped by the worker.
 */
#include <poll.h>
#include <pthread.h>

#include "fhtest.h"

#define CHUNK (4UL << 20)
#define PPC   (CHUNK / 4096)
#define MAXB  64

struct chunk {
	uint64_t *p;
	uint64_t seed;
};

static struct chunk *chunks;
static int nchunks, pagemap;
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop;
static long bad_pages, verified_pages, overlaps, rep_batches, rep_blocks;
static long hold_batches, hold_blocks, hold_captures, remaps, grabs;
static uint64_t *pfnbuf;

static uint64_t
word(uint64_t seed, size_t page, size_t j)
{
	uint64_t x = seed ^ (page * 0x9e3779b97f4a7c15ULL) ^ (j << 32);

	x ^= x >> 31;
	return x * 0xbf58476d1ce4e5b9ULL + j;
}

static void
fill(struct chunk *c)
{
	size_t pg, j;

	for (pg = 0; pg < PPC; pg++)
		for (j = 0; j < 512; j++)
			c->p[pg * 512 + j] = word(c->seed, pg, j);
}

static void
verify(struct chunk *c)
{
	size_t pg, j;

	for (pg = 0; pg < PPC; pg++) {
		for (j = 0; j < 512; j++)
			if (c->p[pg * 512 + j] != word(c->seed, pg, j))
				break;
		if (j < 512) {
			if (__atomic_fetch_add(
			        &bad_pages, 1, __ATOMIC_RELAXED) < 5)
				say("integrity: page %zu of chunk %p corrupt "
				    "(word %zu = %#llx)\n",
				    pg, (void *)c->p, j,
				    (unsigned long long)c->p[pg * 512 + j]);
		}
		__atomic_fetch_add(&verified_pages, 1, __ATOMIC_RELAXED);
	}
}

static void
remap(struct chunk *c, uint64_t seed)
{
	void *p;

	pthread_mutex_lock(&map_lock);
	if (c->p)
		munmap(c->p, CHUNK);
	p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap chunk");
	madvise(p, CHUNK, MADV_NOHUGEPAGE);
	c->p = p;
	c->seed = seed;
	pthread_mutex_unlock(&map_lock);
	fill(c);
}

/* Count worker pages inside the blocks; call with the blocks isolated. */
static void
check_overlap(struct fh_block *blk, int n)
{
	int i, b;
	size_t k;

	pthread_mutex_lock(&map_lock);
	for (i = 0; i < nchunks; i++) {
		off_t off = (uintptr_t)chunks[i].p / 4096 * 8;

		if (pread(pagemap, pfnbuf, PPC * 8, off) != (ssize_t)(PPC * 8))
			continue;
		for (k = 0; k < PPC; k++) {
			uint64_t e = pfnbuf[k], pfn;

			if (!(e >> 63))
				continue;
			pfn = e & ((1ULL << 55) - 1);
			for (b = 0; b < n; b++)
				if (pfn >= blk[b].pfn &&
				    pfn < blk[b].pfn + (1ULL << blk[b].order))
					overlaps++;
		}
	}
	pthread_mutex_unlock(&map_lock);
}

/*
 * Allocate most of the available memory, fill, verify and free it, again
 * and again: blocks the module gives back are reused at once, so data
 * written into them too late is caught.
 */
static void *
grabber(void *arg)
{
	uint64_t seed = 1ULL << 40;
	struct chunk c;
	long long avail;
	size_t len, i;
	char *base;

	(void)arg;
	while (!stop) {
		/*
		 * Leave room for what the module may take after this read:
		 * a report batch (32 blocks of up to 4 MiB, isolated until
		 * acked) and a 48 MiB hold at once; with only the first, the
		 * guest ran out of memory (OOM-killed fhinteg) when both
		 * came together.
		 */
		avail = meminfo_kb("MemAvailable") * 1024LL - (192LL << 20);
		if (avail > (128LL << 20))
			avail = 128LL << 20;
		if (avail < (long long)CHUNK) {
			sleep_ms(100);
			continue;
		}
		len = avail / CHUNK;
		base = mmap(NULL, len * CHUNK, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED) {
			sleep_ms(100);
			continue;
		}
		madvise(base, len * CHUNK, MADV_NOHUGEPAGE);
		for (i = 0; i < len; i++) {
			c.p = (uint64_t *)(base + i * CHUNK);
			c.seed = seed + i;
			fill(&c);
		}
		for (i = 0; i < len; i++) {
			c.p = (uint64_t *)(base + i * CHUNK);
			c.seed = seed + i;
			verify(&c);
		}
		seed += len;
		munmap(base, len * CHUNK);
		grabs++;
	}
	return NULL;
}

static void *
reporter(void *arg)
{
	int fd = open(FH_PROC "report", O_RDWR);
	struct fh_block blk[MAXB];
	char buf[4096], c[64];
	uint64_t id;
	ssize_t len;
	int n;

	(void)arg;
	if (fd < 0)
		die("open report");
	while (!stop) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 500) <= 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		if (len <= 0 || (n = parse_batch(buf, len, &id, blk, MAXB)) < 0)
			continue;
		check_overlap(blk, n);
		snprintf(c, sizeof(c), "ack %" PRIu64 "\n", id);
		if (!write_str(fd, c)) {
			rep_batches++;
			rep_blocks += n;
		}
	}
	close(fd);
	return NULL;
}

static void *
holder(void *arg)
{
	int fd = open(FH_PROC "hold", O_RDWR);
	static struct fh_block blk[FH_HOLD_MAXB];
	static char buf[FH_HOLD_BUFSZ];
	char c[64];
	uint64_t id;
	ssize_t len;
	int n;

	(void)arg;
	if (fd < 0)
		die("open hold");
	while (!stop) {
		sleep_ms(3000);
		if (write_str(fd, "capture min_order=0 limit=48M zero\n"))
			continue;
		hold_captures++;
		while ((len = read(fd, buf, sizeof(buf) - 1)) > 0) {
			n = parse_batch(buf, len, &id, blk, FH_HOLD_MAXB);
			if (n < 0)
				break;
			check_overlap(blk, n);
			snprintf(c, sizeof(c), "ack %" PRIu64 "\n", id);
			if (!write_str(fd, c)) {
				hold_batches++;
				hold_blocks += n;
			}
		}
		sleep_ms(500);
		write_str(fd, "release\n");
	}
	close(fd);
	return NULL;
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 60, t0;
	size_t mb = argc > 2 ? strtoul(argv[2], NULL, 0) : 128;
	uint64_t seed = 1;
	pthread_t rt, ht, gt;
	int i;

	nchunks = mb / 4;
	chunks = calloc(nchunks, sizeof(*chunks));
	pfnbuf = malloc(PPC * 8);
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap < 0 || !chunks || !pfnbuf)
		die("setup");
	for (i = 0; i < nchunks; i++)
		remap(&chunks[i], seed++);
	pthread_create(&rt, NULL, reporter, NULL);
	pthread_create(&ht, NULL, holder, NULL);
	pthread_create(&gt, NULL, grabber, NULL);
	srand(42);
	for (t0 = now_s(); now_s() - t0 < secs;) {
		struct chunk *c = &chunks[rand() % nchunks];

		verify(c);
		remap(c, seed++);
		remaps++;
	}
	stop = 1;
	pthread_join(rt, NULL);
	pthread_join(ht, NULL);
	pthread_join(gt, NULL);
	for (i = 0; i < nchunks; i++)
		verify(&chunks[i]);

	say("integrity: %.0f s, %ld chunk reallocations, %ld grabs, %ld pages "
	    "verified, "
	    "%ld corrupt\n",
	    secs, remaps, grabs, verified_pages, bad_pages);
	say("integrity: report %ld batches / %ld blocks acked; hold %ld "
	    "captures, %ld batches / %ld blocks acked; %ld overlaps\n",
	    rep_batches, rep_blocks, hold_captures, hold_batches, hold_blocks,
	    overlaps);
	CHECK(bad_pages == 0, "integrity-checksums", "%ld corrupt pages",
	    bad_pages);
	CHECK(overlaps == 0, "integrity-no-own-pfn-handed-out",
	    "%ld of our pages were in reported or held blocks", overlaps);
	CHECK(rep_batches >= 3, "integrity-report-exercised",
	    "only %ld report batches acked", rep_batches);
	CHECK(hold_batches >= 3, "integrity-hold-exercised",
	    "only %ld hold batches acked", hold_batches);
	return fh_failures ? 1 : 0;
}

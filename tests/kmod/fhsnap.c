// SPDX-License-Identifier: GPL-2.0
/*
 * fhsnap: tests of /proc/freehint/blocks, run inside the guest.
 *   fhsnap buddyinfo   per zone and order totals match /proc/buddyinfo
 *   fhsnap appear      freed pages show up, allocated pages do not
 *   fhsnap minorder    min_order writes filter the snapshot
 */
#include "fhtest.h"

#define MAXZ 8
#define NORD 11

struct snap {
	struct fh_block *blk;
	size_t n;
	char zname[MAXZ][16];
	long count[MAXZ][NORD];
	int nz;
	int minorder_seen;
	int header_min_order;
};

static int
zone_idx(struct snap *s, const char *name)
{
	int i;

	for (i = 0; i < s->nz; i++)
		if (!strcmp(s->zname[i], name))
			return i;
	if (s->nz == MAXZ)
		return -1;
	snprintf(s->zname[s->nz], 16, "%s", name);
	return s->nz++;
}

static int
cmp_blk(const void *a, const void *b)
{
	const struct fh_block *x = a, *y = b;

	return x->pfn < y->pfn ? -1 : x->pfn > y->pfn;
}

static void
take(struct snap *s)
{
	char line[256], zn[32];
	unsigned int order;
	uint64_t pfn;
	size_t cap = 4096;
	int mt, z;
	FILE *f = fopen(FH_PROC "blocks", "r");

	if (!f)
		die("open blocks");
	memset(s, 0, sizeof(*s));
	s->minorder_seen = NORD;
	s->header_min_order = -1;
	s->blk = malloc(cap * sizeof(*s->blk));
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#') {
			sscanf(line, "# freehint blocks: min_order=%d",
			    &s->header_min_order);
			continue;
		}
		if (sscanf(line, "0x%" SCNx64 " %u %31s %d", &pfn, &order, zn,
		        &mt) != 4 ||
		    order >= NORD) {
			say("FAIL blocks-format: bad line '%s'\n", line);
			exit(2);
		}
		if (s->n == cap) {
			cap *= 2;
			s->blk = realloc(s->blk, cap * sizeof(*s->blk));
		}
		s->blk[s->n].pfn = pfn;
		s->blk[s->n++].order = order;
		z = zone_idx(s, zn);
		if (z >= 0)
			s->count[z][order]++;
		if ((int)order < s->minorder_seen)
			s->minorder_seen = order;
	}
	fclose(f);
	qsort(s->blk, s->n, sizeof(*s->blk), cmp_blk);
}

static int
in_snap(struct snap *s, uint64_t pfn)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->blk[mid].pfn <= pfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return 0;
	return pfn < s->blk[lo - 1].pfn + (1ULL << s->blk[lo - 1].order);
}

static long
buddy_diff(struct snap *s, long *total)
{
	char line[512], zn[32];
	long c[NORD], diff = 0;
	int node, n, z, o;
	FILE *f = fopen("/proc/buddyinfo", "r");

	*total = 0;
	if (!f)
		die("open buddyinfo");
	while (fgets(line, sizeof(line), f)) {
		n = sscanf(line,
		    "Node %d, zone %31s %ld %ld %ld %ld %ld %ld %ld %ld %ld "
		    "%ld %ld",
		    &node, zn, &c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6],
		    &c[7], &c[8], &c[9], &c[10]);
		if (n != 13)
			continue;
		z = zone_idx(s, zn);
		for (o = 0; o < NORD; o++) {
			diff += labs(c[o] - s->count[z][o]);
			*total += c[o];
		}
	}
	fclose(f);
	return diff;
}

static void
test_buddyinfo(void)
{
	long diff = 0, total = 0;
	struct snap s;
	int i;

	for (i = 0; i < 5; i++) {
		take(&s);
		diff = buddy_diff(&s, &total);
		free(s.blk);
		say("buddyinfo attempt %d: %ld blocks, |diff| %ld\n", i, total,
		    diff);
		if (diff <= 8)
			break;
		sleep_ms(300);
	}
	CHECK(diff <= 8, "blocks-match-buddyinfo",
	    "snapshot differs from /proc/buddyinfo by %ld blocks", diff);
}

static size_t
count_in(struct snap *s, uint64_t *pfns, size_t n)
{
	size_t i, hits = 0;

	for (i = 0; i < n; i++)
		hits += pfns[i] && in_snap(s, pfns[i]);
	return hits;
}

static uint64_t *
pfns_of(char *p, size_t len, int pm)
{
	uint64_t *pfns = calloc(len / 4096, sizeof(*pfns));
	size_t i;

	for (i = 0; i < len / 4096; i++)
		pfns[i] = addr_pfn(pm, p + i * 4096);
	return pfns;
}

static void
test_appear(void)
{
	size_t len = 64 << 20, n = len / 4096, hits;
	uint64_t *pfns, *pfns2;
	int pm = open("/proc/self/pagemap", O_RDONLY);
	struct snap s;
	char *p;

	if (pm < 0)
		die("pagemap");
	p = alloc_fill(64, 0x11);
	if (!p)
		die("alloc");
	pfns = pfns_of(p, len, pm);
	take(&s);
	hits = count_in(&s, pfns, n);
	free(s.blk);
	CHECK(hits == 0, "blocks-allocated-absent",
	    "%zu of our %zu mapped pages listed as free", hits, n);

	munmap(p, len);
	sleep_ms(200);
	take(&s);
	hits = count_in(&s, pfns, n);
	say("after free: %zu of %zu pages in free blocks\n", hits, n);
	CHECK(hits >= n / 2, "blocks-freed-appear",
	    "only %zu of %zu freed pages listed as free", hits, n);

	p = alloc_fill(64, 0x22);
	if (!p)
		die("alloc");
	pfns2 = pfns_of(p, len, pm);
	hits = count_in(&s, pfns2, n);
	say("reallocated: %zu of %zu new pages were in the previous snapshot\n",
	    hits, n);
	free(s.blk);
	take(&s);
	hits = count_in(&s, pfns2, n);
	CHECK(hits == 0, "blocks-reallocated-disappear",
	    "%zu of %zu newly allocated pages still listed", hits, n);
	free(s.blk);
	munmap(p, len);
	free(pfns);
	free(pfns2);
	close(pm);
}

static void
test_minorder(void)
{
	struct snap s;
	int fd = open(FH_PROC "blocks", O_WRONLY);
	int bad;

	if (fd < 0)
		die("open blocks for write");
	CHECK(write_str(fd, "min_order=9\n") == 0, "blocks-write-min-order",
	    "write: %s", strerror(errno));
	take(&s);
	CHECK(s.minorder_seen >= 9 && s.n > 0 && s.header_min_order == 9,
	    "blocks-min-order-filters", "smallest order listed %d, %zu blocks",
	    s.minorder_seen, s.n);
	free(s.blk);
	bad = write_str(fd, "min_order=42\n") < 0 && errno == EINVAL;
	CHECK(bad, "blocks-write-bad-einval", "order 42 not rejected");
	CHECK(write_str(fd, "0\n") == 0, "blocks-write-plain-number",
	    "write: %s", strerror(errno));
	close(fd);
	take(&s);
	CHECK(s.header_min_order == 0 && s.n > 0, "blocks-min-order-reset",
	    "header says min_order=%d after reset, %zu blocks",
	    s.header_min_order, s.n);
	free(s.blk);
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	if (!strcmp(mode, "buddyinfo"))
		test_buddyinfo();
	else if (!strcmp(mode, "appear"))
		test_appear();
	else if (!strcmp(mode, "minorder"))
		test_minorder();
	else
		return fprintf(
		           stderr, "usage: fhsnap buddyinfo|appear|minorder\n"),
		       2;
	return fh_failures ? 1 : 0;
}

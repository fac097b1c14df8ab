/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Codec benchmark: how fast range batches are encoded and decoded, and
 * how many bytes they cost on the wire, for two realistic guests:
 *
 *   buddy  16 GiB guest, half of it free in scattered order-9 and
 *          order-10 blocks (2 and 4 MiB), as after a workload freed
 *          large allocations;
 *   frag   16 GiB guest, 15% free in order-0..4 blocks (4-64 KiB),
 *          a long-running fragmented guest.
 *
 * The free blocks are cut into batches of --batch blocks (the agent's
 * default, 1024). Encoding is what the agent does per batch: build the
 * set, normalise it (adjacent blocks coalesce), fh_batch_pack and
 * fh_frame_put. Decoding is what the host does: fh_msg_pull, then
 * fh_batch_unpack. Prints a Markdown table.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "common.h"

#define GUEST_PAGES (4ULL << 20) /* 16 GiB of 4 KiB pages */
#define PAGE_SHIFT  12

struct scenario {
	const char *name;
	const char *what;
	struct fh_range *blocks;
	size_t n;
	uint64_t free_pages;
};

struct result {
	size_t wire_ranges;
	size_t wire_bytes;
	size_t batches;
	double enc_sec; /* per pass over all blocks */
	double dec_sec;
};

static uint64_t rng(uint64_t *);
static void add_block(struct scenario *, size_t *cap, uint64_t, uint64_t);
static void gen_buddy(struct scenario *, uint64_t seed);
static void gen_frag(struct scenario *, uint64_t seed);
static double now(void);
static size_t encode_all(const struct scenario *, size_t batch,
    struct evbuffer *, size_t *wire_ranges, size_t *batches);
static void decode_all(struct evbuffer *, size_t batch, size_t want);
static void run(
    const struct scenario *, size_t batch, double min_sec, struct result *);

static uint64_t
rng(uint64_t *s)
{
	/* xorshift64: reproducible and cheap. */
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
add_block(struct scenario *sc, size_t *cap, uint64_t start, uint64_t n)
{
	if (sc->n == *cap) {
		*cap = *cap ? *cap * 2 : 4096;
		sc->blocks =
		    xreallocarray(sc->blocks, *cap, sizeof *sc->blocks);
	}
	sc->blocks[sc->n].start = start;
	sc->blocks[sc->n].npages = n;
	sc->n++;
	sc->free_pages += n;
}

/* Each 4 MiB slot: one free order-10 block, or either 2 MiB half free. */
static void
gen_buddy(struct scenario *sc, uint64_t seed)
{
	size_t cap = 0;
	uint64_t pfn, r;

	for (pfn = 0; pfn < GUEST_PAGES; pfn += 1024) {
		r = rng(&seed) % 100;
		if (r < 30)
			add_block(sc, &cap, pfn, 1024);
		else if (r < 50)
			add_block(sc, &cap, pfn, 512);
		else if (r < 70)
			add_block(sc, &cap, pfn + 512, 512);
	}
}

/*
 * Each 64 KiB slot: a free block of order 0-4, aligned, in 40% of the
 * slots: about 15% of memory free, in 4-64 KiB pieces.
 */
static void
gen_frag(struct scenario *sc, uint64_t seed)
{
	size_t cap = 0;
	uint64_t pfn, order, n;

	for (pfn = 0; pfn < GUEST_PAGES; pfn += 16) {
		if (rng(&seed) % 100 >= 40)
			continue;
		order = rng(&seed) % 5;
		n = 1ULL << order;
		add_block(sc, &cap, pfn + (rng(&seed) % (16 / n)) * n, n);
	}
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The agent's side: every block, batch by batch, into framed messages. */
static size_t
encode_all(const struct scenario *sc, size_t batch, struct evbuffer *out,
    size_t *wire_ranges, size_t *batches)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	static uint64_t *scratch;
	struct fh_rangeset rs;
	size_t i, j, end;

	if (scratch == NULL)
		scratch = xcalloc(2 * batch, sizeof *scratch);
	fh_rs_init(&rs);
	*wire_ranges = *batches = 0;
	b.kind = FREEHINT__RANGE_KIND__REPORTED;
	for (i = 0; i < sc->n; i = end) {
		end = i + batch < sc->n ? i + batch : sc->n;
		fh_rs_clear(&rs);
		for (j = i; j < end; j++)
			if (fh_rs_add(&rs, sc->blocks[j].start,
			        sc->blocks[j].npages) != 0)
				fatalx("fh_rs_add");
		fh_rs_normalize(&rs);
		b.batch_id++;
		if (fh_batch_pack(&b, &rs, scratch) != FH_OK ||
		    fh_frame_put(out, FH_MSG_RANGES, &b.base) != FH_OK)
			fatalx("encode");
		*wire_ranges += rs.n;
		(*batches)++;
	}
	fh_rs_free(&rs);
	return evbuffer_get_length(out);
}

/* The host's side: pull every frame and unpack its ranges. */
static void
decode_all(struct evbuffer *in, size_t batch, size_t want)
{
	struct fh_rangeset rs;
	struct fh_msg m;
	size_t got = 0;
	int err;

	fh_rs_init(&rs);
	while ((err = fh_msg_pull(in, &m)) == FH_OK) {
		if (fh_batch_unpack(m.u.ranges, &rs, batch) != FH_OK)
			fatalx("fh_batch_unpack");
		got += rs.n;
		fh_msg_free(&m);
	}
	if (err != FH_ENEED || got != want)
		fatalx("decode: %s, %zu of %zu ranges", fh_strerror(err), got,
		    want);
	fh_rs_free(&rs);
}

/* Repeat encoding and decoding until each took min_sec; keep the mean. */
static void
run(const struct scenario *sc, size_t batch, double min_sec, struct result *res)
{
	struct evbuffer *wire, *copy;
	const uint8_t *bytes;
	double t, spent;
	int reps;

	wire = evbuffer_new();
	res->wire_bytes =
	    encode_all(sc, batch, wire, &res->wire_ranges, &res->batches);
	bytes = evbuffer_pullup(wire, -1);

	for (reps = 0, spent = 0; spent < min_sec; reps++) {
		copy = evbuffer_new();
		t = now();
		encode_all(sc, batch, copy, &res->wire_ranges, &res->batches);
		spent += now() - t;
		evbuffer_free(copy);
	}
	res->enc_sec = spent / reps;

	for (reps = 0, spent = 0; spent < min_sec; reps++) {
		copy = evbuffer_new();
		evbuffer_add(copy, bytes, res->wire_bytes);
		t = now();
		decode_all(copy, batch, res->wire_ranges);
		spent += now() - t;
		evbuffer_free(copy);
	}
	res->dec_sec = spent / reps;
	evbuffer_free(wire);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "batch", required_argument, NULL, 'b' },
		{ "seconds", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct scenario sc[2] = {
		{ "buddy", "order-9/10 blocks (2-4 MiB)", NULL, 0, 0 },
		{ "frag", "order-0..4 blocks (4-64 KiB)", NULL, 0, 0 },
	};
	struct result res;
	uint64_t v, batch = 1024;
	double min_sec = 1.0, gib;
	size_t i;
	int ch;

	log_init("codec", 1, 0);
	while ((ch = getopt_long(argc, argv, "b:s:", opts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			if (fh_parse_u64(
			        optarg, 1, FH_BATCH_MAX_RANGES, &batch) != 0)
				fatalx("bad --batch '%s'", optarg);
			break;
		case 's':
			if (fh_parse_u64(optarg, 1, 600, &v) != 0)
				fatalx("bad --seconds '%s'", optarg);
			min_sec = (double)v;
			break;
		default:
			fprintf(
			    stderr, "usage: codec [--batch N] [--seconds S]\n");
			return 2;
		}
	}
	gen_buddy(&sc[0], 0x9e3779b97f4a7c15ULL);
	gen_frag(&sc[1], 0xd1b54a32d192ed03ULL);

	printf("| 16 GiB guest, free in | free | blocks | wire ranges "
	       "| batches | encode, M blocks/s | decode, M blocks/s "
	       "| decode, M wire ranges/s | bytes/block | bytes/wire range "
	       "| bytes/GiB free | virtio-balloon bytes/GiB, same blocks |\n");
	printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
	       "| ---: | ---: | ---: |\n");
	for (i = 0; i < FH_ARRAY_SIZE(sc); i++) {
		run(&sc[i], (size_t)batch, min_sec, &res);
		gib = (double)(sc[i].free_pages << PAGE_SHIFT) / (1 << 30);
		printf("| %s: %s | %.2f GiB (%.0f%%) | %zu | %zu | %zu | %.1f "
		       "| %.1f | %.1f | %.2f | %.2f | %.0f | %.0f |\n",
		    sc[i].name, sc[i].what, gib,
		    100.0 * (double)sc[i].free_pages / GUEST_PAGES, sc[i].n,
		    res.wire_ranges, res.batches,
		    (double)sc[i].n / res.enc_sec / 1e6,
		    (double)sc[i].n / res.dec_sec / 1e6,
		    (double)res.wire_ranges / res.dec_sec / 1e6,
		    (double)res.wire_bytes / (double)sc[i].n,
		    (double)res.wire_bytes / (double)res.wire_ranges,
		    (double)res.wire_bytes / gib,
		    /* One 8-byte descriptor per block. */
		    8.0 * (double)sc[i].n / gib);
		free(sc[i].blocks);
	}
	return 0;
}

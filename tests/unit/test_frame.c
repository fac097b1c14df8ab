/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Framing: header layout and checks, and fh_msg_pull on streams cut at
 * every byte, many frames in one buffer, garbage and truncated input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include <event2/buffer.h>

#include "proto.h"
#include "samples.h"

#define ARRAY_N(a) (sizeof(a) / sizeof((a)[0]))

static struct evbuffer *all_types(void);
static void expect_all_types(struct evbuffer *, const uint8_t *, size_t);
static size_t pull_all(struct evbuffer *, uint8_t *types, size_t max);
static void put_hdr(struct evbuffer *, uint32_t magic, uint8_t version,
    uint8_t type, uint16_t flags, uint32_t length);

/* One frame of every type, in type order. */
static struct evbuffer *
all_types(void)
{
	struct evbuffer *b = evbuffer_new();
	uint8_t t;

	assert_non_null(b);
	for (t = 1; t <= FH_MSG_MAX; t++)
		assert_int_equal(fh_frame_put(b, t, sample_message(t)), FH_OK);
	return b;
}

/* Pull every whole frame; each must decode. Returns how many. */
static size_t
pull_all(struct evbuffer *in, uint8_t *types, size_t max)
{
	struct fh_msg m;
	size_t n = 0;
	int err;

	while ((err = fh_msg_pull(in, &m)) == FH_OK) {
		assert_true(n < max);
		types[n++] = m.type;
		fh_msg_free(&m);
	}
	assert_int_equal(err, FH_ENEED);
	return n;
}

static void
put_hdr(struct evbuffer *b, uint32_t magic, uint8_t version, uint8_t type,
    uint16_t flags, uint32_t length)
{
	uint8_t h[FH_HDR_SIZE] = { magic >> 24, magic >> 16, magic >> 8, magic,
		version, type, flags >> 8, flags, length >> 24, length >> 16,
		length >> 8, length };

	assert_int_equal(evbuffer_add(b, h, sizeof h), 0);
}

static void
test_hdr_layout(void **state)
{
	const uint8_t want[FH_HDR_SIZE] = { 'F', 'H', 'N', 'T', 1, 3, 0, 0,
		0x00, 0x01, 0x02, 0x03 };
	struct fh_frame_hdr h;
	uint8_t out[FH_HDR_SIZE];

	fh_hdr_pack(out, FH_MSG_RANGES, 0x010203);
	assert_memory_equal(out, want, sizeof want);
	assert_int_equal(fh_hdr_unpack(out, &h), FH_OK);
	assert_int_equal(h.magic, FH_MAGIC);
	assert_int_equal(h.version, FH_PROTO_VERSION);
	assert_int_equal(h.type, FH_MSG_RANGES);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.length, 0x010203);
}

static void
test_hdr_errors(void **state)
{
	struct fh_frame_hdr h;
	uint8_t b[FH_HDR_SIZE];
	int i;

	fh_hdr_pack(b, FH_MSG_ACK, 10);
	for (i = 0; i < 4; i++) {
		b[i] ^= 0x20;
		assert_int_equal(fh_hdr_unpack(b, &h), FH_EMAGIC);
		b[i] ^= 0x20;
	}
	b[4] = 0;
	assert_int_equal(fh_hdr_unpack(b, &h), FH_EVERSION);
	b[4] = 2;
	assert_int_equal(fh_hdr_unpack(b, &h), FH_EVERSION);
	b[4] = FH_PROTO_VERSION;
	b[6] = 0x80;
	assert_int_equal(fh_hdr_unpack(b, &h), FH_EFLAGS);
	b[6] = 0;
	b[7] = 1;
	assert_int_equal(fh_hdr_unpack(b, &h), FH_EFLAGS);
	b[7] = 0;
	b[5] = 0;
	assert_int_equal(fh_hdr_unpack(b, &h), FH_ETYPE);
	b[5] = FH_MSG_MAX + 1;
	assert_int_equal(fh_hdr_unpack(b, &h), FH_ETYPE);
	b[5] = 255;
	assert_int_equal(fh_hdr_unpack(b, &h), FH_ETYPE);
	/* The size is judged before the type: an unknown type is skipped. */
	fh_hdr_pack(b, 200, FH_FRAME_MAX + 1);
	assert_int_equal(fh_hdr_unpack(b, &h), FH_ESIZE);
	fh_hdr_pack(b, FH_MSG_STATS, FH_FRAME_MAX);
	assert_int_equal(fh_hdr_unpack(b, &h), FH_OK);
	fh_hdr_pack(b, FH_MSG_STATS, UINT32_MAX);
	assert_int_equal(fh_hdr_unpack(b, &h), FH_ESIZE);
}

/* What was pulled is one message of every type, in order, and no more. */
static void
expect_all_types(struct evbuffer *in, const uint8_t *types, size_t n)
{
	size_t t;

	assert_int_equal(n, FH_MSG_MAX);
	for (t = 0; t < n; t++)
		assert_int_equal(types[t], t + 1);
	assert_int_equal(evbuffer_get_length(in), 0);
}

static void
test_split_every_byte(void **state)
{
	struct evbuffer *src = all_types(), *in = evbuffer_new();
	size_t ends[FH_MSG_MAX + 1], len, i, n = 0, whole = 0;
	uint8_t types[16], t;
	const uint8_t *bytes;

	/* Where each frame ends in the stream. */
	for (t = 1, ends[0] = 0; t <= FH_MSG_MAX; t++)
		ends[t] = ends[t - 1] + FH_HDR_SIZE +
		    protobuf_c_message_get_packed_size(sample_message(t));
	len = evbuffer_get_length(src);
	assert_int_equal(len, ends[FH_MSG_MAX]);
	bytes = evbuffer_pullup(src, -1);
	/* One byte at a time: a message appears exactly when it is whole. */
	for (i = 0; i < len; i++) {
		assert_int_equal(evbuffer_add(in, bytes + i, 1), 0);
		n += pull_all(in, types + n, ARRAY_N(types) - n);
		while (whole < FH_MSG_MAX && ends[whole + 1] <= i + 1)
			whole++;
		assert_int_equal(n, whole);
	}
	expect_all_types(in, types, n);
	evbuffer_free(in);
	evbuffer_free(src);
}

static void
test_split_two_pieces(void **state)
{
	struct evbuffer *src = all_types(), *in;
	uint8_t types[16];
	const uint8_t *bytes;
	size_t len, off, n;

	len = evbuffer_get_length(src);
	bytes = evbuffer_pullup(src, -1);
	for (off = 0; off <= len; off++) {
		in = evbuffer_new();
		assert_int_equal(evbuffer_add(in, bytes, off), 0);
		n = pull_all(in, types, sizeof types);
		assert_int_equal(evbuffer_add(in, bytes + off, len - off), 0);
		n += pull_all(in, types + n, sizeof types - n);
		expect_all_types(in, types, n);
		evbuffer_free(in);
	}
	evbuffer_free(src);
}

static void
test_many_frames(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct fh_msg m;
	size_t i, n = 0;

	for (i = 0; i < 5000; i++)
		assert_int_equal(
		    fh_frame_put(in, (uint8_t)(i % FH_MSG_MAX + 1),
		        sample_message((uint8_t)(i % FH_MSG_MAX + 1))),
		    FH_OK);
	while (fh_msg_pull(in, &m) == FH_OK) {
		assert_int_equal(m.type, n % FH_MSG_MAX + 1);
		fh_msg_free(&m);
		n++;
	}
	assert_int_equal(n, 5000);
	assert_int_equal(evbuffer_get_length(in), 0);
	evbuffer_free(in);
}

static void
test_truncated(void **state)
{
	struct evbuffer *src, *in;
	const uint8_t *bytes;
	struct fh_msg m;
	size_t len, i;
	uint8_t t;

	for (t = 1; t <= FH_MSG_MAX; t++) {
		src = evbuffer_new();
		assert_int_equal(
		    fh_frame_put(src, t, sample_message(t)), FH_OK);
		len = evbuffer_get_length(src);
		bytes = evbuffer_pullup(src, -1);
		for (i = 0; i < len; i++) {
			in = evbuffer_new();
			evbuffer_add(in, bytes, i);
			/* Incomplete: nothing decoded, nothing consumed. */
			assert_int_equal(fh_msg_pull(in, &m), FH_ENEED);
			assert_null(m.u.base);
			assert_int_equal(evbuffer_get_length(in), i);
			evbuffer_free(in);
		}
		evbuffer_free(src);
	}
}

static void
test_unknown_type_consumed(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct fh_msg m;

	put_hdr(in, FH_MAGIC, FH_PROTO_VERSION, FH_MSG_MAX + 1, 0, 5);
	evbuffer_add(in, "hello", 4);
	/* Its payload is not all there yet: wait for it. */
	assert_int_equal(fh_msg_pull(in, &m), FH_ENEED);
	evbuffer_add(in, "o", 1);
	fh_frame_put(in, FH_MSG_ERROR, sample_message(FH_MSG_ERROR));
	assert_int_equal(fh_msg_pull(in, &m), FH_ETYPE);
	assert_false(FH_ERR_FATAL(FH_ETYPE));
	/* The stream carries on with the next frame. */
	assert_int_equal(fh_msg_pull(in, &m), FH_OK);
	assert_int_equal(m.type, FH_MSG_ERROR);
	fh_msg_free(&m);
	assert_int_equal(evbuffer_get_length(in), 0);
	evbuffer_free(in);
}

static void
test_fatal_not_consumed(void **state)
{
	static const struct {
		uint32_t magic;
		uint8_t version;
		uint16_t flags;
		uint32_t length;
		int err;
	} cases[] = {
		{ 0x46484e55, 1, 0, 4, FH_EMAGIC },
		{ FH_MAGIC, 0, 0, 4, FH_EVERSION },
		{ FH_MAGIC, 1, 1, 4, FH_EFLAGS },
		{ FH_MAGIC, 1, 0, FH_FRAME_MAX + 1, FH_ESIZE },
		/* Refused from the header alone, before any allocation. */
		{ FH_MAGIC, 1, 0, UINT32_MAX, FH_ESIZE },
	};
	struct evbuffer *in;
	struct fh_msg m;
	size_t i;

	for (i = 0; i < ARRAY_N(cases); i++) {
		in = evbuffer_new();
		put_hdr(in, cases[i].magic, cases[i].version, FH_MSG_ACK,
		    cases[i].flags, cases[i].length);
		assert_int_equal(fh_msg_pull(in, &m), cases[i].err);
		assert_true(FH_ERR_FATAL(cases[i].err));
		assert_null(m.u.base);
		assert_int_equal(evbuffer_get_length(in), FH_HDR_SIZE);
		evbuffer_free(in);
	}
}

static void
test_decode_error_consumed(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct fh_msg m;

	/* An empty Error lacks its required code; an empty Stats is fine. */
	put_hdr(in, FH_MAGIC, FH_PROTO_VERSION, FH_MSG_ERROR, 0, 0);
	put_hdr(in, FH_MAGIC, FH_PROTO_VERSION, FH_MSG_STATS, 0, 0);
	put_hdr(in, FH_MAGIC, FH_PROTO_VERSION, FH_MSG_HELLO, 0, 3);
	evbuffer_add(in, "\xff\xff\xff", 3);
	assert_int_equal(fh_msg_pull(in, &m), FH_EDECODE);
	assert_false(FH_ERR_FATAL(FH_EDECODE));
	assert_int_equal(fh_msg_pull(in, &m), FH_OK);
	assert_int_equal(m.type, FH_MSG_STATS);
	assert_false(m.u.stats->has_free_bytes);
	fh_msg_free(&m);
	assert_int_equal(fh_msg_pull(in, &m), FH_EDECODE);
	assert_int_equal(evbuffer_get_length(in), 0);
	evbuffer_free(in);
}

static void
test_garbage(void **state)
{
	struct evbuffer *in;
	struct fh_msg m;
	uint8_t junk[512];
	unsigned seed = 1, round, i;
	int err, pulls;

	for (round = 0; round < 2000; round++) {
		in = evbuffer_new();
		/* Keep a valid-looking header half of the time. */
		for (i = 0; i < sizeof junk; i++)
			junk[i] = (uint8_t)rand_r(&seed);
		if (round & 1) {
			fh_hdr_pack(junk, (uint8_t)(junk[5] % 9),
			    junk[8] % 64 * (round & 2 ? 1 : 7));
			junk[5] = (uint8_t)(rand_r(&seed) % 9);
		}
		evbuffer_add(in, junk, rand_r(&seed) % sizeof junk);
		pulls = 0;
		do {
			err = fh_msg_pull(in, &m);
			if (err == FH_OK) {
				assert_non_null(m.u.base);
				fh_msg_free(&m);
			} else
				assert_null(m.u.base);
			assert_true(++pulls < 100);
		} while (err != FH_ENEED && !FH_ERR_FATAL(err));
		evbuffer_free(in);
	}
}

static void
test_put_errors(void **state)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	struct evbuffer *out = evbuffer_new();
	uint64_t *v;
	size_t n = FH_FRAME_MAX / 10 + 1, i;

	/* 26215 ten-byte varints twice: past FH_FRAME_MAX. */
	v = calloc(n, sizeof *v);
	assert_non_null(v);
	for (i = 0; i < n; i++)
		v[i] = UINT64_MAX;
	b.kind = FREEHINT__RANGE_KIND__HINT;
	b.n_gaps = b.n_lengths = n;
	b.gaps = b.lengths = v;
	evbuffer_add(out, "x", 1);
	assert_int_equal(fh_frame_put(out, FH_MSG_RANGES, &b.base), FH_ESIZE);
	assert_int_equal(
	    fh_frame_put(out, 0, sample_message(FH_MSG_ACK)), FH_ETYPE);
	assert_int_equal(
	    fh_frame_put(out, FH_MSG_MAX + 1, sample_message(FH_MSG_ACK)),
	    FH_ETYPE);
	/* Nothing half-written after a refusal. */
	assert_int_equal(evbuffer_get_length(out), 1);
	free(v);
	evbuffer_free(out);
}

/*
 * The sync mark: a run of 0xff then a Hello header. Found after garbage
 * and inside the payload of a frame torn by a killed writer; not found in
 * a run of 0xff alone, nor before another type's header.
 */
static void
test_sync_find(void **state)
{
	struct evbuffer *b = evbuffer_new();
	uint8_t buf[256];
	size_t n;

	memset(buf, 0, sizeof buf);
	memset(buf, 0xff, 64);
	assert_int_equal(fh_sync_find(buf, 64), -1);
	/* Half a RangeBatch frame, then the sync, then a Hello. */
	fh_frame_put(b, FH_MSG_RANGES, sample_message(FH_MSG_RANGES));
	n = evbuffer_get_length(b) / 2;
	evbuffer_remove(b, buf, n);
	evbuffer_drain(b, evbuffer_get_length(b));
	assert_int_equal(fh_sync_put(b), FH_OK);
	fh_frame_put(b, FH_MSG_HELLO, sample_message(FH_MSG_HELLO));
	assert_true(n + evbuffer_get_length(b) <= sizeof buf);
	evbuffer_remove(b, buf + n, evbuffer_get_length(b));
	assert_int_equal(
	    fh_sync_find(buf, sizeof buf), (long)(n + FH_SYNC_LEN));
	assert_int_equal(buf[n + FH_SYNC_LEN], 0x46);
	/* Too short to hold the whole mark: not yet. */
	assert_int_equal(fh_sync_find(buf, n + FH_SYNC_MARK - 1), -1);
	/* The same run before a Stats header is not a mark. */
	buf[n + FH_SYNC_LEN + 5] = FH_MSG_STATS;
	assert_int_equal(fh_sync_find(buf, sizeof buf), -1);
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_layout),
		cmocka_unit_test(test_hdr_errors),
		cmocka_unit_test(test_split_every_byte),
		cmocka_unit_test(test_split_two_pieces),
		cmocka_unit_test(test_many_frames),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_unknown_type_consumed),
		cmocka_unit_test(test_fatal_not_consumed),
		cmocka_unit_test(test_decode_error_consumed),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_put_errors),
		cmocka_unit_test(test_sync_find),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

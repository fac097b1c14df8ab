/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Write the seed corpus of fuzz_frame: a valid frame of every type, a
 * realistic range batch of each kind, several frames in one stream, and
 * the same fed in small chunks. Usage: gen_corpus DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "common.h"
#include "../unit/samples.h"

static void save(const char *dir, const char *name, const uint8_t *prefix,
    size_t plen, struct evbuffer *);

static void
save(const char *dir, const char *name, const uint8_t *prefix, size_t plen,
    struct evbuffer *b)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		fatal("%s", path);
	fwrite(prefix, 1, plen, f);
	fwrite(evbuffer_pullup(b, -1), 1, evbuffer_get_length(b), f);
	if (fclose(f) != 0)
		fatal("%s", path);
	evbuffer_drain(b, evbuffer_get_length(b));
}

int
main(int argc, char **argv)
{
	static const uint8_t whole[] = { 0 }, small[] = { 3, 0, 6, 2 };
	static const char *kinds[] = { "", "hint", "reported", "held" };
	Freehint__RangeBatch batch = FREEHINT__RANGE_BATCH__INIT;
	struct evbuffer *b = evbuffer_new(), *all = evbuffer_new();
	struct fh_rangeset rs;
	uint64_t scratch[2 * 48];
	char name[64];
	unsigned kind;
	uint8_t t;
	int i;

	if (argc != 2)
		fatalx("usage: gen_corpus DIR");
	for (t = 1; t <= FH_MSG_MAX; t++) {
		fh_frame_put(b, t, sample_message(t));
		fh_frame_put(all, t, sample_message(t));
		snprintf(name, sizeof name, "%s", fh_msg_name(t));
		save(argv[1], name, whole, sizeof whole, b);
	}
	/* Range batches as the agent sends them: 2-4 MiB blocks. */
	fh_rs_init(&rs);
	for (i = 0; i < 48; i++)
		fh_rs_add(
		    &rs, 0x40000 + (uint64_t)i * 3 * 512, i % 3 ? 512 : 1024);
	fh_rs_normalize(&rs);
	for (kind = 1; kind <= 3; kind++) {
		batch.batch_id = kind;
		batch.kind = kind;
		batch.has_pass_id = batch.has_last = kind == 3;
		batch.pass_id = batch.last = kind == 3;
		if (fh_batch_pack(&batch, &rs, scratch) != FH_OK)
			fatalx("fh_batch_pack");
		fh_frame_put(b, FH_MSG_RANGES, &batch.base);
		fh_frame_put(all, FH_MSG_RANGES, &batch.base);
		snprintf(name, sizeof name, "RangeBatch-%s", kinds[kind]);
		save(argv[1], name, whole, sizeof whole, b);
	}
	fh_rs_free(&rs);
	/* Every frame above in one stream, whole and in small chunks. */
	evbuffer_add(b, evbuffer_pullup(all, -1), evbuffer_get_length(all));
	save(argv[1], "stream", whole, sizeof whole, b);
	evbuffer_add(b, evbuffer_pullup(all, -1), evbuffer_get_length(all));
	save(argv[1], "stream-chunked", small, sizeof small, b);
	evbuffer_free(b);
	evbuffer_free(all);
	return 0;
}

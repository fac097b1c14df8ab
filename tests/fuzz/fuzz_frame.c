/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target: the whole path from a peer's bytes to a range set.
 *
 * Input: byte 0 is k (mod 16), the next k bytes are chunk sizes, the rest
 * is the stream. The stream is fed to an evbuffer in chunks of those sizes
 * (cycling; k = 0 feeds it whole) and every message is pulled as soon as
 * it is complete, as the peer module does. Range batches are unpacked with
 * a small maximum. Besides "no crash, no sanitizer report" it checks what
 * the decoder promises: an unpacked set is normal, below FH_PFN_LIMIT and
 * within the maximum, and a decoded message re-encodes and decodes again.
 */
#include <stdint.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include "common.h"

#define MAX_RANGES 64

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
static void check_message(const struct fh_msg *, struct fh_rangeset *);

static void
check_message(const struct fh_msg *m, struct fh_rangeset *rs)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	uint64_t scratch[2 * MAX_RANGES];
	struct fh_rangeset again;
	struct evbuffer *out;
	struct fh_msg m2;
	size_t i;

	out = evbuffer_new();
	if (out == NULL)
		abort();
	if (fh_msg_send(out, m) != FH_OK || fh_msg_pull(out, &m2) != FH_OK ||
	    m2.type != m->type || evbuffer_get_length(out) != 0)
		abort();
	fh_msg_free(&m2);
	evbuffer_free(out);

	if (m->type != FH_MSG_RANGES ||
	    fh_batch_unpack(m->u.ranges, rs, MAX_RANGES) != FH_OK)
		return;
	if (rs->n > MAX_RANGES || !fh_rs_is_normal(rs))
		abort();
	for (i = 0; i < rs->n; i++)
		if (rs->r[i].start + rs->r[i].npages > FH_PFN_LIMIT)
			abort();
	/* What we accept, we can send back unchanged. */
	fh_rs_init(&again);
	if (fh_batch_pack(&b, rs, scratch) != FH_OK ||
	    fh_batch_unpack(&b, &again, MAX_RANGES) != FH_OK ||
	    again.n != rs->n)
		abort();
	for (i = 0; i < rs->n; i++)
		if (again.r[i].start != rs->r[i].start ||
		    again.r[i].npages != rs->r[i].npages)
			abort();
	fh_rs_free(&again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *chunks;
	struct fh_rangeset rs;
	struct evbuffer *in;
	struct fh_msg m;
	size_t k, c = 0, len;
	int err = FH_ENEED;

	if (size < 1)
		return 0;
	k = data[0] % 16;
	if (size < 1 + k)
		return 0;
	chunks = data + 1;
	data += 1 + k;
	size -= 1 + k;
	if ((in = evbuffer_new()) == NULL)
		abort();
	fh_rs_init(&rs);
	while (size > 0) {
		len = k == 0 ? size : (size_t)chunks[c++ % k] + 1;
		if (len > size)
			len = size;
		if (evbuffer_add(in, data, len) != 0)
			abort();
		data += len;
		size -= len;
		for (;;) {
			err = fh_msg_pull(in, &m);
			if (err == FH_OK) {
				check_message(&m, &rs);
				fh_msg_free(&m);
			} else if (m.u.base != NULL)
				abort(); /* an error never hands out a message */
			if (err == FH_ENEED || FH_ERR_FATAL(err))
				break;
		}
		if (FH_ERR_FATAL(err))
			break; /* the peer module closes here */
	}
	fh_rs_free(&rs);
	evbuffer_free(in);
	return 0;
}

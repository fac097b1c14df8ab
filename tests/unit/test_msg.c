/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Message codec: every type round-trips field for field, and every check
 * fh_msg_decode makes refuses the value just past its domain while
 * accepting the value at its edge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include <event2/buffer.h>

#include "common.h"
#include "samples.h"

static int decode(uint8_t type, const ProtobufCMessage *);

/* Pack m and decode it back as type; returns the decoder's verdict. */
static int
decode(uint8_t type, const ProtobufCMessage *m)
{
	struct fh_msg out;
	uint8_t *buf;
	size_t len;
	int err;

	len = protobuf_c_message_get_packed_size(m);
	buf = malloc(len + 1);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(m, buf), len);
	err = fh_msg_decode(type, buf, len, &out);
	if (err == FH_OK) {
		assert_int_equal(out.type, type);
		fh_msg_free(&out);
	} else
		assert_null(out.u.base);
	assert_null(out.u.base);
	free(buf);
	return err;
}

static void
test_roundtrip(void **state)
{
	struct evbuffer *b = evbuffer_new();
	const ProtobufCMessage *orig;
	uint8_t a[512], c[512];
	struct fh_msg m;
	size_t la, lc;
	uint8_t t;

	for (t = 1; t <= FH_MSG_MAX; t++) {
		orig = sample_message(t);
		assert_int_equal(fh_frame_put(b, t, orig), FH_OK);
		assert_int_equal(evbuffer_get_length(b),
		    FH_HDR_SIZE + protobuf_c_message_get_packed_size(orig));
		assert_int_equal(fh_msg_pull(b, &m), FH_OK);
		assert_int_equal(m.type, t);
		assert_ptr_equal(m.u.base->descriptor, orig->descriptor);
		/* Same fields, same values: the same bytes on the wire. */
		la = protobuf_c_message_pack(orig, a);
		lc = protobuf_c_message_pack(m.u.base, c);
		assert_true(la > 0 && la <= sizeof a);
		assert_int_equal(la, lc);
		assert_memory_equal(a, c, la);
		/* And through fh_msg_send as well. */
		assert_int_equal(fh_msg_send(b, &m), FH_OK);
		fh_msg_free(&m);
		assert_null(m.u.base);
		assert_int_equal(fh_msg_pull(b, &m), FH_OK);
		assert_int_equal(m.type, t);
		fh_msg_free(&m);
		assert_int_equal(evbuffer_get_length(b), 0);
	}
	/* A few fields by name, in case both sides agree on a mistake. */
	fh_frame_put(b, FH_MSG_RANGES, sample_message(FH_MSG_RANGES));
	assert_int_equal(fh_msg_pull(b, &m), FH_OK);
	assert_int_equal(m.u.ranges->batch_id, 42);
	assert_int_equal(m.u.ranges->kind, FREEHINT__RANGE_KIND__HELD);
	assert_int_equal(m.u.ranges->n_gaps, 3);
	assert_int_equal(m.u.ranges->gaps[0], 0x100);
	assert_int_equal(m.u.ranges->lengths[2], 512);
	assert_true(m.u.ranges->has_last && m.u.ranges->last);
	fh_msg_free(&m);
	fh_frame_put(b, FH_MSG_COMMAND, sample_message(FH_MSG_COMMAND));
	assert_int_equal(fh_msg_pull(b, &m), FH_OK);
	assert_non_null(m.u.command->policy);
	assert_int_equal(
	    m.u.command->policy->mode, FREEHINT__MODE__RECORD_ONLY);
	fh_msg_free(&m);
	evbuffer_free(b);
}

static void
test_decode_args(void **state)
{
	const uint8_t buf[8] = { 0 };
	struct fh_msg m;

	assert_int_equal(fh_msg_decode(0, buf, 0, &m), FH_ETYPE);
	assert_int_equal(fh_msg_decode(FH_MSG_MAX + 1, buf, 0, &m), FH_ETYPE);
	assert_int_equal(
	    fh_msg_decode(FH_MSG_STATS, buf, FH_FRAME_MAX + 1, &m), FH_ESIZE);
	assert_null(m.u.base);
	/* Not protobuf: a field tag of 0 is invalid. */
	assert_int_equal(fh_msg_decode(FH_MSG_STATS, buf, 2, &m), FH_EDECODE);
	/* A length-delimited field running past the end. */
	assert_int_equal(fh_msg_decode(FH_MSG_ERROR,
	                     (const uint8_t *)"\x08\x01\x12\x7f", 4, &m),
	    FH_EDECODE);
	assert_int_equal(
	    fh_msg_decode(FH_MSG_ERROR, (const uint8_t *)"\x08\x01", 2, &m),
	    FH_OK);
	fh_msg_free(&m);
	/* Required fields missing. */
	assert_int_equal(fh_msg_decode(FH_MSG_HELLO, buf, 0, &m), FH_EDECODE);
	assert_int_equal(fh_msg_decode(FH_MSG_ACK, buf, 0, &m), FH_EDECODE);
}

static void
test_hello_domain(void **state)
{
	Freehint__Hello h =
	    *(const Freehint__Hello *)sample_message(FH_MSG_HELLO);
	static const uint32_t good_ps[] = { 4096, 8192, 16384, 65536 };
	static const uint32_t bad_ps[] = { 0, 1, 2048, 4095, 12288, 131072,
		UINT32_MAX };
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(good_ps); i++) {
		h.page_size = good_ps[i];
		assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_OK);
	}
	for (i = 0; i < FH_ARRAY_SIZE(bad_ps); i++) {
		h.page_size = bad_ps[i];
		assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_EFIELD);
	}
	h.page_size = 4096;
	h.max_pfn = 0;
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_EFIELD);
	h.max_pfn = FH_PFN_LIMIT;
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_EFIELD);
	h.max_pfn = UINT64_MAX;
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_EFIELD);
	h.max_pfn = FH_PFN_LIMIT - 1;
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_OK);
	h.report_order = 21;
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_EFIELD);
	h.has_report_order = 0; /* absent: not checked */
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_OK);
	h.has_report_order = 1;
	h.report_order = 20;
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_OK);
	h.poison_value = 0x100;
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_EFIELD);
	h.poison_value = 0xff;
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_OK);
}

static void
test_welcome_domain(void **state)
{
	Freehint__Welcome w =
	    *(const Freehint__Welcome *)sample_message(FH_MSG_WELCOME);

	w.mode = 0;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_EFIELD);
	w.mode = 4;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_EFIELD);
	w.mode = (Freehint__Mode)-1;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_EFIELD);
	w.mode = FREEHINT__MODE__ZERO_IN_GUEST;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_OK);
	w.min_order = 21;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_EFIELD);
	w.min_order = 20;
	w.max_batch_ranges = 0;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_EFIELD);
	w.max_batch_ranges = FH_BATCH_MAX_RANGES + 1;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_EFIELD);
	w.max_batch_ranges = FH_BATCH_MAX_RANGES;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_OK);
	w.max_inflight = 0;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_EFIELD);
	w.max_inflight = 1025;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_EFIELD);
	w.max_inflight = 1024;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_OK);
	w.has_max_batches_per_sec = true;
	w.max_batches_per_sec = 0;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_EFIELD);
	w.max_batches_per_sec = 1;
	assert_int_equal(decode(FH_MSG_WELCOME, &w.base), FH_OK);
}

static void
test_ranges_domain(void **state)
{
	Freehint__RangeBatch b =
	    *(const Freehint__RangeBatch *)sample_message(FH_MSG_RANGES);
	uint64_t *v;

	b.kind = 0;
	assert_int_equal(decode(FH_MSG_RANGES, &b.base), FH_EFIELD);
	b.kind = 4;
	assert_int_equal(decode(FH_MSG_RANGES, &b.base), FH_EFIELD);
	b.kind = FREEHINT__RANGE_KIND__HINT;
	b.unit_order = 41;
	assert_int_equal(decode(FH_MSG_RANGES, &b.base), FH_EFIELD);
	b.unit_order = 40;
	assert_int_equal(decode(FH_MSG_RANGES, &b.base), FH_OK);
	b.n_lengths = 2;
	assert_int_equal(decode(FH_MSG_RANGES, &b.base), FH_EFIELD);
	b.n_lengths = 0;
	assert_int_equal(decode(FH_MSG_RANGES, &b.base), FH_EFIELD);
	/* An empty batch is well formed (its meaning is the host's). */
	b.n_gaps = 0;
	assert_int_equal(decode(FH_MSG_RANGES, &b.base), FH_OK);
	v = calloc(FH_BATCH_MAX_RANGES + 1, sizeof *v);
	assert_non_null(v);
	b.gaps = b.lengths = v;
	b.n_gaps = b.n_lengths = FH_BATCH_MAX_RANGES;
	assert_int_equal(decode(FH_MSG_RANGES, &b.base), FH_OK);
	b.n_gaps = b.n_lengths = FH_BATCH_MAX_RANGES + 1;
	assert_int_equal(decode(FH_MSG_RANGES, &b.base), FH_ELIMIT);
	free(v);
}

static void
test_ack_domain(void **state)
{
	Freehint__Ack a = *(const Freehint__Ack *)sample_message(FH_MSG_ACK);
	static const Freehint__RejectReason reasons[] = {
		(Freehint__RejectReason)-1,
		FREEHINT__REJECT_REASON__BAD_VERSION + 1,
		FREEHINT__REJECT_REASON__DUPLICATE_ID,
	};
	size_t i;

	a.status = 0;
	assert_int_equal(decode(FH_MSG_ACK, &a.base), FH_EFIELD);
	a.status = 3;
	assert_int_equal(decode(FH_MSG_ACK, &a.base), FH_EFIELD);
	a.status = FREEHINT__ACK_STATUS__APPLIED;
	assert_int_equal(decode(FH_MSG_ACK, &a.base), FH_OK);
	/*
	 * Issue 12 changed this: a reason only explains a rejection, so an
	 * unknown one (a newer host's) still makes an Ack; the status, which
	 * decides what happens to the pages, is still checked.
	 */
	a.status = FREEHINT__ACK_STATUS__REJECTED;
	for (i = 0; i < FH_ARRAY_SIZE(reasons); i++) {
		a.reason = reasons[i];
		assert_int_equal(decode(FH_MSG_ACK, &a.base), FH_OK);
	}
	a.status = 3;
	assert_int_equal(decode(FH_MSG_ACK, &a.base), FH_EFIELD);
}

/* Unknown values where they decide nothing: Error.code, the result's. */
static void
test_unknown_values(void **state)
{
	Freehint__Error e =
	    *(const Freehint__Error *)sample_message(FH_MSG_ERROR);
	Freehint__CommandResult r =
	    *(const Freehint__CommandResult *)sample_message(
	        FH_MSG_COMMAND_RESULT);
	Freehint__RangeBatch b =
	    *(const Freehint__RangeBatch *)sample_message(FH_MSG_RANGES);

	e.code = r.code = 4000;
	/* The kind decides what may be discarded: still refused. */
	b.kind = 4;
	assert_int_equal(decode(FH_MSG_ERROR, &e.base), FH_OK);
	assert_int_equal(decode(FH_MSG_COMMAND_RESULT, &r.base), FH_OK);
	assert_int_equal(decode(FH_MSG_RANGES, &b.base), FH_EFIELD);
}

/* Hello states a range of message-set versions, never an inverted one. */
static void
test_hello_versions(void **state)
{
	/* proto_version, has_max_proto_version, max_proto_version, rc */
	static const struct {
		uint32_t min, has_max, max;
		int rc;
	} v[] = {
		{ 1, 1, 7, FH_OK }, { 3, 1, 3, FH_OK }, { 3, 1, 2, FH_EFIELD },
		{ 3, 0, 2, FH_OK }, /* no maximum: nothing to invert */
	};
	Freehint__Hello h =
	    *(const Freehint__Hello *)sample_message(FH_MSG_HELLO);
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(v); i++) {
		h.proto_version = v[i].min;
		h.has_max_proto_version = v[i].has_max;
		h.max_proto_version = v[i].max;
		assert_int_equal(decode(FH_MSG_HELLO, &h.base), v[i].rc);
	}
}

static void
test_command_domain(void **state)
{
	Freehint__Command c =
	    *(const Freehint__Command *)sample_message(FH_MSG_COMMAND);
	Freehint__Welcome p = *c.policy;
	static const Freehint__CommandType newer[] = { 6, 1000 };
	size_t i;

	c.policy = &p;
	c.type = 0;
	assert_int_equal(decode(FH_MSG_COMMAND, &c.base), FH_EFIELD);
	/* Issue 12: an unknown type (a newer host's) decodes; the agent
	 * answers it NOT_SUPPORTED (test_agent_session.c). */
	for (i = 0; i < FH_ARRAY_SIZE(newer); i++) {
		c.type = newer[i];
		assert_int_equal(decode(FH_MSG_COMMAND, &c.base), FH_OK);
	}
	c.type = FREEHINT__COMMAND_TYPE__SNAPSHOT;
	assert_int_equal(decode(FH_MSG_COMMAND, &c.base), FH_OK);
	c.min_order = 21;
	assert_int_equal(decode(FH_MSG_COMMAND, &c.base), FH_EFIELD);
	c.min_order = 0;
	/* A policy is a Welcome, checked wherever it comes. */
	p.mode = 9;
	assert_int_equal(decode(FH_MSG_COMMAND, &c.base), FH_EFIELD);
	c.type = FREEHINT__COMMAND_TYPE__SET_POLICY;
	assert_int_equal(decode(FH_MSG_COMMAND, &c.base), FH_EFIELD);
	p.mode = FREEHINT__MODE__DISCARD;
	assert_int_equal(decode(FH_MSG_COMMAND, &c.base), FH_OK);
	c.policy = NULL;
	assert_int_equal(decode(FH_MSG_COMMAND, &c.base), FH_EFIELD);
	c.type = FREEHINT__COMMAND_TYPE__HINT_PASS;
	assert_int_equal(decode(FH_MSG_COMMAND, &c.base), FH_OK);
}

static void
test_stats_domain(void **state)
{
	Freehint__Stats s =
	    *(const Freehint__Stats *)sample_message(FH_MSG_STATS);
	uint64_t v[65] = { 0 };

	s.free_blocks_by_order = v;
	s.n_free_blocks_by_order = 64;
	assert_int_equal(decode(FH_MSG_STATS, &s.base), FH_OK);
	s.n_free_blocks_by_order = 65;
	assert_int_equal(decode(FH_MSG_STATS, &s.base), FH_ELIMIT);
}

static void
test_unknown_fields(void **state)
{
	/* Error{code=1, field 99=5, field 0 as an overlong tag=0x32}. */
	static const uint8_t err[] = { 0x08, 0x01, 0x98, 0x06, 0x05, 0x80, 0x00,
		0x32 };
	/* Command{SET_POLICY, policy=Welcome{1, DISCARD, field 15=1}}. */
	static const uint8_t cmd[] = { 0x08, 0x03, 0x32, 0x06, 0x08, 0x01, 0x10,
		0x01, 0x78, 0x01 };
	struct fh_msg m;

	/* Accepted, for newer peers; dropped, so never kept or re-sent. */
	assert_int_equal(
	    fh_msg_decode(FH_MSG_ERROR, err, sizeof err, &m), FH_OK);
	assert_int_equal(m.u.error->code, 1);
	assert_int_equal(m.u.base->n_unknown_fields, 0);
	assert_int_equal(protobuf_c_message_get_packed_size(m.u.base), 2);
	fh_msg_free(&m);
	assert_int_equal(
	    fh_msg_decode(FH_MSG_COMMAND, cmd, sizeof cmd, &m), FH_OK);
	assert_non_null(m.u.command->policy);
	assert_int_equal(m.u.command->policy->base.n_unknown_fields, 0);
	assert_int_equal(protobuf_c_message_get_packed_size(m.u.base), 8);
	fh_msg_free(&m);
}

static void
test_strings(void **state)
{
	Freehint__Hello h =
	    *(const Freehint__Hello *)sample_message(FH_MSG_HELLO);
	Freehint__Command c =
	    *(const Freehint__Command *)sample_message(FH_MSG_COMMAND);
	Freehint__Welcome p = *c.policy;
	char s[FH_STRING_MAX + 2];

	h.agent_version = "0.1.0-\xc3\xa9"; /* UTF-8 is fine */
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_OK);
	h.agent_version = "0.1.0\nfreehintd: forged log line";
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_EFIELD);
	h.agent_version = "x\x7f";
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_EFIELD);
	h.agent_version = "ok";
	h.kernel_release = "6.1\t";
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_EFIELD);
	h.kernel_release = NULL;
	memset(s, 'a', sizeof s - 1);
	s[FH_STRING_MAX + 1] = '\0';
	h.agent_version = s;
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_EFIELD);
	s[FH_STRING_MAX] = '\0';
	assert_int_equal(decode(FH_MSG_HELLO, &h.base), FH_OK);
	/* Inside a nested message too. */
	c.policy = &p;
	p.reason = "a\rb";
	assert_int_equal(decode(FH_MSG_COMMAND, &c.base), FH_EFIELD);
	p.reason = "ab";
	assert_int_equal(decode(FH_MSG_COMMAND, &c.base), FH_OK);
}

static void
test_send_mismatch(void **state)
{
	Freehint__Hello h =
	    *(const Freehint__Hello *)sample_message(FH_MSG_HELLO);
	struct evbuffer *b = evbuffer_new();
	struct fh_msg m = { 0 };

	m.type = FH_MSG_ACK;
	assert_int_equal(fh_msg_send(b, &m), FH_ETYPE);
	m.u.hello = &h;
	assert_int_equal(fh_msg_send(b, &m), FH_ETYPE);
	m.type = 0;
	assert_int_equal(fh_msg_send(b, &m), FH_ETYPE);
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);
}

static void
test_names(void **state)
{
	const char *seen[16];
	int e, i;

	for (e = FH_OK; e >= FH_ETRUNC; e--) {
		seen[-e] = fh_strerror(e);
		assert_string_not_equal(seen[-e], "unknown error");
		for (i = 0; i < -e; i++)
			assert_string_not_equal(seen[i], seen[-e]);
	}
	assert_string_equal(fh_strerror(-99), "unknown error");
	assert_string_equal(fh_msg_name(FH_MSG_RANGES), "RangeBatch");
	assert_string_equal(fh_msg_name(0), "unknown");
	assert_string_equal(fh_msg_name(FH_MSG_MAX + 1), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_decode_args),
		cmocka_unit_test(test_hello_domain),
		cmocka_unit_test(test_welcome_domain),
		cmocka_unit_test(test_ranges_domain),
		cmocka_unit_test(test_ack_domain),
		cmocka_unit_test(test_unknown_values),
		cmocka_unit_test(test_hello_versions),
		cmocka_unit_test(test_command_domain),
		cmocka_unit_test(test_stats_domain),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_send_mismatch),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

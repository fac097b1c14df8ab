/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One representative message of every type, with every field set, for the
 * codec tests and the fuzz corpus generator. Static storage: the returned
 * message is valid until the next call for the same type.
 */
#ifndef FREEHINT_TEST_SAMPLES_H
#define FREEHINT_TEST_SAMPLES_H

#include "proto.h"

static const ProtobufCMessage *sample_message(uint8_t type)
    __attribute__((unused));

static const ProtobufCMessage *
sample_message(uint8_t type)
{
	static uint64_t gaps[] = { 0x100, 3, 7 }, lens[] = { 2, 1, 512 };
	static uint64_t orders[] = { 10, 5, 3, 0, 1, 0, 0, 0, 0, 0, 2 };
	static char agent[] = "0.1.0", kernel[] = "6.1.0-26-amd64";
	static char why[] = "shared memory backing", text[] = "bad range";
	static Freehint__Hello hello = FREEHINT__HELLO__INIT;
	static Freehint__Welcome welcome = FREEHINT__WELCOME__INIT;
	static Freehint__Welcome policy = FREEHINT__WELCOME__INIT;
	static Freehint__RangeBatch batch = FREEHINT__RANGE_BATCH__INIT;
	static Freehint__Ack ack = FREEHINT__ACK__INIT;
	static Freehint__Command cmd = FREEHINT__COMMAND__INIT;
	static Freehint__Stats stats = FREEHINT__STATS__INIT;
	static Freehint__Error error = FREEHINT__ERROR__INIT;
	static Freehint__CommandResult result = FREEHINT__COMMAND_RESULT__INIT;

	switch (type) {
	case FH_MSG_HELLO:
		hello.proto_version = FH_PROTO_VERSION;
		hello.agent_version = agent;
		hello.page_size = 4096;
		hello.ram_bytes = 16ULL << 30;
		hello.max_pfn = 0x440000;
		hello.kernel_release = kernel;
		hello.has_page_poisoning = hello.page_poisoning = 1;
		hello.has_init_on_free = 1;
		hello.has_poison_value = 1;
		hello.poison_value = 0xaa;
		hello.has_capabilities = 1;
		hello.capabilities = 15;
		hello.has_report_order = 1;
		hello.report_order = 9;
		hello.has_max_proto_version = 1;
		hello.max_proto_version = FH_PROTO_MAX;
		return &hello.base;
	case FH_MSG_WELCOME:
		welcome.proto_version = FH_PROTO_VERSION;
		welcome.mode = FREEHINT__MODE__DISCARD;
		welcome.reason = why;
		welcome.has_min_order = 1;
		welcome.min_order = 9;
		welcome.has_max_batch_ranges = 1;
		welcome.max_batch_ranges = 1024;
		welcome.has_max_inflight = 1;
		welcome.max_inflight = 4;
		welcome.has_stats_interval_ms = 1;
		welcome.stats_interval_ms = 10000;
		welcome.has_capabilities = 1;
		welcome.capabilities = 7;
		return &welcome.base;
	case FH_MSG_RANGES:
		batch.batch_id = 42;
		batch.kind = FREEHINT__RANGE_KIND__HELD;
		batch.has_unit_order = 1;
		batch.unit_order = 9;
		batch.n_gaps = batch.n_lengths = 3;
		batch.gaps = gaps;
		batch.lengths = lens;
		batch.has_pass_id = 1;
		batch.pass_id = 7;
		batch.has_last = batch.last = 1;
		return &batch.base;
	case FH_MSG_ACK:
		ack.batch_id = 42;
		ack.status = FREEHINT__ACK_STATUS__REJECTED;
		ack.has_reason = 1;
		ack.reason = FREEHINT__REJECT_REASON__OUT_OF_RANGE;
		ack.detail = text;
		ack.has_bytes_discarded = 1;
		ack.bytes_discarded = 0;
		ack.has_ranges_applied = 1;
		return &ack.base;
	case FH_MSG_COMMAND:
		policy.proto_version = FH_PROTO_VERSION;
		policy.mode = FREEHINT__MODE__RECORD_ONLY;
		cmd.type = FREEHINT__COMMAND_TYPE__SET_POLICY;
		cmd.has_pass_id = 1;
		cmd.pass_id = 7;
		cmd.has_min_order = 1;
		cmd.min_order = 9;
		cmd.has_byte_limit = 1;
		cmd.byte_limit = 1ULL << 32;
		cmd.has_zero = 1;
		cmd.policy = &policy;
		cmd.has_id = 1;
		cmd.id = 3;
		return &cmd.base;
	case FH_MSG_STATS:
		stats.has_free_bytes = 1;
		stats.free_bytes = 8ULL << 30;
		stats.n_free_blocks_by_order = 11;
		stats.free_blocks_by_order = orders;
		stats.has_held_bytes = 1;
		stats.has_batches_sent = 1;
		stats.batches_sent = 100;
		stats.has_batches_acked = 1;
		stats.batches_acked = 99;
		stats.has_bytes_reported = 1;
		stats.bytes_reported = 1ULL << 33;
		stats.last_error = text;
		stats.has_pass_id = 1;
		stats.pass_id = 7;
		return &stats.base;
	case FH_MSG_ERROR:
		error.code = FREEHINT__REJECT_REASON__MALFORMED;
		error.detail = text;
		error.has_fatal = error.fatal = 1;
		return &error.base;
	case FH_MSG_COMMAND_RESULT:
		result.id = 3;
		result.ok = 0;
		result.has_code = 1;
		result.code = FREEHINT__REJECT_REASON__NOT_SUPPORTED;
		result.detail = text;
		return &result.base;
	}
	return NULL;
}

#endif

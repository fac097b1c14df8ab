/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Message decoding: the one place where bytes from a peer become messages.
 * Each type is unpacked with its protobuf-c descriptor and then checked
 * for values protobuf cannot express (enum domains, limits).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "proto.h"

static void drop_unknown(ProtobufCMessage *);
static int check_strings(const ProtobufCMessage *);
static int check_hello(const Freehint__Hello *);
static int check_welcome(const Freehint__Welcome *);
static int check_ranges(const Freehint__RangeBatch *);
static int check_ack(const Freehint__Ack *);
static int check_command(const Freehint__Command *);
static int check_stats(const Freehint__Stats *);
static int check_error(const Freehint__Error *);
static int check_result(const Freehint__CommandResult *);

static const struct {
	const char *name;
	const ProtobufCMessageDescriptor *desc;
} msg_types[FH_MSG_MAX + 1] = {
	[FH_MSG_HELLO] = { "Hello", &freehint__hello__descriptor },
	[FH_MSG_WELCOME] = { "Welcome", &freehint__welcome__descriptor },
	[FH_MSG_RANGES] = { "RangeBatch", &freehint__range_batch__descriptor },
	[FH_MSG_ACK] = { "Ack", &freehint__ack__descriptor },
	[FH_MSG_COMMAND] = { "Command", &freehint__command__descriptor },
	[FH_MSG_STATS] = { "Stats", &freehint__stats__descriptor },
	[FH_MSG_ERROR] = { "Error", &freehint__error__descriptor },
	[FH_MSG_COMMAND_RESULT] = { "CommandResult",
	    &freehint__command_result__descriptor },
};

/* Each type's checker, called through its own member of the union. */
static int
check_msg(const struct fh_msg *m)
{
	switch (m->type) {
	case FH_MSG_HELLO:
		return check_hello(m->u.hello);
	case FH_MSG_WELCOME:
		return check_welcome(m->u.welcome);
	case FH_MSG_RANGES:
		return check_ranges(m->u.ranges);
	case FH_MSG_ACK:
		return check_ack(m->u.ack);
	case FH_MSG_COMMAND:
		return check_command(m->u.command);
	case FH_MSG_STATS:
		return check_stats(m->u.stats);
	case FH_MSG_ERROR:
		return check_error(m->u.error);
	case FH_MSG_COMMAND_RESULT:
		return check_result(m->u.result);
	}
	return FH_ETYPE;
}

const char *
fh_strerror(int err)
{
	switch (err) {
	case FH_OK:
		return "success";
	case FH_ENEED:
		return "incomplete frame";
	case FH_EMAGIC:
		return "bad magic";
	case FH_EVERSION:
		return "unsupported protocol version";
	case FH_ETYPE:
		return "unknown message type";
	case FH_ESIZE:
		return "frame too large";
	case FH_EFLAGS:
		return "reserved header bits set";
	case FH_EDECODE:
		return "malformed message";
	case FH_EFIELD:
		return "field value out of range";
	case FH_EORDER:
		return "ranges unsorted, overlapping or adjacent";
	case FH_ELIMIT:
		return "too many ranges";
	case FH_EOVERFLOW:
		return "page frame number overflow";
	case FH_ENOMEM:
		return "out of memory";
	case FH_ETRUNC:
		return "stream ended inside a frame";
	}
	return "unknown error";
}

const char *
fh_msg_name(uint8_t type)
{
	if (type == 0 || type > FH_MSG_MAX)
		return "unknown";
	return msg_types[type].name;
}

int
fh_msg_decode(uint8_t type, const uint8_t *buf, size_t len, struct fh_msg *m)
{
	int err;

	memset(m, 0, sizeof *m);
	if (type == 0 || type > FH_MSG_MAX)
		return FH_ETYPE;
	if (len > FH_FRAME_MAX)
		return FH_ESIZE;
	m->u.base =
	    protobuf_c_message_unpack(msg_types[type].desc, NULL, len, buf);
	if (m->u.base == NULL)
		return FH_EDECODE;
	m->type = type;
	drop_unknown(m->u.base);
	if ((err = check_strings(m->u.base)) != FH_OK ||
	    (err = check_msg(m)) != FH_OK) {
		fh_msg_free(m);
		return err;
	}
	return FH_OK;
}

/*
 * Take one whole frame off the front of an input buffer and decode it.
 * FH_ENEED leaves the buffer untouched. Any other error consumes the frame
 * when its header was sound, so that the caller may carry on; after a
 * fatal error (FH_ERR_FATAL) the stream cannot be trusted and must close.
 */
int
fh_msg_pull(struct evbuffer *in, struct fh_msg *m)
{
	uint8_t hdr[FH_HDR_SIZE];
	struct fh_frame_hdr h;
	const uint8_t *payload;
	size_t have;
	int err;

	memset(m, 0, sizeof *m);
	have = evbuffer_get_length(in);
	if (have < FH_HDR_SIZE)
		return FH_ENEED;
	if (evbuffer_copyout(in, hdr, sizeof hdr) != (ssize_t)sizeof hdr)
		return FH_ENEED;
	err = fh_hdr_unpack(hdr, &h);
	if (err != FH_OK && err != FH_ETYPE)
		return err;
	if (have - FH_HDR_SIZE < h.length)
		return FH_ENEED;
	if (err == FH_ETYPE) {
		evbuffer_drain(in, FH_HDR_SIZE + h.length);
		return FH_ETYPE;
	}
	payload = evbuffer_pullup(in, FH_HDR_SIZE + h.length);
	if (payload == NULL)
		return FH_ENOMEM;
	err = fh_msg_decode(h.type, payload + FH_HDR_SIZE, h.length, m);
	evbuffer_drain(in, FH_HDR_SIZE + h.length);
	return err;
}

void
fh_msg_free(struct fh_msg *m)
{
	if (m->u.base != NULL)
		protobuf_c_message_free_unpacked(m->u.base, NULL);
	memset(m, 0, sizeof *m);
}

int
fh_msg_send(struct evbuffer *out, const struct fh_msg *m)
{
	if (m->type == 0 || m->type > FH_MSG_MAX || m->u.base == NULL ||
	    m->u.base->descriptor != msg_types[m->type].desc)
		return FH_ETYPE;
	return fh_frame_put(out, m->type, m->u.base);
}

/*
 * Forget fields this version does not know (a newer peer's additions, or
 * junk): nothing reads them, and protobuf-c would otherwise keep them in
 * memory and write them back out if the message were ever re-sent.
 */
static void
drop_unknown(ProtobufCMessage *m)
{
	const ProtobufCFieldDescriptor *f;
	ProtobufCMessage *sub;
	unsigned i;

	for (i = 0; i < m->n_unknown_fields; i++)
		free(m->unknown_fields[i].data);
	free(m->unknown_fields);
	m->unknown_fields = NULL;
	m->n_unknown_fields = 0;
	for (i = 0; i < m->descriptor->n_fields; i++) {
		f = &m->descriptor->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE ||
		    f->label == PROTOBUF_C_LABEL_REPEATED)
			continue;
		memcpy(&sub, (char *)m + f->offset, sizeof sub);
		if (sub != NULL)
			drop_unknown(sub);
	}
}

/*
 * Strings from a peer end up in logs and in freehintctl's output: no
 * control characters (a newline would forge a log line), and short.
 */
static int
check_strings(const ProtobufCMessage *m)
{
	const ProtobufCFieldDescriptor *f;
	const ProtobufCMessage *sub;
	const char *str;
	size_t len;
	unsigned i;

	for (i = 0; i < m->descriptor->n_fields; i++) {
		f = &m->descriptor->fields[i];
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			continue;
		if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			memcpy(&sub, (const char *)m + f->offset, sizeof sub);
			if (sub != NULL && check_strings(sub) != FH_OK)
				return FH_EFIELD;
			continue;
		}
		if (f->type != PROTOBUF_C_TYPE_STRING)
			continue;
		memcpy(&str, (const char *)m + f->offset, sizeof str);
		if (str == NULL)
			continue;
		if ((len = strnlen(str, FH_STRING_MAX + 1)) > FH_STRING_MAX)
			return FH_EFIELD;
		while (len-- > 0)
			if ((unsigned char)str[len] < 0x20 || str[len] == 0x7f)
				return FH_EFIELD;
	}
	return FH_OK;
}

static int
check_hello(const Freehint__Hello *h)
{
	/* Page sizes are powers of two between 4 KiB and 64 KiB. */
	if (h->page_size < 4096 || h->page_size > 65536 ||
	    (h->page_size & (h->page_size - 1)) != 0)
		return FH_EFIELD;
	if (h->max_pfn == 0 || h->max_pfn >= FH_PFN_LIMIT)
		return FH_EFIELD;
	if (h->has_report_order && h->report_order > 20)
		return FH_EFIELD;
	if (h->has_poison_value && h->poison_value > 0xff)
		return FH_EFIELD;
	/* A range, not an empty set: the receiver answers BAD_VERSION to a
	 * range it does not meet, but an inverted one is nonsense. */
	if (h->has_max_proto_version && h->max_proto_version < h->proto_version)
		return FH_EFIELD;
	return FH_OK;
}

static int
check_welcome(const Freehint__Welcome *w)
{
	if (w->mode < FREEHINT__MODE__DISCARD ||
	    w->mode > FREEHINT__MODE__RECORD_ONLY)
		return FH_EFIELD;
	if (w->has_min_order && w->min_order > 20)
		return FH_EFIELD;
	if (w->has_max_batch_ranges &&
	    (w->max_batch_ranges == 0 ||
	        w->max_batch_ranges > FH_BATCH_MAX_RANGES))
		return FH_EFIELD;
	if (w->has_max_inflight &&
	    (w->max_inflight == 0 || w->max_inflight > 1024))
		return FH_EFIELD;
	if (w->has_max_batches_per_sec && w->max_batches_per_sec == 0)
		return FH_EFIELD;
	return FH_OK;
}

static int
check_ranges(const Freehint__RangeBatch *b)
{
	if (b->kind < FREEHINT__RANGE_KIND__HINT ||
	    b->kind > FREEHINT__RANGE_KIND__HELD)
		return FH_EFIELD;
	if (b->has_unit_order && b->unit_order > 40)
		return FH_EFIELD;
	if (b->n_gaps != b->n_lengths)
		return FH_EFIELD;
	if (b->n_gaps > FH_BATCH_MAX_RANGES)
		return FH_ELIMIT;
	return FH_OK;
}

static int
check_ack(const Freehint__Ack *a)
{
	/* The status decides what the guest does with its pages. The reason
	 * only explains a rejection: a newer host's reason is still one. */
	if (a->status != FREEHINT__ACK_STATUS__APPLIED &&
	    a->status != FREEHINT__ACK_STATUS__REJECTED)
		return FH_EFIELD;
	return FH_OK;
}

static int
check_command(const Freehint__Command *c)
{
	/* An unknown type (a newer host's) is answered by the receiver with
	 * NOT_SUPPORTED; 0 was never a command. */
	if (c->type == FREEHINT__COMMAND_TYPE__COMMAND_UNSPECIFIED)
		return FH_EFIELD;
	if (c->has_min_order && c->min_order > 20)
		return FH_EFIELD;
	if (c->type == FREEHINT__COMMAND_TYPE__SET_POLICY && c->policy == NULL)
		return FH_EFIELD;
	/* A policy is checked wherever it appears: it is a Welcome. */
	if (c->policy != NULL && check_welcome(c->policy) != FH_OK)
		return FH_EFIELD;
	return FH_OK;
}

static int
check_stats(const Freehint__Stats *s)
{
	/* One entry per buddy order; no kernel has more than 64. */
	if (s->n_free_blocks_by_order > 64)
		return FH_ELIMIT;
	return FH_OK;
}

/* Error.code and CommandResult.code: any RejectReason, known or not. */
static int
check_error(const Freehint__Error *e)
{
	return FH_OK;
}

static int
check_result(const Freehint__CommandResult *r)
{
	return FH_OK;
}

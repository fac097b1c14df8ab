/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The freehint wire protocol: framing, message codec and range batches.
 * Both daemons link this code; nothing else decodes what a peer sends.
 */
#ifndef FREEHINT_PROTO_H
#define FREEHINT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "freehint.pb-c.h"

struct evbuffer;
struct fh_rangeset;

/* The frame header's version byte: this framing, whatever the messages. */
#define FH_FRAME_VERSION 1
/* Message-set versions (Hello, Welcome): this code speaks 1 to 2. Set 2
 * adds Welcome.capabilities, Command.id and CommandResult. */
#define FH_PROTO_MIN     1
#define FH_PROTO_MAX     2
#define FH_PROTO_VERSION FH_PROTO_MIN
#define FH_MAGIC         0x46484e54U /* "FHNT" */
/*
 * virtio-serial resynchronisation: an agent writes FH_SYNC_LEN 0xff bytes
 * before its Hello; a reader that lost the frame boundaries skips to the
 * next run of them followed by a Hello header (fh_sync_find).
 */
#define FH_SYNC_BYTE 0xff
#define FH_SYNC_LEN  4
#define FH_SYNC_MARK (FH_SYNC_LEN + 6) /* the run, magic, version, type */
#define FH_HDR_SIZE  12
/* No frame is larger; checked before anything is allocated. */
#define FH_FRAME_MAX (256 * 1024)
/* No batch carries more ranges, whatever a policy says. */
#define FH_BATCH_MAX_RANGES 16384
/* Guest-physical frame numbers fit in 52 bits on every architecture. */
#define FH_PFN_LIMIT (1ULL << 52)
/* Longest string field a peer may send, in bytes; no control characters. */
#define FH_STRING_MAX 1024

enum fh_msg_type {
	FH_MSG_HELLO = 1,
	FH_MSG_WELCOME = 2,
	FH_MSG_RANGES = 3,
	FH_MSG_ACK = 4,
	FH_MSG_COMMAND = 5,
	FH_MSG_STATS = 6,
	FH_MSG_ERROR = 7,
	FH_MSG_COMMAND_RESULT = 8,
	FH_MSG_MAX = FH_MSG_COMMAND_RESULT
};

/* Errors of the codec; negative, so that 0 and positive mean success. */
enum fh_err {
	FH_OK = 0,
	FH_ENEED = -1, /* not a whole frame yet */
	FH_EMAGIC = -2, /* bad magic: the stream is not ours */
	FH_EVERSION = -3, /* protocol version we do not speak */
	FH_ETYPE = -4, /* unknown message type */
	FH_ESIZE = -5, /* frame larger than FH_FRAME_MAX */
	FH_EFLAGS = -6, /* reserved header bits set */
	FH_EDECODE = -7, /* payload is not a valid message */
	FH_EFIELD = -8, /* a field has a value out of its domain */
	FH_EORDER = -9, /* ranges unsorted, overlapping or adjacent */
	FH_ELIMIT = -10, /* more ranges than allowed */
	FH_EOVERFLOW = -11, /* pfn arithmetic wraps or passes FH_PFN_LIMIT */
	FH_ENOMEM = -12,
	FH_ETRUNC = -13 /* stream ended inside a frame */
};

/* True for errors after which the byte stream cannot be resynchronised. */
#define FH_ERR_FATAL(e)                                               \
	((e) == FH_EMAGIC || (e) == FH_EVERSION || (e) == FH_ESIZE || \
	    (e) == FH_EFLAGS || (e) == FH_ETRUNC)

/* frame.c */
struct fh_frame_hdr {
	uint32_t magic;
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t length;
};

void fh_hdr_pack(uint8_t out[FH_HDR_SIZE], uint8_t type, uint32_t length);
int fh_hdr_unpack(const uint8_t in[FH_HDR_SIZE], struct fh_frame_hdr *);
int fh_frame_put(struct evbuffer *, uint8_t type, const ProtobufCMessage *);
int fh_sync_put(struct evbuffer *);
long fh_sync_find(const uint8_t *, size_t);

/* msg.c */
struct fh_msg {
	uint8_t type;
	union {
		ProtobufCMessage *base;
		Freehint__Hello *hello;
		Freehint__Welcome *welcome;
		Freehint__RangeBatch *ranges;
		Freehint__Ack *ack;
		Freehint__Command *command;
		Freehint__Stats *stats;
		Freehint__Error *error;
		Freehint__CommandResult *result;
	} u;
};

const char *fh_strerror(int);
const char *fh_msg_name(uint8_t type);
int fh_msg_decode(uint8_t type, const uint8_t *, size_t, struct fh_msg *);
int fh_msg_pull(struct evbuffer *, struct fh_msg *);
void fh_msg_free(struct fh_msg *);
int fh_msg_send(struct evbuffer *, const struct fh_msg *);

/* batch.c */
size_t fh_batch_max_encoded(size_t nranges);
int fh_batch_pack(
    Freehint__RangeBatch *, const struct fh_rangeset *, uint64_t *scratch);
int fh_batch_unpack(
    const Freehint__RangeBatch *, struct fh_rangeset *, size_t max_ranges);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Frame headers: magic, version, type, flags and length, big-endian.
 * A header is checked whole before its payload is looked at.
 */
#include <arpa/inet.h>
#include <string.h>

#include <event2/buffer.h>

#include "proto.h"

void
fh_hdr_pack(uint8_t out[FH_HDR_SIZE], uint8_t type, uint32_t length)
{
	uint32_t magic = htonl(FH_MAGIC), len = htonl(length);

	memcpy(out, &magic, 4);
	out[4] = FH_FRAME_VERSION;
	out[5] = type;
	out[6] = 0;
	out[7] = 0;
	memcpy(out + 8, &len, 4);
}

int
fh_hdr_unpack(const uint8_t in[FH_HDR_SIZE], struct fh_frame_hdr *h)
{
	uint32_t v;
	uint16_t f;

	memcpy(&v, in, 4);
	h->magic = ntohl(v);
	h->version = in[4];
	h->type = in[5];
	memcpy(&f, in + 6, 2);
	h->flags = ntohs(f);
	memcpy(&v, in + 8, 4);
	h->length = ntohl(v);

	if (h->magic != FH_MAGIC)
		return FH_EMAGIC;
	if (h->version != FH_FRAME_VERSION)
		return FH_EVERSION;
	if (h->flags != 0)
		return FH_EFLAGS;
	if (h->length > FH_FRAME_MAX)
		return FH_ESIZE;
	if (h->type == 0 || h->type > FH_MSG_MAX)
		return FH_ETYPE;
	return FH_OK;
}

/*
 * Append one framed message to an output buffer. Header and payload are
 * reserved and committed together: on any error nothing is appended, so a
 * failed send never leaves half a frame that would desynchronise the peer.
 */
int
fh_frame_put(struct evbuffer *out, uint8_t type, const ProtobufCMessage *m)
{
	struct evbuffer_iovec vec;
	size_t len;

	if (type == 0 || type > FH_MSG_MAX)
		return FH_ETYPE;
	len = protobuf_c_message_get_packed_size(m);
	if (len > FH_FRAME_MAX)
		return FH_ESIZE;
	if (evbuffer_reserve_space(out, FH_HDR_SIZE + len, &vec, 1) != 1 ||
	    vec.iov_len < FH_HDR_SIZE + len)
		return FH_ENOMEM;
	fh_hdr_pack(vec.iov_base, type, (uint32_t)len);
	if (protobuf_c_message_pack(m, (uint8_t *)vec.iov_base + FH_HDR_SIZE) !=
	    len)
		return FH_ENOMEM;
	vec.iov_len = FH_HDR_SIZE + len;
	if (evbuffer_commit_space(out, &vec, 1) != 0)
		return FH_ENOMEM;
	return FH_OK;
}

/* The run of sync bytes an agent writes before Hello on virtio-serial. */
int
fh_sync_put(struct evbuffer *out)
{
	static const uint8_t sync[FH_SYNC_LEN] = { FH_SYNC_BYTE, FH_SYNC_BYTE,
		FH_SYNC_BYTE, FH_SYNC_BYTE };

	return evbuffer_add(out, sync, sizeof sync) == 0 ? FH_OK : FH_ENOMEM;
}

/*
 * Where in buf the next sync mark starts: FH_SYNC_LEN sync bytes followed
 * by the first six bytes of a Hello header (magic, version, type). Returns
 * the offset of the Hello header, or -1 when there is none (a mark may
 * still begin in the last FH_SYNC_MARK - 1 bytes).
 */
long
fh_sync_find(const uint8_t *buf, size_t len)
{
	uint8_t mark[FH_SYNC_MARK];
	uint32_t magic = htonl(FH_MAGIC);
	size_t i;

	memset(mark, FH_SYNC_BYTE, FH_SYNC_LEN);
	memcpy(mark + FH_SYNC_LEN, &magic, 4);
	mark[FH_SYNC_LEN + 4] = FH_FRAME_VERSION;
	mark[FH_SYNC_LEN + 5] = FH_MSG_HELLO;
	for (i = 0; i + FH_SYNC_MARK <= len; i++) {
		if (buf[i] == FH_SYNC_BYTE &&
		    memcmp(buf + i, mark, FH_SYNC_MARK) == 0)
			return (long)(i + FH_SYNC_LEN);
	}
	return -1;
}

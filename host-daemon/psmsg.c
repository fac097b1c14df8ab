/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Messages between freehintd's two processes (privsep.c), on a
 * SOCK_SEQPACKET socketpair: one record per message, a header (type,
 * payload length, request id) and the payload, with descriptors beside
 * it (SCM_RIGHTS). Payloads are written and read field by field; the
 * reader checks every length, so a message from a process taken over by
 * a guest is refused, never trusted. What cannot be sent at once waits
 * in order for the socket to drain; nothing blocks the loop.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "freehintd.h"

struct ps_hdr {
	uint32_t type;
	uint32_t len; /* of the payload */
	uint64_t id;
};

struct ps_out {
	struct ps_hdr h;
	uint8_t *data;
	int fds[PS_MAX_FDS];
	int nfds;
	TAILQ_ENTRY(ps_out) entry;
};

struct ps_chan {
	int fd;
	struct event *rev, *wev;
	TAILQ_HEAD(, ps_out) out;
	const struct ps_handler *handlers;
	size_t nhandlers;
	void (*lost)(struct ps_chan *, const char *);
	void *arg;
	uint8_t *rbuf;
	bool dead;
};

static void ps_read(evutil_socket_t, short, void *);
static void ps_write(evutil_socket_t, short, void *);
static int ps_try_send(struct ps_chan *, struct ps_out *);
static void ps_out_free(struct ps_out *);
static void ps_fail(struct ps_chan *, const char *);

struct ps_chan *
ps_chan_new(struct event_base *base, int fd, const struct ps_handler *h,
    size_t nh, void (*lost)(struct ps_chan *, const char *), void *arg)
{
	struct ps_chan *c;

	c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->handlers = h;
	c->nhandlers = nh;
	c->lost = lost;
	c->arg = arg;
	c->rbuf = xmalloc(sizeof(struct ps_hdr) + PS_MAX_PAYLOAD);
	TAILQ_INIT(&c->out);
	evutil_make_socket_nonblocking(fd);
	c->rev = event_new(base, fd, EV_READ | EV_PERSIST, ps_read, c);
	c->wev = event_new(base, fd, EV_WRITE, ps_write, c);
	if (c->rev == NULL || c->wev == NULL || event_add(c->rev, NULL) != 0)
		fatalx("%s: event_new", __func__);
	return c;
}

void
ps_chan_free(struct ps_chan *c)
{
	struct ps_out *o;

	if (c == NULL)
		return;
	while ((o = TAILQ_FIRST(&c->out)) != NULL) {
		TAILQ_REMOVE(&c->out, o, entry);
		ps_out_free(o);
	}
	event_free(c->rev);
	event_free(c->wev);
	close(c->fd);
	free(c->rbuf);
	free(c);
}

void *
ps_chan_arg(const struct ps_chan *c)
{
	return c->arg;
}

static void
ps_out_free(struct ps_out *o)
{
	int i;

	for (i = 0; i < o->nfds; i++)
		close(o->fds[i]);
	free(o->data);
	free(o);
}

/* A broken channel is told once, from the loop's point of view. */
static void
ps_fail(struct ps_chan *c, const char *why)
{
	if (c->dead)
		return;
	c->dead = true;
	event_del(c->rev);
	event_del(c->wev);
	c->lost(c, why);
}

/* 0 sent, 1 would block, -1 failed. */
static int
ps_try_send(struct ps_chan *c, struct ps_out *o)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * PS_MAX_FDS)];
	} cm;
	struct iovec iov[2];
	struct msghdr mh;
	struct cmsghdr *cmsg;
	ssize_t n;

	memset(&mh, 0, sizeof mh);
	iov[0].iov_base = &o->h;
	iov[0].iov_len = sizeof o->h;
	iov[1].iov_base = o->data;
	iov[1].iov_len = o->h.len;
	mh.msg_iov = iov;
	mh.msg_iovlen = o->h.len != 0 ? 2 : 1;
	if (o->nfds > 0) {
		memset(&cm, 0, sizeof cm);
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)o->nfds);
		cmsg = CMSG_FIRSTHDR(&mh);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)o->nfds);
		memcpy(CMSG_DATA(cmsg), o->fds, sizeof(int) * (size_t)o->nfds);
	}
	do
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 1;
	return n == -1 ? -1 : 0;
}

/*
 * Send a message: the buffer's payload and its descriptors (duplicates,
 * taken by the caller's ps_buf_fd; closed once sent). Frees the buffer's
 * contents.
 */
void
ps_send(struct ps_chan *c, uint32_t type, uint64_t id, struct ps_buf *b)
{
	struct ps_out *o;
	int rc;

	if (b->len > PS_MAX_PAYLOAD)
		fatalx("privsep: message %u of %zu bytes", type, b->len);
	o = xcalloc(1, sizeof *o);
	o->h.type = type;
	o->h.id = id;
	o->h.len = (uint32_t)b->len;
	o->data = b->data;
	memcpy(o->fds, b->fds, sizeof o->fds);
	o->nfds = b->nfds;
	memset(b, 0, sizeof *b);
	if (c->dead) {
		ps_out_free(o);
		return;
	}
	if (TAILQ_EMPTY(&c->out)) {
		if ((rc = ps_try_send(c, o)) == 0) {
			ps_out_free(o);
			return;
		}
		if (rc < 0) {
			ps_out_free(o);
			ps_fail(c, strerror(errno));
			return;
		}
		event_add(c->wev, NULL);
	}
	TAILQ_INSERT_TAIL(&c->out, o, entry);
}

static void
ps_write(evutil_socket_t fd, short what, void *arg)
{
	struct ps_chan *c = arg;
	struct ps_out *o;
	int rc;

	while ((o = TAILQ_FIRST(&c->out)) != NULL) {
		if ((rc = ps_try_send(c, o)) == 1) {
			event_add(c->wev, NULL);
			return;
		}
		if (rc < 0) {
			ps_fail(c, strerror(errno));
			return;
		}
		TAILQ_REMOVE(&c->out, o, entry);
		ps_out_free(o);
	}
}

static void
ps_read(evutil_socket_t fd, short what, void *arg)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * PS_MAX_FDS)];
	} cm;
	struct ps_chan *c = arg;
	struct ps_hdr h;
	struct ps_rd rd;
	struct msghdr mh;
	struct cmsghdr *cmsg;
	struct iovec iov;
	size_t i, nfds;
	ssize_t n;
	int fds[PS_MAX_FDS], rc = -1;
	bool known = false;

	memset(&mh, 0, sizeof mh);
	iov.iov_base = c->rbuf;
	iov.iov_len = sizeof h + PS_MAX_PAYLOAD;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof cm.buf;
	n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	nfds = 0;
	for (cmsg = CMSG_FIRSTHDR(&mh); n > 0 && cmsg != NULL;
	     cmsg = CMSG_NXTHDR(&mh, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		i = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfds + i > PS_MAX_FDS)
			i = PS_MAX_FDS - nfds;
		memcpy(fds + nfds, CMSG_DATA(cmsg), i * sizeof(int));
		nfds += i;
	}
	if (n <= 0) {
		ps_fail(c, n == 0 ? "connection closed" : strerror(errno));
		return;
	}
	memcpy(&h, c->rbuf, sizeof h < (size_t)n ? sizeof h : (size_t)n);
	if ((size_t)n < sizeof h || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    h.len != (size_t)n - sizeof h) {
		for (i = 0; i < nfds; i++)
			close(fds[i]);
		ps_fail(c, "a malformed message");
		return;
	}
	memset(&rd, 0, sizeof rd);
	rd.p = c->rbuf + sizeof h;
	rd.left = h.len;
	rd.fds = fds;
	rd.nfds = (int)nfds;
	for (i = 0; i < c->nhandlers; i++)
		if (c->handlers[i].type == h.type) {
			known = true;
			rc = c->handlers[i].fn(c, h.type, h.id, &rd);
			break;
		}
	/* Descriptors the handler did not take are closed here. */
	for (i = (size_t)rd.fdi; i < nfds; i++)
		close(fds[i]);
	if (rc != 0 || rd.bad || rd.left != 0) {
		log_warnx("privsep: message %u refused%s", h.type,
		    known ? "" : " (unknown type)");
		ps_fail(c, "a message that does not check");
	}
}

/* The writer: fields appended, lengths before strings. */
static void
ps_put(struct ps_buf *b, const void *p, size_t len)
{
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2 + 64;
		b->data = xreallocarray(b->data, 1, b->cap);
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
}

void
ps_put_u32(struct ps_buf *b, uint32_t v)
{
	ps_put(b, &v, sizeof v);
}

void
ps_put_u64(struct ps_buf *b, uint64_t v)
{
	ps_put(b, &v, sizeof v);
}

/* NULL is a string of its own (length UINT32_MAX). */
void
ps_put_str(struct ps_buf *b, const char *s)
{
	size_t len;

	if (s == NULL) {
		ps_put_u32(b, UINT32_MAX);
		return;
	}
	len = strlen(s);
	ps_put_u32(b, (uint32_t)len);
	ps_put(b, s, len + 1);
}

/* A duplicate of fd goes with the message; -1 if it cannot. */
int
ps_put_fd(struct ps_buf *b, int fd)
{
	int d;

	if (b->nfds == PS_MAX_FDS || (d = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return -1;
	b->fds[b->nfds++] = d;
	return 0;
}

void
ps_buf_free(struct ps_buf *b)
{
	int i;

	for (i = 0; i < b->nfds; i++)
		close(b->fds[i]);
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* The reader: a field that is not there marks the message bad. */
static bool
ps_get(struct ps_rd *r, void *p, size_t len)
{
	if (r->bad || r->left < len) {
		r->bad = true;
		memset(p, 0, len);
		return false;
	}
	memcpy(p, r->p, len);
	r->p += len;
	r->left -= len;
	return true;
}

uint32_t
ps_get_u32(struct ps_rd *r)
{
	uint32_t v;

	ps_get(r, &v, sizeof v);
	return v;
}

uint64_t
ps_get_u64(struct ps_rd *r)
{
	uint64_t v;

	ps_get(r, &v, sizeof v);
	return v;
}

/*
 * A string of at most max bytes, terminated where it says, with no NUL
 * inside; NULL for the NULL string or a bad one (then r->bad).
 */
const char *
ps_get_str(struct ps_rd *r, size_t max)
{
	uint32_t len = ps_get_u32(r);
	const char *s;

	if (r->bad || len == UINT32_MAX)
		return NULL;
	if (len > max || r->left < (size_t)len + 1 ||
	    memchr(r->p, '\0', len) != NULL || r->p[len] != '\0') {
		r->bad = true;
		return NULL;
	}
	s = (const char *)r->p;
	r->p += len + 1;
	r->left -= len + 1;
	return s;
}

/* The message's next descriptor, now the caller's; -1 and bad if none. */
int
ps_get_fd(struct ps_rd *r)
{
	if (r->fdi >= r->nfds) {
		r->bad = true;
		return -1;
	}
	return r->fds[r->fdi++];
}

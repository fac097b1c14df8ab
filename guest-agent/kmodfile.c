/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The text formats of /proc/freehint (docs/kmod.md). Whatever the module
 * says is checked like input from a peer: a malformed line makes the whole
 * read an error with a message saying where, never a crash, and no pfn
 * that would wrap or pass FH_PFN_LIMIT gets into a range set.
 */
#include <sys/mman.h>

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

/* A block of this order or more is not a buddy block of any kernel. */
#define KMOD_ORDER_LIMIT 20
/* /proc/freehint/blocks of a very large guest still fits. */
#define KMOD_FILE_MAX (256U * 1024 * 1024)

struct lines {
	const char *p;
	const char *end;
	unsigned lineno;
};

static int next_line(struct lines *, const char **, size_t *);
static int parse_num(const char **, const char *, int hex, uint64_t *);
static int parse_word(const char **, const char *, char *, size_t);
static int at_end(const char *, const char *);
static int add_block(struct fh_rangeset *, uint64_t pfn, uint64_t order);

/* Read a whole file (procfs files have no size) into a NUL-ended buffer. */
int
kmod_read_file(const char *path, char **bufp, size_t *lenp)
{
	size_t len = 0, cap = 65536;
	char *buf, *nbuf;
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	buf = xmalloc(cap);
	for (;;) {
		if (cap - len < 2) {
			if (cap >= KMOD_FILE_MAX) {
				errno = EFBIG;
				goto fail;
			}
			cap *= 2;
			nbuf = realloc(buf, cap);
			if (nbuf == NULL)
				goto fail;
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return -1;
}

/* The next line without its newline; -1 at the end, or on a partial one. */
static int
next_line(struct lines *l, const char **line, size_t *len)
{
	const char *nl;

	if (l->p >= l->end)
		return -1;
	nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
	if (nl == NULL)
		return -2;
	*line = l->p;
	*len = (size_t)(nl - l->p);
	l->p = nl + 1;
	l->lineno++;
	return 0;
}

/* Digits only: no sign, no space, no overflow; 0x required when hex. */
static int
parse_num(const char **pp, const char *end, int hex, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0, d;
	int n = 0;

	if (hex) {
		if (end - p < 2 || p[0] != '0' || (p[1] != 'x' && p[1] != 'X'))
			return -1;
		p += 2;
	}
	for (; p < end; p++, n++) {
		if (*p >= '0' && *p <= '9')
			d = (uint64_t)(*p - '0');
		else if (hex && *p >= 'a' && *p <= 'f')
			d = (uint64_t)(*p - 'a' + 10);
		else if (hex && *p >= 'A' && *p <= 'F')
			d = (uint64_t)(*p - 'A' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / (hex ? 16 : 10))
			return -1;
		v = v * (hex ? 16 : 10) + d;
	}
	if (n == 0)
		return -1;
	*pp = p;
	*out = v;
	return 0;
}

/* A run of non-blank characters, copied into w. */
static int
parse_word(const char **pp, const char *end, char *w, size_t wlen)
{
	const char *p = *pp;
	size_t n = 0;

	while (p < end && *p != ' ' && *p != '\t') {
		if ((unsigned char)*p < 0x20 || n + 1 >= wlen)
			return -1;
		w[n++] = *p++;
	}
	if (n == 0)
		return -1;
	w[n] = '\0';
	*pp = p;
	return 0;
}

static int
skip_space(const char **pp, const char *end)
{
	const char *p = *pp;

	if (p >= end || *p != ' ')
		return -1;
	while (p < end && *p == ' ')
		p++;
	*pp = p;
	return 0;
}

static int
at_end(const char *p, const char *end)
{
	return p == end;
}

static int
add_block(struct fh_rangeset *rs, uint64_t pfn, uint64_t order)
{
	uint64_t n;

	if (order > KMOD_ORDER_LIMIT)
		return -1;
	n = 1ULL << order;
	if (pfn >= FH_PFN_LIMIT || n > FH_PFN_LIMIT - pfn ||
	    (pfn & (n - 1)) != 0)
		return -1;
	return rs == NULL ? 0 : fh_rs_add(rs, pfn, n);
}

/*
 * "batch <id> <count> grace_ms=<ms>\n" then exactly count "0x<pfn>
 * <order>\n" lines, as /proc/freehint/report and /proc/freehint/hold
 * return them. The blocks are added to rs as they are, and rs is
 * normalized (coalesced). Other "key=value" words in the header are
 * skipped (later modules may add some); without grace_ms, *grace_ms is 0:
 * no lease, so nothing of the batch will be discarded.
 */
int
kmod_parse_batch(const char *buf, size_t len, uint64_t *id, uint32_t *grace_ms,
    struct fh_rangeset *rs, char *err, size_t errlen)
{
	struct lines l = { buf, buf + len, 0 };
	const char *line, *p, *e, *wp, *we;
	uint64_t count, i, pfn, order, v;
	char word[64];
	size_t ll;

	fh_rs_clear(rs);
	*grace_ms = 0;
	if (next_line(&l, &line, &ll) != 0) {
		snprintf(err, errlen, "no batch header");
		return -1;
	}
	p = line;
	e = line + ll;
	if (ll < 6 || memcmp(p, "batch ", 6) != 0) {
		snprintf(err, errlen, "line 1: not a batch header");
		return -1;
	}
	p += 5;
	if (skip_space(&p, e) || parse_num(&p, e, 0, id) || skip_space(&p, e) ||
	    parse_num(&p, e, 0, &count)) {
		snprintf(err, errlen, "line 1: malformed batch header");
		return -1;
	}
	while (!at_end(p, e)) {
		if (skip_space(&p, e) || parse_word(&p, e, word, sizeof word) ||
		    strchr(word, '=') == NULL) {
			snprintf(err, errlen, "line 1: malformed batch header");
			return -1;
		}
		if (strncmp(word, "grace_ms=", 9) != 0)
			continue;
		wp = word + 9;
		we = word + strlen(word);
		if (parse_num(&wp, we, 0, &v) || !at_end(wp, we) ||
		    v > UINT32_MAX) {
			snprintf(err, errlen, "line 1: bad grace_ms");
			return -1;
		}
		*grace_ms = (uint32_t)v;
	}
	if (count == 0 || count > AGENT_KBUF_SIZE / 4) {
		snprintf(err, errlen, "line 1: bad block count %llu",
		    (unsigned long long)count);
		return -1;
	}
	for (i = 0; i < count; i++) {
		if (next_line(&l, &line, &ll) != 0) {
			snprintf(err, errlen, "batch %llu: %llu of %llu blocks",
			    (unsigned long long)*id, (unsigned long long)i,
			    (unsigned long long)count);
			return -1;
		}
		p = line;
		e = line + ll;
		if (parse_num(&p, e, 1, &pfn) || skip_space(&p, e) ||
		    parse_num(&p, e, 0, &order) || !at_end(p, e)) {
			snprintf(
			    err, errlen, "line %u: malformed block", l.lineno);
			return -1;
		}
		if (add_block(rs, pfn, order) != 0) {
			snprintf(err, errlen, "line %u: bad block 0x%llx/%llu",
			    l.lineno, (unsigned long long)pfn,
			    (unsigned long long)order);
			return -1;
		}
	}
	if (l.p != l.end) {
		snprintf(err, errlen, "trailing data after %llu blocks",
		    (unsigned long long)count);
		return -1;
	}
	fh_rs_normalize(rs);
	return 0;
}

/*
 * /proc/freehint/blocks: '#' lines, then "0x<pfn> <order> <zone> <mt>".
 * Counts blocks per order in by_order; blocks of min_order and above go
 * to rs (when not NULL), normalized.
 */
int
kmod_parse_blocks(const char *buf, size_t len, unsigned min_order,
    uint64_t by_order[AGENT_MAX_ORDERS], struct fh_rangeset *rs, char *err,
    size_t errlen)
{
	struct lines l = { buf, buf + len, 0 };
	const char *line, *p, *e;
	uint64_t pfn, order, mt;
	char zone[32];
	size_t ll;
	int rc;

	memset(by_order, 0, AGENT_MAX_ORDERS * sizeof *by_order);
	if (rs != NULL)
		fh_rs_clear(rs);
	while ((rc = next_line(&l, &line, &ll)) == 0) {
		if (ll > 0 && line[0] == '#')
			continue;
		p = line;
		e = line + ll;
		if (parse_num(&p, e, 1, &pfn) || skip_space(&p, e) ||
		    parse_num(&p, e, 0, &order) || skip_space(&p, e) ||
		    parse_word(&p, e, zone, sizeof zone) || skip_space(&p, e) ||
		    parse_num(&p, e, 0, &mt) || !at_end(p, e)) {
			snprintf(
			    err, errlen, "line %u: malformed block", l.lineno);
			return -1;
		}
		if (add_block(NULL, pfn, order) != 0) {
			snprintf(err, errlen, "line %u: bad block 0x%llx/%llu",
			    l.lineno, (unsigned long long)pfn,
			    (unsigned long long)order);
			return -1;
		}
		by_order[order]++;
		if (rs != NULL && order >= min_order &&
		    fh_rs_add(rs, pfn, 1ULL << order) != 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (rc == -2) {
		snprintf(err, errlen, "line %u: no newline", l.lineno + 1);
		return -1;
	}
	if (rs != NULL)
		fh_rs_normalize(rs);
	return 0;
}

/* "key value" lines; unknown keys are skipped so the module may grow. */
int
kmod_parse_stats(const char *buf, size_t len, struct kmod_stats *st, char *err,
    size_t errlen)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{ "page_size", offsetof(struct kmod_stats, page_size) },
		{ "max_pfn", offsetof(struct kmod_stats, max_pfn) },
		{ "report_registered",
		    offsetof(struct kmod_stats, report_registered) },
		{ "report_order", offsetof(struct kmod_stats, report_order) },
		{ "page_poisoning",
		    offsetof(struct kmod_stats, page_poisoning) },
		{ "init_on_free", offsetof(struct kmod_stats, init_on_free) },
		{ "init_on_alloc", offsetof(struct kmod_stats, init_on_alloc) },
		{ "poison_value", offsetof(struct kmod_stats, poison_value) },
		{ "hold_bytes", offsetof(struct kmod_stats, hold_bytes) },
		{ "report_acked_bytes",
		    offsetof(struct kmod_stats, report_acked_bytes) },
	};
	struct lines l = { buf, buf + len, 0 };
	const char *line, *p, *e;
	char key[64];
	uint64_t v;
	size_t ll, i;
	int rc;

	memset(st, 0, sizeof *st);
	while ((rc = next_line(&l, &line, &ll)) == 0) {
		p = line;
		e = line + ll;
		if (parse_word(&p, e, key, sizeof key) || skip_space(&p, e)) {
			snprintf(err, errlen, "line %u: malformed", l.lineno);
			return -1;
		}
		/* Keys we do not know may have any value (report_owner
		 * says a word): only ours must be numbers. */
		for (i = 0; i < FH_ARRAY_SIZE(keys); i++)
			if (strcmp(keys[i].key, key) == 0)
				break;
		if (i == FH_ARRAY_SIZE(keys))
			continue;
		if (parse_num(&p, e, 0, &v) || !at_end(p, e)) {
			snprintf(err, errlen, "line %u: malformed", l.lineno);
			return -1;
		}
		*(uint64_t *)((char *)st + keys[i].off) = v;
	}
	if (rc == -2) {
		snprintf(err, errlen, "line %u: no newline", l.lineno + 1);
		return -1;
	}
	if (st->page_size < 4096 || st->page_size > 65536 ||
	    (st->page_size & (st->page_size - 1)) != 0) {
		snprintf(err, errlen, "bad page_size %llu",
		    (unsigned long long)st->page_size);
		return -1;
	}
	if (st->max_pfn == 0 || st->max_pfn >= FH_PFN_LIMIT) {
		snprintf(err, errlen, "bad max_pfn %llu",
		    (unsigned long long)st->max_pfn);
		return -1;
	}
	return 0;
}

/* Write "ack <id>\n" or "fail <id>\n" in one write, as the module wants. */
int
kmod_answer(int fd, const char *verb, uint64_t id)
{
	char line[64];
	ssize_t n;
	int len;

	len = snprintf(
	    line, sizeof line, "%s %llu\n", verb, (unsigned long long)id);
	do
		n = write(fd, line, (size_t)len);
	while (n == -1 && errno == EINTR);
	if (n == len)
		return 0;
	if (n >= 0)
		errno = EIO;
	return -1;
}

/*
 * Keep a buffer that kernel batches are read into in memory: a page fault
 * there would stall the agent between a read and its send. Not fatal: the
 * module keeps a read batch until it is answered, so a stall costs time,
 * never pages.
 */
void
kmod_lock_buffer(const char *what, void *buf, size_t len)
{
	if (mlock(buf, len) != 0)
		log_debug("%s: mlock: %s", what, strerror(errno));
}

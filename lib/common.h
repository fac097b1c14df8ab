/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Code shared by freehint-agent, freehintd and freehintctl: logging,
 * allocation, configuration files, range sets, the clock, unix socket
 * addresses and the peer module that owns every protocol connection's
 * event.
 */
#ifndef FREEHINT_COMMON_H
#define FREEHINT_COMMON_H

#include <sys/socket.h>

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct event_base;

/* The configuration directory's parent; the Makefile passes SYSCONFDIR. */
#ifndef FH_SYSCONFDIR
#define FH_SYSCONFDIR "/etc"
#endif

#define FH_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* log.c */
void log_init(const char *progname, int foreground, int verbose);
void log_setverbose(int);
int log_getverbose(void);
int log_is_journal_stream(int fd, const char *journal_stream_env);
void log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
/*
 * A warning that can come from outside at any rate (a rejected batch, a
 * refused connection): at most LOG_RL_BURST per LOG_RL_SECONDS for each
 * struct log_rl (zeroed to start). The last one of a burst says that
 * more will be suppressed, the first one after says how many were.
 */
#define LOG_RL_BURST   5
#define LOG_RL_SECONDS 10
struct log_rl {
	int64_t start; /* of the window, CLOCK_MONOTONIC seconds */
	unsigned logged;
	unsigned suppressed;
};
void log_warnx_rl(struct log_rl *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
/* Printable ASCII of src into dst, anything else as \xNN; for text from
 * outside (a guest) that a terminal will show. */
void fh_strvis(char *dst, size_t len, const char *src);
void fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/* xmalloc.c: for the program's own state; they never return NULL. */
void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
int xasprintf(char **, const char *, ...) __attribute__((format(printf, 2, 3)));

/* config.c */
/*
 * Called for each option, from the command line or a configuration file
 * (whose keys are the long option names). Returns 0, or -1 with a message
 * in err.
 */
typedef int (*fh_opt_cb)(int val, const char *name, const char *arg, void *ctx,
    char *err, size_t errlen);
int fh_conf_load(const char *path, const struct option *, fh_opt_cb, void *ctx,
    char *err, size_t errlen);
/* The settings given on the command line, kept to be applied over the
 * file at start and again at every reload (SIGHUP). */
struct fh_cmdline_opt {
	int val;
	const char *name;
	const char *arg;
};
struct fh_cmdline {
	struct fh_cmdline_opt *opt;
	size_t n;
};
void fh_cmdline_add(
    struct fh_cmdline *, const struct option *, int val, const char *arg);
void fh_cmdline_free(struct fh_cmdline *);
int fh_conf_apply(const char *path, int must_exist, const struct option *,
    const struct fh_cmdline *, fh_opt_cb, void *ctx, char *err, size_t errlen);
int fh_cmdline_apply(
    const struct fh_cmdline *, fh_opt_cb, void *ctx, char *err, size_t errlen);
int fh_parse_u64(const char *, uint64_t min, uint64_t max, uint64_t *);
int fh_parse_size(const char *, uint64_t *);

/* rangeset.c: sets of page ranges [start, start + npages). */
struct fh_range {
	uint64_t start;
	uint64_t npages;
};

struct fh_rangeset {
	struct fh_range *r;
	size_t n;
	size_t cap;
};

/* clock.c */
struct event;
struct timeval;
uint64_t fh_monotonic_ms(void);
uint64_t fh_monotonic_us(void);
/* The same clock in seconds, for measuring how long something took. */
double fh_monotonic_s(void);
struct timeval fh_ms_timeval(uint64_t ms);
void fh_evtimer_at(struct event *, uint64_t deadline_ms);

/* unix.c */
struct sockaddr_un;
/* 0, or -1 (ENAMETOOLONG) when path does not fit. */
int fh_unix_addr(struct sockaddr_un *, const char *path);
/* A stream socket listening at path (a stale socket file there removed),
 * socket(2) flags such as SOCK_NONBLOCK added; -1 with errno. */
int fh_unix_listen(const char *path, int backlog, int flags);
/* 1: something listens on path; 0: nothing does (a stale file may be
 * removed); -1 with errno: it cannot be told. */
int fh_unix_in_use(const char *path);
struct sockaddr;
int fh_listen_addr(const struct sockaddr *, socklen_t, int backlog);

void fh_rs_init(struct fh_rangeset *);
void fh_rs_free(struct fh_rangeset *);
void fh_rs_clear(struct fh_rangeset *);
int fh_rs_add(struct fh_rangeset *, uint64_t start, uint64_t npages);
void fh_rs_normalize(struct fh_rangeset *);
int fh_rs_merge(struct fh_rangeset *, const struct fh_rangeset *);
bool fh_rs_is_normal(const struct fh_rangeset *);
uint64_t fh_rs_pages(const struct fh_rangeset *);
bool fh_rs_covers(const struct fh_rangeset *, uint64_t start, uint64_t npages);
bool fh_rs_overlaps(const struct fh_rangeset *, const struct fh_rangeset *);
int fh_rs_intersect(const struct fh_rangeset *, const struct fh_rangeset *,
    struct fh_rangeset *out);
int fh_rs_subtract(const struct fh_rangeset *, const struct fh_rangeset *,
    struct fh_rangeset *out);

/* peer.c: one protocol connection and the only event it needs. */
struct fh_peer;

/* Output a peer may leave unread before it is disconnected. */
#define FH_PEER_MAX_QUEUED (1024 * 1024)

/*
 * A handler for one message type. Returns 0, or a RejectReason after which
 * the peer answers with an Error and counts a fault.
 */
struct fh_handler {
	uint8_t type;
	int (*fn)(struct fh_peer *, const struct fh_msg *, void *arg);
};

/* Called once when the peer is lost (EOF, error, too many faults). */
typedef void (*fh_peer_lost_cb)(struct fh_peer *, const char *why, void *arg);

struct fh_peer *fh_peer_new(struct event_base *, int fd, const char *name,
    const struct fh_handler *, size_t nhandlers, fh_peer_lost_cb, void *arg);
void fh_peer_free(struct fh_peer *);
int fh_peer_send(struct fh_peer *, uint8_t type, const ProtobufCMessage *);
int fh_peer_send_sync(struct fh_peer *);
int fh_peer_send_error(struct fh_peer *, int reason, bool fatal,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void fh_peer_close_after_flush(struct fh_peer *, const char *why);
const char *fh_peer_name(const struct fh_peer *);
int fh_peer_fd(const struct fh_peer *);
size_t fh_peer_queued(const struct fh_peer *);
void fh_peer_set_max_faults(struct fh_peer *, unsigned);
void fh_peer_set_fault_decay(struct fh_peer *, uint64_t ms);
void fh_peer_set_resync(struct fh_peer *, bool);
uint64_t fh_peer_faults(struct fh_peer *);
uint64_t fh_peer_unknown(const struct fh_peer *);
int fh_peer_fatal_error(const struct fh_peer *);

#endif

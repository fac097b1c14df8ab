/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * freehint-agent: hands what freehint.ko offers under /proc/freehint to the
 * host, over AF_VSOCK, virtio-serial or a unix socket. Shared structs are
 * declared here, grouped by the file that implements them.
 */
#ifndef FREEHINT_AGENT_H
#define FREEHINT_AGENT_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

struct event;
struct event_base;
struct headroom;
struct kbatch;

#define AGENT_CONF_FILE FH_SYSCONFDIR "/freehint/agent.conf"
/*
 * Exit status when freehint.ko is not there (EX_CONFIG): the unit lists
 * it in RestartPreventExitStatus, so systemd does not restart in a loop.
 */
#define AGENT_EXIT_NO_MODULE 78
/* Orders the agent understands in the module's files (MAX_ORDER <= 64). */
#define AGENT_MAX_ORDERS 64
/*
 * A read of the module's files (4096 is always enough): the module fills
 * a hold batch to the buffer, up to 1024 blocks, which 32 KiB holds. The
 * bigger the batch, the fewer the host's batches in a pass of small blocks.
 */
#define AGENT_KBUF_SIZE 32768
/* What the module's hold batch of n blocks may take: 64 bytes, 24 a block. */
#define AGENT_KBATCH_BYTES(n) (64 + 24 * (size_t)(n))

enum transport_kind {
	TRANSPORT_AUTO,
	TRANSPORT_VSOCK,
	TRANSPORT_SERIAL,
	TRANSPORT_UNIX,
};

/* main.c: the effective configuration (keys are the long options). */
struct agent_conf {
	enum transport_kind transport;
	uint32_t vsock_cid;
	uint32_t vsock_port;
	char *serial_path;
	char *unix_path;
	char *proc_dir;
	uint32_t max_inflight;
	uint32_t batch_ranges;
	uint32_t stats_interval; /* seconds, 0: only on request */
	uint32_t backoff_max; /* milliseconds */
	uint32_t report_defer_rate; /* MiB/s; 0: never defer */
	uint32_t report_headroom; /* MiB, or HEADROOM_AUTO */
	bool wait_module;
};

/* Counters reported to the host and in STATUS=. */
struct agent_stats {
	uint64_t batches_sent;
	uint64_t batches_acked;
	uint64_t batches_failed;
	uint64_t batches_deferred; /* failed back: the guest allocated fast */
	uint64_t batches_kept; /* failed back: within the headroom */
	uint64_t bytes_kept; /* left unsent from batches partly reported */
	uint64_t bytes_reported;
	uint64_t bytes_acked;
	uint64_t reconnects;
	char last_error[128];
};

struct agent {
	struct event_base *base;
	struct agent_conf conf;
	const char *conf_file;
	int conf_explicit;
	struct agent_stats stats;
	uint32_t page_size;
	uint64_t next_batch_id; /* unique across connections */
	int stopping;
	int exit_code;
	bool module; /* freehint.ko is there (report may still be NULL) */

	struct transport *transport;
	struct session *session;
	struct report *report;
	struct hold *hold;
	struct snapshot *snapshot;

	struct event *ev_sighup;
	struct event *ev_sigterm;
	struct event *ev_sigint;
	struct event *ev_watchdog;
	struct event *ev_module;
};

/* agent.c: the agent's life, from finding the module to the stop. */
char *agent_proc_path(const struct agent *, const char *name);
void agent_connected(struct agent *, int fd, const char *what);
int agent_module(struct agent *, int quiet);
void agent_module_cb(int, short, void *);
void agent_pump(struct agent *);
void agent_stop(struct agent *, const char *why);

/* status.c: the last error and STATUS=. */
void agent_status(struct agent *);
void agent_error(struct agent *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* kbatch.c: a kernel batch done, and the module answered. */
void kbatch_done(struct kbatch *);
void agent_kbatch_answer(int fd, const char *path, struct kbatch *);

/*
 * lease.c: the host's clock, and the deadline of a batch on it. base is
 * the best lower bound of (host clock - our clock * 8/9) seen so far.
 */
struct hostclock {
	bool have;
	int64_t base;
};

/* Taken off every lease for the jiffy and millisecond roundings. */
#define AGENT_LEASE_MARGIN_MS 100
/*
 * How long the empty batch that ends a hint pass waits for its Ack. It
 * leases nothing (no deadline); unanswered, it ends the pass as an
 * expired lease would: the module's default grace.
 */
#define AGENT_PASS_END_WAIT_MS 10000

void hostclock_init(struct hostclock *);
void hostclock_sample(struct hostclock *, uint64_t host_ms, uint64_t local_ms);
int hostclock_deadline(const struct hostclock *, uint64_t local_ms,
    uint32_t grace_ms, uint32_t margin_ms, uint64_t *deadline);

/* transport.c: the channel to the host. */
typedef void (*transport_cb)(struct agent *, int fd, const char *what);
const char *transport_kind_name(enum transport_kind);
int transport_kind_parse(const char *, enum transport_kind *);
struct transport *transport_new(struct agent *, transport_cb);
void transport_free(struct transport *);
void transport_start(struct transport *);
void transport_lost(struct transport *, const char *why);
void transport_incompatible(struct transport *, const char *why);
enum transport_kind transport_current(const struct transport *);
uint64_t transport_retry_in_ms(const struct transport *);
unsigned transport_seed(void);
void transport_restart(struct transport *);
const char *transport_what(const struct transport *);
void transport_established(struct transport *);
bool transport_connected(const struct transport *);
uint32_t backoff_delay(
    unsigned attempt, uint32_t base_ms, uint32_t max_ms, uint32_t rnd);

/*
 * session.c: the protocol on top of fh_peer. A kernel batch (report or
 * hold) may travel as several RangeBatches; it is answered once all of
 * them are acknowledged, or failed as soon as the session ends.
 */
struct kbatch;
/*
 * Called once every RangeBatch of a kernel batch is done, by the channel
 * that read it, to answer the module (as page_reporting_dev_info's ops
 * let the kernel call its driver back). NULL: nothing to answer (a
 * snapshot's hints, or a batch whose file was closed): it is freed.
 */
typedef void (*kbatch_done_fn)(struct kbatch *, void *);

struct kbatch {
	TAILQ_ENTRY(kbatch) entry;
	kbatch_done_fn done;
	void *done_arg;
	bool hint; /* a snapshot's: no lease, nothing discarded */
	uint64_t kid; /* the module's batch id */
	uint64_t bytes;
	unsigned remaining; /* RangeBatches not yet acknowledged */
	int failed; /* the host did not discard all of it */
	/*
	 * Sent, and the host went away before answering: it may be
	 * discarding until expire_ms. Such a batch is not answered "fail"
	 * before then (the module would hand the pages out at once).
	 */
	int unanswered;
	int expired; /* no Ack within its lease */
	/* The module's grace for it, from the batch header (docs/kmod.md). */
	uint32_t grace_ms;
	/*
	 * CLOCK_MONOTONIC ms after which the host surely no longer discards
	 * it: its last piece's send time plus grace_ms. 0 until sent.
	 */
	uint64_t expire_ms;
};
TAILQ_HEAD(kbatch_list, kbatch);

struct session *session_new(struct agent *, int fd, const char *what);
void session_free(struct session *);
bool session_ready(const struct session *);
unsigned session_free_slots(const struct session *);
int64_t session_rate_tokens(const struct session *, uint64_t now);
bool session_rate_waiting(const struct session *);
uint32_t session_batch_ranges(const struct session *);
uint32_t session_min_order(const struct session *);
bool session_zero(const struct session *);
size_t session_batches_needed(const struct session *, size_t nranges);
int session_send_ranges(struct session *, Freehint__RangeKind,
    const struct fh_rangeset *, uint64_t pass_id, bool last, struct kbatch *);
void session_send_stats(struct session *, const uint64_t *by_order,
    size_t norders, uint64_t free_bytes);

/* report.c: /proc/freehint/report. */
struct report *report_open(struct agent *, int *err);
void report_free(struct report *);
void report_pump(struct report *);
bool report_registered(const struct report *);

/* allocrate.c: how fast the guest allocates (/proc/vmstat). */
struct allocrate;
int allocrate_parse(
    const char *, size_t, uint64_t *pages, uint64_t *free_pages);
struct allocrate *allocrate_new(struct event_base *, const char *path,
    struct headroom *, void (*)(void *), void *);
void allocrate_free(struct allocrate *);
int allocrate_bytes_per_sec(const struct allocrate *, uint32_t, uint64_t *);
int allocrate_pages(struct allocrate *, uint64_t *);
int allocrate_read(struct allocrate *, uint64_t *pages, uint64_t *free_pages);
int allocrate_rate(
    uint64_t, uint64_t, uint64_t, uint64_t, uint32_t, uint64_t *);

/* headroom.c: free memory kept unreported for a churning guest. */
#define HEADROOM_SAMPLE_MS 100
#define HEADROOM_WINDOW    11 /* a second of samples, and the one before */
#define HEADROOM_SECONDS   30
#define HEADROOM_SKIP      2 /* dips of a one-off burst ignored */
#define HEADROOM_AUTO      UINT32_MAX

struct headroom {
	uint64_t dip[HEADROOM_SECONDS]; /* each second's deepest dip */
	size_t next;
	uint64_t win[HEADROOM_WINDOW]; /* this second's free samples */
	size_t nwin;
	uint64_t free_now; /* free pages at the last sample */
	uint64_t reported; /* free pages estimated reported */
};

uint64_t headroom_dip(const uint64_t *, size_t);
void headroom_trim(struct fh_rangeset *, uint64_t pages);
void headroom_init(struct headroom *);
void headroom_sample(struct headroom *, uint64_t free_pages);
uint64_t headroom_pages(const struct headroom *);
void headroom_reported(struct headroom *, uint64_t pages);
uint64_t headroom_spare(struct headroom *, uint64_t free_pages, uint64_t keep);
uint64_t headroom_budget(struct headroom *, uint64_t free_pages,
    uint64_t batch_pages, uint64_t keep);

/* hold.c: /proc/freehint/hold and the host's hint passes. */
struct hold *hold_new(struct agent *);
void hold_free(struct hold *);
int hold_start(struct hold *, uint64_t pass_id, uint32_t min_order,
    uint64_t byte_limit, bool zero);
void hold_release(struct hold *, const char *why);
void hold_pump(struct hold *);
uint64_t hold_bytes(const struct hold *);

/* snapshot.c: /proc/freehint/blocks. */
struct snapshot *snapshot_new(struct agent *);
void snapshot_free(struct snapshot *);
void snapshot_set_interval(struct snapshot *, uint32_t ms);
int snapshot_send_stats(struct snapshot *);
int snapshot_send_hints(struct snapshot *);
void snapshot_pump(struct snapshot *);
void snapshot_drop(struct snapshot *);

/* kmodfile.c: the module's text formats. */
struct kmod_stats {
	uint64_t page_size;
	uint64_t max_pfn;
	uint64_t report_registered;
	uint64_t report_order;
	uint64_t page_poisoning;
	uint64_t init_on_free;
	uint64_t init_on_alloc;
	uint64_t poison_value;
	uint64_t hold_bytes;
	uint64_t report_acked_bytes;
};

int kmod_read_file(const char *path, char **buf, size_t *len);
int kmod_parse_batch(const char *buf, size_t len, uint64_t *id,
    uint32_t *grace_ms, struct fh_rangeset *, char *err, size_t errlen);
int kmod_parse_blocks(const char *buf, size_t len, unsigned min_order,
    uint64_t by_order[AGENT_MAX_ORDERS], struct fh_rangeset *, char *err,
    size_t errlen);
int kmod_parse_stats(
    const char *buf, size_t len, struct kmod_stats *, char *err, size_t errlen);
int kmod_answer(int fd, const char *verb, uint64_t id);
void kmod_lock_buffer(const char *what, void *, size_t);

#endif

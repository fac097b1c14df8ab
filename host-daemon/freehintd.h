/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * freehintd: the host daemon. Shared structures, grouped by the file that
 * implements them.
 */
#ifndef FREEHINTD_H
#define FREEHINTD_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common.h"
#include "vmsource.h"

struct event;
struct event_base;
struct evconnlistener;
struct fh_peer;
struct json_object;

#define FREEHINTD_CONF       FH_SYSCONFDIR "/freehint/freehintd.conf"
#define FREEHINTD_CONTROL    "/run/freehint/freehintd.sock"
#define FREEHINTD_VSOCK_PORT 7700
/* The worker's user (systemd/freehintd.sysusers) and its empty root. */
#define FREEHINTD_USER  "freehintd"
#define FREEHINTD_EMPTY "/run/freehint/empty"
/*
 * A discard must end before the batch's deadline (RangeBatch.deadline_ms):
 * no piece of it (discard.c) begins later than this before it.
 */
#define FREEHINTD_LEASE_MARGIN_MS 250
/* A hint pass nobody released ends after this (the agent's own limit). */
#define FREEHINTD_PASS_TIMEOUT_MS (120 * 1000)

/* main.c: the effective configuration. */
struct vm_conf {
	char *name;
	char *qmp;
	char *channel;
	uint32_t cid;
	TAILQ_ENTRY(vm_conf) entry;
};
TAILQ_HEAD(vm_conf_list, vm_conf);

struct policy {
	uint32_t min_order; /* smallest block the guest should send */
	uint32_t max_batch_ranges; /* ranges per batch */
	uint64_t max_batch_bytes; /* bytes per batch */
	uint32_t max_batches_sec; /* batches per second and VM */
	uint64_t max_bytes_sec; /* bytes per second and VM */
	uint32_t max_faults; /* rejected batches before disconnect */
	uint32_t hint_min_order; /* hint pass: smallest held block, or AUTO */
	uint32_t stats_interval_ms;
	uint32_t migration_hold_ms; /* bandwidth held down at most this */
	uint64_t migration_link_bps; /* what QEMU can send at most */
	uint64_t hint_pass_bps; /* a pass's speed until one is measured */
	bool no_discard; /* count batches, punch nothing (policy.c) */
};
/* hint-min-order "auto": the order of the backing's page (vm_pass_policy). */
#define FREEHINTD_ORDER_AUTO UINT32_MAX
/*
 * QEMU's migration bandwidth while a migration's own hint pass runs: what
 * QEMU sends before the pass has held a page is sent whole.
 */
#define FREEHINTD_HOLD_BPS (256ULL << 10)
/*
 * What a hold costs a migration beyond the pass: QEMU's migration thread,
 * once over its rate, sleeps to the end of its 100 ms window (QEMU's
 * BUFFER_DELAY), and a bandwidth given back does not wake it.
 */
#define FREEHINTD_HOLD_WAIT_MS 100
/* The guest's free blocks counted by order (Stats): orders 0 to 19. */
#define FREEHINTD_MAX_ORDERS 20
/* A pass's speed is learnt from one that held at least this. */
#define FREEHINTD_PASS_SPEED_MIN (16ULL << 20)

struct config {
	char *control;
	char *control_group; /* may read (status) */
	char *admin_group; /* may change state (hint, release, notify) */
	uint32_t vsock_port; /* 0: no vsock listener */
	char *libvirt_uri;
	char *metrics_listen; /* ADDR:PORT of GET /metrics, or NULL */
	unsigned punch_workers; /* punch.c's threads, fixed at start */
	struct policy policy;
	struct vm_conf_list vms;
};

extern struct config *conf;
extern struct event_base *ev_base;

/* memmap.c: guest-physical RAM and its backing in the QEMU process. */
struct memregion {
	uint64_t gpa; /* guest-physical start */
	uint64_t size; /* bytes */
	uint64_t blk_off; /* offset in the RAM block (the "@" of mtree) */
	uint64_t hva; /* in QEMU, from gpa2hva; 0 until resolved */
	int fd; /* backing file, -1 when none */
	uint64_t file_off; /* offset of gpa in the backing file */
	uint64_t pagesz; /* host page size of the backing */
};

struct memmap {
	struct memregion *r;
	size_t n;
	char *ramblock; /* the guest's RAM blocks, separated by commas */
	enum vm_backing_kind kind; /* of every region, or UNKNOWN */
};

void memmap_init(struct memmap *);
void memmap_free(struct memmap *);
int memmap_parse_mtree(
    const char *text, const char *ramblock, struct memmap *, char *, size_t);
int memmap_parse_container(const char *, const char *, char *, size_t);
void memmap_exclude(struct memmap *, uint64_t start, uint64_t len);
void memmap_exclude_smm(
    struct memmap *, bool pc, bool q35, uint64_t below_4g, uint64_t tseg_max);
int memmap_parse_gpa2hva(const char *, uint64_t *hva);
int memmap_resolve(struct memmap *, pid_t, int pidfd, char *, size_t);
void memmap_drop_fds(struct memmap *);
const struct memregion *memmap_find(
    const struct memmap *, uint64_t gpa, uint64_t len);
uint64_t memmap_ram_bytes(const struct memmap *);
const char *memmap_kind_name(enum vm_backing_kind);
int memmap_dma_devices(pid_t, char *why, size_t);
int memmap_fd_walk(pid_t, int (*)(const char *, void *), void *);

/* discard.c */
struct discard_result {
	uint64_t bytes; /* holes punched */
	uint64_t skipped; /* not whole host pages: left alone */
	uint64_t late_ms; /* the worst piece ended this long after the
	                     deadline: never expected, logged */
};

/* A range mapped to its backing file: the whole host pages left to punch. */
struct discard_span {
	int fd;
	uint64_t off;
	uint64_t len;
};

#define DISCARD_TOO_LATE 1

bool discard_trim(uint64_t off, uint64_t len, uint64_t pagesz, uint64_t *toff,
    uint64_t *tlen);
int discard_resolve(const struct memmap *, uint64_t gpa, uint64_t len,
    struct discard_span *, struct discard_result *, char *, size_t);
int discard_piece(struct discard_span *, uint64_t deadline_ms,
    struct discard_result *, char *, size_t);
int discard_range(const struct memmap *, uint64_t gpa, uint64_t len,
    uint64_t deadline_ms, struct discard_result *, char *, size_t);

/*
 * punch.c: the punch workers. A job is one batch's discard; each VM has a
 * queue, served by one worker at a time, and the workers go round the VMs
 * one piece at a time. A job owns duplicates of its backing fds: a map
 * read again, a VM removed or an agent gone while it runs cannot close
 * them under it.
 */
struct punchq;
struct punch_job {
	uint64_t deadline_ms;
	struct discard_span *spans; /* one per range, in batch order */
	size_t nspans;
	int *fds; /* the job's own duplicates, closed with it */
	int *orig; /* the map's fd each one duplicates */
	size_t nfds;
	/* The submitter's, untouched by the workers. */
	uint64_t batch_id;
	uint64_t gen;
	uint64_t pass_id;
	int kind;
	bool last; /* the pass's last HELD batch */
	uint64_t bytes;
	uint64_t submitted_usec; /* for the discard latency (metrics) */
	struct fh_rangeset ranges;
	/* The outcome, read once the job is back on the loop. */
	struct discard_result res;
	size_t spans_done; /* ranges wholly handled, from the first */
	int rc; /* 0, -1, DISCARD_TOO_LATE */
	char err[128];

	/* The pool's. */
	struct punchq *q;
	bool cancelled; /* punchq_cancel: end it, unpunched */
	TAILQ_ENTRY(punch_job) entry;
};
typedef void (*punch_done_fn)(struct punch_job *, void *);

#define FREEHINTD_PUNCH_WORKERS     4 /* the default of punch-workers */
#define FREEHINTD_PUNCH_WORKERS_MAX 64
/* Jobs a VM may have queued or running; past it a batch is refused. */
#define FREEHINTD_PUNCH_QUEUE 16

int punch_init(struct event_base *, unsigned workers);
void punch_shutdown(void);
struct punchq *punchq_new(punch_done_fn, void *);
void punchq_free(struct punchq *);
void punchq_cancel(struct punchq *);
unsigned punchq_pending(const struct punchq *);
struct punch_job *punch_job_new(size_t nranges, uint64_t deadline_ms);
int punch_job_add(struct punch_job *, const struct memmap *, uint64_t gpa,
    uint64_t len, char *, size_t);
void punch_job_free(struct punch_job *);
void punch_submit(struct punchq *, struct punch_job *);

/* validate.c: the one place a batch from a guest is checked. */
/*
 * A VM's rate budget. It belongs to the VM, not to a connection: a guest
 * that says Hello again or reconnects starts with what it has left.
 */
struct budget {
	struct timespec window; /* start of the current rate window */
	uint32_t window_batches;
	uint64_t window_bytes; /* with FREEHINTD_RANGE_COST per range */
};
/* What each range costs on top of its bytes: one fallocate is work
 * however small its range, and tiny ranges must not buy more of it. */
#define FREEHINTD_RANGE_COST (1ULL << 20)
/* A held range's: a pass bounds them, and charged a reported range's cost
 * a pass of small blocks would crawl; still a bound on fallocate calls. */
#define FREEHINTD_HELD_RANGE_COST (128ULL << 10)

/* One agent session's ids and the current pass's held ranges. */
struct vstate {
	uint64_t last_batch_id;
	bool have_batch_id;
	struct fh_rangeset held; /* HELD ranges of the pass, in pages */
};

void vstate_init(struct vstate *);
void vstate_free(struct vstate *);
int validate_batch(struct vstate *, struct budget *, const struct policy *,
    const struct memmap *, uint32_t page_size, uint64_t align_pages,
    const Freehint__RangeBatch *, const struct timespec *now,
    struct fh_rangeset *out, char *, size_t);
const char *validate_reason_name(int);

/* policy.c: one VM's policy, the daemon's with the VM's own keys on top. */
enum policy_key {
	POL_MIN_ORDER,
	POL_HINT_MIN_ORDER,
	POL_MAX_BYTES_SEC,
	POL_MAX_BATCHES_SEC,
	POL_DISCARD,
	POL_NKEYS
};
/* Where a VM's value of a key comes from. */
enum policy_origin { POL_DAEMON = 0, POL_SET, POL_METADATA };

struct policy_over {
	uint8_t origin[POL_NKEYS]; /* enum policy_origin */
	uint64_t val[POL_NKEYS];
};

void policy_of(
    const struct policy_over *, const struct policy *base, struct policy *out);
void policy_defaults(struct policy *);
int policy_parse_set(struct policy_over *, char **kv, int n, char *, size_t);
int policy_parse_metadata(struct policy_over *, const char *, char *, size_t);
struct json_object *policy_json(
    const struct policy_over *, const struct policy *base);

/* vm.c: the VM registry. */
/* Counters by kind (0: none of the others, HINT, REPORTED, HELD) and
 * result (0: applied, else the RejectReason), and the discard latency
 * histogram. */
#define VM_NKINDS      4
#define VM_NREASONS    16
#define VM_LAT_BUCKETS 12
struct vm_counters {
	uint64_t batches[VM_NKINDS][VM_NREASONS];
	uint64_t ranges[VM_NKINDS][VM_NREASONS];
	uint64_t lat_count[VM_LAT_BUCKETS + 1]; /* last: +Inf */
	double lat_sum; /* seconds */
	uint64_t passes;
	uint64_t pass_bytes; /* HELD bytes accepted in hint passes */
};
extern const double vm_lat_bounds[VM_LAT_BUCKETS]; /* seconds */

enum vm_transport {
	VM_TRANSPORT_NONE = 0,
	VM_TRANSPORT_CHANNEL,
	VM_TRANSPORT_VSOCK
};

struct vm {
	char *name;
	char *source;
	uint32_t cid;
	char *channel;
	bool channel_qemu; /* vm_desc.channel_qemu */
	pid_t qemu_pid;
	int qemu_pidfd; /* -1 when none: vm.c watches it for QEMU's exit */
	struct event *qemu_exit;
	bool qemu_gone; /* QEMU exited: no map until the source says more */
	char *unservable;
	char *dma_why; /* the source's word: a device DMAs into its RAM */
	unsigned dma_checks; /* priv_dma asked, not answered: no discard */
	vm_hmp_fn hmp;
	void *hmp_ctx;
	struct vm_mapload *mapload; /* vm.c: the map being read, or NULL */
	struct event *map_retry; /* after a failed map load */
	int map_backoff_ms;

	struct memmap map;
	Freehint__Mode map_mode; /* what the backing allows */
	char *map_why;
	Freehint__Mode mode; /* what the connected guest gets */
	char *mode_why;

	/* Postcopy (vm_source_migration): why nothing is punched, or NULL. */
	char *nodiscard_why;
	bool postcopy; /* a postcopy migration is running */
	bool running; /* the vCPUs run here, as far as the source said */

	struct guest *guest;
	enum vm_transport transport;
	struct budget budget; /* across sessions (validate.c) */
	struct chan *chan; /* listen.c: the channel connector */

	struct policy_over pol; /* policy.c: this VM's own keys */

	/*
	 * The VM's discards in flight: they outlive an agent's session (what
	 * they punch still counts); agent_gen tells whose batch one was (a
	 * new agent, or one restarted, gets no Ack of its predecessor's).
	 */
	struct punchq *pq;
	uint64_t agent_gen;

	uint64_t guest_free_bytes;
	/* The agent's last Stats: free blocks by order, and when. */
	uint64_t guest_free_by_order[FREEHINTD_MAX_ORDERS];
	size_t guest_free_norders;
	uint64_t guest_stats_ms; /* fh_monotonic_ms(); 0: none yet */
	uint64_t reclaimed_bytes;
	uint64_t held_bytes;
	uint64_t ranges_applied;
	uint64_t ranges_rejected;
	uint64_t batches_applied;
	uint64_t batches_rejected;
	struct vm_counters counters; /* by kind and result, for metrics.c */
	uint64_t pass_id;
	bool pass_active;
	uint64_t pass_started_ms; /* fh_monotonic_ms() */
	bool pass_done; /* its last HELD batch was applied */
	uint64_t pass_bps; /* the last complete pass's speed; 0: none */
	uint64_t pass_sent_bytes; /* its HELD batches taken, punched or not */
	uint64_t pass_ranges, pass_batches; /* and their count */
	bool pass_last_in; /* its last HELD batch came: no more */
	vm_speed_fn speed; /* NULL: the source cannot change the bandwidth */
	void *speed_ctx;
	struct mighold *mighold; /* mighold.c: bandwidth held, or NULL */
	char last_error[256]; /* printable ASCII only: shown to people */
	struct log_rl error_rl;
	/* The last numbered Command (message set 2) and its CommandResult. */
	uint64_t cmd_id;
	Freehint__CommandType cmd_type;
	int cmd_state; /* VM_CMD_* */
	char cmd_detail[128]; /* printable, from fh_strvis */

	TAILQ_ENTRY(vm) entry;
};
TAILQ_HEAD(vm_list, vm);

extern struct vm_list vms;

enum { VM_CMD_NONE, VM_CMD_PENDING, VM_CMD_OK, VM_CMD_FAILED };

struct vm *vm_find(const char *);
struct vm *vm_find_cid(uint32_t);
void vm_set_error(struct vm *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
int vm_hint(struct vm *, char *, size_t);
bool vm_pass_active(struct vm *);
void vm_refresh_later(struct vm *);
void vm_guest_lost(struct vm *);
void vm_check_dma(struct vm *);
int vm_release(struct vm *, char *, size_t);
void vm_pass_over(struct vm *, const char *);
void vm_pass_taken(struct vm *, uint64_t bytes, size_t ranges);
void vm_pass_complete(struct vm *);
int vm_pass_refused(struct vm *, char *, size_t);

/* The hint pass a VM gets: the one place its policy is decided. */
struct pass_policy {
	uint32_t min_order; /* smallest held block, in guest pages */
	uint32_t hold_ms; /* migration bandwidth held down at most this */
	uint64_t hold_bps; /* to this */
};
struct pass_policy vm_pass_policy(const struct vm *, uint32_t guest_page);

/* passcost.c: whether a migration's own pass pays. */
struct pass_estimate {
	uint64_t capture; /* bytes the pass would capture */
	uint64_t gain; /* of them, bytes QEMU would send whole */
	uint64_t speed; /* bytes a second it captures */
	uint64_t cost_ms; /* the pass and QEMU's wait */
	uint64_t ceiling; /* it pays below this bandwidth; UINT64_MAX: any */
};
struct pass_figures {
	uint64_t ram; /* the guest's RAM */
	int64_t alloc; /* of it, allocated in the backing; -1: private */
	uint64_t limit; /* the pass's byte limit */
	const uint64_t *by_order; /* the guest's free blocks by order (Stats) */
	size_t norders;
	uint64_t page; /* the guest's page size */
	uint32_t min_order; /* the pass's */
	uint64_t speed; /* bytes a second the pass captures */
	uint64_t link; /* bytes a second QEMU can send at most */
	bool skips_reported; /* the capture leaves reported blocks alone */
};
uint64_t pass_ceiling(uint64_t capture, uint64_t gain, uint64_t speed,
    uint64_t link, uint64_t *cost_ms);
int pass_weigh(
    const struct pass_figures *, struct pass_estimate *, char *, size_t);
int pass_estimate(
    struct vm *, struct pass_estimate *, char *why, size_t whylen);

/* mighold.c: a migration's bandwidth held down while its pass runs. */
void mighold_start(struct vm *, const struct pass_estimate *);
void mighold_migration(struct vm *);
void mighold_end(struct vm *, const char *why);
void vm_remove_all(void);
const char *vm_mode_name(Freehint__Mode);
void vm_count_batch(struct vm *, int kind, int reason, size_t ranges);
void vm_count_discard(struct vm *, uint64_t usec);
int64_t vm_allocated_bytes(const struct vm *);
uint64_t vm_pass_byte_limit(const struct vm *);
int64_t vm_returned_bytes(const struct vm *);
void vm_policy(const struct vm *, struct policy *);
int vm_policy_set(struct vm *, char **kv, int n, char *, size_t);
const char *vm_transport_name(enum vm_transport);
void vm_set_str(char **, const char *);
void vm_dma_found(struct vm *, const char *);

/* vm_map.c: the memory map read from QEMU's monitor, and its mode. */
void vm_load_map(struct vm *, bool fresh);
void vm_map_cancel(struct vm *);

/* qmp.c: the static VM source (--vm name=,qmp=). */
int qmp_static_start(const struct vm_conf *);
void qmp_static_stop_all(void);
void qmp_static_reload(const struct vm_conf_list *);
/* qmpc.c: the asynchronous QMP client. */
struct qmpc;
/* ret: the "return" value (borrowed), or NULL and why. */
typedef void (*qmpc_reply_fn)(
    struct qmpc *, struct json_object *ret, const char *err, void *arg);
struct qmpc_ops {
	void (*ready)(struct qmpc *, void *); /* capabilities negotiated */
	void (*event)(
	    struct qmpc *, const char *name, struct json_object *data, void *);
	void (*lost)(struct qmpc *, const char *why, void *); /* then free */
};

struct qmpc *qmpc_connect(struct event_base *, const char *path, int timeout_ms,
    const struct qmpc_ops *, void *, char *, size_t);
struct qmpc *qmpc_new(struct event_base *, int fd, int timeout_ms,
    const struct qmpc_ops *, void *);
int qmpc_send(struct qmpc *, const char *execute, struct json_object *args,
    qmpc_reply_fn, void *);
bool qmpc_ready(const struct qmpc *);
pid_t qmpc_pid(const struct qmpc *);
void qmpc_free(struct qmpc *);

int qmp_parse_vm(const char *, struct vm_conf *, char *, size_t);

/* guest.c: the session with one agent. */
struct guest *guest_new(struct vm *, int fd, enum vm_transport);
void guest_free(struct guest *);
int guest_command(struct guest *, Freehint__CommandType, uint64_t pass_id,
    uint32_t min_order, uint64_t byte_limit, bool zero);
void guest_record_only(struct guest *);
void guest_devices_checked(struct guest *);
void guest_stop_punching(struct guest *);
void guest_punch_done(struct punch_job *, void *vm);
uint32_t guest_page_size(const struct guest *);
bool guest_skips_reported(const struct guest *);
bool guest_ready(const struct guest *);

/* listen.c: vsock listener and virtio-serial channel connectors. */
struct accept_backoff {
	struct evconnlistener *l;
	struct event *ev; /* resumes the listener */
	const char *name;
	bool (*full)(void); /* the owner keeps it paused while true */
	struct log_rl rl;
};

void accept_backoff_init(struct accept_backoff *, struct evconnlistener *,
    const char *, bool (*)(void));
void accept_backoff_free(struct accept_backoff *);
bool accept_backoff_pending(const struct accept_backoff *);
int listen_vsock(uint32_t port);
int vsock_bind(uint32_t port);
int listen_vsock_fd(int fd, uint32_t port);
void listen_vsock_close(void);
void listen_vsock_take(int fd, uint32_t cid);
void chan_start(struct vm *);
void chan_stop(struct vm *);
void chan_lost(struct vm *);

/*
 * priv.c: what needs freehintd's privileges. In one process (the unit
 * tests) it is done at once; in the worker (ps_worker.c) it is asked of
 * the privileged parent, which checks the request against what the VM's
 * source said (ps_parent.c). Each calls done exactly once, perhaps
 * before it returns.
 */
typedef void (*priv_done)(void *arg, int rc, const char *msg);
/* fd: connected, -1 (could not connect), PRIV_REFUSED (not QEMU's). */
typedef void (*priv_fd_done)(void *arg, int fd, const char *err);
#define PRIV_REFUSED (-2)
/*
 * Open the backing of each region (memmap_resolve): rc 0, or -1 and why;
 * and, read with it, a device that DMAs into guest RAM (dma, or NULL).
 */
typedef void (*priv_resolve_done)(
    void *arg, int rc, const char *why, const char *dma);
void priv_resolve(struct vm *, struct memmap *, priv_resolve_done, void *);
/* A device that DMAs into guest RAM (memmap_dma_devices): rc 1 and which. */
void priv_dma(struct vm *, priv_done, void *);
/* Connect to the VM's channel, whose listener must be its QEMU. */
void priv_channel(struct vm *, priv_fd_done, void *);
/* The libvirt hook's word (vl_notify). */
void priv_notify(const char *event, const char *name, priv_done, void *);
int priv_channel_connect(
    const char *path, pid_t qemu_pid, bool channel_qemu, char *, size_t);
int priv_open_backing(
    struct memmap *, pid_t, int pidfd, char *, size_t, char *dma, size_t);

/* psmsg.c: messages between freehintd's two processes (privsep.h). */
#define PS_MAX_PAYLOAD (1024 * 1024)
#define PS_MAX_FDS     250 /* below SCM_MAX_FD */
struct ps_chan;
struct ps_buf {
	uint8_t *data;
	size_t len, cap;
	int fds[PS_MAX_FDS];
	int nfds;
};
struct ps_rd {
	const uint8_t *p;
	size_t left;
	bool bad;
	int *fds;
	int nfds;
	int fdi; /* the next one to take */
};
typedef int ps_handler_fn(
    struct ps_chan *, uint32_t type, uint64_t id, struct ps_rd *);
struct ps_handler {
	uint32_t type;
	ps_handler_fn *fn;
};

struct ps_chan *ps_chan_new(struct event_base *, int fd,
    const struct ps_handler *, size_t,
    void (*lost)(struct ps_chan *, const char *), void *);
void ps_chan_free(struct ps_chan *);
void *ps_chan_arg(const struct ps_chan *);
void ps_send(struct ps_chan *, uint32_t type, uint64_t id, struct ps_buf *);
void ps_put_u32(struct ps_buf *, uint32_t);
void ps_put_u64(struct ps_buf *, uint64_t);
void ps_put_str(struct ps_buf *, const char *);
int ps_put_fd(struct ps_buf *, int);
void ps_buf_free(struct ps_buf *);
uint32_t ps_get_u32(struct ps_rd *);
uint64_t ps_get_u64(struct ps_rd *);
const char *ps_get_str(struct ps_rd *, size_t max);
int ps_get_fd(struct ps_rd *);

/*
 * privsep.c: the two processes. The parent keeps root and talks to QEMU
 * and libvirt; the worker, started from it, serves everything guests
 * and freehintctl send, as an unprivileged user in an empty root.
 */
struct privsep_conf {
	int control_fd, vsock_fd, metrics_fd; /* bound by the parent, or -1 */
	uid_t uid; /* the worker's */
	gid_t gid;
	const char *user;
	const char *root; /* the worker's empty root */
};
int privsep_prepare(struct privsep_conf *, char *, size_t);
pid_t privsep_fork(struct privsep_conf *, int *fd);
int privsep_drop(const struct privsep_conf *, char *, size_t);
int privsep_reap(pid_t);

/* ps_parent.c: the parent's end. */
void ps_parent_start(struct event_base *, int fd, pid_t worker);
void ps_parent_policy(const struct policy *);
bool ps_parent_alive(unsigned *vms, unsigned *agents);
void ps_parent_stop(void);
extern const struct vm_sink ps_parent_sink;
extern bool ps_parent_failed; /* the worker died: exit non-zero */

/* ps_worker.c: the worker's end. */
void ps_worker_start(struct event_base *, int fd);
bool ps_worker_active(void);
void ps_worker_resolve(struct vm *, struct memmap *, priv_resolve_done, void *);
void ps_worker_dma(struct vm *, priv_done, void *);
void ps_worker_channel(struct vm *, priv_fd_done, void *);
void ps_worker_notify(const char *, const char *, priv_done, void *);
void ps_worker_stop(void);

/* control.c */
int control_open(const char *path, const char *group, const char *admin);
int control_bind(const char *path, const char *group, const char *admin);
int control_serve(int fd);
void control_disown(void);
void control_close(void);

/* metrics.c: the Prometheus text exposition, over HTTP and control. */
struct evbuffer;
void metrics_render(struct evbuffer *);
int metrics_open(const char *addrport);
int metrics_bind(const char *addrport);
int metrics_serve(int fd, const char *addrport);
void metrics_close(void);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * freehint: expose free guest memory to a host agent.
 *
 * Shared declarations of the freehint module. The user interface is
 * described in docs/kmod.md.
 */
#ifndef _FREEHINT_H
#define _FREEHINT_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/mm_types.h>
#include <linux/proc_fs.h>
#include <linux/types.h>
#include <linux/version.h>

/*
 * The snapshot walks the buddy free lists through page->buddy_list and
 * struct free_area, the report channel uses the page reporting API with a
 * driver supplied order and the shrinker is registered with a name: all of
 * these are kernel internals of the 6.1 series.
 */
#if LINUX_VERSION_MAJOR != 6 || LINUX_VERSION_PATCHLEVEL != 1
#error "freehint supports Linux 6.1.x only (buddy lists, reporting, shrinker)"
#endif

#ifndef CONFIG_PAGE_REPORTING
#error "freehint needs a kernel built with CONFIG_PAGE_REPORTING=y"
#endif

/* Longest text accepted in one write() to a freehint file. */
#define FH_WRITE_MAX		4096

/**
 * struct fh_stats - counters shown in /proc/freehint/stats
 * @snapshots: blocks snapshots taken
 * @snapshots_truncated: of which cut at blocks_max_entries
 * @report_batches: batches handed to the report reader
 * @report_blocks: blocks in those batches
 * @report_bytes: bytes in those batches
 * @report_acked_bytes: bytes acknowledged by the reader (now Reported)
 * @report_failed_batches: batches failed, timed out or cut short by close
 * @report_timeouts: batches that timed out
 * @report_rearms: "rearm" commands carried out
 * @hold_bytes: bytes held right now
 * @hold_captured_bytes: bytes ever captured
 * @hold_released_bytes: bytes given back by release, close, timeout or exit
 * @hold_shrunk_bytes: bytes given back by the shrinker
 * @hold_zeroed_pages: pages zeroed by a capture with "zero"
 * @hold_skipped_bytes: reported free bytes a "skip_reported" capture left
 * @hold_offlined_bytes: bytes given back to memory offlining
 */
struct fh_stats {
	atomic64_t snapshots;
	atomic64_t snapshots_truncated;
	atomic64_t report_batches;
	atomic64_t report_blocks;
	atomic64_t report_bytes;
	atomic64_t report_acked_bytes;
	atomic64_t report_failed_batches;
	atomic64_t report_timeouts;
	atomic64_t report_rearms;
	atomic64_t hold_bytes;
	atomic64_t hold_captured_bytes;
	atomic64_t hold_released_bytes;
	atomic64_t hold_shrunk_bytes;
	atomic64_t hold_zeroed_pages;
	atomic64_t hold_skipped_bytes;
	atomic64_t hold_offlined_bytes;
};

extern struct fh_stats fh_stats;

/* Module parameters (freehint_main.c). */
extern unsigned int fh_blocks_min_order;
extern unsigned long fh_blocks_max_entries;
extern unsigned int fh_report_order;
extern unsigned int fh_report_timeout_ms;
extern unsigned int fh_report_grace_ms;
extern unsigned int fh_hold_reserve_mb;
extern unsigned int fh_hold_timeout_ms;
extern bool fh_report_poison_ok;

/* Upper bound of the *_timeout_ms and *_grace_ms parameters: 10 minutes. */
#define FH_MS_PARAM_MAX		600000U
/* Bounds of blocks_max_entries. */
#define FH_BLOCKS_MAX_ENTRIES_DEFAULT	262144UL
#define FH_BLOCKS_MAX_ENTRIES_LIMIT	(16UL << 20)

/* freehint_main.c */
int fh_write_lines(const char __user *ubuf, size_t count,
		   int (*fn)(char *line, void *ctx), void *ctx);
int fh_parse_id_cmd(char *line, const char *verb, u64 *id);
void fh_sleep_idle_ms(unsigned int ms);
void fh_scribble(struct page *page, unsigned int order);

/* blocks.c */
extern const struct proc_ops fh_blocks_ops;
int fh_blocks_init(void);
void fh_blocks_exit(void);

/* report.c */
extern const struct proc_ops fh_report_ops;
int fh_report_init(void);
void fh_report_exit(void);
void fh_report_stop_readers(void);
bool fh_report_registered(void);
const char *fh_report_owner(void);
const char *fh_report_off_reason(void);
unsigned int fh_report_effective_order(void);

/* hold.c */
extern const struct proc_ops fh_hold_ops;
int fh_hold_init(void);
void fh_hold_exit(void);
void fh_hold_stop(void);

#endif /* _FREEHINT_H */

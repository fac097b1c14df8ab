// SPDX-License-Identifier: GPL-2.0
/*
 * freehint: expose free guest memory to a host agent.
 *
 * The module that the three /proc files (blocks.c, report.c, hold.c)
 * belong to: its load and unload, its parameters, its stats file, and
 * the few routines those files share.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/highmem.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/nodemask.h>
#include <linux/poison.h>
#include <linux/proc_fs.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "freehint.h"

struct fh_stats fh_stats;

unsigned int fh_blocks_min_order;
module_param_named(blocks_min_order, fh_blocks_min_order, uint, 0644);
MODULE_PARM_DESC(blocks_min_order,
		 "Smallest order listed in /proc/freehint/blocks (default 0)");

unsigned int fh_report_order;
module_param_named(report_order, fh_report_order, uint, 0444);
MODULE_PARM_DESC(report_order,
		 "Page reporting order, 0 for pageblock_order (default 0)");

/*
 * The timeouts and the grace period are waited for in the report callback,
 * in the hold's delayed works and in rmmod: bounded so that no value can
 * stall page reporting or an unload for longer than FH_MS_PARAM_MAX.
 */
static int fh_param_set_ms(const char *val, const struct kernel_param *kp)
{
	unsigned int ms;

	if (kstrtouint(val, 0, &ms) || ms > FH_MS_PARAM_MAX)
		return -EINVAL;
	WRITE_ONCE(*(unsigned int *)kp->arg, ms);
	return 0;
}

static const struct kernel_param_ops fh_param_ms_ops = {
	.set	= fh_param_set_ms,
	.get	= param_get_uint,
};

unsigned int fh_report_timeout_ms = 5000;
module_param_cb(report_timeout_ms, &fh_param_ms_ops, &fh_report_timeout_ms,
		0644);
__MODULE_PARM_TYPE(report_timeout_ms, "uint");
MODULE_PARM_DESC(report_timeout_ms,
		 "How long a report batch waits for ack or fail, at most 600000 (default 5000)");

unsigned int fh_report_grace_ms = 10000;
module_param_cb(report_grace_ms, &fh_param_ms_ops, &fh_report_grace_ms, 0644);
__MODULE_PARM_TYPE(report_grace_ms, "uint");
MODULE_PARM_DESC(report_grace_ms,
		 "Extra isolation of read but unacknowledged blocks, at most 600000 (default 10000)");

unsigned int fh_hold_reserve_mb = 8;
module_param_named(hold_reserve_mb, fh_hold_reserve_mb, uint, 0644);
MODULE_PARM_DESC(hold_reserve_mb,
		 "Memory left free above each zone's low watermark by a capture (default 8)");

unsigned int fh_hold_timeout_ms = 60000;
module_param_cb(hold_timeout_ms, &fh_param_ms_ops, &fh_hold_timeout_ms, 0644);
__MODULE_PARM_TYPE(hold_timeout_ms, "uint");
MODULE_PARM_DESC(hold_timeout_ms,
		 "Held blocks are released this long after a capture, at most 600000 (default 60000)");

/* A snapshot costs about 40 bytes of kernel memory per block. */
static int fh_param_set_entries(const char *val, const struct kernel_param *kp)
{
	unsigned long n;

	if (kstrtoul(val, 0, &n) || !n || n > FH_BLOCKS_MAX_ENTRIES_LIMIT)
		return -EINVAL;
	WRITE_ONCE(*(unsigned long *)kp->arg, n);
	return 0;
}

static const struct kernel_param_ops fh_param_entries_ops = {
	.set	= fh_param_set_entries,
	.get	= param_get_ulong,
};

unsigned long fh_blocks_max_entries = FH_BLOCKS_MAX_ENTRIES_DEFAULT;
module_param_cb(blocks_max_entries, &fh_param_entries_ops,
		&fh_blocks_max_entries, 0644);
__MODULE_PARM_TYPE(blocks_max_entries, "ulong");
MODULE_PARM_DESC(blocks_max_entries,
		 "Most blocks in one /proc/freehint/blocks snapshot, 1 to 16777216 (default 262144)");

bool fh_report_poison_ok;
module_param_named(report_poison_ok, fh_report_poison_ok, bool, 0644);
MODULE_PARM_DESC(report_poison_ok,
		 "With page_poison=1, register page reporting anyway: the host fills discarded memory with the poison value (default off)");

static struct proc_dir_entry *fh_dir;

/**
 * fh_write_lines() - split a user write into lines and handle each one
 * @ubuf: user buffer
 * @count: its length
 * @fn: called for each non-empty line, without its newline
 * @ctx: passed to @fn
 *
 * At most FH_WRITE_MAX bytes are looked at; a last line without a newline
 * counts only if the whole write fits.
 *
 * Return: bytes consumed, or the negative errno of the first line that
 * failed if no line before it was consumed.
 */
int fh_write_lines(const char __user *ubuf, size_t count,
		   int (*fn)(char *line, void *ctx), void *ctx)
{
	size_t len = min_t(size_t, count, FH_WRITE_MAX);
	char *kbuf, *pos, *nl;
	int done = 0;
	int err = 0;

	if (!count)
		return 0;
	kbuf = memdup_user_nul(ubuf, len);
	if (IS_ERR(kbuf))
		return PTR_ERR(kbuf);

	pos = kbuf;
	while (pos < kbuf + len) {
		nl = strchr(pos, '\n');
		if (!nl && len < count)
			break;
		if (nl)
			*nl = '\0';
		if (strlen(pos) != (nl ? nl : kbuf + len) - pos) {
			err = -EINVAL;	/* embedded NUL */
			break;
		}
		if (*strim(pos)) {
			err = fn(strim(pos), ctx);
			if (err)
				break;
		}
		pos = nl ? nl + 1 : kbuf + len;
		done = pos - kbuf;
	}
	kfree(kbuf);
	if (done)
		return done;
	return err ? err : -EINVAL;
}

/**
 * fh_parse_id_cmd() - parse "<verb> <id>"
 * @line: the line, trimmed
 * @verb: expected first word
 * @id: where the id goes
 *
 * Return: 0 if @line is @verb followed by one decimal id, -ENOENT if the
 * verb differs, -EINVAL if the id is malformed.
 */
int fh_parse_id_cmd(char *line, const char *verb, u64 *id)
{
	size_t vlen = strlen(verb);

	if (strncmp(line, verb, vlen) || (line[vlen] != ' ' && line[vlen] != '\t'))
		return -ENOENT;
	return kstrtou64(skip_spaces(line + vlen), 10, id) ? -EINVAL : 0;
}

/**
 * fh_sleep_idle_ms() - sleep without counting as load or as a hung task
 * @ms: milliseconds
 */
void fh_sleep_idle_ms(unsigned int ms)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);

	while (time_before(jiffies, end))
		schedule_timeout_idle(end - jiffies);
}

/**
 * fh_scribble() - fill a block with garbage, as a host discard at its worst
 * @page: first page of the block
 * @order: its order
 *
 * Only built with -DFREEHINT_SCRIBBLE, for the integrity tests.
 */
void fh_scribble(struct page *page, unsigned int order)
{
#ifdef FREEHINT_SCRIBBLE
	unsigned long i;
	void *addr;

	for (i = 0; i < (1UL << order); i++) {
		addr = kmap_local_page(nth_page(page, i));
		memset(addr, 0x5a, PAGE_SIZE);
		kunmap_local(addr);
		if (!(i % 512))
			cond_resched();
	}
#endif
}

static unsigned long fh_max_pfn(void)
{
	unsigned long max = 0;
	struct zone *zone;
	int nid, z;

	for_each_online_node(nid) {
		for (z = 0; z < MAX_NR_ZONES; z++) {
			zone = &NODE_DATA(nid)->node_zones[z];
			if (populated_zone(zone))
				max = max(max, zone_end_pfn(zone));
		}
	}
	return max;
}

static int fh_stats_show(struct seq_file *m, void *v)
{
#define FH_STAT(name) \
	seq_printf(m, #name " %lld\n", (long long)atomic64_read(&fh_stats.name))
	FH_STAT(snapshots);
	FH_STAT(snapshots_truncated);
	seq_printf(m, "report_registered %d\n", fh_report_registered());
	seq_printf(m, "report_owner %s\n", fh_report_owner());
	seq_printf(m, "report_off_reason %s\n", fh_report_off_reason());
	seq_printf(m, "report_order %u\n", fh_report_effective_order());
	FH_STAT(report_batches);
	FH_STAT(report_blocks);
	FH_STAT(report_bytes);
	FH_STAT(report_acked_bytes);
	FH_STAT(report_failed_batches);
	FH_STAT(report_timeouts);
	FH_STAT(report_rearms);
	FH_STAT(hold_bytes);
	FH_STAT(hold_captured_bytes);
	FH_STAT(hold_released_bytes);
	FH_STAT(hold_shrunk_bytes);
	FH_STAT(hold_zeroed_pages);
	FH_STAT(hold_skipped_bytes);
	FH_STAT(hold_offlined_bytes);
#undef FH_STAT
	seq_printf(m, "page_poisoning %d\n", page_poisoning_enabled());
	seq_printf(m, "init_on_free %d\n", want_init_on_free());
	seq_printf(m, "init_on_alloc %d\n", want_init_on_alloc(0));
	seq_printf(m, "poison_value %d\n", PAGE_POISON);
	seq_printf(m, "page_size %lu\n", PAGE_SIZE);
	seq_printf(m, "max_pfn %lu\n", fh_max_pfn());
	return 0;
}

static int fh_stats_open(struct inode *inode, struct file *file)
{
	return single_open(file, fh_stats_show, NULL);
}

static const struct proc_ops fh_stats_ops = {
	.proc_open	= fh_stats_open,
	.proc_read	= seq_read,
	.proc_lseek	= seq_lseek,
	.proc_release	= single_release,
};

static int __init freehint_init(void)
{
	int err;

	if (fh_blocks_min_order >= MAX_ORDER)
		fh_blocks_min_order = MAX_ORDER - 1;

	err = fh_blocks_init();
	if (err)
		return err;
	err = fh_report_init();
	if (err)
		goto out_blocks;
	err = fh_hold_init();
	if (err)
		goto out_report;

	err = -ENOMEM;
	fh_dir = proc_mkdir("freehint", NULL);
	if (!fh_dir)
		goto out_hold;
	/* Free pfns are for root only, as in /proc/self/pagemap. */
	if (!proc_create("blocks", 0400, fh_dir, &fh_blocks_ops) ||
	    !proc_create("report", 0600, fh_dir, &fh_report_ops) ||
	    !proc_create("hold", 0600, fh_dir, &fh_hold_ops) ||
	    !proc_create("stats", 0444, fh_dir, &fh_stats_ops))
		goto out_proc;

	pr_info("loaded: report channel %s, report order %u\n",
		fh_report_registered() ? "on" : "off",
		fh_report_effective_order());
	return 0;

out_proc:
	proc_remove(fh_dir);
out_hold:
	fh_hold_exit();
out_report:
	fh_report_exit();
out_blocks:
	fh_blocks_exit();
	return err;
}

static void __exit freehint_exit(void)
{
	/*
	 * Closes any open file once the reads in progress have returned:
	 * pending batches fail, read ones get their grace, holds are released.
	 */
	fh_report_stop_readers();
	fh_hold_stop();
	proc_remove(fh_dir);
	fh_hold_exit();
	fh_report_exit();
	fh_blocks_exit();
}

module_init(freehint_init);
module_exit(freehint_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("freehint project");
MODULE_DESCRIPTION("Free page snapshots, page reporting and capture for a host agent");

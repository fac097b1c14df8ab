// SPDX-License-Identifier: GPL-2.0
/*
 * freehint: /proc/freehint/hold, capture free memory for a migration.
 *
 * "capture" allocates free blocks, largest first, without reclaim and
 * without touching reserves, and holds them. Reading hands them out in
 * batches; a batch that was read is "in flight" (the host may be
 * discarding it) until "ack <id>" or "fail <id>", after which it is "done".
 * The shrinker gives unread and done blocks back under memory pressure,
 * never in-flight ones. "release" and hold_timeout_ms free unread and done
 * blocks; in-flight ones stay the reader's until it answers. Close and
 * module exit free everything; in-flight blocks then stay held for the
 * grace period fixed when their batch was read (printed in its header).
 * At most FH_HOLD_MAX_INFLIGHT batches, and a quarter of memory, are in
 * flight at once.
 *
 * Held blocks are linked through page->lru, their order is kept in
 * page->private: the pages are ours while held. The first page of each is
 * PageOffline (memory the guest must not use, as in a balloon), so that
 * memory offlining gets as far as the memory notifier, which gives unread
 * and done blocks back.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ctype.h>
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/memory.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/mutex.h>
#include <linux/nodemask.h>
#include <linux/notifier.h>
#include <linux/page-flags.h>
#include <linux/poll.h>
#include <linux/proc_fs.h>
#include <linux/sched/signal.h>
#include <linux/shrinker.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/swap.h>
#include <linux/uaccess.h>
#include <linux/vmstat.h>
#include <linux/workqueue.h>

#include "freehint.h"

/*
 * A batch has at most FH_HOLD_BATCH blocks, no more than the reader's
 * buffer holds (a header and FH_HOLD_LINE bytes a block), and at most
 * FH_HOLD_BATCH_BYTES (unless its first block is larger), which the
 * host's default max-batch-bytes takes: the host takes a batch at a time,
 * so a pass of small blocks moves at the batch rate times this.
 */
#define FH_HOLD_BATCH	1024
#define FH_HOLD_BATCH_BYTES	SZ_256M
#define FH_HOLD_HEADER	64
#define FH_HOLD_LINE	24
#define FH_HOLD_BUF	(FH_HOLD_HEADER + FH_HOLD_BATCH * FH_HOLD_LINE)
/*
 * A reader that never answers pins at most this many batches, and at most
 * a quarter of the guest's memory: the rest stays within the shrinker's
 * reach, however the host behaves.
 */
#define FH_HOLD_MAX_INFLIGHT	32
#define FH_HOLD_INFLIGHT_SHIFT	2
/*
 * "skip_reported" counts a zone's free blocks one order at a time with
 * zone->lock held (irqs off): at most this many list entries per order,
 * so a huge fragmented zone keeps each lock hold short.
 */
#define FH_HOLD_COUNT_MAX	16384
/*
 * A "skip_reported" capture allocates movable blocks and counts only the
 * movable lists: that is where a guest's free memory mostly is, and an
 * allocation of its own type takes the head of the smallest list that
 * can serve it, so a counted order is served from the blocks counted
 * (but for the per-CPU lists, which refill in batches and may split a
 * larger, possibly reported, block once an order's list runs dry).
 * Any other type, once its own lists run dry, steals the largest free
 * block of another type: on a reporting guest, a reported one. A kernel
 * with CMA would also serve movable allocations from CMA pageblocks,
 * which must stay migratable, and a module cannot tell them apart
 * (get_pfnblock_flags_mask is not exported): there the capture stays
 * reclaimable and counts every list, as a bound only.
 */
#define FH_SKIP_MOVABLE	(!IS_ENABLED(CONFIG_CMA))

/**
 * struct fh_hold_batch - blocks handed out by one read
 * @node: in fh_hold.batches, or fh_hold.orphans once released
 * @pages: the blocks, through page->lru
 * @id: batch id shown to the reader
 * @grace_ms: how long it stays held after a close, fixed when read
 * @deadline: jiffies after which an orphan may be freed
 */
struct fh_hold_batch {
	struct list_head node;
	struct list_head pages;
	u64 id;
	unsigned int grace_ms;
	unsigned long deadline;
};

/**
 * struct fh_hold - state of the hold file
 * @mutex: serializes commands, reads, close and the timeout
 * @lock: protects the lists and counters; taken by the shrinker
 * @unread: captured blocks not yet read
 * @done: blocks acknowledged or failed by the reader
 * @batches: read batches in flight
 * @orphans: in-flight batches already released, freed after the grace time
 * @unread_pages: pages on @unread
 * @done_pages: pages on @done
 * @inflight: batches on @batches
 * @inflight_pages: pages in them
 * @next_id: last batch id handed out
 * @open: the file is open (exclusive)
 * @stopping: the module is going away: captures stop early
 * @buf: read buffer of the opener
 * @pollq: pollers wait here for unread blocks
 * @timeout_work: releases everything hold_timeout_ms after a capture
 * @grace_work: frees orphans whose grace time is over
 * @shrinker: gives unread and done blocks back under memory pressure
 * @memory_nb: gives unread and done blocks back to memory offlining
 */
struct fh_hold {
	struct mutex mutex;	/* commands, reads, close, timeout */
	spinlock_t lock;	/* lists and page counters */
	struct list_head unread;
	struct list_head done;
	struct list_head batches;
	struct list_head orphans;
	unsigned long unread_pages;
	unsigned long done_pages;
	unsigned int inflight;
	unsigned long inflight_pages;
	u64 next_id;
	bool open;
	bool stopping;
	char *buf;
	wait_queue_head_t pollq;
	struct delayed_work timeout_work;
	struct delayed_work grace_work;
	struct shrinker shrinker;
	struct notifier_block memory_nb;
};

static struct fh_hold fh_hold;

static unsigned long fh_list_pages(struct list_head *list)
{
	unsigned long pages = 0;
	struct page *page;

	list_for_each_entry(page, list, lru)
		pages += 1UL << page_private(page);
	return pages;
}

/* Free the blocks on @list; returns bytes freed. Must not hold h->lock. */
static u64 fh_free_blocks(struct list_head *list, atomic64_t *counter,
			  bool can_sleep)
{
	struct page *page, *next;
	unsigned int order;
	u64 bytes = 0;

	list_for_each_entry_safe(page, next, list, lru) {
		order = page_private(page);
		list_del(&page->lru);
		set_page_private(page, 0);
		__ClearPageOffline(page);
		__free_pages(page, order);
		bytes += PAGE_SIZE << order;
		if (can_sleep)
			cond_resched();
	}
	atomic64_sub(bytes, &fh_stats.hold_bytes);
	atomic64_add(bytes, counter);
	return bytes;
}

/*
 * Free every unread and done block. In-flight batches stay the reader's
 * until it answers, unless it is gone (@closing): then they become orphans,
 * freed once the grace period their batch was read with is over.
 */
static void fh_hold_release_all(struct fh_hold *h, bool closing)
{
	struct fh_hold_batch *b;
	unsigned long first = 0;
	bool have = false;
	LIST_HEAD(blocks);

	spin_lock(&h->lock);
	list_splice_init(&h->unread, &blocks);
	list_splice_init(&h->done, &blocks);
	h->unread_pages = 0;
	h->done_pages = 0;
	if (closing && !list_empty(&h->batches)) {
		list_for_each_entry(b, &h->batches, node)
			b->deadline = jiffies + msecs_to_jiffies(b->grace_ms);
		list_splice_tail_init(&h->batches, &h->orphans);
		/* The first deadline of all orphans, older ones included. */
		list_for_each_entry(b, &h->orphans, node) {
			if (!have || time_before(b->deadline, first))
				first = b->deadline;
			have = true;
		}
		h->inflight = 0;
		h->inflight_pages = 0;
		mod_delayed_work(system_wq, &h->grace_work,
				 time_after(first, jiffies) ? first - jiffies : 0);
	}
	spin_unlock(&h->lock);
	fh_free_blocks(&blocks, &fh_stats.hold_released_bytes, true);
}

static void fh_hold_grace_fn(struct work_struct *work)
{
	struct fh_hold *h = container_of(to_delayed_work(work), struct fh_hold,
					 grace_work);
	struct fh_hold_batch *b, *tmp;
	unsigned long next = 0;
	bool more = false;
	LIST_HEAD(blocks);
	LIST_HEAD(dead);

	spin_lock(&h->lock);
	list_for_each_entry_safe(b, tmp, &h->orphans, node) {
		if (time_after_eq(jiffies, b->deadline)) {
			list_splice_init(&b->pages, &blocks);
			list_move(&b->node, &dead);
		} else if (!more || time_before(b->deadline, next)) {
			next = b->deadline;
			more = true;
		}
	}
	if (more)
		mod_delayed_work(system_wq, &h->grace_work,
				 time_after(next, jiffies) ? next - jiffies : 0);
	spin_unlock(&h->lock);

	fh_free_blocks(&blocks, &fh_stats.hold_released_bytes, true);
	list_for_each_entry_safe(b, tmp, &dead, node)
		kfree(b);
}

static void fh_hold_timeout_fn(struct work_struct *work)
{
	struct fh_hold *h = container_of(to_delayed_work(work), struct fh_hold,
					 timeout_work);

	mutex_lock(&h->mutex);
	fh_hold_release_all(h, false);
	mutex_unlock(&h->mutex);
}

static unsigned long fh_hold_count(struct shrinker *s,
				   struct shrink_control *sc)
{
	struct fh_hold *h = container_of(s, struct fh_hold, shrinker);
	unsigned long n = READ_ONCE(h->unread_pages) + READ_ONCE(h->done_pages);

	return n ? n : SHRINK_EMPTY;
}

static unsigned long fh_hold_scan(struct shrinker *s,
				  struct shrink_control *sc)
{
	struct fh_hold *h = container_of(s, struct fh_hold, shrinker);
	unsigned long freed = 0, pages;
	struct list_head *from;
	struct page *page;
	LIST_HEAD(blocks);

	spin_lock(&h->lock);
	while (freed < sc->nr_to_scan) {
		/* Done blocks first: the host has seen them already. */
		if (!list_empty(&h->done))
			from = &h->done;
		else if (!list_empty(&h->unread))
			from = &h->unread;
		else
			break;
		page = list_first_entry(from, struct page, lru);
		pages = 1UL << page_private(page);
		list_move(&page->lru, &blocks);
		if (from == &h->done)
			h->done_pages -= pages;
		else
			h->unread_pages -= pages;
		freed += pages;
	}
	spin_unlock(&h->lock);

	if (!freed)
		return SHRINK_STOP;
	fh_free_blocks(&blocks, &fh_stats.hold_shrunk_bytes, false);
	/* Let reclaim count these pages as progress. */
	if (current->reclaim_state)
		current->reclaim_state->reclaimed_slab += freed;
	return freed;
}

/* Can @zone give away @pages and stay above its low watermark + reserve? */
static bool fh_zone_has_room(struct zone *zone, unsigned long pages)
{
	unsigned long floor = low_wmark_pages(zone) +
		((unsigned long)READ_ONCE(fh_hold_reserve_mb) << (20 - PAGE_SHIFT));

	return zone_page_state(zone, NR_FREE_PAGES) >= floor + pages;
}

static unsigned long fh_zero_block(struct page *page, unsigned int order)
{
	unsigned long i, zeroed = 0;
	void *addr;

	for (i = 0; i < (1UL << order); i++) {
		addr = kmap_local_page(nth_page(page, i));
		if (memchr_inv(addr, 0, PAGE_SIZE)) {
			clear_page(addr);
			zeroed++;
		}
		kunmap_local(addr);
	}
	return zeroed;
}

/*
 * The gfp zone modifiers that make @zt the highest zone allocated from, in
 * @gfp; false for zones never captured from. ZONE_MOVABLE (and the CMA
 * pageblocks, which only movable allocations may use) must stay movable
 * for memory offlining and CMA: held blocks cannot be migrated.
 */
static bool fh_zone_gfp(enum zone_type zt, gfp_t *gfp)
{
	switch (zt) {
#ifdef CONFIG_ZONE_DMA32
	case ZONE_DMA32:
		*gfp = __GFP_DMA32;
		return true;
#endif
	case ZONE_NORMAL:
		*gfp = 0;
		return true;
	default:
		return false;
	}
}

/*
 * For "skip_reported": count @zone's free blocks of @order on the lists
 * a capture takes from (FH_SKIP_MOVABLE) that the kernel has not reported
 * (!PageReported). The kernel puts reported blocks at the tail and
 * allocates from the head, so a count cut short at FH_HOLD_COUNT_MAX
 * entries still counts blocks at the head. The reported ones seen add
 * up in hold_skipped_bytes.
 */
static unsigned long fh_count_unreported(struct zone *zone,
					 unsigned int order)
{
	unsigned long flags, seen = 0, n = 0;
	u64 reported = 0;
	struct page *page;
	int mt;

	spin_lock_irqsave(&zone->lock, flags);
	for (mt = 0; mt < MIGRATE_PCPTYPES; mt++) {
		if (FH_SKIP_MOVABLE && mt != MIGRATE_MOVABLE)
			continue;
		list_for_each_entry(page,
				    &zone->free_area[order].free_list[mt],
				    buddy_list) {
			if (++seen > FH_HOLD_COUNT_MAX)
				goto out;
			if (PageReported(page))
				reported += PAGE_SIZE << order;
			else
				n++;
		}
	}
out:
	spin_unlock_irqrestore(&zone->lock, flags);
	atomic64_add(reported, &fh_stats.hold_skipped_bytes);
	return n;
}

/*
 * Capture from one zone of one node. Returns 0 when the zone has reached
 * its floor or the byte limit is reached, or a negative errno.
 */
static int fh_capture_zone(struct fh_hold *h, int nid, enum zone_type zt,
			   gfp_t zone_gfp, unsigned int min_order, u64 limit,
			   bool zero, bool skip_reported, u64 *held)
{
	struct zone *zone = &NODE_DATA(nid)->node_zones[zt];
	gfp_t gfp = (GFP_HIGHUSER & ~(__GFP_RECLAIM | GFP_ZONEMASK)) |
		    __GFP_NORETRY | __GFP_NOWARN | __GFP_NOMEMALLOC |
		    __GFP_THISNODE | zone_gfp;
	unsigned long left, zeroed;
	struct page *page;
	int order;

	/*
	 * Reclaimable, like other memory a shrinker gives back; or, skipping
	 * reported blocks, the type whose lists were counted
	 * (FH_SKIP_MOVABLE). Movable there only while held, for a
	 * migration's seconds, as memory pinned for I/O is; ZONE_MOVABLE is
	 * still never allocated from (the zone modifiers above).
	 */
	gfp |= skip_reported && FH_SKIP_MOVABLE ? __GFP_MOVABLE
						: __GFP_RECLAIMABLE;
	for (order = MAX_ORDER - 1; order >= (int)min_order; order--) {
		left = ULONG_MAX;
		if (skip_reported) {
			if (*held + (PAGE_SIZE << order) > limit ||
			    !fh_zone_has_room(zone, 1UL << order))
				continue;
			left = fh_count_unreported(zone, order);
		}
		while (*held + (PAGE_SIZE << order) <= limit) {
			if (!left)
				break;
			if (left != ULONG_MAX)
				left--;
			if (fatal_signal_pending(current) ||
			    READ_ONCE(h->stopping))
				return -EINTR;
			if (!fh_zone_has_room(zone, 1UL << order))
				return 0;
			page = alloc_pages_node(nid, gfp, order);
			if (!page)
				break;
			/* A fallback to a lower zone must respect its floor. */
			if (page_zone(page) != zone &&
			    !fh_zone_has_room(page_zone(page), 0)) {
				__free_pages(page, order);
				break;
			}
			zeroed = zero ? fh_zero_block(page, order) : 0;
			set_page_private(page, order);
			/*
			 * Logically offline while held (the host may discard
			 * it), as balloon drivers mark their pages: offlining
			 * then isolates the range instead of refusing the
			 * unmovable page, and the memory notifier gives the
			 * block back.
			 */
			__SetPageOffline(page);
			spin_lock(&h->lock);
			list_add_tail(&page->lru, &h->unread);
			h->unread_pages += 1UL << order;
			spin_unlock(&h->lock);
			*held += PAGE_SIZE << order;
			atomic64_add(PAGE_SIZE << order, &fh_stats.hold_bytes);
			atomic64_add(PAGE_SIZE << order,
				     &fh_stats.hold_captured_bytes);
			atomic64_add(zeroed, &fh_stats.hold_zeroed_pages);
			cond_resched();
		}
	}
	return 0;
}

/*
 * "limit=" value: decimal digits and an optional K, M, G, T, P or E
 * suffix. Unlike memparse(), values beyond U64_MAX are refused instead
 * of wrapping around to a small limit.
 */
static int fh_parse_bytes(const char *s, u64 *bytes)
{
	size_t digits = strspn(s, "0123456789");
	unsigned int shift = 0;
	char num[24];
	u64 v;

	if (!digits || digits >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, digits);
	num[digits] = '\0';
	if (kstrtou64(num, 10, &v))
		return -EINVAL;
	switch (s[digits]) {
	case '\0':
		break;
	case 'E': case 'e':
		shift += 10;
		fallthrough;
	case 'P': case 'p':
		shift += 10;
		fallthrough;
	case 'T': case 't':
		shift += 10;
		fallthrough;
	case 'G': case 'g':
		shift += 10;
		fallthrough;
	case 'M': case 'm':
		shift += 10;
		fallthrough;
	case 'K': case 'k':
		shift += 10;
		if (s[digits + 1])
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (v > (U64_MAX >> shift))
		return -EINVAL;
	*bytes = v << shift;
	return 0;
}

static int fh_hold_capture(struct fh_hold *h, char *args)
{
	unsigned int min_order = 0;
	u64 limit = U64_MAX, held = 0;
	bool zero = false, skip_reported = false;
	gfp_t zone_gfp;
	char *tok;
	int nid, zt, err = 0;

	while ((tok = strsep(&args, " \t"))) {
		if (!*tok)
			continue;
		if (!strncmp(tok, "min_order=", 10)) {
			if (kstrtouint(tok + 10, 10, &min_order) ||
			    min_order >= MAX_ORDER)
				return -EINVAL;
		} else if (!strncmp(tok, "limit=", 6)) {
			if (fh_parse_bytes(tok + 6, &limit))
				return -EINVAL;
		} else if (!strcmp(tok, "zero")) {
			zero = true;
		} else if (!strcmp(tok, "skip_reported")) {
			skip_reported = true;
		} else {
			return -EINVAL;
		}
	}

	for_each_online_node(nid) {
		for (zt = MAX_NR_ZONES - 1; zt >= 0 && !err; zt--) {
			if (!fh_zone_gfp(zt, &zone_gfp) ||
			    !populated_zone(&NODE_DATA(nid)->node_zones[zt]))
				continue;
			err = fh_capture_zone(h, nid, zt, zone_gfp, min_order,
					      limit, zero, skip_reported,
					      &held);
		}
	}
	if (held) {
		mod_delayed_work(system_wq, &h->timeout_work,
				 msecs_to_jiffies(READ_ONCE(fh_hold_timeout_ms)));
		wake_up_interruptible_poll(&h->pollq, EPOLLIN | EPOLLRDNORM);
	}
	return err;
}

/* Does a held block at @page overlap [@start, @end)? */
static bool fh_block_in(struct page *page, unsigned long start,
			unsigned long end)
{
	unsigned long pfn = page_to_pfn(page);

	return pfn < end && pfn + (1UL << page_private(page)) > start;
}

/* Move the blocks of @from inside [@start, @end) to @to; returns pages. */
static unsigned long fh_take_range(struct list_head *from, struct list_head *to,
				   unsigned long start, unsigned long end)
{
	struct page *page, *next;
	unsigned long pages = 0;

	list_for_each_entry_safe(page, next, from, lru) {
		if (fh_block_in(page, start, end)) {
			pages += 1UL << page_private(page);
			list_move(&page->lru, to);
		}
	}
	return pages;
}

/*
 * Memory offlining: give back the unread and done blocks in the range.
 * Offlining isolated the range first, which PageOffline let it do, so the
 * blocks go to the isolated free lists and no capture can take them
 * again. In-flight blocks (the host may be discarding them) cannot be
 * given back: the offlining then fails with -EBUSY and its caller
 * (virtio-mem, or whoever wrote "offline" to sysfs) retries later, once
 * the batch has been answered.
 */
static int fh_hold_memory_cb(struct notifier_block *nb, unsigned long action,
			     void *arg)
{
	struct fh_hold *h = container_of(nb, struct fh_hold, memory_nb);
	struct memory_notify *mn = arg;
	unsigned long start = mn->start_pfn, end = start + mn->nr_pages;
	struct fh_hold_batch *b;
	struct page *page;
	bool busy = false;
	LIST_HEAD(blocks);

	if (action != MEM_GOING_OFFLINE)
		return NOTIFY_OK;

	spin_lock(&h->lock);
	h->unread_pages -= fh_take_range(&h->unread, &blocks, start, end);
	h->done_pages -= fh_take_range(&h->done, &blocks, start, end);
	list_for_each_entry(b, &h->batches, node)
		list_for_each_entry(page, &b->pages, lru)
			busy |= fh_block_in(page, start, end);
	list_for_each_entry(b, &h->orphans, node)
		list_for_each_entry(page, &b->pages, lru)
			busy |= fh_block_in(page, start, end);
	spin_unlock(&h->lock);

	fh_free_blocks(&blocks, &fh_stats.hold_offlined_bytes, true);
	if (busy)
		return notifier_from_errno(-EBUSY);
	return NOTIFY_OK;
}

/*
 * Ack or fail of an in-flight batch: its blocks are done. Orphans (their
 * reader closed the file) are not answerable: only their grace frees them.
 */
static int fh_hold_settle(struct fh_hold *h, u64 id, bool discarded)
{
	struct fh_hold_batch *b, *found = NULL;

	spin_lock(&h->lock);
	list_for_each_entry(b, &h->batches, node) {
		if (b->id == id) {
			found = b;
			break;
		}
	}
	if (!found) {
		spin_unlock(&h->lock);
		return -EINVAL;
	}
	list_del(&found->node);
	h->inflight--;
	h->inflight_pages -= fh_list_pages(&found->pages);
	spin_unlock(&h->lock);

	/* Out of every list: neither the shrinker nor the grace work sees it. */
	if (discarded) {
		struct page *page;

		list_for_each_entry(page, &found->pages, lru)
			fh_scribble(page, page_private(page));
	}

	spin_lock(&h->lock);
	h->done_pages += fh_list_pages(&found->pages);
	list_splice_tail_init(&found->pages, &h->done);
	spin_unlock(&h->lock);
	kfree(found);
	return 0;
}

static int fh_hold_cmd(char *line, void *ctx)
{
	struct fh_hold *h = ctx;
	u64 id;
	int err;

	if (!strncmp(line, "capture", 7) && (!line[7] || isspace(line[7])))
		return fh_hold_capture(h, line + 7);
	if (!strcmp(line, "release")) {
		fh_hold_release_all(h, false);
		return 0;
	}
	err = fh_parse_id_cmd(line, "ack", &id);
	if (!err)
		return fh_hold_settle(h, id, true);
	if (err == -ENOENT && !fh_parse_id_cmd(line, "fail", &id))
		return fh_hold_settle(h, id, false);
	return -EINVAL;
}

static int fh_hold_open(struct inode *inode, struct file *file)
{
	struct fh_hold *h = &fh_hold;
	char *buf;
	int err = 0;

	buf = kvmalloc(FH_HOLD_BUF, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&h->mutex);
	if (h->open) {
		err = -EBUSY;
	} else {
		h->open = true;
		h->buf = buf;
	}
	mutex_unlock(&h->mutex);
	if (err) {
		kvfree(buf);
		return err;
	}
	return stream_open(inode, file);
}

static ssize_t fh_hold_write(struct file *file, const char __user *ubuf,
			     size_t count, loff_t *ppos)
{
	struct fh_hold *h = &fh_hold;
	ssize_t ret;

	if (mutex_lock_interruptible(&h->mutex))
		return -ERESTARTSYS;
	ret = fh_write_lines(ubuf, count, fh_hold_cmd, h);
	mutex_unlock(&h->mutex);
	return ret;
}

static ssize_t fh_hold_read(struct file *file, char __user *ubuf,
			    size_t count, loff_t *ppos)
{
	struct fh_hold *h = &fh_hold;
	struct fh_hold_batch *b;
	struct page *page, *last = NULL;
	unsigned long cap, pages, batch_pages = 0;
	unsigned int n = 0, most;
	ssize_t ret;
	size_t len;

	if (count < FH_HOLD_HEADER + FH_HOLD_LINE)
		return -EINVAL;
	most = min_t(size_t, FH_HOLD_BATCH,
		     (count - FH_HOLD_HEADER) / FH_HOLD_LINE);

	b = kmalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	INIT_LIST_HEAD(&b->pages);
	if (mutex_lock_interruptible(&h->mutex)) {
		kfree(b);
		return -ERESTARTSYS;
	}

	cap = totalram_pages() >> FH_HOLD_INFLIGHT_SHIFT;
	spin_lock(&h->lock);
	if (!list_empty(&h->unread) && h->inflight >= FH_HOLD_MAX_INFLIGHT) {
		spin_unlock(&h->lock);
		ret = -EBUSY;
		goto out;
	}
	/*
	 * The batch stops where it would take the pages in flight past the
	 * cap; only a first batch of one block may (a tiny guest).
	 */
	list_for_each_entry(page, &h->unread, lru) {
		pages = 1UL << page_private(page);
		if (n == most ||
		    (n && batch_pages + pages >
				  FH_HOLD_BATCH_BYTES >> PAGE_SHIFT) ||
		    ((n || h->inflight_pages) &&
		     h->inflight_pages + batch_pages + pages > cap))
			break;
		batch_pages += pages;
		last = page;
		n++;
	}
	if (!n) {
		spin_unlock(&h->lock);
		ret = list_empty(&h->unread) ? 0 : -EBUSY;
		goto out;
	}
	b->id = ++h->next_id;
	/* The promise made with this batch: no later change shortens it. */
	b->grace_ms = READ_ONCE(fh_report_grace_ms);
	list_cut_position(&b->pages, &h->unread, &last->lru);
	h->unread_pages -= batch_pages;
	list_add_tail(&b->node, &h->batches);
	h->inflight++;
	h->inflight_pages += batch_pages;
	spin_unlock(&h->lock);

	/*
	 * In flight: neither the shrinker nor a release frees these now, and
	 * only a holder of h->mutex settles the batch, so its list is ours
	 * to format outside the lock the shrinker takes. The header (at most
	 * 58 bytes) and the lines (at most 22) fit @count by @most.
	 */
	len = scnprintf(h->buf, FH_HOLD_BUF, "batch %llu %u grace_ms=%u\n",
			b->id, n, b->grace_ms);
	list_for_each_entry(page, &b->pages, lru) {
		len += scnprintf(h->buf + len, FH_HOLD_BUF - len, "0x%lx %lu\n",
				 page_to_pfn(page), page_private(page));
		fh_scribble(page, page_private(page));
	}

	/*
	 * Part of the batch may have reached the reader: it stays in flight
	 * until answered, or until a close plus its grace.
	 */
	ret = copy_to_user(ubuf, h->buf, len) ? -EFAULT : len;
	mutex_unlock(&h->mutex);
	return ret;

out:
	mutex_unlock(&h->mutex);
	kfree(b);
	return ret;
}

static __poll_t fh_hold_poll(struct file *file, poll_table *wait)
{
	struct fh_hold *h = &fh_hold;

	poll_wait(file, &h->pollq, wait);
	return READ_ONCE(h->unread_pages) ? EPOLLIN | EPOLLRDNORM : 0;
}

static int fh_hold_release(struct inode *inode, struct file *file)
{
	struct fh_hold *h = &fh_hold;

	/*
	 * Before the mutex (the timeout work takes it), and while the file
	 * is still ours so that no new capture can re-arm it.
	 */
	cancel_delayed_work_sync(&h->timeout_work);
	mutex_lock(&h->mutex);
	fh_hold_release_all(h, true);
	h->open = false;
	kvfree(h->buf);
	h->buf = NULL;
	mutex_unlock(&h->mutex);
	return 0;
}

const struct proc_ops fh_hold_ops = {
	.proc_open	= fh_hold_open,
	.proc_read	= fh_hold_read,
	.proc_write	= fh_hold_write,
	.proc_poll	= fh_hold_poll,
	.proc_lseek	= no_llseek,
	.proc_release	= fh_hold_release,
};

/**
 * fh_hold_init() - set up the hold state, register the shrinker and the
 * memory notifier
 *
 * Return: 0 or a negative errno.
 */
int fh_hold_init(void)
{
	struct fh_hold *h = &fh_hold;
	int err;

	mutex_init(&h->mutex);
	spin_lock_init(&h->lock);
	INIT_LIST_HEAD(&h->unread);
	INIT_LIST_HEAD(&h->done);
	INIT_LIST_HEAD(&h->batches);
	INIT_LIST_HEAD(&h->orphans);
	init_waitqueue_head(&h->pollq);
	INIT_DELAYED_WORK(&h->timeout_work, fh_hold_timeout_fn);
	INIT_DELAYED_WORK(&h->grace_work, fh_hold_grace_fn);
	h->shrinker.count_objects = fh_hold_count;
	h->shrinker.scan_objects = fh_hold_scan;
	/*
	 * Reclaim's usual pace: seeks 0 gave back half of the hold at each
	 * call, even kswapd's gentlest (woken by a watermark boost the
	 * capture itself causes), and a pass then held far less than it
	 * captured. Real pressure still takes it all (priority 0).
	 */
	h->shrinker.seeks = DEFAULT_SEEKS;
	err = register_shrinker(&h->shrinker, "freehint-hold");
	if (err)
		return err;
	h->memory_nb.notifier_call = fh_hold_memory_cb;
	err = register_memory_notifier(&h->memory_nb);
	if (err)
		goto out_unregister_shrinker;
	return 0;

out_unregister_shrinker:
	unregister_shrinker(&h->shrinker);
	return err;
}

/**
 * fh_hold_stop() - make a capture in progress stop early
 *
 * Called before the proc files are removed, which waits for the write
 * that runs the capture.
 */
void fh_hold_stop(void)
{
	WRITE_ONCE(fh_hold.stopping, true);
}

/**
 * fh_hold_exit() - release everything, unregister the memory notifier and
 * the shrinker
 *
 * Called once the hold file can no longer be opened. In-flight blocks are
 * freed only when their grace time is over: this waits for it.
 */
void fh_hold_exit(void)
{
	struct fh_hold *h = &fh_hold;
	struct fh_hold_batch *b, *tmp;
	unsigned long last = jiffies;
	LIST_HEAD(blocks);

	unregister_memory_notifier(&h->memory_nb);
	unregister_shrinker(&h->shrinker);
	cancel_delayed_work_sync(&h->timeout_work);
	mutex_lock(&h->mutex);
	fh_hold_release_all(h, true);
	mutex_unlock(&h->mutex);
	cancel_delayed_work_sync(&h->grace_work);

	/* No work or file touches the orphans any more. */
	list_for_each_entry(b, &h->orphans, node)
		if (time_after(b->deadline, last))
			last = b->deadline;
	if (time_after(last, jiffies))
		fh_sleep_idle_ms(jiffies_to_msecs(last - jiffies));
	list_for_each_entry_safe(b, tmp, &h->orphans, node) {
		list_splice_init(&b->pages, &blocks);
		list_del(&b->node);
		kfree(b);
	}
	fh_free_blocks(&blocks, &fh_stats.hold_released_bytes, true);
}

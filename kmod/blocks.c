// SPDX-License-Identifier: GPL-2.0
/*
 * freehint: /proc/freehint/blocks, a snapshot of the buddy free lists.
 *
 * The snapshot is taken when the file is opened for reading and kept in a
 * kvmalloc()ed buffer until it is closed; it holds at most
 * blocks_max_entries blocks. zone->lock is held for at most
 * FH_BLOCKS_CHUNK entries at a time. Only pfns are kept while the lock is
 * dropped: the walk resumes by looking the last pfn up again
 * (pfn_to_online_page(), then PageBuddy and the order under zone->lock)
 * and gives up on the rest of that list if it is no longer a free block of
 * the same order in the same zone. Every block listed was free when it was
 * seen: the snapshot is a hint, not a promise.
 *
 * get_online_mems() is not exported to modules, so the walk takes
 * fh_blocks_hotplug_sem for reading instead; a memory notifier holds it
 * for writing from MEM_GOING_OFFLINE to MEM_OFFLINE or MEM_CANCEL_OFFLINE.
 * No memory block goes offline during a walk, and a range offlined before
 * it is no longer online (pfn_to_online_page() returns NULL for it) nor on
 * any free list, so the walk never looks at a memmap that hot-remove may
 * free.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/nodemask.h>
#include <linux/notifier.h>
#include <linux/page-flags.h>
#include <linux/proc_fs.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#include "freehint.h"

#define FH_BLOCKS_CHUNK		256
/* "0x" + 16 hex digits, order, zone name, migratetype, separators. */
#define FH_BLOCKS_LINE_MAX	(2 + 16 + 1 + 2 + 1 + 16 + 1 + 2 + 1 + 1)

/* Held for reading by walks, for writing while a memory block goes offline. */
static DECLARE_RWSEM(fh_blocks_hotplug_sem);
/* The notifier holds the semaphore (offlining is serialized by the core). */
static bool fh_blocks_offlining;

struct fh_snap {
	char *buf;
	size_t len;
	size_t size;
	unsigned long entries;	/* blocks listed so far */
	unsigned long max;	/* blocks_max_entries when the walk began */
	bool truncated;
	unsigned long *pfns;	/* FH_BLOCKS_CHUNK entries */
};

static int fh_snap_reserve(struct fh_snap *s, size_t more)
{
	size_t size;
	char *buf;

	if (s->len + more <= s->size)
		return 0;
	size = PAGE_ALIGN(max(s->size * 2, s->len + more));
	buf = kvmalloc(size, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	if (s->len)
		memcpy(buf, s->buf, s->len);
	kvfree(s->buf);
	s->buf = buf;
	s->size = size;
	return 0;
}

static int fh_snap_emit(struct fh_snap *s, unsigned int n, unsigned int order,
			const char *zname, int mt)
{
	unsigned int i;
	int err;

	err = fh_snap_reserve(s, (size_t)n * FH_BLOCKS_LINE_MAX);
	if (err)
		return err;
	for (i = 0; i < n; i++)
		s->len += scnprintf(s->buf + s->len, s->size - s->len,
				    "0x%lx %u %.16s %d\n", s->pfns[i], order,
				    zname, mt);
	s->entries += n;
	return 0;
}

/*
 * The free block of @order in @zone that starts at @pfn, or NULL if there
 * is none any more. Called under zone->lock, which keeps a block that is
 * on a free list there; pfn_to_online_page() rules out memory that went
 * offline while the lock was dropped before the struct page is read.
 */
static struct page *fh_refind(struct zone *zone, unsigned long pfn,
			      unsigned int order)
{
	struct page *page = pfn_to_online_page(pfn);

	if (!page || page_zone(page) != zone || !PageBuddy(page) ||
	    page_private(page) != order)
		return NULL;
	return page;
}

static bool fh_is_area_head(struct free_area *area, struct list_head *pos)
{
	int mt;

	for (mt = 0; mt < MIGRATE_TYPES; mt++)
		if (pos == &area->free_list[mt])
			return true;
	return false;
}

static int fh_snap_list(struct fh_snap *s, struct zone *zone,
			unsigned int order, int mt)
{
	struct free_area *area = &zone->free_area[order];
	struct list_head *head = &area->free_list[mt];
	unsigned long cursor = 0, flags;
	bool started = false;
	bool done = false;
	struct page *page;
	unsigned int n, room;
	int err;

	while (!done) {
		if (s->entries >= s->max) {
			s->truncated = true;
			return 0;
		}
		room = min_t(unsigned long, FH_BLOCKS_CHUNK,
			     s->max - s->entries);
		n = 0;
		spin_lock_irqsave(&zone->lock, flags);
		if (!started) {
			page = list_entry(head->next, struct page, buddy_list);
		} else {
			page = fh_refind(zone, cursor, order);
			if (!page) {
				/* The block we stopped at is gone: skip the rest. */
				spin_unlock_irqrestore(&zone->lock, flags);
				break;
			}
			page = list_next_entry(page, buddy_list);
		}
		started = true;
		for (;;) {
			if (&page->buddy_list == head) {
				done = true;
				break;
			}
			if (fh_is_area_head(area, &page->buddy_list)) {
				/*
				 * The cursor moved to another migratetype's
				 * list while the lock was dropped: what was
				 * collected since belongs to that list.
				 */
				n = 0;
				done = true;
				break;
			}
			if (n == room)
				break;
			s->pfns[n++] = page_to_pfn(page);
			cursor = page_to_pfn(page);
			page = list_next_entry(page, buddy_list);
		}
		/* Nothing but pfns survives the unlock. */
		spin_unlock_irqrestore(&zone->lock, flags);

		err = fh_snap_emit(s, n, order, zone->name, mt);
		if (err)
			return err;
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	return 0;
}

static int fh_snap_walk(struct fh_snap *s, unsigned int min_order)
{
	struct zone *zone;
	unsigned int order;
	int nid, z, mt;
	int err;

	for_each_online_node(nid) {
		for (z = 0; z < MAX_NR_ZONES; z++) {
			zone = &NODE_DATA(nid)->node_zones[z];
			if (!populated_zone(zone))
				continue;
			for (order = min_order; order < MAX_ORDER; order++) {
				for (mt = 0; mt < MIGRATE_TYPES; mt++) {
					err = fh_snap_list(s, zone, order, mt);
					if (err)
						return err;
					if (s->truncated)
						return 0;
				}
			}
		}
	}
	return 0;
}

static int fh_snap_take(struct fh_snap *s, unsigned int min_order)
{
	int err;

	err = fh_snap_reserve(s, PAGE_SIZE);
	if (err)
		return err;
	s->len += scnprintf(s->buf + s->len, s->size - s->len,
			    "# freehint blocks: min_order=%u page_size=%lu max_order=%u max_entries=%lu\n# pfn order zone migratetype\n",
			    min_order, PAGE_SIZE, MAX_ORDER - 1, s->max);

	if (down_read_killable(&fh_blocks_hotplug_sem))
		return -EINTR;
	err = fh_snap_walk(s, min_order);
	up_read(&fh_blocks_hotplug_sem);
	if (err)
		return err;

	if (s->truncated) {
		err = fh_snap_reserve(s, 80);
		if (err)
			return err;
		s->len += scnprintf(s->buf + s->len, s->size - s->len,
				    "# truncated: max_entries=%lu reached\n",
				    s->max);
	}
	return 0;
}

static void fh_snap_free(struct fh_snap *s)
{
	kvfree(s->buf);
	kfree(s->pfns);
	kfree(s);
}

static int fh_blocks_open(struct inode *inode, struct file *file)
{
	struct fh_snap *s;
	int err;

	if (!(file->f_mode & FMODE_READ))
		return 0;

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	s->max = READ_ONCE(fh_blocks_max_entries);
	s->pfns = kmalloc_array(FH_BLOCKS_CHUNK, sizeof(*s->pfns), GFP_KERNEL);
	if (!s->pfns) {
		err = -ENOMEM;
		goto out_free;
	}
	err = fh_snap_take(s, min_t(unsigned int,
				    READ_ONCE(fh_blocks_min_order),
				    MAX_ORDER - 1));
	if (err)
		goto out_free;

	kfree(s->pfns);
	s->pfns = NULL;
	atomic64_inc(&fh_stats.snapshots);
	if (s->truncated)
		atomic64_inc(&fh_stats.snapshots_truncated);
	file->private_data = s;
	return 0;

out_free:
	fh_snap_free(s);
	return err;
}

static ssize_t fh_blocks_read(struct file *file, char __user *buf,
			      size_t count, loff_t *ppos)
{
	struct fh_snap *s = file->private_data;

	if (!s)
		return -EBADF;
	return simple_read_from_buffer(buf, count, ppos, s->buf, s->len);
}

static int fh_blocks_cmd(char *line, void *ctx)
{
	unsigned int order;

	if (!strncmp(line, "min_order=", 10))
		line += 10;
	if (kstrtouint(line, 10, &order) || order >= MAX_ORDER)
		return -EINVAL;
	WRITE_ONCE(fh_blocks_min_order, order);
	return 0;
}

static ssize_t fh_blocks_write(struct file *file, const char __user *buf,
			       size_t count, loff_t *ppos)
{
	return fh_write_lines(buf, count, fh_blocks_cmd, NULL);
}

static int fh_blocks_release(struct inode *inode, struct file *file)
{
	if (file->private_data)
		fh_snap_free(file->private_data);
	return 0;
}

const struct proc_ops fh_blocks_ops = {
	.proc_open	= fh_blocks_open,
	.proc_read	= fh_blocks_read,
	.proc_write	= fh_blocks_write,
	.proc_lseek	= default_llseek,
	.proc_release	= fh_blocks_release,
};

/*
 * Keeps walks out from MEM_GOING_OFFLINE until the range is offline (or
 * the offlining failed). The memory hotplug core runs one offlining at a
 * time, in one task, so the flag needs no lock of its own.
 */
static int fh_blocks_memory_cb(struct notifier_block *nb,
			       unsigned long action, void *arg)
{
	switch (action) {
	case MEM_GOING_OFFLINE:
		down_write(&fh_blocks_hotplug_sem);
		fh_blocks_offlining = true;
		break;
	case MEM_OFFLINE:
	case MEM_CANCEL_OFFLINE:
		/* CANCEL also comes when an earlier notifier failed first. */
		if (fh_blocks_offlining) {
			fh_blocks_offlining = false;
			up_write(&fh_blocks_hotplug_sem);
		}
		break;
	}
	return NOTIFY_OK;
}

static struct notifier_block fh_blocks_memory_nb = {
	.notifier_call = fh_blocks_memory_cb,
};

/**
 * fh_blocks_init() - register the memory notifier that guards the walk
 *
 * Return: 0 or a negative errno.
 */
int fh_blocks_init(void)
{
	return register_memory_notifier(&fh_blocks_memory_nb);
}

/**
 * fh_blocks_exit() - unregister the memory notifier
 *
 * Called once /proc/freehint/blocks is gone, so no walk is running.
 */
void fh_blocks_exit(void)
{
	unregister_memory_notifier(&fh_blocks_memory_nb);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * freehint: /proc/freehint/report, the page reporting channel.
 *
 * The module registers itself as the page reporting device. The kernel's
 * reporting work isolates up to PAGE_REPORTING_CAPACITY free blocks and
 * calls fh_report_cb(), which publishes them as one batch to the reader of
 * /proc/freehint/report.
 *
 * The lease (docs/kmod.md): a batch nobody has read goes back unreported
 * after report_timeout_ms. Once read, the batch belongs to the reader: it
 * stays isolated until "ack <id>" (the blocks become Reported), "fail
 * <id>" (back at once) or close, and after a close (or unload) for the
 * grace period fixed when the batch was read and printed in its header.
 * No timer and no later parameter change shortens that promise, so a
 * reader or host stalled for any time never sees its blocks reused.
 *
 * A failed batch leaves the kernel's reporting idle until the next large
 * free. "rearm" registers the device again, which makes the kernel walk
 * the free lists once more: the agent asks for it once a guest that was
 * allocating too fast to be worth reporting has calmed down.
 *
 * The kernel has one page reporting slot. A virtio balloon that offers
 * free page reporting fails its probe if the slot is taken, and then
 * there is no balloon at all; so the module takes the slot, at load and
 * at every rearm, only when no such balloon device is present (bound to
 * its driver or not), and never under page poisoning unless the host is
 * known to keep the poison value in discarded memory (report_poison_ok).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/page_reporting.h>
#include <linux/pageblock-flags.h>
#include <linux/pci.h>
#include <linux/poison.h>
#include <linux/poll.h>
#include <linux/proc_fs.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/virtio.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "freehint.h"

/* virtio-balloon PCI device ids: transitional and modern (0x1040 + 5). */
#define FH_BALLOON_PCI_LEGACY	0x1002
#define FH_BALLOON_PCI_MODERN	0x1045

/* Why the report channel is off; fh_report_off_words[] has the words. */
enum fh_rep_off {
	FH_OFF_NONE,		/* on: the module holds the slot */
	FH_OFF_BALLOON,		/* left to a virtio balloon that reports */
	FH_OFF_POISON,		/* page poisoning, host not known to keep it */
	FH_OFF_BUSY,		/* another driver holds the slot */
	FH_OFF_ERROR,		/* page_reporting_register() failed otherwise */
};

static const char * const fh_report_off_words[] = {
	[FH_OFF_NONE]		= "none",
	[FH_OFF_BALLOON]	= "balloon",
	[FH_OFF_POISON]		= "poison",
	[FH_OFF_BUSY]		= "busy",
	[FH_OFF_ERROR]		= "error",
};

/* Written under fh_rep.reg_mutex, read without it by the stats file. */
static int fh_report_off = FH_OFF_NONE;

/* "batch <u64> <count> grace_ms=<u32>\n" and "0x<pfn> <order>\n" lines. */
#define FH_REPORT_BUF	(64 + PAGE_REPORTING_CAPACITY * 24)

enum fh_rep_state {
	FH_REP_IDLE,		/* no batch */
	FH_REP_PENDING,		/* published, not read */
	FH_REP_READ,		/* read, host may be discarding */
	FH_REP_ACKED,		/* reader: discarded */
	FH_REP_FAILED,		/* reader: not touched */
	FH_REP_CLOSED,		/* reader went away */
	FH_REP_TIMEDOUT,	/* nobody read it in time */
};

/**
 * struct fh_report - state of the report channel
 * @lock: protects everything below except @prdev
 * @readq: readers and pollers wait here for a pending batch
 * @doneq: the report callback waits here for the reader's answer
 * @registered: page_reporting_register() succeeded (written under
 *	@reg_mutex, read without it)
 * @reg_mutex: serializes registering and unregistering the device
 * @rearm_work: registers the device again ("rearm")
 * @open: the file is open (exclusive)
 * @state: enum fh_rep_state of the current batch
 * @was_read: the current batch has been read at least once
 * @stopping: the module is going away: readers return -ENODEV
 * @id: id of the current batch
 * @grace_ms: isolation after close of the current batch, fixed when read
 * @count: blocks in the current batch
 * @pages: first page of each block
 * @orders: order of each block
 * @prdev: our page reporting device
 */
struct fh_report {
	spinlock_t lock;	/* batch state, open flag */
	wait_queue_head_t readq;
	wait_queue_head_t doneq;
	bool registered;
	struct mutex reg_mutex;	/* register, unregister */
	struct work_struct rearm_work;
	bool open;
	int state;
	bool was_read;
	bool stopping;
	u64 id;
	unsigned int grace_ms;
	unsigned int count;
	struct page *pages[PAGE_REPORTING_CAPACITY];
	unsigned int orders[PAGE_REPORTING_CAPACITY];
	struct page_reporting_dev_info prdev;
};

static struct fh_report fh_rep;

/**
 * fh_report_registered() - is the report channel on?
 *
 * Return: true if the module holds the kernel's page reporting device.
 */
bool fh_report_registered(void)
{
	return READ_ONCE(fh_rep.registered);
}

/**
 * fh_report_effective_order() - smallest order the kernel reports to us
 *
 * Return: report_order, or pageblock_order when report_order is 0.
 */
unsigned int fh_report_effective_order(void)
{
	return fh_rep.prdev.order;
}

struct fh_balloon_scan {
	bool wants;		/* a balloon device wants page reporting */
	bool owns;		/* ... and its driver has it */
	unsigned int vdevs;	/* virtio devices seen under one PCI device */
};

/*
 * Does this child of a balloon PCI device want page reporting? Mirrors
 * virtballoon_validate(): the device offers VIRTIO_BALLOON_F_REPORTING,
 * and under page poisoning or init_on_free also VIRTIO_BALLOON_F_PAGE_POISON.
 * vdev->features is read directly: virtio_has_feature() would make this
 * module depend on virtio.ko.
 */
static int fh_balloon_child(struct device *dev, void *data)
{
	struct fh_balloon_scan *scan = data;
	struct virtio_device *vdev;
	bool bound;
	u64 feat;

	if (!dev->bus || strcmp(dev->bus->name, "virtio"))
		return 0;
	vdev = dev_to_virtio(dev);
	scan->vdevs++;
	/* The device lock keeps probe and our feature read apart. */
	device_lock(dev);
	bound = dev->driver;
	feat = bound ? vdev->features : vdev->config->get_features(vdev);
	device_unlock(dev);

	if (!(feat & BIT_ULL(VIRTIO_BALLOON_F_REPORTING)))
		return 0;
	if ((page_poisoning_enabled() || want_init_on_free()) && !bound &&
	    !(feat & BIT_ULL(VIRTIO_BALLOON_F_PAGE_POISON)))
		return 0;
	scan->wants = true;
	scan->owns |= bound;
	return 0;
}

static void fh_balloon_scan_id(unsigned int id, struct fh_balloon_scan *scan)
{
	struct fh_balloon_scan one;
	struct pci_dev *pdev = NULL;

	/* pci_get_device() drops the reference to the device passed in. */
	while ((pdev = pci_get_device(PCI_VENDOR_ID_REDHAT_QUMRANET, id, pdev))) {
		one.wants = false;
		one.owns = false;
		one.vdevs = 0;
		device_for_each_child(&pdev->dev, &one, fh_balloon_child);
		/*
		 * No virtio device yet (virtio_pci not bound): its features
		 * are unknown, so it may want the slot.
		 */
		if (!one.vdevs)
			one.wants = true;
		scan->wants |= one.wants;
		scan->owns |= one.owns;
	}
}

static void fh_balloon_scan(struct fh_balloon_scan *scan)
{
	scan->wants = false;
	scan->owns = false;
	fh_balloon_scan_id(FH_BALLOON_PCI_LEGACY, scan);
	fh_balloon_scan_id(FH_BALLOON_PCI_MODERN, scan);
}

/**
 * fh_report_owner() - who holds the kernel's page reporting slot
 *
 * Return: "freehint" if this module does; "other" if a virtio balloon
 * bound with free page reporting does, or registering found the slot
 * taken; "none" otherwise.
 */
const char *fh_report_owner(void)
{
	struct fh_balloon_scan scan;

	if (fh_report_registered())
		return "freehint";
	if (READ_ONCE(fh_report_off) == FH_OFF_BUSY)
		return "other";
	fh_balloon_scan(&scan);
	return scan.owns ? "other" : "none";
}

/**
 * fh_report_off_reason() - why the report channel is off
 *
 * Return: "none" while it is on, else "balloon", "poison", "busy" or
 * "error".
 */
const char *fh_report_off_reason(void)
{
	return fh_report_off_words[READ_ONCE(fh_report_off)];
}

/*
 * Take the page reporting slot unless page poisoning or a virtio balloon
 * says not to. Called with reg_mutex held and the device unregistered.
 */
static void fh_report_try_register(struct fh_report *r)
{
	struct fh_balloon_scan scan;
	int off = FH_OFF_NONE;
	int err = 0;

	/* Discarded memory reads back as zeroes, not as the poison. */
	if (page_poisoning_enabled() && PAGE_POISON &&
	    !READ_ONCE(fh_report_poison_ok)) {
		off = FH_OFF_POISON;
	} else {
		fh_balloon_scan(&scan);
		if (scan.wants)
			off = FH_OFF_BALLOON;
	}
	if (off == FH_OFF_NONE) {
		err = page_reporting_register(&r->prdev);
		if (err)
			off = err == -EBUSY ? FH_OFF_BUSY : FH_OFF_ERROR;
	}
	WRITE_ONCE(fh_report_off, off);
	if (off == FH_OFF_NONE) {
		WRITE_ONCE(r->registered, true);
		return;
	}
	if (err)
		pr_warn("page reporting unavailable (%d), report channel off\n",
			err);
	else
		pr_info("page reporting unavailable (%s), report channel off\n",
			off == FH_OFF_POISON ?
			"page_poison=1, report_poison_ok=0" :
			"a virtio balloon with free page reporting wants it");
}

static bool fh_report_settled(struct fh_report *r)
{
	int state = READ_ONCE(r->state);

	return state == FH_REP_ACKED || state == FH_REP_FAILED ||
	       state == FH_REP_CLOSED;
}

static bool fh_report_read_or_settled(struct fh_report *r)
{
	return READ_ONCE(r->state) == FH_REP_READ || fh_report_settled(r);
}

static int fh_report_cb(struct page_reporting_dev_info *prdev,
			struct scatterlist *sgl, unsigned int nents)
{
	struct fh_report *r = container_of(prdev, struct fh_report, prdev);
	struct scatterlist *sg;
	unsigned int grace_ms;
	bool was_read;
	u64 bytes = 0;
	int state;
	int i;

	if (WARN_ON_ONCE(nents > PAGE_REPORTING_CAPACITY))
		return -EINVAL;

	spin_lock(&r->lock);
	if (!r->open) {
		spin_unlock(&r->lock);
		return -EAGAIN;
	}
	for_each_sg(sgl, sg, nents, i) {
		r->pages[i] = sg_page(sg);
		r->orders[i] = get_order(sg->length);
		bytes += sg->length;
	}
	r->count = nents;
	r->id++;
	r->was_read = false;
	r->state = FH_REP_PENDING;
	spin_unlock(&r->lock);

	atomic64_inc(&fh_stats.report_batches);
	atomic64_add(nents, &fh_stats.report_blocks);
	atomic64_add(bytes, &fh_stats.report_bytes);
	wake_up_interruptible_poll(&r->readq, EPOLLIN | EPOLLRDNORM);

	/* Unread, the batch is ours to take back after the timeout... */
	wait_event_idle_timeout(r->doneq, fh_report_read_or_settled(r),
				msecs_to_jiffies(READ_ONCE(fh_report_timeout_ms)));
	spin_lock(&r->lock);
	if (r->state == FH_REP_PENDING)
		r->state = FH_REP_TIMEDOUT;
	spin_unlock(&r->lock);
	/* ...read, it is the reader's until it answers or closes. */
	wait_event_idle(r->doneq, fh_report_settled(r) ||
			READ_ONCE(r->state) == FH_REP_TIMEDOUT);

	spin_lock(&r->lock);
	state = r->state;
	was_read = r->was_read;
	grace_ms = r->grace_ms;
	r->state = FH_REP_IDLE;
	r->count = 0;
	spin_unlock(&r->lock);

	if (state == FH_REP_ACKED) {
		atomic64_add(bytes, &fh_stats.report_acked_bytes);
		return 0;
	}
	atomic64_inc(&fh_stats.report_failed_batches);
	if (state == FH_REP_TIMEDOUT)
		atomic64_inc(&fh_stats.report_timeouts);
	/* Closed while read: the host may still be discarding. */
	if (was_read && state == FH_REP_CLOSED)
		fh_sleep_idle_ms(grace_ms);
	return -EAGAIN;
}

static int fh_report_open(struct inode *inode, struct file *file)
{
	struct fh_report *r = &fh_rep;
	char *buf;
	int err = 0;

	if (!READ_ONCE(r->registered))
		return -ENODEV;
	buf = kmalloc(FH_REPORT_BUF, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;

	spin_lock(&r->lock);
	if (r->open)
		err = -EBUSY;
	else
		r->open = true;
	spin_unlock(&r->lock);
	if (err) {
		kfree(buf);
		return err;
	}
	file->private_data = buf;
	return stream_open(inode, file);
}

static bool fh_report_pending(struct fh_report *r)
{
	return READ_ONCE(r->state) == FH_REP_PENDING;
}

static bool fh_report_readable(struct fh_report *r)
{
	return fh_report_pending(r) || READ_ONCE(r->stopping);
}

static ssize_t fh_report_read(struct file *file, char __user *ubuf,
			      size_t count, loff_t *ppos)
{
	struct page *pages[PAGE_REPORTING_CAPACITY];
	unsigned int orders[PAGE_REPORTING_CAPACITY];
	struct fh_report *r = &fh_rep;
	char *buf = file->private_data;
	unsigned int n, i, grace_ms;
	size_t len;
	u64 id;
	int err;

	for (;;) {
		spin_lock(&r->lock);
		if (r->stopping) {
			spin_unlock(&r->lock);
			return -ENODEV;
		}
		if (r->state == FH_REP_PENDING)
			break;
		spin_unlock(&r->lock);
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		err = wait_event_interruptible(r->readq, fh_report_readable(r));
		if (err)
			return err;
	}

	/* The promise made with this batch: no later change shortens it. */
	grace_ms = READ_ONCE(fh_report_grace_ms);
	/* Bounded: at most PAGE_REPORTING_CAPACITY short lines. */
	id = r->id;
	n = r->count;
	len = scnprintf(buf, FH_REPORT_BUF, "batch %llu %u grace_ms=%u\n",
			id, n, grace_ms);
	for (i = 0; i < n; i++) {
		pages[i] = r->pages[i];
		orders[i] = r->orders[i];
		len += scnprintf(buf + len, FH_REPORT_BUF - len, "0x%lx %u\n",
				 page_to_pfn(pages[i]), orders[i]);
	}
	if (len > count) {
		spin_unlock(&r->lock);
		return -EINVAL;
	}
	r->state = FH_REP_READ;
	r->was_read = true;
	r->grace_ms = grace_ms;
	spin_unlock(&r->lock);
	wake_up(&r->doneq);

	/* Isolated until ack, fail, or close plus the grace period. */
	for (i = 0; i < n; i++)
		fh_scribble(pages[i], orders[i]);

	/*
	 * Part of the batch may have reached the reader: it stays read, and
	 * the reader gets it back by closing the file (plus the grace).
	 */
	if (copy_to_user(ubuf, buf, len))
		return -EFAULT;
	return len;
}

/*
 * Unregistering waits for a running report callback (at most the timeout
 * plus the grace period), so it runs here and not in the writer's call.
 * Registering again begins a new pass over the free lists in 2 s. A pass
 * that is already due or running sees the free lists anyway, and
 * unregistering would only put it off: then nothing is done (a batch it
 * fails makes the reader ask again).
 */
static void fh_report_rearm_fn(struct work_struct *work)
{
	struct fh_report *r = container_of(work, struct fh_report, rearm_work);

	mutex_lock(&r->reg_mutex);
	if (r->registered && !work_busy(&r->prdev.work.work)) {
		page_reporting_unregister(&r->prdev);
		WRITE_ONCE(r->registered, false);
		/* A balloon that appeared since gets the slot now. */
		fh_report_try_register(r);
		if (r->registered)
			atomic64_inc(&fh_stats.report_rearms);
		else
			pr_warn("page reporting given up on rearm (%s)\n",
				fh_report_off_reason());
	}
	mutex_unlock(&r->reg_mutex);
}

static int fh_report_cmd(char *line, void *ctx)
{
	struct fh_report *r = &fh_rep;
	int state, err;
	u64 id;

	if (!strcmp(line, "rearm")) {
		schedule_work(&r->rearm_work);
		return 0;
	}
	err = fh_parse_id_cmd(line, "ack", &id);
	state = FH_REP_ACKED;
	if (err == -ENOENT) {
		err = fh_parse_id_cmd(line, "fail", &id);
		state = FH_REP_FAILED;
	}
	if (err)
		return -EINVAL;

	spin_lock(&r->lock);
	if (r->state != FH_REP_READ || r->id != id) {
		spin_unlock(&r->lock);
		return -EINVAL;
	}
#ifdef FREEHINT_SCRIBBLE
	/* A discard may run until the ack: scribble again at its end. */
	if (state == FH_REP_ACKED) {
		struct page *pages[PAGE_REPORTING_CAPACITY];
		unsigned int orders[PAGE_REPORTING_CAPACITY];
		unsigned int i, n = r->count;

		memcpy(pages, r->pages, n * sizeof(*pages));
		memcpy(orders, r->orders, n * sizeof(*orders));
		spin_unlock(&r->lock);
		/* Isolated until this ack, or through the grace time. */
		for (i = 0; i < n; i++)
			fh_scribble(pages[i], orders[i]);
		spin_lock(&r->lock);
		if (r->state != FH_REP_READ || r->id != id) {
			spin_unlock(&r->lock);
			return -EINVAL;
		}
	}
#endif
	r->state = state;
	spin_unlock(&r->lock);
	wake_up(&r->doneq);
	return 0;
}

static ssize_t fh_report_write(struct file *file, const char __user *ubuf,
			       size_t count, loff_t *ppos)
{
	return fh_write_lines(ubuf, count, fh_report_cmd, NULL);
}

static __poll_t fh_report_poll(struct file *file, poll_table *wait)
{
	struct fh_report *r = &fh_rep;

	poll_wait(file, &r->readq, wait);
	return fh_report_readable(r) ? EPOLLIN | EPOLLRDNORM : 0;
}

static int fh_report_release(struct inode *inode, struct file *file)
{
	struct fh_report *r = &fh_rep;

	spin_lock(&r->lock);
	r->open = false;
	if (r->state == FH_REP_PENDING || r->state == FH_REP_READ)
		r->state = FH_REP_CLOSED;
	spin_unlock(&r->lock);
	wake_up(&r->doneq);
	kfree(file->private_data);
	return 0;
}

const struct proc_ops fh_report_ops = {
	.proc_open	= fh_report_open,
	.proc_read	= fh_report_read,
	.proc_write	= fh_report_write,
	.proc_poll	= fh_report_poll,
	.proc_lseek	= no_llseek,
	.proc_release	= fh_report_release,
};

/**
 * fh_report_stop_readers() - make blocked and later reads return -ENODEV
 *
 * Called before the proc files are removed: removal waits for every
 * read in progress, and a reader blocked for a batch would wait forever.
 */
void fh_report_stop_readers(void)
{
	struct fh_report *r = &fh_rep;

	spin_lock(&r->lock);
	r->stopping = true;
	spin_unlock(&r->lock);
	wake_up_interruptible_all(&r->readq);
}

/**
 * fh_report_init() - register as the page reporting device if fitting
 *
 * The slot is left alone under page poisoning (unless report_poison_ok)
 * and when a virtio balloon device that offers free page reporting is
 * present, so that virtio_balloon binds whichever module loads first.
 * Failing to register (another driver holds the slot) is not an error
 * either: in every such case the module loads with the channel off.
 *
 * Return: 0.
 */
int fh_report_init(void)
{
	struct fh_report *r = &fh_rep;

	spin_lock_init(&r->lock);
	mutex_init(&r->reg_mutex);
	INIT_WORK(&r->rearm_work, fh_report_rearm_fn);
	init_waitqueue_head(&r->readq);
	init_waitqueue_head(&r->doneq);
	r->prdev.report = fh_report_cb;
	r->prdev.order = fh_report_order && fh_report_order < MAX_ORDER ?
			 fh_report_order : pageblock_order;

	mutex_lock(&r->reg_mutex);
	fh_report_try_register(r);
	mutex_unlock(&r->reg_mutex);
	return 0;
}

/**
 * fh_report_exit() - unregister the page reporting device
 *
 * Waits for a running report callback, which by now has no reader and
 * returns after at most the grace period.
 */
void fh_report_exit(void)
{
	struct fh_report *r = &fh_rep;

	cancel_work_sync(&r->rearm_work);
	mutex_lock(&r->reg_mutex);
	if (r->registered)
		page_reporting_unregister(&r->prdev);
	WRITE_ONCE(r->registered, false);
	mutex_unlock(&r->reg_mutex);
}

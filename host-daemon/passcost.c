/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Whether a migration's own hint pass pays, decided before the migration
 * is held down for it (mighold.c): a pass must never make a migration
 * slower than no pass.
 *
 * It costs its capture, which the guest does at the VM's pass speed (it
 * allocates and zeroes every block it holds; the speed of this VM's last
 * pass, hint-pass-speed until one is measured), and QEMU's wait: a
 * migration held below its rate sleeps out the rest of QEMU's rate-limit
 * window (FREEHINTD_HOLD_WAIT_MS) once more. It gains the time QEMU
 * would spend sending whole the free memory the backing still holds:
 * memory page reporting has discarded is sent as zero pages anyway. So
 * it pays below one bandwidth, gain / cost: the hold is asked with that
 * ceiling, and the bandwidth in force decides. The link bounds what QEMU
 * can send (migration-link-speed): when even the link is below the
 * ceiling, any bandwidth is.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "freehintd.h"

/*
 * The bandwidth below which a pass capturing capture bytes at speed
 * bytes a second, and keeping gain bytes from being sent whole, ends the
 * migration sooner; UINT64_MAX when even link is below it. *cost_ms: the
 * pass's estimated time.
 */
uint64_t
pass_ceiling(uint64_t capture, uint64_t gain, uint64_t speed, uint64_t link,
    uint64_t *cost_ms)
{
	uint64_t ceiling;

	if (speed == 0)
		speed = 1;
	/* In double: bytes times 1000 may not fit 64 bits; whole ms. */
	*cost_ms = (uint64_t)((double)capture * 1000 / (double)speed) +
	    FREEHINTD_HOLD_WAIT_MS;
	ceiling = (uint64_t)((double)gain * 1000 / (double)*cost_ms);
	return link <= ceiling ? UINT64_MAX : ceiling;
}

/*
 * Weigh the pass from the guest's and the backing's figures: 0, or -1
 * and why no pass pays at any bandwidth.
 */
int
pass_weigh(const struct pass_figures *in, struct pass_estimate *e, char *why,
    size_t whylen)
{
	uint64_t bytes = 0, free = 0, used, pages, b;
	size_t o;

	e->capture = e->gain = e->cost_ms = 0;
	e->speed = in->speed;
	e->ceiling = UINT64_MAX;
	/* The guest's own figures: no order counts more than its RAM. */
	pages = in->page != 0 ? in->ram / in->page : 0;
	for (o = 0; o < in->norders && o < 64; o++) {
		b = in->by_order[o] <= pages >> o
		    ? (in->by_order[o] * in->page) << o
		    : in->ram;
		free += b;
		if (o >= in->min_order)
			bytes += b;
	}
	if (bytes > in->ram)
		bytes = in->ram;
	if (free > in->ram)
		free = in->ram;
	e->capture = bytes < in->limit ? bytes : in->limit;
	/* Free memory the backing holds: what QEMU would send whole. */
	used = in->ram - free;
	if (in->alloc < 0)
		e->gain = e->capture; /* private memory: all of it is there */
	else
		e->gain =
		    (uint64_t)in->alloc > used ? (uint64_t)in->alloc - used : 0;
	if (e->gain > e->capture)
		e->gain = e->capture;
	/*
	 * A guest that leaves reported blocks alone captures only what the
	 * backing holds: reported memory is a hole there.
	 */
	if (in->skips_reported && in->alloc >= 0)
		e->capture = e->gain;
	if (e->gain == 0) {
		snprintf(why, whylen,
		    "the backing holds none of the guest's free memory in "
		    "blocks of order %u or more (%" PRIu64
		    " MiB of them, %" PRIu64 " MiB used, %" PRId64
		    " MiB allocated)",
		    in->min_order, bytes >> 20, used >> 20,
		    in->alloc < 0 ? -1 : in->alloc >> 20);
		return -1;
	}
	e->ceiling =
	    pass_ceiling(e->capture, e->gain, e->speed, in->link, &e->cost_ms);
	return 0;
}

/*
 * The pass a migration of this VM would start now, weighed: 0, or -1
 * and why none is asked for. No Stats from the agent yet: nothing is
 * known, and the pass is asked for at any bandwidth, as an agent that
 * sends none (stats-interval-ms 0) would have it.
 */
int
pass_estimate(struct vm *vm, struct pass_estimate *e, char *why, size_t whylen)
{
	struct pass_figures in;

	memset(e, 0, sizeof *e);
	e->ceiling = UINT64_MAX;
	if (vm_pass_refused(vm, why, whylen) != 0)
		return -1;
	if (vm->guest_stats_ms == 0)
		return 0;
	in.ram = memmap_ram_bytes(&vm->map);
	in.alloc = vm_allocated_bytes(vm);
	in.limit = vm_pass_byte_limit(vm);
	in.by_order = vm->guest_free_by_order;
	in.norders = vm->guest_free_norders;
	in.page = guest_page_size(vm->guest);
	in.min_order = vm_pass_policy(vm, (uint32_t)in.page).min_order;
	in.speed =
	    vm->pass_bps != 0 ? vm->pass_bps : conf->policy.hint_pass_bps;
	in.link = conf->policy.migration_link_bps;
	in.skips_reported = guest_skips_reported(vm->guest);
	return pass_weigh(&in, e, why, whylen);
}

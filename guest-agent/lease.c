/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The lease arithmetic: turning the module's promise about a batch into a
 * deadline on the host's clock that is never later than the truth.
 *
 * The module keeps a batch it handed out until the agent answers it, and
 * after a close (or an unload) for the batch's grace_ms, fixed when the
 * batch was read (docs/kmod.md). So when the agent sends a batch at its
 * time t, the pages stay isolated at least until t + grace_ms on the
 * guest's clock, whatever happens to the agent afterwards.
 *
 * The host's clock reading h, taken before the agent received it at a,
 * says: at our time a, the host's clock was at least h. Both clocks may
 * run at different rates (NTP slews each by up to 500 ppm; adjtimex's tick
 * by up to 10%; a paused guest's clock stands still, which only makes us
 * safer). With the guest's clock at most LEASE_DRIFT_NUM/LEASE_DRIFT_DEN
 * times as fast as the host's, guest time t maps to host time at least
 *
 *	h + (t - a) * DEN / NUM
 *
 * so every sample gives a lower bound, the allowance growing with the
 * sample's age, and the best sample is the one with the largest
 * h - a * DEN / NUM. Integer rounding is done towards earlier deadlines.
 */
#include "agent.h"

/* The guest's clock may run up to 12.5% fast against the host's. */
#define LEASE_DRIFT_NUM 9
#define LEASE_DRIFT_DEN 8

/* t * DEN / NUM, rounded up (ceil) or down. */
static int64_t
lease_scale(uint64_t t, bool up)
{
	uint64_t n = t * LEASE_DRIFT_DEN;

	return (int64_t)(n / LEASE_DRIFT_NUM +
	    (up && n % LEASE_DRIFT_NUM != 0 ? 1 : 0));
}

void
hostclock_init(struct hostclock *hc)
{
	hc->have = false;
	hc->base = 0;
}

/* The host read host_ms before we received it at local_ms. */
void
hostclock_sample(struct hostclock *hc, uint64_t host_ms, uint64_t local_ms)
{
	int64_t base;

	if (host_ms > INT64_MAX / 2 || local_ms > INT64_MAX / 2 / 8)
		return;
	base = (int64_t)host_ms - lease_scale(local_ms, true);
	if (!hc->have || base > hc->base)
		hc->base = base;
	hc->have = true;
}

/*
 * The host-clock deadline of a batch sent at local_ms with the module's
 * grace_ms, less margin_ms: 0 when there is none (no sample yet, or the
 * lease is already over by the host's clock).
 */
int
hostclock_deadline(const struct hostclock *hc, uint64_t local_ms,
    uint32_t grace_ms, uint32_t margin_ms, uint64_t *deadline)
{
	int64_t d;

	if (!hc->have || grace_ms <= margin_ms || local_ms > INT64_MAX / 2 / 8)
		return -1;
	d = hc->base + lease_scale(local_ms + grace_ms - margin_ms, false);
	if (d <= 0)
		return -1;
	*deadline = (uint64_t)d;
	return 0;
}

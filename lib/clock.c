/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Time as both daemons count it: CLOCK_MONOTONIC, in milliseconds
 * (microseconds and seconds to measure with), and a delay in those
 * milliseconds as the timeval libevent's timers take. Deadlines between
 * guest and host are stated on this clock (docs/protocol.md, "The
 * contract").
 */
#include <sys/time.h>

#include <time.h>

#include <event2/event.h>

#include "common.h"

uint64_t
fh_monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

uint64_t
fh_monotonic_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
}

double
fh_monotonic_s(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

struct timeval
fh_ms_timeval(uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

/* Arm timer ev to fire at deadline_ms on fh_monotonic_ms()'s clock. */
void
fh_evtimer_at(struct event *ev, uint64_t deadline_ms)
{
	uint64_t now = fh_monotonic_ms();
	struct timeval tv;

	tv = fh_ms_timeval(deadline_ms > now ? deadline_ms - now : 0);
	evtimer_add(ev, &tv);
}

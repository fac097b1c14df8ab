/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one clock both daemons reason with: CLOCK_MONOTONIC in
 * milliseconds. Deadlines between guest and host are stated on it
 * (docs/protocol.md, "The contract").
 */
#include <time.h>

#include "common.h"

uint64_t
fh_monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Overhead workload: allocate SIZE MiB, write every page, free it, round
 * after round for SECONDS. Freed memory goes back to the buddy allocator
 * each round, so page reporting (and freehint) keep finding free blocks
 * while it runs.
 *
 *   churn [-r MIB_S | -b BUSY -i IDLE] [SECONDS] [SIZE_MIB]
 *
 * Defaults 20 s and 128 MiB, the rounds back to back at full speed.
 * -r MIB_S paces them: round k starts at k * SIZE / MIB_S s (each round at
 * full speed, then a sleep), and the run ends with the slot of its last
 * round, so that a guest that keeps up averages MIB_S; it runs the
 * ceil(SECONDS * MIB_S / SIZE) rounds whatever their speed.
 * -b BUSY -i IDLE make it bursty: rounds back to back for BUSY s, then
 * IDLE s asleep, over and over until SECONDS.
 * It prints one line: the MiB churned, the time, the rate, and the time
 * spent in rounds (the rest was asleep) with the rate over that time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wl.h"

struct churn {
	size_t len;
	uint64_t rounds;
	double busy; /* seconds spent in rounds */
};

/* One round: SIZE MiB mapped, every page written, unmapped. */
static int
churn_round(struct churn *c)
{
	double t = wl_now();
	unsigned char *p = mmap(NULL, c->len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("churn: mmap");
		return -1;
	}
	wl_dirty(p, c->len, (unsigned)c->rounds);
	if (munmap(p, c->len) == -1) {
		perror("churn: munmap");
		return -1;
	}
	c->rounds++;
	c->busy += wl_now() - t;
	return 0;
}

/* Sleeps until t on wl_now()'s clock; at once if that has passed. */
static void
sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	while (
	    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: churn [-r MIB_S | -b BUSY -i IDLE] [SECONDS] [SIZE_MIB]\n");
	return 1;
}

int
main(int argc, char **argv)
{
	struct churn c = { 0 };
	double secs = 20, rate = 0, busy = 0, idle = 0, t0, t, end, cycle;
	long size_mib = 128;
	int opt;

	while ((opt = getopt(argc, argv, "r:b:i:")) != -1) {
		switch (opt) {
		case 'r':
			rate = strtod(optarg, NULL);
			break;
		case 'b':
			busy = strtod(optarg, NULL);
			break;
		case 'i':
			idle = strtod(optarg, NULL);
			break;
		default:
			return usage();
		}
	}
	if (optind < argc)
		secs = strtod(argv[optind++], NULL);
	if (optind < argc)
		size_mib = strtol(argv[optind++], NULL, 10);
	if (optind < argc || secs <= 0 || size_mib <= 0 || rate < 0 ||
	    busy < 0 || idle < 0 || (busy > 0) != (idle > 0) ||
	    (rate > 0 && busy > 0))
		return usage();
	c.len = (size_t)size_mib * WL_MIB;
	t0 = wl_now();
	if (rate > 0) {
		double period = (double)size_mib / rate;

		do {
			if (churn_round(&c) != 0)
				return 1;
			sleep_until(t0 + (double)c.rounds * period);
		} while ((double)c.rounds * period < secs);
	} else if (busy > 0) {
		end = t0 + secs;
		for (cycle = t0; wl_now() < end; cycle += busy + idle) {
			do {
				if (churn_round(&c) != 0)
					return 1;
			} while ((t = wl_now()) < cycle + busy && t < end);
			t = cycle + busy + idle;
			sleep_until(t < end ? t : end);
		}
	} else {
		do {
			if (churn_round(&c) != 0)
				return 1;
		} while (wl_now() - t0 < secs);
	}
	t = wl_now() - t0;
	printf("churn: %llu MiB in %.2f s: %.1f MiB/s, busy %.2f s: %.1f "
	       "MiB/s, %llu rounds of %ld MiB\n",
	    (unsigned long long)c.rounds * (unsigned long long)size_mib, t,
	    (double)c.rounds * (double)size_mib / t, c.busy,
	    (double)c.rounds * (double)size_mib / c.busy,
	    (unsigned long long)c.rounds, size_mib);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Migration workload: memory whose every word the guest can check after a
 * migration. Fills SIZE MiB with a pattern computed from each 1 MiB
 * chunk's number and generation, then waits on a virtio-serial PORT; with
 * RATE above 0 it rewrites chunks meanwhile (a new generation each) at
 * RATE MiB/s, a known dirty rate. Each "check" line the host writes to the
 * port makes it compare every word with its pattern and print
 *
 *   BENCH memcheck ok mib=SIZE written_mib=W seconds=S
 *   BENCH memcheck bad chunk=C word=W got=X want=Y
 *
 * on the console (W MiB rewritten in S seconds: the dirty rate achieved).
 * Before the host connects the port reads as hung up; it is polled every
 * 100 ms, so an idle guest stays idle.
 *
 *   memcheck SIZE_MIB RATE_MIB_S PORT
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wl.h"

#define WORDS (WL_MIB / sizeof(uint64_t))

static uint64_t
pattern(size_t chunk, uint64_t gen, size_t word)
{
	uint64_t x = ((uint64_t)chunk << 32) ^ gen ^ 0x5851f42d4c957f2dULL;

	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ULL;
	return x ^ ((uint64_t)word * 0xd1b54a32d192ed03ULL);
}

static void
fill(uint64_t *w, size_t chunk, uint64_t gen)
{
	size_t i;

	for (i = 0; i < WORDS; i++)
		w[i] = pattern(chunk, gen, i);
}

/* 0 when every word holds its pattern; prints the first that does not. */
static int
check(uint64_t *mem, const uint64_t *gen, size_t chunks)
{
	size_t c, i;

	for (c = 0; c < chunks; c++) {
		const uint64_t *w = mem + c * WORDS;

		for (i = 0; i < WORDS; i++) {
			if (w[i] != pattern(c, gen[c], i)) {
				printf("BENCH memcheck bad chunk=%zu word=%zu "
				       "got=%016llx want=%016llx\n",
				    c, i, (unsigned long long)w[i],
				    (unsigned long long)pattern(c, gen[c], i));
				return -1;
			}
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	long size_mib = argc > 3 ? strtol(argv[1], NULL, 10) : 0;
	double rate = argc > 3 ? strtod(argv[2], NULL) : -1;
	size_t chunks, next = 0;
	uint64_t *mem, *gen, written = 0;
	double t0;
	char buf[256];
	int fd;

	if (size_mib <= 0 || rate < 0) {
		fprintf(stderr, "usage: memcheck SIZE_MIB RATE_MIB_S PORT\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	chunks = (size_t)size_mib;
	mem = mmap(NULL, chunks * WL_MIB, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gen = calloc(chunks, sizeof *gen);
	if (mem == MAP_FAILED || gen == NULL) {
		perror("memcheck: memory");
		return 1;
	}
	/* Kept resident: the check is of memory in use, never of swap. */
	if (mlock(mem, chunks * WL_MIB) == -1)
		perror("memcheck: mlock");
	for (next = 0; next < chunks; next++)
		fill(mem + next * WORDS, next, 0);
	next = 0;
	if ((fd = open(argv[3], O_RDWR | O_NONBLOCK)) == -1) {
		perror("memcheck: port");
		return 1;
	}
	printf("BENCH memcheck filled mib=%zu rate=%g\n", chunks, rate);
	t0 = wl_now();
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double due;
		ssize_t n;

		/* Rewrites whole chunks, as many as the rate allows by now. */
		due = rate * (wl_now() - t0);
		while (rate > 0 && (double)written + 1 <= due) {
			fill(mem + next * WORDS, next, ++gen[next]);
			next = (next + 1) % chunks;
			written++;
		}
		if (poll(&p, 1, 100) == -1 ||
		    (p.revents & (POLLIN | POLLHUP)) == POLLHUP) {
			/* No host on the port yet: it polls as hung up. */
			usleep(100000);
			continue;
		}
		if (!(p.revents & POLLIN))
			continue;
		n = read(fd, buf, sizeof buf - 1);
		if (n <= 0)
			continue;
		if (check(mem, gen, chunks) == 0)
			printf("BENCH memcheck ok mib=%zu written_mib=%llu "
			       "seconds=%.1f\n",
			    chunks, (unsigned long long)written, wl_now() - t0);
		/* The host may also read the result on the port. */
		if (write(fd, "checked\n", 8) != 8)
			perror("memcheck: port");
	}
}

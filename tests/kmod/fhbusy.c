// SPDX-License-Identifier: GPL-2.0
/*
 * fhbusy: keep freehint.ko busy for the migration loop (migrate-loop.py).
 *   fhbusy ack    read every report batch and acknowledge it at once
 *   fhbusy hold   capture 128 MiB, read and acknowledge it, release, again
 * Runs until killed.
 */
#include <poll.h>

#include "fhtest.h"

static char buf[8192];

/* Acknowledge the batch in @buf (read from @fd). */
static void
ack_batch(int fd, ssize_t n)
{
	unsigned long long id;
	int len;

	buf[n] = '\0';
	if (sscanf(buf, "batch %llu", &id) != 1)
		return;
	len = snprintf(buf, sizeof(buf), "ack %llu\n", id);
	if (write(fd, buf, len) != len)
		say("fhbusy: ack %llu: %s\n", id, strerror(errno));
}

int
main(int argc, char **argv)
{
	static const char capture[] = "capture min_order=9 limit=134217728\n";
	struct pollfd p;
	ssize_t n;
	int fd;

	if (argc != 2 || (strcmp(argv[1], "ack") && strcmp(argv[1], "hold")))
		return fprintf(stderr, "usage: fhbusy ack|hold\n"), 2;
	if (!strcmp(argv[1], "ack")) {
		fd = open(FH_PROC "report", O_RDWR);
		if (fd == -1)
			die("open report");
		for (;;) {
			p.fd = fd;
			p.events = POLLIN;
			poll(&p, 1, 1000);
			n = read(fd, buf, sizeof(buf) - 1);
			if (n > 0)
				ack_batch(fd, n);
		}
	}
	fd = open(FH_PROC "hold", O_RDWR);
	if (fd == -1)
		die("open hold");
	for (;;) {
		if (write(fd, capture, strlen(capture)) == -1)
			say("fhbusy: capture: %s\n", strerror(errno));
		while ((n = read(fd, buf, sizeof(buf) - 1)) > 0)
			ack_batch(fd, n);
		sleep_ms(500);
		if (write(fd, "release\n", 8) != 8)
			say("fhbusy: release: %s\n", strerror(errno));
		sleep_ms(500);
	}
}

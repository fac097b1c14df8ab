/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the guest-side freehint.ko test programs. These run
 * inside a QEMU guest as root, never on the build machine.
 */
#ifndef FHTEST_H
#define FHTEST_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define FH_PROC "/proc/freehint/"
/* A hold batch: at most this many blocks, which this buffer takes. */
#define FH_HOLD_MAXB  1024
#define FH_HOLD_BUFSZ 32768

static int fh_failures __attribute__((unused));

static inline void __attribute__((format(printf, 1, 2)))
say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

#define CHECK(cond, name, ...)                  \
	do {                                    \
		if (cond) {                     \
			say("PASS %s\n", name); \
		} else {                        \
			say("FAIL %s: ", name); \
			say(__VA_ARGS__);       \
			say("\n");              \
			fh_failures++;          \
		}                               \
	} while (0)

static inline void __attribute__((noreturn)) die(const char *what)
{
	say("FAIL %s: %s\n", what, strerror(errno));
	exit(2);
}

static inline double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Value of @key in a "key value" file, or -1. */
static inline long long
file_key(const char *path, const char *key)
{
	char line[256], k[128];
	long long v, ret = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127[^: ]%*[: ]%lld", k, &v) == 2 &&
		    !strcmp(k, key)) {
			ret = v;
			break;
		}
	}
	fclose(f);
	return ret;
}

static inline long long
stat_get(const char *key)
{
	return file_key(FH_PROC "stats", key);
}

static inline long long
meminfo_kb(const char *key)
{
	return file_key("/proc/meminfo", key);
}

/* pfn of the page mapped at @addr, 0 if not present. */
static inline uint64_t
addr_pfn(int pagemap_fd, const void *addr)
{
	uint64_t e = 0;
	off_t off = (uintptr_t)addr / 4096 * 8;

	if (pread(pagemap_fd, &e, 8, off) != 8)
		return 0;
	if (!(e >> 63))
		return 0;
	return e & ((1ULL << 55) - 1);
}

struct fh_block {
	uint64_t pfn;
	unsigned int order;
};

/* grace_ms of the last batch parse_batch() saw, -1 if it had none. */
static long fh_last_grace __attribute__((unused));

/*
 * Parse "batch <id> <count> grace_ms=<ms>\n" + count "0x<pfn> <order>\n"
 * lines. Returns count, or -1 if malformed.
 */
static inline int
parse_batch(char *buf, size_t len, uint64_t *id, struct fh_block *blk, int max)
{
	char *line, *save = NULL;
	int count, n = 0;

	buf[len] = '\0';
	line = strtok_r(buf, "\n", &save);
	fh_last_grace = -1;
	if (!line ||
	    sscanf(line, "batch %" SCNu64 " %d grace_ms=%ld", id, &count,
	        &fh_last_grace) < 2 ||
	    count < 0 || count > max)
		return -1;
	while (n < count && (line = strtok_r(NULL, "\n", &save))) {
		if (sscanf(line, "0x%" SCNx64 " %u", &blk[n].pfn,
		        &blk[n].order) != 2)
			return -1;
		n++;
	}
	return n == count ? count : -1;
}

static inline int
write_str(int fd, const char *s)
{
	ssize_t n = write(fd, s, strlen(s));

	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* Set the module parameter @name; 0 or -1. */
static inline int
set_param(const char *name, long value)
{
	char path[128], v[32];
	int fd, rc;

	snprintf(
	    path, sizeof(path), "/sys/module/freehint/parameters/%s", name);
	snprintf(v, sizeof(v), "%ld\n", value);
	if ((fd = open(path, O_WRONLY)) < 0)
		return -1;
	rc = write_str(fd, v);
	close(fd);
	return rc;
}

/* Allocate @mb MiB, fill every page with @byte, return the mapping. */
static inline char *
alloc_fill(size_t mb, int byte)
{
	size_t len = mb << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_NOHUGEPAGE);
	memset(p, byte, len);
	return p;
}

#endif /* FHTEST_H */

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * freehintd's memory map: "info mtree -f" as QEMU 7.2 printed it here
 * (tests/hostd/data/), lookups at region edges and the arithmetic from
 * guest-physical address to backing offset.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "freehintd.h"

#define DATA "tests/hostd/data/"
#define MiB  (1ULL << 20)

#define REUSE_ADDR ((void *)0x7e0000000000ULL)

static char *slurp(const char *);
static pid_t mapper(pid_t);
static void parse(const char *, const char *, struct memmap *);

static char *
slurp(const char *name)
{
	char *buf;
	long len;
	FILE *f;

	f = fopen(name, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

static void
parse(const char *file, const char *block, struct memmap *m)
{
	char err[256], *text = slurp(file);

	memmap_init(m);
	assert_int_equal(
	    memmap_parse_mtree(text, block, m, err, sizeof err), 0);
	free(text);
}

static void
test_pc_512m(void **state)
{
	struct memmap m;

	parse(DATA "mtree-pc-512m.txt", "mem0", &m);
	/* Below the VGA hole, and from 1 MiB to the top of RAM. */
	assert_int_equal(m.n, 2);
	assert_int_equal(m.r[0].gpa, 0);
	assert_int_equal(m.r[0].size, 0xa0000);
	assert_int_equal(m.r[0].blk_off, 0);
	assert_int_equal(m.r[1].gpa, 0x100000);
	assert_int_equal(m.r[1].size, 512 * MiB - 0x100000);
	assert_int_equal(m.r[1].blk_off, 0x100000);
	assert_int_equal(memmap_ram_bytes(&m), 512 * MiB - 0x60000);
	memmap_free(&m);
}

static void
test_pc_4g(void **state)
{
	struct memmap m;

	parse(DATA "mtree-pc-4g.txt", "mem0", &m);
	/* ram-below-4g ends at 3 GiB; ram-above-4g maps the rest at 4 GiB. */
	assert_int_equal(m.n, 3);
	assert_int_equal(m.r[1].gpa + m.r[1].size, 0xc0000000ULL);
	assert_int_equal(m.r[2].gpa, 0x100000000ULL);
	assert_int_equal(m.r[2].size, 1024 * MiB);
	assert_int_equal(m.r[2].blk_off, 0xc0000000ULL);
	assert_int_equal(m.r[0].blk_off, 0);
	assert_int_equal(m.r[1].blk_off, 0x100000);
	assert_int_equal(memmap_ram_bytes(&m), 4096 * MiB - 0x60000);
	/* The PCI hole and everything past RAM are not RAM. */
	assert_null(memmap_find(&m, 0xc0000000ULL, 4096));
	assert_null(memmap_find(&m, 0xbffff000ULL, 8192));
	assert_non_null(memmap_find(&m, 0xbffff000ULL, 4096));
	assert_non_null(memmap_find(&m, 0x13ffff000ULL, 4096));
	assert_null(memmap_find(&m, 0x140000000ULL, 4096));
	memmap_free(&m);
}

/* After the firmware ran: ROM-mapped RAM, vga.vram and the ivshmem BAR. */
static void
test_running_bars_excluded(void **state)
{
	struct memmap m;
	char err[256], *text;
	size_t i;

	parse(DATA "mtree-pc-512m-ivshmem-running.txt", "mem0", &m);
	for (i = 0; i < m.n; i++)
		assert_true(m.r[i].gpa + m.r[i].size <= 512 * MiB);
	assert_null(memmap_find(&m, 0xfe000000ULL, 4096)); /* canary BAR */
	assert_null(memmap_find(&m, 0xfd000000ULL, 4096)); /* vga.vram */
	assert_null(memmap_find(&m, 0xc0000, 4096)); /* ROM-mapped */
	assert_non_null(memmap_find(&m, 0xcb000, 4096)); /* RAM again */
	memmap_free(&m);

	/* The canary's own name does not make it guest RAM either way. */
	text = slurp(DATA "mtree-pc-512m-ivshmem-running.txt");
	memmap_init(&m);
	assert_int_equal(
	    memmap_parse_mtree(text, "canary", &m, err, sizeof err), 0);
	assert_int_equal(m.n, 1);
	memmap_free(&m);
	memmap_init(&m);
	assert_int_equal(
	    memmap_parse_mtree(text, "pc.ram", &m, err, sizeof err), -1);
	memmap_free(&m);
	free(text);
}

static void
test_garbage(void **state)
{
	static const char *const bad[] = {
		"",
		"FlatView #0\n AS \"memory\", root: system\n",
		"  0000000000000000-000000000009ffff (prio 0, ram): mem0\n",
		"FlatView #0\n AS \"memory\", root: system\n"
		"  0000000000100000-000000001fffffff (prio 0, ram): mem0\n"
		"  0000000000000000-000000000fffffff (prio 0, ram): mem0\n",
	};
	struct memmap m;
	char err[256];
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(bad); i++) {
		memmap_init(&m);
		assert_int_equal(
		    memmap_parse_mtree(bad[i], "mem0", &m, err, sizeof err),
		    -1);
		memmap_free(&m);
	}
}

static void
test_find_edges(void **state)
{
	struct memregion r[2] = {
		{ 0, 0xa0000, 0, 0, -1, 0, 4096 },
		{ 0x100000, 0x1ff00000, 0x100000, 0, -1, 0, 4096 },
	};
	struct memmap m = { r, 2, NULL, VM_BACKING_MEMFD };

	assert_ptr_equal(memmap_find(&m, 0, 0xa0000), &r[0]);
	assert_null(memmap_find(&m, 0, 0xa0001));
	assert_null(memmap_find(&m, 0x9f000, 0x62000)); /* spans the hole */
	assert_ptr_equal(memmap_find(&m, 0x1ffff000, 4096), &r[1]);
	assert_null(memmap_find(&m, 0x20000000, 4096));
	assert_null(memmap_find(&m, 0x100000, 0));
	assert_null(memmap_find(&m, UINT64_MAX - 4095, 8192)); /* wraps */
}

/*
 * q35 with two NUMA nodes (memfd backends m0 and ram-node1, as libvirt
 * names them) and an ivshmem canary: the nodes' blocks come from the RAM
 * container of "info mtree", each is RAM, the canary is not.
 */
static void
test_q35_numa(void **state)
{
	char blocks[256], *tree;
	struct memmap m;

	tree = slurp(DATA "mtree-q35-numa-tree.txt");
	assert_int_equal(
	    memmap_parse_container(tree, "pc.ram", blocks, sizeof blocks), 2);
	assert_string_equal(blocks, "m0,ram-node1");
	assert_int_equal(memmap_parse_container(tree, "pc.ram", blocks, 8), -1);
	assert_int_equal(
	    memmap_parse_container(tree, "pc.ra", blocks, sizeof blocks), 0);
	free(tree);

	parse(DATA "mtree-q35-numa.txt", "m0,ram-node1", &m);
	assert_int_equal(m.n, 3);
	assert_int_equal(m.r[1].gpa, 0x100000);
	assert_int_equal(m.r[1].size, 128 * MiB - 0x100000);
	assert_int_equal(m.r[2].gpa, 128 * MiB);
	assert_int_equal(m.r[2].size, 128 * MiB);
	assert_int_equal(m.r[2].blk_off, 0);
	/* A range from one node's backend into the other's: refused. */
	assert_null(memmap_find(&m, 128 * MiB - 4096, 8192));
	assert_ptr_equal(memmap_find(&m, 128 * MiB, 2 * MiB), &m.r[2]);
	memmap_free(&m);
	/* Even where the offsets line up, two blocks are two regions. */
	memmap_init(&m);
	assert_int_equal(
	    memmap_parse_mtree("FlatView #0\n AS \"memory\", "
	                       "root: system\n"
	                       "  0000000000000000-000000000fffffff "
	                       "(prio 0, ram): a\n"
	                       "  0000000010000000-000000001fffffff "
	                       "(prio 0, ram): b @0000000010000000\n",
	        "a,b", &m, blocks, sizeof blocks),
	    0);
	assert_int_equal(m.n, 2);
	assert_null(memmap_find(&m, 0xfff0000, 0x20000));
	memmap_free(&m);
	parse(DATA "mtree-q35-numa.txt", "m0,ram-node1", &m);

	/* SMRAM cut out by position, whatever the flat view showed. */
	memmap_exclude_smm(&m, true, true, 256 * MiB, 16 * MiB);
	assert_int_equal(m.n, 4);
	assert_null(memmap_find(&m, 0xa0000, 4096)); /* legacy SMRAM */
	assert_null(memmap_find(&m, 0x30000, 4096)); /* SMBASE */
	assert_null(memmap_find(&m, 0x4f000, 4096));
	assert_non_null(memmap_find(&m, 0x2f000, 4096));
	assert_non_null(memmap_find(&m, 0x50000, 0x50000));
	assert_null(memmap_find(&m, 240 * MiB, 4096)); /* TSEG */
	assert_null(memmap_find(&m, 256 * MiB - 4096, 4096));
	assert_non_null(memmap_find(&m, 240 * MiB - 4096, 4096));
	assert_int_equal(m.r[1].blk_off, 0x50000);
	memmap_free(&m);

	/* No extended TSEG: the largest the firmware can choose, 8 MiB. */
	parse(DATA "mtree-q35-numa.txt", "m0,ram-node1", &m);
	memmap_exclude_smm(&m, true, true, 256 * MiB, 0);
	assert_null(memmap_find(&m, 248 * MiB, 4096));
	assert_non_null(memmap_find(&m, 248 * MiB - 4096, 4096));
	memmap_free(&m);
}

/* Holes cut at region edges, inside one, over several. */
static void
test_exclude(void **state)
{
	struct memmap m;

	parse(DATA "mtree-pc-512m.txt", "mem0", &m);
	memmap_exclude(&m, 0, 0x1000); /* the start of a region */
	assert_int_equal(m.r[0].gpa, 0x1000);
	assert_int_equal(m.r[0].blk_off, 0x1000);
	memmap_exclude(&m, 0x9f000, 0x62000); /* both sides of the hole */
	assert_int_equal(m.r[0].gpa + m.r[0].size, 0x9f000);
	assert_int_equal(m.r[1].gpa, 0x101000);
	assert_int_equal(m.r[1].blk_off, 0x101000);
	memmap_exclude(&m, 0, 0x100000); /* a whole region */
	assert_int_equal(m.n, 1);
	memmap_exclude(&m, 0x200000, 0x100000); /* the middle: split */
	assert_int_equal(m.n, 2);
	assert_int_equal(m.r[0].gpa + m.r[0].size, 0x200000);
	assert_int_equal(m.r[1].gpa, 0x300000);
	assert_int_equal(m.r[1].blk_off, 0x300000);
	assert_int_equal(m.r[1].gpa + m.r[1].size, 512 * MiB);
	/* Not a PC: nothing is SMRAM. */
	memmap_exclude_smm(&m, false, false, 0, 0);
	assert_int_equal(m.n, 2);
	memmap_free(&m);
}

/*
 * A child that maps a fresh memfd of 2 MiB shared at REUSE_ADDR and waits
 * to be killed; with pid non-zero it is made to get that pid (through
 * ns_last_pid). Returns its pid once the mapping is there, or -1.
 */
static pid_t
mapper(pid_t pid)
{
	char c = 0, buf[32];
	int p[2], fd, last;
	pid_t child;

	if (pipe(p) != 0)
		return -1;
	if (pid != 0) {
		snprintf(buf, sizeof buf, "%d", (int)pid - 1);
		if ((last = open("/proc/sys/kernel/ns_last_pid", O_WRONLY)) ==
		    -1) {
			close(p[0]);
			close(p[1]);
			return -1;
		}
		if (write(last, buf, strlen(buf)) < 0)
			c = 1;
		close(last);
	}
	if (c != 0 || (child = fork()) == -1) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (child == 0) {
		/* Never outlive the test, nor hold its output open. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((fd = open("/dev/null", O_WRONLY)) != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		fd = memfd_create("reuse", 0);
		if (fd == -1 || ftruncate(fd, 2 * MiB) != 0 ||
		    mmap(REUSE_ADDR, 2 * MiB, PROT_READ | PROT_WRITE,
		        MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0) != REUSE_ADDR)
			_exit(1);
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		close(p[0]);
		waitpid(child, NULL, 0);
		return -1;
	}
	close(p[0]);
	return child;
}

/*
 * QEMU exits and its pid goes to another process that maps something
 * else at the same address: the map must not be resolved in the new
 * process. By pid alone it would be (the window the pidfd closes).
 */
static void
test_pid_reused(void **state)
{
	struct memregion r = { 0, 2 * MiB, 0, 0, -1, 0, 0 };
	struct memmap m = { &r, 1, NULL, VM_BACKING_UNKNOWN };
	char err[256];
	pid_t a, b = -1;
	int pidfd, i;

	if (geteuid() != 0)
		skip();
	r.hva = (uint64_t)(uintptr_t)REUSE_ADDR;
	for (i = 0; i < 20 && b == -1; i++) {
		assert_true((a = mapper(0)) > 0);
		pidfd = (int)syscall(SYS_pidfd_open, a, 0);
		if (pidfd == -1 && errno == ENOSYS) {
			/* valgrind 3.19 knows no pidfd_open. */
			kill(a, SIGKILL);
			waitpid(a, NULL, 0);
			skip();
		}
		assert_true(pidfd >= 0);
		/* While it lives, the pidfd's process is resolved. */
		assert_int_equal(
		    memmap_resolve(&m, a, pidfd, err, sizeof err), 0);
		assert_int_equal(m.kind, VM_BACKING_MEMFD);
		memmap_drop_fds(&m);
		kill(a, SIGKILL);
		waitpid(a, NULL, 0);
		if ((b = mapper(a)) != a) {
			/* Another process took the pid first: try again. */
			if (b > 0) {
				kill(b, SIGKILL);
				waitpid(b, NULL, 0);
			}
			b = -1;
			close(pidfd);
		}
	}
	if (b == -1)
		skip();
	/* The same pid, another process: refused with the pidfd... */
	assert_int_equal(memmap_resolve(&m, a, pidfd, err, sizeof err), -1);
	assert_non_null(strstr(err, "exited"));
	assert_int_equal(r.fd, -1);
	/* ...which is what tells them apart: the pid alone does not. */
	assert_int_equal(memmap_resolve(&m, a, -1, err, sizeof err), 0);
	memmap_drop_fds(&m);
	close(pidfd);
	kill(b, SIGKILL);
	waitpid(b, NULL, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pc_512m),
		cmocka_unit_test(test_pc_4g),
		cmocka_unit_test(test_running_bars_excluded),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_find_edges),
		cmocka_unit_test(test_q35_numa),
		cmocka_unit_test(test_exclude),
		cmocka_unit_test(test_pid_reused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

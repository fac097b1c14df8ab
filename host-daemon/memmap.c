/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A VM's guest-physical RAM and where it lives on the host. The map comes
 * from QEMU's flat view of the "memory" address space (HMP "info mtree -f"):
 * only "ram" regions of the guest's main RAM block count, never ROMs, BARs
 * (ivshmem, VGA vram) or other memory backends, so that nothing a guest
 * names can reach memory that is not its own RAM. Each region is then
 * followed to its backing file through gpa2hva and /proc/PID/maps.
 */
#include <sys/stat.h>
#include <sys/vfs.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "freehintd.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

static int parse_line(const char *, const char *, struct memregion *);
static void add_region(struct memmap *, const struct memregion *);
static int resolve_region(
    struct memregion *, pid_t, enum vm_backing_kind *, char *, size_t);

void
memmap_init(struct memmap *m)
{
	memset(m, 0, sizeof *m);
}

void
memmap_free(struct memmap *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->r[i].fd != -1)
			close(m->r[i].fd);
	free(m->r);
	free(m->ramblock);
	memset(m, 0, sizeof *m);
}

const char *
memmap_kind_name(enum vm_backing_kind k)
{
	switch (k) {
	case VM_BACKING_MEMFD:
		return "memfd";
	case VM_BACKING_FILE:
		return "file";
	case VM_BACKING_HUGETLBFS:
		return "hugetlbfs";
	case VM_BACKING_ANONYMOUS:
		return "private anonymous";
	case VM_BACKING_UNKNOWN:
		break;
	}
	return "unknown";
}

/*
 * One line of a flat view: "  START-END (prio N, TYPE): NAME[ @OFF][ KVM]".
 * Returns 1 for a RAM region of the block ramblock, 0 for any other line.
 */
static int
parse_line(const char *line, const char *ramblock, struct memregion *r)
{
	unsigned long long start, end, off = 0;
	char type[16], name[128];
	const char *p, *at;
	int n = 0, prio;
	size_t len, eol;

	if (sscanf(line, " %llx-%llx (prio %d, %15[^)]): %n", &start, &end,
	        &prio, type, &n) != 4 ||
	    n == 0)
		return 0;
	if (strcmp(type, "ram") != 0 || end < start)
		return 0;
	p = line + n;
	/* Only this line: the name, then " @offset" and " KVM" if any. */
	eol = strcspn(p, "\r\n");
	at = memchr(p, '@', eol);
	len = at != NULL ? (size_t)(at - p) : eol;
	while (len > 0 && p[len - 1] == ' ')
		len--;
	if (len > 4 && strncmp(p + len - 4, " KVM", 4) == 0)
		len -= 4;
	if (len == 0 || len >= sizeof name)
		return 0;
	memcpy(name, p, len);
	name[len] = '\0';
	if (strcmp(name, ramblock) != 0)
		return 0;
	if (at != NULL && sscanf(at, "@%llx", &off) != 1)
		return 0;
	r->gpa = start;
	r->size = end - start + 1;
	r->blk_off = off;
	r->hva = 0;
	r->fd = -1;
	r->file_off = 0;
	r->pagesz = 0;
	return 1;
}

/* Sorted insert; merges with the previous region when contiguous. */
static void
add_region(struct memmap *m, const struct memregion *r)
{
	struct memregion *last;

	if (m->n > 0) {
		last = &m->r[m->n - 1];
		if (last->gpa + last->size == r->gpa &&
		    last->blk_off + last->size == r->blk_off) {
			last->size += r->size;
			return;
		}
	}
	m->r = xreallocarray(m->r, m->n + 1, sizeof *m->r);
	m->r[m->n++] = *r;
}

/*
 * Parse the output of "info mtree -f" into m (which must be empty): the
 * RAM regions of block ramblock in the flat view of address space
 * "memory". Fails when there is none, or when regions are unsorted or
 * overlap (QEMU never prints that: the text is not what we think).
 */
int
memmap_parse_mtree(const char *text, const char *ramblock, struct memmap *m,
    char *err, size_t errlen)
{
	struct memregion r;
	const char *line, *nl;
	int in_view = 0, found_view = 0;

	m->ramblock = xstrdup(ramblock);
	for (line = text; line != NULL && *line != '\0'; line = nl) {
		nl = strchr(line, '\n');
		if (nl != NULL)
			nl++;
		if (strncmp(line, "FlatView ", 9) == 0) {
			if (found_view)
				break;
			in_view = 0;
			continue;
		}
		if (strncmp(line, " AS \"memory\",", 13) == 0) {
			in_view = found_view = 1;
			continue;
		}
		if (!in_view || !parse_line(line, ramblock, &r))
			continue;
		if (m->n > 0 &&
		    r.gpa < m->r[m->n - 1].gpa + m->r[m->n - 1].size) {
			snprintf(err, errlen, "memory map: regions overlap");
			return -1;
		}
		add_region(m, &r);
	}
	if (!found_view) {
		snprintf(err, errlen, "memory map: no flat view of \"memory\"");
		return -1;
	}
	if (m->n == 0) {
		snprintf(err, errlen, "memory map: no RAM region of block %s",
		    ramblock);
		return -1;
	}
	return 0;
}

uint64_t
memmap_ram_bytes(const struct memmap *m)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < m->n; i++)
		total += m->r[i].size;
	return total;
}

/* The region holding all of [gpa, gpa + len), or NULL. */
const struct memregion *
memmap_find(const struct memmap *m, uint64_t gpa, uint64_t len)
{
	size_t lo = 0, hi = m->n, mid;
	const struct memregion *r;

	if (len == 0 || gpa + len < gpa)
		return NULL;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		r = &m->r[mid];
		if (gpa < r->gpa)
			hi = mid;
		else if (gpa - r->gpa >= r->size)
			lo = mid + 1;
		else
			return len <= r->size - (gpa - r->gpa) ? r : NULL;
	}
	return NULL;
}

/* "Host virtual address for 0x100000 (mem0) is 0x7fada80ff000" */
int
memmap_parse_gpa2hva(const char *out, uint64_t *hva)
{
	unsigned long long v;
	const char *p;

	if ((p = strstr(out, " is 0x")) == NULL ||
	    sscanf(p, " is 0x%llx", &v) != 1 || v == 0)
		return -1;
	*hva = v;
	return 0;
}

static int
resolve_region(struct memregion *r, pid_t pid, enum vm_backing_kind *kind,
    char *err, size_t errlen)
{
	unsigned long long start, end, off;
	char path[64], perms[8], *line = NULL;
	char file[512];
	size_t cap = 0;
	struct statfs sfs;
	int n, found = 0, fd;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) != -1) {
		file[0] = '\0';
		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &end,
		        perms, &off, &n) != 4)
			continue;
		if (r->hva < start || r->hva >= end)
			continue;
		sscanf(line + n, "%511[^\n]", file);
		found = 1;
		break;
	}
	free(line);
	fclose(f);
	if (!found || r->size > end - r->hva) {
		snprintf(err, errlen, "RAM at 0x%" PRIx64 " is not one mapping",
		    r->gpa);
		return -1;
	}
	if (perms[3] != 's' || file[0] == '\0' || file[0] == '[') {
		*kind = VM_BACKING_ANONYMOUS;
		return 0;
	}
	/* map_files opens exactly what QEMU mapped, whatever its name. */
	snprintf(path, sizeof path, "/proc/%d/map_files/%llx-%llx", (int)pid,
	    start, end);
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstatfs(fd, &sfs) != 0) {
		snprintf(err, errlen, "fstatfs: %s", strerror(errno));
		close(fd);
		return -1;
	}
	r->fd = fd;
	r->file_off = off + (r->hva - start);
	if (sfs.f_type == HUGETLBFS_MAGIC) {
		r->pagesz = (uint64_t)sfs.f_bsize;
		*kind = VM_BACKING_HUGETLBFS;
	} else {
		r->pagesz = (uint64_t)sysconf(_SC_PAGESIZE);
		*kind = strncmp(file, "/memfd:", 7) == 0 ? VM_BACKING_MEMFD
		                                         : VM_BACKING_FILE;
	}
	return 0;
}

/*
 * Find each region's backing in QEMU process pid, from its host address
 * (r->hva, which the caller got with gpa2hva). All regions must be
 * backed alike; m->kind says how (ANONYMOUS: no fds, cannot discard).
 */
int
memmap_resolve(struct memmap *m, pid_t pid, char *err, size_t errlen)
{
	enum vm_backing_kind kind, first = VM_BACKING_UNKNOWN;
	size_t i;

	m->kind = VM_BACKING_UNKNOWN;
	for (i = 0; i < m->n; i++) {
		kind = VM_BACKING_UNKNOWN;
		if (m->r[i].hva == 0) {
			snprintf(err, errlen, "no host address for 0x%" PRIx64,
			    m->r[i].gpa);
			return -1;
		}
		if (resolve_region(&m->r[i], pid, &kind, err, errlen) != 0)
			return -1;
		if (i > 0 && kind != first) {
			snprintf(err, errlen, "RAM regions backed differently");
			return -1;
		}
		first = kind;
	}
	m->kind = first;
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A VM's guest-physical RAM and where it lives on the host. The map comes
 * from QEMU's flat view of the "memory" address space (HMP "info mtree -f"):
 * only "ram" regions of the guest's RAM blocks count (the machine's memory
 * backend, or each NUMA node's), never ROMs, BARs (ivshmem, VGA vram) or
 * other memory backends, so that nothing a guest names can reach memory
 * that is not its own RAM. The flat view shows what the firmware has
 * opened, so SMRAM is cut out by position whatever it shows: see
 * memmap_exclude_smm. Each region is then followed to its backing file
 * through gpa2hva and /proc/PID/maps, and the file is opened only when
 * QEMU could punch the holes itself: see backing_check.
 */
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>

#include <dirent.h>
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
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
/* hw/pci-host/q35.h: MCH_HOST_BRIDGE_SMRAM_C_*, _SMBASE_*; TSEG_SZ 8M. */
#define SMM_LEGACY_BASE 0xa0000ULL
#define SMM_LEGACY_SIZE 0x20000ULL
#define SMM_SMBASE_ADDR 0x30000ULL
#define SMM_SMBASE_SIZE 0x20000ULL
#define SMM_TSEG_MAX    (8ULL << 20)

/* One line of /proc/PID/maps. */
struct mapline {
	unsigned long long start, end, off, ino;
	unsigned dmaj, dmin;
	char perms[8];
	char file[512];
};

static int block_index(const char *, const char *);
static int parse_line(const char *, const char *, struct memregion *);
static void add_region(struct memmap *, const struct memregion *, bool);
static int resolve_region(
    struct memregion *, int, enum vm_backing_kind *, char *, size_t);
static FILE *proc_fopen(int, const char *);
static int proc_open(pid_t, int, char *, size_t);
static int maps_find(int, uint64_t, struct mapline *, char *, size_t);
static bool same_mapline(const struct mapline *, const struct mapline *);
static int proc_uid(int, uid_t *);
static int backing_check(
    int, const struct mapline *, uid_t, struct statfs *, char *, size_t);

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

/* The position of name in blocks (names separated by commas), or -1. */
static int
block_index(const char *blocks, const char *name)
{
	size_t len = strlen(name);
	const char *p;
	int i;

	for (p = blocks, i = 0; p != NULL; i++) {
		if (strncmp(p, name, len) == 0 &&
		    (p[len] == ',' || p[len] == '\0'))
			return i;
		if ((p = strchr(p, ',')) != NULL)
			p++;
	}
	return -1;
}

/*
 * One line of a flat view: "  START-END (prio N, TYPE): NAME[ @OFF][ KVM]".
 * Returns 1 + the block's position in blocks for a RAM region of one of
 * them, 0 for any other line.
 */
static int
parse_line(const char *line, const char *blocks, struct memregion *r)
{
	unsigned long long start, end, off = 0;
	char type[16], name[128];
	const char *p, *at;
	int n = 0, prio, blk;
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
	if (strchr(name, ',') != NULL ||
	    (blk = block_index(blocks, name)) == -1)
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
	return 1 + blk;
}

/*
 * Sorted insert; merges with the previous region when contiguous in the
 * same block (same_block).
 */
static void
add_region(struct memmap *m, const struct memregion *r, bool same_block)
{
	struct memregion *last;

	if (m->n > 0 && same_block) {
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
 * RAM regions of the blocks named in blocks (separated by commas: QEMU
 * ids have none) in the flat view of address space "memory". Fails when
 * there is none, or when regions are unsorted or overlap (QEMU never
 * prints that: the text is not what we think). Regions of different
 * blocks are never merged: a range crossing from one into the other is
 * in no single region, and memmap_find refuses it.
 */
int
memmap_parse_mtree(const char *text, const char *blocks, struct memmap *m,
    char *err, size_t errlen)
{
	struct memregion r;
	const char *line, *nl;
	int in_view = 0, found_view = 0, blk, last_blk = 0;

	m->ramblock = xstrdup(blocks);
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
		if (!in_view || (blk = parse_line(line, blocks, &r)) == 0)
			continue;
		if (m->n > 0 &&
		    r.gpa < m->r[m->n - 1].gpa + m->r[m->n - 1].size) {
			snprintf(err, errlen, "memory map: regions overlap");
			return -1;
		}
		add_region(m, &r, blk == last_blk);
		last_blk = blk;
	}
	if (!found_view) {
		snprintf(err, errlen, "memory map: no flat view of \"memory\"");
		return -1;
	}
	if (m->n == 0) {
		snprintf(err, errlen, "memory map: no RAM region of block %s",
		    blocks);
		return -1;
	}
	return 0;
}

/*
 * The RAM blocks of the machine's RAM container, from "info mtree" (not
 * flat): with NUMA nodes, each node's memory backend is a "ram"
 * subregion of the container (default name "pc.ram"), listed under
 * "memory-region: pc.ram". Writes them to out separated by commas;
 * returns their number, 0 when the container has no RAM subregions
 * (or -1 when they do not fit in out).
 */
int
memmap_parse_container(
    const char *text, const char *container, char *out, size_t outlen)
{
	const char *line, *nl, *p;
	char hdr[160], type[16], name[128];
	unsigned long long start, end;
	int n = 0, count = 0, prio, depth = -1;
	size_t used = 0, len;

	out[0] = '\0';
	snprintf(hdr, sizeof hdr, "memory-region: %s", container);
	len = strlen(hdr);
	for (line = strstr(text, hdr);
	     line != NULL && line[len] != '\r' && line[len] != '\n';
	     line = strstr(line + len, hdr))
		;
	for (; line != NULL && *line != '\0'; line = nl) {
		nl = strchr(line, '\n');
		if (nl != NULL)
			nl++;
		if (line[0] != ' ') { /* the header, or the next section */
			if (count > 0 || depth != -1)
				break;
			continue;
		}
		if (sscanf(line, " %llx-%llx (prio %d, %15[^)]): %n", &start,
		        &end, &prio, type, &n) != 4 ||
		    n == 0)
			continue;
		/* The container's own line, then its children one deeper. */
		if (depth == -1) {
			depth = (int)strspn(line, " ");
			continue;
		}
		if ((int)strspn(line, " ") != depth + 2 ||
		    strcmp(type, "ram") != 0)
			continue;
		p = line + n;
		len = strcspn(p, " \r\n");
		/* QEMU ids have no commas: the list's separator. */
		if (len == 0 || len >= sizeof name || memchr(p, ',', len))
			continue;
		memcpy(name, p, len);
		name[len] = '\0';
		if (used + len + 2 > outlen)
			return -1;
		used += (size_t)snprintf(
		    out + used, outlen - used, "%s%s", count ? "," : "", name);
		count++;
	}
	return count;
}

/*
 * Cut [start, start + len) out of the map: the regions around it shrink
 * or split, so that no range in it is ever guest RAM.
 */
void
memmap_exclude(struct memmap *m, uint64_t start, uint64_t len)
{
	struct memregion *r, tail;
	uint64_t end = start + len, rend;
	size_t i;

	for (i = 0; i < m->n; i++) {
		r = &m->r[i];
		rend = r->gpa + r->size;
		if (rend <= start || r->gpa >= end)
			continue;
		if (r->gpa < start && rend > end) {
			/* Split: the part after the hole goes in after r. */
			tail = *r;
			tail.gpa = end;
			tail.size = rend - end;
			tail.blk_off = r->blk_off + (end - r->gpa);
			r->size = start - r->gpa;
			m->r = xreallocarray(m->r, m->n + 1, sizeof *m->r);
			memmove(&m->r[i + 2], &m->r[i + 1],
			    (m->n - i - 1) * sizeof *m->r);
			m->r[i + 1] = tail;
			m->n++;
			i++;
		} else if (r->gpa < start) {
			r->size = start - r->gpa;
		} else if (rend > end) {
			r->blk_off += end - r->gpa;
			r->size = rend - end;
			r->gpa = end;
		} else {
			memmove(r, r + 1, (m->n - i - 1) * sizeof *m->r);
			m->n--;
			i--;
		}
	}
}

/*
 * SMRAM is never guest RAM, whatever the flat view shows: before the
 * firmware closes and locks it (or with no VGA device on q35, even
 * after), it looks like plain RAM there, and a hole punched in it would
 * destroy the firmware's SMM handler. By position, from QEMU's
 * hw/pci-host/q35.c and i440fx.c: the legacy SMRAM window at 0xa0000
 * on every PC machine; on q35 also the SMBASE range at 0x30000 (which
 * the firmware may lock, smbase-smram) and TSEG, the top of RAM below
 * 4 GiB, of at most tseg_max bytes (8 MiB, or extended-tseg-mbytes).
 */
void
memmap_exclude_smm(
    struct memmap *m, bool pc, bool q35, uint64_t below_4g, uint64_t tseg_max)
{
	if (pc || q35)
		memmap_exclude(m, SMM_LEGACY_BASE, SMM_LEGACY_SIZE);
	if (!q35)
		return;
	memmap_exclude(m, SMM_SMBASE_ADDR, SMM_SMBASE_SIZE);
	if (tseg_max < SMM_TSEG_MAX)
		tseg_max = SMM_TSEG_MAX;
	if (tseg_max > below_4g)
		tseg_max = below_4g;
	memmap_exclude(m, below_4g - tseg_max, tseg_max);
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

/* A file of the process whose /proc directory is procfd. */
static FILE *
proc_fopen(int procfd, const char *name)
{
	FILE *f;
	int fd;

	if ((fd = openat(procfd, name, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if ((f = fdopen(fd, "r")) == NULL)
		close(fd);
	return f;
}

/*
 * /proc/PID of the process pidfd names (pidfd -1: whichever has pid).
 * A pid can be reused: the directory is opened first, then the pidfd's
 * process is checked to be still alive, so the directory is its own.
 * Everything read through the directory afterwards (maps, map_files,
 * status) is that process's, or fails once it has exited.
 */
static int
proc_open(pid_t pid, int pidfd, char *err, size_t errlen)
{
	char path[32];
	int procfd;

	snprintf(path, sizeof path, "/proc/%d", (int)pid);
	if ((procfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (pidfd != -1 &&
	    syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) != 0) {
		snprintf(err, errlen, "QEMU process %d exited", (int)pid);
		close(procfd);
		return -1;
	}
	return procfd;
}

/* The line of the process's maps holding address hva. */
static int
maps_find(
    int procfd, uint64_t hva, struct mapline *ml, char *err, size_t errlen)
{
	char *line = NULL;
	size_t cap = 0;
	int n, found = 0;
	FILE *f;

	if ((f = proc_fopen(procfd, "maps")) == NULL) {
		snprintf(err, errlen, "QEMU's maps: %s", strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) != -1) {
		memset(ml, 0, sizeof *ml);
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &ml->start,
		        &ml->end, ml->perms, &ml->off, &ml->dmaj, &ml->dmin,
		        &ml->ino, &n) != 7)
			continue;
		if (hva < ml->start || hva >= ml->end)
			continue;
		sscanf(line + n, "%511[^\n]", ml->file);
		found = 1;
		break;
	}
	free(line);
	fclose(f);
	if (!found) {
		snprintf(
		    err, errlen, "no mapping at 0x%" PRIx64 " in QEMU", hva);
		return -1;
	}
	return 0;
}

static bool
same_mapline(const struct mapline *a, const struct mapline *b)
{
	return a->start == b->start && a->end == b->end && a->off == b->off &&
	    a->dmaj == b->dmaj && a->dmin == b->dmin && a->ino == b->ino &&
	    strcmp(a->perms, b->perms) == 0;
}

/* The effective uid of process pid (the owner of what it creates). */
static int
proc_uid(int procfd, uid_t *uid)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned ruid, euid;
	int rc = -1;
	FILE *f;

	if ((f = proc_fopen(procfd, "status")) == NULL)
		return -1;
	while (getline(&line, &cap, f) != -1)
		if (sscanf(line, "Uid: %u %u", &ruid, &euid) == 2) {
			*uid = (uid_t)euid;
			rc = 0;
			break;
		}
	free(line);
	fclose(f);
	return rc;
}

/*
 * Is the file behind fd (an O_PATH descriptor from map_files) one that
 * freehintd may punch holes in on QEMU's behalf: the very file the maps
 * line named, a regular file on tmpfs (memfd, /dev/shm) or hugetlbfs,
 * owned by the user QEMU runs as? Anything else (a library, a disk
 * image, another user's file, a file on a disk) could be a file QEMU
 * cannot write itself, and a compromised QEMU must not be able to borrow
 * our privileges to destroy it.
 */
static int
backing_check(int fd, const struct mapline *ml, uid_t uid, struct statfs *sfs,
    char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || fstatfs(fd, sfs) != 0) {
		snprintf(
		    err, errlen, "backing %s: %s", ml->file, strerror(errno));
		return -1;
	}
	if (st.st_dev != makedev(ml->dmaj, ml->dmin) || st.st_ino != ml->ino) {
		snprintf(err, errlen,
		    "backing refused: %s changed while it was opened",
		    ml->file);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(
		    err, errlen, "backing refused: %s is not a file", ml->file);
		return -1;
	}
	if (sfs->f_type != TMPFS_MAGIC && sfs->f_type != HUGETLBFS_MAGIC) {
		snprintf(err, errlen,
		    "backing refused: %s is not a memfd, tmpfs or hugetlbfs "
		    "file",
		    ml->file);
		return -1;
	}
	if (st.st_uid != uid) {
		snprintf(err, errlen,
		    "backing refused: %s belongs to uid %u, QEMU runs as uid "
		    "%u",
		    ml->file, (unsigned)st.st_uid, (unsigned)uid);
		return -1;
	}
	return 0;
}

static int
resolve_region(struct memregion *r, int procfd, enum vm_backing_kind *kind,
    char *err, size_t errlen)
{
	struct mapline ml, again;
	char path[96];
	struct statfs sfs;
	struct stat st;
	int pfd, fd;
	uid_t uid;

	if (maps_find(procfd, r->hva, &ml, err, errlen) != 0 ||
	    r->size > ml.end - r->hva) {
		snprintf(err, errlen, "RAM at 0x%" PRIx64 " is not one mapping",
		    r->gpa);
		return -1;
	}
	if (ml.perms[3] != 's' || ml.file[0] == '\0' || ml.file[0] == '[') {
		*kind = VM_BACKING_ANONYMOUS;
		return 0;
	}
	/* QEMU writes its RAM: a shared mapping it cannot write is not. */
	if (ml.perms[0] != 'r' || ml.perms[1] != 'w') {
		snprintf(err, errlen,
		    "backing refused: QEMU maps %s %s, not read-write", ml.file,
		    ml.perms);
		return -1;
	}
	if (proc_uid(procfd, &uid) != 0) {
		snprintf(err, errlen, "QEMU's status: no uid");
		return -1;
	}
	/*
	 * map_files reaches exactly what QEMU mapped, whatever its name.
	 * Opened O_PATH first, so nothing is opened read-write before the
	 * checks; the maps line is read again afterwards, so a mapping
	 * replaced in between is noticed; only then is the same file
	 * opened read-write through our own descriptor.
	 */
	snprintf(path, sizeof path, "map_files/%llx-%llx", ml.start, ml.end);
	if ((pfd = openat(procfd, path, O_PATH | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (backing_check(pfd, &ml, uid, &sfs, err, errlen) != 0) {
		close(pfd);
		return -1;
	}
	if (maps_find(procfd, r->hva, &again, err, errlen) != 0 ||
	    !same_mapline(&ml, &again)) {
		snprintf(err, errlen,
		    "backing refused: the mapping of %s changed while it was "
		    "opened",
		    ml.file);
		close(pfd);
		return -1;
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", pfd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	close(pfd);
	if (fd == -1 || fstat(fd, &st) != 0 ||
	    st.st_dev != makedev(ml.dmaj, ml.dmin) || st.st_ino != ml.ino) {
		snprintf(err, errlen, "backing %s: %s", ml.file,
		    fd == -1 ? strerror(errno) : "changed on reopening");
		if (fd != -1)
			close(fd);
		return -1;
	}
	r->fd = fd;
	r->file_off = ml.off + (r->hva - ml.start);
	if (sfs.f_type == HUGETLBFS_MAGIC) {
		r->pagesz = (uint64_t)sfs.f_bsize;
		*kind = VM_BACKING_HUGETLBFS;
	} else {
		r->pagesz = (uint64_t)sysconf(_SC_PAGESIZE);
		*kind = strncmp(ml.file, "/memfd:", 7) == 0 ? VM_BACKING_MEMFD
		                                            : VM_BACKING_FILE;
	}
	return 0;
}

/*
 * Calls match with the target of each of process pid's open fds
 * ("/dev/vfio/7", "socket:[123]") until it returns non-zero. Returns
 * what match returned, 0 when it never did, -1 when the fds cannot be
 * read.
 */
int
memmap_fd_walk(pid_t pid, int (*match)(const char *, void *), void *arg)
{
	char dir[64], path[384], target[256];
	struct dirent *de;
	ssize_t n;
	int found = 0;
	DIR *d;

	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	if ((d = opendir(dir)) == NULL)
		return -1;
	while (found == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if ((n = readlink(path, target, sizeof target - 1)) <= 0)
			continue;
		target[n] = '\0';
		found = match(target, arg);
	}
	closedir(d);
	return found;
}

struct dma_why {
	char *why;
	size_t len;
};

static int
memmap_dma_match(const char *target, void *arg)
{
	static const char *const prefix[] = { "/dev/vfio/",
		"/dev/vhost-vdpa-" };
	struct dma_why *w = arg;
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(prefix); i++)
		if (strncmp(target, prefix[i], strlen(prefix[i])) == 0) {
			snprintf(w->why, w->len,
			    "a VFIO or vDPA device (%s) DMAs into guest "
			    "memory",
			    target);
			return 1;
		}
	return 0;
}

/*
 * Does QEMU process pid hold a device open that reads and writes guest
 * memory by DMA behind the kernel's back (VFIO, vDPA)? Such a device
 * pins guest pages and keeps using them after a hole is punched, which
 * is why QEMU itself disables balloon discards with them. Returns 1 with
 * the device in why, 0 for none, -1 when the fds cannot be read.
 */
int
memmap_dma_devices(pid_t pid, char *why, size_t len)
{
	struct dma_why w = { why, len };

	return memmap_fd_walk(pid, memmap_dma_match, &w);
}

/* Close every backing fd: the map stays, for judging ranges only. */
void
memmap_drop_fds(struct memmap *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->r[i].fd != -1) {
			close(m->r[i].fd);
			m->r[i].fd = -1;
		}
}

/*
 * Find each region's backing in QEMU process pid (the one pidfd names,
 * when it is not -1), from its host address (r->hva, which the caller got
 * with gpa2hva). All regions must be backed alike; m->kind says how
 * (ANONYMOUS: no fds, cannot discard).
 */
int
memmap_resolve(struct memmap *m, pid_t pid, int pidfd, char *err, size_t errlen)
{
	enum vm_backing_kind kind, first = VM_BACKING_UNKNOWN;
	size_t i;
	int procfd, rc = -1;

	m->kind = VM_BACKING_UNKNOWN;
	if (pid <= 0) {
		snprintf(err, errlen, "no QEMU process");
		return -1;
	}
	if ((procfd = proc_open(pid, pidfd, err, errlen)) == -1)
		return -1;
	for (i = 0; i < m->n; i++) {
		kind = VM_BACKING_UNKNOWN;
		if (m->r[i].hva == 0) {
			snprintf(err, errlen, "no host address for 0x%" PRIx64,
			    m->r[i].gpa);
			goto out;
		}
		if (resolve_region(&m->r[i], procfd, &kind, err, errlen) != 0)
			goto out;
		if (i > 0 && kind != first) {
			snprintf(err, errlen, "RAM regions backed differently");
			goto out;
		}
		first = kind;
	}
	/* Every fd was opened while the directory was QEMU's: still so? */
	if (pidfd != -1 &&
	    syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) != 0) {
		snprintf(err, errlen, "QEMU process %d exited", (int)pid);
		goto out;
	}
	m->kind = first;
	rc = 0;
out:
	close(procfd);
	return rc;
}

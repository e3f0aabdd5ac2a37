// SPDX-License-Identifier: GPL-2.0
/*
 * The workload process. It owns a table of named maps and does every memory
 * syscall in its own address space; the controller only sends it requests
 * on CTL_FD. Children made by W_FORK inherit the table (minus what
 * MADV_DONTFORK kept from them).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "kcov.h"
#include "pin.h"
#include "uffd.h"
#include "worker.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000
#endif

/* Per-page state; pages of a map can go one by one (munmap, overlays). */
#define PF_MAPPED	0x1
#define PF_DONTFORK	0x2

struct wmap {
	char name[NAME_LEN];
	uint64_t addr, pages, nmapped;
	int huge;
	uint8_t *pf;
};

static struct wmap maps[MAX_MAPS];
static int nmaps;

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_armed, fault_sig;

static int wfail(struct wrep *r, int err, const char *msg)
{
	r->err = err ? err : EIO;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
	return -1;
}

static uint64_t pmd_size(void)
{
	/* One page of 8-byte PMD entries maps this much. */
	return (uint64_t)page_size * page_size / 8;
}

static int find_map(const char *name)
{
	int i;

	for (i = 0; i < nmaps; i++)
		if (!strcmp(maps[i].name, name))
			return i;
	return -1;
}

static void drop_map(int i)
{
	free(maps[i].pf);
	memmove(&maps[i], &maps[i + 1], (nmaps - i - 1) * sizeof(maps[0]));
	nmaps--;
}

/*
 * [start, start+len) no longer belongs to any map in the table, except to
 * the one named skip. A map whose last page goes leaves the table.
 */
static void forget_range(uint64_t start, uint64_t len, const char *skip)
{
	int i;

	for (i = nmaps - 1; i >= 0; i--) {
		struct wmap *m = &maps[i];
		uint64_t end = m->addr + m->pages * page_size;
		uint64_t lo = start > m->addr ? start : m->addr;
		uint64_t hi = start + len < end ? start + len : end;
		uint64_t pg;

		if (lo >= hi || (skip && !strcmp(m->name, skip)))
			continue;
		for (pg = (lo - m->addr) / page_size;
		     pg < (hi - m->addr) / page_size; pg++) {
			if (m->pf[pg] & PF_MAPPED)
				m->nmapped--;
			m->pf[pg] = 0;
		}
		if (!m->nmapped)
			drop_map(i);
	}
}

static int add_map(const char *name, uint64_t addr, uint64_t pages, int huge,
		   struct wrep *r)
{
	struct wmap *m = &maps[nmaps];

	m->pf = malloc(pages);
	if (!m->pf)
		return wfail(r, ENOMEM, "malloc");
	memset(m->pf, PF_MAPPED, pages);
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->addr = addr;
	m->pages = m->nmapped = pages;
	m->huge = huge;
	nmaps++;
	return 0;
}

/* Looks up name[page, page+count) and checks it lies inside the map. */
static struct wmap *get_range(const struct wreq *q, uint64_t count,
			      struct wrep *r)
{
	int i = find_map(q->name);

	if (i < 0) {
		wfail(r, ENOENT, "no-map");
		return NULL;
	}
	if (q->page >= maps[i].pages || count < 1 ||
	    count > maps[i].pages - q->page) {
		wfail(r, EINVAL, "range");
		return NULL;
	}
	return &maps[i];
}

/*
 * Free space left on both sides of a new map: it then starts as its own
 * VMA, and mmap at= can still place a map right before or after it. Our
 * own reservations never refill such a hole, as they are larger.
 */
static uint64_t gap_size(void)
{
	return 2 * pmd_size();
}

/*
 * Reserves a PROT_NONE region with a gap on both sides of an aligned
 * [*start, *start+len).
 */
static int reserve(uint64_t len, uint64_t align, uint64_t *res,
		   uint64_t *rlen, uint64_t *start)
{
	uint64_t gap = gap_size();
	void *p;

	*rlen = len + 2 * gap + (align > (uint64_t)page_size ? align : 0);
	p = mmap(NULL, *rlen, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	*res = (uint64_t)p;
	*start = (*res + gap + align - 1) & ~(align - 1);
	return 0;
}

/* Gives back the reservation around [start, start+len). */
static int trim_reserve(uint64_t res, uint64_t rlen, uint64_t start,
			uint64_t len)
{
	if (munmap((void *)res, start - res))
		return -1;
	return munmap((void *)(start + len), res + rlen - start - len);
}

static int open_backing(const struct wreq *q, uint64_t len, struct wrep *r)
{
	char path[64];
	int fd;

	switch (q->backing) {
	case B_DEVZERO:
		fd = open("/dev/zero", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return wfail(r, errno, "open"), -1;
		return fd;
	case B_MEMFD:
		snprintf(path, sizeof(path), "rmc-%s", q->name);
		fd = memfd_create(path, MFD_CLOEXEC);
		if (fd < 0)
			return wfail(r, errno, "memfd_create"), -1;
		break;
	case B_FILE:
	case B_EXT4:
		/* Fresh per mmap: an older map of this name keeps its inode. */
		snprintf(path, sizeof(path), "%s/rmc-%s",
			 q->backing == B_EXT4 ? BLOCKFS_DIR : "/tmp", q->name);
		if (unlink(path) && errno != ENOENT)
			return wfail(r, errno, "unlink"), -1;
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return wfail(r, errno, "open"), -1;
		break;
	case B_HUGETLBFS:
		/*
		 * Unlinked at once: its huge pages go back to the pool when
		 * the last mapping goes, so a scenario's pool budget holds.
		 */
		snprintf(path, sizeof(path), HUGETLBFS_DIR "/rmc-%s", q->name);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return wfail(r, errno, "open"), -1;
		unlink(path);
		break;
	default:
		return -2;	/* anonymous: no fd */
	}
	if (ftruncate(fd, len)) {
		wfail(r, errno, "ftruncate");
		close(fd);
		return -1;
	}
	return fd;
}

static int w_mmap(const struct wreq *q, struct wrep *r)
{
	uint64_t len = q->pages * page_size, res, rlen, start;
	int prot = PROT_READ | PROT_WRITE, flags, fd, e, i;
	void *a;

	if (find_map(q->name) >= 0)
		return wfail(r, EEXIST, "map-exists");
	if (nmaps == MAX_MAPS)
		return wfail(r, ENOSPC, "too-many-maps");
	fd = open_backing(q, len, r);
	if (fd == -1)
		return -1;
	flags = q->shared ? MAP_SHARED : MAP_PRIVATE;
	if (q->locked)
		flags |= MAP_LOCKED;
	if (fd < 0)
		flags |= MAP_ANONYMOUS;
	if (q->backing == B_HUGETLB)
		flags |= MAP_HUGETLB;

	if (q->has_at) {
		i = find_map(q->at_map);
		if (i < 0) {
			wfail(r, ENOENT, "no-map");
			goto out;
		}
		start = maps[i].addr + (uint64_t)(q->at * page_size);
		/* A range already taken is the scenario's error: EEXIST. */
		a = mmap((void *)start, len, prot, flags | MAP_FIXED_NOREPLACE,
			 fd, 0);
		if (a != MAP_FAILED && a != (void *)start) {
			munmap(a, len);	/* a kernel without NOREPLACE */
			errno = EEXIST;
			a = MAP_FAILED;
		}
		if (a == MAP_FAILED) {
			wfail(r, errno, errno == EEXIST ? "taken" : "mmap");
			goto out;
		}
	} else {
		/* A hugetlb map must start on a huge page: the PMD size. */
		uint64_t align = q->huge == 1 || q->has_align ||
				 q->backing >= B_HUGETLB ?
			pmd_size() : (uint64_t)page_size;

		if (reserve(len, align, &res, &rlen, &start)) {
			wfail(r, errno, "mmap");
			goto out;
		}
		/* Within the gap reserve() leaves: |align| < one PMD. */
		if (q->has_align)
			start += (uint64_t)(q->align * page_size);
		a = mmap((void *)start, len, prot, flags | MAP_FIXED, fd, 0);
		if (a == MAP_FAILED) {
			wfail(r, errno, "mmap");
			munmap((void *)res, rlen);
			goto out;
		}
		if (trim_reserve(res, rlen, start, len)) {
			wfail(r, errno, "munmap");
			munmap((void *)res, rlen);
			goto out;
		}
	}
	if (q->huge >= 0 &&
	    madvise(a, len, q->huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)) {
		wfail(r, errno, "madvise");
		munmap(a, len);
		goto out;
	}
	if (add_map(q->name, start, q->pages, q->huge, r)) {
		munmap(a, len);
		goto out;
	}
	r->addr = start;
out:
	if (fd >= 0) {
		e = errno;
		close(fd);
		errno = e;
	}
	return r->err ? -1 : 0;
}

static int w_munmap(const struct wreq *q, struct wrep *r)
{
	struct wmap *m = get_range(q, q->count, r);
	uint64_t a;

	if (!m)
		return -1;
	a = m->addr + q->page * page_size;
	if (munmap((void *)a, q->count * page_size))
		return wfail(r, errno, "munmap");
	forget_range(a, q->count * page_size, NULL);
	return 0;
}

static int w_mprotect(const struct wreq *q, struct wrep *r)
{
	struct wmap *m = get_range(q, q->count, r);

	if (!m)
		return -1;
	if (mprotect((void *)(m->addr + q->page * page_size),
		     q->count * page_size, q->prot))
		return wfail(r, errno, "mprotect");
	return 0;
}

static int w_madvise(const struct wreq *q, struct wrep *r)
{
	struct wmap *m = get_range(q, q->count, r);
	uint64_t i;

	if (!m)
		return -1;
	if (madvise((void *)(m->addr + q->page * page_size),
		    q->count * page_size, q->advice))
		return wfail(r, errno, "madvise");
	for (i = q->page; i < q->page + q->count; i++) {
		if (q->advice == MADV_DONTFORK)
			m->pf[i] |= PF_DONTFORK;
		else if (q->advice == MADV_DOFORK)
			m->pf[i] &= ~PF_DONTFORK;
	}
	return 0;
}

/*
 * The place a range of len bytes moves to: to pages from the map to_map.
 * Without over, a PROT_NONE placeholder claims it first (EEXIST: taken),
 * so the move never replaces anything by accident.
 */
static int mremap_dest(const struct wreq *q, uint64_t len, uint64_t *dest,
		       struct wrep *r)
{
	int j = find_map(q->to_map);
	void *a;

	if (j < 0)
		return wfail(r, ENOENT, "no-map");
	if (q->into && (q->to < 0 || (uint64_t)q->to > maps[j].pages ||
			q->pages > maps[j].pages - q->to))
		return wfail(r, EINVAL, "range");
	*dest = maps[j].addr + (uint64_t)(q->to * page_size);
	if (q->over)
		return 0;
	a = mmap((void *)*dest, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
		 MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (a != MAP_FAILED && a != (void *)*dest) {
		munmap(a, len);
		errno = EEXIST;
		a = MAP_FAILED;
	}
	if (a == MAP_FAILED)
		return wfail(r, errno, errno == EEXIST ? "taken" : "mmap");
	return 0;
}

/*
 * The table after a placed mremap: the moved pages leave their map (with
 * DONTUNMAP a range stays, a whole map's name still moves), the place
 * leaves whatever map had it, and the pages rejoin to_map (into) or make
 * the map named as (else keep the name). df: the moved pages' DONTFORK.
 */
static int moved(const struct wreq *q, uint64_t old, uint64_t oldlen,
		 uint64_t dest, const uint8_t *df, uint64_t count, int huge,
		 struct wrep *r)
{
	uint64_t len = q->pages * page_size, k, first = 0;
	const char *name = q->as[0] ? q->as : q->name;
	struct wmap *m;

	if (!q->has_range)
		drop_map(find_map(q->name));
	else if (!q->dontunmap)
		forget_range(old, oldlen, NULL);
	forget_range(dest, len, q->into ? q->to_map : NULL);
	if (q->into) {
		m = &maps[find_map(q->to_map)];
		first = q->to;
	} else {
		if (add_map(name, dest, q->pages, huge, r))
			return -1;
		m = &maps[nmaps - 1];
	}
	for (k = 0; k < q->pages; k++) {
		uint8_t *f = &m->pf[first + k];

		if (!(*f & PF_MAPPED))
			m->nmapped++;
		*f = PF_MAPPED | (df[k < count ? k : count - 1] & PF_DONTFORK);
	}
	return 0;
}

/*
 * mremap with a range, a place or a name: pages [page, page+count) of the
 * map (all of it without page) move to to_map+to (MREMAP_FIXED), or to a
 * fresh place, and become the map named as.
 */
static int w_mremap_placed(const struct wreq *q, struct wrep *r)
{
	int i = find_map(q->name), flags = MREMAP_MAYMOVE | MREMAP_FIXED;
	uint64_t first = 0, count, old, oldlen, len = q->pages * page_size;
	uint64_t dest, res = 0, rlen = 0, k;
	struct wmap *m;
	uint8_t *df;
	int huge, rc;
	void *a;

	if (i < 0)
		return wfail(r, ENOENT, "no-map");
	m = &maps[i];
	count = m->pages;
	if (q->has_range) {
		if (q->page >= m->pages || q->count > m->pages - q->page)
			return wfail(r, EINVAL, "range");
		first = q->page;
		count = q->count;
	}
	for (k = first; k < first + count; k++)
		if (!(m->pf[k] & PF_MAPPED))
			return wfail(r, EFAULT, "unmapped");
	if (q->as[0] && find_map(q->as) >= 0)
		return wfail(r, EEXIST, "map-exists");
	if (q->has_range && !q->into && nmaps == MAX_MAPS)
		return wfail(r, ENOSPC, "too-many-maps");
	old = m->addr + first * page_size;
	oldlen = count * page_size;
	huge = m->huge;
	if (q->dontunmap)
		flags |= MREMAP_DONTUNMAP;
	if (q->has_to) {
		if (mremap_dest(q, len, &dest, r))
			return -1;
	} else if (reserve(len, huge == 1 ? pmd_size() : (uint64_t)page_size,
			   &res, &rlen, &dest)) {
		return wfail(r, errno, "mmap");
	}
	df = malloc(count);
	if (!df)
		return wfail(r, ENOMEM, "malloc");
	memcpy(df, maps[i].pf + first, count);
	a = mremap((void *)old, oldlen, len, flags, (void *)dest);
	if (a == MAP_FAILED) {
		wfail(r, errno, "mremap");
		if (rlen)
			munmap((void *)res, rlen);
		else if (q->has_to && !q->over)
			munmap((void *)dest, len);
		free(df);
		return -1;
	}
	rc = moved(q, old, oldlen, dest, df, count, huge, r);
	free(df);
	if (rc)
		return -1;
	r->addr = dest;
	r->old = old;
	if (rlen && trim_reserve(res, rlen, dest, len))
		return wfail(r, errno, "munmap");
	return 0;
}

static int w_mremap(const struct wreq *q, struct wrep *r)
{
	int i = find_map(q->name), flags = MREMAP_MAYMOVE;
	uint64_t old, oldlen, len = q->pages * page_size, res = 0, rlen = 0;
	uint64_t start, k;
	struct wmap *m;
	uint8_t *pf;
	void *a;

	if (q->has_range || q->has_to || q->as[0])
		return w_mremap_placed(q, r);
	if (i < 0)
		return wfail(r, ENOENT, "no-map");
	m = &maps[i];
	old = m->addr;
	oldlen = m->pages * page_size;
	pf = malloc(q->pages);
	if (!pf)
		return wfail(r, ENOMEM, "malloc");
	if (q->dontunmap)
		flags |= MREMAP_DONTUNMAP;
	if (q->move) {
		uint64_t align = m->huge == 1 ? pmd_size() : (uint64_t)page_size;

		if (reserve(len, align, &res, &rlen, &start)) {
			free(pf);
			return wfail(r, errno, "mmap");
		}
		a = mremap((void *)old, oldlen, len, flags | MREMAP_FIXED,
			   (void *)start);
	} else {
		a = mremap((void *)old, oldlen, len, flags);
	}
	if (a == MAP_FAILED) {
		wfail(r, errno, "mremap");
		if (rlen)
			munmap((void *)res, rlen);
		free(pf);
		return -1;
	}
	/* Whatever else the kernel unmapped leaves the table too. */
	if (!q->dontunmap) {
		if (a != (void *)old)
			forget_range(old, oldlen, q->name);
		else if (len < oldlen)
			forget_range(old + len, oldlen - len, q->name);
	}
	m = &maps[find_map(q->name)];
	for (k = 0; k < q->pages; k++) {
		uint8_t f = m->pf[k < m->pages ? k : m->pages - 1];

		pf[k] = PF_MAPPED | (f & PF_DONTFORK);
	}
	free(m->pf);
	m->pf = pf;
	m->addr = (uint64_t)a;
	m->pages = m->nmapped = q->pages;
	r->addr = m->addr;
	r->old = old;
	if (rlen && trim_reserve(res, rlen, start, len))
		return wfail(r, errno, "munmap");
	return 0;
}

static int w_mlock(const struct wreq *q, struct wrep *r)
{
	struct wmap *m = get_range(q, q->count, r);
	void *a;
	size_t len;

	if (!m)
		return -1;
	a = (void *)(m->addr + q->page * page_size);
	len = q->count * page_size;
	if (q->op == W_MLOCK ? mlock2(a, len, q->advice) : munlock(a, len))
		return wfail(r, errno, q->op == W_MLOCK ? "mlock" : "munlock");
	return 0;
}

/*
 * W_UFFD (uffd.c). COPY, ZEROPAGE and MOVE answer count = the pages done
 * and old = the errno they stopped with: the step's result.
 */
static int w_uffd(const struct wreq *q, struct wrep *r)
{
	static uint8_t buf[65536] __attribute__((aligned(65536)));
	struct wmap *m = get_range(q, q->count, r), *d;
	const char *what = "uffd";
	uint64_t addr, len = q->count * page_size, src = 0, done = 0, i;
	int e, err = 0, j;

	if (!m)
		return -1;
	addr = m->addr + q->page * page_size;
	switch (q->advice) {
	case U_REGISTER:
		e = uffd_register(m->addr, m->pages * page_size, q->prot, &what);
		break;
	case U_WP:
		e = uffd_protect(addr, len, q->move, &what);
		break;
	case U_MOVE:
		j = find_map(q->to_map);
		if (j < 0)
			return wfail(r, ENOENT, "no-map");
		d = &maps[j];
		if (q->to < 0 || (uint64_t)q->to + q->count > d->pages)
			return wfail(r, EINVAL, "range");
		e = uffd_fill(U_MOVE, d->addr + q->to * page_size, addr, len,
			      page_size, &done, &err, &what);
		break;
	default:
		/* One page at a time from a buffer: a write's bytes. */
		if ((size_t)page_size > sizeof(buf))
			return wfail(r, EINVAL, "page-size");
		e = 0;
		for (i = 0; i < q->count && !e && !err; i++) {
			uint64_t one = 0, idx = q->page + i;

			memset(buf, q->value, page_size);
			if (q->tag)
				memcpy(buf, &idx, sizeof(idx));
			src = (uint64_t)buf;
			e = uffd_fill(q->advice, addr + i * page_size, src,
				      page_size, page_size, &one, &err, &what);
			done += one;
		}
		break;
	}
	if (e)
		return wfail(r, e, what);
	r->count = done;
	r->old = err;
	return 0;
}

/* W_PIN and W_UNPIN: the pins this worker holds (pin.c). */
static int w_pin(const struct wreq *q, struct wrep *r)
{
	struct wmap *m = NULL;
	const char *what = "pin";
	int e;

	if (q->op == W_PIN) {
		m = get_range(q, q->count, r);
		if (!m)
			return -1;
		e = pin_hold(q->advice, (void *)(m->addr + q->page * page_size),
			     q->count * page_size, &what);
	} else {
		e = pin_drop(q->advice, &what);
	}
	return e ? wfail(r, e, what) : 0;
}

/*
 * The file a map maps at its page `page`, opened through
 * /proc/self/map_files (w_mmap closed its own fd), and the page of the file
 * mapped there. -1 with r set when it cannot be opened.
 */
static int open_mapped(const struct wmap *m, uint64_t page, uint64_t *pgoff,
		       struct wrep *r)
{
	uint64_t addr = m->addr + page * page_size, lo, hi, off;
	static char line[4096];
	char path[80];
	FILE *f = fopen("/proc/self/maps", "re");
	int fd = -1;

	if (!f)
		return wfail(r, errno, "maps"), -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %*s %lx", &lo, &hi, &off) != 3 ||
		    addr < lo || addr >= hi)
			continue;
		snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx",
			 lo, hi);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			wfail(r, errno, "map_files");
		*pgoff = (off + (addr - lo)) / page_size;
		break;
	}
	fclose(f);
	if (fd < 0 && !r->err)
		wfail(r, ENOENT, "no-vma");
	return fd;
}

/* ftruncate the file under a map: shrink (SIGBUS past the end) or grow. */
static int w_truncate(const struct wreq *q, struct wrep *r)
{
	int i = find_map(q->name), fd, e;
	uint64_t k, pgoff;

	if (i < 0)
		return wfail(r, ENOENT, "no-map");
	for (k = 0; k < maps[i].pages && !(maps[i].pf[k] & PF_MAPPED); k++)
		;
	fd = open_mapped(&maps[i], k, &pgoff, r);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, q->pages * page_size)) {
		e = errno;
		close(fd);
		return wfail(r, e, "ftruncate");
	}
	close(fd);
	return 0;
}

/* A hole in the file pages under a range of a map; the file keeps its size. */
static int w_punch(const struct wreq *q, struct wrep *r)
{
	struct wmap *m = get_range(q, q->count, r);
	uint64_t pgoff;
	int fd, e;

	if (!m)
		return -1;
	fd = open_mapped(m, q->page, &pgoff, r);
	if (fd < 0)
		return -1;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      pgoff * page_size, q->count * page_size)) {
		e = errno;
		close(fd);
		return wfail(r, e, "fallocate");
	}
	close(fd);
	return 0;
}

/*
 * A fatal signal: tell the controller which, then die of it for real (the
 * fault repeats, abort() raises again), so the kernel logs it as usual.
 */
static void on_fatal(int sig)
{
	static struct wrep notice;

	notice.err = EINTR;
	notice.signal = sig;
	send(CTL_FD, &notice, WREP_HDR_LEN, MSG_NOSIGNAL);
	signal(sig, SIG_DFL);
}

static void on_fault(int sig)
{
	if (!fault_armed) {
		on_fatal(sig);
		return;
	}
	fault_sig = sig;
	siglongjmp(fault_jmp, 1);
}

static __attribute__((noinline)) void touch(const struct wreq *q, uint64_t base,
					    uint64_t count)
{
	uint64_t i;

	for (i = 0; i < count; i++) {
		volatile uint8_t *p = (volatile uint8_t *)(base + i * page_size);

		uint64_t idx = q->page + i;

		if (q->op == W_READ)
			(void)p[0];
		else if (q->one_byte)
			p[q->offset] = q->value;
		else
			memset((void *)p, q->value, page_size);
		/* The page's index in its map, so a page that moves shows. */
		if (q->op == W_WRITE && q->tag && !q->one_byte)
			memcpy((void *)p, &idx, sizeof(idx));
	}
}

/* W_WRITE and W_READ: a fault answers EFAULT instead of killing us. */
static int w_touch(const struct wreq *q, struct wrep *r)
{
	struct wmap *m = get_range(q, q->count, r);
	uint64_t i;

	if (!m)
		return -1;
	for (i = q->page; i < q->page + q->count; i++)
		if (!(m->pf[i] & PF_MAPPED))
			return wfail(r, EFAULT, "unmapped");
	r->addr = m->addr + q->page * page_size;
	r->count = q->count;
	if (sigsetjmp(fault_jmp, 1)) {
		fault_armed = 0;
		return wfail(r, EFAULT, fault_sig == SIGBUS ? "sigbus" :
			    "sigsegv");
	}
	fault_armed = 1;
	touch(q, r->addr, q->count);
	fault_armed = 0;
	return 0;
}

/*
 * fd is the child's control socket, kfd its kcov buffer or -1. Returns 1
 * in the child, which must not answer.
 */
static int w_fork(int fd, int kfd, struct wrep *r)
{
	pid_t pid;
	int i;

	if (fd < 0)
		return wfail(r, EBADF, "no-fd");
	pid = fork();
	if (pid < 0) {
		wfail(r, errno, "fork");
		close(fd);
		if (kfd >= 0)
			close(kfd);
		return -1;
	}
	if (pid) {
		close(fd);
		if (kfd >= 0)
			close(kfd);
		r->pid = pid;
		return 0;
	}
	if (dup2(fd, CTL_FD) < 0)
		_exit(1);
	close(fd);
	/* KCOV_FD is still the parent's buffer, which it traces into. */
	if (kfd < 0) {
		close(KCOV_FD);
	} else {
		if (dup2(kfd, KCOV_FD) < 0)
			_exit(1);
		close(kfd);
		kcov_enable_self();
	}
	/* The parent's rings and pipes pin the parent's pages, not ours. */
	pin_forget();
	uffd_forget();
	/* MADV_DONTFORK pages were not copied into this mm. */
	for (i = nmaps - 1; i >= 0; i--) {
		struct wmap *m = &maps[i];
		uint64_t k;

		for (k = 0; k < m->pages; k++)
			if (m->pf[k] & PF_DONTFORK) {
				if (m->pf[k] & PF_MAPPED)
					m->nmapped--;
				m->pf[k] = 0;
			}
		if (!m->nmapped)
			drop_map(i);
	}
	return 1;
}

/*
 * Test only: touch a fresh page registered with a userfaultfd that nobody
 * serves. The fault waits in handle_userfault() for good: a real kernel
 * stack for the controller's hang report.
 */
static int w_msync(const struct wreq *q, struct wrep *r)
{
	struct wmap *m = get_range(q, q->count, r);

	if (!m)
		return -1;
	if (msync((void *)(m->addr + q->page * page_size),
		  q->count * page_size, q->advice))
		return wfail(r, errno, "msync");
	return 0;
}

/*
 * fsync(2) on the file that maps the page: the worker keeps no fds, so it
 * opens the VMA's file through /proc/self/map_files (root may).
 */
static int w_fsync(const struct wreq *q, struct wrep *r)
{
	struct wmap *m = get_range(q, 1, r);
	unsigned long a, start, end;
	char path[64];
	FILE *f;
	int fd, found = 0;

	if (!m)
		return -1;
	a = m->addr + q->page * page_size;
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return wfail(r, errno, "maps");
	while (!found && fscanf(f, "%lx-%lx%*[^\n]", &start, &end) == 2)
		found = start <= a && a < end;
	fclose(f);
	if (!found)
		return wfail(r, EFAULT, "unmapped");
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", start,
		 end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return wfail(r, errno == ENOENT ? EINVAL : errno, "no-file");
	if (fsync(fd)) {
		close(fd);
		return wfail(r, errno, "fsync");
	}
	close(fd);
	return 0;
}

static int w_test_hang(struct wrep *r)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	volatile uint8_t *p;

	if (fd < 0)
		return wfail(r, errno, "userfaultfd");
	p = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		wfail(r, errno, "mmap");
		goto out;
	}
	reg.range.start = (uint64_t)p;
	reg.range.len = page_size;
	if (ioctl(fd, UFFDIO_API, &api) || ioctl(fd, UFFDIO_REGISTER, &reg))
		wfail(r, errno, "uffdio");
	else
		p[0] = 1;	/* never returns */
	munmap((void *)p, page_size);
out:
	close(fd);
	return r->err ? -1 : wfail(r, EIO, "uffd-served");
}

/* Test only: die of a NULL write that no handler catches. */
static void w_test_die(void)
{
	fault_armed = 0;
	*(volatile int *)NULL = 1;
}

static void w_list(struct wrep *r)
{
	int i;

	r->nmaps = nmaps;
	r->nbits = 0;
	for (i = 0; i < nmaps; i++) {
		struct wmap *m = &maps[i];
		struct wmapinfo *mi = &r->maps[i];
		uint64_t nb = (m->pages + 7) / 8, k;

		memcpy(mi->name, m->name, NAME_LEN);
		mi->addr = m->addr;
		mi->pages = m->pages;
		mi->bits_off = ALL_MAPPED;
		if (m->nmapped == m->pages || r->nbits + nb > WREP_BITS)
			continue;
		mi->bits_off = r->nbits;
		memset(r->bits + r->nbits, 0, nb);
		for (k = 0; k < m->pages; k++)
			if (m->pf[k] & PF_MAPPED)
				r->bits[r->nbits + k / 8] |= 1 << (k % 8);
		r->nbits += nb;
	}
}

static int dispatch(const struct wreq *q, struct wrep *r, int fd, int kfd)
{
	switch (q->op) {
	case W_MMAP:
		return w_mmap(q, r);
	case W_MUNMAP:
		return w_munmap(q, r);
	case W_MPROTECT:
		return w_mprotect(q, r);
	case W_MREMAP:
		return w_mremap(q, r);
	case W_MADVISE:
		return w_madvise(q, r);
	case W_WRITE:
	case W_READ:
		return w_touch(q, r);
	case W_FORK:
		return w_fork(fd, kfd, r);
	case W_EXIT:
		_exit(0);
	case W_LIST:
		w_list(r);
		return 0;
	case W_MLOCK:
	case W_MUNLOCK:
		return w_mlock(q, r);
	case W_MLOCKALL:
		return mlockall(q->advice) ? wfail(r, errno, "mlockall") : 0;
	case W_MUNLOCKALL:
		return munlockall() ? wfail(r, errno, "munlockall") : 0;
	case W_TEST_HANG:
		return w_test_hang(r);
	case W_TEST_DIE:
		w_test_die();
		return wfail(r, EIO, "survived");
	case W_PIN:
	case W_UNPIN:
		return w_pin(q, r);
	case W_TRUNCATE:
		return w_truncate(q, r);
	case W_PUNCH:
		return w_punch(q, r);
	case W_MSYNC:
		return w_msync(q, r);
	case W_FSYNC:
		return w_fsync(q, r);
	case W_UFFD:
		return w_uffd(q, r);
	}
	return wfail(r, ENOSYS, "bad-wop");
}

void worker_main(void)
{
	static struct wreq q;
	static struct wrep r;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sa.sa_handler = on_fatal;
	sigaction(SIGABRT, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
	/* Our children are reaped by the kernel; orphans go to pid 1. */
	signal(SIGCHLD, SIG_IGN);

	for (;;) {
		char cbuf[CMSG_SPACE(2 * sizeof(int))];
		struct iovec iov = { &q, sizeof(q) };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct cmsghdr *c;
		ssize_t n;
		size_t len = WREP_HDR_LEN;
		int fds[2] = { -1, -1 }, rc, pass, i;

		n = recvmsg(CTL_FD, &mh, MSG_CMSG_CLOEXEC);
		if (n == 0)
			_exit(0);	/* the controller is gone */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SCM_RIGHTS)
				memcpy(fds, CMSG_DATA(c),
				       c->cmsg_len - CMSG_LEN(0) < sizeof(fds) ?
				       c->cmsg_len - CMSG_LEN(0) : sizeof(fds));

		memset(&r, 0, WREP_HDR_LEN);
		pass = n == sizeof(q) && q.op == W_FORK;
		for (i = 0; i < 2 && !pass; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		if (n != sizeof(q)) {
			wfail(&r, EPROTO, "bad-wreq");
		} else {
			rc = dispatch(&q, &r, pass ? fds[0] : -1,
				      pass ? fds[1] : -1);
			if (rc == 1)
				continue;	/* the new child */
			if (q.op == W_LIST)
				len = WREP_LIST_LEN(r.nbits);
		}
		if (send(CTL_FD, &r, len, MSG_NOSIGNAL) < 0)
			_exit(1);
	}
}

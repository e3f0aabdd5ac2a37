#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLD
#define MADV_COLD		20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT		21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT		4
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT		1
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_KEEP_SIZE	0x01
#define FALLOC_FL_PUNCH_HOLE	0x02
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup	425
#define SYS_io_uring_register	427
#endif
#define IORING_REGISTER_BUFFERS		0
#define IORING_UNREGISTER_BUFFERS	1
#define MPOL_MF_MOVE_ALL	(1 << 2)
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY	1
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE	(1 << 16)
#endif
#ifndef UFFDIO_MOVE
struct uffdio_move {
	__u64 dst, src, len, mode;
	__s64 move;
};
#define UFFDIO_MOVE	_IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif

#define THP		"/sys/kernel/mm/transparent_hugepage/"
#define KSM		"/sys/kernel/mm/ksm/"
#define SPLIT_FILE	"/sys/kernel/debug/split_huge_pages"
#define PM_PFN		((1ULL << 55) - 1)
#define PM_EXCLUSIVE	(1ULL << 56)
#define PM_PRESENT	(1ULL << 63)
#define KPF_HEAD	(1ULL << 15)
#define KPF_TAIL	(1ULL << 16)
#define KPF_KSM		(1ULL << 21)
#define KPF_ZERO_PAGE	(1ULL << 24)

enum op {
	OP_MMAP, OP_MUNMAP, OP_MPROTECT, OP_MREMAP, OP_MADVISE, OP_WRITE,
	OP_READ, OP_FORK, OP_EXIT, OP_CHECK, OP_FINDPAGE, OP_NOP, OP_KSM,
	OP_SPLIT, OP_MIGRATE, OP_COMPACT, OP_MLOCK, OP_MUNLOCK, OP_MLOCKALL,
	OP_MUNLOCKALL, OP_POKE, OP_RECLAIM, OP_PIN, OP_UNPIN, OP_REMOTE,
	OP_TRUNCATE, OP_PUNCH, OP_UFFD_REGISTER, OP_UFFD_COPY,
	OP_UFFD_ZEROPAGE, OP_UFFD_MOVE, OP_UFFD_WP,
};

/* A uffd register step's modes (arg). */
#define UFFD_MISSING	0x1
#define UFFD_WP		0x2

/* How a pin step pins (arg), and how a remote step reaches the pages. */
enum pin_kind { PIN_URING, PIN_VMSPLICE, PIN_KINDS };
enum remote_kind { R_READV, R_WRITEV, R_PTRACE };

enum backing { B_ANON, B_DEVZERO, B_MEMFD, B_FILE, B_HUGETLB, B_HUGETLBFS };

/* step flags */
#define F_SHARED	0x01
#define F_LOCKED	0x02
#define F_HUGE		0x04	/* MADV_HUGEPAGE on a PMD-aligned range */
#define F_NOHUGE	0x08	/* MADV_NOHUGEPAGE */
#define F_MOVE		0x10
#define F_DONTUNMAP	0x20
#define F_TAG		0x40	/* a write puts the page index in 8 bytes */
#define F_AT		0x80	/* mmap at place pages from place_map's start */
#define F_ALIGN		0x100	/* mmap place pages past a PMD boundary */
#define F_TO		0x200	/* mremap to place pages from place_map */
#define F_OVER		0x400	/* ... replacing what is mapped there */
#define F_INTO		0x800	/* ... where the pages rejoin place_map */

/*
 * One scenario step. arg is the fork's child, the mmap's backing, the
 * mprotect's prot, the madvise's advice, the mlock flags, the migrate's node
 * (-1: each page to a node it is not on) or the write's value; count is the
 * range's length, the new size of an mmap, mremap or truncate, or the ksm
 * timeout. A pin's or unpin's arg is its pin_kind, a remote's its
 * remote_kind; word is the byte a writev writes or the word ptrace pokes.
 * A placed mmap (F_AT, F_ALIGN) says where in place_map and place. An
 * mremap's arg is the map its pages become (or rejoin, F_INTO); a placed
 * one (F_TO or moved) moves moved pages from page (0: the whole map).
 * A uffd register's arg is its modes; a copy's its byte (F_TAG as a
 * write); a move's destination is page place of place_map; a wp's arg is
 * 1 to protect, 0 to release.
 */
struct step {
	int op, proc, map, arg;
	uint64_t page, count;
	unsigned int flags;
	const char *text;
	int place_map;
	int64_t place;
	uint64_t moved;
	uint64_t word;
};

/* slot flags */
#define S_JUDGE		0x1	/* the step judges this slot (findpage: one) */
#define S_TAGGED	0x2	/* its first 8 bytes hold tag */
#define S_MAY_BE_ZERO	0x4	/* MADV_FREE: zeros are fine too */
#define S_KSM_ITEM	0x8	/* ksmd gave it an rmap_item at the last ksm step */

/*
 * What the model predicts for one (process, map, page) at a check step:
 * group > 0 is the frame it shares with every slot of that group, 0 that
 * nothing is mapped there, -1 that the model does not predict its sharing.
 */
struct slot {
	unsigned short step, proc, map;
	unsigned char flags, value;
	int group;
	uint64_t page, tag;
};

/* sigbus flags */
#define SB_EXPECT	0x1	/* it gets SIGBUS at page */
#define SB_UFFD		0x2	/* ... as userfaultfd would have to answer */
#define SB_UNSURE	0x4	/* a registered page the model cannot follow */

/*
 * A read or write whose SIGBUS is its result: past a file's end, or a
 * fault userfaultfd would have to answer (UFFD_FEATURE_SIGBUS).
 */
struct sigbus {
	unsigned short step;
	uint64_t page;
	unsigned char flags;
};

/* uffd_result flags */
#define UR_UNSURE	0x1	/* pages the model cannot follow */
#define UR_CERTAIN	0x2	/* a move's VMAs are ones the model is sure of */

/* What a UFFDIO_COPY, ZEROPAGE or MOVE does: done pages, then err (0: all). */
struct uffd_result {
	unsigned short step;
	unsigned char flags;
	int err;
	uint64_t done;
};

/* One per-size THP setting of the scenario (kb 0: every size). */
struct mthp {
	unsigned long kb;
	const char *anon, *shmem;
};

/* GENERATED TABLES */

static long page_size;
static int failures, model_valid = 1, self = -1;
static int cmd[NPROCS][2], rep[NPROCS][2];
static pid_t pid[NPROCS];
static int alive[NPROCS], mergeable[NPROCS], ksm_ran;
static uint64_t addr[NPROCS][NMAPS];
/* Where each map was when ksmd last scanned it: its rmap_items' addresses. */
static uint64_t ksm_addr[NPROCS][NMAPS];

/*
 * sig: the signal a read or write caught, at its page `at`; done and
 * uerr: the pages a UFFDIO_COPY, ZEROPAGE or MOVE did and why it stopped.
 */
struct reply {
	int32_t err, child;
	uint64_t addr;
	int32_t sig;
	uint64_t at;
	uint64_t done;
	int32_t uerr;
};

static void setup_failed(const char *what)
{
	printf("SETUP: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void note(int n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(int n, const char *fmt, ...)
{
	va_list ap;

	printf("note: step %d (%s): ", n + 1, steps[n].text);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void fail(int n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(int n, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: step %d (%s): ", n + 1, steps[n].text);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures++;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), e;
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	e = errno;
	close(fd);
	errno = e;
	return n < 0 ? -1 : 0;
}

static int sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int sysfs_u64(const char *path, uint64_t *v)
{
	char buf[32];

	if (sysfs_read(path, buf, sizeof(buf)))
		return -1;
	*v = strtoull(buf, NULL, 10);
	return 0;
}

/* Settings this program changes, and what they were, put back at the end. */
#define MAX_SAVED	64
static struct saved {
	char path[160], was[256];
} saved[MAX_SAVED];
static int nsaved;

/* The bracketed word of "always [madvise] never", or the whole line. */
static void set_setting(const char *path, const char *val)
{
	char buf[256], *l, *r;

	if (sysfs_read(path, buf, sizeof(buf)))
		return;
	l = strchr(buf, '[');
	r = l ? strchr(l, ']') : NULL;
	if (r) {
		*r = '\0';
		memmove(buf, l + 1, strlen(l + 1) + 1);
	}
	if (!strcmp(buf, val) || nsaved == MAX_SAVED)
		return;
	snprintf(saved[nsaved].path, sizeof(saved[0].path), "%s", path);
	snprintf(saved[nsaved].was, sizeof(saved[0].was), "%s", buf);
	if (!sysfs_write(path, val))
		nsaved++;
}

static void restore_settings(void)
{
	while (nsaved--)
		sysfs_write(saved[nsaved].path, saved[nsaved].was);
}

/* The guest rmapcheck runs in: nothing moves pages unless a step asks. */
static void setup_kernel(void)
{
	char path[160], pool[16];
	unsigned long kb;
	int i, done;

	set_setting(THP "enabled", "madvise");
	set_setting(THP "defrag", "madvise");
	set_setting(THP "shmem_enabled", "advise");
	set_setting("/proc/sys/kernel/numa_balancing", "0");
	set_setting("/proc/sys/vm/compaction_proactiveness", "0");
	set_setting(THP "khugepaged/scan_sleep_millisecs", "86400000");
	set_setting(THP "khugepaged/alloc_sleep_millisecs", "86400000");
	/* The agent's hugetlb pool, which the model budgets, when a map needs it. */
	for (i = 0; i < NSTEPS; i++) {
		if (steps[i].op == OP_MMAP && steps[i].arg >= B_HUGETLB) {
			snprintf(pool, sizeof(pool), "%d", HUGETLB_POOL);
			set_setting("/proc/sys/vm/nr_hugepages", pool);
			break;
		}
	}
	if (access(SPLIT_FILE, F_OK))
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	for (i = 0; mthp[i].anon || mthp[i].shmem; i++) {
		done = 0;
		for (kb = 4; kb <= (1UL << 30); kb <<= 1) {
			if (mthp[i].kb && mthp[i].kb != kb)
				continue;
			snprintf(path, sizeof(path), THP "hugepages-%lukB/", kb);
			if (access(path, F_OK))
				continue;
			done = 1;
			snprintf(path, sizeof(path), THP "hugepages-%lukB/enabled", kb);
			if (mthp[i].anon)
				set_setting(path, mthp[i].anon);
			snprintf(path, sizeof(path), THP "hugepages-%lukB/shmem_enabled", kb);
			if (mthp[i].shmem && !access(path, F_OK))
				set_setting(path, mthp[i].shmem);
		}
		if (!done)
			printf("note: mthp: this kernel offers no %lu kB size; setting skipped\n",
			       mthp[i].kb);
	}
}

/* The worker side: each scenario process runs the steps it owns. */

#define PF_MAPPED	0x1
#define PF_DONTFORK	0x2

static struct wmap {
	int used, huge;
	uint64_t addr, pages, nmapped;
	uint8_t *pf;
} maps[NMAPS];

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_armed, fault_sig;
/* The page of a map an access is at, for the step's result when it faults. */
static volatile uint64_t touch_at;

static uint64_t pmd_size(void)
{
	return (uint64_t)page_size * page_size / 8;
}

static void drop_map(int i)
{
	free(maps[i].pf);
	memset(&maps[i], 0, sizeof(maps[i]));
}

/* [start, start+len) left every map but skip; a map with no page left goes. */
static void forget_range(uint64_t start, uint64_t len, int skip)
{
	int i;

	for (i = 0; i < NMAPS; i++) {
		struct wmap *m = &maps[i];
		uint64_t end = m->addr + m->pages * page_size;
		uint64_t lo = start > m->addr ? start : m->addr;
		uint64_t hi = start + len < end ? start + len : end;
		uint64_t pg;

		if (!m->used || lo >= hi || i == skip)
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

static struct wmap *get_range(const struct step *s, struct reply *r)
{
	struct wmap *m = &maps[s->map];

	if (!m->used) {
		r->err = ENOENT;
		return NULL;
	}
	if (s->page >= m->pages || s->count < 1 || s->count > m->pages - s->page) {
		r->err = EINVAL;
		return NULL;
	}
	return m;
}

/* A PROT_NONE reservation with a gap of 2 PMDs on both sides, aligned. */
static int reserve(uint64_t len, uint64_t align, uint64_t *res, uint64_t *rlen,
		   uint64_t *start)
{
	uint64_t gap = 2 * pmd_size();
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

static int trim_reserve(uint64_t res, uint64_t rlen, uint64_t start,
			uint64_t len)
{
	if (munmap((void *)res, start - res))
		return -1;
	return munmap((void *)(start + len), res + rlen - start - len);
}

static int open_backing(const struct step *s, uint64_t len)
{
	char path[96];
	int fd;

	switch (s->arg) {
	case B_DEVZERO:
		return open("/dev/zero", O_RDWR | O_CLOEXEC);
	case B_MEMFD:
		snprintf(path, sizeof(path), "rmc-%s", map_name[s->map]);
		fd = memfd_create(path, MFD_CLOEXEC);
		break;
	case B_FILE:
		snprintf(path, sizeof(path), "/tmp/rmc-%s", map_name[s->map]);
		if (unlink(path) && errno != ENOENT)
			return -1;
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		break;
	case B_HUGETLBFS:
		/* A file on the kernel's own hugetlbfs: no mount needed. */
		snprintf(path, sizeof(path), "rmc-%s", map_name[s->map]);
		fd = memfd_create(path, MFD_CLOEXEC | MFD_HUGETLB);
		break;
	default:
		return -2;
	}
	if (fd >= 0 && ftruncate(fd, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void w_mmap(const struct step *s, struct reply *r)
{
	uint64_t len = s->count * page_size, res = 0, rlen = 0, start;
	/* A hugetlb map starts on a huge page of the default (PMD) size. */
	uint64_t align = s->flags & (F_HUGE | F_ALIGN) || s->arg >= B_HUGETLB ?
		pmd_size() : (uint64_t)page_size;
	int flags = s->flags & F_SHARED ? MAP_SHARED : MAP_PRIVATE, fd;
	struct wmap *m = &maps[s->map];
	void *a;

	if (m->used) {
		r->err = EEXIST;
		return;
	}
	fd = open_backing(s, len);
	if (fd == -1) {
		r->err = errno;
		return;
	}
	if (s->flags & F_LOCKED)
		flags |= MAP_LOCKED;
	if (fd < 0)
		flags |= MAP_ANONYMOUS;
	if (s->arg == B_HUGETLB)
		flags |= MAP_HUGETLB;
	if (s->flags & F_AT) {
		/* By another map, where nothing is mapped yet (as the agent). */
		if (!maps[s->place_map].used) {
			r->err = ENOENT;
			goto out;
		}
		start = maps[s->place_map].addr + s->place * page_size;
		a = mmap((void *)start, len, PROT_READ | PROT_WRITE,
			 flags | MAP_FIXED_NOREPLACE, fd, 0);
		if (a != MAP_FAILED && a != (void *)start) {
			munmap(a, len);	/* a kernel without NOREPLACE */
			errno = EEXIST;
			a = MAP_FAILED;
		}
		if (a == MAP_FAILED) {
			r->err = errno;
			goto out;
		}
	} else {
		if (reserve(len, align, &res, &rlen, &start)) {
			r->err = errno;
			goto out;
		}
		/* Within the gap reserve() leaves: |place| < one PMD. */
		if (s->flags & F_ALIGN)
			start += s->place * page_size;
		a = mmap((void *)start, len, PROT_READ | PROT_WRITE,
			 flags | MAP_FIXED, fd, 0);
		if (a == MAP_FAILED || trim_reserve(res, rlen, start, len)) {
			r->err = errno;
			munmap((void *)res, rlen);
			goto out;
		}
	}
	if ((s->flags & (F_HUGE | F_NOHUGE)) &&
	    madvise(a, len, s->flags & F_HUGE ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)) {
		r->err = errno;
		munmap(a, len);
		goto out;
	}
	m->pf = malloc(s->count);
	if (!m->pf) {
		r->err = ENOMEM;
		munmap(a, len);
		goto out;
	}
	memset(m->pf, PF_MAPPED, s->count);
	m->used = 1;
	m->huge = !!(s->flags & F_HUGE);
	m->addr = start;
	m->pages = m->nmapped = s->count;
	r->addr = start;
out:
	if (fd >= 0)
		close(fd);
}

/*
 * The place a placed mremap's len bytes go: place pages from place_map.
 * Without F_OVER a PROT_NONE placeholder claims it first (EEXIST: taken),
 * so the move never replaces anything by accident (as the agent).
 */
static int mremap_dest(const struct step *s, uint64_t len, uint64_t *dest)
{
	const struct wmap *to = &maps[s->place_map];
	void *a;

	if (!to->used)
		return ENOENT;
	if ((s->flags & F_INTO) &&
	    (s->place < 0 || (uint64_t)s->place > to->pages ||
	     s->count > to->pages - s->place))
		return EINVAL;
	*dest = to->addr + s->place * page_size;
	if (s->flags & F_OVER)
		return 0;
	a = mmap((void *)*dest, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
		 MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (a != MAP_FAILED && a != (void *)*dest) {
		munmap(a, len);
		return EEXIST;
	}
	return a == MAP_FAILED ? errno : 0;
}

/*
 * The table after a placed mremap, as the agent keeps it: the moved pages
 * leave their map (with DONTUNMAP a range stays; a whole map goes), the
 * place leaves whatever map had it, and the pages rejoin place_map (F_INTO)
 * or make map arg. df: the moved pages' DONTFORK.
 */
static int moved(const struct step *s, uint64_t old, uint64_t oldlen,
		 uint64_t dest, const uint8_t *df, uint64_t count, int huge)
{
	int into = s->flags & F_INTO;
	uint64_t k, first = 0;
	struct wmap *m;

	if (!s->moved)
		drop_map(s->map);
	else if (!(s->flags & F_DONTUNMAP))
		forget_range(old, oldlen, -1);
	forget_range(dest, s->count * page_size, into ? s->place_map : -1);
	if (into) {
		m = &maps[s->place_map];
		first = s->place;
	} else {
		m = &maps[s->arg];
		m->pf = calloc(s->count, 1);
		if (!m->pf)
			return ENOMEM;
		m->used = 1;
		m->huge = huge;
		m->addr = dest;
		m->pages = s->count;
	}
	for (k = 0; k < s->count; k++) {
		uint8_t *f = &m->pf[first + k];

		if (!(*f & PF_MAPPED))
			m->nmapped++;
		*f = PF_MAPPED | (df[k < count ? k : count - 1] & PF_DONTFORK);
	}
	return 0;
}

/*
 * mremap with a range or a place, as the agent: pages [page, page+moved)
 * of the map (all of it without moved) move with MREMAP_MAYMOVE |
 * MREMAP_FIXED to place_map+place (F_TO), or to a fresh place.
 */
static void w_mremap_placed(const struct step *s, struct reply *r)
{
	uint64_t first = 0, count, old, oldlen, len = s->count * page_size;
	uint64_t dest = 0, res = 0, rlen = 0, k;
	int flags = MREMAP_MAYMOVE | MREMAP_FIXED, huge;
	struct wmap *m = &maps[s->map];
	uint8_t *df;
	void *a;

	if (!m->used) {
		r->err = ENOENT;
		return;
	}
	count = m->pages;
	if (s->moved) {
		if (s->page >= m->pages || s->moved > m->pages - s->page) {
			r->err = EINVAL;
			return;
		}
		first = s->page;
		count = s->moved;
	}
	for (k = first; k < first + count; k++)
		if (!(m->pf[k] & PF_MAPPED)) {
			r->err = EFAULT;
			return;
		}
	if (!(s->flags & F_INTO) && s->arg != s->map && maps[s->arg].used) {
		r->err = EEXIST;
		return;
	}
	old = m->addr + first * page_size;
	oldlen = count * page_size;
	huge = m->huge;
	if (s->flags & F_DONTUNMAP)
		flags |= MREMAP_DONTUNMAP;
	if (s->flags & F_TO)
		r->err = mremap_dest(s, len, &dest);
	else if (reserve(len, huge ? pmd_size() : (uint64_t)page_size,
			 &res, &rlen, &dest))
		r->err = errno;
	if (r->err)
		return;
	df = malloc(count);
	if (!df) {
		r->err = ENOMEM;
		return;
	}
	memcpy(df, m->pf + first, count);
	a = mremap((void *)old, oldlen, len, flags, (void *)dest);
	if (a == MAP_FAILED) {
		r->err = errno;
		if (rlen)
			munmap((void *)res, rlen);
		else if ((s->flags & F_TO) && !(s->flags & F_OVER))
			munmap((void *)dest, len);
		free(df);
		return;
	}
	r->err = moved(s, old, oldlen, dest, df, count, huge);
	free(df);
	r->addr = dest;
	if (!r->err && rlen && trim_reserve(res, rlen, dest, len))
		r->err = errno;
}

static void w_mremap(const struct step *s, struct reply *r)
{
	uint64_t old, oldlen, len = s->count * page_size, res = 0, rlen = 0;
	int flags = MREMAP_MAYMOVE;
	struct wmap *m = &maps[s->map];
	uint64_t start = 0, k;
	uint8_t *pf;
	void *a;

	if (s->moved || (s->flags & F_TO)) {
		w_mremap_placed(s, r);
		return;
	}
	if (!m->used) {
		r->err = ENOENT;
		return;
	}
	old = m->addr;
	oldlen = m->pages * page_size;
	pf = malloc(s->count);
	if (!pf) {
		r->err = ENOMEM;
		return;
	}
	if (s->flags & F_DONTUNMAP)
		flags |= MREMAP_DONTUNMAP;
	if (s->flags & F_MOVE) {
		if (reserve(len, m->huge ? pmd_size() : (uint64_t)page_size,
			    &res, &rlen, &start)) {
			r->err = errno;
			free(pf);
			return;
		}
		a = mremap((void *)old, oldlen, len, flags | MREMAP_FIXED,
			   (void *)start);
	} else {
		a = mremap((void *)old, oldlen, len, flags);
	}
	if (a == MAP_FAILED) {
		r->err = errno;
		if (rlen)
			munmap((void *)res, rlen);
		free(pf);
		return;
	}
	if (!(s->flags & F_DONTUNMAP)) {
		if (a != (void *)old)
			forget_range(old, oldlen, s->map);
		else if (len < oldlen)
			forget_range(old + len, oldlen - len, s->map);
	}
	for (k = 0; k < s->count; k++)
		pf[k] = PF_MAPPED |
			(m->pf[k < m->pages ? k : m->pages - 1] & PF_DONTFORK);
	free(m->pf);
	m->pf = pf;
	m->addr = (uint64_t)a;
	m->pages = m->nmapped = s->count;
	r->addr = m->addr;
	if (rlen && trim_reserve(res, rlen, start, len))
		r->err = errno;
}

/*
 * A worker's pins on its own pages, as the agent's: io_uring's
 * IORING_REGISTER_BUFFERS pins with pin_user_pages(FOLL_WRITE |
 * FOLL_LONGTERM); vmsplice() into a pipe takes FOLL_GET references that the
 * pipe holds until it is closed. Each pin is a ring or a pipe of its own (a
 * ring registers buffers once), held until unpin or exit.
 */
#define MAX_HELD	8
static int held[PIN_KINDS][MAX_HELD][2];
static int nheld[PIN_KINDS];

/* io_uring_disabled=2 (6.6+) refuses every ring: say ENOSYS, not EPERM. */
static int uring_disabled(void)
{
	char buf[8];

	return !sysfs_read("/proc/sys/kernel/io_uring_disabled", buf, sizeof(buf)) &&
	       buf[0] == '2';
}

static int uring_pin(void *a, size_t len, int *fds)
{
	uint32_t params[30];	/* struct io_uring_params, all zero */
	struct iovec iov = { a, len };
	int fd, e;

	if (uring_disabled())
		return ENOSYS;
	memset(params, 0, sizeof(params));
	fd = syscall(SYS_io_uring_setup, 1, params);
	if (fd < 0)
		return errno;
	if (syscall(SYS_io_uring_register, fd, IORING_REGISTER_BUFFERS, &iov, 1)) {
		e = errno;
		close(fd);
		return e;
	}
	fds[0] = fd;
	fds[1] = -1;
	return 0;
}

static int vmsplice_pin(void *a, size_t len, int *fds)
{
	struct iovec iov = { a, len };
	ssize_t n;
	int e;

	if (pipe2(fds, O_CLOEXEC))
		return errno;
	/* One pipe buffer per page: the pipe must hold them all. */
	if (fcntl(fds[1], F_SETPIPE_SZ, (int)len) < 0)
		goto fail;
	while (iov.iov_len) {
		n = vmsplice(fds[1], &iov, 1, SPLICE_F_NONBLOCK);
		if (n <= 0) {
			if (!n)
				errno = EIO;
			goto fail;
		}
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len -= n;
	}
	return 0;
fail:
	e = errno;
	close(fds[0]);
	close(fds[1]);
	return e;
}

static void w_pin(const struct step *s, struct reply *r)
{
	struct wmap *m = get_range(s, r);
	int *fds;
	void *a;

	if (!m)
		return;
	if (nheld[s->arg] >= MAX_HELD) {
		r->err = EINVAL;
		return;
	}
	fds = held[s->arg][nheld[s->arg]];
	a = (void *)(m->addr + s->page * page_size);
	r->err = s->arg == PIN_URING ? uring_pin(a, s->count * page_size, fds) :
				       vmsplice_pin(a, s->count * page_size, fds);
	if (!r->err)
		nheld[s->arg]++;
}

/*
 * Unregistering unpins at once (no request is in flight); closing the ring
 * alone would leave its teardown, and the unpin, to a workqueue.
 */
static void w_unpin(const struct step *s, struct reply *r)
{
	int i;

	for (i = 0; i < nheld[s->arg]; i++) {
		int *fds = held[s->arg][i];

		if (s->arg == PIN_URING && !r->err &&
		    syscall(SYS_io_uring_register, fds[0],
			    IORING_UNREGISTER_BUFFERS, NULL, 0))
			r->err = errno;
		close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
	}
	nheld[s->arg] = 0;
}

/* A fork's child: the fds are the parent's pins, not its own. */
static void pin_forget(void)
{
	int k, i;

	for (k = 0; k < PIN_KINDS; k++) {
		for (i = 0; i < nheld[k]; i++) {
			close(held[k][i][0]);
			if (held[k][i][1] >= 0)
				close(held[k][i][1]);
		}
		nheld[k] = 0;
	}
}

/*
 * The file a map maps at its page `page`, opened through
 * /proc/self/map_files (w_mmap closed its own fd), and the page of the file
 * mapped there; -1 with errno set when it cannot be opened.
 */
static int open_mapped(const struct wmap *m, uint64_t page, uint64_t *pgoff)
{
	uint64_t a = m->addr + page * page_size;
	unsigned long lo, hi, off;
	char line[512], path[80];
	FILE *f = fopen("/proc/self/maps", "re");
	int fd = -1;

	if (!f)
		return -1;
	errno = ENOENT;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %*s %lx", &lo, &hi, &off) != 3 ||
		    a < lo || a >= hi)
			continue;
		snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", lo, hi);
		fd = open(path, O_RDWR | O_CLOEXEC);
		*pgoff = (off + (a - lo)) / page_size;
		break;
	}
	fclose(f);
	return fd;
}

/*
 * truncate: ftruncate the file under a map to count pages (shrunk, an
 * access past the end gets SIGBUS); punch: a hole in the file pages under a
 * range of it (fallocate PUNCH_HOLE), the file keeping its size.
 */
static void w_truncate(const struct step *s, struct reply *r)
{
	struct wmap *m = &maps[s->map];
	uint64_t k = 0, pgoff;
	int fd;

	if (s->op == OP_PUNCH && !get_range(s, r))
		return;
	if (!m->used) {
		r->err = ENOENT;
		return;
	}
	if (s->op == OP_PUNCH)
		k = s->page;
	else
		while (k < m->pages && !(m->pf[k] & PF_MAPPED))
			k++;
	fd = open_mapped(m, k, &pgoff);
	if (fd < 0) {
		r->err = errno;
		return;
	}
	if (s->op == OP_TRUNCATE ? ftruncate(fd, s->count * page_size) :
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      pgoff * page_size, s->count * page_size))
		r->err = errno;
	close(fd);
}

/*
 * The worker's userfaultfd, as the agent's (uffd.c): no thread reads it.
 * UFFD_FEATURE_SIGBUS turns every fault it would report into SIGBUS, which
 * w_touch() catches, and without UFFD_FEATURE_EVENT_FORK a fork's child
 * keeps no registration (it closes the fd).
 */
static int ufd = -1;
static uint64_t ufeatures;	/* what UFFDIO_API granted */

static int uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API };

	if (ufd >= 0)
		return 0;
	ufd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (ufd < 0)
		ufd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (ufd < 0)
		return errno == ENOSYS ? EOPNOTSUPP : errno;
	api.features = UFFD_FEATURE_SIGBUS;
	if (ioctl(ufd, UFFDIO_API, &api)) {
		int e = errno;

		close(ufd);
		ufd = -1;
		return e;
	}
	ufeatures = api.features;
	return 0;
}

static void uffd_forget(void)
{
	if (ufd >= 0)
		close(ufd);
	ufd = -1;
}

/* A whole map, for MISSING and/or WP faults (arm64 has WP from 6.10). */
static int uffd_register(const struct wmap *m, int mode)
{
	struct uffdio_register reg = {
		.range = { m->addr, m->pages * page_size },
	};
	int e = uffd_open();

	if (e)
		return e;
	if (mode & UFFD_MISSING)
		reg.mode |= UFFDIO_REGISTER_MODE_MISSING;
	if (mode & UFFD_WP) {
		if (!(ufeatures & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
			return EOPNOTSUPP;
		reg.mode |= UFFDIO_REGISTER_MODE_WP;
	}
	return ioctl(ufd, UFFDIO_REGISTER, &reg) ? errno : 0;
}

/* The bytes an ioctl reports it did (negative: an errno), in pages. */
static uint64_t pages_done(int64_t bytes)
{
	return bytes > 0 ? (uint64_t)bytes / page_size : 0;
}

/*
 * UFFDIO_COPY or ZEROPAGE of one page at dst. *err: why it stopped, a
 * result; the return: an errno that is not one.
 */
static int uffd_fill_one(int op, uint64_t dst, const void *src,
			 uint64_t *done, int *err)
{
	int rc;

	if (op == OP_UFFD_COPY) {
		struct uffdio_copy c = {
			.dst = dst, .src = (uint64_t)src, .len = page_size,
		};

		rc = ioctl(ufd, UFFDIO_COPY, &c);
		*err = rc ? errno : 0;
		*done = rc ? pages_done(c.copy) : 1;
	} else {
		struct uffdio_zeropage z = { .range = { dst, page_size } };

		rc = ioctl(ufd, UFFDIO_ZEROPAGE, &z);
		*err = rc ? errno : 0;
		*done = rc ? pages_done(z.zeropage) : 1;
	}
	return *err == EINVAL || *err == EFAULT ? *err : 0;
}

/*
 * UFFDIO_MOVE (6.8+). A short move answers EAGAIN with the bytes it moved;
 * the rest, asked again, says why it stopped (userfaultfd_move()).
 */
static int uffd_move(uint64_t dst, uint64_t src, uint64_t len,
		     uint64_t *done, int *err)
{
	if (!(ufeatures & UFFD_FEATURE_MOVE))
		return EOPNOTSUPP;
	*done = 0;
	while (*done * page_size < len) {
		uint64_t at = *done * page_size;
		struct uffdio_move mv = {
			.dst = dst + at, .src = src + at, .len = len - at,
		};

		if (!ioctl(ufd, UFFDIO_MOVE, &mv)) {
			*done = len / page_size;
			break;
		}
		if (mv.move <= 0) {
			*err = errno;
			break;
		}
		*done += pages_done(mv.move);
	}
	return *err == EINVAL || *err == EFAULT ? *err : 0;
}

static void w_uffd(const struct step *s, struct reply *r)
{
	static uint8_t buf[65536] __attribute__((aligned(65536)));
	struct wmap *m = s->op == OP_UFFD_REGISTER ? &maps[s->map] : get_range(s, r);
	const struct wmap *d;
	uint64_t a, len = s->count * page_size, i, one;
	int e = 0, err = 0;

	if (!m || !m->used) {
		r->err = m ? ENOENT : r->err;
		return;
	}
	a = m->addr + s->page * page_size;
	if (s->op == OP_UFFD_REGISTER) {
		r->err = uffd_register(m, s->arg);
		return;
	}
	e = uffd_open();
	if (e) {
		r->err = e;
		return;
	}
	switch (s->op) {
	case OP_UFFD_WP: {
		struct uffdio_writeprotect wp = { .range = { a, len } };

		if (!(ufeatures & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
			r->err = EOPNOTSUPP;	/* arm64: 6.10+ */
			return;
		}
		wp.mode = s->arg ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
		r->err = ioctl(ufd, UFFDIO_WRITEPROTECT, &wp) ? errno : 0;
		return;
	}
	case OP_UFFD_MOVE:
		d = &maps[s->place_map];
		if (!d->used) {
			r->err = ENOENT;
			return;
		}
		if (s->place < 0 || (uint64_t)s->place + s->count > d->pages) {
			r->err = EINVAL;
			return;
		}
		e = uffd_move(d->addr + s->place * page_size, a, len,
			      &r->done, &err);
		break;
	default:
		/* One page at a time from a buffer filled as a write fills it. */
		if ((size_t)page_size > sizeof(buf)) {
			r->err = EINVAL;
			return;
		}
		for (i = 0; i < s->count && !e && !err; i++) {
			uint64_t idx = s->page + i;

			memset(buf, s->arg, page_size);
			if (s->flags & F_TAG)
				memcpy(buf, &idx, sizeof(idx));
			one = 0;
			e = uffd_fill_one(s->op, a + i * page_size, buf, &one,
					  &err);
			r->done += one;
		}
	}
	r->err = e;
	r->uerr = err;
}

static void on_fault(int sig)
{
	if (!fault_armed) {
		signal(sig, SIG_DFL);
		return;
	}
	fault_sig = sig;
	siglongjmp(fault_jmp, 1);
}

static __attribute__((noinline)) void touch(const struct step *s,
					    uint64_t base)
{
	uint64_t i;

	for (i = 0; i < s->count; i++) {
		volatile uint8_t *p = (volatile uint8_t *)(base + i * page_size);
		uint64_t idx = s->page + i;

		touch_at = idx;
		if (s->op == OP_READ) {
			(void)p[0];
			continue;
		}
		memset((void *)p, s->arg, page_size);
		if (s->flags & F_TAG)
			memcpy((void *)p, &idx, sizeof(idx));
	}
}

static void w_touch(const struct step *s, struct reply *r)
{
	struct wmap *m = get_range(s, r);
	uint64_t i;

	if (!m)
		return;
	for (i = s->page; i < s->page + s->count; i++)
		if (!(m->pf[i] & PF_MAPPED)) {
			r->err = EFAULT;
			return;
		}
	/* Past a file's end SIGBUS is the step's result, not a crash. */
	if (sigsetjmp(fault_jmp, 1)) {
		fault_armed = 0;
		r->err = EFAULT;
		r->sig = fault_sig;
		r->at = touch_at;
		return;
	}
	fault_armed = 1;
	touch(s, m->addr + s->page * page_size);
	fault_armed = 0;
}

/* Returns 1 in the new child, which does not answer. */
static int w_fork(const struct step *s, struct reply *r)
{
	pid_t p = fork();
	int i;

	if (p < 0) {
		r->err = errno;
		return 0;
	}
	if (p) {
		r->child = p;
		return 0;
	}
	self = s->arg;
	pin_forget();
	uffd_forget();
	for (i = 0; i < NMAPS; i++) {
		struct wmap *m = &maps[i];
		uint64_t k;

		if (!m->used)
			continue;
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

static void w_range(const struct step *s, struct reply *r)
{
	struct wmap *m = get_range(s, r);
	void *a;
	size_t len;
	uint64_t i;
	int rc = 0;

	if (!m)
		return;
	a = (void *)(m->addr + s->page * page_size);
	len = s->count * page_size;
	switch (s->op) {
	case OP_MUNMAP:
		rc = munmap(a, len);
		if (!rc)
			forget_range((uint64_t)a, len, -1);
		break;
	case OP_MPROTECT:
		rc = mprotect(a, len, s->arg);
		break;
	case OP_MADVISE:
		rc = madvise(a, len, s->arg);
		for (i = s->page; !rc && i < s->page + s->count; i++) {
			if (s->arg == MADV_DONTFORK)
				m->pf[i] |= PF_DONTFORK;
			else if (s->arg == MADV_DOFORK)
				m->pf[i] &= ~PF_DONTFORK;
		}
		break;
	case OP_MLOCK:
		rc = syscall(SYS_mlock2, a, len, s->arg);
		break;
	case OP_MUNLOCK:
		rc = munlock(a, len);
		break;
	}
	if (rc)
		r->err = errno;
}

/*
 * The end of the run: each process unmaps what it still maps before it
 * exits. An munmap is not the exit's full-mm teardown (tlb->fullmm), and a
 * mapcount the run left wrong shows when that unmap frees the page ("Bad
 * page state") or takes the count below zero ("Bad page map").
 */
#define TEARDOWN	(-1)
static void __attribute__((noreturn)) unmap_all_and_exit(void)
{
	int i;

	for (i = 0; i < NMAPS; i++)
		if (maps[i].used)
			munmap((void *)maps[i].addr, maps[i].pages * page_size);
	_exit(0);
}

static void worker(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	for (;;) {
		struct reply r = { 0 };
		const struct step *s;
		int32_t n;

		if (read(cmd[self][0], &n, sizeof(n)) != sizeof(n))
			_exit(1);
		if (n == TEARDOWN)
			unmap_all_and_exit();
		s = &steps[n];
		switch (s->op) {
		case OP_MMAP:
			w_mmap(s, &r);
			break;
		case OP_MREMAP:
			w_mremap(s, &r);
			break;
		case OP_WRITE:
		case OP_READ:
			w_touch(s, &r);
			break;
		case OP_FORK:
			if (w_fork(s, &r))
				continue;
			break;
		case OP_EXIT:
			_exit(0);
		case OP_MLOCKALL:
			if (mlockall(s->arg))
				r.err = errno;
			break;
		case OP_MUNLOCKALL:
			if (munlockall())
				r.err = errno;
			break;
		case OP_PIN:
			w_pin(s, &r);
			break;
		case OP_UNPIN:
			w_unpin(s, &r);
			break;
		case OP_TRUNCATE:
		case OP_PUNCH:
			w_truncate(s, &r);
			break;
		case OP_UFFD_REGISTER:
		case OP_UFFD_COPY:
		case OP_UFFD_ZEROPAGE:
		case OP_UFFD_MOVE:
		case OP_UFFD_WP:
			w_uffd(s, &r);
			break;
		default:
			w_range(s, &r);
		}
		if (write(rep[self][1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
	}
}

/* The orchestrator side: it sends each step to its process, and checks. */

static struct reply ask(int n)
{
	int p = steps[n].proc;
	struct reply r;
	int32_t i = n;

	if (write(cmd[p][1], &i, sizeof(i)) != sizeof(i) ||
	    read(rep[p][0], &r, sizeof(r)) != sizeof(r))
		setup_failed("talking to a scenario process");
	return r;
}

static uint64_t page_addr(int proc, int map, uint64_t page)
{
	return addr[proc][map] + page * page_size;
}

static int nodes(void)
{
	char path[64];
	int n = 0;

	for (;;) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", n);
		if (access(path, F_OK))
			return n ? n : 1;
		n++;
	}
}

/* ksmd flat out until pages_sharing stops growing over a whole scan. */
#define IDLE_US		200000
static int do_ksm(const struct step *s)
{
	uint64_t tmo = s->count, start, scans, last, prev, sharing, deadline, idle;
	int i;

	ksm_ran = 1;
	for (i = 0; i < NPROCS && !(alive[i] && mergeable[i]); i++)
		;
	if (i == NPROCS)
		tmo = 0;
	if (sysfs_write(KSM "sleep_millisecs", "0") ||
	    sysfs_write(KSM "pages_to_scan", "1000") ||
	    sysfs_u64(KSM "full_scans", &start) ||
	    sysfs_u64(KSM "pages_sharing", &prev) ||
	    sysfs_write(KSM "run", "1"))
		return errno;
	last = start;
	deadline = now_us() + tmo * 1000;
	idle = now_us() + IDLE_US;
	while (now_us() < deadline) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
		if (sysfs_u64(KSM "full_scans", &scans))
			break;
		if (scans == last && now_us() > idle)
			break;
		if (scans == last)
			continue;
		idle = now_us() + IDLE_US;
		if (sysfs_u64(KSM "pages_sharing", &sharing))
			break;
		if (scans - start >= 3 && sharing <= prev)
			break;
		prev = sharing;
		last = scans;
	}
	return sysfs_write(KSM "run", "0") ? errno : 0;
}

static int do_split(const struct step *s)
{
	uint64_t a = page_addr(s->proc, s->map, s->page);
	char buf[96];

	if (access(SPLIT_FILE, W_OK))
		return ENOENT;
	snprintf(buf, sizeof(buf), "%d,0x%llx,0x%llx", pid[s->proc],
		 (unsigned long long)a,
		 (unsigned long long)(a + s->count * page_size));
	return sysfs_write(SPLIT_FILE, buf) ? errno : 0;
}

static int do_migrate(int n)
{
	const struct step *s = &steps[n];
	int nn = nodes(), *want, *status, moved = 1;
	void **pages;
	uint64_t i;

	if (nn < 2)
		return ENODEV;
	pages = calloc(s->count, sizeof(*pages));
	want = calloc(s->count, sizeof(*want));
	status = calloc(s->count, sizeof(*status));
	if (!pages || !want || !status)
		setup_failed("calloc");
	for (i = 0; i < s->count; i++)
		pages[i] = (void *)page_addr(s->proc, s->map, s->page + i);
	if (syscall(SYS_move_pages, pid[s->proc], s->count, pages, NULL, status, 0)) {
		moved = errno;
		goto out;
	}
	for (i = 0; i < s->count; i++)
		want[i] = s->arg >= 0 ? s->arg :
			  status[i] >= 0 ? (status[i] + 1) % nn : 0;
	if (syscall(SYS_move_pages, pid[s->proc], s->count, pages, want, status,
		    MPOL_MF_MOVE_ALL) < 0) {
		moved = errno;
		goto out;
	}
	moved = 0;
	for (i = 0; i < s->count; i++)
		if (status[i] < 0)
			note(n, "%s[%llu] did not move (errno %d)", map_name[s->map],
			     (unsigned long long)(s->page + i), -status[i]);
out:
	free(pages);
	free(want);
	free(status);
	return moved;
}

static int do_poke(const struct step *s)
{
	uint64_t a = page_addr(s->proc, s->map, s->page), e = 0;
	char path[64];
	uint8_t byte = 0xee;
	int pm, mem, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid[s->proc]);
	pm = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid[s->proc]);
	mem = open(path, O_RDWR | O_CLOEXEC);
	if (pm < 0 || mem < 0 || pread(pm, &e, 8, a / page_size * 8) != 8)
		err = errno ? errno : EIO;
	else if ((e & PM_PRESENT) &&
		 pwrite(mem, &byte, 1, a + page_size / 2) != 1)
		err = errno;
	if (pm >= 0)
		close(pm);
	if (mem >= 0)
		close(mem);
	return err;
}

/*
 * remote: a GUP from outside the process, as the agent's controller does it:
 * process_vm_readv/writev of whole pages (pin_user_pages_remote), filled as
 * a write fills them, or one PTRACE_POKEDATA word at each page's start
 * (access_process_vm with FOLL_FORCE), the tracee stopped meanwhile.
 */
static int do_remote(const struct step *s)
{
	uint64_t a = page_addr(s->proc, s->map, s->page), i;
	size_t len = s->count * page_size;
	struct iovec local, remote = { (void *)a, len };
	pid_t p = pid[s->proc];
	uint8_t *buf;
	ssize_t got;
	int st, e = 0;

	if (s->arg == R_PTRACE) {
		if (ptrace(PTRACE_SEIZE, p, 0, 0))
			return errno;
		if (ptrace(PTRACE_INTERRUPT, p, 0, 0) ||
		    waitpid(p, &st, __WALL) != p) {
			e = errno;
			ptrace(PTRACE_DETACH, p, 0, 0);
			return e;
		}
		for (i = 0; i < s->count && !e; i++)
			if (ptrace(PTRACE_POKEDATA, p, a + i * page_size,
				   s->word | (s->page + i)))
				e = errno;
		ptrace(PTRACE_DETACH, p, 0, 0);
		return e;
	}
	buf = malloc(len);
	if (!buf)
		return ENOMEM;
	memset(buf, (int)s->word, len);
	for (i = 0; (s->flags & F_TAG) && i < s->count; i++) {
		uint64_t idx = s->page + i;

		memcpy(buf + i * page_size, &idx, sizeof(idx));
	}
	local.iov_base = buf;
	local.iov_len = len;
	got = s->arg == R_WRITEV ?
		process_vm_writev(p, &local, 1, &remote, 1, 0) :
		process_vm_readv(p, &local, 1, &remote, 1, 0);
	e = got < 0 ? errno : (size_t)got != len ? EFAULT : 0;
	free(buf);
	return e;
}

/* What pagemap says of one slot now. */
struct seen {
	uint64_t pfn;
	int present, excl;
};

static uint64_t kpage(const char *file, uint64_t pfn)
{
	uint64_t v = 0;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || pread(fd, &v, 8, pfn * 8) != 8)
		v = UINT64_MAX;
	if (fd >= 0)
		close(fd);
	return v;
}

static int kernel_at_least(int major, int minor)
{
	struct utsname u;
	int a = 0, b = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &a, &b) != 2)
		return 1;
	return a > major || (a == major && b >= minor);
}

static void read_slots(const struct slot *sl, int n, struct seen *seen)
{
	int fd[NPROCS], i;
	char path[64];

	for (i = 0; i < NPROCS; i++) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", pid[i]);
		fd[i] = alive[i] ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	}
	for (i = 0; i < n; i++) {
		uint64_t e = 0, a = page_addr(sl[i].proc, sl[i].map, sl[i].page);

		if (fd[sl[i].proc] < 0 ||
		    pread(fd[sl[i].proc], &e, 8, a / page_size * 8) != 8)
			e = 0;
		seen[i].present = !!(e & PM_PRESENT);
		seen[i].pfn = e & PM_PFN;
		seen[i].excl = !!(e & PM_EXCLUSIVE);
	}
	for (i = 0; i < NPROCS; i++)
		if (fd[i] >= 0)
			close(fd[i]);
}

static const char *slot_text(const struct slot *s)
{
	static char buf[4][96];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s %s[%llu]", proc_name[s->proc],
		 map_name[s->map], (unsigned long long)s->page);
	return buf[k];
}

#define REPORT(...) do { bad++; if (report) fail(step, __VA_ARGS__); } while (0)

/* Sharing: one predicted frame, one PFN; two frames, two PFNs. */
static int check_sharing(int step, const struct slot *sl, int n,
			 const struct seen *seen, int i, int report)
{
	const struct slot *s = &sl[i];
	int bad = 0, j;

	if (s->group == 0 && seen[i].present)
		REPORT("%s: pfn 0x%llx is mapped, but the model expects nothing there",
		       slot_text(s), (unsigned long long)seen[i].pfn);
	if (s->group <= 0)
		return bad;
	if (!seen[i].present) {
		REPORT("%s: nothing is mapped, but the model expects a page there",
		       slot_text(s));
		return bad;
	}
	for (j = 0; j < n; j++) {
		if (j == i || sl[j].group < 0 || !seen[j].present)
			continue;
		if (sl[j].group == s->group && seen[j].pfn != seen[i].pfn)
			REPORT("%s maps pfn 0x%llx and %s pfn 0x%llx, but the model expects them to share one page",
			       slot_text(s), (unsigned long long)seen[i].pfn,
			       slot_text(&sl[j]), (unsigned long long)seen[j].pfn);
		else if (sl[j].group != s->group && seen[j].pfn == seen[i].pfn)
			REPORT("%s and %s both map pfn 0x%llx, but the model expects different pages",
			       slot_text(s), slot_text(&sl[j]),
			       (unsigned long long)seen[i].pfn);
		if (bad)
			break;
	}
	return bad;
}

/* Contents: the model's bytes, read through /proc/PID/mem. */
static int check_contents(int step, const struct slot *s, const struct seen *seen,
			  uint8_t *buf, int report)
{
	uint64_t a = page_addr(s->proc, s->map, s->page), head;
	int fd, zero = 1, bad = 0;
	long k, first = -1;
	char path[64];

	if (!seen->present)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid[s->proc]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (pread(fd, buf, page_size, a) != page_size) {
		close(fd);
		return 0;	/* unreadable: says nothing */
	}
	close(fd);
	memset(&head, s->value, sizeof(head));
	if (s->flags & S_TAGGED)
		head = s->tag;
	for (k = 0; k < page_size; k++) {
		uint8_t want = k < 8 ? ((uint8_t *)&head)[k] : s->value;

		if (buf[k] != want && first < 0)
			first = k;
		zero &= !buf[k];
	}
	if (first < 0 || (zero && (s->flags & S_MAY_BE_ZERO)))
		return 0;
	REPORT("%s: byte %ld of the page is 0x%02x, but the model expects 0x%02x in every byte%s%s",
	       slot_text(s), first, buf[first], s->value,
	       s->flags & S_TAGGED ? " after its page index (8 bytes)" : "",
	       s->flags & S_MAY_BE_ZERO ? " or zeros (MADV_FREE)" : "");
	return bad;
}

/*
 * PM_MMAP_EXCLUSIVE promises one mm maps the page; kpagecount of an order-0
 * page counts every mapping of it.
 */
static int check_counts(int step, const struct slot *sl, int n,
			const struct seen *seen, int i, int report)
{
	int bad = 0, j, k, mappers = 0, procs = 0, first_of[NPROCS] = { 0 };
	char who[256] = "";
	uint64_t flags, count;

	for (j = 0; j < n; j++) {
		if (!seen[j].present || seen[j].pfn != seen[i].pfn)
			continue;
		if (j < i && (sl[j].flags & S_JUDGE))
			return 0;	/* judged at its first judged slot */
		mappers++;
		if (!first_of[sl[j].proc]++) {
			procs++;
			snprintf(who + strlen(who), sizeof(who) - strlen(who),
				 "%s%s", procs > 1 ? ", " : "", proc_name[sl[j].proc]);
		}
	}
	for (k = 0; k < n; k++)
		if (seen[k].present && seen[k].pfn == seen[i].pfn && seen[k].excl &&
		    procs > 1 && kernel_at_least(6, 10)) {
			REPORT("%s: pagemap flags pfn 0x%llx exclusive to one mm (PM_MMAP_EXCLUSIVE), but %d map it: %s",
			       slot_text(&sl[k]), (unsigned long long)seen[i].pfn,
			       procs, who);
			break;
		}
	flags = kpage("/proc/kpageflags", seen[i].pfn);
	count = kpage("/proc/kpagecount", seen[i].pfn);
	if (flags == UINT64_MAX || count == UINT64_MAX ||
	    (flags & (KPF_HEAD | KPF_TAIL | KPF_ZERO_PAGE)))
		return bad;
	if (count != (uint64_t)mappers)
		REPORT("%s: /proc/kpagecount of pfn 0x%llx is %llu, but %d slots map it (%s)",
		       slot_text(&sl[i]), (unsigned long long)seen[i].pfn,
		       (unsigned long long)count, mappers, who);
	return bad;
}

static int check_pass(int step, const struct slot *sl, int n, int report)
{
	struct seen *seen = calloc(n, sizeof(*seen));
	uint8_t *buf = malloc(page_size);
	int bad = 0, i;

	if (!seen || !buf)
		setup_failed("malloc");
	read_slots(sl, n, seen);
	for (i = 0; i < n; i++) {
		if (!(sl[i].flags & S_JUDGE))
			continue;
		bad += check_sharing(step, sl, n, seen, i, report);
		bad += check_contents(step, &sl[i], &seen[i], buf, report);
		if (seen[i].present && seen[i].pfn)
			bad += check_counts(step, sl, n, seen, i, report);
	}
	free(seen);
	free(buf);
	return bad;
}

/*
 * 6.12 sets KPF_KSM on every anon page: its stable_page_flags() tests
 * mapping & PAGE_MAPPING_KSM, which the anon bit alone satisfies. So the bit
 * is believed only once ksmd has run.
 */
static int is_ksm(uint64_t pfn)
{
	uint64_t flags = kpage("/proc/kpageflags", pfn);

	return ksm_ran && flags != UINT64_MAX && (flags & KPF_KSM);
}

/*
 * rmap_walk_ksm() reaches a mapper of a KSM page only through an rmap_item
 * at the mapper's address: one ksmd gave a page of a mergeable VMA, which
 * has not moved since. A page merged in place keeps other mappers (the
 * merger's parent, a moved fork copy) that no walk reaches, on any kernel
 * (docs/FINDINGS.md, ksm-inplace-merge-unreachable), so a KSM page is walked
 * only when every mapper of it is one the walk owes.
 */
static int walk_owes(const struct slot *s)
{
	return (s->flags & S_KSM_ITEM) &&
	       ksm_addr[s->proc][s->map] == addr[s->proc][s->map];
}

/*
 * The rmap walk, as kselftest mm/rmap.c checks it: migrate a page to another
 * node, and every mapper must then map the new page (a mapper the walk missed
 * keeps the old one, or makes the move fail). Shared pages go first; a page of
 * one mapper is walked too, for a walk that misses a whole VMA.
 */
#define MAX_MIGRATED	16
static void check_walk(int step, const struct slot *sl, int n)
{
	struct seen *seen = calloc(n, sizeof(*seen)), *after = calloc(n, sizeof(*after));
	int nn = nodes(), done = 0, i, j, mappers, status, node, shared, ksm;
	void *page;

	if (!seen || !after)
		setup_failed("calloc");
	if (nn < 2) {
		note(step, "one NUMA node: the rmap walk is not checked by migration");
		goto out;
	}
	read_slots(sl, n, seen);
	for (shared = 1; shared >= 0; shared--) {
		for (i = 0; i < n && done < MAX_MIGRATED; i++) {
			if (!(sl[i].flags & S_JUDGE) || !seen[i].present || !seen[i].pfn)
				continue;
			ksm = is_ksm(seen[i].pfn);
			for (j = 0, mappers = 0; j < n; j++)
				if (seen[j].present && seen[j].pfn == seen[i].pfn) {
					if ((j < i && (sl[j].flags & S_JUDGE)) ||
					    (ksm && !walk_owes(&sl[j])))
						break;
					mappers++;
				}
			if (j < n || (mappers > 1) != shared ||
			    (kpage("/proc/kpageflags", seen[i].pfn) & KPF_ZERO_PAGE))
				continue;
			done++;
			page = (void *)page_addr(sl[i].proc, sl[i].map, sl[i].page);
			if (syscall(SYS_move_pages, pid[sl[i].proc], 1, &page, NULL, &status, 0) ||
			    status < 0)
				continue;
			node = (status + 1) % nn;
			if (syscall(SYS_move_pages, pid[sl[i].proc], 1, &page, &node, &status,
				    MPOL_MF_MOVE_ALL) || status < 0) {
				fail(step, "%s: move_pages could not migrate pfn 0x%llx, which %d slots map (errno %d; kselftest mm/rmap.c expects it to move)",
				     slot_text(&sl[i]), (unsigned long long)seen[i].pfn,
				     mappers, status < 0 ? -status : errno);
				continue;
			}
			read_slots(sl, n, after);
			for (j = 0; j < n; j++)
				if (seen[j].present && seen[j].pfn == seen[i].pfn &&
				    (!after[j].present || after[j].pfn != after[i].pfn)) {
					fail(step, "after migrating pfn 0x%llx (%s) to node %d, %s maps pfn 0x%llx, not the new pfn 0x%llx: the rmap walk missed it",
					     (unsigned long long)seen[i].pfn, slot_text(&sl[i]),
					     node, slot_text(&sl[j]),
					     (unsigned long long)after[j].pfn,
					     (unsigned long long)after[i].pfn);
					break;
				}
		}
	}
	note(step, "the rmap walk: migrated %d page(s) to another node", done);
out:
	free(seen);
	free(after);
}

static void do_check(int step)
{
	const struct slot *sl = kernel_at_least(6, 16) ? slots_616 : slots_old;
	int total = kernel_at_least(6, 16) ? NSLOTS_616 : NSLOTS_OLD, i, n;

	if (!model_valid) {
		note(step, "not checked: an earlier step failed, so the model no longer holds");
		return;
	}
	for (i = 0; i < total && sl[i].step != step; i++)
		;
	for (n = 0; i + n < total && sl[i + n].step == step; n++)
		;
	sl += i;
	/* Compaction may move a page between two reads: look twice. */
	if (check_pass(step, sl, n, 0))
		failures += check_pass(step, sl, n, 1);
	if (O1_CHECK)
		check_walk(step, sl, n);
}

/* Kernel log records at warning or worse that look like a splat. */
static void splats_since(int kmsg)
{
	static const char *const words[] = {
		"WARNING:", "BUG:", "kernel BUG", "Oops", "Bad page",
		"Bad rss-counter", "KASAN", "soft lockup", "stall", NULL,
	};
	char rec[8192];
	ssize_t n;
	int i;

	if (kmsg < 0)
		return;
	while ((n = read(kmsg, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		char *text;

		if (n < 0)
			continue;
		rec[n] = '\0';
		text = strchr(rec, ';');
		if (atoi(rec) % 8 > 4 || !text)
			continue;
		for (i = 0; words[i]; i++)
			if (strstr(text, words[i])) {
				printf("FAIL: kernel splat: %s", text + 1);
				failures++;
				break;
			}
	}
}

static void wait_gone(pid_t p)
{
	uint64_t deadline = now_us() + 10000000;

	while (kill(p, 0) == 0 || errno != ESRCH) {
		struct timespec ts = { 0, 1000000 };

		if (now_us() > deadline) {
			kill(p, SIGKILL);
			deadline = now_us() + 10000000;
		}
		nanosleep(&ts, NULL);
	}
}

/* A step the kernel may not support: these errnos say it lacks it. */
static int unsupported(int op, int err)
{
	return (op == OP_SPLIT && err == ENOENT) ||
	       (op == OP_MIGRATE && (err == ENODEV || err == ENOSYS)) ||
	       (op == OP_COMPACT && err == ENOENT) ||
	       (op == OP_RECLAIM && (err == ENOENT || err == ENODEV));
}

/* The root memory cgroup's memory.reclaim; EAGAIN (got less) is no error. */
static int do_reclaim(const struct step *s)
{
	char bytes[32];

	if (access("/sys/fs/cgroup/memory.reclaim", F_OK) &&
	    mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL) &&
	    errno != EBUSY)
		return errno;
	snprintf(bytes, sizeof(bytes), "%llu",
		 (unsigned long long)(s->count * (uint64_t)page_size));
	if (sysfs_write("/sys/fs/cgroup/memory.reclaim", bytes) &&
	    errno != EAGAIN)
		return errno;
	return 0;
}

/*
 * A read or write past a file's end, or one userfaultfd would have to
 * answer, gets SIGBUS: the step's result, which must be the model's, at the
 * page it expects. 1 when it was a SIGBUS matter (judged here), 0 to go on
 * as for any other step.
 */
static int access_result(int n, const struct reply *r)
{
	const struct sigbus *sb = kernel_at_least(6, 16) ? sigbus_616 : sigbus_old;
	const struct step *s = &steps[n];
	int got = r->err && r->sig == SIGBUS, expect, i;

	for (i = 0; sb[i].step != 0xffff && sb[i].step != n; i++)
		;
	expect = sb[i].step != 0xffff && (sb[i].flags & SB_EXPECT);
	if (!got && (!expect || r->err))
		return 0;
	if (got != expect && (sb[i].flags & SB_UNSURE)) {
		note(n, "a registered page the model cannot follow %s: the model no longer holds",
		     got ? "faulted" : "did not fault");
		model_valid = 0;
	} else if (!model_valid) {
		note(n, "%s not judged: an earlier step failed, so the model no longer holds",
		     got ? "its SIGBUS" : "its access");
	} else if (!got) {
		fail(n, "the access got no signal, but the model expects SIGBUS at %s[%llu] (%s)",
		     map_name[s->map], (unsigned long long)sb[i].page,
		     sb[i].flags & SB_UFFD ? "a fault userfaultfd would have to answer" :
					     "past the file's end");
	} else if (!expect) {
		fail(n, "SIGBUS at %s[%llu], but the model expects no signal (inside the file, no userfaultfd fault)",
		     map_name[s->map], (unsigned long long)r->at);
	} else if (r->at != sb[i].page) {
		fail(n, "SIGBUS at %s[%llu], but the model expects it at page %llu (%s)",
		     map_name[s->map], (unsigned long long)r->at,
		     (unsigned long long)sb[i].page,
		     sb[i].flags & SB_UFFD ? "userfaultfd's fault" : "the file's end");
	}
	return 1;
}

/*
 * A userfaultfd step, judged as the runner judges it. EOPNOTSUPP: the
 * kernel lacks the feature (UFFDIO_MOVE before 6.8, write-protect on arm64
 * before 6.10) or userfaultfd, and the model no longer holds. A move across
 * VMAs, or between unlike ones, is refused whole (EINVAL): the step's
 * result where the model predicts it. COPY, ZEROPAGE and MOVE must do the
 * pages the model says and stop with its errno.
 */
static void uffd_result(int n, const struct reply *r)
{
	const struct uffd_result *u = kernel_at_least(6, 16) ? uffd_616 : uffd_old;
	const struct step *s = &steps[n];
	int i, refusal, certain;

	for (i = 0; u[i].step != 0xffff && u[i].step != n; i++)
		;
	u = u[i].step == 0xffff ? NULL : &u[i];
	refusal = u && u->err == EINVAL;
	certain = !u || s->op != OP_UFFD_MOVE || (u->flags & UR_CERTAIN);
	if (r->err == EINVAL && (refusal || !certain)) {
		note(n, "refused whole: EINVAL");
		model_valid &= refusal;
		return;
	}
	if (r->err == EOPNOTSUPP) {
		note(n, "unsupported on this kernel (errno %d): the model no longer holds",
		     r->err);
		model_valid = 0;
		return;
	}
	if (r->err) {
		fail(n, "failed with errno %d (%s)", r->err, strerror(r->err));
		model_valid = 0;
		return;
	}
	if (!u)
		return;
	if (refusal && certain && model_valid) {
		fail(n, "it did %llu page(s), but the model expects it refused whole (EINVAL: across VMAs or between unlike ones)",
		     (unsigned long long)r->done);
		model_valid = 0;
		return;
	}
	if (r->uerr)
		note(n, "stopped after %llu page(s): errno %d (%s)",
		     (unsigned long long)r->done, r->uerr, strerror(r->uerr));
	if (r->done == u->done && r->uerr == u->err)
		return;
	if ((u->flags & UR_UNSURE) || !model_valid) {
		note(n, "did %llu page(s) (errno %d), pages the model cannot follow: it no longer holds",
		     (unsigned long long)r->done, r->uerr);
		model_valid = 0;
		return;
	}
	fail(n, "it did %llu page(s) and stopped with errno %d (%s), but the model expects %llu page(s) and errno %d (%s)",
	     (unsigned long long)r->done, r->uerr, r->uerr ? strerror(r->uerr) : "all done",
	     (unsigned long long)u->done, u->err, u->err ? strerror(u->err) : "all done");
}

static void do_step(int n)
{
	const struct step *s = &steps[n];
	struct reply r = { 0 };
	int i;

	switch (s->op) {
	case OP_CHECK:
	case OP_FINDPAGE:
		do_check(n);
		return;
	case OP_NOP:
		return;
	case OP_KSM:
		r.err = do_ksm(s);
		memcpy(ksm_addr, addr, sizeof(addr));
		break;
	case OP_SPLIT:
		r.err = do_split(s);
		break;
	case OP_MIGRATE:
		r.err = do_migrate(n);
		break;
	case OP_COMPACT:
		r.err = sysfs_write("/proc/sys/vm/compact_memory", "1") ? errno : 0;
		break;
	case OP_RECLAIM:
		r.err = do_reclaim(s);
		break;
	case OP_POKE:
		r.err = do_poke(s);
		break;
	case OP_REMOTE:
		r.err = do_remote(s);
		break;
	case OP_EXIT:
		i = n;
		if (write(cmd[s->proc][1], &i, sizeof(i)) != sizeof(i))
			setup_failed("talking to a scenario process");
		wait_gone(pid[s->proc]);
		alive[s->proc] = 0;
		return;
	default:
		r = ask(n);
	}
	if (r.err && s->op == OP_MADVISE && s->arg == MADV_COLLAPSE &&
	    (r.err == EAGAIN || r.err == ENOMEM || r.err == EBUSY || r.err == EINVAL)) {
		note(n, "madvise collapse did not collapse (errno %d)", r.err);
		return;
	}
	if (r.err && s->op == OP_MADVISE && r.err == EINVAL) {
		note(n, "refused here (EINVAL: not on this kernel or this mapping)");
		model_valid = 0;
		return;
	}
	if ((s->op == OP_READ || s->op == OP_WRITE) && access_result(n, &r))
		return;
	if (s->op >= OP_UFFD_REGISTER && s->op <= OP_UFFD_WP) {
		uffd_result(n, &r);
		return;
	}
	/*
	 * ENOSYS: no io_uring (or io_uring_disabled=2); EOPNOTSUPP: 6.1's
	 * io_uring refuses file-backed buffers. A result here, as the agent's.
	 */
	if (r.err && s->op == OP_PIN && (r.err == ENOSYS || r.err == EOPNOTSUPP)) {
		note(n, "unsupported here (errno %d): the model assumed the pin and no longer holds",
		     r.err);
		model_valid = 0;
		return;
	}
	if (r.err && unsupported(s->op, r.err)) {
		note(n, "unsupported on this kernel (errno %d)", r.err);
		return;
	}
	if (r.err) {
		fail(n, "failed with errno %d (%s)", r.err, strerror(r.err));
		model_valid = 0;
		return;
	}
	switch (s->op) {
	case OP_MMAP:
		addr[s->proc][s->map] = r.addr;
		break;
	case OP_MREMAP:
		if (!(s->flags & F_INTO))
			addr[s->proc][s->arg] = r.addr;
		break;
	case OP_MADVISE:
		mergeable[s->proc] |= s->arg == MADV_MERGEABLE;
		break;
	case OP_FORK:
		pid[s->arg] = r.child;
		alive[s->arg] = 1;
		mergeable[s->arg] = mergeable[s->proc];
		for (i = 0; i < NMAPS; i++)
			addr[s->arg][i] = addr[s->proc][i];
		break;
	}
}

int main(void)
{
	char path[96];
	int kmsg, i, status = 0;
	pid_t conductor;

	setvbuf(stdout, NULL, _IONBF, 0);
	page_size = sysconf(_SC_PAGESIZE);
	if (getuid())
		setup_failed("run as root (pagemap PFNs, /proc/kpagecount, sysfs)");
	if (page_size != BUILT_PAGE_SIZE) {
		errno = EINVAL;
		printf("SETUP: generated for %d-byte pages, this kernel has %ld: regenerate with its --kernel\n",
		       BUILT_PAGE_SIZE, page_size);
		return 2;
	}
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg >= 0)
		lseek(kmsg, 0, SEEK_END);
	setup_kernel();
	/*
	 * The steps are conducted by a child, so that its exit, the last unmap
	 * of what it shared with the tree (a mapcount gone negative: "Bad page
	 * map"), comes before the kernel log is read.
	 */
	conductor = fork();
	if (conductor < 0)
		setup_failed("fork");
	if (conductor) {
		while (waitpid(conductor, &status, 0) < 0 && errno == EINTR)
			;
		failures = !WIFEXITED(status) || WEXITSTATUS(status);
		splats_since(kmsg);
		restore_settings();
		if (failures)
			return WIFEXITED(status) && WEXITSTATUS(status) == 2 ? 2 : 1;
		printf("PASS\n");
		return 0;
	}
	/* Exited processes are reaped at once, orphans by us. */
	signal(SIGCHLD, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	for (i = 0; i < NPROCS; i++)
		if (pipe(cmd[i]) || pipe(rep[i]))
			setup_failed("pipe");
	pid[0] = fork();
	if (pid[0] < 0)
		setup_failed("fork");
	if (!pid[0]) {
		self = 0;
		worker();
	}
	alive[0] = 1;
	for (i = 0; i < NSTEPS; i++)
		do_step(i);
	for (i = 0; i < NPROCS; i++)
		if (alive[i]) {
			int32_t end = TEARDOWN;

			if (write(cmd[i][1], &end, sizeof(end)) != sizeof(end))
				kill(pid[i], SIGKILL);
			wait_gone(pid[i]);
		}
	for (i = 0; i < NSTEPS; i++)
		if (steps[i].op == OP_MMAP && steps[i].arg == B_FILE) {
			snprintf(path, sizeof(path), "/tmp/rmc-%s",
				 map_name[steps[i].map]);
			unlink(path);
		}
	return failures ? 1 : 0;
}

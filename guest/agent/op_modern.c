// SPDX-License-Identifier: GPL-2.0
/*
 * The modern rmap's triggers: mTHP controls, THP split through debugfs,
 * NUMA migration (move_pages), compaction, memcg reclaim, and the zram swap
 * device that MADV_PAGEOUT and reclaim need. Boot records the per-size THP settings so that every
 * reset puts them back: a pooled guest starts each scenario the same way.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent.h"
#include "handlers.h"
#include "kcov.h"
#include "request.h"
#include "sysfs.h"

#define THP_DIR		"/sys/kernel/mm/transparent_hugepage/"
#define SPLIT_FILE	"/sys/kernel/debug/split_huge_pages"
#define ZRAM		"/sys/block/zram0/"
#define ZRAM_DEV	"/dev/zram0"
#define SWAP_MB		128
#define MAX_SIZES	24
#define MODE_LEN	16
#define MPOL_MF_MOVE_ALL	(1 << 2)
#define ANY_NODE	(UINT64_MAX - 1)	/* node= absent */
#define CGROUP_DIR	"/sys/fs/cgroup"
#define WORKLOAD_CG	CGROUP_DIR "/rmapcheck"
#define RECLAIM_ROUNDS	8
#define STAT_LEN	8192
#define RECLAIM_MAX_PAGES	(1ULL << 24)	/* world.rs: MAX_RECLAIM_PAGES */

/* One hugepages-<size>kB directory and the settings boot found there. */
struct thp_size {
	unsigned long kb;
	char enabled[MODE_LEN], shmem[MODE_LEN];
};

static struct thp_size sizes[MAX_SIZES];
static int nsizes, swap_on;
static int workload_cg;		/* p0 and its descendants live in WORKLOAD_CG */
static int mthp_changed;	/* an mthp request ran since the last reset */

/* The bracketed word of a sysfs choice file: "always [madvise] never". */
static int read_choice(const char *path, char *out, size_t len)
{
	char buf[256], *a, *b;

	if (sysfs_read(path, buf, sizeof(buf)))
		return -1;
	a = strchr(buf, '[');
	b = a ? strchr(a, ']') : NULL;
	if (!b || (size_t)(b - a - 1) >= len)
		return -1;
	snprintf(out, len, "%.*s", (int)(b - a - 1), a + 1);
	return 0;
}

static int cmp_size(const void *a, const void *b)
{
	const struct thp_size *x = a, *y = b;

	return x->kb < y->kb ? -1 : x->kb > y->kb;
}

static void record_sizes(void)
{
	DIR *d = opendir(THP_DIR);
	struct dirent *de;
	char path[300];

	while (d && (de = readdir(d)) && nsizes < MAX_SIZES) {
		struct thp_size *s = &sizes[nsizes];

		if (sscanf(de->d_name, "hugepages-%lukB", &s->kb) != 1)
			continue;
		snprintf(path, sizeof(path), THP_DIR "%.64s/enabled",
			 de->d_name);
		if (read_choice(path, s->enabled, MODE_LEN))
			continue;
		snprintf(path, sizeof(path), THP_DIR "%.64s/shmem_enabled",
			 de->d_name);
		if (read_choice(path, s->shmem, MODE_LEN))
			s->shmem[0] = '\0';	/* anon only before 6.11 */
		nsizes++;
	}
	if (d)
		closedir(d);
	qsort(sizes, nsizes, sizeof(sizes[0]), cmp_size);
}

/* A v1 swap header: mkswap without mkswap (PAGE_SIZE differs by kernel). */
static int make_swap(const char *dev, uint64_t bytes)
{
	uint32_t *w;
	char *pg = calloc(1, page_size);
	int fd, rc = -1;

	if (!pg)
		return -1;
	w = (uint32_t *)(pg + 1024);
	w[0] = 1;				/* version */
	w[1] = bytes / page_size - 1;		/* last_page */
	memcpy(pg + page_size - 10, "SWAPSPACE2", 10);
	fd = open(dev, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		rc = pwrite(fd, pg, page_size, 0) == page_size ? 0 : -1;
		close(fd);
	}
	free(pg);
	return rc;
}

/* zram0 exists when zram is built in or its module was in /modules.load. */
static void setup_swap(void)
{
	char size[32];

	if (access(ZRAM "disksize", W_OK))
		return;
	snprintf(size, sizeof(size), "%uM", SWAP_MB);
	if (sysfs_write(ZRAM "disksize", size) ||
	    make_swap(ZRAM_DEV, (uint64_t)SWAP_MB << 20) ||
	    swapon(ZRAM_DEV, 0)) {
		con("rmapcheck-agent: swap on zram0: %s\n", strerror(errno));
		return;
	}
	swap_on = 1;
}

/*
 * A memory cgroup of the workload's own, so that memory.reclaim scans the
 * workload's pages and not the whole guest's LRUs: on the root cgroup each
 * reclaim step took 210 ms of TCG time, a fifth of a fuzz campaign. A
 * kernel without cgroup2 or memcg keeps every process in the root.
 */
static void setup_workload_cgroup(void)
{
	mkdir(CGROUP_DIR, 0755);
	if (mount("cgroup2", CGROUP_DIR, "cgroup2", 0, NULL) && errno != EBUSY)
		return;
	if (sysfs_write(CGROUP_DIR "/cgroup.subtree_control", "+memory"))
		return;
	if (mkdir(WORKLOAD_CG, 0755) && errno != EEXIST)
		return;
	workload_cg = !access(WORKLOAD_CG "/memory.reclaim", F_OK);
}

/* In a new p0, before it touches any memory: its pages are charged here. */
void join_workload_cgroup(void)
{
	if (workload_cg)
		sysfs_write(WORKLOAD_CG "/cgroup.procs", "0");
}

void modern_boot(void)
{
	/*
	 * NUMA balancing would move pages between the two nodes behind the
	 * scenario's back; only the migrate step moves them.
	 */
	sysfs_write("/proc/sys/kernel/numa_balancing", "0");
	/* Nor proactive compaction: pages move only when a step asks. */
	sysfs_write("/proc/sys/vm/compaction_proactiveness", "0");
	/*
	 * Nor khugepaged (a day between scans): it collapsed a page between a
	 * walk's lookup and its rmap walk once. MADV_COLLAPSE still collapses.
	 */
	sysfs_write(THP_DIR "khugepaged/scan_sleep_millisecs", "86400000");
	sysfs_write(THP_DIR "khugepaged/alloc_sleep_millisecs", "86400000");
	mkdir("/sys/kernel/debug", 0755);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	kcov_boot();
	record_sizes();
	setup_swap();
	setup_workload_cgroup();
}

/* Every per-size setting back to what boot found. */
void modern_reset(void)
{
	char path[160];
	int i;

	/* Most runs set no size: skip a dozen sysfs writes per reset. */
	if (!mthp_changed)
		return;
	mthp_changed = 0;
	for (i = 0; i < nsizes; i++) {
		snprintf(path, sizeof(path), THP_DIR "hugepages-%lukB/enabled",
			 sizes[i].kb);
		sysfs_write(path, sizes[i].enabled);
		if (!sizes[i].shmem[0])
			continue;
		snprintf(path, sizeof(path),
			 THP_DIR "hugepages-%lukB/shmem_enabled", sizes[i].kb);
		sysfs_write(path, sizes[i].shmem);
	}
}

static int nodes(void)
{
	char path[64];
	int n = 0;

	for (;;) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d",
			 n);
		if (access(path, F_OK))
			return n ? n : 1;
		n++;
	}
}

/* What this guest offers: mTHP sizes, the PMD size, swap, nodes, split. */
int op_sysinfo(struct ctx *c)
{
	int i;

	(void)c;
	sb_add(c->fields, " mthp=");
	for (i = 0; i < nsizes; i++)
		sb_printf(c->fields, "%s%lu", i ? "," : "", sizes[i].kb);
	if (!nsizes)
		sb_add(c->fields, "-");
	sb_printf(c->fields,
		  " shmem_mthp=%d swap=%d nodes=%d split=%d kcov=%d",
		  nsizes && sizes[0].shmem[0], swap_on, nodes(),
		  !access(SPLIT_FILE, W_OK), kcov_available());
	return 0;
}

/* mthp size_kb=N [anon=MODE] [shmem=MODE] */
int op_mthp(struct ctx *c)
{
	const char *anon = kv_get(c->req, "anon"), *shmem = kv_get(c->req, "shmem");
	char path[160];
	uint64_t kb;

	if (num(c, "size_kb", REQUIRED, 1 << 30, &kb))
		return bad(c, "size_kb");
	if ((anon && !valid_name(anon)) || (shmem && !valid_name(shmem)))
		return bad(c, "mode");
	snprintf(path, sizeof(path), THP_DIR "hugepages-%llukB/",
		 (unsigned long long)kb);
	if (access(path, F_OK))
		return fail(c, ENOENT, "no-mthp-size");
	mthp_changed = 1;
	if (anon) {
		snprintf(path, sizeof(path), THP_DIR "hugepages-%llukB/enabled",
			 (unsigned long long)kb);
		if (sysfs_write(path, anon))
			return fail(c, errno, "mthp-enabled");
	}
	if (shmem) {
		snprintf(path, sizeof(path),
			 THP_DIR "hugepages-%llukB/shmem_enabled",
			 (unsigned long long)kb);
		if (sysfs_write(path, shmem))
			return fail(c, errno, "mthp-shmem");
	}
	return 0;
}

/* The address of name[page] in p, after checking name[page+count-1]. */
static int range_addr(struct ctx *c, struct proc **pp, uint64_t *addr,
		      uint64_t *count)
{
	struct page_at at;
	struct wreq q;
	int rc;

	rc = req_map(c, &q, 0);
	if (!rc)
		rc = req_pages(c, &q, 1, MAX_IO_PAGES);
	if (!rc)
		rc = req_proc(c, pp);
	if (!rc)
		rc = proc_lookup(c, *pp, &q, q.count, &at);
	if (rc)
		return rc;
	*count = q.count;
	*addr = at.addr;
	return 0;
}

/* split proc name page count: debugfs split_huge_pages over the range. */
int op_split(struct ctx *c)
{
	struct proc *p;
	uint64_t addr, count;
	char cmd[96];
	int rc, e;

	rc = range_addr(c, &p, &addr, &count);
	if (rc)
		return rc;
	if (access(SPLIT_FILE, W_OK))
		return fail(c, ENOENT, "no-split-debugfs");
	snprintf(cmd, sizeof(cmd), "%d,0x%llx,0x%llx", p->pid,
		 (unsigned long long)addr,
		 (unsigned long long)(addr + count * page_size));
	kcov_begin();
	rc = sysfs_write(SPLIT_FILE, cmd);
	e = errno;
	kcov_end();
	if (rc)
		return fail(c, e, "split");
	return 0;
}

/*
 * migrate proc name page count [node=N]: move_pages(2) of the range to node
 * N, or of each page to a node it is not on. MPOL_MF_MOVE_ALL moves pages
 * other processes map too, as the kernel's rmap selftest does. The reply
 * lists each page's node after the move, or its -errno (-ENOENT: not
 * present, -EBUSY, ...).
 */
int op_migrate(struct ctx *c)
{
	static void *pages[MAX_IO_PAGES];
	static int want[MAX_IO_PAGES], status[MAX_IO_PAGES];
	uint64_t addr, count, node, i;
	int n = nodes(), e;
	struct proc *p;
	long rc;

	if (num(c, "node", ANY_NODE, 63, &node))
		return bad(c, "node");
	e = range_addr(c, &p, &addr, &count);
	if (e)
		return e;
	if (n < 2)
		return fail(c, ENODEV, "one-node");
	for (i = 0; i < count; i++)
		pages[i] = (void *)(addr + i * page_size);
	if (syscall(SYS_move_pages, p->pid, count, pages, NULL, status, 0))
		return fail(c, errno, "move_pages");
	for (i = 0; i < count; i++) {
		if (node != ANY_NODE)
			want[i] = node;
		else
			want[i] = status[i] >= 0 ? (status[i] + 1) % n : 0;
	}
	kcov_begin();
	rc = syscall(SYS_move_pages, p->pid, count, pages, want, status,
		     MPOL_MF_MOVE_ALL);
	e = errno;
	kcov_end();
	if (rc < 0)
		return fail(c, e, "move_pages");
	sb_add(c->fields, " nodes=");
	for (i = 0; i < count; i++)
		sb_printf(c->fields, "%s%d", i ? "," : "", status[i]);
	return 0;
}

/*
 * Compaction runs in the writer's context but is not traced (kcov.c): it
 * scans all memory, tracing that cost more than the compaction, and the
 * rmap work in it (migrating the pages it moves) is migrate's, which is.
 */
int op_compact(struct ctx *c)
{
	(void)c;
	if (sysfs_write("/proc/sys/vm/compact_memory", "1"))
		return fail(c, errno, "compact");
	return 0;
}

/* The pages on the workload cgroup's LRUs (memory.stat), or -1. */
static long long workload_lru_pages(void)
{
	static const char *const keys[] = { "\ninactive_anon ",
		"\nactive_anon ", "\ninactive_file ", "\nactive_file " };
	char stat[STAT_LEN] = "\n", *at;
	long long bytes = 0;
	size_t i;

	if (sysfs_read_all(WORKLOAD_CG "/memory.stat", stat + 1,
			   sizeof(stat) - 1))
		return -1;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		at = strstr(stat, keys[i]);
		if (!at)
			return -1;
		bytes += strtoll(at + strlen(keys[i]), NULL, 10);
	}
	return bytes / page_size;
}

/*
 * Reclaim through the workload's memory cgroup, which every page a worker
 * faults is charged to. memory.reclaim (5.19+) runs shrink_folio_list()
 * with its reference check (folio_referenced()), which MADV_PAGEOUT skips.
 * Without cgroup2 or memcg, or before 5.19, there is no memory.reclaim
 * (ENOENT): the host reads that as "not on this kernel". EAGAIN is a
 * result, not a failure: reclaim got less than it was asked.
 *
 * Up to RECLAIM_ROUNDS writes, until the cgroup's LRUs are empty: on the
 * classic LRU, a write finds new pages still in the per-CPU LRU batches
 * (drained only at its last retry) and activates the referenced ones, and
 * later writes deactivate them and then reclaim them (four to six writes
 * for a shmem page two processes map, on 6.12 and 7.2). The root cgroup
 * did that in one write, by scanning the whole guest.
 */
int op_reclaim(struct ctx *c)
{
	uint64_t pages;
	char bytes[32];
	int i, rc = 0, e = 0;

	if (num(c, "pages", REQUIRED, RECLAIM_MAX_PAGES, &pages))
		return bad(c, "pages");
	if (!workload_cg)
		return fail(c, ENOENT, "memory.reclaim");
	snprintf(bytes, sizeof(bytes), "%llu",
		 (unsigned long long)(pages * (uint64_t)page_size));
	kcov_begin();
	for (i = 0; i < RECLAIM_ROUNDS; i++) {
		rc = sysfs_write(WORKLOAD_CG "/memory.reclaim", bytes);
		e = errno;
		if (!rc || e != EAGAIN || !workload_lru_pages())
			break;
	}
	kcov_end();
	if (rc && e != EAGAIN)
		return fail(c, e, "memory.reclaim");
	sb_printf(c->fields, " short=%d", rc ? 1 : 0);
	return 0;
}

/* mlock and friends run in the worker: they act on its own mm. */
static int lock_op(struct ctx *c, uint32_t op, int flags)
{
	struct wreq q;
	struct proc *p;
	int rc;

	rc = req_map(c, &q, op);
	if (!rc)
		rc = req_pages(c, &q, REQUIRED, max_pages());
	if (!rc)
		rc = req_proc(c, &p);
	if (rc)
		return rc;
	q.advice = flags;
	return wcall(c, p, &q, NULL);
}

int op_mlock(struct ctx *c)
{
	uint64_t onfault;

	if (num(c, "onfault", 0, 1, &onfault))
		return bad(c, "onfault");
	return lock_op(c, W_MLOCK, onfault ? MLOCK_ONFAULT : 0);
}

int op_munlock(struct ctx *c)
{
	return lock_op(c, W_MUNLOCK, 0);
}

static int all_op(struct ctx *c, uint32_t op, int flags)
{
	struct wreq q = { .op = op, .huge = -1, .advice = flags };
	struct proc *p;
	int rc = req_proc(c, &p);

	return rc ? rc : wcall(c, p, &q, NULL);
}

int op_mlockall(struct ctx *c)
{
	uint64_t cur, fut, onf;

	if (num(c, "current", 0, 1, &cur) || num(c, "future", 0, 1, &fut) ||
	    num(c, "onfault", 0, 1, &onf) || !(cur || fut))
		return bad(c, "mlockall");
	return all_op(c, W_MLOCKALL, (cur ? MCL_CURRENT : 0) |
		      (fut ? MCL_FUTURE : 0) | (onf ? MCL_ONFAULT : 0));
}

int op_munlockall(struct ctx *c)
{
	return all_op(c, W_MUNLOCKALL, 0);
}

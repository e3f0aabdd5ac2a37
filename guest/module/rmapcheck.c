// SPDX-License-Identifier: GPL-2.0
/*
 * rmapcheck.ko - walk the reverse mapping of any user page and log what
 * the walk finds, for the rmapcheck test harness.
 *
 * Commands, one per write to /proc/mtest (mode 0200):
 *
 *	findtask<pid> [req=<n>]			select a task, list its VMAs
 *	findpage0x<addr> [req=<n>]		rmap-walk a page of that task
 *	findpage <pid> 0x<addr> [req=<n>]	the same without the selection
 *
 * The log lines are a contract with the host; docs/PROTOCOL.md, section
 * "Module log lines", defines them.  Every value is sanitised so that it
 * holds no space.
 *
 * Why the walk is safe against concurrent munmap, fork and exit
 * ------------------------------------------------------------
 * mm/rmap.c orders the locks "mm->mmap_lock, folio_lock, ...,
 * mapping->i_mmap_rwsem, anon_vma->rwsem, mm->page_table_lock or
 * pte_lock"; we take them in that order and no other.
 *
 * - get_task_mm() holds mm_users, so the target address space is not torn
 *   down (exit_mmap) while we look at it, even if the task exits.
 * - The target's mmap lock is held for read from the lookup to the end of
 *   the walk.  rmap_walk() of an anon folio reads folio->mapping and locks
 *   that anon_vma with no reference of its own (rmap_walk_anon_lock(): "Users
 *   without mmap_lock are required to take a reference count"); the folio
 *   lock does not keep it alive, as munmap does not take the folio lock.
 *   The target VMA mapped the folio when we looked it up, so it is linked
 *   into the folio's anon_vma; munmap and exit cannot unlink it while we
 *   hold the mmap lock and mm_users, so the anon_vma (and its root) lives.
 *   (That link is the rmap invariant under test; a kernel that broke it
 *   would trip its own walkers the same way.)
 *   The folio cannot move to another mm's anon_vma meanwhile: our
 *   reference fails the refcount checks before folio_move_anon_rmap() in
 *   do_wp_page() and do_huge_pmd_wp_page(), and UFFDIO_MOVE moves it only
 *   within this same mm, whose VMAs our mmap lock keeps.
 * - The folio reference keeps the folio from being freed or split.  The
 *   folio lock keeps folio->mapping stable (truncation, anon -> KSM) and
 *   is required by rmap_walk() for file and KSM folios.  KSM's rmap_items
 *   hold references on their anon_vmas.
 * - rmap_walk() takes the anon_vma rwsem or the mapping's i_mmap_rwsem
 *   for read.  A VMA cannot leave the anon_vma or i_mmap tree, nor lose
 *   its page tables, its mm or its file, without those locks held for
 *   write.  So every VMA handed to rmc_rmap_one(), its vm_file and its
 *   vm_mm stay valid during the callback, though we do not hold the mmap
 *   lock of other mms; page_vma_mapped_walk() takes each page table lock.
 * - The owner task of a visited VMA is found under rcu_read_lock() by
 *   comparing task->mm pointers only.
 */

#define pr_fmt(fmt) "rmapcheck: " fmt

#include <linux/atomic.h>
#include <linux/ctype.h>
#include <linux/dcache.h>
#include <linux/err.h>
#include <linux/highmem.h>
#include <linux/kallsyms.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/mutex.h>
#include <linux/pagemap.h>
#include <linux/pid.h>
#include <linux/proc_fs.h>
#include <linux/rcupdate.h>
#include <linux/rmap.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "compat.h"

#define RMC_MAX_CMD	256	/* longest accepted write, in bytes */
#define RMC_MAX_TOKENS	4
#define RMC_NAME_LEN	256	/* file= value */
#define RMC_SYM_LEN	128	/* ops= value */
#define RMC_AUTO_REQ	1000000ULL
#define RMC_AT_MAX	8	/* at= runs; keeps a vma line < 1 KiB */

static int misreport;
module_param(misreport, int, 0644);
MODULE_PARM_DESC(misreport,
		 "test only: drop the last mapping VMA when 3 or more map the page");

static int overcount;
module_param(overcount, int, 0644);
MODULE_PARM_DESC(overcount,
		 "test only: report a large folio's mapcount one too high");

static int plant_warn;
module_param(plant_warn, int, 0644);
MODULE_PARM_DESC(plant_warn,
		 "test only: WARN when a walked page's first byte is this (1-255)");

/* Resolved through kallsyms at load time; none of them is exported. */
static typeof(kallsyms_lookup_name) *rmc_kallsyms_lookup_name;
static typeof(rmap_walk) *rmc_rmap_walk;
static typeof(page_vma_mapped_walk) *rmc_page_vma_mapped_walk;

/* The task chosen by the last findtask; a pid reference, or NULL. */
static DEFINE_MUTEX(rmc_select_lock);
static struct pid *rmc_selected;

static atomic64_t rmc_next_req = ATOMIC64_INIT(RMC_AUTO_REQ);

/* A run of PTEs mapping consecutive pages, or one PMD (n == 1). */
struct rmc_at {
	unsigned long addr;
	unsigned int n;
	bool pmd;
};

/* What one vma line says. */
struct rmc_vma_rec {
	pid_t pid;
	char comm[TASK_COMM_LEN];
	unsigned long start, end, flags, pgoff;
	char prot[5];
	char file[RMC_NAME_LEN];
	char ops[RMC_SYM_LEN];
	int anon_vma;
	/* vma->anon_vma and its parent: a reused anon_vma shows as one's parent */
	const void *av, *avp;
	bool has_addr;
	unsigned long addr;
	const char *state;
	const char *level;
	bool has_rmap_addr, has_folio_addr;
	unsigned long rmap_addr;	/* what rmap_walk() passed */
	unsigned long folio_addr;	/* what we expect it to pass */
	int nat;			/* at[] used */
	unsigned int at_more;		/* hits that did not fit in at[] */
	struct rmc_at at[RMC_AT_MAX];
};

/* One findpage request, shared with the rmap_one callback. */
struct rmc_walk {
	u64 req;
	unsigned long pfn;	/* the page asked about */
	pgoff_t pgoff;		/* its page offset (not for KSM) */
	pgoff_t folio_pgoff;	/* the folio's first page offset */
	bool ksm;
	bool hold_last;		/* misreport: hold back the last mapped VMA */
	bool have_pending;
	int found_mapped;	/* mapping VMAs the walk found */
	int mapped, visited;	/* vma lines printed */
	char path[PATH_MAX];	/* d_path() scratch */
	struct rmc_vma_rec rec;
	struct rmc_vma_rec pending;
};

/* No locks.  Replaces spaces and unprintable bytes with '?'. */
static void rmc_sanitise(char *s)
{
	for (; *s; s++)
		if (*s <= ' ' || *s > '~')
			*s = '?';
}

/* No locks.  Logs "error" and "end" and returns @rc for the write. */
static int rmc_fail(u64 req, int rc, const char *msg)
{
	pr_info("req=%llu error rc=%d msg=%s\n", req, rc, msg);
	pr_info("req=%llu end rc=%d mapped=0 visited=0\n", req, rc);
	return rc;
}

/*
 * Takes rcu_read_lock().  Finds a user task whose mm is @mm and copies
 * its comm; returns its tgid, or 0 (comm "-") when none is left (the mm
 * is being torn down).  Compares pointers only; @mm is not dereferenced.
 */
static pid_t rmc_mm_owner(struct mm_struct *mm, char *comm)
{
	struct task_struct *g, *t;
	pid_t pid = 0;

	strscpy(comm, "-", TASK_COMM_LEN);
	rcu_read_lock();
	for_each_process_thread(g, t) {
		if ((t->flags & PF_KTHREAD) || READ_ONCE(t->mm) != mm)
			continue;
		pid = task_tgid_nr(t);
		strscpy(comm, t->comm, TASK_COMM_LEN);
		goto out;
	}
out:
	rcu_read_unlock();
	rmc_sanitise(comm);
	return pid;
}

/*
 * The caller keeps @vma alive (mmap lock or an rmap lock), which also
 * pins vma->vm_file.  d_path() takes only seqlocks.  Files on internal
 * mounts (MAP_SHARED /dev/zero, memfd) are named by their dentry:
 * shmem_zero_setup() names its file "dev/zero", shown as "/dev/zero".
 */
static void rmc_file_name(struct vm_area_struct *vma, char *out,
			  char *scratch)
{
	struct file *file = vma->vm_file;
	char *p;

	if (!file) {
		strscpy(out, "-", RMC_NAME_LEN);
		return;
	}
	if (file->f_path.mnt->mnt_flags & MNT_INTERNAL) {
		snprintf(out, RMC_NAME_LEN, "%pd", file->f_path.dentry);
		if (strchr(out, '/') && out[0] != '/') {
			memmove(out + 1, out, RMC_NAME_LEN - 1);
			out[0] = '/';
			out[RMC_NAME_LEN - 1] = '\0';
		}
	} else {
		p = d_path(&file->f_path, scratch, PATH_MAX);
		strscpy(out, IS_ERR(p) ? "?" : p, RMC_NAME_LEN);
	}
	rmc_sanitise(out);
}

/*
 * The caller keeps @vma alive (mmap lock or an rmap lock).  Fills the
 * VMA part of @rec: range, flags, prot as in /proc/PID/maps, pgoff,
 * file, vm_ops.  Owner, addr and state are the caller's.
 */
static void rmc_fill_vma(struct rmc_vma_rec *rec, struct vm_area_struct *vma,
			 char *scratch)
{
	unsigned long flags = vma->vm_flags;

	rec->start = vma->vm_start;
	rec->end = vma->vm_end;
	rec->flags = flags;
	rec->pgoff = vma->vm_pgoff;
	rec->prot[0] = flags & VM_READ ? 'r' : '-';
	rec->prot[1] = flags & VM_WRITE ? 'w' : '-';
	rec->prot[2] = flags & VM_EXEC ? 'x' : '-';
	rec->prot[3] = flags & VM_MAYSHARE ? 's' : 'p';
	rec->prot[4] = '\0';
	rmc_file_name(vma, rec->file, scratch);
	if (vma->vm_ops)
		snprintf(rec->ops, sizeof(rec->ops), "%ps", vma->vm_ops);
	else
		strscpy(rec->ops, "-", sizeof(rec->ops));
	rmc_sanitise(rec->ops);
	rec->anon_vma = !!vma->anon_vma;
	/* ->parent is set once, at anon_vma_fork(), and the VMA pins it. */
	rec->av = vma->anon_vma;
	rec->avp = vma->anon_vma ? vma->anon_vma->parent : NULL;
}

/* No locks.  Writes "0x<v>" when @has, else "-". */
static void rmc_hex_or_dash(char *out, size_t len, bool has, unsigned long v)
{
	if (has)
		snprintf(out, len, "0x%lx", v);
	else
		strscpy(out, "-", len);
}

/* No locks.  Formats at[] as "0x..:pte,0x..:pte*<n>,0x..:pmd[,+<more>]". */
static void rmc_format_at(char *out, size_t len, const struct rmc_vma_rec *rec)
{
	size_t used = 0;
	int i;

	if (!rec->nat) {
		strscpy(out, "-", len);
		return;
	}
	out[0] = '\0';
	for (i = 0; i < rec->nat; i++) {
		const struct rmc_at *at = &rec->at[i];

		used += scnprintf(out + used, len - used, "%s0x%lx:%s",
				  i ? "," : "", at->addr,
				  at->pmd ? "pmd" : "pte");
		if (at->n > 1)
			used += scnprintf(out + used, len - used, "*%u",
					  at->n);
	}
	if (rec->at_more)
		scnprintf(out + used, len - used, ",+%u", rec->at_more);
}

/* No locks.  Prints one vma line. */
static void rmc_print_vma(u64 req, const struct rmc_vma_rec *rec)
{
	char addr[2 + 2 * sizeof(long) + 1];
	char rmap_addr[sizeof(addr)], folio_addr[sizeof(addr)];
	/* 0x<16>:pte*<10> per run, a comma, and ",+<10>" */
	char at[RMC_AT_MAX * 36 + 16];
	/* Hashed pointers (%p): identities stable for one boot, no addresses. */
	char av[48] = "-";

	rmc_hex_or_dash(addr, sizeof(addr), rec->has_addr, rec->addr);
	rmc_hex_or_dash(rmap_addr, sizeof(rmap_addr), rec->has_rmap_addr,
			rec->rmap_addr);
	rmc_hex_or_dash(folio_addr, sizeof(folio_addr), rec->has_folio_addr,
			rec->folio_addr);
	rmc_format_at(at, sizeof(at), rec);
	if (rec->av)
		scnprintf(av, sizeof(av), "%p:%p", rec->av, rec->avp);
	pr_info("req=%llu vma pid=%d comm=%s start=0x%lx end=0x%lx flags=0x%lx prot=%s pgoff=0x%lx file=%s ops=%s anon_vma=%d addr=%s state=%s level=%s rmap_addr=%s folio_addr=%s at=%s av=%s\n",
		req, rec->pid, rec->comm, rec->start, rec->end, rec->flags,
		rec->prot, rec->pgoff, rec->file, rec->ops, rec->anon_vma,
		addr, rec->state, rec->level, rmap_addr, folio_addr, at, av);
}

/*
 * Runs under the hit's page table lock and takes none.  Adds a
 * page_vma_mapped_walk() hit at @addr to rec->at[], merging consecutive
 * PTEs into one run; what does not fit is counted in at_more.
 */
static void rmc_add_at(struct rmc_vma_rec *rec, unsigned long addr, bool pmd)
{
	struct rmc_at *last = rec->nat ? &rec->at[rec->nat - 1] : NULL;

	if (last && !pmd && !last->pmd && !rec->at_more &&
	    addr == last->addr + ((unsigned long)last->n << PAGE_SHIFT)) {
		last->n++;
		return;
	}
	if (rec->nat == RMC_AT_MAX) {
		rec->at_more++;
		return;
	}
	last = &rec->at[rec->nat++];
	last->addr = addr;
	last->n = 1;
	last->pmd = pmd;
}

/*
 * rmap_walk() callback.  Called with the folio locked and referenced, the
 * target mm's mmap lock held for read, and the anon_vma rwsem or the
 * i_mmap_rwsem held for read (KSM: the anon_vma of each rmap_item).
 * page_vma_mapped_walk() takes and drops the page table lock (and the RCU
 * lock of pte_offset_map()).
 *
 * Decides whether @vma maps the page asked about (not just the folio):
 * a PMD that maps the folio, or the PTE at the page's address in @vma
 * pointing at its pfn.  Also records every PTE and PMD of @vma that maps
 * any page of the folio, and the @address that rmap_walk() passed.
 */
static bool rmc_rmap_one(struct folio *folio, struct vm_area_struct *vma,
			 unsigned long address, void *arg)
{
	struct rmc_walk *w = arg;
	struct rmc_vma_rec *rec = &w->rec;
	bool in_vma, mapped = false;
	const char *level = "-";
	unsigned long addr, first;

	rec->nat = 0;
	rec->at_more = 0;
	rec->has_rmap_addr = true;
	rec->rmap_addr = address;
	if (w->ksm) {
		/* KSM: each rmap_item names the exact address. */
		addr = address & PAGE_MASK;
		in_vma = addr >= vma->vm_start && addr < vma->vm_end;
		first = addr;
		rec->has_folio_addr = false;
	} else {
		pgoff_t start = rmc_vma_pgoff(vma, folio);
		unsigned long off = w->pgoff - start;

		in_vma = w->pgoff >= start && off < vma_pages(vma);
		addr = vma->vm_start + (off << PAGE_SHIFT);
		/* As vma_address(): the folio's first page, or vm_start. */
		if (w->folio_pgoff >= start)
			first = vma->vm_start +
				((w->folio_pgoff - start) << PAGE_SHIFT);
		else
			first = vma->vm_start;
		rec->has_folio_addr = true;
		rec->folio_addr = first;
	}

	if (first >= vma->vm_start && first < vma->vm_end) {
		RMC_FOLIO_VMA_WALK(pvmw, folio, vma, first, PVMW_SYNC);

		while (rmc_page_vma_mapped_walk(&pvmw)) {
			/*
			 * A hugetlb folio is mapped whole by one huge PTE:
			 * the default size, which is the PMD size.
			 */
			bool whole = !pvmw.pte || is_vm_hugetlb_page(vma);

			rmc_add_at(rec, pvmw.address, whole);
			if (!in_vma || mapped)
				continue;
			if (whole) {
				/* A PMD maps every page of the folio. */
				mapped = true;
				level = "pmd";
			} else if (pvmw.address == addr) {
				pte_t pte = ptep_get(pvmw.pte);

				/* Non-present: a device entry for this page. */
				mapped = !pte_present(pte) ||
					 pte_pfn(pte) == w->pfn;
				if (mapped)
					level = "pte";
			}
		}
	}

	rmc_fill_vma(rec, vma, w->path);
	rec->pid = rmc_mm_owner(vma->vm_mm, rec->comm);
	rec->has_addr = in_vma;
	rec->addr = addr;
	rec->state = mapped ? "mapped" : "visited";
	rec->level = level;

	if (!mapped) {
		w->visited++;
		rmc_print_vma(w->req, rec);
		return true;
	}
	w->found_mapped++;
	if (!w->hold_last) {
		w->mapped++;
		rmc_print_vma(w->req, rec);
		return true;
	}
	/* misreport: print the previous mapping VMA, hold back this one. */
	if (w->have_pending) {
		w->mapped++;
		rmc_print_vma(w->req, &w->pending);
	}
	w->pending = *rec;
	w->have_pending = true;
	return true;
}

/*
 * plant_warn: a WARN that only a scenario writing that byte triggers, so the
 * harness can test that a splat fails its own scenario and no other.  Called
 * with the folio locked and referenced.
 */
static void rmc_plant_warn(struct page *page)
{
	int want = READ_ONCE(plant_warn);
	u8 first;
	void *p;

	if (want <= 0 || want > 255)
		return;
	p = kmap_local_page(page);
	first = *(u8 *)p;
	kunmap_local(p);
	WARN(first == want, "rmapcheck: planted warning (first byte 0x%02x)\n",
	     first);
}

/*
 * Holds the caller's mmap read lock (the target mm) and folio reference,
 * and takes the folio lock.  Prints the page line, then rmap-walks the
 * folio.  Returns 0 or -EINTR.
 */
static int rmc_walk_folio(struct rmc_walk *w, struct folio *folio,
			  struct page *page, bool huge_zero)
{
	struct rmap_walk_control rwc = {
		.arg = w,
		.rmap_one = rmc_rmap_one,
	};
	struct address_space *mapping = NULL;
	const char *kind;
	bool walk = true, locked = false;
	char pmc[12] = "-";
	char ksmnode[12] = "";
	int n, mapcount;

	if (is_zero_pfn(w->pfn) || rmc_folio_is_huge_zero(folio, huge_zero)) {
		/* The zero pages are in no rmap; do not lock them. */
		kind = "zero";
		walk = false;
	} else {
		if (folio_lock_killable(folio))
			return -EINTR;
		locked = true;
		mapping = READ_ONCE(folio->mapping);
		if (folio_test_ksm(folio)) {
			kind = "ksm";
		} else if (folio_test_anon(folio)) {
			kind = "anon";
		} else {
			kind = mapping && shmem_mapping(mapping) ? "shmem"
								 : "file";
			/* Truncated, or a driver page: nothing to walk. */
			walk = !!mapping;
		}
	}

	mapcount = rmc_mapcount(folio, page);
	if (READ_ONCE(overcount) == 1 && folio_test_large(folio))
		mapcount++;
	n = rmc_page_mapcount(folio, page);
	if (n >= 0)
		snprintf(pmc, sizeof(pmc), "%d", n);
	/*
	 * A KSM folio whose mapping holds no stable node (break_cow() after a
	 * failed try_to_merge_two_pages()) is reached by no rmap_walk_ksm().
	 * The low two bits of ->mapping are the type flags on every kernel.
	 */
	if (locked && folio_test_ksm(folio))
		snprintf(ksmnode, sizeof(ksmnode), " ksmnode=%d",
			 ((unsigned long)mapping & ~3UL) != 0);
	/* refcount leaves out the reference this module holds. */
	pr_info("req=%llu page pfn=0x%lx order=%u kind=%s mapcount=%d pagemapcount=%s refcount=%d flags=0x%lx mcsem=%s head=0x%lx nr=%lu%s\n",
		w->req, w->pfn, folio_order(folio), kind, mapcount, pmc, folio_ref_count(folio) - 1,
		rmc_folio_flags(folio), RMC_MCSEM, folio_pfn(folio),
		(unsigned long)folio_nr_pages(folio), ksmnode);

	if (walk) {
		w->ksm = folio_test_ksm(folio);
		w->folio_pgoff = rmc_folio_pgoff(folio);
		w->pgoff = w->folio_pgoff + (w->pfn - folio_pfn(folio));
		w->hold_last = READ_ONCE(misreport) == 1;
		rmc_plant_warn(page);
		rmc_rmap_walk(folio, &rwc);
		if (w->have_pending && w->found_mapped < 3) {
			w->mapped++;
			rmc_print_vma(w->req, &w->pending);
		}
	}
	if (locked)
		folio_unlock(folio);
	return 0;
}

/*
 * Takes, in order: a task reference (dropped at once), mm_users
 * (get_task_mm), the mmap lock for read, a folio reference and, inside
 * rmc_walk_folio(), the folio lock; the mmap lock and mm_users are held
 * until the walk is over (see the top of this file for why).  Logs cmd,
 * page, vma..., end.
 */
static int rmc_findpage(u64 req, struct pid *pid, pid_t nr, unsigned long addr,
			const char *nopid_msg)
{
	struct task_struct *task;
	struct vm_area_struct *vma;
	struct mm_struct *mm;
	struct folio *folio;
	struct page *page = NULL;
	struct rmc_walk *w;
	bool huge_zero = false;
	int rc = 0;

	pr_info("req=%llu cmd=findpage pid=%d addr=0x%lx\n", req, nr, addr);
	if (!pid)
		return rmc_fail(req, -ESRCH, nopid_msg);
	task = get_pid_task(pid, PIDTYPE_PID);
	if (!task)
		return rmc_fail(req, -ESRCH, "nopid");
	mm = get_task_mm(task);
	put_task_struct(task);
	if (!mm)
		return rmc_fail(req, -ESRCH, "nomm");
	if (addr >= TASK_SIZE_MAX) {
		rc = rmc_fail(req, -EFAULT, "kernaddr");
		goto out_mm;
	}
	w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w) {
		rc = rmc_fail(req, -ENOMEM, "nomem");
		goto out_mm;
	}
	w->req = req;

	if (mmap_read_lock_killable(mm)) {
		rc = rmc_fail(req, -EINTR, "killed");
		goto out_free;
	}
	vma = vma_lookup(mm, addr);
	if (!vma) {
		mmap_read_unlock(mm);
		rc = rmc_fail(req, -EFAULT, "novma");
		goto out_free;
	}
	folio = rmc_lookup(vma, addr, &page, &huge_zero);
	if (!folio) {
		mmap_read_unlock(mm);
		pr_info("req=%llu page pfn=0x0 order=0 kind=none mapcount=0 pagemapcount=- refcount=0 flags=0x0 mcsem=%s head=- nr=-\n",
			req, RMC_MCSEM);
	} else {
		w->pfn = page_to_pfn(page);
		/* The mmap lock keeps the folio's anon_vma alive: hold it. */
		rc = rmc_walk_folio(w, folio, page, huge_zero);
		mmap_read_unlock(mm);
		folio_put(folio);
		if (rc) {
			rc = rmc_fail(req, rc, "killed");
			goto out_free;
		}
	}
	pr_info("req=%llu end rc=0 mapped=%d visited=%d\n",
		req, w->mapped, w->visited);
out_free:
	kfree(w);
out_mm:
	mmput(mm);
	return rc;
}

/*
 * Takes rmc_select_lock (to swap the selection), a task reference,
 * mm_users and the mmap lock for read while it lists the VMAs.
 */
static int rmc_findtask(u64 req, pid_t nr)
{
	struct vm_area_struct *vma;
	struct task_struct *task;
	struct rmc_vma_rec *rec;
	struct mm_struct *mm;
	struct pid *pid, *old;
	char comm[TASK_COMM_LEN];
	char *scratch;
	int n = 0;

	pr_info("req=%llu cmd=findtask pid=%d\n", req, nr);
	pid = find_get_pid(nr);
	task = pid ? get_pid_task(pid, PIDTYPE_PID) : NULL;
	if (!task) {
		put_pid(pid);
		return rmc_fail(req, -ESRCH, "nopid");
	}
	strscpy(comm, task->comm, sizeof(comm));
	rmc_sanitise(comm);
	mm = get_task_mm(task);
	put_task_struct(task);
	if (!mm) {
		put_pid(pid);
		return rmc_fail(req, -ESRCH, "nomm");
	}

	mutex_lock(&rmc_select_lock);
	old = rmc_selected;
	rmc_selected = pid;	/* the reference moves to the selection */
	mutex_unlock(&rmc_select_lock);
	put_pid(old);

	rec = kzalloc(sizeof(*rec), GFP_KERNEL);
	scratch = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!rec || !scratch) {
		kfree(rec);
		kfree(scratch);
		mmput(mm);
		return rmc_fail(req, -ENOMEM, "nomem");
	}
	if (mmap_read_lock_killable(mm)) {
		kfree(rec);
		kfree(scratch);
		mmput(mm);
		return rmc_fail(req, -EINTR, "killed");
	}
	{
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma)
			n++;
	}
	pr_info("req=%llu task pid=%d comm=%s vmas=%d\n", req, nr, comm, n);
	{
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma) {
			rmc_fill_vma(rec, vma, scratch);
			rec->pid = nr;
			strscpy(rec->comm, comm, sizeof(rec->comm));
			rec->has_addr = false;
			rec->state = "-";
			rec->level = "-";
			rmc_print_vma(req, rec);
		}
	}
	mmap_read_unlock(mm);
	mmput(mm);
	kfree(rec);
	kfree(scratch);
	pr_info("req=%llu end rc=0 mapped=0 visited=0\n", req);
	return 0;
}

/* No locks.  Parses a decimal pid > 0. */
static int rmc_parse_pid(const char *s, pid_t *nr)
{
	int v;

	if (kstrtoint(s, 10, &v) || v <= 0)
		return -EINVAL;
	*nr = v;
	return 0;
}

/* No locks.  Parses "<hex digits>" (the "0x" is already stripped). */
static int rmc_parse_addr(const char *s, unsigned long *addr)
{
	if (!*s || !isxdigit(*s))
		return -EINVAL;
	return kstrtoul(s, 16, addr);
}

/*
 * Takes rmc_select_lock briefly for findpage0x.  Parses @buf (NUL
 * terminated, at most RMC_MAX_CMD bytes, may be modified) and runs it.
 */
static int rmc_dispatch(char *buf, size_t len)
{
	char *tok[RMC_MAX_TOKENS + 1], *p = buf, *t;
	u64 req = 0;
	bool have_req = false;
	unsigned long addr;
	struct pid *pid;
	int ntok = 0, rc;
	pid_t nr;

	if (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (strlen(buf) != len) {
		req = atomic64_fetch_inc(&rmc_next_req);
		return rmc_fail(req, -EINVAL, "nul");
	}
	while ((t = strsep(&p, " ")) != NULL) {
		if (!*t)
			continue;
		if (ntok == RMC_MAX_TOKENS) {
			ntok++;
			break;
		}
		tok[ntok++] = t;
	}
	/* req= is the last word; honour it even when the rest is garbage. */
	if (ntok && ntok <= RMC_MAX_TOKENS &&
	    !strncmp(tok[ntok - 1], "req=", 4) &&
	    !kstrtou64(tok[ntok - 1] + 4, 10, &req)) {
		have_req = true;
		ntok--;
	}
	if (!have_req)
		req = atomic64_fetch_inc(&rmc_next_req);

	if (ntok == 1 && !strncmp(tok[0], "findtask", 8)) {
		if (rmc_parse_pid(tok[0] + 8, &nr))
			return rmc_fail(req, -EINVAL, "badpid");
		return rmc_findtask(req, nr);
	}
	if (ntok == 1 && !strncmp(tok[0], "findpage0x", 10)) {
		if (rmc_parse_addr(tok[0] + 10, &addr))
			return rmc_fail(req, -EINVAL, "badaddr");
		mutex_lock(&rmc_select_lock);
		pid = get_pid(rmc_selected);
		mutex_unlock(&rmc_select_lock);
		nr = pid ? pid_vnr(pid) : 0;
		rc = rmc_findpage(req, pid, nr, addr, "notask");
		put_pid(pid);
		return rc;
	}
	if (ntok == 3 && !strcmp(tok[0], "findpage")) {
		if (rmc_parse_pid(tok[1], &nr))
			return rmc_fail(req, -EINVAL, "badpid");
		if (strncmp(tok[2], "0x", 2) || rmc_parse_addr(tok[2] + 2, &addr))
			return rmc_fail(req, -EINVAL, "badaddr");
		pid = find_get_pid(nr);
		rc = rmc_findpage(req, pid, nr, addr, "nopid");
		put_pid(pid);
		return rc;
	}
	return rmc_fail(req, -EINVAL, "badcmd");
}

/* No locks held on entry; see rmc_dispatch(). */
static ssize_t rmc_write(struct file *file, const char __user *ubuf,
			 size_t count, loff_t *ppos)
{
	char buf[RMC_MAX_CMD + 1];
	int rc;

	if (count > RMC_MAX_CMD)
		return rmc_fail(atomic64_fetch_inc(&rmc_next_req), -E2BIG,
				"toolong");
	if (!count)
		return rmc_fail(atomic64_fetch_inc(&rmc_next_req), -EINVAL,
				"empty");
	if (copy_from_user(buf, ubuf, count))
		return rmc_fail(atomic64_fetch_inc(&rmc_next_req), -EFAULT,
				"copy");
	buf[count] = '\0';
	rc = rmc_dispatch(buf, count);
	return rc ? rc : count;
}

static const struct proc_ops rmc_proc_ops = {
	.proc_write = rmc_write,
	.proc_lseek = noop_llseek,
};

/* No locks.  Looks @name up in kallsyms; 0 when absent. */
static unsigned long rmc_resolve(const char *name)
{
	unsigned long addr = rmc_kallsyms_lookup_name(name);

	if (!addr)
		pr_err("symbol %s not found\n", name);
	return addr;
}

/*
 * No locks.  kallsyms_lookup_name() is not exported since 5.7; a kprobe
 * on it resolves its address, and it then resolves the rest.
 */
static int rmc_resolve_all(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	int ret;

	ret = register_kprobe(&kp);
	if (ret < 0) {
		pr_err("register_kprobe(kallsyms_lookup_name): %d\n", ret);
		return ret;
	}
	rmc_kallsyms_lookup_name = (void *)kp.addr;
	unregister_kprobe(&kp);
	if (!rmc_kallsyms_lookup_name)
		return -ENOENT;

	rmc_rmap_walk = (void *)rmc_resolve("rmap_walk");
	rmc_page_vma_mapped_walk = (void *)rmc_resolve("page_vma_mapped_walk");
	rmc_lookup_fn = (void *)rmc_resolve(RMC_LOOKUP_SYM);
	if (!rmc_rmap_walk || !rmc_page_vma_mapped_walk || !rmc_lookup_fn)
		return -ENOENT;
#ifdef RMC_LOOKUP_END_SYM
	rmc_lookup_end_fn = (void *)rmc_resolve(RMC_LOOKUP_END_SYM);
	if (!rmc_lookup_end_fn)
		return -ENOENT;
#endif
	return 0;
}

/* No locks.  Resolves the symbols, then creates /proc/mtest. */
static int __init rmc_init(void)
{
	int ret = rmc_resolve_all();

	if (ret)
		return ret;
	if (!proc_create("mtest", 0200, NULL, &rmc_proc_ops))
		return -ENOMEM;
	pr_info("loaded mcsem=%s lookup=%s\n", RMC_MCSEM, RMC_LOOKUP_SYM);
	return 0;
}

/* remove_proc_entry() waits for writers still inside rmc_write(). */
static void __exit rmc_exit(void)
{
	remove_proc_entry("mtest", NULL);
	put_pid(rmc_selected);
}

module_init(rmc_init);
module_exit(rmc_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("rmapcheck: reverse-mapping walker for the rmapcheck harness");

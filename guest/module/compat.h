/* SPDX-License-Identifier: GPL-2.0 */
/*
 * compat.h - every kernel-version-dependent branch of rmapcheck.ko.
 *
 * Supported: 6.1, 6.12, 7.2 and 7.3 (compiled and run against Debian's
 * builds of each).  Each branch says which kernel changed what.
 * rmapcheck.c holds no LINUX_VERSION_CODE test of its own.
 *
 * Symbols that are not exported are resolved at load time through
 * kallsyms (see rmc_resolve() in rmapcheck.c).  Their pointer types come
 * from the kernel's own prototypes via typeof(), so a prototype change
 * (a const added, say) follows automatically and kCFI type hashes match.
 */
#ifndef RMAPCHECK_COMPAT_H
#define RMAPCHECK_COMPAT_H

#include <linux/version.h>
#include <linux/mm.h>
#include <linux/huge_mm.h>
#include <linux/pgtable.h>
#include <linux/rmap.h>

/*
 * Built against kernel @v (a KERNEL_VERSION()) or later.  MAJOR and
 * PATCHLEVEL (all supported kernels have them) rather than
 * LINUX_VERSION_CODE: the sublevel is irrelevant here, and checkpatch
 * flags LINUX_VERSION_CODE, which only in-tree code can do without.
 */
#define RMC_SINCE(v)	\
	(KERNEL_VERSION(LINUX_VERSION_MAJOR, LINUX_VERSION_PATCHLEVEL, 0) >= (v))

#if RMC_SINCE(KERNEL_VERSION(6, 11, 0))
#include <linux/pagewalk.h>
#endif

/*
 * Folio flags word.  6.18 ("mm: introduce memdesc_flags_t") wrapped
 * page->flags and folio->flags in a struct { unsigned long f; }.
 */
#if RMC_SINCE(KERNEL_VERSION(6, 18, 0))
#define rmc_folio_flags(folio)	((folio)->flags.f)
#else
#define rmc_folio_flags(folio)	((folio)->flags)
#endif

/*
 * Page lookup: find the folio mapped at an address of a VMA and take a
 * reference on it.  The caller holds the mmap lock (read).  A hugetlb
 * VMA gives the exact page of its huge folio.
 *
 * 6.11 added folio_walk_start()/folio_walk_end() and 6.12 removed
 * follow_page(); neither is exported.  folio_walk_end() is a macro that
 * calls vma_pgtable_walk_end(), which is not exported either and drops
 * the hugetlb VMA lock that folio_walk_start() took; rmc_lookup()
 * open-codes the rest and calls it through kallsyms.
 */
#if RMC_SINCE(KERNEL_VERSION(6, 11, 0))
#define RMC_LOOKUP_SYM	"folio_walk_start"
#define RMC_LOOKUP_END_SYM	"vma_pgtable_walk_end"
static typeof(folio_walk_start) *rmc_lookup_fn;
static typeof(vma_pgtable_walk_end) *rmc_lookup_end_fn;

/*
 * Returns the folio with a reference held, and in *pagep the exact page,
 * or NULL.  Takes and drops the page table lock (inside folio_walk_start)
 * and, for PTE level, the RCU read lock that pte_offset_map() took.
 */
static inline struct folio *rmc_lookup(struct vm_area_struct *vma,
				       unsigned long addr,
				       struct page **pagep, bool *huge_zero)
{
	struct folio_walk fw;
	struct folio *folio;
	unsigned long size = PAGE_SIZE;

	folio = rmc_lookup_fn(&fw, vma, addr, FW_ZEROPAGE);
	if (!folio)
		return NULL;	/* folio_walk_start() dropped its locks */
	/*
	 * Without FW_MIGRATION, the only folio that folio_walk_start()
	 * returns without exposing its page is the huge zero folio.
	 */
	*huge_zero = !fw.page;
	if (fw.page) {
		*pagep = fw.page;
	} else {
		if (fw.level == FW_LEVEL_PMD)
			size = PMD_SIZE;
		*pagep = folio_page(folio,
				    min_t(unsigned long,
					  (addr & (size - 1)) >> PAGE_SHIFT,
					  folio_nr_pages(folio) - 1));
	}
	folio_get(folio);
	/* folio_walk_end(). */
	spin_unlock(fw.ptl);
	if (fw.level == FW_LEVEL_PTE)
		pte_unmap(fw.ptep);
	rmc_lookup_end_fn(vma);
	return folio;
}

static inline bool rmc_folio_is_huge_zero(struct folio *folio, bool huge_zero)
{
	return huge_zero;
}
#else
#define RMC_LOOKUP_SYM	"follow_page"
static typeof(follow_page) *rmc_lookup_fn;

/*
 * Before 6.11: follow_page() with FOLL_GET returns the exact page (the
 * small or huge zero page too) with a reference on its folio, NULL or
 * an ERR_PTR.  It takes and drops the page table lock itself.
 *
 * 6.1 to 6.4 treat a PROT_NONE PTE as a NUMA hinting fault and return
 * NULL unless FOLL_FORCE is given (gup_can_follow_protnone()); 6.5 made
 * follow_page() ignore NUMA hinting.  mprotect(PROT_NONE) pages are
 * mapped, so ask with FOLL_FORCE; without FOLL_WRITE it changes nothing
 * else.
 */
static inline struct folio *rmc_lookup(struct vm_area_struct *vma,
				       unsigned long addr,
				       struct page **pagep, bool *huge_zero)
{
	struct page *page = rmc_lookup_fn(vma, addr, FOLL_GET | FOLL_FORCE);

	*huge_zero = false;
	if (IS_ERR_OR_NULL(page))
		return NULL;
	*pagep = page;
	return page_folio(page);
}

/*
 * 6.1 keeps the huge zero page in the unexported huge_zero_page, and
 * Debian's 6.1 has CONFIG_KALLSYMS_ALL=n, so kallsyms cannot find it
 * either.  Recognise it instead: a large folio that is neither anon nor
 * in a page cache.  (A file THP being truncated this very moment looks
 * the same; that race only mislabels it as zero.)
 */
static inline bool rmc_folio_is_huge_zero(struct folio *folio, bool huge_zero)
{
	return folio_test_large(folio) && !folio_test_anon(folio) &&
	       !READ_ONCE(folio->mapping);
}
#endif

/*
 * Mapcount semantics (printed as mcsem=).
 *
 * 6.10 ("mm: track mapcount of large folios in single value") added
 * folio->_large_mapcount and made folio_mapcount() an inline that returns
 * the folio's total.  Before it the total came from an out-of-line
 * function (6.1: folio_mapcount(), not exported), so older kernels report
 * page_mapcount(): the page's own _mapcount plus the compound mapcount.
 *
 * 6.15 made the per-page _mapcount of large folios optional
 * (CONFIG_PAGE_MAPCOUNT, with CONFIG_MM_ID for the folio-level tracking)
 * and removed page_mapcount() (already gone in 6.12).  Where the per-page
 * count is kept we compute it as fs/proc's folio_precise_page_mapcount()
 * does; 6.10-6.14 keep it too but report folio_mapcount only.
 * rmc_page_mapcount() returns -1 where there is none (printed as "-").
 */
#if !RMC_SINCE(KERNEL_VERSION(6, 10, 0))
#define RMC_MCSEM	"page_mapcount"
static inline int rmc_mapcount(struct folio *folio, struct page *page)
{
	return page_mapcount(page);
}

static inline int rmc_page_mapcount(struct folio *folio, struct page *page)
{
	return page_mapcount(page);
}
#else
static inline int rmc_mapcount(struct folio *folio, struct page *page)
{
	return folio_mapcount(folio);
}

#if defined(CONFIG_PAGE_MAPCOUNT)
#define RMC_MCSEM	"folio_mapcount+page_mapcount"
static inline int rmc_page_mapcount(struct folio *folio, struct page *page)
{
	/* A page type (a negative value) counts as unmapped. */
	int mapcount = max(atomic_read(&page->_mapcount) + 1, 0);

	if (folio_test_large(folio))
		mapcount += folio_entire_mapcount(folio);
	return mapcount;
}
#else
/*
 * 6.15+ built with CONFIG_NO_PAGE_MAPCOUNT keeps no per-page count, and
 * /proc/kpagecount then gives the folio's average; 6.10-6.14 lack the
 * option and keep it.
 */
#if RMC_SINCE(KERNEL_VERSION(6, 15, 0))
#define RMC_MCSEM	"folio_mapcount:no_page_mapcount"
#else
#define RMC_MCSEM	"folio_mapcount"
#endif
static inline int rmc_page_mapcount(struct folio *folio, struct page *page)
{
	return -1;
}
#endif
#endif

/*
 * Page offset of a folio, and the page_vma_mapped_walk set up for it.
 *
 * Until 6.7 (hugetlb page cache moved to PAGE_SIZE indices),
 * folio_pgoff() called hugetlb_basepage_index(), which is not exported,
 * so DEFINE_FOLIO_VMA_WALK() does not link in a module.  A hugetlb
 * folio's index then counts huge pages (anon ones too:
 * linear_page_index() took linear_hugepage_index()), so shift it by the
 * folio's order as hugetlb_basepage_index() does for a head page.
 * Later kernels use the kernel's own macro, which may encode .pfn and
 * .flags (device-private folios, 7.x).
 */
#if !RMC_SINCE(KERNEL_VERSION(6, 7, 0))
static inline pgoff_t rmc_folio_pgoff(struct folio *folio)
{
	return folio_test_hugetlb(folio) ?
	       folio->index << folio_order(folio) : folio->index;
}

static inline struct page_vma_mapped_walk
rmc_folio_vma_walk(struct folio *folio, struct vm_area_struct *vma,
		   unsigned long address, int flags)
{
	struct page_vma_mapped_walk pvmw = {
		.pfn = folio_pfn(folio),
		.nr_pages = folio_nr_pages(folio),
		.pgoff = rmc_folio_pgoff(folio),
		.vma = vma,
		.address = address,
		.flags = flags,
	};

	return pvmw;
}

#define RMC_FOLIO_VMA_WALK(name, _folio, _vma, _address, _flags)	\
	struct page_vma_mapped_walk name =				\
		rmc_folio_vma_walk(_folio, _vma, _address, _flags)
#else
#define rmc_folio_pgoff(folio)	folio_pgoff(folio)
#define RMC_FOLIO_VMA_WALK(name, _folio, _vma, _address, _flags)	\
	DEFINE_FOLIO_VMA_WALK(name, _folio, _vma, _address, _flags)
#endif

/*
 * Page offset of the start of @vma in the space that @folio's index
 * counts in, for matching a folio to its address in @vma.
 *
 * 7.3 gave every VMA a separate anonymous page offset
 * (vma_start_anon_pgoff(), set at first fault) and indexes anon folios
 * by it; it differs from vm_pgoff in MAP_PRIVATE file-backed VMAs, whose
 * CoW copies would otherwise be looked for at the wrong address.  Before
 * 7.3 anon and file folios alike count in vm_pgoff.  The caller holds
 * the anon_vma or i_mmap lock that keeps @vma stable.
 */
#if RMC_SINCE(KERNEL_VERSION(7, 3, 0))
static inline pgoff_t rmc_vma_pgoff(struct vm_area_struct *vma,
				    struct folio *folio)
{
	return folio_test_anon(folio) ? vma_start_anon_pgoff(vma) :
					vma_start_pgoff(vma);
}
#else
static inline pgoff_t rmc_vma_pgoff(struct vm_area_struct *vma,
				    struct folio *folio)
{
	return vma->vm_pgoff;
}
#endif

#endif /* RMAPCHECK_COMPAT_H */

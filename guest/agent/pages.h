/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pages.c: what a process's pagemap and memory say about its pages: pfns,
 * swap entries, exclusivity, large folios and contents tokens.
 */
#ifndef RMC_PAGES_H
#define RMC_PAGES_H

#include "proctable.h"

#define PFN_MASK		((1ULL << 55) - 1)
#define PM_PRESENT		(1ULL << 63)
#define PM_SWAP			(1ULL << 62)
#define PM_MMAP_EXCLUSIVE	(1ULL << 56)

/* What add_pages gathers besides the pfns; a NULL sbuf is not asked for. */
struct page_lists {
	struct sbuf *data, *swap, *excl;
	struct sbuf *folio;	/* h: a large folio's head, t: a tail, -: neither */
	int npresent, nswap, nexcl, nlarge;
};

void tokens_forget(void);
int add_pfns(struct ctx *c, struct sbuf *sb, const struct proc *p,
	     uint64_t addr, uint64_t count, const uint8_t *bits,
	     struct sbuf *data);
int add_pages(struct ctx *c, struct sbuf *sb, const struct proc *p,
	      uint64_t addr, uint64_t count, const uint8_t *bits,
	      struct page_lists *l);

#endif

// SPDX-License-Identifier: GPL-2.0
/*
 * Ops that make and change mappings: mmap, munmap, mprotect, madvise, mremap,
 * and truncate and punch, which change the file under one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>

#include "handlers.h"
#include "request.h"

#ifndef MADV_COLD
#define MADV_COLD	20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif

int op_mmap(struct ctx *c)
{
	static const struct named backings[] = {
		{ "anon", B_ANON }, { "devzero", B_DEVZERO },
		{ "memfd", B_MEMFD }, { "file", B_FILE },
		{ "hugetlb", B_HUGETLB }, { "hugetlbfs", B_HUGETLBFS },
		{ "memfd", B_MEMFD }, { "file", B_FILE }, { "ext4", B_EXT4 },
		{ NULL, 0 }
	};
	static const struct named shares[] = {
		{ "private", 0 }, { "shared", 1 }, { NULL, 0 }
	};
	struct wrep ans;
	struct wreq q;
	struct proc *p;
	const char *s;
	uint64_t v;
	int rc;

	rc = req_map(c, &q, W_MMAP);
	if (rc)
		return rc;
	if (num(c, "pages", REQUIRED, MAX_MAP_PAGES, &q.pages) || !q.pages)
		return bad(c, "pages");
	q.backing = pick(kv_get(c->req, "backing"), backings);
	if (q.backing < 0)
		return bad(c, "backing");
	if (q.backing == B_HUGETLB || q.backing == B_HUGETLBFS)
		hugetlb_pool(1);
	q.shared = pick(kv_get(c->req, "share"), shares);
	if (q.shared < 0)
		return bad(c, "share");
	if (num(c, "locked", 0, 1, &v))
		return bad(c, "locked");
	q.locked = v;
	if (kv_get(c->req, "huge")) {
		if (num(c, "huge", 0, 1, &v))
			return bad(c, "huge");
		q.huge = v;
	}
	s = kv_get(c->req, "at_map");
	if (s) {
		if (!valid_name(s))
			return bad(c, "at_map");
		snprintf(q.at_map, sizeof(q.at_map), "%s", s);
		q.has_at = 1;
	}
	s = kv_get(c->req, "at");
	if (s && (!q.has_at || parse_i64(s, &q.at) ||
		  q.at > (int64_t)max_pages() || q.at < -(int64_t)max_pages()))
		return bad(c, "at");
	s = kv_get(c->req, "align");
	if (s) {
		/* Less than one PMD either side of a boundary. */
		int64_t pmd_pages = page_size / 8;

		if (q.has_at || parse_i64(s, &q.align) ||
		    q.align >= pmd_pages || q.align <= -pmd_pages)
			return bad(c, "align");
		q.has_align = 1;
	}
	rc = req_proc(c, &p);
	if (rc)
		return rc;
	if (q.backing == B_EXT4 && !blockfs_ready())
		return fail(c, ENODEV, "no-blockfs");
	if (q.backing == B_FILE || q.backing == B_EXT4)
		tmp_files_made();
	rc = wcall(c, p, &q, &ans);
	if (rc)
		return rc;
	sb_add(c->fields, " addr=");
	sb_hex(c->fields, ans.addr);
	return 0;
}

/* Ops that send one request about a range of a map, with nothing back. */
static int range_op(struct ctx *c, struct wreq *q)
{
	struct proc *p;
	int rc;

	rc = req_pages(c, q, REQUIRED, max_pages());
	if (!rc)
		rc = req_proc(c, &p);
	return rc ? rc : wcall(c, p, q, NULL);
}

int op_munmap(struct ctx *c)
{
	struct wreq q;
	int rc = req_map(c, &q, W_MUNMAP);

	return rc ? rc : range_op(c, &q);
}

int op_mprotect(struct ctx *c)
{
	static const struct named prots[] = {
		{ "none", PROT_NONE },
		{ "r", PROT_READ },
		{ "rw", PROT_READ | PROT_WRITE },
		{ "rx", PROT_READ | PROT_EXEC },
		{ "rwx", PROT_READ | PROT_WRITE | PROT_EXEC },
		{ NULL, 0 }
	};
	struct wreq q;
	int rc = req_map(c, &q, W_MPROTECT);

	if (rc)
		return rc;
	q.prot = pick(kv_get(c->req, "prot"), prots);
	if (q.prot < 0)
		return bad(c, "prot");
	return range_op(c, &q);
}

int op_madvise(struct ctx *c)
{
	static const struct named advice[] = {
		{ "dontneed", MADV_DONTNEED },
		{ "dontfork", MADV_DONTFORK },
		{ "dofork", MADV_DOFORK },
		{ "wipeonfork", MADV_WIPEONFORK },
		{ "keeponfork", MADV_KEEPONFORK },
		{ "mergeable", MADV_MERGEABLE },
		{ "unmergeable", MADV_UNMERGEABLE },
		{ "hugepage", MADV_HUGEPAGE },
		{ "nohugepage", MADV_NOHUGEPAGE },
		{ "collapse", MADV_COLLAPSE },
		{ "pageout", MADV_PAGEOUT },
		{ "cold", MADV_COLD },
		{ "free", MADV_FREE },
		{ "remove", MADV_REMOVE },
		{ NULL, 0 }
	};
	struct wreq q;
	struct proc *p;
	int rc;

	rc = req_map(c, &q, W_MADVISE);
	if (rc)
		return rc;
	q.advice = pick(kv_get(c->req, "advice"), advice);
	if (q.advice < 0)
		return bad(c, "advice");
	rc = range_op(c, &q);
	if (rc)
		return rc;
	/* p is still live: the worker answered. */
	if (q.advice == MADV_MERGEABLE && !req_proc(c, &p))
		p->mergeable = 1;
	return 0;
}

/* mremap's optional range (page, count), place (to, to_map) and new name. */
static int mremap_place(struct ctx *c, struct wreq *q)
{
	const char *s;
	uint64_t v;

	if (kv_get(c->req, "page")) {
		if (num(c, "page", REQUIRED, MAX_MAP_PAGES, &q->page))
			return bad(c, "page");
		if (num(c, "count", REQUIRED, MAX_MAP_PAGES, &q->count) ||
		    !q->count)
			return bad(c, "count");
		q->has_range = 1;
	} else if (kv_get(c->req, "count")) {
		return bad(c, "count");
	}
	s = kv_get(c->req, "to_map");
	if (s) {
		if (!valid_name(s))
			return bad(c, "to_map");
		snprintf(q->to_map, sizeof(q->to_map), "%s", s);
		q->has_to = 1;
	}
	s = kv_get(c->req, "to");
	if (!s != !q->has_to ||
	    (s && (parse_i64(s, &q->to) || q->to > (int64_t)max_pages() ||
		   q->to < -(int64_t)max_pages())))
		return bad(c, "to");
	if (num(c, "over", 0, 1, &v) || (v && !q->has_to))
		return bad(c, "over");
	q->over = v;
	if (num(c, "into", 0, 1, &v) || (v && !q->over))
		return bad(c, "into");
	q->into = v;
	s = kv_get(c->req, "as");
	if (s) {
		if (!valid_name(s) || q->into)
			return bad(c, "as");
		snprintf(q->as, sizeof(q->as), "%s", s);
	}
	return 0;
}

int op_mremap(struct ctx *c)
{
	struct wrep ans;
	struct wreq q;
	struct proc *p;
	uint64_t v;
	int rc;

	rc = req_map(c, &q, W_MREMAP);
	if (rc)
		return rc;
	if (num(c, "pages", REQUIRED, MAX_MAP_PAGES, &q.pages) || !q.pages)
		return bad(c, "pages");
	if (num(c, "move", 0, 1, &v))
		return bad(c, "move");
	q.move = v;
	if (num(c, "dontunmap", 0, 1, &v))
		return bad(c, "dontunmap");
	q.dontunmap = v;
	rc = mremap_place(c, &q);
	if (rc)
		return rc;
	rc = req_proc(c, &p);
	if (!rc)
		rc = wcall(c, p, &q, &ans);
	if (rc)
		return rc;
	sb_add(c->fields, " addr=");
	sb_hex(c->fields, ans.addr);
	sb_add(c->fields, " old=");
	sb_hex(c->fields, ans.old);
	return 0;
}

int op_truncate(struct ctx *c)
{
	struct wreq q;
	struct proc *p;
	int rc = req_map(c, &q, W_TRUNCATE);

	if (rc)
		return rc;
	if (num(c, "pages", REQUIRED, MAX_MAP_PAGES, &q.pages))
		return bad(c, "pages");
	rc = req_proc(c, &p);
	return rc ? rc : wcall(c, p, &q, NULL);
}

int op_punch(struct ctx *c)
{
	struct wreq q;
	int rc = req_map(c, &q, W_PUNCH);

	return rc ? rc : range_op(c, &q);
}

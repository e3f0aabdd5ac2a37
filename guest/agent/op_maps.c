// SPDX-License-Identifier: GPL-2.0
/* Ops that make and change mappings: mmap, munmap, mprotect, madvise, mremap. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>

#include "ops.h"

#ifndef MADV_COLD
#define MADV_COLD	20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif

int op_mmap(const struct req *r)
{
	static const struct named backings[] = {
		{ "anon", B_ANON }, { "devzero", B_DEVZERO },
		{ "memfd", B_MEMFD }, { "file", B_FILE }, { NULL, 0 }
	};
	static const struct named shares[] = {
		{ "private", 0 }, { "shared", 1 }, { NULL, 0 }
	};
	struct wreq q;
	struct proc *p;
	const char *s;
	uint64_t v;

	if (req_map(r, &q, W_MMAP))
		return -1;
	if (num(r, "pages", REQUIRED, MAX_MAP_PAGES, &q.pages) || !q.pages)
		return bad(r, "pages");
	q.backing = pick(kv_get(r, "backing"), backings);
	if (q.backing < 0)
		return bad(r, "backing");
	q.shared = pick(kv_get(r, "share"), shares);
	if (q.shared < 0)
		return bad(r, "share");
	if (num(r, "locked", 0, 1, &v))
		return bad(r, "locked");
	q.locked = v;
	if (kv_get(r, "huge")) {
		if (num(r, "huge", 0, 1, &v))
			return bad(r, "huge");
		q.huge = v;
	}
	s = kv_get(r, "at_map");
	if (s) {
		if (!valid_name(s))
			return bad(r, "at_map");
		snprintf(q.at_map, sizeof(q.at_map), "%s", s);
		q.has_at = 1;
	}
	s = kv_get(r, "at");
	if (s && (!q.has_at || parse_i64(s, &q.at) ||
		  q.at > (int64_t)max_pages || q.at < -(int64_t)max_pages))
		return bad(r, "at");
	p = req_proc(r);
	if (!p)
		return -1;
	tmp_dirty |= q.backing == B_FILE;
	if (wcall(p, &q, -1))
		return -1;
	sb_add(&reply_fields, " addr=");
	sb_hex(&reply_fields, wr.addr);
	return 0;
}

/* Ops that send one request about a range of a map, with nothing back. */
static int range_op(const struct req *r, struct wreq *q)
{
	struct proc *p;

	if (req_pages(r, q, REQUIRED, max_pages))
		return -1;
	p = req_proc(r);
	if (!p || wcall(p, q, -1))
		return -1;
	return 0;
}

int op_munmap(const struct req *r)
{
	struct wreq q;

	if (req_map(r, &q, W_MUNMAP))
		return -1;
	return range_op(r, &q);
}

int op_mprotect(const struct req *r)
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

	if (req_map(r, &q, W_MPROTECT))
		return -1;
	q.prot = pick(kv_get(r, "prot"), prots);
	if (q.prot < 0)
		return bad(r, "prot");
	return range_op(r, &q);
}

int op_madvise(const struct req *r)
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
		{ NULL, 0 }
	};
	struct wreq q;
	struct proc *p;
	int rc;

	if (req_map(r, &q, W_MADVISE))
		return -1;
	q.advice = pick(kv_get(r, "advice"), advice);
	if (q.advice < 0)
		return bad(r, "advice");
	rc = range_op(r, &q);
	if (rc)
		return rc;
	p = q.advice == MADV_MERGEABLE ? req_proc(r) : NULL;
	if (p)
		p->mergeable = 1;
	return 0;
}

int op_mremap(const struct req *r)
{
	struct wreq q;
	struct proc *p;
	uint64_t v;

	if (req_map(r, &q, W_MREMAP))
		return -1;
	if (num(r, "pages", REQUIRED, MAX_MAP_PAGES, &q.pages) || !q.pages)
		return bad(r, "pages");
	if (num(r, "move", 0, 1, &v))
		return bad(r, "move");
	q.move = v;
	if (num(r, "dontunmap", 0, 1, &v))
		return bad(r, "dontunmap");
	q.dontunmap = v;
	p = req_proc(r);
	if (!p || wcall(p, &q, -1))
		return -1;
	sb_add(&reply_fields, " addr=");
	sb_hex(&reply_fields, wr.addr);
	sb_add(&reply_fields, " old=");
	sb_hex(&reply_fields, wr.old);
	return 0;
}

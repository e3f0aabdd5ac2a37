// SPDX-License-Identifier: GPL-2.0
/* Ops that touch memory and report pfns: write, read, pagemap, poke. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handlers.h"
#include "pages.h"
#include "request.h"

/* At most this many pages of contents in a read reply (keeps it < 64 KiB). */
#define MAX_DATA_PAGES	1024

/*
 * write and read: touch the pages in the worker, then report their pfns; a
 * read also reports what the pages hold.
 */
static int touch_op(struct ctx *c, struct wreq *q)
{
	static struct sbuf data;
	struct wrep ans;
	struct proc *p;
	int with_data, rc;

	rc = req_pages(c, q, 1, MAX_IO_PAGES);
	if (!rc)
		rc = req_proc(c, &p);
	if (!rc)
		rc = wcall(c, p, q, &ans);
	if (rc)
		return rc;
	with_data = q->op == W_READ && ans.count <= MAX_DATA_PAGES;
	data.len = 0;
	tokens_forget();
	sb_add(c->fields, " pfns=");
	rc = add_pfns(c, c->fields, p, ans.addr, ans.count, NULL,
		      with_data ? &data : NULL);
	if (rc)
		return rc;
	if (with_data) {
		sb_add(c->fields, " data=");
		sb_addn(c->fields, data.p, data.len);
	}
	return 0;
}

int op_write(struct ctx *c)
{
	struct wreq q;
	uint64_t v;
	int rc = req_map(c, &q, W_WRITE);

	if (rc)
		return rc;
	if (num(c, "value", 1, 255, &v))
		return bad(c, "value");
	q.value = v;
	if (num(c, "offset", 0, page_size - 1, &q.offset))
		return bad(c, "offset");
	if (num(c, "bytes", 0, 1, &v))
		return bad(c, "bytes");
	q.one_byte = v;
	if (num(c, "tag", 0, 1, &v))
		return bad(c, "tag");
	q.tag = v;
	return touch_op(c, &q);
}

int op_read(struct ctx *c)
{
	struct wreq q;
	int rc = req_map(c, &q, W_READ);

	return rc ? rc : touch_op(c, &q);
}

int op_pagemap(struct ctx *c)
{
	uint64_t with_data;

	if (num(c, "data", 0, 1, &with_data))
		return bad(c, "data");
	return pagemap_lines(c, with_data);
}

/* One VMA of /proc/PID/maps: what the layout oracle (O6) compares. */
struct mvma {
	uint64_t start, end, pgoff, ino;
	char perms[5];
};

#define MAX_MVMAS	1024

/* Every VMA of p, from one read of /proc/PID/maps; -1 when p is gone. */
static int read_vmas(const struct proc *p, struct mvma *v, int *nv)
{
	char path[48], *buf, *line, *save = NULL;

	snprintf(path, sizeof(path), "/proc/%d/maps", p->pid);
	buf = slurp(path);
	if (!buf)
		return -1;
	*nv = 0;
	for (line = strtok_r(buf, "\n", &save); line && *nv < MAX_MVMAS;
	     line = strtok_r(NULL, "\n", &save)) {
		struct mvma *m = &v[*nv];
		unsigned long long start, end, off, ino;
		unsigned int maj, min;

		if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu", &start, &end,
			   m->perms, &off, &maj, &min, &ino) != 7)
			continue;
		m->start = start;
		m->end = end;
		m->pgoff = off / page_size;
		m->ino = ino;
		(*nv)++;
	}
	free(buf);
	return 0;
}

/*
 * " vmas=" and the VMAs over one map, clipped to it, as page indexes into
 * the map: "lo-hi:rw-p:<pgoff at lo, hex>:<inode, hex>:<b|e|be|->",
 * comma-separated.  The last field says whether the VMA begins before the
 * map or ends after it: merged with a neighbouring map.
 */
static void add_vmas(struct sbuf *out, const struct mvma *v, int nv,
		     uint64_t addr, uint64_t pages)
{
	uint64_t end = addr + pages * page_size;
	int i, first = 1;

	sb_add(out, " vmas=");
	for (i = 0; i < nv; i++) {
		uint64_t lo = v[i].start > addr ? v[i].start : addr;
		uint64_t hi = v[i].end < end ? v[i].end : end;

		if (lo >= hi)
			continue;
		sb_printf(out, "%s%llu-%llu:%s:%llx:%llx:%s%s%s", first ? "" : ",",
			  (unsigned long long)((lo - addr) / page_size),
			  (unsigned long long)((hi - addr) / page_size),
			  v[i].perms,
			  (unsigned long long)(v[i].pgoff +
					       (lo - v[i].start) / page_size),
			  (unsigned long long)v[i].ino,
			  v[i].start < addr ? "b" : "", v[i].end > end ? "e" : "",
			  v[i].start < addr || v[i].end > end ? "" : "-");
		first = 0;
	}
	if (first)
		sb_add(out, "-");
}

/* pagemap's D lines: every map of every live process (see op_pagemap). */
int pagemap_lines(struct ctx *c, int with_data)
{
	static struct sbuf data, swap, excl, folio;
	static struct mvma vmas[MAX_MVMAS];
	struct page_lists l = { .swap = &swap, .excl = &excl, .folio = &folio };
	const struct wrep *t;
	struct proc *p;
	uint32_t m;
	int rc, nv;

	tokens_forget();
	for (p = proc_next(NULL); p; p = proc_next(p)) {
		rc = proc_table(c, p, &t);
		if (rc && !proc_live(p))
			continue;	/* died meanwhile: not live, no lines */
		if (rc)
			return rc;
		if (read_vmas(p, vmas, &nv))
			nv = -1;	/* died meanwhile: no vmas= */
		/* A process without maps is still live: name it. */
		if (!t->nmaps)
			sb_printf(c->data, "D proc=%s pid=%d\n", p->label,
				  p->pid);
		for (m = 0; m < t->nmaps && m < MAX_MAPS; m++) {
			const struct wmapinfo *mi = &t->maps[m];
			const uint8_t *bits = NULL;

			if (mi->bits_off != ALL_MAPPED &&
			    mi->bits_off + (mi->pages + 7) / 8 <= t->nbits)
				bits = t->bits + mi->bits_off;
			sb_printf(c->data, "D proc=%s pid=%d name=%.*s addr=",
				  p->label, p->pid, NAME_LEN - 1, mi->name);
			sb_hex(c->data, mi->addr);
			sb_printf(c->data, " pages=%llu pfns=",
				  (unsigned long long)mi->pages);
			data.len = 0;
			swap.len = 0;
			excl.len = 0;
			folio.len = 0;
			l.data = with_data ? &data : NULL;
			l.nswap = 0;
			l.nexcl = 0;
			l.nlarge = 0;
			rc = add_pages(c, c->data, p, mi->addr, mi->pages,
				       bits, &l);
			if (rc)
				return rc;
			/* Only when some page has them: most maps have none. */
			if (l.nswap) {
				sb_add(c->data, " swap=");
				sb_addn(c->data, swap.p, swap.len);
			}
			if (l.nexcl) {
				sb_add(c->data, " excl=");
				sb_addn(c->data, excl.p, excl.len);
			}
			if (l.nlarge) {
				sb_add(c->data, " folio=");
				sb_addn(c->data, folio.p, folio.len);
			}
			if (with_data) {
				sb_add(c->data, " data=");
				sb_addn(c->data, data.p, data.len);
			}
			if (nv >= 0)
				add_vmas(c->data, vmas, nv, mi->addr,
					 mi->pages);
			sb_addn(c->data, "\n", 1);
			if (c->data->len > MAX_REPLY)
				return fail(c, E2BIG, "reply-too-big");
		}
	}
	return 0;
}

/*
 * Test only: changes one byte in the middle of a page behind the model's
 * back, from the controller through /proc/PID/mem (as a debugger would). A
 * page pagemap says is absent is left alone, so no mapping changes.
 */
int op_poke(struct ctx *c)
{
	struct page_at at;
	struct wreq q;
	struct proc *p;
	uint64_t ent = 0, v;
	uint8_t byte;
	ssize_t n;
	int rc;

	rc = req_page(c, &q);
	if (rc)
		return rc;
	if (num(c, "value", 0xee, 255, &v))
		return bad(c, "value");
	rc = req_proc(c, &p);
	if (!rc)
		rc = proc_lookup(c, p, &q, 1, &at);
	if (rc)
		return rc;
	n = pread(p->pagemap, &ent, 8, at.addr / page_size * 8);
	if (n != 8)
		return fail(c, n < 0 ? errno : EIO, "pagemap");
	if (!(ent & PM_PRESENT) || !at.mapped) {
		sb_add(c->fields, " poked=0");
		return 0;
	}
	byte = v;
	if (pwrite(p->mem, &byte, 1, at.addr + page_size / 2) != 1)
		return fail(c, errno, "poke");
	sb_add(c->fields, " poked=1");
	return 0;
}

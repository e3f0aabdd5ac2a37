// SPDX-License-Identifier: GPL-2.0
/* Ops that touch memory and report pfns: write, read, pagemap, poke. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "ops.h"

/* At most this many pages of contents in a read reply (keeps it < 64 KiB). */
#define MAX_DATA_PAGES	1024

/*
 * write and read: touch the pages in the worker, then report their pfns; a
 * read also reports what the pages hold.
 */
static int touch_op(const struct req *r, struct wreq *q)
{
	static struct sbuf data;
	struct proc *p;
	int with_data;

	if (req_pages(r, q, 1, MAX_IO_PAGES))
		return -1;
	p = req_proc(r);
	if (!p || wcall(p, q, -1))
		return -1;
	with_data = q->op == W_READ && wr.count <= MAX_DATA_PAGES;
	data.len = 0;
	tokens_forget();
	sb_add(&reply_fields, " pfns=");
	if (add_pfns(&reply_fields, p, wr.addr, wr.count, NULL,
		     with_data ? &data : NULL))
		return -1;
	if (with_data) {
		sb_add(&reply_fields, " data=");
		sb_addn(&reply_fields, data.p, data.len);
	}
	return 0;
}

int op_write(const struct req *r)
{
	struct wreq q;
	uint64_t v;

	if (req_map(r, &q, W_WRITE))
		return -1;
	if (num(r, "value", 1, 255, &v))
		return bad(r, "value");
	q.value = v;
	if (num(r, "offset", 0, page_size - 1, &q.offset))
		return bad(r, "offset");
	if (num(r, "bytes", 0, 1, &v))
		return bad(r, "bytes");
	q.one_byte = v;
	if (num(r, "tag", 0, 1, &v))
		return bad(r, "tag");
	q.tag = v;
	return touch_op(r, &q);
}

int op_read(const struct req *r)
{
	struct wreq q;

	if (req_map(r, &q, W_READ))
		return -1;
	return touch_op(r, &q);
}

int op_pagemap(const struct req *r)
{
	uint64_t with_data;

	if (num(r, "data", 0, 1, &with_data))
		return bad(r, "data");
	return pagemap_lines(with_data);
}

/* pagemap's D lines: every map of every live process (see op_pagemap). */
int pagemap_lines(int with_data)
{
	static struct sbuf data, swap, excl, folio;
	struct page_lists l = { .swap = &swap, .excl = &excl, .folio = &folio };
	const struct wrep *t;
	int i = 0, rc;
	uint32_t m;

	tokens_forget();
	while (i < nprocs) {
		struct proc *p = &procs[i];

		rc = proc_table(p, &t);
		if (rc == -2) {
			reply_err = 0;	/* died meanwhile: not live, no lines */
			continue;
		}
		if (rc)
			return -1;
		/* A process without maps is still live: name it. */
		if (!t->nmaps)
			sb_printf(&reply_data, "D proc=%s pid=%d\n", p->label,
				  p->pid);
		for (m = 0; m < t->nmaps && m < MAX_MAPS; m++) {
			const struct wmapinfo *mi = &t->maps[m];
			const uint8_t *bits = NULL;

			if (mi->bits_off != ALL_MAPPED &&
			    mi->bits_off + (mi->pages + 7) / 8 <= t->nbits)
				bits = t->bits + mi->bits_off;
			sb_printf(&reply_data, "D proc=%s pid=%d name=%.*s addr=",
				  p->label, p->pid, NAME_LEN - 1, mi->name);
			sb_hex(&reply_data, mi->addr);
			sb_printf(&reply_data, " pages=%llu pfns=",
				  (unsigned long long)mi->pages);
			data.len = 0;
			swap.len = 0;
			excl.len = 0;
			folio.len = 0;
			l.data = with_data ? &data : NULL;
			l.nswap = 0;
			l.nexcl = 0;
			l.nlarge = 0;
			if (add_pages(&reply_data, p, mi->addr, mi->pages, bits,
				      &l))
				return -1;
			/* Only when some page has them: most maps have none. */
			if (l.nswap) {
				sb_add(&reply_data, " swap=");
				sb_addn(&reply_data, swap.p, swap.len);
			}
			if (l.nexcl) {
				sb_add(&reply_data, " excl=");
				sb_addn(&reply_data, excl.p, excl.len);
			}
			if (l.nlarge) {
				sb_add(&reply_data, " folio=");
				sb_addn(&reply_data, folio.p, folio.len);
			}
			if (with_data) {
				sb_add(&reply_data, " data=");
				sb_addn(&reply_data, data.p, data.len);
			}
			sb_addn(&reply_data, "\n", 1);
			if (reply_data.len > MAX_REPLY)
				return fail(E2BIG, "reply-too-big");
		}
		i++;
	}
	return 0;
}

/*
 * Test only: changes one byte in the middle of a page behind the model's
 * back, from the controller through /proc/PID/mem (as a debugger would). A
 * page pagemap says is absent is left alone, so no mapping changes.
 */
int op_poke(const struct req *r)
{
	struct wreq q;
	struct proc *p;
	uint64_t ent = 0, v;
	uint8_t byte;
	ssize_t n;

	if (req_map(r, &q, 0))
		return -1;
	if (num(r, "page", REQUIRED, max_pages, &q.page))
		return bad(r, "page");
	if (num(r, "value", 0xee, 255, &v))
		return bad(r, "value");
	p = req_proc(r);
	if (!p || proc_lookup(p, &q, 1))
		return -1;
	n = pread(p->pagemap, &ent, 8, wr.addr / page_size * 8);
	if (n != 8)
		return fail(n < 0 ? errno : EIO, "pagemap");
	if (!(ent & PM_PRESENT) || !wr.mapped) {
		sb_add(&reply_fields, " poked=0");
		return 0;
	}
	byte = v;
	if (pwrite(p->mem, &byte, 1, wr.addr + page_size / 2) != 1)
		return fail(errno, "poke");
	sb_add(&reply_fields, " poked=1");
	return 0;
}

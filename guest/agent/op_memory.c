// SPDX-License-Identifier: GPL-2.0
/* Ops that touch memory and report pfns: write, read, pagemap. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>

#include "ops.h"

/* write and read: touch the pages in the worker, then report their pfns. */
static int touch_op(const struct req *r, struct wreq *q)
{
	struct proc *p;

	if (req_pages(r, q, 1, MAX_IO_PAGES))
		return -1;
	p = req_proc(r);
	if (!p || wcall(p, q, -1))
		return -1;
	sb_add(&reply_fields, " pfns=");
	return add_pfns(&reply_fields, p, wr.addr, wr.count, NULL);
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
	struct wreq q = { .op = W_LIST, .huge = -1 };
	int i = 0, rc;
	uint32_t m;

	(void)r;
	while (i < nprocs) {
		struct proc *p = &procs[i];

		rc = wcall(p, &q, -1);
		if (rc == -2) {
			reply_err = 0;	/* died meanwhile: not live, no lines */
			continue;
		}
		if (rc)
			return -1;
		/* A process without maps is still live: name it. */
		if (!wr.nmaps)
			sb_printf(&reply_data, "D proc=%s pid=%d\n", p->label,
				  p->pid);
		for (m = 0; m < wr.nmaps && m < MAX_MAPS; m++) {
			const struct wmapinfo *mi = &wr.maps[m];
			const uint8_t *bits = NULL;

			if (mi->bits_off != ALL_MAPPED &&
			    mi->bits_off + (mi->pages + 7) / 8 <= wr.nbits)
				bits = wr.bits + mi->bits_off;
			sb_printf(&reply_data, "D proc=%s pid=%d name=%.*s addr=",
				  p->label, p->pid, NAME_LEN - 1, mi->name);
			sb_hex(&reply_data, mi->addr);
			sb_printf(&reply_data, " pages=%llu pfns=",
				  (unsigned long long)mi->pages);
			if (add_pfns(&reply_data, p, mi->addr, mi->pages, bits))
				return -1;
			sb_addn(&reply_data, "\n", 1);
			if (reply_data.len > MAX_REPLY)
				return fail(E2BIG, "reply-too-big");
		}
		i++;
	}
	return 0;
}

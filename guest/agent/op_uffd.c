// SPDX-License-Identifier: GPL-2.0
/* userfaultfd: the worker does it (uffd.c), on its own maps. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "request.h"
#include "uffd.h"

/* uffd proc name [page count] kind [mode value tag to at on] */
int op_uffd(struct ctx *c)
{
	static const struct named kinds[] = {
		{ "register", U_REGISTER }, { "copy", U_COPY },
		{ "zeropage", U_ZEROPAGE }, { "move", U_MOVE }, { "wp", U_WP },
		{ NULL, 0 },
	};
	static const struct named modes[] = {
		{ "missing", 1 }, { "wp", 2 }, { "both", 3 }, { NULL, 0 },
	};
	int kind = pick(kv_get(c->req, "kind"), kinds);
	uint64_t v = 0;
	struct wrep ans;
	struct wreq q;
	struct proc *p;
	int rc;

	if (kind < 0)
		return bad(c, "kind");
	rc = req_map(c, &q, W_UFFD);
	if (rc)
		return rc;
	q.advice = kind;
	if (kind == U_REGISTER) {
		q.prot = pick(kv_get(c->req, "mode"), modes);
		if (q.prot < 0)
			return bad(c, "mode");
		q.count = 1;
	} else if (req_pages(c, &q, 1, max_pages())) {
		return -1;
	}
	if (num(c, "value", 0, 255, &v))
		return bad(c, "value");
	q.value = v;
	if (num(c, "tag", 0, 1, &v))
		return bad(c, "tag");
	q.tag = v;
	if (num(c, "on", 0, 1, &v))
		return bad(c, "on");
	q.move = v;
	if (kind == U_MOVE) {
		const char *to = kv_get(c->req, "to");

		if (!to || !valid_name(to))
			return bad(c, "to");
		snprintf(q.to_map, sizeof(q.to_map), "%s", to);
		if (num(c, "at", REQUIRED, max_pages(), &v))
			return bad(c, "at");
		q.to = v;
	}
	rc = req_proc(c, &p);
	if (!rc)
		rc = wcall(c, p, &q, &ans);
	if (rc)
		return rc;
	if (kind == U_COPY || kind == U_ZEROPAGE || kind == U_MOVE)
		sb_printf(c->fields, " done=%lu errno=%lu", ans.count, ans.old);
	return 0;
}

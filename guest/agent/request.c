// SPDX-License-Identifier: GPL-2.0
/*
 * Reading the keys of a request: numbers within bounds, words from a list,
 * the process and the map a request names.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "request.h"

/* Pages a page index or count may reach: 1 TiB of address space. */
uint64_t max_pages(void)
{
	return (1ULL << 40) / page_size;
}

/* An optional number (def when absent, or REQUIRED) no larger than max. */
int num(struct ctx *c, const char *k, uint64_t def, uint64_t max,
	uint64_t *v)
{
	const char *s = kv_get(c->req, k);

	if (!s) {
		*v = def;
		return def == REQUIRED ? -1 : 0;
	}
	return parse_u64(s, v) || *v > max ? -1 : 0;
}

/* The value of the entry named s, or -1 (every value is >= 0). */
int pick(const char *s, const struct named *names)
{
	int i;

	for (i = 0; s && names[i].name; i++)
		if (!strcmp(s, names[i].name))
			return names[i].value;
	return -1;
}

/* The live process the request's proc= names. */
int req_proc(struct ctx *c, struct proc **out)
{
	const char *s = kv_get(c->req, "proc");

	if (!s || !valid_name(s))
		return bad(c, "proc");
	*out = proc_find(s);
	return *out ? 0 : fail(c, ESRCH, "no-proc");
}

/* A request about one named map: sets up q with op and name. */
int req_map(struct ctx *c, struct wreq *q, uint32_t op)
{
	const char *name = kv_get(c->req, "name");

	memset(q, 0, sizeof(*q));
	q->op = op;
	q->huge = -1;
	if (!name || !valid_name(name))
		return bad(c, "name");
	snprintf(q->name, sizeof(q->name), "%s", name);
	return 0;
}

/* A request about one page of a named map: q's name and page. */
int req_page(struct ctx *c, struct wreq *q)
{
	int rc = req_map(c, q, 0);

	if (rc)
		return rc;
	if (num(c, "page", REQUIRED, max_pages(), &q->page))
		return bad(c, "page");
	return 0;
}

int req_pages(struct ctx *c, struct wreq *q, uint64_t count_def,
	      uint64_t count_max)
{
	if (num(c, "page", REQUIRED, max_pages(), &q->page))
		return bad(c, "page");
	if (num(c, "count", count_def, count_max, &q->count) || !q->count)
		return bad(c, "count");
	return 0;
}

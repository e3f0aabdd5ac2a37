// SPDX-License-Identifier: GPL-2.0
/*
 * Ops that look at pages and drive the module: findpage, findtask, kpage,
 * mtest, modparam. /proc/kpagecount, /proc/kpageflags and /proc/mtest stay
 * open across requests.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handlers.h"
#include "kcov.h"
#include "pages.h"
#include "protocol.h"
#include "request.h"
#include "sysfs.h"

static int kpc_fd = -1, kpf_fd = -1, mtest_fd = -1;

void inspect_open(void)
{
	kpc_fd = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
	kpf_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	mtest_fd = open("/proc/mtest", O_WRONLY | O_CLOEXEC);
}

static int kpage(struct ctx *c, uint64_t pfn, uint64_t *count, uint64_t *flags)
{
	ssize_t n;

	if (kpc_fd < 0 || kpf_fd < 0)
		return fail(c, ENOENT, "kpagecount");
	n = pread(kpc_fd, count, 8, pfn * 8);
	if (n != 8)
		return fail(c, n < 0 ? errno : EINVAL, "kpagecount");
	n = pread(kpf_fd, flags, 8, pfn * 8);
	if (n != 8)
		return fail(c, n < 0 ? errno : EINVAL, "kpageflags");
	return 0;
}

static int need_mtest(struct ctx *c)
{
	if (mtest_fd < 0)
		mtest_fd = open("/proc/mtest", O_WRONLY | O_CLOEXEC);
	return mtest_fd < 0 ? fail(c, errno, "open-mtest") : 0;
}

/*
 * Returns the write's result the way PROTOCOL.md wants it: 0 or -errno.
 * The module's walk runs in our context, so it is traced (kcov.c).
 */
static int mtest_cmd(const char *fmt, ...)
{
	char cmd[128];
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	kcov_begin();
	rc = write(mtest_fd, cmd, n) < 0 ? -errno : 0;
	kcov_end();
	return rc;
}

/* A findpage of p's q->name[q->page] into sb: fields, then the walk (req). */
static int findpage_into(struct ctx *c, struct sbuf *sb, struct proc *p,
			 struct wreq *q, uint64_t req)
{
	uint64_t ent = 0, cnt, flags;
	struct page_at at;
	ssize_t n;
	int rc;

	rc = proc_lookup(c, p, q, 1, &at);
	if (!rc)
		rc = need_mtest(c);
	if (rc)
		return rc;
	n = pread(p->pagemap, &ent, 8, at.addr / page_size * 8);
	if (n != 8)
		return fail(c, n < 0 ? errno : EIO, "pagemap");
	sb_printf(sb, " pid=%d addr=", p->pid);
	sb_hex(sb, at.addr);
	if ((ent & PM_PRESENT) && at.mapped) {
		rc = kpage(c, ent & PFN_MASK, &cnt, &flags);
		if (rc)
			return rc;
		sb_add(sb, " pfn=");
		sb_hex(sb, ent & PFN_MASK);
		sb_printf(sb, " kpagecount=%llu kpageflags=",
			  (unsigned long long)cnt);
		sb_hex(sb, flags);
	} else {
		sb_add(sb, " pfn=- kpagecount=- kpageflags=-");
	}
	sb_printf(sb, " rc=%d",
		  mtest_cmd("findpage %d 0x%llx req=%llu", p->pid,
			    (unsigned long long)at.addr,
			    (unsigned long long)req));
	return 0;
}

int op_findpage(struct ctx *c)
{
	struct wreq q;
	struct proc *p;
	int rc;

	rc = req_page(c, &q);
	if (!rc)
		rc = req_proc(c, &p);
	return rc ? rc : findpage_into(c, c->fields, p, &q, c->req->id);
}

/*
 * findpages base=N slots=proc:name:page,...: the findpage of each slot in
 * one request, a D line each (k=<index>, then findpage's fields, or err= and
 * msg=), the walk of slot k under req N+k. One request instead of one per
 * page saves a round trip to the host per walk.
 */
int op_findpages(struct ctx *c)
{
	const char *list = kv_get(c->req, "slots");
	char slot[3 * NAME_LEN + 24], *proc, *name, *page, *save;
	uint64_t base, k = 0;
	struct proc *p;
	struct wreq q;
	size_t len;
	int rc;

	if (num(c, "base", REQUIRED, UINT64_MAX / 2, &base))
		return bad(c, "base");
	if (!list || !*list)
		return bad(c, "slots");
	for (; *list; list += len + (list[len] == ','), k++) {
		len = strcspn(list, ",");
		if (len >= sizeof(slot))
			return bad(c, "slots");
		memcpy(slot, list, len);
		slot[len] = '\0';
		proc = strtok_r(slot, ":", &save);
		name = strtok_r(NULL, ":", &save);
		page = strtok_r(NULL, ":", &save);
		memset(&q, 0, sizeof(q));
		if (!proc || !name || !page || !valid_name(proc) ||
		    !valid_name(name) || parse_u64(page, &q.page) ||
		    q.page >= max_pages())
			return bad(c, "slots");
		snprintf(q.name, sizeof(q.name), "%s", name);
		sb_printf(c->data, "D k=%llu", (unsigned long long)k);
		p = proc_find(proc);
		if (p)
			rc = findpage_into(c, c->data, p, &q, base + k);
		else
			rc = fail(c, ESRCH, "no-proc");
		if (rc)
			sb_printf(c->data, " err=%d msg=%s", -rc, c->msg);
		sb_addn(c->data, "\n", 1);
	}
	return 0;
}

int op_findtask(struct ctx *c)
{
	struct proc *p;
	int rc;

	rc = req_proc(c, &p);
	if (!rc)
		rc = need_mtest(c);
	if (rc)
		return rc;
	sb_printf(c->fields, " pid=%d rc=%d", p->pid,
		  mtest_cmd("findtask%d req=%llu", p->pid,
			    (unsigned long long)c->req->id));
	return 0;
}

int op_kpage(struct ctx *c)
{
	uint64_t pfn, cnt, flags;
	int rc;

	if (num(c, "pfn", REQUIRED, PFN_MASK, &pfn))
		return bad(c, "pfn");
	rc = kpage(c, pfn, &cnt, &flags);
	if (rc)
		return rc;
	sb_printf(c->fields, " kpagecount=%llu kpageflags=",
		  (unsigned long long)cnt);
	sb_hex(c->fields, flags);
	return 0;
}

int op_mtest(struct ctx *c)
{
	const char *hex = kv_get(c->req, "hex");
	uint64_t len, b, i;
	unsigned char *buf;
	ssize_t n;
	int e;

	if (hex) {
		len = strlen(hex) / 2;
		if (strlen(hex) % 2 || kv_get(c->req, "fill") || kv_get(c->req, "byte"))
			return bad(c, "hex");
		buf = malloc(len + 1);
		if (!buf)
			return fail(c, ENOMEM, "malloc");
		for (i = 0; i < len; i++) {
			int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

			if (hi < 0 || lo < 0) {
				free(buf);
				return bad(c, "hex");
			}
			buf[i] = hi << 4 | lo;
		}
	} else {
		if (num(c, "fill", REQUIRED, 16 << 20, &len))
			return bad(c, "fill");
		if (num(c, "byte", 0, 255, &b))
			return bad(c, "byte");
		buf = malloc(len + 1);
		if (!buf)
			return fail(c, ENOMEM, "malloc");
		memset(buf, b, len);
	}
	e = need_mtest(c);
	if (e) {
		free(buf);
		return e;
	}
	kcov_begin();
	n = write(mtest_fd, buf, len);
	e = errno;
	kcov_end();
	free(buf);
	if (n < 0)
		return fail(c, e, "write");
	sb_printf(c->fields, " ret=%zd", n);
	return 0;
}

int op_modparam(struct ctx *c)
{
	const char *param = kv_get(c->req, "param"), *val = kv_get(c->req, "value");
	char path[96];

	if (!param || strspn(param, "abcdefghijklmnopqrstuvwxyz"
			     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
		      strlen(param) || !*param || strlen(param) > 48)
		return bad(c, "param");
	if (!val)
		return bad(c, "value");
	snprintf(path, sizeof(path), "/sys/module/rmapcheck/parameters/%s",
		 param);
	if (sysfs_write(path, val))
		return fail(c, errno, "modparam");
	return 0;
}

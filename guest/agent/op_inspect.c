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

#include "ops.h"

static int kpc_fd = -1, kpf_fd = -1, mtest_fd = -1;

void inspect_open(void)
{
	kpc_fd = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
	kpf_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	mtest_fd = open("/proc/mtest", O_WRONLY | O_CLOEXEC);
}

static int kpage(uint64_t pfn, uint64_t *count, uint64_t *flags)
{
	ssize_t n;

	if (kpc_fd < 0 || kpf_fd < 0)
		return fail(ENOENT, "kpagecount");
	n = pread(kpc_fd, count, 8, pfn * 8);
	if (n != 8)
		return fail(n < 0 ? errno : EINVAL, "kpagecount");
	n = pread(kpf_fd, flags, 8, pfn * 8);
	if (n != 8)
		return fail(n < 0 ? errno : EINVAL, "kpageflags");
	return 0;
}

/* /proc/kpageflags of up to n pfns from pfn, in one read: what pread gives. */
ssize_t kpageflags_read(uint64_t pfn, uint64_t n, uint64_t *out)
{
	return kpf_fd < 0 ? -1 : pread(kpf_fd, out, n * 8, pfn * 8);
}

static int need_mtest(void)
{
	if (mtest_fd < 0)
		mtest_fd = open("/proc/mtest", O_WRONLY | O_CLOEXEC);
	return mtest_fd < 0 ? fail(errno, "open-mtest") : 0;
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
static int findpage_into(struct sbuf *sb, struct proc *p, struct wreq *q,
			 uint64_t req)
{
	uint64_t ent = 0, cnt, flags;
	ssize_t n;

	if (proc_lookup(p, q, 1) || need_mtest())
		return -1;
	n = pread(p->pagemap, &ent, 8, wr.addr / page_size * 8);
	if (n != 8)
		return fail(n < 0 ? errno : EIO, "pagemap");
	sb_printf(sb, " pid=%d addr=", p->pid);
	sb_hex(sb, wr.addr);
	if ((ent & PM_PRESENT) && wr.mapped) {
		if (kpage(ent & PFN_MASK, &cnt, &flags))
			return -1;
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
			    (unsigned long long)wr.addr,
			    (unsigned long long)req));
	return 0;
}

int op_findpage(const struct req *r)
{
	struct wreq q;
	struct proc *p;

	if (req_map(r, &q, 0))
		return -1;
	if (num(r, "page", REQUIRED, max_pages, &q.page))
		return bad(r, "page");
	p = req_proc(r);
	if (!p)
		return -1;
	return findpage_into(&reply_fields, p, &q, r->id);
}

/*
 * findpages base=N slots=proc:name:page,...: the findpage of each slot in
 * one request, a D line each (k=<index>, then findpage's fields, or err= and
 * msg=), the walk of slot k under req N+k. One request instead of one per
 * page saves a round trip to the host per walk.
 */
int op_findpages(const struct req *r)
{
	const char *list = kv_get(r, "slots");
	char slot[3 * NAME_LEN + 24], *proc, *name, *page, *save;
	uint64_t base, k = 0;
	struct proc *p;
	struct wreq q;
	size_t len;

	if (num(r, "base", REQUIRED, UINT64_MAX / 2, &base))
		return bad(r, "base");
	if (!list || !*list)
		return bad(r, "slots");
	for (; *list; list += len + (list[len] == ','), k++) {
		len = strcspn(list, ",");
		if (len >= sizeof(slot))
			return bad(r, "slots");
		memcpy(slot, list, len);
		slot[len] = '\0';
		proc = strtok_r(slot, ":", &save);
		name = strtok_r(NULL, ":", &save);
		page = strtok_r(NULL, ":", &save);
		memset(&q, 0, sizeof(q));
		if (!proc || !name || !page || !valid_name(proc) ||
		    !valid_name(name) || parse_u64(page, &q.page) ||
		    q.page >= max_pages)
			return bad(r, "slots");
		snprintf(q.name, sizeof(q.name), "%s", name);
		sb_printf(&reply_data, "D k=%llu", (unsigned long long)k);
		p = find_proc(proc);
		if (!p)
			fail(ESRCH, "no-proc");
		if (!p || findpage_into(&reply_data, p, &q, base + k)) {
			sb_printf(&reply_data, " err=%d msg=%s", reply_err,
				  reply_msg);
			reply_err = 0;
		}
		sb_addn(&reply_data, "\n", 1);
	}
	return 0;
}

int op_findtask(const struct req *r)
{
	struct proc *p = req_proc(r);

	if (!p || need_mtest())
		return -1;
	sb_printf(&reply_fields, " pid=%d rc=%d", p->pid,
		  mtest_cmd("findtask%d req=%llu", p->pid,
			    (unsigned long long)r->id));
	return 0;
}

int op_kpage(const struct req *r)
{
	uint64_t pfn, cnt, flags;

	if (num(r, "pfn", REQUIRED, PFN_MASK, &pfn))
		return bad(r, "pfn");
	if (kpage(pfn, &cnt, &flags))
		return -1;
	sb_printf(&reply_fields, " kpagecount=%llu kpageflags=",
		  (unsigned long long)cnt);
	sb_hex(&reply_fields, flags);
	return 0;
}

int op_mtest(const struct req *r)
{
	const char *hex = kv_get(r, "hex");
	uint64_t len, b, i;
	unsigned char *buf;
	ssize_t n;
	int e;

	if (hex) {
		len = strlen(hex) / 2;
		if (strlen(hex) % 2 || kv_get(r, "fill") || kv_get(r, "byte"))
			return bad(r, "hex");
		buf = malloc(len + 1);
		if (!buf)
			return fail(ENOMEM, "malloc");
		for (i = 0; i < len; i++) {
			int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

			if (hi < 0 || lo < 0) {
				free(buf);
				return bad(r, "hex");
			}
			buf[i] = hi << 4 | lo;
		}
	} else {
		if (num(r, "fill", REQUIRED, 16 << 20, &len))
			return bad(r, "fill");
		if (num(r, "byte", 0, 255, &b))
			return bad(r, "byte");
		buf = malloc(len + 1);
		if (!buf)
			return fail(ENOMEM, "malloc");
		memset(buf, b, len);
	}
	if (need_mtest()) {
		free(buf);
		return -1;
	}
	kcov_begin();
	n = write(mtest_fd, buf, len);
	e = errno;
	kcov_end();
	free(buf);
	if (n < 0)
		return fail(e, "write");
	sb_printf(&reply_fields, " ret=%zd", n);
	return 0;
}

int op_modparam(const struct req *r)
{
	const char *param = kv_get(r, "param"), *val = kv_get(r, "value");
	char path[96];

	if (!param || strspn(param, "abcdefghijklmnopqrstuvwxyz"
			     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
		      strlen(param) || !*param || strlen(param) > 48)
		return bad(r, "param");
	if (!val)
		return bad(r, "value");
	snprintf(path, sizeof(path), "/sys/module/rmapcheck/parameters/%s",
		 param);
	if (sysfs_write(path, val))
		return fail(errno, "modparam");
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * What every op handler shares: the reply being built, errors, reading keys
 * of a request, pfns from a pagemap, and small sysfs reads and writes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"

struct sbuf reply_data, reply_fields;
int reply_err;
char reply_msg[NAME_LEN];
uint64_t max_pages;

int fail(int err, const char *msg)
{
	reply_err = err ? err : EIO;
	snprintf(reply_msg, sizeof(reply_msg), "%s", msg);
	return -1;
}

int bad(const struct req *r, const char *why)
{
	con("rmapcheck-agent: req %llu: bad %s\n", (unsigned long long)r->id,
	    why);
	return fail(EINVAL, "bad-request");
}

/* An optional number (def when absent, or REQUIRED) no larger than max. */
int num(const struct req *r, const char *k, uint64_t def, uint64_t max,
	       uint64_t *v)
{
	const char *s = kv_get(r, k);

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

struct proc *req_proc(const struct req *r)
{
	const char *s = kv_get(r, "proc");
	struct proc *p;

	if (!s || !valid_name(s)) {
		bad(r, "proc");
		return NULL;
	}
	p = find_proc(s);
	if (!p)
		fail(ESRCH, "no-proc");
	return p;
}

/* A request about one named map: sets up q with op and name. */
int req_map(const struct req *r, struct wreq *q, uint32_t op)
{
	const char *name = kv_get(r, "name");

	memset(q, 0, sizeof(*q));
	q->op = op;
	q->huge = -1;
	if (!name || !valid_name(name))
		return bad(r, "name");
	snprintf(q->name, sizeof(q->name), "%s", name);
	return 0;
}

int req_pages(const struct req *r, struct wreq *q, uint64_t count_def,
		     uint64_t count_max)
{
	if (num(r, "page", REQUIRED, max_pages, &q->page))
		return bad(r, "page");
	if (num(r, "count", count_def, count_max, &q->count) || !q->count)
		return bad(r, "count");
	return 0;
}

/*
 * The contents token of the present page at addr, read through the
 * worker's /proc/PID/mem (which reads PROT_NONE pages too and never faults
 * a present page anew): "=hh" when every byte is hh, else the first 8 bytes
 * and an FNV-1a 64 digest of the page as "<16 hex>:<16 hex>"; "?" when the
 * read failed.
 */
static void add_contents(struct sbuf *sb, const struct proc *p, uint64_t addr)
{
	static uint8_t *buf;
	uint64_t h = 0xcbf29ce484222325ULL, first = 0;
	long i;
	int uniform = 1;

	if (!buf)
		buf = malloc(page_size);
	if (!buf || pread(p->mem, buf, page_size, addr) != page_size) {
		sb_addn(sb, "?", 1);
		return;
	}
	for (i = 0; i < page_size; i++) {
		h = (h ^ buf[i]) * 0x100000001b3ULL;
		uniform &= buf[i] == buf[0];
	}
	if (uniform) {
		sb_printf(sb, "=%02x", buf[0]);
		return;
	}
	for (i = 0; i < 8; i++)
		first = first << 8 | buf[i];
	sb_printf(sb, "%016llx:%016llx", (unsigned long long)first,
		  (unsigned long long)h);
}

/*
 * Appends the pfns of count pages at addr: "-" where the pagemap says not
 * present, or where bits (one per page; NULL: all set) says the page is no
 * longer this map's. With data, also appends each present page's contents
 * token there (comma-separated, "-" where not present): pages pagemap says
 * are absent are never touched.
 */
int add_pfns(struct sbuf *sb, const struct proc *p, uint64_t addr,
	     uint64_t count, const uint8_t *bits, struct sbuf *data)
{
	struct page_lists l = { .data = data };

	return add_pages(sb, p, addr, count, bits, &l);
}

static void add_listed(struct sbuf *sb, uint64_t k, int has, uint64_t v,
		       int *n)
{
	if (!sb)
		return;
	if (k)
		sb_addn(sb, ",", 1);
	if (has) {
		sb_hex(sb, v);
		(*n)++;
	} else {
		sb_addn(sb, "-", 1);
	}
}

/*
 * add_pfns with one pagemap read for every list l asks for: per page, its
 * swap entry (PM_SWAP: type and offset) and its pfn where pagemap says this
 * mm maps it exclusively (PM_MMAP_EXCLUSIVE), "-" elsewhere; l counts both.
 */
int add_pages(struct sbuf *sb, const struct proc *p, uint64_t addr,
	      uint64_t count, const uint8_t *bits, struct page_lists *l)
{
	static uint64_t ent[512];
	uint64_t done = 0, i;

	while (done < count) {
		uint64_t n = count - done < 512 ? count - done : 512;
		ssize_t got = pread(p->pagemap, ent, n * 8,
				    (addr / page_size + done) * 8);

		if (got != (ssize_t)(n * 8))
			return fail(got < 0 ? errno : EIO, "pagemap");
		for (i = 0; i < n; i++) {
			uint64_t k = done + i, e = ent[i];
			int mine = !bits || (bits[k / 8] >> (k % 8) & 1);
			int present = (e & PM_PRESENT) && mine;

			add_listed(sb, k, present, e & PFN_MASK, &l->npresent);
			add_listed(l->swap, k, (e & PM_SWAP) && mine,
				   e & PFN_MASK, &l->nswap);
			add_listed(l->excl, k, present && (e & PM_MMAP_EXCLUSIVE),
				   e & PFN_MASK, &l->nexcl);
			if (!l->data)
				continue;
			if (k)
				sb_addn(l->data, ",", 1);
			if (present)
				add_contents(l->data, p, addr + k * page_size);
			else
				sb_addn(l->data, "-", 1);
		}
		done += n;
	}
	return 0;
}

int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), e;
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	e = errno;
	close(fd);
	errno = e;
	return n < 0 ? -1 : 0;
}

/* The first line of a small file, NUL-terminated. */
int sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int sysfs_u64(const char *path, uint64_t *v)
{
	char buf[32];

	if (sysfs_read(path, buf, sizeof(buf)))
		return -1;
	if (parse_u64(buf, v)) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

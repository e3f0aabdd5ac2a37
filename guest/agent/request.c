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
#include <sys/mman.h>
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

#define TOKEN_LEN	34	/* "<16 hex>:<16 hex>" and its NUL */

/*
 * The contents token of one page: "=hh" when every byte is hh, else the
 * first 8 bytes and an FNV-1a 64 digest over the page's 64-bit words
 * (little-endian) as "<16 hex>:<16 hex>". Words, not bytes: a pagemap read
 * hashes every present page.
 */
static void page_token(const uint8_t *buf, char tok[TOKEN_LEN])
{
	const uint64_t *w = (const uint64_t *)buf;
	uint64_t h = 0xcbf29ce484222325ULL, first = 0;
	uint64_t rep = buf[0] * 0x0101010101010101ULL;
	long i;
	int uniform = 1;

	for (i = 0; i < page_size / 8; i++) {
		h = (h ^ w[i]) * 0x100000001b3ULL;
		uniform &= w[i] == rep;
	}
	if (uniform) {
		snprintf(tok, TOKEN_LEN, "=%02x", buf[0]);
		return;
	}
	for (i = 0; i < 8; i++)
		first = first << 8 | buf[i];
	snprintf(tok, TOKEN_LEN, "%016llx:%016llx", (unsigned long long)first,
		 (unsigned long long)h);
}

/*
 * The tokens of the frames one request has read, by pfn: a frame that
 * several processes map (fork, KSM, a THP) is read and hashed once, which
 * halves a pagemap read after a fork. Only within one request: between two,
 * a frame may be written, or freed and reused.
 */
#define TOKEN_SLOTS	16384
static struct token {
	uint64_t pfn;
	uint32_t gen;
	char tok[TOKEN_LEN];
} *tokens;
static uint32_t token_gen = 1, token_count;

/*
 * Memory only the controller uses. Every worker is forked from it, and a
 * copy of each page the controller touched made every fork and exit slower.
 */
static void *ctl_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, len, MADV_DONTFORK)) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

void tokens_forget(void)
{
	if (!tokens)
		tokens = ctl_alloc(TOKEN_SLOTS * sizeof(*tokens));
	token_gen++;
	token_count = 0;
}

/* The slot of pfn, or the free slot where it would go; -1 when none. */
static int token_slot(uint64_t pfn)
{
	uint32_t h = (pfn * 0x9e3779b97f4a7c15ULL) >> 50, i;

	if (!tokens)
		return -1;
	for (i = 0; i < TOKEN_SLOTS; i++, h = (h + 1) % TOKEN_SLOTS)
		if (tokens[h].gen != token_gen || tokens[h].pfn == pfn)
			return h;
	return -1;
}

static const char *token_find(uint64_t pfn)
{
	int s = token_slot(pfn);

	return s >= 0 && tokens[s].gen == token_gen ? tokens[s].tok : NULL;
}

/* Appends the token of the page at buf, the frame pfn, and keeps it. */
static void add_token(struct sbuf *sb, uint64_t pfn, const uint8_t *buf)
{
	char tok[TOKEN_LEN];
	int s;

	page_token(buf, tok);
	sb_add(sb, tok);
	/* Three quarters full at most, so probes stay short. */
	if (4 * (token_count + 1) > 3 * TOKEN_SLOTS)
		return;
	s = token_slot(pfn);
	if (s < 0 || tokens[s].gen == token_gen)
		return;
	tokens[s].gen = token_gen;
	tokens[s].pfn = pfn;
	memcpy(tokens[s].tok, tok, TOKEN_LEN);
	token_count++;
}

/* Pages per /proc/PID/mem read: one read per page cost more than the hash. */
#define MEM_RUN		64

/*
 * Contents are read through the worker's /proc/PID/mem, a run of present
 * pages at a time, into this window. mem reads PROT_NONE pages too, and it
 * takes references without pinning: process_vm_readv() pins, and pinning a
 * page that fork shares breaks its COW (the fuzzer saw O4 at once).
 */
struct window {
	uint8_t *buf;
	uint64_t first, n;	/* pages [first, first + n) of the map are in buf */
};

/* bits (NULL: all set) says page k is still the map's. */
static int is_mine(const uint8_t *bits, uint64_t k)
{
	return !bits || (bits[k / 8] >> (k % 8) & 1);
}

/*
 * Present pages of the map from page k on whose frames this request has
 * not read yet, at most MEM_RUN: ent[0] is k's.
 */
static uint64_t present_run(const uint64_t *ent, uint64_t left,
			    const uint8_t *bits, uint64_t k)
{
	uint64_t run = 1;

	while (run < left && run < MEM_RUN && (ent[run] & PM_PRESENT) &&
	       is_mine(bits, k + run) && !token_find(ent[run] & PFN_MASK))
		run++;
	return run;
}

/* Reads up to run pages from page k at addr; n is how many were read whole. */
static void window_fill(struct window *win, const struct proc *p,
			uint64_t addr, uint64_t k, uint64_t run)
{
	ssize_t got;

	if (!win->buf)
		win->buf = ctl_alloc(MEM_RUN * page_size);
	win->first = k;
	got = win->buf ? pread(p->mem, win->buf, run * page_size, addr) : -1;
	win->n = got < 0 ? 0 : got / page_size;
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

/* KPF_COMPOUND_HEAD and KPF_COMPOUND_TAIL of /proc/kpageflags. */
#define KPF_HEAD	(1ULL << 15)
#define KPF_TAIL	(1ULL << 16)

/*
 * The kpageflags of the frames one request looks at, in aligned blocks:
 * one read brings a block, and the frames of a request cluster (a THP, the
 * pages that fork shares), so a page costs far less than a read of its own.
 */
#define KF_BLOCK	64
#define KF_BLOCKS	256
static struct kf_block {
	uint64_t block;
	uint32_t gen;
	uint64_t f[KF_BLOCK];
} *kf_cache;

/* pfn's kpageflags, 0 when they cannot be read. */
static uint64_t kflags(uint64_t pfn)
{
	uint64_t block = pfn / KF_BLOCK;
	struct kf_block *b;

	if (!kf_cache)
		kf_cache = ctl_alloc(KF_BLOCKS * sizeof(*kf_cache));
	if (!kf_cache)
		return 0;
	b = &kf_cache[block % KF_BLOCKS];
	if (b->gen != token_gen || b->block != block) {
		/* Short at the end of memory; what is not read stays 0. */
		memset(b->f, 0, sizeof(b->f));
		kpageflags_read(block * KF_BLOCK, KF_BLOCK, b->f);
		b->block = block;
		b->gen = token_gen;
	}
	return b->f[pfn % KF_BLOCK];
}

/* One token of the folio list: where the page lies in a large folio. */
static void add_folio_token(struct sbuf *sb, uint64_t k, uint64_t flags,
			    int *n)
{
	const char *t = flags & KPF_HEAD ? "h" : flags & KPF_TAIL ? "t" : "-";

	if (k)
		sb_addn(sb, ",", 1);
	sb_addn(sb, t, 1);
	*n += *t != '-';
}

/*
 * add_pfns with one pagemap read for every list l asks for: per page, its
 * swap entry (PM_SWAP: type and offset) and its pfn where pagemap says this
 * mm maps it exclusively (PM_MMAP_EXCLUSIVE), "-" elsewhere, and where it
 * lies in a large folio (h, t or -); l counts each.
 */
int add_pages(struct sbuf *sb, const struct proc *p, uint64_t addr,
	      uint64_t count, const uint8_t *bits, struct page_lists *l)
{
	static uint64_t ent[512];
	static struct window win;
	uint64_t done = 0, i;
	const char *known;

	win.n = 0;
	while (done < count) {
		uint64_t n = count - done < 512 ? count - done : 512;
		ssize_t got = pread(p->pagemap, ent, n * 8,
				    (addr / page_size + done) * 8);

		if (got != (ssize_t)(n * 8))
			return fail(got < 0 ? errno : EIO, "pagemap");
		for (i = 0; i < n; i++) {
			uint64_t k = done + i, e = ent[i];
			int mine = is_mine(bits, k);
			int present = (e & PM_PRESENT) && mine;

			add_listed(sb, k, present, e & PFN_MASK, &l->npresent);
			add_listed(l->swap, k, (e & PM_SWAP) && mine,
				   e & PFN_MASK, &l->nswap);
			add_listed(l->excl, k, present && (e & PM_MMAP_EXCLUSIVE),
				   e & PFN_MASK, &l->nexcl);
			if (l->folio)
				add_folio_token(l->folio, k,
						present ? kflags(e & PFN_MASK) : 0,
						&l->nlarge);
			if (!l->data)
				continue;
			if (k)
				sb_addn(l->data, ",", 1);
			if (!present) {
				sb_addn(l->data, "-", 1);
				continue;
			}
			known = token_find(e & PFN_MASK);
			if (known) {
				sb_add(l->data, known);
				continue;
			}
			if (k < win.first || k >= win.first + win.n)
				window_fill(&win, p, addr + k * page_size, k,
					    present_run(ent + i, n - i, bits, k));
			if (k < win.first + win.n)
				add_token(l->data, e & PFN_MASK,
					  win.buf + (k - win.first) * page_size);
			else
				sb_addn(l->data, "?", 1);
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

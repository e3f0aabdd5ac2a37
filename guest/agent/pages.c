// SPDX-License-Identifier: GPL-2.0
/*
 * What a process's pagemap and memory say about its pages: pfns, swap
 * entries, exclusivity, where a page lies in a large folio (kpageflags),
 * and a contents token per present page.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pages.h"

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
int add_pfns(struct ctx *c, struct sbuf *sb, const struct proc *p,
	     uint64_t addr, uint64_t count, const uint8_t *bits,
	     struct sbuf *data)
{
	struct page_lists l = { .data = data };

	return add_pages(c, sb, p, addr, count, bits, &l);
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
static int kpf_fd = -2;	/* -2: not opened yet */

/* pfn's kpageflags, 0 when they cannot be read. */
static uint64_t kflags(uint64_t pfn)
{
	uint64_t block = pfn / KF_BLOCK;
	struct kf_block *b;

	if (kpf_fd == -2)
		kpf_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (!kf_cache)
		kf_cache = ctl_alloc(KF_BLOCKS * sizeof(*kf_cache));
	if (!kf_cache)
		return 0;
	b = &kf_cache[block % KF_BLOCKS];
	if (b->gen != token_gen || b->block != block) {
		/* Short at the end of memory; what is not read stays 0. */
		memset(b->f, 0, sizeof(b->f));
		if (kpf_fd >= 0 &&
		    pread(kpf_fd, b->f, sizeof(b->f), block * KF_BLOCK * 8) < 0)
			memset(b->f, 0, sizeof(b->f));
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
int add_pages(struct ctx *c, struct sbuf *sb, const struct proc *p,
	      uint64_t addr, uint64_t count, const uint8_t *bits,
	      struct page_lists *l)
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
			return fail(c, got < 0 ? errno : EIO, "pagemap");
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

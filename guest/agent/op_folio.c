// SPDX-License-Identifier: GPL-2.0
/*
 * The folio op: ground truth for one large folio over the whole address
 * space of every live workload process, not only its named maps. Every
 * VMA of /proc/PID/maps is read through the pagemap; pages whose pfn lies
 * in the folio are reported per VMA as runs. With pmd=1 (a PMD-sized
 * folio) smaps says how many PMDs map memory in such a VMA, which tells
 * PTE-mapped from PMD-mapped where pagemap cannot.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handlers.h"
#include "pages.h"
#include "request.h"

#define CHUNK		4096	/* pagemap entries per read; a multiple of any PMD */
#define MAX_VMAS	1024

/* One VMA of one process, with what the pagemap found in it. */
struct fvma {
	uint64_t start, end;
	struct sbuf at;		/* runs "0x<addr>:<index>[*n]" */
	uint64_t run_addr, run_idx, run_n;
	uint64_t cand;		/* PMD-aligned full runs of any PMD folio */
	int ours;		/* the folio itself is such a run here */
	uint64_t pmd_kb;	/* smaps: memory mapped by PMDs */
};

/* Reads a whole /proc file into a NUL-terminated malloc'd buffer. */
char *slurp(const char *path)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 || !buf) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *p = realloc(buf, cap * 2);

			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

static void end_run(struct fvma *v)
{
	if (!v->run_n)
		return;
	if (v->at.len)
		sb_addn(&v->at, ",", 1);
	sb_hex(&v->at, v->run_addr);
	sb_printf(&v->at, ":%llu", (unsigned long long)v->run_idx);
	if (v->run_n > 1)
		sb_printf(&v->at, "*%llu", (unsigned long long)v->run_n);
	v->run_n = 0;
}

/*
 * Reads the pagemap of one VMA: runs of the folio's pages, and PMD-sized
 * candidates (an aligned, fully present run of consecutive pfns that
 * starts on an aligned pfn), which smaps can then count.
 */
static int scan_vma(const struct proc *p, struct fvma *v, uint64_t head,
		    uint64_t nr, uint64_t pmd_pages)
{
	static uint64_t ent[CHUNK];
	uint64_t chunk = CHUNK * page_size, base, a, i;

	for (base = v->start / chunk * chunk; base < v->end; base += chunk) {
		uint64_t lo = base > v->start ? base : v->start;
		uint64_t hi = base + chunk < v->end ? base + chunk : v->end;
		uint64_t n = (hi - lo) / page_size;
		ssize_t got = pread(p->pagemap, ent, n * 8, lo / page_size * 8);

		if (got != (ssize_t)(n * 8))
			return got < 0 ? -1 : 0;	/* gone meanwhile */
		for (i = 0; i < n; i++) {
			uint64_t pfn = ent[i] & PFN_MASK, addr = lo + i * page_size;

			if (!(ent[i] & PM_PRESENT) || pfn < head ||
			    pfn >= head + nr) {
				end_run(v);
				continue;
			}
			if (v->run_n && addr == v->run_addr +
					    v->run_n * page_size &&
			    pfn - head == v->run_idx + v->run_n) {
				v->run_n++;
				continue;
			}
			end_run(v);
			v->run_addr = addr;
			v->run_idx = pfn - head;
			v->run_n = 1;
		}
		if (!pmd_pages)
			continue;
		for (a = (lo + pmd_pages * page_size - 1) /
			 (pmd_pages * page_size) * (pmd_pages * page_size);
		     a + pmd_pages * page_size <= hi;
		     a += pmd_pages * page_size) {
			uint64_t k = (a - lo) / page_size, first, j;

			first = ent[k] & PFN_MASK;
			if (!(ent[k] & PM_PRESENT) || first % pmd_pages)
				continue;
			for (j = 1; j < pmd_pages; j++)
				if (!(ent[k + j] & PM_PRESENT) ||
				    (ent[k + j] & PFN_MASK) != first + j)
					break;
			if (j < pmd_pages)
				continue;
			v->cand++;
			if (first == head)
				v->ours = 1;
		}
	}
	end_run(v);
	return 0;
}

/* Adds up the PMD-mapped kB of each VMA from /proc/PID/smaps. */
static void read_smaps(pid_t pid, struct fvma *v, int nv)
{
	/* A default-size hugetlb page is mapped by one PMD, too. */
	static const char *const keys[] = {
		"AnonHugePages:", "ShmemPmdMapped:", "FilePmdMapped:",
		"Shared_Hugetlb:", "Private_Hugetlb:", NULL
	};
	char path[48], *buf, *line, *save = NULL;
	struct fvma *cur = NULL;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	buf = slurp(path);
	if (!buf)
		return;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		uint64_t start;

		/* A VMA header starts with its lower-case hex address. */
		if ((*line >= '0' && *line <= '9') ||
		    (*line >= 'a' && *line <= 'f')) {
			start = strtoull(line, NULL, 16);
			cur = NULL;
			for (i = 0; i < nv; i++)
				if (v[i].start == start)
					cur = &v[i];
			continue;
		}
		for (i = 0; cur && keys[i]; i++)
			if (!strncmp(line, keys[i], strlen(keys[i])))
				cur->pmd_kb += strtoull(line + strlen(keys[i]),
							NULL, 10);
	}
	free(buf);
}

/* One process: every VMA in /proc/PID/maps, then smaps where needed. */
static int scan_proc(struct ctx *c, const struct proc *p, uint64_t head,
		     uint64_t nr, uint64_t pmd_pages)
{
	static struct fvma v[MAX_VMAS];
	char path[48], *buf, *line, *save = NULL;
	int nv = 0, i, need_smaps = 0, rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", p->pid);
	buf = slurp(path);
	if (!buf)
		return 0;	/* gone meanwhile: not live, no lines */
	for (line = strtok_r(buf, "\n", &save); line && nv < MAX_VMAS;
	     line = strtok_r(NULL, "\n", &save)) {
		char *dash;

		memset(&v[nv], 0, sizeof(v[nv]));
		v[nv].start = strtoull(line, &dash, 16);
		if (*dash != '-')
			continue;
		v[nv].end = strtoull(dash + 1, NULL, 16);
		if (scan_vma(p, &v[nv], head, nr, pmd_pages)) {
			rc = fail(c, errno, "pagemap");
			nv++;
			goto out;
		}
		need_smaps |= v[nv].ours;
		nv++;
	}
	if (need_smaps)
		read_smaps(p->pid, v, nv);
	for (i = 0; i < nv; i++) {
		if (!v[i].at.len)
			continue;
		sb_printf(c->data, "D proc=%s pid=%d start=", p->label,
			  p->pid);
		sb_hex(c->data, v[i].start);
		sb_add(c->data, " end=");
		sb_hex(c->data, v[i].end);
		if (need_smaps)
			sb_printf(c->data, " pmd=%llu cand=%llu",
				  (unsigned long long)(v[i].pmd_kb * 1024 /
						(pmd_pages * page_size)),
				  (unsigned long long)v[i].cand);
		sb_add(c->data, " at=");
		sb_addn(c->data, v[i].at.p, v[i].at.len);
		sb_addn(c->data, "\n", 1);
	}
out:
	for (i = 0; i < nv; i++)
		free(v[i].at.p);
	free(buf);
	return rc;
}

/* Appends the kpageflags of pfn, or 0 past the end of memory. */
static void add_kpf(struct ctx *c, int fd, uint64_t pfn, int comma)
{
	uint64_t f = 0;

	if (pread(fd, &f, 8, pfn * 8) != 8)
		f = 0;
	if (comma)
		sb_addn(c->fields, ",", 1);
	sb_hex(c->fields, f);
}

int op_folio(struct ctx *c)
{
	uint64_t head, nr, pmd, i, *cnt, run, last;
	int kpc = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
	int kpf = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	struct proc *p;
	int rc = 0;

	if (num(c, "pfn", REQUIRED, PFN_MASK, &head) ||
	    num(c, "nr", REQUIRED, 1 << 18, &nr) || !nr ||
	    num(c, "pmd", 0, 1, &pmd)) {
		rc = bad(c, "folio");
		goto out;
	}
	if (kpc < 0 || kpf < 0) {
		rc = fail(c, errno, "kpagecount");
		goto out;
	}
	/* kpagecount of every page, as runs "<count>[*n]". */
	cnt = malloc(nr * 8);
	if (!cnt || pread(kpc, cnt, nr * 8, head * 8) != (ssize_t)(nr * 8)) {
		free(cnt);
		rc = fail(c, cnt ? EIO : ENOMEM, "kpagecount");
		goto out;
	}
	sb_add(c->fields, " kpc=");
	for (i = 0; i < nr; i += run) {
		last = cnt[i];
		for (run = 1; i + run < nr && cnt[i + run] == last; run++)
			;
		sb_printf(c->fields, "%s%llu", i ? "," : "",
			  (unsigned long long)last);
		if (run > 1)
			sb_printf(c->fields, "*%llu",
				  (unsigned long long)run);
	}
	free(cnt);
	/* Head, last page and the page after: the folio's bounds. */
	sb_add(c->fields, " kpf=");
	add_kpf(c, kpf, head, 0);
	add_kpf(c, kpf, head + nr - 1, 1);
	add_kpf(c, kpf, head + nr, 1);
	for (p = proc_next(NULL); p; p = proc_next(p)) {
		rc = scan_proc(c, p, head, nr,
			       pmd ? page_size / 8 : 0);
		if (rc)
			break;
		if (c->data->len > MAX_REPLY) {
			rc = fail(c, E2BIG, "reply-too-big");
			break;
		}
	}
out:
	if (kpc >= 0)
		close(kpc);
	if (kpf >= 0)
		close(kpf);
	return rc;
}

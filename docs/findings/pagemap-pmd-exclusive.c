// SPDX-License-Identifier: GPL-2.0
/*
 * pagemap-pmd-exclusive: /proc/PID/pagemap sets PM_MMAP_EXCLUSIVE (bit 56)
 * on every page of a PMD-mapped THP whenever the THP's first page is mapped
 * exactly once, even on pages that another process maps as well.
 *
 * Found by rmapcheck (fuzz campaign, seed 404) on Debian's 7.2.13 arm64
 * kernel. Since v6.15-rc1, pagemap_pmd_range_thp() in fs/proc/task_mmu.c
 * asks __folio_page_mapped_exclusively(folio, page) for every page of the
 * PMD, with page the PMD's first page, instead of page + idx (commit
 * eb16876971ea, "fs/proc/task_mmu: remove per-page mapcount dependency for
 * PM_MMAP_EXCLUSIVE (CONFIG_NO_PAGE_MAPCOUNT)"). It shows with
 * CONFIG_PAGE_MAPCOUNT=y, the default; 6.11 to 6.14 judge each page.
 *
 * The scene: a MAP_SHARED /dev/zero mapping (shmem) of one PMD plus 8 pages,
 * PMD-aligned, MADV_HUGEPAGE. The child maps the shmem THP by a PMD. The
 * parent splits its own VMA inside the THP (mprotect of one page), so its
 * write maps one page of the THP by a PTE. That page is then mapped twice,
 * but the child's pagemap calls it exclusive, because the THP's first page
 * is mapped once (by the child's PMD alone).
 *
 * Build: gcc -static -O2 -o repro pagemap-pmd-exclusive.c   (arm64, x86-64)
 * Run as root (pagemap PFNs need CAP_SYS_ADMIN). It prints PASS and exits 0,
 * or prints FAIL: <what> and exits 1. It exits 2 when it cannot set the
 * scene up (not root, no shmem THP), so a machine without THPs never passes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define THP		"/sys/kernel/mm/transparent_hugepage/"
#define PM_PFN		((1ULL << 55) - 1)
#define PM_EXCLUSIVE	(1ULL << 56)
#define PM_PRESENT	(1ULL << 63)
#define KPF_THP		22

static char shmem_was[32];
static int failures;

static void setup_failed(const char *what)
{
	printf("SETUP: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void fail(const char *fmt, unsigned long a, unsigned long b)
{
	printf("FAIL: ");
	printf(fmt, a, b);
	printf("\n");
	failures++;
}

/* The bracketed word of a THP sysfs file: "always [advise] never" gives advise. */
static int thp_mode(const char *file, char *out, size_t len)
{
	char buf[256], *l, *r;
	FILE *f = fopen(file, "re");

	if (!f)
		return -1;
	l = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!l)
		return -1;
	l = strchr(buf, '[');
	r = l ? strchr(l, ']') : NULL;
	if (!r)
		return -1;
	*r = '\0';
	snprintf(out, len, "%s", l + 1);
	return 0;
}

static int write_str(const char *file, const char *s)
{
	int fd = open(file, O_WRONLY | O_CLOEXEC);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -1;
}

static uint64_t pagemap(int fd, uintptr_t addr, long page)
{
	uint64_t e = 0;

	if (pread(fd, &e, sizeof(e), (off_t)(addr / page * sizeof(e))) != sizeof(e))
		setup_failed("reading pagemap");
	return e;
}

static uint64_t kpageflags(uint64_t pfn)
{
	uint64_t f = 0;
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || pread(fd, &f, sizeof(f), (off_t)(pfn * sizeof(f))) != sizeof(f))
		setup_failed("reading /proc/kpageflags");
	close(fd);
	return f;
}

/* Kernel log records at warning or worse that look like a splat. */
static void splats_since(int kmsg)
{
	static const char *const words[] = {
		"WARNING:", "BUG:", "kernel BUG", "Oops", "Bad page",
		"Bad rss-counter", "KASAN", "soft lockup", "stall", NULL,
	};
	char rec[8192];
	ssize_t n;
	int i;

	if (kmsg < 0)
		return;
	while ((n = read(kmsg, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		char *text;

		if (n < 0)
			continue;
		rec[n] = '\0';
		text = strchr(rec, ';');
		if (atoi(rec) % 8 > 4 || !text)
			continue;
		for (i = 0; words[i]; i++)
			if (strstr(text, words[i])) {
				printf("FAIL: kernel splat: %s", text + 1);
				failures++;
				break;
			}
	}
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	long pmd_pages = page / 8, npages = pmd_pages + 8;
	size_t pmd = (size_t)pmd_pages * page, len = (size_t)npages * page;
	long child_page = pmd_pages / 8 + 4, split_page = pmd_pages / 2 + 97;
	long parent_page = pmd_pages / 2 - 56, i, thp = 0;
	int to_child[2], to_parent[2], zero, kmsg, self, other;
	char path[64], c = 0;
	uintptr_t base;
	char *reserve;
	pid_t child;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (getuid())
		setup_failed("run as root (pagemap PFNs, /proc/kpageflags)");
	/* shmem THPs only where MADV_HUGEPAGE asks, as rmapcheck's guests run. */
	if (thp_mode(THP "shmem_enabled", shmem_was, sizeof(shmem_was)))
		setup_failed("no " THP "shmem_enabled (no THP?)");
	if ((!strcmp(shmem_was, "never") || !strcmp(shmem_was, "deny")) &&
	    write_str(THP "shmem_enabled", "advise"))
		setup_failed("setting shmem_enabled to advise");
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg >= 0)
		lseek(kmsg, 0, SEEK_END);

	/* One PMD plus 8 pages of shared /dev/zero, PMD-aligned. */
	reserve = mmap(NULL, len + pmd, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (reserve == MAP_FAILED)
		setup_failed("mmap");
	base = ((uintptr_t)reserve + pmd - 1) & ~(uintptr_t)(pmd - 1);
	zero = open("/dev/zero", O_RDWR | O_CLOEXEC);
	if (zero < 0 || mmap((void *)base, len, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_FIXED, zero, 0) == MAP_FAILED)
		setup_failed("mmap /dev/zero");
	if (madvise((void *)base, len, MADV_HUGEPAGE))
		setup_failed("madvise(MADV_HUGEPAGE)");
	if (pipe(to_child) || pipe(to_parent))
		setup_failed("pipe");

	child = fork();
	if (child < 0)
		setup_failed("fork");
	if (child == 0) {
		/* The child's write faults the shmem THP in and maps it by a PMD. */
		((volatile char *)base)[child_page * page] = 1;
		if (write(to_parent[1], &c, 1) != 1 || read(to_child[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	if (read(to_parent[0], &c, 1) != 1)
		setup_failed("waiting for the child");
	/* The parent's VMA now ends inside the THP: its write maps one PTE. */
	if (mprotect((void *)(base + split_page * page), page, PROT_READ))
		setup_failed("mprotect");
	((volatile char *)base)[parent_page * page] = 2;

	self = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", child);
	other = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || other < 0)
		setup_failed("opening pagemap");
	for (i = 0; i < npages; i++) {
		uint64_t p = pagemap(self, base + i * page, page);
		uint64_t q = pagemap(other, base + i * page, page);

		if (!(p & PM_PRESENT) || !(q & PM_PRESENT))
			continue;
		if (!(p & PM_PFN) || !(q & PM_PFN))
			setup_failed("pagemap shows no PFNs (not CAP_SYS_ADMIN?)");
		if ((q & PM_PFN) == (p & PM_PFN) && (kpageflags(q & PM_PFN) >> KPF_THP & 1))
			thp++;
		if ((q & PM_PFN) != (p & PM_PFN))
			continue;
		if (q & PM_EXCLUSIVE)
			fail("page %lu (pfn %#lx) is mapped by the parent and the child, "
			     "but the child's pagemap says PM_MMAP_EXCLUSIVE",
			     (unsigned long)i, (unsigned long)(q & PM_PFN));
		if (p & PM_EXCLUSIVE)
			fail("page %lu (pfn %#lx) is mapped by the parent and the child, "
			     "but the parent's pagemap says PM_MMAP_EXCLUSIVE",
			     (unsigned long)i, (unsigned long)(p & PM_PFN));
	}
	if (write(to_child[1], &c, 1) != 1 || waitpid(child, NULL, 0) != child)
		setup_failed("ending the child");
	splats_since(kmsg);
	if (strcmp(shmem_was, "never") == 0 || strcmp(shmem_was, "deny") == 0)
		write_str(THP "shmem_enabled", shmem_was);
	if (!thp && !failures) {
		errno = 0;
		setup_failed("the shared page is not in a THP (shmem THPs off?)");
	}
	if (failures)
		return 1;
	printf("PASS\n");
	return 0;
}

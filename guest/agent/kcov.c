// SPDX-License-Identifier: GPL-2.0
/*
 * KCOV coverage, for coverage-guided fuzzing (docs/PROTOCOL.md, `cov`).
 *
 * KCOV traces per task, and only code built with KCOV_INSTRUMENT (mm/ on
 * the kcov kernels). The controller owns every trace buffer: it opens (or
 * reuses) one kcov fd per workload process, sizes and maps it, and hands
 * the fd to the worker (p0 inherits it at KCOV_FD; a forked child gets it
 * with its control socket), which turns tracing on for itself with
 * KCOV_ENABLE and never looks at it again. After each worker call the
 * controller folds what the worker's buffer holds into one set of PCs and
 * empties the buffer. The controller traces itself too, but only what it
 * does on a step's behalf: the module's walk (/proc/mtest), split and
 * migrate (kcov_begin/kcov_end around those syscalls). Its own truth
 * reading (pagemap, /proc/PID/mem) is not traced, nor compaction
 * (op_compact).
 *
 * Kernel threads are seen only where the kernel carries kcov-remote.patch
 * (images/): it wraps one ksmd scan batch and one khugepaged scan in
 * kcov_remote_start() with a handle of its own subsystem. A remote kcov
 * must be enabled by a task that traces nothing else, so a holder process
 * enables it and sleeps, while the controller maps the same buffer and
 * folds it like the others. Not seen: kcompactd, and a process's exit:
 * do_exit() calls kcov_task_exit() before exit_mm(), so the unmapping at
 * exit is not traced (munmap reaches the same code).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kcov.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "handlers.h"
#include "kcov.h"
#include "proctable.h"
#include "request.h"

#define KCOV_PATH	"/sys/kernel/debug/kcov"
/*
 * Words per buffer (a count, then PCs). 2 MiB per workload process: at 512
 * KiB, one fuzz run in ten filled one (a write or populate of hundreds of
 * pages traces the fault path once per page). The controller gets as much.
 */
#define WORKER_WORDS	262144UL
#define SELF_WORDS	WORKER_WORDS
#define LINE_BUDGET	60000		/* bytes of PCs per D line (< MAX_LINE) */

static int kcov_present;	/* the kernel has KCOV (debugfs kcov exists) */
static int kcov_on;		/* the host asked for coverage (cov enable=1) */
static const char *kcov_op;	/* the op being served, for overflow_ops */

static struct kcov_buf self = { .fd = -1 };

/* kcov-remote.patch: ksmd is instance 1, khugepaged instance 2. */
#ifndef KCOV_SUBSYSTEM_MM
#define KCOV_SUBSYSTEM_MM	(0x72ull << 56)
#endif
static struct kcov_buf remote = { .fd = -1 };
static pid_t remote_holder;

/*
 * Buffers are reused: making one (vmalloc, zeroing, mapping 2 MiB) costs
 * more than a fuzz step. A buffer whose process was dropped waits in dying
 * until that pid is gone (reaped: do_exit() has unbound it, and a new task
 * may KCOV_ENABLE it), then moves to spare.
 */
#define MAX_SPARE	(2 * MAX_PROCS)
static struct kcov_buf spare[MAX_SPARE];
static int nspare;
static struct {
	struct kcov_buf k;
	pid_t pid;
} dying[MAX_SPARE];
static int ndying;

/* The PCs since the last `cov`: open addressing, 0 marks a free slot. */
static uint64_t *set;
static size_t set_cap, set_len;
static int overflowed;
static char overflow_ops[128];	/* "compact,write": the ops whose steps did */

/* Notes that a buffer filled up during the current request. */
static void overflow(void)
{
	const char *op = kcov_op ? kcov_op : "?";
	size_t n = strlen(overflow_ops), k = strlen(op);
	char *s;

	overflowed = 1;
	for (s = overflow_ops; (s = strstr(s, op)); s += k)
		if ((s == overflow_ops || s[-1] == ',') &&
		    (s[k] == ',' || !s[k]))
			return;
	if (n + k + 2 > sizeof(overflow_ops))
		return;
	snprintf(overflow_ops + n, sizeof(overflow_ops) - n, "%s%s",
		 n ? "," : "", op);
}

static size_t hash(uint64_t pc)
{
	return (pc * 0x9e3779b97f4a7c15ULL) >> 32;
}

static int set_grow(void)
{
	size_t cap = set_cap ? set_cap * 2 : 1 << 14, i;
	uint64_t *t = calloc(cap, sizeof(*t));

	if (!t)
		return -1;
	for (i = 0; i < set_cap; i++) {
		uint64_t pc = set[i];
		size_t h;

		if (!pc)
			continue;
		for (h = hash(pc); ; h++)
			if (!t[h & (cap - 1)]) {
				t[h & (cap - 1)] = pc;
				break;
			}
	}
	free(set);
	set = t;
	set_cap = cap;
	return 0;
}

static void set_add(uint64_t pc)
{
	size_t h;

	if (!pc)
		return;
	if (2 * (set_len + 1) > set_cap && set_grow()) {
		overflowed = 1;	/* out of memory: the set is incomplete */
		return;
	}
	for (h = hash(pc); ; h++) {
		uint64_t *slot = &set[h & (set_cap - 1)];

		if (*slot == pc)
			return;
		if (!*slot) {
			*slot = pc;
			set_len++;
			return;
		}
	}
}

int kcov_available(void)
{
	return kcov_present;
}

/* The op whose steps fill a buffer from now on, as overflow_ops names it. */
void kcov_request(const char *op)
{
	kcov_op = op;
}

void kcov_boot(void)
{
	kcov_present = access(KCOV_PATH, R_OK | W_OK) == 0;
	if (!kcov_present)
		con("rmapcheck-agent: no %s: coverage is off\n", KCOV_PATH);
}

/*
 * A fresh trace buffer in k when coverage is on, else k->fd = -1. The
 * controller's mapping is MADV_DONTFORK, so workers forked from it never
 * carry another process's buffer in their address space.
 */
static int open_words(struct ctx *c, struct kcov_buf *k, size_t words)
{
	size_t len = words * sizeof(uint64_t);
	int e;

	k->fd = -1;
	k->area = NULL;
	k->words = words;
	if (!kcov_on)
		return 0;
	k->fd = open(KCOV_PATH, O_RDWR | O_CLOEXEC);
	if (k->fd < 0)
		return fail(c, errno, "open-kcov");
	if (ioctl(k->fd, KCOV_INIT_TRACE, words))
		goto err;
	k->area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, k->fd,
		       0);
	if (k->area == MAP_FAILED) {
		k->area = NULL;
		goto err;
	}
	if (madvise(k->area, len, MADV_DONTFORK))
		goto err;
	return 0;
err:
	e = errno;
	kcov_close(k);
	return fail(c, e, "kcov");
}

/* Dying buffers whose process is gone become spare. */
static void recycle(void)
{
	int i;

	for (i = ndying - 1; i >= 0; i--) {
		if (!kill(dying[i].pid, 0) || errno != ESRCH ||
		    nspare == MAX_SPARE)
			continue;
		spare[nspare++] = dying[i].k;
		dying[i] = dying[--ndying];
	}
}

int kcov_open(struct ctx *c, struct kcov_buf *k)
{
	if (kcov_on) {
		recycle();
		if (nspare) {
			*k = spare[--nspare];
			__atomic_store_n(&k->area[0], 0, __ATOMIC_RELEASE);
			return 0;
		}
	}
	return open_words(c, k, WORKER_WORDS);
}

/* Folds k and keeps it for reuse once pid (its process) is gone. */
void kcov_retire(struct kcov_buf *k, pid_t pid)
{
	kcov_fold(k);
	if (!k->area || k->words != WORKER_WORDS || ndying == MAX_SPARE) {
		kcov_close(k);
		return;
	}
	dying[ndying].k = *k;
	dying[ndying++].pid = pid;
	k->fd = -1;
	k->area = NULL;
}

/* Frees every kept buffer (coverage goes off). */
static void drop_kept(void)
{
	while (nspare)
		kcov_close(&spare[--nspare]);
	while (ndying)
		kcov_close(&dying[--ndying].k);
}

/* Folds what k's buffer holds into the set and empties the buffer. */
void kcov_fold(struct kcov_buf *k)
{
	uint64_t n, i;

	if (!k->area)
		return;
	n = __atomic_load_n(&k->area[0], __ATOMIC_ACQUIRE);
	/* KCOV stops writing when the next PC would not fit. */
	if (n >= k->words - 1) {
		overflow();
		n = k->words - 1;
	}
	for (i = 1; i <= n; i++)
		set_add(k->area[i]);
	__atomic_store_n(&k->area[0], 0, __ATOMIC_RELEASE);
}

/* Folds and frees k; the process it traced may still be exiting. */
void kcov_close(struct kcov_buf *k)
{
	kcov_fold(k);
	if (k->area)
		munmap(k->area, k->words * sizeof(uint64_t));
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	k->area = NULL;
}

/* In a worker: trace this task into the buffer at KCOV_FD, if any. */
void kcov_enable_self(void)
{
	if (fcntl(KCOV_FD, F_GETFD) < 0)
		return;
	if (ioctl(KCOV_FD, KCOV_ENABLE, KCOV_TRACE_PC))
		close(KCOV_FD);
}

/*
 * The controller traces itself only between begin and end: tracing its
 * truth reads too (the GUP of every /proc/PID/mem read) and throwing that
 * away made each pagemap read slower.
 */
static int self_tracing;

void kcov_begin(void)
{
	if (!self.area)
		return;
	__atomic_store_n(&self.area[0], 0, __ATOMIC_RELEASE);
	self_tracing = !ioctl(self.fd, KCOV_ENABLE, KCOV_TRACE_PC);
}

void kcov_end(void)
{
	if (!self_tracing)
		return;
	ioctl(self.fd, KCOV_DISABLE, 0);
	self_tracing = 0;
	kcov_fold(&self);
}

/*
 * Sorts v[0..n) with tmp as scratch: LSD radix by bytes, skipping the bytes
 * every PC shares (kernel text differs in its low bytes only). qsort's
 * calls to a comparator cost several times more.
 */
static void radix_sort(uint64_t *v, uint64_t *tmp, size_t n)
{
	uint64_t all_or = 0, all_and = ~0ULL, *src = v, *dst = tmp, *t;
	size_t count[256], i, pos;
	int shift, b;

	for (i = 0; i < n; i++) {
		all_or |= v[i];
		all_and &= v[i];
	}
	for (shift = 0; shift < 64; shift += 8) {
		if (!((all_or ^ all_and) >> shift & 0xff))
			continue;
		memset(count, 0, sizeof(count));
		for (i = 0; i < n; i++)
			count[src[i] >> shift & 0xff]++;
		for (b = 0, pos = 0; b < 256; b++) {
			size_t c = count[b];

			count[b] = pos;
			pos += c;
		}
		for (i = 0; i < n; i++)
			dst[count[src[i] >> shift & 0xff]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
}

/* The set as D lines: `pcs=<first>,<delta>,...` in hex, sorted. */
static int emit(struct ctx *c)
{
	size_t i, n = 0, start = 0, cap = set_len ? set_len : 1;
	uint64_t *pcs = malloc(2 * cap * sizeof(*pcs));

	if (!pcs)
		return fail(c, ENOMEM, "malloc");
	for (i = 0; i < set_cap; i++)
		if (set[i])
			pcs[n++] = set[i];
	radix_sort(pcs, pcs + cap, n);
	for (i = 0; i < n; i++) {
		if (i == 0 || c->data->len - start > LINE_BUDGET) {
			if (i)
				sb_add(c->data, "\n");
			start = c->data->len;
			sb_add(c->data, "D pcs=");
			sb_hex_bare(c->data, pcs[i]);
		} else {
			sb_addn(c->data, ",", 1);
			sb_hex_bare(c->data, pcs[i] - pcs[i - 1]);
		}
	}
	if (n)
		sb_add(c->data, "\n");
	sb_printf(c->fields, " n=%zu", n);
	free(pcs);
	return 0;
}

static void set_clear(void)
{
	if (set)
		memset(set, 0, set_cap * sizeof(*set));
	set_len = 0;
	overflowed = 0;
	overflow_ops[0] = '\0';
}

static void remote_close(void)
{
	if (remote_holder > 0) {
		kill(remote_holder, SIGKILL);
		waitpid(remote_holder, NULL, 0);
	}
	remote_holder = 0;
	kcov_close(&remote);
}

/*
 * Coverage of ksmd and khugepaged, where the kernel offers it. A kernel
 * without kcov-remote.patch refuses the handles (EINVAL): that is no
 * error, just no coverage of kernel threads, said once on the console.
 */
static void remote_open(struct ctx *c)
{
	struct {
		struct kcov_remote_arg arg;
		uint64_t handles[2];
	} r = {
		.arg = {
			.trace_mode = KCOV_TRACE_PC,
			.area_size = WORKER_WORDS,
			.num_handles = 2,
		},
		.handles = { KCOV_SUBSYSTEM_MM | 1, KCOV_SUBSYSTEM_MM | 2 },
	};
	static int said;
	int pipefd[2], e = 0;
	pid_t pid;

	if (open_words(c, &remote, WORKER_WORDS)) {
		/* Not this op's failure: only the remote part is missing. */
		e = c->err;
		c->err = 0;
		c->msg[0] = '\0';
		goto none;
	}
	if (pipe2(pipefd, O_CLOEXEC)) {
		e = errno;
		goto none;
	}
	pid = fork();
	if (pid == 0) {
		/* The holder: enable, report, then sleep until killed. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (ioctl(remote.fd, KCOV_REMOTE_ENABLE, &r.arg))
			e = errno;
		if (write(pipefd[1], &e, sizeof(e)) != sizeof(e))
			_exit(1);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	if (pid < 0 || read(pipefd[0], &e, sizeof(e)) != sizeof(e))
		e = pid < 0 ? errno : EPIPE;
	close(pipefd[0]);
	remote_holder = pid;
	if (!e)
		return;
none:
	if (!said++)
		con("rmapcheck-agent: no remote KCOV (errno %d): ksmd and khugepaged are not traced\n",
		    e);
	remote_close();
}

/* Folds what ksmd and khugepaged traced since the last fold. */
void kcov_fold_remote(void)
{
	kcov_fold(&remote);
}

/*
 * cov [enable=0|1]: with enable, turns collection on or off for processes
 * made from now on (and for the controller at once); without, answers the
 * PCs since the last cov and forgets them.
 */
int op_cov(struct ctx *c)
{
	struct proc *p;
	uint64_t enable;
	int rc;

	if (num(c, "enable", 2, 1, &enable))
		return bad(c, "enable");
	if (enable == 1 && !kcov_present)
		return fail(c, ENOENT, "no-kcov");
	if (enable != 2) {
		if (enable && !kcov_on) {
			kcov_on = 1;
			rc = open_words(c, &self, SELF_WORDS);
			if (rc) {
				kcov_on = 0;
				return rc;
			}
			/* Refused here, or never: begin would trace nothing. */
			if (ioctl(self.fd, KCOV_ENABLE, KCOV_TRACE_PC) ||
			    ioctl(self.fd, KCOV_DISABLE, 0)) {
				rc = fail(c, errno, "kcov-enable");
				kcov_close(&self);
				kcov_on = 0;
				return rc;
			}
			remote_open(c);
		} else if (!enable && kcov_on) {
			/* Workers keep tracing into buffers nobody reads. */
			for (p = proc_next(NULL); p; p = proc_next(p))
				kcov_close(&p->kcov);
			drop_kept();
			remote_close();
			kcov_close(&self);
			kcov_on = 0;
		}
		set_clear();
		sb_printf(c->fields, " on=%d", kcov_on);
		return 0;
	}
	for (p = proc_next(NULL); p; p = proc_next(p))
		kcov_fold(&p->kcov);
	kcov_fold_remote();
	rc = emit(c);
	sb_printf(c->fields, " overflow=%d on=%d", overflowed, kcov_on);
	if (overflowed)
		sb_printf(c->fields, " overflow_ops=%s",
			  overflow_ops[0] ? overflow_ops : "-");
	set_clear();
	return rc;
}

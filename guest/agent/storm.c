// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile load on /proc/mtest for the reliability tests: several threads write
 * garbage, oversized and racing commands while churn processes mmap, write,
 * fork, munmap, mremap and exit under them. The module must answer every write
 * with a byte count or an expected errno, and the kernel must stay untainted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "handlers.h"
#include "request.h"
#include "sysfs.h"

#define MAX_THREADS	8
#define MAX_CHURN	4
#define CHURN_PAGES	16
#define TAINTED		"/proc/sys/kernel/tainted"

/* What a churner publishes so writers can aim at live (or dying) memory. */
struct target {
	volatile pid_t pid;		/* the churner */
	volatile pid_t gone;		/* a child that has exited */
	volatile unsigned long addr;	/* its current region, or 0 */
};

struct storm {
	struct target *targets;		/* MAP_SHARED with the churners */
	int ntargets;
	uint64_t writes;		/* per thread */
	uint64_t seed;
	/* Results, one slot per thread. */
	uint64_t ok[MAX_THREADS], unexpected[MAX_THREADS];
	uint64_t by_errno[MAX_THREADS][8];
	int first_bad[MAX_THREADS];
};

/* The errnos a hostile write may get; anything else is a bug. */
static const int expected[] = { EINVAL, ESRCH, EFAULT, E2BIG, EOPNOTSUPP,
				EINTR, ENOMEM, ENOENT };

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A churner: remaps its region and forks short-lived children until killed. */
static void churn(struct target *t, uint64_t seed)
{
	long ps = page_size;
	char *p = NULL;

	t->pid = getpid();
	for (;;) {
		uint64_t r = rnd(&seed);
		pid_t c;

		if (!p) {
			p = mmap(NULL, CHURN_PAGES * ps, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED) {
				p = NULL;
				continue;
			}
			memset(p, (int)r, CHURN_PAGES * ps);
			t->addr = (unsigned long)p;
		}
		switch (r % 5) {
		case 0:
			c = fork();
			if (c == 0) {
				p[(r >> 8) % CHURN_PAGES * ps] = 1;
				_exit(0);
			}
			if (c > 0) {
				waitpid(c, NULL, 0);
				t->gone = c;
			}
			break;
		case 1:
			munmap(p + (r >> 8) % CHURN_PAGES * ps, ps);
			break;
		case 2: {
			char *q = mremap(p, CHURN_PAGES * ps, CHURN_PAGES * ps,
					 MREMAP_MAYMOVE);

			if (q != MAP_FAILED)
				p = q;
			t->addr = (unsigned long)p;
			break;
		}
		case 3:
			t->addr = 0;
			munmap(p, CHURN_PAGES * ps);
			p = NULL;
			break;
		default:
			memset(p, (int)r, ps);
			break;
		}
	}
}

static size_t hostile(char *buf, size_t cap, struct storm *s, uint64_t *seed)
{
	struct target *t = &s->targets[rnd(seed) % s->ntargets];
	unsigned long addr = t->addr + rnd(seed) % CHURN_PAGES * page_size;
	size_t n, i;

	switch (rnd(seed) % 8) {
	case 0:		/* random bytes */
		n = 1 + rnd(seed) % 300;
		for (i = 0; i < n; i++)
			buf[i] = (char)rnd(seed);
		return n;
	case 1:		/* oversized */
		n = cap;
		memset(buf, 'f', n);
		return n;
	case 2:		/* racing a churner's munmap/mremap */
		return snprintf(buf, cap, "findpage %d 0x%lx", t->pid, addr);
	case 3:		/* a pid that has exited */
		return snprintf(buf, cap, "findpage %d 0x%lx", t->gone, addr);
	case 4:		/* a kernel address */
		return snprintf(buf, cap, "findpage %d 0xffff%012llx", t->pid,
				(unsigned long long)(rnd(seed) & 0xffffffffffffULL));
	case 5:		/* select a task, or walk in the selected one */
		if (rnd(seed) & 1)
			return snprintf(buf, cap, "findtask%d", t->pid);
		return snprintf(buf, cap, "findpage0x%lx", addr);
	case 6:		/* unmapped and wild addresses */
		return snprintf(buf, cap, "findpage %d 0x%llx", t->pid,
				(unsigned long long)rnd(seed));
	default:	/* bad numbers */
		return snprintf(buf, cap, "findpage -%llu 0x",
				(unsigned long long)rnd(seed));
	}
}

struct arg {
	struct storm *s;
	int idx;
};

static void *writer(void *p)
{
	struct arg *a = p;
	struct storm *s = a->s;
	uint64_t seed = s->seed * 7919 + a->idx + 1, i;
	char buf[4096];
	int fd = open("/proc/mtest", O_WRONLY | O_CLOEXEC);

	s->first_bad[a->idx] = 0;
	if (fd < 0) {
		s->unexpected[a->idx] = s->writes;
		s->first_bad[a->idx] = errno;
		return NULL;
	}
	for (i = 0; i < s->writes; i++) {
		size_t n = hostile(buf, sizeof(buf), s, &seed);
		ssize_t w = write(fd, buf, n);
		size_t k;

		if (w == (ssize_t)n) {
			s->ok[a->idx]++;
			continue;
		}
		for (k = 0; k < sizeof(expected) / sizeof(expected[0]); k++)
			if (w < 0 && errno == expected[k])
				break;
		if (k < sizeof(expected) / sizeof(expected[0])) {
			s->by_errno[a->idx][k]++;
		} else {
			s->unexpected[a->idx]++;
			if (!s->first_bad[a->idx])
				s->first_bad[a->idx] = w < 0 ? errno : -1;
		}
	}
	close(fd);
	return NULL;
}

static int key_u64(struct ctx *c, const char *k, uint64_t def,
		   uint64_t lo, uint64_t hi, uint64_t *out)
{
	const char *v = kv_get(c->req, k);

	*out = def;
	if (v && parse_u64(v, out))
		return -1;
	return *out < lo || *out > hi ? -1 : 0;
}

int op_tainted(struct ctx *c)
{
	uint64_t t;

	(void)c;
	if (sysfs_u64(TAINTED, &t))
		return fail(c, errno, "tainted");
	sb_printf(c->fields, " value=%llu", (unsigned long long)t);
	return 0;
}

int op_storm(struct ctx *c)
{
	uint64_t threads, writes, churners, seed, total_ok = 0, total_bad = 0;
	uint64_t errs[8] = { 0 };
	pthread_t tid[MAX_THREADS];
	struct arg args[MAX_THREADS];
	pid_t kids[MAX_CHURN];
	struct storm *s;
	uint64_t before, after = 0;
	int i, k, first_bad = 0;

	if (key_u64(c, "threads", 4, 1, MAX_THREADS, &threads))
		return bad(c, "threads");
	if (key_u64(c, "writes", 250, 1, 100000, &writes))
		return bad(c, "writes");
	if (key_u64(c, "churn", 2, 1, MAX_CHURN, &churners))
		return bad(c, "churn");
	if (key_u64(c, "seed", 1, 0, UINT64_MAX, &seed))
		return bad(c, "seed");
	if (sysfs_u64(TAINTED, &before))
		return fail(c, errno, "tainted");
	s = calloc(1, sizeof(*s));
	if (!s)
		return fail(c, ENOMEM, "calloc");
	s->targets = mmap(NULL, sizeof(struct target) * MAX_CHURN,
			  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			  -1, 0);
	if (s->targets == MAP_FAILED) {
		free(s);
		return fail(c, errno, "mmap");
	}
	s->ntargets = churners;
	s->writes = writes;
	s->seed = seed ? seed : 1;
	for (i = 0; i < (int)churners; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			signal(SIGCHLD, SIG_DFL);
			churn(&s->targets[i], s->seed + i + 1);
		}
		/* Writers aim at pid 1 until the churner has published itself. */
		s->targets[i].pid = kids[i] > 0 ? kids[i] : 1;
	}
	for (i = 0; i < (int)threads; i++) {
		args[i] = (struct arg){ s, i };
		if (pthread_create(&tid[i], NULL, writer, &args[i]))
			threads = i;
	}
	for (i = 0; i < (int)threads; i++)
		pthread_join(tid[i], NULL);
	for (i = 0; i < (int)churners; i++) {
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
		}
	}
	for (i = 0; i < (int)threads; i++) {
		total_ok += s->ok[i];
		total_bad += s->unexpected[i];
		for (k = 0; k < 8; k++)
			errs[k] += s->by_errno[i][k];
		if (!first_bad && s->first_bad[i])
			first_bad = s->first_bad[i];
	}
	sysfs_u64(TAINTED, &after);
	sb_printf(c->fields, " writes=%llu ok=%llu unexpected=%llu first_bad=%d",
		  (unsigned long long)(threads * writes),
		  (unsigned long long)total_ok, (unsigned long long)total_bad,
		  first_bad);
	for (k = 0; k < 8; k++)
		sb_printf(c->fields, " e%d=%llu", expected[k],
			  (unsigned long long)errs[k]);
	sb_printf(c->fields, " tainted_before=%llu tainted_after=%llu",
		  (unsigned long long)before, (unsigned long long)after);
	munmap(s->targets, sizeof(struct target) * MAX_CHURN);
	free(s);
	return 0;
}

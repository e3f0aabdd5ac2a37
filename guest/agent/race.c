// SPDX-License-Identifier: GPL-2.0
/*
 * The walk against the last mapper's exit: for the module-safety test on the
 * KASAN kernel. Each round a child maps and writes one anon page, then on a
 * signal from the shared page unmaps it (even rounds) or exits (odd rounds),
 * while the agent asks /proc/mtest to walk that very page. If the walk did not
 * keep the anon_vma alive, KASAN would report a use-after-free here.
 *
 * A round overlaps when the walk and the child's unmap or exit ran at the
 * same time: on two CPUs, and in flight together (the child's stage brackets
 * its syscall; the agent samples it, and whether the child is a zombie yet,
 * just before and just after its write). One CPU only interleaves the two.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handlers.h"
#include "request.h"
#include "sysfs.h"

#define TAINTED		"/proc/sys/kernel/tainted"

/* How far one round's child is with its unmap or exit. */
enum stage { WAITING, TEARING, DONE };

/* What the agent and one round's child share. */
struct round {
	volatile unsigned long addr;	/* the child's page, once written */
	volatile int go;		/* the agent says: unmap or exit now */
	volatile int stage;		/* enum stage; an exit never says DONE */
	volatile int cpu;		/* where the child unmaps or exits */
};

/* The child of one round: map, write, publish, then vanish on the signal. */
static void racer(struct round *rd, int exit_instead)
{
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		_exit(1);
	p[0] = 1;
	rd->addr = (unsigned long)p;
	while (!rd->go)
		sched_yield();
	rd->cpu = sched_getcpu();
	rd->stage = TEARING;
	if (exit_instead)
		_exit(0);
	munmap(p, 4096);
	rd->stage = DONE;
	_exit(0);
}

/* The child's unmap or exit is over: DONE, or its exit made it a zombie. */
static int torn_down(const struct round *rd, pid_t kid)
{
	siginfo_t si = { 0 };

	if (rd->stage == DONE)
		return 1;
	return !waitid(P_PID, kid, &si, WEXITED | WNOHANG | WNOWAIT) &&
	       si.si_pid == kid;
}

int op_race(struct ctx *c)
{
	uint64_t rounds, i, walked = 0, gone = 0, unexpected = 0, overlaps = 0;
	uint64_t before, after = 0;
	int first_bad = 0, fd;
	struct round *rd;

	if (num(c, "rounds", 10000, 1000000, &rounds))
		return bad(c, "rounds");
	if (sysfs_u64(TAINTED, &before))
		return fail(c, errno, "tainted");
	fd = open("/proc/mtest", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(c, errno, "open-mtest");
	rd = mmap(NULL, sizeof(*rd), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rd == MAP_FAILED) {
		close(fd);
		return fail(c, errno, "mmap");
	}
	for (i = 0; i < rounds; i++) {
		char cmd[64];
		int n, err, done_before, cpu;
		pid_t kid;

		rd->addr = 0;
		rd->go = 0;
		rd->stage = WAITING;
		kid = fork();
		if (kid < 0) {
			first_bad = first_bad ? first_bad : errno;
			unexpected++;
			break;
		}
		if (kid == 0) {
			signal(SIGCHLD, SIG_DFL);
			racer(rd, i & 1);
		}
		while (!rd->addr)
			sched_yield();
		n = snprintf(cmd, sizeof(cmd), "findpage %d 0x%lx", kid,
			     rd->addr);
		/* Let the child go, then walk at once: the two race. */
		rd->go = 1;
		cpu = sched_getcpu();
		done_before = torn_down(rd, kid);
		err = write(fd, cmd, n) == n ? 0 : errno;
		if (!done_before && rd->stage != WAITING && rd->cpu != cpu &&
		    sched_getcpu() == cpu)
			overlaps++;
		if (!err)
			walked++;
		else if (err == ESRCH || err == EFAULT || err == ENOENT)
			gone++;
		else {
			unexpected++;
			first_bad = first_bad ? first_bad : err;
		}
		waitpid(kid, NULL, 0);
	}
	sysfs_u64(TAINTED, &after);
	sb_printf(c->fields,
		  " rounds=%llu walked=%llu gone=%llu overlaps=%llu unexpected=%llu first_bad=%d tainted_before=%llu tainted_after=%llu",
		  (unsigned long long)i, (unsigned long long)walked,
		  (unsigned long long)gone, (unsigned long long)overlaps,
		  (unsigned long long)unexpected,
		  first_bad, (unsigned long long)before,
		  (unsigned long long)after);
	munmap(rd, sizeof(*rd));
	close(fd);
	return 0;
}

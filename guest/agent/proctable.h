/* SPDX-License-Identifier: GPL-2.0 */
/*
 * proctable.c: the workload processes and the call that sends one of them a
 * request. A process keeps its slot for life: a struct proc * stays valid
 * until that process is dropped (proc_live() then says 0), and never names
 * another process meanwhile.
 */
#ifndef RMC_PROCTABLE_H
#define RMC_PROCTABLE_H

#include <sys/types.h>

#include "kcov.h"
#include "ops.h"
#include "worker.h"

#define GONE_TIMEOUT_MS		10000

struct proc {
	char label[NAME_LEN];
	pid_t pid;
	int ctl;	/* SOCK_SEQPACKET to the worker */
	int pagemap;	/* /proc/<pid>/pagemap */
	int mem;	/* /proc/<pid>/mem, read-write */
	struct kcov_buf kcov;	/* fd -1 when coverage is off */
	struct wrep *table;	/* its W_LIST answer while still true, or NULL */
	int mergeable;		/* a madvise made some of its memory mergeable */
	int live;
	int hung;	/* stuck in the kernel past a request's deadline */
	uint64_t seq;		/* creation order */
};

struct proc *proc_find(const char *label);
struct proc *proc_next(const struct proc *prev);
int proc_live(const struct proc *p);
int proc_count(void);
void proc_drop(struct proc *p);
int proc_add(struct ctx *c, const char *label, pid_t pid, int ctl,
	     struct kcov_buf *kcov, struct proc **out);
int procs_kill_all(struct ctx *c);
int start_p0(struct ctx *c);
void reap(void);
int wait_gone(const pid_t *ids, int n, int ms);

int wcall(struct ctx *c, struct proc *p, const struct wreq *q,
	  struct wrep *ans);
int wcall_fds(struct ctx *c, struct proc *p, const struct wreq *q,
	      const int *fds, int nfds, struct wrep *ans);
int proc_table(struct ctx *c, struct proc *p, const struct wrep **out);

/* Where one page of a named map is, from its process's table. */
struct page_at {
	uint64_t addr;
	int mapped;	/* the page is still the map's */
};

int proc_lookup(struct ctx *c, struct proc *p, const struct wreq *q,
		uint64_t count, struct page_at *at);

#endif

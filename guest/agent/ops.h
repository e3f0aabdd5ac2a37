/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The controller's op machinery, shared by the files that implement it:
 * the process table (proctable.c), the request helpers (request.c) and the
 * handlers, grouped by concern (op_*.c), which ops.c lists in one table.
 */
#ifndef RMC_OPS_H
#define RMC_OPS_H

#include "agent.h"

#define PFN_MASK		((1ULL << 55) - 1)
#define PM_PRESENT		(1ULL << 63)
#define PM_SWAP			(1ULL << 62)
#define PM_MMAP_EXCLUSIVE	(1ULL << 56)
#define REQUIRED		UINT64_MAX
#define GONE_TIMEOUT_MS		10000

/* ---- kcov.c ---- */

/* One KCOV trace buffer, mapped by the controller: count, then PCs. */
struct kcov_buf {
	int fd;
	uint64_t *area;
	size_t words;
};

extern int kcov_present, kcov_on;
void kcov_boot(void);
int kcov_open(struct kcov_buf *k);
void kcov_fold(struct kcov_buf *k);
void kcov_close(struct kcov_buf *k);
void kcov_retire(struct kcov_buf *k, pid_t pid);
void kcov_begin(void);
void kcov_end(void);
int op_cov(const struct req *r);

/* ---- proctable.c ---- */

struct proc {
	char label[NAME_LEN];
	pid_t pid;
	int ctl;	/* SOCK_SEQPACKET to the worker */
	int pagemap;	/* /proc/<pid>/pagemap */
	int mem;	/* /proc/<pid>/mem, read-write */
	struct kcov_buf kcov;	/* fd -1 when coverage is off */
	struct wrep *table;	/* its W_LIST answer while still true, or NULL */
	int mergeable;		/* a madvise made some of its memory mergeable */
};

extern struct proc procs[MAX_PROCS];
extern int nprocs;
extern pid_t pgid;
extern struct wrep wr;

uint64_t now_us(void);
int wait_gone(const pid_t *ids, int n, int ms);
struct proc *find_proc(const char *label);
void drop_proc(struct proc *p);
int add_proc(const char *label, pid_t pid, int ctl, struct kcov_buf *kcov);
int start_p0(void);
int wcall(struct proc *p, const struct wreq *q, int passfd);
int wcall_fds(struct proc *p, const struct wreq *q, const int *fds, int nfds);
int proc_table(struct proc *p, const struct wrep **out);
int proc_lookup(struct proc *p, const struct wreq *q, uint64_t count);

/* ---- request.c ---- */

/* A word a key may take, and what it stands for. */
struct named {
	const char *name;
	int value;
};

extern uint64_t max_pages;

int num(const struct req *r, const char *k, uint64_t def, uint64_t max,
	uint64_t *v);
int pick(const char *s, const struct named *names);
struct proc *req_proc(const struct req *r);
int req_map(const struct req *r, struct wreq *q, uint32_t op);
int req_pages(const struct req *r, struct wreq *q, uint64_t count_def,
	      uint64_t count_max);
int add_pfns(struct sbuf *sb, const struct proc *p, uint64_t addr,
	     uint64_t count, const uint8_t *bits, struct sbuf *data);
/* What add_pages gathers besides the pfns; a NULL sbuf is not asked for. */
struct page_lists {
	struct sbuf *data, *swap, *excl;
	struct sbuf *folio;	/* h: a large folio's head, t: a tail, -: neither */
	int npresent, nswap, nexcl, nlarge;
};
ssize_t kpageflags_read(uint64_t pfn, uint64_t n, uint64_t *out);
int add_pages(struct sbuf *sb, const struct proc *p, uint64_t addr,
	      uint64_t count, const uint8_t *bits, struct page_lists *l);
void tokens_forget(void);
int sysfs_write(const char *path, const char *val);
int hexval(char c);

/* ---- the handlers ---- */

/* op_maps.c */
int op_mmap(const struct req *r);
int op_munmap(const struct req *r);
int op_mprotect(const struct req *r);
int op_madvise(const struct req *r);
int op_mremap(const struct req *r);
/* op_memory.c */
int op_write(const struct req *r);
int op_read(const struct req *r);
int op_pagemap(const struct req *r);
int pagemap_lines(int with_data);
int op_poke(const struct req *r);
/* op_folio.c */
int op_folio(const struct req *r);
/* op_procs.c */
extern int tmp_dirty;
int op_reset(const struct req *r);
int op_fork(const struct req *r);
int op_exit(const struct req *r);
/* op_inspect.c */
void inspect_open(void);
int op_findpage(const struct req *r);
int op_findpages(const struct req *r);
int op_findtask(const struct req *r);
int op_kpage(const struct req *r);
int op_mtest(const struct req *r);
int op_modparam(const struct req *r);
/* op_sys.c */
int op_ping(const struct req *r);
int op_ksm(const struct req *r);
int op_seed(const struct req *r);
int op_panic(const struct req *r);
int op_hang(const struct req *r);
int op_crash(const struct req *r);
int op_poweroff(const struct req *r);
/* op_modern.c (modern_boot is in agent.h) */
void modern_reset(void);
int op_sysinfo(const struct req *r);
int op_mthp(const struct req *r);
int op_split(const struct req *r);
int op_migrate(const struct req *r);
int op_compact(const struct req *r);
int op_mlock(const struct req *r);
int op_munlock(const struct req *r);
int op_mlockall(const struct req *r);
int op_munlockall(const struct req *r);
/* op_exec.c */
int op_exec(const struct req *r);
/* storm.c */
int op_storm(const struct req *r);
/* race.c */
int op_race(const struct req *r);
int op_tainted(const struct req *r);

#endif

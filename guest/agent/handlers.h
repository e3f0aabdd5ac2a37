/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The op handlers, by the file that holds them: all that ops.c's table
 * needs of those files, and the little else one of them offers.
 */
#ifndef RMC_HANDLERS_H
#define RMC_HANDLERS_H

#include "ops.h"

/* kcov.c */
int op_cov(struct ctx *c);
/* op_maps.c */
int op_mmap(struct ctx *c);
int op_munmap(struct ctx *c);
int op_mprotect(struct ctx *c);
int op_madvise(struct ctx *c);
int op_mremap(struct ctx *c);
int op_truncate(struct ctx *c);
int op_punch(struct ctx *c);
int op_uffd(struct ctx *c);
/* op_memory.c */
int op_write(struct ctx *c);
int op_read(struct ctx *c);
int op_pagemap(struct ctx *c);
int op_poke(struct ctx *c);
int pagemap_lines(struct ctx *c, int with_data);
/* op_folio.c */
int op_folio(struct ctx *c);
char *slurp(const char *path);
/* op_procs.c */
int op_reset(struct ctx *c);
int op_fork(struct ctx *c);
int op_exit(struct ctx *c);
int op_wtest(struct ctx *c);
void tmp_files_made(void);
/* op_inspect.c */
void inspect_open(void);
int op_findpage(struct ctx *c);
int op_findpages(struct ctx *c);
int op_findtask(struct ctx *c);
int op_kpage(struct ctx *c);
int op_mtest(struct ctx *c);
int op_modparam(struct ctx *c);
/* op_sys.c */
int op_ping(struct ctx *c);
int op_ksm(struct ctx *c);
int op_seed(struct ctx *c);
int op_panic(struct ctx *c);
int op_hang(struct ctx *c);
int op_crash(struct ctx *c);
int op_poweroff(struct ctx *c);
/* op_modern.c */
void modern_boot(void);
void modern_reset(void);
void join_workload_cgroup(void);
int op_sysinfo(struct ctx *c);
int op_mthp(struct ctx *c);
int op_split(struct ctx *c);
int op_migrate(struct ctx *c);
int op_compact(struct ctx *c);
int op_reclaim(struct ctx *c);
int op_mlock(struct ctx *c);
int op_munlock(struct ctx *c);
int op_mlockall(struct ctx *c);
int op_munlockall(struct ctx *c);
/* op_pin.c */
int op_pin(struct ctx *c);
int op_unpin(struct ctx *c);
int op_remote(struct ctx *c);
/* blockfs.c */
void blockfs_boot(void);
int blockfs_ready(void);
/* op_writeback.c */
int op_msync(struct ctx *c);
int op_fsync(struct ctx *c);
int op_sync(struct ctx *c);
int op_drop_caches(struct ctx *c);
/* op_exec.c */
int op_exec(struct ctx *c);
/* storm.c */
int op_storm(struct ctx *c);
/* race.c */
int op_race(struct ctx *c);
int op_tainted(struct ctx *c);

#endif

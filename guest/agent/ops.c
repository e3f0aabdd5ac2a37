// SPDX-License-Identifier: GPL-2.0
/*
 * The op table: every op the host may send, its handler and the keys it
 * takes. Memory syscalls go to the worker that owns the address space
 * (proctable.c); pagemap, kpagecount/kpageflags and /proc/mtest are read
 * and written by the controller itself.
 */
#include <string.h>

#include "ops.h"

#define KEYS(...)	((const char *const[]){ __VA_ARGS__, NULL })
#define NO_KEYS		((const char *const[]){ NULL })

static const struct op ops[] = {
	{ "ping", op_ping, NO_KEYS },
	{ "reset", op_reset, NO_KEYS },
	{ "mmap", op_mmap, KEYS("proc", "name", "pages", "backing", "share",
				"huge", "at", "at_map", "locked") },
	{ "munmap", op_munmap, KEYS("proc", "name", "page", "count") },
	{ "mprotect", op_mprotect, KEYS("proc", "name", "page", "count",
					"prot") },
	{ "mremap", op_mremap, KEYS("proc", "name", "pages", "move",
				    "dontunmap") },
	{ "madvise", op_madvise, KEYS("proc", "name", "page", "count",
				      "advice") },
	{ "write", op_write, KEYS("proc", "name", "page", "count", "value",
				  "offset", "bytes", "tag") },
	{ "read", op_read, KEYS("proc", "name", "page", "count") },
	{ "fork", op_fork, KEYS("proc", "child") },
	{ "exit", op_exit, KEYS("proc") },
	{ "findpage", op_findpage, KEYS("proc", "name", "page") },
	{ "findpages", op_findpages, KEYS("base", "slots") },
	{ "findtask", op_findtask, KEYS("proc") },
	{ "pagemap", op_pagemap, KEYS("data") },
	{ "poke", op_poke, KEYS("proc", "name", "page", "value") },
	{ "folio", op_folio, KEYS("pfn", "nr", "pmd") },
	{ "kpage", op_kpage, KEYS("pfn") },
	{ "ksm", op_ksm, KEYS("timeout_ms") },
	{ "sysinfo", op_sysinfo, NO_KEYS },
	{ "cov", op_cov, KEYS("enable") },
	{ "mthp", op_mthp, KEYS("size_kb", "anon", "shmem") },
	{ "split", op_split, KEYS("proc", "name", "page", "count") },
	{ "migrate", op_migrate, KEYS("proc", "name", "page", "count",
				      "node") },
	{ "compact", op_compact, NO_KEYS },
	{ "mlock", op_mlock, KEYS("proc", "name", "page", "count", "onfault") },
	{ "munlock", op_munlock, KEYS("proc", "name", "page", "count") },
	{ "mlockall", op_mlockall, KEYS("proc", "current", "future",
					"onfault") },
	{ "munlockall", op_munlockall, KEYS("proc") },
	{ "mtest", op_mtest, KEYS("hex", "fill", "byte") },
	{ "seed", op_seed, KEYS("hex") },
	{ "modparam", op_modparam, KEYS("param", "value") },
	{ "storm", op_storm, KEYS("threads", "writes", "churn", "seed") },
	{ "race", op_race, KEYS("rounds") },
	{ "tainted", op_tainted, NO_KEYS },
	{ "panic", op_panic, NO_KEYS },
	{ "hang", op_hang, NO_KEYS },
	{ "crash", op_crash, NO_KEYS },
	{ "exec", op_exec, KEYS("path", "timeout_ms") },
	{ "poweroff", op_poweroff, NO_KEYS },
};

const struct op *find_op(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(ops[i].name, name))
			return &ops[i];
	return NULL;
}

int ops_init(void)
{
	max_pages = (1ULL << 40) / page_size;
	inspect_open();
	return start_p0();
}

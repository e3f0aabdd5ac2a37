// SPDX-License-Identifier: GPL-2.0
/*
 * The op table: every op the host may send, its handler and the keys it
 * takes. Memory syscalls go to the worker that owns the address space
 * (proctable.c); pagemap, kpagecount/kpageflags and /proc/mtest are read
 * and written by the controller itself.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "handlers.h"
#include "kcov.h"
#include "proctable.h"

#define KEYS(...)	((const char *const[]){ __VA_ARGS__, NULL })
#define NO_KEYS		((const char *const[]){ NULL })

static const struct op ops[] = {
	{ "ping", op_ping, NO_KEYS },
	{ "reset", op_reset, NO_KEYS },
	{ "mmap", op_mmap, KEYS("proc", "name", "pages", "backing", "share",
				"huge", "at", "at_map", "locked", "align") },
	{ "munmap", op_munmap, KEYS("proc", "name", "page", "count") },
	{ "mprotect", op_mprotect, KEYS("proc", "name", "page", "count",
					"prot") },
	{ "mremap", op_mremap, KEYS("proc", "name", "pages", "move",
				    "dontunmap", "page", "count", "to", "to_map",
				    "over", "into", "as") },
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
	{ "reclaim", op_reclaim, KEYS("pages") },
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
	{ "wtest", op_wtest, KEYS("proc", "what") },
	{ "exec", op_exec, KEYS("path", "timeout_ms") },
	{ "poweroff", op_poweroff, NO_KEYS },
	{ "pin", op_pin, KEYS("proc", "name", "page", "count", "kind") },
	{ "unpin", op_unpin, KEYS("proc", "kind") },
	{ "remote", op_remote, KEYS("proc", "name", "page", "count", "kind",
				    "value", "tag", "word") },
	{ "truncate", op_truncate, KEYS("proc", "name", "pages") },
	{ "punch", op_punch, KEYS("proc", "name", "page", "count") },
	{ "msync", op_msync, KEYS("proc", "name", "page", "count", "async") },
	{ "fsync", op_fsync, KEYS("proc", "name", "page") },
	{ "sync", op_sync, NO_KEYS },
	{ "drop_caches", op_drop_caches, NO_KEYS },
	{ "uffd", op_uffd, KEYS("proc", "name", "page", "count", "kind", "mode",
				"value", "tag", "to", "at", "on") },
};

int fail(struct ctx *c, int err, const char *msg)
{
	c->err = err ? err : EIO;
	snprintf(c->msg, sizeof(c->msg), "%s", msg);
	return -c->err;
}

int bad(struct ctx *c, const char *why)
{
	con("rmapcheck-agent: req %llu: bad %s\n",
	    (unsigned long long)c->req->id, why);
	return fail(c, EINVAL, "bad-request");
}

const struct op *find_op(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(ops[i].name, name))
			return &ops[i];
	return NULL;
}

/*
 * Runs op; after one that succeeded, with then, pagemap's D lines too
 * (data=1), saving the host a round trip before its next check. Their
 * failure does not undo the op: the reply says then=0, and the host reads
 * pagemap itself.
 */
int op_call(struct ctx *c, const struct op *op, int then)
{
	size_t len;
	int rc;

	kcov_request(op->name);
	rc = op->fn(c);
	if (rc || !then)
		return rc;
	len = c->data->len;
	if (pagemap_lines(c, 1)) {
		c->data->len = len;
		sb_add(c->fields, " then=0");
	}
	return 0;
}

void ops_boot(void)
{
	modern_boot();
	blockfs_boot();
}

int ops_init(struct ctx *c)
{
	inspect_open();
	return start_p0(c);
}

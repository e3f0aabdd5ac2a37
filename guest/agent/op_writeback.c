// SPDX-License-Identifier: GPL-2.0
/*
 * Writeback: msync and fsync in a workload process, sync and drop_caches
 * for the whole guest. Writing a dirty page cache folio back goes through
 * folio_clear_dirty_for_io() and folio_mkclean(), which write-protects
 * every PTE that maps it; drop_caches then frees the clean folios no one
 * maps, so the next fault reads them back from the block filesystem.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "handlers.h"
#include "request.h"
#include "sysfs.h"

int op_msync(struct ctx *c)
{
	struct wreq q;
	struct proc *p;
	uint64_t async;
	int rc;

	rc = req_map(c, &q, W_MSYNC);
	if (!rc)
		rc = req_pages(c, &q, REQUIRED, max_pages());
	if (!rc && num(c, "async", 0, 1, &async))
		rc = bad(c, "async");
	if (!rc)
		rc = req_proc(c, &p);
	if (rc)
		return rc;
	q.advice = async ? MS_ASYNC : MS_SYNC;
	return wcall(c, p, &q, NULL);
}

int op_fsync(struct ctx *c)
{
	struct wreq q;
	struct proc *p;
	int rc;

	rc = req_page(c, &q);
	if (!rc)
		rc = req_proc(c, &p);
	if (rc)
		return rc;
	q.op = W_FSYNC;
	return wcall(c, p, &q, NULL);
}

int op_sync(struct ctx *c)
{
	(void)c;
	sync();
	return 0;
}

/* 1: the page cache only; dentries and inodes stay. */
int op_drop_caches(struct ctx *c)
{
	if (sysfs_write("/proc/sys/vm/drop_caches", "1"))
		return fail(c, errno, "drop_caches");
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Pins and remote accesses. pin and unpin run in the worker (pin.c), which
 * holds its rings and pipes; remote is a GUP from outside the process, so
 * the controller does it: process_vm_readv/writev (pin_user_pages_remote)
 * or PTRACE_POKEDATA (access_process_vm with FOLL_FORCE).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "handlers.h"
#include "kcov.h"
#include "pin.h"
#include "request.h"

#define MAX_PIN_PAGES	64	/* World's MAX_PIN_PAGES */

enum remote_kind { R_READV, R_WRITEV, R_PTRACE };

static const struct named pin_kinds[] = {
	{ "uring", PIN_URING }, { "vmsplice", PIN_VMSPLICE }, { NULL, 0 },
};

static const struct named remote_kinds[] = {
	{ "readv", R_READV }, { "writev", R_WRITEV }, { "ptrace", R_PTRACE },
	{ NULL, 0 },
};

/* pin proc name page count kind */
int op_pin(struct ctx *c)
{
	int kind = pick(kv_get(c->req, "kind"), pin_kinds);
	struct wreq q;
	struct proc *p;
	int rc;

	if (kind < 0)
		return bad(c, "kind");
	rc = req_map(c, &q, W_PIN);
	if (!rc)
		rc = req_pages(c, &q, 1, MAX_PIN_PAGES);
	if (!rc)
		rc = req_proc(c, &p);
	if (rc)
		return rc;
	q.advice = kind;
	return wcall(c, p, &q, NULL);
}

/* unpin proc kind */
int op_unpin(struct ctx *c)
{
	int kind = pick(kv_get(c->req, "kind"), pin_kinds);
	struct wreq q = { .op = W_UNPIN, .huge = -1 };
	struct proc *p;
	int rc;

	if (kind < 0)
		return bad(c, "kind");
	rc = req_proc(c, &p);
	if (rc)
		return rc;
	q.advice = kind;
	return wcall(c, p, &q, NULL);
}

/* One word at each page's start, the tracee stopped meanwhile. */
static int poke(struct ctx *c, pid_t pid, uint64_t addr, uint64_t first,
		uint64_t count, uint64_t word)
{
	uint64_t i;
	int st, e = 0;

	if (ptrace(PTRACE_SEIZE, pid, 0, 0))
		return fail(c, errno, "ptrace-seize");
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) ||
	    waitpid(pid, &st, __WALL) != pid) {
		e = errno;
		ptrace(PTRACE_DETACH, pid, 0, 0);
		return fail(c, e, "ptrace-interrupt");
	}
	kcov_begin();
	for (i = 0; i < count && !e; i++)
		if (ptrace(PTRACE_POKEDATA, pid, addr + i * page_size,
			   word | (first + i)))
			e = errno;
	kcov_end();
	ptrace(PTRACE_DETACH, pid, 0, 0);
	return e ? fail(c, e, "ptrace-poke") : 0;
}

/* process_vm_readv or writev of whole pages, as a write step fills them. */
static int vm_rw(struct ctx *c, pid_t pid, uint64_t addr, uint64_t first,
		 uint64_t count, int write)
{
	uint64_t value, tag, i, len = count * page_size;
	struct iovec local, remote = { (void *)addr, len };
	uint8_t *buf;
	ssize_t n;
	int e;

	if (num(c, "value", 0, 255, &value) || num(c, "tag", 0, 1, &tag))
		return bad(c, "value");
	buf = malloc(len);
	if (!buf)
		return fail(c, ENOMEM, "malloc");
	memset(buf, (int)value, len);
	for (i = 0; tag && i < count; i++) {
		uint64_t idx = first + i;

		memcpy(buf + i * page_size, &idx, sizeof(idx));
	}
	local.iov_base = buf;
	local.iov_len = len;
	kcov_begin();
	n = write ? process_vm_writev(pid, &local, 1, &remote, 1, 0) :
		    process_vm_readv(pid, &local, 1, &remote, 1, 0);
	e = errno;
	kcov_end();
	free(buf);
	if (n < 0)
		return fail(c, e, write ? "process_vm_writev" :
				 "process_vm_readv");
	if ((uint64_t)n != len)
		return fail(c, EFAULT, "short");
	return 0;
}

/* remote proc name page count kind [value tag | word] */
int op_remote(struct ctx *c)
{
	int kind = pick(kv_get(c->req, "kind"), remote_kinds);
	struct page_at at;
	struct wreq q;
	struct proc *p;
	uint64_t word;
	int rc;

	if (kind < 0)
		return bad(c, "kind");
	if (num(c, "word", 0, UINT64_MAX - 1, &word))
		return bad(c, "word");
	rc = req_map(c, &q, 0);
	if (!rc)
		rc = req_pages(c, &q, 1, MAX_PIN_PAGES);
	if (!rc)
		rc = req_proc(c, &p);
	if (!rc)
		rc = proc_lookup(c, p, &q, q.count, &at);
	if (rc)
		return rc;
	/* The worker's table is not changed, but its memory is. */
	if (kind == R_PTRACE)
		return poke(c, p->pid, at.addr, q.page, q.count, word);
	return vm_rw(c, p->pid, at.addr, q.page, q.count, kind == R_WRITEV);
}

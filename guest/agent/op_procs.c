// SPDX-License-Identifier: GPL-2.0
/* Ops on the process tree: reset, fork, exit. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handlers.h"
#include "kcov.h"
#include "proctable.h"
#include "request.h"

static int tmp_dirty;		/* a file map may have made rmc-* files */

/* A file map was asked for: the next reset cleans /tmp and BLOCKFS_DIR. */
void tmp_files_made(void)
{
	tmp_dirty = 1;
}

static void clean_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "rmc-", 4))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

int op_reset(struct ctx *c)
{
	int rc = procs_kill_all(c);

	if (rc)
		return rc;
	if (tmp_dirty) {
		clean_dir("/tmp");
		clean_dir(BLOCKFS_DIR);
	}
	tmp_dirty = 0;
	/* Every hugetlb map died with its process: give the memory back. */
	hugetlb_pool(0);
	modern_reset();
	return start_p0(c);
}

int op_fork(struct ctx *c)
{
	const char *child = kv_get(c->req, "child");
	struct wreq q = { .op = W_FORK, .huge = -1 };
	struct kcov_buf k;
	struct proc *p, *kid;
	struct wrep ans;
	int sv[2], fds[2], rc;

	if (!child || !valid_name(child))
		return bad(c, "child");
	rc = req_proc(c, &p);
	if (rc)
		return rc;
	if (proc_find(child))
		return fail(c, EEXIST, "proc-exists");
	if (proc_count() == MAX_PROCS)
		return fail(c, EAGAIN, "too-many-procs");
	rc = kcov_open(c, &k);
	if (rc)
		return rc;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		kcov_close(&k);
		return fail(c, errno, "socketpair");
	}
	/* The child's control socket, and its kcov buffer when tracing. */
	fds[0] = sv[1];
	fds[1] = k.fd;
	rc = wcall_fds(c, p, &q, fds, k.fd >= 0 ? 2 : 1, &ans);
	close(sv[1]);
	if (rc) {
		close(sv[0]);
		kcov_close(&k);
		return rc;
	}
	rc = proc_add(c, child, ans.pid, sv[0], &k, &kid);
	if (rc)
		return rc;
	/* fork copies VM_MERGEABLE, and ksm_fork() registers the child. */
	kid->mergeable = p->mergeable;
	sb_printf(c->fields, " pid=%d", ans.pid);
	return 0;
}

int op_exit(struct ctx *c)
{
	struct wreq q = { .op = W_EXIT, .huge = -1 };
	struct pollfd pfd;
	struct proc *p;
	pid_t pid;
	int rc = req_proc(c, &p);

	if (rc)
		return rc;
	pid = p->pid;
	pfd.fd = p->ctl;
	pfd.events = POLLIN;
	/* The socket reads EOF once exit_mm() and exit_files() are done. */
	if (send(p->ctl, &q, sizeof(q), MSG_NOSIGNAL) < 0 ||
	    poll(&pfd, 1, GONE_TIMEOUT_MS) <= 0)
		kill(pid, SIGKILL);
	proc_drop(p);
	if (wait_gone(&pid, 1, GONE_TIMEOUT_MS)) {
		kill(pid, SIGKILL);
		return fail(c, ETIMEDOUT, "exit-timeout");
	}
	return 0;
}

/*
 * Test only: proc's worker hangs in the kernel (a userfaultfd fault nobody
 * serves) or dies (a NULL write), for the host's hang and death reports.
 */
int op_wtest(struct ctx *c)
{
	static const struct named whats[] = {
		{ "hang", W_TEST_HANG }, { "die", W_TEST_DIE }, { NULL, 0 },
	};
	const char *what = kv_get(c->req, "what");
	struct wreq q = { .huge = -1 };
	struct proc *p;
	int rc = req_proc(c, &p), op;

	if (rc)
		return rc;
	op = what ? pick(what, whats) : -1;
	if (op < 0)
		return bad(c, "what");
	q.op = op;
	return wcall(c, p, &q, NULL);
}

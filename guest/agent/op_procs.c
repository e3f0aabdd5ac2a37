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

#include "ops.h"

int tmp_dirty;			/* a file map may have made /tmp/rmc-* */

static void clean_tmp(void)
{
	DIR *d = opendir("/tmp");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "rmc-", 4))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

int op_reset(const struct req *r)
{
	pid_t ids[MAX_PROCS + 1];
	int n = 0;

	(void)r;
	if (pgid > 0)
		kill(-pgid, SIGKILL);
	while (nprocs) {
		struct proc *p = &procs[nprocs - 1];

		kill(p->pid, SIGKILL);
		ids[n++] = p->pid;
		drop_proc(p);
	}
	if (pgid > 0)
		ids[n++] = -pgid;
	if (wait_gone(ids, n, GONE_TIMEOUT_MS))
		return fail(ETIMEDOUT, "reset-timeout");
	pgid = 0;
	if (tmp_dirty)
		clean_tmp();
	tmp_dirty = 0;
	modern_reset();
	return start_p0();
}

int op_fork(const struct req *r)
{
	const char *child = kv_get(r, "child");
	struct wreq q = { .op = W_FORK, .huge = -1 };
	struct kcov_buf k;
	struct proc *p;
	int sv[2], fds[2], rc;

	if (!child || !valid_name(child))
		return bad(r, "child");
	p = req_proc(r);
	if (!p)
		return -1;
	if (find_proc(child))
		return fail(EEXIST, "proc-exists");
	if (nprocs == MAX_PROCS)
		return fail(EAGAIN, "too-many-procs");
	if (kcov_open(&k))
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		kcov_close(&k);
		return fail(errno, "socketpair");
	}
	/* The child's control socket, and its kcov buffer when tracing. */
	fds[0] = sv[1];
	fds[1] = k.fd;
	rc = wcall_fds(p, &q, fds, k.fd >= 0 ? 2 : 1);
	close(sv[1]);
	if (rc) {
		close(sv[0]);
		kcov_close(&k);
		return -1;
	}
	if (add_proc(child, wr.pid, sv[0], &k))
		return -1;
	/* fork copies VM_MERGEABLE, and ksm_fork() registers the child. */
	procs[nprocs - 1].mergeable = p->mergeable;
	sb_printf(&reply_fields, " pid=%d", wr.pid);
	return 0;
}

int op_exit(const struct req *r)
{
	struct wreq q = { .op = W_EXIT, .huge = -1 };
	struct proc *p = req_proc(r);
	struct pollfd pfd;
	pid_t pid;

	if (!p)
		return -1;
	pid = p->pid;
	pfd.fd = p->ctl;
	pfd.events = POLLIN;
	/* The socket reads EOF once exit_mm() and exit_files() are done. */
	if (send(p->ctl, &q, sizeof(q), MSG_NOSIGNAL) < 0 ||
	    poll(&pfd, 1, GONE_TIMEOUT_MS) <= 0)
		kill(pid, SIGKILL);
	drop_proc(p);
	if (wait_gone(&pid, 1, GONE_TIMEOUT_MS)) {
		kill(pid, SIGKILL);
		return fail(ETIMEDOUT, "exit-timeout");
	}
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * The controller's table of workload processes, in creation order, and the
 * call that sends one request to a worker and waits for its answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"

#define WORKER_TIMEOUT_MS	60000

struct proc procs[MAX_PROCS];	/* in creation order */
int nprocs;
pid_t pgid;			/* all workers share p0's group */
struct wrep wr;			/* the last worker answer */

uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

void reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/*
 * Waits until every id (a pid, or -pgid for a whole group) is gone: reaped
 * by us, or by a parent that ignores SIGCHLD. Yields first, since the dying
 * tasks need our CPU; sleeps briefly only if that takes long.
 */
int wait_gone(const pid_t *ids, int n, int ms)
{
	uint64_t deadline = now_us() + ms * 1000ULL;
	unsigned int spins = 0;

	for (;;) {
		int i, alive = 0;

		reap();
		for (i = 0; i < n; i++)
			if (ids[i] && kill(ids[i], 0) == 0)
				alive++;
		if (!alive)
			return 0;
		if (now_us() > deadline)
			return -1;
		if (++spins < 100) {
			sched_yield();
		} else {
			struct timespec ts = { 0, 20000 };

			nanosleep(&ts, NULL);
		}
	}
}

struct proc *find_proc(const char *label)
{
	int i;

	for (i = 0; i < nprocs; i++)
		if (!strcmp(procs[i].label, label))
			return &procs[i];
	return NULL;
}

/* Forgets p; the pointer then names the next process. */
void drop_proc(struct proc *p)
{
	free(p->table);
	kcov_retire(&p->kcov, p->pid);
	close(p->ctl);
	close(p->pagemap);
	close(p->mem);
	memmove(p, p + 1, (procs + nprocs - p - 1) * sizeof(*p));
	nprocs--;
}

/* Takes over ctl and kcov; on failure the process is killed. */
int add_proc(const char *label, pid_t pid, int ctl, struct kcov_buf *kcov)
{
	struct proc *p = &procs[nprocs];
	char path[64];
	int fd, mem, e;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	mem = fd < 0 ? -1 : open(path, O_RDWR | O_CLOEXEC);
	if (mem < 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		kill(pid, SIGKILL);
		close(ctl);
		wait_gone(&pid, 1, GONE_TIMEOUT_MS);
		kcov_close(kcov);
		return fail(e, fd < 0 ? "open-pagemap" : "open-mem");
	}
	snprintf(p->label, sizeof(p->label), "%s", label);
	p->pid = pid;
	p->ctl = ctl;
	p->pagemap = fd;
	p->mem = mem;
	p->kcov = *kcov;
	p->table = NULL;
	p->mergeable = 0;
	nprocs++;
	return 0;
}

static void close_from(int fd)
{
	if (syscall(SYS_close_range, fd, ~0U, 0))
		for (; fd < 1024; fd++)
			close(fd);
}

int start_p0(void)
{
	struct kcov_buf k;
	int sv[2], e;
	pid_t pid;

	if (kcov_open(&k))
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		kcov_close(&k);
		return fail(errno, "socketpair");
	}
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(sv[0]);
		close(sv[1]);
		kcov_close(&k);
		return fail(e, "fork");
	}
	if (!pid) {
		setpgid(0, 0);
		if (dup2(sv[1], CTL_FD) < 0)
			_exit(1);
		if (k.fd < 0)
			close(KCOV_FD);
		else if (dup2(k.fd, KCOV_FD) < 0)
			_exit(1);
		close_from(KCOV_FD + 1);
		kcov_enable_self();
		worker_main();
	}
	setpgid(pid, pid);	/* whichever side runs first wins */
	close(sv[1]);
	pgid = pid;
	return add_proc("p0", pid, sv[0], &k);
}

int wcall(struct proc *p, const struct wreq *q, int passfd)
{
	return wcall_fds(p, q, &passfd, passfd >= 0);
}

/*
 * Sends q (and nfds fds, at most 2) to p's worker and waits for the answer
 * in wr; what the worker's kernel work reached goes into the coverage set.
 * Returns 0, -1 for an err answer, or -2 when the worker died, in which
 * case p is gone from the table.
 */
int wcall_fds(struct proc *p, const struct wreq *q, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { (void *)q, sizeof(*q) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct pollfd pfd = { .fd = p->ctl, .events = POLLIN };
	pid_t pid = p->pid;
	ssize_t n;

	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	/* Only a worker's own requests change its table, and not these. */
	if (q->op != W_LIST && q->op != W_WRITE && q->op != W_READ) {
		free(p->table);
		p->table = NULL;
	}
	if (sendmsg(p->ctl, &mh, MSG_NOSIGNAL) < 0)
		goto died;
	do
		n = poll(&pfd, 1, WORKER_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		kill(pid, SIGKILL);
		drop_proc(p);
		wait_gone(&pid, 1, GONE_TIMEOUT_MS);
		fail(ETIMEDOUT, "worker-timeout");
		return -2;
	}
	n = recv(p->ctl, &wr, sizeof(wr), 0);
	kcov_fold(&p->kcov);
	if (n <= 0)
		goto died;
	if ((size_t)n < WREP_HDR_LEN)
		return fail(EPROTO, "worker-proto");
	if (wr.err) {
		wr.msg[NAME_LEN - 1] = '\0';
		return fail(wr.err, wr.msg);
	}
	return 0;
died:
	kill(pid, SIGKILL);
	drop_proc(p);
	wait_gone(&pid, 1, GONE_TIMEOUT_MS);
	fail(ESRCH, "worker-died");
	return -2;
}

/*
 * p's map table (W_LIST), asked of the worker only when a request since the
 * last ask may have changed it: a round trip to a worker costs more than
 * the rest of a pagemap read or a findpage. Returns what wcall returns.
 */
int proc_table(struct proc *p, const struct wrep **out)
{
	struct wreq q = { .op = W_LIST, .huge = -1 };
	size_t len;
	int rc;

	if (!p->table) {
		rc = wcall(p, &q, -1);
		if (rc)
			return rc;
		len = WREP_LIST_LEN(wr.nbits);
		p->table = malloc(len);
		if (!p->table)
			return fail(ENOMEM, "malloc");
		memcpy(p->table, &wr, len);
	}
	*out = p->table;
	return 0;
}

/*
 * Where q->name[q->page] is, from p's table: wr.addr is its address and
 * wr.mapped whether that page is still the map's. The errors are the
 * worker's own (no-map, range), for the count pages from q->page.
 */
int proc_lookup(struct proc *p, const struct wreq *q, uint64_t count)
{
	const struct wrep *t;
	const struct wmapinfo *mi;
	uint32_t i;
	int rc = proc_table(p, &t);

	if (rc)
		return rc;
	for (i = 0; i < t->nmaps && strcmp(t->maps[i].name, q->name); i++)
		;
	if (i == t->nmaps)
		return fail(ENOENT, "no-map");
	mi = &t->maps[i];
	if (q->page >= mi->pages || count < 1 || count > mi->pages - q->page)
		return fail(EINVAL, "range");
	wr.addr = mi->addr + q->page * page_size;
	wr.mapped = mi->bits_off == ALL_MAPPED ||
		    (t->bits[mi->bits_off + q->page / 8] >> (q->page % 8) & 1);
	return 0;
}

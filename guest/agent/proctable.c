// SPDX-License-Identifier: GPL-2.0
/*
 * The controller's table of workload processes and the call that sends one
 * request to a worker and waits for its answer. A process lives in one slot
 * from proc_add to proc_drop; a freed slot is reused by a later process, and
 * creation order (seq) is what callers walk in.
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

#include "agent.h"
#include "handlers.h"
#include "proctable.h"
#include "sysfs.h"

/*
 * How long a worker may take over one request before it counts as hung:
 * well inside the host's request deadline (30 s), so the host hears why.
 */
#define WORKER_DEADLINE_MS	20000
#define STACK_MAX		4096

static struct proc procs[MAX_PROCS];
static uint64_t last_seq;
static pid_t pgid;		/* all workers share p0's group */

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

/* The live process made next after prev (NULL: the first); prev may be dead. */
struct proc *proc_next(const struct proc *prev)
{
	uint64_t after = prev ? prev->seq : 0;
	struct proc *best = NULL;
	int i;

	for (i = 0; i < MAX_PROCS; i++)
		if (procs[i].live && procs[i].seq > after &&
		    (!best || procs[i].seq < best->seq))
			best = &procs[i];
	return best;
}

int proc_live(const struct proc *p)
{
	return p->live;
}

int proc_count(void)
{
	int i, n = 0;

	for (i = 0; i < MAX_PROCS; i++)
		n += procs[i].live;
	return n;
}

struct proc *proc_find(const char *label)
{
	int i;

	for (i = 0; i < MAX_PROCS; i++)
		if (procs[i].live && !strcmp(procs[i].label, label))
			return &procs[i];
	return NULL;
}

/* Forgets p; its slot is free for a later process. */
void proc_drop(struct proc *p)
{
	free(p->table);
	p->table = NULL;
	kcov_retire(&p->kcov, p->pid);
	close(p->ctl);
	close(p->pagemap);
	close(p->mem);
	p->live = 0;
}

static struct proc *free_slot(void)
{
	int i;

	for (i = 0; i < MAX_PROCS; i++)
		if (!procs[i].live)
			return &procs[i];
	return NULL;
}

/*
 * Takes over ctl and kcov; on failure the process is killed. The caller
 * has checked that a slot is free (proc_count() < MAX_PROCS).
 */
int proc_add(struct ctx *c, const char *label, pid_t pid, int ctl,
	     struct kcov_buf *kcov, struct proc **out)
{
	struct proc *p = free_slot();
	char path[64];
	int fd = -1, mem = -1, e = EAGAIN;
	const char *what = "too-many-procs";

	if (p) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		snprintf(path, sizeof(path), "/proc/%d/mem", pid);
		mem = fd < 0 ? -1 : open(path, O_RDWR | O_CLOEXEC);
		e = errno;
		what = fd < 0 ? "open-pagemap" : "open-mem";
	}
	if (mem < 0) {
		if (fd >= 0)
			close(fd);
		kill(pid, SIGKILL);
		close(ctl);
		wait_gone(&pid, 1, GONE_TIMEOUT_MS);
		kcov_close(kcov);
		return fail(c, e, what);
	}
	snprintf(p->label, sizeof(p->label), "%s", label);
	p->pid = pid;
	p->ctl = ctl;
	p->pagemap = fd;
	p->mem = mem;
	p->kcov = *kcov;
	p->table = NULL;
	p->mergeable = 0;
	p->hung = 0;
	p->live = 1;
	p->seq = ++last_seq;
	if (out)
		*out = p;
	return 0;
}

/* Kills every workload process and its whole group, and forgets them. */
int procs_kill_all(struct ctx *c)
{
	pid_t ids[MAX_PROCS + 1];
	int n = 0, i, hung = 0;

	if (pgid > 0)
		kill(-pgid, SIGKILL);
	for (i = MAX_PROCS - 1; i >= 0; i--) {
		if (!procs[i].live)
			continue;
		kill(procs[i].pid, SIGKILL);
		/* A task stuck in D state may never go: wait for the rest. */
		if (procs[i].hung)
			hung = 1;
		else
			ids[n++] = procs[i].pid;
		proc_drop(&procs[i]);
	}
	if (pgid > 0 && !hung)
		ids[n++] = -pgid;
	if (wait_gone(ids, n, GONE_TIMEOUT_MS))
		return fail(c, ETIMEDOUT, "reset-timeout");
	pgid = 0;
	return 0;
}

static void close_from(int fd)
{
	if (syscall(SYS_close_range, fd, ~0U, 0))
		for (; fd < 1024; fd++)
			close(fd);
}

int start_p0(struct ctx *c)
{
	struct kcov_buf k;
	int sv[2], e, rc;
	pid_t pid;

	rc = kcov_open(c, &k);
	if (rc)
		return rc;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		kcov_close(&k);
		return fail(c, errno, "socketpair");
	}
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(sv[0]);
		close(sv[1]);
		kcov_close(&k);
		return fail(c, e, "fork");
	}
	if (!pid) {
		setpgid(0, 0);
		join_workload_cgroup();
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
	return proc_add(c, "p0", pid, sv[0], &k, NULL);
}

int wcall(struct ctx *c, struct proc *p, const struct wreq *q,
	  struct wrep *ans)
{
	return wcall_fds(c, p, q, NULL, 0, ans);
}

/* A request's err line gets " key=" and the frames of text, comma-joined. */
static void add_frames(struct ctx *c, const char *key, const char *text)
{
	const char *line = text, *end;
	int first = 1;

	sb_printf(c->why, " %s=", key);
	for (; *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		/* "[<0>] handle_userfault+0x4d0/0x6c8": the host parses it. */
		if (line[0] == '[' && memchr(line, ' ', end - line))
			line = memchr(line, ' ', end - line) + 1;
		if (end == line)
			continue;
		if (!first)
			sb_add(c->why, ",");
		sb_add_sanitized(c->why, line, end - line);
		first = 0;
	}
}

/* /proc/<pid>/<what>, whole; -1 when the kernel has no such file. */
static int read_proc(pid_t pid, const char *what, char *buf, size_t cap)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	return sysfs_read_all(path, buf, cap);
}

/*
 * p's worker is stuck in the kernel: the answer carries where (its kernel
 * stack, or a sysrq-t dump on the log when the kernel has no
 * CONFIG_STACKTRACE, and its wchan). A task in D state cannot be killed,
 * so it stays; later requests to it fail at once.
 */
static int worker_hung(struct ctx *c, struct proc *p)
{
	static char stack[STACK_MAX];

	p->hung = 1;
	if (c->why) {
		sb_printf(c->why, " pid=%d", p->pid);
		if (!read_proc(p->pid, "wchan", stack, sizeof(stack)) &&
		    strcmp(stack, "0")) {
			sb_add(c->why, " wchan=");
			sb_add_sanitized(c->why, stack, strlen(stack));
		}
		if (!read_proc(p->pid, "stack", stack, sizeof(stack)))
			add_frames(c, "stack", stack);
		else if (!sysfs_write("/proc/sysrq-trigger", "t"))
			sb_add(c->why, " sysrq=t");
	}
	con("rmapcheck-agent: worker %d hung\n", p->pid);
	return fail(c, ETIMEDOUT, "worker-hung");
}

/*
 * The wait status of our child pid once it has gone, within GONE_TIMEOUT_MS;
 * -1 for a process that is not our child (or was reaped already).
 */
static int wait_status(pid_t pid, int *status)
{
	uint64_t deadline = now_us() + GONE_TIMEOUT_MS * 1000ULL;
	struct timespec ts = { 0, 1000000 };
	pid_t r;

	while ((r = waitpid(pid, status, WNOHANG)) == 0 && now_us() < deadline)
		nanosleep(&ts, NULL);
	return r == pid ? 0 : -1;
}

/*
 * p's worker died: the answer says how (the signal its death notice or its
 * wait status gives, else its exit status), and p is forgotten. Only p0 is
 * our child; the kernel reaps the others, whose parent ignores SIGCHLD.
 */
static int worker_died(struct ctx *c, struct proc *p, int sig)
{
	pid_t pid = p->pid;
	int status;

	proc_drop(p);
	if (!sig && !wait_status(pid, &status)) {
		if (WIFSIGNALED(status))
			sig = WTERMSIG(status);
		else if (c->why)
			sb_printf(c->why, " status=%d", WEXITSTATUS(status));
	}
	/* After a notice it dies by itself, so the kernel logs the fault. */
	if (wait_gone(&pid, 1, GONE_TIMEOUT_MS)) {
		kill(pid, SIGKILL);
		wait_gone(&pid, 1, GONE_TIMEOUT_MS);
	}
	if (c->why) {
		sb_printf(c->why, " pid=%d", pid);
		if (sig)
			sb_printf(c->why, " signal=%d", sig);
	}
	return fail(c, ESRCH, "worker-died");
}

/*
 * Sends q (and nfds fds, at most 2) to p's worker and waits for its answer,
 * read into ans (whole, for W_LIST; NULL when only the error matters).
 * What the worker's kernel work reached goes into the coverage set.
 * Returns 0 or a negative errno: the worker's own, or ESRCH (worker-died,
 * after which p is dropped: !proc_live) or ETIMEDOUT (worker-hung: p stays,
 * marked hung, and EDEADLK answers every later request to it).
 */
int wcall_fds(struct ctx *c, struct proc *p, const struct wreq *q,
	      const int *fds, int nfds, struct wrep *ans)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { (void *)q, sizeof(*q) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct pollfd pfd = { .fd = p->ctl, .events = POLLIN };
	struct wrep hdr;	/* the header-only answers, when ans is NULL */
	size_t cap = ans ? sizeof(*ans) : WREP_HDR_LEN;
	ssize_t n;

	if (p->hung)
		return fail(c, EDEADLK, "worker-hung");
	if (!ans)
		ans = &hdr;
	if (nfds > 0) {
		struct cmsghdr *cmsg;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cmsg = CMSG_FIRSTHDR(&mh);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cmsg), fds, nfds * sizeof(int));
	}
	/* Only a worker's own requests change its table, and not these. */
	if (q->op != W_LIST && q->op != W_WRITE && q->op != W_READ) {
		free(p->table);
		p->table = NULL;
	}
	if (sendmsg(p->ctl, &mh, MSG_NOSIGNAL) < 0)
		return worker_died(c, p, 0);
	do
		n = poll(&pfd, 1, WORKER_DEADLINE_MS);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return worker_hung(c, p);
	n = recv(p->ctl, ans, cap, 0);
	kcov_fold(&p->kcov);
	if (n <= 0)
		return worker_died(c, p, 0);
	if ((size_t)n >= WREP_HDR_LEN && ans->signal)
		return worker_died(c, p, ans->signal);
	if ((size_t)n < WREP_HDR_LEN)
		return fail(c, EPROTO, "worker-proto");
	if (ans->err) {
		ans->msg[NAME_LEN - 1] = '\0';
		return fail(c, ans->err, ans->msg);
	}
	return 0;
}

/*
 * p's map table (W_LIST), asked of the worker only when a request since the
 * last ask may have changed it: a round trip to a worker costs more than
 * the rest of a pagemap read or a findpage. Returns what wcall returns.
 */
int proc_table(struct ctx *c, struct proc *p, const struct wrep **out)
{
	struct wreq q = { .op = W_LIST, .huge = -1 };
	struct wrep *t;
	int rc;

	if (!p->table) {
		t = malloc(sizeof(*t));
		if (!t)
			return fail(c, ENOMEM, "malloc");
		rc = wcall(c, p, &q, t);
		if (rc) {
			free(t);
			return rc;
		}
		/* Keep only what the answer used. */
		p->table = realloc(t, WREP_LIST_LEN(t->nbits));
		if (!p->table)
			p->table = t;
	}
	*out = p->table;
	return 0;
}

/*
 * Where q->name[q->page] is, from p's table. The errors are the worker's
 * own (no-map, range), for the count pages from q->page.
 */
int proc_lookup(struct ctx *c, struct proc *p, const struct wreq *q,
		uint64_t count, struct page_at *at)
{
	const struct wrep *t;
	const struct wmapinfo *mi;
	uint32_t i;
	int rc = proc_table(c, p, &t);

	if (rc)
		return rc;
	for (i = 0; i < t->nmaps && strcmp(t->maps[i].name, q->name); i++)
		;
	if (i == t->nmaps)
		return fail(c, ENOENT, "no-map");
	mi = &t->maps[i];
	if (q->page >= mi->pages || count < 1 || count > mi->pages - q->page)
		return fail(c, EINVAL, "range");
	at->addr = mi->addr + q->page * page_size;
	at->mapped = mi->bits_off == ALL_MAPPED ||
		     (t->bits[mi->bits_off + q->page / 8] >> (q->page % 8) & 1);
	return 0;
}

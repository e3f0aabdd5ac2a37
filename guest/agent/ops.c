// SPDX-License-Identifier: GPL-2.0
/*
 * The controller's side of every op. Memory syscalls go to the worker that
 * owns the address space; pagemap, kpagecount/kpageflags and /proc/mtest are
 * read and written here, through fds kept open across requests.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#ifndef MADV_COLD
#define MADV_COLD	20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif

#define PFN_MASK		((1ULL << 55) - 1)
#define PM_PRESENT		(1ULL << 63)
#define REQUIRED		UINT64_MAX
#define WORKER_TIMEOUT_MS	60000
#define GONE_TIMEOUT_MS		10000
#define KSM			"/sys/kernel/mm/ksm/"

struct proc {
	char label[NAME_LEN];
	pid_t pid;
	int ctl;	/* SOCK_SEQPACKET to the worker */
	int pagemap;	/* /proc/<pid>/pagemap */
};

static struct proc procs[MAX_PROCS];	/* in creation order */
static int nprocs;
static pid_t pgid;			/* all workers share p0's group */
static int kpc_fd = -1, kpf_fd = -1, mtest_fd = -1;
static uint64_t max_pages;
static int tmp_dirty;			/* a file map may have made /tmp/rmc-* */
static struct wrep wr;			/* the last worker answer */

struct sbuf reply_data, reply_fields;
int reply_err;
char reply_msg[NAME_LEN];

int fail(int err, const char *msg)
{
	reply_err = err ? err : EIO;
	snprintf(reply_msg, sizeof(reply_msg), "%s", msg);
	return -1;
}

int bad(const struct req *r, const char *why)
{
	con("rmapcheck-agent: req %llu: bad %s\n", (unsigned long long)r->id,
	    why);
	return fail(EINVAL, "bad-request");
}

static uint64_t now_us(void)
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
static int wait_gone(const pid_t *ids, int n, int ms)
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

static struct proc *find_proc(const char *label)
{
	int i;

	for (i = 0; i < nprocs; i++)
		if (!strcmp(procs[i].label, label))
			return &procs[i];
	return NULL;
}

/* Forgets p; the pointer then names the next process. */
static void drop_proc(struct proc *p)
{
	close(p->ctl);
	close(p->pagemap);
	memmove(p, p + 1, (procs + nprocs - p - 1) * sizeof(*p));
	nprocs--;
}

static int add_proc(const char *label, pid_t pid, int ctl)
{
	struct proc *p = &procs[nprocs];
	char path[64];
	int fd, e;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		kill(pid, SIGKILL);
		close(ctl);
		wait_gone(&pid, 1, GONE_TIMEOUT_MS);
		return fail(e, "open-pagemap");
	}
	snprintf(p->label, sizeof(p->label), "%s", label);
	p->pid = pid;
	p->ctl = ctl;
	p->pagemap = fd;
	nprocs++;
	return 0;
}

static void close_from(int fd)
{
	if (syscall(SYS_close_range, fd, ~0U, 0))
		for (; fd < 1024; fd++)
			close(fd);
}

static int start_p0(void)
{
	int sv[2], e;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return fail(errno, "socketpair");
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(sv[0]);
		close(sv[1]);
		return fail(e, "fork");
	}
	if (!pid) {
		setpgid(0, 0);
		if (dup2(sv[1], CTL_FD) < 0)
			_exit(1);
		close_from(CTL_FD + 1);
		worker_main();
	}
	setpgid(pid, pid);	/* whichever side runs first wins */
	close(sv[1]);
	pgid = pid;
	return add_proc("p0", pid, sv[0]);
}

/*
 * Sends q (and passfd, if any) to p's worker and waits for the answer in
 * wr. Returns 0, -1 for an err answer, or -2 when the worker died, in which
 * case p is gone from the table.
 */
static int wcall(struct proc *p, const struct wreq *q, int passfd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { (void *)q, sizeof(*q) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct pollfd pfd = { .fd = p->ctl, .events = POLLIN };
	pid_t pid = p->pid;
	ssize_t n;

	if (passfd >= 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &passfd, sizeof(int));
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

/* ---- request helpers ---- */

/* An optional number (def when absent, or REQUIRED) no larger than max. */
static int num(const struct req *r, const char *k, uint64_t def, uint64_t max,
	       uint64_t *v)
{
	const char *s = kv_get(r, k);

	if (!s) {
		*v = def;
		return def == REQUIRED ? -1 : 0;
	}
	return parse_u64(s, v) || *v > max ? -1 : 0;
}

static int pick(const char *s, const char *const *names)
{
	int i;

	for (i = 0; s && names[i]; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

static struct proc *req_proc(const struct req *r)
{
	const char *s = kv_get(r, "proc");
	struct proc *p;

	if (!s || !valid_name(s)) {
		bad(r, "proc");
		return NULL;
	}
	p = find_proc(s);
	if (!p)
		fail(ESRCH, "no-proc");
	return p;
}

/* A request about one named map: sets up q with op and name. */
static int req_map(const struct req *r, struct wreq *q, uint32_t op)
{
	const char *name = kv_get(r, "name");

	memset(q, 0, sizeof(*q));
	q->op = op;
	q->huge = -1;
	if (!name || !valid_name(name))
		return bad(r, "name");
	snprintf(q->name, sizeof(q->name), "%s", name);
	return 0;
}

static int req_pages(const struct req *r, struct wreq *q, uint64_t count_def,
		     uint64_t count_max)
{
	if (num(r, "page", REQUIRED, max_pages, &q->page))
		return bad(r, "page");
	if (num(r, "count", count_def, count_max, &q->count) || !q->count)
		return bad(r, "count");
	return 0;
}

/*
 * Appends the pfns of count pages at addr: "-" where the pagemap says not
 * present, or where bits (one per page; NULL: all set) says the page is no
 * longer this map's.
 */
static int add_pfns(struct sbuf *sb, const struct proc *p, uint64_t addr,
		    uint64_t count, const uint8_t *bits)
{
	static uint64_t ent[512];
	uint64_t done = 0, i;

	while (done < count) {
		uint64_t n = count - done < 512 ? count - done : 512;
		ssize_t got = pread(p->pagemap, ent, n * 8,
				    (addr / page_size + done) * 8);

		if (got != (ssize_t)(n * 8))
			return fail(got < 0 ? errno : EIO, "pagemap");
		for (i = 0; i < n; i++) {
			uint64_t k = done + i;

			if (k)
				sb_addn(sb, ",", 1);
			if ((ent[i] & PM_PRESENT) &&
			    (!bits || (bits[k / 8] >> (k % 8) & 1)))
				sb_hex(sb, ent[i] & PFN_MASK);
			else
				sb_addn(sb, "-", 1);
		}
		done += n;
	}
	return 0;
}

static int kpage(uint64_t pfn, uint64_t *count, uint64_t *flags)
{
	ssize_t n;

	if (kpc_fd < 0 || kpf_fd < 0)
		return fail(ENOENT, "kpagecount");
	n = pread(kpc_fd, count, 8, pfn * 8);
	if (n != 8)
		return fail(n < 0 ? errno : EINVAL, "kpagecount");
	n = pread(kpf_fd, flags, 8, pfn * 8);
	if (n != 8)
		return fail(n < 0 ? errno : EINVAL, "kpageflags");
	return 0;
}

static int need_mtest(void)
{
	if (mtest_fd < 0)
		mtest_fd = open("/proc/mtest", O_WRONLY | O_CLOEXEC);
	return mtest_fd < 0 ? fail(errno, "open-mtest") : 0;
}

/* Returns the write's result the way PROTOCOL.md wants it: 0 or -errno. */
static int mtest_cmd(const char *fmt, ...)
{
	char cmd[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return write(mtest_fd, cmd, n) < 0 ? -errno : 0;
}

static int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), e;
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	e = errno;
	close(fd);
	errno = e;
	return n < 0 ? -1 : 0;
}

static int sysfs_u64(const char *path, uint64_t *v)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (parse_u64(buf, v)) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

/* ---- the ops ---- */

static const char *const k_none[] = { NULL };
static const char *const k_proc[] = { "proc", NULL };
static const char *const k_storm[] = { "threads", "writes", "churn", "seed",
				       NULL };
static const char *const k_mmap[] = {
	"proc", "name", "pages", "backing", "share", "huge", "at", "at_map",
	NULL
};
static const char *const k_munmap[] = { "proc", "name", "page", "count", NULL };
static const char *const k_mprotect[] = {
	"proc", "name", "page", "count", "prot", NULL
};
static const char *const k_mremap[] = {
	"proc", "name", "pages", "move", "dontunmap", NULL
};
static const char *const k_madvise[] = {
	"proc", "name", "page", "count", "advice", NULL
};
static const char *const k_write[] = {
	"proc", "name", "page", "count", "value", "offset", "bytes", NULL
};
static const char *const k_read[] = { "proc", "name", "page", "count", NULL };
static const char *const k_fork[] = { "proc", "child", NULL };
static const char *const k_findpage[] = { "proc", "name", "page", NULL };
static const char *const k_kpage[] = { "pfn", NULL };
static const char *const k_ksm[] = { "timeout_ms", NULL };
static const char *const k_mtest[] = { "hex", "fill", "byte", NULL };
static const char *const k_modparam[] = { "param", "value", NULL };

static int op_ping(const struct req *r)
{
	(void)r;
	return 0;
}

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

static int op_reset(const struct req *r)
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
	return start_p0();
}

static int op_mmap(const struct req *r)
{
	static const char *const backings[] = {
		[B_ANON] = "anon", [B_DEVZERO] = "devzero",
		[B_MEMFD] = "memfd", [B_FILE] = "file", NULL
	};
	static const char *const shares[] = { "private", "shared", NULL };
	struct wreq q;
	struct proc *p;
	const char *s;
	uint64_t v;

	if (req_map(r, &q, W_MMAP))
		return -1;
	if (num(r, "pages", REQUIRED, MAX_MAP_PAGES, &q.pages) || !q.pages)
		return bad(r, "pages");
	q.backing = pick(kv_get(r, "backing"), backings);
	if (q.backing < 0)
		return bad(r, "backing");
	q.shared = pick(kv_get(r, "share"), shares);
	if (q.shared < 0)
		return bad(r, "share");
	if (kv_get(r, "huge")) {
		if (num(r, "huge", 0, 1, &v))
			return bad(r, "huge");
		q.huge = v;
	}
	s = kv_get(r, "at_map");
	if (s) {
		if (!valid_name(s))
			return bad(r, "at_map");
		snprintf(q.at_map, sizeof(q.at_map), "%s", s);
		q.has_at = 1;
	}
	s = kv_get(r, "at");
	if (s && (!q.has_at || parse_i64(s, &q.at) ||
		  q.at > (int64_t)max_pages || q.at < -(int64_t)max_pages))
		return bad(r, "at");
	p = req_proc(r);
	if (!p)
		return -1;
	tmp_dirty |= q.backing == B_FILE;
	if (wcall(p, &q, -1))
		return -1;
	sb_add(&reply_fields, " addr=");
	sb_hex(&reply_fields, wr.addr);
	return 0;
}

/* Ops that send one request about a range of a map, with nothing back. */
static int range_op(const struct req *r, struct wreq *q)
{
	struct proc *p;

	if (req_pages(r, q, REQUIRED, max_pages))
		return -1;
	p = req_proc(r);
	if (!p || wcall(p, q, -1))
		return -1;
	return 0;
}

static int op_munmap(const struct req *r)
{
	struct wreq q;

	if (req_map(r, &q, W_MUNMAP))
		return -1;
	return range_op(r, &q);
}

static int op_mprotect(const struct req *r)
{
	static const char *const names[] = {
		"none", "r", "rw", "rx", "rwx", NULL
	};
	static const int prots[] = {
		PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE,
		PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC
	};
	struct wreq q;
	int i;

	if (req_map(r, &q, W_MPROTECT))
		return -1;
	i = pick(kv_get(r, "prot"), names);
	if (i < 0)
		return bad(r, "prot");
	q.prot = prots[i];
	return range_op(r, &q);
}

static int op_madvise(const struct req *r)
{
	static const char *const names[] = {
		"dontneed", "dontfork", "dofork", "wipeonfork", "keeponfork",
		"mergeable", "unmergeable", "hugepage", "nohugepage",
		"collapse", "pageout", "cold", NULL
	};
	static const int advice[] = {
		MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK,
		MADV_KEEPONFORK, MADV_MERGEABLE, MADV_UNMERGEABLE,
		MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE, MADV_PAGEOUT,
		MADV_COLD
	};
	struct wreq q;
	int i;

	if (req_map(r, &q, W_MADVISE))
		return -1;
	i = pick(kv_get(r, "advice"), names);
	if (i < 0)
		return bad(r, "advice");
	q.advice = advice[i];
	return range_op(r, &q);
}

static int op_mremap(const struct req *r)
{
	struct wreq q;
	struct proc *p;
	uint64_t v;

	if (req_map(r, &q, W_MREMAP))
		return -1;
	if (num(r, "pages", REQUIRED, MAX_MAP_PAGES, &q.pages) || !q.pages)
		return bad(r, "pages");
	if (num(r, "move", 0, 1, &v))
		return bad(r, "move");
	q.move = v;
	if (num(r, "dontunmap", 0, 1, &v))
		return bad(r, "dontunmap");
	q.dontunmap = v;
	p = req_proc(r);
	if (!p || wcall(p, &q, -1))
		return -1;
	sb_add(&reply_fields, " addr=");
	sb_hex(&reply_fields, wr.addr);
	sb_add(&reply_fields, " old=");
	sb_hex(&reply_fields, wr.old);
	return 0;
}

/* write and read: touch the pages in the worker, then report their pfns. */
static int touch_op(const struct req *r, struct wreq *q)
{
	struct proc *p;

	if (req_pages(r, q, 1, MAX_IO_PAGES))
		return -1;
	p = req_proc(r);
	if (!p || wcall(p, q, -1))
		return -1;
	sb_add(&reply_fields, " pfns=");
	return add_pfns(&reply_fields, p, wr.addr, wr.count, NULL);
}

static int op_write(const struct req *r)
{
	struct wreq q;
	uint64_t v;

	if (req_map(r, &q, W_WRITE))
		return -1;
	if (num(r, "value", 1, 255, &v))
		return bad(r, "value");
	q.value = v;
	if (num(r, "offset", 0, page_size - 1, &q.offset))
		return bad(r, "offset");
	if (num(r, "bytes", 0, 1, &v))
		return bad(r, "bytes");
	q.one_byte = v;
	return touch_op(r, &q);
}

static int op_read(const struct req *r)
{
	struct wreq q;

	if (req_map(r, &q, W_READ))
		return -1;
	return touch_op(r, &q);
}

static int op_fork(const struct req *r)
{
	const char *child = kv_get(r, "child");
	struct wreq q = { .op = W_FORK, .huge = -1 };
	struct proc *p;
	int sv[2], rc;

	if (!child || !valid_name(child))
		return bad(r, "child");
	p = req_proc(r);
	if (!p)
		return -1;
	if (find_proc(child))
		return fail(EEXIST, "proc-exists");
	if (nprocs == MAX_PROCS)
		return fail(EAGAIN, "too-many-procs");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return fail(errno, "socketpair");
	rc = wcall(p, &q, sv[1]);
	close(sv[1]);
	if (rc) {
		close(sv[0]);
		return -1;
	}
	if (add_proc(child, wr.pid, sv[0]))
		return -1;
	sb_printf(&reply_fields, " pid=%d", wr.pid);
	return 0;
}

static int op_exit(const struct req *r)
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

static int op_findpage(const struct req *r)
{
	struct wreq q;
	struct proc *p;
	uint64_t ent = 0, cnt, flags;
	ssize_t n;

	if (req_map(r, &q, W_LOOKUP))
		return -1;
	if (num(r, "page", REQUIRED, max_pages, &q.page))
		return bad(r, "page");
	p = req_proc(r);
	if (!p || wcall(p, &q, -1) || need_mtest())
		return -1;
	n = pread(p->pagemap, &ent, 8, wr.addr / page_size * 8);
	if (n != 8)
		return fail(n < 0 ? errno : EIO, "pagemap");
	sb_printf(&reply_fields, " pid=%d addr=", p->pid);
	sb_hex(&reply_fields, wr.addr);
	if ((ent & PM_PRESENT) && wr.mapped) {
		if (kpage(ent & PFN_MASK, &cnt, &flags))
			return -1;
		sb_add(&reply_fields, " pfn=");
		sb_hex(&reply_fields, ent & PFN_MASK);
		sb_printf(&reply_fields, " kpagecount=%llu kpageflags=",
			  (unsigned long long)cnt);
		sb_hex(&reply_fields, flags);
	} else {
		sb_add(&reply_fields, " pfn=- kpagecount=- kpageflags=-");
	}
	sb_printf(&reply_fields, " rc=%d",
		  mtest_cmd("findpage %d 0x%llx req=%llu", p->pid,
			    (unsigned long long)wr.addr,
			    (unsigned long long)r->id));
	return 0;
}

static int op_findtask(const struct req *r)
{
	struct proc *p = req_proc(r);

	if (!p || need_mtest())
		return -1;
	sb_printf(&reply_fields, " pid=%d rc=%d", p->pid,
		  mtest_cmd("findtask%d req=%llu", p->pid,
			    (unsigned long long)r->id));
	return 0;
}

static int op_pagemap(const struct req *r)
{
	struct wreq q = { .op = W_LIST, .huge = -1 };
	int i = 0, rc;
	uint32_t m;

	(void)r;
	while (i < nprocs) {
		struct proc *p = &procs[i];

		rc = wcall(p, &q, -1);
		if (rc == -2) {
			reply_err = 0;	/* died meanwhile: not live, no lines */
			continue;
		}
		if (rc)
			return -1;
		for (m = 0; m < wr.nmaps && m < MAX_MAPS; m++) {
			const struct wmapinfo *mi = &wr.maps[m];
			const uint8_t *bits = NULL;

			if (mi->bits_off != ALL_MAPPED &&
			    mi->bits_off + (mi->pages + 7) / 8 <= wr.nbits)
				bits = wr.bits + mi->bits_off;
			sb_printf(&reply_data, "D proc=%s pid=%d name=%.*s addr=",
				  p->label, p->pid, NAME_LEN - 1, mi->name);
			sb_hex(&reply_data, mi->addr);
			sb_printf(&reply_data, " pages=%llu pfns=",
				  (unsigned long long)mi->pages);
			if (add_pfns(&reply_data, p, mi->addr, mi->pages, bits))
				return -1;
			sb_addn(&reply_data, "\n", 1);
			if (reply_data.len > MAX_REPLY)
				return fail(E2BIG, "reply-too-big");
		}
		i++;
	}
	return 0;
}

static int op_kpage(const struct req *r)
{
	uint64_t pfn, cnt, flags;

	if (num(r, "pfn", REQUIRED, PFN_MASK, &pfn))
		return bad(r, "pfn");
	if (kpage(pfn, &cnt, &flags))
		return -1;
	sb_printf(&reply_fields, " kpagecount=%llu kpageflags=",
		  (unsigned long long)cnt);
	sb_hex(&reply_fields, flags);
	return 0;
}

/*
 * Runs ksmd flat out until pages_sharing did not grow over a whole scan.
 * Merging needs two scans (a page's checksum must hold still once), so at
 * least three complete scans run. Then ksmd stops, keeping what it merged,
 * so later steps see no merging behind their back.
 */
static int op_ksm(const struct req *r)
{
	uint64_t tmo, start, scans, last, prev, sharing, shared, deadline;

	if (num(r, "timeout_ms", 2000, 600000, &tmo))
		return bad(r, "timeout_ms");
	if (sysfs_write(KSM "sleep_millisecs", "0") ||
	    sysfs_write(KSM "pages_to_scan", "1000") ||
	    sysfs_u64(KSM "full_scans", &start) ||
	    sysfs_u64(KSM "pages_sharing", &prev) ||
	    sysfs_write(KSM "run", "1"))
		return fail(errno, "ksm");
	last = start;
	deadline = now_us() + tmo * 1000;
	while (now_us() < deadline) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
		if (sysfs_u64(KSM "full_scans", &scans))
			break;
		if (scans == last)
			continue;
		if (sysfs_u64(KSM "pages_sharing", &sharing))
			break;
		if (scans - start >= 3 && sharing <= prev)
			break;
		prev = sharing;
		last = scans;
	}
	if (sysfs_write(KSM "run", "0") ||
	    sysfs_u64(KSM "pages_shared", &shared) ||
	    sysfs_u64(KSM "pages_sharing", &sharing))
		return fail(errno, "ksm");
	sb_printf(&reply_fields, " pages_shared=%llu pages_sharing=%llu",
		  (unsigned long long)shared, (unsigned long long)sharing);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int op_mtest(const struct req *r)
{
	const char *hex = kv_get(r, "hex");
	uint64_t len, b, i;
	unsigned char *buf;
	ssize_t n;
	int e;

	if (hex) {
		len = strlen(hex) / 2;
		if (strlen(hex) % 2 || kv_get(r, "fill") || kv_get(r, "byte"))
			return bad(r, "hex");
		buf = malloc(len + 1);
		if (!buf)
			return fail(ENOMEM, "malloc");
		for (i = 0; i < len; i++) {
			int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

			if (hi < 0 || lo < 0) {
				free(buf);
				return bad(r, "hex");
			}
			buf[i] = hi << 4 | lo;
		}
	} else {
		if (num(r, "fill", REQUIRED, 16 << 20, &len))
			return bad(r, "fill");
		if (num(r, "byte", 0, 255, &b))
			return bad(r, "byte");
		buf = malloc(len + 1);
		if (!buf)
			return fail(ENOMEM, "malloc");
		memset(buf, b, len);
	}
	if (need_mtest()) {
		free(buf);
		return -1;
	}
	n = write(mtest_fd, buf, len);
	e = errno;
	free(buf);
	if (n < 0)
		return fail(e, "write");
	sb_printf(&reply_fields, " ret=%zd", n);
	return 0;
}

static int op_modparam(const struct req *r)
{
	const char *param = kv_get(r, "param"), *val = kv_get(r, "value");
	char path[96];

	if (!param || strspn(param, "abcdefghijklmnopqrstuvwxyz"
			     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
		      strlen(param) || !*param || strlen(param) > 48)
		return bad(r, "param");
	if (!val)
		return bad(r, "value");
	snprintf(path, sizeof(path), "/sys/module/rmapcheck/parameters/%s",
		 param);
	if (sysfs_write(path, val))
		return fail(errno, "modparam");
	return 0;
}

static int op_panic(const struct req *r)
{
	(void)r;
	if (sysfs_write("/proc/sysrq-trigger", "c"))
		return fail(errno, "sysrq");
	return NO_REPLY;
}

static int op_hang(const struct req *r)
{
	(void)r;
	for (;;)
		pause();
	return NO_REPLY;
}

static int op_crash(const struct req *r)
{
	(void)r;
	abort();
}

static int op_poweroff(const struct req *r)
{
	(void)r;
	return POWER_OFF;
}

static const struct op ops[] = {
	{ "ping", op_ping, k_none },
	{ "reset", op_reset, k_none },
	{ "mmap", op_mmap, k_mmap },
	{ "munmap", op_munmap, k_munmap },
	{ "mprotect", op_mprotect, k_mprotect },
	{ "mremap", op_mremap, k_mremap },
	{ "madvise", op_madvise, k_madvise },
	{ "write", op_write, k_write },
	{ "read", op_read, k_read },
	{ "fork", op_fork, k_fork },
	{ "exit", op_exit, k_proc },
	{ "findpage", op_findpage, k_findpage },
	{ "findtask", op_findtask, k_proc },
	{ "pagemap", op_pagemap, k_none },
	{ "kpage", op_kpage, k_kpage },
	{ "ksm", op_ksm, k_ksm },
	{ "mtest", op_mtest, k_mtest },
	{ "modparam", op_modparam, k_modparam },
	{ "storm", op_storm, k_storm },
	{ "tainted", op_tainted, k_none },
	{ "panic", op_panic, k_none },
	{ "hang", op_hang, k_none },
	{ "crash", op_crash, k_none },
	{ "poweroff", op_poweroff, k_none },
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
	kpc_fd = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
	kpf_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	mtest_fd = open("/proc/mtest", O_WRONLY | O_CLOEXEC);
	return start_p0();
}

// SPDX-License-Identifier: GPL-2.0
/*
 * rmapcheck guest agent, run as /init. Boots the guest the way
 * docs/PROTOCOL.md (Boot) says, then answers the host's requests on the
 * virtio port, one line at a time, in order.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "ops.h"
#include "proctable.h"
#include "sysfs.h"

#define PORT_NAME	"rmapcheck.0"
#define PORT_WAIT_MS	10000
#define THP		"/sys/kernel/mm/transparent_hugepage/"
/* finit_module(2): the kernel decompresses (Debian 6.12+ ship .ko.xz). */
#define MODULE_INIT_COMPRESSED_FILE	4

long page_size;

/* The host's virtio port and /dev/kmsg: opened at boot, for the agent's life. */
static int port_fd = -1, kmsg_fd = -1;

void con(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	if (n > 0 && write(1, buf, n) < 0)
		return;
}

uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	/* Not pid 1 (a test run), or no permission. */
	con("rmapcheck-agent: reboot: %s\n", strerror(errno));
	if (getpid() != 1)
		exit(1);
	for (;;)
		pause();
}

static void write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, val, strlen(val)) < 0)
		con("rmapcheck-agent: %s: %s\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void mount_one(const char *src, const char *dir, const char *type,
		      unsigned long flags, const char *opts)
{
	mkdir(dir, 0755);
	if (mount(src, dir, type, flags, opts) && errno != EBUSY)
		con("rmapcheck-agent: mount %s: %s\n", dir, strerror(errno));
}

/*
 * Without /dev/console in the initramfs the kernel starts us with no fds
 * 0-2; open it from devtmpfs so fds 0-2 are never reused by accident.
 */
static void fix_console(void)
{
	int fd, i, need = 0;

	for (i = 0; i < 3; i++)
		if (fcntl(i, F_GETFD) < 0)
			need = 1;
	if (!need)
		return;
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		fd = open("/dev/null", O_RDWR);
	for (i = 0; i < 3 && fd >= 0; i++)
		if (fcntl(i, F_GETFD) < 0)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
}

/*
 * hugetlbfs is mounted at boot; its pool is filled by hugetlb_pool() at
 * the first hugetlb map of a run and emptied at reset.  Not at boot: on
 * 16k pages the 3 huge pages are 96 MiB of a 512 MiB guest, and holding
 * them took the memory the THP scenarios' 32 MiB folios need.  Not by
 * hugepages= on the command line either: that would change the one
 * command line of every kernel (a saved guest state is keyed by it).
 */
static void boot_hugetlb(void)
{
	if (mkdir(HUGETLBFS_DIR, 0755) && errno != EEXIST)
		return;
	if (mount("hugetlbfs", HUGETLBFS_DIR, "hugetlbfs", 0, NULL))
		con("rmapcheck-agent: mount hugetlbfs: %s\n", strerror(errno));
}

static int pool_filled;

/* Fills (want=1) or empties (want=0) the hugetlb pool, once each way. */
void hugetlb_pool(int want)
{
	char n[16], got[16] = "";
	FILE *f;

	if (pool_filled == want)
		return;
	pool_filled = want;
	snprintf(n, sizeof(n), "%d", want ? HUGETLB_POOL : 0);
	write_file("/proc/sys/vm/nr_hugepages", n);
	if (!want)
		return;
	f = fopen("/proc/sys/vm/nr_hugepages", "re");
	if (f && fgets(got, sizeof(got), f) && atoi(got) != HUGETLB_POOL)
		con("rmapcheck-agent: hugetlb pool: %d of %d huge pages\n",
		    atoi(got), HUGETLB_POOL);
	if (f)
		fclose(f);
}

static void boot_fs(void)
{
	mount_one("proc", "/proc", "proc", 0, NULL);
	mount_one("sysfs", "/sys", "sysfs", 0, NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	fix_console();
	/* huge=advise: file maps get THPs only when huge=1 asks for them. */
	mkdir("/tmp", 01777);
	if (mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777,huge=advise") &&
	    mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777"))
		con("rmapcheck-agent: mount /tmp: %s\n", strerror(errno));
	/* Deterministic scenarios: THPs only where a scenario asks. */
	write_file(THP "enabled", "madvise");
	write_file(THP "defrag", "madvise");
	write_file(THP "shmem_enabled", "advise");
	boot_hugetlb();
	/* A worker killed by a fault gets its line on the log (arm64: off). */
	sysfs_write("/proc/sys/debug/exception-trace", "1");
}

/*
 * Loads /modules.load in order. Returns the errno of rmapcheck.ko's load
 * (0 when it loaded, ENOENT when it is not listed).
 */
static int load_modules(void)
{
	FILE *f = fopen("/modules.load", "re");
	char *line = NULL;
	size_t cap = 0;
	int rmc_err = ENOENT;
	ssize_t n;

	if (!f)
		return rmc_err;
	while ((n = getline(&line, &cap, f)) >= 0) {
		const char *base;
		char *path = line;
		int fd, e = 0;

		while (n && strchr(" \t\r\n", path[n - 1]))
			path[--n] = '\0';
		path += strspn(path, " \t");
		if (!*path || *path == '#')
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			e = errno;
		else if (syscall(SYS_finit_module, fd, "",
				 strstr(path, ".ko.") ?
				 MODULE_INIT_COMPRESSED_FILE : 0) &&
			 errno != EEXIST)
			e = errno;
		if (fd >= 0)
			close(fd);
		if (e)
			con("rmapcheck-agent: load %s: %s\n", path, strerror(e));
		base = strrchr(path, '/');
		base = base ? base + 1 : path;
		if (!strcmp(base, "rmapcheck.ko"))
			rmc_err = e;
	}
	free(line);
	fclose(f);
	return rmc_err;
}

/* The first /dev/vportNpM whose sysfs name is PORT_NAME; -1 after 10 s. */
static int open_port(void)
{
	int waited;

	for (waited = 0; waited < PORT_WAIT_MS; waited += 5) {
		DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *de;
		char path[300], name[64];

		while (d && (de = readdir(d))) {
			int fd;

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path),
				 "/sys/class/virtio-ports/%s/name", de->d_name);
			if (sysfs_read(path, name, sizeof(name)) ||
			    strcmp(name, PORT_NAME))
				continue;
			snprintf(path, sizeof(path), "/dev/%s", de->d_name);
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd >= 0) {
				closedir(d);
				return fd;
			}
		}
		if (d)
			closedir(d);
		msleep(5);
	}
	return -1;
}

static void port_write(const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(port_fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			con("rmapcheck-agent: port write: %s\n",
			    strerror(errno));
			return;
		}
		p += w;
		n -= w;
	}
}

/*
 * One /dev/kmsg record "prio,seq,usec,flags[,..];msg\n[ KEY=val\n...]"
 * becomes "K prio,seq,usec;msg".
 */
static void add_kmsg(struct sbuf *sb, const char *rec, size_t n)
{
	const char *semi = memchr(rec, ';', n), *end = memchr(rec, '\n', n);
	const char *hdr_end, *c;
	int commas = 0;

	if (!end)
		end = rec + n;
	if (!semi || semi > end)
		return;
	for (hdr_end = semi, c = rec; c < semi; c++)
		if (*c == ',' && ++commas == 3) {
			hdr_end = c;
			break;
		}
	sb_addn(sb, "K ", 2);
	sb_add_sanitized(sb, rec, hdr_end - rec);
	sb_addn(sb, ";", 1);
	sb_add_sanitized(sb, semi + 1, end - semi - 1);
	sb_addn(sb, "\n", 1);
}

static void drain_kmsg(struct sbuf *sb)
{
	static char rec[16384];
	int guard;

	for (guard = 0; kmsg_fd >= 0 && guard < 1000000; guard++) {
		ssize_t n = read(kmsg_fd, rec, sizeof(rec));

		if (n < 0 && (errno == EPIPE || errno == EINTR))
			continue;	/* EPIPE: records were overwritten */
		if (n <= 0)
			return;
		add_kmsg(sb, rec, n);
	}
}

/* The id of a line too broken to parse, if its first word is one. */
static uint64_t leading_id(const char *line, size_t len)
{
	char buf[24];
	size_t n = 0;
	uint64_t id;

	while (n < len && n < sizeof(buf) - 1 && line[n] >= '0' &&
	       line[n] <= '9') {
		buf[n] = line[n];
		n++;
	}
	buf[n] = '\0';
	if (n == len || line[n] != ' ' || parse_u64(buf, &id))
		return 0;
	return id;
}

/*
 * Takes `then=pagemap` out of r: 1 when it was there, 0 when not, -1 for
 * another value. Any op may carry it.
 */
static int take_then(struct req *r)
{
	int i;

	for (i = 0; i < r->nkv; i++) {
		if (strcmp(r->kv[i].k, "then"))
			continue;
		if (strcmp(r->kv[i].v, "pagemap"))
			return -1;
		r->kv[i] = r->kv[--r->nkv];
		return 1;
	}
	return 0;
}

/*
 * Answers one line. The reply buffers live across requests only to keep
 * their memory; everything else about the request is in its context.
 */
static void handle_line(char *line, size_t len, int overlong)
{
	static struct sbuf data, fields, why;
	struct ctx c = { .fields = &fields, .data = &data, .why = &why };
	const struct op *op;
	struct req r;
	int rc, then;

	data.len = 0;
	fields.len = 0;
	sb_add(&fields, "");
	why.len = 0;
	sb_add(&why, "");
	c.req = &r;
	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	if (overlong || memchr(line, '\0', len)) {
		memset(&r, 0, sizeof(r));
		r.id = leading_id(line, len);
		rc = bad(&c, overlong ? "line: too long" : "line: NUL");
	} else if (parse_request(line, &r)) {
		rc = bad(&c, "line");
	} else if (!(op = find_op(r.op))) {
		rc = fail(&c, ENOSYS, "unknown-op");
	} else if ((then = take_then(&r)) < 0) {
		rc = bad(&c, "then");
	} else if (kv_check(&r, op->keys)) {
		rc = fail(&c, EINVAL, "bad-request");
	} else {
		rc = op_call(&c, op, then);
	}
	if (rc == NO_REPLY)
		return;
	if (rc < 0)
		data.len = 0;	/* no D lines with an err */
	drain_kmsg(&data);
	if (rc < 0)
		sb_printf(&data, "R %llu err errno=%d msg=%s%s\n",
			  (unsigned long long)r.id, c.err, c.msg, why.p);
	else
		sb_printf(&data, "R %llu ok%s\n", (unsigned long long)r.id,
			  fields.p);
	port_write(data.p, data.len);
	if (rc == POWER_OFF)
		power_off();
	reap();
}

static void serve(void)
{
	static char rbuf[65536], line[MAX_LINE + 1];
	size_t llen = 0;
	int overlong = 0;

	for (;;) {
		ssize_t n = read(port_fd, rbuf, sizeof(rbuf)), i = 0;

		if (n <= 0) {
			/* 0: no host on the other end (yet, or any more). */
			if (n < 0 && errno == EINTR)
				continue;
			llen = 0;	/* a new host starts a new line */
			overlong = 0;
			msleep(2);
			continue;
		}
		while (i < n) {
			char *nl = memchr(rbuf + i, '\n', n - i);
			size_t chunk = nl ? nl - (rbuf + i) : n - i;
			size_t take = MAX_LINE - llen;

			if (chunk > take)
				overlong = 1;	/* keep the head for its id */
			else
				take = chunk;
			memcpy(line + llen, rbuf + i, take);
			llen += take;
			i += chunk;
			if (!nl)
				break;
			line[llen] = '\0';
			handle_line(line, llen, overlong);
			llen = 0;
			overlong = 0;
			i++;
		}
	}
}

int main(void)
{
	struct utsname u;
	struct ctx boot = { 0 };
	char ready[256];
	int rmc_err, module;

	page_size = getauxval(AT_PAGESZ);
	if (!page_size)
		page_size = sysconf(_SC_PAGESIZE);
	/* Keep malloc off mmap: workers inherit our heap, and an mmap'd
	 * chunk could merge with a scenario's anonymous map. */
	mallopt(M_MMAP_MAX, 0);
	signal(SIGPIPE, SIG_IGN);

	boot_fs();
	rmc_err = load_modules();
	ops_boot();
	module = access("/sys/module/rmapcheck", F_OK) == 0;
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg_fd < 0)
		con("rmapcheck-agent: /dev/kmsg: %s\n", strerror(errno));

	port_fd = open_port();
	if (port_fd < 0) {
		con("rmapcheck-agent: no port\n");
		power_off();
	}
	if (ops_init(&boot)) {
		con("rmapcheck-agent: cannot start p0: %s: %s\n", boot.msg,
		    strerror(boot.err));
		power_off();
	}

	uname(&u);
	for (char *c = u.release; *c; c++)
		if (*c < 0x21 || *c > 0x7e)
			*c = '?';	/* values never hold spaces */
	if (module)
		snprintf(ready, sizeof(ready),
			 "READY page_size=%ld release=%s module=1\n",
			 page_size, u.release);
	else
		snprintf(ready, sizeof(ready),
			 "READY page_size=%ld release=%s module=0 errno=%d\n",
			 page_size, u.release, rmc_err ? rmc_err : ENOENT);
	con("rmapcheck-agent: %s", ready);
	port_write(ready, strlen(ready));
	serve();
	return 0;
}

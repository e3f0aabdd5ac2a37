// SPDX-License-Identifier: GPL-2.0
/* Ops on the whole guest: ping, ksm, seed, and the test-only faults. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "handlers.h"
#include "kcov.h"
#include "proctable.h"
#include "request.h"
#include "sysfs.h"

#define KSM			"/sys/kernel/mm/ksm/"

int op_ping(struct ctx *c)
{
	(void)c;
	return 0;
}

/*
 * Runs ksmd flat out until pages_sharing did not grow over a whole scan.
 * Merging needs two scans (a page's checksum must hold still once), so at
 * least three complete scans run. Then ksmd stops, keeping what it merged,
 * so later steps see no merging behind their back. A scan of a few
 * mergeable maps takes milliseconds; none for IDLE_US means ksmd has no
 * mergeable VMA left to scan (all were made unmergeable again, say).
 */
#define IDLE_US			200000
int op_ksm(struct ctx *c)
{
	uint64_t tmo, start, scans, last, prev, sharing, shared, deadline, idle;
	struct proc *p;

	if (num(c, "timeout_ms", 2000, 600000, &tmo))
		return bad(c, "timeout_ms");
	/*
	 * With no live process that made memory mergeable, ksmd has no mm to
	 * scan: the wait below would last its whole IDLE_US for nothing.
	 */
	for (p = proc_next(NULL); p; p = proc_next(p))
		if (p->mergeable)
			break;
	if (!p)
		tmo = 0;
	if (sysfs_write(KSM "sleep_millisecs", "0") ||
	    sysfs_write(KSM "pages_to_scan", "1000") ||
	    sysfs_u64(KSM "full_scans", &start) ||
	    sysfs_u64(KSM "pages_sharing", &prev) ||
	    sysfs_write(KSM "run", "1"))
		return fail(c, errno, "ksm");
	last = start;
	deadline = now_us() + tmo * 1000;
	idle = now_us() + IDLE_US;
	while (now_us() < deadline) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
		if (sysfs_u64(KSM "full_scans", &scans))
			break;
		if (scans == last && now_us() > idle)
			break;
		if (scans == last)
			continue;
		idle = now_us() + IDLE_US;
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
		return fail(c, errno, "ksm");
	/* What ksmd traced belongs to this step (kcov-remote.patch). */
	kcov_fold_remote();
	sb_printf(c->fields, " pages_shared=%llu pages_sharing=%llu",
		  (unsigned long long)shared, (unsigned long long)sharing);
	return 0;
}

/*
 * Guests restored from one saved state share one CRNG state: mix the host's
 * bytes into the input pool and reseed at once. ENODATA (the CRNG is not
 * ready yet) is fine: it will seed from the pool that now holds the bytes.
 */
int op_seed(struct ctx *c)
{
	const char *hex = kv_get(c->req, "hex");
	unsigned char buf[64];
	size_t len, i;
	int fd, e = 0;

	len = hex ? strlen(hex) / 2 : 0;
	if (!hex || strlen(hex) % 2 || !len || len > sizeof(buf))
		return bad(c, "hex");
	for (i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return bad(c, "hex");
		buf[i] = hi << 4 | lo;
	}
	fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(c, errno, "open-urandom");
	if (write(fd, buf, len) != (ssize_t)len)
		e = errno ? errno : EIO;
	else if (ioctl(fd, RNDRESEEDCRNG) && errno != ENODATA)
		e = errno;
	close(fd);
	return e ? fail(c, e, "seed") : 0;
}

int op_panic(struct ctx *c)
{
	(void)c;
	if (sysfs_write("/proc/sysrq-trigger", "c"))
		return fail(c, errno, "sysrq");
	return NO_REPLY;
}

int op_hang(struct ctx *c)
{
	(void)c;
	for (;;)
		pause();
	return NO_REPLY;
}

int op_crash(struct ctx *c)
{
	(void)c;
	abort();
}

int op_poweroff(struct ctx *c)
{
	(void)c;
	return POWER_OFF;
}

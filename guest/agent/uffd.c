// SPDX-License-Identifier: GPL-2.0
/*
 * The worker's userfaultfd. No thread reads it: UFFD_FEATURE_SIGBUS turns
 * every fault it would report into SIGBUS, which w_touch() catches, and
 * without UFFD_FEATURE_EVENT_FORK a fork's child keeps no registration.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uffd.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef UFFDIO_MOVE
struct uffdio_move {
	__u64 dst, src, len, mode;
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif

static int ufd = -1;
static uint64_t features;	/* what UFFDIO_API granted */

/* Open it once: user faults only where unprivileged uffd needs that. */
static int uffd_open(const char **what)
{
	struct uffdio_api api = { .api = UFFD_API };

	if (ufd >= 0)
		return 0;
	*what = "userfaultfd";
	ufd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (ufd < 0)
		ufd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (ufd < 0)
		return errno == ENOSYS ? EOPNOTSUPP : errno;
	/* Ask for SIGBUS alone, then read back what else the kernel has. */
	api.features = UFFD_FEATURE_SIGBUS;
	if (ioctl(ufd, UFFDIO_API, &api)) {
		int e = errno;

		close(ufd);
		ufd = -1;
		*what = "uffdio-api";
		return e;
	}
	features = api.features;
	return 0;
}

int uffd_register(uint64_t addr, uint64_t len, int mode, const char **what)
{
	struct uffdio_register reg = { .range = { addr, len } };
	int e = uffd_open(what);

	if (e)
		return e;
	*what = "uffdio-register";
	if (mode & 1)
		reg.mode |= UFFDIO_REGISTER_MODE_MISSING;
	if (mode & 2) {
		/* arm64 has uffd-wp from 6.10 only. */
		if (!(features & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
			return EOPNOTSUPP;
		reg.mode |= UFFDIO_REGISTER_MODE_WP;
	}
	return ioctl(ufd, UFFDIO_REGISTER, &reg) ? errno : 0;
}

/* The bytes an ioctl reports it did (negative: an errno), in pages. */
static uint64_t pages_done(int64_t bytes, uint64_t page_size)
{
	return bytes > 0 ? (uint64_t)bytes / page_size : 0;
}

int uffd_fill(int kind, uint64_t dst, uint64_t src, uint64_t len,
	      uint64_t page_size, uint64_t *done, int *err, const char **what)
{
	int e = uffd_open(what), rc;

	if (e)
		return e;
	*err = 0;
	if (kind == U_COPY) {
		struct uffdio_copy c = { .dst = dst, .src = src, .len = len };

		*what = "uffdio-copy";
		rc = ioctl(ufd, UFFDIO_COPY, &c);
		*err = rc ? errno : 0;
		*done = rc ? pages_done(c.copy, page_size) : len / page_size;
	} else if (kind == U_ZEROPAGE) {
		struct uffdio_zeropage z = { .range = { dst, len } };

		*what = "uffdio-zeropage";
		rc = ioctl(ufd, UFFDIO_ZEROPAGE, &z);
		*err = rc ? errno : 0;
		*done = rc ? pages_done(z.zeropage, page_size) : len / page_size;
	} else {
		*what = "uffdio-move";
		if (!(features & UFFD_FEATURE_MOVE))
			return EOPNOTSUPP;	/* 6.8+ */
		/*
		 * A short move answers EAGAIN with the bytes it moved; the
		 * rest, asked again, says why it stopped (userfaultfd_move()).
		 */
		*done = 0;
		while (*done * page_size < len) {
			uint64_t at = *done * page_size;
			struct uffdio_move m = {
				.dst = dst + at, .src = src + at, .len = len - at,
			};

			rc = ioctl(ufd, UFFDIO_MOVE, &m);
			if (!rc) {
				*done = len / page_size;
				break;
			}
			if (m.move <= 0) {
				*err = errno;
				break;
			}
			*done += pages_done(m.move, page_size);
		}
	}
	/* Not a result: the request itself was wrong. */
	if (*err == EINVAL || *err == EFAULT)
		return *err;
	return 0;
}

int uffd_protect(uint64_t addr, uint64_t len, int on, const char **what)
{
	struct uffdio_writeprotect wp = { .range = { addr, len } };
	int e = uffd_open(what);

	if (e)
		return e;
	*what = "uffdio-writeprotect";
	if (!(features & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
		return EOPNOTSUPP;	/* arm64: 6.10+ */
	wp.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
	return ioctl(ufd, UFFDIO_WRITEPROTECT, &wp) ? errno : 0;
}

void uffd_forget(void)
{
	if (ufd >= 0)
		close(ufd);
	ufd = -1;
}

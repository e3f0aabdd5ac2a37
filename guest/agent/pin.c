// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
/*
 * A worker's pins on its own pages. io_uring's IORING_REGISTER_BUFFERS
 * pins with pin_user_pages(FOLL_WRITE | FOLL_LONGTERM); vmsplice() into a
 * pipe takes FOLL_GET references (iov_iter_get_pages2) that the pipe holds
 * until it is closed. Each pin is a ring or a pipe of its own, because a
 * ring registers buffers once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pin.h"

#define MAX_HELD		8	/* World's MAX_PINS */
#define URING_DISABLED		"/proc/sys/kernel/io_uring_disabled"
#define IORING_REGISTER_BUFFERS		0
#define IORING_UNREGISTER_BUFFERS	1
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup	425
#define SYS_io_uring_register	427
#endif

/* Each held pin: its ring, or its pipe's two ends. */
static int held[PIN_KINDS][MAX_HELD][2];
static int nheld[PIN_KINDS];

/* io_uring_disabled=2 (6.6+) refuses every ring: say so, not EPERM. */
static int uring_disabled(void)
{
	char buf[8] = "";
	int fd = open(URING_DISABLED, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return buf[0] == '2';
}

static int uring_pin(void *addr, size_t len, int *fds, const char **what)
{
	uint32_t params[30];	/* struct io_uring_params, all zero */
	struct iovec iov = { addr, len };
	int fd, e;

	if (uring_disabled()) {
		*what = "io_uring_disabled";
		return ENOSYS;
	}
	memset(params, 0, sizeof(params));
	fd = syscall(SYS_io_uring_setup, 1, params);
	if (fd < 0) {
		*what = "io_uring_setup";
		return errno;
	}
	if (syscall(SYS_io_uring_register, fd, IORING_REGISTER_BUFFERS, &iov,
		    1)) {
		e = errno;
		close(fd);
		*what = "io_uring_register";
		return e;
	}
	fds[0] = fd;
	fds[1] = -1;
	return 0;
}

static int vmsplice_pin(void *addr, size_t len, int *fds, const char **what)
{
	struct iovec iov = { addr, len };
	ssize_t n;
	int e;

	if (pipe2(fds, O_CLOEXEC)) {
		*what = "pipe";
		return errno;
	}
	/* One pipe buffer per page: the pipe must hold them all. */
	if (fcntl(fds[1], F_SETPIPE_SZ, (int)len) < 0) {
		*what = "F_SETPIPE_SZ";
		goto fail;
	}
	while (iov.iov_len) {
		n = vmsplice(fds[1], &iov, 1, SPLICE_F_NONBLOCK);
		if (n <= 0) {
			*what = "vmsplice";
			if (!n)
				errno = EIO;
			goto fail;
		}
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len -= n;
	}
	return 0;
fail:
	e = errno;
	close(fds[0]);
	close(fds[1]);
	return e;
}

int pin_hold(int kind, void *addr, size_t len, const char **what)
{
	int *fds, e;

	if (kind < 0 || kind >= PIN_KINDS || nheld[kind] >= MAX_HELD) {
		*what = "pins";
		return EINVAL;
	}
	fds = held[kind][nheld[kind]];
	e = kind == PIN_URING ? uring_pin(addr, len, fds, what) :
				vmsplice_pin(addr, len, fds, what);
	if (!e)
		nheld[kind]++;
	return e;
}

/*
 * Unregistering unpins at once (no request is in flight); closing the ring
 * alone would leave its teardown, and the unpin, to a workqueue.
 */
int pin_drop(int kind, const char **what)
{
	int i, e = 0;

	if (kind < 0 || kind >= PIN_KINDS) {
		*what = "pins";
		return EINVAL;
	}
	for (i = 0; i < nheld[kind]; i++) {
		int *fds = held[kind][i];

		if (kind == PIN_URING &&
		    syscall(SYS_io_uring_register, fds[0],
			    IORING_UNREGISTER_BUFFERS, NULL, 0) && !e) {
			e = errno;
			*what = "io_uring_unregister";
		}
		close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
	}
	nheld[kind] = 0;
	return e;
}

void pin_forget(void)
{
	int k, i;

	for (k = 0; k < PIN_KINDS; k++) {
		for (i = 0; i < nheld[k]; i++) {
			close(held[k][i][0]);
			if (held[k][i][1] >= 0)
				close(held[k][i][1]);
		}
		nheld[k] = 0;
	}
}

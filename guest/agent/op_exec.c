// SPDX-License-Identifier: GPL-2.0
/*
 * exec: runs a static program that the initramfs ships (a C reproducer) and
 * hands back what it printed and how it ended.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "handlers.h"
#include "request.h"

#define OUT_MAX		(256 * 1024)	/* bytes of output kept; the rest is cut */
#define HEX_PER_LINE	16384		/* output bytes per D line (< MAX_LINE / 2) */

/* A path the initramfs can hold: absolute, of [A-Za-z0-9/._-]. */
static int good_path(const char *p)
{
	static const char lower[] = "abcdefghijklmnopqrstuvwxyz";
	const char *c;

	if (!p || p[0] != '/' || strstr(p, ".."))
		return 0;
	for (c = p; *c; c++)
		if (!strchr(lower, *c | 0x20) && !strchr("0123456789/._-", *c))
			return 0;
	return 1;
}

static void out_lines(struct sbuf *sb, const char *buf, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, at;

	for (at = 0; at < n; at += HEX_PER_LINE) {
		size_t end = at + HEX_PER_LINE < n ? at + HEX_PER_LINE : n;

		sb_add(sb, "D out=");
		for (i = at; i < end; i++) {
			char two[2] = { hex[(uint8_t)buf[i] >> 4],
					hex[(uint8_t)buf[i] & 15] };

			sb_addn(sb, two, 2);
		}
		sb_add(sb, "\n");
	}
}

/*
 * The child runs in a process group of its own, with stdout and stderr on one
 * pipe; at the deadline the whole group is killed, so nothing it started
 * outlives the request. Output comes back hex-encoded in D lines (it may hold
 * any byte), then status=<exit code> or signal=<n>, and timed_out=0|1.
 */
int op_exec(struct ctx *c)
{
	static char out[OUT_MAX];
	const char *path = kv_get(c->req, "path");
	uint64_t tmo, deadline;
	size_t len = 0;
	int fds[2], st, timed_out = 0, cut = 0;
	pid_t pid;

	if (!good_path(path))
		return bad(c, "path");
	if (num(c, "timeout_ms", 60000, 600000, &tmo))
		return bad(c, "timeout_ms");
	if (access(path, X_OK))
		return fail(c, errno, "exec-path");
	if (pipe2(fds, O_CLOEXEC))
		return fail(c, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return fail(c, errno, "fork");
	}
	if (pid == 0) {
		setpgid(0, 0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	close(fds[1]);
	deadline = now_us() + tmo * 1000;
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		uint64_t now = now_us();
		char chunk[4096];
		ssize_t n;

		if (now >= deadline) {
			timed_out = 1;
			break;
		}
		if (poll(&p, 1, (int)((deadline - now) / 1000) + 1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!p.revents)
			continue;
		n = read(fds[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len + (size_t)n > OUT_MAX) {
			n = (ssize_t)(OUT_MAX - len);
			cut = 1;
		}
		memcpy(out + len, chunk, (size_t)n);
		len += (size_t)n;
	}
	close(fds[0]);
	kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	out_lines(c->data, out, len);
	if (WIFEXITED(st))
		sb_printf(c->fields, " status=%d", WEXITSTATUS(st));
	else
		sb_printf(c->fields, " signal=%d", WTERMSIG(st));
	sb_printf(c->fields, " timed_out=%d cut=%d", timed_out, cut);
	return 0;
}

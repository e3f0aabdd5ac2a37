/* SPDX-License-Identifier: GPL-2.0 */
/* kcov.c: coverage of what the workers and the controller do in the kernel. */
#ifndef RMC_KCOV_H
#define RMC_KCOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ctx;

/* One KCOV trace buffer, mapped by the controller: count, then PCs. */
struct kcov_buf {
	int fd;
	uint64_t *area;
	size_t words;
};

void kcov_boot(void);
int kcov_available(void);
void kcov_request(const char *op);
int kcov_open(struct ctx *c, struct kcov_buf *k);
void kcov_fold(struct kcov_buf *k);
void kcov_close(struct kcov_buf *k);
void kcov_retire(struct kcov_buf *k, pid_t pid);
void kcov_enable_self(void);
void kcov_begin(void);
void kcov_end(void);
void kcov_fold_remote(void);

#endif

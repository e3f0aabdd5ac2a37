/* SPDX-License-Identifier: GPL-2.0 */
/*
 * uffd.c: the worker's one userfaultfd, opened at its first use with
 * UFFD_FEATURE_SIGBUS (a fault it would report is SIGBUS instead).
 */
#ifndef RMC_UFFD_H
#define RMC_UFFD_H

#include <stdint.h>

enum uffd_kind { U_REGISTER, U_COPY, U_ZEROPAGE, U_MOVE, U_WP };

/* mode: 1 missing, 2 wp, 3 both. 0 or an errno; what names the call. */
int uffd_register(uint64_t addr, uint64_t len, int mode, const char **what);
/*
 * COPY, ZEROPAGE and MOVE: 0 with *done (pages) and *err (the errno it
 * stopped with, 0 if none), or an errno when it could not start.
 */
int uffd_fill(int kind, uint64_t dst, uint64_t src, uint64_t len,
	      uint64_t page_size, uint64_t *done, int *err, const char **what);
int uffd_protect(uint64_t addr, uint64_t len, int on, const char **what);
/* A fork's child: the parent's userfaultfd is not ours to use. */
void uffd_forget(void);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pin.c: the pins a worker holds on its own pages (io_uring fixed buffers,
 * pages vmspliced into a pipe), each until the worker drops its kind.
 */
#ifndef RMC_PIN_H
#define RMC_PIN_H

#include <stddef.h>

enum pin_kind { PIN_URING, PIN_VMSPLICE, PIN_KINDS };

/* Pin [addr, addr+len); 0, or an errno with *what naming the call. */
int pin_hold(int kind, void *addr, size_t len, const char **what);
/* Drop every pin of a kind; 0, or an errno. */
int pin_drop(int kind, const char **what);
/* A fork's child: the fds are the parent's pins, not its own. */
void pin_forget(void);

#endif

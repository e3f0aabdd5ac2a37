/* SPDX-License-Identifier: GPL-2.0 */
/* request.c: reading the keys of a request into numbers, words and maps. */
#ifndef RMC_REQUEST_H
#define RMC_REQUEST_H

#include "ops.h"
#include "proctable.h"

#define REQUIRED		UINT64_MAX

/* A word a key may take, and what it stands for. */
struct named {
	const char *name;
	int value;
};

uint64_t max_pages(void);
int num(struct ctx *c, const char *k, uint64_t def, uint64_t max,
	uint64_t *v);
int pick(const char *s, const struct named *names);
int req_proc(struct ctx *c, struct proc **out);
int req_map(struct ctx *c, struct wreq *q, uint32_t op);
int req_page(struct ctx *c, struct wreq *q);
int req_pages(struct ctx *c, struct wreq *q, uint64_t count_def,
	      uint64_t count_max);

#endif

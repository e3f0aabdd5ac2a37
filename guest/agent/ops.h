/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ops.c: the op table, and the context every op handler works in: the
 * parsed request, the reply being built and the error it ends with.
 */
#ifndef RMC_OPS_H
#define RMC_OPS_H

#include "protocol.h"

/*
 * One request's context. A handler (and every helper it calls) returns 0,
 * a negative errno from fail(), which also set msg, or one of the codes
 * below.
 */
struct ctx {
	const struct req *req;
	struct sbuf *fields;	/* " k=v" of the R line */
	struct sbuf *data;	/* D lines */
	struct sbuf *why;	/* " k=v" an err R line adds after msg */
	int err;		/* what fail() was given; the R line's errno */
	char msg[NAME_LEN];
};

#define NO_REPLY	1	/* panic, hang, crash */
#define POWER_OFF	2	/* answer, then power off */

struct op {
	const char *name;
	int (*fn)(struct ctx *c);
	const char *const *keys;	/* NULL-terminated */
};

int fail(struct ctx *c, int err, const char *msg);
int bad(struct ctx *c, const char *why);

const struct op *find_op(const char *name);
int op_call(struct ctx *c, const struct op *op, int then);
void ops_boot(void);
int ops_init(struct ctx *c);

#endif

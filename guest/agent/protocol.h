/* SPDX-License-Identifier: GPL-2.0 */
/* protocol.c: request lines, reply buffers and the value parsers. */
#ifndef RMC_PROTOCOL_H
#define RMC_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"

struct kv {
	const char *k, *v;
};

struct req {
	uint64_t id;
	const char *op;
	int nkv;
	struct kv kv[MAX_KV];
};

/* Growable byte buffer; every reply is built in one and written at once. */
struct sbuf {
	char *p;
	size_t len, cap;
};

void sb_addn(struct sbuf *sb, const char *s, size_t n);
void sb_add(struct sbuf *sb, const char *s);
void sb_printf(struct sbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sb_add_sanitized(struct sbuf *sb, const char *s, size_t n);
void sb_hex(struct sbuf *sb, uint64_t v);
void sb_hex_bare(struct sbuf *sb, uint64_t v);

int parse_request(char *line, struct req *r);
const char *kv_get(const struct req *r, const char *key);
int kv_check(const struct req *r, const char *const *allowed);
int parse_u64(const char *s, uint64_t *out);
int parse_i64(const char *s, int64_t *out);
int valid_name(const char *s);
int hexval(char c);

#endif

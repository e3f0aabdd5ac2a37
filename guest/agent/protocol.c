// SPDX-License-Identifier: GPL-2.0
/*
 * Request parsing and reply buffers. Everything here treats the host's bytes
 * as hostile: no input may crash the agent, only earn a bad-request.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

static void sb_grow(struct sbuf *sb, size_t need)
{
	size_t cap;
	char *p;

	if (sb->len + need + 1 <= sb->cap)
		return;
	cap = sb->cap ? sb->cap : 4096;
	while (cap < sb->len + need + 1)
		cap *= 2;
	p = realloc(sb->p, cap);
	if (!p) {
		/* Out of memory in pid 1: nothing sane left to do. */
		con("rmapcheck-agent: out of memory\n");
		abort();
	}
	sb->p = p;
	sb->cap = cap;
}

void sb_addn(struct sbuf *sb, const char *s, size_t n)
{
	sb_grow(sb, n);
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
	sb->p[sb->len] = '\0';
}

void sb_add(struct sbuf *sb, const char *s)
{
	sb_addn(sb, s, strlen(s));
}

void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb_grow(sb, n);
	va_start(ap, fmt);
	vsnprintf(sb->p + sb->len, n + 1, fmt, ap);
	va_end(ap);
	sb->len += n;
}

/* Keeps a line one line of printable ASCII (PROTOCOL.md, Transport). */
void sb_add_sanitized(struct sbuf *sb, const char *s, size_t n)
{
	size_t i;

	sb_grow(sb, n);
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		sb->p[sb->len++] = (c < 0x20 || c > 0x7e) ? '?' : c;
	}
	sb->p[sb->len] = '\0';
}

/* "0x..." without printf: pagemap dumps print thousands of these. */
void sb_hex(struct sbuf *sb, uint64_t v)
{
	sb_addn(sb, "0x", 2);
	sb_hex_bare(sb, v);
}

/* Hex without 0x: printf costs several times more, per PC of a `cov`. */
void sb_hex_bare(struct sbuf *sb, uint64_t v)
{
	char buf[16];
	int i = sizeof(buf);

	do {
		buf[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	sb_addn(sb, buf + i, sizeof(buf) - i);
}

/* Decimal, or hex with 0x. No sign, no trailing junk, no overflow. */
int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	int base = 10, digits = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; *s; s++, digits++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -1;
		if (v > (UINT64_MAX - d) / base)
			return -1;
		v = v * base + d;
	}
	if (!digits)
		return -1;
	*out = v;
	return 0;
}

int parse_i64(const char *s, int64_t *out)
{
	uint64_t v;
	int neg = (*s == '-');

	if (parse_u64(s + neg, &v) || v > (uint64_t)INT64_MAX)
		return -1;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/* Labels and map names: 1..31 chars that are safe in a file name too. */
int valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n >= NAME_LEN)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.' || c == ':' || c == '+'))
			return 0;
	}
	return strcmp(s, ".") && strcmp(s, "..");
}

/*
 * Splits "<id> <op> k=v ..." in place. Returns 0, or -1 with r->id set when
 * the id at least parsed (0 otherwise).
 */
int parse_request(char *line, struct req *r)
{
	char *tok, *save = NULL;
	uint64_t id;

	memset(r, 0, sizeof(*r));
	tok = strtok_r(line, " ", &save);
	if (!tok || strspn(tok, "0123456789") != strlen(tok) ||
	    parse_u64(tok, &id))
		return -1;
	r->id = id;
	tok = strtok_r(NULL, " ", &save);
	if (!tok || strchr(tok, '='))
		return -1;
	r->op = tok;
	while ((tok = strtok_r(NULL, " ", &save))) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok || r->nkv == MAX_KV)
			return -1;
		*eq = '\0';
		r->kv[r->nkv].k = tok;
		r->kv[r->nkv].v = eq + 1;
		r->nkv++;
	}
	return 0;
}

const char *kv_get(const struct req *r, const char *key)
{
	int i;

	for (i = 0; i < r->nkv; i++)
		if (!strcmp(r->kv[i].k, key))
			return r->kv[i].v;
	return NULL;
}

/* Unknown or repeated keys are host bugs worth failing loudly on. */
int kv_check(const struct req *r, const char *const *allowed)
{
	int i, j;

	for (i = 0; i < r->nkv; i++) {
		const char *const *a;

		for (a = allowed; *a; a++)
			if (!strcmp(*a, r->kv[i].k))
				break;
		if (!*a) {
			con("rmapcheck-agent: req %llu: unknown key %s\n",
			    (unsigned long long)r->id, r->kv[i].k);
			return -1;
		}
		for (j = 0; j < i; j++)
			if (!strcmp(r->kv[j].k, r->kv[i].k)) {
				con("rmapcheck-agent: req %llu: repeated key %s\n",
				    (unsigned long long)r->id, r->kv[i].k);
				return -1;
			}
	}
	return 0;
}

int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

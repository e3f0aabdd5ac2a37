/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rmapcheck guest agent: shared definitions.
 *
 * The controller (pid 1) speaks the line protocol of docs/PROTOCOL.md on the
 * virtio port. Workload processes ("workers") hold the named maps and do the
 * memory syscalls in their own address space; the controller drives each one
 * over a SOCK_SEQPACKET socketpair with the fixed-size messages below.
 */
#ifndef RMC_AGENT_H
#define RMC_AGENT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAX_LINE	65536	/* protocol line limit, without the newline */
#define MAX_PROCS	128
#define MAX_MAPS	64
#define NAME_LEN	32	/* labels and map names: at most 31 chars */
#define MAX_KV		32
#define MAX_IO_PAGES	4096	/* write/read: keeps the pfns= line < 64 KiB */
#define MAX_MAP_PAGES	65536	/* mmap/mremap: bounds the pagemap dump */
#define MAX_REPLY	(32 << 20)	/* the most pid 1 buffers for one reply */
#define CTL_FD		3	/* a worker's control socket */
#define KCOV_FD		4	/* a worker's kcov buffer (kcov.c), if any */

/* ---- controller <-> worker messages ---- */

enum wop {
	W_MMAP = 1,
	W_MUNMAP,
	W_MPROTECT,
	W_MREMAP,
	W_MADVISE,
	W_WRITE,
	W_READ,
	W_FORK,		/* carries the child's control socket (SCM_RIGHTS) */
	W_EXIT,		/* no reply: the controller waits for the socket EOF */
	W_LIST,		/* the whole map table */
	W_MLOCK,	/* advice: mlock2() flags */
	W_MUNLOCK,
	W_MLOCKALL,	/* advice: mlockall() flags */
	W_MUNLOCKALL,
};

enum backing { B_ANON, B_DEVZERO, B_MEMFD, B_FILE };

struct wreq {
	uint32_t op;
	char name[NAME_LEN];
	char at_map[NAME_LEN];
	uint64_t page, count, pages, offset;
	int64_t at;
	int32_t backing, shared;
	int32_t huge;		/* -1: not given */
	int32_t prot, advice, value;
	uint8_t one_byte, has_at, move, dontunmap;
	uint8_t locked;		/* W_MMAP: MAP_LOCKED */
	uint8_t tag;		/* W_WRITE: first 8 bytes = page index */
};

struct wmapinfo {
	char name[NAME_LEN];
	uint64_t addr, pages;
	uint32_t bits_off;	/* into wrep.bits, or ALL_MAPPED */
	uint32_t pad;
};

#define ALL_MAPPED	UINT32_MAX
#define WREP_BITS	(128 * 1024)

struct wrep {
	int32_t err;		/* 0 or an errno */
	char msg[NAME_LEN];
	uint64_t addr, old, count;
	int32_t pid;
	uint32_t mapped;	/* proc_lookup: the page is still this map's */
	uint32_t nmaps, nbits;
	struct wmapinfo maps[MAX_MAPS];
	uint8_t bits[WREP_BITS];	/* W_LIST: one bit per page, 1 = mapped */
};

#define WREP_HDR_LEN	offsetof(struct wrep, maps)
#define WREP_LIST_LEN(n) (offsetof(struct wrep, bits) + (n))

/* ---- protocol.c: requests and the reply buffer ---- */

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

/* ---- worker.c ---- */

extern long page_size;
void worker_main(void) __attribute__((noreturn));
void kcov_enable_self(void);
extern const char *kcov_op;	/* kcov.c: the op being served */

/* ---- the ops (ops.h has the rest) ---- */

/* An op handler returns 0 (ok), -1 (err, via fail()) or one of these. */
#define NO_REPLY	1	/* panic, hang, crash */
#define POWER_OFF	2	/* answer, then power off */

struct op {
	const char *name;
	int (*fn)(const struct req *r);
	const char *const *keys;	/* NULL-terminated */
};

extern struct sbuf reply_data;		/* D lines */
extern struct sbuf reply_fields;	/* " k=v" of the R line */
extern int reply_err;
extern char reply_msg[NAME_LEN];

int fail(int err, const char *msg);
int sysfs_u64(const char *path, uint64_t *v);
int sysfs_read(const char *path, char *buf, size_t len);
int bad(const struct req *r, const char *why);
const struct op *find_op(const char *name);
int ops_init(void);
void reap(void);
void modern_boot(void);

/* ---- agent.c ---- */

void con(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void power_off(void) __attribute__((noreturn));

#endif

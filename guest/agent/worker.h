/* SPDX-License-Identifier: GPL-2.0 */
/*
 * worker.c: the workload process, and the fixed-size messages the
 * controller drives it with over a SOCK_SEQPACKET socketpair.
 */
#ifndef RMC_WORKER_H
#define RMC_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"

#define CTL_FD		3	/* a worker's control socket */
#define KCOV_FD		4	/* a worker's kcov buffer (kcov.c), if any */

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
	W_TEST_HANG,	/* test only: block in a userfaultfd fault for good */
	W_TEST_DIE,	/* test only: a NULL write, unhandled */
	W_PIN,		/* advice: enum pin_kind (pin.h) */
	W_UNPIN,	/* advice: enum pin_kind */
	W_TRUNCATE,	/* pages: the new size of the map's file */
	W_PUNCH,	/* page, count: a hole in the file under them */
	W_MSYNC,	/* advice: msync() flags */
	W_FSYNC,	/* fsync() the file that maps page */
	W_UFFD,		/* advice: enum uffd_kind (uffd.h); prot: the mode;
			 * to_map, to: MOVE's destination; move: WP on */
};

/*
 * B_HUGETLB: MAP_ANONYMOUS | MAP_HUGETLB; B_HUGETLBFS: a file on the
 * hugetlbfs mount.  Both of the default huge page size, the PMD size.
 */
enum backing { B_ANON, B_DEVZERO, B_MEMFD, B_FILE, B_EXT4, B_HUGETLB, B_HUGETLBFS };

#define BLOCKFS_DIR	"/mnt/ext4"	/* B_EXT4's files (blockfs.c) */

struct wreq {
	uint32_t op;
	char name[NAME_LEN];
	char at_map[NAME_LEN];
	char to_map[NAME_LEN];	/* W_MREMAP: the map to= counts from */
	char as[NAME_LEN];	/* W_MREMAP: the name of a moved range */
	uint64_t page, count, pages, offset;
	int64_t at, to;
	int64_t align;		/* W_MMAP: pages past a PMD boundary */
	int32_t backing, shared;
	int32_t huge;		/* -1: not given */
	int32_t prot, advice, value;
	uint8_t one_byte, has_at, move, dontunmap;
	uint8_t locked;		/* W_MMAP: MAP_LOCKED */
	uint8_t has_align;	/* W_MMAP */
	uint8_t has_range, has_to, over, into;	/* W_MREMAP */
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
	int32_t signal;	/* a death notice: the fatal signal (no request asked) */
	uint32_t nmaps, nbits;
	struct wmapinfo maps[MAX_MAPS];
	uint8_t bits[WREP_BITS];	/* W_LIST: one bit per page, 1 = mapped */
};

#define WREP_HDR_LEN	offsetof(struct wrep, maps)
#define WREP_LIST_LEN(n) (offsetof(struct wrep, bits) + (n))

void worker_main(void) __attribute__((noreturn));

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rmapcheck guest agent: its limits, and what agent.c (boot and the port)
 * offers every other file.
 *
 * The controller (pid 1) speaks the line protocol of docs/PROTOCOL.md on the
 * virtio port. Workload processes ("workers") hold the named maps and do the
 * memory syscalls in their own address space (worker.h).
 */
#ifndef RMC_AGENT_H
#define RMC_AGENT_H

#include <stdint.h>

#define MAX_LINE	65536	/* protocol line limit, without the newline */
#define MAX_PROCS	128
#define MAX_MAPS	64
#define NAME_LEN	32	/* labels and map names: at most 31 chars */
#define MAX_KV		32
#define MAX_IO_PAGES	4096	/* write/read: keeps the pfns= line < 64 KiB */
#define MAX_MAP_PAGES	65536	/* mmap/mremap: bounds the pagemap dump */
#define MAX_REPLY	(32 << 20)	/* the most pid 1 buffers for one reply */
/*
 * Huge pages of the default size (the PMD size: 2 MiB with 4k pages,
 * 32 MiB with 16k) the agent reserves at boot, before any worker runs.
 * Three take 96 MiB of a 16k guest's 512: scenarios and fuzz keep their
 * hugetlb maps, fork copies included, within them (scenario::World).
 */
#define HUGETLB_POOL	3
#define HUGETLBFS_DIR	"/hugetlb"
void hugetlb_pool(int want);

/* Set once at boot, before any worker is forked; read-only after. */
extern long page_size;

void con(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void power_off(void) __attribute__((noreturn));
uint64_t now_us(void);

#endif

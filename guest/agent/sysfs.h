/* SPDX-License-Identifier: GPL-2.0 */
/* sysfs.c: small reads and writes of sysfs and procfs files; errno on -1. */
#ifndef RMC_SYSFS_H
#define RMC_SYSFS_H

#include <stddef.h>
#include <stdint.h>

int sysfs_write(const char *path, const char *val);
int sysfs_read_all(const char *path, char *buf, size_t len);
int sysfs_read(const char *path, char *buf, size_t len);
int sysfs_u64(const char *path, uint64_t *v);

#endif

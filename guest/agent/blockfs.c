// SPDX-License-Identifier: GPL-2.0
/*
 * The block filesystem: ext4 on a second zram device (zram1; zram0 is the
 * swap), mounted at BLOCKFS_DIR, for the writeback steps. The host made
 * the image with mkfs.ext4 (vm/src/image/blockfs.rs) and ships its blocks
 * that are not all zero as /ext4.img; boot writes them into zram1, frees
 * the copy, and mounts it.
 *
 * zram and not virtio-blk: a pooled guest is restored from a saved VM
 * state, and a zram disk lives in guest RAM, so the filesystem is saved
 * and restored with it. A virtio-blk disk would keep what later runs wrote.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "handlers.h"
#include "sysfs.h"
#include "worker.h"

#define IMAGE		"/ext4.img"
#define MAGIC		"rmcext4"	/* and its NUL: 8 bytes */
#define ZRAM1		"/sys/block/zram1/"
#define ZRAM1_DEV	"/dev/zram1"
#define HOT_ADD		"/sys/class/zram-control/hot_add"
#define CHUNK		(1 << 20)

static int ready;

static int read_u64(int fd, uint64_t *v)
{
	return read(fd, v, sizeof(*v)) == sizeof(*v) ? 0 : -1;
}

/* zram1 exists when zram loaded with two devices; else ask for one. */
static int zram1_exists(void)
{
	char id[16];

	if (!access(ZRAM1 "disksize", W_OK))
		return 0;
	if (sysfs_read(HOT_ADD, id, sizeof(id)))
		return -1;
	if (strtol(id, NULL, 10) != 1) {
		errno = EEXIST;	/* another device took the number */
		return -1;
	}
	return 0;
}

/* Copies each record of the sparse image to the same offset of dev. */
static int copy_records(int img, int dev)
{
	char *buf = malloc(CHUNK);
	uint64_t off, len, n;
	int rc = -1;

	if (!buf)
		return -1;
	while (!read_u64(img, &off)) {
		if (read_u64(img, &len))
			goto out;
		for (; len; len -= n, off += n) {
			n = len < CHUNK ? len : CHUNK;
			if (read(img, buf, n) != (ssize_t)n ||
			    pwrite(dev, buf, n, off) != (ssize_t)n)
				goto out;
		}
	}
	rc = fsync(dev);
out:
	free(buf);
	return rc;
}

static int write_image(void)
{
	char magic[8], size[32];
	uint64_t bytes;
	int img, dev, rc = -1;

	img = open(IMAGE, O_RDONLY | O_CLOEXEC);
	if (img < 0)
		return -1;
	if (read(img, magic, sizeof(magic)) != sizeof(magic) ||
	    memcmp(magic, MAGIC, sizeof(magic)) || read_u64(img, &bytes)) {
		errno = EINVAL;
		goto out;
	}
	snprintf(size, sizeof(size), "%llu", (unsigned long long)bytes);
	if (zram1_exists() || sysfs_write(ZRAM1 "disksize", size))
		goto out;
	dev = open(ZRAM1_DEV, O_WRONLY | O_CLOEXEC);
	if (dev < 0)
		goto out;
	rc = copy_records(img, dev);
	close(dev);
out:
	close(img);
	/* The initramfs copy is RAM; the disk has it now. */
	unlink(IMAGE);
	return rc;
}

void blockfs_boot(void)
{
	mkdir("/mnt", 0755);
	mkdir(BLOCKFS_DIR, 0755);
	/*
	 * noinit_itable: no thread zeroes the inode tables behind the
	 * scenarios' back; mkfs left them to lazy init and zram reads zeros.
	 */
	if (write_image() ||
	    mount(ZRAM1_DEV, BLOCKFS_DIR, "ext4", 0, "noinit_itable")) {
		con("rmapcheck-agent: ext4 on zram1: %s\n", strerror(errno));
		return;
	}
	ready = 1;
}

int blockfs_ready(void)
{
	return ready;
}

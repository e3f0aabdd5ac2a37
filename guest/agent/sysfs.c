// SPDX-License-Identifier: GPL-2.0
/* Small reads and writes of sysfs and procfs files. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "protocol.h"
#include "sysfs.h"

int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), e;
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	e = errno;
	close(fd);
	errno = e;
	return n < 0 ? -1 : 0;
}

/* The whole of a small file (what one read gives), NUL-terminated. */
int sysfs_read_all(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* The first line of a small file, NUL-terminated. */
int sysfs_read(const char *path, char *buf, size_t len)
{
	if (sysfs_read_all(path, buf, len))
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int sysfs_u64(const char *path, uint64_t *v)
{
	char buf[32];

	if (sysfs_read(path, buf, sizeof(buf)))
		return -1;
	if (parse_u64(buf, v)) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

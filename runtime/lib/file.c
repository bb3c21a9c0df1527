/* file.c - private directories and files replaced whole (file.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "file.h"

int spk_dir_check_private(const char *dir, const char *what)
{
	struct stat st;

	if (stat(dir, &st) != 0)
		return spk_fail(-errno, "%s %s: %s", what, dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return spk_fail(-ENOTDIR, "%s %s is not a directory", what, dir);
	if (st.st_uid != geteuid())
		return spk_fail(-EPERM, "%s %s belongs to uid %u, not to this user (uid %u): "
				"its owner could read the job's files and replace them; use a "
				"directory of your own", what, dir, (unsigned)st.st_uid,
				(unsigned)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		const char *who = !(st.st_mode & S_IWOTH) ? "its group"
				  : st.st_mode & S_IWGRP  ? "its group and others"
							  : "others";

		return spk_fail(-EPERM, "%s %s may be written by %s (mode %04o): another "
				"user could plant links or replace files there; chmod go-w it or "
				"use another", what, dir, who, (unsigned)(st.st_mode & 07777));
	}
	return 0;
}

int spk_dir_check_private_of(const char *path, const char *what)
{
	char copy[PATH_MAX];

	if (strlen(path) >= sizeof(copy))
		return spk_fail(-ENAMETOOLONG, "%s: the path is too long", path);
	strcpy(copy, path);
	return spk_dir_check_private(dirname(copy), what);
}

int spk_file_replace(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	errno = 0;
	if (fchmod(fd, mode) != 0 || write(fd, data, len) != (ssize_t)len) {
		rc = errno ? -errno : -ENOSPC;
		goto out_close;
	}
	if (close(fd) != 0) {
		rc = -errno;
		goto out_unlink;
	}
	if (rename(tmp, path) != 0) {
		rc = -errno;
		goto out_unlink;
	}
	return 0;
out_close:
	close(fd);
out_unlink:
	unlink(tmp);
	return rc;
}

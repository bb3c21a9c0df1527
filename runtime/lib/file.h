/* file.h - files of a job that another user of the node must not touch:
 * the log directory, the hub's address file, the token file. */
#ifndef SPOKE_FILE_H
#define SPOKE_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* 0 if dir is a directory that belongs to this user and that neither its
 * group nor others may write (where another user could plant a link or
 * replace a file); else -ENOTDIR, -EPERM or -errno, spoke_errmsg() naming
 * dir (as `what`, "log directory" say) and saying what is wrong. */
int spk_dir_check_private(const char *dir, const char *what);
/* The same for the directory that holds path. */
int spk_dir_check_private_of(const char *path, const char *what);
/* Replaces path with data, whole or not at all: a new file (mkstemp in
 * path's directory: O_EXCL, so never through a planted link) with mode,
 * written, then renamed over path.  0 or -errno (the temporary file is
 * removed). */
int spk_file_replace(const char *path, const void *data, size_t len, mode_t mode);

#endif

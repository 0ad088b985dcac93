// SPDX-License-Identifier: MIT
#include "safedir.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int safedir_prepare(const char *path, mode_t mode, uid_t uid, gid_t gid, bool take_roots,
		    const char **why)
{
	bool made = mkdir(path, mode) == 0;
	struct stat st;
	int fd, ret = 0;

	*why = "cannot create it";
	if (!made && errno != EEXIST)
		return -errno;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		*why = ret == -ELOOP || ret == -ENOTDIR ? "not a directory (a symlink?)"
							: "cannot open it";
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		*why = "cannot stat it";
		goto out;
	}
	if (made || (take_roots && st.st_uid == 0 && !(st.st_mode & 022))) {
		/* Through the descriptor: the path could have been swapped meanwhile. */
		if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0) {
			ret = -errno;
			*why = "cannot give it to the agent's user";
		}
		goto out;
	}
	if (st.st_uid != uid) {
		ret = -EPERM;
		*why = "owned by another user";
	} else if (st.st_mode & 022) {
		ret = -EPERM;
		*why = "writable by group or other";
	}
out:
	close(fd);
	return ret;
}

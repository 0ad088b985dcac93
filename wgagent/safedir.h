/* SPDX-License-Identifier: MIT */
/*
 * safedir: directories the agent keeps files in (run dir, state dir, the UAPI
 * socket dir) are made, or accepted only when nobody else can change them.
 */
#ifndef P2PWG_SAFEDIR_H
#define P2PWG_SAFEDIR_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Make path (mode, owned by uid:gid) if missing. An existing one must be a
 * real directory (not a symlink), owned by uid and not writable by group or
 * other; with take_roots, one owned by root is given to uid:gid and mode.
 * 0 or -errno; *why says what was wrong for the log.
 */
int safedir_prepare(const char *path, mode_t mode, uid_t uid, gid_t gid, bool take_roots,
		    const char **why);

#endif

/* SPDX-License-Identifier: MIT */
/* caps: the agent's privileges, with libcap-ng. */
#ifndef P2PWG_CAPS_H
#define P2PWG_CAPS_H

#include <stdbool.h>
#include <sys/types.h>

/* True if the process has capability cap (e.g. CAP_NET_ADMIN) in its effective set. */
bool caps_have(int cap);

/* Become uid:gid (no supplementary group but gid) keeping only CAP_NET_ADMIN
 * (effective, permitted, inheritable, bounding set), lock the securebits when
 * CAP_SETPCAP allows (*locked tells), clear ambient, set no_new_privs. 0 or -errno. */
int caps_become(uid_t uid, gid_t gid, bool *locked);

/* Raise CAP_NET_ADMIN as ambient so that a program we exec keeps it. 0 or -errno. */
int caps_raise_ambient(void);

#endif

/* SPDX-License-Identifier: MIT */
/* caps: the agent's privileges, with libcap-ng. */
#ifndef P2PWG_CAPS_H
#define P2PWG_CAPS_H

#include <stdbool.h>

/* True if the process has capability cap (e.g. CAP_NET_ADMIN) in its effective set. */
bool caps_have(int cap);

/* Keep only CAP_NET_ADMIN (effective and permitted), clear inheritable,
 * ambient and, where allowed, the bounding set; set no_new_privs. 0 or -errno. */
int caps_drop_to_net_admin(void);

#endif

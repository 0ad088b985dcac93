/* SPDX-License-Identifier: MIT */
/* nlcb: the netlink control-message callbacks rtnl.c and wgnl.c share. */
#ifndef P2PWG_NLCB_H
#define P2PWG_NLCB_H

#include <libmnl/libmnl.h>

/* NLMSG_ERROR: stop on an ACK (error 0); otherwise set errno and fail. */
int nlcb_error(const struct nlmsghdr *nlh, void *data);

/* NLMSG_DONE: a dump's end carries its error code, which libmnl's default ignores. */
int nlcb_done(const struct nlmsghdr *nlh, void *data);

#endif

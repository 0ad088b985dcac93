/* SPDX-License-Identifier: MIT */
/*
 * wgnl: WireGuard through the kernel's generic netlink family "wireguard"
 * (WG_CMD_GET_DEVICE / WG_CMD_SET_DEVICE), with libmnl.
 */
#ifndef P2PWG_WGNL_H
#define P2PWG_WGNL_H

#include <linux/netlink.h>
#include "wgdev.h"

/* Read the whole device ifname into *out (caller frees with wg_device_free).
 * Multi-part dumps are coalesced per peer. 0 or -errno (-ENODEV, -EPROTONOSUPPORT
 * when the kernel has no "wireguard" family). */
int wgnl_get_device(const char *ifname, struct wg_device **out);

/* Apply the change list dev (flags as in wgdev.h), split across as many
 * WG_CMD_SET_DEVICE messages as needed. 0 or -errno. */
int wgnl_set_device(const struct wg_device *dev);

/* True if the kernel knows the "wireguard" generic netlink family. */
bool wgnl_available(void);

/*
 * Build the WG_CMD_SET_DEVICE messages for dev without sending them: emit() is
 * called once per finished message, in order; each message fits in bufsize
 * bytes. family is the generic netlink family id, seq the first sequence
 * number. Exposed for unit tests. 0, or -errno (-EMSGSIZE if a single peer
 * cannot fit, or emit()'s error).
 */
int wgnl_build_set(const struct wg_device *dev, uint16_t family, uint32_t seq, size_t bufsize,
		   int (*emit)(void *ctx, const struct nlmsghdr *nlh), void *ctx);

/* Merge one WG_CMD_GET_DEVICE reply message into *acc (allocated on first
 * call; a peer repeated across messages gets its allowed IPs appended).
 * Attributes of the wrong type or length are ignored. Exposed for unit tests.
 * 0 or -errno. */
int wgnl_parse_get(const struct nlmsghdr *nlh, struct wg_device **acc);

/* The backend object for wgdev.h's interface. */
extern struct wg_backend wgnl_backend;

#endif

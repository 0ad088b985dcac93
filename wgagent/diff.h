/* SPDX-License-Identifier: MIT */
/*
 * diff: turn "what the interface has" and "what controld wants" into the
 * smallest change list. An unchanged peer is not in the list at all, so its
 * session, handshake time and counters survive.
 */
#ifndef P2PWG_DIFF_H
#define P2PWG_DIFF_H

#include <stdbool.h>

#include "wgdev.h"

/*
 * Compute the change list from cur to want into *change (free with
 * wg_device_free). want's private key and listen port count only when their
 * WGDEV_HAS_* flags are set. A wanted peer without an endpoint keeps whatever
 * endpoint WireGuard has learnt. 0 or -ENOMEM.
 */
int diff_device(const struct wg_device *cur, const struct wg_device *want,
		struct wg_device **change);

/* Apply a change list to dev in memory, as the backends apply it to the
 * interface: dev then describes the interface after the change without
 * reading it again. Counters and handshake times stay as read. 0 or -ENOMEM. */
int diff_apply(struct wg_device *dev, const struct wg_device *change);

/* True if the change list changes nothing. */
bool diff_is_empty(const struct wg_device *change);

#endif

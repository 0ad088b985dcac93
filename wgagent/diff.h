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

/* True if the change list changes nothing. */
bool diff_is_empty(const struct wg_device *change);

#endif

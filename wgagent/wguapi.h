/* SPDX-License-Identifier: MIT */
/*
 * wguapi: WireGuard through the cross-platform userspace API (wireguard-go's
 * UNIX socket, <dir>/<ifname>.sock): "set=1"/"get=1" key=value lines, ended by
 * an empty line, answered with "errno=N".
 */
#ifndef P2PWG_WGUAPI_H
#define P2PWG_WGUAPI_H

#include <stddef.h>

#include "wgdev.h"

#define WGUAPI_DEFAULT_DIR "/var/run/wireguard"
#define WGUAPI_MAX_REPLY (4 * 1024 * 1024)
#define WGUAPI_TIMEOUT_MS 3000 /* connect, send and the whole reply */

/* Directory of the UAPI sockets; WGUAPI_DEFAULT_DIR unless changed. */
void wguapi_set_dir(const char *dir);
const char *wguapi_get_dir(void);

/* Socket path of ifname into buf. 0 or -ENAMETOOLONG. */
int wguapi_sock_path(const char *ifname, char *buf, size_t len);

/* Encode the change list dev as a complete "set=1" request (NUL-terminated,
 * *out malloc'd, wiped and freed by the caller). 0 or -errno. */
int wguapi_encode_set(const struct wg_device *dev, char **out, size_t *len);

/* Parse a "get=1" reply (text, len bytes, ending with "errno=0") into *out.
 * -EBADMSG on a malformed line, the reply's errno (negated) if non-zero. */
int wguapi_parse_get(const char *text, size_t len, const char *ifname, struct wg_device **out);

/* Parse the "errno=N" reply of a set. 0, -N, or -EBADMSG. */
int wguapi_parse_errno(const char *text, size_t len);

/* Read / change the device through its socket. 0 or -errno (-ENODEV if no socket,
 * -ETIMEDOUT if wireguard-go does not answer in WGUAPI_TIMEOUT_MS). */
int wguapi_get_device(const char *ifname, struct wg_device **out);
int wguapi_set_device(const struct wg_device *dev);

extern struct wg_backend wguapi_backend;

#endif

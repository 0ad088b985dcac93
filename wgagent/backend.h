/* SPDX-License-Identifier: MIT */
/*
 * backend: find or create the WireGuard interface and pick the backend that
 * drives it. An existing interface is adopted as it is (its peers keep their
 * sessions); a new one is kernel WireGuard when the kernel has it, else
 * wireguard-go started by the agent, as wg-quick does.
 */
#ifndef P2PWG_BACKEND_H
#define P2PWG_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "wgdev.h"

struct wgspawn;

enum backend_mode { BACKEND_AUTO, BACKEND_KERNEL, BACKEND_USERSPACE };

struct backend_opts {
	const char *ifname;
	uint16_t listen_port;
	unsigned mtu;
	enum backend_mode mode;
	const char *wireguard_go; /* program to run for the userspace backend (absolute) */
	const char *run_dir;      /* pid and log file of wireguard-go */
	struct wgspawn *spawn;    /* the launcher that starts it */
};

/* Parse "auto", "kernel" or "userspace"; -1 if unknown. */
int backend_mode_parse(const char *s);

/* Bring the interface up with private key and listen port; *be is the backend
 * in use, *ifindex the interface's index, *adopted whether it already existed.
 * 0 or -errno (logged with the reason). */
int backend_setup(const struct backend_opts *o, const uint8_t private_key[WG_KEY_LEN],
		  struct wg_backend **be, uint32_t *ifindex, bool *adopted);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * wgspawn: a small launcher process, forked before the agent locks itself
 * into its seccomp filter, that starts wireguard-go on request: from an
 * absolute path, as the agent's user with only CAP_NET_ADMIN (ambient), a
 * clean environment, no inherited descriptors and "/" as working directory.
 * It outlives neither the agent nor its socket; wireguard-go outlives both,
 * so that a restarted agent adopts the interface.
 */
#ifndef P2PWG_WGSPAWN_H
#define P2PWG_WGSPAWN_H

#include <sys/types.h>

struct wgspawn {
	int fd;    /* the agent's end of the request socket, -1 if none */
	pid_t pid; /* the launcher */
};

/* Fork the launcher for prog (absolute path); its log and pid files go to
 * <run_dir>/wireguard-go.<ifname>.{log,pid}. 0 or -errno. */
int wgspawn_start(struct wgspawn *sp, const char *prog, const char *run_dir);

/* Ask the launcher to start wireguard-go for ifname; its pid in *pid.
 * 0 or -errno (-ETIMEDOUT if the launcher does not answer in 5 s). */
int wgspawn_run(struct wgspawn *sp, const char *ifname, pid_t *pid);

/* Close the request socket: the launcher exits. */
void wgspawn_stop(struct wgspawn *sp);

#endif

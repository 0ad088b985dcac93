/* SPDX-License-Identifier: MIT */
/*
 * ifwatch: keep the WireGuard interface alive. The agent's requests go
 * through a wrapper backend that remembers the peers of the last change it
 * applied; a check once a second notices a deleted interface (or a dead
 * wireguard-go, whose TUN link goes with it) and rebuilds it: key and port,
 * address, then those peers, so the mesh comes back without controld.
 */
#ifndef P2PWG_IFWATCH_H
#define P2PWG_IFWATCH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "wgdev.h"

#define IFWATCH_PERIOD_MS 1000

struct ifwatch {
	struct wg_backend wrap;         /* give this one to the agent */
	struct wg_backend *real;        /* the backend in use */
	const struct backend_opts *opts;
	const uint8_t *private_key;     /* the agent's own copy */
	uint32_t ifindex;
	struct wg_device *peers;        /* as read last (at start, or by the agent) */
	struct wg_device *pending;      /* a change made since that read, or NULL */
	struct in_addr addr;            /* the address the agent set, if have_addr */
	uint8_t addr_len;
	bool have_addr;
	uint64_t next_ms;
};

/* Watch the interface set up by backend_setup (real, ifindex); reads its
 * current peers. */
void ifwatch_init(struct ifwatch *w, const struct backend_opts *opts, struct wg_backend *real,
		  uint32_t ifindex, const uint8_t *private_key);

/* Remember the address the agent made the interface's (NULL: none). */
void ifwatch_note_addr(struct ifwatch *w, const struct in_addr *addr, uint8_t len);

/* Check the interface when due; rebuild it if gone. Returns 1 if it was
 * rebuilt (w->ifindex is the new index), 0 if not, -errno if the rebuild failed
 * (tried again next period). *next_ms: ms until the next check. */
int ifwatch_tick(struct ifwatch *w, uint64_t now_ms, int *next_ms);

/* Free what w holds. */
void ifwatch_cleanup(struct ifwatch *w);

#endif

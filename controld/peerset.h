/* SPDX-License-Identifier: MIT */
/*
 * peerset: what controld asks the agent for, decided without any I/O. From the
 * list slots and what each one's node.json said, the interface as the agent
 * last reported it, and what was decided before: refuse the entries the agent
 * would refuse (one at a time, so one entry never blocks the others), stand in
 * for unreadable entries with the peers already on the interface, leave the
 * mesh only after several full polls without this node, and hand the agent a
 * peer's endpoint only when it has news for it (so a roamed endpoint stays).
 */
#ifndef P2PWG_PEERSET_H
#define P2PWG_PEERSET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mesh.h"
#include "nodeinfo.h"

#define PEERSET_WHY 160
#define PEERSET_STALE_S 180 /* WireGuard re-handshakes every 120 s on a live tunnel */

/* One list slot as the caller knows it. */
struct peerset_entry {
	const char *url;      /* NULL: a slot that holds its position only */
	bool known;           /* info is the last good node.json read from url */
	struct nodeinfo info;
	/* A path that answered a check (pathcheck_choose), used instead of the
	 * published endpoint. */
	bool has_path;
	struct sockaddr_in path;
	const char *refused;  /* non-NULL: the caller refuses it for this reason */
};

/* One peer on the interface, as the agent reported it (one /32 allowed IP). */
struct peerset_devpeer {
	uint8_t key[32];
	struct in_addr aip;
	bool has_ep;
	struct sockaddr_in ep;
	int64_t handshake; /* unix seconds, 0 = never */
};

struct peerset {
	struct mesh_params params;
	uint8_t self_key[32];
	const char *self_url; /* NULL or "": this node is found by its key */
	unsigned leave_after; /* full polls without this node before leaving the mesh */
	unsigned absent_polls;
	struct peerset_devpeer *dev; /* owned */
	size_t n_dev;
	/* The published endpoint of each peer of the last applied set. */
	struct peerset_sent {
		uint8_t key[32];
		bool has_ep;
		struct sockaddr_in ep;
	} *sent; /* owned */
	size_t n_sent;
};

enum peerset_verdict {
	PEERSET_APPLY,       /* hand out the state (if it differs or carries an endpoint) */
	PEERSET_HOLD_UNREAD, /* this node not found while entries are still unread */
	PEERSET_HOLD_ABSENT, /* not found in a full read, fewer than leave_after times */
	PEERSET_LEAVE,       /* not found in leave_after full reads in a row: no peers */
};

/* Set up ps (zeroed first); self_url may be NULL. */
void peerset_init(struct peerset *ps, const struct mesh_params *p, const uint8_t self_key[32],
		  const char *self_url, unsigned leave_after);

/* Free what ps owns; accepts NULL. */
void peerset_free(struct peerset *ps);

/* Replace the view of the interface with a copy of dev[0..n). 0 or -ENOMEM. */
int peerset_set_device(struct peerset *ps, const struct peerset_devpeer *dev, size_t n);

/*
 * Decide. full_poll: every slot's fetch of this cycle has finished (only those
 * count towards leaving). Fills out, *verdict, and why[i] for each slot i (""
 * when nothing is wrong with it; else one line saying why it configures
 * nothing). A slot is refused alone when its key is all zero or (with
 * self_url) this node's at another URL, or its public_ip is one the agent or
 * the internet would not take (overlay, 0/8, loopback, link-local, multicast,
 * reserved, broadcast). 0 or -ENOMEM.
 */
int peerset_decide(struct peerset *ps, const struct peerset_entry *e, size_t n, bool full_poll,
		   time_t now, struct mesh_state *out, enum peerset_verdict *verdict,
		   char (*why)[PEERSET_WHY]);

/* True if s must be handed to the agent although it equals what was applied:
 * some peer carries an endpoint the interface lacks. */
bool peerset_has_news(const struct mesh_state *s);

/* The agent applied s: remember its endpoints, and that the interface now has
 * what was sent. 0 or -ENOMEM. */
int peerset_applied(struct peerset *ps, const struct mesh_state *s);

/* True if ip is a usable public endpoint address (see peerset_decide). */
bool peerset_public_ok(const struct mesh_params *p, struct in_addr ip);

#endif

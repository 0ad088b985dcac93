/* SPDX-License-Identifier: MIT */
/*
 * pathcheck: which candidate path to each peer answers, decided without I/O.
 * A peer's candidates are its local_endpoints (kind lan), in the order it
 * published them, then its public endpoint (kind direct). Each is checked
 * through wgagent's PathCheck (an authenticated STUN exchange between the two
 * WireGuard ports, see wgagent/connchk.h), never more than `rate` checks a
 * second for all peers together; an answered candidate is checked again every
 * PATHCHECK_RECHECK_MS, one that does not answer with a growing pause,
 * longer when another candidate of the peer answers; any at once when the
 * caller has a reason (pathcheck_suspect: a failed /test).
 * pathcheck_choose() says which path WireGuard should use: lan before direct,
 * and only a candidate that answered.
 */
#ifndef P2PWG_PATHCHECK_H
#define P2PWG_PATHCHECK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keymap.h"
#include "nodeinfo.h"

#define PATHCHECK_MAX_CANDS (NODEINFO_MAX_LOCAL + 1)
#define PATHCHECK_RATE 20 /* checks a second, all peers together */
#define PATHCHECK_TIMEOUT_MS 1000
/* An answered candidate is checked again after this, or when suspected. In
 * a steady mesh WireGuard's handshakes and /test already show the path
 * works; at 15 s the checks of 19 peers were half of an idle agent's work. */
#define PATHCHECK_RECHECK_MS 60000
#define PATHCHECK_RETRY_MIN_MS 1000  /* after the first unanswered checks */
#define PATHCHECK_RETRY_MAX_MS 20000 /* the pause doubles up to this */
/* ...or up to this while another candidate of the peer answers: a LAN
 * address that did not answer for minutes (another home's LAN) is only
 * worth a look now and then once a path works. */
#define PATHCHECK_RETRY_SPARE_MS 300000
#define PATHCHECK_LOST_AFTER 3	     /* unanswered checks in a row undo an answer */

enum pathcheck_kind {
	PATHCHECK_NONE,	  /* nothing answered: the caller keeps today's way (or relays) */
	PATHCHECK_DIRECT, /* the peer's public endpoint answered */
	PATHCHECK_LAN,	  /* one of the peer's local endpoints answered */
};

struct pathcheck_cand {
	struct sockaddr_in ep;
	enum pathcheck_kind kind;
	bool inflight, answered;
	unsigned fails; /* unanswered in a row */
	uint64_t due_ms, answered_ms;
	uint32_t rtt_ms;
};

struct pathcheck_peer {
	uint8_t key[32];
	size_t n;
	struct pathcheck_cand c[PATHCHECK_MAX_CANDS];
};

/* One peer as the caller knows it: its key and its last good node.json. */
struct pathcheck_in {
	const uint8_t *key;
	const struct nodeinfo *info;
};

struct pathcheck {
	struct pathcheck_peer *peers; /* owned */
	size_t n, rr;
	struct keymap by_key; /* peers by key; valid while by_key_ok */
	bool by_key_ok;
	unsigned rate;
	double tokens;
	uint64_t tokens_ms;
	struct sockaddr_in self[NODEINFO_MAX_LOCAL + 1]; /* this node's own: never checked */
	size_t n_self;
	uint64_t m_sent, m_answered, m_unanswered;
};

/* Set up pc (zeroed first) with a budget of rate checks a second (0: PATHCHECK_RATE). */
void pathcheck_init(struct pathcheck *pc, unsigned rate);

/* Free what pc owns; accepts NULL. */
void pathcheck_free(struct pathcheck *pc);

/* This node's own endpoints (local and public), which are never a peer's path:
 * another home's LAN often uses the same private addresses. */
void pathcheck_set_self(struct pathcheck *pc, const struct sockaddr_in *eps, size_t n);

/* Replace the peers with in[0..n) (a key listed twice counts once). What was
 * learnt about a candidate that stays is kept; new ones are due now.
 * 0 or -ENOMEM (the old peers stay). */
int pathcheck_update(struct pathcheck *pc, const struct pathcheck_in *in, size_t n,
		     uint64_t now_ms);

/* The next check to send now, if one is due and the budget allows: its peer
 * and candidate, marked in flight; 0. Else -EAGAIN and *wait_ms says when to
 * ask again (UINT64_MAX: nothing to check). */
int pathcheck_next(struct pathcheck *pc, uint64_t now_ms, uint8_t key[32], struct sockaddr_in *ep,
		   uint64_t *wait_ms);

/* The check of (key, ep) ended: answered (after rtt_ms) or not. Returns true
 * if pathcheck_choose() for that peer changed. */
bool pathcheck_result(struct pathcheck *pc, const uint8_t key[32], const struct sockaddr_in *ep,
		      bool answered, uint32_t rtt_ms, uint64_t now_ms);

/* Something says key's path may have changed (a failed /test, a relay
 * stream the peer closed): its candidates are checked now, whether they
 * answered before or not. True if one is due (not every one in flight). */
bool pathcheck_suspect(struct pathcheck *pc, const uint8_t key[32], uint64_t now_ms);

/* The path WireGuard should use to key: the first answered lan candidate,
 * else the answered public endpoint (in *ep), else PATHCHECK_NONE (*ep
 * untouched): the caller keeps the published endpoint, and may relay. */
enum pathcheck_kind pathcheck_choose(const struct pathcheck *pc, const uint8_t key[32],
				     struct sockaddr_in *ep);

/* "lan", "direct" or "none". */
const char *pathcheck_kind_name(enum pathcheck_kind k);

#endif

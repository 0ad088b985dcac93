/* SPDX-License-Identifier: MIT */
/*
 * connchk: ICE-style connectivity checks (RFC 8445 spirit) between the
 * WireGuard ports of two peers, sent and caught through the raw STUN socket,
 * so a path can be tried while WireGuard keeps its endpoint.
 *
 * Both messages are built here and only ever compared byte for byte with a
 * message built here: the agent parses no STUN attribute. A check is a 72-byte
 * STUN message: the 20-byte header (Binding Request 0x0001 or Binding Success
 * 0x0101, the magic cookie, a transaction id chosen by controld) and one
 * comprehension-optional attribute CONNCHK_ATTR holding the sender's public
 * key and a 16-byte tag, HMAC-SHA256 under a key derived from the X25519
 * shared secret of the two peers, over the direction, both public keys and
 * the transaction id. Only the two peers can make a tag; a request is answered
 * only for a peer of the last SetPeers, at most CONNCHK_ANSWER_RATE a second,
 * and an answer counts only from the address checked, for a transaction in
 * flight.
 */
#ifndef P2PWG_CONNCHK_H
#define P2PWG_CONNCHK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.pb-c.h"

#define CONNCHK_MSG_LEN 72
#define CONNCHK_ATTR 0xC0DEU
#define CONNCHK_MAX_PENDING 32
#define CONNCHK_MAX_TIMEOUT_MS 5000
#define CONNCHK_ANSWER_RATE 200 /* answers per second, all peers together */

struct connchk_peer {
	uint8_t key[32];
	uint8_t mac_key[32]; /* derived from the shared secret at first use; wiped on free */
	uint8_t keyed;       /* 0: not derived yet, 1: mac_key ready, 2: no usable secret */
};

struct connchk_pending {
	bool used;
	int client;
	uint64_t id;
	uint8_t txid[12];
	struct sockaddr_in to;
	uint8_t peer[32];
	uint64_t sent_ms, deadline_ms;
};

/* What the agent gives the checks: its key pair and a way to send and reply. */
struct connchk_ops {
	int (*send)(void *ctx, const struct sockaddr_in *to, const uint8_t *msg, size_t len);
	int (*reply)(void *ctx, int client, const P2pwg__Response *resp);
	void *ctx;
};

struct connchk {
	struct connchk_ops ops;
	const uint8_t *priv, *pub;  /* the agent's, 32 bytes each; not owned */
	struct connchk_peer *peers; /* owned */
	size_t n_peers;
	struct connchk_pending pend[CONNCHK_MAX_PENDING];
	uint64_t window_ms;
	unsigned answered_in_window;
	uint64_t m_answered, m_unanswered;
};

/* Set up c (zeroed first) with the agent's key pair, which must outlive it. */
void connchk_init(struct connchk *c, const struct connchk_ops *ops, const uint8_t *priv,
		  const uint8_t *pub);

/* Wipe and free the peers' keys; accepts NULL. */
void connchk_free(struct connchk *c);

/* The peers whose checks are answered and may be sent: keys[0..n). Keys
 * already known keep their derived key; a new key's is derived at its first
 * check, and one without a usable shared secret (a low-order point) is then
 * refused. 0 or -ENOMEM (the old set stays). */
int connchk_set_peers(struct connchk *c, const uint8_t (*keys)[32], size_t n);

/* Build the message from this node to peer (request, or the answer to
 * one). -ENOENT if peer is not in the set or has no usable shared secret. */
int connchk_build(struct connchk *c, const uint8_t peer[32], bool answer, const uint8_t txid[12],
		  uint8_t out[CONNCHK_MSG_LEN]);

/* Handle a PathCheck from client (request id): on success the check is sent
 * and pending (answered later through ops.reply), 0 is returned. Else a
 * P2pwg__Status is returned and why says what was wrong. */
int connchk_request(struct connchk *c, int client, uint64_t id, const P2pwg__PathCheck *pc,
		    uint64_t now_ms, char *why, size_t whylen);

/* A STUN packet arrived at the WireGuard port: answer it if it is a peer's
 * check, or complete a pending check if it is the expected answer. True if it
 * was a check message (answered or not); false leaves it to STUN. */
bool connchk_input(struct connchk *c, const uint8_t *msg, size_t len,
		   const struct sockaddr_in *from, uint64_t now_ms);

/* Time out pending checks. Returns ms until the next deadline, or -1. */
int connchk_tick(struct connchk *c, uint64_t now_ms);

/* Forget client's pending checks. */
void connchk_client_gone(struct connchk *c, int client);

#endif

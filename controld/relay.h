/* SPDX-License-Identifier: MIT */
/*
 * relay: WireGuard's packets through the peers' HTTPS URLs, for pairs that no
 * direct path joins. A relayed peer's WireGuard endpoint is a UDP socket of
 * controld on 127.0.0.1 (one per peer); what arrives there from the local
 * WireGuard port goes, framed (relayproto.h), over one long-lived stream:
 * an HTTP/1.1 upgrade of GET /relay at the URL host that serves the peer's
 * node.json, through the gateway. What arrives on the stream goes only to the
 * local WireGuard port. Both ends prove with a MAC from wgagent that they hold
 * a key of the current list; anyone else is cut before a byte is delivered.
 * Streams are bounded in count, frame size, rate and buffered bytes, kept
 * alive inside the gateway's idle cut, and re-dialled with backoff when cut.
 */
#ifndef P2PWG_RELAY_H
#define P2PWG_RELAY_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "loop.h"
#include "mesh.h"
#include "peerset.h"

/* Unauthenticated streams at once, and how long one may take to prove itself. */
#define RELAY_MAX_PENDING 16
#define RELAY_HANDSHAKE_MS 10000
/* Bytes queued towards one stream beyond which WireGuard's packets are dropped. */
#define RELAY_MAX_BUFFERED (256 * 1024)

struct node;
struct relay;

/* Start the relay of node n (its decisions tick once a second). 0 or -errno. */
int relay_new(struct node *n, struct relay **out);

/* Close every stream and socket and free r; NULL is fine. */
void relay_free(struct relay *r);

/* httpd: a request for RELAYPROTO_PATH on the public listener. Answers it
 * (101 and the stream, or an error status). Always 0. */
int relay_accept(struct relay *r, h2o_req_t *req);

/* After peerset_decide: every relayed peer of s gets its loopback endpoint
 * (sent to the agent unless the interface already has it, per ps). */
void relay_steer(struct relay *r, struct mesh_state *s, const struct peerset *ps);

/* The loopback endpoint WireGuard uses for key while it is relayed (and a
 * stream has come up once): true and *out, else false. */
bool relay_endpoint(struct relay *r, const uint8_t key[32], struct sockaddr_in *out);

/* Path checks found a direct path for key: stop relaying it (its stream and
 * socket close; the published endpoint goes back to the agent). */
void relay_release(struct relay *r, const uint8_t key[32]);

/* /status: add "relay" (state and counters) to peer object p when key is
 * relayed; true when WireGuard's endpoint (wg_endpoint, "ip:port") is the relay. */
bool relay_status_peer(struct relay *r, const uint8_t key[32], const char *wg_endpoint, json_t *p);

/* /metrics: the p2pwg_relay_* lines. */
void relay_metrics(struct relay *r, FILE *f);

#endif

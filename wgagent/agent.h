/* SPDX-License-Identifier: MIT */
/*
 * agent: the request table of wgagent. Every request from controld is
 * unpacked, checked field by field against the agent's own limits (whatever
 * controld believes), dispatched, and answered exactly once.
 *
 * The agent core does no I/O itself: the WireGuard backend, the address calls,
 * the STUN send and the reply path come in through struct agent_ops, so the
 * unit tests and the fuzzer drive the real code with recorders.
 */
#ifndef P2PWG_AGENT_H
#define P2PWG_AGENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connchk.h"
#include "wgdev.h"

#define AGENT_MAX_PEERS 245
#define AGENT_MAX_ALLOWEDIPS 16 /* per peer */
#define AGENT_MAX_KEEPALIVE 3600
#define AGENT_STUN_MAX_PENDING 8
#define AGENT_STUN_MAX_LEN 548 /* fits any path's minimum MTU */
#define AGENT_STUN_MAX_TIMEOUT_MS 5000
/* A SetPeers trusts the agent's own view of the interface for this long after
 * a read confirmed it; then it reads the interface again (and puts back what
 * someone else changed). controld's GetDevice, every /test interval, confirms
 * it sooner. */
#define AGENT_MODEL_MAX_AGE_MS 30000

/*
 * The largest request the agent unpacks. protobuf-c allocates a struct per
 * repeated element, so an unchecked frame of tiny elements multiplies into the
 * heap (a 256 KiB frame of empty peers unpacked to ~15 MB). The largest valid
 * request is a SetPeers with every limit at its maximum, encoded as protobuf-c
 * does (tag 1 byte, length varints as short as they can be):
 *   Prefix   = addr 1+1+4 + prefix_len 1+1                          =     8
 *   Endpoint = addr 1+1+16 (IPv6) + port 1+3                        =    22
 *   Peer     = key 1+1+32 + endpoint 1+1+22 + 16 allowed_ips
 *              x (1+1+8) + keepalive 1+2                            =   221
 *              (+ 3 x 11 if a client fills the read-only counters)  =   254
 *   SetPeers = address 1+1+8 + listen_port 1+3 + 245 x (1+2+254)    = 62979
 *   Request  = id 1+10 + set_peers 1+3 + SetPeers                   = 62994
 * (54909 without the read-only counters, which controld never sends).
 * 64 KiB leaves room for all of it.
 */
#define AGENT_REQUEST_MAX (64 * 1024)
/* Heap protobuf-c may take to unpack one request. Within AGENT_REQUEST_MAX, a
 * frame of empty peers still unpacks to ~3.9 MB; the largest valid SetPeers
 * above unpacks to ~480 KB (mallinfo2, glibc, protobuf-c 1.4). */
#define AGENT_UNPACK_HEAP_MAX (1024 * 1024)

struct agent_config {
	char ifname[IFNAMSIZ];
	struct in_addr overlay_net; /* e.g. 10.88.0.0 */
	uint8_t overlay_len;        /* e.g. 24 */
	uint16_t listen_port;       /* WireGuard port, fixed for the agent's life */
};

struct agent_ops {
	struct wg_backend *wg;
	/* Current IPv4 address of the interface; -ENOENT if none. */
	int (*addr_get)(void *ctx, struct in_addr *addr, uint8_t *len);
	/* Make addr/len the only IPv4 address; addr NULL removes every address. */
	int (*addr_set)(void *ctx, const struct in_addr *addr, uint8_t len);
	/* Send a STUN request from the WireGuard port. */
	int (*stun_send)(void *ctx, const struct sockaddr_in *to, const uint8_t *msg, size_t len);
	/* Deliver one packed Response to client. */
	int (*reply)(void *ctx, int client, const uint8_t *buf, size_t len);
	void *ctx;
};

struct agent_stun_pending {
	bool used;
	int client;
	uint64_t id;
	uint8_t txid[12];
	struct sockaddr_in server;
	uint64_t deadline_ms;
};

struct agent {
	struct agent_config cfg;
	struct agent_ops ops;
	uint8_t private_key[WG_KEY_LEN];
	uint8_t public_key[WG_KEY_LEN];
	struct agent_stun_pending stun[AGENT_STUN_MAX_PENDING];
	struct connchk chk; /* path checks; see connchk.h */
	/* The interface as the agent knows it: its last read with every change
	 * applied since. NULL: unknown, the next SetPeers reads it. */
	struct wg_device *model;
	uint64_t model_read_ms; /* when a read last confirmed the model */
	bool model_wanted;      /* the model holds a SetPeers applied: a read that
				   differs from it is put back */
	bool model_stale;       /* a read failed: the next SetPeers or check reads */
};

/* Set up a with its configuration, key pair and operations. */
void agent_init(struct agent *a, const struct agent_config *cfg, const struct agent_ops *ops,
		const uint8_t private_key[WG_KEY_LEN], const uint8_t public_key[WG_KEY_LEN]);

/* Wipe the private key. */
void agent_cleanup(struct agent *a);

/*
 * Handle one packet from client. len is the number of bytes in buf; full_len
 * the packet's real size (greater than len when it was truncated). Packets over
 * AGENT_REQUEST_MAX are refused without being unpacked. Exactly one
 * reply is sent through ops.reply, now or (StunExchange) later. now_ms is a
 * monotonic clock in milliseconds.
 */
void agent_handle(struct agent *a, int client, const uint8_t *buf, size_t len, size_t full_len,
		  uint64_t now_ms);

/* A packet arrived on the STUN socket for the WireGuard port: if it answers a
 * pending exchange (same transaction id and server), reply to its client. */
void agent_stun_input(struct agent *a, const uint8_t *msg, size_t len,
		      const struct sockaddr_in *from);

/* Answer expired exchanges with TIMEOUT. Returns ms until the next deadline,
 * or -1 if none is pending. */
int agent_tick(struct agent *a, uint64_t now_ms);

/* The interface may have changed behind the agent (rebuilt, recreated): drop
 * the agent's view of it, so the next SetPeers reads it in full. */
void agent_forget_device(struct agent *a);

/* Read the interface when the agent's view of it is AGENT_MODEL_MAX_AGE_MS
 * old (or a read failed), and put back the last SetPeers if someone changed
 * it meanwhile.
 * Returns ms until the next check is due, or -1 if there is nothing to check. */
int agent_check_device(struct agent *a, uint64_t now_ms);

/* A client went away: forget its pending exchanges. */
void agent_client_gone(struct agent *a, int client);

/* Human-readable validation of a STUN Binding Request's header (type,
 * length, magic cookie); NULL if acceptable, else the reason. */
const char *agent_check_stun_request(const uint8_t *msg, size_t len);

#endif

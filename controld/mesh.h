/* SPDX-License-Identifier: MIT */
/*
 * mesh: the decisions. From the peer list and what each URL's node.json said,
 * find this node by its public key, give every position i the address
 * base + offset + i (10.88.0.10 + i by default, as the prototype), and work out
 * the peer set to hand to the agent.
 */
#ifndef P2PWG_MESH_H
#define P2PWG_MESH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nodeinfo.h"

#define MESH_MAX_PEERS 245
#define MESH_KEEPALIVE 25

struct mesh_params {
	struct in_addr overlay_net; /* 10.88.0.0 */
	uint8_t overlay_len;        /* 24 */
	unsigned base_offset;       /* 10 */
};

/* One list entry: its URL and the last good node.json fetched from it, if any. */
struct mesh_input {
	const char *url;
	bool known;
	bool dropped; /* refused by the caller: keeps its position, configures nothing */
	struct nodeinfo info;
};

struct mesh_peer {
	uint8_t key[32];
	size_t index;          /* list position */
	struct in_addr overlay; /* base + offset + index */
	bool has_endpoint;
	struct sockaddr_in endpoint; /* from the peer's public_ip/public_port */
	uint16_t keepalive;         /* MESH_KEEPALIVE with an endpoint, else 0 */
	bool send_endpoint;         /* hand the endpoint to the agent (see peerset.h) */
};

struct mesh_state {
	bool found_self;
	size_t self_index;
	struct in_addr self_addr;
	size_t n_peers;
	struct mesh_peer peers[MESH_MAX_PEERS];
	/* Entries left out, for logging: count of unknown, duplicate key, beyond the
	 * prefix, dropped by the caller. */
	size_t n_unknown, n_duplicate, n_out_of_range, n_dropped;
};

/* Address of position index, or -ERANGE if it falls outside the overlay prefix
 * (or on its network or broadcast address). Host bits of overlay_net are ignored. */
int mesh_address(const struct mesh_params *p, size_t index, struct in_addr *out);

/*
 * Compute the desired state. This node is the first entry whose known key is
 * self_key; later entries with an already-seen key are skipped; unknown entries
 * (never fetched) and dropped ones are skipped but keep their position; entries whose position
 * falls outside the prefix are skipped. When this node is not in the list, or
 * its own position is out of range, found_self is false and there are no peers.
 * Peers appear in list order. Positions from MESH_MAX_PEERS on count as out of
 * range whatever the prefix. An entry is counted once: dropped, else unknown,
 * else out of range, else duplicate. send_endpoint is left false.
 */
void mesh_compute(const struct mesh_params *p, const uint8_t self_key[32],
		  const struct mesh_input *in, size_t n, struct mesh_state *out);

/* True if two states would configure the agent identically: same own address
 * (or both not found) and the same peers in order with the same key, overlay
 * address, endpoint and keepalive. The counts, list positions and send_endpoint
 * are ignored. */
bool mesh_state_equal(const struct mesh_state *a, const struct mesh_state *b);

#endif

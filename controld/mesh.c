// SPDX-License-Identifier: MIT
#include "mesh.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "netaddr.h"

int mesh_address(const struct mesh_params *p, size_t index, struct in_addr *out)
{
	uint64_t size, rel;
	uint32_t net;

	if (p->overlay_len > 32)
		return -ERANGE;
	size = 1ULL << (32 - p->overlay_len);
	/* Host part 1 .. size-2: neither the network nor the broadcast address. */
	if (index >= size)
		return -ERANGE;
	rel = (uint64_t)p->base_offset + index;
	if (rel < 1 || rel + 1 >= size)
		return -ERANGE;
	net = ntohl(p->overlay_net.s_addr & netaddr_mask4(p->overlay_len));
	out->s_addr = htonl(net + (uint32_t)rel);
	return 0;
}

void mesh_compute(const struct mesh_params *p, const uint8_t self_key[32],
		  const struct mesh_input *in, size_t n, struct mesh_state *out)
{
	static const size_t none = (size_t)-1;
	size_t self_at = none; /* this node's entry, once placed */
	struct in_addr addr;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		const struct nodeinfo *ni = &in[i].info;
		struct mesh_peer *peer;
		bool dup = false;

		if (in[i].dropped) {
			out->n_dropped++;
			continue;
		}
		if (!in[i].known) {
			out->n_unknown++;
			continue;
		}
		if (i >= MESH_MAX_PEERS || mesh_address(p, i, &addr)) {
			out->n_out_of_range++;
			continue;
		}
		if (self_at != none && !memcmp(in[self_at].info.wg_pubkey, ni->wg_pubkey, 32))
			dup = true;
		for (size_t k = 0; !dup && k < out->n_peers; k++)
			dup = !memcmp(out->peers[k].key, ni->wg_pubkey, 32);
		if (dup) {
			out->n_duplicate++;
			continue;
		}
		if (!memcmp(ni->wg_pubkey, self_key, 32)) {
			self_at = i;
			out->found_self = true;
			out->self_index = i;
			out->self_addr = addr;
			continue;
		}
		peer = &out->peers[out->n_peers++];
		memcpy(peer->key, ni->wg_pubkey, 32);
		peer->index = i;
		peer->overlay = addr;
		if (ni->has_public) {
			peer->has_endpoint = true;
			peer->endpoint.sin_family = AF_INET;
			peer->endpoint.sin_addr = ni->public_ip;
			peer->endpoint.sin_port = htons(ni->public_port);
			peer->keepalive = MESH_KEEPALIVE;
		}
	}
	if (!out->found_self) {
		memset(out->peers, 0, out->n_peers * sizeof(out->peers[0]));
		out->n_peers = 0;
	}
}

bool mesh_state_equal(const struct mesh_state *a, const struct mesh_state *b)
{
	if (a->found_self != b->found_self || a->n_peers != b->n_peers)
		return false;
	if (a->found_self && a->self_addr.s_addr != b->self_addr.s_addr)
		return false;
	for (size_t i = 0; i < a->n_peers; i++) {
		const struct mesh_peer *x = &a->peers[i], *y = &b->peers[i];

		if (memcmp(x->key, y->key, 32) || x->overlay.s_addr != y->overlay.s_addr ||
		    x->has_endpoint != y->has_endpoint || x->keepalive != y->keepalive)
			return false;
		if (x->has_endpoint && (x->endpoint.sin_addr.s_addr != y->endpoint.sin_addr.s_addr ||
					x->endpoint.sin_port != y->endpoint.sin_port))
			return false;
	}
	return true;
}

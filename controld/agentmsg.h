/* SPDX-License-Identifier: MIT */
/*
 * agentmsg: the agent protocol messages controld builds and reads: a SetPeers
 * request from a decided mesh_state, and the interface's peers from a Device.
 */
#ifndef P2PWG_AGENTMSG_H
#define P2PWG_AGENTMSG_H

#include <stddef.h>
#include <stdint.h>

#include "agent.pb-c.h"
#include "mesh.h"
#include "peerset.h"

/* Storage for one SetPeers request; it points into the state it was built from. */
struct agentmsg_setpeers {
	P2pwg__Request req;
	P2pwg__SetPeers sp;
	P2pwg__Prefix addr;
	P2pwg__Peer peers[MESH_MAX_PEERS];
	P2pwg__Peer *ptrs[MESH_MAX_PEERS];
	P2pwg__Endpoint eps[MESH_MAX_PEERS];
	P2pwg__Prefix aips[MESH_MAX_PEERS];
	P2pwg__Prefix *aip_ptrs[MESH_MAX_PEERS];
};

/* Build in m the SetPeers for s: its own address (prefix overlay_len) when
 * found, one /32 per peer, an endpoint only where send_endpoint says so.
 * Returns &m->req, valid while m and s are. */
P2pwg__Request *agentmsg_setpeers(struct agentmsg_setpeers *m, const struct mesh_state *s,
				  uint16_t listen_port, uint8_t overlay_len);

/* The peers of d that carry one /32 IPv4 allowed IP (as controld sets them),
 * malloc'd into *out (free()), count in *n. 0 or -ENOMEM. */
int agentmsg_device_peers(const P2pwg__Device *d, struct peerset_devpeer **out, size_t *n);

#endif

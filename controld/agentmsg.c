// SPDX-License-Identifier: MIT
#include "agentmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

P2pwg__Request *agentmsg_setpeers(struct agentmsg_setpeers *m, const struct mesh_state *s,
				  uint16_t listen_port, uint8_t overlay_len)
{
	p2pwg__request__init(&m->req);
	p2pwg__set_peers__init(&m->sp);
	p2pwg__prefix__init(&m->addr);
	if (s->found_self) {
		m->addr.addr.data = (uint8_t *)&s->self_addr;
		m->addr.addr.len = 4;
		m->addr.prefix_len = overlay_len;
		m->sp.address = &m->addr;
	}
	m->sp.listen_port = listen_port;
	for (size_t i = 0; i < s->n_peers; i++) {
		const struct mesh_peer *mp = &s->peers[i];
		P2pwg__Peer *p = &m->peers[i];

		p2pwg__peer__init(p);
		p->public_key.data = (uint8_t *)mp->key;
		p->public_key.len = 32;
		p->keepalive = mp->keepalive;
		/* An absent endpoint leaves the interface's as it is (roaming). */
		if (mp->has_endpoint && mp->send_endpoint) {
			p2pwg__endpoint__init(&m->eps[i]);
			m->eps[i].addr.data = (uint8_t *)&mp->endpoint.sin_addr;
			m->eps[i].addr.len = 4;
			m->eps[i].port = ntohs(mp->endpoint.sin_port);
			p->endpoint = &m->eps[i];
		}
		p2pwg__prefix__init(&m->aips[i]);
		m->aips[i].addr.data = (uint8_t *)&mp->overlay;
		m->aips[i].addr.len = 4;
		m->aips[i].prefix_len = 32;
		m->aip_ptrs[i] = &m->aips[i];
		p->allowed_ips = &m->aip_ptrs[i];
		p->n_allowed_ips = 1;
		m->ptrs[i] = p;
	}
	m->sp.peers = m->ptrs;
	m->sp.n_peers = s->n_peers;
	m->req.msg_case = P2PWG__REQUEST__MSG_SET_PEERS;
	m->req.set_peers = &m->sp;
	return &m->req;
}

int agentmsg_device_peers(const P2pwg__Device *d, struct peerset_devpeer **out, size_t *n)
{
	struct peerset_devpeer *dp = calloc(d->n_peers + 1, sizeof(*dp));
	size_t k = 0;

	if (!dp)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_peers; i++) {
		const P2pwg__Peer *p = d->peers[i];

		if (p->public_key.len != 32 || p->n_allowed_ips != 1 ||
		    p->allowed_ips[0]->addr.len != 4 || p->allowed_ips[0]->prefix_len != 32)
			continue;
		memcpy(dp[k].key, p->public_key.data, 32);
		memcpy(&dp[k].aip, p->allowed_ips[0]->addr.data, 4);
		if (p->endpoint && p->endpoint->addr.len == 4) {
			dp[k].has_ep = true;
			dp[k].ep.sin_family = AF_INET;
			memcpy(&dp[k].ep.sin_addr, p->endpoint->addr.data, 4);
			dp[k].ep.sin_port = htons((uint16_t)p->endpoint->port);
		}
		dp[k].handshake = p->last_handshake_sec;
		k++;
	}
	*out = dp;
	*n = k;
	return 0;
}

// SPDX-License-Identifier: MIT
#include "peerset.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "netaddr.h"

void peerset_init(struct peerset *ps, const struct mesh_params *p, const uint8_t self_key[32],
		  const char *self_url, unsigned leave_after)
{
	memset(ps, 0, sizeof(*ps));
	ps->params = *p;
	memcpy(ps->self_key, self_key, 32);
	ps->self_url = self_url && *self_url ? self_url : NULL;
	ps->leave_after = leave_after ? leave_after : 1;
}

void peerset_free(struct peerset *ps)
{
	if (!ps)
		return;
	free(ps->dev);
	free(ps->sent);
	ps->dev = NULL;
	ps->sent = NULL;
	ps->n_dev = ps->n_sent = 0;
}

int peerset_set_device(struct peerset *ps, const struct peerset_devpeer *dev, size_t n)
{
	struct peerset_devpeer *d = calloc(n + 1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	memcpy(d, dev, n * sizeof(*d));
	free(ps->dev);
	ps->dev = d;
	ps->n_dev = n;
	return 0;
}

bool peerset_public_ok(const struct mesh_params *p, struct in_addr ip)
{
	uint32_t a = ntohl(ip.s_addr);

	/* 0/8 "this network", 127/8 loopback, 169.254/16 link-local, 224/4
	 * multicast, 240/4 reserved and the limited broadcast: no peer is there. */
	if ((a >> 24) == 0 || (a >> 24) == 127 || (a >> 16) == 0xa9fe || (a >> 28) >= 0xe)
		return false;
	/* Inside the overlay the tunnel's own packets would route into itself:
	 * the agent refuses the whole set for it. */
	return !netaddr_prefix4_inside(ip, 32, p->overlay_net, p->overlay_len);
}

static const struct peerset_devpeer *dev_by_key(const struct peerset *ps, const uint8_t *key)
{
	for (size_t i = 0; i < ps->n_dev; i++)
		if (!memcmp(ps->dev[i].key, key, 32))
			return &ps->dev[i];
	return NULL;
}

static const struct peerset_sent *sent_by_key(const struct peerset *ps, const uint8_t *key)
{
	for (size_t i = 0; i < ps->n_sent; i++)
		if (!memcmp(ps->sent[i].key, key, 32))
			return &ps->sent[i];
	return NULL;
}

static bool ep_equal(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static bool key_read_elsewhere(const struct peerset_entry *e, size_t n, const uint8_t *key)
{
	for (size_t j = 0; j < n; j++)
		if (e[j].url && e[j].known && !memcmp(e[j].info.wg_pubkey, key, 32))
			return true;
	return false;
}

/* A slot never read (since controld started) whose position's address the
 * interface already serves keeps that peer rather than drop a working
 * tunnel; but never with a key some other slot was read with: that peer's
 * own slot decides where it is. */
static bool stand_in(const struct peerset *ps, const struct peerset_entry *e, size_t n, size_t i,
		     struct nodeinfo *info)
{
	struct in_addr a;

	if (mesh_address(&ps->params, i, &a))
		return false;
	for (size_t k = 0; k < ps->n_dev; k++) {
		const struct peerset_devpeer *d = &ps->dev[k];

		if (d->aip.s_addr != a.s_addr || key_read_elsewhere(e, n, d->key) ||
		    !memcmp(d->key, ps->self_key, 32))
			continue;
		memset(info, 0, sizeof(*info));
		memcpy(info->wg_pubkey, d->key, 32);
		info->self_index = -1;
		info->has_public = d->has_ep;
		info->public_ip = d->ep.sin_addr;
		info->public_port = ntohs(d->ep.sin_port);
		return true;
	}
	return false;
}

/* Why the agent would refuse this entry, or "" if it would not. */
static void vet(const struct peerset *ps, const struct peerset_entry *e,
		const struct nodeinfo *info, char *why)
{
	static const uint8_t zero[32];
	char k[B64_KEY_LEN + 1];

	why[0] = '\0';
	if (!memcmp(info->wg_pubkey, zero, 32)) {
		snprintf(why, PEERSET_WHY, "wg_pubkey is all zero");
	} else if (ps->self_url && !memcmp(info->wg_pubkey, ps->self_key, 32) &&
		   strcmp(e->url, ps->self_url)) {
		snprintf(why, PEERSET_WHY, "claims this node's key, which is at P2PWG_SELF_URL");
	} else if (ps->self_url && !strcmp(e->url, ps->self_url) &&
		   memcmp(info->wg_pubkey, ps->self_key, 32)) {
		b64_key_encode(info->wg_pubkey, k);
		k[8] = '\0';
		snprintf(why, PEERSET_WHY, "is P2PWG_SELF_URL but answers key %s, not this node's",
			 k);
	} else if (info->has_public && !peerset_public_ok(&ps->params, info->public_ip)) {
		snprintf(why, PEERSET_WHY, "public_ip %s is not a reachable unicast address",
			 inet_ntoa(info->public_ip));
	}
}

static bool is_loopback(const struct sockaddr_in *a)
{
	return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
}

/* Whether the agent should get p's published endpoint: the interface lacks
 * one, or it is another and either the published one moved since the last
 * set applied or the tunnel is silent. An endpoint WireGuard learnt from a
 * live peer's packets (roaming) is otherwise left alone, also by a controld
 * that just started and has no memory of what it sent. */
static bool endpoint_news(const struct peerset *ps, const struct mesh_peer *p, time_t now)
{
	const struct peerset_devpeer *d = dev_by_key(ps, p->key);
	const struct peerset_sent *s;

	if (!p->has_endpoint)
		return false;
	if (!d || !d->has_ep)
		return true;
	if (ep_equal(&d->ep, &p->endpoint))
		return false;
	/* A loopback endpoint is this node's own relay socket, learnt from
	 * packets the relay carried (peers publish no loopback address). When
	 * the peer is not relayed (the relay sets its socket after this), it
	 * leads nowhere once the stream closes: seen at 60 nodes, a pair roamed
	 * to it while leaving the relay and stayed down until its handshake was
	 * stale, ~3 minutes. */
	if (is_loopback(&d->ep) && !is_loopback(&p->endpoint))
		return true;
	s = sent_by_key(ps, p->key);
	if (s && !(s->has_ep && ep_equal(&s->ep, &p->endpoint)))
		return true;
	return !d->handshake || now - d->handshake > PEERSET_STALE_S;
}

int peerset_decide(struct peerset *ps, const struct peerset_entry *e, size_t n, bool full_poll,
		   time_t now, struct mesh_state *out, enum peerset_verdict *verdict,
		   char (*why)[PEERSET_WHY])
{
	struct mesh_input *in = calloc(n + 1, sizeof(*in));
	bool unread = false;

	if (!in)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		why[i][0] = '\0';
		in[i].url = e[i].url;
		if (!e[i].url) {
			in[i].dropped = true;
			continue;
		}
		/* With P2PWG_SELF_URL only that slot can hold this node. */
		if (!ps->self_url || !strcmp(e[i].url, ps->self_url))
			unread |= !e[i].known;
		in[i].known = e[i].known;
		in[i].info = e[i].info;
		if (!in[i].known)
			in[i].known = stand_in(ps, e, n, i, &in[i].info);
		if (!in[i].known)
			continue;
		if (e[i].known && e[i].refused) {
			snprintf(why[i], PEERSET_WHY, "%s", e[i].refused);
			in[i].dropped = true;
			continue;
		}
		vet(ps, &e[i], &in[i].info, why[i]);
		in[i].dropped = why[i][0] != '\0';
	}
	mesh_compute(&ps->params, ps->self_key, in, n, out);
	free(in);
	for (size_t i = 0; i < out->n_peers; i++) {
		struct mesh_peer *p = &out->peers[i];

		if (p->index < n && e[p->index].known && e[p->index].has_path) {
			p->has_endpoint = true;
			p->endpoint = e[p->index].path;
			p->keepalive = MESH_KEEPALIVE;
		}
	}

	if (out->found_self) {
		ps->absent_polls = 0;
		*verdict = PEERSET_APPLY;
	} else if (unread) {
		/* Our own entry may just be unreadable now (our own /node.json
		 * before the agent answered, a gateway hiccup): change nothing. */
		*verdict = PEERSET_HOLD_UNREAD;
	} else {
		/* One bad read (a misrouted gateway, a cache, an edited list) must
		 * not wipe every tunnel: leave only when it lasts. */
		if (full_poll && ps->absent_polls < ps->leave_after)
			ps->absent_polls++;
		*verdict =
		    ps->absent_polls >= ps->leave_after ? PEERSET_LEAVE : PEERSET_HOLD_ABSENT;
	}
	for (size_t i = 0; i < out->n_peers; i++)
		out->peers[i].send_endpoint = endpoint_news(ps, &out->peers[i], now);
	return 0;
}

bool peerset_has_news(const struct mesh_state *s)
{
	for (size_t i = 0; i < s->n_peers; i++)
		if (s->peers[i].send_endpoint)
			return true;
	return false;
}

int peerset_applied(struct peerset *ps, const struct mesh_state *s)
{
	struct peerset_sent *sent = calloc(s->n_peers + 1, sizeof(*sent));
	struct peerset_devpeer *dev = calloc(s->n_peers + 1, sizeof(*dev));

	if (!sent || !dev) {
		free(sent);
		free(dev);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n_peers; i++) {
		const struct mesh_peer *p = &s->peers[i];
		const struct peerset_devpeer *old = dev_by_key(ps, p->key);

		memcpy(sent[i].key, p->key, 32);
		sent[i].has_ep = p->has_endpoint;
		sent[i].ep = p->endpoint;
		/* The agent removed every peer not in s and kept the others'
		 * endpoints unless one was sent. */
		if (old)
			dev[i] = *old;
		memcpy(dev[i].key, p->key, 32);
		dev[i].aip = p->overlay;
		if (p->send_endpoint) {
			dev[i].has_ep = true;
			dev[i].ep = p->endpoint;
		}
	}
	free(ps->sent);
	free(ps->dev);
	ps->sent = sent;
	ps->n_sent = s->n_peers;
	ps->dev = dev;
	ps->n_dev = s->n_peers;
	return 0;
}

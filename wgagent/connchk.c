// SPDX-License-Identifier: MIT
#include "connchk.h"
#include "pairkey.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STUN_MAGIC 0x2112A442U
#define TAG_LEN 16
#define ANSWER_WINDOW_MS 1000

static const char KEY_LABEL[] = "p2pwg path check v1";

void connchk_init(struct connchk *c, const struct connchk_ops *ops, const uint8_t *priv,
		  const uint8_t *pub)
{
	memset(c, 0, sizeof(*c));
	c->ops = *ops;
	c->priv = priv;
	c->pub = pub;
}

void connchk_free(struct connchk *c)
{
	if (!c || !c->peers)
		return;
	explicit_bzero(c->peers, c->n_peers * sizeof(*c->peers));
	free(c->peers);
	c->peers = NULL;
	c->n_peers = 0;
}

static struct connchk_peer *peer_by_key(const struct connchk *c, const uint8_t *key)
{
	for (size_t i = 0; i < c->n_peers; i++)
		if (!memcmp(c->peers[i].key, key, 32))
			return &c->peers[i];
	return NULL;
}

/* A peer with its MAC key, derived on first use: an X25519 for each of 245
 * peers was most of a full SetPeers' time (and far more under emulation);
 * most peers are never checked before the next change. NULL if key is not a
 * peer, or a low-order key with no shared secret. */
static const struct connchk_peer *keyed_peer(struct connchk *c, const uint8_t *key)
{
	struct connchk_peer *p = peer_by_key(c, key);

	if (p && !p->keyed)
		p->keyed = pairkey_derive(c->priv, p->key, KEY_LABEL, p->mac_key) == 0 ? 1 : 2;
	return p && p->keyed == 1 ? p : NULL;
}

int connchk_set_peers(struct connchk *c, const uint8_t (*keys)[32], size_t n)
{
	struct connchk_peer *p = calloc(n + 1, sizeof(*p));
	size_t k = 0;

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct connchk_peer *old = peer_by_key(c, keys[i]);

		if (old) {
			p[k++] = *old;
			continue;
		}
		memcpy(p[k++].key, keys[i], 32);
	}
	connchk_free(c);
	c->peers = p;
	c->n_peers = k;
	return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The message from sender to receiver under mac_key (both public keys given). */
static int build(const uint8_t *mac_key, const uint8_t *sender, const uint8_t *receiver,
		 bool answer, const uint8_t txid[12], uint8_t out[CONNCHK_MSG_LEN])
{
	uint8_t in[1 + 32 + 32 + 12], mac[32];
	unsigned int mlen = sizeof(mac);
	uint32_t magic = htonl(STUN_MAGIC);

	put16(out, answer ? 0x0101 : 0x0001);
	put16(out + 2, CONNCHK_MSG_LEN - 20);
	memcpy(out + 4, &magic, 4);
	memcpy(out + 8, txid, 12);
	put16(out + 20, CONNCHK_ATTR);
	put16(out + 22, 32 + TAG_LEN);
	memcpy(out + 24, sender, 32);
	/* Direction and both keys are covered: a node's own request reflected
	 * back to it, or a request replayed as an answer, does not verify. */
	in[0] = answer ? 'A' : 'Q';
	memcpy(in + 1, sender, 32);
	memcpy(in + 33, receiver, 32);
	memcpy(in + 65, txid, 12);
	if (!HMAC(EVP_sha256(), mac_key, 32, in, sizeof(in), mac, &mlen))
		return -EIO;
	memcpy(out + 56, mac, TAG_LEN);
	return 0;
}

int connchk_build(struct connchk *c, const uint8_t peer[32], bool answer, const uint8_t txid[12],
		  uint8_t out[CONNCHK_MSG_LEN])
{
	const struct connchk_peer *p = keyed_peer(c, peer);

	if (!p)
		return -ENOENT;
	return build(p->mac_key, c->pub, p->key, answer, txid, out);
}

int connchk_request(struct connchk *c, int client, uint64_t id, const P2pwg__PathCheck *pc,
		    uint64_t now_ms, char *why, size_t whylen)
{
	struct connchk_pending *slot = NULL;
	struct sockaddr_in to = {.sin_family = AF_INET};
	uint8_t msg[CONNCHK_MSG_LEN];
	uint32_t a;
	int ret;

	if (!pc->to || pc->to->addr.len != 4 || pc->to->port < 1 || pc->to->port > 65535) {
		snprintf(why, whylen, "candidate must be an IPv4 address and port 1..65535");
		return P2PWG__STATUS__INVALID;
	}
	memcpy(&to.sin_addr, pc->to->addr.data, 4);
	to.sin_port = htons((uint16_t)pc->to->port);
	a = ntohl(to.sin_addr.s_addr);
	if (a == 0 || IN_MULTICAST(a) || a == INADDR_BROADCAST || (a >> 24) == 127) {
		snprintf(why, whylen, "candidate address %s not allowed", inet_ntoa(to.sin_addr));
		return P2PWG__STATUS__INVALID;
	}
	if (pc->timeout_ms > CONNCHK_MAX_TIMEOUT_MS) {
		snprintf(why, whylen, "timeout %u ms, at most %u", pc->timeout_ms,
			 CONNCHK_MAX_TIMEOUT_MS);
		return P2PWG__STATUS__INVALID;
	}
	if (pc->txid.len != 12 || pc->peer_key.len != 32) {
		snprintf(why, whylen, "txid must be 12 bytes and peer_key 32");
		return P2PWG__STATUS__INVALID;
	}
	if (!keyed_peer(c, pc->peer_key.data)) {
		snprintf(why, whylen, "peer_key is not a peer of the last SetPeers");
		return P2PWG__STATUS__INVALID;
	}
	for (int i = 0; i < CONNCHK_MAX_PENDING; i++) {
		if (c->pend[i].used && !memcmp(c->pend[i].txid, pc->txid.data, 12)) {
			snprintf(why, whylen, "transaction id already in flight");
			return P2PWG__STATUS__INVALID;
		}
		if (!c->pend[i].used && !slot)
			slot = &c->pend[i];
	}
	if (!slot) {
		snprintf(why, whylen, "%d checks already in flight", CONNCHK_MAX_PENDING);
		return P2PWG__STATUS__BUSY;
	}
	ret = connchk_build(c, pc->peer_key.data, false, pc->txid.data, msg);
	if (!ret)
		ret = c->ops.send(c->ops.ctx, &to, msg, sizeof(msg));
	if (ret) {
		snprintf(why, whylen, "sending to %s: %s", inet_ntoa(to.sin_addr), strerror(-ret));
		return P2PWG__STATUS__FAILED;
	}
	*slot = (struct connchk_pending){
	    .used = true, .client = client, .id = id, .to = to, .sent_ms = now_ms};
	memcpy(slot->txid, pc->txid.data, 12);
	memcpy(slot->peer, pc->peer_key.data, 32);
	slot->deadline_ms = now_ms + (pc->timeout_ms ? pc->timeout_ms : 1000);
	return 0;
}

static void finish(struct connchk *c, struct connchk_pending *s, bool ok, uint64_t now_ms)
{
	P2pwg__Response r = P2PWG__RESPONSE__INIT;
	P2pwg__PathCheckReply pr = P2PWG__PATH_CHECK_REPLY__INIT;
	P2pwg__Endpoint ep = P2PWG__ENDPOINT__INIT;
	char err[96];

	r.id = s->id;
	if (ok) {
		ep.addr.data = (uint8_t *)&s->to.sin_addr;
		ep.addr.len = 4;
		ep.port = ntohs(s->to.sin_port);
		pr.from = &ep;
		pr.rtt_ms = (uint32_t)(now_ms - s->sent_ms);
		r.msg_case = P2PWG__RESPONSE__MSG_PATH_CHECK;
		r.path_check = &pr;
	} else {
		snprintf(err, sizeof(err), "no check answer from %s:%u", inet_ntoa(s->to.sin_addr),
			 ntohs(s->to.sin_port));
		r.status = P2PWG__STATUS__TIMEOUT;
		r.error = err;
	}
	s->used = false;
	c->ops.reply(c->ops.ctx, s->client, &r);
}

/* At most CONNCHK_ANSWER_RATE answers per second: a flood of valid-looking
 * requests costs one HMAC each and never turns the agent into an amplifier. */
static bool may_answer(struct connchk *c, uint64_t now_ms)
{
	if (now_ms - c->window_ms >= ANSWER_WINDOW_MS) {
		c->window_ms = now_ms;
		c->answered_in_window = 0;
	}
	return c->answered_in_window < CONNCHK_ANSWER_RATE;
}

bool connchk_input(struct connchk *c, const uint8_t *msg, size_t len,
		   const struct sockaddr_in *from, uint64_t now_ms)
{
	uint8_t want[CONNCHK_MSG_LEN];
	const struct connchk_peer *p;

	if (len != CONNCHK_MSG_LEN || msg[20] != (CONNCHK_ATTR >> 8) ||
	    msg[21] != (CONNCHK_ATTR & 0xff))
		return false;
	if (msg[0] == 0x00 && msg[1] == 0x01) {
		/* The sender's key is only compared: the request must equal the
		 * one that peer would build to this node. A stranger can make each
		 * peer's MAC key derived once at most (it is kept). */
		p = may_answer(c, now_ms) ? keyed_peer(c, msg + 24) : NULL;
		if (!p || build(p->mac_key, p->key, c->pub, false, msg + 8, want) ||
		    CRYPTO_memcmp(want, msg, CONNCHK_MSG_LEN)) {
			c->m_unanswered++;
			return true;
		}
		if (build(p->mac_key, c->pub, p->key, true, msg + 8, want))
			return true;
		c->answered_in_window++;
		c->m_answered++;
		c->ops.send(c->ops.ctx, from, want, sizeof(want));
		return true;
	}
	for (int i = 0; i < CONNCHK_MAX_PENDING; i++) {
		struct connchk_pending *s = &c->pend[i];

		if (!s->used || memcmp(s->txid, msg + 8, 12) ||
		    s->to.sin_addr.s_addr != from->sin_addr.s_addr ||
		    s->to.sin_port != from->sin_port)
			continue;
		p = keyed_peer(c, s->peer);
		if (!p || build(p->mac_key, p->key, c->pub, true, s->txid, want) ||
		    CRYPTO_memcmp(want, msg, CONNCHK_MSG_LEN))
			return true; /* a forgery does not end the check */
		finish(c, s, true, now_ms);
		return true;
	}
	return true;
}

int connchk_tick(struct connchk *c, uint64_t now_ms)
{
	int64_t next = -1;

	for (int i = 0; i < CONNCHK_MAX_PENDING; i++) {
		struct connchk_pending *s = &c->pend[i];

		if (!s->used)
			continue;
		if (s->deadline_ms > now_ms) {
			int64_t d = (int64_t)(s->deadline_ms - now_ms);

			if (next < 0 || d < next)
				next = d;
			continue;
		}
		finish(c, s, false, now_ms);
	}
	return (int)next;
}

void connchk_client_gone(struct connchk *c, int client)
{
	for (int i = 0; i < CONNCHK_MAX_PENDING; i++)
		if (c->pend[i].used && c->pend[i].client == client)
			c->pend[i].used = false;
}

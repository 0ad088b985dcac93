// SPDX-License-Identifier: MIT
#include "pathcheck.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void pathcheck_init(struct pathcheck *pc, unsigned rate)
{
	memset(pc, 0, sizeof(*pc));
	pc->rate = rate ? rate : PATHCHECK_RATE;
	pc->tokens = pc->rate;
}

void pathcheck_free(struct pathcheck *pc)
{
	if (!pc)
		return;
	free(pc->peers);
	pc->peers = NULL;
	pc->n = 0;
	keymap_free(&pc->by_key);
	pc->by_key_ok = false;
}

static bool ep_equal(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static bool is_self(const struct pathcheck *pc, const struct sockaddr_in *ep)
{
	for (size_t i = 0; i < pc->n_self; i++)
		if (ep_equal(&pc->self[i], ep))
			return true;
	return false;
}

void pathcheck_set_self(struct pathcheck *pc, const struct sockaddr_in *eps, size_t n)
{
	if (n > sizeof(pc->self) / sizeof(pc->self[0]))
		n = sizeof(pc->self) / sizeof(pc->self[0]);
	memcpy(pc->self, eps, n * sizeof(*eps));
	pc->n_self = n;
}

static struct pathcheck_peer *peer_by_key(const struct pathcheck *pc, const uint8_t *key)
{
	if (pc->by_key_ok)
		return keymap_get(&pc->by_key, key);
	for (size_t i = 0; i < pc->n; i++)
		if (!memcmp(pc->peers[i].key, key, 32))
			return &pc->peers[i];
	return NULL;
}

static void add_cand(const struct pathcheck *pc, struct pathcheck_peer *p,
		     const struct pathcheck_peer *old, const struct sockaddr_in *ep,
		     enum pathcheck_kind kind, uint64_t now_ms)
{
	struct pathcheck_cand *c;

	if (p->n >= PATHCHECK_MAX_CANDS || is_self(pc, ep))
		return;
	c = &p->c[p->n];
	for (size_t i = 0; i < p->n; i++)
		if (ep_equal(&p->c[i].ep, ep))
			return;
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; old && i < old->n; i++)
		if (ep_equal(&old->c[i].ep, ep))
			*c = old->c[i];
	if (!c->ep.sin_family) {
		c->ep = *ep;
		c->due_ms = now_ms;
	}
	c->kind = kind;
	p->n++;
}

int pathcheck_update(struct pathcheck *pc, const struct pathcheck_in *in, size_t n, uint64_t now_ms)
{
	struct pathcheck_peer *peers = calloc(n + 1, sizeof(*peers));
	struct keymap by_key = { 0 };
	bool by_key_ok = true;
	size_t k = 0;

	if (!peers)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct nodeinfo *ni = in[i].info;
		const struct pathcheck_peer *old = peer_by_key(pc, in[i].key);
		struct pathcheck_peer *p = &peers[k];
		struct sockaddr_in pub = {.sin_family = AF_INET};
		bool dup = false;

		if (by_key_ok)
			dup = keymap_get(&by_key, in[i].key) != NULL;
		else
			for (size_t j = 0; j < k; j++)
				dup |= !memcmp(peers[j].key, in[i].key, 32);
		if (dup)
			continue;
		memcpy(p->key, in[i].key, 32);
		if (by_key_ok && keymap_put(&by_key, p->key, p))
			by_key_ok = false; /* out of memory: searched instead */
		if (ni->has_public) {
			pub.sin_addr = ni->public_ip;
			pub.sin_port = htons(ni->public_port);
		}
		/* A node with no NAT lists its public address among its own:
		 * that one is the direct path, not a LAN. */
		for (size_t j = 0; j < ni->n_local; j++)
			if (!ni->has_public || !ep_equal(&ni->local[j], &pub))
				add_cand(pc, p, old, &ni->local[j], PATHCHECK_LAN, now_ms);
		if (ni->has_public)
			add_cand(pc, p, old, &pub, PATHCHECK_DIRECT, now_ms);
		k++;
	}
	free(pc->peers);
	pc->peers = peers;
	pc->n = k;
	keymap_free(&pc->by_key);
	pc->by_key = by_key;
	pc->by_key_ok = by_key_ok;
	if (pc->rr >= k)
		pc->rr = 0;
	return 0;
}

static void refill(struct pathcheck *pc, uint64_t now_ms)
{
	if (now_ms > pc->tokens_ms) {
		pc->tokens += (double)(now_ms - pc->tokens_ms) * pc->rate / 1000.0;
		if (pc->tokens > pc->rate)
			pc->tokens = pc->rate;
	}
	pc->tokens_ms = now_ms;
}

int pathcheck_next(struct pathcheck *pc, uint64_t now_ms, uint8_t key[32], struct sockaddr_in *ep,
		   uint64_t *wait_ms)
{
	uint64_t earliest = UINT64_MAX;

	refill(pc, now_ms);
	/* Round robin over peers, candidates in order (lan first): one peer
	 * with many unreachable local addresses never starves the others. */
	for (size_t k = 0; k < pc->n; k++) {
		size_t i = (pc->rr + k) % pc->n;
		struct pathcheck_peer *p = &pc->peers[i];

		for (size_t j = 0; j < p->n; j++) {
			struct pathcheck_cand *c = &p->c[j];

			if (c->inflight)
				continue;
			if (c->due_ms > now_ms) {
				if (c->due_ms - now_ms < earliest)
					earliest = c->due_ms - now_ms;
				continue;
			}
			if (pc->tokens < 1.0) {
				*wait_ms = (uint64_t)((1.0 - pc->tokens) * 1000.0 / pc->rate) + 1;
				return -EAGAIN;
			}
			pc->tokens -= 1.0;
			c->inflight = true;
			pc->rr = (i + 1) % pc->n;
			pc->m_sent++;
			memcpy(key, p->key, 32);
			*ep = c->ep;
			return 0;
		}
	}
	*wait_ms = earliest;
	return -EAGAIN;
}

bool pathcheck_result(struct pathcheck *pc, const uint8_t key[32], const struct sockaddr_in *ep,
		      bool answered, uint32_t rtt_ms, uint64_t now_ms)
{
	struct pathcheck_peer *p = peer_by_key(pc, key);
	struct sockaddr_in before_ep = {0}, after_ep = {0};
	enum pathcheck_kind before, after;
	uint64_t max;
	unsigned shift;

	if (!p)
		return false;
	before = pathcheck_choose(pc, key, &before_ep);
	for (size_t j = 0; j < p->n; j++) {
		struct pathcheck_cand *c = &p->c[j];

		if (!ep_equal(&c->ep, ep))
			continue;
		c->inflight = false;
		if (answered) {
			pc->m_answered++;
			c->answered = true;
			c->fails = 0;
			c->answered_ms = now_ms;
			c->rtt_ms = rtt_ms;
			c->due_ms = now_ms + PATHCHECK_RECHECK_MS;
			break;
		}
		pc->m_unanswered++;
		c->fails++;
		/* One lost packet does not undo a path: only several in a row. */
		if (c->fails >= PATHCHECK_LOST_AFTER)
			c->answered = false;
		/* The first few quickly: the peer's agent may not know this node
		 * yet (its list poll lags ours); then ever more slowly. */
		shift = c->fails <= PATHCHECK_LOST_AFTER ? 0 : c->fails - PATHCHECK_LOST_AFTER;
		shift = shift > 9 ? 9 : shift;
		max = PATHCHECK_RETRY_MAX_MS;
		for (size_t k = 0; k < p->n; k++)
			if (k != j && p->c[k].answered)
				max = PATHCHECK_RETRY_SPARE_MS;
		c->due_ms = now_ms + (c->answered ? PATHCHECK_RETRY_MIN_MS
						  : (uint64_t)PATHCHECK_RETRY_MIN_MS << shift);
		if (c->due_ms > now_ms + max)
			c->due_ms = now_ms + max;
		break;
	}
	after = pathcheck_choose(pc, key, &after_ep);
	/* The last path that answered is gone: the others (a LAN address
	 * checked every few minutes) are looked at now, not at their turn. */
	if (before != PATHCHECK_NONE && after == PATHCHECK_NONE)
		for (size_t j = 0; j < p->n; j++)
			if (!p->c[j].inflight && !ep_equal(&p->c[j].ep, ep) && p->c[j].due_ms > now_ms)
				p->c[j].due_ms = now_ms;
	return before != after || !ep_equal(&before_ep, &after_ep);
}

bool pathcheck_suspect(struct pathcheck *pc, const uint8_t key[32], uint64_t now_ms)
{
	struct pathcheck_peer *p = peer_by_key(pc, key);
	bool due = false;

	for (size_t j = 0; p && j < p->n; j++) {
		struct pathcheck_cand *c = &p->c[j];

		if (!c->inflight) {
			if (c->due_ms > now_ms)
				c->due_ms = now_ms;
			due = true;
		}
	}
	return due;
}

enum pathcheck_kind pathcheck_choose(const struct pathcheck *pc, const uint8_t key[32],
				     struct sockaddr_in *ep)
{
	const struct pathcheck_peer *p = peer_by_key(pc, key);
	const struct pathcheck_cand *best = NULL;

	for (size_t j = 0; p && j < p->n; j++) {
		const struct pathcheck_cand *c = &p->c[j];

		if (c->answered &&
		    (!best || (c->kind == PATHCHECK_LAN && best->kind != PATHCHECK_LAN)))
			best = c;
	}
	if (!best)
		return PATHCHECK_NONE;
	*ep = best->ep;
	return best->kind;
}

const char *pathcheck_kind_name(enum pathcheck_kind k)
{
	switch (k) {
	case PATHCHECK_LAN:
		return "lan";
	case PATHCHECK_DIRECT:
		return "direct";
	default:
		return "none";
	}
}

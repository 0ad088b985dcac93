// SPDX-License-Identifier: MIT
#include "diff.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool aip_equal(const struct wg_allowedip *a, const struct wg_allowedip *b)
{
	if (a->family != b->family || a->cidr != b->cidr)
		return false;
	if (a->family == AF_INET)
		return a->ip4.s_addr == b->ip4.s_addr;
	return !memcmp(&a->ip6, &b->ip6, sizeof(a->ip6));
}

static bool has_aip(const struct wg_peer *p, const struct wg_allowedip *aip)
{
	for (size_t i = 0; i < p->n_allowedips; i++)
		if (aip_equal(&p->allowedips[i], aip))
			return true;
	return false;
}

/* Same set, whatever the order (WireGuard returns its trie order). */
static bool aips_equal(const struct wg_peer *a, const struct wg_peer *b)
{
	if (a->n_allowedips != b->n_allowedips)
		return false;
	for (size_t i = 0; i < a->n_allowedips; i++)
		if (!has_aip(b, &a->allowedips[i]) || !has_aip(a, &b->allowedips[i]))
			return false;
	return true;
}

static int copy_aips(struct wg_peer *dst, const struct wg_peer *src)
{
	for (size_t i = 0; i < src->n_allowedips; i++)
		if (wg_peer_add_allowedip(dst, &src->allowedips[i]))
			return -ENOMEM;
	return 0;
}

static int diff_peer(struct wg_device *change, const struct wg_peer *cur, const struct wg_peer *w)
{
	bool ep = w->endpoint.sa.sa_family != AF_UNSPEC &&
		  !wg_endpoint_equal(&w->endpoint, &cur->endpoint);
	bool aips = !aips_equal(cur, w);
	bool ka = cur->keepalive != w->keepalive;
	struct wg_peer *p;

	if (!ep && !aips && !ka)
		return 0;
	p = wg_device_add_peer(change);
	if (!p)
		return -ENOMEM;
	memcpy(p->public_key, w->public_key, WG_KEY_LEN);
	p->flags = WGPEER_UPDATE_ONLY;
	if (ep)
		p->endpoint = w->endpoint;
	if (ka) {
		p->flags |= WGPEER_HAS_KEEPALIVE;
		p->keepalive = w->keepalive;
	}
	if (aips) {
		p->flags |= WGPEER_REPLACE_ALLOWEDIPS;
		return copy_aips(p, w);
	}
	return 0;
}

int diff_device(const struct wg_device *cur, const struct wg_device *want,
		struct wg_device **change)
{
	struct wg_device *c = wg_device_new(cur->name);
	struct wg_peer *p;
	int ret = -ENOMEM;

	if (!c)
		return -ENOMEM;
	c->ifindex = cur->ifindex;
	if ((want->flags & WGDEV_HAS_PRIVATE_KEY) &&
	    (!(cur->flags & WGDEV_HAS_PRIVATE_KEY) ||
	     memcmp(cur->private_key, want->private_key, WG_KEY_LEN))) {
		c->flags |= WGDEV_HAS_PRIVATE_KEY;
		memcpy(c->private_key, want->private_key, WG_KEY_LEN);
	}
	if ((want->flags & WGDEV_HAS_LISTEN_PORT) && cur->listen_port != want->listen_port) {
		c->flags |= WGDEV_HAS_LISTEN_PORT;
		c->listen_port = want->listen_port;
	}
	for (size_t i = 0; i < cur->n_peers; i++) {
		if (wg_device_find_peer(want, cur->peers[i].public_key))
			continue;
		p = wg_device_add_peer(c);
		if (!p)
			goto out;
		memcpy(p->public_key, cur->peers[i].public_key, WG_KEY_LEN);
		p->flags = WGPEER_REMOVE_ME;
	}
	for (size_t i = 0; i < want->n_peers; i++) {
		const struct wg_peer *w = &want->peers[i];
		const struct wg_peer *old = wg_device_find_peer(cur, w->public_key);

		if (old) {
			if (diff_peer(c, old, w))
				goto out;
			continue;
		}
		p = wg_device_add_peer(c);
		if (!p)
			goto out;
		memcpy(p->public_key, w->public_key, WG_KEY_LEN);
		p->flags = WGPEER_REPLACE_ALLOWEDIPS | WGPEER_HAS_KEEPALIVE;
		p->endpoint = w->endpoint;
		p->keepalive = w->keepalive;
		if (copy_aips(p, w))
			goto out;
	}
	*change = c;
	return 0;
out:
	wg_device_free(c);
	return ret;
}

/* The address WireGuard keeps: host bits cleared, as its trie stores it. */
static struct wg_allowedip masked(const struct wg_allowedip *a)
{
	struct wg_allowedip m = *a;

	if (m.family == AF_INET) {
		m.ip4.s_addr &= m.cidr ? htonl(~0U << (32 - m.cidr)) : 0;
	} else {
		for (unsigned i = 0; i < 16; i++) {
			unsigned bits = m.cidr > i * 8 ? m.cidr - i * 8 : 0;

			m.ip6.s6_addr[i] &= bits >= 8 ? 0xff : (uint8_t)(0xff00 >> bits);
		}
	}
	return m;
}

/* Give aip to p alone: WireGuard moves an allowed IP to the peer that gets it. */
static int take_aip(struct wg_device *dev, struct wg_peer *p, const struct wg_allowedip *aip)
{
	struct wg_allowedip m = masked(aip);

	for (size_t i = 0; i < dev->n_peers; i++) {
		struct wg_peer *o = &dev->peers[i];

		for (size_t j = 0; j < o->n_allowedips; j++)
			if (aip_equal(&o->allowedips[j], &m)) {
				memmove(&o->allowedips[j], &o->allowedips[j + 1],
					(o->n_allowedips - j - 1) * sizeof(m));
				o->n_allowedips--;
				break;
			}
	}
	return wg_peer_add_allowedip(p, &m);
}

static void remove_peer(struct wg_device *dev, struct wg_peer *p)
{
	size_t i = (size_t)(p - dev->peers);

	free(p->allowedips);
	memmove(p, p + 1, (dev->n_peers - i - 1) * sizeof(*p));
	dev->n_peers--;
}

int diff_apply(struct wg_device *dev, const struct wg_device *change)
{
	if (change->flags & WGDEV_HAS_PRIVATE_KEY)
		memcpy(dev->private_key, change->private_key, WG_KEY_LEN);
	if (change->flags & WGDEV_HAS_LISTEN_PORT)
		dev->listen_port = change->listen_port;
	if (change->flags & WGDEV_REPLACE_PEERS)
		for (size_t i = dev->n_peers; i-- > 0;)
			if (!wg_device_find_peer(change, dev->peers[i].public_key))
				remove_peer(dev, &dev->peers[i]);
	for (size_t i = 0; i < change->n_peers; i++) {
		const struct wg_peer *c = &change->peers[i];
		struct wg_peer *p = wg_device_find_peer(dev, c->public_key);

		if (c->flags & WGPEER_REMOVE_ME) {
			if (p)
				remove_peer(dev, p);
			continue;
		}
		if (!p) {
			if (c->flags & WGPEER_UPDATE_ONLY)
				continue;
			p = wg_device_add_peer(dev);
			if (!p)
				return -ENOMEM;
			memcpy(p->public_key, c->public_key, WG_KEY_LEN);
		}
		if (c->endpoint.sa.sa_family != AF_UNSPEC)
			p->endpoint = c->endpoint;
		if (c->flags & WGPEER_HAS_KEEPALIVE)
			p->keepalive = c->keepalive;
		if (c->flags & WGPEER_REPLACE_ALLOWEDIPS)
			p->n_allowedips = 0;
		for (size_t j = 0; j < c->n_allowedips; j++)
			if (take_aip(dev, p, &c->allowedips[j]))
				return -ENOMEM;
	}
	return 0;
}

bool diff_is_empty(const struct wg_device *change)
{
	return !change->n_peers && !(change->flags & (WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_LISTEN_PORT));
}

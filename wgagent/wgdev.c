// SPDX-License-Identifier: MIT
#include "wgdev.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct wg_device *wg_device_new(const char *ifname)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	if (ifname)
		snprintf(dev->name, sizeof(dev->name), "%s", ifname);
	return dev;
}

struct wg_peer *wg_device_add_peer(struct wg_device *dev)
{
	struct wg_peer *peers = realloc(dev->peers, (dev->n_peers + 1) * sizeof(*peers));

	if (!peers)
		return NULL;
	dev->peers = peers;
	memset(&peers[dev->n_peers], 0, sizeof(*peers));
	return &peers[dev->n_peers++];
}

int wg_peer_add_allowedip(struct wg_peer *peer, const struct wg_allowedip *aip)
{
	struct wg_allowedip *a = realloc(peer->allowedips, (peer->n_allowedips + 1) * sizeof(*a));

	if (!a)
		return -ENOMEM;
	peer->allowedips = a;
	a[peer->n_allowedips++] = *aip;
	return 0;
}

struct wg_peer *wg_device_find_peer(const struct wg_device *dev, const uint8_t key[WG_KEY_LEN])
{
	for (size_t i = 0; dev && i < dev->n_peers; i++)
		if (!memcmp(dev->peers[i].public_key, key, WG_KEY_LEN))
			return &dev->peers[i];
	return NULL;
}

int wg_device_dup(const struct wg_device *dev, struct wg_device **out)
{
	struct wg_device *d = malloc(sizeof(*d));
	int ret = -ENOMEM;

	*out = NULL;
	if (!d)
		goto out;
	*d = *dev;
	d->n_peers = 0;
	d->peers = calloc(dev->n_peers + 1, sizeof(*d->peers));
	if (!d->peers)
		goto out;
	for (size_t i = 0; i < dev->n_peers; i++, d->n_peers++) {
		struct wg_peer *p = &d->peers[i];

		*p = dev->peers[i];
		p->allowedips = calloc(p->n_allowedips + 1, sizeof(*p->allowedips));
		if (!p->allowedips)
			goto out;
		if (p->n_allowedips)
			memcpy(p->allowedips, dev->peers[i].allowedips,
			       p->n_allowedips * sizeof(*p->allowedips));
	}
	*out = d;
	d = NULL;
	ret = 0;
out:
	wg_device_free(d);
	return ret;
}

void wg_device_free(struct wg_device *dev)
{
	if (!dev)
		return;
	for (size_t i = 0; i < dev->n_peers; i++)
		free(dev->peers[i].allowedips);
	free(dev->peers);
	explicit_bzero(dev, sizeof(*dev));
	free(dev);
}

bool wg_endpoint_equal(const union wg_endpoint *a, const union wg_endpoint *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	switch (a->sa.sa_family) {
	case AF_INET:
		return a->sin.sin_port == b->sin.sin_port &&
		       a->sin.sin_addr.s_addr == b->sin.sin_addr.s_addr;
	case AF_INET6:
		return a->sin6.sin6_port == b->sin6.sin6_port &&
		       !memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr, sizeof(struct in6_addr));
	default:
		return true;
	}
}

const char *wg_endpoint_str(const union wg_endpoint *ep, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	switch (ep->sa.sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &ep->sin.sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(ep->sin.sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &ep->sin6.sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(ep->sin6.sin6_port));
		break;
	default:
		snprintf(buf, len, "(none)");
	}
	return buf;
}

// SPDX-License-Identifier: MIT
#include "ifwatch.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "rtnl.h"

/* Every read refreshes what a rebuild restores: after a change the agent
 * reads the interface anyway (to answer), so a change needs no read-back. */
static int wrap_get(struct wg_backend *be, const char *ifname, struct wg_device **out)
{
	struct ifwatch *w = be->ctx;
	struct wg_device *copy;
	int ret = w->real->get(w->real, ifname, out);

	if (ret || wg_device_dup(*out, &copy))
		return ret;
	wg_device_free(w->peers);
	wg_device_free(w->pending);
	w->peers = copy;
	w->pending = NULL;
	return 0;
}

/* Until the next read, a rebuild restores the peers read last and then this
 * change, made against them. A second change before any read: read back. */
static int wrap_set(struct wg_backend *be, const struct wg_device *change)
{
	struct ifwatch *w = be->ctx;
	struct wg_device *now = NULL;
	int ret = w->real->set(w->real, change);

	if (ret)
		return ret;
	if (!w->pending && wg_device_dup(change, &w->pending) == 0)
		return 0;
	if (w->real->get(w->real, change->name, &now) == 0) {
		wg_device_free(w->peers);
		wg_device_free(w->pending);
		w->peers = now;
		w->pending = NULL;
	}
	return 0;
}

/* The agent's own view after its change: what a rebuild restores, with no
 * read-back however many changes follow. */
static void wrap_known(struct wg_backend *be, const struct wg_device *dev)
{
	struct ifwatch *w = be->ctx;
	struct wg_device *copy;

	if (wg_device_dup(dev, &copy))
		return; /* the pending change or a read-back still covers it */
	wg_device_free(w->peers);
	wg_device_free(w->pending);
	w->peers = copy;
	w->pending = NULL;
}

void ifwatch_init(struct ifwatch *w, const struct backend_opts *opts, struct wg_backend *real,
		  uint32_t ifindex, const uint8_t *private_key)
{
	memset(w, 0, sizeof(*w));
	w->wrap = (struct wg_backend){
		.name = real->name, .get = wrap_get, .set = wrap_set, .known = wrap_known, .ctx = w
	};
	w->real = real;
	w->opts = opts;
	w->ifindex = ifindex;
	w->private_key = private_key;
	/* An adopted interface's peers are what a rebuild restores until the
	 * agent applies a change of its own. */
	if (real->get(real, opts->ifname, &w->peers))
		w->peers = NULL;
}

void ifwatch_note_addr(struct ifwatch *w, const struct in_addr *addr, uint8_t len)
{
	w->have_addr = addr != NULL;
	if (addr) {
		w->addr = *addr;
		w->addr_len = len;
	}
}

static int restore_peers(struct ifwatch *w)
{
	struct wg_device *d = w->peers;
	int ret = 0;

	if (d) {
		/* The read as a change list: the whole peer set, nothing else. */
		d->flags = WGDEV_REPLACE_PEERS;
		for (size_t i = 0; i < d->n_peers; i++)
			d->peers[i].flags = WGPEER_REPLACE_ALLOWEDIPS | WGPEER_HAS_KEEPALIVE;
		ret = w->real->set(w->real, d);
	}
	if (!ret && w->pending)
		ret = w->real->set(w->real, w->pending);
	return ret;
}

static int rebuild(struct ifwatch *w)
{
	struct wg_backend *be;
	uint32_t ifindex;
	bool adopted;
	int ret;

	ret = backend_setup(w->opts, w->private_key, &be, &ifindex, &adopted);
	if (ret)
		return ret;
	w->real = be;
	w->wrap.name = be->name;
	w->ifindex = ifindex;
	if (w->have_addr) {
		ret = rtnl_addr_set4(ifindex, &w->addr, w->addr_len);
		if (ret) {
			log_err("wg", "rebuilt %s but cannot set its address: %s", w->opts->ifname,
				strerror(-ret));
			return ret;
		}
	}
	ret = restore_peers(w);
	if (ret) {
		log_err("wg", "rebuilt %s but cannot restore its peers: %s", w->opts->ifname,
			strerror(-ret));
		return ret;
	}
	log_info("wg", "rebuilt %s: key, port, address and %zu peers restored", w->opts->ifname,
		 w->peers ? w->peers->n_peers : (size_t)0);
	return 0;
}

int ifwatch_tick(struct ifwatch *w, uint64_t now_ms, int *next_ms)
{
	uint32_t idx;
	int ret;

	if (now_ms < w->next_ms) {
		*next_ms = (int)(w->next_ms - now_ms);
		return 0;
	}
	w->next_ms = now_ms + IFWATCH_PERIOD_MS;
	*next_ms = IFWATCH_PERIOD_MS;
	ret = rtnl_link_index(w->opts->ifname, &idx);
	if (ret == 0 && idx == w->ifindex)
		return 0;
	if (ret && ret != -ENODEV)
		return ret;
	log_warn("wg", "interface %s %s; rebuilding it", w->opts->ifname,
		 ret ? "is gone (deleted, or wireguard-go died)" : "was replaced");
	ret = rebuild(w);
	return ret ? ret : 1;
}

void ifwatch_cleanup(struct ifwatch *w)
{
	wg_device_free(w->peers);
	wg_device_free(w->pending);
	w->peers = NULL;
	w->pending = NULL;
}

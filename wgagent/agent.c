// SPDX-License-Identifier: MIT
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.pb-c.h"
#include "agentclient.h"
#include "b64.h"
#include "diff.h"
#include "log.h"
#include "netaddr.h"
#include "relaymac.h"

#define STUN_MAGIC 0x2112A442U

/* A reply under construction: the Response plus storage its fields point to. */
struct reply {
	P2pwg__Response resp;
	char error[256];
	P2pwg__HelloReply hello;
	P2pwg__Device device;
	P2pwg__Prefix address;
	P2pwg__StunReply stun;
	P2pwg__RelayAuthReply relay_auth;
	uint8_t mac_buf[RELAYMAC_LEN];
	P2pwg__Endpoint stun_from;
	struct in_addr addr_buf;
	uint8_t stun_buf[AGENT_STUN_MAX_LEN];
	struct wg_device *dev; /* a read that backs device's peers, if not the model */
	P2pwg__Peer *peers;
	P2pwg__Peer **peer_ptrs;
	P2pwg__Endpoint *endpoints;
	P2pwg__Prefix *aips;
	P2pwg__Prefix **aip_ptrs;
};

static void reply_init(struct reply *r, uint64_t id)
{
	memset(r, 0, sizeof(*r));
	p2pwg__response__init(&r->resp);
	r->resp.id = id;
}

static void reply_free(struct reply *r)
{
	wg_device_free(r->dev);
	free(r->peers);
	free(r->peer_ptrs);
	free(r->endpoints);
	free(r->aips);
	free(r->aip_ptrs);
}

static void __attribute__((format(printf, 3, 4)))
reply_error(struct reply *r, P2pwg__Status status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->resp.status = status;
	r->resp.error = r->error;
	r->resp.msg_case = P2PWG__RESPONSE__MSG__NOT_SET;
}

static void send_reply(struct agent *a, int client, struct reply *r)
{
	size_t len = p2pwg__response__get_packed_size(&r->resp);
	uint8_t *buf = malloc(len ? len : 1);

	if (r->resp.status != P2PWG__STATUS__OK && r->resp.status != P2PWG__STATUS__TIMEOUT)
		log_warn("agent", "request %llu refused: %s: %s", (unsigned long long)r->resp.id,
			 agentclient_status_name(r->resp.status), r->error);
	if (!buf) {
		log_err("agent", "out of memory packing a reply");
		return;
	}
	p2pwg__response__pack(&r->resp, buf);
	if (a->ops.reply(a->ops.ctx, client, buf, len))
		log_warn("agent", "could not send reply %llu to client %d",
			 (unsigned long long)r->resp.id, client);
	free(buf);
}

static const char *keystr(const uint8_t *key, char *buf)
{
	b64_key_encode(key, buf);
	buf[8] = '\0';
	return buf;
}

/* ==== reading the device into a reply ==== */

/* Describe dev (borrowed: it must outlive the reply) in r. */
static int fill_device(struct agent *a, struct reply *r, const struct wg_device *dev)
{
	P2pwg__Device *d = &r->device;
	size_t n_aips = 0, k = 0;
	uint8_t len;

	p2pwg__device__init(d);
	d->ifname = a->cfg.ifname;
	d->backend = (char *)a->ops.wg->name;
	d->public_key.data = a->public_key;
	d->public_key.len = WG_KEY_LEN;
	d->listen_port = dev->listen_port;
	if (a->ops.addr_get(a->ops.ctx, &r->addr_buf, &len) == 0) {
		p2pwg__prefix__init(&r->address);
		r->address.addr.data = (uint8_t *)&r->addr_buf;
		r->address.addr.len = 4;
		r->address.prefix_len = len;
		d->address = &r->address;
	}
	for (size_t i = 0; i < dev->n_peers; i++)
		n_aips += dev->peers[i].n_allowedips;
	r->peers = calloc(dev->n_peers + 1, sizeof(*r->peers));
	r->peer_ptrs = calloc(dev->n_peers + 1, sizeof(*r->peer_ptrs));
	r->endpoints = calloc(dev->n_peers + 1, sizeof(*r->endpoints));
	r->aips = calloc(n_aips + 1, sizeof(*r->aips));
	r->aip_ptrs = calloc(n_aips + 1, sizeof(*r->aip_ptrs));
	if (!r->peers || !r->peer_ptrs || !r->endpoints || !r->aips || !r->aip_ptrs)
		return -ENOMEM;
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *wp = &dev->peers[i];
		P2pwg__Peer *p = &r->peers[i];

		p2pwg__peer__init(p);
		r->peer_ptrs[i] = p;
		p->public_key.data = (uint8_t *)wp->public_key;
		p->public_key.len = WG_KEY_LEN;
		p->keepalive = wp->keepalive;
		p->last_handshake_sec = wp->last_handshake.tv_sec;
		p->rx_bytes = wp->rx_bytes;
		p->tx_bytes = wp->tx_bytes;
		if (wp->endpoint.sa.sa_family == AF_INET || wp->endpoint.sa.sa_family == AF_INET6) {
			P2pwg__Endpoint *e = &r->endpoints[i];

			p2pwg__endpoint__init(e);
			if (wp->endpoint.sa.sa_family == AF_INET) {
				e->addr.data = (uint8_t *)&wp->endpoint.sin.sin_addr;
				e->addr.len = 4;
				e->port = ntohs(wp->endpoint.sin.sin_port);
			} else {
				e->addr.data = (uint8_t *)&wp->endpoint.sin6.sin6_addr;
				e->addr.len = 16;
				e->port = ntohs(wp->endpoint.sin6.sin6_port);
			}
			p->endpoint = e;
		}
		p->allowed_ips = &r->aip_ptrs[k];
		for (size_t j = 0; j < wp->n_allowedips; j++, k++) {
			const struct wg_allowedip *w = &wp->allowedips[j];
			P2pwg__Prefix *pp = &r->aips[k];

			p2pwg__prefix__init(pp);
			pp->addr.data = (uint8_t *)&w->ip4;
			pp->addr.len = w->family == AF_INET ? 4 : 16;
			pp->prefix_len = w->cidr;
			r->aip_ptrs[k] = pp;
		}
		p->n_allowed_ips = wp->n_allowedips;
	}
	d->peers = r->peer_ptrs;
	d->n_peers = dev->n_peers;
	return 0;
}

/* ==== validation: every field, whatever controld says ==== */

struct want {
	struct wg_device *dev;
	bool has_addr;
	struct in_addr addr;
	uint8_t addr_len;
};

static bool in_overlay(const struct agent *a, struct in_addr ip, uint8_t len)
{
	return netaddr_prefix4_inside(ip, len, a->cfg.overlay_net, a->cfg.overlay_len);
}

static int check_address(struct agent *a, const P2pwg__Prefix *p, struct want *w, struct reply *r)
{
	uint32_t host_mask;

	if (p->addr.len != 4) {
		reply_error(r, P2PWG__STATUS__INVALID, "address must be 4 bytes (IPv4), got %zu",
			    p->addr.len);
		return -EINVAL;
	}
	memcpy(&w->addr, p->addr.data, 4);
	if (p->prefix_len != 32 && p->prefix_len != a->cfg.overlay_len) {
		reply_error(r, P2PWG__STATUS__INVALID,
			    "address prefix length must be 32 or the overlay's %u, got %u",
			    a->cfg.overlay_len, p->prefix_len);
		return -EINVAL;
	}
	if (!in_overlay(a, w->addr, 32)) {
		reply_error(r, P2PWG__STATUS__INVALID, "address %s is outside the overlay prefix",
			    inet_ntoa(w->addr));
		return -EINVAL;
	}
	host_mask = ~netaddr_mask4(a->cfg.overlay_len);
	if (a->cfg.overlay_len < 31 && ((w->addr.s_addr & host_mask) == 0 ||
					(w->addr.s_addr & host_mask) == host_mask)) {
		reply_error(r, P2PWG__STATUS__INVALID,
			    "address %s is the overlay's network or broadcast address",
			    inet_ntoa(w->addr));
		return -EINVAL;
	}
	w->has_addr = true;
	w->addr_len = (uint8_t)p->prefix_len;
	return 0;
}

static int check_peer(struct agent *a, size_t i, const P2pwg__Peer *p, struct want *w,
		      struct reply *r)
{
	static const uint8_t zero[WG_KEY_LEN];
	struct wg_peer *wp;

	if (p->public_key.len != WG_KEY_LEN) {
		reply_error(r, P2PWG__STATUS__INVALID, "peer %zu: public key must be 32 bytes, got %zu",
			    i, p->public_key.len);
		return -EINVAL;
	}
	if (!memcmp(p->public_key.data, zero, WG_KEY_LEN) ||
	    !memcmp(p->public_key.data, a->public_key, WG_KEY_LEN)) {
		reply_error(r, P2PWG__STATUS__INVALID, "peer %zu: public key is %s", i,
			    memcmp(p->public_key.data, zero, WG_KEY_LEN) ? "this node's own" : "all zero");
		return -EINVAL;
	}
	if (wg_device_find_peer(w->dev, p->public_key.data)) {
		reply_error(r, P2PWG__STATUS__INVALID, "peer %zu: duplicate public key", i);
		return -EINVAL;
	}
	if (p->keepalive > AGENT_MAX_KEEPALIVE) {
		reply_error(r, P2PWG__STATUS__INVALID, "peer %zu: keepalive %u outside 0..%u", i,
			    p->keepalive, AGENT_MAX_KEEPALIVE);
		return -EINVAL;
	}
	if (p->n_allowed_ips > AGENT_MAX_ALLOWEDIPS) {
		reply_error(r, P2PWG__STATUS__INVALID, "peer %zu: %zu allowed IPs, at most %u", i,
			    p->n_allowed_ips, AGENT_MAX_ALLOWEDIPS);
		return -EINVAL;
	}
	wp = wg_device_add_peer(w->dev);
	if (!wp) {
		reply_error(r, P2PWG__STATUS__FAILED, "out of memory");
		return -ENOMEM;
	}
	memcpy(wp->public_key, p->public_key.data, WG_KEY_LEN);
	wp->keepalive = (uint16_t)p->keepalive;
	wp->flags = WGPEER_HAS_KEEPALIVE;
	if (p->endpoint) {
		const P2pwg__Endpoint *e = p->endpoint;

		if (e->port < 1 || e->port > 65535) {
			reply_error(r, P2PWG__STATUS__INVALID, "peer %zu: endpoint port %u outside 1..65535",
				    i, e->port);
			return -EINVAL;
		}
		if (e->addr.len == 4) {
			wp->endpoint.sin.sin_family = AF_INET;
			memcpy(&wp->endpoint.sin.sin_addr, e->addr.data, 4);
			wp->endpoint.sin.sin_port = htons((uint16_t)e->port);
			if (in_overlay(a, wp->endpoint.sin.sin_addr, 32)) {
				/* Would route the tunnel's own packets into itself. */
				reply_error(r, P2PWG__STATUS__INVALID,
					    "peer %zu: endpoint inside the overlay prefix", i);
				return -EINVAL;
			}
		} else if (e->addr.len == 16) {
			wp->endpoint.sin6.sin6_family = AF_INET6;
			memcpy(&wp->endpoint.sin6.sin6_addr, e->addr.data, 16);
			wp->endpoint.sin6.sin6_port = htons((uint16_t)e->port);
			/* ::ffff:a.b.c.d is the same IPv4 address in another spelling. */
			if (IN6_IS_ADDR_V4MAPPED(&wp->endpoint.sin6.sin6_addr)) {
				struct in_addr v4;

				memcpy(&v4, e->addr.data + 12, 4);
				if (in_overlay(a, v4, 32)) {
					reply_error(r, P2PWG__STATUS__INVALID,
						    "peer %zu: endpoint inside the overlay prefix", i);
					return -EINVAL;
				}
			}
		} else {
			reply_error(r, P2PWG__STATUS__INVALID,
				    "peer %zu: endpoint address must be 4 or 16 bytes, got %zu", i,
				    e->addr.len);
			return -EINVAL;
		}
	}
	for (size_t j = 0; j < p->n_allowed_ips; j++) {
		const P2pwg__Prefix *ap = p->allowed_ips[j];
		struct wg_allowedip aip = { .family = AF_INET };

		if (ap->addr.len != 4 || ap->prefix_len > 32) {
			reply_error(r, P2PWG__STATUS__INVALID,
				    "peer %zu: allowed IP %zu must be IPv4 with a prefix of 0..32", i, j);
			return -EINVAL;
		}
		memcpy(&aip.ip4, ap->addr.data, 4);
		aip.cidr = (uint8_t)ap->prefix_len;
		if (!in_overlay(a, aip.ip4, aip.cidr)) {
			reply_error(r, P2PWG__STATUS__INVALID,
				    "peer %zu: allowed IP %s/%u is outside the overlay prefix", i,
				    inet_ntoa(aip.ip4), aip.cidr);
			return -EINVAL;
		}
		if (aip.ip4.s_addr & ~netaddr_mask4(aip.cidr)) {
			reply_error(r, P2PWG__STATUS__INVALID,
				    "peer %zu: allowed IP %s/%u has host bits set", i,
				    inet_ntoa(aip.ip4), aip.cidr);
			return -EINVAL;
		}
		if (w->has_addr && netaddr_prefix4_inside(w->addr, 32, aip.ip4, aip.cidr)) {
			reply_error(r, P2PWG__STATUS__INVALID,
				    "peer %zu: allowed IP %s/%u covers this node's own address", i,
				    inet_ntoa(aip.ip4), aip.cidr);
			return -EINVAL;
		}
		/* Two peers claiming one address would silently steal it. */
		for (size_t q = 0; q + 1 < w->dev->n_peers; q++)
			for (size_t m = 0; m < w->dev->peers[q].n_allowedips; m++) {
				const struct wg_allowedip *o = &w->dev->peers[q].allowedips[m];
				uint8_t c = o->cidr < aip.cidr ? o->cidr : aip.cidr;

				if ((o->ip4.s_addr & netaddr_mask4(c)) ==
				    (aip.ip4.s_addr & netaddr_mask4(c))) {
					reply_error(r, P2PWG__STATUS__INVALID,
						    "peer %zu: allowed IP %s/%u overlaps peer %zu's", i,
						    inet_ntoa(aip.ip4), aip.cidr, q);
					return -EINVAL;
				}
			}
		for (size_t m = 0; m < wp->n_allowedips; m++)
			if (wp->allowedips[m].ip4.s_addr == aip.ip4.s_addr &&
			    wp->allowedips[m].cidr == aip.cidr) {
				reply_error(r, P2PWG__STATUS__INVALID,
					    "peer %zu: allowed IP %zu is listed twice", i, j);
				return -EINVAL;
			}
		if (wg_peer_add_allowedip(wp, &aip)) {
			reply_error(r, P2PWG__STATUS__FAILED, "out of memory");
			return -ENOMEM;
		}
	}
	wp->flags |= WGPEER_REPLACE_ALLOWEDIPS;
	return 0;
}

static int check_set_peers(struct agent *a, const P2pwg__SetPeers *sp, struct want *w,
			   struct reply *r)
{
	if (sp->listen_port && sp->listen_port != a->cfg.listen_port) {
		reply_error(r, P2PWG__STATUS__INVALID,
			    "listen port %u differs from the agent's WireGuard port %u",
			    sp->listen_port, a->cfg.listen_port);
		return -EINVAL;
	}
	if (sp->n_peers > AGENT_MAX_PEERS) {
		reply_error(r, P2PWG__STATUS__INVALID, "%zu peers, at most %u", sp->n_peers,
			    AGENT_MAX_PEERS);
		return -EINVAL;
	}
	if (sp->address && check_address(a, sp->address, w, r))
		return -EINVAL;
	if (!w->has_addr && sp->n_peers) {
		reply_error(r, P2PWG__STATUS__INVALID, "peers given without an own address");
		return -EINVAL;
	}
	w->dev = wg_device_new(a->cfg.ifname);
	if (!w->dev) {
		reply_error(r, P2PWG__STATUS__FAILED, "out of memory");
		return -ENOMEM;
	}
	w->dev->flags = WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_LISTEN_PORT;
	memcpy(w->dev->private_key, a->private_key, WG_KEY_LEN);
	w->dev->listen_port = a->cfg.listen_port;
	for (size_t i = 0; i < sp->n_peers; i++)
		if (check_peer(a, i, sp->peers[i], w, r))
			return -EINVAL;
	return 0;
}

/* ==== handlers ==== */

static void log_changes(const struct wg_device *change)
{
	char k[B64_KEY_LEN + 1], ep[64], aips[128], ka[16];

	for (size_t i = 0; i < change->n_peers; i++) {
		const struct wg_peer *p = &change->peers[i];
		size_t off = 0;

		aips[0] = '\0';
		for (size_t j = 0; j < p->n_allowedips && off < sizeof(aips) - 20; j++)
			off += snprintf(aips + off, sizeof(aips) - off, "%s%s/%u", j ? "," : "",
					inet_ntoa(p->allowedips[j].ip4), p->allowedips[j].cidr);
		snprintf(ka, sizeof(ka), "%u", p->keepalive);
		if (p->flags & WGPEER_REMOVE_ME)
			log_info("wg", "remove peer %s", keystr(p->public_key, k));
		else
			log_info("wg", "%s peer %s endpoint %s allowed %s keepalive %s",
				 (p->flags & WGPEER_UPDATE_ONLY) ? "update" : "add",
				 keystr(p->public_key, k), wg_endpoint_str(&p->endpoint, ep, sizeof(ep)),
				 (p->flags & WGPEER_REPLACE_ALLOWEDIPS) ? aips : "(same)",
				 (p->flags & WGPEER_HAS_KEEPALIVE) ? ka : "(same)");
	}
}

/* The peers whose path checks are answered: those just applied. A failure
 * keeps the last set (it only delays checks of new peers). */
static void set_check_peers(struct agent *a, const struct wg_device *d)
{
	uint8_t(*keys)[32] = calloc(d->n_peers + 1, 32);

	if (keys) {
		for (size_t i = 0; i < d->n_peers; i++)
			memcpy(keys[i], d->peers[i].public_key, 32);
		if (connchk_set_peers(&a->chk, (const uint8_t(*)[32])keys, d->n_peers))
			log_warn("agent", "out of memory keeping the path check keys");
	}
	free(keys);
}

/* ==== the agent's view of the interface ==== */

void agent_forget_device(struct agent *a)
{
	wg_device_free(a->model);
	a->model = NULL;
	a->model_wanted = false;
	a->model_stale = false;
}

/* Write change and keep the model in step; a failure leaves the interface
 * unknown (partly changed), so the next SetPeers reads it. */
static int apply_change(struct agent *a, const struct wg_device *change)
{
	int ret = a->ops.wg->set(a->ops.wg, change);

	if (!ret)
		ret = diff_apply(a->model, change);
	if (ret) {
		agent_forget_device(a);
		return ret;
	}
	if (a->ops.wg->known)
		a->ops.wg->known(a->ops.wg, a->model);
	return 0;
}

/* What puts back a SetPeers the read cur no longer holds: the model's peers,
 * the agent's key and port. An endpoint counts only for a peer cur lacks: WireGuard
 * roams, and the agent never overwrites a learnt endpoint without news. */
static int restore_change(const struct agent *a, const struct wg_device *cur,
			  struct wg_device **change)
{
	struct wg_device *want = NULL;
	int ret = wg_device_dup(a->model, &want);

	if (ret)
		return ret;
	want->flags = WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_LISTEN_PORT;
	memcpy(want->private_key, a->private_key, WG_KEY_LEN);
	want->listen_port = a->cfg.listen_port;
	for (size_t i = 0; i < want->n_peers; i++)
		if (wg_device_find_peer(cur, want->peers[i].public_key))
			memset(&want->peers[i].endpoint, 0, sizeof(want->peers[i].endpoint));
	ret = diff_device(cur, want, change);
	wg_device_free(want);
	return ret;
}

/*
 * Read the interface; the read becomes the model. If the model held a
 * SetPeers and the read differs from it (a peer removed or added by someone
 * else, allowed IPs or keepalive changed), the SetPeers is put back first.
 * *out, if given, gets the read (as put back), owned by the caller;
 * *put_back, if given, whether anything was.
 */
static int read_device(struct agent *a, uint64_t now_ms, struct wg_device **out, bool *put_back)
{
	struct wg_device *cur = NULL, *change = NULL, *copy = NULL;
	int ret = a->ops.wg->get(a->ops.wg, a->cfg.ifname, &cur);

	if (ret) {
		/* Kept, to put back once a read works: a wireguard-go that did not
		 * answer in time changed nothing. */
		a->model_stale = true;
		return ret;
	}
	if (a->model && a->model_wanted) {
		ret = restore_change(a, cur, &change);
		if (ret)
			goto out;
		if (!diff_is_empty(change)) {
			log_warn("wg", "%s was changed behind the agent (%zu peers differ); "
				       "putting the last peer set back", a->cfg.ifname, change->n_peers);
			ret = a->ops.wg->set(a->ops.wg, change);
			if (ret) {
				log_err("wg", "cannot put %s back: %s", a->cfg.ifname, strerror(-ret));
				agent_forget_device(a);
				goto out;
			}
			log_changes(change);
			if (put_back)
				*put_back = true;
			ret = diff_apply(cur, change);
			if (ret)
				goto out;
		}
	}
	if (out) {
		ret = wg_device_dup(cur, &copy);
		if (ret)
			goto out;
	}
	wg_device_free(a->model);
	a->model = cur;
	a->model_read_ms = now_ms;
	a->model_stale = false;
	cur = NULL;
	if (change && !diff_is_empty(change) && a->ops.wg->known)
		a->ops.wg->known(a->ops.wg, a->model);
	if (out)
		*out = copy;
out:
	if (ret)
		agent_forget_device(a);
	wg_device_free(cur);
	wg_device_free(change);
	return ret;
}

int agent_check_device(struct agent *a, uint64_t now_ms)
{
	uint64_t due;

	if (!a->model || !a->model_wanted)
		return -1;
	due = a->model_stale ? now_ms : a->model_read_ms + AGENT_MODEL_MAX_AGE_MS;
	if (now_ms < due)
		return (int)(due - now_ms);
	if (read_device(a, now_ms, NULL, NULL)) {
		log_warn("wg", "cannot read %s to check it; trying again in 1 s", a->cfg.ifname);
		return 1000;
	}
	return AGENT_MODEL_MAX_AGE_MS;
}

static void handle_set_peers(struct agent *a, const P2pwg__SetPeers *sp, struct reply *r,
			     uint64_t now_ms)
{
	struct want w = { 0 };
	struct wg_device *change = NULL;
	struct in_addr cur_addr;
	uint8_t cur_len;
	bool addr_ok, put_back = false;
	int ret;

	if (check_set_peers(a, sp, &w, r))
		goto out;
	/* The diff is made against the agent's own view: a change to one peer
	 * writes that peer and reads nothing (a read of 245 peers costs wireguard-go
	 * and the parse milliseconds). An unknown or old view is read first. */
	if (!a->model || a->model_stale || now_ms - a->model_read_ms >= AGENT_MODEL_MAX_AGE_MS) {
		ret = read_device(a, now_ms, NULL, &put_back);
		if (ret) {
			reply_error(r, P2PWG__STATUS__FAILED, "reading %s: %s", a->cfg.ifname,
				    strerror(-ret));
			goto out;
		}
		r->resp.changed = put_back;
	}
	ret = diff_device(a->model, w.dev, &change);
	if (ret) {
		reply_error(r, P2PWG__STATUS__FAILED, "out of memory");
		goto out;
	}
	if (!diff_is_empty(change)) {
		ret = apply_change(a, change);
		if (ret) {
			reply_error(r, P2PWG__STATUS__FAILED, "configuring %s: %s", a->cfg.ifname,
				    strerror(-ret));
			goto out;
		}
		log_changes(change);
		r->resp.changed = true;
	}
	a->model_wanted = true;
	set_check_peers(a, w.dev);
	addr_ok = a->ops.addr_get(a->ops.ctx, &cur_addr, &cur_len) == 0;
	if (w.has_addr && (!addr_ok || cur_addr.s_addr != w.addr.s_addr || cur_len != w.addr_len)) {
		ret = a->ops.addr_set(a->ops.ctx, &w.addr, w.addr_len);
		if (ret) {
			reply_error(r, P2PWG__STATUS__FAILED, "setting address: %s", strerror(-ret));
			goto out;
		}
		log_info("wg", "address %s/%u on %s", inet_ntoa(w.addr), w.addr_len, a->cfg.ifname);
		r->resp.changed = true;
	} else if (!w.has_addr && addr_ok) {
		ret = a->ops.addr_set(a->ops.ctx, NULL, 0);
		if (ret) {
			reply_error(r, P2PWG__STATUS__FAILED, "removing address: %s", strerror(-ret));
			goto out;
		}
		log_info("wg", "address removed from %s", a->cfg.ifname);
		r->resp.changed = true;
	}
	/* The model's counters and handshake times are those of its last read. */
	ret = fill_device(a, r, a->model);
	if (ret) {
		reply_error(r, P2PWG__STATUS__FAILED, "out of memory");
		goto out;
	}
	r->resp.msg_case = P2PWG__RESPONSE__MSG_DEVICE;
	r->resp.device = &r->device;
out:
	wg_device_free(w.dev);
	wg_device_free(change);
}

/* Read the interface into r (which keeps the read) and describe it. */
static int fill_device_read(struct agent *a, struct reply *r, uint64_t now_ms)
{
	int ret = read_device(a, now_ms, &r->dev, NULL);

	return ret ? ret : fill_device(a, r, r->dev);
}

static void handle_hello(struct agent *a, const P2pwg__Hello *h, struct reply *r,
			 uint64_t now_ms)
{
	int ret;

	if (h->version != P2PWG__PROTOCOL_VERSION__PROTOCOL_CURRENT) {
		reply_error(r, P2PWG__STATUS__INVALID, "protocol version %u, this agent speaks %u",
			    h->version, P2PWG__PROTOCOL_VERSION__PROTOCOL_CURRENT);
		return;
	}
	ret = fill_device_read(a, r, now_ms);
	if (ret) {
		reply_error(r, P2PWG__STATUS__FAILED, "reading %s: %s", a->cfg.ifname, strerror(-ret));
		return;
	}
	p2pwg__hello_reply__init(&r->hello);
	r->hello.version = P2PWG__PROTOCOL_VERSION__PROTOCOL_CURRENT;
	r->hello.public_key.data = a->public_key;
	r->hello.public_key.len = WG_KEY_LEN;
	r->hello.device = &r->device;
	r->resp.msg_case = P2PWG__RESPONSE__MSG_HELLO;
	r->resp.hello = &r->hello;
}

static void handle_get_device(struct agent *a, struct reply *r, uint64_t now_ms)
{
	int ret = fill_device_read(a, r, now_ms);

	if (ret) {
		reply_error(r, P2PWG__STATUS__FAILED, "reading %s: %s", a->cfg.ifname, strerror(-ret));
		return;
	}
	r->resp.msg_case = P2PWG__RESPONSE__MSG_DEVICE;
	r->resp.device = &r->device;
}

/* The relay's proof of membership: a MAC keyed by the secret shared with one
 * peer. Any well-formed key is answered; the key itself never leaves. */
static void handle_relay_auth(struct agent *a, const P2pwg__RelayAuth *ra, struct reply *r)
{
	static const uint8_t zero[WG_KEY_LEN];
	int ret;

	if (ra->peer_key.len != WG_KEY_LEN || !memcmp(ra->peer_key.data, zero, WG_KEY_LEN) ||
	    !memcmp(ra->peer_key.data, a->public_key, WG_KEY_LEN)) {
		reply_error(r, P2PWG__STATUS__INVALID, "relay auth: peer key must be 32 bytes, "
			    "not zero, not this node's");
		return;
	}
	ret = relaymac_compute(a->private_key, ra->peer_key.data, ra->challenge.data,
			       ra->challenge.len, r->mac_buf);
	if (ret) {
		reply_error(r, ret == -EINVAL ? P2PWG__STATUS__INVALID : P2PWG__STATUS__FAILED,
			    "relay auth: %s", ret == -EINVAL ? "challenge of 16..128 bytes and a "
			    "usable peer key needed" : "libcrypto failed");
		return;
	}
	p2pwg__relay_auth_reply__init(&r->relay_auth);
	r->relay_auth.mac.data = r->mac_buf;
	r->relay_auth.mac.len = RELAYMAC_LEN;
	r->resp.msg_case = P2PWG__RESPONSE__MSG_RELAY_AUTH;
	r->resp.relay_auth = &r->relay_auth;
}

const char *agent_check_stun_request(const uint8_t *msg, size_t len)
{
	uint32_t cookie;

	if (len < 20)
		return "shorter than a STUN header";
	if (len > AGENT_STUN_MAX_LEN)
		return "longer than 548 bytes";
	if (msg[0] != 0x00 || msg[1] != 0x01)
		return "not a Binding Request";
	if ((size_t)((msg[2] << 8) | msg[3]) != len - 20 || (len & 3))
		return "length field does not match";
	memcpy(&cookie, msg + 4, 4);
	if (ntohl(cookie) != STUN_MAGIC)
		return "no magic cookie";
	return NULL;
}

/* Returns true if the reply is deferred (the exchange is pending). */
static bool handle_stun(struct agent *a, int client, const P2pwg__StunExchange *st,
			struct reply *r, uint64_t now_ms)
{
	struct agent_stun_pending *slot = NULL;
	struct sockaddr_in to = { .sin_family = AF_INET };
	const char *why;
	int ret;

	if (!st->server || st->server->addr.len != 4 || st->server->port < 1 ||
	    st->server->port > 65535) {
		reply_error(r, P2PWG__STATUS__INVALID, "STUN server must be an IPv4 address and port 1..65535");
		return false;
	}
	if (st->timeout_ms > AGENT_STUN_MAX_TIMEOUT_MS) {
		reply_error(r, P2PWG__STATUS__INVALID, "timeout %u ms, at most %u", st->timeout_ms,
			    AGENT_STUN_MAX_TIMEOUT_MS);
		return false;
	}
	why = agent_check_stun_request(st->request.data, st->request.len);
	if (why) {
		reply_error(r, P2PWG__STATUS__INVALID, "STUN request refused: %s", why);
		return false;
	}
	memcpy(&to.sin_addr, st->server->addr.data, 4);
	to.sin_port = htons((uint16_t)st->server->port);
	if (in_overlay(a, to.sin_addr, 32) || to.sin_addr.s_addr == htonl(INADDR_ANY) ||
	    IN_MULTICAST(ntohl(to.sin_addr.s_addr)) || to.sin_addr.s_addr == htonl(INADDR_BROADCAST)) {
		reply_error(r, P2PWG__STATUS__INVALID, "STUN server address %s not allowed",
			    inet_ntoa(to.sin_addr));
		return false;
	}
	for (int i = 0; i < AGENT_STUN_MAX_PENDING; i++) {
		if (a->stun[i].used && !memcmp(a->stun[i].txid, st->request.data + 8, 12)) {
			reply_error(r, P2PWG__STATUS__INVALID, "transaction id already in flight");
			return false;
		}
		if (!a->stun[i].used && !slot)
			slot = &a->stun[i];
	}
	if (!slot) {
		reply_error(r, P2PWG__STATUS__BUSY, "%d STUN exchanges already in flight",
			    AGENT_STUN_MAX_PENDING);
		return false;
	}
	ret = a->ops.stun_send(a->ops.ctx, &to, st->request.data, st->request.len);
	if (ret) {
		reply_error(r, P2PWG__STATUS__FAILED, "sending to %s: %s", inet_ntoa(to.sin_addr),
			    strerror(-ret));
		return false;
	}
	slot->used = true;
	slot->client = client;
	slot->id = r->resp.id;
	slot->server = to;
	memcpy(slot->txid, st->request.data + 8, 12);
	slot->deadline_ms = now_ms + (st->timeout_ms ? st->timeout_ms : 1000);
	return true;
}

/* ==== unpacking within a heap budget ==== */

struct unpack_budget {
	size_t left;
	bool over;
};

static void *budget_alloc(void *data, size_t size)
{
	struct unpack_budget *b = data;

	/* Frees are not credited back: one unpack is short-lived and one-way. */
	if (size > b->left) {
		b->over = true;
		return NULL;
	}
	b->left -= size;
	return malloc(size);
}

static void budget_free(void *data, void *p)
{
	free(p);
}

/* ==== path checks (connchk) ==== */

static bool handle_path_check(struct agent *a, int client, const P2pwg__PathCheck *pc,
			      struct reply *r, uint64_t now_ms)
{
	char why[160];
	int st = connchk_request(&a->chk, client, r->resp.id, pc, now_ms, why, sizeof(why));

	if (st)
		reply_error(r, (P2pwg__Status)st, "path check refused: %s", why);
	return st == 0;
}

static int chk_send(void *ctx, const struct sockaddr_in *to, const uint8_t *msg, size_t len)
{
	struct agent *a = ctx;

	return a->ops.stun_send(a->ops.ctx, to, msg, len);
}

static int chk_reply(void *ctx, int client, const P2pwg__Response *resp)
{
	struct agent *a = ctx;
	size_t len = p2pwg__response__get_packed_size(resp);
	uint8_t buf[256];

	if (len > sizeof(buf))
		return -EMSGSIZE;
	p2pwg__response__pack(resp, buf);
	return a->ops.reply(a->ops.ctx, client, buf, len);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ==== entry points ==== */

void agent_init(struct agent *a, const struct agent_config *cfg, const struct agent_ops *ops,
		const uint8_t private_key[WG_KEY_LEN], const uint8_t public_key[WG_KEY_LEN])
{
	memset(a, 0, sizeof(*a));
	a->cfg = *cfg;
	a->ops = *ops;
	memcpy(a->private_key, private_key, WG_KEY_LEN);
	memcpy(a->public_key, public_key, WG_KEY_LEN);
	connchk_init(&a->chk, &(struct connchk_ops){ .send = chk_send, .reply = chk_reply, .ctx = a },
		     a->private_key, a->public_key);
}

void agent_cleanup(struct agent *a)
{
	explicit_bzero(a->private_key, WG_KEY_LEN);
	agent_forget_device(a);
	connchk_free(&a->chk);
}

void agent_handle(struct agent *a, int client, const uint8_t *buf, size_t len, size_t full_len,
		  uint64_t now_ms)
{
	struct unpack_budget budget = { .left = AGENT_UNPACK_HEAP_MAX };
	ProtobufCAllocator alloc = { .alloc = budget_alloc, .free = budget_free,
				     .allocator_data = &budget };
	P2pwg__Request *req = NULL;
	struct reply r;
	bool deferred = false;

	reply_init(&r, 0);
	if (full_len > AGENT_REQUEST_MAX || full_len > len) {
		reply_error(&r, P2PWG__STATUS__INVALID, "request of %zu bytes exceeds the %d-byte limit",
			    full_len, AGENT_REQUEST_MAX);
		goto out;
	}
	req = p2pwg__request__unpack(&alloc, len, buf);
	if (!req) {
		if (budget.over)
			reply_error(&r, P2PWG__STATUS__INVALID,
				    "request of %zu bytes needs over %d bytes to unpack", len,
				    AGENT_UNPACK_HEAP_MAX);
		else
			reply_error(&r, P2PWG__STATUS__INVALID, "malformed request (%zu bytes)", len);
		goto out;
	}
	r.resp.id = req->id;
	switch (req->msg_case) {
	case P2PWG__REQUEST__MSG_HELLO:
		handle_hello(a, req->hello, &r, now_ms);
		break;
	case P2PWG__REQUEST__MSG_GET_DEVICE:
		handle_get_device(a, &r, now_ms);
		break;
	case P2PWG__REQUEST__MSG_SET_PEERS:
		handle_set_peers(a, req->set_peers, &r, now_ms);
		break;
	case P2PWG__REQUEST__MSG_STUN_EXCHANGE:
		deferred = handle_stun(a, client, req->stun_exchange, &r, now_ms);
		break;
	case P2PWG__REQUEST__MSG_PATH_CHECK:
		deferred = handle_path_check(a, client, req->path_check, &r, now_ms);
		break;
	case P2PWG__REQUEST__MSG_RELAY_AUTH:
		handle_relay_auth(a, req->relay_auth, &r);
		break;
	default:
		reply_error(&r, P2PWG__STATUS__UNSUPPORTED, "unknown request type %d",
			    (int)req->msg_case);
	}
out:
	if (!deferred)
		send_reply(a, client, &r);
	reply_free(&r);
	if (req)
		p2pwg__request__free_unpacked(req, &alloc);
}

void agent_stun_input(struct agent *a, const uint8_t *msg, size_t len,
		      const struct sockaddr_in *from)
{
	if (len < 20 || len > AGENT_STUN_MAX_LEN)
		return;
	if (connchk_input(&a->chk, msg, len, from, mono_ms()))
		return;
	for (int i = 0; i < AGENT_STUN_MAX_PENDING; i++) {
		struct agent_stun_pending *s = &a->stun[i];
		struct reply r;

		if (!s->used || memcmp(s->txid, msg + 8, 12) ||
		    s->server.sin_addr.s_addr != from->sin_addr.s_addr ||
		    s->server.sin_port != from->sin_port)
			continue;
		reply_init(&r, s->id);
		memcpy(r.stun_buf, msg, len);
		p2pwg__stun_reply__init(&r.stun);
		p2pwg__endpoint__init(&r.stun_from);
		r.stun.response.data = r.stun_buf;
		r.stun.response.len = len;
		r.stun_from.addr.data = (uint8_t *)&s->server.sin_addr;
		r.stun_from.addr.len = 4;
		r.stun_from.port = ntohs(s->server.sin_port);
		r.stun.from = &r.stun_from;
		r.resp.msg_case = P2PWG__RESPONSE__MSG_STUN;
		r.resp.stun = &r.stun;
		s->used = false;
		send_reply(a, s->client, &r);
		reply_free(&r);
		return;
	}
}

int agent_tick(struct agent *a, uint64_t now_ms)
{
	int64_t next = connchk_tick(&a->chk, now_ms);

	for (int i = 0; i < AGENT_STUN_MAX_PENDING; i++) {
		struct agent_stun_pending *s = &a->stun[i];
		struct reply r;

		if (!s->used)
			continue;
		if (s->deadline_ms > now_ms) {
			int64_t d = (int64_t)(s->deadline_ms - now_ms);

			if (next < 0 || d < next)
				next = d;
			continue;
		}
		reply_init(&r, s->id);
		reply_error(&r, P2PWG__STATUS__TIMEOUT, "no STUN reply from %s:%u",
			    inet_ntoa(s->server.sin_addr), ntohs(s->server.sin_port));
		s->used = false;
		send_reply(a, s->client, &r);
	}
	return (int)next;
}

void agent_client_gone(struct agent *a, int client)
{
	for (int i = 0; i < AGENT_STUN_MAX_PENDING; i++)
		if (a->stun[i].used && a->stun[i].client == client)
			a->stun[i].used = false;
	connchk_client_gone(&a->chk, client);
}

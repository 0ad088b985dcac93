// SPDX-License-Identifier: MIT
#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "agentlink.h"
#include "b64.h"
#include "log.h"
#include "mesh.h"
#include "nodeinfo.h"
#include "peerlist.h"
#include "stunprobe.h"

#define TEST_TIMEOUT_MS 1000
#define RECOMPUTE_DELAY_MS 300
#define STALE_HANDSHAKE_S 180 /* WireGuard re-handshakes every 120 s on a live tunnel */

struct entry {
	char *url;
	bool known;
	struct nodeinfo info;
	char error[200];
	time_t ok_at;
	void *fetch;
	/* from the agent's GetDevice, matched by key */
	bool on_device;
	int64_t handshake;
	uint64_t rx, tx;
	char endpoint[64];
	bool stale_reported;
	/* the /test probe over the overlay */
	void *test;
	bool test_ok;
	time_t test_at;
	char test_result[200];
	struct node *node;
};

struct node {
	const struct config *c;
	struct loop *l;
	struct agentlink *agent;
	struct stunprobe stun;
	struct mesh_params params;

	struct peerlist *list;
	struct entry *e;
	size_t n;
	/* The interface's peers as wgagent last reported them (Hello, GetDevice):
	 * what stands in for a list entry whose node.json cannot be read now. */
	struct devpeer {
		uint8_t key[32];
		struct in_addr aip;
		bool has_ep;
		struct sockaddr_in ep;
	} *dev;
	size_t n_dev;
	char etag[256];
	void *list_fetch;
	time_t list_at;
	char list_error[256];
	size_t outstanding;

	bool have_key;
	uint8_t pubkey[32];
	uint16_t listen_port;
	char ifname[32], backend[16];

	struct mesh_state want, applied;
	bool applied_valid, set_inflight, set_again, said_absent;

	struct stunprobe_summary stun_sum;
	bool stun_have;
	time_t stun_at;
	uint64_t stun_last_start;

	struct loop_timer t_poll, t_test, t_stun, t_dev, t_recompute;
	time_t started;
	uint64_t m_list_ok, m_list_fail, m_list_304, m_node_ok, m_node_fail, m_setpeers,
		m_setpeers_fail, m_stun, m_stun_fail, m_test_ok, m_test_fail;
	uint64_t rx_total, tx_total;
};

static char *keyshort(const uint8_t *key, char *buf)
{
	b64_key_encode(key, buf);
	buf[8] = '\0';
	return buf;
}

static struct fetch_opts https_opts(struct node *n, size_t max)
{
	return (struct fetch_opts){ .timeout_ms = n->c->http_timeout_ms, .max_bytes = max,
				    .ca_bundle = n->c->ca_bundle[0] ? n->c->ca_bundle : NULL,
				    .allow_http = n->c->allow_http, .follow_https_redirects = true };
}

/* ==== deciding and applying the peer set ==== */

static void send_setpeers(struct node *n);

static void on_setpeers(void *arg, const P2pwg__Response *r, const char *error)
{
	struct node *n = arg;
	char k[B64_KEY_LEN + 1], ep[64];

	n->set_inflight = false;
	if (!r || r->status != P2PWG__STATUS__OK) {
		n->m_setpeers_fail++;
		log_err("wg", "wgagent did not apply the peer set: %s; retrying next cycle",
			r ? r->error : error);
		return;
	}
	n->m_setpeers++;
	n->applied = n->want;
	n->applied_valid = true;
	if (n->applied.found_self)
		log_info("wg", "this node is position %zu, overlay %s/32%s", n->applied.self_index,
			 inet_ntoa(n->applied.self_addr), r->changed ? "" : " (interface already so)");
	for (size_t i = 0; i < n->applied.n_peers; i++) {
		const struct mesh_peer *p = &n->applied.peers[i];

		if (p->has_endpoint)
			snprintf(ep, sizeof(ep), "%s:%u", inet_ntoa(p->endpoint.sin_addr),
				 ntohs(p->endpoint.sin_port));
		else
			snprintf(ep, sizeof(ep), "unknown");
		log_info("wg", "peer %s at position %zu endpoint %s", keyshort(p->key, k), p->index, ep);
	}
	if (n->set_again) {
		n->set_again = false;
		send_setpeers(n);
	}
}

static void send_setpeers(struct node *n)
{
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__SetPeers sp = P2PWG__SET_PEERS__INIT;
	P2pwg__Prefix addr = P2PWG__PREFIX__INIT;
	static P2pwg__Peer peers[MESH_MAX_PEERS];
	static P2pwg__Peer *ptrs[MESH_MAX_PEERS];
	static P2pwg__Endpoint eps[MESH_MAX_PEERS];
	static P2pwg__Prefix aips[MESH_MAX_PEERS];
	static P2pwg__Prefix *aip_ptrs[MESH_MAX_PEERS];
	struct mesh_state *w = &n->want;
	int ret;

	if (n->set_inflight) {
		n->set_again = true;
		return;
	}
	if (w->found_self) {
		addr.addr.data = (uint8_t *)&w->self_addr;
		addr.addr.len = 4;
		addr.prefix_len = n->c->overlay_len;
		sp.address = &addr;
	}
	sp.listen_port = n->listen_port;
	for (size_t i = 0; i < w->n_peers; i++) {
		struct mesh_peer *mp = &w->peers[i];

		p2pwg__peer__init(&peers[i]);
		peers[i].public_key.data = mp->key;
		peers[i].public_key.len = 32;
		peers[i].keepalive = mp->keepalive;
		if (mp->has_endpoint) {
			p2pwg__endpoint__init(&eps[i]);
			eps[i].addr.data = (uint8_t *)&mp->endpoint.sin_addr;
			eps[i].addr.len = 4;
			eps[i].port = ntohs(mp->endpoint.sin_port);
			peers[i].endpoint = &eps[i];
		}
		p2pwg__prefix__init(&aips[i]);
		aips[i].addr.data = (uint8_t *)&mp->overlay;
		aips[i].addr.len = 4;
		aips[i].prefix_len = 32;
		aip_ptrs[i] = &aips[i];
		peers[i].allowed_ips = &aip_ptrs[i];
		peers[i].n_allowed_ips = 1;
		ptrs[i] = &peers[i];
	}
	sp.peers = ptrs;
	sp.n_peers = w->n_peers;
	req.msg_case = P2PWG__REQUEST__MSG_SET_PEERS;
	req.set_peers = &sp;
	ret = agentlink_call(n->agent, &req, 10000, on_setpeers, n);
	if (ret) {
		log_warn("wg", "cannot reach wgagent to apply the peer set (%s); will retry",
			 strerror(-ret));
		return;
	}
	n->set_inflight = true;
}

/* Remember the interface's peers (one /32 allowed IP each, as controld sets them). */
static void remember_device(struct node *n, const P2pwg__Device *d)
{
	struct devpeer *dp = calloc(d->n_peers + 1, sizeof(*dp));
	size_t k = 0;

	if (!dp)
		return;
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
		k++;
	}
	free(n->dev);
	n->dev = dp;
	n->n_dev = k;
}

/* An entry we cannot read now but whose position's address the interface
 * already serves: keep that peer as it is rather than drop a working tunnel. */
static bool stand_in(struct node *n, size_t index, struct nodeinfo *info)
{
	struct in_addr a;

	if (mesh_address(&n->params, index, &a))
		return false;
	for (size_t i = 0; i < n->n_dev; i++) {
		if (n->dev[i].aip.s_addr != a.s_addr)
			continue;
		memset(info, 0, sizeof(*info));
		memcpy(info->wg_pubkey, n->dev[i].key, 32);
		info->self_index = -1;
		info->has_public = n->dev[i].has_ep;
		info->public_ip = n->dev[i].ep.sin_addr;
		info->public_port = ntohs(n->dev[i].ep.sin_port);
		return true;
	}
	return false;
}

static void recompute(struct node *n)
{
	struct mesh_input *in;
	bool any_unknown = false;
	char k[B64_KEY_LEN + 1];

	if (!n->have_key || !n->list)
		return;
	in = calloc(n->n + 1, sizeof(*in));
	if (!in)
		return;
	for (size_t i = 0; i < n->n; i++) {
		in[i].url = n->e[i].url;
		in[i].known = n->e[i].known;
		in[i].info = n->e[i].info;
		if (!in[i].known)
			in[i].known = stand_in(n, i, &in[i].info);
		any_unknown |= !n->e[i].known;
	}
	mesh_compute(&n->params, n->pubkey, in, n->n, &n->want);
	free(in);
	if (!n->want.found_self) {
		/* Our own entry may just be unreadable now (our own /node.json before
		 * the agent answered, a gateway hiccup): change nothing until every
		 * entry has been read. Only a list read in full, without us, clears. */
		if (any_unknown) {
			log_debug("peer", "own entry not found among those read so far; changing nothing");
			if (n->applied_valid)
				n->want = n->applied;
			return;
		}
		if (!n->said_absent)
			log_info("peer", "this node (key %s) is not in the list yet (%zu entries%s); "
					 "no address and no peers until it is",
				 keyshort(n->pubkey, k), n->n,
				 any_unknown ? ", some not readable yet" : "");
		n->said_absent = true;
	} else {
		n->said_absent = false;
	}
	if (n->want.n_duplicate)
		log_warn("peer", "%zu list entries repeat a key already listed; each node is used at its first position",
			 n->want.n_duplicate);
	if (n->want.n_out_of_range)
		log_warn("peer", "%zu list entries lie beyond the overlay prefix and are ignored",
			 n->want.n_out_of_range);
	if (!n->applied_valid || !mesh_state_equal(&n->want, &n->applied))
		send_setpeers(n);
}

/* ==== node.json of every peer, all at once ==== */

static void on_node_json(void *arg, const struct fetch_result *r)
{
	struct entry *e = arg;
	struct node *n = e->node;
	struct nodeinfo info;
	char why[200] = "";

	e->fetch = NULL;
	if (r->code != CURLE_OK)
		snprintf(why, sizeof(why), "%s", r->error);
	else if (r->status != 200)
		snprintf(why, sizeof(why), "HTTP %ld", r->status);
	else if (r->truncated)
		snprintf(why, sizeof(why), "larger than %d bytes", NODEINFO_MAX_BYTES);
	else if (nodeinfo_parse(r->body, r->len, &info, why, sizeof(why)) == 0)
		why[0] = '\0';
	if (why[0]) {
		n->m_node_fail++;
		if (strcmp(e->error, why))
			log_warn("peer", "skipping %s: %s%s", e->url, why,
				 e->known ? " (keeping its last good node.json)" : "");
		snprintf(e->error, sizeof(e->error), "%s", why);
	} else {
		n->m_node_ok++;
		if (e->error[0])
			log_info("peer", "%s answers again", e->url);
		e->error[0] = '\0';
		/* A restarted node publishes its endpoint only once its STUN probe has
		 * answered: missing is not moved, so keep the endpoint we knew. */
		if (e->known && e->info.has_public && !info.has_public &&
		    !memcmp(e->info.wg_pubkey, info.wg_pubkey, 32)) {
			info.has_public = true;
			info.public_ip = e->info.public_ip;
			info.public_port = e->info.public_port;
		}
		e->known = true;
		e->info = info;
		e->ok_at = time(NULL);
	}
	/* Decide once the cycle is complete, or shortly after this answer if a
	 * slow peer is still outstanding: a dead peer never holds the rest back. */
	if (--n->outstanding == 0) {
		loop_timer_disarm(n->l, &n->t_recompute);
		recompute(n);
	} else if (!n->t_recompute.armed) {
		loop_timer_arm(n->l, &n->t_recompute, RECOMPUTE_DELAY_MS);
	}
}

static void recompute_now(void *arg)
{
	recompute(arg);
}

static void fetch_all(struct node *n)
{
	struct fetch_opts o = https_opts(n, NODEINFO_MAX_BYTES);

	for (size_t i = 0; i < n->n; i++) {
		struct entry *e = &n->e[i];

		if (e->fetch)
			continue; /* still running from the last cycle */
		log_info("peer", "fetch %s", e->url);
		e->fetch = fetch_start(n->l, e->url, &o, on_node_json, e);
		if (e->fetch)
			n->outstanding++;
	}
	if (!n->outstanding)
		recompute(n);
}

/* Replace the list, keeping what we know about URLs that stay. Transfers in
 * flight hold pointers into the old array: stop them all; the next cycle
 * (started right after) fetches again. */
static void set_list(struct node *n, struct peerlist *l)
{
	struct entry *e = calloc(l->n + 1, sizeof(*e));

	if (!e) {
		peerlist_free(l);
		return;
	}
	for (size_t j = 0; j < n->n; j++) {
		if (n->e[j].fetch) {
			fetch_cancel(n->l, n->e[j].fetch);
			n->e[j].fetch = NULL;
			n->outstanding--;
		}
		if (n->e[j].test) {
			fetch_cancel(n->l, n->e[j].test);
			n->e[j].test = NULL;
		}
	}
	for (size_t i = 0; i < l->n; i++) {
		for (size_t j = 0; j < n->n; j++)
			if (!strcmp(n->e[j].url, l->urls[i])) {
				e[i] = n->e[j];
				break;
			}
		e[i].url = l->urls[i];
		e[i].node = n;
	}
	free(n->e);
	peerlist_free(n->list);
	n->e = e;
	n->n = l->n;
	n->list = l;
}

static void on_list(void *arg, const struct fetch_result *r)
{
	struct node *n = arg;
	struct peerlist *l = NULL;
	char why[256] = "";

	n->list_fetch = NULL;
	if (r->code != CURLE_OK)
		snprintf(why, sizeof(why), "%s", r->error);
	else if (r->status == 304)
		n->m_list_304++;
	else if (r->status != 200)
		snprintf(why, sizeof(why), "HTTP %ld", r->status);
	else if (r->truncated)
		snprintf(why, sizeof(why), "larger than %d bytes", PEERLIST_MAX_BYTES);
	else
		peerlist_parse(r->body, r->len, n->c->allow_http, &l, why, sizeof(why));
	if (why[0]) {
		n->m_list_fail++;
		if (strcmp(n->list_error, why))
			log_warn("peer", "peer list %s: %s; %s", n->c->gist_url, why,
				 n->list ? "keeping the last good list" : "no list yet");
		snprintf(n->list_error, sizeof(n->list_error), "%s", why);
		n->etag[0] = '\0';
	} else {
		if (n->list_error[0])
			log_info("peer", "peer list readable again");
		n->list_error[0] = '\0';
		n->list_at = time(NULL);
		if (l) {
			n->m_list_ok++;
			snprintf(n->etag, sizeof(n->etag), "%s", r->etag);
			if (!n->list || !peerlist_equal(n->list, l)) {
				log_info("peer", "peer list: %zu entries%s", l->n, n->list ? " (changed)" : "");
				set_list(n, l);
			} else {
				peerlist_free(l);
			}
		}
	}
	if (n->list)
		fetch_all(n);
}

static void poll_now(void *arg)
{
	struct node *n = arg;
	struct fetch_opts o = https_opts(n, PEERLIST_MAX_BYTES);

	loop_timer_arm(n->l, &n->t_poll, (uint64_t)n->c->poll_interval_s * 1000);
	if (n->list_fetch) {
		log_debug("peer", "the previous list fetch is still running; skipping this poll");
		return;
	}
	o.if_none_match = n->etag;
	n->list_fetch = fetch_start(n->l, n->c->gist_url, &o, on_list, n);
	if (!n->list_fetch)
		log_err("peer", "cannot start fetching %s", n->c->gist_url);
}

/* ==== STUN ==== */

static void on_stun(void *arg, const struct stunprobe_summary *s)
{
	struct node *n = arg;
	bool changed;

	n->m_stun++;
	if (!s->has_public) {
		n->m_stun_fail++;
		if (!s->disagree) /* stunprobe names the servers that disagree */
			log_warn("stun", "no STUN server answered (%d asked)%s", s->n_servers,
				 n->stun_have ? "; keeping the last known endpoint" : "");
		return;
	}
	changed = !n->stun_have || n->stun_sum.public_ep.sin_addr.s_addr != s->public_ep.sin_addr.s_addr ||
		  n->stun_sum.public_ep.sin_port != s->public_ep.sin_port || n->stun_sum.nat != s->nat;
	n->stun_sum = *s;
	n->stun_have = true;
	n->stun_at = time(NULL);
	log_msg(changed ? LOG_LVL_INFO : LOG_LVL_DEBUG, "stun", "%s %s:%u", s->nat,
		inet_ntoa(s->public_ep.sin_addr), ntohs(s->public_ep.sin_port));
	if (s->mapping && !strcmp(s->mapping, "endpoint-dependent") && changed)
		log_warn("stun", "this NAT maps each destination to another port: direct tunnels "
				 "to peers behind NAT will likely fail");
}

static void stun_now(void *arg)
{
	struct node *n = arg;
	int ret;

	loop_timer_arm(n->l, &n->t_stun, (uint64_t)n->c->stun_interval_s * 1000);
	n->stun_last_start = loop_now(n->l);
	ret = stunprobe_start(&n->stun, n->listen_port);
	if (ret && ret != -EBUSY)
		log_debug("stun", "probe not started: %s", strerror(-ret));
}

/* ==== the agent's view: handshakes, traffic ==== */

static struct entry *entry_by_key(struct node *n, const uint8_t *key)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->e[i].known && !memcmp(n->e[i].info.wg_pubkey, key, 32))
			return &n->e[i];
	return NULL;
}

static void on_device(void *arg, const P2pwg__Response *r, const char *error)
{
	struct node *n = arg;
	time_t now = time(NULL);
	bool stale = false;
	uint64_t rx = 0, tx = 0;

	if (!r || r->status != P2PWG__STATUS__OK || r->msg_case != P2PWG__RESPONSE__MSG_DEVICE) {
		log_debug("wg", "GetDevice failed: %s", r ? r->error : error);
		return;
	}
	remember_device(n, r->device);
	for (size_t i = 0; i < n->n; i++)
		n->e[i].on_device = false;
	for (size_t i = 0; i < r->device->n_peers; i++) {
		const P2pwg__Peer *p = r->device->peers[i];
		struct entry *e = p->public_key.len == 32 ? entry_by_key(n, p->public_key.data) : NULL;

		rx += p->rx_bytes;
		tx += p->tx_bytes;
		if (!e)
			continue;
		e->on_device = true;
		if (e->handshake && p->last_handshake_sec &&
		    now - p->last_handshake_sec > STALE_HANDSHAKE_S && !e->stale_reported) {
			e->stale_reported = true;
			stale = true;
			log_warn("wg", "handshake with %s is %lld s old; re-probing STUN", e->url,
				 (long long)(now - p->last_handshake_sec));
		}
		if (p->last_handshake_sec && now - p->last_handshake_sec <= STALE_HANDSHAKE_S)
			e->stale_reported = false;
		e->handshake = p->last_handshake_sec;
		e->rx = p->rx_bytes;
		e->tx = p->tx_bytes;
		if (p->endpoint && p->endpoint->addr.len == 4) {
			char ip[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, p->endpoint->addr.data, ip, sizeof(ip));
			snprintf(e->endpoint, sizeof(e->endpoint), "%s:%u", ip, p->endpoint->port);
		}
	}
	n->rx_total = rx;
	n->tx_total = tx;
	if (r->device->n_peers)
		log_info("wg", "traffic rx=%lluB tx=%lluB", (unsigned long long)rx, (unsigned long long)tx);
	/* A lost handshake may mean our NAT mapping moved: look again, at most every 10 s. */
	if (stale && loop_now(n->l) - n->stun_last_start > 10000)
		stun_now(n);
}

static void dev_now(void *arg)
{
	struct node *n = arg;
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__GetDevice gd = P2PWG__GET_DEVICE__INIT;

	loop_timer_arm(n->l, &n->t_dev, (uint64_t)n->c->test_interval_s * 1000);
	req.msg_case = P2PWG__REQUEST__MSG_GET_DEVICE;
	req.get_device = &gd;
	agentlink_call(n->agent, &req, 5000, on_device, n);
}

/* ==== /test over the overlay ==== */

static void on_test(void *arg, const struct fetch_result *r)
{
	struct entry *e = arg;
	struct node *n = e->node;
	bool ok = r->code == CURLE_OK && r->status == 200 && !r->truncated;
	char ip[INET_ADDRSTRLEN];

	e->test = NULL;
	e->test_at = time(NULL);
	inet_ntop(AF_INET, &e->info.overlay_ip, ip, sizeof(ip));
	for (size_t i = 0; i < n->applied.n_peers; i++)
		if (!memcmp(n->applied.peers[i].key, e->info.wg_pubkey, 32))
			inet_ntop(AF_INET, &n->applied.peers[i].overlay, ip, sizeof(ip));
	if (ok) {
		n->m_test_ok++;
		snprintf(e->test_result, sizeof(e->test_result), "%.*s", (int)strcspn(r->body, "\r\n"),
			 r->body);
		log_info("http", "connected to %s: %s", ip, e->test_result);
	} else {
		n->m_test_fail++;
		snprintf(e->test_result, sizeof(e->test_result), "%s",
			 r->code != CURLE_OK ? r->error : "unexpected answer");
		log_msg(e->test_ok ? LOG_LVL_WARN : LOG_LVL_DEBUG, "http", "cannot reach %s: %s", ip,
			e->test_result);
	}
	e->test_ok = ok;
}

static void test_now(void *arg)
{
	struct node *n = arg;
	struct fetch_opts o = { .timeout_ms = TEST_TIMEOUT_MS, .max_bytes = 4096, .allow_http = true };

	loop_timer_arm(n->l, &n->t_test, (uint64_t)n->c->test_interval_s * 1000);
	if (!n->applied_valid)
		return;
	for (size_t i = 0; i < n->applied.n_peers; i++) {
		const struct mesh_peer *p = &n->applied.peers[i];
		struct entry *e = entry_by_key(n, p->key);
		char url[64];

		if (!e || e->test)
			continue;
		snprintf(url, sizeof(url), "http://%s:8000/test", inet_ntoa(p->overlay));
		e->test = fetch_start(n->l, url, &o, on_test, e);
	}
}

/* ==== the agent comes and goes ==== */

static void agent_up(void *arg, const P2pwg__HelloReply *h)
{
	struct node *n = arg;
	char k[B64_KEY_LEN + 1];

	if (n->have_key && memcmp(n->pubkey, h->public_key.data, 32))
		log_warn("agent", "wgagent's public key changed: this node has a new identity");
	memcpy(n->pubkey, h->public_key.data, 32);
	n->have_key = true;
	n->listen_port = (uint16_t)h->device->listen_port;
	snprintf(n->ifname, sizeof(n->ifname), "%s", h->device->ifname);
	snprintf(n->backend, sizeof(n->backend), "%s", h->device->backend);
	log_info("agent", "public key %s, WireGuard port %u", b64_key_encode(n->pubkey, k),
		 n->listen_port);
	remember_device(n, h->device);
	/* A restarted agent (or controld) gets the whole desired state again,
	 * once the cycle in flight (if any) has read every entry. */
	n->applied_valid = false;
	n->set_inflight = false;
	if (!n->outstanding)
		recompute(n);
	stun_now(n);
	loop_timer_arm(n->l, &n->t_dev, 1000);
}

static void agent_down(void *arg)
{
	struct node *n = arg;

	n->applied_valid = false;
	n->set_inflight = false;
	loop_timer_disarm(n->l, &n->t_dev);
}

struct node *node_new(const struct config *c, struct loop *l)
{
	struct node *n = calloc(1, sizeof(*n));
	struct agentlink_handlers h = { .up = agent_up, .down = agent_down };

	if (!n)
		return NULL;
	h.arg = n;
	n->c = c;
	n->l = l;
	n->started = time(NULL);
	n->params.overlay_net = c->overlay_net;
	n->params.overlay_len = c->overlay_len;
	n->params.base_offset = c->base_offset;
	n->agent = agentlink_new(l, c->agent_socket, &h);
	if (!n->agent) {
		free(n);
		return NULL;
	}
	stunprobe_init(&n->stun, l, n->agent, c, on_stun, n);
	n->t_poll = (struct loop_timer){ .cb = poll_now, .arg = n };
	n->t_test = (struct loop_timer){ .cb = test_now, .arg = n };
	n->t_stun = (struct loop_timer){ .cb = stun_now, .arg = n };
	n->t_dev = (struct loop_timer){ .cb = dev_now, .arg = n };
	n->t_recompute = (struct loop_timer){ .cb = recompute_now, .arg = n };
	loop_timer_arm(l, &n->t_poll, 0);
	loop_timer_arm(l, &n->t_test, (uint64_t)c->test_interval_s * 1000);
	return n;
}

/* ==== documents ==== */

char *node_json(struct node *n)
{
	struct nodeinfo_self s = { .self_index = -1, .wg_listen_port = n->listen_port };
	struct timeval tv;

	gettimeofday(&tv, NULL);
	s.updated_at = tv.tv_sec;
	if (n->have_key)
		memcpy(s.wg_pubkey, n->pubkey, 32);
	if (n->applied_valid && n->applied.found_self) {
		s.has_overlay = true;
		s.overlay_ip = n->applied.self_addr;
		s.self_index = (long)n->applied.self_index;
		if (n->applied.self_index < n->n)
			s.self_url = n->e[n->applied.self_index].url;
	}
	if (n->stun_have) {
		s.has_public = true;
		s.public_ip = n->stun_sum.public_ep.sin_addr;
		s.public_port = ntohs(n->stun_sum.public_ep.sin_port);
		s.nat = n->stun_sum.nat;
		s.mapping = n->stun_sum.mapping;
	}
	if (!n->have_key)
		return NULL; /* nothing to publish before the agent told us our key */
	return nodeinfo_format(&s);
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

char *node_status(struct node *n)
{
	json_t *root = json_object(), *self = json_object(), *peers = json_array(), *list = json_object();
	char k[B64_KEY_LEN + 1], ip[INET_ADDRSTRLEN], ep[64], when[40];
	time_t now = time(NULL);
	char *out;

	json_object_set_new(self, "wg_pubkey", n->have_key ? json_string(b64_key_encode(n->pubkey, k)) : json_null());
	json_object_set_new(self, "agent", json_string(agentlink_is_up(n->agent) ? "connected" : "disconnected"));
	json_object_set_new(self, "backend", str_or_null(n->backend));
	json_object_set_new(self, "interface", str_or_null(n->ifname));
	json_object_set_new(self, "wg_listen_port", json_integer(n->listen_port));
	if (n->applied_valid && n->applied.found_self) {
		snprintf(ep, sizeof(ep), "%s/32", inet_ntoa(n->applied.self_addr));
		json_object_set_new(self, "overlay_ip", json_string(ep));
		json_object_set_new(self, "position", json_integer((json_int_t)n->applied.self_index));
	} else {
		json_object_set_new(self, "overlay_ip", json_null());
		json_object_set_new(self, "position", json_null());
	}
	if (n->stun_have) {
		snprintf(ep, sizeof(ep), "%s:%u", inet_ntoa(n->stun_sum.public_ep.sin_addr),
			 ntohs(n->stun_sum.public_ep.sin_port));
		json_object_set_new(self, "public_endpoint", json_string(ep));
		json_object_set_new(self, "nat", str_or_null(n->stun_sum.nat));
		json_object_set_new(self, "mapping", str_or_null(n->stun_sum.mapping));
		json_object_set_new(self, "stun_age_s", json_integer(now - n->stun_at));
	} else {
		json_object_set_new(self, "public_endpoint", json_null());
	}
	json_object_set_new(root, "node", self);
	json_object_set_new(list, "url", json_string(n->c->gist_url));
	json_object_set_new(list, "entries", json_integer((json_int_t)n->n));
	json_object_set_new(list, "etag", str_or_null(n->etag));
	json_object_set_new(list, "error", str_or_null(n->list_error));
	json_object_set_new(list, "age_s", n->list_at ? json_integer(now - n->list_at) : json_null());
	json_object_set_new(root, "list", list);
	for (size_t i = 0; i < n->n; i++) {
		struct entry *e = &n->e[i];
		json_t *p = json_object();
		const struct mesh_peer *mp = NULL;
		const char *state;

		for (size_t j = 0; n->applied_valid && j < n->applied.n_peers; j++)
			if (n->applied.peers[j].index == i)
				mp = &n->applied.peers[j];
		json_object_set_new(p, "position", json_integer((json_int_t)i));
		json_object_set_new(p, "url", json_string(e->url));
		json_object_set_new(p, "self", json_boolean(n->applied_valid && n->applied.found_self &&
							    n->applied.self_index == i));
		json_object_set_new(p, "wg_pubkey", e->known ? json_string(b64_key_encode(e->info.wg_pubkey, k)) : json_null());
		if (mp) {
			inet_ntop(AF_INET, &mp->overlay, ip, sizeof(ip));
			snprintf(ep, sizeof(ep), "%s/32", ip);
		}
		json_object_set_new(p, "overlay_ip", mp ? json_string(ep) : json_null());
		if (e->known && e->info.has_public)
			snprintf(ep, sizeof(ep), "%s:%u", inet_ntoa(e->info.public_ip), e->info.public_port);
		json_object_set_new(p, "published_endpoint", e->known && e->info.has_public ? json_string(ep) : json_null());
		json_object_set_new(p, "endpoint", mp && e->endpoint[0] ? json_string(e->endpoint) : json_null());
		json_object_set_new(p, "last_handshake", mp && e->handshake ? json_integer(e->handshake) : json_null());
		json_object_set_new(p, "handshake_age_s", mp && e->handshake ? json_integer(now - e->handshake) : json_null());
		json_object_set_new(p, "rx_bytes", json_integer(mp ? (json_int_t)e->rx : 0));
		json_object_set_new(p, "tx_bytes", json_integer(mp ? (json_int_t)e->tx : 0));
		json_object_set_new(p, "nat", e->known ? str_or_null(e->info.nat) : json_null());
		json_object_set_new(p, "fetch_error", str_or_null(e->error));
		if (e->test_at) {
			json_t *t = json_object();

			nodeinfo_time(e->test_at, 0, when, sizeof(when));
			json_object_set_new(t, "ok", json_boolean(e->test_ok));
			json_object_set_new(t, "at", json_string(when));
			json_object_set_new(t, "result", json_string(e->test_result));
			json_object_set_new(p, "test", t);
		} else {
			json_object_set_new(p, "test", json_null());
		}
		if (!mp)
			state = n->applied_valid && n->applied.self_index == i && n->applied.found_self ? "self" : "not configured";
		else if (e->handshake && now - e->handshake <= STALE_HANDSHAKE_S)
			state = "direct";
		else
			state = "down";
		json_object_set_new(p, "state", json_string(state));
		json_array_append_new(peers, p);
	}
	json_object_set_new(root, "peers", peers);
	out = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	return out;
}

char *node_metrics(struct node *n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	time_t now = time(NULL);
	size_t direct = 0;

	if (!f)
		return NULL;
	for (size_t i = 0; n->applied_valid && i < n->applied.n_peers; i++) {
		struct entry *e = entry_by_key(n, n->applied.peers[i].key);

		if (e && e->handshake && now - e->handshake <= STALE_HANDSHAKE_S)
			direct++;
	}
#define M(name, type, help, fmt, ...)                                                      \
	fprintf(f, "# HELP p2pwg_" name " " help "\n# TYPE p2pwg_" name " " type "\n"      \
		   "p2pwg_" name " " fmt "\n", __VA_ARGS__)
	M("up", "gauge", "1 while controld runs", "%d", 1);
	M("agent_connected", "gauge", "1 while wgagent answers", "%d", agentlink_is_up(n->agent) ? 1 : 0);
	M("list_entries", "gauge", "entries in the last good peer list", "%zu", n->n);
	M("peers_configured", "gauge", "peers handed to wgagent", "%zu", n->applied_valid ? n->applied.n_peers : 0);
	M("peers_direct", "gauge", "peers with a handshake in the last 180 s", "%zu", direct);
	M("self_found", "gauge", "1 once this node found itself in the list", "%d", n->applied_valid && n->applied.found_self ? 1 : 0);
	fprintf(f, "# HELP p2pwg_list_fetches_total peer list fetches by result\n"
		   "# TYPE p2pwg_list_fetches_total counter\n"
		   "p2pwg_list_fetches_total{result=\"ok\"} %llu\n"
		   "p2pwg_list_fetches_total{result=\"not_modified\"} %llu\n"
		   "p2pwg_list_fetches_total{result=\"failed\"} %llu\n",
		(unsigned long long)n->m_list_ok, (unsigned long long)n->m_list_304,
		(unsigned long long)n->m_list_fail);
	fprintf(f, "# HELP p2pwg_nodejson_fetches_total peer node.json fetches by result\n"
		   "# TYPE p2pwg_nodejson_fetches_total counter\n"
		   "p2pwg_nodejson_fetches_total{result=\"ok\"} %llu\n"
		   "p2pwg_nodejson_fetches_total{result=\"failed\"} %llu\n",
		(unsigned long long)n->m_node_ok, (unsigned long long)n->m_node_fail);
	M("setpeers_total", "counter", "peer sets applied by wgagent", "%llu", (unsigned long long)n->m_setpeers);
	M("setpeers_failed_total", "counter", "peer sets refused or failed", "%llu", (unsigned long long)n->m_setpeers_fail);
	M("stun_probes_total", "counter", "STUN probes", "%llu", (unsigned long long)n->m_stun);
	M("stun_probes_failed_total", "counter", "STUN probes without any answer", "%llu", (unsigned long long)n->m_stun_fail);
	M("tests_total", "counter", "/test probes over the overlay that answered", "%llu", (unsigned long long)n->m_test_ok);
	M("tests_failed_total", "counter", "/test probes over the overlay that failed", "%llu", (unsigned long long)n->m_test_fail);
	M("rx_bytes", "gauge", "bytes received over WireGuard, all peers", "%llu", (unsigned long long)n->rx_total);
	M("tx_bytes", "gauge", "bytes sent over WireGuard, all peers", "%llu", (unsigned long long)n->tx_total);
	fprintf(f, "# HELP p2pwg_peer_handshake_age_seconds seconds since the last handshake, per peer\n"
		   "# TYPE p2pwg_peer_handshake_age_seconds gauge\n");
	for (size_t i = 0; n->applied_valid && i < n->applied.n_peers; i++) {
		const struct mesh_peer *p = &n->applied.peers[i];
		struct entry *e = entry_by_key(n, p->key);

		if (e && e->handshake)
			fprintf(f, "p2pwg_peer_handshake_age_seconds{position=\"%zu\",overlay_ip=\"%s\"} %lld\n",
				p->index, inet_ntoa(p->overlay), (long long)(now - e->handshake));
	}
#undef M
	fclose(f);
	return buf;
}

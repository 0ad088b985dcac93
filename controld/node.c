// SPDX-License-Identifier: MIT
#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "b64.h"
#include "localep.h"
#include "log.h"
#include "cadence.h"
#include "relay.h"
#include "status.h"

/* Two SYN retransmissions (1 s, 3 s): one lost packet, or a busy moment on
 * either end, is not a peer that is down. */
#define TEST_TIMEOUT_MS 5000
/* A check on a kept connection (or one to be kept) gets this long; if it
 * fails it is made again at once on a new connection, with TEST_TIMEOUT_MS,
 * and only that one can show the pair down. After an outage a kept one can
 * wait out a retransmission timer grown by earlier trouble, where a new
 * connection's SYN goes out at once. A working tunnel answers in ms. */
#define TEST_KEPT_TIMEOUT_MS 1500
/* A tick of /test checks may wait this long for another wake-up to share. */
#define TEST_SLACK_MS 1000
/* A /test that passed while the handshake the agent last reported was not
 * fresh: read the agent's view this soon, so /status says direct at once. */
#define DEV_SOON_MS 200
/* The agent's view is read this often while a peer awaits a prompt check. */
#define DEV_PROMPT_MS 1000
#define RECOMPUTE_DELAY_MS 300
/* A quiet peer's node.json is read on one poll in this many (see fetch_all). */
#define QUIET_POLLS 4
/* Peers started together answer within a few hundred ms of each other (a
 * STUN round trip, their list read): look again that soon, then back off. */
#define REFETCH_FIRST_MS 250

/* A period in seconds, jittered so that nodes started together drift apart. */
static uint64_t period_ms(unsigned s)
{
	return cadence_jitter((uint64_t)s * 1000, arc4random());
}

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

struct node_entry *node_entry_by_key(struct node *n, const uint8_t *key)
{
	if (n->keys_dirty) {
		keymap_clear(&n->keys);
		n->keys_dirty = false;
		for (size_t i = 0; i < n->n && !n->keys_dirty; i++)
			if (n->e[i].url && n->e[i].known &&
			    keymap_put(&n->keys, n->e[i].info.wg_pubkey, &n->e[i]))
				n->keys_dirty = true; /* out of memory: searched instead */
	}
	if (!n->keys_dirty)
		return keymap_get(&n->keys, key);
	for (size_t i = 0; i < n->n; i++)
		if (n->e[i].url && n->e[i].known && !memcmp(n->e[i].info.wg_pubkey, key, 32))
			return &n->e[i];
	return NULL;
}

/* ==== applying the peer set ==== */

static void send_setpeers(struct node *n);
static void update_checks(struct node *n);
static void refresh_local(struct node *n);
static void prompt_new_peers(struct node *n);
static bool handshake_fresh(const struct node_entry *e, time_t now);
static void prompt_at(struct node *n, struct node_entry *e, uint64_t ms);
static void prompt_arm(struct node *n);
static const struct mesh_peer *applied_peer(const struct node *n, const uint8_t *key);

/* The one place that decides the path WireGuard gets for a peer: a candidate
 * that answered a check (lan before direct), in *ep. PATHCHECK_NONE: nothing
 * answered; the peer keeps its published endpoint and WireGuard punches, and
 * the relay takes it if that fails (relay.c, relay_wanted). */
static enum pathcheck_kind choose_path(struct node *n, const struct node_entry *e,
				       struct sockaddr_in *ep)
{
	return pathcheck_choose(&n->pc, e->info.wg_pubkey, ep);
}

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
	n->applied = n->sending;
	n->applied_valid = true;
	prompt_new_peers(n);
	if (peerset_applied(&n->ps, &n->applied))
		log_warn("wg", "out of memory remembering the applied peer set");
	update_checks(n);
	if (n->applied.found_self)
		log_info("wg", "this node is position %zu, overlay %s/32%s", n->applied.self_index,
			 inet_ntoa(n->applied.self_addr), r->changed ? "" : " (interface already so)");
	for (size_t i = 0; i < n->applied.n_peers; i++) {
		const struct mesh_peer *p = &n->applied.peers[i];

		if (p->has_endpoint)
			snprintf(ep, sizeof(ep), "%s:%u%s", inet_ntoa(p->endpoint.sin_addr),
				 ntohs(p->endpoint.sin_port),
				 p->send_endpoint ? "" : " (interface keeps its own)");
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
	P2pwg__Request *req;
	int ret;

	if (n->set_inflight) {
		n->set_again = true;
		return;
	}
	n->sending = n->want;
	req = agentmsg_setpeers(&n->msg, &n->sending, n->listen_port, n->c->overlay_len);
	ret = agentlink_call(n->agent, req, 10000, on_setpeers, n);
	if (ret) {
		log_warn("wg", "cannot reach wgagent to apply the peer set (%s); will retry",
			 strerror(-ret));
		return;
	}
	n->set_inflight = true;
}

static void remember_device(struct node *n, const P2pwg__Device *d)
{
	struct peerset_devpeer *dp;
	size_t k;

	if (agentmsg_device_peers(d, &dp, &k))
		return;
	if (peerset_set_device(&n->ps, dp, k))
		log_warn("agent", "out of memory remembering the interface's peers");
	free(dp);
}

/* Say what changed about refused entries and the count of left-out ones,
 * once each until it changes again. */
static void report(struct node *n, char (*why)[PEERSET_WHY])
{
	for (size_t i = 0; i < n->n; i++) {
		struct node_entry *e = &n->e[i];

		if (!strcmp(e->dropped, why[i]))
			continue;
		if (why[i][0])
			log_warn("peer", "entry %zu (%s) %s; using the others without it", i, e->url,
				 why[i]);
		else if (e->dropped[0])
			log_info("peer", "entry %zu (%s) is usable again", i, e->url);
		snprintf(e->dropped, sizeof(e->dropped), "%s", why[i]);
	}
	if (n->decided.n_duplicate && n->decided.n_duplicate != n->said_dup)
		log_warn("peer", "%zu list entries repeat a key already listed; each node is used at its first position",
			 n->decided.n_duplicate);
	n->said_dup = n->decided.n_duplicate;
	if (n->decided.n_out_of_range && n->decided.n_out_of_range != n->said_oor)
		log_warn("peer", "%zu list entries lie beyond the overlay prefix and are ignored",
			 n->decided.n_out_of_range);
	n->said_oor = n->decided.n_out_of_range;
}

/* Decide and, when it changed, apply. full_poll: this cycle's fetches all ended. */
static void recompute(struct node *n, bool full_poll)
{
	struct peerset_entry *in;
	char (*why)[PEERSET_WHY], (*refused)[PEERSET_WHY];
	enum peerset_verdict v;
	char k[B64_KEY_LEN + 1];
	unsigned before = n->ps.absent_polls;

	if (!n->have_key || !n->list)
		return;
	in = calloc(n->n + 1, sizeof(*in));
	why = calloc(n->n + 1, sizeof(*why));
	refused = calloc(n->n + 1, sizeof(*refused));
	if (!in || !why || !refused)
		goto out;
	for (size_t i = 0; i < n->n; i++) {
		in[i].url = n->e[i].url;
		in[i].known = n->e[i].known;
		in[i].info = n->e[i].info;
		in[i].has_path = in[i].known &&
				 choose_path(n, &n->e[i], &in[i].path) != PATHCHECK_NONE;
		/* Back from the relay as soon as a direct or LAN path answers. */
		if (in[i].has_path)
			relay_release(n->relay, n->e[i].info.wg_pubkey);
	}
	attest_vet(n->att, in, n->n, n->pubkey, refused);
	/* Decided apart from want: a held decision must never reach the agent,
	 * not even as the re-send queued behind a SetPeers in flight. */
	if (peerset_decide(&n->ps, in, n->n, full_poll, time(NULL), &n->decided, &v, why))
		goto out;
	relay_steer(n->relay, &n->decided, &n->ps);
	report(n, why);
	switch (v) {
	case PEERSET_APPLY:
		if (n->said_absent)
			log_info("peer", "this node (key %s) is in the list", keyshort(n->pubkey, k));
		n->said_absent = false;
		break;
	case PEERSET_HOLD_UNREAD:
		log_debug("peer", "own entry not found among those read so far; changing nothing");
		goto out;
	case PEERSET_HOLD_ABSENT:
		if (n->ps.absent_polls != before)
			log_warn("peer", "this node (key %s) is not in the list as read in full "
					 "(%u of %u polls in a row); %s",
				 keyshort(n->pubkey, k), n->ps.absent_polls, n->ps.leave_after,
				 "keeping the current address and peers");
		goto out;
	case PEERSET_LEAVE:
		if (!n->said_absent)
			log_info("peer", "this node (key %s) is not in the list (%zu entries, %u polls "
					 "in a row); no address and no peers until it is",
				 keyshort(n->pubkey, k), n->n, n->ps.absent_polls);
		n->said_absent = true;
		break;
	}
	n->want = n->decided;
	if (!n->applied_valid || !mesh_state_equal(&n->want, &n->applied) ||
	    peerset_has_news(&n->want))
		send_setpeers(n);
	update_checks(n); /* a peer's candidates may have changed alone */
out:
	free(in);
	free(why);
	free(refused);
}

/* ==== node.json of every peer, all at once ==== */

static void refetch_if_unready(struct node *n);

static void on_node_json(void *arg, const struct fetch_result *r)
{
	struct node_entry *e = arg;
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
	/* A parser's reason may quote the peer's bytes ("near '...'"). */
	safetext_copy(why, sizeof(why), why, sizeof(why));
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
		n->keys_dirty = true;
		e->ok_at = time(NULL);
		attest_note(n->att, info.wg_pubkey, r->body, r->len);
	}
	/* Decide once the cycle is complete, or shortly after this answer if a
	 * slow peer is still outstanding: a dead peer never holds the rest back. */
	if (--n->outstanding == 0) {
		loop_timer_disarm(n->l, &n->t_recompute);
		recompute(n, !n->refetching);
		n->refetching = false;
		refetch_if_unready(n);
	} else if (!n->t_recompute.armed) {
		loop_timer_arm(n->l, &n->t_recompute, RECOMPUTE_DELAY_MS);
	}
}

static void recompute_now(void *arg)
{
	recompute(arg, false);
}

/* Not ready: never read, or read before its node's STUN probe answered. */
static bool unready(const struct node_entry *e)
{
	return e->url && (!e->known || !e->info.has_public);
}

/* A peer whose tunnel works as its node.json says: configured at its
 * position, handshake fresh, /test passing, a checked path answering. */
static bool quiet(struct node *n, size_t i, time_t now)
{
	const struct node_entry *e = &n->e[i];
	const struct mesh_peer *p;
	struct sockaddr_in ep;

	if (!e->known || !e->info.has_public || e->error[0] || !e->test_ok ||
	    !handshake_fresh(e, now) || !n->applied.found_self)
		return false;
	p = applied_peer(n, e->info.wg_pubkey);
	return p && p->index == i && choose_path(n, e, &ep) != PATHCHECK_NONE;
}

/* Fetch every entry's node.json, or (only_unready) those not ready yet. A
 * quiet peer is read on every QUIET_POLLS-th poll only (each its own turn):
 * in a mesh larger than LOOP_KEEP_PEERS every read is a new TLS connection, and
 * those were most of an idle node's CPU. Anything amiss (a failed /test,
 * a stale handshake, no checked path, the relay) reads it every poll again. */
static void fetch_all(struct node *n, bool only_unready)
{
	struct fetch_opts o = https_opts(n, NODEINFO_MAX_BYTES);
	time_t now = time(NULL);

	o.keep_alive = n->n <= LOOP_KEEP_PEERS + 1; /* the list holds the node itself */
	if (!only_unready)
		n->polls++;
	for (size_t i = 0; i < n->n; i++) {
		struct node_entry *e = &n->e[i];

		if (e->fetch || !e->url || (only_unready && !unready(e)))
			continue; /* still running from the last cycle, or no URL to fetch */
		if (!only_unready && (n->polls + i) % QUIET_POLLS && quiet(n, i, now))
			continue;
		log_info("peer", "fetch %s", e->url);
		e->fetch = fetch_start(n->l, e->url, &o, on_node_json, e);
		if (e->fetch)
			n->outstanding++;
	}
	if (!n->outstanding)
		recompute(n, !only_unready);
	n->refetching = only_unready && n->outstanding;
}

static void refetch_now(void *arg)
{
	struct node *n = arg;

	if (!n->outstanding) /* else the cycle in flight looks again when it ends */
		fetch_all(n, true);
}

/* Nodes started together read each other before their STUN probes answer:
 * such entries are read again after 0.25, 0.5, 1... s (up to the poll interval)
 * instead of one whole poll later. Not a poll: leaving counts only polls. */
static void refetch_if_unready(struct node *n)
{
	uint64_t poll = (uint64_t)n->c->poll_interval_s * 1000, now = loop_now(n->l);
	bool any = false;

	for (size_t i = 0; i < n->n && !any; i++)
		any = unready(&n->e[i]);
	if (!any) {
		n->refetch_ms = 0;
		return;
	}
	n->refetch_ms = n->refetch_ms ? n->refetch_ms * 2 : REFETCH_FIRST_MS;
	if (n->refetch_ms < poll && (!n->t_poll.armed || n->t_poll.at > now + n->refetch_ms))
		loop_timer_arm(n->l, &n->t_refetch, cadence_jitter(n->refetch_ms, arc4random()));
	else
		n->refetch_ms = poll;
}

/* Replace the list, keeping what we know about URLs that stay. Transfers in
 * flight hold pointers into the old array: stop them all; the next cycle
 * (started right after) fetches again. */
static void set_list(struct node *n, struct peerlist *l)
{
	struct node_entry *e = calloc(l->n + 1, sizeof(*e));
	bool added = false;

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
		if (!l->urls[i]) {
			/* Said once: set_list runs only when the list changed. */
			log_warn("peer", "list entry %zu skipped: %s; the others keep their positions",
				 i, l->why[i]);
			e[i].node = n;
			continue;
		}
		for (size_t j = 0; j < n->n; j++)
			if (n->e[j].url && !strcmp(n->e[j].url, l->urls[i])) {
				e[i] = n->e[j];
				break;
			}
		added |= !e[i].url; /* not among the old entries */
		e[i].url = l->urls[i];
		e[i].node = n;
	}
	free(n->e);
	peerlist_free(n->list);
	n->e = e;
	n->keys_dirty = true;
	n->n = l->n;
	n->list = l;
	/* A node just added may not serve yet, or not have its endpoint: it gets
	 * the quick re-reads from the start, even where an entry that is never
	 * ready (a dead or broken peer) had backed them off to the poll interval. */
	if (added)
		n->refetch_ms = 0;
}

static void take_list(struct node *n, struct peerlist *l, char *why, size_t whylen,
		      const char *etag);

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
	take_list(n, l, why, sizeof(why), r->etag);
}

/* The registry's answer takes the Gist's path: NULL and "" is its 304. */
static void on_registry(void *arg, struct peerlist *l, const char *reason)
{
	struct node *n = arg;
	char why[256];

	snprintf(why, sizeof(why), "%s", reason);
	if (!l && !why[0])
		n->m_list_304++;
	take_list(n, l, why, sizeof(why), "");
}

/* A list read ended: l (owned) is new, or NULL with why saying what failed
 * (fail static: the last good list stays), or NULL with "" for unchanged. */
static void take_list(struct node *n, struct peerlist *l, char *why, size_t whylen,
		      const char *etag)
{
	const char *src = n->reg ? n->c->registry : n->c->gist_url;

	safetext_copy(why, whylen, why, whylen);
	if (why[0]) {
		n->m_list_fail++;
		if (strcmp(n->list_error, why))
			log_warn("peer", "peer list %s: %s; %s", src, why,
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
			snprintf(n->etag, sizeof(n->etag), "%s", etag);
			if (!n->list || !peerlist_equal(n->list, l)) {
				log_info("peer", "peer list: %zu entries%s", l->n, n->list ? " (changed)" : "");
				set_list(n, l);
			} else {
				peerlist_free(l);
			}
		}
	}
	if (n->list)
		fetch_all(n, false);
}

static void poll_now(void *arg)
{
	struct node *n = arg;
	struct fetch_opts o = https_opts(n, PEERLIST_MAX_BYTES);

	loop_timer_arm(n->l, &n->t_poll, period_ms(n->c->poll_interval_s));
	refresh_local(n); /* addresses come and go (DHCP, a new interface) */
	if (n->reg) {
		if (registry_poll(n->reg) == -EBUSY)
			log_debug("peer", "the previous registry read is still running; skipping this poll");
		return;
	}
	if (n->list_fetch) {
		log_debug("peer", "the previous list fetch is still running; skipping this poll");
		return;
	}
	o.if_none_match = n->etag;
	o.keep_alive = true;
	n->list_fetch = fetch_start(n->l, n->c->gist_url, &o, on_list, n);
	if (!n->list_fetch)
		log_err("peer", "cannot start fetching %s", n->c->gist_url);
}

/* ==== path checks ==== */

/* This node's own candidates: published, and never checked as a peer's. */
static void refresh_local(struct node *n)
{
	struct sockaddr_in self[NODEINFO_MAX_LOCAL + 1];
	size_t k = 0;
	int ret;

	if (!n->have_key)
		return;
	ret = localep_list(n->ifname, &n->params, n->listen_port, n->local, NODEINFO_MAX_LOCAL, &k);
	if (ret)
		log_debug("path", "cannot list local addresses: %s", strerror(-ret));
	else
		n->n_local = k;
	memcpy(self, n->local, n->n_local * sizeof(*self));
	k = n->n_local;
	if (n->stun_have)
		self[k++] = n->stun_sum.public_ep;
	pathcheck_set_self(&n->pc, self, k);
}

/* Check the peers the interface has, with what their node.json says. */
static void update_checks(struct node *n)
{
	struct pathcheck_in *in;
	size_t k = 0;

	if (!n->applied_valid)
		return;
	in = calloc(n->applied.n_peers + 1, sizeof(*in));
	if (!in)
		return;
	for (size_t i = 0; i < n->applied.n_peers; i++) {
		const struct node_entry *e = node_entry_by_key(n, n->applied.peers[i].key);

		if (e)
			in[k++] = (struct pathcheck_in){ .key = e->info.wg_pubkey, .info = &e->info };
	}
	if (pathcheck_update(&n->pc, in, k, loop_now(n->l)) == 0)
		loop_timer_arm(n->l, &n->t_check, 0);
	free(in);
}

struct check_call {
	struct node *n;
	uint8_t key[32];
	struct sockaddr_in ep;
};

static void on_check(void *arg, const P2pwg__Response *r, const char *error)
{
	struct check_call *cc = arg;
	struct node *n = cc->n;
	bool ok = r && r->status == P2PWG__STATUS__OK &&
		  r->msg_case == P2PWG__RESPONSE__MSG_PATH_CHECK;
	struct sockaddr_in ep;
	enum pathcheck_kind kind;
	char k[B64_KEY_LEN + 1];

	if (!r || (r->status != P2PWG__STATUS__OK && r->status != P2PWG__STATUS__TIMEOUT))
		log_debug("path", "check of %s:%u not made: %s", inet_ntoa(cc->ep.sin_addr),
			  ntohs(cc->ep.sin_port), r ? r->error : error);
	if (pathcheck_result(&n->pc, cc->key, &cc->ep, ok, ok ? r->path_check->rtt_ms : 0,
			     loop_now(n->l))) {
		kind = pathcheck_choose(&n->pc, cc->key, &ep);
		if (kind == PATHCHECK_NONE)
			log_info("path", "peer %s: no candidate answers; its published endpoint stays",
				 keyshort(cc->key, k));
		else
			log_info("path", "peer %s: %s path %s:%u answers", keyshort(cc->key, k),
				 pathcheck_kind_name(kind), inet_ntoa(ep.sin_addr), ntohs(ep.sin_port));
		recompute(n, false);
	}
	free(cc);
}

void node_paths_suspect(struct node *n, const uint8_t key[32])
{
	if (pathcheck_suspect(&n->pc, key, loop_now(n->l)))
		loop_timer_arm(n->l, &n->t_check, 0);
}

static void check_now(void *arg)
{
	struct node *n = arg;
	uint64_t wait = UINT64_MAX, now = loop_now(n->l);

	while (agentlink_is_up(n->agent) && n->applied_valid) {
		P2pwg__Request req = P2PWG__REQUEST__INIT;
		P2pwg__PathCheck pc = P2PWG__PATH_CHECK__INIT;
		P2pwg__Endpoint to = P2PWG__ENDPOINT__INIT;
		struct check_call *cc = calloc(1, sizeof(*cc));
		uint8_t txid[12];

		if (!cc)
			break;
		if (pathcheck_next(&n->pc, now, cc->key, &cc->ep, &wait) ||
		    getrandom(txid, sizeof(txid), 0) != sizeof(txid)) {
			free(cc);
			break;
		}
		cc->n = n;
		to.addr.data = (uint8_t *)&cc->ep.sin_addr;
		to.addr.len = 4;
		to.port = ntohs(cc->ep.sin_port);
		pc.to = &to;
		pc.peer_key.data = cc->key;
		pc.peer_key.len = 32;
		pc.txid.data = txid;
		pc.txid.len = sizeof(txid);
		pc.timeout_ms = PATHCHECK_TIMEOUT_MS;
		req.msg_case = P2PWG__REQUEST__MSG_PATH_CHECK;
		req.path_check = &pc;
		if (agentlink_call(n->agent, &req, PATHCHECK_TIMEOUT_MS + 2000, on_check, cc)) {
			pathcheck_result(&n->pc, cc->key, &cc->ep, false, 0, now);
			free(cc);
			break;
		}
	}
	if (wait != UINT64_MAX)
		loop_timer_arm(n->l, &n->t_check, wait < 10 ? 10 : wait);
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
	if (changed)
		refresh_local(n);
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

	loop_timer_arm(n->l, &n->t_stun, period_ms(n->c->stun_interval_s));
	n->stun_last_start = loop_now(n->l);
	ret = stunprobe_start(&n->stun, n->listen_port);
	if (ret && ret != -EBUSY)
		log_debug("stun", "probe not started: %s", strerror(-ret));
}

/* ==== the agent's view: handshakes, traffic ==== */

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
	for (size_t i = 0; i < r->device->n_peers; i++) {
		const P2pwg__Peer *p = r->device->peers[i];
		struct node_entry *e = p->public_key.len == 32 ? node_entry_by_key(n, p->public_key.data) : NULL;

		rx += p->rx_bytes;
		tx += p->tx_bytes;
		if (!e)
			continue;
		if (e->handshake && p->last_handshake_sec &&
		    now - p->last_handshake_sec > PEERSET_STALE_S && !e->stale_reported) {
			e->stale_reported = true;
			stale = true;
			log_warn("wg", "handshake with %s is %lld s old; re-probing STUN", e->url,
				 (long long)(now - p->last_handshake_sec));
		}
		if (p->last_handshake_sec && now - p->last_handshake_sec <= PEERSET_STALE_S) {
			e->stale_reported = false;
			/* Just came up: check it now, not at its slot or retry. */
			if (!handshake_fresh(e, now) && !e->test_ok)
				prompt_at(n, e, 0);
		}
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
	prompt_arm(n);
	if (r->device->n_peers)
		log_info("wg", "traffic rx=%lluB tx=%lluB", (unsigned long long)rx, (unsigned long long)tx);
	/* A lost handshake may mean our NAT mapping moved: look again, at most every 10 s. */
	if (stale && loop_now(n->l) - n->stun_last_start > 10000)
		stun_now(n);
}

static bool any_prompt(const struct node *n)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->e[i].test_prompt)
			return true;
	return false;
}

/* Each test interval; every second while a peer awaits a prompt check, whose
 * handshake may turn fresh any moment (on_device checks it then). */
static void dev_now(void *arg)
{
	struct node *n = arg;
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__GetDevice gd = P2PWG__GET_DEVICE__INIT;

	loop_timer_arm(n->l, &n->t_dev,
		       any_prompt(n) ? cadence_jitter(DEV_PROMPT_MS, arc4random())
				     : period_ms(n->c->test_interval_s));
	req.msg_case = P2PWG__REQUEST__MSG_GET_DEVICE;
	req.get_device = &gd;
	agentlink_call(n->agent, &req, 5000, on_device, n);
}

/* ==== /test over the overlay ==== */

static uint64_t test_interval_ms(const struct node *n)
{
	return (uint64_t)n->c->test_interval_s * 1000;
}

static void dev_soon(struct node *n, uint64_t ms)
{
	if (!n->t_dev.armed || n->t_dev.at > loop_now(n->l) + ms)
		loop_timer_arm(n->l, &n->t_dev, ms);
}

/* The peer of the applied set with this key, or NULL. */
static const struct mesh_peer *applied_peer(const struct node *n, const uint8_t *key)
{
	for (size_t i = 0; n->applied_valid && i < n->applied.n_peers; i++)
		if (!memcmp(n->applied.peers[i].key, key, 32))
			return &n->applied.peers[i];
	return NULL;
}

static bool handshake_fresh(const struct node_entry *e, time_t now)
{
	return e->handshake && now - e->handshake <= PEERSET_STALE_S;
}

/* Arm t_prompt for the earliest prompt check due. */
static void prompt_arm(struct node *n)
{
	uint64_t at = UINT64_MAX, now = loop_now(n->l);

	for (size_t i = 0; i < n->n; i++)
		if (n->e[i].test_prompt && n->e[i].test_due < at)
			at = n->e[i].test_due;
	if (at == UINT64_MAX)
		loop_timer_disarm(n->l, &n->t_prompt);
	else
		loop_timer_arm(n->l, &n->t_prompt, at > now ? at - now : 0);
}

/* Give e a prompt check after ms (unless one is due sooner). */
static void prompt_at(struct node *n, struct node_entry *e, uint64_t ms)
{
	uint64_t at = loop_now(n->l) + ms;

	if (e->test_prompt && e->test_due <= at)
		return;
	e->test_prompt = true;
	e->test_due = at;
}

static bool test_start(struct node *n, struct node_entry *e, const struct mesh_peer *p,
		       bool fresh);

static uint64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void on_test(void *arg, const struct fetch_result *r)
{
	struct node_entry *e = arg;
	struct node *n = e->node;
	bool ok = r->code == CURLE_OK && r->status == 200 && !r->truncated;
	char ip[INET_ADDRSTRLEN];
	uint64_t wait;

	e->test = NULL;
	inet_ntop(AF_INET, &e->test_overlay, ip, sizeof(ip));
	if (!ok && !e->test_fresh) {
		const struct mesh_peer *p = applied_peer(n, e->info.wg_pubkey);

		log_debug("http", "no answer from %s on a kept connection (%s); once more on a new one",
			  ip, r->code != CURLE_OK ? r->error : "unexpected answer");
		if (p && p->overlay.s_addr == e->test_overlay.s_addr && test_start(n, e, p, true))
			return;
	}
	e->test_at = time(NULL);
	if (ok) {
		n->m_test_ok++;
		/* The peer chose these bytes: no escape sequence reaches a log or /status. */
		safetext_copy(e->test_result, sizeof(e->test_result), r->body,
			      strcspn(r->body, "\r\n"));
		log_info("http", "connected to %s: %s", ip, e->test_result);
		e->test_prompt = false;
		e->test_fails = 0;
		/* An answer crossed the tunnel: there is a handshake to show. */
		if (!handshake_fresh(e, e->test_at))
			dev_soon(n, DEV_SOON_MS);
	} else {
		n->m_test_fail++;
		safetext_copy(e->test_result, sizeof(e->test_result),
			      r->code != CURLE_OK ? r->error : "unexpected answer", SIZE_MAX);
		log_msg(e->test_ok ? LOG_LVL_WARN : LOG_LVL_DEBUG, "http", "cannot reach %s: %s", ip,
			e->test_result);
		/* The path it took may be gone: check it now rather than at
		 * its next recheck (minutes away on a steady mesh). */
		node_paths_suspect(n, e->info.wg_pubkey);
		/* Failed (a peer not configured yet, a lost moment): look again
		 * soon, backing off until the interval's tick takes it back. */
		wait = cadence_retry(++e->test_fails, test_interval_ms(n), arc4random());
		if (wait)
			prompt_at(n, e, wait);
		prompt_arm(n);
	}
	/* A pair's "up since" (or down since): the first result of this run. */
	if (!e->test_since_us || ok != e->test_ok)
		e->test_since_us = wall_us();
	e->test_ok = ok;
}

/* Start e's /test to p, unless one is in flight or WireGuard knows no
 * endpoint for p: a packet then makes wireguard-go attempt a handshake it
 * cannot send, which still holds its next attempt back 5 s (REKEY_TIMEOUT),
 * past the moment the endpoint arrives. Its arrival brings a prompt check. */
static bool test_start(struct node *n, struct node_entry *e, const struct mesh_peer *p, bool fresh)
{
	struct fetch_opts o = { .timeout_ms = TEST_TIMEOUT_MS, .max_bytes = 4096, .allow_http = true };
	char url[64];

	if (e->test || (!p->has_endpoint && !e->endpoint[0]))
		return false;
	/* The same connection from one probe to the next, as for node.json
	 * (and in a mesh that small): no TCP handshake and teardown through
	 * the tunnel per probe, which was most of an idle node's work. A
	 * peer that went away fails the probe all the same: its answer does
	 * not come. */
	o.keep_alive = !fresh && n->n <= LOOP_KEEP_PEERS + 1;
	if (o.keep_alive)
		o.timeout_ms = TEST_KEPT_TIMEOUT_MS;
	e->test_fresh = !o.keep_alive;
	e->test_overlay = p->overlay;
	snprintf(url, sizeof(url), "http://%s:8000/test", inet_ntoa(p->overlay));
	e->test = fetch_start(n->l, url, &o, on_test, e);
	return e->test != NULL;
}

/* A group of peers per tick, in turn (every peer up to CADENCE_GROUP_MAX):
 * each is checked once per interval, with one wake-up per group. Nodes'
 * ticks drift apart (jitter), so a peer's probes from its peers still
 * arrive spread out. A tick may come up to TEST_SLACK_MS late, with another
 * wake-up of the loop: the next one comes that much sooner, so the interval
 * holds. */
static void test_now(void *arg)
{
	struct node *n = arg;
	size_t np = n->applied_valid ? n->applied.n_peers : 0, per = cadence_group(np);
	uint64_t step = cadence_step(test_interval_ms(n), cadence_ticks(np));
	uint64_t now = loop_now(n->l), late = now > n->t_test.at ? now - n->t_test.at : 0;
	uint64_t ms = cadence_jitter(step, arc4random()), slack = step / 2;

	if (slack > TEST_SLACK_MS)
		slack = TEST_SLACK_MS;
	/* At most the slack is made up: a loop held up longer starts afresh. */
	if (late > slack)
		late = slack;
	loop_timer_arm_slack(n->l, &n->t_test, ms > late ? ms - late : 0, slack);
	for (size_t k = 0; k < per; k++) {
		const struct mesh_peer *p;
		struct node_entry *e;

		if (n->test_next >= np)
			n->test_next = 0;
		p = &n->applied.peers[n->test_next++];
		e = node_entry_by_key(n, p->key);
		if (e)
			test_start(n, e, p, false);
	}
}

/* The prompt checks that are due. Waiting for the interval's next tick
 * would cost up to a whole interval after it came up. */
static void prompt_now(void *arg)
{
	struct node *n = arg;
	uint64_t now = loop_now(n->l);

	for (size_t i = 0; i < n->n; i++) {
		struct node_entry *e = &n->e[i];
		const struct mesh_peer *p;

		if (!e->test_prompt || e->test_due > now)
			continue;
		e->test_prompt = false;
		p = e->known ? applied_peer(n, e->info.wg_pubkey) : NULL;
		if (p) /* else gone from the interface */
			test_start(n, e, p, false);
	}
	prompt_arm(n);
}

/* Peers the agent just configured, or whose address or endpoint just changed,
 * are checked at once (spread over a moment), not at the next tick of the
 * interval: WireGuard holds the first packets until the handshake is done. */
static void prompt_new_peers(struct node *n)
{
	size_t k = 0, np = n->applied.n_peers;

	for (size_t i = 0; i < np; i++) {
		const struct mesh_peer *p = &n->applied.peers[i];
		struct node_entry *e = node_entry_by_key(n, p->key);

		if (!e || e->test)
			continue;
		if (e->test_at && e->test_overlay.s_addr == p->overlay.s_addr && !p->send_endpoint)
			continue;
		e->test_fails = 0;
		prompt_at(n, e, cadence_prompt(k++, np, test_interval_ms(n), arc4random()));
	}
	if (k) {
		prompt_arm(n);
		dev_soon(n, DEV_PROMPT_MS);
	}
}

/* ==== the agent comes and goes ==== */

static void agent_up(void *arg, const P2pwg__HelloReply *h)
{
	struct node *n = arg;
	char k[B64_KEY_LEN + 1];

	if (n->have_key && memcmp(n->pubkey, h->public_key.data, 32))
		log_warn("agent", "wgagent's public key changed: this node has a new identity");
	if (!n->have_key || memcmp(n->pubkey, h->public_key.data, 32)) {
		peerset_free(&n->ps);
		peerset_init(&n->ps, &n->params, h->public_key.data,
			     n->c->self_url[0] ? n->c->self_url : NULL, n->c->leave_after);
	}
	memcpy(n->pubkey, h->public_key.data, 32);
	n->have_key = true;
	attest_set_key(n->att, n->pubkey);
	n->listen_port = (uint16_t)h->device->listen_port;
	snprintf(n->ifname, sizeof(n->ifname), "%s", h->device->ifname);
	snprintf(n->backend, sizeof(n->backend), "%s", h->device->backend);
	log_info("agent", "public key %s, WireGuard port %u", b64_key_encode(n->pubkey, k),
		 n->listen_port);
	remember_device(n, h->device);
	refresh_local(n);
	/* A restarted agent (or controld) gets the whole desired state again,
	 * once the cycle in flight (if any) has read every entry. */
	n->applied_valid = false;
	n->set_inflight = false;
	if (!n->outstanding)
		recompute(n, false);
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

/* A verdict arrived: decide again soon (batched like slow node.json answers). */
static void attest_changed(void *arg)
{
	struct node *n = arg;

	if (!n->t_recompute.armed)
		loop_timer_arm(n->l, &n->t_recompute, RECOMPUTE_DELAY_MS);
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
	n->att = attest_new(c, l, attest_changed, n);
	if (!n->att) {
		free(n);
		return NULL;
	}
	if (c->registry[0]) {
		struct fetch_opts o = https_opts(n, 0);

		n->reg = registry_new(l, c->registry, &o, on_registry, n);
		if (!n->reg) {
			attest_free(n->att);
			free(n);
			return NULL;
		}
	}
	n->agent = agentlink_new(l, c->agent_socket, &h);
	if (!n->agent) {
		registry_free(n->reg);
		attest_free(n->att);
		free(n);
		return NULL;
	}
	stunprobe_init(&n->stun, l, n->agent, c, on_stun, n);
	pathcheck_init(&n->pc, PATHCHECK_RATE);
	n->t_check = (struct loop_timer){ .cb = check_now, .arg = n };
	if (relay_new(n, &n->relay))
		log_warn("relay", "cannot start the relay; peers without a direct path stay down");
	n->t_poll = (struct loop_timer){ .cb = poll_now, .arg = n };
	n->t_test = (struct loop_timer){ .cb = test_now, .arg = n };
	n->t_prompt = (struct loop_timer){ .cb = prompt_now, .arg = n };
	n->t_stun = (struct loop_timer){ .cb = stun_now, .arg = n };
	n->t_dev = (struct loop_timer){ .cb = dev_now, .arg = n };
	n->t_recompute = (struct loop_timer){ .cb = recompute_now, .arg = n };
	n->t_refetch = (struct loop_timer){ .cb = refetch_now, .arg = n };
	loop_timer_arm(l, &n->t_poll, 0);
	loop_timer_arm(l, &n->t_test, (uint64_t)c->test_interval_s * 1000);
	return n;
}

char *node_json(struct node *n)
{
	return status_nodejson(n);
}

char *node_status(struct node *n)
{
	return status_document(n);
}

char *node_metrics(struct node *n)
{
	return status_metrics(n);
}

// SPDX-License-Identifier: MIT
#include "relay.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <h2o/http1.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "log.h"
#include "cadence.h"
#include "keymap.h"
#include "node.h"
#include "relayproto.h"
#include "resolver.h"

#define TICK_MS 1000
#define BACKOFF_MIN_MS 500
/* A peer that refuses (it has not read the list yet) or has no relay is
 * dialled at most this often: every dial is a TLS connection at the gateway. */
#define BACKOFF_MAX_MS 30000
#define UDP_PER_WAKEUP 64
/* Dials in flight at once: each is a TLS handshake at the gateway, and a
 * mesh starting on a busy machine wants many at the same moment. */
#define DIALS_MAX 4
/* After a direct path answers, the stream stays this long: the peer may be a
 * moment behind in leaving the relay, and its packets still come this way. */
#define LINGER_MS 10000
#define MAC_TIMEOUT_MS 3000
/* Before a stream is up only HELLO and AUTH may arrive: a few hundred bytes. */
#define PENDING_INPUT_MAX 4096
#define REFUSED_LOG_EVERY_S 10

enum stream_state { S_RESOLVING, S_CONNECTING, S_TLS, S_UPGRADING, S_HELLO, S_MAC, S_AUTH, S_UP };

struct bucket {
	double tokens;
	uint64_t at;
};

struct relay_link;

struct relay_stream {
	struct relay *r;
	struct relay_link *link; /* dialer: from the start; acceptor: once HELLO names a member */
	h2o_socket_t *sock;
	enum stream_state state;
	bool dialer, dead, writing, pending;
	bool upgrading; /* acceptor: h2o still owns the socket until on_upgraded */
	unsigned calls; /* agent requests in flight: the stream outlives them */
	unsigned busy;	/* process() runs: a close inside it must not free s */
	uint8_t peer[32];
	struct relayproto_hello mine, theirs;
	uint8_t mac_mine[RELAYPROTO_MAC_LEN], mac_expect[RELAYPROTO_MAC_LEN];
	h2o_buffer_t *q, *w; /* queued; being written */
	struct loop_timer timer;
	uint64_t last_rx, last_tx;
	struct bucket in, out;
	char host[256];
	uint16_t port;
	bool tls;
	struct relay_stream *next;
};

struct relay_link {
	struct relay *r;
	uint8_t key[32];
	time_t since; /* first seen configured */
	bool relayed;
	int fd; /* the loopback socket WireGuard sends to; -1 until relayed */
	struct loop_watch *watch;
	struct sockaddr_in local;
	struct relay_stream *up, *dial;
	unsigned backoff_ms;
	struct loop_timer redial, linger;
	time_t up_at;
	bool seen, said_fail;
	uint64_t tx_bytes, rx_bytes, tx_packets, rx_packets, dropped, connects, cuts;
	SSL_CTX *ctx; /* TLS to ctx_host, kept between dials */
	char ctx_host[256];
	struct relay_link *next;
};

struct relay {
	struct node *n;
	struct loop *l;
	struct resolver *res;
	struct relay_link *links;
	struct keymap by_key; /* links by key, unless by_key_dirty */
	bool by_key_dirty;
	struct relay_stream *streams;
	unsigned n_pending, n_relayed, n_dialing;
	/* The CA bundle, read once: reading it per dial cost more CPU than TLS. */
	X509_STORE *store;
	struct loop_timer tick;
	time_t refused_logged;
	bool said_full;
	uint64_t m_connects, m_cuts, m_refused, m_tx, m_rx, m_dropped, m_foreign;
	uint8_t buf[RELAYPROTO_MAX_PAYLOAD + 1];
};

static char *keyshort(const uint8_t *key, char *buf)
{
	b64_key_encode(key, buf);
	buf[8] = '\0';
	return buf;
}

/* ==== links: one per configured peer ==== */

static struct relay_link *link_find(struct relay *r, const uint8_t key[32])
{
	if (r->by_key_dirty) {
		keymap_clear(&r->by_key);
		r->by_key_dirty = false;
		for (struct relay_link *k = r->links; k && !r->by_key_dirty; k = k->next)
			if (keymap_put(&r->by_key, k->key, k))
				r->by_key_dirty = true; /* out of memory: searched instead */
	}
	if (!r->by_key_dirty)
		return keymap_get(&r->by_key, key);
	for (struct relay_link *k = r->links; k; k = k->next)
		if (!memcmp(k->key, key, 32))
			return k;
	return NULL;
}

static void on_redial(void *arg);
static void on_linger_over(void *arg);

static struct relay_link *link_get(struct relay *r, const uint8_t key[32])
{
	struct relay_link *k = link_find(r, key);

	if (k)
		return k;
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->r = r;
	memcpy(k->key, key, 32);
	k->fd = -1;
	k->since = time(NULL);
	k->backoff_ms = BACKOFF_MIN_MS;
	k->redial = (struct loop_timer){.cb = on_redial, .arg = k};
	k->linger = (struct loop_timer){.cb = on_linger_over, .arg = k};
	k->next = r->links;
	r->links = k;
	if (!r->by_key_dirty && keymap_put(&r->by_key, k->key, k))
		r->by_key_dirty = true;
	return k;
}

static void link_free(struct relay_link *k)
{
	SSL_CTX_free(k->ctx);
	free(k);
}

static const struct mesh_peer *configured(struct relay *r, const uint8_t key[32])
{
	struct node *n = r->n;

	for (size_t i = 0; n->applied_valid && i < n->applied.n_peers; i++)
		if (!memcmp(n->applied.peers[i].key, key, 32))
			return &n->applied.peers[i];
	return NULL;
}

/* A key of the current list that this node has configured as a peer. */
static bool member(struct relay *r, const uint8_t key[32])
{
	struct node_entry *e = node_entry_by_key(r->n, key);

	return e && !e->dropped[0] && memcmp(key, r->n->pubkey, 32) && configured(r, key);
}

static void recompute_soon(struct relay *r)
{
	loop_timer_arm(r->l, &r->n->t_recompute, 0);
}

/* ==== streams ==== */

static void stream_free(struct relay_stream *s)
{
	struct relay_stream **pp;

	for (pp = &s->r->streams; *pp && *pp != s; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = s->next;
	h2o_buffer_dispose(&s->q);
	h2o_buffer_dispose(&s->w);
	free(s);
}

/* Free a closed stream unless a lookup, an agent call, h2o's upgrade or a
 * process() up the stack still holds it; the holder calls this again. */
static void release(struct relay_stream *s)
{
	if (s->dead && !s->calls && !s->busy && !s->upgrading && s->state != S_RESOLVING)
		stream_free(s);
}

static void schedule_redial(struct relay_link *k, struct relay *r)
{
	if (!k->relayed || k->up || k->dial || k->redial.armed)
		return;
	/* Jittered: nodes started together do not all redial at one instant. */
	loop_timer_arm(r->l, &k->redial, cadence_jitter(k->backoff_ms, arc4random()));
	k->backoff_ms = k->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : k->backoff_ms * 2;
}

/* Close s with a reason; s is gone afterwards (or once its agent calls end). */
static void stream_close(struct relay_stream *s, const char *why)
{
	struct relay *r = s->r;
	struct relay_link *k = s->link;
	char kb[B64_KEY_LEN + 1];

	if (s->dead)
		return;
	s->dead = true;
	if (s->pending)
		r->n_pending--;
	s->pending = false;
	loop_timer_remove(r->l, &s->timer);
	if (s->sock) {
		h2o_socket_close(s->sock);
		s->sock = NULL;
	}
	if (k) {
		if (k->up == s) {
			k->up = NULL;
			k->cuts++;
			r->m_cuts++;
			k->backoff_ms = BACKOFF_MIN_MS;
			log_warn("relay", "stream with %s closed: %s; dialling again",
				 keyshort(k->key, kb), why);
			/* The peer may have closed it for a direct path that
			 * answers its checks: look at ours now, not at their turn. */
			node_paths_suspect(r->n, k->key);
		} else if (s->dialer && !k->up && !k->said_fail) {
			/* Said once until a stream comes up: a peer without a relay
			 * (an older version) is dialled again and again. */
			log_warn(
			    "relay",
			    "cannot open a relay stream to %s at %s: %s; retrying with backoff",
			    keyshort(k->key, kb), s->host, why);
			k->said_fail = true;
		} else {
			log_debug("relay", "stream %s %s ended: %s", s->dialer ? "to" : "from",
				  keyshort(k->key, kb), why);
		}
		if (k->dial == s) {
			k->dial = NULL;
			r->n_dialing--;
		}
		schedule_redial(k, r);
	} else {
		log_debug("relay", "stream ended before it named a member: %s", why);
	}
	release(s);
}

static size_t buffered(const struct relay_stream *s)
{
	return s->q->size + s->w->size;
}

static void on_written(h2o_socket_t *sock, const char *err);

static void flush(struct relay_stream *s)
{
	h2o_buffer_t *t;
	h2o_iovec_t v;

	if (s->dead || s->writing || !s->q->size || !s->sock)
		return;
	t = s->w;
	s->w = s->q;
	s->q = t;
	v = h2o_iovec_init(s->w->bytes, s->w->size);
	s->writing = true;
	s->last_tx = loop_now(s->r->l);
	h2o_socket_write(s->sock, &v, 1, on_written);
}

static void on_written(h2o_socket_t *sock, const char *err)
{
	struct relay_stream *s = sock->data;

	s->writing = false;
	h2o_buffer_consume(&s->w, s->w->size);
	if (err) {
		stream_close(s, err);
		return;
	}
	flush(s);
}

static void queue_raw(struct relay_stream *s, const void *p, size_t len)
{
	h2o_iovec_t v = h2o_buffer_reserve(&s->q, len);

	memcpy(v.base, p, len);
	s->q->size += len;
}

static void queue_frame(struct relay_stream *s, uint8_t type, const void *p, size_t len)
{
	uint8_t hdr[RELAYPROTO_HDR];

	relayproto_header(hdr, type, len);
	queue_raw(s, hdr, sizeof(hdr));
	if (len)
		queue_raw(s, p, len);
}

static bool bucket_take(struct relay *r, struct bucket *b, size_t n)
{
	uint64_t now = loop_now(r->l);
	double rate = r->n->c->relay_rate;
	double burst = rate / 4 > 4.0 * (RELAYPROTO_MAX_PAYLOAD + RELAYPROTO_HDR)
			   ? rate / 4
			   : 4.0 * (RELAYPROTO_MAX_PAYLOAD + RELAYPROTO_HDR);

	b->tokens += (double)(now - b->at) * rate / 1000.0;
	if (b->tokens > burst)
		b->tokens = burst;
	b->at = now;
	if (b->tokens < (double)n)
		return false;
	b->tokens -= (double)n;
	return true;
}

static void on_timer(void *arg);

static struct relay_stream *stream_new(struct relay *r, bool dialer)
{
	struct relay_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->r = r;
	s->dialer = dialer;
	h2o_buffer_init(&s->q, &h2o_socket_buffer_prototype);
	h2o_buffer_init(&s->w, &h2o_socket_buffer_prototype);
	s->timer = (struct loop_timer){.cb = on_timer, .arg = s};
	s->in.at = s->out.at = loop_now(r->l);
	s->next = r->streams;
	r->streams = s;
	/* Only strangers' streams are capped: this node's own dials are one
	 * per relayed peer at most. */
	s->pending = !dialer;
	r->n_pending += !dialer;
	loop_timer_arm(r->l, &s->timer, RELAY_HANDSHAKE_MS);
	return s;
}

/* Two streams for one peer (both dialled at once, or a re-dial while the old
 * one is not known dead yet): both ends keep the same one, the newest among
 * those dialled by the smaller key. */
static bool keep_new(const struct relay_stream *old, const struct relay_stream *s,
		     const uint8_t self[32])
{
	const uint8_t *a = old->dialer ? self : old->peer, *b = s->dialer ? self : s->peer;

	return !memcmp(a, b, 32) || memcmp(b, a, 32) < 0;
}

static void start_relaying(struct relay *r, struct relay_link *k, const char *why);
static void relay_drop(struct relay *r, struct relay_link *k, const char *why);

/* Whether a path check to e's node answered: then that path wins over the relay. */
static bool direct_answers(struct relay *r, const struct node_entry *e)
{
	struct sockaddr_in ep;

	return e && pathcheck_choose(&r->n->pc, e->info.wg_pubkey, &ep) != PATHCHECK_NONE;
}

static void stream_up(struct relay_stream *s)
{
	struct relay *r = s->r;
	struct relay_link *k = s->link;
	char kb[B64_KEY_LEN + 1];

	if (k->up && k->up != s) {
		struct relay_stream *old = k->up;

		if (!keep_new(old, s, r->n->pubkey)) {
			stream_close(s, "a stream with this peer is already up");
			return;
		}
		k->up = NULL; /* replaced, not cut */
		stream_close(old, "replaced by a newer stream");
	}
	if (s->dead)
		return;
	if (!k->relayed && direct_answers(r, node_entry_by_key(r->n, k->key))) {
		/* An answered path wins here too: a peer a moment behind in leaving
		 * the relay would otherwise pull this node back onto it, and the
		 * pair would flip between the two (a lost packet each time). */
		stream_close(s, "a direct path works");
		return;
	}
	if (k->dial == s) {
		k->dial = NULL;
		r->n_dialing--;
	}
	s->state = S_UP;
	if (s->pending)
		r->n_pending--;
	s->pending = false;
	k->up = s;
	k->said_fail = false;
	k->up_at = time(NULL);
	k->backoff_ms = BACKOFF_MIN_MS;
	loop_timer_disarm(r->l, &k->redial);
	k->connects++;
	r->m_connects++;
	s->last_rx = loop_now(r->l);
	log_info("relay", "stream with %s up (%s, via %s)", keyshort(k->key, kb),
		 s->dialer ? "dialled" : "accepted", s->dialer ? s->host : "this node's URL");
	if (!k->relayed)
		start_relaying(r, k, "the peer relays to this node");
	if (k->connects == 1)
		recompute_soon(r); /* WireGuard's endpoint moves to the relay now */
	loop_timer_arm(r->l, &s->timer, (uint64_t)r->n->c->relay_keepalive_s * 1000);
}

static void deliver(struct relay_stream *s, const uint8_t *p, size_t len)
{
	struct relay *r = s->r;
	struct relay_link *k = s->link;
	struct sockaddr_in wg = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(r->n->listen_port)};

	if (k->fd < 0 || !r->n->listen_port || !bucket_take(r, &s->in, len)) {
		k->dropped++;
		r->m_dropped++;
		return;
	}
	/* Only ever to the local WireGuard port. A full socket buffer drops the
	 * packet, as the network would. */
	if (sendto(k->fd, p, len, MSG_DONTWAIT, (struct sockaddr *)&wg, sizeof(wg)) < 0) {
		k->dropped++;
		r->m_dropped++;
		return;
	}
	k->rx_bytes += len;
	k->rx_packets++;
	r->m_rx += len;
}

static int mac_start(struct relay_stream *s);

/* The acceptor read the dialer's HELLO. */
static int on_hello_acceptor(struct relay_stream *s, const struct relayproto_hello *h)
{
	struct relay *r = s->r;
	char kb[B64_KEY_LEN + 1];

	if (memcmp(h->to, r->n->pubkey, 32))
		return -EACCES;
	if (!member(r, h->from)) {
		log_debug("relay", "refused a stream from key %s: not a configured member",
			  keyshort(h->from, kb));
		return -EACCES;
	}
	s->link = link_get(r, h->from);
	if (!s->link)
		return -ENOMEM;
	if (!s->link->relayed && r->n_relayed >= r->n->c->relay_max)
		return -EUSERS;
	memcpy(s->peer, h->from, 32);
	s->theirs = *h;
	memcpy(s->mine.from, r->n->pubkey, 32);
	memcpy(s->mine.to, h->from, 32);
	if (RAND_bytes(s->mine.nonce, sizeof(s->mine.nonce)) != 1)
		return -EIO;
	return mac_start(s);
}

static int on_hello_dialer(struct relay_stream *s, const struct relayproto_hello *h)
{
	if (memcmp(h->from, s->peer, 32) || memcmp(h->to, s->r->n->pubkey, 32))
		return -EACCES;
	s->theirs = *h;
	return mac_start(s);
}

static void refused(struct relay *r, const char *why)
{
	time_t now = time(NULL);

	r->m_refused++;
	if (now - r->refused_logged >= REFUSED_LOG_EVERY_S) {
		log_warn("relay", "refused a relay stream: %s (%llu refused so far)", why,
			 (unsigned long long)r->m_refused);
		r->refused_logged = now;
	}
}

/* Parse what arrived. 0, or -1 when s was closed. */
static int process_frames(struct relay_stream *s)
{
	struct relayproto_frame f;
	struct relayproto_hello h;
	size_t used;
	int ret;

	while (!s->dead && s->sock) {
		h2o_buffer_t *in = s->sock->input;

		if (s->state == S_UPGRADING) {
			int status;

			ret = relayproto_upgrade_response((uint8_t *)in->bytes, in->size, &used,
							  &status);
			if (ret == 0)
				return 0;
			if (ret < 0) {
				char why[64];

				snprintf(why, sizeof(why), "the upgrade was answered %s %d",
					 status ? "HTTP" : "with garbage", status);
				stream_close(s, why);
				return -1;
			}
			h2o_buffer_consume(&s->sock->input, used);
			memcpy(s->mine.from, s->r->n->pubkey, 32);
			memcpy(s->mine.to, s->peer, 32);
			if (RAND_bytes(s->mine.nonce, sizeof(s->mine.nonce)) != 1) {
				stream_close(s, "no randomness");
				return -1;
			}
			{
				uint8_t b[RELAYPROTO_HELLO_LEN];

				relayproto_hello_build(&s->mine, b);
				queue_frame(s, RELAYPROTO_HELLO, b, sizeof(b));
			}
			s->state = S_HELLO;
			flush(s);
			continue;
		}
		if (s->state != S_UP && in->size > PENDING_INPUT_MAX) {
			if (!s->dialer)
				refused(s->r, "too many bytes before authentication");
			stream_close(s, "too many bytes before authentication");
			return -1;
		}
		if (s->state == S_MAC)
			return 0; /* the agent is computing; the rest waits in the buffer */
		ret = relayproto_parse((uint8_t *)in->bytes, in->size, &f, &used);
		if (ret == 0)
			return 0;
		if (ret < 0) {
			if (s->state != S_UP && !s->dialer)
				refused(s->r, "not relay frames");
			stream_close(s, "malformed frame");
			return -1;
		}
		s->last_rx = loop_now(s->r->l);
		ret = 0;
		switch (s->state) {
		case S_HELLO:
			if (relayproto_hello_parse(&f, &h))
				ret = -EPROTO;
			else
				ret = s->dialer ? on_hello_dialer(s, &h) : on_hello_acceptor(s, &h);
			break;
		case S_AUTH:
			if (f.type != RELAYPROTO_AUTH ||
			    CRYPTO_memcmp(f.payload, s->mac_expect, RELAYPROTO_MAC_LEN)) {
				ret = -EACCES;
				break;
			}
			if (s->dialer)
				queue_frame(s, RELAYPROTO_AUTH, s->mac_mine, RELAYPROTO_MAC_LEN);
			h2o_buffer_consume(&s->sock->input, used);
			stream_up(s);
			flush(s);
			continue;
		case S_UP:
			if (f.type == RELAYPROTO_DATA)
				deliver(s, f.payload, f.len);
			else if (f.type != RELAYPROTO_PING)
				ret = -EPROTO;
			break;
		default:
			ret = -EPROTO;
		}
		if (ret) {
			const char *why = ret == -EACCES
					      ? "not a member of the list, or a wrong MAC"
					  : ret == -EUSERS ? "too many relayed peers"
							   : "protocol error";

			if (!s->dialer && s->state != S_UP)
				refused(s->r, why);
			stream_close(s, why);
			return -1;
		}
		if (s->sock)
			h2o_buffer_consume(&s->sock->input, used);
	}
	return s->dead ? -1 : 0;
}

/* process_frames() may close s at any step (a refused frame, a duplicate
 * stream): s stays allocated until it returns. */
static void process(struct relay_stream *s)
{
	s->busy++;
	process_frames(s);
	s->busy--;
	release(s);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
	struct relay_stream *s = sock->data;

	if (err) {
		stream_close(s, err);
		return;
	}
	process(s);
}

struct mac_call {
	struct relay_stream *s;
	uint8_t *dst;
};

static void on_mac(void *arg, const P2pwg__Response *resp, const char *error)
{
	struct mac_call *c = arg;
	struct relay_stream *s = c->s;
	uint8_t *dst = c->dst;

	free(c);
	s->calls--;
	if (s->dead) {
		release(s);
		return;
	}
	if (!resp || resp->status != P2PWG__STATUS__OK ||
	    resp->msg_case != P2PWG__RESPONSE__MSG_RELAY_AUTH ||
	    resp->relay_auth->mac.len != RELAYPROTO_MAC_LEN) {
		log_warn("relay", "wgagent gave no relay MAC: %s", resp ? resp->error : error);
		stream_close(s, "wgagent gave no MAC");
		return;
	}
	memcpy(dst, resp->relay_auth->mac.data, RELAYPROTO_MAC_LEN);
	if (s->calls)
		return;
	s->state = S_AUTH;
	if (!s->dialer) {
		uint8_t b[RELAYPROTO_HELLO_LEN];

		relayproto_hello_build(&s->mine, b);
		queue_frame(s, RELAYPROTO_HELLO, b, sizeof(b));
		queue_frame(s, RELAYPROTO_AUTH, s->mac_mine, RELAYPROTO_MAC_LEN);
		flush(s);
	}
	process(s);
}

static int mac_call(struct relay_stream *s, char role, uint8_t *dst)
{
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__RelayAuth ra = P2PWG__RELAY_AUTH__INIT;
	uint8_t ch[RELAYPROTO_CHALLENGE_LEN];
	struct mac_call *c = malloc(sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->s = s;
	c->dst = dst;
	relayproto_challenge(role, s->dialer ? &s->mine : &s->theirs,
			     s->dialer ? &s->theirs : &s->mine, ch);
	ra.peer_key.data = s->peer;
	ra.peer_key.len = 32;
	ra.challenge.data = ch;
	ra.challenge.len = sizeof(ch);
	req.msg_case = P2PWG__REQUEST__MSG_RELAY_AUTH;
	req.relay_auth = &ra;
	ret = agentlink_call(s->r->n->agent, &req, MAC_TIMEOUT_MS, on_mac, c);
	if (ret) {
		free(c);
		return ret;
	}
	s->calls++;
	return 0;
}

/* Both MACs of this stream: the one this end sends, the one it expects. */
static int mac_start(struct relay_stream *s)
{
	int ret;

	s->state = S_MAC;
	ret = mac_call(s, s->dialer ? 'C' : 'S', s->mac_mine);
	if (!ret)
		ret = mac_call(s, s->dialer ? 'S' : 'C', s->mac_expect);
	return ret;
}

static void on_timer(void *arg)
{
	struct relay_stream *s = arg;
	struct relay *r = s->r;
	uint64_t now = loop_now(r->l), ka = (uint64_t)r->n->c->relay_keepalive_s * 1000;

	if (s->state != S_UP) {
		if (!s->dialer && s->state <= S_HELLO)
			refused(r, "no HELLO in time");
		stream_close(s, "handshake timed out");
		return;
	}
	/* Both ends ping, so silence means the path is gone even when the
	 * gateway keeps the TCP connection open. */
	if (now - s->last_rx > 3 * ka + 2000) {
		stream_close(s, "the peer went silent");
		return;
	}
	if (now - s->last_tx + 100 >= ka) {
		queue_frame(s, RELAYPROTO_PING, NULL, 0);
		flush(s);
	}
	loop_timer_arm(r->l, &s->timer, ka);
}

/* ==== the acceptor: GET /relay with Upgrade ==== */

static void on_upgraded(void *arg, h2o_socket_t *sock, size_t reqsize)
{
	struct relay_stream *s = arg;

	s->upgrading = false;
	if (s->dead) {
		if (sock)
			h2o_socket_close(sock);
		release(s);
		return;
	}
	if (!sock) {
		stream_close(s, "the upgrade failed");
		return;
	}
	s->sock = sock;
	sock->data = s;
	h2o_buffer_consume(&sock->input, reqsize);
	s->state = S_HELLO;
	h2o_socket_read_start(sock, on_read);
	process(s);
}

int relay_accept(struct relay *r, h2o_req_t *req)
{
	struct relay_stream *s;

	if (!r || !r->n->c->relay || !r->n->have_key) {
		h2o_send_error_generic(req, 404, "Not Found", "not found\n", 0);
		return 0;
	}
	if (req->version != 0x101 || !req->upgrade.base ||
	    !h2o_lcstris(req->upgrade.base, req->upgrade.len, H2O_STRLIT(RELAYPROTO_UPGRADE))) {
		h2o_send_error_generic(req, 426, "Upgrade Required",
				       "HTTP/1.1 with Upgrade: " RELAYPROTO_UPGRADE "\n", 0);
		return 0;
	}
	if (r->n_pending >= RELAY_MAX_PENDING) {
		/* Strangers holding every slot would keep members out: the oldest
		 * stream that has not yet named a member makes room (a member's
		 * HELLO comes within a round trip). */
		struct relay_stream *old = NULL;

		for (s = r->streams; s; s = s->next)
			if (!s->dead && !s->dialer && s->state == S_HELLO)
				old = s;
		if (!old) {
			refused(r, "too many streams authenticating at once");
			h2o_send_error_generic(req, 503, "Service Unavailable", "busy\n", 0);
			return 0;
		}
		refused(r, "evicted: the oldest of too many streams authenticating at once");
		stream_close(old, "evicted for a newer stream");
	}
	s = stream_new(r, false);
	if (!s) {
		h2o_send_error_generic(req, 503, "Service Unavailable", "out of memory\n", 0);
		return 0;
	}
	s->state = S_UPGRADING; /* until the 101 is written: nothing is read */
	s->upgrading = true;
	req->res.status = 101;
	req->res.reason = "Switching Protocols";
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_UPGRADE, NULL,
		       H2O_STRLIT(RELAYPROTO_UPGRADE));
	h2o_http1_upgrade(req, NULL, 0, on_upgraded, s);
	return 0;
}

/* ==== the dialer ==== */

static void on_tls(h2o_socket_t *sock, const char *err)
{
	struct relay_stream *s = sock->data;
	char req[512];
	int len;

	if (err) {
		stream_close(s, err);
		return;
	}
	len = snprintf(req, sizeof(req),
		       "GET " RELAYPROTO_PATH " HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
		       "Upgrade: " RELAYPROTO_UPGRADE "\r\nUser-Agent: p2pwg\r\n\r\n",
		       s->host);
	queue_raw(s, req, (size_t)len);
	s->state = S_UPGRADING;
	flush(s);
	h2o_socket_read_start(sock, on_read);
}

/* The CA bundle as one store, read at the first dial and shared by every
 * link's context. */
static X509_STORE *ca_store(struct relay *r)
{
	const char *ca = r->n->c->ca_bundle;
	X509_STORE *st;

	if (r->store)
		return r->store;
	st = X509_STORE_new();
	if (st && (ca[0] ? X509_STORE_load_file(st, ca) : X509_STORE_set_default_paths(st)) != 1) {
		X509_STORE_free(st);
		st = NULL;
	}
	return r->store = st;
}

/* k's TLS context for host: made once and kept while the host stays, since
 * making one (ciphers, providers) costs as much as the handshake itself. */
static SSL_CTX *client_ctx(struct relay *r, struct relay_link *k, const char *host)
{
	X509_STORE *st = ca_store(r);
	SSL_CTX *ctx;

	if (k->ctx && !strcmp(k->ctx_host, host))
		return k->ctx;
	if (!st || strlen(host) >= sizeof(k->ctx_host) || !(ctx = SSL_CTX_new(TLS_client_method())))
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* OpenSSL itself checks the chain and the name during the handshake. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set1_cert_store(ctx, st);
	if (X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(ctx), host, 0) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_free(k->ctx);
	k->ctx = ctx;
	snprintf(k->ctx_host, sizeof(k->ctx_host), "%s", host);
	return ctx;
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
	struct relay_stream *s = sock->data;
	SSL_CTX *ctx;

	if (err) {
		stream_close(s, err);
		return;
	}
	if (!s->tls) {
		on_tls(sock, NULL);
		return;
	}
	ctx = s->link ? client_ctx(s->r, s->link, s->host) : NULL;
	if (!ctx) {
		stream_close(s, "cannot set up TLS (CA bundle?)");
		return;
	}
	s->state = S_TLS;
	h2o_socket_ssl_handshake(sock, ctx, s->host, on_tls);
}

static void on_resolved(void *arg, const struct in_addr *addr, const char *error)
{
	struct relay_stream *s = arg;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char why[300];

	s->state = S_CONNECTING;
	if (s->dead) {
		release(s);
		return;
	}
	if (!addr) {
		snprintf(why, sizeof(why), "cannot resolve %s: %s", s->host, error);
		stream_close(s, why);
		return;
	}
	sin.sin_addr = *addr;
	sin.sin_port = htons(s->port);
	s->sock =
	    h2o_socket_connect(loop_h2o(s->r->l), (struct sockaddr *)&sin, sizeof(sin), on_connect);
	if (!s->sock) {
		stream_close(s, "cannot connect");
		return;
	}
	s->sock->data = s;
}

/* Split url into host, port and whether it is TLS. 0 or -EINVAL. */
static int url_host(const char *url, char *host, size_t hlen, uint16_t *port, bool *tls)
{
	CURLU *u = curl_url();
	char *h = NULL, *p = NULL, *scheme = NULL;
	int ret = -EINVAL;

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) ||
	    curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) || strlen(h) >= hlen)
		goto out;
	snprintf(host, hlen, "%s", h);
	*port = (uint16_t)atoi(p);
	*tls = !strcmp(scheme, "https");
	ret = *port ? 0 : -EINVAL;
out:
	curl_free(h);
	curl_free(p);
	curl_free(scheme);
	curl_url_cleanup(u);
	return ret;
}

static void dial(struct relay *r, struct relay_link *k)
{
	struct node_entry *e = node_entry_by_key(r->n, k->key);
	struct relay_stream *s;
	char kb[B64_KEY_LEN + 1];
	int ret;

	if (!e || k->up || k->dial)
		return;
	if (r->n_dialing >= DIALS_MAX) {
		/* Its turn comes when one ends; the backoff stays as it was. */
		loop_timer_arm(r->l, &k->redial, cadence_jitter(BACKOFF_MIN_MS * 2, arc4random()));
		return;
	}
	s = stream_new(r, true);
	if (!s) {
		schedule_redial(k, r);
		return;
	}
	s->link = k;
	memcpy(s->peer, k->key, 32);
	k->dial = s;
	r->n_dialing++;
	if (url_host(e->url, s->host, sizeof(s->host), &s->port, &s->tls)) {
		stream_close(s, "the peer's URL has no usable host");
		return;
	}
	log_debug("relay", "dialling %s at %s:%u", keyshort(k->key, kb), s->host, s->port);
	s->state = S_RESOLVING;
	ret = resolver_lookup(r->res, s->host, on_resolved, s);
	if (ret) {
		s->state = S_CONNECTING;
		stream_close(s, "cannot start the lookup");
	}
}

static void on_redial(void *arg)
{
	struct relay_link *k = arg;

	if (k->relayed)
		dial(k->r, k);
}

/* ==== the loopback socket: WireGuard's side ==== */

static void on_udp(void *arg, int fd, int events)
{
	struct relay_link *k = arg;
	struct relay *r = k->r;
	struct sockaddr_in src;
	socklen_t sl;

	(void)fd;
	(void)events;
	for (int i = 0; i < UDP_PER_WAKEUP; i++) {
		uint8_t *buf = r->buf;
		ssize_t n;

		sl = sizeof(src);
		n = recvfrom(k->fd, buf, sizeof(r->buf), MSG_DONTWAIT, (struct sockaddr *)&src,
			     &sl);
		if (n < 0)
			break;
		/* Only the local WireGuard port is served. */
		if (n == 0 || (size_t)n > RELAYPROTO_MAX_PAYLOAD ||
		    src.sin_addr.s_addr != htonl(INADDR_LOOPBACK) ||
		    src.sin_port != htons(r->n->listen_port)) {
			r->m_foreign++;
			continue;
		}
		if (!k->up) {
			k->dropped++;
			r->m_dropped++;
			continue;
		}
		if (buffered(k->up) + (size_t)n + RELAYPROTO_HDR > RELAY_MAX_BUFFERED ||
		    !bucket_take(r, &k->up->out, (size_t)n)) {
			k->dropped++;
			r->m_dropped++;
			continue;
		}
		queue_frame(k->up, RELAYPROTO_DATA, buf, (size_t)n);
		k->tx_bytes += (size_t)n;
		k->tx_packets++;
		r->m_tx += (size_t)n;
	}
	if (k->up)
		flush(k->up);
}

/* ==== deciding ==== */

static void start_relaying(struct relay *r, struct relay_link *k, const char *why)
{
	struct node_entry *e = node_entry_by_key(r->n, k->key);
	socklen_t sl = sizeof(k->local);
	char kb[B64_KEY_LEN + 1];

	if (k->relayed)
		return;
	if (r->n_relayed >= r->n->c->relay_max) {
		if (!r->said_full)
			log_warn("relay",
				 "%u peers relayed, the most allowed (P2PWG_RELAY_MAX); "
				 "not relaying %s",
				 r->n_relayed, keyshort(k->key, kb));
		r->said_full = true;
		return;
	}
	if (k->fd < 0) {
		k->local = (struct sockaddr_in){.sin_family = AF_INET,
						.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		k->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (k->fd < 0 || bind(k->fd, (struct sockaddr *)&k->local, sizeof(k->local)) ||
		    getsockname(k->fd, (struct sockaddr *)&k->local, &sl) ||
		    !(k->watch = loop_watch_new(r->l, k->fd, on_udp, k))) {
			log_err("relay", "cannot open a loopback socket for %s: %s",
				keyshort(k->key, kb), strerror(errno));
			if (k->fd >= 0)
				close(k->fd);
			k->fd = -1;
			return;
		}
		loop_watch_set(k->watch, true, false);
	}
	k->relayed = true;
	r->n_relayed++;
	loop_timer_remove(r->l, &k->linger);
	log_info(
	    "relay",
	    "relaying %s (%s) through %s (loopback 127.0.0.1:%u for WireGuard once a stream is up)",
	    keyshort(k->key, kb), why, e ? e->url : "its stream", ntohs(k->local.sin_port));
	if (!k->up)
		dial(r, k);
	recompute_soon(r);
}

static void stop_relaying(struct relay *r, struct relay_link *k)
{
	struct relay_stream *s;

	/* Every live stream of k, also those still authenticating. */
	do {
		for (s = r->streams; s && (s->dead || s->link != k); s = s->next)
			;
		if (s)
			stream_close(s, "no longer relayed");
	} while (s);
	loop_timer_remove(r->l, &k->redial);
	loop_timer_remove(r->l, &k->linger);
	if (k->watch)
		loop_watch_free(k->watch);
	k->watch = NULL;
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	if (k->relayed)
		r->n_relayed--;
	k->relayed = false;
	r->said_full = false;
}

/*
 * Whether to relay a configured peer: the one place that decides, so path
 * checks can take it over. Relay when the peer's node.json says its NAT is
 * symmetric (no punching through it), or when WireGuard has had no fresh
 * handshake with it for P2PWG_RELAY_AFTER seconds since it was configured,
 * or when WireGuard still sends to a relay socket of a controld before us.
 * A relayed peer stays relayed until relay_release().
 */
static const char *relay_wanted(struct relay *r, const struct relay_link *k,
				const struct node_entry *e, time_t now)
{
	bool fresh = e && e->handshake && now - e->handshake <= PEERSET_STALE_S;

	/* A path that answered a check wins (node.c releases the relay then). */
	if (direct_answers(r, e))
		return NULL;
	if (e && !strncmp(e->endpoint, "127.", 4))
		return "WireGuard already sends to a relay socket (controld restarted)";
	if (e && !strcmp(e->info.nat, "symmetric") && !fresh)
		return "its NAT is symmetric";
	if (!fresh && now - k->since >= (time_t)r->n->c->relay_after_s)
		return "no handshake on its published endpoint";
	return NULL;
}

/* A relay chosen while the peer simply was not up yet (it had not read the
 * list, its controld was starting): WireGuard found it directly before any
 * stream came up. Dialling on would only load the gateway, and a stream
 * coming up later would move a working session onto the relay. */
static bool direct_first(const struct relay_link *k, const struct node_entry *e, time_t now)
{
	return k->relayed && !k->up && !k->connects && e && e->handshake &&
	       now - e->handshake <= PEERSET_STALE_S && e->endpoint[0] &&
	       strncmp(e->endpoint, "127.", 4);
}

static void on_tick(void *arg)
{
	struct relay *r = arg;
	struct node *n = r->n;
	time_t now = time(NULL);
	struct relay_link **pp, *k;
	bool started = false;

	/* Within a second more, with whatever wakes the loop then (a probe's
	 * tick comes every half second in a mesh of 20). */
	loop_timer_arm_slack(r->l, &r->tick, TICK_MS, TICK_MS);
	if (!n->have_key || !n->applied_valid || !n->applied.found_self)
		return;
	for (k = r->links; k; k = k->next)
		k->seen = false;
	for (size_t i = 0; i < n->applied.n_peers; i++) {
		const struct mesh_peer *p = &n->applied.peers[i];
		struct node_entry *e = node_entry_by_key(n, p->key);
		const char *why;

		k = link_get(r, p->key);
		if (!k)
			continue;
		k->seen = true;
		/* One new relayed peer a second: a mesh that is merely slow to form
		 * (a busy machine, a late list) must not turn into a wave of dials. */
		if (!started && !k->relayed && (why = relay_wanted(r, k, e, now))) {
			start_relaying(r, k, why);
			started = true;
		} else if (direct_first(k, e, now)) {
			relay_drop(r, k, "a direct session came up before any relay stream");
		}
		/* Whatever stopped the last dial, a relayed peer is dialled again. */
		schedule_redial(k, r);
	}
	/* Peers that left the list take their stream and socket with them. */
	for (pp = &r->links; (k = *pp);) {
		if (k->seen) {
			pp = &k->next;
			continue;
		}
		stop_relaying(r, k);
		*pp = k->next;
		link_free(k);
		r->by_key_dirty = true;
	}
}

/* ==== what the rest of controld sees ==== */

bool relay_endpoint(struct relay *r, const uint8_t key[32], struct sockaddr_in *out)
{
	struct relay_link *k = r ? link_find(r, key) : NULL;

	/* Not before a stream has come up once: a peer that cannot relay (an
	 * older version, a URL that does not answer) keeps its published
	 * endpoint. After that, cuts leave it: the session waits for the redial. */
	if (!k || !k->relayed || k->fd < 0 || !k->connects)
		return false;
	*out = k->local;
	return true;
}

void relay_steer(struct relay *r, struct mesh_state *s, const struct peerset *ps)
{
	for (size_t i = 0; i < s->n_peers; i++) {
		struct mesh_peer *p = &s->peers[i];
		struct sockaddr_in ep;
		bool has = false;

		if (!relay_endpoint(r, p->key, &ep))
			continue;
		for (size_t j = 0; j < ps->n_dev; j++)
			if (!memcmp(ps->dev[j].key, p->key, 32))
				has = ps->dev[j].has_ep &&
				      ps->dev[j].ep.sin_addr.s_addr == ep.sin_addr.s_addr &&
				      ps->dev[j].ep.sin_port == ep.sin_port;
		p->has_endpoint = true;
		p->endpoint = ep;
		p->keepalive = MESH_KEEPALIVE;
		p->send_endpoint = !has;
	}
}

static void relay_drop(struct relay *r, struct relay_link *k, const char *why)
{
	char kb[B64_KEY_LEN + 1];

	log_info("relay", "no longer relaying %s: %s", keyshort(k->key, kb), why);
	stop_relaying(r, k);
	k->since = time(NULL);
	recompute_soon(r);
}

static void on_linger_over(void *arg)
{
	struct relay_link *k = arg;

	if (!k->relayed)
		stop_relaying(k->r, k);
}

void relay_release(struct relay *r, const uint8_t key[32])
{
	struct relay_link *k = r ? link_find(r, key) : NULL;
	char kb[B64_KEY_LEN + 1];

	if (!k || !k->relayed)
		return;
	/* WireGuard leaves the relay now (relay_endpoint says no); the socket and
	 * the stream stay LINGER_MS for what the peer still sends through them. */
	log_info("relay", "no longer relaying %s: a direct path works", keyshort(key, kb));
	k->relayed = false;
	r->n_relayed--;
	r->said_full = false;
	loop_timer_remove(r->l, &k->redial);
	loop_timer_arm(r->l, &k->linger, LINGER_MS);
	k->since = time(NULL);
	recompute_soon(r);
}

bool relay_status_peer(struct relay *r, const uint8_t key[32], const char *wg_endpoint, json_t *p)
{
	struct relay_link *k = r ? link_find(r, key) : NULL;
	json_t *o;
	char ep[32];
	bool used;

	if (!k || !k->relayed)
		return false;
	snprintf(ep, sizeof(ep), "127.0.0.1:%u", ntohs(k->local.sin_port));
	used = wg_endpoint && !strcmp(wg_endpoint, ep);
	o = json_object();
	json_object_set_new(o, "state",
			    json_string(k->up	  ? "up"
					: k->dial ? "connecting"
						  : "waiting"));
	json_object_set_new(o, "local", json_string(ep));
	json_object_set_new(
	    o, "via", k->up ? json_string(k->up->dialer ? "dialled" : "accepted") : json_null());
	json_object_set_new(o, "up_s", k->up ? json_integer(time(NULL) - k->up_at) : json_null());
	json_object_set_new(o, "tx_bytes", json_integer((json_int_t)k->tx_bytes));
	json_object_set_new(o, "rx_bytes", json_integer((json_int_t)k->rx_bytes));
	json_object_set_new(o, "tx_packets", json_integer((json_int_t)k->tx_packets));
	json_object_set_new(o, "rx_packets", json_integer((json_int_t)k->rx_packets));
	json_object_set_new(o, "dropped", json_integer((json_int_t)k->dropped));
	json_object_set_new(o, "connects", json_integer((json_int_t)k->connects));
	json_object_set_new(o, "cuts", json_integer((json_int_t)k->cuts));
	json_object_set_new(p, "relay", o);
	return used;
}

void relay_metrics(struct relay *r, FILE *f)
{
	unsigned up = 0;

	if (!r)
		return;
	for (struct relay_link *k = r->links; k; k = k->next)
		up += k->up != NULL;
#define M(name, type, help, fmt, ...)                                                              \
	fprintf(f,                                                                                 \
		"# HELP p2pwg_relay_" name " " help "\n# TYPE p2pwg_relay_" name " " type          \
		"\np2pwg_relay_" name " " fmt "\n",                                                \
		__VA_ARGS__)
	M("peers", "gauge", "peers relayed", "%u", r->n_relayed);
	M("streams_up", "gauge", "relay streams up", "%u", up);
	M("streams_pending", "gauge", "relay streams authenticating", "%u", r->n_pending);
	M("connects_total", "counter", "relay streams that came up", "%llu",
	  (unsigned long long)r->m_connects);
	M("cuts_total", "counter", "relay streams that were up and closed", "%llu",
	  (unsigned long long)r->m_cuts);
	M("refused_total", "counter", "relay streams refused (strangers, bad MACs, limits)", "%llu",
	  (unsigned long long)r->m_refused);
	M("tx_bytes_total", "counter", "WireGuard bytes sent over relay streams", "%llu",
	  (unsigned long long)r->m_tx);
	M("rx_bytes_total", "counter", "WireGuard bytes received over relay streams", "%llu",
	  (unsigned long long)r->m_rx);
	M("dropped_total", "counter", "packets dropped (no stream, rate, buffer)", "%llu",
	  (unsigned long long)r->m_dropped);
	M("foreign_total", "counter",
	  "datagrams on a relay socket not from the local WireGuard port", "%llu",
	  (unsigned long long)r->m_foreign);
#undef M
}

int relay_new(struct node *n, struct relay **out)
{
	struct relay *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	r->n = n;
	r->l = n->l;
	ret = resolver_new(n->l, &r->res);
	if (ret) {
		free(r);
		return ret;
	}
	r->tick = (struct loop_timer){.cb = on_tick, .arg = r};
	if (n->c->relay)
		loop_timer_arm_slack(r->l, &r->tick, TICK_MS, TICK_MS);
	*out = r;
	return 0;
}

void relay_free(struct relay *r)
{
	struct relay_link *k;

	if (!r)
		return;
	while ((k = r->links)) {
		stop_relaying(r, k);
		r->links = k->next;
		link_free(k);
	}
	keymap_free(&r->by_key);
	/* At exit: nothing runs the loop again, so no callback comes back. */
	while (r->streams) {
		struct relay_stream *s = r->streams;

		if (s->sock)
			h2o_socket_close(s->sock);
		loop_timer_remove(r->l, &s->timer);
		stream_free(s);
	}
	loop_timer_remove(r->l, &r->tick);
	resolver_free(r->res);
	X509_STORE_free(r->store);
	free(r);
}

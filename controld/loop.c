// SPDX-License-Identifier: MIT
#include "loop.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"

/* A socket libcurl asked us to watch (a loop_watch: h2o watches a dup of it,
 * so closing the watcher never closes curl's descriptor). */
struct curlsock {
	struct loop *l;
	struct loop_watch *w;
};

struct transfer {
	struct loop *l;
	CURL *easy;
	fetch_cb cb;
	void *arg;
	char *buf;
	size_t len, cap, max;
	bool truncated;
	char etag[256];
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs;
	bool tls;      /* https: a TLS context and handshake buffers while it runs */
	bool queued;   /* waiting for a starting slot, not yet in the multi handle */
	bool connected; /* curl waited to read its connection: past the TCP
			 * connect (libcurl 7.88 times the connect only once TLS
			 * is up too); a name's lookup does not count */
	uint64_t started; /* mono ms it went into the multi handle */
	uint64_t queued_at; /* mono ms fetch_start queued it */
	long timeout_ms;
	/* While queued: the request, copied, and no libcurl handle yet (one
	 * costs ~5 KiB, and a cycle queues every peer's node.json at once). */
	char *q_url;
	struct fetch_opts q_opts;
	struct transfer *prev, *next;
	struct transfer *qnext;
};

/* A CA bundle read into one store, shared by every connection that trusts it. */
struct ca_store {
	char *path; /* "" for the system's */
	X509_STORE *st;
	struct ca_store *next;
};

struct loop {
	h2o_evloop_t *ev;
	CURLM *multi;
	struct ca_store *stores;
	unsigned ca_loads;
	uint64_t curl_at; /* 0: no curl timeout pending */
	struct loop_timer *timers;
	struct transfer *transfers;
	size_t n_transfers;
	size_t n_tls; /* of them https (running or queued) */
	size_t ended_since_trim; /* https transfers */
	unsigned long connections; /* opened, as libcurl counts them */
	struct transfer *queue, *queue_tail; /* https transfers waiting to start */
	struct loop_timer dispatch_timer;
	CURL *spare[LOOP_SPARE_HANDLES]; /* ended transfers' handles, reset for the next */
	size_t n_spare;
	bool stop;
};

/* A handle for a new plain http transfer: an ended one's, reset, if there
 * is one. A /test probe every second or two made and freed a whole libcurl
 * handle each time: on an idle node most of controld's malloc work. An
 * https one always gets a new handle: libcurl 7.88 keeps TLS state (its
 * session cache) in the handle across a reset, and a handle reused after a
 * failed verification failed the next one against the right CA store. */
static CURL *easy_get(struct loop *l, bool tls)
{
	if (tls || !l->n_spare)
		return curl_easy_init();
	curl_easy_reset(l->spare[--l->n_spare]);
	return l->spare[l->n_spare];
}

static void easy_put(struct loop *l, CURL *e, bool tls)
{
	if (!tls && l->n_spare < LOOP_SPARE_HANDLES)
		l->spare[l->n_spare++] = e;
	else
		curl_easy_cleanup(e);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t loop_now(struct loop *l)
{
	return mono_ms();
}

h2o_evloop_t *loop_h2o(struct loop *l)
{
	return l->ev;
}

void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t ms)
{
	loop_timer_arm_slack(l, t, ms, 0);
}

void loop_timer_arm_slack(struct loop *l, struct loop_timer *t, uint64_t ms, uint64_t slack)
{
	struct loop_timer *i;

	for (i = l->timers; i && i != t; i = i->next)
		;
	if (!i) {
		t->next = l->timers;
		l->timers = t;
	}
	t->at = mono_ms() + ms;
	t->slack = slack;
	t->armed = true;
}

void loop_timer_disarm(struct loop *l, struct loop_timer *t)
{
	t->armed = false;
}

void loop_timer_remove(struct loop *l, struct loop_timer *t)
{
	struct loop_timer **pp;

	for (pp = &l->timers; *pp && *pp != t; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = t->next;
	t->armed = false;
}

/* ==== libcurl glue ==== */

static void check_done(struct loop *l);

static void socket_action(struct loop *l, curl_socket_t fd, int ev)
{
	int running;

	curl_multi_socket_action(l->multi, fd, ev, &running);
	check_done(l);
}

static void on_curl_ready(void *arg, int fd, int events)
{
	struct curlsock *cs = arg; /* curl may remove it meanwhile: not used after */
	int ev = 0;

	if (events & LOOP_WATCH_ERROR)
		ev = CURL_CSELECT_ERR;
	if (events & LOOP_WATCH_READ)
		ev |= CURL_CSELECT_IN;
	if (events & LOOP_WATCH_WRITE)
		ev |= CURL_CSELECT_OUT;
	socket_action(cs->l, fd, ev);
}

/* Whether fd is a TCP/IP socket: not the socket pair by which libcurl's
 * resolver thread says a name was looked up (a read it also waits on). */
static bool is_network_socket(curl_socket_t fd)
{
	struct sockaddr_storage a;
	socklen_t al = sizeof(a);

	return !getsockname(fd, (struct sockaddr *)&a, &al) &&
	       (a.ss_family == AF_INET || a.ss_family == AF_INET6);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct loop *l = userp;
	struct curlsock *cs = socketp;
	struct transfer *t = NULL;

	if (what & CURL_POLL_IN && easy &&
	    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t) == CURLE_OK && t &&
	    !t->connected && is_network_socket(fd))
		t->connected = true;
	if (what == CURL_POLL_REMOVE) {
		if (cs) {
			curl_multi_assign(l->multi, fd, NULL);
			loop_watch_free(cs->w);
			free(cs);
		}
		return 0;
	}
	if (!cs) {
		cs = calloc(1, sizeof(*cs));
		if (!cs)
			return -1;
		cs->l = l;
		cs->w = loop_watch_new(l, fd, on_curl_ready, cs);
		if (!cs->w) {
			free(cs);
			return -1;
		}
		curl_multi_assign(l->multi, fd, cs);
	}
	loop_watch_set(cs->w, what & CURL_POLL_IN, what & CURL_POLL_OUT);
	return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct loop *l = userp;

	/* 0 means "none"; a monotonic clock in ms is never 0 here. */
	l->curl_at = timeout_ms < 0 ? 0 : mono_ms() + (uint64_t)timeout_ms;
	return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * n;

	if (t->len + len > t->max) {
		t->truncated = true;
		return 0; /* abort: CURLE_WRITE_ERROR */
	}
	if (t->len + len + 1 > t->cap) {
		size_t cap = (t->len + len + 1) * 2;
		char *b = realloc(t->buf, cap > t->max + 1 ? t->max + 1 : cap);

		if (!b)
			return 0;
		t->buf = b;
		t->cap = cap > t->max + 1 ? t->max + 1 : cap;
	}
	memcpy(t->buf + t->len, data, len);
	t->len += len;
	t->buf[t->len] = '\0';
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * n;

	if (len > 5 && !strncasecmp(data, "etag:", 5)) {
		const char *v = data + 5;
		size_t vl = len - 5;

		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl < sizeof(t->etag)) {
			memcpy(t->etag, v, vl);
			t->etag[vl] = '\0';
		}
	}
	return len;
}

static void queued_opts_free(struct transfer *t);
static int easy_setup(struct loop *l, struct transfer *t, const char *url,
		      const struct fetch_opts *o);

static void transfer_link(struct transfer *t)
{
	struct loop *l = t->l;

	t->next = l->transfers;
	if (t->next)
		t->next->prev = t;
	l->transfers = t;
	l->n_transfers++;
	l->n_tls += t->tls;
}

static void transfer_free(struct transfer *t)
{
	struct loop *l = t->l;

	if (t->prev)
		t->prev->next = t->next;
	else
		l->transfers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	l->n_transfers--;
	l->n_tls -= t->tls;
	if (t->queued) {
		struct transfer **pp, *before = NULL;

		for (pp = &l->queue; *pp != t; before = *pp, pp = &(*pp)->qnext)
			;
		*pp = t->qnext;
		if (l->queue_tail == t)
			l->queue_tail = before;
	} else if (t->easy) {
		curl_multi_remove_handle(l->multi, t->easy);
	}
	if (t->easy)
		easy_put(l, t->easy, t->tls);
	queued_opts_free(t);
	curl_slist_free_all(t->hdrs);
	free(t->buf);
	free(t);
}

static void dispatch(struct loop *l);

static void check_done(struct loop *l)
{
	CURLMsg *m;
	int q;

	while ((m = curl_multi_info_read(l->multi, &q))) {
		struct transfer *t = NULL;
		struct fetch_result r = { 0 };
		double secs = 0;
		long conns = 0;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		r.code = m->data.result;
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r.status);
		curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &secs);
		if (curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK)
			l->connections += (unsigned long)conns;
		r.seconds = secs;
		r.body = t->buf ? t->buf : "";
		r.len = t->len;
		r.truncated = t->truncated;
		r.etag = t->etag;
		r.error = t->truncated ? "response too large"
				       : t->errbuf[0] ? t->errbuf : curl_easy_strerror(r.code);
		if (r.code == CURLE_OK)
			r.error = "";
		l->ended_since_trim += t->tls;
		t->cb(t->arg, &r);
		transfer_free(t);
	}
	/* A cycle's https transfers run 16 at a time (~80 KiB each while TLS
	 * runs) and end together: hand the memory back once the burst is over,
	 * or the heap stays at the cycle's peak, fragmented by what outlives it.
	 * Not held back by plain http /test probes: at a few hundred peers some
	 * are always in flight (those of peers that are down wait out their
	 * timeout), and a trim never came. Not after every lone probe either: a
	 * trim walks the heap. */
	if (!l->n_tls && l->ended_since_trim >= LOOP_TRIM_AFTER) {
		malloc_trim(0);
		l->ended_since_trim = 0;
	}
	if (l->queue)
		dispatch(l);
}

/* Whether t holds a starting slot: started less than LOOP_TLS_SLOW_MS ago,
 * or connected and in its TLS handshake for less than LOOP_TLS_HANDSHAKE_MS
 * (slow because the machine or the gateway is busy: more handshakes at once
 * would only slow each one; but a server that never answers the handshake
 * must not hold a slot for a whole timeout). */
static bool holds_slot(struct transfer *t, uint64_t now)
{
	curl_off_t tls = 0;

	if (!t->tls || t->queued)
		return false;
	if (now - t->started < LOOP_TLS_SLOW_MS)
		return true;
	if (now - t->started >= LOOP_TLS_HANDSHAKE_MS || !t->connected)
		return false;
	curl_easy_getinfo(t->easy, CURLINFO_APPCONNECT_TIME_T, &tls);
	return tls == 0;
}

/* Transfers holding a starting slot; *wake: when to look again (0: none
 * held). A young one frees its slot at a known time, a handshake whenever
 * it ends (no event says so: looked at every LOOP_TLS_RECHECK_MS). */
static size_t tls_starting(struct loop *l, uint64_t now, uint64_t *wake)
{
	size_t n = 0;

	*wake = 0;
	for (struct transfer *t = l->transfers; t; t = t->next) {
		uint64_t at;

		if (!holds_slot(t, now))
			continue;
		n++;
		at = now - t->started < LOOP_TLS_SLOW_MS ? t->started + LOOP_TLS_SLOW_MS
							  : now + LOOP_TLS_RECHECK_MS;
		if (!*wake || at < *wake)
			*wake = at;
	}
	return n;
}

/* What is left of t's timeout after its wait, but at least half of it: the
 * last of a cycle (often the black-holed peers, listed last) ends about one
 * timeout after the cycle began, and a live peer that waited behind
 * stalled ones still has time to answer. */
static void set_timeout(struct transfer *t, uint64_t now)
{
	long waited = (long)(now - t->queued_at), left = t->timeout_ms - waited;

	if (left < t->timeout_ms / 2)
		left = t->timeout_ms / 2;
	curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, left);
	curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, left);
}

static void fail_queued(struct transfer *t)
{
	struct fetch_result r = { .code = CURLE_FAILED_INIT, .body = "", .etag = "",
				  .error = "could not start the transfer" };

	t->cb(t->arg, &r);
	transfer_free(t);
}

/* Move queued transfers into the multi handle while fewer than
 * LOOP_TLS_STARTING hold a slot (holds_slot); at least half a transfer's
 * timeout runs from here, so waiting never makes a live peer time out, and
 * stalled ones give their slots up, so the cycle stays one timeout long. */
static void dispatch(struct loop *l)
{
	uint64_t now = mono_ms(), wake;
	size_t n = tls_starting(l, now, &wake);

	while (l->queue && n < LOOP_TLS_STARTING) {
		struct transfer *t = l->queue;

		l->queue = t->qnext;
		if (!l->queue)
			l->queue_tail = NULL;
		t->qnext = NULL;
		t->queued = false;
		t->started = now;
		if (easy_setup(l, t, t->q_url, &t->q_opts)) {
			fail_queued(t);
			continue;
		}
		queued_opts_free(t);
		set_timeout(t, now);
		if (curl_multi_add_handle(l->multi, t->easy) != CURLM_OK) {
			fail_queued(t);
			continue;
		}
		if (!n++ || now + LOOP_TLS_SLOW_MS < wake)
			wake = now + LOOP_TLS_SLOW_MS;
	}
	if (l->queue)
		loop_timer_arm(l, &l->dispatch_timer, wake > now ? wake - now : 1);
}

static void on_dispatch_timer(void *arg)
{
	dispatch(arg);
}

/* The store for path, read at its first use. libcurl 7.88 makes a new TLS
 * context per connection and read the bundle into it every time: with a new
 * connection per peer and poll, that was a third of a busy node's CPU (60
 * nodes on 2 cores) and most of a cycle's. */
static X509_STORE *ca_store(struct loop *l, const char *path)
{
	struct ca_store *c;
	int ok;

	for (c = l->stores; c; c = c->next)
		if (!strcmp(c->path, path))
			return c->st;
	c = calloc(1, sizeof(*c));
	ok = c && (c->path = strdup(path)) && (c->st = X509_STORE_new()) &&
	     (*path ? X509_STORE_load_file(c->st, path) : X509_STORE_set_default_paths(c->st)) == 1;
	if (!ok) {
		if (c) {
			X509_STORE_free(c->st);
			free(c->path);
		}
		free(c);
		return NULL; /* then libcurl reads it itself, as before */
	}
	l->ca_loads++;
	c->next = l->stores;
	l->stores = c;
	return c->st;
}

static CURLcode use_store(CURL *easy, void *ssl_ctx, void *store)
{
	(void)easy;
	SSL_CTX_set1_cert_store(ssl_ctx, store);
	return CURLE_OK;
}

unsigned loop_ca_loads(const struct loop *l)
{
	return l->ca_loads;
}

/* t's libcurl handle for url with o: 0, or -1 with none (t->easy NULL). */
static int easy_setup(struct loop *l, struct transfer *t, const char *url,
		      const struct fetch_opts *o)
{
	X509_STORE *store;
	const char *protos = o->allow_http ? "http,https" : "https";

	t->easy = easy_get(l, t->tls);
	if (!t->easy)
		return -1;
	curl_easy_setopt(t->easy, CURLOPT_URL, url);
	curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
	curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms);
	curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, protos);
	/* A redirect must not turn a fetch into a request to wherever the answer
	 * points (127.0.0.1, the overlay, a metadata service): off unless asked,
	 * and then only to https, where the certificate check decides. */
	curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, o->follow_https_redirects ? 1L : 0L);
	curl_easy_setopt(t->easy, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(t->easy, CURLOPT_MAXREDIRS, 3L);
	/* http_proxy and friends in the environment would carry overlay probes and
	 * peers' documents through a third party: controld always connects itself. */
	curl_easy_setopt(t->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(t->easy, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(t->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
	/* What a transfer costs while it runs, times every peer at once: small
	 * buffers (node.json is a few hundred bytes; the receive buffer only
	 * sets the chunk size), and HTTP/1.1, since every peer is a host of its
	 * own and HTTP/2 would add a session and a 32 KiB buffer per connection
	 * for one request. */
	curl_easy_setopt(t->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(t->easy, CURLOPT_BUFFERSIZE, (long)LOOP_RECV_BUFFER);
	curl_easy_setopt(t->easy, CURLOPT_UPLOAD_BUFFERSIZE, (long)LOOP_SEND_BUFFER);
	/* A new TLS connection costs ~3 ms of CPU here (OpenSSL 3.0's handshake
	 * ~2.4 ms, libcurl's new TLS context per connection the rest), a request
	 * on a kept one 0.07 ms; but a kept one holds ~40 KiB while idle. So the
	 * caller says: kept for the list and a small mesh's peers, closed after
	 * the answer for a large one. (A CURLSH could resume TLS sessions, but
	 * that saves little of the handshake, and libcurl 7.88's shared cache
	 * holds 8.) */
	curl_easy_setopt(t->easy, CURLOPT_FORBID_REUSE, o->keep_alive ? 0L : 1L);
	curl_easy_setopt(t->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "p2pwg-controld/0.1");
	/* Plain http (/test over the overlay, the guest agent's socket) reads no CA. */
	store = t->tls ? ca_store(l, o->ca_bundle ? o->ca_bundle : "") : NULL;
	if (store) {
		/* No file for libcurl to read: the shared store goes in instead. */
		curl_easy_setopt(t->easy, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(t->easy, CURLOPT_CAPATH, NULL);
		/* libcurl's own cache would put the first store it saw back in. */
		curl_easy_setopt(t->easy, CURLOPT_CA_CACHE_TIMEOUT, 0L);
		curl_easy_setopt(t->easy, CURLOPT_SSL_CTX_FUNCTION, use_store);
		curl_easy_setopt(t->easy, CURLOPT_SSL_CTX_DATA, store);
	} else if (o->ca_bundle) {
		curl_easy_setopt(t->easy, CURLOPT_CAINFO, o->ca_bundle);
	}
	if (o->if_none_match && *o->if_none_match) {
		char h[300];

		snprintf(h, sizeof(h), "If-None-Match: %s", o->if_none_match);
		t->hdrs = curl_slist_append(NULL, h);
		curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->hdrs);
	}
	if (o->post_json) {
		struct curl_slist *h = curl_slist_append(t->hdrs, "Content-Type: application/json");

		if (!h) {
			curl_slist_free_all(t->hdrs);
			t->hdrs = NULL;
			easy_put(l, t->easy, t->tls);
			t->easy = NULL;
			return -1;
		}
		t->hdrs = h;
		curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->hdrs);
		curl_easy_setopt(t->easy, CURLOPT_COPYPOSTFIELDS, o->post_json);
	}
	if (o->unix_socket)
		curl_easy_setopt(t->easy, CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);
	return 0;
}

static void queued_opts_free(struct transfer *t)
{
	free(t->q_url);
	free((char *)t->q_opts.if_none_match);
	free((char *)t->q_opts.ca_bundle);
	free((char *)t->q_opts.post_json);
	free((char *)t->q_opts.unix_socket);
	t->q_url = NULL;
	memset(&t->q_opts, 0, sizeof(t->q_opts));
}

/* Copy url and o's strings into t for later: 0 or -1. */
static int queued_opts_keep(struct transfer *t, const char *url, const struct fetch_opts *o)
{
	const char *const from[] = { o->if_none_match, o->ca_bundle, o->post_json, o->unix_socket };
	const char **to[] = { &t->q_opts.if_none_match, &t->q_opts.ca_bundle,
			      &t->q_opts.post_json, &t->q_opts.unix_socket };

	t->q_opts = *o;
	for (size_t i = 0; i < 4; i++)
		*to[i] = NULL;
	t->q_url = strdup(url);
	for (size_t i = 0; i < 4; i++)
		if (from[i] && !(*to[i] = strdup(from[i])))
			goto fail;
	if (t->q_url)
		return 0;
fail:
	queued_opts_free(t);
	return -1;
}

void *fetch_start(struct loop *l, const char *url, const struct fetch_opts *o, fetch_cb cb,
		  void *arg)
{
	struct transfer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->tls = !strncasecmp(url, "https://", 8);
	t->l = l;
	t->cb = cb;
	t->arg = arg;
	t->max = o->max_bytes;
	if (t->tls) {
		uint64_t now = mono_ms(), wake;
		size_t n = tls_starting(l, now, &wake);

		/* Every peer's node.json at once was ~80 KiB a TLS connection in
		 * flight (19 MiB for 244) and a burst of handshakes at the gateway. */
		if (l->queue || n >= LOOP_TLS_STARTING) {
			if (queued_opts_keep(t, url, o)) {
				free(t);
				return NULL;
			}
			transfer_link(t);
			t->queued = true;
			t->queued_at = now;
			t->timeout_ms = o->timeout_ms;
			if (l->queue_tail)
				l->queue_tail->qnext = t;
			else
				l->queue = t;
			l->queue_tail = t;
			if (!l->dispatch_timer.armed)
				loop_timer_arm(l, &l->dispatch_timer,
					       wake > now ? wake - now : 1);
			return t;
		}
		t->started = now;
	}
	if (easy_setup(l, t, url, o)) {
		free(t);
		return NULL;
	}
	transfer_link(t);
	if (curl_multi_add_handle(l->multi, t->easy) != CURLM_OK) {
		transfer_free(t);
		return NULL;
	}
	return t;
}

void fetch_cancel(struct loop *l, void *handle)
{
	if (handle)
		transfer_free(handle);
}

unsigned long loop_connections_opened(const struct loop *l)
{
	return l->connections;
}

size_t fetch_in_flight(struct loop *l)
{
	return l->n_transfers;
}

/* ==== descriptors of other libraries (libcurl, c-ares) ==== */

/* h2o watches a dup without reading from it, so closing the watcher never
 * closes the library's descriptor. */
struct loop_watch {
	h2o_socket_t *sock;
	int fd;
	bool write, write_armed;
	bool *freed; /* set while the callback runs: whether it freed the watch */
	loop_watch_cb cb;
	void *arg;
};

static void on_watch_write(h2o_socket_t *sock, const char *err);

static void watch_dispatch(struct loop_watch *w, int events)
{
	bool freed = false;

	w->freed = &freed;
	w->cb(w->arg, w->fd, events);
	if (freed)
		return;
	w->freed = NULL;
	/* notify_write is one-shot. */
	if (w->write && !w->write_armed) {
		w->write_armed = true;
		h2o_socket_notify_write(w->sock, on_watch_write);
	}
}

static void on_watch_read(h2o_socket_t *sock, const char *err)
{
	watch_dispatch(sock->data, err ? LOOP_WATCH_READ | LOOP_WATCH_ERROR : LOOP_WATCH_READ);
}

static void on_watch_write(h2o_socket_t *sock, const char *err)
{
	struct loop_watch *w = sock->data;

	w->write_armed = false;
	if (w->write)
		watch_dispatch(w, err ? LOOP_WATCH_WRITE | LOOP_WATCH_ERROR : LOOP_WATCH_WRITE);
}

struct loop_watch *loop_watch_new(struct loop *l, int fd, loop_watch_cb cb, void *arg)
{
	struct loop_watch *w = calloc(1, sizeof(*w));
	int d = dup(fd);

	if (!w || d < 0) {
		if (d >= 0)
			close(d);
		free(w);
		return NULL;
	}
	w->fd = fd;
	w->cb = cb;
	w->arg = arg;
	w->sock = h2o_evloop_socket_create(l->ev, d, H2O_SOCKET_FLAG_DONT_READ);
	w->sock->data = w;
	return w;
}

void loop_watch_set(struct loop_watch *w, bool read, bool write)
{
	if (read && !h2o_socket_is_reading(w->sock))
		h2o_socket_read_start(w->sock, on_watch_read);
	else if (!read && h2o_socket_is_reading(w->sock))
		h2o_socket_read_stop(w->sock);
	w->write = write;
	if (write && !w->write_armed) {
		w->write_armed = true;
		h2o_socket_notify_write(w->sock, on_watch_write);
	}
}

void loop_watch_free(struct loop_watch *w)
{
	if (!w)
		return;
	if (w->freed)
		*w->freed = true;
	h2o_socket_close(w->sock);
	free(w);
}

/* ==== the loop ==== */

int loop_global_init(void)
{
	/* OpenSSL's texts for TLS's own errors ("wrong version number",
	 * "certificate verify failed") are kept; those of its other libraries
	 * are not: a rare log line then reads "x509 certificate routines::
	 * reason(136)", and controld stays ~0.2 MiB smaller (bench/discovery.sh,
	 * 0 to 244 peers). libcurl's own initialisation would load them all. */
	if (!OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, NULL))
		return -1;
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->ev = h2o_evloop_create();
	l->multi = curl_multi_init();
	if (!l->ev || !l->multi) {
		loop_free(l);
		return NULL;
	}
	l->dispatch_timer.cb = on_dispatch_timer;
	l->dispatch_timer.arg = l;
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 4L);
	/* Over the cap curl queues transfers instead of opening descriptors. */
	curl_multi_setopt(l->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)LOOP_MAX_CONNECTIONS);
	/* Else the cache follows the handles in flight, and shrinks to nothing
	 * between cycles. */
	curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, (long)LOOP_KEPT_CONNECTIONS);
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	while (l->transfers)
		transfer_free(l->transfers);
	loop_timer_remove(l, &l->dispatch_timer);
	while (l->n_spare)
		curl_easy_cleanup(l->spare[--l->n_spare]);
	if (l->multi)
		curl_multi_cleanup(l->multi);
	while (l->stores) {
		struct ca_store *c = l->stores;

		l->stores = c->next;
		X509_STORE_free(c->st);
		free(c->path);
		free(c);
	}
	/* h2o's evloop has no full teardown for live sockets; the process exits. */
	free(l);
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

void loop_run(struct loop *l)
{
	while (!l->stop) {
		uint64_t now = mono_ms(), next = now + 3600 * 1000;
		struct loop_timer *t;

		if (l->curl_at && l->curl_at < next)
			next = l->curl_at;
		/* Asleep until the first timer's at plus its slack; then every
		 * timer whose at has come fires, with or without slack. */
		for (t = l->timers; t; t = t->next)
			if (t->armed && t->at + t->slack < next)
				next = t->at + t->slack;
		h2o_evloop_run(l->ev, next > now ? (int32_t)(next - now) : 0);
		now = mono_ms();
		if (l->curl_at && l->curl_at <= now) {
			l->curl_at = 0;
			socket_action(l, CURL_SOCKET_TIMEOUT, 0);
		}
		/* One due timer at a time: a callback may re-arm or add timers. */
		for (bool fired = true; fired && !l->stop;) {
			fired = false;
			for (t = l->timers; t; t = t->next)
				if (t->armed && t->at <= now) {
					t->armed = false;
					t->cb(t->arg);
					fired = true;
					break;
				}
		}
	}
	l->stop = false; /* a later loop_run runs again (tests run it per step) */
}

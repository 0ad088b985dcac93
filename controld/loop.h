/* SPDX-License-Identifier: MIT */
/*
 * loop: controld's one event loop. h2o's evloop waits on every socket (the
 * h2o server, libcurl's sockets, the agent socket, signals); this module adds
 * millisecond timers and drives libcurl's multi interface from it, so an idle
 * node sleeps until the next timer or packet.
 */
#ifndef P2PWG_LOOP_H
#define P2PWG_LOOP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif
#include <h2o.h>

struct loop_timer {
	uint64_t at; /* monotonic ms; valid while armed */
	uint64_t slack; /* ms it may fire after at, to share a wake-up (loop_timer_arm_slack) */
	bool armed;
	void (*cb)(void *arg);
	void *arg;
	struct loop_timer *next;
};

/* A finished transfer: HTTP status (0 if none), body, ETag, curl's error. */
struct fetch_result {
	CURLcode code;
	long status;
	const char *body; /* NUL-terminated; valid during the callback */
	size_t len;
	bool truncated; /* more than max_bytes arrived: body is not usable */
	const char *etag; /* "" if none */
	const char *error; /* curl's message, "" if none */
	double seconds;
};

typedef void (*fetch_cb)(void *arg, const struct fetch_result *res);

struct fetch_opts {
	long timeout_ms;
	size_t max_bytes;
	const char *if_none_match; /* NULL: none */
	const char *ca_bundle;     /* NULL: system default */
	bool allow_http;
	bool follow_https_redirects; /* up to 3, to https:// only; else none */
	const char *post_json;       /* NULL: a GET; else POST this body (copied) as JSON */
	const char *unix_socket;     /* NULL: TCP; else connect to this UNIX socket path */
	bool keep_alive; /* leave the connection open for the next fetch to this host
			  * (at most LOOP_KEPT_CONNECTIONS stay; else closed after the answer) */
};

/* libcurl's connections: one per peer for node.json and one for /test, plus
 * the list; each costs two descriptors (curl's and the dup h2o watches). */
#define LOOP_MAX_CONNECTIONS (2 * 245 + 8) /* 245: MESH_MAX_PEERS */
#define LOOP_RECV_BUFFER 4096
#define LOOP_SEND_BUFFER 16384 /* the least libcurl takes */
#define LOOP_TRIM_AFTER 16        /* https transfers ended, then none running: free memory back */
/* Up to this many peers each one's connections (node.json, /test) stay open
 * between reads (a new TLS connection was most of an idle node's CPU); past
 * it, ~40 KiB per idle TLS connection would be the larger cost, and they are
 * closed. */
#define LOOP_KEEP_PEERS 64
/* Idle connections kept for keep_alive fetches: one per peer for node.json
 * (~40 KiB each: libcurl 7.88 gives each its own TLS context) and one for
 * /test (plain http, a few KiB), and the list's; the oldest is closed past
 * this. */
#define LOOP_KEPT_CONNECTIONS (2 * LOOP_KEEP_PEERS + 8)
#define LOOP_FDS_PER_CONNECTION 2
#define LOOP_SPARE_HANDLES 8 /* ended transfers' libcurl handles kept for the next */
/* https transfers starting at once; more wait their turn. One counts while
 * younger than LOOP_TLS_SLOW_MS, or while in its TLS handshake up to
 * LOOP_TLS_HANDSHAKE_MS: a black-holed peer holds a slot for the first,
 * one whose TLS never answers for the second. */
#define LOOP_TLS_STARTING 16
#define LOOP_TLS_SLOW_MS 250
#define LOOP_TLS_HANDSHAKE_MS 1000
#define LOOP_TLS_RECHECK_MS 50

struct loop;

/* Once, before anything else uses libcurl or OpenSSL: both set up, without
 * the texts of OpenSSL's errors outside TLS itself (~0.2 MiB resident). 0 on
 * success. */
int loop_global_init(void);

/* Create the loop (and its h2o evloop and curl multi handle). NULL on failure. */
struct loop *loop_new(void);
void loop_free(struct loop *l);

h2o_evloop_t *loop_h2o(struct loop *l);
uint64_t loop_now(struct loop *l); /* monotonic ms */

/* Arm (or re-arm) t to fire once after ms milliseconds. */
void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t ms);
/* The same, but t may fire up to slack ms later: with whatever wakes the
 * loop first in that time (an answer, another timer), so that work which
 * need not be punctual costs no wake-up of its own. */
void loop_timer_arm_slack(struct loop *l, struct loop_timer *t, uint64_t ms, uint64_t slack);
void loop_timer_disarm(struct loop *l, struct loop_timer *t);
/* Forget t, so that its memory may be freed. */
void loop_timer_remove(struct loop *l, struct loop_timer *t);

/* Start a GET (or POST, see post_json) of url; cb is called exactly once (also on failure). Returns a
 * handle for fetch_cancel, or NULL if it could not start (cb not called). */
void *fetch_start(struct loop *l, const char *url, const struct fetch_opts *o, fetch_cb cb,
		  void *arg);

/* Cancel a transfer started by fetch_start; its callback is not called. */
void fetch_cancel(struct loop *l, void *handle);

/* New connections opened so far (a reused one counts none). */
unsigned long loop_connections_opened(const struct loop *l);

/* Number of transfers in flight. */
size_t fetch_in_flight(struct loop *l);

/* Readiness reported to a loop_watch callback. */
enum { LOOP_WATCH_READ = 1, LOOP_WATCH_WRITE = 2, LOOP_WATCH_ERROR = 4 };

struct loop_watch;
typedef void (*loop_watch_cb)(void *arg, int fd, int events);

/* Watch fd for a library that owns it (libcurl, c-ares): fd stays the
 * caller's, the loop watches a dup of it. NULL on failure. */
struct loop_watch *loop_watch_new(struct loop *l, int fd, loop_watch_cb cb, void *arg);

/* Report read and/or write readiness from now on (write: until cleared). */
void loop_watch_set(struct loop_watch *w, bool read, bool write);

/* Stop watching and free w (also from within its callback); fd stays open. */
void loop_watch_free(struct loop_watch *w);

/* How many CA bundles were read (once each, whatever the number of fetches). */
unsigned loop_ca_loads(const struct loop *l);

/* Run until loop_stop() is called; may be called again after. */
void loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * testsrv: the /test endpoint on <overlay ip>:8000, answering
 * {"wg_ip": "10.88.0.N/32", "time": "<ISO 8601 UTC>"} as the prototype did.
 * Only "GET /test" is served; the request line is matched, and of the headers
 * only Connection: an HTTP/1.1 request without "Connection: close" keeps its
 * connection for the next one (controld's probe every /test interval: a kept
 * connection spares both ends and WireGuard a TCP handshake and teardown per
 * probe). A kept connection is closed after TESTSRV_IDLE_MS without a
 * request, or sooner when its slot is wanted for a new connection.
 *
 * Reachable by every peer, so nothing a peer does may lock others out or
 * flood the log: a few connections per source address, a short deadline per
 * connection, at most one log line per kind per interval. The listener is
 * bound to the WireGuard interface (SO_BINDTODEVICE: needs Linux 5.7+ for an
 * unprivileged process, or CAP_NET_RAW before), so only tunnel traffic, whose
 * source addresses WireGuard has authenticated, reaches it. No SO_REUSEPORT:
 * a process that holds the port makes the bind fail, loudly, and it is retried.
 */
#ifndef P2PWG_TESTSRV_H
#define P2PWG_TESTSRV_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#define TESTSRV_PORT 8000
#define TESTSRV_MAX_REQUEST 4096
/* One kept connection per peer of a mesh of up to 64 (controld keeps them
 * up to that size), and room for new ones: past that, the idle kept
 * connection used longest ago gives its slot up. */
#define TESTSRV_MAX_CONNS 72
/* Every peer probes every /test interval, at once after a restart: the kernel
 * holds that many while the agent's one loop is busy with the device. */
#define TESTSRV_BACKLOG 256
#define TESTSRV_MAX_PER_SOURCE 4   /* connections from one address */
/* To send a whole request: controld's whole /test budget. At 1 s a request
 * slowed by a busy machine or a retransmission got an empty reply, and the
 * pair was shown down (1 probe in 114885, 60 nodes on 2 cores). */
#define TESTSRV_TIMEOUT_MS 5000
/* A kept connection waits this long for its next request: more than
 * controld's /test interval (10 s) and its jitter. */
#define TESTSRV_IDLE_MS 30000
#define TESTSRV_RETRY_MS 2000      /* between attempts to bind */
#define TESTSRV_LOG_INTERVAL_MS 10000

enum testsrv_verdict {
	TESTSRV_NEED_MORE = 0, /* headers not complete yet */
	TESTSRV_TEST,          /* GET /test: answer 200 */
	TESTSRV_NOT_FOUND,     /* another path: 404 */
	TESTSRV_BAD,           /* not a GET or not HTTP/1.x: 400 */
};

/* Classify the request bytes received so far. */
enum testsrv_verdict testsrv_classify(const char *buf, size_t len);

/* Whether a complete request (testsrv_classify said so) lets its connection
 * stay open: HTTP/1.1 and no "Connection: close". */
bool testsrv_keep_alive(const char *buf, size_t len);

/* Write the whole HTTP response for verdict into out, saying
 * "Connection: close" unless keep. Returns its length. */
size_t testsrv_response(enum testsrv_verdict v, const struct in_addr *ip,
			const struct timeval *now, bool keep, char *out, size_t cap);

struct testsrv_conn {
	int fd;
	bool kept;            /* answered once, kept for the next request */
	uint64_t deadline_ms; /* for its request; when kept and idle, TESTSRV_IDLE_MS */
	size_t len;
	char buf[TESTSRV_MAX_REQUEST];
	struct sockaddr_in peer;
};

/* At most one line per interval; what was left out is counted. */
struct testsrv_ratelog {
	uint64_t next_ms;
	unsigned suppressed;
};

struct testsrv {
	int listen_fd; /* -1 when no overlay address, or the bind failed */
	char ifname[IFNAMSIZ];
	struct in_addr addr;
	bool want;           /* addr is set: keep trying to bind it */
	int bind_err;        /* the last bind failure, logged once */
	uint64_t retry_ms;   /* next bind attempt; 0: schedule at the next tick */
	struct testsrv_ratelog log_served, log_refused;
	struct testsrv_conn conns[TESTSRV_MAX_CONNS];
};

/* Set up t to serve on interface ifname (nothing is opened yet). */
void testsrv_init(struct testsrv *t, const char *ifname);

/* (Re)bind to addr:8000 on the interface; addr NULL closes the listener.
 * 0 or -errno; a failure is logged as an error and retried from testsrv_tick. */
int testsrv_bind(struct testsrv *t, const struct in_addr *addr);

/* Accept pending connections (listen_fd readable). */
void testsrv_accept(struct testsrv *t, uint64_t now_ms);

/* Read from connection i (readable) and answer when complete. */
void testsrv_input(struct testsrv *t, int i, uint64_t now_ms);

/* Close expired connections and retry a failed bind; ms until the next
 * deadline or -1. */
int testsrv_tick(struct testsrv *t, uint64_t now_ms);

void testsrv_close(struct testsrv *t);

#endif

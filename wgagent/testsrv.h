/* SPDX-License-Identifier: MIT */
/*
 * testsrv: the /test endpoint on <overlay ip>:8000, answering
 * {"wg_ip": "10.88.0.N/32", "time": "<ISO 8601 UTC>"} as the prototype did.
 * Only "GET /test" is served; the request line is matched, nothing else of
 * the request is read beyond finding the end of its headers.
 */
#ifndef P2PWG_TESTSRV_H
#define P2PWG_TESTSRV_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#define TESTSRV_PORT 8000
#define TESTSRV_MAX_REQUEST 4096
#define TESTSRV_MAX_CONNS 32
#define TESTSRV_TIMEOUT_MS 2000

enum testsrv_verdict {
	TESTSRV_NEED_MORE = 0, /* headers not complete yet */
	TESTSRV_TEST,          /* GET /test: answer 200 */
	TESTSRV_NOT_FOUND,     /* another path: 404 */
	TESTSRV_BAD,           /* not a GET or not HTTP/1.x: 400 */
};

/* Classify the request bytes received so far. */
enum testsrv_verdict testsrv_classify(const char *buf, size_t len);

/* Write the whole HTTP response for verdict into out. Returns its length. */
size_t testsrv_response(enum testsrv_verdict v, const struct in_addr *ip,
			const struct timeval *now, char *out, size_t cap);

struct testsrv_conn {
	int fd;
	uint64_t deadline_ms;
	size_t len;
	char buf[TESTSRV_MAX_REQUEST];
	struct sockaddr_in peer;
};

struct testsrv {
	int listen_fd; /* -1 when no overlay address */
	struct in_addr addr;
	struct testsrv_conn conns[TESTSRV_MAX_CONNS];
};

void testsrv_init(struct testsrv *t);

/* (Re)bind to addr:8000; addr NULL closes the listener. 0 or -errno. */
int testsrv_bind(struct testsrv *t, const struct in_addr *addr);

/* Accept pending connections (listen_fd readable). */
void testsrv_accept(struct testsrv *t, uint64_t now_ms);

/* Read from connection i (readable) and answer when complete. */
void testsrv_input(struct testsrv *t, int i, uint64_t now_ms);

/* Close expired connections; ms until the next deadline or -1. */
int testsrv_tick(struct testsrv *t, uint64_t now_ms);

void testsrv_close(struct testsrv *t);

#endif

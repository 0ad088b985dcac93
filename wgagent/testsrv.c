// SPDX-License-Identifier: MIT
#include "testsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum testsrv_verdict testsrv_classify(const char *buf, size_t len)
{
	const char *eol = memchr(buf, '\n', len);
	const char *rest;
	size_t line;

	if (!eol)
		return len >= TESTSRV_MAX_REQUEST ? TESTSRV_BAD : TESTSRV_NEED_MORE;
	line = (size_t)(eol - buf);
	if (line && buf[line - 1] == '\r')
		line--;
	if (line < 14 || memcmp(buf + line - 9, " HTTP/1.", 8) ||
	    (buf[line - 1] != '0' && buf[line - 1] != '1'))
		return TESTSRV_BAD;
	/* Wait for the blank line ending the headers, so the client sees a clean close. */
	if (!memmem(buf, len, "\r\n\r\n", 4) && !memmem(buf, len, "\n\n", 2))
		return len >= TESTSRV_MAX_REQUEST ? TESTSRV_BAD : TESTSRV_NEED_MORE;
	if (memcmp(buf, "GET ", 4))
		return TESTSRV_BAD;
	rest = buf + 4;
	if (!memcmp(rest, "/test ", 6) || !memcmp(rest, "/test?", 6))
		return TESTSRV_TEST;
	return TESTSRV_NOT_FOUND;
}

size_t testsrv_response(enum testsrv_verdict v, const struct in_addr *ip,
			const struct timeval *now, char *out, size_t cap)
{
	char body[160], ts[40], ipstr[INET_ADDRSTRLEN];
	const char *status = "200 OK";
	struct tm tm;
	int n;

	switch (v) {
	case TESTSRV_TEST:
		gmtime_r(&now->tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		inet_ntop(AF_INET, ip, ipstr, sizeof(ipstr));
		snprintf(body, sizeof(body), "{\"wg_ip\": \"%s/32\", \"time\": \"%s.%06ld+00:00\"}", ipstr,
			 ts, (long)now->tv_usec);
		break;
	case TESTSRV_NOT_FOUND:
		status = "404 Not Found";
		snprintf(body, sizeof(body), "not found\n");
		break;
	default:
		status = "400 Bad Request";
		snprintf(body, sizeof(body), "bad request\n");
	}
	n = snprintf(out, cap,
		     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     status, v == TESTSRV_TEST ? "application/json" : "text/plain", strlen(body), body);
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

void testsrv_init(struct testsrv *t)
{
	memset(t, 0, sizeof(*t));
	t->listen_fd = -1;
	for (int i = 0; i < TESTSRV_MAX_CONNS; i++)
		t->conns[i].fd = -1;
}

static void conn_close(struct testsrv_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

void testsrv_close(struct testsrv *t)
{
	for (int i = 0; i < TESTSRV_MAX_CONNS; i++)
		conn_close(&t->conns[i]);
	if (t->listen_fd >= 0)
		close(t->listen_fd);
	t->listen_fd = -1;
}

int testsrv_bind(struct testsrv *t, const struct in_addr *addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(TESTSRV_PORT) };
	int one = 1, s, ret;

	if (t->listen_fd >= 0 && addr && addr->s_addr == t->addr.s_addr)
		return 0;
	testsrv_close(t);
	if (!addr)
		return 0;
	sin.sin_addr = *addr;
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* The address may be a moment behind in the kernel; bind regardless. */
	setsockopt(s, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(s, 64) < 0) {
		ret = -errno;
		close(s);
		return ret;
	}
	t->listen_fd = s;
	t->addr = *addr;
	log_info("http", "serving /test on %s:%d", inet_ntoa(*addr), TESTSRV_PORT);
	return 0;
}

void testsrv_accept(struct testsrv *t, uint64_t now_ms)
{
	for (;;) {
		struct sockaddr_in peer;
		socklen_t sl = sizeof(peer);
		int fd = accept4(t->listen_fd, (struct sockaddr *)&peer, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		int i;

		if (fd < 0)
			return;
		for (i = 0; i < TESTSRV_MAX_CONNS && t->conns[i].fd >= 0; i++)
			;
		if (i == TESTSRV_MAX_CONNS) {
			close(fd); /* full: the client retries */
			continue;
		}
		t->conns[i].fd = fd;
		t->conns[i].len = 0;
		t->conns[i].peer = peer;
		t->conns[i].deadline_ms = now_ms + TESTSRV_TIMEOUT_MS;
	}
}

void testsrv_input(struct testsrv *t, int i, uint64_t now_ms)
{
	struct testsrv_conn *c = &t->conns[i];
	enum testsrv_verdict v;
	char out[512];
	struct timeval now;
	ssize_t n;
	size_t len;

	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			conn_close(c);
		return;
	}
	c->len += (size_t)n;
	v = testsrv_classify(c->buf, c->len);
	if (v == TESTSRV_NEED_MORE)
		return;
	if (v == TESTSRV_TEST)
		log_info("http", "serving request from %s", inet_ntoa(c->peer.sin_addr));
	gettimeofday(&now, NULL);
	len = testsrv_response(v, &t->addr, &now, out, sizeof(out));
	/* Small enough for an empty socket buffer; a client that stalls loses it. */
	if (send(c->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("http", "send to %s: %s", inet_ntoa(c->peer.sin_addr), strerror(errno));
	shutdown(c->fd, SHUT_WR);
	conn_close(c);
}

int testsrv_tick(struct testsrv *t, uint64_t now_ms)
{
	int64_t next = -1;

	for (int i = 0; i < TESTSRV_MAX_CONNS; i++) {
		struct testsrv_conn *c = &t->conns[i];

		if (c->fd < 0)
			continue;
		if (c->deadline_ms <= now_ms) {
			conn_close(c);
			continue;
		}
		if (next < 0 || (int64_t)(c->deadline_ms - now_ms) < next)
			next = (int64_t)(c->deadline_ms - now_ms);
	}
	return (int)next;
}

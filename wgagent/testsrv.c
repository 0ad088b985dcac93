// SPDX-License-Identifier: MIT
#include "testsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
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

bool testsrv_keep_alive(const char *buf, size_t len)
{
	const char *line = buf, *end = buf + len, *eol;

	eol = memchr(line, '\n', len);
	if (!eol || eol - line < 9 || memcmp(eol - (eol[-1] == '\r') - 8, "HTTP/1.1", 8))
		return false;
	/* Each header line up to the blank one: "Connection:" naming close. */
	for (line = eol + 1; line < end && (eol = memchr(line, '\n', (size_t)(end - line)));
	     line = eol + 1) {
		if (eol == line || (eol == line + 1 && *line == '\r'))
			break;
		if ((size_t)(eol - line) < 11 || strncasecmp(line, "connection:", 11))
			continue;
		for (const char *p = line + 11; p + 5 <= eol; p++)
			if (!strncasecmp(p, "close", 5))
				return false;
	}
	return true;
}

size_t testsrv_response(enum testsrv_verdict v, const struct in_addr *ip,
			const struct timeval *now, bool keep, char *out, size_t cap)
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
		     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n%s", status,
		     v == TESTSRV_TEST ? "application/json" : "text/plain", strlen(body),
		     keep ? "" : "Connection: close\r\n", body);
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

void testsrv_init(struct testsrv *t, const char *ifname)
{
	memset(t, 0, sizeof(*t));
	t->listen_fd = -1;
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifname);
	for (int i = 0; i < TESTSRV_MAX_CONNS; i++)
		t->conns[i].fd = -1;
}

static void conn_close(struct testsrv_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
	c->kept = false;
}

static void close_all(struct testsrv *t)
{
	for (int i = 0; i < TESTSRV_MAX_CONNS; i++)
		conn_close(&t->conns[i]);
	if (t->listen_fd >= 0)
		close(t->listen_fd);
	t->listen_fd = -1;
}

void testsrv_close(struct testsrv *t)
{
	close_all(t);
	t->want = false;
}

/* True when a line may be logged now; else it is counted for the next one. */
static bool ratelog_ok(struct testsrv_ratelog *r, uint64_t now_ms)
{
	if (now_ms < r->next_ms) {
		r->suppressed++;
		return false;
	}
	r->next_ms = now_ms + TESTSRV_LOG_INTERVAL_MS;
	return true;
}

/* " (N more not logged)" for the line being logged, or "". */
static const char *ratelog_more(struct testsrv_ratelog *r)
{
	static char more[48];

	more[0] = '\0';
	if (r->suppressed)
		snprintf(more, sizeof(more), " (and %u more since the last line)", r->suppressed);
	r->suppressed = 0;
	return more;
}

static int try_bind(struct testsrv *t)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(TESTSRV_PORT),
				   .sin_addr = t->addr };
	socklen_t iflen = (socklen_t)strlen(t->ifname);
	int one = 1, s, ret;

	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0) {
		ret = -errno;
		goto out;
	}
	/* SO_REUSEADDR only passes sockets in TIME_WAIT (an agent restart); on
	 * Linux it never lets a second listener share the port. */
	if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    /* The address may be a moment behind in the kernel; bind regardless. */
	    setsockopt(s, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, t->ifname, iflen) < 0 ||
	    bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(s, TESTSRV_BACKLOG) < 0) {
		ret = -errno;
		close(s);
		goto out;
	}
	t->listen_fd = s;
	ret = 0;
out:
	if (ret && ret != t->bind_err)
		log_err("http", "cannot serve /test on %s:%d (%s): %s%s; retrying every %d s",
			inet_ntoa(t->addr), TESTSRV_PORT, t->ifname, strerror(-ret),
			ret == -EADDRINUSE ? " (another process holds the port)"
			: ret == -EPERM    ? " (SO_BINDTODEVICE needs Linux 5.7+ or CAP_NET_RAW)"
					   : "",
			TESTSRV_RETRY_MS / 1000);
	else if (!ret)
		log_info("http", "serving /test on %s:%d (%s)", inet_ntoa(t->addr), TESTSRV_PORT,
			 t->ifname);
	t->bind_err = ret;
	t->retry_ms = 0;
	return ret;
}

int testsrv_bind(struct testsrv *t, const struct in_addr *addr)
{
	if (t->listen_fd >= 0 && addr && addr->s_addr == t->addr.s_addr)
		return 0;
	close_all(t);
	t->want = addr != NULL;
	t->bind_err = 0;
	if (!addr)
		return 0;
	t->addr = *addr;
	return try_bind(t);
}

void testsrv_accept(struct testsrv *t, uint64_t now_ms)
{
	for (;;) {
		struct sockaddr_in peer;
		socklen_t sl = sizeof(peer);
		int fd = accept4(t->listen_fd, (struct sockaddr *)&peer, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		int i, free_slot = -1, same = 0, idle = -1, idle_same = -1;

		if (fd < 0)
			return;
		for (i = 0; i < TESTSRV_MAX_CONNS; i++) {
			const struct testsrv_conn *c = &t->conns[i];
			bool from = c->peer.sin_addr.s_addr == peer.sin_addr.s_addr;

			if (c->fd < 0) {
				free_slot = free_slot < 0 ? i : free_slot;
				continue;
			}
			same += from;
			/* A kept connection waiting for its next request, the
			 * one used longest ago first: it may give its slot up. */
			if (c->kept && !c->len) {
				if (idle < 0 || c->deadline_ms < t->conns[idle].deadline_ms)
					idle = i;
				if (from && (idle_same < 0 ||
					     c->deadline_ms < t->conns[idle_same].deadline_ms))
					idle_same = i;
			}
		}
		/* Its own idle connection first (a client that reconnects), else
		 * anyone's idle one when every slot is taken. */
		if (same >= TESTSRV_MAX_PER_SOURCE && idle_same >= 0) {
			conn_close(&t->conns[idle_same]);
			free_slot = idle_same;
			same--;
		} else if (free_slot < 0 && idle >= 0) {
			conn_close(&t->conns[idle]);
			free_slot = idle;
		}
		if (free_slot < 0 || same >= TESTSRV_MAX_PER_SOURCE) {
			const char *why = free_slot < 0 ? "all slots busy" : "too many from it";

			if (ratelog_ok(&t->log_refused, now_ms))
				log_info("http", "refused a connection from %s: %s%s",
					 inet_ntoa(peer.sin_addr), why,
					 ratelog_more(&t->log_refused));
			close(fd); /* the client retries */
			continue;
		}
		t->conns[free_slot].fd = fd;
		t->conns[free_slot].len = 0;
		t->conns[free_slot].kept = false;
		t->conns[free_slot].peer = peer;
		t->conns[free_slot].deadline_ms = now_ms + TESTSRV_TIMEOUT_MS;
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

	bool keep;

	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			conn_close(c);
		return;
	}
	/* The next request on a kept connection has the same deadline as a first one. */
	if (c->kept && !c->len)
		c->deadline_ms = now_ms + TESTSRV_TIMEOUT_MS;
	c->len += (size_t)n;
	v = testsrv_classify(c->buf, c->len);
	if (v == TESTSRV_NEED_MORE)
		return;
	if (v == TESTSRV_TEST && ratelog_ok(&t->log_served, now_ms))
		log_info("http", "serving request from %s%s", inet_ntoa(c->peer.sin_addr),
			 ratelog_more(&t->log_served));
	keep = v == TESTSRV_TEST && testsrv_keep_alive(c->buf, c->len);
	gettimeofday(&now, NULL);
	len = testsrv_response(v, &t->addr, &now, keep, out, sizeof(out));
	/* Small enough for an empty socket buffer; a client that stalls loses it. */
	if (send(c->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		log_debug("http", "send to %s: %s", inet_ntoa(c->peer.sin_addr), strerror(errno));
		keep = false;
	}
	if (keep) {
		/* Anything sent past this request (no client pipelines a
		 * probe) is dropped with it. */
		c->kept = true;
		c->len = 0;
		c->deadline_ms = now_ms + TESTSRV_IDLE_MS;
		return;
	}
	shutdown(c->fd, SHUT_WR);
	conn_close(c);
}

int testsrv_tick(struct testsrv *t, uint64_t now_ms)
{
	int64_t next = -1;

	if (t->want && t->listen_fd < 0) {
		if (!t->retry_ms)
			t->retry_ms = now_ms + TESTSRV_RETRY_MS;
		if (now_ms >= t->retry_ms && try_bind(t) < 0)
			t->retry_ms = now_ms + TESTSRV_RETRY_MS;
		if (t->listen_fd < 0)
			next = (int64_t)(t->retry_ms - now_ms);
	}
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

// SPDX-License-Identifier: MIT
/* testsrv: the /test endpoint, as a parser and over a real loopback socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "testsrv.h"

#define C(s) testsrv_classify(s, strlen(s))

static void test_classify(void **state)
{
	static char big[TESTSRV_MAX_REQUEST];

	assert_int_equal(C("GET /test HTTP/1.1\r\nHost: x\r\n\r\n"), TESTSRV_TEST);
	assert_int_equal(C("GET /test?x=1 HTTP/1.0\n\n"), TESTSRV_TEST);
	assert_int_equal(C("GET /test HTTP/1.1\r\nHost: x\r\n\r\nGET /other HTTP/1.1\r\n\r\n"),
			 TESTSRV_TEST);
	/* Partial: no line yet, a line but no end of headers. */
	assert_int_equal(C(""), TESTSRV_NEED_MORE);
	assert_int_equal(C("GET /te"), TESTSRV_NEED_MORE);
	assert_int_equal(C("GET /test HTTP/1.1\r\n"), TESTSRV_NEED_MORE);
	assert_int_equal(C("GET /test HTTP/1.1\r\nHost: x\r\n"), TESTSRV_NEED_MORE);
	assert_int_equal(C("GET /other HTTP/1.1\r\nHost: x\r\n\r\n"), TESTSRV_NOT_FOUND);
	assert_int_equal(C("GET /testing HTTP/1.1\r\n\r\n"), TESTSRV_NOT_FOUND);
	assert_int_equal(C("GET / HTTP/1.1\r\n\r\n"), TESTSRV_NOT_FOUND);
	assert_int_equal(C("GET /TEST HTTP/1.1\r\n\r\n"), TESTSRV_NOT_FOUND);
	assert_int_equal(C("POST /test HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), TESTSRV_BAD);
	assert_int_equal(C("get /test HTTP/1.1\r\n\r\n"), TESTSRV_BAD);
	assert_int_equal(C("GET /test HTTP/2.0\r\n\r\n"), TESTSRV_BAD);
	assert_int_equal(C("GET /test HTTP/1.2\r\n\r\n"), TESTSRV_BAD);
	assert_int_equal(C("GET /test\r\n\r\n"), TESTSRV_BAD);
	assert_int_equal(C("\r\n\r\n"), TESTSRV_BAD);
	assert_int_equal(C("hello\n"), TESTSRV_BAD);
	/* A bad request line is refused without waiting for the headers. */
	assert_int_equal(C("SSH-2.0-OpenSSH_9.2\r\n"), TESTSRV_BAD);
	memset(big, 'a', sizeof(big));
	assert_int_equal(testsrv_classify(big, sizeof(big)), TESTSRV_BAD);
	assert_int_equal(testsrv_classify(big, sizeof(big) - 1), TESTSRV_NEED_MORE);
	/* Headers that never end. */
	memcpy(big, "GET /test HTTP/1.1\r\n", 20);
	assert_int_equal(testsrv_classify(big, sizeof(big)), TESTSRV_BAD);
}

#define K(s) testsrv_keep_alive(s, strlen(s))

static void test_keep_alive(void **state)
{
	/* HTTP/1.1 keeps its connection unless it says close (any case, any list). */
	assert_true(K("GET /test HTTP/1.1\r\nHost: x\r\n\r\n"));
	assert_true(K("GET /test HTTP/1.1\n\n"));
	assert_true(K("GET /test HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"));
	assert_false(K("GET /test HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
	assert_false(K("GET /test HTTP/1.1\r\nconnection:CLOSE\r\n\r\n"));
	assert_false(K("GET /test HTTP/1.1\nConnection: Upgrade, Close\n\n"));
	/* HTTP/1.0 closes. */
	assert_false(K("GET /test HTTP/1.0\r\n\r\n"));
	assert_false(K("GET /test HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
	/* Only the headers count: a close after the blank line is not one. */
	assert_true(K("GET /test HTTP/1.1\r\n\r\nConnection: close\r\n\r\n"));
	/* Nothing like a request line. */
	assert_false(K(""));
	assert_false(K("\n"));
	assert_false(K("HTTP/1.1\n\n"));
}

static void test_response(void **state)
{
	static const char body[] =
		"{\"wg_ip\": \"10.88.0.11/32\", \"time\": \"2025-08-24T21:10:01.999712+00:00\"}";
	struct timeval tv = { .tv_sec = 1756069801, .tv_usec = 999712 };
	struct in_addr ip = { .s_addr = inet_addr("10.88.0.11") };
	char out[512], want[512];
	size_t n;

	/* A kept connection's answer says nothing of closing. */
	for (int keep = 0; keep < 2; keep++) {
		n = testsrv_response(TESTSRV_TEST, &ip, &tv, keep, out, sizeof(out));
		snprintf(want, sizeof(want),
			 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
			 "%zu\r\n%s\r\n%s",
			 strlen(body), keep ? "" : "Connection: close\r\n", body);
		assert_int_equal(n, strlen(want));
		assert_string_equal(out, want);
	}
	/* Microseconds keep their leading zeros. */
	tv.tv_usec = 42;
	testsrv_response(TESTSRV_TEST, &ip, &tv, false, out, sizeof(out));
	assert_non_null(strstr(out, "\"time\": \"2025-08-24T21:10:01.000042+00:00\"}"));
	n = testsrv_response(TESTSRV_NOT_FOUND, &ip, &tv, false, out, sizeof(out));
	assert_int_equal(n, strlen(out));
	assert_int_equal(strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24), 0);
	assert_non_null(strstr(out, "Content-Length: 10\r\n"));
	assert_non_null(strstr(out, "\r\n\r\nnot found\n"));
	testsrv_response(TESTSRV_BAD, &ip, &tv, false, out, sizeof(out));
	assert_int_equal(strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26), 0);
	assert_non_null(strstr(out, "Content-Length: 12\r\n"));
	/* A short buffer is cut, never overrun. */
	n = testsrv_response(TESTSRV_TEST, &ip, &tv, false, out, 20);
	assert_int_equal(n, 19);
	assert_int_equal(strlen(out), 19);
}

/* Connect to addr:8000, send req, drive the server until it closes the
 * connection, and return what the client read. */
static size_t exchange(struct testsrv *t, const char *req, char *resp, size_t cap)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(TESTSRV_PORT),
				   .sin_addr = t->addr };
	int c = socket(AF_INET, SOCK_STREAM, 0), slot = -1;
	struct pollfd pfd = { .fd = t->listen_fd, .events = POLLIN };
	size_t n = 0;
	ssize_t r;

	assert_true(c >= 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(send(c, req, strlen(req), 0), (ssize_t)strlen(req));
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	testsrv_accept(t, 1000);
	for (int i = 0; i < TESTSRV_MAX_CONNS; i++)
		if (t->conns[i].fd >= 0)
			slot = i;
	assert_true(slot >= 0);
	assert_int_equal(t->conns[slot].deadline_ms, 1000 + TESTSRV_TIMEOUT_MS);
	for (int rounds = 0; t->conns[slot].fd >= 0 && rounds < 100; rounds++) {
		pfd.fd = t->conns[slot].fd;
		assert_int_equal(poll(&pfd, 1, 2000), 1);
		testsrv_input(t, slot, 1000);
	}
	assert_int_equal(t->conns[slot].fd, -1);
	while (n + 1 < cap && (r = read(c, resp + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	resp[n] = '\0';
	close(c);
	return n;
}

static void test_socket(void **state)
{
	struct in_addr lo = { .s_addr = htonl(INADDR_LOOPBACK) };
	struct testsrv t;
	char resp[1024], *body;
	int ret, c;

	testsrv_init(&t, "lo");
	assert_int_equal(t.listen_fd, -1);
	ret = testsrv_bind(&t, &lo);
	if (ret == -EADDRINUSE)
		skip();
	assert_int_equal(ret, 0);
	assert_true(t.listen_fd >= 0);
	/* Binding the same address again keeps the listener. */
	c = t.listen_fd;
	assert_int_equal(testsrv_bind(&t, &lo), 0);
	assert_int_equal(t.listen_fd, c);

	exchange(&t, "GET /test HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: close\r\n\r\n",
		 resp, sizeof(resp));
	assert_int_equal(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17), 0);
	assert_non_null(strstr(resp, "Content-Type: application/json\r\n"));
	body = strstr(resp, "\r\n\r\n");
	assert_non_null(body);
	body += 4;
	assert_int_equal(strncmp(body, "{\"wg_ip\": \"127.0.0.1/32\", \"time\": \"", 35), 0);
	assert_int_equal(strlen(body), strlen("{\"wg_ip\": \"127.0.0.1/32\", \"time\": "
					      "\"2025-08-24T21:10:01.999712+00:00\"}"));
	exchange(&t, "GET /nope HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	assert_int_equal(strncmp(resp, "HTTP/1.1 404 Not Found\r\n", 24), 0);
	exchange(&t, "BREW /test HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	assert_int_equal(strncmp(resp, "HTTP/1.1 400 Bad Request\r\n", 26), 0);

	/* A client that says nothing is dropped at its deadline. */
	{
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(TESTSRV_PORT),
					   .sin_addr = lo };
		struct pollfd pfd = { .fd = t.listen_fd, .events = POLLIN };
		char b;

		c = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
		assert_int_equal(poll(&pfd, 1, 2000), 1);
		testsrv_accept(&t, 5000);
		assert_int_equal(testsrv_tick(&t, 5000), TESTSRV_TIMEOUT_MS);
		assert_int_equal(testsrv_tick(&t, 5000 + TESTSRV_TIMEOUT_MS - 1), 1);
		assert_int_equal(testsrv_tick(&t, 5000 + TESTSRV_TIMEOUT_MS), -1);
		assert_int_equal(read(c, &b, 1), 0); /* closed by the server */
		close(c);
	}

	/* A request that arrives 3 s after its connection (a busy machine, a
	 * retransmission) is answered: a slow pair is not a pair down. */
	{
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(TESTSRV_PORT),
					   .sin_addr = lo };
		struct pollfd pfd = { .fd = t.listen_fd, .events = POLLIN };
		const char req[] = "GET /test HTTP/1.1\r\nHost: x\r\n\r\n";
		int slot = -1;

		c = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
		assert_int_equal(poll(&pfd, 1, 2000), 1);
		testsrv_accept(&t, 5000);
		assert_true(testsrv_tick(&t, 8000) > 0);
		for (int i = 0; i < TESTSRV_MAX_CONNS; i++)
			if (t.conns[i].fd >= 0)
				slot = i;
		assert_true(slot >= 0);
		assert_int_equal(write(c, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
		pfd.fd = t.conns[slot].fd;
		assert_int_equal(poll(&pfd, 1, 2000), 1);
		testsrv_input(&t, slot, 8000);
		memset(resp, 0, sizeof(resp));
		assert_true(read(c, resp, sizeof(resp) - 1) > 0);
		assert_int_equal(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17), 0);
		close(c);
	}

	/* No address: no listener. */
	assert_int_equal(testsrv_bind(&t, NULL), 0);
	assert_int_equal(t.listen_fd, -1);
	testsrv_close(&t);
}

/* A TCP connection from src to 127.0.0.1:8000, accepted by the server. */
static int connect_from(struct testsrv *t, const char *src, uint64_t now_ms)
{
	struct sockaddr_in from = { .sin_family = AF_INET };
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(TESTSRV_PORT),
				  .sin_addr = t->addr };
	struct pollfd pfd = { .fd = t->listen_fd, .events = POLLIN };
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(c >= 0);
	assert_int_equal(inet_pton(AF_INET, src, &from.sin_addr), 1);
	assert_int_equal(bind(c, (struct sockaddr *)&from, sizeof(from)), 0);
	assert_int_equal(connect(c, (struct sockaddr *)&to, sizeof(to)), 0);
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	testsrv_accept(t, now_ms);
	return c;
}

static int n_open(const struct testsrv *t)
{
	int n = 0;

	for (int i = 0; i < TESTSRV_MAX_CONNS; i++)
		n += t->conns[i].fd >= 0;
	return n;
}

static int bind_lo(struct testsrv *t)
{
	struct in_addr lo = { .s_addr = htonl(INADDR_LOOPBACK) };
	int ret;

	testsrv_init(t, "lo");
	ret = testsrv_bind(t, &lo);
	if (ret == -EADDRINUSE)
		skip(); /* something else on this machine serves :8000 */
	assert_int_equal(ret, 0);
	return ret;
}

static void test_idle_connections_from_one_peer_do_not_lock_out_others(void **state)
{
	struct testsrv t;
	int idle[40], other;
	char resp[1024];
	ssize_t n;

	bind_lo(&t);
	for (int i = 0; i < 40; i++)
		idle[i] = connect_from(&t, "127.0.0.1", 1000);
	assert_int_equal(n_open(&t), TESTSRV_MAX_PER_SOURCE);

	/* Another peer is still served. */
	other = connect_from(&t, "127.0.0.2", 1000);
	assert_int_equal(n_open(&t), TESTSRV_MAX_PER_SOURCE + 1);
	assert_int_equal(send(other, "GET /test HTTP/1.0\r\n\r\n", 22, 0), 22);
	for (int i = 0; i < TESTSRV_MAX_CONNS; i++) {
		struct pollfd pfd = { .fd = t.conns[i].fd, .events = POLLIN };

		if (t.conns[i].fd >= 0 && t.conns[i].peer.sin_addr.s_addr == htonl(0x7f000002)) {
			assert_int_equal(poll(&pfd, 1, 2000), 1);
			testsrv_input(&t, i, 1000);
		}
	}
	n = read(other, resp, sizeof(resp) - 1);
	assert_true(n > 17);
	assert_int_equal(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17), 0);

	/* The idle ones are dropped after a short deadline. */
	assert_int_equal(testsrv_tick(&t, 1000 + TESTSRV_TIMEOUT_MS), -1);
	assert_int_equal(n_open(&t), 0);
	for (int i = 0; i < 40; i++)
		close(idle[i]);
	close(other);
	testsrv_close(&t);
}

/* Capture what the log writes to stderr while fn runs. */
static char *capture_log(void (*fn)(struct testsrv *), struct testsrv *t)
{
	static char out[8192];
	FILE *f = tmpfile();
	int saved = dup(2);
	size_t n;

	assert_non_null(f);
	fflush(stderr);
	dup2(fileno(f), 2);
	fn(t);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	return out;
}

static void fifty_gets(struct testsrv *t)
{
	char resp[512];

	for (int k = 0; k < 50; k++) {
		int c = connect_from(t, "127.0.0.1", 1000 + (uint64_t)k);

		assert_int_equal(send(c, "GET /test HTTP/1.1\r\n\r\n", 22, 0), 22);
		for (int i = 0; i < TESTSRV_MAX_CONNS; i++) {
			struct pollfd pfd = { .fd = t->conns[i].fd, .events = POLLIN };

			if (t->conns[i].fd < 0)
				continue;
			assert_int_equal(poll(&pfd, 1, 2000), 1);
			testsrv_input(t, i, 1000 + (uint64_t)k);
		}
		assert_true(read(c, resp, sizeof(resp)) > 0);
		close(c);
	}
}

static void test_requests_are_logged_at_a_bounded_rate(void **state)
{
	struct testsrv t;
	const char *log, *p;
	int lines = 0;

	bind_lo(&t);
	log = capture_log(fifty_gets, &t);
	for (p = log; (p = strstr(p, "serving request from")); p++)
		lines++;
	assert_int_equal(lines, 1);
	testsrv_close(&t);
}

/* The open slot serving client c, or -1. */
static int slot_of(const struct testsrv *t, int c)
{
	struct sockaddr_in me;
	socklen_t sl = sizeof(me);

	assert_int_equal(getsockname(c, (struct sockaddr *)&me, &sl), 0);
	for (int i = 0; i < TESTSRV_MAX_CONNS; i++)
		if (t->conns[i].fd >= 0 && t->conns[i].peer.sin_port == me.sin_port &&
		    t->conns[i].peer.sin_addr.s_addr == me.sin_addr.s_addr)
			return i;
	return -1;
}

/* Send req on c, let the server read it at now_ms, and read its answer into
 * resp (NUL-terminated). Returns the slot that served it. */
static int ask(struct testsrv *t, int c, const char *req, uint64_t now_ms, char *resp, size_t cap)
{
	int slot = slot_of(t, c);
	struct pollfd pfd = { .events = POLLIN };
	ssize_t n;

	assert_true(slot >= 0);
	assert_int_equal(send(c, req, strlen(req), 0), (ssize_t)strlen(req));
	pfd.fd = t->conns[slot].fd;
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	testsrv_input(t, slot, now_ms);
	n = read(c, resp, cap - 1);
	assert_true(n > 0);
	resp[n] = '\0';
	return slot;
}

static const char probe[] = "GET /test HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAccept: */*\r\n\r\n";

/* controld's probe every interval reuses one connection: no TCP handshake
 * and teardown through the tunnel per probe. */
static void test_a_kept_connection_serves_the_next_probes(void **state)
{
	struct testsrv t;
	char resp[1024], b;
	int c, slot;

	bind_lo(&t);
	c = connect_from(&t, "127.0.0.1", 1000);
	slot = ask(&t, c, probe, 1000, resp, sizeof(resp));
	assert_int_equal(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17), 0);
	assert_null(strstr(resp, "Connection: close"));
	assert_true(t.conns[slot].fd >= 0);
	assert_int_equal(t.conns[slot].deadline_ms, 1000 + TESTSRV_IDLE_MS);
	/* The next interval's probe, on the same connection. */
	assert_int_equal(ask(&t, c, probe, 11000, resp, sizeof(resp)), slot);
	assert_int_equal(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17), 0);
	assert_non_null(strstr(resp, "\"wg_ip\": \"127.0.0.1/32\""));
	/* A request that asks to close is answered, then the server closes. */
	ask(&t, c, "GET /test HTTP/1.1\r\nConnection: close\r\n\r\n", 12000, resp, sizeof(resp));
	assert_non_null(strstr(resp, "Connection: close\r\n"));
	assert_int_equal(t.conns[slot].fd, -1);
	assert_int_equal(read(c, &b, 1), 0);
	close(c);

	/* Kept, then no request: closed after TESTSRV_IDLE_MS. */
	c = connect_from(&t, "127.0.0.1", 20000);
	slot = ask(&t, c, probe, 20000, resp, sizeof(resp));
	assert_int_equal(testsrv_tick(&t, 20000 + TESTSRV_IDLE_MS - 1), 1);
	assert_true(t.conns[slot].fd >= 0);
	assert_int_equal(testsrv_tick(&t, 20000 + TESTSRV_IDLE_MS), -1);
	assert_int_equal(t.conns[slot].fd, -1);
	assert_int_equal(read(c, &b, 1), 0);
	close(c);

	/* The next request on a kept connection has the request deadline, not
	 * the idle one: a drip of it holds the slot 5 s, not 30. */
	c = connect_from(&t, "127.0.0.1", 100000);
	slot = ask(&t, c, probe, 100000, resp, sizeof(resp));
	{
		struct pollfd pfd = { .fd = t.conns[slot].fd, .events = POLLIN };

		assert_int_equal(send(c, "GET /te", 7, 0), 7);
		assert_int_equal(poll(&pfd, 1, 2000), 1);
		testsrv_input(&t, slot, 110000);
	}
	assert_int_equal(testsrv_tick(&t, 110000), TESTSRV_TIMEOUT_MS);
	assert_int_equal(testsrv_tick(&t, 110000 + TESTSRV_TIMEOUT_MS), -1);
	assert_int_equal(read(c, &b, 1), 0);
	close(c);

	/* A 404 is never kept. */
	c = connect_from(&t, "127.0.0.1", 200000);
	slot = ask(&t, c, "GET /nope HTTP/1.1\r\n\r\n", 200000, resp, sizeof(resp));
	assert_int_equal(strncmp(resp, "HTTP/1.1 404 Not Found\r\n", 24), 0);
	assert_int_equal(t.conns[slot].fd, -1);
	close(c);
	testsrv_close(&t);
}

/* More peers than slots: an idle kept connection gives its slot to a new
 * one (the one used longest ago first), a connection awaiting its request
 * never does, and a source at its limit gives up its own idle one. */
static void test_idle_kept_connections_give_way(void **state)
{
	struct testsrv t;
	int kept[TESTSRV_MAX_CONNS], c, waiting, own[TESTSRV_MAX_PER_SOURCE], n;
	char resp[1024], src[32], b;

	bind_lo(&t);
	for (int i = 0; i < TESTSRV_MAX_CONNS; i++) {
		snprintf(src, sizeof(src), "127.0.1.%d", i + 1);
		kept[i] = connect_from(&t, src, 1000 + (uint64_t)i);
		ask(&t, kept[i], probe, 1000 + (uint64_t)i, resp, sizeof(resp));
	}
	assert_int_equal(n_open(&t), TESTSRV_MAX_CONNS);
	c = connect_from(&t, "127.0.2.1", 5000);
	assert_int_equal(n_open(&t), TESTSRV_MAX_CONNS);
	assert_int_equal(slot_of(&t, kept[0]), -1); /* the oldest gave way */
	assert_int_equal(read(kept[0], &b, 1), 0);
	assert_true(slot_of(&t, kept[1]) >= 0);
	ask(&t, c, probe, 5000, resp, sizeof(resp));
	assert_int_equal(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17), 0);
	/* A new connection, not answered yet, holds its slot against the next. */
	waiting = connect_from(&t, "127.0.2.2", 6000);
	for (int i = 2; i < TESTSRV_MAX_CONNS; i++)
		c = connect_from(&t, "127.0.2.3", 7000), close(c);
	assert_true(slot_of(&t, waiting) >= 0);
	for (int i = 0; i < TESTSRV_MAX_CONNS; i++)
		close(kept[i]);
	close(waiting);
	testsrv_close(&t);

	/* One source at its limit of kept connections: its own oldest goes. */
	bind_lo(&t);
	for (int i = 0; i < TESTSRV_MAX_PER_SOURCE; i++) {
		own[i] = connect_from(&t, "127.0.3.1", 1000 + (uint64_t)i);
		ask(&t, own[i], probe, 1000 + (uint64_t)i, resp, sizeof(resp));
	}
	c = connect_from(&t, "127.0.3.1", 2000);
	assert_true(slot_of(&t, c) >= 0);
	assert_int_equal(slot_of(&t, own[0]), -1);
	n = n_open(&t);
	assert_int_equal(n, TESTSRV_MAX_PER_SOURCE);
	for (int i = 0; i < TESTSRV_MAX_PER_SOURCE; i++)
		close(own[i]);
	close(c);
	testsrv_close(&t);
}

/* Bind 127.0.0.1 while the port is held, and retry twice. */
static void bind_held(struct testsrv *t)
{
	struct in_addr lo = { .s_addr = htonl(INADDR_LOOPBACK) };

	assert_int_equal(testsrv_bind(t, &lo), -EADDRINUSE);
	assert_int_equal(t->listen_fd, -1);
	assert_int_equal(testsrv_tick(t, 1000), TESTSRV_RETRY_MS);
	assert_int_equal(testsrv_tick(t, 1000 + TESTSRV_RETRY_MS), TESTSRV_RETRY_MS);
	assert_int_equal(t->listen_fd, -1);
}

static void test_port_taken_fails_loudly_and_is_retried(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(TESTSRV_PORT),
				   .sin_addr = { htonl(INADDR_LOOPBACK) } };
	int one = 1, squatter = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct testsrv t;
	const char *log, *p;
	int errors = 0;

	/* Whoever holds the port, with any socket option, keeps the agent out. */
	setsockopt(squatter, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(squatter, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(squatter, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		skip();
	assert_int_equal(listen(squatter, 8), 0);
	testsrv_init(&t, "lo");
	/* Retried while the port is held, with one error line that says why. */
	log = capture_log(bind_held, &t);
	for (p = log; (p = strstr(p, "error: cannot serve /test on 127.0.0.1:8000")); p++)
		errors++;
	assert_int_equal(errors, 1);
	assert_non_null(strstr(log, "another process holds the port"));
	/* ...and served as soon as it is free. */
	close(squatter);
	assert_int_equal(testsrv_tick(&t, 1000 + 2 * TESTSRV_RETRY_MS), -1);
	assert_true(t.listen_fd >= 0);
	testsrv_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_a_kept_connection_serves_the_next_probes),
		cmocka_unit_test(test_idle_kept_connections_give_way),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_socket),
		cmocka_unit_test(test_idle_connections_from_one_peer_do_not_lock_out_others),
		cmocka_unit_test(test_requests_are_logged_at_a_bounded_rate),
		cmocka_unit_test(test_port_taken_fails_loudly_and_is_retried),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

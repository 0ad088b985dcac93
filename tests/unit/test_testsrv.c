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
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

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

static void test_response(void **state)
{
	static const char body[] =
		"{\"wg_ip\": \"10.88.0.11/32\", \"time\": \"2025-08-24T21:10:01.999712+00:00\"}";
	struct timeval tv = { .tv_sec = 1756069801, .tv_usec = 999712 };
	struct in_addr ip = { .s_addr = inet_addr("10.88.0.11") };
	char out[512], want[512];
	size_t n;

	n = testsrv_response(TESTSRV_TEST, &ip, &tv, out, sizeof(out));
	snprintf(want, sizeof(want),
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s",
		 strlen(body), body);
	assert_int_equal(n, strlen(want));
	assert_string_equal(out, want);
	/* Microseconds keep their leading zeros. */
	tv.tv_usec = 42;
	testsrv_response(TESTSRV_TEST, &ip, &tv, out, sizeof(out));
	assert_non_null(strstr(out, "\"time\": \"2025-08-24T21:10:01.000042+00:00\"}"));
	n = testsrv_response(TESTSRV_NOT_FOUND, &ip, &tv, out, sizeof(out));
	assert_int_equal(n, strlen(out));
	assert_int_equal(strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24), 0);
	assert_non_null(strstr(out, "Content-Length: 10\r\n"));
	assert_non_null(strstr(out, "\r\n\r\nnot found\n"));
	testsrv_response(TESTSRV_BAD, &ip, &tv, out, sizeof(out));
	assert_int_equal(strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26), 0);
	assert_non_null(strstr(out, "Content-Length: 12\r\n"));
	/* A short buffer is cut, never overrun. */
	n = testsrv_response(TESTSRV_TEST, &ip, &tv, out, 20);
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

	testsrv_init(&t);
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

	exchange(&t, "GET /test HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n", resp, sizeof(resp));
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

	/* No address: no listener. */
	assert_int_equal(testsrv_bind(&t, NULL), 0);
	assert_int_equal(t.listen_fd, -1);
	testsrv_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

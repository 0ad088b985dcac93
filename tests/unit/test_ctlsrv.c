// SPDX-License-Identifier: MIT
/*
 * ctlsrv: control clients over real SOCK_SEQPACKET socketpairs. A client that
 * never reads is disconnected without holding up anyone else; replies that
 * must wait arrive later, in order; slots are shared out per uid with one
 * always left for root.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctlsrv.h"
#include "log.h"

#define MAX_REQUEST 1024
#define REPLY_LEN (32 * 1024)

static struct ctlsrv srv;
static int n_requests, n_gone, gone_client;
static size_t last_len, last_full_len;

/* Answers every request with REPLY_LEN bytes: the first byte of the request,
 * then a sequence number, so order can be checked. */
static void echo(void *ctx, int client, const uint8_t *buf, size_t len, size_t full_len)
{
	static uint8_t reply[REPLY_LEN];

	last_len = len;
	last_full_len = full_len;
	reply[0] = len ? buf[0] : 0;
	memcpy(reply + 1, &n_requests, sizeof(n_requests));
	n_requests++;
	ctlsrv_reply(&srv, client, reply, sizeof(reply));
}

static void gone(void *ctx, int client)
{
	n_gone++;
	gone_client = client;
}

static int setup(void **state)
{
	static const uid_t allow[] = { 1000, 1001 };

	n_requests = n_gone = 0;
	gone_client = -1;
	return ctlsrv_init(&srv, -1, allow, 2, MAX_REQUEST, echo, gone, NULL);
}

static int teardown(void **state)
{
	ctlsrv_close(&srv);
	return 0;
}

/* A connected client of uid; returns our end, *client its index. */
static int connect_as(uid_t uid, int *client, int *ret)
{
	struct ucred cred = { .pid = 4242, .uid = uid, .gid = uid };
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	*ret = ctlsrv_add(&srv, sv[1], &cred, client);
	return sv[0];
}

static int connect_ok(uid_t uid, int *client)
{
	int ret, fd = connect_as(uid, client, &ret);

	assert_int_equal(ret, 0);
	return fd;
}

/* One pass of the agent's loop over the control clients. */
static void serve(void)
{
	struct pollfd pfd[CTLSRV_MAX_CLIENTS];

	ctlsrv_pollfds(&srv, pfd);
	assert_true(poll(pfd, CTLSRV_MAX_CLIENTS, 0) >= 0);
	ctlsrv_events(&srv, pfd);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_client_that_never_reads_does_not_stall_others(void **state)
{
	uint8_t req = 'a', buf[REPLY_LEN];
	int stuck_i, other_i;
	int stuck = connect_ok(1000, &stuck_i), other = connect_ok(1001, &other_i);
	uint64_t t0 = now_ms();
	int sent = 0;

	/* Pipeline requests and never read the answers. */
	for (int round = 0; round < 200 && !n_gone; round++) {
		if (send(stuck, &req, 1, MSG_DONTWAIT) == 1)
			sent++;
		serve();
	}
	assert_int_equal(n_gone, 1);
	assert_int_equal(gone_client, stuck_i);
	assert_true(sent > CTLSRV_QUEUE_MAX);

	/* The other client is answered at once. */
	req = 'b';
	assert_int_equal(send(other, &req, 1, 0), 1);
	serve();
	assert_int_equal(recv(other, buf, sizeof(buf), MSG_DONTWAIT), REPLY_LEN);
	assert_int_equal(buf[0], 'b');
	assert_true(now_ms() - t0 < 500);

	/* The stuck client finds its connection closed once it reads. */
	while (recv(stuck, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	assert_int_equal(recv(stuck, buf, sizeof(buf), MSG_DONTWAIT), 0);
	close(stuck);
	close(other);
}

static void test_queued_replies_arrive_in_order(void **state)
{
	uint8_t req = 'q', buf[REPLY_LEN];
	int i, fd = connect_ok(0, &i), first, seq;
	int n = 12; /* more than the socket buffer holds, fewer than the queue allows on top */

	for (int k = 0; k < n; k++) {
		assert_int_equal(send(fd, &req, 1, 0), 1);
		serve();
	}
	assert_int_equal(n_gone, 0);
	assert_true(srv.clients[i].n > 0);
	for (int k = 0; k < n; k++) {
		serve();
		assert_int_equal(recv(fd, buf, sizeof(buf), 0), REPLY_LEN);
		memcpy(&seq, buf + 1, sizeof(seq));
		if (k == 0)
			first = seq;
		assert_int_equal(seq, first + k);
	}
	assert_int_equal(srv.clients[i].n, 0);
	close(fd);
}

static void test_oversize_request_passed_truncated(void **state)
{
	uint8_t big[MAX_REQUEST * 3] = { 'x' }, buf[REPLY_LEN];
	int i, fd = connect_ok(0, &i);

	assert_int_equal(send(fd, big, sizeof(big), 0), (ssize_t)sizeof(big));
	serve();
	assert_int_equal(last_len, MAX_REQUEST);
	assert_int_equal(last_full_len, sizeof(big));
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), REPLY_LEN);
	close(fd);
}

static void test_slots_per_uid_and_one_kept_for_root(void **state)
{
	int fds[CTLSRV_MAX_CLIENTS + 4], n = 0, i, ret;

	fds[n++] = connect_as(2000, &i, &ret);
	assert_int_equal(ret, -EPERM);
	for (int k = 0; k < CTLSRV_MAX_PER_UID; k++)
		fds[n++] = connect_ok(1000, &i);
	fds[n++] = connect_as(1000, &i, &ret);
	assert_int_equal(ret, -EUSERS);
	for (int k = 0; k < CTLSRV_MAX_CLIENTS - 1 - CTLSRV_MAX_PER_UID; k++)
		fds[n++] = connect_ok(1001, &i);
	/* Seven taken: the last one is root's. */
	fds[n++] = connect_as(1001, &i, &ret);
	assert_int_equal(ret, -EMFILE);
	fds[n++] = connect_ok(0, &i);
	fds[n++] = connect_as(0, &i, &ret);
	assert_int_equal(ret, -EMFILE);
	/* A refused connection is closed at once. */
	assert_int_equal(recv(fds[0], &ret, sizeof(ret), MSG_DONTWAIT), 0);
	for (int k = 0; k < n; k++)
		close(fds[k]);
}

static void test_disconnect_is_noticed(void **state)
{
	int i, fd = connect_ok(1000, &i);

	close(fd);
	serve();
	assert_int_equal(n_gone, 1);
	assert_int_equal(gone_client, i);
	assert_int_equal(srv.clients[i].fd, -1);
	assert_int_equal(ctlsrv_reply(&srv, i, (const uint8_t *)"x", 1), -EBADF);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_client_that_never_reads_does_not_stall_others),
		T(test_queued_replies_arrive_in_order),
		T(test_oversize_request_passed_truncated),
		T(test_slots_per_uid_and_one_kept_for_root),
		T(test_disconnect_is_noticed),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

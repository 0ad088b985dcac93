// SPDX-License-Identifier: MIT
/* connchk: the agent's side of the path checks, between two (and a third,
 * hostile) real key pairs, with recorders for the sends and replies. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "connchk.h"
#include "keyfile.h"

struct side {
	uint8_t priv[32], pub[32];
	struct connchk c;
	unsigned n_sent;
	uint8_t sent[CONNCHK_MSG_LEN];
	size_t sent_len;
	struct sockaddr_in sent_to;
	unsigned n_replies;
	int reply_client;
	uint64_t reply_id;
	int reply_status, reply_case;
	uint32_t rtt;
	struct sockaddr_in reply_from;
};

static struct side A, B, C;
static struct sockaddr_in a_addr, b_addr, c_addr;
static const uint8_t TXID[12] = "abcdefghijkl";

static int rec_send(void *ctx, const struct sockaddr_in *to, const uint8_t *msg, size_t len)
{
	struct side *s = ctx;

	assert_int_equal(len, CONNCHK_MSG_LEN);
	s->n_sent++;
	memcpy(s->sent, msg, len);
	s->sent_len = len;
	s->sent_to = *to;
	return 0;
}

static int rec_reply(void *ctx, int client, const P2pwg__Response *r)
{
	struct side *s = ctx;

	s->n_replies++;
	s->reply_client = client;
	s->reply_id = r->id;
	s->reply_status = r->status;
	s->reply_case = r->msg_case;
	if (r->msg_case == P2PWG__RESPONSE__MSG_PATH_CHECK) {
		s->rtt = r->path_check->rtt_ms;
		memcpy(&s->reply_from.sin_addr, r->path_check->from->addr.data, 4);
		s->reply_from.sin_port = htons((uint16_t)r->path_check->from->port);
	}
	return 0;
}

static void side_init(struct side *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(keyfile_generate(s->priv), 0);
	assert_int_equal(keyfile_public(s->priv, s->pub), 0);
	connchk_init(&s->c, &(struct connchk_ops){.send = rec_send, .reply = rec_reply, .ctx = s},
		     s->priv, s->pub);
}

static struct sockaddr_in addr(const char *ip, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static int setup(void **state)
{
	side_init(&A);
	side_init(&B);
	side_init(&C);
	assert_int_equal(connchk_set_peers(&A.c, (const uint8_t(*)[32])B.pub, 1), 0);
	assert_int_equal(connchk_set_peers(&B.c, (const uint8_t(*)[32])A.pub, 1), 0);
	a_addr = addr("198.51.100.1", 51820);
	b_addr = addr("192.168.1.3", 51820);
	c_addr = addr("203.0.113.66", 51820);
	return 0;
}

static int teardown(void **state)
{
	connchk_free(&A.c);
	connchk_free(&B.c);
	connchk_free(&C.c);
	return 0;
}

/* A asks (client 5, request 42) to check B's candidate. */
static int ask(struct side *s, const uint8_t *peer, struct sockaddr_in to, const uint8_t *txid,
	       uint64_t now)
{
	P2pwg__PathCheck pc = P2PWG__PATH_CHECK__INIT;
	P2pwg__Endpoint ep = P2PWG__ENDPOINT__INIT;
	char why[160];

	ep.addr.data = (uint8_t *)&to.sin_addr;
	ep.addr.len = 4;
	ep.port = ntohs(to.sin_port);
	pc.to = &ep;
	pc.peer_key.data = (uint8_t *)peer;
	pc.peer_key.len = 32;
	pc.txid.data = (uint8_t *)txid;
	pc.txid.len = 12;
	pc.timeout_ms = 1000;
	return connchk_request(&s->c, 5, 42, &pc, now, why, sizeof(why));
}

static void test_check_answered_by_the_peer(void **state)
{
	uint8_t req[CONNCHK_MSG_LEN];

	assert_int_equal(ask(&A, B.pub, b_addr, TXID, 1000), 0);
	assert_int_equal(A.n_sent, 1);
	assert_memory_equal(&A.sent_to, &b_addr, sizeof(b_addr));
	/* A STUN Binding Request with the magic cookie and the txid asked for. */
	assert_int_equal(A.sent[0], 0x00);
	assert_int_equal(A.sent[1], 0x01);
	assert_int_equal(A.sent[4], 0x21);
	assert_memory_equal(A.sent + 8, TXID, 12);
	memcpy(req, A.sent, sizeof(req));
	assert_true(connchk_input(&B.c, req, sizeof(req), &a_addr, 1000));
	assert_int_equal(B.n_sent, 1);
	assert_memory_equal(&B.sent_to, &a_addr, sizeof(a_addr));
	assert_int_equal(B.sent[0], 0x01);
	assert_int_equal(B.sent[1], 0x01);
	assert_int_equal(A.n_replies, 0);
	assert_true(connchk_input(&A.c, B.sent, B.sent_len, &b_addr, 1007));
	assert_int_equal(A.n_replies, 1);
	assert_int_equal(A.reply_client, 5);
	assert_int_equal(A.reply_id, 42);
	assert_int_equal(A.reply_status, P2PWG__STATUS__OK);
	assert_int_equal(A.reply_case, P2PWG__RESPONSE__MSG_PATH_CHECK);
	assert_int_equal(A.rtt, 7);
	assert_int_equal(A.reply_from.sin_addr.s_addr, b_addr.sin_addr.s_addr);
	assert_int_equal(connchk_tick(&A.c, 5000), -1); /* nothing left pending */
}

/* The right answer from another address (or a wrong answer from the right
 * one) does not count: the check times out. */
static void test_answer_must_come_from_the_candidate(void **state)
{
	uint8_t bad[CONNCHK_MSG_LEN];

	assert_int_equal(ask(&A, B.pub, b_addr, TXID, 1000), 0);
	assert_true(connchk_input(&B.c, A.sent, A.sent_len, &a_addr, 1000));
	assert_true(connchk_input(&A.c, B.sent, B.sent_len, &c_addr, 1001));
	memcpy(bad, B.sent, sizeof(bad));
	bad[CONNCHK_MSG_LEN - 1] ^= 1;
	assert_true(connchk_input(&A.c, bad, sizeof(bad), &b_addr, 1002));
	assert_int_equal(A.n_replies, 0);
	assert_int_equal(connchk_tick(&A.c, 1500), 500);
	assert_int_equal(connchk_tick(&A.c, 2000), -1);
	assert_int_equal(A.n_replies, 1);
	assert_int_equal(A.reply_status, P2PWG__STATUS__TIMEOUT);
}

/* A stranger C who knows both public keys (they are in node.json) can
 * neither get an answer from B as A, nor answer A's check as B. */
static void test_stranger_can_neither_ask_nor_answer(void **state)
{
	uint8_t msg[CONNCHK_MSG_LEN];

	/* C's own request, to a node that does not list C: unanswered. */
	assert_int_equal(connchk_set_peers(&C.c, (const uint8_t(*)[32])B.pub, 1), 0);
	assert_int_equal(connchk_build(&C.c, B.pub, false, TXID, msg), 0);
	assert_true(connchk_input(&B.c, msg, sizeof(msg), &c_addr, 1000));
	/* C's request wearing A's key: the tag is not A's. */
	memcpy(msg + 24, A.pub, 32);
	assert_true(connchk_input(&B.c, msg, sizeof(msg), &c_addr, 1000));
	assert_int_equal(B.n_sent, 0);
	assert_int_equal(B.c.m_unanswered, 2);
	/* C answers A's check from B's address, wearing B's key. */
	assert_int_equal(ask(&A, B.pub, b_addr, TXID, 1000), 0);
	assert_int_equal(connchk_set_peers(&C.c, (const uint8_t(*)[32])A.pub, 1), 0);
	assert_int_equal(connchk_build(&C.c, A.pub, true, TXID, msg), 0);
	memcpy(msg + 24, B.pub, 32);
	assert_true(connchk_input(&A.c, msg, sizeof(msg), &b_addr, 1001));
	assert_int_equal(A.n_replies, 0);
}

/* A node's own request reflected back to it (its own address listed by a
 * peer, a mirror on the path) is neither answered nor taken as an answer. */
static void test_reflected_request_does_not_verify(void **state)
{
	uint8_t msg[CONNCHK_MSG_LEN];

	assert_int_equal(ask(&A, B.pub, b_addr, TXID, 1000), 0);
	memcpy(msg, A.sent, sizeof(msg));
	assert_true(connchk_input(&A.c, msg, sizeof(msg), &b_addr, 1001));
	assert_int_equal(A.n_sent, 1); /* not answered */
	msg[0] = 0x01;
	msg[1] = 0x01; /* the request dressed as an answer */
	assert_true(connchk_input(&A.c, msg, sizeof(msg), &b_addr, 1002));
	assert_int_equal(A.n_replies, 0);
	/* Ordinary STUN is left to the STUN exchanges. */
	msg[20] = 0x00;
	assert_false(connchk_input(&A.c, msg, sizeof(msg), &b_addr, 1003));
	assert_false(connchk_input(&A.c, msg, 20, &b_addr, 1003));
}

/* Answers are capped per second: a flood of valid requests (replayed) never
 * makes the agent send more than CONNCHK_ANSWER_RATE a second. */
static void test_answers_rate_limited(void **state)
{
	uint8_t req[CONNCHK_MSG_LEN];

	assert_int_equal(ask(&A, B.pub, b_addr, TXID, 1000), 0);
	memcpy(req, A.sent, sizeof(req));
	for (int i = 0; i < 3 * CONNCHK_ANSWER_RATE; i++)
		connchk_input(&B.c, req, sizeof(req), &a_addr, 1000 + (uint64_t)i % 500);
	assert_int_equal(B.n_sent, CONNCHK_ANSWER_RATE);
	connchk_input(&B.c, req, sizeof(req), &a_addr, 2100);
	assert_int_equal(B.n_sent, CONNCHK_ANSWER_RATE + 1);
}

/* What controld may ask: a peer of the last SetPeers, IPv4 unicast, a 12-byte
 * txid, bounded timeout, a bounded number in flight. */
static void test_request_limits(void **state)
{
	uint8_t txid[12] = {0};

	assert_int_equal(ask(&A, C.pub, b_addr, TXID, 0), P2PWG__STATUS__INVALID);
	assert_int_equal(ask(&A, B.pub, addr("127.0.0.1", 51820), TXID, 0), P2PWG__STATUS__INVALID);
	assert_int_equal(ask(&A, B.pub, addr("224.0.0.1", 51820), TXID, 0), P2PWG__STATUS__INVALID);
	assert_int_equal(ask(&A, B.pub, addr("10.0.0.1", 0), TXID, 0), P2PWG__STATUS__INVALID);
	for (int i = 0; i < CONNCHK_MAX_PENDING; i++) {
		txid[0] = (uint8_t)i;
		assert_int_equal(ask(&A, B.pub, b_addr, txid, 0), 0);
	}
	assert_int_equal(ask(&A, B.pub, b_addr, txid, 0),
			 P2PWG__STATUS__INVALID); /* txid in flight */
	txid[0] = 0xff;
	assert_int_equal(ask(&A, B.pub, b_addr, txid, 0), P2PWG__STATUS__BUSY);
	connchk_client_gone(&A.c, 5);
	assert_int_equal(ask(&A, B.pub, b_addr, txid, 0), 0);
	/* Peers replaced: the dropped one is no longer checked or answered. */
	assert_int_equal(connchk_set_peers(&A.c, NULL, 0), 0);
	txid[0] = 0xfe;
	assert_int_equal(ask(&A, B.pub, b_addr, txid, 0), P2PWG__STATUS__INVALID);
}

/* A SetPeers of many peers derives no key (an X25519 each was most of a
 * 245-peer apply); a peer's key is derived at its first check, once, and a
 * peer kept by the next SetPeers keeps it. A low-order key is refused then. */
static void test_keys_derived_at_first_use_only(void **state)
{
	uint8_t keys[3][32], low[32] = {0}, txid[12] = "keyed-first!";

	memcpy(keys[0], C.pub, 32);
	memcpy(keys[1], B.pub, 32);
	memcpy(keys[2], low, 32);
	assert_int_equal(connchk_set_peers(&A.c, (const uint8_t(*)[32])keys, 3), 0);
	assert_int_equal(A.c.n_peers, 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(A.c.peers[i].keyed, 0);
	assert_int_equal(ask(&A, B.pub, b_addr, TXID, 0), 0);
	assert_int_equal(A.c.peers[1].keyed, 1);
	assert_int_equal(A.c.peers[0].keyed, 0);
	assert_int_equal(ask(&A, low, b_addr, txid, 0), P2PWG__STATUS__INVALID);
	assert_int_equal(A.c.peers[2].keyed, 2);
	assert_int_equal(connchk_set_peers(&A.c, (const uint8_t(*)[32])keys + 1, 1), 0);
	assert_int_equal(A.c.peers[0].keyed, 1);
	/* And the check still verifies at B. */
	assert_true(connchk_input(&B.c, A.sent, A.sent_len, &a_addr, 0));
	assert_int_equal(B.n_sent, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_check_answered_by_the_peer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_answer_must_come_from_the_candidate, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_stranger_can_neither_ask_nor_answer, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_reflected_request_does_not_verify, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_answers_rate_limited, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keys_derived_at_first_use_only, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/* agentmsg: the SetPeers controld sends carries an endpoint only with news. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agentmsg.h"

static void test_endpoint_only_when_news(void **state)
{
	static struct agentmsg_setpeers m;
	static struct mesh_state s;
	P2pwg__Request *r;

	s.found_self = true;
	inet_pton(AF_INET, "10.88.0.10", &s.self_addr);
	s.n_peers = 2;
	for (int i = 0; i < 2; i++) {
		memset(s.peers[i].key, 0xa0 + i, 32);
		inet_pton(AF_INET, i ? "10.88.0.12" : "10.88.0.11", &s.peers[i].overlay);
		s.peers[i].has_endpoint = true;
		s.peers[i].endpoint.sin_family = AF_INET;
		inet_pton(AF_INET, "198.51.100.1", &s.peers[i].endpoint.sin_addr);
		s.peers[i].endpoint.sin_port = htons(51820);
		s.peers[i].keepalive = 25;
	}
	s.peers[1].send_endpoint = true;
	r = agentmsg_setpeers(&m, &s, 51820, 24);
	assert_int_equal(r->msg_case, P2PWG__REQUEST__MSG_SET_PEERS);
	assert_int_equal(r->set_peers->n_peers, 2);
	assert_int_equal(r->set_peers->address->prefix_len, 24);
	/* Without news the interface keeps the endpoint WireGuard learnt (roaming). */
	assert_null(r->set_peers->peers[0]->endpoint);
	assert_int_equal(r->set_peers->peers[0]->keepalive, 25);
	assert_non_null(r->set_peers->peers[1]->endpoint);
	assert_int_equal(r->set_peers->peers[1]->endpoint->port, 51820);
	assert_int_equal(r->set_peers->peers[1]->n_allowed_ips, 1);
	assert_int_equal(r->set_peers->peers[1]->allowed_ips[0]->prefix_len, 32);
}

static void test_device_peers_read(void **state)
{
	P2pwg__Device d = P2PWG__DEVICE__INIT;
	P2pwg__Peer p = P2PWG__PEER__INIT, *pp = &p;
	P2pwg__Prefix a = P2PWG__PREFIX__INIT, *ap = &a;
	P2pwg__Endpoint e = P2PWG__ENDPOINT__INIT;
	uint8_t key[32], ip[4] = { 10, 88, 0, 11 }, eip[4] = { 198, 51, 100, 7 };
	struct peerset_devpeer *dp;
	size_t n;

	memset(key, 0xa1, 32);
	p.public_key.data = key;
	p.public_key.len = 32;
	a.addr.data = ip;
	a.addr.len = 4;
	a.prefix_len = 32;
	p.allowed_ips = &ap;
	p.n_allowed_ips = 1;
	e.addr.data = eip;
	e.addr.len = 4;
	e.port = 4000;
	p.endpoint = &e;
	p.last_handshake_sec = 1234;
	d.peers = &pp;
	d.n_peers = 1;
	assert_int_equal(agentmsg_device_peers(&d, &dp, &n), 0);
	assert_int_equal(n, 1);
	assert_true(dp[0].has_ep);
	assert_int_equal(ntohs(dp[0].ep.sin_port), 4000);
	assert_int_equal(dp[0].handshake, 1234);
	free(dp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoint_only_when_news),
		cmocka_unit_test(test_device_peers_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

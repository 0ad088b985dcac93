// SPDX-License-Identifier: MIT
/*
 * wguapi: the text of wireguard-go's UAPI, both ways. The socket exchange
 * itself is covered by the end-to-end tests (wireguard-go insists on
 * /var/run/wireguard); here only a wireguard-go that never answers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "wguapi.h"

#define HEX(b) b b b b b b b b b b b b b b b b b b b b b b b b b b b b b b b b
#define K1 HEX("11")
#define K2 HEX("a2")
#define K3 HEX("3c")
#define K4 HEX("de")

static void aip(struct wg_peer *p, int family, const char *ip, uint8_t cidr)
{
	struct wg_allowedip a = { .family = (uint16_t)family, .cidr = cidr };

	assert_int_equal(inet_pton(family, ip, family == AF_INET ? (void *)&a.ip4 : (void *)&a.ip6), 1);
	assert_int_equal(wg_peer_add_allowedip(p, &a), 0);
}

static void test_encode_set(void **state)
{
	struct wg_device *d = wg_device_new("wg0");
	struct wg_peer *p;
	char *out = NULL;
	size_t len = 0;

	d->flags = WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_LISTEN_PORT | WGDEV_REPLACE_PEERS;
	memset(d->private_key, 0x11, WG_KEY_LEN);
	d->listen_port = 51820;
	p = wg_device_add_peer(d);
	memset(p->public_key, 0xa2, WG_KEY_LEN);
	p->flags = WGPEER_REMOVE_ME;
	p->keepalive = 25; /* ignored for a removal */
	p = wg_device_add_peer(d);
	memset(p->public_key, 0x3c, WG_KEY_LEN);
	p->flags = WGPEER_UPDATE_ONLY | WGPEER_HAS_KEEPALIVE | WGPEER_REPLACE_ALLOWEDIPS;
	p->endpoint.sin.sin_family = AF_INET;
	p->endpoint.sin.sin_port = htons(51821);
	inet_pton(AF_INET, "198.51.100.7", &p->endpoint.sin.sin_addr);
	p->keepalive = 25;
	aip(p, AF_INET, "10.88.0.2", 32);
	aip(p, AF_INET, "10.88.0.64", 26);
	p = wg_device_add_peer(d);
	memset(p->public_key, 0xde, WG_KEY_LEN);
	p->flags = WGPEER_HAS_KEEPALIVE | WGPEER_REPLACE_ALLOWEDIPS;
	p->endpoint.sin6.sin6_family = AF_INET6;
	p->endpoint.sin6.sin6_port = htons(4500);
	inet_pton(AF_INET6, "2001:db8::1", &p->endpoint.sin6.sin6_addr);
	aip(p, AF_INET6, "fd00::", 64);
	assert_int_equal(wguapi_encode_set(d, &out, &len), 0);
	assert_string_equal(out, "set=1\n"
				 "private_key=" K1 "\n"
				 "listen_port=51820\n"
				 "replace_peers=true\n"
				 "public_key=" K2 "\n"
				 "remove=true\n"
				 "public_key=" K3 "\n"
				 "update_only=true\n"
				 "endpoint=198.51.100.7:51821\n"
				 "persistent_keepalive_interval=25\n"
				 "replace_allowed_ips=true\n"
				 "allowed_ip=10.88.0.2/32\n"
				 "allowed_ip=10.88.0.64/26\n"
				 "public_key=" K4 "\n"
				 "endpoint=[2001:db8::1]:4500\n"
				 "persistent_keepalive_interval=0\n"
				 "replace_allowed_ips=true\n"
				 "allowed_ip=fd00::/64\n"
				 "\n");
	assert_int_equal(len, strlen(out));
	free(out);
	wg_device_free(d);
	/* Nothing flagged: no device keys, a peer without flags is just its key. */
	d = wg_device_new("wg0");
	memset(wg_device_add_peer(d)->public_key, 0xa2, WG_KEY_LEN);
	assert_int_equal(wguapi_encode_set(d, &out, &len), 0);
	assert_string_equal(out, "set=1\npublic_key=" K2 "\n\n");
	free(out);
	wg_device_free(d);
}

static const char get_reply[] =
	"private_key=" K1 "\n"
	"listen_port=51820\n"
	"public_key=" K3 "\n"
	"preshared_key=" HEX("00") "\n"
	"protocol_version=1\n"
	"endpoint=198.51.100.7:51821\n"
	"last_handshake_time_sec=1724533801\n"
	"last_handshake_time_nsec=999712000\n"
	"tx_bytes=92\n"
	"rx_bytes=18446744073709551615\n"
	"persistent_keepalive_interval=25\n"
	"allowed_ip=10.88.0.2/32\n"
	"allowed_ip=10.88.0.64/26\n"
	"public_key=" K4 "\n"
	"preshared_key=" HEX("00") "\n"
	"protocol_version=1\n"
	"endpoint=[2001:db8::1]:4500\n"
	"last_handshake_time_sec=0\n"
	"last_handshake_time_nsec=0\n"
	"tx_bytes=0\n"
	"rx_bytes=0\n"
	"persistent_keepalive_interval=0\n"
	"errno=0\n";

static void test_parse_get(void **state)
{
	struct wg_device *d = NULL;
	struct wg_peer *p;
	uint8_t k[WG_KEY_LEN];
	struct in6_addr ip6;

	assert_int_equal(wguapi_parse_get(get_reply, strlen(get_reply), "wg0", &d), 0);
	assert_string_equal(d->name, "wg0");
	assert_true(d->flags & WGDEV_HAS_PRIVATE_KEY);
	assert_true(d->flags & WGDEV_HAS_LISTEN_PORT);
	memset(k, 0x11, WG_KEY_LEN);
	assert_memory_equal(d->private_key, k, WG_KEY_LEN);
	assert_int_equal(d->listen_port, 51820);
	assert_int_equal(d->n_peers, 2);
	p = &d->peers[0];
	memset(k, 0x3c, WG_KEY_LEN);
	assert_memory_equal(p->public_key, k, WG_KEY_LEN);
	assert_int_equal(p->endpoint.sa.sa_family, AF_INET);
	assert_int_equal(p->endpoint.sin.sin_addr.s_addr, inet_addr("198.51.100.7"));
	assert_int_equal(ntohs(p->endpoint.sin.sin_port), 51821);
	assert_int_equal(p->last_handshake.tv_sec, 1724533801);
	assert_int_equal(p->last_handshake.tv_nsec, 999712000);
	assert_int_equal(p->tx_bytes, 92);
	assert_true(p->rx_bytes == UINT64_MAX);
	assert_int_equal(p->keepalive, 25);
	assert_int_equal(p->n_allowedips, 2);
	assert_int_equal(p->allowedips[0].family, AF_INET);
	assert_int_equal(p->allowedips[0].ip4.s_addr, inet_addr("10.88.0.2"));
	assert_int_equal(p->allowedips[0].cidr, 32);
	assert_int_equal(p->allowedips[1].ip4.s_addr, inet_addr("10.88.0.64"));
	assert_int_equal(p->allowedips[1].cidr, 26);
	p = &d->peers[1];
	memset(k, 0xde, WG_KEY_LEN);
	assert_memory_equal(p->public_key, k, WG_KEY_LEN);
	assert_int_equal(p->endpoint.sa.sa_family, AF_INET6);
	inet_pton(AF_INET6, "2001:db8::1", &ip6);
	assert_memory_equal(&p->endpoint.sin6.sin6_addr, &ip6, sizeof(ip6));
	assert_int_equal(ntohs(p->endpoint.sin6.sin6_port), 4500);
	assert_int_equal(p->last_handshake.tv_sec, 0);
	assert_int_equal(p->keepalive, 0);
	assert_int_equal(p->n_allowedips, 0);
	wg_device_free(d);
}

static void test_parse_get_empty_device(void **state)
{
	static const char r[] = "private_key=" K1 "\nlisten_port=0\nfwmark=0\nerrno=0\n";
	struct wg_device *d = NULL;

	assert_int_equal(wguapi_parse_get(r, strlen(r), "wg1", &d), 0);
	assert_int_equal(d->n_peers, 0);
	assert_int_equal(d->listen_port, 0);
	wg_device_free(d);
}

static int parse(const char *text)
{
	struct wg_device *d = NULL;
	int ret = wguapi_parse_get(text, strlen(text), "wg0", &d);

	if (!ret)
		wg_device_free(d);
	else
		assert_null(d);
	return ret;
}

static void test_parse_get_errors(void **state)
{
	assert_int_equal(parse("errno=22\n"), -22);
	assert_int_equal(parse("listen_port=51820\nerrno=1\n"), -1);
	assert_int_equal(parse("listen_port=51820\nhello\nerrno=0\n"), -EBADMSG);
	assert_int_equal(parse("private_key=" HEX("1") "\nerrno=0\n"), -EBADMSG);
	/* 63 hex digits */
	assert_int_equal(parse("public_key=" HEX("11") "\nerrno=0\n"), 0);
	assert_int_equal(parse("public_key=1" HEX("11") "\nerrno=0\n"), -EBADMSG);
	{
		char buf[200];

		snprintf(buf, sizeof(buf), "public_key=%.63s\nerrno=0\n", K1);
		assert_int_equal(parse(buf), -EBADMSG);
		snprintf(buf, sizeof(buf), "public_key=%.63sg\nerrno=0\n", K1);
		assert_int_equal(parse(buf), -EBADMSG);
		snprintf(buf, sizeof(buf), "public_key=%.63sA\nerrno=0\n", K1);
		assert_int_equal(parse(buf), -EBADMSG);
	}
	assert_int_equal(parse("listen_port=70000\nerrno=0\n"), -EBADMSG);
	assert_int_equal(parse("listen_port=65535\nerrno=0\n"), 0);
	assert_int_equal(parse("listen_port=-1\nerrno=0\n"), -EBADMSG);
	assert_int_equal(parse("listen_port=51820\n"), -EBADMSG);
	assert_int_equal(parse(""), -EBADMSG);
	assert_int_equal(parse("errno=0\nlisten_port=1\n"), -EBADMSG);
	assert_int_equal(parse("errno=abc\n"), -EBADMSG);
	assert_int_equal(parse("public_key=" K1 "\nendpoint=198.51.100.7\nerrno=0\n"), -EBADMSG);
	assert_int_equal(parse("public_key=" K1 "\nendpoint=198.51.100.7:65536\nerrno=0\n"), -EBADMSG);
	assert_int_equal(parse("public_key=" K1 "\nendpoint=[::1:51820\nerrno=0\n"), -EBADMSG);
	assert_int_equal(parse("public_key=" K1 "\nallowed_ip=10.88.0.2/33\nerrno=0\n"), -EBADMSG);
	assert_int_equal(parse("public_key=" K1 "\nallowed_ip=10.88.0.2\nerrno=0\n"), -EBADMSG);
	assert_int_equal(parse("public_key=" K1 "\nallowed_ip=fd00::/129\nerrno=0\n"), -EBADMSG);
	assert_int_equal(parse("public_key=" K1 "\nrx_bytes=x\nerrno=0\n"), -EBADMSG);
	assert_int_equal(parse("public_key=" K1 "\nlast_handshake_time_nsec=1000000000\nerrno=0\n"),
			 -EBADMSG);
	/* An embedded NUL is not text. */
	{
		static const char nul[] = "listen_port=1\n\0errno=0\n";
		struct wg_device *d = NULL;

		assert_int_equal(wguapi_parse_get(nul, sizeof(nul) - 1, "wg0", &d), -EBADMSG);
	}
}

static void test_parse_errno(void **state)
{
	assert_int_equal(wguapi_parse_errno("errno=0\n", 8), 0);
	assert_int_equal(wguapi_parse_errno("errno=0", 7), 0);
	assert_int_equal(wguapi_parse_errno("errno=22\n", 9), -22);
	assert_int_equal(wguapi_parse_errno("errno=", 6), -EBADMSG);
	assert_int_equal(wguapi_parse_errno("errno=x\n", 8), -EBADMSG);
	assert_int_equal(wguapi_parse_errno("errno=99999\n", 12), -EBADMSG);
	assert_int_equal(wguapi_parse_errno("error=1\n", 8), -EBADMSG);
	assert_int_equal(wguapi_parse_errno("", 0), -EBADMSG);
}

static void test_sock_path(void **state)
{
	char buf[108];

	assert_string_equal(wguapi_get_dir(), WGUAPI_DEFAULT_DIR);
	assert_int_equal(wguapi_sock_path("wg0", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/var/run/wireguard/wg0.sock");
	wguapi_set_dir("/tmp/x");
	assert_int_equal(wguapi_sock_path("p2pwg0", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/tmp/x/p2pwg0.sock");
	assert_int_equal(wguapi_sock_path("p2pwg0", buf, 10), -ENAMETOOLONG);
	wguapi_set_dir(WGUAPI_DEFAULT_DIR);
}

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A wireguard-go that stopped accepting: its backlog is full, so a blocking
 * connect would wait forever and stall the agent's loop with it. */
static void test_stuck_wireguard_go_times_out(void **state)
{
	char dir[] = "/tmp/p2pwg-uapi.XXXXXX";
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct wg_device *dev = NULL;
	int lfd, cfd;
	double t0;

	assert_non_null(mkdtemp(dir));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/stuck.sock", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	wguapi_set_dir(dir);
	alarm(3 * WGUAPI_TIMEOUT_MS / 1000); /* a hang is a failure, not a stuck test run */
	t0 = seconds();
	assert_int_equal(wguapi_get_device("stuck", &dev), -ETIMEDOUT);
	assert_true(seconds() - t0 < 2.0 * WGUAPI_TIMEOUT_MS / 1000);
	alarm(0);
	wguapi_set_dir(WGUAPI_DEFAULT_DIR);
	close(cfd);
	close(lfd);
	unlink(sun.sun_path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_set),
		cmocka_unit_test(test_parse_get),
		cmocka_unit_test(test_parse_get_empty_device),
		cmocka_unit_test(test_parse_get_errors),
		cmocka_unit_test(test_parse_errno),
		cmocka_unit_test(test_sock_path),
		cmocka_unit_test(test_stuck_wireguard_go_times_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

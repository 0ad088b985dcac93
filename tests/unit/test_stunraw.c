// SPDX-License-Identifier: MIT
/*
 * stunraw: the drain loop is bounded, so a flood on the raw socket leaves the
 * main loop free to serve the control socket between wake-ups. A datagram
 * socketpair stands in for the raw socket (same packets, no CAP_NET_RAW).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "stunraw.h"

#define PORT 51820

static int n_input;
static struct sockaddr_in last_from;

static void count_input(void *ctx, const uint8_t *msg, size_t len, const struct sockaddr_in *from)
{
	n_input++;
	last_from = *from;
}

/* An IPv4/UDP packet from 192.0.2.1:3478 to PORT with a 20-byte payload. */
static void send_packet(int fd, uint16_t dport)
{
	uint8_t pkt[sizeof(struct iphdr) + sizeof(struct udphdr) + 20] = { 0 };
	struct iphdr *ip = (struct iphdr *)pkt;
	struct udphdr *uh = (struct udphdr *)(pkt + sizeof(*ip));

	ip->version = 4;
	ip->ihl = 5;
	ip->protocol = IPPROTO_UDP;
	ip->saddr = htonl(0xc0000201);
	uh->source = htons(3478);
	uh->dest = htons(dport);
	uh->len = htons(sizeof(*uh) + 20);
	assert_int_equal(send(fd, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
}

static void test_flood_is_drained_in_bounded_batches(void **state)
{
	int sv[2], n, rounds = 0, total = 0;

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0);
	for (int i = 0; i < 150; i++)
		send_packet(sv[0], i % 3 ? PORT : PORT + 1); /* a third is not for us */
	n_input = 0;
	n = stunraw_drain(sv[1], PORT, STUNRAW_DRAIN_MAX, count_input, NULL);
	assert_int_equal(n, STUNRAW_DRAIN_MAX);
	assert_true(n_input <= STUNRAW_DRAIN_MAX);
	total = n;
	while ((n = stunraw_drain(sv[1], PORT, STUNRAW_DRAIN_MAX, count_input, NULL)) > 0) {
		assert_true(n <= STUNRAW_DRAIN_MAX);
		total += n;
		rounds++;
	}
	assert_int_equal(n, 0);
	assert_int_equal(total, 150);
	assert_int_equal(rounds, 2);
	assert_int_equal(n_input, 100);
	assert_int_equal(ntohs(last_from.sin_port), 3478);
	assert_int_equal(ntohl(last_from.sin_addr.s_addr), 0xc0000201);
	close(sv[0]);
	close(sv[1]);
}

static void test_socket_error_is_returned(void **state)
{
	assert_int_equal(stunraw_drain(-1, PORT, STUNRAW_DRAIN_MAX, count_input, NULL), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flood_is_drained_in_bounded_batches),
		cmocka_unit_test(test_socket_error_is_returned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * fakestun: a lying STUN server for tests. Answers every Binding Request with
 * one fixed XOR-MAPPED-ADDRESS, whoever asks.
 *
 *   fakestun --listen 198.18.0.4:3478 --answer 203.0.113.9:1234 [--reserved 0xff]
 *
 * --reserved sets the attribute's reserved byte, which RFC 8489 says receivers
 * ignore.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netaddr.h"
#include "stun.h"

static int usage(void)
{
	fprintf(stderr, "usage: fakestun --listen IP:PORT --answer IP:PORT [--reserved BYTE]\n");
	return 2;
}

/* The success response to req (a Binding Request) into out: 32 bytes. */
static size_t answer(const uint8_t *req, uint8_t *out, const struct sockaddr_in *lie,
		     uint8_t reserved)
{
	uint16_t port = ntohs(lie->sin_port) ^ (uint16_t)(STUN_MAGIC_COOKIE >> 16);
	uint32_t addr = ntohl(lie->sin_addr.s_addr) ^ STUN_MAGIC_COOKIE;

	out[0] = 0x01; /* Binding success response */
	out[1] = 0x01;
	out[2] = 0;
	out[3] = 12;
	memcpy(out + 4, req + 4, 16); /* cookie and transaction id */
	out[20] = 0x00; /* XOR-MAPPED-ADDRESS, 8 bytes */
	out[21] = 0x20;
	out[22] = 0;
	out[23] = 8;
	out[24] = reserved;
	out[25] = 0x01; /* IPv4 */
	out[26] = (uint8_t)(port >> 8);
	out[27] = (uint8_t)port;
	out[28] = (uint8_t)(addr >> 24);
	out[29] = (uint8_t)(addr >> 16);
	out[30] = (uint8_t)(addr >> 8);
	out[31] = (uint8_t)addr;
	return 32;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "answer", required_argument, NULL, 'a' },
		{ "reserved", required_argument, NULL, 'r' },
		{ 0 },
	};
	struct sockaddr_in listen_at = { 0 }, lie = { 0 };
	bool have_listen = false, have_lie = false;
	uint8_t reserved = 0;
	int fd, c;

	while ((c = getopt_long(argc, argv, "l:a:r:", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (netaddr_parse_endpoint4(optarg, &listen_at))
				return usage();
			have_listen = true;
			break;
		case 'a':
			if (netaddr_parse_endpoint4(optarg, &lie))
				return usage();
			have_lie = true;
			break;
		case 'r':
			reserved = (uint8_t)strtoul(optarg, NULL, 0);
			break;
		default:
			return usage();
		}
	}
	if (!have_listen || !have_lie)
		return usage();
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&listen_at, sizeof(listen_at)) < 0) {
		perror("fakestun: bind");
		return 1;
	}
	fprintf(stderr, "fakestun: on %s:%u, ", inet_ntoa(listen_at.sin_addr),
		ntohs(listen_at.sin_port));
	fprintf(stderr, "answering %s:%u to everyone\n", inet_ntoa(lie.sin_addr),
		ntohs(lie.sin_port));
	for (;;) {
		uint8_t req[1500], out[32];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, req, sizeof(req), 0, (struct sockaddr *)&from, &fl);
		uint32_t cookie;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("fakestun: recvfrom");
			return 1;
		}
		if (n < STUN_HEADER_LEN || req[0] != 0x00 || req[1] != 0x01)
			continue;
		memcpy(&cookie, req + 4, 4);
		if (ntohl(cookie) != STUN_MAGIC_COOKIE)
			continue;
		sendto(fd, out, answer(req, out, &lie, reserved), 0, (struct sockaddr *)&from,
		       sizeof(from));
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * relayproto: the bytes of a relay stream, without I/O. After the HTTP/1.1
 * upgrade both ends speak frames: type (1 byte), payload length (2 bytes,
 * big endian), payload. The dialer sends HELLO; the acceptor answers HELLO and
 * AUTH; the dialer checks it and sends its AUTH. Each AUTH is a MAC (computed
 * by wgagent) over a challenge naming its role, both keys and both nonces, so
 * neither side's MAC can be replayed as the other's or on another stream.
 * Then DATA frames carry WireGuard's packets, and PING keeps the path alive.
 */
#ifndef P2PWG_RELAYPROTO_H
#define P2PWG_RELAYPROTO_H

#include <stddef.h>
#include <stdint.h>

#define RELAYPROTO_VERSION 1
#define RELAYPROTO_HDR 3
#define RELAYPROTO_MAX_PAYLOAD 65535
#define RELAYPROTO_HELLO_LEN (1 + 32 + 32 + 16)
#define RELAYPROTO_MAC_LEN 32
#define RELAYPROTO_CHALLENGE_LEN (1 + 32 + 32 + 16 + 16)
#define RELAYPROTO_UPGRADE "p2pwg-relay"
#define RELAYPROTO_PATH "/relay"

enum relayproto_type {
	RELAYPROTO_HELLO = 1,
	RELAYPROTO_AUTH = 2,
	RELAYPROTO_DATA = 3,
	RELAYPROTO_PING = 4,
};

struct relayproto_frame {
	uint8_t type;
	const uint8_t *payload; /* points into the parsed buffer */
	size_t len;
};

struct relayproto_hello {
	uint8_t from[32], to[32]; /* sender's and intended receiver's WireGuard keys */
	uint8_t nonce[16];
};

/* Parse one frame at buf[0..len). 1 with *f and *used (bytes taken) set; 0 if
 * more bytes are needed; -EPROTO for an unknown type or a payload its type
 * does not allow (HELLO and AUTH exact lengths, DATA 1..65535, PING empty). */
int relayproto_parse(const uint8_t *buf, size_t len, struct relayproto_frame *f, size_t *used);

/* Write the 3-byte header of a frame of type with a payload of len bytes
 * (len <= RELAYPROTO_MAX_PAYLOAD). */
void relayproto_header(uint8_t hdr[RELAYPROTO_HDR], uint8_t type, size_t len);

/* HELLO payload to and from its struct. Parse: 0 or -EPROTO (length, version). */
void relayproto_hello_build(const struct relayproto_hello *h, uint8_t out[RELAYPROTO_HELLO_LEN]);
int relayproto_hello_parse(const struct relayproto_frame *f, struct relayproto_hello *h);

/* The challenge that role ('C' for the dialer's MAC, 'S' for the acceptor's)
 * signs: role, dialer key, acceptor key, dialer nonce, acceptor nonce. */
void relayproto_challenge(char role, const struct relayproto_hello *dialer,
			  const struct relayproto_hello *acceptor,
			  uint8_t out[RELAYPROTO_CHALLENGE_LEN]);

/* The dialer reads the answer to its upgrade request at buf[0..len): 1 with
 * *used (the header bytes) when it is "HTTP/1.x 101" ending in a blank line;
 * 0 if more bytes are needed; -EPROTO for another status (in *status, else
 * 0), not a response, or more than RELAYPROTO_MAX_RESPONSE bytes of headers. */
#define RELAYPROTO_MAX_RESPONSE 4096
int relayproto_upgrade_response(const uint8_t *buf, size_t len, size_t *used, int *status);

#endif

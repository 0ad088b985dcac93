// SPDX-License-Identifier: MIT
#include "stun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define ATTR_MAPPED_ADDRESS 0x0001
#define ATTR_XOR_MAPPED_ADDRESS 0x0020

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int stun_build_request(uint8_t *out, size_t cap, uint8_t txid[STUN_TXID_LEN])
{
	uint32_t cookie = htonl(STUN_MAGIC_COOKIE);

	if (cap < STUN_HEADER_LEN)
		return -ENOBUFS;
	if (getrandom(txid, STUN_TXID_LEN, 0) != STUN_TXID_LEN)
		return -EIO;
	out[0] = 0x00; /* Binding Request: class request, method 0x001 */
	out[1] = 0x01;
	out[2] = out[3] = 0; /* no attributes */
	memcpy(out + 4, &cookie, 4);
	memcpy(out + 8, txid, STUN_TXID_LEN);
	return STUN_HEADER_LEN;
}

/* RFC 8489 section 14.1 / 14.2: family, port and address, XORed or not. The
 * first byte is reserved and must be ignored by receivers. */
static int read_address(const uint8_t *v, size_t len, const uint8_t *header, int xor,
			struct sockaddr_storage *out)
{
	uint16_t port;

	if (len < 4)
		return -EBADMSG;
	port = get16(v + 2);
	if (xor)
		port ^= (uint16_t)(STUN_MAGIC_COOKIE >> 16);
	memset(out, 0, sizeof(*out));
	if (v[1] == 0x01 && len == 8) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, v + 4, 4);
		if (xor)
			for (int i = 0; i < 4; i++)
				((uint8_t *)&sin->sin_addr)[i] ^= header[4 + i];
		return 0;
	}
	if (v[1] == 0x02 && len == 20) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, v + 4, 16);
		if (xor) /* cookie and transaction id */
			for (int i = 0; i < 16; i++)
				sin6->sin6_addr.s6_addr[i] ^= header[4 + i];
		return 0;
	}
	return -EBADMSG;
}

int stun_parse_response(const uint8_t *msg, size_t len, const uint8_t txid[STUN_TXID_LEN],
			struct sockaddr_storage *mapped)
{
	struct sockaddr_storage plain;
	int have_plain = 0, have_xor = 0;
	uint32_t cookie;
	size_t off;

	if (len < STUN_HEADER_LEN || (msg[0] & 0xc0))
		return -EBADMSG;
	if ((size_t)get16(msg + 2) != len - STUN_HEADER_LEN || (len & 3))
		return -EBADMSG;
	memcpy(&cookie, msg + 4, 4);
	if (ntohl(cookie) != STUN_MAGIC_COOKIE || memcmp(msg + 8, txid, STUN_TXID_LEN))
		return -ENOMSG;
	if (get16(msg) != 0x0101) /* Binding success response */
		return -ENOMSG;
	for (off = STUN_HEADER_LEN; off + 4 <= len;) {
		uint16_t type = get16(msg + off), alen = get16(msg + off + 2);
		const uint8_t *v = msg + off + 4;

		if (off + 4 + alen > len)
			return -EBADMSG;
		if (type == ATTR_XOR_MAPPED_ADDRESS && !have_xor) {
			if (read_address(v, alen, msg, 1, mapped))
				return -EBADMSG;
			have_xor = 1;
		} else if (type == ATTR_MAPPED_ADDRESS && !have_plain) {
			if (read_address(v, alen, msg, 0, &plain))
				return -EBADMSG;
			have_plain = 1;
		}
		off += 4 + (((size_t)alen + 3) & ~(size_t)3);
	}
	if (off != len)
		return -EBADMSG;
	if (have_xor)
		return 0;
	if (have_plain) {
		*mapped = plain;
		return 0;
	}
	return -ENOENT;
}

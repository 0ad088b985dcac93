// SPDX-License-Identifier: MIT
#include "relayproto.h"

#include <errno.h>
#include <string.h>

int relayproto_parse(const uint8_t *buf, size_t len, struct relayproto_frame *f, size_t *used)
{
	size_t plen;

	if (len < RELAYPROTO_HDR)
		return 0;
	plen = (size_t)buf[1] << 8 | buf[2];
	/* Checked before waiting for the payload: a bad frame is refused at
	 * once, not after its sender had us buffer 64 KiB of it. */
	switch (buf[0]) {
	case RELAYPROTO_HELLO:
		if (plen != RELAYPROTO_HELLO_LEN)
			return -EPROTO;
		break;
	case RELAYPROTO_AUTH:
		if (plen != RELAYPROTO_MAC_LEN)
			return -EPROTO;
		break;
	case RELAYPROTO_DATA:
		if (plen == 0)
			return -EPROTO;
		break;
	case RELAYPROTO_PING:
		if (plen != 0)
			return -EPROTO;
		break;
	default:
		return -EPROTO;
	}
	if (len - RELAYPROTO_HDR < plen)
		return 0;
	f->type = buf[0];
	f->payload = buf + RELAYPROTO_HDR;
	f->len = plen;
	*used = RELAYPROTO_HDR + plen;
	return 1;
}

void relayproto_header(uint8_t hdr[RELAYPROTO_HDR], uint8_t type, size_t len)
{
	hdr[0] = type;
	hdr[1] = (uint8_t)(len >> 8);
	hdr[2] = (uint8_t)len;
}

void relayproto_hello_build(const struct relayproto_hello *h, uint8_t out[RELAYPROTO_HELLO_LEN])
{
	out[0] = RELAYPROTO_VERSION;
	memcpy(out + 1, h->from, 32);
	memcpy(out + 33, h->to, 32);
	memcpy(out + 65, h->nonce, 16);
}

int relayproto_hello_parse(const struct relayproto_frame *f, struct relayproto_hello *h)
{
	if (f->type != RELAYPROTO_HELLO || f->len != RELAYPROTO_HELLO_LEN ||
	    f->payload[0] != RELAYPROTO_VERSION)
		return -EPROTO;
	memcpy(h->from, f->payload + 1, 32);
	memcpy(h->to, f->payload + 33, 32);
	memcpy(h->nonce, f->payload + 65, 16);
	return 0;
}

void relayproto_challenge(char role, const struct relayproto_hello *dialer,
			  const struct relayproto_hello *acceptor,
			  uint8_t out[RELAYPROTO_CHALLENGE_LEN])
{
	out[0] = (uint8_t)role;
	memcpy(out + 1, dialer->from, 32);
	memcpy(out + 33, acceptor->from, 32);
	memcpy(out + 65, dialer->nonce, 16);
	memcpy(out + 81, acceptor->nonce, 16);
}

int relayproto_upgrade_response(const uint8_t *buf, size_t len, size_t *used, int *status)
{
	static const char head[] = "HTTP/1.";
	size_t n = len < RELAYPROTO_MAX_RESPONSE ? len : RELAYPROTO_MAX_RESPONSE;
	size_t end = 0;

	*status = 0;
	if (memcmp(buf, head, n < sizeof(head) - 1 ? n : sizeof(head) - 1))
		return -EPROTO;
	for (size_t i = 3; i < n; i++)
		if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' &&
		    buf[i] == '\n') {
			end = i + 1;
			break;
		}
	if (!end)
		return len >= RELAYPROTO_MAX_RESPONSE ? -EPROTO : 0;
	/* "HTTP/1.x NNN": the version digit, a space, three digits. */
	if (end < 12 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
		return -EPROTO;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -EPROTO;
		*status = *status * 10 + (buf[i] - '0');
	}
	if (*status != 101)
		return -EPROTO;
	*used = end;
	return 1;
}

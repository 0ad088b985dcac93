// SPDX-License-Identifier: MIT
/* stun: Binding requests and responses, with the RFC 5769 test vectors. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "stun.h"

static const uint8_t rfc_txid[12] = { 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
				      0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae };

/* RFC 5769 section 2.2: Sample IPv4 Response (192.0.2.1 port 32853). */
static const uint8_t rfc_v4[] = {
	0x01, 0x01, 0x00, 0x3c, /* Response type and message length */
	0x21, 0x12, 0xa4, 0x42, /* Magic cookie */
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, /* Transaction ID */
	0x80, 0x22, 0x00, 0x0b, /* SOFTWARE attribute header */
	0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x08, /* XOR-MAPPED-ADDRESS attribute header */
	0x00, 0x01, 0xa1, 0x47, /* Address family (IPv4) and xor'd mapped port number */
	0xe1, 0x12, 0xa6, 0x43, /* Xor'd mapped IPv4 address */
	0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY attribute header */
	0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74,
	0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
	0x80, 0x28, 0x00, 0x04, /* FINGERPRINT attribute header */
	0xc0, 0x7d, 0x4c, 0x96,
};

/* RFC 5769 section 2.3: Sample IPv6 Response
 * (2001:db8:1234:5678:11:2233:4455:6677 port 32853). */
static const uint8_t rfc_v6[] = {
	0x01, 0x01, 0x00, 0x48, /* Response type and message length */
	0x21, 0x12, 0xa4, 0x42, /* Magic cookie */
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, /* Transaction ID */
	0x80, 0x22, 0x00, 0x0b, /* SOFTWARE attribute header */
	0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x14, /* XOR-MAPPED-ADDRESS attribute header */
	0x00, 0x02, 0xa1, 0x47, /* Address family (IPv6) and xor'd mapped port number */
	0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, /* Xor'd mapped IPv6 address */
	0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
	0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY attribute header */
	0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84,
	0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, /* FINGERPRINT attribute header */
	0xc8, 0xfb, 0x0b, 0x4c,
};

static void test_build_request(void **state)
{
	uint8_t a[64], b[64], ta[12], tb[12];

	assert_int_equal(stun_build_request(a, sizeof(a), ta), STUN_HEADER_LEN);
	assert_int_equal(stun_build_request(b, STUN_HEADER_LEN, tb), STUN_HEADER_LEN);
	assert_int_equal(a[0], 0x00);
	assert_int_equal(a[1], 0x01);
	assert_int_equal(a[2], 0);
	assert_int_equal(a[3], 0);
	assert_memory_equal(a + 4, "\x21\x12\xa4\x42", 4);
	assert_memory_equal(a + 8, ta, 12);
	assert_memory_equal(b + 8, tb, 12);
	assert_memory_not_equal(ta, tb, 12);
	assert_int_equal(stun_build_request(a, STUN_HEADER_LEN - 1, ta), -ENOBUFS);
}

static void test_rfc5769_ipv4(void **state)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

	assert_int_equal(sizeof(rfc_v4), 80);
	assert_int_equal(stun_parse_response(rfc_v4, sizeof(rfc_v4), rfc_txid, &ss), 0);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(sin->sin_addr.s_addr, inet_addr("192.0.2.1"));
	assert_int_equal(ntohs(sin->sin_port), 32853);
}

static void test_rfc5769_ipv6(void **state)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
	struct in6_addr want;

	assert_int_equal(sizeof(rfc_v6), 92);
	assert_int_equal(stun_parse_response(rfc_v6, sizeof(rfc_v6), rfc_txid, &ss), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	inet_pton(AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677", &want);
	assert_memory_equal(&sin6->sin6_addr, &want, 16);
	assert_int_equal(ntohs(sin6->sin6_port), 32853);
}

static void test_not_ours(void **state)
{
	struct sockaddr_storage ss;
	uint8_t other[12], m[sizeof(rfc_v4)];

	memcpy(other, rfc_txid, 12);
	other[11] ^= 1;
	assert_int_equal(stun_parse_response(rfc_v4, sizeof(rfc_v4), other, &ss), -ENOMSG);
	/* Binding error response with our transaction id. */
	memcpy(m, rfc_v4, sizeof(m));
	m[1] = 0x11;
	assert_int_equal(stun_parse_response(m, sizeof(m), rfc_txid, &ss), -ENOMSG);
	/* A request, not a response. */
	m[1] = 0x01;
	m[0] = 0x00;
	assert_int_equal(stun_parse_response(m, sizeof(m), rfc_txid, &ss), -ENOMSG);
	/* No magic cookie (an RFC 3489 message). */
	memcpy(m, rfc_v4, sizeof(m));
	m[4] = 0;
	assert_int_equal(stun_parse_response(m, sizeof(m), rfc_txid, &ss), -ENOMSG);
}

static void test_malformed(void **state)
{
	struct sockaddr_storage ss;
	uint8_t m[sizeof(rfc_v6)];

	/* Truncated: shorter than the header, and shorter than its length field. */
	assert_int_equal(stun_parse_response(rfc_v4, 19, rfc_txid, &ss), -EBADMSG);
	assert_int_equal(stun_parse_response(rfc_v4, 0, rfc_txid, &ss), -EBADMSG);
	assert_int_equal(stun_parse_response(rfc_v4, sizeof(rfc_v4) - 4, rfc_txid, &ss), -EBADMSG);
	assert_int_equal(stun_parse_response(rfc_v4, 40, rfc_txid, &ss), -EBADMSG);
	/* Not a STUN message: the top two bits are set. */
	memcpy(m, rfc_v4, sizeof(rfc_v4));
	m[0] |= 0x80;
	assert_int_equal(stun_parse_response(m, sizeof(rfc_v4), rfc_txid, &ss), -EBADMSG);
	/* An attribute length running past the end (FINGERPRINT claims 8 bytes). */
	memcpy(m, rfc_v4, sizeof(rfc_v4));
	m[sizeof(rfc_v4) - 5] = 0x08;
	assert_int_equal(stun_parse_response(m, sizeof(rfc_v4), rfc_txid, &ss), -EBADMSG);
	/* ... by a single byte. */
	m[sizeof(rfc_v4) - 5] = 0x05;
	assert_int_equal(stun_parse_response(m, sizeof(rfc_v4), rfc_txid, &ss), -EBADMSG);
	/* XOR-MAPPED-ADDRESS of the wrong size for its family. */
	memcpy(m, rfc_v6, sizeof(rfc_v6));
	m[41] = 0x01; /* IPv4 family with 20 bytes */
	assert_int_equal(stun_parse_response(m, sizeof(rfc_v6), rfc_txid, &ss), -EBADMSG);
	m[41] = 0x03; /* unknown family */
	assert_int_equal(stun_parse_response(m, sizeof(rfc_v6), rfc_txid, &ss), -EBADMSG);
}

/* A response with the given attributes after the header. */
static size_t response(uint8_t *m, const uint8_t *attrs, size_t len)
{
	memcpy(m, rfc_v4, 20);
	m[2] = (uint8_t)(len >> 8);
	m[3] = (uint8_t)len;
	if (len)
		memcpy(m + 20, attrs, len);
	return 20 + len;
}

static void test_mapped_address_fallback(void **state)
{
	static const uint8_t plain[] = {
		0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x0d, 0x96, 203, 0, 113, 5, /* MAPPED-ADDRESS */
	};
	static const uint8_t both[] = {
		0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x0d, 0x96, 203, 0, 113, 5, /* MAPPED-ADDRESS */
		0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, /* XOR */
	};
	struct sockaddr_storage ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
	uint8_t m[128];
	size_t n;

	n = response(m, plain, sizeof(plain));
	assert_int_equal(stun_parse_response(m, n, rfc_txid, &ss), 0);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(sin->sin_addr.s_addr, inet_addr("203.0.113.5"));
	assert_int_equal(ntohs(sin->sin_port), 3478);
	/* XOR-MAPPED-ADDRESS wins, whatever the order. */
	n = response(m, both, sizeof(both));
	assert_int_equal(stun_parse_response(m, n, rfc_txid, &ss), 0);
	assert_int_equal(sin->sin_addr.s_addr, inet_addr("192.0.2.1"));
	assert_int_equal(ntohs(sin->sin_port), 32853);
}

static void test_no_address(void **state)
{
	struct sockaddr_storage ss;
	uint8_t m[128];
	size_t n;

	/* Only SOFTWARE. */
	n = response(m, rfc_v4 + 20, 16);
	assert_int_equal(stun_parse_response(m, n, rfc_txid, &ss), -ENOENT);
	/* No attributes at all. */
	n = response(m, NULL, 0);
	assert_int_equal(stun_parse_response(m, n, rfc_txid, &ss), -ENOENT);
}

/* RFC 8489 section 14.1: the first byte is reserved, "MUST be set to 0 and
 * MUST be ignored by receivers". A server that sets it still gives the address. */
static void test_reserved_byte_ignored(void **state)
{
	static const uint8_t xor_set[] = {
		0x00, 0x20, 0x00, 0x08, 0xff, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
	};
	static const uint8_t plain_set[] = {
		0x00, 0x01, 0x00, 0x08, 0x5a, 0x01, 0x0d, 0x96, 203, 0, 113, 5,
	};
	struct sockaddr_storage ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
	uint8_t m[128];
	size_t n;

	n = response(m, xor_set, sizeof(xor_set));
	assert_int_equal(stun_parse_response(m, n, rfc_txid, &ss), 0);
	assert_int_equal(sin->sin_addr.s_addr, inet_addr("192.0.2.1"));
	assert_int_equal(ntohs(sin->sin_port), 32853);
	n = response(m, plain_set, sizeof(plain_set));
	assert_int_equal(stun_parse_response(m, n, rfc_txid, &ss), 0);
	assert_int_equal(sin->sin_addr.s_addr, inet_addr("203.0.113.5"));
	assert_int_equal(ntohs(sin->sin_port), 3478);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_request),
		cmocka_unit_test(test_rfc5769_ipv4),
		cmocka_unit_test(test_rfc5769_ipv6),
		cmocka_unit_test(test_not_ours),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_mapped_address_fallback),
		cmocka_unit_test(test_no_address),
		cmocka_unit_test(test_reserved_byte_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

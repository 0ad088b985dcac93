// SPDX-License-Identifier: MIT
/* relayproto: the relay's frames, its upgrade answer, and the handshake's
 * MACs as both ends compute them (with wgagent's relaymac). */
#include <errno.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "relaymac.h"
#include "relayproto.h"

static void frame_roundtrip_and_partial(void **state)
{
	uint8_t buf[RELAYPROTO_HDR + 4] = {0};
	struct relayproto_frame f;
	size_t used = 0;

	(void)state;
	relayproto_header(buf, RELAYPROTO_DATA, 4);
	memcpy(buf + RELAYPROTO_HDR, "wg!!", 4);
	for (size_t n = 0; n < sizeof(buf); n++)
		assert_int_equal(relayproto_parse(buf, n, &f, &used), 0);
	assert_int_equal(relayproto_parse(buf, sizeof(buf), &f, &used), 1);
	assert_int_equal(f.type, RELAYPROTO_DATA);
	assert_int_equal(f.len, 4);
	assert_int_equal(used, sizeof(buf));
	assert_memory_equal(f.payload, "wg!!", 4);
}

static void frame_largest_data_is_65535(void **state)
{
	static uint8_t buf[RELAYPROTO_HDR + RELAYPROTO_MAX_PAYLOAD];
	struct relayproto_frame f;
	size_t used;

	(void)state;
	relayproto_header(buf, RELAYPROTO_DATA, RELAYPROTO_MAX_PAYLOAD);
	assert_int_equal(buf[1], 0xff);
	assert_int_equal(buf[2], 0xff);
	assert_int_equal(relayproto_parse(buf, sizeof(buf) - 1, &f, &used), 0);
	assert_int_equal(relayproto_parse(buf, sizeof(buf), &f, &used), 1);
	assert_int_equal(f.len, RELAYPROTO_MAX_PAYLOAD);
}

/* A bad header is refused from its 3 bytes, before any payload is awaited. */
static void frame_bad_headers_refused_at_once(void **state)
{
	static const uint8_t bad[][3] = {
	    {0, 0, 0},		       /* no such type */
	    {5, 0, 0},		       /* no such type */
	    {0xff, 0xff, 0xff},	       /* no such type */
	    {RELAYPROTO_HELLO, 0, 80}, /* HELLO is exactly 81 bytes */
	    {RELAYPROTO_HELLO, 0xff, 0xff},
	    {RELAYPROTO_AUTH, 0, 31}, /* AUTH is exactly 32 */
	    {RELAYPROTO_DATA, 0, 0},  /* DATA is never empty */
	    {RELAYPROTO_PING, 0, 1},  /* PING is always empty */
	};
	struct relayproto_frame f;
	size_t used;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(relayproto_parse(bad[i], 3, &f, &used), -EPROTO);
}

static void ping_is_three_bytes(void **state)
{
	uint8_t buf[2 * RELAYPROTO_HDR];
	struct relayproto_frame f;
	size_t used;

	(void)state;
	relayproto_header(buf, RELAYPROTO_PING, 0);
	relayproto_header(buf + 3, RELAYPROTO_PING, 0);
	assert_int_equal(relayproto_parse(buf, sizeof(buf), &f, &used), 1);
	assert_int_equal(used, 3);
	assert_int_equal(f.type, RELAYPROTO_PING);
}

static void hello_roundtrip_and_version(void **state)
{
	struct relayproto_hello h, back;
	uint8_t buf[RELAYPROTO_HDR + RELAYPROTO_HELLO_LEN];
	struct relayproto_frame f;
	size_t used;

	(void)state;
	memset(h.from, 1, 32);
	memset(h.to, 2, 32);
	memset(h.nonce, 3, 16);
	relayproto_header(buf, RELAYPROTO_HELLO, RELAYPROTO_HELLO_LEN);
	relayproto_hello_build(&h, buf + RELAYPROTO_HDR);
	assert_int_equal(relayproto_parse(buf, sizeof(buf), &f, &used), 1);
	assert_int_equal(relayproto_hello_parse(&f, &back), 0);
	assert_memory_equal(&h, &back, sizeof(h));
	buf[RELAYPROTO_HDR] = 2; /* a version this end does not speak */
	assert_int_equal(relayproto_hello_parse(&f, &back), -EPROTO);
}

static void upgrade_response(void **state)
{
	static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
				 "upgrade: p2pwg-relay\r\n\r\n\x01";
	static const char notfound[] = "HTTP/1.1 404 Not Found\r\n\r\n";
	static const char garbage[] = "SSH-2.0-OpenSSH\r\n\r\n";
	static uint8_t endless[RELAYPROTO_MAX_RESPONSE + 10];
	size_t used = 0;
	int status;

	(void)state;
	for (size_t n = 0; n < sizeof(ok) - 2; n++)
		assert_int_equal(
		    relayproto_upgrade_response((const uint8_t *)ok, n, &used, &status), 0);
	assert_int_equal(
	    relayproto_upgrade_response((const uint8_t *)ok, sizeof(ok) - 1, &used, &status), 1);
	assert_int_equal(used, sizeof(ok) - 2); /* the frame byte after the headers is left */
	assert_int_equal(relayproto_upgrade_response((const uint8_t *)notfound,
						     sizeof(notfound) - 1, &used, &status),
			 -EPROTO);
	assert_int_equal(status, 404);
	assert_int_equal(relayproto_upgrade_response((const uint8_t *)garbage, 3, &used, &status),
			 -EPROTO);
	memcpy(endless, "HTTP/1.1 101 x\r\n", 16);
	memset(endless + 16, 'a', sizeof(endless) - 16);
	assert_int_equal(relayproto_upgrade_response(endless, sizeof(endless), &used, &status),
			 -EPROTO);
}

static void keypair(uint8_t priv[32], uint8_t pub[32])
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
	EVP_PKEY *k = NULL;
	size_t len = 32;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_keygen_init(c), 1);
	assert_int_equal(EVP_PKEY_keygen(c, &k), 1);
	assert_int_equal(EVP_PKEY_get_raw_private_key(k, priv, &len), 1);
	len = 32;
	assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &len), 1);
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(c);
}

/* The whole handshake as both ends compute it: each side's MAC, made by its
 * own agent from its private key and the other's public key, is what the
 * other side's agent expects; a stranger's key, a swapped role or another
 * stream's nonces give another MAC. */
static void handshake_macs_agree_only_between_members(void **state)
{
	uint8_t pa[32], ka[32], pb[32], kb[32], ps[32], ks[32];
	struct relayproto_hello dialer, acceptor;
	uint8_t chc[RELAYPROTO_CHALLENGE_LEN], chs[RELAYPROTO_CHALLENGE_LEN];
	uint8_t a_sends[32], b_expects[32], b_sends[32], a_expects[32], s_sends[32];

	(void)state;
	keypair(pa, ka);
	keypair(pb, kb);
	keypair(ps, ks);
	memcpy(dialer.from, ka, 32);
	memcpy(dialer.to, kb, 32);
	memset(dialer.nonce, 0xaa, 16);
	memcpy(acceptor.from, kb, 32);
	memcpy(acceptor.to, ka, 32);
	memset(acceptor.nonce, 0xbb, 16);
	relayproto_challenge('C', &dialer, &acceptor, chc);
	relayproto_challenge('S', &dialer, &acceptor, chs);
	assert_int_equal(chc[0], 'C');
	assert_memory_equal(chc + 1, ka, 32);
	assert_memory_equal(chc + 33, kb, 32);

	/* A dials B. */
	assert_int_equal(relaymac_compute(pa, kb, chc, sizeof(chc), a_sends), 0);
	assert_int_equal(relaymac_compute(pb, ka, chc, sizeof(chc), b_expects), 0);
	assert_memory_equal(a_sends, b_expects, 32);
	assert_int_equal(relaymac_compute(pb, ka, chs, sizeof(chs), b_sends), 0);
	assert_int_equal(relaymac_compute(pa, kb, chs, sizeof(chs), a_expects), 0);
	assert_memory_equal(b_sends, a_expects, 32);
	/* One role's MAC is not the other's (no reflection). */
	assert_memory_not_equal(a_sends, b_sends, 32);
	/* A stranger claiming A's key has only its own private key. */
	assert_int_equal(relaymac_compute(ps, kb, chc, sizeof(chc), s_sends), 0);
	assert_memory_not_equal(s_sends, b_expects, 32);
	/* Another stream (other nonces) needs another MAC (no replay). */
	acceptor.nonce[0] ^= 1;
	relayproto_challenge('C', &dialer, &acceptor, chc);
	assert_int_equal(relaymac_compute(pa, kb, chc, sizeof(chc), s_sends), 0);
	assert_memory_not_equal(s_sends, a_sends, 32);
}

static void relaymac_refuses_bad_input(void **state)
{
	uint8_t priv[32], pub[32], zero[32] = {0}, one[32] = {1}, mac[32];
	uint8_t ch[RELAYMAC_CHALLENGE_MAX + 1] = {0};

	(void)state;
	keypair(priv, pub);
	assert_int_equal(relaymac_compute(priv, pub, ch, RELAYMAC_CHALLENGE_MIN - 1, mac), -EINVAL);
	assert_int_equal(relaymac_compute(priv, pub, ch, RELAYMAC_CHALLENGE_MAX + 1, mac), -EINVAL);
	assert_int_equal(relaymac_compute(priv, pub, ch, RELAYMAC_CHALLENGE_MAX, mac), 0);
	/* Low-order points give an all-zero secret: the same for every node. */
	assert_int_equal(relaymac_compute(priv, zero, ch, 32, mac), -EINVAL);
	assert_int_equal(relaymac_compute(priv, one, ch, 32, mac), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(frame_roundtrip_and_partial),
	    cmocka_unit_test(frame_largest_data_is_65535),
	    cmocka_unit_test(frame_bad_headers_refused_at_once),
	    cmocka_unit_test(ping_is_three_bytes),
	    cmocka_unit_test(hello_roundtrip_and_version),
	    cmocka_unit_test(upgrade_response),
	    cmocka_unit_test(handshake_macs_agree_only_between_members),
	    cmocka_unit_test(relaymac_refuses_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

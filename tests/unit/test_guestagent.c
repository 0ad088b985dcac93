// SPDX-License-Identifier: MIT
/* guestagent: the dstack guest agent's /Info and /GetQuote answers, in the
 * shapes of dstack's sdk/curl/api.md, and the /GetQuote request. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guestagent.h"

static char why[200];

static const char info_real[] =
    "{\"app_id\": \"0xA1b2\", \"instance_id\": \"dd01\", \"app_cert\": \"-----BEGIN "
    "CERTIFICATE-----\", "
    "\"tcb_info\": \"{\\\"event_log\\\": []}\", \"app_name\": \"p2pwg\", \"device_id\": \"22\", "
    "\"mr_aggregated\": \"33\", \"os_image_hash\": \"11\", \"key_provider_info\": \"kms\", "
    "\"compose_hash\": \"C3C3\", \"vm_config\": \"{}\"}";

static void test_info(void **state)
{
	struct guestagent_info gi;

	assert_int_equal(guestagent_parse_info(info_real, strlen(info_real), &gi, why, sizeof(why)),
			 0);
	assert_string_equal(gi.app_id, "a1b2");
	assert_string_equal(gi.instance_id, "dd01");
	assert_string_equal(gi.compose_hash, "c3c3");
}

static void test_info_refused(void **state)
{
	static const struct {
		const char *doc, *why;
	} bad[] = {
	    {"[]", "not a JSON object"},
	    {"{\"instance_id\": \"dd\"}", "app_id: missing"},
	    {"{\"app_id\": \"\"}", "app_id: empty"},
	    {"{\"app_id\": \"xyz\"}", "app_id: not hex of at most 128 digits"},
	    {"{\"app_id\": 7}", "app_id: not a string"},
	    {"{\"app_id\": \"aa\", \"compose_hash\": [\"c3\"]}", "compose_hash: not a string"},
	};
	struct guestagent_info gi;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    guestagent_parse_info(bad[i].doc, strlen(bad[i].doc), &gi, why, sizeof(why)),
		    -EINVAL);
		assert_string_equal(why, bad[i].why);
	}
}

static int quote(const char *s, struct guestagent_quote *q)
{
	return guestagent_parse_quote(s, strlen(s), q, why, sizeof(why));
}

static void test_quote(void **state)
{
	struct guestagent_quote q;
	uint8_t want[64] = {0x12, 0x34, 0xde, 0xad, 0xbe, 0xaf};

	assert_int_equal(
	    quote("{\"quote\": \"0a0B\", \"event_log\": \"[{\\\"imr\\\": 3}]\", "
		  "\"report_data\": \"1234deadbeaf\", \"vm_config\": \"{\\\"cpu_count\\\": 2}\"}",
		  &q),
	    0);
	assert_string_equal(q.quote, "0a0B");
	assert_string_equal(q.event_log, "[{\"imr\": 3}]");
	assert_string_equal(q.vm_config, "{\"cpu_count\": 2}");
	assert_memory_equal(q.report_data, want, 64); /* fewer than 64 bytes: zero-padded */
	guestagent_quote_free(&q);
	/* Older agents send no vm_config. */
	assert_int_equal(
	    quote("{\"quote\": \"00\", \"event_log\": \"\", \"report_data\": \"0x00\"}", &q), 0);
	assert_string_equal(q.vm_config, "");
	guestagent_quote_free(&q);
	guestagent_quote_free(NULL);
}

static void test_quote_refused(void **state)
{
	static const struct {
		const char *doc, *why;
	} bad[] = {
	    {"{\"event_log\": \"\", \"report_data\": \"\"}", "quote: missing"},
	    {"{\"quote\": \"abc\", \"event_log\": \"\", \"report_data\": \"\"}",
	     "quote: not hex bytes"},
	    {"{\"quote\": \"\", \"event_log\": \"\", \"report_data\": \"\"}",
	     "quote: not hex bytes"},
	    {"{\"quote\": \"00\", \"report_data\": \"\"}", "event_log: missing"},
	    {"{\"quote\": \"00\", \"event_log\": [], \"report_data\": \"\"}",
	     "event_log: not a string"},
	    {"{\"quote\": \"00\", \"event_log\": \"\"}", "report_data: missing"},
	    {"{\"quote\": \"00\", \"event_log\": \"\", \"report_data\": \"0g\"}",
	     "report_data: not hex of at most 64 bytes"},
	};
	struct guestagent_quote q;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(quote(bad[i].doc, &q), -EINVAL);
		assert_string_equal(why, bad[i].why);
	}
}

static void test_quote_caps(void **state)
{
	size_t n = GUESTAGENT_EVENTLOG_MAX + 1;
	char *s = malloc(n + 100), *p;
	struct guestagent_quote q;

	p = s + sprintf(s, "{\"quote\": \"00\", \"report_data\": \"\", \"event_log\": \"");
	memset(p, 'x', n);
	strcpy(p + n, "\"}");
	assert_int_equal(quote(s, &q), -EINVAL);
	assert_string_equal(why, "event_log: longer than 65536 bytes");
	free(s);
}

static void test_quote_request(void **state)
{
	uint8_t rd[64] = {0xab, 0xcd};
	char *body = guestagent_quote_request(rd);

	assert_string_equal(body,
			    "{\"report_data\":\"abcd"
			    "000000000000000000000000000000000000000000000000000000000000"
			    "0000000000000000000000000000000000000000000000000000000000000000\"}");
	free(body);
}

static void test_key(void **state)
{
	static const char ok[] =
	    "{\"key\": \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1F\", "
	    "\"signature_chain\": [\"aa\", \"bb\"]}";
	static const char *bad[] = {
	    "{\"signature_chain\": []}",
	    "{\"key\": 5}",
	    "{\"key\": \"0001\"}",
	    "{\"key\": \"zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}",
	    "[]",
	};
	uint8_t key[32], want[32];
	char *req;

	for (int i = 0; i < 32; i++)
		want[i] = (uint8_t)i;
	assert_int_equal(guestagent_parse_key(ok, strlen(ok), key, why, sizeof(why)), 0);
	assert_memory_equal(key, want, 32);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    guestagent_parse_key(bad[i], strlen(bad[i]), key, why, sizeof(why)), -EINVAL);
	req = guestagent_key_request("p2pwg/wireguard/dd", "wireguard");
	assert_string_equal(req, "{\"path\":\"p2pwg/wireguard/dd\",\"purpose\":\"wireguard\"}");
	free(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_info),       cmocka_unit_test(test_info_refused),
	    cmocka_unit_test(test_quote),      cmocka_unit_test(test_quote_refused),
	    cmocka_unit_test(test_quote_caps), cmocka_unit_test(test_quote_request),
	    cmocka_unit_test(test_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/* attest: the report_data binding, the admission policy, and the parsers of
 * the "attestation" node.json field and of dstack-verifier's /verify answer. */
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

#include "attest.h"

#define NOW 1795888800 /* 2026-11-28T18:00:00Z */
#define AT "2026-11-28T18:00:00.000000+00:00"
#define APP "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define COMPOSE "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"

static uint8_t key[32];
static struct attest_rules rules;
static struct attest_doc doc;
static struct attest_verdict vd;
static char why[PEERSET_WHY];

/* A peer that did everything right: its quote binds key and AT, the verifier
 * accepted it and named the allowed app. */
static int setup(void **state)
{
	struct config c = {.attest_max_age_s = 600};

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(i + 1);
	snprintf(c.allow_app_ids, sizeof(c.allow_app_ids), "0x%s, ffff", APP);
	snprintf(c.allow_compose_hashes, sizeof(c.allow_compose_hashes), "%s", COMPOSE);
	assert_int_equal(attest_rules_init(&rules, &c), 0);
	memset(&doc, 0, sizeof(doc));
	snprintf(doc.updated_at, sizeof(doc.updated_at), "%s", AT);
	doc.at = NOW;
	memset(&vd, 0, sizeof(vd));
	vd.is_valid = true;
	vd.has_report_data = true;
	attest_binding(key, AT, vd.report_data);
	vd.has_app_info = true;
	snprintf(vd.app_id, sizeof(vd.app_id), "%s", APP);
	snprintf(vd.compose_hash, sizeof(vd.compose_hash), "%s", COMPOSE);
	why[0] = '\0';
	return 0;
}

static void test_binding_vector(void **state)
{
	uint8_t rd[64], zero[32] = {0};
	char hex[129];

	/* sha256(b"p2pwg-attest-v1" + bytes(1..32) + AT), computed with Python. */
	attest_binding(key, AT, rd);
	guestagent_hex(rd, 32, hex);
	assert_string_equal(hex,
			    "dc294a4bfe7ebf8858d005575f55716b96a48a33e1e5b91a9a6543cf12d6e23a");
	assert_memory_equal(rd + 32, zero, 32);
}

static void test_genuine_peer_admitted(void **state)
{
	assert_int_equal(attest_check(&rules, key, &doc, &vd, NOW + 10, why, sizeof(why)), 0);
}

static void test_invalid_quote_refused(void **state)
{
	vd.is_valid = false;
	snprintf(vd.reason, sizeof(vd.reason), "quote verification failed");
	assert_int_equal(attest_check(&rules, key, &doc, &vd, NOW, why, sizeof(why)), -EACCES);
	assert_string_equal(why, "attestation refused by the verifier: quote verification failed");
}

static void test_quote_of_another_key_refused(void **state)
{
	uint8_t other[32];

	memset(other, 7, 32);
	assert_int_equal(attest_check(&rules, other, &doc, &vd, NOW, why, sizeof(why)), -EACCES);
	assert_non_null(strstr(why, "does not bind this node's key"));
}

static void test_other_updated_at_refused(void **state)
{
	/* A replayed quote republished with a fresh updated_at does not bind it. */
	snprintf(doc.updated_at, sizeof(doc.updated_at), "2026-11-28T18:05:00.000000+00:00");
	doc.at = NOW + 300;
	assert_int_equal(attest_check(&rules, key, &doc, &vd, NOW + 300, why, sizeof(why)),
			 -EACCES);
	assert_non_null(strstr(why, "does not bind"));
}

static void test_stale_and_future_refused(void **state)
{
	assert_int_equal(attest_check(&rules, key, &doc, &vd, NOW + 600, why, sizeof(why)), 0);
	assert_int_equal(attest_check(&rules, key, &doc, &vd, NOW + 601, why, sizeof(why)),
			 -EACCES);
	assert_string_equal(why, "attestation: stale, quoted at " AT ", more than 600 s ago");
	assert_int_equal(
	    attest_check(&rules, key, &doc, &vd, NOW - ATTEST_FUTURE_S, why, sizeof(why)), 0);
	assert_int_equal(
	    attest_check(&rules, key, &doc, &vd, NOW - ATTEST_FUTURE_S - 1, why, sizeof(why)),
	    -EACCES);
	assert_non_null(strstr(why, "in the future"));
}

static void test_allow_lists(void **state)
{
	struct config c = {.attest_max_age_s = 600};

	snprintf(vd.app_id, sizeof(vd.app_id), "b2b2b2b2b2b2b2b2b2b2");
	assert_int_equal(attest_check(&rules, key, &doc, &vd, NOW, why, sizeof(why)), -EACCES);
	assert_string_equal(why,
			    "attestation: app_id b2b2b2b2b2b2b2b2 is not in P2PWG_ALLOW_APP_IDS");
	snprintf(vd.app_id, sizeof(vd.app_id), "ffff"); /* the list's second entry */
	assert_int_equal(attest_check(&rules, key, &doc, &vd, NOW, why, sizeof(why)), 0);
	snprintf(vd.compose_hash, sizeof(vd.compose_hash), "00");
	assert_int_equal(attest_check(&rules, key, &doc, &vd, NOW, why, sizeof(why)), -EACCES);
	assert_non_null(strstr(why, "compose_hash 00 is not in P2PWG_ALLOW_COMPOSE_HASHES"));
	/* A prefix of an allowed id is not that id. */
	snprintf(vd.compose_hash, sizeof(vd.compose_hash), "%.62s", COMPOSE);
	assert_int_equal(attest_check(&rules, key, &doc, &vd, NOW, why, sizeof(why)), -EACCES);
	/* An empty list admits any value; the other list still applies. */
	snprintf(c.allow_app_ids, sizeof(c.allow_app_ids), "%s", APP);
	assert_int_equal(attest_rules_init(&rules, &c), 0);
	snprintf(vd.app_id, sizeof(vd.app_id), "%s", APP);
	assert_int_equal(attest_check(&rules, key, &doc, &vd, NOW, why, sizeof(why)), 0);
	vd.has_app_info = false;
	assert_int_equal(attest_check(&rules, key, &doc, &vd, NOW, why, sizeof(why)), -EACCES);
	assert_string_equal(why, "attestation: the verifier named no app");
	snprintf(c.allow_app_ids, sizeof(c.allow_app_ids), "a1,not-hex");
	assert_int_equal(attest_rules_init(&rules, &c), -EINVAL);
}

#define DOC(att)                                                                                   \
	"{\"wg_pubkey\": \"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\", \"attestation\": " att  \
	"}"
#define GOOD_ATT                                                                                   \
	"{\"version\": 1, \"updated_at\": \"" AT "\", \"app_id\": \"0xA1\", \"quote\": \"00ff\", " \
	"\"event_log\": \"[]\", \"vm_config\": \"{}\"}"

static int parse(const char *s, struct attest_doc *d)
{
	return attest_parse_doc(s, strlen(s), d, why, sizeof(why));
}

static void test_parse_doc(void **state)
{
	struct attest_doc d, e;
	char *req;

	assert_int_equal(parse(DOC(GOOD_ATT), &d), 0);
	assert_string_equal(d.quote, "00ff");
	assert_string_equal(d.event_log, "[]");
	assert_string_equal(d.vm_config, "{}");
	assert_string_equal(d.updated_at, AT);
	assert_int_equal(d.at, NOW);
	assert_string_equal(d.app_id, "a1");
	req = attest_verify_request(&d);
	assert_string_equal(req, "{\"quote\":\"00ff\",\"event_log\":\"[]\",\"vm_config\":\"{}\"}");
	free(req);
	/* The cache key follows the quote. */
	assert_int_equal(
	    parse(DOC("{\"updated_at\": \"" AT "\", \"quote\": \"00fe\", \"event_log\": \"\"}"),
		  &e),
	    0);
	assert_memory_not_equal(d.digest, e.digest, 32);
	assert_string_equal(e.vm_config, "");
	attest_doc_free(&d);
	attest_doc_free(&e);
}

static void test_parse_doc_refused(void **state)
{
	static const struct {
		const char *doc, *why;
	} bad[] = {
	    {DOC("[]"), "attestation: not an object"},
	    {DOC("{\"updated_at\": \"" AT "\", \"event_log\": \"\"}"),
	     "attestation.quote: missing"},
	    {DOC("{\"updated_at\": \"" AT "\", \"quote\": \"0ff\", \"event_log\": \"\"}"),
	     "attestation.quote: not hex bytes"},
	    {DOC("{\"updated_at\": \"" AT "\", \"quote\": \"zz\", \"event_log\": \"\"}"),
	     "attestation.quote: not hex bytes"},
	    {DOC("{\"updated_at\": \"" AT "\", \"quote\": \"\", \"event_log\": \"\"}"),
	     "attestation.quote: not hex bytes"},
	    {DOC("{\"updated_at\": \"" AT "\", \"quote\": \"00\"}"),
	     "attestation.event_log: missing"},
	    {DOC("{\"updated_at\": \"" AT "\", \"quote\": \"00\", \"event_log\": 5}"),
	     "attestation.event_log: not a string"},
	    {DOC("{\"updated_at\": \"yesterday\", \"quote\": \"00\", \"event_log\": \"\"}"),
	     "attestation.updated_at: not an ISO 8601 UTC time"},
	    {DOC("{\"updated_at\": \"2026-11-28T18:00:00+02:00\", \"quote\": \"00\", "
		 "\"event_log\": \"\"}"),
	     "attestation.updated_at: not an ISO 8601 UTC time"},
	};
	struct attest_doc d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i].doc, &d), -EINVAL);
		assert_string_equal(why, bad[i].why);
	}
	assert_int_equal(parse(DOC("null"), &d), -ENOENT);
	assert_int_equal(parse("{\"wg_pubkey\": \"x\"}", &d), -ENOENT);
	assert_int_equal(parse("[1]", &d), -ENOENT);
}

static void test_parse_doc_caps(void **state)
{
	size_t n = GUESTAGENT_QUOTE_MAX + 2;
	char *s = malloc(n + 200), *p;
	struct attest_doc d;

	p = s + sprintf(s, "{\"attestation\": {\"updated_at\": \"" AT
			   "\", \"event_log\": \"\", \"quote\": \"");
	memset(p, 'a', n);
	strcpy(p + n, "\"}}");
	assert_int_equal(parse(s, &d), -EINVAL);
	assert_non_null(strstr(why, "attestation.quote: longer than"));
	strcpy(p + n - 2, "\"}}");
	assert_int_equal(parse(s, &d), 0);
	attest_doc_free(&d);
	free(s);
}

/* dstack-verifier's answer, as verifier/src/types.rs serialises it. */
#define RD64                                                                                       \
	"dc294a4bfe7ebf8858d005575f55716b96a48a33e1e5b91a9a6543cf12d6e23a"                         \
	"0000000000000000000000000000000000000000000000000000000000000000"
static const char verdict_ok[] =
    "{\"is_valid\": true, \"details\": {\"quote_verified\": true, \"event_log_verified\": true, "
    "\"os_image_hash_verified\": true, \"report_data\": \"" RD64
    "\", \"tcb_status\": \"UpToDate\", "
    "\"advisory_ids\": [], \"app_info\": {\"app_id\": \"A1A1\", \"compose_hash\": \"" COMPOSE "\", "
    "\"instance_id\": \"0xdd\", \"device_id\": \"22\", \"mrtd\": \"44\", \"os_image_hash\": "
    "\"11\", "
    "\"key_provider_info\": \"\"}}, \"reason\": null}";

static int verdict(const char *s, struct attest_verdict *v)
{
	return attest_parse_verdict(s, strlen(s), v, why, sizeof(why));
}

static void test_parse_verdict(void **state)
{
	struct attest_verdict v;
	uint8_t rd[64];

	assert_int_equal(verdict(verdict_ok, &v), 0);
	assert_true(v.is_valid);
	assert_true(v.has_report_data);
	attest_binding(key, AT, rd);
	assert_memory_equal(v.report_data, rd, 64);
	assert_true(v.has_app_info);
	assert_string_equal(v.app_id, "a1a1");
	assert_string_equal(v.compose_hash, COMPOSE);
	assert_string_equal(v.instance_id, "dd");
	assert_string_equal(v.reason, "");

	assert_int_equal(
	    verdict("{\"is_valid\": false, \"details\": {\"quote_verified\": false, "
		    "\"report_data\": null, \"app_info\": null, \"advisory_ids\": []}, "
		    "\"reason\": \"bad\\u001b[31m quote\"}",
		    &v),
	    0);
	assert_false(v.is_valid);
	assert_false(v.has_report_data);
	assert_false(v.has_app_info);
	assert_string_equal(v.reason, "bad?[31m quote");
}

static void test_parse_verdict_refused(void **state)
{
	static const struct {
		const char *doc, *why;
	} bad[] = {
	    {"[]", "not a JSON object"},
	    {"{\"details\": {}}", "is_valid: not a boolean"},
	    {"{\"is_valid\": 1, \"details\": {}}", "is_valid: not a boolean"},
	    {"{\"is_valid\": true}", "details: not an object"},
	    {"{\"is_valid\": true, \"details\": {\"report_data\": \"00\"}}",
	     "details.report_data: not hex of 64 bytes"},
	    {"{\"is_valid\": true, \"details\": {\"report_data\": 5}}",
	     "details.report_data: not hex of 64 bytes"},
	    {"{\"is_valid\": true, \"details\": {\"app_info\": \"x\"}}",
	     "details.app_info: not an object"},
	    {"{\"is_valid\": true, \"details\": {\"app_info\": {\"app_id\": \"xyz\"}}}",
	     "details.app_info.app_id: not hex of at most 128 digits"},
	};
	struct attest_verdict v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(verdict(bad[i].doc, &v), -EINVAL);
		assert_string_equal(why, bad[i].why);
	}
}

/* peerset honours a caller's refusal: the entry configures nothing, keeps its
 * position, and the reason is the caller's. */
static void test_peerset_refused_entry(void **state)
{
	struct mesh_params p = {.overlay_len = 24, .base_offset = 10};
	struct peerset ps;
	struct peerset_entry in[3] = {0};
	char w[3][PEERSET_WHY];
	struct mesh_state st;
	enum peerset_verdict v;
	uint8_t self[32];

	p.overlay_net.s_addr = htonl(0x0a580000);
	memset(self, 0xee, 32);
	peerset_init(&ps, &p, self, NULL, 3);
	for (int i = 0; i < 3; i++) {
		in[i].url = i == 0 ? "https://a" : i == 1 ? "https://b" : "https://c";
		in[i].known = true;
		memset(in[i].info.wg_pubkey, i == 0 ? 0xee : i, 32);
		in[i].info.self_index = -1;
	}
	in[1].refused = "attestation: none in its node.json";
	assert_int_equal(peerset_decide(&ps, in, 3, true, NOW, &st, &v, w), 0);
	assert_int_equal(v, PEERSET_APPLY);
	assert_int_equal(st.n_peers, 1);
	assert_int_equal(st.peers[0].index, 2);
	assert_int_equal(ntohl(st.peers[0].overlay.s_addr) & 0xff, 12);
	assert_string_equal(w[1], "attestation: none in its node.json");
	assert_string_equal(w[2], "");
	peerset_free(&ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_binding_vector, setup),
	    cmocka_unit_test_setup(test_genuine_peer_admitted, setup),
	    cmocka_unit_test_setup(test_invalid_quote_refused, setup),
	    cmocka_unit_test_setup(test_quote_of_another_key_refused, setup),
	    cmocka_unit_test_setup(test_other_updated_at_refused, setup),
	    cmocka_unit_test_setup(test_stale_and_future_refused, setup),
	    cmocka_unit_test_setup(test_allow_lists, setup),
	    cmocka_unit_test_setup(test_parse_doc, setup),
	    cmocka_unit_test_setup(test_parse_doc_refused, setup),
	    cmocka_unit_test_setup(test_parse_doc_caps, setup),
	    cmocka_unit_test_setup(test_parse_verdict, setup),
	    cmocka_unit_test_setup(test_parse_verdict_refused, setup),
	    cmocka_unit_test_setup(test_peerset_refused_entry, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/* nodeinfo: a peer's /node.json as the prototype and this project publish it. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nodeinfo.h"

#define KEY "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=" /* bytes 1..32 */
#define T0 1756069801LL                                 /* 2025-08-24T21:10:01Z */

/* What the prototype serves before it has found itself in the list. */
static const char proto_doc[] =
	"{\"wg_pubkey\": \"" KEY "\", \"overlay_ip\": \"\", \"wg_listen_port\": 51820, "
	"\"public_ip\": null, \"public_port\": null, \"nat\": null, "
	"\"updated_at\": \"2025-08-24T21:10:01.999712+00:00\", \"self_url\": null, "
	"\"self_index\": null}";

static const char *const fields[][2] = {
	{ "wg_pubkey", "\"" KEY "\"" },
	{ "overlay_ip", "\"10.88.0.12/32\"" },
	{ "wg_listen_port", "51820" },
	{ "public_ip", "\"203.0.113.7\"" },
	{ "public_port", "40123" },
	{ "nat", "\"Full Cone\"" },
	{ "updated_at", "\"2025-08-24T21:10:01.999712+00:00\"" },
	{ "self_url", "\"https://c-8080.dstack.example/node.json\"" },
	{ "self_index", "2" },
	{ "version", "1" },
	{ "mapping", "\"endpoint-independent\"" },
	{ "local_endpoints", "[\"192.168.1.5:51820\"]" },
};

static char doc[4096], why[256];

/* A full document with field name set to value (NULL: left out). */
static const char *with(const char *name, const char *value)
{
	char *p = doc;

	p += sprintf(p, "{");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = strcmp(fields[i][0], name) ? fields[i][1] : value;

		if (v)
			p += sprintf(p, "%s\"%s\": %s", p[-1] == '{' ? "" : ", ", fields[i][0], v);
	}
	sprintf(p, "}");
	return doc;
}

static struct nodeinfo parse_ok(const char *s)
{
	struct nodeinfo ni;

	why[0] = '\0';
	if (nodeinfo_parse(s, strlen(s), &ni, why, sizeof(why)))
		fail_msg("refused (%s): %s", why, s);
	return ni;
}

static void refused(const char *s, const char *want)
{
	struct nodeinfo ni;

	memset(&ni, 0x5a, sizeof(ni));
	why[0] = '\0';
	assert_int_equal(nodeinfo_parse(s, strlen(s), &ni, why, sizeof(why)), -EINVAL);
	if (!strstr(why, want))
		fail_msg("reason \"%s\" does not contain \"%s\" for %s", why, want, s);
	assert_int_equal(ni.wg_listen_port, 0x5a5a); /* left untouched */
}

static void assert_ip(struct in_addr a, const char *want)
{
	char s[INET_ADDRSTRLEN];

	assert_string_equal(inet_ntop(AF_INET, &a, s, sizeof(s)), want);
}

static void assert_key(const uint8_t *key)
{
	for (int i = 0; i < 32; i++)
		assert_int_equal(key[i], i + 1);
}

static void test_prototype_doc(void **state)
{
	struct nodeinfo ni = parse_ok(proto_doc);

	assert_key(ni.wg_pubkey);
	assert_false(ni.has_overlay);
	assert_int_equal(ni.wg_listen_port, 51820);
	assert_false(ni.has_public);
	assert_string_equal(ni.nat, "");
	assert_string_equal(ni.updated_at, "2025-08-24T21:10:01.999712+00:00");
	assert_int_equal(ni.self_index, -1);
	assert_int_equal(ni.version, 0);
}

static void test_full_doc(void **state)
{
	struct nodeinfo ni = parse_ok(with("", NULL));

	assert_key(ni.wg_pubkey);
	assert_true(ni.has_overlay);
	assert_ip(ni.overlay_ip, "10.88.0.12");
	assert_true(ni.has_public);
	assert_ip(ni.public_ip, "203.0.113.7");
	assert_int_equal(ni.public_port, 40123);
	assert_string_equal(ni.nat, "Full Cone");
	assert_int_equal(ni.self_index, 2);
	assert_int_equal(ni.version, 1);
	assert_int_equal(ni.n_local, 1);
	assert_ip(ni.local[0].sin_addr, "192.168.1.5");
}

static void test_defaults_and_halves(void **state)
{
	struct nodeinfo ni = parse_ok("{\"wg_pubkey\": \"" KEY "\"}");

	assert_false(ni.has_overlay);
	assert_int_equal(ni.wg_listen_port, 51820);
	assert_false(ni.has_public);
	assert_string_equal(ni.updated_at, "");
	assert_int_equal(ni.self_index, -1);
	ni = parse_ok(with("wg_listen_port", "51821"));
	assert_int_equal(ni.wg_listen_port, 51821);
	/* One half of the endpoint alone is no endpoint. */
	assert_false(parse_ok(with("public_port", "null")).has_public);
	assert_false(parse_ok(with("public_port", NULL)).has_public);
	assert_false(parse_ok(with("public_ip", "null")).has_public);
	/* Unknown keys are ignored, whatever they hold. */
	ni = parse_ok("{\"future\": {\"a\": [1, 2.5, null]}, \"wg_pubkey\": \"" KEY "\", "
		      "\"ipv6\": true, \"overlay_ip\": \"10.88.0.10/32\"}");
	assert_ip(ni.overlay_ip, "10.88.0.10");
}

static void test_bad_pubkey(void **state)
{
	refused(with("wg_pubkey", NULL), "wg_pubkey: missing");
	refused(with("wg_pubkey", "\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHw==\""),
		"wg_pubkey: not base64 of 32 bytes"); /* 31 bytes */
	refused(with("wg_pubkey", "\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAh\""),
		"wg_pubkey: not base64 of 32 bytes"); /* 33 bytes */
	refused(with("wg_pubkey", "\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e*yA=\""),
		"wg_pubkey: not base64 of 32 bytes");
	refused(with("wg_pubkey", "\"\""), "wg_pubkey: not base64 of 32 bytes");
	refused(with("wg_pubkey", "5"), "wg_pubkey: not a string");
	refused(with("wg_pubkey", "null"), "wg_pubkey: not a string");
}

static void test_bad_overlay(void **state)
{
	refused(with("overlay_ip", "\"10.88.0.5/24\""), "overlay_ip:");
	refused(with("overlay_ip", "\"10.88.0.256/32\""), "overlay_ip:");
	refused(with("overlay_ip", "\"10.88.0.5\""), "overlay_ip:");
	refused(with("overlay_ip", "\"10.88.0.05/32\""), "overlay_ip:");
	refused(with("overlay_ip", "\" 10.88.0.5/32\""), "overlay_ip:");
	refused(with("overlay_ip", "\"10.88.0.5/032\""), "overlay_ip:");
	refused(with("overlay_ip", "5"), "overlay_ip: not a string");
}

static void test_bad_ports(void **state)
{
	refused(with("wg_listen_port", "0"), "wg_listen_port: 0 not in 1..65535");
	refused(with("wg_listen_port", "65536"), "wg_listen_port: 65536 not in 1..65535");
	refused(with("wg_listen_port", "-1"), "wg_listen_port:");
	refused(with("wg_listen_port", "\"51820\""), "wg_listen_port: not an integer");
	refused(with("wg_listen_port", "true"), "wg_listen_port: not an integer");
	refused(with("wg_listen_port", "51820.0"), "wg_listen_port: not an integer");
	refused(with("wg_listen_port", "null"), "wg_listen_port: not an integer");
	refused(with("public_port", "0"), "public_port: 0 not in 1..65535");
	refused(with("public_port", "70000"), "public_port: 70000 not in 1..65535");
	refused(with("public_port", "1.5"), "public_port: not an integer");
	refused(with("public_port", "\"40123\""), "public_port: not an integer");
	refused(with("public_port", "false"), "public_port: not an integer");
}

static void test_bad_public_ip(void **state)
{
	refused(with("public_ip", "\"1.2.3\""), "public_ip: not a dotted IPv4 address");
	refused(with("public_ip", "\"1.2.3.4:5\""), "public_ip: not a dotted IPv4 address");
	refused(with("public_ip", "\"2001:db8::1\""), "public_ip: not a dotted IPv4 address");
	refused(with("public_ip", "\"\""), "public_ip: not a dotted IPv4 address");
	refused(with("public_ip", "7"), "public_ip: not a string");
}

static void test_bad_other_fields(void **state)
{
	refused(with("self_index", "-1"), "self_index:");
	refused(with("self_index", "\"2\""), "self_index: not an integer");
	refused(with("version", "\"1\""), "version: not an integer");
	refused(with("nat", "5"), "nat: not a string");
	refused(with("updated_at", "1756069801"), "updated_at: not a string");
	refused(with("self_url", "[]"), "self_url: not a string");
	refused(with("mapping", "true"), "mapping: not a string");
}

static void test_bad_document(void **state)
{
	char *big = malloc(NODEINFO_MAX_BYTES + 1);
	struct nodeinfo ni;

	refused("", "not JSON: empty document");
	refused("{\"wg_pubkey\": ", "not JSON: ");
	refused("[]", "not a JSON object");
	refused("\"" KEY "\"", "not a JSON object");
	refused("{\"wg_pubkey\": \"" KEY "\", \"wg_pubkey\": \"" KEY "\"}", "not JSON: duplicate");
	/* Padding up to the limit is fine, one byte more is not. */
	assert_non_null(big);
	memset(big, ' ', NODEINFO_MAX_BYTES + 1);
	memcpy(big, proto_doc, strlen(proto_doc));
	assert_int_equal(nodeinfo_parse(big, NODEINFO_MAX_BYTES, &ni, why, sizeof(why)), 0);
	assert_int_equal(nodeinfo_parse(big, NODEINFO_MAX_BYTES + 1, &ni, why, sizeof(why)),
			 -EINVAL);
	assert_string_equal(why, "196609 bytes, at most 196608");
	free(big);
}

static void test_informational_text(void **state)
{
	struct nodeinfo ni = parse_ok(with("nat", "\"Restricted Port Cone NAT behind another\""));

	assert_string_equal(ni.nat, "Restricted Port Cone NAT behind");
	/* Not cut inside a UTF-8 character; no control characters reach the logs. */
	ni = parse_ok(with("nat", "\"abcdefghijklmnopqrstuvwxyz1234\\u00e9\""));
	assert_string_equal(ni.nat, "abcdefghijklmnopqrstuvwxyz1234");
	ni = parse_ok(with("nat", "\"Full\\nCone\\u001b[31m\""));
	assert_string_equal(ni.nat, "Full?Cone?[31m");
}

static struct nodeinfo_self sample_self(void)
{
	struct nodeinfo_self s = {
		.wg_listen_port = 51820, .self_index = -1, .updated_at = T0,
	};

	for (int i = 0; i < 32; i++)
		s.wg_pubkey[i] = (uint8_t)(i + 1);
	return s;
}

static void test_format_nulls(void **state)
{
	struct nodeinfo_self s = sample_self();
	char *out = nodeinfo_format(&s);
	json_t *j, *v;
	const char *nulls[] = { "public_ip", "public_port", "nat", "self_url", "self_index",
				"mapping" };

	assert_non_null(out);
	/* Python json.dumps style, keys in the prototype's order. */
	assert_string_equal(out, "{\"wg_pubkey\": \"" KEY "\", \"overlay_ip\": \"\", "
				 "\"wg_listen_port\": 51820, \"public_ip\": null, "
				 "\"public_port\": null, \"nat\": null, "
				 "\"updated_at\": \"2025-08-24T21:10:01.000000+00:00\", "
				 "\"self_url\": null, \"self_index\": null, \"version\": 1, "
				 "\"mapping\": null, \"local_endpoints\": []}");
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 12);
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
		v = json_object_get(j, nulls[i]);
		if (!json_is_null(v))
			fail_msg("%s is not null", nulls[i]);
	}
	assert_string_equal(json_string_value(json_object_get(j, "overlay_ip")), "");
	assert_int_equal(json_integer_value(json_object_get(j, "version")), NODEINFO_VERSION);
	json_decref(j);
	free(out);
}

static void test_format_round_trip(void **state)
{
	struct nodeinfo_self s = sample_self();
	struct nodeinfo ni;
	char *out, when[40];
	json_t *j;

	s.has_overlay = true;
	inet_pton(AF_INET, "10.88.0.13", &s.overlay_ip);
	s.wg_listen_port = 51999;
	s.has_public = true;
	inet_pton(AF_INET, "198.51.100.20", &s.public_ip);
	s.public_port = 61000;
	s.nat = "endpoint-independent";
	s.mapping = "endpoint-independent";
	s.self_url = "https://d-8080.dstack.example/node.json";
	s.self_index = 3;
	struct sockaddr_in local[2] = { { .sin_family = AF_INET, .sin_port = htons(51999) },
					{ .sin_family = AF_INET, .sin_port = htons(51999) } };
	inet_pton(AF_INET, "192.168.1.2", &local[0].sin_addr);
	inet_pton(AF_INET, "10.0.5.9", &local[1].sin_addr);
	s.local = local;
	s.n_local = 2;
	out = nodeinfo_format(&s);
	assert_non_null(out);
	ni = parse_ok(out);
	assert_key(ni.wg_pubkey);
	assert_true(ni.has_overlay);
	assert_ip(ni.overlay_ip, "10.88.0.13");
	assert_int_equal(ni.wg_listen_port, 51999);
	assert_true(ni.has_public);
	assert_ip(ni.public_ip, "198.51.100.20");
	assert_int_equal(ni.public_port, 61000);
	assert_string_equal(ni.nat, "endpoint-independent");
	nodeinfo_time(T0, 0, when, sizeof(when));
	assert_string_equal(ni.updated_at, when);
	assert_int_equal(ni.self_index, 3);
	assert_int_equal(ni.version, NODEINFO_VERSION);
	assert_int_equal(ni.n_local, 2);
	assert_memory_equal(&ni.local[0], &local[0], sizeof(local[0]));
	assert_memory_equal(&ni.local[1], &local[1], sizeof(local[1]));
	/* The fields nodeinfo does not keep are in the document all the same. */
	j = json_loads(out, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "self_url")), s.self_url);
	assert_string_equal(json_string_value(json_object_get(j, "mapping")), s.mapping);
	assert_string_equal(json_string_value(json_object_get(j, "overlay_ip")), "10.88.0.13/32");
	json_decref(j);
	free(out);
}

/* A peer's local candidates: each bad item is skipped alone, the count is
 * capped, and only a field of the wrong type (or a huge one) refuses the
 * document. */
static void test_local_endpoints(void **state)
{
	struct nodeinfo ni;
	char list[1024];
	size_t n;

	ni = parse_ok(with("local_endpoints",
			   "[\"192.168.1.3:51820\", \"10.0.0.1:0\", \"10.0.0.1:65536\", "
			   "\"10.0.0.1:051820\", \"10.0.0.1:+5\", \"127.0.0.1:51820\", "
			   "\"224.0.0.1:5\", \"169.254.1.1:5\", \"0.1.2.3:5\", \"10.0.0.1\", "
			   "\"10.0.0.1:\", \":5\", 7, null, \"10.0.0.1:5 \", \"1.2.3.4.5:6\", "
			   "\"fe80::1:5\", \"10.1.2.3:5\\u00e9\", \"172.16.0.9:40000\"]"));
	assert_int_equal(ni.n_local, 2);
	assert_int_equal(ni.n_local_skipped, 17);
	assert_ip(ni.local[0].sin_addr, "192.168.1.3");
	assert_int_equal(ntohs(ni.local[0].sin_port), 51820);
	assert_ip(ni.local[1].sin_addr, "172.16.0.9");
	assert_int_equal(ntohs(ni.local[1].sin_port), 40000);

	ni = parse_ok(with("local_endpoints", "null"));
	assert_int_equal(ni.n_local, 0);
	ni = parse_ok(proto_doc);
	assert_int_equal(ni.n_local, 0);

	n = (size_t)snprintf(list, sizeof(list), "[");
	for (int i = 0; i < 12; i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "\"10.0.0.%d:51820\",", i + 1);
	snprintf(list + n - 1, sizeof(list) - n + 1, "]");
	ni = parse_ok(with("local_endpoints", list));
	assert_int_equal(ni.n_local, NODEINFO_MAX_LOCAL);
	assert_int_equal(ni.n_local_skipped, 12 - NODEINFO_MAX_LOCAL);
	assert_ip(ni.local[NODEINFO_MAX_LOCAL - 1].sin_addr, "10.0.0.8");

	refused(with("local_endpoints", "\"10.0.0.1:5\""), "local_endpoints: not an array");
	n = (size_t)snprintf(list, sizeof(list), "[");
	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "1,");
	snprintf(list + n - 1, sizeof(list) - n + 1, "]");
	refused(with("local_endpoints", list), "local_endpoints: more than 64 items");
}

static void test_time(void **state)
{
	char buf[40], small[11];

	nodeinfo_time(T0, 999712, buf, sizeof(buf));
	assert_string_equal(buf, "2025-08-24T21:10:01.999712+00:00");
	nodeinfo_time(0, 0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00.000000+00:00");
	nodeinfo_time(T0, 5, buf, sizeof(buf));
	assert_string_equal(buf, "2025-08-24T21:10:01.000005+00:00");
	nodeinfo_time(T0, 0, small, sizeof(small));
	assert_string_equal(small, "2025-08-24");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prototype_doc),	  cmocka_unit_test(test_full_doc),
		cmocka_unit_test(test_defaults_and_halves), cmocka_unit_test(test_bad_pubkey),
		cmocka_unit_test(test_bad_overlay),	  cmocka_unit_test(test_bad_ports),
		cmocka_unit_test(test_bad_public_ip),	  cmocka_unit_test(test_bad_other_fields),
		cmocka_unit_test(test_bad_document),	  cmocka_unit_test(test_informational_text),
		cmocka_unit_test(test_format_nulls),	  cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_time),		  cmocka_unit_test(test_local_endpoints),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

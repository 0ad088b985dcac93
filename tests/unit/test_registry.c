// SPDX-License-Identifier: MIT
/* registry: P2PWG_REGISTRY, the JSON-RPC answers a node gets, and the list
 * they make, by the Gist's rules. */
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

#include "abi_build.h"
#include "registry.h"

static char why[256];

static void contains(const char *s, const char *want)
{
	if (!strstr(s, want))
		fail_msg("reason \"%s\" does not contain \"%s\"", s, want);
}

static void test_spec(void **state)
{
	char addr[43], url[2048];
	const char *a = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
	char spec[200];

	snprintf(spec, sizeof(spec), "%s@https://rpc.example.org/v1", a);
	assert_int_equal(registry_spec_parse(spec, false, addr, url, sizeof(url), why, sizeof(why)),
			 0);
	assert_string_equal(addr, "0x5fbdb2315678afecb367f032d93f642f64180aa3");
	assert_string_equal(url, "https://rpc.example.org/v1");
	/* A node on this host may be plain HTTP; a remote one only when allowed. */
	snprintf(spec, sizeof(spec), "%s@http://127.0.0.1:8545", a);
	assert_int_equal(registry_spec_parse(spec, false, addr, url, sizeof(url), why, sizeof(why)),
			 0);
	snprintf(spec, sizeof(spec), "%s@http://localhost:8545", a);
	assert_int_equal(registry_spec_parse(spec, false, addr, url, sizeof(url), why, sizeof(why)),
			 0);
	snprintf(spec, sizeof(spec), "%s@http://rpc.example.org", a);
	assert_int_equal(registry_spec_parse(spec, false, addr, url, sizeof(url), why, sizeof(why)),
			 -EINVAL);
	contains(why, "https://");
	assert_int_equal(registry_spec_parse(spec, true, addr, url, sizeof(url), why, sizeof(why)),
			 0);
	snprintf(spec, sizeof(spec), "%s@https://rpc.example.org/a b", a);
	assert_int_equal(registry_spec_parse(spec, false, addr, url, sizeof(url), why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(registry_spec_parse("https://rpc.example.org", false, addr, url,
					     sizeof(url), why, sizeof(why)),
			 -EINVAL);
	contains(why, "0x<40 hex digits>@");
	assert_int_equal(
	    registry_spec_parse("0x5fbdb2315678afecb367f032d93f642f64180aa@https://r.example",
				false, addr, url, sizeof(url), why, sizeof(why)),
	    -EINVAL);
	assert_int_equal(
	    registry_spec_parse("0x5fbdb2315678afecb367f032d93f642f64180aag@https://r.example",
				false, addr, url, sizeof(url), why, sizeof(why)),
	    -EINVAL);
	contains(why, "hex");
	assert_int_equal(registry_spec_parse("0x5fbdb2315678afecb367f032d93f642f64180aa3@https://",
					     false, addr, url, sizeof(url), why, sizeof(why)),
			 -EINVAL);
}

static int block(const char *body, uint64_t id, uint64_t *b)
{
	why[0] = '\0';
	return registry_parse_block(body, strlen(body), id, b, why, sizeof(why));
}

static void test_block_number(void **state)
{
	uint64_t b = 0;

	assert_int_equal(block("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"0x1a\"}", 7, &b), 0);
	assert_int_equal(b, 26);
	assert_int_equal(block("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"0x0\"}", 7, &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(
	    block("{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":null,\"result\":\"0x2\"}", 7, &b), 0);
	assert_int_equal(b, 2);
	assert_int_equal(
	    block("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0xffffffffffffffff\"}", 1, &b), 0);
	assert_int_equal(b, UINT64_MAX);
	assert_int_equal(
	    block("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x10000000000000000\"}", 1, &b),
	    -EINVAL);
	contains(why, "64-bit");
	assert_int_equal(block("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x\"}", 1, &b), -EINVAL);
	assert_int_equal(block("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x1g\"}", 1, &b),
			 -EINVAL);
	contains(why, "not hex");
	assert_int_equal(block("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":26}", 1, &b), -EINVAL);
	contains(why, "not a string");
	assert_int_equal(block("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"1a\"}", 1, &b), -EINVAL);
	contains(why, "0x");
}

/* An answer to another request, or not JSON-RPC 2.0, is never taken. */
static void test_answer_shape(void **state)
{
	uint64_t b;

	assert_int_equal(block("{\"jsonrpc\":\"2.0\",\"id\":6,\"result\":\"0x1\"}", 7, &b),
			 -EINVAL);
	contains(why, "request 7");
	assert_int_equal(block("{\"jsonrpc\":\"2.0\",\"id\":\"7\",\"result\":\"0x1\"}", 7, &b),
			 -EINVAL);
	assert_int_equal(block("{\"jsonrpc\":\"1.0\",\"id\":7,\"result\":\"0x1\"}", 7, &b),
			 -EINVAL);
	assert_int_equal(block("{\"id\":7,\"result\":\"0x1\"}", 7, &b), -EINVAL);
	assert_int_equal(block("[{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"0x1\"}]", 7, &b),
			 -EINVAL);
	contains(why, "not an object");
	assert_int_equal(block("<html>502</html>", 7, &b), -EINVAL);
	assert_int_equal(block("", 7, &b), -EINVAL);
	assert_int_equal(block("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"0x1\",\"id\":8}", 7, &b),
			 -EINVAL);
	assert_int_equal(block("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"0x1\\u0000\"}", 7, &b),
			 -EINVAL);
}

static int call(const char *body, uint8_t **d, size_t *n)
{
	why[0] = '\0';
	return registry_parse_call(body, strlen(body), 3, d, n, why, sizeof(why));
}

static void test_call_answer(void **state)
{
	uint8_t *d;
	size_t n;

	assert_int_equal(call("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":\"0x00ff10Ab\"}", &d, &n),
			 0);
	assert_int_equal(n, 4);
	assert_memory_equal(d, "\x00\xff\x10\xab", 4);
	free(d);
	assert_int_equal(call("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":\"0x\"}", &d, &n), 0);
	assert_int_equal(n, 0);
	free(d);
	assert_int_equal(call("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":\"0x0\"}", &d, &n),
			 -EINVAL);
	contains(why, "odd");
	assert_null(d);
	assert_int_equal(call("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":\"0xzz\"}", &d, &n),
			 -EINVAL);
	contains(why, "not hex");
	assert_null(d);
}

/* A reverted call (anvil's words) is refused with its message; control
 * characters in it cannot reach a log line. */
static void test_revert_refused(void **state)
{
	uint8_t *d;
	size_t n;

	assert_int_equal(
	    call("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":3,\"message\":"
		 "\"execution reverted: custom error 0x30cd7471\",\"data\":\"0x30cd7471\"}}",
		 &d, &n),
	    -EINVAL);
	contains(why, "JSON-RPC error 3: execution reverted");
	assert_null(d);
	assert_int_equal(
	    call("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32000,\"message\":"
		 "\"x\\u001b[31my\\nz\"},\"result\":\"0x\"}",
		 &d, &n),
	    -EINVAL);
	assert_null(strchr(why, 0x1b));
	assert_null(strchr(why, '\n'));
}

static struct peerlist *list_of(const char *const *v, const size_t *lens, size_t k, bool allow_http)
{
	struct peerlist *l = NULL;
	size_t len;
	uint8_t *d = abi_build(v, lens, k, &len);

	why[0] = '\0';
	assert_int_equal(registry_parse_list(d, len, allow_http, &l, why, sizeof(why)), 0);
	free(d);
	assert_non_null(l);
	return l;
}

/* The Gist's rules: a bad entry is skipped alone and keeps its position. */
static void test_list_by_the_gists_rules(void **state)
{
	const char *v[] = {"https://n0.example/node.json",	  "http://n1.example/node.json",
			   "https://n2.ex\xc3\xa4mple/node.json", "https://n3.ex\0ample/node.json",
			   "https://n0.example/node.json",	  "",
			   "https://n6.example/node.json"};
	const size_t lens[] = {28, 27, 29, 28, 28, 0, 28};
	struct peerlist *l = list_of(v, lens, 7, false);

	assert_int_equal(l->n, 7);
	assert_string_equal(l->urls[0], "https://n0.example/node.json");
	assert_null(l->urls[1]);
	contains(l->why[1], "https://");
	assert_null(l->urls[2]);
	contains(l->why[2], "non-ASCII");
	assert_null(l->urls[3]);
	contains(l->why[3], "control");
	assert_null(l->urls[4]);
	contains(l->why[4], "same URL as entry 0");
	assert_null(l->urls[5]);
	contains(l->why[5], "empty");
	assert_string_equal(l->urls[6], "https://n6.example/node.json");
	peerlist_free(l);
	l = list_of(v, lens, 2, true);
	assert_string_equal(l->urls[1], "http://n1.example/node.json");
	peerlist_free(l);
}

static void test_list_malformed_refused_whole(void **state)
{
	const char *v[] = {"https://n0.example/node.json", "https://n1.example/node.json"};
	struct peerlist *l = (struct peerlist *)1;
	size_t len;
	uint8_t *d = abi_build(v, NULL, 2, &len);

	assert_int_equal(registry_parse_list(d, len - 32, false, &l, why, sizeof(why)), -EINVAL);
	assert_null(l);
	contains(why, "past the end");
	assert_int_equal(registry_parse_list(d, 0, false, &l, why, sizeof(why)), -EINVAL);
	contains(why, "no contract");
	free(d);
}

/* Read once per new block; a lagging backend's older block never flaps the
 * list back; a chain that stays behind (reset) is read after a while. */
static void test_reads_only_newer_blocks(void **state)
{
	unsigned behind = 0, reads = 0;

	assert_true(registry_should_read(false, 0, 5, &behind)); /* nothing read yet */
	assert_true(registry_should_read(false, 9, 5, &behind)); /* the last read failed */
	assert_false(registry_should_read(true, 5, 5, &behind));
	assert_true(registry_should_read(true, 5, 6, &behind));
	for (int i = 0; i < 30; i++) /* backends answering 6 and 5 by turns */
		reads += registry_should_read(true, 6, i % 2 ? 6 : 5, &behind);
	assert_int_equal(reads, 0);
	for (int i = 0; i < REGISTRY_BEHIND_POLLS - 1; i++)
		assert_false(registry_should_read(true, 100, 3, &behind));
	assert_true(registry_should_read(true, 100, 3, &behind));
	assert_int_equal(behind, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec),
	    cmocka_unit_test(test_block_number),
	    cmocka_unit_test(test_answer_shape),
	    cmocka_unit_test(test_call_answer),
	    cmocka_unit_test(test_revert_refused),
	    cmocka_unit_test(test_list_by_the_gists_rules),
	    cmocka_unit_test(test_list_malformed_refused_whole),
	    cmocka_unit_test(test_reads_only_newer_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/* peerlist: the list document as an operator writes it in the Gist. */
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

#include "peerlist.h"

static char why[256];

static struct peerlist *ok(const char *doc, bool allow_http)
{
	struct peerlist *l = NULL;

	why[0] = '\0';
	assert_int_equal(peerlist_parse(doc, strlen(doc), allow_http, &l, why, sizeof(why)), 0);
	assert_non_null(l);
	return l;
}

/* Refused, with a reason containing want. */
static void refused(const char *doc, size_t len, bool allow_http, const char *want)
{
	struct peerlist *l = (struct peerlist *)1;

	why[0] = '\0';
	assert_int_equal(peerlist_parse(doc, len, allow_http, &l, why, sizeof(why)), -EINVAL);
	assert_null(l);
	if (!strstr(why, want))
		fail_msg("reason \"%s\" does not contain \"%s\"", why, want);
}

#define REFUSED(doc, allow, want) refused(doc, strlen(doc), allow, want)

/* Accepted with entry i alone skipped (reason containing want); the others
 * keep their positions. */
static void skipped(const char *doc, bool allow_http, size_t i, const char *want)
{
	struct peerlist *l = ok(doc, allow_http);

	assert_true(i < l->n);
	assert_null(l->urls[i]);
	assert_non_null(l->why[i]);
	if (!strstr(l->why[i], want))
		fail_msg("reason \"%s\" does not contain \"%s\"", l->why[i], want);
	for (size_t k = 0; k < l->n; k++)
		if (k != i) {
			assert_non_null(l->urls[k]);
			assert_null(l->why[k]);
		}
	peerlist_free(l);
}

/* A list of n distinct URLs, in the array form. */
static char *make_list(size_t n)
{
	char *doc = malloc(n * 48 + 8), *p = doc;

	assert_non_null(doc);
	p += sprintf(p, "[");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s\"https://node%zu-8080.example.com/node.json\"", i ? ", " : "", i);
	sprintf(p, "]");
	return doc;
}

static void test_both_forms(void **state)
{
	struct peerlist *a = ok("[\"https://a-8080.dstack.example/node.json\",\n"
				" \"https://b-8080.dstack.example/node.json\"]\n", false);
	struct peerlist *b = ok("{\"comment\": \"lab\", \"peers\": ["
				"\"https://a-8080.dstack.example/node.json\", "
				"\"https://b-8080.dstack.example/node.json\"]}", false);

	assert_int_equal(a->n, 2);
	assert_string_equal(a->urls[0], "https://a-8080.dstack.example/node.json");
	assert_string_equal(a->urls[1], "https://b-8080.dstack.example/node.json");
	assert_true(peerlist_equal(a, b));
	peerlist_free(a);
	peerlist_free(b);
}

static void test_empty_list(void **state)
{
	struct peerlist *a = ok("[]", false), *b = ok(" {\"peers\": []} ", false);

	assert_int_equal(a->n, 0);
	assert_int_equal(b->n, 0);
	assert_true(peerlist_equal(a, b));
	peerlist_free(a);
	peerlist_free(b);
}

static void test_shape_refused(void **state)
{
	struct peerlist *l;

	refused("", 0, false, "not JSON: empty document");
	REFUSED("[\"https://a.example/\"", false, "not JSON: ");
	REFUSED("[\"https://a.example/\",\n 5,]", false, "at line 2 column");
	REFUSED("5", false, "not an array nor an object");
	REFUSED("\"https://a.example/\"", false, "not an array nor an object");
	REFUSED("null", false, "not an array nor an object");
	REFUSED("{\"peers\": 5}", false, "\"peers\" is not an array");
	REFUSED("{\"peers\": {\"0\": \"https://a.example/\"}}", false, "\"peers\" is not an array");
	REFUSED("{\"other\": []}", false, "no \"peers\"");
	REFUSED("{\"peers\": [], \"peers\": []}", false, "not JSON: duplicate");
	/* Only the first len bytes count. */
	refused("[]]", 3, false, "not JSON: ");
	assert_int_equal(peerlist_parse("[]]", 2, false, &l, NULL, 0), 0);
	peerlist_free(l);
}

static void test_bad_entry_skipped_alone_keeps_positions(void **state)
{
	struct peerlist *l;

	/* As the prototype: the entry after a bad one keeps its position. */
	l = ok("[\"https://a.example/\", 3, \"https://c.example/\"]", false);
	assert_int_equal(l->n, 3);
	assert_string_equal(l->urls[0], "https://a.example/");
	assert_null(l->urls[1]);
	assert_string_equal(l->urls[2], "https://c.example/");
	peerlist_free(l);
	skipped("[\"https://a.example/\", \"https://b.example/\", \"https://c.example/\", 3]",
		false, 3, "not a string");
	skipped("[null]", false, 0, "not a string");
	skipped("[[\"https://a.example/\"]]", false, 0, "not a string");
	skipped("[{\"url\": \"https://a.example/\"}, \"https://b.example/\"]", false, 0,
		"not a string");
	skipped("[\"https://a.example/\", \"\"]", false, 1, "empty URL");
	skipped("[\"https://a.example/x y\"]", false, 0, "URL contains a space");
	skipped("[\" https://a.example/\"]", false, 0, "space, control character");
	skipped("[\"https://a.example/\\t\"]", false, 0, "space, control character");
	skipped("[\"https://a.example/\\u0001\"]", false, 0, "space, control character");
	skipped("[\"https://a.example/\\u007f\"]", false, 0, "space, control character");
	skipped("[\"https://a.example/\\u001b[31m\"]", false, 0, "control character");
	skipped("[\"https://a.example/\\u00e9\"]", false, 0, "non-ASCII");
	skipped("[\"https://\"]", false, 0, "URL has no host");
	skipped("[\"https:///node.json\"]", false, 0, "URL has no host");
	skipped("[\"a.example/node.json\"]", false, 0, "URL must start with https://");
	skipped("[\"HTTPS://a.example/\"]", false, 0, "must start with https://");
}

static void test_scheme(void **state)
{
	const char *http = "[\"https://a.example/\", \"http://10.0.0.2:8080/node.json\"]";
	struct peerlist *l;

	skipped(http, false, 1, "URL must start with https://");
	l = ok(http, true);
	assert_string_equal(l->urls[1], "http://10.0.0.2:8080/node.json");
	peerlist_free(l);
	skipped("[\"ftp://a.example/node.json\"]", false, 0, "must start with https://");
	skipped("[\"ftp://a.example/node.json\"]", true, 0, "must start with https:// or http://");
	skipped("[\"http://\"]", true, 0, "URL has no host");
}

static void test_url_length(void **state)
{
	char *doc = malloc(PEERLIST_MAX_URL + 16);
	struct peerlist *l;

	assert_non_null(doc);
	strcpy(doc, "[\"https://");
	memset(doc + 10, 'a', PEERLIST_MAX_URL - 8);
	strcpy(doc + 2 + PEERLIST_MAX_URL, "\"]");
	l = ok(doc, false);
	assert_int_equal(strlen(l->urls[0]), PEERLIST_MAX_URL);
	peerlist_free(l);
	strcpy(doc + 2 + PEERLIST_MAX_URL, "a\"]");
	skipped(doc, false, 0, "URL of 2049 bytes, at most 2048");
	free(doc);
}

static void test_duplicate_url_skipped_keeps_first_position(void **state)
{
	skipped("[\"https://a.example/\", \"https://b.example/\", \"https://c.example/\","
		" \"https://d.example/\", \"https://b.example/\"]",
		false, 4, "same URL as entry 1");
	/* Same URL once escaped, once not: still the same URL. */
	skipped("[\"https://a.example/\", \"https:\\/\\/a.example\\/\"]", false, 1,
		"same URL as entry 0");
}

static void test_count(void **state)
{
	char *doc = make_list(PEERLIST_MAX_PEERS);
	struct peerlist *l = ok(doc, false);

	assert_int_equal(l->n, 245);
	assert_string_equal(l->urls[244], "https://node244-8080.example.com/node.json");
	peerlist_free(l);
	free(doc);
	doc = make_list(PEERLIST_MAX_PEERS + 1);
	REFUSED(doc, false, "246 entries, at most 245");
	free(doc);
}

static void test_size(void **state)
{
	char *doc = malloc(PEERLIST_MAX_BYTES + 2);
	struct peerlist *l;

	assert_non_null(doc);
	/* Whitespace padding up to exactly the limit is fine, one byte more is not. */
	memset(doc, ' ', PEERLIST_MAX_BYTES + 1);
	memcpy(doc, "[\"https://a.example/\"]", 22);
	doc[PEERLIST_MAX_BYTES + 1] = '\0';
	assert_int_equal(peerlist_parse(doc, PEERLIST_MAX_BYTES, false, &l, why, sizeof(why)), 0);
	assert_int_equal(l->n, 1);
	peerlist_free(l);
	refused(doc, PEERLIST_MAX_BYTES + 1, false, "262145 bytes, at most 262144");
	free(doc);
}

static void test_equal(void **state)
{
	struct peerlist *a = ok("[\"https://a.example/\", \"https://b.example/\"]", false);
	struct peerlist *b = ok("{\"peers\": [\"https://a.example/\", \"https://b.example/\"]}", false);
	struct peerlist *swapped = ok("[\"https://b.example/\", \"https://a.example/\"]", false);
	struct peerlist *shorter = ok("[\"https://a.example/\"]", false);
	struct peerlist *other = ok("[\"https://a.example/\", \"https://c.example/\"]", false);

	assert_true(peerlist_equal(a, b));
	assert_true(peerlist_equal(a, a));
	assert_false(peerlist_equal(a, swapped));
	assert_false(peerlist_equal(a, shorter));
	assert_false(peerlist_equal(shorter, a));
	assert_false(peerlist_equal(a, other));
	assert_false(peerlist_equal(a, NULL));
	{
		struct peerlist *h1 = ok("[\"https://a.example/\", 1]", false);
		struct peerlist *h2 = ok("[\"https://a.example/\", 2]", false);
		struct peerlist *h3 = ok("[\"https://a.example/\", \"\"]", false);

		assert_true(peerlist_equal(h1, h2)); /* both skipped for the same reason */
		assert_false(peerlist_equal(h1, h3));
		assert_false(peerlist_equal(h1, a));
		peerlist_free(h1);
		peerlist_free(h2);
		peerlist_free(h3);
	}
	assert_true(peerlist_equal(NULL, NULL));
	peerlist_free(a);
	peerlist_free(b);
	peerlist_free(swapped);
	peerlist_free(shorter);
	peerlist_free(other);
	peerlist_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_forms),  cmocka_unit_test(test_empty_list),
		cmocka_unit_test(test_shape_refused), cmocka_unit_test(test_bad_entry_skipped_alone_keeps_positions),
		cmocka_unit_test(test_scheme),      cmocka_unit_test(test_url_length),
		cmocka_unit_test(test_duplicate_url_skipped_keeps_first_position),   cmocka_unit_test(test_count),
		cmocka_unit_test(test_size),        cmocka_unit_test(test_equal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

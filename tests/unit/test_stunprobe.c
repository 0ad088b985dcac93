// SPDX-License-Identifier: MIT
/* What controld publishes as "nat" and "mapping" from the STUN answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "stunprobe.h"

static void answer(struct stunprobe_server *s, bool ok, const char *ip, uint16_t port)
{
	memset(s, 0, sizeof(*s));
	s->ok = ok;
	s->mapped.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &s->mapped.sin_addr);
	s->mapped.sin_port = htons(port);
}

static bool never_local(const struct in_addr *a)
{
	return false;
}

static bool always_local(const struct in_addr *a)
{
	return true;
}

static void test_no_answer(void **state)
{
	struct stunprobe_server s[2];
	struct stunprobe_summary sum;

	answer(&s[0], false, "0.0.0.0", 0);
	answer(&s[1], false, "0.0.0.0", 0);
	stunprobe_classify(s, 2, 51820, never_local, &sum);
	assert_false(sum.has_public);
	assert_null(sum.nat);
	assert_int_equal(sum.n_ok, 0);
}

static void test_port_preserving(void **state)
{
	struct stunprobe_server s[2];
	struct stunprobe_summary sum;

	answer(&s[0], true, "203.0.113.5", 51820);
	answer(&s[1], true, "203.0.113.5", 51820);
	stunprobe_classify(s, 2, 51820, never_local, &sum);
	assert_true(sum.has_public);
	assert_string_equal(inet_ntoa(sum.public_ep.sin_addr), "203.0.113.5");
	assert_int_equal(ntohs(sum.public_ep.sin_port), 51820);
	assert_string_equal(sum.nat, "port-preserving");
	assert_string_equal(sum.mapping, "endpoint-independent");
}

static void test_port_remapping(void **state)
{
	struct stunprobe_server s[2];
	struct stunprobe_summary sum;

	answer(&s[0], true, "203.0.113.5", 40007);
	answer(&s[1], true, "203.0.113.5", 40007);
	stunprobe_classify(s, 2, 51820, never_local, &sum);
	assert_string_equal(sum.nat, "port-remapping");
	assert_int_equal(ntohs(sum.public_ep.sin_port), 40007);
	assert_string_equal(sum.mapping, "endpoint-independent");
}

static void test_symmetric(void **state)
{
	struct stunprobe_server s[3];
	struct stunprobe_summary sum;

	answer(&s[0], true, "203.0.113.5", 40007);
	answer(&s[1], false, "0.0.0.0", 0);
	answer(&s[2], true, "203.0.113.5", 52311);
	stunprobe_classify(s, 3, 51820, never_local, &sum);
	assert_string_equal(sum.nat, "symmetric");
	assert_string_equal(sum.mapping, "endpoint-dependent");
	assert_int_equal(sum.n_ok, 2);
	assert_int_equal(sum.n_servers, 3);
}

static void test_one_answer_cannot_tell_mapping(void **state)
{
	struct stunprobe_server s[2];
	struct stunprobe_summary sum;

	answer(&s[0], false, "0.0.0.0", 0);
	answer(&s[1], true, "203.0.113.5", 51820);
	stunprobe_classify(s, 2, 51820, never_local, &sum);
	assert_true(sum.has_public);
	assert_null(sum.mapping);
	assert_string_equal(sum.nat, "port-preserving");
}

static void test_open(void **state)
{
	struct stunprobe_server s[2];
	struct stunprobe_summary sum;

	answer(&s[0], true, "198.18.0.1", 51820);
	answer(&s[1], true, "198.18.0.1", 51820);
	stunprobe_classify(s, 2, 51820, always_local, &sum);
	assert_string_equal(sum.nat, "open");
	/* Own address but another port: something in between remaps. */
	answer(&s[0], true, "198.18.0.1", 1234);
	answer(&s[1], true, "198.18.0.1", 1234);
	stunprobe_classify(s, 2, 51820, always_local, &sum);
	assert_string_equal(sum.nat, "port-remapping");
}

/* One server lies about the address, and is asked first: two honest ones outvote it. */
static void test_three_servers_outvote_a_lying_address(void **state)
{
	struct stunprobe_server s[3];
	struct stunprobe_summary sum;

	answer(&s[0], true, "203.0.113.9", 1234);
	answer(&s[1], true, "198.51.100.7", 40007);
	answer(&s[2], true, "198.51.100.7", 40007);
	stunprobe_classify(s, 3, 51820, never_local, &sum);
	assert_true(sum.has_public);
	assert_false(sum.disagree);
	assert_string_equal(inet_ntoa(sum.public_ep.sin_addr), "198.51.100.7");
	assert_int_equal(ntohs(sum.public_ep.sin_port), 40007);
	assert_string_equal(sum.nat, "port-remapping");
	assert_string_equal(sum.mapping, "endpoint-independent");
	assert_int_equal(sum.n_agree, 2);
	assert_int_equal(sum.n_ok, 3);
}

/* A port liar on the right address does not make the NAT look symmetric. */
static void test_three_servers_outvote_a_lying_port(void **state)
{
	struct stunprobe_server s[3];
	struct stunprobe_summary sum;

	answer(&s[0], true, "198.51.100.7", 1234);
	answer(&s[1], true, "198.51.100.7", 51820);
	answer(&s[2], true, "198.51.100.7", 51820);
	stunprobe_classify(s, 3, 51820, never_local, &sum);
	assert_int_equal(ntohs(sum.public_ep.sin_port), 51820);
	assert_string_equal(sum.nat, "port-preserving");
	assert_string_equal(sum.mapping, "endpoint-independent");
	assert_int_equal(sum.n_agree, 2);
}

/* Two servers, two addresses: no NAT explains it, and nobody can tell who lies. */
static void test_two_servers_disagreeing_on_the_address_publish_nothing(void **state)
{
	struct stunprobe_server s[3];
	struct stunprobe_summary sum;

	answer(&s[0], true, "203.0.113.9", 1234);
	answer(&s[1], true, "198.51.100.7", 51820);
	stunprobe_classify(s, 2, 51820, never_local, &sum);
	assert_false(sum.has_public);
	assert_true(sum.disagree);
	assert_null(sum.nat);
	assert_int_equal(sum.n_ok, 2);
	/* The same with a third server that did not answer. */
	answer(&s[2], false, "0.0.0.0", 0);
	stunprobe_classify(s, 3, 51820, never_local, &sum);
	assert_false(sum.has_public);
	assert_true(sum.disagree);
}

/* No address held by more than half: three ways, or two against two. */
static void test_no_majority_publishes_nothing(void **state)
{
	struct stunprobe_server s[4];
	struct stunprobe_summary sum;

	answer(&s[0], true, "203.0.113.9", 1234);
	answer(&s[1], true, "198.51.100.7", 51820);
	answer(&s[2], true, "192.0.2.44", 51820);
	stunprobe_classify(s, 3, 51820, never_local, &sum);
	assert_false(sum.has_public);
	assert_true(sum.disagree);
	answer(&s[2], true, "203.0.113.9", 1234);
	answer(&s[3], true, "198.51.100.7", 51820);
	stunprobe_classify(s, 4, 51820, never_local, &sum);
	assert_false(sum.has_public);
	assert_true(sum.disagree);
}

/* Under a symmetric NAT every server sees another port, but the same address:
 * a liar on another address is outvoted and the NAT is still symmetric. */
static void test_symmetric_with_a_lying_address(void **state)
{
	struct stunprobe_server s[3];
	struct stunprobe_summary sum;

	answer(&s[0], true, "203.0.113.9", 1234);
	answer(&s[1], true, "198.51.100.7", 40007);
	answer(&s[2], true, "198.51.100.7", 52311);
	stunprobe_classify(s, 3, 51820, never_local, &sum);
	assert_true(sum.has_public);
	assert_string_equal(inet_ntoa(sum.public_ep.sin_addr), "198.51.100.7");
	assert_string_equal(sum.nat, "symmetric");
	assert_string_equal(sum.mapping, "endpoint-dependent");
	assert_int_equal(sum.n_agree, 2);
	/* Three honest servers, three ports. */
	answer(&s[0], true, "198.51.100.7", 61000);
	stunprobe_classify(s, 3, 51820, never_local, &sum);
	assert_string_equal(sum.nat, "symmetric");
	assert_int_equal(sum.n_agree, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_answer),
		cmocka_unit_test(test_port_preserving),
		cmocka_unit_test(test_port_remapping),
		cmocka_unit_test(test_symmetric),
		cmocka_unit_test(test_one_answer_cannot_tell_mapping),
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_three_servers_outvote_a_lying_address),
		cmocka_unit_test(test_three_servers_outvote_a_lying_port),
		cmocka_unit_test(test_two_servers_disagreeing_on_the_address_publish_nothing),
		cmocka_unit_test(test_no_majority_publishes_nothing),
		cmocka_unit_test(test_symmetric_with_a_lying_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

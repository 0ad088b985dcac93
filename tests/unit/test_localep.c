// SPDX-License-Identifier: MIT
/* localep: which interface addresses become local candidates. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "localep.h"

static struct localep_if mk(const char *name, unsigned flags, const char *ip)
{
	struct localep_if f = {.flags = flags};

	strncpy(f.name, name, sizeof(f.name) - 1);
	inet_pton(AF_INET, ip, &f.addr);
	return f;
}

static void test_pick_filters_and_caps(void **state)
{
	struct mesh_params p = {.overlay_len = 24, .base_offset = 10};
	struct localep_if ifs[] = {
	    mk("lo", IFF_UP | IFF_LOOPBACK, "127.0.0.1"),
	    mk("eth0", IFF_UP, "192.168.1.2"),
	    mk("wg0", IFF_UP, "10.88.0.12"),   /* the WireGuard interface */
	    mk("eth1", IFF_UP, "10.88.0.99"),  /* inside the overlay anyway */
	    mk("eth2", 0, "172.16.0.5"),       /* down */
	    mk("eth3", IFF_UP, "169.254.3.3"), /* link-local */
	    mk("eth4", IFF_UP, "192.168.1.2"), /* the same address again */
	    mk("gw", IFF_UP, "100.64.2.2"),
	    mk("eth5", IFF_UP, "10.0.0.2"),
	};
	struct sockaddr_in out[8];
	char s[INET_ADDRSTRLEN];
	size_t n;

	inet_pton(AF_INET, "10.88.0.0", &p.overlay_net);
	n = localep_pick(ifs, sizeof(ifs) / sizeof(ifs[0]), "wg0", &p, 51820, out, 8);
	assert_int_equal(n, 3);
	assert_string_equal(inet_ntop(AF_INET, &out[0].sin_addr, s, sizeof(s)), "192.168.1.2");
	assert_string_equal(inet_ntop(AF_INET, &out[1].sin_addr, s, sizeof(s)), "100.64.2.2");
	assert_string_equal(inet_ntop(AF_INET, &out[2].sin_addr, s, sizeof(s)), "10.0.0.2");
	assert_int_equal(ntohs(out[2].sin_port), 51820);
	assert_int_equal(localep_pick(ifs, sizeof(ifs) / sizeof(ifs[0]), "wg0", &p, 51820, out, 2),
			 2);
}

/* The system's own list: loopback never appears. */
static void test_list_runs_unprivileged(void **state)
{
	struct mesh_params p = {.overlay_len = 24};
	struct sockaddr_in out[8];
	size_t n = 99;

	inet_pton(AF_INET, "10.88.0.0", &p.overlay_net);
	assert_int_equal(localep_list(NULL, &p, 51820, out, 8, &n), 0);
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		assert_int_not_equal(ntohl(out[i].sin_addr.s_addr) >> 24, 127);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pick_filters_and_caps),
	    cmocka_unit_test(test_list_runs_unprivileged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

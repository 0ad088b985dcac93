// SPDX-License-Identifier: MIT
/* controld's configuration: environment, flags, defaults, and clear refusals. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

struct run {
	struct config c;
	int ret;
	char out[8192], err[1024];
};

/* Parse with the given environment (NULL-terminated) and arguments. */
static void run(struct run *r, char **env, int argc, char **argv)
{
	FILE *out = fmemopen(r->out, sizeof(r->out), "w");
	FILE *err = fmemopen(r->err, sizeof(r->err), "w");

	memset(r->out, 0, sizeof(r->out));
	memset(r->err, 0, sizeof(r->err));
	r->ret = config_parse(&r->c, argc, argv, env, out, err);
	fclose(out);
	fclose(err);
}

static char *ENV_OK[] = { "GIST_URL=https://gist.example/list.json", NULL };

static void test_defaults(void **state)
{
	struct run r;
	char *argv[] = { "controld", NULL };

	run(&r, ENV_OK, 1, argv);
	assert_int_equal(r.ret, 0);
	assert_string_equal(r.c.gist_url, "https://gist.example/list.json");
	assert_string_equal(inet_ntoa(r.c.overlay_net), "10.88.0.0");
	assert_int_equal(r.c.overlay_len, 24);
	assert_int_equal(r.c.base_offset, 10);
	assert_int_equal(ntohs(r.c.listen.sin_port), 8080);
	assert_string_equal(r.c.agent_socket, "/run/p2pwg/agent.sock");
	assert_int_equal(r.c.n_stun, 2);
	assert_string_equal(r.c.stun_servers[0], "stun.l.google.com:19302");
	assert_int_equal(r.c.poll_interval_s, 15);
	assert_int_equal(r.c.test_interval_s, 10);
	assert_int_equal(r.c.http_timeout_ms, 5000);
	assert_int_equal(r.c.log_level, LOG_LVL_INFO);
	assert_false(r.c.allow_http);
	assert_false(r.c.allow_root);
}

static void test_env_then_flags(void **state)
{
	struct run r;
	char *env[] = { "GIST_URL=https://a/l", "P2PWG_POLL_INTERVAL=30", "P2PWG_OVERLAY=10.99.0.0/16",
			"P2PWG_STUN_SERVERS=1.2.3.4:3478,5.6.7.8:19302,stun.x:1", "P2PWG_LOG_LEVEL=debug",
			NULL };
	char *argv[] = { "controld", "--poll-interval", "7", "--listen=127.0.0.1:9090", NULL };

	run(&r, env, 4, argv);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.c.poll_interval_s, 7); /* the flag wins */
	assert_int_equal(r.c.overlay_len, 16);
	assert_int_equal(r.c.n_stun, 3);
	assert_string_equal(r.c.stun_servers[2], "stun.x:1");
	assert_int_equal(r.c.log_level, LOG_LVL_DEBUG);
	assert_string_equal(inet_ntoa(r.c.listen.sin_addr), "127.0.0.1");
	assert_int_equal(ntohs(r.c.listen.sin_port), 9090);
}

/* Each bad value is refused, and the message names the variable. */
static void test_bad_values_named(void **state)
{
	static const char *bad[][2] = {
		{ "P2PWG_POLL_INTERVAL=0", "P2PWG_POLL_INTERVAL" },
		{ "P2PWG_POLL_INTERVAL=3601", "P2PWG_POLL_INTERVAL" },
		{ "P2PWG_POLL_INTERVAL=5s", "P2PWG_POLL_INTERVAL" },
		{ "P2PWG_TEST_INTERVAL=-1", "P2PWG_TEST_INTERVAL" },
		{ "P2PWG_HTTP_TIMEOUT=121", "P2PWG_HTTP_TIMEOUT" },
		{ "P2PWG_OVERLAY=10.88.0.1/24", "P2PWG_OVERLAY" },
		{ "P2PWG_OVERLAY=10.88.0.0/31", "P2PWG_OVERLAY" },
		{ "P2PWG_OVERLAY=banana", "P2PWG_OVERLAY" },
		{ "P2PWG_LISTEN=8080", "P2PWG_LISTEN" },
		{ "P2PWG_LISTEN=0.0.0.0:0", "P2PWG_LISTEN" },
		{ "P2PWG_STATUS_LISTEN=8081", "P2PWG_STATUS_LISTEN" },
		{ "P2PWG_STATUS_LISTEN=127.0.0.1:0", "P2PWG_STATUS_LISTEN" },
		{ "P2PWG_SELF_URL=ftp://x/node.json", "P2PWG_SELF_URL" },
		{ "P2PWG_STUN_SERVERS=stun.x", "P2PWG_STUN_SERVERS" },
		{ "P2PWG_STUN_SERVERS=a:1,b:2,c:3,d:4,e:5", "P2PWG_STUN_SERVERS" },
		{ "P2PWG_STUN_SERVERS=a:70000", "P2PWG_STUN_SERVERS" },
		{ "P2PWG_LOG_LEVEL=loud", "P2PWG_LOG_LEVEL" },
		{ "P2PWG_ALLOW_HTTP=maybe", "P2PWG_ALLOW_HTTP" },
		{ "P2PWG_AGENT_SOCKET=", "P2PWG_AGENT_SOCKET" },
		{ "P2PWG_BASE_OFFSET=255", "P2PWG_BASE_OFFSET" },
		{ "GIST_URL=ftp://x/l", "GIST_URL" },
		{ "GIST_URL=https://x/a b", "GIST_URL" },
	};
	char *argv[] = { "controld", NULL };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* The first definition of a name counts: the bad one comes first. */
		char *env[] = { (char *)bad[i][0], "GIST_URL=https://a/l", NULL };
		struct run r;

		run(&r, env, 1, argv);
		if (r.ret >= 0 || !strstr(r.err, bad[i][1]))
			fail_msg("%s: ret %d, message '%s'", bad[i][0], r.ret, r.err);
	}
}

static void test_gist_url_rules(void **state)
{
	struct run r;
	char *none[] = { NULL };
	char *argv1[] = { "controld", NULL };
	char *argv2[] = { "controld", "--gist-url", "http://lab/list.json", NULL };
	char *argv3[] = { "controld", "--gist-url", "http://lab/list.json", "--allow-http", NULL };
	char *argv4[] = { "controld", "--allow-http", "--gist-url", "http://lab/list.json", NULL };

	run(&r, none, 1, argv1);
	assert_true(r.ret < 0);
	assert_non_null(strstr(r.err, "GIST_URL"));
	run(&r, none, 3, argv2);
	assert_true(r.ret < 0);
	assert_non_null(strstr(r.err, "https://"));
	/* --allow-http counts wherever it stands on the line. */
	run(&r, none, 4, argv3);
	assert_int_equal(r.ret, 0);
	run(&r, none, 4, argv4);
	assert_int_equal(r.ret, 0);
	assert_true(r.c.allow_http);
}

/* /status and /metrics live on a private listener, loopback unless told. */
static void test_status_listener_private_by_default(void **state)
{
	struct run r;
	char *argv[] = { "controld", NULL };
	char *argv_off[] = { "controld", "--status-listen", "off", NULL };
	char *env_other[] = { "GIST_URL=https://a/l", "P2PWG_STATUS_LISTEN=10.0.0.1:9100", NULL };
	char *env_empty[] = { "GIST_URL=https://a/l", "P2PWG_STATUS_LISTEN=", NULL };

	run(&r, ENV_OK, 1, argv);
	assert_int_equal(r.ret, 0);
	assert_string_equal(inet_ntoa(r.c.status_listen.sin_addr), "127.0.0.1");
	assert_int_equal(ntohs(r.c.status_listen.sin_port), 8081);
	run(&r, env_other, 1, argv);
	assert_int_equal(r.ret, 0);
	assert_string_equal(inet_ntoa(r.c.status_listen.sin_addr), "10.0.0.1");
	assert_int_equal(ntohs(r.c.status_listen.sin_port), 9100);
	run(&r, ENV_OK, 3, argv_off);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.c.status_listen.sin_port, 0);
	run(&r, env_empty, 1, argv);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.c.status_listen.sin_port, 0);
}

static void test_help_and_unknown(void **state)
{
	struct run r;
	char *help[] = { "controld", "--help", NULL };
	char *unknown[] = { "controld", "--frobnicate", NULL };
	char *extra[] = { "controld", "stray", NULL };

	run(&r, ENV_OK, 2, help);
	assert_int_equal(r.ret, 1);
	assert_non_null(strstr(r.out, "GIST_URL"));
	assert_non_null(strstr(r.out, "P2PWG_STUN_SERVERS"));
	assert_non_null(strstr(r.out, "(default 15)"));
	run(&r, ENV_OK, 2, unknown);
	assert_true(r.ret < 0);
	assert_non_null(strstr(r.err, "--frobnicate"));
	run(&r, ENV_OK, 2, extra);
	assert_true(r.ret < 0);
	assert_non_null(strstr(r.err, "stray"));
}

/* The list from a contract stands in for GIST_URL; never both at once. */
static void test_registry_instead_of_gist(void **state)
{
	struct run r;
	char *argv[] = { "controld", NULL };
	char *reg[] = { "P2PWG_REGISTRY=0x5FbDB2315678afecb367f032d93F642f64180aa3@https://rpc.example/", NULL };
	char *both[] = { "GIST_URL=https://gist.example/list.json",
			 "P2PWG_REGISTRY=0x5fbdb2315678afecb367f032d93f642f64180aa3@https://rpc.example/", NULL };
	char *bad[] = { "P2PWG_REGISTRY=https://rpc.example/", NULL };
	char *none[] = { NULL };

	run(&r, reg, 1, argv);
	assert_int_equal(r.ret, 0);
	assert_string_equal(r.c.gist_url, "");
	run(&r, both, 1, argv);
	assert_int_equal(r.ret, -EINVAL);
	assert_non_null(strstr(r.err, "both set"));
	run(&r, bad, 1, argv);
	assert_int_equal(r.ret, -EINVAL);
	assert_non_null(strstr(r.err, "P2PWG_REGISTRY"));
	run(&r, none, 1, argv);
	assert_int_equal(r.ret, -EINVAL);
	assert_non_null(strstr(r.err, "GIST_URL"));
}

/* Attested membership: a verifier needs an allow-list, a list needs the
 * verifier, and the lists hold hex ids. */
static void test_attest_settings(void **state)
{
	static const char *bad[][3] = {
		{ "P2PWG_VERIFIER_URL=http://v/verify", "", "P2PWG_ALLOW_COMPOSE_HASHES" },
		{ "P2PWG_ALLOW_APP_IDS=a1", "", "P2PWG_VERIFIER_URL" },
		{ "P2PWG_VERIFIER_URL=ftp://v/verify", "P2PWG_ALLOW_APP_IDS=a1", "P2PWG_VERIFIER_URL" },
		{ "P2PWG_VERIFIER_URL=http://v/verify", "P2PWG_ALLOW_APP_IDS=a1,zz", "P2PWG_ALLOW_APP_IDS" },
		{ "P2PWG_VERIFIER_URL=http://v/verify", "P2PWG_ALLOW_COMPOSE_HASHES=0x", "P2PWG_ALLOW_COMPOSE_HASHES" },
		{ "P2PWG_ATTEST_MAX_AGE=29", "", "P2PWG_ATTEST_MAX_AGE" },
	};
	char *argv[] = { "controld", NULL };
	struct run r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *env[] = { (char *)bad[i][0], (char *)bad[i][1], "GIST_URL=https://a/l", NULL };

		run(&r, env, 1, argv);
		if (r.ret >= 0 || !strstr(r.err, bad[i][2]))
			fail_msg("%s %s: ret %d, message '%s'", bad[i][0], bad[i][1], r.ret, r.err);
	}
	{
		char *env[] = { "P2PWG_VERIFIER_URL=http://v/verify", "P2PWG_ALLOW_APP_IDS=0xA1, b2",
				"GIST_URL=https://a/l", NULL };

		run(&r, env, 1, argv);
		assert_int_equal(r.ret, 0);
		assert_string_equal(r.c.verifier_url, "http://v/verify");
		assert_string_equal(r.c.dstack_socket, "/var/run/dstack.sock");
		assert_int_equal(r.c.attest_max_age_s, 3600);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_env_then_flags),
		cmocka_unit_test(test_bad_values_named),
		cmocka_unit_test(test_gist_url_rules),
		cmocka_unit_test(test_status_listener_private_by_default),
		cmocka_unit_test(test_help_and_unknown),
		cmocka_unit_test(test_registry_instead_of_gist),
		cmocka_unit_test(test_attest_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/* resolver: lookups answered, unanswered and cancelled, all inside the loop,
 * against a DNS server in this process (on 127.0.0.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "resolver.h"

struct fakedns {
	int fd;
	struct loop_watch *w;
	bool answer;
	int queries;
	char servers[32]; /* "127.0.0.1:port" */
};

/* Answer an A query with 198.51.100.7, or drop it. */
static void on_query(void *arg, int fd, int events)
{
	struct fakedns *d = arg;
	static const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 7 };
	uint8_t b[512];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(fd, b, sizeof(b) - sizeof(rr), 0, (struct sockaddr *)&from, &fl);
	size_t q = 12;

	if (n < 12)
		return;
	d->queries++;
	if (!d->answer)
		return;
	while (q < (size_t)n && b[q])
		q += 1 + b[q];
	q += 1 + 4; /* root label, type, class */
	if (q > (size_t)n)
		return;
	b[2] = 0x81; /* response, recursion desired and available */
	b[3] = 0x80;
	b[6] = 0, b[7] = 1;		       /* one answer */
	b[8] = b[9] = b[10] = b[11] = 0; /* no authority, no additional (EDNS) */
	memcpy(b + q, rr, sizeof(rr));
	sendto(fd, b, q + sizeof(rr), 0, (struct sockaddr *)&from, fl);
}

static void fakedns_start(struct loop *l, struct fakedns *d, bool answer)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(d, 0, sizeof(*d));
	d->answer = answer;
	d->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(d->fd >= 0);
	assert_int_equal(bind(d->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(d->fd, (struct sockaddr *)&a, &al), 0);
	snprintf(d->servers, sizeof(d->servers), "127.0.0.1:%u", ntohs(a.sin_port));
	d->w = loop_watch_new(l, d->fd, on_query, d);
	assert_non_null(d->w);
	loop_watch_set(d->w, true, false);
}

static void fakedns_stop(struct fakedns *d)
{
	loop_watch_free(d->w);
	close(d->fd);
}

struct result {
	struct loop *l;
	int calls;
	struct in_addr addr;
	char error[128];
	uint64_t at;
};

static void on_result(void *arg, const struct in_addr *a, const char *error)
{
	struct result *r = arg;

	r->calls++;
	r->at = loop_now(r->l);
	if (a)
		r->addr = *a;
	else
		snprintf(r->error, sizeof(r->error), "%s", error);
	loop_stop(r->l);
}

/* A timer ticking every 50 ms: the largest gap between ticks shows a stall. */
struct ticker {
	struct loop *l;
	struct loop_timer t;
	uint64_t last, worst;
};

static void on_tick(void *arg)
{
	struct ticker *k = arg;
	uint64_t now = loop_now(k->l);

	if (now - k->last > k->worst)
		k->worst = now - k->last;
	k->last = now;
	loop_timer_arm(k->l, &k->t, 50);
}

static void on_guard(void *arg)
{
	loop_stop(arg);
}

static void run(struct loop *l, uint64_t guard_ms)
{
	struct loop_timer guard = { .cb = on_guard, .arg = l };

	loop_timer_arm(l, &guard, guard_ms);
	loop_run(l);
	loop_timer_remove(l, &guard);
}

/* loop_free leaves the evloop to process exit; a test tears it down. */
static void done(struct loop *l)
{
	h2o_evloop_t *ev = loop_h2o(l);

	loop_free(l);
	h2o_evloop_destroy(ev);
}

static void test_answer_comes_through_the_loop(void **state)
{
	struct loop *l = loop_new();
	struct resolver *r;
	struct fakedns d;
	struct result res = { .l = l };

	assert_non_null(l);
	fakedns_start(l, &d, true);
	assert_int_equal(resolver_new(l, &r), 0);
	assert_int_equal(resolver_set_servers(r, d.servers), 0);
	assert_int_equal(resolver_lookup(r, "stun.example.test", on_result, &res), 0);
	run(l, 3000);
	assert_int_equal(res.calls, 1);
	assert_string_equal(inet_ntoa(res.addr), "198.51.100.7");
	assert_true(d.queries >= 1);
	resolver_free(r);
	fakedns_stop(&d);
	done(l);
}

/* The server drops every query: the loop keeps its timers while the lookup
 * waits, and the lookup fails after a few seconds with a reason. */
static void test_unanswered_lookup_stalls_nothing(void **state)
{
	struct loop *l = loop_new();
	struct resolver *r;
	struct fakedns d;
	struct result res = { .l = l };
	struct ticker k = { .l = l };
	uint64_t start;

	fakedns_start(l, &d, false);
	assert_int_equal(resolver_new(l, &r), 0);
	assert_int_equal(resolver_set_servers(r, d.servers), 0);
	k.t = (struct loop_timer){ .cb = on_tick, .arg = &k };
	start = k.last = loop_now(l);
	loop_timer_arm(l, &k.t, 50);
	assert_int_equal(resolver_lookup(r, "stun.example.test", on_result, &res), 0);
	run(l, 10000);
	assert_int_equal(res.calls, 1);
	assert_true(res.error[0]);
	assert_true(d.queries >= 2); /* retried */
	assert_true(res.at - start < 8000);
	printf("lookup gave up after %llu ms (%s); longest timer gap %llu ms\n",
	       (unsigned long long)(res.at - start), res.error, (unsigned long long)k.worst);
	assert_true(k.worst < 500);
	loop_timer_remove(l, &k.t);
	resolver_free(r);
	fakedns_stop(&d);
	done(l);
}

/* An address needs no server at all. */
static void test_numeric_needs_no_server(void **state)
{
	struct loop *l = loop_new();
	struct resolver *r;
	struct fakedns d;
	struct result res = { .l = l };

	fakedns_start(l, &d, true);
	assert_int_equal(resolver_new(l, &r), 0);
	assert_int_equal(resolver_set_servers(r, d.servers), 0);
	assert_int_equal(resolver_lookup(r, "192.0.2.44", on_result, &res), 0);
	if (!res.calls)
		run(l, 1000);
	assert_int_equal(res.calls, 1);
	assert_string_equal(inet_ntoa(res.addr), "192.0.2.44");
	assert_int_equal(d.queries, 0);
	resolver_free(r);
	fakedns_stop(&d);
	done(l);
}

/* Freeing the resolver cancels a pending lookup: its callback never runs. */
static void test_free_cancels(void **state)
{
	struct loop *l = loop_new();
	struct resolver *r;
	struct fakedns d;
	struct result res = { .l = l };

	fakedns_start(l, &d, false);
	assert_int_equal(resolver_new(l, &r), 0);
	assert_int_equal(resolver_set_servers(r, d.servers), 0);
	assert_int_equal(resolver_lookup(r, "stun.example.test", on_result, &res), 0);
	run(l, 200);
	resolver_free(r);
	run(l, 200);
	assert_int_equal(res.calls, 0);
	fakedns_stop(&d);
	done(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answer_comes_through_the_loop),
		cmocka_unit_test(test_unanswered_lookup_stalls_nothing),
		cmocka_unit_test(test_numeric_needs_no_server),
		cmocka_unit_test(test_free_cancels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

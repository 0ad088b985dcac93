// SPDX-License-Identifier: MIT
/* The interface watcher keeps what a rebuild restores without reading the
 * interface back after each change (a read of 245 peers from wireguard-go
 * costs milliseconds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ifwatch.h"

static struct {
	struct wg_device *dev; /* the "interface" */
	int n_get, n_set;
} f;

static int fake_get(struct wg_backend *be, const char *ifname, struct wg_device **out)
{
	(void)be;
	(void)ifname;
	f.n_get++;
	return wg_device_dup(f.dev, out);
}

/* Adds the change's peers (enough for these tests). */
static int fake_set(struct wg_backend *be, const struct wg_device *change)
{
	(void)be;
	f.n_set++;
	for (size_t i = 0; i < change->n_peers; i++) {
		struct wg_peer *p = wg_device_add_peer(f.dev);

		assert_non_null(p);
		memcpy(p->public_key, change->peers[i].public_key, WG_KEY_LEN);
	}
	return 0;
}

static struct wg_backend fake = { .name = "userspace", .get = fake_get, .set = fake_set };
static const struct backend_opts opts = { .ifname = "p2pwg0" };
static const uint8_t priv[WG_KEY_LEN] = { 1 };

static struct wg_device *one_peer(uint8_t key0)
{
	struct wg_device *d = wg_device_new("p2pwg0");
	struct wg_peer *p = wg_device_add_peer(d);

	p->public_key[0] = key0;
	return d;
}

static void test_a_change_is_not_read_back(void **state)
{
	struct ifwatch w;
	struct wg_device *change = one_peer(7), *now = NULL;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.dev = wg_device_new("p2pwg0");
	ifwatch_init(&w, &opts, &fake, 1, priv);
	assert_int_equal(f.n_get, 1); /* the adopted interface's peers */

	assert_int_equal(w.wrap.set(&w.wrap, change), 0);
	assert_int_equal(f.n_set, 1);
	assert_int_equal(f.n_get, 1);
	/* A rebuild now would restore the last read and this change. */
	assert_non_null(w.pending);
	assert_int_equal(w.pending->peers[0].public_key[0], 7);

	/* The agent's own read (its answer) is what a rebuild restores next. */
	assert_int_equal(w.wrap.get(&w.wrap, "p2pwg0", &now), 0);
	assert_int_equal(f.n_get, 2);
	assert_null(w.pending);
	assert_int_equal(w.peers->n_peers, 1);
	assert_int_equal(w.peers->peers[0].public_key[0], 7);

	wg_device_free(now);
	wg_device_free(change);
	wg_device_free(f.dev);
	ifwatch_cleanup(&w);
}

static void test_two_changes_without_a_read_are_read_back(void **state)
{
	struct ifwatch w;
	struct wg_device *a = one_peer(7), *b = one_peer(8);

	(void)state;
	memset(&f, 0, sizeof(f));
	f.dev = wg_device_new("p2pwg0");
	ifwatch_init(&w, &opts, &fake, 1, priv);
	assert_int_equal(w.wrap.set(&w.wrap, a), 0);
	assert_int_equal(w.wrap.set(&w.wrap, b), 0);
	assert_int_equal(f.n_get, 2);
	assert_null(w.pending);
	assert_int_equal(w.peers->n_peers, 2);

	wg_device_free(a);
	wg_device_free(b);
	wg_device_free(f.dev);
	ifwatch_cleanup(&w);
}

/* With the agent's own view after each change (known), no change is read
 * back, however many follow: a one-peer change reads nothing at all. */
static void test_changes_the_agent_knows_are_never_read_back(void **state)
{
	struct ifwatch w;
	struct wg_device *a = one_peer(7), *b = one_peer(8), *view = one_peer(7);
	struct wg_peer *p;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.dev = wg_device_new("p2pwg0");
	ifwatch_init(&w, &opts, &fake, 1, priv);
	assert_int_equal(w.wrap.set(&w.wrap, a), 0);
	w.wrap.known(&w.wrap, view);
	assert_int_equal(w.wrap.set(&w.wrap, b), 0);
	p = wg_device_add_peer(view);
	p->public_key[0] = 8;
	w.wrap.known(&w.wrap, view);
	assert_int_equal(f.n_set, 2);
	assert_int_equal(f.n_get, 1); /* ifwatch_init's alone */
	/* A rebuild restores both. */
	assert_null(w.pending);
	assert_int_equal(w.peers->n_peers, 2);
	assert_int_equal(w.peers->peers[1].public_key[0], 8);

	wg_device_free(a);
	wg_device_free(b);
	wg_device_free(view);
	wg_device_free(f.dev);
	ifwatch_cleanup(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_change_is_not_read_back),
		cmocka_unit_test(test_two_changes_without_a_read_are_read_back),
		cmocka_unit_test(test_changes_the_agent_knows_are_never_read_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

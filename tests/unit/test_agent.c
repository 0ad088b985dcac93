// SPDX-License-Identifier: MIT
/*
 * agent: the request table, driven with packed Requests through recorder
 * operations. The fake backend keeps an in-memory device and applies change
 * lists to it as WireGuard would, so the tests see what a user would see:
 * which peers changed, which kept their counters, what was refused.
 */
#include <arpa/inet.h>
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

#include "agent.h"
#include "agent.pb-c.h"
#include "agentclient.h"
#include "log.h"
#include "relaymac.h"

#define CLIENT 4
#define OK P2PWG__STATUS__OK
#define INVALID P2PWG__STATUS__INVALID

/* ==== the recorders ==== */

static struct fake {
	struct wg_backend be;
	struct wg_device *dev;         /* what the "interface" holds */
	struct wg_device *last_change; /* copy of the last set() */
	int n_get, get_ret, n_set, set_ret;
	bool has_addr;
	struct in_addr addr;
	uint8_t addr_len;
	int n_addr_set;
	int n_stun;
	uint8_t stun_msg[1024];
	size_t stun_len;
	struct sockaddr_in stun_to;
	int n_replies, reply_client;
	P2pwg__Response *resp;
} f;

static struct agent agent;
static uint64_t clock_ms; /* the monotonic clock the agent is handed */
static const uint8_t priv_key[WG_KEY_LEN] = { [0 ... 31] = 0x11 };
static const uint8_t pub_key[WG_KEY_LEN] = { [0 ... 31] = 0x99 };

static struct wg_device *dev_copy(const struct wg_device *d)
{
	struct wg_device *c = wg_device_new(d->name);

	assert_non_null(c);
	c->ifindex = d->ifindex;
	c->flags = d->flags;
	memcpy(c->private_key, d->private_key, WG_KEY_LEN);
	memcpy(c->public_key, d->public_key, WG_KEY_LEN);
	c->listen_port = d->listen_port;
	for (size_t i = 0; i < d->n_peers; i++) {
		struct wg_peer *p = wg_device_add_peer(c);

		assert_non_null(p);
		*p = d->peers[i];
		p->allowedips = NULL;
		p->n_allowedips = 0;
		for (size_t j = 0; j < d->peers[i].n_allowedips; j++)
			assert_int_equal(wg_peer_add_allowedip(p, &d->peers[i].allowedips[j]), 0);
	}
	return c;
}

static void remove_peer(struct wg_device *d, size_t i)
{
	free(d->peers[i].allowedips);
	memmove(&d->peers[i], &d->peers[i + 1], (d->n_peers - i - 1) * sizeof(d->peers[0]));
	d->n_peers--;
}

/* Apply a change list the way WireGuard does. */
static void apply(struct wg_device *d, const struct wg_device *c)
{
	if (c->flags & WGDEV_HAS_PRIVATE_KEY)
		memcpy(d->private_key, c->private_key, WG_KEY_LEN);
	if (c->flags & WGDEV_HAS_LISTEN_PORT)
		d->listen_port = c->listen_port;
	if (c->flags & WGDEV_REPLACE_PEERS)
		while (d->n_peers)
			remove_peer(d, 0);
	for (size_t i = 0; i < c->n_peers; i++) {
		const struct wg_peer *cp = &c->peers[i];
		struct wg_peer *p = wg_device_find_peer(d, cp->public_key);

		if (cp->flags & WGPEER_REMOVE_ME) {
			if (p)
				remove_peer(d, (size_t)(p - d->peers));
			continue;
		}
		if (!p) {
			if (cp->flags & WGPEER_UPDATE_ONLY)
				continue;
			p = wg_device_add_peer(d);
			assert_non_null(p);
			memcpy(p->public_key, cp->public_key, WG_KEY_LEN);
		}
		if (cp->endpoint.sa.sa_family != AF_UNSPEC)
			p->endpoint = cp->endpoint;
		if (cp->flags & WGPEER_HAS_KEEPALIVE)
			p->keepalive = cp->keepalive;
		if (cp->flags & WGPEER_REPLACE_ALLOWEDIPS) {
			free(p->allowedips);
			p->allowedips = NULL;
			p->n_allowedips = 0;
		}
		for (size_t j = 0; j < cp->n_allowedips; j++)
			assert_int_equal(wg_peer_add_allowedip(p, &cp->allowedips[j]), 0);
	}
}

static int fake_get(struct wg_backend *be, const char *ifname, struct wg_device **out)
{
	assert_string_equal(ifname, "p2pwg0");
	f.n_get++;
	if (f.get_ret)
		return f.get_ret;
	*out = dev_copy(f.dev);
	return 0;
}

static int fake_set(struct wg_backend *be, const struct wg_device *change)
{
	f.n_set++;
	if (f.set_ret)
		return f.set_ret;
	wg_device_free(f.last_change);
	f.last_change = dev_copy(change);
	apply(f.dev, change);
	return 0;
}

static int fake_addr_get(void *ctx, struct in_addr *addr, uint8_t *len)
{
	if (!f.has_addr)
		return -ENOENT;
	*addr = f.addr;
	*len = f.addr_len;
	return 0;
}

static int fake_addr_set(void *ctx, const struct in_addr *addr, uint8_t len)
{
	f.n_addr_set++;
	f.has_addr = addr != NULL;
	if (addr) {
		f.addr = *addr;
		f.addr_len = len;
	}
	return 0;
}

static int fake_stun_send(void *ctx, const struct sockaddr_in *to, const uint8_t *msg, size_t len)
{
	f.n_stun++;
	assert_true(len <= sizeof(f.stun_msg));
	memcpy(f.stun_msg, msg, len);
	f.stun_len = len;
	f.stun_to = *to;
	return 0;
}

static int fake_reply(void *ctx, int client, const uint8_t *buf, size_t len)
{
	f.n_replies++;
	f.reply_client = client;
	agentclient_response_free(f.resp);
	f.resp = p2pwg__response__unpack(NULL, len, buf);
	assert_non_null(f.resp);
	return 0;
}

static int setup(void **state)
{
	struct agent_config cfg = { .ifname = "p2pwg0", .overlay_len = 24, .listen_port = 51820 };
	struct agent_ops ops = { .wg = &f.be, .addr_get = fake_addr_get, .addr_set = fake_addr_set,
				 .stun_send = fake_stun_send, .reply = fake_reply };

	memset(&f, 0, sizeof(f));
	clock_ms = 1000;
	f.be = (struct wg_backend){ .name = "kernel", .get = fake_get, .set = fake_set };
	f.dev = wg_device_new("p2pwg0");
	f.dev->flags = WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_PUBLIC_KEY | WGDEV_HAS_LISTEN_PORT;
	memcpy(f.dev->private_key, priv_key, WG_KEY_LEN);
	memcpy(f.dev->public_key, pub_key, WG_KEY_LEN);
	f.dev->listen_port = 51820;
	inet_pton(AF_INET, "10.88.0.0", &cfg.overlay_net);
	agent_init(&agent, &cfg, &ops, priv_key, pub_key);
	return 0;
}

static int teardown(void **state)
{
	agent_cleanup(&agent);
	wg_device_free(f.dev);
	wg_device_free(f.last_change);
	agentclient_response_free(f.resp);
	return 0;
}

/* ==== building requests ==== */

#define MAXP 250
#define MAXA 20

struct tpeer {
	P2pwg__Peer p;
	P2pwg__Endpoint ep;
	uint8_t key[40];
	uint8_t ep_addr[20];
	P2pwg__Prefix aip[MAXA];
	P2pwg__Prefix *aip_ptr[MAXA];
	uint8_t aip_addr[MAXA][4];
};

struct treq {
	P2pwg__Request req;
	P2pwg__SetPeers sp;
	P2pwg__Prefix addr;
	uint8_t addr_buf[4];
	struct tpeer peers[MAXP];
	P2pwg__Peer *ptrs[MAXP];
};

/* A SetPeers with own address addr/len (NULL: none). Free with free(). */
static struct treq *set_peers(const char *addr, unsigned len)
{
	struct treq *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	p2pwg__request__init(&r->req);
	p2pwg__set_peers__init(&r->sp);
	r->req.msg_case = P2PWG__REQUEST__MSG_SET_PEERS;
	r->req.set_peers = &r->sp;
	r->sp.peers = r->ptrs;
	if (addr) {
		p2pwg__prefix__init(&r->addr);
		assert_int_equal(inet_pton(AF_INET, addr, r->addr_buf), 1);
		r->addr.addr.data = r->addr_buf;
		r->addr.addr.len = 4;
		r->addr.prefix_len = len;
		r->sp.address = &r->addr;
	}
	return r;
}

static void key_of(unsigned n, uint8_t key[WG_KEY_LEN])
{
	memset(key, 0x40, WG_KEY_LEN);
	key[0] = (uint8_t)n;
	key[1] = (uint8_t)(n >> 8);
}

/* Append a peer whose public key is derived from n. */
static struct tpeer *add_peer(struct treq *r, unsigned n)
{
	struct tpeer *t = &r->peers[r->sp.n_peers];

	assert_true(r->sp.n_peers < MAXP);
	p2pwg__peer__init(&t->p);
	key_of(n, t->key);
	t->p.public_key.data = t->key;
	t->p.public_key.len = WG_KEY_LEN;
	t->p.allowed_ips = t->aip_ptr;
	r->ptrs[r->sp.n_peers++] = &t->p;
	return t;
}

static void peer_ep(struct tpeer *t, const char *ip, unsigned port)
{
	bool v6 = strchr(ip, ':') != NULL;

	p2pwg__endpoint__init(&t->ep);
	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, ip, t->ep_addr), 1);
	t->ep.addr.data = t->ep_addr;
	t->ep.addr.len = v6 ? 16 : 4;
	t->ep.port = port;
	t->p.endpoint = &t->ep;
}

static void peer_aip(struct tpeer *t, const char *ip, unsigned len)
{
	size_t n = t->p.n_allowed_ips++;

	assert_true(n < MAXA);
	p2pwg__prefix__init(&t->aip[n]);
	assert_int_equal(inet_pton(AF_INET, ip, t->aip_addr[n]), 1);
	t->aip[n].addr.data = t->aip_addr[n];
	t->aip[n].addr.len = 4;
	t->aip[n].prefix_len = len;
	t->aip_ptr[n] = &t->aip[n];
}

/* The usual wanted state: 10.88.0.1/24 and two peers. */
static struct treq *two_peers(void)
{
	struct treq *r = set_peers("10.88.0.1", 24);
	struct tpeer *t = add_peer(r, 1);

	peer_ep(t, "198.51.100.1", 51820);
	peer_aip(t, "10.88.0.2", 32);
	t->p.keepalive = 25;
	t = add_peer(r, 2);
	peer_ep(t, "198.51.100.2", 51821);
	peer_aip(t, "10.88.0.3", 32);
	peer_aip(t, "10.88.0.64", 26);
	return r;
}

/* ==== calling the agent ==== */

static uint64_t next_id = 100;

static void handle_raw(const uint8_t *buf, size_t len, size_t full_len)
{
	agent_handle(&agent, CLIENT, buf, len, full_len, clock_ms);
}

/* Send req; the agent must answer at once, to us, with the same id. */
static P2pwg__Response *call(P2pwg__Request *req)
{
	int before = f.n_replies;
	size_t len;
	uint8_t *buf;

	req->id = ++next_id;
	len = p2pwg__request__get_packed_size(req);
	buf = malloc(len + 1);
	assert_non_null(buf);
	len = p2pwg__request__pack(req, buf);
	handle_raw(buf, len, len);
	free(buf);
	assert_int_equal(f.n_replies, before + 1);
	assert_int_equal(f.reply_client, CLIENT);
	assert_true(f.resp->id == req->id);
	return f.resp;
}

static P2pwg__Response *hello(unsigned version)
{
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__Hello h = P2PWG__HELLO__INIT;

	h.version = version;
	req.msg_case = P2PWG__REQUEST__MSG_HELLO;
	req.hello = &h;
	return call(&req);
}

static P2pwg__Response *get_device(void)
{
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__GetDevice g = P2PWG__GET_DEVICE__INIT;

	req.msg_case = P2PWG__REQUEST__MSG_GET_DEVICE;
	req.get_device = &g;
	return call(&req);
}

static void still_serving(void)
{
	P2pwg__Response *r = hello(P2PWG__PROTOCOL_VERSION__PROTOCOL_CURRENT);

	assert_int_equal(r->status, OK);
	assert_int_equal(r->msg_case, P2PWG__RESPONSE__MSG_HELLO);
}

static void expect_ok(struct treq *r)
{
	P2pwg__Response *resp = call(&r->req);

	if (resp->status != OK)
		fail_msg("expected OK, got %d: %s", resp->status, resp->error);
	assert_int_equal(resp->msg_case, P2PWG__RESPONSE__MSG_DEVICE);
	free(r);
}

/* The request is refused with an error containing why, nothing is changed,
 * and the agent answers the next request. Frees r. */
static void expect_invalid(struct treq *r, const char *why)
{
	int sets = f.n_set, addr_sets = f.n_addr_set;
	P2pwg__Response *resp = call(&r->req);

	if (resp->status != INVALID)
		fail_msg("expected INVALID (%s), got %d", why, resp->status);
	assert_int_equal(resp->msg_case, P2PWG__RESPONSE__MSG__NOT_SET);
	if (!strstr(resp->error, why))
		fail_msg("error \"%s\" does not mention \"%s\"", resp->error, why);
	assert_int_equal(f.n_set, sets);
	assert_int_equal(f.n_addr_set, addr_sets);
	free(r);
	still_serving();
}

static const P2pwg__Peer *resp_peer(const P2pwg__Device *d, unsigned n)
{
	uint8_t key[WG_KEY_LEN];

	key_of(n, key);
	for (size_t i = 0; i < d->n_peers; i++)
		if (d->peers[i]->public_key.len == WG_KEY_LEN &&
		    !memcmp(d->peers[i]->public_key.data, key, WG_KEY_LEN))
			return d->peers[i];
	return NULL;
}

static struct wg_peer *dev_peer(unsigned n)
{
	uint8_t key[WG_KEY_LEN];

	key_of(n, key);
	return wg_device_find_peer(f.dev, key);
}

/* ==== Hello and GetDevice ==== */

static void test_hello(void **state)
{
	P2pwg__Response *r = hello(P2PWG__PROTOCOL_VERSION__PROTOCOL_CURRENT);

	assert_int_equal(r->status, OK);
	assert_int_equal(r->msg_case, P2PWG__RESPONSE__MSG_HELLO);
	assert_int_equal(r->hello->version, 1);
	assert_int_equal(r->hello->public_key.len, WG_KEY_LEN);
	assert_memory_equal(r->hello->public_key.data, pub_key, WG_KEY_LEN);
	assert_non_null(r->hello->device);
	assert_string_equal(r->hello->device->ifname, "p2pwg0");
	assert_string_equal(r->hello->device->backend, "kernel");
	assert_int_equal(r->hello->device->listen_port, 51820);
	assert_null(r->hello->device->address);
	assert_int_equal(r->hello->device->n_peers, 0);

	r = hello(2);
	assert_int_equal(r->status, INVALID);
	assert_non_null(strstr(r->error, "version 2"));
	assert_int_equal(r->msg_case, P2PWG__RESPONSE__MSG__NOT_SET);
	r = hello(0);
	assert_int_equal(r->status, INVALID);
	still_serving();
}

static void test_get_device(void **state)
{
	P2pwg__Response *r = get_device();
	struct wg_peer *p;

	assert_int_equal(r->status, OK);
	assert_int_equal(r->msg_case, P2PWG__RESPONSE__MSG_DEVICE);
	assert_string_equal(r->device->ifname, "p2pwg0");
	assert_memory_equal(r->device->public_key.data, pub_key, WG_KEY_LEN);
	assert_null(r->device->address);
	expect_ok(two_peers());
	p = dev_peer(1);
	p->rx_bytes = 1000;
	p->tx_bytes = 2000;
	p->last_handshake.tv_sec = 1756069801;
	r = get_device();
	assert_int_equal(r->status, OK);
	assert_non_null(r->device->address);
	assert_int_equal(r->device->address->addr.len, 4);
	assert_memory_equal(r->device->address->addr.data, "\x0a\x58\x00\x01", 4);
	assert_int_equal(r->device->address->prefix_len, 24);
	assert_int_equal(r->device->n_peers, 2);
	{
		const P2pwg__Peer *p1 = resp_peer(r->device, 1), *p2 = resp_peer(r->device, 2);

		assert_non_null(p1);
		assert_non_null(p2);
		assert_int_equal(p1->rx_bytes, 1000);
		assert_int_equal(p1->tx_bytes, 2000);
		assert_int_equal(p1->last_handshake_sec, 1756069801);
		assert_int_equal(p1->keepalive, 25);
		assert_non_null(p1->endpoint);
		assert_memory_equal(p1->endpoint->addr.data, "\xc6\x33\x64\x01", 4);
		assert_int_equal(p1->endpoint->port, 51820);
		assert_int_equal(p1->n_allowed_ips, 1);
		assert_int_equal(p2->n_allowed_ips, 2);
		assert_int_equal(p2->allowed_ips[1]->prefix_len, 26);
		assert_memory_equal(p2->allowed_ips[1]->addr.data, "\x0a\x58\x00\x40", 4);
		assert_int_equal(p2->endpoint->port, 51821);
	}
}

/* ==== SetPeers ==== */

static void test_set_peers_happy(void **state)
{
	P2pwg__Response *r;
	struct treq *req = two_peers();
	struct wg_peer *p;

	r = call(&req->req);
	assert_int_equal(r->status, OK);
	assert_true(r->changed);
	assert_int_equal(r->msg_case, P2PWG__RESPONSE__MSG_DEVICE);
	assert_int_equal(r->device->n_peers, 2);
	assert_int_equal(f.n_set, 1);
	assert_int_equal(f.n_addr_set, 1);
	assert_true(f.has_addr);
	assert_int_equal(f.addr.s_addr, inet_addr("10.88.0.1"));
	assert_int_equal(f.addr_len, 24);
	assert_int_equal(f.dev->n_peers, 2);
	p = dev_peer(1);
	assert_non_null(p);
	assert_int_equal(p->endpoint.sa.sa_family, AF_INET);
	assert_int_equal(p->endpoint.sin.sin_addr.s_addr, inet_addr("198.51.100.1"));
	assert_int_equal(ntohs(p->endpoint.sin.sin_port), 51820);
	assert_int_equal(p->keepalive, 25);
	assert_int_equal(p->n_allowedips, 1);
	assert_int_equal(p->allowedips[0].ip4.s_addr, inet_addr("10.88.0.2"));
	p = dev_peer(2);
	assert_non_null(p);
	assert_int_equal(ntohs(p->endpoint.sin.sin_port), 51821);
	assert_int_equal(p->keepalive, 0);
	assert_int_equal(p->n_allowedips, 2);
	/* The agent's key and port were already right: not touched. */
	assert_false(f.last_change->flags & (WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_LISTEN_PORT));

	/* The same state again changes nothing at all. */
	r = call(&req->req);
	assert_int_equal(r->status, OK);
	assert_false(r->changed);
	assert_int_equal(f.n_set, 1);
	assert_int_equal(f.n_addr_set, 1);
	free(req);

	/* A peer without endpoint keeps the one WireGuard knows. */
	req = two_peers();
	req->peers[0].p.endpoint = NULL;
	r = call(&req->req);
	assert_int_equal(r->status, OK);
	assert_false(r->changed);
	free(req);

	/* Another own address with the same peers: only the address changes. */
	req = two_peers();
	inet_pton(AF_INET, "10.88.0.10", req->addr_buf);
	req->addr.prefix_len = 32;
	r = call(&req->req);
	assert_int_equal(r->status, OK);
	assert_true(r->changed);
	assert_int_equal(f.n_set, 1);
	assert_int_equal(f.n_addr_set, 2);
	assert_int_equal(f.addr.s_addr, inet_addr("10.88.0.10"));
	assert_int_equal(f.addr_len, 32);
	free(req);
}

static void test_set_peers_repairs_port(void **state)
{
	P2pwg__Response *r;
	struct treq *req = set_peers("10.88.0.1", 24);

	/* Someone changed the port behind the agent's back: it is put back. */
	f.dev->listen_port = 40000;
	r = call(&req->req);
	assert_int_equal(r->status, OK);
	assert_true(r->changed);
	assert_int_equal(f.n_set, 1);
	assert_true(f.last_change->flags & WGDEV_HAS_LISTEN_PORT);
	assert_int_equal(f.dev->listen_port, 51820);
	free(req);
}

static void test_limit_peers(void **state)
{
	struct treq *r = set_peers("10.88.0.1", 24);
	char ip[16];

	for (unsigned i = 1; i <= AGENT_MAX_PEERS; i++) {
		snprintf(ip, sizeof(ip), "10.88.0.%u", i + 1);
		peer_aip(add_peer(r, i), ip, 32);
	}
	expect_ok(r);
	assert_int_equal(f.dev->n_peers, 245);
	r = set_peers("10.88.0.1", 24);
	for (unsigned i = 1; i <= AGENT_MAX_PEERS + 1; i++)
		add_peer(r, i);
	expect_invalid(r, "246 peers, at most 245");
	assert_int_equal(f.dev->n_peers, 245);
}

static void test_limit_key(void **state)
{
	struct treq *r = set_peers("10.88.0.1", 24);

	add_peer(r, 1);
	expect_ok(r);
	r = set_peers("10.88.0.1", 24);
	add_peer(r, 1)->p.public_key.len = 31;
	expect_invalid(r, "must be 32 bytes, got 31");
	r = set_peers("10.88.0.1", 24);
	add_peer(r, 1)->p.public_key.len = 33;
	expect_invalid(r, "must be 32 bytes, got 33");
	r = set_peers("10.88.0.1", 24);
	add_peer(r, 1)->p.public_key.len = 0;
	expect_invalid(r, "got 0");
	r = set_peers("10.88.0.1", 24);
	memset(add_peer(r, 1)->key, 0, WG_KEY_LEN);
	expect_invalid(r, "all zero");
	r = set_peers("10.88.0.1", 24);
	memcpy(add_peer(r, 1)->key, pub_key, WG_KEY_LEN);
	expect_invalid(r, "own");
	r = set_peers("10.88.0.1", 24);
	add_peer(r, 7);
	add_peer(r, 8);
	add_peer(r, 7);
	expect_invalid(r, "peer 2: duplicate public key");
}

static void test_limit_keepalive(void **state)
{
	struct treq *r = set_peers("10.88.0.1", 24);

	add_peer(r, 1)->p.keepalive = 3600;
	expect_ok(r);
	assert_int_equal(dev_peer(1)->keepalive, 3600);
	r = set_peers("10.88.0.1", 24);
	add_peer(r, 1)->p.keepalive = 3601;
	expect_invalid(r, "keepalive 3601");
	assert_int_equal(dev_peer(1)->keepalive, 3600);
}

static void test_limit_endpoint(void **state)
{
	struct treq *r = set_peers("10.88.0.1", 24);
	struct tpeer *t;

	peer_ep(add_peer(r, 1), "198.51.100.1", 1);
	peer_ep(add_peer(r, 2), "198.51.100.2", 65535);
	peer_ep(add_peer(r, 3), "2001:db8::3", 51820);
	expect_ok(r);
	assert_int_equal(ntohs(dev_peer(1)->endpoint.sin.sin_port), 1);
	assert_int_equal(ntohs(dev_peer(2)->endpoint.sin.sin_port), 65535);
	assert_int_equal(dev_peer(3)->endpoint.sa.sa_family, AF_INET6);
	assert_int_equal(ntohs(dev_peer(3)->endpoint.sin6.sin6_port), 51820);

	r = set_peers("10.88.0.1", 24);
	peer_ep(add_peer(r, 1), "198.51.100.1", 0);
	expect_invalid(r, "endpoint port 0");
	r = set_peers("10.88.0.1", 24);
	peer_ep(add_peer(r, 1), "198.51.100.1", 65536);
	expect_invalid(r, "endpoint port 65536");
	r = set_peers("10.88.0.1", 24);
	t = add_peer(r, 1);
	peer_ep(t, "198.51.100.1", 51820);
	t->ep.addr.len = 5;
	expect_invalid(r, "4 or 16 bytes, got 5");
	r = set_peers("10.88.0.1", 24);
	t = add_peer(r, 1);
	peer_ep(t, "198.51.100.1", 51820);
	t->ep.addr.len = 0;
	expect_invalid(r, "got 0");
	/* Inside the overlay, the tunnel would carry its own packets. */
	r = set_peers("10.88.0.1", 24);
	peer_ep(add_peer(r, 1), "10.88.0.50", 51820);
	expect_invalid(r, "endpoint inside the overlay");
	r = set_peers("10.88.0.1", 24);
	peer_ep(add_peer(r, 1), "::ffff:10.88.0.50", 51820);
	expect_invalid(r, "endpoint inside the overlay");
	assert_int_equal(ntohs(dev_peer(1)->endpoint.sin.sin_port), 1);
}

static void test_limit_allowed_ips(void **state)
{
	struct treq *r = set_peers("10.88.0.1", 24);
	struct tpeer *t;
	char ip[16];

	peer_aip(add_peer(r, 1), "10.88.0.2", 32);
	peer_aip(add_peer(r, 2), "10.88.0.128", 25);
	t = add_peer(r, 3);
	for (unsigned i = 0; i < AGENT_MAX_ALLOWEDIPS; i++) {
		snprintf(ip, sizeof(ip), "10.88.0.%u", 10 + i);
		peer_aip(t, ip, 32);
	}
	expect_ok(r);
	assert_int_equal(dev_peer(3)->n_allowedips, 16);

	r = set_peers("10.88.0.1", 24);
	t = add_peer(r, 3);
	for (unsigned i = 0; i <= AGENT_MAX_ALLOWEDIPS; i++) {
		snprintf(ip, sizeof(ip), "10.88.0.%u", 10 + i);
		peer_aip(t, ip, 32);
	}
	expect_invalid(r, "17 allowed IPs, at most 16");
	r = set_peers("10.88.0.1", 24);
	peer_aip(add_peer(r, 1), "10.88.1.5", 32);
	expect_invalid(r, "10.88.1.5/32 is outside the overlay");
	r = set_peers("10.88.0.1", 24);
	peer_aip(add_peer(r, 1), "10.88.0.0", 23);
	expect_invalid(r, "outside the overlay");
	r = set_peers("10.88.0.1", 24);
	peer_aip(add_peer(r, 1), "0.0.0.0", 0);
	expect_invalid(r, "outside the overlay");
	r = set_peers("10.88.0.1", 24);
	peer_aip(add_peer(r, 1), "10.88.0.2", 33);
	expect_invalid(r, "prefix of 0..32");
	r = set_peers("10.88.0.1", 24);
	peer_aip(add_peer(r, 1), "10.88.0.65", 26);
	expect_invalid(r, "host bits");
	r = set_peers("10.88.0.1", 24);
	peer_aip(add_peer(r, 1), "10.88.0.1", 32);
	expect_invalid(r, "covers this node's own address");
	r = set_peers("10.88.0.1", 24);
	peer_aip(add_peer(r, 1), "10.88.0.0", 24);
	expect_invalid(r, "covers this node's own address");
	r = set_peers("10.88.0.1", 24);
	peer_aip(add_peer(r, 1), "10.88.0.64", 26);
	peer_aip(add_peer(r, 2), "10.88.0.70", 32);
	expect_invalid(r, "overlaps peer 0");
	r = set_peers("10.88.0.1", 24);
	peer_aip(add_peer(r, 1), "10.88.0.70", 32);
	peer_aip(add_peer(r, 2), "10.88.0.64", 26);
	expect_invalid(r, "overlaps");
	r = set_peers("10.88.0.1", 24);
	t = add_peer(r, 1);
	peer_aip(t, "10.88.0.70", 32);
	peer_aip(t, "10.88.0.70", 32);
	expect_invalid(r, "listed twice");
	assert_int_equal(f.dev->n_peers, 3);
}

static void test_limit_address(void **state)
{
	struct treq *r;

	r = set_peers("10.88.1.1", 24);
	expect_invalid(r, "outside the overlay");
	r = set_peers("10.88.0.0", 24);
	expect_invalid(r, "network or broadcast");
	r = set_peers("10.88.0.255", 32);
	expect_invalid(r, "network or broadcast");
	r = set_peers("10.88.0.5", 25);
	expect_invalid(r, "prefix length must be 32 or the overlay's 24, got 25");
	r = set_peers("10.88.0.5", 24);
	r->addr.addr.len = 16;
	expect_invalid(r, "4 bytes");
	assert_false(f.has_addr);
	expect_ok(set_peers("10.88.0.254", 24));
	assert_int_equal(f.addr.s_addr, inet_addr("10.88.0.254"));
	assert_int_equal(f.addr_len, 24);
	expect_ok(set_peers("10.88.0.5", 32));
	assert_int_equal(f.addr.s_addr, inet_addr("10.88.0.5"));
	assert_int_equal(f.addr_len, 32);
}

static void test_limit_listen_port(void **state)
{
	struct treq *r = set_peers("10.88.0.1", 24);

	r->sp.listen_port = 0;
	expect_ok(r);
	r = set_peers("10.88.0.1", 24);
	r->sp.listen_port = 51820;
	expect_ok(r);
	r = set_peers("10.88.0.1", 24);
	r->sp.listen_port = 51821;
	expect_invalid(r, "listen port 51821");
	assert_int_equal(f.dev->listen_port, 51820);
}

static void test_no_address(void **state)
{
	struct treq *r = set_peers(NULL, 0);
	P2pwg__Response *resp;

	add_peer(r, 1);
	expect_invalid(r, "without an own address");
	expect_ok(two_peers());
	assert_true(f.has_addr);
	/* No address and no peers: both go. */
	r = set_peers(NULL, 0);
	resp = call(&r->req);
	assert_int_equal(resp->status, OK);
	assert_true(resp->changed);
	assert_null(resp->device->address);
	assert_int_equal(resp->device->n_peers, 0);
	assert_false(f.has_addr);
	assert_int_equal(f.n_addr_set, 2);
	assert_int_equal(f.dev->n_peers, 0);
	resp = call(&r->req);
	assert_false(resp->changed);
	assert_int_equal(f.n_addr_set, 2);
	free(r);
}

static void test_backend_failure(void **state)
{
	struct treq *r = two_peers();
	P2pwg__Response *resp;

	f.set_ret = -EIO;
	resp = call(&r->req);
	assert_int_equal(resp->status, P2PWG__STATUS__FAILED);
	assert_non_null(strstr(resp->error, strerror(EIO)));
	assert_false(f.has_addr);
	f.set_ret = 0;
	resp = call(&r->req);
	assert_int_equal(resp->status, OK);
	assert_true(resp->changed);
	free(r);
}

/* ==== the diff, seen through the agent ==== */

static void test_change_one_endpoint(void **state)
{
	struct treq *r = two_peers();
	struct wg_peer *p;
	P2pwg__Response *resp;

	expect_ok(r);
	/* Traffic flowed. */
	p = dev_peer(1);
	p->rx_bytes = 111;
	p->tx_bytes = 222;
	p->last_handshake.tv_sec = 1756069000;
	p = dev_peer(2);
	p->rx_bytes = 333;
	p->tx_bytes = 444;
	p->last_handshake.tv_sec = 1756069100;

	r = two_peers();
	peer_ep(&r->peers[1], "203.0.113.7", 4000);
	resp = call(&r->req);
	assert_int_equal(resp->status, OK);
	assert_true(resp->changed);
	assert_int_equal(f.n_set, 2);
	assert_int_equal(f.last_change->n_peers, 1);
	p = &f.last_change->peers[0];
	assert_memory_equal(p->public_key, r->peers[1].key, WG_KEY_LEN);
	assert_int_equal(p->flags, WGPEER_UPDATE_ONLY);
	assert_int_equal(p->endpoint.sin.sin_addr.s_addr, inet_addr("203.0.113.7"));
	/* The untouched peer kept its session and counters. */
	p = dev_peer(1);
	assert_int_equal(p->rx_bytes, 111);
	assert_int_equal(p->tx_bytes, 222);
	assert_int_equal(p->last_handshake.tv_sec, 1756069000);
	assert_int_equal(ntohs(p->endpoint.sin.sin_port), 51820);
	p = dev_peer(2);
	assert_int_equal(p->rx_bytes, 333);
	assert_int_equal(ntohs(p->endpoint.sin.sin_port), 4000);
	assert_int_equal(p->n_allowedips, 2);
	/* The answer describes the interface without reading it: counters as
	 * of the agent's last read; GetDevice reads them. */
	assert_int_equal(resp_peer(resp->device, 1)->rx_bytes, 0);
	assert_int_equal(resp_peer(resp->device, 2)->endpoint->port, 4000);
	resp = get_device();
	assert_int_equal(resp_peer(resp->device, 1)->rx_bytes, 111);
	assert_int_equal(resp_peer(resp->device, 2)->endpoint->port, 4000);
	free(r);
}

static void test_remove_one_peer(void **state)
{
	struct treq *r = two_peers();
	P2pwg__Response *resp;
	struct wg_peer *p;

	expect_ok(r);
	dev_peer(2)->rx_bytes = 555;
	r = two_peers();
	r->sp.n_peers = 1; /* only peer 2 */
	r->ptrs[0] = &r->peers[1].p;
	resp = call(&r->req);
	assert_int_equal(resp->status, OK);
	assert_true(resp->changed);
	assert_int_equal(f.last_change->n_peers, 1);
	assert_int_equal(f.last_change->peers[0].flags, WGPEER_REMOVE_ME);
	assert_memory_equal(f.last_change->peers[0].public_key, r->peers[0].key, WG_KEY_LEN);
	assert_int_equal(f.dev->n_peers, 1);
	assert_null(dev_peer(1));
	p = dev_peer(2);
	assert_non_null(p);
	assert_int_equal(p->rx_bytes, 555);
	assert_int_equal(resp->device->n_peers, 1);
	free(r);
}

/* ==== framing ==== */

static void test_malformed(void **state)
{
	static const uint8_t garbage[] = { 0x0f, 0xff, 0xff, 0xff, 0xff, 0x13, 0x37, 0x00, 0x42 };
	static const uint8_t truncated[] = { 0x08, 0x05, 0x22, 0x10, 0x0a }; /* id 5, SetPeers cut */
	uint8_t buf[64] = { 0 };
	int before = f.n_replies;

	handle_raw(garbage, sizeof(garbage), sizeof(garbage));
	assert_int_equal(f.n_replies, before + 1);
	assert_int_equal(f.resp->status, INVALID);
	assert_true(f.resp->id == 0);
	assert_non_null(strstr(f.resp->error, "malformed"));
	handle_raw(truncated, sizeof(truncated), sizeof(truncated));
	assert_int_equal(f.resp->status, INVALID);
	assert_true(f.resp->id == 0);
	still_serving();

	handle_raw(buf, sizeof(buf), AGENT_REQUEST_MAX + 1);
	assert_int_equal(f.resp->status, INVALID);
	assert_true(f.resp->id == 0);
	assert_non_null(strstr(f.resp->error, "65536"));
	assert_int_equal(f.n_set, 0);
	still_serving();

	/* Any bytes at all get exactly one answer, and the agent keeps going. */
	srandom(42);
	for (int i = 0; i < 2000; i++) {
		size_t len = (size_t)(random() % sizeof(buf));

		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)random();
		before = f.n_replies;
		handle_raw(buf, len, len);
		assert_int_equal(f.n_replies, before + 1);
	}
	still_serving();
}

/* A Request whose SetPeers holds N_PEERS empty peers (2 bytes each, a struct
 * each once unpacked); its length in *len. The caller frees it. */
static uint8_t *empty_peers_frame(size_t n_peers, size_t *len)
{
	uint8_t *buf = malloc(2 * n_peers + 16);

	assert_non_null(buf);
	*len = 0;
	buf[(*len)++] = 0x22; /* Request.set_peers */
	for (size_t v = 2 * n_peers;; v >>= 7) {
		buf[(*len)++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		if (v < 0x80)
			break;
	}
	for (size_t i = 0; i < n_peers; i++) {
		buf[(*len)++] = 0x1a; /* SetPeers.peers, empty */
		buf[(*len)++] = 0x00;
	}
	return buf;
}

/* A frame of empty peers costs protobuf-c a struct per 2 bytes: it is refused
 * by size before any of it is unpacked. */
static void test_oversize_frame_refused_before_unpacking(void **state)
{
	size_t len;
	uint8_t *buf = empty_peers_frame(40000, &len);

	assert_true(len > AGENT_REQUEST_MAX && len < 256 * 1024);
	handle_raw(buf, len, len);
	free(buf);
	assert_int_equal(f.resp->status, INVALID);
	assert_non_null(strstr(f.resp->error, "exceeds the 65536-byte limit"));
	assert_int_equal(f.n_set, 0);
	still_serving();
}

/* Under the size cap, a frame of empty peers would still unpack to ~3.9 MB:
 * the unpacking stops at its heap budget. */
static void test_small_frame_of_many_elements_stops_at_heap_budget(void **state)
{
	size_t len;
	uint8_t *buf = empty_peers_frame((AGENT_REQUEST_MAX - 8) / 2, &len);

	assert_true(len <= AGENT_REQUEST_MAX);
	handle_raw(buf, len, len);
	free(buf);
	assert_int_equal(f.resp->status, INVALID);
	assert_non_null(strstr(f.resp->error, "needs over 1048576 bytes to unpack"));
	assert_int_equal(f.n_set, 0);
	still_serving();
}

/* The cap leaves room for the largest request a valid SetPeers can be. */
static void test_largest_set_peers_fits_the_cap(void **state)
{
	struct treq *r = set_peers("10.88.0.1", 24);
	P2pwg__Response *resp;
	size_t len;
	char ip[16];

	r->sp.listen_port = 65535;
	for (unsigned i = 1; i <= AGENT_MAX_PEERS; i++) {
		struct tpeer *t = add_peer(r, i);

		peer_ep(t, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
		for (unsigned j = 0; j < AGENT_MAX_ALLOWEDIPS; j++) {
			snprintf(ip, sizeof(ip), "10.88.0.%u", 1 + (i + j) % 254);
			peer_aip(t, ip, 32);
		}
		t->p.keepalive = AGENT_MAX_KEEPALIVE;
		t->p.last_handshake_sec = INT64_MIN;
		t->p.rx_bytes = UINT64_MAX;
		t->p.tx_bytes = UINT64_MAX;
	}
	next_id = UINT64_MAX - 1;
	r->req.id = UINT64_MAX;
	len = p2pwg__request__get_packed_size(&r->req);
	assert_int_equal(len, 62994); /* as computed in agent.h */
	assert_true(len <= AGENT_REQUEST_MAX);
	resp = call(&r->req);
	assert_null(strstr(resp->error, "exceeds"));
	assert_null(strstr(resp->error, "to unpack"));
	next_id = 100;
	free(r);
}

static void test_unknown_request(void **state)
{
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__Response *r = call(&req);

	assert_int_equal(r->status, P2PWG__STATUS__UNSUPPORTED);
	assert_int_equal(r->msg_case, P2PWG__RESPONSE__MSG__NOT_SET);
	/* A field number from a newer protocol is skipped: still unsupported. */
	{
		static const uint8_t newer[] = { 0x08, 0x09, 0x4a, 0x00 }; /* id 9, field 9 */

		handle_raw(newer, sizeof(newer), sizeof(newer));
		assert_int_equal(f.resp->status, P2PWG__STATUS__UNSUPPORTED);
		assert_true(f.resp->id == 9);
	}
	still_serving();
}

/* ==== StunExchange ==== */

struct tstun {
	P2pwg__Request req;
	P2pwg__StunExchange st;
	P2pwg__Endpoint server;
	uint8_t server_addr[4];
	uint8_t msg[600];
};

static void stun_bytes(uint8_t *m, uint16_t type, size_t attr_len, uint8_t txid_byte)
{
	m[0] = (uint8_t)(type >> 8);
	m[1] = (uint8_t)type;
	m[2] = (uint8_t)(attr_len >> 8);
	m[3] = (uint8_t)attr_len;
	memcpy(m + 4, "\x21\x12\xa4\x42", 4);
	memset(m + 8, txid_byte, 12);
	memset(m + 20, 0, attr_len);
}

/* A StunExchange of a 20-byte Binding Request to 192.0.2.10:3478. */
static struct tstun *stun_req(uint8_t txid_byte)
{
	struct tstun *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	p2pwg__request__init(&s->req);
	p2pwg__stun_exchange__init(&s->st);
	p2pwg__endpoint__init(&s->server);
	inet_pton(AF_INET, "192.0.2.10", s->server_addr);
	s->server.addr.data = s->server_addr;
	s->server.addr.len = 4;
	s->server.port = 3478;
	stun_bytes(s->msg, 0x0001, 0, txid_byte);
	s->st.server = &s->server;
	s->st.request.data = s->msg;
	s->st.request.len = 20;
	s->st.timeout_ms = 500;
	s->req.msg_case = P2PWG__REQUEST__MSG_STUN_EXCHANGE;
	s->req.stun_exchange = &s->st;
	return s;
}

/* Send; the exchange must be pending (no reply yet, the bytes sent). */
static void stun_start(struct tstun *s, int client, uint64_t now)
{
	int replies = f.n_replies, sent = f.n_stun;
	size_t len;
	uint8_t *buf;

	s->req.id = ++next_id;
	len = p2pwg__request__get_packed_size(&s->req);
	buf = malloc(len);
	assert_non_null(buf);
	p2pwg__request__pack(&s->req, buf);
	agent_handle(&agent, client, buf, len, len, now);
	free(buf);
	if (f.n_replies != replies)
		fail_msg("answered at once: %d %s", f.resp->status, f.resp->error);
	assert_int_equal(f.n_stun, sent + 1);
	assert_int_equal(f.stun_len, s->st.request.len);
	assert_memory_equal(f.stun_msg, s->msg, s->st.request.len);
	assert_int_equal(f.stun_to.sin_family, AF_INET);
	assert_memory_equal(&f.stun_to.sin_addr, s->server_addr, 4);
	assert_int_equal(ntohs(f.stun_to.sin_port), 3478);
}

static struct sockaddr_in from(const char *ip, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

static void test_stun_exchange(void **state)
{
	struct tstun *s = stun_req(0xab);
	uint8_t resp[32];
	struct sockaddr_in srv = from("192.0.2.10", 3478), other;
	int replies;

	stun_start(s, CLIENT, 1000);
	assert_int_equal(agent_tick(&agent, 1000), 500);
	assert_int_equal(agent_tick(&agent, 1200), 300);
	replies = f.n_replies;
	/* Binding success response with an XOR-MAPPED-ADDRESS, same txid. */
	stun_bytes(resp, 0x0101, 12, 0xab);
	memcpy(resp + 20, "\x00\x20\x00\x08\x00\x01\xa1\x47\xe1\x12\xa6\x43", 12);
	/* From another port or address, or another transaction: ignored. */
	other = from("192.0.2.10", 3479);
	agent_stun_input(&agent, resp, sizeof(resp), &other);
	other = from("192.0.2.11", 3478);
	agent_stun_input(&agent, resp, sizeof(resp), &other);
	resp[19] ^= 1;
	agent_stun_input(&agent, resp, sizeof(resp), &srv);
	resp[19] ^= 1;
	agent_stun_input(&agent, resp, 19, &srv);
	assert_int_equal(f.n_replies, replies);
	/* The real one. */
	agent_stun_input(&agent, resp, sizeof(resp), &srv);
	assert_int_equal(f.n_replies, replies + 1);
	assert_int_equal(f.reply_client, CLIENT);
	assert_true(f.resp->id == s->req.id);
	assert_int_equal(f.resp->status, OK);
	assert_int_equal(f.resp->msg_case, P2PWG__RESPONSE__MSG_STUN);
	assert_int_equal(f.resp->stun->response.len, sizeof(resp));
	assert_memory_equal(f.resp->stun->response.data, resp, sizeof(resp));
	assert_non_null(f.resp->stun->from);
	assert_memory_equal(f.resp->stun->from->addr.data, s->server_addr, 4);
	assert_int_equal(f.resp->stun->from->port, 3478);
	/* Done: a duplicate response is not answered again, nothing pending. */
	agent_stun_input(&agent, resp, sizeof(resp), &srv);
	assert_int_equal(f.n_replies, replies + 1);
	assert_int_equal(agent_tick(&agent, 99999), -1);
	free(s);
}

static void test_stun_timeout(void **state)
{
	struct tstun *s = stun_req(0x01);
	int replies;

	s->st.timeout_ms = 0; /* the default, 1000 ms */
	stun_start(s, 9, 1000);
	replies = f.n_replies;
	assert_int_equal(agent_tick(&agent, 1999), 1);
	assert_int_equal(f.n_replies, replies);
	assert_int_equal(agent_tick(&agent, 2000), -1);
	assert_int_equal(f.n_replies, replies + 1);
	assert_int_equal(f.reply_client, 9);
	assert_true(f.resp->id == s->req.id);
	assert_int_equal(f.resp->status, P2PWG__STATUS__TIMEOUT);
	assert_non_null(strstr(f.resp->error, "192.0.2.10:3478"));
	free(s);
}

static void expect_stun_invalid(struct tstun *s, const char *why)
{
	int sent = f.n_stun;
	P2pwg__Response *r = call(&s->req);

	if (r->status != INVALID)
		fail_msg("expected INVALID (%s), got %d", why, r->status);
	if (!strstr(r->error, why))
		fail_msg("error \"%s\" does not mention \"%s\"", r->error, why);
	assert_int_equal(f.n_stun, sent);
	free(s);
	still_serving();
}

static void test_stun_invalid(void **state)
{
	struct tstun *s;

	s = stun_req(1);
	s->msg[1] = 0x01;
	s->msg[0] = 0x01;
	expect_stun_invalid(s, "not a Binding Request");
	s = stun_req(1);
	s->msg[7] ^= 0xff;
	expect_stun_invalid(s, "no magic cookie");
	s = stun_req(1);
	s->msg[3] = 4;
	expect_stun_invalid(s, "length field does not match");
	s = stun_req(1);
	s->st.request.len = 24; /* 4 bytes of attributes, length field says 0 */
	expect_stun_invalid(s, "length field does not match");
	s = stun_req(1);
	s->st.request.len = 19;
	expect_stun_invalid(s, "shorter than a STUN header");
	s = stun_req(1);
	s->st.request.len = 0;
	expect_stun_invalid(s, "shorter than a STUN header");
	s = stun_req(1);
	stun_bytes(s->msg, 0x0001, 552 - 20, 1);
	s->st.request.len = 552;
	expect_stun_invalid(s, "longer than 548 bytes");
	s = stun_req(1);
	s->st.timeout_ms = 5001;
	expect_stun_invalid(s, "timeout 5001 ms");
	s = stun_req(1);
	s->st.server = NULL;
	expect_stun_invalid(s, "STUN server");
	s = stun_req(1);
	s->server.port = 0;
	expect_stun_invalid(s, "STUN server");
	s = stun_req(1);
	s->server.addr.len = 16;
	expect_stun_invalid(s, "STUN server");
	s = stun_req(1);
	inet_pton(AF_INET, "10.88.0.7", s->server_addr);
	expect_stun_invalid(s, "not allowed");
	s = stun_req(1);
	inet_pton(AF_INET, "255.255.255.255", s->server_addr);
	expect_stun_invalid(s, "not allowed");
	/* The largest request and the longest timeout are fine. */
	s = stun_req(1);
	stun_bytes(s->msg, 0x0001, 548 - 20, 1);
	s->st.request.len = 548;
	s->st.timeout_ms = 5000;
	stun_start(s, CLIENT, 0);
	assert_int_equal(agent_tick(&agent, 0), 5000);
	free(s);
}

static void test_stun_busy(void **state)
{
	struct tstun *s[AGENT_STUN_MAX_PENDING + 1];
	P2pwg__Response *r;

	for (int i = 0; i < AGENT_STUN_MAX_PENDING; i++) {
		s[i] = stun_req((uint8_t)(0x10 + i));
		stun_start(s[i], CLIENT, 1000);
	}
	/* The same transaction id twice is refused. */
	s[AGENT_STUN_MAX_PENDING] = stun_req(0x10);
	r = call(&s[AGENT_STUN_MAX_PENDING]->req);
	assert_int_equal(r->status, INVALID);
	assert_non_null(strstr(r->error, "already in flight"));
	free(s[AGENT_STUN_MAX_PENDING]);
	s[AGENT_STUN_MAX_PENDING] = stun_req(0x30);
	r = call(&s[AGENT_STUN_MAX_PENDING]->req);
	assert_int_equal(r->status, P2PWG__STATUS__BUSY);
	assert_int_equal(f.n_stun, AGENT_STUN_MAX_PENDING);
	still_serving();
	/* They time out: room again. */
	assert_int_equal(agent_tick(&agent, 1500), -1);
	stun_start(s[AGENT_STUN_MAX_PENDING], CLIENT, 2000);
	for (int i = 0; i <= AGENT_STUN_MAX_PENDING; i++)
		free(s[i]);
}

static void test_stun_client_gone(void **state)
{
	struct tstun *a = stun_req(0x21), *b = stun_req(0x22);
	struct sockaddr_in srv = from("192.0.2.10", 3478);
	uint8_t resp[20];
	int replies;

	stun_start(a, 5, 1000);
	stun_start(b, 6, 1000);
	agent_client_gone(&agent, 5);
	replies = f.n_replies;
	stun_bytes(resp, 0x0101, 0, 0x21);
	agent_stun_input(&agent, resp, sizeof(resp), &srv);
	assert_int_equal(f.n_replies, replies);
	/* The other client's exchange is still there. */
	stun_bytes(resp, 0x0101, 0, 0x22);
	agent_stun_input(&agent, resp, sizeof(resp), &srv);
	assert_int_equal(f.n_replies, replies + 1);
	assert_int_equal(f.reply_client, 6);
	assert_int_equal(agent_tick(&agent, 99999), -1);
	assert_int_equal(f.n_replies, replies + 1);
	free(a);
	free(b);
}

static void test_check_stun_request(void **state)
{
	uint8_t m[24];

	stun_bytes(m, 0x0001, 0, 7);
	assert_null(agent_check_stun_request(m, 20));
	stun_bytes(m, 0x0001, 4, 7);
	assert_null(agent_check_stun_request(m, 24));
	stun_bytes(m, 0x0001, 2, 7);
	assert_non_null(agent_check_stun_request(m, 22));
	stun_bytes(m, 0x0111, 0, 7);
	assert_non_null(agent_check_stun_request(m, 20));
}

static P2pwg__Response *relay_auth(const uint8_t *key, size_t klen, const uint8_t *ch, size_t clen)
{
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__RelayAuth ra = P2PWG__RELAY_AUTH__INIT;

	ra.peer_key.data = (uint8_t *)key;
	ra.peer_key.len = klen;
	ra.challenge.data = (uint8_t *)ch;
	ra.challenge.len = clen;
	req.msg_case = P2PWG__REQUEST__MSG_RELAY_AUTH;
	req.relay_auth = &ra;
	return call(&req);
}

/* RelayAuth answers the MAC of the node's own key with the peer's, and
 * refuses a short key, its own key, the zero key and a short challenge. */
static void test_relay_auth(void **state)
{
	static const uint8_t peer[WG_KEY_LEN] = { [0 ... 31] = 0x22 }, zero[WG_KEY_LEN];
	uint8_t ch[97], want[RELAYMAC_LEN];
	P2pwg__Response *r;

	(void)state;
	memset(ch, 'c', sizeof(ch));
	assert_int_equal(relaymac_compute(priv_key, peer, ch, sizeof(ch), want), 0);
	r = relay_auth(peer, WG_KEY_LEN, ch, sizeof(ch));
	assert_int_equal(r->status, OK);
	assert_int_equal(r->msg_case, P2PWG__RESPONSE__MSG_RELAY_AUTH);
	assert_int_equal(r->relay_auth->mac.len, RELAYMAC_LEN);
	assert_memory_equal(r->relay_auth->mac.data, want, RELAYMAC_LEN);
	assert_int_equal(relay_auth(peer, 31, ch, sizeof(ch))->status, INVALID);
	assert_int_equal(relay_auth(pub_key, WG_KEY_LEN, ch, sizeof(ch))->status, INVALID);
	assert_int_equal(relay_auth(zero, WG_KEY_LEN, ch, sizeof(ch))->status, INVALID);
	assert_int_equal(relay_auth(peer, WG_KEY_LEN, ch, 8)->status, INVALID);
	still_serving();
}

/* ==== the agent's own view: no read for a change ==== */

/* 245 peers, peer n at 10.88.0.(n + 1), endpoint port 51820 + port_delta for
 * peer 7 only. */
static struct treq *many_peers(unsigned port_delta)
{
	struct treq *r = set_peers("10.88.0.1", 24);
	char ip[32];

	for (unsigned n = 1; n <= AGENT_MAX_PEERS; n++) {
		struct tpeer *t = add_peer(r, n);

		snprintf(ip, sizeof(ip), "10.88.0.%u", n + 1);
		peer_aip(t, ip, 32);
		snprintf(ip, sizeof(ip), "198.18.%u.%u", n / 200, n % 200 + 1);
		peer_ep(t, ip, 51820 + (n == 7 ? port_delta : 0));
		t->p.keepalive = 25;
	}
	return r;
}

/* A one-peer change among 245 writes that one peer and reads nothing: the
 * agent diffs against what it applied last (a read of 245 peers from
 * wireguard-go and its parse were most of a one-peer change's time). */
static void test_one_peer_change_writes_that_peer_without_reading(void **state)
{
	struct treq *r = many_peers(0);
	P2pwg__Response *resp;
	int gets;

	expect_ok(r);
	assert_int_equal(f.dev->n_peers, AGENT_MAX_PEERS);
	gets = f.n_get;
	r = many_peers(1);
	resp = call(&r->req);
	assert_int_equal(resp->status, OK);
	assert_true(resp->changed);
	assert_int_equal(f.n_get, gets);
	assert_int_equal(f.last_change->n_peers, 1);
	assert_int_equal(f.last_change->flags, 0);
	assert_memory_equal(f.last_change->peers[0].public_key, r->peers[6].key, WG_KEY_LEN);
	assert_int_equal(f.last_change->peers[0].flags, WGPEER_UPDATE_ONLY);
	assert_int_equal(ntohs(dev_peer(7)->endpoint.sin.sin_port), 51821);
	assert_int_equal(resp->device->n_peers, AGENT_MAX_PEERS);
	assert_int_equal(resp_peer(resp->device, 7)->endpoint->port, 51821);
	free(r);

	/* And back, and the same again: still no read; the last changes nothing. */
	expect_ok(many_peers(0));
	r = many_peers(0);
	assert_false(call(&r->req)->changed);
	free(r);
	assert_int_equal(f.n_get, gets);
	assert_int_equal(f.n_set, 3);
}

/* The view goes stale: after AGENT_MODEL_MAX_AGE_MS, after the interface was
 * rebuilt (agent_forget_device) or after a failed write, a SetPeers reads the
 * interface in full, and so puts back what someone else changed. */
static void test_stale_view_falls_back_to_a_full_read(void **state)
{
	struct treq *r = two_peers();
	uint8_t stray[WG_KEY_LEN];
	struct wg_peer *p;
	int gets;

	expect_ok(r);
	/* Someone removes peer 1 behind the agent. Fresh view: not seen. */
	remove_peer(f.dev, (size_t)(dev_peer(1) - f.dev->peers));
	gets = f.n_get;
	r = two_peers();
	assert_false(call(&r->req)->changed);
	assert_int_equal(f.n_get, gets);
	assert_null(dev_peer(1));
	free(r);

	/* Old view: read, and peer 1 is back with its endpoint. */
	clock_ms += AGENT_MODEL_MAX_AGE_MS;
	r = two_peers();
	assert_true(call(&r->req)->changed);
	free(r);
	assert_int_equal(f.n_get, gets + 1);
	assert_non_null(dev_peer(1));
	assert_int_equal(ntohs(dev_peer(1)->endpoint.sin.sin_port), 51820);

	/* A rebuilt interface: read at once, a stray peer removed. */
	p = wg_device_add_peer(f.dev);
	key_of(99, stray);
	memcpy(p->public_key, stray, WG_KEY_LEN);
	agent_forget_device(&agent);
	r = two_peers();
	assert_true(call(&r->req)->changed);
	free(r);
	assert_int_equal(f.n_get, gets + 2);
	assert_null(dev_peer(99));

	/* A failed write leaves the interface unknown: the retry reads it. */
	r = two_peers();
	peer_ep(&r->peers[0], "203.0.113.9", 9);
	f.set_ret = -EIO;
	assert_int_equal(call(&r->req)->status, P2PWG__STATUS__FAILED);
	f.set_ret = 0;
	assert_int_equal(call(&r->req)->status, OK);
	assert_int_equal(f.n_get, gets + 3);
	assert_int_equal(ntohs(dev_peer(1)->endpoint.sin.sin_port), 9);
	free(r);
}

/* A read (controld's GetDevice, or the agent's own check when its view is
 * AGENT_MODEL_MAX_AGE_MS old) that finds the applied set changed puts it
 * back at once: a removed peer returns, a stray one goes, a roamed endpoint
 * stays. */
static void test_a_read_puts_back_what_someone_else_changed(void **state)
{
	struct wg_peer *p;
	int sets;

	expect_ok(two_peers());
	sets = f.n_set;
	remove_peer(f.dev, (size_t)(dev_peer(1) - f.dev->peers));
	p = wg_device_add_peer(f.dev);
	key_of(99, p->public_key);
	dev_peer(2)->endpoint.sin.sin_port = htons(4444); /* roamed */
	assert_int_equal(get_device()->device->n_peers, 2);
	assert_int_equal(f.n_set, sets + 1);
	assert_non_null(dev_peer(1));
	assert_null(dev_peer(99));
	assert_int_equal(ntohs(dev_peer(2)->endpoint.sin.sin_port), 4444);

	/* Nothing changed: a read writes nothing. */
	get_device();
	assert_int_equal(f.n_set, sets + 1);

	/* Without controld: the agent's check, once its view is old. */
	assert_int_equal(agent_check_device(&agent, clock_ms), AGENT_MODEL_MAX_AGE_MS);
	dev_peer(2)->keepalive = 7;
	assert_int_equal(agent_check_device(&agent, clock_ms + 1000), AGENT_MODEL_MAX_AGE_MS - 1000);
	assert_int_equal(f.n_set, sets + 1);
	assert_int_equal(agent_check_device(&agent, clock_ms + AGENT_MODEL_MAX_AGE_MS),
			 AGENT_MODEL_MAX_AGE_MS);
	assert_int_equal(f.n_set, sets + 2);
	assert_int_equal(dev_peer(2)->keepalive, 0);
}

/* A read that fails (wireguard-go slow to answer) keeps the applied set: the
 * agent reads again a second later and puts back what was changed. */
static void test_a_failed_read_is_retried_and_still_puts_back(void **state)
{
	expect_ok(two_peers());
	remove_peer(f.dev, (size_t)(dev_peer(1) - f.dev->peers));
	f.get_ret = -ETIMEDOUT;
	assert_int_equal(get_device()->status, P2PWG__STATUS__FAILED);
	assert_int_equal(agent_check_device(&agent, clock_ms), 1000);
	f.get_ret = 0;
	assert_int_equal(agent_check_device(&agent, clock_ms + 1000), AGENT_MODEL_MAX_AGE_MS);
	assert_non_null(dev_peer(1));
}

/* Before any SetPeers the agent has nothing to put back: an adopted
 * interface's peers are left as they are until controld says. */
static void test_a_read_before_any_set_changes_nothing(void **state)
{
	struct wg_peer *p = wg_device_add_peer(f.dev);

	key_of(99, p->public_key);
	get_device();
	assert_int_equal(agent_check_device(&agent, 99999999), -1);
	assert_int_equal(f.n_set, 0);
	assert_non_null(dev_peer(99));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* PathCheck goes through the request table: refused for a key that is not a
 * peer of the last SetPeers; for a peer, the check leaves from the WireGuard
 * port as a 72-byte Binding Request, the reply waits, and an unanswered check
 * ends as TIMEOUT. */
static void test_path_check(void **state)
{
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__PathCheck pc = P2PWG__PATH_CHECK__INIT;
	P2pwg__Endpoint ep = P2PWG__ENDPOINT__INIT;
	uint8_t key[WG_KEY_LEN], to[4] = { 192, 168, 1, 3 };
	int replies, sent;
	size_t len;
	uint8_t buf[256];

	key_of(1, key);
	ep.addr.data = to;
	ep.addr.len = 4;
	ep.port = 51820;
	pc.to = &ep;
	pc.peer_key.data = key;
	pc.peer_key.len = WG_KEY_LEN;
	pc.txid.data = (uint8_t *)"abcdefghijkl";
	pc.txid.len = 12;
	pc.timeout_ms = 700;
	req.msg_case = P2PWG__REQUEST__MSG_PATH_CHECK;
	req.path_check = &pc;
	assert_int_equal(call(&req)->status, INVALID);
	assert_non_null(strstr(f.resp->error, "not a peer"));

	expect_ok(two_peers());
	replies = f.n_replies;
	sent = f.n_stun;
	req.id = ++next_id;
	len = p2pwg__request__pack(&req, buf);
	handle_raw(buf, len, len);
	assert_int_equal(f.n_replies, replies); /* deferred */
	assert_int_equal(f.n_stun, sent + 1);
	assert_int_equal(f.stun_len, CONNCHK_MSG_LEN);
	assert_int_equal(f.stun_msg[0], 0x00);
	assert_int_equal(f.stun_msg[1], 0x01);
	assert_memory_equal(f.stun_msg + 8, "abcdefghijkl", 12);
	assert_memory_equal(&f.stun_to.sin_addr, to, 4);
	assert_int_equal(agent_tick(&agent, 1000), 700);
	agent_tick(&agent, 1700);
	assert_int_equal(f.n_replies, replies + 1);
	assert_true(f.resp->id == req.id);
	assert_int_equal(f.resp->status, P2PWG__STATUS__TIMEOUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_hello),
		T(test_get_device),
		T(test_set_peers_happy),
		T(test_set_peers_repairs_port),
		T(test_limit_peers),
		T(test_limit_key),
		T(test_limit_keepalive),
		T(test_limit_endpoint),
		T(test_limit_allowed_ips),
		T(test_limit_address),
		T(test_limit_listen_port),
		T(test_no_address),
		T(test_backend_failure),
		T(test_change_one_endpoint),
		T(test_remove_one_peer),
		T(test_one_peer_change_writes_that_peer_without_reading),
		T(test_stale_view_falls_back_to_a_full_read),
		T(test_a_read_puts_back_what_someone_else_changed),
		T(test_a_read_before_any_set_changes_nothing),
		T(test_a_failed_read_is_retried_and_still_puts_back),
		T(test_malformed),
		T(test_oversize_frame_refused_before_unpacking),
		T(test_largest_set_peers_fits_the_cap),
		T(test_small_frame_of_many_elements_stops_at_heap_budget),
		T(test_unknown_request),
		T(test_stun_exchange),
		T(test_stun_timeout),
		T(test_stun_invalid),
		T(test_stun_busy),
		T(test_stun_client_gone),
		T(test_check_stun_request),
		T(test_path_check),
		T(test_relay_auth),
	};

	log_set_level(LOG_LVL_ERROR); /* refusals are logged as warnings */
	return cmocka_run_group_tests(tests, NULL, NULL);
}

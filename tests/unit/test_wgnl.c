// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>

#include "wgnl.h"

#define FAMILY 0x1234
#define SEQ0 1000
#define BUILD(dev, size, c) wgnl_build_set(dev, FAMILY, SEQ0, size, capture_cb, c)

/* ---- capture of built messages ---- */

struct capture {
	struct nlmsghdr *msg[64];
	size_t n;
	int fail_at; /* emit() returns -EIO for this message index, -1 never */
};

static int capture_cb(void *ctx, const struct nlmsghdr *nlh)
{
	struct capture *c = ctx;

	if ((int)c->n == c->fail_at)
		return -EIO;
	assert_true(c->n < MNL_ARRAY_SIZE(c->msg));
	c->msg[c->n] = malloc(nlh->nlmsg_len);
	assert_non_null(c->msg[c->n]);
	memcpy(c->msg[c->n++], nlh, nlh->nlmsg_len);
	return 0;
}

static void capture_free(struct capture *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->msg[i]);
	c->n = 0;
}

/*
 * Independent strict decoder of one WG_CMD_SET_DEVICE message into the
 * device model: WGPEER_F_* map back to WGPEER_*, a keepalive attribute sets
 * WGPEER_HAS_KEEPALIVE, WGDEVICE_F_REPLACE_PEERS sets WGDEV_REPLACE_PEERS.
 */
static void decode_aip(const struct nlattr *nest, struct wg_peer *p)
{
	struct wg_allowedip a = { 0 };
	const struct nlattr *attr;
	int seen = 0;

	mnl_attr_for_each_nested(attr, nest) {
		switch (mnl_attr_get_type(attr)) {
		case WGALLOWEDIP_A_FAMILY:
			assert_int_equal(mnl_attr_validate(attr, MNL_TYPE_U16), 0);
			a.family = mnl_attr_get_u16(attr);
			break;
		case WGALLOWEDIP_A_IPADDR:
			assert_true(mnl_attr_get_payload_len(attr) == 4 ||
				    mnl_attr_get_payload_len(attr) == 16);
			memcpy(&a.ip6, mnl_attr_get_payload(attr), mnl_attr_get_payload_len(attr));
			break;
		case WGALLOWEDIP_A_CIDR_MASK:
			assert_int_equal(mnl_attr_validate(attr, MNL_TYPE_U8), 0);
			a.cidr = mnl_attr_get_u8(attr);
			break;
		default:
			fail_msg("unexpected allowed IP attribute %u", mnl_attr_get_type(attr));
		}
		seen++;
	}
	assert_int_equal(seen, 3);
	assert_int_equal(wg_peer_add_allowedip(p, &a), 0);
}

static void decode_peer(const struct nlattr *nest, struct wg_device *dev)
{
	struct wg_peer *p = wg_device_add_peer(dev);
	const struct nlattr *attr, *a;
	bool has_key = false;
	uint32_t f;

	assert_non_null(p);
	mnl_attr_for_each_nested(attr, nest) {
		switch (mnl_attr_get_type(attr)) {
		case WGPEER_A_PUBLIC_KEY:
			assert_int_equal(mnl_attr_validate2(attr, MNL_TYPE_BINARY, WG_KEY_LEN), 0);
			memcpy(p->public_key, mnl_attr_get_payload(attr), WG_KEY_LEN);
			has_key = true;
			break;
		case WGPEER_A_FLAGS:
			assert_int_equal(mnl_attr_validate(attr, MNL_TYPE_U32), 0);
			f = mnl_attr_get_u32(attr);
			assert_int_equal(f & ~__WGPEER_F_ALL, 0);
			if (f & WGPEER_F_REMOVE_ME)
				p->flags |= WGPEER_REMOVE_ME;
			if (f & WGPEER_F_REPLACE_ALLOWEDIPS)
				p->flags |= WGPEER_REPLACE_ALLOWEDIPS;
			if (f & WGPEER_F_UPDATE_ONLY)
				p->flags |= WGPEER_UPDATE_ONLY;
			break;
		case WGPEER_A_ENDPOINT:
			assert_true(mnl_attr_get_payload_len(attr) == sizeof(struct sockaddr_in) ||
				    mnl_attr_get_payload_len(attr) == sizeof(struct sockaddr_in6));
			memcpy(&p->endpoint, mnl_attr_get_payload(attr),
			       mnl_attr_get_payload_len(attr));
			break;
		case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
			assert_int_equal(mnl_attr_validate(attr, MNL_TYPE_U16), 0);
			p->keepalive = mnl_attr_get_u16(attr);
			p->flags |= WGPEER_HAS_KEEPALIVE;
			break;
		case WGPEER_A_ALLOWEDIPS:
			mnl_attr_for_each_nested(a, attr)
				decode_aip(a, p);
			break;
		default:
			fail_msg("unexpected peer attribute %u", mnl_attr_get_type(attr));
		}
	}
	assert_true(has_key);
}

static struct wg_device *decode_set(const struct nlmsghdr *nlh, size_t bufsize, uint32_t seq)
{
	const struct genlmsghdr *genl = mnl_nlmsg_get_payload(nlh);
	struct wg_device *dev = wg_device_new(NULL);
	const struct nlattr *attr, *p;
	bool has_name = false, has_flags = false;
	uint32_t f;

	assert_non_null(dev);
	assert_true(nlh->nlmsg_len <= bufsize);
	assert_int_equal(nlh->nlmsg_type, FAMILY);
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
	assert_int_equal(nlh->nlmsg_seq, seq);
	assert_int_equal(genl->cmd, WG_CMD_SET_DEVICE);
	assert_int_equal(genl->version, WG_GENL_VERSION);
	mnl_attr_for_each(attr, nlh, GENL_HDRLEN) {
		switch (mnl_attr_get_type(attr)) {
		case WGDEVICE_A_IFNAME:
			assert_int_equal(mnl_attr_validate(attr, MNL_TYPE_NUL_STRING), 0);
			snprintf(dev->name, sizeof(dev->name), "%s", mnl_attr_get_str(attr));
			has_name = true;
			break;
		case WGDEVICE_A_FLAGS:
			assert_int_equal(mnl_attr_validate(attr, MNL_TYPE_U32), 0);
			f = mnl_attr_get_u32(attr);
			assert_int_equal(f & ~__WGDEVICE_F_ALL, 0);
			if (f & WGDEVICE_F_REPLACE_PEERS)
				dev->flags |= WGDEV_REPLACE_PEERS;
			has_flags = true;
			break;
		case WGDEVICE_A_PRIVATE_KEY:
			assert_int_equal(mnl_attr_validate2(attr, MNL_TYPE_BINARY, WG_KEY_LEN), 0);
			memcpy(dev->private_key, mnl_attr_get_payload(attr), WG_KEY_LEN);
			dev->flags |= WGDEV_HAS_PRIVATE_KEY;
			break;
		case WGDEVICE_A_LISTEN_PORT:
			assert_int_equal(mnl_attr_validate(attr, MNL_TYPE_U16), 0);
			dev->listen_port = mnl_attr_get_u16(attr);
			dev->flags |= WGDEV_HAS_LISTEN_PORT;
			break;
		case WGDEVICE_A_PEERS:
			mnl_attr_for_each_nested(p, attr)
				decode_peer(p, dev);
			break;
		default:
			fail_msg("unexpected device attribute %u", mnl_attr_get_type(attr));
		}
	}
	/* every byte of the message is covered by attributes */
	assert_ptr_equal((const char *)attr, (const char *)mnl_nlmsg_get_payload_tail(nlh));
	assert_true(has_name && has_flags);
	return dev;
}

/* ---- fixtures ---- */

static void fill_key(uint8_t key[WG_KEY_LEN], unsigned seed)
{
	for (int i = 0; i < WG_KEY_LEN; i++)
		key[i] = (uint8_t)(seed * 31 + i * 7);
	memcpy(key, &seed, sizeof(seed)); /* distinct seeds, distinct keys */
}

static struct wg_allowedip aip4(uint32_t host, uint8_t cidr)
{
	struct wg_allowedip a = { .family = AF_INET, .cidr = cidr };

	a.ip4.s_addr = htonl(host);
	return a;
}

static struct wg_allowedip aip6(const char *s, uint8_t cidr)
{
	struct wg_allowedip a = { .family = AF_INET6, .cidr = cidr };

	assert_int_equal(inet_pton(AF_INET6, s, &a.ip6), 1);
	return a;
}

static void set_ep4(union wg_endpoint *ep, uint32_t host, uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	ep->sin.sin_family = AF_INET;
	ep->sin.sin_addr.s_addr = htonl(host);
	ep->sin.sin_port = htons(port);
}

static void set_ep6(union wg_endpoint *ep, const char *s, uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	ep->sin6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, s, &ep->sin6.sin6_addr), 1);
	ep->sin6.sin6_port = htons(port);
}

static void assert_aip_equal(const struct wg_allowedip *a, const struct wg_allowedip *b)
{
	assert_int_equal(a->family, b->family);
	assert_int_equal(a->cidr, b->cidr);
	assert_memory_equal(&a->ip6, &b->ip6, a->family == AF_INET ? 4 : 16);
}

static void assert_peer_equal(const struct wg_peer *a, const struct wg_peer *b)
{
	assert_memory_equal(a->public_key, b->public_key, WG_KEY_LEN);
	assert_int_equal(a->flags, b->flags);
	assert_true(wg_endpoint_equal(&a->endpoint, &b->endpoint));
	assert_int_equal(a->keepalive, b->keepalive);
	assert_int_equal(a->n_allowedips, b->n_allowedips);
	for (size_t i = 0; i < a->n_allowedips; i++)
		assert_aip_equal(&a->allowedips[i], &b->allowedips[i]);
}

/* ---- SET building ---- */

static void test_set_small_roundtrip(void **state)
{
	struct wg_device *dev = wg_device_new("wg-test0"), *got;
	struct capture c = { .fail_at = -1 };
	struct wg_allowedip a;
	struct wg_peer *p;

	dev->flags = WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_LISTEN_PORT | WGDEV_REPLACE_PEERS;
	fill_key(dev->private_key, 1);
	dev->listen_port = 51820;

	p = wg_device_add_peer(dev);
	fill_key(p->public_key, 2);
	p->flags = WGPEER_REPLACE_ALLOWEDIPS | WGPEER_HAS_KEEPALIVE | WGPEER_UPDATE_ONLY;
	p->keepalive = 25;
	set_ep4(&p->endpoint, 0xc0000201, 51821);
	a = aip4(0x0a000002, 32);
	wg_peer_add_allowedip(p, &a);
	a = aip6("fd00::2", 128);
	wg_peer_add_allowedip(p, &a);

	p = wg_device_add_peer(dev);
	fill_key(p->public_key, 3);
	set_ep6(&p->endpoint, "2001:db8::3", 4242);

	p = wg_device_add_peer(dev);
	fill_key(p->public_key, 4);
	p->flags = WGPEER_REMOVE_ME;

	assert_int_equal(BUILD(dev, MNL_SOCKET_BUFFER_SIZE, &c), 0);
	assert_int_equal(c.n, 1);
	got = decode_set(c.msg[0], MNL_SOCKET_BUFFER_SIZE, SEQ0);
	assert_string_equal(got->name, "wg-test0");
	assert_int_equal(got->flags, dev->flags);
	assert_memory_equal(got->private_key, dev->private_key, WG_KEY_LEN);
	assert_int_equal(got->listen_port, 51820);
	assert_int_equal(got->n_peers, 3);
	for (size_t i = 0; i < 3; i++)
		assert_peer_equal(&got->peers[i], &dev->peers[i]);
	wg_device_free(got);
	capture_free(&c);

	/* without the HAS flags, neither key nor port is sent */
	dev->flags = 0;
	assert_int_equal(BUILD(dev, MNL_SOCKET_BUFFER_SIZE, &c), 0);
	got = decode_set(c.msg[0], MNL_SOCKET_BUFFER_SIZE, SEQ0);
	assert_int_equal(got->flags, 0);
	wg_device_free(got);
	capture_free(&c);

	/* emit()'s error is returned */
	c.fail_at = 0;
	assert_int_equal(BUILD(dev, MNL_SOCKET_BUFFER_SIZE, &c), -EIO);
	wg_device_free(dev);
}

static void test_set_no_peers(void **state)
{
	struct wg_device *dev = wg_device_new("wg1"), *got;
	struct capture c = { .fail_at = -1 };

	dev->flags = WGDEV_REPLACE_PEERS;
	assert_int_equal(BUILD(dev, MNL_SOCKET_BUFFER_SIZE, &c), 0);
	assert_int_equal(c.n, 1);
	got = decode_set(c.msg[0], MNL_SOCKET_BUFFER_SIZE, SEQ0);
	assert_int_equal(got->flags, WGDEV_REPLACE_PEERS);
	assert_int_equal(got->n_peers, 0);
	wg_device_free(got);
	capture_free(&c);
	wg_device_free(dev);
}

static void test_set_many_peers(void **state)
{
	const size_t npeers = 245, bufsize = MNL_SOCKET_BUFFER_SIZE;
	struct wg_device *dev = wg_device_new("wg0");
	struct capture c = { .fail_at = -1 };
	unsigned seen[245] = { 0 };

	dev->flags = WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_LISTEN_PORT | WGDEV_REPLACE_PEERS;
	fill_key(dev->private_key, 9999);
	dev->listen_port = 1234;
	for (size_t i = 0; i < npeers; i++) {
		struct wg_peer *p = wg_device_add_peer(dev);
		struct wg_allowedip a = aip4(0x0a000000 + i, 32);

		fill_key(p->public_key, 100 + i);
		p->flags = WGPEER_REPLACE_ALLOWEDIPS | (i % 2 ? WGPEER_HAS_KEEPALIVE : 0);
		p->keepalive = i % 2 ? 25 : 0;
		if (i % 3)
			set_ep4(&p->endpoint, 0xc6336400 + i, 10000 + i);
		else
			set_ep6(&p->endpoint, "2001:db8::1234:5678", 10000 + i);
		assert_int_equal(wg_peer_add_allowedip(p, &a), 0);
	}

	assert_int_equal(BUILD(dev, bufsize, &c), 0);
	assert_true(c.n > 1);
	for (size_t m = 0; m < c.n; m++) {
		struct wg_device *got = decode_set(c.msg[m], bufsize, SEQ0 + m);

		assert_string_equal(got->name, "wg0");
		if (m == 0) {
			assert_int_equal(got->flags, dev->flags);
			assert_memory_equal(got->private_key, dev->private_key, WG_KEY_LEN);
			assert_int_equal(got->listen_port, 1234);
		} else {
			assert_int_equal(got->flags, 0);
		}
		assert_true(got->n_peers > 0);
		for (size_t i = 0; i < got->n_peers; i++) {
			const struct wg_peer *want;
			size_t idx;

			for (idx = 0; idx < npeers; idx++)
				if (!memcmp(dev->peers[idx].public_key, got->peers[i].public_key,
					    WG_KEY_LEN))
					break;
			assert_true(idx < npeers);
			want = &dev->peers[idx];
			assert_peer_equal(&got->peers[i], want);
			seen[idx]++;
		}
		wg_device_free(got);
	}
	for (size_t i = 0; i < npeers; i++)
		assert_int_equal(seen[i], 1);
	capture_free(&c);
	wg_device_free(dev);
}

static void test_set_split_allowedips(void **state)
{
	const size_t naips = 600, bufsize = MNL_SOCKET_BUFFER_SIZE;
	struct wg_device *dev = wg_device_new("wg0");
	struct capture c = { .fail_at = -1 };
	struct wg_peer *p, *after;
	size_t k = 0, after_seen = 0;

	p = wg_device_add_peer(dev);
	fill_key(p->public_key, 7);
	p->flags = WGPEER_REPLACE_ALLOWEDIPS | WGPEER_HAS_KEEPALIVE | WGPEER_UPDATE_ONLY;
	p->keepalive = 15;
	set_ep6(&p->endpoint, "2001:db8::7", 51820);
	for (size_t i = 0; i < naips; i++) {
		struct wg_allowedip a = i % 4 ? aip4(0x0a000000 + (i << 8), 24)
					       : aip6("fd00:1:2:3::", 64);

		if (a.family == AF_INET6)
			a.ip6.s6_addr[7] = (uint8_t)i;
		assert_int_equal(wg_peer_add_allowedip(p, &a), 0);
	}
	after = wg_device_add_peer(dev);
	fill_key(after->public_key, 8);
	after = NULL;

	assert_int_equal(BUILD(dev, bufsize, &c), 0);
	assert_true(c.n > 2);
	p = &dev->peers[0];
	for (size_t m = 0; m < c.n; m++) {
		struct wg_device *got = decode_set(c.msg[m], bufsize, SEQ0 + m);

		for (size_t i = 0; i < got->n_peers; i++) {
			const struct wg_peer *g = &got->peers[i];

			if (!memcmp(g->public_key, dev->peers[1].public_key, WG_KEY_LEN)) {
				assert_peer_equal(g, &dev->peers[1]);
				assert_int_equal(k, naips); /* after the big peer is complete */
				after_seen++;
				continue;
			}
			assert_memory_equal(g->public_key, p->public_key, WG_KEY_LEN);
			if (m == 0) {
				assert_int_equal(g->flags, p->flags);
				assert_true(wg_endpoint_equal(&g->endpoint, &p->endpoint));
				assert_int_equal(g->keepalive, 15);
			} else {
				/* continuation: no REPLACE_ALLOWEDIPS, no endpoint, no keepalive */
				assert_int_equal(g->flags, WGPEER_UPDATE_ONLY);
				assert_int_equal(g->endpoint.sa.sa_family, AF_UNSPEC);
			}
			assert_true(g->n_allowedips > 0);
			for (size_t j = 0; j < g->n_allowedips; j++, k++) {
				assert_true(k < naips);
				assert_aip_equal(&g->allowedips[j], &p->allowedips[k]);
			}
		}
		wg_device_free(got);
	}
	assert_int_equal(k, naips);
	assert_int_equal(after_seen, 1);
	capture_free(&c);
	wg_device_free(dev);
}

static void test_set_emsgsize(void **state)
{
	struct wg_device *dev = wg_device_new("wg0");
	struct capture c = { .fail_at = -1 };
	struct wg_allowedip a = aip4(0x0a000001, 32);
	struct wg_peer *p = wg_device_add_peer(dev);

	fill_key(p->public_key, 1);
	wg_peer_add_allowedip(p, &a);
	for (size_t sz = 0; sz < 64; sz += 4)
		assert_int_equal(BUILD(dev, sz, &c), -EMSGSIZE);
	assert_int_equal(c.n, 0);

	/* room for the peer header but not for its allowed IP */
	assert_int_equal(BUILD(dev, 96, &c), -EMSGSIZE);
	assert_int_equal(c.n, 0);
	/* just enough for both */
	assert_int_equal(BUILD(dev, 124, &c), 0);
	assert_int_equal(c.n, 1);
	capture_free(&c);

	/* a bad allowed IP is refused before anything is emitted */
	p->allowedips[0].cidr = 33;
	assert_int_equal(BUILD(dev, 4096, &c), -EINVAL);
	assert_int_equal(c.n, 0);
	wg_device_free(dev);
}

/* ---- GET parsing ---- */

static struct nlmsghdr *get_header(char *buf)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = FAMILY;
	nlh->nlmsg_flags = NLM_F_MULTI;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = WG_CMD_GET_DEVICE;
	genl->version = WG_GENL_VERSION;
	return nlh;
}

static void put_aip(struct nlmsghdr *nlh, const struct wg_allowedip *a)
{
	struct nlattr *n = mnl_attr_nest_start(nlh, 0);

	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, a->family);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, a->family == AF_INET ? 4 : 16, &a->ip6);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, a->cidr);
	mnl_attr_nest_end(nlh, n);
}

static void test_parse_get_coalesce(void **state)
{
	char buf1[4096] __attribute__((aligned(4))), buf2[4096] __attribute__((aligned(4)));
	struct wg_allowedip a[4] = { aip4(0x0a000001, 32), aip6("fd00::1", 128),
				     aip4(0x0a000002, 32), aip4(0x0a000003, 32) };
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN], ka[WG_KEY_LEN], kb[WG_KEY_LEN], kc[WG_KEY_LEN];
	struct __kernel_timespec ts = { .tv_sec = 1700000000, .tv_nsec = 123456789 };
	union wg_endpoint epa, epb;
	struct wg_device *dev = NULL;
	struct nlattr *peers, *peer, *aips;
	struct nlmsghdr *nlh;

	fill_key(priv, 1);
	fill_key(pub, 2);
	fill_key(ka, 3);
	fill_key(kb, 4);
	fill_key(kc, 5);
	set_ep4(&epa, 0xc0000201, 51820);
	set_ep6(&epb, "2001:db8::b", 51821);

	nlh = get_header(buf1);
	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 7);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, priv);
	mnl_attr_put(nlh, WGDEVICE_A_PUBLIC_KEY, WG_KEY_LEN, pub);
	mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
	mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, ka);
	mnl_attr_put(nlh, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN, kc);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(epa.sin), &epa.sin);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), &ts);
	mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 1000);
	mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, 5000000000ULL);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_aip(nlh, &a[0]);
	put_aip(nlh, &a[1]);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 1);
	mnl_attr_nest_end(nlh, peer);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, kb);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(epb.sin6), &epb.sin6);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_aip(nlh, &a[2]);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);

	/* second message: peer B continues, then peer C */
	nlh = get_header(buf2);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, kb);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_aip(nlh, &a[3]);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, kc);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);

	assert_int_equal(wgnl_parse_get((struct nlmsghdr *)buf1, &dev), 0);
	assert_int_equal(wgnl_parse_get((struct nlmsghdr *)buf2, &dev), 0);
	assert_non_null(dev);
	assert_int_equal(dev->ifindex, 7);
	assert_string_equal(dev->name, "wg0");
	assert_int_equal(dev->flags,
			 WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_PUBLIC_KEY | WGDEV_HAS_LISTEN_PORT);
	assert_memory_equal(dev->private_key, priv, WG_KEY_LEN);
	assert_memory_equal(dev->public_key, pub, WG_KEY_LEN);
	assert_int_equal(dev->listen_port, 51820);
	assert_int_equal(dev->n_peers, 3);

	assert_memory_equal(dev->peers[0].public_key, ka, WG_KEY_LEN);
	assert_true(wg_endpoint_equal(&dev->peers[0].endpoint, &epa));
	assert_int_equal(dev->peers[0].keepalive, 25);
	assert_int_equal(dev->peers[0].last_handshake.tv_sec, 1700000000);
	assert_int_equal(dev->peers[0].last_handshake.tv_nsec, 123456789);
	assert_int_equal(dev->peers[0].rx_bytes, 1000);
	assert_int_equal(dev->peers[0].tx_bytes, 5000000000ULL);
	assert_int_equal(dev->peers[0].n_allowedips, 2);
	assert_aip_equal(&dev->peers[0].allowedips[0], &a[0]);
	assert_aip_equal(&dev->peers[0].allowedips[1], &a[1]);

	assert_memory_equal(dev->peers[1].public_key, kb, WG_KEY_LEN);
	assert_true(wg_endpoint_equal(&dev->peers[1].endpoint, &epb));
	assert_int_equal(dev->peers[1].keepalive, 0);
	assert_int_equal(dev->peers[1].last_handshake.tv_sec, 0);
	assert_int_equal(dev->peers[1].n_allowedips, 2);
	assert_aip_equal(&dev->peers[1].allowedips[0], &a[2]);
	assert_aip_equal(&dev->peers[1].allowedips[1], &a[3]);

	assert_memory_equal(dev->peers[2].public_key, kc, WG_KEY_LEN);
	assert_int_equal(dev->peers[2].n_allowedips, 0);
	assert_int_equal(dev->peers[2].endpoint.sa.sa_family, AF_UNSPEC);
	wg_device_free(dev);
}

static void test_parse_get_bad_lengths(void **state)
{
	char buf[4096] __attribute__((aligned(4)));
	uint8_t key[WG_KEY_LEN + 1], kb[WG_KEY_LEN];
	struct wg_allowedip a = aip4(0x0a000009, 24);
	struct wg_device *dev = NULL;
	struct nlattr *peers, *peer, *aips, *n;
	struct nlmsghdr *nlh;
	union wg_endpoint ep;

	fill_key(key, 11);
	key[WG_KEY_LEN] = 0xee;
	fill_key(kb, 12);
	set_ep4(&ep, 0x01020304, 5);

	nlh = get_header(buf);
	mnl_attr_put_u16(nlh, WGDEVICE_A_IFINDEX, 3);            /* u16, not u32 */
	mnl_attr_put(nlh, WGDEVICE_A_IFNAME, 3, "wg0");          /* no NUL */
	mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN - 1, key);
	mnl_attr_put(nlh, WGDEVICE_A_PUBLIC_KEY, WG_KEY_LEN + 1, key);
	mnl_attr_put_u32(nlh, WGDEVICE_A_LISTEN_PORT, 51820);    /* u32, not u16 */
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	/* 31-byte key: the peer is dropped */
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN - 1, key);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(ep.sin), &ep.sin);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_aip(nlh, &a);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	/* good key, bad fields: the peer stays, the fields are ignored */
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, kb);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(ep.sin) - 1, &ep.sin);
	mnl_attr_put_u32(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
	mnl_attr_put_u32(nlh, WGPEER_A_RX_BYTES, 99);
	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, 8, key);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	n = mnl_attr_nest_start(nlh, 0);                         /* v4 family, 5-byte address */
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 5, key);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, 24);
	mnl_attr_nest_end(nlh, n);
	n = mnl_attr_nest_start(nlh, 0);                         /* v4 family, v6 address */
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 16, key);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, 24);
	mnl_attr_nest_end(nlh, n);
	n = mnl_attr_nest_start(nlh, 0);                         /* cidr out of range */
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 4, key);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, 33);
	mnl_attr_nest_end(nlh, n);
	put_aip(nlh, &a);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);

	assert_int_equal(wgnl_parse_get(nlh, &dev), 0);
	assert_non_null(dev);
	assert_int_equal(dev->ifindex, 0);
	assert_string_equal(dev->name, "");
	assert_int_equal(dev->flags, 0);
	assert_int_equal(dev->listen_port, 0);
	assert_int_equal(dev->n_peers, 1);
	assert_memory_equal(dev->peers[0].public_key, kb, WG_KEY_LEN);
	assert_int_equal(dev->peers[0].endpoint.sa.sa_family, AF_UNSPEC);
	assert_int_equal(dev->peers[0].keepalive, 0);
	assert_int_equal(dev->peers[0].rx_bytes, 0);
	assert_int_equal(dev->peers[0].last_handshake.tv_sec, 0);
	assert_int_equal(dev->peers[0].n_allowedips, 1);
	assert_aip_equal(&dev->peers[0].allowedips[0], &a);
	wg_device_free(dev);
	dev = NULL;

	/* a message too short for its genetlink header, or another command */
	nlh = mnl_nlmsg_put_header(buf);
	assert_int_equal(wgnl_parse_get(nlh, &dev), -EBADMSG);
	nlh = get_header(buf);
	((struct genlmsghdr *)mnl_nlmsg_get_payload(nlh))->cmd = WG_CMD_SET_DEVICE;
	assert_int_equal(wgnl_parse_get(nlh, &dev), -EBADMSG);
	assert_null(dev);
}

/* Round trip: what wgnl_build_set emits, read back by wgnl_parse_get. */
static int reparse_cb(void *ctx, const struct nlmsghdr *nlh)
{
	char buf[8192] __attribute__((aligned(4)));
	struct nlmsghdr *copy = (struct nlmsghdr *)buf;

	memcpy(buf, nlh, nlh->nlmsg_len);
	((struct genlmsghdr *)mnl_nlmsg_get_payload(copy))->cmd = WG_CMD_GET_DEVICE;
	return wgnl_parse_get(copy, ctx);
}

static void test_build_then_parse(void **state)
{
	struct wg_device *dev = wg_device_new("wg9"), *got = NULL;
	struct wg_peer *p = wg_device_add_peer(dev);

	fill_key(p->public_key, 42);
	set_ep4(&p->endpoint, 0x7f000001, 9);
	for (size_t i = 0; i < 300; i++) {
		struct wg_allowedip a = aip4(0x0a000000 + (i << 8), 24);

		wg_peer_add_allowedip(p, &a);
	}
	assert_int_equal(wgnl_build_set(dev, FAMILY, SEQ0, 2048, reparse_cb, &got), 0);
	assert_non_null(got);
	assert_int_equal(got->n_peers, 1);
	assert_int_equal(got->peers[0].n_allowedips, 300);
	for (size_t i = 0; i < 300; i++)
		assert_aip_equal(&got->peers[0].allowedips[i], &p->allowedips[i]);
	assert_true(wg_endpoint_equal(&got->peers[0].endpoint, &p->endpoint));
	wg_device_free(got);
	wg_device_free(dev);
}

/* ---- live kernel (no WireGuard module on the test machines) ---- */

static void test_kernel(void **state)
{
	struct wg_device *dev = (struct wg_device *)1, *set = wg_device_new("lo");
	int ret = wgnl_get_device("lo", &dev);

	assert_true(ret < 0);
	assert_null(dev);
	if (!wgnl_available()) {
		assert_int_equal(ret, -EPROTONOSUPPORT);
		assert_int_equal(wgnl_set_device(set), -EPROTONOSUPPORT);
	}
	assert_true(wgnl_get_device("no-such-dev-xyz", &dev) < 0);
	assert_int_equal(wgnl_get_device("this-name-is-far-too-long", &dev), -ENODEV);
	assert_string_equal(wgnl_backend.name, "kernel");
	assert_true(wgnl_backend.get(&wgnl_backend, "lo", &dev) < 0);
	wg_device_free(set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_small_roundtrip),
		cmocka_unit_test(test_set_no_peers),
		cmocka_unit_test(test_set_many_peers),
		cmocka_unit_test(test_set_split_allowedips),
		cmocka_unit_test(test_set_emsgsize),
		cmocka_unit_test(test_parse_get_coalesce),
		cmocka_unit_test(test_parse_get_bad_lengths),
		cmocka_unit_test(test_build_then_parse),
		cmocka_unit_test(test_kernel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

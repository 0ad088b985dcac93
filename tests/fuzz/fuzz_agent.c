// SPDX-License-Identifier: MIT
/*
 * The agent's request handling as controld (or anything that reaches its
 * socket) could drive it: decode, validate, diff and dispatch, with the
 * WireGuard backend replaced by an in-memory recorder. The first input byte
 * picks the path: a request packet, or a packet on the STUN socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "agentclient.h"
#include "diff.h"
#include "log.h"

static struct wg_device *dev_copy(const struct wg_device *src)
{
	struct wg_device *d = wg_device_new(src->name);

	if (!d)
		return NULL;
	d->flags = src->flags;
	d->listen_port = src->listen_port;
	memcpy(d->private_key, src->private_key, WG_KEY_LEN);
	for (size_t i = 0; i < src->n_peers; i++) {
		struct wg_peer *p = wg_device_add_peer(d);

		if (!p)
			break;
		*p = src->peers[i];
		p->allowedips = NULL;
		p->n_allowedips = 0;
		for (size_t j = 0; j < src->peers[i].n_allowedips; j++)
			wg_peer_add_allowedip(p, &src->peers[i].allowedips[j]);
	}
	return d;
}

static struct wg_device *fake;
static int n_replies;

static int be_get(struct wg_backend *be, const char *ifname, struct wg_device **out)
{
	*out = dev_copy(fake);
	return *out ? 0 : -ENOMEM;
}

static int be_set(struct wg_backend *be, const struct wg_device *change)
{
	/* Apply the change list as WireGuard does, so a later request sees its effect. */
	return diff_apply(fake, change);
}

static struct wg_backend recorder = { .name = "recorder", .get = be_get, .set = be_set };
static struct in_addr cur_addr;
static uint8_t cur_len;

static int addr_get(void *ctx, struct in_addr *a, uint8_t *len)
{
	if (!cur_len)
		return -ENOENT;
	*a = cur_addr;
	*len = cur_len;
	return 0;
}

static int addr_set(void *ctx, const struct in_addr *a, uint8_t len)
{
	cur_addr = a ? *a : (struct in_addr){ 0 };
	cur_len = a ? len : 0;
	return 0;
}

static int stun_send(void *ctx, const struct sockaddr_in *to, const uint8_t *m, size_t len)
{
	return 0;
}

static int reply(void *ctx, int client, const uint8_t *buf, size_t len)
{
	P2pwg__Response *r = p2pwg__response__unpack(NULL, len, buf);

	/* Every reply the agent sends must itself be well-formed. */
	if (!r)
		abort();
	p2pwg__response__free_unpacked(r, NULL);
	n_replies++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t priv[WG_KEY_LEN] = { 1 }, pub[WG_KEY_LEN] = { 2 };
	struct agent_config cfg = { .ifname = "wg0", .overlay_len = 24, .listen_port = 51820 };
	struct agent_ops ops = { .wg = &recorder, .addr_get = addr_get, .addr_set = addr_set,
				 .stun_send = stun_send, .reply = reply };
	struct agent a;
	struct sockaddr_in from = { .sin_family = AF_INET };

	log_set_level(LOG_LVL_ERROR);
	if (size < 1)
		return 0;
	cfg.overlay_net.s_addr = htonl(0x0a580000);
	fake = wg_device_new("wg0");
	cur_len = 0;
	n_replies = 0;
	agent_init(&a, &cfg, &ops, priv, pub);
	if (data[0] & 1) {
		/* One request, then its STUN answer if it was an exchange. */
		agent_handle(&a, 0, data + 1, size - 1, size - 1, 1000);
		if (n_replies != 1 && !a.stun[0].used && !a.chk.pend[0].used)
			abort(); /* every request gets exactly one reply */
		from = a.stun[0].server;
		agent_stun_input(&a, data + 1, size - 1, &from);
		agent_tick(&a, 100000);
	} else {
		/* Two requests back to back: the second sees the first's state. */
		size_t half = (size - 1) / 2;

		agent_handle(&a, 0, data + 1, half, half, 1000);
		agent_handle(&a, 0, data + 1 + half, size - 1 - half, size - 1 - half, 1000);
		agent_tick(&a, 100000);
	}
	agent_cleanup(&a);
	wg_device_free(fake);
	return 0;
}

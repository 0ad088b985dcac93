// SPDX-License-Identifier: MIT
#include "agentlink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agentclient.h"
#include "log.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 15000

struct pending {
	uint64_t id;
	uint64_t deadline;
	agentlink_cb cb;
	void *arg;
	struct pending *next;
};

struct agentlink {
	struct loop *l;
	char path[108];
	struct agentlink_handlers h;
	h2o_socket_t *sock;
	int fd;
	bool up;
	uint64_t next_id;
	uint32_t backoff_ms;
	unsigned failures;
	struct pending *pending;
	struct loop_timer reconnect, expire;
	uint8_t *buf;
};

static void connect_now(void *arg);

/* Try again after the current backoff, doubling it up to the cap. */
static void schedule_reconnect(struct agentlink *a)
{
	loop_timer_arm(a->l, &a->reconnect, a->backoff_ms);
	a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : a->backoff_ms * 2;
}

static void fail_all(struct agentlink *a, const char *why)
{
	while (a->pending) {
		struct pending *p = a->pending;

		a->pending = p->next;
		p->cb(p->arg, NULL, why);
		free(p);
	}
}

static void link_down(struct agentlink *a, const char *why)
{
	bool was_up = a->up;

	if (a->sock)
		h2o_socket_close(a->sock);
	a->sock = NULL;
	a->fd = -1;
	a->up = false;
	fail_all(a, why);
	if (was_up) {
		log_warn("agent", "lost wgagent: %s; reconnecting (tunnels stay up meanwhile)", why);
		a->h.down(a->h.arg);
	}
	schedule_reconnect(a);
}

static void on_hello(void *arg, const P2pwg__Response *r, const char *error)
{
	struct agentlink *a = arg;

	if (!r || r->status != P2PWG__STATUS__OK || r->msg_case != P2PWG__RESPONSE__MSG_HELLO ||
	    !r->hello->device || r->hello->public_key.len != 32) {
		log_err("agent", "wgagent refused Hello: %s", r ? r->error : error);
		link_down(a, "Hello refused");
		return;
	}
	a->up = true;
	a->failures = 0;
	a->backoff_ms = BACKOFF_MIN_MS;
	log_info("agent", "connected to wgagent at %s (%s backend, interface %s)", a->path,
		 r->hello->device->backend, r->hello->device->ifname);
	a->h.up(a->h.arg, r->hello);
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
	struct agentlink *a = sock->data;

	for (;;) {
		ssize_t n = recv(a->fd, a->buf, AGENT_MSG_MAX, MSG_DONTWAIT | MSG_TRUNC);
		P2pwg__Response *r;
		struct pending **pp, *p;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			link_down(a, n == 0 ? "connection closed" : strerror(errno));
			return;
		}
		if (n > AGENT_MSG_MAX) {
			log_warn("agent", "dropped an oversized answer (%zd bytes)", n);
			continue;
		}
		r = p2pwg__response__unpack(NULL, (size_t)n, a->buf);
		if (!r) {
			log_warn("agent", "dropped an answer that does not unpack (%zd bytes)", n);
			continue;
		}
		for (pp = &a->pending; *pp && (*pp)->id != r->id; pp = &(*pp)->next)
			;
		p = *pp;
		if (p) {
			*pp = p->next;
			p->cb(p->arg, r, NULL);
			free(p);
		} else {
			log_debug("agent", "answer %llu matches no request", (unsigned long long)r->id);
		}
		p2pwg__response__free_unpacked(r, NULL);
		if (!a->sock) /* a callback took the link down */
			return;
	}
}

static int send_req(struct agentlink *a, P2pwg__Request *req, uint32_t timeout_ms, agentlink_cb cb,
		    void *arg)
{
	size_t len;
	uint8_t *buf;
	struct pending *p;
	int ret;

	if (!a->sock)
		return -ENOTCONN;
	req->id = ++a->next_id;
	len = p2pwg__request__get_packed_size(req);
	if (len > AGENT_MSG_MAX)
		return -EMSGSIZE;
	p = calloc(1, sizeof(*p));
	buf = malloc(len ? len : 1);
	if (!p || !buf) {
		free(p);
		free(buf);
		return -ENOMEM;
	}
	p2pwg__request__pack(req, buf);
	ret = send(a->fd, buf, len, MSG_NOSIGNAL) < 0 ? -errno : 0;
	free(buf);
	if (ret) {
		free(p);
		return ret;
	}
	p->id = req->id;
	p->cb = cb;
	p->arg = arg;
	p->deadline = loop_now(a->l) + timeout_ms;
	p->next = a->pending;
	a->pending = p;
	if (!a->expire.armed || a->expire.at > p->deadline)
		loop_timer_arm(a->l, &a->expire, timeout_ms);
	return 0;
}

int agentlink_call(struct agentlink *a, P2pwg__Request *req, uint32_t timeout_ms, agentlink_cb cb,
		   void *arg)
{
	if (!a->up)
		return -ENOTCONN;
	return send_req(a, req, timeout_ms, cb, arg);
}

static void on_expire(void *arg)
{
	struct agentlink *a = arg;
	uint64_t now = loop_now(a->l), next = 0;
	struct pending **pp = &a->pending;

	while (*pp) {
		struct pending *p = *pp;

		if (p->deadline <= now) {
			*pp = p->next;
			p->cb(p->arg, NULL, "wgagent did not answer in time");
			free(p);
			continue;
		}
		if (!next || p->deadline < next)
			next = p->deadline;
		pp = &p->next;
	}
	if (next)
		loop_timer_arm(a->l, &a->expire, next - now);
}

static void connect_now(void *arg)
{
	struct agentlink *a = arg;
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__Hello hello = P2PWG__HELLO__INIT;
	struct timeval tv = { .tv_sec = 1 };
	int fd, ret;

	ret = agentclient_connect(a->path, &fd);
	if (ret) {
		if (a->failures++ == 0)
			log_warn("agent", "waiting for wgagent at %s: %s", a->path, strerror(-ret));
		else
			log_debug("agent", "still waiting for wgagent at %s: %s", a->path,
				  strerror(-ret));
		schedule_reconnect(a);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	a->fd = fd;
	a->sock = h2o_evloop_socket_create(loop_h2o(a->l), fd, H2O_SOCKET_FLAG_DONT_READ);
	a->sock->data = a;
	h2o_socket_read_start(a->sock, on_readable);
	hello.version = P2PWG__PROTOCOL_VERSION__PROTOCOL_CURRENT;
	req.msg_case = P2PWG__REQUEST__MSG_HELLO;
	req.hello = &hello;
	ret = send_req(a, &req, 5000, on_hello, a);
	if (ret)
		link_down(a, strerror(-ret));
}

struct agentlink *agentlink_new(struct loop *l, const char *path,
				const struct agentlink_handlers *h)
{
	struct agentlink *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->buf = malloc(AGENT_MSG_MAX);
	if (!a->buf) {
		free(a);
		return NULL;
	}
	a->l = l;
	snprintf(a->path, sizeof(a->path), "%s", path);
	a->h = *h;
	a->fd = -1;
	a->backoff_ms = BACKOFF_MIN_MS;
	a->reconnect.cb = connect_now;
	a->reconnect.arg = a;
	a->expire.cb = on_expire;
	a->expire.arg = a;
	loop_timer_arm(l, &a->reconnect, 0);
	return a;
}

bool agentlink_is_up(const struct agentlink *a)
{
	return a->up;
}

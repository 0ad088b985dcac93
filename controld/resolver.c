// SPDX-License-Identifier: MIT
#include "resolver.h"

#include <ares.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A DNS server that does not answer costs at most about TIMEOUT * (1 + 2)
 * per nameserver (c-ares doubles the timeout on each retry). */
#define RESOLVER_TIMEOUT_MS 1500
#define RESOLVER_TRIES 2

struct sock {
	struct resolver *r;
	ares_socket_t fd;
	struct loop_watch *w;
	struct sock *next;
};

struct lookup {
	struct resolver *r;
	resolver_cb cb;
	void *arg;
};

struct resolver {
	struct loop *l;
	ares_channel ch;
	struct sock *socks;
	struct loop_timer timer;
	bool destroying;
};

/* c-ares wants to be called at its next timeout even when no packet comes. */
static void rearm(struct resolver *r)
{
	struct timeval tv, *t = ares_timeout(r->ch, NULL, &tv);

	if (t)
		loop_timer_arm(r->l, &r->timer,
			       (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000 + 1);
	else
		loop_timer_disarm(r->l, &r->timer);
}

static void on_timer(void *arg)
{
	struct resolver *r = arg;

	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm(r);
}

static void on_ready(void *arg, int fd, int events)
{
	struct sock *s = arg;
	struct resolver *r = s->r; /* s may be freed by ares_process_fd */

	ares_process_fd(r->ch, events & (LOOP_WATCH_READ | LOOP_WATCH_ERROR) ? fd : ARES_SOCKET_BAD,
			events & LOOP_WATCH_WRITE ? fd : ARES_SOCKET_BAD);
	rearm(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	struct sock **pp, *s;

	for (pp = &r->socks; *pp && (*pp)->fd != fd; pp = &(*pp)->next)
		;
	s = *pp;
	if (!readable && !writable) { /* c-ares is about to close fd */
		if (s) {
			*pp = s->next;
			loop_watch_free(s->w);
			free(s);
		}
		return;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return;
		s->r = r;
		s->fd = fd;
		s->w = loop_watch_new(r->l, fd, on_ready, s);
		if (!s->w) {
			free(s);
			return;
		}
		s->next = r->socks;
		r->socks = s;
	}
	loop_watch_set(s->w, readable, writable);
}

int resolver_new(struct loop *l, struct resolver **out)
{
	struct ares_options o = { 0 };
	struct resolver *r;
	int ret;

	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
		return -ENOMEM;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->l = l;
	r->timer = (struct loop_timer){ .cb = on_timer, .arg = r };
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = r;
	o.timeout = RESOLVER_TIMEOUT_MS;
	o.tries = RESOLVER_TRIES;
	ret = ares_init_options(&r->ch, &o,
				ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (ret != ARES_SUCCESS) {
		free(r);
		return ret == ARES_ENOMEM ? -ENOMEM : -EIO;
	}
	*out = r;
	return 0;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	r->destroying = true;
	ares_destroy(r->ch); /* closes its sockets through on_sock_state */
	while (r->socks) {
		struct sock *s = r->socks;

		r->socks = s->next;
		loop_watch_free(s->w);
		free(s);
	}
	loop_timer_remove(r->l, &r->timer);
	free(r);
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct lookup *q = arg;
	const struct ares_addrinfo_node *n = NULL;

	if (status == ARES_SUCCESS)
		for (n = res->nodes; n && n->ai_family != AF_INET; n = n->ai_next)
			;
	if (!q->r->destroying) {
		if (n)
			q->cb(q->arg, &((const struct sockaddr_in *)n->ai_addr)->sin_addr, NULL);
		else
			q->cb(q->arg, NULL,
			      status == ARES_SUCCESS ? "no IPv4 address" : ares_strerror(status));
	}
	if (res)
		ares_freeaddrinfo(res);
	free(q);
}

int resolver_set_servers(struct resolver *r, const char *csv)
{
	return ares_set_servers_ports_csv(r->ch, csv) == ARES_SUCCESS ? 0 : -EINVAL;
}

int resolver_lookup(struct resolver *r, const char *host, resolver_cb cb, void *arg)
{
	struct ares_addrinfo_hints hints = { .ai_family = AF_INET };
	struct lookup *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	ares_getaddrinfo(r->ch, host, NULL, &hints, on_addrinfo, q);
	rearm(r);
	return 0;
}

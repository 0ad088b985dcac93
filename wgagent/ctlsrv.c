// SPDX-License-Identifier: MIT
#include "ctlsrv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int ctlsrv_init(struct ctlsrv *s, int listen_fd, const uid_t *allow, int n_allow,
		size_t max_request, ctlsrv_request_fn on_request, ctlsrv_gone_fn on_gone,
		void *ctx)
{
	if (n_allow < 0 || n_allow > CTLSRV_MAX_ALLOW)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->listen_fd = listen_fd;
	memcpy(s->allow, allow, (size_t)n_allow * sizeof(*allow));
	s->n_allow = n_allow;
	s->max_request = max_request;
	s->on_request = on_request;
	s->on_gone = on_gone;
	s->ctx = ctx;
	for (int i = 0; i < CTLSRV_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	s->buf = malloc(max_request);
	return s->buf ? 0 : -ENOMEM;
}

static void drop_queue(struct ctlsrv_client *c)
{
	for (; c->n; c->n--, c->head = (c->head + 1) % CTLSRV_QUEUE_MAX)
		free(c->queue[c->head].buf);
	c->head = 0;
	c->bytes = 0;
}

static void drop_client(struct ctlsrv *s, int i)
{
	struct ctlsrv_client *c = &s->clients[i];

	drop_queue(c);
	close(c->fd);
	c->fd = -1;
	if (s->on_gone)
		s->on_gone(s->ctx, i);
}

void ctlsrv_close(struct ctlsrv *s)
{
	for (int i = 0; i < CTLSRV_MAX_CLIENTS; i++)
		if (s->clients[i].fd >= 0)
			drop_client(s, i);
	free(s->buf);
	s->buf = NULL;
}

static bool uid_allowed(const struct ctlsrv *s, uid_t uid)
{
	if (uid == 0)
		return true;
	for (int i = 0; i < s->n_allow; i++)
		if (s->allow[i] == uid)
			return true;
	return false;
}

int ctlsrv_add(struct ctlsrv *s, int fd, const struct ucred *cred, int *client)
{
	int used = 0, same_uid = 0, free_slot = -1, ret;

	for (int i = 0; i < CTLSRV_MAX_CLIENTS; i++) {
		if (s->clients[i].fd < 0) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		used++;
		same_uid += s->clients[i].uid == cred->uid;
	}
	if (!uid_allowed(s, cred->uid)) {
		log_warn("agent", "refused client pid %d uid %u: uid not allowed (see --allow-uid)",
			 (int)cred->pid, (unsigned)cred->uid);
		ret = -EPERM;
		goto out;
	}
	/* Root keeps the last slot, so a flood from another uid cannot lock it out. */
	if (free_slot < 0 || (cred->uid != 0 && used >= CTLSRV_MAX_CLIENTS - 1)) {
		log_warn("agent", "refused client pid %d uid %u: %d clients connected%s",
			 (int)cred->pid, (unsigned)cred->uid, used,
			 cred->uid ? " (the last slot is kept for root)" : "");
		ret = -EMFILE;
		goto out;
	}
	if (cred->uid != 0 && same_uid >= CTLSRV_MAX_PER_UID) {
		log_warn("agent", "refused client pid %d uid %u: %d connections from this uid",
			 (int)cred->pid, (unsigned)cred->uid, same_uid);
		ret = -EUSERS;
		goto out;
	}
	s->clients[free_slot] = (struct ctlsrv_client){ .fd = fd, .uid = cred->uid,
							.pid = cred->pid };
	*client = free_slot;
	log_info("agent", "client %d connected: pid %d uid %u", free_slot, (int)cred->pid,
		 (unsigned)cred->uid);
	return 0;
out:
	close(fd);
	return ret;
}

void ctlsrv_accept(struct ctlsrv *s)
{
	struct ucred cred;
	socklen_t len;
	int fd, i;

	/* Bounded, so a connect flood cannot hold the loop; the rest wait in the backlog. */
	for (int n = 0; n < 2 * CTLSRV_MAX_CLIENTS; n++) {
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			log_warn("agent", "refused a client: no credentials: %s", strerror(errno));
			close(fd);
			continue;
		}
		ctlsrv_add(s, fd, &cred, &i);
	}
}

void ctlsrv_pollfds(const struct ctlsrv *s, struct pollfd *pfd)
{
	for (int i = 0; i < CTLSRV_MAX_CLIENTS; i++) {
		const struct ctlsrv_client *c = &s->clients[i];

		pfd[i] = (struct pollfd){ .fd = c->fd, .events = POLLIN | (c->n ? POLLOUT : 0) };
	}
}

/* Send queued replies in order until the socket is full. 0 or -errno. */
static int flush(struct ctlsrv_client *c)
{
	while (c->n) {
		struct ctlsrv_reply *r = &c->queue[c->head];

		if (send(c->fd, r->buf, r->len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		c->bytes -= r->len;
		free(r->buf);
		c->head = (c->head + 1) % CTLSRV_QUEUE_MAX;
		c->n--;
	}
	return 0;
}

static void input(struct ctlsrv *s, int i)
{
	ssize_t n = recv(s->clients[i].fd, s->buf, s->max_request, MSG_TRUNC | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		log_info("agent", "client %d disconnected", i);
		drop_client(s, i);
		return;
	}
	s->on_request(s->ctx, i, s->buf, (size_t)n > s->max_request ? s->max_request : (size_t)n,
		      (size_t)n);
}

void ctlsrv_events(struct ctlsrv *s, const struct pollfd *pfd)
{
	for (int i = 0; i < CTLSRV_MAX_CLIENTS; i++) {
		struct ctlsrv_client *c = &s->clients[i];
		int ret;

		/* The slot may have been dropped, or reused, since poll(). */
		if (c->fd < 0 || pfd[i].fd != c->fd || !pfd[i].revents)
			continue;
		if (pfd[i].revents & POLLOUT) {
			ret = flush(c);
			if (ret) {
				log_info("agent", "client %d disconnected: %s", i, strerror(-ret));
				drop_client(s, i);
				continue;
			}
		}
		if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
			input(s, i);
	}
}

int ctlsrv_reply(struct ctlsrv *s, int client, const uint8_t *buf, size_t len)
{
	struct ctlsrv_client *c;
	struct ctlsrv_reply *r;

	if (client < 0 || client >= CTLSRV_MAX_CLIENTS || s->clients[client].fd < 0)
		return -EBADF;
	c = &s->clients[client];
	if (!c->n) {
		/* SOCK_SEQPACKET: the whole packet is sent, or nothing. */
		if (send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
	if (c->n == CTLSRV_QUEUE_MAX || c->bytes + len > CTLSRV_QUEUE_BYTES) {
		log_warn("agent", "client %d (pid %d uid %u) does not read its replies: %u queued, "
				  "disconnected",
			 client, (int)c->pid, (unsigned)c->uid, c->n);
		drop_client(s, client);
		return -ENOBUFS;
	}
	r = &c->queue[(c->head + c->n) % CTLSRV_QUEUE_MAX];
	r->buf = malloc(len ? len : 1);
	if (!r->buf)
		return -ENOMEM;
	memcpy(r->buf, buf, len);
	r->len = len;
	c->n++;
	c->bytes += len;
	return 0;
}

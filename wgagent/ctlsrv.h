/* SPDX-License-Identifier: MIT */
/*
 * ctlsrv: the clients of the control socket. Who may connect (root and the
 * --allow-uid list, a few connections per uid, one slot always left for
 * root), reading one request at a time, and sending replies without ever
 * blocking: a reply the client is not ready for waits in a short per-client
 * queue, and a client that lets the queue fill is disconnected, so one stuck
 * reader cannot stall the agent's single loop.
 */
#ifndef P2PWG_CTLSRV_H
#define P2PWG_CTLSRV_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define CTLSRV_MAX_CLIENTS 8
#define CTLSRV_MAX_PER_UID 4 /* connections per non-root uid */
#define CTLSRV_MAX_ALLOW 16
#define CTLSRV_QUEUE_MAX 16              /* replies waiting for one client */
#define CTLSRV_QUEUE_BYTES (1024 * 1024) /* and their bytes */

/* One request packet from client: len bytes in buf, full_len its real size. */
typedef void (*ctlsrv_request_fn)(void *ctx, int client, const uint8_t *buf, size_t len,
				  size_t full_len);
/* client went away (or was disconnected); its index may be reused. */
typedef void (*ctlsrv_gone_fn)(void *ctx, int client);

struct ctlsrv_reply {
	uint8_t *buf;
	size_t len;
};

struct ctlsrv_client {
	int fd; /* -1: free slot */
	uid_t uid;
	pid_t pid;
	struct ctlsrv_reply queue[CTLSRV_QUEUE_MAX];
	unsigned head, n;
	size_t bytes;
};

struct ctlsrv {
	int listen_fd;
	uid_t allow[CTLSRV_MAX_ALLOW];
	int n_allow;
	size_t max_request;
	uint8_t *buf;
	ctlsrv_request_fn on_request;
	ctlsrv_gone_fn on_gone;
	void *ctx;
	struct ctlsrv_client clients[CTLSRV_MAX_CLIENTS];
};

/* Serve listen_fd (non-blocking, listening), accepting root and the n_allow
 * uids in allow; requests longer than max_request are passed on truncated.
 * 0 or -errno. */
int ctlsrv_init(struct ctlsrv *s, int listen_fd, const uid_t *allow, int n_allow,
		size_t max_request, ctlsrv_request_fn on_request, ctlsrv_gone_fn on_gone,
		void *ctx);

/* Close every client and free the buffers (not the listening socket). */
void ctlsrv_close(struct ctlsrv *s);

/* Accept every pending connection (listen_fd readable). */
void ctlsrv_accept(struct ctlsrv *s);

/* Take connected socket fd from a peer with credentials cred, or refuse it
 * (fd closed, reason logged): -EPERM uid not allowed, -EUSERS too many for
 * this uid, -EMFILE no slot left for it. On success *client is its index. */
int ctlsrv_add(struct ctlsrv *s, int fd, const struct ucred *cred, int *client);

/* Fill pfd[0 .. CTLSRV_MAX_CLIENTS-1] for poll(). */
void ctlsrv_pollfds(const struct ctlsrv *s, struct pollfd *pfd);

/* Act on the revents of pfd as filled by ctlsrv_pollfds: send queued
 * replies, read at most one request per client, drop closed clients. */
void ctlsrv_events(struct ctlsrv *s, const struct pollfd *pfd);

/* Send (or queue) one reply packet to client. 0 or -errno; -ENOBUFS when the
 * client's queue was full and it has been disconnected. */
int ctlsrv_reply(struct ctlsrv *s, int client, const uint8_t *buf, size_t len);

#endif

// SPDX-License-Identifier: MIT
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "relay.h"
#include "relayproto.h"

/* Nothing served here takes a body; h2o's default buffers up to 1 GB of one. */
#define MAX_REQUEST_BODY 0
/* A client idle between requests, or slow to send one, is closed after
 * this long (h2o 2.2 has one timer for both). A peer keeps its connection
 * between reads (a quiet peer reads on every 4th poll, 60 s by default), so
 * it must outlast that: a new TLS connection costs the peer and the gateway
 * ~3 ms of CPU each, a read on a kept one almost nothing. */
#define IDLE_TIMEOUT_MS 75000
/* A connection that has had no answer this long after its accept (it sent
 * nothing, or drips its first request) is closed, so slow drippers give
 * their slot back. */
#define FIRST_REQUEST_MS 5000
/* How long the listener rests when accept() finds no descriptor left:
 * level-triggered readiness would otherwise spin on the pending connection. */
#define EMFILE_BACKOFF_MS 500
#define ACCEPTS_PER_WAKEUP 16

struct listener {
	const char *what;
	struct sockaddr_in addr;
	h2o_socket_t *sock;
	h2o_accept_ctx_t accept_ctx;
	h2o_hostconf_t *hosts[2];
	unsigned conns, max;
	bool reading, resting, warned, warned_full;
	struct loop_timer rest;
	struct loop *l;
};

/* The public listener's handler serves only what peers need. */
struct route {
	h2o_handler_t super;
	bool all;
};

struct httpd {
	h2o_globalconf_t config;
	h2o_context_t ctx;
	struct node *node;
	struct listener pub, status;
};

static struct httpd server;

static int send_doc(h2o_req_t *req, int status, const char *reason, const char *type, char *body)
{
	size_t len = strlen(body);
	char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);

	memcpy(copy, body, len + 1);
	free(body);
	req->res.status = status;
	req->res.reason = reason;
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type,
		       strlen(type));
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
		       H2O_STRLIT("no-store"));
	h2o_send_inline(req, copy, len);
	return 0;
}

static bool path_is(h2o_req_t *req, const char *p)
{
	size_t n = strlen(p);

	return req->path_normalized.len == n && !memcmp(req->path_normalized.base, p, n);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct route *route = (struct route *)self;
	h2o_iovec_t path = req->path_normalized;
	char *doc;

	if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
	    !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
		h2o_send_error_generic(req, 405, "Method Not Allowed", "only GET\n", 0);
		return 0;
	}
	if (!route->all && path_is(req, RELAYPROTO_PATH))
		return relay_accept(server.node->relay, req);
	/* The prototype answered any path that starts with /node.json. */
	if (path.len >= 10 && !memcmp(path.base, "/node.json", 10)) {
		doc = node_json(server.node);
		if (!doc) {
			h2o_send_error_generic(req, 503, "Service Unavailable",
					       "waiting for wgagent\n", 0);
			return 0;
		}
		return send_doc(req, 200, "OK", "application/json", doc);
	}
	if (path_is(req, "/healthz"))
		return send_doc(req, 200, "OK", "text/plain", strdup("ok"));
	if (route->all && path_is(req, "/status") && (doc = node_status(server.node)))
		return send_doc(req, 200, "OK", "application/json", doc);
	if (route->all && path_is(req, "/metrics") && (doc = node_metrics(server.node)))
		return send_doc(req, 200, "OK", "text/plain; version=0.0.4", doc);
	h2o_send_error_generic(req, 404, "Not Found", "not found\n", 0);
	return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err);

/* Watch the listening socket only while a connection may be taken. */
static void listener_update(struct listener *lis)
{
	bool want = !lis->resting && lis->conns < lis->max;

	if (want == lis->reading)
		return;
	lis->reading = want;
	if (want)
		h2o_socket_read_start(lis->sock, on_accept);
	else
		h2o_socket_read_stop(lis->sock);
}

static void on_rest_over(void *arg)
{
	struct listener *lis = arg;

	lis->resting = false;
	listener_update(lis);
}

/* An accepted connection, until h2o closes it. */
struct conn {
	struct listener *lis;
	h2o_socket_t *sock;
	struct loop_timer first; /* FIRST_REQUEST_MS after the accept */
};

/* Nothing answered yet: h2o is still waiting for the first request. A
 * shutdown makes its read end, and h2o closes the connection itself. */
static void on_first_request_due(void *arg)
{
	struct conn *c = arg;

	loop_timer_remove(c->lis->l, &c->first); /* fired: off the loop's list */
	if (c->sock->bytes_written)
		return;
	log_debug("http", "%s listener: no request within %d ms; closing the connection",
		  c->lis->what, FIRST_REQUEST_MS);
	shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
}

static void on_conn_close(void *data)
{
	struct conn *c = data;
	struct listener *lis = c->lis;

	loop_timer_remove(lis->l, &c->first);
	free(c);
	lis->conns--;
	if (lis->conns < lis->max / 2)
		lis->warned_full = false;
	listener_update(lis);
}

/* accept() found no descriptor (or kernel memory) left: rest, then retry. */
static void listener_rest(struct listener *lis, int err)
{
	if (!lis->warned)
		log_warn("http", "%s listener: %s; not accepting for %d ms at a time",
			 lis->what, strerror(err), EMFILE_BACKOFF_MS);
	lis->warned = true;
	lis->resting = true;
	loop_timer_arm(lis->l, &lis->rest, EMFILE_BACKOFF_MS);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
	struct listener *lis = listener->data;

	for (int i = 0; !err && i < ACCEPTS_PER_WAKEUP && lis->conns < lis->max; i++) {
		h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
		struct conn *c;

		if (!sock) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				listener_rest(lis, errno);
			break;
		}
		lis->warned = false;
		c = calloc(1, sizeof(*c));
		if (!c) {
			h2o_socket_close(sock);
			break;
		}
		*c = (struct conn){ .lis = lis, .sock = sock,
				    .first = { .cb = on_first_request_due, .arg = c } };
		lis->conns++;
		sock->on_close.cb = on_conn_close;
		sock->on_close.data = c;
		loop_timer_arm(lis->l, &c->first, FIRST_REQUEST_MS);
		h2o_accept(&lis->accept_ctx, sock);
	}
	if (lis->conns >= lis->max && !lis->warned_full) {
		log_warn("http", "%s listener: %u connections open, the most allowed; others wait",
			 lis->what, lis->conns);
		lis->warned_full = true;
	}
	listener_update(lis);
}

static int listener_open(struct listener *lis, struct loop *l, const char *what,
			 const struct sockaddr_in *addr, unsigned max, bool all)
{
	h2o_hostconf_t *host;
	h2o_pathconf_t *path;
	struct route *route;
	int one = 1, fd, ret;

	host = h2o_config_register_host(&server.config, h2o_iovec_init(what, strlen(what)), 65535);
	path = h2o_config_register_path(host, "/", 0);
	route = (struct route *)h2o_create_handler(path, sizeof(*route));
	route->super.on_req = on_req;
	route->all = all;
	lis->what = what;
	lis->addr = *addr;
	lis->max = max;
	lis->l = l;
	lis->hosts[0] = host;
	lis->rest = (struct loop_timer){ .cb = on_rest_over, .arg = lis };

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 || listen(fd, 128) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	lis->sock = h2o_evloop_socket_create(loop_h2o(l), fd, H2O_SOCKET_FLAG_DONT_READ);
	lis->sock->data = lis;
	return 0;
}

int httpd_start(struct loop *l, struct node *n, const struct sockaddr_in *public_addr,
		const struct sockaddr_in *status_addr)
{
	char a[INET_ADDRSTRLEN];
	int ret;

	server.node = n;
	h2o_config_init(&server.config);
	server.config.server_name = h2o_iovec_init(H2O_STRLIT("p2pwg"));
	server.config.max_request_entity_size = MAX_REQUEST_BODY;
	server.config.http1.req_timeout = IDLE_TIMEOUT_MS;
	server.config.http2.idle_timeout = IDLE_TIMEOUT_MS;
	ret = listener_open(&server.pub, l, "public", public_addr, HTTPD_MAX_CONNECTIONS, false);
	if (ret)
		return ret;
	if (status_addr->sin_port) {
		ret = listener_open(&server.status, l, "status", status_addr,
				    HTTPD_MAX_STATUS_CONNECTIONS, true);
		if (ret)
			return ret;
	}
	/* After every host is registered: the context reads the configuration. */
	h2o_context_init(&server.ctx, loop_h2o(l), &server.config);
	server.pub.accept_ctx = (h2o_accept_ctx_t){ .ctx = &server.ctx, .hosts = server.pub.hosts };
	listener_update(&server.pub);
	log_info("http", "serving /node.json and /healthz on %s:%u (at most %u connections)",
		 inet_ntop(AF_INET, &public_addr->sin_addr, a, sizeof(a)),
		 ntohs(public_addr->sin_port), HTTPD_MAX_CONNECTIONS);
	if (status_addr->sin_port) {
		server.status.accept_ctx =
			(h2o_accept_ctx_t){ .ctx = &server.ctx, .hosts = server.status.hosts };
		listener_update(&server.status);
		log_info("http", "serving /status and /metrics on %s:%u",
			 inet_ntop(AF_INET, &status_addr->sin_addr, a, sizeof(a)),
			 ntohs(status_addr->sin_port));
	} else {
		log_info("http", "/status and /metrics are off (P2PWG_STATUS_LISTEN)");
	}
	return 0;
}

// SPDX-License-Identifier: MIT
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

struct httpd {
	h2o_globalconf_t config;
	h2o_context_t ctx;
	h2o_accept_ctx_t accept_ctx;
	struct node *node;
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
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
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
	h2o_iovec_t path = req->path_normalized;
	char *doc;

	if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
	    !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
		h2o_send_error_generic(req, 405, "Method Not Allowed", "only GET\n", 0);
		return 0;
	}
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
	if (path_is(req, "/status") && (doc = node_status(server.node)))
		return send_doc(req, 200, "OK", "application/json", doc);
	if (path_is(req, "/metrics") && (doc = node_metrics(server.node)))
		return send_doc(req, 200, "OK", "text/plain; version=0.0.4", doc);
	h2o_send_error_generic(req, 404, "Not Found", "not found\n", 0);
	return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
	h2o_socket_t *sock;

	if (err)
		return;
	sock = h2o_evloop_socket_accept(listener);
	if (sock)
		h2o_accept(&server.accept_ctx, sock);
}

int httpd_start(struct loop *l, struct node *n, const struct sockaddr_in *addr)
{
	h2o_hostconf_t *host;
	h2o_pathconf_t *path;
	h2o_handler_t *handler;
	h2o_socket_t *sock;
	int one = 1, fd, ret;

	server.node = n;
	h2o_config_init(&server.config);
	server.config.server_name = h2o_iovec_init(H2O_STRLIT("p2pwg"));
	host = h2o_config_register_host(&server.config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	path = h2o_config_register_path(host, "/", 0);
	handler = h2o_create_handler(path, sizeof(*handler));
	handler->on_req = on_req;
	h2o_context_init(&server.ctx, loop_h2o(l), &server.config);
	server.accept_ctx.ctx = &server.ctx;
	server.accept_ctx.hosts = server.config.hosts;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 || listen(fd, 128) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	sock = h2o_evloop_socket_create(server.ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
	h2o_socket_read_start(sock, on_accept);
	log_info("http", "serving /node.json, /healthz, /status, /metrics on %s:%u",
		 inet_ntoa(addr->sin_addr), ntohs(addr->sin_port));
	return 0;
}

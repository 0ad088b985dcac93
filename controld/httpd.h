/* SPDX-License-Identifier: MIT */
/*
 * httpd: controld's HTTP server (h2o, HTTP/1.1 and h2c). The public listener
 * (what dstack's gateway forwards, so anyone on the internet) serves only
 * /node.json (any path starting so, as the prototype) and /healthz; a second,
 * private listener adds /status and /metrics. Everything else is 404.
 * Connections are capped per listener and idle ones time out.
 */
#ifndef P2PWG_HTTPD_H
#define P2PWG_HTTPD_H

#include <netinet/in.h>

#include "loop.h"
#include "node.h"

/* Connections open at once; more wait in the kernel's backlog. */
#define HTTPD_MAX_CONNECTIONS 256
#define HTTPD_MAX_STATUS_CONNECTIONS 16

/* Listen on public_addr, and on status_addr unless its port is 0, and serve
 * n's documents from loop l. 0 or -errno. */
int httpd_start(struct loop *l, struct node *n, const struct sockaddr_in *public_addr,
		const struct sockaddr_in *status_addr);

#endif

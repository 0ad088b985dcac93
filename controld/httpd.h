/* SPDX-License-Identifier: MIT */
/*
 * httpd: controld's HTTP server (h2o, HTTP/1.1 and h2c) for what dstack's
 * gateway forwards: /node.json (any path starting so, as the prototype),
 * /healthz, /status and /metrics. Everything else is 404.
 */
#ifndef P2PWG_HTTPD_H
#define P2PWG_HTTPD_H

#include <netinet/in.h>

#include "loop.h"
#include "node.h"

/* Listen on addr and serve n's documents from loop l. 0 or -errno. */
int httpd_start(struct loop *l, struct node *n, const struct sockaddr_in *addr);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * node: controld's state and its cycles. Poll the list, fetch every peer's
 * node.json at once, decide the peer set, hand it to wgagent when it changed,
 * probe STUN, test the tunnels. Fail static throughout: whatever cannot be
 * fetched or parsed leaves the last good state in place.
 */
#ifndef P2PWG_NODE_H
#define P2PWG_NODE_H

#include "config.h"
#include "loop.h"

struct node;

/* Create the node and start its timers and agent connection. */
struct node *node_new(const struct config *c, struct loop *l);

/* Documents served over HTTP (malloc'd, NUL-terminated; NULL on ENOMEM). */
char *node_json(struct node *n);    /* /node.json */
char *node_status(struct node *n);  /* /status */
char *node_metrics(struct node *n); /* /metrics, Prometheus text format */

#endif

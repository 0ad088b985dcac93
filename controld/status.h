/* SPDX-License-Identifier: MIT */
/*
 * status: the documents controld serves, built from the node's state:
 * /node.json (what peers read), /status (JSON for people) and /metrics
 * (Prometheus). Each is malloc'd and NUL-terminated, or NULL on ENOMEM.
 */
#ifndef P2PWG_STATUS_H
#define P2PWG_STATUS_H

#include "node.h"

/* This node's /node.json; NULL also before the agent told us our key. */
char *status_nodejson(struct node *n);

/* /status: this node, the list, and every list slot with its peer's state. */
char *status_document(struct node *n);

/* /metrics in the Prometheus text format. */
char *status_metrics(struct node *n);

#endif

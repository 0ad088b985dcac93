/* SPDX-License-Identifier: MIT */
/*
 * agentlink: controld's connection to wgagent, inside the event loop.
 * Connects (and reconnects with backoff), says Hello, matches every response
 * to its request by id, and fails requests that the agent never answers.
 */
#ifndef P2PWG_AGENTLINK_H
#define P2PWG_AGENTLINK_H

#include <stdbool.h>

#include "agent.pb-c.h"
#include "loop.h"

/* resp is NULL when the request failed (error says why); the callee does not
 * keep resp after returning. */
typedef void (*agentlink_cb)(void *arg, const P2pwg__Response *resp, const char *error);

struct agentlink_handlers {
	/* The agent answered Hello: the link is usable. */
	void (*up)(void *arg, const P2pwg__HelloReply *hello);
	/* The link went down (agent restarted or gone); reconnecting. */
	void (*down)(void *arg);
	void *arg;
};

struct agentlink;

/* Start connecting to path. NULL on ENOMEM. */
struct agentlink *agentlink_new(struct loop *l, const char *path,
				const struct agentlink_handlers *h);

/* Send req (its id is assigned here). cb is called exactly once. -ENOTCONN if
 * the link is not up, -EMSGSIZE, or a send error. */
int agentlink_call(struct agentlink *a, P2pwg__Request *req, uint32_t timeout_ms, agentlink_cb cb,
		   void *arg);

bool agentlink_is_up(const struct agentlink *a);

#endif

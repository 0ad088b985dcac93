/* SPDX-License-Identifier: MIT */
/*
 * agentclient: the unprivileged side of the agent protocol (proto/agent.proto).
 * One request per SOCK_SEQPACKET packet, one response back.
 */
#ifndef P2PWG_AGENTCLIENT_H
#define P2PWG_AGENTCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "agent.pb-c.h"

/* Largest packet either side accepts; longer ones are refused unread. */
#define AGENT_MSG_MAX (256 * 1024)
#define AGENT_DEFAULT_SOCKET "/run/p2pwg/agent.sock"

/* Connect to the agent's socket; the fd in *fd. 0 or -errno. */
int agentclient_connect(const char *path, int *fd);

/* Send raw bytes as one packet. 0 or -errno. */
int agentclient_send_raw(int fd, const void *buf, size_t len);

/* Wait up to timeout_ms for one packet and unpack it as a Response into *out
 * (free with agentclient_response_free). -ETIMEDOUT, -EPIPE on hang-up,
 * -EBADMSG if it does not unpack. */
int agentclient_recv(int fd, int timeout_ms, P2pwg__Response **out);

/* Pack req, send it, and wait for the response with the same id. 0 or -errno. */
int agentclient_call(int fd, const P2pwg__Request *req, int timeout_ms, P2pwg__Response **out);

/* Free a response from agentclient_recv/call. Accepts NULL. */
void agentclient_response_free(P2pwg__Response *resp);

/* Name of a status value, e.g. "INVALID". */
const char *agentclient_status_name(P2pwg__Status status);

#endif

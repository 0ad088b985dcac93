/* SPDX-License-Identifier: MIT */
/*
 * stunprobe: learn this node's public UDP endpoint as seen from outside, for
 * the WireGuard port itself: every STUN request leaves through wgagent's
 * StunExchange, so the tunnels are never disturbed. Asks every configured
 * server, retransmits (RFC 8489 section 6.2.1: 500 ms, doubling, 3 tries), and
 * tells whether the NAT maps by destination. Server names are looked up
 * without blocking the loop, again at every probe; a failed lookup keeps the
 * last good address.
 */
#ifndef P2PWG_STUNPROBE_H
#define P2PWG_STUNPROBE_H

#include <netinet/in.h>
#include <stdbool.h>

#include "agentlink.h"
#include "config.h"
#include "loop.h"
#include "resolver.h"

struct stunprobe;

struct stunprobe_server {
	struct stunprobe *owner;
	char name[256];
	char host[256];
	bool numeric;        /* an address: resolved once, at init */
	bool resolved;       /* addr holds the last good resolution */
	bool lookup_pending; /* a lookup runs (names are looked up again at every probe) */
	bool waiting;        /* this probe waits for that lookup: never resolved yet */
	bool resolve_failed; /* the last lookup failed (said once) */
	struct sockaddr_in addr;
	uint8_t txid[12];
	uint8_t req[20];
	int attempt;
	bool done, ok;
	struct sockaddr_in mapped;
	char error[128];
};

struct stunprobe_summary {
	int n_servers, n_ok;
	bool has_public;
	struct sockaddr_in public_ep;
	const char *nat;     /* "open", "port-preserving", "port-remapping", "symmetric", or NULL */
	const char *mapping; /* "endpoint-independent", "endpoint-dependent", or NULL (one answer) */
	/* Servers answered but no address has a majority: has_public is false and
	 * the caller keeps its last agreed endpoint. */
	bool disagree;
	int n_agree; /* answers backing public_ep (its address if symmetric); others were outvoted */
};

/*
 * Classify answers (ok entries of s[0..n)) for a node whose WireGuard listens
 * on listen_port; local says whether the mapped address is one of the node's
 * own (no NAT). The public address is the one reported by more than half of
 * the answers (every NAT kind maps to one address); among those, an endpoint
 * reported by more than half gives the port, else the NAT is symmetric.
 * Pure; unit-tested.
 */
void stunprobe_classify(const struct stunprobe_server *s, int n, uint16_t listen_port,
			bool (*is_local)(const struct in_addr *), struct stunprobe_summary *out);

typedef void (*stunprobe_done)(void *arg, const struct stunprobe_summary *sum);

struct stunprobe {
	struct loop *l;
	struct agentlink *agent;
	struct resolver *res; /* made at the first probe with a name to look up */
	uint16_t listen_port;
	int n;
	struct stunprobe_server s[CONFIG_MAX_STUN];
	bool running;
	int outstanding;
	stunprobe_done done;
	void *arg;
	char said[512]; /* the last disagreement logged, so it is said once until it changes */
};

void stunprobe_init(struct stunprobe *p, struct loop *l, struct agentlink *agent,
		    const struct config *c, stunprobe_done done, void *arg);

/* Start a probe from the given WireGuard port; -EBUSY if one runs, -ENOTCONN
 * without the agent. The done callback runs once when every server answered
 * or gave up. */
int stunprobe_start(struct stunprobe *p, uint16_t listen_port);

#endif

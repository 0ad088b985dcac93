/* SPDX-License-Identifier: MIT */
/*
 * node: controld's state and its cycles. Poll the list, fetch every peer's
 * node.json at once, have peerset decide the peer set, hand it to wgagent when
 * it changed, probe STUN, test the tunnels. Fail static throughout: whatever
 * cannot be fetched or parsed leaves the last good state in place.
 */
#ifndef P2PWG_NODE_H
#define P2PWG_NODE_H

#include <time.h>

#include "agentlink.h"
#include "agentmsg.h"
#include "attest.h"
#include "config.h"
#include "keymap.h"
#include "loop.h"
#include "mesh.h"
#include "nodeinfo.h"
#include "pathcheck.h"
#include "peerlist.h"
#include "peerset.h"
#include "registry.h"
#include "safetext.h"
#include "stunprobe.h"

/* One list slot. Strings a peer chose (test_result) are kept sanitised. */
struct node_entry {
	char *url;           /* NULL: a slot the list parser skipped (it keeps its position) */
	bool known;
	struct nodeinfo info;
	char error[200];
	char dropped[PEERSET_WHY]; /* why peerset refused it, as last logged */
	time_t ok_at;
	void *fetch;
	/* from the agent's GetDevice, matched by key */
	int64_t handshake;
	uint64_t rx, tx;
	char endpoint[64];
	bool stale_reported;
	/* the /test probe over the overlay */
	void *test;
	bool test_ok;
	time_t test_at;
	uint64_t test_since_us; /* wall clock: when this run of passes (or of failures) began */
	/* A prompt check, outside the interval's ticks: the peer was just configured or
	 * changed, its handshake just turned fresh, or its last check failed. */
	bool test_prompt;
	uint64_t test_due; /* monotonic ms; valid with test_prompt */
	unsigned test_fails; /* prompt checks failed in a row */
	struct in_addr test_overlay; /* where the last check went */
	bool test_fresh;	     /* the check in flight is on a new connection */
	char test_result[SAFETEXT_MAX];
	struct node *node;
};

/* controld's whole state; node.c runs it, status.c reads it. */
struct relay;

struct node {
	const struct config *c;
	struct loop *l;
	struct agentlink *agent;
	struct stunprobe stun;
	struct mesh_params params;
	struct peerset ps;
	struct attest *att; /* attested membership */

	struct peerlist *list;
	struct node_entry *e;
	size_t n;
	struct keymap keys; /* known entries by key, first position first */
	bool keys_dirty;    /* e changed: keys is filled again before its next use */
	char etag[256];
	void *list_fetch;
	struct registry *reg; /* P2PWG_REGISTRY: the list from a contract, not list_fetch */
	time_t list_at;
	char list_error[256];
	size_t outstanding;

	bool have_key;
	uint8_t pubkey[32];
	uint16_t listen_port;
	char ifname[32], backend[16];

	struct mesh_state decided, want, sending, applied; /* want: what to apply next */
	bool applied_valid, set_inflight, set_again, said_absent;
	size_t said_dup, said_oor;
	struct agentmsg_setpeers msg;

	struct stunprobe_summary stun_sum;
	bool stun_have;
	time_t stun_at;
	uint64_t stun_last_start;

	/* path checks (pathcheck.h) and this node's local candidates */
	struct pathcheck pc;
	struct sockaddr_in local[NODEINFO_MAX_LOCAL];
	size_t n_local;
	struct loop_timer t_check;

	struct loop_timer t_poll, t_test, t_stun, t_dev, t_recompute;
	size_t test_next;    /* the applied peer whose /test is next */
	struct loop_timer t_prompt; /* the next prompt /test (test_due) */
	struct loop_timer t_refetch;
	uint64_t refetch_ms; /* the wait before reading unready entries again */
	bool refetching;     /* the fetches in flight are such a re-read */
	uint64_t polls;      /* list reads that fetched node.json (fetch_all) */
	time_t started;
	uint64_t m_list_ok, m_list_fail, m_list_304, m_node_ok, m_node_fail, m_setpeers,
		m_setpeers_fail, m_stun, m_stun_fail, m_test_ok, m_test_fail;
	uint64_t rx_total, tx_total;
	struct relay *relay;
};

/* Create the node and start its timers and agent connection. */
struct node *node_new(const struct config *c, struct loop *l);

/* The list slot that was read with key, or NULL. */
struct node_entry *node_entry_by_key(struct node *n, const uint8_t *key);

/* Something says the path to key may have changed (a failed /test, a relay
 * stream the peer closed): its candidate paths are checked now. */
void node_paths_suspect(struct node *n, const uint8_t key[32]);

/* Documents served over HTTP (malloc'd, NUL-terminated; NULL on ENOMEM); see status.h. */
char *node_json(struct node *n);    /* /node.json */
char *node_status(struct node *n);  /* /status */
char *node_metrics(struct node *n); /* /metrics, Prometheus text format */

#endif
